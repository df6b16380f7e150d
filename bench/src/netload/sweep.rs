//! One measurement of a service: per concurrency a closed loop (what it
//! can carry) then an open loop at a fixed offered rate (latency with
//! queueing), then one connection at a low fixed rate (what sleeping
//! costs), then UDP echo; the rows of the report.
//!
//! Invariants: the open loop's offered rate at a concurrency is either
//! given (so every power policy is offered the same load) or a fraction of
//! the closed loop's rate just measured, and the row says which rate was
//! offered; rows name their target (`guest` or `host`), and the host
//! fixture's rows are never mixed into the guest's.

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::tcp_load::{TcpOutcome, TcpRun, run_tcp};
use super::udp_load::{UdpOutcome, UdpRun, run_udp};
use super::workload::Workload;

/// What to run against one service.
#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub concurrencies: Vec<usize>,
    /// Closed loop: at most this many requests and this long, per concurrency.
    pub closed_requests: usize,
    pub closed_time: Duration,
    /// Open loop: at most this many requests and this long, per concurrency.
    pub open_requests: usize,
    pub open_time: Duration,
    /// Offered rate = this fraction of the closed loop's rate, unless given.
    pub load_fraction: f64,
    /// Offered rates per concurrency (same order), e.g. from the first boot.
    pub offered: Option<Vec<f64>>,
    pub udp_sockets: usize,
    pub udp_datagrams: usize,
    /// UDP offered rate; `None`: the TCP open-loop rate at the highest
    /// concurrency of this sweep.
    pub udp_offered: Option<f64>,
    /// A low-load row (`tcp-low`): one connection offered this many
    /// requests per second, where sleeping policies sleep between requests
    /// and pay their wake-up on each; `None`: no such row.
    pub low_rate: Option<f64>,
    pub low_requests: usize,
    pub keys: usize,
    pub value_len: usize,
    pub drain: Duration,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            concurrencies: vec![1, 8, 64],
            closed_requests: 2000,
            closed_time: Duration::from_secs(4),
            open_requests: 3000,
            open_time: Duration::from_secs(6),
            load_fraction: 0.5,
            offered: None,
            // One socket: QEMU user networking forwards a UDP port through
            // one host socket and sends every reply to the client that
            // wrote to it last, so several clients get each other's echoes.
            udp_sockets: 1,
            udp_datagrams: 2000,
            udp_offered: None,
            low_rate: Some(20.0),
            low_requests: 100,
            keys: 64,
            value_len: 32,
            drain: Duration::from_secs(5),
        }
    }
}

/// One line of the report, in every output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetRow {
    /// `guest` or `host` (the fixture in the host process).
    pub target: String,
    /// The guest's power policy, `-` for the host.
    pub policy: String,
    /// `tcp-closed`, `tcp-open`, `tcp-low` or `udp-open`.
    pub kind: String,
    pub connections: usize,
    pub offered_per_s: Option<f64>,
    pub achieved_per_s: f64,
    pub sent: usize,
    pub correct: usize,
    /// `ERR full` answers to new keys (correct, counted apart).
    pub full: usize,
    pub wrong: usize,
    /// TCP: no reply in time; UDP: no echo (lost).
    pub missing: usize,
    pub refused_connections: usize,
    pub p50_us: Option<f64>,
    pub p99_us: Option<f64>,
    pub p999_us: Option<f64>,
    pub max_us: Option<f64>,
    pub send_lag_p99_us: Option<f64>,
}

impl NetRow {
    /// Every reply checked out (UDP: no wrong echo; losses are reported).
    pub fn checked(&self) -> bool {
        let replied = self.wrong == 0 && self.sent > 0;
        if self.kind.starts_with("udp") {
            replied
        } else {
            replied && self.missing == 0 && self.refused_connections == 0
        }
    }

    fn from_tcp(target: &str, policy: &str, kind: &str, o: &TcpOutcome) -> NetRow {
        NetRow {
            target: target.into(),
            policy: policy.into(),
            kind: kind.into(),
            connections: o.connections,
            offered_per_s: o.offered_per_s,
            achieved_per_s: o.achieved_per_s,
            sent: o.sent,
            correct: o.correct,
            full: o.full,
            wrong: o.wrong,
            missing: o.missing,
            refused_connections: o.refused_connections,
            p50_us: o.latency.p50_us,
            p99_us: o.latency.p99_us,
            p999_us: o.latency.p999_us,
            max_us: o.latency.max_us,
            send_lag_p99_us: o.send_lag_p99_us,
        }
    }

    fn from_udp(target: &str, policy: &str, o: &UdpOutcome) -> NetRow {
        NetRow {
            target: target.into(),
            policy: policy.into(),
            kind: "udp-open".into(),
            connections: o.sockets,
            offered_per_s: Some(o.offered_per_s),
            achieved_per_s: o.achieved_per_s,
            sent: o.sent,
            correct: o.echoed,
            full: 0,
            wrong: o.wrong,
            missing: o.lost,
            refused_connections: 0,
            p50_us: o.latency.p50_us,
            p99_us: o.latency.p99_us,
            p999_us: o.latency.p999_us,
            max_us: o.latency.max_us,
            send_lag_p99_us: None,
        }
    }
}

