//! The floors of the in-guest IPC benchmark, run by the kernel itself on
//! two cores before any server starts: the `BENCH ...` lines the host
//! parses (`bench` crate, `cargo xtask bench`). The per-phase counters
//! servers ask for around their own measurements are `phase_counters`.
//!
//! ```text
//!  BSP: BENCH-BEGIN ...                        (boot argument bench.*)
//!       cache-line ping-pong  core A <-> core B   the physical floor
//!       direct ring RTT       core A <-> core B   two OwnedRings, no mover
//!       direct ring stream    core A  -> core B   batch 1, 8, 32
//!       stream floor          core A  -> core B   the least a 64-byte message costs
//!  then the servers run (benchclient <-> echo through the mover) and mark
//!  their phases with the BENCH_MARK syscall; the kernel prints per-core
//!  counter deltas for each phase. BENCH-END when every server stopped.
//! ```
//! Every received message is checked (sequence and payload); `ok=` counts
//! the ones that passed. Timing is TSC cycles; the host converts.

use crate::arch::x86_64::tsc;
use crate::smp::{self, post_work};
use core::mem::MaybeUninit;
use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use ringbuf::{Message, OwnedRing};

const RTT_ITERATIONS: usize = 20_000;
const RTT_WARMUP: usize = 1_000;
/// Messages per stream phase unless the boot says otherwise
/// (`bench.floor_stream=N`): about 0.1 s of the floor under TCG here, long
/// enough that one host time slice taken by another process does not
/// decide the ratio (200 000 messages, ~10 ms, did: the floor ranged over
/// 3x between boots of one run on a loaded machine).
pub const DEFAULT_STREAM_MESSAGES: u64 = 2_000_000;
/// The accepted range of `bench.floor_stream`.
pub const STREAM_MESSAGES_RANGE: core::ops::RangeInclusive<u64> = 1_000..=20_000_000;
/// Messages per stream phase of this boot (set once by `run_floors`).
static STREAM_MESSAGES: AtomicU64 = AtomicU64::new(DEFAULT_STREAM_MESSAGES);

/// Messages per stream phase (read once per phase by each side).
fn stream_messages() -> u64 {
    STREAM_MESSAGES.load(Ordering::Acquire)
}
/// Slots of the stream floor's ring (256 KiB: large enough that the
/// sender never waits on a consumer that keeps up). The floor also runs
/// with the direct ring's 64 slots (`DIRECT_RING_SLOTS`), which separates
/// what ring size buys (under single-threaded TCG the sender fills the
/// whole ring in one time slice) from what the per-message work costs.
const FLOOR_SLOTS: usize = 4096;
static FLOOR_USED_SLOTS: AtomicU64 = AtomicU64::new(FLOOR_SLOTS as u64);

#[repr(align(128))]
struct Line(AtomicU64);

static PINGPONG: Line = Line(AtomicU64::new(0));
static DONE: AtomicUsize = AtomicUsize::new(0);
static STREAM_START: AtomicU64 = AtomicU64::new(0);
static STREAM_END: AtomicU64 = AtomicU64::new(0);
static STREAM_OK: AtomicU64 = AtomicU64::new(0);
static STREAM_BATCH: AtomicUsize = AtomicUsize::new(1);

/// Timing samples of the measuring core (only it writes, between posts).
static mut SAMPLES: [u64; RTT_ITERATIONS] = [0; RTT_ITERATIONS];

/// Rings for the direct-ring figures, shared by the two benchmark cores
/// (written fresh by the BSP before each phase, see `reset_rings`). Room
/// for the floor's ring size; each phase uses `RING_SLOTS` of it.
static mut RING_AB: MaybeUninit<OwnedRing<FLOOR_SLOTS>> = MaybeUninit::uninit();
static mut RING_BA: MaybeUninit<OwnedRing<FLOOR_SLOTS>> = MaybeUninit::uninit();
/// Slots the direct rings have in the current phase (a power of two, at
/// most `FLOOR_SLOTS`): 64 for the round trip, both 4096 (the floor's) and
/// 64 for the streams, so each stream compares with a floor of its size.
static RING_SLOTS: AtomicUsize = AtomicUsize::new(DIRECT_RING_SLOTS);
/// The direct rings' usual size.
const DIRECT_RING_SLOTS: usize = 64;

/// The stream floor's ring: plain 64-byte slots (no atomics, no header
/// words), and the two indices on lines of their own.
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct PlainSlot([u64; 8]);

static mut FLOOR_RING: [PlainSlot; FLOOR_SLOTS] = [PlainSlot([0; 8]); FLOOR_SLOTS];
static FLOOR_HEAD: Line = Line(AtomicU64::new(0));
static FLOOR_TAIL: Line = Line(AtomicU64::new(0));

