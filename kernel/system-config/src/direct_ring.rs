//! `[[direct_ring]]` tables: a ring region shared by two servers, one
//! pushing and one popping, with no mover in between (the user<->user
//! shape; the kernel maps it into both and never reads it).
//!
//! Invariants: a checked [`DirectRing`] names two different servers of the
//! file, has a unique valid name and a power-of-two slot count in
//! [`RING_SLOTS_RANGE`](crate::RING_SLOTS_RANGE), and no server is an end
//! of more than [`abi::MAX_DIRECT_RINGS`] rings. Errors come in file order,
//! at the offending value.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use toml::Spanned;

use crate::check::{Checker, quoted, valid_name};
use crate::error::ConfigError;
use crate::raw::RawDirectRing;
use crate::{MAX_NAME_LEN, Origin, SystemConfig};

/// One `[[direct_ring]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectRing {
    /// Position among the `[[direct_ring]]` tables, from 0.
    pub index: usize,
    /// `name`: unique among direct rings, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// `producer`: index in [`SystemConfig::servers`] of the server that pushes.
    pub producer: usize,
    /// `consumer`: index in [`SystemConfig::servers`] of the server that pops.
    pub consumer: usize,
    /// `slots`: ring size in 64-byte slots (default `system.ring_slots_default`).
    pub slots: u32,
    /// Where its `name` was written.
    pub origin: Origin,
}

impl SystemConfig {
    /// The direct rings server `server` (an index in `servers`) is an end
    /// of, in file order: at most [`abi::MAX_DIRECT_RINGS`].
    pub fn direct_rings_of(&self, server: usize) -> impl Iterator<Item = &DirectRing> {
        self.direct_rings.iter().filter(move |r| r.producer == server || r.consumer == server)
    }
}

impl Checker<'_> {
    /// Checks every `[[direct_ring]]` table against the servers (`names`:
    /// name → index).
    pub(crate) fn direct_rings(
        &self,
        raw: &[Spanned<RawDirectRing>],
        names: &BTreeMap<&str, usize>,
        ring_slots_default: u32,
    ) -> Result<Vec<DirectRing>, ConfigError> {
        let mut rings: Vec<DirectRing> = Vec::with_capacity(raw.len());
        let mut ends_of: BTreeMap<usize, usize> = BTreeMap::new();
        for (index, table) in raw.iter().enumerate() {
            let t = table.get_ref();
            let prefix = format!("direct_ring[{index}]");
            let name = t.name.get_ref();
            if !valid_name(name) {
                return Err(ConfigError::at(
                    self.span(&t.name),
                    format!("{prefix}.name"),
                    format!("`{name}` is not a valid direct ring name"),
                    format!("1 to {MAX_NAME_LEN} characters from a-z, 0-9, `_` and `-`"),
                ));
            }
            if let Some(first) = rings.iter().find(|r| &r.name == name) {
                return Err(ConfigError::at(
                    self.span(&t.name),
                    format!("{prefix}.name"),
                    format!(
                        "two direct rings named `{name}` (lines {} and {})",
                        first.origin.0.line,
                        self.span(&t.name).line
                    ),
                    "unique direct ring names",
                ));
            }
            let server = |value: &Spanned<String>, key: &str| {
                names.get(value.get_ref().as_str()).copied().ok_or_else(|| {
                    let known: Vec<&str> = names.keys().copied().collect();
                    ConfigError::at(
                        self.span(value),
                        format!("{prefix}.{key}"),
                        format!("no server named `{}`", value.get_ref()),
                        format!("the name of a server in this file ({})", quoted(&known)),
                    )
                })
            };
            let producer = server(&t.producer, "producer")?;
            let consumer = server(&t.consumer, "consumer")?;
            if producer == consumer {
                return Err(ConfigError::at(
                    self.span(&t.consumer),
                    format!("{prefix}.consumer"),
                    format!("`{}` is the producer too", t.consumer.get_ref()),
                    "two different servers (a server talks to itself without a ring)",
                ));
            }
            let slots = match &t.slots {
                Some(v) => self.ring_slots(v, &format!("{prefix}.slots"))?,
                None => ring_slots_default,
            };
            for (end, value, key) in [(producer, &t.producer, "producer"), (consumer, &t.consumer, "consumer")] {
                let count = ends_of.entry(end).or_insert(0);
                *count += 1;
                if *count > abi::MAX_DIRECT_RINGS {
                    return Err(ConfigError::at(
                        self.span(value),
                        format!("{prefix}.{key}"),
                        format!("server `{}` would be an end of {} direct rings", value.get_ref(), *count),
                        format!("at most {} direct rings per server", abi::MAX_DIRECT_RINGS),
                    ));
                }
            }
            rings.push(DirectRing {
                index,
                name: name.clone(),
                producer,
                consumer,
                slots,
                origin: Origin(self.span(&t.name)),
            });
        }
        Ok(rings)
    }
}
