//! The IPC benchmark (one boot: floors, mover and sync IPC, streams,
//! counters), split by job, each file using only the ones above it:
//!
//! ```text
//! record_figures  one record's times, rates and ratios to its baseline
//! paths           which IPC path a row measures, cores it uses, what its counters must show
//! targets         issue 6's target ratios, met or missed, never asserted
//! analysis        Analysis of one run: figures + zero claims + targets + warnings
//! report          the text table (one run; target ratios across runs)
//! across_boots    per figure, the median of the boots' medians and their spread
//! plot            ipc.png
//! export          ipc.csv, ipc-counters.csv, ipc-targets.csv, ipc.json
//!                 (write_outputs adds the plot)
//! ```
//!
//! Its records are the generic `latency`, `stream` and `counters` lines, so
//! it has no parser of its own: [`crate::serial_log`] reads them.

pub mod across_boots;
pub mod analysis;
pub mod export;
pub mod paths;
pub mod plot;
pub mod record_figures;
pub mod report;
pub mod targets;
