//! A server's side of IPC: its outbox (to the mover) and its inboxes (one
//! per mover), set up from the info page the kernel mapped. How the core
//! waits while the inboxes are empty, and waking a sleeping mover, is the
//! channel's [`Idler`] (`idle.rs`); the channel hands it the rings.
//!
//! ```ignore
//! let mut ch = userlib::Channel::open()?;
//! ch.send(0, LABEL, b"ping")?;            // endpoint 0 of this server
//! let reply = ch.recv();                   // waits as the core's power policy says
//! ```
//! No system call is involved: sending writes a slot and publishes an index;
//! the mover does the rest. A message with `sender_badge == 0` is from the
//! kernel: a bounce (`label` says why, see `abi::bounce`) or a notice about
//! a peer (`label == abi::notice::LABEL`, see [`Channel::notice`]).
//!
//! A send that finds the outbox full does not just spin: it moves waiting
//! inbox messages into a small held queue (returned first by the receive
//! calls), so that two servers sending to each other cannot both wait for
//! the other to drain (each keeps draining while it waits).

use crate::abi;
use crate::idle::Idler;
pub use ringbuf::Message;
use ringbuf::{Consumer, Producer, RingRegion};

/// Why the channel could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// The info page is missing or has the wrong magic.
    NoInfoPage,
    /// A ring's layout does not match what the info page says.
    BadRing,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// The outbox is full (the mover has not caught up): try again.
    Full,
    /// More than `ringbuf::PAYLOAD_CAPACITY` bytes of payload.
    TooLong,
}

/// Inbox messages a blocked send may hold for the receive calls.
pub const HELD_MESSAGES: usize = 64;

/// This server's rings.
pub struct Channel {
    info: &'static abi::ServerInfo,
    outbox: Producer<'static>,
    inboxes: [Option<Consumer<'static>>; abi::MAX_MOVERS],
    inbox_count: usize,
    next_inbox: usize,
    next_sequence: u32,
    /// How this core waits while the inboxes are empty (and wakes the mover).
    idler: Idler,
    /// Messages taken from the inboxes while a send waited for room, oldest
    /// at `held_head`.
    held: [Message; HELD_MESSAGES],
    held_head: usize,
    held_len: usize,
}

fn ring_len(slots: u32) -> Result<usize, OpenError> {
    ringbuf::region_size(slots as usize).map(|s| s.next_multiple_of(4096)).map_err(|_| OpenError::BadRing)
}

impl Channel {
    /// Attaches to the rings described by the info page. Call once.
    pub fn open() -> Result<Channel, OpenError> {
        let info = crate::info().ok_or(OpenError::NoInfoPage)?;
        let attach = |addr: u64, slots: u32| -> Result<RingRegion<'static>, OpenError> {
            let base = core::ptr::NonNull::new(addr as *mut u8).ok_or(OpenError::BadRing)?;
            // SAFETY: the kernel initialised a ring of `slots` slots at
            // `addr` and mapped its pages read/write into this address space
            // for the server's whole life; the only other party (the mover)
            // accesses it through `ringbuf` too. `open` is called once, so
            // no other handle to these rings exists in this server.
            unsafe { RingRegion::attach(base, ring_len(slots)?, slots as usize) }.map_err(|_| OpenError::BadRing)
        };
        let outbox = attach(abi::OUTBOX_ADDR, info.outbox_slots)?.into_producer();
        let inbox_count = (info.mover_count as usize).min(abi::MAX_MOVERS);
        let mut inboxes = [const { None }; abi::MAX_MOVERS];
        for (mover, slot) in inboxes.iter_mut().enumerate().take(inbox_count) {
            *slot = Some(attach(abi::inbox_addr(mover), info.inbox_slots)?.into_consumer());
        }
        Ok(Channel {
            info,
            outbox,
            inboxes,
            inbox_count,
            next_inbox: 0,
            next_sequence: 0,
            idler: Idler::from_info(info),
            held: [Message::zeroed(); HELD_MESSAGES],
            held_head: 0,
            held_len: 0,
        })
    }

    /// [`Channel::open`], logging why it failed (`cannot open channel: …`):
    /// `let Some(mut channel) = Channel::open_or_log() else { return 1 };`
    pub fn open_or_log() -> Option<Channel> {
        match Channel::open() {
            Ok(channel) => Some(channel),
            Err(e) => {
                crate::log!("cannot open channel: {e:?}");
                None
            }
        }
    }

