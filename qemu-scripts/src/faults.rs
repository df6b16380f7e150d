//! `cargo xtask faults`: the fault campaign (docs/faults.md). Boots
//! `qemu-scripts/systems/faults.toml` with its injectors' and checkers'
//! arguments derived from `--injections` and `--minutes`, reads the serial
//! log and prints what was injected, what the kernel did about it and what
//! the checking servers saw; writes `target/faults/faults.{csv,json}`.
//!
//! Two kinds of line are read, and never mixed up:
//! - **kernel lines** (`[core N] INFO  ...`, `WARN`, `ERROR`, and the
//!   unprefixed `PANIC core` / `EXCEPTION core` reports): the facts —
//!   supervisor counts, restarts, `FAULT` reports, exits, ring counters,
//!   panics. A server cannot write one: its lines always start with
//!   `[core N] server `name`: ` and the kernel turns control characters
//!   into `?`.
//! - **server lines** (`[core N] server `name`: ...`): the claims — what an
//!   injector says it did, what ping, echo and the stream sink checked —
//!   taken only from the server the line names.

use crate::qemu::{self, QemuOptions};
use crate::{Args, Boot, Error, System, root, setup};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

/// The campaign's system.
pub const FAULTS_SYSTEM: &str = "qemu-scripts/systems/faults.toml";

/// `cargo xtask faults` options.
#[derive(Debug, Clone)]
pub struct FaultsOptions {
    /// Target number of injected faults and garbage messages.
    pub injections: u64,
    /// Time bound of the run (the guest's own deadline; QEMU gets a margin).
    pub minutes: u64,
    pub opts: QemuOptions,
    /// Mean number of bad things per injector incarnation.
    pub bad_mean: u64,
    pub system: String,
}

impl FaultsOptions {
    pub(crate) fn parse(args: &mut Args) -> Result<FaultsOptions, Error> {
        let number = |name: &str, text: Option<String>, default: u64, max: u64| -> Result<u64, Error> {
            match text {
                None => Ok(default),
                Some(t) => t
                    .replace('_', "")
                    .parse()
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| Error::new(format!("{name}: `{t}` is not 1..={max}"))),
            }
        };
        let injections = number("--injections", args.take_value("--injections")?, 100_000, 1_000_000_000)?;
        let minutes = number("--minutes", args.take_value("--minutes")?, 30, 24 * 60)?;
        let bad_mean = number("--bad-mean", args.take_value("--bad-mean")?, 200, 1_000_000)?;
        let system = args.take_value("--config")?.unwrap_or_else(|| FAULTS_SYSTEM.to_string());
        let smp_given = args.words.iter().any(|w| w == "--smp");
        let mut opts = crate::qemu_options(args)?;
        if !smp_given {
            opts.smp = 8;
        }
        Ok(FaultsOptions { injections, minutes, opts, bad_mean, system })
    }
}

/// Injected things per incarnation, roughly, for choosing how many
/// generations to allow: per bad thing 0.57 fuzzed system calls and 0.4
/// garbage bursts, of which the mover takes only what fits (under TCG
/// about half a message per burst: FLT0001 measured about 0.8 per bad
/// thing in all), plus the fatal act. The count itself is read from the
/// log, never assumed.
fn per_incarnation(bad_mean: u64) -> u64 {
    bad_mean * 4 / 5 + 1
}

/// Sets `key=value` in the `args` of the `[[server]]` named `server` of a
/// system TOML's text (replacing the word if it is there), keeping every
/// other line and comment as it was.
pub fn set_arg(text: &str, server: &str, key: &str, value: &str) -> Result<String, Error> {
    let mut out = Vec::new();
    let mut in_server = false;
    let mut this_one = false;
    let mut done = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_server = trimmed == "[[server]]";
            this_one = false;
        } else if in_server && trimmed.starts_with("name") && trimmed.contains(&format!("\"{server}\"")) {
            this_one = true;
        }
        if this_one && !done && trimmed.starts_with("args") {
            let (start, end) = (line.find('"'), line.rfind('"'));
            if let (Some(start), Some(end)) = (start, end)
                && end > start
            {
                let mut words: Vec<String> = line[start + 1..end]
                    .split_whitespace()
                    .filter(|w| w.split('=').next() != Some(key))
                    .map(str::to_string)
                    .collect();
                words.push(format!("{key}={value}"));
                out.push(format!("{}\"{}\"{}", &line[..start], words.join(" "), &line[end + 1..]));
                done = true;
                continue;
            }
        }
        out.push(line.to_string());
    }
    if !done {
        return Err(Error::new(format!("server `{server}` has no `args = \"...\"` line to set `{key}` in")));
    }
    Ok(out.join("\n") + "\n")
}

