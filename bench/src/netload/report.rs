//! The network benchmark's outputs: the text table with its caveats, and
//! `net.csv`, `net.json`, `net.png`.
//!
//! Invariants: a row whose replies did not all check out says so in its
//! check column (`FAIL …`) and in [`failures`]; rows of the host fixture
//! and of the guest go to different files (`net-host.*` for the host), so a
//! host figure is never read as a guest one.

use std::fmt::Write;
use std::io;
use std::path::{Path, PathBuf};

use plotters::prelude::*;
use plotters::style::register_font;
use serde::{Deserialize, Serialize};

use super::sweep::NetRow;
use crate::data_files::{write_csv, write_json};
use crate::text_table::{Align, Table, format_rate};

/// What the JSON file holds: where the figures come from, then the rows.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetJson {
    pub date: String,
    /// `guest` or `host`.
    pub target: String,
    /// The QEMU accelerator, or `none` for the host fixture.
    pub accel: String,
    pub host_cpus: Option<usize>,
    pub caveats: Vec<String>,
    pub rows: Vec<NetRow>,
}

/// The caveats printed under every table.
pub fn caveats(target: &str, accel: &str) -> Vec<String> {
    let mut lines = vec![
        "latency is reply time minus the request's intended send time (open loop, uniform spacing), so queueing \
         in the generator, the network path and the service all count (no coordinated omission); closed-loop \
         rows time one request at a time per connection"
            .to_string(),
        "the load generator runs on the same host as QEMU: it competes for the same cores (send lag p99 says \
         when the generator itself fell behind)"
            .to_string(),
    ];
    if target == "host" {
        lines.push(
            "HOST FIXTURE: kv-logic in the host process, no guest: a check of the load generator, not a figure \
                    of the kernel"
                .to_string(),
        );
    } else {
        lines.push(format!(
            "guest under QEMU {accel}{}: packets cross QEMU's user-mode network stack (slirp) and an emulated \
             virtio-net; compare policies and concurrencies within this run, never with hardware",
            if accel.starts_with("tcg") { " (TCG: emulated CPU, times are the emulator's)" } else { "" }
        ));
    }
    lines
}

fn us(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |v| if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.1}") })
}

/// `ok`, or `FAIL` with what went wrong.
pub fn check_cell(row: &NetRow) -> String {
    if row.checked() {
        if row.kind.starts_with("udp") && row.missing > 0 { format!("ok ({} lost)", row.missing) } else { "ok".into() }
    } else {
        format!(
            "FAIL {}/{} ({} wrong, {} missing, {} refused)",
            row.correct + row.full,
            row.sent,
            row.wrong,
            row.missing,
            row.refused_connections
        )
    }
}

/// The table and the caveats.
pub fn report_text(rows: &[NetRow], target: &str, accel: &str) -> String {
    let mut table = Table::new(&[
        ("policy", Align::Left),
        ("load", Align::Left),
        ("conns", Align::Right),
        ("offered/s", Align::Right),
        ("done/s", Align::Right),
        ("p50 us", Align::Right),
        ("p99 us", Align::Right),
        ("p999 us", Align::Right),
        ("n", Align::Right),
        ("full", Align::Right),
        ("send lag p99 us", Align::Right),
        ("check", Align::Left),
    ]);
    for row in rows {
        table.row(vec![
            row.policy.clone(),
            row.kind.clone(),
            row.connections.to_string(),
            row.offered_per_s.map_or("max".to_string(), format_rate),
            format_rate(row.achieved_per_s),
            us(row.p50_us),
            us(row.p99_us),
            us(row.p999_us),
            row.sent.to_string(),
            row.full.to_string(),
            us(row.send_lag_p99_us),
            check_cell(row),
        ]);
    }
    let mut out = String::new();
    let _ = writeln!(out, "network benchmark ({target}, accel={accel}): KV over TCP, UDP echo");
    out.push_str(&table.render());
    for caveat in caveats(target, accel) {
        let _ = writeln!(out, "  note: {caveat}");
    }
    out
}

/// One line per row that failed its check.
pub fn failures(rows: &[NetRow]) -> Vec<String> {
    rows.iter()
        .filter(|r| !r.checked())
        .map(|r| format!("{} {} {} c={}: {}", r.target, r.policy, r.kind, r.connections, check_cell(r)))
        .collect()
}

/// Writes `<stem>.csv`, `<stem>.json` and `<stem>.png` into `dir`.
pub fn write_outputs(json: &NetJson, dir: &Path, stem: &str) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let csv = dir.join(format!("{stem}.csv"));
    write_csv(&csv, &json.rows)?;
    let json_path = dir.join(format!("{stem}.json"));
    write_json(&json_path, json)?;
    let png = dir.join(format!("{stem}.png"));
    write_plot(json, &png)?;
    Ok(vec![csv, json_path, png])
}

const FONT: &str = "sans-serif";
const DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const COLOURS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];

fn drawing_error<E: std::fmt::Debug>(error: E) -> io::Error {
    io::Error::other(format!("plot: {error:?}"))
}

