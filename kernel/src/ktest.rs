//! In-QEMU test scenarios, named with stable ids (like sel4test's), chosen
//! by the `test=` boot argument (`test=SMP0001,SMP0002` or `test=all`).
//!
//! Each scenario prints `TEST <id> PASS` or `TEST <id> FAIL: <why>`; the
//! run ends with `tests: N passed, M failed` and the matching QEMU exit
//! status. Scenarios that are meant to crash the kernel (EXC*, PANIC*) are
//! not in `all`: the runner boots them alone and expects the failure report.

use crate::arch::x86_64::trap::TEST_IPI_VECTOR;
use crate::machine;
use crate::smp::{self, SmpReport, wait_until};
use core::sync::atomic::{AtomicUsize, Ordering};
use cores::{CORES, Role};
use smp_boot::apic::Delivery;

type TestResult = Result<(), &'static str>;

struct KernelTest {
    id: &'static str,
    what: &'static str,
    /// Part of `test=all` (false for scenarios that end the run on purpose).
    in_all: bool,
    run: fn(&SmpReport) -> TestResult,
}

const TESTS: &[KernelTest] = &[
    KernelTest { id: "SMP0001", what: "every enabled MADT processor is online", in_all: true, run: all_cores_online },
    KernelTest {
        id: "SMP0002",
        what: "each core sees its own index and APIC id through GS",
        in_all: true,
        run: per_core_identity,
    },
    KernelTest {
        id: "SMP0003",
        what: "every core sends an IPI to every other core",
        in_all: true,
        run: ipi_all_to_all,
    },
    KernelTest {
        id: "EXC0001",
        what: "an invalid opcode on core 1 is reported and stops the run",
        in_all: false,
        run: ud_on_ap,
    },
    KernelTest { id: "PANIC0001", what: "a panic on the last core stops all cores", in_all: false, run: panic_on_ap },
    KernelTest {
        id: "MEM0001",
        what: "1000 address spaces created and destroyed give back every frame; out of frames is reported as such",
        in_all: true,
        run: |_| crate::mem::selftest::address_spaces_give_back_frames(),
    },
];

/// One second, in the TSC-based wait helpers' microseconds.
const SECOND_US: u64 = 1_000_000;

/// Runs the named tests (comma-separated, or `all`) and ends the run.
pub fn run(selection: &str, report: &SmpReport) -> ! {
    let (mut passed, mut failed) = (0, 0);
    let mut tally = |ok: bool| if ok { passed += 1 } else { failed += 1 };
    if selection == "all" {
        TESTS.iter().filter(|t| t.in_all).for_each(|test| tally(run_one(test, report)));
    } else {
        for name in selection.split(',') {
            match TESTS.iter().find(|t| t.id == name) {
                Some(test) => tally(run_one(test, report)),
                None => {
                    log::error!("TEST {name} FAIL: no such test");
                    tally(false);
                }
            }
        }
    }
    log::info!("tests: {passed} passed, {failed} failed");
    machine::exit(if failed == 0 && report.failed.is_empty() { machine::EXIT_SUCCESS } else { machine::EXIT_FAILURE })
}

fn run_one(test: &KernelTest, report: &SmpReport) -> bool {
    log::info!("TEST {} start: {}", test.id, test.what);
    match (test.run)(report) {
        Ok(()) => {
            log::info!("TEST {} PASS", test.id);
            true
        }
        Err(why) => {
            log::error!("TEST {} FAIL: {why}", test.id);
            false
        }
    }
}

fn online_cores() -> impl Iterator<Item = &'static cores::PerCore> {
    cores::all().iter().filter(|c| c.online.load(Ordering::Acquire))
}

/// Runs `work(index)` on core `index` (an idle AP) and waits for it.
fn run_on(index: usize, work: cores::Work) -> TestResult {
    let core = &CORES[index];
    if core.role() != Role::Idle {
        return Err("target core is not idle");
    }
    let before = core.work_done.load(Ordering::Acquire);
    if !wait_until(SECOND_US, || smp::post_work(index, work, index)) {
        return Err("core's mailbox stayed busy");
    }
    if !wait_until(5 * SECOND_US, || core.work_done.load(Ordering::Acquire) > before) {
        return Err("core did not finish posted work within 5 s");
    }
    Ok(())
}

