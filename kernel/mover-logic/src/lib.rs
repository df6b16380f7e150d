//! The mover's decisions, apart from its memory: for a batch of messages
//! copied out of one sender's outbox, which are delivered where, which
//! bounce back and why, and where backpressure stops the batch.
//!
//! Invariants (checked by the property tests below):
//! - messages are handled strictly in outbox order; the first one that
//!   cannot be placed (destination full, or the bounce's return inbox full)
//!   stops the batch, and it and every later one stay in the outbox;
//! - every message before that point is delivered exactly once (to the
//!   destination its sender's capability names, stamped with the sender's
//!   badge) or bounced exactly once (to the sender, with a reason);
//! - a message whose destination ring is broken (hostile receiver) bounces
//!   instead of blocking the sender forever;
//! - a message with a buffer descriptor is delivered only with its
//!   descriptor checked against both sides' region tables and rewritten
//!   into the receiver's view (`region`), else it bounces with
//!   `BadDescriptor`; a message without one pays one predictable branch.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

use ringbuf::Message;

pub use abi::{BounceReason, KERNEL_BADGE};

pub mod counters;
pub mod region;
pub mod scan;
pub mod share;
pub use counters::OutboxCounters;
pub use region::{
    DescriptorError, RegionGrant, RegionRoute, SenderRegions, check_descriptor, descriptor_back, region_routes,
    rewrite_descriptor, rewrite_routed,
};
pub use share::{InboxShare, guarantees};

use abi::region::FLAG_DESCRIPTOR;
use ringbuf::PAYLOAD_CAPACITY;

/// What pushing into an inbox did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    Done,
    /// No room: try again later (backpressure). Also the sender's answer
    /// when it has used its share of the inbox (`share`).
    Full,
    /// The inbox's shared indices are corrupt; it cannot be used.
    Broken,
    /// The inbox's owner is not running (stopped, or between incarnations):
    /// a message to it bounces; a bounce to it is undeliverable (counted).
    NotRunning,
}

/// Where a message goes, before any ring is touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Deliver { destination: usize },
    Bounce(BounceReason),
}

/// Decides a message's route from the sender's capability table
/// (`capabilities[endpoint]` = destination server index, `None` if that
/// server is not running).
/// A message's flags may be 0 or `FLAG_DESCRIPTOR` (checked later, against
/// the region tables, by [`route_batch_with_regions`]).
pub fn route(message: &Message, capabilities: &[Option<usize>]) -> Route {
    if message.payload_len as usize > PAYLOAD_CAPACITY || (message.flags != 0 && message.flags != FLAG_DESCRIPTOR) {
        return Route::Bounce(BounceReason::Malformed);
    }
    match capabilities.get(message.destination_endpoint as usize) {
        Some(&Some(destination)) => Route::Deliver { destination },
        Some(None) => Route::Bounce(BounceReason::DestinationNotRunning),
        None => Route::Bounce(BounceReason::NoCapability),
    }
}

/// The message as delivered: the badge is the mover's word, not the sender's.
pub fn stamped(message: &Message, sender_badge: u64) -> Message {
    let mut out = *message;
    out.sender_badge = sender_badge;
    out
}

/// The message as bounced: from the kernel, the reason in `label`, the
/// rest (endpoint, sequence, payload) as the sender wrote it so it can
/// tell which message came back (a descriptor too, in the sender's view).
/// Flags and length are cleared if they were the problem.
pub fn bounced(message: &Message, reason: BounceReason) -> Message {
    let mut out = *message;
    out.sender_badge = KERNEL_BADGE;
    out.label = reason.label();
    if out.validate().is_err() && !region::is_descriptor_shape(&out) {
        out.flags = 0;
        out.payload_len = 0;
    }
    out
}

/// What one batch did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Messages handled (delivered or bounced); release this many.
    pub consumed: usize,
    pub delivered: usize,
    pub bounced: usize,
    /// A bounce that could not go back because the sender's own inbox is
    /// broken or the sender has stopped: counted and reported, never silent.
    pub undeliverable_bounces: usize,
    /// The batch stopped at a full ring (the rest waits in the outbox).
    pub blocked: bool,
    /// Of `delivered`, messages with a buffer descriptor.
    pub descriptors: usize,
    /// Of `bounced`, bad descriptors (`BadDescriptor`).
    pub bad_descriptors: usize,
}

/// Routes `messages` (private copies, outbox order) from sender `sender`.
/// `push(inbox_owner, message)` places a message in that server's inbox.
/// No server holds a region here: a descriptor bounces.
pub fn route_batch(
    messages: &[Message],
    sender: usize,
    sender_badge: u64,
    capabilities: &[Option<usize>],
    push: impl FnMut(usize, &Message) -> Push,
) -> BatchOutcome {
    route_batch_with_regions(messages, sender, sender_badge, capabilities, SenderRegions::NONE, push)
}

