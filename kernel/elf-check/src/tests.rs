//! Host tests: a small ELF builder, one test per accepted shape and per
//! refusal (matching the exact `ElfError` variant), and fuzzing (a seeded
//! mutation loop plus proptest) asserting no panic and that every plan that
//! comes out keeps the crate's invariants.

use super::*;
use proptest::prelude::*;

const TEXT: u64 = 0x20_1000;
const RODATA: u64 = 0x20_4000;
const DATA: u64 = 0x20_6000;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PT_GNU_RELRO: u32 = 0x6474_e552;
const R: u32 = PF_R;
const RW: u32 = PF_R | PF_W;
const RX: u32 = PF_R | PF_X;

/// A program header for the builder; `file_offset: None` lets the builder
/// place the bytes (page-congruent with `vaddr`) after everything else.
#[derive(Clone, Debug)]
struct TestHeader {
    kind: u32,
    flags: u32,
    file_offset: Option<u64>,
    vaddr: u64,
    filesz: u64,
    memsz: u64,
    align: u64,
}

fn load(flags: u32, vaddr: u64, filesz: u64, memsz: u64) -> TestHeader {
    TestHeader { kind: PT_LOAD, flags, file_offset: None, vaddr, filesz, memsz, align: PAGE_SIZE }
}

fn other(kind: u32, flags: u32) -> TestHeader {
    TestHeader { kind, flags, file_offset: Some(0), vaddr: 0, filesz: 0, memsz: 0, align: 8 }
}

/// Builds ELF64 files field by field, valid by default.
#[derive(Clone, Debug)]
struct ElfBuilder {
    class: u8,
    data_encoding: u8,
    ident_version: u8,
    file_type: u16,
    machine: u16,
    version: u32,
    entry: u64,
    program_header_entry_size: u16,
    /// Overrides `e_phnum` (default: `headers.len()`).
    program_header_count: Option<u16>,
    /// Overrides `e_phoff` (default: 64, right after the file header).
    program_header_offset: Option<u64>,
    headers: Vec<TestHeader>,
}

impl ElfBuilder {
    /// A plausible static server: text, rodata, data+bss, a stack note, and
    /// program header types that must be ignored.
    fn server() -> Self {
        Self {
            class: ELFCLASS64,
            data_encoding: ELFDATA2LSB,
            ident_version: 1,
            file_type: ET_EXEC,
            machine: EM_X86_64,
            version: EV_CURRENT,
            entry: TEXT + 0x10,
            program_header_entry_size: 56,
            program_header_count: None,
            program_header_offset: None,
            headers: vec![
                other(PT_PHDR, R),
                load(RX, TEXT, 0x1234, 0x1234),
                load(R, RODATA, 0x800, 0x800),
                load(RW, DATA, 0x100, 0x3000),
                other(PT_GNU_RELRO, R),
                other(PT_NOTE, R),
                other(PT_GNU_STACK, RW),
            ],
        }
    }

    /// One executable segment and nothing else.
    fn minimal() -> Self {
        Self { headers: vec![load(RX, TEXT, 0x100, 0x100)], ..Self::server() }
    }

    fn with_headers(mut self, headers: Vec<TestHeader>) -> Self {
        self.headers = headers;
        self
    }

