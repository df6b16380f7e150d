//! Bringing every core up, and the per-core trap handling that needs to
//! know which core it runs on.
//!
//! ```text
//!  BSP: MADT -> core table (BSP = core 0, APs in MADT order)
//!       for each AP: trampoline params, INIT-SIPI-SIPI, wait for `online`
//!  AP:  ap_entry(core) -> kernel CR3/CR4/EFER -> GS base -> GDT/TSS -> IDT
//!       -> local APIC -> online = true -> sti -> idle loop (pause, mailbox)
//! ```

use crate::arch::x86_64::{gdt, trap, tsc};
use crate::machine;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use cores::{CORES, MAX_CORES, Role};
use smp_boot::apic::{Delivery, LocalApic};
use smp_boot::madt::MadtInfo;
use smp_boot::trampoline::{ApStart, LOW_MEMORY_END, TRAMPOLINE_PHYS, Trampoline};
use x86_64::registers::control::{Cr3, Cr4};
use x86_64::registers::model_specific::Efer;

static APIC: spin::Once<LocalApic> = spin::Once::new();
static KERNEL_CR3: AtomicU64 = AtomicU64::new(0);
static KERNEL_CR4: AtomicU64 = AtomicU64::new(0);
static KERNEL_EFER: AtomicU64 = AtomicU64::new(0);

static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);
static STOPPED_CORES: AtomicU32 = AtomicU32::new(0);

/// The local APIC of whichever core calls (all cores share the mode).
pub fn apic() -> &'static LocalApic {
    APIC.get().expect("local APIC used before the BSP probed it")
}

pub use crate::arch::x86_64::cpu::current_core_index;

/// Busy-waits up to `timeout_us` (TSC) for `done()`; true if it happened.
pub fn wait_until(timeout_us: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = tsc::now() + tsc::ticks_per_us() * timeout_us;
    loop {
        if done() {
            return true;
        }
        if tsc::now() > deadline {
            return done();
        }
        core::hint::spin_loop();
    }
}

fn init_this_core(index: usize) {
    cores::install(index);
    gdt::load_for_this_core(index);
    trap::load_for_this_core(index);
    crate::arch::x86_64::user::init_syscalls_this_core();
}

/// Physical address of the kernel's own page tables.
pub fn kernel_cr3() -> u64 {
    KERNEL_CR3.load(Ordering::Relaxed)
}

/// Sets up core 0 (the BSP): per-core data, GDT/TSS, IDT.
pub fn init_bsp() {
    init_this_core(0);
    CORES[0].set_role(Role::Kernel);
}

/// Probes and enables the BSP's local APIC and records what APs must copy.
pub fn init_bsp_apic(physical_memory_offset: u64) -> LocalApic {
    // SAFETY: the bootloader's physical-memory map covers the APIC page
    // (it maps all of physical memory, MMIO holes included).
    let apic = *APIC.call_once(|| unsafe { LocalApic::probe(|phys| (phys + physical_memory_offset) as usize) });
    // SAFETY: first and only enable on the BSP, interrupts are off.
    unsafe { apic.enable() };
    CORES[0].apic_id.store(apic.id(), Ordering::Relaxed);
    CORES[0].online.store(true, Ordering::Release);
    KERNEL_CR3.store(Cr3::read_raw().0.start_address().as_u64(), Ordering::Relaxed);
    KERNEL_CR4.store(Cr4::read_raw(), Ordering::Relaxed);
    KERNEL_EFER.store(Efer::read_raw(), Ordering::Relaxed);
    apic
}

/// Where an AP lands from the trampoline: 64-bit mode, temporary page
/// tables, a stack of its own, interrupts off.
unsafe extern "C" fn ap_entry(core_index: u64) -> ! {
    let index = core_index as usize;
    // SAFETY: these are the BSP's values, valid on every core: the kernel's
    // page tables (which map this code and its stack identically), the
    // same CR4 and EFER features. The trampoline already set LME/NXE.
    unsafe {
        Efer::write_raw(KERNEL_EFER.load(Ordering::Relaxed));
        Cr4::write_raw(KERNEL_CR4.load(Ordering::Relaxed));
        core::arch::asm!("mov cr3, {}", in(reg) KERNEL_CR3.load(Ordering::Relaxed), options(nostack));
    }
    init_this_core(index);
    let apic = apic();
    // SAFETY: first and only enable on this core; interrupts are off.
    unsafe { apic.enable() };
    let core = &CORES[index];
    core.apic_id.store(apic.id(), Ordering::Relaxed);
    core.set_role(Role::Idle);
    // Pairs with the Acquire load in `Trampoline::start` on the BSP.
    core.online.store(true, Ordering::Release);
    x86_64::instructions::interrupts::enable();
    cores::idle_loop(core, wait_for_work)
}

/// Vector that wakes a halted core (mailbox work, supervisor news). Not
/// counted as a test IPI.
pub const WAKE_VECTOR: u8 = 0x41;
/// The mover's doorbell to a server core sleeping in HLT.
pub const DOORBELL_VECTOR: u8 = 0x42;

/// Rings core `index`'s doorbell.
pub fn doorbell(index: usize) {
    let core = &CORES[index];
    apic().send(core.apic_id.load(Ordering::Relaxed), Delivery::Fixed(DOORBELL_VECTOR));
}

