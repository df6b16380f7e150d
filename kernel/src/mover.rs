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
use crate::server::{self, State, life};
use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};
use cores::{CORES, Role};
use mover_logic::scan::Schedule;
use mover_logic::{BounceReason, InboxShare, Push, SenderRegions, bounced, descriptor_back, route_batch_with_regions};
use power_policy::{Escalation, Governor, Step};
use ringbuf::{Consumer, Message, Producer, RingError};

/// Messages read from one outbox per visit.
pub const BATCH: usize = 32;

/// Extra empty rings each mover scans per pass (scaling benchmark).
pub static EXTRA_RINGS: AtomicUsize = AtomicUsize::new(0);
/// Most extra rings a mover has.
pub const MAX_EXTRA_RINGS: usize = 64;

/// How long a stopped server's queued messages may wait for room in their
/// senders' inboxes before the rest are counted undeliverable (so that one
/// sender that never drains cannot hold a restart back forever).
const HAND_BACK_LIMIT_MS: u64 = 100;
/// Notices waiting for room; past this the oldest is dropped (counted).
const MAX_PENDING_NOTICES: usize = 4096;

struct Source {
    /// Index in `server::all()`.
    server: usize,
    outbox: Consumer<'static>,
    corrupt_reported: bool,
    /// The destination (server index) that last refused this outbox's
    /// head message, and the outbox index of that message: while the head
    /// is still there, the mover may sleep until that inbox has room
    /// (`Mover::sleep`). `NOT_BLOCKED`: none recorded.
    blocked_on: usize,
    blocked_at: u64,
}

/// `Source::blocked_on` when no refusal is recorded.
const NOT_BLOCKED: usize = usize::MAX;

/// Where this mover is with one server (as a destination, and its rings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Running: messages to it are delivered.
    Live,
    /// Stopped: messages to it bounce; its queued inbox messages are being
    /// handed back (`hand_back` = next index, `None`: not started); its
    /// outbox is still read (what it sent before it stopped is delivered).
    Stopped { hand_back: Option<u64>, done: bool, since: u64 },
    /// Stopped and acknowledged for a restart: its rings are not touched
    /// until it runs again.
    Released,
}

/// This mover's view of one server as a destination.
struct Target {
    inbox: Producer<'static>,
    share: InboxShare,
    phase: Phase,
    /// The badge the mover stamps on its messages (its incarnation).
    badge: u64,
    /// The incarnation this mover last saw run.
    generation: u32,
    /// `life.epoch` as last handled.
    epoch_seen: u64,
    /// TSC since which a push to it has been refused with no progress
    /// (0: not blocked); `stall_ticks` 0 turns hang detection off.
    blocked_since: u64,
    stall_ticks: u64,
    /// Its core may sleep (check its wake word after delivering).
    may_sleep: bool,
    /// (server, endpoint) of every server holding a capability to it.
    holders: Vec<(usize, u32)>,
}

/// Everything one mover core owns.
pub struct Mover {
    number: usize,
    core: usize,
    sources: Vec<Source>,
    /// By server index: this mover's inbox into it and what it knows of it.
    targets: Vec<Target>,
    /// Empty rings scanned like outboxes (see `EXTRA_RINGS`).
    extra: Vec<Consumer<'static>>,
    copies: [Message; BATCH],
    /// Which outboxes (then extra rings) a pass visits (`mover_logic::scan`).
    schedule: Schedule,
    /// Also watch for the end of the run (when the mover runs on the BSP).
    supervise: bool,
    /// `life::LIFE_EPOCH` as last handled.
    life_seen: u64,
    /// Some server needs more than a pass of work (hand-back, notices, ack).
    pending: bool,
    /// Kernel notices waiting for room: (receiver, message, TSC queued).
    /// Mover 0 only.
    notices: VecDeque<(usize, Message, u64)>,
}

/// A mover's power policy as applied: its governor, the spin budget the
/// loop counts itself (the governor starts at the pause stage), the
/// P-state control that may have lowered the core, and the live generation
/// (`power::live_generation`) they came from.
struct Throttle {
    governor: Governor,
    spin_budget: u64,
    pstate: crate::power::PstateControl,
    generation: u64,
}

