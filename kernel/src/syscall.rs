//! The system-call dispatcher: the registers a server passed are decoded
//! once (`abi::Syscall::decode`), user ranges become checked
//! `mem::user::UserSlice`s, and each call goes to the subsystem that owns
//! it. This is the one module that knows every call; it sits above the
//! subsystems it calls and nothing below imports it.
//!
//! The entry stub in `arch::x86_64::user` calls [`syscall_dispatch`] by its
//! symbol name, with interrupts off (SFMASK clears IF) on the core's
//! kernel stack.
//!
//! Invariants: nothing a server passes is trusted: pointers go through
//! `UserSlice` (range and length checked once, pages checked during the
//! copy); lengths are capped; unknown numbers get `UNKNOWN_SYSCALL`; a bad
//! call changes nothing but its own return value. The calls that make
//! someone else work for the server are rate-limited per server
//! (`crate::limits`): `log` and `power_report` over the limit return
//! `RATE_LIMITED` and print nothing; a `wake_mover` over the limit returns
//! 0 if the mover is awake and otherwise waits on the caller's own core
//! for a token (a dropped wake-up of a sleeping mover could leave a
//! message waiting with nothing to wake the mover again).

use crate::arch::x86_64::tsc;
use crate::arch::x86_64::user::SyscallFrame;
use crate::mem::user::{UserMemError, UserSlice};
use crate::server::{self, Server};
use abi::{Syscall, UserRange, error_return};
use core::sync::atomic::{AtomicU64, Ordering};
use rate_limit::Call;

fn mem_error(e: UserMemError) -> u64 {
    error_return(e.code())
}

fn sys_log(index: usize, server: &Server, text: UserRange) -> u64 {
    if crate::limits::take(index, Call::Log).is_err() {
        crate::limits::count_excess(index, Call::Log, false);
        return error_return(abi::err::RATE_LIMITED);
    }
    let mut buf = [0u8; abi::LOG_MAX];
    let bytes = match UserSlice::new(text, abi::LOG_MAX).and_then(|s| s.read(server.cr3(), &mut buf)) {
        Ok(bytes) => bytes,
        Err(e) => return mem_error(e),
    };
    let mut line = [0u8; abi::LOG_MAX];
    let line = &mut line[..bytes.len()];
    // Control characters (a newline could forge a kernel line) become '?'.
    for (out, &byte) in line.iter_mut().zip(bytes) {
        *out = if byte < 0x20 || byte == 0x7f { b'?' } else { byte };
    }
    let text = core::str::from_utf8(line).unwrap_or("<not UTF-8>");
    server.log_lines.fetch_add(1, Ordering::Relaxed);
    // One line, formatted before the console lock is taken: the lock is
    // held for at most one line's bytes (`serial::print_line`).
    crate::serial::print_line(format_args!("[core {}] server `{}`: {}", server.core, server.name, text));
    0
}

fn sys_power_report(index: usize, server: &Server) -> u64 {
    if crate::limits::take(index, Call::PowerReport).is_err() {
        crate::limits::count_excess(index, Call::PowerReport, false);
        return error_return(abi::err::RATE_LIMITED);
    }
    log::info!("power: runtime view requested by server `{}`", server.name);
    crate::report::power_view();
    0
}

/// `wake_mover`: every call takes a token (an honest server calls it at
/// most once per mover sleep; a server calling it in a loop is seen at
/// once). A call over the limit while the mover is awake returns 0 and is
/// counted: nothing is lost, the mover will see the message. One over the
/// limit while the mover sleeps is not refused — a server calls this after
/// it published a message and found the mover asleep, and nothing else
/// (there is no timer) might wake the mover for that message — so it waits
/// on this core (interrupts off: the caller's own time) until a token is
/// there or the mover woke by other means, and is counted as delayed. The
/// mover's wake word is only loaded unless it says SLEEPING (`wake_mover`).
fn sys_wake_mover(index: usize, mover: usize) -> u64 {
    use crate::power::sleep::{mover_asleep, wake_mover};
    let Err(mut ticks) = crate::limits::take(index, Call::WakeMover) else {
        return u64::from(wake_mover(mover));
    };
    let asleep = mover_asleep(mover);
    crate::limits::count_excess(index, Call::WakeMover, asleep);
    if !asleep {
        return 0;
    }
    loop {
        let until = tsc::now().saturating_add(ticks);
        while tsc::now() < until {
            if !mover_asleep(mover) {
                return 0;
            }
            core::hint::spin_loop();
        }
        match crate::limits::take(index, Call::WakeMover) {
            Ok(()) => return u64::from(wake_mover(mover)),
            Err(more) => ticks = more,
        }
    }
}

fn sys_server_name(server: &Server, buf: UserRange) -> u64 {
    let name = server.name.as_bytes();
    if (buf.len as usize) < name.len() {
        return error_return(abi::err::TOO_SMALL);
    }
    match UserSlice::new(buf, usize::MAX).and_then(|s| s.write(server.cr3(), name)) {
        Ok(()) => name.len() as u64,
        Err(e) => mem_error(e),
    }
}

