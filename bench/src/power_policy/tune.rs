//! `cargo xtask tune power`: the sweep's points (one per policy × rate),
//! the Pareto front of round-trip p99 against the share of time echo's
//! core slept, the recommendation for a p99 budget as a TOML snippet, and
//! the plot.
//!
//! A point is better when it sleeps more and its p99 is lower; the front is
//! the points no other point of the same rate beats on both. Latencies are
//! of one boot each (TCG: emulated time); shares are the kernel's ticks.
//! Invariants: a point with unchecked replies or without figures is never
//! on the front and never recommended; nothing panics on missing figures.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

use plotters::prelude::*;
use plotters::style::register_font;

use super::rows::PowerRow;

/// One swept policy: the keys written into `[power.core.N]` of echo's core.
#[derive(Debug, Clone, PartialEq)]
pub struct GridPolicy {
    /// Short name used as the boot's tag (`hlt-p50-s0`).
    pub label: String,
    pub sleep: String,
    pub pause_us_before_sleep: u32,
    pub spin_polls_before_pause: u32,
}

impl GridPolicy {
    /// The `[power.core.N]` table for this policy.
    pub fn toml(&self, core: usize) -> String {
        format!(
            "[power.core.{core}]\nsleep = \"{}\"\nspin_polls_before_pause = {}\npause_us_before_sleep = {}\n",
            self.sleep, self.spin_polls_before_pause, self.pause_us_before_sleep
        )
    }
}

/// One point of the sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct TunePoint {
    pub policy: String,
    pub interval_us: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Share of echo's core asleep, 0..=1.
    pub asleep: f64,
    pub trustworthy: bool,
    pub on_front: bool,
}

/// Points from the power table's rows (rows without a round trip or a
/// share are left out).
pub fn points(rows: &[PowerRow]) -> Vec<TunePoint> {
    let mut out: Vec<TunePoint> = rows
        .iter()
        .filter_map(|r| {
            Some(TunePoint {
                policy: r.policy.clone(),
                interval_us: r.interval_us,
                p50_us: r.rtt_median_ns? / 1000.0,
                p99_us: r.rtt_p99_ns? / 1000.0,
                // A sleep that began before the phase counts whole in it:
                // a share can pass 1 by a little, and is shown as 100 %.
                asleep: r.echo_asleep?.clamp(0.0, 1.0),
                trustworthy: r.is_trustworthy(),
                on_front: false,
            })
        })
        .collect();
    mark_front(&mut out);
    out
}

/// Marks the Pareto front within each rate.
pub fn mark_front(points: &mut [TunePoint]) {
    let snapshot: Vec<TunePoint> = points.to_vec();
    for p in points.iter_mut() {
        p.on_front = p.trustworthy
            && !snapshot.iter().any(|q| {
                q.trustworthy
                    && q.interval_us == p.interval_us
                    && q.p99_us <= p.p99_us
                    && q.asleep >= p.asleep
                    && (q.p99_us < p.p99_us || q.asleep > p.asleep)
            });
    }
}

/// The policy that sleeps most while every one of its points (every rate)
/// keeps p99 within `max_p99_us`; ties go to the lower worst p99.
pub fn recommend(points: &[TunePoint], max_p99_us: f64) -> Option<(String, f64, f64)> {
    let mut policies: Vec<&str> = points.iter().map(|p| p.policy.as_str()).collect();
    policies.sort();
    policies.dedup();
    let mut best: Option<(String, f64, f64)> = None;
    for policy in policies {
        let mine: Vec<&TunePoint> = points.iter().filter(|p| p.policy == policy).collect();
        if mine.is_empty() || mine.iter().any(|p| !p.trustworthy || p.p99_us > max_p99_us) {
            continue;
        }
        let asleep = mine.iter().map(|p| p.asleep).sum::<f64>() / mine.len() as f64;
        let worst = mine.iter().map(|p| p.p99_us).fold(0.0, f64::max);
        let better = match &best {
            None => true,
            Some((_, a, w)) => asleep > *a + 1e-9 || ((asleep - a).abs() <= 1e-9 && worst < *w),
        };
        if better {
            best = Some((policy.to_string(), asleep, worst));
        }
    }
    best
}

/// The table: one line per point, the front marked with `*`.
pub fn table_text(points: &[TunePoint]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>10} {:>10} {:>8} {:>6}",
        "policy", "rate", "p50 us", "p99 us", "asleep", "front"
    );
    let mut sorted: Vec<&TunePoint> = points.iter().collect();
    sorted.sort_by(|a, b| a.interval_us.cmp(&b.interval_us).then(a.policy.cmp(&b.policy)));
    for p in sorted {
        let rate = if p.interval_us == 0 { "back-to-back".to_string() } else { format!("1/{} us", p.interval_us) };
        let _ = writeln!(
            out,
            "{:<24} {:>10} {:>10.1} {:>10.1} {:>7.1}% {:>6}{}",
            p.policy,
            rate,
            p.p50_us,
            p.p99_us,
            p.asleep * 100.0,
            if p.on_front { "*" } else { "" },
            if p.trustworthy { "" } else { "  (replies not all checked)" }
        );
    }
    out
}

/// The snippet to paste for `policy` (a grid label) on `core`.
pub fn snippet(grid: &[GridPolicy], policy: &str, core: usize) -> Option<String> {
    grid.iter().find(|g| g.label == policy).map(|g| g.toml(core))
}

const FONT: &str = "sans-serif";
const DEJAVU_SANS: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");

fn drawing_error<E: std::fmt::Debug>(error: E) -> io::Error {
    io::Error::other(format!("plot: {error:?}"))
}

