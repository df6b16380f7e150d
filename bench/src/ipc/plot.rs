//! PNG plots of a run: mover round trip against the number of rings, and
//! stream rate against batch size.
//!
//! One PNG per run, two panels side by side: `ipc.png` when the log holds
//! one run, `ipc-run1.png`, `ipc-run2.png`, … otherwise (each run has its
//! own baselines, so runs are not overlaid).
//!
//! Left panel: `mover-rtt` median and p99 in ns (log y) against rings
//! (log2 x), with the `cacheline-pingpong` median (the floor) and the
//! `direct-ring-rtt` median as horizontal lines, and every other compared
//! path (sync calls, the ring between two servers, two hops, mover rows
//! with written extra rings) dashed at its median. Right panel: messages/s
//! (linear y from 0) against batch (log2 x), one line per row label
//! without its batch (a sync-call stream is one point), with the
//! `direct-ring-stream` batch-1 rate as a horizontal line.
//!
//! Text is drawn with the DejaVu Sans font shipped in `fonts/` (Bitstream
//! Vera licence, see `fonts/DejaVuSans-LICENSE.txt`), so no system font
//! library is needed.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;
use plotters::style::register_font;

use super::analysis::{Analysis, analyze};
use super::paths::IpcPath;
use super::record_figures::{DIRECT_STREAM, MOVER_RTT, row_label};
use super::targets::is_empty_ring_row;
use crate::figures::FLOOR_LATENCY;
use crate::serial_log::Run;
use crate::text_table::si_scaled;

pub(crate) const FONT: &str = "sans-serif";
const DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
const WIDTH: u32 = 1400;
const HEIGHT: u32 = 600;

const MEDIAN_COLOUR: RGBColor = RGBColor(31, 119, 180);
const P99_COLOUR: RGBColor = RGBColor(214, 39, 40);
const FLOOR_COLOUR: RGBColor = RGBColor(40, 40, 40);
const DIRECT_COLOUR: RGBColor = RGBColor(44, 160, 44);
const SERIES_COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

pub(crate) fn ensure_font() -> io::Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let registered = *REGISTERED.get_or_init(|| register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok());
    if registered { Ok(()) } else { Err(io::Error::other("the shipped DejaVu Sans font did not load")) }
}

fn drawing_error<E: std::fmt::Debug>(error: E) -> io::Error {
    io::Error::other(format!("plot: {error:?}"))
}

/// Writes one PNG per run into `dir` (created if needed); returns the paths.
pub fn write_plots(runs: &[Run], dir: &Path) -> io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut paths = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        let name = if runs.len() == 1 { "ipc.png".to_string() } else { format!("ipc-run{}.png", index + 1) };
        let path = dir.join(name);
        let title =
            if runs.len() == 1 { "IPC benchmark".to_string() } else { format!("IPC benchmark, run {}", index + 1) };
        write_run_plot(run, &title, &path)?;
        paths.push(path);
    }
    Ok(paths)
}

/// Draws the two panels of one run into a PNG at `path`.
pub fn write_run_plot(run: &Run, title: &str, path: &Path) -> io::Result<()> {
    ensure_font()?;
    let analysis = analyze(run);
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing_error)?;
    let accel_note = if run.accel == "tcg" {
        "TCG: emulated timing, compare only within one boot"
    } else {
        "compare only within one boot"
    };
    let heading = format!(
        "{title}: accel={} smp={} tsc={:.3} GHz ({})  |  {accel_note}",
        run.accel,
        run.smp.map_or("?".to_string(), |smp| smp.to_string()),
        run.tsc_hz as f64 / 1e9,
        run.tsc_source.as_deref().unwrap_or("?"),
    );
    let body = root.titled(&heading, (FONT, 20)).map_err(drawing_error)?;
    let (left, right) = body.split_horizontally(WIDTH / 2);
    latency_panel(&left, &analysis)?;
    stream_panel(&right, &analysis)?;
    root.present().map_err(drawing_error)?;
    Ok(())
}

