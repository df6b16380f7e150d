//! What the benchmark servers share: message labels, the payload pattern
//! receivers check, and the two benchmark-only system calls.

use crate::syscall::syscall3;

/// Labels of the benchmark protocol between `benchclient` and `echo`.
pub mod label {
    /// Answer with the same message.
    pub const PING: u32 = 1;
    /// Answer with the same message, its first 8 payload bytes replaced by
    /// the TSC at which echo received it (the power benchmark's wake-up
    /// latency: send -> handled, one way).
    pub const PING_STAMPED: u32 = 2;
    /// Start counting a stream (resets the expected sequence to 0).
    pub const SINK_START: u32 = 100;
    /// One stream message: check, count, do not answer.
    pub const SINK: u32 = 101;
    /// End of a stream: answer with the number of good messages (u64 LE).
    pub const SINK_FLUSH: u32 = 102;
    /// Exit.
    pub const STOP: u32 = u32::MAX;
}

/// The payload of message `sequence` (40 bytes, derived from the number).
pub fn payload(sequence: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    let mut x = u64::from(sequence).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    for chunk in p.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes());
    }
    p
}

/// Snapshots (begin) or prints (end) every core's counters for `phase`.
pub fn mark(phase: &str, begin: bool) {
    syscall3(abi::nr::BENCH_MARK, phase.as_ptr() as u64, phase.len() as u64, u64::from(begin));
}

/// Makes the movers scan `n` extra empty rings per pass.
pub fn set_extra_rings(n: usize) {
    syscall3(abi::nr::BENCH_EXTRA_RINGS, n as u64, 0, 0);
}

/// Median, p99, min, max of `samples` (sorted in place).
pub fn stats(samples: &mut [u64]) -> (u64, u64, u64, u64) {
    samples.sort_unstable();
    let n = samples.len();
    if n == 0 {
        return (0, 0, 0, 0);
    }
    (samples[n / 2], samples[(n * 99 / 100).min(n - 1)], samples[0], samples[n - 1])
}
