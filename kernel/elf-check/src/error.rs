//! Why a server's ELF file was refused: one variant per defect, each carrying
//! the segment index and addresses a person needs to find it.
//!
//! Invariants: a "segment index" is always the index of the program header in
//! the file (the order `readelf -l` prints), never a position in the load
//! plan. Every variant prints as one line without a trailing period, so the
//! kernel can prefix it with the server's name.

use core::fmt;

/// What is wrong with a server's ELF file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfError {
    /// The file is shorter than the 64-byte ELF64 header.
    TruncatedFileHeader { file_len: usize },
    /// The file does not start with `\x7fELF`.
    NotElf { magic: [u8; 4] },
    /// `EI_CLASS` is not `ELFCLASS64`.
    WrongClass { class: u8 },
    /// `EI_DATA` is not `ELFDATA2LSB` (little-endian).
    WrongEndianness { data_encoding: u8 },
    /// `EI_VERSION` or `e_version` is not `EV_CURRENT` (1).
    WrongVersion { version: u32 },
    /// `e_machine` is not `EM_X86_64` (62).
    WrongMachine { machine: u16 },
    /// `e_type` is `ET_DYN`: a position-independent executable or a shared
    /// library. Servers are linked static, non-PIE, at a fixed user address.
    PositionIndependent,
    /// `e_type` is neither `ET_EXEC` nor `ET_DYN`.
    WrongType { file_type: u16 },
    /// `e_phentsize` is not 56, the size of an ELF64 program header.
    WrongProgramHeaderSize { entry_size: u16 },
    /// `e_phnum` is `PN_XNUM` (0xffff): the real count hides in section 0.
    /// No server has 65535 program headers.
    ExtendedProgramHeaderCount,
    /// The program header table runs past the end of the file.
    TruncatedProgramHeaders { table_offset: u64, count: u16, file_len: usize },
    /// A `PT_INTERP` or `PT_DYNAMIC` header: the file wants a dynamic linker.
    DynamicallyLinked { index: usize, header_kind: u32 },
    /// A `PT_TLS` header: thread-local storage is not supported.
    TlsNotSupported { index: usize },
    /// A `PT_GNU_STACK` header asks for an executable stack (W^X forbids it).
    ExecutableStack { index: usize },
    /// More than [`crate::MAX_LOAD_SEGMENTS`] `PT_LOAD` headers; `index` is
    /// the first one over the limit.
    TooManySegments { index: usize, max: usize },
    /// A segment's `p_filesz` is larger than its `p_memsz`.
    FileSizeExceedsMemorySize { index: usize, filesz: u64, memsz: u64 },
    /// A segment's `p_align` is not 0 and not a power of two.
    AlignmentNotPowerOfTwo { index: usize, align: u64 },
    /// A segment's `p_vaddr` and `p_offset` differ modulo the page size, so
    /// its file pages cannot be mapped (or copied page by page) in place.
    MisalignedSegment { index: usize, vaddr: u64, file_offset: u64 },
    /// A segment's file bytes (`p_offset .. p_offset + p_filesz`) run past
    /// the end of the file.
    TruncatedSegment { index: usize, file_offset: u64, filesz: u64, file_len: usize },
    /// A segment's `p_vaddr + p_memsz` wraps past the top of the 64-bit
    /// address space.
    AddressOverflow { index: usize, vaddr: u64, memsz: u64 },
    /// A segment (rounded out to whole pages) is not inside
    /// `[user_min, user_max)`; `start..end` is the segment as written.
    OutsideUserSpace { index: usize, start: u64, end: u64, user_min: u64, user_max: u64 },
    /// A segment is both writable and executable (W^X).
    WritableAndExecutable { index: usize, start: u64, end: u64 },
    /// Two segments share at least one page. `*_pages` are the page-rounded
    /// ranges that collide.
    OverlappingSegments { first_index: usize, first_pages: (u64, u64), second_index: usize, second_pages: (u64, u64) },
    /// No `PT_LOAD` header with a non-zero `p_memsz`.
    NoLoadableSegments,
    /// The entry point is not inside an executable segment;
    /// `containing_segment` is the non-executable segment it falls in, if
    /// any.
    EntryNotExecutable { entry: u64, containing_segment: Option<usize> },
    /// The segments together (in whole pages) need more memory than
    /// [`crate::Limits::max_mapped_bytes`].
    TooLarge { mapped_bytes: u64, max_mapped_bytes: u64 },
}

/// Name of a program header type we refuse, for messages.
fn header_kind_name(kind: u32) -> &'static str {
    match kind {
        crate::PT_DYNAMIC => "PT_DYNAMIC",
        crate::PT_INTERP => "PT_INTERP",
        _ => "unexpected program header",
    }
}

