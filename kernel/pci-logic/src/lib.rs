//! PCI as pure code, for the kernel's device grants: decoding BARs from
//! what a sizing probe reads back, the policy for configuration-space
//! writes a driver server may make, the BAR shadow that lets a driver size
//! BARs without moving them, and the ACPI tables that lead to ECAM (RSDP,
//! RSDT/XSDT, MCFG). No hardware access: the kernel reads the registers
//! and the table bytes and hands them here.
//!
//! Invariants:
//! - nothing here panics or indexes out of bounds on any input (table
//!   bytes come from firmware, register values from devices; property
//!   tests feed random ones);
//! - a decoded memory BAR has a non-zero power-of-two size and a base
//!   aligned to it, or it is reported as [`Bar::None`];
//! - [`ConfigWrite::decide`] never lets a write reach a BAR or the
//!   expansion ROM register, and never lets the I/O-space enable bit on.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

/// Offset of BAR 0 in a type-0 header.
pub const BAR0: u16 = 0x10;
/// BARs of a type-0 header.
pub const BAR_COUNT: usize = 6;
/// The command register (low half of the word at 0x04).
pub const COMMAND: u16 = 0x04;
/// The expansion ROM base register.
pub const ROM: u16 = 0x30;
/// Command bits a driver may set: memory space (1), bus master (2),
/// memory-write-and-invalidate (4), parity and SERR responses (6, 8),
/// interrupt disable (10). Never I/O space (bit 0): ring 3 gets no ports.
pub const COMMAND_ALLOWED: u16 = (1 << 1) | (1 << 2) | (1 << 4) | (1 << 6) | (1 << 8) | (1 << 10);

/// One BAR, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// Not implemented, the upper half of a 64-bit BAR, or nonsense.
    None,
    /// Memory space at `base`, `size` bytes.
    Memory { base: u64, size: u64, prefetchable: bool, wide: bool },
    /// I/O space at port `base`, `size` ports.
    Io { base: u32, size: u32 },
}

/// Decodes the six BARs of a type-0 header from their values (`original`)
/// and what each read back after all ones were written to it (`sized`; the
/// kernel restores the original afterwards). A 64-bit BAR takes two
/// entries; the second decodes as [`Bar::None`].
pub fn decode_bars(original: [u32; BAR_COUNT], sized: [u32; BAR_COUNT]) -> [Bar; BAR_COUNT] {
    let mut bars = [Bar::None; BAR_COUNT];
    let mut i = 0;
    while i < BAR_COUNT {
        let (value, probe) = (original[i], sized[i]);
        if value & 1 == 1 {
            // I/O: bits 31..2 are the address.
            let mask = probe & !0x3;
            let size = (!mask).wrapping_add(1);
            if mask != 0 && size.is_power_of_two() {
                bars[i] = Bar::Io { base: value & !0x3, size };
            }
            i += 1;
            continue;
        }
        let kind = (value >> 1) & 0x3;
        let prefetchable = value & 0x8 != 0;
        let wide = kind == 2 && i + 1 < BAR_COUNT;
        let (base, mask) = if wide {
            (
                (u64::from(original[i + 1]) << 32) | u64::from(value & !0xf),
                (u64::from(sized[i + 1]) << 32) | u64::from(probe & !0xf),
            )
        } else {
            (u64::from(value & !0xf), 0xffff_ffff_0000_0000 | u64::from(probe & !0xf))
        };
        let size = (!mask).wrapping_add(1);
        let implemented = if wide { mask & !0xf != 0 } else { probe & !0xf != 0 };
        if kind != 1 && kind != 3 && implemented && size.is_power_of_two() && base % size == 0 {
            bars[i] = Bar::Memory { base, size, prefetchable, wide };
        }
        i += if wide { 2 } else { 1 };
    }
    bars
}

