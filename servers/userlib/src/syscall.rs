//! Every system-call wrapper of `userlib`: the one place a server enters
//! the kernel (see `abi` for the numbers and convention), plus the TSC
//! helpers built on `tsc_hz`. Other modules call these wrappers, never
//! `syscall3` with a number of their own.

/// A failed system call: the kernel's error code (see `abi::err`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysError(pub i64);

impl SysError {
    pub fn name(self) -> &'static str {
        abi::err::name(self.0)
    }
}

fn result(raw: i64) -> Result<u64, SysError> {
    if raw < 0 { Err(SysError(-raw)) } else { Ok(raw as u64) }
}

/// Raw system call with up to three arguments. Any number and arguments
/// may be passed: the kernel checks them all.
#[inline]
pub fn syscall3(number: u64, a0: u64, a1: u64, a2: u64) -> i64 {
    let ret: i64;
    // SAFETY: `syscall` enters the kernel, which preserves every register
    // but rax (result), rcx and r11 (used by the instruction) and touches
    // our memory only through its checked copy functions.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number as i64 => ret,
            in("rdi") a0,
            in("rsi") a1,
            in("rdx") a2,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (number, a0, a1, a2);
        ret = -abi::err::UNKNOWN_SYSCALL;
    }
    ret
}

/// Prints one line as this server (cut at `abi::LOG_MAX` bytes by the kernel's check).
pub fn log_bytes(bytes: &[u8]) -> Result<(), SysError> {
    result(syscall3(abi::nr::LOG, bytes.as_ptr() as u64, bytes.len() as u64, 0)).map(|_| ())
}

/// Stops this server with `code`.
pub fn exit(code: i32) -> ! {
    syscall3(abi::nr::EXIT, code as i64 as u64, 0, 0);
    // The kernel never returns from `exit`; if it ever did, fault loudly.
    loop {
        core::hint::spin_loop();
    }
}

/// The logical core this server runs on.
pub fn core_id() -> usize {
    syscall3(abi::nr::CORE_ID, 0, 0, 0) as usize
}

/// This server's name as given in the system TOML.
pub fn server_name(buf: &mut [u8]) -> Result<&str, SysError> {
    let len = result(syscall3(abi::nr::SERVER_NAME, buf.as_mut_ptr() as u64, buf.len() as u64, 0))? as usize;
    Ok(core::str::from_utf8(&buf[..len.min(buf.len())]).unwrap_or("?"))
}

/// The TSC frequency the kernel calibrated, in Hz.
pub fn tsc_hz() -> u64 {
    syscall3(abi::nr::TSC_HZ, 0, 0, 0) as u64
}

/// Asks the kernel to print the runtime power view now.
pub fn power_report() {
    syscall3(abi::nr::POWER_REPORT, 0, 0, 0);
}

/// Sleeps this core until a mover delivers to one of its inboxes (or a
/// spurious wake-up); returns whether it slept. Call only after announcing
/// sleep on every inbox (`Consumer::prepare_to_sleep`): the kernel sleeps
/// only while every inbox's wake word still says SLEEPING.
pub fn wait() -> bool {
    syscall3(abi::nr::WAIT, 0, 0, 0) == 1
}

/// Wakes this server's mover if it announced sleep on the outbox; returns
/// whether it was asleep. Costs an awake mover nothing.
#[inline]
pub fn wake_mover() -> bool {
    syscall3(abi::nr::WAKE_MOVER, 0, 0, 0) == 1
}

/// Asks the kernel to lower (`true`) or restore (`false`) this core's
/// P-state after a long idle period (`Step::LowerPstate`). Out of line and
/// cold, so that the system call does not shape the code of a poll loop.
#[cold]
#[inline(never)]
pub fn idle_pstate(lower: bool) {
    syscall3(abi::nr::IDLE_PSTATE, u64::from(lower), 0, 0);
}

/// Benchmark phase marks: snapshots (`begin`) or prints (end) every core's
/// counters for `phase`.
pub fn bench_mark(phase: &str, begin: bool) {
    syscall3(abi::nr::BENCH_MARK, phase.as_ptr() as u64, phase.len() as u64, u64::from(begin));
}

/// Makes the movers scan `n` extra empty rings per pass (benchmark knob).
pub fn bench_extra_rings(n: usize) {
    syscall3(abi::nr::BENCH_EXTRA_RINGS, n as u64, 0, 0);
}

/// Reads the time-stamp counter (allowed in ring 3), ordered after every
/// earlier instruction (`lfence; rdtsc`, as the kernel's `tsc::now`): without
/// the fence the CPU may read the TSC before the loads a measurement waits
/// for have completed, and a sample comes out short (or negative).
#[inline]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: LFENCE and RDTSC have no side effects; RDTSC is permitted
        // in user mode (the kernel never sets CR4.TSD).
        unsafe {
            core::arch::x86_64::_mm_lfence();
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    0
}

/// Spins for about `us` microseconds (TSC based).
pub fn spin_us(us: u64) {
    spin_ticks(tsc_hz() / 1_000_000 * us);
}

/// Busy-waits `ticks` TSC ticks (with `pause`).
pub fn spin_ticks(ticks: u64) {
    if ticks == 0 {
        return;
    }
    let start = rdtsc();
    while rdtsc().wrapping_sub(start) < ticks {
        core::hint::spin_loop();
    }
}
