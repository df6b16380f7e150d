//! Loading servers: each server's ELF (checked by `elf-check`) becomes a
//! fresh address space with its segments (W^X), stack, rings, read-only
//! info page and statistics page. Starting them is `sync_ipc::start_all`
//! (a core may hold several servers).
//!
//! Invariants: everything here runs on the BSP before any server runs; a
//! server that cannot be loaded is reported and left out, the others still
//! start (their capabilities to it resolve to "not running").

use super::{Server, State};
use crate::mem::paging::{AddressSpace, MapError, UserAccess};
use crate::mem::{frames, phys_to_virt};
use crate::rings::{RingError, SharedRing};
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicI64, AtomicU8, AtomicU32, AtomicU64, Ordering};
use elf_check::{Limits, LoadPlan, check_elf};
use mover_logic::OutboxCounters;
use x86_64::structures::paging::PhysFrame;

/// Why a server could not be loaded.
pub enum LoadError {
    MissingBinary,
    Elf(elf_check::ElfError),
    Memory(MapError),
    Ring(RingError),
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::MissingBinary => write!(f, "its binary is not in the boot ramdisk"),
            LoadError::Elf(e) => write!(f, "ELF rejected: {e}"),
            LoadError::Memory(e) => write!(f, "address space: {e}"),
            LoadError::Ring(e) => write!(f, "rings: {e}"),
        }
    }
}

const SERVER_LIMITS: Limits =
    Limits { user_min: abi::USER_MIN, user_max: abi::SEGMENTS_END, max_mapped_bytes: 64 * 1024 * 1024 };

fn map_segments(space: &mut AddressSpace, plan: &LoadPlan, regions: &mut Vec<(u64, u64)>) -> Result<(), LoadError> {
    for segment in plan.segments() {
        let access = UserAccess { write: segment.permissions.write, execute: segment.permissions.execute };
        let mut page = segment.page_start;
        while page < segment.page_end {
            let frame = space.map_user_page(page, access).map_err(LoadError::Memory)?;
            // Copy the part of the file image that falls into this page.
            let file_start = segment.vaddr;
            let file_end = segment.vaddr + segment.file_data.len() as u64;
            let from = page.max(file_start);
            let to = (page + 4096).min(file_end);
            if from < to {
                let src = &segment.file_data[(from - file_start) as usize..(to - file_start) as usize];
                let dst = phys_to_virt(frame.start_address().as_u64() + (from - page));
                // SAFETY: the frame is fresh and mapped nowhere else in the
                // kernel; `from - page + len <= 4096`.
                unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
            }
            page += 4096;
        }
        regions.push((segment.page_start, segment.page_end));
    }
    Ok(())
}

/// Maps the user stack pages `bottom..top` (read/write, never executable).
fn map_stack(space: &mut AddressSpace, bottom: u64, top: u64) -> Result<(), LoadError> {
    let rw = UserAccess { write: true, execute: false };
    let mut page = bottom;
    while page < top {
        space.map_user_page(page, rw).map_err(LoadError::Memory)?;
        page += 4096;
    }
    Ok(())
}

/// Maps a frame owned elsewhere (ring, info or statistics page) and records
/// it, so that a restart maps the same frame into the new address space.
fn map_shared(
    space: &mut AddressSpace,
    maps: &mut Vec<(u64, PhysFrame, bool)>,
    addr: u64,
    frame: PhysFrame,
    write: bool,
) -> Result<(), LoadError> {
    space.map_user_frame(addr, frame, UserAccess { write, execute: false }).map_err(LoadError::Memory)?;
    maps.push((addr, frame, write));
    Ok(())
}

/// A ring for a server, mapped at `addr` and recorded.
fn user_ring(
    space: &mut AddressSpace,
    maps: &mut Vec<(u64, PhysFrame, bool)>,
    addr: u64,
    slots: u32,
) -> Result<SharedRing, LoadError> {
    let ring = SharedRing::new_for_user(slots as usize).map_err(LoadError::Ring)?;
    for (page, frame) in ring.frames().enumerate() {
        map_shared(space, maps, addr + page as u64 * 4096, frame, true)?;
    }
    Ok(ring)
}

