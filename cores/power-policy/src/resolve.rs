//! What a requested power policy becomes on this CPU: the degradation rules
//! and the P-state encodings, as pure functions of the request, the CPU's
//! features (from CPUID), the TSC rate and a closure that reads the few
//! capability MSRs. The kernel builds the inputs at boot, calls [`resolve`]
//! per core and logs [`Resolved::boot_note`].
//!
//! ```text
//!  sleep:   mwait ── no MONITOR/MWAIT ──────────────► hlt  (noted)
//!                └── several inboxes per server ────► hlt  (noted; one MONITOR
//!                                                          watches one line)
//!           hlt, none: as asked
//!  P-state: unchanged (policy) ─────────────────────► none, no MSR read
//!           HWP ──► IA32_HWP_REQUEST min = max = lowest, EPP = hwp_epp_idle
//!           else EIST on Intel ──► IA32_PERF_CTL ratio << 8
//!           else AMD hardware P-states ──► PStateCtl = slowest P-state
//!           else none
//!  idle_pstate_after_us: only where a P-state control was chosen
//! ```
//! Invariants: a resolved policy never asks for more than the CPU offers;
//! an MSR is read only where CPUID reported the control it belongs to (the
//! caller's closure is trusted to read exactly the MSR named), and only
//! the one for the control chosen.

use crate::{Escalation, SleepKind};
use core::fmt;

/// How a policy asks a core to sleep (`sleep` and `mwait_hint` in the TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SleepRequest {
    /// `sleep = "none"`: keep pausing.
    None,
    /// `sleep = "hlt"`.
    Hlt,
    /// `sleep = "mwait"` with this EAX hint.
    Mwait { hint: u32 },
}

/// The performance request a policy asks for while idle (`idle_pstate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePstateRequest {
    /// The lowest the CPU offers.
    Lowest,
    /// Leave the performance request alone.
    Unchanged,
    /// This bus ratio in `IA32_PERF_CTL` (where that is the control).
    Ratio(u8),
}

/// One core's policy as the system TOML asks for it, in the TOML's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Empty polls before pausing.
    pub spin_polls_before_pause: u32,
    /// Microseconds of pausing before sleeping.
    pub pause_us_before_sleep: u32,
    pub sleep: SleepRequest,
    pub idle_pstate: IdlePstateRequest,
    /// HWP energy-performance preference while idle (0..=255).
    pub hwp_epp_idle: u8,
    /// Microseconds of pausing after which a polling core lowers its
    /// P-state; 0 = only while asleep.
    pub idle_pstate_after_us: u32,
}

/// The CPU's power features, as CPUID reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuPower {
    /// MONITOR/MWAIT (CPUID 1:ECX[3]).
    pub monitor_mwait: bool,
    /// Intel HWP (CPUID 6:EAX[7]).
    pub hwp: bool,
    /// Enhanced SpeedStep (CPUID 1:ECX[7]); used on Intel only.
    pub eist: bool,
    /// The vendor is GenuineIntel.
    pub intel: bool,
    /// AMD hardware P-states (CPUID 80000007:EDX[7]).
    pub amd_hw_pstate: bool,
}

/// The capability MSRs resolution reads; the caller knows their addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityMsr {
    /// `IA32_HWP_CAPABILITIES` (0x771): bits 31:24 are the lowest performance.
    HwpCapabilities,
    /// `MSR_PLATFORM_INFO` (0xCE): bits 47:40 are the maximum efficiency ratio.
    PlatformInfo,
    /// AMD `PStateCurLmt` (0xC001_0061): bits 6:4 are the slowest P-state
    /// the core may use (`PstateMaxVal`).
    AmdPstateCurrentLimit,
}

/// How a core lowers its performance request while idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PstateControl {
    None,
    /// Intel HWP: `IA32_HWP_REQUEST` (0x774) min/max/EPP.
    Hwp,
    /// Intel EIST: `IA32_PERF_CTL` (0x199) ratio.
    PerfCtl,
    /// AMD: `PStateCtl` (0xC001_0062), higher number = slower.
    AmdPstate,
}