/// The open-loop rates (requests/s in total) a person gives with
/// `--rate`: one number for every concurrency, or one per concurrency in
/// the order of `concurrencies` (`"3000"` or `"3000,9000,6000"`). Each
/// is 1..=1 000 000; anything else is refused, naming what was wrong.
pub fn parse_rates(text: &str, concurrencies: &[usize]) -> Result<Vec<f64>, String> {
    let rates = text
        .split(',')
        .map(|word| {
            word.trim()
                .parse::<f64>()
                .ok()
                .filter(|r| r.is_finite() && (1.0..=1_000_000.0).contains(r))
                .ok_or_else(|| format!("--rate: `{}` is not a rate of 1..=1000000 requests/s", word.trim()))
        })
        .collect::<Result<Vec<f64>, String>>()?;
    match rates.len() {
        1 => Ok(vec![rates[0]; concurrencies.len()]),
        n if n == concurrencies.len() => Ok(rates),
        n => Err(format!(
            "--rate: {n} rates for {} concurrencies ({concurrencies:?}); give one rate, or one per concurrency",
            concurrencies.len()
        )),
    }
}

/// Measures the service at `tcp`/`udp`; `progress` gets a line per step.
/// Returns the rows and the open-loop rates offered (per concurrency).
pub fn sweep(
    tcp: SocketAddr,
    udp: SocketAddr,
    target: &str,
    policy: &str,
    options: &SweepOptions,
    progress: &mut dyn FnMut(&str),
) -> std::io::Result<(Vec<NetRow>, Vec<f64>)> {
    let mut rows = Vec::new();
    let mut offered_rates = Vec::new();
    for (index, &connections) in options.concurrencies.iter().enumerate() {
        let workload = Workload { connections, keys: options.keys, value_len: options.value_len, seed: 0x6b76 };
        let closed = run_tcp(&TcpRun {
            addr: tcp,
            workload,
            requests: options.closed_requests,
            offered_per_s: None,
            time_limit: options.closed_time,
            drain: options.drain,
        })?;
        let row = NetRow::from_tcp(target, policy, "tcp-closed", &closed);
        progress(&line(&row));
        report_wrong(&closed, progress);
        let offered = options
            .offered
            .as_ref()
            .and_then(|rates| rates.get(index).copied())
            .unwrap_or((closed.achieved_per_s * options.load_fraction).max(1.0));
        rows.push(row);
        offered_rates.push(offered);
        let open = run_tcp(&TcpRun {
            addr: tcp,
            workload,
            requests: options.open_requests.min((offered * options.open_time.as_secs_f64()).ceil() as usize).max(1),
            offered_per_s: Some(offered),
            time_limit: options.open_time,
            drain: options.drain,
        })?;
        let row = NetRow::from_tcp(target, policy, "tcp-open", &open);
        progress(&line(&row));
        report_wrong(&open, progress);
        rows.push(row);
    }
    if let Some(rate) = options.low_rate {
        let workload = Workload { connections: 1, keys: options.keys, value_len: options.value_len, seed: 0x6c6f };
        let low = run_tcp(&TcpRun {
            addr: tcp,
            workload,
            requests: options.low_requests,
            offered_per_s: Some(rate),
            time_limit: Duration::from_secs_f64(options.low_requests as f64 / rate + 1.0),
            drain: options.drain,
        })?;
        let row = NetRow::from_tcp(target, policy, "tcp-low", &low);
        progress(&line(&row));
        report_wrong(&low, progress);
        rows.push(row);
    }
    let udp_rate = options.udp_offered.or(offered_rates.last().copied()).unwrap_or(100.0);
    let echo = run_udp(&UdpRun {
        addr: udp,
        sockets: options.udp_sockets,
        datagrams: options.udp_datagrams.min((udp_rate * options.open_time.as_secs_f64()).ceil() as usize).max(1),
        size: 64,
        offered_per_s: udp_rate,
        time_limit: options.open_time,
        drain: Duration::from_secs(2),
    })?;
    let row = NetRow::from_udp(target, policy, &echo);
    progress(&line(&row));
    rows.push(row);
    Ok((rows, offered_rates))
}

/// The first wrong replies of a run, one progress line each.
fn report_wrong(outcome: &TcpOutcome, progress: &mut dyn FnMut(&str)) {
    for example in &outcome.wrong_examples {
        progress(&format!("  wrong reply: {example}"));
    }
}

/// A one-line summary of a row, for progress output.
pub fn line(row: &NetRow) -> String {
    let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    format!(
        "{} {} {} c={}: {:.0}/s (offered {}), p50 {} us p99 {} us, {}/{} correct, {} full, {} wrong, {} missing",
        row.target,
        row.policy,
        row.kind,
        row.connections,
        row.achieved_per_s,
        row.offered_per_s.map_or("max".to_string(), |r| format!("{r:.0}/s")),
        us(row.p50_us),
        us(row.p99_us),
        row.correct,
        row.sent,
        row.full,
        row.wrong,
        row.missing
    )
}

#[cfg(test)]
mod tests {
    use super::parse_rates;

    #[test]
    fn one_rate_applies_to_every_concurrency() {
        assert_eq!(parse_rates("3000", &[1, 8, 64]).unwrap(), [3000.0, 3000.0, 3000.0]);
    }

    #[test]
    fn a_rate_per_concurrency_keeps_its_order() {
        assert_eq!(parse_rates("100, 200.5,300", &[1, 8, 64]).unwrap(), [100.0, 200.5, 300.0]);
    }

    #[test]
    fn bad_rates_are_refused_naming_the_word_or_the_count() {
        for bad in ["0", "-5", "fast", "", "1e9", "NaN", "inf", "100,,200"] {
            let e = parse_rates(bad, &[1, 8, 64]).unwrap_err();
            assert!(e.starts_with("--rate: `"), "{bad}: {e}");
        }
        let e = parse_rates("100,200", &[1, 8, 64]).unwrap_err();
        assert!(e.contains("2 rates for 3 concurrencies"), "{e}");
    }
}
