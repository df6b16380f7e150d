//! The P-state MSR sequences against a fake MSR file that records every
//! access and, like the CPU, refuses an HWP MSR before `IA32_PM_ENABLE`:
//! resolution (capability reads), lowering and restoring a request, for
//! HWP, `IA32_PERF_CTL`, AMD `PStateCtl` and no control at all.

use power_policy::msr::{
    AMD_PSTATE_CTL, AMD_PSTATE_CURRENT_LIMIT, CorePstate, IA32_HWP_CAPABILITIES, IA32_HWP_REQUEST, IA32_PERF_CTL,
    IA32_PM_ENABLE, MSR_PLATFORM_INFO, Msr, is_hwp_msr,
};
use power_policy::resolve::{CpuPower, IdlePstateRequest, PstateControl, Request, SleepRequest};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read(u32),
    Write(u32, u64),
}

/// An MSR file: values by address, every access in order, and the rule
/// the SDM states for HWP (a #GP becomes a recorded violation).
#[derive(Default)]
struct FakeMsrs {
    values: HashMap<u32, u64>,
    log: Vec<Access>,
    violations: Vec<Access>,
}

impl FakeMsrs {
    fn with(values: &[(u32, u64)]) -> FakeMsrs {
        FakeMsrs { values: values.iter().copied().collect(), ..FakeMsrs::default() }
    }

    fn hwp_on(&self) -> bool {
        self.values.get(&IA32_PM_ENABLE).is_some_and(|v| v & 1 == 1)
    }

    fn check(&mut self, access: Access, msr: u32) {
        if is_hwp_msr(msr) && !self.hwp_on() {
            self.violations.push(access);
        }
        self.log.push(access);
    }

    /// Every HWP access comes after a write of PM_ENABLE with bit 0 set.
    fn assert_enable_first(&self) {
        assert!(self.violations.is_empty(), "HWP MSRs touched before IA32_PM_ENABLE: {:?}", self.violations);
        let enable = self.log.iter().position(|a| matches!(a, Access::Write(IA32_PM_ENABLE, v) if v & 1 == 1));
        for (i, access) in self.log.iter().enumerate() {
            let (Access::Read(msr) | Access::Write(msr, _)) = *access;
            if is_hwp_msr(msr) {
                assert!(enable.is_some_and(|e| e < i), "access {i} ({access:?}) before the enable: {:?}", self.log);
            }
        }
    }
}

impl Msr for FakeMsrs {
    fn read(&mut self, msr: u32) -> u64 {
        self.check(Access::Read(msr), msr);
        self.values.get(&msr).copied().unwrap_or(0)
    }

    fn write(&mut self, msr: u32, value: u64) {
        self.check(Access::Write(msr, value), msr);
        self.values.insert(msr, value);
    }
}

const REQUEST: Request = Request {
    spin_polls_before_pause: 1000,
    pause_us_before_sleep: 50,
    sleep: SleepRequest::Hlt,
    idle_pstate: IdlePstateRequest::Lowest,
    hwp_epp_idle: 0xff,
    idle_pstate_after_us: 0,
};

const HWP_CPU: CpuPower = CpuPower { monitor_mwait: true, hwp: true, eist: true, intel: true, amd_hw_pstate: false };
const EIST_CPU: CpuPower = CpuPower { hwp: false, ..HWP_CPU };
const AMD_CPU: CpuPower = CpuPower { monitor_mwait: true, hwp: false, eist: false, intel: false, amd_hw_pstate: true };

/// Resolution as the kernel does it at boot, through one core's state.
fn resolve(cpu: &CpuPower, msrs: &mut FakeMsrs, core: &mut CorePstate) -> power_policy::Resolved {
    power_policy::resolve(&REQUEST, cpu, 1000, 1, |which| core.read_capability(msrs, which))
}

