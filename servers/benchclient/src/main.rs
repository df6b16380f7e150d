//! The client side of the in-guest IPC benchmark (`cargo xtask bench`):
//! round trips to `echo` through the mover with 2..64 rings on the mover,
//! then streams to `echo` (as a sink) unbatched and batched. Every reply
//! and every stream message is checked; results are printed as `BENCH`
//! lines for the host, with the kernel's per-core counters around the
//! main phases.
//!
//! Then the same boot measures the user<->user direct rings
//! (`direct_ring_rows`: round trips and streams to `echo` over two
//! `[[direct_ring]]`s, no mover), and synchronous calls (`sync_rows`): to
//! `sync-echo` on this core (the direct switch) and to `echo` on its own
//! core (IPIs), round trips and back-to-back call streams.
//!
//! args: `rtt=N` round trips per ring count and per call placement
//! (default 20000), `stream=N` messages per stream (default 200000),
//! `sync_stream=N` calls per call stream (default 50000).
//!
//! Every `mover-rtt` / `mover-stream` line says what the rings are:
//! `rings=R extra=empty extra_rings=R-2` (R-2 kernel-side rings no core
//! writes). With `writers=NAME,…` (`systems/bench-writers.toml`) it runs
//! the rows with rings written by `ring-writer` servers on cores of their
//! own instead: `extra=idle` (writers polling, rings empty) and
//! `extra=written`, same boot, same vCPU count.
//!
//! With `twohop=1` (`systems/bench-twohop.toml`) it runs the two-hop rows
//! instead (`twohop_rows`): the one-hop mover round trip to `echo`, then
//! client -> A -> B -> client through the mover (`relay`, then `echo`) and
//! with nested synchronous calls (`sync-relay`, which calls `sync-echo`).
//!
//! With `power=<policy>` it runs the power benchmark instead (one boot per
//! policy, `qemu-scripts/systems/power-bench/*.toml`): round trips
//! back-to-back and at one message per 10 µs, 100 µs and 1 ms, each reply
//! stamped by echo with the TSC at which it was handled (the wake-up
//! latency), and the kernel's per-core sleep/pause counters around each
//! rate.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::{
    SAMPLE_BUFFER_LEN, Samples, elapsed, label, payload, payload_matches, stats, take_sample_buffer,
};
use userlib::{Channel, Message};
use userlib::{bench_extra_rings, bench_mark};

mod direct_ring_rows;
mod sync_rows;
mod twohop_rows;

userlib::server_main!(run);

/// Ring counts of the scaling rows (the base, the system's own outboxes on
/// the mover, comes first; counts not above it are skipped).
const RING_COUNTS: [usize; 5] = [4, 8, 16, 32, 64];
const WARMUP: usize = 1000;

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let Some(echo) = channel.endpoint_named("echo") else {
        userlib::log!("no endpoint called `echo`");
        return 1;
    };
    let echo_badge = channel.info().endpoint_badges[echo as usize];
    let iterations = (userlib::arg_u64("rtt", 20_000) as usize).min(SAMPLE_BUFFER_LEN);
    let stream = userlib::arg_u64("stream", 200_000);
    let Some(samples) = take_sample_buffer() else { return 1 };
    if let Some(policy) = userlib::arg("power") {
        return power_benchmark(&mut channel, echo, echo_badge, policy, samples);
    }

    if let Some(writers) = userlib::arg("writers") {
        return writers_benchmark(&mut channel, echo, echo_badge, writers, iterations, stream, samples);
    }

    if userlib::arg_u64("twohop", 0) != 0 {
        return twohop_rows::run(&mut channel, echo, echo_badge, samples, iterations);
    }

    // The outboxes the mover scans without extras: this server's and echo's,
    // plus every other server's on the mover (`outboxes=` in the TOML: the
    // benchmark system's `sync-echo` makes it 3).
    let base = (userlib::arg_u64("outboxes", 2) as usize).max(1);
    for rings in core::iter::once(base).chain(RING_COUNTS.into_iter().filter(|&r| r > base)) {
        bench_extra_rings(rings - base);
        let phase = (rings == base).then_some("mover-rtt");
        let rtt = mover_rtt(&mut channel, echo, echo_badge, iterations, samples, phase);
        rtt.print(&Rings { batch: None, rings, extra: "empty", extra_rings: rings - base, writers: None });
    }

    for (batch, rings) in [(1usize, base), (8, base), (32, base), (1, 64.max(base))] {
        bench_extra_rings(rings - base);
        let phase = (batch == 1 && rings == base).then_some("mover-stream");
        let labels = Rings { batch: Some(batch), rings, extra: "empty", extra_rings: rings - base, writers: None };
        mover_stream(&mut channel, echo, echo_badge, stream, phase, &labels);
    }
    bench_extra_rings(0);
    let plan = userlib::measure::ring_pair::Plan { round_trips: iterations, warmup: WARMUP, stream };
    direct_ring_rows::run(&mut channel, echo, echo_badge, samples, plan);
    let calls = userlib::arg_u64("sync_stream", 50_000);
    sync_rows::run(&mut channel, echo, echo_badge, samples, iterations, calls);
    let _ = channel.send(echo, label::STOP, b"");
    0
}

