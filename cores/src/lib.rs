//! Per-core data and core roles, reachable from any code running on a core
//! through the GS base, without locks.
//!
//! Invariants:
//! - `CORES[i]` describes logical core `i` for the life of the system; core 0
//!   is the bootstrap processor (BSP).
//! - A core's GS base points at its own `PerCore` once [`install`] ran on that
//!   core, and never changes afterwards.
//! - Every field another core may touch is an atomic; the owning core is the
//!   only writer of its own counters.
#![cfg_attr(not(test), no_std)]

use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// Most cores the kernel supports; extra processors are reported and skipped.
pub const MAX_CORES: usize = 64;

/// What a core does for its whole life (roles come from the system TOML,
/// docs/config.md; the kernel sets them as cores start, docs/boot.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Role {
    /// Not started (or failed to start).
    Offline = 0,
    /// The bootstrap processor running the kernel's boot and control code.
    Kernel = 1,
    /// Waits in a `pause` loop for work posted to its mailbox.
    Idle = 2,
    /// Runs the kernel mover loop.
    Mover = 3,
    /// Runs one user-space server.
    Server = 4,
    /// Stopped after its server exited or faulted; takes mailbox work.
    Parked = 5,
}

impl Role {
    pub fn from_u8(value: u8) -> Role {
        match value {
            1 => Role::Kernel,
            2 => Role::Idle,
            3 => Role::Mover,
            4 => Role::Server,
            5 => Role::Parked,
            _ => Role::Offline,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Offline => "offline",
            Role::Kernel => "kernel",
            Role::Idle => "idle",
            Role::Mover => "mover",
            Role::Server => "server",
            Role::Parked => "parked",
        }
    }
}

/// Work another core posts to an idle core: a function and one argument.
pub type Work = fn(usize);

/// Mailbox state while a poster writes the argument (never a valid `fn`).
const MAILBOX_CLAIMED: usize = 1;

/// Byte offset of [`PerCore::syscall_kernel_rsp`] (used by `gs:` in the
/// syscall entry stub).
pub const OFFSET_SYSCALL_KERNEL_RSP: usize = 8;
/// Byte offset of [`PerCore::syscall_user_rsp`].
pub const OFFSET_SYSCALL_USER_RSP: usize = 16;

/// No server on this core.
pub const NO_SERVER: usize = usize::MAX;

/// Everything the kernel keeps per core. `#[repr(C)]` with `self_ptr` first:
/// `gs:[0]` holds the address of the structure itself.
#[repr(C, align(128))]
pub struct PerCore {
    /// Address of this structure; read through `gs:[0]`.
    self_ptr: AtomicUsize,
    /// Kernel stack top loaded by the syscall entry stub (`gs:[8]`).
    pub syscall_kernel_rsp: AtomicU64,
    /// Scratch slot for the user stack pointer during syscall entry (`gs:[16]`).
    pub syscall_user_rsp: AtomicU64,
    /// Index of the server this core runs (`NO_SERVER` if none).
    pub server: AtomicUsize,
    /// System calls taken on this core.
    pub syscalls: AtomicU64,
    /// Exceptions taken on this core (from any privilege level).
    pub exceptions: AtomicU64,
    /// CR3 writes on this core (address-space switches).
    pub cr3_writes: AtomicU64,
    /// Messages this core moved (movers) — single writer.
    pub messages: AtomicU64,
    /// TSC ticks spent asleep (MWAIT/HLT in the `wait` path).
    pub sleep_ticks: AtomicU64,
    /// Times the core went to sleep, and times it woke.
    pub sleeps: AtomicU64,
    /// TSC ticks the kernel's own poll loop (the mover) spent in `pause`
    /// steps; servers report theirs on their statistics page.
    pub pause_ticks: AtomicU64,
    /// Performance-request (P-state) writes.
    pub pstate_changes: AtomicU64,
    /// Sleeps called off at the kernel's last check (interrupts off,
    /// MONITOR armed): a waker claimed the wake word after the announcement.
    pub sleeps_called_off: AtomicU64,
    /// Mover sleeps withdrawn at the outbox re-check: a message was
    /// published while the mover announced sleep.
    pub sleeps_withdrawn: AtomicU64,
    /// Test knob only (`power.race_delay_us`): sleeps whose wake-up came
    /// between the last check and `sti; hlt|mwait` (the pending doorbell or
    /// the monitored store ended the sleep at once).
    pub woken_before_halt: AtomicU64,
    /// TSC when the core started its role (for the asleep fraction).
    pub role_started_tsc: AtomicU64,
    /// Logical core index (0 = BSP), equal to the position in `CORES`.
    pub index: AtomicU32,
    /// Local APIC id of this core.
    pub apic_id: AtomicU32,
    role: AtomicU8,
    /// Set by the core itself once it runs kernel code with its own GDT/IDT.
    pub online: AtomicBool,
    /// A posted function (a `Work` as usize; 0 = none) and its argument.
    mailbox_fn: AtomicUsize,
    mailbox_arg: AtomicUsize,
    /// Work items this core has completed.
    pub work_done: AtomicU64,
    /// Interrupts taken on this core (every vector but exceptions).
    pub interrupts: AtomicU64,
    /// Test/doorbell IPIs received.
    pub ipis_received: AtomicU64,
}

