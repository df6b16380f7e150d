//! The power table as files: `power.csv`, one [`PowerRow`] per line (one
//! per boot × interval), `power-across-boots.csv` (per policy × interval,
//! the median of the boots' medians and min..max), and `power.json`, a
//! [`PowerJson`] (the table, targets, warnings, the spreads and the raw
//! power runs). Nothing is written when the log holds no power boot.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::across_boots::{PowerAcrossBootsCsvRow, PowerAcrossBootsRow, power_across_boots};
use super::analysis::PowerTable;
use super::parse::power_runs;
use super::rows::PowerRow;
use crate::data_files::{read_csv, read_json, write_csv, write_json};
use crate::serial_log::Run;

/// Identifies the layout of `power.json`; bumped when fields change meaning.
///
/// `power-bench/2`: `rtt_over_spin` became `rtt_over_baseline`, with
/// `baseline_policy` on the table, each row and each target (spin, or pause
/// as a stand-in when there is no spin boot).
///
/// `power-bench/3`: `across_boots`; targets gain the `not-applicable`
/// outcome with `not_applicable_because`; boots carry `fallbacks`; rows
/// carry `rtt_tsc_backwards` and `wakeup_tsc_backwards`.
pub const POWER_JSON_FORMAT: &str = "power-bench/3";

/// The whole content of `power.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerJson {
    /// Always [`POWER_JSON_FORMAT`].
    pub format: String,
    pub table: PowerTable,
    /// Per policy × interval, the median of the boots' medians and their
    /// spread (`--runs N`).
    #[serde(default)]
    pub across_boots: Vec<PowerAcrossBootsRow>,
    /// The power runs as parsed, in log order.
    pub runs: Vec<Run>,
}

/// The document written to `power.json`.
pub fn power_json(runs: &[Run]) -> PowerJson {
    let table = PowerTable::from_runs(runs);
    PowerJson {
        format: POWER_JSON_FORMAT.to_string(),
        across_boots: power_across_boots(&table),
        table,
        runs: power_runs(runs).into_iter().cloned().collect(),
    }
}

/// Reads `power.json` back.
pub fn read_power_json(path: &Path) -> io::Result<PowerJson> {
    read_json(path)
}

/// Reads `power.csv` back.
pub fn read_power_csv(path: &Path) -> io::Result<Vec<PowerRow>> {
    read_csv(path)
}

/// Writes `power.csv` and `power.json` into `dir` (created if needed) and
/// returns their paths; writes nothing and returns no path when the log
/// holds no power boot.
pub fn write_power_outputs(runs: &[Run], dir: &Path) -> io::Result<Vec<PathBuf>> {
    let document = power_json(runs);
    if document.table.is_empty() {
        return Ok(Vec::new());
    }
    fs::create_dir_all(dir)?;
    let csv_path = dir.join("power.csv");
    write_csv(&csv_path, &document.table.rows)?;
    let spread_path = dir.join("power-across-boots.csv");
    let spread_rows: Vec<PowerAcrossBootsCsvRow> =
        document.across_boots.iter().map(PowerAcrossBootsCsvRow::from).collect();
    write_csv(&spread_path, &spread_rows)?;
    let json_path = dir.join("power.json");
    write_json(&json_path, &document)?;
    Ok(vec![csv_path, spread_path, json_path])
}
