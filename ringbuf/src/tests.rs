//! Unit tests: single-threaded behaviour of every operation, run natively and under Miri.

extern crate std;

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;
use std::vec::Vec;

use crate::layout::{SLOTS_OFFSET, STAMP_MASK, STAMP_SHIFT, STAMP_WORD, WAKE_STATE_AWAKE, WAKE_STATE_SLEEPING};
use crate::sync::Ordering;
use crate::*;

fn message(sequence: u32) -> Message {
    let mut message = Message::new(sequence % 7, sequence.wrapping_mul(3), &sequence.to_le_bytes()).unwrap();
    message.sequence = sequence;
    message
}

/// A heap region aligned like a shared page, freed on drop.
struct TestRegion {
    base: NonNull<u8>,
    layout: Layout,
}

impl TestRegion {
    fn new(len: usize, align: usize) -> Self {
        let layout = Layout::from_size_align(len, align).unwrap();
        // SAFETY: the layout has non-zero size.
        let base = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
        TestRegion { base, layout }
    }
}

impl Drop for TestRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

#[test]
fn push_then_pop_returns_same_message() {
    let mut ring = OwnedRing::<4>::new();
    let (mut producer, mut consumer) = ring.split();
    assert_eq!(consumer.pop(), None);
    assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty));
    producer.push(&message(1)).unwrap();
    assert_eq!(consumer.pop(), Some(message(1)));
    assert_eq!(consumer.pop(), None);
}

#[test]
fn full_ring_refuses_push_until_a_pop() {
    let mut ring = OwnedRing::<4>::new();
    let (mut producer, mut consumer) = ring.split();
    for sequence in 0..4 {
        producer.push(&message(sequence)).unwrap();
    }
    assert_eq!(producer.push(&message(99)), Err(RingFull));
    assert_eq!(producer.push_untrusted(&message(99)), Err(RingError::Full));
    assert_eq!(consumer.pop(), Some(message(0)));
    producer.push(&message(4)).unwrap();
    for sequence in 1..5 {
        assert_eq!(consumer.pop(), Some(message(sequence)));
    }
    assert_eq!(consumer.pop(), None);
}

#[test]
fn capacity_one_ring_alternates() {
    let mut ring = OwnedRing::<1>::new();
    let (mut producer, mut consumer) = ring.split();
    for sequence in 0..10 {
        producer.push(&message(sequence)).unwrap();
        assert_eq!(producer.push(&message(sequence)), Err(RingFull));
        assert_eq!(consumer.pop(), Some(message(sequence)));
    }
}

#[test]
fn batches_publish_and_release_once() {
    let mut ring = OwnedRing::<8>::new();
    let (mut producer, mut consumer) = ring.split();
    let mut batch = producer.reserve(5);
    assert_eq!(batch.len(), 5);
    for sequence in 0..3 {
        batch.write_next(&message(sequence)).unwrap();
    }
    // Nothing visible before commit.
    assert!(consumer.read(8).is_empty());
    assert_eq!(batch.commit(), 3);
    assert_eq!(producer.next_write_index(), 3);

    let batch = consumer.read(8);
    assert_eq!(batch.len(), 3);
    let copies: Vec<Message> = batch.iter().collect();
    assert_eq!(copies, [message(0), message(1), message(2)]);
    assert_eq!(batch.get(3), None);
    // Not released (the batch goes out of use): the producer sees only 5 free slots.
    let _ = batch;
    assert_eq!(producer.reserve(8).len(), 5);
    assert_eq!(consumer.read(2).release(), 2);
    assert_eq!(producer.reserve(8).len(), 7);
    assert_eq!(consumer.next_read_index(), 2);
}

#[test]
fn dropped_write_batch_publishes_nothing() {
    let mut ring = OwnedRing::<4>::new();
    let (mut producer, mut consumer) = ring.split();
    {
        let mut batch = producer.reserve(4);
        batch.write_next(&message(7)).unwrap();
    }
    assert_eq!(consumer.pop(), None);
    producer.push(&message(8)).unwrap();
    assert_eq!(consumer.pop(), Some(message(8)));
}

#[test]
fn write_batch_refuses_past_reservation() {
    let mut ring = OwnedRing::<4>::new();
    let (mut producer, _consumer) = ring.split();
    let mut batch = producer.reserve(2);
    batch.write_next(&message(0)).unwrap();
    batch.write_next(&message(1)).unwrap();
    assert_eq!(batch.write_next(&message(2)), Err(RingFull));
    assert_eq!(batch.written(), 2);
    assert_eq!(batch.commit(), 2);
}

