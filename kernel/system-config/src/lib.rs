//! Parses and validates the one TOML file that describes a system: which
//! server runs on which core, its rings and capabilities, the mover cores,
//! and the per-core power policy. The kernel and the host runner
//! (`cargo xtask check-config`) share this code, so both give the same error.
//!
//! Invariants:
//! - [`parse`] returns a [`SystemConfig`] only if the file is valid TOML, has
//!   no unknown key, every value is in range, and it is consistent on its own
//!   (unique names, one server per core, no server on core 0 or on a mover
//!   core, endpoints name servers, `mover_core` is a mover). What depends on
//!   the machine (how many cores exist, which binaries are in the ramdisk) is
//!   checked by [`SystemConfig::validate`].
//! - Every error names the place (line, column), the dotted key and what was
//!   expected; see [`ConfigError`].
//! - Servers keep file order; a server's index is its position, its badge is
//!   index + 1 ([`KERNEL_BADGE`] = 0 marks messages from the kernel, such as
//!   bounces), and its endpoints are already resolved to server indices.
//! - Nothing here panics on any input text (tested with random mutations).
//!
//! ```text
//! text ──parse──▶ SystemConfig ──validate(Machine)──▶ ok to boot
//!        syntax, keys, ranges,        cores exist, binaries present
//!        cross-field checks
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

mod check;
mod device;
mod direct_ring;
mod emit;
mod error;
mod locate;
mod power_command;
mod power_config;
mod raw;
mod region;
mod restart;

use alloc::string::String;
use alloc::vec::Vec;

pub use device::{DMA_KIB_RANGE, DMA_TOTAL_MAX_KIB, Device, DeviceMatch, PciAddress, PciFunction};
pub use direct_ring::DirectRing;
pub use error::{ConfigError, Span, line_column};
pub use power_command::{
    POWER_COMMAND_KEYS, POWER_COMMAND_MAX, PowerCommand, describe_power_command_error, parse_power_command,
};
pub use power_config::{
    CoreOverride, IdlePstate, MwaitHint, Origin, PolicyRole, PowerConfig, PowerOverride, PowerPolicy, SleepMode,
};
pub use region::{Access, REGION_SIZE_KIB_RANGE, REGION_TOTAL_MAX_KIB, Region, Share};
pub use restart::{RESTART_BACKOFF_MAX_MS, RestartDecision, RestartPolicy, RestartWhen, StayReason};

/// Core numbers in the file must be below this: the file format's limit,
/// more than any machine we target. The kernel's per-core tables are smaller
/// (`cores::MAX_CORES`); the real bound comes from [`Machine::core_count`].
pub const MAX_CONFIG_CORES: usize = 1024;
/// The badge the mover stamps on messages the kernel itself sends
/// (bounces); defined once, in `abi`.
pub use abi::KERNEL_BADGE;
/// `ring_slots_default` when the file does not set it.
pub const DEFAULT_RING_SLOTS: u32 = 64;
/// Smallest and largest ring size in slots (each a power of two).
pub const RING_SLOTS_RANGE: (u32, u32) = (2, 4096);
/// Longest `args` string.
pub const ARGS_MAX_BYTES: usize = 200;

/// `stack_kib` when a server does not set it.
pub const DEFAULT_STACK_KIB: u32 = 64;
/// Smallest and largest user stack in KiB (a multiple of 4, whole pages).
pub const STACK_KIB_RANGE: (u32, u32) = (4, 1024);
/// Longest server name.
pub const MAX_NAME_LEN: usize = 32;
/// Longest binary file name (the ustar name field).
pub const MAX_BINARY_LEN: usize = 100;
/// Most entries in `system.mover_cores`: each mover has an inbox in every
/// server and the kernel's tables hold [`abi::MAX_MOVERS`].
pub const MAX_MOVER_CORES: usize = abi::MAX_MOVERS;
/// Most `endpoints` of one server: the info page holds
/// [`abi::MAX_ENDPOINTS`].
pub const MAX_SERVER_ENDPOINTS: usize = abi::MAX_ENDPOINTS;

// What the file allows must fit what the kernel hands on in the info page
// (`abi::ServerInfo`), or the kernel would cut it short without a word.
const _: () = assert!(ARGS_MAX_BYTES <= abi::ARGS_BYTES);
const _: () = assert!(MAX_NAME_LEN <= abi::NAME_BYTES);