/// What `load` builds before the server entry exists: if any step fails,
/// everything made so far is given back.
#[derive(Default)]
struct Parts {
    rings: Vec<SharedRing>,
    stats: Option<PhysFrame>,
    maps: Vec<(u64, PhysFrame, bool)>,
    regions: Vec<(u64, u64)>,
}

impl Parts {
    /// Frees what a failed load made. The address space was never run.
    fn give_back(self, space: AddressSpace) {
        // SAFETY: the tree was never loaded into any CR3.
        unsafe { space.destroy() };
        for ring in self.rings {
            // SAFETY: no handle to it was made; its only mapping was in the
            // tree just destroyed.
            unsafe { ring.free() };
        }
        if let Some(frame) = self.stats {
            // SAFETY: from `alloc_zeroed`, mapped only in that tree.
            unsafe { frames::free(frame) };
        }
    }
}

/// The user stack of server `s`: (bottom, top).
fn stack_range(s: &system_config::Server) -> (u64, u64) {
    let top = abi::stack_top_for_server(s.index);
    (top - u64::from(s.stack_kib) * 1024, top)
}

/// Segments, rings, statistics page and stack of one server, into `space`.
fn fill(
    config: &system_config::SystemConfig,
    s: &system_config::Server,
    plan: &LoadPlan,
    space: &mut AddressSpace,
    parts: &mut Parts,
) -> Result<(), LoadError> {
    map_segments(space, plan, &mut parts.regions)?;
    parts.rings.push(user_ring(space, &mut parts.maps, abi::OUTBOX_ADDR, s.outbox_slots)?);
    let movers = config.mover_cores.len().min(abi::MAX_MOVERS);
    for mover in 0..movers {
        parts.rings.push(user_ring(space, &mut parts.maps, abi::inbox_addr(mover), s.inbox_slots)?);
    }
    parts.regions.push((abi::INFO_ADDR, abi::inbox_addr(movers)));
    let stats_frame = frames::alloc_zeroed().ok_or(LoadError::Memory(MapError::OutOfFrames))?;
    parts.stats = Some(stats_frame);
    map_shared(space, &mut parts.maps, abi::STATS_ADDR, stats_frame, true)?;
    let (stack_bottom, stack_top) = stack_range(s);
    map_stack(space, stack_bottom, stack_top)?;
    parts.regions.push((stack_bottom, stack_top));
    Ok(())
}

/// Builds the address space of one server from its ELF, with its rings. A
/// load that fails half-way gives back every frame it took.
fn load(
    config: &system_config::SystemConfig,
    s: &system_config::Server,
    elf: Option<&'static [u8]>,
) -> Result<Server, LoadError> {
    let (name, core) = (s.name.as_str(), s.core);
    let elf = elf.ok_or(LoadError::MissingBinary)?;
    let plan = check_elf(elf, &SERVER_LIMITS).map_err(LoadError::Elf)?;
    let mut space = AddressSpace::new_user().map_err(LoadError::Memory)?;
    let mut parts = Parts::default();
    if let Err(e) = fill(config, s, &plan, &mut space, &mut parts) {
        parts.give_back(space);
        return Err(e);
    }
    let Parts { mut rings, stats, maps, regions } = parts;
    let stats_phys = stats.map_or(0, |f| f.start_address().as_u64());
    let outbox = rings.remove(0);
    let (stack_bottom, stack_top) = stack_range(s);
    let stall_ticks = s.stall_ms.map_or(0, |ms| u64::from(ms) * crate::arch::x86_64::tsc::ticks_per_us() * 1000);
    Ok(Server {
        name: String::from(name),
        core,
        config_index: s.index,
        badge: AtomicU64::new(s.badge()),
        generation: AtomicU32::new(0),
        service: s.service,
        mover_core: s.mover_core,
        mover: config.mover_cores.iter().position(|&c| c == s.mover_core).unwrap_or(0),
        outbox,
        inboxes: rings,
        capabilities: Vec::new(),
        region_grants: Vec::new(),
        region_routes: Vec::new(),
        outbox_counters: OutboxCounters::default(),
        cr3: AtomicU64::new(space.cr3()),
        space: spin::Mutex::new(Some(space)),
        shared_maps: maps,
        device_maps: Vec::new(),
        elf,
        info_phys: 0,
        restart: s.restart,
        stall_ticks,
        life: super::Life::new(),
        entry: plan.entry(),
        stack_top,
        stack_bottom,
        regions,
        state: AtomicU8::new(State::Loaded as u8),
        exit_code: AtomicI64::new(0),
        log_lines: AtomicU64::new(0),
        stats_phys,
    })
}

