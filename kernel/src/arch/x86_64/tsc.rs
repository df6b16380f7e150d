//! Time-stamp counter calibration against the PIT (channel 2, gated
//! through port 0x61), plus what CPUID says about the TSC frequency.

use core::sync::atomic::{AtomicU64, Ordering};
use x86_64::instructions::port::Port;

/// TSC ticks per microsecond, set once by the BSP (calibration) before any
/// AP starts; a rough 1 GHz until then.
static TICKS_PER_US: AtomicU64 = AtomicU64::new(1000);

/// TSC ticks per microsecond (at least 1).
#[inline]
pub fn ticks_per_us() -> u64 {
    TICKS_PER_US.load(Ordering::Relaxed)
}

/// Records the calibrated rate (boot, BSP only).
pub fn set_hz(hz: u64) {
    TICKS_PER_US.store((hz / 1_000_000).max(1), Ordering::Relaxed);
}

const PIT_HZ: u64 = 1_193_182;

/// Reads the TSC, ordered after earlier loads (`lfence; rdtsc`).
#[inline]
pub fn now() -> u64 {
    // SAFETY: LFENCE and RDTSC have no side effects.
    unsafe {
        core::arch::x86_64::_mm_lfence();
        core::arch::x86_64::_rdtsc()
    }
}

/// Counts TSC ticks while PIT channel 2 counts down `ms` milliseconds.
fn measure_once(ms: u64) -> u64 {
    let count = (PIT_HZ * ms / 1000) as u16;
    // SAFETY: ports 0x42/0x43/0x61 are the PIT's channel 2 and its gate;
    // the sequence programs mode 0 (interrupt on terminal count) and only
    // affects the PC speaker line, which stays disabled.
    unsafe {
        let mut gate = Port::<u8>::new(0x61);
        let mut command = Port::<u8>::new(0x43);
        let mut channel2 = Port::<u8>::new(0x42);
        let g = gate.read();
        gate.write((g & !0x02) & !0x01); // gate low, speaker off
        command.write(0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
        channel2.write(count as u8);
        channel2.write((count >> 8) as u8);
        let start = now();
        gate.write((g & !0x02) | 0x01); // gate high: counting starts
        while gate.read() & 0x20 == 0 {
            core::hint::spin_loop();
        }
        now() - start
    }
}

/// How the frequency was found.
#[derive(Debug, Clone, Copy)]
pub struct Calibration {
    pub hz: u64,
    /// Lowest and highest of the PIT runs, for the spread.
    pub min_hz: u64,
    pub max_hz: u64,
    pub runs: u32,
    pub ms_per_run: u64,
    /// CPUID 0x15/0x16 or the hypervisor's leaf, if the CPU reports one.
    pub cpuid_hz: Option<(u64, &'static str)>,
}

/// Calibrates with five 10 ms PIT runs and takes the median.
pub fn calibrate() -> Calibration {
    const RUNS: usize = 5;
    const MS: u64 = 10;
    let mut samples = [0u64; RUNS];
    for sample in samples.iter_mut() {
        *sample = measure_once(MS) * 1000 / MS;
    }
    samples.sort_unstable();
    Calibration {
        hz: samples[RUNS / 2],
        min_hz: samples[0],
        max_hz: samples[RUNS - 1],
        runs: RUNS as u32,
        ms_per_run: MS,
        cpuid_hz: super::cpu::reported_tsc_hz(),
    }
}
