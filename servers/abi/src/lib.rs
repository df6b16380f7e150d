//! The kernel/server contract: system call numbers and their decoding,
//! error codes, badges, bounce reasons and the user address-space layout. Both sides depend on this crate and nothing
//! else of each other.
//!
//! Calling convention: `rax` = number, arguments in `rdi, rsi, rdx, r10,
//! r8, r9`; the result comes back in `rax`: a value `>= 0`, or `-(error)`.
//! Every register but `rax`, `rcx` and `r11` is preserved.
#![no_std]
#![forbid(unsafe_code)]

mod call;
pub use call::{PHASE_NAME_MAX, SYNC_PAYLOAD_WORDS, SyncMessage, Syscall, UserRange, error_return};

/// System call numbers.
pub mod nr {
    /// `log(ptr, len)`: print one line (at most `LOG_MAX` bytes) as this server.
    pub const LOG: u64 = 0;
    /// `exit(code)`: stop this server; its core parks. Does not return.
    pub const EXIT: u64 = 1;
    /// `core_id()`: the logical core this server runs on.
    pub const CORE_ID: u64 = 2;
    /// `server_name(buf, cap)`: copy this server's name into `buf`; returns its length.
    pub const SERVER_NAME: u64 = 3;
    /// `tsc_hz()`: the TSC frequency the kernel calibrated at boot.
    pub const TSC_HZ: u64 = 4;
    /// `bench_mark(name_ptr, name_len, begin)`: snapshot (begin = 1) or
    /// print the per-core counter deltas of a benchmark phase. Only when the
    /// kernel was booted for benchmarks; never counted as a system call.
    pub const BENCH_MARK: u64 = 5;
    /// `bench_extra_rings(n)`: make every mover scan `n` extra empty rings
    /// per pass (the scaling benchmark). Only when booted for benchmarks.
    pub const BENCH_EXTRA_RINGS: u64 = 6;
    /// `wait()`: sleep (MWAIT or HLT, as the core's power policy says)
    /// until a mover delivers. Call only after announcing sleep on every
    /// inbox (`ringbuf::Consumer::prepare_to_sleep`); returns at once if a
    /// mover already claimed the wake-up. Returns 1 if it slept, 0 if not.
    pub const WAIT: u64 = 7;
    /// `wake_mover()`: the mover of this server's outbox announced sleep
    /// (the outbox's wake word said SLEEPING after a publish, see
    /// `ServerInfo::mover_sleeps`): wake it. Returns 1 if this call woke
    /// it, 0 if it was awake or another call already woke it.
    pub const WAKE_MOVER: u64 = 8;
    /// `power_report()`: print the runtime power view now (per core: time
    /// polling, pausing and asleep, sleeps, P-state writes), as the kernel
    /// does at the end of a run. Returns 0.
    pub const POWER_REPORT: u64 = 9;
    /// `idle_pstate(lower)`: a never-sleeping core's sustained idle period
    /// began (`lower` = 1: lower the performance request as the policy's
    /// `idle_pstate` says) or ended (0: restore it). Returns 1 if the MSR
    /// was written, 0 if there was nothing to do (no P-state control, the
    /// policy does not ask, or already in that state); `OUT_OF_RANGE` for
    /// any other argument.
    pub const IDLE_PSTATE: u64 = 10;
    /// `call(endpoint, message) -> reply`: synchronous IPC, L4 style. The
    /// caller blocks until the server behind `endpoint` answers with
    /// `reply_recv`. The message travels in registers ([`crate::SyncMessage`]
    /// layout in `call.rs`); the reply comes back in the same registers,
    /// with the replier's badge in `rdi`. Same capability rules as the
    /// mover. Errors: `NO_CAPABILITY`, `NOT_RUNNING` (the server stopped,
    /// also while handling this call), `TOO_LONG` (payload over 40 bytes),
    /// `WOULD_DEADLOCK` (a call to itself).
    pub const CALL: u64 = 11;
    /// `reply_recv(reply?) -> next call`: answer the call being served (if
    /// `rdi` bit 0 is set, the reply is in the message registers) and wait
    /// for the next call; returns it with the caller's badge in `rdi`. With
    /// `rdi` bit 1 set as well, only answer: return 0 at once, no call
    /// taken (a server that goes back to other work).
    /// Errors: `NOT_SERVING` (a reply with no call being served; nothing
    /// is sent and the call does not wait), `TOO_LONG`.
    pub const REPLY_RECV: u64 = 12;
    /// `power_control(ptr, len)`: replace a core's power policy while the
    /// system runs, with a command such as `core=2 sleep=hlt
    /// pause_us_before_sleep=20` (at most `POWER_CONTROL_MAX` bytes; the
    /// same keys and checks as `[power.core.N]`). Only for a server the
    /// system TOML grants `power_control = true`. Returns the generation
    /// of the core's new policy (from 1); `NOT_GRANTED` without the grant,
    /// `BAD_COMMAND` if the kernel refused it (it prints why, naming the
    /// key). The core applies it at its next governor checkpoint.
    pub const POWER_CONTROL: u64 = 13;
    /// `pci_config(device, offset, write, value)`: read (`write` = 0) or
    /// write (`write` = 1) the 32-bit word at `offset` (a multiple of 4,
    /// below 256, or 4096 where the machine has ECAM) of the configuration
    /// space of the server's `device`-th granted PCI function
    /// ([`crate::device`]). Returns the word read (or 0 for a write).
    /// BAR registers are the kernel's: a write there changes nothing but
    /// a shadow, so BAR sizing (write all ones, read, restore) works and
    /// the BARs stay where the kernel mapped them. Errors: `NOT_GRANTED`
    /// (no such device), `OUT_OF_RANGE` (offset), `BAD_COMMAND` (a write
    /// the kernel refuses, see `docs/drivers.md`).
    pub const PCI_CONFIG: u64 = 14;
}