fn log2_label(value: &f64) -> String {
    if (value - value.round()).abs() < 1e-6 && *value >= 0.0 {
        format!("{}", 2u64.pow(value.round() as u32))
    } else {
        String::new()
    }
}

/// The values 1, 2, 5, 10, 20, 50, … that fall between `low` and `high`:
/// labels for a log axis.
/// A narrow range gets every 1…9 multiple instead, so it still has labels.
fn one_two_five_steps(low: f64, high: f64) -> Vec<f64> {
    let steps_with = |factors: &[f64]| {
        let mut steps = Vec::new();
        let mut decade = 10f64.powi(low.log10().floor() as i32);
        while decade <= high {
            steps.extend(factors.iter().map(|factor| factor * decade).filter(|step| (low..=high).contains(step)));
            decade *= 10.0;
        }
        steps
    };
    let coarse = steps_with(&[1.0, 2.0, 5.0]);
    if coarse.len() >= 3 { coarse } else { steps_with(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]) }
}

/// Axis label for a rate: `8 M`, `7.5 M`, `250 k`.
pub(crate) fn axis_rate(per_second: f64) -> String {
    let (scaled, prefix) = si_scaled(per_second);
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{prefix}")
}

/// The legend box of a panel, upper left.
fn draw_legend<'a, CT: CoordTranslate>(chart: &mut ChartContext<'a, BitMapBackend<'a>, CT>) -> io::Result<()> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 15))
        .draw()
        .map_err(drawing_error)
}

fn empty_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, message: &str) -> io::Result<()> {
    area.draw(&Text::new(message.to_string(), (40, 60), (FONT, 18).into_font())).map_err(drawing_error)
}

