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

/// A kernel stack with a guard page below it (unmapped at boot by
/// [`unmap_stack_guards`], so an overflow faults instead of corrupting).
#[repr(C, align(4096))]
struct GuardedStack<const N: usize> {
    guard: [u8; 4096],
    stack: [u8; N],
}

struct CoreTables {
    gdt: GlobalDescriptorTable,
    tss: TaskStateSegment,
}

/// Kept apart from the tables so that this all-zero array lands in `.bss`
/// instead of the kernel file.
struct CoreStacks {
    ist: [Stack<IST_STACK_SIZE>; IST_COUNT],
    kernel_stack: GuardedStack<AP_STACK_SIZE>,
}

struct PerCore<T>([UnsafeCell<T>; MAX_CORES]);

// SAFETY: slot `i` is only touched by core `i` or, before core `i` runs,
// by the BSP (see the module invariants), so no two cores access one slot
// concurrently.
unsafe impl<T> Sync for PerCore<T> {}

static TABLES: PerCore<CoreTables> = PerCore(
    [const { UnsafeCell::new(CoreTables { gdt: GlobalDescriptorTable::new(), tss: TaskStateSegment::new() }) };
        MAX_CORES],
);

static STACKS: PerCore<CoreStacks> = PerCore(
    [const {
        UnsafeCell::new(CoreStacks {
            ist: [const { Stack([0; IST_STACK_SIZE]) }; IST_COUNT],
            kernel_stack: GuardedStack { guard: [0; 4096], stack: [0; AP_STACK_SIZE] },
        })
    }; MAX_CORES],
);

/// Kernel code selector (same in every core's GDT).
pub const KERNEL_CODE: SegmentSelector = SegmentSelector(0x08);
/// Kernel data selector.
pub const KERNEL_DATA: SegmentSelector = SegmentSelector(0x10);

/// Top of the kernel stack reserved for application processor `index`.
pub fn ap_stack_top(index: usize) -> u64 {
    let slot = STACKS.0[index].get();
    // SAFETY: only the address of the field is computed, nothing is read.
    let base = unsafe { &raw const (*slot).kernel_stack.stack } as u64;
    base + AP_STACK_SIZE as u64
}

/// Unmaps the guard page below every AP kernel stack. Call on the BSP
/// before any AP starts. Returns how many guards are in place.
pub fn unmap_stack_guards(cores: usize) -> usize {
    let mut placed = 0;
    for slot in &STACKS.0[1..cores.min(MAX_CORES)] {
        // SAFETY: only the address of the guard is computed.
        let guard = unsafe { &raw const (*slot.get()).kernel_stack.guard } as u64;
        // SAFETY: the guard page is never used (it is padding below the
        // stack), and no AP runs yet, so no TLB holds it.
        if unsafe { crate::mem::paging::unmap_kernel_page(guard) } {
            placed += 1;
        }
    }
    placed
}

/// Builds and loads core `index`'s GDT and TSS, then reloads the segment
/// registers. Call once per core, on that core, with interrupts disabled.
pub fn load_for_this_core(index: usize) {
    let slot = TABLES.0[index].get();
    // SAFETY: slot `index` belongs to the calling core (module invariant)
    // and this runs once per core, so this is the only reference. The
    // tables live in a 'static, as `lgdt`/`ltr` require.
    let CoreTables { gdt, tss }: &'static mut CoreTables = unsafe { &mut *slot };
    // SAFETY: as above, the stacks slot `index` is this core's alone.
    let stacks: &'static CoreStacks = unsafe { &*STACKS.0[index].get() };
    for (i, stack) in stacks.ist.iter().enumerate() {
        let top = VirtAddr::from_ptr(stack.0.as_ptr()) + IST_STACK_SIZE as u64;
        tss.interrupt_stack_table[i] = top;
    }
    // Traps from ring 3 start at the top of this core's kernel stack (only
    // APs run servers; the BSP keeps the bootloader's stack).
    if index > 0 {
        tss.privilege_stack_table[0] = VirtAddr::new(ap_stack_top(index));
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