impl Throttle {
    fn of(core: usize) -> Self {
        // Generation first (Acquire): the policy read after it is at least as new.
        let generation = crate::power::live_generation(core);
        let policy = crate::power::policy(core);
        let escalation = policy.escalation;
        Throttle {
            governor: Governor::new(Escalation { spin_polls: 0, ..escalation }),
            spin_budget: escalation.spin_polls,
            pstate: policy.pstate,
            generation,
        }
    }
}

/// The sender number of the kernel in every inbox's share (after the servers).
fn kernel_sender() -> usize {
    server::all().len()
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
                outbox: s.outbox.region().into_consumer_at(0),
                corrupt_reported: false,
                blocked_on: NOT_BLOCKED,
                blocked_at: 0,
            })
            .collect();
        let targets = servers
            .iter()
            .enumerate()
            .map(|(index, s)| {
                let holders: Vec<(usize, u32)> = servers
                    .iter()
                    .enumerate()
                    .flat_map(|(j, h)| {
                        h.capabilities
                            .iter()
                            .enumerate()
                            .filter(move |(_, cap)| **cap == Some(index))
                            .map(move |(e, _)| (j, e as u32))
                    })
                    .collect();
                // Who can ever push into this mover's inbox of `index`: its
                // peers, the holders this mover serves; and two minor
                // senders, the server itself (its bounces) if this mover
                // serves it, and the kernel (notices, mover 0).
                let mut peer = alloc::vec![false; servers.len() + 1];
                let mut minor = alloc::vec![false; servers.len() + 1];
                for &(j, _) in &holders {
                    peer[j] |= servers[j].mover == number && j != index;
                }
                minor[index] = s.mover == number && !peer[index];
                minor[servers.len()] = number == 0;
                let inbox = s.inboxes[number].region().into_producer_at(0);
                Target {
                    share: InboxShare::new(
                        inbox.capacity(),
                        mover_logic::guarantees(inbox.capacity(), &peer, &minor),
                        0,
                    ),
                    inbox,
                    phase: Phase::Live,
                    badge: s.badge(),
                    generation: s.generation(),
                    epoch_seen: 0,
                    blocked_since: 0,
                    stall_ticks: s.stall_ticks,
                    may_sleep: crate::power::can_sleep(s.core),
                    holders,
                }
            })
            .collect();
        let extra = (0..MAX_EXTRA_RINGS)
            .filter_map(|_| SharedRing::new(8).ok())
            .map(|r| r.region().into_consumer_at(0))
            .collect();
        movers.push(Mover {
            number,
            core,
            sources,
            targets,
            extra,
            copies: [Message::zeroed(); BATCH],
            schedule: Schedule::new(0),
            supervise: core == 0,
            life_seen: 0,
            pending: false,
            notices: VecDeque::new(),
        });
    }
    movers
}

/// The rings a pass visits: the outboxes (`0..n_sources`), then the
/// benchmark's extra rings.
struct Rings<'a> {
    sources: &'a mut [Source],
    extra: &'a mut [Consumer<'static>],
    n_sources: usize,
}

