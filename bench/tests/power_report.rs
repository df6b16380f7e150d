//! Tests of the power-policy table against a synthetic serial log
//! (`fixtures/power-tcg-smp3.log`: one ordinary IPC boot, then boots for
//! hlt, spin, pause and mwait, in that log order). Logs without the spin
//! (or pause) boot, as `cargo xtask bench power` writes under TCG, are that
//! fixture with the block cut out. Nothing here depends on timing: the
//! inputs are fixed text.

use std::path::PathBuf;

use bench::figures::{MessageCheck, TargetOutcome, cycles_to_ns};
use bench::power_policy::{
    self, POWER_JSON_FORMAT, PowerTable, interval_text, power_json, power_policy, read_power_csv, read_power_json,
};
use bench::{parse, power_report_text, power_runs, write_power_outputs};

const POWER_LOG: &str = include_str!("fixtures/power-tcg-smp3.log");
const IPC_LOG: &str = include_str!("fixtures/ipc-tcg-smp4.log");
const TSC_HZ: u64 = 2_600_000_000;

fn output_dir(test_name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("power-tests").join(test_name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() <= expected.abs() * 1e-12, "{actual} != {expected}");
}

/// The fixture with one piece of text replaced (it must occur exactly once).
fn log_with(original: &str, replacement: &str) -> String {
    assert_eq!(POWER_LOG.matches(original).count(), 1, "fixture must hold {original:?} exactly once");
    POWER_LOG.replacen(original, replacement, 1)
}

/// `log` without the `BENCH-BEGIN … BENCH-END` block of `policy` (which
/// must be there exactly once).
fn without_boot(log: &str, policy: &str) -> String {
    let begin_marker = format!(" system=power-{policy}");
    let lines: Vec<&str> = log.lines().collect();
    let begin = lines
        .iter()
        .position(|line| line.contains("BENCH-BEGIN") && line.ends_with(&begin_marker))
        .unwrap_or_else(|| panic!("no {policy} boot"));
    let end = begin + lines[begin..].iter().position(|line| line.contains("BENCH-END")).unwrap();
    let mut kept: Vec<&str> = lines[..begin].to_vec();
    kept.extend(&lines[end + 1..]);
    assert!(!kept.iter().any(|line| line.ends_with(&begin_marker)));
    kept.join("\n") + "\n"
}

fn table_of(log: &str) -> PowerTable {
    PowerTable::from_runs(&parse(log).unwrap())
}

fn outcome(table: &PowerTable, id: &str) -> TargetOutcome {
    target(table, id).outcome
}

fn target<'a>(table: &'a PowerTable, id: &str) -> &'a power_policy::PowerTarget {
    table.targets.iter().find(|target| target.id == id).unwrap_or_else(|| panic!("no target {id}"))
}

#[test]
fn power_runs_are_the_blocks_marked_system_power() {
    let runs = parse(POWER_LOG).unwrap();
    assert_eq!(runs.len(), 5);
    let policies: Vec<&str> = power_runs(&runs).into_iter().map(|run| power_policy(run).unwrap()).collect();
    assert_eq!(policies, ["hlt", "spin", "pause", "mwait"]);
    assert!(power_policy(&runs[0]).is_none());
    assert!(power_runs(&parse(IPC_LOG).unwrap()).is_empty());

    // An unknown policy name is kept and sorted after the known ones.
    let table = table_of(&log_with("system=power-hlt", "system=power-c6"));
    let order: Vec<&str> = table.boots.iter().map(|b| b.policy.as_str()).collect();
    assert_eq!(order, ["spin", "pause", "mwait", "c6"]);
    assert_eq!(table.rows.len(), 16);
    assert!(table.warnings.iter().any(|w| w.contains("says policy=hlt") && w.contains("filed under c6")));
    // With no hlt boot, its sleep target is not measured.
    assert_eq!(outcome(&table, "hlt-echo-asleep-at-1ms"), TargetOutcome::NotMeasured);
    assert!(target(&table, "hlt-echo-asleep-at-1ms").detail.contains("no hlt boot"));
    // `system=` other than power-… and an empty policy are not power boots.
    let runs = parse(&log_with("system=power-spin", "system=power-")).unwrap();
    assert_eq!(power_runs(&runs).len(), 3);
}

