//! Machine-readable copies of the report: CSV tables and one JSON document.
//!
//! Files written into the output directory:
//! - `ipc.csv`: one row per latency or stream record (`kind` says which),
//!   raw cycles next to derived ns, rates and ratios; empty cells where a
//!   column does not apply;
//! - `ipc-counters.csv`: one row per counters record;
//! - `ipc-row-counters.csv`: one row per compared row (mover, sync calls,
//!   direct rings, two hops): its phase counters per operation and whether
//!   they agree with its path;
//! - `ipc-targets.csv`: one row per run and target check;
//! - `ipc-across-boots.csv`: one row per figure: the median of the boots'
//!   medians and their spread (min..max), for `--runs N`;
//! - `ipc.json`: [`JsonReport`], every run's raw records and analysis.
//!
//! `run` is the 1-based position of the run in the log in every file.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::across_boots::{AcrossBootsRow, across_boots};
use super::analysis::{Analysis, analyze};
use super::paths::CounterVerdict;
use super::record_figures::variant_text;
pub use crate::data_files::read_csv;
use crate::data_files::{write_csv, write_json};
use crate::figures::{Bound, MessageCheck, TargetOutcome};
use crate::serial_log::Run;

/// Identifies the layout of `ipc.json`; bumped when fields change meaning.
///
/// `ipc-bench/2`: `across_boots`; target outcomes gain `not-applicable` (with
/// `not_applicable_because`); figures carry `variant` and `tsc_backwards`;
/// runs carry `fallbacks`.
pub const JSON_FORMAT: &str = "ipc-bench/2";

/// The whole content of `ipc.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JsonReport {
    /// Always [`JSON_FORMAT`].
    pub format: String,
    pub runs: Vec<RunReport>,
    /// Per figure, the median of the boots' medians and their spread
    /// (`--runs N`; one entry per figure even for one boot).
    #[serde(default)]
    pub across_boots: Vec<AcrossBootsRow>,
}

/// One run: what the guest printed and what the host derived from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunReport {
    pub run: Run,
    pub analysis: Analysis,
}

/// A row of `ipc.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeasurementRow {
    pub run: usize,
    /// `system=` of the boot (`ipc`, `ipc-writers`), if it said.
    pub system: Option<String>,
    pub accel: String,
    pub smp: Option<u32>,
    pub tsc_hz: u64,
    /// `latency` or `stream`.
    pub kind: String,
    pub name: String,
    pub batch: Option<u32>,
    pub rings: Option<u32>,
    /// `same-core` or `cross-core` (sync-call rows).
    pub placement: Option<String>,
    /// `mover` or `sync` (two-hop rows).
    pub path: Option<String>,
    /// What the rings beyond the base are: `empty`, `written`, `idle`.
    pub extra: Option<String>,
    /// How many of `rings` are extra rings.
    pub extra_rings: Option<u32>,
    /// Ring-writer servers in the boot.
    pub writers: Option<u32>,
    /// The row in words, as the table prints it.
    pub what: String,
    pub n: u64,
    pub ok: Option<u64>,
    /// `all-checked`, `mismatch` or `not-reported`.
    pub check: String,
    pub median_cycles: Option<u64>,
    pub p99_cycles: Option<u64>,
    pub min_cycles: Option<u64>,
    pub max_cycles: Option<u64>,
    pub median_ns: Option<f64>,
    pub p99_ns: Option<f64>,
    pub one_way_ns: Option<f64>,
    pub median_over_floor: Option<f64>,
    /// Samples dropped because the TSC went backwards (`tsc_backwards=`).
    pub tsc_backwards: Option<u64>,
    pub cycles: Option<u64>,
    pub messages_per_second: Option<f64>,
    pub over_direct_stream: Option<f64>,
    pub line: usize,
}

/// A row of `ipc-counters.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CounterRow {
    pub run: usize,
    pub phase: String,
    pub core: u32,
    pub role: Option<String>,
    pub messages: Option<u64>,
    pub cr3_writes: Option<u64>,
    pub syscalls: Option<u64>,
    pub interrupts: Option<u64>,
    pub exceptions: Option<u64>,
    pub cr3_writes_per_message: Option<f64>,
    pub syscalls_per_message: Option<f64>,
    pub interrupts_per_message: Option<f64>,
}

