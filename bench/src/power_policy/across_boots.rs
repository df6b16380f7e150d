//! Several boots per policy (`cargo xtask bench power --runs N`): per
//! policy and interval, the median of the boots' medians and their spread
//! (min..max) of the round trip, its ratio to each boot's own floor, the
//! wake-up, and echo's time asleep. A row whose replies did not all check
//! out is left out of its figure and counted.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::analysis::PowerTable;
use super::parse::interval_text;
use super::rows::policy_rank;
use crate::figures::Spread;
use crate::text_table::{Align, Table};

/// One policy × interval across boots; a row of `power-across-boots.csv`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerAcrossBootsRow {
    pub policy: String,
    pub interval_us: u64,
    /// Boots whose round trip checked out.
    pub boots: usize,
    /// Boots left out because their replies did not all check out.
    pub unchecked_boots: usize,
    pub rtt_median_ns: Option<Spread>,
    pub rtt_over_floor: Option<Spread>,
    pub wakeup_median_ns: Option<Spread>,
    pub echo_asleep: Option<Spread>,
}

/// The rows of `table` across boots, in table order.
pub fn power_across_boots(table: &PowerTable) -> Vec<PowerAcrossBootsRow> {
    #[derive(Default)]
    struct Values {
        rtt: Vec<f64>,
        over_floor: Vec<f64>,
        wakeup: Vec<f64>,
        asleep: Vec<f64>,
        boots: usize,
        unchecked: usize,
    }
    let mut by_key: BTreeMap<(usize, String, u64), Values> = BTreeMap::new();
    for row in &table.rows {
        let key = (policy_rank(&row.policy), row.policy.clone(), row.interval_us);
        let values = by_key.entry(key).or_default();
        if !row.is_trustworthy() {
            values.unchecked += 1;
            continue;
        }
        values.boots += 1;
        values.rtt.extend(row.rtt_median_ns);
        values.over_floor.extend(row.rtt_over_floor);
        values.wakeup.extend(row.wakeup_median_ns);
        values.asleep.extend(row.echo_asleep);
    }
    by_key
        .into_iter()
        .map(|((_, policy, interval_us), values)| PowerAcrossBootsRow {
            policy,
            interval_us,
            boots: values.boots,
            unchecked_boots: values.unchecked,
            rtt_median_ns: Spread::of(&values.rtt),
            rtt_over_floor: Spread::of(&values.over_floor),
            wakeup_median_ns: Spread::of(&values.wakeup),
            echo_asleep: Spread::of(&values.asleep),
        })
        .collect()
}

/// A flat copy of [`PowerAcrossBootsRow`] for CSV (which has no nesting).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PowerAcrossBootsCsvRow {
    pub policy: String,
    pub interval_us: u64,
    pub boots: usize,
    pub unchecked_boots: usize,
    pub rtt_median_ns: Option<f64>,
    pub rtt_min_ns: Option<f64>,
    pub rtt_max_ns: Option<f64>,
    pub rtt_over_floor_median: Option<f64>,
    pub rtt_over_floor_min: Option<f64>,
    pub rtt_over_floor_max: Option<f64>,
    pub wakeup_median_ns: Option<f64>,
    pub wakeup_min_ns: Option<f64>,
    pub wakeup_max_ns: Option<f64>,
    pub echo_asleep_median: Option<f64>,
    pub echo_asleep_min: Option<f64>,
    pub echo_asleep_max: Option<f64>,
}

impl From<&PowerAcrossBootsRow> for PowerAcrossBootsCsvRow {
    fn from(row: &PowerAcrossBootsRow) -> Self {
        let parts = |s: Option<Spread>| (s.map(|s| s.median), s.map(|s| s.min), s.map(|s| s.max));
        let (rtt_median_ns, rtt_min_ns, rtt_max_ns) = parts(row.rtt_median_ns);
        let (rtt_over_floor_median, rtt_over_floor_min, rtt_over_floor_max) = parts(row.rtt_over_floor);
        let (wakeup_median_ns, wakeup_min_ns, wakeup_max_ns) = parts(row.wakeup_median_ns);
        let (echo_asleep_median, echo_asleep_min, echo_asleep_max) = parts(row.echo_asleep);
        PowerAcrossBootsCsvRow {
            policy: row.policy.clone(),
            interval_us: row.interval_us,
            boots: row.boots,
            unchecked_boots: row.unchecked_boots,
            rtt_median_ns,
            rtt_min_ns,
            rtt_max_ns,
            rtt_over_floor_median,
            rtt_over_floor_min,
            rtt_over_floor_max,
            wakeup_median_ns,
            wakeup_min_ns,
            wakeup_max_ns,
            echo_asleep_median,
            echo_asleep_min,
            echo_asleep_max,
        }
    }
}

/// The across-boots table as text; empty unless some policy has two boots.
pub fn power_across_boots_text(table: &PowerTable) -> String {
    let rows = power_across_boots(table);
    if rows.iter().all(|row| row.boots + row.unchecked_boots < 2) {
        return String::new();
    }
    let mut out =
        String::from("Across boots: median of the boots' medians [min..max]; RTT/floor is each boot's own ratio\n");
    let mut text = Table::new(&[
        ("policy", Align::Left),
        ("interval", Align::Left),
        ("boots", Align::Right),
        ("RTT med ns", Align::Right),
        ("RTT spread", Align::Right),
        ("RTT/floor", Align::Right),
        ("RTT/floor spread", Align::Right),
        ("wake med ns", Align::Right),
        ("wake spread", Align::Right),
        ("echo asleep", Align::Right),
    ]);
    let ns = |s: Option<Spread>| s.map_or("-".to_string(), |s| format!("{:.1}", s.median));
    let ns_range = |s: Option<Spread>| s.map_or("-".to_string(), |s| format!("{:.1}..{:.1}", s.min, s.max));
    for row in &rows {
        text.row(vec![
            row.policy.clone(),
            interval_text(row.interval_us),
            if row.unchecked_boots > 0 {
                format!("{} (+{} FAILED check)", row.boots, row.unchecked_boots)
            } else {
                row.boots.to_string()
            },
            ns(row.rtt_median_ns),
            ns_range(row.rtt_median_ns),
            row.rtt_over_floor.map_or("-".to_string(), |s| format!("{:.2}x", s.median)),
            row.rtt_over_floor.map_or("-".to_string(), |s| format!("{:.2}x..{:.2}x", s.min, s.max)),
            ns(row.wakeup_median_ns),
            ns_range(row.wakeup_median_ns),
            row.echo_asleep.map_or("-".to_string(), |s| {
                format!("{:.1} % ({:.1}..{:.1})", s.median * 100.0, s.min * 100.0, s.max * 100.0)
            }),
        ]);
    }
    out.push_str(&text.render());
    let _ = writeln!(out);
    out
}
