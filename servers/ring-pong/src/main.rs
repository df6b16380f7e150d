//! The answering end of the user<->user direct-ring test (`IPC0002`):
//! pops from the direct ring `ping-to-pong` and answers on `pong-to-ping`,
//! no mover in between. `PING` is answered with the same message; a stream
//! (`SINK_START`, `SINK`..., `SINK_FLUSH`) is checked message by message
//! (sequence in order, payload intact) and the flush is answered with the
//! number of good messages; `STOP` ends it.
//!
//! The peer is treated as hostile: `*_untrusted` calls only, every message
//! validated on its private copy before it is looked at; a peer that lies
//! about its index ends this server with exit code 2.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use userlib::measure::{label, payload};
use userlib::{Consumer, DirectRing, Message, Producer, RingError};

userlib::server_main!(run);

/// Messages copied out per batch read (released with one store).
const READ_BATCH: usize = 32;

/// What the server saw, for its closing line.
#[derive(Default)]
struct Counts {
    pings: u64,
    streamed: u64,
    stream_good: u64,
    malformed: u64,
}

fn run() -> i32 {
    let (mut from_ping, mut to_ping) = match (DirectRing::consumer("ping-to-pong"), DirectRing::producer("pong-to-ping")) {
        (Ok(c), Ok(p)) => (c, p),
        (c, p) => {
            userlib::log!("cannot attach the direct rings: {:?}, {:?}", c.err(), p.err());
            return 1;
        }
    };
    let mut counts = Counts::default();
    let result = serve(&mut from_ping, &mut to_ping, &mut counts);
    userlib::log!(
        "ring-pong answered {} pings, checked {} streamed messages ({} good), {} malformed",
        counts.pings,
        counts.streamed,
        counts.stream_good,
        counts.malformed
    );
    match result {
        Ok(()) => 0,
        Err(e) => {
            userlib::log!("peer misbehaved: {e}");
            2
        }
    }
}

/// Serves until `STOP`.
fn serve(from_ping: &mut Consumer<'static>, to_ping: &mut Producer<'static>, counts: &mut Counts) -> Result<(), RingError> {
    let mut expected: u32 = 0;
    let mut good: u64 = 0;
    loop {
        let batch = match from_ping.read_untrusted(READ_BATCH) {
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
                counts.malformed += 1;
                continue;
            }
            match message.label {
                label::PING => {
                    counts.pings += 1;
                    send(to_ping, &message)?;
                }
                label::SINK_START => {
                    expected = 0;
                    good = 0;
                }
                label::SINK => {
                    counts.streamed += 1;
                    if message.sequence == expected && message.payload_bytes() == payload(expected) {
                        good += 1;
                    }
                    expected = expected.wrapping_add(1);
                }
                label::SINK_FLUSH => {
                    counts.stream_good += good;
                    let reply = Message::new(0, label::SINK_FLUSH, &good.to_le_bytes()).unwrap_or(Message::zeroed());
                    send(to_ping, &reply)?;
                }
                label::STOP => stop = true,
                _ => counts.malformed += 1,
            }
            if stop {
                break;
            }
        }
        batch.release();
        if stop {
            return Ok(());
        }
    }
}

/// Pushes `message`, spinning while the ring is full.
fn send(ring: &mut Producer<'static>, message: &Message) -> Result<(), RingError> {
    loop {
        match ring.push_untrusted(message) {
            Err(RingError::Full) => core::hint::spin_loop(),
            other => return other,
        }
    }
}
