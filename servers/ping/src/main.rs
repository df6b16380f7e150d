//! Sends numbered messages to `echo` and checks every reply (sequence and
//! payload); prints round-trip statistics in TSC cycles and nanoseconds.
//!
//! args: `count=N` (default 1000), `warmup=N` (default 100),
//! `bad_endpoint=E` also sends N messages to endpoint E (which it should
//! not hold) and checks each comes back as a bounce,
//! `stop=0` leaves echo running at the end (default: ask it to stop),
//! `interval_us=N` waits N microseconds before each ping (a low message
//! rate, so the echo core gets to sleep), `stuck_ms=M` counts a reply that
//! took longer than M ms (default 1000) as an error, `power_report=1` asks
//! the kernel for the runtime power view once the round trips are done.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::{Channel, Message, abi};

userlib::server_main!(run);

const STOP: u32 = u32::MAX;
const PING: u32 = 1;
const MAX_SAMPLES: usize = userlib::SAMPLE_BUFFER_LEN;

fn payload(sequence: u32) -> [u8; 16] {
    let mut p = [0u8; 16];
    p[..4].copy_from_slice(&sequence.to_le_bytes());
    p[4..8].copy_from_slice(&(!sequence).to_le_bytes());
    p[8..16].copy_from_slice(&(u64::from(sequence).wrapping_mul(0x9e37_79b9_7f4a_7c15)).to_le_bytes());
    p
}

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(echo) = channel.endpoint_named("echo") else {
        userlib::log!("no endpoint called `echo`");
        return 1;
    };
    let count = userlib::arg_u64("count", 1000) as usize;
    // Every reply is checked; the first `timed` are kept for the distribution.
    let timed = count.min(MAX_SAMPLES);
    let warmup = userlib::arg_u64("warmup", 100) as usize;
    let interval_us = userlib::arg_u64("interval_us", 0);
    let stuck_cycles = userlib::arg_u64("stuck_ms", 1000) * (userlib::tsc_hz() / 1000);
    let mut stuck = 0u64;
    let echo_badge = channel.info().endpoint_badges[echo as usize];
    let mut errors = 0u64;
    let Some(samples) = userlib::take_sample_buffer() else {
        userlib::log!("sample buffer already taken");
        return 1;
    };
    for round in 0..warmup + count {
        let sequence = round as u32;
        let mut message = Message::new(echo, PING, &payload(sequence)).expect("16 bytes fit");
        message.sequence = sequence;
        if interval_us > 0 {
            userlib::spin_us(interval_us);
        }
        let start = userlib::rdtsc();
        channel.send_message(&message);
        let reply = channel.recv();
        let end = userlib::rdtsc();
        if end.wrapping_sub(start) > stuck_cycles {
            stuck += 1;
            if stuck == 1 {
                // The first stuck reply: show every core's power state
                // (sleeps, time asleep) while it is fresh.
                userlib::log!("reply to {sequence} took longer than the stuck bound; the cores' state follows");
                userlib::power_report();
            }
        }
        if reply.sender_badge != echo_badge || reply.sequence != sequence || reply.payload_bytes() != payload(sequence) {
            errors += 1;
            if errors <= 5 {
                userlib::log!(
                    "bad reply to {sequence}: badge {} sequence {} label {}",
                    reply.sender_badge,
                    reply.sequence,
                    reply.label
                );
            }
        }
        if round >= warmup && round - warmup < timed {
            samples[round - warmup] = end.wrapping_sub(start);
        }
    }
    let samples = &mut samples[..timed];
    samples.sort_unstable();
    let hz = userlib::tsc_hz().max(1);
    let ns = |cycles: u64| cycles * 1_000_000_000 / hz;
    if timed > 0 {
        let median = samples[timed / 2];
        let p99 = samples[(timed * 99 / 100).min(timed - 1)];
        userlib::log!(
            "{count} round trips through the mover: median {} ns ({} cycles), p99 {} ns, min {} ns, {errors} bad replies (distribution of the first {timed})",
            ns(median),
            median,
            ns(p99),
            ns(samples[0])
        );
        userlib::log!(
            "{stuck} replies took longer than the stuck bound; interval {interval_us} us; this core slept {} times",
            channel.sleeps
        );
    }
    errors += stuck;
    if userlib::arg("power_report") == Some("1") {
        userlib::power_report();
    }
    if let Some(bad) = userlib::arg("bad_endpoint").and_then(|v| v.parse::<u32>().ok()) {
        errors += check_bounces(&mut channel, bad, count.min(1000));
    }
    if userlib::arg("stop") != Some("0") {
        let _ = channel.send(echo, STOP, b"");
    }
    if errors == 0 { 0 } else { 2 }
}

/// Sends `n` messages to an endpoint this server does not hold; each must
/// come back from the kernel with reason NO_CAPABILITY, in order.
fn check_bounces(channel: &mut Channel, endpoint: u32, n: usize) -> u64 {
    let mut errors = 0;
    for i in 0..n as u32 {
        let mut message = Message::new(endpoint, PING, &payload(i)).expect("fits");
        message.sequence = 1_000_000 + i;
        channel.send_message(&message);
        let back = channel.recv();
        if back.sender_badge != 0 || back.label != abi::bounce::NO_CAPABILITY || back.sequence != 1_000_000 + i {
            errors += 1;
        }
    }
    userlib::log!("{n} messages to endpoint {endpoint}: {} bounced with `no capability`, {errors} wrong", n as u64 - errors);
    errors
}
