//! Parses the processor entries of an ACPI MADT ("APIC" table) from its raw
//! bytes.
//!
//! Invariants: the table comes from firmware and is not trusted. Every entry
//! length is checked (a zero or overlong entry ends the walk with an error
//! noted, it never loops or reads past the table). Processors are reported
//! in table order; which ones can be started is decided here, with the
//! reason for every one that cannot.

/// Most processors one parse keeps; more are counted in `skipped_overflow`.
pub const MAX_PROCESSORS: usize = 256;

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
        }
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
            // Local APIC Address Override: reserved u16, address u64.
            (5, 12..) => {
                let mut addr = [0u8; 8];
                addr.copy_from_slice(&entry[4..12]);
                info.local_apic_address = u64::from_le_bytes(addr);
            }
            // Processor Local x2APIC: reserved u16, x2apic id u32, flags u32, uid u32.
            (9, 16..) => info.push(u32_at(entry, 4), u32_at(entry, 12), u32_at(entry, 8)),
            (0 | 5 | 9, _) => {
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
            let _ = parse(&t);
        }
    }
}
