//! `[[region]]` tables: bulk-data memory the kernel allocates once,
//! physically contiguous, and maps (never executable) into its owner
//! (read/write) and into each server it is shared with, with the access
//! the file grants. Messages then carry descriptors (region, offset,
//! length) instead of the bytes; see `docs/regions.md`.
//!
//! Invariants: a checked [`Region`] has a unique valid name, a size in
//! [`REGION_SIZE_KIB_RANGE`] that is whole pages, an owner that is a
//! server of the file, and shares with other servers of the file, each at
//! most once and never with the owner; no server holds more than
//! [`abi::region::MAX_REGIONS`] regions; all regions together stay within
//! [`REGION_TOTAL_MAX_KIB`]. Whether they fit the machine's free memory is
//! [`SystemConfig::check_region_memory`], called by the kernel at boot.
//! Errors come in file order, at the offending value.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use toml::Spanned;

use crate::check::{Checker, quoted, valid_name};
use crate::error::ConfigError;
use crate::raw::RawRegion;
use crate::{MAX_NAME_LEN, Origin, SystemConfig};

/// Smallest and largest region in KiB (a multiple of 4: whole pages).
pub const REGION_SIZE_KIB_RANGE: (u32, u32) = (4, 1024 * 1024);
/// Most KiB all regions of a file may add up to (1 GiB); the kernel also
/// checks them against the memory it has free.
pub const REGION_TOTAL_MAX_KIB: u64 = 1024 * 1024;

/// What a server may do with a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// `"ro"`: mapped read-only.
    ReadOnly,
    /// `"rw"`: mapped read/write (the owner always has it).
    ReadWrite,
}

impl Access {
    /// The word in the file.
    pub fn name(self) -> &'static str {
        match self {
            Access::ReadOnly => "ro",
            Access::ReadWrite => "rw",
        }
    }

    /// The word in the info page and in descriptors (`abi::region::ACCESS_*`).
    pub fn abi(self) -> u16 {
        match self {
            Access::ReadOnly => abi::region::ACCESS_RO,
            Access::ReadWrite => abi::region::ACCESS_RW,
        }
    }
}

/// One entry of `shared_with`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Index in [`SystemConfig::servers`].
    pub server: usize,
    pub access: Access,
}

/// One `[[region]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// Position among the `[[region]]` tables, from 0.
    pub index: usize,
    /// `name`: unique among regions, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// `size_kib`: its size in KiB, a multiple of 4.
    pub size_kib: u32,
    /// `owner`: index in [`SystemConfig::servers`]; it holds the region
    /// read/write.
    pub owner: usize,
    /// `shared_with`: the other servers that hold it, in file order.
    pub shared_with: Vec<Share>,
    /// Where its `name` was written.
    pub origin: Origin,
    /// Where its `size_kib` was written (memory errors at boot point here).
    pub size_origin: Origin,
}

impl Region {
    /// Its size in bytes.
    pub fn size_bytes(&self) -> u64 {
        u64::from(self.size_kib) * 1024
    }

    /// The access `server` has to it, if it holds it.
    pub fn access_of(&self, server: usize) -> Option<Access> {
        if server == self.owner {
            return Some(Access::ReadWrite);
        }
        self.shared_with.iter().find(|s| s.server == server).map(|s| s.access)
    }
}

impl SystemConfig {
    /// The regions server `server` (an index in `servers`) holds, with its
    /// access, in file order: its view, the order of its info page
    /// (entry `i` is mapped at `abi::region::addr(i)`). At most
    /// [`abi::region::MAX_REGIONS`].
    pub fn regions_of(&self, server: usize) -> impl Iterator<Item = (&Region, Access)> {
        self.regions.iter().filter_map(move |r| r.access_of(server).map(|a| (r, a)))
    }

    /// Checks that the regions fit in `free_kib` of memory, in file order:
    /// the error points at the `size_kib` of the first region that does
    /// not fit. The kernel calls it at boot with what its frame allocator
    /// has free (rings and address spaces need some too: it keeps a
    /// margin).
    pub fn check_region_memory(&self, free_kib: u64) -> Result<(), ConfigError> {
        let mut total: u64 = 0;
        for region in &self.regions {
            total += u64::from(region.size_kib);
            if total > free_kib {
                return Err(ConfigError::at(
                    region.size_origin.0,
                    format!("region[{}].size_kib", region.index),
                    format!(
                        "region `{}` ({} KiB) does not fit: the regions up to it need {total} KiB, this machine has {free_kib} KiB free for them",
                        region.name, region.size_kib
                    ),
                    "smaller regions, or more memory",
                ));
            }
        }
        Ok(())
    }
}