/// The campaign's system with its arguments derived from the options:
/// injectors get `bad_mean`, a generation bound that reaches the target
/// with room to spare, and a deadline; the checkers get a deadline after
/// the injectors'.
pub fn campaign_system(base: &System, f: &FaultsOptions) -> Result<(System, u64), Error> {
    let config = system_config::parse(&base.text).map_err(|e| Error::new(e.render(&base.file, &base.text)))?;
    let injectors: Vec<&str> =
        config.servers.iter().filter(|s| s.binary == "injector").map(|s| s.name.as_str()).collect();
    if injectors.is_empty() {
        return Err(Error::new(format!("{}: no server runs the `injector` binary", base.file)));
    }
    let per_injector = f.injections.div_ceil(injectors.len() as u64);
    // 1.5x the estimate: the real mix varies; the count is read, not assumed.
    let generations = (per_injector * 3 / 2).div_ceil(per_incarnation(f.bad_mean)).max(2);
    let deadline_ms = f.minutes * 60_000;
    let mut text = base.text.clone();
    for name in &injectors {
        text = set_arg(&text, name, "bad_mean", &f.bad_mean.to_string())?;
        text = set_arg(&text, name, "generations", &generations.to_string())?;
        // The injectors stop first, so that the checkers see them done.
        text = set_arg(&text, name, "deadline_ms", &(deadline_ms * 9 / 10).to_string())?;
    }
    for server in config.servers.iter().filter(|s| s.binary != "injector") {
        let has = |key: &str| server.args.split_whitespace().any(|w| w.split('=').next() == Some(key));
        if has("deadline_ms") {
            text = set_arg(&text, &server.name, "deadline_ms", &deadline_ms.to_string())?;
        }
    }
    Ok((System { file: base.file.clone(), text }, generations))
}

/// Numbers after `word ` in `text` (`"lost 3"` -> 3).
fn number_after(text: &str, word: &str) -> Option<u64> {
    let at = text.find(word)? + word.len();
    let digits: String = text[at..].trim_start().chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// One line of the serial log, sorted by who wrote it.
#[derive(Debug, PartialEq, Eq)]
pub enum Line<'a> {
    /// Written by the kernel (level and text after it).
    Kernel(&'a str),
    /// A server's own `log` line: its name and text.
    Server(&'a str, &'a str),
    /// A kernel panic or kernel exception report (unprefixed).
    Fatal(&'a str),
    Other,
}

pub fn classify(line: &str) -> Line<'_> {
    if line.starts_with("PANIC core ") || line.starts_with("EXCEPTION core ") {
        return Line::Fatal(line);
    }
    let Some(rest) = line.strip_prefix("[core ") else { return Line::Other };
    let Some((core, rest)) = rest.split_once("] ") else { return Line::Other };
    if core.is_empty() || !core.chars().all(|c| c.is_ascii_digit()) {
        return Line::Other;
    }
    if let Some(named) = rest.strip_prefix("server `")
        && let Some((name, text)) = named.split_once("`: ")
    {
        return Line::Server(name, text);
    }
    for level in ["INFO ", "WARN ", "ERROR ", "DEBUG ", "TRACE "] {
        if let Some(text) = rest.strip_prefix(level) {
            return Line::Kernel(text.trim_start());
        }
    }
    Line::Other
}

/// What a checking server (ping, echo, the stream sink) said last.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    pub checked: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub foreign: u64,
}

/// Per-server kernel facts from the supervisor's end-of-run line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Supervised {
    pub state: String,
    pub generation: u64,
    pub restarts: u64,
    pub faults: u64,
    pub hangs: u64,
    pub exits: u64,
}

