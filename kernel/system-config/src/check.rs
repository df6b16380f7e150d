//! Turns the raw, spanned file into a checked [`SystemConfig`], and checks a
//! config against a [`Machine`].
//!
//! Invariants: every check that fails returns an error at the span of the
//! offending value (or key), naming the dotted key path and what was
//! expected. Checks run in file order, so the first error reported is the
//! first one a reader meets. No check indexes with a value from the file
//! without a bound check first.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Deserialize;
use toml::Spanned;
use toml::de::DeTable;

use crate::error::{ConfigError, Span};
use crate::locate;
use crate::power_config::{CoreOverride, IdlePstate, MwaitHint, Origin, PowerConfig, PowerOverride, SleepMode};
use crate::raw::{RawFile, RawPower, RawPowerOverride, RawServer};
use crate::{
    ARGS_MAX_BYTES, DEFAULT_RING_SLOTS, DEFAULT_STACK_KIB, Endpoint, MAX_BINARY_LEN, MAX_CONFIG_CORES, MAX_MOVER_CORES,
    MAX_NAME_LEN, MAX_SERVER_ENDPOINTS, Machine, RING_SLOTS_RANGE, STACK_KIB_RANGE, Server, ServerOrigin, SystemConfig,
};

const SPIN_POLLS_MAX: i64 = 100_000_000;
const PAUSE_US_MAX: i64 = 1_000_000;

pub(crate) fn parse(text: &str) -> Result<SystemConfig, ConfigError> {
    let doc = DeTable::parse(text).map_err(|e| locate::syntax_error(text, &e))?;
    let raw = RawFile::deserialize(toml::de::Deserializer::from(doc)).map_err(|e| locate::schema_error(text, &e))?;
    Checker { text }.system(raw)
}

pub(crate) struct Checker<'t> {
    text: &'t str,
}

/// A checker for `text` (the live power command reuses the file's checks).
pub(crate) fn checker(text: &str) -> Checker<'_> {
    Checker { text }
}

