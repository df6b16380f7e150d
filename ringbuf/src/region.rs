//! Attaching to ring memory: a raw region the caller provides (shared
//! pages), or [`OwnedRing`], an ordinary Rust value for tests and
//! same-address-space use.
//!
//! Invariants:
//! - A [`RingRegion`] holds references only to atomics (the three index
//!   words and the slot words), never to a struct with plain bytes, so a
//!   peer that scribbles on any byte of the region, padding included,
//!   cannot invalidate a reference we hold.
//! - `slots.len()` is a non-zero power of two; handles mask indices with
//!   `slots.len() - 1`.

use core::ptr::NonNull;

use crossbeam_utils::CachePadded;

use crate::consumer::Consumer;
use crate::error::LayoutError;
use crate::layout::{REGION_ALIGN, RingHeader, Slot, region_size};
use crate::producer::Producer;
use crate::sync::{AtomicU64, Ordering};

/// A validated view of one ring's memory, from which the two handles are made.
///
/// Not `Clone`: each region yields one producer and one consumer.
pub struct RingRegion<'a> {
    pub(crate) producer_index: &'a AtomicU64,
    pub(crate) consumer_index: &'a AtomicU64,
    pub(crate) wake_state: &'a AtomicU64,
    pub(crate) room_wanted: &'a AtomicU64,
    pub(crate) slots: &'a [Slot],
}

impl<'a> RingRegion<'a> {
    /// Writes an empty ring (both indices `start_index`, consumer awake,
    /// every other byte zero) into the region at `base` and attaches to it.
    ///
    /// The trusted side should initialise a region itself before the peer
    /// can see it. `start_index` lets tests start next to an index wrap.
    ///
    /// # Safety
    /// - `base .. base + region_len` is one allocation (or mapping), valid
    ///   for reads and writes for all of `'a`, and stays mapped for `'a`;
    /// - for all of `'a`, nothing else accesses those bytes except through
    ///   this crate or through aligned 8-byte atomic accesses (another
    ///   thread, or another address space, which is also free to write any
    ///   garbage at any moment); in particular no Rust reference to
    ///   non-atomic data in the region exists;
    /// - nothing else accesses the region *during* this call (the peer gets
    ///   it afterwards), and no handle attached to it before is used again.
    pub unsafe fn init(
        base: NonNull<u8>,
        region_len: usize,
        capacity: usize,
        start_index: u64,
    ) -> Result<Self, LayoutError> {
        let needed = check_region(base, region_len, capacity)?;
        #[cfg(loom)]
        let _ = needed;
        #[cfg(not(loom))]
        {
            // SAFETY: `base` is valid for writes of `region_len >= needed`
            // bytes and nobody else touches them during this call (contract).
            // All-zero bytes are a valid `AtomicU64` holding 0, and zeroing
            // the padding too leaves no byte of the region uninitialised.
            unsafe { core::ptr::write_bytes(base.as_ptr(), 0, needed) };
        }
        #[cfg(loom)]
        {
            // Loom atomics are model objects, not bytes: construct each one.
            let header = base.as_ptr().cast::<RingHeader>();
            // SAFETY: the header lies at the start of the checked region,
            // aligned to REGION_ALIGN = align_of::<RingHeader>(), valid for
            // writes and not accessed by anyone else during this call.
            unsafe { header.write(RingHeader::new(0)) };
            let slots = header.wrapping_add(1).cast::<Slot>();
            for slot_number in 0..capacity {
                // SAFETY: slot `slot_number < capacity` lies inside the
                // `needed` bytes checked above, is 64-aligned (region and
                // header size) and valid for writes (contract).
                unsafe { slots.add(slot_number).write(Slot::new()) };
            }
        }
        // SAFETY: the region is checked and now initialised; the caller's
        // contract includes everything `attach` asks for.
        let region = unsafe { Self::attach(base, region_len, capacity) }?;
        // Relaxed: the peer gets the region only after this call returns,
        // through whatever hands it over (a page mapping, a thread spawn),
        // which orders these stores before its first access.
        region.producer_index.store(start_index, Ordering::Relaxed);
        region.consumer_index.store(start_index, Ordering::Relaxed);
        Ok(region)
    }

    /// Attaches to a region that holds a ring already (initialised by
    /// [`RingRegion::init`] here or by the peer).
    ///
    /// Every value in the region is treated as an allegation: a peer that
    /// wrote garbage makes operations return errors or odd messages, never
    /// undefined behaviour.
    ///
    /// # Safety
    /// - `base .. base + region_len` is one allocation (or mapping), valid
    ///   for reads and writes for all of `'a`, stays mapped for `'a`, and
    ///   its first `region_size(capacity)` bytes were initialised (any
    ///   values: [`RingRegion::init`] or the peer's version of it);
    /// - for all of `'a`, nothing else accesses those bytes except through
    ///   this crate or through aligned 8-byte atomic accesses (another
    ///   thread, or another address space, which is also free to write any
    ///   garbage at any moment); in particular no Rust reference to
    ///   non-atomic data in the region exists.
    pub unsafe fn attach(base: NonNull<u8>, region_len: usize, capacity: usize) -> Result<Self, LayoutError> {
        check_region(base, region_len, capacity)?;
        let header = base.as_ptr().cast::<RingHeader>().cast_const();
        // SAFETY: `header` is in bounds and aligned (checked). Each reference
        // made here is to one `AtomicU64` field, never to the header or the
        // wake block as a whole: the indices through `&raw const` (`CachePadded`
        // is repr(C) with its value at offset 0), the two wake-block words as
        // plain fields of the repr(C) `WakeBlock`. The atomics are initialised
        // (contract) and live for `'a` (contract); a shared reference to an
        // atomic tolerates concurrent writes by anyone.
        let (producer_index, consumer_index, wake_state, room_wanted) = unsafe {
            (
                &*(&raw const (*header).producer_index).cast::<AtomicU64>(),
                &*(&raw const (*header).consumer_index).cast::<AtomicU64>(),
                &(*header).wake.wake_state,
                &(*header).wake.room_wanted,
            )
        };
        // SAFETY: the slots start right after the header (at SLOTS_OFFSET),
        // are 64-aligned (the region is 128-aligned and the header 384 bytes),
        // and `capacity` of them fit in the checked region. `Slot` is only
        // atomics, all initialised (contract), valid for `'a` (contract).
        let slots = unsafe { core::slice::from_raw_parts(header.add(1).cast::<Slot>(), capacity) };
        Ok(RingRegion { producer_index, consumer_index, wake_state, room_wanted, slots })
    }

