//! System-call fuzzing: random numbers, hostile pointer and length ranges.
//!
//! Never chosen, because they would end or stop the injector for the
//! wrong reason: `exit` (a fatal act of its own), `reply_recv` with flags 0
//! (waits for a call nobody makes), `call` on a held endpoint (ping, echo and
//! the stream never answer calls: it would wait for good), `log` with a
//! range the kernel would print, and `power_report` (dozens of lines each).
//! Everything else is fair game, with any arguments.

use crate::Counts;
use crate::rng::Rng;
use userlib::abi::{self, nr};
use userlib::syscall3;

/// A pointer the kernel must refuse for any access, or (when `valid` is
/// allowed) one it may accept.
fn hostile_pointer(info: &abi::ServerInfo, rng: &mut Rng, may_be_valid: bool) -> (u64, u64) {
    let index = abi::server_index_of_badge(info.badge).unwrap_or(0);
    let stack_top = abi::stack_top_for_server(index);
    let small = 1 + rng.below(256);
    let classes = if may_be_valid { 9 } else { 7 };
    match rng.below(classes) {
        // The never-mapped first 2 MiB (null and near-null).
        0 => (rng.below(abi::USER_MIN), small),
        // The kernel half.
        1 => (0xffff_8000_0000_0000 | rng.next(), small),
        // Non-canonical.
        2 => (0x0000_8000_0000_0000 + rng.below(0xffff_0000_0000_0000), small),
        // Wrapping around the end of the address space.
        3 => (u64::MAX - rng.below(64), 64 + rng.below(4096)),
        // Unmapped user memory between the program and the rings.
        4 => (0x1000_0000_0000 + rng.below(1 << 40), small),
        // From the mapped top of the stack into the unmapped page above
        // it. At most 8 bytes before the end: `server_name` writes the
        // whole name or nothing, and a range that fits a short name would
        // be valid and overwrite this server's own stack (it did: a return
        // address became "in...", and exits turned into #GP faults). The
        // top 8 bytes hold only `_start`'s return slot, never used.
        5 => (stack_top - 1 - rng.below(8), 9 + rng.below(4096)),
        // From the statistics page (mapped) into the unmapped page after it.
        6 => (abi::STATS_ADDR + 4096 - 1 - rng.below(8), 9 + rng.below(256)),
        // Read-only code or the read-only info page, as an output buffer.
        7 => (if rng.chance(50) { fuzz_target as *const () as u64 } else { abi::INFO_ADDR }, small),
        // Anything at all.
        _ => (rng.next(), rng.next()),
    }
}

/// Marks the code whose address the fuzzer hands out as an output buffer.
#[inline(never)]
fn fuzz_target() {}

/// One fuzzed system call; its result is ignored (a refusal is expected,
/// a success is harmless by construction).
pub fn one_call(info: &abi::ServerInfo, rng: &mut Rng, counts: &mut Counts) {
    let endpoints = u64::from(info.endpoint_count);
    // `log` is fuzzed only once in 64 calls: the kernel charges a refused
    // `log` to the server's log budget (64 lines a second), and the one
    // line of the incarnation must not be the one dropped.
    let pick = match rng.below(64) {
        0 => 2,
        _ => rng.pick(&[0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    };
    let (number, a0, a1, a2) = match pick {
        // Numbers no call has.
        0 | 1 => (13 + rng.below(u64::MAX - 13), rng.next(), rng.next(), rng.next()),
        // `log` with a range the kernel must refuse, or too long.
        2 => {
            let (ptr, len) = hostile_pointer(info, rng, false);
            let len = if rng.chance(20) { abi::LOG_MAX as u64 + 1 + rng.below(1 << 20) } else { len };
            (nr::LOG, ptr, len, rng.next())
        }
        // `server_name` into anything (a valid buffer is fine too).
        3 => {
            let (ptr, len) = hostile_pointer(info, rng, true);
            (nr::SERVER_NAME, ptr, len, rng.next())
        }
        // Harmless calls with random arguments.
        4 => (rng.pick(&[nr::CORE_ID, nr::TSC_HZ, nr::WAIT]), rng.next(), rng.next(), rng.next()),
        // `wake_mover` (rate-limited by the kernel).
        5 => (nr::WAKE_MOVER, rng.next(), rng.next(), rng.next()),
        // Benchmark-only calls outside a benchmark boot.
        6 => {
            let (ptr, len) = hostile_pointer(info, rng, true);
            (rng.pick(&[nr::BENCH_MARK, nr::BENCH_EXTRA_RINGS]), ptr, len, rng.next())
        }
        // `idle_pstate` with anything.
        7 => {
            let any = rng.next();
            (nr::IDLE_PSTATE, rng.pick(&[0, 1, 2, any]), rng.next(), rng.next())
        }
        // `call` on an endpoint this server does not hold.
        8 => (nr::CALL, endpoints + rng.below(u64::from(u32::MAX) - endpoints), rng.next(), rng.next()),
        // `reply_recv` with a reply (or bad flags) while serving no call:
        // refused at once. Flags 0 (wait for a call) is never used.
        9 => {
            let flags = match rng.below(3) {
                0 => 1,
                1 => 3,
                _ => rng.next() | 4,
            };
            (nr::REPLY_RECV, flags, rng.next(), rng.next())
        }
        // Known numbers just past the table.
        _ => (13 + rng.below(64), rng.next(), rng.next(), rng.next()),
    };
    let _ = syscall3(number, a0, a1, a2);
    counts.syscalls += 1;
}
