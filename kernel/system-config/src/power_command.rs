//! A live power-policy change as one line of text, `power core=2
//! sleep=hlt pause_us_before_sleep=20` (from the serial console or the
//! `power_control` system call), checked by the same code as a
//! `[power.core.N]` table of the file.
//!
//! Invariants: a command names one core and at least one key; every key is
//! one a `[power.core.N]` table takes, at most once, and its value goes
//! through `Checker::power_override` (the file's ranges and names), so an
//! error names the key as the file would (`power.core.2.sleep`) and its
//! column in the line. Values are bare words (`hlt`) or integers (`20`);
//! quotes are accepted and dropped. Nothing here depends on the machine:
//! whether core N exists and what it runs is the kernel's to check.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use toml::Spanned;

use crate::MAX_CONFIG_CORES;
use crate::check::checker;
use crate::error::{ConfigError, Span};
use crate::power_config::PowerOverride;
use crate::raw::RawPowerOverride;

/// The keys a command may set: those of `[power.core.N]`.
pub const POWER_COMMAND_KEYS: [&str; 7] = [
    "spin_polls_before_pause",
    "pause_us_before_sleep",
    "sleep",
    "mwait_hint",
    "idle_pstate",
    "hwp_epp_idle",
    "idle_pstate_after_us",
];

/// Longest command accepted (bytes).
pub const POWER_COMMAND_MAX: usize = abi::POWER_CONTROL_MAX;

/// A checked command: the keys to replace in one core's policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PowerCommand {
    /// The core whose policy changes.
    pub core: usize,
    /// The keys the command sets (merged over the core's current policy).
    pub policy: PowerOverride,
}

/// One `key=value` word, with byte ranges into the line.
struct Word<'a> {
    key: &'a str,
    key_at: core::ops::Range<usize>,
    value: &'a str,
    value_at: core::ops::Range<usize>,
}

fn words(line: &str) -> Result<Vec<Word<'_>>, ConfigError> {
    let mut out = Vec::new();
    let mut at = 0;
    for word in line.split(' ') {
        let start = at;
        at += word.len() + 1;
        if word.is_empty() {
            continue;
        }
        let Some((key, value)) = word.split_once('=') else {
            return Err(ConfigError::new(
                Some(Span::new(line, start..start + word.len())),
                None,
                format!("`{word}` is not key=value"),
                Some("words such as core=2 sleep=hlt pause_us_before_sleep=20".to_string()),
            ));
        };
        let value_start = start + key.len() + 1;
        let (value, value_at) = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(inner) => (inner, value_start + 1..value_start + 1 + inner.len()),
            None => (value, value_start..value_start + value.len()),
        };
        out.push(Word { key, key_at: start..start + key.len(), value, value_at });
    }
    Ok(out)
}

