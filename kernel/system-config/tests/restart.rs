//! Host tests of the restart keys (`restart`, `restart_max`,
//! `restart_window_ms`, `restart_backoff_ms`, `stall_ms`) and of every answer
//! `RestartPolicy::decide` can give.

use system_config::{RESTART_BACKOFF_MAX_MS, RestartDecision, RestartPolicy, RestartWhen, StayReason, parse};

const BASE: &str = "[system]\nmover_cores = [1]\n\n[[server]]\nname = \"a\"\ncore = 2\n";

/// `BASE` with `keys` added to the server (from line 7).
fn with(keys: &str) -> String {
    format!("{BASE}{keys}")
}

fn first_line(text: &str) -> String {
    let err = parse(text).expect_err("expected an error");
    err.render("system.toml", text).lines().next().unwrap().to_string()
}

fn policy(keys: &str) -> RestartPolicy {
    let text = with(keys);
    parse(&text).unwrap_or_else(|e| panic!("{}", e.render("system.toml", &text))).servers[0].restart
}

// ---- parsing ----

#[test]
fn defaults_are_never_and_no_stall_detection() {
    let c = parse(BASE).unwrap();
    assert_eq!(c.servers[0].restart, RestartPolicy::default());
    assert_eq!(
        RestartPolicy::default(),
        RestartPolicy { when: RestartWhen::Never, max_restarts: None, window_ms: None, backoff_ms: 0 }
    );
    assert_eq!(c.servers[0].stall_ms, None);
}

#[test]
fn every_key_parses_and_round_trips() {
    let text = with(
        "restart = \"on-failure\"\nrestart_max = 3\nrestart_window_ms = 1000\nrestart_backoff_ms = 50\nstall_ms = 200\n",
    );
    let c = parse(&text).unwrap();
    let s = &c.servers[0];
    assert_eq!(
        s.restart,
        RestartPolicy { when: RestartWhen::OnFailure, max_restarts: Some(3), window_ms: Some(1000), backoff_ms: 50 }
    );
    assert_eq!(s.stall_ms, Some(200));
    assert_eq!(parse(&c.to_toml()).unwrap(), c);

    assert_eq!(policy("restart = \"always\"\n").when, RestartWhen::Always);
    assert_eq!(policy("restart = \"never\"\n"), RestartPolicy::default());
    let c = parse(&with("restart = \"always\"\nrestart_max = 1\n")).unwrap();
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
    let c = parse(&with("stall_ms = 1\n")).unwrap();
    assert_eq!(c.servers[0].stall_ms, Some(1));
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
}

#[test]
fn bad_restart_value() {
    assert_eq!(
        first_line(&with("restart = \"sometimes\"\n")),
        "system.toml:7:11: key `server[0].restart`: `sometimes` is not a restart policy; \
         expected \"never\", \"on-failure\" or \"always\""
    );
    assert_eq!(parse(&with("restart = 1\n")).unwrap_err().line(), Some(7));
}

#[test]
fn limit_keys_need_a_restarting_policy() {
    assert_eq!(
        first_line(&with("restart_max = 3\n")),
        "system.toml:7:15: key `server[0].restart_max`: `restart_max` set for a server that is never restarted; \
         expected restart = \"on-failure\" or \"always\" in the same table"
    );
    assert_eq!(
        first_line(&with("restart = \"never\"\nrestart_max = 3\n")),
        "system.toml:8:15: key `server[0].restart_max`: `restart_max` set for a server that is never restarted; \
         expected restart = \"on-failure\" or \"always\" in the same table"
    );
    assert_eq!(parse(&with("restart_backoff_ms = 10\n")).unwrap_err().key(), Some("server[0].restart_backoff_ms"));
    assert_eq!(parse(&with("restart_window_ms = 10\n")).unwrap_err().key(), Some("server[0].restart_window_ms"));
}

#[test]
fn window_needs_a_limit() {
    assert_eq!(
        first_line(&with("restart = \"always\"\nrestart_window_ms = 1000\n")),
        "system.toml:8:21: key `server[0].restart_window_ms`: `restart_window_ms` without `restart_max` \
         (a window for no limit); expected restart_max in the same table"
    );
}

