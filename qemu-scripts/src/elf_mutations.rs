//! Broken copies of a good server ELF, for the kernel's "bad ELF" test:
//! each breaks exactly one rule `elf-check` enforces.

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// Offsets of the PT_LOAD program headers of `elf`.
fn load_headers(elf: &[u8]) -> Vec<usize> {
    let phoff = u64_at(elf, 0x20) as usize;
    let entsize = u16_at(elf, 0x36) as usize;
    let count = u16_at(elf, 0x38) as usize;
    (0..count).map(|i| phoff + i * entsize).filter(|&at| elf[at..at + 4] == 1u32.to_le_bytes()).collect()
}

/// `(binary name, bytes, what is wrong)` for each mutation of `good`.
pub fn bad_elves(good: &[u8]) -> Vec<(String, Vec<u8>, &'static str)> {
    let loads = load_headers(good);
    let first = loads[0];
    let text = loads.iter().copied().find(|&at| good[at + 4] & 1 != 0).expect("an executable segment");
    let mut out = Vec::new();
    let mut make = |name: &str, what: &'static str, edit: &dyn Fn(&mut Vec<u8>)| {
        let mut bytes = good.to_vec();
        edit(&mut bytes);
        out.push((name.to_string(), bytes, what));
    };
    make("bad-truncated", "truncated to 100 bytes", &|b| b.truncate(100));
    make("bad-machine", "e_machine = EM_386", &|b| b[18..20].copy_from_slice(&3u16.to_le_bytes()));
    make("bad-kernel-half", "first segment moved into the kernel half", &|b| {
        b[first + 16..first + 24].copy_from_slice(&0xffff_8000_0020_0000u64.to_le_bytes());
        b[first + 24..first + 32].copy_from_slice(&0xffff_8000_0020_0000u64.to_le_bytes());
    });
    make("bad-overlap", "code segment moved onto the first segment's page", &|b| {
        let vaddr = u64_at(b, first + 16) + (u64_at(b, text + 8) & 0xfff);
        b[text + 16..text + 24].copy_from_slice(&vaddr.to_le_bytes());
    });
    make("bad-wx", "code segment made writable and executable", &|b| b[text + 4] = 7);
    make("bad-entry", "entry point at 0x100", &|b| b[0x18..0x20].copy_from_slice(&0x100u64.to_le_bytes()));
    out
}