/// Puts empty rings of `slots` slots in place. Only the BSP calls this,
/// between phases, while no core uses them.
fn reset_rings(slots: usize) {
    RING_SLOTS.store(slots, Ordering::SeqCst);
    for which in [&raw mut RING_AB, &raw mut RING_BA] {
        let base = core::ptr::NonNull::new(which.cast::<u8>()).expect("static is not null");
        // SAFETY: the static is one allocation of `size_of::<OwnedRing<FLOOR_SLOTS>>()`
        // bytes, aligned as a ring region (`OwnedRing` is `repr(C)`: header
        // then slots), and no benchmark work item runs now (phases are
        // sequential and `run_pair` waited for both items), so nothing else
        // accesses it; handles attached before are not used again.
        unsafe { ringbuf::RingRegion::init(base, core::mem::size_of::<OwnedRing<FLOOR_SLOTS>>(), slots, 0) }
            .expect("ring layout");
    }
}

/// One ring as a region (no Rust reference to it is ever formed: the two
/// benchmark cores each attach and use one end).
fn ring(which: *mut MaybeUninit<OwnedRing<FLOOR_SLOTS>>) -> ringbuf::RingRegion<'static> {
    let base = core::ptr::NonNull::new(which.cast::<u8>()).expect("static is not null");
    // SAFETY: `reset_rings` initialised the ring of `RING_SLOTS` slots
    // before the phase; it lives forever as a static, and during a phase
    // is accessed only through `ringbuf` handles by the two benchmark cores.
    unsafe {
        ringbuf::RingRegion::attach(
            base,
            core::mem::size_of::<OwnedRing<FLOOR_SLOTS>>(),
            RING_SLOTS.load(Ordering::SeqCst),
        )
    }
    .expect("ring layout")
}

fn rings() -> (ringbuf::RingRegion<'static>, ringbuf::RingRegion<'static>) {
    (ring(&raw mut RING_AB), ring(&raw mut RING_BA))
}

fn samples() -> &'static mut [u64; RTT_ITERATIONS] {
    // SAFETY: only the measuring core touches `SAMPLES`, inside one posted
    // work item at a time; the BSP reads it only after that item finished.
    unsafe { (&raw mut SAMPLES).as_mut() }.expect("a static is never null")
}

/// Median, p99, min, max of `samples` (sorted in place).
fn stats(samples: &mut [u64]) -> (u64, u64, u64, u64) {
    samples.sort_unstable();
    let n = samples.len();
    if n == 0 {
        return (0, 0, 0, 0);
    }
    (samples[n / 2], samples[(n * 99 / 100).min(n - 1)], samples[0], samples[n - 1])
}

fn finish_work() {
    DONE.fetch_add(1, Ordering::AcqRel);
    smp::wake(0);
}

/// Halts the BSP until `count` work items have called `finish_work`.
fn wait_done(count: usize) {
    loop {
        x86_64::instructions::interrupts::disable();
        if DONE.load(Ordering::Acquire) >= count {
            x86_64::instructions::interrupts::enable();
            return;
        }
        x86_64::instructions::interrupts::enable_and_hlt();
    }
}

fn run_pair(a: usize, b: usize, work_a: cores::Work, work_b: cores::Work) {
    DONE.store(0, Ordering::SeqCst);
    while !post_work(b, work_b, b) {
        core::hint::spin_loop();
    }
    while !post_work(a, work_a, a) {
        core::hint::spin_loop();
    }
    wait_done(2);
}

fn pingpong_measure(_: usize) {
    let samples = samples();
    for i in 0..(RTT_WARMUP + RTT_ITERATIONS) as u64 {
        let start = tsc::now();
        PINGPONG.0.store(2 * i + 1, Ordering::Release);
        while PINGPONG.0.load(Ordering::Acquire) != 2 * i + 2 {
            core::hint::spin_loop();
        }
        let end = tsc::now();
        if i as usize >= RTT_WARMUP {
            samples[i as usize - RTT_WARMUP] = end - start;
        }
    }
    finish_work();
}

fn pingpong_answer(_: usize) {
    for i in 0..(RTT_WARMUP + RTT_ITERATIONS) as u64 {
        while PINGPONG.0.load(Ordering::Acquire) != 2 * i + 1 {
            core::hint::spin_loop();
        }
        PINGPONG.0.store(2 * i + 2, Ordering::Release);
    }
    finish_work();
}

/// Payload bytes of a floor message: the sequence, its complement, 8 zeros.
const FLOOR_PAYLOAD_LEN: u16 = 16;

/// The first payload word of message `sequence`.
#[inline(always)]
fn payload_word(sequence: u32) -> u64 {
    u64::from(sequence) | (u64::from(!sequence) << 32)
}

