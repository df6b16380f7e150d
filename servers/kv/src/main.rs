//! The key-value service (issue 16): the application above `netstack`.
//! TCP port 7000, one request per line (`SET key value` -> `OK`, `GET key`
//! -> `VALUE value` / `NOT_FOUND`, anything else -> `ERR <reason>`; the
//! protocol and the store are `kv-logic`); UDP port 7001 echoes each
//! datagram. The bytes come from `netstack` as descriptors of its region
//! `to-app` (a TCP chunk of a connection slot, a whole datagram) and go
//! back as descriptors of ours, `to-stack` (the messages are `net-proto`'s):
//!
//! ```text
//!  netstack ── TCP_DATA desc(to-app) [epoch, slot] ──▶ kv   copy out, answer the lines
//!  netstack ◀─ TCP_SEND desc(to-stack) [epoch, slot] ── kv   the replies, one buffer each
//!  netstack ◀─ TCP_DONE desc(to-app) [epoch, slot, taken] kv its buffer back, bytes taken
//!  netstack ── UDP_DATA desc(to-app) [epoch, ip, port] ▶ kv   copy out
//!  netstack ◀─ APP_RETURN desc(to-app) / UDP_SEND desc(to-stack)  its buffer back, the echo
//!  netstack ── STACK_RETURN desc(to-stack) [epoch] ────▶ kv   our buffer back
//!  netstack ── UDP_EMPTY [epoch, ip, port] ──▶ kv ── UDP_SEND_EMPTY ─▶ netstack   an empty datagram's echo
//! ```
//!
//! Invariants: a connection slot's session is reset when netstack opens or
//! closes it (and for every slot when netstack stops or restarts), so a new
//! client never sees an old client's half line; every message is checked
//! (sender is netstack, slot in range, descriptor and inline bytes
//! present) before use; a payload is copied out of netstack's region
//! before it is parsed (the trust rule, `docs/regions.md`) and its buffer
//! handed back once copied. Out of `to-stack` buffers, kv never waits for
//! netstack: it answers the lines it has buffers for and tells netstack
//! how many bytes it took (the rest is offered again), and drops an echo
//! (counted); a notice that netstack stopped or restarted takes every
//! buffer back (a new epoch, so late returns are ignored). Memory is
//! fixed (kv-logic allocates nothing).
//!
//! Args (tests only): `exit_after_chunks=N` makes the first incarnation
//! exit with code 3 on its Nth TCP chunk, holding it (test `NET0003`).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use kv_logic::Service;
use net_proto::{BUFFER_BYTES, DoneInline, TcpInline, UdpInline, epoch_of, label};
use userlib::abi::region::ACCESS_RO;
use userlib::region::{copy_out, descriptor_message, descriptor_of, inline_of};
use userlib::{BufferPool, Channel, Region};

userlib::server_main!(run);

/// Connection slots: as many as netstack has TCP sockets.
const SLOTS: usize = net_proto::TCP_SLOTS;
/// Keys the store holds.
const KEYS: usize = 64;