/// Error codes (returned negated).
pub mod err {
    /// No system call has this number.
    pub const UNKNOWN_SYSCALL: i64 = 1;
    /// A pointer range leaves the user half or wraps around.
    pub const OUT_OF_RANGE: i64 = 2;
    /// A page of the range is not mapped with the needed access.
    pub const NOT_MAPPED: i64 = 3;
    /// A length exceeds the call's limit.
    pub const TOO_LONG: i64 = 4;
    /// A buffer is too small for the answer.
    pub const TOO_SMALL: i64 = 5;
    /// `call`: the caller holds no capability for the endpoint.
    pub const NO_CAPABILITY: i64 = 6;
    /// `call`: the server behind the endpoint has stopped (exited or
    /// faulted), before or while handling the call.
    pub const NOT_RUNNING: i64 = 7;
    /// `reply_recv` with a reply while no call is being served.
    pub const NOT_SERVING: i64 = 8;
    /// `call` to the caller itself, which could never be answered.
    pub const WOULD_DEADLOCK: i64 = 9;
    /// `call`: the called server took its next call (`reply_recv` without
    /// a reply) instead of answering this one.
    pub const NO_REPLY: i64 = 10;
    /// `log` or `power_report` over the server's rate limit: nothing was
    /// printed (the kernel counts it and prints one summary line a second;
    /// limits in docs/servers.md, "Limits").
    pub const RATE_LIMITED: i64 = 11;
    /// `power_control` from a server the system TOML does not grant it.
    pub const NOT_GRANTED: i64 = 12;
    /// `power_control`: the command was refused (the console says why).
    pub const BAD_COMMAND: i64 = 13;

    /// Name of an error code, for logs.
    pub fn name(code: i64) -> &'static str {
        match code {
            UNKNOWN_SYSCALL => "unknown syscall",
            OUT_OF_RANGE => "out of range",
            NOT_MAPPED => "not mapped",
            TOO_LONG => "too long",
            TOO_SMALL => "buffer too small",
            NO_CAPABILITY => "no capability for the endpoint",
            NOT_RUNNING => "the called server is not running",
            NOT_SERVING => "no call is being served",
            WOULD_DEADLOCK => "a call to itself would never be answered",
            NO_REPLY => "the called server moved on without replying",
            RATE_LIMITED => "over the server's rate limit",
            NOT_GRANTED => "the server holds no grant for this call",
            BAD_COMMAND => "the command was refused",
            _ => "unknown error",
        }
    }
}

/// Longest line `log` accepts.
pub const LOG_MAX: usize = 256;

/// Longest command `power_control` accepts.
pub const POWER_CONTROL_MAX: usize = 256;

/// Where in the info page (from [`INFO_ADDR`]) the kernel publishes a
/// core's power policy changed while the system runs: the words of
/// `power_policy::live::LivePolicy` (a sequence lock; all zero until the
/// first change). The server's governor reads them at its checkpoints.
pub const LIVE_POLICY_OFFSET: u64 = 4096 - 64;
const _: () = assert!(core::mem::size_of::<ServerInfo>() as u64 <= LIVE_POLICY_OFFSET);

/// Lowest user address (the first 2 MiB stay unmapped: null pointers fault).
pub const USER_MIN: u64 = 0x20_0000;
/// One past the highest user address (the canonical lower half).
pub const USER_END: u64 = 0x0000_8000_0000_0000;
/// Program segments must end below this address; the info page, rings and
/// stacks live above it.
pub const SEGMENTS_END: u64 = 0x5000_0000_0000;

