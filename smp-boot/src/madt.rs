//! Parses the processor, I/O APIC and interrupt source override entries of
//! an ACPI MADT ("APIC" table) from its raw bytes.
//!
//! Invariants: the table comes from firmware and is not trusted. Every entry
//! length is checked (a zero or overlong entry ends the walk with an error
//! noted, it never loops or reads past the table). Processors are reported
//! in table order; which ones can be started is decided here, with the
//! reason for every one that cannot. Storage is fixed-size: entries beyond
//! `MAX_PROCESSORS`, `MAX_IO_APICS` or `MAX_OVERRIDES` are counted, never
//! stored. How many inputs an I/O APIC has is not in the table (it is in the
//! chip's version register), so `io_apic_candidates` answers by GSI base
//! only and the caller checks the count.

/// Most processors one parse keeps; more are counted in `skipped_overflow`.
pub const MAX_PROCESSORS: usize = 256;
/// Most I/O APIC entries one parse keeps; more are counted in `io_apics_overflow`.
pub const MAX_IO_APICS: usize = 16;
/// Most interrupt source overrides one parse keeps; more are counted in
/// `overrides_overflow`.
pub const MAX_OVERRIDES: usize = 32;

/// One I/O APIC entry (type 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoApic {
    pub id: u8,
    /// Physical address of its register window (IOREGSEL, IOWIN at +0x10).
    pub address: u32,
    /// The global system interrupt its input 0 carries.
    pub gsi_base: u32,
}

/// One Interrupt Source Override entry (type 2): bus-relative IRQ `source`
/// arrives on global system interrupt `gsi`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOverride {
    /// 0 = ISA, the only bus ACPI defines here.
    pub bus: u8,
    pub source: u8,
    pub gsi: u32,
    /// MPS INTI flags: polarity in bits 1:0, trigger mode in bits 3:2.
    pub flags: u16,
}

/// Signal polarity of an interrupt input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Polarity {
    ActiveHigh,
    ActiveLow,
}

/// Trigger mode of an interrupt input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Edge,
    Level,
}

/// Where an ISA IRQ arrives: its global system interrupt and how it signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsaRoute {
    pub irq: u8,
    pub gsi: u32,
    pub polarity: Polarity,
    pub trigger: Trigger,
    /// An override entry gave this route (else identity, ISA defaults).
    pub overridden: bool,
    /// The override's flags used a reserved encoding (binary 10) for
    /// polarity or trigger; the ISA default was taken for that field.
    pub reserved_flags: bool,
}

impl core::fmt::Display for Polarity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Polarity::ActiveHigh => "active high",
            Polarity::ActiveLow => "active low",
        })
    }
}

impl core::fmt::Display for Trigger {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Trigger::Edge => "edge",
            Trigger::Level => "level",
        })
    }
}

/// The I/O APICs whose GSI base is at or below one GSI, nearest base first
/// (the one that carries it, if its input count reaches, comes first).
#[derive(Debug, Clone, Copy)]
pub struct IoApicCandidates {
    io_apics: [IoApic; MAX_IO_APICS],
    count: usize,
}

impl IoApicCandidates {
    pub fn as_slice(&self) -> &[IoApic] {
        &self.io_apics[..self.count]
    }
}

/// Why a processor listed in the MADT is not started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Neither "enabled" nor "online capable": the firmware says it is absent.
    Disabled,
    /// "Online capable" but not enabled: hot-pluggable, not present now.
    OnlineCapableNotPresent,
    /// The same APIC id appeared earlier in the table.
    DuplicateApicId,
}

impl SkipReason {
    pub fn describe(self) -> &'static str {
        match self {
            SkipReason::Disabled => "marked disabled in the MADT",
            SkipReason::OnlineCapableNotPresent => "online-capable but not present",
            SkipReason::DuplicateApicId => "duplicate APIC id in the MADT",
        }
    }
}

/// One processor entry (type 0 Local APIC or type 9 Local x2APIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processor {
    pub apic_id: u32,
    pub acpi_uid: u32,
    /// `None` if the processor can be started.
    pub skip: Option<SkipReason>,
}