#[test]
fn ranges() {
    let cases: &[(&str, &str, &str)] = &[
        ("restart = \"always\"\nrestart_max = 0\n", "restart_max", "8:15"),
        ("restart = \"always\"\nrestart_max = -1\n", "restart_max", "8:15"),
        ("restart = \"always\"\nrestart_max = 4294967296\n", "restart_max", "8:15"),
        ("restart = \"always\"\nrestart_max = 1\nrestart_window_ms = 0\n", "restart_window_ms", "9:21"),
        ("restart = \"always\"\nrestart_backoff_ms = 60001\n", "restart_backoff_ms", "8:22"),
        ("restart = \"always\"\nrestart_backoff_ms = -1\n", "restart_backoff_ms", "8:22"),
        ("stall_ms = 0\n", "stall_ms", "7:12"),
        ("stall_ms = 4294967296\n", "stall_ms", "7:12"),
    ];
    for (keys, key, place) in cases {
        let line = first_line(&with(keys));
        assert!(line.starts_with(&format!("system.toml:{place}: key `server[0].{key}`: ")), "{line}");
        assert!(line.contains("is out of range; expected an integer in"), "{line}");
    }
    assert_eq!(
        policy(&format!("restart = \"always\"\nrestart_backoff_ms = {RESTART_BACKOFF_MAX_MS}\n")).backoff_ms,
        60_000
    );
    assert_eq!(policy("restart = \"always\"\nrestart_max = 4294967295\n").max_restarts, Some(u32::MAX));
    assert_eq!(parse(&with("stall_ms = 4294967295\n")).unwrap().servers[0].stall_ms, Some(u32::MAX));
}

#[test]
fn types_are_checked() {
    for keys in ["stall_ms = \"1\"\n", "restart = \"always\"\nrestart_max = 1.5\n", "restart = true\n"] {
        assert!(parse(&with(keys)).is_err(), "{keys}");
    }
}

// ---- decide ----

fn p(when: RestartWhen, max: Option<u32>, window: Option<u32>, backoff: u32) -> RestartPolicy {
    RestartPolicy { when, max_restarts: max, window_ms: window, backoff_ms: backoff }
}

const fn restart(after_ms: u32) -> RestartDecision {
    RestartDecision::Restart { after_ms }
}

const fn stay(reason: StayReason) -> RestartDecision {
    RestartDecision::Stay(reason)
}

#[test]
fn never_stays_whatever_happened() {
    let never = RestartPolicy::default();
    assert_eq!(never.decide(true, &[], 0), stay(StayReason::PolicyNever));
    assert_eq!(never.decide(false, &[], 0), stay(StayReason::PolicyNever));
    assert_eq!(never.decide(true, &[1, 2, 3], 100), stay(StayReason::PolicyNever));
}

#[test]
fn on_failure_restarts_failures_only() {
    let on_failure = p(RestartWhen::OnFailure, None, None, 0);
    assert_eq!(on_failure.decide(true, &[], 5), restart(0));
    assert_eq!(on_failure.decide(false, &[], 5), stay(StayReason::CleanExit));
    // No limit: any number of earlier restarts.
    let many: Vec<u64> = (0..10_000).collect();
    assert_eq!(on_failure.decide(true, &many, 20_000), restart(0));
}

#[test]
fn always_restarts_clean_exits_too() {
    let always = p(RestartWhen::Always, None, None, 7);
    assert_eq!(always.decide(false, &[], 0), restart(7));
    assert_eq!(always.decide(true, &[], 0), restart(7));
}

#[test]
fn backoff_is_the_delay() {
    let slow = p(RestartWhen::OnFailure, Some(5), None, 60_000);
    assert_eq!(slow.decide(true, &[], 0), restart(60_000));
}

#[test]
fn limit_over_the_whole_run() {
    let two = p(RestartWhen::Always, Some(2), None, 0);
    assert_eq!(two.decide(true, &[], 10), restart(0));
    assert_eq!(two.decide(true, &[10], 20), restart(0));
    assert_eq!(two.decide(true, &[10, 20], 1_000_000), stay(StayReason::LimitReached { restarts: 2, window_ms: None }));
    // A clean exit under "always" counts against the same limit.
    assert_eq!(two.decide(false, &[10, 20], 30), stay(StayReason::LimitReached { restarts: 2, window_ms: None }));
    // The clean-exit answer comes before the limit under "on-failure".
    let on_failure = p(RestartWhen::OnFailure, Some(1), None, 0);
    assert_eq!(on_failure.decide(false, &[1], 2), stay(StayReason::CleanExit));
    assert_eq!(on_failure.decide(true, &[1], 2), stay(StayReason::LimitReached { restarts: 1, window_ms: None }));
}

