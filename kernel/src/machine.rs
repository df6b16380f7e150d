//! Ending a run: the verdict goes to QEMU's `isa-debug-exit` device
//! (port 0xf4), which exits QEMU with status `(value << 1) | 1`. On real
//! hardware the port write does nothing and the core halts.

use x86_64::instructions::port::Port;

/// Exit status the runner reads as success (QEMU exits with 33).
pub const EXIT_SUCCESS: u32 = 0x10;
/// Exit status the runner reads as failure (QEMU exits with 35).
pub const EXIT_FAILURE: u32 = 0x11;

/// Ends the run with `code` and halts this core forever.
pub fn exit(code: u32) -> ! {
    // SAFETY: port 0xf4 is QEMU's debug-exit device (the runner adds it);
    // on machines without it the write is ignored.
    unsafe { Port::<u32>::new(0xf4).write(code) };
    halt_forever()
}

/// Disables interrupts and halts. NMIs may still wake the core; it halts
/// again.
pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
