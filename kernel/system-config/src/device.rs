//! `[[device]]` tables: a PCI function granted to one server (a driver),
//! chosen by its `vendor`/`device` ids or by its `slot`, with DMA memory of
//! `dma_kib` KiB. The kernel maps the function's memory BARs (uncached,
//! never executable) into that server only, allocates the DMA memory
//! physically contiguous and tells the server its physical address; see
//! `docs/drivers.md`. There is no IOMMU: the server is trusted with DMA.
//!
//! Invariants: a checked [`Device`] has a unique valid name, a server of
//! the file, exactly one way of choosing its function (`vendor` and
//! `device` together, or `slot`), ids in `0..=0xfffe` (0xffff is "no
//! function" on the bus), a slot `BB:DD.F` in range, and `dma_kib` whole
//! pages within [`DMA_KIB_RANGE`]; no two tables choose the same thing
//! (the same ids, or the same slot); no server holds more than
//! [`abi::device::MAX_DEVICES`] devices; all DMA memory together stays
//! within [`DMA_TOTAL_MAX_KIB`]. Which function each table gets on the
//! machine is [`SystemConfig::resolve_devices`], called by the kernel at
//! boot with what it found on the bus: a table that matches nothing, or
//! a function two tables match, stops the boot with an error at the
//! table's key. Errors come in file order, at the offending value.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::Deserialize;
use toml::Spanned;

use crate::check::{Checker, quoted, valid_name};
use crate::error::ConfigError;
use crate::{MAX_NAME_LEN, Origin, SystemConfig};

/// Smallest and largest DMA memory of one device, in KiB (a multiple of 4).
pub const DMA_KIB_RANGE: (u32, u32) = (0, 64 * 1024);
/// Most KiB of DMA memory all devices of a file may add up to (256 MiB).
pub const DMA_TOTAL_MAX_KIB: u64 = 256 * 1024;

/// A PCI function's address on the bus: bus, device (slot) and function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PciAddress {
    pub bus: u8,
    /// 0..32.
    pub device: u8,
    /// 0..8.
    pub function: u8,
}

impl PciAddress {
    /// Parses `BB:DD.F` (hex bus and device, decimal function 0..=7), as
    /// `lspci` and QEMU's `info pci` write it.
    pub fn parse(text: &str) -> Option<PciAddress> {
        let (bus, rest) = text.split_once(':')?;
        let (device, function) = rest.split_once('.')?;
        let hex = |s: &str, max: u8| -> Option<u8> {
            if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            u8::from_str_radix(s, 16).ok().filter(|&n| n <= max)
        };
        let bus = hex(bus, 0xff)?;
        let device = hex(device, 31)?;
        if function.len() != 1 {
            return None;
        }
        let function = function.bytes().next().filter(|b| (b'0'..=b'7').contains(b))? - b'0';
        Some(PciAddress { bus, device, function })
    }
}

impl fmt::Display for PciAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02x}:{:02x}.{}", self.bus, self.device, self.function)
    }
}

/// A function the kernel found on the bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PciFunction {
    pub address: PciAddress,
    pub vendor: u16,
    pub device: u16,
}

/// How a `[[device]]` table chooses its function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceMatch {
    /// `vendor` and `device`: the first function with these ids, in bus
    /// order (bus, slot, function).
    Ids { vendor: u16, device: u16 },
    /// `slot`: the function at this address.
    Slot(PciAddress),
}

impl DeviceMatch {
    /// Whether `function` is what this asks for.
    pub fn matches(&self, function: &PciFunction) -> bool {
        match *self {
            DeviceMatch::Ids { vendor, device } => function.vendor == vendor && function.device == device,
            DeviceMatch::Slot(address) => function.address == address,
        }
    }
}

impl fmt::Display for DeviceMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceMatch::Ids { vendor, device } => write!(f, "{vendor:04x}:{device:04x}"),
            DeviceMatch::Slot(address) => write!(f, "slot {address}"),
        }
    }
}

