//! The physical frame allocator, built from the bootloader's memory map.
//!
//! Invariants: only `Usable` regions at or above 1 MiB are handed out (the
//! low megabyte holds the AP trampoline and firmware leftovers); a frame is
//! never handed out twice without a `free` in between. Freed memory is kept
//! in two intrusive lists stored in the freed frames themselves (through the
//! direct map): single frames (`free`), taken first by `alloc_zeroed` in
//! O(1), and runs of two or more contiguous frames (`free_contiguous`),
//! which `alloc_contiguous` reuses first fit and `alloc_zeroed` nibbles from
//! when there is no single frame. Never-used memory comes from a bump
//! pointer. `in_use` counts frames handed out and not given back.
//!
//! ```text
//!  alloc_zeroed:     singles ─▶ last frame of the first run ─▶ bump
//!  alloc_contiguous: first run with >= count frames (split) ─▶ bump
//!  free:             ─▶ singles        free_contiguous(n >= 2): ─▶ runs
//! ```

use super::phys_to_virt;
use bootloader_api::info::{MemoryRegionKind, MemoryRegions};
use spin::Mutex;
use x86_64::PhysAddr;
use x86_64::structures::paging::{FrameAllocator, PhysFrame, Size4KiB};

const FRAME: u64 = 4096;
const LOW_LIMIT: u64 = 0x10_0000;
const MAX_RANGES: usize = 64;
/// Runs looked at by one `alloc_contiguous` before it takes fresh memory
/// instead: a long list of small runs must not make ring allocation slow.
const RUN_SEARCH_LIMIT: usize = 64;

struct Frames {
    ranges: heapless::Vec<(u64, u64), MAX_RANGES>,
    /// Index of the range the bump pointer is in, and the pointer.
    range: usize,
    next: u64,
    /// Head of the freed single-frame list (0 = empty); each frame holds
    /// the next one's address in its first 8 bytes.
    free_head: u64,
    /// Head of the freed-run list (0 = empty); the first frame of each run
    /// holds the next run's address and this run's frame count.
    run_head: u64,
    /// Frames in both lists.
    free_count: u64,
    /// Frames handed out and not freed.
    in_use: u64,
    total: u64,
}

/// The header a freed run keeps in its first frame.
#[repr(C)]
struct RunHeader {
    next: u64,
    count: u64,
}

fn run_header(addr: u64) -> *mut RunHeader {
    phys_to_virt(addr) as *mut RunHeader
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

    /// Whether `addr..addr + count` frames lie inside the usable memory
    /// this allocator manages (a cheap guard against freeing garbage).
    fn owns(&self, addr: u64, count: u64) -> bool {
        let Some(end) = count.checked_mul(FRAME).and_then(|b| addr.checked_add(b)) else { return false };
        addr.is_multiple_of(FRAME) && count > 0 && self.ranges.iter().any(|&(s, e)| s <= addr && end <= e)
    }

    /// One frame from the freed lists, if any: a single, else the last
    /// frame of the first run (the run keeps its header and shrinks).
    fn take_freed_frame(&mut self) -> Option<u64> {
        if self.free_head != 0 {
            let head = self.free_head;
            // SAFETY: freed frames hold the next list entry in their first
            // 8 bytes (written by `free`); the direct map covers them.
            self.free_head = unsafe { core::ptr::read(phys_to_virt(head) as *const u64) };
            self.free_count -= 1;
            return Some(head);
        }
        if self.run_head != 0 {
            let run = self.run_head;
            // SAFETY: the first frame of a freed run holds its header
            // (written by `push_run`); nothing else uses freed frames.
            let header = unsafe { &mut *run_header(run) };
            self.free_count -= 1;
            if header.count > 1 {
                header.count -= 1;
                return Some(run + header.count * FRAME);
            }
            self.run_head = header.next;
            return Some(run);
        }
        None
    }

    /// `count` contiguous frames from the freed runs (first fit), if one of
    /// the first `RUN_SEARCH_LIMIT` runs is long enough.
    fn take_freed_run(&mut self, count: u64) -> Option<u64> {
        let mut previous: u64 = 0;
        let mut run = self.run_head;
        for _ in 0..RUN_SEARCH_LIMIT {
            if run == 0 {
                return None;
            }
            // SAFETY: `run` is on the run list, so its first frame holds
            // its header; nothing else uses freed frames.
            let header = unsafe { &mut *run_header(run) };
            if header.count >= count {
                self.free_count -= count;
                if header.count > count {
                    // Take the tail; the head keeps its header and place.
                    header.count -= count;
                    return Some(run + header.count * FRAME);
                }
                let next = header.next;
                if previous == 0 {
                    self.run_head = next;
                } else {
                    // SAFETY: `previous` is the run before this one on the
                    // list; its header is in its first frame.
                    unsafe { (*run_header(previous)).next = next };
                }
                return Some(run);
            }
            previous = run;
            run = header.next;
        }
        None
    }

    fn push_single(&mut self, addr: u64) {
        // SAFETY: the caller gives the frame up; its first 8 bytes now hold
        // the free-list link.
        unsafe { core::ptr::write(phys_to_virt(addr) as *mut u64, self.free_head) };
        self.free_head = addr;
        self.free_count += 1;
    }

    fn push_run(&mut self, addr: u64, count: u64) {
        // SAFETY: the caller gives the run up; its first frame now holds
        // the run header.
        unsafe { core::ptr::write(run_header(addr), RunHeader { next: self.run_head, count }) };
        self.run_head = addr;
        self.free_count += count;
    }
}

