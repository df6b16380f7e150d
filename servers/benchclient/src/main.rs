//! The client side of the in-guest IPC benchmark (`cargo xtask bench`):
//! round trips to `echo` through the mover with 2..64 rings on the mover,
//! then streams to `echo` (as a sink) unbatched and batched. Every reply
//! and every stream message is checked; results are printed as `BENCH`
//! lines for the host, with the kernel's per-core counters around the
//! main phases.
//!
//! args: `rtt=N` round trips per ring count (default 20000),
//! `stream=N` messages per stream (default 200000).
//!
//! With `power=<policy>` it runs the power benchmark instead (one boot per
//! policy, `qemu-scripts/systems/power-bench/*.toml`): round trips
//! back-to-back and at one message per 10 µs, 100 µs and 1 ms, each reply
//! stamped by echo with the TSC at which it was handled (the wake-up
//! latency), and the kernel's per-core sleep/pause counters around each
//! rate.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::{SAMPLE_BUFFER_LEN, elapsed, label, payload, stats, take_sample_buffer};
use userlib::{bench_extra_rings, bench_mark};
use userlib::{Channel, Message};

userlib::server_main!(run);

/// Rings on the mover: this server's and echo's outboxes, plus extras.
const BASE_RINGS: usize = 2;
const RING_COUNTS: [usize; 6] = [2, 4, 8, 16, 32, 64];
const WARMUP: usize = 1000;

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(echo) = channel.endpoint_named("echo") else {
        userlib::log!("no endpoint called `echo`");
        return 1;
    };
    let echo_badge = channel.info().endpoint_badges[echo as usize];
    let iterations = (userlib::arg_u64("rtt", 20_000) as usize).min(SAMPLE_BUFFER_LEN);
    let stream = userlib::arg_u64("stream", 200_000);
    let Some(samples) = take_sample_buffer() else { return 1 };
    if let Some(policy) = userlib::arg("power") {
        return power_benchmark(&mut channel, echo, echo_badge, policy, samples);
    }

    for rings in RING_COUNTS {
        bench_extra_rings(rings - BASE_RINGS);
        let counted = rings == BASE_RINGS;
        let (mut ok, mut kept, mut backwards) = (0u64, 0usize, 0u64);
        for round in 0..WARMUP + iterations {
            if counted && round == WARMUP {
                bench_mark("mover-rtt", true);
            }
            let sequence = round as u32;
            let mut message = Message::new(echo, label::PING, &payload(sequence)).expect("40 bytes fit");
            message.sequence = sequence;
            let start = userlib::rdtsc();
            channel.send_message(&message);
            let reply = channel.recv();
            let end = userlib::rdtsc();
            if round >= WARMUP {
                match elapsed(start, end) {
                    Some(cycles) => {
                        samples[kept] = cycles;
                        kept += 1;
                    }
                    None => backwards += 1,
                }
                let good = reply.sender_badge == echo_badge
                    && reply.sequence == sequence
                    && reply.payload_bytes() == payload(sequence);
                ok += u64::from(good);
            }
        }
        if counted {
            bench_mark("mover-rtt", false);
        }
        let (median, p99, min, max) = stats(&mut samples[..kept]);
        userlib::log!(
            "BENCH latency name=mover-rtt rings={rings} extra=empty n={iterations} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok} tsc_backwards={backwards}"
        );
    }

    for (batch, rings) in [(1usize, 2usize), (8, 2), (32, 2), (1, 64)] {
        bench_extra_rings(rings - BASE_RINGS);
        let phase_counted = batch == 1 && rings == BASE_RINGS;
        let _ = channel.send(echo, label::SINK_START, b"");
        if phase_counted {
            bench_mark("mover-stream", true);
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
        let cycles = elapsed(start, userlib::rdtsc());
        if phase_counted {
            bench_mark("mover-stream", false);
        }
        let mut good = [0u8; 8];
        good.copy_from_slice(&reply.payload_bytes()[..8]);
        let ok = u64::from_le_bytes(good);
        match cycles {
            Some(cycles) => userlib::log!(
                "BENCH stream name=mover-stream batch={batch} rings={rings} extra=empty n={stream} cycles={cycles} ok={ok} tsc_backwards=0"
            ),
            // The whole stream is one sample: without a time it has no rate.
            None => userlib::log!(
                "BENCH dropped kind=stream name=mover-stream batch={batch} rings={rings} extra=empty n={stream} ok={ok} tsc_backwards=1"
            ),
        }
    }
    bench_extra_rings(0);
    let _ = channel.send(echo, label::STOP, b"");
    0
}

