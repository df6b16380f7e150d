//! What the two ends of the size sweep agree on: the paths, the labels, the
//! data pattern every byte is checked against, and the run header.
//!
//! Invariants: a buffer's pattern depends on (path, size, message number),
//! so a byte from another message, another size or another path never
//! checks out; [`check`] looks at every byte it is given.

use userlib::Message;
use userlib::abi::region::{DESCRIPTOR_LEN, Descriptor};

/// Payload bytes of one slot.
pub const SLOT_PAYLOAD: usize = Message::zeroed().payload.len();
/// Largest message of the sweep (the peer's private copy is this big).
pub const MAX_SIZE: usize = 64 * 1024;
/// Words of pattern in one full slot.
pub const WORDS_PER_SLOT: usize = SLOT_PAYLOAD / 8;

/// How a message of the sweep travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    /// Its bytes inline, in as many slots as it takes, through the mover.
    InlineMover,
    /// A descriptor of a pool buffer through the mover; the peer copies the
    /// buffer out, checks it and returns the descriptor.
    DescriptorMover,
    /// Inline slots over a user<->user direct ring (no mover).
    InlineDirect,
    /// A descriptor over a direct ring (no mover checks it: the peer does).
    DescriptorDirect,
    /// The mover's per-message cost: one slot with 16 payload bytes and no
    /// descriptor flag (the bytes are a descriptor's, unchecked as such).
    CostPlain,
    /// The same slot with the descriptor flag: the mover checks and
    /// rewrites it. Nobody touches the buffer.
    CostDescriptor,
}

impl Path {
    pub fn name(self) -> &'static str {
        match self {
            Path::InlineMover => "inline-mover",
            Path::DescriptorMover => "descriptor-mover",
            Path::InlineDirect => "inline-direct",
            Path::DescriptorDirect => "descriptor-direct",
            Path::CostPlain => "mover-plain",
            Path::CostDescriptor => "mover-descriptor",
        }
    }

    pub fn code(self) -> u8 {
        match self {
            Path::InlineMover => 1,
            Path::DescriptorMover => 2,
            Path::InlineDirect => 3,
            Path::DescriptorDirect => 4,
            Path::CostPlain => 5,
            Path::CostDescriptor => 6,
        }
    }

    pub fn of_code(code: u8) -> Option<Path> {
        [
            Path::InlineMover,
            Path::DescriptorMover,
            Path::InlineDirect,
            Path::DescriptorDirect,
            Path::CostPlain,
            Path::CostDescriptor,
        ]
        .into_iter()
        .find(|p| p.code() == code)
    }

    /// Whether its data goes inline (in slots).
    pub fn inline(self) -> bool {
        matches!(self, Path::InlineMover | Path::InlineDirect)
    }

    /// Slots one message of `size` bytes takes on this path.
    pub fn slots(self, size: usize) -> usize {
        if self.inline() { size.div_ceil(SLOT_PAYLOAD) } else { 1 }
    }
}

/// Labels of the protocol (both links).
pub mod label {
    /// Run header ([`super::Header`]): resets the peer's counts.
    pub const START: u32 = 0x5100;
    /// One slot of an inline message (sequence = message number).
    pub const FRAGMENT: u32 = 0x5101;
    /// A descriptor message (sequence = message number).
    pub const DATA: u32 = 0x5102;
    /// The peer's answer to one inline message in a round-trip run
    /// (payload: 1 if it checked out).
    pub const ACK: u32 = 0x5103;
    /// A buffer handed back (the descriptor as received); in a round-trip
    /// run also the answer (inline byte after the descriptor: 1 if good).
    pub const RETURN: u32 = 0x5104;
    /// End of a stream: the peer answers [`FLUSHED`].
    pub const FLUSH: u32 = 0x5105;
    /// Good and bad message counts (two u64 LE).
    pub const FLUSHED: u32 = 0x5106;
    /// Through the mover: serve the direct rings until [`DIRECT_END`].
    pub const DIRECT_BEGIN: u32 = 0x5107;
    /// On the direct ring: back to the mover's rings.
    pub const DIRECT_END: u32 = 0x5108;
    /// A cost-row message (one slot, sequence = message number).
    pub const COST: u32 = 0x5109;
    /// Exit.
    pub const STOP: u32 = 0x510a;
}

