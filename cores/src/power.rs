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
//! Accounting: the TSC is read once per `pause` step (never while spinning),
//! and the ticks between two consecutive pause steps are added to
//! [`Governor::pause_ticks`]. The stretch between the last pause step and
//! the work that ends the period is not counted: the figure is low by at most one poll per
//! idle period.

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
    pause_started: Option<u64>,
    last_pause_step: Option<u64>,
    pause_ticks: u64,
}

impl Governor {
    pub const fn new(policy: Escalation) -> Governor {
        Governor { policy, empty_polls: 0, pause_started: None, last_pause_step: None, pause_ticks: 0 }
    }

    pub fn policy(&self) -> Escalation {
        self.policy
    }

    /// A poll found work: the next idle period starts from spinning again.
    #[inline]
    pub fn work_found(&mut self) {
        self.empty_polls = 0;
        self.pause_started = None;
        self.last_pause_step = None;
    }

    /// TSC ticks spent in `pause` steps so far (see the module docs).
    pub fn pause_ticks(&self) -> u64 {
        self.pause_ticks
    }

    /// A poll found nothing: what next. `now` reads the TSC; it is called
    /// once per pause step and never while spinning (a clock read is not
    /// free, least of all under emulation).
    #[inline]
    pub fn idle(&mut self, now: impl FnOnce() -> u64) -> Step {
        if self.empty_polls < self.policy.spin_polls {
            self.empty_polls += 1;
            return Step::Spin;
        }
        let now = now();
        if let Some(last) = self.last_pause_step {
            self.pause_ticks = self.pause_ticks.wrapping_add(now.wrapping_sub(last));
        }
        if self.policy.sleep == SleepKind::Never {
            self.last_pause_step = Some(now);
            return Step::Pause;
        }
        let started = *self.pause_started.get_or_insert(now);
        if now.wrapping_sub(started) < self.policy.pause_ticks {
            self.last_pause_step = Some(now);
            Step::Pause
        } else {
            // Time asleep is counted by whoever sleeps, not as pausing.
            self.last_pause_step = None;
            Step::Sleep
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HLT: Escalation = Escalation { spin_polls: 3, pause_ticks: 100, sleep: SleepKind::Hlt };

    #[test]
    fn spins_then_pauses_then_sleeps() {
        let mut g = Governor::new(HLT);
        assert_eq!([g.idle(|| 0), g.idle(|| 1), g.idle(|| 2)], [Step::Spin; 3]);
        assert_eq!(g.idle(|| 10), Step::Pause); // pause period starts at 10
        assert_eq!(g.idle(|| 109), Step::Pause);
        assert_eq!(g.idle(|| 110), Step::Sleep);
        assert_eq!(g.idle(|| 5000), Step::Sleep, "after a spurious wake-up: straight back to sleep");
    }

    #[test]
    fn work_resets_the_budgets() {
        let mut g = Governor::new(HLT);
        for t in 0..200 {
            g.idle(|| t);
        }
        g.work_found();
        assert_eq!(g.idle(|| 1000), Step::Spin);
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
        assert_eq!(g.idle(|| 7), Step::Sleep);
    }

    #[test]
    fn pause_time_is_counted_between_pause_steps_only() {
        let mut g = Governor::new(HLT);
        for t in 0..3 {
            assert_eq!(g.idle(|| t), Step::Spin);
        }
        assert_eq!(g.idle(|| 10), Step::Pause);
        assert_eq!(g.idle(|| 30), Step::Pause);
        assert_eq!(g.idle(|| 60), Step::Pause);
        assert_eq!(g.pause_ticks(), 50);
        assert_eq!(g.idle(|| 200), Step::Sleep);
        assert_eq!(g.pause_ticks(), 190, "the step that ends the pause period is counted");
        assert_eq!(g.idle(|| 900), Step::Sleep);
        assert_eq!(g.pause_ticks(), 190, "sleeping is not pausing");
        g.work_found();
        assert_eq!(g.idle(|| 1000), Step::Spin);
        assert_eq!(g.pause_ticks(), 190);
    }

    #[test]
    fn never_sleeping_policy_counts_pause_time() {
        let mut g = Governor::new(Escalation { spin_polls: 0, pause_ticks: 0, sleep: SleepKind::Never });
        for t in (0..100).map(|i| i * 7) {
            assert_eq!(g.idle(|| t), Step::Pause);
        }
        assert_eq!(g.pause_ticks(), 99 * 7);
    }

    #[test]
    fn tsc_wrap_does_not_stall_escalation() {
        let mut g = Governor::new(Escalation { spin_polls: 0, pause_ticks: 10, sleep: SleepKind::Hlt });
        assert_eq!(g.idle(|| u64::MAX - 2), Step::Pause);
        assert_eq!(g.idle(|| 8), Step::Sleep); // 11 ticks later, across the wrap
    }
}
