//! Two threads, one ring: every message arrives exactly once, in order,
//! with an intact payload (sequence numbers and checksums), whatever mix of
//! single and batch operations each side uses; plus the wake-flag protocol
//! with a consumer that really sleeps.

#![cfg(not(loom))]

mod common;

use std::time::{Duration, Instant};

use common::{TestRng, assert_is_message, backoff, numbered_message};
use ringbuf::{Consumer, Message, OwnedRing, Producer};

/// Messages per test; divided further for the slow capacity-1 case.
const MESSAGES: u64 = if cfg!(miri) { 400 } else { 1_000_000 };

fn produce(producer: &mut Producer<'_>, count: u64, seed: u64) {
    let mut rng = TestRng::new(seed);
    let mut next = 0u64;
    let mut staging = [Message::zeroed(); 64];
    while next < count {
        let written = match rng.below(3) {
            0 => usize::from(producer.push(&numbered_message(next)).is_ok()),
            1 => {
                let want = (1 + rng.below(64)).min(count - next) as usize;
                for (offset, slot) in staging[..want].iter_mut().enumerate() {
                    *slot = numbered_message(next + offset as u64);
                }
                producer.push_slice(&staging[..want])
            }
            _ => {
                let mut batch = producer.reserve((1 + rng.below(64)) as usize);
                let mut k = 0;
                while next + k < count && batch.write_next(&numbered_message(next + k)).is_ok() {
                    k += 1;
                }
                batch.commit()
            }
        };
        if written == 0 {
            backoff();
        }
        next += written as u64;
    }
}

fn consume(consumer: &mut Consumer<'_>, count: u64, seed: u64) {
    let mut rng = TestRng::new(seed);
    let mut expected = 0u64;
    let mut out = [Message::zeroed(); 64];
    while expected < count {
        let read = match rng.below(3) {
            0 => match consumer.pop() {
                Some(message) => {
                    assert_is_message(&message, expected);
                    1
                }
                None => 0,
            },
            1 => {
                let got = consumer.pop_into(&mut out[..(1 + rng.below(64)) as usize]);
                for (offset, message) in out[..got].iter().enumerate() {
                    assert_is_message(message, expected + offset as u64);
                }
                got
            }
            _ => {
                let batch = consumer.read((1 + rng.below(64)) as usize);
                for (offset, message) in batch.iter().enumerate() {
                    assert_is_message(&message, expected + offset as u64);
                }
                batch.release()
            }
        };
        if read == 0 {
            backoff();
        }
        expected += read as u64;
    }
    assert_eq!(consumer.pop(), None, "more messages than were sent");
}

fn run_two_threads<const CAPACITY: usize>(start_index: u64, count: u64, seed: u64) {
    let mut ring = Box::new(OwnedRing::<CAPACITY>::with_start_index(start_index));
    let (mut producer, mut consumer) = ring.split();
    std::thread::scope(|scope| {
        scope.spawn(move || produce(&mut producer, count, seed));
        scope.spawn(move || consume(&mut consumer, count, seed ^ 0x5555));
    });
}

#[test]
fn exactly_once_in_order_capacity_64() {
    run_two_threads::<64>(0, MESSAGES, 1);
}

#[test]
fn exactly_once_in_order_across_u64_wrap() {
    run_two_threads::<16>(u64::MAX - MESSAGES / 4, MESSAGES / 2, 2);
}

#[test]
fn exactly_once_in_order_across_u32_wrap_capacity_1() {
    run_two_threads::<1>(u64::from(u32::MAX) - 5, MESSAGES / 10, 3);
}

/// The consumer parks when the ring stays empty, using the wake-flag
/// protocol; the producer unparks it only when `consumer_needs_wakeup`
/// says so. A lost wakeup shows as a park that runs into its timeout while
/// messages are waiting.
#[test]
fn sleeping_consumer_is_always_woken() {
    const COUNT: u64 = if cfg!(miri) { 100 } else { 20_000 };
    let timeout = Duration::from_secs(if cfg!(miri) { 30 } else { 2 });
    let mut ring = Box::new(OwnedRing::<8>::new());
    let (mut producer, mut consumer) = ring.split();
    std::thread::scope(|scope| {
        let consumer_thread = scope.spawn(move || {
            let mut expected = 0u64;
            let mut sleeps = 0u64;
            while expected < COUNT {
                if let Some(message) = consumer.pop() {
                    assert_is_message(&message, expected);
                    expected += 1;
                    continue;
                }
                if consumer.prepare_to_sleep() {
                    sleeps += 1;
                    let asleep_at = Instant::now();
                    std::thread::park_timeout(timeout);
                    consumer.finish_sleep();
                    assert!(
                        asleep_at.elapsed() < timeout || consumer.pop().is_none(),
                        "lost wakeup: slept through a published message"
                    );
                }
            }
            sleeps
        });
        let waker = consumer_thread.thread().clone();
        let mut rng = TestRng::new(9);
        for sequence in 0..COUNT {
            while producer.push(&numbered_message(sequence)).is_err() {
                backoff();
            }
            if producer.consumer_needs_wakeup() {
                waker.unpark();
            }
            // Now and then let the consumer run dry and go to sleep.
            if rng.below(64) == 0 {
                std::thread::yield_now();
            }
        }
        let sleeps = consumer_thread.join().unwrap();
        eprintln!("consumer slept {sleeps} times");
    });
}
