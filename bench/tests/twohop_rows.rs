//! The two-hop boot (`bench-twohop.toml`, -smp 4), from a real serial log:
//! both two-hop rows and the one-hop base row parsed, every answer
//! checked, and the counters that say what each path is — the mover's
//! two-hop 0 CR3 writes and 0 system calls (three mover hops per round
//! trip), the nested same-core calls 4 and 4.

use bench::{CounterVerdict, IpcPath, analyze, parse, report_text};

const LOG: &str = include_str!("fixtures/ipc-twohop-tcg-smp4.log");

#[test]
fn the_two_hop_boot_shows_what_each_path_is() {
    let run = &parse(LOG).unwrap()[0];
    assert_eq!(run.begin_extra.get("system").map(String::as_str), Some("ipc-twohop"));
    assert_eq!(run.smp, Some(4));
    let analysis = analyze(run);
    assert!(analysis.counter_failures.is_empty(), "{:?}", analysis.counter_failures);
    for path in [IpcPath::Mover, IpcPath::TwoHopMover, IpcPath::TwoHopSync] {
        let row = analysis.latencies.iter().find(|f| IpcPath::of_latency(f) == Some(path)).unwrap();
        assert!(row.is_trustworthy(), "{path:?}");
        assert_eq!(row.ok, Some(row.n), "{path:?}");
    }
    let by_phase = |phase: &str| analysis.row_counters.iter().find(|r| r.phase == phase).unwrap();
    let mover = by_phase("two-hop-mover");
    assert_eq!(mover.verdict, CounterVerdict::Consistent);
    assert_eq!((mover.cr3_writes_per_operation, mover.syscalls_per_operation), (Some(0.0), Some(0.0)));
    let moved: u64 = run.counters.iter().filter(|c| c.phase == "two-hop-mover").map(|c| c.messages.unwrap_or(0)).sum();
    assert_eq!(moved, 3 * mover.operations, "three mover hops per round trip");
    let sync = by_phase("two-hop-sync");
    assert_eq!(sync.verdict, CounterVerdict::Consistent);
    assert_eq!((sync.cr3_writes_per_operation, sync.syscalls_per_operation), (Some(4.0), Some(4.0)));
    let text = report_text(run);
    assert!(text.contains("IPC benchmark (system=ipc-twohop,"), "{text}");
    assert!(text.contains("two hops, same boot: path=sync"), "{text}");
}
