//! x86_64: descriptor tables, traps, the legacy PIC, TSC calibration and
//! CPU feature probing.
pub mod cpu;
pub mod gdt;
pub mod pic;
pub mod trap;
pub mod tsc;
pub mod user;
