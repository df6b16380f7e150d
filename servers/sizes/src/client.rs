//! The measuring end: per size and path, timed round trips (the message
//! out, checked by the peer, a one-slot answer back) and a timed stream
//! (messages back to back, then a flush the peer answers with its counts),
//! printed as `BENCH` lines; then the cost rows (one-slot messages with
//! and without a descriptor through the mover).
//!
//! Invariants: the time of a message includes writing its bytes (the
//! slots, or the pool buffer) and the peer's copy and check; a figure's
//! `ok=` is what the peer counted good (every byte checked), never what
//! the client sent; descriptor buffers in flight are capped so returns
//! always fit the client's inbox.

use crate::link::{Broken, Link};
use crate::peer::cost_descriptor;
use crate::protocol::{Header, Path, SLOT_PAYLOAD, WORDS_PER_SLOT, descriptor_in, first_word, label, u64_at, word};
use userlib::abi::region::{ACCESS_RO, DESCRIPTOR_LEN};
use userlib::measure::Samples;
use userlib::{BufferPool, Message, Region, bench_mark, rdtsc};

/// Most descriptor buffers out at once (returns then always fit the inbox).
const MAX_IN_FLIGHT: usize = 64;
/// Slots or descriptor messages published together.
const BATCH: usize = 16;

/// How much one row does.
#[derive(Clone, Copy)]
pub struct Plan {
    pub round_trips: usize,
    pub warmup: usize,
    /// Bytes per stream (at least `min_messages` messages).
    pub stream_bytes: u64,
    pub min_messages: u64,
}

/// The client's fixed parts.
pub struct Client<'s> {
    pub samples: &'s mut [u64],
    /// The data region (we own it, `rw`).
    pub region: Region,
    /// Answers that were not what the protocol expected.
    pub unexpected: u64,
}