impl Checker<'_> {
    pub(crate) fn span<T>(&self, value: &Spanned<T>) -> Span {
        Span::new(self.text, value.span())
    }

    fn origin<T>(&self, value: &Spanned<T>) -> Origin {
        Origin(self.span(value))
    }

    /// An integer in `min..=max`.
    fn int(&self, value: &Spanned<i64>, key: &str, min: i64, max: i64) -> Result<i64, ConfigError> {
        let n = *value.get_ref();
        if (min..=max).contains(&n) {
            Ok(n)
        } else {
            Err(ConfigError::at(
                self.span(value),
                key,
                format!("{n} is out of range"),
                format!("an integer in {min}..={max}"),
            ))
        }
    }

    pub(crate) fn u32_in(&self, value: &Spanned<i64>, key: &str, min: u32, max: u32) -> Result<u32, ConfigError> {
        let n = self.int(value, key, i64::from(min), i64::from(max))?;
        // In range of a u32 by the check above.
        Ok(u32::try_from(n).unwrap_or(max))
    }

    fn core(&self, value: &Spanned<i64>, key: &str) -> Result<usize, ConfigError> {
        let max = i64::try_from(MAX_CONFIG_CORES - 1).unwrap_or(i64::MAX);
        let n = self.int(value, key, 0, max)?;
        Ok(usize::try_from(n).unwrap_or(MAX_CONFIG_CORES))
    }

    pub(crate) fn ring_slots(&self, value: &Spanned<i64>, key: &str) -> Result<u32, ConfigError> {
        let (min, max) = RING_SLOTS_RANGE;
        let expected = format!("a power of two in {min}..={max} (slots of 64 bytes)");
        let n = *value.get_ref();
        if !(i64::from(min)..=i64::from(max)).contains(&n) {
            return Err(ConfigError::at(self.span(value), key, format!("{n} slots is out of range"), expected));
        }
        let n = u32::try_from(n).unwrap_or(max);
        if !n.is_power_of_two() {
            return Err(ConfigError::at(self.span(value), key, format!("{n} slots is not a power of two"), expected));
        }
        Ok(n)
    }

    fn system(&self, raw: RawFile) -> Result<SystemConfig, ConfigError> {
        let mut mover_cores = Vec::new();
        let mut mover_core_origins = Vec::new();
        let listed = &raw.system.mover_cores;
        if listed.get_ref().is_empty() {
            return Err(ConfigError::at(
                self.span(listed),
                "system.mover_cores",
                "no mover core",
                "at least one core number, e.g. [1]",
            ));
        }
        for (i, core) in listed.get_ref().iter().enumerate() {
            let key = format!("system.mover_cores[{i}]");
            if i == MAX_MOVER_CORES {
                return Err(ConfigError::at(
                    self.span(core),
                    key,
                    format!("{} mover cores", listed.get_ref().len()),
                    format!("at most {MAX_MOVER_CORES} mover cores (abi::MAX_MOVERS)"),
                ));
            }
            let n = self.core(core, &key)?;
            if mover_cores.contains(&n) {
                return Err(ConfigError::at(
                    self.span(core),
                    key,
                    format!("core {n} is listed twice"),
                    "distinct cores",
                ));
            }
            mover_cores.push(n);
            mover_core_origins.push(self.origin(core));
        }
        let ring_slots_default = match &raw.system.ring_slots_default {
            Some(v) => self.ring_slots(v, "system.ring_slots_default")?,
            None => DEFAULT_RING_SLOTS,
        };

        let names = self.server_names(&raw.server)?;
        let mut servers: Vec<Server> = Vec::with_capacity(raw.server.len());
        let mut round_robin = 0;
        for (index, table) in raw.server.iter().enumerate() {
            let server =
                self.server(index, table, &servers, &names, &mover_cores, ring_slots_default, &mut round_robin)?;
            servers.push(server);
        }

        let power = self.power(&raw.power)?;
        let direct_rings = self.direct_rings(&raw.direct_ring, &names, ring_slots_default)?;
        let regions = self.regions(&raw.region, &names)?;
        let devices = self.devices(&raw.device, &names)?;
        Ok(SystemConfig {
            mover_cores,
            mover_core_origins,
            ring_slots_default,
            servers,
            power,
            direct_rings,
            regions,
            devices,
        })
    }

    /// Checks every name's form and uniqueness; maps name → index.
    fn server_names<'a>(&self, servers: &'a [Spanned<RawServer>]) -> Result<BTreeMap<&'a str, usize>, ConfigError> {
        let mut names = BTreeMap::new();
        for (index, table) in servers.iter().enumerate() {
            let name = &table.get_ref().name;
            let key = format!("server[{index}].name");
            if !valid_name(name.get_ref()) {
                return Err(ConfigError::at(
                    self.span(name),
                    key,
                    format!("`{}` is not a valid server name", name.get_ref()),
                    format!("1 to {MAX_NAME_LEN} characters from a-z, 0-9, `_` and `-`"),
                ));
            }
            if let Some(&first) = names.get(name.get_ref().as_str()) {
                let first: &Spanned<RawServer> = &servers[first];
                return Err(ConfigError::at(
                    self.span(name),
                    key,
                    format!(
                        "two servers named `{}` (lines {} and {})",
                        name.get_ref(),
                        self.span(&first.get_ref().name).line,
                        self.span(name).line,
                    ),
                    "unique server names",
                ));
            }
            names.insert(name.get_ref().as_str(), index);
        }
        Ok(names)
    }

    #[allow(clippy::too_many_arguments)]
    fn server(
        &self,
        index: usize,
        table: &Spanned<RawServer>,
        earlier: &[Server],
        names: &BTreeMap<&str, usize>,
        mover_cores: &[usize],
        ring_slots_default: u32,
        round_robin: &mut usize,
    ) -> Result<Server, ConfigError> {
        let raw = table.get_ref();
        let prefix = format!("server[{index}]");
        let name = raw.name.get_ref().clone();

        let (binary, binary_origin) = match &raw.binary {
            Some(b) => {
                if !valid_binary(b.get_ref()) {
                    return Err(ConfigError::at(
                        self.span(b),
                        format!("{prefix}.binary"),
                        format!("`{}` is not a valid binary file name", b.get_ref()),
                        format!(
                            "1 to {MAX_BINARY_LEN} characters from A-Z, a-z, 0-9, `.`, `_`, `-`, `/`, \
                             a relative path without `.` or `..` parts"
                        ),
                    ));
                }
                (b.get_ref().clone(), self.origin(b))
            }
            None => (name.clone(), self.origin(&raw.name)),
        };

        let core_key = format!("{prefix}.core");
        let core = self.core(&raw.core, &core_key)?;
        if core == 0 {
            return Err(ConfigError::at(
                self.span(&raw.core),
                core_key,
                format!("server `{name}` on core 0, which runs the kernel"),
                "a core other than 0",
            ));
        }
        if mover_cores.contains(&core) {
            return Err(ConfigError::at(
                self.span(&raw.core),
                core_key,
                format!("server `{name}` on core {core}, a mover core"),
                format!("a core not in system.mover_cores {}", list(mover_cores)),
            ));
        }
        // Several servers may share a core (they are called, one at a time);
        // a core holds at most `abi::MAX_SERVERS_PER_CORE`.
        let sharing = earlier.iter().filter(|s| s.core == core).count();
        if sharing >= abi::MAX_SERVERS_PER_CORE {
            return Err(ConfigError::at(
                self.span(&raw.core),
                core_key,
                format!("server `{name}` would be server number {} on core {core}", sharing + 1),
                format!("at most {} servers on one core", abi::MAX_SERVERS_PER_CORE),
            ));
        }

        let stack_kib = match &raw.stack_kib {
            Some(v) => {
                let key = format!("{prefix}.stack_kib");
                let (min, max) = STACK_KIB_RANGE;
                let kib = self.u32_in(v, &key, min, max)?;
                if kib % 4 != 0 {
                    return Err(ConfigError::at(
                        self.span(v),
                        key,
                        format!("{kib} KiB is not a whole number of 4 KiB pages"),
                        format!("a multiple of 4 in {min}..={max}"),
                    ));
                }
                kib
            }
            None => DEFAULT_STACK_KIB,
        };
        let inbox_slots = match &raw.inbox_slots {
            Some(v) => self.ring_slots(v, &format!("{prefix}.inbox_slots"))?,
            None => ring_slots_default,
        };
        let outbox_slots = match &raw.outbox_slots {
            Some(v) => self.ring_slots(v, &format!("{prefix}.outbox_slots"))?,
            None => ring_slots_default,
        };

        let mut endpoints: Vec<Endpoint> = Vec::with_capacity(raw.endpoints.len());
        for (i, target) in raw.endpoints.iter().enumerate() {
            let key = format!("{prefix}.endpoints[{i}]");
            if i == MAX_SERVER_ENDPOINTS {
                return Err(ConfigError::at(
                    self.span(target),
                    key,
                    format!("server `{name}` has {} endpoints", raw.endpoints.len()),
                    format!("at most {MAX_SERVER_ENDPOINTS} endpoints per server (abi::MAX_ENDPOINTS)"),
                ));
            }
            let Some(&server) = names.get(target.get_ref().as_str()) else {
                let known: Vec<&str> = names.keys().copied().collect();
                return Err(ConfigError::at(
                    self.span(target),
                    key,
                    format!("no server named `{}`", target.get_ref()),
                    format!("the name of a server in this file ({})", quoted(&known)),
                ));
            };
            if endpoints.iter().any(|e| e.server == server) {
                return Err(ConfigError::at(
                    self.span(target),
                    key,
                    format!("`{}` is listed twice", target.get_ref()),
                    "each endpoint once",
                ));
            }
            endpoints.push(Endpoint { name: target.get_ref().clone(), server });
        }

        let (mover_core, mover_core_explicit) = match &raw.mover_core {
            Some(v) => {
                let key = format!("{prefix}.mover_core");
                let n = self.core(v, &key)?;
                if !mover_cores.contains(&n) {
                    return Err(ConfigError::at(
                        self.span(v),
                        key,
                        format!("core {n} is not a mover core"),
                        format!("one of system.mover_cores {}", list(mover_cores)),
                    ));
                }
                (n, true)
            }
            None => {
                // Non-empty: checked before any server.
                let n = mover_cores[*round_robin % mover_cores.len()];
                *round_robin += 1;
                (n, false)
            }
        };

        let args = match &raw.args {
            Some(v) => {
                let text = v.get_ref();
                if text.len() > ARGS_MAX_BYTES || text.chars().any(|c| c.is_control()) {
                    return Err(ConfigError::at(
                        self.span(v),
                        format!("{prefix}.args"),
                        format!("args are {} bytes or hold control characters", text.len()),
                        format!("at most {ARGS_MAX_BYTES} bytes of printable text"),
                    ));
                }
                text.clone()
            }
            None => String::new(),
        };

        let service = raw.service.as_ref().is_some_and(|v| *v.get_ref());
        let restart = self.restart_policy(raw, &prefix)?;
        let stall_ms = self.stall_ms(raw, &prefix)?;
        let power_control = raw.power_control.as_ref().is_some_and(|v| *v.get_ref());

        Ok(Server {
            index,
            name,
            binary,
            core,
            args,
            stack_kib,
            service,
            inbox_slots,
            outbox_slots,
            endpoints,
            mover_core,
            mover_core_explicit,
            restart,
            stall_ms,
            power_control,
            origin: ServerOrigin {
                table: self.origin(table),
                name: self.origin(&raw.name),
                binary: binary_origin,
                core: self.origin(&raw.core),
            },
        })
    }

    fn power(&self, raw: &RawPower) -> Result<PowerConfig, ConfigError> {
        let default_server = self.power_override(&raw.default.server, "power.default.server")?;
        let default_mover = self.power_override(&raw.default.mover, "power.default.mover")?;
        let default_idle = self.power_override(&raw.default.idle, "power.default.idle")?;
        // Check in file order, not in the map's (string) order.
        let mut tables: Vec<(&Spanned<String>, &RawPowerOverride)> = raw.core.iter().collect();
        tables.sort_by_key(|(key, _)| key.span().start);
        let mut cores: Vec<CoreOverride> = Vec::with_capacity(tables.len());
        for (key, table) in tables {
            let path = format!("power.core.{}", key.get_ref());
            let core = parse_core_number(key.get_ref()).ok_or_else(|| {
                ConfigError::at(
                    self.span(key),
                    path.clone(),
                    format!("`{}` is not a core number", key.get_ref()),
                    format!("a core number in 0..{MAX_CONFIG_CORES}, as in [power.core.3]"),
                )
            })?;
            if let Some(other) = cores.iter().find(|c| c.core == core) {
                return Err(ConfigError::at(
                    self.span(key),
                    path,
                    format!("a second table for core {core} (the first is on line {})", other.origin.0.line),
                    "one [power.core.N] table per core",
                ));
            }
            let policy = self.power_override(table, &path)?;
            cores.push(CoreOverride { core, policy, origin: self.origin(key) });
        }
        cores.sort_by_key(|c| c.core);
        Ok(PowerConfig { default_server, default_mover, default_idle, cores })
    }

    pub(crate) fn power_override(&self, raw: &RawPowerOverride, prefix: &str) -> Result<PowerOverride, ConfigError> {
        let spin_polls_before_pause = match &raw.spin_polls_before_pause {
            Some(v) => Some(self.u32_in(v, &format!("{prefix}.spin_polls_before_pause"), 0, SPIN_POLLS_MAX as u32)?),
            None => None,
        };
        let pause_us_before_sleep = match &raw.pause_us_before_sleep {
            Some(v) => Some(self.u32_in(v, &format!("{prefix}.pause_us_before_sleep"), 0, PAUSE_US_MAX as u32)?),
            None => None,
        };
        let sleep = match &raw.sleep {
            Some(v) => Some(SleepMode::from_name(v.get_ref()).ok_or_else(|| {
                ConfigError::at(
                    self.span(v),
                    format!("{prefix}.sleep"),
                    format!("`{}` is not a sleep mode", v.get_ref()),
                    "\"none\", \"hlt\" or \"mwait\"",
                )
            })?),
            None => None,
        };
        let mwait_hint = match &raw.mwait_hint {
            Some(v) => Some(MwaitHint::from_name(v.get_ref()).ok_or_else(|| {
                ConfigError::at(
                    self.span(v),
                    format!("{prefix}.mwait_hint"),
                    format!("`{}` is not a C-state", v.get_ref()),
                    "one of \"c0\", \"c1\", … \"c7\"",
                )
            })?),
            None => None,
        };
        let idle_pstate = match &raw.idle_pstate {
            Some(v) => Some(self.idle_pstate(v, &format!("{prefix}.idle_pstate"))?),
            None => None,
        };
        let hwp_epp_idle = match &raw.hwp_epp_idle {
            Some(v) => Some(self.u32_in(v, &format!("{prefix}.hwp_epp_idle"), 0, 255)? as u8),
            None => None,
        };
        let idle_pstate_after_us = match &raw.idle_pstate_after_us {
            Some(v) => Some(self.u32_in(v, &format!("{prefix}.idle_pstate_after_us"), 0, PAUSE_US_MAX as u32)?),
            None => None,
        };
        Ok(PowerOverride {
            spin_polls_before_pause,
            pause_us_before_sleep,
            sleep,
            mwait_hint,
            idle_pstate,
            hwp_epp_idle,
            idle_pstate_after_us,
        })
    }

    fn idle_pstate(&self, value: &Spanned<toml::Value>, key: &str) -> Result<IdlePstate, ConfigError> {
        const EXPECTED: &str = "\"lowest\", \"unchanged\" or an integer ratio in 1..=255";
        let error = |message: String| ConfigError::at(self.span(value), key, message, EXPECTED);
        match value.get_ref() {
            toml::Value::String(s) if s == "lowest" => Ok(IdlePstate::Lowest),
            toml::Value::String(s) if s == "unchanged" => Ok(IdlePstate::Unchanged),
            toml::Value::String(s) => Err(error(format!("`{s}` is not a P-state"))),
            toml::Value::Integer(n) => match u8::try_from(*n) {
                Ok(ratio) if ratio >= 1 => Ok(IdlePstate::Ratio(ratio)),
                _ => Err(error(format!("ratio {n} is out of range"))),
            },
            other => Err(error(format!("a {} is not a P-state", other.type_str()))),
        }
    }
}

