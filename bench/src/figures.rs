//! Arithmetic and verdicts every benchmark shares: cycles to ns, guarded
//! ratios, the reply check behind a figure, and how a target is judged.
//!
//! Invariants:
//! - [`ratio`] never divides by zero or by a non-finite value: it gives
//!   `None`, which the reports print as `-`;
//! - a target is judged only on a measured value from valid inputs
//!   ([`TargetOutcome::judge`]); without a value it is
//!   [`TargetOutcome::NotMeasured`], from inputs that failed their check or
//!   a mechanism that fell back it is [`TargetOutcome::NotApplicable`],
//!   never met or missed.

use serde::{Deserialize, Serialize};

/// Name of the latency record that is the physical floor of a boot (a
/// cache line bounced between two cores); both benchmarks divide by it.
pub const FLOOR_LATENCY: &str = "cacheline-pingpong";

/// Converts TSC cycles to nanoseconds with the run's calibrated frequency.
pub fn cycles_to_ns(cycles: u64, tsc_hz: u64) -> f64 {
    cycles as f64 * 1e9 / tsc_hz as f64
}

/// `numerator / denominator`, or `None` when the denominator is not positive
/// or either side is not finite.
pub fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0 && numerator.is_finite() && denominator.is_finite()).then(|| numerator / denominator)
}

/// Whether the guest verified every message behind a figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MessageCheck {
    /// `ok == n`: every message's sequence number and payload checked out.
    AllChecked,
    /// `ok != n`: the figure is not trustworthy.
    Mismatch,
    /// The record has no `ok` key.
    NotReported,
}

impl MessageCheck {
    /// The check of a record that reports `ok` (if it does) out of `n`.
    pub fn of(ok: Option<u64>, n: u64) -> MessageCheck {
        match ok {
            Some(ok) if ok == n => MessageCheck::AllChecked,
            Some(_) => MessageCheck::Mismatch,
            None => MessageCheck::NotReported,
        }
    }

    /// True only when every message was checked and correct.
    pub fn is_trustworthy(self) -> bool {
        self == MessageCheck::AllChecked
    }
}

/// Which way a target ratio must go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    AtMost,
    AtLeast,
}

/// Result of one target check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetOutcome {
    Met,
    Missed,
    /// A record the ratio needs is absent from the run.
    NotMeasured,
    /// The ratio was computed, but its inputs cannot carry a verdict: a
    /// record behind it failed its message check (`ok < n`), kept no
    /// sample, or the mechanism it measures fell back to another one
    /// (MWAIT -> HLT). Printed `n/a` with the reason, never met or missed.
    NotApplicable,
}

impl TargetOutcome {
    /// Met or missed when `measured` is there and its inputs are valid;
    /// not applicable when they are not (`invalid_because` says why), not
    /// measured without a value.
    pub fn judge(bound: Bound, limit: f64, measured: Option<f64>, invalid_because: Option<&str>) -> TargetOutcome {
        let Some(value) = measured else {
            return TargetOutcome::NotMeasured;
        };
        if invalid_because.is_some() {
            return TargetOutcome::NotApplicable;
        }
        let met = match bound {
            Bound::AtMost => value <= limit,
            Bound::AtLeast => value >= limit,
        };
        if met { TargetOutcome::Met } else { TargetOutcome::Missed }
    }
}

/// Whether the serial-log line says a mechanism fell back to another one
/// (the kernel's `MWAIT returned at once … using hlt`, or any `fell back`):
/// a figure of that boot no longer measures the mechanism it names.
pub fn is_fallback_line(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("mwait returned at once") || lower.contains("fell back")
}

/// The median of one figure's per-boot values and their spread, across
/// boots (`--runs N`): one boot is one sample, so a headline figure is the
/// median of the boots' medians, with min..max beside it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Boots that measured the figure.
    pub boots: usize,
    /// Median of the per-boot values (mean of the middle two for an even
    /// count).
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    /// The spread of the finite `values`, or `None` when there is none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let middle = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 { sorted[middle] } else { (sorted[middle - 1] + sorted[middle]) / 2.0 };
        Some(Spread { boots: sorted.len(), median, min: sorted[0], max: sorted[sorted.len() - 1] })
    }
}
