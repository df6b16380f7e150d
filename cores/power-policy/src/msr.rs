//! The order in which a core touches its P-state MSRs, as pure code over an
//! [`Msr`] trait: the kernel implements it with `rdmsr`/`wrmsr`, the host
//! tests with a fake that records every access.
//!
//! Invariants:
//! - On a core, `IA32_PM_ENABLE` (0x770) bit 0 is written before any other
//!   HWP MSR (0x771..=0x777) is read or written: the SDM makes those #GP
//!   until HWP is enabled. [`CorePstate`] writes it once, at the first HWP
//!   access, and never for the other controls.
//! - `PerfCtl` touches `IA32_PERF_CTL` (0x199) only, `AmdPstate` touches
//!   `PStateCtl` (0xC001_0062) only, `None` touches nothing; capability
//!   reads touch the one MSR asked for (and, for HWP, the enable first).
//! - Which control a core uses is `resolve`'s choice from CPUID; nothing
//!   here probes.

use crate::resolve::{CapabilityMsr, PstateControl};

/// `IA32_PERF_CTL`: the EIST target ratio (bits 15:8).
pub const IA32_PERF_CTL: u32 = 0x199;
/// `MSR_PLATFORM_INFO`: bits 47:40 are the maximum efficiency ratio.
pub const MSR_PLATFORM_INFO: u32 = 0xCE;
/// `IA32_PM_ENABLE`: bit 0 enables HWP (package scope; sticky until reset).
pub const IA32_PM_ENABLE: u32 = 0x770;
/// `IA32_HWP_CAPABILITIES`.
pub const IA32_HWP_CAPABILITIES: u32 = 0x771;
/// `IA32_HWP_REQUEST_PKG`.
pub const IA32_HWP_REQUEST_PKG: u32 = 0x772;
/// `IA32_HWP_INTERRUPT`.
pub const IA32_HWP_INTERRUPT: u32 = 0x773;
/// `IA32_HWP_REQUEST`: min, max, desired performance and EPP.
pub const IA32_HWP_REQUEST: u32 = 0x774;
/// `IA32_HWP_STATUS`, the last of the HWP range.
pub const IA32_HWP_STATUS: u32 = 0x777;
/// AMD `PStateCurLmt`.
pub const AMD_PSTATE_CURRENT_LIMIT: u32 = 0xC001_0061;
/// AMD `PStateCtl`.
pub const AMD_PSTATE_CTL: u32 = 0xC001_0062;

/// An HWP MSR that needs `IA32_PM_ENABLE` written first.
pub const fn is_hwp_msr(msr: u32) -> bool {
    IA32_HWP_CAPABILITIES <= msr && msr <= IA32_HWP_STATUS
}

/// Access to the calling core's model-specific registers.
pub trait Msr {
    /// `rdmsr`.
    fn read(&mut self, msr: u32) -> u64;
    /// `wrmsr`.
    fn write(&mut self, msr: u32, value: u64);
}

/// The MSR a P-state control writes its requests to.
pub const fn request_msr(control: PstateControl) -> Option<u32> {
    match control {
        PstateControl::None => None,
        PstateControl::Hwp => Some(IA32_HWP_REQUEST),
        PstateControl::PerfCtl => Some(IA32_PERF_CTL),
        PstateControl::AmdPstate => Some(AMD_PSTATE_CTL),
    }
}

/// The address of a capability MSR.
pub const fn capability_msr(which: CapabilityMsr) -> u32 {
    match which {
        CapabilityMsr::HwpCapabilities => IA32_HWP_CAPABILITIES,
        CapabilityMsr::PlatformInfo => MSR_PLATFORM_INFO,
        CapabilityMsr::AmdPstateCurrentLimit => AMD_PSTATE_CURRENT_LIMIT,
    }
}

/// One core's P-state MSR state: whether it has enabled HWP, and the
/// request it saved while its P-state is lowered for idling. Keep one per
/// core and use it only on that core (the MSRs are the calling core's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CorePstate {
    hwp_enabled: bool,
    lowered: bool,
    saved: u64,
}

impl CorePstate {
    /// A core that has touched nothing yet.
    pub const fn new() -> CorePstate {
        CorePstate { hwp_enabled: false, lowered: false, saved: 0 }
    }

    /// Whether this core has written `IA32_PM_ENABLE`.
    pub fn hwp_enabled(&self) -> bool {
        self.hwp_enabled
    }

    /// Whether the P-state is lowered by [`CorePstate::idle`] now.
    pub fn lowered(&self) -> bool {
        self.lowered
    }

    fn before(&mut self, msrs: &mut impl Msr, msr: u32) {
        if is_hwp_msr(msr) && !self.hwp_enabled {
            msrs.write(IA32_PM_ENABLE, 1);
            self.hwp_enabled = true;
        }
    }

    fn read(&mut self, msrs: &mut impl Msr, msr: u32) -> u64 {
        self.before(msrs, msr);
        msrs.read(msr)
    }

    fn write(&mut self, msrs: &mut impl Msr, msr: u32, value: u64) {
        self.before(msrs, msr);
        msrs.write(msr, value);
    }

    /// Reads a capability MSR for `resolve` (HWP enabled first if needed).
    pub fn read_capability(&mut self, msrs: &mut impl Msr, which: CapabilityMsr) -> u64 {
        self.read(msrs, capability_msr(which))
    }

    /// The core's current performance request under `control` (0 for none).
    pub fn current_request(&mut self, msrs: &mut impl Msr, control: PstateControl) -> u64 {
        match request_msr(control) {
            Some(msr) => self.read(msrs, msr),
            None => 0,
        }
    }

    /// Writes `value` as the core's performance request under `control`;
    /// returns whether an MSR was written.
    pub fn set_request(&mut self, msrs: &mut impl Msr, control: PstateControl, value: u64) -> bool {
        match request_msr(control) {
            Some(msr) => {
                self.write(msrs, msr, value);
                true
            }
            None => false,
        }
    }

    /// Lowers the request to `idle_value` (`lower`, saving the current one)
    /// or restores the saved one. Does nothing if the core is already in
    /// that state or `control` is `None`; returns whether it wrote.
    pub fn idle(&mut self, msrs: &mut impl Msr, control: PstateControl, idle_value: u64, lower: bool) -> bool {
        if control == PstateControl::None || self.lowered == lower {
            return false;
        }
        if lower {
            self.saved = self.current_request(msrs, control);
            self.set_request(msrs, control, idle_value);
        } else {
            let saved = self.saved;
            self.set_request(msrs, control, saved);
        }
        self.lowered = lower;
        true
    }
}
