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
// input the MADT names (its I/O APIC entries and any override of IRQ 4;
// 0xFEC00000 input 4 only when it lists no I/O APIC) to core 0 with a
// vector whose handler only acknowledges it (the doorbell's), so a byte
// wakes core 0 from `hlt`, and the supervisor then drains the UART here
// and hands each complete line to its caller. No timer is involved. With
// the ISA defaults (no override, as on QEMU) the interrupt is
// edge-triggered: the UART raises it when its receive FIFO goes from empty
// to holding data, so every call drains the FIFO until the line-status
// register says empty (a byte that arrives after that raises a new edge,
// which wakes the next `hlt`). Should firmware override IRQ 4 to level
// triggering (untested: QEMU does not), the I/O APIC re-delivers after
// each acknowledgement until the supervisor has drained the FIFO.
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

/// COM1's ISA interrupt line.
const COM1_ISA_IRQ: u8 = 4;
/// Where most PCs and QEMU put the I/O APIC; used only when the MADT lists
/// none (the version register read below still checks one is there).
const IOAPIC_FALLBACK_PHYS: u32 = 0xFEC0_0000;

/// How console input was routed (for the boot line).
pub struct InputRoute {
    pub isa: smp_boot::madt::IsaRoute,
    /// `None`: the MADT lists no I/O APIC and the fixed address was used.
    pub io_apic_id: Option<u8>,
    pub io_apic_phys: u32,
    /// Redirection entry used: `isa.gsi - gsi_base`.
    pub input: u32,
}

impl core::fmt::Display for InputRoute {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let isa = &self.isa;
        write!(f, "ISA IRQ {} -> GSI {}", isa.irq, isa.gsi)?;
        if isa.overridden {
            f.write_str(" (MADT override)")?;
        }
        match self.io_apic_id {
            Some(id) => write!(f, " -> I/O APIC {id} at {:#x} from the MADT", self.io_apic_phys)?,
            None => write!(f, " -> I/O APIC at {:#x} (fixed address: the MADT lists none)", self.io_apic_phys)?,
        }
        write!(f, ", input {}, {}, {}", self.input, isa.trigger, isa.polarity)?;
        if isa.reserved_flags {
            f.write_str(" (reserved override flags read as ISA defaults)")?;
        }
        Ok(())
    }
}

/// Why console input stays off.
pub enum InputError {
    /// The MADT lists I/O APICs but none has a GSI base at or below COM1's GSI.
    NoIoApicForGsi { gsi: u32 },
    /// Reading the version register at the fixed address gave nothing.
    NoIoApicAtFallback,
    /// The I/O APIC(s) whose base fits have too few inputs (or do not answer).
    InputBeyondEntries { gsi: u32, id: u8, address: u32, input: u32, entries: u32 },
}

impl core::fmt::Display for InputError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            InputError::NoIoApicForGsi { gsi } => {
                write!(f, "no I/O APIC in the MADT has a GSI base at or below COM1's GSI {gsi}")
            }
            InputError::NoIoApicAtFallback => {
                write!(f, "the MADT lists no I/O APIC and none answers at {IOAPIC_FALLBACK_PHYS:#x}")
            }
            InputError::InputBeyondEntries { gsi, id, address, input, entries } => write!(
                f,
                "COM1's GSI {gsi} would be input {input} of I/O APIC {id} at {address:#x}, which has {entries} entries (0 if it does not answer)"
            ),
        }
    }
}

/// Reads I/O APIC register `index` at physical `address`.
fn io_apic_read(address: u32, index: u32) -> u32 {
    let base = crate::mem::phys_to_virt(u64::from(address)) as *mut u32;
    // SAFETY: the bootloader maps all physical memory, including the I/O
    // APIC's page (the address comes from the MADT or is the standard
    // one); IOREGSEL at +0, IOWIN at +0x10, 32-bit accesses as the I/O
    // APIC requires. Only core 0 calls this, at boot, once.
    unsafe {
        core::ptr::write_volatile(base, index);
        core::ptr::read_volatile(base.add(4))
    }
}

