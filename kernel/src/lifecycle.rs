//! When a run ends, and ending it: the run is over once every server that
//! is not a service has stopped (exited or faulted); then the kernel
//! prints the report and ends the run with success. A system of services
//! only runs until it is stopped from outside.
//!
//! ```text
//!  no mover on core 0:  core 0 halts in `supervise`, woken by each stop
//!  a mover on core 0:   the mover checks `run_is_over` every 4096 passes
//!                       and before it sleeps (a stop wakes the movers)
//! ```

use crate::arch::x86_64::tsc;
use crate::machine;
use crate::server;

/// True once every server that is not a service has exited or faulted
/// (and at least one server exists that is not a service).
pub fn run_is_over() -> bool {
    let mut awaited = server::all().iter().filter(|s| !s.service).peekable();
    awaited.peek().is_some() && awaited.all(|s| !s.is_live())
}

/// Core 0 watches the servers until the run is over, then ends it.
pub fn supervise() -> ! {
    // Halt between checks; a stopping server wakes core 0 (see `server::fault::park`).
    loop {
        x86_64::instructions::interrupts::disable();
        if run_is_over() {
            break;
        }
        // Kernel lines a mover deferred (the console was busy) are printed here.
        crate::serial::flush_deferred_if_free();
        // Console input, the watch view, then `sti; hlt` (or a short wait
        // while the view is on): `power_control::supervisor_wait`.
        crate::power_control::supervisor_wait();
    }
    finish()
}

/// How long `finish` waits for the cores of stopped servers to park.
const PARK_WAIT_MS: u64 = 1000;

/// A server counts as stopped before its core parks: the core marks it
/// stopped (which wakes core 0), then leaves its page tables and takes the
/// role `Parked` (`server::fault::park`). Waits, up to `PARK_WAIT_MS`,
/// until every core whose servers have all stopped has parked, so the
/// power view sees each such core parked; a core that has not parked by
/// then is named and the report goes on.
fn wait_for_parking() {
    let servers = server::all();
    let unparked = |core: &cores::PerCore| {
        core.role() == cores::Role::Server && !servers.iter().any(|s| s.core == core.index() && s.is_live())
    };
    let deadline = tsc::now().saturating_add(PARK_WAIT_MS * 1000 * tsc::ticks_per_us().max(1));
    while cores::all().iter().any(unparked) {
        if tsc::now() > deadline {
            for core in cores::all().iter().filter(|c| unparked(c)) {
                log::warn!(
                    "system: core {}: its servers stopped but it had not parked after {PARK_WAIT_MS} ms",
                    core.index()
                );
            }
            return;
        }
        core::hint::spin_loop();
    }
}

/// Prints what each server did, the supervisor view, the ring and core
/// counters and the power view, and ends the run: with failure if a server
/// stopped with a failure (fault, hang, non-zero exit) that its restart
/// policy did not cover, else with success.
pub fn finish() -> ! {
    wait_for_parking();
    crate::report::servers();
    server::life::report();
    crate::report::core_counters();
    crate::report::power_view();
    let servers = server::all();
    let services = servers.iter().filter(|s| s.service && s.is_live()).count();
    if services == 0 {
        log::info!("system: all {} servers stopped", servers.len());
    } else {
        log::info!(
            "system: all {} servers that are not services stopped; {services} service(s) still running; run ends",
            servers.len() - servers.iter().filter(|s| s.service).count()
        );
    }
    let failed = server::life::failed_for_good();
    if let Some(failed) = failed {
        let cause = match failed.state() {
            server::State::Exited => alloc::format!("exited with code {}", failed.exit_code()),
            _ => alloc::string::String::from("was stopped by a fault or a hang"),
        };
        log::error!(
            "system: run failed: server `{}` {cause} and its restart policy did not bring it back",
            failed.name
        );
    }
    let (status, code) =
        if failed.is_some() { ("failed", machine::EXIT_FAILURE) } else { ("ok", machine::EXIT_SUCCESS) };
    if crate::phase_counters::enabled() {
        crate::kprintln!("BENCH-END status={status}");
    }
    machine::exit(code)
}