/// Ring counters of one outbox.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outbox {
    pub sent: u64,
    pub delivered: u64,
    pub bounced: u64,
}

/// Everything the campaign reads from one serial log.
#[derive(Debug, Default)]
pub struct Report {
    // Claims of the injectors.
    pub incarnations_reported: u64,
    pub garbage: u64,
    pub syscalls: u64,
    pub scribbles: u64,
    pub fatal_by_kind: BTreeMap<String, u64>,
    pub clean_exits_reported: u64,
    /// Servers that wrote injector lines.
    pub injectors: std::collections::BTreeSet<String>,
    // Kernel facts.
    pub supervised: BTreeMap<String, Supervised>,
    /// `supervisor: total: faults F, hangs H, restarts R`.
    pub total: Option<(u64, u64, u64)>,
    pub restart_lines: u64,
    pub fault_lines_by_vector: BTreeMap<u64, u64>,
    pub exit_codes: BTreeMap<i64, u64>,
    pub outboxes: BTreeMap<String, Outbox>,
    pub kernel_panics: u64,
    // Claims of the checkers.
    pub checked: BTreeMap<String, Checked>,
    /// Checkers that ran out of time before every injector was done.
    pub deadline_reached: Vec<String>,
}

impl Report {
    pub fn parse(serial: &str) -> Report {
        let mut r = Report::default();
        for line in serial.lines() {
            match classify(line) {
                Line::Fatal(_) => r.kernel_panics += 1,
                Line::Kernel(text) => r.kernel_line(text),
                Line::Server(name, text) => r.server_line(name, text),
                Line::Other => {}
            }
        }
        r
    }

    fn kernel_line(&mut self, text: &str) {
        if let Some(rest) = text.strip_prefix("supervisor: total: ") {
            if let (Some(f), Some(h), Some(rs)) =
                (number_after(rest, "faults"), number_after(rest, "hangs"), number_after(rest, "restarts"))
            {
                self.total = Some((f, h, rs));
            }
        } else if let Some(rest) = text.strip_prefix("supervisor: server `") {
            let Some((name, rest)) = rest.split_once('`') else { return };
            if rest.contains(" restarted as generation ") {
                self.restart_lines += 1;
            } else if let Some(after) = rest.strip_prefix(" (core ")
                && let Some((_, facts)) = after.split_once("): ")
            {
                let state = facts.split(',').next().unwrap_or("").trim().to_string();
                self.supervised.insert(
                    name.to_string(),
                    Supervised {
                        state,
                        generation: number_after(facts, "generation").unwrap_or(0),
                        restarts: number_after(facts, "restarts").unwrap_or(0),
                        faults: number_after(facts, "faults").unwrap_or(0),
                        hangs: number_after(facts, "hangs").unwrap_or(0),
                        exits: number_after(facts, "exits").unwrap_or(0),
                    },
                );
            }
        } else if let Some(rest) = text.strip_prefix("FAULT server `") {
            if let Some(vector) = number_after(rest, "vector") {
                *self.fault_lines_by_vector.entry(vector).or_default() += 1;
            }
        } else if let Some(rest) = text.strip_prefix("rings: server `") {
            let Some((name, rest)) = rest.split_once('`') else { return };
            if let (Some(sent), Some(delivered), Some(bounced)) =
                (number_after(rest, "sent"), number_after(rest, "delivered"), number_after(rest, "bounced"))
            {
                self.outboxes.insert(name.to_string(), Outbox { sent, delivered, bounced });
            }
        } else if text.starts_with("server `")
            && let Some(at) = text.find(") exited with code ")
            && let Ok(code) = text[at + ") exited with code ".len()..].trim().parse::<i64>()
        {
            *self.exit_codes.entry(code).or_default() += 1;
        }
    }

