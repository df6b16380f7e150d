//! The load generator and the contract checks against the host fixture
//! (kv-logic behind std sockets), and against a service that answers
//! wrongly: the generator must catch it.

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::time::Duration;

use bench::netload::contract;
use bench::netload::tcp_load::{TcpRun, run_tcp};
use bench::netload::workload::Workload;
use bench::netload::{HostService, SweepOptions, sweep};

fn small() -> SweepOptions {
    SweepOptions {
        concurrencies: vec![1, 8],
        closed_requests: 200,
        closed_time: Duration::from_secs(5),
        open_requests: 200,
        open_time: Duration::from_secs(5),
        udp_datagrams: 200,
        low_rate: Some(100.0),
        low_requests: 20,
        ..SweepOptions::default()
    }
}

#[test]
fn a_sweep_against_the_fixture_checks_every_reply() {
    let service = HostService::start(usize::MAX).unwrap();
    let (rows, offered) = sweep(service.tcp, service.udp, "host", "-", &small(), &mut |_| {}).unwrap();
    assert_eq!(rows.len(), 6, "closed and open per concurrency, the low-rate row, then UDP");
    assert_eq!(rows[4].kind, "tcp-low");
    assert_eq!(rows[4].sent, 20);
    assert_eq!(offered.len(), 2);
    for row in &rows {
        assert_eq!(row.target, "host");
        assert!(row.wrong == 0 && row.sent > 0, "{row:?}");
        if row.kind.starts_with("tcp") {
            assert!(row.checked(), "{row:?}");
            assert_eq!(row.correct + row.full, row.sent);
            assert!(row.p50_us.is_some() && row.p999_us >= row.p99_us && row.p99_us >= row.p50_us);
        }
    }
}

#[test]
fn the_open_loop_offers_the_rate_it_was_given() {
    let service = HostService::start(usize::MAX).unwrap();
    let outcome = run_tcp(&TcpRun {
        addr: service.tcp,
        workload: Workload { connections: 4, keys: 16, value_len: 16, seed: 3 },
        requests: 100,
        offered_per_s: Some(200.0),
        time_limit: Duration::from_secs(10),
        drain: Duration::from_secs(5),
    })
    .unwrap();
    assert!(outcome.all_checked());
    assert_eq!(outcome.sent, 100);
    // 100 requests at 200/s take about half a second, never much less.
    assert!(outcome.elapsed >= Duration::from_millis(450), "{:?}", outcome.elapsed);
}

#[test]
fn only_127_0_0_1_is_loaded() {
    let run = TcpRun {
        addr: "10.0.2.15:7000".parse().unwrap(),
        workload: Workload { connections: 1, keys: 1, value_len: 1, seed: 0 },
        requests: 1,
        offered_per_s: None,
        time_limit: Duration::from_secs(1),
        drain: Duration::from_secs(1),
    };
    assert!(run_tcp(&run).is_err());
}

#[test]
fn a_service_that_answers_wrongly_is_caught() {
    // Answers OK to everything: every GET is then wrong.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut buffer = [0u8; 1024];
                while let Ok(n) = stream.read(&mut buffer) {
                    if n == 0 {
                        break;
                    }
                    let lines = buffer[..n].iter().filter(|&&b| b == b'\n').count();
                    let _ = stream.write_all(&b"OK\n".repeat(lines));
                }
            });
        }
    });
    let outcome = run_tcp(&TcpRun {
        addr,
        workload: Workload { connections: 2, keys: 4, value_len: 8, seed: 1 },
        requests: 100,
        offered_per_s: None,
        time_limit: Duration::from_secs(5),
        drain: Duration::from_secs(2),
    })
    .unwrap();
    assert!(outcome.wrong > 0 && !outcome.all_checked(), "{outcome:?}");
    assert!(contract::malformed_requests(addr).is_err());
    assert!(contract::correct_replies(addr, 2, 50).is_err());
}

#[test]
fn the_contract_checks_pass_against_the_fixture() {
    let service = HostService::start(16).unwrap();
    contract::correct_replies(service.tcp, 4, 400).unwrap();
    contract::malformed_requests(service.tcp).unwrap();
    contract::disconnect_mid_request(service.tcp, 12).unwrap();
    let crowd = contract::more_connections_than_sockets(service.tcp, 40, Duration::from_secs(10)).unwrap();
    // At most the fixture's 16 are served at once (fewer if sockets of the
    // checks before are still closing); the rest are refused, none stalls.
    let answered: usize = crowd.split(": ").nth(1).and_then(|t| t.split(' ').next()).unwrap().parse().unwrap();
    assert!((1..=16).contains(&answered), "{crowd}");
    assert!(crowd.contains(&format!("{} refused cleanly, 0 stalled, 0 wrong", 40 - answered)), "{crowd}");
    contract::udp_flood(service.udp, service.tcp, 3000).unwrap();
    let empty = contract::empty_datagram_echoed(service.udp).unwrap();
    assert!(empty.starts_with("an empty datagram echoed empty"), "{empty}");
}

#[test]
fn an_echo_that_drops_empty_datagrams_is_caught() {
    // Echoes every datagram with bytes; an empty one gets a non-empty answer.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 2048];
        while let Ok((len, from)) = socket.recv_from(&mut buffer) {
            let answer: &[u8] = if len == 0 { b"not empty" } else { &buffer[..len] };
            let _ = socket.send_to(answer, from);
        }
    });
    let result = contract::empty_datagram_echoed(addr);
    assert!(result.as_ref().is_err_and(|e| e.contains("10 other datagrams came")), "{result:?}");
}

#[test]
fn a_service_that_never_answers_is_a_stall() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let held = std::thread::spawn(move || listener.incoming().take(3).flatten().collect::<Vec<_>>());
    let result = contract::more_connections_than_sockets(addr, 3, Duration::from_secs(2));
    assert!(result.as_ref().is_err_and(|e| e.contains("3 stalled")), "{result:?}");
    drop(held);
}
