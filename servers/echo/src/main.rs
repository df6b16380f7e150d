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
//!
//! With `peer=NAME` (the fault campaign, `docs/faults.md`) only that
//! endpoint's server may control echo (`STOP`, `SERVE_CALLS`, the sink and
//! direct-ring labels); from anyone else those are plain messages, echoed
//! back if echo holds an endpoint to the sender and counted as foreign. Its
//! `PING` messages are checked (sequence in order, payload
//! `measure::payload`), `STOP` carries how many it sent, and echo ends with
//! `messages checked N, lost L, duplicated D, foreign F`. Bounces and
//! kernel notices are counted (the first few logged); a notice that a peer
//! restarted gives its new badge, so answers reach the new incarnation.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::ring_pair::{self, Served};
use userlib::measure::{label, payload_matches};
use userlib::{Channel, Consumer, Message, Producer, abi};

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
    let mut badges = Badges::of(&channel);
    let peer = match userlib::arg("peer") {
        Some(name) => match channel.endpoint_named(name) {
            Some(endpoint) => Some(endpoint as usize),
            None => {
                userlib::log!("echo: no endpoint called `{name}` (peer)");
                return 1;
            }
        },
        None => None,
    };
    let mut check = Check::default();
    loop {
        let mut message = channel.recv();
        if message.sender_badge == abi::KERNEL_BADGE {
            check.kernel_message(&message, &mut badges);
            continue;
        }
        if let Some(peer) = peer {
            if message.sender_badge != badges.badges[peer] {
                // Not the peer: never a control message, never checked.
                check.foreign += 1;
                if answer(&mut channel, &badges, message) {
                    served += 1;
                } else {
                    unanswerable += 1;
                }
                continue;
            }
            if message.label == label::PING {
                check.ping(&message);
            } else if message.label == label::STOP {
                check.stop(&message);
            }
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
                answer(&mut channel, &badges, message);
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
                    answer(&mut channel, &badges, reply);
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
                if message.sequence == expected && payload_matches(&message, message.sequence) {
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
        } else if answer(&mut channel, &badges, message) {
            served += 1;
        } else {
            unanswerable += 1;
        }
    }
    userlib::log!("echo served {served} messages ({unanswerable} from senders it cannot answer)");
    if peer.is_some() || check.bounces + check.notices > 0 {
        userlib::log!("echo: {} bounces, {} kernel notices", check.bounces, check.notices);
    }
    if peer.is_some() {
        userlib::log!(
            "messages checked {}, lost {}, duplicated {}, foreign {}",
            check.checked,
            check.lost,
            check.duplicated,
            check.foreign
        );
    }
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
fn answer(channel: &mut Channel, badges: &Badges, mut message: Message) -> bool {
    match badges.endpoint_for(message.sender_badge) {
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

/// The badge of the server behind each endpoint, kept current: the info
/// page has the first generation's; a `RESTARTED` notice gives the next.
struct Badges {
    count: usize,
    badges: [u64; abi::MAX_ENDPOINTS],
}

impl Badges {
    fn of(channel: &Channel) -> Badges {
        let info = channel.info();
        Badges { count: (info.endpoint_count as usize).min(abi::MAX_ENDPOINTS), badges: info.endpoint_badges }
    }

    fn endpoint_for(&self, badge: u64) -> Option<u32> {
        self.badges[..self.count].iter().position(|&b| b == badge && b != abi::KERNEL_BADGE).map(|e| e as u32)
    }
}

/// Echo's checks of its peer's pings (`peer=NAME`) and what else came.
#[derive(Default)]
struct Check {
    expected: u32,
    checked: u64,
    lost: u64,
    duplicated: u64,
    foreign: u64,
    bounces: u64,
    notices: u64,
    logged: u32,
}

impl Check {
    /// A ping from the peer: in order (a gap is lost pings, an older one a
    /// duplicate) and intact (else counted foreign: not what ping sends).
    fn ping(&mut self, message: &Message) {
        if !payload_matches(message, message.sequence) {
            self.foreign += 1;
        } else if message.sequence >= self.expected {
            self.lost += u64::from(message.sequence - self.expected);
            self.expected = message.sequence.wrapping_add(1);
            self.checked += 1;
        } else {
            self.duplicated += 1;
        }
    }

    /// The peer's `STOP`: its payload says how many pings it sent.
    fn stop(&mut self, message: &Message) {
        if let Ok(bytes) = <[u8; 4]>::try_from(message.payload_bytes()) {
            self.lost += u64::from(u32::from_le_bytes(bytes).saturating_sub(self.expected));
        }
    }

    /// A bounce or a notice; a `RESTARTED` notice updates the badge.
    fn kernel_message(&mut self, message: &Message, badges: &mut Badges) {
        let notice = (message.label == abi::notice::LABEL)
            .then(|| abi::notice::Notice::decode(message.payload_bytes()))
            .flatten();
        if self.logged < 3 {
            self.logged += 1;
            match notice {
                Some(n) => userlib::log!("notice: server {} generation {} {}", n.server, n.generation, n.kind_name()),
                None => {
                    userlib::log!("bounce from the kernel: reason {} for sequence {}", message.label, message.sequence)
                }
            }
        }
        match notice {
            Some(n) => {
                self.notices += 1;
                let endpoint = message.destination_endpoint as usize;
                if n.kind == abi::notice::RESTARTED && endpoint < badges.count {
                    badges.badges[endpoint] = abi::server_badge_of_generation(n.server as usize, n.generation);
                }
            }
            None => self.bounces += 1,
        }
    }
}
