//! System calls as values: the registers a server passes, decoded once
//! into a [`Syscall`] or an error code. The kernel dispatches on the
//! decoded value only; nothing else reads the raw registers.
//!
//! Invariants: decoding looks at the call number and the arguments the
//! call takes, checks what can be checked without the server's memory
//! (lengths, flag values), and never trusts a pointer: a pointer comes out
//! as a [`UserRange`], an allegation the kernel must check against the
//! server's page tables before it touches a byte.

use crate::{LOG_MAX, USER_END, USER_MIN, err, nr};

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

/// One decoded system call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syscall {
    /// Print one line as this server (at most [`LOG_MAX`] bytes).
    Log { text: UserRange },
    /// Stop this server for good.
    Exit { code: i64 },
    CoreId,
    /// Copy this server's name into `buf`.
    ServerName { buf: UserRange },
    TscHz,
    /// Snapshot (`begin`) or print the counters of a benchmark phase.
    BenchMark { name: UserRange, begin: bool },
    /// Make every mover scan `rings` extra empty rings per pass.
    BenchExtraRings { rings: u64 },
    Wait,
    WakeMover,
    PowerReport,
    /// Lower (`true`) or restore the core's P-state request.
    IdlePstate { lower: bool },
}

impl Syscall {
    /// Decodes the call in `number` with arguments `args` (`rdi, rsi, rdx,
    /// r10, r8, r9`). `Err` carries the error code to return (positive;
    /// the kernel negates it).
    pub fn decode(number: u64, args: [u64; 6]) -> Result<Syscall, i64> {
        let [a0, a1, a2, ..] = args;
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
            nr::WAKE_MOVER => Syscall::WakeMover,
            nr::POWER_REPORT => Syscall::PowerReport,
            nr::IDLE_PSTATE => match a0 {
                0 | 1 => Syscall::IdlePstate { lower: a0 == 1 },
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
        for number in 0..=nr::IDLE_PSTATE {
            assert!(decode(number, 0, 0, 0).is_ok(), "call {number}");
        }
        for number in [nr::IDLE_PSTATE + 1, 99, u64::MAX] {
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
