//! Hostile-peer tests: while the trusted side (the kernel's end) keeps
//! working, another thread writes garbage into every word of the shared
//! region — indices, wake word, padding, slots. The trusted side must only
//! ever return messages or errors: no panic, no out-of-bounds access (the
//! region is an exact-size allocation, so Miri would flag one), no data race
//! (Miri checks that too), and its own index never jumps by more than it
//! moved itself.

#![cfg(not(loom))]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{HeapRegion, TestRng, numbered_message};
use ringbuf::layout::{CONSUMER_INDEX_OFFSET, PRODUCER_INDEX_OFFSET, WAKE_STATE_OFFSET};
use ringbuf::{RingError, RingRegion, region_size};

const OPERATIONS: u64 = if cfg!(miri) { 300 } else { 300_000 };
const CAPACITY: usize = 16;

/// What the scribbler is told: where to lie, and the trusted side's current
/// index (which a real attacker can watch in the shared header).
struct Target<'a> {
    words: &'a [AtomicU64],
    /// Count of hostile writes so far, so the trusted side can keep going
    /// until it has really been under fire (threads may share a core).
    writes: &'a AtomicU64,
    peer_index_word: usize,
    trusted_index: &'a AtomicU64,
}

/// Scribbles until `stop` (setting `started` first): half the writes put the
/// peer's index near the trusted side's index (so some lies pass the range
/// check and some do not), the rest hit the wake word or any word at all
/// with any value.
fn scribble(target: Target<'_>, started: &AtomicBool, stop: &AtomicBool, seed: u64) -> u64 {
    let mut rng = TestRng::new(seed);
    let mut writes = 0u64;
    let capacity = CAPACITY as u64;
    started.store(true, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        let (word, value) = match rng.below(4) {
            0 | 1 => {
                let anchor = target.trusted_index.load(Ordering::Relaxed);
                (target.peer_index_word, anchor.wrapping_add(rng.below(4 * capacity)).wrapping_sub(2 * capacity))
            }
            2 => (WAKE_STATE_OFFSET / 8, rng.below(3)),
            _ => (rng.below(target.words.len() as u64) as usize, rng.next_u64()),
        };
        // Relaxed: a hostile peer orders nothing.
        target.words[word].store(value, Ordering::Relaxed);
        writes += 1;
        target.writes.store(writes, Ordering::Relaxed);
        if cfg!(miri) {
            std::thread::yield_now();
        }
    }
    writes
}

/// Waits until the scribbler runs, so the trusted side really works under fire.
fn wait_for(started: &AtomicBool) {
    while !started.load(Ordering::Relaxed) {
        std::thread::yield_now();
    }
}

/// The trusted side's loop condition: at least `OPERATIONS` of its own
/// operations *and* of the scribbler's writes; yields now and then in case
/// both threads share one core.
fn keep_going(operations_done: u64, hostile_writes: &AtomicU64) -> bool {
    if operations_done % 1024 == 1023 {
        std::thread::yield_now();
    }
    operations_done < OPERATIONS || hostile_writes.load(Ordering::Relaxed) < OPERATIONS
}

