//! The rows of the comparison the project exists for: synchronous calls
//! (same core, cross core), a ring between two servers, two hops; their
//! ratios to the floor and the mover, "per core used", the per-row counter
//! check (a contradicting fixture fails), and the comparison targets.

use bench::figures::{MessageCheck, TargetOutcome};
use bench::ipc::export;
use bench::{CounterVerdict, IpcPath, analyze, counter_failures, parse, report_text};

const LOG: &str = include_str!("fixtures/ipc-comparison.log");

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() <= expected.abs() * 1e-9, "{actual} != {expected}");
}

fn with(original: &str, replacement: &str) -> String {
    assert!(LOG.contains(original), "fixture lacks {original:?}");
    LOG.replacen(original, replacement, 1)
}

#[test]
fn every_new_row_is_parsed_with_its_path_and_ratios() {
    let run = &parse(LOG).unwrap()[0];
    let analysis = analyze(run);
    let latency = |name: &str, key: &str, value: &str| {
        analysis
            .latencies
            .iter()
            .find(|f| {
                f.name == name
                    && (key.is_empty()
                        || f.variant.placement.as_deref() == Some(value)
                        || f.variant.path.as_deref() == Some(value))
            })
            .unwrap_or_else(|| panic!("no {name} {key}={value}"))
    };
    let same = latency("sync-call-rtt", "placement", "same-core");
    assert_eq!(IpcPath::of_latency(same), Some(IpcPath::SyncSameCore));
    assert_eq!(same.check, MessageCheck::AllChecked);
    // 2600 cycles at 2.6 GHz = 1000 ns; floor 400 ns; mover 1538.5 ns.
    assert_close(same.median_ns, 1000.0);
    assert_close(same.median_over_floor.unwrap(), 2600.0 / 1040.0);
    assert_close(same.over_mover.unwrap(), 2600.0 / 4000.0);
    let cross = latency("sync-call-rtt", "placement", "cross-core");
    assert_eq!(IpcPath::of_latency(cross), Some(IpcPath::SyncCrossCore));
    assert_close(cross.over_mover.unwrap(), 5200.0 / 4000.0);
    let direct = latency("user-direct-ring-rtt", "", "");
    assert_eq!(IpcPath::of_latency(direct), Some(IpcPath::UserDirectRing));
    assert_close(direct.median_over_floor.unwrap(), 1700.0 / 1040.0);
    let hop_mover = latency("two-hop-rtt", "path", "mover");
    assert_eq!(IpcPath::of_latency(hop_mover), Some(IpcPath::TwoHopMover));
    let hop_sync = latency("two-hop-rtt", "path", "sync");
    assert_eq!(IpcPath::of_latency(hop_sync), Some(IpcPath::TwoHopSync));
    assert_close(hop_sync.over_mover.unwrap(), 6500.0 / 4000.0);

    let stream = |name: &str, placement: Option<&str>, batch: Option<u32>| {
        analysis
            .streams
            .iter()
            .find(|f| f.name == name && f.variant.placement.as_deref() == placement && f.batch == batch)
            .unwrap()
    };
    let mover = stream("mover-stream", None, Some(1));
    assert_eq!(mover.cores_used, Some(3));
    assert_close(mover.messages_per_second, 200_000.0 * 2.6e9 / 156e6);
    assert_close(mover.per_core_per_second.unwrap(), mover.messages_per_second / 3.0);
    assert_close(mover.over_mover.unwrap(), 1.0);
    let same_calls = stream("sync-call-stream", Some("same-core"), None);
    assert_eq!(same_calls.cores_used, Some(1));
    assert_close(same_calls.messages_per_second, 1e6);
    assert_close(same_calls.per_core_per_second.unwrap(), 1e6);
    assert_close(same_calls.over_mover.unwrap(), 1e6 / mover.messages_per_second);
    let cross_calls = stream("sync-call-stream", Some("cross-core"), None);
    assert_eq!(cross_calls.cores_used, Some(2));
    assert_close(cross_calls.per_core_per_second.unwrap(), 1e6 / 1.5 / 2.0);
    let ring = stream("user-direct-ring-stream", None, Some(8));
    assert_eq!(ring.cores_used, Some(2));
    assert_close(ring.messages_per_second, 10e6);
    assert_eq!(stream("direct-ring-stream", None, Some(1)).cores_used, Some(2));

    let text = report_text(run);
    for needle in [
        "sync-call-rtt         same-core",
        "sync-call-stream         same-core",
        "user-direct-ring-stream  batch=8",
        "two-hop-rtt           path=sync",
        "per core used/s",
        "vs mover",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }

    let rows = export::measurement_rows(std::slice::from_ref(run));
    let row = rows.iter().find(|r| r.name == "sync-call-rtt" && r.placement.as_deref() == Some("cross-core")).unwrap();
    assert_eq!(row.what, "cross-core");
    let row = rows.iter().find(|r| r.name == "two-hop-rtt" && r.path.as_deref() == Some("mover"));
    assert!(row.is_some());
}