/// Message `sequence`: endpoint 0, label 1, the 16-byte payload above.
/// Built field by field (a `Message::new` call per message was 49 of the
/// sender's 210 instructions per message, `cargo xtask bench instructions`).
#[inline(always)]
fn message(sequence: u32) -> Message {
    let mut m = Message::zeroed();
    m.label = 1;
    m.sequence = sequence;
    m.payload_len = FLOOR_PAYLOAD_LEN;
    m.payload[..8].copy_from_slice(&payload_word(sequence).to_le_bytes());
    m
}

/// Makes `m`, a message built by [`message`], message `sequence` (the two
/// fields that differ).
#[inline(always)]
fn renumber(m: &mut Message, sequence: u32) {
    m.sequence = sequence;
    m.payload[..8].copy_from_slice(&payload_word(sequence).to_le_bytes());
}

/// Whether `m` is exactly what `message(sequence)` sent, in the fields a
/// receiver reads: sequence, length and all 16 payload bytes (word compares
/// instead of building the expected message and a `memcmp`).
#[inline(always)]
fn check(m: &Message, sequence: u32) -> bool {
    let word = |i: usize| u64::from_le_bytes(m.payload[i..i + 8].try_into().expect("8 bytes"));
    m.sequence == sequence && m.payload_len == FLOOR_PAYLOAD_LEN && word(0) == payload_word(sequence) && word(8) == 0
}

static RTT_OK: AtomicU64 = AtomicU64::new(0);

fn ring_rtt_measure(_: usize) {
    let (ab, ba) = rings();
    let (mut to_b, mut from_b) = (ab.into_producer(), ba.into_consumer());
    let samples = samples();
    let mut ok = 0;
    for i in 0..(RTT_WARMUP + RTT_ITERATIONS) {
        let sequence = i as u32;
        let start = tsc::now();
        while to_b.push(&message(sequence)).is_err() {
            core::hint::spin_loop();
        }
        let reply = loop {
            if let Some(m) = from_b.pop() {
                break m;
            }
            core::hint::spin_loop();
        };
        let end = tsc::now();
        if i >= RTT_WARMUP {
            samples[i - RTT_WARMUP] = end - start;
            ok += u64::from(check(&reply, sequence));
        }
    }
    RTT_OK.store(ok, Ordering::Release);
    finish_work();
}

fn ring_rtt_answer(_: usize) {
    let (ab, ba) = rings();
    let (mut to_a, mut from_a) = (ba.into_producer(), ab.into_consumer());
    for _ in 0..(RTT_WARMUP + RTT_ITERATIONS) {
        let m = loop {
            if let Some(m) = from_a.pop() {
                break m;
            }
            core::hint::spin_loop();
        };
        while to_a.push(&m).is_err() {
            core::hint::spin_loop();
        }
    }
    finish_work();
}

fn stream_send(_: usize) {
    let messages = stream_messages();
    let mut to_b = rings().0.into_producer();
    let batch = STREAM_BATCH.load(Ordering::Acquire).clamp(1, 64);
    STREAM_START.store(tsc::now(), Ordering::Release);
    if batch == 1 {
        // One message built once and two fields rewritten per message, as
        // the floor's sender rewrites one word of its template.
        let mut m = message(0);
        for sequence in 0..messages as u32 {
            renumber(&mut m, sequence);
            while to_b.push(&m).is_err() {
                core::hint::spin_loop();
            }
        }
        finish_work();
        return;
    }
    let mut buffer = [message(0); 64];
    let mut next: u64 = 0;
    while next < messages {
        let n = batch.min((messages - next) as usize);
        for (i, m) in buffer[..n].iter_mut().enumerate() {
            renumber(m, (next + i as u64) as u32);
        }
        let mut sent = 0;
        loop {
            sent += to_b.push_slice(&buffer[sent..n]);
            if sent == n {
                break;
            }
            core::hint::spin_loop();
        }
        next += n as u64;
    }
    finish_work();
}

fn stream_receive(_: usize) {
    let messages = stream_messages();
    let mut from_a = rings().0.into_consumer();
    let mut received: u64 = 0;
    let mut ok: u64 = 0;
    while received < messages {
        match from_a.pop() {
            Some(m) => {
                ok += u64::from(check(&m, received as u32));
                received += 1;
            }
            None => core::hint::spin_loop(),
        }
    }
    STREAM_END.store(tsc::now(), Ordering::Release);
    STREAM_OK.store(ok, Ordering::Release);
    finish_work();
}

