//! Tests of the message-size sweep's report against a real serial log
//! (`fixtures/sizes-tcg-smp3.log`: one `system=sizes` boot of `cargo
//! xtask bench sizes` under single-threaded TCG, -smp 3, on the shared
//! 2-core machine, 2026-11-30T22:37Z). Nothing here
//! depends on the figures being fast or slow: only on what is derived
//! from them and how a failed check or a missing record is treated.

use bench::figures::{MessageCheck, TargetOutcome};
use bench::sizes::analysis::{COST_DESCRIPTOR, COST_PLAIN, PATHS};
use bench::sizes::{analyze_sizes, is_sizes_run, sizes_report_text, write_sizes_outputs};

const LOG: &str = include_str!("fixtures/sizes-tcg-smp3.log");

fn run() -> bench::Run {
    let runs = bench::parse(LOG).expect("the fixture parses");
    assert_eq!(runs.len(), 1);
    assert!(is_sizes_run(&runs[0]));
    runs.into_iter().next().unwrap()
}

#[test]
fn every_path_and_size_is_a_checked_row() {
    let analysis = analyze_sizes(&run());
    assert_eq!(analysis.rows.len(), 6 * 4);
    for size in [64, 256, 1024, 4096, 16384, 65536] {
        for path in PATHS {
            let row = analysis.rows.iter().find(|r| r.size == size && r.path == path).expect("row");
            assert_eq!(row.check, MessageCheck::AllChecked, "{path} {size}");
            assert!(row.bytes_per_second.is_some_and(|b| b > 0.0));
            assert!(row.rtt_median_ns.is_some() && row.rtt_over_floor.is_some());
        }
    }
    let inline_64 = analysis.rows.iter().find(|r| r.size == 64 && r.path == "inline-mover").unwrap();
    assert_eq!(inline_64.slots, Some(2));
    assert_eq!(inline_64.bytes_over_inline_mover, Some(1.0));
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
}

#[test]
fn the_targets_come_from_the_same_boot() {
    let run = run();
    let analysis = analyze_sizes(&run);
    assert_eq!(analysis.targets.len(), 2);
    let bytes = &analysis.targets[0];
    let desc = analysis.rows.iter().find(|r| r.size == 65536 && r.path == "descriptor-mover").unwrap();
    let inline = analysis.rows.iter().find(|r| r.size == 64 && r.path == "inline-mover").unwrap();
    let expected = desc.bytes_per_second.unwrap() / inline.bytes_per_second.unwrap();
    assert!((bytes.measured.unwrap() - expected).abs() < 1e-9);
    assert!(matches!(bytes.outcome, TargetOutcome::Met | TargetOutcome::Missed));
    let cost = &analysis.targets[1];
    let plain = analysis.cost.iter().find(|c| c.path == COST_PLAIN).unwrap();
    let with = analysis.cost.iter().find(|c| c.path == COST_DESCRIPTOR).unwrap();
    assert_eq!((plain.streams, with.streams), (20, 20));
    assert_eq!((plain.messages, with.messages), (400_000, 400_000));
    assert_eq!(plain.rounds_ns_per_message.len(), 20);
    assert_eq!(with.rounds_ns_per_message.len(), 20);
    assert_eq!(plain.mover_messages_per_message.map(|v| v.round()), Some(1.0));
    assert_eq!(with.syscalls_per_message, Some(0.0));
    // The median of the rounds' own ratios (each round: plain, then with).
    let mut ratios: Vec<f64> =
        plain.rounds_ns_per_message.iter().zip(&with.rounds_ns_per_message).map(|(p, w)| w / p).collect();
    ratios.sort_by(f64::total_cmp);
    assert!((cost.measured.unwrap() - ratios[ratios.len() / 2]).abs() < 1e-9);
}

#[test]
fn a_failed_check_is_flagged_and_carries_no_verdict() {
    // The peer counted one 64 KiB buffer of the descriptor stream bad.
    let log: String = LOG
        .lines()
        .map(|l| {
            if l.contains("BENCH stream name=sizes-stream path=descriptor-mover size=65536") {
                format!("{}\n", l.replace(" ok=256 ", " ok=255 "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_ne!(log, LOG, "the fixture line to break is there");
    let runs = bench::parse(&log).unwrap();
    let analysis = analyze_sizes(&runs[0]);
    let row = analysis.rows.iter().find(|r| r.size == 65536 && r.path == "descriptor-mover").unwrap();
    assert_eq!(row.check, MessageCheck::Mismatch);
    assert_eq!(analysis.targets[0].outcome, TargetOutcome::NotApplicable);
    assert!(analysis.warnings.iter().any(|w| w.contains("descriptor-mover at 64 KiB")));
    assert!(sizes_report_text(&runs).contains("FAIL 1255/1256"));
}

#[test]
fn a_missing_record_is_not_measured_not_a_panic() {
    let log: String = LOG.lines().filter(|l| !l.contains("sizes-cost")).map(|l| format!("{l}\n")).collect();
    let runs = bench::parse(&log).unwrap();
    let analysis = analyze_sizes(&runs[0]);
    assert!(analysis.cost.is_empty());
    assert_eq!(analysis.targets[1].outcome, TargetOutcome::NotMeasured);
    assert!(sizes_report_text(&runs).contains("not measured"));
}

#[test]
fn the_report_and_the_files() {
    let runs = vec![run()];
    let text = sizes_report_text(&runs);
    for needle in
        ["message-size sweep", "descriptor-direct", "64 KiB", "targets", "mover-descriptor", "per round", "TCG"]
    {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    let dir = std::env::temp_dir().join(format!("sizes-report-{}", std::process::id()));
    let written = write_sizes_outputs(&runs, &dir).unwrap();
    let names: Vec<String> = written.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["sizes.csv", "sizes-cost.csv", "sizes.png", "sizes.json"]);
    let csv = std::fs::read_to_string(dir.join("sizes.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 24);
    let json: bench::sizes::SizesJson = bench::data_files::read_json(&dir.join("sizes.json")).unwrap();
    assert_eq!(json.format, bench::sizes::SIZES_JSON_FORMAT);
    assert_eq!(json.boots.len(), 1);
    assert!(std::fs::metadata(dir.join("sizes.png")).unwrap().len() > 1000);
    let _ = std::fs::remove_dir_all(&dir);
    // No sweep boot: nothing written.
    assert!(write_sizes_outputs(&[], &dir).unwrap().is_empty());
}
