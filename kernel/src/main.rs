//! The kernel: boot entry, traps, SMP start-up and the in-QEMU test
//! scenarios. On the host this crate builds as an empty program so that
//! workspace-wide cargo commands work; the kernel itself is built with
//! `--target x86_64-unknown-none` by `cargo xtask`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod bench;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod energy;
#[cfg(target_os = "none")]
mod ktest;
#[cfg(target_os = "none")]
mod mem;
#[cfg(target_os = "none")]
mod server;
#[cfg(target_os = "none")]
mod mover;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod power;
#[cfg(target_os = "none")]
mod qemu;
#[cfg(target_os = "none")]
mod serial;
#[cfg(target_os = "none")]
mod smp;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the kernel runs on bare metal: use `cargo xtask run`");
}
