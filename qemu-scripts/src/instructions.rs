//! `cargo xtask bench instructions`: executed guest instructions per
//! message on the kernel's stream paths (the direct ring, the stream
//! floor, the mover) and the mover's cost with a buffer descriptor, by
//! function, from QEMU's TCG log (issues 15 and 17).
//!
//! ```text
//! boot 1: bench.toml (benchclient's counts cut 10x)
//! boot 2: bench-sizes.toml (one round of the cost rows, no floors)
//!   each ─▶ image ─▶ QEMU -d in_asm,exec,nochain
//!                     -dfilter <kernel text>,<the counted servers' text> -D /dev/stderr
//!   stderr (the log) ─▶ bench::instructions::Counter ◀─ kernel and server ELF symbols (`object`)
//!   stdout (serial)  ─▶ phase names, messages; QEMU stopped once the last phase has ended
//! ```
//!
//! Kernel code and the user code of each boot's two servers (benchclient
//! and echo; sizes-client and sizes-peer; `[server]` before their
//! functions' names) are counted (the filter); other servers' code is not
//! (none runs in the phases reported). The count is
//! exact for the code the log covers (every TB run, its length from its
//! translation); it says nothing about time, which the IPC benchmark
//! measures.

use std::io::{BufRead, BufReader};
use std::process::{ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bench::instructions::{Counter, Function, ReportedPhase, problems, report};
use object::{Object, ObjectSection, ObjectSymbol, SymbolKind};

use crate::qemu::QemuOptions;
use crate::{Error, System, root};

/// Where the bootloader maps the kernel (its log says
/// `virtual_address_offset: 0x...`; checked against the serial log).
const KERNEL_OFFSET: u64 = 0xffff_8000_0000_0000;
/// Functions whose entry starts a phase: the floors' measuring sides and
/// the `BENCH_MARK` system call.
const MARKERS: &[&str] = &[
    "kernel::floors::pingpong_measure",
    "kernel::floors::ring_rtt_measure",
    "kernel::floors::stream_send",
    "kernel::floors::floor_send",
    "kernel::phase_counters::mark",
];
/// benchclient's arguments in bench.toml, and the ones used here (a tenth
/// of the messages: the log has a line per translation-block run).
const BENCH_ARGS: &str = "rtt=20000 stream=200000";
const PROFILE_ARGS: &str = "rtt=2000 stream=20000";
/// The kernel floors' fixed counts (`kernel/src/floors.rs`).
const FLOOR_STREAM_MESSAGES: u64 = 200_000;
const FLOOR_ROUND_TRIPS: u64 = 21_000;
const MOVER_STREAM_MESSAGES: u64 = 20_000;
/// Round trips of benchclient's counted mover-rtt phase (`PROFILE_ARGS`'
/// `rtt=`; the warm-up is outside the phase).
const MOVER_ROUND_TRIPS: u64 = 2_000;
/// The sizes client's arguments in bench-sizes.toml, and the ones used
/// here: no sweep to speak of (one size, a few messages), one round of
/// the cost rows.
const SIZES_SYSTEM: &str = "qemu-scripts/systems/bench-sizes.toml";
const SIZES_ARGS: &str = "rtt=1000 warmup=100 stream_kib=8192 min_messages=256 cost=20000 cost_rtt=2000 cost_rounds=20";
const SIZES_PROFILE_ARGS: &str =
    "rtt=10 warmup=1 stream_kib=1 min_messages=16 sizes=64 cost=20000 cost_rtt=10 cost_rounds=1";
/// Messages per cost stream (`cost=` above) and the mover's CPU there.
const COST_MESSAGES: u64 = 20_000;
const SIZES_MOVER_CPU: u32 = 0;

/// Every function symbol of an ELF at its run-time address (`offset` +
/// link address), demangled, and the run-time range of its `.text`.
/// `prefix` goes before each name (a server's name; empty for the kernel).
fn elf_functions(what: &str, prefix: &str, data: &[u8], offset: u64) -> Result<(Vec<Function>, (u64, u64)), Error> {
    let file = object::File::parse(data).map_err(|e| Error::new(format!("{what}: {e}")))?;
    let functions: Vec<Function> = file
        .symbols()
        .filter(|s| s.kind() == SymbolKind::Text && s.address() != 0)
        .filter_map(|s| {
            let name = s.name().ok()?;
            Some(Function {
                start: offset + s.address(),
                size: s.size(),
                name: format!("{prefix}{:#}", rustc_demangle::demangle(name)),
            })
        })
        .collect();
    let text = file.section_by_name(".text").ok_or_else(|| Error::new(format!("{what}: no .text section")))?;
    let range = (offset + text.address(), offset + text.address() + text.size());
    if functions.is_empty() {
        return Err(Error::new(format!("{what}: no function symbols (stripped?)")));
    }
    Ok((functions, range))
}

/// The kernel's 256 interrupt entry stubs, 16 bytes each, from this
/// symbol (`arch::x86_64::trap`).
const TRAP_STUBS: &str = "trap_stubs_base";
const TRAP_STUBS_SIZE: u64 = 256 * 16;

/// The link address of the symbol `name` in an ELF.
fn elf_symbol(what: &str, data: &[u8], name: &str) -> Result<u64, Error> {
    let file = object::File::parse(data).map_err(|e| Error::new(format!("{what}: {e}")))?;
    file.symbols()
        .find(|s| s.name() == Ok(name))
        .map(|s| s.address())
        .ok_or_else(|| Error::new(format!("{what}: no symbol `{name}`")))
}

/// The kernel's symbols, read once for every counted boot.
struct Kernel {
    functions: Vec<Function>,
    text: (u64, u64),
    trap_stubs: u64,
}

/// One boot whose guest instructions are counted.
struct CountedBoot<'a> {
    /// Its run directory under `target/qemu/`.
    name: &'a str,
    system: System,
    boot_args: &'a str,
    /// The servers whose user code is counted too (on the cores the
    /// system gives them).
    servers: &'a [&'a str],
    /// A serial line containing this ends the boot (the phases reported
    /// are over).
    done: &'a str,
}