    fn server_line(&mut self, name: &str, text: &str) {
        if let Some(rest) = text.strip_prefix("injector: generation ") {
            self.injectors.insert(name.to_string());
            if rest.contains(": done (") {
                self.clean_exits_reported += 1;
            } else if let (Some(g), Some(s), Some(k), Some(at)) = (
                number_after(rest, "garbage messages"),
                number_after(rest, "fuzzed syscalls"),
                number_after(rest, "scribbles"),
                rest.rfind(", then "),
            ) {
                self.incarnations_reported += 1;
                self.garbage += g;
                self.syscalls += s;
                self.scribbles += k;
                let act = rest[at + ", then ".len()..].trim();
                // `int-0x80` and `exit-nonzero-42` are counted by kind.
                let kind = if act.starts_with("int-0x") {
                    "int N"
                } else if act.starts_with("exit-nonzero") {
                    "exit-nonzero"
                } else {
                    act
                };
                *self.fatal_by_kind.entry(kind.to_string()).or_default() += 1;
            }
        } else if let Some(rest) = text.strip_prefix("messages checked ") {
            let checked = Checked {
                checked: rest.split(',').next().and_then(|n| n.trim().parse().ok()).unwrap_or(0),
                lost: number_after(rest, "lost").unwrap_or(0),
                duplicated: number_after(rest, "duplicated").unwrap_or(0),
                foreign: number_after(rest, "foreign").unwrap_or(0),
            };
            self.checked.insert(name.to_string(), checked);
        } else if text.contains("deadline reached before every peer was done") {
            self.deadline_reached.push(name.to_string());
        }
    }

    /// Incarnations of the injectors by the kernel's count (generation + 1
    /// each), if its end-of-run lines name them.
    pub fn kernel_incarnations(&self) -> Option<u64> {
        let found: Vec<u64> =
            self.injectors.iter().filter_map(|n| self.supervised.get(n)).map(|s| s.generation + 1).collect();
        (!found.is_empty() && found.len() == self.injectors.len()).then(|| found.iter().sum())
    }

    /// Injected faults and garbage messages: every garbage message, fuzzed
    /// system call, scribble and fatal act the injectors reported.
    pub fn injected(&self) -> u64 {
        self.garbage + self.syscalls + self.scribbles + self.incarnations_reported
    }

    pub fn lost(&self) -> u64 {
        self.checked.values().map(|c| c.lost).sum()
    }

    pub fn duplicated(&self) -> u64 {
        self.checked.values().map(|c| c.duplicated).sum()
    }

    /// Faults, hangs and restarts as the kernel counts them: its total
    /// line, else the sum of its per-server lines, else (older kernels)
    /// its FAULT and restart lines.
    pub fn kernel_counts(&self) -> (u64, u64, u64) {
        if let Some(total) = self.total {
            return total;
        }
        if !self.supervised.is_empty() {
            let sum = |f: fn(&Supervised) -> u64| self.supervised.values().map(f).sum::<u64>();
            return (sum(|s| s.faults), sum(|s| s.hangs), sum(|s| s.restarts));
        }
        (self.fault_lines_by_vector.values().sum(), 0, self.restart_lines)
    }

    /// Where a checker's count can be compared with the kernel's ring
    /// counters: `(what, server's figure, kernel's figure)`.
    pub fn cross_checks(&self) -> Vec<(String, u64, u64)> {
        let mut out = Vec::new();
        if let (Some(ping), Some(echo), Some(ping_box), Some(echo_box)) =
            (self.checked.get("ping"), self.checked.get("echo"), self.outboxes.get("ping"), self.outboxes.get("echo"))
        {
            // ping's outbox carries its pings and one STOP; echo answers
            // only ping (its only endpoint).
            out.push((
                "pings echo checked + STOP = delivered from ping's outbox".into(),
                echo.checked + echo.duplicated + 1,
                ping_box.delivered,
            ));
            out.push(("replies ping checked = delivered from echo's outbox".into(), ping.checked, echo_box.delivered));
        }
        if let (Some(sink), Some(source_box)) = (self.checked.get("stream-sink"), self.outboxes.get("stream-source")) {
            out.push((
                "messages the sink checked + END = delivered from the source's outbox".into(),
                sink.checked + sink.duplicated + 1,
                source_box.delivered,
            ));
        }
        out
    }
}

