//! Which IPC path a row measures, how many cores that path keeps busy, and
//! what the kernel's phase counters must show for it: the positive control
//! that makes the mover's zero mean something.
//!
//! ```text
//! phase (bench_mark)       row                                   per round trip / message, summed over cores
//! mover-rtt                mover-rtt, fewest rings, no extra      cr3 = 0, syscalls = 0
//! mover-stream             mover-stream batch=1, fewest rings     cr3 = 0, syscalls = 0
//! direct-ring-user-rtt     user-direct-ring-rtt                   cr3 = 0, syscalls = 0
//! direct-ring-user-stream  user-direct-ring-stream (batch 1 or first)  cr3 = 0, syscalls = 0
//! two-hop-mover            two-hop-rtt path=mover                 cr3 = 0, syscalls = 0
//! sync-same-rtt            sync-call-rtt placement=same-core      cr3 >= 2, syscalls >= 2
//! sync-same-stream         sync-call-stream placement=same-core   cr3 >= 2, syscalls >= 2
//! sync-cross-rtt           sync-call-rtt placement=cross-core     syscalls >= 2, interrupts (IPIs) >= 2
//! sync-cross-stream        sync-call-stream placement=cross-core  syscalls >= 2, interrupts (IPIs) >= 2
//! two-hop-sync             two-hop-rtt path=sync                  cr3 >= 4, syscalls >= 4 (nested same-core calls)
//! mover-rtt-idle, -written, mover-stream-idle, -written  (writers boot) the row with that extra=   cr3 = 0, syscalls = 0
//! ```
//!
//! A same-core call switches address space to the server and back (two CR3
//! writes) and enters the kernel twice (call, reply); a cross-core call
//! keeps each server on its own core (CR3 may stay 0) but enters the kernel
//! twice and wakes the other core twice. The sync two-hop
//! (`bench-twohop.toml`) is a nested call on one core: the client calls A,
//! A calls B, B answers A, A answers the client — four system calls and
//! four direct switches per round trip; its mover twin is three mover hops
//! and enters the kernel never. A row whose counters contradict
//! its path is a failure of the report ([`RowCounters::contradictions`]),
//! not a warning: a zero next to a positive control that also reads zero
//! proves nothing.
//!
//! Cores used (for "per core used"): the mover path keeps three busy
//! (client, mover, echo), a same-core call one, a cross-core call two, a
//! ring between two servers (or two kernel loops) two.

use serde::{Deserialize, Serialize};

use super::record_figures::{DIRECT_STREAM, LatencyFigure, MOVER_RTT, MOVER_STREAM, StreamFigure, row_label};
use crate::serial_log::CoreCounters;

/// Latency record of a synchronous call round trip.
pub const SYNC_CALL_RTT: &str = "sync-call-rtt";
/// Stream record of back-to-back synchronous calls (calls/s).
pub const SYNC_CALL_STREAM: &str = "sync-call-stream";
/// Latency record of a round trip over a ring between two servers.
pub const USER_DIRECT_RTT: &str = "user-direct-ring-rtt";
/// Stream record over a ring between two servers.
pub const USER_DIRECT_STREAM: &str = "user-direct-ring-stream";
/// Latency record client -> A -> B -> client.
pub const TWO_HOP_RTT: &str = "two-hop-rtt";
/// `placement=` of a call whose client and server share a core.
pub const SAME_CORE: &str = "same-core";
/// `placement=` of a call whose client and server run on two cores.
pub const CROSS_CORE: &str = "cross-core";

/// The IPC path a row measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IpcPath {
    /// Server -> mover -> server.
    Mover,
    /// The kernel's own ring between two cores (the floor for streams).
    KernelDirectRing,
    /// A ring between two servers, no mover.
    UserDirectRing,
    /// A synchronous call, client and server on one core.
    SyncSameCore,
    /// A synchronous call, client and server on two cores.
    SyncCrossCore,
    /// Client -> A -> B -> client through the mover.
    TwoHopMover,
    /// Client -> A -> B -> client with synchronous calls.
    TwoHopSync,
}

