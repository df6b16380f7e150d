//! The kernel's entry point and boot sequence on the bootstrap processor.
//!
//! ```text
//! serial + log -> GDT/TSS/IDT (core 0) -> PIC masked -> CPU features
//!   -> TSC calibrated (PIT) -> boot arguments (ramdisk) -> local APIC
//!   -> MADT -> start APs -> boot report -> tests or the system
//! ```

use crate::arch::x86_64::{cpu, gdt, pic, tsc};
use crate::machine;
use crate::mem::paging::KERNEL_HALF_START;
use crate::panic::fatal;
use crate::smp;
use boot_args::{Archive, CmdLine};
use bootloader_api::config::{BootloaderConfig, Mapping};
use bootloader_api::info::{BootInfo, MemoryRegionKind};
use core::sync::atomic::Ordering;

pub static BOOTLOADER_CONFIG: BootloaderConfig = {
    let mut config = BootloaderConfig::new_default();
    config.mappings.physical_memory = Some(Mapping::Dynamic);
    // Everything the bootloader maps for the kernel goes to the upper half;
    // the lower half of every address space belongs to its server.
    config.mappings.dynamic_range_start = Some(KERNEL_HALF_START);
    config.kernel_stack_size = 256 * 1024;
    config
};

bootloader_api::entry_point!(kernel_main, config = &BOOTLOADER_CONFIG);

/// Boot arguments the kernel understands (see docs/boot.md).
const KNOWN_ARGS: &[&str] = &[
    "test",
    "smp.skip_apic",
    "bench",
    "bench.accel",
    "bench.cpu",
    "bench.date",
    "bench.system",
    "bench.floors",
    "bench.floor_stream",
    "power.race_delay_us",
    "watch_ms",
];

/// Messages per floor stream phase: `bench.floor_stream=N` when N is in
/// `floors::STREAM_MESSAGES_RANGE`; otherwise (and when absent) the
/// default, with a warning naming the refused value.
fn floor_stream_messages(arg: Option<&str>) -> u64 {
    let Some(text) = arg else { return crate::floors::DEFAULT_STREAM_MESSAGES };
    match text.parse::<u64>() {
        Ok(n) if crate::floors::STREAM_MESSAGES_RANGE.contains(&n) => n,
        _ => {
            log::warn!(
                "bench: bench.floor_stream={text} refused (a count in {}..={}); {} messages per stream",
                crate::floors::STREAM_MESSAGES_RANGE.start(),
                crate::floors::STREAM_MESSAGES_RANGE.end(),
                crate::floors::DEFAULT_STREAM_MESSAGES
            );
            crate::floors::DEFAULT_STREAM_MESSAGES
        }
    }
}

