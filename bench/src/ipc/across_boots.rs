//! Several boots of the IPC benchmark (`cargo xtask bench --runs N`): per
//! figure, the median of the boots' medians and their spread (min..max).
//!
//! A figure is one row of one system (`system=` on `BENCH-BEGIN`: `ipc`,
//! `ipc-writers`, …), named by its label (`mover-rtt rings=2: no extra`).
//! Absolute times of different boots are set side by side here only as a
//! spread, never divided; the ratio column is each boot's own ratio to its
//! own baseline (floor, direct ring), aggregated the same way. A boot whose
//! record failed its message check is left out of that figure and counted.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::analysis::analyze;
use super::record_figures::row_label;
use crate::figures::Spread;
use crate::serial_log::Run;
use crate::text_table::{Align, Table, format_rate};

/// One figure across boots; a row of `ipc-across-boots.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AcrossBootsRow {
    /// `system=` of the boots (`ipc`, `ipc-writers`; `-` when not given).
    pub system: String,
    /// `latency` or `stream`.
    pub kind: String,
    /// The row's label.
    pub row: String,
    /// `median ns` (latency) or `msg/s` (stream).
    pub unit: String,
    /// Boots whose record checked out and entered the spread.
    pub boots: usize,
    /// Boots whose record failed its message check (left out).
    pub unchecked_boots: usize,
    pub median_of_medians: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// `median/floor` (latency) or `vs direct b1` (stream).
    pub ratio: String,
    pub ratio_median: Option<f64>,
    pub ratio_min: Option<f64>,
    pub ratio_max: Option<f64>,
}

#[derive(Default)]
struct Samples {
    values: Vec<f64>,
    ratios: Vec<f64>,
    unchecked: usize,
}

/// The figures of `runs` across boots, in first-seen order.
pub fn across_boots(runs: &[Run]) -> Vec<AcrossBootsRow> {
    let mut order: Vec<(String, String, String)> = Vec::new();
    let mut samples: BTreeMap<(String, String, String), Samples> = BTreeMap::new();
    for run in runs {
        let system = run.begin_extra.get("system").cloned().unwrap_or_else(|| "-".to_string());
        let analysis = analyze(run);
        let mut add = |kind: &str, row: String, trusted: bool, value: f64, ratio: Option<f64>| {
            let key = (system.clone(), kind.to_string(), row);
            if !samples.contains_key(&key) {
                order.push(key.clone());
            }
            let entry = samples.entry(key).or_default();
            if trusted {
                entry.values.push(value);
                entry.ratios.extend(ratio);
            } else {
                entry.unchecked += 1;
            }
        };
        for f in &analysis.latencies {
            let row = row_label(&f.name, f.rings, None, &f.variant);
            add("latency", row, f.is_trustworthy(), f.median_ns, f.median_over_floor);
        }
        for f in &analysis.streams {
            let row = row_label(&f.name, f.rings, f.batch, &f.variant);
            add("stream", row, f.is_trustworthy(), f.messages_per_second, f.over_direct_stream);
        }
    }
    order
        .into_iter()
        .map(|key| {
            let entry = &samples[&key];
            let values = Spread::of(&entry.values);
            let ratios = Spread::of(&entry.ratios);
            let latency = key.1 == "latency";
            AcrossBootsRow {
                system: key.0.clone(),
                kind: key.1.clone(),
                row: key.2.clone(),
                unit: if latency { "median ns" } else { "msg/s" }.to_string(),
                boots: entry.values.len(),
                unchecked_boots: entry.unchecked,
                median_of_medians: values.map(|s| s.median),
                min: values.map(|s| s.min),
                max: values.map(|s| s.max),
                ratio: if latency { "median/floor" } else { "vs direct b1" }.to_string(),
                ratio_median: ratios.map(|s| s.median),
                ratio_min: ratios.map(|s| s.min),
                ratio_max: ratios.map(|s| s.max),
            }
        })
        .collect()
}

/// The across-boots table as text; empty for fewer than two boots.
pub fn across_boots_text(runs: &[Run]) -> String {
    if runs.len() < 2 {
        return String::new();
    }
    let rows = across_boots(runs);
    let mut out =
        format!("Across {} boots: median of the boots' medians [min..max]; ratios are each boot's own\n", runs.len());
    let mut table = Table::new(&[
        ("system", Align::Left),
        ("row", Align::Left),
        ("boots", Align::Right),
        ("median of medians", Align::Right),
        ("spread (min..max)", Align::Right),
        ("ratio", Align::Left),
        ("ratio median", Align::Right),
        ("ratio spread", Align::Right),
    ]);
    for row in &rows {
        let value = |v: f64| {
            if row.kind == "latency" { format!("{v:.1} ns") } else { format!("{} msg/s", format_rate(v)) }
        };
        let boots = if row.unchecked_boots > 0 {
            format!("{} (+{} FAILED check)", row.boots, row.unchecked_boots)
        } else {
            row.boots.to_string()
        };
        table.row(vec![
            row.system.clone(),
            row.row.clone(),
            boots,
            row.median_of_medians.map_or("-".to_string(), value),
            match (row.min, row.max) {
                (Some(min), Some(max)) => format!("{}..{}", value(min), value(max)),
                _ => "-".to_string(),
            },
            row.ratio.clone(),
            row.ratio_median.map_or("-".to_string(), |r| format!("{r:.2}x")),
            match (row.ratio_min, row.ratio_max) {
                (Some(min), Some(max)) => format!("{min:.2}x..{max:.2}x"),
                _ => "-".to_string(),
            },
        ]);
    }
    out.push_str(&table.render());
    let _ = writeln!(out);
    out
}