#[test]
fn slices_wrap_around_the_ring_end() {
    let mut ring = OwnedRing::<8>::with_start_index(u64::MAX - 2);
    let (mut producer, mut consumer) = ring.split();
    let mut out = [Message::zeroed(); 8];
    let mut next_expected = 0u32;
    let mut next_sequence = 0u32;
    for round in 0..20 {
        let batch: Vec<Message> = (0..(round % 8 + 1)).map(|k| message(next_sequence + k)).collect();
        let written = producer.push_slice(&batch);
        next_sequence += written as u32;
        let read = consumer.pop_into(&mut out[..(round as usize % 5 + 1)]);
        for copy in &out[..read] {
            assert_eq!(*copy, message(next_expected));
            next_expected += 1;
        }
    }
    while let Some(copy) = consumer.pop() {
        assert_eq!(copy, message(next_expected));
        next_expected += 1;
    }
    assert_eq!(next_expected, next_sequence);
}

#[test]
fn untrusted_batches_report_empty_and_full() {
    let mut ring = OwnedRing::<2>::new();
    let (mut producer, mut consumer) = ring.split();
    assert!(matches!(consumer.read_untrusted(4), Err(RingError::Empty)));
    let mut batch = producer.reserve_untrusted(4).unwrap();
    assert_eq!(batch.len(), 2);
    batch.write_next(&message(0)).unwrap();
    batch.write_next(&message(1)).unwrap();
    batch.commit();
    assert!(matches!(producer.reserve_untrusted(1), Err(RingError::Full)));
    let batch = consumer.read_untrusted(4).unwrap();
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.release(), 2);
}

/// `value`'s stamp byte set to `stamp`.
fn with_stamp(value: u64, stamp: u8) -> u64 {
    (value & !STAMP_MASK) | (u64::from(stamp) << STAMP_SHIFT)
}

#[test]
fn the_consumer_never_reads_the_producer_index() {
    let mut ring = OwnedRing::<4>::new();
    let region = ring.region();
    let producer_index = region.producer_index;
    let (mut producer, mut consumer) = region.split();
    // A lie in the producer index promises nothing and is not followed:
    // without stamps in the slots there is nothing to read.
    for bad in [4u64, 5, u64::MAX, 1 << 40] {
        producer_index.store(bad, Ordering::Relaxed);
        assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty));
        assert_eq!(consumer.pop(), None);
        assert!(consumer.read(4).is_empty());
        assert!(consumer.prepare_to_sleep());
        consumer.finish_sleep();
    }
    // And a published message is found whatever the index says.
    producer.push(&message(1)).unwrap();
    producer_index.store(u64::MAX, Ordering::Relaxed);
    assert_eq!(consumer.pop_untrusted(), Ok(message(1)));
    assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty));
}

#[test]
fn stamps_differ_from_the_previous_lap_and_from_zero() {
    for capacity_log in [0u32, 1, 2, 5, 7, 8, 9, 16, 40, 62, 63] {
        let capacity = 1u64 << capacity_log;
        let around = |centre: u64| (0..600u64).map(move |k| centre.wrapping_add(k).wrapping_sub(300));
        for index in around(0).chain(around(capacity)).chain(around(u64::from(u32::MAX))).chain(around(u64::MAX / 2)) {
            let stamp = layout::stamp_for(index, capacity_log);
            assert_ne!(stamp, 0);
            assert_ne!(stamp & layout::STAMP_PUBLISHED, 0);
            assert_ne!(stamp, layout::stamp_for(index.wrapping_sub(capacity), capacity_log), "{index} / {capacity}");
        }
    }
}

#[test]
fn a_zeroed_region_holds_no_message_at_any_start_index() {
    for start in [0u64, 1, 127, 128, 1 << 32, u64::MAX - 1, u64::MAX] {
        let mut ring = OwnedRing::<4>::with_start_index(start);
        let (_producer, mut consumer) = ring.split();
        assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty), "start {start}");
        assert!(matches!(consumer.read_untrusted(4), Err(RingError::Empty)));
        assert_eq!(consumer.prepare_to_sleep_untrusted(), Ok(true));
        consumer.finish_sleep();
    }
}

