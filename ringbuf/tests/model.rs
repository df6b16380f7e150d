//! Property test: any sequence of ring operations gives the same observable
//! results as a `VecDeque` model of capacity `CAPACITY`, for indices that
//! start anywhere — in particular just below the `u32` and `u64` wrap.

#![cfg(not(loom))]

mod common;

use std::collections::VecDeque;

use common::numbered_message;
use proptest::prelude::*;
use ringbuf::{Message, OwnedRing, RingError, RingFull};

#[derive(Clone, Debug)]
enum Operation {
    Push,
    PushUntrusted,
    Pop,
    PopUntrusted,
    PushSlice(usize),
    PopInto(usize),
    /// Reserve `reserve`, write up to `write`, commit or drop.
    Reserve {
        reserve: usize,
        write: usize,
        commit: bool,
    },
    /// Read up to `max`, copy them, release or drop.
    Read {
        max: usize,
        release: bool,
    },
    PrepareToSleep,
    FinishSleep,
    NeedsWakeup,
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![
        3 => Just(Operation::Push),
        1 => Just(Operation::PushUntrusted),
        3 => Just(Operation::Pop),
        1 => Just(Operation::PopUntrusted),
        1 => (0usize..20).prop_map(Operation::PushSlice),
        1 => (0usize..20).prop_map(Operation::PopInto),
        2 => (0usize..20, 0usize..20, any::<bool>())
            .prop_map(|(reserve, write, commit)| Operation::Reserve { reserve, write, commit }),
        2 => (0usize..20, any::<bool>()).prop_map(|(max, release)| Operation::Read { max, release }),
        1 => Just(Operation::PrepareToSleep),
        1 => Just(Operation::FinishSleep),
        1 => Just(Operation::NeedsWakeup),
    ]
}

fn start_index() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        (u64::from(u32::MAX) - 40)..=(u64::from(u32::MAX) + 2),
        (u64::MAX - 40)..=u64::MAX,
        any::<u64>(),
    ]
}

/// Runs `operations` on a real ring and on the model, comparing every result.
fn check_against_model<const CAPACITY: usize>(start: u64, operations: &[Operation]) -> Result<(), TestCaseError> {
    let mut ring = Box::new(OwnedRing::<CAPACITY>::with_start_index(start));
    let (mut producer, mut consumer) = ring.split();
    let mut model: VecDeque<Message> = VecDeque::new();
    let mut model_sleeping = false;
    let mut next_sequence = 0u64;
    let (mut pushed, mut popped) = (0u64, 0u64);
    let free = |model: &VecDeque<Message>| CAPACITY - model.len();

    for operation in operations {
        match *operation {
            Operation::Push | Operation::PushUntrusted => {
                let message = numbered_message(next_sequence);
                let expected_ok = model.len() < CAPACITY;
                if matches!(operation, Operation::Push) {
                    let result = producer.push(&message);
                    prop_assert_eq!(result, if expected_ok { Ok(()) } else { Err(RingFull) });
                } else {
                    let result = producer.push_untrusted(&message);
                    prop_assert_eq!(result, if expected_ok { Ok(()) } else { Err(RingError::Full) });
                }
                if expected_ok {
                    model.push_back(message);
                    next_sequence += 1;
                    pushed += 1;
                }
            }
            Operation::Pop => {
                let expected = model.pop_front();
                prop_assert_eq!(consumer.pop(), expected);
                popped += u64::from(expected.is_some());
            }
            Operation::PopUntrusted => {
                let expected = model.pop_front().ok_or(RingError::Empty);
                prop_assert_eq!(consumer.pop_untrusted(), expected);
                popped += u64::from(expected.is_ok());
            }
            Operation::PushSlice(count) => {
                let messages: Vec<Message> = (0..count as u64).map(|k| numbered_message(next_sequence + k)).collect();
                let written = producer.push_slice(&messages);
                prop_assert_eq!(written, count.min(free(&model)));
                model.extend(&messages[..written]);
                next_sequence += written as u64;
                pushed += written as u64;
            }
            Operation::PopInto(count) => {
                let mut out = vec![Message::zeroed(); count];
                let read = consumer.pop_into(&mut out);
                prop_assert_eq!(read, count.min(model.len()));
                for copy in &out[..read] {
                    prop_assert_eq!(Some(*copy), model.pop_front());
                }
                popped += read as u64;
            }
            Operation::Reserve { reserve, write, commit } => {
                let mut batch = producer.reserve(reserve);
                prop_assert_eq!(batch.len(), reserve.min(free(&model)));
                let mut written = Vec::new();
                for k in 0..write as u64 {
                    let message = numbered_message(next_sequence + k);
                    let result = batch.write_next(&message);
                    prop_assert_eq!(result.is_ok(), (k as usize) < batch.len());
                    if result.is_ok() {
                        written.push(message);
                    }
                }
                prop_assert_eq!(batch.written(), written.len());
                if commit {
                    prop_assert_eq!(batch.commit(), written.len());
                    next_sequence += written.len() as u64;
                    pushed += written.len() as u64;
                    model.extend(written);
                }
            }
            Operation::Read { max, release } => {
                let batch = consumer.read(max);
                prop_assert_eq!(batch.len(), max.min(model.len()));
                let copies: Vec<Message> = batch.iter().collect();
                let expected: Vec<Message> = model.iter().take(batch.len()).copied().collect();
                prop_assert_eq!(&copies, &expected);
                if release {
                    prop_assert_eq!(batch.release(), copies.len());
                    model.drain(..copies.len());
                    popped += copies.len() as u64;
                }
            }
            Operation::PrepareToSleep => {
                let may_sleep = consumer.prepare_to_sleep();
                prop_assert_eq!(may_sleep, model.is_empty());
                model_sleeping = may_sleep;
            }
            Operation::FinishSleep => {
                consumer.finish_sleep();
                model_sleeping = false;
            }
            Operation::NeedsWakeup => {
                prop_assert_eq!(producer.consumer_needs_wakeup(), model_sleeping);
                model_sleeping = false;
            }
        }
        prop_assert_eq!(producer.next_write_index(), start.wrapping_add(pushed));
        prop_assert_eq!(consumer.next_read_index(), start.wrapping_add(popped));
    }
    Ok(())
}

fn config() -> ProptestConfig {
    ProptestConfig { cases: if cfg!(miri) { 2 } else { 256 }, failure_persistence: None, ..ProptestConfig::default() }
}

fn operations() -> impl Strategy<Value = Vec<Operation>> {
    proptest::collection::vec(operation(), 0..if cfg!(miri) { 24 } else { 200 })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn capacity_1_matches_model(start in start_index(), operations in operations()) {
        check_against_model::<1>(start, &operations)?;
    }

    #[test]
    fn capacity_2_matches_model(start in start_index(), operations in operations()) {
        check_against_model::<2>(start, &operations)?;
    }

    #[test]
    fn capacity_8_matches_model(start in start_index(), operations in operations()) {
        check_against_model::<8>(start, &operations)?;
    }

    #[test]
    fn capacity_16_matches_model(start in start_index(), operations in operations()) {
        check_against_model::<16>(start, &operations)?;
    }
}
