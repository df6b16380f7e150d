//! The serial console (COM1, 16550 UART) and the `log` backend on it.
//!
//! ```text
//!  kprintln! / log::info! ... ─► lock() ─► print deferred lines first, then its own
//!  a server's `log` line      ─► print_line: formatted into a bounded buffer
//!                                first, then one lock for one line
//!  the mover (must not wait)  ─► try_log: lock free?  yes: print now
//!                                                     no : copy the line into a
//!                                                          free slot (no lock), the
//!                                                          next lock() prints it;
//!                                                          no slot: counted as lost
//! ```
//!
//! Invariants: every line is written whole under one lock, prefixed with
//! the core it comes from, so lines from different cores never interleave.
//! A server's line holds the lock for at most `LINE_MAX` bytes (plus the
//! few deferred lines it flushes), and `try_log` never waits for the lock.
//! The panic path stops the other cores first and then takes the lock by
//! force (see `panic.rs`).

use core::cell::UnsafeCell;
use core::fmt::Write;
use core::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use spin::{Mutex, MutexGuard};
use x86_64::instructions::port::Port;

const COM1: u16 = 0x3F8;

pub struct Serial {
    initialized: bool,
}

impl Serial {
    fn init(&mut self) {
        // SAFETY: COM1's registers are fixed legacy I/O ports; programming
        // them (8N1, 115200 baud, FIFO on, interrupts off) affects only the
        // UART.
        unsafe {
            Port::<u8>::new(COM1 + 1).write(0x00); // no UART interrupts
            Port::<u8>::new(COM1 + 3).write(0x80); // DLAB on
            Port::<u8>::new(COM1).write(0x01); // divisor 1 = 115200 baud
            Port::<u8>::new(COM1 + 1).write(0x00);
            Port::<u8>::new(COM1 + 3).write(0x03); // 8N1, DLAB off
            Port::<u8>::new(COM1 + 2).write(0xC7); // FIFO on, cleared
            Port::<u8>::new(COM1 + 4).write(0x03); // DTR, RTS
        }
        self.initialized = true;
    }

    fn write_byte(&mut self, byte: u8) {
        if !self.initialized {
            self.init();
        }
        let mut line_status = Port::<u8>::new(COM1 + 5);
        let mut data = Port::<u8>::new(COM1);
        // SAFETY: reading the line status and writing the data register of
        // COM1 only sends a byte.
        unsafe {
            for _ in 0..100_000 {
                if line_status.read() & 0x20 != 0 {
                    break;
                }
                core::hint::spin_loop();
            }
            data.write(byte);
        }
    }
}

impl Write for Serial {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

impl Serial {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
    }
}

pub static SERIAL: Mutex<Serial> = Mutex::new(Serial { initialized: false });

/// The console, after printing the lines `try_log` deferred while it was
/// busy (one load when there are none).
pub fn lock() -> MutexGuard<'static, Serial> {
    let mut serial = SERIAL.lock();
    flush_deferred(&mut serial);
    serial
}

/// Prints to the serial console without a prefix (whole string under the lock).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::serial::lock(), $($arg)*);
    }};
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut serial = $crate::serial::lock();
        let _ = write!(serial, $($arg)*);
        let _ = serial.write_str("\n");
    }};
}

/// Longest line `print_line` and `try_log` write: a server's `log` text
/// (`abi::LOG_MAX`) with the kernel's prefix, or a kernel warning. Longer
/// lines are cut.
pub const LINE_MAX: usize = abi::LOG_MAX + 128;

/// One line formatted ahead of the lock (cut at `LINE_MAX` bytes).
struct LineBuf {
    bytes: [u8; LINE_MAX],
    len: usize,
}

