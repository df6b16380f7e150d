//! `cargo xtask`: the one entry point for people and CI.
//!
//! ```text
//! cargo xtask run   [options] [-- QEMU ARGS]   build, boot, stream the console
//! cargo xtask test  [--filter ID|NAME] [--host-only | --qemu-only] [--list]
//! cargo xtask bench [ipc|sizes|power|ringbuf|net|instructions] [--runs N]
//! cargo xtask faults [--injections N] [--minutes M] [--smp S]   the fault campaign
//! cargo xtask check-config FILE... [--smp N]  the kernel's config checks, on the host
//! cargo xtask check-docs                      every `cargo xtask` line in the docs still parses
//! cargo xtask check-deps                      crate dependencies match docs/README.md
//! cargo xtask setup                           install what is missing
//! ```
//! Every command line is parsed into an [`Invocation`] first; `check-docs`
//! runs the documented lines through the same parser and [`dry_run`], which
//! checks what a run would use (system files, filters) without building or
//! booting anything.
//! Every step is a plain command a person can run; CI runs `cargo xtask test`.

mod cases;
mod deps_check;
mod docs_check;
mod elf_mutations;
mod elf_strip;
mod faults;
mod instructions;
mod net;
mod net_bench;
mod qemu;
mod setup;
mod tune;
mod watch;
mod workspace;

use qemu::{Firmware, QemuOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;

/// An error that ends the command with one clear line.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    pub fn new(msg: impl Into<String>) -> Error {
        Error(msg.into())
    }
}

/// Runs `cmd`, failing with a line naming `what` if it does not succeed.
pub fn run_checked(cmd: &mut Command, what: &str) -> Result<(), Error> {
    let status = cmd.status().map_err(|e| Error::new(format!("{what}: cannot start {:?}: {e}", cmd.get_program())))?;
    if status.success() { Ok(()) } else { Err(Error::new(format!("{what} failed ({status})"))) }
}

const USAGE: &str = "usage: cargo xtask <run|test|bench|tune|faults|check-config|check-docs|check-deps|setup> [options]