impl IpcPath {
    /// Cores the path keeps busy while it runs, where that is fixed by the
    /// path (the divisor of "per core used").
    pub fn cores_used(self) -> Option<u32> {
        match self {
            IpcPath::Mover => Some(3),
            IpcPath::KernelDirectRing | IpcPath::UserDirectRing | IpcPath::SyncCrossCore => Some(2),
            IpcPath::SyncSameCore => Some(1),
            IpcPath::TwoHopMover | IpcPath::TwoHopSync => None,
        }
    }

    /// The path of a latency row, if it is one of the compared paths.
    pub fn of_latency(figure: &LatencyFigure) -> Option<IpcPath> {
        match figure.name.as_str() {
            MOVER_RTT => Some(IpcPath::Mover),
            "direct-ring-rtt" => Some(IpcPath::KernelDirectRing),
            USER_DIRECT_RTT => Some(IpcPath::UserDirectRing),
            SYNC_CALL_RTT => sync_placement(figure.variant.placement.as_deref()),
            TWO_HOP_RTT => match figure.variant.path.as_deref() {
                Some("mover") => Some(IpcPath::TwoHopMover),
                Some("sync") => Some(IpcPath::TwoHopSync),
                _ => None,
            },
            _ => None,
        }
    }

    /// The path of a stream row, if it is one of the compared paths.
    pub fn of_stream(figure: &StreamFigure) -> Option<IpcPath> {
        match figure.name.as_str() {
            MOVER_STREAM => Some(IpcPath::Mover),
            DIRECT_STREAM => Some(IpcPath::KernelDirectRing),
            USER_DIRECT_STREAM => Some(IpcPath::UserDirectRing),
            SYNC_CALL_STREAM => sync_placement(figure.variant.placement.as_deref()),
            _ => None,
        }
    }
}

fn sync_placement(placement: Option<&str>) -> Option<IpcPath> {
    match placement {
        Some(SAME_CORE) => Some(IpcPath::SyncSameCore),
        Some(CROSS_CORE) => Some(IpcPath::SyncCrossCore),
        _ => None,
    }
}

/// What a phase's counters must show per round trip (or message, or call).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// No kernel entry: 0 CR3 writes and 0 system calls.
    NoKernelEntry,
    /// >= 2 CR3 writes and >= 2 system calls.
    SameCoreCall,
    /// >= 2 system calls and >= 2 interrupts (IPIs); CR3 may be 0.
    CrossCoreCall,
    /// At least 4 CR3 writes and 4 system calls: a call whose callee calls
    /// a third server on the same core (two calls, two replies, each a
    /// direct switch).
    NestedSameCoreCalls,
}

