//! The mover: a kernel loop on a core of its own that copies messages from
//! servers' outboxes into other servers' inboxes. No system call, no
//! address-space switch and no interrupt is involved: every ring is
//! reached through the kernel's direct map.
//!
//! ```text
//!  for each outbox this mover owns:
//!     read up to BATCH published messages (peer index read once, checked)
//!     copy them to private memory            (no double fetch)
//!     route each in order (mover-logic):     capability -> destination,
//!        stamp the sender's badge, push into the destination's inbox;
//!        no capability / malformed / broken destination -> bounce to sender
//!     stop at the first full ring            (backpressure: the rest stays)
//!     release what was handled               (one Release store)
//! ```
//! Invariants: each outbox has exactly one mover (its consumer); each inbox
//! ring has exactly one mover as its producer (a server has one inbox per
//! mover), so every ring stays single-producer/single-consumer and the hot
//! path takes no lock. Counters are written by their one mover only.
//! Head-of-line blocking that remains: within one outbox, a message to a
//! full inbox holds back the messages behind it, to any destination (the
//! order of one sender's messages is kept); other outboxes are unaffected.

use crate::arch::x86_64::tsc;
use crate::lifecycle;
use crate::rings::SharedRing;
use crate::server;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use cores::{CORES, Role};
use mover_logic::{Push, route_batch};
use power_policy::{Escalation, Governor, Step};
use ringbuf::{Consumer, Message, Producer, RingError};

/// Messages read from one outbox per visit.
pub const BATCH: usize = 32;

/// Extra empty rings each mover scans per pass (scaling benchmark).
pub static EXTRA_RINGS: AtomicUsize = AtomicUsize::new(0);
/// Most extra rings a mover has.
pub const MAX_EXTRA_RINGS: usize = 64;

struct Source {
    /// Index in `server::all()`.
    server: usize,
    outbox: Consumer<'static>,
    corrupt_reported: bool,
}

/// Everything one mover core owns.
pub struct Mover {
    number: usize,
    core: usize,
    sources: Vec<Source>,
    /// This mover's producer handle on every server's inbox, by server index.
    inboxes: Vec<Producer<'static>>,
    /// Empty rings scanned like outboxes (see `EXTRA_RINGS`).
    extra: Vec<Consumer<'static>>,
    copies: [Message; BATCH],
    /// Also watch for the end of the run (when the mover runs on the BSP).
    supervise: bool,
    /// By server index: its core may sleep (check its wake word after
    /// delivering), and it sleeps in HLT (ring its doorbell).
    may_sleep: Vec<bool>,
}

/// Builds one mover per mover core (in `mover_cores` order).
pub fn build(config: &system_config::SystemConfig) -> Vec<Mover> {
    let servers = server::all();
    let mut movers = Vec::new();
    for (number, &core) in config.mover_cores.iter().enumerate().take(abi::MAX_MOVERS) {
        let sources = servers
            .iter()
            .enumerate()
            .filter(|(_, s)| s.mover_core == core)
            .map(|(index, s)| Source {
                server: index,
                outbox: s.outbox.region().into_consumer(),
                corrupt_reported: false,
            })
            .collect();
        let inboxes = servers.iter().map(|s| s.inboxes[number].region().into_producer()).collect();
        let extra =
            (0..MAX_EXTRA_RINGS).filter_map(|_| SharedRing::new(8).ok()).map(|r| r.region().into_consumer()).collect();
        movers.push(Mover {
            number,
            core,
            sources,
            inboxes,
            extra,
            copies: [Message::zeroed(); BATCH],
            supervise: core == 0,
            may_sleep: servers.iter().map(|s| crate::power::can_sleep(s.core)).collect(),
        });
    }
    movers
}