/// The server's read-only info page (a [`ServerInfo`]).
pub const INFO_ADDR: u64 = 0x6000_0000_0000;
/// The server's outbox ring (server -> mover).
pub const OUTBOX_ADDR: u64 = 0x6000_0010_0000;
/// Address range reserved for one ring.
pub const RING_SPAN: u64 = 0x10_0000;
/// Most movers a system may have (each has its own inbox in every server).
pub const MAX_MOVERS: usize = 8;
/// Most endpoints (capabilities) one server holds.
pub const MAX_ENDPOINTS: usize = 32;
/// Bytes of a name in the info page (NUL-padded).
pub const NAME_BYTES: usize = 32;
/// `ServerInfo::magic`.
pub const INFO_MAGIC: u64 = 0x4f464e4956524553; // "SERVINFO"

/// The inbox ring filled by mover `mover` (mover -> server).
pub const fn inbox_addr(mover: usize) -> u64 {
    OUTBOX_ADDR + (mover as u64 + 1) * RING_SPAN
}

/// What the kernel tells a server about itself, at [`INFO_ADDR`]
/// (read-only for the server; written once before it starts).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ServerInfo {
    pub magic: u64,
    /// The badge receivers see on this server's messages.
    pub badge: u64,
    pub core: u32,
    /// Inboxes the server has, one per mover, at `inbox_addr(0..mover_count)`.
    pub mover_count: u32,
    pub outbox_slots: u32,
    pub inbox_slots: u32,
    pub endpoint_count: u32,
    pub _reserved: u32,
    /// Badge of the server behind each endpoint (0 if it is not running).
    pub endpoint_badges: [u64; MAX_ENDPOINTS],
    pub name: [u8; NAME_BYTES],
    pub endpoint_names: [[u8; NAME_BYTES]; MAX_ENDPOINTS],
    /// The server's `args` from the system TOML (NUL-padded text).
    pub args: [u8; ARGS_BYTES],
    /// The core's power policy (see `docs/power.md`): empty polls before
    /// pausing, TSC ticks of pausing before sleeping, and whether sleeping
    /// is allowed (`SLEEP_*`; the kernel already degraded it to what the
    /// CPU offers).
    pub spin_polls_before_pause: u64,
    pub pause_ticks_before_sleep: u64,
    pub sleep: u32,
    /// 1 if the mover of this server's outbox may sleep: after publishing,
    /// the server checks the outbox's wake word (one fence and one load)
    /// and, if the mover announced sleep, calls `wake_mover`. 0: the mover
    /// never sleeps and sending costs nothing extra.
    pub mover_sleeps: u32,
    /// Test knob (boot argument `power.race_delay_us`, 0 normally): TSC
    /// ticks to wait inside each window of the way to sleep, so that the
    /// lost-wake-up race test hits every window often. See `docs/power.md`.
    pub race_delay_ticks: u64,
    /// TSC ticks of pausing after which `Channel::recv` asks the kernel to
    /// lower the core's P-state while it keeps polling (`IDLE_PSTATE` 1,
    /// and 0 to restore it when a message comes); 0 = never (the policy's
    /// `idle_pstate_after_us` is 0, or the CPU has no P-state control).
    pub idle_pstate_after_ticks: u64,
    /// Direct rings this server is an end of (`[[direct_ring]]` in the
    /// system TOML, see [`DirectRingInfo`]): entry `i` of `direct_rings`
    /// is mapped at [`direct_ring_addr`]`(i)`, for `i < direct_ring_count`.
    pub direct_ring_count: u32,
    pub _reserved_direct: u32,
    pub direct_rings: [DirectRingInfo; MAX_DIRECT_RINGS],
    /// Shared regions this server holds (`[[region]]` in the system TOML,
    /// see [`region`]): entry `i` of `regions` is mapped at
    /// [`region::addr`]`(i)`, for `i < region_count`. A descriptor names a
    /// region by this index (the server's own view; the mover rewrites it
    /// into the receiver's).
    pub region_count: u32,
    pub _reserved_regions: u32,
    pub regions: [region::RegionInfo; region::MAX_REGIONS],
    /// PCI functions granted to this server (`[[device]]` in the system
    /// TOML, see [`device`]): entry `i` of `devices`, for
    /// `i < device_count`, has its BARs at [`device::bar_addr`]`(i, _)`
    /// and its DMA memory at [`device::dma_addr`]`(i)`.
    pub device_count: u32,
    pub _reserved_devices: u32,
    pub devices: [device::DeviceInfo; device::MAX_DEVICES],
}

/// Most direct rings one server may be an end of (producer or consumer).
pub const MAX_DIRECT_RINGS: usize = 8;

