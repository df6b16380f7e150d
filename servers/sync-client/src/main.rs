//! Calls a server synchronously (`call`) and checks every reply: the same
//! sequence and payload it sent, `label + 1`, and the callee's badge.
//! Prints a summary line the tests look for. Args:
//! - `to=NAME` (default `sync-echo`): the endpoint to call;
//! - `calls=N` (default 10000);
//! - `expect_stop_at=K`: the callee is meant to stop while serving call K
//!   (its fault test): call K must fail with `NOT_RUNNING`, and so must
//!   the next call; then `then=NAME`, if given, is called once more to
//!   show the caller goes on;
//! - `expect_no_reply_at=K`: call K must fail with `NO_REPLY`, the rest succeed.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::abi::{SyncMessage, err};

userlib::server_main!(run);

fn payload(sequence: u32) -> [u8; 40] {
    userlib::measure::payload(sequence)
}

fn run() -> i32 {
    let Some(channel) = userlib::Channel::open_or_log() else { return 1 };
    let to = userlib::arg("to").unwrap_or("sync-echo");
    let Some(endpoint) = channel.endpoint_named(to) else {
        userlib::log!("no endpoint `{to}`");
        return 1;
    };
    let callee_badge = channel.info().endpoint_badges[endpoint as usize];
    let calls = userlib::arg_u64("calls", 10_000);
    let stop_at = userlib::arg_u64("expect_stop_at", 0);
    let no_reply_at = userlib::arg_u64("expect_no_reply_at", 0);
    let (mut ok, mut bad, mut refused) = (0u64, 0u64, 0u64);
    let last = if stop_at > 0 { stop_at + 1 } else { calls };
    for i in 1..=last {
        let sequence = i as u32;
        let Some(message) = SyncMessage::with_payload(7, sequence, &payload(sequence)) else { return 1 };
        let expected_error = if stop_at > 0 && i >= stop_at {
            Some(err::NOT_RUNNING)
        } else if i == no_reply_at {
            Some(err::NO_REPLY)
        } else {
            None
        };
        match (userlib::call(endpoint, &message), expected_error) {
            (Ok(reply), None) => {
                let (bytes, len) = reply.message.payload_bytes();
                let good = reply.badge == callee_badge
                    && reply.message.label == 8
                    && reply.message.sequence == sequence
                    && bytes[..len] == payload(sequence);
                if good { ok += 1 } else { bad += 1 }
            }
            (Err(e), Some(code)) if e.0 == code => refused += 1,
            (Ok(_), Some(code)) => {
                userlib::log!("call {i}: answered, expected error `{}`", err::name(code));
                bad += 1;
            }
            (Err(e), _) => {
                userlib::log!("call {i}: error `{}`", e.name());
                bad += 1;
            }
        }
    }
    userlib::log!("sync calls to `{to}`: {ok} answered and checked, {bad} bad, {refused} refused as expected");
    if let Some(then) = userlib::arg("then") {
        let Some(next) = channel.endpoint_named(then) else { return 1 };
        let Some(message) = SyncMessage::with_payload(7, 1, &payload(1)) else { return 1 };
        match userlib::call(next, &message) {
            Ok(reply) if reply.message.label == 8 => userlib::log!("after the stop, a call to `{then}` was answered"),
            other => {
                userlib::log!("after the stop, the call to `{then}` gave {other:?}");
                bad += 1;
            }
        }
    }
    if bad == 0 { 0 } else { 2 }
}