/// The stream floor's sender: per message one 64-byte copy with ordinary
/// stores from a message built once, and one Release store of the index.
/// The consumer index is read only when the cached one shows the ring full.
fn floor_send(_: usize) {
    let messages = stream_messages();
    let template = PlainSlot([0x0123_4567_89ab_cdef; 8]);
    let ring = (&raw mut FLOOR_RING).cast::<PlainSlot>();
    let slots = FLOOR_USED_SLOTS.load(Ordering::Acquire).clamp(1, FLOOR_SLOTS as u64);
    let mut tail_seen = FLOOR_TAIL.0.load(Ordering::Acquire);
    STREAM_START.store(tsc::now(), Ordering::Release);
    for index in 0..messages {
        while index - tail_seen >= slots {
            core::hint::spin_loop();
            tail_seen = FLOOR_TAIL.0.load(Ordering::Acquire);
        }
        let mut slot = template;
        slot.0[0] = index;
        // SAFETY: the slot is in the static ring (index masked); the
        // receiver reads it only after the Release store below publishes it
        // and is done with its previous contents (its Release store of the
        // tail, read above with Acquire), so no access races with this one.
        unsafe { ring.add(index as usize & (FLOOR_SLOTS - 1)).write(slot) };
        FLOOR_HEAD.0.store(index + 1, Ordering::Release);
    }
    finish_work();
}

/// The stream floor's receiver: per message one 64-byte copy out with
/// ordinary loads, one compare (the index in word 0, so `ok=` means
/// something) and one Release store of its index.
fn floor_receive(_: usize) {
    let messages = stream_messages();
    let ring = (&raw const FLOOR_RING).cast::<PlainSlot>();
    let mut head_seen = 0;
    let mut ok = 0u64;
    for index in 0..messages {
        while head_seen <= index {
            head_seen = FLOOR_HEAD.0.load(Ordering::Acquire);
            if head_seen <= index {
                core::hint::spin_loop();
            }
        }
        // SAFETY: published by the sender's Release store (read with
        // Acquire above) and not rewritten before the tail store below.
        let slot = core::hint::black_box(unsafe { ring.add(index as usize & (FLOOR_SLOTS - 1)).read() });
        ok += u64::from(slot.0[0] == index);
        FLOOR_TAIL.0.store(index + 1, Ordering::Release);
    }
    STREAM_END.store(tsc::now(), Ordering::Release);
    STREAM_OK.store(ok, Ordering::Release);
    finish_work();
}

fn print_latency(name: &str, ok: u64) {
    let (median, p99, min, max) = stats(samples());
    crate::kprintln!(
        "BENCH latency name={name} n={RTT_ITERATIONS} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok}"
    );
}

/// The `BENCH stream` line of the stream phase that just ended (its
/// cycles and checked count are in `STREAM_*`); `extra` is appended.
fn print_stream(name: &str, batch: usize, extra: impl core::fmt::Display) {
    let cycles = STREAM_END.load(Ordering::Acquire).saturating_sub(STREAM_START.load(Ordering::Acquire));
    crate::kprintln!(
        "BENCH stream name={name} batch={batch} n={} cycles={cycles} ok={}{extra}",
        stream_messages(),
        STREAM_OK.load(Ordering::Acquire)
    );
}

/// Runs the kernel-side figures on cores `a` (measures) and `b`.
pub fn run_floors(a: usize, b: usize, stream_messages: u64) {
    STREAM_MESSAGES.store(stream_messages, Ordering::SeqCst);
    log::info!("bench: floors on cores {a} and {b} ({RTT_ITERATIONS} round trips after {RTT_WARMUP} warm-up)");
    PINGPONG.0.store(0, Ordering::SeqCst);
    run_pair(a, b, pingpong_measure, pingpong_answer);
    print_latency("cacheline-pingpong", RTT_ITERATIONS as u64);

    reset_rings(DIRECT_RING_SLOTS);
    run_pair(a, b, ring_rtt_measure, ring_rtt_answer);
    print_latency("direct-ring-rtt", RTT_OK.load(Ordering::Acquire));

    // The floor's size first (the host compares each with the floor of its
    // size), then the usual 64 slots at batch 1.
    for (slots, batch) in [(FLOOR_SLOTS, 1usize), (FLOOR_SLOTS, 8), (FLOOR_SLOTS, 32), (DIRECT_RING_SLOTS, 1)] {
        reset_rings(slots);
        STREAM_BATCH.store(batch, Ordering::SeqCst);
        run_pair(a, b, stream_send, stream_receive);
        print_stream("direct-ring-stream", batch, format_args!(" slots={slots}"));
    }

    // The large ring first: the host takes the first stream-floor record as the floor.
    for slots in [FLOOR_SLOTS as u64, DIRECT_RING_SLOTS as u64] {
        FLOOR_HEAD.0.store(0, Ordering::SeqCst);
        FLOOR_TAIL.0.store(0, Ordering::SeqCst);
        FLOOR_USED_SLOTS.store(slots, Ordering::SeqCst);
        run_pair(a, b, floor_send, floor_receive);
        print_stream("stream-floor", 1, format_args!(" slots={slots}"));
    }
}
