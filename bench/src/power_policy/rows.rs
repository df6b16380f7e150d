//! One power boot reduced to rows: where the boot is in the log
//! ([`PowerBoot`]) and one [`PowerRow`] per interval with its latencies,
//! ratios and time shares; and the never-sleeping baseline every "vs base"
//! figure divides by.
//!
//! Invariants:
//! - a latency is divided only by the same boot's floor (`rtt_over_floor`);
//!   across boots only those ratios are divided (`rtt_over_baseline`);
//! - the baseline is the first `spin` boot, else the first `pause` boot as a
//!   stand-in, else none; every row names the policy it used;
//! - anything missing is `None`, never a panic.

use serde::{Deserialize, Serialize};

use super::parse::{POWER_RTT, POWER_WAKEUP, phase_counters, phase_name, records_by_interval, tick_count};
use crate::figures::{FLOOR_LATENCY, MessageCheck, cycles_to_ns, ratio};
use crate::serial_log::{CoreCounters, LogNote, Run};

/// Known policies in table order; other names follow them.
pub const POLICY_ORDER: [&str; 4] = ["spin", "pause", "mwait", "hlt"];
/// The policy every "vs base" figure divides by when the log has it.
pub const SPIN_POLICY: &str = "spin";
/// The baseline's stand-in when the log has no spin boot: it never sleeps
/// either, but polls with `pause`.
pub const PAUSE_POLICY: &str = "pause";

/// One power boot: where it is in the log and what its figures rest on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerBoot {
    /// 1-based position of the run among all runs of the log.
    pub run: usize,
    pub policy: String,
    pub begin_line: usize,
    pub end_line: Option<usize>,
    pub end_status: Option<String>,
    pub accel: String,
    pub cpu: Option<String>,
    pub smp: Option<u32>,
    pub tsc_hz: u64,
    pub tsc_source: Option<String>,
    pub date: Option<String>,
    /// Median of this boot's `cacheline-pingpong`, the divisor of its RTTs.
    pub floor_median_ns: Option<f64>,
    /// Lines saying the boot's mechanism fell back (MWAIT -> HLT): its
    /// figures are then not the policy's, and its targets are n/a.
    #[serde(default)]
    pub fallbacks: Vec<LogNote>,
}

/// One policy × interval: latencies, ratios and time shares per role.
///
/// Flat, so that the same struct is a line of `power.csv`. Shares are
/// fractions (0.931 for 93.1 %).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerRow {
    /// 1-based position of the run among all runs of the log.
    pub run: usize,
    pub policy: String,
    pub interval_us: u64,
    pub accel: String,
    pub tsc_hz: u64,
    /// Line of the `power-rtt` record, if there is one.
    pub rtt_line: Option<usize>,
    pub rtt_n: Option<u64>,
    pub rtt_ok: Option<u64>,
    pub rtt_check: Option<MessageCheck>,
    pub rtt_median_cycles: Option<u64>,
    pub rtt_p99_cycles: Option<u64>,
    pub rtt_median_ns: Option<f64>,
    pub rtt_p99_ns: Option<f64>,
    /// Round trips dropped because the TSC went backwards (`tsc_backwards=`).
    #[serde(default)]
    pub rtt_tsc_backwards: Option<u64>,
    /// Same-boot `cacheline-pingpong` median.
    pub floor_median_ns: Option<f64>,
    /// RTT median over the same-boot floor median.
    pub rtt_over_floor: Option<f64>,
    /// `rtt_over_floor` over the baseline boot's `rtt_over_floor` at the
    /// same interval (a ratio of ratios across boots).
    pub rtt_over_baseline: Option<f64>,
    /// The policy `rtt_over_baseline` divides by: `spin`, or `pause` as a
    /// stand-in when there is no spin boot; `None` when there is neither.
    /// The same for every row of a table.
    pub baseline_policy: Option<String>,
    /// Line of the `power-wakeup` record, if there is one.
    pub wakeup_line: Option<usize>,
    pub wakeup_n: Option<u64>,
    pub wakeup_ok: Option<u64>,
    /// `None` when there is no wake-up record; `not-reported` without `ok`.
    pub wakeup_check: Option<MessageCheck>,
    pub wakeup_median_cycles: Option<u64>,
    pub wakeup_p99_cycles: Option<u64>,
    pub wakeup_median_ns: Option<f64>,
    pub wakeup_p99_ns: Option<f64>,
    /// Wake-ups dropped because echo's stamp was not between the client's
    /// send and receive stamps (the TSCs of two cores disagree).
    #[serde(default)]
    pub wakeup_tsc_backwards: Option<u64>,
    pub echo_core: Option<u32>,
    pub echo_asleep: Option<f64>,
    pub echo_paused: Option<f64>,
    pub benchclient_core: Option<u32>,
    pub benchclient_asleep: Option<f64>,
    pub benchclient_paused: Option<f64>,
    pub mover_core: Option<u32>,
    pub mover_asleep: Option<f64>,
    pub mover_paused: Option<f64>,
}

