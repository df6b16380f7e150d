//! Power-policy table: one benchmark boot per power policy, set side by side.
//!
//! The guest boots once per policy (`spin`, `pause`, `mwait`, `hlt`, and any
//! newer name) and marks the block with `system=power-<policy>` on
//! `BENCH-BEGIN`. Inside it:
//!
//! ```text
//! BENCH latency name=cacheline-pingpong …                    the same-boot floor
//! BENCH latency name=power-rtt policy=P interval_us=I n= median_cycles= p99_cycles= … ok=
//! BENCH latency name=power-wakeup policy=P interval_us=I n= median_cycles= p99_cycles= …
//! BENCH counters phase=power-<I>us core= role=server|mover|idle server=<name>|-
//!                sleep_ticks= [pause_ticks=] total_ticks= sleeps= …
//! ```
//!
//! `interval_us=0` is back-to-back load; `power-rtt` is the round trip
//! `benchclient` -> mover -> `echo` -> mover -> `benchclient`,
//! `power-wakeup` one way (client send -> echo handled). All ticks are TSC
//! cycles of that boot.
//!
//! [`PowerTable`] holds one [`PowerRow`] per policy × interval, policies in
//! the order spin, pause, mwait, hlt, then other names in log order; rows
//! of one boot by interval. Rules it keeps:
//! - a boot's latencies are divided only by that boot's `cacheline-pingpong`
//!   median (`rtt_over_floor`); across boots only those dimensionless
//!   ratios are divided (`rtt_over_baseline`, targets 1 and 3), never times;
//! - the baseline of every "vs base" figure and of targets 1 and 3 is the
//!   never-sleeping boot: the first `spin` boot, or, when the log has no
//!   spin boot (under TCG `spin` is not run, see `docs/power.md`), the first
//!   `pause` boot as a stand-in. The policy used is recorded
//!   (`baseline_policy` on the table, each row and each target that uses
//!   it) and named in the text, the target descriptions and the target ids
//!   (`mwait-rtt-vs-pause`), so a pause figure never passes for a spin one;
//! - a missing baseline boot, floor, record or tick count gives `None`
//!   (printed `-`), never a panic;
//! - a `power-rtt` with `ok` not equal to `n` (or without `ok`) keeps its
//!   figures but is flagged in the table, in a warning and on any target
//!   computed from it; a `power-wakeup` is flagged only when it carries an
//!   `ok` that disagrees;
//! - time shares are `sleep_ticks / total_ticks` and
//!   `pause_ticks / total_ticks` of the core that ran `echo`, `benchclient`
//!   or the mover during phase `power-<I>us`;
//! - targets are measured and reported as met, missed or not measured,
//!   never asserted.
//!
//! Files ([`write_power_outputs`]): `power.csv`, one [`PowerRow`] per line,
//! and `power.json`, a [`PowerJson`] (the table, targets, warnings and the raw
//! power runs). Nothing is written when the log holds no power boot.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::figures::{Bound, FLOOR_LATENCY, MessageCheck, TargetOutcome, cycles_to_ns};
use crate::serial_log::{CoreCounters, LatencySample, Run};
use crate::text_table::{Align, Table, check_text};

/// `system=` values of power boots start with this; the rest is the policy.
pub const SYSTEM_PREFIX: &str = "power-";
/// Latency record of the round trip under a power policy.
pub const POWER_RTT: &str = "power-rtt";
/// Latency record of the one-way wake-up under a power policy.
pub const POWER_WAKEUP: &str = "power-wakeup";
/// Known policies in table order; other names follow them.
pub const POLICY_ORDER: [&str; 4] = ["spin", "pause", "mwait", "hlt"];
/// The policy every "vs base" figure divides by when the log has it.
pub const SPIN_POLICY: &str = "spin";
/// The baseline's stand-in when the log has no spin boot: it never sleeps
/// either, but polls with `pause`.
pub const PAUSE_POLICY: &str = "pause";
/// Server that generates the load (it spins by design).
pub const CLIENT_SERVER: &str = "benchclient";
/// Server that answers every message.
pub const ECHO_SERVER: &str = "echo";
/// `interval_us` of back-to-back load.
pub const BACK_TO_BACK_US: u64 = 0;
/// `interval_us` of one message per millisecond.
pub const ONE_PER_MS_US: u64 = 1000;
/// Identifies the layout of `power.json`; bumped when fields change meaning.
///
/// `power-bench/2`: `rtt_over_spin` became `rtt_over_baseline`, with
/// `baseline_policy` on the table, each row and each target (spin, or pause
/// as a stand-in when there is no spin boot).
pub const POWER_JSON_FORMAT: &str = "power-bench/2";

/// The policy of a power boot (`hlt` for `system=power-hlt`), or `None` for
/// any other block.
pub fn power_policy(run: &Run) -> Option<&str> {
    run.begin_extra
        .get("system")?
        .strip_prefix(SYSTEM_PREFIX)
        .filter(|policy| !policy.is_empty())
}