/// The PNG: p50 (circles) and p99 (filled) against the share asleep, one
/// colour per rate, the front's p99 points joined and ringed.
pub fn write_plot(points: &[TunePoint], title: &str, path: &Path) -> io::Result<()> {
    let _ = register_font(FONT, FontStyle::Normal, DEJAVU_SANS);
    let root = BitMapBackend::new(path, (1000, 650)).into_drawing_area();
    root.fill(&WHITE).map_err(drawing_error)?;
    let max_us = points.iter().map(|p| p.p99_us).fold(1.0, f64::max) * 1.2;
    let min_us = points.iter().map(|p| p.p50_us).fold(max_us, f64::min).max(0.01) / 1.5;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 18))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..100f64, (min_us..max_us).log_scale())
        .map_err(drawing_error)?;
    chart
        .configure_mesh()
        .x_desc("echo's core asleep (% of the time)")
        .y_desc("round trip (us, log)")
        .label_style((FONT, 14))
        .draw()
        .map_err(drawing_error)?;
    let mut rates: Vec<u64> = points.iter().map(|p| p.interval_us).collect();
    rates.sort();
    rates.dedup();
    let colours = [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)];
    for (i, rate) in rates.iter().enumerate() {
        let colour = colours[i % colours.len()];
        let mine: Vec<&TunePoint> = points.iter().filter(|p| p.interval_us == *rate).collect();
        let name = if *rate == 0 { "back-to-back".to_string() } else { format!("1 per {rate} us") };
        chart
            .draw_series(mine.iter().map(|p| Circle::new((p.asleep * 100.0, p.p99_us), 5, colour.filled())))
            .map_err(drawing_error)?
            .label(format!("{name}: p99 (filled), p50 (open)"))
            .legend(move |(x, y)| Circle::new((x, y), 5, colour.filled()));
        chart
            .draw_series(mine.iter().map(|p| Circle::new((p.asleep * 100.0, p.p50_us), 4, colour.stroke_width(1))))
            .map_err(drawing_error)?;
        let mut front: Vec<(f64, f64)> =
            mine.iter().filter(|p| p.on_front).map(|p| (p.asleep * 100.0, p.p99_us)).collect();
        front.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart.draw_series(LineSeries::new(front.clone(), colour.stroke_width(2))).map_err(drawing_error)?;
        chart
            .draw_series(front.iter().map(|&(x, y)| Circle::new((x, y), 9, colour.stroke_width(2))))
            .map_err(drawing_error)?;
    }
    chart
        .configure_series_labels()
        .label_font((FONT, 13))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(drawing_error)?;
    root.present().map_err(drawing_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(policy: &str, interval_us: u64, p99_us: f64, asleep: f64) -> TunePoint {
        TunePoint {
            policy: policy.into(),
            interval_us,
            p50_us: p99_us / 2.0,
            p99_us,
            asleep,
            trustworthy: true,
            on_front: false,
        }
    }

    #[test]
    fn the_front_is_what_nothing_beats_on_both_within_a_rate() {
        let mut p = vec![
            point("pause", 10, 20.0, 0.0),
            point("hlt-0", 10, 80.0, 0.9),
            point("hlt-50", 10, 30.0, 0.5),
            point("hlt-bad", 10, 90.0, 0.4),
            point("hlt-0", 100, 500.0, 0.1),
        ];
        mark_front(&mut p);
        let front: Vec<(&str, u64)> =
            p.iter().filter(|p| p.on_front).map(|p| (p.policy.as_str(), p.interval_us)).collect();
        assert_eq!(front, [("pause", 10), ("hlt-0", 10), ("hlt-50", 10), ("hlt-0", 100)]);
    }

    #[test]
    fn the_recommendation_sleeps_most_within_the_budget_at_every_rate() {
        let mut p = vec![point("pause", 10, 20.0, 0.0), point("hlt-0", 10, 80.0, 0.9), point("hlt-50", 10, 30.0, 0.5)];
        p.push(point("hlt-50", 100, 40.0, 0.7));
        p.push(point("hlt-0", 100, 120.0, 0.95));
        mark_front(&mut p);
        assert_eq!(recommend(&p, 50.0).map(|r| r.0), Some("hlt-50".to_string()));
        assert_eq!(recommend(&p, 200.0).map(|r| r.0), Some("hlt-0".to_string()));
        assert_eq!(recommend(&p, 10.0), None);
        p[1].trustworthy = false;
        assert_eq!(recommend(&p, 200.0).map(|r| r.0), Some("hlt-50".to_string()), "unchecked replies never win");
    }

    #[test]
    fn the_snippet_is_a_power_core_table_that_parses_as_one() {
        let g = GridPolicy {
            label: "hlt-p20-s0".into(),
            sleep: "hlt".into(),
            pause_us_before_sleep: 20,
            spin_polls_before_pause: 0,
        };
        let text = snippet(std::slice::from_ref(&g), "hlt-p20-s0", 2).unwrap();
        assert_eq!(text, "[power.core.2]\nsleep = \"hlt\"\nspin_polls_before_pause = 0\npause_us_before_sleep = 20\n");
        let table = table_text(&[point("hlt-p20-s0", 0, 12.0, 0.25)]);
        assert!(table.contains("back-to-back") && table.contains("25.0%"), "{table}");
    }

    #[test]
    fn the_plot_is_written() {
        let dir = std::env::temp_dir().join(format!("tune-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut p = vec![point("pause", 10, 20.0, 0.0), point("hlt-0", 10, 80.0, 0.9), point("hlt-0", 0, 15.0, 0.1)];
        mark_front(&mut p);
        let path = dir.join("tune.png");
        write_plot(&p, "test", &path).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 1000);
    }
}
