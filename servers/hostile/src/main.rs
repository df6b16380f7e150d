//! A deliberately misbehaving server for the fault-containment tests. Its
//! name in the system TOML picks the misdeed: `hostile-<misdeed>`. The
//! kernel must stop it (or refuse its system calls) without any other core
//! noticing. This is a test fixture: the `unsafe` here is unsound on
//! purpose, each block says which rule it breaks.
#![cfg_attr(target_os = "none", no_std, no_main)]

use userlib::abi::{err, nr};
use userlib::syscall3;

userlib::server_main!(run);

static mut DATA_NOT_CODE: [u8; 16] = [0xC3; 16]; // `ret` bytes, in a no-execute page

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    // black_box keeps the frame and the recursion from being optimised out.
    core::hint::black_box(&mut frame);
    if depth == u64::MAX {
        return 0; // never reached: the stack runs out first
    }
    recurse(depth + 1) + u64::from(frame[0])
}

fn expect_error(what: &str, got: i64, wanted: i64) -> bool {
    if got == -wanted {
        userlib::log!("syscall check `{what}`: refused with `{}` as expected", err::name(wanted));
        true
    } else {
        userlib::log!("syscall check `{what}`: UNEXPECTED result {got} (wanted -{wanted})");
        false
    }
}

fn syscall_checks() -> i32 {
    let mut ok = true;
    ok &= expect_error("log with a kernel pointer", syscall3(nr::LOG, 0xffff_8000_0000_0000, 8, 0), err::OUT_OF_RANGE);
    ok &= expect_error("log with an unmapped pointer", syscall3(nr::LOG, 0x1_0000_0000, 8, 0), err::NOT_MAPPED);
    ok &= expect_error("log with a null pointer", syscall3(nr::LOG, 0, 8, 0), err::OUT_OF_RANGE);
    ok &= expect_error("log with a wrapping range", syscall3(nr::LOG, u64::MAX - 7, 16, 0), err::OUT_OF_RANGE);
    ok &= expect_error("log with a huge length", syscall3(nr::LOG, run as *const () as u64, 1 << 40, 0), err::TOO_LONG);
    ok &= expect_error(
        "server_name into read-only code",
        syscall3(nr::SERVER_NAME, run as *const () as u64, 64, 0),
        err::NOT_MAPPED,
    );
    ok &= expect_error("idle_pstate with 2", syscall3(nr::IDLE_PSTATE, 2, 0, 0), err::OUT_OF_RANGE);
    ok &= expect_error("idle_pstate with u64::MAX", syscall3(nr::IDLE_PSTATE, u64::MAX, 0, 0), err::OUT_OF_RANGE);
    // Valid arguments on a core whose policy does not lower the P-state: nothing to do.
    let lowered = syscall3(nr::IDLE_PSTATE, 1, 0, 0);
    let restored = syscall3(nr::IDLE_PSTATE, 0, 0, 0);
    userlib::log!("idle_pstate 1 then 0 on a core without idle_pstate_after_us: returned {lowered} and {restored}");
    ok &= lowered == 0 && restored == 0;
    // Synchronous calls: no capability, a reply with no call being served,
    // flags that mean nothing, a payload longer than 40 bytes.
    ok &= expect_error("call on endpoint 999", syscall3(nr::CALL, 999, 0, 0), err::NO_CAPABILITY);
    ok &= expect_error("call on endpoint u64::MAX", syscall3(nr::CALL, u64::MAX, 0, 0), err::NO_CAPABILITY);
    ok &= expect_error("call with a 41-byte payload", syscall3(nr::CALL, 0, 41 << 32, 0), err::TOO_LONG);
    ok &= expect_error("reply_recv replying to no call", syscall3(nr::REPLY_RECV, 1, 0, 0), err::NOT_SERVING);
    ok &= expect_error("reply (no wait) to no call", syscall3(nr::REPLY_RECV, 3, 0, 0), err::NOT_SERVING);
    ok &= expect_error("reply_recv with flags 2", syscall3(nr::REPLY_RECV, 2, 0, 0), err::OUT_OF_RANGE);
    ok &= expect_error("reply_recv with flags u64::MAX", syscall3(nr::REPLY_RECV, u64::MAX, 0, 0), err::OUT_OF_RANGE);
    ok &= expect_error("unknown number 9999", syscall3(9999, 1, 2, 3), err::UNKNOWN_SYSCALL);
    ok &= expect_error("unknown number u64::MAX", syscall3(u64::MAX, 0, 0, 0), err::UNKNOWN_SYSCALL);
    userlib::log!("still alive after every bad system call");
    if ok { 0 } else { 1 }
}

/// A log line with no formatting (no copying code that might touch memory
/// misaligned while EFLAGS.AC is set).
fn raw_log(line: &[u8]) {
    syscall3(nr::LOG, line.as_ptr() as u64, line.len() as u64, 0);
}

const AC: u64 = 1 << 18;
const TF: u64 = 1 << 8;

fn rflags() -> u64 {
    let flags: u64;
    // SAFETY: reads RFLAGS through the stack; no memory of ours is touched.
    unsafe { core::arch::asm!("pushfq", "pop {}", out(reg) flags) };
    flags
}

