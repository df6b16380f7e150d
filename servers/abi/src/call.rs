//! System calls as values: the registers a server passes, decoded once
//! into a [`Syscall`] or an error code. The kernel dispatches on the
//! decoded value only; nothing else reads the raw registers.
//!
//! Invariants: decoding looks at the call number and the arguments the
//! call takes, checks what can be checked without the server's memory
//! (lengths, flag values), and never trusts a pointer: a pointer comes out
//! as a [`UserRange`], an allegation the kernel must check against the
//! server's page tables before it touches a byte.

use crate::{LOG_MAX, POWER_CONTROL_MAX, USER_END, USER_MIN, err, nr};

/// Longest benchmark phase name `bench_mark` accepts.
pub const PHASE_NAME_MAX: usize = 32;

/// A range of the server's memory, as the server claims it: not yet
/// checked against anything but arithmetic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserRange {
    pub addr: u64,
    pub len: u64,
}

impl UserRange {
    /// Whether the range lies in the user half (`USER_MIN..USER_END`)
    /// without wrapping. Mapping and access are the kernel's to check.
    pub fn in_user_half(&self) -> bool {
        match self.addr.checked_add(self.len) {
            Some(end) => self.addr >= USER_MIN && end <= USER_END,
            None => false,
        }
    }
}

/// Payload words of a synchronous message (40 bytes, as a ring message).
pub const SYNC_PAYLOAD_WORDS: usize = 5;

/// A message of a synchronous call or reply, carried in registers:
///
/// ```text
///  rsi = label | length << 32     (length in bytes, at most 40)
///  rdx = sequence                 (low 32 bits; the sender's own number)
///  r10, r8, r9, r12, r13 = payload bytes 0..8, 8..16, .., 32..40 (little endian)
///  rdi = on return: the badge of the server that sent it
/// ```
/// Every other register but `rax` (the result), `rcx` and `r11` is
/// preserved across `call` and `reply_recv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SyncMessage {
    pub label: u32,
    pub sequence: u32,
    /// Payload bytes in use (at most 40).
    pub len: u32,
    pub payload: [u64; SYNC_PAYLOAD_WORDS],
}

impl SyncMessage {
    /// Payload bytes a message can carry.
    pub const CAPACITY: usize = SYNC_PAYLOAD_WORDS * 8;

    /// The message in the registers `rsi, rdx, r10, r8, r9, r12, r13`.
    /// `Err(TOO_LONG)` if the length says more than 40 bytes.
    pub fn from_registers(rsi: u64, rdx: u64, payload: [u64; SYNC_PAYLOAD_WORDS]) -> Result<SyncMessage, i64> {
        let len = (rsi >> 32) as u32;
        if len as usize > Self::CAPACITY {
            return Err(err::TOO_LONG);
        }
        Ok(SyncMessage { label: rsi as u32, sequence: rdx as u32, len, payload })
    }

    /// The words for `rsi` and `rdx`.
    pub fn header_registers(&self) -> (u64, u64) {
        (u64::from(self.label) | (u64::from(self.len) << 32), u64::from(self.sequence))
    }

    /// A message with `bytes` as payload (`None` if over 40 bytes).
    pub fn with_payload(label: u32, sequence: u32, bytes: &[u8]) -> Option<SyncMessage> {
        if bytes.len() > Self::CAPACITY {
            return None;
        }
        let mut payload = [0u64; SYNC_PAYLOAD_WORDS];
        for (i, chunk) in bytes.chunks(8).enumerate() {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            payload[i] = u64::from_le_bytes(word);
        }
        Some(SyncMessage { label, sequence, len: bytes.len() as u32, payload })
    }

    /// The payload bytes in use.
    pub fn payload_bytes(&self) -> ([u8; Self::CAPACITY], usize) {
        let mut out = [0u8; Self::CAPACITY];
        for (i, word) in self.payload.iter().enumerate() {
            out[i * 8..i * 8 + 8].copy_from_slice(&word.to_le_bytes());
        }
        (out, (self.len as usize).min(Self::CAPACITY))
    }
}

