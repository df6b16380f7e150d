//! Bounds-checked little-endian reads of the two ELF64 structures we use: the
//! file header (past its magic) and a program header.
//!
//! Invariants: every read goes through `slice::get`, and every offset sum is
//! `checked_add`; a read past the end of the input returns `None`, never
//! panics. Nothing here judges the values: that is `lib.rs`'s job.

/// Size of the ELF64 file header.
pub(crate) const FILE_HEADER_SIZE: usize = 64;
/// Size of one ELF64 program header, the only `e_phentsize` we accept.
pub(crate) const PROGRAM_HEADER_SIZE: usize = 56;

/// Reads `N` bytes at `offset`, or `None` if any of them lies past the end.
pub(crate) fn read_array<const N: usize>(bytes: &[u8], offset: usize) -> Option<[u8; N]> {
    let end = offset.checked_add(N)?;
    bytes.get(offset..end)?.try_into().ok()
}

pub(crate) fn read_u8(bytes: &[u8], offset: usize) -> Option<u8> {
    bytes.get(offset).copied()
}

pub(crate) fn read_u16(bytes: &[u8], offset: usize) -> Option<u16> {
    read_array(bytes, offset).map(u16::from_le_bytes)
}

pub(crate) fn read_u32(bytes: &[u8], offset: usize) -> Option<u32> {
    read_array(bytes, offset).map(u32::from_le_bytes)
}

pub(crate) fn read_u64(bytes: &[u8], offset: usize) -> Option<u64> {
    read_array(bytes, offset).map(u64::from_le_bytes)
}

/// The fields of the ELF64 file header that we look at, as stored (not yet
/// validated).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawFileHeader {
    pub(crate) class: u8,
    pub(crate) data_encoding: u8,
    pub(crate) ident_version: u8,
    pub(crate) file_type: u16,
    pub(crate) machine: u16,
    pub(crate) version: u32,
    pub(crate) entry: u64,
    pub(crate) program_header_offset: u64,
    pub(crate) program_header_entry_size: u16,
    pub(crate) program_header_count: u16,
}

impl RawFileHeader {
    /// Reads the file header from the start of `bytes`; `None` if `bytes` is
    /// shorter than a header.
    pub(crate) fn read(bytes: &[u8]) -> Option<Self> {
        if bytes.len() < FILE_HEADER_SIZE {
            return None;
        }
        Some(Self {
            class: read_u8(bytes, 4)?,
            data_encoding: read_u8(bytes, 5)?,
            ident_version: read_u8(bytes, 6)?,
            file_type: read_u16(bytes, 16)?,
            machine: read_u16(bytes, 18)?,
            version: read_u32(bytes, 20)?,
            entry: read_u64(bytes, 24)?,
            program_header_offset: read_u64(bytes, 32)?,
            program_header_entry_size: read_u16(bytes, 54)?,
            program_header_count: read_u16(bytes, 56)?,
        })
    }
}

/// One ELF64 program header, as stored (not yet validated).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawProgramHeader {
    pub(crate) kind: u32,
    pub(crate) flags: u32,
    pub(crate) file_offset: u64,
    pub(crate) vaddr: u64,
    pub(crate) filesz: u64,
    pub(crate) memsz: u64,
    pub(crate) align: u64,
}

impl RawProgramHeader {
    /// Reads the program header that starts at `offset`; `None` if it runs
    /// past the end of `bytes`.
    pub(crate) fn read(bytes: &[u8], offset: usize) -> Option<Self> {
        let field = |delta: usize| offset.checked_add(delta);
        Some(Self {
            kind: read_u32(bytes, field(0)?)?,
            flags: read_u32(bytes, field(4)?)?,
            file_offset: read_u64(bytes, field(8)?)?,
            vaddr: read_u64(bytes, field(16)?)?,
            // p_paddr at 24 is meaningless for us.
            filesz: read_u64(bytes, field(32)?)?,
            memsz: read_u64(bytes, field(40)?)?,
            align: read_u64(bytes, field(48)?)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stop_at_the_end() {
        let bytes = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(read_u64(&bytes, 0), Some(0x0807_0605_0403_0201));
        assert_eq!(read_u64(&bytes, 1), None);
        assert_eq!(read_u32(&bytes, 4), Some(0x0807_0605));
        assert_eq!(read_u32(&bytes, 5), None);
        assert_eq!(read_u16(&bytes, usize::MAX), None);
        assert_eq!(read_u8(&bytes, 8), None);
        assert!(RawProgramHeader::read(&[0; 100], usize::MAX - 3).is_none());
        assert!(RawFileHeader::read(&[0; 63]).is_none());
        assert!(RawFileHeader::read(&[0; 64]).is_some());
    }
}