#[test]
fn rows_are_one_per_policy_and_interval_in_table_order() {
    let table = table_of(POWER_LOG);
    let keys: Vec<(&str, u64, usize)> =
        table.rows.iter().map(|row| (row.policy.as_str(), row.interval_us, row.run)).collect();
    let mut expected = Vec::new();
    for (policy, run) in [("spin", 3), ("pause", 4), ("mwait", 5), ("hlt", 2)] {
        for interval in [0, 10, 100, 1000] {
            expected.push((policy, interval, run));
        }
    }
    assert_eq!(keys, expected);

    let hlt = &table.boots[3];
    assert_eq!((hlt.policy.as_str(), hlt.run), ("hlt", 2));
    assert_eq!((hlt.begin_line, hlt.end_line), (17, Some(39)));
    assert_eq!(hlt.accel, "tcg-single");
    assert_close(hlt.floor_median_ns.unwrap(), cycles_to_ns(1045, TSC_HZ));

    let row = table.row("hlt", 1000).unwrap();
    assert_eq!(row.rtt_line, Some(22));
    assert_eq!((row.rtt_n, row.rtt_ok), (Some(500), Some(500)));
    assert_eq!(row.rtt_check, Some(MessageCheck::AllChecked));
    assert_eq!((row.rtt_median_cycles, row.rtt_p99_cycles), (Some(34000), Some(40800)));
    assert_close(row.rtt_median_ns.unwrap(), cycles_to_ns(34000, TSC_HZ));
    assert_close(row.rtt_p99_ns.unwrap(), cycles_to_ns(40800, TSC_HZ));
    assert_eq!(row.wakeup_line, Some(26));
    assert_eq!(row.wakeup_n, Some(500));
    assert_eq!(row.wakeup_check, Some(MessageCheck::NotReported));
    assert_close(row.wakeup_median_ns.unwrap(), cycles_to_ns(32000, TSC_HZ));
    assert_close(row.wakeup_p99_ns.unwrap(), cycles_to_ns(41600, TSC_HZ));
    assert!(row.is_trustworthy(), "wake-up without ok= is not a failure");

    // Time shares per role: echo on core 2, benchclient on core 1, mover on 0.
    assert_eq!((row.echo_core, row.benchclient_core, row.mover_core), (Some(2), Some(1), Some(0)));
    assert_close(row.echo_asleep.unwrap(), 1_226_127_000.0 / 1_317_000_000.0);
    assert_close(row.echo_paused.unwrap(), 26_340_000.0 / 1_317_000_000.0);
    assert_eq!(row.benchclient_asleep, Some(0.0));
    assert_close(row.mover_asleep.unwrap(), 1_191_885_000.0 / 1_317_000_000.0);
}

#[test]
fn ratios_divide_by_the_own_floor_then_by_spin() {
    let table = table_of(POWER_LOG);
    assert_eq!(table.baseline_policy.as_deref(), Some("spin"));
    assert_eq!(table.baseline_run, Some(3));
    assert!(!table.baseline_is_stand_in());
    assert!(table.rows.iter().all(|row| row.baseline_policy.as_deref() == Some("spin")));
    let spin = table.row("spin", 0).unwrap();
    assert_close(spin.rtt_over_floor.unwrap(), 3952.0 / 1040.0);
    assert_close(spin.rtt_over_baseline.unwrap(), 1.0);
    // The pause boot is there too, but spin is the baseline.
    let pause = table.row("pause", 0).unwrap();
    assert_close(pause.rtt_over_baseline.unwrap(), (4180.0 / 1050.0) / (3952.0 / 1040.0));

    let mwait = table.row("mwait", 0).unwrap();
    assert_close(mwait.floor_median_ns.unwrap(), cycles_to_ns(1060, TSC_HZ));
    assert_close(mwait.rtt_over_floor.unwrap(), 4240.0 / 1060.0);
    assert_close(mwait.rtt_over_baseline.unwrap(), (4240.0 / 1060.0) / (3952.0 / 1040.0));
    // The same interval of the spin boot is the reference for every row.
    let hlt = table.row("hlt", 100).unwrap();
    assert_close(hlt.rtt_over_baseline.unwrap(), (33000.0 / 1045.0) / (4030.0 / 1040.0));

    let text = power_report_text(&parse(POWER_LOG).unwrap());
    assert!(text.contains("NOTE: baseline for \"vs base\" and the targets: spin (run 3)\n"));
    assert!(!text.contains("stand-in"));
    let header = text.lines().find(|line| line.trim_start().starts_with("policy  interval")).unwrap();
    assert!(header.contains("vs base") && !header.contains("vs spin"), "{header}");
    let mwait_line = text.lines().find(|line| line.trim_start().starts_with("mwait   back-to-back")).unwrap();
    assert!(mwait_line.contains("4.00x"), "{mwait_line}");
    assert!(mwait_line.contains("1.05x"), "{mwait_line}");
    assert!(mwait_line.contains("1630.8"), "{mwait_line}");
}

