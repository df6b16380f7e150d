//! Reads what the runner hands the kernel at boot: a ustar archive in the
//! bootloader's ramdisk, and the `cmdline` file inside it.
//!
//! Invariants: nothing here trusts the archive. Every header field is parsed
//! with bounds checks; a malformed archive yields an error value, never a
//! panic or an out-of-bounds read. The archive is plain ustar so that a person
//! can inspect it with `tar tvf`.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

/// Size of a ustar header and of the blocks file data is padded to.
pub const BLOCK: usize = 512;

/// What is wrong with an archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveError {
    /// A header ends past the end of the ramdisk.
    TruncatedHeader { offset: usize },
    /// A header's checksum does not match its bytes.
    BadChecksum { offset: usize },
    /// A size or checksum field is not octal.
    BadNumber { offset: usize },
    /// A file's data runs past the end of the ramdisk.
    TruncatedData { offset: usize },
    /// A name is not UTF-8.
    BadName { offset: usize },
}

impl core::fmt::Display for ArchiveError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::TruncatedHeader { offset } => write!(f, "header at byte {offset} is cut off"),
            Self::BadChecksum { offset } => write!(f, "header at byte {offset} fails its checksum"),
            Self::BadNumber { offset } => write!(f, "header at byte {offset} has a non-octal number"),
            Self::TruncatedData { offset } => write!(f, "file at byte {offset} runs past the archive"),
            Self::BadName { offset } => write!(f, "header at byte {offset} has a non-UTF-8 name"),
        }
    }
}

/// One regular file in the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a str,
    pub data: &'a [u8],
}

/// Iterates the regular files of a ustar archive; stops at the end marker
/// (a zero block) or at the end of the bytes, and yields an error once if
/// the archive is malformed.
pub struct Archive<'a> {
    bytes: &'a [u8],
    offset: usize,
    failed: bool,
}

impl<'a> Archive<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0, failed: false }
    }

    /// Finds the file called `name` (leading `./` ignored).
    pub fn find(bytes: &'a [u8], name: &str) -> Result<Option<&'a [u8]>, ArchiveError> {
        for entry in Archive::new(bytes) {
            let entry = entry?;
            if entry.name.strip_prefix("./").unwrap_or(entry.name) == name {
                return Ok(Some(entry.data));
            }
        }
        Ok(None)
    }
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut seen_digit = false;
    for &byte in field {
        match byte {
            b'0'..=b'7' => {
                value = value.checked_mul(8)?.checked_add(u64::from(byte - b'0'))?;
                seen_digit = true;
            }
            b' ' | 0 if seen_digit => break,
            b' ' => continue,
            0 => break,
            _ => return None,
        }
    }
    Some(value)
}

fn field_str(field: &[u8]) -> &[u8] {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    &field[..end]
}

impl<'a> Iterator for Archive<'a> {
    type Item = Result<Entry<'a>, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed || self.offset >= self.bytes.len() {
                return None;
            }
            let offset = self.offset;
            let Some(header) = self.bytes.get(offset..offset + BLOCK) else {
                self.failed = true;
                return Some(Err(ArchiveError::TruncatedHeader { offset }));
            };
            if header.iter().all(|&b| b == 0) {
                return None;
            }
            let fail = |this: &mut Self, err| {
                this.failed = true;
                Some(Err(err))
            };
            let Some(stored_sum) = parse_octal(&header[148..156]) else {
                return fail(self, ArchiveError::BadNumber { offset });
            };
            let actual_sum: u64 = header
                .iter()
                .enumerate()
                .map(|(i, &b)| if (148..156).contains(&i) { u64::from(b' ') } else { u64::from(b) })
                .sum();
            if stored_sum != actual_sum {
                return fail(self, ArchiveError::BadChecksum { offset });
            }
            let Some(size) = parse_octal(&header[124..136]) else {
                return fail(self, ArchiveError::BadNumber { offset });
            };
            let data_start = offset + BLOCK;
            let Some(data_end) = usize::try_from(size).ok().and_then(|s| data_start.checked_add(s)) else {
                return fail(self, ArchiveError::TruncatedData { offset });
            };
            if data_end > self.bytes.len() {
                return fail(self, ArchiveError::TruncatedData { offset });
            }
            let padded = (data_end - data_start).div_ceil(BLOCK) * BLOCK;
            self.offset = data_start + padded;
            let type_flag = header[156];
            if type_flag != b'0' && type_flag != 0 {
                continue; // directories, links and extended headers are skipped
            }
            let name = field_str(&header[0..100]);
            let Ok(name) = core::str::from_utf8(name) else {
                return fail(self, ArchiveError::BadName { offset });
            };
            return Some(Ok(Entry { name, data: &self.bytes[data_start..data_end] }));
        }
    }
}

/// The kernel command line: whitespace-separated `key=value` words (a bare
/// `key` means `key=`). Unknown keys are the caller's to reject.
#[derive(Clone, Copy)]
pub struct CmdLine<'a> {
    text: &'a str,
}

impl<'a> CmdLine<'a> {
    pub fn new(text: &'a str) -> Self {
        Self { text }
    }

    /// Every `(key, value)` pair in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.text.split_ascii_whitespace().map(|word| word.split_once('=').unwrap_or((word, "")))
    }

    /// The last value given for `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.pairs().filter(|(k, _)| *k == key).map(|(_, v)| v).last()
    }
}

/// Writes ustar archives (host side: the runner packs the ramdisk).
#[cfg(any(test, feature = "std"))]
pub mod write {
    use super::BLOCK;