/// Starts every mover not on the BSP; returns the BSP's mover, if any.
pub fn start(movers: Vec<Mover>) -> Option<Box<Mover>> {
    let mut on_bsp = None;
    let (addr, aligned) = loop_placement();
    if !aligned {
        log::warn!(
            "mover: the mover loop at {addr:#x} is not page-aligned; under TCG its figures may move by a few per cent with unrelated code changes"
        );
    }
    for mover in movers {
        log::info!(
            "mover {} on core {}: {} outboxes, {} inboxes",
            mover.number,
            mover.core,
            mover.sources.len(),
            mover.inboxes.len()
        );
        if mover.core == 0 {
            on_bsp = Some(Box::new(mover));
            continue;
        }
        let core_index = mover.core;
        let raw = Box::into_raw(Box::new(mover)) as usize;
        if !crate::smp::post_work(core_index, run_posted, raw) {
            log::error!("mover: its core is busy; not started");
        }
    }
    on_bsp
}

// The mover loop (`Mover::run`, with `pass` inlined, about 2.5 KiB) starts
// a page of its own. In system emulation TCG chains a translated block
// directly only to code on the same guest page; a jump to another page goes
// through a lookup. Where the loop happened to straddle a page boundary,
// every pass paid such lookups: unrelated code changes
// moved the IPC benchmark's mover round trip by ~5 % (docs/benchmarks.md).
// Aligned, the figure no longer depends on what was linked before it. On
// hardware a 4 KiB-aligned hot function costs nothing. `start` checks it.
core::arch::global_asm!(".pushsection .text.mover_hot,\"ax\",@progbits", ".p2align 12", ".popsection");

/// Where the mover loop starts, and whether it is page-aligned (see above).
fn loop_placement() -> (usize, bool) {
    let addr = Mover::run as fn(Box<Mover>) -> ! as usize;
    (addr, addr.is_multiple_of(4096))
}

fn run_posted(raw: usize) {
    // SAFETY: `start` posted exactly this pointer from `Box::into_raw`, and
    // each posted item is taken once.
    let mover = unsafe { Box::from_raw(raw as *mut Mover) };
    mover.run()
}

impl Mover {
    /// The mover loop. Never returns (on the BSP it ends the run when every
    /// server has stopped).
    #[unsafe(link_section = ".text.mover_hot")]
    #[inline(never)]
    pub fn run(mut self: Box<Self>) -> ! {
        let core = &CORES[self.core];
        core.set_role(Role::Mover);
        core.role_started_tsc.store(tsc::now(), Ordering::Relaxed);
        // The spin stage is counted here, in a local, and the governor only
        // sees the idle period once the spin budget is spent: the loop that
        // finds work stays as short as it was before the power policy
        // (measured in docs/benchmarks.md).
        let policy = crate::power::policy(self.core).escalation;
        let spin_budget = policy.spin_polls;
        let mut governor = Governor::new(Escalation { spin_polls: 0, ..policy });
        let mut empty_passes: u64 = 0;
        let mut passes: u64 = 0;
        loop {
            let moved = self.pass();
            if moved > 0 {
                mover_logic::counters::add(&core.messages, moved as u64);
                if empty_passes > spin_budget {
                    self.end_wait(&mut governor);
                }
                empty_passes = 0;
            } else {
                core::hint::spin_loop();
                empty_passes = empty_passes.saturating_add(1);
                if empty_passes > spin_budget {
                    self.wait_step(&mut governor);
                }
            }
            passes = passes.wrapping_add(1);
            if self.supervise && passes.is_multiple_of(4096) && lifecycle::run_is_over() {
                lifecycle::finish();
            }
        }
    }

    /// One empty pass past the spin budget: pause on, lower the P-state, or
    /// sleep, as the governor says. Inlined into the loop: with a spin
    /// budget of 0 (the power benchmark's systems) it runs on every pass,
    /// and under TCG a call's return is an indirect jump (a block lookup).
    #[inline(always)]
    fn wait_step(&mut self, governor: &mut Governor) {
        let core = &CORES[self.core];
        match governor.idle(tsc::now) {
            Step::Sleep => {
                // Counters first: the report may be printed while we sleep.
                core.pause_ticks.store(governor.pause_ticks(), Ordering::Relaxed);
                self.sleep();
                if self.supervise && lifecycle::run_is_over() {
                    lifecycle::finish();
                }
            }
            Step::LowerPstate => {
                crate::power::pstate::idle_pstate(self.core, true);
            }
            Step::Spin | Step::Pause => {}
        }
    }

