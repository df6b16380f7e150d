//! The whole TCP side of the service for a server: one store and a
//! session per connection slot (a socket of the network stack).
//!
//! Invariants: slot numbers outside `0..CONNECTIONS` are refused, never a
//! panic; a slot's partial line is forgotten when the slot is closed, so a
//! new connection on it starts clean; the store outlives connections.

use crate::session::{Progress, Session};
use crate::store::Store;

/// `KEYS` entries shared by `CONNECTIONS` connection slots.
#[derive(Debug, Clone)]
pub struct Service<const CONNECTIONS: usize, const KEYS: usize> {
    store: Store<KEYS>,
    sessions: [Session; CONNECTIONS],
}

impl<const CONNECTIONS: usize, const KEYS: usize> Default for Service<CONNECTIONS, KEYS> {
    fn default() -> Self {
        Self::new()
    }
}

/// A slot number that is not `0..CONNECTIONS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSuchSlot(pub usize);

impl<const CONNECTIONS: usize, const KEYS: usize> Service<CONNECTIONS, KEYS> {
    pub const fn new() -> Self {
        Service { store: Store::new(), sessions: [const { Session::new() }; CONNECTIONS] }
    }

    /// Bytes received on connection `slot`: see [`Session::feed`].
    pub fn feed(&mut self, slot: usize, input: &[u8], out: &mut [u8]) -> Result<Progress, NoSuchSlot> {
        let session = self.sessions.get_mut(slot).ok_or(NoSuchSlot(slot))?;
        Ok(session.feed(&mut self.store, input, out))
    }

    /// Connection `slot` closed (or was reset): forget its partial line.
    pub fn closed(&mut self, slot: usize) -> Result<(), NoSuchSlot> {
        self.sessions.get_mut(slot).ok_or(NoSuchSlot(slot))?.reset();
        Ok(())
    }

    pub fn store(&self) -> &Store<KEYS> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MAX_RESPONSE;

    #[test]
    fn slots_share_the_store_and_keep_their_own_lines() {
        let mut service: Service<2, 4> = Service::new();
        let mut out = [0u8; MAX_RESPONSE];
        assert_eq!(service.feed(0, b"SET a 1", &mut out).unwrap().written, 0);
        assert_eq!(service.feed(1, b"GET a\n", &mut out).map(|p| &out[..p.written]).unwrap(), b"NOT_FOUND\n");
        let p = service.feed(0, b"\n", &mut out).unwrap();
        assert_eq!(&out[..p.written], b"OK\n");
        let p = service.feed(1, b"GET a\n", &mut out).unwrap();
        assert_eq!(&out[..p.written], b"VALUE 1\n");
        assert_eq!(service.store().len(), 1);
    }

    #[test]
    fn a_closed_slot_starts_clean_and_bad_slots_are_refused() {
        let mut service: Service<1, 1> = Service::new();
        let mut out = [0u8; MAX_RESPONSE];
        service.feed(0, b"SET half", &mut out).unwrap();
        service.closed(0).unwrap();
        let p = service.feed(0, b"GET half\n", &mut out).unwrap();
        assert_eq!(&out[..p.written], b"NOT_FOUND\n");
        assert_eq!(service.feed(1, b"GET a\n", &mut out), Err(NoSuchSlot(1)));
        assert_eq!(service.closed(7), Err(NoSuchSlot(7)));
    }
}