    fn build(&self) -> Vec<u8> {
        let count = self.program_header_count.unwrap_or(self.headers.len() as u16);
        let table_offset = self.program_header_offset.unwrap_or(64);
        let mut file = vec![0u8; 64];
        file[..4].copy_from_slice(&ELF_MAGIC);
        file[4] = self.class;
        file[5] = self.data_encoding;
        file[6] = self.ident_version;
        file[16..18].copy_from_slice(&self.file_type.to_le_bytes());
        file[18..20].copy_from_slice(&self.machine.to_le_bytes());
        file[20..24].copy_from_slice(&self.version.to_le_bytes());
        file[24..32].copy_from_slice(&self.entry.to_le_bytes());
        file[32..40].copy_from_slice(&table_offset.to_le_bytes());
        file[52..54].copy_from_slice(&64u16.to_le_bytes());
        file[54..56].copy_from_slice(&self.program_header_entry_size.to_le_bytes());
        file[56..58].copy_from_slice(&count.to_le_bytes());

        // Place segment bytes after the table, each congruent with its vaddr.
        let mut cursor = 64 + 56 * self.headers.len() as u64;
        let mut placed = Vec::new();
        for header in &self.headers {
            let offset = header.file_offset.unwrap_or_else(|| {
                let page = cursor.div_ceil(PAGE_SIZE) * PAGE_SIZE;
                page + (header.vaddr & PAGE_OFFSET_MASK)
            });
            if header.kind == PT_LOAD && header.file_offset.is_none() {
                cursor = cursor.max(offset.saturating_add(header.filesz));
            }
            placed.push(offset);
        }
        for (index, header) in self.headers.iter().enumerate() {
            file.extend_from_slice(&header.kind.to_le_bytes());
            file.extend_from_slice(&header.flags.to_le_bytes());
            file.extend_from_slice(&placed[index].to_le_bytes());
            file.extend_from_slice(&header.vaddr.to_le_bytes());
            file.extend_from_slice(&header.vaddr.to_le_bytes()); // p_paddr
            file.extend_from_slice(&header.filesz.to_le_bytes());
            file.extend_from_slice(&header.memsz.to_le_bytes());
            file.extend_from_slice(&header.align.to_le_bytes());
        }
        file.resize(cursor as usize, 0);
        // Fill each segment's bytes with its index + 1, to check file_data.
        for (index, header) in self.headers.iter().enumerate() {
            if header.kind == PT_LOAD && header.file_offset.is_none() {
                let start = placed[index] as usize;
                let end = start + header.filesz as usize;
                file[start..end].fill(index as u8 + 1);
            }
        }
        file
    }
}

fn check(builder: &ElfBuilder) -> Result<LoadPlan<'static>, ElfError> {
    let bytes: &'static [u8] = Vec::leak(builder.build());
    let result = check_elf(bytes, &Limits::SERVER_DEFAULT);
    if let Ok(plan) = &result {
        assert_plan_invariants(bytes, &Limits::SERVER_DEFAULT, plan);
    }
    result
}

fn refused(builder: &ElfBuilder) -> ElfError {
    match check(builder) {
        Ok(plan) => panic!("expected a refusal, got {plan:?}"),
        Err(error) => error,
    }
}

/// Everything the crate docs promise about a plan.
fn assert_plan_invariants(elf: &[u8], limits: &Limits, plan: &LoadPlan<'_>) {
    let segments = plan.segments();
    assert!(!segments.is_empty() && segments.len() <= MAX_LOAD_SEGMENTS);
    for segment in segments {
        assert!(segment.memsz > 0);
        assert!(segment.filesz() <= segment.memsz);
        assert!(segment.page_start >= limits.user_min && segment.page_end <= limits.user_max);
        assert!(segment.page_start <= segment.vaddr && segment.vaddr_end() <= segment.page_end);
        assert_eq!(segment.page_start % PAGE_SIZE, 0);
        assert_eq!(segment.page_end % PAGE_SIZE, 0);
        assert!(!(segment.permissions.write && segment.permissions.execute));
        let start = segment.file_offset as usize;
        assert_eq!(elf.get(start..start + segment.file_data.len()), Some(segment.file_data));
        if !segment.file_data.is_empty() {
            assert_eq!(segment.vaddr % PAGE_SIZE, segment.file_offset % PAGE_SIZE);
        }
    }
    for (position, first) in segments.iter().enumerate() {
        for second in &segments[position + 1..] {
            assert!(first.page_end <= second.page_start || second.page_end <= first.page_start);
        }
    }
    assert!(segments.iter().any(|s| s.permissions.execute && s.contains(plan.entry())));
    assert!(plan.mapped_bytes() <= limits.max_mapped_bytes);
    if let Some(stack) = plan.stack() {
        assert!(!stack.permissions.execute);
    }
}

// ---- accepted ----