/// Problems with the table itself (the processors before them are kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MadtError {
    /// Shorter than the fixed MADT header (44 bytes).
    TooShort { len: usize },
    /// The signature is not "APIC".
    BadSignature,
    /// The header's length field disagrees with the bytes given.
    LengthMismatch { header: u32, given: usize },
    /// An entry whose length is below 2 or past the end of the table.
    BadEntry { offset: usize, length: u8 },
}

impl core::fmt::Display for MadtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            MadtError::TooShort { len } => write!(f, "MADT is {len} bytes, shorter than its 44-byte header"),
            MadtError::BadSignature => write!(f, "table signature is not APIC"),
            MadtError::LengthMismatch { header, given } => {
                write!(f, "MADT header says {header} bytes but {given} were mapped")
            }
            MadtError::BadEntry { offset, length } => {
                write!(f, "MADT entry at byte {offset} has impossible length {length}; rest of table ignored")
            }
        }
    }
}

/// What the processor entries of one MADT say.
pub struct MadtInfo {
    processors: [Processor; MAX_PROCESSORS],
    count: usize,
    /// Entries beyond `MAX_PROCESSORS`.
    pub skipped_overflow: usize,
    /// Physical address of the local APIC (after any override entry).
    pub local_apic_address: u64,
    /// A structural problem found while walking (entries before it are kept).
    pub error: Option<MadtError>,
    io_apics: [IoApic; MAX_IO_APICS],
    io_apic_count: usize,
    /// I/O APIC entries beyond `MAX_IO_APICS`.
    pub io_apics_overflow: usize,
    overrides: [SourceOverride; MAX_OVERRIDES],
    override_count: usize,
    /// Interrupt source overrides beyond `MAX_OVERRIDES`.
    pub overrides_overflow: usize,
}

impl MadtInfo {
    /// No processors at all (used when there is no usable MADT: the boot
    /// processor still runs).
    pub fn empty() -> MadtInfo {
        MadtInfo {
            processors: [Processor { apic_id: 0, acpi_uid: 0, skip: None }; MAX_PROCESSORS],
            count: 0,
            skipped_overflow: 0,
            local_apic_address: 0xFEE0_0000,
            error: None,
            io_apics: [IoApic { id: 0, address: 0, gsi_base: 0 }; MAX_IO_APICS],
            io_apic_count: 0,
            io_apics_overflow: 0,
            overrides: [SourceOverride { bus: 0, source: 0, gsi: 0, flags: 0 }; MAX_OVERRIDES],
            override_count: 0,
            overrides_overflow: 0,
        }
    }

    /// I/O APIC entries, in table order.
    pub fn io_apics(&self) -> &[IoApic] {
        &self.io_apics[..self.io_apic_count]
    }

    /// Interrupt source overrides, in table order.
    pub fn overrides(&self) -> &[SourceOverride] {
        &self.overrides[..self.override_count]
    }

    /// Where ISA IRQ `irq` arrives: the first override for bus 0 and that
    /// source, else GSI `irq` (identity), edge-triggered and active high
    /// (the ISA bus's conventions, which "conforms to the bus" flags also
    /// mean).
    pub fn isa_route(&self, irq: u8) -> IsaRoute {
        let Some(o) = self.overrides().iter().find(|o| o.bus == 0 && o.source == irq) else {
            return IsaRoute {
                irq,
                gsi: u32::from(irq),
                polarity: Polarity::ActiveHigh,
                trigger: Trigger::Edge,
                overridden: false,
                reserved_flags: false,
            };
        };
        let (polarity, polarity_reserved) = match o.flags & 0b11 {
            0b11 => (Polarity::ActiveLow, false),
            0b10 => (Polarity::ActiveHigh, true),
            _ => (Polarity::ActiveHigh, false),
        };
        let (trigger, trigger_reserved) = match (o.flags >> 2) & 0b11 {
            0b11 => (Trigger::Level, false),
            0b10 => (Trigger::Edge, true),
            _ => (Trigger::Edge, false),
        };
        IsaRoute {
            irq,
            gsi: o.gsi,
            polarity,
            trigger,
            overridden: true,
            reserved_flags: polarity_reserved || trigger_reserved,
        }
    }

