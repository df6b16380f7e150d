//! The synchronous-call rows of the IPC benchmark, measured in the same
//! boot as the mover's: round trips (`call` -> `reply_recv` -> back) and
//! back-to-back call streams, to a server on this core (`sync-echo`: the
//! direct switch) and to `echo` on its own core (told through the rings
//! to serve calls for a while: the cross-core path, woken by IPIs). Every
//! answer is checked (badge, `label + 1`, sequence, payload).

use userlib::abi::SyncMessage;
use userlib::measure::{elapsed, label, payload, stats};
use userlib::{Channel, bench_mark};

const WARMUP: usize = 1000;

/// Where the callee runs, as the `placement=` of the BENCH lines.
#[derive(Clone, Copy)]
pub enum Placement {
    SameCore,
    CrossCore,
}

impl Placement {
    fn name(self) -> &'static str {
        match self {
            Placement::SameCore => "same-core",
            Placement::CrossCore => "cross-core",
        }
    }

    fn phase(self, what: &str) -> &'static str {
        match (self, what) {
            (Placement::SameCore, "rtt") => "sync-same-rtt",
            (Placement::SameCore, _) => "sync-same-stream",
            (Placement::CrossCore, "rtt") => "sync-cross-rtt",
            (Placement::CrossCore, _) => "sync-cross-stream",
        }
    }
}

/// One call, checked: true if the answer is the callee's and matches.
fn checked_call(endpoint: u32, badge: u64, sequence: u32) -> bool {
    let Some(message) = SyncMessage::with_payload(label::PING, sequence, &payload(sequence)) else { return false };
    match userlib::call(endpoint, &message) {
        Ok(answer) => {
            let (bytes, len) = answer.message.payload_bytes();
            answer.badge == badge
                && answer.message.label == label::PING + 1
                && answer.message.sequence == sequence
                && bytes[..len] == payload(sequence)
        }
        Err(_) => false,
    }
}

/// The round-trip and stream rows for one callee.
pub fn measure(endpoint: u32, badge: u64, placement: Placement, samples: &mut [u64], iterations: usize, stream: u64) {
    let (mut ok, mut kept, mut backwards) = (0u64, 0usize, 0u64);
    for round in 0..WARMUP + iterations {
        if round == WARMUP {
            bench_mark(placement.phase("rtt"), true);
        }
        let start = userlib::rdtsc();
        let good = checked_call(endpoint, badge, round as u32);
        let end = userlib::rdtsc();
        if round >= WARMUP {
            match elapsed(start, end) {
                Some(cycles) => {
                    samples[kept] = cycles;
                    kept += 1;
                }
                None => backwards += 1,
            }
            ok += u64::from(good);
        }
    }
    bench_mark(placement.phase("rtt"), false);
    let (median, p99, min, max) = stats(&mut samples[..kept]);
    userlib::log!(
        "BENCH latency name=sync-call-rtt placement={} n={iterations} median_cycles={median} p99_cycles={p99} min_cycles={min} max_cycles={max} ok={ok} tsc_backwards={backwards}",
        placement.name()
    );

    bench_mark(placement.phase("stream"), true);
    let start = userlib::rdtsc();
    let mut ok = 0u64;
    for i in 0..stream {
        ok += u64::from(checked_call(endpoint, badge, i as u32));
    }
    let cycles = elapsed(start, userlib::rdtsc());
    bench_mark(placement.phase("stream"), false);
    match cycles {
        Some(cycles) => userlib::log!(
            "BENCH stream name=sync-call-stream placement={} n={stream} cycles={cycles} ok={ok} tsc_backwards=0",
            placement.name()
        ),
        None => userlib::log!(
            "BENCH dropped kind=stream name=sync-call-stream placement={} n={stream} ok={ok} tsc_backwards=1",
            placement.name()
        ),
    }
}

/// The cost of entering and leaving the kernel alone (`core_id`, a system
/// call that does nothing), to read the call rows against: a same-core
/// call is two of these plus two address-space switches plus the kernel's
/// bookkeeping. Printed as a plain log line (not a table row).
fn null_syscall(samples: &mut [u64], iterations: usize) {
    let mut kept = 0;
    for round in 0..WARMUP + iterations {
        let start = userlib::rdtsc();
        let _ = core::hint::black_box(userlib::core_id());
        let end = userlib::rdtsc();
        if round >= WARMUP
            && let Some(cycles) = elapsed(start, end)
        {
            samples[kept] = cycles;
            kept += 1;
        }
    }
    let (median, p99, _, _) = stats(&mut samples[..kept]);
    userlib::log!("benchclient: null system call (core_id): median {median} cycles, p99 {p99} cycles, n={kept}");
}

/// Both placements: `sync-echo` on this core, then `echo` on its own core.
pub fn run(channel: &mut Channel, echo: u32, echo_badge: u64, samples: &mut [u64], iterations: usize, stream: u64) {
    null_syscall(samples, iterations);
    match channel.endpoint_named("sync-echo") {
        Some(near) => {
            let badge = channel.info().endpoint_badges[near as usize];
            measure(near, badge, Placement::SameCore, samples, iterations, stream);
        }
        None => userlib::log!("benchclient: no endpoint `sync-echo`: same-core call rows skipped"),
    }
    // Ask echo to serve calls; its ring answer says it is about to.
    if channel.send(echo, label::SERVE_CALLS, b"").is_err() {
        return;
    }
    crate::answer_from(channel, label::SERVE_CALLS, echo_badge);
    measure(echo, echo_badge, Placement::CrossCore, samples, iterations, stream);
    if let Some(end) = SyncMessage::with_payload(label::SERVE_CALLS_END, 0, b"") {
        let _ = userlib::call(echo, &end);
    }
}
