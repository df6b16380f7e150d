//! The measuring end of the user<->user direct-ring test (`IPC0002`) and
//! the floor for the mover's IPC figure: round trips to `ring-pong` over
//! two direct rings (`ping-to-pong`, `pong-to-ping`) with no mover in
//! between, every reply checked (label, sequence, payload); then streams of
//! messages in batches of 1, 8 and 32 that `ring-pong` checks and counts.
//! Results are `BENCH` lines in the format of `benchclient`'s, with kernel
//! counter phases (`bench_mark`) around the timed round trips and the
//! batch-1 stream.
//!
//! The peer is treated as hostile: `*_untrusted` calls only, every reply
//! validated on its private copy; a peer that lies about its index ends
//! the run with exit code 2.
//!
//! args: `rtt=N` round trips (default 20000, at most the sample buffer),
//! `warmup=N` untimed round trips first (default 1000), `stream=N`
//! messages per stream (default 200000).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::{SAMPLE_BUFFER_LEN, label, payload, stats, take_sample_buffer};
use userlib::{Consumer, DirectRing, Message, Producer, RingError, bench_mark};

userlib::server_main!(run);

const STREAM_BATCHES: [usize; 3] = [1, 8, 32];
/// Kernel counter phases around the timed round trips and the first
/// stream (`bench_mark`; refused outside benchmark boots): the report
/// checks that neither entered the kernel (`bench/src/ipc/paths.rs`).
const PHASE_RTT: &str = "direct-ring-user-rtt";
const PHASE_STREAM: &str = "direct-ring-user-stream";

fn run() -> i32 {
    let (mut to_pong, mut from_pong) = match (DirectRing::producer("ping-to-pong"), DirectRing::consumer("pong-to-ping")) {
        (Ok(p), Ok(c)) => (p, c),
        (p, c) => {
            userlib::log!("cannot attach the direct rings: {:?}, {:?}", p.err(), c.err());
            return 1;
        }
    };
    let rtt = (userlib::arg_u64("rtt", 20_000) as usize).min(SAMPLE_BUFFER_LEN);
    let warmup = userlib::arg_u64("warmup", 1000) as usize;
    let stream = userlib::arg_u64("stream", 200_000);
    let Some(samples) = take_sample_buffer() else { return 1 };
    match benchmark(&mut to_pong, &mut from_pong, rtt, warmup, stream, samples) {
        Ok(bad) => i32::from(bad != 0),
        Err(e) => {
            userlib::log!("peer misbehaved: {e}");
            let _ = send(&mut to_pong, &message(label::STOP, 0));
            2
        }
    }
}

/// Runs both measurements; returns how many replies or streamed messages
/// were wrong (0 when all is well).
fn benchmark(
    to_pong: &mut Producer<'static>,
    from_pong: &mut Consumer<'static>,
    rtt: usize,
    warmup: usize,
    stream: u64,
    samples: &mut [u64],
) -> Result<u64, RingError> {
    let mut bad = 0u64;
    let mut ok = 0u64;
    for round in 0..warmup + rtt {
        if round == warmup {
            bench_mark(PHASE_RTT, true);
        }
        let sequence = round as u32;
        let request = message(label::PING, sequence);
        let start = userlib::rdtsc();
        send(to_pong, &request)?;
        let reply = recv(from_pong)?;
        let end = userlib::rdtsc();
        let good = reply.validate().is_ok()
            && reply.label == label::PING
            && reply.sequence == sequence
            && reply.payload_bytes() == payload(sequence);
        if round >= warmup {
            samples[round - warmup] = end.wrapping_sub(start);
            ok += u64::from(good);
        }
        bad += u64::from(!good);
    }
    bench_mark(PHASE_RTT, false);
    let (median, p99, min, max) = stats(&mut samples[..rtt]);
    userlib::log!(
        "BENCH latency name=user-direct-ring-rtt n={rtt} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok}"
    );
    userlib::log!("{} round trips over direct rings, {bad} bad replies", warmup + rtt);

    for batch in STREAM_BATCHES {
        send(to_pong, &message(label::SINK_START, 0))?;
        let counted = batch == STREAM_BATCHES[0];
        if counted {
            bench_mark(PHASE_STREAM, true);
        }
        let start = userlib::rdtsc();
        let mut next: u64 = 0;
        while next < stream {
            let want = batch.min((stream - next) as usize);
            let mut slots = match to_pong.reserve_untrusted(want) {
                Ok(slots) => slots,
                Err(RingError::Full) => {
                    core::hint::spin_loop();
                    continue;
                }
                Err(e) => return Err(e),
            };
            for _ in 0..slots.len() {
                let sequence = next as u32;
                // Cannot fail: we write at most `slots.len()` messages.
                let _ = slots.write_next(&message(label::SINK, sequence));
                next += 1;
            }
            slots.commit();
        }
        send(to_pong, &message(label::SINK_FLUSH, 0))?;
        let reply = loop {
            let reply = recv(from_pong)?;
            if reply.validate().is_ok() && reply.label == label::SINK_FLUSH && reply.payload_len == 8 {
                break reply;
            }
            bad += 1;
        };
        let cycles = userlib::rdtsc().wrapping_sub(start);
        if counted {
            bench_mark(PHASE_STREAM, false);
        }
        let mut count = [0u8; 8];
        count.copy_from_slice(&reply.payload_bytes()[..8]);
        let ok = u64::from_le_bytes(count);
        bad += stream.abs_diff(ok);
        userlib::log!("BENCH stream name=user-direct-ring-stream batch={batch} n={stream} cycles={cycles} ok={ok}");
    }
    send(to_pong, &message(label::STOP, 0))?;
    Ok(bad)
}

/// Message `sequence` of the benchmark protocol (`userlib::measure`).
fn message(label: u32, sequence: u32) -> Message {
    let mut message = Message::new(0, label, &payload(sequence)).unwrap_or(Message::zeroed());
    message.sequence = sequence;
    message
}

/// Pushes `message`, spinning while the ring is full.
fn send(ring: &mut Producer<'static>, message: &Message) -> Result<(), RingError> {
    loop {
        match ring.push_untrusted(message) {
            Err(RingError::Full) => core::hint::spin_loop(),
            other => return other,
        }
    }
}

/// Pops the next message (a private copy, still to be validated),
/// spinning while the ring is empty.
fn recv(ring: &mut Consumer<'static>) -> Result<Message, RingError> {
    loop {
        match ring.pop_untrusted() {
            Err(RingError::Empty) => core::hint::spin_loop(),
            other => return other,
        }
    }
}
