//! Starting application processors: the real-mode trampoline and the
//! INIT-SIPI-SIPI sequence.
//!
//! ```text
//!  BSP                                     AP (after SIPI, real mode, CS:IP = 0800:0000)
//!  copy trampoline to 0x8000                 lgdt (trampoline GDT) ; CR0.PE=1
//!  temp PML4 at 0x9000 = kernel PML4        -> 32-bit: CR4.PAE, CR3=0x9000,
//!     + [0] identity-maps 0..2 MiB              EFER.LME|NXE, CR0.PG|WP
//!  write stack, entry, core index           -> 64-bit: rsp = stack, rdi = core index
//!  INIT, (10 ms), SIPI, (200 us), SIPI          call entry  (kernel virtual address)
//!  wait for the core's `online` flag         entry loads the kernel's CR3, GDT, IDT...
//! ```
//!
//! Invariants: APs start one at a time (the parameter block is shared);
//! the low pages 0x8000..0xC000 must be free RAM (the kernel checks the
//! memory map before calling [`Trampoline::install`]).

use crate::apic::{Delivery, LocalApic};
use core::sync::atomic::{AtomicBool, Ordering};

/// Physical address the trampoline runs at (SIPI vector 0x08).
pub const TRAMPOLINE_PHYS: u64 = 0x8000;
/// Temporary page tables: PML4, PDPT, PD.
pub const TEMP_TABLES_PHYS: u64 = 0x9000;
/// First byte after the low memory the trampoline uses.
pub const LOW_MEMORY_END: u64 = 0xC000;

core::arch::global_asm!(
    r#"
    .pushsection .text.ap_trampoline, "ax"
    .global ap_trampoline_start
    .global ap_trampoline_params
    .global ap_trampoline_end
    .set TR_BASE, 0x8000
    .code16
ap_trampoline_start:
    cli
    cld
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    lgdtl (ap_trampoline_gdtr - ap_trampoline_start + TR_BASE)
    movl %cr0, %eax
    orl $1, %eax
    movl %eax, %cr0
    ljmpl $0x08, $(ap_trampoline_pm32 - ap_trampoline_start + TR_BASE)

    .code32
ap_trampoline_pm32:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movl %cr4, %eax
    orl $(1 << 5), %eax
    movl %eax, %cr4
    movl (ap_trampoline_params - ap_trampoline_start + TR_BASE), %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx
    rdmsr
    orl $((1 << 8) | (1 << 11)), %eax
    wrmsr
    movl %cr0, %eax
    orl $0x80010000, %eax
    movl %eax, %cr0
    ljmpl $0x18, $(ap_trampoline_lm64 - ap_trampoline_start + TR_BASE)

    .code64
ap_trampoline_lm64:
    xorl %eax, %eax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw %ax, %fs
    movw %ax, %gs
    movq (ap_trampoline_params - ap_trampoline_start + TR_BASE + 8), %rsp
    movq (ap_trampoline_params - ap_trampoline_start + TR_BASE + 24), %rdi
    movq (ap_trampoline_params - ap_trampoline_start + TR_BASE + 16), %rax
    callq *%rax
2:  hlt
    jmp 2b

    .balign 16
ap_trampoline_gdt:
    .quad 0
    .quad 0x00CF9A000000FFFF
    .quad 0x00CF92000000FFFF
    .quad 0x00AF9A000000FFFF
ap_trampoline_gdtr:
    .word ap_trampoline_gdtr - ap_trampoline_gdt - 1
    .long ap_trampoline_gdt - ap_trampoline_start + TR_BASE

    .balign 8
ap_trampoline_params:
    .quad 0
    .quad 0
    .quad 0
    .quad 0
ap_trampoline_end:
    .popsection
    "#,
    options(att_syntax)
);

unsafe extern "C" {
    static ap_trampoline_start: u8;
    static ap_trampoline_params: u8;
    static ap_trampoline_end: u8;
}

/// The parameter block at the end of the trampoline.
#[repr(C)]
struct Params {
    temp_cr3: u64,
    stack_top: u64,
    entry: u64,
    core_index: u64,
}

/// Entry point an AP jumps to in 64-bit mode, still on the temporary page
/// tables; it must load the kernel's CR3 first.
pub type ApEntry = unsafe extern "C" fn(core_index: u64) -> !;

/// An installed trampoline (low memory prepared).
pub struct Trampoline {
    params: *mut Params,
}

/// One application processor to start.
#[derive(Clone, Copy)]
pub struct ApStart<'a> {
    pub apic_id: u32,
    /// Logical core index handed to the entry point.
    pub core_index: usize,
    pub stack_top: u64,
    /// Set (Release) by the AP once it runs kernel code.
    pub online: &'a AtomicBool,
    pub tsc_per_us: u64,
    pub timeout_us: u64,
    /// Start nothing (fault injection for tests of the "did not start" path).
    pub skip_sipi: bool,
}

/// Why an AP did not come up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartError {
    /// No `online` signal within the timeout.
    Timeout,
}

