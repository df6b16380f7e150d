//! `netload`: the key-value load generator on its own, against the host
//! fixture (`--against host`) or a service already forwarded to 127.0.0.1
//! (`--tcp 127.0.0.1:P --udp 127.0.0.1:Q`, e.g. a guest started with
//! `cargo xtask run --config qemu-scripts/systems/net.toml`). `cargo xtask
//! bench net` does the guest runs itself, one boot per power policy.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bench::netload::{HostService, NetJson, SweepOptions, failures, parse_rates, report_text, sweep, write_outputs};

const USAGE: &str = "usage: netload (--against host | --tcp 127.0.0.1:PORT --udp 127.0.0.1:PORT)
               [--connections 1,8,64] [--rate R | --rate R1,R8,R64] [--requests N] [--seconds S] [--out DIR]
  --against host   start kv-logic in this process (the fixture; figures labelled host)
  --rate R         open-loop offered rate in requests/s: one for every concurrency or one
                   per concurrency (default: half of each closed loop's rate)
  --requests N     closed- and open-loop requests per concurrency (default 2000 / 3000)
  --seconds S      time limit of each loop (default 4 closed, 6 open)
  --out DIR        where net-host.* or net-manual.* go (default target/bench)";

/// The service's TCP and UDP addresses (`None`: the host fixture), the options, the output folder.
type Parsed = (Option<(SocketAddr, SocketAddr)>, SweepOptions, String);

fn parse() -> Result<Parsed, String> {
    let mut args = std::env::args().skip(1);
    let (mut host, mut tcp, mut udp, mut out) = (false, None, None, "target/bench".to_string());
    let mut options = SweepOptions::default();
    let mut rates = None;
    let addr = |v: Option<String>| -> Result<SocketAddr, String> {
        v.ok_or("missing value")?.parse::<SocketAddr>().map_err(|e| e.to_string())
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--against" => match args.next().as_deref() {
                Some("host") => host = true,
                other => return Err(format!("--against takes `host`, not {other:?}")),
            },
            "--tcp" => tcp = Some(addr(args.next())?),
            "--udp" => udp = Some(addr(args.next())?),
            "--connections" => {
                let list = args.next().ok_or("--connections needs a list")?;
                options.concurrencies = list
                    .split(',')
                    .map(|c| c.parse::<usize>().ok().filter(|c| (1..=256).contains(c)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or("--connections: numbers 1..=256, comma-separated")?;
            }
            "--rate" => rates = Some(args.next().ok_or("--rate needs a rate or a list")?),
            "--requests" => {
                let n: usize = args.next().and_then(|n| n.parse().ok()).ok_or("--requests needs a number")?;
                options.closed_requests = n;
                options.open_requests = n;
                options.udp_datagrams = n;
            }
            "--seconds" => {
                let s: f64 = args.next().and_then(|n| n.parse().ok()).ok_or("--seconds needs a number")?;
                options.closed_time = Duration::from_secs_f64(s);
                options.open_time = Duration::from_secs_f64(s);
            }
            "--out" => out = args.next().ok_or("--out needs a folder")?,
            _ => return Err(format!("unknown argument `{arg}`")),
        }
    }
    if let Some(text) = rates {
        options.offered = Some(parse_rates(&text, &options.concurrencies)?);
    }
    match (host, tcp, udp) {
        (true, None, None) => Ok((None, options, out)),
        (false, Some(t), Some(u)) => Ok((Some((t, u)), options, out)),
        _ => Err("give either --against host or both --tcp and --udp".into()),
    }
}

fn main() -> ExitCode {
    let (addrs, options, out) = match parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("netload: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    let fixture;
    let (tcp, udp, target, stem) = match addrs {
        Some((tcp, udp)) => (tcp, udp, "guest", "net-manual"),
        None => match HostService::start(usize::MAX) {
            Ok(service) => {
                fixture = service;
                println!("netload: HOST FIXTURE (kv-logic in this process) on {} / {}", fixture.tcp, fixture.udp);
                (fixture.tcp, fixture.udp, "host", "net-host")
            }
            Err(e) => {
                eprintln!("netload: cannot start the host fixture: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let rows = match sweep(tcp, udp, target, "-", &options, &mut |line| println!("netload: {line}")) {
        Ok((rows, _)) => rows,
        Err(e) => {
            eprintln!("netload: {e}");
            return ExitCode::FAILURE;
        }
    };
    let accel = if target == "host" { "none" } else { "unknown (started by hand)" };
    print!("{}", report_text(&rows, target, accel));
    let json = NetJson {
        date: String::new(),
        target: target.into(),
        accel: accel.into(),
        host_cpus: std::thread::available_parallelism().ok().map(|n| n.get()),
        caveats: bench::netload::report::caveats(target, accel),
        rows,
    };
    match write_outputs(&json, std::path::Path::new(&out), stem) {
        Ok(paths) => paths.iter().for_each(|p| println!("netload: wrote {}", p.display())),
        Err(e) => eprintln!("netload: writing results: {e}"),
    }
    let failed = failures(&json.rows);
    for failure in &failed {
        eprintln!("netload: check failed: {failure}");
    }
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
