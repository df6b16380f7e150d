//! Finds the MADT through the `acpi` crate (RSDP and XSDT/RSDT validation,
//! checksums) and hands its raw bytes to [`crate::madt::parse`].

use crate::madt::{self, MadtError, MadtInfo};
use acpi::{AcpiHandler, AcpiTables, PhysicalMapping};
use core::ptr::NonNull;

/// Reaches physical memory through the kernel's direct map: "mapping" is
/// address arithmetic, unmapping does nothing.
#[derive(Clone, Copy)]
struct DirectMap {
    offset: u64,
}

impl AcpiHandler for DirectMap {
    unsafe fn map_physical_region<T>(&self, physical_address: usize, size: usize) -> PhysicalMapping<Self, T> {
        let virt = (physical_address as u64 + self.offset) as *mut T;
        // SAFETY: the direct map covers all physical memory, so `virt` is
        // mapped for `size` bytes; it is non-null because `offset` is a
        // higher-half address.
        unsafe { PhysicalMapping::new(physical_address, NonNull::new_unchecked(virt), size, size, *self) }
    }

    fn unmap_physical_region<T>(_region: &PhysicalMapping<Self, T>) {}
}

/// Why no processor list could be read.
#[derive(Debug)]
pub enum FindError {
    /// The firmware gave no RSDP address.
    NoRsdp,
    /// The `acpi` crate rejected the RSDP or root table.
    Acpi(acpi::AcpiError),
    /// The MADT is present but unusable.
    Madt(MadtError),
}

impl core::fmt::Display for FindError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            FindError::NoRsdp => write!(f, "the bootloader found no ACPI RSDP"),
            FindError::Acpi(err) => write!(f, "ACPI tables unusable: {err:?}"),
            FindError::Madt(err) => write!(f, "MADT unusable: {err}"),
        }
    }
}

/// Reads the processor list from the MADT.
///
/// # Safety
/// `physical_memory_offset` must be the base of a mapping of all physical
/// memory, and `rsdp` (if given) the physical address the firmware
/// reported.
pub unsafe fn find_processors(physical_memory_offset: u64, rsdp: Option<u64>) -> Result<MadtInfo, FindError> {
    let rsdp = rsdp.ok_or(FindError::NoRsdp)?;
    let handler = DirectMap { offset: physical_memory_offset };
    // SAFETY: the bootloader reported `rsdp` from the firmware; the crate
    // validates signature and checksum before using it.
    let tables = unsafe { AcpiTables::from_rsdp(handler, rsdp as usize) }.map_err(FindError::Acpi)?;
    let madt = tables.find_table::<acpi::madt::Madt>().map_err(FindError::Acpi)?;
    let base = madt.virtual_start().as_ptr() as *const u8;
    // SAFETY: `base` maps the table's header (validated by the crate,
    // checksum included), whose bytes 4..8 hold the table length.
    let len = unsafe { core::ptr::read_unaligned(base.add(4) as *const u32) } as usize;
    // SAFETY: the checksum the crate verified covers `len` bytes, so they
    // are the table's and lie in mapped physical memory.
    let bytes = unsafe { core::slice::from_raw_parts(base, len) };
    madt::parse(bytes).map_err(FindError::Madt)
}