#[test]
fn accepts_a_typical_server() {
    let builder = ElfBuilder::server();
    let bytes = builder.build();
    let plan = check_elf(&bytes, &Limits::default()).expect("valid server");
    assert_eq!(plan.entry(), TEXT + 0x10);
    let segments = plan.segments();
    assert_eq!(segments.len(), 3);

    let text = &segments[0];
    assert_eq!(text.program_header_index, 1);
    assert_eq!((text.vaddr, text.memsz, text.filesz()), (TEXT, 0x1234, 0x1234));
    assert_eq!((text.page_start, text.page_end), (TEXT, TEXT + 0x2000));
    assert_eq!(text.permissions, Permissions { read: true, write: false, execute: true });
    assert_eq!(text.permissions.to_string(), "r-x");
    assert_eq!(text.align, PAGE_SIZE);
    assert_eq!(text.file_offset % PAGE_SIZE, 0);
    assert!(text.file_data.iter().all(|&byte| byte == 2));

    let rodata = &segments[1];
    assert_eq!(rodata.program_header_index, 2);
    assert_eq!(rodata.permissions.to_string(), "r--");

    let data = &segments[2];
    assert_eq!(data.program_header_index, 3);
    assert_eq!((data.vaddr, data.memsz, data.filesz()), (DATA, 0x3000, 0x100));
    assert_eq!(data.permissions.to_string(), "rw-");
    assert!(data.file_data.iter().all(|&byte| byte == 4));

    let stack = plan.stack().expect("PT_GNU_STACK noted");
    assert_eq!(stack.program_header_index, 6);
    assert_eq!(stack.permissions.to_string(), "rw-");
    assert_eq!(plan.mapped_bytes(), 0x2000 + 0x1000 + 0x3000);
    assert_plan_invariants(&bytes, &Limits::default(), &plan);
}

#[test]
fn accepts_segments_at_the_edges_of_user_space() {
    let limits = Limits::SERVER_DEFAULT;
    let builder = ElfBuilder::minimal()
        .with_headers(vec![load(RX, limits.user_min, 0x10, 0x10), load(RW, limits.user_max - PAGE_SIZE, 0, PAGE_SIZE)]);
    let builder = ElfBuilder { entry: limits.user_min, ..builder };
    let plan = check(&builder).expect("segments touching both ends");
    assert_eq!(plan.segments()[1].page_end, limits.user_max);
}

#[test]
fn accepts_adjacent_segments_on_separate_pages() {
    let builder =
        ElfBuilder::minimal().with_headers(vec![load(RX, TEXT, 0x1000, 0x1000), load(RW, TEXT + 0x1000, 0x10, 0x10)]);
    assert_eq!(check(&builder).expect("adjacent pages").segments().len(), 2);
}

#[test]
fn accepts_bss_only_segment_with_any_offset() {
    let mut bss = load(RW, DATA + 0x123, 0, 0x5000);
    bss.file_offset = Some(u64::MAX);
    let builder = ElfBuilder::minimal().with_headers(vec![load(RX, TEXT, 0x100, 0x100), bss]);
    let plan = check(&builder).expect("bss-only segment");
    let bss = &plan.segments()[1];
    assert!(bss.file_data.is_empty());
    assert_eq!(bss.file_offset, 0);
    assert_eq!((bss.page_start, bss.page_end), (DATA, DATA + 0x6000));
}

#[test]
fn skips_empty_load_segments() {
    let mut empty = load(RW, 0xdead_0000_0000_0000, 0, 0);
    empty.file_offset = Some(u64::MAX);
    let builder = ElfBuilder::minimal().with_headers(vec![empty, load(RX, TEXT, 0x100, 0x100)]);
    let plan = check(&builder).expect("empty segment skipped");
    assert_eq!(plan.segments().len(), 1);
    assert_eq!(plan.segments()[0].program_header_index, 1);
}

#[test]
fn accepts_alignment_zero_one_and_huge() {
    for align in [0, 1, 0x20_0000] {
        let mut text = load(RX, TEXT, 0x100, 0x100);
        text.align = align;
        let builder = ElfBuilder::minimal().with_headers(vec![text]);
        assert_eq!(check(&builder).expect("alignment").segments()[0].align, align);
    }
}

#[test]
fn accepts_no_stack_note_and_unaligned_segment_start() {
    let builder = ElfBuilder {
        entry: TEXT + 0x808,
        ..ElfBuilder::minimal().with_headers(vec![load(RX, TEXT + 0x800, 0x10, 0x10)])
    };
    let plan = check(&builder).expect("unaligned start");
    assert_eq!(plan.stack(), None);
    assert_eq!(plan.segments()[0].page_start, TEXT);
    assert_eq!(plan.segments()[0].file_offset % PAGE_SIZE, 0x800);
}

#[test]
fn accepts_exactly_the_maximum_segment_count() {
    let headers = (0..MAX_LOAD_SEGMENTS as u64).map(|n| load(RX, TEXT + n * PAGE_SIZE, 0x100, 0x100)).collect();
    let plan = check(&ElfBuilder::minimal().with_headers(headers)).expect("16 segments");
    assert_eq!(plan.segments().len(), MAX_LOAD_SEGMENTS);
}

