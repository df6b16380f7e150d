//! The local APIC: x2APIC (MSR access) where CPUID offers it, xAPIC (MMIO)
//! otherwise. Used to identify the current core, start other cores and send
//! inter-processor interrupts.
//!
//! Invariants:
//! - Every core uses the same mode, chosen once by [`LocalApic::probe`] on
//!   the bootstrap processor.
//! - Enabling a core's APIC masks its timer, LINT0/LINT1, error, thermal and
//!   performance-counter entries: a core takes only the interrupts another
//!   core sends it (server cores must never see a timer tick).
//!
//! Why not the `x2apic` crate: see the crate docs (it arms the timer and
//! wants pre-shifted xAPIC destinations, against the invariants above).

use core::sync::atomic::{Ordering, fence};
use x86_64::registers::model_specific::Msr;

/// Vector for spurious interrupts (its low 4 bits must be 1s on old CPUs).
pub const SPURIOUS_VECTOR: u8 = 0xFF;

const IA32_APIC_BASE: u32 = 0x1B;
const APIC_BASE_ENABLE: u64 = 1 << 11;
const APIC_BASE_X2APIC: u64 = 1 << 10;

// Register offsets in the xAPIC MMIO page; the x2APIC MSR is 0x800 + off/16.
const REG_ID: u32 = 0x020;
const REG_EOI: u32 = 0x0B0;
const REG_SVR: u32 = 0x0F0;
const REG_ESR: u32 = 0x280;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_THERMAL: u32 = 0x330;
const REG_LVT_PERF: u32 = 0x340;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TPR: u32 = 0x080;

const LVT_MASKED: u32 = 1 << 16;
const SVR_ENABLE: u32 = 1 << 8;
const ICR_DELIVERY_PENDING: u32 = 1 << 12;
const ICR_LEVEL_ASSERT: u32 = 1 << 14;
const ICR_TRIGGER_LEVEL: u32 = 1 << 15;
const ICR_ALL_BUT_SELF: u32 = 3 << 18;

/// How a message is delivered to the target core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// An ordinary interrupt on `vector`.
    Fixed(u8),
    /// A non-maskable interrupt (vector 2, ignores IF).
    Nmi,
    /// INIT (assert): resets the target into wait-for-SIPI.
    Init,
    /// INIT level de-assert, required by older processors after INIT.
    InitDeassert,
    /// Start-up IPI: the target starts in real mode at `page * 4096`.
    Startup(u8),
}

impl Delivery {
    fn icr_low(self) -> u32 {
        match self {
            Delivery::Fixed(vector) => u32::from(vector) | ICR_LEVEL_ASSERT,
            Delivery::Nmi => (4 << 8) | ICR_LEVEL_ASSERT,
            Delivery::Init => (5 << 8) | ICR_LEVEL_ASSERT | ICR_TRIGGER_LEVEL,
            Delivery::InitDeassert => (5 << 8) | ICR_TRIGGER_LEVEL,
            Delivery::Startup(page) => (6 << 8) | u32::from(page) | ICR_LEVEL_ASSERT,
        }
    }
}

/// Which register interface the local APIC uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Registers are MSRs 0x800..0x8FF; 32-bit APIC ids.
    X2Apic,
    /// Registers are memory-mapped at `base` (a kernel virtual address of
    /// the APIC page); 8-bit APIC ids.
    XApic { base: usize },
}

/// Handle to "the local APIC of whichever core runs the code". `Copy`: it
/// holds only the access mode.
#[derive(Debug, Clone, Copy)]
pub struct LocalApic {
    mode: Mode,
}

