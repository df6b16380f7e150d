//! Address spaces: one page-table tree per server. The kernel half (PML4
//! entries 256..512) is the kernel's own, shared by reference and
//! supervisor-only; the user half starts empty.
//!
//! Invariants: a server's page tables are written only by the BSP while it
//! builds the server, before the server's core runs it; user mappings are
//! 4 KiB pages, never writable and executable at once (W^X), always
//! `USER_ACCESSIBLE`; intermediate user tables are `PRESENT|WRITABLE|USER`
//! so the leaf alone decides the permissions.
//!
//! Ownership: every user-half table frame (PDPT, PD, PT) and the PML4 belong
//! to the tree. A leaf marked [`OWNED`] (pages from `map_user_page` or
//! `adopt_user_frame`) belongs to it too; any other leaf (`map_user_frame`:
//! rings, pages owned elsewhere) is only borrowed. `destroy` gives back
//! exactly what the tree owns.

use super::frames::{self, KernelFrames};
use super::phys_to_virt;
use x86_64::structures::paging::mapper::MapToError;
use x86_64::structures::paging::{
    Mapper, OffsetPageTable, Page, PageTable, PageTableFlags as Flags, PhysFrame, Size4KiB,
};
use x86_64::{PhysAddr, VirtAddr};

/// The user half, as `abi` defines it for both sides: the first 2 MiB stay
/// unmapped so null-pointer accesses fault.
pub use abi::{USER_END, USER_MIN};

/// First address of the kernel half (PML4 entries 256..512): everything
/// the bootloader maps for the kernel lies at or above it.
pub const KERNEL_HALF_START: u64 = 0xffff_8000_0000_0000;

/// Software bit in a user leaf entry: the frame belongs to this tree and
/// `destroy` frees it (the CPU ignores bit 9).
const OWNED: Flags = Flags::BIT_9;

/// Physical address bits of a page-table entry.
const ADDRESS_MASK: u64 = 0x000F_FFFF_FFFF_F000;

/// What a user page may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserAccess {
    pub write: bool,
    pub execute: bool,
}

#[derive(Debug)]
pub enum MapError {
    OutOfFrames,
    /// W+X requested or an address outside the user half.
    Refused(&'static str),
    AlreadyMapped(u64),
}

impl core::fmt::Display for MapError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MapError::OutOfFrames => write!(f, "out of physical memory"),
            MapError::Refused(why) => write!(f, "mapping refused: {why}"),
            MapError::AlreadyMapped(addr) => write!(f, "page {addr:#x} is already mapped"),
        }
    }
}

/// The kernel's own page tables (the BSP's CR3 at boot).
pub fn kernel_pml4() -> PhysFrame {
    x86_64::registers::control::Cr3::read().0
}

