//! The writers boot (`bench-writers.toml`, -smp 5): mover rows whose extra
//! rings are written by `ring-writer` servers, against the same rings idle.
//! The fixture is a real serial log of 2026-11-30 (TCG single-threaded).

use bench::figures::TargetOutcome;
use bench::{CounterVerdict, analyze, parse, report_text};

const LOG: &str = include_str!("fixtures/ipc-writers-tcg-smp5.log");

#[test]
fn written_rows_are_labelled_and_compared_with_idle_ones() {
    let run = &parse(LOG).unwrap()[0];
    assert_eq!(run.smp, Some(5));
    assert_eq!(run.begin_extra.get("system").map(String::as_str), Some("ipc-writers"));
    let analysis = analyze(run);
    let mover: Vec<_> = analysis.latencies.iter().filter(|f| f.name == "mover-rtt").collect();
    assert_eq!(mover.len(), 2);
    assert_eq!(mover[0].variant.extra.as_deref(), Some("idle"));
    assert_eq!(mover[1].variant.extra.as_deref(), Some("written"));
    assert_eq!(mover[1].variant.writers, Some(2));
    // The idle row is the base of "vs mover" in this boot.
    assert_eq!(mover[0].over_mover, Some(1.0));
    let written_over_idle = mover[1].median_ns / mover[0].median_ns;
    assert!((mover[1].over_mover.unwrap() - written_over_idle).abs() < 1e-12);

    // Every phase of the boot is checked against its row, none is missing.
    let phases: Vec<(&str, CounterVerdict)> =
        analysis.row_counters.iter().map(|r| (r.phase.as_str(), r.verdict)).collect();
    assert_eq!(
        phases,
        [
            ("mover-rtt-idle", CounterVerdict::Consistent),
            ("mover-rtt-written", CounterVerdict::Consistent),
            ("mover-stream-idle", CounterVerdict::Consistent),
            ("mover-stream-written", CounterVerdict::Consistent),
        ]
    );
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
    assert!(analysis.counter_failures.is_empty());
    // No 64-ring row in this boot: that target is not measured, not judged.
    assert_eq!(analysis.targets[2].outcome, TargetOutcome::NotMeasured);

    let text = report_text(run);
    assert!(text.contains("smp=5"), "{text}");
    assert!(text.contains("rings=4: 2 written, 2 writer cores"), "{text}");
    assert!(text.contains("rings=4: 2 idle, 2 writer cores"), "{text}");
    assert!(text.contains("ring writer (endpoint 1 of benchclient) sent 90254 messages"), "{text}");
}
