//! How a server's core waits when its inboxes are empty, and its half of
//! the sleep/wake protocol with the movers: the governor's escalation
//! (re-poll, `pause`, sleep in the kernel), P-state requests after a long
//! pause, the pause-time figure on the statistics page, and waking a
//! sleeping mover after a publish.
//!
//! ```text
//!  recv: poll inboxes ── message ──► message_arrived (cheap unless a wait
//!          │ empty                    reached the governor: then restore
//!          ▼                          the P-state, publish pause time)
//!        poll_was_empty: governor.idle()
//!          Spin ─► poll again    Pause ─► `pause`, poll again
//!          LowerPstate ─► idle_pstate(true) system call
//!          Sleep ─► publish pause time; every inbox: prepare_to_sleep
//!                   (wake = SLEEPING, fence, re-check); all still empty?
//!                   syscall WAIT; then finish_sleep on each announced inbox
//!  send: publish ─► mover may sleep and outbox wake == SLEEPING?
//!                   claim it, syscall WAKE_MOVER
//! ```
//! Invariants: a message already waiting costs one flag test here, and a
//! publish to a mover that never sleeps costs one flag test (no fence);
//! sleep is asked for only after every inbox announced it and was still
//! empty (the ring's fenced protocol, so a delivery in between is never
//! lost); every announcement is withdrawn after the wait. A policy the
//! kernel publishes while the system runs (`power_policy::live`) is applied
//! only at a governor checkpoint (a clock read, a return from sleep, or
//! the end of a wait): one load there when nothing changed, nothing on
//! the path of a message that was already waiting.

use core::sync::atomic::{AtomicU64, Ordering};
use power_policy::live::LivePolicy;
use power_policy::{Escalation, Governor, SleepKind, Step};
use ringbuf::{Consumer, Producer};

/// What the sleep/wake protocol counted on this server's core.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SleepCounts {
    /// Times the server asked the kernel to sleep (`wait`).
    pub requested: u64,
    /// Times the kernel actually slept (the rest a mover's delivery called
    /// off at the kernel's last check).
    pub slept: u64,
    /// Times a sleep announcement was withdrawn because the inbox re-check
    /// found a message (published while this core went to sleep).
    pub withdrawn: u64,
}

/// The idle state of one server core: the governor, the protocol's
/// settings from the info page and its counters. Owned by `Channel`,
/// which passes it the rings each step needs.
pub struct Idler {
    governor: Governor,
    /// The mover of the outbox may sleep: check its wake word after publishing.
    mover_sleeps: bool,
    /// Test knob (`ServerInfo::race_delay_ticks`, 0 normally).
    race_delay_ticks: u64,
    /// Where the pause time is reported to the kernel (`abi::STATS_ADDR`).
    stats: Option<&'static AtomicU64>,
    pause_reported: u64,
    /// The governor was consulted since the last message.
    waited: bool,
    counts: SleepCounts,
    /// The policy the kernel publishes when the core's policy is changed
    /// while the system runs (`abi::LIVE_POLICY_OFFSET` in the info page),
    /// and the last sequence applied.
    live: &'static LivePolicy,
    live_seen: u64,
}

impl Idler {
    /// The idle state the info page's policy asks for. Call once per
    /// server (it takes the statistics page).
    pub(crate) fn from_info(info: &abi::ServerInfo) -> Idler {
        let policy = Escalation {
            spin_polls: info.spin_polls_before_pause,
            pause_ticks: info.pause_ticks_before_sleep,
            // The kind only matters to the kernel; here: may we sleep at all.
            sleep: if info.sleep == abi::SLEEP_WAIT { SleepKind::Hlt } else { SleepKind::Never },
            idle_pstate_after_ticks: Some(info.idle_pstate_after_ticks).filter(|&t| t > 0),
        };
        // SAFETY: the kernel maps a zeroed, writable page at `STATS_ADDR` for
        // every server, for its whole life; only this server writes it (the
        // kernel reads it as untrusted figures), and `from_info` is called
        // once (by `Channel::open`). An old kernel without the page would
        // fault this server only.
        let stats = Some(unsafe { &*(abi::STATS_ADDR as *const AtomicU64) });
        // SAFETY: the info page is mapped read-only for the server's whole
        // life; `LIVE_POLICY_OFFSET` is past `ServerInfo` (const-asserted in
        // `abi`), 8-aligned, and holds `LivePolicy`'s atomics, which only the
        // kernel writes (any bit pattern is a valid `AtomicU64`).
        let live = unsafe { &*((abi::INFO_ADDR + abi::LIVE_POLICY_OFFSET) as *const LivePolicy) };
        Idler {
            governor: Governor::new(policy),
            mover_sleeps: info.mover_sleeps != 0,
            race_delay_ticks: info.race_delay_ticks,
            stats,
            pause_reported: 0,
            waited: false,
            counts: SleepCounts::default(),
            live,
            live_seen: 0,
        }
    }

