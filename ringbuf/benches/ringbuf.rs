//! Host benchmark: this ring against rtrb, crossbeam's ArrayQueue,
//! heapless' spsc::Queue and a raw cache-line ping-pong (the floor), on two
//! pinned threads, side by side in one run.
//!
//! Measures round-trip latency (ping-pong of one 64-byte message: median and
//! p99) and streaming throughput (messages/s) unbatched and in batches of
//! 8/32/64. Every figure is repeated; the table shows the median of the
//! repetitions with their spread (min..max) and ratios to the floor and to
//! rtrb, because these machines are noisy. Writes the same as JSON to
//! `<target dir>/bench/ringbuf.json`.
//!
//! `cargo bench -p ringbuf` (full, ~30-60 s), or quick smoke mode with
//! `RINGBUF_BENCH_QUICK=1 cargo bench -p ringbuf` or
//! `cargo bench -p ringbuf -- --quick` (a few seconds).

#![deny(unsafe_code)]

use std::fmt::Write as _;
use std::hint::spin_loop;
use std::path::PathBuf;
use std::sync::Barrier;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_queue::ArrayQueue;
use crossbeam_utils::CachePadded;
use ringbuf::{Message, OwnedRing};

/// Slots in every queue (heapless' `Queue<_, N>` holds N - 1).
const CAPACITY: usize = 512;
const BATCH_SIZES: [usize; 4] = [1, 8, 32, 64];

struct Settings {
    quick: bool,
    repetitions: usize,
    rtt_samples: usize,
    stream_messages: u64,
}

impl Settings {
    fn from_environment() -> Self {
        let quick = std::env::args().any(|argument| argument == "--quick")
            || std::env::var("RINGBUF_BENCH_QUICK").is_ok_and(|value| value != "0" && !value.is_empty());
        if quick {
            Settings { quick, repetitions: 3, rtt_samples: 20_000, stream_messages: 300_000 }
        } else {
            Settings { quick, repetitions: 7, rtt_samples: 200_000, stream_messages: 4_000_000 }
        }
    }
}

// ---------------------------------------------------------------- queues

/// The sending half of a queue under test.
trait Sender: Send {
    fn try_send(&mut self, message: &Message) -> bool;
    /// Sends a prefix of `messages`; returns its length. Default: single sends.
    fn send_batch(&mut self, messages: &[Message]) -> usize {
        let mut sent = 0;
        while sent < messages.len() && self.try_send(&messages[sent]) {
            sent += 1;
        }
        sent
    }
}

/// The receiving half of a queue under test.
trait Receiver: Send {
    fn try_receive(&mut self) -> Option<Message>;
    /// Receives up to `out.len()` messages; returns how many. Default: single receives.
    fn receive_batch(&mut self, out: &mut [Message]) -> usize {
        let mut received = 0;
        while received < out.len() {
            match self.try_receive() {
                Some(message) => out[received] = message,
                None => break,
            }
            received += 1;
        }
        received
    }
}

impl Sender for ringbuf::Producer<'_> {
    #[inline]
    fn try_send(&mut self, message: &Message) -> bool {
        self.push(message).is_ok()
    }
    #[inline]
    fn send_batch(&mut self, messages: &[Message]) -> usize {
        self.push_slice(messages)
    }
}

impl Receiver for ringbuf::Consumer<'_> {
    #[inline]
    fn try_receive(&mut self) -> Option<Message> {
        self.pop()
    }
    #[inline]
    fn receive_batch(&mut self, out: &mut [Message]) -> usize {
        self.pop_into(out)
    }
}

/// This ring with the wake-flag check (a SeqCst fence) after every publish,
/// as a producer serving a consumer that may sleep must do.
struct WithWakeCheck<'a>(ringbuf::Producer<'a>, u64);

impl Sender for WithWakeCheck<'_> {
    #[inline]
    fn try_send(&mut self, message: &Message) -> bool {
        let sent = self.0.push(message).is_ok();
        if sent && self.0.consumer_needs_wakeup() {
            self.1 += 1;
        }
        sent
    }
    #[inline]
    fn send_batch(&mut self, messages: &[Message]) -> usize {
        let sent = self.0.push_slice(messages);
        if sent > 0 && self.0.consumer_needs_wakeup() {
            self.1 += 1;
        }
        sent
    }
}