// ---- refused: file header ----

#[test]
fn refuses_truncated_file_header() {
    let bytes = ElfBuilder::server().build();
    for len in [0, 3, 4, 10, 63] {
        assert_eq!(
            check_elf(&bytes[..len], &Limits::default()).unwrap_err(),
            ElfError::TruncatedFileHeader { file_len: len }
        );
    }
}

#[test]
fn refuses_non_elf() {
    let mut bytes = ElfBuilder::server().build();
    bytes[1] = b'X';
    assert_eq!(
        check_elf(&bytes, &Limits::default()).unwrap_err(),
        ElfError::NotElf { magic: [0x7f, b'X', b'L', b'F'] }
    );
    // Short garbage is "not ELF", not "truncated".
    assert_eq!(check_elf(b"#!/bin/sh", &Limits::default()).unwrap_err(), ElfError::NotElf { magic: *b"#!/b" });
}

#[test]
fn refuses_wrong_identification() {
    let base = ElfBuilder::server();
    assert_eq!(refused(&ElfBuilder { class: 1, ..base.clone() }), ElfError::WrongClass { class: 1 });
    assert_eq!(
        refused(&ElfBuilder { data_encoding: 2, ..base.clone() }),
        ElfError::WrongEndianness { data_encoding: 2 }
    );
    assert_eq!(refused(&ElfBuilder { ident_version: 0, ..base.clone() }), ElfError::WrongVersion { version: 0 });
    assert_eq!(refused(&ElfBuilder { version: 2, ..base.clone() }), ElfError::WrongVersion { version: 2 });
    assert_eq!(
        refused(&ElfBuilder { machine: 183, ..base.clone() }), // EM_AARCH64
        ElfError::WrongMachine { machine: 183 }
    );
    assert_eq!(
        refused(&ElfBuilder { machine: 3, ..base }), // EM_386
        ElfError::WrongMachine { machine: 3 }
    );
}

#[test]
fn refuses_wrong_type() {
    let base = ElfBuilder::server();
    assert_eq!(refused(&ElfBuilder { file_type: ET_DYN, ..base.clone() }), ElfError::PositionIndependent);
    for file_type in [0, 1, 4, 0xfe00] {
        assert_eq!(refused(&ElfBuilder { file_type, ..base.clone() }), ElfError::WrongType { file_type });
    }
}

#[test]
fn refuses_odd_program_header_tables() {
    let base = ElfBuilder::server();
    assert_eq!(
        refused(&ElfBuilder { program_header_entry_size: 32, ..base.clone() }),
        ElfError::WrongProgramHeaderSize { entry_size: 32 }
    );
    assert_eq!(
        refused(&ElfBuilder { program_header_count: Some(0xffff), ..base }),
        ElfError::ExtendedProgramHeaderCount
    );
}

#[test]
fn refuses_truncated_program_headers() {
    let bytes = ElfBuilder::server().build();
    let cut = 64 + 56 * 3 + 10;
    assert_eq!(
        check_elf(&bytes[..cut], &Limits::default()).unwrap_err(),
        ElfError::TruncatedProgramHeaders { table_offset: 64, count: 7, file_len: cut }
    );
    for table_offset in [u64::MAX, u64::MAX - 55, bytes.len() as u64 - 100] {
        let builder = ElfBuilder { program_header_offset: Some(table_offset), ..ElfBuilder::server() };
        let len = builder.build().len();
        assert_eq!(refused(&builder), ElfError::TruncatedProgramHeaders { table_offset, count: 7, file_len: len });
    }
    let builder = ElfBuilder { program_header_count: Some(0xfffe), ..ElfBuilder::server() };
    assert!(matches!(refused(&builder), ElfError::TruncatedProgramHeaders { count: 0xfffe, .. }));
}

// ---- refused: program header kinds ----

#[test]
fn refuses_dynamic_linking_and_tls() {
    for kind in [PT_INTERP, PT_DYNAMIC] {
        let mut builder = ElfBuilder::server();
        builder.headers.insert(2, other(kind, R));
        assert_eq!(refused(&builder), ElfError::DynamicallyLinked { index: 2, header_kind: kind });
    }
    let mut builder = ElfBuilder::server();
    builder.headers.push(other(PT_TLS, R));
    assert_eq!(refused(&builder), ElfError::TlsNotSupported { index: 7 });
}

