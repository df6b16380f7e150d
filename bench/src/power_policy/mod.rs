//! The power-policy benchmark: one boot per power policy, set side by side
//! in one table.
//!
//! The guest boots once per policy (`spin`, `pause`, `mwait`, `hlt`, and any
//! newer name) and marks the block with `system=power-<policy>` on
//! `BENCH-BEGIN`. Inside it:
//!
//! ```text
//! BENCH latency name=cacheline-pingpong …                    the same-boot floor
//! BENCH latency name=power-rtt policy=P interval_us=I n= median_cycles= p99_cycles= … ok=
//! BENCH latency name=power-wakeup policy=P interval_us=I n= median_cycles= p99_cycles= …
//! BENCH counters phase=power-<I>us core= role=server|mover|idle server=<name>|-
//!                sleep_ticks= [pause_ticks=] total_ticks= sleeps= …
//! ```
//!
//! `interval_us=0` is back-to-back load; `power-rtt` is the round trip
//! `benchclient` -> mover -> `echo` -> mover -> `benchclient`,
//! `power-wakeup` one way (client send -> echo handled). All ticks are TSC
//! cycles of that boot.
//!
//! [`PowerTable`] holds one [`PowerRow`] per policy × interval, policies in
//! the order spin, pause, mwait, hlt, then other names in log order; rows
//! of one boot by interval. Rules the module keeps:
//! - a boot's latencies are divided only by that boot's `cacheline-pingpong`
//!   median (`rtt_over_floor`); across boots only those dimensionless
//!   ratios are divided (`rtt_over_baseline`, targets 1 and 3), never times;
//! - the baseline of every "vs base" figure and of targets 1 and 3 is the
//!   never-sleeping boot: the first `spin` boot, or, when the log has no
//!   spin boot (under TCG `spin` is not run, see `docs/power.md`), the first
//!   `pause` boot as a stand-in. The policy used is recorded
//!   (`baseline_policy` on the table, each row and each target that uses
//!   it) and named in the text, the target descriptions and the target ids
//!   (`mwait-rtt-vs-pause`), so a pause figure never passes for a spin one;
//! - a missing baseline boot, floor, record or tick count gives `None`
//!   (printed `-`), never a panic;
//! - a `power-rtt` with `ok` not equal to `n` (or without `ok`) keeps its
//!   figures but is flagged in the table, in a warning and on any target
//!   computed from it; a `power-wakeup` is flagged only when it carries an
//!   `ok` that disagrees;
//! - time shares are `sleep_ticks / total_ticks` and
//!   `pause_ticks / total_ticks` of the core that ran `echo`, `benchclient`
//!   or the mover during phase `power-<I>us`;
//! - targets are measured and reported as met, missed or not measured,
//!   never asserted.
//!
//! Files ([`write_power_outputs`]): `power.csv`, one [`PowerRow`] per line,
//! and `power.json`, a [`PowerJson`] (the table, targets, warnings and the raw
//! power runs). Nothing is written when the log holds no power boot.
//!
//! Split by job, each file using only the ones above it in this list:
//!
//! ```text
//! parse     power boots, power-rtt/power-wakeup records by interval, tick counts
//! rows      PowerBoot, PowerRow: times, ratios to floor and baseline, time shares
//! warnings  what a reader must not miss          targets   the three targets
//! analysis  PowerTable: rows + baseline ratios + targets + warnings
//! report    the text table                       export    power.csv, power.json
//! across_boots  per policy × interval, the median of the boots' medians and their spread
//! ```
//!
//! The benchmark draws no plot; the sweep (`cargo xtask tune power`,
//! [`tune`]) draws p50/p99 against the share asleep with its Pareto front.

pub mod across_boots;
pub mod analysis;
pub mod export;
pub mod parse;
pub mod report;
pub mod rows;
pub mod targets;
pub mod tune;
pub mod warnings;

pub use analysis::{PowerTable, power_table};
pub use export::{POWER_JSON_FORMAT, PowerJson, power_json, read_power_csv, read_power_json, write_power_outputs};
pub use parse::{
    BACK_TO_BACK_US, CLIENT_SERVER, ECHO_SERVER, ONE_PER_MS_US, POWER_RTT, POWER_WAKEUP, SYSTEM_PREFIX, interval_text,
    power_policy, power_runs,
};
pub use report::{power_report_text, power_table_text};
pub use rows::{PAUSE_POLICY, POLICY_ORDER, PowerBoot, PowerRow, SPIN_POLICY};
pub use targets::{PowerTarget, TargetUnit};
