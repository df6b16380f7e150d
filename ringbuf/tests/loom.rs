//! loom model checks: every interleaving (up to the preemption bound) of
//! push/pop, batch commit/release, the untrusted API and the wake-flag
//! protocol (one level for inboxes, two levels for the sleeping mover), with
//! loom's weak-memory model of the atomics.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test -p ringbuf --release --test loom`
//! (`LOOM_MAX_PREEMPTIONS` overrides the bound set here).

#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering, fence};
use loom::thread;
use ringbuf::{Consumer, Message, OwnedRing, Producer, RingError};

fn message(sequence: u32) -> Message {
    let mut message = Message::new(sequence, !sequence, &sequence.to_le_bytes()).unwrap();
    message.sequence = sequence;
    message.sender_badge = u64::from(sequence) << 40 | 0xbadc;
    message
}

fn model(test: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(5);
    }
    builder.check(test);
}

/// Handles for a fresh ring that live as long as the model's threads.
fn ring<const CAPACITY: usize>(start_index: u64) -> (Producer<'static>, Consumer<'static>) {
    // Leaked on purpose: loom threads need 'static; one small ring per execution.
    let ring: &'static mut OwnedRing<CAPACITY> = Box::leak(Box::new(OwnedRing::with_start_index(start_index)));
    ring.split()
}

#[test]
fn push_pop_through_full_ring_in_order() {
    model(|| {
        let (mut producer, mut consumer) = ring::<2>(u64::MAX - 1);
        let producer_thread = thread::spawn(move || {
            for sequence in 0..3 {
                while producer.push(&message(sequence)).is_err() {
                    thread::yield_now();
                }
            }
        });
        for sequence in 0..3 {
            loop {
                if let Some(copy) = consumer.pop() {
                    assert_eq!(copy, message(sequence));
                    break;
                }
                thread::yield_now();
            }
        }
        producer_thread.join().unwrap();
        assert_eq!(consumer.pop(), None);
    });
}

