//! A server's restart policy (`restart`, `restart_max`, `restart_window_ms`,
//! `restart_backoff_ms`) and hang detection (`stall_ms`): the keys, their
//! checks, and the pure decision the kernel asks when a server stops.
//!
//! Invariants: a checked [`RestartPolicy`] with `when == Never` has no limit,
//! no window and no backoff; a window is only set together with a limit;
//! `max_restarts` and `window_ms` are at least 1 and `backoff_ms` is at most
//! [`RESTART_BACKOFF_MAX_MS`]. [`RestartPolicy::decide`] reads nothing but its
//! arguments, so the host tests cover every answer the kernel can get.

use alloc::format;
use core::fmt;

use toml::Spanned;

use crate::check::Checker;
use crate::error::ConfigError;
use crate::raw::RawServer;

/// Largest `restart_backoff_ms`: one minute.
pub const RESTART_BACKOFF_MAX_MS: u32 = 60_000;

/// `restart`: when a stopped server is started again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RestartWhen {
    /// `"never"` (the default): a stopped server stays stopped.
    #[default]
    Never,
    /// `"on-failure"`: after a fault, a hang, or a non-zero exit.
    OnFailure,
    /// `"always"`: after any stop, a clean exit (code 0) included.
    Always,
}

impl RestartWhen {
    /// The value as written in the file.
    pub fn name(self) -> &'static str {
        match self {
            RestartWhen::Never => "never",
            RestartWhen::OnFailure => "on-failure",
            RestartWhen::Always => "always",
        }
    }

    /// The policy a file value names, if any.
    pub fn from_name(name: &str) -> Option<RestartWhen> {
        match name {
            "never" => Some(RestartWhen::Never),
            "on-failure" => Some(RestartWhen::OnFailure),
            "always" => Some(RestartWhen::Always),
            _ => None,
        }
    }
}

/// A server's restart policy, checked. `Default` is "never restart".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestartPolicy {
    /// `restart`.
    pub when: RestartWhen,
    /// `restart_max`: at most this many restarts (within `window_ms`, or in
    /// the whole run when there is no window); `None` = no limit.
    pub max_restarts: Option<u32>,
    /// `restart_window_ms`: the sliding window `max_restarts` counts in, in
    /// milliseconds; `None` = the whole run.
    pub window_ms: Option<u32>,
    /// `restart_backoff_ms`: milliseconds to wait before each restart.
    pub backoff_ms: u32,
}

/// What to do with a server that has just stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Start it again once `after_ms` milliseconds have passed.
    Restart {
        /// The policy's backoff.
        after_ms: u32,
    },
    /// Leave it stopped, for this reason.
    Stay(StayReason),
}

/// Why a stopped server is not restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StayReason {
    /// `restart = "never"`.
    PolicyNever,
    /// `restart = "on-failure"` and it exited with code 0.
    CleanExit,
    /// `restart_max` reached: it was already restarted `restarts` times
    /// within `window_ms` (`None`: in the whole run).
    LimitReached {
        /// Earlier restarts counted against the limit.
        restarts: u32,
        /// The window they were counted in.
        window_ms: Option<u32>,
    },
}

/// For log lines: `restart = "never"`, `exited cleanly (restart = "on-failure")`,
/// `restarted 3 times within the last 1000 ms (restart_max reached)`.
impl fmt::Display for StayReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            StayReason::PolicyNever => f.write_str("restart = \"never\""),
            StayReason::CleanExit => f.write_str("exited cleanly (restart = \"on-failure\")"),
            StayReason::LimitReached { restarts, window_ms: Some(window) } => {
                write!(f, "restarted {restarts} times within the last {window} ms (restart_max reached)")
            }
            StayReason::LimitReached { restarts, window_ms: None } => {
                write!(f, "restarted {restarts} times in this run (restart_max reached)")
            }
        }
    }
}