/// One visit of ring `i` in a pass (`Mover::pass`): moves what its outbox
/// holds (one batch) and says whether it had anything (messages, or a
/// head held back by a full inbox). Called only for a ring whose next
/// slot may hold a message (`Consumer::may_have_work`): out of line, so
/// that the look at an empty ring is a load in the scan loop, not a call.
#[inline(never)]
fn visit(
    i: usize,
    rings: Rings<'_>,
    targets: &mut [Target],
    copies: &mut [Message; BATCH],
    servers: &[server::Server],
    woken: &mut Woken,
    handled: &mut usize,
) -> bool {
    let Rings { sources, extra, n_sources } = rings;
    let Some(source) = sources.get_mut(i) else {
        return extra.get_mut(i - n_sources).is_some_and(|ring| ring.read_untrusted(BATCH).is_ok());
    };
    let sender = source.server;
    if targets[sender].phase == Phase::Released {
        return false; // between incarnations: its outbox is not ours to read
    }
    let batch = match source.outbox.read_untrusted(BATCH) {
        Ok(batch) => batch,
        Err(RingError::Empty) => return false,
        Err(err) => {
            let server = &servers[sender];
            server.outbox_counters.record_corrupt();
            if !source.corrupt_reported {
                source.corrupt_reported = true;
                // Never waits for the console (a flooding server holds it).
                crate::serial::try_log(
                    log::Level::Warn,
                    format_args!(
                        "mover: outbox of server `{}` is corrupt ({err}); skipped until it is sane",
                        server.name
                    ),
                );
            }
            return false;
        }
    };
    let n = batch.len().min(BATCH);
    for (position, copy) in copies[..n].iter_mut().enumerate() {
        *copy = batch.get(position).unwrap_or(Message::zeroed());
    }
    let server = &servers[sender];
    let badge = targets[sender].badge;
    // Region tables: only a message with a descriptor looks at them.
    let regions = SenderRegions { grants: &server.region_grants, routes: &server.region_routes };
    let mut refused = NOT_BLOCKED;
    let outcome =
        route_batch_with_regions(&copies[..n], sender, badge, &server.capabilities, regions, |to, message| {
            let push = push_to(targets, to, sender, message, woken);
            if push == Push::Full {
                refused = to;
            }
            push
        });
    batch.release_first(outcome.consumed);
    if outcome.consumed < n {
        // Backpressure: remember who holds the head back (read only
        // by `sleep`; the head's index says whether it is still the same).
        source.blocked_on = refused;
        source.blocked_at = source.outbox.next_read_index();
    }
    server.outbox_counters.record(&outcome);
    *handled += outcome.consumed;
    true
}

/// Pushes `message` into `to`'s inbox on behalf of sender number `owner`
/// (its share), noting a refusal for hang detection. The one way every
/// message, bounce and notice enters an inbox.
#[inline(always)]
fn push_to(targets: &mut [Target], to: usize, owner: usize, message: &Message, woken: &mut Woken) -> Push {
    let Some(t) = targets.get_mut(to) else { return Push::Broken };
    if t.phase != Phase::Live {
        return Push::NotRunning;
    }
    if !t.share.may_push(owner) && !t.refresh_share(owner) {
        t.note_blocked(to);
        return Push::Full;
    }
    match t.inbox.push_untrusted(message) {
        Ok(()) => {
            t.share.pushed(owner);
            if t.blocked_since != 0 {
                t.blocked_since = 0;
            }
            if t.may_sleep {
                woken.mark(to);
            }
            Push::Done
        }
        Err(RingError::Full) => {
            t.refresh_share(owner);
            t.note_blocked(to);
            Push::Full
        }
        Err(_) => Push::Broken,
    }
}

impl Target {
    /// Looks at the consumer's index once: releases the slots it took.
    /// Returns whether `owner` may push now.
    #[cold]
    fn refresh_share(&mut self, owner: usize) -> bool {
        if let Ok(index) = self.inbox.consumer_index_untrusted()
            && self.share.released(index) > 0
        {
            self.blocked_since = 0;
        }
        self.share.may_push(owner)
    }

    /// A push to server `to` was refused: if it stays refused with no
    /// progress for longer than its `stall_ms`, the server is hung.
    #[cold]
    fn note_blocked(&mut self, to: usize) {
        if self.stall_ticks == 0 {
            return;
        }
        let now = tsc::now();
        if self.blocked_since == 0 {
            self.blocked_since = now;
        } else if now.wrapping_sub(self.blocked_since) > self.stall_ticks {
            life::request_stop_hung(to);
            self.blocked_since = now; // ask again after another stall period
        }
    }
}

