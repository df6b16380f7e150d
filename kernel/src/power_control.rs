//! Changing a core's power policy while the system runs, from the serial
//! console (`power core=2 sleep=hlt pause_us_before_sleep=20`) or from a
//! server the system TOML grants `power_control = true` (the
//! `power_control` system call), and the supervisor's wait between events
//! on core 0, which is where console input is read.
//!
//! ```text
//!  console line / power_control call
//!    └─► system_config::parse_power_command   same keys and checks as [power.core.N]
//!        refused? one line naming the key; nothing changes
//!    └─► power::replace: merge over the core's policy, resolve on this CPU,
//!        the kernel's own uses (`wait`, doorbells) see it at once
//!    └─► every server on the core: LivePolicy words in its info page
//!        └─► its governor applies them at its next checkpoint, and says so
//!    └─► a mover core: `power::live_generation` moves; every mover is woken
//!        └─► the mover applies it at its next checkpoint (every 4096
//!            passes, and after each sleep), and says so
//! ```
//!
//! Invariants: one change at a time (`CHANGES`); a refused change changes
//! nothing; a change is refused for a core that runs neither a server nor
//! a mover, and for a core whose boot policy never sleeps going to a
//! sleeping one (for a server core the movers decided at boot not to check
//! its wake words; for a mover core its servers were told at load that the
//! mover never sleeps, so they never wake it: either sleep could lose a
//! wake-up). Console input is read only by core 0's supervisor
//! (`crate::serial`); with a mover on core 0 it is off, and boot says so.

use crate::server;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};
use power_policy::SleepKind;
use power_policy::live::LivePolicy;
use system_config::{PolicyRole, describe_power_command_error, parse_power_command};

/// Serialises changes (parsing, resolving and publishing one at a time).
static CHANGES: spin::Mutex<()> = spin::Mutex::new(());
/// Config indices of the servers granted `power_control`.
static GRANTED: spin::Once<Vec<usize>> = spin::Once::new();
/// Core 0 supervises (no mover on it): console input can be read.
static SUPERVISING: AtomicBool = AtomicBool::new(false);

/// Who asked for a change (for the console lines).
#[derive(Clone, Copy)]
pub enum Source<'a> {
    Console,
    Server(&'a str),
}

impl core::fmt::Display for Source<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Source::Console => f.write_str("the console"),
            Source::Server(name) => write!(f, "server `{name}`"),
        }
    }
}

/// Records the grants from the system TOML (boot, after the servers loaded).
pub fn init(config: &system_config::SystemConfig) {
    GRANTED.call_once(|| config.servers.iter().filter(|s| s.power_control).map(|s| s.index).collect());
}

/// Whether the server at `config_index` of the TOML holds `power_control`.
pub fn granted(config_index: usize) -> bool {
    GRANTED.get().is_some_and(|g| g.contains(&config_index))
}

/// Turns console input on when core 0 supervises (boot, last step before
/// the supervisor loop), routed as `madt` says; says how to use it and the
/// route taken, or why it is off.
pub fn start_console(core0_supervises: bool, madt: &smp_boot::madt::MadtInfo) {
    if !core0_supervises {
        log::info!(
            "console: input off (core 0 runs a mover and never reads the UART; live power changes come from servers holding power_control)"
        );
        return;
    }
    let apic_id = crate::smp::apic().id();
    match crate::serial::enable_input(crate::smp::DOORBELL_VECTOR, apic_id, madt) {
        Ok(route) => {
            SUPERVISING.store(true, Ordering::Release);
            log::info!(
                "console: input on (UART receive interrupt: {route} -> core 0); type `power core=N key=value ...` to change a core's power policy"
            );
        }
        Err(why) => log::warn!("console: input off: {why}"),
    }
}

