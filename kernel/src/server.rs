//! Servers: built from the system TOML and the ELF files in the boot
//! ramdisk, each started alone on its core in ring 3; their system calls;
//! their faults, which stop only them.
//!
//! Invariants:
//! - `SERVERS` is filled by the BSP before any server runs and is read-only
//!   afterwards except for each slot's atomics.
//! - A server's core runs nothing else. When its server exits or faults the
//!   core switches back to the kernel's page tables and parks; the server's
//!   address space and state are kept (for a later restart feature).
//! - Nothing a server passes is trusted: pointers go through
//!   `mem::user`'s checked copies; lengths are capped; unknown numbers get
//!   `UNKNOWN_SYSCALL`.

use crate::arch::x86_64::gdt;
use crate::arch::x86_64::trap::{TrapFrame, exception_name};
use crate::arch::x86_64::user::{SyscallFrame, enter_user};
use crate::boot::KERNEL_HALF_START;
use crate::mem::paging::{AddressSpace, UserAccess};
use crate::mem::user::{UserMemError, copy_from_user, copy_to_user};
use crate::mem::{frames, phys_to_virt};
use x86_64::PhysAddr;
use x86_64::structures::paging::PhysFrame;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;
use core::sync::atomic::{AtomicI64, AtomicU8, AtomicU64, Ordering};
use cores::{CORES, Role};
use elf_check::{Limits, LoadPlan, check_elf};

/// Lifecycle of a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Loaded = 0,
    Running = 1,
    Exited = 2,
    Faulted = 3,
}

/// A ring shared between the kernel (direct map) and one server (mapped at
/// a fixed user address): physically contiguous frames.
pub struct SharedRing {
    phys: u64,
    len: usize,
    capacity: usize,
}

impl SharedRing {
    /// Allocates and initialises a ring of `capacity` slots and maps it at
    /// `user_addr` in `space` (user read/write, never executable).
    fn create(space: &mut AddressSpace, user_addr: u64, capacity: usize) -> Result<SharedRing, LoadError> {
        let size = ringbuf::region_size(capacity).map_err(|_| LoadError::Ring("ring size"))?;
        let pages = size.div_ceil(4096) as u64;
        if pages * 4096 > abi::RING_SPAN {
            return Err(LoadError::Ring("ring larger than its address span"));
        }
        let phys = frames::alloc_contiguous(pages).ok_or(LoadError::Ring("out of contiguous memory"))?;
        let base = core::ptr::NonNull::new(phys_to_virt(phys)).ok_or(LoadError::Ring("null direct map"))?;
        // SAFETY: the frames were just allocated for this ring and the
        // server cannot see them yet; the direct map covers them for the
        // whole run; afterwards they are only accessed through `ringbuf`
        // (the kernel's handles and the server's userlib).
        unsafe { ringbuf::RingRegion::init(base, pages as usize * 4096, capacity, 0) }
            .map_err(|_| LoadError::Ring("ring layout"))?;
        let rw = UserAccess { write: true, execute: false };
        for page in 0..pages {
            let frame = PhysFrame::containing_address(PhysAddr::new(phys + page * 4096));
            space.map_user_frame(user_addr + page * 4096, frame, rw).map_err(LoadError::Memory)?;
        }
        Ok(SharedRing { phys, len: pages as usize * 4096, capacity })
    }

    /// A ring only the kernel uses (the mover's extra rings in the scaling
    /// benchmark): same layout, no user mapping.
    pub fn kernel_only(capacity: usize) -> Option<SharedRing> {
        let size = ringbuf::region_size(capacity).ok()?;
        let pages = size.div_ceil(4096) as u64;
        let phys = frames::alloc_contiguous(pages)?;
        let base = core::ptr::NonNull::new(phys_to_virt(phys))?;
        // SAFETY: fresh frames, reached only through `ringbuf` afterwards.
        unsafe { ringbuf::RingRegion::init(base, pages as usize * 4096, capacity, 0) }.ok()?;
        Some(SharedRing { phys, len: pages as usize * 4096, capacity })
    }

