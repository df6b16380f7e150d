//! Tests of the IPC benchmark's host side against a realistic serial log
//! (`fixtures/ipc-tcg-smp4.log`: prefixes, colour codes, CRLF, noise lines).
//! Nothing here depends on timing: the inputs are fixed text.

use std::path::PathBuf;

use bench::figures::{Bound, MessageCheck, TargetOutcome, cycles_to_ns};
use bench::ipc::export::{self, CounterRow, MeasurementRow, TargetRow};
use bench::{ParseErrorKind, analyze, parse, report_text, summary_text};

const SAMPLE_LOG: &str = include_str!("fixtures/ipc-tcg-smp4.log");
const TSC_HZ: f64 = 2_601_000_000.0;

fn output_dir(test_name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("bench-tests").join(test_name);
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() <= expected.abs() * 1e-12, "{actual} != {expected}");
}

/// The fixture with one record line replaced.
fn sample_with(original: &str, replacement: &str) -> String {
    assert!(SAMPLE_LOG.contains(original), "fixture lacks {original:?}");
    SAMPLE_LOG.replacen(original, replacement, 1)
}

#[test]
fn sample_log_parses_into_one_complete_run() {
    let runs = parse(SAMPLE_LOG).unwrap();
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!((run.begin_line, run.end_line), (6, Some(29)));
    assert_eq!(run.end_status.as_deref(), Some("ok"));
    assert_eq!(run.accel, "tcg");
    assert_eq!(run.smp, Some(4));
    assert_eq!(run.cpu.as_deref(), Some("max"));
    assert_eq!(run.tsc_hz, 2_601_000_000);
    assert_eq!(run.tsc_source.as_deref(), Some("pit"));
    assert_eq!(run.date.as_deref(), Some("unknown"));
    assert_eq!(run.host_cpus, None);

    let names: Vec<(&str, Option<u32>)> = run.latencies.iter().map(|l| (l.name.as_str(), l.rings)).collect();
    assert_eq!(
        names,
        [
            ("cacheline-pingpong", None),
            ("direct-ring-rtt", None),
            ("mover-rtt", Some(1)),
            ("mover-rtt", Some(2)),
            ("mover-rtt", Some(4)),
            ("mover-rtt", Some(8)),
            ("mover-rtt", Some(16)),
            ("mover-rtt", Some(32)),
            ("mover-rtt", Some(64)),
        ]
    );
    let floor = &run.latencies[0];
    assert_eq!((floor.line, floor.n, floor.median_cycles, floor.p99_cycles), (7, 20000, 812, 1900));
    assert_eq!((floor.min_cycles, floor.max_cycles, floor.ok), (Some(700), Some(90000), Some(20000)));
    // The colour-coded line and the CRLF line parse like the others.
    assert_eq!(run.latencies[1].line, 9);
    assert_eq!(run.latencies[2].max_cycles, Some(150000));
    // Unknown keys are kept, not rejected.
    assert_eq!(run.latencies[8].extra.get("warmup").map(String::as_str), Some("2000"));

    let streams: Vec<(&str, Option<u32>, Option<u32>, u64)> =
        run.streams.iter().map(|s| (s.name.as_str(), s.batch, s.rings, s.cycles)).collect();
    assert_eq!(
        streams,
        [
            ("direct-ring-stream", Some(1), None, 60_000_000),
            ("mover-stream", Some(1), Some(1), 110_000_000),
            ("mover-stream", Some(8), Some(1), 70_000_000),
            ("mover-stream", Some(32), Some(1), 52_000_000),
            ("mover-stream", Some(1), Some(64), 158_000_000),
        ]
    );

    assert_eq!(run.counters.len(), 6);
    let mover = &run.counters[1];
    assert_eq!((mover.phase.as_str(), mover.core, mover.role.as_deref()), ("mover-rtt", 1, Some("mover")));
    assert_eq!((mover.cr3_writes, mover.syscalls, mover.messages), (Some(0), Some(0), Some(40000)));
    assert_eq!(run.counters[5].extra.get("vm_exits").map(String::as_str), Some("0"));
    assert!(run.other_records.is_empty());
}

