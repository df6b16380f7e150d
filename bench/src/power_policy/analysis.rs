//! The power table: every power boot of a log in table order, reduced to
//! rows ([`super::rows`]), with the baseline ratios, the targets
//! ([`super::targets`]) and the warnings ([`super::warnings`]).
//!
//! Policies come in the order spin, pause, mwait, hlt, then other names in
//! log order; a boot's rows by interval.

use serde::{Deserialize, Serialize};

use super::parse::power_policy;
use super::rows::{
    PowerBoot, PowerRow, SPIN_POLICY, add_baseline_ratios, baseline_boot, policy_rank, power_boot, rows_of_boot,
};
use super::targets::{PowerTarget, power_targets};
use super::warnings::table_warnings;
use crate::serial_log::Run;

/// Every power boot of a log, reduced to rows and targets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerTable {
    /// Power boots in table order.
    pub boots: Vec<PowerBoot>,
    /// The never-sleeping baseline of "vs base" and targets 1 and 3: `spin`,
    /// or `pause` as a stand-in when there is no spin boot; `None` when
    /// there is neither.
    pub baseline_policy: Option<String>,
    /// The run (1-based position in the log) of the baseline boot.
    pub baseline_run: Option<usize>,
    /// One row per policy × interval, in table order.
    pub rows: Vec<PowerRow>,
    pub targets: Vec<PowerTarget>,
    /// Things a reader must not miss (failed replies, missing floor, …).
    pub warnings: Vec<String>,
}

impl PowerTable {
    /// Builds the table from all runs of a log (non-power runs are skipped).
    pub fn from_runs(runs: &[Run]) -> PowerTable {
        let mut power: Vec<(usize, &Run, &str)> = runs
            .iter()
            .enumerate()
            .filter_map(|(index, run)| power_policy(run).map(|policy| (index + 1, run, policy)))
            .collect();
        power.sort_by_key(|(position, _, policy)| (policy_rank(policy), *position));
        if power.is_empty() {
            return PowerTable {
                boots: Vec::new(),
                baseline_policy: None,
                baseline_run: None,
                rows: Vec::new(),
                targets: Vec::new(),
                warnings: Vec::new(),
            };
        }

        let mut warnings = Vec::new();
        let mut boots = Vec::new();
        let mut rows = Vec::new();
        for (position, run, policy) in &power {
            let boot = power_boot(*position, run, policy);
            rows.extend(rows_of_boot(&boot, run, &mut warnings));
            boots.push(boot);
        }
        let baseline = baseline_boot(&boots).cloned();
        add_baseline_ratios(&mut rows, baseline.as_ref());
        warnings.extend(table_warnings(&boots, &rows, baseline.as_ref()));
        let targets = power_targets(&boots, &rows, baseline.as_ref());
        PowerTable {
            baseline_policy: baseline.as_ref().map(|boot| boot.policy.clone()),
            baseline_run: baseline.as_ref().map(|boot| boot.run),
            boots,
            rows,
            targets,
            warnings,
        }
    }

    /// True when the log held no power boot.
    pub fn is_empty(&self) -> bool {
        self.boots.is_empty()
    }

    /// True when the baseline is not spin but a stand-in for it (pause).
    pub fn baseline_is_stand_in(&self) -> bool {
        self.baseline_policy.as_deref().is_some_and(|policy| policy != SPIN_POLICY)
    }

    /// The row of the first boot of `policy` at `interval_us`.
    pub fn row(&self, policy: &str, interval_us: u64) -> Option<&PowerRow> {
        let run = self.boots.iter().find(|boot| boot.policy == policy)?.run;
        self.rows.iter().find(|row| row.run == run && row.interval_us == interval_us)
    }
}

/// Builds the [`PowerTable`] of a log's runs.
pub fn power_table(runs: &[Run]) -> PowerTable {
    PowerTable::from_runs(runs)
}