/// One decoded system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// Print one line as this server (at most [`LOG_MAX`] bytes).
    Log {
        text: UserRange,
    },
    /// Stop this server for good.
    Exit {
        code: i64,
    },
    CoreId,
    /// Copy this server's name into `buf`.
    ServerName {
        buf: UserRange,
    },
    TscHz,
    /// Snapshot (`begin`) or print the counters of a benchmark phase.
    BenchMark {
        name: UserRange,
        begin: bool,
    },
    /// Make every mover scan `rings` extra empty rings per pass.
    BenchExtraRings {
        rings: u64,
    },
    Wait,
    /// Wake a mover that announced sleep: the one reading this server's
    /// outbox (`inbox: None`, argument 0), or the one writing inbox
    /// `inbox` (argument `1 + inbox`), which may sleep while it waits for
    /// room there (`ringbuf::Consumer::producer_waits_for_room`).
    WakeMover {
        inbox: Option<usize>,
    },
    PowerReport,
    /// Lower (`true`) or restore the core's P-state request.
    IdlePstate {
        lower: bool,
    },
    /// Call the server behind `endpoint` and wait for its reply.
    Call {
        endpoint: u64,
        message: SyncMessage,
    },
    /// Answer the call being served (if `reply` is set) and, if `receive`,
    /// wait for the next.
    ReplyRecv {
        reply: Option<SyncMessage>,
        receive: bool,
    },
    /// Replace a core's power policy (a command of at most
    /// [`POWER_CONTROL_MAX`] bytes; only with the `power_control` grant).
    PowerControl {
        text: UserRange,
    },
    /// Read or write a word of a granted PCI function's configuration
    /// space ([`crate::nr::PCI_CONFIG`]).
    PciConfig {
        device: u64,
        offset: u64,
        write: bool,
        value: u32,
    },
}

impl Syscall {
    /// Decodes the call in `number` with arguments `args` (`rdi, rsi, rdx,
    /// r10, r8, r9`). `Err` carries the error code to return (positive;
    /// the kernel negates it).
    /// `r12` and `r13` (payload words 3 and 4 of a synchronous message)
    /// are read by the kernel directly from the saved registers; see
    /// [`Syscall::decode_with_sync`].
    pub fn decode(number: u64, args: [u64; 6]) -> Result<Syscall, i64> {
        Syscall::decode_with_sync(number, args, [0, 0])
    }

    /// [`Syscall::decode`] with `r12, r13`, the last two payload words of a
    /// synchronous message.
    pub fn decode_with_sync(number: u64, args: [u64; 6], r12_r13: [u64; 2]) -> Result<Syscall, i64> {
        let [a0, a1, a2, a3, a4, a5] = args;
        let sync_message = || SyncMessage::from_registers(a1, a2, [a3, a4, a5, r12_r13[0], r12_r13[1]]);
        Ok(match number {
            nr::LOG if a1 > LOG_MAX as u64 => return Err(err::TOO_LONG),
            nr::LOG => Syscall::Log { text: UserRange { addr: a0, len: a1 } },
            nr::EXIT => Syscall::Exit { code: a0 as i64 },
            nr::CORE_ID => Syscall::CoreId,
            nr::SERVER_NAME => Syscall::ServerName { buf: UserRange { addr: a0, len: a1 } },
            nr::TSC_HZ => Syscall::TscHz,
            nr::BENCH_MARK if a1 > PHASE_NAME_MAX as u64 => return Err(err::TOO_LONG),
            nr::BENCH_MARK => Syscall::BenchMark { name: UserRange { addr: a0, len: a1 }, begin: a2 != 0 },
            nr::BENCH_EXTRA_RINGS => Syscall::BenchExtraRings { rings: a0 },
            nr::WAIT => Syscall::Wait,
            nr::WAKE_MOVER => match a0 {
                0 => Syscall::WakeMover { inbox: None },
                n if n <= crate::MAX_MOVERS as u64 => Syscall::WakeMover { inbox: Some(n as usize - 1) },
                _ => return Err(err::OUT_OF_RANGE),
            },
            nr::POWER_REPORT => Syscall::PowerReport,
            nr::IDLE_PSTATE => match a0 {
                0 | 1 => Syscall::IdlePstate { lower: a0 == 1 },
                _ => return Err(err::OUT_OF_RANGE),
            },
            nr::CALL => Syscall::Call { endpoint: a0, message: sync_message()? },
            nr::REPLY_RECV if a0 & !3 != 0 => return Err(err::OUT_OF_RANGE),
            nr::REPLY_RECV if a0 == 2 => return Err(err::OUT_OF_RANGE), // neither answer nor wait
            nr::REPLY_RECV if a0 & 1 == 1 => Syscall::ReplyRecv { reply: Some(sync_message()?), receive: a0 & 2 == 0 },
            nr::REPLY_RECV => Syscall::ReplyRecv { reply: None, receive: true },
            nr::POWER_CONTROL if a1 > POWER_CONTROL_MAX as u64 => return Err(err::TOO_LONG),
            nr::POWER_CONTROL => Syscall::PowerControl { text: UserRange { addr: a0, len: a1 } },
            nr::PCI_CONFIG => match (a2, u32::try_from(a3)) {
                (0 | 1, Ok(value)) => Syscall::PciConfig { device: a0, offset: a1, write: a2 == 1, value },
                _ => return Err(err::OUT_OF_RANGE),
            },
            _ => return Err(err::UNKNOWN_SYSCALL),
        })
    }

