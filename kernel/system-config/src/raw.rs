//! The file's shape as serde sees it: every table, every key, with spans.
//!
//! Invariants: every struct denies unknown keys, so a typo is an error at the
//! key's position, never a silent default. Numbers are read as `i64` and
//! strings as strings, so that ranges and enumerations are checked by
//! `check.rs` with our own messages (and negative numbers are reported as out
//! of range, not as a type error). Nothing here is trusted yet.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub system: RawSystem,
    #[serde(default)]
    pub server: Vec<Spanned<RawServer>>,
    #[serde(default)]
    pub power: RawPower,
    #[serde(default)]
    pub direct_ring: Vec<Spanned<RawDirectRing>>,
    #[serde(default)]
    pub region: Vec<Spanned<RawRegion>>,
    #[serde(default)]
    pub device: Vec<Spanned<crate::device::RawDevice>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSystem {
    pub mover_cores: Spanned<Vec<Spanned<i64>>>,
    pub ring_slots_default: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub name: Spanned<String>,
    pub binary: Option<Spanned<String>>,
    pub core: Spanned<i64>,
    pub stack_kib: Option<Spanned<i64>>,
    pub inbox_slots: Option<Spanned<i64>>,
    pub outbox_slots: Option<Spanned<i64>>,
    #[serde(default)]
    pub endpoints: Vec<Spanned<String>>,
    pub mover_core: Option<Spanned<i64>>,
    pub args: Option<Spanned<String>>,
    pub service: Option<Spanned<bool>>,
    pub restart: Option<Spanned<String>>,
    pub restart_max: Option<Spanned<i64>>,
    pub restart_window_ms: Option<Spanned<i64>>,
    pub restart_backoff_ms: Option<Spanned<i64>>,
    pub stall_ms: Option<Spanned<i64>>,
    pub power_control: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDirectRing {
    pub name: Spanned<String>,
    pub producer: Spanned<String>,
    pub consumer: Spanned<String>,
    pub slots: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRegion {
    pub name: Spanned<String>,
    pub size_kib: Spanned<i64>,
    pub owner: Spanned<String>,
    #[serde(default)]
    pub shared_with: Vec<Spanned<RawShare>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShare {
    pub server: Spanned<String>,
    pub access: Spanned<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPower {
    #[serde(default)]
    pub default: RawPowerDefaults,
    #[serde(default)]
    pub core: BTreeMap<Spanned<String>, RawPowerOverride>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPowerDefaults {
    #[serde(default)]
    pub server: RawPowerOverride,
    #[serde(default)]
    pub mover: RawPowerOverride,
    #[serde(default)]
    pub idle: RawPowerOverride,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPowerOverride {
    pub spin_polls_before_pause: Option<Spanned<i64>>,
    pub pause_us_before_sleep: Option<Spanned<i64>>,
    pub sleep: Option<Spanned<String>>,
    pub mwait_hint: Option<Spanned<String>>,
    pub idle_pstate: Option<Spanned<toml::Value>>,
    pub hwp_epp_idle: Option<Spanned<i64>>,
    pub idle_pstate_after_us: Option<Spanned<i64>>,
}
