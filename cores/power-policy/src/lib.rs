//! Per-core power policy as pure code, the one home of the power protocol's
//! decisions: what a core does after an empty poll ([`Governor`]), what
//! a requested policy becomes on a given CPU ([`resolve`]), and in which
//! order a core touches its P-state MSRs ([`msr`]), and how a policy
//! changed while the system runs reaches a server's governor ([`live`]). No hardware
//! access and no `unsafe`: the kernel (mover, boot) and `userlib` (servers)
//! run this code, the host tests it.
//!
//! Invariants: a resolved policy never asks for more than the CPU offers
//! (see [`resolve`]); the governor only returns `Sleep` to a policy that
//! may sleep and `LowerPstate` to one that asks for it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

mod governor;
pub mod live;
pub mod msr;
pub mod rapl;
pub mod resolve;

pub use governor::{CLOCK_EVERY_PAUSES, Escalation, Governor, SleepKind, Step};
pub use resolve::{
    CapabilityMsr, CpuPower, IdlePstateRequest, PstateControl, Request, Resolved, SleepRequest, resolve,
};
