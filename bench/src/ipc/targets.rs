//! The target ratios of one IPC run, measured and reported as met, missed,
//! not applicable or not measured, never asserted.
//!
//! Each ratio divides two figures of the same run. A ratio whose inputs
//! cannot carry a verdict is computed and shown but judged `n/a` with the
//! reason ([`TargetOutcome::NotApplicable`]): a record behind it failed its
//! message check (`ok < n`, no `ok`), or kept no timed sample, or the boot
//! reports a mechanism fallback (a `fell back` / `MWAIT returned at once`
//! line: the servers of this benchmark must not sleep at all).
//!
//! Besides issue 6's three, three targets set the mover against
//! synchronous calls (the comparison the project exists for): the mover
//! stream at least 3x the same-core call rate, the mover RTT at most the
//! cross-core call RTT, the mover's messages/s per core used at least the
//! same-core calls/s. A row whose phase counters contradict its path also
//! makes these n/a.
//!
//! Labels say what was measured: the mover's base round trip is the one
//! with no extra rings, and the system has two real outboxes (client and
//! echo), so it is `rings=2`, and the target names say so.

use serde::{Deserialize, Serialize};

use super::paths::{CROSS_CORE, CounterVerdict, IpcPath, RowCounters, SAME_CORE, SYNC_CALL_RTT, SYNC_CALL_STREAM};
use super::record_figures::{
    DIRECT_STREAM, LatencyFigure, MOVER_RTT, MOVER_STREAM, STREAM_FLOOR, StreamFigure, Variant, is_usual_direct_ring,
    row_label, variant_text,
};
use crate::figures::{Bound, FLOOR_LATENCY, MessageCheck, TargetOutcome, ratio};
use crate::serial_log::LogNote;
use crate::text_table::format_rate;

/// One target as a measured ratio.
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
    /// False when a record behind the ratio failed or lacked its message
    /// check, or kept no sample.
    pub inputs_checked: bool,
    /// Why a measured ratio is not judged (outcome `not-applicable`).
    #[serde(default)]
    pub not_applicable_because: Option<String>,
    /// The figures the ratio came from, or what was missing.
    pub detail: String,
}

/// A ratio's two sides, where they came from, and what is wrong with them.
pub(crate) struct RatioInputs {
    pub(crate) numerator: f64,
    pub(crate) denominator: f64,
    pub(crate) detail: String,
    /// One entry per input that failed its check (empty: all fine).
    pub(crate) problems: Vec<String>,
}

/// What is wrong with a latency figure as a target input, if anything.
pub(crate) fn latency_problem(figure: &LatencyFigure) -> Option<String> {
    let what = row_label(&figure.name, figure.rings, None, &figure.variant);
    check_problem(&what, figure.check, figure.ok, figure.n).or_else(|| {
        (figure.samples_kept() == 0).then(|| format!("{what}: every sample was dropped (the TSC went backwards)"))
    })
}

/// What is wrong with a stream figure as a target input, if anything.
pub(crate) fn stream_problem(figure: &StreamFigure) -> Option<String> {
    let what = row_label(&figure.name, figure.rings, figure.batch, &figure.variant);
    check_problem(&what, figure.check, figure.ok, figure.n)
}

fn check_problem(what: &str, check: MessageCheck, ok: Option<u64>, n: u64) -> Option<String> {
    match check {
        MessageCheck::AllChecked => None,
        MessageCheck::Mismatch => Some(format!("{what}: only {} of {n} messages checked out", ok.unwrap_or(0))),
        MessageCheck::NotReported => Some(format!("{what}: no ok= count, messages unverified")),
    }
}