/// `source` has messages the last pass could not place: may the mover
/// sleep anyway? Yes when its head is still the message an inbox refused
/// for want of room, that inbox's owner runs and has no hang detection
/// (`stall_ms` needs the mover awake to see time pass: there is no timer),
/// and after announcing the wait (`Producer::wait_for_room`, fenced) the
/// inbox still has no room for it: the receiver then wakes the mover once
/// it has taken what is there (`userlib`, `Consumer::producer_waits_for_room`).
#[cold]
fn wait_for_room(targets: &mut [Target], source: &Source) -> bool {
    if source.blocked_on == NOT_BLOCKED || source.outbox.next_read_index() != source.blocked_at {
        return false;
    }
    let Some(t) = targets.get_mut(source.blocked_on) else { return false };
    if t.phase != Phase::Live || t.stall_ticks != 0 {
        return false;
    }
    t.inbox.wait_for_room();
    // The share's owner for a message and for a bounce is the sender.
    !t.refresh_share(source.server)
}

/// Inboxes of sleep-capable servers that got messages (bit i = server i;
/// servers past 63 are always checked).
#[derive(Default)]
struct Woken {
    low: u64,
    high: bool,
}

impl Woken {
    #[inline(always)]
    fn mark(&mut self, to: usize) {
        if to < 64 {
            self.low |= 1 << to;
        } else {
            self.high = true;
        }
    }