/// The runs whose `BENCH-BEGIN` says `system=power-<policy>`, in log order
/// (unknown policy names included).
pub fn power_runs(runs: &[Run]) -> Vec<&Run> {
    runs.iter()
        .filter(|run| power_policy(run).is_some())
        .collect()
}

/// `back-to-back`, `1 msg / 10 µs`, `1 msg / 1 ms`.
pub fn interval_text(interval_us: u64) -> String {
    match interval_us {
        BACK_TO_BACK_US => "back-to-back".to_string(),
        us if us % 1000 == 0 => format!("1 msg / {} ms", us / 1000),
        us => format!("1 msg / {us} µs"),
    }
}

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
        self.rtt_check == Some(MessageCheck::AllChecked)
            && self.wakeup_check != Some(MessageCheck::Mismatch)
    }
}

/// How a target's measured value and limit are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetUnit {
    /// A dimensionless ratio, printed `1.05x`.
    Ratio,
    /// A share of time, printed `93.1 %`.
    Share,
}

/// One power target as a measured value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerTarget {
    /// Short name for tools (`mwait-rtt-vs-spin`, …). A target against the
    /// baseline names the policy actually used (`mwait-rtt-vs-pause` when
    /// pause stood in for spin), so the two never share an id.
    pub id: String,
    /// The target in words.
    pub description: String,
    pub bound: Bound,
    pub limit: f64,
    pub unit: TargetUnit,
    pub measured: Option<f64>,
    pub outcome: TargetOutcome,
    /// False when a row behind the value failed or lacked its reply check.
    pub inputs_checked: bool,
    /// The figures the value came from, or what was missing.
    pub detail: String,
    /// Caveats a reader needs next to the value.
    pub notes: Vec<String>,
    /// For targets measured against the never-sleeping baseline, the policy
    /// used (`spin`, or `pause` as a stand-in); `None` for the others and
    /// when there is no baseline boot.
    pub baseline_policy: Option<String>,
}

/// Every power boot of a log, reduced to rows and targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerTable {
    /// Power boots in table order.
    pub boots: Vec<PowerBoot>,
    /// The never-sleeping baseline of "vs base" and targets 1 and 3: `spin`,
    /// or `pause` as a stand-in when there is no spin boot; `None` when
    /// there is neither.
    pub baseline_policy: Option<String>,
    /// The run (1-based position in the log) of the baseline boot.
    pub baseline_run: Option<usize>,
    /// One row per policy × interval, in table order.
    pub rows: Vec<PowerRow>,
    pub targets: Vec<PowerTarget>,
    /// Things a reader must not miss (failed replies, missing floor, …).
    pub warnings: Vec<String>,
}

/// The whole content of `power.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerJson {
    /// Always [`POWER_JSON_FORMAT`].
    pub format: String,
    pub table: PowerTable,
    /// The power runs as parsed, in log order.
    pub runs: Vec<Run>,
}

impl PowerTable {
    /// Builds the table from all runs of a log (non-power runs are skipped).
    pub fn from_runs(runs: &[Run]) -> PowerTable {
        let mut power: Vec<(usize, &Run, &str)> = runs
            .iter()
            .enumerate()
            .filter_map(|(index, run)| power_policy(run).map(|policy| (index + 1, run, policy)))
            .collect();
        power.sort_by_key(|(position, _, policy)| (policy_rank(policy), *position));
        if power.is_empty() {
            return PowerTable {
                boots: Vec::new(),
                baseline_policy: None,
                baseline_run: None,
                rows: Vec::new(),
                targets: Vec::new(),
                warnings: Vec::new(),
            };
        }

        let mut warnings = Vec::new();
        let mut boots = Vec::new();
        let mut rows = Vec::new();
        for (position, run, policy) in &power {
            let boot = power_boot(*position, run, policy);
            rows.extend(rows_of_boot(&boot, run, &mut warnings));
            boots.push(boot);
        }
        let baseline = baseline_boot(&boots).cloned();
        add_baseline_ratios(&mut rows, baseline.as_ref());
        warnings.extend(table_warnings(&boots, &rows, baseline.as_ref()));
        let targets = power_targets(&boots, &rows, baseline.as_ref());
        PowerTable {
            baseline_policy: baseline.as_ref().map(|boot| boot.policy.clone()),
            baseline_run: baseline.as_ref().map(|boot| boot.run),
            boots,
            rows,
            targets,
            warnings,
        }
    }

    /// True when the log held no power boot.
    pub fn is_empty(&self) -> bool {
        self.boots.is_empty()
    }

    /// True when the baseline is not spin but a stand-in for it (pause).
    pub fn baseline_is_stand_in(&self) -> bool {
        self.baseline_policy
            .as_deref()
            .is_some_and(|policy| policy != SPIN_POLICY)
    }

