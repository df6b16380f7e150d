//! Shared regions (`[[region]]` in the system TOML): bulk-data memory the
//! kernel allocates once at boot, physically contiguous and zeroed, for
//! servers to map and pass buffer descriptors over (`docs/regions.md`).
//! Mapping them into the servers that hold them is `server::load`'s job;
//! checking descriptors is the mover's (`mover_logic::region`).
//!
//! Invariants:
//! - a region's frames are allocated once and never freed or moved while
//!   the system runs (a stopped server's address space may be destroyed,
//!   but it only borrowed them), so every holder's mapping stays valid and
//!   a restarted holder maps the same frames again;
//! - the kernel never reads or writes a region after zeroing it: its
//!   contents are the servers' business (and untrusted by each other);
//! - regions that do not fit the free memory stop the boot with the
//!   config's own error (line, column, key), like a bad file.

use crate::machine;
use crate::mem::frames;
use alloc::vec::Vec;
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;

/// Memory kept back for everything else a run allocates after the regions
/// (page tables of their mappings, restarts' fresh address spaces), in KiB.
const MARGIN_KIB: u64 = 8 * 1024;

/// One region's memory.
pub struct SharedRegion {
    phys: u64,
    pages: u64,
}

impl SharedRegion {
    /// Its frames, in order (map them at consecutive user pages).
    pub fn frames(&self) -> impl Iterator<Item = PhysFrame> + '_ {
        (0..self.pages).map(|page| PhysFrame::containing_address(PhysAddr::new(self.phys + page * 4096)))
    }

    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.pages * 4096
    }
}

static REGIONS: spin::Once<Vec<SharedRegion>> = spin::Once::new();

/// Allocates every region of `config`, in file order (entry `i` is
/// `config.regions[i]`). Called once, by the BSP, before any server runs.
/// A file whose regions do not fit ends the run with an error at the
/// first `size_kib` that does not fit.
pub fn allocate_all(config: &system_config::SystemConfig) -> &'static [SharedRegion] {
    REGIONS.call_once(|| {
        if config.regions.is_empty() {
            return Vec::new();
        }
        let counts = frames::counts();
        let free_kib = (counts.total.saturating_sub(counts.in_use) * 4).saturating_sub(MARGIN_KIB);
        if let Err(err) = config.check_region_memory(free_kib) {
            log::error!("system.toml:{err}");
            log::error!("system: the system description is invalid; nothing started");
            machine::exit(machine::EXIT_FAILURE)
        }
        let mut regions = Vec::with_capacity(config.regions.len());
        for region in &config.regions {
            let pages = region.size_bytes() / 4096;
            // The free count above can hide fragmentation: a region may
            // still find no contiguous run long enough.
            let Some(phys) = frames::alloc_contiguous(pages) else {
                log::error!(
                    "system.toml:{}:{}: key `region[{}].size_kib`: region `{}` ({} KiB): no physically contiguous run of free memory that long",
                    region.size_origin.0.line,
                    region.size_origin.0.column,
                    region.index,
                    region.name,
                    region.size_kib
                );
                log::error!("system: the system description is invalid; nothing started");
                machine::exit(machine::EXIT_FAILURE)
            };
            log::info!("region `{}`: {} KiB at {phys:#x}", region.name, region.size_kib);
            regions.push(SharedRegion { phys, pages });
        }
        regions
    })
}
