//! The messages between the network stack server (`netstack`) and its
//! application (`kv`): label numbers, the inline bytes that travel beside a
//! payload descriptor, and the hand-over of one TCP chunk. Pure code, so
//! both servers take these facts from one place and the host tests them.
//!
//! ```text
//!  netstack (owns region `to-app`)                      kv (owns region `to-stack`)
//!  READY, TCP_OPEN [slot], TCP_CLOSED [slot] ────────▶  (inline, no payload)
//!  TCP_DATA  desc(to-app) [epoch, slot] ─────────────▶  copy out, answer lines
//!        ◀──────────── TCP_SEND desc(to-stack) [epoch, slot]         the replies
//!        ◀──────────── TCP_DONE desc(to-app) [epoch, slot, taken]    buffer back
//!  STACK_RETURN desc(to-stack) [epoch] ──────────────▶  kv's buffer back
//!  UDP_DATA  desc(to-app) [epoch, ip, port] ─────────▶  copy out
//!        ◀──────────── APP_RETURN desc(to-app) [epoch]               buffer back
//!        ◀──────────── UDP_SEND desc(to-stack) [epoch, ip, port]     the echo
//!  UDP_EMPTY [epoch, ip, port] ──────────────────────▶  an empty datagram (inline)
//!        ◀──────────── UDP_SEND_EMPTY [epoch, ip, port]              its echo (inline)
//! ```
//!
//! Invariants of the protocol (each server keeps its side):
//! - A payload is a descriptor of one buffer of the sender's own region
//!   (`userlib::BufferPool`, [`BUFFER_BYTES`] each); the receiver copies
//!   it out before parsing it, and sends the same descriptor back once it
//!   has its copy. Messages without a payload stay inline.
//! - Every descriptor message carries the owner's `epoch` in its first
//!   four inline bytes, and every return echoes it. The owner changes its
//!   epoch, and takes back every buffer it lent, when it learns that the
//!   peer stopped or restarted; a return or a bounce with another epoch
//!   names a buffer already taken back and is ignored, so a late one can
//!   never free a buffer that was lent again since.
//! - Out of buffers, an owner does not wait for its peer: the stack leaves
//!   bytes in their socket (TCP's window closes) and datagrams in the UDP
//!   socket; kv answers as many lines of a chunk as it has buffers for and
//!   says how many bytes it took (`TCP_DONE`'s `taken`), and the stack
//!   offers the rest again later ([`Chunk`]); an echo without a buffer is
//!   dropped and counted.
//! - One TCP chunk per connection slot is with kv at a time, so a slot's
//!   bytes arrive in order even when part of a chunk is offered again, and
//!   `TCP_CLOSED` is sent only once no chunk of the slot is with kv (a new
//!   client on the slot never gets an old client's bytes).

#![no_std]
#![forbid(unsafe_code)]

/// Labels between the driver (`virtio-net`, owns region `rx-frames`) and
/// the stack (owns `tx-frames`). Every `FRAME` carries its owner's epoch
/// as its inline bytes and every `FRAME_RETURN` gives the same bytes back,
/// so an owner that took its buffers back (the peer stopped or restarted)
/// ignores returns of older loans, as between the stack and kv.
///
/// ```text
///  driver ── MAC [6 bytes] ─────────────────▶ stack   first, and again when the stack restarted
///  driver ── FRAME desc(rx-frames) [epoch] ─▶ stack   a received frame
///  driver ◀─ FRAME_RETURN desc [epoch] ────── stack   its buffer back
///  driver ◀─ FRAME desc(tx-frames) [epoch] ── stack   a frame to send
///  driver ── FRAME_RETURN desc [epoch] ─────▶ stack   its buffer back
/// ```
pub mod link_label {
    pub const MAC: u32 = 0x4e00;
    pub const FRAME: u32 = 0x4e01;
    pub const FRAME_RETURN: u32 = 0x4e02;
}