/// Parses and checks one command. `line` may start with the word `power`
/// (as typed on the console); tabs count as spaces.
pub fn parse_power_command(line: &str) -> Result<PowerCommand, ConfigError> {
    let text: String = line.trim_end_matches(['\r', '\n']).replace('\t', " ");
    if text.len() > POWER_COMMAND_MAX || text.chars().any(|c| c.is_control()) {
        return Err(ConfigError::new(
            None,
            None,
            format!("a command of {} bytes or with control characters", text.len()),
            Some(format!("at most {POWER_COMMAND_MAX} bytes of printable text")),
        ));
    }
    let body_start = match text.trim_start().strip_prefix("power") {
        Some(rest) if rest.is_empty() || rest.starts_with(' ') => text.len() - rest.len(),
        _ => 0,
    };
    // Spans are computed against the whole line, so columns match what was typed.
    let mut parsed = words(&text[body_start..])?;
    for w in &mut parsed {
        w.key_at = w.key_at.start + body_start..w.key_at.end + body_start;
        w.value_at = w.value_at.start + body_start..w.value_at.end + body_start;
    }
    let span = |r: &core::ops::Range<usize>| Span::new(&text, r.clone());
    let Some(core_word) = parsed.iter().find(|w| w.key == "core") else {
        return Err(ConfigError::new(
            None,
            Some("core".to_string()),
            "no core named",
            Some(format!("core=N with N in 0..{MAX_CONFIG_CORES}, then the keys to change")),
        ));
    };
    let core = match core_word.value.parse::<usize>() {
        Ok(n) if n < MAX_CONFIG_CORES => n,
        _ => {
            return Err(ConfigError::at(
                span(&core_word.value_at),
                "core",
                format!("`{}` is not a core number", core_word.value),
                format!("an integer in 0..{MAX_CONFIG_CORES}"),
            ));
        }
    };
    let prefix = format!("power.core.{core}");
    let mut raw = RawPowerOverride::default();
    let mut seen: Vec<&str> = Vec::new();
    for w in parsed.iter().filter(|w| w.key != "core") {
        let key = format!("{prefix}.{}", w.key);
        if !POWER_COMMAND_KEYS.contains(&w.key) {
            let allowed: Vec<&str> = POWER_COMMAND_KEYS.to_vec();
            return Err(ConfigError::at(
                span(&w.key_at),
                key,
                format!("`{}` is not a power policy key", w.key),
                format!("core and one or more of {}", crate::check::quoted(&allowed)),
            ));
        }
        if seen.contains(&w.key) {
            return Err(ConfigError::at(span(&w.key_at), key, "set twice", "each key at most once"));
        }
        seen.push(w.key);
        let at = w.value_at.clone();
        let int = || -> Result<Spanned<i64>, ConfigError> {
            w.value.parse::<i64>().map(|n| Spanned::new(at.clone(), n)).map_err(|_| {
                ConfigError::at(span(&at), key.clone(), format!("`{}` is not an integer", w.value), "an integer")
            })
        };
        let string = || Spanned::new(at.clone(), w.value.to_string());
        match w.key {
            "spin_polls_before_pause" => raw.spin_polls_before_pause = Some(int()?),
            "pause_us_before_sleep" => raw.pause_us_before_sleep = Some(int()?),
            "hwp_epp_idle" => raw.hwp_epp_idle = Some(int()?),
            "idle_pstate_after_us" => raw.idle_pstate_after_us = Some(int()?),
            "sleep" => raw.sleep = Some(string()),
            "mwait_hint" => raw.mwait_hint = Some(string()),
            _ => {
                let value = match w.value.parse::<i64>() {
                    Ok(n) => toml::Value::Integer(n),
                    Err(_) => toml::Value::String(w.value.to_string()),
                };
                raw.idle_pstate = Some(Spanned::new(at.clone(), value));
            }
        }
    }
    if seen.is_empty() {
        return Err(ConfigError::new(
            None,
            Some(prefix),
            "no key to change",
            Some(format!("one or more of {}", crate::check::quoted(&POWER_COMMAND_KEYS))),
        ));
    }
    let policy = checker(&text).power_override(&raw, &prefix)?;
    Ok(PowerCommand { core, policy })
}

