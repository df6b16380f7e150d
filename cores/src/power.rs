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
}

impl Governor {
    pub const fn new(policy: Escalation) -> Governor {
        Governor { policy, empty_polls: 0, pause_started: None }
    }

    pub fn policy(&self) -> Escalation {
        self.policy
    }

    /// A poll found work: the next idle period starts from spinning again.
    #[inline]
    pub fn work_found(&mut self) {
        self.empty_polls = 0;
        self.pause_started = None;
    }

    /// A poll found nothing: what next. `now` reads the TSC; it is only
    /// called while the pause budget is being spent (a clock read is not
    /// free, least of all under emulation).
    #[inline]
    pub fn idle(&mut self, now: impl FnOnce() -> u64) -> Step {
        if self.empty_polls < self.policy.spin_polls {
            self.empty_polls += 1;
            return Step::Spin;
        }
        if self.policy.sleep == SleepKind::Never {
            return Step::Pause;
        }
        let now = now();
        let started = *self.pause_started.get_or_insert(now);
        if now.wrapping_sub(started) < self.policy.pause_ticks { Step::Pause } else { Step::Sleep }
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
    fn tsc_wrap_does_not_stall_escalation() {
        let mut g = Governor::new(Escalation { spin_polls: 0, pause_ticks: 10, sleep: SleepKind::Hlt });
        assert_eq!(g.idle(|| u64::MAX - 2), Step::Pause);
        assert_eq!(g.idle(|| 8), Step::Sleep); // 11 ticks later, across the wrap
    }
}
