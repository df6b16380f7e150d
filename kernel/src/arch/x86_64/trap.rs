//! Interrupt and exception entry: 256 assembly stubs, one per vector, that
//! save the registers into a [`TrapFrame`] and call `trap_dispatch`, which
//! the kernel above this layer defines (`kernel/src/trap_dispatch.rs`).
//!
//! Invariants:
//! - Every stub is 16 bytes apart from the next (`trap_stubs_base + 16*v`),
//!   so the IDT is built without a table of addresses.
//! - Stubs for vectors without a CPU error code push 0, so every frame has
//!   the same layout.
//! - NMI, double fault and machine check run on their own IST stacks.
//! - A trap from ring 3 swaps GS on entry and exit, so kernel code always
//!   sees its per-core data at `gs:[0]`.
//! - Kernel code never runs with a server's EFLAGS.AC or DF: the CPU clears
//!   TF (and IF, through interrupt gates) on delivery but keeps AC, which a
//!   server may set and which would switch SMAP off in ring 0; so an entry
//!   from ring 3 clears AC (`clac` where CPUID offers SMAP, else `pushfq`/
//!   `popfq`), and `cld` clears DF before any Rust code. The server's own
//!   RFLAGS are in the frame and come back with `iretq`.

use super::gdt::{IST_DOUBLE_FAULT, IST_MACHINE_CHECK, IST_NMI};
use core::cell::UnsafeCell;
use cores::MAX_CORES;
use x86_64::VirtAddr;
use x86_64::structures::idt::InterruptDescriptorTable;

/// Vector of the inter-processor test interrupt (the doorbell later).
pub const TEST_IPI_VECTOR: u8 = 0x40;

core::arch::global_asm!(
    r#"
    .pushsection .text.trap_stubs, "ax"
    .balign 16
    .global trap_stubs_base
trap_stubs_base:
    .set trap_vector, 0
    .rept 256
    .balign 16
    .if trap_vector < 32
    .if ((0x60227D00 >> trap_vector) & 1) == 0
    pushq $0
    .endif
    .else
    pushq $0
    .endif
    pushq $trap_vector
    jmp trap_common
    .set trap_vector, trap_vector + 1
    .endr

trap_common:
    // From ring 3 the GS base is the user's: swap in the kernel's (the saved
    // CS is at 24(%rsp): above it the vector and error code).
    testb $3, 24(%rsp)
    jz 1f
    swapgs
    // The server's AC stays in the saved RFLAGS; clear the live one.
    cmpb $0, {clac}(%rip)
    je 3f
    clac
    jmp 1f
3:
    pushfq
    andq $~0x40000, (%rsp)
    popfq
1:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, %rdi
    cld
    call trap_dispatch
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:
    iretq
    .popsection
    "#,
    clac = sym super::cpu::TRAP_ENTRY_CLAC,
    options(att_syntax)
);

unsafe extern "C" {
    static trap_stubs_base: u8;
}

/// The registers saved on entry, in stack order (lowest address first).
#[repr(C)]
#[derive(Debug)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// Short names of the architectural exceptions.
pub fn exception_name(vector: u64) -> &'static str {
    match vector {
        0 => "#DE divide error",
        1 => "#DB debug",
        2 => "NMI",
        3 => "#BP breakpoint",
        4 => "#OF overflow",
        5 => "#BR bound range",
        6 => "#UD invalid opcode",
        7 => "#NM device not available",
        8 => "#DF double fault",
        10 => "#TS invalid TSS",
        11 => "#NP segment not present",
        12 => "#SS stack fault",
        13 => "#GP general protection",
        14 => "#PF page fault",
        16 => "#MF x87 error",
        17 => "#AC alignment check",
        18 => "#MC machine check",
        19 => "#XM SIMD error",
        20 => "#VE virtualization",
        21 => "#CP control protection",
        _ => "reserved exception",
    }
}

struct PerCoreIdt([UnsafeCell<InterruptDescriptorTable>; MAX_CORES]);

// SAFETY: slot `i` is written only by core `i`, once, before it loads it
// (see `load_for_this_core`); afterwards it is only read by the CPU.
unsafe impl Sync for PerCoreIdt {}

static IDTS: PerCoreIdt = PerCoreIdt([const { UnsafeCell::new(InterruptDescriptorTable::new()) }; MAX_CORES]);

/// Builds and loads core `index`'s IDT: every vector goes to its stub.
/// Call once per core, on that core, after its GDT/TSS are loaded.
pub fn load_for_this_core(index: usize) {
    // SAFETY: slot `index` belongs to the calling core and is built once
    // (type invariant of `PerCoreIdt`).
    let idt: &'static mut InterruptDescriptorTable = unsafe { &mut *IDTS.0[index].get() };
    let base = &raw const trap_stubs_base as u64;
    let stub = |vector: u64| VirtAddr::new(base + 16 * vector);
    // SAFETY: for every `set_handler_addr` below, each address is a stub
    // from the block above, which saves all registers, calls the Rust
    // dispatcher with a valid frame and returns with `iretq`.
    unsafe {
        idt.divide_error.set_handler_addr(stub(0));
        idt.debug.set_handler_addr(stub(1));
        idt.non_maskable_interrupt.set_handler_addr(stub(2)).set_stack_index(IST_NMI);
        idt.breakpoint.set_handler_addr(stub(3));
        idt.overflow.set_handler_addr(stub(4));
        idt.bound_range_exceeded.set_handler_addr(stub(5));
        idt.invalid_opcode.set_handler_addr(stub(6));
        idt.device_not_available.set_handler_addr(stub(7));
        idt.double_fault.set_handler_addr(stub(8)).set_stack_index(IST_DOUBLE_FAULT);
        idt.invalid_tss.set_handler_addr(stub(10));
        idt.segment_not_present.set_handler_addr(stub(11));
        idt.stack_segment_fault.set_handler_addr(stub(12));
        idt.general_protection_fault.set_handler_addr(stub(13));
        idt.page_fault.set_handler_addr(stub(14));
        idt.x87_floating_point.set_handler_addr(stub(16));
        idt.alignment_check.set_handler_addr(stub(17));
        idt.machine_check.set_handler_addr(stub(18)).set_stack_index(IST_MACHINE_CHECK);
        idt.simd_floating_point.set_handler_addr(stub(19));
        idt.virtualization.set_handler_addr(stub(20));
        idt.cp_protection_exception.set_handler_addr(stub(21));
        for vector in 32..=255u8 {
            idt[vector].set_handler_addr(stub(u64::from(vector)));
        }
    }
    // SAFETY: the IDT is 'static and every present entry points at a stub.
    unsafe { idt.load_unsafe() };
}
