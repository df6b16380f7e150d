//! A polling relay for the IPC benchmark's two-hop rows through the mover
//! (`qemu-scripts/systems/bench-twohop.toml`): A in client -> A -> B ->
//! client. Every message from the client is passed on to B unchanged
//! (label, sequence, payload); B (`echo reply_to=benchclient`) answers the
//! client directly, so a round trip is three mover hops and this server
//! never enters the kernel.
//!
//! ```text
//!  client ──m──▶ relay            (mover hop 1)
//!  relay  ──m──▶ to               (mover hop 2)
//!  to     ──m──▶ client           (mover hop 3, not through here)
//!  client ──STOP──▶ relay         passed on to `to`, then exit
//! ```
//!
//! args: `to=NAME` (B; required), `from=NAME` (the only sender relayed;
//! default `benchclient`). Messages from anyone else are dropped and
//! counted; bounces from the kernel are logged. Between messages it polls
//! with `pause` like every benchmark server.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::Channel;
use userlib::measure::label;

userlib::server_main!(run);

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(to_name) = userlib::arg("to") else {
        userlib::log!("ring-relay: no to=NAME argument");
        return 1;
    };
    let Some(to) = channel.endpoint_named(to_name) else {
        userlib::log!("ring-relay: no endpoint called `{to_name}`");
        return 1;
    };
    let from_name = userlib::arg("from").unwrap_or("benchclient");
    let Some(from) = channel.endpoint_named(from_name) else {
        userlib::log!("ring-relay: no endpoint called `{from_name}`");
        return 1;
    };
    let from_badge = channel.info().endpoint_badges[from as usize];
    let (mut relayed, mut dropped) = (0u64, 0u64);
    loop {
        let mut message = channel.recv();
        if message.sender_badge == 0 {
            userlib::log!(
                "ring-relay: bounce from the kernel: reason {} for sequence {}",
                message.label,
                message.sequence
            );
            continue;
        }
        if message.sender_badge != from_badge {
            dropped += 1;
            continue;
        }
        // The mover writes the sender badge: B sees this relay as sender.
        message.destination_endpoint = to;
        channel.send_message(&message);
        if message.label == label::STOP {
            break;
        }
        relayed += 1;
    }
    userlib::log!(
        "ring-relay: relayed {relayed} messages from {from_name} to {to_name} ({dropped} from others dropped)"
    );
    0
}
