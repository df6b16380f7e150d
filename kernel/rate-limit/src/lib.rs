//! Per-server rate limits on the system calls a server can use to make the
//! kernel (or the mover) work for it: `log` (a line on the shared serial
//! console), `power_report` (a dozen lines) and `wake_mover` (an IPI to the
//! mover's core). Each server has one token bucket per call, and a
//! one-second window that collects what was over the limit so the kernel
//! can print one summary line per server per second instead of one line per
//! refused call. Pure code: the kernel passes the time (TSC ticks) in.
//!
//! ```text
//!  call at `now` ──► refill: tokens += elapsed * per_second (capped at burst)
//!                    token left?  yes: take it, the call goes ahead
//!                                 no : Err(ticks until the next token);
//!                                      the kernel drops or delays the call
//!                                      and counts it (`count_excess`)
//!  every call    ──► window older than one second and something counted?
//!                      yes: `take_summary` returns the counts, new window
//! ```
//!
//! Invariants (tested below):
//! - a bucket never holds more than `burst` tokens and never goes below 0;
//!   refill is exact integer arithmetic (tokens are counted in units of
//!   1/`ticks_per_second`), so no rounding leaks a token over a long run;
//! - a clock that goes backwards (another core's TSC, a wrap) refills
//!   nothing rather than everything;
//! - a summary is due at most once per window of at least one second, and
//!   only for a window that counted something; `totals` keep every count.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// The limited system calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Log = 0,
    PowerReport = 1,
    WakeMover = 2,
}

/// Number of limited calls (`Call` as an index).
pub const CALLS: usize = 3;

impl Call {
    pub const ALL: [Call; CALLS] = [Call::Log, Call::PowerReport, Call::WakeMover];

    pub const fn index(self) -> usize {
        self as usize
    }

    /// The limit every server gets (docs/servers.md, "Limits").
    pub const fn default_rate(self) -> Rate {
        match self {
            Call::Log => LOG,
            Call::PowerReport => POWER_REPORT,
            Call::WakeMover => WAKE_MOVER,
        }
    }
}

/// How often a call may be made: `burst` at once, refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub burst: u64,
    pub per_second: u64,
}

/// `log`: 256 lines at once, then 64 a second. The busiest honest logger
/// in `qemu-scripts/systems/` is `heartbeat` (151 lines, one every 2 ms);
/// the benchmark client prints about 20.
pub const LOG: Rate = Rate { burst: 256, per_second: 64 };
/// `power_report`: 4 at once, then one a second (`ping` asks at most
/// twice: at its first stuck reply and when it gives up on a lost one).
pub const POWER_REPORT: Rate = Rate { burst: 4, per_second: 1 };
/// `wake_mover`: 8192 at once, then 20 000 a second. An honest server
/// calls it only after it published a message and found the mover's
/// announcement on its outbox, so at most once per mover sleep and once
/// per message; the busiest test (`PWR0005`, a message
/// every 20 us plus the round trip) measured about 9 000 a second from two
/// servers together under QEMU, while a server calling it in a loop woke
/// the mover 55 000 times a second. A server that needs more than 20 000
/// a second is better served by a mover policy that sleeps later: the
/// mover then sleeps less than 50 us at a time, which saves little and
/// costs an IPI and a wake-up latency per message.
pub const WAKE_MOVER: Rate = Rate { burst: 8192, per_second: 20_000 };

/// The time base: TSC ticks per second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Clock {
    pub ticks_per_second: u64,
}

/// One token bucket. Tokens are kept in units of 1/`ticks_per_second`, so
/// a refill of `elapsed` ticks adds exactly `elapsed * per_second` units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    scaled: u128,
    last: u64,
}

impl TokenBucket {
    /// A bucket holding its whole burst at `now`.
    pub fn full(rate: Rate, clock: Clock, now: u64) -> TokenBucket {
        TokenBucket { scaled: u128::from(rate.burst) * u128::from(clock.ticks_per_second.max(1)), last: now }
    }

    fn refill(&mut self, rate: Rate, clock: Clock, now: u64) {
        let tps = u128::from(clock.ticks_per_second.max(1));
        let cap = u128::from(rate.burst) * tps;
        // A clock that went backwards refills nothing (and the bucket keeps
        // its old time, so the ticks are not counted twice later).
        if now > self.last {
            let elapsed = u128::from(now - self.last);
            self.scaled = self.scaled.saturating_add(elapsed.saturating_mul(u128::from(rate.per_second))).min(cap);
            self.last = now;
        }
        self.scaled = self.scaled.min(cap);
    }