#[test]
fn refuses_executable_stack() {
    let mut builder = ElfBuilder::server();
    builder.headers[6] = other(PT_GNU_STACK, RW | PF_X);
    assert_eq!(refused(&builder), ElfError::ExecutableStack { index: 6 });
}

#[test]
fn refuses_too_many_segments() {
    let headers = (0..MAX_LOAD_SEGMENTS as u64 + 1).map(|n| load(RX, TEXT + n * PAGE_SIZE, 0x100, 0x100)).collect();
    assert_eq!(
        refused(&ElfBuilder::minimal().with_headers(headers)),
        ElfError::TooManySegments { index: MAX_LOAD_SEGMENTS, max: MAX_LOAD_SEGMENTS }
    );
}

// ---- refused: one segment ----

#[test]
fn refuses_file_size_larger_than_memory_size() {
    let builder = ElfBuilder::minimal().with_headers(vec![load(RX, TEXT, 0x200, 0x100)]);
    assert_eq!(refused(&builder), ElfError::FileSizeExceedsMemorySize { index: 0, filesz: 0x200, memsz: 0x100 });
}

#[test]
fn refuses_alignment_not_a_power_of_two() {
    for align in [3, 0x1001, u64::MAX] {
        let mut text = load(RX, TEXT, 0x100, 0x100);
        text.align = align;
        assert_eq!(
            refused(&ElfBuilder::minimal().with_headers(vec![text])),
            ElfError::AlignmentNotPowerOfTwo { index: 0, align }
        );
    }
}

#[test]
fn refuses_vaddr_and_offset_differing_modulo_page_size() {
    let mut text = load(RX, TEXT, 0x100, 0x100);
    text.file_offset = Some(0x10);
    assert_eq!(
        refused(&ElfBuilder::minimal().with_headers(vec![text])),
        ElfError::MisalignedSegment { index: 0, vaddr: TEXT, file_offset: 0x10 }
    );
}

#[test]
fn refuses_segment_data_past_end_of_file() {
    let builder = ElfBuilder::server();
    let bytes = builder.build();
    let cut = bytes.len() - 1;
    let error = check_elf(&bytes[..cut], &Limits::default()).unwrap_err();
    assert!(matches!(error, ElfError::TruncatedSegment { index: 3, filesz: 0x100, file_len, .. } if file_len == cut));

    for file_offset in [!PAGE_OFFSET_MASK, 0x7fff_ffff_ffff_f000] {
        let mut text = load(RX, TEXT, 0x100, 0x100);
        text.file_offset = Some(file_offset);
        let builder = ElfBuilder::minimal().with_headers(vec![text]);
        let len = builder.build().len();
        assert_eq!(
            refused(&builder),
            ElfError::TruncatedSegment { index: 0, file_offset, filesz: 0x100, file_len: len }
        );
    }
}

#[test]
fn refuses_segment_in_the_kernel_half() {
    let limits = Limits::SERVER_DEFAULT;
    let start = 0xffff_8000_0000_1000;
    let builder = ElfBuilder::minimal().with_headers(vec![
        load(RX, TEXT, 0x100, 0x100),
        load(R, DATA, 0, 0x10),
        load(RW, start, 0, 0x1000),
    ]);
    let error = refused(&builder);
    assert_eq!(
        error,
        ElfError::OutsideUserSpace {
            index: 2,
            start,
            end: start + 0x1000,
            user_min: limits.user_min,
            user_max: limits.user_max
        }
    );
    assert_eq!(
        error.to_string(),
        "segment 2 at 0xffff800000001000..0xffff800000002000 reaches outside user space \
         0x200000..0x800000000000"
    );
}

#[test]
fn refuses_segments_crossing_the_user_range_edges() {
    let limits = Limits::SERVER_DEFAULT;
    let cases = [
        (0, 0x1000),                                 // null page
        (limits.user_min - 0x10, 0x20),              // straddles user_min
        (limits.user_min - PAGE_SIZE + 0xff0, 0x20), // starts on the page below user_min
        (limits.user_max - 0x10, 0x20),              // straddles user_max
        (limits.user_max - 0x10, 0x10 + 1),          // ends one byte past user_max
        (limits.user_max, 0x10),                     // non-canonical hole
        (u64::MAX - 0xfff, 0x10),                    // last page: rounding up overflows
    ];
    for (vaddr, memsz) in cases {
        let builder = ElfBuilder::minimal().with_headers(vec![load(RX, TEXT, 0x100, 0x100), load(RW, vaddr, 0, memsz)]);
        assert_eq!(
            refused(&builder),
            ElfError::OutsideUserSpace {
                index: 1,
                start: vaddr,
                end: vaddr + memsz,
                user_min: limits.user_min,
                user_max: limits.user_max,
            },
            "segment at {vaddr:#x}+{memsz:#x}"
        );
    }
}

