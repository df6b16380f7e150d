//! The `[power]` section of the system file: per-core power policy, what a
//! core does while its rings stay empty (spin, then `pause`-spin, then
//! sleep) and which P-state hints it gives. The kernel applies it at boot
//! (`kernel/src/power.rs`, docs/power.md).
//!
//! Invariants: a [`PowerPolicy`] is always complete and in range (every value
//! was range-checked at parse time or is a built-in default). A
//! [`PowerOverride`] is a partial policy; resolving merges, key by key,
//! `[power.core.N]` over `[power.default.<role>]` over the built-in default
//! for the role ([`PowerPolicy::builtin`]).

use alloc::vec::Vec;

use crate::error::Span;

/// Which `[power.default.<role>]` table and built-in default apply to a
/// core, from what the file puts on it ([`crate::SystemConfig::role_of`]).
/// Not the kernel's runtime role of a core (`cores::Role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyRole {
    /// Runs one user-space server.
    Server,
    /// Runs the kernel mover loop.
    Mover,
    /// Runs nothing (parked).
    Idle,
}

impl PolicyRole {
    /// The role's name as written in `[power.default.<name>]`.
    pub fn name(self) -> &'static str {
        match self {
            PolicyRole::Server => "server",
            PolicyRole::Mover => "mover",
            PolicyRole::Idle => "idle",
        }
    }
}

/// How a core sleeps once spinning and pausing found nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SleepMode {
    /// Never sleep: keep `pause`-spinning.
    None,
    /// `HLT`, woken by a doorbell IPI.
    Hlt,
    /// `MONITOR` the ring's wake word, then `MWAIT` with [`MwaitHint`].
    /// Degrades to `Hlt` where CPUID lacks MONITOR/MWAIT.
    Mwait,
}

impl SleepMode {
    /// The value as written in the TOML file.
    pub fn name(self) -> &'static str {
        match self {
            SleepMode::None => "none",
            SleepMode::Hlt => "hlt",
            SleepMode::Mwait => "mwait",
        }
    }

    pub(crate) fn from_name(name: &str) -> Option<SleepMode> {
        match name {
            "none" => Some(SleepMode::None),
            "hlt" => Some(SleepMode::Hlt),
            "mwait" => Some(SleepMode::Mwait),
            _ => None,
        }
    }
}

/// Target C-state for `MWAIT`: `c0` … `c7` in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MwaitHint {
    cstate: u8,
}

impl MwaitHint {
    /// The deepest C-state a hint may name.
    pub const DEEPEST: u8 = 7;

    /// A hint for C-state `cstate` (0..=7).
    pub const fn new(cstate: u8) -> Option<MwaitHint> {
        if cstate <= Self::DEEPEST { Some(MwaitHint { cstate }) } else { None }
    }

    /// The C-state number (`c1` → 1).
    pub fn cstate(self) -> u8 {
        self.cstate
    }

    /// The hint as `MWAIT` takes it in EAX: bits 7:4 are the target C-state
    /// minus one (`0xF` for C0), bits 3:0 the sub-state (always 0 here).
    pub fn mwait_eax(self) -> u32 {
        if self.cstate == 0 { 0xF0 } else { (u32::from(self.cstate) - 1) << 4 }
    }

    pub(crate) fn from_name(name: &str) -> Option<MwaitHint> {
        let digit = name.strip_prefix('c')?;
        if digit.len() != 1 {
            return None;
        }
        let cstate = digit.as_bytes()[0].checked_sub(b'0')?;
        MwaitHint::new(cstate)
    }
}

/// The performance request a core makes while idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdlePstate {
    /// The lowest ratio the CPU offers (`IA32_PERF_CTL`), or HWP minimum.
    Lowest,
    /// Leave the performance request alone.
    Unchanged,
    /// This bus ratio (1..=255) in `IA32_PERF_CTL`.
    Ratio(u8),
}

