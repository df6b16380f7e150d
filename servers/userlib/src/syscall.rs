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

/// `pci_config(device, offset, write, value)`: a word of a granted PCI
/// function's configuration space (four arguments: the fourth in `r10`);
/// `userlib::Device` wraps it.
pub fn pci_config(device: u64, offset: u64, write: bool, value: u32) -> Result<u64, SysError> {
    let ret: i64;
    // SAFETY: `syscall` enters the kernel, which preserves every register
    // but rax (result), rcx and r11 (used by the instruction); this call
    // passes no pointers, the kernel checks every argument.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") abi::nr::PCI_CONFIG as i64 => ret,
            in("rdi") device,
            in("rsi") offset,
            in("rdx") u64::from(write),
            in("r10") u64::from(value),
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (device, offset, write, value);
        ret = -abi::err::UNKNOWN_SYSCALL;
    }
    if ret < 0 { Err(SysError(-ret)) } else { Ok(ret as u64) }
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

/// Replaces a core's power policy while the system runs (`command` such
/// as `core=2 sleep=hlt pause_us_before_sleep=20`); needs `power_control =
/// true` in the system TOML. Returns the generation of the new policy.
pub fn power_control(command: &str) -> Result<u64, SysError> {
    result(syscall3(abi::nr::POWER_CONTROL, command.as_ptr() as u64, command.len() as u64, 0))
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

/// Wakes the mover that writes inbox `inbox` (mover `inbox`, in
/// `mover_cores` order) if it sleeps waiting for room there; returns
/// whether it was asleep.
#[cold]
pub fn wake_mover_of_inbox(inbox: usize) -> bool {
    syscall3(abi::nr::WAKE_MOVER, inbox as u64 + 1, 0, 0) == 1
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

/// Enters the kernel with a synchronous message in registers (the layout
/// of `abi::SyncMessage`): `rdi` = `first` (endpoint or flags), the message
/// in `rsi, rdx, r10, r8, r9, r12, r13`. Returns the raw result, the badge
/// in `rdi` and the message the kernel left in the same registers.
#[inline(always)]
fn sync_syscall(number: u64, first: u64, message: &abi::SyncMessage) -> (i64, u64, abi::SyncMessage) {
    let (mut rsi, mut rdx) = message.header_registers();
    let [mut p0, mut p1, mut p2, mut p3, mut p4] = message.payload;
    let ret: i64;
    let mut rdi = first;
    // SAFETY: `syscall` enters the kernel; for `call` and `reply_recv` the
    // kernel returns with the answer in rax, rdi, rsi, rdx, r10, r8, r9,
    // r12 and r13 (all declared as outputs here) and preserves every other
    // register but rcx and r11. It touches no memory of ours.
    #[cfg(target_arch = "x86_64")]
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number as i64 => ret,
            inout("rdi") rdi,
            inout("rsi") rsi,
            inout("rdx") rdx,
            inout("r10") p0,
            inout("r8") p1,
            inout("r9") p2,
            inout("r12") p3,
            inout("r13") p4,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack)
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        ret = -abi::err::UNKNOWN_SYSCALL;
    }
    let message = abi::SyncMessage::from_registers(rsi, rdx, [p0, p1, p2, p3, p4]).unwrap_or_default();
    (ret, rdi, message)
}

/// A message received through `call` or `reply_recv`, with the badge of
/// the server that sent it (written by the kernel, never by the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReceived {
    pub badge: u64,
    pub message: abi::SyncMessage,
}

/// Calls the server behind `endpoint` with `message` and waits for its
/// reply (synchronous IPC: no mover; on a shared core the kernel switches
/// straight to the callee). Errors: `abi::err::NO_CAPABILITY`,
/// `NOT_RUNNING` (the callee stopped, also mid-call), `NO_REPLY`,
/// `WOULD_DEADLOCK`.
#[inline]
pub fn call(endpoint: u32, message: &abi::SyncMessage) -> Result<SyncReceived, SysError> {
    let (ret, badge, message) = sync_syscall(abi::nr::CALL, u64::from(endpoint), message);
    result(ret).map(|_| SyncReceived { badge, message })
}

/// Answers the call being served with `reply` and returns at once, taking
/// no call (a server that goes back to other work after serving calls).
#[inline]
pub fn reply(reply: &abi::SyncMessage) -> Result<(), SysError> {
    let (ret, _, _) = sync_syscall(abi::nr::REPLY_RECV, 3, reply);
    result(ret).map(|_| ())
}

/// Answers the call being served with `reply` (if any) and waits for the
/// next call, which it returns. A server that serves calls loops on this.
#[inline]
pub fn reply_recv(reply: Option<&abi::SyncMessage>) -> Result<SyncReceived, SysError> {
    let empty = abi::SyncMessage::default();
    let (flags, message) = match reply {
        Some(m) => (1, m),
        None => (0, &empty),
    };
    let (ret, badge, message) = sync_syscall(abi::nr::REPLY_RECV, flags, message);
    result(ret).map(|_| SyncReceived { badge, message })
}
