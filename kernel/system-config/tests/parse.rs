//! Host tests of the system config: a full valid file, every bad case from
//! issue 5 and issue 7, power-policy merging, and random mutations.

use system_config::{
    ConfigError, IdlePstate, Machine, MwaitHint, PolicyRole, PowerPolicy, SleepMode, SystemConfig, parse,
};

const FULL: &str = r#"
# A system using every key.
[system]
mover_cores = [1, 2]
ring_slots_default = 128

[[server]]
name = "client"
binary = "servers/client"
core = 3
stack_kib = 128
inbox_slots = 256
outbox_slots = 32
endpoints = ["echo", "log"]

[[server]]
name = "echo"
core = 4
endpoints = ["client"]
mover_core = 1

[[server]]
name = "log"
binary = "log-server"
core = 5

[[server]]
name = "idle-ish_2"
core = 6
endpoints = ["log"]

[power.default.server]
spin_polls_before_pause = 500
sleep = "hlt"

[power.default.mover]
pause_us_before_sleep = 1000

[power.default.idle]
mwait_hint = "c6"
idle_pstate = 8

[power.core.4]
sleep = "none"
hwp_epp_idle = 0

[power.core.10]
idle_pstate = "unchanged"
"#;

fn machine(cores: usize, binaries: &[&str]) -> Machine {
    Machine { core_count: Some(cores), binaries: Some(binaries.iter().map(|b| b.to_string()).collect()) }
}

/// The first line of the rendered error for `text` (parse or validate).
fn first_line(text: &str, m: &Machine) -> String {
    let err: ConfigError = match parse(text) {
        Ok(config) => config.validate(m).expect_err("expected an error"),
        Err(err) => err,
    };
    let rendered = err.render("system.toml", text);
    rendered.lines().next().unwrap().to_string()
}

/// `FULL` with `from` replaced by `to` (exactly once).
fn edit(from: &str, to: &str) -> String {
    assert_eq!(FULL.matches(from).count(), 1, "`{from}` must occur once");
    FULL.replace(from, to)
}

fn roomy() -> Machine {
    machine(16, &["servers/client", "echo", "log-server", "idle-ish_2", "spare"])
}

#[test]
fn full_config_parses_with_every_value() {
    let c = parse(FULL).unwrap();
    assert_eq!(c.mover_cores, [1, 2]);
    assert_eq!(c.ring_slots_default, 128);
    let names: Vec<&str> = c.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["client", "echo", "log", "idle-ish_2"]);
    for (i, s) in c.servers.iter().enumerate() {
        assert_eq!(s.index, i);
        assert_eq!(s.badge(), i as u64 + 1);
        assert_eq!(c.server_by_badge(s.badge()).unwrap().name, s.name);
    }
    assert!(c.server_by_badge(0).is_none());
    assert!(c.server_by_badge(5).is_none());

    let client = &c.servers[0];
    assert_eq!(client.binary, "servers/client");
    assert_eq!(client.core, 3);
    assert_eq!(client.stack_kib, 128);
    assert_eq!((client.inbox_slots, client.outbox_slots), (256, 32));
    assert_eq!(client.capabilities().collect::<Vec<_>>(), [1, 2]);

    let echo = &c.servers[1];
    assert_eq!(echo.binary, "echo", "binary defaults to the name");
    assert_eq!(echo.stack_kib, 64);
    assert_eq!((echo.inbox_slots, echo.outbox_slots), (128, 128));
    assert_eq!(echo.capabilities().collect::<Vec<_>>(), [0]);

    // Round-robin over [1, 2] among servers without `mover_core`:
    // client → 1, (echo explicit 1), log → 2, idle-ish_2 → 1.
    let movers: Vec<usize> = c.servers.iter().map(|s| s.mover_core).collect();
    assert_eq!(movers, [1, 1, 2, 1]);
    assert!(echo.mover_core_explicit && !client.mover_core_explicit);
    let on_1: Vec<&str> = c.outboxes_of_mover(1).map(|s| s.name.as_str()).collect();
    assert_eq!(on_1, ["client", "echo", "idle-ish_2"]);

    assert_eq!(c.role_of(0), PolicyRole::Idle);
    assert_eq!(c.role_of(1), PolicyRole::Mover);
    assert_eq!(c.role_of(4), PolicyRole::Server);
    assert_eq!(c.role_of(9), PolicyRole::Idle);
    assert_eq!(c.server_on_core(5).unwrap().name, "log");
    assert_eq!(c.server_by_name("echo").unwrap().core, 4);

    c.validate(&roomy()).unwrap();
    c.validate(&Machine::default()).unwrap();
}

