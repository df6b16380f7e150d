//! A fixed-size key-value store and the answer to one line.
//!
//! Invariants: at most `CAPACITY` entries, each key unique; a refused
//! request changes nothing; a `SET` of a key already present always
//! succeeds (replaces its value), a `SET` of a new key when all entries are
//! taken is refused with `ERR full`. Every response ends with `\n` and fits
//! in [`MAX_RESPONSE`] bytes.

use crate::line::Line;
use crate::request::{MAX_KEY, MAX_VALUE, Refusal, Request};

/// The longest response: `VALUE ` + value + `\n`.
pub const MAX_RESPONSE: usize = 6 + MAX_VALUE + 1;

#[derive(Debug, Clone, Copy)]
struct Entry {
    key: [u8; MAX_KEY],
    key_len: u8,
    value: [u8; MAX_VALUE],
    value_len: u16,
}

impl Entry {
    fn key(&self) -> &[u8] {
        &self.key[..usize::from(self.key_len)]
    }

    fn value(&self) -> &[u8] {
        &self.value[..usize::from(self.value_len)]
    }

    fn set_value(&mut self, value: &[u8]) {
        self.value[..value.len()].copy_from_slice(value);
        self.value_len = value.len() as u16; // <= MAX_VALUE, checked by Request::parse
    }
}

/// At most `CAPACITY` keys and their values.
#[derive(Debug, Clone)]
pub struct Store<const CAPACITY: usize> {
    entries: [Option<Entry>; CAPACITY],
}

impl<const CAPACITY: usize> Default for Store<CAPACITY> {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes the pieces into `out` (which is [`MAX_RESPONSE`] long and every
/// response fits in it) and returns the length.
fn write(out: &mut [u8; MAX_RESPONSE], pieces: &[&[u8]]) -> usize {
    let mut len = 0;
    for piece in pieces {
        out[len..len + piece.len()].copy_from_slice(piece);
        len += piece.len();
    }
    len
}

impl<const CAPACITY: usize> Store<CAPACITY> {
    pub const fn new() -> Store<CAPACITY> {
        Store { entries: [None; CAPACITY] }
    }

    /// Keys stored now.
    pub fn len(&self) -> usize {
        self.entries.iter().filter(|e| e.is_some()).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.entries.iter().flatten().find(|e| e.key() == key).map(Entry::value)
    }

    /// Stores `value` under `key` (both as [`Request::parse`] checks them).
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), Refusal> {
        if key.is_empty() || key.len() > MAX_KEY {
            return Err(Refusal::KeyTooLong);
        }
        if value.is_empty() || value.len() > MAX_VALUE {
            return Err(Refusal::ValueTooLong);
        }
        if let Some(entry) = self.entries.iter_mut().flatten().find(|e| e.key() == key) {
            entry.set_value(value);
            return Ok(());
        }
        let slot = self.entries.iter_mut().find(|e| e.is_none()).ok_or(Refusal::Full)?;
        let mut entry = Entry { key: [0; MAX_KEY], key_len: key.len() as u8, value: [0; MAX_VALUE], value_len: 0 };
        entry.key[..key.len()].copy_from_slice(key);
        entry.set_value(value);
        *slot = Some(entry);
        Ok(())
    }

    /// Answers one line (as [`crate::LineParser`] delivers it) into `out`;
    /// returns the response's length.
    pub fn handle(&mut self, line: Line<'_>, out: &mut [u8; MAX_RESPONSE]) -> usize {
        let refusal = match line {
            Line::TooLong => Refusal::TooLong,
            Line::Complete(line) => match Request::parse(line) {
                Ok(Request::Get { key }) => {
                    return match self.get(key) {
                        Some(value) => write(out, &[b"VALUE ", value, b"\n"]),
                        None => write(out, &[b"NOT_FOUND\n"]),
                    };
                }
                Ok(Request::Set { key, value }) => match self.set(key, value) {
                    Ok(()) => return write(out, &[b"OK\n"]),
                    Err(refusal) => refusal,
                },
                Err(refusal) => refusal,
            },
        };
        write(out, &[b"ERR ", refusal.reason().as_bytes(), b"\n"])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer<const N: usize>(store: &mut Store<N>, line: &[u8]) -> ([u8; MAX_RESPONSE], usize) {
        let mut out = [0; MAX_RESPONSE];
        let len = store.handle(Line::Complete(line), &mut out);
        (out, len)
    }

    fn text<const N: usize>(store: &mut Store<N>, line: &[u8]) -> String {
        let (out, len) = answer(store, line);
        String::from_utf8(out[..len].to_vec()).unwrap()
    }

    extern crate std;
    use std::string::String;

    #[test]
    fn set_get_update() {
        let mut store: Store<4> = Store::new();
        assert_eq!(text(&mut store, b"GET a"), "NOT_FOUND\n");
        assert_eq!(text(&mut store, b"SET a 1"), "OK\n");
        assert_eq!(text(&mut store, b"GET a"), "VALUE 1\n");
        assert_eq!(text(&mut store, b"SET a two words"), "OK\n");
        assert_eq!(text(&mut store, b"GET a"), "VALUE two words\n");
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn a_full_store_refuses_new_keys_and_still_updates() {
        let mut store: Store<2> = Store::new();
        assert_eq!(text(&mut store, b"SET a 1"), "OK\n");
        assert_eq!(text(&mut store, b"SET b 2"), "OK\n");
        assert_eq!(text(&mut store, b"SET c 3"), "ERR full\n");
        assert_eq!(text(&mut store, b"GET c"), "NOT_FOUND\n");
        assert_eq!(text(&mut store, b"SET b 22"), "OK\n");
        assert_eq!(text(&mut store, b"GET b"), "VALUE 22\n");
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn errors_and_too_long() {
        let mut store: Store<2> = Store::new();
        assert_eq!(text(&mut store, b""), "ERR empty\n");
        assert_eq!(text(&mut store, b"PUT a 1"), "ERR unknown-command\n");
        let mut out = [0; MAX_RESPONSE];
        let len = store.handle(Line::TooLong, &mut out);
        assert_eq!(&out[..len], b"ERR too-long\n");
        assert!(store.is_empty());
    }

    #[test]
    fn the_longest_value_fits() {
        let mut store: Store<1> = Store::new();
        let value = [b'~'; MAX_VALUE];
        store.set(b"k", &value).unwrap();
        let (out, len) = answer(&mut store, b"GET k");
        assert_eq!(len, MAX_RESPONSE);
        assert_eq!(&out[6..len - 1], &value[..]);
    }

    #[test]
    fn set_checks_its_arguments() {
        let mut store: Store<1> = Store::new();
        assert_eq!(store.set(b"", b"v"), Err(Refusal::KeyTooLong));
        assert_eq!(store.set(b"k", b""), Err(Refusal::ValueTooLong));
        assert!(store.is_empty());
    }
}