#[test]
fn hwp_enable_comes_before_the_capability_read_at_boot() {
    let mut msrs = FakeMsrs::with(&[(IA32_HWP_CAPABILITIES, 0x0102_0304)]);
    let mut core = CorePstate::new();
    let resolved = resolve(&HWP_CPU, &mut msrs, &mut core);
    assert_eq!(resolved.pstate, PstateControl::Hwp);
    assert_eq!(resolved.idle_value, power_policy::resolve::hwp_request(0x01, 0xff));
    assert_eq!(msrs.log, [Access::Write(IA32_PM_ENABLE, 1), Access::Read(IA32_HWP_CAPABILITIES)]);
    msrs.assert_enable_first();
    assert!(core.hwp_enabled());
}

#[test]
fn hwp_lower_and_restore_on_a_core_that_never_resolved() {
    // An AP: the BSP resolved the policy; this core's first HWP access is
    // its own idle lowering, so it enables HWP itself first.
    let mut msrs = FakeMsrs::with(&[(IA32_HWP_REQUEST, 0x8000_ff01)]);
    let mut core = CorePstate::new();
    assert!(core.idle(&mut msrs, PstateControl::Hwp, 0xff00_0101, true));
    assert!(!core.idle(&mut msrs, PstateControl::Hwp, 0xff00_0101, true), "already lowered: nothing to do");
    assert!(core.idle(&mut msrs, PstateControl::Hwp, 0xff00_0101, false));
    assert_eq!(
        msrs.log,
        [
            Access::Write(IA32_PM_ENABLE, 1),
            Access::Read(IA32_HWP_REQUEST),
            Access::Write(IA32_HWP_REQUEST, 0xff00_0101),
            Access::Write(IA32_HWP_REQUEST, 0x8000_ff01),
        ]
    );
    msrs.assert_enable_first();
}

#[test]
fn hwp_is_enabled_once_per_core() {
    let mut msrs = FakeMsrs::with(&[(IA32_HWP_CAPABILITIES, 0x0500_0000)]);
    let mut core = CorePstate::new();
    resolve(&HWP_CPU, &mut msrs, &mut core);
    let saved = core.current_request(&mut msrs, PstateControl::Hwp);
    core.set_request(&mut msrs, PstateControl::Hwp, 7);
    core.set_request(&mut msrs, PstateControl::Hwp, saved);
    let enables = msrs.log.iter().filter(|a| matches!(a, Access::Write(IA32_PM_ENABLE, _))).count();
    assert_eq!(enables, 1);
    assert_eq!(msrs.log[0], Access::Write(IA32_PM_ENABLE, 1));
    msrs.assert_enable_first();
    // A second core keeps its own state: it enables again (on another
    // package that is needed; on the same one it is harmless).
    let mut other = CorePstate::new();
    let mut other_msrs = FakeMsrs::default();
    other.set_request(&mut other_msrs, PstateControl::Hwp, 7);
    assert_eq!(other_msrs.log, [Access::Write(IA32_PM_ENABLE, 1), Access::Write(IA32_HWP_REQUEST, 7)]);
}

#[test]
fn the_fake_catches_an_hwp_access_without_the_enable() {
    // The positive control: the same accesses without `CorePstate` fail.
    let mut msrs = FakeMsrs::default();
    msrs.read(IA32_HWP_CAPABILITIES);
    assert_eq!(msrs.violations, [Access::Read(IA32_HWP_CAPABILITIES)]);
    let caught = std::panic::catch_unwind(move || msrs.assert_enable_first());
    assert!(caught.is_err());
}

