//! Derived figures of one run: times from cycles, ratios to the in-boot
//! baselines, per-message counters and the issue-6 target checks.
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

use crate::serial_log::{CoreCounters, LatencySample, Run, StreamSample};

/// Name of the latency record that is the physical floor.
pub const FLOOR_LATENCY: &str = "cacheline-pingpong";
/// Name of the stream record all streams are compared with.
pub const DIRECT_STREAM: &str = "direct-ring-stream";
/// Latency record of the mover round trip.
pub const MOVER_RTT: &str = "mover-rtt";
/// Stream record through the mover.
pub const MOVER_STREAM: &str = "mover-stream";

/// Whether the guest verified every message behind a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageCheck {
    /// `ok == n`: every message's sequence number and payload checked out.
    AllChecked,
    /// `ok != n`: the figure is not trustworthy.
    Mismatch,
    /// The record has no `ok` key.
    NotReported,
}

impl MessageCheck {
    fn of(ok: Option<u64>, n: u64) -> MessageCheck {
        match ok {
            Some(ok) if ok == n => MessageCheck::AllChecked,
            Some(_) => MessageCheck::Mismatch,
            None => MessageCheck::NotReported,
        }
    }

    /// True only when every message was checked and correct.
    pub fn is_trustworthy(self) -> bool {
        self == MessageCheck::AllChecked
    }
}

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

/// Which way a target ratio must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    AtMost,
    AtLeast,
}

/// Result of one target check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetOutcome {
    Met,
    Missed,
    /// A record the ratio needs is absent from the run.
    NotMeasured,
}

/// One of issue 6's targets as a measured ratio.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetCheck {
    /// Stable short name (`mover-one-way-vs-floor`, …) for tools.
    pub id: String,
    /// The target in words.
    pub description: String,
    pub bound: Bound,
    pub limit: f64,
    pub measured: Option<f64>,
    pub outcome: TargetOutcome,
    /// False when a record behind the ratio failed or lacked its message check.
    pub inputs_checked: bool,
    /// The figures the ratio came from, or what was missing.
    pub detail: String,
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

/// Converts TSC cycles to nanoseconds with the run's calibrated frequency.
pub fn cycles_to_ns(cycles: u64, tsc_hz: u64) -> f64 {
    cycles as f64 * 1e9 / tsc_hz as f64
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

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0 && numerator.is_finite() && denominator.is_finite())
        .then(|| numerator / denominator)
}

fn find_latency<'a>(
    latencies: &'a [LatencyFigure],
    name: &str,
    rings: u32,
) -> Option<&'a LatencyFigure> {
    latencies
        .iter()
        .find(|figure| figure.name == name && figure.rings.unwrap_or(1) == rings)
}

fn find_stream<'a>(
    streams: &'a [StreamFigure],
    name: &str,
    batch: u32,
    rings: u32,
) -> Option<&'a StreamFigure> {
    streams.iter().find(|figure| {
        figure.name == name
            && figure.batch.unwrap_or(1) == batch
            && figure.rings.unwrap_or(1) == rings
    })
}

fn target(
    id: &str,
    description: &str,
    bound: Bound,
    limit: f64,
    inputs: Result<(f64, f64, bool, String), String>,
) -> TargetCheck {
    let (measured, inputs_checked, detail) = match inputs {
        Ok((numerator, denominator, checked, detail)) => {
            (ratio(numerator, denominator), checked, detail)
        }
        Err(missing) => (None, false, missing),
    };
    let outcome = match measured {
        None => TargetOutcome::NotMeasured,
        Some(value) => {
            let met = match bound {
                Bound::AtMost => value <= limit,
                Bound::AtLeast => value >= limit,
            };
            if met {
                TargetOutcome::Met
            } else {
                TargetOutcome::Missed
            }
        }
    };
    TargetCheck {
        id: id.to_string(),
        description: description.to_string(),
        bound,
        limit,
        measured,
        outcome,
        inputs_checked,
        detail,
    }
}

