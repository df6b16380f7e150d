//! The answering end of the user<->user direct-ring test (`IPC0002`):
//! pops from the direct ring `ping-to-pong` and answers on `pong-to-ping`,
//! no mover in between, until `STOP`. The protocol and its checks are
//! `userlib::measure::ring_pair::serve`'s (shared with `echo`, which
//! serves the same rows in the benchmark boot).
//!
//! The peer is treated as hostile: a peer that lies about its index ends
//! this server with exit code 2.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::ring_pair::{self, Served};

userlib::server_main!(run);

fn run() -> i32 {
    let (mut to_ping, mut from_ping) = match ring_pair::attach("pong-to-ping", "ping-to-pong") {
        Ok(rings) => rings,
        Err(e) => {
            userlib::log!("{e}");
            return 1;
        }
    };
    let mut served = Served::default();
    let result = ring_pair::serve(&mut from_ping, &mut to_ping, &mut served);
    userlib::log!("ring-pong {served}");
    match result {
        Ok(()) => 0,
        Err(e) => {
            userlib::log!("peer misbehaved: {e}");
            2
        }
    }
}