/// `DirectRingInfo::end`: this server pushes into the ring.
pub const DIRECT_RING_PRODUCER: u32 = 1;
/// `DirectRingInfo::end`: this server pops from the ring.
pub const DIRECT_RING_CONSUMER: u32 = 2;

/// One user<->user ring in the info page: a ring region the kernel
/// allocated once and mapped into both servers (read/write, never
/// executable), with no mover in between. The kernel never reads it; each
/// side must treat the other as hostile (`docs/servers.md`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct DirectRingInfo {
    /// The ring's `name` from the system TOML (NUL-padded).
    pub name: [u8; NAME_BYTES],
    /// Slots of 64 bytes (a power of two).
    pub slots: u32,
    /// [`DIRECT_RING_PRODUCER`] or [`DIRECT_RING_CONSUMER`].
    pub end: u32,
}

impl DirectRingInfo {
    /// An unused entry.
    pub const EMPTY: DirectRingInfo = DirectRingInfo { name: [0; NAME_BYTES], slots: 0, end: 0 };
}

/// Start of the direct-ring range: above the inboxes (which end at
/// `inbox_addr(MAX_MOVERS)`), below the stacks.
const DIRECT_RINGS_BASE: u64 = 0x6000_1000_0000;

/// Where this server's direct ring `i` (its position in
/// `ServerInfo::direct_rings`, `i < MAX_DIRECT_RINGS`) is mapped; each has
/// [`RING_SPAN`] bytes of address space. The two ends of one ring may see
/// it at different addresses (the region holds no pointers).
pub const fn direct_ring_addr(i: usize) -> u64 {
    DIRECT_RINGS_BASE + i as u64 * RING_SPAN
}

/// `ServerInfo::sleep`: never sleep (spin, then pause).
pub const SLEEP_NEVER: u32 = 0;
/// `ServerInfo::sleep`: sleep through the `wait` system call.
pub const SLEEP_WAIT: u32 = 1;

/// The server's statistics page (a [`ServerStats`], written by the server,
/// read by the kernel for the power report: untrusted figures).
pub const STATS_ADDR: u64 = INFO_ADDR + 0x1000;

/// What a server reports about its own polling, at [`STATS_ADDR`]. Every
/// field is an `u64` the server stores with plain atomic stores; the
/// kernel reads them as claims and clamps them to what is possible.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct ServerStats {
    /// TSC ticks spent in `pause` steps while waiting for messages.
    pub pause_ticks: u64,
}

/// Bytes of `ServerInfo::args`.
pub const ARGS_BYTES: usize = 256;

const _: () = assert!(core::mem::size_of::<ServerInfo>() <= 4096);

/// PCI devices granted to a server (`[[device]]` in the system TOML; see
/// `docs/drivers.md`): its memory BARs mapped uncached, its DMA memory,
/// and what it is told about them in its info page.
///
/// There is no IOMMU: a server granted a device with DMA can make the
/// device read or write any physical memory. It is trusted with that.
pub mod device {
    use crate::NAME_BYTES;

    /// Most devices one server may be granted.
    pub const MAX_DEVICES: usize = 4;
    /// BARs of a PCI function (type 0 header).
    pub const MAX_BARS: usize = 6;
    /// Address space reserved for one BAR; a larger memory BAR is not
    /// mapped (its entry says so).
    pub const BAR_SPAN: u64 = 0x2_0000_0000; // 8 GiB
    /// Address space reserved for one device (its BARs, then its DMA memory).
    pub const DEVICE_SPAN: u64 = 0x10_0000_0000; // 64 GiB
    /// Start of the device range: above the regions, below the stacks.
    const BASE: u64 = 0x6c00_0000_0000;

    /// Where BAR `bar` of this server's device `device` is mapped (the
    /// page holding the BAR's start; add `BarInfo::page_offset`).
    pub const fn bar_addr(device: usize, bar: usize) -> u64 {
        BASE + device as u64 * DEVICE_SPAN + bar as u64 * BAR_SPAN
    }

    /// Where the DMA memory of this server's device `device` is mapped.
    pub const fn dma_addr(device: usize) -> u64 {
        BASE + device as u64 * DEVICE_SPAN + MAX_BARS as u64 * BAR_SPAN
    }

    /// `BarInfo::kind`: no BAR here (or the upper half of a 64-bit BAR).
    pub const BAR_NONE: u32 = 0;
    /// A memory BAR, mapped uncached (PCD|PWT), never executable.
    pub const BAR_MEMORY: u32 = 1;
    /// An I/O-port BAR: listed, not accessible from ring 3.
    pub const BAR_IO: u32 = 2;
    /// A memory BAR the kernel did not map (too large, or its pages are
    /// shared with another function's registers).
    pub const BAR_MEMORY_UNMAPPED: u32 = 3;

