//! The measuring end of the user<->user direct-ring test (`IPC0002`) and
//! the floor for the mover's IPC figure: round trips to `ring-pong` over
//! two direct rings (`ping-to-pong`, `pong-to-ping`) with no mover in
//! between, every reply checked (label, sequence, payload); then streams of
//! messages in batches of 1, 8 and 32 that `ring-pong` checks and counts.
//! The protocol, the checks, the `BENCH` lines and the kernel counter
//! phases are `userlib::measure::ring_pair::measure`'s (shared with
//! `benchclient`, which measures the same rows in the benchmark boot).
//!
//! The peer is treated as hostile: a peer that lies about its index ends
//! the run with exit code 2.
//!
//! args: `rtt=N` round trips (default 20000, at most the sample buffer),
//! `warmup=N` untimed round trips first (default 1000), `stream=N`
//! messages per stream (default 200000).
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::ring_pair::{self, Plan};
use userlib::measure::{SAMPLE_BUFFER_LEN, take_sample_buffer};

userlib::server_main!(run);

fn run() -> i32 {
    let (mut to_pong, mut from_pong) = match ring_pair::attach("ping-to-pong", "pong-to-ping") {
        Ok(rings) => rings,
        Err(e) => {
            userlib::log!("{e}");
            return 1;
        }
    };
    let plan = Plan {
        round_trips: (userlib::arg_u64("rtt", 20_000) as usize).min(SAMPLE_BUFFER_LEN),
        warmup: userlib::arg_u64("warmup", 1000) as usize,
        stream: userlib::arg_u64("stream", 200_000),
    };
    let Some(samples) = take_sample_buffer() else { return 1 };
    let result = ring_pair::measure(&mut to_pong, &mut from_pong, samples, plan);
    let _ = ring_pair::stop(&mut to_pong);
    match result {
        Ok(bad) => i32::from(bad != 0),
        Err(e) => {
            userlib::log!("peer misbehaved: {e}");
            2
        }
    }
}