fn all_cores_online(report: &SmpReport) -> TestResult {
    if !report.failed.is_empty() || report.online != report.expected {
        return Err("not every processor came online");
    }
    if online_cores().count() != report.expected {
        return Err("core table disagrees with the boot report");
    }
    Ok(())
}

static IDENTITY_OK: AtomicUsize = AtomicUsize::new(0);

fn check_identity(index: usize) {
    let me = cores::this_core();
    if me.index() == index && smp::apic().id() == CORES[index].apic_id.load(Ordering::Relaxed) {
        IDENTITY_OK.fetch_add(1, Ordering::AcqRel);
    } else {
        log::error!("core {index}: GS says core {}, APIC says id {}", me.index(), smp::apic().id());
    }
}

fn per_core_identity(_: &SmpReport) -> TestResult {
    IDENTITY_OK.store(0, Ordering::SeqCst);
    check_identity(0);
    let mut expected = 1;
    for core in online_cores().skip(1) {
        run_on(core.index(), check_identity)?;
        expected += 1;
    }
    if IDENTITY_OK.load(Ordering::Acquire) != expected {
        return Err("a core disagreed about its own identity (see log)");
    }
    Ok(())
}

static IPI_FAILURES: AtomicUsize = AtomicUsize::new(0);

/// Sends one IPI to every other online core, waiting for each to be taken
/// before the next: fixed IPIs of one vector coalesce while one is pending,
/// so only sequential sends can be counted exactly.
fn send_ipis_to_all_others(sender: usize) {
    let apic = smp::apic();
    for target in online_cores() {
        if target.index() == sender {
            continue;
        }
        let before = target.ipis_received.load(Ordering::Acquire);
        apic.send(target.apic_id.load(Ordering::Relaxed), Delivery::Fixed(TEST_IPI_VECTOR));
        if !wait_until(SECOND_US, || target.ipis_received.load(Ordering::Acquire) > before) {
            log::error!("SMP0003: IPI from core {sender} to core {} not taken within 1 s", target.index());
            IPI_FAILURES.fetch_add(1, Ordering::AcqRel);
        }
    }
}

fn ipi_all_to_all(_: &SmpReport) -> TestResult {
    let n = online_cores().count() as u64;
    if n < 2 {
        log::info!("SMP0003: one core online, nothing to send");
        return Ok(());
    }
    IPI_FAILURES.store(0, Ordering::SeqCst);
    let before: heapless::Vec<u64, { cores::MAX_CORES }> =
        online_cores().map(|c| c.ipis_received.load(Ordering::Acquire)).collect();
    // The BSP takes IPIs only while interrupts are enabled here.
    x86_64::instructions::interrupts::enable();
    send_ipis_to_all_others(0);
    let mut result = Ok(());
    for core in online_cores().skip(1) {
        if let Err(e) = run_on(core.index(), send_ipis_to_all_others) {
            result = Err(e);
        }
    }
    x86_64::instructions::interrupts::disable();
    result?;
    let mut wrong = 0;
    for (core, &b) in online_cores().zip(before.iter()) {
        let got = core.ipis_received.load(Ordering::Acquire) - b;
        if got != n - 1 {
            wrong += 1;
            log::error!("SMP0003: core {} received {got} IPIs, expected {}", core.index(), n - 1);
        }
    }
    if wrong > 0 || IPI_FAILURES.load(Ordering::Acquire) > 0 {
        return Err("IPIs lost or duplicated (see above)");
    }
    log::info!("SMP0003: {} IPIs sent and each taken exactly once", n * (n - 1));
    Ok(())
}

fn execute_ud2(_: usize) {
    // SAFETY: deliberately raises #UD to test exception reporting; the
    // handler never returns here.
    unsafe { core::arch::asm!("ud2") };
}

fn ud_on_ap(_: &SmpReport) -> TestResult {
    if online_cores().count() < 2 {
        return Err("needs at least 2 cores");
    }
    run_on(1, execute_ud2)?;
    Err("the invalid opcode did not end the run")
}

fn panic_now(index: usize) {
    panic!("deliberate panic on core {index} (PANIC0001)");
}

fn panic_on_ap(_: &SmpReport) -> TestResult {
    let last = online_cores().last().map(|c| c.index()).unwrap_or(0);
    if last == 0 {
        panic_now(0);
    }
    run_on(last, panic_now)?;
    Err("the panic did not end the run")
}
