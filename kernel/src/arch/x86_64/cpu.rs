//! CPU features later work depends on, read from CPUID once at boot and
//! printed. Nothing is probed by trying an instruction or MSR: under TCG
//! unknown MSRs do not fault, so only CPUID is trustworthy.

use core::arch::x86_64::{__cpuid, __cpuid_count, CpuidResult};
use core::sync::atomic::{AtomicBool, Ordering};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};

fn cpuid(leaf: u32, sub: u32) -> CpuidResult {
    __cpuid_count(leaf, sub)
}

fn max_leaf(base: u32) -> u32 {
    __cpuid(base).eax
}

/// The features the kernel cares about.
#[derive(Debug, Clone, Copy, Default)]
pub struct Features {
    pub vendor: [u8; 12],
    pub hypervisor: Option<[u8; 12]>,
    pub x2apic: bool,
    pub monitor_mwait: bool,
    /// MWAIT extensions (leaf 5 ECX[0]) and "interrupt breaks MWAIT even when
    /// masked" (ECX[1]).
    pub mwait_extensions: bool,
    pub mwait_interrupt_break: bool,
    /// Number of C-state sub-states per C-state from leaf 5 EDX (C0..C7).
    pub mwait_substates: [u8; 8],
    pub invariant_tsc: bool,
    pub tsc_deadline: bool,
    pub rdtscp: bool,
    pub hwp: bool,
    pub hwp_epp: bool,
    pub turbo: bool,
    pub arat: bool,
    pub aperf_mperf: bool,
    pub energy_perf_bias: bool,
    pub smep: bool,
    pub smap: bool,
    /// User-mode instruction prevention (CPUID.7.0:ECX[2]): with CR4.UMIP,
    /// `sgdt`, `sidt`, `sldt`, `smsw` and `str` raise #GP in ring 3.
    pub umip: bool,
    pub pcid: bool,
    pub amd_rapl: bool,
    /// Display family and model (CPUID 1:EAX with the extended fields).
    pub family: u32,
    pub model: u32,
    /// Enhanced SpeedStep: `IA32_PERF_CTL` exists (CPUID.1:ECX[7]).
    pub eist: bool,
    /// AMD hardware P-states: `PStateCtl` MSR (CPUID.80000007:EDX[7]).
    pub amd_hw_pstate: bool,
    pub intel: bool,
}

pub fn probe() -> Features {
    let mut f = Features::default();
    let leaf0 = cpuid(0, 0);
    f.vendor[0..4].copy_from_slice(&leaf0.ebx.to_le_bytes());
    f.vendor[4..8].copy_from_slice(&leaf0.edx.to_le_bytes());
    f.vendor[8..12].copy_from_slice(&leaf0.ecx.to_le_bytes());
    let max = leaf0.eax;
    let leaf1 = cpuid(1, 0);
    let base_family = (leaf1.eax >> 8) & 0xF;
    f.family = if base_family == 0xF { base_family + ((leaf1.eax >> 20) & 0xFF) } else { base_family };
    f.model = (leaf1.eax >> 4) & 0xF;
    if base_family == 0x6 || base_family == 0xF {
        f.model |= ((leaf1.eax >> 16) & 0xF) << 4;
    }
    f.monitor_mwait = leaf1.ecx & (1 << 3) != 0;
    f.eist = leaf1.ecx & (1 << 7) != 0;
    f.intel = &f.vendor == b"GenuineIntel";
    f.pcid = leaf1.ecx & (1 << 17) != 0;
    f.x2apic = leaf1.ecx & (1 << 21) != 0;
    f.tsc_deadline = leaf1.ecx & (1 << 24) != 0;
    if leaf1.ecx & (1 << 31) != 0 {
        let hv = cpuid(0x4000_0000, 0);
        let mut name = [0u8; 12];
        name[0..4].copy_from_slice(&hv.ebx.to_le_bytes());
        name[4..8].copy_from_slice(&hv.ecx.to_le_bytes());
        name[8..12].copy_from_slice(&hv.edx.to_le_bytes());
        f.hypervisor = Some(name);
    }
    if max >= 5 && f.monitor_mwait {
        let leaf5 = cpuid(5, 0);
        f.mwait_extensions = leaf5.ecx & 1 != 0;
        f.mwait_interrupt_break = leaf5.ecx & 2 != 0;
        for (i, n) in f.mwait_substates.iter_mut().enumerate() {
            *n = ((leaf5.edx >> (4 * i)) & 0xF) as u8;
        }
    }
    if max >= 6 {
        let leaf6 = cpuid(6, 0);
        f.turbo = leaf6.eax & (1 << 1) != 0;
        f.arat = leaf6.eax & (1 << 2) != 0;
        f.hwp = leaf6.eax & (1 << 7) != 0;
        f.hwp_epp = leaf6.eax & (1 << 10) != 0;
        f.aperf_mperf = leaf6.ecx & 1 != 0;
        f.energy_perf_bias = leaf6.ecx & (1 << 3) != 0;
    }
    if max >= 7 {
        let leaf7 = cpuid(7, 0);
        f.smep = leaf7.ebx & (1 << 7) != 0;
        f.smap = leaf7.ebx & (1 << 20) != 0;
        f.umip = leaf7.ecx & (1 << 2) != 0;
    }
    let max_ext = max_leaf(0x8000_0000);
    if max_ext >= 0x8000_0001 {
        f.rdtscp = cpuid(0x8000_0001, 0).edx & (1 << 27) != 0;
    }
    if max_ext >= 0x8000_0007 {
        let edx = cpuid(0x8000_0007, 0).edx;
        f.invariant_tsc = edx & (1 << 8) != 0;
        f.amd_rapl = edx & (1 << 14) != 0;
        f.amd_hw_pstate = edx & (1 << 7) != 0;
    }
    f
}