/// The P-state control chosen for a policy on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PstateChoice {
    pub control: PstateControl,
    /// The value to write while idle, encoded for `control` (0 for none).
    pub idle_value: u64,
    /// For the boot log: what was chosen, or why nothing.
    pub note: &'static str,
}

/// One core's policy after degradation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The policy in the hot loop's units (TSC ticks).
    pub escalation: Escalation,
    pub pstate: PstateControl,
    /// The value to write while idle, encoded for `pstate`.
    pub idle_value: u64,
    /// Why the sleep differs from the request ("" if it does not), with a
    /// leading space: ` (asked mwait: ...)`.
    pub sleep_note: &'static str,
    /// What the P-state control is, or why there is none.
    pub pstate_note: &'static str,
    /// The request, for [`Resolved::boot_note`].
    pub request: Request,
}

/// HWP lowest performance, from `IA32_HWP_CAPABILITIES`.
fn hwp_lowest(capabilities: u64) -> u64 {
    (capabilities >> 24) & 0xFF
}

/// `IA32_HWP_REQUEST` with minimum = maximum = `performance` (bits 7:0 and
/// 15:8), desired 0 (bits 23:16, hardware chooses) and EPP in bits 31:24.
pub fn hwp_request(performance: u64, epp: u8) -> u64 {
    let performance = performance & 0xFF;
    performance | (performance << 8) | (u64::from(epp) << 24)
}

/// `IA32_PERF_CTL` asking for bus ratio `ratio` (bits 15:8).
pub fn perf_ctl_request(ratio: u64) -> u64 {
    (ratio & 0xFF) << 8
}

/// The slowest P-state number from AMD's `PStateCurLmt` (bits 6:4), the
/// value `PStateCtl` takes.
fn amd_slowest_pstate(current_limit: u64) -> u64 {
    (current_limit >> 4) & 0x7
}

/// Picks the P-state control and the value to write while idle: HWP before
/// EIST (Intel only) before AMD hardware P-states. Reads at most one MSR,
/// the one for the control chosen, and none for `Unchanged` or for an
/// explicit ratio.
pub fn choose_pstate_control(
    cpu: &CpuPower,
    want: IdlePstateRequest,
    epp: u8,
    mut read_msr: impl FnMut(CapabilityMsr) -> u64,
) -> PstateChoice {
    if want == IdlePstateRequest::Unchanged {
        return PstateChoice { control: PstateControl::None, idle_value: 0, note: "unchanged (policy)" };
    }
    if cpu.hwp {
        let lowest = hwp_lowest(read_msr(CapabilityMsr::HwpCapabilities));
        return PstateChoice {
            control: PstateControl::Hwp,
            idle_value: hwp_request(lowest, epp),
            note: "HWP request: min=max=lowest, EPP from policy",
        };
    }
    if cpu.eist && cpu.intel {
        let ratio = match want {
            IdlePstateRequest::Ratio(r) => u64::from(r),
            _ => (read_msr(CapabilityMsr::PlatformInfo) >> 40) & 0xFF,
        };
        return PstateChoice {
            control: PstateControl::PerfCtl,
            idle_value: perf_ctl_request(ratio),
            note: "IA32_PERF_CTL lowest ratio",
        };
    }
    if cpu.amd_hw_pstate {
        let slowest = amd_slowest_pstate(read_msr(CapabilityMsr::AmdPstateCurrentLimit));
        return PstateChoice {
            control: PstateControl::AmdPstate,
            idle_value: slowest,
            note: "AMD PStateCtl slowest P-state",
        };
    }
    PstateChoice {
        control: PstateControl::None,
        idle_value: 0,
        note: "not available (CPUID: no HWP, no EIST, no AMD hardware P-states)",
    }
}

