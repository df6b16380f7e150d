//! Atomics switch: `core` atomics in normal builds, loom's model atomics
//! under `RUSTFLAGS="--cfg loom"`.
//!
//! Invariant: nothing else in the crate names `core::sync::atomic` directly,
//! so a loom build models every shared-memory access the ring makes.

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{AtomicU64, Ordering, fence};
