//! Which rings a mover pass visits: every ring that had work lately, and a
//! few of the others in turn, so that a pass costs what the busy rings
//! cost, not what all rings cost (issue 17: the round trip at 64 rings was
//! ~1.9x the one at 3, every pass loading every ring's index).
//!
//! ```text
//! pass k:  hot rings (each visited)  +  COLD_PER_PASS of the rest, from a cursor that goes round
//!          a hot ring empty on COLD_AFTER visits in a row turns cold;
//!          a cold ring found with work turns hot (and is handled in that visit)
//! ```
//!
//! Up to [`ALL_UP_TO`] rings, a pass simply visits them all.
//!
//! Invariants (tested below):
//! - every ring is visited at least once in any `cold_round(len)`
//!   consecutive passes, so a message on a cold ring waits at most that
//!   many passes (a pass over few rings is short);
//! - a hot ring is visited on every pass until it turns cold;
//! - no ring is visited twice in one pass.
//!
//! Nothing here is shared with servers: the schedule is the mover's own
//! memory, so no server can make the mover skip another's ring for longer
//! than the bound. Before the mover sleeps it checks every ring anyway
//! (`prepare_to_sleep` on each), so skipping never costs a wake-up.

use alloc::vec::Vec;

/// Cold rings visited per pass.
pub const COLD_PER_PASS: usize = 2;
/// Up to this many rings a pass visits them all (the hot list would cost
/// more than it saves).
pub const ALL_UP_TO: usize = 8;
/// Empty visits in a row after which a hot ring turns cold. A ring with
/// traffic at least this often in passes stays hot; at a few hundred
/// nanoseconds a pass that is a millisecond or more.
pub const COLD_AFTER: u32 = 4096;

/// `Schedule::state` of a hot ring that turns cold at the end of this pass.
const COOLING: u32 = u32::MAX;

/// The passes within which every ring of `len` is visited at least once.
pub fn cold_round(len: usize) -> usize {
    if len <= ALL_UP_TO { 1 } else { len.div_ceil(COLD_PER_PASS) }
}

/// A mover's visiting order over `len` rings (indices `0..len`).
#[derive(Debug, Clone)]
pub struct Schedule {
    hot: Vec<u32>,
    /// Per ring: 0 cold, else 1 + its empty visits in a row while hot
    /// (at most `cold_after + 1`), or [`COOLING`].
    state: Vec<u32>,
    cursor: usize,
    len: usize,
    cold_after: u32,
}

impl Schedule {
    /// `len` rings, all cold (each is found within `cold_round(len)` passes).
    pub fn new(len: usize) -> Schedule {
        Schedule::with_cold_after(len, COLD_AFTER)
    }

    /// As [`Schedule::new`], hot rings turning cold after `cold_after`
    /// empty visits in a row (the tests use small values).
    pub fn with_cold_after(len: usize, cold_after: u32) -> Schedule {
        Schedule { hot: Vec::with_capacity(len), state: alloc::vec![0; len], cursor: 0, len, cold_after }
    }

    /// The number of rings changed (the benchmark's extra rings): rings
    /// at `len` and above are forgotten.
    pub fn set_len(&mut self, len: usize) {
        if len == self.len {
            return;
        }
        self.hot.retain(|&i| (i as usize) < len);
        self.state.resize(len, 0);
        self.len = len;
        if self.cursor >= len {
            self.cursor = 0;
        }
    }

    /// Whether ring `i` is on the hot list (always false while there are
    /// no more rings than [`ALL_UP_TO`]: then all are visited on every pass).
    pub fn is_hot(&self, i: usize) -> bool {
        self.state.get(i).is_some_and(|&s| s != 0)
    }

    /// One pass: `visit(i)` for every hot ring, then for up to
    /// [`COLD_PER_PASS`] cold ones from the cursor; `visit` says whether
    /// the ring had work (messages, or a head held back by a full inbox).
    #[inline(always)]
    pub fn pass(&mut self, mut visit: impl FnMut(usize) -> bool) {
        // The hot rings as they were when the pass began, then the slice
        // of the cold ones. Up to `ALL_UP_TO` rings (most systems) every
        // ring is visited on every pass, in order, and nothing is kept:
        // the list would cost more than it saves.
        let small = self.len <= ALL_UP_TO;
        let hot = if small { 0 } else { self.hot.len() };
        let steps = if small { self.len } else { hot + COLD_PER_PASS.min(self.len) };
        let mut cooled = false;
        for step in 0..steps {
            let from_hot = step < hot;
            let i = if from_hot {
                self.hot[step] as usize
            } else {
                let i = self.cursor;
                self.cursor = if i + 1 >= self.len { 0 } else { i + 1 };
                if !small && self.state[i] != 0 {
                    continue; // hot: visited above
                }
                i
            };
            let busy = visit(i);
            if small {
                continue;
            }
            let state = &mut self.state[i];
            if busy {
                if *state == 0 {
                    self.hot.push(i as u32);
                }
                *state = 1;
            } else if from_hot {
                if *state <= self.cold_after {
                    *state += 1;
                } else {
                    // Marked, still hot until the pass is over, so that it
                    // is not visited twice in this pass.
                    *state = COOLING;
                    cooled = true;
                }
            }
        }
        if cooled {
            self.cool();
        }
    }

