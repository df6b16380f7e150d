//! Server life: why a server stopped, whether its restart policy brings it
//! back, the restart itself (a new incarnation on the same core), and the
//! handshake that makes a stop a state every mover knows.
//!
//! ```text
//!  the server's core                        every mover
//!  stopped(): counters, policy decides,
//!    state := Restarting | Exited | Faulted,
//!    epoch += 1, LIFE_EPOCH += 1, wake movers
//!                                           reconcile() sees LIFE_EPOCH move:
//!                                             stop delivering to it (bounce
//!                                             DESTINATION_NOT_RUNNING), hand its
//!                                             queued inbox messages back to their
//!                                             senders, notices to its peers,
//!                                             publish its ring indices (resume),
//!                                             ack := epoch
//!  reincarnate(): back-off, wait for every ack,
//!    re-initialise its rings at the published
//!    indices, new address space from the ELF,
//!    generation += 1, state := Running,
//!    epoch += 1, LIFE_EPOCH += 1, wake movers
//!                                           sees it running: delivers again
//!                                           (new badge), notice RESTARTED
//! ```
//! Invariants: a server's rings are re-initialised only while every mover
//! has acknowledged its stop (no mover touches them then) and before the
//! new incarnation runs; the indices they restart at are the movers' own
//! private ones, never read back from shared memory. Only the server's own
//! core restarts it, with interrupts off.

use super::{Server, State, all};
use crate::arch::x86_64::tsc;
use core::sync::atomic::{AtomicU64, Ordering};
use system_config::{RestartDecision, RestartPolicy};

/// Moves on every stop and restart of any server: the one word a mover
/// reads per pass to learn that something changed.
/// On a line of its own: every mover reads it on every pass, so nothing
/// written often may share its cache line.
pub static LIFE_EPOCH: LifeEpoch = LifeEpoch(AtomicU64::new(0));

/// [`LIFE_EPOCH`]'s word, alone on its cache lines (128 bytes: the
/// adjacent-line prefetcher pairs lines).
#[repr(align(128))]
pub struct LifeEpoch(AtomicU64);

impl LifeEpoch {
    /// The epoch (Acquire: pairs with the AcqRel increment in `announce`,
    /// so a mover that sees it move also sees the state change before it).
    #[inline(always)]
    pub fn load(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// How long a restart waits for the movers' acknowledgements before it
/// says so on the console (it keeps waiting: a mover always gets there).
const ACK_WARN_MS: u64 = 1_000;

/// Why a server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Exited(i64),
    /// The exception vector.
    Faulted(u64),
    /// Its inbox stayed full longer than its `stall_ms`.
    Hung,
}

impl Cause {
    /// `abi::notice::CAUSE_*` and the notice's detail word.
    pub fn notice_words(self) -> (u32, i64) {
        match self {
            Cause::Exited(code) => (abi::notice::CAUSE_EXITED, code),
            Cause::Faulted(vector) => (abi::notice::CAUSE_FAULTED, vector as i64),
            Cause::Hung => (abi::notice::CAUSE_HUNG, 0),
        }
    }

    fn failed(self) -> bool {
        !matches!(self, Cause::Exited(0))
    }
}

impl core::fmt::Display for Cause {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Cause::Exited(code) => write!(f, "exited with code {code}"),
            Cause::Faulted(vector) => write!(f, "faulted (vector {vector})"),
            Cause::Hung => write!(f, "hung (inbox full longer than its stall_ms)"),
        }
    }
}

fn now_ms() -> u64 {
    tsc::now() / tsc::ticks_per_us().max(1) / 1000
}

/// Whether to print a line about the `n`-th event of one server: the first
/// few, then at powers of two (a server restarted a million times must not
/// fill the console; the counters keep the exact numbers).
pub fn worth_a_line(n: u64) -> bool {
    n <= 4 || n.is_power_of_two()
}

/// Moves the server's and the global epoch and wakes everyone who watches.
fn announce(server: &Server) {
    server.life.epoch.fetch_add(1, Ordering::AcqRel);
    LIFE_EPOCH.0.fetch_add(1, Ordering::AcqRel);
    crate::power::sleep::wake_all_movers();
    crate::smp::wake(0); // the supervisor on core 0 may wait for the end of the run
}

/// Server `index` has stopped (on its own core, interrupts off): counts it,
/// asks its policy, and tells the movers. Returns the back-off before the
/// restart, or `None` if it stays stopped.
pub fn stopped(index: usize, cause: Cause) -> Option<u32> {
    let server = &all()[index];
    let life = &server.life;
    let n = match cause {
        Cause::Exited(code) => {
            server.set_exit_code(code);
            life.exits.fetch_add(1, Ordering::Relaxed) + 1
        }
        Cause::Faulted(_) => life.faults.fetch_add(1, Ordering::Relaxed) + 1,
        Cause::Hung => life.hangs.fetch_add(1, Ordering::Relaxed) + 1,
    };
    let (cause_word, detail) = cause.notice_words();
    life.last_cause.store(cause_word, Ordering::Relaxed);
    life.last_detail.store(detail, Ordering::Relaxed);
    let decision = server.restart.decide(cause.failed(), life.restart_times.lock().make_contiguous(), now_ms());
    let (state, backoff) = match decision {
        RestartDecision::Restart { after_ms } => (State::Restarting, Some(after_ms)),
        RestartDecision::Stay(reason) => {
            if cause.failed() {
                life.failed_for_good.store(true, Ordering::Release);
            }
            if server.restart != RestartPolicy::default() || worth_a_line(n) {
                log::info!(
                    "supervisor: server `{}` (core {}) {cause}; not restarted: {reason}",
                    server.name,
                    server.core
                );
            }
            (if matches!(cause, Cause::Exited(_)) { State::Exited } else { State::Faulted }, None)
        }
    };
    if let Some(after_ms) = backoff
        && worth_a_line(n)
    {
        log::info!(
            "supervisor: server `{}` (core {}) {cause}; restart {} in {after_ms} ms",
            server.name,
            server.core,
            life.restarts.load(Ordering::Relaxed) + 1
        );
    }
    server.set_state(state);
    announce(server);
    backoff
}

