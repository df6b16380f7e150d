//! `--runs N`: several boots of one system reported as the median of the
//! boots' medians with their spread (min..max), plus per-boot rows.

use bench::figures::Spread;
use bench::power_policy::across_boots::{PowerAcrossBootsCsvRow, power_across_boots};
use bench::{across_boots, across_boots_text, parse, power_table};

const IPC_LOG: &str = include_str!("fixtures/ipc-comparison.log");
const POWER_LOG: &str = include_str!("fixtures/power-tcg-smp3.log");

const MOVER_RTT: &str = "name=mover-rtt rings=2 extra=empty extra_rings=0 n=20000 median_cycles=4000";

/// The comparison log with the base mover round trip's median replaced.
fn boot_with_mover_median(cycles: u64) -> String {
    IPC_LOG.replacen(MOVER_RTT, &MOVER_RTT.replace("median_cycles=4000", &format!("median_cycles={cycles}")), 1)
}

#[test]
fn spread_is_the_median_of_the_values_with_min_and_max() {
    let spread = Spread::of(&[3.0, 1.0, 2.0]).unwrap();
    assert_eq!((spread.boots, spread.median, spread.min, spread.max), (3, 2.0, 1.0, 3.0));
    let spread = Spread::of(&[4.0, 1.0, 2.0, 3.0]).unwrap();
    assert_eq!(spread.median, 2.5);
    assert_eq!(Spread::of(&[]), None);
    assert_eq!(Spread::of(&[f64::NAN]), None);
}

#[test]
fn ipc_figures_across_boots_are_median_of_medians_with_spread() {
    // Three boots, interleaved as --runs 3 would concatenate them.
    let log = [4000, 5200, 3900].map(boot_with_mover_median).join("\n");
    let runs = parse(&log).unwrap();
    assert_eq!(runs.len(), 3);
    let rows = across_boots(&runs);
    let mover = rows.iter().find(|r| r.row == "mover-rtt rings=2: no extra").unwrap();
    assert_eq!(mover.system, "ipc");
    assert_eq!(mover.boots, 3);
    let ns = |cycles: f64| cycles * 1e9 / 2.6e9;
    let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-9, "{a} != {b}");
    close(mover.median_of_medians.unwrap(), ns(4000.0));
    close(mover.min.unwrap(), ns(3900.0));
    close(mover.max.unwrap(), ns(5200.0));
    close(mover.ratio_median.unwrap(), 4000.0 / 1040.0);
    close(mover.ratio_min.unwrap(), 3900.0 / 1040.0);
    // A figure that did not change has no spread.
    let floor = rows.iter().find(|r| r.row == "cacheline-pingpong").unwrap();
    assert_eq!(floor.min, floor.max);
    let calls = rows.iter().find(|r| r.row == "sync-call-stream same-core").unwrap();
    assert_eq!(calls.kind, "stream");
    close(calls.median_of_medians.unwrap(), 1e6);

    let text = across_boots_text(&runs);
    assert!(text.starts_with("Across 3 boots"), "{text}");
    assert!(text.contains("mover-rtt rings=2: no extra"), "{text}");
    assert!(text.contains(&format!("{:.1} ns..{:.1} ns", ns(3900.0), ns(5200.0))), "{text}");
    assert!(across_boots_text(&runs[..1]).is_empty());

    // Per-boot rows stay in ipc.csv (one per boot and record) and ipc.json.
    let measurements = bench::ipc::export::measurement_rows(&runs);
    let per_boot: Vec<usize> =
        measurements.iter().filter(|r| r.name == "mover-rtt" && r.rings == Some(2)).map(|r| r.run).collect();
    assert_eq!(per_boot, [1, 2, 3]);
    assert!(measurements.iter().all(|r| r.system.as_deref() == Some("ipc")));
    let json = bench::ipc::export::json_report(&runs);
    assert_eq!(json.runs.len(), 3);
    assert_eq!(json.across_boots, rows);
}

#[test]
fn a_boot_that_failed_its_check_is_left_out_and_counted() {
    let bad = boot_with_mover_median(9000).replacen(
        "median_cycles=9000 p99_cycles=4600 min_cycles=3600 max_cycles=20000 ok=20000",
        "median_cycles=9000 p99_cycles=4600 min_cycles=3600 max_cycles=20000 ok=19000",
        1,
    );
    let log = [boot_with_mover_median(4000), bad].join("\n");
    let runs = parse(&log).unwrap();
    let rows = across_boots(&runs);
    let mover = rows.iter().find(|r| r.row == "mover-rtt rings=2: no extra").unwrap();
    assert_eq!((mover.boots, mover.unchecked_boots), (1, 1));
    assert_eq!(mover.min, mover.max);
    assert!(across_boots_text(&runs).contains("1 (+1 FAILED check)"));
}

#[test]
fn systems_are_kept_apart() {
    let writers = IPC_LOG.replacen("12:00Z system=ipc", "12:00Z system=ipc-writers", 1);
    let log = [IPC_LOG, &writers].join("\n");
    let rows = across_boots(&parse(&log).unwrap());
    let floors: Vec<&str> = rows.iter().filter(|r| r.row == "cacheline-pingpong").map(|r| r.system.as_str()).collect();
    assert_eq!(floors, ["ipc", "ipc-writers"]);
}

#[test]
fn power_rows_across_boots() {
    // The same four policy boots twice, as --runs 2 interleaves them.
    let second = POWER_LOG.replacen(
        "name=power-rtt policy=hlt interval_us=0 n=5000 median_cycles=4300",
        "name=power-rtt policy=hlt interval_us=0 n=5000 median_cycles=5300",
        1,
    );
    assert_ne!(second, POWER_LOG);
    let log = [POWER_LOG, &second].join("\n");
    let runs = parse(&log).unwrap();
    let table = power_table(&runs);
    let rows = power_across_boots(&table);
    let hlt = rows.iter().find(|r| r.policy == "hlt" && r.interval_us == 0).unwrap();
    assert_eq!(hlt.boots, 2);
    let rtt = hlt.rtt_median_ns.unwrap();
    let ns = |cycles: f64| cycles * 1e9 / 2.6e9;
    assert!((rtt.min - ns(4300.0)).abs() < 1e-9);
    assert!((rtt.max - ns(5300.0)).abs() < 1e-9);
    assert!((rtt.median - ns(4800.0)).abs() < 1e-9);
    let csv = PowerAcrossBootsCsvRow::from(hlt);
    assert_eq!(csv.rtt_min_ns, Some(rtt.min));
    let text = bench::power_report_text(&runs);
    assert!(text.contains("Across boots: median of the boots' medians"), "{text}");
    // One boot per policy: no across-boots table.
    assert!(!bench::power_report_text(&parse(POWER_LOG).unwrap()).contains("Across boots"));
}