fn rdtsc() -> u64 {
    // SAFETY: RDTSC has no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

fn delay_us(tsc_per_us: u64, us: u64) {
    let end = rdtsc() + tsc_per_us * us;
    while rdtsc() < end {
        core::hint::spin_loop();
    }
}

impl Trampoline {
    /// Copies the trampoline to [`TRAMPOLINE_PHYS`] and builds the temporary
    /// page tables: a copy of the current PML4 whose entry 0 identity-maps
    /// the first 2 MiB.
    ///
    /// # Safety
    /// Physical memory `TRAMPOLINE_PHYS..LOW_MEMORY_END` must be free RAM,
    /// reachable at `phys_to_virt(addr)`, and not used by anything else
    /// while APs start. The current page tables must leave PML4 entry 0 to
    /// the low identity range (the bootloader does).
    pub unsafe fn install(phys_to_virt: impl Fn(u64) -> usize, entry: ApEntry) -> Trampoline {
        // The three symbols delimit the trampoline blob emitted above in
        // one section.
        let (start, params_at, end) = (
            &raw const ap_trampoline_start as usize,
            &raw const ap_trampoline_params as usize,
            &raw const ap_trampoline_end as usize,
        );
        let len = end - start;
        assert!(TRAMPOLINE_PHYS as usize + len <= TEMP_TABLES_PHYS as usize, "trampoline too large");
        let dst = phys_to_virt(TRAMPOLINE_PHYS) as *mut u8;
        // SAFETY: the source is the blob above; the destination is free low
        // memory (caller's contract), and the two do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(start as *const u8, dst, len) };

        let (pml4_frame, _) = x86_64::registers::control::Cr3::read();
        let kernel_pml4 = phys_to_virt(pml4_frame.start_address().as_u64()) as *const u64;
        let temp_pml4 = phys_to_virt(TEMP_TABLES_PHYS) as *mut u64;
        let temp_pdpt = phys_to_virt(TEMP_TABLES_PHYS + 0x1000) as *mut u64;
        let temp_pd = phys_to_virt(TEMP_TABLES_PHYS + 0x2000) as *mut u64;
        const PRESENT_WRITABLE: u64 = 0b11;
        const HUGE: u64 = 1 << 7;
        // SAFETY: all four are page-sized, page-aligned tables: the active
        // PML4 (read only) and three free low pages (caller's contract).
        unsafe {
            core::ptr::copy_nonoverlapping(kernel_pml4, temp_pml4, 512);
            core::ptr::write_bytes(temp_pdpt, 0, 512);
            core::ptr::write_bytes(temp_pd, 0, 512);
            *temp_pml4 = (TEMP_TABLES_PHYS + 0x1000) | PRESENT_WRITABLE;
            *temp_pdpt = (TEMP_TABLES_PHYS + 0x2000) | PRESENT_WRITABLE;
            *temp_pd = HUGE | PRESENT_WRITABLE; // 0..2 MiB, identity
        }
        let params = (dst as usize + (params_at - start)) as *mut Params;
        // SAFETY: `params` lies inside the copied blob, 8-byte aligned.
        unsafe {
            (*params).temp_cr3 = TEMP_TABLES_PHYS;
            (*params).entry = entry as usize as u64;
        }
        Trampoline { params }
    }

    /// Starts the AP described by `ap` and waits until it sets `ap.online`.
    ///
    /// # Safety
    /// `ap.stack_top` must be the 16-byte-aligned end of a stack no one else
    /// uses; `ap.apic_id` must be an AP nobody started. One AP at a time.
    pub unsafe fn start(&self, apic: &LocalApic, ap: &ApStart) -> Result<(), StartError> {
        let ApStart { apic_id, core_index, stack_top, online, tsc_per_us, timeout_us, skip_sipi } = *ap;
        // SAFETY: `params` points into the installed trampoline; no AP reads
        // it now (the previous one has signalled `online` or timed out).
        unsafe {
            core::ptr::write_volatile(&raw mut (*self.params).stack_top, stack_top);
            core::ptr::write_volatile(&raw mut (*self.params).core_index, core_index as u64);
        }
        if !skip_sipi {
            apic.send(apic_id, Delivery::Init);
            delay_us(tsc_per_us, 200);
            apic.send(apic_id, Delivery::InitDeassert);
            delay_us(tsc_per_us, 10_000);
            let page = (TRAMPOLINE_PHYS >> 12) as u8;
            for _ in 0..2 {
                apic.send(apic_id, Delivery::Startup(page));
                delay_us(tsc_per_us, 200);
                if online.load(Ordering::Acquire) {
                    return Ok(());
                }
            }
        }
        let deadline = rdtsc() + tsc_per_us * timeout_us;
        while rdtsc() < deadline {
            // Pairs with the Release store the AP makes once it is up.
            if online.load(Ordering::Acquire) {
                return Ok(());
            }
            core::hint::spin_loop();
        }
        Err(StartError::Timeout)
    }
}
