//! Checks a server's ELF file (untrusted bytes from the boot ramdisk) and
//! turns it into a [`LoadPlan`] the kernel can map, or an [`ElfError`] that
//! says what is wrong and where.
//!
//! Invariants:
//! - Nothing here trusts the file. Every read is bounds-checked and every sum
//!   is `checked_*`; no input makes this crate panic, index out of bounds or
//!   overflow (the crate denies the clippy lints that would let one slip in,
//!   and the tests fuzz it).
//! - A [`LoadPlan`] exists only if every check passed ([`check_elf`] is its
//!   only constructor). Its segments then: lie, rounded out to whole pages,
//!   inside `[Limits::user_min, Limits::user_max)`; share no page with one
//!   another; are never both writable and executable; have
//!   `filesz <= memsz` and file bytes inside the file; and the entry point
//!   lies inside an executable one.
//!
//! Accepted: ELF64, little-endian, `EV_CURRENT`, `EM_X86_64`, `ET_EXEC`
//! (static, non-PIE, linked at a fixed user address). `PT_LOAD` becomes a
//! segment of the plan, `PT_GNU_STACK` is noted (an executable stack is
//! refused), `PT_INTERP`/`PT_DYNAMIC`/`PT_TLS` are refused, every other
//! program header type (`PT_NOTE`, `PT_PHDR`, `PT_GNU_RELRO`, ...) is
//! ignored.
//!
//! ```text
//!   ELF bytes ──check_elf(bytes, &limits)──┬─> Ok(LoadPlan { entry, segments[..≤16], stack })
//!                                          └─> Err(ElfError::…)  (Display: one line)
//! ```
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::arithmetic_side_effects,
        clippy::indexing_slicing,
        clippy::panic,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::unreachable
    )
)]

mod error;
mod read;
#[cfg(test)]
mod tests;

use core::fmt;

pub use error::ElfError;
use read::{PROGRAM_HEADER_SIZE, RawFileHeader, RawProgramHeader};

/// The page size the plan is checked against (x86_64 base pages).
pub const PAGE_SIZE: u64 = 4096;
/// Bits of an address below the page boundary.
const PAGE_OFFSET_MASK: u64 = PAGE_SIZE - 1;
/// The most `PT_LOAD` segments a server may have.
pub const MAX_LOAD_SEGMENTS: usize = 16;

const ELF_MAGIC: [u8; 4] = [0x7f, b'E', b'L', b'F'];
const ELFCLASS64: u8 = 2;
const ELFDATA2LSB: u8 = 1;
const EV_CURRENT: u32 = 1;
const ET_EXEC: u16 = 2;
const ET_DYN: u16 = 3;
const EM_X86_64: u16 = 62;
/// `e_phnum` value meaning "the real count is in section header 0".
const PN_XNUM: u16 = 0xffff;

const PT_LOAD: u32 = 1;
pub(crate) const PT_DYNAMIC: u32 = 2;
pub(crate) const PT_INTERP: u32 = 3;
const PT_TLS: u32 = 7;
const PT_GNU_STACK: u32 = 0x6474_e551;

const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// Where a server may live and how big it may be. Trusted: set by the
/// kernel (or the host runner), not by the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Lowest user address a segment may use (page-aligned; keeps page 0
    /// and the low region unmapped so null dereferences fault).
    pub user_min: u64,
    /// One past the highest user address (page-aligned; the end of the
    /// lower canonical half, below the kernel).
    pub user_max: u64,
    /// Most memory all segments together may occupy, counted in whole pages.
    pub max_mapped_bytes: u64,
}

impl Limits {
    /// Servers live in `0x20_0000 .. 0x8000_0000_0000` (above the first
    /// 2 MiB, below the kernel half) and take at most 256 MiB.
    pub const SERVER_DEFAULT: Self =
        Self { user_min: 0x20_0000, user_max: 0x0000_8000_0000_0000, max_mapped_bytes: 256 * 1024 * 1024 };
}

impl Default for Limits {
    fn default() -> Self {
        Self::SERVER_DEFAULT
    }
}

/// What a mapping may do. x86_64 cannot express "present but unreadable",
/// so a segment without `read` is still readable once mapped; the flag is
/// kept as the file states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    pub read: bool,
    pub write: bool,
    pub execute: bool,
}

