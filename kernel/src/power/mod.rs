//! Per-core power policy: what the system TOML asks for each core, degraded
//! to what the CPU offers (probed with CPUID only; the rules are
//! `power_policy::resolve`, host-tested). `sleep` puts cores to sleep (the
//! `wait` system call, the mover's own sleep, wake-ups), `pstate` writes
//! performance requests. The runtime view is `crate::report`.
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
//! (the protocol is `sleep`'s)
//!
//! Invariants: a policy never asks for more than the CPU has (mwait ->
//! hlt -> pause, reported at boot); the kernel sleeps only while every
//! inbox's wake word still says SLEEPING, checked with interrupts off after
//! MONITOR is armed, so a delivery between the server's announcement and
//! the sleep is never lost.

pub mod pstate;
pub mod sleep;

use crate::arch::x86_64::cpu::Features;
use crate::arch::x86_64::tsc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use cores::MAX_CORES;
use power_policy::resolve::{CapabilityMsr, CpuPower, IdlePstateRequest, Request, SleepRequest};
use power_policy::{Escalation, SleepKind};
use system_config::{IdlePstate, PolicyRole, PowerOverride, PowerPolicy, SleepMode};

/// How a core may lower its performance request while asleep (chosen by
/// `power_policy::resolve`).
pub use power_policy::PstateControl;

/// One core's policy after degradation.
#[derive(Debug, Clone, Copy)]
pub struct CorePower {
    pub escalation: Escalation,
    pub pstate: PstateControl,
    /// Value to write while asleep (already encoded for `pstate`).
    pub(super) idle_value: u64,
}

static POLICIES: spin::Once<Vec<CorePower>> = spin::Once::new();

/// What `resolve` needs to resolve a policy again later (a live change).
struct ResolveInputs {
    cpu: CpuPower,
    tsc_per_us: u64,
    inboxes_per_server: usize,
    read_capability: fn(CapabilityMsr) -> u64,
}
static INPUTS: spin::Once<ResolveInputs> = spin::Once::new();
/// Each core's policy as the TOML asks (and live changes since), with its role.
static REQUESTED: spin::Mutex<Vec<(PowerPolicy, PolicyRole)>> = spin::Mutex::new(Vec::new());
/// Cores whose policy was replaced while the system runs: `policy` reads
/// `LIVE` only for them (one read-shared flag for every other core).
static LIVE_SET: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];
static LIVE: [spin::RwLock<Option<CorePower>>; MAX_CORES] = [const { spin::RwLock::new(None) }; MAX_CORES];
/// How many live changes each core's policy has had (0: the boot policy).
/// A mover compares it with the generation it applied at its governor
/// checkpoints (`crate::mover`); servers get theirs in their info page.
static LIVE_GENERATION: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];

/// Cores whose MWAIT turned out not to sleep (it returned at once, over and
/// over, with nothing written to the monitored line and no interrupt): they
/// use HLT and doorbells from then on. QEMU's TCG does this with more than
/// one vCPU; the boot-time CPUID probe cannot see it.
pub(super) static MWAIT_BROKEN: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];
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
        log::warn!(
            "power: test knob power.race_delay_us={us}: every way to sleep waits {us} us in each of its windows (for the lost-wake-up race test, not for measuring)"
        );
    }
}

/// The race-test delay in TSC ticks (0 normally).
pub fn race_delay_ticks() -> u64 {
    RACE_DELAY_TICKS.load(Ordering::Relaxed)
}

/// Waits the race-test delay, if one is set.
#[inline]
pub(super) fn race_delay() {
    let ticks = race_delay_ticks();
    if ticks == 0 {
        return;
    }
    let start = tsc::now();
    while tsc::now().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}