/// A whole system, as the file describes it, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemConfig {
    /// `system.mover_cores`: cores that run the mover loop, in file order,
    /// distinct, at least one.
    pub mover_cores: Vec<usize>,
    /// Where each of `mover_cores` was written.
    pub mover_core_origins: Vec<Origin>,
    /// `system.ring_slots_default`: ring size (in 64-byte slots) for servers
    /// that do not set theirs.
    pub ring_slots_default: u32,
    /// `[[server]]` tables in file order; `servers[i].index == i`.
    pub servers: Vec<Server>,
    /// The `[power]` section.
    pub power: PowerConfig,
    /// `[[direct_ring]]` tables in file order: rings shared by two
    /// servers with no mover in between; `direct_rings[i].index == i`.
    pub direct_rings: Vec<DirectRing>,
    /// `[[region]]` tables in file order: shared bulk-data memory;
    /// `regions[i].index == i`.
    pub regions: Vec<Region>,
    /// `[[device]]` tables in file order: PCI functions granted to driver
    /// servers; `devices[i].index == i`.
    pub devices: Vec<Device>,
}

/// One `[[server]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Position in the file, from 0.
    pub index: usize,
    /// `name`: unique, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// `binary`: file name of the server's ELF in the boot ramdisk.
    pub binary: String,
    /// `core`: the core it is pinned to.
    pub core: usize,
    /// `args`: free text handed to the server in its info page (default
    /// empty, at most `ARGS_MAX_BYTES` printable bytes).
    pub args: String,
    /// `stack_kib`: user stack size in KiB.
    pub stack_kib: u32,
    /// `service`: the server answers others and is not expected to exit
    /// (default false). A run ends when every server that is not a service
    /// has stopped; services are still running then, and the report says so.
    pub service: bool,
    /// `inbox_slots`: slots in its inbox (kernel → server).
    pub inbox_slots: u32,
    /// `outbox_slots`: slots in its outbox (server → kernel).
    pub outbox_slots: u32,
    /// `endpoints`: its capability table; endpoint number `i` in a message
    /// means `endpoints[i]`.
    pub endpoints: Vec<Endpoint>,
    /// The mover core that serves its outbox (`mover_core`, or assigned
    /// round-robin over `mover_cores` in file order among the servers that
    /// do not set it).
    pub mover_core: usize,
    /// Whether `mover_core` was written in the file.
    pub mover_core_explicit: bool,
    /// `restart`, `restart_max`, `restart_window_ms`, `restart_backoff_ms`:
    /// whether and how the kernel starts it again after it stops
    /// (default: never).
    pub restart: RestartPolicy,
    /// `stall_ms`: a server whose inbox has stayed full this long (in
    /// milliseconds) is treated as stopped, cause "hung". `None`: no hang
    /// detection.
    pub stall_ms: Option<u32>,
    /// `power_control`: the server may replace a core's power policy while
    /// the system runs (the `power_control` system call; default false).
    pub power_control: bool,
    /// Where its keys were written.
    pub origin: ServerOrigin,
}

/// One capability: a server this one may send to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The target's name, as written.
    pub name: String,
    /// The target's index in [`SystemConfig::servers`].
    pub server: usize,
}

/// Where a server's keys were written, for errors [`SystemConfig::validate`]
/// finds. Compares equal to any other (see [`Origin`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerOrigin {
    /// The whole `[[server]]` table.
    pub table: Origin,
    /// The `name` value.
    pub name: Origin,
    /// The `binary` value (or `name`, when `binary` defaults to it).
    pub binary: Origin,
    /// The `core` value.
    pub core: Origin,
}

/// What the machine offers, as far as the caller knows it. `None` skips the
/// check (the host runner may not know the core count).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Machine {
    /// Number of usable cores (from the MADT in the kernel, `-smp` on the
    /// host); cores are numbered `0..core_count`.
    pub core_count: Option<usize>,
    /// File names present in the boot ramdisk.
    pub binaries: Option<Vec<String>>,
}

/// Parses and checks a system description; see the crate docs for what is
/// checked here and what [`SystemConfig::validate`] adds.
pub fn parse(text: &str) -> Result<SystemConfig, ConfigError> {
    check::parse(text)
}

