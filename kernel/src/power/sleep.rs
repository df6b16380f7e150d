//! Sleeping: the `wait` system call that puts a server core to sleep, the
//! mover's own sleep and the wake-ups that end both, with the P-state
//! lowered while asleep.
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
//! Invariants: the kernel sleeps only while every wake word it watches
//! still says SLEEPING, checked with interrupts off after MONITOR is armed,
//! so a delivery between the announcement and the sleep is never lost.

use super::pstate::{current_request, set_pstate};
use super::{HALTING, MWAIT_BROKEN, needs_doorbell, policy, race_delay, race_delay_ticks};
use crate::arch::x86_64::tsc;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use cores::{CORES, MAX_CORES};
use power_policy::SleepKind;

/// Consecutive MWAIT returns with no reason, per core.
static SPURIOUS_STREAK: [AtomicU64; MAX_CORES] = [const { AtomicU64::new(0) }; MAX_CORES];
const SPURIOUS_LIMIT: u64 = 1000;
/// Set by the first core that finds MWAIT not sleeping (one line, once).
static MWAIT_FALLBACK_REPORTED: AtomicBool = AtomicBool::new(false);

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
    let halts = !matches!(p.escalation.sleep, SleepKind::Mwait { .. });
    if halts {
        // Before the last check (SeqCst, as the wakers' swap then load):
        // a waker that claims a wake word after the check sees the flag and
        // rings the doorbell (`needs_doorbell`).
        HALTING[core_index].store(true, Ordering::SeqCst);
    }
    race_delay();
    if !still_sleeping() {
        HALTING[core_index].store(false, Ordering::Relaxed);
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
    if halts {
        // A doorbell after this is spurious and harmless.
        HALTING[core_index].store(false, Ordering::Relaxed);
    }
    let slept = tsc::now().wrapping_sub(start);
    set_pstate(&p, saved);
    if let SleepKind::Mwait { .. } = p.escalation.sleep {
        let streak = &SPURIOUS_STREAK[core_index];
        if still_sleeping() {
            if streak.fetch_add(1, Ordering::Relaxed) + 1 >= SPURIOUS_LIMIT {
                // MWAIT that does not sleep is the machine's, not the core's
                // (QEMU's TCG with several vCPUs): every core falls back at
                // once, and one quiet line says so. The doorbell flags are
                // set before later sleeps use HLT, and every waker reads
                // them on every wake-up it delivers (an IPI also ends an
                // MWAIT already in progress elsewhere).
                if !MWAIT_FALLBACK_REPORTED.swap(true, Ordering::AcqRel) {
                    for broken in &MWAIT_BROKEN {
                        broken.store(true, Ordering::Release);
                    }
                    // The mover may be the core that notices: never wait
                    // for the console here (`try_log` defers the line).
                    crate::serial::try_log(
                        log::Level::Info,
                        format_args!(
                            "power: MWAIT returned at once {SPURIOUS_LIMIT} times in a row on core {core_index} (no store to the monitored line, no interrupt; QEMU's TCG does this with several vCPUs): every core that asked for mwait uses hlt + doorbell from now on"
                        ),
                    );
                }
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
///  every outbox: wake = SLEEPING, fence,   store the slot (stamp last); fence;
///    next slot stamped? yes -> stay awake  outbox wake == SLEEPING? claim it
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
    let slept =
        sleep_this_core(core_index, &wake.0, || wake.0.load(Ordering::SeqCst) == ringbuf::layout::WAKE_STATE_SLEEPING);
    wake.0.store(ringbuf::layout::WAKE_STATE_AWAKE, Ordering::Relaxed);
    if interrupts_were_on {
        x86_64::instructions::interrupts::enable();
    }
    slept
}

/// Whether mover `number` announced sleep and nobody claimed the wake-up
/// yet. A load only: callers that check first (the `wake_mover` system
/// call, every attempt of a flooding server) never write the mover's line
/// while it is awake.
pub fn mover_asleep(number: usize) -> bool {
    MOVER_WAKE.get(number).is_some_and(|w| w.0.load(Ordering::SeqCst) == ringbuf::layout::WAKE_STATE_SLEEPING)
}

/// Wakes mover `number` if it announced sleep (the `wake_mover` system
/// call, after its rate limit, and `wake_all_movers`). At most one
/// doorbell per sleep: the swap claims the wake-up. An awake mover costs
/// one load: the swap, which would take the line from the mover's cache,
/// runs only when the word says SLEEPING.
pub fn wake_mover(number: usize) -> bool {
    let Some(wake) = MOVER_WAKE.get(number) else { return false };
    // The SeqCst load keeps the sender's order (publish; fence; load): a
    // mover that announced after it is seen, as the swap would see it.
    if wake.0.load(Ordering::SeqCst) != ringbuf::layout::WAKE_STATE_SLEEPING
        || wake.0.swap(ringbuf::layout::WAKE_STATE_AWAKE, Ordering::SeqCst) != ringbuf::layout::WAKE_STATE_SLEEPING
    {
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

/// Sleeps of each mover with an outbox whose head waited for room in an
/// inbox (the receiver's taking it woke the mover, `Mover::sleep`).
static MOVER_ROOM_SLEEPS: [AtomicU64; abi::MAX_MOVERS] = [const { AtomicU64::new(0) }; abi::MAX_MOVERS];

/// Mover `number` slept while a message waited for room (counted once per sleep).
pub fn count_room_sleep(number: usize) {
    if let Some(count) = MOVER_ROOM_SLEEPS.get(number) {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sleeps of mover `number` that waited for room in an inbox.
pub fn mover_room_sleeps(number: usize) -> u64 {
    MOVER_ROOM_SLEEPS.get(number).map_or(0, |c| c.load(Ordering::Relaxed))
}

/// Wake-ups servers delivered to mover `number` (`wake_mover` calls that
/// found it asleep).
pub fn mover_wakeups(number: usize) -> u64 {
    MOVER_WAKEUPS.get(number).map_or(0, |w| w.load(Ordering::Relaxed))
}