    /// Kernel address of the ring's wake word (for the `wait` path).
    pub fn wake_word(&self) -> *const AtomicU64 {
        phys_to_virt(self.phys + ringbuf::layout::WAKE_STATE_OFFSET as u64) as *const AtomicU64
    }

    /// The kernel's view of the ring.
    pub fn region(&self) -> ringbuf::RingRegion<'static> {
        let base = core::ptr::NonNull::new(phys_to_virt(self.phys)).expect("direct map is not null");
        // SAFETY: `create` initialised the region; its frames stay
        // allocated and mapped in the direct map for the whole run; every
        // access (kernel or server) goes through `ringbuf`'s atomics.
        unsafe { ringbuf::RingRegion::attach(base, self.len, self.capacity) }.expect("layout checked by create")
    }
}

/// Per-outbox counters, written only by the mover that owns the outbox
/// (single writer: plain load+store, no locked instructions).
#[derive(Default)]
pub struct RingStats {
    /// Messages taken from the outbox (delivered + bounced).
    pub sent: AtomicU64,
    pub delivered: AtomicU64,
    pub bounced: AtomicU64,
    /// Passes that stopped at a full destination (backpressure retries).
    pub blocked: AtomicU64,
    /// Times the outbox's shared producer index was found out of range.
    pub outbox_corrupt: AtomicU64,
    /// Bounces that could not be returned (sender's own inbox broken).
    pub undeliverable_bounces: AtomicU64,
}

impl RingStats {
    /// `counter += by`, for the single writer.
    pub fn add(counter: &AtomicU64, by: u64) {
        counter.store(counter.load(Ordering::Relaxed) + by, Ordering::Relaxed);
    }
}

/// One loaded server.
pub struct Server {
    pub name: String,
    pub core: usize,
    /// Position in the system TOML (badge = config_index + 1).
    pub config_index: usize,
    pub badge: u64,
    /// The mover core serving its outbox.
    pub mover_core: usize,
    /// That mover's number (position in `mover_cores`).
    pub mover: usize,
    pub outbox: SharedRing,
    /// One inbox per mover, in `mover_cores` order.
    pub inboxes: Vec<SharedRing>,
    /// Endpoint i -> index in `all()` of the destination (None: not running).
    pub capabilities: Vec<Option<usize>>,
    pub stats: RingStats,
    space: AddressSpace,
    entry: u64,
    stack_top: u64,
    stack_bottom: u64,
    /// User ranges mapped for it (segments and stack), for fault reports.
    regions: Vec<(u64, u64)>,
    state: AtomicU8,
    exit_code: AtomicI64,
    pub log_lines: AtomicU64,
    /// Physical address of its statistics page (`abi::STATS_ADDR`).
    stats_phys: u64,
}

impl Server {
    /// The pause time the server reports on its statistics page: a claim,
    /// clamped to `at_most` (the time that has passed).
    pub fn reported_pause_ticks(&self, at_most: u64) -> u64 {
        // SAFETY: `stats_phys` is a frame allocated for this server in
        // `load` and never freed; the direct map covers it. The server may
        // store anything there concurrently, which an atomic load tolerates.
        let word = unsafe { &*(phys_to_virt(self.stats_phys) as *const AtomicU64) };
        word.load(Ordering::Relaxed).min(at_most)
    }

    pub fn state(&self) -> State {
        match self.state.load(Ordering::Acquire) {
            0 => State::Loaded,
            1 => State::Running,
            2 => State::Exited,
            _ => State::Faulted,
        }
    }

    pub fn exit_code(&self) -> i64 {
        self.exit_code.load(Ordering::Acquire)
    }
}

static SERVERS: spin::Once<Vec<Server>> = spin::Once::new();

/// Every loaded server (empty before `install`).
pub fn all() -> &'static [Server] {
    SERVERS.get().map(Vec::as_slice).unwrap_or(&[])
}