fn target_checks(latencies: &[LatencyFigure], streams: &[StreamFigure]) -> Vec<TargetCheck> {
    let floor = latencies.iter().find(|figure| figure.name == FLOOR_LATENCY);
    // "Fewest rings" is the smallest ring count measured: the benchmark
    // system has two outboxes on the mover (client and echo), so its base
    // is rings=2; a system with one ring would report rings=1.
    let fewest = latencies.iter().filter(|f| f.name == MOVER_RTT).map(|f| f.rings.unwrap_or(1)).min().unwrap_or(1);
    let mover_one_ring = find_latency(latencies, MOVER_RTT, fewest);
    let mover_many_rings = find_latency(latencies, MOVER_RTT, 64);
    let direct_stream = find_stream(streams, DIRECT_STREAM, 1, 1);
    let fewest_stream = streams
        .iter()
        .filter(|f| f.name == MOVER_STREAM && f.batch.unwrap_or(1) == 1)
        .map(|f| f.rings.unwrap_or(1))
        .min()
        .unwrap_or(1);
    let mover_stream = find_stream(streams, MOVER_STREAM, 1, fewest_stream);

    let one_way = match (mover_one_ring, floor) {
        (Some(mover), Some(floor)) => Ok((
            mover.one_way_ns,
            floor.one_way_ns,
            mover.check.is_trustworthy() && floor.check.is_trustworthy(),
            format!(
                "mover-rtt rings={fewest} one-way {:.1} ns / {FLOOR_LATENCY} one-way {:.1} ns",
                mover.one_way_ns, floor.one_way_ns
            ),
        )),
        _ => Err(missing_text(&[
            (mover_one_ring.is_some(), "mover-rtt rings=1"),
            (floor.is_some(), FLOOR_LATENCY),
        ])),
    };
    let stream = match (mover_stream, direct_stream) {
        (Some(mover), Some(direct)) => Ok((
            mover.messages_per_second,
            direct.messages_per_second,
            mover.check.is_trustworthy() && direct.check.is_trustworthy(),
            format!(
                "mover-stream batch=1 rings={fewest_stream} {} msg/s / {DIRECT_STREAM} batch=1 {} msg/s",
                format_rate(mover.messages_per_second),
                format_rate(direct.messages_per_second)
            ),
        )),
        _ => Err(missing_text(&[
            (mover_stream.is_some(), "mover-stream batch=1 rings=1"),
            (direct_stream.is_some(), "direct-ring-stream batch=1"),
        ])),
    };
    let scaling = match (mover_many_rings, mover_one_ring) {
        (Some(many), Some(one)) => Ok((
            many.median_ns,
            one.median_ns,
            many.check.is_trustworthy() && one.check.is_trustworthy(),
            format!(
                "mover-rtt median rings=64 {:.1} ns / rings={fewest} {:.1} ns",
                many.median_ns, one.median_ns
            ),
        )),
        _ => Err(missing_text(&[
            (mover_many_rings.is_some(), "mover-rtt rings=64"),
            (mover_one_ring.is_some(), "mover-rtt rings=1"),
        ])),
    };

    vec![
        target(
            "mover-one-way-vs-floor",
            "mover one-way latency <= 2x cache-line floor one-way",
            Bound::AtMost,
            2.0,
            one_way,
        ),
        target(
            "mover-stream-vs-direct",
            "mover stream (batch 1, 1 ring) >= 0.5x direct ring stream",
            Bound::AtLeast,
            0.5,
            stream,
        ),
        target(
            "mover-rtt-64-vs-1-rings",
            "mover RTT at 64 rings <= 1.5x RTT at 1 ring",
            Bound::AtMost,
            1.5,
            scaling,
        ),
    ]
}

fn missing_text(inputs: &[(bool, &str)]) -> String {
    let missing: Vec<&str> = inputs
        .iter()
        .filter(|(present, _)| !present)
        .map(|(_, name)| *name)
        .collect();
    format!(
        "not measured: no {} record in this run",
        missing.join(" and no ")
    )
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

/// Formats a rate with an SI prefix (`4.21 M`).
pub fn format_rate(per_second: f64) -> String {
    if !per_second.is_finite() {
        return "inf".to_string();
    }
    let (scaled, prefix) = if per_second >= 1e9 {
        (per_second / 1e9, " G")
    } else if per_second >= 1e6 {
        (per_second / 1e6, " M")
    } else if per_second >= 1e3 {
        (per_second / 1e3, " k")
    } else {
        (per_second, " ")
    };
    format!("{scaled:.3}{prefix}").trim_end().to_string()
}
