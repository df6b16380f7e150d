//! Per-core power policy: what the system TOML asks for each core, degraded
//! to what the CPU offers (probed with CPUID only), the `wait` system call
//! that puts a server core to sleep, P-state hints while asleep, and the
//! runtime view printed at the end of a run.
//!
//! ```text
//!  server (userlib)                kernel `wait` (IF=0 since syscall entry)    mover
//!  inbox empty: spin, pause ...
//!  prepare_to_sleep() on every     [MWAIT: monitor inbox 0's wake word]
//!  inbox (wake = SLEEPING)         every wake word still SLEEPING?
//!  syscall WAIT  ────────────────►   no  -> return 0 (a mover claimed it)
//!                                    yes -> lower P-state, sti; mwait|hlt   push; fence;
//!                                  <───────── wake ─────────────────────── wake==SLEEPING?
//!                                    restore P-state, count                 swap to AWAKE:
//!  finish_sleep(), poll again  ◄── return 1                                 MWAIT: that store
//!                                                                           wakes the monitor;
//!                                                                           HLT: doorbell IPI
//! ```
//! Invariants: a policy never asks for more than the CPU has (mwait ->
//! hlt -> pause, reported at boot); the kernel sleeps only while every
//! inbox's wake word still says SLEEPING, checked with interrupts off after
//! MONITOR is armed, so a delivery between the server's announcement and
//! the sleep is never lost.

use crate::arch::x86_64::cpu::Features;
use crate::arch::x86_64::tsc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use cores::{CORES, MAX_CORES};
use cores::power::{Escalation, SleepKind};
use cores::power::resolve::{CapabilityMsr, CpuPower, IdlePstateRequest, Request, SleepRequest};
use system_config::{IdlePstate, PolicyRole, SleepMode};
use x86_64::registers::model_specific::Msr;

/// How a core may lower its performance request while asleep (chosen by
/// `power_policy::resolve`).
pub use cores::power::PstateControl;

/// One core's policy after degradation.
#[derive(Debug, Clone, Copy)]
pub struct CorePower {
    pub escalation: Escalation,
    pub pstate: PstateControl,
    /// Value to write while asleep (already encoded for `pstate`).
    idle_value: u64,
}

static POLICIES: spin::Once<Vec<CorePower>> = spin::Once::new();

/// Cores whose MWAIT turned out not to sleep (it returned at once, over and
/// over, with nothing written to the monitored line and no interrupt): they
/// use HLT and doorbells from then on. QEMU's TCG does this with more than
/// one vCPU; the boot-time CPUID probe cannot see it.
static MWAIT_BROKEN: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];
/// Consecutive MWAIT returns with no reason, per core.
static SPURIOUS_STREAK: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
const SPURIOUS_LIMIT: u64 = 1000;
static TOTAL_TSC_START: AtomicU64 = AtomicU64::new(0);

/// Test knob (boot argument `power.race_delay_us`; 0 = off): TSC ticks the
/// kernel waits inside each window of the way to sleep — before the
/// mover's announcements, between the announcements and the last check,
/// and between the last check and `sti; hlt|mwait` — and servers wait
/// before and after their announcements. It only widens the windows a
/// message can land in; the order of every step is unchanged. The
/// lost-wake-up race test (`PWR-race`) uses it to hit each window often.
static RACE_DELAY_TICKS: AtomicU64 = AtomicU64::new(0);

/// Sets the race-test delay (boot, before servers load).
pub fn set_race_delay_us(us: u64) {
    let ticks = us * crate::arch::x86_64::tsc::ticks_per_us();
    RACE_DELAY_TICKS.store(ticks, Ordering::Relaxed);
    if ticks > 0 {
        log::warn!("power: test knob power.race_delay_us={us}: every way to sleep waits {us} us in each of its windows (for the lost-wake-up race test, not for measuring)");
    }
}

/// The race-test delay in TSC ticks (0 normally).
pub fn race_delay_ticks() -> u64 {
    RACE_DELAY_TICKS.load(Ordering::Relaxed)
}

