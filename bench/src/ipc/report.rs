//! The table a person reads at the end of `cargo xtask bench`: header with
//! the caveats, latency, stream and counter tables, the zero-context-switch
//! line and the target checks.
//!
//! Each run is reported on its own: its ratios use only its own baselines.
//! When a log holds several runs, [`summary_text`] adds one table of the
//! target ratios per run with their spread (min, median, max); ratios are
//! dimensionless, so they may be set side by side even though the absolute
//! times of two boots may not.

use std::fmt::Write;

use super::analysis::{Analysis, ZeroClaim, analyze};
use super::paths::{CounterVerdict, IpcPath};
use super::record_figures::{DIRECT_STREAM, variant_text};
use crate::figures::{FLOOR_LATENCY, TargetOutcome};
use crate::serial_log::Run;
use crate::text_table::{
    Align, Table, TargetLine, bound_symbol, check_text, dash_or, format_rate, ns_text, ratio_text,
};

/// Renders one run as text (header, tables, claims, targets, warnings).
pub fn report_text(run: &Run) -> String {
    report_text_with_analysis(run, &analyze(run))
}

/// As [`report_text`], with an analysis the caller already computed.
pub fn report_text_with_analysis(run: &Run, analysis: &Analysis) -> String {
    let mut out = String::new();
    header(&mut out, run);
    if !analysis.warnings.is_empty() {
        out.push('\n');
        for warning in &analysis.warnings {
            let _ = writeln!(out, "!! WARNING: {warning}");
        }
    }
    latency_table(&mut out, analysis);
    two_hop_line(&mut out, analysis);
    stream_table(&mut out, analysis);
    counter_table(&mut out, analysis);
    for writer in run.other_records.iter().filter(|r| r.kind == "writer") {
        let field = |key: &str| writer.fields.get(key).map_or("?", String::as_str);
        let _ = writeln!(
            out,
            "ring writer (endpoint {} of benchclient) sent {} messages during {}",
            field("endpoint"),
            field("sent"),
            field("phases")
        );
    }
    row_counter_table(&mut out, analysis);
    target_list(&mut out, analysis);
    if !analysis.counter_failures.is_empty() {
        out.push('\n');
        for failure in &analysis.counter_failures {
            let _ = writeln!(out, "!! COUNTER CHECK FAILED: {failure}");
        }
    }
    out
}

/// The two two-hop rows against each other (same boot, same client):
/// sync over mover, or nothing when one is missing or failed its check.
fn two_hop_line(out: &mut String, analysis: &Analysis) {
    let row = |path: IpcPath| analysis.latencies.iter().find(|f| IpcPath::of_latency(f) == Some(path));
    let (Some(mover), Some(sync)) = (row(IpcPath::TwoHopMover), row(IpcPath::TwoHopSync)) else { return };
    if !mover.is_trustworthy() || !sync.is_trustworthy() || mover.median_ns <= 0.0 {
        return;
    }
    let _ = writeln!(
        out,
        "two hops, same boot: path=sync median {:.1} ns / path=mover median {:.1} ns = {:.2}",
        sync.median_ns,
        mover.median_ns,
        sync.median_ns / mover.median_ns
    );
}

/// `0.0000`-style count per operation, `0` for zero, `-` when unknown.
fn per_operation_text(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |value| if value == 0.0 { "0".to_string() } else { format!("{value:.2}") })
}