impl Expectation {
    /// `(counter name, at least, at most)` per operation.
    fn rules(self) -> &'static [(Counter, f64, Option<f64>)] {
        match self {
            Expectation::NoKernelEntry => &[(Counter::Cr3, 0.0, Some(0.0)), (Counter::Syscalls, 0.0, Some(0.0))],
            Expectation::SameCoreCall => &[(Counter::Cr3, 2.0, None), (Counter::Syscalls, 2.0, None)],
            Expectation::CrossCoreCall => &[(Counter::Syscalls, 2.0, None), (Counter::Interrupts, 2.0, None)],
            Expectation::NestedSameCoreCalls => &[(Counter::Cr3, 4.0, None), (Counter::Syscalls, 4.0, None)],
        }
    }

    /// The rule in words: `cr3 = 0, syscalls = 0`.
    pub fn text(self) -> String {
        self.rules()
            .iter()
            .map(|(counter, least, most)| match most {
                Some(most) if most == least => format!("{} = {least}", counter.name()),
                _ => format!("{} >= {least}", counter.name()),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Counter {
    Cr3,
    Syscalls,
    Interrupts,
}

impl Counter {
    fn name(self) -> &'static str {
        match self {
            Counter::Cr3 => "cr3 writes",
            Counter::Syscalls => "syscalls",
            Counter::Interrupts => "interrupts",
        }
    }
}

/// A phase the guest brackets with `bench_mark`, the row it covers and the
/// counts its path must show.
struct PhaseRule {
    phase: &'static str,
    path: IpcPath,
    stream: bool,
    expect: Expectation,
}

/// The writers boot's mover phases (`bench-writers.toml`): the row with
/// `extra=` the given kind.
const WRITER_PHASES: [(&str, bool, &str); 4] = [
    ("mover-rtt-idle", false, "idle"),
    ("mover-rtt-written", false, "written"),
    ("mover-stream-idle", true, "idle"),
    ("mover-stream-written", true, "written"),
];

const PHASE_RULES: [PhaseRule; 10] = [
    PhaseRule { phase: "mover-rtt", path: IpcPath::Mover, stream: false, expect: Expectation::NoKernelEntry },
    PhaseRule { phase: "mover-stream", path: IpcPath::Mover, stream: true, expect: Expectation::NoKernelEntry },
    PhaseRule {
        phase: "direct-ring-user-rtt",
        path: IpcPath::UserDirectRing,
        stream: false,
        expect: Expectation::NoKernelEntry,
    },
    PhaseRule {
        phase: "direct-ring-user-stream",
        path: IpcPath::UserDirectRing,
        stream: true,
        expect: Expectation::NoKernelEntry,
    },
    PhaseRule { phase: "two-hop-mover", path: IpcPath::TwoHopMover, stream: false, expect: Expectation::NoKernelEntry },
    PhaseRule { phase: "sync-same-rtt", path: IpcPath::SyncSameCore, stream: false, expect: Expectation::SameCoreCall },
    PhaseRule {
        phase: "sync-same-stream",
        path: IpcPath::SyncSameCore,
        stream: true,
        expect: Expectation::SameCoreCall,
    },
    PhaseRule {
        phase: "sync-cross-rtt",
        path: IpcPath::SyncCrossCore,
        stream: false,
        expect: Expectation::CrossCoreCall,
    },
    PhaseRule {
        phase: "sync-cross-stream",
        path: IpcPath::SyncCrossCore,
        stream: true,
        expect: Expectation::CrossCoreCall,
    },
    PhaseRule {
        phase: "two-hop-sync",
        path: IpcPath::TwoHopSync,
        stream: false,
        expect: Expectation::NestedSameCoreCalls,
    },
];

/// True when the phase is one whose path enters the kernel on purpose
/// (a sync-call phase): its counts are not part of the zero claims.
pub fn phase_enters_kernel(phase: &str) -> bool {
    PHASE_RULES.iter().any(|rule| rule.phase == phase && rule.expect != Expectation::NoKernelEntry)
}

/// Whether a row's counters agree with its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CounterVerdict {
    Consistent,
    /// At least one count per operation is outside what the path implies.
    Contradicts,
    /// The phase has no counters record, or lacks a count the rule needs.
    NotReported,
}

/// One row's phase counters, summed over cores and divided by the row's
/// operations (round trips, messages or calls).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowCounters {
    /// The row in words (`sync-call-rtt same-core`).
    pub row: String,
    /// Line of the row's record.
    pub line: usize,
    pub path: IpcPath,
    pub phase: String,
    /// `round trip`, `message` or `call`.
    pub per: String,
    /// The row's `n`: the operations the phase covered.
    pub operations: u64,
    /// Cores with a counters record in the phase.
    pub cores: Vec<u32>,
    pub cr3_writes: Option<u64>,
    pub syscalls: Option<u64>,
    pub interrupts: Option<u64>,
    pub cr3_writes_per_operation: Option<f64>,
    pub syscalls_per_operation: Option<f64>,
    pub interrupts_per_operation: Option<f64>,
    pub expectation: Expectation,
    pub verdict: CounterVerdict,
    /// One sentence per count that contradicts the path (empty otherwise).
    pub contradictions: Vec<String>,
}

fn sum(records: &[&CoreCounters], count: impl Fn(&CoreCounters) -> Option<u64>) -> Option<u64> {
    if records.is_empty() {
        return None;
    }
    records.iter().map(|record| count(record)).try_fold(0u64, |total, count| Some(total.saturating_add(count?)))
}

