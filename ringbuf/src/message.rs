//! The 64-byte message that fills one ring slot, with a fixed, documented layout.
//!
//! Invariants:
//! - `Message` is exactly one cache line (64 bytes, 64-aligned), `repr(C)`,
//!   with no padding, and every field is a plain integer, so *every* bit
//!   pattern is a valid `Message`. That is what lets the trusted side copy a
//!   slot a hostile peer is scribbling on and still hold a valid value.
//! - The byte offsets below are an ABI between user space and the kernel;
//!   the const assertions at the bottom of this file pin them.
//!
//! ```text
//! offset size field                 written by
//!      0    4 destination_endpoint  sender (index into its endpoint table)
//!      4    4 label                 sender (meaning agreed per protocol)
//!      8    8 sender_badge          the mover (receiver trusts only this)
//!     16    4 sequence              sender (wrapping per-sender counter)
//!     20    2 payload_len           sender (0..=40 bytes of payload used)
//!     22    2 flags                 low byte: sender (bit 0 = a buffer descriptor,
//!                                   `abi::region::FLAG_DESCRIPTOR`; the other bits
//!                                   reserved, 0); high byte: the ring (see below)
//!     24   40 payload               sender
//! ```
//! Integers are little-endian (x86_64 native order).
//!
//! The high byte of `flags` ([`RING_OWNED_FLAGS`], message byte 23) belongs
//! to the ring: in a slot it holds the stamp that publishes the message
//! (`crate::layout`). A producer overwrites whatever a message carries
//! there, and every copy a consumer (or `Producer::read_back`) returns has
//! it clear, so above the ring those bits always read as zero.

use crate::error::MessageError;

/// Bytes of inline payload in one message.
pub const PAYLOAD_CAPACITY: usize = 40;

/// Bytes in one message (= one ring slot = one x86_64 cache line).
pub const MESSAGE_SIZE: usize = 64;

/// Bits of [`Message::flags`] that belong to the ring (its publication
/// stamp in the slot): overwritten on every push, zero in every copy out
/// of a ring. A sender's own flags live in the low byte.
pub const RING_OWNED_FLAGS: u16 = 0xff00;

/// Number of 8-byte words in a message; slots are copied word by word.
pub(crate) const MESSAGE_WORDS: usize = MESSAGE_SIZE / 8;

/// One message: a small header plus inline payload, exactly one cache line.
#[repr(C, align(64))]
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Message {
    /// Endpoint the sender addresses (an index into the sender's own endpoint table).
    pub destination_endpoint: u32,
    /// Operation label; its meaning is agreed between the two servers.
    pub label: u32,
    /// Identifies the sender to the receiver. Stamped by the mover; whatever
    /// the sender wrote here is overwritten.
    pub sender_badge: u64,
    /// Wrapping per-sender sequence number.
    pub sequence: u32,
    /// Bytes of `payload` in use, `0..=PAYLOAD_CAPACITY`. Untrusted until [`Message::validate`].
    pub payload_len: u16,
    /// Low byte: the sender's flags (bit 0 marks a buffer descriptor in
    /// this system; the rest reserved). High byte ([`RING_OWNED_FLAGS`]):
    /// owned by the ring, overwritten by a push and zero in every copy a
    /// ring hands out. [`Message::validate`] accepts only zero.
    pub flags: u16,
    /// Inline payload; bytes past `payload_len` carry no meaning.
    pub payload: [u8; PAYLOAD_CAPACITY],
}

impl Message {
    /// A message with every byte zero.
    pub const fn zeroed() -> Self {
        Message {
            destination_endpoint: 0,
            label: 0,
            sender_badge: 0,
            sequence: 0,
            payload_len: 0,
            flags: 0,
            payload: [0; PAYLOAD_CAPACITY],
        }
    }

    /// A message to `destination_endpoint` with `label` and a copy of `payload`.
    #[inline]
    pub fn new(destination_endpoint: u32, label: u32, payload: &[u8]) -> Result<Self, MessageError> {
        if payload.len() > PAYLOAD_CAPACITY {
            return Err(MessageError::PayloadTooLong { payload_len: u16::try_from(payload.len()).unwrap_or(u16::MAX) });
        }
        let mut message = Message::zeroed();
        message.destination_endpoint = destination_endpoint;
        message.label = label;
        message.payload[..payload.len()].copy_from_slice(payload);
        // Cannot truncate: checked against PAYLOAD_CAPACITY (40) above.
        message.payload_len = payload.len() as u16;
        Ok(message)
    }

    /// Checks the fields a receiver (or the mover) must not take on trust.
    /// Call it on a *private copy* (what every `pop` returns), never on shared memory.
    pub const fn validate(&self) -> Result<(), MessageError> {
        if self.payload_len as usize > PAYLOAD_CAPACITY {
            return Err(MessageError::PayloadTooLong { payload_len: self.payload_len });
        }
        if self.flags != 0 {
            return Err(MessageError::ReservedFlagsSet { flags: self.flags });
        }
        Ok(())
    }

    /// The used part of the payload; `payload_len` is clamped to the
    /// capacity, so this never panics even on an unvalidated message.
    #[inline]
    pub fn payload_bytes(&self) -> &[u8] {
        let used = (self.payload_len as usize).min(PAYLOAD_CAPACITY);
        &self.payload[..used]
    }

    /// The message as the eight native-endian words a slot stores.
    #[inline(always)]
    pub(crate) fn to_words(self) -> [u64; MESSAGE_WORDS] {
        // SAFETY: both types are 64 bytes (asserted below); `Message` is
        // repr(C) with no padding (asserted below), so all 64 of its bytes are
        // initialised, and any initialised bytes are valid `u64`s. Transmuting
        // by value does not care about alignment.
        unsafe { core::mem::transmute::<Message, [u64; MESSAGE_WORDS]>(self) }
    }

    /// The message held in eight words copied out of a slot.
    #[inline(always)]
    pub(crate) fn from_words(words: [u64; MESSAGE_WORDS]) -> Self {
        // SAFETY: same size (asserted below); every field of `Message` is an
        // integer or an integer array, so every bit pattern of the 64 bytes is
        // a valid `Message` — even garbage written by a hostile peer.
        unsafe { core::mem::transmute::<[u64; MESSAGE_WORDS], Message>(words) }
    }
}

impl Default for Message {
    fn default() -> Self {
        Message::zeroed()
    }
}

impl core::fmt::Debug for Message {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Message")
            .field("destination_endpoint", &self.destination_endpoint)
            .field("label", &self.label)
            .field("sender_badge", &self.sender_badge)
            .field("sequence", &self.sequence)
            .field("payload_len", &self.payload_len)
            .field("flags", &self.flags)
            .field("payload", &self.payload_bytes())
            .finish()
    }
}

// The layout is an ABI between address spaces: pin every offset.
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<Message>() == MESSAGE_SIZE);
    assert!(align_of::<Message>() == 64);
    assert!(offset_of!(Message, destination_endpoint) == 0);
    assert!(offset_of!(Message, label) == 4);
    assert!(offset_of!(Message, sender_badge) == 8);
    assert!(offset_of!(Message, sequence) == 16);
    assert!(offset_of!(Message, payload_len) == 20);
    assert!(offset_of!(Message, flags) == 22);
    assert!(offset_of!(Message, payload) == 24);
    // No padding: the fields add up to the whole line.
    assert!(4 + 4 + 8 + 4 + 2 + 2 + PAYLOAD_CAPACITY == MESSAGE_SIZE);
    assert!(cfg!(target_endian = "little"));
};
