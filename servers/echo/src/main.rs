//! Answers every message with the same label, sequence and payload, sent
//! back to whoever sent it (the endpoint whose badge matches). Also the
//! sink of the stream benchmark (labels in `userlib::measure::label`): it
//! checks every stream message's sequence and payload and reports the
//! count of good ones when asked. `STOP` ends it.
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