/// Why a server could not be loaded.
pub enum LoadError {
    MissingBinary,
    Elf(elf_check::ElfError),
    Memory(crate::mem::paging::MapError),
    Ring(&'static str),
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
fn load(config: &system_config::SystemConfig, s: &system_config::Server, elf: Option<&[u8]>) -> Result<Server, LoadError> {
    let (name, core) = (s.name.as_str(), s.core);
    let elf = elf.ok_or(LoadError::MissingBinary)?;
    let plan = check_elf(elf, &SERVER_LIMITS).map_err(LoadError::Elf)?;
    let mut space = AddressSpace::new_user().map_err(LoadError::Memory)?;
    let mut regions = Vec::new();
    map_segments(&mut space, &plan, &mut regions)?;
    let outbox = SharedRing::create(&mut space, abi::OUTBOX_ADDR, s.outbox_slots as usize)?;
    let mut inboxes = Vec::new();
    for mover in 0..config.mover_cores.len().min(abi::MAX_MOVERS) {
        inboxes.push(SharedRing::create(&mut space, abi::inbox_addr(mover), s.inbox_slots as usize)?);
    }
    regions.push((abi::INFO_ADDR, abi::inbox_addr(inboxes.len())));
    let stats_frame = frames::alloc_zeroed().ok_or(LoadError::Memory(crate::mem::paging::MapError::OutOfFrames))?;
    space
        .map_user_frame(abi::STATS_ADDR, stats_frame, UserAccess { write: true, execute: false })
        .map_err(LoadError::Memory)?;
    let stack_top = abi::stack_top_for_core(core);
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
        badge: u64::from(s.badge()),
        mover_core: s.mover_core,
        mover: config.mover_cores.iter().position(|&c| c == s.mover_core).unwrap_or(0),
        outbox,
        inboxes,
        capabilities: Vec::new(),
        stats: RingStats::default(),
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
    for (server, capabilities) in servers.iter_mut().zip(resolved) {
        server.capabilities = capabilities;
        if let Err(e) = write_info_page(config, server) {
            log::error!("server `{}`: info page: {e}", server.name);
        }
    }
    for (index, server) in servers.iter().enumerate() {
        CORES[server.core].server.store(index, Ordering::Release);
    }
    SERVERS.call_once(|| servers);
}

fn copy_name(dst: &mut [u8; abi::NAME_BYTES], name: &str) {
    let n = name.len().min(abi::NAME_BYTES);
    dst[..n].copy_from_slice(&name.as_bytes()[..n]);
}

/// Maps the read-only page that tells a server its badge, core, rings and
/// endpoints (`abi::ServerInfo` at `abi::INFO_ADDR`).
fn write_info_page(config: &system_config::SystemConfig, server: &mut Server) -> Result<(), LoadError> {
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
    };
    let power = crate::power::policy(server.core);
    info.spin_polls_before_pause = power.escalation.spin_polls;
    info.pause_ticks_before_sleep = power.escalation.pause_ticks;
    if power.escalation.sleep != cores::power::SleepKind::Never {
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
            info.endpoint_badges[i] = u64::from(config.servers[endpoint.server].badge());
        }
    }
    let frame = frames::alloc_zeroed().ok_or(LoadError::Memory(crate::mem::paging::MapError::OutOfFrames))?;
    // SAFETY: the frame is fresh, page-sized and aligned; `ServerInfo` fits
    // in it (const-asserted in `abi`) and is plain data.
    unsafe { core::ptr::write(phys_to_virt(frame.start_address().as_u64()) as *mut abi::ServerInfo, info) };
    server
        .space
        .map_user_frame(abi::INFO_ADDR, frame, UserAccess { write: false, execute: false })
        .map_err(LoadError::Memory)
}

/// Starts every loaded server on its core (posted to the core's mailbox).
pub fn start_all() {
    for server in all() {
        if !crate::smp::post_work(server.core, run_on_this_core, server.core) {
            log::error!("server `{}`: core {} is busy; not started", server.name, server.core);
        }
    }
}

