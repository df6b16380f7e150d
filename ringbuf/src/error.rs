//! Error values of the ring: what a caller can be told instead of a panic.
//!
//! Invariant: no function of this crate panics on anything read from shared
//! memory; every surprise found there becomes one of these values.

use core::fmt;

/// Why a ring operation did not move a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Producer side: every slot holds an unread message (backpressure; retry later).
    Full,
    /// Consumer side: there is no published message to read.
    Empty,
    /// Producer side: the consumer's index, read once from shared memory,
    /// is more than `capacity` slots away from our own index: the peer is
    /// broken or hostile. Nothing was written. (The consumer no longer
    /// reads the producer index, so it never returns this.)
    PeerIndexOutOfRange {
        /// Our private, authoritative index.
        own_index: u64,
        /// The value found in the peer's shared index word.
        peer_index: u64,
        /// Slots in the ring.
        capacity: u64,
    },
    /// Consumer side: the stamp in the slot of the next index is neither the
    /// one that publishes that index, nor one a protocol-following producer
    /// can leave there before publishing it (zero, or the previous lap's):
    /// the producer is broken or hostile. Nothing was read or released; the
    /// same answer comes back until the producer writes a sane stamp there.
    PeerStampInvalid {
        /// Our private, authoritative index (the message we wait for).
        own_index: u64,
        /// The stamp byte found in its slot.
        stamp: u8,
        /// The stamp that would publish `own_index`.
        expected: u8,
    },
}

impl RingError {
    /// True when the error is the peer's fault rather than a normal full/empty condition.
    pub const fn is_peer_misbehaviour(&self) -> bool {
        matches!(self, RingError::PeerIndexOutOfRange { .. } | RingError::PeerStampInvalid { .. })
    }
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Full => f.write_str("ring is full"),
            RingError::Empty => f.write_str("ring is empty"),
            RingError::PeerIndexOutOfRange { own_index, peer_index, capacity } => {
                write!(f, "peer index {peer_index} is more than {capacity} slots away from own index {own_index}")
            }
            RingError::PeerStampInvalid { own_index, stamp, expected } => {
                write!(
                    f,
                    "slot of index {own_index} carries stamp {stamp:#04x}, neither {expected:#04x} nor an unpublished one"
                )
            }
        }
    }
}

/// Why a memory region cannot hold a ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The capacity (slot count) is zero or not a power of two.
    CapacityNotPowerOfTwo {
        /// The capacity asked for.
        capacity: usize,
    },
    /// The region size for this capacity does not fit in `usize`.
    CapacityTooLarge {
        /// The capacity asked for.
        capacity: usize,
    },
    /// The region's base address is not aligned to [`crate::REGION_ALIGN`].
    Misaligned {
        /// The base address given.
        address: usize,
    },
    /// The region is shorter than [`crate::region_size`] says it must be.
    RegionTooSmall {
        /// Bytes needed.
        needed: usize,
        /// Bytes provided.
        provided: usize,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutError::CapacityNotPowerOfTwo { capacity } => {
                write!(f, "ring capacity {capacity} is not a non-zero power of two")
            }
            LayoutError::CapacityTooLarge { capacity } => {
                write!(f, "ring capacity {capacity} makes the region size overflow")
            }
            LayoutError::Misaligned { address } => {
                write!(f, "ring region at {address:#x} is not aligned to {} bytes", crate::REGION_ALIGN)
            }
            LayoutError::RegionTooSmall { needed, provided } => {
                write!(f, "ring region needs {needed} bytes, got {provided}")
            }
        }
    }
}

/// Why a message copied out of a ring is not well formed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageError {
    /// `payload_len` is larger than [`crate::PAYLOAD_CAPACITY`].
    PayloadTooLong {
        /// The length claimed.
        payload_len: u16,
    },
    /// Bits of `flags` that this version does not define are set.
    ReservedFlagsSet {
        /// The flags found.
        flags: u16,
    },
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::PayloadTooLong { payload_len } => {
                write!(f, "payload length {payload_len} exceeds {} bytes", crate::PAYLOAD_CAPACITY)
            }
            MessageError::ReservedFlagsSet { flags } => {
                write!(f, "reserved message flags set: {flags:#06x}")
            }
        }
    }
}

/// The ring had no free slot (or, in the trusting API, a corrupt consumer
/// index that reads as full): nothing was written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingFull;

impl fmt::Display for RingFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ring is full")
    }
}
