//! `cargo xtask tune power`: sweeps echo's power policy in the power
//! benchmark's system (one boot per policy, the benchmark's four rates in
//! each), prints a table of round-trip p50/p99 against the share of time
//! echo's core slept with the Pareto front marked, writes
//! `target/tune/power.{png,txt}`, and with `--max-p99-us X` the policy
//! that sleeps most within that p99 at every rate, as a TOML snippet.
//!
//! Invariants: bounded — the default grid is `pause` and
//! `hlt` after 0, 5, 20, 50, 200 and 1000 us of pausing: seven boots of
//! about 30 s under single-threaded TCG), bigger grids only by flags,
//! and the plan (boots, estimate) is printed before the first boot;
//! progress after each boot. The client and the mover keep the
//! benchmark's policy, so only echo's core differs between boots.

use crate::qemu::QemuOptions;
use crate::{Error, root};
use bench::power_policy::tune::{self, GridPolicy};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The system every point boots: `power-bench/hlt.toml` with echo's
/// `[power.core.2]` replaced.
const TEMPLATE: &str = "qemu-scripts/systems/power-bench/hlt.toml";
const ECHO_CORE: usize = 2;
/// A guess for the first boot's length, replaced by the measured mean.
const FIRST_GUESS: Duration = Duration::from_secs(35);

/// What to sweep.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneOptions {
    pub sleeps: Vec<String>,
    pub pause_us: Vec<u32>,
    pub spin_polls: Vec<u32>,
    pub max_p99_us: Option<f64>,
}

impl Default for TuneOptions {
    fn default() -> Self {
        TuneOptions {
            sleeps: vec!["hlt".into()],
            pause_us: vec![0, 5, 20, 50, 200, 1000],
            spin_polls: vec![0],
            max_p99_us: None,
        }
    }
}

fn list<T: std::str::FromStr>(text: &str, flag: &str) -> Result<Vec<T>, Error> {
    text.split(',')
        .map(|w| w.trim().parse::<T>().map_err(|_| Error::new(format!("{flag}: `{w}` is not a number"))))
        .collect()
}

impl TuneOptions {
    /// `--sleep hlt,mwait --pause-us 0,20,200 --spin-polls 0,1000 --max-p99-us X`.
    pub(crate) fn parse(args: &mut crate::Args) -> Result<TuneOptions, Error> {
        let mut o = TuneOptions::default();
        if let Some(s) = args.take_value("--sleep")? {
            o.sleeps = s.split(',').map(|w| w.trim().to_string()).collect();
            if let Some(bad) = o.sleeps.iter().find(|s| !["hlt", "mwait"].contains(&s.as_str())) {
                return Err(Error::new(format!("--sleep: `{bad}`; expected hlt and/or mwait")));
            }
        }
        if let Some(s) = args.take_value("--pause-us")? {
            o.pause_us = list(&s, "--pause-us")?;
        }
        if let Some(s) = args.take_value("--spin-polls")? {
            o.spin_polls = list(&s, "--spin-polls")?;
        }
        if let Some(s) = args.take_value("--max-p99-us")? {
            o.max_p99_us = Some(
                s.parse::<f64>()
                    .ok()
                    .filter(|v| *v > 0.0)
                    .ok_or_else(|| Error::new(format!("--max-p99-us: `{s}` is not a positive number")))?,
            );
        }
        Ok(o)
    }

    /// The grid: the never-sleeping `pause` baseline, then every sleep ×
    /// spin × pause combination.
    pub fn grid(&self) -> Vec<GridPolicy> {
        let mut grid = vec![GridPolicy {
            label: "pause".into(),
            sleep: "none".into(),
            pause_us_before_sleep: 0,
            spin_polls_before_pause: 0,
        }];
        for sleep in &self.sleeps {
            for &spin in &self.spin_polls {
                for &pause in &self.pause_us {
                    grid.push(GridPolicy {
                        label: format!("{sleep}-p{pause}-s{spin}"),
                        sleep: sleep.clone(),
                        pause_us_before_sleep: pause,
                        spin_polls_before_pause: spin,
                    });
                }
            }
        }
        grid
    }
}

/// The template with echo's table replaced by `policy`'s.
pub fn system_text(template: &str, policy: &GridPolicy) -> String {
    let header = format!("[power.core.{ECHO_CORE}]");
    let mut out = String::new();
    let mut skipping = false;
    for line in template.lines() {
        if line.trim() == header {
            skipping = true;
            out.push_str(&policy.toml(ECHO_CORE));
            continue;
        }
        if skipping && line.trim_start().starts_with('[') {
            skipping = false;
            out.push('\n');
        }
        if !skipping {
            out.push_str(&line.replace("args = \"power=hlt\"", &format!("args = \"power={}\"", policy.label)));
            out.push('\n');
        }
    }
    out
}