/// Labels between the stack and the application.
pub mod label {
    /// The stack listens (inline, empty).
    pub const READY: u32 = 0x4e03;
    /// A client connected on a slot (inline `[slot]`).
    pub const TCP_OPEN: u32 = 0x4e10;
    /// Bytes a client sent: descriptor (`to-app`) + [`super::TcpInline`].
    pub const TCP_DATA: u32 = 0x4e11;
    /// The client on a slot left (inline `[slot]`).
    pub const TCP_CLOSED: u32 = 0x4e12;
    /// Bytes for a client: descriptor (`to-stack`) + [`super::TcpInline`].
    pub const TCP_SEND: u32 = 0x4e13;
    /// A `TCP_DATA` answered: its descriptor + [`super::DoneInline`].
    pub const TCP_DONE: u32 = 0x4e14;
    /// A datagram: descriptor (`to-app`) + [`super::UdpInline`].
    pub const UDP_DATA: u32 = 0x4e20;
    /// A datagram to send: descriptor (`to-stack`) + [`super::UdpInline`].
    pub const UDP_SEND: u32 = 0x4e21;
    /// An empty datagram: no bytes, so no buffer and no descriptor (a
    /// descriptor has a length of 1 or more); inline [`super::UdpInline`] only.
    pub const UDP_EMPTY: u32 = 0x4e22;
    /// An empty datagram to send: inline [`super::UdpInline`] only.
    pub const UDP_SEND_EMPTY: u32 = 0x4e23;
    /// A `to-app` buffer back to the stack: its descriptor + `[epoch]`.
    pub const APP_RETURN: u32 = 0x4e30;
    /// A `to-stack` buffer back to the application: its descriptor + `[epoch]`.
    pub const STACK_RETURN: u32 = 0x4e31;
}

/// Bytes of one buffer in either region: a whole UDP datagram (at most
/// 1472 bytes over Ethernet) or one TCP chunk.
pub const BUFFER_BYTES: usize = 2048;
/// TCP connection slots (the stack's sockets, kv's sessions).
pub const TCP_SLOTS: usize = 64;
/// Bytes of the epoch at the start of every descriptor message's inline part.
pub const EPOCH_LEN: usize = 4;

/// The epoch at the start of a descriptor message's inline bytes.
pub fn epoch_of(inline: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(inline.get(..EPOCH_LEN)?.try_into().ok()?))
}

/// The epoch bytes at the start of a message's inline bytes (fewer if it
/// has fewer), to give back unread with a returned buffer.
pub fn epoch_bytes(inline: &[u8]) -> &[u8] {
    &inline[..inline.len().min(EPOCH_LEN)]
}

/// The first epoch of incarnation `generation` of a server (0 for the
/// first incarnation). Each incarnation starts 65 536 epochs after the one
/// before, so a return or a bounce still addressed to an earlier
/// incarnation (sent before the peer learnt of the restart) names an
/// epoch this one does not use, and is ignored, unless the earlier one
/// changed its epoch 65 536 times.
pub const fn first_epoch(generation: u32) -> u32 {
    generation.wrapping_shl(16)
}

/// Beside `TCP_DATA` and `TCP_SEND`: little-endian epoch, then the slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInline {
    pub epoch: u32,
    pub slot: u8,
}

impl TcpInline {
    pub const LEN: usize = EPOCH_LEN + 1;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.epoch.to_le_bytes());
        out[4] = self.slot;
        out
    }

    /// `None` if shorter than [`Self::LEN`]; the slot is not checked here.
    pub fn decode(inline: &[u8]) -> Option<TcpInline> {
        Some(TcpInline { epoch: epoch_of(inline)?, slot: *inline.get(4)? })
    }
}

/// Beside `TCP_DONE`: the stack's epoch and the slot (echoed from the
/// `TCP_DATA`), then how many of its bytes the application took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoneInline {
    pub epoch: u32,
    pub slot: u8,
    pub taken: u16,
}

