//! The power-policy targets, measured and reported as met, missed or not
//! measured, never asserted:
//! 1. mwait's round trip under continuous load within 1.1x the baseline's;
//! 2. at one message per ms, the echo core of hlt and of mwait asleep at
//!    least 90 % of the time;
//! 3. the wake-up from mwait within 3x the baseline's round trip.
//!
//! Latencies are compared only as multiples of their own boot's floor; a
//! target against the baseline names the policy used (`…-vs-pause` when
//! pause stands in for spin) and carries a note saying so.

use serde::{Deserialize, Serialize};

use super::parse::{
    BACK_TO_BACK_US, CLIENT_SERVER, ECHO_SERVER, ONE_PER_MS_US, POWER_RTT, POWER_WAKEUP, interval_text,
};
use super::rows::{PAUSE_POLICY, PowerBoot, PowerRow, SPIN_POLICY, baseline_reason};
use crate::figures::{Bound, FLOOR_LATENCY, TargetOutcome, ratio};
use crate::text_table::{dash_or, share_text};

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
    /// Why a measured value is not judged (outcome `not-applicable`): a
    /// row behind it failed its reply check, or the boot's mechanism fell
    /// back (MWAIT -> HLT).
    #[serde(default)]
    pub not_applicable_because: Option<String>,
    /// The figures the value came from, or what was missing.
    pub detail: String,
    /// Caveats a reader needs next to the value.
    pub notes: Vec<String>,
    /// For targets measured against the never-sleeping baseline, the policy
    /// used (`spin`, or `pause` as a stand-in); `None` for the others and
    /// when there is no baseline boot.
    pub baseline_policy: Option<String>,
}

/// A value with the figures behind it, or why it could not be measured.
struct Measurement {
    value: f64,
    /// What is wrong with the rows behind the value (empty: nothing).
    problems: Vec<String>,
    detail: String,
}

/// What is wrong with `rows` as target inputs: a failed reply check, or a
/// boot whose mechanism fell back (its figures measure another one).
fn row_problems(boots: &[PowerBoot], rows: &[&PowerRow]) -> Vec<String> {
    let mut problems = Vec::new();
    for row in rows {
        if !row.is_trustworthy() {
            problems.push(format!(
                "the {} row at {} (run {}) failed its reply check",
                row.policy,
                interval_text(row.interval_us),
                row.run
            ));
        }
        if let Some(boot) = boots.iter().find(|boot| boot.run == row.run) {
            for note in &boot.fallbacks {
                let problem = format!(
                    "the {} boot (run {}) fell back at line {} ({}): it did not measure {}",
                    boot.policy, boot.run, note.line, note.text, boot.policy
                );
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
    }
    problems
}

fn measured_target(
    id: &str,
    description: &str,
    (bound, limit, unit): (Bound, f64, TargetUnit),
    measurement: Result<Measurement, String>,
    notes: Vec<String>,
) -> PowerTarget {
    let (measured, problems, detail) = match measurement {
        Ok(measurement) => {
            (Some(measurement.value).filter(|value| value.is_finite()), measurement.problems, measurement.detail)
        }
        Err(missing) => (None, Vec::new(), format!("not measured: {missing}")),
    };
    let inputs_checked = measured.is_some() && !problems.iter().any(|problem| problem.contains("reply check"));
    let reason = (!problems.is_empty()).then(|| problems.join("; "));
    let outcome = TargetOutcome::judge(bound, limit, measured, reason.as_deref());
    PowerTarget {
        id: id.to_string(),
        description: description.to_string(),
        bound,
        limit,
        unit,
        measured,
        outcome,
        inputs_checked,
        not_applicable_because: (outcome == TargetOutcome::NotApplicable).then_some(reason).flatten(),
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
        .ok_or_else(|| format!("the {policy} boot (run {}) has no interval_us={interval_us} records", boot.run))
}

/// A latency of a row as a multiple of its boot's floor, with its text.
fn over_floor(row: &PowerRow, record: &str, median_ns: Option<f64>) -> Result<(f64, String), String> {
    let interval = interval_text(row.interval_us);
    let Some(median) = median_ns else {
        return Err(format!("the {} boot (run {}) has no {record} record at {interval}", row.policy, row.run));
    };
    let Some(floor) = row.floor_median_ns else {
        return Err(format!("the {} boot (run {}) has no {FLOOR_LATENCY} floor", row.policy, row.run));
    };
    let over = ratio(median, floor)
        .ok_or_else(|| format!("the {} boot (run {}) has a zero {FLOOR_LATENCY} floor", row.policy, row.run))?;
    Ok((over, format!("{} {record} {interval} median {median:.1} ns = {over:.2}x its floor {floor:.1} ns", row.policy)))
}

pub(crate) fn power_targets(boots: &[PowerBoot], rows: &[PowerRow], baseline: Option<&PowerBoot>) -> Vec<PowerTarget> {
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
        None => Err(format!("no {SPIN_POLICY} boot in this log, and no {PAUSE_POLICY} boot to stand in for it")),
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
        (Ok((mwait, (mwait_over, mwait_text))), Ok((base, (base_over, base_text)))) => Ok(Measurement {
            value: mwait_over / base_over,
            problems: row_problems(boots, &[mwait, base]),
            detail: format!("{mwait_text} / {base_text}"),
        }),
        (mwait, base) => Err(missing_reasons([mwait.as_ref().err(), base.as_ref().err()])),
    };
    targets.push(with_baseline(measured_target(
        &format!("mwait-rtt-vs-{base}"),
        &format!("mwait RTT under continuous load <= 1.1x {base} ({stand_in}each over its own floor)"),
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
                problems: row_problems(boots, &[row]),
                detail: format!(
                    "{ECHO_SERVER} (core {}) asleep {}, paused {} of phase power-{ONE_PER_MS_US}us",
                    dash_or(row.echo_core),
                    share_text(Some(asleep)),
                    share_text(row.echo_paused)
                ),
            })
        });
        let notes = match row {
            Ok(row) => vec![format!(
                "{CLIENT_SERVER} (core {}) is the load generator and spins by design (asleep {}); the mover (core {}) was asleep {}",
                dash_or(row.benchclient_core),
                share_text(row.benchclient_asleep),
                dash_or(row.mover_core),
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
    let mwait_wakeup = find_row(boots, rows, "mwait", ONE_PER_MS_US)
        .and_then(|row| over_floor(row, POWER_WAKEUP, row.wakeup_median_ns).map(|over| (row, over)));
    let measurement = match (&mwait_wakeup, &base_rtt) {
        (Ok((mwait, (wakeup_over, wakeup_text))), Ok((base, (base_over, base_text)))) => Ok(Measurement {
            value: wakeup_over / base_over,
            problems: row_problems(boots, &[mwait, base]),
            detail: format!("{wakeup_text} / {base_text}"),
        }),
        (mwait, base) => Err(missing_reasons([mwait.as_ref().err(), base.as_ref().err()])),
    };
    let mut notes = base_notes;
    notes.extend(boots.iter().find(|boot| boot.policy == "mwait").map(|boot| wakeup_accel_note(&boot.accel)));
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
        "accel=kvm: mwait ran in a guest (the host decides whether it exits); close to hardware, still not bare metal"
            .to_string()
    } else {
        format!("accel={accel}: accelerator not known; do not read this as a hardware wake-up latency")
    }
}