    /// The row of the first boot of `policy` at `interval_us`.
    pub fn row(&self, policy: &str, interval_us: u64) -> Option<&PowerRow> {
        let run = self.boots.iter().find(|boot| boot.policy == policy)?.run;
        self.rows
            .iter()
            .find(|row| row.run == run && row.interval_us == interval_us)
    }
}

fn policy_rank(policy: &str) -> usize {
    POLICY_ORDER
        .iter()
        .position(|known| *known == policy)
        .unwrap_or(POLICY_ORDER.len())
}

fn power_boot(position: usize, run: &Run, policy: &str) -> PowerBoot {
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
    }
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0 && numerator.is_finite() && denominator.is_finite())
        .then(|| numerator / denominator)
}

fn check_of(ok: Option<u64>, n: u64) -> MessageCheck {
    match ok {
        Some(ok) if ok == n => MessageCheck::AllChecked,
        Some(_) => MessageCheck::Mismatch,
        None => MessageCheck::NotReported,
    }
}

/// The `power-rtt` and `power-wakeup` records of one interval.
#[derive(Default)]
struct IntervalRecords<'a> {
    rtt: Option<&'a LatencySample>,
    wakeup: Option<&'a LatencySample>,
}

fn rows_of_boot(boot: &PowerBoot, run: &Run, warnings: &mut Vec<String>) -> Vec<PowerRow> {
    let policy = boot.policy.as_str();
    let mut by_interval: BTreeMap<u64, IntervalRecords> = BTreeMap::new();
    for sample in &run.latencies {
        if sample.name != POWER_RTT && sample.name != POWER_WAKEUP {
            continue;
        }
        let record_place = format!(
            "{} (line {}) in the {policy} boot",
            sample.name, sample.line
        );
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
            warnings.push(format!(
                "{record_place}: interval_us={interval_text} is not a number: record skipped"
            ));
            continue;
        };
        let records = by_interval.entry(interval).or_default();
        let slot = if sample.name == POWER_RTT {
            &mut records.rtt
        } else {
            &mut records.wakeup
        };
        if slot.is_some() {
            warnings.push(format!(
                "{record_place} repeats interval_us={interval}: only the first is used"
            ));
        } else {
            *slot = Some(sample);
        }
    }
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
            let phase = format!("power-{interval}us");
            let in_phase: Vec<&CoreCounters> =
                run.counters.iter().filter(|c| c.phase == phase).collect();
            if in_phase.is_empty() {
                missing_phases.push(phase);
            }
            let echo = time_shares(
                in_phase
                    .iter()
                    .copied()
                    .find(|c| server_name(c) == Some(ECHO_SERVER)),
                warnings,
            );
            let client = time_shares(
                in_phase
                    .iter()
                    .copied()
                    .find(|c| server_name(c) == Some(CLIENT_SERVER)),
                warnings,
            );
            let mover = time_shares(
                in_phase
                    .iter()
                    .copied()
                    .find(|c| c.role.as_deref() == Some("mover")),
                warnings,
            );
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
                rtt_check: rtt.map(|s| check_of(s.ok, s.n)),
                rtt_median_cycles: rtt.map(|s| s.median_cycles),
                rtt_p99_cycles: rtt.map(|s| s.p99_cycles),
                rtt_median_ns,
                rtt_p99_ns: rtt.map(|s| ns(s.p99_cycles)),
                floor_median_ns: boot.floor_median_ns,
                rtt_over_floor: rtt_median_ns
                    .zip(boot.floor_median_ns)
                    .and_then(|(rtt, floor)| ratio(rtt, floor)),
                rtt_over_baseline: None,
                baseline_policy: None,
                wakeup_line: wakeup.map(|s| s.line),
                wakeup_n: wakeup.map(|s| s.n),
                wakeup_ok: wakeup.and_then(|s| s.ok),
                wakeup_check: wakeup.map(|s| check_of(s.ok, s.n)),
                wakeup_median_cycles: wakeup.map(|s| s.median_cycles),
                wakeup_p99_cycles: wakeup.map(|s| s.p99_cycles),
                wakeup_median_ns: wakeup.map(|s| ns(s.median_cycles)),
                wakeup_p99_ns: wakeup.map(|s| ns(s.p99_cycles)),
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

fn server_name(counters: &CoreCounters) -> Option<&str> {
    counters.extra.get("server").map(String::as_str)
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
        return TimeShares {
            core: None,
            asleep: None,
            paused: None,
        };
    };
    let mut ticks = |key: &str| -> Option<u64> {
        let text = counters.extra.get(key)?;
        match text.parse() {
            Ok(value) => Some(value),
            Err(_) => {
                warnings.push(format!(
                    "counters (line {}): {key}={text} is not a number: treated as unknown",
                    counters.line
                ));
                None
            }
        }
    };
    let total = ticks("total_ticks").filter(|total| *total > 0);
    let share = |part: Option<u64>| {
        part.zip(total)
            .and_then(|(part, total)| ratio(part as f64, total as f64))
    };
    let asleep = share(ticks("sleep_ticks"));
    let paused = share(ticks("pause_ticks"));
    TimeShares {
        core: Some(counters.core),
        asleep,
        paused,
    }
}

