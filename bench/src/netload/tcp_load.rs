//! TCP load on the key-value service: a closed loop that finds what the
//! service can carry, and an open loop at a fixed offered rate whose
//! latencies include queueing.
//!
//! ```text
//! open loop, one connection c of C, offered rate R in total:
//!   writer: request i goes out at its intended time t0 + (i + c/C) * C/R,
//!           late or not (it never waits for a reply)
//!   reader: reply i arrives at t; latency = t - intended(i)
//! ```
//!
//! Invariants: latency is measured from the intended send time, so a
//! service (or a generator) that falls behind shows it in the tail instead
//! of hiding it by sending later (no coordinated omission); every reply is
//! checked against the connection's [`Model`]; a run is bounded by its
//! request count and by its time limit, and replies that did not come
//! within the drain time after the last send are counted missing.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::latency::LatencySummary;
use super::workload::{Model, Verdict, Workload};

/// Refuses any address but 127.0.0.1: the generator loads only this host.
pub fn check_local(addr: SocketAddr) -> std::io::Result<()> {
    if addr.ip() == std::net::IpAddr::from([127, 0, 0, 1]) {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("{addr}: the load generator only talks to 127.0.0.1")))
    }
}

/// One TCP run's bounds.
#[derive(Debug, Clone, Copy)]
pub struct TcpRun {
    pub addr: SocketAddr,
    pub workload: Workload,
    /// Requests in all, over every connection.
    pub requests: usize,
    /// Open loop: requests per second offered in all; `None` is a closed
    /// loop (each connection sends its next request when the reply came).
    pub offered_per_s: Option<f64>,
    /// No request is sent (intended) after this long.
    pub time_limit: Duration,
    /// How long to wait for outstanding replies after the last send.
    pub drain: Duration,
}

/// What one TCP run measured.
#[derive(Debug, Clone, Default)]
pub struct TcpOutcome {
    pub connections: usize,
    /// Connections that could not be opened.
    pub refused_connections: usize,
    pub offered_per_s: Option<f64>,
    pub sent: usize,
    pub correct: usize,
    pub full: usize,
    pub wrong: usize,
    pub missing: usize,
    /// Up to 5 wrong replies, for the report.
    pub wrong_examples: Vec<String>,
    /// Replies per second over the time from the first intended send to the last reply.
    pub achieved_per_s: f64,
    pub latency: LatencySummary,
    /// How late the generator itself sent (actual - intended), p99 in µs:
    /// a large value means the host, not the service, fell behind.
    pub send_lag_p99_us: Option<f64>,
    pub elapsed: Duration,
}

impl TcpOutcome {
    /// Every request sent got a reply and every reply was right.
    pub fn all_checked(&self) -> bool {
        self.wrong == 0 && self.missing == 0 && self.refused_connections == 0 && self.sent > 0
    }
}

struct ConnectionOutcome {
    sent: usize,
    correct: usize,
    full: usize,
    wrong: Vec<String>,
    missing: usize,
    latencies: Vec<Duration>,
    send_lags: Vec<Duration>,
    last_reply: Option<Instant>,
}

