//! Per-core GDT and TSS, with IST stacks for NMI, double fault and machine
//! check, and the per-core kernel stacks of the application processors.
//!
//! Invariants: slot `i` of every table here belongs to core `i` and is
//! written only by core `i` (in [`load_for_this_core`]) or by the BSP
//! before core `i` starts; after loading, the GDT and TSS stay where they
//! are for the life of the system (the CPU keeps pointers to them).

use core::cell::UnsafeCell;
use cores::MAX_CORES;
use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

/// IST slots (1-based in the IDT, 0-based in the TSS).
pub const IST_NMI: u16 = 0;
pub const IST_DOUBLE_FAULT: u16 = 1;
pub const IST_MACHINE_CHECK: u16 = 2;
const IST_COUNT: usize = 3;

const IST_STACK_SIZE: usize = 16 * 1024;
/// Kernel stack of each application processor.
pub const AP_STACK_SIZE: usize = 64 * 1024;

#[repr(C, align(16))]
struct Stack<const N: usize>([u8; N]);

struct CoreTables {
    gdt: GlobalDescriptorTable,
    tss: TaskStateSegment,
    ist: [Stack<IST_STACK_SIZE>; IST_COUNT],
    kernel_stack: Stack<AP_STACK_SIZE>,
}

struct PerCoreTables([UnsafeCell<CoreTables>; MAX_CORES]);

// SAFETY: slot `i` is only touched by core `i` or, before core `i` runs,
// by the BSP (see the module invariants), so no two cores access one slot
// concurrently.
unsafe impl Sync for PerCoreTables {}

static TABLES: PerCoreTables = PerCoreTables(
    [const {
        UnsafeCell::new(CoreTables {
            gdt: GlobalDescriptorTable::new(),
            tss: TaskStateSegment::new(),
            ist: [const { Stack([0; IST_STACK_SIZE]) }; IST_COUNT],
            kernel_stack: Stack([0; AP_STACK_SIZE]),
        })
    }; MAX_CORES],
);

/// Kernel code selector (same in every core's GDT).
pub const KERNEL_CODE: SegmentSelector = SegmentSelector(0x08);
/// Kernel data selector.
pub const KERNEL_DATA: SegmentSelector = SegmentSelector(0x10);

/// Top of the kernel stack reserved for application processor `index`.
pub fn ap_stack_top(index: usize) -> u64 {
    let slot = TABLES.0[index].get();
    // SAFETY: only the address of the field is computed, nothing is read.
    let base = unsafe { &raw const (*slot).kernel_stack } as u64;
    base + AP_STACK_SIZE as u64
}

/// Builds and loads core `index`'s GDT and TSS, then reloads the segment
/// registers. Call once per core, on that core, with interrupts disabled.
pub fn load_for_this_core(index: usize) {
    let slot = TABLES.0[index].get();
    // SAFETY: slot `index` belongs to the calling core (module invariant)
    // and this runs once per core, so this is the only reference. The
    // tables live in a 'static, as `lgdt`/`ltr` require.
    let CoreTables { gdt, tss, ist, .. }: &'static mut CoreTables = unsafe { &mut *slot };
    for (i, stack) in ist.iter().enumerate() {
        let top = VirtAddr::from_ptr(stack.0.as_ptr()) + IST_STACK_SIZE as u64;
        tss.interrupt_stack_table[i] = top;
    }
    let tss: &'static TaskStateSegment = tss;
    *gdt = GlobalDescriptorTable::new();
    let code = gdt.append(Descriptor::kernel_code_segment());
    let data = gdt.append(Descriptor::kernel_data_segment());
    // User segments come next, in the order `sysret` needs them.
    gdt.append(Descriptor::user_data_segment());
    gdt.append(Descriptor::user_code_segment());
    let tss = gdt.append(Descriptor::tss_segment(tss));
    debug_assert_eq!(code, KERNEL_CODE);
    debug_assert_eq!(data, KERNEL_DATA);
    // SAFETY: the GDT is 'static and holds valid code/data/TSS descriptors;
    // the selectors loaded next index them.
    unsafe {
        gdt.load_unsafe();
        CS::set_reg(code);
        SS::set_reg(data);
        DS::set_reg(data);
        ES::set_reg(data);
        load_tss(tss);
    }
}