/// A row of `ipc-targets.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetRow {
    pub run: usize,
    pub target: String,
    /// `at-most` or `at-least`.
    pub bound: String,
    pub limit: f64,
    pub measured: Option<f64>,
    /// `met`, `missed`, `not-applicable` (measured, but from inputs that
    /// failed their check or a mechanism that fell back) or `not-measured`.
    pub outcome: String,
    pub inputs_checked: bool,
    /// Why an `not-applicable` target was not judged.
    pub not_applicable_because: Option<String>,
}

fn check_name(check: MessageCheck) -> &'static str {
    match check {
        MessageCheck::AllChecked => "all-checked",
        MessageCheck::Mismatch => "mismatch",
        MessageCheck::NotReported => "not-reported",
    }
}

/// The rows of `ipc.csv` for these runs.
pub fn measurement_rows(runs: &[Run]) -> Vec<MeasurementRow> {
    let mut rows = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let analysis = analyze(run);
        for (sample, figure) in run.latencies.iter().zip(&analysis.latencies) {
            rows.push(MeasurementRow {
                run: index + 1,
                system: run.begin_extra.get("system").cloned(),
                accel: run.accel.clone(),
                smp: run.smp,
                tsc_hz: run.tsc_hz,
                kind: "latency".to_string(),
                name: sample.name.clone(),
                batch: None,
                rings: sample.rings,
                placement: figure.variant.placement.clone(),
                path: figure.variant.path.clone(),
                extra: figure.variant.extra.clone(),
                extra_rings: figure.variant.extra_rings,
                writers: figure.variant.writers,
                what: variant_text(figure.rings, None, &figure.variant),
                n: sample.n,
                ok: sample.ok,
                check: check_name(figure.check).to_string(),
                median_cycles: Some(sample.median_cycles),
                p99_cycles: Some(sample.p99_cycles),
                min_cycles: sample.min_cycles,
                max_cycles: sample.max_cycles,
                median_ns: Some(figure.median_ns),
                p99_ns: Some(figure.p99_ns),
                one_way_ns: Some(figure.one_way_ns),
                median_over_floor: figure.median_over_floor,
                tsc_backwards: sample.tsc_backwards,
                cycles: None,
                messages_per_second: None,
                over_direct_stream: None,
                line: sample.line,
            });
        }
        for (sample, figure) in run.streams.iter().zip(&analysis.streams) {
            rows.push(MeasurementRow {
                run: index + 1,
                system: run.begin_extra.get("system").cloned(),
                accel: run.accel.clone(),
                smp: run.smp,
                tsc_hz: run.tsc_hz,
                kind: "stream".to_string(),
                name: sample.name.clone(),
                batch: sample.batch,
                rings: sample.rings,
                placement: figure.variant.placement.clone(),
                path: figure.variant.path.clone(),
                extra: figure.variant.extra.clone(),
                extra_rings: figure.variant.extra_rings,
                writers: figure.variant.writers,
                what: variant_text(figure.rings, figure.batch, &figure.variant),
                n: sample.n,
                ok: sample.ok,
                check: check_name(figure.check).to_string(),
                median_cycles: None,
                p99_cycles: None,
                min_cycles: None,
                max_cycles: None,
                median_ns: None,
                p99_ns: None,
                one_way_ns: None,
                median_over_floor: None,
                tsc_backwards: sample.tsc_backwards,
                cycles: Some(sample.cycles),
                messages_per_second: Some(figure.messages_per_second),
                over_direct_stream: figure.over_direct_stream,
                line: sample.line,
            });
        }
    }
    rows
}

/// The rows of `ipc-counters.csv` for these runs.
pub fn counter_rows(runs: &[Run]) -> Vec<CounterRow> {
    let mut rows = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        for figure in analyze(run).counters {
            rows.push(CounterRow {
                run: index + 1,
                phase: figure.phase,
                core: figure.core,
                role: figure.role,
                messages: figure.messages,
                cr3_writes: figure.cr3_writes,
                syscalls: figure.syscalls,
                interrupts: figure.interrupts,
                exceptions: figure.exceptions,
                cr3_writes_per_message: figure.cr3_writes_per_message,
                syscalls_per_message: figure.syscalls_per_message,
                interrupts_per_message: figure.interrupts_per_message,
            });
        }
    }
    rows
}

