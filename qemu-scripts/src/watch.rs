//! `cargo xtask run --watch`: the live per-core view. The kernel (boot
//! argument `watch_ms=N`) prints a `WATCH ...` line per core every N ms;
//! this turns each tick into a table, redrawn in place on a terminal
//! (with the last few console lines under it), or printed as plain text
//! blocks when stdout is not a terminal (a log, a pipe, the test).
//!
//! Invariants: a tick is drawn when the first line of the next tick
//! arrives (lines of one tick share `t_ms`), so a table never mixes two
//! ticks; a line that is not a well-formed WATCH line is passed through
//! as console output, never dropped.

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

/// One core's figures for one tick (shares in per mille of the tick).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub core: usize,
    pub role: String,
    pub poll: u64,
    pub pause: u64,
    pub asleep: u64,
    pub msgs: u64,
    pub pstate: u64,
    pub wakeups: u64,
}

/// Parses `WATCH t_ms=.. core=.. role=.. poll=.. pause=.. asleep=.. msgs=.. pstate=.. wakeups=..`.
pub fn parse_line(line: &str) -> Option<(u64, Row)> {
    let rest = line.trim().strip_prefix("WATCH ")?;
    let mut fields = BTreeMap::new();
    for word in rest.split_whitespace() {
        let (k, v) = word.split_once('=')?;
        fields.insert(k, v);
    }
    let num = |k: &str| fields.get(k).and_then(|v| v.parse::<u64>().ok());
    let row = Row {
        core: num("core")? as usize,
        role: fields.get("role")?.to_string(),
        poll: num("poll")?,
        pause: num("pause")?,
        asleep: num("asleep")?,
        msgs: num("msgs")?,
        pstate: num("pstate")?,
        wakeups: num("wakeups")?,
    };
    Some((num("t_ms")?, row))
}

/// The view's state: the tick being collected and the recent console lines.
#[derive(Default)]
pub struct View {
    tick: Option<(u64, u64)>,
    rows: BTreeMap<usize, Row>,
    recent: VecDeque<String>,
}

fn share(per_mille: u64) -> String {
    format!("{}.{}%", per_mille / 10, per_mille % 10)
}

impl View {
    /// Takes one console line; returns a finished tick's table, if this
    /// line started the next one. `tick_ms` is the period (for rates).
    pub fn feed(&mut self, line: &str, period_ms: u64) -> Option<String> {
        let Some((t_ms, row)) = parse_line(line) else {
            self.recent.push_back(line.trim_end().to_string());
            while self.recent.len() > 8 {
                self.recent.pop_front();
            }
            return None;
        };
        let mut done = None;
        if let Some((current, _)) = self.tick
            && current != t_ms
            && !self.rows.is_empty()
        {
            done = Some(self.render(period_ms));
            self.rows.clear();
        }
        self.tick = Some((t_ms, period_ms));
        self.rows.insert(row.core, row);
        done
    }

    /// The table of the tick collected so far.
    pub fn render(&self, period_ms: u64) -> String {
        let t_ms = self.tick.map_or(0, |t| t.0);
        let mut out = format!("watch: t = {t_ms} ms (every {period_ms} ms)\n");
        out.push_str(&format!(
            "{:>4}  {:<8} {:>8} {:>8} {:>8} {:>10} {:>7} {:>9}\n",
            "core", "role", "polling", "pausing", "asleep", "msgs/s", "P-state", "wake-ups"
        ));
        for r in self.rows.values() {
            let per_s = r.msgs * 1000 / period_ms.max(1);
            out.push_str(&format!(
                "{:>4}  {:<8} {:>8} {:>8} {:>8} {:>10} {:>7} {:>9}\n",
                r.core,
                r.role,
                share(r.poll),
                share(r.pause),
                share(r.asleep),
                per_s,
                r.pstate,
                r.wakeups
            ));
        }
        out
    }

    /// The last console lines that were not WATCH lines.
    pub fn recent(&self) -> impl Iterator<Item = &str> {
        self.recent.iter().map(String::as_str)
    }
}

static VIEW: Mutex<Option<View>> = Mutex::new(None);
static PERIOD_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(500);

/// Sets the period the kernel was asked for (for messages per second).
pub fn set_period_ms(ms: u64) {
    PERIOD_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
}

/// `QemuOptions::on_line` for `--watch`: a terminal gets the table
/// redrawn in place with the recent console lines under it; anything else
/// gets the console lines as they come and a plain table per tick.
pub fn on_line(line: &str) {
    let period = PERIOD_MS.load(std::sync::atomic::Ordering::Relaxed);
    let terminal = std::io::stdout().is_terminal();
    let mut guard = VIEW.lock().unwrap_or_else(|e| e.into_inner());
    let view = guard.get_or_insert_with(View::default);
    let frame = view.feed(line, period);
    let mut out = std::io::stdout().lock();
    if terminal {
        if let Some(table) = frame {
            let _ = writeln!(out, "\x1b[2J\x1b[H{table}");
            for recent in view.recent() {
                let _ = writeln!(out, "  | {recent}");
            }
        } else if parse_line(line).is_none() && view.tick.is_none() {
            // Before the first tick: the boot log as usual.
            let _ = write!(out, "{line}");
        }
    } else {
        if parse_line(line).is_none() {
            let _ = write!(out, "{line}");
        }
        if let Some(table) = frame {
            let _ = write!(out, "{table}");
        }
    }
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = "[core 0] INFO  watch: a WATCH line per core every 500 ms
WATCH t_ms=500 core=1 role=mover poll=900 pause=0 asleep=100 msgs=5000 pstate=0 wakeups=10
WATCH t_ms=500 core=2 role=server poll=1000 pause=0 asleep=0 msgs=0 pstate=0 wakeups=0
[core 2] server `ping`: something
WATCH t_ms=1000 core=1 role=mover poll=500 pause=0 asleep=500 msgs=2500 pstate=0 wakeups=40
WATCH t_ms=1000 core=2 role=server poll=12 pause=3 asleep=985 msgs=0 pstate=2 wakeups=7
WATCH t_ms=1500 core=1 role=mover poll=0 pause=0 asleep=1000 msgs=0 pstate=0 wakeups=0
";

    #[test]
    fn parses_the_kernel_line_and_refuses_others() {
        let (t, row) =
            parse_line("WATCH t_ms=1000 core=2 role=server poll=12 pause=3 asleep=985 msgs=0 pstate=2 wakeups=7")
                .unwrap();
        assert_eq!(t, 1000);
        assert_eq!((row.core, row.role.as_str(), row.asleep, row.pstate, row.wakeups), (2, "server", 985, 2, 7));
        assert!(parse_line("WATCH t_ms=1 core=x").is_none());
        assert!(parse_line("[core 2] server `x`: WATCH t_ms=1").is_none(), "a server cannot forge a line mid-text");
    }

    #[test]
    fn one_plain_table_per_finished_tick() {
        let mut view = View::default();
        let frames: Vec<String> = LOG.lines().filter_map(|l| view.feed(l, 500)).collect();
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(frames[0].starts_with("watch: t = 500 ms (every 500 ms)\n"));
        assert!(
            frames[0].contains("   1  mover       90.0%     0.0%    10.0%      10000       0        10"),
            "{}",
            frames[0]
        );
        assert!(
            frames[1].contains("   2  server       1.2%     0.3%    98.5%          0       2         7"),
            "{}",
            frames[1]
        );
        assert_eq!(
            view.recent().collect::<Vec<_>>(),
            ["[core 0] INFO  watch: a WATCH line per core every 500 ms", "[core 2] server `ping`: something"]
        );
    }
}
