//! The live per-core view for `cargo xtask run --watch`: with the boot
//! argument `watch_ms=N`, core 0's supervisor prints one compact line per
//! tracked core every N ms, which the host turns into a table refreshed in
//! place (plain lines when its output is not a terminal).
//!
//! ```text
//!  WATCH t_ms=1500 core=2 role=server poll=120 pause=30 asleep=850 msgs=0 pstate=0 wakeups=4210
//! ```
//! Shares are per mille of the interval since the core's previous line
//! (polling/working, pausing, asleep, the same split as the end-of-run
//! power view); `msgs` are the messages a mover core moved, `pstate` the
//! P-state writes and `wakeups` the sleeps that ended, all in the interval.
//!
//! Invariants: off unless asked (no line, and core 0 halts between events
//! as before); when on, core 0 does not halt but waits with `pause` for the
//! next line (at most 1 ms at a time, so the supervisor still notices a
//! stopping server promptly): only the supervisor core pays for the view,
//! never a server or mover core. Only core 0 runs this (the state is its).

use crate::arch::x86_64::tsc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU64, Ordering};

/// The period in TSC ticks (0: off).
static PERIOD_TICKS: AtomicU64 = AtomicU64::new(0);
static PERIOD_MS: AtomicU64 = AtomicU64::new(0);

/// What each core's counters said at its previous line.
#[derive(Clone, Copy, Default)]
struct Seen {
    tsc: u64,
    asleep: u64,
    paused: u64,
    messages: u64,
    pstate: u64,
    sleeps: u64,
}

struct State {
    next: u64,
    started: u64,
    seen: Vec<Seen>,
}

static STATE: spin::Mutex<Option<State>> = spin::Mutex::new(None);

/// Turns the view on (boot argument `watch_ms`, 0 = off).
pub fn set_period_ms(ms: u64) {
    let ticks = ms.saturating_mul(tsc::ticks_per_us()).saturating_mul(1000);
    PERIOD_TICKS.store(ticks, Ordering::Relaxed);
    PERIOD_MS.store(ms, Ordering::Relaxed);
    if ticks > 0 {
        log::info!("watch: a WATCH line per core every {ms} ms (core 0 waits with pause instead of halting)");
    }
}

fn permille(part: u64, whole: u64) -> u64 {
    (u128::from(part) * 1000 / u128::from(whole.max(1))) as u64
}

fn emit(state: &mut State, now: u64) {
    let t_ms = now.saturating_sub(state.started) / (tsc::ticks_per_us().max(1) * 1000);
    for core in cores::all().iter().filter(|c| c.online.load(Ordering::Acquire)) {
        let role = core.role();
        if !matches!(role, cores::Role::Mover | cores::Role::Server | cores::Role::Parked) {
            continue;
        }
        let index = core.index();
        if state.seen.len() <= index {
            state.seen.resize(index + 1, Seen::default());
        }
        let before = state.seen[index];
        let since = if before.tsc == 0 { state.started } else { before.tsc };
        let interval = now.saturating_sub(since).max(1);
        let total = now.saturating_sub(crate::power::tracking_started_tsc()).max(1);
        let asleep = core.sleep_ticks.load(Ordering::Relaxed);
        let (paused, _) = crate::server::pause_ticks_of(core, total.saturating_sub(asleep));
        let messages = core.messages.load(Ordering::Relaxed);
        let pstate = core.pstate_changes.load(Ordering::Relaxed);
        let sleeps = core.sleeps.load(Ordering::Relaxed);
        let d_asleep = asleep.saturating_sub(before.asleep).min(interval);
        let d_paused = paused.saturating_sub(before.paused).min(interval - d_asleep);
        let d_poll = interval - d_asleep - d_paused;
        crate::kprintln!(
            "WATCH t_ms={t_ms} core={index} role={} poll={} pause={} asleep={} msgs={} pstate={} wakeups={}",
            role.name(),
            permille(d_poll, interval),
            permille(d_paused, interval),
            permille(d_asleep, interval),
            messages.saturating_sub(before.messages),
            pstate.saturating_sub(before.pstate),
            sleeps.saturating_sub(before.sleeps)
        );
        state.seen[index] = Seen { tsc: now, asleep, paused, messages, pstate, sleeps };
    }
}

/// The supervisor's wait (interrupts off on entry): without the view,
/// `sti; hlt` until an interrupt; with it, print the lines that are due,
/// then wait with `pause` (interrupts on) for at most 1 ms.
pub fn wait_or_emit() {
    let period = PERIOD_TICKS.load(Ordering::Relaxed);
    if period == 0 {
        x86_64::instructions::interrupts::enable_and_hlt();
        return;
    }
    let now = tsc::now();
    let next = {
        let mut guard = STATE.lock();
        let state = guard.get_or_insert_with(|| State { next: now + period, started: now, seen: Vec::new() });
        if now >= state.next {
            emit(state, now);
            state.next = state.next.saturating_add(period).max(now + 1);
        }
        state.next
    };
    let until = next.min(now + tsc::ticks_per_us() * 1000);
    x86_64::instructions::interrupts::enable();
    while tsc::now() < until {
        core::hint::spin_loop();
    }
}