/// A complete power policy for one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PowerPolicy {
    /// Empty polls of the core's rings before it starts `pause`-spinning.
    pub spin_polls_before_pause: u32,
    /// Microseconds of `pause`-spinning before it sleeps.
    pub pause_us_before_sleep: u32,
    /// How it sleeps.
    pub sleep: SleepMode,
    /// Target C-state when `sleep` is `Mwait`.
    pub mwait_hint: MwaitHint,
    /// Performance request while idle.
    pub idle_pstate: IdlePstate,
    /// HWP energy-performance preference while idle (0 = performance,
    /// 255 = energy), used where CPUID reports HWP.
    pub hwp_epp_idle: u8,
    /// Microseconds of `pause`-spinning after which a core that is still
    /// polling lowers its P-state as `idle_pstate` says (restored when work
    /// comes); 0 = only while asleep.
    pub idle_pstate_after_us: u32,
}

impl PowerPolicy {
    /// The built-in default for a role, used for every key neither
    /// `[power.default.<role>]` nor `[power.core.N]` sets.
    ///
    /// | key | server | mover | idle |
    /// | --- | --- | --- | --- |
    /// | `spin_polls_before_pause` | 1000 | 10000 | 0 |
    /// | `pause_us_before_sleep` | 50 | 200 | 0 |
    /// | `sleep` | mwait | mwait | mwait |
    /// | `mwait_hint` | c1 | c1 | c1 |
    /// | `idle_pstate` | lowest | unchanged | lowest |
    /// | `hwp_epp_idle` | 255 | 128 | 255 |
    /// | `idle_pstate_after_us` | 0 (off) | 0 (off) | 0 (off) |
    ///
    /// The mover is on every message's path, so it spins longer and keeps
    /// its clock; idle cores sleep at once. `c1` is the one C-state every
    /// MWAIT-capable CPU has; deeper hints are opt-in.
    pub const fn builtin(role: PolicyRole) -> PowerPolicy {
        match role {
            PolicyRole::Server => PowerPolicy {
                spin_polls_before_pause: 1000,
                pause_us_before_sleep: 50,
                sleep: SleepMode::Mwait,
                mwait_hint: MwaitHint { cstate: 1 },
                idle_pstate: IdlePstate::Lowest,
                hwp_epp_idle: 255,
                idle_pstate_after_us: 0,
            },
            PolicyRole::Mover => PowerPolicy {
                spin_polls_before_pause: 10_000,
                pause_us_before_sleep: 200,
                sleep: SleepMode::Mwait,
                mwait_hint: MwaitHint { cstate: 1 },
                idle_pstate: IdlePstate::Unchanged,
                hwp_epp_idle: 128,
                idle_pstate_after_us: 0,
            },
            PolicyRole::Idle => PowerPolicy {
                spin_polls_before_pause: 0,
                pause_us_before_sleep: 0,
                sleep: SleepMode::Mwait,
                mwait_hint: MwaitHint { cstate: 1 },
                idle_pstate: IdlePstate::Lowest,
                hwp_epp_idle: 255,
                idle_pstate_after_us: 0,
            },
        }
    }

    /// This policy with every key `over` sets replaced.
    pub fn merged(self, over: &PowerOverride) -> PowerPolicy {
        PowerPolicy {
            spin_polls_before_pause: over.spin_polls_before_pause.unwrap_or(self.spin_polls_before_pause),
            pause_us_before_sleep: over.pause_us_before_sleep.unwrap_or(self.pause_us_before_sleep),
            sleep: over.sleep.unwrap_or(self.sleep),
            mwait_hint: over.mwait_hint.unwrap_or(self.mwait_hint),
            idle_pstate: over.idle_pstate.unwrap_or(self.idle_pstate),
            hwp_epp_idle: over.hwp_epp_idle.unwrap_or(self.hwp_epp_idle),
            idle_pstate_after_us: over.idle_pstate_after_us.unwrap_or(self.idle_pstate_after_us),
        }
    }
}