impl PowerRow {
    /// True when every reply behind the row checked out: the round trip has
    /// `ok == n` and the wake-up, if it reports `ok`, agrees too.
    pub fn is_trustworthy(&self) -> bool {
        self.rtt_check == Some(MessageCheck::AllChecked) && self.wakeup_check != Some(MessageCheck::Mismatch)
    }
}

pub(crate) fn policy_rank(policy: &str) -> usize {
    POLICY_ORDER.iter().position(|known| *known == policy).unwrap_or(POLICY_ORDER.len())
}

pub(crate) fn power_boot(position: usize, run: &Run, policy: &str) -> PowerBoot {
    PowerBoot {
        run: position,
        policy: policy.to_string(),
        begin_line: run.begin_line,
        end_line: run.end_line,
        end_status: run.end_status.clone(),
        accel: run.accel.clone(),
        cpu: run.cpu.clone(),
        smp: run.smp,
        tsc_hz: run.tsc_hz,
        tsc_source: run.tsc_source.clone(),
        date: run.date.clone(),
        floor_median_ns: run
            .latencies
            .iter()
            .find(|sample| sample.name == FLOOR_LATENCY)
            .map(|sample| cycles_to_ns(sample.median_cycles, run.tsc_hz)),
        fallbacks: run.fallbacks.clone(),
    }
}

/// The rows of one boot, one per `interval_us` it has records for.
pub(crate) fn rows_of_boot(boot: &PowerBoot, run: &Run, warnings: &mut Vec<String>) -> Vec<PowerRow> {
    let policy = boot.policy.as_str();
    let by_interval = records_by_interval(run, policy, warnings);
    if by_interval.is_empty() {
        warnings.push(format!(
            "the {policy} boot (run {}, line {}) has no {POWER_RTT} or {POWER_WAKEUP} record",
            boot.run, boot.begin_line
        ));
    }

    let mut missing_phases = Vec::new();
    let rows = by_interval
        .iter()
        .map(|(&interval, records)| {
            let counters = phase_counters(run, interval);
            if !counters.reported {
                missing_phases.push(phase_name(interval));
            }
            let echo = time_shares(counters.echo, warnings);
            let client = time_shares(counters.client, warnings);
            let mover = time_shares(counters.mover, warnings);
            let ns = |cycles: u64| cycles_to_ns(cycles, boot.tsc_hz);
            let rtt = records.rtt;
            let wakeup = records.wakeup;
            let rtt_median_ns = rtt.map(|s| ns(s.median_cycles));
            PowerRow {
                run: boot.run,
                policy: policy.to_string(),
                interval_us: interval,
                accel: boot.accel.clone(),
                tsc_hz: boot.tsc_hz,
                rtt_line: rtt.map(|s| s.line),
                rtt_n: rtt.map(|s| s.n),
                rtt_ok: rtt.and_then(|s| s.ok),
                rtt_check: rtt.map(|s| MessageCheck::of(s.ok, s.n)),
                rtt_median_cycles: rtt.map(|s| s.median_cycles),
                rtt_p99_cycles: rtt.map(|s| s.p99_cycles),
                rtt_median_ns,
                rtt_p99_ns: rtt.map(|s| ns(s.p99_cycles)),
                rtt_tsc_backwards: rtt.and_then(|s| s.tsc_backwards),
                floor_median_ns: boot.floor_median_ns,
                rtt_over_floor: rtt_median_ns.zip(boot.floor_median_ns).and_then(|(rtt, floor)| ratio(rtt, floor)),
                rtt_over_baseline: None,
                baseline_policy: None,
                wakeup_line: wakeup.map(|s| s.line),
                wakeup_n: wakeup.map(|s| s.n),
                wakeup_ok: wakeup.and_then(|s| s.ok),
                wakeup_check: wakeup.map(|s| MessageCheck::of(s.ok, s.n)),
                wakeup_median_cycles: wakeup.map(|s| s.median_cycles),
                wakeup_p99_cycles: wakeup.map(|s| s.p99_cycles),
                wakeup_median_ns: wakeup.map(|s| ns(s.median_cycles)),
                wakeup_p99_ns: wakeup.map(|s| ns(s.p99_cycles)),
                wakeup_tsc_backwards: wakeup.and_then(|s| s.tsc_backwards.or_else(|| tick_text(s, "tsc_out_of_order"))),
                echo_core: echo.core,
                echo_asleep: echo.asleep,
                echo_paused: echo.paused,
                benchclient_core: client.core,
                benchclient_asleep: client.asleep,
                benchclient_paused: client.paused,
                mover_core: mover.core,
                mover_asleep: mover.asleep,
                mover_paused: mover.paused,
            }
        })
        .collect();
    if !missing_phases.is_empty() {
        warnings.push(format!(
            "the {policy} boot (run {}) has no counters for phase {}: its time shares are unknown",
            boot.run,
            missing_phases.join(", ")
        ));
    }
    rows
}

