//! Changes a core's power policy while the system runs, through the
//! `power_control` system call, for the live-change test (`PWR0007`):
//! a good change, then a change the kernel must refuse, each checked
//! against what the kernel answered.
//!
//! args: `core=N` the core to change (default 2), `wait_ms=M` between calls
//! (default 200), `grant=0` when the system TOML does not grant it
//! `power_control` (then every call must come back `NOT_GRANTED`).
//! Exits 0 if every answer was the expected one, 1 otherwise.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use core::fmt::Write;
use userlib::abi;

userlib::server_main!(run);

/// One call and what its answer must be.
struct Step {
    command: &'static str,
    accepted: bool,
}

fn run() -> i32 {
    let core = userlib::arg_u64("core", 2);
    let wait_ms = userlib::arg_u64("wait_ms", 200);
    let granted = userlib::arg_u64("grant", 1) != 0;
    // The good change keeps a never-sleeping core never sleeping; the bad
    // one asks such a core to sleep (refused: the movers do not check its
    // wake words) — the kernel must refuse it and change nothing.
    let steps = [
        Step { command: "spin_polls_before_pause=50 pause_us_before_sleep=10", accepted: true },
        Step { command: "sleep=hlt", accepted: false },
        Step { command: "mwait_hint=c9", accepted: false },
    ];
    let mut failures = 0;
    for step in &steps {
        userlib::spin_us(wait_ms * 1000);
        let mut text = userlib::Line::new();
        let _ = write!(text, "core={core} {}", step.command);
        let command = core::str::from_utf8(text.as_bytes()).unwrap_or("");
        let answer = userlib::power_control(command);
        let expected = match (granted, step.accepted) {
            (false, _) => answer.is_err_and(|e| e.0 == abi::err::NOT_GRANTED),
            (true, true) => answer.is_ok(),
            (true, false) => answer.is_err_and(|e| e.0 == abi::err::BAD_COMMAND),
        };
        match answer {
            Ok(generation) => userlib::log!("`{command}`: accepted, generation {generation}"),
            Err(e) => userlib::log!("`{command}`: refused with `{}`", e.name()),
        }
        if !expected {
            failures += 1;
            userlib::log!("`{command}`: NOT the expected answer");
        }
    }
    userlib::log!("{} calls, {failures} unexpected answers", steps.len());
    i32::from(failures != 0)
}