impl Permissions {
    /// Decodes `p_flags`; bits other than `PF_R`/`PF_W`/`PF_X` are ignored.
    fn from_program_header_flags(flags: u32) -> Self {
        Self { read: flags & PF_R != 0, write: flags & PF_W != 0, execute: flags & PF_X != 0 }
    }
}

impl fmt::Display for Permissions {
    /// `r-x` style, as `readelf` and `/proc/*/maps` print them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let flag = |set: bool, letter: char| if set { letter } else { '-' };
        write!(f, "{}{}{}", flag(self.read, 'r'), flag(self.write, 'w'), flag(self.execute, 'x'))
    }
}

/// One validated `PT_LOAD` segment: map `memsz` bytes at `vaddr`, copy
/// `file_data` to its start, zero the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment<'elf> {
    /// Index of this segment's program header in the file.
    pub program_header_index: usize,
    /// First virtual address of the segment (not necessarily page-aligned).
    pub vaddr: u64,
    /// Bytes of memory from `vaddr`; `memsz >= file_data.len()`; never 0.
    pub memsz: u64,
    /// Where `file_data` starts in the file (`p_offset`; 0 if there is none).
    pub file_offset: u64,
    /// The segment's bytes in the file, `p_filesz` of them.
    pub file_data: &'elf [u8],
    /// `p_align` as written (0 or a power of two).
    pub align: u64,
    pub permissions: Permissions,
    /// First page this segment touches.
    pub page_start: u64,
    /// One past the last page this segment touches (page-aligned).
    pub page_end: u64,
}

impl LoadSegment<'_> {
    /// `p_filesz`: bytes copied from the file.
    pub fn filesz(&self) -> u64 {
        self.file_data.len() as u64
    }

    /// One past the last byte of the segment (`vaddr + memsz`; cannot
    /// overflow in a checked plan).
    pub fn vaddr_end(&self) -> u64 {
        self.vaddr.saturating_add(self.memsz)
    }

    /// Whether `address` is one of the segment's bytes.
    pub fn contains(&self, address: u64) -> bool {
        self.vaddr <= address && address < self.vaddr_end()
    }

    /// Bytes of memory the segment occupies, in whole pages.
    pub fn mapped_bytes(&self) -> u64 {
        self.page_end.saturating_sub(self.page_start)
    }

    const EMPTY: LoadSegment<'static> = LoadSegment {
        program_header_index: 0,
        vaddr: 0,
        memsz: 0,
        file_offset: 0,
        file_data: &[],
        align: 0,
        permissions: Permissions { read: false, write: false, execute: false },
        page_start: 0,
        page_end: 0,
    };
}

/// What `PT_GNU_STACK` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackRequest {
    /// Index of the `PT_GNU_STACK` program header.
    pub program_header_index: usize,
    /// Never `execute` in a checked plan.
    pub permissions: Permissions,
    /// `p_memsz`, a stack size hint some linkers set (`-z stack-size`); 0
    /// means "the loader's default".
    pub size_hint: u64,
}

/// A checked server image: where to start and what to map. Borrows the
/// file's bytes so the kernel can copy segment data straight from the
/// ramdisk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadPlan<'elf> {
    entry: u64,
    segments: [LoadSegment<'elf>; MAX_LOAD_SEGMENTS],
    segment_count: usize,
    stack: Option<StackRequest>,
}

impl<'elf> LoadPlan<'elf> {
    /// The entry point (`e_entry`), inside an executable segment.
    pub fn entry(&self) -> u64 {
        self.entry
    }

    /// The segments, in program header order; at least one, at most
    /// [`MAX_LOAD_SEGMENTS`].
    pub fn segments(&self) -> &[LoadSegment<'elf>] {
        self.segments.get(..self.segment_count).unwrap_or(&[])
    }

    /// The `PT_GNU_STACK` request, if the file has one.
    pub fn stack(&self) -> Option<StackRequest> {
        self.stack
    }

    /// Memory all segments occupy together, in whole pages (at most
    /// [`Limits::max_mapped_bytes`]).
    pub fn mapped_bytes(&self) -> u64 {
        self.segments().iter().fold(0u64, |sum, segment| sum.saturating_add(segment.mapped_bytes()))
    }
}

