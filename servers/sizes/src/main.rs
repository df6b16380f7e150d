//! The message-size sweep of `cargo xtask bench sizes`
//! (`qemu-scripts/systems/bench-sizes.toml`, `docs/regions.md`): messages
//! of 64 B to 64 KiB between two servers on cores of their own, four ways:
//!
//! ```text
//!  path               how the bytes travel                           per message
//!  inline-mover       ceil(size / 40) slots through the mover,       the peer reassembles
//!  descriptor-mover   a pool buffer, its descriptor through the mover the peer copies out, returns it
//!  inline-direct      slots over a [[direct_ring]] (no mover)         the peer reassembles
//!  descriptor-direct  a descriptor over a direct ring                 the peer checks it, copies out, returns it
//! ```
//!
//! For each size, each path: round trips (the message, checked by the
//! peer, then a one-slot answer: `ACK`, or the buffer's `RETURN`) and a
//! stream (back to back, then a flush the peer answers with its counts).
//! The peer checks every byte of every message against a pattern derived
//! from (path, size, message number), on its private copy. Then the cost
//! rows: one-slot messages through the mover with and without the
//! descriptor flag (the same 16 bytes either way), round trips and a stream
//! of a fixed count, with the kernel's counters around each stream.
//!
//! One binary, two roles (`args`):
//! - `role=client peer=NAME region=R rtt=N warmup=W stream_kib=K min_messages=M cost=C cost_rtt=D cost_rounds=R sizes=64,256,…`
//! - `role=peer client=NAME region=R`
//!
//! Both use the direct rings `client-to-peer` and `peer-to-client`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

mod client;
mod link;
mod peer;
mod protocol;

use link::{Broken, DirectLink, Link, MoverLink};
use protocol::{MAX_SIZE, Path, label};
use userlib::measure::ring_pair;
use userlib::{Channel, Region};

userlib::server_main!(run);

/// Sizes of the sweep unless `sizes=` says otherwise.
const SIZES: [usize; 6] = [64, 256, 1024, 4096, 16384, 65536];

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    match userlib::arg("role") {
        Some("client") => report(client(&mut channel)),
        Some("peer") => report(peer(&mut channel)),
        _ => {
            userlib::log!("args must say role=client or role=peer");
            1
        }
    }
}

fn report(result: Result<(), &'static str>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(why) => {
            userlib::log!("sizes: {why}");
            1
        }
    }
}

/// The mover link to the endpoint named by arg `key`, the data region and
/// the direct rings.
fn connect<'c>(
    channel: &'c mut Channel,
    key: &str,
    to_peer: &str,
    from_peer: &str,
) -> Result<(MoverLink<'c>, DirectLink, Region), &'static str> {
    let name = userlib::arg(key).ok_or("no peer named in args")?;
    let peer = channel.endpoint_named(name).ok_or("no endpoint for the peer")?;
    let peer_badge = channel.info().endpoint_badges[peer as usize];
    let region = userlib::arg("region").and_then(|r| Region::named(r).ok()).ok_or("no data region")?;
    let (to_peer, from_peer) = ring_pair::attach(to_peer, from_peer).map_err(|_| "cannot attach the direct rings")?;
    Ok((MoverLink { channel, peer, peer_badge, foreign: 0 }, DirectLink { to_peer, from_peer, malformed: 0 }, region))
}

fn broken(Broken(error): Broken) -> &'static str {
    userlib::log!("sizes: direct ring: {error:?}");
    "the peer broke a direct ring"
}

fn client(channel: &mut Channel) -> Result<(), &'static str> {
    let (mut mover, mut direct, region) = connect(channel, "peer", "client-to-peer", "peer-to-client")?;
    let samples = userlib::measure::take_sample_buffer().ok_or("no sample buffer")?;
    let plan = client::Plan {
        round_trips: userlib::arg_u64("rtt", 1000) as usize,
        warmup: userlib::arg_u64("warmup", 100) as usize,
        stream_bytes: userlib::arg_u64("stream_kib", 8192) * 1024,
        min_messages: userlib::arg_u64("min_messages", 64),
    };
    let mut sizes = [0usize; 8];
    let mut count = 0;
    match userlib::arg("sizes") {
        Some(list) => {
            for size in list.split(',').filter_map(|s| s.parse::<usize>().ok()) {
                if count == sizes.len() || size == 0 || size > MAX_SIZE || size % 8 != 0 {
                    return Err("sizes= takes up to 8 multiples of 8 up to 65536");
                }
                sizes[count] = size;
                count += 1;
            }
        }
        None => {
            sizes[..SIZES.len()].copy_from_slice(&SIZES);
            count = SIZES.len();
        }
    }
    let mut me = client::Client { samples: &mut samples[..], region, unexpected: 0 };
    let started = userlib::rdtsc();
    // Per size, every path, so slow drift of the machine spreads over all.
    for &size in &sizes[..count] {
        for path in [Path::InlineMover, Path::DescriptorMover] {
            me.round_trips(&mut mover, path, size, plan).map_err(broken)?;
            me.stream(&mut mover, path, size, plan).map_err(broken)?;
        }
        mover.send(&mover.message(label::DIRECT_BEGIN, 0, &[])).map_err(broken)?;
        for path in [Path::InlineDirect, Path::DescriptorDirect] {
            me.round_trips(&mut direct, path, size, plan).map_err(broken)?;
            me.stream(&mut direct, path, size, plan).map_err(broken)?;
        }
        direct.send(&direct.message(label::DIRECT_END, 0, &[])).map_err(broken)?;
    }
    // The mover's cost per message with and without a descriptor:
    // `cost_rounds` rounds, each both kinds in turn, so noise from the
    // host falls on both alike (the host takes the median of the rounds' ratios).
    let cost = client::Plan {
        round_trips: userlib::arg_u64("cost_rtt", 2_000) as usize,
        min_messages: userlib::arg_u64("cost", 20_000),
        ..plan
    };
    for _ in 0..userlib::arg_u64("cost_rounds", 20) {
        for path in [Path::CostPlain, Path::CostDescriptor] {
            me.round_trips(&mut mover, path, 16, cost).map_err(broken)?;
            me.stream(&mut mover, path, 16, cost).map_err(broken)?;
        }
    }
    let _ = mover.send(&mover.message(label::STOP, 0, &[]));
    userlib::log!(
        "sizes: client done in {} TSC ticks: {} unexpected answers, {} foreign messages, {} malformed on the direct ring",
        userlib::rdtsc().wrapping_sub(started),
        me.unexpected,
        mover.foreign,
        direct.malformed
    );
    Ok(())
}

fn peer(channel: &mut Channel) -> Result<(), &'static str> {
    let (mut mover, mut direct, region) = connect(channel, "client", "peer-to-client", "client-to-peer")?;
    let mut copy = [0u8; MAX_SIZE];
    let mut state = peer::Receiver::new(region);
    loop {
        match peer::serve(&mut mover, &mut state, &mut copy, false).map_err(broken)? {
            peer::Next::Direct => match peer::serve(&mut direct, &mut state, &mut copy, true).map_err(broken)? {
                peer::Next::Stop => break,
                _ => continue,
            },
            peer::Next::Stop => break,
            peer::Next::Mover => continue,
        }
    }
    userlib::log!(
        "sizes: peer checked {} messages, every byte, {} bad; {} foreign messages, {} malformed on the direct ring",
        state.checked,
        state.bad_total,
        mover.foreign,
        direct.malformed
    );
    if state.bad_total == 0 { Ok(()) } else { Err("some messages did not check out") }
}
