//! Host side of the in-guest IPC benchmark: reads the `BENCH` lines of a
//! serial log and turns them into a table, CSV, JSON and PNG plots.
//!
//! ```text
//! serial log ──parse──▶ Vec<Run> ──analyze──▶ Analysis ──▶ report_text (table)
//!                                                      ──▶ write_outputs (CSV, JSON, PNG)
//!                          └──power_table──▶ PowerTable ──▶ power_report_text (table)
//!                       (system=power-<policy>)          ──▶ write_power_outputs (CSV, JSON)
//! ```
//!
//! Invariants kept across the crate (each module's docs say more):
//! - figures of one run are only ever divided by baselines of the same run
//!   (same boot); several runs in one log are reported one by one, and only
//!   their dimensionless target ratios are set side by side
//!   ([`summary_text`]);
//! - a figure whose messages did not all check out (`ok != n`, or no `ok`)
//!   is kept but flagged in every output;
//! - targets are measured and reported as met or missed, never asserted;
//! - the power table ([`power`]) shows one boot per policy in one table;
//!   across boots it divides only each boot's floor-normalised ratios,
//!   never times.
//!
//! Typical use from `cargo xtask bench`:
//!
//! ```no_run
//! let log = std::fs::read_to_string("target/bench/serial.log").unwrap();
//! let mut runs = bench::parse(&log).unwrap();
//! for run in &mut runs {
//!     run.host_cpus = std::thread::available_parallelism().ok().map(|n| n.get() as u32);
//!     print!("{}", bench::report_text(run));
//! }
//! print!("{}", bench::summary_text(&runs));
//! let written = bench::write_outputs(&runs, std::path::Path::new("target/bench")).unwrap();
//! ```

#![forbid(unsafe_code)]

pub mod data_files;
pub mod figures;
pub mod ipc;
pub mod power_policy;
pub mod serial_log;
pub mod text_table;

pub use data_files::read_csv;
pub use figures::{MessageCheck, TargetOutcome};
pub use ipc::analysis::{Analysis, analyze};
pub use ipc::export::{JsonReport, read_json, write_data_files, write_outputs};
pub use ipc::plot::write_plots;
pub use ipc::report::{report_text, summary_text};
pub use ipc::targets::TargetCheck;
pub use power_policy::{
    PowerRow, PowerTable, power_report_text, power_runs, power_table, write_power_outputs,
};
pub use serial_log::{ParseError, ParseErrorKind, Run, parse};
