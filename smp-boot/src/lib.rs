//! Discovering cores (ACPI MADT), the local APIC (x2APIC or xAPIC) and
//! starting application processors with INIT-SIPI-SIPI.
//!
//! `madt` is pure logic and host-tested; `apic` and `trampoline` touch
//! hardware and are tested in QEMU (`cargo xtask test`).
//!
//! The local APIC is our own code, and `x2apic` is not a dependency: the
//! kernel needs xAPIC (MMIO) and x2APIC (MSR) access behind one type that
//! never arms the APIC timer and takes plain APIC ids. The crate's `enable()`
//! always arms the timer, in xAPIC mode it wants destinations pre-shifted
//! (`apic_id << 24`), and its register offsets are private, so nothing in it
//! replaces our constants.
#![cfg_attr(not(test), no_std)]

pub mod madt;

#[cfg(target_arch = "x86_64")]
pub mod acpi_tables;
#[cfg(target_arch = "x86_64")]
pub mod apic;
#[cfg(target_arch = "x86_64")]
pub mod trampoline;