#[test]
fn missing_required_keys_name_the_line() {
    let cases = [
        ("latency", "name", "BENCH latency n=5 median_cycles=1 p99_cycles=2 ok=5"),
        ("latency", "n", "BENCH latency name=x median_cycles=1 p99_cycles=2 ok=5"),
        ("latency", "median_cycles", "BENCH latency name=x n=5 p99_cycles=2 ok=5"),
        ("latency", "p99_cycles", "BENCH latency name=x n=5 median_cycles=1 ok=5"),
        ("stream", "cycles", "BENCH stream name=x batch=1 n=5 ok=5"),
        ("stream", "n", "BENCH stream name=x batch=1 cycles=5 ok=5"),
        ("counters", "phase", "BENCH counters core=1 cr3_writes=0"),
        ("BEGIN", "tsc_hz", "BENCH-BEGIN accel=tcg smp=4"),
    ];
    for (record, key, bad_line) in cases {
        let log = if record == "BEGIN" {
            format!("noise\n[core 0] INFO  {bad_line}\nBENCH-END status=ok\n")
        } else {
            format!("noise\nBENCH-BEGIN accel=tcg tsc_hz=1000\n[core 0] INFO  {bad_line}\nBENCH-END status=ok\n")
        };
        let error = parse(&log).unwrap_err();
        let expected_line = if record == "BEGIN" { 2 } else { 3 };
        assert_eq!(error.line, expected_line, "{bad_line}");
        assert_eq!(error.kind, ParseErrorKind::MissingKey { record: record.to_string(), key }, "{bad_line}");
        let message = error.to_string();
        assert!(message.starts_with(&format!("serial log line {expected_line}: ")), "{message}");
        assert!(message.contains(&format!("`{key}`")) && message.contains(bad_line), "{message}");
    }
}

#[test]
fn malformed_lines_are_errors_with_line_numbers() {
    let begin = "BENCH-BEGIN accel=tcg tsc_hz=1000\n";
    let cases: [(String, usize, ParseErrorKind); 8] = [
        (
            format!("{begin}BENCH latency name=x n=5 median_cycles=12x p99_cycles=2\n"),
            2,
            ParseErrorKind::NotANumber { key: "median_cycles".into(), value: "12x".into() },
        ),
        (
            format!("{begin}BENCH stream name=x n=5 cycles=9 garbage\n"),
            2,
            ParseErrorKind::TokenWithoutEquals { token: "garbage".into() },
        ),
        (format!("{begin}BENCH stream name=x n=5 cycles=9 n=6\n"), 2, ParseErrorKind::RepeatedKey { key: "n".into() }),
        (format!("{begin}BENCH stream name=x n=5 cycles=0\n"), 2, ParseErrorKind::ZeroStreamCycles),
        ("BENCH-BEGIN tsc_hz=0\n".to_string(), 1, ParseErrorKind::ZeroTscHz),
        (
            "boot\nBENCH latency name=x n=1 median_cycles=1 p99_cycles=1\n".to_string(),
            2,
            ParseErrorKind::RecordOutsideRun,
        ),
        ("boot\nboot\nBENCH-END status=ok\n".to_string(), 3, ParseErrorKind::EndWithoutBegin),
        ("boot\nrunning BENCHMARKS\n".to_string(), 0, ParseErrorKind::NoRuns),
    ];
    for (log, line, kind) in cases {
        let error = parse(&log).unwrap_err();
        assert_eq!((error.line, &error.kind), (line, &kind), "{log}");
    }
}

#[test]
fn unknown_record_kinds_are_kept_and_ignored() {
    let log = "BENCH-BEGIN tsc_hz=1000 accel=kvm future_key=7\nBENCH power policy=mwait wake_cycles=10\nBENCH-END status=ok\n";
    let runs = parse(log).unwrap();
    assert_eq!(runs[0].other_records.len(), 1);
    assert_eq!(runs[0].other_records[0].kind, "power");
    assert_eq!(runs[0].begin_extra.get("future_key").map(String::as_str), Some("7"));
    // A run without any figure still reports, saying what is missing.
    let text = report_text(&runs[0]);
    assert!(text.contains("(no latency records)") && text.contains("not measured"), "{text}");
}

