//! Errors that point into the config text: where (line, column, byte span),
//! which key, what is wrong and what was expected.
//!
//! Invariants: lines and columns are 1-based; a column counts characters, not
//! bytes, so it matches what an editor shows. Positions are computed from byte
//! offsets with `core` only (no `std`), and an offset past the end of the text
//! or inside a multi-byte character is clamped, never a panic.

use alloc::format;
use alloc::string::String;
use core::fmt;
use core::ops::Range;

/// A place in the config text: a byte range and the line/column of its start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// 1-based line of `start`.
    pub line: usize,
    /// 1-based column of `start`, in characters.
    pub column: usize,
}

impl Span {
    /// The span of `range` in `text`, with its line and column.
    pub fn new(text: &str, range: Range<usize>) -> Span {
        let (line, column) = line_column(text, range.start);
        Span { start: range.start, end: range.end.max(range.start), line, column }
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
///
/// An offset past the end is clamped to the end; an offset inside a
/// multi-byte character is moved back to that character's first byte.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |nl| nl + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// What is wrong with a system config, and where.
///
/// Render it with [`ConfigError::render`] to get the error line followed by
/// the offending line of the file and carets under the value:
///
/// ```text
/// system.toml:18:8: key `server[1].core`: server `echo` on core 1, a mover core; expected a core not in system.mover_cores [1]
///    |
/// 18 | core = 1
///    |        ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    span: Option<Span>,
    key: Option<String>,
    message: String,
    expected: Option<String>,
}

impl ConfigError {
    /// An error at `span`, about `key` (a dotted path such as
    /// `server[1].core`), saying what is wrong and what was expected.
    pub fn new(
        span: Option<Span>,
        key: Option<String>,
        message: impl Into<String>,
        expected: Option<String>,
    ) -> ConfigError {
        ConfigError { span, key, message: message.into(), expected }
    }

    /// Shorthand for the common case: a span, a key, a message, an expectation.
    pub(crate) fn at(
        span: Span,
        key: impl Into<String>,
        message: impl Into<String>,
        expected: impl Into<String>,
    ) -> ConfigError {
        ConfigError::new(Some(span), Some(key.into()), message, Some(expected.into()))
    }

    /// Where the error is, if the text gives a place for it.
    pub fn span(&self) -> Option<Span> {
        self.span
    }

    /// 1-based line of the error.
    pub fn line(&self) -> Option<usize> {
        self.span.map(|s| s.line)
    }

    /// 1-based column (characters) of the error.
    pub fn column(&self) -> Option<usize> {
        self.span.map(|s| s.column)
    }

    /// The dotted key path the error is about (`server[1].core`,
    /// `power.core.3.sleep`); `None` for syntax errors.
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// What is wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// What was expected instead.
    pub fn expected(&self) -> Option<&str> {
        self.expected.as_deref()
    }

    /// The error as one line prefixed with `file:line:column: `, then the
    /// offending line of `text` with carets under the span.
    ///
    /// `text` must be the text the config was parsed from; if it is not, the
    /// excerpt is left out rather than showing the wrong line.
    pub fn render(&self, file: &str, text: &str) -> String {
        let mut out = match self.span {
            Some(_) => format!("{file}:{self}"),
            None => format!("{file}: {self}"),
        };
        if let Some(span) = self.span {
            let Some(source_line) = text.split('\n').nth(span.line - 1) else {
                return out;
            };
            let source_line = source_line.strip_suffix('\r').unwrap_or(source_line);
            if span.column - 1 > source_line.chars().count() {
                return out;
            }
            let number = format!("{}", span.line);
            let pad: String = number.chars().map(|_| ' ').collect();
            // Underline the span, but never past the end of its line.
            let span_chars = text
                .get(span.start..span.end.min(text.len()))
                .map_or(1, |s| s.split('\n').next().unwrap_or("").chars().count());
            let carets = span_chars.min(source_line.chars().count().saturating_sub(span.column - 1)).max(1);
            out.push_str(&format!("\n{pad} |\n{number} | {source_line}\n{pad} | "));
            for _ in 1..span.column {
                out.push(' ');
            }
            for _ in 0..carets {
                out.push('^');
            }
        }
        out
    }
}

/// One line, without the file name, e.g.
/// ``18:8: key `server[1].core`: server `echo` on core 1, a mover core; expected …``
/// (the position is left out when there is none).
impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(span) = self.span {
            write!(f, "{}:{}: ", span.line, span.column)?;
        }
        if let Some(key) = &self.key {
            write!(f, "key `{key}`: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(expected) = &self.expected {
            write!(f, "; expected {expected}")?;
        }
        Ok(())
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_from_one_and_in_chars() {
        let text = "ab\nçd = 1\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 2), (1, 3));
        assert_eq!(line_column(text, 3), (2, 1));
        // `d` is at byte 5 (ç is two bytes) but column 2.
        assert_eq!(line_column(text, 5), (2, 2));
        // Inside `ç`: moved back to its start.
        assert_eq!(line_column(text, 4), (2, 1));
        // Past the end: clamped.
        assert_eq!(line_column(text, 999), (3, 1));
    }
}
