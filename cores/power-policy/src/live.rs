//! A core's power policy replaced while the system runs: the words the
//! kernel writes into a server's info page (at `abi::LIVE_POLICY_OFFSET`)
//! and the server's `Idler` reads at its governor checkpoints, as a
//! sequence lock over plain atomics.
//!
//! ```text
//!  kernel (writer, one at a time)          server (reader, at a checkpoint)
//!  seq = odd (Relaxed)                     s1 = seq (Acquire); odd or 0? no policy
//!  fence(Release)                          words 1.. (Relaxed)
//!  words 1.. (Relaxed)                     fence(Acquire)
//!  seq = next even (Release)               s2 = seq (Relaxed); s1 != s2? torn, try later
//! ```
//!
//! Invariants: a reader never applies a policy mixed from two writes (it
//! returns `None` while a write is under way or if one overlapped its
//! read); the sequence only grows, so `generation = seq / 2` numbers the
//! changes from 1 and 0 means "never changed" (a zeroed page). Writers are
//! serialised by the caller (the kernel holds a lock). Pure code: no
//! `unsafe`; the caller turns the page address into a `&LivePolicy`.

use crate::{Escalation, SleepKind};
use core::sync::atomic::{AtomicU64, Ordering, fence};

/// Words of a [`LivePolicy`].
pub const WORDS: usize = 5;

/// The live-policy words: sequence, spin polls, pause ticks, sleep kind,
/// idle P-state threshold (ticks, 0 = none).
#[repr(C)]
#[derive(Debug, Default)]
pub struct LivePolicy {
    words: [AtomicU64; WORDS],
}

const _: () = assert!(core::mem::size_of::<LivePolicy>() == WORDS * 8);

fn sleep_word(kind: SleepKind) -> u64 {
    match kind {
        SleepKind::Never => 0,
        SleepKind::Hlt => 1,
        SleepKind::Mwait { hint } => 2 | (u64::from(hint) << 8),
    }
}

fn sleep_kind(word: u64) -> Option<SleepKind> {
    match word & 0xFF {
        0 if word == 0 => Some(SleepKind::Never),
        1 if word == 1 => Some(SleepKind::Hlt),
        2 => u32::try_from(word >> 8).ok().map(|hint| SleepKind::Mwait { hint }),
        _ => None,
    }
}

impl LivePolicy {
    /// Words never written (generation 0).
    pub const fn new() -> LivePolicy {
        LivePolicy { words: [const { AtomicU64::new(0) }; WORDS] }
    }

    /// Publishes `policy` as the next generation; returns that generation.
    /// Callers serialise writes to one `LivePolicy`.
    pub fn write(&self, policy: &Escalation) -> u64 {
        let seq = self.words[0].load(Ordering::Relaxed);
        // An odd value left by a writer that never finished cannot happen
        // (writers run to completion), but round up to be safe.
        let start = (seq | 1).wrapping_add(if seq & 1 == 1 { 2 } else { 0 });
        self.words[0].store(start, Ordering::Relaxed);
        // Pairs with the reader's Acquire fence: a reader that sees any
        // word below also sees the odd sequence (and retries).
        fence(Ordering::Release);
        self.words[1].store(policy.spin_polls, Ordering::Relaxed);
        self.words[2].store(policy.pause_ticks, Ordering::Relaxed);
        self.words[3].store(sleep_word(policy.sleep), Ordering::Relaxed);
        self.words[4].store(policy.idle_pstate_after_ticks.unwrap_or(0), Ordering::Relaxed);
        let done = start.wrapping_add(1);
        // Pairs with the reader's Acquire load of the sequence.
        self.words[0].store(done, Ordering::Release);
        done / 2
    }

    /// The sequence word (one Acquire load): the cheap "did it change"
    /// check a reader makes at every checkpoint.
    #[inline]
    pub fn sequence(&self) -> u64 {
        // Pairs with the writer's final Release store.
        self.words[0].load(Ordering::Acquire)
    }

    /// The published policy and its generation, or `None` if none was
    /// published, a write is under way, one overlapped this read, or the
    /// words are not a policy (the page is the kernel's, but be strict).
    pub fn read(&self) -> Option<(u64, Escalation)> {
        let s1 = self.sequence();
        if s1 == 0 || s1 & 1 == 1 {
            return None;
        }
        let spin_polls = self.words[1].load(Ordering::Relaxed);
        let pause_ticks = self.words[2].load(Ordering::Relaxed);
        let sleep = self.words[3].load(Ordering::Relaxed);
        let after = self.words[4].load(Ordering::Relaxed);
        // Pairs with the writer's Release fence after its odd store.
        fence(Ordering::Acquire);
        if self.words[0].load(Ordering::Relaxed) != s1 {
            return None;
        }
        let policy = Escalation {
            spin_polls,
            pause_ticks,
            sleep: sleep_kind(sleep)?,
            idle_pstate_after_ticks: Some(after).filter(|&t| t > 0),
        };
        Some((s1 / 2, policy))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const A: Escalation =
        Escalation { spin_polls: 1, pause_ticks: 2, sleep: SleepKind::Hlt, idle_pstate_after_ticks: None };
    const B: Escalation = Escalation {
        spin_polls: 1000,
        pause_ticks: 2000,
        sleep: SleepKind::Mwait { hint: 0x20 },
        idle_pstate_after_ticks: Some(7),
    };

    #[test]
    fn zeroed_words_hold_no_policy() {
        assert_eq!(LivePolicy::new().read(), None);
    }

    #[test]
    fn generations_count_from_one_and_round_trip() {
        let live = LivePolicy::new();
        assert_eq!(live.write(&A), 1);
        assert_eq!(live.read(), Some((1, A)));
        assert_eq!(live.write(&B), 2);
        assert_eq!(live.read(), Some((2, B)));
        let never = Escalation { sleep: SleepKind::Never, ..A };
        assert_eq!(live.write(&never), 3);
        assert_eq!(live.read(), Some((3, never)));
    }

    #[test]
    fn a_write_under_way_or_garbage_is_not_read() {
        let live = LivePolicy::new();
        live.write(&A);
        live.words[0].store(3, Ordering::Relaxed);
        assert_eq!(live.read(), None, "odd sequence: a write is under way");
        live.words[0].store(4, Ordering::Relaxed);
        live.words[3].store(0x77, Ordering::Relaxed);
        assert_eq!(live.read(), None, "not a sleep kind");
    }

    #[test]
    fn a_reader_racing_a_writer_sees_whole_policies_only() {
        let live = Arc::new(LivePolicy::new());
        let writer = {
            let live = Arc::clone(&live);
            std::thread::spawn(move || {
                for i in 0..20_000u64 {
                    live.write(if i % 2 == 0 { &A } else { &B });
                }
            })
        };
        let mut seen = 0u64;
        let mut last = 0;
        while !writer.is_finished() || seen == 0 {
            if let Some((generation, policy)) = live.read() {
                assert!(policy == A || policy == B, "a torn policy: {policy:?}");
                assert!(generation >= last, "generations never go back");
                last = generation;
                seen += 1;
            }
        }
        writer.join().unwrap();
        assert_eq!(live.read().map(|(g, _)| g), Some(20_000));
    }
}