/// Why a campaign failed (empty: it passed). `checkers` must each have
/// printed their final line.
pub fn failures(report: &Report, outcome_ok: bool, checkers: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    if !outcome_ok {
        out.push("the run did not complete (no success verdict from the guest)".into());
    }
    for name in checkers {
        if !report.checked.contains_key(*name) {
            out.push(format!("server `{name}` printed no `messages checked` line"));
        }
    }
    if report.lost() != 0 {
        out.push(format!("{} checked messages lost", report.lost()));
    }
    if report.duplicated() != 0 {
        out.push(format!("{} checked messages duplicated", report.duplicated()));
    }
    if report.kernel_panics != 0 {
        out.push(format!("{} kernel panics or kernel exceptions", report.kernel_panics));
    }
    for name in &report.deadline_reached {
        out.push(format!("server `{name}`: the deadline came before every injector was done"));
    }
    for (what, server, kernel) in report.cross_checks() {
        if server != kernel {
            out.push(format!("{what}: the server says {server}, the kernel's ring counters {kernel}"));
        }
    }
    out
}

/// The table, as printed.
pub fn table(report: &Report, target: u64, generations: u64) -> String {
    let mut t = String::new();
    let (faults, hangs, restarts) = report.kernel_counts();
    let row = |t: &mut String, what: &str, value: String, note: &str| {
        t.push_str(&format!("  {what:<44} {value:>12}  {note}\n"));
    };
    t.push_str("fault campaign\n");
    t.push_str("  injected (the injectors' own lines)\n");
    row(&mut t, "injected faults and garbage messages", report.injected().to_string(), &format!("target {target}"));
    row(&mut t, "  garbage messages", report.garbage.to_string(), "");
    row(&mut t, "  fuzzed system calls", report.syscalls.to_string(), "");
    row(&mut t, "  ring scribbles", report.scribbles.to_string(), "");
    row(
        &mut t,
        "  fatal acts (incarnations reported)",
        report.incarnations_reported.to_string(),
        &format!("generations allowed per injector: {generations}"),
    );
    for (kind, n) in &report.fatal_by_kind {
        row(&mut t, &format!("    {kind}"), n.to_string(), "");
    }
    row(&mut t, "  clean exits (generation or deadline bound)", report.clean_exits_reported.to_string(), "");
    if let Some(n) = report.kernel_incarnations() {
        row(
            &mut t,
            "  injector lines seen / incarnations (kernel)",
            format!("{}/{n}", report.incarnations_reported + report.clean_exits_reported),
            "a line is missing where the incarnation hung first or `log` was rate-limited: the counts above are a floor",
        );
    }
    t.push_str("  what the kernel did (kernel lines only)\n");
    row(&mut t, "faults", faults.to_string(), "");
    row(&mut t, "hangs detected", hangs.to_string(), "");
    row(&mut t, "restarts", restarts.to_string(), "");
    for (vector, n) in &report.fault_lines_by_vector {
        row(&mut t, &format!("  FAULT lines, vector {vector}"), n.to_string(), "(rate-limited: may be fewer)");
    }
    for (code, n) in &report.exit_codes {
        let note = if *code == 77 { "a fatal act that did not fault" } else { "" };
        row(&mut t, &format!("  exits with code {code}"), n.to_string(), note);
    }
    for (name, s) in &report.supervised {
        row(
            &mut t,
            &format!("  `{name}`"),
            s.state.clone(),
            &format!(
                "generation {}, restarts {}, faults {}, hangs {}, exits {}",
                s.generation, s.restarts, s.faults, s.hangs, s.exits
            ),
        );
    }
    row(&mut t, "kernel panics", report.kernel_panics.to_string(), "must be 0");
    t.push_str("  what the checking servers saw\n");
    for (name, c) in &report.checked {
        row(
            &mut t,
            &format!("`{name}`: messages checked"),
            c.checked.to_string(),
            &format!("lost {}, duplicated {}, foreign {}", c.lost, c.duplicated, c.foreign),
        );
    }
    row(&mut t, "lost", report.lost().to_string(), "must be 0");
    row(&mut t, "duplicated", report.duplicated().to_string(), "must be 0");
    for (what, server, kernel) in report.cross_checks() {
        let verdict = if server == kernel { "agree" } else { "DISAGREE" };
        row(&mut t, &format!("ring counters {verdict}"), format!("{server}/{kernel}"), &what);
    }
    t
}

