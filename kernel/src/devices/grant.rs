//! The `[[device]]` grants: each table resolved to a function found on the
//! bus, its DMA memory allocated, and the `pci_config` system call that
//! lets the granted server (and no other) reach that function's
//! configuration space.
//!
//! Invariants: grants are made once, by the BSP, before any server runs;
//! a table that matches nothing, or DMA memory that does not fit, stops
//! the boot with the config's own error (line, column, key), like a bad
//! file; DMA memory is physically contiguous, zeroed, and never freed or
//! moved; a server's `device` argument is an index into its own grants in
//! file order (the order of its info page) and is checked; writes go
//! through `pci_logic::ConfigWrite` (BARs shadowed, ROM and IDs refused,
//! I/O decoding never enabled).

use super::{Function, Grant, config_space, scan};
use crate::machine;
use crate::mem::frames;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use pci_logic::{BAR_COUNT, BAR0, ConfigWrite};

/// Memory kept back for everything else after the regions and DMA memory.
const MARGIN_KIB: u64 = 8 * 1024;

static GRANTS: spin::Once<Vec<Grant>> = spin::Once::new();

fn fail(line: usize, column: usize, key: &str, what: core::fmt::Arguments) -> ! {
    log::error!("system.toml:{line}:{column}: key `{key}`: {what}");
    log::error!("system: the system description is invalid; nothing started");
    machine::exit(machine::EXIT_FAILURE)
}

/// Resolves every `[[device]]` table of `config` against the bus and
/// allocates its DMA memory, once. Entry `i` is `config.devices[i]`.
pub fn grant_all(config: &system_config::SystemConfig) -> &'static [Grant] {
    GRANTS.call_once(|| {
        if config.devices.is_empty() {
            return Vec::new();
        }
        let found = scan::found();
        let ids: Vec<system_config::PciFunction> = found
            .iter()
            .map(|f| system_config::PciFunction { address: f.address, vendor: f.vendor, device: f.device })
            .collect();
        let chosen = match config.resolve_devices(&ids) {
            Ok(chosen) => chosen,
            Err(err) => {
                log::error!("system.toml:{err}");
                log::error!("system: the system description is invalid; nothing started");
                machine::exit(machine::EXIT_FAILURE)
            }
        };
        let counts = frames::counts();
        let free_kib = (counts.total.saturating_sub(counts.in_use) * 4).saturating_sub(MARGIN_KIB);
        if let Err(err) = config.check_dma_memory(free_kib) {
            log::error!("system.toml:{err}");
            log::error!("system: the system description is invalid; nothing started");
            machine::exit(machine::EXIT_FAILURE)
        }
        let mut grants = Vec::with_capacity(chosen.len());
        for (device, choice) in config.devices.iter().zip(chosen) {
            let Some(function) = found.iter().find(|f| f.address == choice.address).copied() else { continue };
            let pages = device.dma_bytes() / 4096;
            let dma_phys = if pages == 0 {
                0
            } else {
                match frames::alloc_contiguous(pages) {
                    Some(phys) => phys,
                    None => fail(
                        device.dma_origin.0.line,
                        device.dma_origin.0.column,
                        &alloc::format!("device[{}].dma_kib", device.index),
                        format_args!(
                            "device `{}` ({} KiB of DMA memory): no physically contiguous run of free memory that long",
                            device.name, device.dma_kib
                        ),
                    ),
                }
            };
            log::info!(
                "device `{}`: {} {:04x}:{:04x} granted to `{}`, {} KiB of DMA memory at {dma_phys:#x}",
                device.name,
                function.address,
                function.vendor,
                function.device,
                config.servers.get(device.server).map_or("?", |s| s.name.as_str()),
                device.dma_kib
            );
            grants.push(Grant {
                index: device.index,
                server: device.server,
                function,
                dma_phys,
                dma_bytes: pages * 4096,
                sizing: core::array::from_fn(|_| AtomicBool::new(false)),
                config_limit: if config_space::has_ecam() { 4096 } else { 256 },
            });
        }
        grants
    })
}

/// The grants of server `server` (its index in the file), in file order:
/// its view (entry `i` is its device `i`).
pub fn of_server(server: usize) -> impl Iterator<Item = &'static Grant> {
    GRANTS.get().map_or(&[][..], |g| g.as_slice()).iter().filter(move |g| g.server == server)
}

/// Whether memory BAR `bar` of `function` may be mapped: no other
/// function's memory BAR shares one of its pages.
pub fn bar_pages_private(function: &Function, bar: usize) -> bool {
    let pci_logic::Bar::Memory { base, size, .. } = function.bars[bar] else { return false };
    scan::found().iter().all(|other| {
        other.bars.iter().enumerate().all(|(i, b)| match *b {
            pci_logic::Bar::Memory { base: ob, size: os, .. } => {
                (other.address == function.address && i == bar) || !pci_logic::pages_overlap((base, size), (ob, os))
            }
            _ => true,
        })
    })
}

/// The `pci_config` system call of server `server` (index in the file):
/// read (`write` false) or write the word at `offset` of its `device`-th
/// granted function. `Err` is an `abi::err` code.
pub fn pci_config(server: usize, device: u64, offset: u64, write: bool, value: u32) -> Result<u32, i64> {
    let grant = usize::try_from(device).ok().and_then(|d| of_server(server).nth(d)).ok_or(abi::err::NOT_GRANTED)?;
    let offset = u16::try_from(offset).ok().filter(|o| o % 4 == 0 && *o < grant.config_limit);
    let offset = offset.ok_or(abi::err::OUT_OF_RANGE)?;
    let address = grant.function.address;
    let bar = (BAR0..BAR0 + 4 * BAR_COUNT as u16).contains(&offset).then(|| usize::from((offset - BAR0) / 4));
    if !write {
        return Ok(match bar {
            Some(i) if grant.function.header_type == 0 => pci_logic::read_bar_shadow(
                grant.sizing[i].load(Ordering::Relaxed),
                config_space::read(address, offset),
                grant.function.bar_sized[i],
            ),
            _ => config_space::read(address, offset),
        });
    }
    match ConfigWrite::decide(offset, value, grant.config_limit) {
        ConfigWrite::Pass { value } => {
            config_space::write(address, offset, value);
            Ok(0)
        }
        ConfigWrite::Shadow { index, sizing } => {
            grant.sizing[index].store(sizing, Ordering::Relaxed);
            Ok(0)
        }
        ConfigWrite::Refuse => Err(abi::err::BAD_COMMAND),
    }
}