#[test]
fn without_spin_the_pause_boot_stands_in_and_says_so() {
    // What `cargo xtask bench power` writes under TCG: pause, mwait and hlt.
    let log = without_boot(POWER_LOG, "spin");
    let runs = parse(&log).unwrap();
    assert_eq!(power_runs(&runs).len(), 3);
    let table = PowerTable::from_runs(&runs);
    assert_eq!(table.rows.len(), 12);
    assert_eq!(table.baseline_policy.as_deref(), Some("pause"));
    assert_eq!(table.baseline_run, Some(3));
    assert!(table.baseline_is_stand_in());
    assert!(table.rows.iter().all(|row| row.baseline_policy.as_deref() == Some("pause")));

    // Ratios divide by the pause boot's RTT/floor at the same interval.
    assert_close(table.row("pause", 0).unwrap().rtt_over_baseline.unwrap(), 1.0);
    let pause_b2b = 4180.0 / 1050.0;
    assert_close(table.row("mwait", 0).unwrap().rtt_over_baseline.unwrap(), (4240.0 / 1060.0) / pause_b2b);
    assert_close(table.row("hlt", 1000).unwrap().rtt_over_baseline.unwrap(), (34000.0 / 1045.0) / (4400.0 / 1050.0));

    // Targets 1 and 3 against pause, with ids and words that say so.
    assert!(table.targets.iter().all(|t| !t.id.contains("spin")));
    let rtt = target(&table, "mwait-rtt-vs-pause");
    assert_eq!(rtt.outcome, TargetOutcome::Met);
    assert_close(rtt.measured.unwrap(), (4240.0 / 1060.0) / pause_b2b);
    assert_eq!(rtt.baseline_policy.as_deref(), Some("pause"));
    assert_eq!(
        rtt.description,
        "mwait RTT under continuous load <= 1.1x pause (stand-in for spin: no spin boot; under TCG spin is not run, see docs/power.md; each over its own floor)"
    );
    assert!(rtt.detail.contains("/ pause power-rtt back-to-back"), "{}", rtt.detail);
    assert!(rtt.notes[0].contains("stands in for it"), "{:?}", rtt.notes);
    let wakeup = target(&table, "mwait-wakeup-vs-pause-rtt");
    assert_eq!(wakeup.outcome, TargetOutcome::Met);
    assert_close(wakeup.measured.unwrap(), (9000.0 / 1060.0) / pause_b2b);
    assert_eq!(wakeup.baseline_policy.as_deref(), Some("pause"));
    assert!(wakeup.description.contains("<= 3x pause RTT (stand-in for spin: no spin boot"));
    assert!(wakeup.notes.iter().any(|n| n.contains("emulation, not hardware")));
    // Target 2 has no baseline.
    assert_eq!(target(&table, "hlt-echo-asleep-at-1ms").baseline_policy, None);
    assert!(
        table
            .warnings
            .iter()
            .any(|w| w.starts_with("no spin boot") && w.contains("pause boot (run 3) as a stand-in for spin"))
    );

    let text = power_policy::power_table_text(&table);
    assert!(text.contains(
        "NOTE: baseline for \"vs base\" and the targets: pause (run 3; no spin boot; under TCG spin is not run, see docs/power.md)\n"
    ));
    let row = text.lines().find(|line| line.trim_start().starts_with("mwait   back-to-back")).unwrap();
    assert!(row.contains("4.00x") && row.contains("1.00x"), "{row}");
    assert!(text.contains("[met   ] mwait RTT under continuous load <= 1.1x pause (stand-in for spin: no spin boot; "));
    assert!(!text.contains("1.1x spin") && !text.contains("3x spin"));

    // Outside TCG the reason does not blame TCG.
    let kvm = table_of(&without_boot(POWER_LOG, "spin").replace("accel=tcg-single", "accel=kvm"));
    assert!(target(&kvm, "mwait-rtt-vs-pause").description.contains("(stand-in for spin: no spin boot in this log; "));
    assert!(!power_policy::power_table_text(&kvm).contains("under TCG spin is not run"));
}

