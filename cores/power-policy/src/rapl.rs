//! Reading the RAPL package energy counter as pure code over [`Msr`]: which
//! two MSRs each vendor has, the start reading, and the energy since, with
//! the unit and the 32-bit wrap. The kernel's `energy.rs` runs it over
//! `rdmsr`; the host checks it against a fake MSR file.
//!
//! Invariants: a reader touches only its vendor's unit and package-energy
//! MSRs, only reads them, and one wrap of the 32-bit counter between the
//! two readings is accounted for (more cannot be seen: at 100 W the
//! counter wraps in about a minute).

use crate::msr::Msr;

/// Whose RAPL MSRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rapl {
    /// `MSR_RAPL_POWER_UNIT` 0x606, `MSR_PKG_ENERGY_STATUS` 0x611.
    Intel,
    /// `RAPL_PWR_UNIT` 0xC001_0299, `PKG_ENERGY_STAT` 0xC001_029B.
    Amd,
}

impl Rapl {
    pub const fn unit_msr(self) -> u32 {
        match self {
            Rapl::Intel => 0x606,
            Rapl::Amd => 0xC001_0299,
        }
    }

    pub const fn package_msr(self) -> u32 {
        match self {
            Rapl::Intel => 0x611,
            Rapl::Amd => 0xC001_029B,
        }
    }

    /// The start reading (the counter's low 32 bits).
    pub fn start(self, msrs: &mut impl Msr) -> u64 {
        msrs.read(self.package_msr()) & 0xFFFF_FFFF
    }

    /// Microjoules since `start`: the counter difference (mod 2^32) in
    /// units of 2^-ESU joules, ESU being bits 12:8 of the unit MSR.
    pub fn microjoules_since(self, msrs: &mut impl Msr, start: u64) -> u128 {
        let esu = (msrs.read(self.unit_msr()) >> 8) & 0x1F;
        let now = msrs.read(self.package_msr()) & 0xFFFF_FFFF;
        let raw = now.wrapping_sub(start) & 0xFFFF_FFFF;
        (u128::from(raw) * 1_000_000) >> esu
    }
}