    /// Number of slots.
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Both handles, for a ring whose two ends live in this address space.
    pub fn split(self) -> (Producer<'a>, Consumer<'a>) {
        let RingRegion { producer_index, consumer_index, wake_state, room_wanted, slots } = self;
        (
            Producer::new(producer_index, consumer_index, wake_state, room_wanted, slots),
            Consumer::new(producer_index, consumer_index, wake_state, room_wanted, slots),
        )
    }

    /// The producer handle only (the consumer is in another address space).
    /// It starts at the producer index currently in the region.
    pub fn into_producer(self) -> Producer<'a> {
        Producer::new(self.producer_index, self.consumer_index, self.wake_state, self.room_wanted, self.slots)
    }

    /// The consumer handle only (the producer is in another address space).
    /// It starts at the consumer index currently in the region.
    pub fn into_consumer(self) -> Consumer<'a> {
        Consumer::new(self.producer_index, self.consumer_index, self.wake_state, self.room_wanted, self.slots)
    }

    /// The producer handle, starting at `index`: the `start_index` this side
    /// gave [`RingRegion::init`] itself. Nothing is read from the region, so
    /// a peer that already runs (or ran, and scribbled) cannot choose the
    /// handle's private index. The kernel attaches its ends this way.
    pub fn into_producer_at(self, index: u64) -> Producer<'a> {
        Producer::starting_at(
            self.producer_index,
            self.consumer_index,
            self.wake_state,
            self.room_wanted,
            self.slots,
            index,
        )
    }

    /// The consumer handle, starting at `index` (see [`RingRegion::into_producer_at`]).
    pub fn into_consumer_at(self, index: u64) -> Consumer<'a> {
        Consumer::starting_at(
            self.producer_index,
            self.consumer_index,
            self.wake_state,
            self.room_wanted,
            self.slots,
            index,
        )
    }
}

/// Checks capacity, alignment and length; returns the bytes the ring uses.
fn check_region(base: NonNull<u8>, region_len: usize, capacity: usize) -> Result<usize, LayoutError> {
    let needed = region_size(capacity)?;
    let address = base.as_ptr() as usize;
    if !address.is_multiple_of(REGION_ALIGN) {
        return Err(LayoutError::Misaligned { address });
    }
    if region_len < needed {
        return Err(LayoutError::RegionTooSmall { needed, provided: region_len });
    }
    Ok(needed)
}

/// A ring that owns its memory as an ordinary Rust value, with the same
/// layout as a raw region of `CAPACITY` slots. For tests, benchmarks and
/// rings whose two ends share an address space.
///
/// `CAPACITY` must be a non-zero power of two (checked at compile time).
#[repr(C)]
pub struct OwnedRing<const CAPACITY: usize> {
    header: RingHeader,
    slots: [Slot; CAPACITY],
}

impl<const CAPACITY: usize> OwnedRing<CAPACITY> {
    /// An empty ring with both indices at 0.
    pub fn new() -> Self {
        Self::with_start_index(0)
    }

    /// An empty ring with both indices at `start_index` (tests use values
    /// next to `u32::MAX` and `u64::MAX` to cover index wrap-around).
    pub fn with_start_index(start_index: u64) -> Self {
        const { assert!(CAPACITY.is_power_of_two(), "ring capacity must be a non-zero power of two") };
        OwnedRing { header: RingHeader::new(start_index), slots: core::array::from_fn(|_| Slot::new()) }
    }

    /// A view of the ring's memory; borrowing mutably keeps to one pair of handles at a time.
    pub fn region(&mut self) -> RingRegion<'_> {
        RingRegion {
            producer_index: padded_value(&self.header.producer_index),
            consumer_index: padded_value(&self.header.consumer_index),
            wake_state: &self.header.wake.wake_state,
            room_wanted: &self.header.wake.room_wanted,
            slots: &self.slots,
        }
    }

    /// Both handles.
    pub fn split(&mut self) -> (Producer<'_>, Consumer<'_>) {
        self.region().split()
    }
}

impl<const CAPACITY: usize> Default for OwnedRing<CAPACITY> {
    fn default() -> Self {
        Self::new()
    }
}

fn padded_value(padded: &CachePadded<AtomicU64>) -> &AtomicU64 {
    padded
}