#[test]
fn without_spin_or_pause_boot_ratios_are_dashes_and_targets_unmeasured() {
    let log = without_boot(&without_boot(POWER_LOG, "spin"), "pause");
    let table = table_of(&log);
    assert_eq!(table.rows.len(), 8);
    assert_eq!((table.baseline_policy.as_deref(), table.baseline_run), (None, None));
    assert!(!table.baseline_is_stand_in());
    assert!(table.rows.iter().all(|row| row.rtt_over_baseline.is_none()));
    assert!(table.rows.iter().all(|row| row.baseline_policy.is_none()));
    assert!(table.rows.iter().all(|row| row.rtt_over_floor.is_some()));
    for id in ["mwait-rtt-vs-spin", "mwait-wakeup-vs-spin-rtt"] {
        let check = target(&table, id);
        assert_eq!(check.outcome, TargetOutcome::NotMeasured, "{id}");
        assert_eq!(check.measured, None);
        assert_eq!(check.baseline_policy, None);
        assert!(check.detail.contains("no spin boot"), "{}", check.detail);
        assert!(check.detail.contains("no pause boot"), "{}", check.detail);
    }
    assert_eq!(outcome(&table, "hlt-echo-asleep-at-1ms"), TargetOutcome::Met);
    assert!(table.warnings.iter().any(|w| w.contains("no spin boot and no pause boot")));

    let text = power_policy::power_table_text(&table);
    assert!(text.contains("NOTE: baseline for \"vs base\" and the targets: none ("));
    let row = text.lines().find(|line| line.trim_start().starts_with("mwait   back-to-back")).unwrap();
    // RTT/floor is there, vs base is a dash.
    assert!(row.contains("4.00x  ") && row.contains("      -  "), "{row}");
    assert!(text.contains("[n/a   ] mwait RTT under continuous load <= 1.1x spin"));
}

#[test]
fn a_spin_boot_stays_the_baseline_whatever_the_log_order() {
    // Pause first in the log, spin last: spin is still the baseline.
    let spin_first = table_of(POWER_LOG);
    let log = without_boot(POWER_LOG, "spin") + &spin_block();
    let table = table_of(&log);
    assert_eq!(table.baseline_policy.as_deref(), Some("spin"));
    assert_eq!(table.baseline_run, Some(5));
    assert_eq!(target(&table, "mwait-rtt-vs-spin").measured, target(&spin_first, "mwait-rtt-vs-spin").measured);
    // A spin boot without a floor is still the baseline: its ratios are
    // missing, pause does not quietly take over.
    let table = table_of(&log_with(
        "name=cacheline-pingpong n=20000 median_cycles=1040",
        "name=not-the-floor n=20000 median_cycles=1040",
    ));
    assert_eq!(table.baseline_policy.as_deref(), Some("spin"));
    assert!(table.rows.iter().all(|row| row.rtt_over_baseline.is_none()));
    assert_eq!(outcome(&table, "mwait-rtt-vs-spin"), TargetOutcome::NotMeasured);
}

/// The spin boot's block of the fixture, lines and all.
fn spin_block() -> String {
    let lines: Vec<&str> = POWER_LOG.lines().collect();
    let begin = lines.iter().position(|line| line.ends_with("system=power-spin")).unwrap();
    let end = begin + lines[begin..].iter().position(|line| line.contains("BENCH-END")).unwrap();
    lines[begin..=end].join("\n") + "\n"
}