    /// One BAR in the info page.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct BarInfo {
        /// Physical address (or I/O port) the BAR decodes.
        pub phys: u64,
        /// Bytes it decodes.
        pub size: u64,
        /// `BAR_*`.
        pub kind: u32,
        /// 1 for a prefetchable or 64-bit memory BAR's flags: bit 0
        /// prefetchable, bit 1 64-bit.
        pub flags: u16,
        /// Where the BAR starts in its first mapped page
        /// (`bar_addr(d, b) + page_offset` is its first byte).
        pub page_offset: u16,
    }

    impl BarInfo {
        /// An unused entry.
        pub const EMPTY: BarInfo = BarInfo { phys: 0, size: 0, kind: BAR_NONE, flags: 0, page_offset: 0 };
    }

    /// One granted PCI function in the info page.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct DeviceInfo {
        /// The `[[device]]` table's `name` (NUL-padded).
        pub name: [u8; NAME_BYTES],
        pub vendor: u16,
        pub device: u16,
        pub bus: u8,
        pub slot: u8,
        pub function: u8,
        /// 1 if configuration space goes up to 4096 bytes (ECAM), 0 if 256.
        pub extended_config: u8,
        pub bars: [BarInfo; MAX_BARS],
        /// Physical address of the DMA memory (physically contiguous,
        /// zeroed at boot), mapped read/write at [`dma_addr`]; 0 if none.
        pub dma_phys: u64,
        /// Its size in bytes (`dma_kib` * 1024).
        pub dma_size: u64,
    }

    impl DeviceInfo {
        /// An unused entry.
        pub const EMPTY: DeviceInfo = DeviceInfo {
            name: [0; NAME_BYTES],
            vendor: 0,
            device: 0,
            bus: 0,
            slot: 0,
            function: 0,
            extended_config: 0,
            bars: [BarInfo::EMPTY; MAX_BARS],
            dma_phys: 0,
            dma_size: 0,
        };
    }
}

/// Shared regions and the buffer descriptors messages carry over them.
///
/// A region is physically contiguous memory the kernel allocated once
/// (`[[region]]` in the system TOML) and mapped, never executable, into
/// its owner (read/write) and into each server it is shared with, with the
/// access the file grants (`"ro"` or `"rw"`). A message carries a
/// descriptor when its `flags` is [`FLAG_DESCRIPTOR`]: the first
/// [`DESCRIPTOR_LEN`] bytes of its payload are a [`Descriptor`], the rest
/// (up to 24 bytes) is inline payload beside it. The mover checks the
/// descriptor on its private copy and rewrites `region` into the
/// receiver's view, or bounces the message with
/// [`BounceReason::BadDescriptor`](crate::BounceReason::BadDescriptor).
pub mod region {
    use crate::NAME_BYTES;

    /// Most regions one server may hold.
    pub const MAX_REGIONS: usize = 8;
    /// Address space reserved for one region (the largest region is smaller).
    pub const SPAN: u64 = 0x10_0000_0000; // 64 GiB
    /// Start of the region range: above the direct rings, below the stacks.
    const BASE: u64 = 0x6800_0000_0000;

    /// Where this server's region `i` (its position in
    /// `ServerInfo::regions`, `i < MAX_REGIONS`) is mapped.
    pub const fn addr(i: usize) -> u64 {
        BASE + i as u64 * SPAN
    }

    /// Access: read only.
    pub const ACCESS_RO: u16 = 1;
    /// Access: read and write.
    pub const ACCESS_RW: u16 = 2;

    /// Whether holding `held` access allows what `asked` asks for.
    pub const fn allows(held: u16, asked: u16) -> bool {
        matches!((held, asked), (ACCESS_RW, ACCESS_RO | ACCESS_RW) | (ACCESS_RO, ACCESS_RO))
    }

    /// `Message::flags` of a message whose payload starts with a [`Descriptor`].
    pub const FLAG_DESCRIPTOR: u16 = 1;
    /// Bytes of an encoded descriptor at the start of the payload.
    pub const DESCRIPTOR_LEN: usize = 16;