/// What kv could not do, logged when it changes (at most every 2 s).
#[derive(Clone, Copy, Default, PartialEq)]
struct Counts {
    /// TCP chunks taken only in part (no free `to-stack` buffer for more
    /// replies): netstack offers the rest again.
    chunks_cut: u64,
    /// Echoes dropped: no free `to-stack` buffer.
    echoes_dropped: u64,
    /// netstack's messages refused: no descriptor or inline bytes, a
    /// payload that could not be copied out, a slot out of range, a
    /// return of a buffer not lent.
    refused: u64,
}

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(stack) = channel.endpoint_named("netstack") else {
        userlib::log!("kv: needs the endpoint `netstack`");
        return 1;
    };
    let Some(mut pool) = Region::named("to-stack").ok().and_then(|r| BufferPool::new(r, BUFFER_BYTES as u64)) else {
        userlib::log!("kv: needs the region `to-stack` (owner)");
        return 1;
    };
    if Region::named("to-app").is_err() {
        userlib::log!("kv: needs the region `to-app` (netstack's, read-only)");
        return 1;
    }
    // Test hook (`NET0003`, qemu-scripts/systems/tests/net-kv-restart.toml):
    // the first incarnation exits with code 3 on its Nth TCP chunk, after
    // copying it and before answering, so netstack holds buffers lent to
    // a server that stopped (and it holds some of netstack's).
    let generation = userlib::generation();
    let first_incarnation = generation == 0;
    let mut exit_after_chunks =
        userlib::arg("exit_after_chunks").and_then(|v| v.parse::<u64>().ok()).filter(|_| first_incarnation);
    let ticks_per_2s = userlib::tsc_hz().saturating_mul(2);
    let mut service: Service<SLOTS, KEYS> = Service::default();
    // Changes when netstack stops or restarts: returns of older loans are
    // stale. Each incarnation starts on epochs of its own (returns still
    // addressed to the one before are stale too).
    let mut epoch = net_proto::first_epoch(generation);
    // Private copies: what netstack sent (parsed only here), and replies.
    let mut input = [0u8; BUFFER_BYTES];
    let mut out = [0u8; BUFFER_BYTES];
    let mut counts = Counts::default();
    let mut logged = Counts::default();
    let mut logged_at = 0u64;
    loop {
        let m = channel.recv();
        if counts != logged && userlib::rdtsc().wrapping_sub(logged_at) > ticks_per_2s {
            userlib::log!(
                "kv: so far {} TCP chunks taken in part and {} echoes dropped (no to-stack buffer free), {} messages refused",
                counts.chunks_cut,
                counts.echoes_dropped,
                counts.refused
            );
            logged = counts;
            logged_at = userlib::rdtsc();
        }
        if m.sender_badge == 0 {
            if let Some(notice) = Channel::notice(&m) {
                // netstack stopped or restarted: the sessions it served are
                // gone, and it will never return what it held.
                let reclaimed = pool.reclaim_all();
                epoch = epoch.wrapping_add(1);
                for slot in 0..SLOTS {
                    let _ = service.closed(slot);
                }
                userlib::log!("kv: notice {notice:?}: {reclaimed} to-stack buffers taken back");
            } else if let Some(d) = descriptor_of(&m)
                && d.region == pool.region().index()
                && epoch_of(inline_of(&m)) == Some(epoch)
            {
                // A reply of ours bounced (netstack not running): ours again.
                let _ = pool.release(&d);
            }
            continue;
        }
        if channel.endpoint_for_badge(m.sender_badge) != Some(stack) {
            continue;
        }
        match m.label {
            label::READY => userlib::log!("net: ready tcp=7000 udp=7001 ip=10.0.2.15"),
            label::TCP_OPEN | label::TCP_CLOSED => {
                if let Some(&slot) = m.payload_bytes().first() {
                    let _ = service.closed(usize::from(slot));
                }
            }
            label::TCP_DATA => {
                let (Some(d), Some(at)) = (descriptor_of(&m), TcpInline::decode(inline_of(&m))) else {
                    counts.refused += 1;
                    continue;
                };
                let slot = usize::from(at.slot);
                let copied = copy_out(&d, &mut input);
                if let Some(left) = exit_after_chunks.as_mut() {
                    *left = left.saturating_sub(1);
                    if *left == 0 {
                        userlib::log!(
                            "kv: exiting on purpose (exit_after_chunks), holding a TCP chunk and {} to-stack buffers out",
                            pool.outstanding()
                        );
                        return 3;
                    }
                }
                let taken = match copied {
                    Ok(n) if slot < SLOTS => {
                        answer(&mut channel, stack, &mut pool, &mut service, epoch, at.slot, &input[..n], &mut out)
                    }
                    _ => {
                        // Nothing we can use: taken whole, so netstack lets it go.
                        counts.refused += 1;
                        d.length as usize
                    }
                };
                if copied.is_ok_and(|n| taken < n) {
                    counts.chunks_cut += 1;
                }
                let done =
                    DoneInline { epoch: at.epoch, slot: at.slot, taken: taken.min(usize::from(u16::MAX)) as u16 };
                if let Ok(message) = descriptor_message(stack, label::TCP_DONE, &d, &done.encode()) {
                    channel.send_message(&message);
                }
            }
            label::UDP_DATA => {
                let (Some(d), Some(from)) = (descriptor_of(&m), UdpInline::decode(inline_of(&m))) else {
                    counts.refused += 1;
                    continue;
                };
                let copied = copy_out(&d, &mut input);
                // Its buffer back at once: we have our copy (or nothing to use).
                if let Ok(message) = descriptor_message(stack, label::APP_RETURN, &d, &from.epoch.to_le_bytes()) {
                    channel.send_message(&message);
                }
                let Ok(n) = copied else {
                    counts.refused += 1;
                    continue;
                };
                let Some(buffer) = pool.alloc() else {
                    counts.echoes_dropped += 1;
                    continue;
                };
                if pool.region().write(buffer.offset, &input[..n]).is_err() {
                    let _ = pool.release(&pool.descriptor(&buffer, 0, ACCESS_RO));
                    continue;
                }
                let echo = pool.descriptor(&buffer, n as u32, ACCESS_RO);
                let to = UdpInline { epoch, ..from };
                match descriptor_message(stack, label::UDP_SEND, &echo, &to.encode()) {
                    Ok(message) => channel.send_message(&message),
                    Err(_) => {
                        let _ = pool.release(&echo);
                    }
                }
            }
            label::UDP_EMPTY => {
                // An empty datagram (inline only): its echo is empty too.
                let Some(from) = UdpInline::decode(m.payload_bytes()) else {
                    counts.refused += 1;
                    continue;
                };
                // (`send` fails only for a payload too long: 10 bytes are not.)
                let _ = channel.send(stack, label::UDP_SEND_EMPTY, &UdpInline { epoch, ..from }.encode());
            }
            label::STACK_RETURN => {
                let Some(d) = descriptor_of(&m) else {
                    counts.refused += 1;
                    continue;
                };
                if epoch_of(inline_of(&m)) == Some(epoch) && pool.release(&d).is_err() {
                    counts.refused += 1;
                }
            }
            _ => {}
        }
    }
}