/// Marks server `index` hung (by a mover that found its inbox stuck) and
/// interrupts its core, whose trap or next system call stops it.
pub fn request_stop_hung(index: usize) {
    let server = &all()[index];
    if server.state() == State::Running && !server.life.stop_request.swap(true, Ordering::AcqRel) {
        crate::smp::wake(server.core);
    }
}

/// Takes a pending hang stop of server `index` (its core only).
pub fn take_stop_request(index: usize) -> bool {
    all().get(index).is_some_and(|s| s.life.stop_request.swap(false, Ordering::AcqRel))
}

/// Brings server `index` back as a new incarnation, on its own core with
/// interrupts off, after `backoff_ms`. On return the core runs on the new
/// address space (not yet in ring 3) and the server is `Running`.
pub fn reincarnate(index: usize, backoff_ms: u32) -> Result<(), super::load::LoadError> {
    let server = &all()[index];
    let start = tsc::now();
    let per_ms = tsc::ticks_per_us().max(1) * 1000;
    while tsc::now().wrapping_sub(start) < u64::from(backoff_ms) * per_ms {
        core::hint::spin_loop();
    }
    // Every mover must have let go of its rings (see the module diagram).
    let epoch = server.life.epoch.load(Ordering::Acquire);
    let movers = server.inboxes.len();
    let waited = tsc::now();
    let mut warned = false;
    let mut next_wake = 0;
    while (0..movers).any(|m| server.life.acks[m].load(Ordering::Acquire) != epoch) {
        core::hint::spin_loop();
        let elapsed = tsc::now().wrapping_sub(waited);
        if !warned && elapsed > ACK_WARN_MS * per_ms {
            warned = true;
            log::warn!("supervisor: restart of `{}` still waits for a mover after {ACK_WARN_MS} ms", server.name);
        }
        // A mover that went to sleep before the stop was announced is
        // woken by `announce`; this only covers a lost doorbell.
        if elapsed >= next_wake {
            crate::power::sleep::wake_all_movers();
            next_wake = elapsed + per_ms;
        }
    }
    super::load::rebuild(server)?;
    let generation = server.generation.load(Ordering::Relaxed).wrapping_add(1);
    server.generation.store(generation, Ordering::Release);
    server.badge.store(abi::server_badge_of_generation(server.config_index, generation), Ordering::Release);
    super::load::rewrite_info_badge(server);
    let restarts = server.life.restarts.fetch_add(1, Ordering::Relaxed) + 1;
    {
        let mut times = server.life.restart_times.lock();
        times.push_back(now_ms());
        // The policy needs no more than its limit of past restarts.
        let keep = server.restart.max_restarts.map_or(0, |m| m as usize);
        while times.len() > keep {
            times.pop_front();
        }
    }
    server.life.stop_request.store(false, Ordering::Release);
    server.set_state(State::Running);
    if worth_a_line(restarts) {
        log::info!("supervisor: server `{}` restarted as generation {generation}", server.name);
    }
    announce(server);
    Ok(())
}

/// A restart that could not be made (the ELF or memory failed): the server
/// stays stopped for good, which fails the run.
pub fn restart_failed(index: usize, error: &super::load::LoadError) {
    let server = &all()[index];
    log::error!("supervisor: server `{}` could not be restarted: {error}; it stays stopped", server.name);
    server.life.failed_for_good.store(true, Ordering::Release);
    server.set_state(State::Faulted);
    announce(server);
}

/// The supervisor view: each server's state, incarnation and life counters,
/// and the totals. Printed at the end of a run.
pub fn report() {
    let (mut faults, mut hangs, mut restarts) = (0, 0, 0);
    for s in all() {
        let l = &s.life;
        let state = match s.state() {
            State::Loaded => "never ran",
            State::Running => "running",
            State::Exited => "exited",
            State::Faulted => "stopped",
            State::Restarting => "restarting",
        };
        let f = l.faults.load(Ordering::Relaxed);
        let h = l.hangs.load(Ordering::Relaxed);
        let r = l.restarts.load(Ordering::Relaxed);
        log::info!(
            "supervisor: server `{}` (core {}): {state}, generation {}, restarts {r}, faults {f}, hangs {h}, exits {}",
            s.name,
            s.core,
            s.generation(),
            l.exits.load(Ordering::Relaxed)
        );
        let handed_back = l.handed_back.load(Ordering::Relaxed);
        let undeliverable = l.undeliverable.load(Ordering::Relaxed);
        let discarded = l.discarded.load(Ordering::Relaxed);
        let notices_dropped = l.notices_dropped.load(Ordering::Relaxed);
        if handed_back + undeliverable + discarded + notices_dropped > 0 {
            log::info!(
                "supervisor: server `{}`: queued messages handed back to their senders {handed_back}, undeliverable {undeliverable}, own bounces and notices discarded {discarded}, notices to it dropped {notices_dropped}",
                s.name
            );
        }
        faults += f;
        hangs += h;
        restarts += r;
    }
    log::info!("supervisor: total: faults {faults}, hangs {hangs}, restarts {restarts}");
}

/// The first server that stopped with a failure its policy did not cover.
pub fn failed_for_good() -> Option<&'static Server> {
    all().iter().find(|s| s.life.failed_for_good.load(Ordering::Acquire))
}
