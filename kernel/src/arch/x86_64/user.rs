//! Ring 3: entering a server with `iretq`, and the `syscall` entry stub.
//!
//! ```text
//!  user: rax = number, rdi rsi rdx r10 r8 r9 = arguments; syscall
//!  stub: swapgs; save user rsp in gs:[16]; rsp = gs:[8] (core's kernel stack)
//!        push user rsp, r11 (rflags), rcx (rip), all other registers
//!        call syscall_dispatch(&mut SyscallFrame)   -- result in frame.rax
//!        syscall_exit_to_user: pop everything; rsp = user rsp; swapgs; sysretq
//!        (also the way out of `resume_user`, from a frame in the same layout)
//! ```
//! Invariants: every register but rax (the result), rcx and r11 (clobbered
//! by the `syscall` instruction itself) is preserved for the server.
//! `SFMASK` clears IF, DF, TF and AC on entry, so the stub runs with
//! interrupts off, no single-step trap and no SMAP override until `sysretq`
//! restores the server's RFLAGS (a server that set TF gets its #DB after
//! `sysretq`, in ring 3, reported as its own fault).

use core::sync::atomic::Ordering;
use cores::{OFFSET_SYSCALL_KERNEL_RSP, OFFSET_SYSCALL_USER_RSP};
use x86_64::registers::model_specific::{Efer, EferFlags, KernelGsBase, LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::SegmentSelector;
use x86_64::{PrivilegeLevel, VirtAddr};

/// User data selector (GDT slot 3, RPL 3) and user code (slot 4, RPL 3).
pub const USER_DATA: u16 = 0x18 | 3;
pub const USER_CODE: u16 = 0x20 | 3;

core::arch::global_asm!(
    r#"
    .pushsection .text.syscall_entry, "ax"
    .global syscall_entry
syscall_entry:
    swapgs
    movq %rsp, %gs:{user_rsp}
    movq %gs:{kernel_rsp}, %rsp
    pushq %gs:{user_rsp}
    pushq %r11
    pushq %rcx
    pushq %r15
    pushq %r14
    pushq %r13
    pushq %r12
    pushq %rbp
    pushq %rbx
    pushq %r9
    pushq %r8
    pushq %r10
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rax
    movq %rsp, %rdi
    cld
    call syscall_dispatch
    .global syscall_exit_to_user
syscall_exit_to_user:
    popq %rax
    popq %rdi
    popq %rsi
    popq %rdx
    popq %r10
    popq %r8
    popq %r9
    popq %rbx
    popq %rbp
    popq %r12
    popq %r13
    popq %r14
    popq %r15
    popq %rcx
    popq %r11
    popq %rsp
    swapgs
    sysretq
    .popsection
    "#,
    user_rsp = const OFFSET_SYSCALL_USER_RSP,
    kernel_rsp = const OFFSET_SYSCALL_KERNEL_RSP,
    options(att_syntax)
);

unsafe extern "C" {
    fn syscall_entry();
}

/// Registers at syscall entry, lowest address first. It is a server's
/// whole user context (the kernel uses no FPU/SSE state: servers are built
/// soft-float), so a copy of it is enough to resume a server later.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct SyscallFrame {
    pub rax: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub r10: u64,
    pub r8: u64,
    pub r9: u64,
    pub rbx: u64,
    pub rbp: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub rsp: u64,
}

/// Prepares this core for ring 3: programs its syscall MSRs and its
/// user-mode protections (`cpu::protect_user_boundary_this_core`: UMIP,
/// CR0.AM, how traps clear AC). Call once per core.
pub fn init_syscalls_this_core() {
    super::cpu::protect_user_boundary_this_core();
    // SAFETY: enabling SCE and pointing LSTAR at the entry stub above; the
    // STAR selectors match the GDT layout in `gdt.rs` (kernel code 0x08,
    // data 0x10; user data 0x18, code 0x20 as `sysret` expects).
    unsafe {
        Efer::update(|f| f.insert(EferFlags::SYSTEM_CALL_EXTENSIONS));
        LStar::write(VirtAddr::new(syscall_entry as *const () as u64));
        SFMask::write(RFlags::INTERRUPT_FLAG | RFlags::DIRECTION_FLAG | RFlags::TRAP_FLAG | RFlags::ALIGNMENT_CHECK);
    }
    Star::write(
        SegmentSelector::new(4, PrivilegeLevel::Ring3),
        SegmentSelector::new(3, PrivilegeLevel::Ring3),
        SegmentSelector::new(1, PrivilegeLevel::Ring0),
        SegmentSelector::new(2, PrivilegeLevel::Ring0),
    )
    .expect("GDT layout fits sysret");
}

