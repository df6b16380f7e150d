//! Writes a [`SystemConfig`] back as TOML, every default made explicit, so a
//! person (or `cargo xtask check-config`) can see what the system resolves to.
//!
//! Invariants: `parse(&config.to_toml()) == Ok(config)` for every config
//! [`crate::parse`] accepts. Strings need no escaping: names, binaries and
//! endpoint names were checked to hold only `[A-Za-z0-9._/-]`.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

use crate::power_config::{IdlePstate, PowerOverride};
use crate::{RestartWhen, SystemConfig};

pub(crate) fn to_toml(config: &SystemConfig) -> String {
    let mut out = String::new();
    let movers: Vec<String> = config.mover_cores.iter().map(|c| format!("{c}")).collect();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "[system]");
    let _ = writeln!(out, "mover_cores = [{}]", movers.join(", "));
    let _ = writeln!(out, "ring_slots_default = {}", config.ring_slots_default);
    for server in &config.servers {
        let endpoints: Vec<String> = server.endpoints.iter().map(|e| format!("\"{}\"", e.name)).collect();
        let _ = writeln!(out, "\n[[server]]");
        let _ = writeln!(out, "name = \"{}\"", server.name);
        let _ = writeln!(out, "binary = \"{}\"", server.binary);
        let _ = writeln!(out, "core = {}", server.core);
        let _ = writeln!(out, "stack_kib = {}", server.stack_kib);
        if server.service {
            let _ = writeln!(out, "service = true");
        }
        if !server.args.is_empty() {
            let _ = writeln!(out, "args = \"{}\"", server.args.replace('\\', "\\\\").replace('"', "\\\""));
        }
        let _ = writeln!(out, "inbox_slots = {}", server.inbox_slots);
        let _ = writeln!(out, "outbox_slots = {}", server.outbox_slots);
        let _ = writeln!(out, "endpoints = [{}]", endpoints.join(", "));
        if server.mover_core_explicit {
            let _ = writeln!(out, "mover_core = {}", server.mover_core);
        }
        let restart = &server.restart;
        if restart.when != RestartWhen::Never {
            let _ = writeln!(out, "restart = \"{}\"", restart.when.name());
            if let Some(max) = restart.max_restarts {
                let _ = writeln!(out, "restart_max = {max}");
            }
            if let Some(window) = restart.window_ms {
                let _ = writeln!(out, "restart_window_ms = {window}");
            }
            let _ = writeln!(out, "restart_backoff_ms = {}", restart.backoff_ms);
        }
        if let Some(stall) = server.stall_ms {
            let _ = writeln!(out, "stall_ms = {stall}");
        }
        if server.power_control {
            let _ = writeln!(out, "power_control = true");
        }
    }
    for ring in &config.direct_rings {
        let server_name = |index: usize| config.servers.get(index).map_or("", |s| s.name.as_str());
        let _ = writeln!(out, "\n[[direct_ring]]");
        let _ = writeln!(out, "name = \"{}\"", ring.name);
        let _ = writeln!(out, "producer = \"{}\"", server_name(ring.producer));
        let _ = writeln!(out, "consumer = \"{}\"", server_name(ring.consumer));
        let _ = writeln!(out, "slots = {}", ring.slots);
    }
    for region in &config.regions {
        let server_name = |index: usize| config.servers.get(index).map_or("", |s| s.name.as_str());
        let _ = writeln!(out, "\n[[region]]");
        let _ = writeln!(out, "name = \"{}\"", region.name);
        let _ = writeln!(out, "size_kib = {}", region.size_kib);
        let _ = writeln!(out, "owner = \"{}\"", server_name(region.owner));
        let shares: Vec<String> = region
            .shared_with
            .iter()
            .map(|s| format!("{{ server = \"{}\", access = \"{}\" }}", server_name(s.server), s.access.name()))
            .collect();
        let _ = writeln!(out, "shared_with = [{}]", shares.join(", "));
    }
    for device in &config.devices {
        let server_name = config.servers.get(device.server).map_or("", |s| s.name.as_str());
        let _ = writeln!(out, "\n[[device]]");
        let _ = writeln!(out, "name = \"{}\"", device.name);
        let _ = writeln!(out, "server = \"{server_name}\"");
        match device.matching {
            crate::DeviceMatch::Ids { vendor, device } => {
                let _ = writeln!(out, "vendor = {vendor:#06x}\ndevice = {device:#06x}");
            }
            crate::DeviceMatch::Slot(address) => {
                let _ = writeln!(out, "slot = \"{address}\"");
            }
        }
        let _ = writeln!(out, "dma_kib = {}", device.dma_kib);
    }
    let power = &config.power;
    for (role, table) in
        [("server", &power.default_server), ("mover", &power.default_mover), ("idle", &power.default_idle)]
    {
        if !table.is_empty() {
            let _ = writeln!(out, "\n[power.default.{role}]");
            write_override(&mut out, table);
        }
    }
    for core in &power.cores {
        let _ = writeln!(out, "\n[power.core.{}]", core.core);
        write_override(&mut out, &core.policy);
    }
    out
}

fn write_override(out: &mut String, table: &PowerOverride) {
    if let Some(v) = table.spin_polls_before_pause {
        let _ = writeln!(out, "spin_polls_before_pause = {v}");
    }
    if let Some(v) = table.pause_us_before_sleep {
        let _ = writeln!(out, "pause_us_before_sleep = {v}");
    }
    if let Some(v) = table.sleep {
        let _ = writeln!(out, "sleep = \"{}\"", v.name());
    }
    if let Some(v) = table.mwait_hint {
        let _ = writeln!(out, "mwait_hint = \"c{}\"", v.cstate());
    }
    match table.idle_pstate {
        Some(IdlePstate::Lowest) => {
            let _ = writeln!(out, "idle_pstate = \"lowest\"");
        }
        Some(IdlePstate::Unchanged) => {
            let _ = writeln!(out, "idle_pstate = \"unchanged\"");
        }
        Some(IdlePstate::Ratio(r)) => {
            let _ = writeln!(out, "idle_pstate = {r}");
        }
        None => {}
    }
    if let Some(v) = table.hwp_epp_idle {
        let _ = writeln!(out, "hwp_epp_idle = {v}");
    }
    if let Some(v) = table.idle_pstate_after_us {
        let _ = writeln!(out, "idle_pstate_after_us = {v}");
    }
}
