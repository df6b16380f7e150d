//! Samples where the TSC went backwards: the guest drops and counts them
//! (`tsc_backwards=N`), and the host shows the count and warns.

use bench::{analyze, parse, power_report_text, report_text};

const SAMPLE_LOG: &str = include_str!("fixtures/ipc-tcg-smp4.log");
const POWER_LOG: &str = include_str!("fixtures/power-tcg-smp3.log");

#[test]
fn dropped_latency_samples_are_counted_shown_and_warned() {
    let line =
        "name=mover-rtt rings=2 n=20000 median_cycles=1530 p99_cycles=3400 min_cycles=1330 max_cycles=160000 ok=20000";
    assert!(SAMPLE_LOG.contains(line));
    let log = SAMPLE_LOG.replacen(line, &format!("{line} tsc_backwards=3"), 1);
    let run = &parse(&log).unwrap()[0];
    assert_eq!(run.latencies[3].tsc_backwards, Some(3));
    let analysis = analyze(run);
    let figure = &analysis.latencies[3];
    assert_eq!(figure.samples_kept(), 19_997);
    assert!(figure.is_trustworthy());
    let text = report_text(run);
    assert!(text.contains("tsc back"), "{text}");
    assert!(
        text.contains("mover-rtt rings=2 (line 11): 3 of 20000 samples dropped because the TSC went backwards; median and p99 are of the 19997 kept"),
        "{text}"
    );
    let rows = bench::ipc::export::measurement_rows(std::slice::from_ref(run));
    assert_eq!(rows[3].tsc_backwards, Some(3));
    assert_eq!(rows[2].tsc_backwards, None);
}

#[test]
fn a_figure_with_every_sample_dropped_is_not_trustworthy() {
    let line =
        "name=mover-rtt rings=1 n=20000 median_cycles=1500 p99_cycles=3300 min_cycles=1310 max_cycles=150000 ok=20000";
    let log = SAMPLE_LOG.replacen(line, &format!("{line} tsc_backwards=20000"), 1);
    let run = &parse(&log).unwrap()[0];
    let analysis = analyze(run);
    assert!(!analysis.latencies[2].is_trustworthy());
    assert!(analysis.warnings.iter().any(|w| w.contains("all 20000 samples dropped")));
}

#[test]
fn a_dropped_stream_is_a_warning_not_a_figure() {
    let log = SAMPLE_LOG.replacen(
        "[core 2] WARN  heartbeat",
        "[core 1] INFO  BENCH dropped kind=stream name=mover-stream batch=8 rings=2 extra=empty n=200000 ok=200000 tsc_backwards=1\n[core 2] WARN  heartbeat",
        1,
    );
    let run = &parse(&log).unwrap()[0];
    let analysis = analyze(run);
    assert!(
        analysis.warnings.iter().any(|w| w.contains("the guest dropped stream mover-stream (tsc_backwards=1)")),
        "{:?}",
        analysis.warnings
    );
}

#[test]
fn power_rows_show_dropped_wakeups() {
    let line = "name=power-wakeup policy=hlt interval_us=10 n=2000 median_cycles=28000 p99_cycles=36400 min_cycles=25200 max_cycles=140000";
    assert!(POWER_LOG.contains(line));
    let log = POWER_LOG.replacen(line, &format!("{line} tsc_backwards=7"), 1);
    let runs = parse(&log).unwrap();
    let table = bench::power_table(&runs);
    let row = table.row("hlt", 10).unwrap();
    assert_eq!(row.wakeup_tsc_backwards, Some(7));
    let text = power_report_text(&runs);
    assert!(text.contains("-/7"), "{text}");
    assert!(text.contains("power-wakeup policy=hlt interval_us=10: 7 of 2000 samples dropped"), "{text}");
}