/// What a mover row measured, as the keys of its `BENCH` line:
/// `[batch=B] rings=R extra=empty|idle|written extra_rings=N [writers=K]`.
#[derive(Clone, Copy)]
struct Rings {
    batch: Option<usize>,
    /// Outboxes the mover scans per pass.
    rings: usize,
    /// What the rings beyond client and echo are: `empty` (kernel-side,
    /// no core writes them), `idle` (ring writers not writing), `written`.
    extra: &'static str,
    extra_rings: usize,
    /// Ring-writer servers in the boot.
    writers: Option<usize>,
}

impl core::fmt::Display for Rings {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if let Some(batch) = self.batch {
            write!(f, "batch={batch} ")?;
        }
        write!(f, "rings={} extra={} extra_rings={}", self.rings, self.extra, self.extra_rings)?;
        if let Some(writers) = self.writers {
            write!(f, " writers={writers}")?;
        }
        Ok(())
    }
}

/// The outcome of one `mover-rtt` measurement, printed as a `BENCH` line.
struct RoundTrips {
    iterations: usize,
    ok: u64,
    backwards: u64,
    stats: (u64, u64, u64, u64),
}

impl RoundTrips {
    fn print(&self, labels: &Rings) {
        let (median, p99, min, max) = self.stats;
        userlib::log!(
            "BENCH latency name=mover-rtt {labels} n={} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={} tsc_backwards={}",
            self.iterations,
            self.ok,
            self.backwards
        );
    }
}

/// `iterations` round trips to echo after `WARMUP`, each reply checked; a
/// sample whose TSC went backwards is dropped and counted. `phase` names
/// the kernel's counters around the measured part.
fn mover_rtt(
    channel: &mut Channel,
    echo: u32,
    echo_badge: u64,
    iterations: usize,
    samples: &mut [u64],
    phase: Option<&str>,
) -> RoundTrips {
    let mut ok = 0u64;
    let mut kept = Samples::new(samples);
    for round in 0..WARMUP + iterations {
        if round == WARMUP
            && let Some(phase) = phase
        {
            bench_mark(phase, true);
        }
        let sequence = round as u32;
        let mut message = Message::new(echo, label::PING, &payload(sequence)).expect("40 bytes fit");
        message.sequence = sequence;
        let start = userlib::rdtsc();
        channel.send_message(&message);
        let reply = channel.recv();
        let end = userlib::rdtsc();
        if round >= WARMUP {
            kept.record(start, end);
            let good =
                reply.sender_badge == echo_badge && reply.sequence == sequence && payload_matches(&reply, sequence);
            ok += u64::from(good);
        }
    }
    if let Some(phase) = phase {
        bench_mark(phase, false);
    }
    RoundTrips { iterations, ok, backwards: kept.backwards(), stats: kept.stats() }
}