    /// What the sleep/wake protocol counted so far.
    pub fn counts(&self) -> SleepCounts {
        self.counts
    }

    /// After publishing on `outbox`: if the mover may sleep and announced
    /// it, wake it (one fence and one load per call; a system call only
    /// when it sleeps).
    #[inline]
    pub(crate) fn after_publish(&self, outbox: &mut Producer<'static>) {
        if self.mover_sleeps && outbox.consumer_needs_wakeup() {
            crate::wake_mover();
        }
    }

    /// A poll found a message. Only a wait that reached the governor has
    /// state to reset: a message that is already there costs no more than
    /// a poll.
    #[inline]
    pub(crate) fn message_arrived(&mut self) {
        if self.waited {
            self.wait_ended();
        }
    }

    /// The end of a wait: reset the governor, put back a lowered P-state,
    /// publish the pause time, and apply a live policy (the end of a wait
    /// is a checkpoint, see `apply_live_policy`). Out of line: the poll
    /// loop stays small, and a wait already cost at least one empty poll.
    #[inline(never)]
    fn wait_ended(&mut self) {
        self.waited = false;
        if self.governor.work_found() {
            crate::idle_pstate(false);
        }
        self.report_pause_time();
        if self.live_policy_changed() {
            self.apply_live_policy();
        }
    }

    /// A poll of the first `count` of `inboxes` found nothing: one step of
    /// the escalation (spin, pause, lower the P-state, or sleep until a
    /// mover delivers).
    #[inline]
    pub(crate) fn poll_was_empty(&mut self, inboxes: &mut [Option<Consumer<'static>>], count: usize) {
        self.waited = true;
        let mut checkpoint = false;
        let step = self.governor.idle(|| {
            checkpoint = true;
            crate::rdtsc()
        });
        match step {
            Step::Spin => {}
            Step::Pause => core::hint::spin_loop(),
            Step::Sleep => {
                self.report_pause_time();
                self.sleep(inboxes, count);
                checkpoint = true;
            }
            Step::LowerPstate => crate::idle_pstate(true),
        }
        if checkpoint {
            self.apply_live_policy();
        }
    }

    /// The kernel published a policy this core has not applied (one load).
    #[inline]
    fn live_policy_changed(&self) -> bool {
        self.live.sequence() != self.live_seen
    }

    /// At a governor checkpoint (a clock read, back from a sleep, or the
    /// end of any wait): if the kernel published a new policy for this
    /// core, run it from now on and say so on the console. One load when
    /// nothing changed. The budgets only matter while the core waits, so
    /// checking as each wait ends puts a new policy in force before the
    /// core next waits, however short its waits are; a core that is busy
    /// but never idle for a whole spin budget still takes it.
    #[cold]
    fn apply_live_policy(&mut self) {
        if !self.live_policy_changed() {
            return;
        }
        let Some((generation, policy)) = self.live.read() else { return };
        self.live_seen = generation * 2;
        self.governor.set_policy(policy);
        crate::log!("power: policy generation {generation} applied at a governor checkpoint");
    }

    /// Publishes the pause time on the statistics page (read by the kernel
    /// for the power report) if it changed: before each sleep and when a
    /// message ends a wait.
    #[inline]
    fn report_pause_time(&mut self) {
        let paused = self.governor.pause_ticks();
        if paused != self.pause_reported
            && let Some(stats) = self.stats
        {
            self.pause_reported = paused;
            // Relaxed: a statistic, read whenever the kernel reports.
            stats.store(paused, Ordering::Relaxed);
        }
    }

    /// Announces sleep on every inbox (the wake-flag protocol), and if all
    /// are still empty asks the kernel to sleep until a mover delivers.
    fn sleep(&mut self, inboxes: &mut [Option<Consumer<'static>>], count: usize) {
        // The race-test knob widens the windows before and after the
        // announcements (no effect normally: the delay is 0).
        crate::spin_ticks(self.race_delay_ticks);
        let mut announced = 0;
        let mut all_empty = true;
        for inbox in inboxes.iter_mut().take(count).flatten() {
            if !inbox.prepare_to_sleep() {
                self.counts.withdrawn += 1;
                all_empty = false;
                break;
            }
            announced += 1;
        }
        if all_empty {
            crate::spin_ticks(self.race_delay_ticks);
            self.counts.requested += 1;
            if crate::wait() {
                self.counts.slept += 1;
            }
        }
        for inbox in inboxes.iter_mut().take(announced).flatten() {
            inbox.finish_sleep();
        }
    }
}