/// Checks `elf` and returns its load plan, or the first defect found (file
/// header first, then program headers in file order, then overlaps, entry
/// point and total size).
pub fn check_elf<'elf>(elf: &'elf [u8], limits: &Limits) -> Result<LoadPlan<'elf>, ElfError> {
    let header = check_file_header(elf)?;
    let table_offset = header.program_header_offset;
    let count = header.program_header_count;
    let truncated_table = ElfError::TruncatedProgramHeaders { table_offset, count, file_len: elf.len() };
    let table_start = usize::try_from(table_offset).map_err(|_| truncated_table)?;
    let table_len = usize::from(count).checked_mul(PROGRAM_HEADER_SIZE).ok_or(truncated_table)?;
    let table_end = table_start.checked_add(table_len).ok_or(truncated_table)?;
    if table_end > elf.len() {
        return Err(truncated_table);
    }

    let mut plan = LoadPlan {
        entry: header.entry,
        segments: [LoadSegment::EMPTY; MAX_LOAD_SEGMENTS],
        segment_count: 0,
        stack: None,
    };
    let mut load_headers_seen = 0usize;
    for index in 0..usize::from(count) {
        // Cannot fail: the whole table was checked to lie inside the file.
        let offset = index
            .checked_mul(PROGRAM_HEADER_SIZE)
            .and_then(|delta| table_start.checked_add(delta))
            .ok_or(truncated_table)?;
        let program_header = RawProgramHeader::read(elf, offset).ok_or(truncated_table)?;
        match program_header.kind {
            PT_LOAD => {
                load_headers_seen = load_headers_seen.saturating_add(1);
                if load_headers_seen > MAX_LOAD_SEGMENTS {
                    return Err(ElfError::TooManySegments { index, max: MAX_LOAD_SEGMENTS });
                }
                if let Some(segment) = check_load_segment(elf, index, &program_header, limits)? {
                    let slot = plan
                        .segments
                        .get_mut(plan.segment_count)
                        .ok_or(ElfError::TooManySegments { index, max: MAX_LOAD_SEGMENTS })?;
                    *slot = segment;
                    plan.segment_count = plan.segment_count.saturating_add(1);
                }
            }
            PT_INTERP | PT_DYNAMIC => {
                return Err(ElfError::DynamicallyLinked { index, header_kind: program_header.kind });
            }
            PT_TLS => return Err(ElfError::TlsNotSupported { index }),
            PT_GNU_STACK => {
                let permissions = Permissions::from_program_header_flags(program_header.flags);
                if permissions.execute {
                    return Err(ElfError::ExecutableStack { index });
                }
                plan.stack =
                    Some(StackRequest { program_header_index: index, permissions, size_hint: program_header.memsz });
            }
            _ => {}
        }
    }

    let segments = plan.segments();
    if segments.is_empty() {
        return Err(ElfError::NoLoadableSegments);
    }
    check_no_overlap(segments)?;
    check_entry(segments, plan.entry)?;
    let mapped_bytes = plan.mapped_bytes();
    if mapped_bytes > limits.max_mapped_bytes {
        return Err(ElfError::TooLarge { mapped_bytes, max_mapped_bytes: limits.max_mapped_bytes });
    }
    Ok(plan)
}

/// Checks the identification and the fields that say "x86_64 static
/// executable with ELF64 program headers".
fn check_file_header(elf: &[u8]) -> Result<RawFileHeader, ElfError> {
    // A short file that does not even start like ELF is "not ELF", which is
    // the more useful message.
    if let Some(magic) = read::read_array::<4>(elf, 0)
        && magic != ELF_MAGIC
    {
        return Err(ElfError::NotElf { magic });
    }
    // From here on the file is at least 4 bytes long and starts with the magic.
    let header = RawFileHeader::read(elf).ok_or(ElfError::TruncatedFileHeader { file_len: elf.len() })?;
    if header.class != ELFCLASS64 {
        return Err(ElfError::WrongClass { class: header.class });
    }
    if header.data_encoding != ELFDATA2LSB {
        return Err(ElfError::WrongEndianness { data_encoding: header.data_encoding });
    }
    if u32::from(header.ident_version) != EV_CURRENT {
        return Err(ElfError::WrongVersion { version: u32::from(header.ident_version) });
    }
    if header.machine != EM_X86_64 {
        return Err(ElfError::WrongMachine { machine: header.machine });
    }
    if header.version != EV_CURRENT {
        return Err(ElfError::WrongVersion { version: header.version });
    }
    match header.file_type {
        ET_EXEC => {}
        ET_DYN => return Err(ElfError::PositionIndependent),
        file_type => return Err(ElfError::WrongType { file_type }),
    }
    if usize::from(header.program_header_entry_size) != PROGRAM_HEADER_SIZE {
        return Err(ElfError::WrongProgramHeaderSize { entry_size: header.program_header_entry_size });
    }
    if header.program_header_count == PN_XNUM {
        return Err(ElfError::ExtendedProgramHeaderCount);
    }
    Ok(header)
}