pub(crate) fn validate(config: &SystemConfig, machine: &Machine) -> Result<(), ConfigError> {
    if let Some(count) = machine.core_count {
        let expected = match count {
            0 | 1 => format!("core 0 (this machine has {count} core)"),
            _ => format!("a core in 0..={} (this machine has {count} cores)", count - 1),
        };
        for (i, (&core, origin)) in config.mover_cores.iter().zip(&config.mover_core_origins).enumerate() {
            if core >= count {
                return Err(ConfigError::at(
                    origin.0,
                    format!("system.mover_cores[{i}]"),
                    format!("mover core {core} does not exist"),
                    expected,
                ));
            }
        }
        for server in &config.servers {
            if server.core >= count {
                return Err(ConfigError::at(
                    server.origin.core.0,
                    format!("server[{}].core", server.index),
                    format!("server `{}` on core {}, which does not exist", server.name, server.core),
                    expected,
                ));
            }
        }
        for table in &config.power.cores {
            if table.core >= count {
                return Err(ConfigError::at(
                    table.origin.0,
                    format!("power.core.{}", table.core),
                    format!("power policy for core {}, which does not exist", table.core),
                    expected,
                ));
            }
        }
    }
    if let Some(binaries) = &machine.binaries {
        for server in &config.servers {
            if !binaries.contains(&server.binary) {
                let names: Vec<&str> = binaries.iter().map(String::as_str).collect();
                let expected = if names.is_empty() {
                    "a binary in the boot ramdisk (it holds none)".to_string()
                } else {
                    format!("one of the binaries in the boot ramdisk ({})", quoted(&names))
                };
                return Err(ConfigError::at(
                    server.origin.binary.0,
                    format!("server[{}].binary", server.index),
                    format!("no binary `{}` for server `{}` in the boot ramdisk", server.binary, server.name),
                    expected,
                ));
            }
        }
    }
    Ok(())
}

/// `[a-z0-9_-]{1,32}`.
pub(crate) fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME_LEN).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// A relative path of `[A-Za-z0-9._-]` parts separated by `/`, no `.` or
/// `..` part, at most [`MAX_BINARY_LEN`] bytes.
fn valid_binary(name: &str) -> bool {
    (1..=MAX_BINARY_LEN).contains(&name.len())
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        })
}

/// A decimal core number below [`MAX_CONFIG_CORES`], digits only.
fn parse_core_number(key: &str) -> Option<usize> {
    if key.is_empty() || key.len() > 4 || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<usize>().ok().filter(|&n| n < MAX_CONFIG_CORES)
}

/// `[1, 2]`.
fn list(cores: &[usize]) -> String {
    let parts: Vec<String> = cores.iter().map(|c| c.to_string()).collect();
    format!("[{}]", parts.join(", "))
}

/// `` `a`, `b` `` — at most 8 names, then `…`.
pub(crate) fn quoted(names: &[&str]) -> String {
    if names.is_empty() {
        return "there are none".to_string();
    }
    let mut parts: Vec<String> = names.iter().take(8).map(|n| format!("`{n}`")).collect();
    if names.len() > 8 {
        parts.push("…".to_string());
    }
    parts.join(", ")
}