/// A new address space for a restart of `server`: the segments copied
/// afresh from its ELF, a zeroed stack, and the same ring, info,
/// statistics and direct-ring frames as before, its rings re-initialised
/// at the indices the movers published (`life`). Switches this core to it
/// and frees the old one. Runs on the server's own core, the server
/// stopped and every mover's acknowledgement in.
pub fn rebuild(server: &Server) -> Result<(), LoadError> {
    let plan = check_elf(server.elf, &SERVER_LIMITS).map_err(LoadError::Elf)?;
    let mut space = AddressSpace::new_user().map_err(LoadError::Memory)?;
    let built = (|| {
        map_segments(&mut space, &plan, &mut Vec::new())?;
        map_stack(&mut space, server.stack_bottom, server.stack_top)?;
        for &(addr, frame, write) in &server.shared_maps {
            space.map_user_frame(addr, frame, UserAccess { write, execute: false }).map_err(LoadError::Memory)?;
        }
        for &(addr, frame) in &server.device_maps {
            space.map_user_mmio(addr, frame).map_err(LoadError::Memory)?;
        }
        Ok(())
    })();
    if let Err(e) = built {
        // SAFETY: the new tree was never loaded into any CR3.
        unsafe { space.destroy() };
        return Err(e);
    }
    let resume = &server.life.resume;
    server.outbox.reinit(resume[0].load(Ordering::Acquire));
    for (mover, inbox) in server.inboxes.iter().enumerate() {
        inbox.reinit(resume[1 + mover].load(Ordering::Acquire));
    }
    // SAFETY: the statistics frame belongs to this server for the whole
    // run and the direct map covers it; the server is stopped.
    unsafe { core::ptr::write_bytes(phys_to_virt(server.stats_phys), 0, 4096) };
    let cr3 = space.cr3();
    // SAFETY: the new address space shares the kernel half, so the kernel
    // keeps running after the switch; the old one is freed only after it.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack)) };
    cores::this_core().cr3_writes.fetch_add(1, Ordering::Relaxed);
    server.cr3.store(cr3, Ordering::Release);
    let old = server.space.lock().replace(space);
    if let Some(old) = old {
        // SAFETY: this core just left it (the CR3 write above also flushed
        // its user mappings from the TLB); only this core ever runs this
        // server, and `cr3()` now names the new tree, so nothing loads the
        // old one again.
        unsafe { old.destroy() };
    }
    Ok(())
}

/// Writes the running incarnation's badge into the server's info page.
pub fn rewrite_info_badge(server: &Server) {
    if server.info_phys == 0 {
        return;
    }
    let info = phys_to_virt(server.info_phys) as *mut abi::ServerInfo;
    // SAFETY: the info frame belongs to this server for the whole run and
    // is mapped read-only into it; the server is stopped, so nothing reads
    // it during the write; `badge` is a plain u64 field of the page.
    unsafe { core::ptr::addr_of_mut!((*info).badge).write_volatile(server.badge()) };
}