pub fn cmd_tune(opts: &QemuOptions, o: &TuneOptions) -> Result<ExitCode, Error> {
    let grid = o.grid();
    let root = root();
    let template = std::fs::read_to_string(root.join(TEMPLATE)).map_err(|e| Error::new(format!("{TEMPLATE}: {e}")))?;
    let dir = root.join("target/tune");
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    println!(
        "tune: {} boots (echo's policy: {}), -smp 3, {}; about {} min at {} s a boot under TCG",
        grid.len(),
        grid.iter().map(|g| g.label.as_str()).collect::<Vec<_>>().join(", "),
        opts.accel,
        (FIRST_GUESS.as_secs() * grid.len() as u64).div_ceil(60),
        FIRST_GUESS.as_secs()
    );
    let build = crate::bench_build()?;
    let started = Instant::now();
    let mut runs = Vec::new();
    for (i, policy) in grid.iter().enumerate() {
        let file = dir.join(format!("{}.toml", policy.label));
        std::fs::write(&file, system_text(&template, policy))
            .map_err(|e| Error::new(format!("{}: {e}", file.display())))?;
        let boot_started = Instant::now();
        let name = format!("tune-power-{}", policy.label);
        runs.extend(crate::bench_boot(
            &build,
            opts,
            &name,
            &file.to_string_lossy(),
            &format!("power-{}", policy.label),
        )?);
        let done = i + 1;
        let mean = started.elapsed() / done as u32;
        let left = mean * (grid.len() - done) as u32;
        println!(
            "tune: point {done}/{} `{}` done in {:.0} s; about {:.0} s left",
            grid.len(),
            policy.label,
            boot_started.elapsed().as_secs_f64(),
            left.as_secs_f64()
        );
    }
    let table = bench::power_table(&runs);
    let points = tune::points(&table.rows);
    let mut text = tune::table_text(&points);
    for w in &table.warnings {
        text.push_str(&format!("warning: {w}\n"));
    }
    text.push_str("* = on the Pareto front of its rate (nothing else sleeps more with a lower p99); TCG: emulated time, compare within this sweep only\n");
    print!("{text}");
    let png = dir.join("power.png");
    let title = format!("tune power: echo's round trip vs time asleep ({}, one boot per policy)", opts.accel);
    tune::write_plot(&points, &title, &png).map_err(|e| Error::new(format!("{}: {e}", png.display())))?;
    println!("tune: wrote {}", png.display());
    if let Some(max) = o.max_p99_us {
        match tune::recommend(&points, max) {
            Some((policy, asleep, worst)) => {
                let snippet = tune::snippet(&grid, &policy, ECHO_CORE).unwrap_or_default();
                let advice = format!(
                    "tune: within p99 <= {max} us at every rate, `{policy}` sleeps most ({:.1}% on average, worst p99 {worst:.1} us); paste for echo's core:\n\n{snippet}",
                    asleep * 100.0
                );
                println!("{advice}");
                text.push_str(&advice);
            }
            None => {
                let advice = format!("tune: no swept policy keeps p99 <= {max} us at every rate\n");
                print!("{advice}");
                text.push_str(&advice);
            }
        }
    }
    let txt = dir.join("power.txt");
    std::fs::write(&txt, &text).map_err(|e| Error::new(format!("{}: {e}", txt.display())))?;
    println!("tune: wrote {}", txt.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_grid_is_small_and_starts_with_the_baseline() {
        let labels: Vec<String> = TuneOptions::default().grid().into_iter().map(|g| g.label).collect();
        assert_eq!(
            labels,
            ["pause", "hlt-p0-s0", "hlt-p5-s0", "hlt-p20-s0", "hlt-p50-s0", "hlt-p200-s0", "hlt-p1000-s0"]
        );
    }

    #[test]
    fn every_point_is_a_valid_system_that_differs_only_in_echo_s_table() {
        let template = std::fs::read_to_string(root().join(TEMPLATE)).unwrap();
        for policy in TuneOptions::default().grid() {
            let text = system_text(&template, &policy);
            let config = system_config::parse(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", policy.label));
            let echo = config.power_for_core(ECHO_CORE, system_config::PolicyRole::Server);
            assert_eq!(echo.pause_us_before_sleep, policy.pause_us_before_sleep);
            assert_eq!(echo.sleep.name(), policy.sleep);
            let base = system_config::parse(&template).unwrap();
            assert_eq!(config.power.default_mover, base.power.default_mover, "the mover keeps the benchmark's policy");
            assert!(text.contains(&format!("args = \"power={}\"", policy.label)));
        }
    }
}