/// Resolves every core's policy from the TOML and the CPU, prints it. The
/// rules are `power_policy::resolve` (pure, host-tested); this builds its
/// inputs and reads the capability MSRs it asks for.
/// `read_capability` reads a capability MSR (`pstate::read_capability`,
/// passed in by the caller: this file may not reach into its own
/// submodules).
pub fn resolve(
    config: &system_config::SystemConfig,
    features: &Features,
    cores: usize,
    inboxes_per_server: usize,
    read_capability: fn(CapabilityMsr) -> u64,
) {
    let tsc_per_us = crate::arch::x86_64::tsc::ticks_per_us();
    let cpu = CpuPower {
        monitor_mwait: features.monitor_mwait,
        hwp: features.hwp,
        eist: features.eist,
        intel: features.intel,
        amd_hw_pstate: features.amd_hw_pstate,
    };
    // `power_policy::resolve` asks for an MSR only where CPUID reported the
    // control it belongs to; `pstate` enables HWP before an HWP MSR.
    let mut out = Vec::new();
    let mut requested = Vec::new();
    for core in 0..cores {
        let role = config.role_of(core);
        let role = if core == 0 && role != PolicyRole::Mover { PolicyRole::Idle } else { role };
        let p = config.power_for_core(core, role);
        requested.push((p, role));
        let request = request_of(&p);
        // A mover's MWAIT watches one word (its own wake word), whatever the
        // number of inboxes servers have: only server cores can lose MWAIT
        // to several inboxes.
        let watched = if role == PolicyRole::Server { inboxes_per_server } else { 1 };
        let resolved = power_policy::resolve(&request, &cpu, tsc_per_us, watched, read_capability);
        if role == PolicyRole::Server {
            log::info!("power: core {core} ({}): {}", role.name(), resolved.boot_note());
        }
        out.push(CorePower {
            escalation: resolved.escalation,
            pstate: resolved.pstate,
            idle_value: resolved.idle_value,
        });
    }
    TOTAL_TSC_START.store(tsc::now(), Ordering::Relaxed);
    POLICIES.call_once(|| out);
    *REQUESTED.lock() = requested;
    INPUTS.call_once(|| ResolveInputs { cpu, tsc_per_us, inboxes_per_server, read_capability });
}

fn request_of(p: &PowerPolicy) -> Request {
    Request {
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
    }
}

/// The role and the policy (TOML keys, live changes included) of `core`.
pub fn requested(core: usize) -> Option<(PowerPolicy, PolicyRole)> {
    REQUESTED.lock().get(core).copied()
}

/// Replaces `core`'s policy with its current one changed by `change`,
/// resolved against the CPU as at boot (`power_policy::resolve`; capability
/// MSRs are read on the calling core). `allow` sees the merged policy and
/// the resolved one first and may refuse (nothing changes then). Returns
/// the resolved policy (for the core's governor) and its boot-style note.
/// Callers serialise changes (the live-change module holds a lock).
pub fn replace(
    core: usize,
    change: &PowerOverride,
    allow: impl FnOnce(&PowerPolicy, PolicyRole, &power_policy::Resolved) -> Result<(), alloc::string::String>,
) -> Result<(Escalation, alloc::string::String), alloc::string::String> {
    let Some(inputs) = INPUTS.get() else { return Err("no power policy was resolved at boot".into()) };
    let Some((current, role)) = requested(core) else { return Err(alloc::format!("core {core} does not exist")) };
    let merged = current.merged(change);
    let watched = if role == PolicyRole::Server { inputs.inboxes_per_server } else { 1 };
    let resolved =
        power_policy::resolve(&request_of(&merged), &inputs.cpu, inputs.tsc_per_us, watched, inputs.read_capability);
    allow(&merged, role, &resolved)?;
    let power = CorePower { escalation: resolved.escalation, pstate: resolved.pstate, idle_value: resolved.idle_value };
    *LIVE[core].write() = Some(power);
    LIVE_SET[core].store(true, Ordering::Release);
    // After the policy it announces (Release; `live_generation` acquires).
    LIVE_GENERATION[core].fetch_add(1, Ordering::Release);
    if let Some(entry) = REQUESTED.lock().get_mut(core) {
        entry.0 = merged;
    }
    Ok((resolved.escalation, alloc::format!("{}", resolved.boot_note())))
}

/// How many live changes `core`'s policy has had: a reader that sees a
/// new generation sees its policy in `policy` (Acquire pairs with the
/// Release increment in `replace`).
pub fn live_generation(core: usize) -> u64 {
    LIVE_GENERATION.get(core).map_or(0, |g| g.load(Ordering::Acquire))
}