impl Sender for rtrb::Producer<Message> {
    #[inline]
    fn try_send(&mut self, message: &Message) -> bool {
        self.push(*message).is_ok()
    }
    #[inline]
    fn send_batch(&mut self, messages: &[Message]) -> usize {
        let count = messages.len().min(self.slots());
        match self.write_chunk_uninit(count) {
            Ok(chunk) if count > 0 => chunk.fill_from_iter(messages.iter().copied()),
            _ => 0,
        }
    }
}

impl Receiver for rtrb::Consumer<Message> {
    #[inline]
    fn try_receive(&mut self) -> Option<Message> {
        self.pop().ok()
    }
    #[inline]
    fn receive_batch(&mut self, out: &mut [Message]) -> usize {
        let count = out.len().min(self.slots());
        if count == 0 {
            return 0;
        }
        match self.read_chunk(count) {
            Ok(chunk) => {
                let (first, second) = chunk.as_slices();
                out[..first.len()].copy_from_slice(first);
                out[first.len()..count].copy_from_slice(second);
                chunk.commit_all();
                count
            }
            Err(_) => 0,
        }
    }
}

struct ArrayQueueEnd<'a>(&'a ArrayQueue<Message>);

impl Sender for ArrayQueueEnd<'_> {
    #[inline]
    fn try_send(&mut self, message: &Message) -> bool {
        self.0.push(*message).is_ok()
    }
}

impl Receiver for ArrayQueueEnd<'_> {
    #[inline]
    fn try_receive(&mut self) -> Option<Message> {
        self.0.pop()
    }
}

impl Sender for heapless::spsc::Producer<'_, Message> {
    #[inline]
    fn try_send(&mut self, message: &Message) -> bool {
        self.enqueue(*message).is_ok()
    }
}

impl Receiver for heapless::spsc::Consumer<'_, Message> {
    #[inline]
    fn try_receive(&mut self) -> Option<Message> {
        self.dequeue()
    }
}

// ---------------------------------------------------------------- timing

/// The time-stamp counter: ~20 cycles to read, converted with `ns_per_tick`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
#[allow(unsafe_code)]
fn ticks() -> u64 {
    // SAFETY: RDTSC exists on every x86_64 CPU and only reads a counter.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn ticks() -> u64 {
    use std::sync::OnceLock;
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Nanoseconds per tick, measured against `Instant` over 100 ms.
fn ns_per_tick() -> f64 {
    let (start_instant, start_ticks) = (Instant::now(), ticks());
    while start_instant.elapsed() < Duration::from_millis(100) {
        spin_loop();
    }
    let (elapsed, elapsed_ticks) = (start_instant.elapsed(), ticks() - start_ticks);
    elapsed.as_nanos() as f64 / elapsed_ticks as f64
}

struct Pinning {
    cores: Option<(core_affinity::CoreId, core_affinity::CoreId)>,
}

impl Pinning {
    fn detect() -> Self {
        let cores = core_affinity::get_core_ids().and_then(|ids| (ids.len() >= 2).then(|| (ids[0], ids[1])));
        Pinning { cores }
    }
    fn pin_main(&self) {
        if let Some((main, _)) = self.cores {
            core_affinity::set_for_current(main);
        }
    }
    fn pin_helper(&self) {
        if let Some((_, helper)) = self.cores {
            core_affinity::set_for_current(helper);
        }
    }
}

fn numbered(sequence: u64) -> Message {
    let mut message = Message::zeroed();
    message.sequence = sequence as u32;
    message.sender_badge = sequence;
    message.payload_len = 8;
    message.payload[..8].copy_from_slice(&sequence.to_le_bytes());
    message
}

// ---------------------------------------------------------------- measurements

/// Round trips of one message through two queues; returns ticks per round trip.
fn round_trips<S: Sender, R: Receiver>(
    pinning: &Pinning,
    samples: usize,
    (mut ping_sender, mut ping_receiver): (S, R),
    (mut pong_sender, mut pong_receiver): (S, R),
) -> Vec<u64> {
    let warmup = samples / 10 + 100;
    let mut durations = Vec::with_capacity(samples);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pinning.pin_helper();
            for _ in 0..warmup + samples {
                let message = loop {
                    match ping_receiver.try_receive() {
                        Some(message) => break message,
                        None => spin_loop(),
                    }
                };
                while !pong_sender.try_send(&message) {
                    spin_loop();
                }
            }
        });
        for round in 0..warmup + samples {
            let message = numbered(round as u64);
            let start = ticks();
            while !ping_sender.try_send(&message) {
                spin_loop();
            }
            let echoed = loop {
                match pong_receiver.try_receive() {
                    Some(echoed) => break echoed,
                    None => spin_loop(),
                }
            };
            let end = ticks();
            assert_eq!(echoed.sequence, round as u32);
            if round >= warmup {
                durations.push(end.wrapping_sub(start));
            }
        }
    });
    durations
}

