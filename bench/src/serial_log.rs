//! Turns the serial log of a benchmark boot into [`Run`]s: one per
//! `BENCH-BEGIN` … `BENCH-END` block.
//!
//! The guest prints one record per line; the marker may follow any prefix
//! (`[core 0] INFO  BENCH latency …`), colour codes are stripped, and lines
//! without a marker are noise and ignored. Record shape:
//!
//! ```text
//! BENCH-BEGIN accel=tcg smp=4 cpu=max tsc_hz=2601000000 tsc_source=pit date=unknown
//! BENCH latency  name=… n=… median_cycles=… p99_cycles=… [rings= min_cycles= max_cycles= ok= tsc_backwards=]
//! BENCH stream   name=… n=… cycles=… [batch= rings= ok= tsc_backwards=]
//! BENCH counters phase=… core=… [role= cr3_writes= syscalls= interrupts= exceptions= messages=]
//! BENCH dropped  kind=stream name=… tsc_backwards=1   (kept in other_records: a stream whose TSC went backwards)
//! BENCH-END status=ok
//! ```
//!
//! Rules the parser keeps:
//! - a missing required key, a value that is not a number where one is
//!   needed, a token without `=`, a repeated key, `tsc_hz=0`, a stream with
//!   `cycles=0`, a record outside
//!   a block or an `END` without a `BEGIN` is a [`ParseError`] naming the
//!   1-based line number;
//! - unknown keys are kept in the record's `extra` map, and unknown record
//!   kinds (`BENCH power …`) in [`Run::other_records`], so a newer guest does
//!   not break an older host;
//! - a block cut short (the log ends, or a new `BEGIN` arrives, before
//!   `BENCH-END`) is kept with `end_line = None`; the report flags it.
//!
//! Over 400 lines on purpose: it is one job (the line format), and its
//! record types, errors, parser and tokenizer change together when the
//! format does; about 30 of the lines are its unit tests.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Keys a record carried that this version does not interpret, kept as text.
pub type ExtraKeys = BTreeMap<String, String>;

/// One benchmark block of the log: the figures of one boot, comparable with
/// each other.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Line of `BENCH-BEGIN` (1-based).
    pub begin_line: usize,
    /// Line of `BENCH-END`, or `None` when the block was cut short.
    pub end_line: Option<usize>,
    /// `status=` of `BENCH-END` (`ok` when the guest saw no failure).
    pub end_status: Option<String>,
    /// `kvm`, `tcg`, …; `unknown` when the guest did not say.
    pub accel: String,
    /// Number of vCPUs of the guest.
    pub smp: Option<u32>,
    /// QEMU CPU model (`max`, `host`, …).
    pub cpu: Option<String>,
    /// Calibrated TSC frequency used to turn cycles into time.
    pub tsc_hz: u64,
    /// How `tsc_hz` was found (`pit`, `hpet`, `cpuid15`, `kvm-leaf`, …).
    pub tsc_source: Option<String>,
    /// Date the guest or runner printed (`unknown` is kept as given).
    pub date: Option<String>,
    /// Logical CPUs of the host that ran QEMU: `host_cpus=` on `BENCH-BEGIN`
    /// if present; the caller may also fill it in (the guest cannot know).
    pub host_cpus: Option<u32>,
    /// Unknown keys of `BENCH-BEGIN`.
    pub begin_extra: ExtraKeys,
    /// `BENCH latency` records in log order.
    pub latencies: Vec<LatencySample>,
    /// `BENCH stream` records in log order.
    pub streams: Vec<StreamSample>,
    /// `BENCH counters` records in log order.
    pub counters: Vec<CoreCounters>,
    /// `BENCH <kind>` records of a kind this version does not know.
    pub other_records: Vec<OtherRecord>,
    /// Lines of the boot saying a mechanism fell back to another
    /// ([`crate::figures::is_fallback_line`], e.g. the kernel's `MWAIT
    /// returned at once … using hlt`): inside the block, or before its
    /// `BENCH-BEGIN` since the previous block ended.
    #[serde(default)]
    pub fallbacks: Vec<LogNote>,
}

/// A line of the serial log that is not a record but matters to a figure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogNote {
    /// Line number in the log (1-based).
    pub line: usize,
    /// The line without prefix colour codes and trailing whitespace.
    pub text: String,
}

/// A round-trip latency distribution (`BENCH latency`), in TSC cycles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LatencySample {
    /// Line number in the log (1-based).
    pub line: usize,
    /// `cacheline-pingpong`, `direct-ring-rtt`, `mover-rtt`, …
    pub name: String,
    /// Number of rings the mover served during the measurement.
    pub rings: Option<u32>,
    /// Measured round trips.
    pub n: u64,
    /// Replies whose sequence number and payload checked out.
    pub ok: Option<u64>,
    pub median_cycles: u64,
    pub p99_cycles: u64,
    pub min_cycles: Option<u64>,
    pub max_cycles: Option<u64>,
    /// Samples the guest dropped because the TSC went backwards between
    /// their two stamps (`tsc_backwards=`); the median, p99, min and max
    /// are of the `n - tsc_backwards` samples kept. `None`: not reported.
    #[serde(default)]
    pub tsc_backwards: Option<u64>,
    pub extra: ExtraKeys,
}