/// The sleep a request gets on this CPU, and why it differs (or "").
fn resolve_sleep(sleep: SleepRequest, cpu: &CpuPower, inboxes_per_server: usize) -> (SleepKind, &'static str) {
    match sleep {
        SleepRequest::None => (SleepKind::Never, ""),
        SleepRequest::Hlt => (SleepKind::Hlt, ""),
        SleepRequest::Mwait { .. } if !cpu.monitor_mwait => {
            (SleepKind::Hlt, " (asked mwait: CPU has no MONITOR/MWAIT, using hlt)")
        }
        SleepRequest::Mwait { .. } if inboxes_per_server > 1 => {
            (SleepKind::Hlt, " (asked mwait: one MONITOR cannot watch several inboxes, using hlt)")
        }
        SleepRequest::Mwait { hint } => (SleepKind::Mwait { hint }, ""),
    }
}

/// Resolves one core's requested policy on this CPU: `mwait` degrades to
/// `hlt` without MONITOR/MWAIT or with several inboxes per server, the
/// P-state hint to what [`choose_pstate_control`] finds, and
/// `idle_pstate_after_us` applies only where a control was found.
/// Microseconds become TSC ticks at `tsc_per_us`.
pub fn resolve(
    request: &Request,
    cpu: &CpuPower,
    tsc_per_us: u64,
    inboxes_per_server: usize,
    read_msr: impl FnMut(CapabilityMsr) -> u64,
) -> Resolved {
    let (sleep, sleep_note) = resolve_sleep(request.sleep, cpu, inboxes_per_server);
    let pstate = choose_pstate_control(cpu, request.idle_pstate, request.hwp_epp_idle, read_msr);
    let escalation = Escalation {
        spin_polls: u64::from(request.spin_polls_before_pause),
        pause_ticks: u64::from(request.pause_us_before_sleep).saturating_mul(tsc_per_us),
        sleep,
        idle_pstate_after_ticks: (request.idle_pstate_after_us > 0 && pstate.control != PstateControl::None)
            .then(|| u64::from(request.idle_pstate_after_us).saturating_mul(tsc_per_us)),
    };
    Resolved {
        escalation,
        pstate: pstate.control,
        idle_value: pstate.idle_value,
        sleep_note,
        pstate_note: pstate.note,
        request: *request,
    }
}

/// How a core sleeps, for the boot log.
pub fn sleep_description(kind: SleepKind) -> &'static str {
    match kind {
        SleepKind::Never => "never (pause)",
        SleepKind::Hlt => "hlt + doorbell IPI",
        SleepKind::Mwait { .. } => "mwait on the inbox wake word",
    }
}

impl Resolved {
    /// The boot log's description of this policy (what follows
    /// `power: core N (role): `), e.g. `spin 1000 polls, pause 50 us, sleep
    /// hlt + doorbell IPI; idle P-state: ...`.
    pub fn boot_note(&self) -> BootNote<'_> {
        BootNote(self)
    }
}

/// [`Resolved::boot_note`]: formats without allocating.
pub struct BootNote<'a>(&'a Resolved);

