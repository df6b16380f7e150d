//! A hostile server for the mover: it writes random values over its own
//! outbox (indices and slots) while other servers use the mover. The mover
//! must keep serving everyone else; the scribbler may get bounces or
//! nothing. args: `rounds=N` (default 200000).
#![cfg_attr(target_os = "none", no_std, no_main)]

use userlib::abi;

userlib::server_main!(run);

fn run() -> i32 {
    let rounds = userlib::arg_u64("rounds", 200_000);
    let Some(info) = userlib::info() else { return 1 };
    let ring_bytes = 384 + 64 * u64::from(info.outbox_slots);
    let words = ring_bytes / 8;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ userlib::rdtsc();
    for _ in 0..rounds {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let word = x % words;
        let addr = abi::OUTBOX_ADDR + word * 8;
        // SAFETY: none intended: the outbox is this server's own mapping,
        // and scribbling over it is the misdeed under test (the mover must
        // treat it as untrusted). Aligned 8-byte volatile writes.
        unsafe { core::ptr::write_volatile(addr as *mut u64, x.rotate_left(17)) };
    }
    // Drain whatever came back (bounces) and report.
    let mut bounces = 0u64;
    let inbox_ok = userlib::Channel::open().map(|mut c| {
        while c.try_recv().is_some() {
            bounces += 1;
        }
    });
    userlib::log!("scribbled {rounds} words over its outbox; {bounces} messages came back ({inbox_ok:?})");
    0
}
