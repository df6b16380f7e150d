//! Discovering cores (ACPI MADT), the local APIC (x2APIC or xAPIC) and
//! starting application processors with INIT-SIPI-SIPI.
//!
//! `madt` is pure logic and host-tested; `apic` and `trampoline` touch
//! hardware and are tested in QEMU (`cargo xtask test`).
#![cfg_attr(not(test), no_std)]

pub mod madt;

#[cfg(target_arch = "x86_64")]
pub mod acpi_tables;
#[cfg(target_arch = "x86_64")]
pub mod apic;
#[cfg(target_arch = "x86_64")]
pub mod trampoline;
