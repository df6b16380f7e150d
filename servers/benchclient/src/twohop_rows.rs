//! The two-hop rows of the IPC benchmark (`twohop=1`,
//! `qemu-scripts/systems/bench-twohop.toml`, a boot of its own with
//! `-smp 4`): a round trip client -> A -> B -> client, two ways in one boot.
//!
//! ```text
//!  path=mover  benchclient (core 1) -> mover -> relay (core 2, `ring-relay`)
//!              -> mover -> echo (core 3, `reply_to=benchclient`) -> mover -> benchclient
//!              3 mover hops, 0 system calls, 0 CR3 writes per round trip
//!  path=sync   benchclient call sync-relay -> sync-relay call sync-echo, all
//!              three on core 1: sync-echo's reply_recv -> sync-relay's reply_recv
//!              4 system calls, 4 direct switches (CR3 writes) per round trip
//! ```
//!
//! Before them, the one-hop mover round trip to echo (`mover-rtt`, the
//! boot's base row: the two-hop rows are read against it and each other,
//! never against the `-smp 3` boot's). Every answer is checked (the
//! answering server's badge, label, sequence, payload); a sample whose TSC
//! went backwards is dropped and counted.

use userlib::abi::SyncMessage;
use userlib::measure::{Samples, label, payload};
use userlib::{Channel, Message, bench_mark};

use crate::{Rings, RoundTrips, WARMUP, mover_rtt};

/// `iterations` round trips after `WARMUP`, each one `round_trip(sequence)`
/// (true if its answer checked out), timed around the call; `phase`
/// brackets the measured ones.
fn timed(samples: &mut [u64], iterations: usize, phase: &str, mut round_trip: impl FnMut(u32) -> bool) -> RoundTrips {
    let mut ok = 0u64;
    let mut kept = Samples::new(samples);
    for round in 0..WARMUP + iterations {
        if round == WARMUP {
            bench_mark(phase, true);
        }
        let sequence = round as u32;
        let start = userlib::rdtsc();
        let good = round_trip(sequence);
        let end = userlib::rdtsc();
        if round >= WARMUP {
            kept.record(start, end);
            ok += u64::from(good);
        }
    }
    bench_mark(phase, false);
    RoundTrips { iterations, ok, backwards: kept.backwards(), stats: kept.stats() }
}

fn print(path: &str, rtt: &RoundTrips) {
    let (median, p99, min, max) = rtt.stats;
    userlib::log!(
        "BENCH latency name=two-hop-rtt path={path} n={} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={} tsc_backwards={}",
        rtt.iterations,
        rtt.ok,
        rtt.backwards
    );
}

/// The endpoint called `name`, or a log line saying it is missing.
fn endpoint(channel: &Channel, name: &str) -> Option<(u32, u64)> {
    match channel.endpoint_named(name) {
        Some(e) => Some((e, channel.info().endpoint_badges[e as usize])),
        None => {
            userlib::log!("benchclient: twohop=1 needs an endpoint called `{name}`");
            None
        }
    }
}

/// The base row and both two-hop rows; 0 if all ran, 1 if an endpoint is
/// missing. Ends relay and echo (`STOP` through the relay).
pub fn run(channel: &mut Channel, echo: u32, echo_badge: u64, samples: &mut [u64], iterations: usize) -> i32 {
    let (Some((relay, _)), Some((sync_relay, sync_relay_badge))) =
        (endpoint(channel, "relay"), endpoint(channel, "sync-relay"))
    else {
        return 1;
    };
    // The outboxes the mover scans: this server's, relay's, echo's,
    // sync-relay's and sync-echo's (`outboxes=` in the TOML).
    let rings = (userlib::arg_u64("outboxes", 5) as usize).max(1);
    let base = mover_rtt(channel, echo, echo_badge, iterations, samples, Some("mover-rtt"));
    base.print(&Rings { batch: None, rings, extra: "empty", extra_rings: 0, writers: None });

    userlib::log!(
        "benchclient: two-hop path=mover: benchclient (core 1) -> mover -> relay (core 2) -> mover -> echo (core 3) -> mover -> benchclient: 3 mover hops per round trip, no system call, no address-space switch"
    );
    let rtt = timed(samples, iterations, "two-hop-mover", |sequence| {
        let mut message = Message::new(relay, label::PING, &payload(sequence)).expect("40 bytes fit");
        message.sequence = sequence;
        channel.send_message(&message);
        let reply = channel.recv();
        // Echo answers straight to us: its badge, not the relay's.
        reply.sender_badge == echo_badge
            && reply.label == label::PING
            && reply.sequence == sequence
            && reply.payload_bytes() == payload(sequence)
    });
    print("mover", &rtt);

    userlib::log!(
        "benchclient: two-hop path=sync: benchclient call sync-relay -> sync-relay call sync-echo -> reply -> reply, all three on core 1 (direct switches): 4 system calls and 4 CR3 writes per round trip"
    );
    let rtt = timed(samples, iterations, "two-hop-sync", |sequence| {
        let Some(message) = SyncMessage::with_payload(label::PING, sequence, &payload(sequence)) else { return false };
        match userlib::call(sync_relay, &message) {
            Ok(answer) => {
                let (bytes, len) = answer.message.payload_bytes();
                // sync-echo's `label + 1`, passed on by sync-relay (which
                // answers label 0 if its own call failed or looked wrong).
                answer.badge == sync_relay_badge
                    && answer.message.label == label::PING + 1
                    && answer.message.sequence == sequence
                    && bytes[..len] == payload(sequence)
            }
            Err(_) => false,
        }
    });
    print("sync", &rtt);

    let _ = channel.send(relay, label::STOP, b"");
    0
}
