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
use crate::mem::phys_to_virt;
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

/// One loaded server.
pub struct Server {
    pub name: String,
    pub core: usize,
    space: AddressSpace,
    entry: u64,
    stack_top: u64,
    stack_bottom: u64,
    /// User ranges mapped for it (segments and stack), for fault reports.
    regions: Vec<(u64, u64)>,
    state: AtomicU8,
    exit_code: AtomicI64,
    pub log_lines: AtomicU64,
}

impl Server {
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
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LoadError::MissingBinary => write!(f, "its binary is not in the boot ramdisk"),
            LoadError::Elf(e) => write!(f, "ELF rejected: {e}"),
            LoadError::Memory(e) => write!(f, "address space: {e}"),
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

/// Builds the address space of one server from its ELF.
fn load(name: &str, core: usize, stack_kib: u32, elf: Option<&[u8]>) -> Result<Server, LoadError> {
    let elf = elf.ok_or(LoadError::MissingBinary)?;
    let plan = check_elf(elf, &SERVER_LIMITS).map_err(LoadError::Elf)?;
    let mut space = AddressSpace::new_user().map_err(LoadError::Memory)?;
    let mut regions = Vec::new();
    map_segments(&mut space, &plan, &mut regions)?;
    let stack_top = abi::stack_top_for_core(core);
    let stack_bottom = stack_top - u64::from(stack_kib) * 1024;
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
        space,
        entry: plan.entry(),
        stack_top,
        stack_bottom,
        regions,
        state: AtomicU8::new(State::Loaded as u8),
        exit_code: AtomicI64::new(0),
        log_lines: AtomicU64::new(0),
    })
}

/// Loads every server of `config`; a server that cannot be loaded is
/// reported and left out, the others still start.
pub fn load_all(config: &system_config::SystemConfig, find_binary: impl Fn(&str) -> Option<&'static [u8]>) {
    let mut servers = Vec::new();
    for s in &config.servers {
        match load(&s.name, s.core, s.stack_kib, find_binary(&s.binary)) {
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
    for (index, server) in servers.iter().enumerate() {
        CORES[server.core].server.store(index, Ordering::Release);
    }
    SERVERS.call_once(|| servers);
}

/// Starts every loaded server on its core (posted to the core's mailbox).
pub fn start_all() {
    for server in all() {
        let core = &CORES[server.core];
        if !core.post(run_on_this_core, server.core) {
            log::error!("server `{}`: core {} is busy; not started", server.name, server.core);
        }
    }
}

/// Mailbox work on a server's core: becomes the server, never returns.
fn run_on_this_core(core_index: usize) {
    let core = &CORES[core_index];
    let Some(server) = all().get(core.server.load(Ordering::Acquire)) else { return };
    core.set_role(Role::Server);
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
    let core = cores::this_core();
    let kernel_cr3 = crate::smp::kernel_cr3();
    // SAFETY: the kernel's page tables map everything kernel code uses, so
    // execution continues unchanged after the switch.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) kernel_cr3, options(nostack)) };
    core.cr3_writes.fetch_add(1, Ordering::Relaxed);
    core.set_role(Role::Parked);
    x86_64::instructions::interrupts::enable();
    cores::idle_loop(core)
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
    core.syscalls.fetch_add(1, Ordering::Relaxed);
    let server = current();
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
