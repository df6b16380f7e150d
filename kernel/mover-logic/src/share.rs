//! Fair shares of one inbox: which sender holds which slot, so that no
//! sender can fill a receiver's inbox and stall the receiver's other peers.
//!
//! Every inbox has a fixed set of possible senders: its *peers* (servers
//! holding a capability to its owner) and two *minor* senders that rarely
//! send (the owner itself, whose bounces come back into its own inbox, and
//! the kernel, for notices). Each sender `s` is guaranteed `guarantee[s]`
//! slots (`guarantees`: each peer `capacity / (2 * peers)`, at least 1;
//! each minor sender 1). A sender under its guarantee may always push (the
//! ring permitting); a sender at or over it may push only into slots no
//! one else's guarantee needs:
//!
//! ```text
//!  capacity = free + held_total
//!  reserve  = sum over senders s of max(0, guarantee[s] - held[s])
//!  push by s allowed  <=>  held[s] < guarantee[s]  or  free > reserve
//!  invariant: free >= reserve (when the guarantees sum to <= capacity)
//! ```
//! So a flooder costs only itself backpressure, a receiver that drains its
//! inbox serves every peer, and a lone active sender still gets most of
//! the ring (at least half of it, less the other senders' guarantees' other
//! half). The slot owners are the mover's private record, never read from
//! the ring: a receiver that scribbles on its inbox cannot make the mover
//! blame (or bounce to) the wrong sender.
//!
//! The mover learns that slots were released only when it looks at the
//! consumer index (`released`), which it does when a push would be
//! refused: the counts here lag the ring, never lead it, so the share
//! logic never lets the mover overwrite an unreleased slot (the ring
//! checks that anyway).

use alloc::vec;
use alloc::vec::Vec;

/// The share accounting of one inbox.
#[derive(Debug, Clone)]
pub struct InboxShare {
    /// Sender of each slot written and not known released (slot = index & mask).
    owner: Vec<u16>,
    /// Slots each sender holds. Index = sender number.
    held: Vec<u16>,
    /// Slots each sender is guaranteed (0: it may not send here at all).
    guarantee: Vec<u16>,
    /// Slots kept free for senders still under their guarantee.
    reserve: u32,
    /// Slots held in all.
    total: u32,
    capacity: u32,
    mask: u64,
    /// Consumer index up to which slots are known released.
    released_to: u64,
    /// Next index the producer writes (mirrors the ring's private index).
    written_to: u64,
}

/// The guarantees of an inbox of `capacity` slots: each sender `s` with
/// `peer[s]` gets `capacity / (2 * peers)` (at least 1), each with
/// `minor[s]` (the owner, the kernel) gets 1, the others 0 (they may not
/// send here).
pub fn guarantees(capacity: usize, peer: &[bool], minor: &[bool]) -> Vec<u16> {
    let peers = peer.iter().filter(|&&p| p).count().max(1);
    let each = (capacity / (2 * peers)).clamp(1, u16::MAX as usize) as u16;
    (0..peer.len().max(minor.len()))
        .map(|s| {
            if peer.get(s) == Some(&true) {
                each
            } else if minor.get(s) == Some(&true) {
                1
            } else {
                0
            }
        })
        .collect()
}

impl InboxShare {
    /// Shares of an inbox of `capacity` slots (a power of two), sender `s`
    /// guaranteed `guarantee[s]` slots (0: may not send), the producer
    /// starting at `index`.
    pub fn new(capacity: usize, guarantee: Vec<u16>, index: u64) -> InboxShare {
        let capacity = capacity.clamp(1, u16::MAX as usize);
        let mut out = InboxShare {
            owner: vec![0; capacity],
            held: vec![0; guarantee.len()],
            guarantee,
            reserve: 0,
            total: 0,
            capacity: capacity as u32,
            mask: capacity as u64 - 1,
            released_to: index,
            written_to: index,
        };
        out.reset_to(index);
        out
    }