#[test]
fn full_config_round_trips_through_to_toml() {
    let c = parse(FULL).unwrap();
    let text = c.to_toml();
    let again = parse(&text).unwrap_or_else(|e| panic!("{}", e.render("emitted", &text)));
    assert_eq!(again, c);
    assert_eq!(again.to_toml(), text);
}

#[test]
fn shipped_default_system_is_valid() {
    let text = include_str!("../../../qemu-scripts/systems/default.toml");
    let c = parse(text).unwrap_or_else(|e| panic!("{}", e.render("default.toml", text)));
    c.validate(&machine(4, &["ping", "echo"])).unwrap();
    assert_eq!(c.mover_cores, [1]);
    assert_eq!(c.server_on_core(2).unwrap().name, "ping");
    assert_eq!(c.server_on_core(3).unwrap().name, "echo");
}

#[test]
fn reference_in_docs_is_valid() {
    let doc = include_str!("../../../docs/config.md");
    let start = doc.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let text = &doc[start..start + doc[start..].find("```").unwrap()];
    let c = parse(text).unwrap_or_else(|e| panic!("{}", e.render("docs/config.md", text)));
    assert!(!c.servers.is_empty());
}

// ---- issue 5: bad TOML ----

#[test]
fn syntax_error() {
    let text = edit(r#"name = "echo""#, r#"name = "echo"#);
    assert_eq!(first_line(&text, &roomy()), "system.toml:17:13: invalid basic string; expected `\"`");
}

#[test]
fn unknown_key_in_server() {
    let text = edit("core = 5", "cores = 5");
    assert_eq!(
        first_line(&text, &roomy()),
        "system.toml:25:1: key `server[2].cores`: unknown key `cores`; expected one of `name`, \
         `binary`, `core`, `stack_kib`, `inbox_slots`, `outbox_slots`, `endpoints`, `mover_core`, `args`, `service`, \
         `restart`, `restart_max`, `restart_window_ms`, `restart_backoff_ms`, `stall_ms`, `power_control`"
    );
}

#[test]
fn unknown_top_level_table() {
    let text = edit("[system]", "[sytem]");
    assert_eq!(
        first_line(&text, &roomy()),
        "system.toml:3:2: key `sytem`: unknown key `sytem`; expected one of `system`, `server`, `power`, `direct_ring`, `region`, `device`"
    );
}

#[test]
fn servers_may_share_a_core() {
    let text = edit("core = 4", "core = 3");
    let config = system_config::parse(&text).unwrap();
    assert_eq!(config.servers.iter().filter(|s| s.core == 3).count(), 2);
}

#[test]
fn at_most_max_servers_per_core_on_one_core() {
    let mut text = String::from("[system]\nmover_cores = [1]\n");
    for i in 0..=abi::MAX_SERVERS_PER_CORE {
        text.push_str(&format!("\n[[server]]\nname = \"s{i}\"\ncore = 2\n"));
    }
    let err = system_config::parse(&text).unwrap_err();
    assert_eq!(err.key(), Some(format!("server[{}].core", abi::MAX_SERVERS_PER_CORE).as_str()));
    assert!(err.to_string().contains("at most 16 servers on one core"), "{err}");
}

#[test]
fn server_on_core_0_or_a_mover_core() {
    assert_eq!(
        first_line(&edit("core = 5", "core = 0"), &roomy()),
        "system.toml:25:8: key `server[2].core`: server `log` on core 0, which runs the kernel; \
         expected a core other than 0"
    );
    assert_eq!(
        first_line(&edit("core = 5", "core = 2"), &roomy()),
        "system.toml:25:8: key `server[2].core`: server `log` on core 2, a mover core; \
         expected a core not in system.mover_cores [1, 2]"
    );
}

#[test]
fn core_that_does_not_exist() {
    let c = parse(FULL).unwrap();
    let err = c.validate(&machine(6, &[])).unwrap_err();
    assert_eq!(
        err.render("system.toml", FULL).lines().next().unwrap(),
        "system.toml:29:8: key `server[3].core`: server `idle-ish_2` on core 6, which does not exist; \
         expected a core in 0..=5 (this machine has 6 cores)"
    );
    assert_eq!((err.line(), err.column()), (Some(29), Some(8)));
    assert_eq!(err.key(), Some("server[3].core"));

    let err = c.validate(&machine(2, &[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "4:19: key `system.mover_cores[1]`: mover core 2 does not exist; \
         expected a core in 0..=1 (this machine has 2 cores)"
    );

    let err = c.validate(&Machine { core_count: Some(7), binaries: None }).unwrap_err();
    assert_eq!(
        err.to_string(),
        "47:13: key `power.core.10`: power policy for core 10, which does not exist; \
         expected a core in 0..=6 (this machine has 7 cores)"
    );
}

#[test]
fn missing_binary() {
    let c = parse(FULL).unwrap();
    let m = machine(16, &["servers/client", "echo", "idle-ish_2"]);
    assert_eq!(
        first_line(FULL, &m),
        "system.toml:24:10: key `server[2].binary`: no binary `log-server` for server `log` in the \
         boot ramdisk; expected one of the binaries in the boot ramdisk (`servers/client`, `echo`, \
         `idle-ish_2`)"
    );
    // When `binary` defaults to the name, the error points at the name.
    let m = machine(16, &["servers/client", "log-server", "idle-ish_2"]);
    let err = c.validate(&m).unwrap_err();
    assert_eq!(
        err.to_string().split(';').next().unwrap(),
        "17:8: key `server[1].binary`: no binary `echo` for server `echo` in the boot ramdisk"
    );
}

#[test]
fn wrong_type_names_the_key_and_the_type() {
    let text = edit("core = 5", "core = \"five\"");
    assert_eq!(
        first_line(&text, &roomy()),
        "system.toml:25:8: key `server[2].core`: invalid type: string \"five\"; expected an integer"
    );
}

#[test]
fn missing_required_keys() {
    assert_eq!(first_line("", &roomy()), "system.toml:1:1: missing key `system`");
    let text = "[system]\nmover_cores = [1]\n\n[[server]]\ncore = 2\n";
    assert_eq!(first_line(text, &roomy()), "system.toml:4:1: key `server[0]`: missing key `name`");
}

#[test]
fn cross_field_errors() {
    let cases: &[(&str, &str, &str)] = &[
        (
            r#"name = "log""#,
            r#"name = "echo""#,
            "system.toml:23:8: key `server[2].name`: two servers named `echo` (lines 17 and 23); \
             expected unique server names",
        ),
        (
            r#"name = "log""#,
            r#"name = "Log""#,
            "system.toml:23:8: key `server[2].name`: `Log` is not a valid server name; \
             expected 1 to 32 characters from a-z, 0-9, `_` and `-`",
        ),
        (
            r#"endpoints = ["client"]"#,
            r#"endpoints = ["clinet"]"#,
            "system.toml:19:14: key `server[1].endpoints[0]`: no server named `clinet`; expected \
             the name of a server in this file (`client`, `echo`, `idle-ish_2`, `log`)",
        ),
        (
            r#"endpoints = ["echo", "log"]"#,
            r#"endpoints = ["echo", "echo"]"#,
            "system.toml:14:22: key `server[0].endpoints[1]`: `echo` is listed twice; \
             expected each endpoint once",
        ),
        (
            "mover_core = 1",
            "mover_core = 3",
            "system.toml:20:14: key `server[1].mover_core`: core 3 is not a mover core; \
             expected one of system.mover_cores [1, 2]",
        ),
        (
            "mover_cores = [1, 2]",
            "mover_cores = []",
            "system.toml:4:15: key `system.mover_cores`: no mover core; \
             expected at least one core number, e.g. [1]",
        ),
        (
            "mover_cores = [1, 2]",
            "mover_cores = [1, 1]",
            "system.toml:4:19: key `system.mover_cores[1]`: core 1 is listed twice; \
             expected distinct cores",
        ),
        (
            "ring_slots_default = 128",
            "ring_slots_default = 100",
            "system.toml:5:22: key `system.ring_slots_default`: 100 slots is not a power of two; \
             expected a power of two in 2..=4096 (slots of 64 bytes)",
        ),
        (
            "inbox_slots = 256",
            "inbox_slots = 8192",
            "system.toml:12:15: key `server[0].inbox_slots`: 8192 slots is out of range; \
             expected a power of two in 2..=4096 (slots of 64 bytes)",
        ),
        (
            "stack_kib = 128",
            "stack_kib = 2",
            "system.toml:11:13: key `server[0].stack_kib`: 2 is out of range; \
             expected an integer in 4..=1024",
        ),
        (
            "stack_kib = 128",
            "stack_kib = 130",
            "system.toml:11:13: key `server[0].stack_kib`: 130 KiB is not a whole number of 4 KiB \
             pages; expected a multiple of 4 in 4..=1024",
        ),
        (
            r#"binary = "log-server""#,
            r#"binary = "../log""#,
            "system.toml:24:10: key `server[2].binary`: `../log` is not a valid binary file name; \
             expected 1 to 100 characters from A-Z, a-z, 0-9, `.`, `_`, `-`, `/`, a relative path \
             without `.` or `..` parts",
        ),
    ];
    for (from, to, expected) in cases {
        assert_eq!(&first_line(&edit(from, to), &roomy()), expected, "{from} -> {to}");
    }
}

// ---- issue 7: bad power configs ----

#[test]
fn power_unknown_key() {
    let text = edit("sleep = \"hlt\"", "sleeep = \"hlt\"");
    assert_eq!(
        first_line(&text, &roomy()),
        "system.toml:34:1: key `power.default.server.sleeep`: unknown key `sleeep`; expected one of \
         `spin_polls_before_pause`, `pause_us_before_sleep`, `sleep`, `mwait_hint`, `idle_pstate`, \
         `hwp_epp_idle`, `idle_pstate_after_us`"
    );
    let text = edit("[power.default.idle]", "[power.default.parked]");
    assert_eq!(
        first_line(&text, &roomy()),
        "system.toml:39:16: key `power.default.parked`: unknown key `parked`; \
         expected one of `server`, `mover`, `idle`"
    );
    let text = edit("hwp_epp_idle = 0", "hwp_epp_idle = 0\nturbo = true");
    assert_eq!(
        first_line(&text, &roomy()),
        "system.toml:46:1: key `power.core.4.turbo`: unknown key `turbo`; expected one of \
         `spin_polls_before_pause`, `pause_us_before_sleep`, `sleep`, `mwait_hint`, `idle_pstate`, \
         `hwp_epp_idle`, `idle_pstate_after_us`"
    );
}

#[test]
fn power_out_of_range() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "hwp_epp_idle = 0",
            "hwp_epp_idle = 256",
            "system.toml:45:16: key `power.core.4.hwp_epp_idle`: 256 is out of range; \
             expected an integer in 0..=255",
        ),
        (
            "spin_polls_before_pause = 500",
            "spin_polls_before_pause = -1",
            "system.toml:33:27: key `power.default.server.spin_polls_before_pause`: -1 is out of \
             range; expected an integer in 0..=100000000",
        ),
        (
            "pause_us_before_sleep = 1000",
            "pause_us_before_sleep = 2000000",
            "system.toml:37:25: key `power.default.mover.pause_us_before_sleep`: 2000000 is out of \
             range; expected an integer in 0..=1000000",
        ),
        (
            "idle_pstate = 8",
            "idle_pstate = 300",
            "system.toml:41:15: key `power.default.idle.idle_pstate`: ratio 300 is out of range; \
             expected \"lowest\", \"unchanged\" or an integer ratio in 1..=255",
        ),
        (
            "idle_pstate = \"unchanged\"",
            "idle_pstate = \"highest\"",
            "system.toml:48:15: key `power.core.10.idle_pstate`: `highest` is not a P-state; \
             expected \"lowest\", \"unchanged\" or an integer ratio in 1..=255",
        ),
        (
            "idle_pstate = 8",
            "idle_pstate = 8\nidle_pstate_after_us = 1000001",
            "system.toml:42:24: key `power.default.idle.idle_pstate_after_us`: 1000001 is out of \
             range; expected an integer in 0..=1000000",
        ),
        (
            "mwait_hint = \"c6\"",
            "mwait_hint = \"c8\"",
            "system.toml:40:14: key `power.default.idle.mwait_hint`: `c8` is not a C-state; \
             expected one of \"c0\", \"c1\", … \"c7\"",
        ),
        (
            "[power.core.10]",
            "[power.core.ten]",
            "system.toml:47:13: key `power.core.ten`: `ten` is not a core number; \
             expected a core number in 0..1024, as in [power.core.3]",
        ),
        (
            "[power.core.10]",
            "[power.core.04]",
            "system.toml:47:13: key `power.core.04`: a second table for core 4 (the first is on \
             line 43); expected one [power.core.N] table per core",
        ),
    ];
    for (from, to, expected) in cases {
        assert_eq!(&first_line(&edit(from, to), &roomy()), expected, "{from} -> {to}");
    }
}