/// Builds a check from its inputs (or why they are missing) and the
/// run-wide reasons no target of the run can be judged.
pub(crate) fn target(
    id: &str,
    description: &str,
    bound: Bound,
    limit: f64,
    inputs: Result<RatioInputs, String>,
    run_problems: &[String],
) -> TargetCheck {
    let (measured, problems, detail) = match inputs {
        Ok(inputs) => (ratio(inputs.numerator, inputs.denominator), inputs.problems, inputs.detail),
        Err(missing) => (None, Vec::new(), missing),
    };
    let inputs_checked = problems.is_empty();
    let reasons: Vec<String> = problems.into_iter().chain(run_problems.iter().cloned()).collect();
    let not_applicable_because = (!reasons.is_empty()).then(|| reasons.join("; "));
    let outcome = TargetOutcome::judge(bound, limit, measured, not_applicable_because.as_deref());
    TargetCheck {
        id: id.to_string(),
        description: description.to_string(),
        bound,
        limit,
        measured,
        outcome,
        inputs_checked: inputs_checked && measured.is_some(),
        not_applicable_because: (outcome == TargetOutcome::NotApplicable).then_some(not_applicable_because).flatten(),
        detail,
    }
}

/// True for a mover row whose rings beyond the base are empty kernel-side
/// rings or absent (not the writer boot's rows).
pub(crate) fn is_empty_ring_row(extra: Option<&str>) -> bool {
    matches!(extra, None | Some("empty"))
}

/// The mover round trip with the fewest rings and no written extra ring;
/// in a writers boot (no such row), the one with the writers idle.
pub(crate) fn mover_base_rtt(latencies: &[LatencyFigure]) -> Option<&LatencyFigure> {
    let base = |accept: fn(Option<&str>) -> bool| {
        latencies
            .iter()
            .filter(|f| f.name == MOVER_RTT && accept(f.variant.extra.as_deref()))
            .min_by_key(|f| f.rings.unwrap_or(1))
    };
    base(is_empty_ring_row).or_else(|| base(|extra| extra == Some("idle")))
}

/// The batch-1 direct-ring stream of one ring: the base every stream is
/// compared with.
fn direct_base_stream(streams: &[StreamFigure]) -> Option<&StreamFigure> {
    direct_stream_where(streams, is_usual_direct_ring)
}

/// The batch-1 direct ring stream whose ring size `slots` accepts.
fn direct_stream_where(streams: &[StreamFigure], slots: impl Fn(Option<u32>) -> bool) -> Option<&StreamFigure> {
    streams.iter().find(|f| {
        f.name == DIRECT_STREAM && f.batch.unwrap_or(1) == 1 && f.rings.unwrap_or(1) == 1 && slots(f.variant.slots)
    })
}

/// The batch-1 mover stream with the fewest rings and no written extra
/// ring; in a writers boot, the one with the writers idle.
pub(crate) fn mover_base_stream(streams: &[StreamFigure]) -> Option<&StreamFigure> {
    let base = |accept: fn(Option<&str>) -> bool| {
        streams
            .iter()
            .filter(|f| f.name == MOVER_STREAM && f.batch.unwrap_or(1) == 1 && accept(f.variant.extra.as_deref()))
            .min_by_key(|f| f.rings.unwrap_or(1))
    };
    base(is_empty_ring_row).or_else(|| base(|extra| extra == Some("idle")))
}

/// A ring count in words: `1 ring`, `3 rings`.
fn rings_text(rings: Option<u32>) -> String {
    match rings {
        None => "the fewest rings".to_string(),
        Some(1) => "1 ring".to_string(),
        Some(rings) => format!("{rings} rings"),
    }
}

fn missing_text(inputs: &[(bool, &str)]) -> String {
    let missing: Vec<&str> = inputs.iter().filter(|(present, _)| !present).map(|(_, name)| *name).collect();
    format!("not measured: no {} record in this run", missing.join(" and no "))
}