/// The counters of every row that has a phase rule, in rule order; rows
/// whose phase has no counters record are `NotReported`.
pub(crate) fn row_counters(
    latencies: &[LatencyFigure],
    streams: &[StreamFigure],
    counters: &[CoreCounters],
    mover_rtt: Option<&LatencyFigure>,
    mover_stream: Option<&StreamFigure>,
) -> Vec<RowCounters> {
    let mut rows = Vec::new();
    let writer_rules = WRITER_PHASES.iter().map(|(phase, stream, extra)| {
        (PhaseRule { phase, path: IpcPath::Mover, stream: *stream, expect: Expectation::NoKernelEntry }, Some(*extra))
    });
    let rules = PHASE_RULES.into_iter().map(|rule| (rule, None)).chain(writer_rules);
    for (rule, writer_extra) in rules {
        let rule = &rule;
        let of_extra = |extra: Option<&str>| writer_extra.is_some_and(|kind| extra == Some(kind));
        // The base mover rows are those with empty (or no) extra rings;
        // the writers boot's idle rows belong to their own phase.
        let mover_stream = mover_stream.filter(|f| f.variant.extra.as_deref() != Some("idle"));
        let mover_rtt = mover_rtt.filter(|f| f.variant.extra.as_deref() != Some("idle"));
        let row = if rule.stream {
            let figure = match rule.path {
                IpcPath::Mover if writer_extra.is_some() => {
                    streams.iter().find(|f| f.name == MOVER_STREAM && of_extra(f.variant.extra.as_deref()))
                }
                IpcPath::Mover => mover_stream,
                path => {
                    let of_path: Vec<&StreamFigure> =
                        streams.iter().filter(|f| IpcPath::of_stream(f) == Some(path)).collect();
                    of_path.iter().find(|f| f.batch.unwrap_or(1) == 1).or(of_path.first()).copied()
                }
            };
            figure.map(|f| {
                let per = if f.name == SYNC_CALL_STREAM { "call" } else { "message" };
                (row_label(&f.name, f.rings, f.batch, &f.variant), f.line, f.n, per)
            })
        } else {
            let figure = match rule.path {
                IpcPath::Mover if writer_extra.is_some() => {
                    latencies.iter().find(|f| f.name == MOVER_RTT && of_extra(f.variant.extra.as_deref()))
                }
                IpcPath::Mover => mover_rtt,
                path => latencies.iter().find(|f| IpcPath::of_latency(f) == Some(path)),
            };
            figure.map(|f| (row_label(&f.name, f.rings, None, &f.variant), f.line, f.n, "round trip"))
        };
        let Some((row, line, operations, per)) = row else {
            continue;
        };
        let records: Vec<&CoreCounters> = counters.iter().filter(|c| c.phase == rule.phase).collect();
        let cr3_writes = sum(&records, |c| c.cr3_writes);
        let syscalls = sum(&records, |c| c.syscalls);
        let interrupts = sum(&records, |c| c.interrupts);
        let per_operation =
            |count: Option<u64>| count.filter(|_| operations > 0).map(|count| count as f64 / operations as f64);
        let (cr3_per, syscalls_per, interrupts_per) =
            (per_operation(cr3_writes), per_operation(syscalls), per_operation(interrupts));
        let mut contradictions = Vec::new();
        let mut missing = false;
        for (counter, least, most) in rule.expect.rules() {
            let value = match counter {
                Counter::Cr3 => cr3_per,
                Counter::Syscalls => syscalls_per,
                Counter::Interrupts => interrupts_per,
            };
            let Some(value) = value else {
                missing = true;
                continue;
            };
            let below = value < *least;
            let above = most.is_some_and(|most| value > most);
            if below || above {
                let wanted = match most {
                    Some(most) if most == least => format!("= {least}"),
                    _ => format!(">= {least}"),
                };
                contradictions.push(format!(
                    "row {row} (line {line}, phase {}): {} per {per} {value:.2}, expected {wanted}: the counters contradict its path",
                    rule.phase,
                    counter.name()
                ));
            }
        }
        let verdict = if !contradictions.is_empty() {
            CounterVerdict::Contradicts
        } else if missing {
            CounterVerdict::NotReported
        } else {
            CounterVerdict::Consistent
        };
        let mut cores: Vec<u32> = records.iter().map(|c| c.core).collect();
        cores.sort_unstable();
        cores.dedup();
        rows.push(RowCounters {
            row,
            line,
            path: rule.path,
            phase: rule.phase.to_string(),
            per: per.to_string(),
            operations,
            cores,
            cr3_writes,
            syscalls,
            interrupts,
            cr3_writes_per_operation: cr3_per,
            syscalls_per_operation: syscalls_per,
            interrupts_per_operation: interrupts_per,
            expectation: rule.expect,
            verdict,
            contradictions,
        });
    }
    rows
}
