//! The size sweep as files: `sizes.csv` (one row per boot, path and size),
//! `sizes-cost.csv` (the cost rows), `sizes.json` ([`SizesJson`]: every
//! boot's analysis and raw records) and `sizes.png` (`sizes-run2.png`, …
//! for more boots). Nothing is written when the log holds no sweep boot.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::analysis::{CostRow, SizeRow, SizesAnalysis, analyze_sizes, is_sizes_run};
use super::plot::write_sizes_plot;
use crate::data_files::{write_csv, write_json};
use crate::figures::MessageCheck;
use crate::serial_log::Run;

/// Identifies the layout of `sizes.json`.
pub const SIZES_JSON_FORMAT: &str = "sizes-bench/1";

/// One sweep boot: what the guest printed and what the host derived.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizesBoot {
    pub run: Run,
    pub analysis: SizesAnalysis,
}

/// The whole content of `sizes.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SizesJson {
    /// Always [`SIZES_JSON_FORMAT`].
    pub format: String,
    pub boots: Vec<SizesBoot>,
}

/// A row of `sizes.csv`: the boot's number (1-based, among sweep boots)
/// and the row's figures (`check` as text).
#[derive(Serialize)]
struct CsvRow<'a> {
    boot: usize,
    path: &'a str,
    size: u64,
    slots: Option<u64>,
    rtt_n: Option<u64>,
    rtt_ok: Option<u64>,
    rtt_median_ns: Option<f64>,
    rtt_p99_ns: Option<f64>,
    rtt_tsc_backwards: Option<u64>,
    rtt_over_floor: Option<f64>,
    stream_n: Option<u64>,
    stream_ok: Option<u64>,
    bytes_per_second: Option<f64>,
    messages_per_second: Option<f64>,
    bytes_over_inline_mover: Option<f64>,
    check: MessageCheck,
}

impl<'a> CsvRow<'a> {
    fn of(boot: usize, r: &'a SizeRow) -> CsvRow<'a> {
        CsvRow {
            boot,
            path: &r.path,
            size: r.size,
            slots: r.slots,
            rtt_n: r.rtt_n,
            rtt_ok: r.rtt_ok,
            rtt_median_ns: r.rtt_median_ns,
            rtt_p99_ns: r.rtt_p99_ns,
            rtt_tsc_backwards: r.rtt_tsc_backwards,
            rtt_over_floor: r.rtt_over_floor,
            stream_n: r.stream_n,
            stream_ok: r.stream_ok,
            bytes_per_second: r.bytes_per_second,
            messages_per_second: r.messages_per_second,
            bytes_over_inline_mover: r.bytes_over_inline_mover,
            check: r.check,
        }
    }
}

/// A row of `sizes-cost.csv` (the rounds' times joined by spaces).
#[derive(Serialize)]
struct CostCsvRow<'a> {
    boot: usize,
    path: &'a str,
    streams: usize,
    messages: u64,
    ok: u64,
    ns_per_message: Option<f64>,
    rounds_ns_per_message: String,
    rtt_median_ns: Option<f64>,
    rtt_p99_ns: Option<f64>,
    rtt_n: u64,
    rtt_ok: u64,
    mover_messages_per_message: Option<f64>,
    syscalls_per_message: Option<f64>,
    check: MessageCheck,
}

impl<'a> CostCsvRow<'a> {
    fn of(boot: usize, r: &'a CostRow) -> CostCsvRow<'a> {
        let rounds: Vec<String> = r.rounds_ns_per_message.iter().map(|v| format!("{v:.1}")).collect();
        CostCsvRow {
            boot,
            path: &r.path,
            streams: r.streams,
            messages: r.messages,
            ok: r.ok,
            ns_per_message: r.ns_per_message,
            rounds_ns_per_message: rounds.join(" "),
            rtt_median_ns: r.rtt_median_ns,
            rtt_p99_ns: r.rtt_p99_ns,
            rtt_n: r.rtt_n,
            rtt_ok: r.rtt_ok,
            mover_messages_per_message: r.mover_messages_per_message,
            syscalls_per_message: r.syscalls_per_message,
            check: r.check,
        }
    }
}

/// Writes the sweep's files into `dir`; returns their paths (none without a sweep boot).
pub fn write_sizes_outputs(runs: &[Run], dir: &Path) -> io::Result<Vec<PathBuf>> {
    let boots: Vec<SizesBoot> = runs
        .iter()
        .filter(|r| is_sizes_run(r))
        .map(|r| SizesBoot { run: r.clone(), analysis: analyze_sizes(r) })
        .collect();
    if boots.is_empty() {
        return Ok(Vec::new());
    }
    fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    let rows: Vec<CsvRow> = boots
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.analysis.rows.iter().map(move |row| CsvRow::of(i + 1, row)))
        .collect();
    let csv = dir.join("sizes.csv");
    write_csv(&csv, &rows)?;
    paths.push(csv);
    let cost: Vec<CostCsvRow> = boots
        .iter()
        .enumerate()
        .flat_map(|(i, b)| b.analysis.cost.iter().map(move |row| CostCsvRow::of(i + 1, row)))
        .collect();
    let cost_csv = dir.join("sizes-cost.csv");
    write_csv(&cost_csv, &cost)?;
    paths.push(cost_csv);
    for (i, boot) in boots.iter().enumerate() {
        let name = if i == 0 { "sizes.png".to_string() } else { format!("sizes-run{}.png", i + 1) };
        let png = dir.join(name);
        let heading = format!(
            "message-size sweep, stream bytes/s: accel={} smp={} ({}; ratios within one boot only)",
            boot.run.accel,
            boot.run.smp.map_or("?".into(), |s| s.to_string()),
            boot.run.date.as_deref().unwrap_or("?")
        );
        write_sizes_plot(&boot.analysis, &heading, &png)?;
        paths.push(png);
    }
    let json = dir.join("sizes.json");
    write_json(&json, &SizesJson { format: SIZES_JSON_FORMAT.to_string(), boots })?;
    paths.push(json);
    Ok(paths)
}