impl Client<'_> {
    fn header(&self, path: Path, size: usize, round_trips: bool) -> [u8; 8] {
        Header { path, round_trips, size: size as u32, sender_region: self.region.index() }.encode()
    }

    /// Waits for the next message labelled `wanted`, handing every
    /// `RETURN` before it to `on_return` (a descriptor stream's buffers).
    fn wait_for<L: Link>(
        &mut self,
        link: &mut L,
        wanted: u32,
        mut on_return: impl FnMut(&Message),
    ) -> Result<Message, Broken> {
        let mut inbox = [Message::zeroed(); 1];
        loop {
            link.receive_some(&mut inbox)?;
            let m = inbox[0];
            if m.label == wanted {
                return Ok(m);
            }
            if m.label == label::RETURN {
                on_return(&m);
            } else {
                self.unexpected += 1;
            }
        }
    }

    /// Message `number` of an inline run, as slots, published `BATCH` at a time.
    fn send_inline<L: Link>(link: &mut L, path: Path, size: usize, number: u32) -> Result<(), Broken> {
        let first = first_word(path, size, number);
        let words = size / 8;
        let mut slots = [Message::zeroed(); BATCH];
        let mut filled = 0;
        let mut w = 0;
        while w < words {
            let take = WORDS_PER_SLOT.min(words - w);
            let mut payload = [0u8; SLOT_PAYLOAD];
            for (j, chunk) in payload.chunks_exact_mut(8).take(take).enumerate() {
                chunk.copy_from_slice(&word(first, w + j).to_le_bytes());
            }
            slots[filled] = link.message(label::FRAGMENT, number, &payload[..take * 8]);
            filled += 1;
            w += take;
            if filled == BATCH || w == words {
                link.send_all(&slots[..filled])?;
                filled = 0;
            }
        }
        Ok(())
    }

    /// Fills a pool buffer with message `number`'s pattern and builds its
    /// descriptor message.
    fn data_message<L: Link>(link: &L, pool: &mut BufferPool, path: Path, size: usize, number: u32) -> Option<Message> {
        let buffer = pool.alloc()?;
        let first = first_word(path, size, number);
        let _ = pool.region().fill_words(buffer.offset, size / 8, |i| word(first, i));
        let d = pool.descriptor(&buffer, size as u32, ACCESS_RO);
        let mut m = link.message(label::DATA, number, &d.encode());
        m.flags = link.descriptor_flags();
        Some(m)
    }

    /// Round trips of `path` with `size`-byte messages: `BENCH latency`.
    pub fn round_trips<L: Link>(&mut self, link: &mut L, path: Path, size: usize, plan: Plan) -> Result<(), Broken> {
        link.send(&link.message(label::START, 0, &self.header(path, size, true)))?;
        let n = plan.round_trips.min(self.samples.len());
        let mut pool = if path.inline() { None } else { BufferPool::new(self.region, size as u64) };
        let mut samples = Samples::new(self.samples);
        let mut ok = 0u64;
        let mut unexpected = 0u64;
        for round in 0..plan.warmup + n {
            let number = round as u32;
            let start = rdtsc();
            let answer = match (&mut pool, path) {
                (Some(pool), Path::DescriptorMover | Path::DescriptorDirect) => {
                    let Some(m) = Self::data_message(link, pool, path, size, number) else { break };
                    link.send(&m)?;
                    let m = wait_for_label(link, label::RETURN, &mut unexpected)?;
                    let returned = descriptor_in(&m).is_some_and(|d| pool.release(&d).is_ok());
                    (m, returned)
                }
                (_, Path::CostPlain | Path::CostDescriptor) => {
                    link.send(&cost_message(link, path, self.region.index(), number))?;
                    (wait_for_label(link, label::ACK, &mut unexpected)?, true)
                }
                _ => {
                    Self::send_inline(link, path, size, number)?;
                    (wait_for_label(link, label::ACK, &mut unexpected)?, true)
                }
            };
            let end = rdtsc();
            let (m, returned) = answer;
            let verdict = if m.label == label::RETURN {
                m.payload_bytes().get(DESCRIPTOR_LEN)
            } else {
                m.payload_bytes().first()
            };
            if round >= plan.warmup {
                samples.record(start, end);
                ok += u64::from(returned && m.sequence == number && verdict == Some(&1));
            }
        }
        self.unexpected += unexpected;
        let (median, p99, min, max) = samples.stats();
        let name = if matches!(path, Path::CostPlain | Path::CostDescriptor) { "sizes-cost-rtt" } else { "sizes-rtt" };
        userlib::log!(
            "BENCH latency name={name} path={} size={size} slots={} n={n} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok} tsc_backwards={}",
            path.name(),
            path.slots(size),
            samples.backwards()
        );
        Ok(())
    }

    /// A stream of `path` with `size`-byte messages: `BENCH stream`.
    pub fn stream<L: Link>(&mut self, link: &mut L, path: Path, size: usize, plan: Plan) -> Result<(), Broken> {
        let cost = matches!(path, Path::CostPlain | Path::CostDescriptor);
        let count = if cost { plan.min_messages } else { (plan.stream_bytes / size as u64).max(plan.min_messages) };
        let phase = match path {
            Path::CostPlain => Some("sizes-cost-plain"),
            Path::CostDescriptor => Some("sizes-cost-descriptor"),
            _ => None,
        };
        link.send(&link.message(label::START, 0, &self.header(path, size, false)))?;
        let mut pool = if path.inline() || cost { None } else { BufferPool::new(self.region, size as u64) };
        let (mut returned, mut refused) = (0u64, 0u64);
        if let Some(phase) = phase {
            bench_mark(phase, true);
        }
        let start = rdtsc();
        if let Some(pool) = pool.as_mut() {
            let mut batch = [Message::zeroed(); BATCH];
            let (mut filled, mut number) = (0usize, 0u32);
            let mut inbox = [Message::zeroed(); 32];
            while u64::from(number) < count {
                let got = link.receive(&mut inbox)?;
                for m in &inbox[..got] {
                    take_return(pool, m, &mut returned, &mut refused, &mut self.unexpected);
                }
                let room = pool.outstanding() < MAX_IN_FLIGHT;
                match room.then(|| Self::data_message(link, pool, path, size, number)).flatten() {
                    Some(m) => {
                        batch[filled] = m;
                        filled += 1;
                        number += 1;
                        if filled == BATCH || u64::from(number) == count {
                            link.send_all(&batch[..filled])?;
                            filled = 0;
                        }
                    }
                    None if filled > 0 => {
                        link.send_all(&batch[..filled])?;
                        filled = 0;
                    }
                    None => core::hint::spin_loop(),
                }
            }
        } else {
            for number in 0..count as u32 {
                if cost {
                    link.send(&cost_message(link, path, self.region.index(), number))?;
                } else {
                    Self::send_inline(link, path, size, number)?;
                }
            }
        }
        link.send(&link.message(label::FLUSH, 0, &[]))?;
        let mut unexpected = 0u64;
        let flushed = match pool.as_mut() {
            Some(pool) => self.wait_for(link, label::FLUSHED, |m| {
                take_return(pool, m, &mut returned, &mut refused, &mut unexpected)
            })?,
            None => self.wait_for(link, label::FLUSHED, |_| unexpected += 1)?,
        };
        let end = rdtsc();
        if let Some(phase) = phase {
            bench_mark(phase, false);
        }
        self.unexpected += unexpected;
        let (good, bad) = (u64_at(&flushed, 0), u64_at(&flushed, 8));
        // A buffer that did not come back is a message not done.
        let outstanding = pool.as_ref().map_or(0, |p| p.outstanding() as u64);
        let ok = good.saturating_sub(outstanding + refused);
        let slots = path.slots(size);
        match end.checked_sub(start) {
            Some(cycles) => userlib::log!(
                "BENCH stream name={} path={} size={size} slots={slots} n={count} cycles={cycles} ok={ok} tsc_backwards=0 bad={bad} returned={returned}",
                if cost { "sizes-cost-stream" } else { "sizes-stream" },
                path.name()
            ),
            None => userlib::log!(
                "BENCH dropped kind=stream name=sizes-stream path={} size={size} n={count} ok={ok} tsc_backwards=1",
                path.name()
            ),
        }
        Ok(())
    }
}

/// A returned buffer of a descriptor stream: back into the pool.
fn take_return(pool: &mut BufferPool, m: &Message, returned: &mut u64, refused: &mut u64, unexpected: &mut u64) {
    if m.label != label::RETURN {
        *unexpected += 1;
        return;
    }
    match descriptor_in(m).map(|d| pool.release(&d)) {
        Some(Ok(_)) => *returned += 1,
        _ => *refused += 1,
    }
}

/// Waits for the next message labelled `wanted` (counting others).
fn wait_for_label<L: Link>(link: &mut L, wanted: u32, unexpected: &mut u64) -> Result<Message, Broken> {
    let mut inbox = [Message::zeroed(); 1];
    loop {
        link.receive_some(&mut inbox)?;
        if inbox[0].label == wanted {
            return Ok(inbox[0]);
        }
        *unexpected += 1;
    }
}

/// Cost-row message `number`: 16 bytes, with the descriptor flag or not.
fn cost_message<L: Link>(link: &L, path: Path, region: u16, number: u32) -> Message {
    let mut m = link.message(label::COST, number, &cost_descriptor(region, number).encode());
    if path == Path::CostDescriptor {
        m.flags = link.descriptor_flags();
    }
    m
}
