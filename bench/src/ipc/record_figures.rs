//! The figures of one IPC record: a latency record's times and ratio to
//! the floor, a stream record's rate and ratio to the direct ring, a
//! counters record's counts per message.
//!
//! Each ratio divides by a baseline of the same run, passed in by the
//! caller; a figure keeps its value when its replies did not all check out,
//! and says so in `check`.

use serde::{Deserialize, Serialize};

use crate::figures::{MessageCheck, cycles_to_ns, ratio};
use crate::serial_log::{CoreCounters, ExtraKeys, LatencySample, StreamSample};

/// Name of the stream record all streams are compared with.
pub const DIRECT_STREAM: &str = "direct-ring-stream";
/// Slots of the direct ring the stream baseline uses (`direct-ring-stream`
/// also runs at the stream floor's size, `slots=4096`, to compare with it).
pub const DIRECT_RING_SLOTS: u32 = 64;

/// Whether a `direct-ring-stream` record with `slots` is the baseline's
/// usual 64-slot ring (records from before the size was printed had 64).
pub fn is_usual_direct_ring(slots: Option<u32>) -> bool {
    slots.is_none_or(|slots| slots == DIRECT_RING_SLOTS)
}
/// Stream record of the least a 64-byte message costs between two cores
/// (plain slots, ordinary stores, one index store per message; kernel
/// `floors.rs`).
pub const STREAM_FLOOR: &str = "stream-floor";
/// Latency record of the mover round trip.
pub const MOVER_RTT: &str = "mover-rtt";
/// Stream record through the mover.
pub const MOVER_STREAM: &str = "mover-stream";

/// The keys that tell records of one name apart besides `rings` and
/// `batch`, read from the record's extra keys (absent keys are `None`):
///
/// ```text
/// placement=same-core|cross-core   sync-call rows: client and server on one core or two
/// path=mover|sync                  two-hop-rtt: which IPC the hops use
/// extra=empty|written|idle         mover rows: what the rings beyond the base are
/// extra_rings=N                    how many of `rings` are those extra rings
/// slots=N                          stream-floor and direct-ring-stream rows: slots in the ring
/// writers=K                        ring-writer servers in the boot (their outboxes
///                                  are among `rings`)
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Variant {
    pub placement: Option<String>,
    pub path: Option<String>,
    pub extra: Option<String>,
    pub extra_rings: Option<u32>,
    pub writers: Option<u32>,
    /// Slots of the ring (stream-floor and direct-ring-stream rows, which
    /// run with two sizes).
    #[serde(default)]
    pub slots: Option<u32>,
}

impl Variant {
    pub(crate) fn of(keys: &ExtraKeys) -> Variant {
        let number = |key: &str| keys.get(key).and_then(|value| value.parse().ok());
        Variant {
            placement: keys.get("placement").cloned(),
            path: keys.get("path").cloned(),
            extra: keys.get("extra").cloned(),
            extra_rings: number("extra_rings"),
            writers: number("writers"),
            slots: number("slots"),
        }
    }
}

/// What a row measured, in words for the table: `placement=same-core`,
/// `path=mover`, `rings=64: 62 empty`, `rings=4: 2 written by writers`,
/// `batch=8 rings=2: no extra`.
pub fn variant_text(rings: Option<u32>, batch: Option<u32>, variant: &Variant) -> String {
    let mut parts = Vec::new();
    if let Some(placement) = &variant.placement {
        parts.push(placement.clone());
    }
    if let Some(path) = &variant.path {
        parts.push(format!("path={path}"));
    }
    if let Some(batch) = batch {
        parts.push(format!("batch={batch}"));
    }
    if let Some(slots) = variant.slots {
        parts.push(format!("slots={slots}"));
    }
    if let Some(rings) = rings {
        let extra = match (variant.extra_rings, variant.extra.as_deref()) {
            (Some(0), _) => Some("no extra".to_string()),
            (Some(n), Some("empty")) => Some(format!("{n} empty")),
            (Some(n), Some(kind)) => Some(format!("{n} {kind}")),
            (Some(n), None) => Some(format!("{n} extra")),
            (None, _) => None,
        };
        let writers = variant.writers.map(|k| format!("{k} writer cores"));
        let notes: Vec<String> = extra.into_iter().chain(writers).collect();
        if notes.is_empty() {
            parts.push(format!("rings={rings}"));
        } else {
            parts.push(format!("rings={rings}: {}", notes.join(", ")));
        }
    }
    if parts.is_empty() { "-".to_string() } else { parts.join(" ") }
}

/// A row's name and what it measured, for messages: `mover-rtt rings=2: no
/// extra`, `sync-call-rtt same-core`, `user-direct-ring-rtt`.
pub fn row_label(name: &str, rings: Option<u32>, batch: Option<u32>, variant: &Variant) -> String {
    match variant_text(rings, batch, variant).as_str() {
        "-" => name.to_string(),
        what => format!("{name} {what}"),
    }
}

