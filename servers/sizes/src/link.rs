//! The two ways the sweep's messages travel between the two servers,
//! behind one small trait so each path's protocol is written once:
//! [`MoverLink`] (the server's mover rings, one peer endpoint) and
//! [`DirectLink`] (a `[[direct_ring]]` each way, no mover).
//!
//! Invariants: a link hands out only messages from the peer — through the
//! mover, anything else (kernel bounces and notices) is counted in
//! `foreign` and dropped; on a direct ring every message is a private copy
//! that passed `Message::validate` (a lying ring index ends the link with
//! the `RingError`). Sending spins while the other side is full and never
//! drops a message.

use userlib::abi::region::FLAG_DESCRIPTOR;
use userlib::{Channel, Consumer, Message, Producer, RingError};

/// The peer misbehaved on a direct ring (its index lied).
#[derive(Debug, Clone, Copy)]
pub struct Broken(pub RingError);

/// One side's view of the connection to the other end.
pub trait Link {
    /// A message for the peer (destination set), flags 0.
    fn message(&self, label: u32, sequence: u32, payload: &[u8]) -> Message {
        let mut m = Message::new(0, label, payload).unwrap_or(Message::zeroed());
        m.sequence = sequence;
        m
    }
    /// The flags a descriptor message carries on this link.
    fn descriptor_flags(&self) -> u16;
    /// Sends all of `messages`, in order, spinning while the peer is full.
    fn send_all(&mut self, messages: &[Message]) -> Result<(), Broken>;
    fn send(&mut self, message: &Message) -> Result<(), Broken> {
        self.send_all(core::slice::from_ref(message))
    }
    /// Copies up to `out.len()` of the peer's waiting messages into `out`.
    fn receive(&mut self, out: &mut [Message]) -> Result<usize, Broken>;
    /// Spins until at least one message came, then returns them.
    fn receive_some(&mut self, out: &mut [Message]) -> Result<usize, Broken> {
        loop {
            let n = self.receive(out)?;
            if n > 0 {
                return Ok(n);
            }
            core::hint::spin_loop();
        }
    }
}

/// The mover's rings, talking to endpoint `peer` only.
pub struct MoverLink<'c> {
    pub channel: &'c mut Channel,
    pub peer: u32,
    pub peer_badge: u64,
    /// Messages from anyone else (bounces, notices): counted, dropped.
    pub foreign: u64,
}

impl Link for MoverLink<'_> {
    fn message(&self, label: u32, sequence: u32, payload: &[u8]) -> Message {
        let mut m = Message::new(self.peer, label, payload).unwrap_or(Message::zeroed());
        m.sequence = sequence;
        m
    }

    fn descriptor_flags(&self) -> u16 {
        FLAG_DESCRIPTOR
    }

    fn send_all(&mut self, messages: &[Message]) -> Result<(), Broken> {
        if let [one] = messages {
            // Drains our inboxes into the channel's held queue while the
            // outbox is full, so two ends sending at once cannot deadlock.
            self.channel.send_message(one);
            return Ok(());
        }
        let mut sent = 0;
        while sent < messages.len() {
            let n = self.channel.send_batch(&messages[sent..]);
            if n == 0 {
                // Full: send one the holding way (it drains our inboxes).
                self.channel.send_message(&messages[sent]);
                sent += 1;
            } else {
                sent += n;
            }
        }
        Ok(())
    }

    fn receive(&mut self, out: &mut [Message]) -> Result<usize, Broken> {
        let got = self.channel.recv_batch(out);
        let mut kept = 0;
        for i in 0..got {
            if out[i].sender_badge == self.peer_badge {
                out[kept] = out[i];
                kept += 1;
            } else {
                self.foreign += 1;
            }
        }
        Ok(kept)
    }
}

/// A direct ring each way; only this server and the peer can write them.
pub struct DirectLink {
    pub to_peer: Producer<'static>,
    pub from_peer: Consumer<'static>,
    /// Messages that failed `validate` (dropped).
    pub malformed: u64,
}

impl Link for DirectLink {
    fn descriptor_flags(&self) -> u16 {
        0
    }

    fn send_all(&mut self, messages: &[Message]) -> Result<(), Broken> {
        let mut sent = 0;
        while sent < messages.len() {
            let mut slots = match self.to_peer.reserve_untrusted(messages.len() - sent) {
                Ok(slots) => slots,
                Err(RingError::Full) => {
                    core::hint::spin_loop();
                    continue;
                }
                Err(e) => return Err(Broken(e)),
            };
            for m in &messages[sent..sent + slots.len()] {
                // Cannot fail: at most `slots.len()` messages.
                let _ = slots.write_next(m);
            }
            sent += slots.commit();
        }
        Ok(())
    }

    fn receive(&mut self, out: &mut [Message]) -> Result<usize, Broken> {
        let batch = match self.from_peer.read_untrusted(out.len()) {
            Ok(batch) => batch,
            Err(RingError::Empty) => return Ok(0),
            Err(e) => return Err(Broken(e)),
        };
        let mut kept = 0;
        // Each message is a private copy: validate, then keep.
        for m in batch.iter() {
            if m.validate().is_ok() {
                out[kept] = m;
                kept += 1;
            } else {
                self.malformed += 1;
            }
        }
        batch.release();
        Ok(kept)
    }
}
