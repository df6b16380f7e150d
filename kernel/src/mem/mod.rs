//! Physical memory, the kernel heap, page tables and user-memory copies.
//!
//! Invariants: the kernel reaches every physical frame through the direct
//! map at `PHYS_OFFSET` (set once at boot); it never dereferences a user
//! virtual address (user memory is copied through `user.rs`, which walks the
//! server's page tables and goes through the direct map).
pub mod frames;
pub mod heap;
pub mod paging;
pub mod selftest;
pub mod user;

use core::sync::atomic::{AtomicU64, Ordering};

static PHYS_OFFSET: AtomicU64 = AtomicU64::new(0);

/// Records where the bootloader mapped all of physical memory.
pub fn set_phys_offset(offset: u64) {
    PHYS_OFFSET.store(offset, Ordering::Relaxed);
}

/// Kernel virtual address of physical address `phys`.
pub fn phys_to_virt(phys: u64) -> *mut u8 {
    (PHYS_OFFSET.load(Ordering::Relaxed) + phys) as *mut u8
}

pub fn phys_offset() -> u64 {
    PHYS_OFFSET.load(Ordering::Relaxed)
}