/// One `[[device]]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Position among the `[[device]]` tables, from 0.
    pub index: usize,
    /// `name`: unique among devices, `[a-z0-9_-]{1,32}`.
    pub name: String,
    /// `server`: index in [`SystemConfig::servers`] of the one server it
    /// is granted to.
    pub server: usize,
    /// `vendor` + `device`, or `slot`.
    pub matching: DeviceMatch,
    /// `dma_kib`: DMA memory in KiB (a multiple of 4; default 0, none).
    pub dma_kib: u32,
    /// Where its `name` was written.
    pub origin: Origin,
    /// Where its `vendor` or `slot` was written (errors at boot point here).
    pub match_origin: Origin,
    /// Where its `dma_kib` was written (or the table, when not set).
    pub dma_origin: Origin,
}

impl Device {
    /// Its DMA memory in bytes.
    pub fn dma_bytes(&self) -> u64 {
        u64::from(self.dma_kib) * 1024
    }
}

/// The file's `[[device]]` table as serde sees it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawDevice {
    pub name: Spanned<String>,
    pub server: Spanned<String>,
    pub vendor: Option<Spanned<i64>>,
    pub device: Option<Spanned<i64>>,
    pub slot: Option<Spanned<String>>,
    pub dma_kib: Option<Spanned<i64>>,
}

impl SystemConfig {
    /// The devices granted to server `server` (an index in `servers`), in
    /// file order: its view, the order of its info page (entry `i` is
    /// mapped at `abi::device::bar_addr(i, _)`).
    pub fn devices_of(&self, server: usize) -> impl Iterator<Item = &Device> {
        self.devices.iter().filter(move |d| d.server == server)
    }

    /// Chooses each device table's function among those the kernel found
    /// on the bus (`found`, in bus order): entry `i` of the result is the
    /// function of `devices[i]`. A table that matches no function, or a
    /// function that two tables would get, is an error at the table's
    /// `vendor` or `slot`, listing what the bus holds.
    pub fn resolve_devices(&self, found: &[PciFunction]) -> Result<Vec<PciFunction>, ConfigError> {
        let mut chosen: Vec<PciFunction> = Vec::with_capacity(self.devices.len());
        for device in &self.devices {
            let key = format!(
                "device[{}].{}",
                device.index,
                if matches!(device.matching, DeviceMatch::Slot(_)) { "slot" } else { "vendor" }
            );
            let Some(function) = found.iter().find(|f| device.matching.matches(f)) else {
                let listed: Vec<String> =
                    found.iter().map(|f| format!("{} {:04x}:{:04x}", f.address, f.vendor, f.device)).collect();
                return Err(ConfigError::at(
                    device.match_origin.0,
                    key,
                    format!("device `{}`: no PCI function {} on this machine", device.name, device.matching),
                    if listed.is_empty() {
                        String::from("a function on the bus (the kernel found none)")
                    } else {
                        format!("a function on the bus: {}", listed.join(", "))
                    },
                ));
            };
            if let Some(other) = chosen.iter().position(|c| c.address == function.address) {
                return Err(ConfigError::at(
                    device.match_origin.0,
                    key,
                    format!(
                        "device `{}` would get {}, which device `{}` already has",
                        device.name, function.address, self.devices[other].name
                    ),
                    "each function granted once (choose by `slot` to tell equal devices apart)",
                ));
            }
            chosen.push(*function);
        }
        Ok(chosen)
    }

    /// Checks that the devices' DMA memory fits in `free_kib`, in file
    /// order: the error points at the `dma_kib` of the first device that
    /// does not fit. The kernel calls it at boot after the regions.
    pub fn check_dma_memory(&self, free_kib: u64) -> Result<(), ConfigError> {
        let mut total: u64 = 0;
        for device in &self.devices {
            total += u64::from(device.dma_kib);
            if total > free_kib {
                return Err(ConfigError::at(
                    device.dma_origin.0,
                    format!("device[{}].dma_kib", device.index),
                    format!(
                        "device `{}` ({} KiB of DMA memory) does not fit: the devices up to it need {total} KiB, this machine has {free_kib} KiB free for them",
                        device.name, device.dma_kib
                    ),
                    "less DMA memory, or more memory",
                ));
            }
        }
        Ok(())
    }
}