#[test]
fn ratios_times_and_targets_follow_from_the_cycles() {
    let runs = parse(SAMPLE_LOG).unwrap();
    let analysis = analyze(&runs[0]);

    let floor_ns = 812.0 * 1e9 / TSC_HZ;
    assert_close(analysis.floor_median_ns.unwrap(), floor_ns);
    assert_close(cycles_to_ns(2601, 2_601_000_000), 1000.0);
    let mover_one = &analysis.latencies[2];
    assert_eq!((mover_one.name.as_str(), mover_one.rings), ("mover-rtt", Some(1)));
    assert_close(mover_one.median_ns, 1500.0 * 1e9 / TSC_HZ);
    assert_close(mover_one.p99_ns, 3300.0 * 1e9 / TSC_HZ);
    assert_close(mover_one.one_way_ns, 750.0 * 1e9 / TSC_HZ);
    assert_close(mover_one.median_over_floor.unwrap(), 1500.0 / 812.0);
    assert_close(analysis.latencies[0].median_over_floor.unwrap(), 1.0);

    let direct_rate = 200_000.0 * TSC_HZ / 60_000_000.0;
    assert_close(analysis.direct_stream_messages_per_second.unwrap(), direct_rate);
    let mover_stream = &analysis.streams[1];
    assert_close(mover_stream.messages_per_second, 200_000.0 * TSC_HZ / 110_000_000.0);
    assert_close(mover_stream.over_direct_stream.unwrap(), 60.0 / 110.0);
    assert_close(mover_stream.ns_per_message.unwrap(), 110_000_000.0 / TSC_HZ * 1e9 / 200_000.0);

    // The first three; the sync comparison targets are n/a here (no sync rows).
    let targets: Vec<(&str, Bound, f64, TargetOutcome, bool)> = analysis
        .targets
        .iter()
        .take(3)
        .map(|t| (t.id.as_str(), t.bound, t.limit, t.outcome, t.inputs_checked))
        .collect();
    assert_eq!(
        targets,
        [
            ("mover-one-way-vs-floor", Bound::AtMost, 2.0, TargetOutcome::Met, true),
            ("mover-stream-vs-direct", Bound::AtLeast, 0.5, TargetOutcome::Met, true),
            ("mover-rtt-64-vs-1-rings", Bound::AtMost, 1.5, TargetOutcome::Missed, true),
        ]
    );
    assert_close(analysis.targets[0].measured.unwrap(), 750.0 / 406.0);
    assert_close(analysis.targets[1].measured.unwrap(), 60.0 / 110.0);
    assert_close(analysis.targets[2].measured.unwrap(), 2400.0 / 1500.0);

    let counters = &analysis.counters[1];
    assert_eq!(counters.cr3_writes_per_message, Some(0.0));
    assert_eq!(analysis.context_switches.total, Some(0));
    assert_eq!(analysis.context_switches.roles, ["client", "mover", "server"]);
    assert!(analysis.warnings.is_empty(), "{:?}", analysis.warnings);
}

#[test]
fn targets_without_their_records_are_not_measured() {
    let log = sample_with(
        "[core 0] INFO  BENCH latency name=mover-rtt rings=64 n=20000 median_cycles=2400 p99_cycles=7900 min_cycles=1900 max_cycles=2900000 ok=20000 warmup=2000\n",
        "",
    );
    let analysis = analyze(&parse(&log).unwrap()[0]);
    let scaling = &analysis.targets[2];
    assert_eq!((scaling.outcome, scaling.measured), (TargetOutcome::NotMeasured, None));
    assert!(scaling.detail.contains("mover-rtt rings=64"), "{}", scaling.detail);
}