#[test]
fn perf_ctl_sequence_touches_no_hwp_msr() {
    let mut msrs = FakeMsrs::with(&[(MSR_PLATFORM_INFO, 0x0000_0c00_0000_0000), (IA32_PERF_CTL, 0x2400)]);
    let mut core = CorePstate::new();
    let resolved = resolve(&EIST_CPU, &mut msrs, &mut core);
    assert_eq!(resolved.pstate, PstateControl::PerfCtl);
    assert_eq!(resolved.idle_value, 0x0c00);
    assert!(core.idle(&mut msrs, resolved.pstate, resolved.idle_value, true));
    assert!(core.idle(&mut msrs, resolved.pstate, resolved.idle_value, false));
    assert_eq!(
        msrs.log,
        [
            Access::Read(MSR_PLATFORM_INFO),
            Access::Read(IA32_PERF_CTL),
            Access::Write(IA32_PERF_CTL, 0x0c00),
            Access::Write(IA32_PERF_CTL, 0x2400),
        ]
    );
    assert!(!core.hwp_enabled());
}

#[test]
fn amd_sequence_touches_no_hwp_msr() {
    let mut msrs = FakeMsrs::with(&[(AMD_PSTATE_CURRENT_LIMIT, 0x40), (AMD_PSTATE_CTL, 0)]);
    let mut core = CorePstate::new();
    let resolved = resolve(&AMD_CPU, &mut msrs, &mut core);
    assert_eq!(resolved.pstate, PstateControl::AmdPstate);
    assert_eq!(resolved.idle_value, 4);
    assert!(core.idle(&mut msrs, resolved.pstate, resolved.idle_value, true));
    assert!(core.lowered());
    assert!(core.idle(&mut msrs, resolved.pstate, resolved.idle_value, false));
    assert_eq!(
        msrs.log,
        [
            Access::Read(AMD_PSTATE_CURRENT_LIMIT),
            Access::Read(AMD_PSTATE_CTL),
            Access::Write(AMD_PSTATE_CTL, 4),
            Access::Write(AMD_PSTATE_CTL, 0),
        ]
    );
}

#[test]
fn no_control_touches_nothing() {
    let mut msrs = FakeMsrs::default();
    let mut core = CorePstate::new();
    let cpu = CpuPower { monitor_mwait: true, ..CpuPower::default() };
    let resolved = resolve(&cpu, &mut msrs, &mut core);
    assert_eq!(resolved.pstate, PstateControl::None);
    assert!(!core.idle(&mut msrs, PstateControl::None, 0, true));
    assert_eq!(core.current_request(&mut msrs, PstateControl::None), 0);
    assert!(!core.set_request(&mut msrs, PstateControl::None, 5));
    assert!(msrs.log.is_empty());
    // `Unchanged` reads nothing, even on an HWP CPU (so HWP stays off).
    let mut msrs = FakeMsrs::default();
    let request = Request { idle_pstate: IdlePstateRequest::Unchanged, ..REQUEST };
    let r = power_policy::resolve(&request, &HWP_CPU, 1000, 1, |w| core.read_capability(&mut msrs, w));
    assert_eq!(r.pstate, PstateControl::None);
    assert!(msrs.log.is_empty());
}

#[test]
fn the_hwp_range_is_0x771_to_0x777() {
    assert!(!is_hwp_msr(IA32_PM_ENABLE));
    assert!((0x771..=0x777).all(is_hwp_msr));
    assert!(!is_hwp_msr(0x778));
    assert!(!is_hwp_msr(IA32_PERF_CTL));
}

// ---- the sleep path, as the kernel runs it around MWAIT/HLT ----

/// `sleep_this_core`: read the current request, write the idle value,
/// (sleep), write the saved request back — for each control, on a core
/// that resolved first, so every sequence a first real boot runs is here.
fn sleep_path(cpu: &CpuPower, values: &[(u32, u64)]) -> (FakeMsrs, power_policy::Resolved) {
    let mut msrs = FakeMsrs::with(values);
    let mut core = CorePstate::new();
    let resolved = resolve(cpu, &mut msrs, &mut core);
    let saved = core.current_request(&mut msrs, resolved.pstate);
    core.set_request(&mut msrs, resolved.pstate, resolved.idle_value);
    core.set_request(&mut msrs, resolved.pstate, saved);
    (msrs, resolved)
}

