//! UDP echo load: datagrams at intended times, every echo checked byte for
//! byte, latency from the intended send time.
//!
//! Invariants: each socket sends datagrams `udp s=<socket> n=<seq> ` padded
//! to the run's size with letters that are a function of (socket, seq), so
//! an echo is checked against what was sent without storing it; an echo
//! that matches no datagram sent, or repeats one, is wrong; a datagram
//! without an echo within the drain time is lost (UDP may drop: lost is
//! reported, and only a wrong echo fails a check).

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use super::latency::LatencySummary;
use super::tcp_load::check_local;

/// One UDP run's bounds.
#[derive(Debug, Clone, Copy)]
pub struct UdpRun {
    pub addr: SocketAddr,
    pub sockets: usize,
    pub datagrams: usize,
    /// Bytes per datagram (32..=1400).
    pub size: usize,
    /// Datagrams per second offered in all.
    pub offered_per_s: f64,
    pub time_limit: Duration,
    pub drain: Duration,
}

/// What one UDP run measured.
#[derive(Debug, Clone, Default)]
pub struct UdpOutcome {
    pub sockets: usize,
    pub offered_per_s: f64,
    pub sent: usize,
    pub echoed: usize,
    pub wrong: usize,
    pub lost: usize,
    pub achieved_per_s: f64,
    pub latency: LatencySummary,
    pub elapsed: Duration,
}

/// The datagram `seq` of `socket`.
pub fn datagram(socket: usize, seq: usize, size: usize) -> Vec<u8> {
    let mut bytes = format!("udp s={socket} n={seq} ").into_bytes();
    let mut letter = (socket * 7 + seq * 13) % 26;
    while bytes.len() < size.clamp(32, 1400) {
        bytes.push(b'a' + letter as u8);
        letter = (letter + 1) % 26;
    }
    bytes
}

/// The sequence number a datagram of `socket` claims, if it has the form.
fn sequence_of(socket: usize, bytes: &[u8]) -> Option<usize> {
    let text = std::str::from_utf8(bytes).ok()?;
    let rest = text.strip_prefix(&format!("udp s={socket} n="))?;
    rest.split(' ').next()?.parse().ok()
}

/// One socket's (sent, echoed, wrong, latencies, last echo).
type SocketTally = (usize, usize, usize, Vec<Duration>, Option<Instant>);

pub fn run_udp(run: &UdpRun) -> std::io::Result<UdpOutcome> {
    check_local(run.addr)?;
    let sockets = run.sockets.max(1);
    let per_socket = run.datagrams.div_ceil(sockets);
    let start = Instant::now() + Duration::from_millis(20);
    let mut bound = Vec::new();
    for _ in 0..sockets {
        let socket = UdpSocket::bind(("127.0.0.1", 0))?;
        socket.connect(run.addr)?;
        socket.set_read_timeout(Some(Duration::from_millis(50)))?;
        bound.push(socket);
    }
    let intended = move |socket: usize, seq: usize| {
        let at = (seq as f64 + socket as f64 / sockets as f64) * sockets as f64 / run.offered_per_s;
        start + Duration::from_secs_f64(at)
    };
    let results: Vec<SocketTally> = std::thread::scope(|scope| {
        let handles: Vec<_> = bound
            .into_iter()
            .enumerate()
            .map(|(index, socket)| {
                scope.spawn(move || {
                    let sender = socket.try_clone().expect("cloning a UDP socket");
                    let writer = scope.spawn(move || {
                        let mut sent = 0;
                        for seq in 0..per_socket {
                            let at = intended(index, seq);
                            if at > start + run.time_limit {
                                break;
                            }
                            let now = Instant::now();
                            if at > now {
                                std::thread::sleep(at - now);
                            }
                            // A refused send (ICMP unreachable from an earlier one) is a lost datagram.
                            let _ = sender.send(&datagram(index, seq, run.size));
                            sent += 1;
                        }
                        sent
                    });
                    let mut seen = HashSet::new();
                    let (mut wrong, mut latencies, mut last) = (0, Vec::new(), None);
                    let mut buffer = vec![0u8; 2048];
                    let mut drain_deadline = None;
                    loop {
                        if writer.is_finished() {
                            let deadline = *drain_deadline.get_or_insert_with(|| Instant::now() + run.drain);
                            if Instant::now() > deadline || seen.len() >= per_socket {
                                break;
                            }
                        }
                        let Ok(len) = socket.recv(&mut buffer) else { continue };
                        let now = Instant::now();
                        let echo = &buffer[..len];
                        match sequence_of(index, echo) {
                            Some(seq) if seq < per_socket && echo == datagram(index, seq, run.size).as_slice() => {
                                if seen.insert(seq) {
                                    latencies.push(now.saturating_duration_since(intended(index, seq)));
                                    last = Some(now);
                                } else {
                                    wrong += 1; // a duplicate
                                }
                            }
                            _ => wrong += 1,
                        }
                    }
                    let sent = writer.join().expect("a UDP writer thread panicked");
                    (sent, seen.len(), wrong, latencies, last)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a UDP socket thread panicked")).collect()
    });
    let mut outcome = UdpOutcome { sockets, offered_per_s: run.offered_per_s, ..UdpOutcome::default() };
    let (mut latencies, mut last) = (Vec::new(), start);
    for (sent, echoed, wrong, samples, last_echo) in results {
        outcome.sent += sent;
        outcome.echoed += echoed;
        outcome.wrong += wrong;
        latencies.extend(samples);
        last = last.max(last_echo.unwrap_or(start));
    }
    outcome.lost = outcome.sent.saturating_sub(outcome.echoed);
    outcome.elapsed = last.saturating_duration_since(start);
    outcome.achieved_per_s =
        if outcome.elapsed.is_zero() { 0.0 } else { outcome.echoed as f64 / outcome.elapsed.as_secs_f64() };
    outcome.latency = LatencySummary::of(&mut latencies);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_carry_their_sequence_and_differ() {
        let d = datagram(3, 41, 64);
        assert_eq!(d.len(), 64);
        assert_eq!(sequence_of(3, &d), Some(41));
        assert_eq!(sequence_of(4, &d), None);
        assert_ne!(datagram(3, 42, 64), d);
    }
}
