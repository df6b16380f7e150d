//! Fatal errors on any core: a kernel panic or an unexpected exception.
//! The failing core stops every other core (NMI), prints one report and
//! ends the run with failure.

use crate::arch::x86_64::trap::{TrapFrame, exception_name};
use crate::machine;
use crate::smp;
use core::fmt::Write;
use core::sync::atomic::{AtomicBool, Ordering};

static FATAL_IN_PROGRESS: AtomicBool = AtomicBool::new(false);

/// Stops the other cores, prints `report` and exits with failure.
pub fn fatal(report: core::fmt::Arguments) -> ! {
    x86_64::instructions::interrupts::disable();
    if FATAL_IN_PROGRESS.swap(true, Ordering::SeqCst) {
        // Another core is already reporting; it will stop this one.
        machine::halt_forever();
    }
    let (stopped, asked) = smp::stop_other_cores();
    // SAFETY: every other core is stopped (or did not answer within the
    // bound and is stuck); whoever held the console lock will never release
    // it, and this is the only core still printing.
    unsafe { crate::serial::SERIAL.force_unlock() };
    let mut serial = crate::serial::SERIAL.lock();
    let _ = writeln!(serial, "\n{report}");
    let _ = writeln!(serial, "other cores stopped: {stopped}/{asked}");
    drop(serial);
    machine::exit(machine::EXIT_FAILURE)
}

/// Reports an exception the kernel did not expect.
pub fn fatal_exception(frame: &TrapFrame) -> ! {
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    fatal(format_args!(
        "EXCEPTION core {}: vector {} ({}), error {:#x}, rip {:#x}, rsp {:#x}, cr2 {:#x}",
        smp::current_core_index(),
        frame.vector,
        exception_name(frame.vector),
        frame.error_code,
        frame.rip,
        frame.rsp,
        cr2
    ))
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    fatal(format_args!("PANIC core {}: {}", smp::current_core_index(), info))
}
