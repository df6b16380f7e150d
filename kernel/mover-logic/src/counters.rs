//! Per-outbox counters: what the mover did with one sender's messages,
//! kept where the report and the benchmark read them.
//!
//! Invariants: each outbox has exactly one mover, and only that mover
//! writes its counters, so an update is a plain load and store (no locked
//! instruction on the mover's path); readers on other cores may see a
//! count a little behind, never a torn one.

use crate::BatchOutcome;
use core::sync::atomic::{AtomicU64, Ordering};

/// The counters of one outbox.
#[derive(Debug, Default)]
pub struct OutboxCounters {
    /// Messages taken from the outbox (delivered + bounced).
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub bounced: AtomicU64,
    /// Passes that stopped at a full destination (backpressure retries).
    pub blocked: AtomicU64,
    /// Times the outbox's next slot carried a stamp that is neither empty
    /// nor the expected one (`RingError::PeerStampInvalid`).
    pub outbox_corrupt: AtomicU64,
    /// Bounces that could not be returned (sender's own inbox broken).
    pub undeliverable_bounces: AtomicU64,
    /// Delivered messages that carried a buffer descriptor.
    pub descriptors: AtomicU64,
    /// Messages bounced with `BadDescriptor`.
    pub bad_descriptors: AtomicU64,
}

/// `counter += by`, for the counter's single writer.
#[inline(always)]
pub fn add(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
}

impl OutboxCounters {
    /// Counts one routed batch (called by the outbox's mover only).
    #[inline(always)]
    pub fn record(&self, outcome: &BatchOutcome) {
        add(&self.sent, outcome.consumed as u64);
        add(&self.delivered, outcome.delivered as u64);
        if outcome.bounced > 0 {
            add(&self.bounced, outcome.bounced as u64);
        }
        if outcome.blocked {
            add(&self.blocked, 1);
        }
        if outcome.undeliverable_bounces > 0 {
            add(&self.undeliverable_bounces, outcome.undeliverable_bounces as u64);
        }
        if outcome.descriptors > 0 {
            add(&self.descriptors, outcome.descriptors as u64);
        }
        if outcome.bad_descriptors > 0 {
            add(&self.bad_descriptors, outcome.bad_descriptors as u64);
        }
    }

    /// Counts one visit that found the outbox's index out of range.
    pub fn record_corrupt(&self) {
        add(&self.outbox_corrupt, 1);
    }

    /// A consistent-enough copy for reports: (sent, delivered, bounced,
    /// blocked, outbox_corrupt, undeliverable_bounces).
    pub fn snapshot(&self) -> [u64; 6] {
        [
            self.sent.load(Ordering::Relaxed),
            self.delivered.load(Ordering::Relaxed),
            self.bounced.load(Ordering::Relaxed),
            self.blocked.load(Ordering::Relaxed),
            self.outbox_corrupt.load(Ordering::Relaxed),
            self.undeliverable_bounces.load(Ordering::Relaxed),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_counted_once_in_each_column() {
        let counters = OutboxCounters::default();
        counters.record(&BatchOutcome {
            consumed: 5,
            delivered: 3,
            bounced: 2,
            undeliverable_bounces: 1,
            blocked: true,
            ..BatchOutcome::default()
        });
        counters.record(&BatchOutcome { consumed: 1, delivered: 1, ..BatchOutcome::default() });
        counters.record_corrupt();
        assert_eq!(counters.snapshot(), [6, 4, 2, 1, 1, 1]);
    }
}
