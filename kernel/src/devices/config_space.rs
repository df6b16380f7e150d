//! Reading and writing PCI configuration space: through an ECAM window
//! (memory, from the ACPI MCFG table) when the machine has one, else
//! through the legacy configuration ports 0xCF8/0xCFC (which reach the
//! first 256 bytes of each function).
//!
//! Invariants: the port pair is used under one lock (address, then data);
//! ECAM is reached through a kernel mapping of its own, uncached
//! (`mem::paging::map_kernel_mmio`: these are device registers; the
//! direct map's write-back alias of the same range is never used for it),
//! and only at addresses the MCFG table gives for a bus it covers; a
//! window that could not be mapped is dropped (the ports serve instead);
//! every access is a whole aligned 32-bit word.

use alloc::vec::Vec;
use pci_logic::EcamWindow;
use system_config::PciAddress;
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

/// An ECAM window and the kernel virtual address its first byte is
/// mapped at (uncached).
struct MappedWindow {
    window: EcamWindow,
    virt: u64,
}

static ECAM: spin::Once<Vec<MappedWindow>> = spin::Once::new();
static PORTS: spin::Mutex<()> = spin::Mutex::new(());

/// Sets the ECAM windows (segment 0 only) once, mapping each uncached; an
/// empty list (or none that could be mapped) means the legacy ports. On
/// the BSP before any server is made (`map_kernel_mmio`'s rule).
pub fn set_ecam(windows: Vec<EcamWindow>) {
    ECAM.call_once(|| {
        windows
            .into_iter()
            .filter(|w| w.segment == 0)
            .filter_map(|window| {
                let (phys, len) = window.span();
                match crate::mem::paging::map_kernel_mmio(phys, len) {
                    Ok(virt) => {
                        log::info!("pci: ECAM {phys:#x}+{len:#x} mapped uncached at {virt:#x}");
                        Some(MappedWindow { window, virt })
                    }
                    Err(e) => {
                        log::warn!("pci: ECAM {phys:#x}+{len:#x} not used: {e}");
                        None
                    }
                }
            })
            .collect()
    });
}

/// Kernel virtual address of the word at `offset` of a function's ECAM
/// page, in the uncached mapping, if ECAM covers the function.
fn ecam_word(address: PciAddress, offset: u16) -> Option<u64> {
    ECAM.get()?.iter().find_map(|w| {
        let page = w.window.function_address(address.bus, address.device, address.function)?;
        Some(w.virt + (page - w.window.span().0) + u64::from(offset & 0xffc))
    })
}

/// Whether configuration space goes through ECAM (4096 bytes per function).
pub fn has_ecam() -> bool {
    ECAM.get().is_some_and(|w| !w.is_empty())
}

fn port_address(address: PciAddress, offset: u16) -> u32 {
    0x8000_0000
        | (u32::from(address.bus) << 16)
        | (u32::from(address.device) << 11)
        | (u32::from(address.function) << 8)
        | u32::from(offset & 0xfc)
}

/// Reads the word at `offset` (a multiple of 4; below 256 without ECAM).
pub fn read(address: PciAddress, offset: u16) -> u32 {
    if let Some(word) = ecam_word(address, offset) {
        // SAFETY: the MCFG table says this page is the function's
        // configuration space, `set_ecam` mapped the whole window there
        // (uncached, for the kernel's life), and the offset is an aligned
        // word inside the page.
        return unsafe { (word as *const u32).read_volatile() };
    }
    if offset >= 256 {
        return 0xffff_ffff;
    }
    let _lock = PORTS.lock();
    // SAFETY: 0xCF8/0xCFC are the PCI configuration ports on every PC; the
    // lock keeps the address/data pair together; a read has no effect but
    // the device's register read.
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(port_address(address, offset));
        Port::<u32>::new(CONFIG_DATA).read()
    }
}

/// Writes the word at `offset` (callers decide what may be written).
pub fn write(address: PciAddress, offset: u16, value: u32) {
    if let Some(word) = ecam_word(address, offset) {
        // SAFETY: as in `read`; the caller checked the register may be
        // written (`pci_logic::ConfigWrite` or boot-time BAR sizing).
        unsafe { (word as *mut u32).write_volatile(value) };
        return;
    }
    if offset >= 256 {
        return;
    }
    let _lock = PORTS.lock();
    // SAFETY: as in `read`; the caller checked the register may be written.
    unsafe {
        Port::<u32>::new(CONFIG_ADDRESS).write(port_address(address, offset));
        Port::<u32>::new(CONFIG_DATA).write(value);
    }
}