/// Checks one `PT_LOAD` header on its own. `Ok(None)` for an empty segment
/// (`p_memsz == 0`), which maps nothing and is skipped.
fn check_load_segment<'elf>(
    elf: &'elf [u8],
    index: usize,
    program_header: &RawProgramHeader,
    limits: &Limits,
) -> Result<Option<LoadSegment<'elf>>, ElfError> {
    let RawProgramHeader { flags, file_offset, vaddr, filesz, memsz, align, .. } = *program_header;
    if filesz > memsz {
        return Err(ElfError::FileSizeExceedsMemorySize { index, filesz, memsz });
    }
    if memsz == 0 {
        return Ok(None);
    }
    if align != 0 && !align.is_power_of_two() {
        return Err(ElfError::AlignmentNotPowerOfTwo { index, align });
    }
    // A segment with no file bytes (pure .bss) has no offset to agree with.
    if filesz != 0 && (vaddr & PAGE_OFFSET_MASK) != (file_offset & PAGE_OFFSET_MASK) {
        return Err(ElfError::MisalignedSegment { index, vaddr, file_offset });
    }
    let file_data = if filesz == 0 {
        &[][..]
    } else {
        let truncated = ElfError::TruncatedSegment { index, file_offset, filesz, file_len: elf.len() };
        let start = usize::try_from(file_offset).map_err(|_| truncated)?;
        let len = usize::try_from(filesz).map_err(|_| truncated)?;
        let end = start.checked_add(len).ok_or(truncated)?;
        elf.get(start..end).ok_or(truncated)?
    };

    let end = vaddr.checked_add(memsz).ok_or(ElfError::AddressOverflow { index, vaddr, memsz })?;
    let outside =
        ElfError::OutsideUserSpace { index, start: vaddr, end, user_min: limits.user_min, user_max: limits.user_max };
    let page_start = vaddr & !PAGE_OFFSET_MASK;
    // Rounding the end up overflows only for the very last page of the
    // address space, which is never user space.
    let page_end = end.checked_add(PAGE_OFFSET_MASK).ok_or(outside)? & !PAGE_OFFSET_MASK;
    if page_start < limits.user_min || page_end > limits.user_max {
        return Err(outside);
    }

    let permissions = Permissions::from_program_header_flags(flags);
    if permissions.write && permissions.execute {
        return Err(ElfError::WritableAndExecutable { index, start: vaddr, end });
    }
    Ok(Some(LoadSegment {
        program_header_index: index,
        vaddr,
        memsz,
        file_offset: if filesz == 0 { 0 } else { file_offset },
        file_data,
        align,
        permissions,
        page_start,
        page_end,
    }))
}

/// Refuses two segments that touch a common page: a page has one set of
/// permissions, so sharing would break W^X or the segments' own flags.
fn check_no_overlap(segments: &[LoadSegment<'_>]) -> Result<(), ElfError> {
    for (position, first) in segments.iter().enumerate() {
        for second in segments.iter().skip(position.saturating_add(1)) {
            if first.page_start < second.page_end && second.page_start < first.page_end {
                return Err(ElfError::OverlappingSegments {
                    first_index: first.program_header_index,
                    first_pages: (first.page_start, first.page_end),
                    second_index: second.program_header_index,
                    second_pages: (second.page_start, second.page_end),
                });
            }
        }
    }
    Ok(())
}

/// Requires the entry point to be a byte of an executable segment.
fn check_entry(segments: &[LoadSegment<'_>], entry: u64) -> Result<(), ElfError> {
    match segments.iter().find(|segment| segment.contains(entry)) {
        Some(segment) if segment.permissions.execute => Ok(()),
        containing => Err(ElfError::EntryNotExecutable {
            entry,
            containing_segment: containing.map(|segment| segment.program_header_index),
        }),
    }
}
