//! One end of a message stream through the mover, for the exactly-once
//! tests and the stream benchmark. The same binary is a source or a sink:
//!
//! - `role=source to=NAME count=N batch=B`: sends N messages numbered
//!   0..N to endpoint NAME, B at a time (one publish per batch); each
//!   payload is derived from its number so the sink can check it.
//! - `role=sink from=NAME count=N`: receives until N messages from NAME
//!   have arrived; checks that numbers arrive in order with no gap and no
//!   duplicate and that every payload matches; reports and exits 0 only if
//!   all N were right.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::{Channel, Message};

userlib::server_main!(run);

const DATA: u32 = 7;
const MAX_BATCH: usize = 64;

fn payload(sequence: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    let mut x = u64::from(sequence).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    for chunk in p.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    p
}

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let count = userlib::arg_u64("count", 100_000);
    match userlib::arg("role") {
        Some("source") => source(&mut channel, count),
        Some("sink") => sink(&mut channel, count),
        _ => {
            userlib::log!("args must say role=source or role=sink");
            1
        }
    }
}

fn source(channel: &mut Channel, count: u64) -> i32 {
    let Some(to) = userlib::arg("to").and_then(|name| channel.endpoint_named(name)) else {
        userlib::log!("args `to=` must name an endpoint this server holds");
        return 1;
    };
    let batch = (userlib::arg_u64("batch", 1) as usize).clamp(1, MAX_BATCH);
    let mut messages = [Message::zeroed(); MAX_BATCH];
    let mut next: u64 = 0;
    let mut bounces: u64 = 0;
    let start = userlib::rdtsc();
    while next < count {
        let n = batch.min((count - next) as usize);
        for (i, m) in messages[..n].iter_mut().enumerate() {
            let sequence = (next + i as u64) as u32;
            *m = Message::new(to, DATA, &payload(sequence)).expect("40 bytes fit");
            m.sequence = sequence;
        }
        let mut sent = 0;
        while sent < n {
            let pushed = channel.send_batch(&messages[sent..n]);
            if pushed == 0 {
                core::hint::spin_loop();
            }
            sent += pushed;
            // Bounces would come back here; a healthy stream has none.
            while let Some(back) = channel.try_recv() {
                bounces += 1;
                if bounces <= 3 {
                    userlib::log!("bounce: reason {} for {}", back.label, back.sequence);
                }
            }
        }
        next += n as u64;
    }
    let cycles = userlib::rdtsc().wrapping_sub(start);
    userlib::log!("source sent {count} messages in batches of {batch} ({cycles} cycles), {bounces} bounces");
    if bounces == 0 { 0 } else { 3 }
}

fn sink(channel: &mut Channel, count: u64) -> i32 {
    let from_badge = userlib::arg("from")
        .and_then(|name| channel.endpoint_named(name))
        .map(|e| channel.info().endpoint_badges[e as usize]);
    let mut expected: u32 = 0;
    let (mut good, mut out_of_order, mut bad_payload, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    let mut buffer = [Message::zeroed(); MAX_BATCH];
    while good + out_of_order + bad_payload < count {
        let n = channel.recv_batch(&mut buffer);
        for m in &buffer[..n] {
            if Some(m.sender_badge) != from_badge || m.label != DATA {
                foreign += 1;
                continue;
            }
            if m.sequence != expected {
                out_of_order += 1;
                if out_of_order <= 3 {
                    userlib::log!("expected message {expected}, got {}", m.sequence);
                }
                expected = m.sequence.wrapping_add(1);
            } else if m.payload_bytes() != payload(m.sequence) {
                bad_payload += 1;
                expected = expected.wrapping_add(1);
            } else {
                good += 1;
                expected = expected.wrapping_add(1);
            }
        }
        if n == 0 {
            core::hint::spin_loop();
        }
    }
    let ok = good == count && foreign == 0;
    userlib::log!(
        "sink received {count} messages: {good} in order and intact, {out_of_order} out of order, {bad_payload} corrupt, {foreign} foreign: {}",
        if ok { "exactly once, in order" } else { "WRONG" }
    );
    if ok { 0 } else { 4 }
}