#[test]
fn refuses_address_wrapping_past_the_top() {
    let builder = ElfBuilder::minimal()
        .with_headers(vec![load(RX, TEXT, 0x100, 0x100), load(RW, 0xffff_ffff_ffff_0000, 0, 0x1_0000)]);
    assert_eq!(
        refused(&builder),
        ElfError::AddressOverflow { index: 1, vaddr: 0xffff_ffff_ffff_0000, memsz: 0x1_0000 }
    );
}

#[test]
fn refuses_writable_and_executable_segment() {
    let builder = ElfBuilder::minimal().with_headers(vec![load(RW | PF_X, TEXT, 0x100, 0x100)]);
    let error = refused(&builder);
    assert_eq!(error, ElfError::WritableAndExecutable { index: 0, start: TEXT, end: TEXT + 0x100 });
    // Write+execute without read is just as bad.
    let builder = ElfBuilder::minimal().with_headers(vec![load(PF_W | PF_X, TEXT, 0x100, 0x100)]);
    assert!(matches!(refused(&builder), ElfError::WritableAndExecutable { index: 0, .. }));
}

// ---- refused: segments together ----

#[test]
fn refuses_segments_sharing_a_page() {
    // Different permissions in one page: the W^X case.
    let builder =
        ElfBuilder::minimal().with_headers(vec![load(RX, TEXT, 0x800, 0x800), load(RW, TEXT + 0x800, 0x10, 0x100)]);
    assert_eq!(
        refused(&builder),
        ElfError::OverlappingSegments {
            first_index: 0,
            first_pages: (TEXT, TEXT + 0x1000),
            second_index: 1,
            second_pages: (TEXT, TEXT + 0x1000),
        }
    );
    // Byte-overlapping, found regardless of order, with a skipped header between.
    let builder = ElfBuilder::minimal().with_headers(vec![
        load(RW, DATA + 0x1000, 0, 0x3000),
        other(PT_NOTE, R),
        load(RX, TEXT, 0x100, 0x100),
        load(R, DATA, 0x10, 0x2000),
    ]);
    assert_eq!(
        refused(&builder),
        ElfError::OverlappingSegments {
            first_index: 0,
            first_pages: (DATA + 0x1000, DATA + 0x4000),
            second_index: 3,
            second_pages: (DATA, DATA + 0x2000),
        }
    );
}

#[test]
fn refuses_no_loadable_segments() {
    let only_notes = ElfBuilder::minimal().with_headers(vec![other(PT_NOTE, R), other(PT_GNU_STACK, RW)]);
    assert_eq!(refused(&only_notes), ElfError::NoLoadableSegments);
    assert_eq!(refused(&ElfBuilder::minimal().with_headers(vec![])), ElfError::NoLoadableSegments);
    let only_empty = ElfBuilder::minimal().with_headers(vec![load(RX, TEXT, 0, 0)]);
    assert_eq!(refused(&only_empty), ElfError::NoLoadableSegments);
}

#[test]
fn refuses_entry_outside_executable_segments() {
    let base = ElfBuilder::server();
    for entry in [0, TEXT - 1, TEXT + 0x1234, u64::MAX] {
        assert_eq!(
            refused(&ElfBuilder { entry, ..base.clone() }),
            ElfError::EntryNotExecutable { entry, containing_segment: None },
            "entry {entry:#x}"
        );
    }
    assert_eq!(
        refused(&ElfBuilder { entry: DATA + 0x2000, ..base.clone() }),
        ElfError::EntryNotExecutable { entry: DATA + 0x2000, containing_segment: Some(3) }
    );
    assert_eq!(
        refused(&ElfBuilder { entry: RODATA, ..base }),
        ElfError::EntryNotExecutable { entry: RODATA, containing_segment: Some(2) }
    );
}

