//! Benchmark helpers the measuring servers share (`benchclient`, `echo`,
//! `ping`, `ring-ping`, `ring-pong`): the labels of the benchmark protocol,
//! the payload pattern receivers check, a static buffer for timing samples,
//! and the statistics of a sample set; and [`ring_pair`], both ends of the
//! user<->user direct-ring benchmark. The benchmark-only system calls
//! (phase marks, extra rings) are with the other wrappers:
//! [`crate::bench_mark`], [`crate::bench_extra_rings`].

pub mod ring_pair;

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
    /// Answer, then serve synchronous calls (`reply_recv`, answering each
    /// with `label + 1`) until a call labelled `SERVE_CALLS_END`, which is
    /// answered too; then back to the rings.
    pub const SERVE_CALLS: u32 = 200;
    /// The call that ends `SERVE_CALLS`.
    pub const SERVE_CALLS_END: u32 = 201;
    /// Serve the direct rings `client-to-echo` / `echo-to-client`
    /// ([`super::ring_pair::serve`]) until `STOP` arrives on them; then back
    /// to the mover's rings. Answered first through the mover with one
    /// payload byte: 1 if echo serves the direct rings now, 0 if it cannot
    /// (no such rings in this system, or they broke earlier).
    pub const SERVE_DIRECT_RINGS: u32 = 300;
    /// Exit.
    pub const STOP: u32 = u32::MAX;
}

/// The five payload words of message `sequence` (xorshift from the number).
#[inline(always)]
fn payload_words(sequence: u32) -> impl Iterator<Item = u64> {
    let mut x = u64::from(sequence).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5bd1_e995;
    core::iter::repeat_with(move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    })
    .take(5)
}

/// The payload of message `sequence` (40 bytes, derived from the number).
#[inline]
pub fn payload(sequence: u32) -> [u8; 40] {
    let mut p = [0u8; 40];
    for (chunk, word) in p.chunks_mut(8).zip(payload_words(sequence)) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    p
}

/// Whether `message` carries exactly `payload(sequence)`: length 40 and
/// every byte, compared a word at a time as the words are generated (the
/// same check as `payload_bytes() == payload(sequence)`, without building
/// the expected array and calling `memcmp` per message; issue 17 measured
/// the benchmarks' checking at more than the ring's own work).
#[inline]
pub fn payload_matches(message: &ringbuf::Message, sequence: u32) -> bool {
    usize::from(message.payload_len) == message.payload.len()
        && message.payload.chunks_exact(8).zip(payload_words(sequence)).all(|(chunk, word)| chunk == word.to_le_bytes())
}

/// TSC cycles from `start` to `end`, or `None` when the TSC went backwards
/// (`end < start`: the two stamps came from cores whose TSCs disagree, or
/// the counter was reset). Such a sample is dropped and counted
/// (`tsc_backwards=N` on the `BENCH` line), never kept as 0 or as a
/// wrapped-around huge value.
pub fn elapsed(start: u64, end: u64) -> Option<u64> {
    end.checked_sub(start)
}

/// Timing samples being collected into a buffer: each kept one, and how
/// many were dropped because the TSC went backwards ([`elapsed`]).
pub struct Samples<'a> {
    buffer: &'a mut [u64],
    kept: usize,
    backwards: u64,
}

impl<'a> Samples<'a> {
    pub fn new(buffer: &'a mut [u64]) -> Samples<'a> {
        Samples { buffer, kept: 0, backwards: 0 }
    }

    /// Keeps `end - start`, or counts it as backwards. A sample beyond the
    /// buffer's end is dropped (callers bound their counts by its length).
    pub fn record(&mut self, start: u64, end: u64) {
        match elapsed(start, end) {
            Some(cycles) => {
                if let Some(slot) = self.buffer.get_mut(self.kept) {
                    *slot = cycles;
                    self.kept += 1;
                }
            }
            None => self.backwards += 1,
        }
    }

    /// Samples dropped because the TSC went backwards (`tsc_backwards=`).
    pub fn backwards(&self) -> u64 {
        self.backwards
    }

    /// [`stats`] of the kept samples (sorts them).
    pub fn stats(&mut self) -> (u64, u64, u64, u64) {
        stats(&mut self.buffer[..self.kept])
    }
}

/// Entries in the buffer [`take_sample_buffer`] hands out.
pub const SAMPLE_BUFFER_LEN: usize = 65_536;

/// A static buffer for timing samples (512 KiB, in `.bss`): given out once,
/// so benchmarks need neither a heap nor a huge stack.
pub fn take_sample_buffer() -> Option<&'static mut [u64; SAMPLE_BUFFER_LEN]> {
    use core::sync::atomic::{AtomicBool, Ordering};
    static TAKEN: AtomicBool = AtomicBool::new(false);
    static mut BUFFER: [u64; SAMPLE_BUFFER_LEN] = [0; SAMPLE_BUFFER_LEN];
    if TAKEN.swap(true, Ordering::AcqRel) {
        return None;
    }
    // SAFETY: the swap above lets exactly one caller through, so this is
    // the only reference to `BUFFER` ever made.
    unsafe { (&raw mut BUFFER).as_mut() }
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
