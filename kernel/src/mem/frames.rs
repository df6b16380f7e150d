//! The physical frame allocator, built from the bootloader's memory map.
//!
//! Invariants: only `Usable` regions at or above 1 MiB are handed out (the
//! low megabyte holds the AP trampoline and firmware leftovers); a frame is
//! never handed out twice without a `free` in between; freed frames form an
//! intrusive list stored in the frames themselves (through the direct map).

use super::phys_to_virt;
use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};

const FRAME: u64 = 4096;
const LOW_LIMIT: u64 = 0x10_0000;
const MAX_RANGES: usize = 64;

struct Frames {
    ranges: heapless::Vec<(u64, u64), MAX_RANGES>,
    /// Index of the range the bump pointer is in, and the pointer.
    range: usize,
    next: u64,
    /// Head of the freed-frame list (0 = empty).
    free_head: u64,
    free_count: u64,
    total: u64,
}

impl Frames {
    /// Takes `bytes` (a multiple of the frame size) of never-used memory
    /// from the bump pointer, moving to the next usable range if needed.
    fn bump(&mut self, bytes: u64) -> Option<u64> {
        loop {
            let (_, end) = *self.ranges.get(self.range)?;
            if self.next + bytes <= end {
                let addr = self.next;
                self.next += bytes;
                return Some(addr);
            }
            self.range += 1;
            self.next = self.ranges.get(self.range).map(|r| r.0).unwrap_or(0);
        }
    }
}

static FRAMES: Mutex<Frames> =
    Mutex::new(Frames { ranges: heapless::Vec::new(), range: 0, next: 0, free_head: 0, free_count: 0, total: 0 });

/// Takes the usable regions from the memory map. Call once at boot.
pub fn init(regions: &MemoryRegions) {
    let mut frames = FRAMES.lock();
    for region in regions.iter().filter(|r| r.kind == MemoryRegionKind::Usable) {
        let start = region.start.max(LOW_LIMIT).next_multiple_of(FRAME);
        let end = region.end & !(FRAME - 1);
        if end > start {
            if frames.ranges.push((start, end)).is_err() {
                log::warn!("mem: more than {MAX_RANGES} usable regions; ignoring {start:#x}..{end:#x}");
                continue;
            }
            frames.total += (end - start) / FRAME;
        }
    }
    frames.next = frames.ranges.first().map(|r| r.0).unwrap_or(0);
    log::info!(
        "mem: {} usable frames ({} MiB) in {} regions",
        frames.total,
        (frames.total * FRAME) >> 20,
        frames.ranges.len()
    );
}

/// Allocates one zeroed 4 KiB frame.
pub fn alloc_zeroed() -> Option<PhysFrame> {
    let mut f = FRAMES.lock();
    let addr = if f.free_head != 0 {
        let head = f.free_head;
        // SAFETY: freed frames hold the next list entry in their first 8
        // bytes (written by `free`); the direct map covers them.
        f.free_head = unsafe { core::ptr::read(phys_to_virt(head) as *const u64) };
        f.free_count -= 1;
        head
    } else {
        f.bump(FRAME)?
    };
    drop(f);
    // SAFETY: the frame was just taken from the allocator, so nothing else
    // uses it; the direct map covers it.
    unsafe { core::ptr::write_bytes(phys_to_virt(addr), 0, FRAME as usize) };
    Some(PhysFrame::containing_address(PhysAddr::new(addr)))
}

/// Allocates `count` physically contiguous zeroed frames (from the bump
/// region; rings need one contiguous block so the kernel reaches them
/// through one direct-map pointer). Returns the first frame's address.
pub fn alloc_contiguous(count: u64) -> Option<u64> {
    let bytes = count * FRAME;
    let addr = FRAMES.lock().bump(bytes)?;
    // SAFETY: the frames were just taken from the allocator; the direct map
    // covers them.
    unsafe { core::ptr::write_bytes(phys_to_virt(addr), 0, bytes as usize) };
    Some(addr)
}

/// Returns a frame to the allocator.
///
/// # Safety
/// The frame must come from `alloc_zeroed` and be used by nothing anymore.
pub unsafe fn free(frame: PhysFrame) {
    let mut f = FRAMES.lock();
    let addr = frame.start_address().as_u64();
    // SAFETY: the caller gives up the frame; its first 8 bytes now hold the
    // free-list link.
    unsafe { core::ptr::write(phys_to_virt(addr) as *mut u64, f.free_head) };
    f.free_head = addr;
    f.free_count += 1;
}

/// Adapter for the `x86_64` crate's mapper.
pub struct KernelFrames;

// SAFETY: `alloc_zeroed` returns frames no one else uses (module invariant).
unsafe impl FrameAllocator<Size4KiB> for KernelFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        alloc_zeroed()
    }
}
