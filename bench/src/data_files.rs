//! Writing and reading the CSV and JSON files of every benchmark, so that
//! each file is written (and read back) the same way.
//!
//! A JSON file is pretty-printed and ends with a newline; a CSV file has a
//! header line taken from the row type's field names.

use std::fs;
use std::io;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Writes `rows` as a CSV file, one row per line after the header.
pub fn write_csv<T: Serialize>(path: &Path, rows: &[T]) -> io::Result<()> {
    let mut writer = csv::Writer::from_path(path).map_err(io::Error::other)?;
    for row in rows {
        writer.serialize(row).map_err(io::Error::other)?;
    }
    writer.flush()
}

/// Reads a CSV file written by [`write_csv`] back into rows of type `T`.
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> io::Result<Vec<T>> {
    let mut reader = csv::Reader::from_path(path).map_err(io::Error::other)?;
    reader.deserialize().map(|row| row.map_err(io::Error::other)).collect()
}

/// Writes `document` as pretty-printed JSON with a final newline.
pub fn write_json<T: Serialize>(path: &Path, document: &T) -> io::Result<()> {
    let mut text = serde_json::to_string_pretty(document).map_err(io::Error::other)?;
    text.push('\n');
    fs::write(path, text)
}

/// Reads a JSON file written by [`write_json`] back.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let text = fs::read_to_string(path)?;
    serde_json::from_str(&text).map_err(io::Error::other)
}
