//! One line read as a request, or the reason it is refused.
//!
//! Invariants: a [`Request`] holds a key of 1..=[`MAX_KEY`] printable ASCII
//! bytes without spaces and (for `SET`) a value of 1..=[`MAX_VALUE`]
//! printable ASCII bytes; nothing else parses. Commands are upper case and
//! separated from their arguments by exactly one space.

/// The longest key, in bytes.
pub const MAX_KEY: usize = 64;
/// The longest value, in bytes.
pub const MAX_VALUE: usize = 256;

/// A well-formed request, borrowing from the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    Set { key: &'a [u8], value: &'a [u8] },
    Get { key: &'a [u8] },
}

/// Why a line is not a request (or, for [`Refusal::Full`], why the store
/// refused it). Each is answered `ERR <reason>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The line was empty.
    Empty,
    /// A byte outside printable ASCII (0x20..=0x7e).
    NotPrintable,
    /// Neither `SET` nor `GET`.
    UnknownCommand,
    /// No key, or an empty one (two spaces).
    MissingKey,
    /// A key over [`MAX_KEY`] bytes.
    KeyTooLong,
    /// `SET key` without a value.
    MissingValue,
    /// A value over [`MAX_VALUE`] bytes.
    ValueTooLong,
    /// `GET key something`.
    ExtraArgument,
    /// The line was over the parser's capacity (see [`crate::LINE_CAPACITY`]).
    TooLong,
    /// A `SET` of a new key with every entry of the store taken.
    Full,
}

impl Refusal {
    /// The word after `ERR ` in the response.
    pub const fn reason(self) -> &'static str {
        match self {
            Refusal::Empty => "empty",
            Refusal::NotPrintable => "not-printable",
            Refusal::UnknownCommand => "unknown-command",
            Refusal::MissingKey => "missing-key",
            Refusal::KeyTooLong => "key-too-long",
            Refusal::MissingValue => "missing-value",
            Refusal::ValueTooLong => "value-too-long",
            Refusal::ExtraArgument => "extra-argument",
            Refusal::TooLong => "too-long",
            Refusal::Full => "full",
        }
    }
}

fn printable(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

fn check_key(key: &[u8]) -> Result<&[u8], Refusal> {
    match key.len() {
        0 => Err(Refusal::MissingKey),
        n if n > MAX_KEY => Err(Refusal::KeyTooLong),
        _ => Ok(key),
    }
}

impl<'a> Request<'a> {
    /// Reads one line (without its line ending).
    pub fn parse(line: &'a [u8]) -> Result<Request<'a>, Refusal> {
        if line.is_empty() {
            return Err(Refusal::Empty);
        }
        if !line.iter().all(|&b| printable(b)) {
            return Err(Refusal::NotPrintable);
        }
        let (command, rest) = match line.iter().position(|&b| b == b' ') {
            Some(space) => (&line[..space], Some(&line[space + 1..])),
            None => (line, None),
        };
        match command {
            b"GET" => {
                let rest = rest.ok_or(Refusal::MissingKey)?;
                if let Some(space) = rest.iter().position(|&b| b == b' ') {
                    check_key(&rest[..space])?;
                    return Err(Refusal::ExtraArgument);
                }
                Ok(Request::Get { key: check_key(rest)? })
            }
            b"SET" => {
                let rest = rest.ok_or(Refusal::MissingKey)?;
                let Some(space) = rest.iter().position(|&b| b == b' ') else {
                    check_key(rest)?;
                    return Err(Refusal::MissingValue);
                };
                let key = check_key(&rest[..space])?;
                let value = &rest[space + 1..];
                match value.len() {
                    0 => Err(Refusal::MissingValue),
                    n if n > MAX_VALUE => Err(Refusal::ValueTooLong),
                    _ => Ok(Request::Set { key, value }),
                }
            }
            _ => Err(Refusal::UnknownCommand),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed() {
        assert_eq!(Request::parse(b"GET k"), Ok(Request::Get { key: b"k" }));
        assert_eq!(Request::parse(b"SET k v w "), Ok(Request::Set { key: b"k", value: b"v w " }));
        assert_eq!(Request::parse(b"SET k  v"), Ok(Request::Set { key: b"k", value: b" v" }));
        let key = [b'k'; MAX_KEY];
        let mut line = [b'v'; 4 + MAX_KEY + 1 + MAX_VALUE];
        line[..4].copy_from_slice(b"SET ");
        line[4..4 + MAX_KEY].copy_from_slice(&key);
        line[4 + MAX_KEY] = b' ';
        assert_eq!(Request::parse(&line), Ok(Request::Set { key: &key, value: &[b'v'; MAX_VALUE] }));
    }

    #[test]
    fn refusals() {
        let cases: &[(&[u8], Refusal)] = &[
            (b"", Refusal::Empty),
            (b"GET k\x01", Refusal::NotPrintable),
            (b"GET \xc3\xa9", Refusal::NotPrintable),
            (b"GET\tk", Refusal::NotPrintable),
            (b"get k", Refusal::UnknownCommand),
            (b"DEL k", Refusal::UnknownCommand),
            (b" GET k", Refusal::UnknownCommand),
            (b"GET", Refusal::MissingKey),
            (b"GET ", Refusal::MissingKey),
            (b"GET  k", Refusal::MissingKey),
            (b"SET", Refusal::MissingKey),
            (b"SET  k v", Refusal::MissingKey),
            (b"SET k", Refusal::MissingValue),
            (b"SET k ", Refusal::MissingValue),
            (b"GET k v", Refusal::ExtraArgument),
            (b"GET k ", Refusal::ExtraArgument),
        ];
        for (line, refusal) in cases {
            assert_eq!(Request::parse(line), Err(*refusal), "{:?}", core::str::from_utf8(line));
        }
        let long_key = [b'k'; MAX_KEY + 1];
        let mut line = [b'x'; 4 + MAX_KEY + 1];
        line[..4].copy_from_slice(b"GET ");
        line[4..].copy_from_slice(&long_key);
        assert_eq!(Request::parse(&line), Err(Refusal::KeyTooLong));
        let mut line = [b'v'; 6 + MAX_VALUE + 1];
        line[..6].copy_from_slice(b"SET k ");
        assert_eq!(Request::parse(&line), Err(Refusal::ValueTooLong));
    }
}
