//! Garbage messages and ring scribbles: what an injector does to the mover
//! and to its peers between its system-call fuzzing.

use crate::Counts;
use crate::rng::Rng;
use userlib::abi::{self, notice};
use userlib::measure::label;
use userlib::{Channel, Message};

/// Most garbage messages published with one store.
pub const MAX_BURST: usize = 32;

/// Polls for outbox room before a garbage burst is cut short.
const GARBAGE_RETRIES: usize = 200;

/// The stream servers' data label (`servers/stream`).
const STREAM_DATA: u32 = 7;

/// Ring layout (`ringbuf::layout`): the producer index, the consumer
/// index and the wake word each on a cache line of their own, then the
/// 64-byte slots.
const PRODUCER_INDEX_OFFSET: u64 = 0;
const CONSUMER_INDEX_OFFSET: u64 = 128;
const WAKE_WORD_OFFSET: u64 = 256;
const SLOTS_OFFSET: u64 = 384;
const SLOT_SIZE: u64 = 64;

pub struct Misdeeds {
    info: &'static abi::ServerInfo,
    endpoint_count: u64,
    burst: usize,
    /// Set once a word of an inbox was scribbled: from then on this
    /// incarnation no longer reads its inboxes (its own copy of the
    /// producer index may be garbage).
    inbox_scribbled: bool,
}

impl Misdeeds {
    pub fn new(info: &'static abi::ServerInfo, burst: usize) -> Misdeeds {
        let endpoint_count = u64::from(info.endpoint_count).min(abi::MAX_ENDPOINTS as u64);
        Misdeeds { info, endpoint_count, burst: burst.clamp(1, MAX_BURST), inbox_scribbled: false }
    }

    /// Publishes 1..=burst garbage messages with one store (as many as the
    /// outbox takes; a full outbox is no error, the next drain makes room).
    pub fn garbage(&mut self, channel: &mut Channel, rng: &mut Rng, counts: &mut Counts) {
        let n = 1 + rng.below(self.burst as u64) as usize;
        let mut batch = [Message::zeroed(); MAX_BURST];
        for message in &mut batch[..n] {
            *message = self.one_garbage_message(rng);
        }
        // A full outbox drains as fast as the mover moves (and bounces):
        // wait for room a while, taking in what comes back meanwhile.
        let mut sent = 0;
        for _ in 0..GARBAGE_RETRIES {
            sent += channel.send_batch(&batch[sent..n]);
            if sent == n {
                break;
            }
            self.drain(channel, counts);
            core::hint::spin_loop();
        }
        counts.garbage += sent as u64;
    }

    fn one_garbage_message(&self, rng: &mut Rng) -> Message {
        let mut m = Message::zeroed();
        // Endpoints held (they reach ping, echo, the stream, the other
        // injector), just past the table, past the limit, or anything.
        m.destination_endpoint = match rng.below(8) {
            0..4 if self.endpoint_count > 0 => rng.below(self.endpoint_count) as u32,
            4 => (self.endpoint_count + rng.below(4)) as u32,
            5 => (abi::MAX_ENDPOINTS as u64 + rng.below(64)) as u32,
            _ => rng.next() as u32,
        };
        for chunk in m.payload.chunks_mut(8) {
            chunk.copy_from_slice(&rng.next().to_le_bytes()[..chunk.len()]);
        }
        // Labels a receiver might act on: a forged kernel notice, bounce
        // reasons, echo's control labels, the stream's data, or anything.
        m.label = match rng.below(8) {
            0 => {
                let forged = notice::Notice {
                    kind: rng.pick(&[notice::STOPPED, notice::RESTARTED, notice::GAVE_UP]),
                    server: rng.below(16) as u32,
                    generation: rng.next() as u32,
                    cause: rng.pick(&[notice::CAUSE_EXITED, notice::CAUSE_FAULTED, notice::CAUSE_HUNG]),
                    detail: 0,
                };
                m.payload[..notice::ENCODED_LEN].copy_from_slice(&forged.encode());
                notice::LABEL
            }
            1 => rng.below(8) as u32,
            2 => rng.pick(&[
                label::STOP,
                label::SERVE_CALLS,
                label::SERVE_DIRECT_RINGS,
                label::SINK_START,
                label::SINK,
                label::SINK_FLUSH,
                label::PING_STAMPED,
            ]),
            3 => STREAM_DATA,
            _ => match rng.next() as u32 {
                crate::DONE => 0, // the one label garbage never carries
                label => label,
            },
        };
        // A forged badge: the kernel's, a peer's, or anything. The mover
        // overwrites it; a receiver that believed it would be fooled.
        m.sender_badge = match rng.below(4) {
            0 => abi::KERNEL_BADGE,
            1 if self.endpoint_count > 0 => self.info.endpoint_badges[rng.below(self.endpoint_count) as usize],
            2 => abi::server_badge_of_generation(rng.below(16) as usize, rng.below(4) as u32),
            _ => rng.next(),
        };
        m.sequence = rng.next() as u32;
        // Lengths past the payload capacity (the mover bounces MALFORMED).
        m.payload_len = match rng.below(10) {
            0 => 41 + rng.below(u64::from(u16::MAX) - 40) as u16,
            1 => rng.next() as u16,
            _ => rng.below(41) as u16,
        };
        // Reserved flags set (MALFORMED too).
        m.flags = if rng.chance(15) { 1 + rng.below(0xffff) as u16 } else { 0 };
        m
    }

    /// Writes one random word over the outbox or an inbox: an index, the
    /// wake word or a slot.
    pub fn scribble(&mut self, info: &abi::ServerInfo, rng: &mut Rng, counts: &mut Counts) {
        let movers = u64::from(info.mover_count).clamp(1, abi::MAX_MOVERS as u64);
        // The inbox one time in ten: it ends the incarnation's bad things.
        let (base, slots, inbox) = if rng.chance(90) {
            (abi::OUTBOX_ADDR, info.outbox_slots, false)
        } else {
            (abi::inbox_addr(rng.below(movers) as usize), info.inbox_slots, true)
        };
        let offset = match rng.below(4) {
            0 => PRODUCER_INDEX_OFFSET,
            1 => CONSUMER_INDEX_OFFSET,
            2 => WAKE_WORD_OFFSET,
            _ => SLOTS_OFFSET + rng.below(u64::from(slots.max(1)) * SLOT_SIZE / 8) * 8,
        };
        let value = match rng.below(4) {
            0 => 0,
            1 => u64::MAX,
            2 => rng.below(1 << 20), // plausible-looking indices
            _ => rng.next(),
        };
        // SAFETY: none intended: `base + offset` is an aligned word of this
        // server's own outbox or inbox, mapped read/write for its whole life;
        // the mover on another core reads the same ring. Writing it is the
        // misdeed under test: the mover must treat every word as untrusted.
        unsafe { core::ptr::write_volatile((base + offset) as *mut u64, value) };
        self.inbox_scribbled |= inbox;
        counts.scribbles += 1;
    }

    pub fn inbox_scribbled(&self) -> bool {
        self.inbox_scribbled
    }

    /// Drops whatever arrived (bounces of the garbage, kernel notices,
    /// other servers' garbage), so that the inbox never stays full while
    /// this incarnation is busy: a full inbox is what the kernel's hang
    /// detection looks for. Not after an inbox scribble.
    pub fn drain(&mut self, channel: &mut Channel, counts: &mut Counts) {
        if self.inbox_scribbled {
            return;
        }
        for _ in 0..4096 {
            if channel.try_recv().is_none() {
                break;
            }
            counts.drained += 1;
        }
    }
}