#[test]
fn power_bad_sleep_value() {
    let text = edit("sleep = \"none\"", "sleep = \"deep\"");
    let err = parse(&text).unwrap_err();
    assert_eq!((err.line(), err.column()), (Some(44), Some(9)));
    assert_eq!(err.key(), Some("power.core.4.sleep"));
    assert_eq!(
        err.render("system.toml", &text),
        "system.toml:44:9: key `power.core.4.sleep`: `deep` is not a sleep mode; \
         expected \"none\", \"hlt\" or \"mwait\"\n   |\n44 | sleep = \"deep\"\n   |         ^^^^^^"
    );
    let text = edit("sleep = \"none\"", "sleep = 1");
    assert_eq!(
        first_line(&text, &roomy()),
        "system.toml:44:9: key `power.core.4.sleep`: invalid type: integer `1`; \
         expected a string in quotes"
    );
}

// ---- power merge order ----

#[test]
fn power_policy_merge_order() {
    let c = parse(FULL).unwrap();
    let server = PowerPolicy::builtin(PolicyRole::Server);

    // Core 3: role default over built-in.
    let p = c.power_for_core(3, PolicyRole::Server);
    assert_eq!(p.spin_polls_before_pause, 500);
    assert_eq!(p.sleep, SleepMode::Hlt);
    assert_eq!(p.pause_us_before_sleep, server.pause_us_before_sleep);
    assert_eq!(p.hwp_epp_idle, server.hwp_epp_idle);

    assert_eq!(p.idle_pstate_after_us, 0, "built-in: lowered only while asleep");
    let edited = parse(&edit("sleep = \"none\"", "sleep = \"none\"\nidle_pstate_after_us = 250")).unwrap();
    assert_eq!(edited.power_for_core(4, PolicyRole::Server).idle_pstate_after_us, 250, "core override");
    assert_eq!(edited.power_for_core(3, PolicyRole::Server).idle_pstate_after_us, 0, "other cores keep the built-in");

    // Core 4: core override over role default over built-in.
    let p = c.power_for_core(4, PolicyRole::Server);
    assert_eq!(p.sleep, SleepMode::None, "core beats role default");
    assert_eq!(p.hwp_epp_idle, 0, "core beats built-in");
    assert_eq!(p.spin_polls_before_pause, 500, "role default kept");
    assert_eq!(p.mwait_hint, server.mwait_hint, "built-in kept");

    // Movers and idle cores get their own role defaults.
    let p = c.power_for_core(1, PolicyRole::Mover);
    assert_eq!(p.pause_us_before_sleep, 1000);
    assert_eq!(p.spin_polls_before_pause, PowerPolicy::builtin(PolicyRole::Mover).spin_polls_before_pause);
    let p = c.power_for_core(10, PolicyRole::Idle);
    assert_eq!(p.mwait_hint, MwaitHint::new(6).unwrap());
    assert_eq!(p.idle_pstate, IdlePstate::Unchanged, "core 10 overrides the idle ratio");
    assert_eq!(c.power_for_core(9, PolicyRole::Idle).idle_pstate, IdlePstate::Ratio(8));

    // Nothing in the file: the built-in defaults.
    let bare = parse("[system]\nmover_cores = [1]\n").unwrap();
    for role in [PolicyRole::Server, PolicyRole::Mover, PolicyRole::Idle] {
        assert_eq!(bare.power_for_core(5, role), PowerPolicy::builtin(role));
    }
}