/// The never-sleeping baseline among `boots` (in table order): the first
/// spin boot, else the first pause boot as a stand-in, else none.
fn baseline_boot(boots: &[PowerBoot]) -> Option<&PowerBoot> {
    [SPIN_POLICY, PAUSE_POLICY]
        .into_iter()
        .find_map(|policy| boots.iter().find(|boot| boot.policy == policy))
}

/// Fills `rtt_over_baseline` and `baseline_policy` from the baseline boot's
/// rows; leaves both `None` without a baseline.
fn add_baseline_ratios(rows: &mut [PowerRow], baseline: Option<&PowerBoot>) {
    let Some(baseline) = baseline else {
        return;
    };
    let base_ratios: Vec<(u64, Option<f64>)> = rows
        .iter()
        .filter(|row| row.run == baseline.run)
        .map(|row| (row.interval_us, row.rtt_over_floor))
        .collect();
    for row in rows.iter_mut() {
        let base = base_ratios
            .iter()
            .find(|(interval, _)| *interval == row.interval_us)
            .and_then(|(_, base)| *base);
        row.rtt_over_baseline = row
            .rtt_over_floor
            .zip(base)
            .and_then(|(own, base)| ratio(own, base));
        row.baseline_policy = Some(baseline.policy.clone());
    }
}

/// Why the baseline is what it is, for the text: empty for spin.
fn baseline_reason(boots: &[PowerBoot]) -> &'static str {
    if boots.iter().any(|boot| boot.accel.starts_with("tcg")) {
        "no spin boot; under TCG spin is not run, see docs/power.md"
    } else {
        "no spin boot in this log"
    }
}

fn table_warnings(
    boots: &[PowerBoot],
    rows: &[PowerRow],
    baseline: Option<&PowerBoot>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for boot in boots {
        let what = format!("the {} boot (run {})", boot.policy, boot.run);
        match (boot.end_line, boot.end_status.as_deref()) {
            (None, _) => warnings.push(format!(
                "{what} was cut short: BENCH-BEGIN at line {} has no BENCH-END",
                boot.begin_line
            )),
            (Some(_), Some("ok")) => {}
            (Some(line), status) => warnings.push(format!(
                "{what}: BENCH-END at line {line} reports status={} (not ok)",
                status.unwrap_or("<missing>")
            )),
        }
        if boot.floor_median_ns.is_none() {
            warnings.push(format!(
                "{what} has no {FLOOR_LATENCY} record: its RTT/floor and vs-base ratios are missing"
            ));
        }
        if boots
            .iter()
            .find(|other| other.policy == boot.policy)
            .is_some_and(|first| first.run != boot.run)
        {
            warnings.push(format!(
                "{what} repeats policy {}: targets and vs-base use the first such boot only",
                boot.policy
            ));
        }
    }
    match baseline {
        Some(base) if base.policy == SPIN_POLICY => {}
        Some(base) => warnings.push(format!(
            "no {SPIN_POLICY} boot: the vs-base column and the mwait targets use the {} boot (run {}) as a stand-in for {SPIN_POLICY}; they are not spin figures",
            base.policy, base.run
        )),
        None => warnings.push(format!(
            "no {SPIN_POLICY} boot and no {PAUSE_POLICY} boot to stand in for it: the vs-base column and the targets that compare with the baseline are not measured"
        )),
    }
    let mut accels: Vec<&str> = boots.iter().map(|boot| boot.accel.as_str()).collect();
    accels.sort_unstable();
    accels.dedup();
    if accels.len() > 1 {
        warnings.push(format!(
            "the boots ran under different accelerators ({}): cross-boot ratios compare unlike things",
            accels.join(", ")
        ));
    }
    for row in rows {
        let what = format!(
            "{POWER_RTT} policy={} interval_us={} (line {})",
            row.policy,
            row.interval_us,
            row.rtt_line
                .map_or("-".to_string(), |line| line.to_string())
        );
        match (row.rtt_check, row.rtt_n) {
            (Some(MessageCheck::Mismatch), Some(n)) => warnings.push(format!(
                "{what}: only {} of {n} replies checked out: row NOT TRUSTWORTHY",
                row.rtt_ok.unwrap_or(0)
            )),
            (Some(MessageCheck::NotReported), _) => warnings.push(format!(
                "{what}: no ok= count, replies unverified: row NOT TRUSTWORTHY"
            )),
            (None, _) => warnings.push(format!(
                "policy={} interval_us={}: no {POWER_RTT} record, only a {POWER_WAKEUP}",
                row.policy, row.interval_us
            )),
            _ => {}
        }
        if let (Some(MessageCheck::Mismatch), Some(n)) = (row.wakeup_check, row.wakeup_n) {
            warnings.push(format!(
                "{POWER_WAKEUP} policy={} interval_us={} (line {}): only {} of {n} messages checked out: row NOT TRUSTWORTHY",
                row.policy,
                row.interval_us,
                row.wakeup_line.unwrap_or(0),
                row.wakeup_ok.unwrap_or(0)
            ));
        }
    }
    warnings
}

