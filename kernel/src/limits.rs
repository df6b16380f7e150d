//! Per-server rate limits on the system calls that make someone else work
//! for a server: `log` and `power_report` (the shared serial console) and
//! `wake_mover` (an IPI to the mover's core). The buckets and the
//! once-per-second summary are `rate_limit` (pure, host-tested); this keeps
//! one `ServerLimits` per server and prints what was over the limit.
//!
//! ```text
//!  server's syscall ──► limits::take(index, call)
//!                         summary due (window >= 1 s, something counted)?
//!                           yes: one `limit:` line, on this server's core
//!                         token?  yes: Ok   no: Err(ticks until one)
//!  syscall: log / power_report refused -> err::RATE_LIMITED, counted
//!           wake_mover refused        -> mover awake: returns 0 (nothing is
//!                                        lost), counted; mover asleep: waits
//!                                        on the caller's own core for a token,
//!                                        counted as delayed (see syscall.rs)
//!  end of run ──► limits::report(): totals per server (and the last window)
//! ```
//!
//! Invariants: a server's limits are touched only by that server's own
//! system calls (one core at a time) and by the end-of-run report, each
//! under the server's own lock, held for a few instructions and never
//! while printing; the summary line is printed by the server's own core,
//! so the flood costs the flooding core the time of the line.

use crate::arch::x86_64::tsc;
use crate::server;
use alloc::vec::Vec;
use rate_limit::{CALLS, Call, Clock, ServerLimits, Summary};
use spin::Mutex;

static LIMITS: spin::Once<Vec<Mutex<ServerLimits>>> = spin::Once::new();

fn clock() -> Clock {
    Clock { ticks_per_second: tsc::ticks_per_us().max(1) * 1_000_000 }
}

/// Every server's limits (made at the first limited call, after every
/// server is loaded: the table never changes size afterwards).
fn table() -> &'static [Mutex<ServerLimits>] {
    LIMITS.call_once(|| {
        let now = tsc::now();
        (0..server::all().len()).map(|_| Mutex::new(ServerLimits::new(clock(), now))).collect()
    })
}

/// Takes a token for `call` of server `index`, or says in how many TSC
/// ticks one will be there. Prints the server's summary first if one is
/// due. Counts nothing: `count_excess` does, once per refused call.
pub fn take(index: usize, call: Call) -> Result<(), u64> {
    let Some(limits) = table().get(index) else { return Ok(()) };
    let now = tsc::now();
    let (summary, verdict) = {
        let mut limits = limits.lock();
        (limits.take_summary(now), limits.try_take(call, now))
    };
    if let Some(summary) = summary {
        print_summary(index, &summary);
    }
    verdict
}

/// Counts one call of server `index` over its limit; `delayed`: it was
/// made to wait for its token rather than refused.
pub fn count_excess(index: usize, call: Call, delayed: bool) {
    if let Some(limits) = table().get(index) {
        let mut limits = limits.lock();
        limits.count_excess(call);
        if delayed {
            limits.count_delayed();
        }
    }
}

/// "N log lines dropped, M power reports dropped, K mover wake-up calls
/// over the limit (J of them waited for a sleeping mover)".
struct Counts([u64; CALLS], u64);

impl core::fmt::Display for Counts {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{} log lines dropped, {} power reports dropped, {} mover wake-up calls over the limit ({} of them waited for a sleeping mover)",
            self.0[Call::Log.index()],
            self.0[Call::PowerReport.index()],
            self.0[Call::WakeMover.index()],
            self.1
        )
    }
}

fn print_summary(index: usize, summary: &Summary) {
    let Some(s) = server::all().get(index) else { return };
    let ms = summary.ticks / (tsc::ticks_per_us().max(1) * 1000);
    log::warn!(
        "limit: server `{}` over its limits in the last {ms} ms: {}",
        s.name,
        Counts(summary.counts, summary.delayed)
    );
}

/// End of the run: per server that went over a limit, its totals (which
/// include the window not yet summarised); one line if none did.
pub fn report() {
    let Some(table) = LIMITS.get() else {
        log::info!("limit: no server went over its limits");
        return;
    };
    let mut any = false;
    for (s, limits) in server::all().iter().zip(table) {
        let (totals, delayed, pending) = {
            let limits = limits.lock();
            (limits.totals(), limits.delayed_total(), limits.pending())
        };
        if totals.iter().any(|&t| t > 0) {
            any = true;
            log::info!(
                "limit: server `{}` in total: {} (not yet in a summary line: {}, {}, {})",
                s.name,
                Counts(totals, delayed),
                pending[Call::Log.index()],
                pending[Call::PowerReport.index()],
                pending[Call::WakeMover.index()]
            );
        }
    }
    if !any {
        log::info!("limit: no server went over its limits");
    }
}