pub(crate) fn target_checks(
    latencies: &[LatencyFigure],
    streams: &[StreamFigure],
    fallbacks: &[LogNote],
    row_counters: &[RowCounters],
) -> Vec<TargetCheck> {
    let run_problems: Vec<String> = fallbacks
        .iter()
        .map(|note| {
            format!(
                "the boot reports a mechanism fallback at line {} ({}); the IPC figures assume cores that never sleep",
                note.line, note.text
            )
        })
        .collect();
    let floor = latencies.iter().find(|figure| figure.name == FLOOR_LATENCY);
    let mover_base = mover_base_rtt(latencies);
    let base_rings = mover_base.and_then(|f| f.rings);
    let mover_64 = latencies
        .iter()
        .find(|f| f.name == MOVER_RTT && f.rings == Some(64) && is_empty_ring_row(f.variant.extra.as_deref()));
    let direct_stream = direct_base_stream(streams);
    let mover_stream = mover_base_stream(streams);
    let stream_rings = mover_stream.and_then(|f| f.rings);
    let problems = |items: &[Option<String>]| items.iter().flatten().cloned().collect::<Vec<_>>();

    let one_way = match (mover_base, floor) {
        (Some(mover), Some(floor)) => Ok(RatioInputs {
            numerator: mover.one_way_ns,
            denominator: floor.one_way_ns,
            detail: format!(
                "mover-rtt rings={} one-way {:.1} ns / {FLOOR_LATENCY} one-way {:.1} ns",
                crate::text_table::dash_or(base_rings),
                mover.one_way_ns,
                floor.one_way_ns
            ),
            problems: problems(&[latency_problem(mover), latency_problem(floor)]),
        }),
        _ => Err(missing_text(&[(mover_base.is_some(), "mover-rtt"), (floor.is_some(), FLOOR_LATENCY)])),
    };
    let stream = match (mover_stream, direct_stream) {
        (Some(mover), Some(direct)) => Ok(RatioInputs {
            numerator: mover.messages_per_second,
            denominator: direct.messages_per_second,
            detail: format!(
                "mover-stream batch=1 rings={} {} msg/s / {DIRECT_STREAM} batch=1 {} msg/s",
                crate::text_table::dash_or(stream_rings),
                format_rate(mover.messages_per_second),
                format_rate(direct.messages_per_second)
            ),
            problems: problems(&[stream_problem(mover), stream_problem(direct)]),
        }),
        _ => Err(missing_text(&[
            (mover_stream.is_some(), "mover-stream batch=1"),
            (direct_stream.is_some(), "direct-ring-stream batch=1"),
        ])),
    };
    let scaling = match (mover_64, mover_base) {
        (Some(many), Some(base)) => Ok(RatioInputs {
            numerator: many.median_ns,
            denominator: base.median_ns,
            detail: format!(
                "mover-rtt median rings=64 {:.1} ns / rings={} {:.1} ns",
                many.median_ns,
                crate::text_table::dash_or(base_rings),
                base.median_ns
            ),
            problems: problems(&[latency_problem(many), latency_problem(base)]),
        }),
        _ => Err(missing_text(&[(mover_64.is_some(), "mover-rtt rings=64"), (mover_base.is_some(), "mover-rtt")])),
    };

    // The base is the system's own outboxes (client and echo, plus any
    // other server on the mover), however many that is.
    // (Older guests did not say what the rings are: then only the count.)
    let own_outboxes =
        |rings: Option<u32>, variant: Option<&Variant>| match variant.map(|v| (v.extra.as_deref(), v.extra_rings)) {
            Some((Some("empty"), Some(0))) => {
                format!("{}: the system's own outboxes, no extra", rings_text(rings))
            }
            Some((Some(kind), Some(n))) => format!("{}: {n} extra {kind}", rings_text(rings)),
            _ => rings_text(rings),
        };
    let base_words = own_outboxes(base_rings, mover_base.map(|f| &f.variant));
    let stream_words = own_outboxes(stream_rings, mover_stream.map(|f| &f.variant));
    let extra_64 = base_rings.map_or(String::new(), |base| format!(" ({} of them empty)", 64u32.saturating_sub(base)));
    let mut checks = vec![
        target(
            "mover-one-way-vs-floor",
            &format!("mover one-way latency ({base_words}) <= 2x cache-line floor one-way"),
            Bound::AtMost,
            2.0,
            one_way,
            &run_problems,
        ),
        target(
            "mover-stream-vs-direct",
            &format!("mover stream (batch 1, {stream_words}) >= 0.5x direct ring stream"),
            Bound::AtLeast,
            0.5,
            stream,
            &run_problems,
        ),
        target(
            &format!("mover-rtt-64-vs-{}-rings", base_rings.map_or("fewest".to_string(), |rings| rings.to_string())),
            &format!("mover RTT at 64 rings{extra_64} <= 1.5x RTT at {base_words}"),
            Bound::AtMost,
            1.5,
            scaling,
            &run_problems,
        ),
    ];
    checks.extend(floor_targets(streams, &run_problems));
    checks.extend(comparison_targets(latencies, streams, row_counters, &run_problems));
    checks
}