/// Maps `len` bytes of device memory at physical `phys` (both multiples
/// of 4096, `len` at most 512 GiB) into the kernel half, uncached: PCD|PWT
/// with PAT bit 0, which is PAT entry 3, uncacheable in the power-on PAT
/// the kernel never reprograms; writable, never executable, supervisor
/// only, 4 KiB pages, in a PML4 entry of its own that was unused (the
/// highest free one). Returns the kernel virtual address of `phys`.
///
/// For memory-mapped configuration space (PCI ECAM): the bootloader's
/// direct map reaches it too, but write-back, and a device's registers
/// must not be cached or have writes combined (real firmware also marks
/// the range uncached in its MTRRs, which then wins; QEMU/TCG ignores
/// caching attributes, so only real hardware would show a mistake). The
/// direct map's alias stays, unused for it.
///
/// Call on the BSP, with the kernel's own page tables loaded, before any
/// server's address space is made: `AddressSpace::new_user` copies the
/// kernel half's PML4 entries, so later trees see the mapping and earlier
/// ones would not. The pages were not present before, so no TLB holds
/// them.
pub fn map_kernel_mmio(phys: u64, len: u64) -> Result<u64, MapError> {
    if !phys.is_multiple_of(4096) || !len.is_multiple_of(4096) || len == 0 || len > 1 << 39 {
        return Err(MapError::Refused("device memory not whole pages, or over 512 GiB"));
    }
    let pml4 = phys_to_virt(kernel_pml4().start_address().as_u64()) as *mut PageTable;
    // SAFETY: the kernel PML4 frame, reached through the direct map; only
    // the BSP writes kernel page tables, at boot (the caller's promise),
    // so this is the only reference made to it now.
    let table = unsafe { &mut *pml4 };
    let index = (256..512usize)
        .rev()
        .find(|&i| table[i].is_unused())
        .ok_or(MapError::Refused("no free PML4 entry in the kernel half"))?;
    let base = 0xffff_0000_0000_0000 | ((index as u64) << 39);
    // SAFETY: as above; the direct map makes every table frame reachable.
    let mut mapper = unsafe { OffsetPageTable::new(table, VirtAddr::new(super::phys_offset())) };
    let flags = Flags::PRESENT | Flags::WRITABLE | Flags::NO_CACHE | Flags::WRITE_THROUGH | Flags::NO_EXECUTE;
    for offset in (0..len).step_by(4096) {
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(base + offset));
        let frame = PhysFrame::<Size4KiB>::containing_address(PhysAddr::new(phys + offset));
        // SAFETY: the page lies in a kernel-half PML4 entry that was unused,
        // so no existing mapping changes; the frame is device memory the
        // caller names (not RAM anything else owns), mapped supervisor-only
        // and never executable.
        let result = unsafe {
            mapper.map_to_with_table_flags(page, frame, flags, Flags::PRESENT | Flags::WRITABLE, &mut KernelFrames)
        };
        match result {
            // Not present before: nothing to flush.
            Ok(flush) => flush.ignore(),
            Err(MapToError::FrameAllocationFailed) => return Err(MapError::OutOfFrames),
            Err(MapToError::ParentEntryHugePage) => return Err(MapError::Refused("a huge page covers the address")),
            Err(MapToError::PageAlreadyMapped(_)) => return Err(MapError::AlreadyMapped(base + offset)),
        }
    }
    Ok(base)
}

/// One server's page-table tree.
pub struct AddressSpace {
    pml4: PhysFrame,
}

impl AddressSpace {
    /// A new tree sharing the kernel half of `kernel_pml4()`, user half empty.
    pub fn new_user() -> Result<AddressSpace, MapError> {
        let pml4 = frames::alloc_zeroed().ok_or(MapError::OutOfFrames)?;
        let src = phys_to_virt(kernel_pml4().start_address().as_u64()) as *const u64;
        let dst = phys_to_virt(pml4.start_address().as_u64()) as *mut u64;
        // SAFETY: both are page-table frames reached through the direct map;
        // the new one is ours alone; entries 256..512 are 8-byte words.
        unsafe { core::ptr::copy_nonoverlapping(src.add(256), dst.add(256), 256) };
        Ok(AddressSpace { pml4 })
    }

    /// Physical address of the PML4, the value for CR3.
    pub fn cr3(&self) -> u64 {
        self.pml4.start_address().as_u64()
    }

