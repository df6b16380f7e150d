//! A healthy server for fault-isolation tests: prints `heartbeat N` every
//! 2 ms, 150 times, then exits 0. Tests check that its beats continue after
//! a hostile server on another core has been stopped.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

userlib::server_main!(run);

const BEATS: u32 = 150;

fn run() -> i32 {
    for beat in 0..BEATS {
        userlib::log!("heartbeat {beat}");
        userlib::spin_us(2000);
    }
    userlib::log!("heartbeat done");
    0
}
