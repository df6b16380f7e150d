//! Derived figures of one run: times from cycles, ratios to the in-boot
//! baselines, per-message counters and the zero claims; the issue-6 target
//! checks on top of them are in [`super::targets`].
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
//! missing `batch` or `rings` counts as 1).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::targets::{TargetCheck, target_checks};
use crate::figures::{FLOOR_LATENCY, MessageCheck, cycles_to_ns, ratio};
use crate::serial_log::{CoreCounters, LatencySample, Run, StreamSample};

/// Name of the stream record all streams are compared with.
pub const DIRECT_STREAM: &str = "direct-ring-stream";
/// Latency record of the mover round trip.
pub const MOVER_RTT: &str = "mover-rtt";
/// Stream record through the mover.
pub const MOVER_STREAM: &str = "mover-stream";

/// One latency record with times and its ratio to the floor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyFigure {
    pub name: String,
    pub rings: Option<u32>,
    pub n: u64,
    pub ok: Option<u64>,
    pub check: MessageCheck,
    pub median_ns: f64,
    pub p99_ns: f64,
    pub min_ns: Option<f64>,
    pub max_ns: Option<f64>,
    /// Half the median round trip: the one-way estimate.
    pub one_way_ns: f64,
    /// Median over the floor's median (equal to one-way over floor one-way).
    pub median_over_floor: Option<f64>,
    /// Line number in the log.
    pub line: usize,
}

/// One stream record with its rate and its ratio to the direct ring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamFigure {
    pub name: String,
    pub batch: Option<u32>,
    pub rings: Option<u32>,
    pub n: u64,
    pub ok: Option<u64>,
    pub check: MessageCheck,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// `None` when the stream sent no message.
    pub ns_per_message: Option<f64>,
    /// Rate over the `direct-ring-stream` batch-1 rate.
    pub over_direct_stream: Option<f64>,
    /// Line number in the log.
    pub line: usize,
}

/// One counters record with counts per message.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CounterFigure {
    pub phase: String,
    pub core: u32,
    pub role: Option<String>,
    pub messages: Option<u64>,
    pub cr3_writes: Option<u64>,
    pub syscalls: Option<u64>,
    pub interrupts: Option<u64>,
    pub exceptions: Option<u64>,
    pub cr3_writes_per_message: Option<f64>,
    pub syscalls_per_message: Option<f64>,
    pub interrupts_per_message: Option<f64>,
}

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
    pub targets: Vec<TargetCheck>,
    /// Things a reader must not miss (unchecked messages, cut-short run, …).
    pub warnings: Vec<String>,
}

/// Derives the figures, counters, claims and target checks of a run.
pub fn analyze(run: &Run) -> Analysis {
    let floor = run
        .latencies
        .iter()
        .find(|sample| sample.name == FLOOR_LATENCY);
    let floor_median_ns = floor.map(|sample| cycles_to_ns(sample.median_cycles, run.tsc_hz));
    let latencies: Vec<LatencyFigure> = run
        .latencies
        .iter()
        .map(|sample| latency_figure(sample, run.tsc_hz, floor_median_ns))
        .collect();

    let direct_stream = run
        .streams
        .iter()
        .find(|sample| sample.name == DIRECT_STREAM && sample.batch.unwrap_or(1) == 1);
    let direct_stream_messages_per_second =
        direct_stream.map(|sample| messages_per_second(sample, run.tsc_hz));
    let streams: Vec<StreamFigure> = run
        .streams
        .iter()
        .map(|sample| stream_figure(sample, run.tsc_hz, direct_stream_messages_per_second))
        .collect();

    let counters = run.counters.iter().map(counter_figure).collect();
    let context_switches = zero_claim(&run.counters, |c| c.cr3_writes);
    let syscalls = zero_claim(&run.counters, |c| c.syscalls);
    let targets = target_checks(&latencies, &streams);
    let warnings = warnings(run, &latencies, &streams, &context_switches, &syscalls);

    Analysis {
        floor_median_ns,
        direct_stream_messages_per_second,
        latencies,
        streams,
        counters,
        context_switches,
        syscalls,
        targets,
        warnings,
    }
}