/// A partial policy: the keys one TOML table sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PowerOverride {
    /// `spin_polls_before_pause`, 0..=100_000_000 polls.
    pub spin_polls_before_pause: Option<u32>,
    /// `pause_us_before_sleep`, 0..=1_000_000 µs.
    pub pause_us_before_sleep: Option<u32>,
    /// `sleep`: `"none"`, `"hlt"` or `"mwait"`.
    pub sleep: Option<SleepMode>,
    /// `mwait_hint`: `"c0"` … `"c7"`.
    pub mwait_hint: Option<MwaitHint>,
    /// `idle_pstate`: `"lowest"`, `"unchanged"` or a ratio 1..=255.
    pub idle_pstate: Option<IdlePstate>,
    /// `hwp_epp_idle`: 0..=255.
    pub hwp_epp_idle: Option<u8>,
    /// `idle_pstate_after_us`: 0..=1_000_000 µs, 0 = off.
    pub idle_pstate_after_us: Option<u32>,
}

impl PowerOverride {
    /// Whether the table set no key at all.
    pub fn is_empty(&self) -> bool {
        *self == PowerOverride::default()
    }
}

/// `[power.core.N]`: the override for one core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreOverride {
    /// The core number `N`.
    pub core: usize,
    /// The keys the table sets.
    pub policy: PowerOverride,
    /// Where `N` was written (for "core does not exist" errors).
    pub origin: Origin,
}

/// The `[power]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PowerConfig {
    /// `[power.default.server]`.
    pub default_server: PowerOverride,
    /// `[power.default.mover]`.
    pub default_mover: PowerOverride,
    /// `[power.default.idle]`.
    pub default_idle: PowerOverride,
    /// `[power.core.N]`, sorted by core, at most one per core.
    pub cores: Vec<CoreOverride>,
}

impl PowerConfig {
    /// The file's default for a role.
    pub fn role_default(&self, role: PolicyRole) -> &PowerOverride {
        match role {
            PolicyRole::Server => &self.default_server,
            PolicyRole::Mover => &self.default_mover,
            PolicyRole::Idle => &self.default_idle,
        }
    }

    /// The file's override for one core, if any.
    pub fn core_override(&self, core: usize) -> Option<&PowerOverride> {
        self.cores.binary_search_by_key(&core, |c| c.core).ok().map(|i| &self.cores[i].policy)
    }

    /// The policy for `core` in `role`: `[power.core.N]` over
    /// `[power.default.<role>]` over [`PowerPolicy::builtin`].
    pub fn resolve(&self, core: usize, role: PolicyRole) -> PowerPolicy {
        let policy = PowerPolicy::builtin(role).merged(self.role_default(role));
        match self.core_override(core) {
            Some(over) => policy.merged(over),
            None => policy,
        }
    }
}

/// Where a value was written in the file, kept for errors found after
/// parsing (by [`crate::SystemConfig::validate`]).
///
/// Two origins always compare equal: where a value was written is not part
/// of what the system is, so a config compares equal to its re-parsed
/// [`crate::SystemConfig::to_toml`] output.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin(pub Span);

impl PartialEq for Origin {
    fn eq(&self, _other: &Origin) -> bool {
        true
    }
}

impl Eq for Origin {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mwait_hint_encoding() {
        assert_eq!(MwaitHint::from_name("c0").unwrap().mwait_eax(), 0xF0);
        assert_eq!(MwaitHint::from_name("c1").unwrap().mwait_eax(), 0x00);
        assert_eq!(MwaitHint::from_name("c6").unwrap().mwait_eax(), 0x50);
        assert_eq!(MwaitHint::from_name("c8"), None);
        assert_eq!(MwaitHint::from_name("c10"), None);
        assert_eq!(MwaitHint::from_name("C1"), None);
        assert_eq!(MwaitHint::from_name("c"), None);
    }
}