fn row_counter_table(out: &mut String, analysis: &Analysis) {
    if analysis.row_counters.is_empty() {
        return;
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "Counters per row (phase counters summed over cores, per round trip / message / call): the positive control"
    );
    let mut table = Table::new(&[
        ("row", Align::Left),
        ("phase", Align::Left),
        ("per", Align::Left),
        ("n", Align::Right),
        ("cr3", Align::Right),
        ("syscalls", Align::Right),
        ("irq", Align::Right),
        ("path must show", Align::Left),
        ("verdict", Align::Left),
    ]);
    for row in &analysis.row_counters {
        table.row(vec![
            row.row.clone(),
            row.phase.clone(),
            row.per.clone(),
            row.operations.to_string(),
            per_operation_text(row.cr3_writes_per_operation),
            per_operation_text(row.syscalls_per_operation),
            per_operation_text(row.interrupts_per_operation),
            row.expectation.text(),
            match row.verdict {
                CounterVerdict::Consistent => "ok",
                CounterVerdict::Contradicts => "CONTRADICTS",
                CounterVerdict::NotReported => "not reported",
            }
            .to_string(),
        ]);
    }
    out.push_str(&table.render());
}

/// The counter contradictions of every run, one line each, prefixed by the
/// run number when there are several: the caller exits non-zero when this
/// is not empty.
pub fn counter_failures(runs: &[Run]) -> Vec<String> {
    let mut failures = Vec::new();
    for (index, run) in runs.iter().enumerate() {
        for failure in analyze(run).counter_failures {
            if runs.len() > 1 {
                failures.push(format!("run {}: {failure}", index + 1));
            } else {
                failures.push(failure);
            }
        }
    }
    failures
}

fn header(out: &mut String, run: &Run) {
    let lines = match run.end_line {
        Some(end) => format!("serial log lines {}-{end}", run.begin_line),
        None => format!("serial log line {}-, CUT SHORT", run.begin_line),
    };
    // The boot's system (`ipc`, `ipc-writers`, `ipc-twohop`): its rows are
    // compared only with each other.
    let system = run.begin_extra.get("system").map_or(String::new(), |system| format!("system={system}, "));
    let _ = writeln!(out, "IPC benchmark ({system}{lines}), date {}", run.date.as_deref().unwrap_or("unknown"));
    let _ = writeln!(
        out,
        "accel={} cpu={} smp={} | TSC {:.3} GHz (calibrated from {})",
        run.accel,
        run.cpu.as_deref().unwrap_or("?"),
        run.smp.map_or("?".to_string(), |smp| smp.to_string()),
        run.tsc_hz as f64 / 1e9,
        run.tsc_source.as_deref().unwrap_or("unknown source"),
    );
    let accel_note = match run.accel.as_str() {
        "tcg" => {
            "TCG is software emulation: times are emulated, comparable only within this boot (read the ratios), never as hardware figures."
        }
        "tcg-single" => {
            "TCG, single-threaded: one host thread runs every vCPU round-robin and `pause` hands it on, so host scheduling does not enter; times are emulated, comparable only within this boot (read the ratios), never as hardware figures."
        }
        "kvm" => {
            "KVM: guest code runs on the host CPU, but the host is shared; compare ratios within this boot, not absolute times across boots."
        }
        _ => "accelerator not known: treat times as comparable only within this boot (read the ratios).",
    };
    let _ = writeln!(out, "NOTE: {accel_note}");
    let tail_note = match (run.smp, run.host_cpus) {
        _ if run.accel == "tcg-single" => {
            "all vCPUs share one host thread, so the host core count does not matter; tails show the emulator's round-robin, not cache behaviour.".to_string()
        }
        (Some(smp), Some(host)) if smp > host => format!(
            "{smp} vCPUs on {host} host CPUs: more vCPUs than host cores make tails meaningless (p99 and max are host time slices)."
        ),
        (Some(smp), Some(host)) => format!(
            "{smp} vCPUs on {host} host CPUs; more vCPUs than host cores would make tails meaningless, and a shared host still adds noise."
        ),
        _ => "more vCPUs than host cores make tails meaningless (p99 and max become host time slices); host core count not recorded.".to_string(),
    };
    let _ = writeln!(out, "NOTE: {tail_note}");
}