impl DoneInline {
    pub const LEN: usize = EPOCH_LEN + 1 + 2;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.epoch.to_le_bytes());
        out[4] = self.slot;
        out[5..7].copy_from_slice(&self.taken.to_le_bytes());
        out
    }

    pub fn decode(inline: &[u8]) -> Option<DoneInline> {
        let taken = u16::from_le_bytes(inline.get(5..7)?.try_into().ok()?);
        Some(DoneInline { epoch: epoch_of(inline)?, slot: inline[4], taken })
    }
}

/// Beside `UDP_DATA` (the sender) and `UDP_SEND` (the destination):
/// epoch, IPv4 address, port (little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpInline {
    pub epoch: u32,
    pub ip: [u8; 4],
    pub port: u16,
}

impl UdpInline {
    pub const LEN: usize = EPOCH_LEN + 4 + 2;

    pub fn encode(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        out[..4].copy_from_slice(&self.epoch.to_le_bytes());
        out[4..8].copy_from_slice(&self.ip);
        out[8..10].copy_from_slice(&self.port.to_le_bytes());
        out
    }

    pub fn decode(inline: &[u8]) -> Option<UdpInline> {
        let ip = inline.get(4..8)?.try_into().ok()?;
        let port = u16::from_le_bytes(inline.get(8..10)?.try_into().ok()?);
        Some(UdpInline { epoch: epoch_of(inline)?, ip, port })
    }
}

/// One TCP chunk the stack lends the application: a buffer of `len` bytes
/// at `buffer` in its region, of which the application took `taken` so
/// far. The rest is offered (again) by a `TCP_DATA` naming exactly it, at
/// most one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    /// Offset of the buffer in the owner's region.
    pub buffer: u64,
    pub len: u32,
    pub taken: u32,
    /// A `TCP_DATA` for the rest is with the application.
    pub in_flight: bool,
    /// Not offered again before this time (after a partial answer).
    pub retry_at: u64,
}

/// What a `TCP_DONE` did to a [`Chunk`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Every byte was taken: the buffer is free again.
    Finished,
    /// Some bytes are left: offer them again later.
    Partly,
}

/// Why a `TCP_DONE` was refused (it changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DoneError {
    /// No `TCP_DATA` of this chunk is with the application.
    NotInFlight,
    /// It names other bytes than the ones offered.
    OtherBytes,
    /// It says more bytes were taken than were offered.
    TooMany,
}

impl Chunk {
    pub fn new(buffer: u64, len: u32) -> Chunk {
        Chunk { buffer, len, taken: 0, in_flight: false, retry_at: 0 }
    }

    /// Offset and length of the bytes still to hand over.
    pub fn rest(&self) -> (u64, u32) {
        (self.buffer + u64::from(self.taken), self.len - self.taken)
    }

    /// Whether a `TCP_DATA` for the rest may go out at time `now`.
    pub fn may_offer(&self, now: u64) -> bool {
        !self.in_flight && self.taken < self.len && now >= self.retry_at
    }

