//! Turns a `toml` error (syntax, type, unknown or missing key) into a
//! [`ConfigError`] that names the dotted key path at the error's position.
//!
//! Invariants: the key path is found by walking the parsed document and
//! picking the innermost key or value whose span holds the error's offset;
//! it is never guessed from the text. Serde's wording is rephrased in the
//! file's terms ("field" becomes "key", `i64` becomes "an integer").

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};

use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::error::{ConfigError, Span};

/// A syntax error from the TOML parser.
pub(crate) fn syntax_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let (message, expected) = split_expected(error.message());
    let span = error.span().map(|r| Span::new(text, r));
    ConfigError::new(span, None, message, expected)
}

/// An error from deserializing a syntactically valid document.
pub(crate) fn schema_error(text: &str, error: &toml::de::Error) -> ConfigError {
    let span = error.span().map(|r| Span::new(text, r));
    let key = match (span, DeTable::parse(text)) {
        (Some(span), Ok(doc)) => {
            let mut path = String::new();
            // First a key or scalar that holds the offset; only then a
            // table or array (whose spans may be loose, e.g. a header only).
            let found = locate(doc.get_ref(), span.start, false, &mut path) || {
                path.clear();
                locate(doc.get_ref(), span.start, true, &mut path)
            };
            if found && !path.is_empty() { Some(path) } else { None }
        }
        _ => None,
    };
    let (message, expected) = split_expected(&rephrase(error.message()));
    ConfigError::new(span, key, message, expected)
}

/// Serde says "field" and "i64"; the file says "key" and "integer".
fn rephrase(message: &str) -> String {
    message
        .trim_end()
        .replace("unknown field", "unknown key")
        .replace("missing field", "missing key")
        .replace("expected i64", "expected an integer")
        .replace("expected a string", "expected a string in quotes")
        .replace("a sequence", "an array")
        .replace("a map", "a table")
}

/// `"invalid type: x, expected y"` → (`"invalid type: x"`, `Some("y")`).
fn split_expected(message: &str) -> (String, Option<String>) {
    let message = message.trim_end();
    match message.split_once(", expected ") {
        Some((what, expected)) => (what.to_owned(), Some(expected.to_string())),
        None => (message.to_owned(), None),
    }
}

fn holds(span: &core::ops::Range<usize>, offset: usize) -> bool {
    span.start == offset || (span.start <= offset && offset < span.end)
}

/// Appends to `path` the keys leading to the innermost key or value whose
/// span holds `offset`; returns whether one was found. Tables and arrays
/// count as holding it only if `containers`.
fn locate(table: &DeTable<'_>, offset: usize, containers: bool, path: &mut String) -> bool {
    for (key, value) in table.iter() {
        let restore = path.len();
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key.get_ref());
        if holds(&key.span(), offset) || locate_value(value, offset, containers, path) {
            return true;
        }
        path.truncate(restore);
    }
    false
}

fn locate_value(value: &Spanned<DeValue<'_>>, offset: usize, containers: bool, path: &mut String) -> bool {
    let (found_inside, is_container) = match value.get_ref() {
        DeValue::Table(table) => (locate(table, offset, containers, path), true),
        DeValue::Array(array) => {
            let mut found = false;
            for (index, item) in array.iter().enumerate() {
                let restore = path.len();
                path.push_str(&format!("[{index}]"));
                if locate_value(item, offset, containers, path) {
                    found = true;
                    break;
                }
                path.truncate(restore);
            }
            (found, true)
        }
        _ => (false, false),
    };
    found_inside || ((containers || !is_container) && holds(&value.span(), offset))
}