    /// One region in the info page.
    #[repr(C)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct RegionInfo {
        /// The region's `name` from the system TOML (NUL-padded).
        pub name: [u8; NAME_BYTES],
        /// Bytes (a multiple of 4096).
        pub size: u64,
        /// [`ACCESS_RO`] or [`ACCESS_RW`] (the owner always has `rw`).
        pub access: u16,
        /// 1 if this server is the region's owner.
        pub owner: u16,
        pub _reserved: u32,
    }

    impl RegionInfo {
        /// An unused entry.
        pub const EMPTY: RegionInfo = RegionInfo { name: [0; NAME_BYTES], size: 0, access: 0, owner: 0, _reserved: 0 };
    }

    /// A buffer in a region: `length` bytes at `offset`, asked with
    /// `access`. `region` is an index into the holder's
    /// `ServerInfo::regions` (the sender's on the way out, the receiver's
    /// once the mover delivered it).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct Descriptor {
        pub region: u16,
        /// [`ACCESS_RO`] or [`ACCESS_RW`]: what the receiver may do with it.
        pub access: u16,
        pub length: u32,
        pub offset: u64,
    }

    impl Descriptor {
        /// Little-endian: region, access, length, offset.
        pub fn encode(&self) -> [u8; DESCRIPTOR_LEN] {
            let mut out = [0u8; DESCRIPTOR_LEN];
            out[0..2].copy_from_slice(&self.region.to_le_bytes());
            out[2..4].copy_from_slice(&self.access.to_le_bytes());
            out[4..8].copy_from_slice(&self.length.to_le_bytes());
            out[8..16].copy_from_slice(&self.offset.to_le_bytes());
            out
        }

        /// The descriptor at the start of `payload` (`None` if it is shorter
        /// than [`DESCRIPTOR_LEN`]). Nothing is checked here: the values are
        /// whatever the bytes say.
        pub fn decode(payload: &[u8]) -> Option<Descriptor> {
            let bytes: &[u8; DESCRIPTOR_LEN] = payload.get(..DESCRIPTOR_LEN)?.try_into().ok()?;
            Some(Descriptor {
                region: u16::from_le_bytes([bytes[0], bytes[1]]),
                access: u16::from_le_bytes([bytes[2], bytes[3]]),
                length: u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]),
                offset: u64::from_le_bytes([
                    bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15],
                ]),
            })
        }
    }
}

/// The badge the mover stamps on messages the kernel itself sends
/// (bounces). No server has it: server badges start at 1.
pub const KERNEL_BADGE: u64 = 0;

/// The badge of the server at position `index` of the system TOML
/// (`index + 1`, so that it is never [`KERNEL_BADGE`]).
pub const fn server_badge(index: usize) -> u64 {
    index as u64 + 1
}

/// The badge of incarnation `generation` of the server at position `index`
/// of the system TOML: the position in the low 32 bits (as
/// [`server_badge`]), the generation in the high 32. Generation 0 is the
/// first start, so a server never restarted keeps `server_badge(index)`;
/// each restart counts up, and a message or reply stamped with an older
/// generation is recognisably from an incarnation that no longer runs.
pub const fn server_badge_of_generation(index: usize, generation: u32) -> u64 {
    ((generation as u64) << 32) | (server_badge(index) & 0xffff_ffff)
}

/// The position in the system TOML of the server a badge names, if the
/// badge names a server at all (any generation).
pub const fn server_index_of_badge(badge: u64) -> Option<usize> {
    match (badge & 0xffff_ffff).checked_sub(1) {
        Some(index) if index <= usize::MAX as u64 => Some(index as usize),
        _ => None,
    }
}

/// The generation a server badge carries (0 for the first incarnation).
pub const fn generation_of_badge(badge: u64) -> u32 {
    (badge >> 32) as u32
}

/// Kernel notices: messages with [`KERNEL_BADGE`] and label
/// [`notice::LABEL`] (never a bounce label) that tell a server about a peer
/// it holds a capability to. `destination_endpoint` is the receiver's own
/// endpoint that names the peer; the payload is a [`notice::Notice`].
pub mod notice {
    /// The label of every notice (bounce labels are small numbers).
    pub const LABEL: u32 = 0x4e00;
    /// The peer stopped: messages to it bounce with `DESTINATION_NOT_RUNNING`
    /// until it is restarted.
    pub const STOPPED: u32 = 1;
    /// The peer runs again as a new incarnation (`generation`, new badge).
    pub const RESTARTED: u32 = 2;
    /// The peer stopped for good: its restart policy does not bring it back.
    pub const GAVE_UP: u32 = 3;

    /// Why the peer stopped.
    pub const CAUSE_EXITED: u32 = 1;
    pub const CAUSE_FAULTED: u32 = 2;
    pub const CAUSE_HUNG: u32 = 3;

    /// Bytes of an encoded notice (fits the 40-byte payload).
    pub const ENCODED_LEN: usize = 24;