/// Two panels: closed-loop requests/s against connections, and open-loop
/// p50 (solid) and p99 (dashed) against connections, a colour per policy;
/// a black cross on a point whose row failed its reply check.
pub fn write_plot(json: &NetJson, path: &Path) -> io::Result<()> {
    let _ = register_font(FONT, FontStyle::Normal, DEJAVU_SANS);
    let root = BitMapBackend::new(path, (1400, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing_error)?;
    let heading = format!(
        "KV service ({}, accel={}): compare only within this run{}; x = failed its reply check",
        json.target,
        json.accel,
        if json.accel.starts_with("tcg") { "; TCG: emulated timing" } else { "" }
    );
    let body = root.titled(&heading, (FONT, 20)).map_err(drawing_error)?;
    let (left, right) = body.split_horizontally(700);
    let mut policies: Vec<&str> = json.rows.iter().map(|r| r.policy.as_str()).collect();
    policies.dedup();
    let max_conns = json.rows.iter().map(|r| r.connections).max().unwrap_or(1).max(2) as f64;
    let x_range = 0.0..(max_conns.log2() + 0.5);
    let conns_label = |x: &f64| {
        if (x - x.round()).abs() < 1e-6 { format!("{}", 2u64.pow(x.round().max(0.0) as u32)) } else { String::new() }
    };
    let series = |kind: &str, policy: &str, pick: &dyn Fn(&NetRow) -> Option<f64>| -> Vec<(f64, f64)> {
        json.rows
            .iter()
            .filter(|r| r.kind == kind && r.policy == policy)
            .filter_map(|r| pick(r).map(|v| ((r.connections as f64).log2(), v)))
            .collect()
    };
    let rate_max = json.rows.iter().filter(|r| r.kind == "tcp-closed").map(|r| r.achieved_per_s).fold(1.0, f64::max);
    let mut chart = ChartBuilder::on(&left)
        .caption("closed loop: requests/s", (FONT, 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range.clone(), 0.0..rate_max * 1.15)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .x_label_formatter(&conns_label)
        .label_style((FONT, 14))
        .draw()
        .map_err(drawing_error)?;
    for (index, policy) in policies.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points = series("tcp-closed", policy, &|r| Some(r.achieved_per_s));
        chart
            .draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))
            .map_err(drawing_error)?
            .label(policy.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, colour.filled()))).map_err(drawing_error)?;
        let failed = series("tcp-closed", policy, &|r| (!r.checked()).then_some(r.achieved_per_s));
        chart.draw_series(failed.iter().map(|p| Cross::new(*p, 9, BLACK.stroke_width(2)))).map_err(drawing_error)?;
    }
    chart.configure_series_labels().border_style(BLACK).label_font((FONT, 14)).draw().map_err(drawing_error)?;
    let lat_max = json.rows.iter().filter(|r| r.kind == "tcp-open").filter_map(|r| r.p99_us).fold(10.0, f64::max);
    let lat_min = json.rows.iter().filter(|r| r.kind == "tcp-open").filter_map(|r| r.p50_us).fold(lat_max, f64::min);
    let mut chart = ChartBuilder::on(&right)
        .caption("open loop: latency us (p50 solid, p99 dashed)", (FONT, 18))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range, ((lat_min / 2.0).max(1.0)..lat_max * 2.0).log_scale())
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_desc("connections")
        .x_label_formatter(&conns_label)
        .label_style((FONT, 14))
        .draw()
        .map_err(drawing_error)?;
    for (index, policy) in policies.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let p50 = series("tcp-open", policy, &|r| r.p50_us);
        let p99 = series("tcp-open", policy, &|r| r.p99_us);
        chart
            .draw_series(LineSeries::new(p50, colour.stroke_width(2)))
            .map_err(drawing_error)?
            .label(policy.to_string())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        chart.draw_series(DashedLineSeries::new(p99, 6, 4, colour.stroke_width(2))).map_err(drawing_error)?;
        let failed = series("tcp-open", policy, &|r| if r.checked() { None } else { r.p50_us });
        chart.draw_series(failed.iter().map(|p| Cross::new(*p, 9, BLACK.stroke_width(2)))).map_err(drawing_error)?;
    }
    chart.configure_series_labels().border_style(BLACK).label_font((FONT, 14)).draw().map_err(drawing_error)?;
    root.present().map_err(drawing_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(policy: &str, kind: &str, connections: usize, rate: f64, wrong: usize) -> NetRow {
        NetRow {
            target: "guest".into(),
            policy: policy.into(),
            kind: kind.into(),
            connections,
            offered_per_s: None,
            achieved_per_s: rate,
            sent: 100,
            correct: 100 - wrong,
            full: 0,
            wrong,
            missing: 0,
            refused_connections: 0,
            p50_us: Some(1000.0 / rate * 1000.0),
            p99_us: Some(4000.0 / rate * 1000.0),
            p999_us: Some(5000.0 / rate * 1000.0),
            max_us: Some(6000.0 / rate * 1000.0),
            send_lag_p99_us: None,
        }
    }

    #[test]
    fn the_files_are_written_and_a_failed_row_says_so() {
        let mut rows = Vec::new();
        for policy in ["pause", "hlt"] {
            for (c, rate) in [(1, 1000.0), (8, 3000.0), (64, 200.0)] {
                let wrong = if c == 64 { 5 } else { 0 };
                rows.push(row(policy, "tcp-closed", c, rate, wrong));
                rows.push(row(policy, "tcp-open", c, rate / 2.0, wrong));
            }
        }
        let json = NetJson {
            date: "2026-11-30T23:30Z".into(),
            target: "guest".into(),
            accel: "tcg-single".into(),
            host_cpus: Some(2),
            caveats: caveats("guest", "tcg-single"),
            rows,
        };
        let dir = std::env::temp_dir().join(format!("netload-report-{}", std::process::id()));
        let paths = write_outputs(&json, &dir, "net").unwrap();
        assert_eq!(paths.len(), 3);
        assert!(paths.iter().all(|p| p.metadata().unwrap().len() > 0));
        let back: NetJson = crate::data_files::read_json(&paths[1]).unwrap();
        assert_eq!(back.rows, json.rows);
        assert_eq!(failures(&json.rows).len(), 4);
        let text = report_text(&json.rows, "guest", "tcg-single");
        assert!(text.contains("FAIL 95/100") && text.contains("TCG"), "{text}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