static FRAMES: Mutex<Frames> = Mutex::new(Frames {
    ranges: heapless::Vec::new(),
    range: 0,
    next: 0,
    free_head: 0,
    run_head: 0,
    free_count: 0,
    in_use: 0,
    total: 0,
});

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
    let addr = match f.take_freed_frame() {
        Some(addr) => addr,
        None => f.bump(FRAME)?,
    };
    f.in_use += 1;
    drop(f);
    // SAFETY: the frame was just taken from the allocator, so nothing else
    // uses it; the direct map covers it.
    unsafe { core::ptr::write_bytes(phys_to_virt(addr), 0, FRAME as usize) };
    Some(PhysFrame::containing_address(PhysAddr::new(addr)))
}

/// Allocates `count` physically contiguous zeroed frames (rings need one
/// contiguous block so the kernel reaches them through one direct-map
/// pointer): a freed run if one is long enough, else fresh memory. Returns
/// the first frame's address.
pub fn alloc_contiguous(count: u64) -> Option<u64> {
    if count == 0 {
        return None;
    }
    let bytes = count.checked_mul(FRAME)?;
    let mut f = FRAMES.lock();
    let addr = match f.take_freed_run(count) {
        Some(addr) => addr,
        None => f.bump(bytes)?,
    };
    f.in_use += count;
    drop(f);
    // SAFETY: the frames were just taken from the allocator; the direct map
    // covers them.
    unsafe { core::ptr::write_bytes(phys_to_virt(addr), 0, bytes as usize) };
    Some(addr)
}

/// Returns a frame to the allocator. A frame outside the managed memory is
/// refused with an error line (and leaked), never put on a list.
///
/// # Safety
/// The frame must come from `alloc_zeroed` (or be one frame of a block from
/// `alloc_contiguous`), not be freed already, and be used by nothing
/// anymore: no mapping of it may be reachable by any core.
pub unsafe fn free(frame: PhysFrame) {
    let addr = frame.start_address().as_u64();
    let mut f = FRAMES.lock();
    if !f.owns(addr, 1) {
        drop(f);
        log::error!("mem: refused to free frame {addr:#x}: not allocator memory");
        return;
    }
    f.push_single(addr);
    f.in_use = f.in_use.saturating_sub(1);
}

/// Returns `count` contiguous frames starting at `phys` (a block from
/// `alloc_contiguous`, or part of one) to the allocator.
///
/// # Safety
/// As for [`free`], for every frame of the block.
pub unsafe fn free_contiguous(phys: u64, count: u64) {
    let mut f = FRAMES.lock();
    if !f.owns(phys, count) {
        drop(f);
        log::error!("mem: refused to free {count} frames at {phys:#x}: not allocator memory");
        return;
    }
    if count == 1 {
        f.push_single(phys);
    } else {
        f.push_run(phys, count);
    }
    f.in_use = f.in_use.saturating_sub(count);
}

/// What the allocator holds, for reports and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCounts {
    /// Usable frames in all.
    pub total: u64,
    /// Handed out and not given back.
    pub in_use: u64,
    /// Given back and waiting on a free list.
    pub freed: u64,
}

/// The allocator's counts now.
pub fn counts() -> FrameCounts {
    let f = FRAMES.lock();
    FrameCounts { total: f.total, in_use: f.in_use, freed: f.free_count }
}

/// Adapter for the `x86_64` crate's mapper.
pub struct KernelFrames;

// SAFETY: `alloc_zeroed` returns frames no one else uses (module invariant).
unsafe impl FrameAllocator<Size4KiB> for KernelFrames {
    fn allocate_frame(&mut self) -> Option<PhysFrame<Size4KiB>> {
        alloc_zeroed()
    }
}
