//! RAPL energy counters: found from CPUID (AMD: 8000_0007:EDX[14]; Intel:
//! family 6 models known to have them, since Intel has no CPUID bit), read
//! at the start of the run and at its end, reported as joules and joules
//! per million messages moved. Which MSRs, the unit and the wrap are
//! `power_policy::rapl::Rapl` (pure, host-tested); this module decides
//! whether to read them and does the `rdmsr`.
//!
//! Invariants: no energy MSR is touched unless `probe` found RAPL (under
//! QEMU TCG unknown MSRs read as zero instead of faulting, so trying would
//! only produce a false zero). The counter is 32 bits wide and wraps (about
//! once a minute at 100 W with the usual 61 µJ unit); the run's figure is
//! right only if less than one full counter period passed between the two
//! readings, which the report says.

use crate::arch::x86_64::cpu::Features;
use core::sync::atomic::{AtomicU64, Ordering};
use power_policy::msr::Msr;
use power_policy::rapl::Rapl;

/// The calling core's RAPL MSRs, for `power_policy::rapl::Rapl` (which
/// MSRs, the start reading, the unit and the wrap: pure code, checked on
/// the host against a fake MSR file).
struct RaplMsrs;

impl Msr for RaplMsrs {
    fn read(&mut self, msr: u32) -> u64 {
        // SAFETY: `RaplMsrs` is only handed to `Rapl` after `probe` found
        // RAPL on this CPU (`rapl_of`), and `Rapl` reads only its vendor's
        // unit and package-energy MSRs; reading them has no side effects.
        unsafe { x86_64::registers::model_specific::Msr::new(msr).read() }
    }

    fn write(&mut self, _msr: u32, _value: u64) {
        // `Rapl` only reads (host-tested in `msr_sequence`): nothing in
        // this module writes an MSR, so none is written.
    }
}

/// Intel family 6 models with package RAPL (Sandy Bridge and later client
/// and server parts, Goldmont and later Atoms).
fn intel_model_has_rapl(model: u32) -> bool {
    matches!(
        model,
        0x2A | 0x2D
            | 0x3A
            | 0x3E
            | 0x3C
            | 0x3F
            | 0x45
            | 0x46
            | 0x3D
            | 0x47
            | 0x4F
            | 0x56
            | 0x4E
            | 0x5E
            | 0x55
            | 0x8E
            | 0x9E
            | 0xA5
            | 0xA6
            | 0x66
            | 0x7D
            | 0x7E
            | 0x6A
            | 0x6C
            | 0x8C
            | 0x8D
            | 0xA7
            | 0x97
            | 0x9A
            | 0xB7
            | 0xBA
            | 0xBF
            | 0x8F
            | 0xCF
            | 0xAA
            | 0xAC
            | 0xC5
            | 0xC6
            | 0xBD
            | 0x5C
            | 0x5F
            | 0x7A
            | 0x86
            | 0x96
            | 0x9C
            | 0xBE
    )
}

fn rapl_of(f: &Features) -> Option<Rapl> {
    if f.amd_rapl {
        Some(Rapl::Amd)
    } else if f.intel && f.family == 6 && intel_model_has_rapl(f.model) {
        Some(Rapl::Intel)
    } else {
        None
    }
}

static RAPL: spin::Once<Option<Rapl>> = spin::Once::new();
/// Package energy counter at the start of the run (raw units).
static START_COUNT: AtomicU64 = AtomicU64::new(0);
static START_TSC: AtomicU64 = AtomicU64::new(0);

/// Decides from CPUID whether energy can be read, says so, and takes the
/// starting reading.
pub fn probe(f: &Features) {
    let rapl = rapl_of(f);
    match rapl {
        Some(r) => {
            START_COUNT.store(r.start(&mut RaplMsrs), Ordering::Relaxed);
            START_TSC.store(crate::arch::x86_64::tsc::now(), Ordering::Relaxed);
            log::info!(
                "energy: RAPL package counter ({r:?}) found; energy per million messages is reported at the end"
            );
        }
        None => log::info!(
            "energy: no RAPL energy counters (CPUID: family {:#x} model {:#x}, AMD RAPL bit {}): energy is not reported",
            f.family,
            f.model,
            f.amd_rapl
        ),
    }
    RAPL.call_once(|| rapl);
}

/// Energy since `probe`, with joules per million messages moved.
pub fn report() {
    let Some(Some(rapl)) = RAPL.get().copied() else {
        log::info!("power: energy (RAPL): not available on this CPU");
        return;
    };
    let microjoules = rapl.microjoules_since(&mut RaplMsrs, START_COUNT.load(Ordering::Relaxed));
    let tsc_per_us = crate::arch::x86_64::tsc::ticks_per_us().max(1);
    let seconds_tenths =
        crate::arch::x86_64::tsc::now().wrapping_sub(START_TSC.load(Ordering::Relaxed)) / tsc_per_us / 100_000;
    let messages: u64 = cores::all().iter().map(|c| c.messages.load(Ordering::Relaxed)).sum();
    let per_million = if messages > 0 { microjoules * 1_000_000 / u128::from(messages) } else { 0 };
    log::info!(
        "power: energy (RAPL package, {rapl:?}): {}.{:06} J over {}.{} s, {} messages, {}.{:06} J per million messages (right only if the 32-bit counter did not pass a full period)",
        microjoules / 1_000_000,
        microjoules % 1_000_000,
        seconds_tenths / 10,
        seconds_tenths % 10,
        messages,
        per_million / 1_000_000,
        per_million % 1_000_000
    );
}
