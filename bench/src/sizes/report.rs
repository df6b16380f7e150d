//! The size sweep as text: the header, the table per size and path, the
//! cost rows, the targets.

use std::fmt::Write;

use super::analysis::{SizesAnalysis, analyze_sizes, is_sizes_run};
use crate::serial_log::Run;
use crate::text_table::{Align, Table, TargetLine, check_text, format_rate, ns_text, ratio_text};

fn size_cell(size: u64) -> String {
    if size >= 1024 && size.is_multiple_of(1024) { format!("{} KiB", size / 1024) } else { format!("{size} B") }
}

fn rate(value: Option<f64>, unit: &str) -> String {
    value.map_or("-".to_string(), |v| format!("{}{unit}", format_rate(v)))
}

/// The report of every sweep boot in `runs` (empty if there is none).
pub fn sizes_report_text(runs: &[Run]) -> String {
    let mut out = String::new();
    for run in runs.iter().filter(|r| is_sizes_run(r)) {
        out.push_str(&run_text(run, &analyze_sizes(run)));
    }
    out
}

/// The report of one sweep boot.
pub fn run_text(run: &Run, analysis: &SizesAnalysis) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "message-size sweep: accel={} smp={} cpu={} tsc={:.3} GHz ({}) date={}{}",
        run.accel,
        run.smp.map_or("?".into(), |s| s.to_string()),
        run.cpu.as_deref().unwrap_or("?"),
        run.tsc_hz as f64 / 1e9,
        run.tsc_source.as_deref().unwrap_or("?"),
        run.date.as_deref().unwrap_or("?"),
        run.host_cpus.map_or(String::new(), |c| format!(" host_cpus={c}"))
    );
    if run.accel.starts_with("tcg") {
        let _ = writeln!(out, "TCG: emulated timing; ratios within this boot only, never hardware figures");
    }
    let _ = writeln!(
        out,
        "baseline (same boot): cache-line ping-pong {} ns; floor ring stream (64-byte structs, batch 1) {} msg/s = {}",
        ns_text(analysis.floor_rtt_ns),
        rate(analysis.floor_stream_messages_per_second, ""),
        rate(analysis.floor_stream_messages_per_second.map(|m| m * 64.0), "B/s"),
    );
    for warning in &analysis.warnings {
        let _ = writeln!(out, "!! WARNING: {warning}");
    }
    let mut table = Table::new(&[
        ("size", Align::Right),
        ("path", Align::Left),
        ("slots", Align::Right),
        ("RTT median ns", Align::Right),
        ("p99 ns", Align::Right),
        ("n", Align::Right),
        ("RTT/floor", Align::Right),
        ("stream B/s", Align::Right),
        ("msg/s", Align::Right),
        ("msgs", Align::Right),
        ("vs inline-mover", Align::Right),
        ("check", Align::Left),
    ]);
    for row in &analysis.rows {
        let n = row.rtt_n.unwrap_or(0) + row.stream_n.unwrap_or(0);
        let ok = row.rtt_ok.zip(row.stream_ok).map(|(a, b)| a + b);
        table.row(vec![
            size_cell(row.size),
            row.path.clone(),
            row.slots.map_or("-".into(), |s| s.to_string()),
            ns_text(row.rtt_median_ns),
            ns_text(row.rtt_p99_ns),
            row.rtt_n.map_or("-".into(), |n| n.to_string()),
            ratio_text(row.rtt_over_floor),
            rate(row.bytes_per_second, "B/s"),
            rate(row.messages_per_second, ""),
            row.stream_n.map_or("-".into(), |n| n.to_string()),
            ratio_text(row.bytes_over_inline_mover),
            check_text(row.check, ok, n),
        ]);
    }
    out.push('\n');
    out.push_str(&table.render());
    if !analysis.cost.is_empty() {
        let _ = writeln!(
            out,
            "\nthe mover's cost per message, one slot (16 payload bytes), with and without a descriptor:"
        );
        let mut cost = Table::new(&[
            ("path", Align::Left),
            ("streams", Align::Right),
            ("messages", Align::Right),
            ("ns/message", Align::Right),
            ("RTT median ns", Align::Right),
            ("p99 ns", Align::Right),
            ("RTT n", Align::Right),
            ("mover msgs/msg", Align::Right),
            ("syscalls/msg", Align::Right),
            ("check", Align::Left),
        ]);
        for row in &analysis.cost {
            cost.row(vec![
                row.path.clone(),
                row.streams.to_string(),
                row.messages.to_string(),
                ns_text(row.ns_per_message),
                ns_text(row.rtt_median_ns),
                ns_text(row.rtt_p99_ns),
                row.rtt_n.to_string(),
                row.mover_messages_per_message.map_or("-".into(), |v| format!("{v:.2}")),
                row.syscalls_per_message.map_or("-".into(), |v| format!("{v:.4}")),
                check_text(row.check, Some(row.ok + row.rtt_ok), row.messages + row.rtt_n),
            ]);
        }
        out.push_str(&cost.render());
    }
    let _ = writeln!(out, "\ntargets (measured in this boot, never asserted):");
    for target in &analysis.targets {
        let measured = target.measured.map_or("not measured".to_string(), |m| format!("{m:.2}x"));
        let limit = format!("{}x", target.limit);
        TargetLine {
            outcome: target.outcome,
            description: &target.description,
            measured: &measured,
            bound: target.bound,
            limit: &limit,
            not_applicable_because: target.not_applicable_because.as_deref(),
            detail: &target.detail,
        }
        .write(&mut out);
    }
    out
}
