//! The part of a server ELF the kernel reads, for the ramdisk.
//!
//! A server binary is ~1 MiB, almost all of it DWARF (the release profile
//! keeps line tables) and the section table after it; the kernel's loader
//! (`elf-check`) reads the ELF header, the program headers and the bytes
//! of the segments, nothing else. Packing 25 servers whole made every
//! ramdisk ~26 MiB, which the BIOS boot path reads through the emulated
//! disk on every test boot. [`loaded_part`] keeps the file up to the end
//! of the last byte a header or segment names, byte for byte, and drops
//! the section table (its offset, count and string-table index set to 0,
//! as for an ELF that has none; the first segment maps the ELF header, so
//! a server sees those three fields zeroed in its own image). Symbols stay in the files under
//! `target/servers/` for the tools that read them (`bench instructions`).

/// `elf` cut after its last header or segment byte, with no section
/// table; `None` when `elf` is not a little-endian ELF64 whose headers
/// and segments lie inside it (the caller then packs it unchanged).
pub fn loaded_part(elf: &[u8]) -> Option<Vec<u8>> {
    const EHSIZE: usize = 64;
    const PN_XNUM: u16 = 0xffff;
    if elf.len() < EHSIZE || elf[..4] != *b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return None;
    }
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]);
    let u64_at = |at: usize| u64::from_le_bytes(elf[at..at + 8].try_into().expect("8 bytes"));
    let phoff = u64_at(0x20);
    let phentsize = u64::from(u16_at(0x36));
    let phnum = u16_at(0x38);
    if phnum == PN_XNUM || phentsize < 56 {
        return None; // the real count would be in the section table
    }
    let table_end = phoff.checked_add(phentsize.checked_mul(u64::from(phnum))?)?;
    if table_end > elf.len() as u64 {
        return None;
    }
    let mut end = table_end.max(EHSIZE as u64);
    for i in 0..u64::from(phnum) {
        let header = (phoff + i * phentsize) as usize;
        let offset = u64_at(header + 8);
        let filesz = u64_at(header + 32);
        end = end.max(offset.checked_add(filesz)?);
    }
    if end > elf.len() as u64 {
        return None;
    }
    let mut out = elf[..end as usize].to_vec();
    out[0x28..0x30].fill(0); // e_shoff
    out[0x3c..0x40].fill(0); // e_shnum, e_shstrndx
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ELF64 header, two program headers and `tail` bytes after them.
    fn elf(segments: &[(u64, u64)], tail: usize) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * segments.len()];
        b[..6].copy_from_slice(b"\x7fELF\x02\x01");
        b[0x20..0x28].copy_from_slice(&64u64.to_le_bytes());
        b[0x28..0x30].copy_from_slice(&0x1234u64.to_le_bytes());
        b[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
        b[0x38..0x3a].copy_from_slice(&(segments.len() as u16).to_le_bytes());
        b[0x3c..0x3e].copy_from_slice(&7u16.to_le_bytes());
        b[0x3e..0x40].copy_from_slice(&6u16.to_le_bytes());
        for (i, (offset, size)) in segments.iter().enumerate() {
            let h = 64 + 56 * i;
            b[h..h + 4].copy_from_slice(&1u32.to_le_bytes());
            b[h + 8..h + 16].copy_from_slice(&offset.to_le_bytes());
            b[h + 32..h + 40].copy_from_slice(&size.to_le_bytes());
        }
        b.resize(b.len() + tail, 0xdb);
        b
    }

    #[test]
    fn keeps_headers_and_segments_and_drops_what_follows() {
        let whole = elf(&[(0, 0x100), (0x100, 0x50)], 0x1000);
        let part = loaded_part(&whole).unwrap();
        assert_eq!(part.len(), 0x150);
        assert_eq!(part[0x40..], whole[0x40..0x150]);
        assert_eq!(part[0x28..0x30], [0; 8], "no section table");
        assert_eq!(part[0x3c..0x40], [0; 4]);
        assert_eq!(part[..0x28], whole[..0x28]);
    }

    #[test]
    fn anything_it_cannot_read_is_left_alone() {
        assert_eq!(loaded_part(b"not an elf"), None);
        assert_eq!(loaded_part(&elf(&[(0x100, 0x10_0000)], 0x100)), None, "a segment past the end");
        assert_eq!(loaded_part(&elf(&[(u64::MAX, 2)], 0x100)), None, "an offset that wraps");
        let mut many = elf(&[(0, 0x10)], 0x100);
        many[0x38..0x3a].copy_from_slice(&0xffffu16.to_le_bytes());
        assert_eq!(loaded_part(&many), None, "PN_XNUM");
        let mut big_endian = elf(&[(0, 0x10)], 0x100);
        big_endian[5] = 2;
        assert_eq!(loaded_part(&big_endian), None);
    }

    /// The real servers: each one's cut still passes the kernel's checks
    /// and loads the same segments (run once the servers are built).
    #[test]
    fn built_servers_still_pass_the_kernels_checks() {
        let dir = crate::root().join("target/servers").join(crate::setup::KERNEL_TARGET).join("release");
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for entry in entries.flatten() {
            let Ok(bytes) = std::fs::read(entry.path()) else { continue };
            if bytes.get(..4) != Some(b"\x7fELF") {
                continue;
            }
            let part = loaded_part(&bytes).unwrap_or_else(|| panic!("{}", entry.path().display()));
            assert!(
                part.len() < bytes.len() / 4,
                "{}: {} of {} bytes",
                entry.path().display(),
                part.len(),
                bytes.len()
            );
            // The same plan; a segment that maps the ELF header (offset 0)
            // maps the header with its section fields zeroed.
            let limits = elf_check::Limits::default();
            let plan = |elf: &[u8]| {
                elf_check::check_elf(elf, &limits).map(|plan| {
                    let segments: Vec<_> = plan
                        .segments()
                        .iter()
                        .map(|s| {
                            let mut data = s.file_data.to_vec();
                            if s.file_offset == 0 && data.len() >= 64 {
                                data[0x28..0x30].fill(0);
                                data[0x3c..0x40].fill(0);
                            }
                            (s.vaddr, s.memsz, s.file_offset, s.permissions, data)
                        })
                        .collect();
                    (plan.entry(), plan.stack(), segments)
                })
            };
            let (whole, cut) = (plan(&bytes), plan(&part));
            assert!(whole.is_ok(), "{}: {whole:?}", entry.path().display());
            assert_eq!(whole, cut, "{}", entry.path().display());
        }
    }
}
