//! Everything derived from one IPC run ([`Analysis`]): its baselines, the
//! figures of each record ([`super::record_figures`]), the zero claims
//! (context switches, syscalls), the target checks ([`super::targets`]) and
//! the warnings.
//!
//! Invariants:
//! - every ratio divides two figures of the same run (same boot), never of
//!   different runs: TCG and shared hosts make absolute times incomparable;
//! - a figure whose `ok` is not equal to `n` keeps its value but is marked
//!   [`MessageCheck::Mismatch`], and any target computed from it is marked
//!   untrustworthy;
//! - targets are reported as met or missed, never asserted.
//!
//! Baselines: the latency floor is the first `cacheline-pingpong` record; the
//! stream baseline is the first `direct-ring-stream` record with batch 1 (a
//! missing `batch` or `rings` counts as 1); the mover rows every compared
//! path is also divided by are the mover round trip and batch-1 stream with
//! the fewest rings and no written extra ring.
//!
//! Counters: each compared row's phase counters must agree with its path
//! ([`super::paths`]); a contradiction goes to `counter_failures`, and the
//! callers exit non-zero on it. The zero claims (CR3 writes, syscalls)
//! cover every phase except the sync-call phases, which are the positive
//! control.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::paths::{CounterVerdict, IpcPath, RowCounters, phase_enters_kernel, row_counters};
use super::record_figures::{
    CounterFigure, DIRECT_STREAM, LatencyFigure, StreamFigure, Variant, counter_figure, is_usual_direct_ring,
    latency_figure, messages_per_second, stream_figure,
};
use super::targets::{TargetCheck, mover_base_rtt, mover_base_stream, target_checks};
use crate::figures::{FLOOR_LATENCY, MessageCheck, cycles_to_ns, ratio};

/// Record kind of a measurement the guest timed but dropped because the
/// TSC went backwards across it (`BENCH dropped kind=stream name=… tsc_backwards=1`).
pub const DROPPED_RECORD: &str = "dropped";
use crate::serial_log::{CoreCounters, Run};

/// A count that the design claims is zero, summed over all counters records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ZeroClaim {
    /// Sum over the records that report the count; `None` if none does.
    pub total: Option<u64>,
    /// Records where the count is not zero: (phase, core, role, value).
    pub nonzero: Vec<(String, u32, Option<String>, u64)>,
    /// Roles of the cores the counters cover, sorted (`client`, `mover`, …).
    pub roles: Vec<String>,
}

/// Everything derived from one [`Run`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// Floor median round trip in ns, if the run measured it.
    pub floor_median_ns: Option<f64>,
    /// Direct ring batch-1 stream rate, if the run measured it.
    pub direct_stream_messages_per_second: Option<f64>,
    pub latencies: Vec<LatencyFigure>,
    pub streams: Vec<StreamFigure>,
    pub counters: Vec<CounterFigure>,
    /// CR3 writes: the context switches the design claims never happen.
    pub context_switches: ZeroClaim,
    pub syscalls: ZeroClaim,
    /// Each compared row's phase counters per operation and whether they
    /// agree with its path ([`super::paths`]).
    #[serde(default)]
    pub row_counters: Vec<RowCounters>,
    /// One sentence per count that contradicts its row's path: the report
    /// fails (non-zero exit) when this is not empty.
    #[serde(default)]
    pub counter_failures: Vec<String>,
    pub targets: Vec<TargetCheck>,
    /// Things a reader must not miss (unchecked messages, cut-short run, …).
    pub warnings: Vec<String>,
}

/// Derives the figures, counters, claims and target checks of a run.
pub fn analyze(run: &Run) -> Analysis {
    let floor = run.latencies.iter().find(|sample| sample.name == FLOOR_LATENCY);
    let floor_median_ns = floor.map(|sample| cycles_to_ns(sample.median_cycles, run.tsc_hz));
    let mut latencies: Vec<LatencyFigure> =
        run.latencies.iter().map(|sample| latency_figure(sample, run.tsc_hz, floor_median_ns)).collect();

    let direct_stream = run.streams.iter().find(|sample| {
        sample.name == DIRECT_STREAM
            && sample.batch.unwrap_or(1) == 1
            && is_usual_direct_ring(Variant::of(&sample.extra).slots)
    });
    let direct_stream_messages_per_second = direct_stream.map(|sample| messages_per_second(sample, run.tsc_hz));
    let mut streams: Vec<StreamFigure> =
        run.streams.iter().map(|sample| stream_figure(sample, run.tsc_hz, direct_stream_messages_per_second)).collect();
    add_path_ratios(&mut latencies, &mut streams);

    let counters = run.counters.iter().map(counter_figure).collect();
    // The zero claims cover the phases of paths that must not enter the
    // kernel; the sync-call phases are the positive control, counted apart.
    let zero_path_counters: Vec<CoreCounters> =
        run.counters.iter().filter(|c| !phase_enters_kernel(&c.phase)).cloned().collect();
    let context_switches = zero_claim(&zero_path_counters, |c| c.cr3_writes);
    let syscalls = zero_claim(&zero_path_counters, |c| c.syscalls);
    let row_counters =
        row_counters(&latencies, &streams, &run.counters, mover_base_rtt(&latencies), mover_base_stream(&streams));
    let counter_failures: Vec<String> =
        row_counters.iter().flat_map(|row| row.contradictions.iter().cloned()).collect();
    let targets = target_checks(&latencies, &streams, &run.fallbacks, &row_counters);
    let mut warnings = warnings(run, &latencies, &streams, &context_switches, &syscalls);
    for row in &row_counters {
        if row.verdict == CounterVerdict::NotReported {
            warnings.push(format!(
                "row {} (line {}): no complete counters for phase {}: its path ({}) is not checked",
                row.row,
                row.line,
                row.phase,
                row.expectation.text()
            ));
        }
    }

    Analysis {
        floor_median_ns,
        direct_stream_messages_per_second,
        latencies,
        streams,
        counters,
        context_switches,
        syscalls,
        row_counters,
        counter_failures,
        targets,
        warnings,
    }
}