fn sys_bench_mark(server: &Server, name: UserRange, begin: bool) -> u64 {
    let mut buf = [0u8; abi::PHASE_NAME_MAX];
    match UserSlice::new(name, abi::PHASE_NAME_MAX).and_then(|s| s.read(server.cr3(), &mut buf)) {
        Ok(bytes) => match core::str::from_utf8(bytes) {
            Ok(phase) if phase.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') => {
                crate::phase_counters::mark(phase, begin);
                0
            }
            _ => error_return(abi::err::OUT_OF_RANGE),
        },
        Err(e) => mem_error(e),
    }
}

/// `power_control`: only for a server granted it in the TOML; the command
/// goes through the console's path (`crate::power_control::apply`).
fn sys_power_control(server: &Server, text: UserRange) -> u64 {
    if !crate::power_control::granted(server.config_index) {
        log::warn!("power: refused a change from server `{}`: it holds no power_control grant", server.name);
        return error_return(abi::err::NOT_GRANTED);
    }
    let mut buf = [0u8; abi::POWER_CONTROL_MAX];
    let bytes = match UserSlice::new(text, abi::POWER_CONTROL_MAX).and_then(|s| s.read(server.cr3(), &mut buf)) {
        Ok(bytes) => bytes,
        Err(e) => return mem_error(e),
    };
    let Ok(command) = core::str::from_utf8(bytes) else { return error_return(abi::err::BAD_COMMAND) };
    match crate::power_control::apply(command, crate::power_control::Source::Server(&server.name)) {
        Some(generation) => generation,
        None => error_return(abi::err::BAD_COMMAND),
    }
}

fn sys_wait(server: &Server) -> u64 {
    let mut words = [core::ptr::null::<AtomicU64>(); abi::MAX_MOVERS];
    let n = server.inboxes.len().min(abi::MAX_MOVERS);
    for (word, inbox) in words.iter_mut().zip(&server.inboxes) {
        *word = inbox.wake_word();
    }
    crate::power::sleep::wait(server.core, &words[..n])
}

/// Called by the syscall entry stub with the server's registers.
#[unsafe(no_mangle)]
extern "C" fn syscall_dispatch(frame: &mut SyscallFrame) {
    let core = cores::this_core();
    let index = server::current_index();
    let server = &server::all()[index];
    let bench = crate::phase_counters::enabled();
    let call = Syscall::decode_with_sync(
        frame.rax,
        [frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9],
        [frame.r12, frame.r13],
    );
    if !(bench && call.is_ok_and(|c| c.is_bench_bookkeeping())) {
        core.syscalls.fetch_add(1, Ordering::Relaxed);
    }
    // A mover found this server hung: it is stopped instead of served.
    if server::life::take_stop_request(index) {
        return crate::sync_ipc::hung_in_syscall(frame, index);
    }
    let call = match call {
        Ok(call) => call,
        Err(code) => {
            frame.rax = error_return(code);
            return;
        }
    };
    frame.rax = match call {
        Syscall::Log { text } => sys_log(index, server, text),
        Syscall::Exit { code } => return crate::sync_ipc::exit(frame, index, code),
        // Both may switch this core to another server: they write the
        // registers to return with into `frame` themselves.
        Syscall::Call { endpoint, message } => {
            return crate::sync_ipc::call(frame, index, endpoint, message);
        }
        Syscall::ReplyRecv { reply, receive } => {
            return crate::sync_ipc::reply_recv(frame, index, reply, receive);
        }
        Syscall::CoreId => server.core as u64,
        Syscall::ServerName { buf } => sys_server_name(server, buf),
        Syscall::TscHz => tsc::ticks_per_us() * 1_000_000,
        Syscall::Wait => sys_wait(server),
        Syscall::WakeMover { inbox: None } => sys_wake_mover(index, server.mover),
        // Inbox i is written by mover i (`Server::inboxes`, mover order).
        Syscall::WakeMover { inbox: Some(number) } if number < server.inboxes.len() => sys_wake_mover(index, number),
        Syscall::WakeMover { .. } => error_return(abi::err::OUT_OF_RANGE),
        Syscall::IdlePstate { lower } => u64::from(crate::power::pstate::idle_pstate(server.core, lower)),
        Syscall::PowerReport => sys_power_report(index, server),
        Syscall::BenchMark { name, begin } if bench => sys_bench_mark(server, name, begin),
        Syscall::BenchExtraRings { rings } if bench => {
            let n = (rings as usize).min(crate::mover::MAX_EXTRA_RINGS);
            crate::mover::EXTRA_RINGS.store(n, Ordering::Relaxed);
            n as u64
        }
        Syscall::BenchMark { .. } | Syscall::BenchExtraRings { .. } => error_return(abi::err::UNKNOWN_SYSCALL),
        Syscall::PowerControl { text } => sys_power_control(server, text),
        Syscall::PciConfig { device, offset, write, value } => {
            match crate::devices::grant::pci_config(server.config_index, device, offset, write, value) {
                Ok(word) => u64::from(word),
                Err(code) => error_return(code),
            }
        }
    };
}
