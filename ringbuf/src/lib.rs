//! Lock-free single-producer/single-consumer ring of 64-byte messages, laid
//! out in memory the caller provides (a page shared between address spaces).
//!
//! Invariants the crate keeps (details in each module and `docs/ringbuf.md`):
//! - **No allocation, `no_std`.** The ring lives in a caller's region
//!   ([`RingRegion`]) or in an [`OwnedRing`] value.
//! - **Position-independent layout** ([`layout`]): the region stores indices
//!   and message bytes only, never an address.
//! - **A stamp in the slot publishes a message**: the producer stores the
//!   slot's stamp word last, with Release; the consumer loads the stamp word
//!   of the slot it wants with Acquire and never reads the producer index on
//!   the message path, so one cache line moves per message ([`layout`]).
//!   The consumer releases slots with one Release store of its index per
//!   pop or batch; the producer caches that index and reloads it only when
//!   the cache says full.
//! - **The peer may be hostile.** Every byte of the region is accessed
//!   atomically, indices are masked, peer indices are read once and
//!   range-checked, a stamp counts only if it is exactly the one for the
//!   index we expect, slots are copied to private memory before use. No
//!   operation panics or goes out of bounds whatever the region holds; the
//!   `*_untrusted` operations also *report* a lying peer
//!   ([`RingError::PeerIndexOutOfRange`], [`RingError::PeerStampInvalid`]).
//! - **Wake-flag protocol** for a consumer that sleeps (MWAIT/HLT):
//!   [`Consumer::prepare_to_sleep`] / [`Producer::consumer_needs_wakeup`],
//!   ordered by a SeqCst fence on each side (no lost wakeup).
//!
//! ```
//! use ringbuf::{Message, OwnedRing};
//!
//! let mut ring = OwnedRing::<8>::new();
//! let (mut producer, mut consumer) = ring.split();
//! producer.push(&Message::new(3, 7, b"hello").unwrap()).unwrap();
//! let message = consumer.pop().unwrap();
//! assert_eq!(message.payload_bytes(), b"hello");
//! ```

#![cfg_attr(not(test), no_std)]
#![warn(missing_docs)]

mod consumer;
mod error;
pub mod layout;
mod message;
mod producer;
mod region;
mod sync;

pub use consumer::{Consumer, ReadBatch};
pub use error::{LayoutError, MessageError, RingError, RingFull};
pub use layout::{REGION_ALIGN, capacity_for_region, region_size};
pub use message::{MESSAGE_SIZE, Message, PAYLOAD_CAPACITY, RING_OWNED_FLAGS};
pub use producer::{Producer, WriteBatch};
pub use region::{OwnedRing, RingRegion};

#[cfg(all(test, not(loom)))]
mod tests;