#[test]
fn a_missing_floor_leaves_ratios_unmeasured() {
    let table = table_of(&log_with(
        "name=cacheline-pingpong n=20000 median_cycles=1060",
        "name=not-the-floor n=20000 median_cycles=1060",
    ));
    let mwait = table.row("mwait", 0).unwrap();
    assert_eq!((mwait.rtt_over_floor, mwait.rtt_over_baseline), (None, None));
    assert!(mwait.rtt_median_ns.is_some());
    let check = target(&table, "mwait-rtt-vs-spin");
    assert_eq!(check.outcome, TargetOutcome::NotMeasured);
    assert!(check.detail.contains("no cacheline-pingpong floor"));
    assert!(table.warnings.iter().any(|w| w.contains("mwait boot") && w.contains("no cacheline-pingpong")));
}

#[test]
fn missing_pause_ticks_is_unknown_not_zero() {
    let table = table_of(POWER_LOG);
    for interval in [0, 10, 100, 1000] {
        let row = table.row("hlt", interval).unwrap();
        assert_eq!(row.mover_paused, None, "interval {interval}");
        assert!(row.mover_asleep.is_some());
        assert!(row.echo_paused.is_some());
    }
    let text = power_report_text(&parse(POWER_LOG).unwrap());
    let row = text
        .lines()
        .find(|line| line.trim_start().starts_with("hlt     1 msg / 1 ms") && line.contains("asleep"))
        .unwrap();
    assert!(row.contains("core 2: asleep 93.1 % / paused 2.0 %"), "{row}");
    assert!(row.ends_with("core 0: asleep 90.5 % / paused -"), "{row}");

    // A tick count that is not a number is unknown too, with a warning.
    let table =
        table_of(&log_with("sleep_ticks=1226127000 pause_ticks=26340000", "sleep_ticks=1226127000 pause_ticks=lots"));
    assert_eq!(table.row("hlt", 1000).unwrap().echo_paused, None);
    assert!(table.warnings.iter().any(|w| w.contains("pause_ticks=lots")));
}

#[test]
fn targets_follow_the_numbers() {
    let table = table_of(POWER_LOG);
    let rtt = target(&table, "mwait-rtt-vs-spin");
    assert_eq!(rtt.outcome, TargetOutcome::Met);
    assert_close(rtt.measured.unwrap(), (4240.0 / 1060.0) / (3952.0 / 1040.0));
    assert!(rtt.inputs_checked);
    let hlt = target(&table, "hlt-echo-asleep-at-1ms");
    assert_eq!(hlt.outcome, TargetOutcome::Met);
    assert_close(hlt.measured.unwrap(), 1_226_127_000.0 / 1_317_000_000.0);
    assert!(hlt.notes[0].contains("benchclient (core 1) is the load generator and spins by design"));
    let mwait = target(&table, "mwait-echo-asleep-at-1ms");
    assert_eq!(mwait.outcome, TargetOutcome::Missed);
    assert_close(mwait.measured.unwrap(), 1_161_895_000.0 / 1_305_500_000.0);
    let wakeup = target(&table, "mwait-wakeup-vs-spin-rtt");
    assert_eq!(wakeup.outcome, TargetOutcome::Met);
    assert_close(wakeup.measured.unwrap(), (9000.0 / 1060.0) / (3952.0 / 1040.0));
    assert!(wakeup.notes[0].contains("accel=tcg-single"));
    assert!(wakeup.notes[0].contains("emulation, not hardware"));

    let text = power_report_text(&parse(POWER_LOG).unwrap());
    assert!(text.contains(
        "[met   ] mwait RTT under continuous load <= 1.1x spin (each over its own floor): 1.05x (target <= 1.1x)"
    ));
    assert!(
        text.contains(
            "[met   ] hlt: server core asleep >= 90 % at 1 msg / 1 ms (echo's core): 93.1 % (target >= 90 %)"
        )
    );
    assert!(
        text.contains(
            "[MISSED] mwait: server core asleep >= 90 % at 1 msg / 1 ms (echo's core): 89.0 % (target >= 90 %)"
        )
    );
    assert!(text.contains(": 2.23x (target <= 3.0x)"));

    // Flip each target with the numbers behind it.
    let slower_mwait = table_of(&log_with(
        "policy=mwait interval_us=0 n=5000 median_cycles=4240",
        "policy=mwait interval_us=0 n=5000 median_cycles=4800",
    ));
    assert_eq!(outcome(&slower_mwait, "mwait-rtt-vs-spin"), TargetOutcome::Missed);
    let sleepier_mwait = table_of(&log_with("sleep_ticks=1161895000", "sleep_ticks=1200000000"));
    assert_eq!(outcome(&sleepier_mwait, "mwait-echo-asleep-at-1ms"), TargetOutcome::Met);
    let slow_wakeup = table_of(&log_with(
        "policy=mwait interval_us=1000 n=500 median_cycles=9000",
        "policy=mwait interval_us=1000 n=500 median_cycles=13000",
    ));
    assert_eq!(outcome(&slow_wakeup, "mwait-wakeup-vs-spin-rtt"), TargetOutcome::Missed);
    // Without the mwait boot's 1 ms wake-up record, target 3 is not measured.
    let no_wakeup = table_of(&log_with(
        "name=power-wakeup policy=mwait interval_us=1000",
        "name=power-other policy=mwait interval_us=1000",
    ));
    let check = target(&no_wakeup, "mwait-wakeup-vs-spin-rtt");
    assert_eq!(check.outcome, TargetOutcome::NotMeasured);
    assert!(check.detail.contains("no power-wakeup record"), "{}", check.detail);
}

