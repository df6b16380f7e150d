//! The power benchmark's own vocabulary on top of [`crate::serial_log`]:
//! which runs are power boots, their `power-rtt` / `power-wakeup` records
//! filed by `interval_us`, and the tick counts of the counters records.
//!
//! Text becomes numbers here and nowhere else: a record or key that cannot
//! be read is skipped (or treated as unknown) with a warning, never a panic.

use std::collections::BTreeMap;

use crate::serial_log::{CoreCounters, LatencySample, Run};

/// `system=` values of power boots start with this; the rest is the policy.
pub const SYSTEM_PREFIX: &str = "power-";
/// Latency record of the round trip under a power policy.
pub const POWER_RTT: &str = "power-rtt";
/// Latency record of the one-way wake-up under a power policy.
pub const POWER_WAKEUP: &str = "power-wakeup";
/// Server that generates the load (it spins by design).
pub const CLIENT_SERVER: &str = "benchclient";
/// Server that answers every message.
pub const ECHO_SERVER: &str = "echo";
/// `interval_us` of back-to-back load.
pub const BACK_TO_BACK_US: u64 = 0;
/// `interval_us` of one message per millisecond.
pub const ONE_PER_MS_US: u64 = 1000;

/// The policy of a power boot (`hlt` for `system=power-hlt`), or `None` for
/// any other block.
pub fn power_policy(run: &Run) -> Option<&str> {
    run.begin_extra.get("system")?.strip_prefix(SYSTEM_PREFIX).filter(|policy| !policy.is_empty())
}

/// The runs whose `BENCH-BEGIN` says `system=power-<policy>`, in log order
/// (unknown policy names included).
pub fn power_runs(runs: &[Run]) -> Vec<&Run> {
    runs.iter().filter(|run| power_policy(run).is_some()).collect()
}

/// `back-to-back`, `1 msg / 10 µs`, `1 msg / 1 ms`.
pub fn interval_text(interval_us: u64) -> String {
    match interval_us {
        BACK_TO_BACK_US => "back-to-back".to_string(),
        us if us % 1000 == 0 => format!("1 msg / {} ms", us / 1000),
        us => format!("1 msg / {us} µs"),
    }
}

/// The `power-rtt` and `power-wakeup` records of one interval.
#[derive(Default)]
pub(crate) struct IntervalRecords<'a> {
    pub(crate) rtt: Option<&'a LatencySample>,
    pub(crate) wakeup: Option<&'a LatencySample>,
}

/// The `power-rtt` and `power-wakeup` records of a boot of `policy` by
/// `interval_us`. A record without a readable `interval_us` is skipped, a
/// repeated one ignored, and a `policy=` that disagrees with `BEGIN`
/// noted; each with a warning.
pub(crate) fn records_by_interval<'a>(
    run: &'a Run,
    policy: &str,
    warnings: &mut Vec<String>,
) -> BTreeMap<u64, IntervalRecords<'a>> {
    let mut by_interval: BTreeMap<u64, IntervalRecords> = BTreeMap::new();
    for sample in &run.latencies {
        if sample.name != POWER_RTT && sample.name != POWER_WAKEUP {
            continue;
        }
        let record_place = format!("{} (line {}) in the {policy} boot", sample.name, sample.line);
        if let Some(other) = sample.extra.get("policy").filter(|other| *other != policy) {
            warnings.push(format!(
                "{record_place} says policy={other}: the row is filed under {policy}, as BENCH-BEGIN says"
            ));
        }
        let Some(interval_text) = sample.extra.get("interval_us") else {
            warnings.push(format!("{record_place} has no interval_us: record skipped"));
            continue;
        };
        let Ok(interval) = interval_text.parse::<u64>() else {
            warnings.push(format!("{record_place}: interval_us={interval_text} is not a number: record skipped"));
            continue;
        };
        let records = by_interval.entry(interval).or_default();
        let slot = if sample.name == POWER_RTT { &mut records.rtt } else { &mut records.wakeup };
        if slot.is_some() {
            warnings.push(format!("{record_place} repeats interval_us={interval}: only the first is used"));
        } else {
            *slot = Some(sample);
        }
    }
    by_interval
}

/// Name of the counters phase of one interval: `power-<I>us`.
pub(crate) fn phase_name(interval_us: u64) -> String {
    format!("power-{interval_us}us")
}

/// The counters records of one phase, by the role of their core.
pub(crate) struct PhaseCounters<'a> {
    /// False when the phase has no counters record at all.
    pub(crate) reported: bool,
    pub(crate) echo: Option<&'a CoreCounters>,
    pub(crate) client: Option<&'a CoreCounters>,
    pub(crate) mover: Option<&'a CoreCounters>,
}

/// The counters of phase `power-<interval_us>us`: the cores that ran
/// `echo`, `benchclient` and the mover.
pub(crate) fn phase_counters(run: &Run, interval_us: u64) -> PhaseCounters<'_> {
    let phase = phase_name(interval_us);
    let in_phase: Vec<&CoreCounters> = run.counters.iter().filter(|c| c.phase == phase).collect();
    let by_server = |name: &str| in_phase.iter().copied().find(|c| server_name(c) == Some(name));
    PhaseCounters {
        reported: !in_phase.is_empty(),
        echo: by_server(ECHO_SERVER),
        client: by_server(CLIENT_SERVER),
        mover: in_phase.iter().copied().find(|c| c.role.as_deref() == Some("mover")),
    }
}

pub(crate) fn server_name(counters: &CoreCounters) -> Option<&str> {
    counters.extra.get("server").map(String::as_str)
}

/// A tick count (`sleep_ticks=`, `total_ticks=`, …) of a counters record;
/// `None` when absent, or unreadable (with a warning).
pub(crate) fn tick_count(counters: &CoreCounters, key: &str, warnings: &mut Vec<String>) -> Option<u64> {
    let text = counters.extra.get(key)?;
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            warnings
                .push(format!("counters (line {}): {key}={text} is not a number: treated as unknown", counters.line));
            None
        }
    }
}
