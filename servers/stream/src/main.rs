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
//!
//! For the fault campaign (`docs/faults.md`): the source with
//! `until_peers_done=1` sends until every other server it holds an
//! endpoint to has stopped for good (a kernel notice that it exited with
//! code 0, or gave up) or `deadline_ms` (TSC time since boot) has passed,
//! then sends `END` with the number it sent; a sink that gets `END` stops
//! there (its `count` is then only an upper bound). Both count what is not
//! theirs (kernel bounces and notices, foreign messages) and go on. A sink
//! with `prod_us=U` sends an empty message every U microseconds to every
//! endpoint it holds but the source's (the injectors: a peer whose inbox
//! must fill when it hangs), never waiting for room. The sink ends with
//! `messages checked N, lost L, duplicated D, foreign F`.
//!
//! A sink with `pause_every=N pause_ms=M` stops taking messages for M ms
//! after every N it took: a slow receiver whose inbox fills, so that the
//! mover waits for room (`LIFE0003`, docs/life.md).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::{Channel, Message, abi};

userlib::server_main!(run);

const DATA: u32 = 7;
/// The source is done: payload = the number of messages it sent (u64 LE).
const END: u32 = 8;
/// The sink's prod (no payload): only there to fill a hung inbox.
const PROD: u32 = 9;
/// The label an injector's last incarnation sends to say it is done
/// (`servers/injector`; its garbage never carries it).
const INJECTOR_DONE: u32 = 0x494e_4a44;
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
    let (mut notices, mut foreign) = (0u64, 0u64);
    let until_peers_done = userlib::arg("until_peers_done") == Some("1");
    let deadline_ms = userlib::arg_u64("deadline_ms", 0);
    let ticks_per_ms = (userlib::tsc_hz() / 1000).max(1);
    let endpoint_count = (channel.info().endpoint_count as usize).min(abi::MAX_ENDPOINTS);
    let mut done = [false; abi::MAX_ENDPOINTS];
    done[to as usize] = true;
    let mut deadline_reached = false;
    let start = userlib::rdtsc();
    loop {
        if until_peers_done {
            if done[..endpoint_count].iter().all(|&d| d) {
                break;
            }
            if deadline_ms > 0 && userlib::rdtsc() / ticks_per_ms >= deadline_ms {
                deadline_reached = true;
                break;
            }
        } else if next >= count {
            break;
        }
        let count = if until_peers_done { next + batch as u64 } else { count };
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
            // Bounces would come back here (a healthy stream has none),
            // and notices and other servers' garbage.
            while let Some(back) = channel.try_recv() {
                if back.label == INJECTOR_DONE
                    && let Some(index) = abi::server_index_of_badge(back.sender_badge)
                    && let Some(endpoint) = (0..endpoint_count)
                        .find(|&e| abi::server_index_of_badge(channel.info().endpoint_badges[e]) == Some(index))
                {
                    done[endpoint] = true;
                } else if back.sender_badge != abi::KERNEL_BADGE {
                    foreign += 1;
                } else if back.label == abi::notice::LABEL {
                    notices += 1;
                    if let Some(n) = abi::notice::Notice::decode(back.payload_bytes())
                        && (n.kind == abi::notice::GAVE_UP
                            || (n.kind == abi::notice::STOPPED
                                && n.cause == abi::notice::CAUSE_EXITED
                                && n.detail == 0))
                        && (back.destination_endpoint as usize) < endpoint_count
                    {
                        done[back.destination_endpoint as usize] = true;
                    }
                } else {
                    bounces += 1;
                    if bounces <= 3 {
                        userlib::log!("bounce: reason {} for {}", back.label, back.sequence);
                    }
                }
            }
        }
        next += n as u64;
    }
    let cycles = userlib::rdtsc().wrapping_sub(start);
    let count = next;
    if until_peers_done {
        // Behind every data message in the outbox: the sink sees it last.
        let Ok(end) = Message::new(to, END, &count.to_le_bytes()) else { return 1 };
        channel.send_message(&end);
        userlib::log!(
            "source: {}; {notices} kernel notices, {foreign} foreign messages",
            if deadline_reached { "deadline reached before every peer was done" } else { "every peer is done" }
        );
    }
    userlib::log!("source sent {count} messages in batches of {batch} ({cycles} cycles), {bounces} bounces");
    if bounces == 0 && !deadline_reached { 0 } else { 3 }
}

