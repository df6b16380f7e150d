//! The message-size sweep (`cargo xtask bench sizes`): one boot marked
//! `system=sizes`, messages of 64 B to 64 KiB between two servers four
//! ways (inline slots or descriptors, through the mover or over a direct
//! ring), and the mover's per-message cost with and without a descriptor.
//!
//! ```text
//! BENCH latency name=cacheline-pingpong …                     the same-boot floor
//! BENCH stream  name=direct-ring-stream batch=1 …              the stream floor (64-byte structs)
//! BENCH latency name=sizes-rtt path=P size=S slots=K n= median_cycles= p99_cycles= … ok= tsc_backwards=
//! BENCH stream  name=sizes-stream path=P size=S slots=K n= cycles= ok= tsc_backwards=0 bad= returned=
//! BENCH latency name=sizes-cost-rtt path=mover-plain|mover-descriptor size=16 …
//! BENCH stream  name=sizes-cost-stream path=… size=16 n= cycles= ok= …
//! BENCH counters phase=sizes-cost-plain|sizes-cost-descriptor core= role= … messages= syscalls=
//! ```
//!
//! `ok=` is what the receiving server counted good: every byte of the
//! message checked against a pattern of (path, size, message number), on
//! its private copy. Rules: figures are divided only by figures of the same
//! boot; a row whose `ok` is not its `n` is flagged and carries no target
//! verdict; targets are measured, never asserted.
//!
//! ```text
//! analysis  SizesAnalysis: rows, cost rows, targets, warnings
//! report    the text              plot  sizes.png           export  sizes.{csv,json}, sizes-cost.csv
//! ```

pub mod analysis;
pub mod export;
pub mod plot;
pub mod report;

pub use analysis::{SizesAnalysis, analyze_sizes, is_sizes_run};
pub use export::{SIZES_JSON_FORMAT, SizesJson, write_sizes_outputs};
pub use report::sizes_report_text;
