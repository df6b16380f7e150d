//! Answers every message with the same label, sequence and payload, sent
//! back to whoever sent it (the endpoint whose badge matches). A message
//! with label `STOP` ends it. Logs bounces and how much it served.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::Channel;

userlib::server_main!(run);

/// Label that asks echo to exit.
const STOP: u32 = u32::MAX;

fn run() -> i32 {
    let mut channel = match Channel::open() {
        Ok(c) => c,
        Err(e) => {
            userlib::log!("cannot open channel: {e:?}");
            return 1;
        }
    };
    let mut served: u64 = 0;
    let mut unanswerable: u64 = 0;
    loop {
        let mut message = channel.recv();
        if message.sender_badge == 0 {
            userlib::log!("bounce from the kernel: reason {} for sequence {}", message.label, message.sequence);
            continue;
        }
        if message.label == STOP {
            break;
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
    0
}
