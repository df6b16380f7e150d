//! `cargo xtask test`: host tests, then every in-QEMU scenario, each with
//! its expected verdict and the serial lines that must appear.

use crate::qemu::{Firmware, GUEST_FAIL, GUEST_PASS, QemuOptions};
use crate::{Args, Boot, Error, root, run_checked, setup};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// One boot of the kernel with a verdict to check.
struct Case {
    name: &'static str,
    boot_args: &'static str,
    smp: u32,
    firmware: Firmware,
    /// The guest must report success (else: failure, e.g. a crash test).
    expect_pass: bool,
    /// Lines (substrings) that must appear in the serial log.
    must_show: &'static [&'static str],
}

const BOOT_TESTS: &str = "test=SMP0001,SMP0002,SMP0003";
const BOOT_LINES: &[&str] = &["MHz from the PIT", "cpu: x2apic", "TEST SMP0001 PASS", "TEST SMP0002 PASS", "TEST SMP0003 PASS", "tests: 3 passed, 0 failed"];

const CASES: &[Case] = &[
    Case { name: "boot-bios-smp1", boot_args: BOOT_TESTS, smp: 1, firmware: Firmware::Bios, expect_pass: true, must_show: BOOT_LINES },
    Case { name: "boot-bios-smp2", boot_args: BOOT_TESTS, smp: 2, firmware: Firmware::Bios, expect_pass: true, must_show: BOOT_LINES },
    Case { name: "boot-bios-smp4", boot_args: BOOT_TESTS, smp: 4, firmware: Firmware::Bios, expect_pass: true, must_show: BOOT_LINES },
    Case { name: "boot-bios-smp8", boot_args: BOOT_TESTS, smp: 8, firmware: Firmware::Bios, expect_pass: true, must_show: BOOT_LINES },
    Case { name: "boot-uefi-smp2", boot_args: BOOT_TESTS, smp: 2, firmware: Firmware::Uefi, expect_pass: true, must_show: BOOT_LINES },
    Case {
        name: "EXC0001-ud-on-core1",
        boot_args: "test=EXC0001",
        smp: 2,
        firmware: Firmware::Bios,
        expect_pass: false,
        must_show: &["EXCEPTION core 1: vector 6 (#UD invalid opcode), error 0x0, rip 0x", "other cores stopped: 1/1"],
    },
    Case {
        name: "PANIC0001-panic-on-core3",
        boot_args: "test=PANIC0001",
        smp: 4,
        firmware: Firmware::Bios,
        expect_pass: false,
        must_show: &["PANIC core 3: panicked at", "deliberate panic on core 3", "other cores stopped: 3/3"],
    },
    Case {
        name: "SMP0004-core-does-not-start",
        boot_args: "smp.skip_apic=2",
        smp: 4,
        firmware: Firmware::Bios,
        expect_pass: false,
        must_show: &["cores online: 3/4, core 2 (apic 2) did not start"],
    },
    Case {
        name: "BOOT0001-unknown-boot-argument",
        boot_args: "test=SMP0001 bogus=1",
        smp: 1,
        firmware: Firmware::Bios,
        expect_pass: false,
        must_show: &["boot: unknown boot argument `bogus`"],
    },
];

/// A named host-side step.
struct HostStep {
    name: &'static str,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    toolchain: Option<&'static str>,
}

const HOST_STEPS: &[HostStep] = &[
    HostStep { name: "host: cargo test --workspace", args: &["test", "--workspace", "--quiet"], env: &[], toolchain: None },
    HostStep {
        name: "host: clippy (kernel target, warnings are errors)",
        args: &[
            "clippy", "--quiet", "--release", "--target", "x86_64-unknown-none", "-p", "kernel", "-p", "smp-boot", "-p", "cores",
            "-p", "boot-args", "--", "-D", "warnings",
        ],
        env: &[],
        toolchain: None,
    },
    HostStep {
        name: "host: clippy (host crates, warnings are errors)",
        args: &["clippy", "--quiet", "--all-targets", "-p", "xtask", "-p", "boot-args", "-p", "cores", "-p", "smp-boot", "--", "-D", "warnings"],
        env: &[],
        toolchain: None,
    },
    HostStep {
        name: "host: no_std crates build for x86_64-unknown-none",
        args: &["build", "--quiet", "--release", "--target", "x86_64-unknown-none", "-p", "kernel", "-p", "ringbuf", "-p", "boot-args", "-p", "cores", "-p", "smp-boot"],
        env: &[],
        toolchain: None,
    },
];