// ---- robustness ----

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const PIECES: &[&str] = &[
    "[",
    "]",
    "[[",
    "]]",
    "=",
    "\"",
    "'",
    ",",
    ".",
    "\n",
    " ",
    "#",
    "-",
    "0",
    "1",
    "9",
    "4096",
    "-1",
    "99999999999999999999",
    "core",
    "server",
    "power",
    "system",
    "name",
    "{",
    "}",
    "ç",
    "é",
    "\u{1F600}",
    "\t",
    "\r\n",
    "\\",
    "true",
    "1979-05-27",
    "inf",
    "nan",
    "0x10",
    "1e3",
    "c9",
    "restart = \"always\"\n",
    "restart_max = 2\n",
    "restart_window_ms",
    "stall_ms = 5\n",
];

#[test]
fn random_mutations_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let machine = roomy();
    let mut accepted = 0;
    for _ in 0..20_000 {
        let mut text = FULL.to_string();
        for _ in 0..1 + rng.below(4) {
            let mut at = rng.below(text.len() + 1);
            while !text.is_char_boundary(at) {
                at -= 1;
            }
            match rng.below(4) {
                0 => {
                    let mut end = (at + 1 + rng.below(8)).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, "");
                }
                1 => text.insert_str(at, PIECES[rng.below(PIECES.len())]),
                2 => {
                    // Duplicate a line.
                    let lines: Vec<&str> = text.lines().collect();
                    let line = lines[rng.below(lines.len())].to_string();
                    text.insert_str(at, &format!("\n{line}\n"));
                }
                _ => {
                    let mut end = (at + 1).min(text.len());
                    while !text.is_char_boundary(end) {
                        end += 1;
                    }
                    text.replace_range(at..end, PIECES[rng.below(PIECES.len())]);
                }
            }
        }
        match parse(&text) {
            Ok(config) => {
                accepted += 1;
                let _ = config.validate(&machine);
                let again = parse(&config.to_toml()).expect("emitted TOML parses");
                assert_eq!(again, config);
            }
            Err(err) => {
                let rendered = err.render("m.toml", &text);
                assert!(rendered.starts_with("m.toml:"));
                if let Some(span) = err.span() {
                    assert!(span.line >= 1 && span.column >= 1);
                    assert!(span.start <= text.len() + 1, "{rendered}");
                }
            }
        }
    }
    assert!(accepted > 100, "mutations should sometimes stay valid ({accepted})");
}

