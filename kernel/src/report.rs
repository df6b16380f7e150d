//! What the kernel tells a person about a run: per server, how it ended
//! and what the mover did with its outbox (with regions: descriptors
//! delivered and bounced `BAD_DESCRIPTOR`); per core, its counters; the
//! power runtime view (shares of time polling, pausing, asleep) and energy.
//! Printed at the end of a run, and the power view also on request (the
//! `power_report` system call).
//!
//! Read-only: nothing here changes state, so any layer above may print it.

use crate::arch::x86_64::tsc;
use crate::power;
use crate::server::{self, State};
use core::sync::atomic::Ordering;

/// How each server ended (or that it is still running, for services), and
/// its outbox counters.
pub fn servers() {
    for s in server::all() {
        match s.state() {
            State::Exited => log::info!("system: server `{}` exited with code {}", s.name, s.exit_code()),
            State::Faulted => log::info!("system: server `{}` was stopped by a fault or a hang", s.name),
            State::Restarting => log::info!("system: server `{}` is between incarnations (restarting)", s.name),
            State::Loaded | State::Running if s.service => {
                log::info!("system: server `{}` (a service) is still running", s.name)
            }
            State::Loaded | State::Running => log::info!("system: server `{}` is still running", s.name),
        }
        let [sent, delivered, bounced, blocked, corrupt, undeliverable] = s.outbox_counters.snapshot();
        log::info!(
            "rings: server `{}` outbox: sent {sent}, delivered {delivered}, bounced {bounced}, backpressure retries {blocked}, corrupt-index reads {corrupt}, undeliverable bounces {undeliverable}",
            s.name,
        );
        let bad = s.outbox_counters.bad_descriptors.load(Ordering::Relaxed);
        if !s.region_grants.is_empty() || bad > 0 {
            log::info!(
                "regions: server `{}` outbox: descriptors delivered {}, bounced BAD_DESCRIPTOR (label {}) {bad}",
                s.name,
                s.outbox_counters.descriptors.load(Ordering::Relaxed),
                abi::bounce::BAD_DESCRIPTOR
            );
        }
    }
    crate::limits::report();
    let (deferred, lost) = crate::serial::deferred_counts();
    if deferred > 0 {
        log::info!(
            "serial: {deferred} kernel line(s) found the console busy and were deferred, {lost} of them lost (no free slot)"
        );
    }
}

/// Every online core's event counters.
pub fn core_counters() {
    for core in cores::all().iter().filter(|c| c.online.load(Ordering::Acquire)) {
        log::info!(
            "counters: core {}: syscalls {}, exceptions {}, interrupts {}, cr3 writes {}, messages moved {}",
            core.index(),
            core.syscalls.load(Ordering::Relaxed),
            core.exceptions.load(Ordering::Relaxed),
            core.interrupts.load(Ordering::Relaxed),
            core.cr3_writes.load(Ordering::Relaxed),
            core.messages.load(Ordering::Relaxed)
        );
    }
}

/// The mover's outbox re-check count (servers re-check their inboxes in
/// user space and report that count themselves), and with the race-test
/// knob, the wake-ups that came between the last check and the halt.
struct RaceCounts<'a>(&'a cores::PerCore);

impl core::fmt::Display for RaceCounts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0.role() == cores::Role::Mover {
            write!(f, ", {} at the outbox re-check", self.0.sleeps_withdrawn.load(Ordering::Relaxed))?;
        }
        if power::race_delay_ticks() != 0 && power::can_sleep(self.0.index()) {
            write!(
                f,
                "; woken between the last check and the halt: {}",
                self.0.woken_before_halt.load(Ordering::Relaxed)
            )?;
        }
        Ok(())
    }
}

fn percent_tenths(part: u64, total: u64) -> (u64, u64) {
    let tenths = (u128::from(part) * 1000 / u128::from(total.max(1))) as u64;
    (tenths / 10, tenths % 10)
}

/// The runtime view: per core, shares of time polling, pausing and asleep,
/// sleeps, P-state writes; wake-ups servers delivered to sleeping movers.
pub fn power_view() {
    let now = tsc::now();
    let tsc_per_ms = tsc::ticks_per_us().max(1) * 1000;
    for core in cores::all().iter().filter(|c| c.online.load(Ordering::Acquire)) {
        if !matches!(core.role(), cores::Role::Mover | cores::Role::Server | cores::Role::Parked) {
            log::info!(
                "power: core {} ({}): not tracked (the kernel's supervisor and idle cores halt between events)",
                core.index(),
                core.role().name()
            );
            continue;
        }
        let started = core.role_started_tsc.load(Ordering::Relaxed);
        let start = if started != 0 { started } else { power::tracking_started_tsc() };
        let total = now.saturating_sub(start).max(1);
        let parked = core.role() == cores::Role::Parked;
        // A parked core halts; its time since parking is neither polling
        // nor the sleep the policy counts. Without the park time the
        // shares cannot be told apart, and the line says so.
        let parked_ticks = match power::parked_since(core.index()) {
            Some(at) if parked => Some(now.saturating_sub(at).min(total)),
            _ => None,
        };
        let running = total - parked_ticks.unwrap_or(0);
        let asleep = core.sleep_ticks.load(Ordering::Relaxed).min(running);
        let (paused, from_server) = server::pause_ticks_of(core, running - asleep);
        let polling = running - asleep - paused;
        let (a, a10) = percent_tenths(asleep, total);
        let (p, p10) = percent_tenths(paused, total);
        let (w, w10) = percent_tenths(polling, total);
        let head = match parked_ticks {
            Some(ticks) => {
                let (k, k10) = percent_tenths(ticks, total);
                alloc::format!("parked {k}.{k10}% (the last {} ms), before that ", ticks / tsc_per_ms)
            }
            None if parked => {
                log::info!(
                    "power: core {} (parked): of {} ms: parked since a time not recorded (the shares of polling, pausing and asleep are unknown); sleeps {}, P-state writes {}",
                    core.index(),
                    total / tsc_per_ms,
                    core.sleeps.load(Ordering::Relaxed),
                    core.pstate_changes.load(Ordering::Relaxed)
                );
                continue;
            }
            None => alloc::string::String::new(),
        };
        log::info!(
            "power: core {} ({}): of {} ms: {head}polling/working {w}.{w10}%, pausing {p}.{p10}%{}, asleep {a}.{a10}%; sleeps {}, P-state writes {}; sleeps called off: {} at the last check{}",
            core.index(),
            core.role().name(),
            total / tsc_per_ms,
            if from_server { " (reported by the server)" } else { "" },
            core.sleeps.load(Ordering::Relaxed),
            core.pstate_changes.load(Ordering::Relaxed),
            core.sleeps_called_off.load(Ordering::Relaxed),
            RaceCounts(core)
        );
    }
    for number in 0..abi::MAX_MOVERS {
        let wakeups = power::sleep::mover_wakeups(number);
        let room = power::sleep::mover_room_sleeps(number);
        if wakeups > 0 || room > 0 {
            log::info!(
                "power: mover {number}: woken by servers {wakeups} times; {room} sleeps waited for room in an inbox"
            );
        }
    }
    crate::energy::report();
}