#[test]
fn batch_commit_and_release_once() {
    model(|| {
        let (mut producer, mut consumer) = ring::<2>(0);
        let producer_thread = thread::spawn(move || {
            let mut next = 0;
            while next < 3 {
                let mut batch = producer.reserve(2);
                while next < 3 && batch.write_next(&message(next)).is_ok() {
                    next += 1;
                }
                if batch.commit() == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 3 {
            let batch = consumer.read(2);
            for copy in batch.iter() {
                assert_eq!(copy, message(expected));
                expected += 1;
            }
            if batch.release() == 0 {
                thread::yield_now();
            }
        }
        producer_thread.join().unwrap();
    });
}

/// The trusted (kernel-side) API against an honest peer: never reports a
/// lie, delivers in order.
#[test]
fn untrusted_api_with_honest_peer() {
    model(|| {
        let (mut producer, mut consumer) = ring::<1>(u64::from(u32::MAX));
        let producer_thread = thread::spawn(move || {
            for sequence in 0..2 {
                loop {
                    match producer.push_untrusted(&message(sequence)) {
                        Ok(()) => break,
                        Err(RingError::Full) => thread::yield_now(),
                        Err(other) => panic!("honest consumer reported as {other:?}"),
                    }
                }
            }
        });
        for sequence in 0..2 {
            loop {
                match consumer.pop_untrusted() {
                    Ok(copy) => {
                        assert_eq!(copy, message(sequence));
                        break;
                    }
                    Err(RingError::Empty) => thread::yield_now(),
                    Err(other) => panic!("honest producer reported as {other:?}"),
                }
            }
        }
        producer_thread.join().unwrap();
    });
}

/// The stamp protocol through a batch: the producer writes unstamped slots
/// and stamps them in `commit`, the untrusted consumer reads batches. A
/// capacity-1 ring across the `u64` wrap makes every slot reuse a lap
/// change, so a stale stamp of the lap before is what the consumer sees
/// while the producer is not done: it must read as empty, never as a
/// message or a lie.
#[test]
fn batch_stamps_against_an_untrusted_consumer_across_laps() {
    model(|| {
        let (mut producer, mut consumer) = ring::<1>(u64::MAX - 1);
        let producer_thread = thread::spawn(move || {
            let mut next = 0;
            while next < 3 {
                let mut batch = producer.reserve(1);
                if batch.write_next(&message(next)).is_ok() {
                    next += 1;
                }
                if batch.commit() == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut expected = 0;
        while expected < 3 {
            match consumer.read_untrusted(1) {
                Ok(batch) => {
                    assert_eq!(batch.get(0), Some(message(expected)));
                    assert_eq!(batch.release(), 1);
                    expected += 1;
                }
                Err(RingError::Empty) => thread::yield_now(),
                Err(other) => panic!("honest producer reported as {other:?}"),
            }
        }
        producer_thread.join().unwrap();
    });
}

/// `push_slice` stamps the batch's first slot last: a consumer reading
/// concurrently (single pops and batch reads) still takes every message
/// exactly once, in order, never a later slot before the first.
#[test]
fn push_slice_first_slot_last_is_read_in_order() {
    model(|| {
        let (mut producer, mut consumer) = ring::<4>(u64::MAX - 1);
        let producer_thread = thread::spawn(move || {
            assert_eq!(producer.push_slice(&[message(0), message(1), message(2)]), 3);
        });
        let mut expected = 0;
        let mut out = [Message::zeroed(); 2];
        let mut turn = 0;
        while expected < 3 {
            turn += 1;
            let got = if turn % 2 == 0 {
                usize::from(consumer.pop().inspect(|copy| assert_eq!(*copy, message(expected))).is_some())
            } else {
                let n = consumer.pop_into(&mut out);
                for (offset, copy) in out[..n].iter().enumerate() {
                    assert_eq!(*copy, message(expected + offset as u32));
                }
                n
            };
            if got == 0 {
                thread::yield_now();
            }
            expected += got as u32;
        }
        producer_thread.join().unwrap();
        assert_eq!(consumer.pop(), None);
    });
}

/// Lost-wakeup check with a batch publish (`push_slice`: one stamp per
/// slot, then the producer index) and the wake check once per batch.
#[test]
fn wake_flag_after_a_batch_never_loses_a_wakeup() {
    model(|| {
        let (mut producer, mut consumer) = ring::<2>(0);
        let doorbell = std::sync::Arc::new(AtomicBool::new(false));
        let producer_doorbell = doorbell.clone();
        let producer_thread = thread::spawn(move || {
            assert_eq!(producer.push_slice(&[message(1), message(2)]), 2);
            if producer.consumer_needs_wakeup() {
                producer_doorbell.store(true, Ordering::Relaxed);
            }
        });
        let asleep = consumer.prepare_to_sleep();
        producer_thread.join().unwrap();
        if asleep && !doorbell.load(Ordering::Relaxed) {
            panic!("lost wakeup: consumer asleep, batch published, no doorbell");
        }
        if asleep {
            consumer.finish_sleep();
        }
        let mut out = [Message::zeroed(); 2];
        assert_eq!(consumer.pop_into(&mut out), 2);
        assert_eq!(out, [message(1), message(2)]);
    });
}

/// Lost-wakeup check: the consumer finds the ring empty and goes to sleep
/// (if `prepare_to_sleep` allows) while the producer publishes and decides
/// on a doorbell. In no interleaving may the consumer end up asleep with a
/// message waiting and no doorbell rung.
#[test]
fn wake_flag_never_loses_a_wakeup() {
    model(|| {
        let (mut producer, mut consumer) = ring::<2>(0);
        let doorbell = std::sync::Arc::new(AtomicBool::new(false));
        let producer_doorbell = doorbell.clone();
        let producer_thread = thread::spawn(move || {
            producer.push(&message(7)).unwrap();
            if producer.consumer_needs_wakeup() {
                producer_doorbell.store(true, Ordering::Relaxed);
            }
        });
        let asleep = match consumer.pop() {
            Some(copy) => {
                assert_eq!(copy, message(7));
                false
            }
            None => consumer.prepare_to_sleep(),
        };
        producer_thread.join().unwrap();
        if asleep && !doorbell.load(Ordering::Relaxed) {
            // Sleeping with no doorbell is only fine if nothing was waiting.
            panic!("lost wakeup: consumer asleep, message published, no doorbell");
        }
        if asleep {
            consumer.finish_sleep();
        }
    });
}

/// Room protocol (the mover waiting for room in an inbox): the producer
/// finds the ring full, announces it and looks once more; the consumer
/// takes the message and, finding the ring empty, checks the announcement.
/// In no interleaving may the producer sleep on a full ring whose consumer
/// freed a slot without waking it.
#[test]
fn room_wanted_never_loses_a_wakeup() {
    model(|| {
        let (mut producer, mut consumer) = ring::<1>(0);
        let woken = std::sync::Arc::new(AtomicBool::new(false));
        let consumer_woken = woken.clone();
        let consumer_thread = thread::spawn(move || {
            loop {
                if let Some(copy) = consumer.pop() {
                    assert_eq!(copy, message(0));
                    break;
                }
                thread::yield_now();
            }
            if consumer.pop().is_none() && consumer.room_check_due() && consumer.producer_waits_for_room() {
                consumer_woken.store(true, Ordering::Relaxed);
            }
        });
        producer.push(&message(0)).unwrap();
        let asleep = match producer.push(&message(1)) {
            Ok(()) => false,
            Err(_) => {
                producer.wait_for_room();
                match producer.push(&message(1)) {
                    Ok(()) => {
                        producer.stop_waiting_for_room();
                        false
                    }
                    Err(_) => true,
                }
            }
        };
        consumer_thread.join().unwrap();
        if asleep && !woken.load(Ordering::Relaxed) {
            panic!("lost wakeup: producer asleep on a full ring, consumer took the message, nobody woke it");
        }
    });
}

/// Without the consumer's fence the room protocol loses wake-ups (the
/// store-buffering litmus): shows the model check can fail.
#[test]
fn room_wanted_without_consumer_fence_loses_wakeups() {
    let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = lost.clone();
    model(move || {
        let consumer_index = std::sync::Arc::new(AtomicU64::new(0));
        let room = std::sync::Arc::new(AtomicU64::new(0));
        let (c, r) = (consumer_index.clone(), room.clone());
        let consumer_thread = thread::spawn(move || {
            c.store(1, Ordering::Release); // release the slot
            r.load(Ordering::Relaxed) != 0 // no fence before the check
        });
        room.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let full = consumer_index.load(Ordering::Acquire) == 0;
        let woke = consumer_thread.join().unwrap();
        if full && !woke {
            seen.store(true, std::sync::atomic::Ordering::Relaxed);
        }
    });
    assert!(lost.load(std::sync::atomic::Ordering::Relaxed), "loom found no lost wake-up without the fence");
}

/// At most one doorbell per sleep, and one whenever it is needed, with two
/// publishes racing the consumer's sleep.
#[test]
fn wake_flag_rings_at_most_once_per_sleep() {
    model(|| {
        let (mut producer, mut consumer) = ring::<2>(0);
        let doorbells = std::sync::Arc::new(AtomicU64::new(0));
        let producer_doorbells = doorbells.clone();
        let producer_thread = thread::spawn(move || {
            for sequence in 0..2 {
                producer.push(&message(sequence)).unwrap();
                if producer.consumer_needs_wakeup() {
                    producer_doorbells.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        let asleep = consumer.prepare_to_sleep();
        producer_thread.join().unwrap();
        let rung = doorbells.load(Ordering::Relaxed);
        assert!(rung <= 1, "two doorbells for one sleep");
        assert!(!asleep || rung == 1, "lost wakeup");
    });
}

/// Shows that the model can see the lost wakeup: the same protocol written
/// out by hand *without* the SeqCst fences must fail under loom.
#[test]
#[should_panic(expected = "lost wakeup")]
fn wake_flag_without_fences_loses_wakeups() {
    model(|| {
        let producer_index = std::sync::Arc::new(AtomicU64::new(0));
        let wake_state = std::sync::Arc::new(AtomicU64::new(0));
        let (index, wake) = (producer_index.clone(), wake_state.clone());
        let producer_thread = thread::spawn(move || {
            index.store(1, Ordering::Release);
            // (missing: fence(SeqCst))
            wake.load(Ordering::Relaxed) != 0
        });
        wake_state.store(1, Ordering::Relaxed);
        // (missing: fence(SeqCst))
        let asleep = producer_index.load(Ordering::Acquire) == 0;
        let doorbell = producer_thread.join().unwrap();
        assert!(!asleep || doorbell, "lost wakeup");
    });
}

/// The same hand-written protocol *with* both fences passes: the fences are
/// what the crate's protocol relies on, and loom models them.
#[test]
fn wake_flag_with_fences_keeps_wakeups() {
    model(|| {
        let producer_index = std::sync::Arc::new(AtomicU64::new(0));
        let wake_state = std::sync::Arc::new(AtomicU64::new(0));
        let (index, wake) = (producer_index.clone(), wake_state.clone());
        let producer_thread = thread::spawn(move || {
            index.store(1, Ordering::Release);
            fence(Ordering::SeqCst);
            wake.load(Ordering::Relaxed) != 0
        });
        wake_state.store(1, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let asleep = producer_index.load(Ordering::Acquire) == 0;
        let doorbell = producer_thread.join().unwrap();
        assert!(!asleep || doorbell, "lost wakeup");
    });
}

/// The mover's two-level sleep (kernel `power::mover_sleep`): the mover
/// sets its own wake word, announces sleep on every outbox, and sleeps only
/// if its wake word still says SLEEPING; a sender publishes, checks the
/// outbox's wake word, and on SLEEPING swaps the mover's word to AWAKE and
/// rings only if it was SLEEPING. In no interleaving may the mover be
/// asleep with a message in an outbox and no doorbell rung.
#[test]
fn mover_two_level_sleep_never_loses_a_wakeup() {
    mover_two_level_sleep(true);
}

/// The same with the mover's own word set *after* the outbox announcements:
/// a sender can then swap it while it still says AWAKE and ring nobody, so
/// the order in `power::mover_sleep` matters, and the model sees it.
#[test]
#[should_panic(expected = "lost wakeup")]
fn mover_word_set_after_the_announcements_loses_wakeups() {
    mover_two_level_sleep(false);
}

fn mover_two_level_sleep(mover_word_first: bool) {
    const AWAKE: u64 = 0;
    const SLEEPING: u64 = 1;
    model(move || {
        let (mut sender_outbox, mut outbox_a) = ring::<2>(0);
        let (_idle_producer, mut outbox_b) = ring::<2>(0);
        let mover_wake = std::sync::Arc::new(AtomicU64::new(AWAKE));
        let doorbell = std::sync::Arc::new(AtomicBool::new(false));
        let (sender_wake, sender_doorbell) = (mover_wake.clone(), doorbell.clone());
        let sender = thread::spawn(move || {
            sender_outbox.push(&message(3)).unwrap();
            if sender_outbox.consumer_needs_wakeup() && sender_wake.swap(AWAKE, Ordering::SeqCst) == SLEEPING {
                sender_doorbell.store(true, Ordering::Relaxed);
            }
        });
        if mover_word_first {
            mover_wake.store(SLEEPING, Ordering::SeqCst);
        }
        let mut announced = 0;
        let mut all_empty = true;
        for outbox in [&mut outbox_a, &mut outbox_b] {
            match outbox.prepare_to_sleep_untrusted() {
                Ok(true) => announced += 1,
                Ok(false) => {
                    all_empty = false;
                    break;
                }
                Err(err) => panic!("a sane ring read as corrupt: {err:?}"),
            }
        }
        if !mover_word_first {
            mover_wake.store(SLEEPING, Ordering::SeqCst);
        }
        let asleep = all_empty && mover_wake.load(Ordering::SeqCst) == SLEEPING;
        sender.join().unwrap();
        if asleep && !doorbell.load(Ordering::Relaxed) {
            panic!("lost wakeup: mover asleep, message in an outbox, no doorbell");
        }
        for outbox in [&mut outbox_a, &mut outbox_b].into_iter().take(announced) {
            outbox.finish_sleep();
        }
        mover_wake.store(AWAKE, Ordering::Relaxed);
        assert_eq!(outbox_a.pop(), Some(message(3)), "the message is still there");
    });
}
