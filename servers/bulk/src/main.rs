//! Bulk data over a shared region, with buffer descriptors through the
//! mover (`docs/regions.md`). One binary, three roles (`args`):
//!
//! - `role=source region=R to=NAME buffer_kib=K bytes_mib=M`: a
//!   [`userlib::BufferPool`] of K KiB buffers over region R (which it
//!   owns); fills each buffer with a pattern derived from its sequence
//!   number and sends it to NAME as a descriptor (`DATA`), takes buffers
//!   back as the sink returns them (`RETURN`), until M MiB went out. Then
//!   one more buffer (`LAST`, the count sent beside it) and it exits 0.
//! - `role=sink from=NAME`: copies every buffer out before looking at it
//!   (`userlib::region::copy_out`), checks every byte and the sequence,
//!   returns the descriptor. After `LAST` it waits until the source has
//!   stopped for good (its notice) and then reads the last buffer, which
//!   must still be intact: a stopped server's regions stay mapped in its
//!   peers. With `hostile=NAME` it also takes that server's buffers
//!   (`REWRITE`), copies them, checks the copy against the checksum sent
//!   beside the descriptor, and reports how many copies were good, how
//!   many were caught mixed, and how often the region changed under a
//!   second in-place read (why the copy is needed).
//! - `role=hostile to=NAME own=R private=P foreign=F rounds=N`: sends
//!   seven bad descriptors (out of range, a region it does not hold, a
//!   region the receiver does not hold, `rw` asked on its `ro` grant, `rw`
//!   asked where the receiver holds `ro`, a wrapping offset, a payload too
//!   short for a descriptor), each of which must come back bounced with
//!   `BAD_DESCRIPTOR`; then N rounds of a buffer it keeps rewriting after
//!   sending it (`REWRITE`), until the receiver returns it; then `DONE`.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::abi::region::{ACCESS_RO, ACCESS_RW, Descriptor, FLAG_DESCRIPTOR};
use userlib::region::{copy_out, descriptor_message, descriptor_of, inline_of};
use userlib::{BufferPool, Channel, Message, Region, abi};

userlib::server_main!(run);

const DATA: u32 = 0xb001;
const RETURN: u32 = 0xb002;
const LAST: u32 = 0xb003;
const REWRITE: u32 = 0xb004;
const DONE: u32 = 0xb005;
const BAD: u32 = 0xb006;

/// Largest buffer the sink copies out (its private copy lives on its stack).
const MAX_BUFFER: usize = 64 * 1024;

/// Word `i` of buffer `sequence`: distinct for every word of every buffer.
#[inline(always)]
fn word(sequence: u64, i: usize) -> u64 {
    sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (i as u64).wrapping_mul(0xff51_afd7_ed55_8ccd) ^ 0x5a5a
}

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    match userlib::arg("role") {
        Some("source") => source(&mut channel),
        Some("sink") => sink(&mut channel),
        Some("hostile") => hostile(&mut channel),
        _ => {
            userlib::log!("args must say role=source, role=sink or role=hostile");
            1
        }
    }
}

fn endpoint(channel: &Channel, key: &str) -> Option<u32> {
    let name = userlib::arg(key)?;
    let e = channel.endpoint_named(name);
    if e.is_none() {
        userlib::log!("no endpoint `{name}`");
    }
    e
}

fn region(key: &str) -> Option<Region> {
    let name = userlib::arg(key)?;
    match Region::named(name) {
        Ok(r) => Some(r),
        Err(e) => {
            userlib::log!("region `{name}`: {e:?}");
            None
        }
    }
}

fn source(channel: &mut Channel) -> i32 {
    let (Some(to), Some(region)) = (endpoint(channel, "to"), region("region")) else { return 1 };
    let buffer = userlib::arg_u64("buffer_kib", 64) * 1024;
    let total = userlib::arg_u64("bytes_mib", 64) * 1024 * 1024 / buffer.max(1);
    let Some(mut pool) = BufferPool::new(region, buffer) else {
        userlib::log!("no buffer of {buffer} bytes fits the region");
        return 1;
    };
    let words = (buffer / 8) as usize;
    let (mut sent, mut returned, mut refused, mut bounced) = (0u64, 0u64, 0u64, 0u64);
    let handle = |m: &Message, pool: &mut BufferPool, returned: &mut u64, refused: &mut u64, bounced: &mut u64| {
        if m.sender_badge == abi::KERNEL_BADGE {
            if Channel::notice(m).is_none() {
                *bounced += 1;
                // A bounced buffer is ours again.
                if let Some(d) = descriptor_of(m) {
                    let _ = pool.release(&d);
                }
            }
        } else if m.label == RETURN {
            match descriptor_of(m).map(|d| pool.release(&d)) {
                Some(Ok(_)) => *returned += 1,
                _ => *refused += 1,
            }
        }
    };
    let start = userlib::rdtsc();
    while sent < total {
        while let Some(m) = channel.try_recv() {
            handle(&m, &mut pool, &mut returned, &mut refused, &mut bounced);
        }
        let Some(b) = pool.alloc() else {
            core::hint::spin_loop();
            continue;
        };
        let _ = pool.region().fill_words(b.offset, words, |i| word(sent, i));
        let d = pool.descriptor(&b, buffer as u32, ACCESS_RO);
        let Ok(mut m) = descriptor_message(to, DATA, &d, &sent.to_le_bytes()) else { return 1 };
        m.sequence = sent as u32;
        channel.send_message(&m);
        sent += 1;
    }
    // The last buffer, read by the sink after we stopped.
    let b = loop {
        if let Some(b) = pool.alloc() {
            break b;
        }
        if let Some(m) = channel.try_recv() {
            handle(&m, &mut pool, &mut returned, &mut refused, &mut bounced);
        }
    };
    let _ = pool.region().fill_words(b.offset, words, |i| word(u64::MAX, i));
    let d = pool.descriptor(&b, buffer as u32, ACCESS_RO);
    let Ok(m) = descriptor_message(to, LAST, &d, &sent.to_le_bytes()) else { return 1 };
    channel.send_message(&m);
    let ticks = userlib::rdtsc().wrapping_sub(start);
    userlib::log!(
        "source: sent {sent} buffers of {buffer} bytes ({} MiB) in {ticks} TSC ticks, {returned} returned, {refused} returns refused, {bounced} bounced",
        sent * buffer / (1024 * 1024)
    );
    0
}

