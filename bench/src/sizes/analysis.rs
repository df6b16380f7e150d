//! One boot of the size sweep as figures: per path and size the round
//! trip and the stream rate, their ratios to the boot's own baselines,
//! the cost rows, and the two targets.
//!
//! Invariants: a figure is divided only by figures of the same boot; a
//! row whose messages did not all check out keeps its figures, is flagged
//! (`check`), and no target computed from it is met or missed (`n/a`);
//! a missing record gives `None`, never a panic.

use serde::{Deserialize, Serialize};

use crate::figures::{Bound, FLOOR_LATENCY, MessageCheck, TargetOutcome, cycles_to_ns, ratio};
use crate::serial_log::{LatencySample, Run, StreamSample};

/// `system=` tag of the sweep's boot.
pub const SYSTEM: &str = "sizes";
/// Record names the guest prints.
pub const RTT: &str = "sizes-rtt";
pub const STREAM: &str = "sizes-stream";
pub const COST_RTT: &str = "sizes-cost-rtt";
pub const COST_STREAM: &str = "sizes-cost-stream";
/// The paths of the sweep, in table order.
pub const PATHS: [&str; 4] = ["inline-mover", "descriptor-mover", "inline-direct", "descriptor-direct"];
/// The cost rows' paths: without and with a descriptor.
pub const COST_PLAIN: &str = "mover-plain";
pub const COST_DESCRIPTOR: &str = "mover-descriptor";
/// Target 1: descriptors at 64 KiB against 64-byte inline messages.
pub const TARGET_BYTES_RATIO: f64 = 20.0;
/// Target 2: the mover's per-message cost with a descriptor over without.
pub const TARGET_COST_RATIO: f64 = 1.2;

/// The stream of the floor ring (64-byte structs, no mover) the sweep's
/// streams are set beside.
const FLOOR_STREAM: &str = "direct-ring-stream";

/// One path at one size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizeRow {
    pub path: String,
    /// Bytes per message.
    pub size: u64,
    /// Ring slots one message takes on this path.
    pub slots: Option<u64>,
    pub rtt_n: Option<u64>,
    pub rtt_ok: Option<u64>,
    pub rtt_median_ns: Option<f64>,
    pub rtt_p99_ns: Option<f64>,
    pub rtt_tsc_backwards: Option<u64>,
    /// Round trip over the boot's cache-line ping-pong.
    pub rtt_over_floor: Option<f64>,
    pub stream_n: Option<u64>,
    pub stream_ok: Option<u64>,
    pub bytes_per_second: Option<f64>,
    pub messages_per_second: Option<f64>,
    /// Bytes/s over `inline-mover` at the same size.
    pub bytes_over_inline_mover: Option<f64>,
    /// Whether every round trip and streamed message checked out.
    pub check: MessageCheck,
}

/// The cost rows, one per kind (with or without a descriptor), each
/// measured in several rounds of the boot (the kinds alternating); times
/// are medians over the rounds, counts sums.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostRow {
    pub path: String,
    pub streams: usize,
    pub messages: u64,
    pub ok: u64,
    /// Stream time per message of each round, in log order.
    pub rounds_ns_per_message: Vec<f64>,
    /// Their median.
    pub ns_per_message: Option<f64>,
    /// Median of the round-trip medians.
    pub rtt_median_ns: Option<f64>,
    pub rtt_p99_ns: Option<f64>,
    pub rtt_n: u64,
    pub rtt_ok: u64,
    /// From the kernel's counters around the streams: messages the mover
    /// core moved and system calls on every core, per streamed message.
    pub mover_messages_per_message: Option<f64>,
    pub syscalls_per_message: Option<f64>,
    pub check: MessageCheck,
}

/// One target, measured in this boot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizesTarget {
    pub id: String,
    pub description: String,
    pub bound: Bound,
    pub limit: f64,
    pub measured: Option<f64>,
    pub outcome: TargetOutcome,
    pub not_applicable_because: Option<String>,
    /// The figures it came from.
    pub detail: String,
}

/// Everything derived from one boot.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizesAnalysis {
    pub floor_rtt_ns: Option<f64>,
    /// The floor ring's batch-1 stream (64-byte structs), messages/s.
    pub floor_stream_messages_per_second: Option<f64>,
    pub rows: Vec<SizeRow>,
    pub cost: Vec<CostRow>,
    pub targets: Vec<SizesTarget>,
    pub warnings: Vec<String>,
}

