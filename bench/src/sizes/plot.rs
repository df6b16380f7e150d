//! `sizes.png`: stream bytes/s against message size, one line per path,
//! both axes logarithmic, with the floor ring's rate (64-byte structs, no
//! mover) as a dashed line. One boot per file (`sizes-run2.png`, … for
//! more): each boot has its own baseline.

use std::io;
use std::path::Path;

use plotters::prelude::*;

use super::analysis::{PATHS, SizesAnalysis};
use crate::ipc::plot::{FONT, axis_rate, ensure_font};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 650;
const COLOURS: [RGBColor; 4] =
    [RGBColor(31, 119, 180), RGBColor(214, 39, 40), RGBColor(44, 160, 44), RGBColor(255, 127, 14)];

fn drawing_error<E: std::fmt::Debug>(error: E) -> io::Error {
    io::Error::other(format!("plot: {error:?}"))
}

fn size_label(size: &f64) -> String {
    let size = size.round() as u64;
    if size >= 1024 { format!("{} KiB", size / 1024) } else { format!("{size} B") }
}

/// Draws the sweep of one boot into `path`; `heading` says which boot.
pub fn write_sizes_plot(analysis: &SizesAnalysis, heading: &str, path: &Path) -> io::Result<()> {
    ensure_font()?;
    let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing_error)?;
    let series: Vec<(&str, Vec<(f64, f64)>)> = PATHS
        .iter()
        .map(|&p| {
            let points = analysis
                .rows
                .iter()
                .filter(|r| r.path == p)
                .filter_map(|r| Some((r.size as f64, r.bytes_per_second?)))
                .collect();
            (p, points)
        })
        .collect();
    let floor = analysis.floor_stream_messages_per_second.map(|m| m * 64.0);
    let values: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|(_, y)| *y)).chain(floor).collect();
    let sizes: Vec<f64> = series.iter().flat_map(|(_, p)| p.iter().map(|(x, _)| *x)).collect();
    if values.is_empty() || sizes.is_empty() {
        root.draw(&Text::new("no sizes-stream records in this boot", (40, 60), (FONT, 18).into_font()))
            .map_err(drawing_error)?;
        return root.present().map_err(drawing_error);
    }
    let (low, high) = values.iter().fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(*v), h.max(*v)));
    let (x_low, x_high) = sizes.iter().fold((f64::INFINITY, 0.0f64), |(l, h), v| (l.min(*v), h.max(*v)));
    // The measured sizes are the x labels (64 B, 256 B, ... 64 KiB).
    let mut ticks = sizes.clone();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    let mut chart = ChartBuilder::on(&root)
        .caption(heading, (FONT, 18))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (x_low / 1.5..x_high * 1.5).log_scale().with_key_points(ticks),
            ((low / 2.0).max(1.0)..high * 2.0).log_scale(),
        )
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_label_formatter(&size_label)
        .y_label_formatter(&|v: &f64| format!("{}B/s", axis_rate(*v)))
        .x_desc("message size (log scale)")
        .y_desc("stream bytes/s, every byte checked (log scale)")
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .draw()
        .map_err(drawing_error)?;
    for (index, (name, points)) in series.iter().enumerate() {
        if points.is_empty() {
            continue;
        }
        let colour = COLOURS[index % COLOURS.len()];
        chart
            .draw_series(LineSeries::new(points.iter().copied(), colour.stroke_width(3)).point_size(5))
            .map_err(drawing_error)?
            .label(*name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], colour.stroke_width(3)));
    }
    if let Some(floor) = floor {
        chart
            .draw_series(DashedLineSeries::new(
                [x_low / 1.5, x_high * 1.5].map(|x| (x, floor)),
                8,
                6,
                BLACK.stroke_width(2),
            ))
            .map_err(drawing_error)?
            .label("floor: kernel direct ring, 64-byte structs, batch 1")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], BLACK.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 15))
        .draw()
        .map_err(drawing_error)?;
    root.present().map_err(drawing_error)
}