    pub fn info(&self) -> &'static abi::ServerInfo {
        self.info
    }

    /// How this core waits, with what its sleep/wake protocol counted.
    pub fn idler(&self) -> &Idler {
        &self.idler
    }

    /// The endpoint number that reaches the server with `badge` (any of
    /// its incarnations: the info page lists first badges), if held.
    pub fn endpoint_for_badge(&self, badge: u64) -> Option<u32> {
        let count = (self.info.endpoint_count as usize).min(abi::MAX_ENDPOINTS);
        let server = abi::server_index_of_badge(badge)?;
        self.info.endpoint_badges[..count]
            .iter()
            .position(|&b| b != 0 && abi::server_index_of_badge(b) == Some(server))
            .map(|i| i as u32)
    }

    /// The endpoint number of the endpoint called `name`, if held.
    pub fn endpoint_named(&self, name: &str) -> Option<u32> {
        let count = (self.info.endpoint_count as usize).min(abi::MAX_ENDPOINTS);
        self.info.endpoint_names[..count]
            .iter()
            .position(|n| {
                let len = n.iter().position(|&b| b == 0).unwrap_or(n.len());
                &n[..len] == name.as_bytes()
            })
            .map(|i| i as u32)
    }

    /// Builds a message for `endpoint` with the channel's next sequence number.
    pub fn message(&mut self, endpoint: u32, label: u32, payload: &[u8]) -> Result<Message, SendError> {
        let mut message = Message::new(endpoint, label, payload).map_err(|_| SendError::TooLong)?;
        message.sequence = self.next_sequence;
        self.next_sequence = self.next_sequence.wrapping_add(1);
        Ok(message)
    }

    /// Queues `message` as is, or reports a full outbox.
    #[inline]
    pub fn try_send_message(&mut self, message: &Message) -> Result<(), SendError> {
        self.outbox.push(message).map_err(|_| SendError::Full)?;
        self.idler.after_publish(&mut self.outbox);
        Ok(())
    }

    /// Queues a message. While the outbox is full it keeps draining the
    /// inboxes into the held queue (see the module docs); it spins without
    /// draining only once that queue is full too.
    #[inline]
    pub fn send_message(&mut self, message: &Message) {
        while self.outbox.push(message).is_err() {
            self.hold_one();
            core::hint::spin_loop();
        }
        self.idler.after_publish(&mut self.outbox);
    }

    /// Moves one waiting inbox message into the held queue, if it has room.
    #[cold]
    fn hold_one(&mut self) {
        if self.held_len == HELD_MESSAGES {
            return;
        }
        if let Some(message) = self.poll_inboxes() {
            self.held[(self.held_head + self.held_len) % HELD_MESSAGES] = message;
            self.held_len += 1;
        }
    }

    /// Messages in the held queue.
    pub fn held(&self) -> usize {
        self.held_len
    }

    fn take_held(&mut self) -> Option<Message> {
        if self.held_len == 0 {
            return None;
        }
        let message = self.held[self.held_head];
        self.held_head = (self.held_head + 1) % HELD_MESSAGES;
        self.held_len -= 1;
        Some(message)
    }

    /// The notice in `message`, if it is one: the kernel telling this
    /// server that a peer it holds an endpoint to stopped, restarted, or
    /// stopped for good (`message.destination_endpoint` is that endpoint).
    pub fn notice(message: &Message) -> Option<abi::notice::Notice> {
        if message.sender_badge != abi::KERNEL_BADGE || message.label != abi::notice::LABEL {
            return None;
        }
        abi::notice::Notice::decode(message.payload_bytes())
    }

    /// Builds and queues a message, or reports a full outbox (the sequence
    /// number is used up either way).
    pub fn try_send(&mut self, endpoint: u32, label: u32, payload: &[u8]) -> Result<(), SendError> {
        let message = self.message(endpoint, label, payload)?;
        self.try_send_message(&message)
    }

    /// Builds and queues a message, spinning while the outbox is full.
    pub fn send(&mut self, endpoint: u32, label: u32, payload: &[u8]) -> Result<(), SendError> {
        let message = self.message(endpoint, label, payload)?;
        self.send_message(&message);
        Ok(())
    }

    /// Queues as many of `messages` as fit, publishing them with one store;
    /// returns how many.
    #[inline]
    pub fn send_batch(&mut self, messages: &[Message]) -> usize {
        let sent = self.outbox.push_slice(messages);
        if sent > 0 {
            self.idler.after_publish(&mut self.outbox);
        }
        sent
    }

    /// The next message, if one is waiting: held messages first, then the
    /// inboxes, polled round-robin so no mover starves.
    #[inline]
    pub fn try_recv(&mut self) -> Option<Message> {
        if self.held_len != 0 {
            return self.take_held();
        }
        self.poll_inboxes()
    }

    #[inline]
    fn poll_inboxes(&mut self) -> Option<Message> {
        for _ in 0..self.inbox_count {
            let index = self.next_inbox;
            self.next_inbox = if index + 1 == self.inbox_count { 0 } else { index + 1 };
            if let Some(inbox) = self.inboxes[index].as_mut() {
                if let Some(message) = inbox.pop() {
                    return Some(message);
                }
                if inbox.room_check_due() {
                    room_check(inbox, index);
                }
            }
        }
        None
    }

    /// Waits for the next message, escalating as the core's power policy
    /// says: re-poll, then `pause` between polls, then sleep in the kernel
    /// until a mover delivers (the [`Idler`]; see `docs/power.md`).
    #[inline]
    pub fn recv(&mut self) -> Message {
        loop {
            if let Some(message) = self.try_recv() {
                self.idler.message_arrived();
                return message;
            }
            self.idler.poll_was_empty(&mut self.inboxes, self.inbox_count);
        }
    }

    /// Copies up to `out.len()` waiting messages into `out`; returns how many.
    #[inline]
    pub fn recv_batch(&mut self, out: &mut [Message]) -> usize {
        let mut got = 0;
        while got < out.len()
            && let Some(message) = self.take_held()
        {
            out[got] = message;
            got += 1;
        }
        for _ in 0..self.inbox_count {
            let index = self.next_inbox;
            self.next_inbox = if index + 1 == self.inbox_count { 0 } else { index + 1 };
            if let Some(inbox) = self.inboxes[index].as_mut() {
                let wanted = out.len() - got;
                let taken = inbox.pop_into(&mut out[got..]);
                got += taken;
                if taken < wanted && inbox.room_check_due() {
                    room_check(inbox, index);
                }
            }
            if got == out.len() {
                break;
            }
        }
        got
    }
}

/// An inbox was found empty after messages were taken from it: if its
/// mover found it full and sleeps until it has room, wake that mover (one
/// fence and one load; a system call only when it waits). See
/// `ringbuf::Consumer::producer_waits_for_room` and docs/life.md.
#[cold]
#[inline(never)]
fn room_check(inbox: &mut Consumer<'static>, index: usize) {
    if inbox.producer_waits_for_room() {
        crate::syscall::wake_mover_of_inbox(index);
    }
}