fn judge(bound: Bound, limit: f64, measured: Option<f64>) -> TargetOutcome {
    match measured {
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
    }
}

/// A value with the figures behind it, or why it could not be measured.
struct Measurement {
    value: f64,
    inputs_checked: bool,
    detail: String,
}

fn measured_target(
    id: &str,
    description: &str,
    (bound, limit, unit): (Bound, f64, TargetUnit),
    measurement: Result<Measurement, String>,
    notes: Vec<String>,
) -> PowerTarget {
    let (measured, inputs_checked, detail) = match measurement {
        Ok(measurement) => (
            Some(measurement.value).filter(|value| value.is_finite()),
            measurement.inputs_checked,
            measurement.detail,
        ),
        Err(missing) => (None, false, format!("not measured: {missing}")),
    };
    PowerTarget {
        id: id.to_string(),
        description: description.to_string(),
        bound,
        limit,
        unit,
        measured,
        outcome: judge(bound, limit, measured),
        inputs_checked,
        detail,
        notes,
        baseline_policy: None,
    }
}

/// The row of the first boot of `policy` at `interval_us`, or why not.
fn find_row<'a>(
    boots: &[PowerBoot],
    rows: &'a [PowerRow],
    policy: &str,
    interval_us: u64,
) -> Result<&'a PowerRow, String> {
    let Some(boot) = boots.iter().find(|boot| boot.policy == policy) else {
        return Err(format!("no {policy} boot in this log"));
    };
    rows.iter()
        .find(|row| row.run == boot.run && row.interval_us == interval_us)
        .ok_or_else(|| {
            format!(
                "the {policy} boot (run {}) has no interval_us={interval_us} records",
                boot.run
            )
        })
}

/// A latency of a row as a multiple of its boot's floor, with its text.
fn over_floor(
    row: &PowerRow,
    record: &str,
    median_ns: Option<f64>,
) -> Result<(f64, String), String> {
    let interval = interval_text(row.interval_us);
    let Some(median) = median_ns else {
        return Err(format!(
            "the {} boot (run {}) has no {record} record at {interval}",
            row.policy, row.run
        ));
    };
    let Some(floor) = row.floor_median_ns else {
        return Err(format!(
            "the {} boot (run {}) has no {FLOOR_LATENCY} floor",
            row.policy, row.run
        ));
    };
    let over = ratio(median, floor).ok_or_else(|| {
        format!(
            "the {} boot (run {}) has a zero {FLOOR_LATENCY} floor",
            row.policy, row.run
        )
    })?;
    Ok((
        over,
        format!(
            "{} {record} {interval} median {median:.1} ns = {over:.2}x its floor {floor:.1} ns",
            row.policy
        ),
    ))
}

