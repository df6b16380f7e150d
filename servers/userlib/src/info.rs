//! Readers of the info page: the read-only `abi::ServerInfo` the kernel
//! maps at `abi::INFO_ADDR` before the server starts (ring addresses and
//! sizes, endpoints, power policy, the server's `args` from the system
//! TOML).
//!
//! Invariant: the page never changes while the server runs, so every
//! reader hands out `'static` data; a page without the magic reads as
//! absent.

/// The info page the kernel mapped for this server.
pub fn info() -> Option<&'static abi::ServerInfo> {
    // SAFETY: the kernel maps a read-only, initialised `ServerInfo` at
    // `INFO_ADDR` before the server starts and never changes it; if the
    // page were missing the read would fault this server only. The magic
    // check rejects a page with something else in it.
    let info = unsafe { &*(abi::INFO_ADDR as *const abi::ServerInfo) };
    (info.magic == abi::INFO_MAGIC).then_some(info)
}

/// Which incarnation of its server this is: 0 for the first, one more
/// for each restart (the generation in the server's badge; 0 without an
/// info page).
pub fn generation() -> u32 {
    info().map_or(0, |i| abi::generation_of_badge(i.badge))
}

/// The server's `args` text from the system TOML ("" if none).
pub fn args() -> &'static str {
    let Some(info) = info() else { return "" };
    let len = info.args.iter().position(|&b| b == 0).unwrap_or(info.args.len());
    core::str::from_utf8(&info.args[..len]).unwrap_or("")
}

/// The value of `key=value` in the server's args, if given.
pub fn arg(key: &str) -> Option<&'static str> {
    args().split_ascii_whitespace().filter_map(|w| w.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// `arg(key)` as a number, or `default`.
pub fn arg_u64(key: &str, default: u64) -> u64 {
    arg(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}
