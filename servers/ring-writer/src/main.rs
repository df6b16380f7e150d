//! Load for the IPC benchmark's ring-scaling rows with written rings
//! (`qemu-scripts/systems/bench-writers.toml`): a client server on a core
//! of its own whose outbox the mover must scan and drain, so `benchclient`
//! can time its round trips with rings that real cores write, not only the
//! kernel-side empty rings of `bench_extra_rings`.
//!
//! ```text
//!  benchclient ──SINK_START──▶ writer   start writing
//!  writer ──SINK──▶ peer (another ring-writer), as fast as its outbox takes them
//!  writer ◀──SINK── peer                 drained and dropped
//!  benchclient ──SINK_FLUSH──▶ writer   stop; answer with the count sent (u64 LE)
//!  benchclient ──STOP──▶ writer         exit
//! ```
//!
//! args: `peer=NAME` (the endpoint it writes to; required), `control=NAME`
//! (the endpoint whose messages start and stop it; default `benchclient`).
//! Between messages it polls with `pause` like every benchmark server
//! (under single-threaded TCG a poll loop without `pause` keeps the
//! emulator thread).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::{label, payload};
use userlib::{Channel, Message};

userlib::server_main!(run);

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(peer_name) = userlib::arg("peer") else {
        userlib::log!("ring-writer: no peer=NAME argument");
        return 1;
    };
    let Some(peer) = channel.endpoint_named(peer_name) else {
        userlib::log!("ring-writer: no endpoint called `{peer_name}`");
        return 1;
    };
    let control_name = userlib::arg("control").unwrap_or("benchclient");
    let Some(control) = channel.endpoint_named(control_name) else {
        userlib::log!("ring-writer: no endpoint called `{control_name}`");
        return 1;
    };
    let control_badge = channel.info().endpoint_badges[control as usize];
    let (mut writing, mut sent, mut sequence, mut total) = (false, 0u64, 0u32, 0u64);
    loop {
        let mut got_message = false;
        while let Some(message) = channel.try_recv() {
            got_message = true;
            if message.sender_badge != control_badge {
                continue; // the peer's traffic: drained, dropped
            }
            match message.label {
                label::STOP => {
                    userlib::log!("ring-writer: wrote {total} messages to {peer_name}");
                    return 0;
                }
                label::SINK_START => (writing, sent) = (true, 0),
                label::SINK_FLUSH => {
                    writing = false;
                    total += sent;
                    let _ = channel.send(control, label::SINK_FLUSH, &sent.to_le_bytes());
                }
                _ => {}
            }
        }
        if writing {
            let mut message = Message::new(peer, label::SINK, &payload(sequence)).expect("40 bytes fit");
            message.sequence = sequence;
            if channel.try_send_message(&message).is_ok() {
                sent += 1;
                sequence = sequence.wrapping_add(1);
            }
        }
        if !got_message {
            core::hint::spin_loop();
        }
    }
}