#[test]
fn a_stale_stamp_from_the_previous_lap_is_not_a_message() {
    let mut ring = OwnedRing::<4>::with_start_index(u64::MAX - 5);
    let region = ring.region();
    let slots = region.slots;
    let (mut producer, mut consumer) = region.split();
    // One lap (across the u64 wrap): every slot then holds a consumed
    // message of the lap before the one the consumer waits for.
    for sequence in 0..4 {
        producer.push(&message(sequence)).unwrap();
    }
    assert_eq!(consumer.pop_into(&mut [Message::zeroed(); 4]), 4);
    let next = consumer.next_read_index();
    assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty), "previous lap's stamp read as a message");
    assert!(consumer.read(4).is_empty());
    assert!(consumer.prepare_to_sleep());
    consumer.finish_sleep();

    // A hostile producer writes other stamps into the next slot.
    let word = &slots[(next & 3) as usize].words[STAMP_WORD];
    let old = word.load(Ordering::Relaxed);
    let lap_stamp = |index: u64| layout::stamp_for(index, 2);
    for (stamp, expected) in [
        (0u8, Err(RingError::Empty)),
        (0x7f, Err(RingError::Empty)), // published bit clear: unpublished
        (lap_stamp(next.wrapping_sub(4)), Err(RingError::Empty)),
        (
            lap_stamp(next.wrapping_add(4)),
            Err(RingError::PeerStampInvalid {
                own_index: next,
                stamp: lap_stamp(next.wrapping_add(4)),
                expected: lap_stamp(next),
            }),
        ),
        (
            lap_stamp(next.wrapping_sub(8)),
            Err(RingError::PeerStampInvalid {
                own_index: next,
                stamp: lap_stamp(next.wrapping_sub(8)),
                expected: lap_stamp(next),
            }),
        ),
        (
            0xff ^ lap_stamp(next) ^ 0x80,
            Err(RingError::PeerStampInvalid {
                own_index: next,
                stamp: 0xff ^ lap_stamp(next) ^ 0x80,
                expected: lap_stamp(next),
            }),
        ),
    ] {
        word.store(with_stamp(old, stamp), Ordering::Relaxed);
        assert_eq!(consumer.pop_untrusted(), expected, "stamp {stamp:#x}");
        assert_eq!(consumer.pop(), None);
        assert_eq!(consumer.next_read_index(), next, "moved on a stamp that does not publish");
        let asleep = consumer.prepare_to_sleep_untrusted();
        match expected {
            Err(RingError::Empty) => assert_eq!(asleep, Ok(true)),
            _ => assert_eq!(asleep, expected.map(|_| false)),
        }
        consumer.finish_sleep();
        assert_eq!(consumer.prepare_to_sleep(), expected == Err(RingError::Empty));
        consumer.finish_sleep();
    }
    // The right stamp on stale bytes: a hostile producer may publish
    // garbage; it is taken once, as the message of `next`, stamp cleared.
    word.store(with_stamp(old, lap_stamp(next)), Ordering::Relaxed);
    let copy = consumer.pop_untrusted().unwrap();
    assert_eq!(copy.flags & RING_OWNED_FLAGS, 0);
    assert_eq!(Message { flags: 0, ..copy }, message(0), "the bytes of the lap before, at index {next}");
    assert_eq!(consumer.next_read_index(), next.wrapping_add(1));
    assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty));
}

#[test]
fn the_stamp_is_invisible_above_the_ring() {
    let mut ring = OwnedRing::<2>::new();
    let (mut producer, mut consumer) = ring.split();
    for round in 0..5u32 {
        // A sender's flags survive in the low byte; whatever it put in the
        // ring's byte is overwritten, and every copy out has it clear.
        let mut sent = message(round);
        sent.flags = 0xab01;
        producer.push(&sent).unwrap();
        let back = producer.read_back(producer.next_write_index() - 1);
        assert_eq!(back.flags, 0x0001);
        let copy = consumer.pop().unwrap();
        assert_eq!(copy.flags, 0x0001);
        assert_eq!(copy, Message { flags: 1, ..sent });
        // Through the batch paths too.
        producer.push_slice(&[sent, message(round)]);
        let batch = consumer.read(2);
        assert!(batch.iter().all(|copy| copy.flags & RING_OWNED_FLAGS == 0));
        assert_eq!(batch.get(1), Some(message(round)));
        assert_eq!(batch.get(1).unwrap().validate(), Ok(()));
        batch.release();
    }
}