/// The floor: two cache lines bounced between the cores, no queue at all.
fn cache_line_round_trips(pinning: &Pinning, samples: usize) -> Vec<u64> {
    let ping = CachePadded::new(AtomicU64::new(0));
    let pong = CachePadded::new(AtomicU64::new(0));
    let warmup = samples / 10 + 100;
    let mut durations = Vec::with_capacity(samples);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pinning.pin_helper();
            for round in 1..=(warmup + samples) as u64 {
                // Acquire: pairs with the Release store of `ping` below.
                while ping.load(Ordering::Acquire) != round {
                    spin_loop();
                }
                // Release: pairs with the Acquire load of `pong` below.
                pong.store(round, Ordering::Release);
            }
        });
        for round in 1..=(warmup + samples) as u64 {
            let start = ticks();
            // Release: pairs with the helper's Acquire load of `ping`.
            ping.store(round, Ordering::Release);
            // Acquire: pairs with the helper's Release store of `pong`.
            while pong.load(Ordering::Acquire) != round {
                spin_loop();
            }
            let end = ticks();
            if round > warmup as u64 {
                durations.push(end.wrapping_sub(start));
            }
        }
    });
    durations
}

/// Streams `count` messages in batches of `batch`; returns messages per second.
fn stream<S: Sender, R: Receiver>(
    pinning: &Pinning,
    count: u64,
    batch: usize,
    (mut sender, mut receiver): (S, R),
) -> f64 {
    let barrier = Barrier::new(2);
    let mut elapsed = Duration::ZERO;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pinning.pin_helper();
            let mut staging = vec![Message::zeroed(); batch];
            barrier.wait();
            let mut next = 0u64;
            while next < count {
                let want = (batch as u64).min(count - next) as usize;
                if batch == 1 {
                    if sender.try_send(&numbered(next)) {
                        next += 1;
                    } else {
                        spin_loop();
                    }
                    continue;
                }
                for (offset, slot) in staging[..want].iter_mut().enumerate() {
                    *slot = numbered(next + offset as u64);
                }
                let mut sent = 0;
                while sent < want {
                    let now = sender.send_batch(&staging[sent..want]);
                    if now == 0 {
                        spin_loop();
                    }
                    sent += now;
                }
                next += want as u64;
            }
        });
        let mut out = vec![Message::zeroed(); batch];
        barrier.wait();
        let start = Instant::now();
        let mut received = 0u64;
        let mut sequence_sum = 0u64;
        while received < count {
            let got = if batch == 1 {
                match receiver.try_receive() {
                    Some(message) => {
                        out[0] = message;
                        1
                    }
                    None => 0,
                }
            } else {
                receiver.receive_batch(&mut out)
            };
            if got == 0 {
                spin_loop();
            }
            for message in &out[..got] {
                sequence_sum = sequence_sum.wrapping_add(message.sender_badge);
            }
            received += got as u64;
        }
        elapsed = start.elapsed();
        assert_eq!(sequence_sum, count.wrapping_mul(count.wrapping_sub(1)) / 2, "lost or duplicated messages");
    });
    count as f64 / elapsed.as_secs_f64()
}

// ---------------------------------------------------------------- statistics

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 { values[middle] } else { (values[middle - 1] + values[middle]) / 2.0 }
}

fn percentile(sorted: &[u64], fraction: f64) -> u64 {
    sorted[((sorted.len() - 1) as f64 * fraction).round() as usize]
}

struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

fn spread(mut values: Vec<f64>) -> Spread {
    let median = median(&mut values);
    Spread { median, min: values[0], max: values[values.len() - 1] }
}

struct LatencyRow {
    queue: &'static str,
    median_ns: Spread,
    p99_ns: Spread,
}

struct ThroughputRow {
    queue: &'static str,
    has_batch_api: bool,
    /// One per entry of `BATCH_SIZES`, messages per second.
    per_batch: Vec<Spread>,
}

// ---------------------------------------------------------------- runs