    /// Sender `sender`'s guaranteed number of slots.
    pub fn guarantee(&self, sender: usize) -> u16 {
        self.guarantee.get(sender).copied().unwrap_or(0)
    }

    /// Slots `sender` holds (written, not known released).
    pub fn held(&self, sender: usize) -> u16 {
        self.held.get(sender).copied().unwrap_or(0)
    }

    /// Whether `sender` may push one message now (by what is known).
    #[inline(always)]
    pub fn may_push(&self, sender: usize) -> bool {
        match (self.held.get(sender), self.guarantee.get(sender)) {
            (Some(&held), Some(&guarantee)) => {
                held < guarantee || (guarantee != 0 && self.capacity - self.total > self.reserve)
            }
            _ => false,
        }
    }

    /// Records that `sender` wrote the slot at the producer's next index.
    #[inline(always)]
    pub fn pushed(&mut self, sender: usize) {
        let (Some(held), Some(&guarantee)) = (self.held.get_mut(sender), self.guarantee.get(sender)) else { return };
        if *held < guarantee {
            self.reserve = self.reserve.saturating_sub(1);
        }
        *held = held.saturating_add(1);
        self.owner[(self.written_to & self.mask) as usize] = sender as u16;
        self.total += 1;
        self.written_to = self.written_to.wrapping_add(1);
    }

    /// The consumer's index, as read (checked by the ring against
    /// capacity): releases every slot below it. An index outside
    /// `released_to..=written_to` (a consumer that went backwards or lied)
    /// releases nothing. Returns the slots released.
    pub fn released(&mut self, consumer_index: u64) -> u32 {
        let step = consumer_index.wrapping_sub(self.released_to);
        if step == 0 || step > self.written_to.wrapping_sub(self.released_to) {
            return 0;
        }
        for offset in 0..step {
            let slot = (self.released_to.wrapping_add(offset) & self.mask) as usize;
            let sender = self.owner[slot] as usize;
            if let (Some(held), Some(&guarantee)) = (self.held.get_mut(sender), self.guarantee.get(sender)) {
                *held = held.saturating_sub(1);
                if *held < guarantee {
                    self.reserve += 1;
                }
            }
        }
        self.total -= step as u32;
        self.released_to = consumer_index;
        step as u32
    }

    /// Who wrote the slot of `index` (meaningful for indices between the
    /// consumer's and the producer's).
    pub fn owner_of(&self, index: u64) -> usize {
        self.owner[(index & self.mask) as usize] as usize
    }

    /// Index up to which slots are known released.
    pub fn released_to(&self) -> u64 {
        self.released_to
    }