/// What the kernel does with a driver's write of a 32-bit word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigWrite {
    /// Write `value` to the device.
    Pass { value: u32 },
    /// A BAR register: remember whether the driver is sizing it (all ones)
    /// in BAR `index`'s shadow; the device is not touched.
    Shadow { index: usize, sizing: bool },
    /// Refused: the register is the kernel's (IDs, class, header type, the
    /// expansion ROM) or the offset is not a word.
    Refuse,
}

impl ConfigWrite {
    /// The decision for writing `value` at `offset` (must be a multiple of
    /// 4 below `limit`: 256, or 4096 with ECAM).
    pub fn decide(offset: u16, value: u32, limit: u16) -> ConfigWrite {
        if !offset.is_multiple_of(4) || offset >= limit {
            return ConfigWrite::Refuse;
        }
        match offset {
            // Command (low half) keeps only the allowed bits; the status
            // half is write-one-to-clear, passed as is.
            COMMAND => {
                let command = (value as u16) & COMMAND_ALLOWED;
                ConfigWrite::Pass { value: (value & 0xffff_0000) | u32::from(command) }
            }
            // Cache line size and latency timer (BIST and header type in
            // the upper half are read-only or harmless to write).
            0x0c => ConfigWrite::Pass { value: value & 0x0000_ffff },
            o if (BAR0..BAR0 + 4 * BAR_COUNT as u16).contains(&o) => {
                ConfigWrite::Shadow { index: usize::from((o - BAR0) / 4), sizing: value == 0xffff_ffff }
            }
            // Interrupt line (software scratch).
            0x3c => ConfigWrite::Pass { value: value & 0xff },
            o if o < 0x40 => ConfigWrite::Refuse,
            // Capabilities and device-specific space.
            _ => ConfigWrite::Pass { value },
        }
    }
}

/// What a driver reads from BAR register `index` given its shadow: while
/// it is sizing (it wrote all ones) the sizing mask the kernel read at
/// boot, otherwise the BAR's real value.
pub fn read_bar_shadow(sizing: bool, original: u32, sized: u32) -> u32 {
    if sizing { sized } else { original }
}

/// One MCFG entry: the ECAM window of buses `start_bus..=end_bus` of a
/// PCI segment. `base` is where bus 0's configuration space would be
/// (the PCI Firmware Specification's MCFG base address), also when the
/// window starts at a later bus: bus `b` is at `base + (b << 20)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EcamWindow {
    pub base: u64,
    pub segment: u16,
    pub start_bus: u8,
    pub end_bus: u8,
}

impl EcamWindow {
    /// Physical address of the 4 KiB configuration space of a function,
    /// if its bus is in this window (device < 32, function < 8).
    pub fn function_address(&self, bus: u8, device: u8, function: u8) -> Option<u64> {
        if bus < self.start_bus || bus > self.end_bus || device >= 32 || function >= 8 {
            return None;
        }
        let index = (u64::from(bus) << 8) | (u64::from(device) << 3) | u64::from(function);
        self.base.checked_add(index << 12)
    }

    /// The physical range `function_address` can give: its first byte
    /// and its length (1 MiB per bus of the window), for mapping it.
    pub fn span(&self) -> (u64, u64) {
        (
            self.base.saturating_add(u64::from(self.start_bus) << 20),
            (u64::from(self.end_bus - self.start_bus) + 1) << 20,
        )
    }
}

/// Bytes of an ACPI table header.
pub const SDT_HEADER: usize = 36;

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at.checked_add(4)?)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at.checked_add(8)?)?.try_into().ok()?))
}

/// Whether `bytes` sum to 0 mod 256 (ACPI checksums).
pub fn checksum_ok(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
}

