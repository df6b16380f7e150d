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
//! ```
//! Invariants: `Sleep` is only returned when the policy allows sleeping;
//! after a wake-up without work the core goes straight back to `Sleep`
//! (the spin and pause budgets are spent once per idle period).
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
}

/// What to do after an empty poll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Spin,
    Pause,
    Sleep,
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
        }
    }

    pub fn policy(&self) -> Escalation {
        self.policy
    }

    /// A poll found work: the next idle period starts from spinning again.
    #[inline]
    pub fn work_found(&mut self) {
        self.empty_polls = 0;
        self.pausing = false;
        self.sleeping = false;
        self.pause_started = None;
        self.last_clock = None;
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
        if self.policy.sleep == SleepKind::Never {
            return Step::Pause;
        }
        let started = *self.pause_started.get_or_insert(now);
        if now.wrapping_sub(started) < self.policy.pause_ticks {
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

    const HLT: Escalation = Escalation { spin_polls: 3, pause_ticks: 100, sleep: SleepKind::Hlt };

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
        g.work_found();
        assert_eq!(g.idle(no_clock), Step::Spin);
    }

    #[test]
    fn never_sleeping_policy_only_pauses() {
        let mut g = Governor::new(Escalation { spin_polls: 0, pause_ticks: 0, sleep: SleepKind::Never });
        for t in 0..10_000 {
            assert_ne!(g.idle(|| t), Step::Sleep);
        }
    }

    #[test]
    fn zero_budgets_sleep_at_once() {
        let mut g = Governor::new(Escalation { spin_polls: 0, pause_ticks: 0, sleep: SleepKind::Mwait { hint: 0 } });
        assert_eq!(g.idle(no_clock), Step::Sleep);
    }

    #[test]
    fn short_waits_read_no_clock() {
        let mut g = Governor::new(Escalation { spin_polls: 2, pause_ticks: 1000, sleep: SleepKind::Hlt });
        for _ in 0..100 {
            start_pausing(&mut g);
            g.work_found();
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
        g.work_found();
        assert_eq!(g.idle(no_clock), Step::Spin);
        assert_eq!(g.pause_ticks(), 190);
    }

    #[test]
    fn never_sleeping_policy_counts_pause_time() {
        let mut g = Governor::new(Escalation { spin_polls: 0, pause_ticks: 0, sleep: SleepKind::Never });
        start_pausing(&mut g);
        for t in (0..100).map(|i| i * 7) {
            assert_eq!(g.idle(|| t), Step::Pause);
            pauses_without_clock(&mut g);
        }
        assert_eq!(g.pause_ticks(), 99 * 7);
    }

    #[test]
    fn tsc_wrap_does_not_stall_escalation() {
        let mut g = Governor::new(Escalation { spin_polls: 0, pause_ticks: 10, sleep: SleepKind::Hlt });
        start_pausing(&mut g);
        assert_eq!(g.idle(|| u64::MAX - 2), Step::Pause);
        pauses_without_clock(&mut g);
        assert_eq!(g.idle(|| 8), Step::Sleep); // 11 ticks later, across the wrap
    }
}
