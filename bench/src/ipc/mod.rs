//! The IPC benchmark (one boot: floors, mover and sync IPC, streams,
//! counters), split by job: [`analysis`] derives times, ratios and claims
//! from a parsed [`Run`](crate::Run), [`targets`] checks issue 6's target
//! ratios, [`report`] renders the table, [`export`] writes `ipc.csv`,
//! `ipc-counters.csv`, `ipc-targets.csv` and `ipc.json`, [`plot`] draws
//! `ipc.png`.
//!
//! Its records are the generic `latency`, `stream` and `counters` lines, so
//! it has no parser of its own: [`crate::serial_log`] reads them.

pub mod analysis;
pub mod export;
pub mod plot;
pub mod report;
pub mod targets;