/// The root table an RSDP points to: `(address, is_xsdt)`. `rsdp` is at
/// least the 20-byte ACPI 1.0 structure; the 36-byte form with revision
/// >= 2 gives the XSDT. `None` if the signature or checksum is wrong.
pub fn rsdp_root(rsdp: &[u8]) -> Option<(u64, bool)> {
    if rsdp.get(..8)? != b"RSD PTR " || !checksum_ok(rsdp.get(..20)?) {
        return None;
    }
    let revision = *rsdp.get(15)?;
    if revision >= 2 {
        let length = u32_at(rsdp, 20)? as usize;
        if length >= 36 && rsdp.len() >= length && checksum_ok(&rsdp[..length]) {
            let xsdt = u64_at(rsdp, 24)?;
            if xsdt != 0 {
                return Some((xsdt, true));
            }
        }
    }
    Some((u64::from(u32_at(rsdp, 16)?), false))
}

/// A table's length from its header (bytes 4..8), if `header` holds one.
pub fn sdt_length(header: &[u8]) -> Option<usize> {
    u32_at(header, 4).map(|n| n as usize)
}

/// The table addresses in a whole RSDT (`xsdt` false: 32-bit entries) or
/// XSDT (64-bit), after its header. Nothing if the checksum is wrong.
pub fn root_entries(table: &[u8], xsdt: bool) -> impl Iterator<Item = u64> + '_ {
    let ok = table.len() >= SDT_HEADER && checksum_ok(table);
    let width = if xsdt { 8 } else { 4 };
    let body = if ok { &table[SDT_HEADER..] } else { &[][..] };
    body.chunks_exact(width).map(
        move |c| {
            if xsdt { u64_at(c, 0).unwrap_or(0) } else { u64::from(u32_at(c, 0).unwrap_or(0)) }
        },
    )
}

/// The ECAM windows of a whole MCFG table (signature, checksum checked).
pub fn mcfg_windows(table: &[u8]) -> impl Iterator<Item = EcamWindow> + '_ {
    let ok = table.len() >= SDT_HEADER + 8 && &table[..4] == b"MCFG" && checksum_ok(table);
    let body = if ok { &table[SDT_HEADER + 8..] } else { &[][..] };
    body.chunks_exact(16).filter_map(|e| {
        let base = u64_at(e, 0)?;
        let segment = u16::from_le_bytes([e[8], e[9]]);
        let (start_bus, end_bus) = (e[10], e[11]);
        // A window whose last bus would lie past the end of the address
        // space is the firmware's mistake: left out, not wrapped.
        let fits = base.checked_add((u64::from(end_bus) + 1) << 20).is_some();
        (base != 0 && start_bus <= end_bus && fits).then_some(EcamWindow { base, segment, start_bus, end_bus })
    })
}

/// First byte of the page holding `phys`, and how many 4 KiB pages cover
/// `size` bytes from `phys`.
pub fn page_span(phys: u64, size: u64) -> (u64, u64) {
    let start = phys & !0xfff;
    let end = phys.saturating_add(size).saturating_add(0xfff) & !0xfff;
    (start, (end - start) / 4096)
}