#[test]
fn ok_not_equal_to_n_is_flagged_loudly() {
    let log = sample_with(
        "name=mover-rtt rings=1 n=20000 median_cycles=1500 p99_cycles=3300 min_cycles=1310 max_cycles=150000 ok=20000",
        "name=mover-rtt rings=1 n=20000 median_cycles=1500 p99_cycles=3300 min_cycles=1310 max_cycles=150000 ok=19998",
    );
    let log = log.replacen(
        "name=mover-stream batch=8 rings=1 n=200000 cycles=70000000 ok=200000",
        "name=mover-stream batch=8 rings=1 n=200000 cycles=70000000",
        1,
    );
    let run = &parse(&log).unwrap()[0];
    let analysis = analyze(run);
    assert_eq!(analysis.latencies[2].check, MessageCheck::Mismatch);
    assert_eq!(analysis.latencies[3].check, MessageCheck::AllChecked);
    assert_eq!(analysis.streams[2].check, MessageCheck::NotReported);
    // The targets built on the bad row keep their value but are n/a, never
    // met or missed.
    assert!(!analysis.targets[0].inputs_checked);
    assert!(!analysis.targets[2].inputs_checked);
    assert!(analysis.targets[1].inputs_checked);
    assert_eq!(analysis.targets[0].outcome, TargetOutcome::NotApplicable);
    assert_eq!(analysis.targets[2].outcome, TargetOutcome::NotApplicable);
    assert!(analysis.targets[0].measured.is_some());
    assert_eq!(analysis.targets[1].outcome, TargetOutcome::Met);

    let text = report_text(run);
    assert!(
        text.contains(
            "!! WARNING: mover-rtt rings=1 (line 10): only 19998 of 20000 messages checked out: figure NOT TRUSTWORTHY"
        ),
        "{text}"
    );
    assert!(text.contains("!! WARNING: mover-stream batch=8 rings=1 (line 19): no ok= count"), "{text}");
    assert!(text.contains("FAIL 19998/20000"), "{text}");
    assert!(text.contains("UNCHECKED"), "{text}");
    assert!(
        text.contains("[n/a   ] mover one-way latency (1 ring) <= 2x cache-line floor one-way: 1.85x (target <= 2.0x) n/a: mover-rtt rings=1: only 19998 of 20000 messages checked out"),
        "{text}"
    );
    assert!(!text.contains("[met   ] mover one-way"), "{text}");

    let rows = export::measurement_rows(std::slice::from_ref(run));
    assert_eq!(rows[2].check, "mismatch");
    assert_eq!(rows[11].check, "not-reported");
}

#[test]
fn report_states_accelerator_caveats_and_zero_context_switches() {
    let mut run = parse(SAMPLE_LOG).unwrap().remove(0);
    let text = report_text(&run);
    assert!(text.contains("accel=tcg cpu=max smp=4"), "{text}");
    assert!(text.contains("TCG is software emulation"), "{text}");
    assert!(text.contains("comparable only within this boot"), "{text}");
    assert!(text.contains("more vCPUs than host cores make tails meaningless"), "{text}");
    assert!(
        text.contains("context switches (CR3 writes) on client/mover/server cores during measurement: 0\n"),
        "{text}"
    );
    assert!(text.contains("syscalls on client/mover/server cores during measurement: 0\n"), "{text}");
    assert!(text.contains("[met   ] mover one-way latency (1 ring) <= 2x cache-line floor one-way: 1.85x"), "{text}");
    assert!(text.contains("[MISSED] mover RTT at 64 rings (63 of them empty) <= 1.5x RTT at 1 ring: 1.60x"), "{text}");
    assert!(!text.contains("WARNING"), "{text}");

    run.host_cpus = Some(2);
    let text = report_text(&run);
    assert!(text.contains("4 vCPUs on 2 host CPUs: more vCPUs than host cores make tails meaningless"), "{text}");
}

#[test]
fn nonzero_context_switches_are_listed() {
    let log = sample_with(
        "phase=mover-rtt core=1 role=mover cr3_writes=0 syscalls=0",
        "phase=mover-rtt core=1 role=mover cr3_writes=12 syscalls=3",
    );
    let run = &parse(&log).unwrap()[0];
    let text = report_text(run);
    assert!(
        text.contains("context switches (CR3 writes) on client/mover/server cores during measurement: 12 (NOT ZERO: mover-rtt core 1 (mover): 12)"),
        "{text}"
    );
    assert!(text.contains("syscalls on client/mover/server cores during measurement: 3 (NOT ZERO"), "{text}");
    assert!(text.contains("0.0003"), "cr3 writes per message: {text}");
}