fn latency_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, analysis: &Analysis) -> io::Result<()> {
    let mut mover: Vec<(f64, f64, f64)> = analysis
        .latencies
        .iter()
        .filter(|figure| figure.name == MOVER_RTT && is_empty_ring_row(figure.variant.extra.as_deref()))
        .map(|figure| (f64::from(figure.rings.unwrap_or(1).max(1)).log2(), figure.median_ns, figure.p99_ns))
        .collect();
    mover.sort_by(|a, b| a.0.total_cmp(&b.0));
    if mover.is_empty() {
        return empty_panel(area, "no mover-rtt records in this run");
    }
    let floor = analysis.floor_median_ns;
    let direct =
        analysis.latencies.iter().find(|figure| figure.name == "direct-ring-rtt").map(|figure| figure.median_ns);
    // Every other compared path as a horizontal line at its median: sync
    // calls, the ring between two servers, two hops, written extra rings.
    let others: Vec<(String, f64)> = analysis
        .latencies
        .iter()
        .filter(|figure| {
            let compared = IpcPath::of_latency(figure)
                .is_some_and(|path| !matches!(path, IpcPath::Mover | IpcPath::KernelDirectRing));
            let written = figure.name == MOVER_RTT && !is_empty_ring_row(figure.variant.extra.as_deref());
            compared || written
        })
        .map(|figure| (row_label(&figure.name, figure.rings, None, &figure.variant), figure.median_ns))
        .collect();
    let values = mover
        .iter()
        .flat_map(|(_, median, p99)| [*median, *p99])
        .chain(floor)
        .chain(direct)
        .chain(others.iter().map(|(_, median)| *median));
    let (low, high) = values.fold((f64::INFINITY, 0.0f64), |(low, high), value| (low.min(value), high.max(value)));
    let low = (low * 0.6).max(0.1);
    let high = (high * 1.8).max(low * 10.0);
    let max_log2 = mover.last().map_or(0.0, |point| point.0).max(1.0);

    let mut chart = ChartBuilder::on(area)
        .caption("mover round trip vs rings on the mover", (FONT, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(
            -0.3..max_log2 + 0.3,
            (low..high).log_scale().with_key_points(one_two_five_steps(low, high)),
        )
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_labels(max_log2 as usize + 1)
        .x_label_formatter(&log2_label)
        .y_label_formatter(&|ns: &f64| format!("{ns:.0}"))
        .x_desc("rings (log2 scale)")
        .y_desc("round trip, ns (log scale)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(drawing_error)?;

    let x_span = [-0.3, max_log2 + 0.3];
    chart
        .draw_series(
            LineSeries::new(mover.iter().map(|(x, median, _)| (*x, *median)), MEDIAN_COLOUR.stroke_width(3))
                .point_size(4),
        )
        .map_err(drawing_error)?
        .label("mover-rtt median")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], MEDIAN_COLOUR.stroke_width(3)));
    chart
        .draw_series(
            LineSeries::new(mover.iter().map(|(x, _, p99)| (*x, *p99)), P99_COLOUR.stroke_width(2)).point_size(3),
        )
        .map_err(drawing_error)?
        .label("mover-rtt p99")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], P99_COLOUR.stroke_width(2)));
    if let Some(direct) = direct {
        chart
            .draw_series(DashedLineSeries::new(x_span.map(|x| (x, direct)), 8, 6, DIRECT_COLOUR.stroke_width(2)))
            .map_err(drawing_error)?
            .label("direct-ring-rtt median (no mover)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], DIRECT_COLOUR.stroke_width(2)));
    }
    for (index, (label, median)) in others.iter().enumerate() {
        let colour = SERIES_COLOURS[(index + 1) % SERIES_COLOURS.len()];
        chart
            .draw_series(DashedLineSeries::new(x_span.map(|x| (x, *median)), 12, 4, colour.stroke_width(2)))
            .map_err(drawing_error)?
            .label(format!("{label} median"))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(2)));
    }
    if let Some(floor) = floor {
        chart
            .draw_series(DashedLineSeries::new(x_span.map(|x| (x, floor)), 4, 4, FLOOR_COLOUR.stroke_width(2)))
            .map_err(drawing_error)?
            .label(format!("{FLOOR_LATENCY} median (floor)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], FLOOR_COLOUR.stroke_width(2)));
    }
    draw_legend(&mut chart)
}

/// A line of the stream panel: the row's label without its batch.
type StreamSeriesKey = String;

fn stream_panel(area: &DrawingArea<BitMapBackend<'_>, Shift>, analysis: &Analysis) -> io::Result<()> {
    let mut series: BTreeMap<StreamSeriesKey, Vec<(f64, f64)>> = BTreeMap::new();
    for figure in &analysis.streams {
        let batch = f64::from(figure.batch.unwrap_or(1).max(1)).log2();
        series
            .entry(row_label(&figure.name, figure.rings, None, &figure.variant))
            .or_default()
            .push((batch, figure.messages_per_second));
    }
    if series.is_empty() {
        return empty_panel(area, "no stream records in this run");
    }
    for points in series.values_mut() {
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    let high = series.values().flatten().map(|point| point.1).fold(0.0f64, f64::max) * 1.25;
    let high = if high > 0.0 { high } else { 1.0 };
    let max_log2 = series.values().flatten().map(|point| point.0).fold(0.0f64, f64::max).max(1.0);

    let mut chart = ChartBuilder::on(area)
        .caption("stream rate vs batch size", (FONT, 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(84)
        .build_cartesian_2d(-0.3..max_log2 + 0.3, 0.0..high)
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_labels(max_log2 as usize + 1)
        .x_label_formatter(&log2_label)
        .y_label_formatter(&|rate: &f64| axis_rate(*rate))
        .x_desc("batch (messages per publish, log2 scale)")
        .y_desc("messages/s")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(drawing_error)?;

    for (index, (label, points)) in series.iter().enumerate() {
        let colour = SERIES_COLOURS[index % SERIES_COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(3)).point_size(5))
            .map_err(drawing_error)?
            .label(label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3)));
    }
    if let Some(direct) = analysis.direct_stream_messages_per_second {
        chart
            .draw_series(DashedLineSeries::new(
                [-0.3, max_log2 + 0.3].map(|x| (x, direct)),
                8,
                6,
                DIRECT_COLOUR.stroke_width(2),
            ))
            .map_err(drawing_error)?
            .label(format!("{DIRECT_STREAM} batch=1 (baseline)"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], DIRECT_COLOUR.stroke_width(2)));
    }
    draw_legend(&mut chart)
}