#[test]
fn ok_below_n_is_flagged_loudly() {
    let table = table_of(POWER_LOG);
    let row = table.row("pause", 100).unwrap();
    assert_eq!(row.rtt_check, Some(MessageCheck::Mismatch));
    assert!(!row.is_trustworthy());
    assert!(table.warnings.iter().any(|w| w
        == "power-rtt policy=pause interval_us=100 (line 77): only 1999 of 2000 replies checked out: row NOT TRUSTWORTHY"));
    let text = power_policy::power_table_text(&table);
    assert!(text.contains("!! WARNING: power-rtt policy=pause interval_us=100"));
    let line = text.lines().find(|line| line.trim_start().starts_with("pause   1 msg / 100 µs")).unwrap();
    assert!(line.contains("FAIL 1999/2000"), "{line}");

    // A failed spin round trip taints the targets computed from it.
    let table = table_of(&log_with("max_cycles=15808 ok=5000", "max_cycles=15808 ok=4999"));
    assert!(!target(&table, "mwait-rtt-vs-spin").inputs_checked);
    assert!(!target(&table, "mwait-wakeup-vs-spin-rtt").inputs_checked);
    assert!(target(&table, "hlt-echo-asleep-at-1ms").inputs_checked);
    assert_eq!(outcome(&table, "mwait-rtt-vs-spin"), TargetOutcome::NotApplicable);
    assert!(target(&table, "mwait-rtt-vs-spin").measured.is_some());
    let text = power_policy::power_table_text(&table);
    assert!(
        text.contains("(target <= 1.1x) n/a: the spin row at back-to-back (run 3) failed its reply check"),
        "{text}"
    );
}

#[test]
fn csv_and_json_round_trip() {
    let runs = parse(POWER_LOG).unwrap();
    let dir = output_dir("round-trip");
    let written = write_power_outputs(&runs, &dir).unwrap();
    assert_eq!(written, [dir.join("power.csv"), dir.join("power-across-boots.csv"), dir.join("power.json")]);

    let table = PowerTable::from_runs(&runs);
    let rows = read_power_csv(&dir.join("power.csv")).unwrap();
    assert_eq!(rows, table.rows);
    let csv_text = std::fs::read_to_string(dir.join("power.csv")).unwrap();
    assert!(csv_text.starts_with("run,policy,interval_us,accel,tsc_hz,"));
    assert!(csv_text.contains(",mismatch,"));

    let json = read_power_json(&dir.join("power.json")).unwrap();
    assert_eq!(json.format, POWER_JSON_FORMAT);
    assert_eq!(POWER_JSON_FORMAT, "power-bench/3");
    assert_eq!(json, power_json(&runs));
    assert_eq!(json.runs.len(), 4);
    assert_eq!(json.table.targets.len(), 4);
    assert_eq!(json.table.baseline_policy.as_deref(), Some("spin"));

    // Without spin, the files say pause, in every row and in the table.
    let runs = parse(&without_boot(POWER_LOG, "spin")).unwrap();
    let dir = output_dir("round-trip-no-spin");
    write_power_outputs(&runs, &dir).unwrap();
    let csv_text = std::fs::read_to_string(dir.join("power.csv")).unwrap();
    let header: Vec<&str> = csv_text.lines().next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|field| *field == name).unwrap();
    let (ratio, base) = (column("rtt_over_baseline"), column("baseline_policy"));
    assert!(!header.contains(&"rtt_over_spin"));
    for line in csv_text.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[base], "pause", "{line}");
        assert!(fields[ratio].parse::<f64>().is_ok(), "{line}");
    }
    let rows = read_power_csv(&dir.join("power.csv")).unwrap();
    assert_eq!(rows, PowerTable::from_runs(&runs).rows);
    let json = read_power_json(&dir.join("power.json")).unwrap();
    assert_eq!(json, power_json(&runs));
    assert_eq!(json.table.baseline_policy.as_deref(), Some("pause"));
    let raw = std::fs::read_to_string(dir.join("power.json")).unwrap();
    assert!(raw.contains("\"baseline_policy\": \"pause\""));
    assert!(raw.contains("\"id\": \"mwait-rtt-vs-pause\""));
}

