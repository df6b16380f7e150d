//! The key-value service (issue 16): the application above `netstack`.
//! TCP port 7000, one request per line (`SET key value` -> `OK`, `GET key`
//! -> `VALUE value` / `NOT_FOUND`, anything else -> `ERR <reason>`; the
//! protocol and the store are `kv-logic`); UDP port 7001 echoes each
//! datagram. The bytes come from and go to `netstack` as messages through
//! the mover: `[slot, bytes...]` per TCP connection slot, `[ip, port,
//! total, offset, bytes...]` per piece of a datagram, echoed piece by piece.
//!
//! Invariants: a connection slot's session is reset when netstack opens or
//! closes it, so a new client never sees an old client's half line; every
//! message is checked (sender is netstack, slot in range) before use;
//! memory is fixed (kv-logic allocates nothing).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use kv_logic::{MAX_RESPONSE, Service};
use userlib::Channel;

userlib::server_main!(run);

mod label {
    pub const READY: u32 = 0x4e03;
    pub const TCP_OPEN: u32 = 0x4e10;
    pub const TCP_DATA: u32 = 0x4e11;
    pub const TCP_CLOSED: u32 = 0x4e12;
    pub const TCP_SEND: u32 = 0x4e13;
    pub const UDP_DATA: u32 = 0x4e20;
    pub const UDP_SEND: u32 = 0x4e21;
}

/// Connection slots: as many as netstack has TCP sockets.
const SLOTS: usize = 64;
/// Keys the store holds.
const KEYS: usize = 64;

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(stack) = channel.endpoint_named("netstack") else {
        userlib::log!("kv: needs the endpoint `netstack`");
        return 1;
    };
    let mut service: Service<SLOTS, KEYS> = Service::default();
    let mut out = [0u8; 4 * MAX_RESPONSE];
    let mut chunk = [0u8; 40];
    loop {
        let m = channel.recv();
        if m.sender_badge == 0 {
            if let Some(notice) = Channel::notice(&m) {
                userlib::log!("kv: notice {notice:?}");
                for slot in 0..SLOTS {
                    let _ = service.closed(slot);
                }
            }
            continue;
        }
        if channel.endpoint_for_badge(m.sender_badge) != Some(stack) {
            continue;
        }
        let bytes = m.payload_bytes();
        match m.label {
            label::READY => userlib::log!("net: ready tcp=7000 udp=7001 ip=10.0.2.15"),
            label::TCP_OPEN | label::TCP_CLOSED => {
                if let Some(&slot) = bytes.first() {
                    let _ = service.closed(usize::from(slot));
                }
            }
            label::TCP_DATA => {
                let Some((&slot, mut input)) = bytes.split_first() else { continue };
                let slot = usize::from(slot);
                while !input.is_empty() {
                    let Ok(progress) = service.feed(slot, input, &mut out) else { break };
                    for part in out[..progress.written].chunks(39) {
                        chunk[0] = slot as u8;
                        chunk[1..1 + part.len()].copy_from_slice(part);
                        let _ = channel.send(stack, label::TCP_SEND, &chunk[..1 + part.len()]);
                    }
                    if progress.consumed == 0 && progress.written == 0 {
                        break;
                    }
                    input = &input[progress.consumed..];
                }
            }
            label::UDP_DATA if bytes.len() >= 10 => {
                let _ = channel.send(stack, label::UDP_SEND, bytes);
            }
            _ => {}
        }
    }
}