/// Whether the pages covering `a` and `b` (each `(phys, size)`) overlap.
pub fn pages_overlap(a: (u64, u64), b: (u64, u64)) -> bool {
    let (a0, an) = page_span(a.0, a.1);
    let (b0, bn) = page_span(b.0, b.1);
    a0 < b0 + bn * 4096 && b0 < a0 + an * 4096
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bars_of_a_virtio_net_pci_device_decode() {
        // As QEMU's virtio-net-pci shows them: BAR0 I/O 32 ports, BAR1
        // 4 KiB memory, BAR4 16 KiB 64-bit prefetchable memory.
        let original = [0xc041, 0xfebd_1000, 0, 0, 0xfe00_000c, 0];
        let sized = [0xffff_ffe1, 0xffff_f000, 0, 0, 0xffff_c00c, 0xffff_ffff];
        let bars = decode_bars(original, sized);
        assert_eq!(bars[0], Bar::Io { base: 0xc040, size: 32 });
        assert_eq!(bars[1], Bar::Memory { base: 0xfebd_1000, size: 4096, prefetchable: false, wide: false });
        assert_eq!(bars[2], Bar::None);
        assert_eq!(bars[4], Bar::Memory { base: 0xfe00_0000, size: 16384, prefetchable: true, wide: true });
        assert_eq!(bars[5], Bar::None);
    }

    #[test]
    fn a_64_bit_bar_above_4_gib_and_nonsense() {
        let bars = decode_bars([0x4, 0x10, 0, 0, 0, 0x4], [0x0000_0004, 0xffff_fff0, 0, 0, 0, 0xfff0_0004]);
        assert_eq!(bars[0], Bar::Memory { base: 0x10_0000_0000, size: 1 << 36, prefetchable: false, wide: true });
        // A 64-bit BAR in the last slot has no upper half: read as 32-bit.
        assert_eq!(bars[5], Bar::Memory { base: 0, size: 1 << 20, prefetchable: false, wide: false });
        // Misaligned base: nonsense.
        assert_eq!(decode_bars([0x1800, 0, 0, 0, 0, 0], [0xffff_f000, 0, 0, 0, 0, 0])[0], Bar::None);
    }

    #[test]
    fn writes_never_reach_bars_rom_or_io_enable() {
        assert_eq!(
            ConfigWrite::decide(0x04, 0xffff_ffff, 256),
            ConfigWrite::Pass { value: 0xffff_0000 | u32::from(COMMAND_ALLOWED) }
        );
        assert_eq!(ConfigWrite::decide(0x04, 0x7, 256), ConfigWrite::Pass { value: 0x6 });
        assert_eq!(ConfigWrite::decide(0x10, 0xffff_ffff, 256), ConfigWrite::Shadow { index: 0, sizing: true });
        assert_eq!(ConfigWrite::decide(0x24, 0x1234, 256), ConfigWrite::Shadow { index: 5, sizing: false });
        assert_eq!(ConfigWrite::decide(0x30, 0, 256), ConfigWrite::Refuse);
        assert_eq!(ConfigWrite::decide(0x00, 0, 256), ConfigWrite::Refuse);
        assert_eq!(ConfigWrite::decide(0x08, 0, 256), ConfigWrite::Refuse);
        assert_eq!(ConfigWrite::decide(0x41, 0, 256), ConfigWrite::Refuse);
        assert_eq!(ConfigWrite::decide(0x100, 0, 256), ConfigWrite::Refuse);
        assert_eq!(ConfigWrite::decide(0x100, 5, 4096), ConfigWrite::Pass { value: 5 });
        assert_eq!(ConfigWrite::decide(0x40, 9, 256), ConfigWrite::Pass { value: 9 });
        assert_eq!(read_bar_shadow(true, 0xfebd_1000, 0xffff_f000), 0xffff_f000);
        assert_eq!(read_bar_shadow(false, 0xfebd_1000, 0xffff_f000), 0xfebd_1000);
    }

    fn table(signature: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(signature);
        t.extend_from_slice(&((SDT_HEADER + body.len()) as u32).to_le_bytes());
        t.resize(SDT_HEADER, 0);
        t.extend_from_slice(body);
        let sum = t.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        t[9] = 0u8.wrapping_sub(sum);
        t
    }

    #[test]
    fn mcfg_of_q35_gives_its_ecam_window() {
        let mut body = vec![0u8; 8];
        body.extend_from_slice(&0xb000_0000u64.to_le_bytes());
        body.extend_from_slice(&[0, 0, 0, 0xff, 0, 0, 0, 0]);
        let t = table(b"MCFG", &body);
        let w: Vec<_> = mcfg_windows(&t).collect();
        assert_eq!(w, [EcamWindow { base: 0xb000_0000, segment: 0, start_bus: 0, end_bus: 255 }]);
        assert_eq!(w[0].function_address(0, 3, 0), Some(0xb000_0000 + (3 << 15)));
        assert_eq!(w[0].function_address(1, 0, 1), Some(0xb000_0000 + (1 << 20) + (1 << 12)));
        assert_eq!(w[0].function_address(0, 32, 0), None);
        assert_eq!(w[0].span(), (0xb000_0000, 256 << 20));
        let last = w[0].function_address(255, 31, 7).unwrap();
        assert!(last + 4096 == w[0].span().0 + w[0].span().1, "the span ends with the last function's page");
        // A window that starts at bus 5: the base is still bus 0's place.
        let one = EcamWindow { base: 0xe000_0000, segment: 0, start_bus: 5, end_bus: 5 };
        assert_eq!(one.span(), (0xe000_0000 + (5 << 20), 1 << 20));
        assert_eq!(one.function_address(5, 0, 0), Some(0xe000_0000 + (5 << 20)));
        assert_eq!(one.function_address(5, 31, 7), Some(0xe000_0000 + (6 << 20) - 4096));
        assert_eq!(one.function_address(4, 0, 0), None);
        let mut bad = t.clone();
        bad[40] ^= 1;
        assert_eq!(mcfg_windows(&bad).count(), 0);
        assert_eq!(mcfg_windows(&table(b"APIC", &body)).count(), 0);
    }

    #[test]
    fn rsdp_and_root_tables() {
        let mut rsdp = vec![0u8; 20];
        rsdp[..8].copy_from_slice(b"RSD PTR ");
        rsdp[16..20].copy_from_slice(&0x7fe1_4b0fu32.to_le_bytes());
        let sum = rsdp.iter().fold(0u8, |s, b| s.wrapping_add(*b));
        rsdp[8] = 0u8.wrapping_sub(sum);
        assert_eq!(rsdp_root(&rsdp), Some((0x7fe1_4b0f, false)));
        rsdp[0] = b'X';
        assert_eq!(rsdp_root(&rsdp), None);
        let rsdt = table(b"RSDT", &[1, 0, 0, 0, 2, 0, 0, 0]);
        assert_eq!(root_entries(&rsdt, false).collect::<Vec<_>>(), [1, 2]);
        let xsdt = table(b"XSDT", &[9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(root_entries(&xsdt, true).collect::<Vec<_>>(), [9]);
        assert_eq!(sdt_length(&xsdt), Some(44));
    }

    #[test]
    fn pages() {
        assert_eq!(page_span(0xfebd_1000, 4096), (0xfebd_1000, 1));
        assert_eq!(page_span(0xfebd_1010, 16), (0xfebd_1000, 1));
        assert_eq!(page_span(0xfebd_1ff0, 32), (0xfebd_1000, 2));
        assert!(pages_overlap((0xfebd_1000, 16), (0xfebd_1800, 16)));
        assert!(!pages_overlap((0xfebd_1000, 4096), (0xfebd_2000, 16)));
    }

    proptest! {
        #[test]
        fn decoding_never_panics_and_memory_bars_are_aligned(
            original in proptest::array::uniform6(any::<u32>()),
            sized in proptest::array::uniform6(any::<u32>()),
        ) {
            for bar in decode_bars(original, sized) {
                if let Bar::Memory { base, size, .. } = bar {
                    prop_assert!(size.is_power_of_two());
                    prop_assert_eq!(base % size, 0);
                }
            }
        }

        #[test]
        fn tables_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = rsdp_root(&bytes);
            let _ = root_entries(&bytes, true).count();
            let _ = root_entries(&bytes, false).count();
            let _ = mcfg_windows(&bytes).count();
        }

        #[test]
        fn no_write_reaches_a_bar_or_enables_io(offset in 0u16..4200, value in any::<u32>()) {
            match ConfigWrite::decide(offset, value, 4096) {
                ConfigWrite::Pass { value: v } => {
                    prop_assert!(!(0x10..0x28).contains(&offset) && offset != ROM && offset < 4096);
                    if offset == COMMAND { prop_assert_eq!(v & 1, 0); }
                }
                ConfigWrite::Shadow { index, .. } => prop_assert!(index < BAR_COUNT),
                ConfigWrite::Refuse => {}
            }
        }
    }
}
