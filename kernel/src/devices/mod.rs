//! PCI devices for driver servers: what the kernel found on the bus at
//! boot (`scan`), how it reaches configuration space (`config_space`:
//! ECAM from the ACPI MCFG table where there is one, the legacy
//! 0xCF8/0xCFC ports otherwise), and the grants of the system TOML's
//! `[[device]]` tables (`grant`: DMA memory, the BARs to map, and the
//! `pci_config` system call checked against them). Mapping BARs and DMA
//! memory into the granted server is `server::load`'s job.
//!
//! Invariants:
//! - the bus is scanned once, by the BSP, before any server runs; the
//!   tables here are read-only afterwards (a grant's BAR shadow is atomics);
//! - BARs never move: the kernel sizes them at boot with decoding off and
//!   restores them, and a server's writes to a BAR register only change a
//!   shadow (`pci_logic::ConfigWrite`);
//! - a server reaches only the functions granted to it, and a memory BAR
//!   is mapped only if no other function's registers share its pages.
//!
//! There is no IOMMU: a device granted to a server can be made to read or
//! write any physical memory by DMA. Such a server is trusted with that
//! (`docs/drivers.md`).

pub mod config_space;
pub mod grant;
pub mod scan;

use core::sync::atomic::AtomicBool;
use pci_logic::{BAR_COUNT, Bar};
use system_config::PciAddress;

/// A function found on the bus.
#[derive(Debug, Clone, Copy)]
pub struct Function {
    pub address: PciAddress,
    pub vendor: u16,
    pub device: u16,
    /// Class, subclass, programming interface (bytes 0x0b, 0x0a, 0x09).
    pub class: [u8; 3],
    /// Header type without the multi-function bit.
    pub header_type: u8,
    /// What each BAR read back after all ones were written (sizing).
    pub bar_sized: [u32; BAR_COUNT],
    pub bars: [Bar; BAR_COUNT],
}

/// One `[[device]]` grant, resolved to a function.
pub struct Grant {
    /// `[[device]]` index in the file.
    pub index: usize,
    /// The server (index in the file) it is granted to.
    pub server: usize,
    pub function: Function,
    /// Physical address and size of its DMA memory (0, 0: none).
    pub dma_phys: u64,
    pub dma_bytes: u64,
    /// Per BAR register: the driver wrote all ones (it is sizing).
    pub sizing: [AtomicBool; BAR_COUNT],
    /// 4096 with ECAM, 256 with the legacy ports.
    pub config_limit: u16,
}