/// Streams `stream` messages to echo in batches of `batch` and prints the
/// `BENCH stream` line (`labels` after the name), or a `BENCH dropped` line
/// when the TSC went backwards across the stream.
fn mover_stream(channel: &mut Channel, echo: u32, echo_badge: u64, stream: u64, phase: Option<&str>, labels: &Rings) {
    let batch = labels.batch.unwrap_or(1);
    let _ = channel.send(echo, label::SINK_START, b"");
    if let Some(phase) = phase {
        bench_mark(phase, true);
    }
    let start = userlib::rdtsc();
    let mut buffer = [Message::zeroed(); 32];
    let batch = batch.clamp(1, buffer.len());
    let mut next: u64 = 0;
    while next < stream {
        let n = batch.min((stream - next) as usize);
        for (i, m) in buffer[..n].iter_mut().enumerate() {
            let sequence = (next + i as u64) as u32;
            *m = Message::new(echo, label::SINK, &payload(sequence)).expect("fits");
            m.sequence = sequence;
        }
        let mut sent = 0;
        loop {
            sent += channel.send_batch(&buffer[sent..n]);
            if sent == n {
                break;
            }
            core::hint::spin_loop();
        }
        next += n as u64;
    }
    let _ = channel.send(echo, label::SINK_FLUSH, b"");
    let reply = answer_from(channel, label::SINK_FLUSH, echo_badge);
    let cycles = elapsed(start, userlib::rdtsc());
    if let Some(phase) = phase {
        bench_mark(phase, false);
    }
    let ok = count_of(&reply);
    match cycles {
        Some(cycles) => {
            userlib::log!("BENCH stream name=mover-stream {labels} n={stream} cycles={cycles} ok={ok} tsc_backwards=0")
        }
        // The whole stream is one sample: without a time it has no rate.
        None => {
            userlib::log!("BENCH dropped kind=stream name=mover-stream {labels} n={stream} ok={ok} tsc_backwards=1")
        }
    }
}

/// Waits for the next message labelled `label` from the sender with
/// `badge`, dropping any other.
fn answer_from(channel: &mut Channel, label: u32, badge: u64) -> Message {
    loop {
        let m = channel.recv();
        if m.label == label && m.sender_badge == badge {
            return m;
        }
    }
}

/// The u64 LE count at the start of a `SINK_FLUSH` answer (0 if short).
fn count_of(reply: &Message) -> u64 {
    let mut count = [0u8; 8];
    if let Some(bytes) = reply.payload_bytes().get(..8) {
        count.copy_from_slice(bytes);
    }
    u64::from_le_bytes(count)
}

/// Most ring writers a writers boot may name.
const MAX_WRITERS: usize = 8;

/// The ring-scaling rows with rings that real cores write
/// (`systems/bench-writers.toml`, args `writers=NAME,NAME,…`): the mover's
/// rings are this server's and echo's outboxes plus one per writer, no
/// kernel-side extra ring. Each figure is measured twice in the same boot:
/// with the writers idle (their rings empty, their cores polling: the
/// control with the same vCPU count) and writing as fast as their outboxes
/// take messages. The messages each writer sent during a phase are printed
/// (`BENCH writer …`); the mover's `messages` counter shows them too.
fn writers_benchmark(
    channel: &mut Channel,
    echo: u32,
    echo_badge: u64,
    names: &str,
    iterations: usize,
    stream: u64,
    samples: &mut [u64],
) -> i32 {
    let mut writers = [(0u32, 0u64); MAX_WRITERS];
    let mut count = 0;
    for name in names.split(',').filter(|name| !name.is_empty()) {
        let Some(endpoint) = channel.endpoint_named(name) else {
            userlib::log!("no endpoint called `{name}` (writers={names})");
            return 1;
        };
        if count == MAX_WRITERS {
            userlib::log!("more than {MAX_WRITERS} writers in writers={names}");
            return 1;
        }
        writers[count] = (endpoint, channel.info().endpoint_badges[endpoint as usize]);
        count += 1;
    }
    let writers = &writers[..count];
    let rings = 2 + count; // this server's and echo's outboxes, plus the writers'
    bench_extra_rings(0);
    for written in [false, true] {
        let extra = if written { "written" } else { "idle" };
        let labels = Rings { batch: None, rings, extra, extra_rings: count, writers: Some(count) };
        if written {
            for &(writer, _) in writers {
                let _ = channel.send(writer, label::SINK_START, b"");
            }
        }
        let rtt_phase = if written { "mover-rtt-written" } else { "mover-rtt-idle" };
        mover_rtt(channel, echo, echo_badge, iterations, samples, Some(rtt_phase)).print(&labels);
        let stream_phase = if written { "mover-stream-written" } else { "mover-stream-idle" };
        let stream_labels = Rings { batch: Some(1), ..labels };
        mover_stream(channel, echo, echo_badge, stream, Some(stream_phase), &stream_labels);
        if written {
            for &(writer, badge) in writers {
                let _ = channel.send(writer, label::SINK_FLUSH, b"");
                let reply = answer_from(channel, label::SINK_FLUSH, badge);
                userlib::log!(
                    "BENCH writer endpoint={writer} sent={} phases=mover-rtt-written,mover-stream-written",
                    count_of(&reply)
                );
            }
        }
    }
    for &(writer, _) in writers {
        let _ = channel.send(writer, label::STOP, b"");
    }
    let _ = channel.send(echo, label::STOP, b"");
    0
}