    fn any(&self) -> bool {
        self.low != 0 || self.high
    }
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
            mover.targets.len()
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
        let mut throttle = Throttle::of(self.core);
        let mut empty_passes: u64 = 0;
        let mut passes: u64 = 0;
        loop {
            let moved = self.pass();
            if moved > 0 {
                mover_logic::counters::add(&core.messages, moved as u64);
                if empty_passes > throttle.spin_budget {
                    self.end_wait(&mut throttle.governor);
                }
                empty_passes = 0;
            } else {
                core::hint::spin_loop();
                empty_passes = empty_passes.saturating_add(1);
                if empty_passes > throttle.spin_budget {
                    self.wait_step(&mut throttle);
                }
            }
            passes = passes.wrapping_add(1);
            // The governor checkpoint of a busy mover (an idle one also
            // checks after each sleep, in `wait_step`).
            if passes.is_multiple_of(4096) {
                if self.supervise && lifecycle::run_is_over() {
                    lifecycle::finish();
                }
                if crate::power::live_generation(self.core) != throttle.generation {
                    self.apply_live_policy(&mut throttle);
                }
            }
        }
    }

    /// One empty pass past the spin budget: pause on, lower the P-state, or
    /// sleep, as the governor says. Inlined into the loop: with a spin
    /// budget of 0 (the power benchmark's systems) it runs on every pass,
    /// and under TCG a call's return is an indirect jump (a block lookup).
    #[inline(always)]
    fn wait_step(&mut self, throttle: &mut Throttle) {
        let core = &CORES[self.core];
        match throttle.governor.idle(tsc::now) {
            Step::Sleep => {
                // Counters first: the report may be printed while we sleep.
                core.pause_ticks.store(throttle.governor.pause_ticks(), Ordering::Relaxed);
                self.sleep();
                if self.supervise && lifecycle::run_is_over() {
                    lifecycle::finish();
                }
                // A live change wakes the movers (`power_control::apply`).
                if crate::power::live_generation(self.core) != throttle.generation {
                    self.apply_live_policy(throttle);
                }
            }
            Step::LowerPstate => {
                crate::power::pstate::idle_pstate(self.core, true);
            }
            Step::Spin | Step::Pause => {}
        }
    }

    /// The governor checkpoint found a live change of this core's policy
    /// (`power_control`): put back a P-state the old policy lowered, start
    /// a governor on the new policy, and say so. Cold: it runs once per
    /// change.
    #[cold]
    #[inline(never)]
    fn apply_live_policy(&mut self, throttle: &mut Throttle) {
        crate::power::pstate::restore_idle_pstate(self.core, throttle.pstate);
        *throttle = Throttle::of(self.core);
        crate::serial::try_log(
            log::Level::Info,
            format_args!(
                "power: core {} (mover {}): policy generation {} applied at a governor checkpoint",
                self.core, self.number, throttle.generation
            ),
        );
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
        let Mover { sources, targets, number, core, supervise, pending, life_seen, .. } = self;
        let mut announced = 0;
        let mut waits_for_room = false;
        let slept = crate::power::sleep::mover_sleep(*number, *core, || {
            for source in sources.iter_mut() {
                match source.outbox.prepare_to_sleep_untrusted() {
                    Ok(true) | Err(_) => announced += 1,
                    Ok(false) if wait_for_room(targets, source) => {
                        // Its head waits for room that the receiver's next
                        // take announces; the outbox itself keeps the
                        // announcement too (a publish behind the head wakes
                        // us, and the next pass tries the head again).
                        source.outbox.announce_sleep_untrusted();
                        announced += 1;
                        waits_for_room = true;
                    }
                    Ok(false) => {
                        cores::this_core().sleeps_withdrawn.fetch_add(1, Ordering::Relaxed);
                        return false;
                    }
                }
            }
            // After the announcements' fences: a server that stops from now
            // on finds the wake word SLEEPING (`power::wake_all_movers`), and
            // one that stopped before moved LIFE_EPOCH, seen here.
            !(*pending || *supervise && lifecycle::run_is_over()) && life::LIFE_EPOCH.load() == *life_seen
        });
        for source in sources.iter_mut().take(announced) {
            source.outbox.finish_sleep();
        }
        if waits_for_room {
            if slept {
                crate::power::sleep::count_room_sleep(*number);
            }
            for source in sources.iter() {
                if let Some(t) = targets.get_mut(source.blocked_on) {
                    t.inbox.stop_waiting_for_room();
                }
            }
        }
    }

    /// One visit of every outbox (and the extra rings). Returns the number
    /// of messages handled.
    fn pass(&mut self) -> usize {
        // One read-shared word per pass: did any server stop or restart?
        let epoch = life::LIFE_EPOCH.load();
        if epoch != self.life_seen || self.pending {
            self.reconcile(epoch);
        }
        let servers = server::all();
        let Mover { sources, targets, extra, copies, schedule, .. } = self;
        let mut handled = 0;
        let mut woken = Woken::default();
        // The outboxes, then the benchmark's extra rings, as one list of
        // rings: every busy one on every pass, the idle ones a slice at a
        // time (`mover_logic::scan`). Before sleeping the mover checks
        // every outbox anyway (`sleep`).
        let n_sources = sources.len();
        let active = EXTRA_RINGS.load(Ordering::Relaxed).min(extra.len());
        schedule.set_len(n_sources + active);
        // The visit is left to the compiler to call (inlining it into the
        // loop cost 20 more instructions per streamed message: measured
        // with `cargo xtask bench instructions`, docs/benchmarks.md).
        schedule.pass(|i| {
            // One load first: most rings are empty on most passes, and the
            // visit is a call with a large frame (~75 instructions for an
            // empty ring, `cargo xtask bench instructions`).
            let ring = match sources.get(i) {
                Some(source) => &source.outbox,
                None => match extra.get(i - n_sources) {
                    Some(ring) => ring,
                    None => return false,
                },
            };
            if !ring.may_have_work() {
                return false;
            }
            let rings = Rings { sources: &mut *sources, extra: &mut *extra, n_sources };
            visit(i, rings, targets, copies, servers, &mut woken, &mut handled)
        });
        ring_doorbells(targets, &woken);
        handled
    }

    /// Brings this mover's view up to date with servers that stopped or
    /// restarted, and does the work that follows (see `server::life`):
    /// hand back a stopped server's queued messages, tell its peers, let go
    /// of its rings for a restart, take it back when it runs again. Cold:
    /// it runs only when something changed or is still pending.
    #[cold]
    #[inline(never)]
    fn reconcile(&mut self, epoch: u64) {
        self.life_seen = epoch;
        let servers = server::all();
        let now = tsc::now();
        let mut pending = false;
        let mut woken = Woken::default();
        for (index, s) in servers.iter().enumerate().take(self.targets.len()) {
            let t = &mut self.targets[index];
            let server_epoch = s.life.epoch.load(Ordering::Acquire);
            let changed = server_epoch != t.epoch_seen;
            t.epoch_seen = server_epoch;
            if !changed {
                // Nothing new; a stopped server may still have work below.
            } else if t.phase == Phase::Released {
                let state = s.state();
                if s.generation() != t.generation {
                    // A new incarnation ran (it may have stopped again
                    // already: handled as a running server's stop below).
                    t.generation = s.generation();
                    t.badge = s.badge();
                    t.blocked_since = 0;
                    t.share.reset_to(t.inbox.next_write_index());
                    t.phase = Phase::Live;
                    self.notify_holders(index, abi::notice::RESTARTED, s.generation());
                } else if state == State::Restarting {
                    // Stopped again before this mover saw it run: its rings
                    // are still untouched since the last ack.
                    s.life.acks[self.number].store(server_epoch, Ordering::Release);
                } else if !s.accepts_messages() {
                    // Its restart could not be made: it stays released.
                    self.notify_holders(index, abi::notice::GAVE_UP, s.generation());
                }
            } else if t.phase == Phase::Live {
                t.badge = s.badge();
            }
            let t = &mut self.targets[index];
            if changed && t.phase == Phase::Live && !s.accepts_messages() {
                t.phase = Phase::Stopped { hand_back: None, done: false, since: now };
                t.blocked_since = 0;
                let kind = if s.state() == State::Restarting { abi::notice::STOPPED } else { abi::notice::GAVE_UP };
                self.notify_holders(index, kind, s.generation());
            }
            if let Phase::Stopped { .. } = self.targets[index].phase {
                pending |= !self.hand_back(index, now, &mut woken);
            }
        }
        pending |= !self.flush_notices(&mut woken);
        ring_doorbells(&mut self.targets, &woken);
        self.pending = pending;
    }

    /// For a stopped server: returns its queued inbox messages to their
    /// senders (bounced, `DESTINATION_NOT_RUNNING`); once that is done and
    /// it is to be restarted, and its outbox is read empty, publishes the
    /// indices its rings restart at and acknowledges. Returns whether
    /// nothing is left to do for it.
    fn hand_back(&mut self, index: usize, now: u64, woken: &mut Woken) -> bool {
        let servers = server::all();
        let s = &servers[index];
        let kernel = kernel_sender();
        let Phase::Stopped { hand_back, mut done, since } = self.targets[index].phase else { return true };
        let overdue = now.wrapping_sub(since) > HAND_BACK_LIMIT_MS * tsc::ticks_per_us() * 1000;
        if !done {
            let t = &mut self.targets[index];
            // Where the receiver stopped taking: its index if sane and not
            // behind the last one seen (a receiver that moved its index
            // back must not get messages it took handed back twice), else
            // the last one seen; everything above it is handed back.
            let mut cursor = hand_back.unwrap_or_else(|| {
                let seen = t.share.released_to();
                let ahead = t.inbox.next_write_index().wrapping_sub(seen);
                match t.inbox.consumer_index_untrusted() {
                    Ok(index) if index.wrapping_sub(seen) <= ahead => index,
                    _ => seen,
                }
            });
            let end = t.inbox.next_write_index();
            while cursor != end {
                let t = &self.targets[index];
                let owner = t.share.owner_of(cursor);
                let message = t.inbox.read_back(cursor);
                if owner == index || owner == kernel {
                    // Its own bounces and notices: nobody to hand them to.
                    s.life.discarded.fetch_add(1, Ordering::Relaxed);
                } else {
                    // A descriptor goes back in the sender's view.
                    let grants = |i: usize| servers.get(i).map_or(&[][..], |s| s.region_grants.as_slice());
                    let back = descriptor_back(&message, grants(index), grants(owner));
                    let back = bounced(&back, BounceReason::DestinationNotRunning);
                    match push_to(&mut self.targets, owner, owner, &back, woken) {
                        Push::Done => {
                            s.life.handed_back.fetch_add(1, Ordering::Relaxed);
                        }
                        Push::Full if !overdue => break,
                        _ => {
                            s.life.undeliverable.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                cursor = cursor.wrapping_add(1);
            }
            done = cursor == end;
            self.targets[index].phase = Phase::Stopped { hand_back: Some(cursor), done, since };
            if !done {
                return false;
            }
        }
        if s.state() != State::Restarting {
            return true; // stays stopped: its outbox is still read; no ack is needed
        }
        let source = self.sources.iter_mut().find(|source| source.server == index);
        if let Some(source) = source {
            // What it sent before it stopped is delivered first (by the
            // passes): look now, the last visit may predate its last send.
            let unsent = match source.outbox.read_untrusted(1) {
                Ok(batch) => !batch.is_empty(),
                Err(_) => false, // empty, or corrupt: nothing readable
            };
            if unsent && !overdue {
                return false;
            }
            source.outbox.forget_published();
            s.life.resume[0].store(source.outbox.next_read_index(), Ordering::Release);
        }
        let t = &mut self.targets[index];
        s.life.resume[1 + self.number].store(t.inbox.next_write_index(), Ordering::Release);
        t.phase = Phase::Released;
        s.life.acks[self.number].store(t.epoch_seen, Ordering::Release);
        true
    }

    /// Queues a notice about server `about` for every server holding a
    /// capability to it (mover 0 sends them all).
    fn notify_holders(&mut self, about: usize, kind: u32, generation: u32) {
        if self.number != 0 {
            return;
        }
        let s = &server::all()[about];
        let (cause, detail) = if kind == abi::notice::RESTARTED {
            (0, 0)
        } else {
            (s.life.last_cause.load(Ordering::Relaxed), s.life.last_detail.load(Ordering::Relaxed))
        };
        let notice = abi::notice::Notice { kind, server: s.config_index as u32, generation, cause, detail };
        for &(holder, endpoint) in &self.targets[about].holders {
            if holder == about {
                continue;
            }
            let Ok(mut message) = Message::new(endpoint, abi::notice::LABEL, &notice.encode()) else { continue };
            message.sender_badge = abi::KERNEL_BADGE;
            if self.notices.len() >= MAX_PENDING_NOTICES
                && let Some((dropped, _, _)) = self.notices.pop_front()
            {
                server::all()[dropped].life.notices_dropped.fetch_add(1, Ordering::Relaxed);
            }
            self.notices.push_back((holder, message, tsc::now()));
        }
    }

    /// Sends the queued notices that fit, in order per receiver (one whose
    /// inbox is full holds back only its own; for receivers past the 64th
    /// the order is best effort). A notice that waited longer
    /// than the hand-back limit is dropped and counted, so a receiver that
    /// never drains cannot keep the mover from sleeping. Returns whether
    /// none are left.
    fn flush_notices(&mut self, woken: &mut Woken) -> bool {
        let kernel = kernel_sender();
        let now = tsc::now();
        let limit = HAND_BACK_LIMIT_MS * tsc::ticks_per_us() * 1000;
        // Bit i: receiver i (below 64) already found full this round.
        let mut full: u64 = 0;
        let mut kept = VecDeque::new();
        while let Some((to, message, queued)) = self.notices.pop_front() {
            let held_back = to < 64 && full & (1 << to) != 0;
            let outcome = if held_back { Push::Full } else { push_to(&mut self.targets, to, kernel, &message, woken) };
            match outcome {
                Push::Done => {}
                Push::Full if now.wrapping_sub(queued) <= limit => {
                    if to < 64 {
                        full |= 1 << to;
                    }
                    kept.push_back((to, message, queued));
                }
                // Stopped, broken, or full for too long: it misses it.
                _ => {
                    server::all()[to].life.notices_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        self.notices = kept;
        self.notices.is_empty()
    }
}

/// Wake-flag protocol, producer half, once per inbox per pass (each check
/// is a fence): a server that announced sleep gets its wake word claimed
/// (which wakes an MWAIT on it) and, in HLT, a doorbell.
#[inline(always)]
fn ring_doorbells(targets: &mut [Target], woken: &Woken) {
    if !woken.any() {
        return;
    }
    let servers = server::all();
    for (to, t) in targets.iter_mut().enumerate() {
        let touched = if to < 64 { woken.low & (1 << to) != 0 } else { woken.high && t.may_sleep };
        if touched && t.inbox.consumer_needs_wakeup() && crate::power::needs_doorbell(servers[to].core) {
            crate::smp::doorbell(servers[to].core);
        }
    }
}