#[test]
fn a_batch_is_invisible_until_commit_and_a_dropped_one_never_appears() {
    let mut ring = OwnedRing::<4>::new();
    let region = ring.region();
    let slots = region.slots;
    let (mut producer, mut consumer) = region.split();
    let mut batch = producer.reserve(3);
    batch.write_next(&message(0)).unwrap();
    batch.write_next(&message(1)).unwrap();
    // Written but unstamped: the stamp byte is zero.
    assert_eq!(slots[0].words[STAMP_WORD].load(Ordering::Relaxed) & STAMP_MASK, 0);
    assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty));
    let _ = batch; // dropped: never committed
    // A later push at index 0 must not expose the dropped message at index 1.
    producer.push(&message(7)).unwrap();
    assert_eq!(consumer.pop(), Some(message(7)));
    assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty));
    let mut batch = producer.reserve(2);
    batch.write_next(&message(8)).unwrap();
    assert_eq!(batch.commit(), 1);
    assert_eq!(consumer.pop(), Some(message(8)));
}

#[test]
fn corrupt_consumer_index_is_reported_not_followed() {
    let mut ring = OwnedRing::<4>::new();
    let region = ring.region();
    let consumer_index = region.consumer_index;
    let mut producer = region.into_producer();
    for sequence in 0..4 {
        producer.push(&message(sequence)).unwrap();
    }
    // Full (write index 4): the next push must look at the consumer index.
    for bad in [5u64, u64::MAX - 3, 1 << 63] {
        consumer_index.store(bad, Ordering::Relaxed);
        assert_eq!(
            producer.push_untrusted(&message(9)),
            Err(RingError::PeerIndexOutOfRange { own_index: 4, peer_index: bad, capacity: 4 })
        );
        assert_eq!(producer.push(&message(9)), Err(RingFull));
        assert!(producer.reserve(3).is_empty());
        assert!(producer.reserve_untrusted(3).is_err());
    }
    // A consumer index inside the range is believed.
    consumer_index.store(2, Ordering::Relaxed);
    assert_eq!(producer.reserve(4).len(), 2);
}

#[test]
fn wake_protocol_single_thread() {
    let mut ring = OwnedRing::<4>::new();
    let region = ring.region();
    let wake_state = region.wake_state;
    let (mut producer, mut consumer) = region.split();
    // Nobody asleep: no doorbell.
    producer.push(&message(0)).unwrap();
    assert!(!producer.consumer_needs_wakeup());
    // Messages pending: the consumer must not sleep, and withdraws.
    assert!(!consumer.prepare_to_sleep());
    assert_eq!(wake_state.load(Ordering::Relaxed), WAKE_STATE_AWAKE);
    consumer.pop().unwrap();
    // Empty: may sleep; the next publish claims exactly one doorbell.
    assert!(consumer.prepare_to_sleep());
    assert_eq!(wake_state.load(Ordering::Relaxed), WAKE_STATE_SLEEPING);
    producer.push(&message(1)).unwrap();
    assert!(producer.consumer_needs_wakeup());
    producer.push(&message(2)).unwrap();
    assert!(!producer.consumer_needs_wakeup());
    consumer.finish_sleep();
    assert_eq!(consumer.pop(), Some(message(1)));
    // A garbage wake word (hostile consumer) means one extra doorbell.
    wake_state.store(0xdead_beef, Ordering::Relaxed);
    assert!(producer.consumer_needs_wakeup());
    assert!(!producer.consumer_needs_wakeup());
}

#[test]
fn region_size_and_capacity_agree() {
    assert_eq!(region_size(1), Ok(SLOTS_OFFSET + 64));
    assert_eq!(region_size(32), Ok(384 + 32 * 64));
    assert_eq!(region_size(0), Err(LayoutError::CapacityNotPowerOfTwo { capacity: 0 }));
    assert_eq!(region_size(3), Err(LayoutError::CapacityNotPowerOfTwo { capacity: 3 }));
    assert_eq!(region_size(1 << 62), Err(LayoutError::CapacityTooLarge { capacity: 1 << 62 }));
    assert_eq!(capacity_for_region(4096), Some(32));
    assert_eq!(capacity_for_region(8192), Some(64));
    assert_eq!(capacity_for_region(448), Some(1));
    assert_eq!(capacity_for_region(447), None);
    for capacity in [1usize, 2, 4, 32, 1024] {
        assert_eq!(capacity_for_region(region_size(capacity).unwrap()), Some(capacity));
    }
}

