//! What a reader of the power table must not miss: boots cut short or
//! failed, a missing floor, a repeated policy, a stand-in or missing
//! baseline, mixed accelerators, and rows whose replies did not all check
//! out. A warning never removes a figure; it is printed above the table and
//! kept in `power.json`.

use super::parse::{POWER_RTT, POWER_WAKEUP};
use super::rows::{PAUSE_POLICY, PowerBoot, PowerRow, SPIN_POLICY};
use crate::figures::{FLOOR_LATENCY, MessageCheck};

/// The warnings about the table as a whole and each of its rows.
pub(crate) fn table_warnings(boots: &[PowerBoot], rows: &[PowerRow], baseline: Option<&PowerBoot>) -> Vec<String> {
    let mut warnings = Vec::new();
    for boot in boots {
        let what = format!("the {} boot (run {})", boot.policy, boot.run);
        match (boot.end_line, boot.end_status.as_deref()) {
            (None, _) => {
                warnings.push(format!("{what} was cut short: BENCH-BEGIN at line {} has no BENCH-END", boot.begin_line))
            }
            (Some(_), Some("ok")) => {}
            (Some(line), status) => warnings.push(format!(
                "{what}: BENCH-END at line {line} reports status={} (not ok)",
                status.unwrap_or("<missing>")
            )),
        }
        for note in &boot.fallbacks {
            warnings.push(format!(
                "{what}: line {} says the mechanism fell back ({}): its figures are not {}'s, and targets on them are n/a",
                note.line, note.text, boot.policy
            ));
        }
        if boot.floor_median_ns.is_none() {
            warnings
                .push(format!("{what} has no {FLOOR_LATENCY} record: its RTT/floor and vs-base ratios are missing"));
        }
        if boots.iter().find(|other| other.policy == boot.policy).is_some_and(|first| first.run != boot.run) {
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
            row.rtt_line.map_or("-".to_string(), |line| line.to_string())
        );
        match (row.rtt_check, row.rtt_n) {
            (Some(MessageCheck::Mismatch), Some(n)) => warnings.push(format!(
                "{what}: only {} of {n} replies checked out: row NOT TRUSTWORTHY",
                row.rtt_ok.unwrap_or(0)
            )),
            (Some(MessageCheck::NotReported), _) => {
                warnings.push(format!("{what}: no ok= count, replies unverified: row NOT TRUSTWORTHY"))
            }
            (None, _) => warnings.push(format!(
                "policy={} interval_us={}: no {POWER_RTT} record, only a {POWER_WAKEUP}",
                row.policy, row.interval_us
            )),
            _ => {}
        }
        for (record, dropped, n) in
            [(POWER_RTT, row.rtt_tsc_backwards, row.rtt_n), (POWER_WAKEUP, row.wakeup_tsc_backwards, row.wakeup_n)]
        {
            if let (Some(dropped), Some(n)) = (dropped.filter(|d| *d > 0), n) {
                warnings.push(format!(
                    "{record} policy={} interval_us={}: {dropped} of {n} samples dropped because the TSC went backwards; median and p99 are of the {} kept",
                    row.policy,
                    row.interval_us,
                    n.saturating_sub(dropped)
                ));
            }
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