/// Loads every server of `config`; a server that cannot be loaded is
/// reported and left out, the others still start.
pub fn load_all(config: &system_config::SystemConfig, find_binary: impl Fn(&str) -> Option<&'static [u8]>) {
    let mut servers: Vec<Server> = Vec::new();
    for s in &config.servers {
        match load(config, s, find_binary(&s.binary)) {
            Ok(server) => {
                log::info!(
                    "server `{}`: loaded `{}` for core {} (entry {:#x}, {} regions)",
                    s.name,
                    s.binary,
                    s.core,
                    server.entry,
                    server.regions.len()
                );
                servers.push(server);
            }
            Err(e) => log::error!("server `{}`: not started: {e}", s.name),
        }
    }
    // Capabilities name servers by their place in the file; resolve them to
    // the servers that actually loaded, then tell each server about itself.
    let loaded_index = |config_index: usize| servers.iter().position(|o| o.config_index == config_index);
    let resolved: Vec<Vec<Option<usize>>> = servers
        .iter()
        .map(|server| config.servers[server.config_index].endpoints.iter().map(|e| loaded_index(e.server)).collect())
        .collect();
    let direct_rings = map_direct_rings(config, &mut servers);
    let regions = map_regions(config, &mut servers);
    let grants: Vec<Vec<mover_logic::RegionGrant>> = servers.iter().map(|s| s.region_grants.clone()).collect();
    let tables: Vec<&[mover_logic::RegionGrant]> = grants.iter().map(Vec::as_slice).collect();
    for server in servers.iter_mut().filter(|s| !s.region_grants.is_empty()) {
        server.region_routes = mover_logic::region_routes(&server.region_grants, &tables);
    }
    let devices = map_devices(config, &mut servers);
    for ((((server, capabilities), direct_rings), regions), devices) in
        servers.iter_mut().zip(resolved).zip(direct_rings).zip(regions).zip(devices)
    {
        server.capabilities = capabilities;
        if let Err(e) = write_info_page(config, server, &direct_rings, &regions, &devices) {
            log::error!("server `{}`: info page: {e}", server.name);
        }
    }
    super::install(servers);
}

/// The `[[direct_ring]]` rings, kept for the whole run. The kernel made
/// and mapped them and never reads them: no mover scans them.
static DIRECT_RINGS: spin::Once<Vec<SharedRing>> = spin::Once::new();

/// Allocates each `[[direct_ring]]` once and maps it into both of its
/// servers (read/write, never executable): into a server's `i`-th direct
/// ring at `abi::direct_ring_addr(i)`, in file order. Returns each loaded
/// server's info-page entries (entry `i` describes `direct_ring_addr(i)`),
/// in the order of `servers`. A ring one of whose servers did not load, or
/// that cannot be made, is reported and left out of both info pages.
///
/// The kernel has no trust issue here: it only allocates, maps and lists.
/// The two servers must each treat the other as hostile (`docs/servers.md`).
fn map_direct_rings(config: &system_config::SystemConfig, servers: &mut [Server]) -> Vec<Vec<abi::DirectRingInfo>> {
    let mut entries: Vec<Vec<abi::DirectRingInfo>> = servers.iter().map(|_| Vec::new()).collect();
    let mut rings = Vec::new();
    for ring in &config.direct_rings {
        let name_of = |index: usize| config.servers.get(index).map_or("?", |s| s.name.as_str());
        let (producer_name, consumer_name) = (name_of(ring.producer), name_of(ring.consumer));
        let loaded = |index: usize| servers.iter().position(|s| s.config_index == index);
        let (Some(producer), Some(consumer)) = (loaded(ring.producer), loaded(ring.consumer)) else {
            log::error!("direct ring `{}`: not made: `{producer_name}` or `{consumer_name}` did not load", ring.name);
            continue;
        };
        // The config allows at most MAX_DIRECT_RINGS per server; checked again
        // because the addresses depend on it.
        let (producer_slot, consumer_slot) = (entries[producer].len(), entries[consumer].len());
        if producer_slot >= abi::MAX_DIRECT_RINGS || consumer_slot >= abi::MAX_DIRECT_RINGS {
            log::error!("direct ring `{}`: not made: more than {} for one server", ring.name, abi::MAX_DIRECT_RINGS);
            continue;
        }
        let producer_addr = abi::direct_ring_addr(producer_slot);
        let consumer_addr = abi::direct_ring_addr(consumer_slot);
        let shared = match SharedRing::new_for_user(ring.slots as usize) {
            Ok(shared) => shared,
            Err(e) => {
                log::error!("direct ring `{}`: not made: {e}", ring.name);
                continue;
            }
        };
        // The same frames in both, recorded so that a restart of either
        // maps them again.
        let pages = shared.frames().count() as u64;
        let mut mapped = Ok(());
        'map: for (server, addr) in [(producer, producer_addr), (consumer, consumer_addr)] {
            let target = &mut servers[server];
            let mut space = target.space.lock();
            let Some(space) = space.as_mut() else { continue };
            for (page, frame) in shared.frames().enumerate() {
                mapped = map_shared(space, &mut target.shared_maps, addr + page as u64 * 4096, frame, true);
                if mapped.is_err() {
                    break 'map;
                }
            }
        }
        // Kept even on failure: its frames may be mapped in the producer.
        rings.push(shared);
        if let Err(e) = mapped {
            log::error!("direct ring `{}`: not made: mapping it: {e}", ring.name);
            continue;
        }
        for (server, addr, end) in
            [(producer, producer_addr, abi::DIRECT_RING_PRODUCER), (consumer, consumer_addr, abi::DIRECT_RING_CONSUMER)]
        {
            let mut entry = abi::DirectRingInfo { name: [0; abi::NAME_BYTES], slots: ring.slots, end };
            copy_name(&mut entry.name, &ring.name);
            entries[server].push(entry);
            servers[server].regions.push((addr, addr + pages * 4096));
        }
        log::info!(
            "direct ring `{}`: `{producer_name}` -> `{consumer_name}`, {} slots, no mover",
            ring.name,
            ring.slots
        );
    }
    DIRECT_RINGS.call_once(|| rings);
    entries
}

