//! A server stops: an exception in ring 3 is reported (which server, where,
//! why) and stops that server only; an exit or a fault leaves the core
//! parked in the kernel.
//!
//! Invariants: a fault never touches another server's state; after `park`
//! the core runs on the kernel's page tables and takes no more user code.

use super::{Server, all, current};
use crate::arch::x86_64::trap::{TrapFrame, exception_name};
use alloc::string::String;
use core::fmt::Write;
use core::sync::atomic::Ordering;
use cores::Role;

/// Leaves the core's last server for good: kernel page tables, role
/// `Parked`, and the idle loop with interrupts on. Runs on the core's
/// kernel stack.
pub fn park(server: &Server) -> ! {
    crate::power::pstate::idle_pstate(server.core, false); // a parked core keeps no lowered request
    let core = cores::this_core();
    let kernel_cr3 = crate::smp::kernel_cr3();
    // SAFETY: the kernel's page tables map everything kernel code uses, so
    // execution continues unchanged after the switch.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) kernel_cr3, options(nostack)) };
    core.cr3_writes.fetch_add(1, Ordering::Relaxed);
    // The park time first: the role's Release store publishes it to
    // whoever sees `Parked` (the power view reads both).
    crate::power::core_parked(server.core);
    core.set_role(Role::Parked);
    x86_64::instructions::interrupts::enable();
    cores::idle_loop(core, crate::smp::wait_for_work)
}

/// Where a faulting address lies, for the report.
fn classify(server: &Server, addr: u64) -> String {
    let mut out = String::new();
    if addr >= crate::mem::paging::KERNEL_HALF_START {
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

/// An exception in ring 3: reports it (which server, where, why). Stopping
/// the server is the caller's next step.
pub fn report_user_fault(frame: &TrapFrame) {
    let core = cores::this_core();
    core.exceptions.fetch_add(1, Ordering::Relaxed);
    let server = current();
    // Counted by `life::stopped`; only some are printed (the counters keep
    // the exact numbers).
    let nth = server.life.faults.load(Ordering::Relaxed) + 1;
    if !super::life::worth_a_line(nth) {
        return;
    }
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
    if nth > 1 {
        let _ = write!(line, " (fault {nth} of this server)");
    }
    log::error!("{line}; server stopped");
}
