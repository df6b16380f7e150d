//! The service's contract checked from outside, one function per case of
//! the end-to-end test (`NET` cases of `cargo xtask test`): correct replies
//! to a bounded number of requests, malformed requests, clients that leave
//! mid-request, more connections than the service has sockets, a UDP flood.
//!
//! Invariants: each check talks to 127.0.0.1 only, is bounded in requests
//! and in time, and returns `Err` with what it saw when the service broke
//! the contract (a wrong reply, a reply to nothing, a stall where an answer
//! or a clean refusal was due, no service after the abuse). The expected
//! answer to a bad line is what `kv-logic` answers, so a check and the
//! service cannot disagree on wording without the check saying so.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use kv_logic::{Line, MAX_RESPONSE, Store};

use super::tcp_load::{TcpRun, check_local, run_tcp};
use super::workload::Workload;

/// How long a check waits for one answer before it calls it a stall.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the crowd of [`more_connections_than_sockets`] may take to be
/// answered or refused, and how long a check retries a refused connection
/// after the abuse: QEMU's user networking resends a SYN the guest dropped
/// after 3, 6 and 12 s, so a connection whose SYN was lost in a burst
/// takes that long to be answered or refused; slow, not stalled.
pub const CROWD_TIMEOUT: Duration = Duration::from_secs(30);

/// What `kv-logic` answers to `line` on an empty store (the reference).
fn reference_answer(line: &[u8]) -> String {
    let mut store: Store<1> = Store::new();
    let mut out = [0u8; MAX_RESPONSE];
    let parsed = if line.len() > kv_logic::LINE_CAPACITY { Line::TooLong } else { Line::Complete(line) };
    let len = store.handle(parsed, &mut out);
    String::from_utf8_lossy(&out[..len]).into_owned()
}