/// The rows of `ipc-targets.csv` for these runs.
pub fn target_rows(runs: &[Run]) -> Vec<TargetRow> {
    let mut rows = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        for check in analyze(run).targets {
            rows.push(TargetRow {
                run: index + 1,
                target: check.id,
                bound: match check.bound {
                    Bound::AtMost => "at-most",
                    Bound::AtLeast => "at-least",
                }
                .to_string(),
                limit: check.limit,
                measured: check.measured,
                outcome: match check.outcome {
                    TargetOutcome::Met => "met",
                    TargetOutcome::Missed => "missed",
                    TargetOutcome::NotMeasured => "not-measured",
                    TargetOutcome::NotApplicable => "not-applicable",
                }
                .to_string(),
                inputs_checked: check.inputs_checked,
                not_applicable_because: check.not_applicable_because,
            });
        }
    }
    rows
}

/// A row of `ipc-row-counters.csv`: one compared row's phase counters per
/// operation and whether they agree with its path.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RowCounterRow {
    pub run: usize,
    pub row: String,
    pub line: usize,
    pub phase: String,
    /// `round trip`, `message` or `call`.
    pub per: String,
    pub operations: u64,
    pub cr3_writes_per_operation: Option<f64>,
    pub syscalls_per_operation: Option<f64>,
    pub interrupts_per_operation: Option<f64>,
    /// What the path must show, in words.
    pub expected: String,
    /// `consistent`, `contradicts` or `not-reported`.
    pub verdict: String,
}

/// The rows of `ipc-row-counters.csv` for these runs.
pub fn row_counter_rows(runs: &[Run]) -> Vec<RowCounterRow> {
    let mut rows = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        for counters in analyze(run).row_counters {
            rows.push(RowCounterRow {
                run: index + 1,
                row: counters.row,
                line: counters.line,
                phase: counters.phase,
                per: counters.per,
                operations: counters.operations,
                cr3_writes_per_operation: counters.cr3_writes_per_operation,
                syscalls_per_operation: counters.syscalls_per_operation,
                interrupts_per_operation: counters.interrupts_per_operation,
                expected: counters.expectation.text(),
                verdict: match counters.verdict {
                    CounterVerdict::Consistent => "consistent",
                    CounterVerdict::Contradicts => "contradicts",
                    CounterVerdict::NotReported => "not-reported",
                }
                .to_string(),
            });
        }
    }
    rows
}

/// The document written to `ipc.json`.
pub fn json_report(runs: &[Run]) -> JsonReport {
    JsonReport {
        format: JSON_FORMAT.to_string(),
        runs: runs.iter().map(|run| RunReport { run: run.clone(), analysis: analyze(run) }).collect(),
        across_boots: across_boots(runs),
    }
}

/// Reads `ipc.json` back.
pub fn read_json(path: &Path) -> io::Result<JsonReport> {
    crate::data_files::read_json(path)
}

/// Writes the CSV and JSON files into `dir` (created if needed) and returns
/// their paths.
pub fn write_data_files(runs: &[Run], dir: &Path) -> io::Result<Vec<PathBuf>> {
    fs::create_dir_all(dir)?;
    let measurements = dir.join("ipc.csv");
    write_csv(&measurements, &measurement_rows(runs))?;
    let counters = dir.join("ipc-counters.csv");
    write_csv(&counters, &counter_rows(runs))?;
    let spread = dir.join("ipc-across-boots.csv");
    write_csv(&spread, &across_boots(runs))?;
    let row_counters = dir.join("ipc-row-counters.csv");
    write_csv(&row_counters, &row_counter_rows(runs))?;
    let targets = dir.join("ipc-targets.csv");
    write_csv(&targets, &target_rows(runs))?;
    let json = dir.join("ipc.json");
    write_json(&json, &json_report(runs))?;
    Ok(vec![measurements, counters, row_counters, targets, spread, json])
}

/// Writes every output (CSV, JSON and the PNG plots) into `dir`.
pub fn write_outputs(runs: &[Run], dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut paths = write_data_files(runs, dir)?;
    paths.extend(super::plot::write_plots(runs, dir)?);
    Ok(paths)
}
