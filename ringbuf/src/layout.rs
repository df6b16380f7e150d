//! Byte layout of a ring region: a header of three cache-padded index words
//! followed by `capacity` 64-byte slots. Position-independent: the region
//! holds only indices and message bytes, never an address, so two address
//! spaces may map it at different virtual addresses.
//!
//! ```text
//! offset            size  content                        written by
//!      0               8  producer index (u64, atomic)   producer (Release; read by
//!                                                        nobody on the message path)
//!      8             120  padding (zero, never read)
//!    128               8  consumer index (u64, atomic)   consumer (Release)
//!    136             120  padding
//!    256               8  consumer wake state (u64)      consumer (0 awake, 1 sleeping);
//!                                                        producer resets to 0 to claim a wakeup
//!    264              56  padding
//!    320               8  producer room wanted (u64)     producer (1: waits for room, may sleep);
//!                                                        consumer resets to 0 to claim a wakeup
//!    328              56  padding
//!    384   64 * capacity  slots; slot i holds the message whose
//!                         index n satisfies n % capacity == i
//! ```
//!
//! A slot is the 64-byte message ([`crate::Message`]) with one byte owned by
//! the ring: byte 23, the high byte of `flags`, holds the **stamp** that
//! publishes the message (slot word [`STAMP_WORD`] = bytes 16..24, the
//! stamp in its bits [`STAMP_SHIFT`]`..64`):
//!
//! ```text
//! stamp of index n = 0x80 | ((n >> log2(capacity)) & 0x7f)
//!                    ^^^^    the low 7 bits of n's lap number
//!                    STAMP_PUBLISHED: never set in a zeroed or unpublished slot
//! ```
//! The producer stores the slot's other seven words (Relaxed), then the
//! stamp word (Release). The consumer that wants message `n` loads the stamp
//! word of slot `n` (Acquire): message `n` is there exactly when the stamp
//! is `stamp_for(n)`. What a protocol-following producer can leave in that
//! slot otherwise is a zero stamp (zeroed region, unpublished batch slot) or
//! the stamp of `n - capacity` (the previous lap), and both differ from
//! `stamp_for(n)`: consecutive laps differ in their low 7 bits (also
//! across the `u64` wrap), and every published stamp has `0x80` set. So
//! the consumer never reads the producer index on the message path: one
//! cache line (the slot) moves per message.
//!
//! Invariants:
//! - Indices are free-running `u64`s that wrap; the slot of index `n` is
//!   `n & (capacity - 1)`, so `capacity` is a non-zero power of two and no
//!   index value, however corrupt, can name a slot outside the region.
//! - `producer index - consumer index` (wrapping) is the number of
//!   published, unreleased messages and is at most `capacity` when both
//!   sides follow the protocol. The producer index is published after the
//!   stamps it covers, so it is a lower bound of what is published.
//! - Every word of the region is only ever accessed atomically (8-byte,
//!   aligned), so a peer writing any word at any moment is a value change,
//!   never a data race (see `docs/ringbuf.md`, "Why atomics for slot words").
//! - Each index sits on its own 128-byte block (`CachePadded`): x86_64's
//!   adjacent-line prefetcher pairs 64-byte lines.
//! - The stamp never leaves the crate: every copy out of a slot has the
//!   stamp byte cleared ([`crate::RING_OWNED_FLAGS`]), and a producer
//!   overwrites whatever a message carried there.

use crossbeam_utils::CachePadded;

use crate::message::MESSAGE_WORDS;
use crate::sync::AtomicU64;

/// Required alignment of a ring region's base address.
pub const REGION_ALIGN: usize = 128;
/// Byte offset of the producer index word.
pub const PRODUCER_INDEX_OFFSET: usize = 0;
/// Byte offset of the consumer index word.
pub const CONSUMER_INDEX_OFFSET: usize = 128;
/// Byte offset of the consumer wake-state word.
pub const WAKE_STATE_OFFSET: usize = 256;
/// Byte offset of the producer's room-wanted word (the second line of the
/// wake block: written only around sleeps, so polling never moves it).
pub const ROOM_WANTED_OFFSET: usize = 320;
/// Byte offset of slot 0; slot `i` starts at `SLOTS_OFFSET + 64 * i`.
pub const SLOTS_OFFSET: usize = 384;
/// Bytes of one slot.
pub const SLOT_SIZE: usize = 64;

/// Index (`0..8`) of the slot word that holds the stamp: message bytes
/// 16..24 (`sequence`, `payload_len`, `flags`).
pub const STAMP_WORD: usize = 2;
/// First bit of the stamp in the stamp word: message byte 23, the high byte
/// of `flags`.
pub const STAMP_SHIFT: u32 = 56;
/// The stamp's bits in the stamp word.
pub const STAMP_MASK: u64 = 0xff << STAMP_SHIFT;
/// Set in every stamp a producer publishes; clear in a zeroed slot and in
/// a slot written by a batch that is not committed yet.
pub const STAMP_PUBLISHED: u8 = 0x80;

/// The stamp that publishes the message with index `index` in a ring of
/// `1 << lap_shift` slots: [`STAMP_PUBLISHED`] and the low 7 bits of the
/// index's lap number. Differs from the stamp of `index - capacity` (wrapping)
/// for every capacity, and from zero.
#[inline(always)]
pub const fn stamp_for(index: u64, lap_shift: u32) -> u8 {
    STAMP_PUBLISHED | ((index >> lap_shift) as u8 & 0x7f)
}

