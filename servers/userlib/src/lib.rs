//! What every server links against: the `_start` entry point, a panic
//! handler that reports and exits, and a small line formatter for `log`;
//! and, one module per job:
//! - `syscall`: every system-call wrapper (re-exported here: `userlib::exit`);
//! - `info`: readers of the info page (`info`, `args`, `arg`, `arg_u64`);
//! - `channel`: the rings ([`Channel`]: send, receive, batches, endpoints);
//! - `direct_ring`: user<->user rings shared with one peer, no mover
//!   ([`DirectRing`]);
//! - [`region`]: shared regions and the descriptors messages carry over
//!   them, with the copy-before-validate helper ([`region::copy_out`]);
//!   [`pool`]: a buffer pool over a region (alloc, send, the receiver
//!   returns it);
//! - `idle`: how the core waits on empty inboxes and its half of the
//!   sleep/wake protocol ([`Idler`], owned by the channel; the policy
//!   logic is the `power-policy` crate's `Governor`);
//! - [`measure`]: benchmark helpers (protocol labels, payloads, a sample
//!   buffer, statistics, and both ends of the direct-ring benchmark:
//!   `measure::ring_pair`).
//!
//! A server is a `no_std` binary:
//! ```ignore
//! #![cfg_attr(target_os = "none", no_std, no_main)]
//! userlib::server_main!(run);
//! fn run() -> i32 { userlib::log!("hello from core {}", userlib::core_id()); 0 }
//! ```
//! On the host the same crate builds as a stub program (so workspace-wide
//! `cargo test` works); `cargo xtask` builds the real thing for
//! `x86_64-unknown-none`.
#![no_std]

pub use abi;

mod channel;
pub mod device;
mod direct_ring;
mod idle;
mod info;
pub mod measure;
pub mod pool;
pub mod region;
mod syscall;
pub use channel::{Channel, Message, OpenError, SendError};
pub use device::{Device, DeviceError};
pub use direct_ring::{Consumer, DirectRing, DirectRingError, Producer, RingError};
pub use idle::{Idler, SleepCounts};
pub use info::{arg, arg_u64, args, generation, info};
pub use pool::{Buffer, BufferPool, PoolError};
pub use region::{Region, RegionError};
pub use syscall::*;

/// A line being formatted for `log`: at most `abi::LOG_MAX` bytes, longer
/// output is cut (never an error).
pub struct Line {
    bytes: [u8; abi::LOG_MAX],
    len: usize,
}

impl Line {
    pub const fn new() -> Line {
        Line { bytes: [0; abi::LOG_MAX], len: 0 }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Default for Line {
    fn default() -> Self {
        Line::new()
    }
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = abi::LOG_MAX - self.len;
        let take = s.len().min(room);
        self.bytes[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// Formats and logs one line: `userlib::log!("x = {}", x)`.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {{
        let mut line = $crate::Line::new();
        let _ = core::fmt::Write::write_fmt(&mut line, format_args!($($arg)*));
        let _ = $crate::log_bytes(line.as_bytes());
    }};
}

/// Declares the server's main function (`fn() -> i32`, the exit code).
#[macro_export]
macro_rules! server_main {
    ($main:path) => {
        #[cfg(target_os = "none")]
        #[unsafe(no_mangle)]
        extern "Rust" fn __userlib_server_main() -> i32 {
            $main()
        }

        #[cfg(not(target_os = "none"))]
        fn main() {
            let _ = $main; // referenced so it is type-checked on the host too
            eprintln!("this is a server for the microkernel: build it with `cargo xtask`");
        }
    };
}

#[cfg(target_os = "none")]
mod runtime {
    core::arch::global_asm!(
        ".global _start",
        "_start:",
        "and rsp, -16",
        "call {start}",
        "ud2",
        start = sym userlib_start,
    );

    unsafe extern "Rust" {
        fn __userlib_server_main() -> i32;
    }

    extern "C" fn userlib_start() -> ! {
        // SAFETY: `server_main!` defines this function in the server binary
        // with exactly this signature.
        let code = unsafe { __userlib_server_main() };
        crate::exit(code)
    }

    #[panic_handler]
    fn panic(info: &core::panic::PanicInfo) -> ! {
        crate::log!("panic: {}", info);
        crate::exit(101)
    }
}