/// ` slots=N` of a row that printed its ring size, else nothing.
fn slots_text(slots: Option<u32>) -> String {
    slots.map(|slots| format!(" slots={slots}")).unwrap_or_default()
}

/// The streams against the stream floor (issue 17): how close the real
/// ring and the mover come to the least a 64-byte message costs.
fn floor_targets(streams: &[StreamFigure], run_problems: &[String]) -> Vec<TargetCheck> {
    let floor = streams.iter().find(|f| f.name == STREAM_FLOOR);
    // The direct ring at the floor's size when the run has it (same ring,
    // so the ratio is what the protocol costs); otherwise the usual one.
    let floor_slots = floor.and_then(|f| f.variant.slots);
    let direct = direct_stream_where(streams, |slots| slots.is_some() && slots == floor_slots)
        .or_else(|| direct_base_stream(streams));
    let mover = mover_base_stream(streams);
    let over_floor = |name: &str, row: Option<&StreamFigure>| match (row, floor) {
        (Some(row), Some(floor)) => Ok(RatioInputs {
            numerator: row.messages_per_second,
            denominator: floor.messages_per_second,
            detail: format!(
                "{name} batch=1{} {} msg/s / {STREAM_FLOOR}{} {} msg/s",
                slots_text(row.variant.slots),
                format_rate(row.messages_per_second),
                slots_text(floor.variant.slots),
                format_rate(floor.messages_per_second)
            ),
            problems: [stream_problem(row), stream_problem(floor)].into_iter().flatten().collect(),
        }),
        _ => Err(missing_text(&[(row.is_some(), &format!("{name} batch=1")), (floor.is_some(), STREAM_FLOOR)])),
    };
    vec![
        target(
            "direct-stream-vs-stream-floor",
            "direct ring stream (batch 1) >= 0.7x the stream floor",
            Bound::AtLeast,
            0.7,
            over_floor(DIRECT_STREAM, direct),
            run_problems,
        ),
        target(
            "mover-stream-vs-stream-floor",
            "mover stream (batch 1) >= 0.6x the stream floor",
            Bound::AtLeast,
            0.6,
            over_floor(MOVER_STREAM, mover),
            run_problems,
        ),
    ]
}

/// What is wrong with a row's phase counters as evidence for its path.
fn counter_problem(row_counters: &[RowCounters], line: usize) -> Option<String> {
    row_counters
        .iter()
        .find(|counters| counters.line == line && counters.verdict == CounterVerdict::Contradicts)
        .map(|counters| counters.contradictions.join("; "))
}