/// Mailbox work on a server's core: becomes the server, never returns.
fn run_on_this_core(core_index: usize) {
    let core = &CORES[core_index];
    let Some(server) = all().get(core.server.load(Ordering::Acquire)) else { return };
    core.set_role(Role::Server);
    core.role_started_tsc.store(crate::arch::x86_64::tsc::now(), Ordering::Relaxed);
    server.state.store(State::Running as u8, Ordering::Release);
    x86_64::instructions::interrupts::disable();
    // SAFETY: the address space was built by `load` with the kernel half
    // shared; entry and stack are mapped user pages in it; the stack top
    // is this core's own kernel stack (gdt module).
    unsafe { enter_user(server.space.cr3(), server.entry, server.stack_top, gdt::ap_stack_top(core_index)) }
}

/// The server running on the calling core. Only called from a server's
/// syscall or trap, so there is one.
fn current() -> &'static Server {
    let index = cores::this_core().server.load(Ordering::Acquire);
    &all()[index]
}

/// Leaves the server for good: kernel page tables, role `Parked`, and the
/// idle loop with interrupts on. Runs on the core's kernel stack.
fn park(server: &Server, state: State) -> ! {
    server.state.store(state as u8, Ordering::Release);
    crate::smp::wake(0); // the supervisor sleeps until a server stops
    crate::power::wake_all_movers(); // and so may a mover that supervises
    crate::power::idle_pstate(server.core, false); // a parked core keeps no lowered request
    let core = cores::this_core();
    let kernel_cr3 = crate::smp::kernel_cr3();
    // SAFETY: the kernel's page tables map everything kernel code uses, so
    // execution continues unchanged after the switch.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) kernel_cr3, options(nostack)) };
    core.cr3_writes.fetch_add(1, Ordering::Relaxed);
    core.set_role(Role::Parked);
    x86_64::instructions::interrupts::enable();
    cores::idle_loop(core, crate::smp::wait_for_work)
}

fn error(code: i64) -> u64 {
    (-code) as u64
}

fn mem_error(e: UserMemError) -> u64 {
    match e {
        UserMemError::OutOfRange => error(abi::err::OUT_OF_RANGE),
        UserMemError::NotMapped(_) => error(abi::err::NOT_MAPPED),
    }
}

fn sys_log(server: &Server, ptr: u64, len: u64) -> u64 {
    if len > abi::LOG_MAX as u64 {
        return error(abi::err::TOO_LONG);
    }
    let mut buf = [0u8; abi::LOG_MAX];
    let buf = &mut buf[..len as usize];
    if let Err(e) = copy_from_user(server.space.cr3(), ptr, buf) {
        return mem_error(e);
    }
    // Control characters (a newline could forge a kernel line) become '?'.
    for byte in buf.iter_mut() {
        if *byte < 0x20 || *byte == 0x7f {
            *byte = b'?';
        }
    }
    let text = core::str::from_utf8(buf).unwrap_or("<not UTF-8>");
    server.log_lines.fetch_add(1, Ordering::Relaxed);
    crate::kprintln!("[core {}] server `{}`: {}", server.core, server.name, text);
    0
}

