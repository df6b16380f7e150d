//! Sends numbered messages to `echo` and checks every reply (sequence and
//! payload); prints round-trip statistics in TSC cycles and nanoseconds.
//!
//! args: `count=N` (default 1000), `warmup=N` (default 100),
//! `bad_endpoint=E` also sends N messages to endpoint E (which it should
//! not hold) and checks each comes back as a bounce,
//! `stop=0` leaves echo running at the end (default: ask it to stop),
//! `interval_us=N` waits N microseconds before each ping (a low message
//! rate, so the echo core gets to sleep), `sweep_ns=N` adds a delay that
//! steps through 0..N ns over `sweep_steps` (default 256) consecutive
//! pings, so that the sends land at every point of echo's (and the
//! mover's) way to sleep (the lost-wake-up race test), `stuck_ms=M` counts a reply that
//! took longer than M ms (default 1000) as an error, `lost_ms=L` gives up
//! on a reply after L ms (default 10 000): it is reported lost, the cores'
//! state is printed, echo is told to stop and ping exits with code 3 (a
//! lost wake-up fails fast instead of hanging the run), `power_report=1` asks
//! the kernel for the runtime power view once the round trips are done.
//!
//! Robust to garbage and to kernel notices (the fault campaign,
//! `docs/faults.md`): a message counts as a reply only if echo's current
//! badge, the label, the sequence and the payload all match; an older
//! sequence from echo is a duplicate, anything from another badge is
//! foreign (counted, ignored). Notices are counted and the first few
//! logged; a message bounced because echo was not running is sent again
//! once a notice says echo runs again (echo's new badge is taken from it).
//! `until_peers_done=1`: after `count` round trips, go on until every other
//! server this one holds an endpoint to has stopped for good (a notice that
//! it exited with code 0, or gave up), or until `deadline_ms` (TSC time
//! since boot) has passed. The last line is always
//! `messages checked N, lost L, duplicated D, foreign F`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::{Channel, Message, abi};

userlib::server_main!(run);

const STOP: u32 = u32::MAX;
const PING: u32 = 1;
const MAX_SAMPLES: usize = userlib::measure::SAMPLE_BUFFER_LEN;

/// The payload of ping `sequence` (echo checks it too, with `peer=ping`).
fn payload(sequence: u32) -> [u8; 40] {
    userlib::measure::payload(sequence)
}

/// What came in besides the replies, and what became of the round trips.
#[derive(Default)]
struct Tally {
    checked: u64,
    lost: u64,
    duplicated: u64,
    foreign: u64,
    bounces: u64,
    resent: u64,
    notices: [u64; 3],
    notices_logged: u32,
    /// Injectors' "done" messages (`INJECTOR_DONE`).
    done_messages: u64,
}

/// The label an injector's last incarnation sends to say it is done
/// (`servers/injector`; its garbage never carries it).
const INJECTOR_DONE: u32 = 0x494e_4a44;

/// Servers this one holds an endpoint to, besides echo, and whether each
/// has stopped for good.
struct Peers {
    count: usize,
    /// Endpoint numbers (index = endpoint) of the watched peers.
    watched: [bool; abi::MAX_ENDPOINTS],
    done: [bool; abi::MAX_ENDPOINTS],
}

impl Peers {
    /// The watched endpoint whose server (any generation) sent with `badge`.
    fn endpoint_of(&self, badge: u64) -> Option<usize> {
        let index = abi::server_index_of_badge(badge)?;
        let info = userlib::info()?;
        (0..self.count).find(|&e| self.watched[e] && abi::server_index_of_badge(info.endpoint_badges[e]) == Some(index))
    }