#[test]
fn raw_region_rejects_bad_layout() {
    let len = region_size(8).unwrap();
    let region = TestRegion::new(len + 128, 128);
    // SAFETY: the region is a live allocation of len + 128 bytes, private to
    // this test; every call below fails its checks and touches nothing.
    unsafe {
        assert_eq!(
            RingRegion::init(region.base, len, 6, 0).err(),
            Some(LayoutError::CapacityNotPowerOfTwo { capacity: 6 })
        );
        assert_eq!(
            RingRegion::init(region.base, len - 1, 8, 0).err(),
            Some(LayoutError::RegionTooSmall { needed: len, provided: len - 1 })
        );
        let misaligned = region.base.add(64);
        assert!(matches!(RingRegion::init(misaligned, len, 8, 0).err(), Some(LayoutError::Misaligned { .. })));
    }
}

#[test]
fn raw_region_init_then_attach_sees_same_ring() {
    let capacity = 8;
    let len = region_size(capacity).unwrap();
    let region = TestRegion::new(len, 128);
    // SAFETY: the allocation is `len` bytes, 128-aligned, private to this
    // test and outlives both handles; only this crate accesses it.
    let mut producer =
        unsafe { RingRegion::init(region.base, len, capacity, u64::from(u32::MAX) - 3) }.unwrap().into_producer();
    // SAFETY: same region, initialised just above.
    let mut consumer = unsafe { RingRegion::attach(region.base, len, capacity) }.unwrap().into_consumer();
    assert_eq!(consumer.capacity(), 8);
    for sequence in 0..20 {
        producer.push(&message(sequence)).unwrap();
        assert_eq!(consumer.pop_untrusted(), Ok(message(sequence)));
    }
    assert_eq!(consumer.next_read_index(), u64::from(u32::MAX) + 17);
    // Byte-level check of the documented layout: producer index at offset 0.
    // SAFETY: offset 0 is in the region; read as an atomic like every access.
    let shared_producer_index = unsafe { &*region.base.as_ptr().cast::<core::sync::atomic::AtomicU64>() };
    assert_eq!(shared_producer_index.load(Ordering::Relaxed), u64::from(u32::MAX) + 17);
    assert_eq!(consumer.producer_index_address(), region.base.as_ptr().cast::<u64>().cast_const());
}

#[test]
fn message_layout_and_validation() {
    let message = Message::new(1, 2, &[9; PAYLOAD_CAPACITY]).unwrap();
    assert_eq!(message.validate(), Ok(()));
    assert_eq!(message.payload_bytes().len(), PAYLOAD_CAPACITY);
    assert_eq!(Message::new(1, 2, &[0; PAYLOAD_CAPACITY + 1]), Err(MessageError::PayloadTooLong { payload_len: 41 }));
    let mut garbage = Message::from_words([u64::MAX; 8]);
    assert_eq!(garbage.validate(), Err(MessageError::PayloadTooLong { payload_len: u16::MAX }));
    assert_eq!(garbage.payload_bytes().len(), PAYLOAD_CAPACITY);
    garbage.payload_len = 3;
    assert_eq!(garbage.validate(), Err(MessageError::ReservedFlagsSet { flags: u16::MAX }));
    // Word 0 holds destination_endpoint (low half) and label (high half).
    let words = Message::new(0x1122_3344, 0x5566_7788, b"").unwrap().to_words();
    assert_eq!(words[0], 0x5566_7788_1122_3344);
    assert_eq!(Message::from_words(message.to_words()), message);
}

#[test]
fn handles_are_send_and_not_clone() {
    fn assert_send<T: Send>() {}
    assert_send::<Producer<'static>>();
    assert_send::<Consumer<'static>>();
}

#[test]
fn release_first_leaves_the_rest_for_the_next_read() {
    let mut ring = OwnedRing::<8>::new();
    let (mut producer, mut consumer) = ring.split();
    for label in 0..5 {
        producer.push(&Message::new(1, label, b"x").unwrap()).unwrap();
    }
    let batch = consumer.read_untrusted(8).unwrap();
    assert_eq!(batch.len(), 5);
    assert_eq!(batch.release_first(2), 2);
    let batch = consumer.read_untrusted(8).unwrap();
    assert_eq!(batch.len(), 3);
    assert_eq!(batch.get(0).unwrap().label, 2);
    assert_eq!(batch.release_first(99), 3);
    assert_eq!(consumer.read_untrusted(8).err(), Some(RingError::Empty));
}

