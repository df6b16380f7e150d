//! The key-value service's protocol as pure code: what the `kv` server does
//! with the bytes of a TCP connection, testable on the host.
//!
//! ```text
//! TCP bytes, any split ──▶ Session::feed ──▶ LineParser::push ──▶ Line
//!                                                 │
//!                           Store::handle(line) ◀─┘ ──▶ response bytes in the caller's buffer
//! ```
//!
//! The protocol (port 7000, one request per line, `\n` or `\r\n`):
//!
//! | request | response |
//! | --- | --- |
//! | `SET key value` | `OK` (or `ERR full` for a new key when the store is full) |
//! | `GET key` | `VALUE value` or `NOT_FOUND` |
//! | anything else | `ERR <reason>` (reasons: [`Refusal::reason`]) |
//! | a line over [`LINE_CAPACITY`] bytes | `ERR too-long` once, then skipped to its newline |
//!
//! Keys are 1..=[`MAX_KEY`] printable ASCII bytes without spaces; values are
//! 1..=[`MAX_VALUE`] printable ASCII bytes (spaces allowed, kept as sent).
//!
//! Invariants:
//! - every complete line (and every over-long one) gets exactly one
//!   response, in order, so a client can pair replies with requests;
//! - memory is fixed: a [`Session`] holds one line buffer, a [`Store`]
//!   `CAPACITY` entries; nothing allocates;
//! - no input makes this crate panic; bad input is an `ERR` response and
//!   changes nothing in the store.
//!
//! Sizes, for a server's stack (`stack_kib`, 64 KiB by default): a
//! `Store<N>` is about `N` x 326 bytes (`Store<64>`: under 21 KiB), a
//! [`Session`] about 330 bytes, a response buffer [`MAX_RESPONSE`] = 263.
//!
//! A server with a fixed number of connection slots can hold all of it in
//! one [`Service`] (`feed(slot, …)`, `closed(slot)`); underneath, one
//! [`Session`] per connection and one [`Store`] shared:
//!
//! ```
//! use kv_logic::{Session, Store, MAX_RESPONSE};
//! let mut store: Store<64> = Store::new();
//! let mut session = Session::new();
//! let mut out = [0u8; 4 * MAX_RESPONSE];
//! let mut input: &[u8] = b"SET colour blue\r\nGET col";
//! let mut sent = Vec::new();
//! while !input.is_empty() {
//!     let progress = session.feed(&mut store, input, &mut out);
//!     sent.extend_from_slice(&out[..progress.written]); // send these bytes
//!     input = &input[progress.consumed..];
//! }
//! let progress = session.feed(&mut store, b"our\n", &mut out);
//! sent.extend_from_slice(&out[..progress.written]);
//! assert_eq!(sent, b"OK\nVALUE blue\n");
//! ```

#![no_std]
#![forbid(unsafe_code)]

pub mod line;
pub mod request;
pub mod service;
pub mod session;
pub mod store;

pub use line::{LINE_CAPACITY, Line, LineParser};
pub use request::{MAX_KEY, MAX_VALUE, Refusal, Request};
pub use service::{NoSuchSlot, Service};
pub use session::{Progress, Session};
pub use store::{MAX_RESPONSE, Store};