/// Rates of the power benchmark: (microseconds between sends, round trips).
/// 0 = back-to-back (continuous load).
const POWER_RATES: [(u64, usize); 4] = [(0, 5000), (10, 2000), (100, 2000), (1000, 500)];

/// Round trips at each rate of `POWER_RATES`, with echo's receive stamp.
fn power_benchmark(channel: &mut Channel, echo: u32, echo_badge: u64, policy: &str, samples: &mut [u64]) -> i32 {
    let tsc_per_us = userlib::tsc_hz() / 1_000_000;
    let half = samples.len() / 2;
    let (rtts, wakeups) = samples.split_at_mut(half);
    // Warm-up: caches, TLBs, and the policies' state machines.
    for sequence in 0..WARMUP as u32 {
        let mut message = Message::new(echo, label::PING_STAMPED, &payload(sequence)).expect("40 bytes fit");
        message.sequence = sequence;
        channel.send_message(&message);
        let _ = channel.recv();
    }
    for (interval_us, wanted) in POWER_RATES {
        let n = wanted.min(half);
        let phase = match interval_us {
            0 => "power-0us",
            10 => "power-10us",
            100 => "power-100us",
            _ => "power-1000us",
        };
        let (mut ok, mut rtt_kept, mut rtt_backwards) = (0u64, 0usize, 0u64);
        let (mut wakeup_kept, mut wakeup_backwards) = (0usize, 0u64);
        bench_mark(phase, true);
        let mut next_send = userlib::rdtsc();
        for round in 0..n {
            if interval_us > 0 {
                // Busy-wait to the next slot: the client is the load
                // generator and spins by design.
                next_send = next_send.wrapping_add(interval_us * tsc_per_us);
                while (userlib::rdtsc().wrapping_sub(next_send) as i64) < 0 {
                    core::hint::spin_loop();
                }
            }
            let sequence = (WARMUP + round) as u32;
            let mut message = Message::new(echo, label::PING_STAMPED, &payload(sequence)).expect("40 bytes fit");
            message.sequence = sequence;
            let start = userlib::rdtsc();
            channel.send_message(&message);
            let reply = channel.recv();
            let end = userlib::rdtsc();
            match elapsed(start, end) {
                Some(cycles) => {
                    rtts[rtt_kept] = cycles;
                    rtt_kept += 1;
                }
                None => rtt_backwards += 1,
            }
            let bytes = reply.payload_bytes();
            let mut stamp = [0u8; 8];
            if bytes.len() == 40 {
                stamp.copy_from_slice(&bytes[..8]);
            }
            let handled = u64::from_le_bytes(stamp);
            // Echo's stamp comes from another core's TSC: a stamp before the
            // send or after the reply arrived means the two TSCs disagree
            // (or time went backwards); the sample is dropped and counted.
            match elapsed(start, handled).filter(|_| handled <= end) {
                Some(cycles) => {
                    wakeups[wakeup_kept] = cycles;
                    wakeup_kept += 1;
                }
                None => wakeup_backwards += 1,
            }
            let good = reply.sender_badge == echo_badge
                && reply.label == label::PING_STAMPED
                && reply.sequence == sequence
                && bytes.len() == 40
                && bytes[8..] == payload(sequence)[8..];
            ok += u64::from(good);
        }
        bench_mark(phase, false);
        let (median, p99, min, max) = stats(&mut rtts[..rtt_kept]);
        userlib::log!(
            "BENCH latency name=power-rtt policy={policy} interval_us={interval_us} n={n} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok} tsc_backwards={rtt_backwards}"
        );
        let (median, p99, min, max) = stats(&mut wakeups[..wakeup_kept]);
        userlib::log!(
            "BENCH latency name=power-wakeup policy={policy} interval_us={interval_us} n={n} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} tsc_backwards={wakeup_backwards}"
        );
    }
    let _ = channel.send(echo, label::STOP, b"");
    0
}