/// Writes I/O APIC register `index` at physical `address`.
fn io_apic_write(address: u32, index: u32, value: u32) {
    let base = crate::mem::phys_to_virt(u64::from(address)) as *mut u32;
    // SAFETY: as in `io_apic_read`.
    unsafe {
        core::ptr::write_volatile(base, index);
        core::ptr::write_volatile(base.add(4), value);
    }
}

/// Redirection entries of the I/O APIC at `address`, or 0 if nothing
/// answers its version register.
fn io_apic_entries(address: u32) -> u32 {
    let version = io_apic_read(address, 1);
    if version == 0 || version == u32::MAX { 0 } else { ((version >> 16) & 0xFF) + 1 }
}

/// Finds the I/O APIC input that carries COM1's interrupt: from the MADT's
/// I/O APIC entries and overrides, or the fixed address and GSI 4 when the
/// MADT lists no I/O APIC.
fn com1_route(madt: &smp_boot::madt::MadtInfo) -> Result<InputRoute, InputError> {
    let isa = madt.isa_route(COM1_ISA_IRQ);
    if madt.overrides_overflow > 0 || madt.io_apics_overflow > 0 {
        log::warn!(
            "console: the MADT has {} interrupt source overrides and {} I/O APICs beyond the parser's limits; IRQ 4's route may be among them",
            madt.overrides_overflow,
            madt.io_apics_overflow
        );
    }
    if madt.io_apics().is_empty() {
        if io_apic_entries(IOAPIC_FALLBACK_PHYS) <= isa.gsi {
            return Err(InputError::NoIoApicAtFallback);
        }
        return Ok(InputRoute { isa, io_apic_id: None, io_apic_phys: IOAPIC_FALLBACK_PHYS, input: isa.gsi });
    }
    let candidates = madt.io_apic_candidates(isa.gsi);
    let mut refused = None;
    for io_apic in candidates.as_slice() {
        let input = isa.gsi - io_apic.gsi_base;
        let entries = io_apic_entries(io_apic.address);
        if input < entries {
            return Ok(InputRoute { isa, io_apic_id: Some(io_apic.id), io_apic_phys: io_apic.address, input });
        }
        // The nearest base is the likeliest carrier: report that one.
        refused.get_or_insert(InputError::InputBeyondEntries {
            gsi: isa.gsi,
            id: io_apic.id,
            address: io_apic.address,
            input,
            entries,
        });
    }
    Err(refused.unwrap_or(InputError::NoIoApicForGsi { gsi: isa.gsi }))
}

/// Turns console input on: the UART's receive interrupt, routed to the
/// core with local APIC id `apic_id` as `vector`, through the I/O APIC
/// input, polarity and trigger mode the MADT gives for ISA IRQ 4.
/// Returns the route taken, or why there is none (nothing is changed then).
pub fn enable_input(vector: u8, apic_id: u32, madt: &smp_boot::madt::MadtInfo) -> Result<InputRoute, InputError> {
    use smp_boot::madt::{Polarity, Trigger};
    let route = com1_route(madt)?;
    // Redirection entry: destination (physical) in bits 63:56 of the high
    // word; low word: vector, fixed delivery, physical destination,
    // polarity (bit 13, 1 = active low), trigger (bit 15, 1 = level),
    // unmasked (bit 16 clear).
    let mut low = u32::from(vector);
    if route.isa.polarity == Polarity::ActiveLow {
        low |= 1 << 13;
    }
    if route.isa.trigger == Trigger::Level {
        low |= 1 << 15;
    }
    io_apic_write(route.io_apic_phys, 0x10 + 2 * route.input + 1, apic_id << 24);
    io_apic_write(route.io_apic_phys, 0x10 + 2 * route.input, low);
    let _guard = SERIAL.lock();
    // SAFETY: COM1's interrupt-enable register: bit 0 = received data
    // available; the FIFO was enabled by `init` (trigger level 1 byte).
    // OUT2 (MCR bit 3) gates the UART's interrupt line on PC hardware.
    unsafe {
        Port::<u8>::new(COM1 + 4).write(0x0B);
        Port::<u8>::new(COM1 + 1).write(0x01);
    }
    INPUT_ON.store(true, Ordering::Release);
    Ok(route)
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