/// One line for a refused command: the column in the command, the key and
/// what was expected (`column 14: key `power.core.2.sleep`: ...`).
pub fn describe_power_command_error(e: &ConfigError) -> String {
    let mut out = String::new();
    if let Some(column) = e.column() {
        out.push_str(&format!("column {column}: "));
    }
    if let Some(key) = e.key() {
        out.push_str(&format!("key `{key}`: "));
    }
    out.push_str(e.message());
    if let Some(expected) = e.expected() {
        out.push_str(&format!("; expected {expected}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::power_config::{IdlePstate, MwaitHint, SleepMode};

    #[test]
    fn the_console_example_parses() {
        let c = parse_power_command("power core=2 sleep=hlt pause_us_before_sleep=20").unwrap();
        assert_eq!(c.core, 2);
        assert_eq!(c.policy.sleep, Some(SleepMode::Hlt));
        assert_eq!(c.policy.pause_us_before_sleep, Some(20));
        assert_eq!(c.policy.spin_polls_before_pause, None);
    }

    #[test]
    fn every_key_and_the_word_power_is_optional() {
        let c = parse_power_command(
            "core=5  spin_polls_before_pause=0 mwait_hint=c2 idle_pstate=12 hwp_epp_idle=200 idle_pstate_after_us=7 sleep=\"mwait\"",
        )
        .unwrap();
        assert_eq!(c.core, 5);
        assert_eq!(c.policy.spin_polls_before_pause, Some(0));
        assert_eq!(c.policy.mwait_hint, MwaitHint::new(2));
        assert_eq!(c.policy.idle_pstate, Some(IdlePstate::Ratio(12)));
        assert_eq!(c.policy.hwp_epp_idle, Some(200));
        assert_eq!(c.policy.idle_pstate_after_us, Some(7));
        assert_eq!(c.policy.sleep, Some(SleepMode::Mwait));
        assert_eq!(
            parse_power_command("core=1 idle_pstate=lowest").unwrap().policy.idle_pstate,
            Some(IdlePstate::Lowest)
        );
    }

    fn refused(line: &str) -> (String, usize, String) {
        let e = parse_power_command(line).unwrap_err();
        (e.key().unwrap_or("").to_string(), e.column().unwrap_or(0), describe_power_command_error(&e))
    }

    #[test]
    fn errors_name_the_key_and_its_column_as_the_file_would() {
        let (key, column, text) = refused("power core=2 sleep=hlp");
        assert_eq!((key.as_str(), column), ("power.core.2.sleep", 20));
        assert!(text.contains("`hlp` is not a sleep mode"), "{text}");
        let (key, _, text) = refused("power core=2 pause_us_before_sleep=2000000");
        assert_eq!(key, "power.core.2.pause_us_before_sleep");
        assert!(text.contains("out of range") && text.contains("0..=1000000"), "{text}");
        let (key, column, text) = refused("power core=2 pause_ms=3");
        assert_eq!((key.as_str(), column), ("power.core.2.pause_ms", 14));
        assert!(text.contains("not a power policy key"), "{text}");
        let (key, _, _) = refused("power core=2 spin_polls_before_pause=lots");
        assert_eq!(key, "power.core.2.spin_polls_before_pause");
        let (key, _, _) = refused("power core=2 idle_pstate=0");
        assert_eq!(key, "power.core.2.idle_pstate");
        let (key, _, _) = refused("power core=2 sleep=hlt sleep=none");
        assert_eq!(key, "power.core.2.sleep");
    }

    #[test]
    fn a_command_needs_a_core_and_a_key() {
        assert_eq!(refused("power sleep=hlt").0, "core");
        assert_eq!(refused("power core=x sleep=hlt").0, "core");
        assert_eq!(refused("power core=99999 sleep=hlt").0, "core");
        assert_eq!(refused("power core=3").0, "power.core.3");
        assert!(refused("power core=3 sleep").2.contains("not key=value"));
        assert!(parse_power_command(&"x".repeat(300)).is_err());
        assert!(parse_power_command("core=1 sleep=hlt\u{7}").is_err());
    }

    #[test]
    fn nothing_panics_on_any_line() {
        let samples =
            ["", "power", "=", "core=", "core==1", "power core=1 sleep=\"", "core=1 \"=\"", "é=é core=1 sleep=é"];
        for s in samples {
            let _ = parse_power_command(s);
        }
        let mut seed = 7u64;
        for _ in 0..20_000 {
            let mut line = String::from("power core=2 sleep=hlt pause_us_before_sleep=20");
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let at = (seed as usize) % line.len();
            let ch = [' ', '=', '"', 'é', '9', '-', 'x'][(seed >> 20) as usize % 7];
            if seed & 1 == 0 {
                line.insert(at, ch);
            } else if line.is_char_boundary(at) {
                line.remove(at);
            }
            let _ = parse_power_command(&line);
        }
    }
}

#[cfg(test)]
mod grant_tests {
    use crate::parse;

    const BASE: &str = "[system]\nmover_cores = [1]\n\n[[server]]\nname = \"a\"\ncore = 2\n";

    #[test]
    fn power_control_defaults_to_false_and_round_trips() {
        let c = parse(BASE).unwrap();
        assert!(!c.servers[0].power_control);
        let c = parse(&format!("{BASE}power_control = true\n")).unwrap();
        assert!(c.servers[0].power_control);
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn a_power_control_that_is_not_a_bool_is_an_error_with_its_place() {
        let err = parse(&format!("{BASE}power_control = \"yes\"\n")).unwrap_err();
        assert_eq!(err.line(), Some(7), "{err}");
        assert!(err.column().is_some(), "{err}");
        let err = parse(&format!("{BASE}power_contrl = true\n")).unwrap_err();
        assert_eq!((err.line(), err.column()), (Some(7), Some(1)), "{err}");
    }
}
