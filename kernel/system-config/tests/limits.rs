//! Host tests of the limits the kernel's tables impose: a file that asks for
//! more than the kernel can hold is an error at the first value too many,
//! never a system the kernel quietly cuts short.

use system_config::{ARGS_MAX_BYTES, MAX_MOVER_CORES, MAX_NAME_LEN, MAX_SERVER_ENDPOINTS, parse};

/// The first line of the rendered parse error for `text`.
fn first_line(text: &str) -> String {
    let err = parse(text).expect_err("expected an error");
    err.render("system.toml", text).lines().next().unwrap().to_string()
}

fn movers(count: usize) -> String {
    let cores: Vec<String> = (1..=count).map(|c| c.to_string()).collect();
    format!("[system]\nmover_cores = [{}]\n", cores.join(", "))
}

#[test]
fn limits_match_the_abi() {
    assert_eq!(MAX_MOVER_CORES, abi::MAX_MOVERS);
    assert_eq!(MAX_SERVER_ENDPOINTS, abi::MAX_ENDPOINTS);
    const { assert!(ARGS_MAX_BYTES <= abi::ARGS_BYTES) };
    const { assert!(MAX_NAME_LEN <= abi::NAME_BYTES) };
}

#[test]
fn max_mover_cores_is_accepted() {
    let c = parse(&movers(MAX_MOVER_CORES)).unwrap();
    assert_eq!(c.mover_cores.len(), MAX_MOVER_CORES);
}

#[test]
fn one_mover_core_too_many_is_an_error_at_it() {
    // `mover_cores = [1, 2, 3, 4, 5, 6, 7, 8, 9]`: the 9th value, `9`, is
    // at column 40 of line 2.
    let text = movers(MAX_MOVER_CORES + 1);
    assert_eq!(
        first_line(&text),
        "system.toml:2:40: key `system.mover_cores[8]`: 9 mover cores; \
         expected at most 8 mover cores (abi::MAX_MOVERS)"
    );
    let err = parse(&text).unwrap_err();
    assert_eq!(err.key(), Some("system.mover_cores[8]"));
}

fn with_endpoints(count: usize) -> String {
    let mut text = String::from("[system]\nmover_cores = [1]\n\n[[server]]\nname = \"a\"\ncore = 2\nendpoints = [");
    let names: Vec<String> = (0..count).map(|i| format!("\"t{i}\"")).collect();
    text.push_str(&names.join(", "));
    text.push_str("]\n");
    // Enough cores for the targets: at most 16 on one core.
    for i in 0..count {
        text.push_str(&format!("\n[[server]]\nname = \"t{i}\"\ncore = {}\n", 3 + i / abi::MAX_SERVERS_PER_CORE));
    }
    text
}

#[test]
fn max_endpoints_is_accepted() {
    let c = parse(&with_endpoints(MAX_SERVER_ENDPOINTS)).unwrap();
    assert_eq!(c.servers[0].endpoints.len(), MAX_SERVER_ENDPOINTS);
}

#[test]
fn one_endpoint_too_many_is_an_error_at_it() {
    let text = with_endpoints(MAX_SERVER_ENDPOINTS + 1);
    let err = parse(&text).unwrap_err();
    assert_eq!(err.key(), Some("server[0].endpoints[32]"));
    assert_eq!(err.line(), Some(7));
    // The 33rd value: `"t32"` starts after `endpoints = [` and 32 values of
    // `"tN", ` (10 of 6 characters, 22 of 7).
    let column = "endpoints = [".len() + 10 * 6 + 22 * 7 + 1;
    assert_eq!(err.column(), Some(column));
    assert_eq!(
        first_line(&text),
        format!(
            "system.toml:7:{column}: key `server[0].endpoints[32]`: server `a` has 33 endpoints; \
             expected at most 32 endpoints per server (abi::MAX_ENDPOINTS)"
        )
    );
}

#[test]
fn same_check_in_check_config_and_at_boot() {
    // Both use `parse`; `to_toml` of an accepted file stays within the limits.
    let c = parse(&with_endpoints(MAX_SERVER_ENDPOINTS)).unwrap();
    assert_eq!(parse(&c.to_toml()).unwrap(), c);
}