/// Allocates the `[[region]]` regions (`crate::regions`) and maps each
/// into every server that holds it, never executable, with the access the
/// file grants: into a server's `i`-th region (file order among the ones
/// it holds) at `abi::region::addr(i)`, recorded in `shared_maps` so that a
/// restart maps the same frames again. Sets each server's `region_grants`
/// (what the mover checks descriptors against) and returns its info-page
/// entries, in the order of `servers`. A holder that did not load simply
/// does not get it; a mapping that fails leaves that server without the
/// region (and every later one, so indices stay in step with the file).
fn map_regions(config: &system_config::SystemConfig, servers: &mut [Server]) -> Vec<Vec<abi::region::RegionInfo>> {
    let mut entries: Vec<Vec<abi::region::RegionInfo>> = servers.iter().map(|_| Vec::new()).collect();
    if config.regions.is_empty() {
        return entries;
    }
    let memory = crate::regions::allocate_all(config);
    for (position, server) in servers.iter_mut().enumerate() {
        let held: Vec<_> = config.regions_of(server.config_index).take(abi::region::MAX_REGIONS).collect();
        for (slot, (region, access)) in held.into_iter().enumerate() {
            let Some(shared) = memory.get(region.index) else { break };
            let addr = abi::region::addr(slot);
            let write = access == system_config::Access::ReadWrite;
            let mapped = {
                let mut space = server.space.lock();
                let Some(space) = space.as_mut() else { break };
                shared.frames().enumerate().try_for_each(|(page, frame)| {
                    map_shared(space, &mut server.shared_maps, addr + page as u64 * 4096, frame, write)
                })
            };
            if let Err(e) = mapped {
                log::error!("region `{}`: not mapped into `{}`: {e}", region.name, server.name);
                break;
            }
            let mut entry = abi::region::RegionInfo {
                size: shared.size(),
                access: access.abi(),
                owner: u16::from(region.owner == server.config_index),
                ..abi::region::RegionInfo::EMPTY
            };
            copy_name(&mut entry.name, &region.name);
            entries[position].push(entry);
            server.region_grants.push(mover_logic::RegionGrant {
                region: region.index as u32,
                size: shared.size(),
                access: access.abi(),
            });
            server.regions.push((addr, addr + shared.size()));
            log::info!(
                "region `{}`: mapped into `{}` at {addr:#x}, {}{}",
                region.name,
                server.name,
                access.name(),
                if region.owner == server.config_index { " (owner)" } else { "" }
            );
        }
    }
    entries
}