/// Added per word: odd, so consecutive words always differ.
const STEP: u64 = 0x9e37_79b9_7f4a_7c15;

/// The first word of message `number` of a run of `path` with `size`
/// bytes; word `i` is `first + i * STEP` (wrapping).
#[inline]
pub fn first_word(path: Path, size: usize, number: u32) -> u64 {
    let mut x = u64::from(number) | (size as u64) << 32 | u64::from(path.code()) << 56;
    // splitmix64's finaliser: every input bit moves every output bit.
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Word `i` of the pattern that starts with `first`.
#[inline(always)]
pub fn word(first: u64, i: usize) -> u64 {
    first.wrapping_add((i as u64).wrapping_mul(STEP))
}

/// Whether `bytes` (a whole number of words) is the pattern starting with
/// `first`: every word is compared, none skipped.
#[inline]
pub fn check(bytes: &[u8], first: u64) -> bool {
    let mut expected = first;
    let mut ok = bytes.len().is_multiple_of(8);
    for chunk in bytes.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(chunk);
        ok &= u64::from_le_bytes(w) == expected;
        expected = expected.wrapping_add(STEP);
    }
    ok
}

/// [`check`] one word at a time, for a copy that hands over each word as
/// it copies it (`userlib::region::copy_out_words`).
#[derive(Clone, Copy, Debug)]
pub struct WordCheck {
    expected: u64,
    ok: bool,
}

impl WordCheck {
    pub fn new(first: u64) -> WordCheck {
        WordCheck { expected: first, ok: true }
    }

    /// The next word of the buffer.
    #[inline(always)]
    pub fn word(&mut self, w: u64) {
        self.ok &= w == self.expected;
        self.expected = self.expected.wrapping_add(STEP);
    }

    /// Whether every word so far was the pattern's.
    pub fn ok(&self) -> bool {
        self.ok
    }
}

/// The START payload: what the peer must expect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub path: Path,
    /// Round trips (answer each message) or a stream (answer the flush).
    pub round_trips: bool,
    pub size: u32,
    /// The sender's index of the data region: what descriptors on a
    /// direct ring (which nobody translates) name.
    pub sender_region: u16,
}

impl Header {
    pub fn encode(&self) -> [u8; 8] {
        let s = self.size.to_le_bytes();
        let r = self.sender_region.to_le_bytes();
        [self.path.code(), u8::from(self.round_trips), r[0], r[1], s[0], s[1], s[2], s[3]]
    }

    pub fn decode(bytes: &[u8]) -> Option<Header> {
        let b: &[u8; 8] = bytes.get(..8)?.try_into().ok()?;
        Some(Header {
            path: Path::of_code(b[0])?,
            round_trips: b[1] != 0,
            sender_region: u16::from_le_bytes([b[2], b[3]]),
            size: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
}

/// The descriptor at the start of a message's payload, whatever its flags
/// (on a direct ring descriptor messages go with flags 0: the ring is ours).
pub fn descriptor_in(message: &Message) -> Option<Descriptor> {
    let bytes = message.payload_bytes();
    if bytes.len() < DESCRIPTOR_LEN {
        return None;
    }
    Descriptor::decode(bytes)
}

/// The u64 LE at `at` in the payload (0 if short).
pub fn u64_at(message: &Message, at: usize) -> u64 {
    message.payload_bytes().get(at..at + 8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(first: u64, words: usize) -> Vec<u8> {
        (0..words).flat_map(|i| word(first, i).to_le_bytes()).collect()
    }

    /// Word by word, the same verdict as the whole-buffer check: every
    /// word counts, a flipped byte anywhere is caught.
    #[test]
    fn word_check_agrees_with_check() {
        let first = first_word(Path::DescriptorMover, 4096, 7);
        let good = pattern(first, 512);
        let verdict = |bytes: &[u8]| {
            let mut words = WordCheck::new(first);
            bytes.chunks_exact(8).for_each(|c| words.word(u64::from_le_bytes(c.try_into().unwrap())));
            words.ok()
        };
        assert!(check(&good, first) && verdict(&good));
        for at in [0, 7, 8, 2047, 4095] {
            let mut bad = good.clone();
            bad[at] ^= 0x40;
            assert!(!check(&bad, first) && !verdict(&bad), "byte {at}");
        }
    }
}