/// The resolved policy of `core` (a never-sleeping default before `resolve`).
pub fn policy(core: usize) -> CorePower {
    if LIVE_SET.get(core).is_some_and(|set| set.load(Ordering::Acquire))
        && let Some(mut p) = *LIVE[core].read()
    {
        if matches!(p.escalation.sleep, SleepKind::Mwait { .. }) && MWAIT_BROKEN[core].load(Ordering::Acquire) {
            p.escalation.sleep = SleepKind::Hlt;
        }
        return p;
    }
    let mut p = POLICIES.get().and_then(|p| p.get(core).copied()).unwrap_or(CorePower {
        escalation: Escalation {
            spin_polls: u64::MAX,
            pause_ticks: 0,
            sleep: SleepKind::Never,
            idle_pstate_after_ticks: None,
        },
        pstate: PstateControl::None,
        idle_value: 0,
    });
    if matches!(p.escalation.sleep, SleepKind::Mwait { .. })
        && MWAIT_BROKEN[core.min(MAX_CORES - 1)].load(Ordering::Acquire)
    {
        p.escalation.sleep = SleepKind::Hlt;
    }
    p
}

/// Whether `core`'s policy as resolved at boot may sleep (what the movers
/// decided from when they were built; a live change does not alter it).
pub fn boot_can_sleep(core: usize) -> bool {
    POLICIES.get().and_then(|p| p.get(core)).is_some_and(|p| p.escalation.sleep != SleepKind::Never)
}

/// Whether servers on `core` can sleep (the mover then checks their wake words).
pub fn can_sleep(core: usize) -> bool {
    policy(core).escalation.sleep != SleepKind::Never
}

/// Cores that are in, or on their way into, `sti; hlt`: set (SeqCst)
/// before the sleeper's last check of its wake words, cleared after it
/// wakes (`sleep::sleep_this_core`).
pub(super) static HALTING: [AtomicBool; MAX_CORES] = [const { AtomicBool::new(false) }; MAX_CORES];

/// Whether waking `core` needs a doorbell IPI: its policy sleeps with HLT,
/// or it is in (or on its way into) `sti; hlt` now (`HALTING`). A core in
/// MWAIT wakes from the waker's store to its monitored wake word. Read by
/// every waker after it claimed a wake word with a SeqCst swap
/// (`Producer::consumer_needs_wakeup`, `sleep::wake_mover`), so with the
/// sleeper's SeqCst flag store then SeqCst wake-word load one of the two
/// sees the other; the emitted code is that pairing (`xchg` flag, load
/// word / `xchg` word, load flag).
///
/// The flag covers a live change from `hlt` to `mwait` while the core
/// halts (deciding from the policy alone, the waker would skip the IPI and
/// store to a line nobody monitors). The policy term stays: on 2026-11-30
/// the flag alone failed `PWR0003` and `PWR0004` (ping's 1 s stuck bound).
/// On 2026-12-01 the flag alone (instrumented, loaded host) again gave
/// stuck replies in 5 of 9 `PWR0003`/`PWR0004` runs but lost none, and
/// every snapshot taken while ping waited showed a stall with the doorbell
/// already rung or not needed (an awake mover not taking a message, a
/// rung IPI not yet taken, a core slow between its last check and its
/// halt), never a skipped one; 2 runs with the policy term had no stuck
/// reply. So no lost wake-up was shown, but neither is the flag shown
/// sufficient: see docs/power.md. An IPI to a core that is awake is
/// spurious and harmless.
pub fn needs_doorbell(core: usize) -> bool {
    HALTING.get(core).is_some_and(|h| h.load(Ordering::SeqCst)) || policy(core).escalation.sleep == SleepKind::Hlt
}

/// When each core parked (TSC; 0: not parked, or not recorded).
static PARKED_TSC: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];

/// Records that `core` parked now (its last server stopped): the runtime
/// view shows the time since as parked instead of polling. Called by
/// `server::fault::park` on the parking core.
#[allow(dead_code, reason = "the call in `server::fault::park` is the server code's to add")]
pub fn core_parked(core: usize) {
    if let Some(at) = PARKED_TSC.get(core) {
        at.store(tsc::now().max(1), Ordering::Relaxed);
    }
}

/// When `core` parked (TSC), if that was recorded.
pub fn parked_since(core: usize) -> Option<u64> {
    PARKED_TSC.get(core).map(|at| at.load(Ordering::Relaxed)).filter(|&at| at != 0)
}

/// When the power policy took effect (TSC), the start of the runtime view
/// for cores that record no start of their own.
pub fn tracking_started_tsc() -> u64 {
    TOTAL_TSC_START.load(Ordering::Relaxed)
}