impl PerCore {
    const fn new(index: u32) -> Self {
        Self {
            self_ptr: AtomicUsize::new(0),
            syscall_kernel_rsp: AtomicU64::new(0),
            syscall_user_rsp: AtomicU64::new(0),
            server: AtomicUsize::new(NO_SERVER),
            syscalls: AtomicU64::new(0),
            exceptions: AtomicU64::new(0),
            cr3_writes: AtomicU64::new(0),
            messages: AtomicU64::new(0),
            sleep_ticks: AtomicU64::new(0),
            sleeps: AtomicU64::new(0),
            pause_ticks: AtomicU64::new(0),
            pstate_changes: AtomicU64::new(0),
            sleeps_called_off: AtomicU64::new(0),
            sleeps_withdrawn: AtomicU64::new(0),
            woken_before_halt: AtomicU64::new(0),
            role_started_tsc: AtomicU64::new(0),
            index: AtomicU32::new(index),
            apic_id: AtomicU32::new(u32::MAX),
            role: AtomicU8::new(Role::Offline as u8),
            online: AtomicBool::new(false),
            mailbox_fn: AtomicUsize::new(0),
            mailbox_arg: AtomicUsize::new(0),
            work_done: AtomicU64::new(0),
            interrupts: AtomicU64::new(0),
            ipis_received: AtomicU64::new(0),
        }
    }

    pub fn index(&self) -> usize {
        self.index.load(Ordering::Relaxed) as usize
    }

    pub fn role(&self) -> Role {
        Role::from_u8(self.role.load(Ordering::Acquire))
    }

    pub fn set_role(&self, role: Role) {
        self.role.store(role as u8, Ordering::Release);
    }

    /// Posts `work(arg)` to this core's mailbox. Returns `false` if work is
    /// already pending (the caller retries or waits). Any core may post.
    pub fn post(&self, work: Work, arg: usize) -> bool {
        // Claim the empty mailbox (0 -> CLAIMED) so that two posters cannot
        // interleave their argument writes.
        if self.mailbox_fn.compare_exchange(0, MAILBOX_CLAIMED, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return false;
        }
        self.mailbox_arg.store(arg, Ordering::Relaxed);
        // Pairs with the Acquire load in `take_work`: the argument is visible
        // once the function pointer is.
        self.mailbox_fn.store(work as usize, Ordering::Release);
        true
    }

    /// Takes posted work, if any. Only the owning core calls this.
    pub fn take_work(&self) -> Option<(Work, usize)> {
        // Pairs with the Release store in `post`.
        let raw = self.mailbox_fn.load(Ordering::Acquire);
        if raw == 0 || raw == MAILBOX_CLAIMED {
            return None;
        }
        let arg = self.mailbox_arg.load(Ordering::Relaxed);
        // Pairs with the Acquire CAS in `post`: the next poster sees our
        // read of the argument as done before it overwrites it.
        self.mailbox_fn.store(0, Ordering::Release);
        // SAFETY: the only values other than 0 and MAILBOX_CLAIMED ever stored
        // in `mailbox_fn` are `Work` function pointers cast by `post`.
        let work: Work = unsafe { core::mem::transmute::<usize, Work>(raw) };
        Some((work, arg))
    }