    /// What a notice says.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Notice {
        /// [`STOPPED`], [`RESTARTED`] or [`GAVE_UP`].
        pub kind: u32,
        /// The peer's position in the system TOML.
        pub server: u32,
        /// The generation that stopped, or the one that now runs (`RESTARTED`).
        pub generation: u32,
        /// [`CAUSE_EXITED`], [`CAUSE_FAULTED`] or [`CAUSE_HUNG`] (0 for `RESTARTED`).
        pub cause: u32,
        /// The exit code, or the exception vector of a fault.
        pub detail: i64,
    }

    impl Notice {
        /// Little-endian: kind, server, generation, cause, detail.
        pub fn encode(&self) -> [u8; ENCODED_LEN] {
            let mut out = [0u8; ENCODED_LEN];
            out[0..4].copy_from_slice(&self.kind.to_le_bytes());
            out[4..8].copy_from_slice(&self.server.to_le_bytes());
            out[8..12].copy_from_slice(&self.generation.to_le_bytes());
            out[12..16].copy_from_slice(&self.cause.to_le_bytes());
            out[16..24].copy_from_slice(&self.detail.to_le_bytes());
            out
        }

        /// The notice in a payload (`None` if it is too short or the kind unknown).
        pub fn decode(payload: &[u8]) -> Option<Notice> {
            let word = |at: usize| u32::from_le_bytes(payload[at..at + 4].try_into().unwrap_or([0; 4]));
            if payload.len() < ENCODED_LEN {
                return None;
            }
            let notice = Notice {
                kind: word(0),
                server: word(4),
                generation: word(8),
                cause: word(12),
                detail: i64::from_le_bytes(payload[16..24].try_into().unwrap_or([0; 8])),
            };
            matches!(notice.kind, STOPPED | RESTARTED | GAVE_UP).then_some(notice)
        }

        /// The kind as a word, for logs.
        pub fn kind_name(&self) -> &'static str {
            match self.kind {
                STOPPED => "stopped",
                RESTARTED => "restarted",
                _ => "gave up",
            }
        }

        /// The cause as a word, for logs.
        pub fn cause_name(&self) -> &'static str {
            match self.cause {
                CAUSE_EXITED => "exited",
                CAUSE_FAULTED => "faulted",
                CAUSE_HUNG => "hung",
                _ => "-",
            }
        }
    }
}

/// Why a message came back to its sender: the `label` of a bounce (a
/// message whose `sender_badge` is [`KERNEL_BADGE`]). The mover writes it
/// (`mover-logic`), servers read it; this enum is the one definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum BounceReason {
    /// The sender holds no capability for the endpoint.
    NoCapability = 1,
    /// The message failed validation (length or reserved flags).
    Malformed = 2,
    /// The destination's inbox is corrupt (its consumer index is out of range).
    DestinationBroken = 3,
    /// The endpoint names a server that is not running (never started,
    /// stopped, or between incarnations): queued messages to it come back
    /// with this reason too.
    DestinationNotRunning = 4,
    /// The message's buffer descriptor ([`region::Descriptor`]) is bad:
    /// the sender does not hold the region (or not with the access asked),
    /// the range is not inside it (or wraps), the access is unknown, the
    /// receiver does not hold the region with that access, or the flags or
    /// length do not make a descriptor message. The message comes back as
    /// sent, descriptor included.
    BadDescriptor = 5,
}

impl BounceReason {
    /// Every reason, in label order.
    pub const ALL: [BounceReason; 5] = [
        BounceReason::NoCapability,
        BounceReason::Malformed,
        BounceReason::DestinationBroken,
        BounceReason::DestinationNotRunning,
        BounceReason::BadDescriptor,
    ];

    /// The label a bounce with this reason carries.
    pub const fn label(self) -> u32 {
        self as u32
    }

    /// The reason a bounce's label names (`None` for a label no kernel writes).
    pub fn from_label(label: u32) -> Option<BounceReason> {
        BounceReason::ALL.into_iter().find(|r| r.label() == label)
    }

    /// What it means, for logs.
    pub fn name(self) -> &'static str {
        match self {
            BounceReason::NoCapability => "no capability for the endpoint",
            BounceReason::Malformed => "malformed message",
            BounceReason::DestinationBroken => "destination inbox broken",
            BounceReason::DestinationNotRunning => "destination not running",
            BounceReason::BadDescriptor => "bad buffer descriptor",
        }
    }
}

/// Bounce labels as plain numbers, for `match` on a received `label`
/// (each is [`BounceReason::label`] of its reason).
pub mod bounce {
    use super::BounceReason;
    pub const NO_CAPABILITY: u32 = BounceReason::NoCapability.label();
    pub const MALFORMED: u32 = BounceReason::Malformed.label();
    pub const DESTINATION_BROKEN: u32 = BounceReason::DestinationBroken.label();
    pub const DESTINATION_NOT_RUNNING: u32 = BounceReason::DestinationNotRunning.label();
    pub const BAD_DESCRIPTOR: u32 = BounceReason::BadDescriptor.label();
}

const STACKS_BASE: u64 = 0x7000_0000_0000;
const STACK_SPACING: u64 = 0x4000_0000;

/// Most servers one core may hold (a shared core runs them one at a time).
pub const MAX_SERVERS_PER_CORE: usize = 16;