/// [`stamp_for`] in place in a stamp word (the other bits zero).
#[inline(always)]
pub(crate) const fn stamp_bits(index: u64, lap_shift: u32) -> u64 {
    (stamp_for(index, lap_shift) as u64) << STAMP_SHIFT
}

/// Wake-state value: the consumer is polling (or about to look again).
pub const WAKE_STATE_AWAKE: u64 = 0;
/// Wake-state value: the consumer announced it is going to sleep; the
/// producer that sees it must ring the doorbell. (Any value other than
/// `WAKE_STATE_AWAKE` is treated as sleeping: a wrong guess costs one
/// spurious doorbell, never a lost message.)
pub const WAKE_STATE_SLEEPING: u64 = 1;

/// Room-wanted value: the producer is not waiting for room (or a consumer
/// claimed its wake-up).
pub const ROOM_NOT_WANTED: u64 = 0;
/// Room-wanted value: the producer found the ring full, announced it and
/// may sleep; the consumer that frees a slot and then sees it must wake the
/// producer. (Any other value reads as wanted: one spurious wake-up.)
pub const ROOM_WANTED: u64 = 1;

/// The header at the start of a ring region (see the module docs).
#[repr(C)]
pub(crate) struct RingHeader {
    pub(crate) producer_index: CachePadded<AtomicU64>,
    pub(crate) consumer_index: CachePadded<AtomicU64>,
    pub(crate) wake: WakeBlock,
}

/// The two sleep words, each on a 64-byte line of its own, in one 128-byte
/// block: the consumer's wake state and the producer's room wanted.
#[repr(C, align(128))]
pub(crate) struct WakeBlock {
    pub(crate) wake_state: AtomicU64,
    unused: [AtomicU64; 7],
    pub(crate) room_wanted: AtomicU64,
}

impl RingHeader {
    pub(crate) fn new(start_index: u64) -> Self {
        RingHeader {
            producer_index: CachePadded::new(AtomicU64::new(start_index)),
            consumer_index: CachePadded::new(AtomicU64::new(start_index)),
            wake: WakeBlock {
                wake_state: AtomicU64::new(WAKE_STATE_AWAKE),
                unused: core::array::from_fn(|_| AtomicU64::new(0)),
                room_wanted: AtomicU64::new(ROOM_NOT_WANTED),
            },
        }
    }
}

/// One slot: a message's eight words, each accessed atomically.
#[repr(C, align(64))]
pub(crate) struct Slot {
    pub(crate) words: [AtomicU64; MESSAGE_WORDS],
}

impl Slot {
    pub(crate) fn new() -> Self {
        Slot { words: core::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

/// Bytes a region needs for a ring of `capacity` slots (header included).
pub const fn region_size(capacity: usize) -> Result<usize, crate::LayoutError> {
    if !capacity.is_power_of_two() {
        return Err(crate::LayoutError::CapacityNotPowerOfTwo { capacity });
    }
    match capacity.checked_mul(SLOT_SIZE) {
        Some(slot_bytes) => match slot_bytes.checked_add(SLOTS_OFFSET) {
            Some(total) => Ok(total),
            None => Err(crate::LayoutError::CapacityTooLarge { capacity }),
        },
        None => Err(crate::LayoutError::CapacityTooLarge { capacity }),
    }
}

/// The largest power-of-two capacity whose ring fits in `region_len` bytes
/// (e.g. 32 slots in a 4 KiB page), or `None` if not even one slot fits.
pub const fn capacity_for_region(region_len: usize) -> Option<usize> {
    if region_len < SLOTS_OFFSET + SLOT_SIZE {
        return None;
    }
    let slots = (region_len - SLOTS_OFFSET) / SLOT_SIZE;
    Some(1 << (usize::BITS - 1 - slots.leading_zeros()))
}

// Under loom the atomics are model objects of another size; the byte layout
// is only an ABI (and only checked) in real builds.
#[cfg(not(loom))]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    assert!(size_of::<AtomicU64>() == 8);
    assert!(offset_of!(RingHeader, producer_index) == PRODUCER_INDEX_OFFSET);
    assert!(offset_of!(RingHeader, consumer_index) == CONSUMER_INDEX_OFFSET);
    assert!(offset_of!(RingHeader, wake) + offset_of!(WakeBlock, wake_state) == WAKE_STATE_OFFSET);
    assert!(offset_of!(RingHeader, wake) + offset_of!(WakeBlock, room_wanted) == ROOM_WANTED_OFFSET);
    assert!(size_of::<RingHeader>() == SLOTS_OFFSET);
    assert!(align_of::<RingHeader>() == REGION_ALIGN);
    assert!(size_of::<Slot>() == SLOT_SIZE);
    assert!(align_of::<Slot>() == SLOT_SIZE);
    assert!(SLOTS_OFFSET.is_multiple_of(REGION_ALIGN));
    // The stamp is the high byte of `Message::flags` (byte 23).
    assert!(STAMP_WORD * 8 + (STAMP_SHIFT as usize) / 8 == offset_of!(crate::Message, flags) + 1);
    assert!(STAMP_MASK >> STAMP_SHIFT == crate::message::RING_OWNED_FLAGS as u64 >> 8);
};