impl Checker<'_> {
    /// Checks every `[[device]]` table against the servers (`names`:
    /// name → index).
    pub(crate) fn devices(
        &self,
        raw: &[Spanned<RawDevice>],
        names: &BTreeMap<&str, usize>,
    ) -> Result<Vec<Device>, ConfigError> {
        let mut devices: Vec<Device> = Vec::with_capacity(raw.len());
        let mut held: BTreeMap<usize, usize> = BTreeMap::new();
        let mut total_kib: u64 = 0;
        for (index, table) in raw.iter().enumerate() {
            let t = table.get_ref();
            let prefix = format!("device[{index}]");
            let name = t.name.get_ref();
            if !valid_name(name) {
                return Err(ConfigError::at(
                    self.span(&t.name),
                    format!("{prefix}.name"),
                    format!("`{name}` is not a valid device name"),
                    format!("1 to {MAX_NAME_LEN} characters from a-z, 0-9, `_` and `-`"),
                ));
            }
            if let Some(first) = devices.iter().find(|d| &d.name == name) {
                return Err(ConfigError::at(
                    self.span(&t.name),
                    format!("{prefix}.name"),
                    format!(
                        "two devices named `{name}` (lines {} and {})",
                        first.origin.0.line,
                        self.span(&t.name).line
                    ),
                    "unique device names",
                ));
            }
            let server = names.get(t.server.get_ref().as_str()).copied().ok_or_else(|| {
                let known: Vec<&str> = names.keys().copied().collect();
                ConfigError::at(
                    self.span(&t.server),
                    format!("{prefix}.server"),
                    format!("no server named `{}`", t.server.get_ref()),
                    format!("the name of a server in this file ({})", quoted(&known)),
                )
            })?;
            let (matching, match_origin) = match (&t.vendor, &t.device, &t.slot) {
                (Some(vendor), Some(device), None) => {
                    let vendor_id = self.pci_id(vendor, &format!("{prefix}.vendor"))?;
                    let device_id = self.pci_id(device, &format!("{prefix}.device"))?;
                    (DeviceMatch::Ids { vendor: vendor_id, device: device_id }, Origin(self.span(vendor)))
                }
                (None, None, Some(slot)) => {
                    let Some(address) = PciAddress::parse(slot.get_ref()) else {
                        return Err(ConfigError::at(
                            self.span(slot),
                            format!("{prefix}.slot"),
                            format!("`{}` is not a PCI slot", slot.get_ref()),
                            "\"BB:DD.F\": hex bus 00..ff, hex device 00..1f, function 0..7 (e.g. \"00:03.0\")",
                        ));
                    };
                    (DeviceMatch::Slot(address), Origin(self.span(slot)))
                }
                (_, _, Some(slot)) => {
                    return Err(ConfigError::at(
                        self.span(slot),
                        format!("{prefix}.slot"),
                        "`slot` together with `vendor`/`device`",
                        "either `vendor` and `device`, or `slot`",
                    ));
                }
                (Some(vendor), None, None) => {
                    return Err(ConfigError::at(
                        self.span(vendor),
                        format!("{prefix}.vendor"),
                        "`vendor` without `device`",
                        "`vendor` and `device` together, or `slot`",
                    ));
                }
                (None, Some(device), None) => {
                    return Err(ConfigError::at(
                        self.span(device),
                        format!("{prefix}.device"),
                        "`device` without `vendor`",
                        "`vendor` and `device` together, or `slot`",
                    ));
                }
                (None, None, None) => {
                    return Err(ConfigError::at(
                        self.span(&t.name),
                        format!("{prefix}.name"),
                        format!("device `{name}` says neither which ids nor which slot"),
                        "`vendor` and `device` (e.g. vendor = 0x1af4, device = 0x1000), or `slot` (e.g. \"00:03.0\")",
                    ));
                }
            };
            if let Some(other) = devices.iter().find(|d| d.matching == matching) {
                return Err(ConfigError::at(
                    match_origin.0,
                    format!("{prefix}.{}", if matches!(matching, DeviceMatch::Slot(_)) { "slot" } else { "vendor" }),
                    format!("device `{name}` asks for {matching}, as device `{}` does", other.name),
                    "each function granted once (choose by `slot` to tell equal devices apart)",
                ));
            }
            let (dma_kib, dma_origin) = match &t.dma_kib {
                Some(value) => {
                    let key = format!("{prefix}.dma_kib");
                    let (min, max) = DMA_KIB_RANGE;
                    let kib = self.u32_in(value, &key, min, max)?;
                    if kib % 4 != 0 {
                        return Err(ConfigError::at(
                            self.span(value),
                            key,
                            format!("{kib} KiB is not a whole number of 4 KiB pages"),
                            format!("a multiple of 4 in {min}..={max}"),
                        ));
                    }
                    total_kib += u64::from(kib);
                    if total_kib > DMA_TOTAL_MAX_KIB {
                        return Err(ConfigError::at(
                            self.span(value),
                            key,
                            format!("the DMA memory of the devices up to `{name}` adds up to {total_kib} KiB"),
                            format!("at most {DMA_TOTAL_MAX_KIB} KiB of DMA memory in all"),
                        ));
                    }
                    (kib, Origin(self.span(value)))
                }
                None => (0, Origin(self.span(table))),
            };
            let count = held.entry(server).or_insert(0);
            *count += 1;
            if *count > abi::device::MAX_DEVICES {
                return Err(ConfigError::at(
                    self.span(&t.server),
                    format!("{prefix}.server"),
                    format!("server `{}` would hold {} devices", t.server.get_ref(), *count),
                    format!("at most {} devices per server", abi::device::MAX_DEVICES),
                ));
            }
            devices.push(Device {
                index,
                name: name.clone(),
                server,
                matching,
                dma_kib,
                origin: Origin(self.span(&t.name)),
                match_origin,
                dma_origin,
            });
        }
        Ok(devices)
    }

    /// A vendor or device id: 0..=0xfffe (0xffff reads back from an empty slot).
    fn pci_id(&self, value: &Spanned<i64>, key: &str) -> Result<u16, ConfigError> {
        let n = *value.get_ref();
        match u16::try_from(n) {
            Ok(id) if id != 0xffff => Ok(id),
            _ => Err(ConfigError::at(
                self.span(value),
                key,
                format!("{n} is not a PCI id"),
                "an integer in 0..=0xfffe (write it in hex, e.g. 0x1af4)",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    const BASE: &str = r#"[system]
mover_cores = [1]

[[server]]
name = "driver"
core = 2

[[server]]
name = "stack"
core = 3

[[device]]
name = "net0"
server = "driver"
vendor = 0x1af4
device = 0x1000
dma_kib = 256

[[device]]
name = "disk"
server = "driver"
slot = "00:04.0"
"#;

    fn edit(from: &str, to: &str) -> String {
        assert_eq!(BASE.matches(from).count(), 1, "`{from}` must occur once");
        BASE.replacen(from, to, 1)
    }

    fn first_line(text: &str) -> String {
        let err = parse(text).expect_err("expected an error");
        err.render("system.toml", text).lines().next().unwrap().into()
    }

    fn function(bus: u8, device: u8, function: u8, vendor: u16, id: u16) -> PciFunction {
        PciFunction { address: PciAddress { bus, device, function }, vendor, device: id }
    }

    #[test]
    fn devices_parse_in_file_order_with_their_server() {
        let c = parse(BASE).unwrap();
        assert_eq!(c.devices.len(), 2);
        let net = &c.devices[0];
        assert_eq!((net.index, net.name.as_str(), net.server, net.dma_kib), (0, "net0", 0, 256));
        assert_eq!(net.matching, DeviceMatch::Ids { vendor: 0x1af4, device: 0x1000 });
        assert_eq!(net.match_origin.0.line, 15);
        assert_eq!(net.dma_bytes(), 256 * 1024);
        let disk = &c.devices[1];
        assert_eq!(disk.matching, DeviceMatch::Slot(PciAddress { bus: 0, device: 4, function: 0 }));
        assert_eq!(disk.dma_kib, 0);
        assert_eq!(c.devices_of(0).count(), 2);
        assert_eq!(c.devices_of(1).count(), 0);
    }

    #[test]
    fn to_toml_round_trips_devices() {
        let c = parse(BASE).unwrap();
        assert_eq!(parse(&c.to_toml()).unwrap(), c);
    }

    #[test]
    fn slots_parse_like_lspci() {
        assert_eq!(PciAddress::parse("00:03.0"), Some(PciAddress { bus: 0, device: 3, function: 0 }));
        assert_eq!(PciAddress::parse("ff:1f.7"), Some(PciAddress { bus: 255, device: 31, function: 7 }));
        assert_eq!(PciAddress::parse("0:3.1"), Some(PciAddress { bus: 0, device: 3, function: 1 }));
        for bad in ["", "00:20.0", "00:03.8", "100:00.0", "00-03.0", "00:03", "00:03.00", "g0:00.0", "00:03.0 "] {
            assert_eq!(PciAddress::parse(bad), None, "{bad}");
        }
        assert_eq!(PciAddress { bus: 0, device: 3, function: 0 }.to_string(), "00:03.0");
    }

    #[test]
    fn bad_tables_are_errors_at_their_line_and_column() {
        let cases = [
            (
                edit("vendor = 0x1af4\ndevice = 0x1000\n", ""),
                "system.toml:13:8: key `device[0].name`: device `net0` says neither which ids nor which slot",
            ),
            (edit("device = 0x1000\n", ""), "system.toml:15:10: key `device[0].vendor`: `vendor` without `device`"),
            (edit("vendor = 0x1af4\n", ""), "system.toml:15:10: key `device[0].device`: `device` without `vendor`"),
            (
                edit("device = 0x1000\n", "device = 0x1000\nslot = \"00:03.0\"\n"),
                "system.toml:17:8: key `device[0].slot`: `slot` together with `vendor`/`device`",
            ),
            (edit("0x1af4", "0xffff"), "system.toml:15:10: key `device[0].vendor`: 65535 is not a PCI id"),
            (edit("0x1000", "-1"), "system.toml:16:10: key `device[0].device`: -1 is not a PCI id"),
            (edit("\"00:04.0\"", "\"00:40.0\""), "system.toml:22:8: key `device[1].slot`: `00:40.0` is not a PCI slot"),
            (
                edit("dma_kib = 256", "dma_kib = 6"),
                "system.toml:17:11: key `device[0].dma_kib`: 6 KiB is not a whole number of 4 KiB pages",
            ),
            (
                edit("dma_kib = 256", "dma_kib = 65540"),
                "system.toml:17:11: key `device[0].dma_kib`: 65540 is out of range",
            ),
            (
                edit("server = \"driver\"\nvendor", "server = \"drvier\"\nvendor"),
                "system.toml:14:10: key `device[0].server`: no server named `drvier`",
            ),
            (
                edit("name = \"disk\"", "name = \"net0\""),
                "system.toml:20:8: key `device[1].name`: two devices named `net0` (lines 13 and 20)",
            ),
            (
                edit("name = \"disk\"", "name = \"Disk\""),
                "system.toml:20:8: key `device[1].name`: `Disk` is not a valid device name",
            ),
            (
                edit("slot = \"00:04.0\"", "vendor = 0x1af4\ndevice = 0x1000"),
                "system.toml:22:10: key `device[1].vendor`: device `disk` asks for 1af4:1000, as device `net0` does",
            ),
            (edit("dma_kib = 256", "dma_kb = 256"), "system.toml:17:1: key `device[0].dma_kb`: unknown key `dma_kb`"),
        ];
        for (text, want) in cases {
            let got = first_line(&text);
            assert!(got.starts_with(want), "\n got: {got}\nwant: {want}");
        }
    }

    #[test]
    fn too_many_devices_for_one_server_is_an_error_at_the_one_too_many() {
        let mut text = String::from("[system]\nmover_cores = [1]\n\n[[server]]\nname = \"d\"\ncore = 2\n");
        for i in 0..=abi::device::MAX_DEVICES {
            text.push_str(&format!("\n[[device]]\nname = \"n{i}\"\nserver = \"d\"\nslot = \"00:0{i}.0\"\n"));
        }
        let got = first_line(&text);
        assert!(got.contains("key `device[4].server`: server `d` would hold 5 devices"), "{got}");
    }

    #[test]
    fn dma_memory_adds_up_within_the_limit_and_the_machine() {
        let mut text = String::from("[system]\nmover_cores = [1]\n");
        for i in 0..5 {
            text.push_str(&format!(
                "\n[[server]]\nname = \"d{i}\"\ncore = {}\n\n[[device]]\nname = \"n{i}\"\nserver = \"d{i}\"\nslot = \"00:0{i}.0\"\ndma_kib = 65536\n",
                i + 2
            ));
        }
        let got = first_line(&text);
        assert!(
            got.contains("key `device[4].dma_kib`: the DMA memory of the devices up to `n4` adds up to 327680 KiB"),
            "{got}"
        );
        let c = parse(BASE).unwrap();
        assert!(c.check_dma_memory(256).is_ok());
        let err = c.check_dma_memory(255).unwrap_err().render("system.toml", BASE);
        assert!(
            err.starts_with(
                "system.toml:17:11: key `device[0].dma_kib`: device `net0` (256 KiB of DMA memory) does not fit"
            ),
            "{err}"
        );
    }

    #[test]
    fn resolving_takes_the_first_match_in_bus_order_and_refuses_what_is_missing_or_taken() {
        let c = parse(BASE).unwrap();
        let bus = [
            function(0, 0, 0, 0x8086, 0x1237),
            function(0, 3, 0, 0x1af4, 0x1000),
            function(0, 4, 0, 0x1af4, 0x1001),
            function(0, 5, 0, 0x1af4, 0x1000),
        ];
        let got = c.resolve_devices(&bus).unwrap();
        assert_eq!(got, [bus[1], bus[2]]);

        let err = c.resolve_devices(&bus[..2]).unwrap_err().render("system.toml", BASE);
        assert!(
            err.starts_with("system.toml:22:8: key `device[1].slot`: device `disk`: no PCI function slot 00:04.0 on this machine; expected a function on the bus: 00:00.0 8086:1237, 00:03.0 1af4:1000"),
            "{err}"
        );
        let err = c.resolve_devices(&[]).unwrap_err().render("system.toml", BASE);
        assert!(
            err.contains(
                "no PCI function 1af4:1000 on this machine; expected a function on the bus (the kernel found none)"
            ),
            "{err}"
        );

        let taken = edit("\"00:04.0\"", "\"00:03.0\"");
        let c = parse(&taken).unwrap();
        let err = c.resolve_devices(&bus).unwrap_err().render("system.toml", &taken);
        assert!(err.contains("device `disk` would get 00:03.0, which device `net0` already has"), "{err}");
    }

    #[test]
    fn no_device_tables_is_the_default() {
        let c = parse("[system]\nmover_cores = [1]\n").unwrap();
        assert!(c.devices.is_empty());
        assert_eq!(c.resolve_devices(&[]).unwrap(), []);
    }
}
