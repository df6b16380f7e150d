//! Splits a byte stream that arrives in arbitrary pieces into lines.
//!
//! Invariants: the parser holds at most [`LINE_CAPACITY`] bytes; a line is
//! ended by `\n` and one `\r` before it is dropped; a line that grows past
//! the capacity is reported once as [`Line::TooLong`] when it overflows,
//! and its remaining bytes up to and including the next `\n` are skipped.

/// The longest line kept, without its `\n` but with a `\r` before it:
/// `SET ` + key + ` ` + value + `\r`.
pub const LINE_CAPACITY: usize = 4 + crate::MAX_KEY + 1 + crate::MAX_VALUE + 1;

/// What [`LineParser::push`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line<'a> {
    /// A complete line, without `\n` and without one trailing `\r`.
    Complete(&'a [u8]),
    /// A line grew past [`LINE_CAPACITY`]; the rest of it will be skipped.
    TooLong,
}

/// One connection's partial line.
#[derive(Debug, Clone)]
pub struct LineParser {
    buffer: [u8; LINE_CAPACITY],
    len: usize,
    /// Inside an over-long line: drop bytes up to the next `\n`.
    skipping: bool,
}

impl Default for LineParser {
    fn default() -> Self {
        Self::new()
    }
}

impl LineParser {
    pub const fn new() -> LineParser {
        LineParser { buffer: [0; LINE_CAPACITY], len: 0, skipping: false }
    }

    /// Forgets any partial line (a connection closed and a new one reuses this).
    pub fn reset(&mut self) {
        self.len = 0;
        self.skipping = false;
    }

    /// Bytes of an unfinished line held now (0 while skipping).
    pub fn pending(&self) -> usize {
        self.len
    }

    /// Takes bytes from `input` up to the first event. Returns how many
    /// bytes were consumed and the line they ended, if any; `None` means
    /// every byte was consumed and no line ended. Call again with the rest
    /// of the input after an event.
    pub fn push<'a>(&'a mut self, input: &[u8]) -> (usize, Option<Line<'a>>) {
        for (index, &byte) in input.iter().enumerate() {
            if self.skipping {
                if byte == b'\n' {
                    self.skipping = false;
                }
                continue;
            }
            if byte == b'\n' {
                let mut end = self.len;
                if end > 0 && self.buffer[end - 1] == b'\r' {
                    end -= 1;
                }
                self.len = 0;
                return (index + 1, Some(Line::Complete(&self.buffer[..end])));
            }
            if self.len == LINE_CAPACITY {
                self.len = 0;
                self.skipping = true;
                return (index + 1, Some(Line::TooLong));
            }
            self.buffer[self.len] = byte;
            self.len += 1;
        }
        (input.len(), None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_in_pieces_and_crlf() {
        let mut parser = LineParser::new();
        assert_eq!(parser.push(b"GET a"), (5, None));
        assert_eq!(parser.pending(), 5);
        assert_eq!(parser.push(b"b\r"), (2, None));
        assert_eq!(parser.push(b"\nSET"), (1, Some(Line::Complete(b"GET ab"))));
        assert_eq!(parser.push(b"\n"), (1, Some(Line::Complete(b""))));
    }

    #[test]
    fn only_one_trailing_cr_is_dropped() {
        let mut parser = LineParser::new();
        assert_eq!(parser.push(b"x\r\r\n"), (4, Some(Line::Complete(b"x\r"))));
        assert_eq!(parser.push(b"\r\n"), (2, Some(Line::Complete(b""))));
    }

    #[test]
    fn exactly_full_is_kept_one_more_is_too_long_and_skipped() {
        let mut parser = LineParser::new();
        let full = [b'a'; LINE_CAPACITY];
        assert_eq!(parser.push(&full), (LINE_CAPACITY, None));
        assert_eq!(parser.push(b"\n"), (1, Some(Line::Complete(&full[..]))));
        let mut long = [b'b'; LINE_CAPACITY + 10];
        long[LINE_CAPACITY + 9] = b'\n';
        let (used, line) = parser.push(&long);
        assert_eq!((used, line), (LINE_CAPACITY + 1, Some(Line::TooLong)));
        // The rest of the long line is skipped, through its newline.
        assert_eq!(parser.push(&long[used..]), (9, None));
        assert_eq!(parser.push(b"GET k\n"), (6, Some(Line::Complete(b"GET k"))));
    }

    #[test]
    fn reset_forgets_a_partial_line_and_skipping() {
        let mut parser = LineParser::new();
        parser.push(&[b'x'; LINE_CAPACITY + 1]);
        parser.reset();
        assert_eq!(parser.push(b"a\n"), (2, Some(Line::Complete(b"a"))));
        parser.push(b"half");
        parser.reset();
        assert_eq!(parser.push(b"b\n"), (2, Some(Line::Complete(b"b"))));
    }
}