#[test]
fn several_runs_and_a_cut_short_run_are_reported() {
    let second = SAMPLE_LOG.replace("median_cycles=2400", "median_cycles=2100");
    let cut_short: String = SAMPLE_LOG.lines().take(12).map(|line| format!("{line}\n")).collect();
    let log = format!("{SAMPLE_LOG}{second}{cut_short}");
    let runs = parse(&log).unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(runs[1].begin_line, 30 + 6);
    assert_eq!(runs[2].end_line, None);
    assert_eq!(runs[2].latencies.len(), 5);
    assert!(report_text(&runs[2]).contains("run cut short: BENCH-BEGIN at line 66 has no BENCH-END"));

    let summary = summary_text(&runs);
    assert!(summary.starts_with("Target ratios across 3 runs"), "{summary}");
    let scaling = summary.lines().find(|line| line.contains("mover-rtt-64-vs-1-rings")).unwrap();
    // run 1: 1.60, run 2: 1.40, run 3: not measured; min, median, max; met 1 of 3.
    let cells: Vec<&str> = scaling.split_whitespace().collect();
    assert_eq!(
        cells,
        ["mover-rtt-64-vs-1-rings", "<=", "1.5x", "1.60x", "1.40x", "-", "1.40x", "1.50x", "1.60x", "1/3"]
    );
    assert_eq!(summary_text(&runs[..1]), "");
}

#[test]
fn csv_and_json_round_trip() {
    let log = format!("{SAMPLE_LOG}{SAMPLE_LOG}");
    let runs = parse(&log).unwrap();
    let dir = output_dir("round-trip");
    let paths = export::write_data_files(&runs, &dir).unwrap();
    let names: Vec<String> = paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(
        names,
        ["ipc.csv", "ipc-counters.csv", "ipc-row-counters.csv", "ipc-targets.csv", "ipc-across-boots.csv", "ipc.json"]
    );

    let measurements: Vec<MeasurementRow> = export::read_csv(&dir.join("ipc.csv")).unwrap();
    assert_eq!(measurements, export::measurement_rows(&runs));
    assert_eq!(measurements.len(), 2 * (9 + 5));
    assert_eq!(measurements[14].run, 2);
    let counters: Vec<CounterRow> = export::read_csv(&dir.join("ipc-counters.csv")).unwrap();
    assert_eq!(counters, export::counter_rows(&runs));
    let targets: Vec<TargetRow> = export::read_csv(&dir.join("ipc-targets.csv")).unwrap();
    assert_eq!(targets, export::target_rows(&runs));
    assert_eq!(targets[2].outcome, "missed");

    let json = export::read_json(&dir.join("ipc.json")).unwrap();
    assert_eq!(json, export::json_report(&runs));
    assert_eq!(json.format, export::JSON_FORMAT);
    assert_eq!(json.runs[0].run, runs[0]);

    let header = std::fs::read_to_string(dir.join("ipc.csv")).unwrap();
    assert!(
        header.starts_with(
            "run,system,accel,smp,tsc_hz,kind,name,batch,rings,placement,path,extra,extra_rings,writers,what,n,ok,check,"
        ),
        "{header}"
    );
}

#[test]
fn png_plots_are_written() {
    let runs = parse(SAMPLE_LOG).unwrap();
    let dir = output_dir("png");
    let paths = bench::write_outputs(&runs, &dir).unwrap();
    let png = paths.iter().find(|path| path.extension().is_some_and(|ext| ext == "png")).unwrap();
    assert_eq!(png.file_name().unwrap(), "ipc.png");
    let bytes = std::fs::read(png).unwrap();
    assert!(bytes.len() > 10_000, "{} bytes", bytes.len());
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");

    // Several runs give one file each; a run without records still plots.
    let empty_run = "BENCH-BEGIN accel=kvm smp=2 tsc_hz=3000000000\nBENCH-END status=ok\n";
    let runs = parse(&format!("{SAMPLE_LOG}{empty_run}")).unwrap();
    let paths = bench::write_plots(&runs, &dir).unwrap();
    let names: Vec<_> = paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["ipc-run1.png", "ipc-run2.png"]);
    for path in paths {
        assert!(std::fs::metadata(path).unwrap().len() > 1000);
    }
}

