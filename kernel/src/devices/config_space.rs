//! Reading and writing PCI configuration space: through an ECAM window
//! (memory, from the ACPI MCFG table) when the machine has one, else
//! through the legacy configuration ports 0xCF8/0xCFC (which reach the
//! first 256 bytes of each function).
//!
//! Invariants: the port pair is used under one lock (address, then data);
//! ECAM is reached through the kernel's direct map of physical memory, and
//! only at addresses the MCFG table gives for a bus it covers; every
//! access is a whole aligned 32-bit word.

use crate::mem::phys_to_virt;
use alloc::vec::Vec;
use pci_logic::EcamWindow;
use system_config::PciAddress;
use x86_64::instructions::port::Port;

const CONFIG_ADDRESS: u16 = 0xcf8;
const CONFIG_DATA: u16 = 0xcfc;

static ECAM: spin::Once<Vec<EcamWindow>> = spin::Once::new();
static PORTS: spin::Mutex<()> = spin::Mutex::new(());

/// Sets the ECAM windows (segment 0 only) once; an empty list means the
/// legacy ports.
pub fn set_ecam(windows: Vec<EcamWindow>) {
    ECAM.call_once(|| windows.into_iter().filter(|w| w.segment == 0).collect());
}

/// Physical address of a function's 4 KiB ECAM page, if ECAM covers it.
pub fn ecam_address(address: PciAddress) -> Option<u64> {
    ECAM.get()?.iter().find_map(|w| w.function_address(address.bus, address.device, address.function))
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
    if let Some(page) = ecam_address(address) {
        let ptr = phys_to_virt(page + u64::from(offset & 0xffc)) as *const u32;
        // SAFETY: the MCFG table says this page is the function's
        // configuration space, the direct map covers it, and the offset is
        // an aligned word inside the page.
        return unsafe { ptr.read_volatile() };
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
    if let Some(page) = ecam_address(address) {
        let ptr = phys_to_virt(page + u64::from(offset & 0xffc)) as *mut u32;
        // SAFETY: as in `read`; the caller checked the register may be
        // written (`pci_logic::ConfigWrite` or boot-time BAR sizing).
        unsafe { ptr.write_volatile(value) };
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
