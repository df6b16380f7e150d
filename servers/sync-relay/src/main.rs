//! A called server that calls another: A in the IPC benchmark's two-hop
//! rows with synchronous calls (client -> A -> B -> client,
//! `qemu-scripts/systems/bench-twohop.toml`). Each call it takes is passed
//! on as a call to `to` (B, e.g. `sync-echo`) with the same label,
//! sequence and payload, and B's answer is its answer — a nested call: its
//! own caller waits while it waits for B. With all three on one core every
//! round trip is four system calls (client `call`, relay `call`, B's
//! `reply_recv`, relay's `reply_recv`) and four direct switches (CR3
//! writes).
//!
//! B's answer is checked before it is passed on (B's badge, sequence,
//! payload length); a failed or wrong inner call is answered with label 0
//! so the caller's check fails (it never passes a wrong answer as right).
//!
//! args: `to=NAME` (required). It never exits on its own: mark it
//! `service = true`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::abi::SyncMessage;

userlib::server_main!(run);

/// The answer that makes the caller's check fail.
const FAILED: u32 = 0;

fn run() -> i32 {
    let Some(to_name) = userlib::arg("to") else {
        userlib::log!("sync-relay: no to=NAME argument");
        return 1;
    };
    // The capability table is in the info page; rings are not needed.
    let Some(channel) = userlib::Channel::open_or_log() else { return 1 };
    let Some(to) = channel.endpoint_named(to_name) else {
        userlib::log!("sync-relay: no endpoint called `{to_name}`");
        return 1;
    };
    let to_badge = channel.info().endpoint_badges[to as usize];
    let (mut relayed, mut failed) = (0u64, 0u64);
    let mut reply: Option<SyncMessage> = None;
    loop {
        let call = match userlib::reply_recv(reply.as_ref()) {
            Ok(call) => call,
            Err(e) => {
                userlib::log!("sync-relay: reply_recv failed: {} ({relayed} relayed, {failed} failed)", e.name());
                return 1;
            }
        };
        let asked = call.message;
        let answer = match userlib::call(to, &asked) {
            Ok(inner)
                if inner.badge == to_badge
                    && inner.message.sequence == asked.sequence
                    && inner.message.len == asked.len =>
            {
                relayed += 1;
                inner.message
            }
            _ => {
                failed += 1;
                SyncMessage { label: FAILED, ..asked }
            }
        };
        reply = Some(answer);
    }
}
