//! Hostile-peer tests: while the trusted side (the kernel's end) keeps
//! working, another thread writes garbage into every word of the shared
//! region — indices, stamps, wake word, padding, slots. The trusted side must only
//! ever return messages or errors: no panic, no out-of-bounds access (the
//! region is an exact-size allocation, so Miri would flag one), no data race
//! (Miri checks that too), and its own index never jumps by more than it
//! moved itself.

#![cfg(not(loom))]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::{HeapRegion, TestRng, numbered_message};
use ringbuf::layout::{
    CONSUMER_INDEX_OFFSET, SLOT_SIZE, SLOTS_OFFSET, STAMP_MASK, STAMP_SHIFT, STAMP_WORD, WAKE_STATE_OFFSET, stamp_for,
};
use ringbuf::{RING_OWNED_FLAGS, RingError, RingRegion, region_size};

const OPERATIONS: u64 = if cfg!(miri) { 300 } else { 300_000 };
const CAPACITY: usize = 16;

/// What the scribbler is told: where to lie, and the trusted side's current
/// index (which a real attacker can watch in the shared header).
struct Target<'a> {
    words: &'a [AtomicU64],
    /// Count of hostile writes so far, so the trusted side can keep going
    /// until it has really been under fire (threads may share a core).
    writes: &'a AtomicU64,
    lie: Lie,
    trusted_index: &'a AtomicU64,
}

/// The lie the scribbler tells most.
#[derive(Clone, Copy)]
enum Lie {
    /// Values near the trusted index in this word (the consumer index).
    PeerIndex { word: usize },
    /// Stamps of indices near the trusted index (its own, the laps before
    /// and after, garbage) in the stamp words of slots near it.
    Stamps,
}

/// Word number of the stamp word of `index`'s slot.
fn stamp_word_of(index: u64) -> usize {
    (SLOTS_OFFSET + (index & (CAPACITY as u64 - 1)) as usize * SLOT_SIZE) / 8 + STAMP_WORD
}