fn latency_table(out: &mut String, analysis: &Analysis) {
    out.push('\n');
    match analysis.floor_median_ns {
        Some(floor) => {
            let _ = writeln!(
                out,
                "Latency, round trip (floor = {FLOOR_LATENCY} median {floor:.1} ns RTT, {:.1} ns one-way;\n  one-way = median/2, so one-way/floor one-way = median/floor)",
                floor / 2.0
            );
        }
        None => {
            let _ = writeln!(out, "Latency, round trip (no {FLOOR_LATENCY} floor in this run)");
        }
    }
    if analysis.latencies.is_empty() {
        let _ = writeln!(out, "  (no latency records)");
        return;
    }
    let mut table = Table::new(&[
        ("name", Align::Left),
        ("what", Align::Left),
        ("n", Align::Right),
        ("check", Align::Left),
        ("median ns", Align::Right),
        ("p99 ns", Align::Right),
        ("median/floor", Align::Right),
        ("one-way ns", Align::Right),
        ("vs mover", Align::Right),
        ("tsc back", Align::Right),
    ]);
    for figure in &analysis.latencies {
        table.row(vec![
            figure.name.clone(),
            variant_text(figure.rings, None, &figure.variant),
            figure.n.to_string(),
            check_text(figure.check, figure.ok, figure.n),
            format!("{:.1}", figure.median_ns),
            format!("{:.1}", figure.p99_ns),
            ratio_text(figure.median_over_floor),
            format!("{:.1}", figure.one_way_ns),
            ratio_text(figure.over_mover),
            dash_or(figure.tsc_backwards),
        ]);
    }
    out.push_str(&table.render());
}

fn stream_table(out: &mut String, analysis: &Analysis) {
    out.push('\n');
    match analysis.direct_stream_messages_per_second {
        Some(rate) => {
            let _ = writeln!(out, "Streams (baseline = {DIRECT_STREAM} batch=1, {} msg/s)", format_rate(rate));
        }
        None => {
            let _ = writeln!(out, "Streams (no {DIRECT_STREAM} batch=1 baseline in this run)");
        }
    }
    if analysis.streams.is_empty() {
        let _ = writeln!(out, "  (no stream records)");
        return;
    }
    let mut table = Table::new(&[
        ("name", Align::Left),
        ("what", Align::Left),
        ("n", Align::Right),
        ("check", Align::Left),
        ("msg/s", Align::Right),
        ("ns/msg", Align::Right),
        ("vs direct b1", Align::Right),
        ("vs mover", Align::Right),
        ("cores", Align::Right),
        ("per core used/s", Align::Right),
    ]);
    for figure in &analysis.streams {
        table.row(vec![
            figure.name.clone(),
            variant_text(figure.rings, figure.batch, &figure.variant),
            figure.n.to_string(),
            check_text(figure.check, figure.ok, figure.n),
            format_rate(figure.messages_per_second),
            ns_text(figure.ns_per_message),
            ratio_text(figure.over_direct_stream),
            ratio_text(figure.over_mover),
            dash_or(figure.cores_used),
            figure.per_core_per_second.map_or("-".to_string(), format_rate),
        ]);
    }
    out.push_str(&table.render());
}

fn per_message_text(value: Option<f64>) -> String {
    value.map_or("-".to_string(), |value| if value == 0.0 { "0".to_string() } else { format!("{value:.4}") })
}