    /// Turns the hot rings marked [`COOLING`] in this pass cold.
    #[cold]
    fn cool(&mut self) {
        let state = &mut self.state;
        self.hot.retain(|&i| {
            let keep = state[i as usize] != COOLING;
            if !keep {
                state[i as usize] = 0;
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Runs passes, returning the rings visited in each.
    fn visits(s: &mut Schedule, passes: usize, busy: impl Fn(usize, usize) -> bool) -> Vec<Vec<usize>> {
        (0..passes)
            .map(|p| {
                let mut seen = Vec::new();
                s.pass(|i| {
                    seen.push(i);
                    busy(p, i)
                });
                seen
            })
            .collect()
    }

    #[test]
    fn idle_rings_cost_a_slice_per_pass() {
        let mut s = Schedule::new(64);
        let seen = visits(&mut s, cold_round(64), |_, _| false);
        assert!(seen.iter().all(|v| v.len() == COLD_PER_PASS));
        let mut all: Vec<usize> = seen[..cold_round(64)].concat();
        all.sort();
        assert_eq!(all, (0..64).collect::<Vec<_>>(), "each ring once per round");
    }

    #[test]
    fn a_busy_ring_turns_hot_and_cold_again() {
        let mut s = Schedule::new(64);
        // Ring 40 has work from pass 0 to pass 99.
        let seen = visits(&mut s, 100, |p, i| i == 40 && p < 100);
        let found = seen.iter().position(|v| v.contains(&40)).unwrap();
        assert!(found < cold_round(64));
        assert!(seen[found..].iter().all(|v| v.iter().filter(|&&i| i == 40).count() == 1), "once per pass");
        assert!(s.is_hot(40));
        visits(&mut s, COLD_AFTER as usize + 1, |_, _| false);
        assert!(!s.is_hot(40));
        assert!(visits(&mut s, 1, |_, _| false)[0].len() == COLD_PER_PASS);
        assert!(visits(&mut s, 1, |_, _| false)[0].len() == COLD_PER_PASS);
    }

    #[test]
    fn shrinking_forgets_rings_past_the_end() {
        let mut s = Schedule::new(64);
        visits(&mut s, cold_round(64), |_, i| i == 63 || i == 2);
        assert!(s.is_hot(63) && s.is_hot(2));
        s.set_len(3);
        let seen = visits(&mut s, 2, |_, _| true);
        assert_eq!(seen, [[0, 1, 2], [0, 1, 2]], "a few rings: all of them, in order, every pass");
        s.set_len(0);
        assert!(visits(&mut s, 2, |_, _| true).iter().all(Vec::is_empty));
    }

    proptest! {
        /// Work that appears on any ring at any pass is visited within
        /// `cold_round` passes, and no pass visits a ring twice.
        #[test]
        fn work_is_found_within_the_bound(
            len in 1usize..80,
            arrivals in proptest::collection::vec((0usize..80, 0usize..300), 1..40),
            keep in 0usize..5,
            cold_after in 0u32..20,
        ) {
            let mut s = Schedule::with_cold_after(len, cold_after);
            // Pending work per ring: the pass it arrived, and visits left that find work.
            let mut pending: Vec<Option<(usize, usize)>> = alloc::vec![None; len];
            for pass in 0..400 {
                for &(ring, at) in &arrivals {
                    if at == pass && ring < len && pending[ring].is_none() {
                        pending[ring] = Some((pass, keep + 1));
                    }
                }
                let mut seen = alloc::vec![false; len];
                s.pass(|i| {
                    assert!(!seen[i], "ring {i} visited twice in pass {pass}");
                    seen[i] = true;
                    match pending[i] {
                        Some((_, left)) => {
                            pending[i] = if left > 1 { Some((usize::MAX, left - 1)) } else { None };
                            true
                        }
                        None => false,
                    }
                });
                for (ring, p) in pending.iter().enumerate() {
                    match *p {
                        // Found earlier and still busy: hot, so visited on every pass.
                        Some((usize::MAX, _)) => prop_assert!(seen[ring], "busy hot ring {} skipped in pass {}", ring, pass),
                        Some((since, _)) => prop_assert!(pass < since + cold_round(len), "ring {} waits since pass {}", ring, since),
                        None => {}
                    }
                }
            }
        }
    }
}