#[test]
fn refuses_too_much_memory() {
    let bytes = ElfBuilder::server().build();
    let limits = Limits { max_mapped_bytes: 0x5fff, ..Limits::SERVER_DEFAULT };
    assert_eq!(
        check_elf(&bytes, &limits).unwrap_err(),
        ElfError::TooLarge { mapped_bytes: 0x6000, max_mapped_bytes: 0x5fff }
    );
    let limits = Limits { max_mapped_bytes: 0x6000, ..Limits::SERVER_DEFAULT };
    assert!(check_elf(&bytes, &limits).is_ok());
    // One huge bss is counted too.
    let builder = ElfBuilder::minimal()
        .with_headers(vec![load(RX, TEXT, 0x100, 0x100), load(RW, 0x1000_0000, 0, 0x7000_0000_0000)]);
    assert!(matches!(refused(&builder), ElfError::TooLarge { mapped_bytes: 0x7000_0000_1000, .. }));
}

// ---- messages ----

#[test]
fn every_message_is_one_informative_line() {
    let errors = [
        ElfError::TruncatedFileHeader { file_len: 10 },
        ElfError::NotElf { magic: *b"MZ\x90\0" },
        ElfError::WrongClass { class: 1 },
        ElfError::WrongEndianness { data_encoding: 2 },
        ElfError::WrongVersion { version: 0 },
        ElfError::WrongMachine { machine: 183 },
        ElfError::PositionIndependent,
        ElfError::WrongType { file_type: 1 },
        ElfError::WrongProgramHeaderSize { entry_size: 32 },
        ElfError::ExtendedProgramHeaderCount,
        ElfError::TruncatedProgramHeaders { table_offset: 64, count: 3, file_len: 100 },
        ElfError::DynamicallyLinked { index: 1, header_kind: PT_INTERP },
        ElfError::DynamicallyLinked { index: 1, header_kind: PT_DYNAMIC },
        ElfError::TlsNotSupported { index: 4 },
        ElfError::ExecutableStack { index: 5 },
        ElfError::TooManySegments { index: 16, max: 16 },
        ElfError::FileSizeExceedsMemorySize { index: 1, filesz: 2, memsz: 1 },
        ElfError::AlignmentNotPowerOfTwo { index: 1, align: 3 },
        ElfError::MisalignedSegment { index: 1, vaddr: 0x201000, file_offset: 0x10 },
        ElfError::TruncatedSegment { index: 1, file_offset: 0x1000, filesz: 0x100, file_len: 0x1010 },
        ElfError::AddressOverflow { index: 1, vaddr: u64::MAX, memsz: 2 },
        ElfError::OutsideUserSpace { index: 1, start: 0, end: 0x1000, user_min: 0x200000, user_max: 1 << 47 },
        ElfError::WritableAndExecutable { index: 1, start: 0x201000, end: 0x202000 },
        ElfError::OverlappingSegments {
            first_index: 0,
            first_pages: (0x201000, 0x202000),
            second_index: 1,
            second_pages: (0x201000, 0x203000),
        },
        ElfError::NoLoadableSegments,
        ElfError::EntryNotExecutable { entry: 0x1234, containing_segment: None },
        ElfError::EntryNotExecutable { entry: 0x201000, containing_segment: Some(2) },
        ElfError::TooLarge { mapped_bytes: 0x2000, max_mapped_bytes: 0x1000 },
    ];
    for error in errors {
        let message = error.to_string();
        println!("{message}");
        assert!(message.len() > 20 && !message.contains('\n') && !message.ends_with('.'), "{message:?}");
    }
    let messages: Vec<String> = [
        ElfError::WritableAndExecutable { index: 3, start: 0x201000, end: 0x202000 },
        ElfError::PositionIndependent,
        ElfError::TlsNotSupported { index: 4 },
        ElfError::DynamicallyLinked { index: 1, header_kind: PT_INTERP },
        ElfError::EntryNotExecutable { entry: 0x201000, containing_segment: Some(2) },
        ElfError::OverlappingSegments {
            first_index: 0,
            first_pages: (0x201000, 0x202000),
            second_index: 1,
            second_pages: (0x201000, 0x203000),
        },
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    assert_eq!(messages[0], "segment 3 at 0x201000..0x202000 is both writable and executable (W^X)");
    assert!(messages[1].contains("static, non-PIE, at a fixed user address"));
    assert!(messages[2].contains("TLS") || messages[2].contains("thread-local storage is not supported"));
    assert!(messages[3].contains("PT_INTERP") && messages[3].contains("dynamically linked"));
    assert_eq!(messages[4], "entry point 0x201000 is in segment 2, which is not executable");
    assert_eq!(
        messages[5],
        "segments 0 (pages 0x201000..0x202000) and 1 (pages 0x201000..0x203000) share a page; \
         each page needs one set of permissions"
    );
}

// ---- fuzzing ----

/// xorshift64*: deterministic, dependency-free randomness for the mutation
/// loop.
struct Xorshift(u64);

impl Xorshift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }
}