/// Top of the user stack of the server at position `index` of the system
/// TOML. Stacks of different servers never overlap (several servers may
/// share a core), so a server's stack address means nothing in another
/// server's address space (and a fault there names its owner).
pub const fn stack_top_for_server(index: usize) -> u64 {
    STACKS_BASE + (index as u64 + 1) * STACK_SPACING
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_keep_the_index_and_never_make_the_kernel_badge() {
        for index in [0usize, 1, 7, 1000] {
            assert_eq!(server_badge_of_generation(index, 0), server_badge(index));
            for generation in [0u32, 1, 2, u32::MAX] {
                let badge = server_badge_of_generation(index, generation);
                assert_ne!(badge, KERNEL_BADGE);
                assert_eq!(server_index_of_badge(badge), Some(index));
                assert_eq!(generation_of_badge(badge), generation);
            }
        }
        assert_eq!(server_index_of_badge(KERNEL_BADGE), None);
    }

    #[test]
    fn notices_round_trip_and_unknown_kinds_are_refused() {
        let n = notice::Notice { kind: notice::RESTARTED, server: 3, generation: 9, cause: 0, detail: -4 };
        assert_eq!(notice::Notice::decode(&n.encode()), Some(n));
        let mut bad = n.encode();
        bad[0] = 77;
        assert_eq!(notice::Notice::decode(&bad), None);
        assert_eq!(notice::Notice::decode(&n.encode()[..10]), None);
        assert!(BounceReason::ALL.iter().all(|r| r.label() != notice::LABEL));
    }

    #[test]
    fn stacks_stay_in_the_user_half_and_apart() {
        for index in 0..1024 {
            let top = stack_top_for_server(index);
            assert!(top < USER_END && top > SEGMENTS_END);
            assert!(stack_top_for_server(index + 1) - top >= STACK_SPACING);
        }
    }

    #[test]
    fn devices_sit_between_the_regions_and_the_stacks() {
        assert!(device::bar_addr(0, 0) >= region::addr(region::MAX_REGIONS));
        assert!(
            device::dma_addr(device::MAX_DEVICES - 1) + device::DEVICE_SPAN
                - device::MAX_BARS as u64 * device::BAR_SPAN
                <= STACKS_BASE
        );
        assert!(device::dma_addr(0) < device::bar_addr(1, 0));
        assert!(device::bar_addr(0, device::MAX_BARS - 1) + device::BAR_SPAN <= device::dma_addr(0));
    }

    #[test]
    fn regions_sit_between_the_direct_rings_and_the_stacks() {
        assert!(region::addr(0) >= direct_ring_addr(MAX_DIRECT_RINGS));
        assert!(region::addr(region::MAX_REGIONS) <= STACKS_BASE);
        for i in 0..region::MAX_REGIONS {
            assert_eq!(region::addr(i) % (2 * 1024 * 1024), 0, "2 MiB aligned");
        }
    }

    #[test]
    fn descriptors_round_trip_and_short_payloads_are_refused() {
        let d = region::Descriptor { region: 3, access: region::ACCESS_RW, length: 65536, offset: u64::MAX - 7 };
        assert_eq!(region::Descriptor::decode(&d.encode()), Some(d));
        assert_eq!(region::Descriptor::decode(&d.encode()[..15]), None);
        assert!(region::allows(region::ACCESS_RW, region::ACCESS_RO));
        assert!(!region::allows(region::ACCESS_RO, region::ACCESS_RW));
        assert!(!region::allows(region::ACCESS_RO, 0) && !region::allows(0, region::ACCESS_RO));
        assert_eq!(BounceReason::from_label(bounce::BAD_DESCRIPTOR), Some(BounceReason::BadDescriptor));
    }

    #[test]
    fn direct_rings_collide_with_nothing_else() {
        let first = direct_ring_addr(0);
        let end = direct_ring_addr(MAX_DIRECT_RINGS);
        assert_eq!(end - first, MAX_DIRECT_RINGS as u64 * RING_SPAN, "one span each, no overlap");
        // Above the segments, the info and statistics pages, the outbox and
        // every inbox (the inboxes come last).
        assert!(first >= SEGMENTS_END && first >= inbox_addr(MAX_MOVERS));
        // Below the lowest possible stack (server 0, largest stack: 1 MiB).
        assert!(end <= stack_top_for_server(0) - 1024 * 1024);
        assert!(end <= STACKS_BASE);
        for i in 0..MAX_DIRECT_RINGS {
            assert_eq!(direct_ring_addr(i) % 4096, 0, "page aligned");
            assert_eq!(direct_ring_addr(i + 1) - direct_ring_addr(i), RING_SPAN);
        }
    }
}