fn power_targets(
    boots: &[PowerBoot],
    rows: &[PowerRow],
    baseline: Option<&PowerBoot>,
) -> Vec<PowerTarget> {
    let mut targets = Vec::new();

    // The never-sleeping baseline of targets 1 and 3: spin, or pause standing
    // in for it. Ids and descriptions name the policy actually used.
    let base = baseline.map_or(SPIN_POLICY, |boot| boot.policy.as_str());
    let (stand_in, base_notes) = match baseline {
        Some(boot) if boot.policy != SPIN_POLICY => (
            format!("stand-in for {SPIN_POLICY}: {}; ", baseline_reason(boots)),
            vec![format!(
                "the target is defined against {SPIN_POLICY}; the {base} boot (run {}) stands in for it: it never sleeps either, but its poll loop executes pause, so this is not the spin figure",
                boot.run
            )],
        ),
        _ => (String::new(), Vec::new()),
    };
    let base_rtt = match baseline {
        Some(boot) => find_row(boots, rows, &boot.policy, BACK_TO_BACK_US),
        None => Err(format!(
            "no {SPIN_POLICY} boot in this log, and no {PAUSE_POLICY} boot to stand in for it"
        )),
    }
    .and_then(|row| over_floor(row, POWER_RTT, row.rtt_median_ns).map(|over| (row, over)));
    let with_baseline = |mut target: PowerTarget| {
        target.baseline_policy = baseline.map(|boot| boot.policy.clone());
        target
    };

    // 1. mwait round trip under continuous load against the baseline, both
    //    over their own floors.
    let mwait_rtt = find_row(boots, rows, "mwait", BACK_TO_BACK_US)
        .and_then(|row| over_floor(row, POWER_RTT, row.rtt_median_ns).map(|over| (row, over)));
    let measurement = match (&mwait_rtt, &base_rtt) {
        (Ok((mwait, (mwait_over, mwait_text))), Ok((base, (base_over, base_text)))) => {
            Ok(Measurement {
                value: mwait_over / base_over,
                inputs_checked: mwait.is_trustworthy() && base.is_trustworthy(),
                detail: format!("{mwait_text} / {base_text}"),
            })
        }
        (mwait, base) => Err(missing_reasons([mwait.as_ref().err(), base.as_ref().err()])),
    };
    targets.push(with_baseline(measured_target(
        &format!("mwait-rtt-vs-{base}"),
        &format!(
            "mwait RTT under continuous load <= 1.1x {base} ({stand_in}each over its own floor)"
        ),
        (Bound::AtMost, 1.1, TargetUnit::Ratio),
        measurement,
        base_notes.clone(),
    )));

    // 2. At one message per ms, the echo core of each sleeping policy
    //    asleep at least 90 % of the time.
    for policy in ["hlt", "mwait"] {
        let row = find_row(boots, rows, policy, ONE_PER_MS_US);
        let measurement = row.as_ref().map_err(String::clone).and_then(|row| {
            let asleep = row.echo_asleep.ok_or_else(|| {
                format!(
                    "the {policy} boot (run {}) reports no sleep_ticks/total_ticks for {ECHO_SERVER}'s core in phase power-{ONE_PER_MS_US}us",
                    row.run
                )
            })?;
            Ok(Measurement {
                value: asleep,
                inputs_checked: row.is_trustworthy(),
                detail: format!(
                    "{ECHO_SERVER} (core {}) asleep {}, paused {} of phase power-{ONE_PER_MS_US}us",
                    optional_text(row.echo_core),
                    share_text(Some(asleep)),
                    share_text(row.echo_paused)
                ),
            })
        });
        let notes = match row {
            Ok(row) => vec![format!(
                "{CLIENT_SERVER} (core {}) is the load generator and spins by design (asleep {}); the mover (core {}) was asleep {}",
                optional_text(row.benchclient_core),
                share_text(row.benchclient_asleep),
                optional_text(row.mover_core),
                share_text(row.mover_asleep)
            )],
            Err(_) => vec![format!(
                "{CLIENT_SERVER} is the load generator and spins by design; only {ECHO_SERVER}'s core is judged"
            )],
        };
        targets.push(measured_target(
            &format!("{policy}-echo-asleep-at-1ms"),
            &format!("{policy}: server core asleep >= 90 % at 1 msg / 1 ms ({ECHO_SERVER}'s core)"),
            (Bound::AtLeast, 0.9, TargetUnit::Share),
            measurement,
            notes,
        ));
    }

    // 3. Wake-up from mwait against the baseline's round trip, both over
    //    their own floors.
    let mwait_wakeup = find_row(boots, rows, "mwait", ONE_PER_MS_US).and_then(|row| {
        over_floor(row, POWER_WAKEUP, row.wakeup_median_ns).map(|over| (row, over))
    });
    let measurement = match (&mwait_wakeup, &base_rtt) {
        (Ok((mwait, (wakeup_over, wakeup_text))), Ok((base, (base_over, base_text)))) => {
            Ok(Measurement {
                value: wakeup_over / base_over,
                inputs_checked: mwait.is_trustworthy() && base.is_trustworthy(),
                detail: format!("{wakeup_text} / {base_text}"),
            })
        }
        (mwait, base) => Err(missing_reasons([mwait.as_ref().err(), base.as_ref().err()])),
    };
    let mut notes = base_notes;
    notes.extend(
        boots
            .iter()
            .find(|boot| boot.policy == "mwait")
            .map(|boot| wakeup_accel_note(&boot.accel)),
    );
    targets.push(with_baseline(measured_target(
        &format!("mwait-wakeup-vs-{base}-rtt"),
        &format!(
            "wake-up from mwait (one way, 1 msg / 1 ms) <= 3x {base} RTT ({stand_in}back-to-back; each over its own floor)"
        ),
        (Bound::AtMost, 3.0, TargetUnit::Ratio),
        measurement,
        notes,
    )));
    targets
}

fn missing_reasons<const N: usize>(reasons: [Option<&String>; N]) -> String {
    let reasons: Vec<&str> = reasons.into_iter().flatten().map(String::as_str).collect();
    reasons.join("; ")
}

fn wakeup_accel_note(accel: &str) -> String {
    if accel.starts_with("tcg") {
        format!(
            "accel={accel}: under TCG, monitor/mwait and the wake-up are emulated by QEMU; this is emulation, not hardware"
        )
    } else if accel == "kvm" {
        "accel=kvm: mwait ran in a guest (the host decides whether it exits); close to hardware, still not bare metal".to_string()
    } else {
        format!(
            "accel={accel}: accelerator not known; do not read this as a hardware wake-up latency"
        )
    }
}

/// Builds the [`PowerTable`] of a log's runs.
pub fn power_table(runs: &[Run]) -> PowerTable {
    PowerTable::from_runs(runs)
}