/// One latency record with times and its ratio to the floor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencyFigure {
    pub name: String,
    pub rings: Option<u32>,
    /// What else tells this record from others of its name (placement,
    /// path, extra rings); see [`Variant`].
    #[serde(default)]
    pub variant: Variant,
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
    /// Samples dropped because the TSC went backwards (`None`: not reported).
    #[serde(default)]
    pub tsc_backwards: Option<u64>,
    /// Median over the mover's base round trip (fewest rings, no extra) of
    /// the same run.
    #[serde(default)]
    pub over_mover: Option<f64>,
    /// Line number in the log.
    pub line: usize,
}

impl LatencyFigure {
    /// Timed samples behind the median: `n` less those the TSC dropped.
    pub fn samples_kept(&self) -> u64 {
        self.n.saturating_sub(self.tsc_backwards.unwrap_or(0))
    }

    /// True when every reply checked out and at least one sample was kept.
    pub fn is_trustworthy(&self) -> bool {
        self.check.is_trustworthy() && self.samples_kept() > 0
    }
}

/// One stream record with its rate and its ratio to the direct ring.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamFigure {
    pub name: String,
    pub batch: Option<u32>,
    pub rings: Option<u32>,
    #[serde(default)]
    pub variant: Variant,
    pub n: u64,
    pub ok: Option<u64>,
    pub check: MessageCheck,
    pub seconds: f64,
    pub messages_per_second: f64,
    /// `None` when the stream sent no message.
    pub ns_per_message: Option<f64>,
    /// Rate over the `direct-ring-stream` batch-1 rate.
    pub over_direct_stream: Option<f64>,
    /// `tsc_backwards=` of the record (`None`: not reported).
    #[serde(default)]
    pub tsc_backwards: Option<u64>,
    /// Rate over the mover's base stream (batch 1, fewest rings) of the
    /// same run.
    #[serde(default)]
    pub over_mover: Option<f64>,
    /// Cores the row's path keeps busy (mover 3, same-core call 1, …).
    #[serde(default)]
    pub cores_used: Option<u32>,
    /// Messages (or calls) per second divided by `cores_used`.
    #[serde(default)]
    pub per_core_per_second: Option<f64>,
    /// Line number in the log.
    pub line: usize,
}

impl StreamFigure {
    /// True when every message checked out.
    pub fn is_trustworthy(&self) -> bool {
        self.check.is_trustworthy()
    }
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

pub(crate) fn latency_figure(sample: &LatencySample, tsc_hz: u64, floor_median_ns: Option<f64>) -> LatencyFigure {
    let median_ns = cycles_to_ns(sample.median_cycles, tsc_hz);
    LatencyFigure {
        name: sample.name.clone(),
        rings: sample.rings,
        variant: Variant::of(&sample.extra),
        n: sample.n,
        ok: sample.ok,
        check: MessageCheck::of(sample.ok, sample.n),
        median_ns,
        p99_ns: cycles_to_ns(sample.p99_cycles, tsc_hz),
        min_ns: sample.min_cycles.map(|cycles| cycles_to_ns(cycles, tsc_hz)),
        max_ns: sample.max_cycles.map(|cycles| cycles_to_ns(cycles, tsc_hz)),
        one_way_ns: median_ns / 2.0,
        median_over_floor: floor_median_ns.and_then(|floor| ratio(median_ns, floor)),
        tsc_backwards: sample.tsc_backwards,
        over_mover: None,
        line: sample.line,
    }
}

pub(crate) fn messages_per_second(sample: &StreamSample, tsc_hz: u64) -> f64 {
    // The parser rejects `cycles=0`.
    sample.n as f64 * tsc_hz as f64 / sample.cycles as f64
}

pub(crate) fn stream_figure(sample: &StreamSample, tsc_hz: u64, direct_rate: Option<f64>) -> StreamFigure {
    let rate = messages_per_second(sample, tsc_hz);
    let seconds = sample.cycles as f64 / tsc_hz as f64;
    StreamFigure {
        name: sample.name.clone(),
        batch: sample.batch,
        rings: sample.rings,
        variant: Variant::of(&sample.extra),
        n: sample.n,
        ok: sample.ok,
        check: MessageCheck::of(sample.ok, sample.n),
        seconds,
        messages_per_second: rate,
        ns_per_message: (sample.n > 0).then(|| seconds * 1e9 / sample.n as f64),
        over_direct_stream: direct_rate.and_then(|direct| ratio(rate, direct)),
        tsc_backwards: sample.tsc_backwards,
        over_mover: None,
        cores_used: None,
        per_core_per_second: None,
        line: sample.line,
    }
}

pub(crate) fn counter_figure(counters: &CoreCounters) -> CounterFigure {
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
