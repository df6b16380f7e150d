//! The power-policy report a person reads: the boots, warnings, the
//! round-trip and wake-up table, the time shares per core and the targets.

use std::fmt::Write;

use super::analysis::PowerTable;
use super::parse::{CLIENT_SERVER, ECHO_SERVER, interval_text};
use super::rows::{PAUSE_POLICY, PowerRow, SPIN_POLICY, baseline_reason};
use super::targets::TargetUnit;
use crate::figures::{FLOOR_LATENCY, MessageCheck};
use crate::serial_log::Run;
use crate::text_table::{Align, Table, TargetLine, check_text, dash_or, ns_text, ratio_text, share_text};

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
    let across = super::across_boots::power_across_boots_text(table);
    if !across.is_empty() {
        out.push('\n');
        out.push_str(&across);
    }
    target_list(&mut out, table);
    out
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
            dash_or(boot.date.clone()),
            boot.accel.clone(),
            dash_or(boot.cpu.clone()),
            dash_or(boot.smp),
            format!("{:.3}", boot.tsc_hz as f64 / 1e9),
            dash_or(boot.tsc_source.clone()),
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

/// Samples dropped because the TSC went backwards: `rtt/wake` counts.
fn tsc_back_cell(row: &PowerRow) -> String {
    match (row.rtt_tsc_backwards, row.wakeup_tsc_backwards) {
        (None, None) => "-".to_string(),
        (rtt, wakeup) => format!("{}/{}", dash_or(rtt), dash_or(wakeup)),
    }
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
    let _ = writeln!(out, "NOTE: baseline for \"vs base\" and the targets: {baseline}");
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
        ("tsc back", Align::Right),
    ]);
    for row in &table.rows {
        latencies.row(vec![
            row.policy.clone(),
            interval_text(row.interval_us),
            dash_or(row.rtt_n),
            check_cell(row),
            ns_text(row.rtt_median_ns),
            ns_text(row.rtt_p99_ns),
            ratio_text(row.rtt_over_floor),
            ratio_text(row.rtt_over_baseline),
            ns_text(row.wakeup_median_ns),
            ns_text(row.wakeup_p99_ns),
            dash_or(row.wakeup_n),
            tsc_back_cell(row),
        ]);
    }
    out.push_str(&latencies.render());
}

fn shares_cell(core: Option<u32>, asleep: Option<f64>, paused: Option<f64>) -> String {
    match core {
        None => "-".to_string(),
        Some(core) => format!("core {core}: asleep {} / paused {}", share_text(asleep), share_text(paused)),
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
            shares_cell(row.benchclient_core, row.benchclient_asleep, row.benchclient_paused),
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
        let measured =
            target.measured.map_or("not measured".to_string(), |value| target_value_text(target.unit, value));
        let limit = match target.unit {
            TargetUnit::Ratio => format!("{:.1}x", target.limit),
            TargetUnit::Share => format!("{:.0} %", target.limit * 100.0),
        };
        TargetLine {
            outcome: target.outcome,
            description: &target.description,
            measured: &measured,
            bound: target.bound,
            limit: &limit,
            not_applicable_because: target.not_applicable_because.as_deref(),
            detail: &target.detail,
        }
        .write(out);
        for note in &target.notes {
            let _ = writeln!(out, "           note: {note}");
        }
    }
}
