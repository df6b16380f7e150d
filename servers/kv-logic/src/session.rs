//! One TCP connection: bytes in, responses out, any split of either.
//!
//! Invariants: a [`Session`] answers the lines of its connection in order,
//! one response per line; [`Session::feed`] never writes past the caller's
//! buffer and stops taking input before a response could not fit, so the
//! bytes it did not consume are simply offered again.

use crate::line::LineParser;
use crate::store::{MAX_RESPONSE, Store};

/// What one [`Session::feed`] call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    /// Input bytes taken (the rest must be offered again).
    pub consumed: usize,
    /// Response bytes written at the start of the output buffer.
    pub written: usize,
}

/// A connection's state: its partial line.
#[derive(Debug, Clone, Default)]
pub struct Session {
    parser: LineParser,
}

impl Session {
    pub const fn new() -> Session {
        Session { parser: LineParser::new() }
    }

    /// Forgets a partial line (the connection closed; this slot serves a new one).
    pub fn reset(&mut self) {
        self.parser.reset();
    }

    /// Bytes of an unfinished request held now.
    pub fn pending(&self) -> usize {
        self.parser.pending()
    }

    /// Takes bytes from `input` and answers every line they complete into
    /// `out`, while `out` has room for a whole response ([`MAX_RESPONSE`]
    /// bytes) at the next free byte. With `out` at least that long, a call
    /// with input always consumes some of it.
    pub fn feed<const N: usize>(&mut self, store: &mut Store<N>, input: &[u8], out: &mut [u8]) -> Progress {
        let mut progress = Progress::default();
        while progress.consumed < input.len() {
            let Some(room) = out.get_mut(progress.written..progress.written + MAX_RESPONSE) else { break };
            let Ok(room): Result<&mut [u8; MAX_RESPONSE], _> = room.try_into() else { break };
            let (used, line) = self.parser.push(&input[progress.consumed..]);
            progress.consumed += used;
            if let Some(line) = line {
                progress.written += store.handle(line, room);
            }
        }
        progress
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_when_a_response_might_not_fit_and_resumes() {
        let mut store: Store<4> = Store::new();
        let mut session = Session::new();
        let mut out = [0u8; MAX_RESPONSE + 2];
        let input = b"SET a 1\nGET a\nGET b\n";
        let first = session.feed(&mut store, input, &mut out);
        assert_eq!(first, Progress { consumed: 8, written: 3 });
        assert_eq!(&out[..3], b"OK\n");
        let second = session.feed(&mut store, &input[8..], &mut out);
        assert_eq!(&out[..second.written], b"VALUE 1\n");
        let third = session.feed(&mut store, &input[8 + second.consumed..], &mut out);
        assert_eq!(&out[..third.written], b"NOT_FOUND\n");
        assert_eq!(8 + second.consumed + third.consumed, input.len());
    }

    #[test]
    fn sizes_are_as_the_crate_docs_say() {
        assert!(core::mem::size_of::<Store<64>>() <= 21 * 1024);
        assert!(core::mem::size_of::<Session>() <= 340);
        assert_eq!(MAX_RESPONSE, 263);
    }

    #[test]
    fn a_buffer_too_small_takes_nothing() {
        let mut store: Store<1> = Store::new();
        let mut session = Session::new();
        let mut out = [0u8; MAX_RESPONSE - 1];
        assert_eq!(session.feed(&mut store, b"GET a\n", &mut out), Progress::default());
    }
}