impl fmt::Display for BootNote<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let r = self.0;
        write!(
            f,
            "spin {} polls, pause {} us, sleep {}{}; idle P-state: {}",
            r.request.spin_polls_before_pause,
            r.request.pause_us_before_sleep,
            sleep_description(r.escalation.sleep),
            r.sleep_note,
            r.pstate_note
        )?;
        let lowered_after = r.escalation.idle_pstate_after_ticks.map(|_| r.request.idle_pstate_after_us);
        match (r.pstate, r.escalation.sleep, lowered_after) {
            (PstateControl::None, _, _) => Ok(()),
            (_, SleepKind::Never, None) => {
                f.write_str(" (never used: the core never sleeps and idle_pstate_after_us is 0)")
            }
            (_, SleepKind::Never, Some(us)) => write!(f, ", after {us} us of pausing"),
            (_, _, Some(us)) => write!(f, ", after {us} us of pausing and while asleep"),
            (_, _, None) => f.write_str(", while asleep"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::vec::Vec;

    const TSC_PER_US: u64 = 2_500;

    const SERVER: Request = Request {
        spin_polls_before_pause: 1000,
        pause_us_before_sleep: 50,
        sleep: SleepRequest::Mwait { hint: 0x00 },
        idle_pstate: IdlePstateRequest::Lowest,
        hwp_epp_idle: 255,
        idle_pstate_after_us: 0,
    };

    const TCG: CpuPower = CpuPower { monitor_mwait: true, hwp: false, eist: false, intel: false, amd_hw_pstate: false };
    const HWP: CpuPower = CpuPower { monitor_mwait: true, hwp: true, eist: true, intel: true, amd_hw_pstate: false };
    const EIST: CpuPower = CpuPower { monitor_mwait: true, hwp: false, eist: true, intel: true, amd_hw_pstate: false };
    const AMD: CpuPower = CpuPower { monitor_mwait: true, hwp: false, eist: false, intel: false, amd_hw_pstate: true };

    /// A CPU's capability MSRs, with noise in every field we do not read.
    fn msrs(msr: CapabilityMsr) -> u64 {
        match msr {
            // highest 0x30, guaranteed 0x20, most efficient 0x10, lowest 0x08
            CapabilityMsr::HwpCapabilities => 0xFFFF_FFFF_0810_2030,
            // max efficiency ratio 0x0C in 47:40, max non-turbo 0x24 in 15:8
            CapabilityMsr::PlatformInfo => 0xFFFF_0C00_0000_2400,
            // PstateMaxVal 5 in 6:4, CurPstateLimit 1 in 2:0, noise above
            CapabilityMsr::AmdPstateCurrentLimit => 0xFFFF_FF00 | (5 << 4) | 1,
        }
    }

    fn no_msr(msr: CapabilityMsr) -> u64 {
        panic!("{msr:?} read where no MSR should be read")
    }

    /// Resolves with `msrs`, returning the result and every MSR read.
    fn resolve_logged(request: &Request, cpu: &CpuPower, inboxes: usize) -> (Resolved, Vec<CapabilityMsr>) {
        let reads = RefCell::new(Vec::new());
        let r = resolve(request, cpu, TSC_PER_US, inboxes, |msr| {
            reads.borrow_mut().push(msr);
            msrs(msr)
        });
        (r, reads.into_inner())
    }

    #[test]
    fn mwait_is_kept_where_the_cpu_has_it_and_one_inbox() {
        let (r, _) = resolve_logged(&Request { sleep: SleepRequest::Mwait { hint: 0x20 }, ..SERVER }, &TCG, 1);
        assert_eq!(r.escalation.sleep, SleepKind::Mwait { hint: 0x20 });
        assert_eq!(r.sleep_note, "");
    }

    #[test]
    fn mwait_without_monitor_mwait_becomes_hlt() {
        let cpu = CpuPower { monitor_mwait: false, ..TCG };
        let (r, _) = resolve_logged(&SERVER, &cpu, 1);
        assert_eq!(r.escalation.sleep, SleepKind::Hlt);
        assert_eq!(r.sleep_note, " (asked mwait: CPU has no MONITOR/MWAIT, using hlt)");
        // The missing instruction is the reason given, even with several inboxes.
        let (r, _) = resolve_logged(&SERVER, &cpu, 2);
        assert_eq!(r.sleep_note, " (asked mwait: CPU has no MONITOR/MWAIT, using hlt)");
    }

    #[test]
    fn mwait_with_several_inboxes_becomes_hlt() {
        let (r, _) = resolve_logged(&SERVER, &TCG, 2);
        assert_eq!(r.escalation.sleep, SleepKind::Hlt);
        assert_eq!(r.sleep_note, " (asked mwait: one MONITOR cannot watch several inboxes, using hlt)");
    }

    #[test]
    fn hlt_and_none_are_kept_on_any_cpu() {
        for cpu in [TCG, CpuPower::default(), HWP, AMD] {
            for inboxes in [0, 1, 4] {
                let (r, _) = resolve_logged(&Request { sleep: SleepRequest::Hlt, ..SERVER }, &cpu, inboxes);
                assert_eq!((r.escalation.sleep, r.sleep_note), (SleepKind::Hlt, ""));
                let (r, _) = resolve_logged(&Request { sleep: SleepRequest::None, ..SERVER }, &cpu, inboxes);
                assert_eq!((r.escalation.sleep, r.sleep_note), (SleepKind::Never, ""));
            }
        }
    }

    #[test]
    fn microseconds_become_tsc_ticks() {
        let request =
            Request { spin_polls_before_pause: 7, pause_us_before_sleep: 40, idle_pstate_after_us: 3, ..SERVER };
        let (r, _) = resolve_logged(&request, &HWP, 1);
        assert_eq!(r.escalation.spin_polls, 7, "polls are not scaled");
        assert_eq!(r.escalation.pause_ticks, 40 * TSC_PER_US);
        assert_eq!(r.escalation.idle_pstate_after_ticks, Some(3 * TSC_PER_US));
        let big = Request { pause_us_before_sleep: u32::MAX, ..SERVER };
        let r = resolve(&big, &TCG, u64::MAX, 1, no_msr);
        assert_eq!(r.escalation.pause_ticks, u64::MAX, "saturates instead of wrapping");
    }

    #[test]
    fn hwp_request_is_min_max_lowest_and_epp() {
        let (r, reads) = resolve_logged(&Request { hwp_epp_idle: 0x80, ..SERVER }, &HWP, 1);
        assert_eq!(r.pstate, PstateControl::Hwp);
        assert_eq!(r.idle_value, 0x8000_0808, "EPP 31:24, desired 0, max 15:8 and min 7:0 = lowest");
        assert_eq!(reads, [CapabilityMsr::HwpCapabilities]);
        assert_eq!(r.pstate_note, "HWP request: min=max=lowest, EPP from policy");
        assert_eq!(hwp_request(0x1FF, 0xFF), 0xFF00_FFFF, "performance is 8 bits");
    }

    #[test]
    fn hwp_wins_over_eist_and_ignores_an_explicit_ratio() {
        let (r, _) = resolve_logged(&Request { idle_pstate: IdlePstateRequest::Ratio(20), ..SERVER }, &HWP, 1);
        assert_eq!(r.pstate, PstateControl::Hwp);
        assert_eq!(r.idle_value & 0xFFFF, 0x0808);
    }

    #[test]
    fn perf_ctl_lowest_is_the_max_efficiency_ratio_shifted_by_8() {
        let (r, reads) = resolve_logged(&SERVER, &EIST, 1);
        assert_eq!(r.pstate, PstateControl::PerfCtl);
        assert_eq!(r.idle_value, 0x0C << 8);
        assert_eq!(reads, [CapabilityMsr::PlatformInfo]);
        assert_eq!(r.pstate_note, "IA32_PERF_CTL lowest ratio");
    }

    #[test]
    fn perf_ctl_explicit_ratio_reads_no_msr() {
        let r = resolve(&Request { idle_pstate: IdlePstateRequest::Ratio(17), ..SERVER }, &EIST, TSC_PER_US, 1, no_msr);
        assert_eq!((r.pstate, r.idle_value), (PstateControl::PerfCtl, 17 << 8));
    }

    #[test]
    fn eist_counts_on_intel_only() {
        let cpu = CpuPower { eist: true, intel: false, ..TCG };
        let r = resolve(&SERVER, &cpu, TSC_PER_US, 1, no_msr);
        assert_eq!(r.pstate, PstateControl::None);
        let (r, _) = resolve_logged(&SERVER, &CpuPower { amd_hw_pstate: true, ..cpu }, 1);
        assert_eq!(r.pstate, PstateControl::AmdPstate);
    }

    #[test]
    fn amd_idle_value_is_the_slowest_pstate() {
        let (r, reads) = resolve_logged(&SERVER, &AMD, 1);
        assert_eq!((r.pstate, r.idle_value), (PstateControl::AmdPstate, 5));
        assert_eq!(reads, [CapabilityMsr::AmdPstateCurrentLimit]);
        assert_eq!(r.pstate_note, "AMD PStateCtl slowest P-state");
    }

    #[test]
    fn unchanged_policy_or_no_control_reads_no_msr() {
        for cpu in [HWP, EIST, AMD, TCG] {
            let r =
                resolve(&Request { idle_pstate: IdlePstateRequest::Unchanged, ..SERVER }, &cpu, TSC_PER_US, 1, no_msr);
            assert_eq!((r.pstate, r.idle_value, r.pstate_note), (PstateControl::None, 0, "unchanged (policy)"));
        }
        let r = resolve(&SERVER, &TCG, TSC_PER_US, 1, no_msr);
        assert_eq!((r.pstate, r.idle_value), (PstateControl::None, 0));
        assert_eq!(r.pstate_note, "not available (CPUID: no HWP, no EIST, no AMD hardware P-states)");
    }

    #[test]
    fn idle_pstate_after_us_applies_only_with_a_control() {
        let after = Request { idle_pstate_after_us: 100, ..SERVER };
        let (r, _) = resolve_logged(&after, &AMD, 1);
        assert_eq!(r.escalation.idle_pstate_after_ticks, Some(100 * TSC_PER_US));
        let (r, _) = resolve_logged(&after, &TCG, 1);
        assert_eq!(r.escalation.idle_pstate_after_ticks, None, "no control on this CPU");
        let (r, _) = resolve_logged(&Request { idle_pstate: IdlePstateRequest::Unchanged, ..after }, &HWP, 1);
        assert_eq!(r.escalation.idle_pstate_after_ticks, None, "the policy leaves the P-state alone");
        let (r, _) = resolve_logged(&SERVER, &HWP, 1);
        assert_eq!(r.escalation.idle_pstate_after_ticks, None, "0 = only while asleep");
    }

    fn note(request: &Request, cpu: &CpuPower, inboxes: usize) -> String {
        resolve_logged(request, cpu, inboxes).0.boot_note().to_string()
    }

    #[test]
    fn boot_notes_keep_their_wording() {
        assert_eq!(
            note(&Request { sleep: SleepRequest::Hlt, ..SERVER }, &TCG, 1),
            "spin 1000 polls, pause 50 us, sleep hlt + doorbell IPI; idle P-state: not available (CPUID: no HWP, no EIST, no AMD hardware P-states)"
        );
        assert_eq!(
            note(&SERVER, &TCG, 2),
            "spin 1000 polls, pause 50 us, sleep hlt + doorbell IPI (asked mwait: one MONITOR cannot watch several inboxes, using hlt); idle P-state: not available (CPUID: no HWP, no EIST, no AMD hardware P-states)"
        );
        assert_eq!(
            note(&SERVER, &HWP, 1),
            "spin 1000 polls, pause 50 us, sleep mwait on the inbox wake word; idle P-state: HWP request: min=max=lowest, EPP from policy, while asleep"
        );
        assert_eq!(
            note(&Request { idle_pstate_after_us: 20, ..SERVER }, &AMD, 1),
            "spin 1000 polls, pause 50 us, sleep mwait on the inbox wake word; idle P-state: AMD PStateCtl slowest P-state, after 20 us of pausing and while asleep"
        );
        let never = Request { sleep: SleepRequest::None, ..SERVER };
        assert_eq!(
            note(&never, &EIST, 1),
            "spin 1000 polls, pause 50 us, sleep never (pause); idle P-state: IA32_PERF_CTL lowest ratio (never used: the core never sleeps and idle_pstate_after_us is 0)"
        );
        assert_eq!(
            note(&Request { idle_pstate_after_us: 7, ..never }, &EIST, 1),
            "spin 1000 polls, pause 50 us, sleep never (pause); idle P-state: IA32_PERF_CTL lowest ratio, after 7 us of pausing"
        );
        assert_eq!(
            note(&Request { idle_pstate: IdlePstateRequest::Unchanged, ..never }, &HWP, 1),
            "spin 1000 polls, pause 50 us, sleep never (pause); idle P-state: unchanged (policy)"
        );
    }
}