/// Values that sit on the edges the checks care about.
const INTERESTING: [u64; 14] = [
    0,
    1,
    0x38,
    0x40,
    0xfff,
    0x1000,
    0x20_0000,
    0x20_1000,
    0x7fff_ffff_f000,
    0x8000_0000_0000,
    0xffff_8000_0000_0000,
    u64::MAX - 0xfff,
    u64::MAX - 1,
    u64::MAX,
];

/// Applies one random mutation to `file`.
fn mutate(file: &mut Vec<u8>, rng: &mut Xorshift) {
    if file.is_empty() {
        return;
    }
    match rng.below(5) {
        0 => {
            let at = rng.below(file.len());
            file[at] = rng.next() as u8;
        }
        1 => {
            let at = rng.below(file.len());
            file[at] ^= 1 << rng.below(8);
        }
        2 => {
            // An interesting value over a field, most often in the headers.
            let limit = if rng.below(4) == 0 { file.len() } else { file.len().min(64 + 56 * 7) };
            let at = rng.below(limit);
            let value = INTERESTING[rng.below(INTERESTING.len())].wrapping_add(rng.below(3) as u64).wrapping_sub(1);
            let width = [1, 2, 4, 8][rng.below(4)];
            for (offset, byte) in value.to_le_bytes().iter().take(width).enumerate() {
                if let Some(slot) = file.get_mut(at + offset) {
                    *slot = *byte;
                }
            }
        }
        3 => {
            let len = rng.below(file.len() + 1);
            file.truncate(len);
        }
        _ => {
            let extra = rng.below(64);
            file.extend((0..extra).map(|_| rng.next() as u8));
        }
    }
}

#[test]
fn seeded_mutations_never_panic_and_plans_keep_invariants() {
    let limits = Limits::SERVER_DEFAULT;
    let seeds = [ElfBuilder::server().build(), ElfBuilder::minimal().build()];
    let mut rng = Xorshift(0x9e37_79b9_7f4a_7c15);
    let mut accepted = 0;
    let mut refused = 0;
    for iteration in 0..40_000 {
        let mut file = seeds[iteration % seeds.len()].clone();
        for _ in 0..1 + rng.below(4) {
            mutate(&mut file, &mut rng);
        }
        match check_elf(&file, &limits) {
            Ok(plan) => {
                assert_plan_invariants(&file, &limits, &plan);
                accepted += 1;
            }
            Err(error) => {
                assert!(!error.to_string().is_empty());
                refused += 1;
            }
        }
    }
    println!("accepted {accepted}, refused {refused}");
    // Both outcomes are exercised, so the loop is not testing only one path.
    assert!(accepted > 1000 && refused > 1000, "accepted {accepted}, refused {refused}");
}

#[test]
fn every_truncation_is_refused_without_panic() {
    let bytes = ElfBuilder::server().build();
    for len in 0..bytes.len() {
        assert!(check_elf(&bytes[..len], &Limits::default()).is_err(), "length {len}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(plan) = check_elf(&bytes, &Limits::SERVER_DEFAULT) {
            assert_plan_invariants(&bytes, &Limits::SERVER_DEFAULT, &plan);
        }
    }

    #[test]
    fn header_overwrites_never_panic(
        writes in proptest::collection::vec((0usize..64 + 56 * 7, any::<u64>(), 1usize..=8), 1..6),
        truncate_to in proptest::option::of(0usize..0x8000),
    ) {
        let mut bytes = ElfBuilder::server().build();
        for (at, value, width) in writes {
            for (offset, byte) in value.to_le_bytes().iter().take(width).enumerate() {
                if let Some(slot) = bytes.get_mut(at + offset) {
                    *slot = *byte;
                }
            }
        }
        if let Some(len) = truncate_to {
            bytes.truncate(len);
        }
        if let Ok(plan) = check_elf(&bytes, &Limits::SERVER_DEFAULT) {
            assert_plan_invariants(&bytes, &Limits::SERVER_DEFAULT, &plan);
        }
    }
}