fn kernel_main(boot_info: &'static mut BootInfo) -> ! {
    crate::serial::init_logging();
    log::info!("microkernel {} booting", env!("CARGO_PKG_VERSION"));
    log::info!(
        "boot: kernel at {:#x}, physical memory map at {:#x}",
        kernel_main as *const () as usize,
        boot_info.physical_memory_offset.into_option().unwrap_or(0)
    );
    smp::init_bsp();
    pic::remap_and_mask();

    let features = cpu::probe();
    cpu::report(&features);
    enable_protections(&features);

    let cal = tsc::calibrate();
    tsc::set_hz(cal.hz);
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
        Ok(Some(bytes)) => {
            core::str::from_utf8(bytes).unwrap_or_else(|_| fatal(format_args!("boot: cmdline is not UTF-8")))
        }
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
    crate::mem::set_phys_offset(phys_offset);
    crate::mem::frames::init(&boot_info.memory_regions);
    let guards = gdt::unmap_stack_guards(cores::MAX_CORES);
    log::info!("mem: guard pages below {guards} AP kernel stacks");
    let apic = smp::init_bsp_apic(phys_offset);
    match apic.mode() {
        smp_boot::apic::Mode::X2Apic => log::info!("apic: x2APIC (MSR access), BSP apic id {}", apic.id()),
        smp_boot::apic::Mode::XApic { base } => {
            log::info!("apic: xAPIC (MMIO at {base:#x}), BSP apic id {}", apic.id())
        }
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

    if let Some(us) = cmdline.get("power.race_delay_us") {
        match us.parse::<u64>() {
            Ok(us) if us <= 10_000 => crate::power::set_race_delay_us(us),
            _ => {
                fatal(format_args!("boot: power.race_delay_us: `{us}` is not a number of microseconds from 0 to 10000"))
            }
        }
    }
    let config = load_system(ramdisk, report.expected);
    crate::energy::probe(&features);
    if let Some(config) = &config {
        crate::power::resolve(
            config,
            &features,
            report.expected,
            config.mover_cores.len(),
            crate::power::pstate::read_capability,
        );
        if !config.devices.is_empty() {
            // Only systems that grant devices look at the bus.
            crate::devices::scan::init(rsdp);
        }
        crate::server::load::load_all(config, |binary| {
            let path = alloc::format!("servers/{binary}");
            Archive::find(ramdisk, &path).ok().flatten()
        });
        crate::sync_ipc::init();
    }
    boot_report(config.as_ref(), &report);

    if let Some(tests) = cmdline.get("test") {
        crate::ktest::run(tests, &report);
    }
    if cmdline.get("bench").is_some() {
        crate::phase_counters::enable();
        crate::kprintln!(
            "BENCH-BEGIN accel={} smp={} cpu={} tsc_hz={} tsc_source=pit date={} system={}",
            cmdline.get("bench.accel").unwrap_or("unknown"),
            report.online,
            cmdline.get("bench.cpu").unwrap_or("unknown"),
            cal.hz,
            cmdline.get("bench.date").unwrap_or("unknown"),
            cmdline.get("bench.system").unwrap_or("ipc")
        );
        if cmdline.get("bench.floors") == Some("off") {
            log::info!("bench: floors skipped (bench.floors=off)");
        } else if report.online >= 3 {
            crate::floors::run_floors(1, 2, floor_stream_messages(cmdline.get("bench.floor_stream")));
        } else {
            log::warn!("bench: the floors need 3 cores (BSP + 2); skipped");
        }
    }
    if !report.failed.is_empty() {
        machine::exit(machine::EXIT_FAILURE)
    }
    if crate::server::all().is_empty() {
        log::info!("boot complete; no servers to run");
        machine::exit(machine::EXIT_SUCCESS)
    }
    let movers = crate::mover::build(config.as_ref().expect("servers come from a system"));
    let bsp_mover = crate::mover::start(movers);
    crate::sync_ipc::start_all();
    if let Some(config) = &config {
        crate::power_control::init(config);
    }
    if let Some(ms) = cmdline.get("watch_ms") {
        match ms.parse::<u64>() {
            Ok(ms) if (1..=60_000).contains(&ms) => crate::watch::set_period_ms(ms),
            _ => fatal(format_args!("boot: watch_ms: `{ms}` is not a number of milliseconds from 1 to 60000")),
        }
    }
    crate::power_control::start_console(bsp_mover.is_none(), &madt);
    match bsp_mover {
        Some(mover) => mover.run(),
        None => crate::lifecycle::supervise(),
    }
}

/// SMEP and SMAP where CPUID offers them: the kernel never executes or
/// touches user pages directly (user memory goes through `mem::user`).
fn enable_protections(features: &cpu::Features) {
    use x86_64::registers::control::{Cr4, Cr4Flags};
    let mut flags = Cr4::read();
    if features.smep {
        flags |= Cr4Flags::SUPERVISOR_MODE_EXECUTION_PROTECTION;
    }
    if features.smap {
        flags |= Cr4Flags::SUPERVISOR_MODE_ACCESS_PREVENTION;
    }
    // SAFETY: both bits only restrict what ring 0 may do with user pages,
    // which the kernel never does directly.
    unsafe { Cr4::write(flags) };
    log::info!(
        "cpu: SMEP {}, SMAP {}",
        if features.smep { "on" } else { "not offered" },
        if features.smap { "on" } else { "not offered" }
    );
}

/// Reads, parses and checks `system.toml` from the ramdisk. A bad file
/// ends the run with the parser's error (file, line, column, key).
fn load_system(ramdisk: &'static [u8], core_count: usize) -> Option<system_config::SystemConfig> {
    let bytes = match Archive::find(ramdisk, "system.toml") {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return None,
        Err(err) => fatal(format_args!("boot: ramdisk archive unreadable: {err}")),
    };
    let Ok(text) = core::str::from_utf8(bytes) else {
        log::error!("system.toml is not UTF-8");
        machine::exit(machine::EXIT_FAILURE)
    };
    let binaries: alloc::vec::Vec<alloc::string::String> = Archive::new(ramdisk)
        .filter_map(|e| e.ok())
        .filter_map(|e| e.name.strip_prefix("servers/").map(alloc::string::String::from))
        .collect();
    let this_machine = system_config::Machine { core_count: Some(core_count), binaries: Some(binaries) };
    match system_config::parse(text).and_then(|c| c.validate(&this_machine).map(|()| c)) {
        Ok(config) => {
            log::info!("system: {} servers, mover cores {:?}", config.servers.len(), config.mover_cores);
            Some(config)
        }
        Err(err) => {
            for line in err.render("system.toml", text).lines() {
                log::error!("{line}");
            }
            log::error!("system: the system description is invalid; nothing started");
            machine::exit(machine::EXIT_FAILURE)
        }
    }
}

fn boot_report(config: Option<&system_config::SystemConfig>, report: &smp::SmpReport) {
    for core in cores::all() {
        if !core.online.load(Ordering::Acquire) {
            continue;
        }
        let index = core.index();
        let apic = core.apic_id.load(Ordering::Relaxed);
        let server = crate::server::all().iter().find(|s| s.core == index);
        match (config.map(|c| c.role_of(index)), server) {
            (_, Some(s)) => log::info!("core {index}: apic {apic}, role server `{}`", s.name),
            (Some(system_config::PolicyRole::Mover), _) => {
                log::info!("core {index}: apic {apic}, role mover")
            }
            _ if index == 0 => log::info!("core {index}: apic {apic}, role kernel"),
            _ => log::info!("core {index}: apic {apic}, role idle (parked: no server)"),
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
}
