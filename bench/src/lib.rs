//! Host side of the in-guest benchmarks (IPC and power policies): reads the
//! `BENCH` lines of a serial log and turns them into tables, CSV, JSON and
//! PNG plots.
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
//!   a target whose inputs failed their check, or whose mechanism fell
//!   back, is `n/a` with the reason, never met;
//! - a sample where the TSC went backwards is dropped and counted by the
//!   guest (`tsc_backwards=`), never kept as 0;
//! - an IPC row whose phase counters contradict its path (a same-core sync
//!   call without CR3 writes, a mover row with system calls) is a failure
//!   ([`counter_failures`]), not a warning;
//! - several boots of one system are set side by side only as the median
//!   of their medians and its spread ([`across_boots`]);
//! - the power table ([`power_policy`]) shows one boot per policy in one
//!   table; across boots it divides only each boot's floor-normalised
//!   ratios, never times.
//!
//! Layout: a folder per benchmark, a file per job, named the same way in
//! both; what both benchmarks share sits at the top and depends on neither.
//!
//! ```text
//! src/serial_log.rs          BENCH-BEGIN … BENCH-END blocks -> Vec<Run> (every benchmark)
//! src/figures.rs             cycles -> ns, guarded ratios, reply checks, target verdicts
//! src/text_table.rs          the text table and its cell formats, the target line
//! src/data_files.rs          writing and reading CSV and JSON files
//! src/ipc/                   the IPC benchmark (no parser of its own: generic records)
//!   record_figures.rs paths.rs targets.rs analysis.rs report.rs across_boots.rs plot.rs export.rs
//! src/power_policy/          the power-policy benchmark (no plot)
//!   parse.rs rows.rs warnings.rs targets.rs analysis.rs report.rs across_boots.rs export.rs
//! src/sizes/                 the message-size sweep (its plot uses the IPC plot's font)
//!   analysis.rs report.rs plot.rs export.rs
//! src/bin/bench-report.rs    re-reports a saved serial log
//! ```
//!
//! Jobs, in the order they depend on each other: `parse` (the benchmark's
//! own reading of the records), per-record or per-row figures
//! (`record_figures`, `rows`), `targets` (and `warnings`), `analysis` (one
//! value holding all of it), then `report` (text), `plot` (PNG) and
//! `export` (CSV, JSON). A file imports only from files before it, and from
//! the shared files at the top.
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
pub mod instructions;
pub mod ipc;
pub mod netload;
pub mod power_policy;
pub mod serial_log;
pub mod sizes;
pub mod text_table;

pub use data_files::read_csv;
pub use figures::{MessageCheck, TargetOutcome};
pub use ipc::across_boots::{AcrossBootsRow, across_boots, across_boots_text};
pub use ipc::analysis::{Analysis, analyze};
pub use ipc::export::{JsonReport, read_json, write_data_files, write_outputs};
pub use ipc::paths::{CounterVerdict, IpcPath, RowCounters};
pub use ipc::plot::write_plots;
pub use ipc::report::{counter_failures, report_text, summary_text};
pub use ipc::targets::TargetCheck;
pub use power_policy::{PowerRow, PowerTable, power_report_text, power_runs, power_table, write_power_outputs};
pub use serial_log::{ParseError, ParseErrorKind, Run, parse};
pub use sizes::{is_sizes_run, sizes_report_text, write_sizes_outputs};