/// Grants the `[[device]]` tables (`crate::devices::grant`: the function
/// on the bus, DMA memory) and maps each into its one server: every memory
/// BAR whose pages hold no other function's registers, uncached and never
/// executable, at `abi::device::bar_addr(i, bar)`, recorded in
/// `device_maps`; the DMA memory read/write at `abi::device::dma_addr(i)`,
/// recorded in `shared_maps` (a restart maps both again). Returns each
/// loaded server's info-page entries, in the order of `servers`. A server
/// that did not load gets nothing; a mapping that fails leaves it without
/// that device (and every later one, so indices stay in step).
fn map_devices(config: &system_config::SystemConfig, servers: &mut [Server]) -> Vec<Vec<abi::device::DeviceInfo>> {
    use abi::device::{self, BarInfo, DeviceInfo};
    let mut entries: Vec<Vec<DeviceInfo>> = servers.iter().map(|_| Vec::new()).collect();
    if config.devices.is_empty() {
        return entries;
    }
    crate::devices::grant::grant_all(config);
    for (position, server) in servers.iter_mut().enumerate() {
        for (slot, grant) in crate::devices::grant::of_server(server.config_index).take(device::MAX_DEVICES).enumerate()
        {
            let f = &grant.function;
            let name = config.devices.get(grant.index).map_or("?", |d| d.name.as_str());
            let mut entry = DeviceInfo {
                vendor: f.vendor,
                device: f.device,
                bus: f.address.bus,
                slot: f.address.device,
                function: f.address.function,
                extended_config: u8::from(grant.config_limit > 256),
                dma_phys: grant.dma_phys,
                dma_size: grant.dma_bytes,
                ..DeviceInfo::EMPTY
            };
            copy_name(&mut entry.name, name);
            let mapped: Result<(), LoadError> = (|| {
                let mut space = server.space.lock();
                let space = space.as_mut().ok_or(LoadError::Memory(MapError::Refused("no address space")))?;
                for (bar, decoded) in f.bars.iter().enumerate() {
                    entry.bars[bar] = match *decoded {
                        pci_logic::Bar::None => BarInfo::EMPTY,
                        pci_logic::Bar::Io { base, size } => BarInfo {
                            phys: u64::from(base),
                            size: u64::from(size),
                            kind: device::BAR_IO,
                            ..BarInfo::EMPTY
                        },
                        pci_logic::Bar::Memory { base, size, prefetchable, wide } => {
                            let (first, pages) = pci_logic::page_span(base, size);
                            let fits = pages * 4096 <= device::BAR_SPAN;
                            let private = crate::devices::grant::bar_pages_private(f, bar);
                            let mut info = BarInfo {
                                phys: base,
                                size,
                                kind: device::BAR_MEMORY_UNMAPPED,
                                flags: u16::from(prefetchable) | (u16::from(wide) << 1),
                                page_offset: (base - first) as u16,
                            };
                            if fits && private {
                                let addr = device::bar_addr(slot, bar);
                                for page in 0..pages {
                                    let frame =
                                        PhysFrame::containing_address(x86_64::PhysAddr::new(first + page * 4096));
                                    space.map_user_mmio(addr + page * 4096, frame).map_err(LoadError::Memory)?;
                                    server.device_maps.push((addr + page * 4096, frame));
                                }
                                server.regions.push((addr, addr + pages * 4096));
                                info.kind = device::BAR_MEMORY;
                            } else {
                                log::warn!(
                                    "device `{name}`: BAR{bar} ({base:#x}, {size:#x} bytes) not mapped into `{}`: {}",
                                    server.name,
                                    if fits { "its pages hold another function's registers" } else { "too large" }
                                );
                            }
                            info
                        }
                    };
                }
                let dma = device::dma_addr(slot);
                for page in 0..grant.dma_bytes / 4096 {
                    let frame = PhysFrame::containing_address(x86_64::PhysAddr::new(grant.dma_phys + page * 4096));
                    map_shared(space, &mut server.shared_maps, dma + page * 4096, frame, true)?;
                }
                if grant.dma_bytes > 0 {
                    server.regions.push((dma, dma + grant.dma_bytes));
                }
                Ok(())
            })();
            if let Err(e) = mapped {
                log::error!("device `{name}`: not mapped into `{}`: {e}", server.name);
                break;
            }
            log::info!("device `{name}`: mapped into `{}` as its device {slot}", server.name);
            entries[position].push(entry);
        }
    }
    entries
}

fn copy_name(dst: &mut [u8; abi::NAME_BYTES], name: &str) {
    let n = name.len().min(abi::NAME_BYTES);
    dst[..n].copy_from_slice(&name.as_bytes()[..n]);
}