/// Halts the calling core until an interrupt arrives, unless work is
/// already pending. `sti; hlt` is atomic (the interrupt shadow of `sti`), so
/// a wake-up sent after the check is not lost.
pub fn wait_for_work(core: &cores::PerCore) {
    x86_64::instructions::interrupts::disable();
    if core.work_pending() {
        x86_64::instructions::interrupts::enable();
    } else {
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

/// Posts `work(arg)` to core `index` and wakes it. False if its mailbox
/// is busy.
pub fn post_work(index: usize, work: cores::Work, arg: usize) -> bool {
    let core = &CORES[index];
    if !core.post(work, arg) {
        return false;
    }
    wake(index);
    true
}

/// Sends the wake-up interrupt to core `index` (if it is online).
pub fn wake(index: usize) {
    let core = &CORES[index];
    if core.online.load(Ordering::Acquire) {
        apic().send(core.apic_id.load(Ordering::Relaxed), Delivery::Fixed(WAKE_VECTOR));
    }
}

/// One processor the boot could not start.
#[derive(Clone, Copy)]
pub struct NotStarted {
    pub core: usize,
    pub apic_id: u32,
}

/// Result of starting every AP.
pub struct SmpReport {
    /// Processors the MADT enables (and the kernel supports).
    pub expected: usize,
    pub online: usize,
    pub failed: heapless::Vec<NotStarted, MAX_CORES>,
}

/// Fills the core table from the MADT (BSP first) and starts every AP.
/// `skip_apic` names APIC ids to leave alone (fault injection for tests).
pub fn start_aps(madt: &MadtInfo, physical_memory_offset: u64, low_memory_free: bool, skip_apic: &[u32]) -> SmpReport {
    let apic = *apic();
    let bsp_apic = CORES[0].apic_id.load(Ordering::Relaxed);
    let mut count = 1;
    for processor in madt.processors() {
        if let Some(reason) = processor.skip {
            log::warn!(
                "smp: processor uid {} (apic {}) skipped: {}",
                processor.acpi_uid,
                processor.apic_id,
                reason.describe()
            );
            continue;
        }
        if processor.apic_id == bsp_apic {
            continue;
        }
        if count == MAX_CORES {
            log::warn!(
                "smp: processor apic {} skipped: the kernel supports at most {MAX_CORES} cores",
                processor.apic_id
            );
            continue;
        }
        CORES[count].apic_id.store(processor.apic_id, Ordering::Relaxed);
        count += 1;
    }
    if madt.skipped_overflow > 0 {
        log::warn!("smp: {} more MADT processors beyond the parser's limit skipped", madt.skipped_overflow);
    }
    if !madt.usable().any(|p| p.apic_id == bsp_apic) {
        log::warn!("smp: the BSP (apic {bsp_apic}) is not listed in the MADT");
    }
    cores::CORE_COUNT.store(count, Ordering::Release);

    let mut report = SmpReport { expected: count, online: 1, failed: heapless::Vec::new() };
    if count == 1 {
        return report;
    }
    if !low_memory_free {
        log::error!(
            "smp: physical {TRAMPOLINE_PHYS:#x}..{LOW_MEMORY_END:#x} is not free RAM; application processors not started"
        );
        for core in &CORES[1..count] {
            let _ =
                report.failed.push(NotStarted { core: core.index(), apic_id: core.apic_id.load(Ordering::Relaxed) });
        }
        return report;
    }
    // SAFETY: the caller checked the low pages are usable RAM; the direct
    // map covers them; the bootloader leaves PML4 entry 0 to the identity
    // range (see smp-boot's trampoline docs).
    let trampoline = unsafe { Trampoline::install(|phys| (phys + physical_memory_offset) as usize, ap_entry) };
    let tsc_per_us = tsc::ticks_per_us();
    for core in &CORES[1..count] {
        let index = core.index();
        let apic_id = core.apic_id.load(Ordering::Relaxed);
        let start = ApStart {
            apic_id,
            core_index: index,
            stack_top: gdt::ap_stack_top(index),
            online: &core.online,
            tsc_per_us,
            timeout_us: 2_000_000,
            skip_sipi: skip_apic.contains(&apic_id),
        };
        // SAFETY: the stack is core `index`'s own (gdt module), the AP was
        // never started, and APs start one at a time.
        let result = unsafe { trampoline.start(&apic, &start) };
        match result {
            Ok(()) => report.online += 1,
            Err(_) => {
                log::error!("smp: core {index} (apic {apic_id}) did not start within 2 s");
                let _ = report.failed.push(NotStarted { core: index, apic_id });
            }
        }
    }
    report
}

/// Asks every other online core to stop (NMI) and waits briefly for them.
/// Returns (stopped, asked).
pub fn stop_other_cores() -> (u32, u32) {
    let Some(apic) = APIC.get() else { return (0, 0) };
    let me = current_core_index();
    let asked = cores::all().iter().filter(|c| c.index() != me && c.online.load(Ordering::Acquire)).count() as u32;
    STOP_REQUESTED.store(true, Ordering::SeqCst);
    apic.send_all_but_self(Delivery::Nmi);
    wait_until(500_000, || STOPPED_CORES.load(Ordering::Acquire) >= asked);
    (STOPPED_CORES.load(Ordering::Acquire), asked)
}

/// Whether a fatal error asked every core to stop (an NMI then means "stop").
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// Answers `stop_other_cores` and halts this core for good.
pub fn acknowledge_stop() -> ! {
    STOPPED_CORES.fetch_add(1, Ordering::AcqRel);
    machine::halt_forever()
}