/// The TSC frequency the CPU (or hypervisor) reports, if any.
pub fn reported_tsc_hz() -> Option<(u64, &'static str)> {
    let max = max_leaf(0);
    if max >= 0x15 {
        let l = cpuid(0x15, 0);
        if l.eax != 0 && l.ebx != 0 && l.ecx != 0 {
            return Some((u64::from(l.ecx) * u64::from(l.ebx) / u64::from(l.eax), "CPUID 0x15"));
        }
    }
    if max >= 0x16 {
        let mhz = cpuid(0x16, 0).eax & 0xFFFF;
        if mhz != 0 {
            return Some((u64::from(mhz) * 1_000_000, "CPUID 0x16 base frequency"));
        }
    }
    if cpuid(1, 0).ecx & (1 << 31) != 0 && max_leaf(0x4000_0000) >= 0x4000_0010 {
        let khz = cpuid(0x4000_0010, 0).eax;
        if khz != 0 {
            return Some((u64::from(khz) * 1000, "hypervisor leaf 0x40000010"));
        }
    }
    None
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn text(bytes: &[u8]) -> &str {
    core::str::from_utf8(bytes).unwrap_or("?").trim_end_matches('\0')
}

/// Prints the features once, in one block.
pub fn report(f: &Features) {
    log::info!(
        "cpu: vendor {} hypervisor {}",
        text(&f.vendor),
        f.hypervisor.as_ref().map(|h| text(h)).unwrap_or("none")
    );
    log::info!(
        "cpu: x2apic {} monitor/mwait {} (extensions {}, interrupt-break {}, C-substates {:?})",
        yes(f.x2apic),
        yes(f.monitor_mwait),
        yes(f.mwait_extensions),
        yes(f.mwait_interrupt_break),
        f.mwait_substates
    );
    log::info!(
        "cpu: invariant-tsc {} tsc-deadline {} rdtscp {} arat {}",
        yes(f.invariant_tsc),
        yes(f.tsc_deadline),
        yes(f.rdtscp),
        yes(f.arat)
    );
    log::info!(
        "cpu: power: eist {} amd-hw-pstate {} hwp {} hwp-epp {} turbo {} aperf/mperf {} energy-perf-bias {} amd-rapl {}",
        yes(f.eist),
        yes(f.amd_hw_pstate),
        yes(f.hwp),
        yes(f.hwp_epp),
        yes(f.turbo),
        yes(f.aperf_mperf),
        yes(f.energy_perf_bias),
        yes(f.amd_rapl)
    );
    log::info!("cpu: smep {} smap {} pcid {}", yes(f.smep), yes(f.smap), yes(f.pcid));
    // What `protect_user_boundary_this_core` did on this core (every core
    // does the same): read back, not assumed.
    let umip_on = Cr4::read().contains(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION);
    log::info!(
        "cpu: umip {}",
        match (f.umip, umip_on) {
            (true, true) => "on",
            (true, false) => "offered but NOT on",
            (false, _) => "not offered",
        }
    );
    log::info!(
        "cpu: trap entry from ring 3 clears AC with {}; alignment checks for servers that set AC: {}",
        if TRAP_ENTRY_CLAC.load(Ordering::Relaxed) { "clac" } else { "popfq (no SMAP, no clac)" },
        if Cr0::read().contains(Cr0Flags::ALIGNMENT_MASK) { "on (CR0.AM)" } else { "off" }
    );
}

/// Read by the trap entry stub (`arch::x86_64::trap`): non-zero if the CPU
/// has `clac` (CPUID says SMAP), so an entry from ring 3 clears EFLAGS.AC
/// with it; zero: with `pushfq`/`popfq` (`clac` would be #UD).
pub static TRAP_ENTRY_CLAC: AtomicBool = AtomicBool::new(false);

/// Sets up what stands between ring 3 and this core: CR4.UMIP where CPUID
/// offers it (`sgdt`, `sidt`, `sldt`, `smsw`, `str` then #GP in ring 3
/// instead of leaking kernel addresses), CR0.AM (a server that sets
/// EFLAGS.AC gets #AC for its own misaligned accesses, reported as its
/// fault; the kernel is never checked: alignment checks apply at CPL 3
/// only and every kernel entry clears AC), and how the trap stub clears AC.
/// Call once per core, before it runs any server.
pub fn protect_user_boundary_this_core() {
    let leaf7 = if max_leaf(0) >= 7 { cpuid(7, 0) } else { CpuidResult { eax: 0, ebx: 0, ecx: 0, edx: 0 } };
    let umip = leaf7.ecx & (1 << 2) != 0;
    let smap = leaf7.ebx & (1 << 20) != 0;
    TRAP_ENTRY_CLAC.store(smap, Ordering::Relaxed);
    if umip {
        // SAFETY: UMIP only makes five descriptor-table instructions fault in
        // ring 3; the kernel runs in ring 0 and is not affected.
        unsafe { Cr4::update(|flags| flags.insert(Cr4Flags::USER_MODE_INSTRUCTION_PREVENTION)) };
    }
    // SAFETY: CR0.AM only enables #AC for ring-3 code that sets EFLAGS.AC
    // itself; no server is built to, and a server that does faults alone.
    unsafe { Cr0::update(|flags| flags.insert(Cr0Flags::ALIGNMENT_MASK)) };
}

/// Index of the calling core (its per-core data at `gs:[0]`); 0 before the
/// BSP has set up its GS base (early boot, and fatal-error reports then).
pub fn current_core_index() -> usize {
    if x86_64::registers::model_specific::GsBase::read().as_u64() == 0 { 0 } else { cores::this_core().index() }
}
