//! When a target may be judged: inputs that failed their check, or a
//! mechanism that fell back, give `n/a` with the reason, never `met`; and
//! target labels name what was measured (the base is `rings=2`).

use bench::figures::TargetOutcome;
use bench::{analyze, parse, power_table, report_text};

const SAMPLE_LOG: &str = include_str!("fixtures/ipc-tcg-smp4.log");
const POWER_LOG: &str = include_str!("fixtures/power-tcg-smp3.log");
const FALLBACK: &str = "[core 2] WARN  power: core 2: MWAIT returned at once 1000 times in a row (no store to the monitored line, no interrupt): using hlt + doorbell from now on";

/// The power fixture with the fallback line inside the mwait boot.
fn power_log_with_fallback() -> String {
    let begin = POWER_LOG.find("system=power-mwait").expect("mwait boot");
    let end = begin + POWER_LOG[begin..].find('\n').unwrap() + 1;
    format!("{}{FALLBACK}\n{}", &POWER_LOG[..end], &POWER_LOG[end..])
}

#[test]
fn a_fallback_line_makes_the_mwait_targets_not_applicable() {
    let runs = parse(&power_log_with_fallback()).unwrap();
    let mwait = runs.iter().find(|run| bench::power_policy::power_policy(run) == Some("mwait")).unwrap();
    assert_eq!(mwait.fallbacks.len(), 1);
    assert!(mwait.fallbacks[0].text.contains("MWAIT returned at once"));
    let table = power_table(&runs);
    let by_id = |id: &str| table.targets.iter().find(|t| t.id.starts_with(id)).unwrap();
    for id in ["mwait-rtt-vs-", "mwait-echo-asleep-at-1ms", "mwait-wakeup-vs-"] {
        let target = by_id(id);
        assert_eq!(target.outcome, TargetOutcome::NotApplicable, "{id}");
        assert!(target.measured.is_some(), "{id}");
        assert!(target.not_applicable_because.as_deref().unwrap().contains("fell back at line"), "{id}: {target:?}");
    }
    // hlt did not fall back: its target is judged.
    assert_ne!(by_id("hlt-echo-asleep-at-1ms").outcome, TargetOutcome::NotApplicable);
    assert!(table.warnings.iter().any(|w| w.contains("the mechanism fell back")));
    let text = bench::power_report_text(&runs);
    assert!(text.contains("n/a: the mwait boot"), "{text}");
    assert!(!text.contains("[met   ] mwait"), "{text}");
}

#[test]
fn a_fallback_before_begin_belongs_to_the_next_boot() {
    let log = format!("{FALLBACK}\n{SAMPLE_LOG}");
    let run = &parse(&log).unwrap()[0];
    assert_eq!(run.fallbacks.len(), 1);
    assert_eq!(run.fallbacks[0].line, 1);
    let analysis = analyze(run);
    assert!(
        analysis.targets.iter().all(|t| t.outcome == TargetOutcome::NotApplicable || t.measured.is_none()),
        "{:?}",
        analysis.targets
    );
    let text = report_text(run);
    assert!(text.contains("a mechanism fell back"), "{text}");
    assert!(!text.contains("[met   ]"), "{text}");
    assert!(!text.contains("[MISSED]"), "{text}");
}

#[test]
fn a_failed_check_is_never_met() {
    // The stream target is met in the fixture; one failed message makes it n/a.
    let line = "name=mover-stream batch=1 rings=1 n=200000 cycles=110000000 ok=200000";
    let log = SAMPLE_LOG.replacen(line, &line.replace("ok=200000", "ok=199999"), 1);
    let analysis = analyze(&parse(&log).unwrap()[0]);
    let stream = &analysis.targets[1];
    assert_eq!(stream.id, "mover-stream-vs-direct");
    assert_eq!(stream.outcome, TargetOutcome::NotApplicable);
    assert_eq!(
        stream.not_applicable_because.as_deref(),
        Some("mover-stream batch=1 rings=1: only 199999 of 200000 messages checked out")
    );
}

#[test]
fn the_base_of_ring_scaling_is_labelled_by_its_ring_count() {
    // Today's guest: the base is two real rings (client and echo), no extra.
    let log =
        SAMPLE_LOG
            .lines()
            .filter(|line| !line.contains("name=mover-rtt rings=1 "))
            .map(|line| {
                if line.contains("name=mover-stream") {
                    line.replace(" rings=1 ", " rings=2 ")
                } else {
                    line.to_string()
                }
            })
            .map(|line| {
                if line.contains("name=mover-rtt") || line.contains("name=mover-stream") {
                    let rings: u32 =
                        line.split_whitespace().find_map(|t| t.strip_prefix("rings=")).unwrap().parse().unwrap();
                    format!("{line} extra=empty extra_rings={}", rings - 2)
                } else {
                    line.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
    let run = &parse(&log).unwrap()[0];
    let analysis = analyze(run);
    let ids: Vec<&str> = analysis.targets.iter().take(3).map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["mover-one-way-vs-floor", "mover-stream-vs-direct", "mover-rtt-64-vs-2-rings"]);
    assert_eq!(
        analysis.targets[2].description,
        "mover RTT at 64 rings (62 of them empty) <= 1.5x RTT at 2 rings: the system's own outboxes, no extra"
    );
    let text = report_text(run);
    assert!(!text.contains(" 1 ring"), "{text}");
    assert!(text.contains("rings=2: no extra"), "{text}");
    assert!(text.contains("rings=64: 62 empty"), "{text}");
    assert!(text.contains("batch=1 rings=64: 62 empty"), "{text}");
}
