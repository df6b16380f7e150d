//! Fair shares of one inbox: which sender holds which slot, so that no
//! sender can fill a receiver's inbox and stall the receiver's other peers.
//!
//! Every inbox has a fixed set of possible senders: the servers holding a
//! capability to its owner, the owner itself (its bounces come back into
//! its own inbox) and the kernel (notices). Each is guaranteed `share =
//! capacity / senders` slots (at least 1). A sender under its share may
//! always push (the ring permitting); a sender at or over its share may
//! push only into slots nobody else's guarantee needs:
//!
//! ```text
//!  capacity = free + held_total
//!  reserve  = sum over senders s of max(0, share - held[s])
//!  push by s allowed  <=>  held[s] < share  or  free > reserve
//!  invariant: free >= reserve (when share * senders <= capacity)
//! ```
//! so a flooder costs only itself backpressure, and a receiver that drains
//! its inbox serves every peer. The slot owners are the mover's private
//! record, never read from the ring: a receiver that scribbles on its
//! inbox cannot make the mover blame (or bounce to) the wrong sender.
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
    /// Which sender numbers may send here at all (counted in the reserve).
    eligible: Vec<bool>,
    share: u16,
    /// Slots kept free for eligible senders still under their share.
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

impl InboxShare {
    /// Shares of an inbox of `capacity` slots (a power of two) among the
    /// senders `s` with `eligible[s]`, the producer starting at `index`.
    pub fn new(capacity: usize, eligible: Vec<bool>, index: u64) -> InboxShare {
        let senders = eligible.iter().filter(|&&e| e).count().max(1);
        let capacity = capacity.clamp(1, u16::MAX as usize);
        let share = (capacity / senders).clamp(1, u16::MAX as usize) as u16;
        let mut out = InboxShare {
            owner: vec![0; capacity],
            held: vec![0; eligible.len()],
            eligible,
            share,
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

    /// Every sender's guaranteed number of slots.
    pub fn share(&self) -> u16 {
        self.share
    }

    /// Slots `sender` holds (written, not known released).
    pub fn held(&self, sender: usize) -> u16 {
        self.held.get(sender).copied().unwrap_or(0)
    }

    /// Whether `sender` may push one message now (by what is known).
    #[inline(always)]
    pub fn may_push(&self, sender: usize) -> bool {
        let Some(&held) = self.held.get(sender) else { return false };
        if !self.eligible[sender] {
            return false;
        }
        held < self.share || self.capacity - self.total > self.reserve
    }

    /// Records that `sender` wrote the slot at the producer's next index.
    #[inline(always)]
    pub fn pushed(&mut self, sender: usize) {
        let Some(held) = self.held.get_mut(sender) else { return };
        if *held < self.share {
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
            if let Some(held) = self.held.get_mut(sender) {
                *held = held.saturating_sub(1);
                if *held < self.share && self.eligible[sender] {
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
        let senders = self.eligible.iter().filter(|&&e| e).count() as u32;
        self.reserve = (u32::from(self.share) * senders).min(self.capacity);
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
    fn a_flooder_keeps_only_its_own_share_and_the_slack() {
        // 16 slots among senders 0 (flooder), 1 (honest), 2 (owner and kernel):
        // 5 guaranteed each, 1 slot of slack nobody is guaranteed.
        let mut share = InboxShare::new(16, vec![true; 3], 0);
        assert_eq!(share.share(), 5);
        let mut flood = 0;
        while share.may_push(0) {
            share.pushed(0);
            flood += 1;
        }
        assert_eq!(flood, 6);
        for _ in 0..5 {
            assert!(share.may_push(1), "the honest sender always gets its share");
            share.pushed(1);
        }
        assert!(!share.may_push(1));
        assert!(share.may_push(2));
    }

    #[test]
    fn released_slots_go_back_to_their_writers() {
        let mut share = InboxShare::new(8, vec![true, true], 100);
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
        let mut share = InboxShare::new(8, vec![true, true], 0);
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
        let share = InboxShare::new(8, vec![true, false], 0);
        assert!(!share.may_push(1));
        assert!(!share.may_push(7));
        assert_eq!(share.share(), 8, "one eligible sender gets the whole inbox");
    }

    #[test]
    fn more_senders_than_slots_still_lets_each_push_one() {
        let mut share = InboxShare::new(2, vec![true; 5], 0);
        assert_eq!(share.share(), 1);
        share.pushed(0);
        assert!(share.may_push(1));
        share.pushed(1);
        // The ring is full now; the ring itself refuses the next push.
    }

    proptest! {
        /// A model: random pushes (when allowed and the ring has room) and
        /// random consumer progress. The owner record always matches what
        /// was written, the counts match the model, and a sender under its
        /// share is never refused while the ring has a free slot.
        #[test]
        fn model_agrees_and_shares_are_guaranteed(
            capacity_log in 1u32..6,
            senders in 1usize..6,
            ops in proptest::collection::vec((0usize..8, 0u8..4), 1..400),
            start in any::<u64>(),
        ) {
            let capacity = 1usize << capacity_log;
            let mut share = InboxShare::new(capacity, vec![true; senders], start);
            let mut ring: VecDeque<usize> = VecDeque::new();
            let mut consumer = start;
            let mut producer = start;
            for (who, action) in ops {
                let sender = who % senders;
                if action == 0 {
                    // The consumer takes some, the mover looks at its index.
                    let take = (who % 3).min(ring.len());
                    for _ in 0..take { ring.pop_front(); }
                    consumer = consumer.wrapping_add(take as u64);
                    share.released(consumer);
                } else {
                    let ring_has_room = ring.len() < capacity;
                    let allowed = share.may_push(sender);
                    let under_share = (share.held(sender) as usize) < share.share() as usize;
                    let guaranteed = share.share() as usize * senders <= capacity;
                    if guaranteed && under_share {
                        prop_assert!(allowed, "sender under its share refused");
                    }
                    if allowed && ring_has_room {
                        share.pushed(sender);
                        ring.push_back(sender);
                        producer = producer.wrapping_add(1);
                    }
                }
                for (i, &owner) in ring.iter().enumerate() {
                    prop_assert_eq!(share.owner_of(consumer.wrapping_add(i as u64)), owner);
                }
                for s in 0..senders {
                    prop_assert_eq!(share.held(s) as usize, ring.iter().filter(|&&o| o == s).count());
                }
                prop_assert_eq!(producer.wrapping_sub(consumer) as usize, ring.len());
            }
        }
    }
}