/// Fills each figure's ratio to the mover's base row and, for streams, the
/// cores its path uses and its rate per core used.
fn add_path_ratios(latencies: &mut [LatencyFigure], streams: &mut [StreamFigure]) {
    let mover_rtt = mover_base_rtt(latencies).map(|f| f.median_ns);
    for figure in latencies.iter_mut() {
        figure.over_mover = mover_rtt.and_then(|mover| ratio(figure.median_ns, mover));
    }
    let mover_rate = mover_base_stream(streams).map(|f| f.messages_per_second);
    for figure in streams.iter_mut() {
        figure.over_mover = mover_rate.and_then(|mover| ratio(figure.messages_per_second, mover));
        figure.cores_used = IpcPath::of_stream(figure).and_then(IpcPath::cores_used);
        figure.per_core_per_second =
            figure.cores_used.and_then(|cores| ratio(figure.messages_per_second, f64::from(cores)));
    }
}

fn zero_claim(records: &[CoreCounters], count_of: impl Fn(&CoreCounters) -> Option<u64>) -> ZeroClaim {
    let mut total = None;
    let mut nonzero = Vec::new();
    for record in records {
        if let Some(count) = count_of(record) {
            total = Some(total.unwrap_or(0u64).saturating_add(count));
            if count != 0 {
                nonzero.push((record.phase.clone(), record.core, record.role.clone(), count));
            }
        }
    }
    let roles: BTreeSet<String> = records.iter().filter_map(|record| record.role.clone()).collect();
    ZeroClaim { total, nonzero, roles: roles.into_iter().collect() }
}

fn warnings(
    run: &Run,
    latencies: &[LatencyFigure],
    streams: &[StreamFigure],
    context_switches: &ZeroClaim,
    syscalls: &ZeroClaim,
) -> Vec<String> {
    let mut warnings = Vec::new();
    match (&run.end_line, run.end_status.as_deref()) {
        (None, _) => warnings.push(format!(
            "run cut short: BENCH-BEGIN at line {} has no BENCH-END (guest stopped or rebooted)",
            run.begin_line
        )),
        (Some(_), Some("ok")) => {}
        (Some(line), status) => {
            warnings.push(format!("BENCH-END at line {line} reports status={} (not ok)", status.unwrap_or("<missing>")))
        }
    }
    let describe = |name: &str, rings: Option<u32>, batch: Option<u32>| {
        let mut text = name.to_string();
        if let Some(batch) = batch {
            text += &format!(" batch={batch}");
        }
        if let Some(rings) = rings {
            text += &format!(" rings={rings}");
        }
        text
    };
    let checks = latencies
        .iter()
        .map(|f| (f.line, describe(&f.name, f.rings, None), f.check, f.ok, f.n))
        .chain(streams.iter().map(|f| (f.line, describe(&f.name, f.rings, f.batch), f.check, f.ok, f.n)));
    for (line, what, check, ok, n) in checks {
        match check {
            MessageCheck::AllChecked => {}
            MessageCheck::Mismatch => warnings.push(format!(
                "{what} (line {line}): only {} of {n} messages checked out: figure NOT TRUSTWORTHY",
                ok.unwrap_or(0)
            )),
            MessageCheck::NotReported => warnings
                .push(format!("{what} (line {line}): no ok= count, messages unverified: figure NOT TRUSTWORTHY")),
        }
    }
    for figure in latencies {
        match figure.tsc_backwards {
            Some(0) | None => {}
            Some(dropped) if figure.samples_kept() == 0 => warnings.push(format!(
                "{} (line {}): all {dropped} samples dropped because the TSC went backwards: no figure",
                describe(&figure.name, figure.rings, None),
                figure.line
            )),
            Some(dropped) => warnings.push(format!(
                "{} (line {}): {dropped} of {} samples dropped because the TSC went backwards; median and p99 are of the {} kept",
                describe(&figure.name, figure.rings, None),
                figure.line,
                figure.n,
                figure.samples_kept()
            )),
        }
    }
    for record in run.other_records.iter().filter(|r| r.kind == DROPPED_RECORD) {
        let field = |key: &str| record.fields.get(key).map_or("?", String::as_str);
        warnings.push(format!(
            "line {}: the guest dropped {} {} (tsc_backwards={}): the TSC went backwards across the measurement, so it has no figure",
            record.line,
            field("kind"),
            field("name"),
            field("tsc_backwards")
        ));
    }
    if run.latencies.iter().all(|sample| sample.name != FLOOR_LATENCY) {
        warnings.push(format!("no {FLOOR_LATENCY} record: latency ratios to the floor are missing"));
    }
    for note in &run.fallbacks {
        warnings
            .push(format!("line {}: a mechanism fell back ({}): targets of this run are n/a", note.line, note.text));
    }
    if context_switches.total.is_some_and(|total| total > 0) {
        warnings.push("context switches (CR3 writes) during measurement are NOT zero".to_string());
    }
    if syscalls.total.is_some_and(|total| total > 0) {
        warnings.push("syscalls during measurement are NOT zero".to_string());
    }
    if run.counters.is_empty() {
        warnings.push("no counters records: the zero-context-switch claim is unsupported by this run".to_string());
    }
    warnings
}