/// Answers the lines in `input` (a private copy of a chunk of connection
/// `slot`), each batch of replies in a `to-stack` buffer of its own sent as
/// `TCP_SEND`; returns how many input bytes were taken: all of them, or
/// fewer when no buffer was free for more replies.
#[allow(clippy::too_many_arguments)]
fn answer(
    channel: &mut Channel,
    stack: u32,
    pool: &mut BufferPool,
    service: &mut Service<SLOTS, KEYS>,
    epoch: u32,
    slot: u8,
    input: &[u8],
    out: &mut [u8],
) -> usize {
    let mut taken = 0;
    while taken < input.len() {
        let Some(buffer) = pool.alloc() else { break };
        let progress = match service.feed(usize::from(slot), &input[taken..], out) {
            Ok(progress) => progress,
            Err(_) => {
                let _ = pool.release(&pool.descriptor(&buffer, 0, ACCESS_RO));
                return input.len();
            }
        };
        let written = progress.written;
        let mut sent = false;
        if written > 0 && pool.region().write(buffer.offset, &out[..written]).is_ok() {
            let d = pool.descriptor(&buffer, written as u32, ACCESS_RO);
            if let Ok(message) = descriptor_message(stack, label::TCP_SEND, &d, &TcpInline { epoch, slot }.encode()) {
                channel.send_message(&message);
                sent = true;
            }
        }
        if !sent {
            let _ = pool.release(&pool.descriptor(&buffer, 0, ACCESS_RO));
        }
        taken += progress.consumed;
        if progress.consumed == 0 {
            break; // cannot happen with `out` longer than MAX_RESPONSE
        }
    }
    taken
}
