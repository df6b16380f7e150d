//! Finding the PCI functions at boot: the ECAM windows from the ACPI MCFG
//! table (`-machine q35` has one, the default `pc` machine does not), then
//! every bus, slot and function, with each BAR sized once.
//!
//! Invariants: runs once, on the BSP, before any server; sizing a BAR
//! turns the function's memory and I/O decoding off around the probe and
//! restores both the BAR and the command register afterwards; table bytes
//! from firmware are parsed by `pci_logic` (checksums, bounds).

use super::Function;
use super::config_space;
use crate::mem::phys_to_virt;
use alloc::vec::Vec;
use pci_logic::{BAR_COUNT, BAR0, Bar, COMMAND, EcamWindow};
use system_config::PciAddress;

static FOUND: spin::Once<Vec<Function>> = spin::Once::new();

/// Bytes of physical memory at `phys`, through the direct map.
///
/// # Safety
/// `phys..phys + len` must be memory the firmware described (ACPI tables
/// are in reserved or ACPI memory, which the direct map covers).
unsafe fn phys_bytes(phys: u64, len: usize) -> &'static [u8] {
    // SAFETY: the caller's promise; the direct map is never unmapped.
    unsafe { core::slice::from_raw_parts(phys_to_virt(phys), len) }
}

/// The ECAM windows the ACPI MCFG table lists (none without MCFG).
fn ecam_windows(rsdp: Option<u64>) -> Vec<EcamWindow> {
    let mut found = Vec::new();
    let Some(rsdp) = rsdp else { return found };
    // SAFETY: the bootloader reported this RSDP from the firmware; 36
    // bytes is its ACPI 2.0 size, all inside the firmware's area.
    let Some((root, xsdt)) = pci_logic::rsdp_root(unsafe { phys_bytes(rsdp, 36) }) else { return found };
    // SAFETY: the RSDP (checksum verified) points at the root table; its
    // header is 36 bytes.
    let Some(root_len) = pci_logic::sdt_length(unsafe { phys_bytes(root, pci_logic::SDT_HEADER) }) else {
        return found;
    };
    // SAFETY: the header gave the length; `root_entries` checks the checksum.
    let root_bytes = unsafe { phys_bytes(root, root_len.min(64 * 1024)) };
    for table in pci_logic::root_entries(root_bytes, xsdt) {
        // SAFETY: the root table (checksum verified) lists this table.
        let header = unsafe { phys_bytes(table, pci_logic::SDT_HEADER) };
        if header.get(..4) != Some(&b"MCFG"[..]) {
            continue;
        }
        let Some(len) = pci_logic::sdt_length(header) else { continue };
        // SAFETY: as above; `mcfg_windows` checks signature and checksum.
        found.extend(pci_logic::mcfg_windows(unsafe { phys_bytes(table, len.min(64 * 1024)) }));
    }
    found
}

fn probe(address: PciAddress) -> Option<Function> {
    let id = config_space::read(address, 0);
    let (vendor, device) = (id as u16, (id >> 16) as u16);
    if vendor == 0xffff || vendor == 0 {
        return None;
    }
    let class_word = config_space::read(address, 0x08);
    let class = [(class_word >> 24) as u8, (class_word >> 16) as u8, (class_word >> 8) as u8];
    let header_type = ((config_space::read(address, 0x0c) >> 16) as u8) & 0x7f;
    let mut bar_values = [0u32; BAR_COUNT];
    let mut bar_sized = [0u32; BAR_COUNT];
    if header_type == 0 {
        let command = config_space::read(address, COMMAND);
        // Decoding off while a BAR holds all ones, so the device never
        // answers at a bogus address.
        config_space::write(address, COMMAND, command & !0x3);
        for i in 0..BAR_COUNT {
            let offset = BAR0 + 4 * i as u16;
            bar_values[i] = config_space::read(address, offset);
            config_space::write(address, offset, 0xffff_ffff);
            bar_sized[i] = config_space::read(address, offset);
            config_space::write(address, offset, bar_values[i]);
        }
        config_space::write(address, COMMAND, command & 0xffff);
    }
    let bars = pci_logic::decode_bars(bar_values, bar_sized);
    Some(Function { address, vendor, device, class, header_type, bar_sized, bars })
}

/// Scans the bus once (later calls return the first result) and prints
/// one line per function.
pub fn init(rsdp: Option<u64>) -> &'static [Function] {
    FOUND.call_once(|| {
        let windows = ecam_windows(rsdp);
        match windows.first() {
            Some(w) => log::info!("pci: ECAM from ACPI MCFG at {:#x}, buses {}..={}", w.base, w.start_bus, w.end_bus),
            None => log::info!("pci: no ACPI MCFG table; configuration through ports 0xCF8/0xCFC"),
        }
        config_space::set_ecam(windows);
        let mut found = Vec::new();
        for bus in 0..=255u8 {
            for device in 0..32u8 {
                let first = PciAddress { bus, device, function: 0 };
                let Some(f0) = probe(first) else { continue };
                let multi = (config_space::read(first, 0x0c) >> 16) & 0x80 != 0;
                found.push(f0);
                if multi {
                    found.extend((1..8).filter_map(|function| probe(PciAddress { bus, device, function })));
                }
            }
        }
        for f in &found {
            let mut bars = alloc::string::String::new();
            for (i, bar) in f.bars.iter().enumerate() {
                use core::fmt::Write;
                let _ = match *bar {
                    Bar::Memory { base, size, .. } => write!(bars, " bar{i}=mem:{base:#x}+{size:#x}"),
                    Bar::Io { base, size } => write!(bars, " bar{i}=io:{base:#x}+{size:#x}"),
                    Bar::None => Ok(()),
                };
            }
            log::info!(
                "pci: {} {:04x}:{:04x} class {:02x}{:02x}{:02x}{bars}",
                f.address,
                f.vendor,
                f.device,
                f.class[0],
                f.class[1],
                f.class[2]
            );
        }
        found
    })
}

/// What `init` found (empty before it ran).
pub fn found() -> &'static [Function] {
    FOUND.get().map_or(&[], |v| v.as_slice())
}