    /// Takes one token at `now`, or says how many ticks until one is there
    /// (`u64::MAX` if the rate refills nothing).
    pub fn try_take(&mut self, rate: Rate, clock: Clock, now: u64) -> Result<(), u64> {
        self.refill(rate, clock, now);
        let tps = u128::from(clock.ticks_per_second.max(1));
        if self.scaled >= tps {
            self.scaled -= tps;
            return Ok(());
        }
        if rate.per_second == 0 {
            return Err(u64::MAX);
        }
        let missing = tps - self.scaled;
        Err(u64::try_from(missing.div_ceil(u128::from(rate.per_second))).unwrap_or(u64::MAX))
    }

    /// Whole tokens left at the last refill.
    pub fn tokens(&self, clock: Clock) -> u64 {
        u64::try_from(self.scaled / u128::from(clock.ticks_per_second.max(1))).unwrap_or(u64::MAX)
    }
}

/// What one server went over its limits by, over `ticks` (at least one
/// second), per call (`Call::index`); `delayed` of the calls over the
/// limit were made to wait rather than refused (the kernel's choice, see
/// `count_delayed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub counts: [u64; CALLS],
    pub delayed: u64,
    pub ticks: u64,
}

impl Summary {
    pub fn count(&self, call: Call) -> u64 {
        self.counts[call.index()]
    }
}

/// One server's limits: a bucket per call, the current summary window and
/// the totals for the end-of-run report.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    clock: Clock,
    rates: [Rate; CALLS],
    buckets: [TokenBucket; CALLS],
    window_start: u64,
    window: [u64; CALLS],
    totals: [u64; CALLS],
    delayed_window: u64,
    delayed_total: u64,
}

impl ServerLimits {
    /// Limits with the default rates, buckets full at `now`.
    pub fn new(clock: Clock, now: u64) -> ServerLimits {
        ServerLimits::with_rates(Call::ALL.map(Call::default_rate), clock, now)
    }

    pub fn with_rates(rates: [Rate; CALLS], clock: Clock, now: u64) -> ServerLimits {
        let buckets = [0, 1, 2].map(|i| TokenBucket::full(rates[i], clock, now));
        ServerLimits {
            clock,
            rates,
            buckets,
            window_start: now,
            window: [0; CALLS],
            totals: [0; CALLS],
            delayed_window: 0,
            delayed_total: 0,
        }
    }

    pub fn rate(&self, call: Call) -> Rate {
        self.rates[call.index()]
    }

    /// Takes a token for `call` at `now`, or says how many ticks until one
    /// is there. Counts nothing: the caller decides what a refusal means
    /// and calls `count_excess` once per refused call.
    pub fn try_take(&mut self, call: Call, now: u64) -> Result<(), u64> {
        let i = call.index();
        self.buckets[i].try_take(self.rates[i], self.clock, now)
    }

    /// Counts one call over the limit (dropped or delayed).
    pub fn count_excess(&mut self, call: Call) {
        let i = call.index();
        self.window[i] = self.window[i].saturating_add(1);
        self.totals[i] = self.totals[i].saturating_add(1);
    }

    /// Marks one of the calls counted by `count_excess` as made to wait
    /// for its token instead of refused.
    pub fn count_delayed(&mut self) {
        self.delayed_window = self.delayed_window.saturating_add(1);
        self.delayed_total = self.delayed_total.saturating_add(1);
    }

    /// The summary of the window that ends at `now`, if it is at least one
    /// second old and counted something; a new window starts then. Call it
    /// on every limited call (cheap: one comparison while the window runs).
    pub fn take_summary(&mut self, now: u64) -> Option<Summary> {
        let ticks = now.checked_sub(self.window_start)?;
        if ticks < self.clock.ticks_per_second {
            return None;
        }
        let counts = core::mem::replace(&mut self.window, [0; CALLS]);
        let delayed = core::mem::replace(&mut self.delayed_window, 0);
        self.window_start = now;
        (counts.iter().any(|&c| c > 0) || delayed > 0).then_some(Summary { counts, delayed, ticks })
    }

    /// What the current window counted so far (for the end of the run).
    pub fn pending(&self) -> [u64; CALLS] {
        self.window
    }

    /// Calls made to wait since the start (`count_delayed`).
    pub fn delayed_total(&self) -> u64 {
        self.delayed_total
    }