    fn mapper(&mut self) -> OffsetPageTable<'_> {
        let table = phys_to_virt(self.cr3()) as *mut PageTable;
        // SAFETY: the PML4 frame belongs to this address space, which is
        // borrowed mutably, so this is the only reference (module
        // invariant: only the builder writes the tables); the direct map
        // makes every table frame reachable at `phys_offset`.
        unsafe { OffsetPageTable::new(&mut *table, VirtAddr::new(super::phys_offset())) }
    }

    /// Maps a fresh zeroed frame at user page `addr` and returns the frame;
    /// the tree owns it (`destroy` frees it).
    pub fn map_user_page(&mut self, addr: u64, access: UserAccess) -> Result<PhysFrame, MapError> {
        let frame = frames::alloc_zeroed().ok_or(MapError::OutOfFrames)?;
        match self.map(addr, frame, access, true) {
            Ok(()) => Ok(frame),
            Err(e) => {
                // SAFETY: the frame was never mapped.
                unsafe { frames::free(frame) };
                Err(e)
            }
        }
    }

    /// Maps the existing `frame` at user page `addr` (a ring page the kernel
    /// also reaches through the direct map). The tree only borrows it:
    /// `destroy` leaves it to its owner.
    pub fn map_user_frame(&mut self, addr: u64, frame: PhysFrame, access: UserAccess) -> Result<(), MapError> {
        self.map(addr, frame, access, false)
    }

    /// Maps `frame`, which the caller took from `frames::alloc_zeroed` for
    /// this tree alone (an info or statistics page), at user page `addr`,
    /// and hands it over: `destroy` frees it. On an error the frame is
    /// still the caller's.
    pub fn adopt_user_frame(&mut self, addr: u64, frame: PhysFrame, access: UserAccess) -> Result<(), MapError> {
        self.map(addr, frame, access, true)
    }

    /// Maps the device registers at physical `frame` (a memory BAR) at
    /// user page `addr`: read/write, uncached (PCD|PWT), never executable,
    /// borrowed (`destroy` leaves it alone).
    pub fn map_user_mmio(&mut self, addr: u64, frame: PhysFrame) -> Result<(), MapError> {
        self.map_with(addr, frame, UserAccess { write: true, execute: false }, false, true)
    }

    fn map(&mut self, addr: u64, frame: PhysFrame, access: UserAccess, owned: bool) -> Result<(), MapError> {
        self.map_with(addr, frame, access, owned, false)
    }

    fn map_with(
        &mut self,
        addr: u64,
        frame: PhysFrame,
        access: UserAccess,
        owned: bool,
        uncached: bool,
    ) -> Result<(), MapError> {
        if access.write && access.execute {
            return Err(MapError::Refused("writable and executable (W^X)"));
        }
        if !(USER_MIN..USER_END).contains(&addr) || !addr.is_multiple_of(4096) {
            return Err(MapError::Refused("outside the user half or unaligned"));
        }
        let mut flags = Flags::PRESENT | Flags::USER_ACCESSIBLE;
        if access.write {
            flags |= Flags::WRITABLE;
        }
        if !access.execute {
            flags |= Flags::NO_EXECUTE;
        }
        if owned {
            flags |= OWNED;
        }
        if uncached {
            flags |= Flags::NO_CACHE | Flags::WRITE_THROUGH;
        }
        let parents = Flags::PRESENT | Flags::WRITABLE | Flags::USER_ACCESSIBLE;
        let page = Page::<Size4KiB>::containing_address(VirtAddr::new(addr));
        // SAFETY: the frame is owned by this server (fresh, or a ring the
        // kernel shares with it on purpose); the page is in the user half,
        // so no kernel mapping changes.
        let result = unsafe { self.mapper().map_to_with_table_flags(page, frame, flags, parents, &mut KernelFrames) };
        match result {
            // The tree is not active on any core yet: nothing to flush.
            Ok(flush) => {
                flush.ignore();
                Ok(())
            }
            // A table frame that could not be had is memory, not a clash.
            Err(MapToError::FrameAllocationFailed) => Err(MapError::OutOfFrames),
            Err(MapToError::ParentEntryHugePage) => Err(MapError::Refused("a huge page covers the address")),
            Err(MapToError::PageAlreadyMapped(_)) => Err(MapError::AlreadyMapped(addr)),
        }
    }

    /// Gives back every frame the tree owns: the pages it mapped with
    /// `map_user_page` or `adopt_user_frame`, every user-half table frame,
    /// and the PML4. Frames mapped with `map_user_frame` are left alone
    /// (their owner frees them), and so is the kernel half (shared by every
    /// tree). Returns what was freed.
    ///
    /// # Safety
    /// No core may run on this tree any more: none has it in CR3 (or will
    /// load it again, e.g. from a saved copy of `cr3()`), and none has its
    /// user mappings in its TLB (user pages are not global, so a CR3 write
    /// since it last ran on a core is enough). Nothing may keep a pointer
    /// into an owned page.
    pub unsafe fn destroy(self) -> Freed {
        let mut freed = Freed::default();
        let pml4 = self.cr3();
        for l4 in 0..256 {
            let Some(pdpt) = table_at(pml4, l4) else { continue };
            for l3 in 0..512 {
                let Some(pd) = table_at(pdpt, l3) else { continue };
                for l2 in 0..512 {
                    let Some(pt) = table_at(pd, l2) else { continue };
                    for l1 in 0..512 {
                        let entry = entry(pt, l1);
                        let flags = Flags::from_bits_truncate(entry);
                        if flags.contains(Flags::PRESENT | OWNED) {
                            // SAFETY: an OWNED leaf was allocated for this
                            // tree alone and mapped once; the caller
                            // guarantees no one uses it any more.
                            unsafe { free_frame(entry & ADDRESS_MASK) };
                            freed.pages += 1;
                        } else if flags.contains(Flags::PRESENT) {
                            freed.borrowed += 1;
                        }
                    }
                    // SAFETY: user-half table frames come from the mapper's
                    // `KernelFrames` for this tree alone.
                    unsafe { free_frame(pt) };
                    freed.tables += 1;
                }
                // SAFETY: as for the page tables above.
                unsafe { free_frame(pd) };
                freed.tables += 1;
            }
            // SAFETY: as for the page tables above.
            unsafe { free_frame(pdpt) };
            freed.tables += 1;
        }
        // SAFETY: the PML4 came from `new_user` for this tree alone; its
        // kernel half only points at the kernel's tables, which stay.
        unsafe { frames::free(self.pml4) };
        freed.tables += 1;
        freed
    }
}