    /// Work after a wait that reached the governor: reset it, restore a
    /// lowered P-state, publish the pause time.
    #[inline(always)]
    fn end_wait(&mut self, governor: &mut Governor) {
        if governor.work_found() {
            crate::power::pstate::idle_pstate(self.core, false);
        }
        CORES[self.core].pause_ticks.store(governor.pause_ticks(), Ordering::Relaxed);
    }

    /// Announces sleep on every outbox and sleeps until a server wakes the
    /// mover (`power::mover_sleep`). A corrupt outbox counts as empty (it has
    /// nothing readable) and keeps its announcement. Cold and out of line:
    /// it must not change the code of the loop that moves messages.
    #[cold]
    #[inline(never)]
    fn sleep(&mut self) {
        let Mover { sources, number, core, supervise, .. } = self;
        let mut announced = 0;
        crate::power::sleep::mover_sleep(*number, *core, || {
            for source in sources.iter_mut() {
                match source.outbox.prepare_to_sleep_untrusted() {
                    Ok(true) | Err(_) => announced += 1,
                    Ok(false) => {
                        cores::this_core().sleeps_withdrawn.fetch_add(1, Ordering::Relaxed);
                        return false;
                    }
                }
            }
            // After the announcements' fences: a server that stops from now
            // on finds the wake word SLEEPING (`power::wake_all_movers`).
            !(*supervise && lifecycle::run_is_over())
        });
        for source in sources.iter_mut().take(announced) {
            source.outbox.finish_sleep();
        }
    }

    /// One visit of every outbox (and the extra rings). Returns the number
    /// of messages handled.
    fn pass(&mut self) -> usize {
        let servers = server::all();
        let Mover { sources, inboxes, extra, copies, may_sleep, .. } = self;
        let mut handled = 0;
        // Inboxes of sleep-capable servers that got messages this pass
        // (bit i = server i; servers past 63 are always checked).
        let mut woken: u64 = 0;
        let mut woken_high = false;
        for source in sources.iter_mut() {
            let batch = match source.outbox.read_untrusted(BATCH) {
                Ok(batch) => batch,
                Err(RingError::Empty) => continue,
                Err(err) => {
                    let server = &servers[source.server];
                    server.outbox_counters.record_corrupt();
                    if !source.corrupt_reported {
                        source.corrupt_reported = true;
                        log::warn!(
                            "mover: outbox of server `{}` is corrupt ({err}); skipped until it is sane",
                            server.name
                        );
                    }
                    continue;
                }
            };
            let n = batch.len().min(BATCH);
            for (position, copy) in copies[..n].iter_mut().enumerate() {
                *copy = batch.get(position).unwrap_or(Message::zeroed());
            }
            let server = &servers[source.server];
            let outcome = route_batch(
                &copies[..n],
                source.server,
                server.badge,
                &server.capabilities,
                |to, message| match inboxes[to].push_untrusted(message) {
                    Ok(()) => {
                        if may_sleep[to] {
                            if to < 64 {
                                woken |= 1 << to;
                            } else {
                                woken_high = true;
                            }
                        }
                        Push::Done
                    }
                    Err(RingError::Full) => Push::Full,
                    Err(_) => Push::Broken,
                },
            );
            batch.release_first(outcome.consumed);
            server.outbox_counters.record(&outcome);
            handled += outcome.consumed;
        }
        // Wake-flag protocol, producer half, once per inbox per pass (each
        // check is a fence): a server that announced sleep gets its wake
        // word claimed (which wakes an MWAIT on it) and, in HLT, a doorbell.
        if woken != 0 || woken_high {
            for (to, inbox) in inboxes.iter_mut().enumerate() {
                let touched = if to < 64 { woken & (1 << to) != 0 } else { woken_high && may_sleep[to] };
                if touched && inbox.consumer_needs_wakeup() && crate::power::needs_doorbell(servers[to].core) {
                    crate::smp::doorbell(servers[to].core);
                }
            }
        }
        let active = EXTRA_RINGS.load(Ordering::Relaxed).min(extra.len());
        for ring in &mut extra[..active] {
            let _ = ring.read_untrusted(BATCH);
        }
        handled
    }
}