/// Whether `run` is a boot of the sweep.
pub fn is_sizes_run(run: &Run) -> bool {
    run.begin_extra.get("system").is_some_and(|s| s == SYSTEM)
}

fn key<'a>(extra: &'a crate::serial_log::ExtraKeys, name: &str) -> Option<&'a str> {
    extra.get(name).map(String::as_str)
}

fn number(extra: &crate::serial_log::ExtraKeys, name: &str) -> Option<u64> {
    key(extra, name).and_then(|v| v.parse().ok())
}

fn latency<'a>(run: &'a Run, name: &str, path: &str, size: Option<u64>) -> Vec<&'a LatencySample> {
    run.latencies
        .iter()
        .filter(|l| {
            l.name == name
                && key(&l.extra, "path") == Some(path)
                && size.is_none_or(|s| number(&l.extra, "size") == Some(s))
        })
        .collect()
}

fn streams<'a>(run: &'a Run, name: &str, path: &str, size: Option<u64>) -> Vec<&'a StreamSample> {
    run.streams
        .iter()
        .filter(|s| {
            s.name == name
                && key(&s.extra, "path") == Some(path)
                && size.is_none_or(|z| number(&s.extra, "size") == Some(z))
        })
        .collect()
}

fn check_of(parts: &[(Option<u64>, u64)]) -> MessageCheck {
    let checks: Vec<MessageCheck> = parts.iter().map(|(ok, n)| MessageCheck::of(*ok, *n)).collect();
    if checks.contains(&MessageCheck::Mismatch) {
        MessageCheck::Mismatch
    } else if checks.is_empty() || checks.contains(&MessageCheck::NotReported) {
        MessageCheck::NotReported
    } else {
        MessageCheck::AllChecked
    }
}