    /// Why a file cannot go into a ustar archive.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum WriteError {
        /// Names are limited to 99 bytes of ASCII without NUL.
        BadName(String),
        /// Sizes are limited to 8 GiB (11 octal digits).
        TooLarge(String),
    }

    impl std::fmt::Display for WriteError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                WriteError::BadName(n) => write!(f, "`{n}` is not a valid ustar name (ASCII, 1..=99 bytes)"),
                WriteError::TooLarge(n) => write!(f, "`{n}` is too large for a ustar archive"),
            }
        }
    }

    fn header(name: &str, size: usize) -> [u8; BLOCK] {
        let mut h = [0u8; BLOCK];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..108].copy_from_slice(b"0000644\0");
        h[108..116].copy_from_slice(b"0000000\0");
        h[116..124].copy_from_slice(b"0000000\0");
        h[124..136].copy_from_slice(format!("{size:011o}\0").as_bytes());
        h[136..148].copy_from_slice(b"00000000000\0");
        h[156] = b'0';
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    /// Packs `files` (name, contents) into one archive, in order.
    pub fn ustar(files: &[(&str, &[u8])]) -> Result<Vec<u8>, WriteError> {
        let mut out = Vec::new();
        for (name, data) in files {
            if name.is_empty() || name.len() > 99 || !name.is_ascii() || name.contains('\0') {
                return Err(WriteError::BadName((*name).to_string()));
            }
            if data.len() as u64 >= 8 << 30 {
                return Err(WriteError::TooLarge((*name).to_string()));
            }
            out.extend_from_slice(&header(name, data.len()));
            out.extend_from_slice(data);
            out.resize(out.len().div_ceil(BLOCK) * BLOCK, 0);
        }
        out.extend_from_slice(&[0u8; 2 * BLOCK]);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, &[u8])]) -> Vec<u8> {
        write::ustar(files).unwrap()
    }

    #[test]
    fn writer_rejects_bad_names() {
        assert!(write::ustar(&[("", b"")]).is_err());
        assert!(write::ustar(&[(&"x".repeat(100), b"")]).is_err());
    }

    #[test]
    fn finds_files_by_name() {
        let bytes = archive(&[("cmdline", b"test=SMP0001"), ("./system.toml", b"x = 1\n")]);
        assert_eq!(Archive::find(&bytes, "cmdline"), Ok(Some(&b"test=SMP0001"[..])));
        assert_eq!(Archive::find(&bytes, "system.toml"), Ok(Some(&b"x = 1\n"[..])));
        assert_eq!(Archive::find(&bytes, "missing"), Ok(None));
    }

    #[test]
    fn empty_input_is_an_empty_archive() {
        assert_eq!(Archive::new(&[]).count(), 0);
        assert_eq!(Archive::new(&[0u8; 1024]).count(), 0);
    }

    #[test]
    fn reads_what_gnu_tar_writes() {
        let dir = std::env::temp_dir().join(format!("boot-args-tar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cmdline"), b"smp.skip=2 test=SMP0002").unwrap();
        let tar = dir.join("out.tar");
        let status = std::process::Command::new("tar")
            .args(["--format=ustar", "-cf"])
            .arg(&tar)
            .arg("-C")
            .arg(&dir)
            .arg("cmdline")
            .status();
        let Ok(status) = status else { return }; // no tar on this host
        assert!(status.success());
        let bytes = std::fs::read(&tar).unwrap();
        assert_eq!(Archive::find(&bytes, "cmdline"), Ok(Some(&b"smp.skip=2 test=SMP0002"[..])));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn corrupt_checksum_is_an_error() {
        let mut bytes = archive(&[("cmdline", b"abc")]);
        bytes[0] = b'X';
        assert_eq!(Archive::find(&bytes, "cmdline"), Err(ArchiveError::BadChecksum { offset: 0 }));
    }

    #[test]
    fn size_past_the_end_is_an_error() {
        let mut bytes = archive(&[("cmdline", b"abc")]);
        bytes.truncate(BLOCK + 2);
        assert_eq!(Archive::find(&bytes, "cmdline"), Err(ArchiveError::TruncatedData { offset: 0 }));
    }

    #[test]
    fn short_header_is_an_error() {
        let bytes = archive(&[("cmdline", b"abc")]);
        assert_eq!(Archive::find(&bytes[..100], "x"), Err(ArchiveError::TruncatedHeader { offset: 0 }));
    }

    #[test]
    fn garbage_never_panics() {
        // A small deterministic generator: every prefix and mutation of a
        // valid archive either parses or errors.
        let base = archive(&[("a", b"hello"), ("b", &[7u8; 700])]);
        let mut state = 0x1234_5678_9abc_def0u64;
        for _ in 0..2000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut bytes = base.clone();
            let at = (state as usize) % bytes.len();
            bytes[at] = (state >> 32) as u8;
            let cut = (state >> 40) as usize % (bytes.len() + 1);
            for entry in Archive::new(&bytes[..cut]) {
                let _ = entry;
            }
        }
    }

    #[test]
    fn cmdline_pairs() {
        let cmd = CmdLine::new("  test=SMP0001 verbose smp.skip=2 test=SMP0002\n");
        assert_eq!(cmd.get("test"), Some("SMP0002"));
        assert_eq!(cmd.get("verbose"), Some(""));
        assert_eq!(cmd.get("smp.skip"), Some("2"));
        assert_eq!(cmd.get("nope"), None);
        assert_eq!(cmd.pairs().count(), 4);
    }
}