    fn all_done(&self) -> bool {
        (0..self.count).all(|e| !self.watched[e] || self.done[e])
    }
}

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(echo) = channel.endpoint_named("echo") else {
        userlib::log!("no endpoint called `echo`");
        return 1;
    };
    let count = userlib::arg_u64("count", 1000) as usize;
    let until_peers_done = userlib::arg("until_peers_done") == Some("1");
    let deadline_ms = userlib::arg_u64("deadline_ms", 0);
    let endpoint_count = (channel.info().endpoint_count as usize).min(abi::MAX_ENDPOINTS);
    let mut peers =
        Peers { count: endpoint_count, watched: [false; abi::MAX_ENDPOINTS], done: [false; abi::MAX_ENDPOINTS] };
    for e in 0..endpoint_count {
        peers.watched[e] = e != echo as usize;
    }
    let mut tally = Tally::default();
    // Every reply is checked; the first `timed` are kept for the distribution.
    let timed = count.min(MAX_SAMPLES);
    let warmup = userlib::arg_u64("warmup", 100) as usize;
    let interval_us = userlib::arg_u64("interval_us", 0);
    let sweep_ns = userlib::arg_u64("sweep_ns", 0);
    let sweep_steps = userlib::arg_u64("sweep_steps", 256).max(1);
    // Delay of sweep step k, in TSC ticks: k * sweep_ns / sweep_steps ns.
    let tsc_hz = userlib::tsc_hz();
    let sweep_ticks = |k: u64| {
        (u128::from(k) * u128::from(sweep_ns) * u128::from(tsc_hz) / (u128::from(sweep_steps) * 1_000_000_000)) as u64
    };
    let stuck_cycles = userlib::arg_u64("stuck_ms", 1000) * (tsc_hz / 1000);
    let lost_ms = userlib::arg_u64("lost_ms", 10_000);
    let lost_cycles = lost_ms * (tsc_hz / 1000);
    let mut stuck = 0u64;
    let mut echo_badge = channel.info().endpoint_badges[echo as usize];
    let ticks_per_ms = (tsc_hz / 1000).max(1);
    let past_deadline = || deadline_ms > 0 && userlib::rdtsc() / ticks_per_ms >= deadline_ms;
    let mut errors = 0u64;
    let Some(samples) = userlib::measure::take_sample_buffer() else {
        userlib::log!("sample buffer already taken");
        return 1;
    };
    let mut round = 0usize;
    let mut deadline_reached = false;
    loop {
        if round >= warmup + count {
            if !until_peers_done || peers.all_done() {
                break;
            }
            if past_deadline() {
                deadline_reached = true;
                break;
            }
        }
        let index = round;
        let sequence = index as u32;
        round += 1;
        let mut message = Message::new(echo, PING, &payload(sequence)).expect("40 bytes fit");
        message.sequence = sequence;
        if interval_us > 0 {
            userlib::spin_us(interval_us);
        }
        if sweep_ns > 0 {
            userlib::spin_ticks(sweep_ticks(index as u64 % sweep_steps));
        }
        let start = userlib::rdtsc();
        channel.send_message(&message);
        let mut waiting = Waiting { echo, echo_badge, sequence, start, lost_cycles, bounced: false };
        let reply = wait_reply(&mut channel, &mut waiting, &mut tally, &mut peers, &message);
        echo_badge = waiting.echo_badge;
        let Some(reply) = reply else {
            tally.lost += 1;
            userlib::log!("reply to {sequence} not received after {lost_ms} ms: lost; the cores' state follows");
            userlib::power_report();
            // A wake-up for the stop message may still get echo going.
            let _ = channel.send(echo, STOP, &(round as u32).to_le_bytes());
            final_line(&tally);
            return 3;
        };
        tally.checked += 1;
        let end = userlib::rdtsc();
        if end.wrapping_sub(start) > stuck_cycles {
            stuck += 1;
            if stuck == 1 {
                // The first stuck reply: show every core's power state
                // (sleeps, time asleep) while it is fresh.
                userlib::log!("reply to {sequence} took longer than the stuck bound; the cores' state follows");
                userlib::power_report();
            }
        }
        if reply.sender_badge != echo_badge || reply.sequence != sequence || reply.payload_bytes() != payload(sequence)
        {
            errors += 1;
            if errors <= 5 {
                userlib::log!(
                    "bad reply to {sequence}: badge {} sequence {} label {}",
                    reply.sender_badge,
                    reply.sequence,
                    reply.label
                );
            }
        }
        if index >= warmup && index - warmup < timed {
            samples[index - warmup] = end.wrapping_sub(start);
        }
    }
    let count = round - warmup.min(round);
    let timed = timed.min(count);
    let samples = &mut samples[..timed];
    samples.sort_unstable();
    let hz = tsc_hz.max(1);
    let ns = |cycles: u64| cycles * 1_000_000_000 / hz;
    if timed > 0 {
        let median = samples[timed / 2];
        let p99 = samples[(timed * 99 / 100).min(timed - 1)];
        userlib::log!(
            "{count} round trips through the mover: median {} ns ({} cycles), p99 {} ns, min {} ns, {errors} bad replies (distribution of the first {timed})",
            ns(median),
            median,
            ns(p99),
            ns(samples[0])
        );
        userlib::log!(
            "{stuck} replies took longer than the stuck bound; interval {interval_us} us; sweep 0..{sweep_ns} ns in {sweep_steps} steps; this core slept {} times",
            channel.idler().counts().slept
        );
    }
    errors += stuck;
    if userlib::arg("power_report") == Some("1") {
        userlib::power_report();
    }
    if let Some(bad) = userlib::arg("bad_endpoint").and_then(|v| v.parse::<u32>().ok()) {
        errors += check_bounces(&mut channel, bad, count.min(1000));
    }
    if userlib::arg("stop") != Some("0") {
        // The payload says how many pings echo should have seen.
        let _ = channel.send(echo, STOP, &(round as u32).to_le_bytes());
    }
    if until_peers_done {
        userlib::log!(
            "{} (notices: {} stopped, {} restarted, {} gave up; {} done messages; {} bounces, {} pings sent again)",
            if deadline_reached { "deadline reached before every peer was done" } else { "every peer is done" },
            tally.notices[0],
            tally.notices[1],
            tally.notices[2],
            tally.done_messages,
            tally.bounces,
            tally.resent
        );
    }
    final_line(&tally);
    if errors == 0 && tally.lost == 0 && tally.duplicated == 0 && !deadline_reached { 0 } else { 2 }
}

