//! The smallest server: says who and where it is, then exits 0.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

userlib::server_main!(run);

fn run() -> i32 {
    let mut name = [0u8; 64];
    let name = userlib::server_name(&mut name).unwrap_or("?");
    userlib::log!("hello from server `{name}` on core {}", userlib::core_id());
    0
}