#[test]
fn streams_are_set_against_the_stream_floor() {
    let direct = "[core 0] INFO  BENCH stream name=direct-ring-stream batch=1 n=200000 cycles=60000000 ok=200000\n";
    let floor = "[core 0] INFO  BENCH stream name=stream-floor batch=1 n=200000 cycles=30000000 ok=200000 slots=4096\n";
    let find = |analysis: &bench::Analysis, id: &str| analysis.targets.iter().find(|t| t.id == id).cloned().unwrap();

    let without = analyze(&parse(SAMPLE_LOG).unwrap()[0]);
    let direct_target = find(&without, "direct-stream-vs-stream-floor");
    assert_eq!((direct_target.outcome, direct_target.measured), (TargetOutcome::NotMeasured, None));
    assert!(direct_target.detail.contains("no stream-floor record"), "{}", direct_target.detail);

    let with = analyze(&parse(&sample_with(direct, &format!("{direct}{floor}"))).unwrap()[0]);
    let direct_target = find(&with, "direct-stream-vs-stream-floor");
    // 60 M cycles for the direct ring, 30 M for the floor: half its rate.
    assert_close(direct_target.measured.unwrap(), 30.0 / 60.0);
    assert_eq!(
        (direct_target.bound, direct_target.limit, direct_target.outcome),
        (Bound::AtLeast, 0.7, TargetOutcome::Missed)
    );
    let mover_target = find(&with, "mover-stream-vs-stream-floor");
    assert_close(mover_target.measured.unwrap(), 30.0 / 110.0);
    assert_eq!(mover_target.outcome, TargetOutcome::Missed);

    // A floor whose messages did not all check out carries no verdict.
    let bad_floor = floor.replace("ok=200000", "ok=199999");
    let bad = analyze(&parse(&sample_with(direct, &format!("{direct}{bad_floor}"))).unwrap()[0]);
    assert!(!find(&bad, "direct-stream-vs-stream-floor").inputs_checked);
}

#[test]
fn the_direct_stream_meets_the_floor_of_its_own_ring_size() {
    let usual = "[core 0] INFO  BENCH stream name=direct-ring-stream batch=1 n=200000 cycles=60000000 ok=200000\n";
    let sized = |slots: u32, cycles: u64| {
        format!(
            "[core 0] INFO  BENCH stream name=direct-ring-stream batch=1 n=200000 cycles={cycles} ok=200000 slots={slots}\n"
        )
    };
    let floor = |slots: u32, cycles: u64| {
        format!(
            "[core 0] INFO  BENCH stream name=stream-floor batch=1 n=200000 cycles={cycles} ok=200000 slots={slots}\n"
        )
    };
    // The floor's size first (as the kernel prints them), then the usual 64.
    let records = format!(
        "{}{}{}{}",
        sized(4096, 40_000_000),
        sized(64, 50_000_000),
        floor(4096, 30_000_000),
        floor(64, 45_000_000)
    );
    let analysis = analyze(&parse(&sample_with(usual, &records)).unwrap()[0]);
    let target = analysis.targets.iter().find(|t| t.id == "direct-stream-vs-stream-floor").unwrap();
    // 4096 slots against the 4096-slot floor, not the 64-slot ring.
    assert_close(target.measured.unwrap(), 30.0 / 40.0);
    assert!(target.detail.contains("slots=4096"), "{}", target.detail);
    // The other ratios keep the usual 64-slot ring as their baseline.
    let baseline =
        analysis.streams.iter().find(|f| f.name == "direct-ring-stream" && f.variant.slots == Some(64)).unwrap();
    assert_close(baseline.over_direct_stream.unwrap(), 1.0);
}