/// The line the fault campaign reads (`cargo xtask faults`).
fn final_line(tally: &Tally) {
    userlib::log!(
        "messages checked {}, lost {}, duplicated {}, foreign {}",
        tally.checked,
        tally.lost,
        tally.duplicated,
        tally.foreign
    );
}

/// The round trip being waited for.
struct Waiting {
    echo: u32,
    /// Echo's badge: its current generation's (notices say when it changes).
    echo_badge: u64,
    sequence: u32,
    start: u64,
    lost_cycles: u64,
    /// The ping came back from the kernel: echo was not running. Sent
    /// again when a notice says echo runs again.
    bounced: bool,
}

/// Echo's reply to `waiting.sequence`, or `None` if none arrived within
/// `lost_cycles` of `start`. Everything else that arrives is sorted and
/// counted: kernel notices (echo's restart gives its new badge and re-sends
/// a bounced ping), bounces, duplicates of earlier replies, foreign
/// messages. Polls with `pause` whatever its core's sleep policy says (a
/// sleeping wait could not notice the deadline) and reads the clock every
/// 256 empty polls.
fn wait_reply(
    channel: &mut Channel,
    waiting: &mut Waiting,
    tally: &mut Tally,
    peers: &mut Peers,
    ping: &Message,
) -> Option<Message> {
    let mut polls = 0u32;
    loop {
        let Some(message) = channel.try_recv() else {
            polls = polls.wrapping_add(1);
            if polls.is_multiple_of(256) && userlib::rdtsc().wrapping_sub(waiting.start) > waiting.lost_cycles {
                return None;
            }
            core::hint::spin_loop();
            continue;
        };
        if message.sender_badge == abi::KERNEL_BADGE {
            if message.label == abi::notice::LABEL {
                let Some(notice) = abi::notice::Notice::decode(message.payload_bytes()) else {
                    tally.foreign += 1;
                    continue;
                };
                note_notice(tally, &notice);
                let endpoint = message.destination_endpoint as usize;
                if endpoint == waiting.echo as usize {
                    if notice.kind == abi::notice::RESTARTED {
                        waiting.echo_badge = abi::server_badge_of_generation(notice.server as usize, notice.generation);
                        if waiting.bounced {
                            waiting.bounced = false;
                            tally.resent += 1;
                            channel.send_message(ping);
                        }
                    }
                } else if endpoint < peers.count
                    && (notice.kind == abi::notice::GAVE_UP
                        || (notice.kind == abi::notice::STOPPED
                            && notice.cause == abi::notice::CAUSE_EXITED
                            && notice.detail == 0))
                {
                    peers.done[endpoint] = true;
                }
            } else {
                tally.bounces += 1;
                if message.sequence == waiting.sequence
                    && message.label == abi::bounce::DESTINATION_NOT_RUNNING
                    && message.destination_endpoint == waiting.echo
                {
                    waiting.bounced = true;
                }
            }
            continue;
        }
        if message.label == INJECTOR_DONE
            && let Some(endpoint) = peers.endpoint_of(message.sender_badge)
        {
            peers.done[endpoint] = true;
            tally.done_messages += 1;
            continue;
        }
        if message.sender_badge != waiting.echo_badge || message.label != PING {
            tally.foreign += 1;
            continue;
        }
        if message.sequence == waiting.sequence {
            return Some(message);
        }
        if message.sequence < waiting.sequence {
            tally.duplicated += 1;
        } else {
            // From echo, but for a ping not sent yet: neither a reply nor a
            // duplicate; counted with the foreign.
            tally.foreign += 1;
        }
    }
}

/// Counts a notice; logs the first few (one line each: `log` is rate-limited).
fn note_notice(tally: &mut Tally, notice: &abi::notice::Notice) {
    let kind = match notice.kind {
        abi::notice::STOPPED => 0,
        abi::notice::RESTARTED => 1,
        _ => 2,
    };
    tally.notices[kind] += 1;
    if tally.notices_logged < 3 {
        tally.notices_logged += 1;
        userlib::log!(
            "notice: server {} generation {} {} ({}, detail {}){}",
            notice.server,
            notice.generation,
            notice.kind_name(),
            notice.cause_name(),
            notice.detail,
            if tally.notices_logged == 3 { "; further notices are counted, not logged" } else { "" }
        );
    }
}

/// Sends `n` messages to an endpoint this server does not hold; each must
/// come back from the kernel with reason NO_CAPABILITY, in order.
fn check_bounces(channel: &mut Channel, endpoint: u32, n: usize) -> u64 {
    let mut errors = 0;
    for i in 0..n as u32 {
        let mut message = Message::new(endpoint, PING, &payload(i)).expect("fits");
        message.sequence = 1_000_000 + i;
        channel.send_message(&message);
        let back = channel.recv();
        if back.sender_badge != 0 || back.label != abi::bounce::NO_CAPABILITY || back.sequence != 1_000_000 + i {
            errors += 1;
        }
    }
    userlib::log!(
        "{n} messages to endpoint {endpoint}: {} bounced with `no capability`, {errors} wrong",
        n as u64 - errors
    );
    errors
}
