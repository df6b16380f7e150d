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
use core::sync::atomic::{AtomicI64, AtomicU8, AtomicU64};
use elf_check::{Limits, LoadPlan, check_elf};
use mover_logic::OutboxCounters;

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

/// Builds the address space of one server from its ELF, with its rings.
fn load(
    config: &system_config::SystemConfig,
    s: &system_config::Server,
    elf: Option<&[u8]>,
) -> Result<Server, LoadError> {
    let (name, core) = (s.name.as_str(), s.core);
    let elf = elf.ok_or(LoadError::MissingBinary)?;
    let plan = check_elf(elf, &SERVER_LIMITS).map_err(LoadError::Elf)?;
    let mut space = AddressSpace::new_user().map_err(LoadError::Memory)?;
    let mut regions = Vec::new();
    map_segments(&mut space, &plan, &mut regions)?;
    let outbox =
        SharedRing::new_mapped(&mut space, abi::OUTBOX_ADDR, s.outbox_slots as usize).map_err(LoadError::Ring)?;
    let mut inboxes = Vec::new();
    for mover in 0..config.mover_cores.len().min(abi::MAX_MOVERS) {
        inboxes.push(
            SharedRing::new_mapped(&mut space, abi::inbox_addr(mover), s.inbox_slots as usize)
                .map_err(LoadError::Ring)?,
        );
    }
    regions.push((abi::INFO_ADDR, abi::inbox_addr(inboxes.len())));
    let stats_frame = frames::alloc_zeroed().ok_or(LoadError::Memory(MapError::OutOfFrames))?;
    space
        .map_user_frame(abi::STATS_ADDR, stats_frame, UserAccess { write: true, execute: false })
        .map_err(LoadError::Memory)?;
    let stack_top = abi::stack_top_for_server(s.index);
    let stack_bottom = stack_top - u64::from(s.stack_kib) * 1024;
    let rw = UserAccess { write: true, execute: false };
    let mut page = stack_bottom;
    while page < stack_top {
        space.map_user_page(page, rw).map_err(LoadError::Memory)?;
        page += 4096;
    }
    regions.push((stack_bottom, stack_top));
    Ok(Server {
        name: String::from(name),
        core,
        config_index: s.index,
        badge: s.badge(),
        service: s.service,
        mover_core: s.mover_core,
        mover: config.mover_cores.iter().position(|&c| c == s.mover_core).unwrap_or(0),
        outbox,
        inboxes,
        capabilities: Vec::new(),
        outbox_counters: OutboxCounters::default(),
        space,
        entry: plan.entry(),
        stack_top,
        stack_bottom,
        regions,
        state: AtomicU8::new(State::Loaded as u8),
        exit_code: AtomicI64::new(0),
        log_lines: AtomicU64::new(0),
        stats_phys: stats_frame.start_address().as_u64(),
    })
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
    for ((server, capabilities), direct_rings) in servers.iter_mut().zip(resolved).zip(direct_rings) {
        server.capabilities = capabilities;
        if let Err(e) = write_info_page(config, server, &direct_rings) {
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
        let shared = match SharedRing::new_mapped(&mut servers[producer].space, producer_addr, ring.slots as usize) {
            Ok(shared) => shared,
            Err(e) => {
                log::error!("direct ring `{}`: not made: {e}", ring.name);
                continue;
            }
        };
        // The same frames, at the consumer's address: found through the
        // producer's page tables, where `new_mapped` just put them.
        let pages = ringbuf::region_size(ring.slots as usize).map_or(0, |size| size.div_ceil(4096)) as u64;
        let rw = UserAccess { write: true, execute: false };
        let producer_cr3 = servers[producer].space.cr3();
        let mut mapped = Ok(());
        for page in 0..pages {
            let offset = page * 4096;
            let Some(phys) = crate::mem::paging::translate_user(producer_cr3, producer_addr + offset, true) else {
                mapped = Err(MapError::Refused("ring page not mapped in the producer"));
                break;
            };
            let frame = x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(phys));
            mapped = servers[consumer].space.map_user_frame(consumer_addr + offset, frame, rw);
            if mapped.is_err() {
                break;
            }
        }
        // Kept even on failure: its frames are mapped in the producer.
        rings.push(shared);
        if let Err(e) = mapped {
            log::error!("direct ring `{}`: not made: mapping it into `{consumer_name}`: {e}", ring.name);
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
) -> Result<(), LoadError> {
    let s = &config.servers[server.config_index];
    let mut info = abi::ServerInfo {
        magic: abi::INFO_MAGIC,
        badge: server.badge,
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
    };
    for (slot, entry) in info.direct_rings.iter_mut().zip(direct_rings) {
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
    server
        .space
        .map_user_frame(abi::INFO_ADDR, frame, UserAccess { write: false, execute: false })
        .map_err(LoadError::Memory)
}
