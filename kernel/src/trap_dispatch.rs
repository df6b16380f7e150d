//! What a trap means, once the entry stub has saved the registers: an
//! interrupt is counted and acknowledged, an exception in ring 3 stops
//! that server only, an exception in the kernel ends the run.
//!
//! The stub in `arch::x86_64::trap` calls [`trap_dispatch`] by its symbol
//! name: the architecture layer knows how to enter, this layer knows what a
//! trap means, and the dependency points down (this module uses `arch`,
//! never the other way).

use crate::arch::x86_64::trap::{TEST_IPI_VECTOR, TrapFrame};
use crate::smp::{self, DOORBELL_VECTOR, WAKE_VECTOR};
use core::sync::atomic::Ordering;
use smp_boot::apic::SPURIOUS_VECTOR;

/// Vector 2 is the NMI, 18 the machine check: never a server's doing.
const NMI: u64 = 2;
const MACHINE_CHECK: u64 = 18;

/// Called by `trap_common` (arch/x86_64/trap.rs) with the saved registers.
#[unsafe(no_mangle)]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let core = cores::this_core();
    match frame.vector {
        NMI if smp::stop_requested() => smp::acknowledge_stop(),
        v @ 0..=31 if frame.cs & 3 == 3 && v != NMI && v != MACHINE_CHECK => {
            crate::server::fault::report_user_fault(frame);
            crate::sync_ipc::fault_current(v)
        }
        0..=31 => {
            core.exceptions.fetch_add(1, Ordering::Relaxed);
            crate::panic::fatal_exception(frame)
        }
        v if v == u64::from(TEST_IPI_VECTOR) => {
            core.interrupts.fetch_add(1, Ordering::Relaxed);
            core.ipis_received.fetch_add(1, Ordering::Release);
            smp::apic().end_of_interrupt();
        }
        v if v == u64::from(WAKE_VECTOR) || v == u64::from(DOORBELL_VECTOR) => {
            core.interrupts.fetch_add(1, Ordering::Relaxed);
            smp::apic().end_of_interrupt();
            // A mover found this core's server hung and woke the core to
            // stop it (`server::life::request_stop_hung`).
            if frame.cs & 3 == 3 && crate::server::life::take_stop_request(crate::server::current_index()) {
                crate::sync_ipc::hung_current();
            }
        }
        v if v == u64::from(SPURIOUS_VECTOR) => {
            // Spurious interrupts take no EOI.
            core.interrupts.fetch_add(1, Ordering::Relaxed);
        }
        0x20..=0x2F => {
            // A masked legacy PIC line (IRQ 7/15 can be spurious): ignore.
            core.interrupts.fetch_add(1, Ordering::Relaxed);
        }
        other => {
            core.interrupts.fetch_add(1, Ordering::Relaxed);
            log::warn!("core {}: unexpected interrupt vector {other:#x} at rip {:#x}", core.index(), frame.rip);
            smp::apic().end_of_interrupt();
        }
    }
}