/// A one-way stream of messages timed end to end (`BENCH stream`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamSample {
    /// Line number in the log (1-based).
    pub line: usize,
    /// `direct-ring-stream`, `mover-stream`, …
    pub name: String,
    /// Messages published per release store.
    pub batch: Option<u32>,
    /// Number of rings the mover served during the measurement.
    pub rings: Option<u32>,
    /// Messages sent.
    pub n: u64,
    /// Messages received whose sequence number and payload checked out.
    pub ok: Option<u64>,
    /// TSC cycles from the first send to the last receive.
    pub cycles: u64,
    /// `tsc_backwards=` (0 for a kept stream: a stream whose clock went
    /// backwards is printed as `BENCH dropped kind=stream …` instead).
    #[serde(default)]
    pub tsc_backwards: Option<u64>,
    pub extra: ExtraKeys,
}

/// Event counts of one core over one measured phase (`BENCH counters`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoreCounters {
    /// Line number in the log (1-based).
    pub line: usize,
    /// Name of the measurement the counts cover (`mover-rtt`, …).
    pub phase: String,
    /// Core (APIC or logical) number.
    pub core: u32,
    /// `client`, `server`, `mover`, …
    pub role: Option<String>,
    /// Address-space switches: the context-switch count.
    pub cr3_writes: Option<u64>,
    pub syscalls: Option<u64>,
    pub interrupts: Option<u64>,
    pub exceptions: Option<u64>,
    /// Messages this core sent, received or moved in the phase.
    pub messages: Option<u64>,
    pub extra: ExtraKeys,
}

/// A `BENCH <kind> …` record of a kind this version does not interpret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OtherRecord {
    pub line: usize,
    pub kind: String,
    pub fields: ExtraKeys,
}

/// Why a serial log could not be read; `line` is 1-based (0: the whole log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub kind: ParseErrorKind,
    /// The offending line with prefix and colour codes, for the message.
    pub text: String,
}

