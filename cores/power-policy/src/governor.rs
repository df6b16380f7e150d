//! The power governor's escalation: what a core does after another empty
//! poll of its rings. Pure logic (no hardware), shared by the kernel (mover)
//! and `userlib` (servers), tested on the host.
//!
//! ```text
//!   work found ──────────────────────────────► Spin (counters reset)
//!   empty poll 1..=spin_polls ───────────────► Spin   (plain re-poll)
//!   then, for pause_ticks of TSC time ───────► Pause  (`pause` between polls)
//!   then ────────────────────────────────────► Sleep  (MWAIT / HLT), or Pause
//!                                              forever if the policy never sleeps
//!   once idle_pstate_after_ticks of pausing ─► LowerPstate (once; then on as above)
//! ```
//! Invariants: `Sleep` is only returned when the policy allows sleeping;
//! after a wake-up without work the core goes straight back to `Sleep`
//! (the spin and pause budgets are spent once per idle period).
//! `LowerPstate` is only returned to a policy that asks for it, at most
//! once per idle period, at a checkpoint (a sleep due at the same
//! checkpoint comes at the next one), and `work_found` then says the
//! P-state must be restored. (Every sleeping core also lowers its P-state
//! inside the kernel's sleep, and restores what it found.)
//!
//! Accounting: the TSC is read at every [`CLOCK_EVERY_PAUSES`]-th `pause`
//! step, never while spinning and never on a wait shorter than that (a
//! clock read is not free, least of all under emulation, and most waits
//! under load are short; reading it on every wait cost ~3 % of the mover
//! round trip under TCG). The ticks between two reads are added to
//! [`Governor::pause_ticks`] and the pause budget is checked at the same
//! reads, so both start one checkpoint late: the pause figure is a lower
//! bound, missing up to `2 * CLOCK_EVERY_PAUSES` steps per idle period
//! (all of a wait shorter than that), and sleep comes as late.
//! Extrapolating the measured rate to the uncounted steps was tried and
//! dropped: under TCG the length of a `pause` varies too much (it hands
//! the emulator thread on), and the estimate exceeded the elapsed time.

/// How a core may sleep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepKind {
    /// Never: keep pausing.
    Never,
    /// `sti; hlt`, woken by a doorbell interrupt.
    Hlt,
    /// `monitor` + `mwait` with this EAX hint.
    Mwait { hint: u32 },
}

/// A policy in the units the hot loop uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escalation {
    /// Empty polls before pausing.
    pub spin_polls: u64,
    /// TSC ticks of pausing before sleeping.
    pub pause_ticks: u64,
    pub sleep: SleepKind,
    /// TSC ticks of pausing after which the core lowers its P-state while
    /// it keeps polling (`idle_pstate_after_us`; the kernel sets it only
    /// where the CPU offers a P-state control). `None`: only while asleep.
    pub idle_pstate_after_ticks: Option<u64>,
}

/// What to do after an empty poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Spin,
    Pause,
    Sleep,
    /// Lower the P-state (then keep pausing); restore it when
    /// [`Governor::work_found`] says so.
    LowerPstate,
}

/// The state of one idle period.
#[derive(Debug, Clone, Copy)]
pub struct Governor {
    policy: Escalation,
    empty_polls: u64,
    /// In the pause phase of this idle period.
    pausing: bool,
    /// The pause budget is spent: sleep whenever idle, until work comes.
    sleeping: bool,
    pause_started: Option<u64>,
    last_clock: Option<u64>,
    pause_ticks: u64,
    steps_since_clock: u32,
    /// `LowerPstate` was returned in this idle period.
    pstate_lowered: bool,
}

/// Pause steps between two clock reads.
pub const CLOCK_EVERY_PAUSES: u32 = 16;

impl Governor {
    pub const fn new(policy: Escalation) -> Governor {
        Governor {
            policy,
            empty_polls: 0,
            pausing: false,
            sleeping: false,
            pause_started: None,
            last_clock: None,
            pause_ticks: 0,
            steps_since_clock: 0,
            pstate_lowered: false,
        }
    }

