//! The two ends of the user<->user direct-ring benchmark: two servers that
//! share a pair of direct rings (`[[direct_ring]]`, one each way, no mover)
//! and speak the benchmark protocol of [`super::label`] over them.
//! [`measure`] is the measuring end (`ring-ping`, `benchclient`),
//! [`serve`] the answering end (`ring-pong`, `echo`).
//!
//! ```text
//!  measuring end                          answering end
//!  PING seq=i  ---- to_peer ---->         same message back
//!              <--- from_peer ---         (i = 0 .. warmup + round trips)
//!  SINK_START, SINK 0..n (batches of B),  checks every SINK in order,
//!  SINK_FLUSH  ------------------>        answers SINK_FLUSH with the
//!              <------------------        count of good ones (u64 LE)
//!  STOP (`stop`) ----------------->       `serve` returns
//! ```
//!
//! Invariants:
//! - The peer is hostile: only `*_untrusted` ring calls, every message
//!   validated on its private copy before it is looked at; a lying index
//!   ends the run with the `RingError`.
//! - Nothing in a measured loop enters the kernel: the phase marks
//!   ([`PHASE_RTT`], [`PHASE_STREAM`]) sit outside it, and the host checks
//!   that those phases show 0 CR3 writes and 0 system calls per message.
//! - A sample whose TSC went backwards is dropped and counted
//!   (`tsc_backwards=N`, [`super::elapsed`]), as in every other `BENCH` line.
#![forbid(unsafe_code)]

use ringbuf::{Consumer, Message, Producer, RingError};

use super::{Samples, elapsed, label, payload, payload_matches};
use crate::{DirectRing, DirectRingError};

/// Kernel counter phase around the timed round trips (`crate::bench_mark`;
/// refused, harmlessly, outside benchmark boots).
pub const PHASE_RTT: &str = "direct-ring-user-rtt";
/// Kernel counter phase around the first (batch 1) stream.
pub const PHASE_STREAM: &str = "direct-ring-user-stream";
/// Batch sizes of the streams, in order.
pub const STREAM_BATCHES: [usize; 3] = [1, 8, 32];
/// Messages the answering end copies out per batch read (released with one store).
const READ_BATCH: usize = 32;

/// Why [`attach`] failed: each end's error, if that end failed.
#[derive(Clone, Copy, Debug)]
pub struct AttachError {
    pub to_peer: Option<DirectRingError>,
    pub from_peer: Option<DirectRingError>,
}

impl core::fmt::Display for AttachError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "cannot attach the direct rings: {:?}, {:?}", self.to_peer, self.from_peer)
    }
}

/// Attaches this server's ends of the pair: the producer of `to_peer` and
/// the consumer of `from_peer` (each end once per server, so an end that
/// did attach while the other failed stays claimed).
pub fn attach(to_peer: &str, from_peer: &str) -> Result<(Producer<'static>, Consumer<'static>), AttachError> {
    match (DirectRing::producer(to_peer), DirectRing::consumer(from_peer)) {
        (Ok(producer), Ok(consumer)) => Ok((producer, consumer)),
        (producer, consumer) => Err(AttachError { to_peer: producer.err(), from_peer: consumer.err() }),
    }
}

/// How much the measuring end does.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Timed round trips (at most the sample buffer's length).
    pub round_trips: usize,
    /// Untimed round trips first.
    pub warmup: usize,
    /// Messages per stream.
    pub stream: u64,
}

/// Runs the round trips, then one stream per batch of [`STREAM_BATCHES`],
/// and logs the `BENCH` lines (`user-direct-ring-rtt`,
/// `user-direct-ring-stream batch=B`) and a count of round trips. Returns
/// how many replies or streamed messages were wrong (0 when all is well).
/// Does not send `STOP`: that is the caller's [`stop`].
pub fn measure(
    to_peer: &mut Producer<'_>,
    from_peer: &mut Consumer<'_>,
    samples: &mut [u64],
    plan: Plan,
) -> Result<u64, RingError> {
    let round_trips = plan.round_trips.min(samples.len());
    let mut samples = Samples::new(samples);
    let (mut bad, mut ok) = (0u64, 0u64);
    for round in 0..plan.warmup + round_trips {
        if round == plan.warmup {
            crate::bench_mark(PHASE_RTT, true);
        }
        let sequence = round as u32;
        let request = message(label::PING, sequence);
        let start = crate::rdtsc();
        send(to_peer, &request)?;
        let reply = recv(from_peer)?;
        let end = crate::rdtsc();
        let good = reply.validate().is_ok()
            && reply.label == label::PING
            && reply.sequence == sequence
            && payload_matches(&reply, sequence);
        if round >= plan.warmup {
            samples.record(start, end);
            ok += u64::from(good);
        }
        bad += u64::from(!good);
    }
    crate::bench_mark(PHASE_RTT, false);
    let (median, p99, min, max) = samples.stats();
    crate::log!(
        "BENCH latency name=user-direct-ring-rtt n={round_trips} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok} tsc_backwards={}",
        samples.backwards()
    );
    crate::log!("{} round trips over direct rings, {bad} bad replies", plan.warmup + round_trips);

    for batch in STREAM_BATCHES {
        let phase = (batch == STREAM_BATCHES[0]).then_some(PHASE_STREAM);
        bad += stream(to_peer, from_peer, batch, plan.stream, phase)?;
    }
    Ok(bad)
}