impl SystemConfig {
    /// Checks what depends on the machine: every core named (server cores,
    /// mover cores, `[power.core.N]`) exists, and every server's binary is
    /// present. Errors point at the value in the file.
    pub fn validate(&self, machine: &Machine) -> Result<(), ConfigError> {
        check::validate(self, machine)
    }

    /// The role `core` has in this system. Core 0 is `Idle` unless it is a
    /// mover (the boot processor runs the kernel, not a server).
    pub fn role_of(&self, core: usize) -> PolicyRole {
        if self.mover_cores.contains(&core) {
            PolicyRole::Mover
        } else if self.server_on_core(core).is_some() {
            PolicyRole::Server
        } else {
            PolicyRole::Idle
        }
    }

    /// The power policy for `core` in `role`: `[power.core.N]` over
    /// `[power.default.<role>]` over [`PowerPolicy::builtin`].
    pub fn power_for_core(&self, core: usize, role: PolicyRole) -> PowerPolicy {
        self.power.resolve(core, role)
    }

    /// The server pinned to `core`, if any.
    pub fn server_on_core(&self, core: usize) -> Option<&Server> {
        self.servers.iter().find(|s| s.core == core)
    }

    /// The server called `name`, if any.
    pub fn server_by_name(&self, name: &str) -> Option<&Server> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// The badge the mover stamps on messages from server `index`
    /// (index + 1; 0 is [`KERNEL_BADGE`]).
    pub fn badge(index: usize) -> u64 {
        abi::server_badge(index)
    }

    /// The server a badge belongs to, if any.
    pub fn server_by_badge(&self, badge: u64) -> Option<&Server> {
        self.servers.get(abi::server_index_of_badge(badge)?)
    }

    /// The servers whose outboxes mover core `core` scans, in file order.
    pub fn outboxes_of_mover(&self, core: usize) -> impl Iterator<Item = &Server> {
        self.servers.iter().filter(move |s| s.mover_core == core)
    }

    /// The system written back as TOML with every default made explicit;
    /// parsing it gives an equal [`SystemConfig`].
    pub fn to_toml(&self) -> String {
        emit::to_toml(self)
    }
}

impl Server {
    /// The server's capability table as target server indices: endpoint `i`
    /// reaches server `capabilities()[i]`.
    pub fn capabilities(&self) -> impl Iterator<Item = usize> + '_ {
        self.endpoints.iter().map(|e| e.server)
    }

    /// The badge the mover stamps on this server's messages.
    pub fn badge(&self) -> u64 {
        SystemConfig::badge(self.index)
    }
}

#[cfg(test)]
mod args_tests {
    use super::*;

    const BASE: &str = "[system]\nmover_cores = [1]\n\n[[server]]\nname = \"a\"\ncore = 2\n";

    #[test]
    fn args_default_to_empty_and_round_trip() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.servers[0].args, "");
        let c = parse(&format!("{BASE}args = \"count=5 to=\\\"b\\\"\"\n")).unwrap();
        assert_eq!(c.servers[0].args, "count=5 to=\"b\"");
        assert_eq!(parse(&c.to_toml()).unwrap().servers[0].args, c.servers[0].args);
    }

    #[test]
    fn args_too_long_is_an_error_with_its_place() {
        let long = "x".repeat(ARGS_MAX_BYTES + 1);
        let text = format!("{BASE}args = \"{long}\"\n");
        let err = parse(&text).unwrap_err();
        assert_eq!(err.key(), Some("server[0].args"));
        assert_eq!((err.line(), err.column()), (Some(7), Some(8)));
    }
}

#[cfg(test)]
mod service_tests {
    use super::*;

    const BASE: &str = "[system]\nmover_cores = [1]\n\n[[server]]\nname = \"a\"\ncore = 2\n";

    #[test]
    fn service_defaults_to_false_and_round_trips() {
        assert!(!parse(BASE).unwrap().servers[0].service);
        let c = parse(&format!("{BASE}service = true\n")).unwrap();
        assert!(c.servers[0].service);
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn service_must_be_a_boolean() {
        let err = parse(&format!("{BASE}service = 1\n")).unwrap_err();
        assert_eq!(err.line(), Some(7));
    }
}
