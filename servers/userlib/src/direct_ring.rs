//! User<->user direct rings (`[[direct_ring]]` in the system TOML): a ring
//! region the kernel mapped into this server and one peer, with no mover in
//! between. This module finds a ring by name in the info page and attaches
//! one end of it; what comes back is a plain `ringbuf` handle.
//!
//! ```ignore
//! let mut to_b = userlib::DirectRing::producer("a-to-b")?;
//! to_b.push_untrusted(&message)?;           // Err(Full): retry later
//! let mut from_b = userlib::DirectRing::consumer("b-to-a")?;
//! let reply = from_b.pop_untrusted();       // Err(Empty): nothing yet
//! ```
//!
//! Invariants:
//! - The peer is hostile: it can write any byte of the region at any time.
//!   Use the `*_untrusted` calls (a lying peer index is reported, never
//!   believed) and validate every message copied out (`Message::validate`,
//!   then your own protocol checks), as the mover does with outboxes.
//! - Each end is attached at most once per server (a claim bit per ring),
//!   so the single-producer/single-consumer contract holds on our side.
//! - Nobody rings a doorbell here: the kernel never looks at these rings,
//!   so a consumer polls (`spin_loop`) and must not sleep waiting for one,
//!   and a producer need not call `consumer_needs_wakeup`.

use core::sync::atomic::{AtomicU32, Ordering};

use ringbuf::RingRegion;
pub use ringbuf::{Consumer, Producer, RingError};

/// Why an end of a direct ring could not be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectRingError {
    /// The info page is missing or has the wrong magic.
    NoInfoPage,
    /// No direct ring of that name has this server as an end.
    NotFound,
    /// The ring exists, but this server is its other end.
    WrongEnd,
    /// This end was attached before (each end once per server).
    AlreadyAttached,
    /// The ring's layout does not match what the info page says.
    BadRing,
    /// Our own index was not the kernel's start index (0) when we attached:
    /// the peer wrote it. Refused rather than believed (see below).
    PeerWroteOurIndex,
}

/// Which ends have been attached: bit `i` for `abi::direct_ring_addr(i)`.
static CLAIMED: AtomicU32 = AtomicU32::new(0);

/// Namespace for attaching the two ends of a direct ring.
pub struct DirectRing;

impl DirectRing {
    /// The producing end of the direct ring `name` (this server must be its
    /// `producer` in the system TOML).
    pub fn producer(name: &str) -> Result<Producer<'static>, DirectRingError> {
        let region = attach(name, abi::DIRECT_RING_PRODUCER)?;
        let producer = region.into_producer();
        check_start(producer.next_write_index())?;
        Ok(producer)
    }

    /// The consuming end of the direct ring `name` (this server must be its
    /// `consumer` in the system TOML).
    pub fn consumer(name: &str) -> Result<Consumer<'static>, DirectRingError> {
        let region = attach(name, abi::DIRECT_RING_CONSUMER)?;
        let consumer = region.into_consumer();
        check_start(consumer.next_read_index())?;
        Ok(consumer)
    }
}

/// The attach-time rule: a handle takes its private index from the shared
/// word once, at attach, and never reads it back. Only our side ever
/// writes that word, but the peer *can* write it, and the peer may
/// already be running when we attach (the two servers start on their own
/// cores in no particular order). So we do not depend on who attaches
/// first: the kernel initialised both indices to 0 before either server
/// ran, an honest peer never writes our word, and we refuse any other
/// start value instead of adopting it. After this check our private index
/// is authoritative; whatever the peer writes there later is overwritten
/// by our next publish and never read.
fn check_start(own_index: u64) -> Result<(), DirectRingError> {
    if own_index == 0 { Ok(()) } else { Err(DirectRingError::PeerWroteOurIndex) }
}

/// Finds `name` in the info page as end `end`, claims it, attaches the region.
fn attach(name: &str, end: u32) -> Result<RingRegion<'static>, DirectRingError> {
    let info = crate::info().ok_or(DirectRingError::NoInfoPage)?;
    let count = (info.direct_ring_count as usize).min(abi::MAX_DIRECT_RINGS);
    let (index, entry) = info.direct_rings[..count]
        .iter()
        .enumerate()
        .find(|(_, r)| {
            let len = r.name.iter().position(|&b| b == 0).unwrap_or(r.name.len());
            &r.name[..len] == name.as_bytes()
        })
        .ok_or(DirectRingError::NotFound)?;
    if entry.end != end {
        return Err(DirectRingError::WrongEnd);
    }
    let bit = 1u32 << index;
    // Relaxed: pairs with nothing; the bit only has to be taken once (an
    // RMW sees every earlier claim), it publishes no other memory.
    if CLAIMED.fetch_or(bit, Ordering::Relaxed) & bit != 0 {
        return Err(DirectRingError::AlreadyAttached);
    }
    let slots = entry.slots as usize;
    let len = ringbuf::region_size(slots).map(|s| s.next_multiple_of(4096)).map_err(|_| DirectRingError::BadRing)?;
    let base = core::ptr::NonNull::new(abi::direct_ring_addr(index) as *mut u8).ok_or(DirectRingError::BadRing)?;
    // SAFETY: the kernel initialised a ring of `slots` slots and mapped
    // its pages read/write at `direct_ring_addr(index)` in this address
    // space for the server's whole life (the info page says so and never
    // changes). The only other party, the peer server, may write any byte
    // at any time; `ringbuf` accesses the region only through atomics and
    // treats every value as an allegation. The claim bit above makes this
    // the only handle to this end in this server.
    unsafe { RingRegion::attach(base, len, slots) }.map_err(|_| DirectRingError::BadRing)
}