/// Switches to the server's page tables and drops to ring 3 at `entry` with
/// the stack at `stack_top`. Never returns: the core's kernel stack is
/// reset to `kernel_stack_top` for every later syscall and trap.
///
/// # Safety
/// `cr3` must be a complete address space whose kernel half is the
/// kernel's; `entry` and `stack_top` must be mapped user pages in it;
/// `kernel_stack_top` must be the top of this core's own kernel stack.
pub unsafe fn enter_user(cr3: u64, entry: u64, stack_top: u64, kernel_stack_top: u64) -> ! {
    let core = cores::this_core();
    core.syscall_kernel_rsp.store(kernel_stack_top, Ordering::Relaxed);
    core.cr3_writes.fetch_add(1, Ordering::Relaxed);
    KernelGsBase::write(VirtAddr::new(0));
    // SAFETY: the caller guarantees the address space and addresses; the
    // kernel half stays mapped after the CR3 write, so this code keeps
    // running. `swapgs` leaves the kernel's per-core pointer in
    // KERNEL_GS_BASE for the next syscall or trap. All general registers
    // are cleared so no kernel value leaks to the server.
    unsafe {
        core::arch::asm!(
            "mov cr3, {cr3}",
            "swapgs",
            "push {ss}",
            "push {rsp}",
            "push {rflags}",
            "push {cs}",
            "push {rip}",
            "xor eax, eax",
            "xor ebx, ebx",
            "xor ecx, ecx",
            "xor edx, edx",
            "xor esi, esi",
            "xor edi, edi",
            "xor ebp, ebp",
            "xor r8d, r8d",
            "xor r9d, r9d",
            "xor r10d, r10d",
            "xor r11d, r11d",
            "xor r12d, r12d",
            "xor r13d, r13d",
            "xor r14d, r14d",
            "xor r15d, r15d",
            "iretq",
            cr3 = in(reg) cr3,
            ss = in(reg) u64::from(USER_DATA),
            rsp = in(reg) stack_top,
            rflags = in(reg) 0x202u64,
            cs = in(reg) u64::from(USER_CODE),
            rip = in(reg) entry,
            options(noreturn)
        )
    }
}

impl SyscallFrame {
    /// The context of a server that has not run yet: at `entry` with its
    /// stack at `stack_top`, interrupts on, every other register zero.
    pub fn fresh(entry: u64, stack_top: u64) -> SyscallFrame {
        SyscallFrame { rip: entry, rsp: stack_top, rflags: 0x202, ..SyscallFrame::default() }
    }
}

core::arch::global_asm!(
    r#"
    .pushsection .text.resume_user, "ax"
    .global resume_user_frame
resume_user_frame:
    movq %rdi, %rsp
    jmp syscall_exit_to_user
    .popsection
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    /// Points the stack at a frame in the syscall stub's layout and leaves
    /// through the stub's own exit path (`syscall_exit_to_user`).
    fn resume_user_frame(frame: *const SyscallFrame) -> !;
}

/// Leaves the kernel for the server context `frame` (registers, RIP,
/// RFLAGS and stack), in whatever address space is loaded: the way back to
/// user space from a place that has no syscall frame to return through
/// (a core whose server faulted, when another server shares the core).
///
/// # Safety
/// The loaded CR3 must be the address space `frame` belongs to; `frame`
/// must come from a syscall of that server or be `SyscallFrame::fresh`
/// with a mapped entry and stack; the kernel GS base must be active (we
/// entered from ring 3 through syscall or a trap), as the exit path swaps
/// it back.
pub unsafe fn resume_user(frame: &SyscallFrame) -> ! {
    let copy = *frame;
    // SAFETY: the stub pops `copy` into the registers and returns to ring 3
    // with `sysretq`; the kernel stack below is abandoned, and the next
    // syscall or trap starts again from the core's kernel stack top.
    unsafe { resume_user_frame(&copy) }
}