#[test]
fn counters_per_row_are_the_positive_control() {
    let run = &parse(LOG).unwrap()[0];
    let analysis = analyze(run);
    assert!(analysis.counter_failures.is_empty(), "{:?}", analysis.counter_failures);
    let by_phase = |phase: &str| {
        analysis.row_counters.iter().find(|r| r.phase == phase).unwrap_or_else(|| panic!("no row for phase {phase}"))
    };
    let same = by_phase("sync-same-rtt");
    assert_eq!(same.row, "sync-call-rtt same-core");
    assert_eq!(same.verdict, CounterVerdict::Consistent);
    assert_eq!(same.cr3_writes_per_operation, Some(2.0));
    assert_eq!(same.syscalls_per_operation, Some(2.0));
    assert_eq!(same.cores, [0, 1, 2]);
    let cross = by_phase("sync-cross-rtt");
    assert_eq!(cross.cr3_writes_per_operation, Some(0.0));
    assert_eq!(cross.interrupts_per_operation, Some(2.0));
    assert_eq!(cross.verdict, CounterVerdict::Consistent);
    let calls = by_phase("sync-same-stream");
    assert_eq!(calls.per, "call");
    assert_eq!(calls.cr3_writes_per_operation, Some(2.0));
    for phase in ["mover-rtt", "mover-stream", "direct-ring-user-rtt", "direct-ring-user-stream", "two-hop-mover"] {
        let row = by_phase(phase);
        assert_eq!(row.verdict, CounterVerdict::Consistent, "{phase}");
        assert_eq!(row.cr3_writes_per_operation, Some(0.0), "{phase}");
        assert_eq!(row.syscalls_per_operation, Some(0.0), "{phase}");
    }
    assert_eq!(by_phase("direct-ring-user-stream").row, "user-direct-ring-stream batch=1");
    // Nested same-core calls: client -> A -> B -> A -> client.
    let nested = by_phase("two-hop-sync");
    assert_eq!(nested.syscalls_per_operation, Some(4.0));
    assert_eq!(nested.cr3_writes_per_operation, Some(4.0));
    assert_eq!(nested.verdict, CounterVerdict::Consistent);
    // The sync phases are the positive control, not part of the zero claim.
    assert_eq!(analysis.context_switches.total, Some(0));
    assert_eq!(analysis.syscalls.total, Some(0));
    let text = report_text(run);
    assert!(text.contains("Counters per row"), "{text}");
    assert!(text.contains("IPC benchmark (system=ipc, serial log lines"), "{text}");
    // 6500 and 7800 cycles at 2.6 GHz.
    assert!(
        text.contains("two hops, same boot: path=sync median 2500.0 ns / path=mover median 3000.0 ns = 0.83"),
        "{text}"
    );
    assert!(!text.contains("COUNTER CHECK FAILED"), "{text}");
    let csv = export::row_counter_rows(std::slice::from_ref(run));
    assert_eq!(csv.len(), 10);
    assert!(csv.iter().all(|row| row.verdict == "consistent"));
}