    /// Benchmark bookkeeping calls are not counted as system calls in the
    /// per-core counters (they happen outside the measured phases' work).
    pub fn is_bench_bookkeeping(&self) -> bool {
        matches!(self, Syscall::BenchMark { .. } | Syscall::BenchExtraRings { .. })
    }
}

/// The value a system call returns in `rax` for error `code`.
pub const fn error_return(code: i64) -> u64 {
    code.wrapping_neg() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(number: u64, a0: u64, a1: u64, a2: u64) -> Result<Syscall, i64> {
        Syscall::decode(number, [a0, a1, a2, 0, 0, 0])
    }

    #[test]
    fn every_number_decodes_and_nothing_else_does() {
        for number in 0..=nr::PCI_CONFIG {
            assert!(decode(number, 0, 0, 0).is_ok(), "call {number}");
        }
        for number in [nr::PCI_CONFIG + 1, 99, u64::MAX] {
            assert_eq!(decode(number, 0, 0, 0), Err(err::UNKNOWN_SYSCALL));
        }
    }

    #[test]
    fn lengths_are_capped_before_memory_is_touched() {
        assert!(decode(nr::LOG, USER_MIN, LOG_MAX as u64, 0).is_ok());
        assert_eq!(decode(nr::LOG, USER_MIN, LOG_MAX as u64 + 1, 0), Err(err::TOO_LONG));
        assert_eq!(decode(nr::LOG, USER_MIN, u64::MAX, 0), Err(err::TOO_LONG));
        assert_eq!(decode(nr::BENCH_MARK, USER_MIN, PHASE_NAME_MAX as u64 + 1, 1), Err(err::TOO_LONG));
        assert_eq!(
            decode(nr::BENCH_MARK, USER_MIN, 3, 7),
            Ok(Syscall::BenchMark { name: UserRange { addr: USER_MIN, len: 3 }, begin: true })
        );
    }

    #[test]
    fn idle_pstate_takes_only_zero_or_one() {
        assert_eq!(decode(nr::IDLE_PSTATE, 1, 0, 0), Ok(Syscall::IdlePstate { lower: true }));
        assert_eq!(decode(nr::IDLE_PSTATE, 0, 0, 0), Ok(Syscall::IdlePstate { lower: false }));
        assert_eq!(decode(nr::IDLE_PSTATE, 2, 0, 0), Err(err::OUT_OF_RANGE));
    }

    #[test]
    fn sync_messages_travel_in_registers() {
        let m = SyncMessage::with_payload(7, 42, b"hello, synchronous world").unwrap();
        let (rsi, rdx) = m.header_registers();
        let p = m.payload;
        let args = [3, rsi, rdx, p[0], p[1], p[2]];
        assert_eq!(
            Syscall::decode_with_sync(nr::CALL, args, [p[3], p[4]]),
            Ok(Syscall::Call { endpoint: 3, message: m })
        );
        let (bytes, len) = m.payload_bytes();
        assert_eq!(&bytes[..len], b"hello, synchronous world");
        assert_eq!(
            Syscall::decode_with_sync(nr::REPLY_RECV, [1, rsi, rdx, p[0], p[1], p[2]], [p[3], p[4]]),
            Ok(Syscall::ReplyRecv { reply: Some(m), receive: true })
        );
        assert_eq!(
            Syscall::decode_with_sync(nr::REPLY_RECV, [3, rsi, rdx, p[0], p[1], p[2]], [p[3], p[4]]),
            Ok(Syscall::ReplyRecv { reply: Some(m), receive: false })
        );
        assert_eq!(
            Syscall::decode(nr::REPLY_RECV, [0, rsi, rdx, 0, 0, 0]),
            Ok(Syscall::ReplyRecv { reply: None, receive: true })
        );
        assert_eq!(Syscall::decode(nr::REPLY_RECV, [2, 0, 0, 0, 0, 0]), Err(err::OUT_OF_RANGE));
        assert_eq!(Syscall::decode(nr::REPLY_RECV, [4, 0, 0, 0, 0, 0]), Err(err::OUT_OF_RANGE));
        assert!(SyncMessage::with_payload(0, 0, &[0; 41]).is_none());
        let too_long = 41u64 << 32;
        assert_eq!(Syscall::decode(nr::CALL, [0, too_long, 0, 0, 0, 0]), Err(err::TOO_LONG));
        assert_eq!(Syscall::decode(nr::REPLY_RECV, [1, too_long, 0, 0, 0, 0]), Err(err::TOO_LONG));
        // Without the reply flag the registers are not a message: no check.
        assert!(Syscall::decode(nr::REPLY_RECV, [0, too_long, 0, 0, 0, 0]).is_ok());
    }

    #[test]
    fn power_control_takes_a_bounded_command() {
        let max = crate::POWER_CONTROL_MAX as u64;
        assert_eq!(
            decode(nr::POWER_CONTROL, USER_MIN, max, 0),
            Ok(Syscall::PowerControl { text: UserRange { addr: USER_MIN, len: max } })
        );
        assert_eq!(decode(nr::POWER_CONTROL, USER_MIN, max + 1, 0), Err(err::TOO_LONG));
    }

    #[test]
    fn pci_config_takes_a_read_or_a_32_bit_write() {
        assert_eq!(
            Syscall::decode(nr::PCI_CONFIG, [1, 0x10, 1, 0xffff_ffff, 0, 0]),
            Ok(Syscall::PciConfig { device: 1, offset: 0x10, write: true, value: 0xffff_ffff })
        );
        assert_eq!(
            Syscall::decode(nr::PCI_CONFIG, [0, 4, 0, 0, 0, 0]),
            Ok(Syscall::PciConfig { device: 0, offset: 4, write: false, value: 0 })
        );
        assert_eq!(Syscall::decode(nr::PCI_CONFIG, [0, 4, 2, 0, 0, 0]), Err(err::OUT_OF_RANGE));
        assert_eq!(Syscall::decode(nr::PCI_CONFIG, [0, 4, 1, 1 << 32, 0, 0]), Err(err::OUT_OF_RANGE));
    }

    #[test]
    fn exit_code_keeps_its_sign() {
        assert_eq!(decode(nr::EXIT, (-3i64) as u64, 0, 0), Ok(Syscall::Exit { code: -3 }));
    }

    #[test]
    fn user_ranges_must_stay_in_the_user_half() {
        assert!(UserRange { addr: USER_MIN, len: 16 }.in_user_half());
        assert!(UserRange { addr: USER_END - 16, len: 16 }.in_user_half());
        assert!(!UserRange { addr: USER_END - 16, len: 17 }.in_user_half());
        assert!(!UserRange { addr: 0, len: 1 }.in_user_half());
        assert!(!UserRange { addr: u64::MAX - 1, len: 4 }.in_user_half());
    }

    #[test]
    fn errors_come_back_negated() {
        assert_eq!(error_return(err::NOT_MAPPED) as i64, -err::NOT_MAPPED);
    }

    #[test]
    fn bounce_labels_and_badges_have_one_definition() {
        use crate::{BounceReason, KERNEL_BADGE, bounce, server_badge, server_index_of_badge};
        for reason in BounceReason::ALL {
            assert_eq!(BounceReason::from_label(reason.label()), Some(reason));
        }
        assert_eq!(bounce::NO_CAPABILITY, BounceReason::NoCapability as u32);
        assert_eq!(BounceReason::from_label(0), None);
        assert_eq!(server_index_of_badge(KERNEL_BADGE), None);
        for index in [0usize, 1, 63, 1 << 20] {
            assert_ne!(server_badge(index), KERNEL_BADGE);
            assert_eq!(server_index_of_badge(server_badge(index)), Some(index));
        }
    }
}
