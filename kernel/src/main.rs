//! The kernel: boot entry, traps, SMP start-up, servers, the mover and the
//! in-QEMU test scenarios. On the host this crate builds as an empty
//! program so that workspace-wide cargo commands work; the kernel itself is
//! built with `--target x86_64-unknown-none` by `cargo xtask`.
//!
//! The modules form layers; a module imports only from layers below it
//! (checked on the host by `cargo test -p kernel --test layers`):
//!
//! ```text
//!  boot                                   entry and boot sequence
//!  ktest  syscall  trap_dispatch          what tests, calls and traps do
//!  mover  sync_ipc                        the mover loop; call/reply_recv and shared cores
//!  lifecycle                              when a run ends
//!  power_control                          live power-policy changes (console, power_control call); core 0's wait
//!  watch                                  the live per-core view (`watch_ms`, `cargo xtask run --watch`)
//!  report                                 what the run did (read-only)
//!  limits                                 per-server rate limits (log, power_report, wake_mover)
//!  floors  phase_counters                 the kernel's side of benchmarks
//!  server                                 servers: table, loading, stopping
//!  rings  regions  devices                kernel-allocated ring regions; shared bulk-data regions; PCI devices granted to servers
//!  power  energy                          sleep, P-states, RAPL
//!  panic                                  fatal errors on any core
//!  smp                                    cores, IPIs, mailboxes
//!  serial  machine                        console, ending the run
//!  arch                                   CPU, GDT/IDT, trap and syscall entry
//!  mem                                    frames, heap, page tables, user copies
//! ```
//! Modules on one line do not import each other. Inside a folder module
//! (`server/`, `arch/`, `mem/`) the files form a tree too: `mod.rs` holds
//! what the others share and imports none of them.
//! The entry stubs in `arch` call up by symbol only (`trap_dispatch`,
//! `syscall_dispatch`), defined by the layer that knows what they mean.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;
#[cfg(target_os = "none")]
mod devices;
#[cfg(target_os = "none")]
mod energy;
#[cfg(target_os = "none")]
mod floors;
#[cfg(target_os = "none")]
mod ktest;
#[cfg(target_os = "none")]
mod lifecycle;
#[cfg(target_os = "none")]
mod limits;
#[cfg(target_os = "none")]
mod machine;
#[cfg(target_os = "none")]
mod mem;
#[cfg(target_os = "none")]
mod mover;
#[cfg(target_os = "none")]
mod panic;
#[cfg(target_os = "none")]
mod phase_counters;
#[cfg(target_os = "none")]
mod power;
#[cfg(target_os = "none")]
mod power_control;
#[cfg(target_os = "none")]
mod regions;
#[cfg(target_os = "none")]
mod report;
#[cfg(target_os = "none")]
mod rings;
#[cfg(target_os = "none")]
mod serial;
#[cfg(target_os = "none")]
mod server;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod sync_ipc;
#[cfg(target_os = "none")]
mod syscall;
#[cfg(target_os = "none")]
mod trap_dispatch;
#[cfg(target_os = "none")]
mod watch;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the kernel runs on bare metal: use `cargo xtask run`");
}