struct Tally {
    passed: Vec<String>,
    failed: Vec<String>,
}

impl Tally {
    fn record(&mut self, name: &str, ok: bool, detail: &str) {
        if ok {
            println!("xtask: PASS {name} {detail}");
            self.passed.push(name.to_string());
        } else {
            println!("xtask: FAIL {name} {detail}");
            self.failed.push(name.to_string());
        }
    }
}

fn host_tests(tally: &mut Tally, filter: Option<&str>) {
    let root = root();
    for step in HOST_STEPS {
        if filter.is_some_and(|f| !step.name.contains(f)) {
            continue;
        }
        println!("xtask: running {}", step.name);
        let started = Instant::now();
        let mut cmd = Command::new("cargo");
        cmd.current_dir(&root).args(step.args);
        for (k, v) in step.env {
            cmd.env(k, v);
        }
        if let Some(tc) = step.toolchain {
            cmd.env("RUSTUP_TOOLCHAIN", tc);
        }
        let ok = run_checked(&mut cmd, step.name).is_ok();
        tally.record(step.name, ok, &format!("({:.1} s)", started.elapsed().as_secs_f64()));
    }
}

fn qemu_tests(tally: &mut Tally, filter: Option<&str>) -> Result<(), Error> {
    let cases: Vec<&Case> =
        CASES.iter().filter(|c| filter.is_none_or(|f| c.name.contains(f) || c.boot_args.contains(f))).collect();
    if cases.is_empty() {
        return Ok(());
    }
    setup::host_packages()?;
    let root = root();
    let kernel = crate::build_kernel(&root)?;
    let builder = crate::build_image_builder(&root)?;
    for case in cases {
        let opts = QemuOptions {
            smp: case.smp,
            firmware: case.firmware,
            timeout: Duration::from_secs(180),
            echo: false,
            ..QemuOptions::default()
        };
        println!("xtask: running {} (-smp {}, {})", case.name, case.smp, case.firmware.name());
        let outcome = crate::boot(&root, &kernel, &builder, &Boot { name: case.name, boot_args: case.boot_args }, &opts)?;
        let mut problems = Vec::new();
        let wanted = if case.expect_pass { GUEST_PASS } else { GUEST_FAIL };
        if outcome.status != Some(wanted) {
            problems.push(format!(
                "expected the guest to report {}, but: {}",
                if case.expect_pass { "success" } else { "failure" },
                outcome.verdict()
            ));
        }
        for line in case.must_show {
            if !outcome.serial.contains(line) {
                problems.push(format!("serial log lacks `{line}`"));
            }
        }
        let log = format!("target/qemu/{}/serial.log", case.name);
        let ok = problems.is_empty();
        if !ok {
            println!("---- serial log of {} (kept in {log}) ----", case.name);
            let lines: Vec<&str> = outcome.serial.lines().collect();
            for l in &lines[lines.len().saturating_sub(40)..] {
                println!("  | {l}");
            }
            for p in &problems {
                println!("  problem: {p}");
            }
        }
        tally.record(case.name, ok, &format!("({:.1} s)", outcome.elapsed.as_secs_f64()));
    }
    Ok(())
}

pub fn cmd_test(mut args: Args) -> Result<ExitCode, Error> {
    let filter = args.take_value("--filter")?;
    let host_only = args.take_flag("--host-only");
    let qemu_only = args.take_flag("--qemu-only");
    let rest = args.finish()?;
    if !rest.is_empty() {
        return Err(Error::new(format!("unexpected arguments {rest:?}")));
    }
    setup::rust_toolchains(false)?;
    let started = Instant::now();
    let mut tally = Tally { passed: Vec::new(), failed: Vec::new() };
    if !qemu_only {
        host_tests(&mut tally, filter.as_deref());
    }
    if !host_only {
        qemu_tests(&mut tally, filter.as_deref())?;
    }
    println!("xtask: test run took {:.0} s", started.elapsed().as_secs_f64());
    if !tally.failed.is_empty() {
        println!("xtask: failed: {}", tally.failed.join(", "));
    }
    if tally.passed.is_empty() && tally.failed.is_empty() {
        return Err(Error::new("no test matched the filter"));
    }
    println!("{} passed, {} failed", tally.passed.len(), tally.failed.len());
    Ok(if tally.failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