/// The kernel mover reading a server's outbox: trusted consumer, hostile producer.
#[test]
fn trusted_consumer_survives_hostile_producer() {
    let len = region_size(CAPACITY).unwrap();
    let region = HeapRegion::new(len);
    // SAFETY: `region` is an exact-size, 128-aligned allocation that outlives
    // the handle (dropped at the end of this function, after the scope);
    // everyone else accesses it only through atomics.
    let mut consumer = unsafe { RingRegion::init(region.base, len, CAPACITY, 0) }.unwrap().into_consumer();
    let (started, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let (trusted_index, hostile_writes) = (AtomicU64::new(0), AtomicU64::new(0));
    let (mut messages, mut empties, mut lies, mut malformed) = (0u64, 0u64, 0u64, 0u64);
    std::thread::scope(|scope| {
        let target = Target {
            words: region.words(),
            writes: &hostile_writes,
            peer_index_word: PRODUCER_INDEX_OFFSET / 8,
            trusted_index: &trusted_index,
        };
        let scribbler = scope.spawn(|| scribble(target, &started, &stop, 7));
        wait_for(&started);
        let mut rng = TestRng::new(11);
        let mut operations_done = 0u64;
        while keep_going(operations_done, &hostile_writes) {
            operations_done += 1;
            let before = consumer.next_read_index();
            trusted_index.store(before, Ordering::Relaxed);
            let outcome = if rng.below(2) == 0 {
                consumer.pop_untrusted().map(|message| vec![message])
            } else {
                consumer.read_untrusted(1 + rng.below(2 * CAPACITY as u64) as usize).map(|batch| {
                    let copies: Vec<_> = batch.iter().collect();
                    batch.release();
                    copies
                })
            };
            match outcome {
                Ok(copies) => {
                    assert!(!copies.is_empty() && copies.len() <= CAPACITY);
                    assert_eq!(consumer.next_read_index(), before.wrapping_add(copies.len() as u64));
                    messages += copies.len() as u64;
                    // Validation happens on the private copy; garbage is refused here.
                    malformed += copies.iter().filter(|copy| copy.validate().is_err()).count() as u64;
                    let _ = copies.iter().map(|copy| copy.payload_bytes().len()).sum::<usize>();
                }
                Err(RingError::Empty) => empties += 1,
                Err(error @ RingError::PeerIndexOutOfRange { capacity, .. }) => {
                    assert!(error.is_peer_misbehaviour());
                    assert_eq!(capacity, CAPACITY as u64);
                    assert_eq!(consumer.next_read_index(), before, "moved on a rejected index");
                    lies += 1;
                }
                Err(RingError::Full) => unreachable!("a consumer is never full"),
            }
            if rng.below(8) == 0 {
                let _ = consumer.prepare_to_sleep();
                consumer.finish_sleep();
            }
        }
        stop.store(true, Ordering::Relaxed);
        let writes = scribbler.join().unwrap();
        eprintln!(
            "{operations_done} operations, {writes} hostile writes; {messages} messages ({malformed} malformed), {empties} empty, {lies} lies detected"
        );
    });
    if !cfg!(miri) {
        assert!(lies > 0, "the scribbler never produced an out-of-range index");
        assert!(messages > 0);
    }
}

/// The kernel mover writing a server's inbox: trusted producer, hostile consumer.
#[test]
fn trusted_producer_survives_hostile_consumer() {
    let len = region_size(CAPACITY).unwrap();
    let region = HeapRegion::new(len);
    // SAFETY: as in the test above.
    let mut producer = unsafe { RingRegion::init(region.base, len, CAPACITY, u64::MAX - 100) }.unwrap().into_producer();
    let (started, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    let (trusted_index, hostile_writes) = (AtomicU64::new(0), AtomicU64::new(0));
    let (mut pushed, mut fulls, mut lies, mut doorbells) = (0u64, 0u64, 0u64, 0u64);
    std::thread::scope(|scope| {
        let target = Target {
            words: region.words(),
            writes: &hostile_writes,
            peer_index_word: CONSUMER_INDEX_OFFSET / 8,
            trusted_index: &trusted_index,
        };
        let scribbler = scope.spawn(|| scribble(target, &started, &stop, 13));
        wait_for(&started);
        let mut rng = TestRng::new(17);
        let mut sequence = 0u64;
        while keep_going(sequence, &hostile_writes) {
            sequence += 1;
            let before = producer.next_write_index();
            trusted_index.store(before, Ordering::Relaxed);
            let outcome = if rng.below(2) == 0 {
                producer.push_untrusted(&numbered_message(sequence)).map(|()| 1)
            } else {
                producer.reserve_untrusted(1 + rng.below(2 * CAPACITY as u64) as usize).map(|mut batch| {
                    let mut k = 0;
                    while batch.write_next(&numbered_message(sequence + k)).is_ok() {
                        k += 1;
                    }
                    assert!(k as usize <= CAPACITY);
                    batch.commit()
                })
            };
            match outcome {
                Ok(count) => {
                    assert_eq!(producer.next_write_index(), before.wrapping_add(count as u64));
                    pushed += count as u64;
                }
                Err(RingError::Full) => fulls += 1,
                Err(RingError::PeerIndexOutOfRange { .. }) => {
                    assert_eq!(producer.next_write_index(), before, "moved on a rejected index");
                    lies += 1;
                }
                Err(RingError::Empty) => unreachable!("a producer is never empty"),
            }
            if producer.consumer_needs_wakeup() {
                doorbells += 1;
            }
        }
        stop.store(true, Ordering::Relaxed);
        let writes = scribbler.join().unwrap();
        eprintln!(
            "{sequence} operations, {writes} hostile writes; {pushed} pushed, {fulls} full, {lies} lies detected, {doorbells} doorbells"
        );
    });
    // Whatever the scribbler did, the shared producer index holds only what
    // we published (it may have overwritten it; then our next publish wins).
    if !cfg!(miri) {
        assert!(lies > 0, "the scribbler never produced an out-of-range index");
        assert!(pushed > 0);
    }
}

/// A producer thread that follows the protocol for the indices but now and
/// then scribbles on a slot word (payload, header fields). The trusted
/// consumer still takes every published slot exactly once, in order; intact
/// messages pass validation and equal what was sent, damaged ones are caught
/// by validation or checksum — on the private copy.
#[test]
fn trusted_consumer_with_slot_scribbling_producer() {
    const SENT: u64 = if cfg!(miri) { 200 } else { 200_000 };
    let len = region_size(CAPACITY).unwrap();
    let region = HeapRegion::new(len);
    // SAFETY: as in the tests above; the two handles come from one init.
    let (mut producer, mut consumer) =
        unsafe { RingRegion::init(region.base, len, CAPACITY, u64::from(u32::MAX) - 10) }.unwrap().split();
    let first_slot_word = ringbuf::layout::SLOTS_OFFSET / 8;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut rng = TestRng::new(23);
            let words = region.words();
            let mut sequence = 0u64;
            while sequence < SENT {
                if rng.below(64) == 0 {
                    let word = first_slot_word + rng.below((words.len() - first_slot_word) as u64) as usize;
                    // Relaxed: a hostile peer orders nothing.
                    words[word].store(rng.next_u64(), Ordering::Relaxed);
                } else if producer.push(&numbered_message(sequence)).is_ok() {
                    sequence += 1;
                } else {
                    common::backoff();
                }
            }
        });
        let (mut intact, mut damaged, mut last_intact) = (0u64, 0u64, None::<u32>);
        while intact + damaged < SENT {
            match consumer.pop_untrusted() {
                Ok(message) => {
                    let sequence = u64::from(message.sequence);
                    if message.validate().is_ok() && message == numbered_message(sequence) {
                        if let Some(last) = last_intact {
                            assert!(message.sequence > last, "intact messages out of order");
                        }
                        last_intact = Some(message.sequence);
                        intact += 1;
                    } else {
                        damaged += 1;
                    }
                }
                Err(RingError::Empty) => common::backoff(),
                Err(other) => panic!("indices were never corrupted, got {other:?}"),
            }
        }
        assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty), "more slots than were published");
        eprintln!("{SENT} sent: {intact} intact, {damaged} damaged (all caught on the private copy)");
        if !cfg!(miri) {
            assert!(intact > SENT / 2);
        }
    });
}
