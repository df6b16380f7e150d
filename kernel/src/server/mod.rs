//! Servers: the table of every loaded server, and what the rest of the
//! kernel may ask about one. Loading (`load`), and faults and stopping
//! (`fault`) are the jobs of the submodules; the system calls a server
//! makes are dispatched in `crate::syscall`.
//!
//! Invariants:
//! - The table is filled by the BSP before any server runs and is
//!   read-only afterwards except for each entry's atomics.
//! - A server's core runs nothing else. When its server exits, faults or
//!   hangs, its restart policy (`life`) either brings it back on the same
//!   core as a new incarnation (fresh address space, same ring frames
//!   re-initialised, generation + 1) or the core parks.
//! - What changes between incarnations is the address space (`cr3`), the
//!   badge (its generation) and the life counters; everything else in the
//!   entry is fixed at load. The mover learns of each stop and restart
//!   through `life_epoch` (see `life`).

pub mod fault;
pub mod life;
pub mod load;

use crate::mem::paging::AddressSpace;
use crate::mem::phys_to_virt;
use crate::rings::SharedRing;
use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use mover_logic::OutboxCounters;
use x86_64::structures::paging::PhysFrame;

/// Lifecycle of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Loaded = 0,
    Running = 1,
    Exited = 2,
    Faulted = 3,
    /// Stopped, and its policy brings it back: between incarnations.
    Restarting = 4,
}

/// One loaded server.
pub struct Server {
    pub name: String,
    pub core: usize,
    /// Position in the system TOML (badge = `abi::server_badge(config_index)`).
    pub config_index: usize,
    /// The badge of the running incarnation (`abi::server_badge_of_generation`).
    badge: AtomicU64,
    generation: AtomicU32,
    /// A service is not expected to exit: the run does not wait for it.
    pub service: bool,
    /// The mover core serving its outbox.
    pub mover_core: usize,
    /// That mover's number (position in `mover_cores`).
    pub mover: usize,
    pub outbox: SharedRing,
    /// One inbox per mover, in `mover_cores` order.
    pub inboxes: Vec<SharedRing>,
    /// Endpoint i -> index in `all()` of the destination (None: not running).
    pub capabilities: Vec<Option<usize>>,
    /// The shared regions it holds, its view: entry `i` is mapped at
    /// `abi::region::addr(i)` (the mover checks descriptors against it).
    pub region_grants: Vec<mover_logic::RegionGrant>,
    /// Where each of its regions is in every other server's table, for the
    /// mover's descriptor checks (`mover_logic::region_routes`, at boot).
    pub region_routes: Vec<mover_logic::RegionRoute>,
    /// What the mover did with its outbox (written by that mover only).
    pub outbox_counters: OutboxCounters,
    /// The current incarnation's address space (replaced by a restart,
    /// only on the server's own core while it is stopped).
    pub(crate) space: spin::Mutex<Option<AddressSpace>>,
    /// Its root, readable without the lock (the switch path).
    cr3: AtomicU64,
    /// Frames of others (rings, info and statistics pages, direct rings)
    /// mapped into it: (user address, frame, writable). A restart maps the
    /// same frames into the new address space.
    pub(crate) shared_maps: Vec<(u64, PhysFrame, bool)>,
    /// Device registers (memory BARs of its `[[device]]` grants) mapped
    /// into it uncached: (user address, frame). A restart maps them again.
    pub(crate) device_maps: Vec<(u64, PhysFrame)>,
    /// Its ELF, kept for restarts.
    pub(crate) elf: &'static [u8],
    /// The frame of its read-only info page (rewritten on restart: badge).
    pub(crate) info_phys: u64,
    /// Restart policy and hang detection, from the system TOML.
    pub restart: system_config::RestartPolicy,
    /// `stall_ms` in TSC ticks (0: no hang detection).
    pub stall_ticks: u64,
    /// Life counters, stop requests and the handshake with the movers.
    pub life: Life,
    pub(crate) entry: u64,
    pub(crate) stack_top: u64,
    pub(crate) stack_bottom: u64,
    /// User ranges mapped for it (segments and stack), for fault reports.
    pub(crate) regions: Vec<(u64, u64)>,
    state: AtomicU8,
    exit_code: AtomicI64,
    pub log_lines: AtomicU64,
    /// Physical address of its statistics page (`abi::STATS_ADDR`).
    pub(crate) stats_phys: u64,
}

impl Server {
    /// The pause time the server reports on its statistics page: a claim,
    /// clamped to `at_most` (the time that has passed).
    pub fn reported_pause_ticks(&self, at_most: u64) -> u64 {
        // SAFETY: `stats_phys` is a frame allocated for this server in
        // `load` and never freed; the direct map covers it. The server may
        // store anything there concurrently, which an atomic load tolerates.
        let word = unsafe { &*(phys_to_virt(self.stats_phys) as *const AtomicU64) };
        word.load(Ordering::Relaxed).min(at_most)
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Loaded,
            1 => State::Running,
            2 => State::Exited,
            3 => State::Faulted,
            _ => State::Restarting,
        }
    }

    pub(crate) fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    pub fn exit_code(&self) -> i64 {
        self.exit_code.load(Ordering::Acquire)
    }

    pub(crate) fn set_exit_code(&self, code: i64) {
        self.exit_code.store(code, Ordering::Release);
    }

    /// Whether it still runs (or is about to, or comes back).
    pub fn is_live(&self) -> bool {
        matches!(self.state(), State::Loaded | State::Running | State::Restarting)
    }

    /// Whether the mover may deliver to it (not stopped, not between incarnations).
    pub fn accepts_messages(&self) -> bool {
        matches!(self.state(), State::Loaded | State::Running)
    }

    /// The physical address of its page-table root.
    pub fn cr3(&self) -> u64 {
        self.cr3.load(Ordering::Acquire)
    }

    /// The badge of its running incarnation.
    pub fn badge(&self) -> u64 {
        self.badge.load(Ordering::Acquire)
    }

    /// Its incarnation: 0 until the first restart.
    pub fn generation(&self) -> u32 {
        self.generation.load(Ordering::Acquire)
    }
}

