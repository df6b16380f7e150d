//! The user<->user direct-ring rows of the IPC benchmark, measured in the
//! same boot as the mover's: round trips and streams to `echo` over the
//! direct rings `client-to-echo` / `echo-to-client` (`[[direct_ring]]` in
//! `bench.toml`), no mover in between. Echo is told through the mover to
//! serve them (`SERVE_DIRECT_RINGS`) and goes back to the mover's rings at
//! `STOP` on the direct ring. Protocol, checks, `BENCH` lines and phase
//! marks: `userlib::measure::ring_pair`.

use userlib::Channel;
use userlib::measure::label;
use userlib::measure::ring_pair::{self, Plan};

/// The rows, or a line saying why they were skipped (a system without
/// the rings, or an echo that cannot serve them).
pub fn run(channel: &mut Channel, echo: u32, echo_badge: u64, samples: &mut [u64], plan: Plan) {
    let (mut to_echo, mut from_echo) = match ring_pair::attach("client-to-echo", "echo-to-client") {
        Ok(rings) => rings,
        Err(e) => {
            userlib::log!("{e}: user-direct-ring rows skipped");
            return;
        }
    };
    if channel.send(echo, label::SERVE_DIRECT_RINGS, b"").is_err() {
        return;
    }
    if crate::answer_from(channel, label::SERVE_DIRECT_RINGS, echo_badge).payload_bytes() != [1] {
        userlib::log!("echo does not serve the direct rings: user-direct-ring rows skipped");
        return;
    }
    let result = ring_pair::measure(&mut to_echo, &mut from_echo, samples, plan);
    let _ = ring_pair::stop(&mut to_echo);
    if let Err(e) = result {
        userlib::log!("direct-ring peer misbehaved: {e}");
    }
}
