//! Sends numbered messages to `echo` and checks every reply (sequence and
//! payload); prints round-trip statistics in TSC cycles and nanoseconds.
//!
//! args: `count=N` (default 1000), `warmup=N` (default 100),
//! `bad_endpoint=E` also sends N messages to endpoint E (which it should
//! not hold) and checks each comes back as a bounce,
//! `stop=0` leaves echo running at the end (default: ask it to stop),
//! `interval_us=N` waits N microseconds before each ping (a low message
//! rate, so the echo core gets to sleep), `sweep_ns=N` adds a delay that
//! steps through 0..N ns over `sweep_steps` (default 256) consecutive
//! pings, so that the sends land at every point of echo's (and the
//! mover's) way to sleep (the lost-wake-up race test), `stuck_ms=M` counts a reply that
//! took longer than M ms (default 1000) as an error, `lost_ms=L` gives up
//! on a reply after L ms (default 10 000): it is reported lost, the cores'
//! state is printed, echo is told to stop and ping exits with code 3 (a
//! lost wake-up fails fast instead of hanging the run), `power_report=1` asks
//! the kernel for the runtime power view once the round trips are done.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::{Channel, Message, abi};

userlib::server_main!(run);

const STOP: u32 = u32::MAX;
const PING: u32 = 1;
const MAX_SAMPLES: usize = userlib::measure::SAMPLE_BUFFER_LEN;

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
    let sweep_ns = userlib::arg_u64("sweep_ns", 0);
    let sweep_steps = userlib::arg_u64("sweep_steps", 256).max(1);
    // Delay of sweep step k, in TSC ticks: k * sweep_ns / sweep_steps ns.
    let tsc_hz = userlib::tsc_hz();
    let sweep_ticks = |k: u64| {
        (u128::from(k) * u128::from(sweep_ns) * u128::from(tsc_hz) / (u128::from(sweep_steps) * 1_000_000_000)) as u64
    };
    let stuck_cycles = userlib::arg_u64("stuck_ms", 1000) * (tsc_hz / 1000);
    let lost_ms = userlib::arg_u64("lost_ms", 10_000);
    let lost_cycles = lost_ms * (tsc_hz / 1000);
    let mut stuck = 0u64;
    let echo_badge = channel.info().endpoint_badges[echo as usize];
    let mut errors = 0u64;
    let Some(samples) = userlib::measure::take_sample_buffer() else {
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
        if sweep_ns > 0 {
            userlib::spin_ticks(sweep_ticks(round as u64 % sweep_steps));
        }
        let start = userlib::rdtsc();
        channel.send_message(&message);
        let Some(reply) = wait_reply(&mut channel, start, lost_cycles) else {
            userlib::log!("reply to {sequence} not received after {lost_ms} ms: lost; the cores' state follows");
            userlib::power_report();
            // A wake-up for the stop message may still get echo going.
            let _ = channel.send(echo, STOP, b"");
            return 3;
        };
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
        if reply.sender_badge != echo_badge || reply.sequence != sequence || reply.payload_bytes() != payload(sequence)
        {
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
    let hz = tsc_hz.max(1);
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
            "{stuck} replies took longer than the stuck bound; interval {interval_us} us; sweep 0..{sweep_ns} ns in {sweep_steps} steps; this core slept {} times",
            channel.idler().counts().slept
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

/// The next message, or `None` if none arrived within `lost_cycles` of
/// `start`. Polls with `pause` whatever its core's sleep policy says (a
/// sleeping wait could not notice the deadline) and reads the clock every
/// 256 empty polls.
fn wait_reply(channel: &mut Channel, start: u64, lost_cycles: u64) -> Option<Message> {
    let mut polls = 0u32;
    loop {
        if let Some(message) = channel.try_recv() {
            return Some(message);
        }
        polls = polls.wrapping_add(1);
        if polls.is_multiple_of(256) && userlib::rdtsc().wrapping_sub(start) > lost_cycles {
            return None;
        }
        core::hint::spin_loop();
    }
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
    userlib::log!(
        "{n} messages to endpoint {endpoint}: {} bounced with `no capability`, {errors} wrong",
        n as u64 - errors
    );
    errors
}