/// Runs `run` and returns what it measured; an error only when no
/// connection could be opened at all.
pub fn run_tcp(run: &TcpRun) -> std::io::Result<TcpOutcome> {
    check_local(run.addr)?;
    let connections = run.workload.connections.max(1);
    let per_connection = run.requests.div_ceil(connections);
    let mut streams = Vec::new();
    let mut refused = 0;
    for _ in 0..connections {
        match TcpStream::connect_timeout(&run.addr, Duration::from_secs(5)) {
            Ok(stream) => {
                let _ = stream.set_nodelay(true);
                streams.push(Some(stream));
            }
            Err(_) => {
                refused += 1;
                streams.push(None);
            }
        }
    }
    if refused == connections {
        return Err(std::io::Error::other(format!("no connection to {} could be opened", run.addr)));
    }
    let start = Instant::now() + Duration::from_millis(20);
    let outcomes: Vec<ConnectionOutcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = streams
            .into_iter()
            .enumerate()
            .filter_map(|(conn, stream)| stream.map(|s| (conn, s)))
            .map(|(conn, stream)| scope.spawn(move || one_connection(run, conn, per_connection, stream, start)))
            .collect();
        handles.into_iter().map(|h| h.join().expect("a load connection thread panicked")).collect()
    });
    let mut outcome = TcpOutcome {
        connections,
        refused_connections: refused,
        offered_per_s: run.offered_per_s,
        ..TcpOutcome::default()
    };
    let (mut latencies, mut lags, mut last) = (Vec::new(), Vec::new(), start);
    for c in outcomes {
        outcome.sent += c.sent;
        outcome.correct += c.correct;
        outcome.full += c.full;
        outcome.wrong += c.wrong.len();
        outcome.missing += c.missing;
        outcome.wrong_examples.extend(c.wrong.into_iter().take(5 - outcome.wrong_examples.len().min(5)));
        latencies.extend(c.latencies);
        lags.extend(c.send_lags);
        last = last.max(c.last_reply.unwrap_or(start));
    }
    outcome.elapsed = last.saturating_duration_since(start);
    let replies = outcome.correct + outcome.full + outcome.wrong;
    outcome.achieved_per_s =
        if outcome.elapsed.is_zero() { 0.0 } else { replies as f64 / outcome.elapsed.as_secs_f64() };
    outcome.latency = LatencySummary::of(&mut latencies);
    outcome.send_lag_p99_us = LatencySummary::of(&mut lags).p99_us;
    Ok(outcome)
}

/// Requests one write may carry when the generator is behind.
const MAX_BATCH: usize = 64;

/// Waits until `at`: sleeps while more than a millisecond is left (sleep
/// overshoots by tens of microseconds), then yields.
fn wait_until(at: Instant) {
    loop {
        let now = Instant::now();
        if now >= at {
            return;
        }
        let left = at - now;
        if left > Duration::from_millis(1) {
            std::thread::sleep(left - Duration::from_micros(500));
        } else {
            std::thread::yield_now();
        }
    }
}

/// When request `index` of connection `conn` is meant to go out.
fn intended(run: &TcpRun, conn: usize, index: usize, start: Instant) -> Option<Instant> {
    let rate = run.offered_per_s?;
    let connections = run.workload.connections.max(1) as f64;
    let at = (index as f64 + conn as f64 / connections) * connections / rate;
    Some(start + Duration::from_secs_f64(at))
}