/// [`route_batch`] with the sender's regions: the descriptors messages
/// carry are checked against them and rewritten into the receiver's view.
#[inline(always)]
pub fn route_batch_with_regions(
    messages: &[Message],
    sender: usize,
    sender_badge: u64,
    capabilities: &[Option<usize>],
    regions: SenderRegions<'_>,
    mut push: impl FnMut(usize, &Message) -> Push,
) -> BatchOutcome {
    let mut outcome = BatchOutcome::default();
    for message in messages {
        let reason = match route(message, capabilities) {
            Route::Deliver { destination } => {
                let mut out = stamped(message, sender_badge);
                // The one branch a message without a descriptor pays.
                if out.flags != 0 && rewrite_routed(&mut out, regions, destination).is_err() {
                    outcome.bad_descriptors += 1;
                    BounceReason::BadDescriptor
                } else {
                    match push(destination, &out) {
                        Push::Done => {
                            outcome.delivered += 1;
                            outcome.descriptors += usize::from(out.flags != 0);
                            outcome.consumed += 1;
                            continue;
                        }
                        Push::Full => {
                            outcome.blocked = true;
                            break;
                        }
                        Push::Broken => BounceReason::DestinationBroken,
                        Push::NotRunning => BounceReason::DestinationNotRunning,
                    }
                }
            }
            Route::Bounce(reason) => reason,
        };
        match push(sender, &bounced(message, reason)) {
            Push::Done => outcome.bounced += 1,
            Push::Full => {
                outcome.bad_descriptors -= usize::from(reason == BounceReason::BadDescriptor);
                outcome.blocked = true;
                break;
            }
            Push::Broken | Push::NotRunning => outcome.undeliverable_bounces += 1,
        }
        outcome.consumed += 1;
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::VecDeque;

    fn msg(endpoint: u32, sequence: u32) -> Message {
        let mut m = Message::new(endpoint, 7, &sequence.to_le_bytes()).unwrap();
        m.sequence = sequence;
        m.sender_badge = 0xdead; // whatever the sender claims
        m
    }

    #[test]
    fn delivers_with_the_movers_badge() {
        let mut got = Vec::new();
        let out = route_batch(&[msg(0, 1), msg(1, 2)], 0, 5, &[Some(3), Some(4)], |to, m| {
            got.push((to, m.sender_badge, m.sequence));
            Push::Done
        });
        assert_eq!(out, BatchOutcome { consumed: 2, delivered: 2, ..Default::default() });
        assert_eq!(got, [(3, 5, 1), (4, 5, 2)]);
    }

    #[test]
    fn no_capability_bounces_to_the_sender() {
        let mut got = Vec::new();
        let out = route_batch(&[msg(9, 1)], 2, 5, &[Some(3)], |to, m| {
            got.push((to, *m));
            Push::Done
        });
        assert_eq!(out.bounced, 1);
        assert_eq!(got[0].0, 2);
        assert_eq!(got[0].1.sender_badge, KERNEL_BADGE);
        assert_eq!(BounceReason::from_label(got[0].1.label), Some(BounceReason::NoCapability));
        assert_eq!(got[0].1.sequence, 1);
    }

    #[test]
    fn malformed_bounces_and_is_made_valid() {
        let mut bad = msg(0, 1);
        bad.payload_len = 999;
        let mut got = Vec::new();
        route_batch(&[bad], 0, 5, &[Some(1)], |to, m| {
            got.push((to, *m));
            Push::Done
        });
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0);
        assert_eq!(BounceReason::from_label(got[0].1.label), Some(BounceReason::Malformed));
        assert!(got[0].1.validate().is_ok());
    }

    #[test]
    fn full_destination_stops_the_batch() {
        let out = route_batch(&[msg(0, 1), msg(0, 2)], 0, 5, &[Some(1)], |_, m| {
            if m.sequence == 1 { Push::Done } else { Push::Full }
        });
        assert_eq!(out, BatchOutcome { consumed: 1, delivered: 1, blocked: true, ..Default::default() });
    }

    #[test]
    fn broken_destination_bounces_instead_of_blocking() {
        let mut got = Vec::new();
        let out = route_batch(&[msg(0, 1)], 0, 5, &[Some(1)], |to, m| {
            if to == 1 {
                Push::Broken
            } else {
                got.push(*m);
                Push::Done
            }
        });
        assert_eq!(out.bounced, 1);
        assert_eq!(BounceReason::from_label(got[0].label), Some(BounceReason::DestinationBroken));
    }

    #[test]
    fn endpoint_to_a_stopped_server_bounces() {
        let mut got = Vec::new();
        route_batch(&[msg(0, 1)], 0, 5, &[None], |to, m| {
            got.push((to, m.label));
            Push::Done
        });
        assert_eq!(got, [(0, BounceReason::DestinationNotRunning as u32)]);
    }

    #[test]
    fn a_stopped_destination_bounces_and_a_stopped_sender_counts_it_undeliverable() {
        let mut got = Vec::new();
        let out = route_batch(&[msg(0, 1)], 0, 5, &[Some(1)], |to, m| {
            if to == 1 {
                Push::NotRunning
            } else {
                got.push(*m);
                Push::Done
            }
        });
        assert_eq!(out, BatchOutcome { consumed: 1, bounced: 1, ..Default::default() });
        assert_eq!(BounceReason::from_label(got[0].label), Some(BounceReason::DestinationNotRunning));
        let out = route_batch(&[msg(0, 1)], 0, 5, &[Some(1)], |_, _| Push::NotRunning);
        assert_eq!(out, BatchOutcome { consumed: 1, undeliverable_bounces: 1, ..Default::default() });
    }

    #[test]
    fn bounce_to_a_broken_sender_inbox_is_counted() {
        let out = route_batch(&[msg(9, 1)], 0, 5, &[], |_, _| Push::Broken);
        assert_eq!(out, BatchOutcome { consumed: 1, undeliverable_bounces: 1, ..Default::default() });
    }

    /// A model system: senders with outboxes, inboxes with random capacity,
    /// repeated batches until everything is placed. Every message must end
    /// up delivered to the right place or bounced to its sender, exactly
    /// once, in order per (sender, destination).
    fn run_model(
        outboxes: Vec<Vec<u32>>,
        caps: Vec<Vec<Option<usize>>>,
        capacity: usize,
        batch: usize,
        drain_every: usize,
    ) {
        let servers = outboxes.len();
        let mut outbox: Vec<VecDeque<Message>> = outboxes
            .iter()
            .enumerate()
            .map(|(s, eps)| eps.iter().enumerate().map(|(i, &e)| msg(e, (s * 10_000 + i) as u32)).collect())
            .collect();
        let mut inbox: Vec<VecDeque<Message>> = vec![VecDeque::new(); servers];
        let mut received: Vec<Vec<Message>> = vec![Vec::new(); servers];
        let total: usize = outbox.iter().map(VecDeque::len).sum();
        let mut round = 0;
        while outbox.iter().any(|o| !o.is_empty()) {
            round += 1;
            assert!(round < 100_000, "no progress");
            for sender in 0..servers {
                let copies: Vec<Message> = outbox[sender].iter().take(batch).copied().collect();
                let out = route_batch(&copies, sender, sender as u64 + 1, &caps[sender], |to, m| {
                    if inbox[to].len() >= capacity {
                        Push::Full
                    } else {
                        inbox[to].push_back(*m);
                        Push::Done
                    }
                });
                assert_eq!(out.consumed, out.delivered + out.bounced);
                outbox[sender].drain(..out.consumed);
            }
            if round % drain_every == 0 {
                for (s, q) in inbox.iter_mut().enumerate() {
                    received[s].extend(q.drain(..));
                }
            }
        }
        for (s, q) in inbox.iter_mut().enumerate() {
            received[s].extend(q.drain(..));
        }
        let got: usize = received.iter().map(Vec::len).sum();
        assert_eq!(got, total, "every message delivered or bounced exactly once");
        for (receiver, msgs) in received.iter().enumerate() {
            let mut last_seq_from: Vec<Option<u32>> = vec![None; servers + 1];
            for m in msgs {
                if m.sender_badge == KERNEL_BADGE {
                    let sender = (m.sequence / 10_000) as usize;
                    assert_eq!(sender, receiver, "bounces go back to their sender");
                    assert!(caps[sender].get(m.destination_endpoint as usize).is_none());
                } else {
                    let sender = (m.sender_badge - 1) as usize;
                    assert_eq!(caps[sender][m.destination_endpoint as usize], Some(receiver));
                    let slot = &mut last_seq_from[sender];
                    assert!(slot.is_none_or(|prev| prev < m.sequence), "order per sender kept");
                    *slot = Some(m.sequence);
                }
            }
        }
    }

    proptest! {
        #[test]
        fn exactly_once_under_backpressure(
            servers in 2usize..5,
            seed in proptest::collection::vec(0u32..6, 0..200),
            capacity in 1usize..5,
            batch in 1usize..9,
            drain_every in 1usize..4,
        ) {
            let caps: Vec<Vec<Option<usize>>> =
                (0..servers).map(|s| vec![Some((s + 1) % servers), Some((s + 2) % servers)]).collect();
            let mut outboxes = vec![Vec::new(); servers];
            for (i, e) in seed.iter().enumerate() {
                outboxes[i % servers].push(*e % 4); // endpoints 2 and 3 are not held
            }
            run_model(outboxes, caps, capacity, batch, drain_every);
        }
    }
}
