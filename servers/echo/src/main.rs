//! Answers every message with the same label, sequence and payload, sent
//! back to whoever sent it (the endpoint whose badge matches). Also the
//! sink of the stream benchmark (labels in `userlib::measure::label`): it
//! checks every stream message's sequence and payload and reports the
//! count of good ones when asked. `SERVE_CALLS` makes it a called server
//! for a while: it answers synchronous calls (`reply_recv`) until
//! `SERVE_CALLS_END` (the benchmark's cross-core call rows). `STOP` ends it.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::Channel;
use userlib::measure::{label, payload};

userlib::server_main!(run);

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let mut served: u64 = 0;
    let mut unanswerable: u64 = 0;
    let (mut expected, mut good): (u32, u64) = (0, 0);
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
                    if let Ok(mut reply) = userlib::Message::new(message.destination_endpoint, label::PING_STAMPED, &stamped) {
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
                if let Some(endpoint) = channel.endpoint_for_badge(message.sender_badge) {
                    message.destination_endpoint = endpoint;
                    channel.send_message(&message);
                }
                match serve_calls() {
                    Ok(calls) => served += calls,
                    Err(e) => userlib::log!("serving calls failed: {}", e.name()),
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
        match channel.endpoint_for_badge(message.sender_badge) {
            Some(endpoint) => {
                message.destination_endpoint = endpoint;
                channel.send_message(&message);
                served += 1;
            }
            None => unanswerable += 1,
        }
    }
    userlib::log!("echo served {served} messages ({unanswerable} from senders it cannot answer)");
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