impl fmt::Display for ElfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::TruncatedFileHeader { file_len } => {
                write!(f, "file is {file_len} bytes, shorter than the 64-byte ELF64 header")
            }
            Self::NotElf { magic } => write!(
                f,
                "not an ELF file: starts with {:02x} {:02x} {:02x} {:02x}, expected 7f 45 4c 46",
                magic[0], magic[1], magic[2], magic[3]
            ),
            Self::WrongClass { class } => {
                write!(f, "ELF class is {class}, expected 2 (ELFCLASS64): servers are 64-bit")
            }
            Self::WrongEndianness { data_encoding } => {
                write!(f, "ELF data encoding is {data_encoding}, expected 1 (ELFDATA2LSB, little-endian)")
            }
            Self::WrongVersion { version } => {
                write!(f, "ELF version is {version}, expected 1 (EV_CURRENT)")
            }
            Self::WrongMachine { machine } => {
                write!(f, "ELF machine is {machine}, expected 62 (EM_X86_64)")
            }
            Self::PositionIndependent => write!(
                f,
                "ELF type is ET_DYN (position-independent or shared object); servers must be \
                 linked static, non-PIE, at a fixed user address"
            ),
            Self::WrongType { file_type } => {
                write!(f, "ELF type is {file_type}, expected 2 (ET_EXEC, a static executable)")
            }
            Self::WrongProgramHeaderSize { entry_size } => {
                write!(f, "program header entry size is {entry_size} bytes, expected 56 (ELF64)")
            }
            Self::ExtendedProgramHeaderCount => {
                write!(f, "program header count is PN_XNUM (0xffff, extended numbering); not supported")
            }
            Self::TruncatedProgramHeaders { table_offset, count, file_len } => write!(
                f,
                "{count} program headers at byte {table_offset:#x} run past the end of the \
                 file ({file_len} bytes)"
            ),
            Self::DynamicallyLinked { index, header_kind } => write!(
                f,
                "segment {index} is {}: the file is dynamically linked; servers must be static",
                header_kind_name(header_kind)
            ),
            Self::TlsNotSupported { index } => {
                write!(f, "segment {index} is PT_TLS: thread-local storage is not supported")
            }
            Self::ExecutableStack { index } => write!(
                f,
                "segment {index} (PT_GNU_STACK) asks for an executable stack; stacks are never \
                 executable (W^X)"
            ),
            Self::TooManySegments { index, max } => write!(
                f,
                "segment {index} is loadable segment number {}; at most {max} are supported",
                max.saturating_add(1)
            ),
            Self::FileSizeExceedsMemorySize { index, filesz, memsz } => {
                write!(f, "segment {index} has file size {filesz:#x} larger than its memory size {memsz:#x}")
            }
            Self::AlignmentNotPowerOfTwo { index, align } => {
                write!(f, "segment {index} has alignment {align:#x}, not a power of two")
            }
            Self::MisalignedSegment { index, vaddr, file_offset } => write!(
                f,
                "segment {index} at {vaddr:#x} has file offset {file_offset:#x}; they must be \
                 equal modulo the page size 0x1000"
            ),
            Self::TruncatedSegment { index, file_offset, filesz, file_len } => write!(
                f,
                "segment {index} has {filesz:#x} file bytes at offset {file_offset:#x}, past the \
                 end of the file ({file_len:#x} bytes)"
            ),
            Self::AddressOverflow { index, vaddr, memsz } => write!(
                f,
                "segment {index} at {vaddr:#x} with size {memsz:#x} wraps past the end of the \
                 address space"
            ),
            Self::OutsideUserSpace { index, start, end, user_min, user_max } => write!(
                f,
                "segment {index} at {start:#x}..{end:#x} reaches outside user space \
                 {user_min:#x}..{user_max:#x}"
            ),
            Self::WritableAndExecutable { index, start, end } => {
                write!(f, "segment {index} at {start:#x}..{end:#x} is both writable and executable (W^X)")
            }
            Self::OverlappingSegments { first_index, first_pages, second_index, second_pages } => {
                write!(
                    f,
                    "segments {first_index} (pages {:#x}..{:#x}) and {second_index} (pages \
                     {:#x}..{:#x}) share a page; each page needs one set of permissions",
                    first_pages.0, first_pages.1, second_pages.0, second_pages.1
                )
            }
            Self::NoLoadableSegments => write!(f, "no loadable (PT_LOAD) segment with memory"),
            Self::EntryNotExecutable { entry, containing_segment: Some(index) } => {
                write!(f, "entry point {entry:#x} is in segment {index}, which is not executable")
            }
            Self::EntryNotExecutable { entry, containing_segment: None } => {
                write!(f, "entry point {entry:#x} is outside every loadable segment")
            }
            Self::TooLarge { mapped_bytes, max_mapped_bytes } => write!(
                f,
                "segments need {mapped_bytes:#x} bytes of memory, more than the limit \
                 {max_mapped_bytes:#x}"
            ),
        }
    }
}