    /// True while posted work has not been taken yet.
    pub fn work_pending(&self) -> bool {
        self.mailbox_fn.load(Ordering::Acquire) != 0
    }
}

const _: () = assert!(core::mem::offset_of!(PerCore, syscall_kernel_rsp) == OFFSET_SYSCALL_KERNEL_RSP);
const _: () = assert!(core::mem::offset_of!(PerCore, syscall_user_rsp) == OFFSET_SYSCALL_USER_RSP);

/// The per-core table, indexed by logical core index.
pub static CORES: [PerCore; MAX_CORES] = {
    let mut cores = [const { PerCore::new(0) }; MAX_CORES];
    let mut i = 0;
    while i < MAX_CORES {
        cores[i] = PerCore::new(i as u32);
        i += 1;
    }
    cores
};

/// Number of cores the boot code found (online or not).
pub static CORE_COUNT: AtomicUsize = AtomicUsize::new(1);

/// Cores described in `CORES` (the processors the MADT enables, capped).
pub fn all() -> &'static [PerCore] {
    &CORES[..CORE_COUNT.load(Ordering::Acquire).min(MAX_CORES)]
}

/// Points this core's GS base at `CORES[index]`. Call once per core, early.
#[cfg(target_arch = "x86_64")]
pub fn install(index: usize) {
    let core = &CORES[index];
    core.self_ptr.store(core as *const PerCore as usize, Ordering::Relaxed);
    // IA32_GS_BASE now points at a 'static; nothing else in the kernel uses GS.
    x86_64::registers::model_specific::GsBase::write(x86_64::VirtAddr::new(core as *const PerCore as u64));
}

/// The `PerCore` of the core this runs on. Must only be called after
/// [`install`] ran on this core.
#[cfg(target_arch = "x86_64")]
#[inline]
pub fn this_core() -> &'static PerCore {
    let ptr: usize;
    // SAFETY: after `install`, gs:[0] holds the address of this core's entry
    // in the 'static `CORES` table (see `self_ptr`). Reading it has no side
    // effects.
    unsafe {
        core::arch::asm!("mov {}, gs:[0]", out(reg) ptr, options(nostack, readonly, preserves_flags));
        &*(ptr as *const PerCore)
    }
}

/// The loop an idle core runs: take posted work and run it, otherwise call
/// `wait` (the kernel halts the core until a wake-up interrupt; whoever
/// posts work sends one). Never returns.
pub fn idle_loop(core: &'static PerCore, wait: fn(&PerCore)) -> ! {
    loop {
        if let Some((work, arg)) = core.take_work() {
            work(arg);
            core.work_done.fetch_add(1, Ordering::Release);
        } else {
            wait(core);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SEEN: AtomicUsize = AtomicUsize::new(0);
    fn record(arg: usize) {
        SEEN.store(arg, Ordering::SeqCst);
    }

    #[test]
    fn mailbox_holds_one_item() {
        let core = &CORES[5];
        assert!(core.take_work().is_none());
        assert!(core.post(record, 42));
        assert!(!core.post(record, 43), "a second post must wait for the first");
        let (work, arg) = core.take_work().expect("posted work");
        work(arg);
        assert_eq!(SEEN.load(Ordering::SeqCst), 42);
        assert!(core.take_work().is_none());
        assert!(core.post(record, 44));
        assert!(core.work_pending());
    }

    #[test]
    fn indices_match_positions() {
        for (i, core) in CORES.iter().enumerate() {
            assert_eq!(core.index(), i);
            assert_eq!(core.role(), Role::Offline);
        }
    }

    #[test]
    fn mailbox_across_threads() {
        let core: &'static PerCore = &CORES[9];
        static SUM: AtomicUsize = AtomicUsize::new(0);
        fn add(arg: usize) {
            SUM.fetch_add(arg, Ordering::Relaxed);
        }
        let consumer = std::thread::spawn(move || {
            let mut taken = 0;
            while taken < 1000 {
                if let Some((work, arg)) = core.take_work() {
                    work(arg);
                    taken += 1;
                }
            }
        });
        for i in 1..=1000 {
            while !core.post(add, i) {
                std::hint::spin_loop();
            }
        }
        consumer.join().unwrap();
        assert_eq!(SUM.load(Ordering::Relaxed), 500_500);
    }
}