fn run_latency(settings: &Settings, pinning: &Pinning, ns_per_tick: f64) -> Vec<LatencyRow> {
    type Measure<'a> = Box<dyn Fn() -> Vec<u64> + 'a>;
    let samples = settings.rtt_samples;
    let measures: Vec<(&'static str, Measure<'_>)> = vec![
        ("cache-line floor", Box::new(|| cache_line_round_trips(pinning, samples))),
        (
            "ringbuf",
            Box::new(|| {
                let (mut ping, mut pong) =
                    (Box::new(OwnedRing::<CAPACITY>::new()), Box::new(OwnedRing::<CAPACITY>::new()));
                round_trips(pinning, samples, ping.split(), pong.split())
            }),
        ),
        (
            "rtrb",
            Box::new(|| {
                round_trips(pinning, samples, rtrb::RingBuffer::new(CAPACITY), rtrb::RingBuffer::new(CAPACITY))
            }),
        ),
        (
            "crossbeam ArrayQueue",
            Box::new(|| {
                let (ping, pong) = (ArrayQueue::new(CAPACITY), ArrayQueue::new(CAPACITY));
                round_trips(
                    pinning,
                    samples,
                    (ArrayQueueEnd(&ping), ArrayQueueEnd(&ping)),
                    (ArrayQueueEnd(&pong), ArrayQueueEnd(&pong)),
                )
            }),
        ),
        (
            "heapless spsc",
            Box::new(|| {
                let mut ping: Box<heapless::spsc::Queue<Message, CAPACITY>> = Box::new(heapless::spsc::Queue::new());
                let mut pong: Box<heapless::spsc::Queue<Message, CAPACITY>> = Box::new(heapless::spsc::Queue::new());
                round_trips(pinning, samples, ping.split(), pong.split())
            }),
        ),
    ];
    let mut medians: Vec<Vec<f64>> = vec![Vec::new(); measures.len()];
    let mut p99s: Vec<Vec<f64>> = vec![Vec::new(); measures.len()];
    // Interleave the queues within each repetition so drift hits all alike.
    for _ in 0..settings.repetitions {
        for (position, (_, measure)) in measures.iter().enumerate() {
            let mut durations = measure();
            durations.sort_unstable();
            medians[position].push(percentile(&durations, 0.5) as f64 * ns_per_tick);
            p99s[position].push(percentile(&durations, 0.99) as f64 * ns_per_tick);
        }
    }
    measures
        .iter()
        .zip(medians.into_iter().zip(p99s))
        .map(|((queue, _), (median_values, p99_values))| LatencyRow {
            queue,
            median_ns: spread(median_values),
            p99_ns: spread(p99_values),
        })
        .collect()
}

fn run_throughput(settings: &Settings, pinning: &Pinning) -> Vec<ThroughputRow> {
    type Measure<'a> = Box<dyn Fn(usize) -> f64 + 'a>;
    let count = settings.stream_messages;
    let measures: Vec<(&'static str, bool, Measure<'_>)> = vec![
        (
            "ringbuf",
            true,
            Box::new(|batch| {
                let mut ring = Box::new(OwnedRing::<CAPACITY>::new());
                stream(pinning, count, batch, ring.split())
            }),
        ),
        (
            "ringbuf + wake check",
            true,
            Box::new(|batch| {
                let mut ring = Box::new(OwnedRing::<CAPACITY>::new());
                let (producer, consumer) = ring.split();
                stream(pinning, count, batch, (WithWakeCheck(producer, 0), consumer))
            }),
        ),
        ("rtrb", true, Box::new(|batch| stream(pinning, count, batch, rtrb::RingBuffer::new(CAPACITY)))),
        (
            "crossbeam ArrayQueue",
            false,
            Box::new(|batch| {
                let queue = ArrayQueue::new(CAPACITY);
                stream(pinning, count, batch, (ArrayQueueEnd(&queue), ArrayQueueEnd(&queue)))
            }),
        ),
        (
            "heapless spsc",
            false,
            Box::new(|batch| {
                let mut queue: Box<heapless::spsc::Queue<Message, CAPACITY>> = Box::new(heapless::spsc::Queue::new());
                stream(pinning, count, batch, queue.split())
            }),
        ),
    ];
    let mut results: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); BATCH_SIZES.len()]; measures.len()];
    for _ in 0..settings.repetitions {
        for (batch_position, &batch) in BATCH_SIZES.iter().enumerate() {
            for (position, (_, _, measure)) in measures.iter().enumerate() {
                results[position][batch_position].push(measure(batch));
            }
        }
    }
    measures
        .iter()
        .zip(results)
        .map(|((queue, has_batch_api, _), per_batch)| ThroughputRow {
            queue,
            has_batch_api: *has_batch_api,
            per_batch: per_batch.into_iter().map(spread).collect(),
        })
        .collect()
}