    pub fn policy(&self) -> Escalation {
        self.policy
    }

    /// Replaces the policy in the middle of an idle period (a live change,
    /// applied at a checkpoint: see `live`). The spin and pause budgets
    /// already spent count against the new ones; a core that was sleeping
    /// keeps sleeping only if the new policy may sleep; a lowered P-state
    /// stays lowered until [`Governor::work_found`] says to restore it.
    pub fn set_policy(&mut self, policy: Escalation) {
        self.policy = policy;
        if policy.sleep == SleepKind::Never {
            self.sleeping = false;
        }
    }

    /// A poll found work: the next idle period starts from spinning again.
    /// Returns true if this idle period lowered the P-state
    /// ([`Step::LowerPstate`]): the caller restores it.
    #[inline]
    #[must_use = "a lowered P-state must be restored"]
    pub fn work_found(&mut self) -> bool {
        self.empty_polls = 0;
        self.pausing = false;
        self.sleeping = false;
        self.pause_started = None;
        self.last_clock = None;
        core::mem::take(&mut self.pstate_lowered)
    }

    /// TSC ticks spent in `pause` steps so far (see the module docs).
    pub fn pause_ticks(&self) -> u64 {
        self.pause_ticks
    }

    /// A poll found nothing: what next. `now` reads the TSC; it is called
    /// only at every `CLOCK_EVERY_PAUSES`-th pause step.
    #[inline]
    pub fn idle(&mut self, now: impl FnOnce() -> u64) -> Step {
        if self.empty_polls < self.policy.spin_polls {
            self.empty_polls += 1;
            return Step::Spin;
        }
        if self.sleeping {
            return Step::Sleep;
        }
        if self.policy.sleep != SleepKind::Never && self.policy.pause_ticks == 0 {
            self.sleeping = true;
            return Step::Sleep;
        }
        if !self.pausing {
            self.pausing = true;
            self.steps_since_clock = 0;
            return Step::Pause;
        }
        self.steps_since_clock += 1;
        if self.steps_since_clock < CLOCK_EVERY_PAUSES {
            return Step::Pause;
        }
        self.steps_since_clock = 0;
        let now = now();
        if let Some(last) = self.last_clock {
            self.pause_ticks = self.pause_ticks.wrapping_add(now.wrapping_sub(last));
        }
        self.last_clock = Some(now);
        if self.policy.sleep == SleepKind::Never && self.policy.idle_pstate_after_ticks.is_none() {
            return Step::Pause;
        }
        let started = *self.pause_started.get_or_insert(now);
        let paused_for = now.wrapping_sub(started);
        if let Some(after) = self.policy.idle_pstate_after_ticks
            && !self.pstate_lowered
            && paused_for >= after
        {
            self.pstate_lowered = true;
            return Step::LowerPstate;
        }
        if self.policy.sleep == SleepKind::Never {
            return Step::Pause;
        }
        if paused_for < self.policy.pause_ticks {
            Step::Pause
        } else {
            // Time asleep is counted by whoever sleeps, not as pausing.
            self.sleeping = true;
            Step::Sleep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HLT: Escalation =
        Escalation { spin_polls: 3, pause_ticks: 100, sleep: SleepKind::Hlt, idle_pstate_after_ticks: None };

    fn no_clock() -> u64 {
        panic!("clock read between checkpoints")
    }

    /// The pause steps before the next checkpoint: none of them reads the clock.
    fn pauses_without_clock(g: &mut Governor) {
        for _ in 1..CLOCK_EVERY_PAUSES {
            assert_eq!(g.idle(no_clock), Step::Pause);
        }
    }

    /// Spends the spin budget and the first pause step (which reads no clock).
    fn start_pausing(g: &mut Governor) {
        for _ in 0..g.policy().spin_polls {
            assert_eq!(g.idle(no_clock), Step::Spin);
        }
        assert_eq!(g.idle(no_clock), Step::Pause);
        pauses_without_clock(g);
    }

    #[test]
    fn spins_then_pauses_then_sleeps() {
        let mut g = Governor::new(HLT);
        start_pausing(&mut g);
        assert_eq!(g.idle(|| 10), Step::Pause); // first checkpoint: the budget starts at 10
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 109), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 110), Step::Sleep);
        assert_eq!(g.idle(no_clock), Step::Sleep, "after a spurious wake-up: straight back to sleep");
    }

    #[test]
    fn work_resets_the_budgets() {
        let mut g = Governor::new(HLT);
        for t in 0..2000 {
            g.idle(|| t);
        }
        assert!(!g.work_found(), "a sleeping policy never lowers the P-state itself");
        assert_eq!(g.idle(no_clock), Step::Spin);
    }

    #[test]
    fn never_sleeping_policy_only_pauses() {
        let mut g = Governor::new(Escalation {
            spin_polls: 0,
            pause_ticks: 0,
            sleep: SleepKind::Never,
            idle_pstate_after_ticks: None,
        });
        for t in 0..10_000 {
            assert_ne!(g.idle(|| t), Step::Sleep);
        }
    }

    #[test]
    fn zero_budgets_sleep_at_once() {
        let mut g = Governor::new(Escalation {
            spin_polls: 0,
            pause_ticks: 0,
            sleep: SleepKind::Mwait { hint: 0 },
            idle_pstate_after_ticks: None,
        });
        assert_eq!(g.idle(no_clock), Step::Sleep);
    }

    #[test]
    fn short_waits_read_no_clock() {
        let mut g = Governor::new(Escalation {
            spin_polls: 2,
            pause_ticks: 1000,
            sleep: SleepKind::Hlt,
            idle_pstate_after_ticks: None,
        });
        for _ in 0..100 {
            start_pausing(&mut g);
            assert!(!g.work_found());
        }
        assert_eq!(g.pause_ticks(), 0);
    }

    #[test]
    fn pause_time_is_counted_between_checkpoints() {
        let mut g = Governor::new(HLT);
        start_pausing(&mut g);
        assert_eq!(g.idle(|| 10), Step::Pause);
        assert_eq!(g.pause_ticks(), 0, "nothing before the first checkpoint");
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 30), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 60), Step::Pause);
        assert_eq!(g.pause_ticks(), 50);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 200), Step::Sleep);
        assert_eq!(g.pause_ticks(), 190, "the checkpoint that ends the pause period is counted");
        assert_eq!(g.idle(no_clock), Step::Sleep);
        assert_eq!(g.pause_ticks(), 190, "sleeping is not pausing");
        assert!(!g.work_found());
        assert_eq!(g.idle(no_clock), Step::Spin);
        assert_eq!(g.pause_ticks(), 190);
    }

    #[test]
    fn never_sleeping_policy_counts_pause_time() {
        let mut g = Governor::new(Escalation {
            spin_polls: 0,
            pause_ticks: 0,
            sleep: SleepKind::Never,
            idle_pstate_after_ticks: None,
        });
        start_pausing(&mut g);
        for t in (0..100).map(|i| i * 7) {
            assert_eq!(g.idle(|| t), Step::Pause);
            pauses_without_clock(&mut g);
        }
        assert_eq!(g.pause_ticks(), 99 * 7);
    }

    #[test]
    fn tsc_wrap_does_not_stall_escalation() {
        let mut g = Governor::new(Escalation {
            spin_polls: 0,
            pause_ticks: 10,
            sleep: SleepKind::Hlt,
            idle_pstate_after_ticks: None,
        });
        start_pausing(&mut g);
        assert_eq!(g.idle(|| u64::MAX - 2), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 8), Step::Sleep); // 11 ticks later, across the wrap
    }

    #[test]
    fn a_live_change_to_never_sleeping_stops_the_sleeps_at_once() {
        let mut g = Governor::new(Escalation { pause_ticks: 0, ..HLT });
        for _ in 0..3 {
            g.idle(no_clock);
        }
        assert_eq!(g.idle(no_clock), Step::Sleep);
        g.set_policy(Escalation { sleep: SleepKind::Never, ..HLT });
        for t in 0..10_000 {
            assert_ne!(g.idle(|| t), Step::Sleep, "the new policy never sleeps");
        }
    }

    #[test]
    fn a_live_change_counts_the_budget_already_spent() {
        let long =
            Escalation { spin_polls: 3, pause_ticks: 1_000_000, sleep: SleepKind::Hlt, idle_pstate_after_ticks: None };
        let mut g = Governor::new(long);
        start_pausing(&mut g);
        assert_eq!(g.idle(|| 0), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 50), Step::Pause);
        g.set_policy(Escalation { pause_ticks: 20, ..long });
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 60), Step::Sleep, "50 ticks paused already exceed the new 20");
        assert!(!g.work_found());
        // The next idle period runs the new policy from its start.
        start_pausing(&mut g);
        assert_eq!(g.idle(|| 100), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 121), Step::Sleep);
    }

    const PAUSE_THEN_LOW: Escalation =
        Escalation { spin_polls: 1, pause_ticks: 0, sleep: SleepKind::Never, idle_pstate_after_ticks: Some(100) };

    #[test]
    fn never_sleeping_policy_lowers_the_pstate_once_per_idle_period() {
        let mut g = Governor::new(PAUSE_THEN_LOW);
        for period in 0..3u64 {
            let t0 = period * 10_000;
            start_pausing(&mut g);
            assert_eq!(g.idle(|| t0), Step::Pause, "first checkpoint: the budget starts");
            pauses_without_clock(&mut g);
            assert_eq!(g.idle(|| t0 + 99), Step::Pause);
            pauses_without_clock(&mut g);
            assert_eq!(g.idle(|| t0 + 100), Step::LowerPstate);
            for i in 0..50 {
                pauses_without_clock(&mut g);
                assert_eq!(g.idle(|| t0 + 200 + i), Step::Pause, "lowered once, then pausing on");
            }
            assert_eq!(g.pause_ticks(), (period + 1) * 249, "pause time is still counted while lowered");
            assert!(g.work_found(), "work after a lowered P-state: restore it");
            assert!(!g.work_found(), "restored once");
        }
    }

    #[test]
    fn short_waits_never_lower_the_pstate() {
        let mut g = Governor::new(PAUSE_THEN_LOW);
        for t in 0..1000 {
            start_pausing(&mut g);
            assert_eq!(g.idle(|| t * 1000), Step::Pause);
            pauses_without_clock(&mut g);
            assert_eq!(g.idle(|| t * 1000 + 99), Step::Pause);
            assert!(!g.work_found());
        }
    }

    #[test]
    fn sleeping_policy_lowers_before_it_sleeps() {
        let mut g = Governor::new(Escalation { idle_pstate_after_ticks: Some(40), ..HLT });
        start_pausing(&mut g);
        assert_eq!(g.idle(|| 10), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 50), Step::LowerPstate);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 100), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 110), Step::Sleep);
        assert_eq!(g.idle(no_clock), Step::Sleep);
        assert!(g.work_found(), "lowered in this idle period: restore");
    }

    #[test]
    fn lowering_due_with_the_sleep_delays_the_sleep_by_one_checkpoint() {
        let mut g = Governor::new(Escalation { idle_pstate_after_ticks: Some(100), ..HLT });
        start_pausing(&mut g);
        assert_eq!(g.idle(|| 0), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 500), Step::LowerPstate);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 501), Step::Sleep);
    }

    #[test]
    fn policy_without_the_setting_never_lowers() {
        let mut g = Governor::new(Escalation { idle_pstate_after_ticks: None, ..PAUSE_THEN_LOW });
        for t in 0..100_000 {
            assert_ne!(g.idle(|| t), Step::LowerPstate);
        }
        assert!(!g.work_found());
        let mut g = Governor::new(HLT);
        for t in 0..100_000 {
            assert_ne!(g.idle(|| t), Step::LowerPstate);
        }
    }
}
