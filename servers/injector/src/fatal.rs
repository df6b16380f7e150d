//! The fatal acts: each ends this incarnation, by an exception, a hang
//! the kernel must detect, or a failing exit. A test fixture: the `unsafe`
//! blocks here are unsound on purpose, each says which rule it breaks. The
//! addresses go through registers (`asm!`), never through Rust references,
//! so the compiler cannot turn a misdeed into something else.
//!
//! An act that does not end the server (the kernel did not fault it)
//! returns [`FELL_THROUGH`]: the server exits with that code, which the
//! kernel reports (`exited with code 77`) and the campaign counts.

use crate::rng::Rng;
use core::arch::asm;
use userlib::abi::nr;

/// Exit code of an incarnation whose fatal act did not stop it.
pub const FELL_THROUGH: i32 = 77;

/// `int N` vectors tried: the NMI and machine-check vectors (never a
/// server's doing: the kernel must not take them for real ones), the double
/// fault, the page fault, legacy PIC lines, the kernel's wake-up IPI, a
/// classic system-call vector and the last vector.
const INT_VECTORS: [u8; 9] = [0x02, 0x08, 0x0e, 0x12, 0x20, 0x2f, 0x41, 0x80, 0xff];

/// Kinds, by the name `fatal=` and the log line use.
const KINDS: [&str; 21] = [
    "null-read",
    "kernel-write",
    "non-canonical-read",
    "hlt",
    "cli",
    "wrmsr",
    "mov-cr3",
    "divide-by-zero",
    "ud2",
    "int3",
    "int",
    "stack-overflow",
    "non-canonical-jump",
    "kernel-jump",
    "exec-data",
    "bad-stack-pointer",
    "trap-flag",
    "alignment-check",
    "infinite-loop",
    "never-drain",
    "exit-nonzero",
];

/// `ret` bytes in a writable, never-executable page.
static mut DATA_NOT_CODE: [u8; 16] = [0xC3; 16];

#[derive(Clone, Copy)]
pub struct Fatal {
    kind: usize,
    /// The vector of `int`, the code of `exit-nonzero`.
    detail: u64,
}

impl Fatal {
    /// A random act, among those `filter` names (comma-separated; `None`:
    /// all). `None` if the filter names none.
    pub fn pick(rng: &mut Rng, filter: Option<&str>) -> Option<Fatal> {
        let allowed = |k: &str| filter.is_none_or(|f| f.split(',').any(|w| w == k));
        let count = KINDS.iter().filter(|k| allowed(k)).count() as u64;
        if count == 0 {
            return None;
        }
        let nth = rng.below(count) as usize;
        let kind = KINDS.iter().enumerate().filter(|(_, k)| allowed(k)).nth(nth)?.0;
        let detail = match KINDS[kind] {
            "int" => u64::from(rng.pick(&INT_VECTORS)),
            // 1..=200 except FELL_THROUGH and 101 (a panic's code).
            "exit-nonzero" => match 1 + rng.below(200) {
                77 | 101 => 1,
                code => code,
            },
            _ => 0,
        };
        Some(Fatal { kind, detail })
    }

    /// The act's name for the log line: `int` carries its vector
    /// (`int-0x80`), `exit-nonzero` its code (`exit-nonzero-42`).
    pub fn name(&self) -> Name {
        Name(*self)
    }