impl LineBuf {
    const fn new() -> LineBuf {
        LineBuf { bytes: [0; LINE_MAX], len: 0 }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len.min(LINE_MAX)]
    }
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let take = s.len().min(LINE_MAX - self.len);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Prints one line formatted before the lock is taken, so the lock is
/// held only for writing at most `LINE_MAX` bytes (a server's `log`).
pub fn print_line(args: core::fmt::Arguments) {
    let mut line = LineBuf::new();
    let _ = line.write_fmt(args);
    let mut serial = lock();
    serial.write_bytes(line.as_bytes());
    serial.write_bytes(b"\n");
}

/// What `try_log` did with a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logged {
    /// The console was free: printed now.
    Printed,
    /// The console was busy: kept, printed by the next `lock()`.
    Deferred,
    /// The console was busy and every slot was full: counted, not kept.
    Lost,
}

const SLOT_FREE: u8 = 0;
const SLOT_WRITING: u8 = 1;
const SLOT_READY: u8 = 2;
/// Lines `try_log` can keep while the console is busy.
const DEFERRED_SLOTS: usize = 8;

struct DeferredSlot {
    state: AtomicU8,
    line: UnsafeCell<LineBuf>,
}

// SAFETY: `line` is written only by the core whose compare-exchange moved
// `state` from FREE to WRITING, and read only by the holder of the console
// lock after it saw READY (Acquire, pairing with the writer's Release);
// the reader hands the slot back with a Release store of FREE after its
// last read, which the next writer's Acquire compare-exchange pairs with.
// So no two cores ever access `line` at once.
unsafe impl Sync for DeferredSlot {}

static DEFERRED: [DeferredSlot; DEFERRED_SLOTS] =
    [const { DeferredSlot { state: AtomicU8::new(SLOT_FREE), line: UnsafeCell::new(LineBuf::new()) } }; DEFERRED_SLOTS];
/// Slots READY (a hint that keeps `lock()` to one load when zero).
static DEFERRED_READY: AtomicUsize = AtomicUsize::new(0);
/// Lines deferred since boot, and lines lost for want of a slot (the
/// latter reset when reported).
static DEFERRED_TOTAL: AtomicU64 = AtomicU64::new(0);
static DEFERRED_LOST: AtomicU64 = AtomicU64::new(0);
static DEFERRED_LOST_TOTAL: AtomicU64 = AtomicU64::new(0);

/// Logs a line at `level` without ever waiting for the console lock: for
/// code that must not stall (the mover). If another core holds the lock,
/// the line is copied into a free slot and printed by the next `lock()`
/// (any core's next line, at the latest the end-of-run report); with
/// every slot taken it is counted as lost (the count is printed). Call it
/// as `crate::serial::try_log(log::Level::Warn, format_args!(...))` (a
/// crate-root macro would not name its layer for the layers test).
pub fn try_log(level: log::Level, args: core::fmt::Arguments) -> Logged {
    let core = crate::arch::x86_64::cpu::current_core_index();
    if let Some(mut serial) = SERIAL.try_lock() {
        flush_deferred(&mut serial);
        let _ = writeln!(serial, "[core {core}] {level:5} {args}");
        return Logged::Printed;
    }
    DEFERRED_TOTAL.fetch_add(1, Ordering::Relaxed);
    for slot in &DEFERRED {
        // Pairs with the Release store of FREE in `flush_deferred`.
        if slot.state.compare_exchange(SLOT_FREE, SLOT_WRITING, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            // SAFETY: this core moved the slot to WRITING, so it alone may
            // touch `line` until it stores READY (see `DeferredSlot`).
            let line = unsafe { &mut *slot.line.get() };
            line.len = 0;
            let _ = write!(line, "[core {core}] {level:5} {args} (deferred: the console was busy)");
            // Pairs with the Acquire load in `flush_deferred`.
            slot.state.store(SLOT_READY, Ordering::Release);
            DEFERRED_READY.fetch_add(1, Ordering::Release);
            return Logged::Deferred;
        }
    }
    DEFERRED_LOST.fetch_add(1, Ordering::Relaxed);
    DEFERRED_LOST_TOTAL.fetch_add(1, Ordering::Relaxed);
    Logged::Lost
}