fn sink(channel: &mut Channel, count: u64) -> i32 {
    let from = userlib::arg("from").and_then(|name| channel.endpoint_named(name));
    let from_badge = from.map(|e| channel.info().endpoint_badges[e as usize]);
    let prod_ticks = userlib::arg_u64("prod_us", 0) * (userlib::tsc_hz() / 1_000_000);
    // A slow receiver: after every `pause_every` messages it stops taking
    // any for `pause_ms` (its inbox fills and the mover waits for room).
    let pause_every = userlib::arg_u64("pause_every", 0);
    let pause_ticks = userlib::arg_u64("pause_ms", 0) * (userlib::tsc_hz() / 1_000);
    let mut next_pause = pause_every;
    let endpoint_count = channel.info().endpoint_count.min(abi::MAX_ENDPOINTS as u32);
    let mut last_prod = userlib::rdtsc();
    let mut expected: u32 = 0;
    let (mut good, mut out_of_order, mut bad_payload, mut foreign) = (0u64, 0u64, 0u64, 0u64);
    let (mut lost, mut duplicated, mut kernel, mut prods) = (0u64, 0u64, 0u64, 0u64);
    let mut total = count;
    let mut ended = false;
    let mut buffer = [Message::zeroed(); MAX_BATCH];
    while !ended && good + out_of_order + bad_payload < total {
        let n = channel.recv_batch(&mut buffer);
        for m in &buffer[..n] {
            if m.sender_badge == abi::KERNEL_BADGE {
                kernel += 1; // bounces of prods, notices
                continue;
            }
            if Some(m.sender_badge) != from_badge {
                foreign += 1;
                continue;
            }
            if m.label == END {
                // The source's last message: how many it sent.
                if let Ok(bytes) = <[u8; 8]>::try_from(m.payload_bytes()) {
                    total = u64::from_le_bytes(bytes);
                    lost += total.saturating_sub(u64::from(expected));
                }
                ended = true;
                continue;
            }
            if m.label != DATA {
                foreign += 1;
                continue;
            }
            if m.sequence != expected {
                out_of_order += 1;
                if out_of_order <= 3 {
                    userlib::log!("expected message {expected}, got {}", m.sequence);
                }
                if m.sequence > expected {
                    lost += u64::from(m.sequence - expected);
                } else {
                    duplicated += 1;
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
        if prod_ticks > 0 && userlib::rdtsc().wrapping_sub(last_prod) > prod_ticks {
            last_prod = userlib::rdtsc();
            for endpoint in (0..endpoint_count).filter(|&e| Some(e) != from) {
                if let Ok(prod) = Message::new(endpoint, PROD, b"")
                    && channel.try_send_message(&prod).is_ok()
                {
                    prods += 1;
                }
            }
        }
        if n == 0 {
            core::hint::spin_loop();
        }
        if pause_every > 0 && good >= next_pause {
            next_pause += pause_every;
            let until = userlib::rdtsc().wrapping_add(pause_ticks);
            while userlib::rdtsc() < until {
                core::hint::spin_loop();
            }
        }
    }
    let ok = good == total && lost == 0 && duplicated == 0;
    userlib::log!(
        "sink received {total} messages: {good} in order and intact, {out_of_order} out of order, {bad_payload} corrupt, {foreign} foreign: {}",
        if ok { "exactly once, in order" } else { "WRONG" }
    );
    if prod_ticks > 0 || kernel > 0 {
        userlib::log!("sink: {kernel} messages from the kernel (bounces, notices), {prods} prods sent");
    }
    userlib::log!("messages checked {}, lost {lost}, duplicated {duplicated}, foreign {foreign}", good + bad_payload);
    if ok { 0 } else { 4 }
}