    /// The I/O APICs that may carry `gsi`: those with `gsi_base <= gsi`,
    /// the highest base first. Input `gsi - gsi_base` of the first whose
    /// version register counts more entries than that is the one.
    pub fn io_apic_candidates(&self, gsi: u32) -> IoApicCandidates {
        let mut found = IoApicCandidates { io_apics: self.io_apics, count: 0 };
        for io_apic in self.io_apics().iter().filter(|a| a.gsi_base <= gsi) {
            found.io_apics[found.count] = *io_apic;
            found.count += 1;
        }
        found.io_apics[..found.count].sort_unstable_by_key(|a| core::cmp::Reverse(a.gsi_base));
        found
    }

    fn push_io_apic(&mut self, io_apic: IoApic) {
        if self.io_apic_count == MAX_IO_APICS {
            self.io_apics_overflow += 1;
            return;
        }
        self.io_apics[self.io_apic_count] = io_apic;
        self.io_apic_count += 1;
    }

    fn push_override(&mut self, o: SourceOverride) {
        if self.override_count == MAX_OVERRIDES {
            self.overrides_overflow += 1;
            return;
        }
        self.overrides[self.override_count] = o;
        self.override_count += 1;
    }

    pub fn processors(&self) -> &[Processor] {
        &self.processors[..self.count]
    }

    /// Processors that can be started, in table order.
    pub fn usable(&self) -> impl Iterator<Item = &Processor> {
        self.processors().iter().filter(|p| p.skip.is_none())
    }