#[test]
fn no_power_boot_gives_empty_text_and_no_files() {
    let runs = parse(IPC_LOG).unwrap();
    assert_eq!(power_report_text(&runs), "");
    assert_eq!(power_report_text(&[]), "");
    let table = PowerTable::from_runs(&runs);
    assert!(table.is_empty() && table.rows.is_empty() && table.targets.is_empty());
    let dir = output_dir("no-power");
    assert!(write_power_outputs(&runs, &dir).unwrap().is_empty());
    assert!(!dir.exists());
}

#[test]
fn odd_blocks_do_not_panic() {
    // A power boot cut short, with no records but the floor.
    let log = "BENCH-BEGIN accel=kvm tsc_hz=3000000000 system=power-mwait\n\
               BENCH latency name=cacheline-pingpong n=10 median_cycles=300 p99_cycles=400\n\
               BENCH latency name=power-rtt policy=mwait n=10 median_cycles=900 p99_cycles=990 ok=10\n\
               BENCH latency name=power-rtt policy=mwait interval_us=soon n=10 median_cycles=900 p99_cycles=990 ok=10\n";
    let runs = parse(log).unwrap();
    let table = PowerTable::from_runs(&runs);
    assert_eq!(table.boots.len(), 1);
    assert!(table.rows.is_empty());
    assert!(table.warnings.iter().any(|w| w.contains("cut short")));
    assert!(table.warnings.iter().any(|w| w.contains("no interval_us")));
    assert!(table.warnings.iter().any(|w| w.contains("interval_us=soon")));
    assert!(table.targets.iter().all(|target| target.outcome == TargetOutcome::NotMeasured));
    let text = power_policy::power_table_text(&table);
    assert!(text.contains("CUT SHORT"));
    assert!(!text.contains("emulation, not hardware"));

    // A wake-up without a round trip at the same interval, and no counters.
    let log = "BENCH-BEGIN accel=tcg tsc_hz=1000000000 system=power-hlt\n\
               BENCH latency name=power-wakeup policy=hlt interval_us=1000 n=5 median_cycles=10 p99_cycles=20\n\
               BENCH-END status=ok\n";
    let table = PowerTable::from_runs(&parse(log).unwrap());
    let row = table.row("hlt", 1000).unwrap();
    assert_eq!((row.rtt_check, row.echo_asleep), (None, None));
    assert!(!row.is_trustworthy());
    assert!(table.warnings.iter().any(|w| w.contains("no power-rtt record")));
    assert!(table.warnings.iter().any(|w| w.contains("no counters for phase power-1000us")));
    let check = target(&table, "hlt-echo-asleep-at-1ms");
    assert_eq!(check.outcome, TargetOutcome::NotMeasured);
    assert!(power_policy::power_table_text(&table).contains("NO RTT"));
}

#[test]
fn intervals_read_as_rates() {
    assert_eq!(interval_text(0), "back-to-back");
    assert_eq!(interval_text(10), "1 msg / 10 µs");
    assert_eq!(interval_text(100), "1 msg / 100 µs");
    assert_eq!(interval_text(1000), "1 msg / 1 ms");
    assert_eq!(interval_text(2500), "1 msg / 2500 µs");
}