fn sink(channel: &mut Channel) -> i32 {
    let Some(from) = endpoint(channel, "from") else { return 1 };
    let hostile = endpoint(channel, "hostile");
    let source_badge = channel.info().endpoint_badges[from as usize];
    let hostile_badge = hostile.map(|h| channel.info().endpoint_badges[h as usize]);
    let mut copy = [0u8; MAX_BUFFER];
    let (mut buffers, mut bytes, mut bad, mut out_of_order, mut foreign) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut last: Option<(Descriptor, u64)> = None;
    let mut source_stopped = false;
    let mut hostile_done = hostile.is_none();
    let (mut rewrites, mut good_copies, mut mixed_copies, mut changed_in_place) = (0u64, 0u64, 0u64, 0u64);
    let mut start = 0;
    loop {
        if source_stopped
            && hostile_done
            && let Some((d, sent)) = last
        {
            let n = match copy_out(&d, &mut copy) {
                Ok(n) => n,
                Err(e) => {
                    userlib::log!("sink: the last buffer cannot be read: {e:?}");
                    return 1;
                }
            };
            let intact = copy[..n]
                .chunks_exact(8)
                .enumerate()
                .all(|(i, w)| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])) == word(u64::MAX, i));
            userlib::log!(
                "sink: after the source stopped for good, its last buffer reads back {} ({n} bytes)",
                if intact { "intact" } else { "CHANGED" }
            );
            let ticks = userlib::rdtsc().wrapping_sub(start);
            userlib::log!(
                "sink: checked {buffers} buffers, {} MiB, every byte, in {ticks} TSC ticks: {bad} bad, {out_of_order} out of order, source says it sent {sent}; {foreign} foreign messages",
                bytes / (1024 * 1024)
            );
            if hostile.is_some() {
                userlib::log!(
                    "sink: rewritten after sending: {rewrites} buffers, {good_copies} copies matched their checksum, {mixed_copies} copies caught mixed, 0 used unchecked; the region changed between two in-place reads {changed_in_place} times"
                );
            }
            return if intact && bad == 0 && out_of_order == 0 && sent == buffers { 0 } else { 1 };
        }
        let m = channel.recv();
        if m.sender_badge == abi::KERNEL_BADGE {
            if let Some(n) = Channel::notice(&m)
                && m.destination_endpoint == from
                && n.kind == abi::notice::GAVE_UP
            {
                source_stopped = true;
            }
            continue;
        }
        let from_source = abi::server_index_of_badge(m.sender_badge) == abi::server_index_of_badge(source_badge);
        let from_hostile =
            hostile_badge.is_some_and(|h| abi::server_index_of_badge(m.sender_badge) == abi::server_index_of_badge(h));
        match (m.label, descriptor_of(&m)) {
            (DATA, Some(d)) if from_source => {
                if buffers == 0 {
                    start = userlib::rdtsc();
                }
                let sequence =
                    u64::from_le_bytes(inline_of(&m).get(..8).and_then(|s| s.try_into().ok()).unwrap_or([0; 8]));
                match copy_out(&d, &mut copy) {
                    Ok(n) => {
                        let ok = copy[..n]
                            .chunks_exact(8)
                            .enumerate()
                            .all(|(i, w)| u64::from_ne_bytes(w.try_into().unwrap_or([0; 8])) == word(sequence, i));
                        bad += u64::from(!ok || n % 8 != 0);
                        out_of_order += u64::from(sequence != buffers);
                        bytes += n as u64;
                    }
                    Err(_) => bad += 1,
                }
                buffers += 1;
                if let Ok(back) = descriptor_message(from, RETURN, &d, &[]) {
                    channel.send_message(&back);
                }
            }
            (LAST, Some(d)) if from_source => {
                let sent = u64::from_le_bytes(inline_of(&m).get(..8).and_then(|s| s.try_into().ok()).unwrap_or([0; 8]));
                last = Some((d, sent));
            }
            (REWRITE, Some(d)) if from_hostile => {
                rewrites += 1;
                let checksum =
                    u64::from_le_bytes(inline_of(&m).get(..8).and_then(|s| s.try_into().ok()).unwrap_or([0; 8]));
                // In place, twice: shows what the copy protects against.
                let (mut first, mut second) = ([0u8; 64], [0u8; 64]);
                if let Ok(r) = Region::at(usize::from(d.region)) {
                    let _ = r.read(d.offset, &mut first);
                    userlib::spin_us(5);
                    let _ = r.read(d.offset, &mut second);
                }
                changed_in_place += u64::from(first != second);
                // The rule: copy, then validate and use only the copy.
                if let Ok(n) = copy_out(&d, &mut copy) {
                    let sum = copy[..n]
                        .chunks_exact(8)
                        .fold(0u64, |s, w| s.wrapping_add(u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]))));
                    if sum == checksum { good_copies += 1 } else { mixed_copies += 1 }
                }
                if let (Some(h), Ok(back)) = (hostile, descriptor_message(0, RETURN, &d, &[])) {
                    let mut back = back;
                    back.destination_endpoint = h;
                    channel.send_message(&back);
                }
            }
            (DONE, None) if from_hostile => hostile_done = true,
            _ => foreign += 1,
        }
    }
}