/// Rates of the power benchmark: (microseconds between sends, round trips).
/// 0 = back-to-back (continuous load).
const POWER_RATES: [(u64, usize); 4] = [(0, 5000), (10, 2000), (100, 2000), (1000, 500)];

/// Round trips at each rate of `POWER_RATES`, with echo's receive stamp.
fn power_benchmark(channel: &mut Channel, echo: u32, echo_badge: u64, policy: &str, samples: &mut [u64]) -> i32 {
    let tsc_per_us = userlib::tsc_hz() / 1_000_000;
    let half = samples.len() / 2;
    let (rtts, wakeups) = samples.split_at_mut(half);
    // Warm-up: caches, TLBs, and the policies' state machines.
    for sequence in 0..WARMUP as u32 {
        let mut message = Message::new(echo, label::PING_STAMPED, &payload(sequence)).expect("40 bytes fit");
        message.sequence = sequence;
        channel.send_message(&message);
        let _ = channel.recv();
    }
    for (interval_us, wanted) in POWER_RATES {
        let n = wanted.min(half);
        let phase = match interval_us {
            0 => "power-0us",
            10 => "power-10us",
            100 => "power-100us",
            _ => "power-1000us",
        };
        let (mut ok, mut rtt_kept, mut rtt_backwards) = (0u64, 0usize, 0u64);
        let (mut wakeup_kept, mut wakeup_backwards) = (0usize, 0u64);
        bench_mark(phase, true);
        let mut next_send = userlib::rdtsc();
        for round in 0..n {
            if interval_us > 0 {
                // Busy-wait to the next slot: the client is the load
                // generator and spins by design.
                next_send = next_send.wrapping_add(interval_us * tsc_per_us);
                while (userlib::rdtsc().wrapping_sub(next_send) as i64) < 0 {
                    core::hint::spin_loop();
                }
            }
            let sequence = (WARMUP + round) as u32;
            let mut message = Message::new(echo, label::PING_STAMPED, &payload(sequence)).expect("40 bytes fit");
            message.sequence = sequence;
            let start = userlib::rdtsc();
            channel.send_message(&message);
            let reply = channel.recv();
            let end = userlib::rdtsc();
            match elapsed(start, end) {
                Some(cycles) => {
                    rtts[rtt_kept] = cycles;
                    rtt_kept += 1;
                }
                None => rtt_backwards += 1,
            }
            let bytes = reply.payload_bytes();
            let mut stamp = [0u8; 8];
            if bytes.len() == 40 {
                stamp.copy_from_slice(&bytes[..8]);
            }
            let handled = u64::from_le_bytes(stamp);
            // Echo's stamp comes from another core's TSC: a stamp before the
            // send or after the reply arrived means the two TSCs disagree
            // (or time went backwards); the sample is dropped and counted.
            match elapsed(start, handled).filter(|_| handled <= end) {
                Some(cycles) => {
                    wakeups[wakeup_kept] = cycles;
                    wakeup_kept += 1;
                }
                None => wakeup_backwards += 1,
            }
            let good = reply.sender_badge == echo_badge
                && reply.label == label::PING_STAMPED
                && reply.sequence == sequence
                && bytes.len() == 40
                && bytes[8..] == payload(sequence)[8..];
            ok += u64::from(good);
        }
        bench_mark(phase, false);
        let (median, p99, min, max) = stats(&mut rtts[..rtt_kept]);
        userlib::log!(
            "BENCH latency name=power-rtt policy={policy} interval_us={interval_us} n={n} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok} tsc_backwards={rtt_backwards}"
        );
        let (median, p99, min, max) = stats(&mut wakeups[..wakeup_kept]);
        userlib::log!(
            "BENCH latency name=power-wakeup policy={policy} interval_us={interval_us} n={n} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} tsc_backwards={wakeup_backwards}"
        );
    }
    let _ = channel.send(echo, label::STOP, b"");
    0
}
