//! The kernel's entry point and boot sequence on the bootstrap processor.
//!
//! ```text
//! serial + log -> GDT/TSS/IDT (core 0) -> PIC masked -> CPU features
//!   -> TSC calibrated (PIT) -> boot arguments (ramdisk) -> local APIC
//!   -> MADT -> start APs -> boot report -> tests or the system
//! ```

use crate::arch::x86_64::{cpu, pic, tsc};
use crate::panic::fatal;
use crate::qemu;
use crate::smp;
use boot_args::{Archive, CmdLine};
use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::info::{BootInfo, MemoryRegionKind};
use core::sync::atomic::Ordering;
use cores::CORES;

pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    config.kernel_stack_size = 256 * 1024;
    config
};

bootloader_api::entry_point!(kernel_main, config = &BOOTLOADER_CONFIG);

/// Boot arguments the kernel understands (see docs/boot.md).
const KNOWN_ARGS: &[&str] = &["test", "smp.skip_apic"];

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    crate::serial::init_logging();
    log::info!("microkernel {} booting", env!("CARGO_PKG_VERSION"));
    smp::init_bsp();
    pic::remap_and_mask();

    let features = cpu::probe();
    cpu::report(&features);

    let cal = tsc::calibrate();
    smp::TSC_PER_US.store((cal.hz / 1_000_000).max(1), Ordering::Relaxed);
    log::info!(
        "tsc: {}.{:03} MHz from the PIT (channel 2, median of {} x {} ms, spread {}..{} MHz)",
        cal.hz / 1_000_000,
        cal.hz / 1000 % 1000,
        cal.runs,
        cal.ms_per_run,
        cal.min_hz / 1_000_000,
        cal.max_hz / 1_000_000
    );
    match cal.cpuid_hz {
        Some((hz, source)) => log::info!("tsc: {source} reports {} MHz", hz / 1_000_000),
        None => log::info!("tsc: CPUID reports no TSC frequency (no leaf 0x15/0x16/hypervisor leaf)"),
    }

    let ramdisk: &'static [u8] = match boot_info.ramdisk_addr.into_option() {
        // SAFETY: the bootloader maps the ramdisk at this address for
        // `ramdisk_len` bytes and never reuses that memory.
        Some(addr) => unsafe { core::slice::from_raw_parts(addr as *const u8, boot_info.ramdisk_len as usize) },
        None => &[],
    };
    let cmdline_text = match Archive::find(ramdisk, "cmdline") {
        Ok(Some(bytes)) => core::str::from_utf8(bytes).unwrap_or_else(|_| fatal(format_args!("boot: cmdline is not UTF-8"))),
        Ok(None) => "",
        Err(err) => fatal(format_args!("boot: ramdisk archive unreadable: {err}")),
    };
    let cmdline = CmdLine::new(cmdline_text);
    for (key, _) in cmdline.pairs() {
        if !KNOWN_ARGS.contains(&key) {
            fatal(format_args!("boot: unknown boot argument `{key}` (known: {KNOWN_ARGS:?})"));
        }
    }
    log::info!("boot: arguments `{}`", cmdline_text.trim());

    let Some(phys_offset) = boot_info.physical_memory_offset.into_option() else {
        fatal(format_args!("boot: the bootloader did not map physical memory"));
    };
    let apic = smp::init_bsp_apic(phys_offset);
    match apic.mode() {
        smp_boot::apic::Mode::X2Apic => log::info!("apic: x2APIC (MSR access), BSP apic id {}", apic.id()),
        smp_boot::apic::Mode::XApic { base } => log::info!("apic: xAPIC (MMIO at {base:#x}), BSP apic id {}", apic.id()),
    }

    let rsdp = boot_info.rsdp_addr.into_option();
    // SAFETY: `phys_offset` maps all physical memory; `rsdp` comes from the
    // firmware via the bootloader.
    let madt = match unsafe { smp_boot::acpi_tables::find_processors(phys_offset, rsdp) } {
        Ok(madt) => madt,
        Err(err) => {
            log::error!("smp: {err}; booting the BSP only");
            smp_boot::madt::MadtInfo::empty()
        }
    };
    if let Some(err) = madt.error {
        log::warn!("smp: {err}");
    }

    let low = smp_boot::trampoline::TRAMPOLINE_PHYS..smp_boot::trampoline::LOW_MEMORY_END;
    let low_memory_free = boot_info
        .memory_regions
        .iter()
        .any(|r| r.kind == MemoryRegionKind::Usable && r.start <= low.start && r.end >= low.end);

    let mut skip = heapless::Vec::<u32, 8>::new();
    if let Some(list) = cmdline.get("smp.skip_apic") {
        for id in list.split(',') {
            match id.parse() {
                Ok(id) => {
                    let _ = skip.push(id);
                }
                Err(_) => fatal(format_args!("boot: smp.skip_apic: `{id}` is not an APIC id")),
            }
        }
    }

    let report = smp::start_aps(&madt, phys_offset, low_memory_free, &skip);
    for core in cores::all() {
        if core.online.load(Ordering::Acquire) {
            log::info!(
                "core {}: apic {}, role {}",
                core.index(),
                core.apic_id.load(Ordering::Relaxed),
                core.role().name()
            );
        }
    }
    if report.failed.is_empty() {
        log::info!("cores online: {}/{}", report.online, report.expected);
    } else {
        let mut line = heapless::String::<512>::new();
        use core::fmt::Write;
        let _ = write!(line, "cores online: {}/{}", report.online, report.expected);
        for f in &report.failed {
            let _ = write!(line, ", core {} (apic {}) did not start", f.core, f.apic_id);
        }
        log::error!("{line}");
    }
    let _ = &CORES;

    if let Some(tests) = cmdline.get("test") {
        crate::ktest::run(tests, &report);
    }
    if report.failed.is_empty() {
        log::info!("boot complete");
        qemu::exit(qemu::EXIT_SUCCESS)
    } else {
        qemu::exit(qemu::EXIT_FAILURE)
    }
}