/// Waits the race-test delay, if one is set.
#[inline]
fn race_delay() {
    let ticks = race_delay_ticks();
    if ticks == 0 {
        return;
    }
    let start = tsc::now();
    while tsc::now().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

const IA32_PERF_CTL: u32 = 0x199;
const IA32_HWP_REQUEST: u32 = 0x774;
const IA32_HWP_CAPABILITIES: u32 = 0x771;
const MSR_PLATFORM_INFO: u32 = 0xCE;
const AMD_PSTATE_CURRENT_LIMIT: u32 = 0xC001_0061;
const AMD_PSTATE_CTL: u32 = 0xC001_0062;

fn read_msr(msr: u32) -> u64 {
    // SAFETY: only called for MSRs whose presence CPUID reported
    // (`choose_pstate_control`); reading them has no side effects.
    unsafe { Msr::new(msr).read() }
}

/// Resolves every core's policy from the TOML and the CPU, prints it. The
/// rules are `power_policy::resolve` (pure, host-tested); this builds its
/// inputs and reads the capability MSRs it asks for.
pub fn resolve(config: &system_config::SystemConfig, features: &Features, cores: usize, inboxes_per_server: usize) {
    let tsc_per_us = crate::arch::x86_64::tsc::ticks_per_us();
    let cpu = CpuPower {
        monitor_mwait: features.monitor_mwait,
        hwp: features.hwp,
        eist: features.eist,
        intel: features.intel,
        amd_hw_pstate: features.amd_hw_pstate,
    };
    // `power_policy::resolve` asks for an MSR only where CPUID reported the
    // control it belongs to (see `read_msr`).
    let read_capability = |msr: CapabilityMsr| {
        read_msr(match msr {
            CapabilityMsr::HwpCapabilities => IA32_HWP_CAPABILITIES,
            CapabilityMsr::PlatformInfo => MSR_PLATFORM_INFO,
            CapabilityMsr::AmdPstateCurrentLimit => AMD_PSTATE_CURRENT_LIMIT,
        })
    };
    let mut out = Vec::new();
    for core in 0..cores {
        let role = config.role_of(core);
        let role = if core == 0 && role != PolicyRole::Mover { PolicyRole::Idle } else { role };
        let p = config.power_for_core(core, role);
        let request = Request {
            spin_polls_before_pause: p.spin_polls_before_pause,
            pause_us_before_sleep: p.pause_us_before_sleep,
            sleep: match p.sleep {
                SleepMode::None => SleepRequest::None,
                SleepMode::Hlt => SleepRequest::Hlt,
                SleepMode::Mwait => SleepRequest::Mwait { hint: p.mwait_hint.mwait_eax() },
            },
            idle_pstate: match p.idle_pstate {
                IdlePstate::Lowest => IdlePstateRequest::Lowest,
                IdlePstate::Unchanged => IdlePstateRequest::Unchanged,
                IdlePstate::Ratio(r) => IdlePstateRequest::Ratio(r),
            },
            hwp_epp_idle: p.hwp_epp_idle,
            idle_pstate_after_us: p.idle_pstate_after_us,
        };
        let resolved = cores::power::resolve(&request, &cpu, tsc_per_us, inboxes_per_server, read_capability);
        if role == PolicyRole::Server {
            log::info!("power: core {core} ({}): {}", role.name(), resolved.boot_note());
        }
        out.push(CorePower { escalation: resolved.escalation, pstate: resolved.pstate, idle_value: resolved.idle_value });
    }
    TOTAL_TSC_START.store(tsc::now(), Ordering::Relaxed);
    POLICIES.call_once(|| out);
}

/// The resolved policy of `core` (a never-sleeping default before `resolve`).
pub fn policy(core: usize) -> CorePower {
    let mut p = POLICIES.get().and_then(|p| p.get(core).copied()).unwrap_or(CorePower {
        escalation: Escalation { spin_polls: u64::MAX, pause_ticks: 0, sleep: SleepKind::Never, idle_pstate_after_ticks: None },
        pstate: PstateControl::None,
        idle_value: 0,
    });
    if matches!(p.escalation.sleep, SleepKind::Mwait { .. }) && MWAIT_BROKEN[core.min(MAX_CORES - 1)].load(Ordering::Acquire) {
        p.escalation.sleep = SleepKind::Hlt;
    }
    p
}

/// Whether servers on `core` can sleep (the mover then checks their wake words).
pub fn can_sleep(core: usize) -> bool {
    policy(core).escalation.sleep != SleepKind::Never
}

/// Whether a sleeping server on `core` needs a doorbell IPI (HLT), or
/// wakes from the mover's store to its monitored wake word (MWAIT). Read
/// by the mover at every wake-up (a core can fall back from MWAIT to HLT).
pub fn needs_doorbell(core: usize) -> bool {
    policy(core).escalation.sleep == SleepKind::Hlt
}

/// The core's current performance request (to restore later).
fn current_request(p: &CorePower) -> u64 {
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

fn set_pstate(p: &CorePower, value: u64) {
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

/// True if every wake word still says SLEEPING (no mover claimed a wake-up).
fn all_sleeping(wake_words: &[*const AtomicU64]) -> bool {
    wake_words.iter().all(|&word| {
        // SAFETY: each pointer is the wake word of a ring the kernel owns and
        // keeps mapped in the direct map for the whole run (`SharedRing`);
        // the server may write any value into it, which an atomic load
        // tolerates.
        let word = unsafe { &*word };
        word.load(Ordering::SeqCst) == ringbuf::layout::WAKE_STATE_SLEEPING
    })
}

/// Sleeps this core (interrupts off on entry, off again on return) until
/// the line of `monitor` is written (MWAIT) or an interrupt arrives, if
/// `still_sleeping()` holds once MONITOR is armed. Lowers the P-state while
/// asleep, counts the sleep, and notices an MWAIT that does not sleep.
/// Returns whether the core slept.
fn sleep_this_core(core_index: usize, monitor: *const AtomicU64, still_sleeping: impl Fn() -> bool) -> bool {
    let p = policy(core_index);
    if p.escalation.sleep == SleepKind::Never {
        return false;
    }
    if let SleepKind::Mwait { .. } = p.escalation.sleep {
        // SAFETY: MONITOR only arms address-range monitoring of the line
        // holding `monitor` (a mapped kernel address, see the callers);
        // CPUID reported MONITOR/MWAIT (`resolve`).
        unsafe { core::arch::asm!("monitor", in("rax") monitor, in("ecx") 0, in("edx") 0, options(nostack)) };
    }
    let core = &CORES[core_index];
    race_delay();
    if !still_sleeping() {
        core.sleeps_called_off.fetch_add(1, Ordering::Relaxed);
        return false;
    }
    if race_delay_ticks() != 0 {
        race_delay();
        // Diagnostic only (the sleep below goes ahead either way): a
        // wake-up claimed now must end the sleep at once.
        if !still_sleeping() {
            core.woken_before_halt.fetch_add(1, Ordering::Relaxed);
        }
    }
    let saved = current_request(&p);
    set_pstate(&p, p.idle_value);
    let start = tsc::now();
    match p.escalation.sleep {
        // SAFETY: `sti; mwait` sleeps until the monitored line is written or
        // an interrupt arrives (the `sti` shadow lets a pending doorbell
        // break the MWAIT); interrupts go off again before returning.
        SleepKind::Mwait { hint } => unsafe {
            core::arch::asm!("sti", "mwait", "cli", in("eax") hint, in("ecx") 0, options(nostack))
        },
        // SAFETY: `sti; hlt` is atomic with respect to interrupts, so a
        // doorbell sent after the wake-word check wakes the core.
        _ => unsafe { core::arch::asm!("sti", "hlt", "cli", options(nostack)) },
    }
    let slept = tsc::now().wrapping_sub(start);
    set_pstate(&p, saved);
    if let SleepKind::Mwait { .. } = p.escalation.sleep {
        let streak = &SPURIOUS_STREAK[core_index];
        if still_sleeping() {
            if streak.fetch_add(1, Ordering::Relaxed) + 1 >= SPURIOUS_LIMIT {
                // The doorbell flag is set before later sleeps use HLT, and
                // every waker reads it on every wake-up it delivers.
                MWAIT_BROKEN[core_index].store(true, Ordering::Release);
                log::warn!(
                    "power: core {core_index}: MWAIT returned at once {SPURIOUS_LIMIT} times in a row (no store to the monitored line, no interrupt): using hlt + doorbell from now on"
                );
            }
        } else {
            streak.store(0, Ordering::Relaxed);
        }
    }
    core.sleep_ticks.fetch_add(slept, Ordering::Relaxed);
    core.sleeps.fetch_add(1, Ordering::Relaxed);
    true
}

/// The `wait` system call for the server on this core. `wake_words` are
/// the kernel addresses of its inboxes' wake words. Runs with interrupts
/// off (SFMASK cleared IF at syscall entry). Returns 1 if the core slept.
/// MWAIT monitors inbox 0's wake word (`resolve` degrades servers with
/// several inboxes to HLT).
pub fn wait(core_index: usize, wake_words: &[*const AtomicU64]) -> u64 {
    let Some(&first) = wake_words.first() else { return 0 };
    u64::from(sleep_this_core(core_index, first, || all_sleeping(wake_words)))
}

/// A mover's own wake word, in kernel memory on a line of its own:
/// SLEEPING while the mover sleeps (or is about to), AWAKE otherwise.
#[repr(align(128))]
struct MoverWake(AtomicU64);

static MOVER_WAKE: [MoverWake; abi::MAX_MOVERS] =
    [const { MoverWake(AtomicU64::new(ringbuf::layout::WAKE_STATE_AWAKE)) }; abi::MAX_MOVERS];
/// The core each mover runs on (for its doorbell), by mover number.
static MOVER_CORE: [AtomicU64; abi::MAX_MOVERS] = [const { AtomicU64::new(u64::MAX) }; abi::MAX_MOVERS];
/// Wake-ups servers delivered to each mover (`wake_mover` calls that
/// found it asleep).
static MOVER_WAKEUPS: [AtomicU64; abi::MAX_MOVERS] = [const { AtomicU64::new(0) }; abi::MAX_MOVERS];

/// Mover `number` sleeps; called by that mover after every outbox it owns
/// announced sleep (`Consumer::prepare_to_sleep_untrusted`) and was still
/// empty. `announce` runs after the mover's own wake word says SLEEPING and
/// must announce on every outbox; it returns false if one had messages
/// (then nothing sleeps).
///
/// ```text
///  mover                                   server (userlib, after publishing)
///  MOVER_WAKE = SLEEPING (SeqCst)
///  every outbox: wake = SLEEPING, fence,   store producer index; fence;
///    still empty?  no -> stay awake        outbox wake == SLEEPING? claim it
///  cli; [monitor MOVER_WAKE]               syscall WAKE_MOVER:
///  MOVER_WAKE still SLEEPING?                swap MOVER_WAKE -> AWAKE; was
///    yes: sti; mwait|hlt  <─── store / doorbell IPI ── SLEEPING: HLT -> IPI
/// ```
/// No lost wake-up: the outbox announcement and the server's publish are
/// the ring's fenced protocol; MOVER_WAKE is set before the outbox
/// announcements (x86 keeps stores in order), so a server that saw an
/// announcement finds MOVER_WAKE = SLEEPING and its swap either comes
/// before the final check (no sleep) or after it (store to the monitored
/// line, or IPI into `sti; hlt`).
pub fn mover_sleep(number: usize, core_index: usize, announce: impl FnOnce() -> bool) -> bool {
    let Some(wake) = MOVER_WAKE.get(number) else { return false };
    MOVER_CORE[number].store(core_index as u64, Ordering::Relaxed);
    race_delay();
    wake.0.store(ringbuf::layout::WAKE_STATE_SLEEPING, Ordering::SeqCst);
    if !announce() {
        wake.0.store(ringbuf::layout::WAKE_STATE_AWAKE, Ordering::Relaxed);
        return false;
    }
    let interrupts_were_on = x86_64::instructions::interrupts::are_enabled();
    x86_64::instructions::interrupts::disable();
    let slept = sleep_this_core(core_index, &wake.0, || wake.0.load(Ordering::SeqCst) == ringbuf::layout::WAKE_STATE_SLEEPING);
    wake.0.store(ringbuf::layout::WAKE_STATE_AWAKE, Ordering::Relaxed);
    if interrupts_were_on {
        x86_64::instructions::interrupts::enable();
    }
    slept
}

/// The `wake_mover` system call: wakes mover `number` if it announced
/// sleep. At most one doorbell per sleep: the swap claims the wake-up, so
/// a server calling this in a loop costs the mover nothing while it is
/// awake.
pub fn wake_mover(number: usize) -> bool {
    let Some(wake) = MOVER_WAKE.get(number) else { return false };
    if wake.0.swap(ringbuf::layout::WAKE_STATE_AWAKE, Ordering::SeqCst) != ringbuf::layout::WAKE_STATE_SLEEPING {
        return false;
    }
    MOVER_WAKEUPS[number].fetch_add(1, Ordering::Relaxed);
    let core = MOVER_CORE[number].load(Ordering::Relaxed) as usize;
    if core < MAX_CORES && needs_doorbell(core) {
        crate::smp::doorbell(core);
    }
    true
}

/// Wakes every sleeping mover: a server stopped, and a mover that
/// supervises the run must notice. `Mover::sleep` checks for stopped
/// servers after announcing sleep, and this claims the wake word after the
/// server's state changed, so one of the two sees the other.
pub fn wake_all_movers() {
    for number in 0..abi::MAX_MOVERS {
        wake_mover(number);
    }
}

/// When the power policy took effect (TSC), the start of the runtime view
/// for cores that record no start of their own.
pub fn tracking_started_tsc() -> u64 {
    TOTAL_TSC_START.load(Ordering::Relaxed)
}

/// Wake-ups servers delivered to mover `number` (`wake_mover` calls that
/// found it asleep).
pub fn mover_wakeups(number: usize) -> u64 {
    MOVER_WAKEUPS.get(number).map_or(0, |w| w.load(Ordering::Relaxed))
}
