//! The answering end: reassembles inline messages, copies descriptor
//! buffers out (the trust rule: never checked in place), checks every byte
//! against the pattern, returns buffers, answers round trips and flushes.
//!
//! Invariants: a message counts as good only if every byte of it checked
//! out and it came in order (message numbers 0, 1, 2, … per run); a
//! descriptor on a direct ring (nobody translated it) must name the region
//! the run header announced and lie inside it (`copy_out` checks the
//! range), or it counts as bad and nothing is read.

use crate::link::{Broken, Link};
use crate::protocol::{Header, MAX_SIZE, Path, WordCheck, check, descriptor_in, first_word, label};
use userlib::abi::region::{ACCESS_RO, DESCRIPTOR_LEN, Descriptor, FLAG_DESCRIPTOR};
use userlib::region::copy_out_words;
use userlib::{Message, Region};

/// What to do after [`serve`] returned.
pub enum Next {
    /// Serve the direct rings (`DIRECT_BEGIN` came through the mover).
    Direct,
    /// Back to the mover's rings (`DIRECT_END` on the direct ring).
    Mover,
    Stop,
}

/// The peer's state across runs.
pub struct Receiver {
    /// Our handle to the data region (held `ro`).
    pub region: Region,
    header: Option<Header>,
    expected: u32,
    /// Bytes of the current inline message reassembled so far.
    offset: usize,
    good: u64,
    bad: u64,
    /// Every message checked, all runs.
    pub checked: u64,
    pub bad_total: u64,
}

impl Receiver {
    pub fn new(region: Region) -> Receiver {
        Receiver { region, header: None, expected: 0, offset: 0, good: 0, bad: 0, checked: 0, bad_total: 0 }
    }

    fn count(&mut self, ok: bool) {
        self.checked += 1;
        if ok {
            self.good += 1;
        } else {
            self.bad += 1;
            self.bad_total += 1;
        }
    }

    /// One slot of an inline message; `Some(ok)` when it completed one.
    fn fragment(&mut self, m: &Message, copy: &mut [u8; MAX_SIZE]) -> Option<bool> {
        let Some(h) = self.header.filter(|h| h.path.inline()) else {
            self.count(false);
            return Some(false);
        };
        let size = (h.size as usize).min(MAX_SIZE);
        if m.sequence != self.expected {
            // A slot lost or out of order: this message is bad, resync.
            self.count(false);
            (self.expected, self.offset) = (m.sequence, 0);
        }
        let bytes = m.payload_bytes();
        let end = self.offset + bytes.len();
        if end > size {
            self.count(false);
            (self.expected, self.offset) = (self.expected.wrapping_add(1), 0);
            return Some(false);
        }
        copy[self.offset..end].copy_from_slice(bytes);
        self.offset = end;
        if end < size {
            return None;
        }
        let ok = check(&copy[..size], first_word(h.path, size, self.expected));
        self.count(ok);
        (self.expected, self.offset) = (self.expected.wrapping_add(1), 0);
        Some(ok)
    }

    /// A descriptor message: copy the buffer out, check the copy. Returns
    /// the descriptor as received (to hand back) and whether it was good.
    fn data(&mut self, m: &Message, copy: &mut [u8; MAX_SIZE], direct: bool) -> (Option<Descriptor>, bool) {
        let (Some(h), Some(d)) = (self.header, descriptor_in(m)) else {
            self.count(false);
            return (None, false);
        };
        let size = h.size as usize;
        // Through the mover the descriptor is in our view already; on a
        // direct ring it is the sender's, and must name the announced region.
        let view = if direct {
            if d.region != h.sender_region {
                self.count(false);
                return (Some(d), false);
            }
            Descriptor { region: self.region.index(), ..d }
        } else {
            d
        };
        let ok = !h.path.inline() && d.length as usize == size && size <= MAX_SIZE && m.sequence == self.expected && {
            // Copied and checked in one pass (each word loaded once,
            // stored into our copy and compared): the check sees
            // exactly what the copy holds.
            let mut words = WordCheck::new(first_word(h.path, size, m.sequence));
            copy_out_words(&view, &mut copy[..], |w| words.word(w)).is_ok() && words.ok()
        };
        self.count(ok);
        self.expected = m.sequence.wrapping_add(1);
        (Some(d), ok)
    }

    /// A cost-row message: its number and its 16 bytes, nothing else.
    fn cost(&mut self, m: &Message) -> bool {
        let Some(h) = self.header else {
            self.count(false);
            return false;
        };
        let (region, flags) = match h.path {
            // The mover rewrote it into our view.
            Path::CostDescriptor => (self.region.index(), FLAG_DESCRIPTOR),
            _ => (h.sender_region, 0),
        };
        let expected = cost_descriptor(region, m.sequence);
        let ok = m.sequence == self.expected
            && m.flags == flags
            && m.payload_bytes().len() == DESCRIPTOR_LEN
            && descriptor_in(m) == Some(expected);
        self.count(ok);
        self.expected = m.sequence.wrapping_add(1);
        ok
    }
}

/// The descriptor of cost-row message `number` (64 bytes at one of 64
/// places; the mover checks it, nobody reads the bytes).
pub fn cost_descriptor(region: u16, number: u32) -> Descriptor {
    Descriptor { region, access: ACCESS_RO, length: 64, offset: u64::from(number % 64) * 64 }
}

/// Serves `link` until the client switches links or stops.
pub fn serve<L: Link>(
    link: &mut L,
    state: &mut Receiver,
    copy: &mut [u8; MAX_SIZE],
    direct: bool,
) -> Result<Next, Broken> {
    let mut inbox = [Message::zeroed(); 32];
    loop {
        let n = link.receive_some(&mut inbox)?;
        for m in &inbox[..n] {
            match m.label {
                label::START => {
                    state.header = Header::decode(m.payload_bytes());
                    (state.expected, state.offset, state.good, state.bad) = (0, 0, 0, 0);
                }
                label::FRAGMENT => {
                    if let Some(ok) = state.fragment(m, copy)
                        && state.header.is_some_and(|h| h.round_trips)
                    {
                        let ack = link.message(label::ACK, state.expected.wrapping_sub(1), &[u8::from(ok)]);
                        link.send(&ack)?;
                    }
                }
                label::DATA => {
                    let (descriptor, ok) = state.data(m, copy, direct);
                    if let Some(d) = descriptor {
                        let mut payload = [0u8; DESCRIPTOR_LEN + 1];
                        payload[..DESCRIPTOR_LEN].copy_from_slice(&d.encode());
                        payload[DESCRIPTOR_LEN] = u8::from(ok);
                        let mut back = link.message(label::RETURN, m.sequence, &payload);
                        back.flags = link.descriptor_flags();
                        link.send(&back)?;
                    }
                }
                label::COST => {
                    let ok = state.cost(m);
                    if state.header.is_some_and(|h| h.round_trips) {
                        let ack = link.message(label::ACK, m.sequence, &[u8::from(ok)]);
                        link.send(&ack)?;
                    }
                }
                label::FLUSH => {
                    let mut payload = [0u8; 16];
                    payload[..8].copy_from_slice(&state.good.to_le_bytes());
                    payload[8..].copy_from_slice(&state.bad.to_le_bytes());
                    link.send(&link.message(label::FLUSHED, 0, &payload))?;
                }
                label::DIRECT_BEGIN if !direct => return Ok(Next::Direct),
                label::DIRECT_END if direct => return Ok(Next::Mover),
                label::STOP => return Ok(Next::Stop),
                _ => state.count(false),
            }
        }
    }
}
