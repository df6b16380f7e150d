//! The fault campaign's misbehaving server (`cargo xtask faults`,
//! `docs/faults.md`). Each incarnation, seeded from the TSC and its own
//! badge (so each generation differs), does a random number of bad things,
//! logs one line with what it did, then commits one fatal act chosen at
//! random; the kernel stops it and its restart policy brings it back as the
//! next generation.
//!
//! Bad things (`misdeeds.rs`):
//! - garbage messages to random endpoints (held and not held), with random
//!   labels, payload lengths past the 40-byte capacity, reserved flags set
//!   and forged sender badges;
//! - system calls with random numbers and hostile pointer/length ranges
//!   (`fuzz.rs`): never `exit`, never a call that blocks for good;
//! - random words scribbled over its own outbox and inbox (indices too).
//!
//! Fatal acts (`fatal.rs`): page faults, #GP from privileged instructions,
//! divide error, `ud2`, `int3`, `int N`, stack overflow, jumps to
//! non-canonical and kernel addresses, executing data, a non-canonical stack
//! pointer, TF or AC set, an infinite loop, never draining the inbox while
//! busy, and exit with a non-zero code.
//!
//! args: `bad_mean=K` (mean number of bad things per incarnation, default
//! 200; each incarnation does 1..=2K), `generations=G` (generation G and
//! later exit 0 at once: with `restart = "on-failure"` that ends the
//! injector; default 0 = never), `deadline_ms=D` (the same once the TSC says
//! D ms since boot; default 0 = never), `fatal=a,b,...` (only these fatal
//! acts, by name; default all), `burst=B` (most garbage messages per send,
//! default 16).
//!
//! Only one log line per incarnation (the kernel rate-limits `log`): the
//! `injector: generation G: ...` line before the fatal act, or the line of
//! the clean exit.
#![cfg_attr(target_os = "none", no_std, no_main)]

mod fatal;
mod fuzz;
mod misdeeds;
mod rng;

use fatal::Fatal;
use rng::Rng;
use userlib::{Channel, abi};

userlib::server_main!(run);

/// The label of the one well-behaved message an injector sends: in its
/// last incarnation, to every endpoint it holds, "I am done" (ping and the
/// stream source stop on it as on the kernel's notice of the clean exit,
/// in case that notice is dropped). Never used by the garbage.
pub const DONE: u32 = 0x494e_4a44; // "INJD"

/// Sends [`DONE`] to every endpoint held, then keeps draining the inbox
/// for about 300 ms so that the mover takes the messages before the exit
/// (and a full inbox does not look like a hang). Returns how many were sent.
fn tell_done(ticks_per_ms: u64) -> u32 {
    let Some(mut channel) = Channel::open_or_log() else { return 0 };
    let mut told = 0;
    for endpoint in 0..channel.info().endpoint_count.min(abi::MAX_ENDPOINTS as u32) {
        if channel.try_send(endpoint, DONE, b"").is_ok() {
            told += 1;
        }
    }
    let start = userlib::rdtsc();
    while userlib::rdtsc().wrapping_sub(start) < 300 * ticks_per_ms {
        while channel.try_recv().is_some() {}
        core::hint::spin_loop();
    }
    told
}

/// What one incarnation did before its fatal act.
#[derive(Default)]
pub struct Counts {
    pub garbage: u64,
    pub syscalls: u64,
    pub scribbles: u64,
    /// Messages received (bounces, notices, peers' garbage) and dropped.
    pub drained: u64,
}

fn run() -> i32 {
    let Some(info) = userlib::info() else { return 1 };
    let badge = info.badge;
    let generation = abi::generation_of_badge(badge);
    let mut rng = Rng::new(userlib::rdtsc() ^ badge.rotate_left(29) ^ u64::from(generation).wrapping_mul(0x9e37_79b9));
    let generations = userlib::arg_u64("generations", 0);
    let deadline_ms = userlib::arg_u64("deadline_ms", 0);
    let ticks_per_ms = (userlib::tsc_hz() / 1000).max(1);
    let since_boot_ms = userlib::rdtsc() / ticks_per_ms;
    if (generations > 0 && u64::from(generation) >= generations) || (deadline_ms > 0 && since_boot_ms >= deadline_ms) {
        let told = tell_done(ticks_per_ms);
        userlib::log!(
            "injector: generation {generation}: done (generations={generations}, deadline_ms={deadline_ms}, {since_boot_ms} ms since boot, {told} peers told): clean exit"
        );
        return 0;
    }
    let Some(fatal) = Fatal::pick(&mut rng, userlib::arg("fatal")) else {
        userlib::log!("injector: `fatal=` names no fatal act this injector knows");
        return 0; // a clean exit: a typo must not restart forever
    };
    // A fresh incarnation has fresh rings; failing to open them is the
    // kernel's bug, reported as a non-zero exit (a failure, restarted).
    let Some(mut channel) = Channel::open_or_log() else { return 2 };
    let mean = userlib::arg_u64("bad_mean", 200).max(1);
    let burst = userlib::arg_u64("burst", 16).clamp(1, misdeeds::MAX_BURST as u64) as usize;
    let bad = 1 + rng.below(2 * mean);
    let mut counts = Counts::default();
    let mut misdeeds = misdeeds::Misdeeds::new(info, burst);
    for done in 0..bad {
        // Scribbles only in the second half: a scribbled outbox index makes
        // the mover skip the outbox, and the garbage would go nowhere.
        let scribble_percent = if done < bad / 2 { 0 } else { 1 };
        match rng.below(100) {
            n if n < scribble_percent => misdeeds.scribble(info, &mut rng, &mut counts),
            n if n < 40 => misdeeds.garbage(&mut channel, &mut rng, &mut counts),
            _ => fuzz::one_call(info, &mut rng, &mut counts),
        }
        misdeeds.drain(&mut channel, &mut counts);
        // A scribbled inbox is no longer read: it fills, and the kernel
        // would find this incarnation hung before its line and its fatal
        // act. The scribble is its last bad thing.
        if misdeeds.inbox_scribbled() {
            break;
        }
    }
    userlib::log!(
        "injector: generation {generation}: garbage messages {}, fuzzed syscalls {}, scribbles {}, drained {}, then {}",
        counts.garbage,
        counts.syscalls,
        counts.scribbles,
        counts.drained,
        fatal.name()
    );
    fatal.commit(&mut rng)
}
