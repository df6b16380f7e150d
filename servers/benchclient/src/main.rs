//! The client side of the in-guest IPC benchmark (`cargo xtask bench`):
//! round trips to `echo` through the mover with 2..64 rings on the mover,
//! then streams to `echo` (as a sink) unbatched and batched. Every reply
//! and every stream message is checked; results are printed as `BENCH`
//! lines for the host, with the kernel's per-core counters around the
//! main phases.
//!
//! args: `rtt=N` round trips per ring count (default 20000),
//! `stream=N` messages per stream (default 200000).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::bench::{label, mark, payload, set_extra_rings, stats};
use userlib::{Channel, Message};

userlib::server_main!(run);

/// Rings on the mover: this server's and echo's outboxes, plus extras.
const BASE_RINGS: usize = 2;
const RING_COUNTS: [usize; 6] = [2, 4, 8, 16, 32, 64];
const WARMUP: usize = 1000;

fn run() -> i32 {
    let mut channel = match Channel::open() {
        Ok(c) => c,
        Err(e) => {
            userlib::log!("cannot open channel: {e:?}");
            return 1;
        }
    };
    let Some(echo) = channel.endpoint_named("echo") else {
        userlib::log!("no endpoint called `echo`");
        return 1;
    };
    let echo_badge = channel.info().endpoint_badges[echo as usize];
    let iterations = (userlib::arg_u64("rtt", 20_000) as usize).min(userlib::SAMPLE_BUFFER_LEN);
    let stream = userlib::arg_u64("stream", 200_000);
    let Some(samples) = userlib::take_sample_buffer() else { return 1 };

    for rings in RING_COUNTS {
        set_extra_rings(rings - BASE_RINGS);
        let counted = rings == BASE_RINGS;
        let mut ok = 0u64;
        for round in 0..WARMUP + iterations {
            if counted && round == WARMUP {
                mark("mover-rtt", true);
            }
            let sequence = round as u32;
            let mut message = Message::new(echo, label::PING, &payload(sequence)).expect("40 bytes fit");
            message.sequence = sequence;
            let start = userlib::rdtsc();
            channel.send_message(&message);
            let reply = channel.recv();
            let end = userlib::rdtsc();
            if round >= WARMUP {
                samples[round - WARMUP] = end.wrapping_sub(start);
                let good = reply.sender_badge == echo_badge
                    && reply.sequence == sequence
                    && reply.payload_bytes() == payload(sequence);
                ok += u64::from(good);
            }
        }
        if counted {
            mark("mover-rtt", false);
        }
        let (median, p99, min, max) = stats(&mut samples[..iterations]);
        userlib::log!(
            "BENCH latency name=mover-rtt rings={rings} n={iterations} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok}"
        );
    }

    for (batch, rings) in [(1usize, 2usize), (8, 2), (32, 2), (1, 64)] {
        set_extra_rings(rings - BASE_RINGS);
        let phase_counted = batch == 1 && rings == BASE_RINGS;
        let _ = channel.send(echo, label::SINK_START, b"");
        if phase_counted {
            mark("mover-stream", true);
        }
        let start = userlib::rdtsc();
        let mut buffer = [Message::zeroed(); 32];
        let mut next: u64 = 0;
        while next < stream {
            let n = batch.min((stream - next) as usize);
            for (i, m) in buffer[..n].iter_mut().enumerate() {
                let sequence = (next + i as u64) as u32;
                *m = Message::new(echo, label::SINK, &payload(sequence)).expect("fits");
                m.sequence = sequence;
            }
            let mut sent = 0;
            loop {
                sent += channel.send_batch(&buffer[sent..n]);
                if sent == n {
                    break;
                }
                core::hint::spin_loop();
            }
            next += n as u64;
        }
        let _ = channel.send(echo, label::SINK_FLUSH, b"");
        let reply = loop {
            let m = channel.recv();
            if m.label == label::SINK_FLUSH && m.sender_badge == echo_badge {
                break m;
            }
        };
        let cycles = userlib::rdtsc().wrapping_sub(start);
        if phase_counted {
            mark("mover-stream", false);
        }
        let mut good = [0u8; 8];
        good.copy_from_slice(&reply.payload_bytes()[..8]);
        let ok = u64::from_le_bytes(good);
        userlib::log!("BENCH stream name=mover-stream batch={batch} rings={rings} n={stream} cycles={cycles} ok={ok}");
    }
    set_extra_rings(0);
    let _ = channel.send(echo, label::STOP, b"");
    0
}