/// Called by the syscall entry stub with the server's registers.
#[unsafe(no_mangle)]
extern "C" fn syscall_dispatch(frame: &mut SyscallFrame) {
    let core = cores::this_core();
    let server = current();
    let bench = crate::bench::ENABLED.load(Ordering::Relaxed);
    if !(bench && matches!(frame.rax, abi::nr::BENCH_MARK | abi::nr::BENCH_EXTRA_RINGS)) {
        core.syscalls.fetch_add(1, Ordering::Relaxed);
    }
    frame.rax = match frame.rax {
        abi::nr::LOG => sys_log(server, frame.rdi, frame.rsi),
        abi::nr::EXIT => {
            let code = frame.rdi as i64;
            server.exit_code.store(code, Ordering::Release);
            log::info!("server `{}` (core {}) exited with code {code}", server.name, server.core);
            park(server, State::Exited)
        }
        abi::nr::CORE_ID => server.core as u64,
        abi::nr::SERVER_NAME => {
            let name = server.name.as_bytes();
            if (frame.rsi as usize) < name.len() {
                error(abi::err::TOO_SMALL)
            } else {
                match copy_to_user(server.space.cr3(), frame.rdi, name) {
                    Ok(()) => name.len() as u64,
                    Err(e) => mem_error(e),
                }
            }
        }
        abi::nr::TSC_HZ => crate::smp::TSC_PER_US.load(Ordering::Relaxed) * 1_000_000,
        abi::nr::WAIT => {
            let mut words = [core::ptr::null::<AtomicU64>(); abi::MAX_MOVERS];
            let n = server.inboxes.len().min(abi::MAX_MOVERS);
            for (word, inbox) in words.iter_mut().zip(&server.inboxes) {
                *word = inbox.wake_word();
            }
            crate::power::wait(server.core, &words[..n])
        }
        abi::nr::WAKE_MOVER => u64::from(crate::power::wake_mover(server.mover)),
        abi::nr::IDLE_PSTATE => match frame.rdi {
            0 | 1 => u64::from(crate::power::idle_pstate(server.core, frame.rdi == 1)),
            _ => error(abi::err::OUT_OF_RANGE),
        },
        abi::nr::POWER_REPORT => {
            log::info!("power: runtime view requested by server `{}`", server.name);
            crate::power::report();
            0
        }
        abi::nr::BENCH_MARK if bench => {
            let mut name = [0u8; 32];
            let len = (frame.rsi as usize).min(name.len());
            match copy_from_user(server.space.cr3(), frame.rdi, &mut name[..len]) {
                Ok(()) => {
                    let phase = core::str::from_utf8(&name[..len]).unwrap_or("?");
                    if phase.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                        crate::bench::mark(phase, frame.rdx != 0);
                        0
                    } else {
                        error(abi::err::OUT_OF_RANGE)
                    }
                }
                Err(e) => mem_error(e),
            }
        }
        abi::nr::BENCH_EXTRA_RINGS if bench => {
            let n = (frame.rdi as usize).min(crate::mover::MAX_EXTRA_RINGS);
            crate::mover::EXTRA_RINGS.store(n, Ordering::Relaxed);
            n as u64
        }
        _ => error(abi::err::UNKNOWN_SYSCALL),
    };
}

/// Where a faulting address lies, for the report.
fn classify(server: &Server, addr: u64) -> String {
    let mut out = String::new();
    if addr >= KERNEL_HALF_START {
        out.push_str("in the kernel half");
    } else if (server.stack_bottom - 4096..server.stack_bottom).contains(&addr) {
        out.push_str("in its stack guard page (stack overflow)");
    } else if server.regions.iter().any(|&(s, e)| (s..e).contains(&addr)) {
        out.push_str("in its own memory, access not permitted");
    } else if let Some(other) =
        all().iter().find(|o| o.core != server.core && o.regions.iter().any(|&(s, e)| (s..e).contains(&addr)))
    {
        let _ = write!(out, "in the range of server `{}` (core {}), not mapped here", other.name, other.core);
    } else {
        out.push_str("not mapped");
    }
    out
}

/// An exception in ring 3: report it, stop the server, park the core.
pub fn user_fault(frame: &TrapFrame) -> ! {
    let core = cores::this_core();
    core.exceptions.fetch_add(1, Ordering::Relaxed);
    let server = current();
    let mut line = String::new();
    let _ = write!(
        line,
        "FAULT server `{}` (core {}): vector {} ({}), error {:#x}, rip {:#x}",
        server.name,
        server.core,
        frame.vector,
        exception_name(frame.vector),
        frame.error_code,
        frame.rip
    );
    if frame.vector == 14 {
        let cr2 = x86_64::registers::control::Cr2::read_raw();
        let _ = write!(line, ", cr2 {cr2:#x} {}", classify(server, cr2));
    }
    log::error!("{line}; server stopped, core parked");
    park(server, State::Faulted)
}