/// Applies one command; returns the new policy's generation, or `None`
/// after printing why it was refused (nothing changed then).
pub fn apply(line: &str, source: Source<'_>) -> Option<u64> {
    let _one_at_a_time = CHANGES.lock();
    let command = match parse_power_command(line) {
        Ok(command) => command,
        Err(e) => {
            log::warn!("power: refused a change from {source}: {}", describe_power_command_error(&e));
            return None;
        }
    };
    let core = command.core;
    let refuse = |why: String| {
        log::warn!("power: refused a change from {source}: {why}");
        None
    };
    let key = alloc::format!("power.core.{core}");
    let boot_never_sleeps = !crate::power::boot_can_sleep(core);
    let servers: Vec<&server::Server> = server::all().iter().filter(|s| s.core == core).collect();
    let allow = |merged: &system_config::PowerPolicy, role: PolicyRole, resolved: &power_policy::Resolved| {
        let who_wakes = match role {
            PolicyRole::Mover => "its servers never wake the mover",
            PolicyRole::Idle => {
                return Err(alloc::format!(
                    "key `{key}`: core {core} runs no server and no mover; expected a server or mover core"
                ));
            }
            PolicyRole::Server => {
                if servers.is_empty() {
                    return Err(alloc::format!(
                        "key `{key}`: no server was loaded on core {core}; expected a server or mover core"
                    ));
                }
                "the movers never check its wake words"
            }
        };
        if boot_never_sleeps && resolved.escalation.sleep != SleepKind::Never {
            return Err(alloc::format!(
                "key `{key}.sleep`: core {core} booted with sleep = \"none\", so {who_wakes} and a sleep there could miss a message; expected \"none\" (to sleep, set it in the TOML and reboot), not \"{}\"",
                merged.sleep.name()
            ));
        }
        Ok(())
    };
    let (escalation, note) = match crate::power::replace(core, &command.policy, allow) {
        Ok(done) => done,
        Err(why) => return refuse(why),
    };
    let mut generation = 0;
    for s in &servers {
        generation = generation.max(publish(s, &escalation));
    }
    if servers.is_empty() {
        // A mover core: the generation `replace` moved. A sleeping mover
        // applies the change when it wakes; wake them all (cheap, and a
        // mover that is awake costs one load).
        generation = crate::power::live_generation(core);
        crate::power::sleep::wake_all_movers();
    }
    log::info!(
        "power: core {core}: policy generation {generation} from {source} accepted: {note}; applies at the core's next governor checkpoint"
    );
    Some(generation)
}

/// Writes `escalation` into the live-policy words of `server`'s info page.
fn publish(server: &server::Server, escalation: &power_policy::Escalation) -> u64 {
    if server.info_phys == 0 {
        return 0;
    }
    let at = crate::mem::phys_to_virt(server.info_phys + abi::LIVE_POLICY_OFFSET);
    // SAFETY: the info frame belongs to this server for the whole run
    // (restarts keep it) and the kernel maps all physical memory;
    // `LIVE_POLICY_OFFSET` is 8-aligned and past `ServerInfo` (asserted in
    // `abi`), and the words there are only ever used as `LivePolicy`'s
    // atomics (the page was zeroed, a valid `LivePolicy`). Writers are
    // serialised by `CHANGES`.
    let live = unsafe { &*(at as *const LivePolicy) };
    live.write(escalation)
}

/// One console line: a `power ...` command, or a word of help.
fn console_line(line: &str) {
    let text = line.trim();
    log::info!("console: `{text}`");
    let first = text.split(' ').next().unwrap_or("");
    if first == "power" {
        apply(text, Source::Console);
    } else {
        log::warn!(
            "console: unknown command `{first}`; expected `power core=N key=value ...` (keys: {})",
            system_config::POWER_COMMAND_KEYS.join(", ")
        );
    }
}

/// The supervisor's wait between events on core 0 (interrupts off on
/// entry and on return): reads console input, then halts until an
/// interrupt (a stopping server's IPI, a console byte) — or, when the
/// watch view is on, until its next line is due.
pub fn supervisor_wait() {
    if SUPERVISING.load(Ordering::Acquire) {
        crate::serial::read_input_lines(console_line);
    }
    crate::watch::wait_or_emit();
}
