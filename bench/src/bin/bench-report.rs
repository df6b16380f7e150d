//! Re-reports a saved serial log: prints the benchmark table and writes
//! CSV, JSON and PNG files.
//!
//! Usage: `bench-report SERIAL_LOG [OUTPUT_DIR]` (default `target/bench`).
//! Exits non-zero when a row's phase counters contradict its path (a
//! same-core sync call without CR3 writes, a mover row with system calls):
//! the files are still written.
//! Set `BENCH_HOST_CPUS=N` to record how many CPUs the host that ran QEMU
//! had, if the log does not say.
//!
//! Blocks marked `system=power-<policy>` are left out of the IPC report and
//! its files (`ipc.*` then number only the other blocks) and reported in the
//! power-policy table instead (`power.csv`, `power.json`, numbered by
//! position in the log); blocks marked `system=sizes` in the message-size
//! sweep's (`sizes.csv`, `sizes-cost.csv`, `sizes.json`, `sizes.png`).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let (log_path, output_dir) = match arguments.as_slice() {
        [log] => (PathBuf::from(log), PathBuf::from("target/bench")),
        [log, dir] => (PathBuf::from(log), PathBuf::from(dir)),
        _ => {
            eprintln!("usage: bench-report SERIAL_LOG [OUTPUT_DIR]   (default OUTPUT_DIR: target/bench)");
            return ExitCode::from(2);
        }
    };
    let log = match std::fs::read(&log_path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(error) => {
            eprintln!("bench-report: cannot read {}: {error}", log_path.display());
            return ExitCode::FAILURE;
        }
    };
    let mut runs = match bench::parse(&log) {
        Ok(runs) => runs,
        Err(error) => {
            eprintln!("bench-report: {}: {error}", log_path.display());
            return ExitCode::FAILURE;
        }
    };
    if let Some(host_cpus) = std::env::var("BENCH_HOST_CPUS").ok().and_then(|value| value.parse().ok()) {
        for run in runs.iter_mut().filter(|run| run.host_cpus.is_none()) {
            run.host_cpus = Some(host_cpus);
        }
    }
    // Power boots (`system=power-<policy>`) go to the power table; the IPC
    // report, its summary and its files cover the other blocks.
    let ipc_runs: Vec<bench::Run> = runs
        .iter()
        .filter(|run| bench::power_policy::power_policy(run).is_none() && !bench::is_sizes_run(run))
        .cloned()
        .collect();
    for (index, run) in runs.iter().enumerate() {
        if bench::power_policy::power_policy(run).is_some() || bench::is_sizes_run(run) {
            continue;
        }
        if runs.len() > 1 {
            println!("==== run {} of {} ====", index + 1, runs.len());
        }
        print!("{}", bench::report_text(run));
        println!();
    }
    print!("{}", bench::summary_text(&ipc_runs));
    print!("{}", bench::sizes_report_text(&runs));
    let power_report = bench::power_report_text(&runs);
    if !power_report.is_empty() {
        print!("{power_report}");
        println!();
    }
    let written = if ipc_runs.is_empty() { Ok(Vec::new()) } else { bench::write_outputs(&ipc_runs, &output_dir) }
        .and_then(|mut paths| {
            paths.extend(bench::write_power_outputs(&runs, &output_dir)?);
            paths.extend(bench::write_sizes_outputs(&runs, &output_dir)?);
            Ok(paths)
        });
    let failures = bench::counter_failures(&ipc_runs);
    match written {
        Ok(paths) => {
            for path in paths {
                println!("wrote {}", path.display());
            }
            if failures.is_empty() {
                ExitCode::SUCCESS
            } else {
                for failure in &failures {
                    eprintln!("bench-report: counter check failed: {failure}");
                }
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("bench-report: writing into {}: {error}", output_dir.display());
            ExitCode::FAILURE
        }
    }
}
