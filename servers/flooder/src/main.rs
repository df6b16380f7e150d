//! A hostile server that floods the system calls which make someone else
//! work for it: `log` (the shared console), `power_report` (a dozen kernel
//! lines) and `wake_mover` (an IPI to the mover), for the rate-limit test
//! (`LIM0001`). It never sends a message.
//!
//! args: `flood=log,power_report,wake_mover` (any of them, comma
//! separated; default all three, interleaved call by call), `ms=N` how long
//! to flood (default 2500 ms; more than a second, so the kernel's
//! once-per-second summary appears). Then it logs what the kernel answered
//! and exits 0.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::abi;

userlib::server_main!(run);

/// What one kind of call got back.
#[derive(Default)]
struct Tally {
    calls: u64,
    refused: u64,
    other_errors: u64,
}

impl Tally {
    fn record(&mut self, raw: i64) {
        self.calls += 1;
        if raw == -abi::err::RATE_LIMITED {
            self.refused += 1;
        } else if raw < 0 {
            self.other_errors += 1;
        }
    }
}

fn run() -> i32 {
    let floods = userlib::arg("flood").unwrap_or("log,power_report,wake_mover");
    let (mut log, mut report, mut wake) = (false, false, false);
    for flood in floods.split(',') {
        match flood {
            "log" => log = true,
            "power_report" => report = true,
            "wake_mover" => wake = true,
            other => {
                userlib::log!("unknown flood `{other}` (log, power_report, wake_mover)");
                return 1;
            }
        }
    }
    let ms = userlib::arg_u64("ms", 2500);
    let deadline = userlib::rdtsc().saturating_add(ms.saturating_mul(userlib::tsc_hz() / 1000));
    let (mut logs, mut reports) = (Tally::default(), Tally::default());
    let (mut wakes, mut woken) = (0u64, 0u64);
    let line = b"flood: this line is one of many; the kernel drops what is over the limit";
    while userlib::rdtsc() < deadline {
        if log {
            logs.record(userlib::syscall3(abi::nr::LOG, line.as_ptr() as u64, line.len() as u64, 0));
        }
        if report {
            reports.record(userlib::syscall3(abi::nr::POWER_REPORT, 0, 0, 0));
        }
        if wake {
            wakes += 1;
            woken += u64::from(userlib::wake_mover());
        }
    }
    userlib::log!(
        "flooded for {ms} ms: log {} calls, {} refused as over the limit, {} other errors; power_report {} calls, {} refused, {} other errors; wake_mover {wakes} calls, {woken} found the mover asleep and woke it",
        logs.calls,
        logs.refused,
        logs.other_errors,
        reports.calls,
        reports.refused,
        reports.other_errors
    );
    0
}