impl RestartPolicy {
    /// Whether a server that stopped at `now_ms` is started again.
    ///
    /// `failed`: it faulted, hung, or exited with a non-zero code (false for
    /// exit code 0). `previous_restarts_ms`: when this server was restarted
    /// before, in milliseconds on the same clock as `now_ms`, oldest first.
    ///
    /// With a window, an earlier restart at `t` counts if `now_ms - t <
    /// window_ms`: one exactly `window_ms` ago has left the window. A time
    /// after `now_ms` (a clock that went backwards) counts as inside it.
    pub fn decide(&self, failed: bool, previous_restarts_ms: &[u64], now_ms: u64) -> RestartDecision {
        match self.when {
            RestartWhen::Never => return RestartDecision::Stay(StayReason::PolicyNever),
            RestartWhen::OnFailure if !failed => return RestartDecision::Stay(StayReason::CleanExit),
            RestartWhen::OnFailure | RestartWhen::Always => {}
        }
        if let Some(max) = self.max_restarts {
            let counted = match self.window_ms {
                Some(window) => {
                    previous_restarts_ms.iter().filter(|&&t| now_ms.saturating_sub(t) < u64::from(window)).count()
                }
                None => previous_restarts_ms.len(),
            };
            let counted = u32::try_from(counted).unwrap_or(u32::MAX);
            if counted >= max {
                return RestartDecision::Stay(StayReason::LimitReached {
                    restarts: counted,
                    window_ms: self.window_ms,
                });
            }
        }
        RestartDecision::Restart { after_ms: self.backoff_ms }
    }
}

impl Checker<'_> {
    /// The restart keys of one `[[server]]` table (`prefix` = `server[i]`).
    pub(crate) fn restart_policy(&self, raw: &RawServer, prefix: &str) -> Result<RestartPolicy, ConfigError> {
        let when = match &raw.restart {
            Some(v) => RestartWhen::from_name(v.get_ref()).ok_or_else(|| {
                ConfigError::at(
                    self.span(v),
                    format!("{prefix}.restart"),
                    format!("`{}` is not a restart policy", v.get_ref()),
                    "\"never\", \"on-failure\" or \"always\"",
                )
            })?,
            None => RestartWhen::Never,
        };
        let needs_restart = |value: &Spanned<i64>, key: &str| -> Result<(), ConfigError> {
            if when == RestartWhen::Never {
                return Err(ConfigError::at(
                    self.span(value),
                    format!("{prefix}.{key}"),
                    format!("`{key}` set for a server that is never restarted"),
                    "restart = \"on-failure\" or \"always\" in the same table",
                ));
            }
            Ok(())
        };
        let max_restarts = match &raw.restart_max {
            Some(v) => {
                needs_restart(v, "restart_max")?;
                Some(self.u32_in(v, &format!("{prefix}.restart_max"), 1, u32::MAX)?)
            }
            None => None,
        };
        let window_ms = match &raw.restart_window_ms {
            Some(v) => {
                needs_restart(v, "restart_window_ms")?;
                if max_restarts.is_none() {
                    return Err(ConfigError::at(
                        self.span(v),
                        format!("{prefix}.restart_window_ms"),
                        "`restart_window_ms` without `restart_max` (a window for no limit)",
                        "restart_max in the same table",
                    ));
                }
                Some(self.u32_in(v, &format!("{prefix}.restart_window_ms"), 1, u32::MAX)?)
            }
            None => None,
        };
        let backoff_ms = match &raw.restart_backoff_ms {
            Some(v) => {
                needs_restart(v, "restart_backoff_ms")?;
                self.u32_in(v, &format!("{prefix}.restart_backoff_ms"), 0, RESTART_BACKOFF_MAX_MS)?
            }
            None => 0,
        };
        Ok(RestartPolicy { when, max_restarts, window_ms, backoff_ms })
    }

    /// `stall_ms`, if set.
    pub(crate) fn stall_ms(&self, raw: &RawServer, prefix: &str) -> Result<Option<u32>, ConfigError> {
        match &raw.stall_ms {
            Some(v) => Ok(Some(self.u32_in(v, &format!("{prefix}.stall_ms"), 1, u32::MAX)?)),
            None => Ok(None),
        }
    }
}