    /// Forgets every held slot: the ring was re-initialised at `index`.
    pub fn reset_to(&mut self, index: u64) {
        self.held.iter_mut().for_each(|h| *h = 0);
        let guaranteed: u32 = self.guarantee.iter().map(|&g| u32::from(g)).sum();
        self.reserve = guaranteed.min(self.capacity);
        self.total = 0;
        self.released_to = index;
        self.written_to = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    #[test]
    fn guarantees_split_half_the_inbox_among_peers_and_one_slot_each_for_the_rest() {
        // Senders 0 and 1 are peers, 2 (the owner) and 3 (the kernel) minor, 4 nothing.
        let g = guarantees(64, &[true, true, false, false, false], &[false, false, true, true, false]);
        assert_eq!(g, [16, 16, 1, 1, 0]);
        assert_eq!(guarantees(2, &[true; 5], &[false; 5]), [1; 5], "at least one each");
    }

    #[test]
    fn a_flooder_keeps_only_what_nobody_else_is_guaranteed() {
        // 16 slots: peers 0 (flooder) and 1 (honest) get 4 each; 2 and 3 minor get 1 each.
        let mut share = InboxShare::new(16, guarantees(16, &[true, true], &[false, false, true, true]), 0);
        let mut flood = 0;
        while share.may_push(0) {
            share.pushed(0);
            flood += 1;
        }
        assert_eq!(flood, 16 - 4 - 1 - 1);
        for _ in 0..4 {
            assert!(share.may_push(1), "the honest sender always gets its guarantee");
            share.pushed(1);
        }
        assert!(!share.may_push(1));
        assert!(share.may_push(2) && share.may_push(3));
    }

    #[test]
    fn a_lone_sender_gets_all_but_the_minor_slots() {
        let share_of = |capacity| {
            let mut share = InboxShare::new(capacity, guarantees(capacity, &[true], &[false, true, true]), 0);
            let mut n = 0;
            while share.may_push(0) {
                share.pushed(0);
                n += 1;
            }
            n
        };
        assert_eq!(share_of(64), 62);
        assert_eq!(share_of(8), 6);
    }

    #[test]
    fn released_slots_go_back_to_their_writers() {
        let mut share = InboxShare::new(8, vec![4, 4], 100);
        for s in [0, 0, 1, 0] {
            share.pushed(s);
        }
        assert_eq!((share.held(0), share.held(1)), (3, 1));
        assert_eq!(share.released(102), 2);
        assert_eq!((share.held(0), share.held(1)), (1, 1));
        assert_eq!(share.owner_of(102), 1);
        assert_eq!(share.owner_of(103), 0);
    }

    #[test]
    fn a_lying_consumer_index_releases_nothing() {
        let mut share = InboxShare::new(8, vec![4, 4], 0);
        share.pushed(0);
        share.pushed(0);
        assert_eq!(share.released(5), 0, "beyond what was written");
        assert_eq!(share.released(u64::MAX), 0, "backwards");
        assert_eq!(share.held(0), 2);
        assert_eq!(share.released(2), 2);
        assert_eq!(share.released(1), 0, "backwards after a release");
    }

    #[test]
    fn ineligible_or_unknown_senders_may_not_push() {
        let share = InboxShare::new(8, vec![4, 0], 0);
        assert!(!share.may_push(1));
        assert!(!share.may_push(7));
        assert!(share.may_push(0));
    }

    proptest! {
        /// A model: random pushes (when allowed and the ring has room) and
        /// random consumer progress. The owner record always matches what
        /// was written, the counts match the model, and a sender under its
        /// guarantee is never refused.
        #[test]
        fn model_agrees_and_guarantees_hold(
            capacity_log in 1u32..6,
            peers in 1usize..5,
            minors in 0usize..3,
            ops in proptest::collection::vec((0usize..8, 0u8..4), 1..400),
            start in any::<u64>(),
        ) {
            let capacity = 1usize << capacity_log;
            let senders = peers + minors;
            let peer: Vec<bool> = (0..senders).map(|s| s < peers).collect();
            let minor: Vec<bool> = (0..senders).map(|s| s >= peers).collect();
            let g = guarantees(capacity, &peer, &minor);
            let guaranteed = g.iter().map(|&x| x as usize).sum::<usize>() <= capacity;
            let mut share = InboxShare::new(capacity, g.clone(), start);
            let mut ring: VecDeque<usize> = VecDeque::new();
            let mut consumer = start;
            for (who, action) in ops {
                let sender = who % senders;
                if action == 0 {
                    let take = (who % 3).min(ring.len());
                    for _ in 0..take { ring.pop_front(); }
                    consumer = consumer.wrapping_add(take as u64);
                    share.released(consumer);
                } else {
                    let allowed = share.may_push(sender);
                    if guaranteed && share.held(sender) < g[sender] {
                        prop_assert!(allowed, "sender under its guarantee refused");
                        prop_assert!(ring.len() < capacity, "a guaranteed slot is free in the ring");
                    }
                    if allowed && ring.len() < capacity {
                        share.pushed(sender);
                        ring.push_back(sender);
                    }
                }
                for (i, &owner) in ring.iter().enumerate() {
                    prop_assert_eq!(share.owner_of(consumer.wrapping_add(i as u64)), owner);
                }
                for s in 0..senders {
                    prop_assert_eq!(share.held(s) as usize, ring.iter().filter(|&&o| o == s).count());
                }
            }
        }
    }
}