impl LocalApic {
    /// Chooses x2APIC if CPUID.1:ECX[21] says the CPU has it, xAPIC
    /// otherwise. `phys_to_virt` maps the APIC's physical page into the
    /// kernel's address space (the physical-memory map).
    ///
    /// # Safety
    /// `phys_to_virt(addr)` must return a kernel virtual address mapped to
    /// physical `addr`, uncached or at least strongly ordered for MMIO.
    pub unsafe fn probe(phys_to_virt: impl Fn(u64) -> usize) -> LocalApic {
        let leaf1 = core::arch::x86_64::__cpuid(1);
        if leaf1.ecx & (1 << 21) != 0 {
            LocalApic { mode: Mode::X2Apic }
        } else {
            // SAFETY: IA32_APIC_BASE exists on every CPU with a local APIC.
            let base = unsafe { Msr::new(IA32_APIC_BASE).read() } & 0x000F_FFFF_FFFF_F000;
            LocalApic { mode: Mode::XApic { base: phys_to_virt(base) } }
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn read(&self, reg: u32) -> u32 {
        match self.mode {
            // SAFETY: x2APIC mode is enabled on this core (see `enable`),
            // and the MSR number is a defined APIC register.
            Mode::X2Apic => unsafe { Msr::new(0x800 + reg / 16).read() as u32 },
            // SAFETY: `base` maps this core's APIC page (see `probe`); the
            // offset is a defined register inside that page.
            Mode::XApic { base } => unsafe { core::ptr::read_volatile((base + reg as usize) as *const u32) },
        }
    }

    fn write(&self, reg: u32, value: u32) {
        match self.mode {
            // SAFETY: as in `read`; the written value is a valid encoding.
            Mode::X2Apic => unsafe { Msr::new(0x800 + reg / 16).write(u64::from(value)) },
            // SAFETY: as in `read`.
            Mode::XApic { base } => unsafe { core::ptr::write_volatile((base + reg as usize) as *mut u32, value) },
        }
    }

    /// Enables the APIC of the calling core in the chosen mode, with every
    /// local interrupt source masked.
    ///
    /// # Safety
    /// Call once per core, with interrupts disabled, before other methods.
    pub unsafe fn enable(&self) {
        let mut msr = Msr::new(IA32_APIC_BASE);
        // SAFETY: IA32_APIC_BASE exists; setting the enable bits keeps the
        // base address unchanged. x2APIC mode must be entered from xAPIC
        // mode (enable first, then the x2APIC bit), as the SDM requires.
        unsafe {
            let base = msr.read();
            msr.write(base | APIC_BASE_ENABLE);
            if self.mode == Mode::X2Apic {
                msr.write(base | APIC_BASE_ENABLE | APIC_BASE_X2APIC);
            }
        }
        for lvt in [REG_LVT_TIMER, REG_LVT_THERMAL, REG_LVT_PERF, REG_LVT_LINT0, REG_LVT_LINT1, REG_LVT_ERROR] {
            self.write(lvt, LVT_MASKED);
        }
        self.write(REG_TPR, 0);
        self.write(REG_SVR, SVR_ENABLE | u32::from(SPURIOUS_VECTOR));
        self.clear_errors();
    }

    /// The APIC id of the calling core.
    pub fn id(&self) -> u32 {
        match self.mode {
            Mode::X2Apic => self.read(REG_ID),
            Mode::XApic { .. } => self.read(REG_ID) >> 24,
        }
    }

    /// Signals end of interrupt for the interrupt being handled.
    pub fn end_of_interrupt(&self) {
        self.write(REG_EOI, 0);
    }

    fn clear_errors(&self) {
        // The ESR latches on a write; the read returns the errors.
        self.write(REG_ESR, 0);
        let _ = self.read(REG_ESR);
    }

    fn wait_idle(&self) {
        if let Mode::XApic { .. } = self.mode {
            while self.read(REG_ICR_LOW) & ICR_DELIVERY_PENDING != 0 {
                core::hint::spin_loop();
            }
        }
    }

    fn write_icr(&self, destination: u32, low: u32) {
        // Make the sender's earlier stores visible before the target can run
        // the handler they are meant for (x2APIC ICR writes are not
        // serializing).
        fence(Ordering::SeqCst);
        match self.mode {
            Mode::X2Apic => {
                // SAFETY: x2APIC mode is enabled on this core; the ICR MSR
                // takes the destination in its high half.
                unsafe { Msr::new(0x830).write((u64::from(destination) << 32) | u64::from(low)) }
            }
            Mode::XApic { .. } => {
                self.wait_idle();
                self.write(REG_ICR_HIGH, destination << 24);
                self.write(REG_ICR_LOW, low);
                self.wait_idle();
            }
        }
    }

    /// Sends `delivery` to the core with APIC id `apic_id`.
    pub fn send(&self, apic_id: u32, delivery: Delivery) {
        self.write_icr(apic_id, delivery.icr_low());
    }

    /// Sends `delivery` to every core but the caller.
    pub fn send_all_but_self(&self, delivery: Delivery) {
        self.write_icr(0, delivery.icr_low() | ICR_ALL_BUT_SELF);
    }
}