/// Scribbles until `stop` (setting `started` first): half the writes tell
/// the `lie` near the trusted side's index (so some lies pass the checks
/// and some do not), the rest hit the wake word or any word at all with any
/// value.
fn scribble(target: Target<'_>, started: &AtomicBool, stop: &AtomicBool, seed: u64) -> u64 {
    let mut rng = TestRng::new(seed);
    let mut writes = 0u64;
    let capacity = CAPACITY as u64;
    started.store(true, Ordering::Relaxed);
    while !stop.load(Ordering::Relaxed) {
        let (word, value) = match rng.below(4) {
            0 | 1 => {
                let anchor = target.trusted_index.load(Ordering::Relaxed);
                let near = anchor.wrapping_add(rng.below(4 * capacity)).wrapping_sub(2 * capacity);
                match target.lie {
                    Lie::PeerIndex { word } => (word, near),
                    Lie::Stamps => {
                        let index = anchor.wrapping_add(rng.below(capacity));
                        let stamp = match rng.below(4) {
                            0 => stamp_for(index, CAPACITY.trailing_zeros()),
                            1 => stamp_for(index.wrapping_sub(capacity), CAPACITY.trailing_zeros()),
                            2 => stamp_for(near, CAPACITY.trailing_zeros()),
                            _ => rng.next_u64() as u8,
                        };
                        let value = (rng.next_u64() & !STAMP_MASK) | (u64::from(stamp) << STAMP_SHIFT);
                        (stamp_word_of(index), value)
                    }
                }
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
        let target =
            Target { words: region.words(), writes: &hostile_writes, lie: Lie::Stamps, trusted_index: &trusted_index };
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
                    // The stamp never reaches the caller.
                    assert!(copies.iter().all(|copy| copy.flags & RING_OWNED_FLAGS == 0));
                    // Validation happens on the private copy; garbage is refused here.
                    malformed += copies.iter().filter(|copy| copy.validate().is_err()).count() as u64;
                    let _ = copies.iter().map(|copy| copy.payload_bytes().len()).sum::<usize>();
                }
                Err(RingError::Empty) => empties += 1,
                Err(error @ RingError::PeerStampInvalid { own_index, stamp, expected }) => {
                    assert!(error.is_peer_misbehaviour());
                    assert_eq!(own_index, before);
                    assert_ne!(stamp, expected);
                    assert_eq!(consumer.next_read_index(), before, "moved on a rejected stamp");
                    lies += 1;
                }
                Err(RingError::PeerIndexOutOfRange { .. }) => unreachable!("the consumer reads no producer index"),
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
        assert!(lies > 0, "the scribbler never produced a detectable bad stamp");
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
            lie: Lie::PeerIndex { word: CONSUMER_INDEX_OFFSET / 8 },
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
                Err(RingError::Empty | RingError::PeerStampInvalid { .. }) => unreachable!("a producer is never empty"),
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

/// A producer thread that follows the protocol for the indices and stamps
/// but now and then scribbles on a slot word other than the stamp word
/// (payload, badge, endpoint). The trusted consumer still takes every
/// published slot exactly once, in order; intact messages pass validation
/// and equal what was sent, damaged ones are caught by checksum — on the
/// private copy. (A scribbled stamp word can hide a published message for
/// good, which only hurts the scribbler; stamps are fuzzed in the tests
/// above and in `stamp_fuzz_matches_a_model`.)
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
                    let mut word = first_slot_word + rng.below((words.len() - first_slot_word) as u64) as usize;
                    if (word - first_slot_word) % 8 == STAMP_WORD {
                        word -= 1;
                    }
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

/// One step of the stamp fuzz: the honest producer's push, the trusted
/// consumer's reads, or a hostile write of a stamp word.
#[derive(Clone, Debug)]
enum StampStep {
    Push,
    Pop,
    Read(usize),
    Sleep,
    /// Writes the stamp word of the slot `ahead` places past the consumer:
    /// `bits` with the stamp byte chosen by `stamp`.
    Scribble {
        ahead: u64,
        stamp: StampChoice,
        bits: u64,
    },
}

#[derive(Clone, Copy, Debug)]
enum StampChoice {
    /// The stamp that publishes the slot's index `ahead` of the consumer.
    Publishing,
    PreviousLap,
    NextLap,
    Zero,
    Any(u8),
}

fn stamp_step() -> impl proptest::strategy::Strategy<Value = StampStep> {
    use proptest::prelude::*;
    let choice = prop_oneof![
        Just(StampChoice::Publishing),
        Just(StampChoice::PreviousLap),
        Just(StampChoice::NextLap),
        Just(StampChoice::Zero),
        any::<u8>().prop_map(StampChoice::Any),
    ];
    prop_oneof![
        3 => Just(StampStep::Push),
        2 => Just(StampStep::Pop),
        2 => (0usize..10).prop_map(StampStep::Read),
        1 => Just(StampStep::Sleep),
        2 => (0u64..10, choice, any::<u64>()).prop_map(|(ahead, stamp, bits)| StampStep::Scribble { ahead, stamp, bits }),
    ]
}

/// What the consumer must answer for the slot of `index`, worked out from
/// the raw region: the message (stamp cleared) if its stamp publishes
/// `index`, `Empty` for an unpublished or previous-lap stamp, else a
/// reported bad stamp.
fn expected_at(words: &[AtomicU64], capacity: usize, index: u64) -> Result<ringbuf::Message, RingError> {
    let lap_shift = capacity.trailing_zeros();
    let first = (SLOTS_OFFSET + (index & (capacity as u64 - 1)) as usize * SLOT_SIZE) / 8;
    let mut raw = [0u64; 8];
    for (copy, word) in raw.iter_mut().zip(&words[first..first + 8]) {
        *copy = word.load(Ordering::Relaxed);
    }
    let stamp = (raw[STAMP_WORD] >> STAMP_SHIFT) as u8;
    let expected = stamp_for(index, lap_shift);
    if stamp == expected {
        raw[STAMP_WORD] &= !STAMP_MASK;
        let mut bytes = [0u8; 64];
        for (chunk, word) in bytes.chunks_mut(8).zip(raw) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        let mut message = ringbuf::Message::zeroed();
        message.destination_endpoint = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
        message.label = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
        message.sender_badge = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
        message.sequence = u32::from_le_bytes(bytes[16..20].try_into().unwrap());
        message.payload_len = u16::from_le_bytes(bytes[20..22].try_into().unwrap());
        message.flags = u16::from_le_bytes(bytes[22..24].try_into().unwrap());
        message.payload.copy_from_slice(&bytes[24..64]);
        Ok(message)
    } else if stamp & 0x80 == 0 || stamp == stamp_for(index.wrapping_sub(capacity as u64), lap_shift) {
        Err(RingError::Empty)
    } else {
        Err(RingError::PeerStampInvalid { own_index: index, stamp, expected })
    }
}

/// Runs `steps` on a ring whose producer is honest but whose stamp words a
/// hostile thread (here: interleaved steps) overwrites. Every answer of the
/// trusted consumer must match the raw slot (so nothing is taken without
/// the exact stamp, and a taken message is the slot's bytes, stamp
/// cleared); a message taken from a slot nobody scribbled since the
/// producer published that index is exactly what the producer sent; the
/// consumer's index moves by exactly what it returned.
fn stamp_fuzz(capacity: usize, start: u64, steps: &[StampStep]) -> Result<(), proptest::test_runner::TestCaseError> {
    use proptest::prop_assert_eq;
    let len = region_size(capacity).unwrap();
    let region = HeapRegion::new(len);
    let words = region.words();
    // SAFETY: exact-size, 128-aligned allocation that outlives both handles;
    // the test touches it otherwise only through atomics.
    let (mut producer, mut consumer) = unsafe { RingRegion::init(region.base, len, capacity, start) }.unwrap().split();
    // Per slot: the index the honest producer last published there, and
    // whether a scribble hit the slot since.
    let mut honest: Vec<Option<(u64, bool)>> = vec![None; capacity];
    let slot_of = |index: u64| (index & (capacity as u64 - 1)) as usize;
    let mut sequence = 0u64;
    let check_taken = |honest: &[Option<(u64, bool)>], index: u64, copy: &ringbuf::Message| {
        if let Some((published, false)) = honest[slot_of(index)]
            && published == index
        {
            // Untouched since the honest publish: exactly what was sent.
            assert_eq!(*copy, numbered_message(u64::from(copy.sequence)));
            assert_eq!(copy.sender_badge, !u64::from(copy.sequence));
        }
        assert_eq!(copy.flags & RING_OWNED_FLAGS, 0);
    };
    for step in steps {
        let before = consumer.next_read_index();
        match *step {
            StampStep::Push => {
                let index = producer.next_write_index();
                if producer.push(&numbered_message(sequence)).is_ok() {
                    honest[slot_of(index)] = Some((index, false));
                    sequence += 1;
                }
            }
            StampStep::Pop => {
                let expected = expected_at(words, capacity, before);
                let got = consumer.pop_untrusted();
                prop_assert_eq!(got, expected);
                if let Ok(copy) = got {
                    check_taken(&honest, before, &copy);
                }
                prop_assert_eq!(consumer.next_read_index(), before.wrapping_add(u64::from(got.is_ok())));
            }
            StampStep::Read(max) => {
                let mut expected = Vec::new();
                let mut first_error = None;
                for offset in 0..max.min(capacity) as u64 {
                    match expected_at(words, capacity, before.wrapping_add(offset)) {
                        Ok(message) => expected.push(message),
                        Err(error) => {
                            first_error.get_or_insert(error);
                            break;
                        }
                    }
                }
                // The one-word look a mover takes before visiting a ring:
                // false exactly when the read answers `Empty`.
                if max > 0 {
                    let reads_empty = expected.is_empty() && first_error == Some(RingError::Empty);
                    prop_assert_eq!(consumer.may_have_work(), !reads_empty);
                }
                match consumer.read_untrusted(max) {
                    Ok(batch) => {
                        let copies: Vec<_> = batch.iter().collect();
                        prop_assert_eq!(&copies, &expected);
                        for (offset, copy) in copies.iter().enumerate() {
                            check_taken(&honest, before.wrapping_add(offset as u64), copy);
                        }
                        prop_assert_eq!(batch.release(), expected.len());
                    }
                    Err(error) => {
                        prop_assert_eq!(expected.len(), 0);
                        prop_assert_eq!(error, first_error.unwrap_or(RingError::Empty));
                    }
                }
                prop_assert_eq!(consumer.next_read_index(), before.wrapping_add(expected.len() as u64));
            }
            StampStep::Sleep => {
                let expected = match expected_at(words, capacity, before) {
                    Ok(_) => Ok(false),
                    Err(RingError::Empty) => Ok(true),
                    Err(error) => Err(error),
                };
                prop_assert_eq!(consumer.prepare_to_sleep_untrusted(), expected);
                consumer.finish_sleep();
            }
            StampStep::Scribble { ahead, stamp, bits } => {
                let index = before.wrapping_add(ahead);
                let lap_shift = capacity.trailing_zeros();
                let stamp = match stamp {
                    StampChoice::Publishing => stamp_for(index, lap_shift),
                    StampChoice::PreviousLap => stamp_for(index.wrapping_sub(capacity as u64), lap_shift),
                    StampChoice::NextLap => stamp_for(index.wrapping_add(capacity as u64), lap_shift),
                    StampChoice::Zero => 0,
                    StampChoice::Any(stamp) => stamp,
                };
                let word = (SLOTS_OFFSET + slot_of(index) * SLOT_SIZE) / 8 + STAMP_WORD;
                words[word].store((bits & !STAMP_MASK) | (u64::from(stamp) << STAMP_SHIFT), Ordering::Relaxed);
                if let Some((_, scribbled)) = &mut honest[slot_of(index)] {
                    *scribbled = true;
                }
            }
        }
    }
    Ok(())
}

proptest::proptest! {
    #![proptest_config(proptest::test_runner::Config {
        cases: if cfg!(miri) { 2 } else { 256 },
        failure_persistence: None,
        ..proptest::test_runner::Config::default()
    })]

    /// Hostile stamp writes interleaved with an honest producer and the
    /// trusted consumer (see `stamp_fuzz`), capacities 1, 4 and 8, indices
    /// starting anywhere (near the `u64` wrap included).
    #[test]
    fn stamp_fuzz_matches_a_model(
        capacity_log in 0u32..4,
        start in proptest::prop_oneof![proptest::strategy::Just(0u64), (u64::MAX - 40)..=u64::MAX, proptest::arbitrary::any::<u64>()],
        steps in proptest::collection::vec(stamp_step(), 0..if cfg!(miri) { 24 } else { 200 }),
    ) {
        stamp_fuzz(1 << capacity_log, start, &steps)?;
    }
}
