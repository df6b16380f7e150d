//! `cargo xtask bench instructions`: executed guest instructions per
//! message on the kernel's stream paths (the direct ring, the stream
//! floor, the mover), by function, from QEMU's TCG log (issue 17).
//!
//! ```text
//! bench.toml (benchclient's counts cut 10x) ─▶ image ─▶ QEMU -d in_asm,exec,nochain
//!                            -dfilter <kernel text>,<benchclient's and echo's text> -D /dev/stderr
//!   stderr (the log) ─▶ bench::instructions::Counter ◀─ kernel and server ELF symbols (`object`)
//!   stdout (serial)  ─▶ phase names, messages; QEMU stopped once mover-stream has ended
//! ```
//!
//! Kernel code and the user code of the mover stream's two servers
//! (benchclient, echo; `[server]` before their functions' names) are
//! counted (the filter); other servers' code is not (none runs in the
//! phases reported). The count is
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
/// The servers whose user code is counted too, by the CPU they run on in
/// bench.toml (checked): the two ends of the mover stream.
const USER_CPUS: &[(u32, &str)] = &[(1, "benchclient"), (2, "echo")];

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

pub fn cmd_bench_instructions(opts: &QemuOptions) -> Result<ExitCode, Error> {
    let build = crate::bench_build()?;
    let root = root();
    let mut system = System::read(&root.join(crate::BENCH_SYSTEM))?;
    if !system.text.contains(BENCH_ARGS) {
        return Err(Error::new(format!("{}: benchclient's args no longer hold `{BENCH_ARGS}`", system.file)));
    }
    system.text = system.text.replacen(BENCH_ARGS, PROFILE_ARGS, 1);
    let kernel_elf =
        std::fs::read(&build.kernel).map_err(|e| Error::new(format!("{}: {e}", build.kernel.display())))?;
    let (functions, (text_start, text_end)) = elf_functions("the kernel", "", &kernel_elf, KERNEL_OFFSET)?;
    let trap_stubs = KERNEL_OFFSET + elf_symbol("the kernel", &kernel_elf, TRAP_STUBS)?;
    // The servers of the mover stream, on the CPUs bench.toml gives them.
    let mut user = Vec::new();
    for &(cpu, server) in USER_CPUS {
        let line = format!("name = \"{server}\"\ncore = {cpu}\n");
        if !system.text.contains(&line) {
            return Err(Error::new(format!("{}: `{server}` is no longer on core {cpu}", system.file)));
        }
        // The whole ELF: the ramdisk's copy has no symbols (`elf_strip`).
        let path = crate::server_binary_dir(&root).join(server);
        let bytes = std::fs::read(&path).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        user.push((cpu, elf_functions(server, &format!("[{server}] "), &bytes, 0)?));
    }
    let missing: Vec<&&str> = MARKERS.iter().filter(|m| !functions.iter().any(|f| f.name == **m)).collect();
    if !missing.is_empty() {
        return Err(Error::new(format!(
            "marker functions not in the kernel's symbols (inlined or renamed?): {missing:?}"
        )));
    }

    let mut opts = opts.clone();
    opts.echo = false;
    let names: Vec<String> = build.binaries.iter().map(|(n, _)| n.clone()).collect();
    system.check(Some(opts.smp), &names)?;
    let boot = crate::Boot {
        name: "bench-instructions",
        boot_args: "bench bench.system=instructions",
        system: Some(&system),
        binaries: &build.binaries,
    };
    let (dir, image) = crate::prepare_image(&root, &build.kernel, &build.builder, &boot, &opts)?;
    let mut cmd = crate::qemu::command(&opts, &image, &dir)?;
    let mut ranges = vec![format!("{text_start:#x}..{:#x}", text_end - 1)];
    ranges.extend(user.iter().map(|(_, (_, (start, end)))| format!("{start:#x}..{:#x}", end - 1)));
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
    let counter_thread = std::thread::spawn(move || {
        let mut counter = Counter::new(functions, MARKERS);
        counter.set_interrupt_entries(trap_stubs, trap_stubs + TRAP_STUBS_SIZE);
        for (cpu, (functions, _)) in user {
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
                // The phase after mover-stream began: mover-stream's counters are out.
                done = line.contains("BENCH stream name=mover-stream batch=8");
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
            "the boot did not reach the mover's batch-8 stream within {} s (serial log in {}/serial.log)",
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

    // The BENCH_MARK calls come in begin/end pairs; the k-th pair is the
    // k-th phase whose counters the kernel printed.
    let mut mark_phases: Vec<&str> = Vec::new();
    for line in serial_log.lines() {
        if let Some(rest) = line.split_once("BENCH counters phase=").map(|(_, r)| r)
            && let Some(name) = rest.split(' ').next()
            && mark_phases.last() != Some(&name)
        {
            mark_phases.push(name);
        }
    }
    let mover_stream_mark = mark_phases
        .iter()
        .position(|p| *p == "mover-stream")
        .map(|i| format!("mark#{}", 2 * i + 1))
        .unwrap_or_else(|| "mark#?".to_string());
    let phases = [
        ReportedPhase { phase: "stream_send#1", what: "direct-ring-stream batch=1", messages: FLOOR_STREAM_MESSAGES },
        ReportedPhase { phase: "stream_send#2", what: "direct-ring-stream batch=8", messages: FLOOR_STREAM_MESSAGES },
        ReportedPhase { phase: "floor_send#1", what: "stream-floor slots=4096", messages: FLOOR_STREAM_MESSAGES },
        ReportedPhase { phase: "floor_send#2", what: "stream-floor slots=64", messages: FLOOR_STREAM_MESSAGES },
        ReportedPhase {
            phase: "ring_rtt_measure#1",
            what: "direct-ring-rtt (round trips)",
            messages: FLOOR_ROUND_TRIPS,
        },
        ReportedPhase {
            phase: &mover_stream_mark,
            what: "mover-stream batch=1 (cpu 0 the mover, cpu 1 benchclient, cpu 2 echo)",
            messages: MOVER_STREAM_MESSAGES,
        },
    ];
    println!("{}", report(&counter, &phases, 8));
    println!("xtask: serial log in {}/serial.log", dir.display());
    let problems = problems(&counter, &phases);
    if problems.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    Err(Error::new(format!("the counts are not usable: {}", problems.join("; "))))
}