/// `target/faults/faults.{csv,json}`: one row per figure.
fn write_outputs(
    report: &Report,
    f: &FaultsOptions,
    generations: u64,
    passed: bool,
    elapsed: Duration,
) -> Result<(), Error> {
    let dir = root().join("target").join("faults");
    std::fs::create_dir_all(&dir).map_err(|e| Error::new(format!("{}: {e}", dir.display())))?;
    let (faults, hangs, restarts) = report.kernel_counts();
    let mut figures: Vec<(String, u64)> = vec![
        ("injected".into(), report.injected()),
        ("garbage_messages".into(), report.garbage),
        ("fuzzed_syscalls".into(), report.syscalls),
        ("scribbles".into(), report.scribbles),
        ("fatal_acts".into(), report.incarnations_reported),
        ("kernel_faults".into(), faults),
        ("kernel_hangs".into(), hangs),
        ("kernel_restarts".into(), restarts),
        ("kernel_panics".into(), report.kernel_panics),
        ("messages_checked".into(), report.checked.values().map(|c| c.checked).sum()),
        ("lost".into(), report.lost()),
        ("duplicated".into(), report.duplicated()),
        ("foreign".into(), report.checked.values().map(|c| c.foreign).sum()),
    ];
    for (kind, n) in &report.fatal_by_kind {
        figures.push((format!("fatal:{kind}"), *n));
    }
    let date = crate::utc_now();
    let mut csv = String::from("date,figure,value\n");
    for (name, value) in &figures {
        csv.push_str(&format!("{date},{name},{value}\n"));
    }
    let json = serde_json::json!({
        "schema": "fault-campaign/1",
        "date": date,
        "system": f.system,
        "smp": f.opts.smp,
        "accel": f.opts.accel,
        "target_injections": f.injections,
        "minutes": f.minutes,
        "bad_mean": f.bad_mean,
        "generations_allowed": generations,
        "guest_seconds": elapsed.as_secs_f64(),
        "passed": passed,
        "figures": figures.iter().map(|(k, v)| (k.clone(), serde_json::json!(v))).collect::<serde_json::Map<_, _>>(),
        "checked": report.checked.iter().map(|(k, c)| (k.clone(), serde_json::json!({
            "checked": c.checked, "lost": c.lost, "duplicated": c.duplicated, "foreign": c.foreign,
        }))).collect::<serde_json::Map<_, _>>(),
    });
    for (name, text) in [("faults.csv", csv), ("faults.json", format!("{json:#}\n"))] {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::new(format!("{}: {e}", path.display())))?;
        println!("xtask: wrote {}", path.display());
    }
    Ok(())
}

/// The servers whose final line the campaign needs.
pub const CHECKERS: &[&str] = &["ping", "echo", "stream-sink"];

pub fn cmd_faults(f: &FaultsOptions) -> Result<ExitCode, Error> {
    let root = root();
    let base = System::read(&root.join(&f.system))?;
    let (system, generations) = campaign_system(&base, f)?;
    system.check(Some(f.opts.smp), &crate::server_binary_names(&root)?)?;
    setup::host_packages()?;
    setup::rust_toolchains(false)?;
    let binaries = crate::build_servers(&root)?;
    let kernel = crate::build_kernel(&root)?;
    let builder = crate::build_image_builder(&root)?;
    let mut opts = f.opts.clone();
    opts.echo = false;
    opts.timeout = Some(Duration::from_secs(f.minutes * 60 + 180));
    println!(
        "xtask: fault campaign: target {} injections, at most {} min, -smp {}, {} generations per injector, bad_mean {}; serial log in target/qemu/faults/serial.log",
        f.injections, f.minutes, opts.smp, generations, f.bad_mean
    );
    let boot = Boot { name: "faults", boot_args: "", system: Some(&system), binaries: &binaries };
    let outcome = crate::boot(&root, &kernel, &builder, &boot, &opts)?;
    let report = Report::parse(&outcome.serial);
    let ok = outcome.status == Some(qemu::GUEST_PASS);
    let problems = failures(&report, ok, CHECKERS);
    print!("{}", table(&report, f.injections, generations));
    println!("xtask: {} after {:.0} s", outcome.verdict(), outcome.elapsed.as_secs_f64());
    write_outputs(&report, f, generations, problems.is_empty(), outcome.elapsed)?;
    if report.injected() < f.injections {
        println!("xtask: note: {} injected, fewer than the target {}", report.injected(), f.injections);
    }
    if problems.is_empty() {
        println!("xtask: fault campaign passed");
        Ok(ExitCode::SUCCESS)
    } else {
        for p in &problems {
            println!("xtask: FAILED: {p}");
        }
        Ok(ExitCode::FAILURE)
    }
}