fn connect(tcp: SocketAddr) -> Result<TcpStream, String> {
    check_local(tcp).map_err(|e| e.to_string())?;
    let stream = TcpStream::connect_timeout(&tcp, ANSWER_TIMEOUT).map_err(|e| format!("connect {tcp}: {e}"))?;
    let _ = stream.set_nodelay(true);
    stream.set_read_timeout(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Reads until `lines` newlines arrived, the peer closed, or `timeout`.
fn read_lines(stream: &mut TcpStream, lines: usize, timeout: Duration) -> (Vec<String>, bool) {
    let deadline = Instant::now() + timeout;
    let mut bytes = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut closed = false;
    while bytes.iter().filter(|&&b| b == b'\n').count() < lines && Instant::now() < deadline {
        match stream.read(&mut buffer) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => bytes.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    (text.split_inclusive('\n').map(str::to_string).collect(), closed)
}

/// One request, one answer, on a fresh connection.
pub fn ask(tcp: SocketAddr, request: &str) -> Result<String, String> {
    let mut stream = connect(tcp)?;
    stream.write_all(request.as_bytes()).map_err(|e| format!("sending {request:?}: {e}"))?;
    let (lines, _) = read_lines(&mut stream, 1, ANSWER_TIMEOUT);
    lines.into_iter().next().ok_or_else(|| format!("no answer to {request:?} within {ANSWER_TIMEOUT:?}"))
}

/// [`ask`], retried for up to [`CROWD_TIMEOUT`] while the service
/// refuses the connection or closes it unanswered: a stack with few
/// sockets may need a moment to take its sockets back after earlier
/// clients left. A wrong answer is returned at once.
pub fn ask_retrying(tcp: SocketAddr, request: &str) -> Result<String, String> {
    let until = Instant::now() + CROWD_TIMEOUT;
    loop {
        match ask(tcp, request) {
            Ok(answer) => return Ok(answer),
            Err(e) if Instant::now() > until => return Err(format!("{e} (retried for {CROWD_TIMEOUT:?})")),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// `requests` SET/GET over `connections` connections, closed loop, every
/// reply checked (the load generator's model).
pub fn correct_replies(tcp: SocketAddr, connections: usize, requests: usize) -> Result<String, String> {
    let probe = ask_retrying(tcp, "GET contract-probe\n")?;
    if probe != "NOT_FOUND\n" {
        return Err(format!("GET contract-probe answered {probe:?}, expected NOT_FOUND"));
    }
    let outcome = run_tcp(&TcpRun {
        addr: tcp,
        workload: Workload { connections, keys: 32, value_len: 48, seed: 0x7e57 },
        requests,
        offered_per_s: None,
        time_limit: Duration::from_secs(40),
        drain: ANSWER_TIMEOUT,
    })
    .map_err(|e| e.to_string())?;
    let summary = format!(
        "{} requests on {connections} connections: {} correct, {} ERR full, {} wrong, {} unanswered, {} connections refused",
        outcome.sent, outcome.correct, outcome.full, outcome.wrong, outcome.missing, outcome.refused_connections
    );
    if outcome.all_checked() && outcome.sent == requests.div_ceil(connections) * connections {
        Ok(summary)
    } else {
        Err(format!("{summary}; first wrong: {:?}", outcome.wrong_examples))
    }
}

/// The bad lines sent by [`malformed_requests`], each with a newline.
pub fn malformed_lines() -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = [
        &b""[..],
        b"HELLO",
        b"get lower-case",
        b"GET",
        b"GET  two-spaces",
        b"GET a b",
        b"SET only-key",
        b"SET",
        b"GET \xff\xfe",
        b"SET k \x01\x02",
        b"GET tab\there",
    ]
    .iter()
    .map(|l| l.to_vec())
    .collect();
    lines.push([b"GET ".as_slice(), &[b'k'; 65]].concat());
    lines.push([b"SET k ".as_slice(), &[b'v'; 257]].concat());
    lines.push(vec![b'x'; 2000]);
    lines
}

/// Every malformed line gets its `ERR` answer, in order, on one
/// connection; CRLF works; the store is unchanged and the connection
/// still serves good requests after them.
pub fn malformed_requests(tcp: SocketAddr) -> Result<String, String> {
    let mut stream = connect(tcp)?;
    let mut expected = Vec::new();
    let mut sent = Vec::new();
    for line in malformed_lines() {
        expected.push(reference_answer(&line));
        sent.extend_from_slice(&line);
        sent.push(b'\n');
    }
    let key = format!("contract-malformed-{}", std::process::id());
    sent.extend_from_slice(format!("GET {key}\r\nSET {key} after bad input\r\nGET {key}\n").as_bytes());
    expected.extend(["NOT_FOUND\n".to_string(), "OK\n".to_string(), "VALUE after bad input\n".to_string()]);
    // In pieces of 7 bytes: the service must put lines together itself.
    for piece in sent.chunks(7) {
        stream.write_all(piece).map_err(|e| format!("sending: {e}"))?;
    }
    let (answers, _) = read_lines(&mut stream, expected.len(), ANSWER_TIMEOUT);
    if answers == expected {
        Ok(format!(
            "{} malformed lines answered ERR, in order; CRLF and good requests after them answered",
            expected.len() - 3
        ))
    } else {
        let first =
            answers.iter().zip(&expected).position(|(a, e)| a != e).unwrap_or(answers.len().min(expected.len()));
        Err(format!(
            "answer {first}: expected {:?}, got {:?} ({} of {} answers arrived)",
            expected.get(first),
            answers.get(first),
            answers.len(),
            expected.len()
        ))
    }
}

/// Clients that send half a request (a partial line, half an over-long
/// line) and leave: nothing of it is stored or answered, and the service
/// still answers afterwards.
pub fn disconnect_mid_request(tcp: SocketAddr, clients: usize) -> Result<String, String> {
    let key = format!("contract-half-{}", std::process::id());
    for index in 0..clients {
        let mut stream = connect(tcp)?;
        let half = if index % 2 == 0 { format!("SET {key} never-finished") } else { "x".repeat(700) };
        stream.write_all(half.as_bytes()).map_err(|e| format!("sending: {e}"))?;
        if index % 3 == 0 {
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
        drop(stream);
    }
    let answer = ask_retrying(tcp, &format!("GET {key}\n"))?;
    if answer != "NOT_FOUND\n" {
        return Err(format!("a half-sent SET was applied: GET {key} answered {answer:?}"));
    }
    let answer = ask_retrying(tcp, &format!("SET {key} whole\n"))?;
    if answer != "OK\n" {
        return Err(format!("after {clients} clients left mid-request, SET answered {answer:?}"));
    }
    Ok(format!("{clients} clients left mid-request; nothing applied, the service answers after them"))
}

/// What happened to each of many simultaneous connections.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CrowdCount {
    pub answered: usize,
    /// Closed or reset before an answer (a clean refusal).
    pub refused: usize,
    /// Still open with no answer within the window.
    pub stalled: usize,
    pub wrong: usize,
}

/// Opens `connections` at once, keeps them open, asks a GET on each: each
/// is answered correctly or refused cleanly (closed or reset) within
/// `window` ([`CROWD_TIMEOUT`] for a guest), none stalls or gets a wrong answer, at least one is answered; once they are
/// closed, the service answers a new connection.
pub fn more_connections_than_sockets(tcp: SocketAddr, connections: usize, window: Duration) -> Result<String, String> {
    let key = format!("contract-crowd-{}", std::process::id());
    let mut streams = Vec::new();
    let mut count = CrowdCount::default();
    for _ in 0..connections {
        match connect(tcp) {
            Ok(mut stream) => {
                if stream.write_all(format!("GET {key}\n").as_bytes()).is_err() {
                    count.refused += 1;
                } else {
                    streams.push(stream);
                }
            }
            Err(_) => count.refused += 1,
        }
    }
    let deadline = Instant::now() + window;
    for stream in &mut streams {
        let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(300));
        match read_lines(stream, 1, left) {
            (lines, _) if lines.first().is_some_and(|l| l == "NOT_FOUND\n") => count.answered += 1,
            (lines, _) if !lines.is_empty() => count.wrong += 1,
            (_, true) => count.refused += 1,
            (_, false) => count.stalled += 1,
        }
    }
    drop(streams);
    let summary = format!(
        "{connections} connections at once: {} answered, {} refused cleanly, {} stalled, {} wrong",
        count.answered, count.refused, count.stalled, count.wrong
    );
    if count.wrong > 0 || count.stalled > 0 || count.answered == 0 {
        return Err(summary);
    }
    // Sockets come back: a new connection is served (retried while the
    // service closes the crowd's sockets).
    match ask_retrying(tcp, &format!("GET {key}\n")) {
        Ok(answer) if answer == "NOT_FOUND\n" => Ok(format!("{summary}; served again after")),
        Ok(answer) => Err(format!("{summary}; then a wrong answer {answer:?}")),
        Err(e) => Err(format!("{summary}; then not served: {e}")),
    }
}

/// Sends `datagrams` UDP datagrams as fast as the host can from one
/// socket (QEMU user networking sends every echo to the last client that
/// wrote to the forwarded port, so one client is all it serves) without
/// waiting: every echo that comes back is unchanged (losses are
/// allowed and counted); afterwards a single datagram is echoed and TCP
/// still answers.
pub fn udp_flood(udp: SocketAddr, tcp: SocketAddr, datagrams: usize) -> Result<String, String> {
    check_local(udp).map_err(|e| e.to_string())?;
    let sockets: Vec<UdpSocket> = (0..1)
        .map(|_| {
            let s = UdpSocket::bind(("127.0.0.1", 0))?;
            s.connect(udp)?;
            s.set_nonblocking(true)?;
            Ok(s)
        })
        .collect::<std::io::Result<_>>()
        .map_err(|e| format!("UDP sockets: {e}"))?;
    let (mut echoed, mut wrong) = (0usize, 0usize);
    let mut buffer = [0u8; 2048];
    let mut drain = |sockets: &[UdpSocket], echoed: &mut usize, wrong: &mut usize| {
        for (index, socket) in sockets.iter().enumerate() {
            while let Ok(len) = socket.recv(&mut buffer) {
                let seq = std::str::from_utf8(&buffer[..len])
                    .ok()
                    .and_then(|t| t.strip_prefix(&format!("flood s={index} n=")))
                    .and_then(|t| t.split(' ').next())
                    .and_then(|n| n.parse::<usize>().ok());
                match seq {
                    Some(seq) if buffer[..len] == flood_datagram(index, seq)[..] => *echoed += 1,
                    _ => *wrong += 1,
                }
            }
        }
    };
    for seq in 0..datagrams {
        let index = seq % sockets.len();
        let _ = sockets[index].send(&flood_datagram(index, seq));
        if seq % 64 == 0 {
            drain(&sockets, &mut echoed, &mut wrong);
        }
    }
    let settle = Instant::now() + Duration::from_secs(3);
    while Instant::now() < settle {
        drain(&sockets, &mut echoed, &mut wrong);
        std::thread::sleep(Duration::from_millis(20));
    }
    let summary = format!("{datagrams} datagrams flooded: {echoed} echoed unchanged, {wrong} wrong");
    if wrong > 0 {
        return Err(summary);
    }
    // After the flood: a probe is echoed (retried: UDP may drop it). The
    // forwarder sends every reply to the last client that wrote, so the
    // probe socket may also get late echoes of the flood and of its own
    // earlier probes: those are right, only bytes that are none of them
    // are wrong.
    let probe = UdpSocket::bind(("127.0.0.1", 0)).and_then(|s| {
        s.connect(udp)?;
        s.set_read_timeout(Some(Duration::from_millis(500)))?;
        Ok(s)
    });
    let probe = probe.map_err(|e| format!("UDP probe socket: {e}"))?;
    let (mut echoed_after, mut late) = (false, 0usize);
    let probe_message = |attempt: usize| format!("probe after flood {attempt}");
    'probing: for attempt in 0..20 {
        let _ = probe.send(probe_message(attempt).as_bytes());
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            let Ok(len) = probe.recv(&mut buffer) else { continue };
            let echo = &buffer[..len];
            if (0..=attempt).any(|earlier| echo == probe_message(earlier).as_bytes()) {
                echoed_after = true;
                break 'probing;
            }
            let flood_seq = std::str::from_utf8(echo)
                .ok()
                .and_then(|t| t.strip_prefix("flood s=0 n="))
                .and_then(|t| t.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok());
            match flood_seq {
                Some(seq) if echo == flood_datagram(0, seq).as_slice() => late += 1,
                _ => {
                    return Err(format!(
                        "{summary}; after it the probe socket got {:?}, which was never sent",
                        String::from_utf8_lossy(echo)
                    ));
                }
            }
        }
    }
    let summary = format!("{summary} (+{late} late flood echoes, unchanged)");
    if !echoed_after {
        return Err(format!("{summary}; no echo after the flood (20 tries over 10 s)"));
    }
    let answer = ask_retrying(tcp, "GET contract-after-flood\n")?;
    if answer != "NOT_FOUND\n" {
        return Err(format!("{summary}; then TCP answered {answer:?}"));
    }
    Ok(format!("{summary}; UDP and TCP served after it"))
}

/// An empty datagram is echoed as an empty datagram (RFC 862): sent from
/// a socket of its own, retried (UDP may drop it) up to 10 times over 5 s.
/// The forwarder sends every reply to the last client that wrote, so late
/// echoes of earlier datagrams may reach this socket too; only an empty
/// one answers the question.
pub fn empty_datagram_echoed(udp: SocketAddr) -> Result<String, String> {
    check_local(udp).map_err(|e| e.to_string())?;
    let socket = UdpSocket::bind(("127.0.0.1", 0)).and_then(|s| {
        s.connect(udp)?;
        s.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(s)
    });
    let socket = socket.map_err(|e| format!("UDP socket: {e}"))?;
    let mut buffer = [0u8; 2048];
    let mut others = 0usize;
    for attempt in 1..=10 {
        socket.send(&[]).map_err(|e| format!("sending an empty datagram: {e}"))?;
        let until = Instant::now() + Duration::from_millis(500);
        while Instant::now() < until {
            match socket.recv(&mut buffer) {
                Ok(0) => {
                    return Ok(format!(
                        "an empty datagram echoed empty (try {attempt}; {others} late echoes of earlier datagrams)"
                    ));
                }
                Ok(_) => others += 1,
                Err(_) => {}
            }
        }
    }
    Err(format!("no empty echo of an empty datagram in 10 tries over 5 s ({others} other datagrams came)"))
}

fn flood_datagram(socket: usize, seq: usize) -> Vec<u8> {
    let mut bytes = format!("flood s={socket} n={seq} ").into_bytes();
    bytes.resize(200, b'f');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_answers_are_errors_for_every_malformed_line() {
        for line in malformed_lines() {
            let answer = reference_answer(&line);
            assert!(answer.starts_with("ERR "), "{:?} -> {answer:?}", String::from_utf8_lossy(&line));
        }
        assert_eq!(reference_answer(&[b'x'; 2000]), "ERR too-long\n");
    }
}