    /// Every call over the limit since the start, per call.
    pub fn totals(&self) -> [u64; CALLS] {
        self.totals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLOCK: Clock = Clock { ticks_per_second: 1_000_000 }; // 1 tick = 1 us
    const MS: u64 = 1_000;
    const S: u64 = 1_000_000;

    fn takes(bucket: &mut TokenBucket, rate: Rate, now: u64, n: u64) -> u64 {
        (0..n).filter(|_| bucket.try_take(rate, CLOCK, now).is_ok()).count() as u64
    }

    #[test]
    fn a_burst_passes_and_the_next_call_is_refused() {
        let rate = Rate { burst: 10, per_second: 5 };
        let mut b = TokenBucket::full(rate, CLOCK, 0);
        assert_eq!(takes(&mut b, rate, 0, 10), 10);
        // One token comes back after 1/5 s.
        assert_eq!(b.try_take(rate, CLOCK, 0), Err(200 * MS));
        assert_eq!(b.tokens(CLOCK), 0);
    }

    #[test]
    fn refill_is_exact_and_capped_at_the_burst() {
        let rate = Rate { burst: 10, per_second: 3 };
        let mut b = TokenBucket::full(rate, CLOCK, 0);
        assert_eq!(takes(&mut b, rate, 0, 10), 10);
        // 3 per second: after 1 s exactly 3, never a fourth from rounding.
        assert_eq!(takes(&mut b, rate, S, 5), 3);
        // Partial tokens carry over: 1/3 s + 1/3 s + 1/3 s = one token.
        assert_eq!(b.try_take(rate, CLOCK, S + S / 3), Err(1));
        assert_eq!(b.try_take(rate, CLOCK, S + S / 3 + 1), Ok(()));
        assert!(b.try_take(rate, CLOCK, S + S / 3 + 1).is_err());
        // An hour idle refills the burst, not more.
        assert_eq!(takes(&mut b, rate, 3600 * S, 100), 10);
    }

    #[test]
    fn sustained_rate_is_the_refill_rate() {
        let rate = Rate { burst: 256, per_second: 64 };
        let mut b = TokenBucket::full(rate, CLOCK, 0);
        // A flood: a call every 10 us for 10 s.
        let allowed = (0..1_000_000u64).filter(|i| b.try_take(rate, CLOCK, i * 10).is_ok()).count() as u64;
        assert!((256 + 639..=256 + 640).contains(&allowed), "{allowed}");
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let rate = Rate { burst: 2, per_second: 1 };
        let mut b = TokenBucket::full(rate, CLOCK, 10 * S);
        assert_eq!(takes(&mut b, rate, 10 * S, 2), 2);
        assert!(b.try_take(rate, CLOCK, 0).is_err());
        assert!(b.try_take(rate, CLOCK, u64::MAX / 2).is_ok());
        // After a huge jump, backwards again: still nothing extra.
        assert_eq!(takes(&mut b, rate, 5, 3), 1);
    }

    #[test]
    fn a_zero_rate_never_refills() {
        let rate = Rate { burst: 1, per_second: 0 };
        let mut b = TokenBucket::full(rate, CLOCK, 0);
        assert_eq!(b.try_take(rate, CLOCK, 0), Ok(()));
        assert_eq!(b.try_take(rate, CLOCK, 100 * S), Err(u64::MAX));
    }

    #[test]
    fn huge_clock_and_rates_do_not_overflow() {
        let clock = Clock { ticks_per_second: u64::MAX };
        let rate = Rate { burst: u64::MAX, per_second: u64::MAX };
        let mut b = TokenBucket::full(rate, clock, 0);
        assert_eq!(b.try_take(rate, clock, u64::MAX), Ok(()));
        assert_eq!(b.tokens(clock), u64::MAX - 1);
    }

    /// The honest patterns of `qemu-scripts/systems/` stay within the
    /// defaults: heartbeat's 151 lines 2 ms apart, and a wake-up per
    /// message for 100 000 messages at 20 000 a second, twice PWR0005's
    /// measured rate for both its servers together.
    #[test]
    fn honest_patterns_are_never_limited() {
        let mut limits = ServerLimits::new(CLOCK, 0);
        for beat in 0..151 {
            assert_eq!(limits.try_take(Call::Log, beat * 2 * MS), Ok(()));
        }
        for message in 0..100_000u64 {
            assert_eq!(limits.try_take(Call::WakeMover, message * 50), Ok(()), "message {message}");
        }
        for report in 0..2 {
            assert_eq!(limits.try_take(Call::PowerReport, report * 100 * MS), Ok(()));
        }
        assert_eq!(limits.take_summary(10 * S), None);
        assert_eq!(limits.totals(), [0; CALLS]);
    }

    #[test]
    fn one_summary_per_second_only_for_windows_that_counted() {
        let mut limits = ServerLimits::new(CLOCK, 0);
        // Nothing counted: never a summary, even after a long time.
        assert_eq!(limits.take_summary(5 * S), None);
        // Counted inside the window: nothing until the window is one second old.
        limits.count_excess(Call::Log);
        limits.count_excess(Call::Log);
        limits.count_excess(Call::WakeMover);
        limits.count_delayed();
        assert_eq!(limits.take_summary(5 * S + 999_999), None);
        assert_eq!(limits.take_summary(6 * S), Some(Summary { counts: [2, 0, 1], delayed: 1, ticks: S }));
        // The next window starts at 6 s; a call 1 us later gets nothing.
        limits.count_excess(Call::PowerReport);
        assert_eq!(limits.take_summary(6 * S + 1), None);
        assert_eq!(limits.pending(), [0, 1, 0]);
        // A window longer than a second (a quiet server) says how long.
        let s = limits.take_summary(9 * S).expect("counted");
        assert_eq!((s.count(Call::PowerReport), s.ticks), (1, 3 * S));
        assert_eq!((s.delayed, limits.delayed_total()), (0, 1));
        assert_eq!(limits.totals(), [2, 1, 1]);
        assert_eq!(limits.pending(), [0; CALLS]);
    }

    #[test]
    fn a_flood_gives_about_one_summary_per_second() {
        let mut limits = ServerLimits::new(CLOCK, 0);
        let mut summaries = Vec::new();
        let mut dropped = 0;
        // A log line every 100 us for 5.5 s.
        for i in 0..55_000u64 {
            let now = i * 100;
            if let Some(s) = limits.take_summary(now) {
                summaries.push((now, s));
            }
            if limits.try_take(Call::Log, now).is_err() {
                limits.count_excess(Call::Log);
                dropped += 1;
            }
        }
        assert_eq!(summaries.len(), 5, "{summaries:?}");
        for (k, (at, s)) in summaries.iter().enumerate() {
            assert_eq!(*at, (k as u64 + 1) * S);
            assert_eq!(s.ticks, S);
        }
        // First second: 10 000 calls; the burst and the 63 tokens that
        // refilled by the last of them (at 0.9999 s) were allowed.
        assert_eq!(summaries[0].1.count(Call::Log), 10_000 - 256 - 63);
        assert_eq!(summaries[1].1.count(Call::Log), 10_000 - 64);
        let summed: u64 = summaries.iter().map(|(_, s)| s.count(Call::Log)).sum::<u64>() + limits.pending()[0];
        assert_eq!(summed, dropped);
        assert_eq!(limits.totals()[Call::Log.index()], dropped);
    }

    /// The wake-up flood LIM0001 measured (55 000 a second for 2.5 s):
    /// after the burst, the rest waits for tokens at 20 000 a second.
    #[test]
    fn a_wake_flood_is_held_to_the_rate() {
        let mut limits = ServerLimits::new(CLOCK, 0);
        let mut now = 0;
        let mut woken = 0u64;
        while now < 2_500 * MS {
            match limits.try_take(Call::WakeMover, now) {
                Ok(()) => {
                    woken += 1;
                    now += 18; // the next attempt ~18 us later
                }
                Err(wait) => now += wait, // the call waits for its token
            }
        }
        // The burst, then one per 50 us (the last token may fall just past the end).
        assert!((8192 + 50_000 - 1..=8192 + 50_000).contains(&woken), "{woken}");
    }

    #[test]
    fn calls_have_separate_buckets() {
        let rates = [Rate { burst: 1, per_second: 0 }; CALLS];
        let mut limits = ServerLimits::with_rates(rates, CLOCK, 0);
        assert_eq!(limits.try_take(Call::Log, 0), Ok(()));
        assert!(limits.try_take(Call::Log, 0).is_err());
        assert_eq!(limits.try_take(Call::PowerReport, 0), Ok(()));
        assert_eq!(limits.try_take(Call::WakeMover, 0), Ok(()));
        assert_eq!(limits.rate(Call::Log), rates[0]);
    }
}