#[test]
fn a_same_core_call_without_address_space_switches_fails_the_report() {
    let log = with(
        "phase=sync-same-rtt core=2 role=server server=sync-client cr3_writes=40000 syscalls=40000",
        "phase=sync-same-rtt core=2 role=server server=sync-client cr3_writes=0 syscalls=40000",
    );
    let runs = parse(&log).unwrap();
    let analysis = analyze(&runs[0]);
    assert_eq!(analysis.counter_failures.len(), 1);
    let failure = &analysis.counter_failures[0];
    assert!(failure.contains("row sync-call-rtt same-core"), "{failure}");
    assert!(failure.contains("cr3 writes per round trip 0.00, expected >= 2"), "{failure}");
    let failures = counter_failures(&runs);
    assert_eq!(failures, analysis.counter_failures);
    let text = report_text(&runs[0]);
    assert!(text.contains("!! COUNTER CHECK FAILED: row sync-call-rtt same-core"), "{text}");
    assert!(text.contains("CONTRADICTS"), "{text}");

    // Targets resting on a contradicting row are n/a, never met.
    let log = with(
        "phase=sync-same-stream core=2 role=server server=sync-client cr3_writes=200000",
        "phase=sync-same-stream core=2 role=server server=sync-client cr3_writes=100000",
    );
    let analysis = analyze(&parse(&log).unwrap()[0]);
    assert_eq!(analysis.counter_failures.len(), 1);
    assert!(analysis.counter_failures[0].contains("cr3 writes per call 1.00, expected >= 2"));
    for id in ["mover-stream-vs-sync-same-core-calls", "mover-per-core-vs-sync-same-core-calls"] {
        let target = analysis.targets.iter().find(|t| t.id == id).unwrap();
        assert_eq!(target.outcome, TargetOutcome::NotApplicable, "{id}");
    }
}

#[test]
fn a_cross_core_call_without_ipis_and_a_mover_row_with_syscalls_fail() {
    let log = with(
        "phase=sync-cross-rtt core=1 role=server server=sync-client cr3_writes=0 syscalls=20000 interrupts=20000",
        "phase=sync-cross-rtt core=1 role=server server=sync-client cr3_writes=0 syscalls=20000 interrupts=0",
    );
    let log = log.replacen(
        "phase=sync-cross-rtt core=2 role=server server=sync-echo cr3_writes=0 syscalls=20000 interrupts=20000",
        "phase=sync-cross-rtt core=2 role=server server=sync-echo cr3_writes=0 syscalls=20000 interrupts=0",
        1,
    );
    let log = log.replacen(
        "phase=mover-stream core=1 role=server server=benchclient cr3_writes=0 syscalls=0",
        "phase=mover-stream core=1 role=server server=benchclient cr3_writes=0 syscalls=7",
        1,
    );
    let runs = parse(&log).unwrap();
    let analysis = analyze(&runs[0]);
    assert_eq!(analysis.counter_failures.len(), 2, "{:?}", analysis.counter_failures);
    assert!(
        analysis
            .counter_failures
            .iter()
            .any(|f| f.contains("row mover-stream batch=1 rings=2: no extra") && f.contains("syscalls per message"))
    );
    assert!(
        analysis.counter_failures.iter().any(|f| f.contains("row sync-call-rtt cross-core")
            && f.contains("interrupts per round trip 0.00, expected >= 2"))
    );
    let rtt_target = analysis.targets.iter().find(|t| t.id == "mover-rtt-vs-sync-cross-core-rtt").unwrap();
    assert_eq!(rtt_target.outcome, TargetOutcome::NotApplicable);
    assert!(rtt_target.not_applicable_because.as_deref().unwrap().contains("contradict"));
}

#[test]
fn a_sync_two_hop_that_is_not_two_nested_calls_fails() {
    // One call and its reply (A answering without calling B): 2 and 2.
    let log = with(
        "phase=two-hop-sync core=1 role=server server=benchclient cr3_writes=80000 syscalls=80000",
        "phase=two-hop-sync core=1 role=server server=benchclient cr3_writes=40000 syscalls=40000",
    );
    let analysis = analyze(&parse(&log).unwrap()[0]);
    let row = analysis.row_counters.iter().find(|r| r.phase == "two-hop-sync").unwrap();
    assert_eq!(row.verdict, CounterVerdict::Contradicts);
    assert_eq!(row.contradictions.len(), 2, "{:?}", row.contradictions);
    assert!(
        analysis
            .counter_failures
            .iter()
            .any(|f| f.contains("row two-hop-rtt path=sync")
                && f.contains("cr3 writes per round trip 2.00, expected >= 4")),
        "{:?}",
        analysis.counter_failures
    );
}

