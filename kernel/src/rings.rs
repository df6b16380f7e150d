//! Rings the kernel allocates: physically contiguous frames holding one
//! `ringbuf` region, reached by the kernel through the direct map and, for
//! a server's rings, mapped into that server at a fixed user address.
//!
//! Invariants: a ring's frames are allocated once and never freed or
//! remapped while the system runs; the kernel touches them only through
//! `ringbuf` (atomics, checked indices), never through a Rust reference,
//! because a server may write them at any moment.

use crate::mem::{frames, phys_to_virt};
use core::sync::atomic::AtomicU64;
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

/// Why a ring could not be made.
#[derive(Debug)]
pub enum RingError {
    /// The slot count gives no valid ring layout.
    Layout,
    /// The ring would not fit in its user address span (`abi::RING_SPAN`).
    LargerThanSpan,
    /// No physically contiguous run of free frames is long enough.
    OutOfMemory,
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RingError::Layout => write!(f, "no ring layout for that many slots"),
            RingError::LargerThanSpan => write!(f, "ring larger than its address span"),
            RingError::OutOfMemory => write!(f, "out of contiguous memory"),
        }
    }
}

/// One ring region in physical memory.
pub struct SharedRing {
    phys: u64,
    len: usize,
    capacity: usize,
}

impl SharedRing {
    /// Allocates and initialises a ring of `capacity` slots, in the kernel only.
    pub fn new(capacity: usize) -> Result<SharedRing, RingError> {
        let size = ringbuf::region_size(capacity).map_err(|_| RingError::Layout)?;
        let pages = size.div_ceil(4096) as u64;
        let phys = frames::alloc_contiguous(pages).ok_or(RingError::OutOfMemory)?;
        let base = core::ptr::NonNull::new(phys_to_virt(phys)).ok_or(RingError::Layout)?;
        // SAFETY: the frames were just allocated for this ring and nobody
        // else can see them yet; the direct map covers them for the whole
        // run; afterwards they are only accessed through `ringbuf` (the
        // kernel's handles and, once mapped, the server's userlib).
        unsafe { ringbuf::RingRegion::init(base, pages as usize * 4096, capacity, 0) }
            .map_err(|_| RingError::Layout)?;
        Ok(SharedRing { phys, len: pages as usize * 4096, capacity })
    }

    /// A ring of `capacity` slots that fits a server's ring span, not yet
    /// mapped anywhere (map its `frames` at consecutive user pages).
    pub fn new_for_user(capacity: usize) -> Result<SharedRing, RingError> {
        let size = ringbuf::region_size(capacity).map_err(|_| RingError::Layout)?;
        if size.div_ceil(4096) as u64 * 4096 > abi::RING_SPAN {
            return Err(RingError::LargerThanSpan);
        }
        SharedRing::new(capacity)
    }

    /// Gives the ring's frames back: a server that could not be loaded.
    ///
    /// # Safety
    /// Nothing uses the ring any more: no kernel handle to it is used
    /// again, and no address space any core may run maps it.
    pub unsafe fn free(self) {
        // SAFETY: the frames are the block `new` allocated; unused by the
        // caller's guarantee.
        unsafe { frames::free_contiguous(self.phys, (self.len / 4096) as u64) };
    }

    /// The ring's frames, in order.
    pub fn frames(&self) -> impl Iterator<Item = PhysFrame> + '_ {
        (0..(self.len / 4096) as u64).map(|page| PhysFrame::containing_address(PhysAddr::new(self.phys + page * 4096)))
    }

    /// Initialises the ring afresh, both indices at `index`, the slots and
    /// the wake word zeroed: a restarted server's rings. The indices are
    /// the kernel's own (its handles' private ones), so its handles carry
    /// on without reading anything back.
    ///
    /// The caller guarantees that no server that can reach the ring runs
    /// and that no kernel handle is used during the call (`server::life`:
    /// the owner is stopped and every mover has acknowledged it).
    pub fn reinit(&self, index: u64) {
        let base = core::ptr::NonNull::new(phys_to_virt(self.phys)).expect("direct map is not null");
        // SAFETY: the frames belong to this ring for the whole run and the
        // direct map covers them; by the caller's guarantee nobody else
        // accesses them during the call; the kernel's handles attached
        // before keep using the region only through `ringbuf` afterwards,
        // at indices they chose themselves.
        let fresh = unsafe { ringbuf::RingRegion::init(base, self.len, self.capacity, index) };
        debug_assert!(fresh.is_ok(), "layout checked by new");
    }

    /// Kernel address of the ring's wake word (for the `wait` path).
    pub fn wake_word(&self) -> *const AtomicU64 {
        phys_to_virt(self.phys + ringbuf::layout::WAKE_STATE_OFFSET as u64) as *const AtomicU64
    }

    /// The kernel's view of the ring. Its handles start at index 0, the
    /// index `new` initialised it with (`into_producer_at(0)`,
    /// `into_consumer_at(0)`), never at what the ring's words say.
    pub fn region(&self) -> ringbuf::RingRegion<'static> {
        let base = core::ptr::NonNull::new(phys_to_virt(self.phys)).expect("direct map is not null");
        // SAFETY: `new` initialised the region; its frames stay allocated
        // and mapped in the direct map for the whole run; every access
        // (kernel or server) goes through `ringbuf`'s atomics.
        unsafe { ringbuf::RingRegion::attach(base, self.len, self.capacity) }.expect("layout checked by new")
    }
}