/// Prints every deferred line that is ready, and how many were lost.
/// Needs the console: the guard proves the caller holds the lock, so one
/// core at a time reads the slots.
fn flush_deferred(serial: &mut Serial) {
    // Pairs with the Release increment in `try_log`.
    if DEFERRED_READY.load(Ordering::Acquire) == 0 && DEFERRED_LOST.load(Ordering::Relaxed) == 0 {
        return;
    }
    for slot in &DEFERRED {
        // Pairs with the Release store of READY in `try_log`.
        if slot.state.load(Ordering::Acquire) != SLOT_READY {
            continue;
        }
        // SAFETY: the slot is READY and we hold the console lock, so no
        // writer touches it and no other reader exists (see `DeferredSlot`).
        let line = unsafe { &*slot.line.get() };
        serial.write_bytes(line.as_bytes());
        serial.write_bytes(b"\n");
        // Pairs with the Acquire compare-exchange of the next writer.
        slot.state.store(SLOT_FREE, Ordering::Release);
        DEFERRED_READY.fetch_sub(1, Ordering::Relaxed);
    }
    let lost = DEFERRED_LOST.swap(0, Ordering::Relaxed);
    if lost > 0 {
        let core = crate::arch::x86_64::cpu::current_core_index();
        let _ = writeln!(
            serial,
            "[core {core}] WARN  serial: {lost} kernel line(s) lost: the console was busy and all {DEFERRED_SLOTS} deferred-line slots were full"
        );
    }
}

/// Prints the deferred lines now, if the console is free (never waits):
/// for a core with time on its hands (the supervisor on core 0).
#[allow(dead_code, reason = "for the supervisor loop (`lifecycle`), which may call it")]
pub fn flush_deferred_if_free() {
    if let Some(mut serial) = SERIAL.try_lock() {
        flush_deferred(&mut serial);
    }
}