/// What was wrong with the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ParseErrorKind {
    /// A record lacks a key it cannot be understood without.
    MissingKey { record: String, key: &'static str },
    /// A numeric key holds something else.
    NotANumber { key: String, value: String },
    /// A token after the record kind has no `=`.
    TokenWithoutEquals { token: String },
    /// The same key twice in one record.
    RepeatedKey { key: String },
    /// `tsc_hz=0`: no time can be derived from cycles.
    ZeroTscHz,
    /// A stream with `cycles=0`: no rate can be derived.
    ZeroStreamCycles,
    /// `BENCH` with nothing after it.
    MissingRecordKind,
    /// A `BENCH` record before any `BENCH-BEGIN` (or after its `END`).
    RecordOutsideRun,
    /// `BENCH-END` with no open block.
    EndWithoutBegin,
    /// The log holds no `BENCH-BEGIN` at all.
    NoRuns,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "serial log: ")?;
        } else {
            write!(f, "serial log line {}: ", self.line)?;
        }
        match &self.kind {
            ParseErrorKind::MissingKey { record, key } => {
                write!(f, "`BENCH {record}` record lacks required key `{key}`")?
            }
            ParseErrorKind::NotANumber { key, value } => {
                write!(f, "`{key}={value}`: value is not an unsigned integer")?
            }
            ParseErrorKind::TokenWithoutEquals { token } => write!(f, "`{token}` is not a key=value pair")?,
            ParseErrorKind::RepeatedKey { key } => write!(f, "key `{key}` given twice")?,
            ParseErrorKind::ZeroTscHz => write!(f, "`tsc_hz=0`: cannot convert cycles to time")?,
            ParseErrorKind::ZeroStreamCycles => write!(f, "stream with `cycles=0`: no rate can be derived")?,
            ParseErrorKind::MissingRecordKind => write!(f, "`BENCH` without a record kind")?,
            ParseErrorKind::RecordOutsideRun => write!(f, "`BENCH` record outside a BENCH-BEGIN … BENCH-END block")?,
            ParseErrorKind::EndWithoutBegin => write!(f, "`BENCH-END` without `BENCH-BEGIN`")?,
            ParseErrorKind::NoRuns => write!(f, "no `BENCH-BEGIN` line: the benchmark did not start")?,
        }
        if !self.text.is_empty() {
            write!(f, "\n    {}", self.text)?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole serial log into its benchmark blocks, in log order.
///
/// Fails on the first malformed `BENCH` line, or when there is no block.
pub fn parse(log: &str) -> Result<Vec<Run>, ParseError> {
    let mut runs = Vec::new();
    let mut open_run: Option<Run> = None;
    // Fallback lines seen outside a block belong to the boot whose block
    // comes next.
    let mut pending_fallbacks = Vec::new();
    for (index, raw_line) in log.lines().enumerate() {
        let line_number = index + 1;
        let line = strip_ansi_escapes(raw_line.trim_end_matches('\r'));
        let Some((marker, rest)) = find_marker(&line) else {
            if crate::figures::is_fallback_line(&line) {
                let note = LogNote { line: line_number, text: line.trim_end().to_string() };
                match open_run.as_mut() {
                    Some(run) => run.fallbacks.push(note),
                    None => pending_fallbacks.push(note),
                }
            }
            continue;
        };
        let error = |kind| ParseError { line: line_number, kind, text: raw_line.trim_end().to_string() };
        match marker {
            Marker::Begin => {
                let fields = Fields::split(rest).map_err(error)?;
                let mut run = begin_run(line_number, fields).map_err(error)?;
                run.fallbacks = std::mem::take(&mut pending_fallbacks);
                if let Some(unfinished) = open_run.replace(run) {
                    runs.push(unfinished);
                }
            }
            Marker::End => {
                let mut fields = Fields::split(rest).map_err(error)?;
                let Some(mut run) = open_run.take() else {
                    return Err(error(ParseErrorKind::EndWithoutBegin));
                };
                run.end_line = Some(line_number);
                run.end_status = fields.take_text("status");
                runs.push(run);
            }
            Marker::Record => {
                let rest = rest.trim_start();
                let (kind, rest) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
                if kind.is_empty() {
                    return Err(error(ParseErrorKind::MissingRecordKind));
                }
                let Some(run) = open_run.as_mut() else {
                    return Err(error(ParseErrorKind::RecordOutsideRun));
                };
                let fields = Fields::split(rest).map_err(error)?;
                add_record(run, line_number, kind, fields).map_err(error)?;
            }
        }
    }
    runs.extend(open_run);
    if runs.is_empty() {
        return Err(ParseError { line: 0, kind: ParseErrorKind::NoRuns, text: String::new() });
    }
    Ok(runs)
}

fn begin_run(line: usize, mut fields: Fields) -> Result<Run, ParseErrorKind> {
    let tsc_hz = fields.take_required_number("BEGIN", "tsc_hz")?;
    if tsc_hz == 0 {
        return Err(ParseErrorKind::ZeroTscHz);
    }
    Ok(Run {
        begin_line: line,
        end_line: None,
        end_status: None,
        accel: fields.take_text("accel").unwrap_or_else(|| "unknown".to_string()),
        smp: fields.take_number("smp")?,
        cpu: fields.take_text("cpu"),
        tsc_hz,
        tsc_source: fields.take_text("tsc_source"),
        date: fields.take_text("date"),
        host_cpus: fields.take_number("host_cpus")?,
        begin_extra: fields.into_extra(),
        latencies: Vec::new(),
        streams: Vec::new(),
        counters: Vec::new(),
        other_records: Vec::new(),
        fallbacks: Vec::new(),
    })
}

fn add_record(run: &mut Run, line: usize, kind: &str, mut fields: Fields) -> Result<(), ParseErrorKind> {
    match kind {
        "latency" => run.latencies.push(LatencySample {
            line,
            name: fields.take_required_text("latency", "name")?,
            n: fields.take_required_number("latency", "n")?,
            median_cycles: fields.take_required_number("latency", "median_cycles")?,
            p99_cycles: fields.take_required_number("latency", "p99_cycles")?,
            rings: fields.take_number("rings")?,
            ok: fields.take_number("ok")?,
            min_cycles: fields.take_number("min_cycles")?,
            max_cycles: fields.take_number("max_cycles")?,
            tsc_backwards: fields.take_number("tsc_backwards")?,
            extra: fields.into_extra(),
        }),
        "stream" => {
            let name = fields.take_required_text("stream", "name")?;
            let n = fields.take_required_number("stream", "n")?;
            let cycles = fields.take_required_number("stream", "cycles")?;
            if cycles == 0 {
                return Err(ParseErrorKind::ZeroStreamCycles);
            }
            run.streams.push(StreamSample {
                line,
                name,
                n,
                cycles,
                batch: fields.take_number("batch")?,
                rings: fields.take_number("rings")?,
                ok: fields.take_number("ok")?,
                tsc_backwards: fields.take_number("tsc_backwards")?,
                extra: fields.into_extra(),
            })
        }
        "counters" => run.counters.push(CoreCounters {
            line,
            phase: fields.take_required_text("counters", "phase")?,
            core: fields.take_required_number("counters", "core")?,
            role: fields.take_text("role"),
            cr3_writes: fields.take_number("cr3_writes")?,
            syscalls: fields.take_number("syscalls")?,
            interrupts: fields.take_number("interrupts")?,
            exceptions: fields.take_number("exceptions")?,
            messages: fields.take_number("messages")?,
            extra: fields.into_extra(),
        }),
        _ => run.other_records.push(OtherRecord { line, kind: kind.to_string(), fields: fields.into_extra() }),
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Marker {
    Begin,
    End,
    Record,
}

/// Finds the first `BENCH-BEGIN`, `BENCH-END` or `BENCH ` that starts a word,
/// and returns it with the text after it.
fn find_marker(line: &str) -> Option<(Marker, &str)> {
    let mut search_from = 0;
    while let Some(offset) = line[search_from..].find("BENCH") {
        let start = search_from + offset;
        let after = &line[start + "BENCH".len()..];
        search_from = start + "BENCH".len();
        let starts_word =
            line[..start].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '-'));
        if !starts_word {
            continue;
        }
        let ends_word = |rest: &str| rest.chars().next().is_none_or(char::is_whitespace);
        if let Some(rest) = after.strip_prefix("-BEGIN").filter(|rest| ends_word(rest)) {
            return Some((Marker::Begin, rest));
        }
        if let Some(rest) = after.strip_prefix("-END").filter(|rest| ends_word(rest)) {
            return Some((Marker::End, rest));
        }
        if after.starts_with(char::is_whitespace) || after.is_empty() {
            return Some((Marker::Record, after));
        }
    }
    None
}

/// Removes ANSI CSI sequences (`ESC [ … final-byte`) a logger may colour with.
fn strip_ansi_escapes(line: &str) -> Cow<'_, str> {
    if !line.contains('\u{1b}') {
        return Cow::Borrowed(line);
    }
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        } else {
            plain.push(c);
        }
    }
    Cow::Owned(plain)
}

