//! Servers: the table of every loaded server, and what the rest of the
//! kernel may ask about one. Loading (`load`), and faults and stopping
//! (`fault`) are the jobs of the submodules; the system calls a server
//! makes are dispatched in `crate::syscall`.
//!
//! Invariants:
//! - The table is filled by the BSP before any server runs and is
//!   read-only afterwards except for each entry's atomics.
//! - A server's core runs nothing else. When its server exits or faults the
//!   core switches back to the kernel's page tables and parks; the server's
//!   address space and state are kept (for a later restart feature).

pub mod fault;
pub mod load;

use crate::mem::paging::AddressSpace;
use crate::mem::phys_to_virt;
use crate::rings::SharedRing;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use mover_logic::OutboxCounters;

/// Lifecycle of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Loaded = 0,
    Running = 1,
    Exited = 2,
    Faulted = 3,
}

/// One loaded server.
pub struct Server {
    pub name: String,
    pub core: usize,
    /// Position in the system TOML (badge = `abi::server_badge(config_index)`).
    pub config_index: usize,
    pub badge: u64,
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
    /// What the mover did with its outbox (written by that mover only).
    pub outbox_counters: OutboxCounters,
    pub(crate) space: AddressSpace,
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
            _ => State::Faulted,
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

    /// Whether it still runs (or is about to).
    pub fn is_live(&self) -> bool {
        matches!(self.state(), State::Loaded | State::Running)
    }

    /// The physical address of its page-table root.
    pub fn cr3(&self) -> u64 {
        self.space.cr3()
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