fn counter_table(out: &mut String, analysis: &Analysis) {
    out.push('\n');
    let _ = writeln!(out, "Counters per phase and core during measurement");
    if analysis.counters.is_empty() {
        let _ = writeln!(out, "  (no counters records)");
    } else {
        let mut table = Table::new(&[
            ("phase", Align::Left),
            ("core", Align::Right),
            ("role", Align::Left),
            ("messages", Align::Right),
            ("cr3 writes", Align::Right),
            ("syscalls", Align::Right),
            ("interrupts", Align::Right),
            ("exceptions", Align::Right),
            ("cr3/msg", Align::Right),
            ("syscalls/msg", Align::Right),
            ("irq/msg", Align::Right),
        ]);
        for figure in &analysis.counters {
            table.row(vec![
                figure.phase.clone(),
                figure.core.to_string(),
                dash_or(figure.role.clone()),
                dash_or(figure.messages),
                dash_or(figure.cr3_writes),
                dash_or(figure.syscalls),
                dash_or(figure.interrupts),
                dash_or(figure.exceptions),
                per_message_text(figure.cr3_writes_per_message),
                per_message_text(figure.syscalls_per_message),
                per_message_text(figure.interrupts_per_message),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&claim_line("context switches (CR3 writes)", &analysis.context_switches));
    out.push_str(&claim_line("syscalls", &analysis.syscalls));
}

/// `context switches (CR3 writes) on client/mover cores during measurement: 0`
/// or the non-zero counts.
pub fn claim_line(what: &str, claim: &ZeroClaim) -> String {
    let cores = if claim.roles.is_empty() { "measured".to_string() } else { claim.roles.join("/") };
    match claim.total {
        None => format!("{what} on {cores} cores during measurement: NOT REPORTED\n"),
        Some(0) => format!("{what} on {cores} cores during measurement: 0\n"),
        Some(total) => {
            let places: Vec<String> = claim
                .nonzero
                .iter()
                .map(|(phase, core, role, count)| {
                    format!(
                        "{phase} core {core}{}: {count}",
                        role.as_ref().map_or(String::new(), |role| format!(" ({role})"))
                    )
                })
                .collect();
            format!("{what} on {cores} cores during measurement: {total} (NOT ZERO: {})\n", places.join(", "))
        }
    }
}

fn target_list(out: &mut String, analysis: &Analysis) {
    out.push('\n');
    let _ = writeln!(out, "Targets (measured ratios in this boot, not asserted)");
    for check in &analysis.targets {
        TargetLine {
            outcome: check.outcome,
            description: &check.description,
            measured: &check.measured.map_or("-".to_string(), |value| format!("{value:.2}x")),
            bound: check.bound,
            limit: &format!("{:.1}x", check.limit),
            not_applicable_because: check.not_applicable_because.as_deref(),
            detail: &check.detail,
        }
        .write(out);
    }
}

/// One table of every run's target ratios with min, median and max across
/// runs; empty when the log holds fewer than two runs.
pub fn summary_text(runs: &[Run]) -> String {
    if runs.len() < 2 {
        return String::new();
    }
    let analyses: Vec<Analysis> = runs.iter().map(analyze).collect();
    let mut out = format!("Target ratios across {} runs (each ratio within its own boot)\n", runs.len());
    let mut headers: Vec<(String, Align)> =
        vec![("target".to_string(), Align::Left), ("limit".to_string(), Align::Right)];
    for index in 1..=runs.len() {
        headers.push((format!("run {index}"), Align::Right));
    }
    for name in ["min", "median", "max", "met"] {
        headers.push((name.to_string(), Align::Right));
    }
    let header_refs: Vec<(&str, Align)> = headers.iter().map(|(name, align)| (name.as_str(), *align)).collect();
    let mut table = Table::new(&header_refs);
    for (target_index, first) in analyses[0].targets.iter().enumerate() {
        let mut row = vec![first.id.clone(), format!("{} {:.1}x", bound_symbol(first.bound), first.limit)];
        let mut measured: Vec<f64> = Vec::new();
        let mut met = 0;
        for analysis in &analyses {
            let check = &analysis.targets[target_index];
            row.push(ratio_text(check.measured));
            measured.extend(check.measured);
            met += usize::from(check.outcome == TargetOutcome::Met);
        }
        measured.sort_by(f64::total_cmp);
        let median = (!measured.is_empty()).then(|| {
            let middle = measured.len() / 2;
            if measured.len() % 2 == 1 { measured[middle] } else { (measured[middle - 1] + measured[middle]) / 2.0 }
        });
        row.push(ratio_text(measured.first().copied()));
        row.push(ratio_text(median));
        row.push(ratio_text(measured.last().copied()));
        row.push(format!("{met}/{}", runs.len()));
        table.row(row);
    }
    out.push_str(&table.render());
    out
}