/// What [`AddressSpace::destroy`] gave back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freed {
    /// Owned user pages freed.
    pub pages: u64,
    /// Table frames freed (user-half tables and the PML4).
    pub tables: u64,
    /// Borrowed leaves left to their owners.
    pub borrowed: u64,
}

/// Entry `index` of the table frame at `table`.
fn entry(table: u64, index: usize) -> u64 {
    // SAFETY: `table` is a page-table frame of a tree (the root or an address
    // from a present entry); one aligned 8-byte read through the direct map.
    unsafe { core::ptr::read_volatile((phys_to_virt(table) as *const u64).add(index)) }
}

/// The next-level table that entry `index` of `table` points to, if it is
/// present and not a huge page (user mappings never are).
fn table_at(table: u64, index: usize) -> Option<u64> {
    let e = entry(table, index);
    let flags = Flags::from_bits_truncate(e);
    (flags.contains(Flags::PRESENT) && !flags.contains(Flags::HUGE_PAGE)).then_some(e & ADDRESS_MASK)
}

/// # Safety
/// As for `frames::free`.
unsafe fn free_frame(phys: u64) {
    // SAFETY: passed on from the caller.
    unsafe { frames::free(PhysFrame::containing_address(PhysAddr::new(phys))) };
}

/// Unmaps one 4 KiB page of the kernel's own tables (stack guard pages).
/// Returns false if the page is not mapped with 4 KiB granularity.
///
/// # Safety
/// Nothing may use the page afterwards, and no other core may have it in its
/// TLB (call before APs start).
pub unsafe fn unmap_kernel_page(addr: u64) -> bool {
    let table = phys_to_virt(kernel_pml4().start_address().as_u64()) as *mut PageTable;
    // SAFETY: the kernel tables are only modified here, by the BSP at boot.
    let mut mapper = unsafe { OffsetPageTable::new(&mut *table, VirtAddr::new(super::phys_offset())) };
    let page = Page::<Size4KiB>::containing_address(VirtAddr::new(addr));
    match mapper.unmap(page) {
        Ok((_, flush)) => {
            flush.flush();
            true
        }
        Err(_) => false,
    }
}

/// Physical address behind user address `addr` in the tree at `cr3`, if a
/// user-accessible page maps it (and it is writable, if `write`).
pub fn translate_user(cr3: u64, addr: u64, write: bool) -> Option<u64> {
    if !(USER_MIN..USER_END).contains(&addr) {
        return None;
    }
    let mut table = cr3;
    for level in (0..4).rev() {
        let index = (addr >> (12 + 9 * level)) & 511;
        // SAFETY: `table` is a page-table frame of this tree (the root or an
        // address taken from a present entry); reading one entry through the
        // direct map has no side effects.
        let entry = unsafe { core::ptr::read_volatile((phys_to_virt(table) as *const u64).add(index as usize)) };
        let flags = Flags::from_bits_truncate(entry);
        if !flags.contains(Flags::PRESENT | Flags::USER_ACCESSIBLE) || (write && !flags.contains(Flags::WRITABLE)) {
            return None;
        }
        if level > 0 && flags.contains(Flags::HUGE_PAGE) {
            return None; // user mappings are 4 KiB only
        }
        table = PhysAddr::new_truncate(entry & 0x000F_FFFF_FFFF_F000).as_u64();
    }
    Some(table + (addr & 0xFFF))
}