/// The check of the CI-sized case (`FLT0001`): at least `min_injected`
/// injected, faults and restarts seen by the kernel, nothing lost or
/// duplicated, no panic, every checker's line present and agreeing with
/// the ring counters.
pub fn ci_check(serial: &str, min_injected: u64) -> Vec<String> {
    let report = Report::parse(serial);
    let mut problems = failures(&report, true, CHECKERS);
    if report.injected() < min_injected {
        problems.push(format!(
            "only {} faults and garbage messages injected, fewer than {min_injected}",
            report.injected()
        ));
    }
    let (faults, _, restarts) = report.kernel_counts();
    if faults == 0 {
        problems.push("the kernel reported no fault".into());
    }
    if restarts == 0 {
        problems.push("the kernel reported no restart".into());
    }
    problems
}

/// [`ci_check`] with the CI case's bound.
pub fn flt0001_check(serial: &str) -> Vec<String> {
    ci_check(serial, 10_000)
}

/// Checks what `cargo xtask faults` would boot, without building.
pub fn dry_run(f: &FaultsOptions) -> Result<(), Error> {
    let root = root();
    let base = System::read(&root.join(&f.system))?;
    let (system, _) = campaign_system(&base, f)?;
    system.check(Some(f.opts.smp), &crate::server_binary_names(&root)?).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "\
[core 0] INFO  supervisor: server `injector-a` restarted as generation 1
[core 6] server `injector-a`: injector: generation 0: garbage messages 100, fuzzed syscalls 20, scribbles 3, drained 5, then int-0x80
[core 6] server `injector-a`: injector: generation 1: garbage messages 50, fuzzed syscalls 10, scribbles 0, drained 5, then exit-nonzero-9
[core 7] server `injector-b`: injector: generation 0: garbage messages 7, fuzzed syscalls 1, scribbles 1, drained 0, then ud2
[core 7] server `injector-b`: supervisor: total: faults 999, hangs 999, restarts 999
[core 7] server `injector-b`: messages checked 5, lost 0, duplicated 0, foreign 0
[core 6] ERROR FAULT server `injector-a` (core 6): vector 13 (#GP general protection), error 0x402, rip 0x201000; server stopped
[core 2] server `ping`: messages checked 10, lost 0, duplicated 0, foreign 4
[core 3] server `echo`: messages checked 10, lost 0, duplicated 0, foreign 9
[core 5] server `stream-sink`: messages checked 300, lost 0, duplicated 0, foreign 2
[core 0] INFO  rings: server `ping` outbox: sent 11, delivered 11, bounced 0, backpressure retries 0
[core 0] INFO  rings: server `echo` outbox: sent 10, delivered 10, bounced 0, backpressure retries 0
[core 0] INFO  rings: server `stream-source` outbox: sent 301, delivered 301, bounced 0
[core 0] INFO  supervisor: server `injector-a` (core 6): running, generation 2, restarts 2, faults 1, hangs 0, exits 1
[core 0] INFO  supervisor: total: faults 2, hangs 1, restarts 3
[core 0] INFO  server `injector-b` (core 7) exited with code 77
";

    #[test]
    fn kernel_facts_come_only_from_kernel_lines() {
        let r = Report::parse(LOG);
        assert_eq!(r.kernel_counts(), (2, 1, 3), "the server's forged total line is ignored");
        assert_eq!(r.restart_lines, 1);
        assert_eq!(r.fault_lines_by_vector.get(&13), Some(&1));
        assert_eq!(r.exit_codes.get(&77), Some(&1));
        assert_eq!(r.supervised["injector-a"].restarts, 2);
        assert_eq!(r.supervised["injector-a"].state, "running");
    }

    #[test]
    fn claims_are_summed_by_kind() {
        let r = Report::parse(LOG);
        assert_eq!((r.garbage, r.syscalls, r.scribbles, r.incarnations_reported), (157, 31, 4, 3));
        assert_eq!(r.injected(), 157 + 31 + 4 + 3);
        assert_eq!(r.fatal_by_kind["int N"], 1);
        assert_eq!(r.fatal_by_kind["exit-nonzero"], 1);
        assert_eq!(r.fatal_by_kind["ud2"], 1);
        assert_eq!(r.checked["ping"].foreign, 4);
        assert_eq!(r.checked.len(), 4);
    }

    #[test]
    fn a_clean_run_passes_and_each_must_be_zero_fails() {
        let r = Report::parse(LOG);
        assert_eq!(failures(&r, true, CHECKERS), Vec::<String>::new());
        assert!(ci_check(LOG, 100).is_empty());
        assert_eq!(ci_check(LOG, 1000).len(), 1);
        let lost = LOG.replace("`ping`: messages checked 10, lost 0", "`ping`: messages checked 10, lost 2");
        assert_eq!(failures(&Report::parse(&lost), true, CHECKERS).len(), 1);
        let dup = LOG.replace(
            "`echo`: messages checked 10, lost 0, duplicated 0",
            "`echo`: messages checked 10, lost 0, duplicated 1",
        );
        // Also disagrees with ping's outbox then.
        assert!(!failures(&Report::parse(&dup), true, CHECKERS).is_empty());
        let panic = format!("{LOG}PANIC core 3: panicked at x\n");
        assert_eq!(failures(&Report::parse(&panic), true, CHECKERS).len(), 1);
        assert_eq!(failures(&r, false, CHECKERS).len(), 1);
        let missing = LOG.replace("`echo`: messages checked", "`echo`: nothing");
        assert!(failures(&Report::parse(&missing), true, CHECKERS).iter().any(|p| p.contains("`echo`")));
    }

    #[test]
    fn ring_counters_must_agree_with_the_checkers() {
        let off = LOG.replace("sent 10, delivered 10,", "sent 10, delivered 9,");
        let problems = failures(&Report::parse(&off), true, CHECKERS);
        assert_eq!(problems.len(), 1, "{problems:?}");
    }

    #[test]
    fn a_forged_line_cannot_pass_for_the_kernel() {
        assert_eq!(
            classify("[core 2] server `ping`: [core 0] INFO  supervisor: total: faults 1"),
            Line::Server("ping", "[core 0] INFO  supervisor: total: faults 1")
        );
        assert_eq!(classify("[core 0] INFO  supervisor: total: faults 1"), Line::Kernel("supervisor: total: faults 1"));
        assert_eq!(classify("PANIC core 1: x"), Line::Fatal("PANIC core 1: x"));
        assert_eq!(classify("[core x] INFO  y"), Line::Other);
    }

    #[test]
    fn args_are_set_in_the_right_server_only() {
        let text = "[[server]]\nname = \"a\"\nargs = \"x=1 y=2\"\n\n[[server]]\nname = \"b\"\nargs = \"x=1\"\n";
        let out = set_arg(text, "b", "x", "9").unwrap();
        assert!(out.contains("name = \"a\"\nargs = \"x=1 y=2\""));
        assert!(out.contains("name = \"b\"\nargs = \"x=9\""));
        assert!(set_arg(text, "c", "x", "1").is_err());
    }

    #[test]
    fn the_shipped_campaign_system_checks_with_derived_args() {
        let root = root();
        let base = System::read(&root.join(FAULTS_SYSTEM)).unwrap();
        let mut args = Args { words: vec!["--injections".into(), "1000000".into()], qemu_extra: vec![] };
        let f = FaultsOptions::parse(&mut args).unwrap();
        let (system, generations) = campaign_system(&base, &f).unwrap();
        assert!(generations >= 2);
        assert!(system.text.contains(&format!("generations={generations}")));
        system_config::parse(&system.text).unwrap();
    }
}