impl Checker<'_> {
    /// Checks every `[[region]]` table against the servers (`names`:
    /// name → index).
    pub(crate) fn regions(
        &self,
        raw: &[Spanned<RawRegion>],
        names: &BTreeMap<&str, usize>,
    ) -> Result<Vec<Region>, ConfigError> {
        let mut regions: Vec<Region> = Vec::with_capacity(raw.len());
        let mut held: BTreeMap<usize, usize> = BTreeMap::new();
        let mut total_kib: u64 = 0;
        let server_index = |value: &Spanned<String>, key: &str| -> Result<usize, ConfigError> {
            names.get(value.get_ref().as_str()).copied().ok_or_else(|| {
                let known: Vec<&str> = names.keys().copied().collect();
                ConfigError::at(
                    self.span(value),
                    key,
                    format!("no server named `{}`", value.get_ref()),
                    format!("the name of a server in this file ({})", quoted(&known)),
                )
            })
        };
        for (index, table) in raw.iter().enumerate() {
            let t = table.get_ref();
            let prefix = format!("region[{index}]");
            let name = t.name.get_ref();
            if !valid_name(name) {
                return Err(ConfigError::at(
                    self.span(&t.name),
                    format!("{prefix}.name"),
                    format!("`{name}` is not a valid region name"),
                    format!("1 to {MAX_NAME_LEN} characters from a-z, 0-9, `_` and `-`"),
                ));
            }
            if let Some(first) = regions.iter().find(|r| &r.name == name) {
                return Err(ConfigError::at(
                    self.span(&t.name),
                    format!("{prefix}.name"),
                    format!(
                        "two regions named `{name}` (lines {} and {})",
                        first.origin.0.line,
                        self.span(&t.name).line
                    ),
                    "unique region names",
                ));
            }
            let size_key = format!("{prefix}.size_kib");
            let (min, max) = REGION_SIZE_KIB_RANGE;
            let size_kib = self.u32_in(&t.size_kib, &size_key, min, max)?;
            if size_kib % 4 != 0 {
                return Err(ConfigError::at(
                    self.span(&t.size_kib),
                    size_key,
                    format!("{size_kib} KiB is not a whole number of 4 KiB pages"),
                    format!("a multiple of 4 in {min}..={max}"),
                ));
            }
            total_kib += u64::from(size_kib);
            if total_kib > REGION_TOTAL_MAX_KIB {
                return Err(ConfigError::at(
                    self.span(&t.size_kib),
                    size_key,
                    format!("the regions up to `{name}` add up to {total_kib} KiB"),
                    format!("at most {REGION_TOTAL_MAX_KIB} KiB of regions in all"),
                ));
            }
            let owner = server_index(&t.owner, &format!("{prefix}.owner"))?;
            let mut shared_with: Vec<Share> = Vec::with_capacity(t.shared_with.len());
            for (i, share) in t.shared_with.iter().enumerate() {
                let s = share.get_ref();
                let key = format!("{prefix}.shared_with[{i}]");
                let server = server_index(&s.server, &format!("{key}.server"))?;
                if server == owner {
                    return Err(ConfigError::at(
                        self.span(&s.server),
                        format!("{key}.server"),
                        format!("`{}` is the owner", s.server.get_ref()),
                        "servers other than the owner (it holds the region read/write already)",
                    ));
                }
                if shared_with.iter().any(|x| x.server == server) {
                    return Err(ConfigError::at(
                        self.span(&s.server),
                        format!("{key}.server"),
                        format!("`{}` is listed twice", s.server.get_ref()),
                        "each server once",
                    ));
                }
                let access = match s.access.get_ref().as_str() {
                    "ro" => Access::ReadOnly,
                    "rw" => Access::ReadWrite,
                    other => {
                        return Err(ConfigError::at(
                            self.span(&s.access),
                            format!("{key}.access"),
                            format!("`{other}` is not an access"),
                            "\"ro\" or \"rw\"",
                        ));
                    }
                };
                shared_with.push(Share { server, access });
            }
            let holders = core::iter::once((owner, &t.owner)).chain(
                shared_with.iter().zip(&t.shared_with).map(|(share, raw)| (share.server, &raw.get_ref().server)),
            );
            for (holder, value) in holders {
                let count = held.entry(holder).or_insert(0);
                *count += 1;
                if *count > abi::region::MAX_REGIONS {
                    return Err(ConfigError::at(
                        self.span(value),
                        format!("{prefix}.{}", if holder == owner { "owner" } else { "shared_with" }),
                        format!("server `{}` would hold {} regions", value.get_ref(), *count),
                        format!("at most {} regions per server", abi::region::MAX_REGIONS),
                    ));
                }
            }
            regions.push(Region {
                index,
                name: name.clone(),
                size_kib,
                owner,
                shared_with,
                origin: Origin(self.span(&t.name)),
                size_origin: Origin(self.span(&t.size_kib)),
            });
        }
        Ok(regions)
    }
}
