//! Performance requests: lowering a core's P-state while it sleeps or
//! after a long idle period, and restoring it. Only MSRs that `resolve`
//! chose from CPUID are touched, in the order `power_policy::msr` fixes
//! (host-tested): on each core `IA32_PM_ENABLE` before any other HWP MSR.

use super::{CorePower, PstateControl, policy};
use core::sync::atomic::Ordering;
use cores::MAX_CORES;
use power_policy::msr::{CorePstate, Msr};
use power_policy::resolve::CapabilityMsr;

/// The calling core's MSRs.
struct CpuMsrs;

impl Msr for CpuMsrs {
    fn read(&mut self, msr: u32) -> u64 {
        // SAFETY: `CorePstate` reads only the request MSR of the control
        // `resolve` chose from CPUID, or the capability MSR `resolve` asked
        // for with that control; HWP MSRs only after IA32_PM_ENABLE. Reads
        // have no side effects.
        unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
    }

    fn write(&mut self, msr: u32, value: u64) {
        // SAFETY: `CorePstate` writes IA32_PM_ENABLE (bit 0, only where
        // CPUID reports HWP and `resolve` chose it) and the request MSR of
        // the chosen control, with a value in that MSR's documented format.
        unsafe { x86_64::registers::model_specific::Msr::new(msr).write(value) };
    }
}

/// Per core: whether it enabled HWP, and the request saved while its
/// P-state is lowered for idling. Only the core itself uses its entry
/// (the MSRs are its own), never from an interrupt handler, so the lock is
/// never contended.
static STATE: [spin::Mutex<CorePstate>; MAX_CORES] = [const { spin::Mutex::new(CorePstate::new()) }; MAX_CORES];

fn this_core_state() -> spin::MutexGuard<'static, CorePstate> {
    STATE[cores::this_core().index().min(MAX_CORES - 1)].lock()
}

/// Reads a capability MSR for `power_policy::resolve` on the calling core
/// (enabling HWP first when the MSR is an HWP one).
pub fn read_capability(which: CapabilityMsr) -> u64 {
    this_core_state().read_capability(&mut CpuMsrs, which)
}

/// The core's current performance request (to restore later).
pub(super) fn current_request(p: &CorePower) -> u64 {
    if p.pstate == PstateControl::None {
        return 0; // the sleep path of most cores: no lock, no MSR
    }
    this_core_state().current_request(&mut CpuMsrs, p.pstate)
}

/// Lowers (`lower`) or restores the P-state of a core that has been
/// pausing for `idle_pstate_after_us` (`Step::LowerPstate` of its
/// governor; the `idle_pstate` system call for servers). Does nothing where
/// the policy does not ask for it or the CPU has no P-state control, or if
/// the core is already in that state. Returns whether it wrote the MSR.
/// Out of line: called from the mover loop and the syscall path, on the
/// core `core_index` itself.
#[cold]
#[inline(never)]
pub fn idle_pstate(core_index: usize, lower: bool) -> bool {
    let p = policy(core_index);
    if p.escalation.idle_pstate_after_ticks.is_none() || core_index >= MAX_CORES {
        return false;
    }
    let wrote = STATE[core_index].lock().idle(&mut CpuMsrs, p.pstate, p.idle_value, lower);
    if wrote {
        cores::this_core().pstate_changes.fetch_add(1, Ordering::Relaxed);
    }
    wrote
}

/// Puts back the request a lowered idle P-state replaced on `core_index`
/// (the calling core), under `control`, the P-state control of the policy
/// that lowered it: a live change must not leave a core slow because its
/// new policy no longer lowers. Does nothing if nothing is lowered.
#[cold]
#[inline(never)]
pub fn restore_idle_pstate(core_index: usize, control: PstateControl) -> bool {
    if core_index >= MAX_CORES {
        return false;
    }
    let wrote = STATE[core_index].lock().idle(&mut CpuMsrs, control, 0, false);
    if wrote {
        cores::this_core().pstate_changes.fetch_add(1, Ordering::Relaxed);
    }
    wrote
}

/// Writes `value` as the calling core's performance request.
pub(super) fn set_pstate(p: &CorePower, value: u64) {
    if p.pstate == PstateControl::None {
        return;
    }
    if this_core_state().set_request(&mut CpuMsrs, p.pstate, value) {
        cores::this_core().pstate_changes.fetch_add(1, Ordering::Relaxed);
    }
}