    /// Does it. Returns only an exit code: the act's own (`exit-nonzero`)
    /// or [`FELL_THROUGH`].
    pub fn commit(self, _rng: &mut Rng) -> i32 {
        let kernel_address = core::hint::black_box(0xffff_8000_0000_1000u64);
        let non_canonical = core::hint::black_box(0x8000_0000_0000_0000u64);
        // SAFETY: none. Every arm is deliberately unsound or privileged; the
        // point is that the kernel stops this server and nothing else.
        unsafe {
            match KINDS[self.kind] {
                // #PF: a load from address 0 (never mapped).
                "null-read" => {
                    asm!("mov {v}, qword ptr [{a}]", a = in(reg) core::hint::black_box(0u64), v = out(reg) _)
                }
                // #PF: a store into the kernel half (supervisor-only pages).
                "kernel-write" => asm!("mov qword ptr [{a}], {a}", a = in(reg) kernel_address),
                // #GP: a load from a non-canonical address.
                "non-canonical-read" => asm!("mov {v}, qword ptr [{a}]", a = in(reg) non_canonical, v = out(reg) _),
                // #GP: privileged instructions in ring 3.
                "hlt" => asm!("hlt"),
                "cli" => asm!("cli"),
                "wrmsr" => asm!("wrmsr", in("ecx") 0x1bu32, in("eax") 0u32, in("edx") 0u32),
                "mov-cr3" => asm!("mov cr3, {}", in(reg) 0u64),
                // #DE.
                "divide-by-zero" => {
                    let zero = core::hint::black_box(0u64);
                    asm!("div {}", in(reg) zero, inout("rax") 1u64 => _, inout("rdx") 0u64 => _);
                }
                // #UD.
                "ud2" => asm!("ud2"),
                // #BP (or #GP if the gate is not open to ring 3).
                "int3" => asm!("int3"),
                // `int N`: #GP unless the gate is open to ring 3.
                "int" => software_interrupt(self.detail as u8),
                // #PF in the guard page below the stack.
                "stack-overflow" => {
                    core::hint::black_box(recurse(0));
                }
                // #GP: a jump to a non-canonical address.
                "non-canonical-jump" => asm!("jmp {}", in(reg) non_canonical, options(noreturn)),
                // #PF: instruction fetch from a supervisor page.
                "kernel-jump" => asm!("jmp {}", in(reg) kernel_address, options(noreturn)),
                // #PF: instruction fetch from a no-execute data page.
                "exec-data" => {
                    let f: extern "C" fn() = core::mem::transmute(&raw const DATA_NOT_CODE as *const u8);
                    f();
                }
                // #SS (or #GP): a push through a non-canonical stack pointer.
                "bad-stack-pointer" => asm!("mov rsp, {}", "push rax", in(reg) non_canonical, options(noreturn)),
                // #DB: single-step trap after the instruction following popfq.
                "trap-flag" => asm!("pushfq", "or qword ptr [rsp], 0x100", "popfq", "nop", "nop"),
                // #AC if the kernel set CR0.AM: EFLAGS.AC and a misaligned load
                // (falls through, with AC still set, if it did not).
                "alignment-check" => {
                    let misaligned = core::hint::black_box((&raw const DATA_NOT_CODE as u64) + 1);
                    asm!(
                        "pushfq",
                        "or qword ptr [rsp], 0x40000",
                        "popfq",
                        "mov {v}, qword ptr [{a}]",
                        a = in(reg) misaligned,
                        v = out(reg) _,
                    );
                }
                // A hang: spins without a system call; the inbox fills.
                "infinite-loop" => asm!("2: jmp 2b", options(noreturn)),
                // A hang of another shape: busy in system calls, never
                // reading the inbox, which fills.
                "never-drain" => loop {
                    userlib::syscall3(nr::CORE_ID, 0, 0, 0);
                    core::hint::spin_loop();
                },
                // A failing exit: the restart policy's "on-failure".
                "exit-nonzero" => return self.detail as i32,
                _ => {}
            }
        }
        FELL_THROUGH
    }
}

/// `int N` for a vector of [`INT_VECTORS`] (the vector is an immediate).
///
/// # Safety
/// None: a software interrupt from ring 3 is the misdeed.
unsafe fn software_interrupt(vector: u8) {
    // SAFETY: none (see above); each arm is one `int` instruction.
    unsafe {
        match vector {
            0x02 => asm!("int 0x02"),
            0x08 => asm!("int 0x08"),
            0x0e => asm!("int 0x0e"),
            0x12 => asm!("int 0x12"),
            0x20 => asm!("int 0x20"),
            0x2f => asm!("int 0x2f"),
            0x41 => asm!("int 0x41"),
            0x80 => asm!("int 0x80"),
            _ => asm!("int 0xff"),
        }
    }
}

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 512];
    frame[0] = depth as u8;
    core::hint::black_box(&mut frame);
    if depth == u64::MAX {
        return 0; // never reached: the stack runs out first
    }
    recurse(depth + 1) + u64::from(frame[0])
}

/// [`Fatal::name`], formatted without allocation.
pub struct Name(Fatal);

impl core::fmt::Display for Name {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match KINDS[self.0.kind] {
            "int" => write!(f, "int-{:#04x}", self.0.detail),
            "exit-nonzero" => write!(f, "exit-nonzero-{}", self.0.detail),
            kind => f.write_str(kind),
        }
    }
}