#[test]
fn sliding_window_boundary() {
    // At most 2 restarts in any 1000 ms.
    let policy = p(RestartWhen::OnFailure, Some(2), Some(1000), 25);
    let limited = |restarts| stay(StayReason::LimitReached { restarts, window_ms: Some(1000) });
    // Restarts at 100 and 500; a failure at 1099: both within the window.
    assert_eq!(policy.decide(true, &[100, 500], 1099), limited(2));
    // At 1100 the restart at 100 is exactly 1000 ms old: out of the window.
    assert_eq!(policy.decide(true, &[100, 500], 1100), restart(25));
    // At 1499 the one at 500 is still inside; one counted, below the limit.
    assert_eq!(policy.decide(true, &[100, 500, 1100], 1499), limited(2));
    assert_eq!(policy.decide(true, &[100, 500, 1100], 1500), restart(25));
    // Long after: nothing counted.
    assert_eq!(policy.decide(true, &[100, 500, 1100], 1_000_000), restart(25));
    // Same time as a restart: inside (0 ms old).
    assert_eq!(policy.decide(true, &[700, 700], 700), limited(2));
    // A restart stamped after `now` (clock went backwards) counts as inside.
    assert_eq!(policy.decide(true, &[5000, 6000], 10), limited(2));
}

#[test]
fn window_of_one_ms_and_a_limit_of_one() {
    let policy = p(RestartWhen::Always, Some(1), Some(1), 0);
    assert_eq!(policy.decide(false, &[10], 10), stay(StayReason::LimitReached { restarts: 1, window_ms: Some(1) }));
    assert_eq!(policy.decide(false, &[10], 11), restart(0));
}

#[test]
fn decide_does_not_overflow_at_the_ends_of_the_clock() {
    let policy = p(RestartWhen::Always, Some(1), Some(u32::MAX), 0);
    assert_eq!(
        policy.decide(true, &[0], u64::MAX),
        restart(0),
        "a restart at 0 is far outside any u32 window at u64::MAX"
    );
    assert_eq!(
        policy.decide(true, &[u64::MAX], 0),
        stay(StayReason::LimitReached { restarts: 1, window_ms: Some(u32::MAX) })
    );
}

#[test]
fn stay_reasons_read_well_in_a_log_line() {
    assert_eq!(StayReason::PolicyNever.to_string(), "restart = \"never\"");
    assert_eq!(StayReason::CleanExit.to_string(), "exited cleanly (restart = \"on-failure\")");
    assert_eq!(
        StayReason::LimitReached { restarts: 3, window_ms: Some(1000) }.to_string(),
        "restarted 3 times within the last 1000 ms (restart_max reached)"
    );
    assert_eq!(
        StayReason::LimitReached { restarts: 2, window_ms: None }.to_string(),
        "restarted 2 times in this run (restart_max reached)"
    );
}

#[test]
fn types_are_copy() {
    fn copy<T: Copy + std::fmt::Debug + PartialEq>() {}
    copy::<RestartPolicy>();
    copy::<RestartWhen>();
    copy::<RestartDecision>();
    copy::<StayReason>();
}

#[test]
fn the_example_in_docs_parses_as_documented() {
    let doc = include_str!("../../../docs/config.md");
    let section = &doc[doc.find("### Restarting servers").expect("the section")..];
    let start = section.find("```text\n").expect("an example") + "```text\n".len();
    let example = &section[start..start + section[start..].find("```").unwrap()];
    let text = format!("[system]\nmover_cores = [1]\n\n{example}");
    let c = parse(&text).unwrap_or_else(|e| panic!("{}", e.render("docs/config.md", &text)));
    let s = &c.servers[0];
    assert_eq!(
        s.restart,
        RestartPolicy { when: RestartWhen::OnFailure, max_restarts: Some(5), window_ms: Some(2000), backoff_ms: 250 }
    );
    assert_eq!(s.stall_ms, Some(1000));
}