// ---------------------------------------------------------------- report

struct Machine {
    cpu: String,
    logical_cpus: usize,
    kernel: String,
    pinned: bool,
}

fn machine(pinning: &Pinning) -> Machine {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .map(|line| line.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    let kernel =
        std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|text| text.trim().to_string()).unwrap_or_default();
    let logical_cpus = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    Machine { cpu, logical_cpus, kernel, pinned: pinning.cores.is_some() }
}

/// UTC date and time from the Unix clock (days-to-civil, Howard Hinnant).
fn utc_now() -> String {
    let seconds = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) as i64;
    let (days, day_seconds) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        day_seconds / 3600,
        day_seconds / 60 % 60,
        day_seconds % 60
    )
}

fn print_tables(latency: &[LatencyRow], throughput: &[ThroughputRow], settings: &Settings) {
    let floor = latency[0].median_ns.median;
    let rtrb_rtt = latency.iter().find(|row| row.queue == "rtrb").map_or(f64::NAN, |row| row.median_ns.median);
    println!();
    println!(
        "Round trip, one 64-byte message each way ({} samples x {} runs; spread = min..max over runs)",
        settings.rtt_samples, settings.repetitions
    );
    println!(
        "{:<22} {:>10} {:>17} {:>10} {:>9} {:>8}",
        "queue", "median ns", "spread ns", "p99 ns", "vs floor", "vs rtrb"
    );
    for row in latency {
        println!(
            "{:<22} {:>10.0} {:>17} {:>10.0} {:>8.2}x {:>7.2}x",
            row.queue,
            row.median_ns.median,
            format!("{:.0}..{:.0}", row.median_ns.min, row.median_ns.max),
            row.p99_ns.median,
            row.median_ns.median / floor,
            row.median_ns.median / rtrb_rtt
        );
    }
    println!();
    println!(
        "Streaming throughput, million messages/s ({} messages x {} runs; median [min..max])",
        settings.stream_messages, settings.repetitions
    );
    let mut header = format!("{:<22}", "queue");
    for batch in BATCH_SIZES {
        let _ = write!(header, " {:>20}", if batch == 1 { "unbatched".to_string() } else { format!("batch {batch}") });
    }
    println!("{header} {:>10} {:>10}", "b64/unb", "unb/rtrb");
    let rtrb_row = throughput.iter().find(|row| row.queue == "rtrb");
    for row in throughput {
        let mut line =
            format!("{:<22}", if row.has_batch_api { row.queue.to_string() } else { format!("{}*", row.queue) });
        for result in &row.per_batch {
            let _ = write!(
                line,
                " {:>20}",
                format!("{:.1} [{:.1}..{:.1}]", result.median / 1e6, result.min / 1e6, result.max / 1e6)
            );
        }
        let batched_speedup = row.per_batch[BATCH_SIZES.len() - 1].median / row.per_batch[0].median;
        let versus_rtrb = rtrb_row.map_or(f64::NAN, |rtrb| row.per_batch[0].median / rtrb.per_batch[0].median);
        println!("{line} {:>9.2}x {:>9.2}x", batched_speedup, versus_rtrb);
    }
    println!("* no batch API: batches are loops of single operations");
    if let Some(rtrb) = rtrb_row {
        let mut line = format!("{:<22}", "ringbuf / rtrb");
        let ours = &throughput[0];
        for (mine, theirs) in ours.per_batch.iter().zip(&rtrb.per_batch) {
            let _ = write!(line, " {:>19.2}x", mine.median / theirs.median);
        }
        println!("{line}");
    }
}

fn json_spread(spread: &Spread) -> String {
    format!("{{\"median\": {:.3}, \"min\": {:.3}, \"max\": {:.3}}}", spread.median, spread.min, spread.max)
}