/// Lines `try_log` deferred since boot, and lines it lost.
pub fn deferred_counts() -> (u64, u64) {
    (DEFERRED_TOTAL.load(Ordering::Relaxed), DEFERRED_LOST_TOTAL.load(Ordering::Relaxed))
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let core = crate::arch::x86_64::cpu::current_core_index();
        let mut serial = lock();
        let _ = writeln!(serial, "[core {core}] {:5} {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the serial logger as the `log` backend.
pub fn init_logging() {
    lock().init();
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}

// ---- console input ----
//
// Lines typed on COM1 (or piped into QEMU's `-serial stdio`) are read by
// the supervisor on core 0, which halts between events: the UART's
// receive interrupt (IER bit 0, ISA IRQ 4) is routed through the I/O APIC
// to core 0 with a vector whose handler only acknowledges it (the
// doorbell's), so a byte wakes core 0 from `hlt`, and the supervisor then
// drains the UART here and hands each complete line to its caller. No
// timer is involved. The interrupt is edge-triggered: the UART raises it
// when its receive FIFO goes from empty to holding data, so every call
// drains the FIFO until the line-status register says empty (a byte that
// arrives after that raises a new edge, which wakes the next `hlt`).
//
// Invariants: a line is at most `INPUT_LINE_MAX` bytes (a longer one is
// dropped whole and counted); bytes are read by one core only (the
// supervisor) under `INPUT`; the handler runs with no console lock held.

/// Longest console input line kept (longer lines are dropped).
pub const INPUT_LINE_MAX: usize = 256;

struct InputLine {
    bytes: [u8; INPUT_LINE_MAX],
    len: usize,
    /// The line being read overflowed: drop it at its end.
    overflowed: bool,
}

static INPUT: Mutex<InputLine> = Mutex::new(InputLine { bytes: [0; INPUT_LINE_MAX], len: 0, overflowed: false });
static INPUT_ON: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// The I/O APIC most PCs and QEMU put at this address (the MADT's entry
/// is not parsed yet; the version register read below checks it is there).
const IOAPIC_PHYS: u64 = 0xFEC0_0000;
/// ISA IRQ 4 (COM1) is I/O APIC input 4 unless the MADT overrides it
/// (QEMU and common firmware override only IRQ 0).
const COM1_GSI: u32 = 4;

/// Turns console input on: the UART's receive interrupt, routed to the
/// core with local APIC id `apic_id` as `vector` (edge, active high).
/// Returns why not if there is no I/O APIC where one is expected.
pub fn enable_input(vector: u8, apic_id: u32) -> Result<(), &'static str> {
    let base = crate::mem::phys_to_virt(IOAPIC_PHYS) as *mut u32;
    // SAFETY: the bootloader maps all physical memory including the I/O
    // APIC page (next to the local APIC's, which the kernel already uses
    // through the same map); IOREGSEL at +0, IOWIN at +0x10, 32-bit
    // accesses as the I/O APIC requires. Only core 0 calls this, once.
    let read = |index: u32| unsafe {
        core::ptr::write_volatile(base, index);
        core::ptr::read_volatile(base.add(4))
    };
    // SAFETY: as above.
    let write = |index: u32, value: u32| unsafe {
        core::ptr::write_volatile(base, index);
        core::ptr::write_volatile(base.add(4), value);
    };
    let version = read(1);
    let entries = ((version >> 16) & 0xFF) + 1;
    if version == 0 || version == u32::MAX || entries <= COM1_GSI {
        return Err("no I/O APIC at 0xFEC00000");
    }
    // Redirection entry: destination (physical) in bits 63:56 of the high
    // word; low word: vector, fixed delivery, edge, active high, unmasked.
    write(0x10 + 2 * COM1_GSI + 1, apic_id << 24);
    write(0x10 + 2 * COM1_GSI, u32::from(vector));
    let _guard = SERIAL.lock();
    // SAFETY: COM1's interrupt-enable register: bit 0 = received data
    // available; the FIFO was enabled by `init` (trigger level 1 byte).
    // OUT2 (MCR bit 3) gates the UART's interrupt line on PC hardware.
    unsafe {
        Port::<u8>::new(COM1 + 4).write(0x0B);
        Port::<u8>::new(COM1 + 1).write(0x01);
    }
    INPUT_ON.store(true, Ordering::Release);
    Ok(())
}

/// Whether console input was turned on.
pub fn input_enabled() -> bool {
    INPUT_ON.load(Ordering::Acquire)
}

/// Reads every byte the UART holds and calls `on_line` with each complete
/// line (CR or LF ends one; empty lines are skipped). For the supervisor
/// on core 0; does nothing unless input is on.
pub fn read_input_lines(mut on_line: impl FnMut(&str)) {
    if !input_enabled() {
        return;
    }
    loop {
        let mut line = [0u8; INPUT_LINE_MAX];
        let mut complete = None;
        {
            let mut input = INPUT.lock();
            // SAFETY: reading COM1's line status and receive registers only
            // takes bytes the UART received.
            while unsafe { Port::<u8>::new(COM1 + 5).read() } & 1 != 0 {
                // SAFETY: as above.
                let byte = unsafe { Port::<u8>::new(COM1).read() };
                if byte == b'\n' || byte == b'\r' {
                    let n = input.len;
                    let dropped = core::mem::take(&mut input.overflowed);
                    input.len = 0;
                    if dropped {
                        complete = Some(0);
                        break;
                    } else if n > 0 {
                        line[..n].copy_from_slice(&input.bytes[..n]);
                        complete = Some(n);
                        break;
                    }
                } else if input.len < INPUT_LINE_MAX {
                    let at = input.len;
                    input.bytes[at] = byte;
                    input.len += 1;
                } else {
                    input.overflowed = true;
                }
            }
        }
        let Some(n) = complete else { return };
        if n == 0 {
            log::warn!("console: a line longer than {INPUT_LINE_MAX} bytes was dropped");
            continue;
        }
        match core::str::from_utf8(&line[..n]) {
            Ok(text) => on_line(text),
            Err(_) => on_line("<not UTF-8>"),
        }
    }
}
