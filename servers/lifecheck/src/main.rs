//! The server-life test fixture (`qemu-scripts/systems/tests/life-*.toml`):
//! its `role=` argument picks what it is.
//!
//! - `role=target`: answers each message with its sequence and its own
//!   generation; incarnation `g` dies after `die_after=N` messages in the
//!   way the `g`-th word of `deaths=` says (`fault`: `ud2`; `exit`: exit
//!   code 3; `hang`: stops draining its inbox and spins; `none`: never).
//! - `role=client`: sends `count=N` numbered messages to `target` and to
//!   `other`, one outstanding per peer; a message bounced with
//!   `DESTINATION_NOT_RUNNING` is sent again once a notice says the target
//!   runs again. Checks that every message is answered exactly once, that
//!   `other` never bounces, and that the target came back as generation
//!   `expect_generation=G` after as many stop and restart notices; prints
//!   one summary line and exits 0 only if all of that holds.
//! - `role=quit`: exits at once with code 0 (a destination that stops).
//! - `role=liar`: writes an impossible consumer index into its own inbox
//!   (the mover must call the inbox broken and bounce what is sent to it
//!   with `DESTINATION_BROKEN`), then blocks in the kernel for good.
//!
//! The client also sends `bad=N` malformed messages (a payload length past
//! the slot) to `other`, which must all come back `MALFORMED`, and, if it
//! holds an endpoint `liar`, `bad=N` messages there, which must all come
//! back `DESTINATION_BROKEN`.
//! - `role=flooder`: sends to every endpoint it holds as fast as the mover
//!   takes it, forever (a service). Its messages are labelled `FLOOD` and
//!   answered by nobody.
//!
//! This is a test fixture: its `unsafe` blocks are the `fault` death and
//! the liar's scribble.
#![cfg_attr(target_os = "none", no_std, no_main)]

use userlib::abi::{self, bounce, notice};
use userlib::{Channel, Message};

userlib::server_main!(run);

/// Label of the client's messages and the target's answers.
const ASK: u32 = 0x11fe;
/// Label of the flooder's messages.
const FLOOD: u32 = 0xf100d;

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    match userlib::arg("role") {
        Some("target") => target(&mut channel),
        Some("client") => client(&mut channel),
        Some("flooder") => flooder(&mut channel),
        Some("quit") => 0,
        Some("liar") => liar(),
        other => {
            userlib::log!("lifecheck: unknown role {other:?}");
            2
        }
    }
}

fn generation(channel: &Channel) -> u32 {
    abi::generation_of_badge(channel.info().badge)
}

fn target(channel: &mut Channel) -> i32 {
    let generation = generation(channel);
    let death = userlib::arg("deaths").unwrap_or("").split(',').nth(generation as usize).unwrap_or("none");
    let die_after = userlib::arg_u64("die_after", 100);
    let mut answered = 0u64;
    loop {
        let message = channel.recv();
        if message.sender_badge == abi::KERNEL_BADGE || message.label != ASK {
            continue; // bounces, notices, the flooder
        }
        let mut payload = [0u8; 8];
        payload[..4].copy_from_slice(&message.sequence.to_le_bytes());
        payload[4..].copy_from_slice(&generation.to_le_bytes());
        let Some(endpoint) = channel.endpoint_for_badge(message.sender_badge) else { continue };
        if let Ok(mut reply) = Message::new(endpoint, ASK, &payload) {
            reply.sequence = message.sequence;
            channel.send_message(&reply);
        }
        answered += 1;
        if answered == die_after {
            match death {
                "fault" => {
                    // SAFETY: none; this breaks the rules on purpose: `ud2`
                    // raises #UD, which the kernel must contain.
                    unsafe { core::arch::asm!("ud2") };
                }
                "exit" => return 3,
                "hang" => loop {
                    core::hint::spin_loop(); // never drains its inbox again
                },
                _ => {}
            }
        }
    }
}

/// One peer of the client: the message it waits for and what it saw.
struct Peer {
    endpoint: u32,
    name: &'static str,
    next: u32,
    /// The sequence sent and not yet answered.
    waiting: Option<u32>,
    /// Bounced as not running: to be sent again after a RESTARTED notice.
    resend: bool,
    /// As the last notice about it said (true until a stop notice).
    running: bool,
    answered: u32,
    duplicates: u32,
    bounced: u32,
    last_generation: u32,
}