fn json_report(
    latency: &[LatencyRow],
    throughput: &[ThroughputRow],
    settings: &Settings,
    machine: &Machine,
    date: &str,
) -> String {
    let floor = latency[0].median_ns.median;
    let rtrb_rtt = latency.iter().find(|row| row.queue == "rtrb").map_or(f64::NAN, |row| row.median_ns.median);
    let rtrb_row = throughput.iter().find(|row| row.queue == "rtrb");
    let mut json = String::new();
    let _ = writeln!(json, "{{");
    let _ = writeln!(json, "  \"benchmark\": \"ringbuf\",");
    let _ = writeln!(json, "  \"date_utc\": \"{date}\",");
    let _ = writeln!(
        json,
        "  \"machine\": {{\"cpu\": \"{}\", \"logical_cpus\": {}, \"kernel\": \"{}\", \"threads_pinned\": {}}},",
        machine.cpu.replace('"', "'"),
        machine.logical_cpus,
        machine.kernel.replace('"', "'"),
        machine.pinned
    );
    let _ = writeln!(
        json,
        "  \"settings\": {{\"quick\": {}, \"repetitions\": {}, \"rtt_samples\": {}, \"stream_messages\": {}, \"capacity\": {}, \"message_bytes\": 64}},",
        settings.quick, settings.repetitions, settings.rtt_samples, settings.stream_messages, CAPACITY
    );
    let _ = writeln!(json, "  \"round_trip_ns\": [");
    for (position, row) in latency.iter().enumerate() {
        let _ = writeln!(
            json,
            "    {{\"queue\": \"{}\", \"median\": {}, \"p99\": {}, \"ratio_to_floor\": {:.3}, \"ratio_to_rtrb\": {:.3}}}{}",
            row.queue,
            json_spread(&row.median_ns),
            json_spread(&row.p99_ns),
            row.median_ns.median / floor,
            row.median_ns.median / rtrb_rtt,
            if position + 1 < latency.len() { "," } else { "" }
        );
    }
    let _ = writeln!(json, "  ],");
    let _ = writeln!(json, "  \"throughput_messages_per_s\": [");
    let mut entries = Vec::new();
    for row in throughput {
        for (position, (batch, result)) in BATCH_SIZES.iter().zip(&row.per_batch).enumerate() {
            let versus_rtrb = rtrb_row.map_or(f64::NAN, |rtrb| result.median / rtrb.per_batch[position].median);
            entries.push(format!(
                "    {{\"queue\": \"{}\", \"batch\": {}, \"batch_api\": {}, \"rate\": {}, \"ratio_to_rtrb\": {:.3}, \"ratio_to_unbatched\": {:.3}}}",
                row.queue,
                batch,
                row.has_batch_api,
                json_spread(result),
                versus_rtrb,
                result.median / row.per_batch[0].median
            ));
        }
    }
    let _ = writeln!(json, "{}", entries.join(",\n"));
    let _ = writeln!(json, "  ]");
    let _ = writeln!(json, "}}");
    json
}

/// `$CARGO_TARGET_DIR`, else the `target` directory this binary was built
/// into (`<target>/release/deps/<bench>`), else `target`.
fn target_directory() -> PathBuf {
    if let Some(directory) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(directory);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return; // `cargo bench -- --list` and test discovery: nothing to list.
    }
    let settings = Settings::from_environment();
    let pinning = Pinning::detect();
    let machine = machine(&pinning); // before pinning narrows the affinity mask
    pinning.pin_main();
    let date = utc_now();
    println!(
        "ringbuf benchmark {date}: {} ({} logical CPUs, kernel {}), threads {}{}",
        machine.cpu,
        machine.logical_cpus,
        machine.kernel,
        if machine.pinned { "pinned to two cores" } else { "NOT pinned (fewer than 2 cores?)" },
        if settings.quick { ", QUICK mode" } else { "" }
    );
    let started = Instant::now();
    let ns_per_tick = ns_per_tick();
    let latency = run_latency(&settings, &pinning, ns_per_tick);
    let throughput = run_throughput(&settings, &pinning);
    print_tables(&latency, &throughput, &settings);
    let json = json_report(&latency, &throughput, &settings, &machine, &date);
    let directory = target_directory().join("bench");
    let path = directory.join("ringbuf.json");
    match std::fs::create_dir_all(&directory).and_then(|()| std::fs::write(&path, json)) {
        Ok(()) => println!("\nJSON written to {} ({:.1} s total)", path.display(), started.elapsed().as_secs_f64()),
        Err(error) => eprintln!("could not write {}: {error}", path.display()),
    }
}
