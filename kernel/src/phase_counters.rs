//! Per-phase counters for benchmarks: a server marks the start and end of
//! a measured phase (`bench_mark` system call) and the kernel prints every
//! core's counter deltas for it (`BENCH counters ...`, parsed by the
//! `bench` crate). Only when the kernel was booted for benchmarks.

use core::sync::atomic::{AtomicBool, Ordering};
use cores::{CORES, MAX_CORES};

/// Set once at boot when the boot arguments ask for benchmarks.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// Turns benchmark mode on (boot argument `bench`).
pub fn enable() {
    ENABLED.store(true, Ordering::SeqCst);
}

/// Whether the kernel was booted for benchmarks.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Per-core counters at the start of a phase.
struct Snapshot {
    cr3_writes: u64,
    syscalls: u64,
    interrupts: u64,
    exceptions: u64,
    messages: u64,
    sleep_ticks: u64,
    pause_ticks: u64,
    sleeps: u64,
    tsc: u64,
}

static SNAPSHOT: spin::Mutex<[Option<Snapshot>; MAX_CORES]> = spin::Mutex::new([const { None }; MAX_CORES]);

fn snapshot(core: &cores::PerCore) -> Snapshot {
    Snapshot {
        cr3_writes: core.cr3_writes.load(Ordering::Relaxed),
        syscalls: core.syscalls.load(Ordering::Relaxed),
        interrupts: core.interrupts.load(Ordering::Relaxed),
        exceptions: core.exceptions.load(Ordering::Relaxed),
        messages: core.messages.load(Ordering::Relaxed),
        sleep_ticks: core.sleep_ticks.load(Ordering::Relaxed),
        pause_ticks: crate::server::pause_ticks_of(core, u64::MAX).0,
        sleeps: core.sleeps.load(Ordering::Relaxed),
        tsc: crate::arch::x86_64::tsc::now(),
    }
}

fn role_name(index: usize) -> &'static str {
    match crate::server::on_core(index) {
        Some(_) => "server",
        None => CORES[index].role().name(),
    }
}

/// The BENCH_MARK system call: `begin` snapshots every core's counters,
/// otherwise prints the deltas since the snapshot for `phase` (a short
/// name the server passes). Not counted as a system call itself.
pub fn mark(phase: &str, begin: bool) {
    let mut snaps = SNAPSHOT.lock();
    for core in cores::all().iter().filter(|c| c.online.load(Ordering::Acquire)) {
        let now = snapshot(core);
        let i = core.index();
        if begin {
            snaps[i] = Some(now);
        } else if let Some(start) = &snaps[i] {
            let server = crate::server::on_core(i).map(|s| s.name.as_str()).unwrap_or("-");
            crate::kprintln!(
                "BENCH counters phase={phase} core={i} role={} server={server} cr3_writes={} syscalls={} interrupts={} exceptions={} messages={} sleep_ticks={} pause_ticks={} total_ticks={} sleeps={}",
                role_name(i),
                now.cr3_writes - start.cr3_writes,
                now.syscalls - start.syscalls,
                now.interrupts - start.interrupts,
                now.exceptions - start.exceptions,
                now.messages - start.messages,
                now.sleep_ticks.wrapping_sub(start.sleep_ticks),
                // A server's figure is its own claim; it may even go down.
                now.pause_ticks.saturating_sub(start.pause_ticks),
                now.tsc.wrapping_sub(start.tsc),
                now.sleeps - start.sleeps,
            );
        }
    }
}