/// One stream of `n` messages in batches of `batch`, its `BENCH` line
/// (or `BENCH dropped` when the TSC went backwards across it); returns
/// how many messages were not counted good, plus bad flush answers.
fn stream(
    to_peer: &mut Producer<'_>,
    from_peer: &mut Consumer<'_>,
    batch: usize,
    n: u64,
    phase: Option<&str>,
) -> Result<u64, RingError> {
    let mut bad = 0u64;
    send(to_peer, &message(label::SINK_START, 0))?;
    if let Some(phase) = phase {
        crate::bench_mark(phase, true);
    }
    let start = crate::rdtsc();
    let mut next: u64 = 0;
    while next < n {
        let want = batch.min((n - next) as usize);
        let mut slots = match to_peer.reserve_untrusted(want) {
            Ok(slots) => slots,
            Err(RingError::Full) => {
                core::hint::spin_loop();
                continue;
            }
            Err(e) => return Err(e),
        };
        for _ in 0..slots.len() {
            // Cannot fail: we write at most `slots.len()` messages.
            let _ = slots.write_next(&message(label::SINK, next as u32));
            next += 1;
        }
        slots.commit();
    }
    send(to_peer, &message(label::SINK_FLUSH, 0))?;
    let reply = loop {
        let reply = recv(from_peer)?;
        if reply.validate().is_ok() && reply.label == label::SINK_FLUSH && reply.payload_len == 8 {
            break reply;
        }
        bad += 1;
    };
    let cycles = elapsed(start, crate::rdtsc());
    if let Some(phase) = phase {
        crate::bench_mark(phase, false);
    }
    let mut count = [0u8; 8];
    count.copy_from_slice(&reply.payload_bytes()[..8]);
    let ok = u64::from_le_bytes(count);
    match cycles {
        Some(cycles) => crate::log!(
            "BENCH stream name=user-direct-ring-stream batch={batch} n={n} cycles={cycles} ok={ok} tsc_backwards=0"
        ),
        // The whole stream is one sample: without a time it has no rate.
        None => crate::log!(
            "BENCH dropped kind=stream name=user-direct-ring-stream batch={batch} n={n} ok={ok} tsc_backwards=1"
        ),
    }
    Ok(bad + n.abs_diff(ok))
}

/// Tells the answering end to stop serving ([`serve`] returns).
pub fn stop(to_peer: &mut Producer<'_>) -> Result<(), RingError> {
    send(to_peer, &message(label::STOP, 0))
}

/// What the answering end saw; `Display` is the body of its closing line
/// ("answered N pings, checked M streamed messages (G good), K malformed").
#[derive(Clone, Copy, Debug, Default)]
pub struct Served {
    pub pings: u64,
    pub streamed: u64,
    pub stream_good: u64,
    pub malformed: u64,
}

impl core::fmt::Display for Served {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "answered {} pings, checked {} streamed messages ({} good), {} malformed",
            self.pings, self.streamed, self.stream_good, self.malformed
        )
    }
}

/// The answering end: `PING` is answered with the same message; a stream
/// (`SINK_START`, `SINK`..., `SINK_FLUSH`) is checked message by message
/// (sequence in order, payload intact) and the flush answered with the
/// number of good messages; serves until `STOP`, adding to `served`.
pub fn serve(from_peer: &mut Consumer<'_>, to_peer: &mut Producer<'_>, served: &mut Served) -> Result<(), RingError> {
    let mut expected: u32 = 0;
    let mut good: u64 = 0;
    loop {
        let batch = match from_peer.read_untrusted(READ_BATCH) {
            Ok(batch) => batch,
            Err(RingError::Empty) => {
                core::hint::spin_loop();
                continue;
            }
            Err(e) => return Err(e),
        };
        let mut stop = false;
        // Each `Message` here is a private copy: validate, then look.
        for message in batch.iter() {
            if message.validate().is_err() {
                served.malformed += 1;
                continue;
            }
            match message.label {
                label::PING => {
                    served.pings += 1;
                    send(to_peer, &message)?;
                }
                label::SINK_START => (expected, good) = (0, 0),
                label::SINK => {
                    served.streamed += 1;
                    if message.sequence == expected && payload_matches(&message, expected) {
                        good += 1;
                    }
                    expected = expected.wrapping_add(1);
                }
                label::SINK_FLUSH => {
                    served.stream_good += good;
                    let reply = Message::new(0, label::SINK_FLUSH, &good.to_le_bytes()).unwrap_or(Message::zeroed());
                    send(to_peer, &reply)?;
                }
                label::STOP => {
                    stop = true;
                    break;
                }
                _ => served.malformed += 1,
            }
        }
        batch.release();
        if stop {
            return Ok(());
        }
    }
}

/// Message `sequence` of the benchmark protocol.
fn message(label: u32, sequence: u32) -> Message {
    let mut message = Message::new(0, label, &payload(sequence)).unwrap_or(Message::zeroed());
    message.sequence = sequence;
    message
}

/// Pushes `message`, spinning while the ring is full.
fn send(ring: &mut Producer<'_>, message: &Message) -> Result<(), RingError> {
    loop {
        match ring.push_untrusted(message) {
            Err(RingError::Full) => core::hint::spin_loop(),
            other => return other,
        }
    }
}

/// Pops the next message (a private copy, still to be validated),
/// spinning while the ring is empty.
fn recv(ring: &mut Consumer<'_>) -> Result<Message, RingError> {
    loop {
        match ring.pop_untrusted() {
            Err(RingError::Empty) => core::hint::spin_loop(),
            other => return other,
        }
    }
}