/// The power-policy table and targets as text; empty when the log holds no
/// power boot.
pub fn power_report_text(runs: &[Run]) -> String {
    power_table_text(&PowerTable::from_runs(runs))
}

/// As [`power_report_text`], from a table the caller already built.
pub fn power_table_text(table: &PowerTable) -> String {
    if table.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    boots_header(&mut out, table);
    if !table.warnings.is_empty() {
        out.push('\n');
        for warning in &table.warnings {
            let _ = writeln!(out, "!! WARNING: {warning}");
        }
    }
    latency_table(&mut out, table);
    share_table(&mut out, table);
    target_list(&mut out, table);
    out
}

fn optional_text<T: ToString>(value: Option<T>) -> String {
    value.map_or("-".to_string(), |value| value.to_string())
}

fn ns_text(ns: Option<f64>) -> String {
    ns.map_or("-".to_string(), |ns| format!("{ns:.1}"))
}

fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or("-".to_string(), |ratio| format!("{ratio:.2}x"))
}

fn share_text(share: Option<f64>) -> String {
    share.map_or("-".to_string(), |share| format!("{:.1} %", share * 100.0))
}

fn boots_header(out: &mut String, table: &PowerTable) {
    let _ = writeln!(
        out,
        "Power policies: {} boot{}, one BENCH-BEGIN … BENCH-END block each",
        table.boots.len(),
        if table.boots.len() == 1 { "" } else { "s" }
    );
    let mut boots = Table::new(&[
        ("policy", Align::Left),
        ("run", Align::Right),
        ("log lines", Align::Left),
        ("date", Align::Left),
        ("accel", Align::Left),
        ("cpu", Align::Left),
        ("smp", Align::Right),
        ("TSC GHz", Align::Right),
        ("TSC from", Align::Left),
        ("floor ns", Align::Right),
    ]);
    for boot in &table.boots {
        boots.row(vec![
            boot.policy.clone(),
            boot.run.to_string(),
            match boot.end_line {
                Some(end) => format!("{}-{end}", boot.begin_line),
                None => format!("{}- CUT SHORT", boot.begin_line),
            },
            optional_text(boot.date.clone()),
            boot.accel.clone(),
            optional_text(boot.cpu.clone()),
            optional_text(boot.smp),
            format!("{:.3}", boot.tsc_hz as f64 / 1e9),
            optional_text(boot.tsc_source.clone()),
            ns_text(boot.floor_median_ns),
        ]);
    }
    out.push_str(&boots.render());
    let _ = writeln!(
        out,
        "NOTE: floor = the boot's own {FLOOR_LATENCY} median; RTT/floor stays within one boot, and vs base divides two such ratios (the baseline boot's, named above the round-trip table), never absolute times of different boots."
    );
    if table.boots.iter().any(|boot| boot.accel.starts_with("tcg")) {
        let _ = writeln!(
            out,
            "NOTE: TCG is software emulation: pause, hlt and mwait, and waking from them, are QEMU's behaviour, not a CPU's; read ratios and shares, not hardware latencies."
        );
    }
}

fn check_cell(row: &PowerRow) -> String {
    let mut text = match (row.rtt_check, row.rtt_n) {
        (Some(check), Some(n)) => check_text(check, row.rtt_ok, n),
        _ => "NO RTT".to_string(),
    };
    if let (Some(MessageCheck::Mismatch), Some(n)) = (row.wakeup_check, row.wakeup_n) {
        text += &format!(" wake FAIL {}/{n}", row.wakeup_ok.unwrap_or(0));
    }
    text
}

fn latency_table(out: &mut String, table: &PowerTable) {
    out.push('\n');
    let _ = writeln!(
        out,
        "Round trip ({CLIENT_SERVER} -> mover -> {ECHO_SERVER} -> mover -> {CLIENT_SERVER}) and wake-up (one way: client send -> {ECHO_SERVER} handled)"
    );
    let baseline = match (table.baseline_policy.as_deref(), table.baseline_run) {
        (Some(SPIN_POLICY), Some(run)) => format!("{SPIN_POLICY} (run {run})"),
        (Some(policy), Some(run)) => {
            format!("{policy} (run {run}; {})", baseline_reason(&table.boots))
        }
        _ => format!(
            "none (no {SPIN_POLICY} or {PAUSE_POLICY} boot: vs base is - and the targets against it are not measured)"
        ),
    };
    let _ = writeln!(
        out,
        "NOTE: baseline for \"vs base\" and the targets: {baseline}"
    );
    let mut latencies = Table::new(&[
        ("policy", Align::Left),
        ("interval", Align::Left),
        ("n", Align::Right),
        ("check", Align::Left),
        ("RTT med ns", Align::Right),
        ("RTT p99 ns", Align::Right),
        ("RTT/floor", Align::Right),
        ("vs base", Align::Right),
        ("wake med ns", Align::Right),
        ("wake p99 ns", Align::Right),
        ("wake n", Align::Right),
    ]);
    for row in &table.rows {
        latencies.row(vec![
            row.policy.clone(),
            interval_text(row.interval_us),
            optional_text(row.rtt_n),
            check_cell(row),
            ns_text(row.rtt_median_ns),
            ns_text(row.rtt_p99_ns),
            ratio_text(row.rtt_over_floor),
            ratio_text(row.rtt_over_baseline),
            ns_text(row.wakeup_median_ns),
            ns_text(row.wakeup_p99_ns),
            optional_text(row.wakeup_n),
        ]);
    }
    out.push_str(&latencies.render());
}