fn hostile(channel: &mut Channel) -> i32 {
    let (Some(to), Some(own), Some(private), Some(foreign)) =
        (endpoint(channel, "to"), region("own"), region("private"), region("foreign"))
    else {
        return 1;
    };
    let rounds = userlib::arg_u64("rounds", 20);
    let count = abi::region::MAX_REGIONS as u16;
    let cases: [(&str, Descriptor); 6] = [
        ("out of range", own.descriptor(own.size() - 8, 16, ACCESS_RO)),
        ("a region it does not hold", Descriptor { region: count - 1, access: ACCESS_RO, length: 16, offset: 0 }),
        ("a region the receiver does not hold", private.descriptor(0, 16, ACCESS_RO)),
        ("rw asked on its ro grant", foreign.descriptor(0, 16, ACCESS_RW)),
        ("rw asked where the receiver holds ro", own.descriptor(0, 16, ACCESS_RW)),
        ("a wrapping offset", own.descriptor(u64::MAX - 7, 16, ACCESS_RO)),
    ];
    let mut sent = 0u32;
    for (i, (_, d)) in cases.iter().enumerate() {
        let Ok(mut m) = descriptor_message(to, BAD, d, &[]) else { return 1 };
        m.sequence = i as u32;
        channel.send_message(&m);
        sent += 1;
    }
    // A descriptor flag on a payload too short to hold one.
    let Ok(mut short) = Message::new(to, BAD, &[1, 2, 3, 4, 5, 6, 7, 8]) else { return 1 };
    short.flags = FLAG_DESCRIPTOR;
    short.sequence = cases.len() as u32;
    channel.send_message(&short);
    sent += 1;
    let mut bounced = [false; 7];
    let mut other = 0u32;
    while bounced.iter().any(|b| !b) {
        let m = channel.recv();
        if m.sender_badge == abi::KERNEL_BADGE && m.label == abi::bounce::BAD_DESCRIPTOR && (m.sequence as usize) < 7 {
            bounced[m.sequence as usize] = true;
        } else {
            other += 1;
        }
    }
    for (i, (what, _)) in cases.iter().enumerate() {
        userlib::log!("hostile: descriptor with {what}: bounced `bad buffer descriptor` = {}", bounced[i]);
    }
    userlib::log!(
        "hostile: {sent} bad descriptors sent, {} bounced with `bad buffer descriptor`, {other} other messages",
        bounced.iter().filter(|b| **b).count()
    );
    // Buffers rewritten after sending.
    let words = 512usize;
    for round in 0..rounds {
        let _ = own.fill_words(0, words, |i| word(round, i));
        let checksum = (0..words).fold(0u64, |s, i| s.wrapping_add(word(round, i)));
        let d = own.descriptor(0, (words * 8) as u32, ACCESS_RO);
        let Ok(m) = descriptor_message(to, REWRITE, &d, &checksum.to_le_bytes()) else { return 1 };
        channel.send_message(&m);
        let mut flip = 0u64;
        loop {
            // Keep rewriting until the receiver gives it back.
            flip = flip.wrapping_add(1);
            let _ = own.fill_words(((flip as usize % words) * 8) as u64, 1, |_| flip);
            if let Some(m) = channel.try_recv()
                && m.label == RETURN
            {
                break;
            }
        }
    }
    let Ok(done) = Message::new(to, DONE, &[]) else { return 1 };
    channel.send_message(&done);
    userlib::log!("hostile: {rounds} buffers rewritten after sending until returned");
    0
}