/// A server's life counters and its side of the handshake with the movers
/// (what they mean: `life`).
pub struct Life {
    /// Moves on each stop and each restart of this server.
    pub epoch: AtomicU64,
    /// Per mover: the `epoch` it has handled (its rings released).
    pub acks: [AtomicU64; abi::MAX_MOVERS],
    /// Indices the rings restart at, published by the movers with their
    /// ack: `[0]` the outbox (its mover's read index), `[1 + m]` the inbox
    /// of mover `m` (its write index).
    pub resume: [AtomicU64; abi::MAX_MOVERS + 1],
    pub faults: AtomicU64,
    pub hangs: AtomicU64,
    pub exits: AtomicU64,
    pub restarts: AtomicU64,
    /// Messages queued in its inbox when it stopped, returned to their
    /// senders (bounced `DESTINATION_NOT_RUNNING`) by the movers.
    pub handed_back: AtomicU64,
    /// Of those, the ones that could not be returned (the sender stopped
    /// too, its inbox broke, or stayed full past the hand-back limit).
    pub undeliverable: AtomicU64,
    /// Its own bounces and notices still queued when it stopped (nobody to
    /// return them to).
    pub discarded: AtomicU64,
    /// Notices to it that were dropped (it was stopped, or too many waited).
    pub notices_dropped: AtomicU64,
    /// The last stop, as notice words (`Cause::notice_words`).
    pub last_cause: AtomicU32,
    pub last_detail: AtomicI64,
    /// Set by a mover that found it hung; taken by its core.
    pub(crate) stop_request: AtomicBool,
    /// Stopped with a failure its policy does not cover: the run fails.
    pub failed_for_good: AtomicBool,
    /// When it was restarted (ms since boot), oldest first, for the policy.
    pub(crate) restart_times: spin::Mutex<VecDeque<u64>>,
}

impl Life {
    pub fn new() -> Life {
        Life {
            epoch: AtomicU64::new(0),
            acks: [const { AtomicU64::new(0) }; abi::MAX_MOVERS],
            resume: [const { AtomicU64::new(0) }; abi::MAX_MOVERS + 1],
            faults: AtomicU64::new(0),
            hangs: AtomicU64::new(0),
            exits: AtomicU64::new(0),
            restarts: AtomicU64::new(0),
            handed_back: AtomicU64::new(0),
            undeliverable: AtomicU64::new(0),
            discarded: AtomicU64::new(0),
            notices_dropped: AtomicU64::new(0),
            last_cause: AtomicU32::new(0),
            last_detail: AtomicI64::new(0),
            stop_request: AtomicBool::new(false),
            failed_for_good: AtomicBool::new(false),
            restart_times: spin::Mutex::new(VecDeque::new()),
        }
    }
}

impl Default for Life {
    fn default() -> Self {
        Life::new()
    }
}

static SERVERS: spin::Once<Vec<Server>> = spin::Once::new();

/// Every loaded server (empty before `load_all`).
pub fn all() -> &'static [Server] {
    SERVERS.get().map(Vec::as_slice).unwrap_or(&[])
}

/// The server running on the calling core. Only called from a server's
/// syscall or trap, so there is one.
pub fn current() -> &'static Server {
    &all()[current_index()]
}

/// Index in `all()` of the server running on the calling core.
pub fn current_index() -> usize {
    cores::this_core().server.load(Ordering::Acquire)
}

/// The server on core `index`, if one was loaded for it.
pub fn on_core(index: usize) -> Option<&'static Server> {
    all().iter().find(|s| s.core == index)
}

/// Pause ticks of `core`: the mover's own count, or what the core's server
/// reports on its statistics page (a claim, clamped to `elapsed`), and
/// whether the figure came from the server.
pub fn pause_ticks_of(core: &cores::PerCore, elapsed: u64) -> (u64, bool) {
    let server = core.server.load(Ordering::Acquire);
    match all().get(server) {
        Some(s) if core.role() != cores::Role::Mover => (s.reported_pause_ticks(elapsed), true),
        _ => (core.pause_ticks.load(Ordering::Relaxed).min(elapsed), false),
    }
}

/// Publishes the loaded servers (once, by `load_all`) and tells each core
/// which server it runs first (the first of the file on that core).
fn install(servers: Vec<Server>) {
    for (index, server) in servers.iter().enumerate().rev() {
        cores::CORES[server.core].server.store(index, Ordering::Release);
    }
    SERVERS.call_once(|| servers);
}