/// Sets EFLAGS.AC, makes system calls with it set, then reads 8 bytes at an
/// odd address: with CR0.AM the CPU raises #AC, which must be reported as
/// this server's fault. A CPU that does not check alignment (QEMU TCG does
/// not emulate #AC) reads on; then `ud2`, still with AC set, makes the
/// kernel take an exception from ring 3 with AC set (which its entry must
/// clear). Either way the kernel reports this server's fault.
///
/// # Safety
/// None: sets a flag the rest of the program does not expect.
unsafe fn set_ac() -> i32 {
    // SAFETY: none (see the function); only RFLAGS changes.
    unsafe { core::arch::asm!("pushfq", "or qword ptr [rsp], {ac}", "popfq", ac = const AC) };
    let core = syscall3(nr::CORE_ID, 0, 0, 0);
    let hz = syscall3(nr::TSC_HZ, 0, 0, 0);
    if core >= 0 && hz > 0 {
        raw_log(b"set-ac: system calls with AC set answered");
    } else {
        raw_log(b"set-ac: system calls with AC set FAILED");
    }
    if rflags() & AC != 0 {
        raw_log(b"set-ac: AC still set after the system calls; reading 8 bytes at an odd address");
    } else {
        raw_log(b"set-ac: AC was cleared by a system call (should have been restored)");
    }
    let buffer = [0u64; 2];
    let odd = (buffer.as_ptr() as u64) + 1;
    // SAFETY: none: a misaligned 8-byte read, inside `buffer`, with AC set.
    unsafe { core::arch::asm!("mov {v}, qword ptr [{p}]", v = out(reg) _, p = in(reg) odd) };
    raw_log(b"set-ac: no #AC for the misaligned read (this CPU does not check alignment); ud2 with AC set");
    // SAFETY: none: an invalid opcode, AC still set.
    unsafe { core::arch::asm!("ud2") };
    // SAFETY: clears AC again so the formatting below cannot trip on it.
    unsafe { core::arch::asm!("pushfq", "and qword ptr [rsp], {m}", "popfq", m = const !AC as i64) };
    userlib::log!("set-ac: ud2 did not fault?!");
    3
}

/// Sets EFLAGS.TF with the very next instruction a system call: the
/// kernel must not single-step itself (SFMASK clears TF), and the #DB that
/// follows in ring 3 is this server's fault.
///
/// # Safety
/// None: single-stepping with no debugger.
unsafe fn set_tf() -> i32 {
    let result: i64;
    // SAFETY: none (see the function); the syscall clobbers rcx and r11.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "or qword ptr [rsp], {tf}",
            "popfq",
            "syscall",
            tf = const TF,
            inout("rax") nr::CORE_ID => result,
            out("rcx") _,
            out("r11") _,
        )
    };
    userlib::log!("set-tf: the system call returned {result} and no #DB came");
    3
}

fn run() -> i32 {
    let mut buf = [0u8; 64];
    let name = userlib::server_name(&mut buf).unwrap_or("?");
    let misdeed = name.strip_prefix("hostile-").unwrap_or(name);
    userlib::log!("about to: {misdeed}");
    // SAFETY: none. Every arm below is deliberately unsound; the point is
    // that the kernel contains what follows.
    unsafe {
        match misdeed {
            "null-deref" => {
                let v = core::ptr::read_volatile(core::ptr::null::<u64>());
                userlib::log!("read {v} from address 0?!");
            }
            "write-kernel" => core::ptr::write_volatile(0xffff_8000_0000_1000 as *mut u64, 1),
            "read-other" => {
                // The heartbeat server is the first server of these tests' TOML.
                let addr = userlib::abi::stack_top_for_server(0) - 8;
                let v = core::ptr::read_volatile(addr as *const u64);
                userlib::log!("read {v} from another server's stack?!");
            }
            "exec-data" => {
                let f: extern "C" fn() = core::mem::transmute(&raw const DATA_NOT_CODE as *const u8);
                f();
            }
            "hlt" => core::arch::asm!("hlt"),
            "cli" => core::arch::asm!("cli"),
            "wrmsr" => core::arch::asm!("wrmsr", in("ecx") 0x1bu32, in("eax") 0u32, in("edx") 0u32),
            "mov-cr3" => core::arch::asm!("mov cr3, {}", in(reg) 0u64),
            "div-zero" => {
                let zero = core::hint::black_box(0u64);
                core::arch::asm!("div {}", in(reg) zero, inout("rax") 1u64 => _, inout("rdx") 0u64 => _);
            }
            "stack-overflow" => {
                let v = recurse(0);
                userlib::log!("recursion ended at {v}?!");
            }
            "syscalls" => return syscall_checks(),
            "sgdt" => {
                let mut gdtr = [0u8; 10];
                core::arch::asm!("sgdt [{}]", in(reg) gdtr.as_mut_ptr());
                let base = u64::from_le_bytes([gdtr[2], gdtr[3], gdtr[4], gdtr[5], gdtr[6], gdtr[7], gdtr[8], gdtr[9]]);
                userlib::log!("sgdt in ring 3 gave the GDT base {base:#x} (no UMIP)");
            }
            "set-ac" => return set_ac(),
            "set-tf" => return set_tf(),
            other => {
                userlib::log!("no misdeed called `{other}`");
                return 2;
            }
        }
    }
    userlib::log!("misdeed `{misdeed}` did not fault!");
    3
}
