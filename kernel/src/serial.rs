//! The serial console (COM1, 16550 UART) and the `log` backend on it.
//!
//! Invariants: every line is written whole under one lock, prefixed with
//! the core it comes from, so lines from different cores never interleave.
//! The panic path stops the other cores first and then takes the lock by
//! force (see `panic.rs`).

use core::fmt::Write;
use spin::Mutex;
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
        for byte in s.bytes() {
            if byte == b'\n' {
                self.write_byte(b'\r');
            }
            self.write_byte(byte);
        }
        Ok(())
    }
}

pub static SERIAL: Mutex<Serial> = Mutex::new(Serial { initialized: false });

/// Prints to the serial console without a prefix (whole string under the lock).
#[macro_export]
macro_rules! kprint {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::serial::SERIAL.lock(), $($arg)*);
    }};
}

/// Prints a line to the serial console.
#[macro_export]
macro_rules! kprintln {
    () => { $crate::kprint!("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let mut serial = $crate::serial::SERIAL.lock();
        let _ = write!(serial, $($arg)*);
        let _ = serial.write_str("\n");
    }};
}

struct Logger;

impl log::Log for Logger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, record: &log::Record) {
        let core = crate::arch::x86_64::cpu::current_core_index();
        let mut serial = SERIAL.lock();
        let _ = writeln!(serial, "[core {core}] {:5} {}", record.level(), record.args());
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// Installs the serial logger as the `log` backend.
pub fn init_logging() {
    SERIAL.lock().init();
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Info);
}
