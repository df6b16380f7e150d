//! The host-side load generator for the key-value service (issue 16):
//! TCP `SET`/`GET` at 1, 8 and 64 connections and UDP echo, against
//! 127.0.0.1 only, every reply checked, latencies from intended send times.
//!
//! ```text
//! workload (plan + reply model) ──▶ tcp_load (closed / open loop) ──┐
//!                                   udp_load (open loop)          ──┴▶ sweep (rows) ──▶ report (table, CSV, JSON, PNG)
//! host_fixture: kv-logic behind std sockets, the generator's own test target
//! ```
//!
//! Invariants: the generator talks to 127.0.0.1 only and every run is
//! bounded in requests and in time; latency = reply time - intended send
//! time (open loop); every reply is checked against the connection's
//! model; the host fixture's rows are labelled `host` and written apart.
//! `cargo xtask bench net` runs it against the guest (one boot per power
//! policy); `cargo run -p bench --bin netload -- --against host` against
//! the fixture.

pub mod contract;
pub mod host_fixture;
pub mod latency;
pub mod report;
pub mod sweep;
pub mod tcp_load;
pub mod udp_load;
pub mod workload;

pub use host_fixture::HostService;
pub use report::{NetJson, failures, report_text, write_outputs};
pub use sweep::{NetRow, SweepOptions, parse_rates, sweep};