/// An older guest's name for a count (`tsc_out_of_order=` before
/// `tsc_backwards=`), read from a record's unknown keys.
fn tick_text(sample: &crate::serial_log::LatencySample, key: &str) -> Option<u64> {
    sample.extra.get(key).and_then(|value| value.parse().ok())
}

/// Where one role ran in a phase and which share of the phase it slept and
/// paused.
struct TimeShares {
    core: Option<u32>,
    asleep: Option<f64>,
    paused: Option<f64>,
}

fn time_shares(counters: Option<&CoreCounters>, warnings: &mut Vec<String>) -> TimeShares {
    let Some(counters) = counters else {
        return TimeShares { core: None, asleep: None, paused: None };
    };
    let mut ticks = |key: &str| tick_count(counters, key, warnings);
    let total = ticks("total_ticks").filter(|total| *total > 0);
    let share = |part: Option<u64>| part.zip(total).and_then(|(part, total)| ratio(part as f64, total as f64));
    let asleep = share(ticks("sleep_ticks"));
    let paused = share(ticks("pause_ticks"));
    TimeShares { core: Some(counters.core), asleep, paused }
}

/// The never-sleeping baseline among `boots` (in table order): the first
/// spin boot, else the first pause boot as a stand-in, else none.
pub(crate) fn baseline_boot(boots: &[PowerBoot]) -> Option<&PowerBoot> {
    [SPIN_POLICY, PAUSE_POLICY].into_iter().find_map(|policy| boots.iter().find(|boot| boot.policy == policy))
}

/// Fills `rtt_over_baseline` and `baseline_policy` from the baseline boot's
/// rows; leaves both `None` without a baseline.
pub(crate) fn add_baseline_ratios(rows: &mut [PowerRow], baseline: Option<&PowerBoot>) {
    let Some(baseline) = baseline else {
        return;
    };
    let base_ratios: Vec<(u64, Option<f64>)> =
        rows.iter().filter(|row| row.run == baseline.run).map(|row| (row.interval_us, row.rtt_over_floor)).collect();
    for row in rows.iter_mut() {
        let base = base_ratios.iter().find(|(interval, _)| *interval == row.interval_us).and_then(|(_, base)| *base);
        row.rtt_over_baseline = row.rtt_over_floor.zip(base).and_then(|(own, base)| ratio(own, base));
        row.baseline_policy = Some(baseline.policy.clone());
    }
}

/// Why the baseline is what it is, for the text: empty for spin.
pub(crate) fn baseline_reason(boots: &[PowerBoot]) -> &'static str {
    if boots.iter().any(|boot| boot.accel.starts_with("tcg")) {
        "no spin boot; under TCG spin is not run, see docs/power.md"
    } else {
        "no spin boot in this log"
    }
}
