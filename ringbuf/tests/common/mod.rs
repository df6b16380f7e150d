//! Helpers shared by the integration tests: deterministic message contents
//! with checksums, a small PRNG, an aligned heap region.

#![allow(dead_code)]

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

use ringbuf::{Message, PAYLOAD_CAPACITY};

/// xorshift64*: deterministic, good enough to pick operations and garbage.
pub struct TestRng(u64);

impl TestRng {
    pub fn new(seed: u64) -> Self {
        TestRng(seed | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..bound` (`bound > 0`), from the high bits.
    pub fn below(&mut self, bound: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(bound)) >> 64) as u64
    }
}

/// FNV-1a over the payload bytes, folded to 32 bits.
pub fn checksum(bytes: &[u8]) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash ^ (hash >> 32)) as u32
}

/// Message number `sequence`: payload derived from it, label = payload checksum.
pub fn numbered_message(sequence: u64) -> Message {
    let mut payload = [0u8; PAYLOAD_CAPACITY];
    payload[..8].copy_from_slice(&sequence.to_le_bytes());
    let mut rng = TestRng::new(sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for chunk in payload[8..].chunks_mut(8) {
        chunk.copy_from_slice(&rng.next_u64().to_le_bytes()[..chunk.len()]);
    }
    let len = 8 + (sequence % 33) as usize;
    let mut message = Message::new((sequence % 5) as u32, 0, &payload[..len]).unwrap();
    message.label = checksum(message.payload_bytes());
    message.sequence = sequence as u32;
    message.sender_badge = !sequence;
    message
}

/// Checks that `message` is exactly message number `expected`.
pub fn assert_is_message(message: &Message, expected: u64) {
    assert_eq!(message.validate(), Ok(()), "message {expected} malformed");
    assert_eq!(message.sequence, expected as u32, "out of order or lost");
    assert_eq!(message.label, checksum(message.payload_bytes()), "checksum of {expected}");
    assert_eq!(*message, numbered_message(expected), "contents of {expected}");
}

/// A zeroed heap allocation of exactly `len` bytes, aligned like a page
/// would be for a ring; freed on drop.
pub struct HeapRegion {
    pub base: NonNull<u8>,
    pub len: usize,
    layout: Layout,
}

impl HeapRegion {
    pub fn new(len: usize) -> Self {
        let layout = Layout::from_size_align(len, ringbuf::REGION_ALIGN).unwrap();
        // SAFETY: the layout has non-zero size.
        let base = NonNull::new(unsafe { alloc_zeroed(layout) }).unwrap();
        HeapRegion { base, len, layout }
    }

    /// The whole region as atomic words, the way a hostile peer sees it.
    pub fn words(&self) -> &[std::sync::atomic::AtomicU64] {
        // SAFETY: the allocation is `len` bytes (a multiple of 64), aligned
        // to 128, zero-initialised, and lives as long as `self`. Atomics
        // tolerate concurrent access by the ring through its own atomics.
        unsafe { std::slice::from_raw_parts(self.base.as_ptr().cast(), self.len / 8) }
    }
}

// SAFETY: the region is plain memory only accessed through atomics.
unsafe impl Send for HeapRegion {}
// SAFETY: as above; all shared access goes through atomics.
unsafe impl Sync for HeapRegion {}

impl Drop for HeapRegion {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.base.as_ptr(), self.layout) };
    }
}

/// Spin politely (Miri needs a yield to schedule the other thread).
pub fn backoff() {
    if cfg!(miri) {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}