/// What a counted boot left: the counts, its console, its directory.
struct Counted {
    counter: Counter,
    serial: String,
    dir: std::path::PathBuf,
}

impl Counted {
    /// The phase of the `name` stream's `BENCH_MARK` pair: the calls come
    /// in begin/end pairs, and the k-th pair is the k-th phase whose
    /// counters the kernel printed.
    fn mark_phase(&self, name: &str) -> String {
        let mut phases: Vec<&str> = Vec::new();
        for line in self.serial.lines() {
            if let Some(rest) = line.split_once("BENCH counters phase=").map(|(_, r)| r)
                && let Some(phase) = rest.split(' ').next()
                && phases.last() != Some(&phase)
            {
                phases.push(phase);
            }
        }
        phases.iter().position(|p| *p == name).map_or_else(|| "mark#?".to_string(), |i| format!("mark#{}", 2 * i + 1))
    }
}

fn count_boot(
    build: &crate::BenchBuild,
    opts: &QemuOptions,
    kernel: &Kernel,
    spec: CountedBoot,
) -> Result<Counted, Error> {
    let root = root();
    let mut opts = opts.clone();
    opts.echo = false;
    let names: Vec<String> = build.binaries.iter().map(|(n, _)| n.clone()).collect();
    let config = spec.system.check(Some(opts.smp), &names)?;
    // The counted servers' functions, on the CPUs the system gives them.
    let mut user = Vec::new();
    let mut ranges = vec![format!("{:#x}..{:#x}", kernel.text.0, kernel.text.1 - 1)];
    for &name in spec.servers {
        let server = config
            .servers
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| Error::new(format!("{}: no server `{name}`", spec.system.file)))?;
        // The whole ELF: the ramdisk's copy has no symbols (`elf_strip`).
        let path = crate::server_binary_dir(&root).join(&server.binary);
        let bytes = std::fs::read(&path).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        let (functions, (start, end)) = elf_functions(name, &format!("[{name}] "), &bytes, 0)?;
        let range = format!("{start:#x}..{:#x}", end - 1);
        if !ranges.contains(&range) {
            ranges.push(range);
        }
        user.push((server.core as u32, functions));
    }
    let boot = crate::Boot {
        name: spec.name,
        boot_args: spec.boot_args,
        system: Some(&spec.system),
        binaries: &build.binaries,
    };
    let (dir, image) = crate::prepare_image(&root, &build.kernel, &build.builder, &boot, &opts)?;
    let mut cmd = crate::qemu::command(&opts, &image, &dir)?;
    cmd.args(["-d", "in_asm,exec,nochain", "-dfilter", &ranges.join(",")]);
    cmd.args(["-D", "/dev/stderr"]);
    println!("xtask: {}", crate::qemu::show(&cmd));
    println!("xtask: counting instructions: every translation-block run of kernel code is logged (slow: minutes)");

    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::new(format!("starting QEMU: {e}")))?;
    let log = child.stderr.take().expect("piped");
    let serial = child.stdout.take().expect("piped");
    let (functions, trap_stubs) = (kernel.functions.clone(), kernel.trap_stubs);
    let counter_thread = std::thread::spawn(move || {
        let mut counter = Counter::new(functions, MARKERS);
        counter.set_interrupt_entries(trap_stubs, trap_stubs + TRAP_STUBS_SIZE);
        for (cpu, functions) in user {
            counter.add_cpu_functions(cpu, functions);
        }
        for line in BufReader::new(log).lines().map_while(Result::ok) {
            counter.feed(&line);
        }
        counter
    });
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(serial).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let started = Instant::now();
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(3600));
    let mut serial_log = String::new();
    let mut done = false;
    while !done && started.elapsed() < timeout {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(line) => {
                done = line.contains(spec.done);
                if line.contains("BENCH ") && !line.contains("BENCH counters") {
                    println!("  | {}", line.trim_end());
                }
                serial_log.push_str(&line);
                serial_log.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    std::fs::write(dir.join("serial.log"), &serial_log).map_err(|e| Error::new(format!("serial.log: {e}")))?;
    let counter = counter_thread.join().map_err(|_| Error::new("the log counter panicked"))?;
    if !done {
        return Err(Error::new(format!(
            "the boot did not print `{}` within {} s (serial log in {}/serial.log)",
            spec.done,
            timeout.as_secs(),
            dir.display()
        )));
    }
    let expected_offset = format!("virtual_address_offset: {KERNEL_OFFSET:#x}");
    if !serial_log.contains(&expected_offset) {
        return Err(Error::new(format!(
            "the bootloader did not map the kernel at {KERNEL_OFFSET:#x} (no `{expected_offset}` line): the symbols would not match"
        )));
    }
    Ok(Counted { counter, serial: serial_log, dir })
}

/// A system file with one `args` string replaced (the counted boots run
/// fewer messages: the log has a line per translation-block run).
fn system_with_args(path: &str, from: &str, to: &str) -> Result<System, Error> {
    let mut system = System::read(&root().join(path))?;
    if !system.text.contains(from) {
        return Err(Error::new(format!("{}: the server args no longer hold `{from}`", system.file)));
    }
    system.text = system.text.replacen(from, to, 1);
    Ok(system)
}

pub fn cmd_bench_instructions(opts: &QemuOptions) -> Result<ExitCode, Error> {
    let build = crate::bench_build()?;
    let kernel_elf =
        std::fs::read(&build.kernel).map_err(|e| Error::new(format!("{}: {e}", build.kernel.display())))?;
    let (functions, text) = elf_functions("the kernel", "", &kernel_elf, KERNEL_OFFSET)?;
    let trap_stubs = KERNEL_OFFSET + elf_symbol("the kernel", &kernel_elf, TRAP_STUBS)?;
    let missing: Vec<&&str> = MARKERS.iter().filter(|m| !functions.iter().any(|f| f.name == **m)).collect();
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "marker functions not in the kernel's symbols (inlined or renamed?): {missing:?}"
        )));
    }
    let kernel = Kernel { functions, text, trap_stubs };

    // Boot 1: bench.toml, the floors and the mover stream.
    let ipc = count_boot(
        &build,
        opts,
        &kernel,
        CountedBoot {
            name: "bench-instructions",
            system: system_with_args(crate::BENCH_SYSTEM, BENCH_ARGS, PROFILE_ARGS)?,
            // The counted floors stream the count `FLOOR_STREAM_MESSAGES` says.
            boot_args: "bench bench.system=instructions bench.floor_stream=200000",
            servers: &["benchclient", "echo"],
            // The phase after mover-stream began: mover-stream's counters are out.
            done: "BENCH stream name=mover-stream batch=8",
        },
    )?;
    let mover_stream = ipc.mark_phase("mover-stream");
    let mover_rtt = ipc.mark_phase("mover-rtt");
    let ipc_phases = [
        ReportedPhase {
            phase: "stream_send#1",
            what: "direct-ring-stream batch=1 slots=4096",
            messages: FLOOR_STREAM_MESSAGES,
        },
        ReportedPhase {
            phase: "stream_send#2",
            what: "direct-ring-stream batch=8 slots=4096",
            messages: FLOOR_STREAM_MESSAGES,
        },
        ReportedPhase {
            phase: "stream_send#4",
            what: "direct-ring-stream batch=1 slots=64",
            messages: FLOOR_STREAM_MESSAGES,
        },
        ReportedPhase { phase: "floor_send#1", what: "stream-floor slots=4096", messages: FLOOR_STREAM_MESSAGES },
        ReportedPhase { phase: "floor_send#2", what: "stream-floor slots=64", messages: FLOOR_STREAM_MESSAGES },
        ReportedPhase {
            phase: "ring_rtt_measure#1",
            what: "direct-ring-rtt (round trips)",
            messages: FLOOR_ROUND_TRIPS,
        },
        ReportedPhase {
            phase: "pingpong_measure#1",
            what: "cacheline-pingpong (round trips; the latency floor)",
            messages: FLOOR_ROUND_TRIPS,
        },
        ReportedPhase {
            phase: &mover_rtt,
            what: "mover-rtt rings=3 (round trips; cpu 0 the mover, cpu 1 benchclient, cpu 2 echo)",
            messages: MOVER_ROUND_TRIPS,
        },
        ReportedPhase {
            phase: &mover_stream,
            what: "mover-stream batch=1 (cpu 0 the mover, cpu 1 benchclient, cpu 2 echo)",
            messages: MOVER_STREAM_MESSAGES,
        },
    ];
    println!("{}", report(&ipc.counter, &ipc_phases, 8));
    println!("xtask: serial log in {}/serial.log", ipc.dir.display());
    let mut problems_found: Vec<String> = problems(&ipc.counter, &ipc_phases);

    // Boot 2: bench-sizes.toml, only its cost rows (one-slot messages
    // through the mover without and with a descriptor; issue 15).
    let sizes = count_boot(
        &build,
        opts,
        &kernel,
        CountedBoot {
            name: "bench-instructions-sizes",
            system: system_with_args(SIZES_SYSTEM, SIZES_ARGS, SIZES_PROFILE_ARGS)?,
            boot_args: "bench bench.system=instructions-sizes bench.floors=off",
            servers: &["sizes-client", "sizes-peer"],
            done: "sizes: client done",
        },
    )?;
    let (plain, descriptor) = (sizes.mark_phase("sizes-cost-plain"), sizes.mark_phase("sizes-cost-descriptor"));
    let sizes_phases = [
        ReportedPhase {
            phase: &plain,
            what: "sizes-cost-stream path=mover-plain (cpu 0 the mover, cpu 1 sizes-client, cpu 2 sizes-peer)",
            messages: COST_MESSAGES,
        },
        ReportedPhase {
            phase: &descriptor,
            what: "sizes-cost-stream path=mover-descriptor (the same messages with a descriptor)",
            messages: COST_MESSAGES,
        },
    ];
    println!("{}", report(&sizes.counter, &sizes_phases, 8));
    println!("xtask: serial log in {}/serial.log", sizes.dir.display());
    problems_found.extend(problems(&sizes.counter, &sizes_phases));
    if let Some(line) = descriptor_cost(&sizes.counter, &plain, &descriptor) {
        println!("{line}");
    }
    if problems_found.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(Error::new(format!("the counts are not usable: {}", problems_found.join("; "))))
}

/// The issue-15 target line: the mover's instructions per message with a
/// descriptor over without (the mover runs on CPU 0 in bench-sizes.toml).
fn descriptor_cost(counter: &Counter, plain: &str, descriptor: &str) -> Option<String> {
    let per =
        |phase: &str| counter.counts(phase).get(&SIZES_MOVER_CPU).map(|c| c.instructions as f64 / COST_MESSAGES as f64);
    let (without, with) = (per(plain)?, per(descriptor)?);
    let ratio = with / without;
    Some(format!(
        "\nthe mover's per-message cost with a descriptor / without (instructions; target <= 1.2x): {ratio:.2}x [{}] ({with:.1} / {without:.1} instructions per message)",
        if ratio <= 1.2 { "met" } else { "MISSED" }
    ))
}