    fn push(&mut self, apic_id: u32, acpi_uid: u32, flags: u32) {
        const ENABLED: u32 = 1 << 0;
        const ONLINE_CAPABLE: u32 = 1 << 1;
        let mut skip = if flags & ENABLED != 0 {
            None
        } else if flags & ONLINE_CAPABLE != 0 {
            Some(SkipReason::OnlineCapableNotPresent)
        } else {
            Some(SkipReason::Disabled)
        };
        if skip.is_none() && self.usable().any(|p| p.apic_id == apic_id) {
            skip = Some(SkipReason::DuplicateApicId);
        }
        if self.count == MAX_PROCESSORS {
            self.skipped_overflow += 1;
            return;
        }
        self.processors[self.count] = Processor { apic_id, acpi_uid, skip };
        self.count += 1;
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// Walks a whole MADT (header included). Only an unusable header is an
/// `Err`; problems further in are recorded in `MadtInfo::error`.
pub fn parse(table: &[u8]) -> Result<MadtInfo, MadtError> {
    const HEADER: usize = 44;
    if table.len() < HEADER {
        return Err(MadtError::TooShort { len: table.len() });
    }
    if &table[0..4] != b"APIC" {
        return Err(MadtError::BadSignature);
    }
    let declared = u32_at(table, 4);
    if declared as usize != table.len() {
        return Err(MadtError::LengthMismatch { header: declared, given: table.len() });
    }
    let mut info = MadtInfo::empty();
    info.local_apic_address = u64::from(u32_at(table, 36));
    let mut offset = HEADER;
    while offset < table.len() {
        let remaining = table.len() - offset;
        let length = if remaining >= 2 { table[offset + 1] } else { 0 };
        if remaining < 2 || length < 2 || usize::from(length) > remaining {
            info.error = Some(MadtError::BadEntry { offset, length });
            break;
        }
        let entry = &table[offset..offset + usize::from(length)];
        match (entry[0], entry.len()) {
            // Processor Local APIC: uid u8, apic id u8, flags u32.
            (0, 8..) => info.push(u32::from(entry[3]), u32::from(entry[2]), u32_at(entry, 4)),
            // I/O APIC: id u8, reserved u8, address u32, GSI base u32.
            (1, 12..) => {
                info.push_io_apic(IoApic { id: entry[2], address: u32_at(entry, 4), gsi_base: u32_at(entry, 8) })
            }
            // Interrupt Source Override: bus u8, source u8, GSI u32, flags u16.
            (2, 10..) => info.push_override(SourceOverride {
                bus: entry[2],
                source: entry[3],
                gsi: u32_at(entry, 4),
                flags: u16::from_le_bytes([entry[8], entry[9]]),
            }),
            // Local APIC Address Override: reserved u16, address u64.
            (5, 12..) => {
                let mut addr = [0u8; 8];
                addr.copy_from_slice(&entry[4..12]);
                info.local_apic_address = u64::from_le_bytes(addr);
            }
            // Processor Local x2APIC: reserved u16, x2apic id u32, flags u32, uid u32.
            (9, 16..) => info.push(u32_at(entry, 4), u32_at(entry, 12), u32_at(entry, 8)),
            (0 | 1 | 2 | 5 | 9, _) => {
                info.error = Some(MadtError::BadEntry { offset, length });
                break;
            }
            _ => {}
        }
        offset += usize::from(length);
    }
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::vec::Vec;

    fn table(entries: &[Vec<u8>]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(b"APIC");
        t.extend_from_slice(&[0; 4]);
        t.resize(36, 0);
        t.extend_from_slice(&0xFEE0_0000u32.to_le_bytes());
        t.extend_from_slice(&1u32.to_le_bytes());
        for e in entries {
            t.extend_from_slice(e);
        }
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        t
    }

    fn lapic(uid: u8, id: u8, flags: u32) -> Vec<u8> {
        let mut e = std::vec![0, 8, uid, id];
        e.extend_from_slice(&flags.to_le_bytes());
        e
    }

    fn x2apic(id: u32, flags: u32, uid: u32) -> Vec<u8> {
        let mut e = std::vec![9, 16, 0, 0];
        e.extend_from_slice(&id.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e.extend_from_slice(&uid.to_le_bytes());
        e
    }

    #[test]
    fn reads_enabled_and_skipped_processors() {
        let t = table(&[lapic(0, 0, 1), lapic(1, 1, 1), lapic(2, 2, 0), lapic(3, 3, 2), x2apic(300, 1, 4)]);
        let info = parse(&t).unwrap();
        assert_eq!(info.error, None);
        assert_eq!(info.local_apic_address, 0xFEE0_0000);
        let ids: Vec<u32> = info.usable().map(|p| p.apic_id).collect();
        assert_eq!(ids, [0, 1, 300]);
        assert_eq!(info.processors()[2].skip, Some(SkipReason::Disabled));
        assert_eq!(info.processors()[3].skip, Some(SkipReason::OnlineCapableNotPresent));
    }

    #[test]
    fn duplicate_ids_are_skipped() {
        let t = table(&[lapic(0, 0, 1), lapic(1, 0, 1)]);
        let info = parse(&t).unwrap();
        assert_eq!(info.processors()[1].skip, Some(SkipReason::DuplicateApicId));
        assert_eq!(info.usable().count(), 1);
    }

    #[test]
    fn zero_length_entry_stops_the_walk() {
        let t = table(&[lapic(0, 0, 1), std::vec![0, 0, 0, 0], lapic(1, 1, 1)]);
        let info = parse(&t).unwrap();
        assert_eq!(info.usable().count(), 1);
        assert_eq!(info.error, Some(MadtError::BadEntry { offset: 52, length: 0 }));
    }

    #[test]
    fn overlong_entry_stops_the_walk() {
        let t = table(&[lapic(0, 0, 1), std::vec![0, 200, 0, 0]]);
        let info = parse(&t).unwrap();
        assert_eq!(info.error, Some(MadtError::BadEntry { offset: 52, length: 200 }));
    }

    #[test]
    fn short_processor_entry_is_an_error() {
        let t = table(&[std::vec![0, 4, 1, 1]]);
        let info = parse(&t).unwrap();
        assert_eq!(info.usable().count(), 0);
        assert!(info.error.is_some());
    }

    #[test]
    fn bad_headers() {
        assert_eq!(parse(&[0; 10]).err(), Some(MadtError::TooShort { len: 10 }));
        let mut t = table(&[]);
        t[0] = b'X';
        assert_eq!(parse(&t).err(), Some(MadtError::BadSignature));
        let mut t = table(&[lapic(0, 0, 1)]);
        t.push(0);
        assert!(matches!(parse(&t).err(), Some(MadtError::LengthMismatch { .. })));
    }

    #[test]
    fn address_override_wins() {
        let mut o = std::vec![5, 12, 0, 0];
        o.extend_from_slice(&0x1_2345_6000u64.to_le_bytes());
        let info = parse(&table(&[o, lapic(0, 0, 1)])).unwrap();
        assert_eq!(info.local_apic_address, 0x1_2345_6000);
    }

    #[test]
    fn too_many_processors_are_counted() {
        let entries: Vec<Vec<u8>> = (0..300u32).map(|i| x2apic(i, 1, i)).collect();
        let info = parse(&table(&entries)).unwrap();
        assert_eq!(info.processors().len(), MAX_PROCESSORS);
        assert_eq!(info.skipped_overflow, 300 - MAX_PROCESSORS);
    }

    fn io_apic(id: u8, address: u32, gsi_base: u32) -> Vec<u8> {
        let mut e = std::vec![1, 12, id, 0];
        e.extend_from_slice(&address.to_le_bytes());
        e.extend_from_slice(&gsi_base.to_le_bytes());
        e
    }

    fn source_override(source: u8, gsi: u32, flags: u16) -> Vec<u8> {
        let mut e = std::vec![2, 10, 0, source];
        e.extend_from_slice(&gsi.to_le_bytes());
        e.extend_from_slice(&flags.to_le_bytes());
        e
    }

    #[test]
    fn no_io_apic_entry_gives_identity_and_no_candidate() {
        let info = parse(&table(&[lapic(0, 0, 1)])).unwrap();
        assert_eq!(info.error, None);
        assert!(info.io_apics().is_empty());
        let route = info.isa_route(4);
        assert_eq!(
            route,
            IsaRoute {
                irq: 4,
                gsi: 4,
                polarity: Polarity::ActiveHigh,
                trigger: Trigger::Edge,
                overridden: false,
                reserved_flags: false
            }
        );
        assert!(info.io_apic_candidates(route.gsi).as_slice().is_empty());
        assert!(MadtInfo::empty().io_apics().is_empty());
    }

    #[test]
    fn one_io_apic_and_qemu_like_overrides() {
        // QEMU: IRQ 0 -> GSI 2 (conforming), IRQ 9 -> GSI 9 level, active high.
        let t = table(&[
            lapic(0, 0, 1),
            io_apic(0, 0xFEC0_0000, 0),
            source_override(0, 2, 0),
            source_override(9, 9, 0b1101),
        ]);
        let info = parse(&t).unwrap();
        assert_eq!(info.error, None);
        assert_eq!(info.usable().count(), 1);
        assert_eq!(info.io_apics(), [IoApic { id: 0, address: 0xFEC0_0000, gsi_base: 0 }]);
        assert_eq!(info.overrides().len(), 2);
        let com1 = info.isa_route(4);
        assert_eq!(
            (com1.gsi, com1.overridden, com1.trigger, com1.polarity),
            (4, false, Trigger::Edge, Polarity::ActiveHigh)
        );
        assert_eq!(info.io_apic_candidates(4).as_slice(), info.io_apics());
        let timer = info.isa_route(0);
        assert_eq!((timer.gsi, timer.overridden, timer.trigger), (2, true, Trigger::Edge));
        let sci = info.isa_route(9);
        assert_eq!((sci.gsi, sci.trigger, sci.polarity), (9, Trigger::Level, Polarity::ActiveHigh));
    }

    #[test]
    fn override_moves_irq4_to_another_gsi_level_active_low() {
        let t = table(&[io_apic(2, 0xFEC0_0000, 0), source_override(4, 20, 0b1111)]);
        let info = parse(&t).unwrap();
        let route = info.isa_route(4);
        assert_eq!(
            route,
            IsaRoute {
                irq: 4,
                gsi: 20,
                polarity: Polarity::ActiveLow,
                trigger: Trigger::Level,
                overridden: true,
                reserved_flags: false
            }
        );
        // Other IRQs keep the identity mapping.
        assert_eq!(info.isa_route(3).gsi, 3);
    }

    #[test]
    fn override_on_another_bus_is_ignored_and_first_override_wins() {
        let mut other_bus = source_override(4, 30, 0b1111);
        other_bus[2] = 1;
        let t = table(&[other_bus, source_override(4, 5, 0b0101), source_override(4, 6, 0b1111)]);
        let info = parse(&t).unwrap();
        let route = info.isa_route(4);
        assert_eq!((route.gsi, route.trigger, route.polarity), (5, Trigger::Edge, Polarity::ActiveHigh));
    }

    #[test]
    fn reserved_flags_fall_back_to_isa_defaults_and_are_noted() {
        let info = parse(&table(&[source_override(4, 4, 0b1010)])).unwrap();
        let route = info.isa_route(4);
        assert!(route.reserved_flags);
        assert_eq!((route.trigger, route.polarity), (Trigger::Edge, Polarity::ActiveHigh));
    }

    #[test]
    fn two_io_apics_candidates_nearest_base_first() {
        let t = table(&[io_apic(1, 0xFEC0_1000, 24), io_apic(0, 0xFEC0_0000, 0), source_override(4, 30, 0)]);
        let info = parse(&t).unwrap();
        assert_eq!(info.io_apics().len(), 2);
        let route = info.isa_route(4);
        let ids: Vec<u8> = info.io_apic_candidates(route.gsi).as_slice().iter().map(|a| a.id).collect();
        assert_eq!(ids, [1, 0]);
        let ids: Vec<u8> = info.io_apic_candidates(23).as_slice().iter().map(|a| a.id).collect();
        assert_eq!(ids, [0]);
        // An I/O APIC whose base is above the GSI never carries it.
        let info = parse(&table(&[io_apic(1, 0xFEC0_1000, 24)])).unwrap();
        assert!(info.io_apic_candidates(4).as_slice().is_empty());
    }

    #[test]
    fn truncated_io_apic_and_override_entries_stop_the_walk() {
        // An I/O APIC entry that claims 8 bytes: too short for its fields.
        let t = table(&[io_apic(0, 0xFEC0_0000, 0), std::vec![1, 8, 1, 0, 0, 0, 0xC0, 0xFE], lapic(0, 0, 1)]);
        let info = parse(&t).unwrap();
        assert_eq!(info.error, Some(MadtError::BadEntry { offset: 56, length: 8 }));
        assert_eq!(info.io_apics().len(), 1);
        assert_eq!(info.usable().count(), 0);
        // An override cut short by the end of the table: its length reaches
        // past the last byte, so nothing of it is read.
        let mut t = table(&[io_apic(0, 0xFEC0_0000, 0)]);
        t.extend_from_slice(&[2, 10, 0, 4, 20, 0]);
        let len = t.len() as u32;
        t[4..8].copy_from_slice(&len.to_le_bytes());
        let info = parse(&t).unwrap();
        assert_eq!(info.error, Some(MadtError::BadEntry { offset: 56, length: 10 }));
        assert!(info.overrides().is_empty());
        assert_eq!(info.isa_route(4).gsi, 4);
        // An override whose length field is too small for its flags.
        let info = parse(&table(&[std::vec![2, 8, 0, 4, 20, 0, 0, 0]])).unwrap();
        assert_eq!(info.error, Some(MadtError::BadEntry { offset: 44, length: 8 }));
        assert!(info.overrides().is_empty());
    }

    #[test]
    fn too_many_io_apics_and_overrides_are_counted() {
        let mut entries: Vec<Vec<u8>> =
            (0..20u32).map(|i| io_apic(i as u8, 0xFEC0_0000 + i * 0x1000, i * 24)).collect();
        entries.extend((0..40u32).map(|i| source_override(i as u8, i + 100, 0)));
        let info = parse(&table(&entries)).unwrap();
        assert_eq!(info.error, None);
        assert_eq!(info.io_apics().len(), MAX_IO_APICS);
        assert_eq!(info.io_apics_overflow, 20 - MAX_IO_APICS);
        assert_eq!(info.overrides().len(), MAX_OVERRIDES);
        assert_eq!(info.overrides_overflow, 40 - MAX_OVERRIDES);
        assert_eq!(info.io_apic_candidates(u32::MAX).as_slice().len(), MAX_IO_APICS);
    }

    #[test]
    fn random_tables_never_panic() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..5000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = 44 + (state as usize % 80);
            let mut t: Vec<u8> = (0..len).map(|i| (state.rotate_left(i as u32) >> 3) as u8).collect();
            t[0..4].copy_from_slice(b"APIC");
            t[4..8].copy_from_slice(&(len as u32).to_le_bytes());
            if let Ok(info) = parse(&t) {
                for irq in 0..16 {
                    let route = info.isa_route(irq);
                    assert!(info.io_apic_candidates(route.gsi).as_slice().iter().all(|a| a.gsi_base <= route.gsi));
                }
            }
        }
    }
}