fn one_connection(run: &TcpRun, conn: usize, count: usize, stream: TcpStream, start: Instant) -> ConnectionOutcome {
    let mut result = ConnectionOutcome {
        sent: 0,
        correct: 0,
        full: 0,
        wrong: Vec::new(),
        missing: 0,
        latencies: Vec::with_capacity(count),
        send_lags: Vec::with_capacity(count),
        last_reply: None,
    };
    let Ok(read_half) = stream.try_clone() else {
        return result;
    };
    let _ = read_half.set_read_timeout(Some(Duration::from_millis(100)));
    let mut reader = BufReader::new(read_half);
    let mut model = Model::default();
    let sent = AtomicUsize::new(0);
    let writer_done = AtomicBool::new(false);
    let deadline_of_sending = start + run.time_limit;
    let mut line = Vec::new();
    if run.offered_per_s.is_some() {
        std::thread::scope(|scope| {
            let sent = &sent;
            let writer_done = &writer_done;
            let lags = scope.spawn(move || {
                let mut stream = stream;
                let mut lags = Vec::with_capacity(count);
                let mut batch = Vec::new();
                let mut index = 0;
                'sending: while index < count {
                    let Some(at) = intended(run, conn, index, start) else { break };
                    if at > deadline_of_sending {
                        break;
                    }
                    wait_until(at);
                    // Every request whose time has come goes out in one
                    // write, so a generator that fell behind catches up
                    // instead of paying a system call per request.
                    batch.clear();
                    let first = index;
                    while index < count && index - first < MAX_BATCH {
                        match intended(run, conn, index, start) {
                            Some(due) if due <= Instant::now() && due <= deadline_of_sending => {
                                batch.extend_from_slice(run.workload.request(conn, index).line().as_bytes());
                                index += 1;
                            }
                            _ => break,
                        }
                    }
                    if stream.write_all(&batch).is_err() {
                        break 'sending;
                    }
                    let written = Instant::now();
                    for sent_index in first..index {
                        let due = intended(run, conn, sent_index, start).unwrap_or(written);
                        lags.push(written.saturating_duration_since(due));
                    }
                    sent.store(index, Ordering::Release); // pairs with the reader's Acquire load
                }
                writer_done.store(true, Ordering::Release); // pairs with the reader's Acquire load
                lags
            });
            let mut received = 0;
            let mut drain_deadline = None;
            loop {
                let done = writer_done.load(Ordering::Acquire);
                let sent_now = sent.load(Ordering::Acquire);
                if done && received >= sent_now {
                    break;
                }
                if done {
                    let deadline = *drain_deadline.get_or_insert_with(|| Instant::now() + run.drain);
                    if Instant::now() > deadline {
                        break;
                    }
                }
                match poll_line(&mut reader, &mut line) {
                    LineRead::Complete => {
                        let now = Instant::now();
                        let request = run.workload.request(conn, received);
                        if let Some(at) = intended(run, conn, received, start) {
                            result.latencies.push(now.saturating_duration_since(at));
                        }
                        record(&mut result, model.check(&request, reply_text(&line)));
                        result.last_reply = Some(now);
                        received += 1;
                        line.clear();
                    }
                    LineRead::Pending => {}
                    LineRead::Closed if done => break,
                    LineRead::Closed => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            result.send_lags = lags.join().expect("a load writer thread panicked");
            result.sent = sent.load(Ordering::Acquire);
            result.missing = result.sent.saturating_sub(received);
        });
    } else {
        let mut stream = stream;
        let _ = stream.set_write_timeout(Some(run.drain));
        std::thread::sleep(start.saturating_duration_since(Instant::now()));
        for index in 0..count {
            if Instant::now() > deadline_of_sending {
                break;
            }
            let request = run.workload.request(conn, index);
            let at = Instant::now();
            if stream.write_all(request.line().as_bytes()).is_err() {
                break;
            }
            result.sent += 1;
            line.clear();
            let reply_deadline = Instant::now() + run.drain;
            let got = loop {
                match poll_line(&mut reader, &mut line) {
                    LineRead::Complete => break true,
                    LineRead::Closed => break false,
                    LineRead::Pending if Instant::now() > reply_deadline => break false,
                    LineRead::Pending => {}
                }
            };
            if !got {
                result.missing += 1;
                break;
            }
            let now = Instant::now();
            result.latencies.push(now.saturating_duration_since(at));
            record(&mut result, model.check(&request, reply_text(&line)));
            result.last_reply = Some(now);
        }
    }
    result
}

/// What one read of a reply line gave.
enum LineRead {
    /// `line` ends with `\n`.
    Complete,
    /// Nothing more yet (read timeout); `line` keeps any partial bytes.
    Pending,
    /// The service closed the connection or it failed.
    Closed,
}

/// Reads on into `line` (bytes of a partial line stay there across calls).
fn poll_line(reader: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> LineRead {
    match reader.read_until(b'\n', line) {
        Ok(0) => LineRead::Closed,
        Ok(_) if line.ends_with(b"\n") => LineRead::Complete,
        Ok(_) => LineRead::Pending,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
            LineRead::Pending
        }
        Err(_) => LineRead::Closed,
    }
}

/// A reply line without its newline, as text (bytes that are not UTF-8
/// make it wrong, which is what they are).
fn reply_text(line: &[u8]) -> &str {
    std::str::from_utf8(line.strip_suffix(b"\n").unwrap_or(line)).unwrap_or("<not UTF-8>")
}

fn record(result: &mut ConnectionOutcome, verdict: Verdict) {
    match verdict {
        Verdict::Correct => result.correct += 1,
        Verdict::Full => result.full += 1,
        Verdict::Wrong(why) => result.wrong.push(why),
    }
}