#[test]
fn missing_phase_counters_are_a_warning_not_a_failure() {
    let log: String = LOG.lines().filter(|line| !line.contains("phase=two-hop-sync")).collect::<Vec<_>>().join("\n");
    let analysis = analyze(&parse(&log).unwrap()[0]);
    assert!(analysis.counter_failures.is_empty());
    assert!(
        analysis
            .warnings
            .iter()
            .any(|w| w.contains("row two-hop-rtt path=sync")
                && w.contains("no complete counters for phase two-hop-sync"))
    );
}

#[test]
fn comparison_targets_follow_the_numbers() {
    let analysis = analyze(&parse(LOG).unwrap()[0]);
    let target = |id: &str| analysis.targets.iter().find(|t| t.id == id).unwrap();
    let stream = target("mover-stream-vs-sync-same-core-calls");
    assert_close(stream.measured.unwrap(), (200_000.0 * 2.6e9 / 156e6) / 1e6);
    assert_eq!(stream.outcome, TargetOutcome::Met);
    let rtt = target("mover-rtt-vs-sync-cross-core-rtt");
    assert_close(rtt.measured.unwrap(), 4000.0 / 5200.0);
    assert_eq!(rtt.outcome, TargetOutcome::Met);
    let per_core = target("mover-per-core-vs-sync-same-core-calls");
    assert_close(per_core.measured.unwrap(), (200_000.0 * 2.6e9 / 156e6) / 3.0 / 1e6);
    assert_eq!(per_core.outcome, TargetOutcome::Met);

    // A slower mover stream misses the 3x target.
    let log = with(
        "name=mover-stream batch=1 rings=2 extra=empty extra_rings=0 n=200000 cycles=156000000",
        "name=mover-stream batch=1 rings=2 extra=empty extra_rings=0 n=200000 cycles=260000000",
    );
    let analysis = analyze(&parse(&log).unwrap()[0]);
    let stream = analysis.targets.iter().find(|t| t.id == "mover-stream-vs-sync-same-core-calls").unwrap();
    assert_eq!(stream.outcome, TargetOutcome::Missed);
}

#[test]
fn comparison_targets_without_sync_rows_or_with_failed_checks_are_n_a() {
    let log: String = LOG.lines().filter(|line| !line.contains("name=sync-call")).collect::<Vec<_>>().join("\n");
    let analysis = analyze(&parse(&log).unwrap()[0]);
    for id in [
        "mover-stream-vs-sync-same-core-calls",
        "mover-rtt-vs-sync-cross-core-rtt",
        "mover-per-core-vs-sync-same-core-calls",
    ] {
        let target = analysis.targets.iter().find(|t| t.id == id).unwrap();
        assert_eq!(target.outcome, TargetOutcome::NotMeasured, "{id}");
        assert!(target.detail.starts_with("not measured: no "), "{}", target.detail);
    }
    let text = report_text(&parse(&log).unwrap()[0]);
    assert!(
        text.contains("[n/a   ] mover RTT <= cross-core sync call RTT: - (target <= 1.0x)\n           not measured: no sync-call-rtt placement=cross-core record in this run"),
        "{text}"
    );

    let log = with(
        "name=sync-call-stream placement=same-core n=100000 cycles=260000000 ok=100000",
        "name=sync-call-stream placement=same-core n=100000 cycles=260000000 ok=99999",
    );
    let analysis = analyze(&parse(&log).unwrap()[0]);
    let stream = analysis.targets.iter().find(|t| t.id == "mover-stream-vs-sync-same-core-calls").unwrap();
    assert_eq!(stream.outcome, TargetOutcome::NotApplicable);
    assert_eq!(
        stream.not_applicable_because.as_deref(),
        Some("sync-call-stream same-core: only 99999 of 100000 messages checked out")
    );
}