    /// The application answered the `TCP_DATA` at `offset`: it took
    /// `taken` bytes. Refused answers change nothing.
    pub fn done(&mut self, offset: u64, taken: u32) -> Result<Done, DoneError> {
        if !self.in_flight {
            return Err(DoneError::NotInFlight);
        }
        let (rest_offset, rest_len) = self.rest();
        if offset != rest_offset {
            return Err(DoneError::OtherBytes);
        }
        if taken > rest_len {
            return Err(DoneError::TooMany);
        }
        self.taken += taken;
        self.in_flight = false;
        Ok(if self.taken == self.len { Done::Finished } else { Done::Partly })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_parts_round_trip_and_short_ones_are_refused() {
        let tcp = TcpInline { epoch: 0xdead_beef, slot: 63 };
        assert_eq!(TcpInline::decode(&tcp.encode()), Some(tcp));
        assert_eq!(TcpInline::decode(&tcp.encode()[..4]), None);
        let done = DoneInline { epoch: 7, slot: 2, taken: 1500 };
        assert_eq!(DoneInline::decode(&done.encode()), Some(done));
        assert_eq!(DoneInline::decode(&done.encode()[..6]), None);
        let udp = UdpInline { epoch: 1, ip: [10, 0, 2, 2], port: 54321 };
        assert_eq!(UdpInline::decode(&udp.encode()), Some(udp));
        assert_eq!(UdpInline::decode(&udp.encode()[..9]), None);
        assert_eq!(epoch_of(&udp.encode()), Some(1));
        assert_eq!(epoch_of(&[1, 2, 3]), None);
        // The epoch comes first in every one, so a return can echo it.
        assert_eq!(epoch_of(&tcp.encode()), Some(0xdead_beef));
        assert_eq!(epoch_of(&done.encode()), Some(7));
    }

    #[test]
    fn epoch_bytes_are_the_first_four_or_fewer() {
        assert_eq!(epoch_bytes(&[1, 2, 3, 4, 5, 6]), [1, 2, 3, 4]);
        assert_eq!(epoch_bytes(&[1, 2]), [1, 2]);
        assert_eq!(epoch_bytes(&[]), [0u8; 0]);
    }

    #[test]
    fn each_incarnation_starts_on_epochs_of_its_own() {
        assert_eq!(first_epoch(0), 0);
        assert_eq!(first_epoch(1), 0x1_0000);
        // An earlier incarnation that changed its epoch fewer than 65 536
        // times never reaches the next one's first epoch.
        assert!(first_epoch(1) > first_epoch(0).wrapping_add(0xffff));
        assert_eq!(first_epoch(0x1_0000), 0, "wraps after 65 536 restarts");
    }

    #[test]
    fn labels_are_distinct() {
        use label::*;
        use link_label::*;
        let all = [
            MAC,
            FRAME,
            FRAME_RETURN,
            READY,
            TCP_OPEN,
            TCP_DATA,
            TCP_CLOSED,
            TCP_SEND,
            TCP_DONE,
            UDP_DATA,
            UDP_SEND,
            UDP_EMPTY,
            UDP_SEND_EMPTY,
            APP_RETURN,
            STACK_RETURN,
        ];
        for (i, a) in all.iter().enumerate() {
            assert!(all[i + 1..].iter().all(|b| a != b), "{a:#x} twice");
        }
    }

    #[test]
    fn a_chunk_taken_in_parts_is_offered_from_where_it_stopped() {
        let mut chunk = Chunk::new(4096, 100);
        assert!(chunk.may_offer(0));
        assert_eq!(chunk.rest(), (4096, 100));
        chunk.in_flight = true;
        assert!(!chunk.may_offer(0), "one TCP_DATA at a time");
        assert_eq!(chunk.done(4096, 40), Ok(Done::Partly));
        assert_eq!(chunk.rest(), (4136, 60));
        chunk.retry_at = 10;
        assert!(!chunk.may_offer(9) && chunk.may_offer(10));
        chunk.in_flight = true;
        assert_eq!(chunk.done(4136, 60), Ok(Done::Finished));
        assert!(!chunk.may_offer(u64::MAX), "nothing left to offer");
    }

    #[test]
    fn confused_answers_change_nothing() {
        let mut chunk = Chunk::new(0, 10);
        assert_eq!(chunk.done(0, 10), Err(DoneError::NotInFlight));
        chunk.in_flight = true;
        let before = chunk;
        assert_eq!(chunk.done(2048, 10), Err(DoneError::OtherBytes));
        assert_eq!(chunk.done(0, 11), Err(DoneError::TooMany));
        assert_eq!(chunk, before);
        assert_eq!(chunk.done(0, 0), Ok(Done::Partly), "nothing taken: offered again later");
        assert_eq!(chunk.rest(), (0, 10));
    }
}