#[test]
fn badges_are_index_plus_one() {
    assert_eq!(SystemConfig::badge(0), 1);
    assert_eq!(SystemConfig::badge(41), 42);
    assert_eq!(system_config::KERNEL_BADGE, 0);
}

#[test]
fn deep_nesting_and_long_input_are_errors_not_crashes() {
    for depth in [100, 10_000] {
        let arrays = format!("[system]\nmover_cores = {}1{}\n", "[".repeat(depth), "]".repeat(depth));
        assert!(parse(&arrays).is_err());
        let tables = format!("x = {}{}\n", "{a = ".repeat(depth), "}".repeat(depth));
        assert!(parse(&tables).is_err());
        let dotted = format!("[{}]\n", vec!["a"; depth].join("."));
        assert!(parse(&dotted).is_err());
    }
    let many = "[system]\nmover_cores = [1]\n".to_string() + &"[[server]]\nname = \"a\"\ncore = 2\n".repeat(5000);
    let err = parse(&many).unwrap_err();
    assert_eq!(err.key(), Some("server[1].name"));
}

/// The kernel parses on the BSP's 256 KiB boot stack (`kernel/src/boot.rs`).
/// Worst-case nesting (the `toml` crate stops at depth 80) must fit there.
/// Measured on the host in release: a normal file needs under 32 KiB, the
/// worst case about 128 KiB (96 KiB overflows).
#[test]
fn parse_fits_on_the_boot_stack() {
    let worst: Vec<String> = vec![
        format!("[system]\nmover_cores = {}1{}\n", "[".repeat(79), "]".repeat(79)),
        format!("x = {}{}\n", "{a = ".repeat(79), "}".repeat(79)),
        format!("x = {}1{}\n", "[".repeat(79), "]".repeat(79)),
        FULL.to_string(),
    ];
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            for text in &worst {
                let _ = parse(text).map(|c| c.validate(&roomy()));
            }
        })
        .unwrap()
        .join()
        .unwrap();
}