run options:
  --smp N              processors (default 4; the default system needs 4)
  --firmware bios|uefi (default bios)
  --accel tcg|tcg-single|kvm
                       (default tcg: one host thread per vCPU, tcg-single for a system
                       with a device; tcg-single: one thread for all vCPUs,
                       round-robin; kvm only on real hardware hosts)
  --memory SIZE        guest memory, QEMU syntax (default 256M)
  --timeout SECS       kill QEMU after this long (run: no limit, the run ends when every
                       server that is not a service has stopped, or on Ctrl-C; bench: 1800)
  --cpu MODEL          QEMU CPU model (default max)
  --gdb                start paused with QEMU's gdbstub on :1234
  --config FILE        system TOML to boot (default qemu-scripts/systems/default.toml)
  --boot-args TEXT     kernel command line (e.g. \"test=SMP0001\")
  --watch              live per-core view (role, polling/pausing/asleep, msgs/s, P-state
                       writes, wake-ups) redrawn every 500 ms; plain text if not a terminal
  --watch-ms MS        the view's period (implies --watch; 50..=60000)
  (run: typing `power core=N key=value ...` on the console changes a core's policy live)
  -- ARGS...           passed to QEMU unchanged
test options:
  --filter TEXT        run only tests whose ID (PWR0006), name, or kernel
                       test id (SMP0003) contains TEXT
  --host-only          only the host steps
  --qemu-only          only the in-QEMU cases
  --list               print the selected steps and cases with their IDs
check-config:
  cargo xtask check-config FILE... [--smp N]   the kernel's own checks, on the host
check-docs:
  cargo xtask check-docs   every `cargo xtask` line in README.md and docs/*.md
                           code blocks parses, its systems and filters check
check-deps:
  cargo xtask check-deps   our crates' path dependencies match docs/README.md
bench:
  cargo xtask tune power [--max-p99-us X] [--sleep hlt,mwait] [--pause-us 0,5,20,50,200,1000]
                       [--spin-polls 0] [--accel A]
                       sweep echo's power policy (one boot each; default 7 boots, ~4 min
                       under TCG): table, target/tune/power.png with the Pareto front, and
                       with --max-p99-us the TOML to paste
  cargo xtask bench [ipc|sizes|power|ringbuf|net|instructions] [--runs N] [--smp N] [--accel A] [--cpu M]
                       (no word: ipc, sizes, then power)
                       ipc: boots qemu-scripts/systems/bench.toml with -smp 3
                       and bench-writers.toml with -smp 5 (rings written by
                       ring-writer servers) and bench-twohop.toml with -smp 4
                       (two hops: mover and nested calls), --accel tcg-single unless told otherwise,
                       prints the table, writes target/bench/ipc.{csv,json,png};
                       fails when a row's counters contradict its path
                       --runs N: N interleaved runs of every boot (default 1);
                       reports the median of the medians and min..max per figure
                       sizes: boots qemu-scripts/systems/bench-sizes.toml with -smp 3: messages
                       of 64 B..64 KiB inline or as descriptors, through the mover or a direct
                       ring, every byte checked; writes target/bench/sizes.{csv,json,png}
                       power: boots qemu-scripts/systems/power-bench/<policy>.toml per
                       policy (spin only outside TCG), writes target/bench/power.{csv,json}
                       net: boots qemu-scripts/systems/net.toml once per power policy with
                       ports forwarded to 127.0.0.1, loads the KV service from the host at
                       1, 8 and 64 connections (closed and open loop, every reply checked)
                       and UDP echo; writes target/bench/net.{csv,json,png}
                       --rate R or --rate R1,R8,R64: the open loop's offered requests/s
                       (default: half the first boot's closed-loop rate; every boot gets
                       the same rates, so runs with one --rate compare)
                       --policies P,Q: boot only these policies, in this order (default
                       pause,mwait,hlt under TCG, spin first elsewhere)
                       instructions: boots bench.toml (a tenth of benchclient's messages)
                       with QEMU logging every run of kernel code, prints guest
                       instructions per message by function: direct ring, stream floor,
                       the mover (~10 min)
faults:
  cargo xtask faults [--injections N] [--minutes M] [--smp S] [--bad-mean K] [--config FILE]
                       the fault campaign (docs/faults.md): boots qemu-scripts/systems/faults.toml
                       (-smp 8) with injector servers restarted by policy while ping/echo and a
                       stream check every message; stops after about N injected faults and
                       garbage messages (default 100000) or M minutes (default 30); prints the
                       table, writes target/faults/faults.{csv,json}; fails if a checked message
                       was lost or duplicated, the kernel panicked or the run did not complete";

/// The workspace root (xtask runs with it as its directory under
/// `cargo xtask`; fall back to this crate's parent).
pub fn root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(Path::to_path_buf).unwrap_or(here)
}

/// Builds the kernel ELF (stable, bare-metal target) and returns its path.
pub fn build_kernel(root: &Path) -> Result<PathBuf, Error> {
    run_checked(
        Command::new("cargo").current_dir(root).args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "kernel",
            "--target",
            setup::KERNEL_TARGET,
        ]),
        "building the kernel",
    )?;
    Ok(root.join("target").join(setup::KERNEL_TARGET).join("release").join("kernel"))
}

/// Builds the image builder (pinned nightly; cached by cargo).
pub fn build_image_builder(root: &Path) -> Result<PathBuf, Error> {
    let dir = root.join("qemu-scripts").join("image-builder");
    run_checked(
        Command::new("cargo")
            .current_dir(&dir)
            .env("RUSTUP_TOOLCHAIN", setup::NIGHTLY)
            .env_remove("RUSTC")
            .env_remove("CARGO")
            .env_remove("RUSTFLAGS")
            .args(["build", "--quiet", "--release", "--locked"]),
        "building the image builder (first build takes ~2-3 minutes)",
    )?;
    Ok(dir.join("target").join("release").join("image-builder"))
}

/// The user-space servers: `(package, binary names)` for every package
/// under `servers/` with a binary target, found by `cargo metadata`.
pub fn server_crates(root: &Path) -> Result<Vec<(String, Vec<String>)>, Error> {
    let packages = workspace::packages(root)?;
    Ok(workspace::servers(&packages).into_iter().map(|p| (p.name.clone(), p.binaries.clone())).collect())
}

/// Names of every server binary (what a system TOML's `binary` may name).
pub fn server_binary_names(root: &Path) -> Result<Vec<String>, Error> {
    Ok(server_crates(root)?.into_iter().flat_map(|(_, bins)| bins).collect())
}

/// Builds every server for the bare-metal target as a static executable
/// (the kernel loads them at their link address) and returns
/// `(name, ELF bytes)` pairs: the part of each ELF the kernel loads
/// (`elf_strip`), for the ramdisk.
pub fn build_servers(root: &Path) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let servers = server_crates(root)?;
    if servers.is_empty() {
        return Err(Error::new("no server crates found under servers/ (packages with a binary target)"));
    }
    let target_dir = root.join("target").join("servers");
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root)
        .env("RUSTFLAGS", "-C relocation-model=static")
        .args(["build", "--quiet", "--release", "--target", setup::KERNEL_TARGET, "--target-dir"])
        .arg(&target_dir);
    for (package, _) in &servers {
        cmd.args(["-p", package]);
    }
    run_checked(&mut cmd, "building the servers")?;
    let out = server_binary_dir(root);
    servers
        .iter()
        .flat_map(|(_, bins)| bins)
        .map(|name| {
            std::fs::read(out.join(name))
                .map(|bytes| (name.to_string(), elf_strip::loaded_part(&bytes).unwrap_or(bytes)))
                .map_err(|e| Error::new(format!("server `{name}`: {e}")))
        })
        .collect()
}

/// Where `build_servers` leaves the whole server ELFs (with symbols; what
/// it returns for the ramdisk is only the part the kernel loads).
pub fn server_binary_dir(root: &Path) -> PathBuf {
    root.join("target").join("servers").join(setup::KERNEL_TARGET).join("release")
}

/// A system description to boot: its file name (for messages) and text.
pub struct System {
    pub file: String,
    pub text: String,
}

impl System {
    pub fn read(path: &Path) -> Result<System, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        Ok(System { file: path.display().to_string(), text })
    }

    /// The same checks the kernel makes, before anything is built into an
    /// image: syntax, keys, ranges, cores (given `smp`) and binaries. Too
    /// few cores is reported as the `--smp` to pass.
    pub fn check(&self, smp: Option<u32>, binaries: &[String]) -> Result<system_config::SystemConfig, Error> {
        let render = |e: system_config::ConfigError| Error::new(e.render(&self.file, &self.text));
        let config = system_config::parse(&self.text).map_err(render)?;
        if let Some(smp) = smp {
            let needs = CoresNeeded::of(&config);
            if (smp as usize) < needs.count {
                return Err(Error::new(format!("{}: {needs}; --smp {smp} is too few", self.file)));
            }
        }
        let machine = system_config::Machine { core_count: smp.map(|n| n as usize), binaries: Some(binaries.to_vec()) };
        config.validate(&machine).map_err(render)?;
        Ok(config)
    }
}

/// How many cores a system uses, and for what.
pub struct CoresNeeded {
    pub count: usize,
    uses: Vec<String>,
}

impl CoresNeeded {
    pub fn of(config: &system_config::SystemConfig) -> CoresNeeded {
        let list = |cores: &[usize]| {
            let words: Vec<String> = cores.iter().map(usize::to_string).collect();
            match words.len() {
                0 | 1 => words.join(""),
                n => format!("{} and {}", words[..n - 1].join(", "), words[n - 1]),
            }
        };
        let plural = |n: usize, one: &str, many: &str| if n == 1 { format!("1 {one}") } else { format!("{n} {many}") };
        let movers = &config.mover_cores;
        let servers: Vec<usize> = config.servers.iter().map(|s| s.core).collect();
        let mut uses = vec!["core 0 for the kernel".to_string()];
        if !movers.is_empty() {
            uses.push(format!(
                "{} on core{} {}",
                plural(movers.len(), "mover", "movers"),
                if movers.len() == 1 { "" } else { "s" },
                list(movers)
            ));
        }
        if !servers.is_empty() {
            uses.push(format!(
                "{} on core{} {}",
                plural(servers.len(), "server", "servers"),
                if servers.len() == 1 { "" } else { "s" },
                list(&servers)
            ));
        }
        let used = movers.iter().chain(&servers).copied().max().unwrap_or(0);
        let power_max = config.power.cores.iter().map(|t| t.core).max().unwrap_or(0);
        if power_max > used {
            uses.push(format!("a [power.core.{power_max}] table"));
        }
        CoresNeeded { count: used.max(power_max) + 1, uses }
    }
}

impl std::fmt::Display for CoresNeeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "this system needs {} cores ({}): run with --smp {}", self.count, self.uses.join(", "), self.count)
    }
}

/// What to boot: the kernel command line and, optionally, a system.
pub struct Boot<'a> {
    pub name: &'a str,
    pub boot_args: &'a str,
    pub system: Option<&'a System>,
    /// Server binaries to pack as `servers/<name>`.
    pub binaries: &'a [(String, Vec<u8>)],
}

/// Builds the ramdisk and image for `boot` and runs it in QEMU.
pub fn boot(
    root: &Path,
    kernel: &Path,
    builder: &Path,
    boot: &Boot,
    opts: &QemuOptions,
) -> Result<qemu::Outcome, Error> {
    let (dir, image) = prepare_image(root, kernel, builder, boot, opts)?;
    let cmd = qemu::command(opts, &image, &dir)?;
    println!("xtask: {}", qemu::show(&cmd));
    if opts.gdb {
        println!("xtask: QEMU waits for gdb: `gdb {} -ex 'target remote :1234'`", kernel.display());
    }
    qemu::run(cmd, opts, &dir.join("serial.log"))
}

/// Writes `boot`'s ramdisk (command line, system, servers) and its disk
/// image into `target/qemu/<name>/`; returns that folder and the image.
pub fn prepare_image(
    root: &Path,
    kernel: &Path,
    builder: &Path,
    boot: &Boot,
    opts: &QemuOptions,
) -> Result<(PathBuf, PathBuf), Error> {
    let dir = qemu::run_dir(root, boot.name)?;
    let ramdisk = dir.join("ramdisk.tar");
    let names: Vec<String> = boot.binaries.iter().map(|(n, _)| format!("servers/{n}")).collect();
    let mut files: Vec<(&str, &[u8])> = vec![("cmdline", boot.boot_args.as_bytes())];
    if let Some(system) = boot.system {
        files.push(("system.toml", system.text.as_bytes()));
    }
    for (name, (_, bytes)) in names.iter().zip(boot.binaries) {
        files.push((name, bytes));
    }
    let archive = boot_args::write::ustar(&files).map_err(|e| Error::new(format!("ramdisk: {e}")))?;
    qemu::write_if_changed(&ramdisk, &archive)?;
    let image = dir.join(format!("{}.img", opts.firmware.name()));
    qemu::image(builder, kernel, &ramdisk, opts.firmware, &image)?;
    Ok((dir, image))
}

struct Args {
    words: Vec<String>,
    qemu_extra: Vec<String>,
}

impl Args {
    fn take_flag(&mut self, name: &str) -> bool {
        if let Some(i) = self.words.iter().position(|w| w == name) {
            self.words.remove(i);
            true
        } else {
            false
        }
    }

    fn take_value(&mut self, name: &str) -> Result<Option<String>, Error> {
        let Some(i) = self.words.iter().position(|w| w == name) else { return Ok(None) };
        if i + 1 >= self.words.len() {
            return Err(Error::new(format!("`{name}` needs a value")));
        }
        let value = self.words.remove(i + 1);
        self.words.remove(i);
        Ok(Some(value))
    }

    fn finish(self) -> Result<Vec<String>, Error> {
        if let Some(unknown) = self.words.iter().find(|w| w.starts_with('-')) {
            return Err(Error::new(format!("unknown option `{unknown}`\n\n{USAGE}")));
        }
        Ok(self.words)
    }
}

fn qemu_options(args: &mut Args) -> Result<QemuOptions, Error> {
    let mut opts = QemuOptions::default();
    if let Some(smp) = args.take_value("--smp")? {
        opts.smp = smp
            .parse()
            .ok()
            .filter(|n| (1..=64).contains(n))
            .ok_or_else(|| Error::new(format!("--smp: `{smp}` is not 1..=64")))?;
    }
    if let Some(fw) = args.take_value("--firmware")? {
        opts.firmware = match fw.as_str() {
            "bios" => Firmware::Bios,
            "uefi" => Firmware::Uefi,
            _ => return Err(Error::new(format!("--firmware: `{fw}` is not bios or uefi"))),
        };
    }
    if let Some(accel) = args.take_value("--accel")? {
        opts.accel = match accel.as_str() {
            "tcg" | "kvm" => accel,
            // One host thread runs every vCPU round-robin; `pause` hands the
            // thread to the next vCPU. Timing is then free of host
            // scheduling (see docs/benchmarks.md).
            "tcg-single" => "tcg,thread=single".to_string(),
            _ => return Err(Error::new(format!("--accel: `{accel}` is not tcg, tcg-single or kvm"))),
        };
    }
    if let Some(memory) = args.take_value("--memory")? {
        opts.memory = memory;
    }
    if let Some(secs) = args.take_value("--timeout")? {
        let secs: u64 =
            secs.parse().map_err(|_| Error::new(format!("--timeout: `{secs}` is not a number of seconds")))?;
        opts.timeout = Some(Duration::from_secs(secs));
    }
    if let Some(cpu) = args.take_value("--cpu")? {
        opts.cpu = cpu;
    }
    opts.gdb = args.take_flag("--gdb");
    opts.extra = std::mem::take(&mut args.qemu_extra);
    Ok(opts)
}

/// The system `cargo xtask run` boots unless `--config` says otherwise.
pub const DEFAULT_SYSTEM: &str = "qemu-scripts/systems/default.toml";

/// One parsed command line: what `cargo xtask` was asked to do.
pub enum Invocation {
    Help,
    Run {
        opts: QemuOptions,
        accel_given: bool,
        boot_args: String,
        config: Option<String>,
        watch_ms: Option<u64>,
    },
    Test(cases::TestOptions),
    /// `net`: `bench net`'s own options (`--rate`, `--policies`).
    Bench {
        which: Benchmark,
        opts: QemuOptions,
        runs: u32,
        net: net_bench::NetBenchOptions,
    },
    Faults(faults::FaultsOptions),
    Tune {
        opts: QemuOptions,
        options: tune::TuneOptions,
    },
    CheckConfig {
        files: Vec<String>,
        smp: Option<u32>,
    },
    CheckDocs,
    CheckDeps,
    Setup,
}

/// `cargo xtask bench [WHICH]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Benchmark {
    Ringbuf,
    Ipc,
    Power,
    /// The message-size sweep (`systems/bench-sizes.toml`).
    Sizes,
    /// The network service (issue 16): one boot per power policy, loaded from the host.
    Net,
    /// Instructions per message from QEMU's log (issue 17).
    Instructions,
    /// IPC, then sizes, then power.
    All,
}

/// Parses the words after `cargo xtask` (QEMU arguments after `--` included).
pub fn parse(mut words: Vec<String>) -> Result<Invocation, Error> {
    let qemu_extra = match words.iter().position(|w| w == "--") {
        Some(i) => {
            let extra = words.split_off(i + 1);
            words.pop();
            extra
        }
        None => Vec::new(),
    };
    if words.is_empty() || ["--help", "-h", "help"].contains(&words[0].as_str()) {
        return Ok(Invocation::Help);
    }
    let command = words.remove(0);
    let mut args = Args { words, qemu_extra };
    let no_more = |args: Args| -> Result<(), Error> {
        let rest = args.finish()?;
        if rest.is_empty() { Ok(()) } else { Err(Error::new(format!("unexpected arguments {rest:?}\n\n{USAGE}"))) }
    };
    let only_words = |args: &Args, command: &str| {
        if args.qemu_extra.is_empty() {
            Ok(())
        } else {
            Err(Error::new(format!("`{command}` takes no QEMU arguments after `--`")))
        }
    };
    match command.as_str() {
        "run" => {
            let accel_given = args.words.iter().any(|w| w == "--accel");
            let opts = qemu_options(&mut args)?;
            let boot_args = args.take_value("--boot-args")?.unwrap_or_default();
            let config = args.take_value("--config")?;
            let watch = args.take_flag("--watch");
            let watch_ms = match args.take_value("--watch-ms")? {
                Some(text) => Some(
                    text.parse::<u64>()
                        .ok()
                        .filter(|ms| (50..=60_000).contains(ms))
                        .ok_or_else(|| Error::new(format!("--watch-ms: `{text}` is not 50..=60000")))?,
                ),
                None if watch => Some(500),
                None => None,
            };
            no_more(args)?;
            Ok(Invocation::Run { opts, accel_given, boot_args, config, watch_ms })
        }
        "test" => {
            only_words(&args, "test")?;
            Ok(Invocation::Test(cases::TestOptions::parse(args)?))
        }
        "bench" => {
            let smp_given = args.words.iter().any(|w| w == "--smp");
            let accel_given = args.words.iter().any(|w| w == "--accel");
            let mut opts = qemu_options(&mut args)?;
            if !smp_given {
                opts.smp = 3;
            }
            let runs = match args.take_value("--runs")? {
                None => 1,
                Some(text) => text
                    .parse()
                    .ok()
                    .filter(|n| (1..=100).contains(n))
                    .ok_or_else(|| Error::new(format!("--runs: `{text}` is not 1..=100")))?,
            };
            let rates = args.take_value("--rate")?;
            let policies = args.take_value("--policies")?;
            if !accel_given {
                // Multi-threaded TCG with more spinning vCPUs than host cores
                // measures the host scheduler, not IPC (docs/benchmarks.md).
                opts.accel = "tcg,thread=single".to_string();
            }
            let net_given = rates.is_some() || policies.is_some();
            let net = net_bench::NetBenchOptions::parse(rates.as_deref(), policies.as_deref(), &opts.accel)
                .map_err(Error::new)?;
            let rest = args.finish()?;
            let which = match rest.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
                [] => Benchmark::All,
                ["ringbuf"] => Benchmark::Ringbuf,
                ["ipc"] => Benchmark::Ipc,
                ["power"] => Benchmark::Power,
                ["sizes"] => Benchmark::Sizes,
                ["net"] => Benchmark::Net,
                ["instructions"] => Benchmark::Instructions,
                [other] => {
                    return Err(Error::new(format!(
                        "unknown benchmark `{other}`; available: ipc, sizes, power (all three by default), ringbuf, net, instructions"
                    )));
                }
                more => return Err(Error::new(format!("one benchmark at a time, not {more:?}"))),
            };
            if matches!(which, Benchmark::Ringbuf | Benchmark::Net | Benchmark::Instructions) && runs != 1 {
                return Err(Error::new("--runs is for the in-guest benchmarks (ipc, power), not ringbuf or net"));
            }
            if which != Benchmark::Net && net_given {
                return Err(Error::new("--rate and --policies are for `bench net`"));
            }
            Ok(Invocation::Bench { which, opts, runs, net })
        }
        "tune" => {
            let accel_given = args.words.iter().any(|w| w == "--accel");
            let mut opts = qemu_options(&mut args)?;
            opts.smp = 3;
            if !accel_given {
                opts.accel = "tcg,thread=single".to_string();
            }
            let options = tune::TuneOptions::parse(&mut args)?;
            let rest = args.finish()?;
            if rest != ["power"] {
                return Err(Error::new(format!("usage: cargo xtask tune power [options]; got {rest:?}")));
            }
            Ok(Invocation::Tune { opts, options })
        }
        "faults" => {
            let options = faults::FaultsOptions::parse(&mut args)?;
            no_more(args)?;
            Ok(Invocation::Faults(options))
        }
        "check-config" => {
            only_words(&args, "check-config")?;
            let smp = match args.take_value("--smp")? {
                Some(n) => Some(
                    n.parse()
                        .ok()
                        .filter(|n| (1..=64).contains(n))
                        .ok_or_else(|| Error::new(format!("--smp: `{n}` is not 1..=64")))?,
                ),
                None => None,
            };
            let files = args.finish()?;
            if files.is_empty() {
                return Err(Error::new("usage: cargo xtask check-config FILE... [--smp N]"));
            }
            Ok(Invocation::CheckConfig { files, smp })
        }
        "check-docs" | "check-deps" | "setup" => {
            only_words(&args, &command)?;
            no_more(args)?;
            Ok(match command.as_str() {
                "check-docs" => Invocation::CheckDocs,
                "check-deps" => Invocation::CheckDeps,
                _ => Invocation::Setup,
            })
        }
        other => Err(Error::new(format!("unknown command `{other}`\n\n{USAGE}"))),
    }
}

/// The system files a benchmark boots.
fn bench_systems(which: Benchmark) -> Vec<String> {
    let ipc = || [BENCH_SYSTEM, BENCH_WRITERS_SYSTEM, BENCH_TWOHOP_SYSTEM].map(str::to_string);
    let power = || POWER_POLICIES.iter().map(|p| format!("qemu-scripts/systems/power-bench/{p}.toml"));
    match which {
        Benchmark::Ringbuf | Benchmark::Net => Vec::new(),
        Benchmark::Ipc => ipc().to_vec(),
        Benchmark::Instructions => vec![BENCH_SYSTEM.to_string()],
        Benchmark::Power => power().collect(),
        Benchmark::Sizes => vec![BENCH_SIZES_SYSTEM.to_string()],
        Benchmark::All => ipc().into_iter().chain([BENCH_SIZES_SYSTEM.to_string()]).chain(power()).collect(),
    }
}

/// The `-smp` a benchmark system boots with: the one asked for (3 by
/// default; too few for a system is an error, as for `run`), except the
/// writers and two-hop systems, which get as many vCPUs as they need if
/// that is more (5: one core per ring writer; 4: client, relay, echo;
/// their reports show the boot's smp).
fn bench_smp(file: &str, system: &System, asked: u32) -> Result<u32, Error> {
    if file != BENCH_WRITERS_SYSTEM && file != BENCH_TWOHOP_SYSTEM {
        return Ok(asked);
    }
    let config = system_config::parse(&system.text).map_err(|e| Error::new(e.render(&system.file, &system.text)))?;
    Ok(asked.max(CoresNeeded::of(&config).count as u32))
}

/// Checks what `invocation` would use, without building or booting: every
/// system file it boots or checks exists and passes the host check with
/// its `-smp` (the default included), and a test filter selects something.
/// Files named in `reader_files` (written by the reader of a tutorial) are
/// exempt from existing.
pub fn dry_run(invocation: &Invocation, reader_files: &[String]) -> Result<(), Error> {
    let root = root();
    let check = |file: &str, smp: Option<u32>| -> Result<(), Error> {
        if reader_files.iter().any(|f| f == file) {
            return Ok(());
        }
        let system = System::read(&root.join(file))?;
        system.check(smp, &server_binary_names(&root)?).map(|_| ())
    };
    match invocation {
        Invocation::Run { opts, config, .. } => check(config.as_deref().unwrap_or(DEFAULT_SYSTEM), Some(opts.smp)),
        Invocation::Test(opts) => cases::dry_run(opts),
        Invocation::Bench { which: Benchmark::Net, opts, .. } => net_bench::dry_run(opts),
        Invocation::Bench { which, opts, .. } => bench_systems(*which).iter().try_for_each(|f| {
            let smp = if reader_files.iter().any(|r| r == f) {
                opts.smp
            } else {
                bench_smp(f, &System::read(&root.join(f))?, opts.smp)?
            };
            check(f, Some(smp))
        }),
        Invocation::CheckConfig { files, smp } => files.iter().try_for_each(|f| check(f, *smp)),
        Invocation::Faults(options) => faults::dry_run(options),
        Invocation::Tune { .. } => check("qemu-scripts/systems/power-bench/hlt.toml", Some(3)),
        Invocation::Help | Invocation::CheckDocs | Invocation::CheckDeps | Invocation::Setup => Ok(()),
    }
}

fn execute(invocation: Invocation) -> Result<ExitCode, Error> {
    match invocation {
        Invocation::Help => {
            println!("{USAGE}");
            Ok(ExitCode::SUCCESS)
        }
        Invocation::Run { mut opts, accel_given, boot_args, config, watch_ms } => {
            let mut boot_args = boot_args;
            if let Some(ms) = watch_ms {
                boot_args = format!("{boot_args} watch_ms={ms}").trim().to_string();
                watch::set_period_ms(ms);
                opts.on_line = Some(watch::on_line);
            }
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                // What the person types reaches the guest's console (`power core=N ...`).
                opts.input = qemu::SerialInput::Terminal;
            }
            cmd_run(&opts, accel_given, &boot_args, config.as_deref())
        }
        Invocation::Test(opts) => cases::cmd_test(&opts),
        Invocation::Bench { which, opts, runs, net } => cmd_bench(which, &opts, runs, net),
        Invocation::Faults(options) => faults::cmd_faults(&options),
        Invocation::Tune { opts, options } => tune::cmd_tune(&opts, &options),
        Invocation::CheckConfig { files, smp } => cmd_check_config(&files, smp),
        Invocation::CheckDocs => docs_check::check_docs().map(|()| ExitCode::SUCCESS),
        Invocation::CheckDeps => deps_check::check_deps().map(|()| ExitCode::SUCCESS),
        Invocation::Setup => {
            setup::host_packages()?;
            setup::rust_toolchains(true)?;
            println!("xtask: everything is installed");
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn cmd_run(opts: &QemuOptions, accel_given: bool, boot_args: &str, config: Option<&str>) -> Result<ExitCode, Error> {
    let root = root();
    // The host check first: a wrong file or too few cores fails in a second.
    let system = System::read(&root.join(config.unwrap_or(DEFAULT_SYSTEM)))?;
    let checked = system.check(Some(opts.smp), &server_binary_names(&root)?)?;
    // A system granted a virtio-net device gets QEMU user networking with
    // forwarded ports (qemu-scripts/src/net.rs).
    let mut opts = opts.clone();
    if let Some(net) = net::for_system(&checked)? {
        opts.extra.extend(net.args);
        println!("{}", net.forward.line());
        // QEMU 7.2's multi-threaded TCG can crash on a driver's MMIO
        // (`cases::MTTCG_MMIO_SAFE`): unless told otherwise, one thread.
        if !accel_given && opts.accel == "tcg" {
            opts.accel = cases::MTTCG_MMIO_SAFE.to_string();
            println!(
                "xtask: a device system: single-threaded TCG (QEMU 7.2's multi-threaded TCG can crash on MMIO; --accel tcg to use it anyway)"
            );
        }
    }
    let opts = &opts;
    setup::host_packages()?;
    setup::rust_toolchains(false)?;
    let binaries = build_servers(&root)?;
    let names: Vec<String> = binaries.iter().map(|(n, _)| n.clone()).collect();
    system.check(Some(opts.smp), &names)?;
    let kernel = build_kernel(&root)?;
    let builder = build_image_builder(&root)?;
    let run = Boot { name: "run", boot_args, system: Some(&system), binaries: &binaries };
    let outcome = boot(&root, &kernel, &builder, &run, opts)?;
    println!("xtask: {} after {:.1} s", outcome.verdict(), outcome.elapsed.as_secs_f64());
    // Ending a run by hand is a normal way to end it (a system of services
    // runs until then); a timeout or the guest's failure is not.
    let ok = outcome.status == Some(qemu::GUEST_PASS) || (outcome.interrupted && !outcome.timed_out);
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn cmd_check_config(files: &[String], smp: Option<u32>) -> Result<ExitCode, Error> {
    let names = server_binary_names(&root())?;
    let mut bad = 0;
    for file in files {
        let system = System::read(Path::new(file))?;
        match system.check(smp, &names) {
            Ok(config) => println!(
                "{file}: ok ({} servers, mover cores {:?}{})",
                config.servers.len(),
                config.mover_cores,
                if smp.is_some() {
                    String::new()
                } else {
                    format!(
                        "; needs --smp {} or more, core numbers checked only with --smp",
                        CoresNeeded::of(&config).count
                    )
                }
            ),
            Err(Error(msg)) => {
                eprintln!("{msg}");
                bad += 1;
            }
        }
    }
    Ok(if bad == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Today's date and time in UTC, `YYYY-MM-DDTHH:MMZ`, from the system clock.
fn utc_now() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}Z", rem / 3600, rem % 3600 / 60)
}

/// The system the IPC benchmark boots.
pub(crate) const BENCH_SYSTEM: &str = "qemu-scripts/systems/bench.toml";
/// The IPC benchmark's second system: ring-scaling rows with rings written
/// by `ring-writer` servers on cores of their own (-smp 5).
const BENCH_WRITERS_SYSTEM: &str = "qemu-scripts/systems/bench-writers.toml";
/// The IPC benchmark's third system: the two-hop rows, client -> A -> B ->
/// client through the mover and with nested same-core calls (-smp 4).
const BENCH_TWOHOP_SYSTEM: &str = "qemu-scripts/systems/bench-twohop.toml";

/// The message-size sweep (-smp 3): inline slots and descriptors, through
/// the mover and over direct rings, 64 B to 64 KiB.
const BENCH_SIZES_SYSTEM: &str = "qemu-scripts/systems/bench-sizes.toml";

/// One boot of a benchmark plan: where its serial log goes, its system and
/// the `system=` tag its `BENCH-BEGIN` carries.
struct PlannedBoot {
    name: String,
    system: String,
    tag: String,
    ipc: bool,
}

/// The boots of one run of `which`, in order (`--runs N` repeats this list
/// N times: run 1 of every benchmark, then run 2, …).
fn bench_plan(which: Benchmark, opts: &QemuOptions) -> Vec<PlannedBoot> {
    let mut plan = Vec::new();
    if matches!(which, Benchmark::Ipc | Benchmark::All) {
        plan.push(PlannedBoot { name: "bench".into(), system: BENCH_SYSTEM.into(), tag: "ipc".into(), ipc: true });
        plan.push(PlannedBoot {
            name: "bench-writers".into(),
            system: BENCH_WRITERS_SYSTEM.into(),
            tag: "ipc-writers".into(),
            ipc: true,
        });
        plan.push(PlannedBoot {
            name: "bench-twohop".into(),
            system: BENCH_TWOHOP_SYSTEM.into(),
            tag: "ipc-twohop".into(),
            ipc: true,
        });
    }
    if matches!(which, Benchmark::Sizes | Benchmark::All) {
        plan.push(PlannedBoot {
            name: "bench-sizes".into(),
            system: BENCH_SIZES_SYSTEM.into(),
            tag: "sizes".into(),
            ipc: false,
        });
    }
    if matches!(which, Benchmark::Power | Benchmark::All) {
        let emulated = opts.accel.starts_with("tcg");
        for policy in POWER_POLICIES.iter().filter(|p| !(emulated && **p == "spin")) {
            plan.push(PlannedBoot {
                name: format!("bench-power-{policy}"),
                system: format!("qemu-scripts/systems/power-bench/{policy}.toml"),
                tag: format!("power-{policy}"),
                ipc: false,
            });
        }
    }
    plan
}

fn cmd_bench(
    which: Benchmark,
    opts: &QemuOptions,
    runs: u32,
    net: net_bench::NetBenchOptions,
) -> Result<ExitCode, Error> {
    if which == Benchmark::Ringbuf {
        run_checked(Command::new("cargo").current_dir(root()).args(["bench", "-p", "ringbuf"]), "ringbuf benchmark")?;
        return Ok(ExitCode::SUCCESS);
    }
    if which == Benchmark::Net {
        return net_bench::cmd_bench_net(opts, &net);
    }
    if which == Benchmark::Instructions {
        return instructions::cmd_bench_instructions(opts);
    }
    let plan = bench_plan(which, opts);
    if matches!(which, Benchmark::Power | Benchmark::All) && opts.accel.starts_with("tcg") {
        println!(
            "xtask: power benchmark: policy `spin` skipped under TCG: a poll loop without `pause` keeps the emulator thread \
             for a whole kick period (100 ms), so its round trips would measure QEMU's scheduler (docs/power.md); \
             `pause` is the never-sleeping policy measured here"
        );
    }
    if runs > 1 {
        println!("xtask: {runs} runs of {} boots each, interleaved (run 1 of every boot, then run 2, ...)", plan.len());
    }
    let build = bench_build()?;
    let (mut ipc_runs, mut power_runs, mut sizes_runs) = (Vec::new(), Vec::new(), Vec::new());
    for run in 1..=runs {
        for boot in &plan {
            let name = if runs > 1 { format!("{}-run{run}", boot.name) } else { boot.name.clone() };
            let boot_runs = bench_boot(&build, opts, &name, &boot.system, &boot.tag)?;
            let (sizes, boot_runs): (Vec<_>, Vec<_>) = boot_runs.into_iter().partition(bench::is_sizes_run);
            sizes_runs.extend(sizes);
            if boot.ipc { ipc_runs.extend(boot_runs) } else { power_runs.extend(boot_runs) }
        }
    }
    let out = bench_output_dir()?;
    let mut verdict = Ok(ExitCode::SUCCESS);
    if !ipc_runs.is_empty() {
        for (index, run) in ipc_runs.iter().enumerate() {
            if ipc_runs.len() > 1 {
                println!(
                    "==== IPC boot {} of {} (system={}) ====",
                    index + 1,
                    ipc_runs.len(),
                    run.begin_extra.get("system").map_or("-", String::as_str)
                );
            }
            println!("{}", bench::report_text(run));
        }
        if runs > 1 {
            print!("{}", bench::across_boots_text(&ipc_runs));
            // Target ratios per boot, one table per system (the writers
            // boot's targets are not the same figures as the ipc boot's).
            for boot in plan.iter().filter(|b| b.ipc) {
                let same: Vec<bench::Run> =
                    ipc_runs.iter().filter(|r| r.begin_extra.get("system") == Some(&boot.tag)).cloned().collect();
                let summary = bench::summary_text(&same);
                if !summary.is_empty() {
                    println!("system={}: {summary}", boot.tag);
                }
            }
        }
        let written = bench::write_outputs(&ipc_runs, &out).map_err(|e| Error::new(format!("writing results: {e}")))?;
        for path in written {
            println!("xtask: wrote {}", path.display());
        }
        verdict = counter_verdict(&ipc_runs);
    }
    if !sizes_runs.is_empty() {
        println!("{}", bench::sizes_report_text(&sizes_runs));
        let written =
            bench::write_sizes_outputs(&sizes_runs, &out).map_err(|e| Error::new(format!("writing results: {e}")))?;
        for path in written {
            println!("xtask: wrote {}", path.display());
        }
    }
    if !power_runs.is_empty() {
        println!("{}", bench::power_report_text(&power_runs));
        let written =
            bench::write_power_outputs(&power_runs, &out).map_err(|e| Error::new(format!("writing results: {e}")))?;
        for path in written {
            println!("xtask: wrote {}", path.display());
        }
    }
    verdict
}

/// Policies of the power benchmark, one boot each (`systems/power-bench/`).
const POWER_POLICIES: &[&str] = &["spin", "pause", "mwait", "hlt"];

/// What every benchmark boot needs, built once.
pub(crate) struct BenchBuild {
    pub(crate) binaries: Vec<(String, Vec<u8>)>,
    pub(crate) kernel: std::path::PathBuf,
    pub(crate) builder: std::path::PathBuf,
}

pub(crate) fn bench_build() -> Result<BenchBuild, Error> {
    setup::host_packages()?;
    setup::rust_toolchains(false)?;
    let root = root();
    let binaries = build_servers(&root)?;
    let kernel = build_kernel(&root)?;
    let builder = build_image_builder(&root)?;
    Ok(BenchBuild { binaries, kernel, builder })
}

/// Boots `system_file` (a path under the repository) with the `-smp` it
/// needs (at least the one asked for) and returns the parsed runs.
fn bench_boot(
    build: &BenchBuild,
    opts: &QemuOptions,
    name: &str,
    system_file: &str,
    tag: &str,
) -> Result<Vec<bench::Run>, Error> {
    let root = root();
    let system = System::read(&root.join(system_file))?;
    let mut opts = opts.clone();
    opts.smp = bench_smp(system_file, &system, opts.smp)?;
    let names: Vec<String> = build.binaries.iter().map(|(n, _)| n.clone()).collect();
    system.check(Some(opts.smp), &names)?;
    opts.echo = false;
    if opts.timeout.is_none() {
        opts.timeout = Some(Duration::from_secs(1800));
    }
    let accel_name = if opts.accel == "tcg,thread=single" { "tcg-single" } else { opts.accel.as_str() };
    let boot_args =
        format!("bench bench.accel={accel_name} bench.cpu={} bench.date={} bench.system={tag}", opts.cpu, utc_now());
    println!(
        "xtask: benchmark `{tag}`, -smp {} ({}), serial log in target/qemu/{name}/serial.log",
        opts.smp, opts.accel
    );
    let run = Boot { name, boot_args: &boot_args, system: Some(&system), binaries: &build.binaries };
    let outcome = boot(&root, &build.kernel, &build.builder, &run, &opts)?;
    if outcome.status != Some(qemu::GUEST_PASS) {
        let tail: Vec<&str> = outcome.serial.lines().rev().take(30).collect();
        for line in tail.iter().rev() {
            println!("  | {line}");
        }
        return Err(Error::new(format!("benchmark boot `{tag}` failed: {}", outcome.verdict())));
    }
    let mut runs = bench::parse(&outcome.serial)
        .map_err(|e| Error::new(format!("parsing the benchmark output of `{tag}`: {e}")))?;
    let host_cpus = std::thread::available_parallelism().map(|n| n.get() as u32).ok();
    for run in &mut runs {
        run.host_cpus = host_cpus;
    }
    println!("xtask: guest time {:.0} s", outcome.elapsed.as_secs_f64());
    Ok(runs)
}

fn bench_output_dir() -> Result<std::path::PathBuf, Error> {
    let out = root().join("target").join("bench");
    std::fs::create_dir_all(&out).map_err(|e| Error::new(format!("{}: {e}", out.display())))?;
    Ok(out)
}

/// Fails the benchmark when a row's phase counters contradict its path (a
/// same-core sync call without CR3 writes, a mover row with system calls):
/// the figures were written, but the zero next to them means nothing.
fn counter_verdict(runs: &[bench::Run]) -> Result<ExitCode, Error> {
    let failures = bench::counter_failures(runs);
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for failure in &failures {
        eprintln!("xtask: counter check failed: {failure}");
    }
    Err(Error::new(format!("{} row(s) with counters that contradict their path (see above)", failures.len())))
}

fn main() -> ExitCode {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let bare = words.is_empty();
    let result = parse(words).and_then(|invocation| match invocation {
        // `cargo xtask` alone prints the usage and fails, as a mistake would.
        Invocation::Help if bare => {
            println!("{USAGE}");
            Ok(ExitCode::FAILURE)
        }
        invocation => execute(invocation),
    });
    match result {
        Ok(code) => code,
        Err(Error(msg)) => {
            eprintln!("xtask: error: {msg}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod bench_tests {
    use super::*;

    fn bench_invocation(line: &str) -> Result<(Benchmark, u32, u32), Error> {
        let words = line.split_whitespace().map(str::to_string).collect();
        match parse(words)? {
            Invocation::Bench { which, opts, runs, .. } => Ok((which, opts.smp, runs)),
            _ => panic!("not a bench invocation: {line}"),
        }
    }

    #[test]
    fn runs_defaults_to_one_and_takes_a_count() {
        assert_eq!(bench_invocation("bench ipc").unwrap(), (Benchmark::Ipc, 3, 1));
        assert_eq!(bench_invocation("bench --runs 5").unwrap(), (Benchmark::All, 3, 5));
        assert_eq!(bench_invocation("bench power --runs 2 --smp 4").unwrap(), (Benchmark::Power, 4, 2));
        assert_eq!(bench_invocation("bench sizes").unwrap(), (Benchmark::Sizes, 3, 1));
        assert!(bench_invocation("bench ipc --runs 0").is_err());
        assert!(bench_invocation("bench ipc --runs many").is_err());
        assert!(bench_invocation("bench ringbuf --runs 3").is_err());
    }

    fn net_options(line: &str) -> Result<net_bench::NetBenchOptions, Error> {
        match parse(line.split_whitespace().map(str::to_string).collect())? {
            Invocation::Bench { net, .. } => Ok(net),
            _ => panic!("not a bench invocation: {line}"),
        }
    }

    #[test]
    fn rate_is_for_bench_net_and_is_checked() {
        assert_eq!(net_options("bench net --rate 3000").unwrap().rates, Some(vec![3000.0; 3]));
        assert_eq!(net_options("bench net --rate 100,200,300").unwrap().rates, Some(vec![100.0, 200.0, 300.0]));
        assert_eq!(net_options("bench net").unwrap().rates, None);
        assert!(net_options("bench net --rate 100,200").is_err());
        assert!(net_options("bench net --rate 0").is_err());
        assert!(net_options("bench ipc --rate 3000").is_err());
    }

    #[test]
    fn policies_are_for_bench_net_and_are_checked() {
        assert_eq!(net_options("bench net").unwrap().policies, ["pause", "mwait", "hlt"]);
        assert_eq!(net_options("bench net --policies hlt,pause").unwrap().policies, ["hlt", "pause"]);
        assert_eq!(net_options("bench net --policies spin --accel kvm").unwrap().policies, ["spin"]);
        let spin = net_options("bench net --policies spin").unwrap_err().0;
        assert!(spin.contains("`spin`") && spin.contains("TCG"), "{spin}");
        let unknown = net_options("bench net --policies pause,nap").unwrap_err().0;
        assert!(unknown.contains("`nap`"), "{unknown}");
        assert!(net_options("bench net --policies pause,pause").is_err());
        assert!(net_options("bench power --policies pause").is_err());
    }

    #[test]
    fn a_run_boots_every_system_once_ipc_first() {
        let opts = QemuOptions { accel: "tcg,thread=single".into(), ..QemuOptions::default() };
        let tags: Vec<String> = bench_plan(Benchmark::All, &opts).into_iter().map(|b| b.tag).collect();
        assert_eq!(tags, ["ipc", "ipc-writers", "ipc-twohop", "sizes", "power-pause", "power-mwait", "power-hlt"]);
        let tags: Vec<String> = bench_plan(Benchmark::Sizes, &opts).into_iter().map(|b| b.tag).collect();
        assert_eq!(tags, ["sizes"]);
        let tags: Vec<String> = bench_plan(Benchmark::Ipc, &opts).into_iter().map(|b| b.tag).collect();
        assert_eq!(tags, ["ipc", "ipc-writers", "ipc-twohop"]);
    }

    #[test]
    fn the_writers_system_gets_the_cores_it_needs() {
        let root = root();
        let writers = System::read(&root.join(BENCH_WRITERS_SYSTEM)).unwrap();
        assert_eq!(bench_smp(BENCH_WRITERS_SYSTEM, &writers, 3).unwrap(), 5);
        assert_eq!(bench_smp(BENCH_WRITERS_SYSTEM, &writers, 6).unwrap(), 6);
        let twohop = System::read(&root.join(BENCH_TWOHOP_SYSTEM)).unwrap();
        assert_eq!(bench_smp(BENCH_TWOHOP_SYSTEM, &twohop, 3).unwrap(), 4);
        let ipc = System::read(&root.join(BENCH_SYSTEM)).unwrap();
        assert_eq!(bench_smp(BENCH_SYSTEM, &ipc, 2).unwrap(), 2, "too few stays an error at the check");
    }
}