fn shares_cell(core: Option<u32>, asleep: Option<f64>, paused: Option<f64>) -> String {
    match core {
        None => "-".to_string(),
        Some(core) => format!(
            "core {core}: asleep {} / paused {}",
            share_text(asleep),
            share_text(paused)
        ),
    }
}

fn share_table(out: &mut String, table: &PowerTable) {
    out.push('\n');
    let _ = writeln!(
        out,
        "Time per core in each phase (asleep = sleep_ticks/total_ticks, paused = pause_ticks/total_ticks; - = not reported)"
    );
    let mut shares = Table::new(&[
        ("policy", Align::Left),
        ("interval", Align::Left),
        (ECHO_SERVER, Align::Left),
        (CLIENT_SERVER, Align::Left),
        ("mover", Align::Left),
    ]);
    for row in &table.rows {
        shares.row(vec![
            row.policy.clone(),
            interval_text(row.interval_us),
            shares_cell(row.echo_core, row.echo_asleep, row.echo_paused),
            shares_cell(
                row.benchclient_core,
                row.benchclient_asleep,
                row.benchclient_paused,
            ),
            shares_cell(row.mover_core, row.mover_asleep, row.mover_paused),
        ]);
    }
    out.push_str(&shares.render());
}

fn target_value_text(unit: TargetUnit, value: f64) -> String {
    match unit {
        TargetUnit::Ratio => format!("{value:.2}x"),
        TargetUnit::Share => format!("{:.1} %", value * 100.0),
    }
}

fn target_list(out: &mut String, table: &PowerTable) {
    out.push('\n');
    let _ = writeln!(out, "Targets (power policies; measured, not asserted)");
    for target in &table.targets {
        let outcome = match target.outcome {
            TargetOutcome::Met => "met   ",
            TargetOutcome::Missed => "MISSED",
            TargetOutcome::NotMeasured => "n/a   ",
        };
        let bound = match target.bound {
            Bound::AtMost => "<=",
            Bound::AtLeast => ">=",
        };
        let measured = target.measured.map_or("not measured".to_string(), |value| {
            target_value_text(target.unit, value)
        });
        let limit = match target.unit {
            TargetUnit::Ratio => format!("{:.1}x", target.limit),
            TargetUnit::Share => format!("{:.0} %", target.limit * 100.0),
        };
        let trust = if target.outcome != TargetOutcome::NotMeasured && !target.inputs_checked {
            " [UNTRUSTWORTHY: a row behind it failed its reply check]"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  [{outcome}] {}: {measured} (target {bound} {limit}){trust}\n           {}",
            target.description, target.detail
        );
        for note in &target.notes {
            let _ = writeln!(out, "           note: {note}");
        }
    }
}

/// The document written to `power.json`.
pub fn power_json(runs: &[Run]) -> PowerJson {
    PowerJson {
        format: POWER_JSON_FORMAT.to_string(),
        table: PowerTable::from_runs(runs),
        runs: power_runs(runs).into_iter().cloned().collect(),
    }
}

/// Reads `power.json` back.
pub fn read_power_json(path: &Path) -> io::Result<PowerJson> {
    let text = fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(io::Error::other)
}

/// Reads `power.csv` back.
pub fn read_power_csv(path: &Path) -> io::Result<Vec<PowerRow>> {
    crate::data_files::read_csv(path)
}

/// Writes `power.csv` and `power.json` into `dir` (created if needed) and
/// returns their paths; writes nothing and returns no path when the log
/// holds no power boot.
pub fn write_power_outputs(runs: &[Run], dir: &Path) -> io::Result<Vec<PathBuf>> {
    let document = power_json(runs);
    if document.table.is_empty() {
        return Ok(Vec::new());
    }
    fs::create_dir_all(dir)?;
    let csv_path = dir.join("power.csv");
    let mut writer = csv::Writer::from_path(&csv_path).map_err(io::Error::other)?;
    for row in &document.table.rows {
        writer.serialize(row).map_err(io::Error::other)?;
    }
    writer.flush()?;
    let json_path = dir.join("power.json");
    let mut text = serde_json::to_string_pretty(&document).map_err(io::Error::other)?;
    text.push('\n');
    fs::write(&json_path, text)?;
    Ok(vec![csv_path, json_path])
}