/// The `key=value` tokens of one record; typed getters remove what they read,
/// so whatever is left is unknown and kept as `extra`.
struct Fields {
    values: ExtraKeys,
}

impl Fields {
    fn split(text: &str) -> Result<Fields, ParseErrorKind> {
        let mut values = ExtraKeys::new();
        for token in text.split_whitespace() {
            let Some((key, value)) = token.split_once('=') else {
                return Err(ParseErrorKind::TokenWithoutEquals { token: token.to_string() });
            };
            if key.is_empty() {
                return Err(ParseErrorKind::TokenWithoutEquals { token: token.to_string() });
            }
            if values.insert(key.to_string(), value.to_string()).is_some() {
                return Err(ParseErrorKind::RepeatedKey { key: key.to_string() });
            }
        }
        Ok(Fields { values })
    }

    fn take_text(&mut self, key: &str) -> Option<String> {
        self.values.remove(key)
    }

    fn take_required_text(&mut self, record: &str, key: &'static str) -> Result<String, ParseErrorKind> {
        self.take_text(key).ok_or_else(|| ParseErrorKind::MissingKey { record: record.to_string(), key })
    }

    fn take_number<T: std::str::FromStr>(&mut self, key: &str) -> Result<Option<T>, ParseErrorKind> {
        match self.values.remove(key) {
            None => Ok(None),
            Some(value) => match value.parse() {
                Ok(number) => Ok(Some(number)),
                Err(_) => Err(ParseErrorKind::NotANumber { key: key.to_string(), value }),
            },
        }
    }

    fn take_required_number<T: std::str::FromStr>(
        &mut self,
        record: &str,
        key: &'static str,
    ) -> Result<T, ParseErrorKind> {
        self.take_number(key)?.ok_or_else(|| ParseErrorKind::MissingKey { record: record.to_string(), key })
    }

    fn into_extra(self) -> ExtraKeys {
        self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_is_found_after_a_prefix_and_only_as_a_word() {
        assert_eq!(find_marker("[core 0] INFO  BENCH latency x=1").map(|m| m.0), Some(Marker::Record));
        assert_eq!(find_marker("BENCH-BEGIN tsc_hz=1").map(|m| m.0), Some(Marker::Begin));
        assert_eq!(find_marker("[x]BENCH-END").map(|m| m.0), Some(Marker::End));
        assert_eq!(find_marker("running BENCHMARKS now"), None);
        assert_eq!(find_marker("MYBENCH latency"), None);
        assert_eq!(find_marker("BENCH-BEGINNING"), None);
    }

    #[test]
    fn colour_codes_are_removed() {
        assert_eq!(strip_ansi_escapes("\u{1b}[32mINFO\u{1b}[0mBENCH x"), "INFOBENCH x");
        assert_eq!(find_marker(&strip_ansi_escapes("\u{1b}[0mBENCH-END status=ok")).map(|m| m.0), Some(Marker::End));
    }
}
