//! Answers every message with the same label, sequence and payload, sent
//! back to whoever sent it (the endpoint whose badge matches). Also the
//! sink of the stream benchmark (labels in `userlib::measure::label`): it
//! checks every stream message's sequence and payload and reports the
//! count of good ones when asked. `SERVE_CALLS` makes it a called server
//! for a while: it answers synchronous calls (`reply_recv`) until
//! `SERVE_CALLS_END` (the benchmark's cross-core call rows).
//! `SERVE_DIRECT_RINGS` makes it the answering end of the user<->user
//! direct-ring rows: it serves the direct rings `client-to-echo` /
//! `echo-to-client` (`userlib::measure::ring_pair::serve`, attached at the
//! first request, so systems without them never look) until `STOP` arrives
//! on them, then goes back to the mover's rings. `STOP` through the mover
//! ends it.
//!
//! With `reply_to=NAME` every answer goes to that endpoint instead of the
//! sender: B of the two-hop rows (`systems/bench-twohop.toml`), which gets
//! the client's messages from a relay and answers the client directly.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::ring_pair::{self, Served};
use userlib::measure::{label, payload};
use userlib::{Channel, Consumer, Message, Producer};

userlib::server_main!(run);

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let reply_to = match userlib::arg("reply_to") {
        Some(name) => match channel.endpoint_named(name) {
            Some(endpoint) => Some(endpoint),
            None => {
                userlib::log!("echo: no endpoint called `{name}` (reply_to)");
                return 1;
            }
        },
        None => None,
    };
    let mut served: u64 = 0;
    let mut unanswerable: u64 = 0;
    let (mut expected, mut good): (u32, u64) = (0, 0);
    let mut direct = DirectRings::NotAsked;
    let mut direct_served = Served::default();
    loop {
        let mut message = channel.recv();
        if message.sender_badge == 0 {
            userlib::log!("bounce from the kernel: reason {} for sequence {}", message.label, message.sequence);
            continue;
        }
        match message.label {
            label::STOP => break,
            label::PING_STAMPED => {
                let received = userlib::rdtsc();
                let mut stamped = [0u8; 40];
                if message.payload_bytes().len() == stamped.len() {
                    stamped.copy_from_slice(message.payload_bytes());
                    stamped[..8].copy_from_slice(&received.to_le_bytes());
                    if let Ok(mut reply) =
                        userlib::Message::new(message.destination_endpoint, label::PING_STAMPED, &stamped)
                    {
                        reply.sequence = message.sequence;
                        reply.sender_badge = message.sender_badge;
                        message = reply;
                    }
                }
            }
            label::SERVE_CALLS => {
                // Answer first through the rings, so the sender knows calls
                // will be taken from now on (a call made earlier would wait
                // in the kernel until `reply_recv` anyway).
                answer(&mut channel, message);
                match serve_calls() {
                    Ok(calls) => served += calls,
                    Err(e) => userlib::log!("serving calls failed: {}", e.name()),
                }
                continue;
            }
            label::SERVE_DIRECT_RINGS => {
                let rings = direct.attach();
                // Answer through the mover first: the client starts on the
                // direct rings only after this (payload 1: served, 0: not).
                if let Ok(mut reply) = Message::new(0, label::SERVE_DIRECT_RINGS, &[u8::from(rings.is_some())]) {
                    reply.sequence = message.sequence;
                    reply.sender_badge = message.sender_badge;
                    answer(&mut channel, reply);
                }
                if let Some((to_client, from_client)) = rings
                    && let Err(e) = ring_pair::serve(from_client, to_client, &mut direct_served)
                {
                    userlib::log!("direct-ring peer misbehaved: {e}");
                    direct = DirectRings::Broken;
                }
                continue;
            }
            label::SINK_START => {
                (expected, good) = (0, 0);
                continue;
            }
            label::SINK => {
                if message.sequence == expected && message.payload_bytes() == payload(message.sequence) {
                    good += 1;
                }
                expected = message.sequence.wrapping_add(1);
                continue;
            }
            label::SINK_FLUSH => {
                message = match channel.message(message.destination_endpoint, label::SINK_FLUSH, &good.to_le_bytes()) {
                    Ok(mut reply) => {
                        reply.sender_badge = message.sender_badge;
                        reply
                    }
                    Err(_) => continue,
                };
            }
            _ => {}
        }
        if let Some(endpoint) = reply_to {
            message.destination_endpoint = endpoint;
            channel.send_message(&message);
            served += 1;
        } else if answer(&mut channel, message) {
            served += 1;
        } else {
            unanswerable += 1;
        }
    }
    userlib::log!("echo served {served} messages ({unanswerable} from senders it cannot answer)");
    if !matches!(direct, DirectRings::NotAsked) {
        userlib::log!("echo over direct rings: {direct_served}");
    }
    let sleeps = channel.idler().counts();
    userlib::log!(
        "echo slept {} times ({} sleeps requested, {} called off by the kernel's last check; {} announcements withdrawn at the inbox re-check)",
        sleeps.slept,
        sleeps.requested,
        sleeps.requested - sleeps.slept,
        sleeps.withdrawn
    );
    0
}

/// Sends `message` back to the endpoint whose badge is its
/// `sender_badge`; false if no endpoint of ours has that badge.
fn answer(channel: &mut Channel, mut message: Message) -> bool {
    match channel.endpoint_for_badge(message.sender_badge) {
        Some(endpoint) => {
            message.destination_endpoint = endpoint;
            channel.send_message(&message);
            true
        }
        None => false,
    }
}

/// Echo's ends of the direct rings with the benchmark client.
enum DirectRings {
    /// Never asked to serve them: not attached (most systems have none).
    NotAsked,
    Attached(Producer<'static>, Consumer<'static>),
    /// Missing in this system, or the peer broke them: not served again.
    Broken,
}

impl DirectRings {
    /// The ends (attached at the first call), or `None` if unusable.
    fn attach(&mut self) -> Option<(&mut Producer<'static>, &mut Consumer<'static>)> {
        if let DirectRings::NotAsked = self {
            *self = match ring_pair::attach("echo-to-client", "client-to-echo") {
                Ok((to_client, from_client)) => DirectRings::Attached(to_client, from_client),
                Err(e) => {
                    userlib::log!("{e}");
                    DirectRings::Broken
                }
            };
        }
        match self {
            DirectRings::Attached(to_client, from_client) => Some((to_client, from_client)),
            _ => None,
        }
    }
}

/// Serves synchronous calls until `SERVE_CALLS_END`; returns how many.
fn serve_calls() -> Result<u64, userlib::SysError> {
    let mut reply: Option<userlib::abi::SyncMessage> = None;
    let mut calls = 0;
    loop {
        let call = userlib::reply_recv(reply.as_ref())?;
        calls += 1;
        let mut answer = call.message;
        let end = answer.label == label::SERVE_CALLS_END;
        answer.label = answer.label.wrapping_add(1);
        if end {
            // Answer the last call and go back to the rings at once.
            userlib::reply(&answer)?;
            return Ok(calls);
        }
        reply = Some(answer);
    }
}