/// Maps the read-only page that tells a server its badge, core, rings and
/// endpoints (`abi::ServerInfo` at `abi::INFO_ADDR`).
fn write_info_page(
    config: &system_config::SystemConfig,
    server: &mut Server,
    direct_rings: &[abi::DirectRingInfo],
    regions: &[abi::region::RegionInfo],
    devices: &[abi::device::DeviceInfo],
) -> Result<(), LoadError> {
    let s = &config.servers[server.config_index];
    let mut info = abi::ServerInfo {
        magic: abi::INFO_MAGIC,
        badge: server.badge(),
        core: server.core as u32,
        mover_count: server.inboxes.len() as u32,
        outbox_slots: s.outbox_slots,
        inbox_slots: s.inbox_slots,
        endpoint_count: s.endpoints.len().min(abi::MAX_ENDPOINTS) as u32,
        _reserved: 0,
        endpoint_badges: [0; abi::MAX_ENDPOINTS],
        name: [0; abi::NAME_BYTES],
        endpoint_names: [[0; abi::NAME_BYTES]; abi::MAX_ENDPOINTS],
        args: [0; abi::ARGS_BYTES],
        spin_polls_before_pause: 0,
        pause_ticks_before_sleep: 0,
        sleep: abi::SLEEP_NEVER,
        mover_sleeps: 0,
        race_delay_ticks: crate::power::race_delay_ticks(),
        idle_pstate_after_ticks: 0,
        direct_ring_count: direct_rings.len().min(abi::MAX_DIRECT_RINGS) as u32,
        _reserved_direct: 0,
        direct_rings: [abi::DirectRingInfo::EMPTY; abi::MAX_DIRECT_RINGS],
        region_count: regions.len().min(abi::region::MAX_REGIONS) as u32,
        _reserved_regions: 0,
        regions: [abi::region::RegionInfo::EMPTY; abi::region::MAX_REGIONS],
        device_count: devices.len().min(abi::device::MAX_DEVICES) as u32,
        _reserved_devices: 0,
        devices: [abi::device::DeviceInfo::EMPTY; abi::device::MAX_DEVICES],
    };
    for (slot, entry) in info.direct_rings.iter_mut().zip(direct_rings) {
        *slot = *entry;
    }
    for (slot, entry) in info.regions.iter_mut().zip(regions) {
        *slot = *entry;
    }
    for (slot, entry) in info.devices.iter_mut().zip(devices) {
        *slot = *entry;
    }
    let power = crate::power::policy(server.core);
    info.spin_polls_before_pause = power.escalation.spin_polls;
    info.pause_ticks_before_sleep = power.escalation.pause_ticks;
    if power.escalation.sleep != power_policy::SleepKind::Never {
        info.sleep = abi::SLEEP_WAIT;
    }
    info.mover_sleeps = u32::from(crate::power::can_sleep(server.mover_core));
    info.idle_pstate_after_ticks = power.escalation.idle_pstate_after_ticks.unwrap_or(0);
    copy_name(&mut info.name, &server.name);
    let args = s.args.as_bytes();
    let n = args.len().min(abi::ARGS_BYTES);
    info.args[..n].copy_from_slice(&args[..n]);
    for (i, endpoint) in s.endpoints.iter().take(abi::MAX_ENDPOINTS).enumerate() {
        copy_name(&mut info.endpoint_names[i], &endpoint.name);
        if server.capabilities[i].is_some() {
            info.endpoint_badges[i] = config.servers[endpoint.server].badge();
        }
    }
    let frame = frames::alloc_zeroed().ok_or(LoadError::Memory(MapError::OutOfFrames))?;
    // SAFETY: the frame is fresh, page-sized and aligned; `ServerInfo` fits
    // in it (const-asserted in `abi`) and is plain data.
    unsafe { core::ptr::write(phys_to_virt(frame.start_address().as_u64()) as *mut abi::ServerInfo, info) };
    server.info_phys = frame.start_address().as_u64();
    let mut space = server.space.lock();
    let space = space.as_mut().ok_or(LoadError::Memory(MapError::Refused("no address space")))?;
    map_shared(space, &mut server.shared_maps, abi::INFO_ADDR, frame, false)
}