#[test]
fn hwp_sleep_path_enables_once_then_reads_and_writes_the_request() {
    let (msrs, r) = sleep_path(&HWP_CPU, &[(IA32_HWP_CAPABILITIES, 0x0a0b_0c0d), (IA32_HWP_REQUEST, 0x8000_2020)]);
    msrs.assert_enable_first();
    assert_eq!(r.pstate, PstateControl::Hwp);
    assert_eq!(
        msrs.log,
        [
            Access::Write(IA32_PM_ENABLE, 1),
            Access::Read(IA32_HWP_CAPABILITIES),
            Access::Read(IA32_HWP_REQUEST),
            Access::Write(IA32_HWP_REQUEST, r.idle_value),
            Access::Write(IA32_HWP_REQUEST, 0x8000_2020),
        ]
    );
    // min = max = lowest performance (bits 31:24 of the capabilities), EPP 0xff.
    assert_eq!(r.idle_value, 0x0a | (0x0a << 8) | (0xff << 24));
}

#[test]
fn perf_ctl_sleep_path_reads_platform_info_then_only_perf_ctl() {
    let (msrs, r) = sleep_path(&EIST_CPU, &[(MSR_PLATFORM_INFO, 0x0000_0800_0000_0000), (IA32_PERF_CTL, 0x2400)]);
    msrs.assert_enable_first();
    assert_eq!(r.pstate, PstateControl::PerfCtl);
    assert_eq!(
        msrs.log,
        [
            Access::Read(MSR_PLATFORM_INFO),
            Access::Read(IA32_PERF_CTL),
            Access::Write(IA32_PERF_CTL, 0x0800),
            Access::Write(IA32_PERF_CTL, 0x2400),
        ]
    );
}

#[test]
fn amd_sleep_path_reads_the_limit_then_only_pstate_ctl() {
    let (msrs, r) = sleep_path(&AMD_CPU, &[(AMD_PSTATE_CURRENT_LIMIT, 0x40), (AMD_PSTATE_CTL, 0)]);
    msrs.assert_enable_first();
    assert_eq!(r.pstate, PstateControl::AmdPstate);
    assert_eq!(
        msrs.log,
        [
            Access::Read(AMD_PSTATE_CURRENT_LIMIT),
            Access::Read(AMD_PSTATE_CTL),
            Access::Write(AMD_PSTATE_CTL, 4),
            Access::Write(AMD_PSTATE_CTL, 0),
        ]
    );
}

// ---- RAPL: the energy counter ----

use power_policy::rapl::Rapl;

#[test]
fn rapl_reads_only_its_two_msrs_and_handles_one_wrap() {
    for rapl in [Rapl::Intel, Rapl::Amd] {
        // ESU 16: one count is 2^-16 J (15.3 uJ).
        let mut msrs = FakeMsrs::with(&[(rapl.unit_msr(), 16 << 8), (rapl.package_msr(), 0xFFFF_FF00)]);
        let start = rapl.start(&mut msrs);
        msrs.values.insert(rapl.package_msr(), 0x0001_0000_0000_FF00); // high bits ignored, wrapped once
        let uj = rapl.microjoules_since(&mut msrs, start);
        assert_eq!(uj, (u128::from(0x1_0000u64) * 1_000_000) >> 16, "{rapl:?}: 65536 counts = 1 J");
        assert!(
            msrs.log.iter().all(|a| matches!(a, Access::Read(m) if *m == rapl.unit_msr() || *m == rapl.package_msr()))
        );
        assert_eq!(msrs.log.len(), 3, "start, unit, now: {:?}", msrs.log);
    }
    assert_eq!((Rapl::Intel.unit_msr(), Rapl::Intel.package_msr()), (0x606, 0x611));
    assert_eq!((Rapl::Amd.unit_msr(), Rapl::Amd.package_msr()), (0xC001_0299, 0xC001_029B));
}
