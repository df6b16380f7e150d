//! The plain-text table and the cell formats every benchmark's report
//! prints, so a figure reads the same in each table.
//!
//! A missing value is printed `-`; ratios `1.05x`; times in ns with one
//! decimal; shares `93.1 %`; rates with an SI prefix (`4.21 M`).

use std::fmt::Write;

use crate::figures::{Bound, MessageCheck, TargetOutcome};

/// `-` for a missing value, else the value.
pub fn dash_or<T: ToString>(value: Option<T>) -> String {
    value.map_or("-".to_string(), |value| value.to_string())
}

/// `1.05x`, or `-`.
pub fn ratio_text(ratio: Option<f64>) -> String {
    ratio.map_or("-".to_string(), |ratio| format!("{ratio:.2}x"))
}

/// `123.4` (ns), or `-`.
pub fn ns_text(ns: Option<f64>) -> String {
    ns.map_or("-".to_string(), |ns| format!("{ns:.1}"))
}

/// `93.1 %` for 0.931, or `-`.
pub fn share_text(share: Option<f64>) -> String {
    share.map_or("-".to_string(), |share| format!("{:.1} %", share * 100.0))
}

/// A value scaled to an SI prefix: `(4.21, " M")` for 4 210 000; the
/// prefix is empty below 1000.
pub fn si_scaled(value: f64) -> (f64, &'static str) {
    if value >= 1e9 {
        (value / 1e9, " G")
    } else if value >= 1e6 {
        (value / 1e6, " M")
    } else if value >= 1e3 {
        (value / 1e3, " k")
    } else {
        (value, "")
    }
}

/// Formats a rate with an SI prefix (`4.21 M`).
pub fn format_rate(per_second: f64) -> String {
    if !per_second.is_finite() {
        return "inf".to_string();
    }
    let (scaled, prefix) = si_scaled(per_second);
    format!("{scaled:.3}{prefix}")
}

/// The check column: `ok`, `FAIL ok/n` or `UNCHECKED`.
pub fn check_text(check: MessageCheck, ok: Option<u64>, n: u64) -> String {
    match check {
        MessageCheck::AllChecked => "ok".to_string(),
        MessageCheck::Mismatch => format!("FAIL {}/{n}", ok.unwrap_or(0)),
        MessageCheck::NotReported => "UNCHECKED".to_string(),
    }
}

/// `<=` or `>=`.
pub fn bound_symbol(bound: Bound) -> &'static str {
    match bound {
        Bound::AtMost => "<=",
        Bound::AtLeast => ">=",
    }
}

/// One target in a report's target list:
///
/// ```text
///   [met   ] description: 1.05x (target <= 1.1x)
///            the figures it came from
///   [n/a   ] description: 0.95x (target <= 1.1x) n/a: mover-rtt: only 19998 of 20000 replies checked out
///            the figures it came from
/// ```
pub struct TargetLine<'a> {
    pub outcome: TargetOutcome,
    pub description: &'a str,
    /// The measured value as printed (`1.05x`, `not measured`).
    pub measured: &'a str,
    pub bound: Bound,
    /// The limit as printed (`1.1x`, `90 %`).
    pub limit: &'a str,
    /// Why a value that was measured is not judged
    /// ([`TargetOutcome::NotApplicable`]): printed after the limit.
    pub not_applicable_because: Option<&'a str>,
    pub detail: &'a str,
}

impl TargetLine<'_> {
    /// Appends the line and its detail line to `out`.
    pub fn write(&self, out: &mut String) {
        let outcome = match self.outcome {
            TargetOutcome::Met => "met   ",
            TargetOutcome::Missed => "MISSED",
            TargetOutcome::NotMeasured | TargetOutcome::NotApplicable => "n/a   ",
        };
        let trust = match self.not_applicable_because {
            Some(reason) if self.outcome == TargetOutcome::NotApplicable => {
                format!(" n/a: {reason}")
            }
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  [{outcome}] {}: {} (target {} {}){trust}\n           {}",
            self.description,
            self.measured,
            bound_symbol(self.bound),
            self.limit,
            self.detail
        );
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// A plain-text table with columns padded to their widest cell.
pub struct Table {
    headers: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[(&str, Align)]) -> Table {
        Table { headers: headers.iter().map(|(name, align)| (name.to_string(), *align)).collect(), rows: Vec::new() }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|column| {
                self.rows
                    .iter()
                    .filter_map(|row| row.get(column))
                    .map(|cell| cell.chars().count())
                    .chain([self.headers[column].0.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        let header_cells: Vec<String> = self.headers.iter().map(|(name, _)| name.clone()).collect();
        self.render_row(&mut out, &header_cells, &widths);
        let rule: Vec<String> = widths.iter().map(|width| "-".repeat(*width)).collect();
        let _ = writeln!(out, "  {}", rule.join("  "));
        for row in &self.rows {
            self.render_row(&mut out, row, &widths);
        }
        out
    }

    fn render_row(&self, out: &mut String, cells: &[String], widths: &[usize]) {
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .zip(&self.headers)
            .map(|((cell, width), (_, align))| match align {
                Align::Left => format!("{cell:<width$}"),
                Align::Right => format!("{cell:>width$}"),
            })
            .collect();
        let _ = writeln!(out, "  {}", padded.join("  ").trim_end());
    }
}