/// The targets of the comparison the project exists for: the mover
/// against synchronous, context-switching calls.
fn comparison_targets(
    latencies: &[LatencyFigure],
    streams: &[StreamFigure],
    row_counters: &[RowCounters],
    run_problems: &[String],
) -> Vec<TargetCheck> {
    let mover_rtt = mover_base_rtt(latencies);
    let mover_stream = mover_base_stream(streams);
    let sync_stream = |path: IpcPath| streams.iter().find(|f| IpcPath::of_stream(f) == Some(path));
    let same_stream = sync_stream(IpcPath::SyncSameCore);
    let cross_rtt = latencies.iter().find(|f| IpcPath::of_latency(f) == Some(IpcPath::SyncCrossCore));
    let stream_inputs = |mover: &StreamFigure, sync: &StreamFigure| {
        [
            stream_problem(mover),
            stream_problem(sync),
            counter_problem(row_counters, mover.line),
            counter_problem(row_counters, sync.line),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
    };
    let mover_stream_text = |mover: &StreamFigure| {
        format!(
            "mover-stream {} {} msg/s",
            variant_text(mover.rings, mover.batch, &mover.variant),
            format_rate(mover.messages_per_second)
        )
    };
    let same_name = format!("{SYNC_CALL_STREAM} placement={SAME_CORE}");

    let stream_vs_sync = match (mover_stream, same_stream) {
        (Some(mover), Some(sync)) => Ok(RatioInputs {
            numerator: mover.messages_per_second,
            denominator: sync.messages_per_second,
            detail: format!(
                "{} / {same_name} {} calls/s",
                mover_stream_text(mover),
                format_rate(sync.messages_per_second)
            ),
            problems: stream_inputs(mover, sync),
        }),
        _ => {
            Err(missing_text(&[(mover_stream.is_some(), "mover-stream batch=1"), (same_stream.is_some(), &same_name)]))
        }
    };
    let cross_name = format!("{SYNC_CALL_RTT} placement={CROSS_CORE}");
    let rtt_vs_sync = match (mover_rtt, cross_rtt) {
        (Some(mover), Some(sync)) => Ok(RatioInputs {
            numerator: mover.median_ns,
            denominator: sync.median_ns,
            detail: format!(
                "mover-rtt {} median {:.1} ns / {cross_name} median {:.1} ns",
                variant_text(mover.rings, None, &mover.variant),
                mover.median_ns,
                sync.median_ns
            ),
            problems: [
                latency_problem(mover),
                latency_problem(sync),
                counter_problem(row_counters, mover.line),
                counter_problem(row_counters, sync.line),
            ]
            .into_iter()
            .flatten()
            .collect(),
        }),
        _ => Err(missing_text(&[(mover_rtt.is_some(), "mover-rtt"), (cross_rtt.is_some(), &cross_name)])),
    };
    let per_core = match (mover_stream, same_stream) {
        (Some(mover), Some(sync)) => match (mover.per_core_per_second, sync.per_core_per_second) {
            (Some(mover_per_core), Some(sync_per_core)) => Ok(RatioInputs {
                numerator: mover_per_core,
                denominator: sync_per_core,
                detail: format!(
                    "{} / {} cores = {} msg/s per core / {same_name} {} calls/s / {} core = {} per core",
                    mover_stream_text(mover),
                    crate::text_table::dash_or(mover.cores_used),
                    format_rate(mover_per_core),
                    format_rate(sync.messages_per_second),
                    crate::text_table::dash_or(sync.cores_used),
                    format_rate(sync_per_core)
                ),
                problems: stream_inputs(mover, sync),
            }),
            _ => Err("not measured: the cores used by a path are not known".to_string()),
        },
        _ => {
            Err(missing_text(&[(mover_stream.is_some(), "mover-stream batch=1"), (same_stream.is_some(), &same_name)]))
        }
    };
    vec![
        target(
            "mover-stream-vs-sync-same-core-calls",
            "mover stream (batch 1) >= 3x same-core sync call rate",
            Bound::AtLeast,
            3.0,
            stream_vs_sync,
            run_problems,
        ),
        target(
            "mover-rtt-vs-sync-cross-core-rtt",
            "mover RTT <= cross-core sync call RTT",
            Bound::AtMost,
            1.0,
            rtt_vs_sync,
            run_problems,
        ),
        target(
            "mover-per-core-vs-sync-same-core-calls",
            "mover messages/s per core used (3) >= same-core sync calls/s (1 core)",
            Bound::AtLeast,
            1.0,
            per_core,
            run_problems,
        ),
    ]
}