impl Peer {
    fn send(&mut self, channel: &mut Channel, sequence: u32) {
        if let Ok(mut message) = Message::new(self.endpoint, ASK, &sequence.to_le_bytes()) {
            message.sequence = sequence;
            channel.send_message(&message);
            self.waiting = Some(sequence);
        }
    }
}

fn client(channel: &mut Channel) -> i32 {
    let count = userlib::arg_u64("count", 1000) as u32;
    let expect_generation = userlib::arg_u64("expect_generation", 0) as u32;
    let (Some(target), Some(other)) = (channel.endpoint_named("target"), channel.endpoint_named("other")) else {
        userlib::log!("lifecheck client: needs endpoints `target` and `other`");
        return 1;
    };
    let peer = |endpoint, name| Peer {
        endpoint,
        name,
        next: 0,
        waiting: None,
        resend: false,
        running: true,
        answered: 0,
        duplicates: 0,
        bounced: 0,
        last_generation: 0,
    };
    let mut peers = [peer(target, "target"), peer(other, "other")];
    let (mut stopped, mut restarted, mut gave_up, mut foreign) = (0u32, 0u32, 0u32, 0u32);
    let quiet_limit = userlib::tsc_hz() * userlib::arg_u64("quiet_s", 10);
    let mut last_news = userlib::rdtsc();
    loop {
        for p in &mut peers {
            if p.waiting.is_none() && !p.resend && p.next < count {
                let sequence = p.next;
                p.next += 1;
                p.send(channel, sequence);
            }
        }
        if peers.iter().all(|p| p.waiting.is_none() && !p.resend && p.next >= count) {
            break;
        }
        let Some(message) = channel.try_recv() else {
            if userlib::rdtsc().wrapping_sub(last_news) > quiet_limit {
                userlib::log!("lifecheck client: nothing arrived for a long time; giving up");
                break;
            }
            core::hint::spin_loop();
            continue;
        };
        last_news = userlib::rdtsc();
        if let Some(n) = Channel::notice(&message) {
            let about = peers.iter_mut().find(|p| p.endpoint == message.destination_endpoint);
            match n.kind {
                notice::STOPPED | notice::GAVE_UP => {
                    if n.kind == notice::STOPPED {
                        stopped += 1;
                    } else {
                        gave_up += 1;
                    }
                    if let Some(p) = about {
                        p.running = false;
                    }
                }
                _ => {
                    restarted += 1;
                    if let Some(p) = about {
                        p.running = true;
                        p.last_generation = p.last_generation.max(n.generation);
                        if p.resend {
                            p.resend = false;
                            let sequence = p.waiting.take().unwrap_or(p.next);
                            p.send(channel, sequence);
                        }
                    }
                }
            }
            continue;
        }
        if message.sender_badge == abi::KERNEL_BADGE {
            let p = peers.iter_mut().find(|p| p.endpoint == message.destination_endpoint);
            match p {
                Some(p) if message.label == bounce::DESTINATION_NOT_RUNNING && p.waiting == Some(message.sequence) => {
                    p.bounced += 1;
                    if p.running {
                        // The stop notice is still on its way: try again now.
                        let sequence = message.sequence;
                        p.send(channel, sequence);
                    } else {
                        p.resend = true; // sent again when it runs again
                    }
                }
                _ => foreign += 1,
            }
            continue;
        }
        let from = abi::server_index_of_badge(message.sender_badge);
        let p = peers.iter_mut().find(|p| channel_endpoint_index(channel, p.endpoint) == from && from.is_some());
        let (Some(p), ASK) = (p, message.label) else {
            foreign += 1;
            continue;
        };
        let bytes = message.payload_bytes();
        let sequence = bytes.get(..4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        if sequence.is_some() && sequence == p.waiting && !p.resend {
            p.waiting = None;
            p.answered += 1;
            if let Some(g) = bytes.get(4..8) {
                p.last_generation = p.last_generation.max(u32::from_le_bytes([g[0], g[1], g[2], g[3]]));
            }
        } else {
            p.duplicates += 1;
        }
    }
    let (malformed, broken) = bad_messages(channel, other, channel.endpoint_named("liar"), &mut foreign);
    let bad = userlib::arg_u64("bad", 0) as u32;
    let [t, o] = &peers;
    userlib::log!(
        "lifecheck client: {} answered {}/{count} (duplicates {}, bounced not-running {} and sent again), generation {}; notices stopped {stopped}, restarted {restarted}, gave up {gave_up}; {} answered {}/{count} (duplicates {}, bounced {}); foreign {foreign}",
        t.name,
        t.answered,
        t.duplicates,
        t.bounced,
        t.last_generation,
        o.name,
        o.answered,
        o.duplicates,
        o.bounced
    );
    userlib::log!(
        "lifecheck client: malformed messages bounced MALFORMED {malformed}/{bad}; to a broken inbox bounced DESTINATION_BROKEN {broken}/{}",
        if channel.endpoint_named("liar").is_some() { bad } else { 0 }
    );
    let ok = malformed == bad
        && (channel.endpoint_named("liar").is_none() || broken == bad)
        && t.answered == count
        && o.answered == count
        && t.duplicates + o.duplicates + o.bounced == 0
        && t.last_generation == expect_generation
        && restarted == expect_generation
        && stopped == expect_generation;
    if ok {
        userlib::log!("lifecheck client: every message answered exactly once");
        0
    } else {
        userlib::log!("lifecheck client: FAILED");
        1
    }
}

/// Sends `bad=N` malformed messages to `other` and `N` good ones to
/// `liar` (if held); returns how many came back `MALFORMED` and
/// `DESTINATION_BROKEN`. Anything else that arrives meanwhile is foreign.
fn bad_messages(channel: &mut Channel, other: u32, liar: Option<u32>, foreign: &mut u32) -> (u32, u32) {
    let bad = userlib::arg_u64("bad", 0) as u32;
    for sequence in 0..bad {
        if let Ok(mut message) = Message::new(other, ASK, &sequence.to_le_bytes()) {
            message.sequence = sequence;
            message.payload_len = 200; // past the slot: malformed
            channel.send_message(&message);
        }
        if let Some(liar) = liar
            && let Ok(mut message) = Message::new(liar, ASK, &sequence.to_le_bytes())
        {
            message.sequence = sequence;
            channel.send_message(&message);
        }
    }
    let wanted = bad * if liar.is_some() { 2 } else { 1 };
    let (mut malformed, mut broken) = (0, 0);
    let limit = userlib::tsc_hz() * 5;
    let start = userlib::rdtsc();
    while malformed + broken < wanted && userlib::rdtsc().wrapping_sub(start) < limit {
        let Some(message) = channel.try_recv() else { continue };
        match (message.sender_badge, message.label) {
            (abi::KERNEL_BADGE, bounce::MALFORMED) if message.destination_endpoint == other => malformed += 1,
            (abi::KERNEL_BADGE, bounce::DESTINATION_BROKEN) if Some(message.destination_endpoint) == liar => {
                broken += 1
            }
            _ => *foreign += 1,
        }
    }
    (malformed, broken)
}

fn liar() -> i32 {
    let consumer_index = (abi::inbox_addr(0) + 128) as *mut u64; // ringbuf's CONSUMER_INDEX_OFFSET
    // SAFETY: none; this breaks the ring protocol on purpose. The word is
    // this server's own inbox consumer index, mapped read/write here; an
    // index a whole ring ahead of anything written is impossible.
    unsafe { core::ptr::write_volatile(consumer_index, u64::MAX / 2) };
    // Blocks in the kernel for good: nobody calls it.
    let _ = userlib::reply_recv(None);
    0
}

/// The server index an endpoint of ours reaches (from the info page).
fn channel_endpoint_index(channel: &Channel, endpoint: u32) -> Option<usize> {
    let info = channel.info();
    let badge = *info.endpoint_badges.get(endpoint as usize)?;
    abi::server_index_of_badge(badge)
}

fn flooder(channel: &mut Channel) -> i32 {
    let endpoints = channel.info().endpoint_count.min(abi::MAX_ENDPOINTS as u32);
    let mut sequence = 0u32;
    loop {
        for endpoint in 0..endpoints {
            if let Ok(mut message) = Message::new(endpoint, FLOOD, &sequence.to_le_bytes()) {
                message.sequence = sequence;
                // Never blocks: a full outbox just skips (and drains nothing).
                let _ = channel.try_send_message(&message);
            }
            sequence = sequence.wrapping_add(1);
        }
        while channel.try_recv().is_some() {} // its bounces
    }
}