fn latency_figure(
    sample: &LatencySample,
    tsc_hz: u64,
    floor_median_ns: Option<f64>,
) -> LatencyFigure {
    let median_ns = cycles_to_ns(sample.median_cycles, tsc_hz);
    LatencyFigure {
        name: sample.name.clone(),
        rings: sample.rings,
        n: sample.n,
        ok: sample.ok,
        check: MessageCheck::of(sample.ok, sample.n),
        median_ns,
        p99_ns: cycles_to_ns(sample.p99_cycles, tsc_hz),
        min_ns: sample.min_cycles.map(|cycles| cycles_to_ns(cycles, tsc_hz)),
        max_ns: sample.max_cycles.map(|cycles| cycles_to_ns(cycles, tsc_hz)),
        one_way_ns: median_ns / 2.0,
        median_over_floor: floor_median_ns.and_then(|floor| ratio(median_ns, floor)),
        line: sample.line,
    }
}

fn messages_per_second(sample: &StreamSample, tsc_hz: u64) -> f64 {
    // The parser rejects `cycles=0`.
    sample.n as f64 * tsc_hz as f64 / sample.cycles as f64
}

fn stream_figure(sample: &StreamSample, tsc_hz: u64, direct_rate: Option<f64>) -> StreamFigure {
    let rate = messages_per_second(sample, tsc_hz);
    let seconds = sample.cycles as f64 / tsc_hz as f64;
    StreamFigure {
        name: sample.name.clone(),
        batch: sample.batch,
        rings: sample.rings,
        n: sample.n,
        ok: sample.ok,
        check: MessageCheck::of(sample.ok, sample.n),
        seconds,
        messages_per_second: rate,
        ns_per_message: (sample.n > 0).then(|| seconds * 1e9 / sample.n as f64),
        over_direct_stream: direct_rate.and_then(|direct| ratio(rate, direct)),
        line: sample.line,
    }
}

fn counter_figure(counters: &CoreCounters) -> CounterFigure {
    let per_message = |count: Option<u64>| match (count, counters.messages) {
        (Some(count), Some(messages)) if messages > 0 => Some(count as f64 / messages as f64),
        _ => None,
    };
    CounterFigure {
        phase: counters.phase.clone(),
        core: counters.core,
        role: counters.role.clone(),
        messages: counters.messages,
        cr3_writes: counters.cr3_writes,
        syscalls: counters.syscalls,
        interrupts: counters.interrupts,
        exceptions: counters.exceptions,
        cr3_writes_per_message: per_message(counters.cr3_writes),
        syscalls_per_message: per_message(counters.syscalls),
        interrupts_per_message: per_message(counters.interrupts),
    }
}

fn zero_claim(
    records: &[CoreCounters],
    count_of: impl Fn(&CoreCounters) -> Option<u64>,
) -> ZeroClaim {
    let mut total = None;
    let mut nonzero = Vec::new();
    for record in records {
        if let Some(count) = count_of(record) {
            total = Some(total.unwrap_or(0u64).saturating_add(count));
            if count != 0 {
                nonzero.push((
                    record.phase.clone(),
                    record.core,
                    record.role.clone(),
                    count,
                ));
            }
        }
    }
    let roles: BTreeSet<String> = records
        .iter()
        .filter_map(|record| record.role.clone())
        .collect();
    ZeroClaim {
        total,
        nonzero,
        roles: roles.into_iter().collect(),
    }
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
        (Some(line), status) => warnings.push(format!(
            "BENCH-END at line {line} reports status={} (not ok)",
            status.unwrap_or("<missing>")
        )),
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
        .chain(streams.iter().map(|f| {
            (
                f.line,
                describe(&f.name, f.rings, f.batch),
                f.check,
                f.ok,
                f.n,
            )
        }));
    for (line, what, check, ok, n) in checks {
        match check {
            MessageCheck::AllChecked => {}
            MessageCheck::Mismatch => warnings.push(format!(
                "{what} (line {line}): only {} of {n} messages checked out: figure NOT TRUSTWORTHY",
                ok.unwrap_or(0)
            )),
            MessageCheck::NotReported => warnings.push(format!(
                "{what} (line {line}): no ok= count, messages unverified: figure NOT TRUSTWORTHY"
            )),
        }
    }
    if run
        .latencies
        .iter()
        .all(|sample| sample.name != FLOOR_LATENCY)
    {
        warnings.push(format!(
            "no {FLOOR_LATENCY} record: latency ratios to the floor are missing"
        ));
    }
    if context_switches.total.is_some_and(|total| total > 0) {
        warnings.push("context switches (CR3 writes) during measurement are NOT zero".to_string());
    }
    if syscalls.total.is_some_and(|total| total > 0) {
        warnings.push("syscalls during measurement are NOT zero".to_string());
    }
    if run.counters.is_empty() {
        warnings.push(
            "no counters records: the zero-context-switch claim is unsupported by this run"
                .to_string(),
        );
    }
    warnings
}