/// The figures of one sweep boot.
pub fn analyze_sizes(run: &Run) -> SizesAnalysis {
    let hz = run.tsc_hz;
    let floor_rtt_ns =
        run.latencies.iter().find(|l| l.name == FLOOR_LATENCY).map(|l| cycles_to_ns(l.median_cycles, hz));
    let floor_stream_messages_per_second = run
        .streams
        .iter()
        .find(|s| s.name == FLOOR_STREAM && s.batch.unwrap_or(1) == 1)
        .map(|s| s.n as f64 * hz as f64 / s.cycles as f64);
    let mut sizes: Vec<u64> = run
        .latencies
        .iter()
        .filter(|l| l.name == RTT)
        .filter_map(|l| number(&l.extra, "size"))
        .chain(run.streams.iter().filter(|s| s.name == STREAM).filter_map(|s| number(&s.extra, "size")))
        .collect();
    sizes.sort_unstable();
    sizes.dedup();
    let mut rows = Vec::new();
    for &size in &sizes {
        for path in PATHS {
            let rtt = latency(run, RTT, path, Some(size)).into_iter().next();
            let stream = streams(run, STREAM, path, Some(size)).into_iter().next();
            if rtt.is_none() && stream.is_none() {
                continue;
            }
            let slots = rtt.and_then(|l| number(&l.extra, "slots")).or(stream.and_then(|s| number(&s.extra, "slots")));
            let seconds = stream.map(|s| s.cycles as f64 / hz as f64);
            let messages_per_second = stream.zip(seconds).and_then(|(s, t)| ratio(s.n as f64, t));
            let mut parts = Vec::new();
            if let Some(l) = rtt {
                parts.push((l.ok, l.n));
            }
            if let Some(s) = stream {
                parts.push((s.ok, s.n));
            }
            rows.push(SizeRow {
                path: path.to_string(),
                size,
                slots,
                rtt_n: rtt.map(|l| l.n),
                rtt_ok: rtt.and_then(|l| l.ok),
                rtt_median_ns: rtt.map(|l| cycles_to_ns(l.median_cycles, hz)),
                rtt_p99_ns: rtt.map(|l| cycles_to_ns(l.p99_cycles, hz)),
                rtt_tsc_backwards: rtt.and_then(|l| l.tsc_backwards),
                rtt_over_floor: rtt.and_then(|l| ratio(cycles_to_ns(l.median_cycles, hz), floor_rtt_ns?)),
                stream_n: stream.map(|s| s.n),
                stream_ok: stream.and_then(|s| s.ok),
                bytes_per_second: messages_per_second.map(|m| m * size as f64),
                messages_per_second,
                bytes_over_inline_mover: None,
                check: check_of(&parts),
            });
        }
    }
    let inline_mover: Vec<(u64, Option<f64>)> =
        rows.iter().filter(|r| r.path == PATHS[0]).map(|r| (r.size, r.bytes_per_second)).collect();
    for row in &mut rows {
        let base = inline_mover.iter().find(|(size, _)| *size == row.size).and_then(|(_, b)| *b);
        row.bytes_over_inline_mover = row.bytes_per_second.zip(base).and_then(|(b, base)| ratio(b, base));
    }
    let cost = [COST_PLAIN, COST_DESCRIPTOR].into_iter().filter_map(|path| cost_row(run, path)).collect();
    let mut analysis = SizesAnalysis {
        floor_rtt_ns,
        floor_stream_messages_per_second,
        rows,
        cost,
        targets: Vec::new(),
        warnings: Vec::new(),
    };
    analysis.targets = targets(&analysis);
    analysis.warnings = warnings(run, &analysis);
    analysis
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

fn cost_row(run: &Run, path: &str) -> Option<CostRow> {
    let hz = run.tsc_hz;
    let kept = streams(run, COST_STREAM, path, None);
    let rtts = latency(run, COST_RTT, path, None);
    if kept.is_empty() && rtts.is_empty() {
        return None;
    }
    let messages: u64 = kept.iter().map(|s| s.n).sum();
    let rounds: Vec<f64> = kept.iter().map(|s| cycles_to_ns(s.cycles, hz) / s.n.max(1) as f64).collect();
    let ok: u64 = kept.iter().map(|s| s.ok.unwrap_or(0)).sum();
    let phase = format!("sizes-cost-{}", path.trim_start_matches("mover-"));
    let counters: Vec<_> = run.counters.iter().filter(|c| c.phase == phase).collect();
    let mover_messages: u64 =
        counters.iter().filter(|c| c.role.as_deref() == Some("mover")).filter_map(|c| c.messages).sum();
    let syscalls: u64 = counters.iter().filter_map(|c| c.syscalls).sum();
    let per_message = |count: u64| (!counters.is_empty()).then(|| count as f64 / messages.max(1) as f64);
    let mut parts: Vec<(Option<u64>, u64)> = kept.iter().map(|s| (s.ok, s.n)).collect();
    parts.extend(rtts.iter().map(|l| (l.ok, l.n)));
    Some(CostRow {
        path: path.to_string(),
        streams: kept.len(),
        messages,
        ok,
        ns_per_message: median(&mut rounds.clone()),
        rounds_ns_per_message: rounds,
        rtt_median_ns: median(&mut rtts.iter().map(|l| cycles_to_ns(l.median_cycles, hz)).collect::<Vec<_>>()),
        rtt_p99_ns: median(&mut rtts.iter().map(|l| cycles_to_ns(l.p99_cycles, hz)).collect::<Vec<_>>()),
        rtt_n: rtts.iter().map(|l| l.n).sum(),
        rtt_ok: rtts.iter().map(|l| l.ok.unwrap_or(0)).sum(),
        mover_messages_per_message: per_message(mover_messages),
        syscalls_per_message: per_message(syscalls),
        check: check_of(&parts),
    })
}

fn size_text(size: u64) -> String {
    if size >= 1024 && size.is_multiple_of(1024) { format!("{} KiB", size / 1024) } else { format!("{size} B") }
}

fn targets(analysis: &SizesAnalysis) -> Vec<SizesTarget> {
    let row = |path: &str, size: u64| analysis.rows.iter().find(|r| r.path == path && r.size == size);
    let largest = analysis.rows.iter().filter(|r| r.path == PATHS[1]).map(|r| r.size).max();
    let smallest = analysis.rows.iter().filter(|r| r.path == PATHS[0]).map(|r| r.size).min();
    let mut out = Vec::new();
    let descriptor = largest.and_then(|s| row(PATHS[1], s));
    let inline = smallest.and_then(|s| row(PATHS[0], s));
    let measured = descriptor
        .and_then(|d| d.bytes_per_second)
        .zip(inline.and_then(|i| i.bytes_per_second))
        .and_then(|(d, i)| ratio(d, i));
    let invalid = [descriptor, inline]
        .into_iter()
        .flatten()
        .find(|r| !r.check.is_trustworthy())
        .map(|r| format!("{} {}: not every message checked out", r.path, size_text(r.size)));
    out.push(SizesTarget {
        id: "descriptor-64k-vs-inline-64b".into(),
        description: format!(
            "descriptor-mover at {} vs inline-mover at {} (bytes/s)",
            largest.map_or("?".into(), size_text),
            smallest.map_or("?".into(), size_text)
        ),
        bound: Bound::AtLeast,
        limit: TARGET_BYTES_RATIO,
        measured,
        outcome: TargetOutcome::judge(Bound::AtLeast, TARGET_BYTES_RATIO, measured, invalid.as_deref()),
        not_applicable_because: invalid,
        detail: format!(
            "{} B/s over {} B/s",
            descriptor.and_then(|d| d.bytes_per_second).map_or("-".into(), |b| format!("{b:.4e}")),
            inline.and_then(|i| i.bytes_per_second).map_or("-".into(), |b| format!("{b:.4e}"))
        ),
    });
    let plain = analysis.cost.iter().find(|c| c.path == COST_PLAIN);
    let with = analysis.cost.iter().find(|c| c.path == COST_DESCRIPTOR);
    // Each round's two streams ran back to back, so they shared the
    // machine's mood: the median of the rounds' own ratios.
    let measured = median(&mut per_round(plain, with));
    let invalid = [plain, with]
        .into_iter()
        .flatten()
        .find(|c| !c.check.is_trustworthy())
        .map(|c| format!("{}: not every message checked out", c.path));
    out.push(SizesTarget {
        id: "mover-cost-descriptor-vs-plain".into(),
        description: "mover stream, time per one-slot message with a descriptor vs without (median of the rounds' ratios)".into(),
        bound: Bound::AtMost,
        limit: TARGET_COST_RATIO,
        measured,
        outcome: TargetOutcome::judge(Bound::AtMost, TARGET_COST_RATIO, measured, invalid.as_deref()),
        not_applicable_because: invalid,
        detail: format!(
            "medians {} ns over {} ns per message, {} + {} messages; per round: {}; round-trip medians {} / {} ns = {}",
            with.and_then(|w| w.ns_per_message).map_or("-".into(), |v| format!("{v:.1}")),
            plain.and_then(|p| p.ns_per_message).map_or("-".into(), |v| format!("{v:.1}")),
            with.map_or(0, |w| w.messages),
            plain.map_or(0, |p| p.messages),
            round_ratios(plain, with),
            with.and_then(|w| w.rtt_median_ns).map_or("-".into(), |v| format!("{v:.0}")),
            plain.and_then(|p| p.rtt_median_ns).map_or("-".into(), |v| format!("{v:.0}")),
            with.and_then(|w| w.rtt_median_ns)
                .zip(plain.and_then(|p| p.rtt_median_ns))
                .and_then(|(w, p)| ratio(w, p))
                .map_or("-".into(), |r| format!("{r:.2}x")),
        ),
    });
    out
}

/// Each round's with-descriptor time over the same round's plain time.
fn per_round(plain: Option<&CostRow>, with: Option<&CostRow>) -> Vec<f64> {
    let (Some(plain), Some(with)) = (plain, with) else { return Vec::new() };
    plain.rounds_ns_per_message.iter().zip(&with.rounds_ns_per_message).filter_map(|(p, w)| ratio(*w, *p)).collect()
}

/// `1.05x 0.98x …`: [`per_round`] as text.
fn round_ratios(plain: Option<&CostRow>, with: Option<&CostRow>) -> String {
    let ratios: Vec<String> = per_round(plain, with).iter().map(|r| format!("{r:.2}x")).collect();
    if ratios.is_empty() { "-".into() } else { ratios.join(" ") }
}

fn warnings(run: &Run, analysis: &SizesAnalysis) -> Vec<String> {
    let mut out = Vec::new();
    if analysis.rows.is_empty() {
        out.push("no sizes-rtt or sizes-stream records in this boot".to_string());
    }
    for row in analysis.rows.iter().filter(|r| !r.check.is_trustworthy()) {
        out.push(format!(
            "{} at {}: round trips ok {}/{}, stream ok {}/{}",
            row.path,
            size_text(row.size),
            row.rtt_ok.map_or("-".into(), |v| v.to_string()),
            row.rtt_n.map_or("-".into(), |v| v.to_string()),
            row.stream_ok.map_or("-".into(), |v| v.to_string()),
            row.stream_n.map_or("-".into(), |v| v.to_string()),
        ));
    }
    for other in run.other_records.iter().filter(|r| r.kind == "dropped") {
        out.push(format!("a stream was dropped (TSC went backwards): {:?}", other.fields));
    }
    if run.end_line.is_none() {
        out.push("the boot's block was cut short (no BENCH-END)".to_string());
    }
    out
}
