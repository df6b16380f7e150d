//! Performance requests: lowering a core's P-state while it sleeps or
//! after a long idle period, and restoring it. Only MSRs that `resolve`
//! chose from CPUID are touched.

use super::{AMD_PSTATE_CTL, CorePower, IA32_HWP_REQUEST, IA32_PERF_CTL, PstateControl, policy, read_msr};
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use cores::MAX_CORES;
use x86_64::registers::model_specific::Msr;

/// The core's current performance request (to restore later).
pub(super) fn current_request(p: &CorePower) -> u64 {
    match p.pstate {
        PstateControl::None => 0,
        PstateControl::Hwp => read_msr(IA32_HWP_REQUEST),
        PstateControl::PerfCtl => read_msr(IA32_PERF_CTL),
        PstateControl::AmdPstate => read_msr(AMD_PSTATE_CTL),
    }
}

/// Per core: the request saved by `idle_pstate(.., true)`, and whether it
/// is lowered now. Only the core itself touches its entries.
static IDLE_SAVED: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
static IDLE_LOWERED: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// Lowers (`lower`) or restores the P-state of a core that has been
/// pausing for `idle_pstate_after_us` (`Step::LowerPstate` of its
/// governor; the `idle_pstate` system call for servers). Does nothing where
/// the policy does not ask for it or the CPU has no P-state control, or if
/// the core is already in that state. Returns whether it wrote the MSR.
/// Out of line: called from the mover loop and the syscall path.
#[cold]
#[inline(never)]
pub fn idle_pstate(core_index: usize, lower: bool) -> bool {
    let p = policy(core_index);
    if p.escalation.idle_pstate_after_ticks.is_none() || core_index >= MAX_CORES {
        return false;
    }
    let lowered = &IDLE_LOWERED[core_index];
    if lowered.load(Ordering::Relaxed) == lower {
        return false;
    }
    if lower {
        IDLE_SAVED[core_index].store(current_request(&p), Ordering::Relaxed);
        set_pstate(&p, p.idle_value);
    } else {
        set_pstate(&p, IDLE_SAVED[core_index].load(Ordering::Relaxed));
    }
    lowered.store(lower, Ordering::Relaxed);
    true
}

pub(super) fn set_pstate(p: &CorePower, value: u64) {
    let msr = match p.pstate {
        PstateControl::None => return,
        PstateControl::Hwp => IA32_HWP_REQUEST,
        PstateControl::PerfCtl => IA32_PERF_CTL,
        PstateControl::AmdPstate => AMD_PSTATE_CTL,
    };
    // SAFETY: `resolve` picked this MSR only where CPUID reports it; the
    // value is a performance request in the MSR's documented format.
    unsafe { Msr::new(msr).write(value) };
    cores::this_core().pstate_changes.fetch_add(1, Ordering::Relaxed);
}