#[test]
fn untrusted_sleep_announcement_keeps_watching_a_corrupt_ring() {
    let mut ring = OwnedRing::<4>::new();
    let region = ring.region();
    let wake_state = region.wake_state;
    let slots = region.slots;
    let (mut producer, mut consumer) = region.split();
    assert_eq!(consumer.prepare_to_sleep_untrusted(), Ok(true));
    consumer.finish_sleep();
    producer.push(&message(0)).unwrap();
    assert_eq!(consumer.prepare_to_sleep_untrusted(), Ok(false));
    assert_eq!(wake_state.load(Ordering::Relaxed), WAKE_STATE_AWAKE, "withdrawn: messages wait");
    assert_eq!(consumer.pop(), Some(message(0)));
    // A scribbled stamp in the next slot (index 1): nothing readable, the
    // announcement stays up so a producer that publishes still rings.
    slots[1].words[STAMP_WORD].store(with_stamp(0, 0x85), Ordering::Relaxed);
    assert!(matches!(consumer.prepare_to_sleep_untrusted(), Err(RingError::PeerStampInvalid { own_index: 1, .. })));
    assert_eq!(wake_state.load(Ordering::Relaxed), WAKE_STATE_SLEEPING);
    producer.push(&message(1)).unwrap();
    assert!(producer.consumer_needs_wakeup(), "the next publish claims the wake-up");
    assert_eq!(consumer.pop(), Some(message(1)), "the publish repaired the slot");
}

#[test]
fn handles_at_an_index_ignore_what_the_region_says() {
    let capacity = 8;
    let len = region_size(capacity).unwrap();
    let region = TestRegion::new(len, 128);
    // SAFETY: the allocation is `len` bytes, 128-aligned, private to this
    // test and outlives every handle; only this crate accesses it.
    let ring = unsafe { RingRegion::init(region.base, len, capacity, 40) }.unwrap();
    // A peer scribbles both shared indices before the kernel attaches.
    // SAFETY: offsets 0 and 128 (the two index lines) are in the region;
    // written as atomics like every access.
    unsafe {
        (*region.base.as_ptr().cast::<core::sync::atomic::AtomicU64>()).store(9_999, Ordering::Relaxed);
        (*region.base.as_ptr().add(128).cast::<core::sync::atomic::AtomicU64>()).store(7_777, Ordering::Relaxed);
    }
    let producer = ring.into_producer_at(40);
    assert_eq!(producer.next_write_index(), 40, "the private index is the one given, not the shared word");
    // SAFETY: same region, initialised above.
    let consumer = unsafe { RingRegion::attach(region.base, len, capacity) }.unwrap().into_consumer_at(40);
    assert_eq!(consumer.next_read_index(), 40);
}

#[test]
fn producer_reads_back_what_the_consumer_never_took() {
    let mut ring = OwnedRing::<8>::new();
    let (mut producer, mut consumer) = ring.split();
    for sequence in 0..5 {
        producer.push(&message(sequence)).unwrap();
    }
    assert_eq!(consumer.pop_untrusted(), Ok(message(0)));
    assert_eq!(consumer.pop_untrusted(), Ok(message(1)));
    let from = producer.consumer_index_untrusted().unwrap();
    assert_eq!(from, 2);
    let left: Vec<Message> = (from..producer.next_write_index()).map(|i| producer.read_back(i)).collect();
    assert_eq!(left, [message(2), message(3), message(4)]);
}

#[test]
fn forgetting_the_published_index_makes_the_consumer_look_again() {
    let mut ring = OwnedRing::<8>::new();
    let (mut producer, mut consumer) = ring.split();
    producer.push(&message(1)).unwrap();
    producer.push(&message(2)).unwrap();
    assert_eq!(consumer.pop_untrusted(), Ok(message(1))); // caches producer index 2
    consumer.forget_published();
    // The cache no longer promises message 2; the shared index still does.
    assert_eq!(consumer.pop_untrusted(), Ok(message(2)));
    assert_eq!(consumer.pop_untrusted(), Err(RingError::Empty));
}
