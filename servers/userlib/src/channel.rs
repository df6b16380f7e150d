//! A server's side of IPC: its outbox (to the mover) and its inboxes (one
//! per mover), set up from the info page the kernel mapped.
//!
//! ```ignore
//! let mut ch = userlib::Channel::open()?;
//! ch.send(0, LABEL, b"ping")?;            // endpoint 0 of this server
//! let reply = ch.recv();                   // spins until a message arrives
//! ```
//! No system call is involved: sending writes a slot and publishes an index;
//! the mover does the rest. A message with `sender_badge == 0` is a bounce
//! from the kernel (`label` says why, see `abi::bounce`).

use crate::abi;
pub use ringbuf::Message;
use cores::power::{Escalation, Governor, SleepKind, Step};
use core::sync::atomic::{AtomicU64, Ordering};
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

/// This server's rings.
pub struct Channel {
    info: &'static abi::ServerInfo,
    outbox: Producer<'static>,
    inboxes: [Option<Consumer<'static>>; abi::MAX_MOVERS],
    inbox_count: usize,
    next_inbox: usize,
    next_sequence: u32,
    governor: Governor,
    /// The mover of the outbox may sleep: check its wake word after publishing.
    mover_sleeps: bool,
    /// Test knob (`ServerInfo::race_delay_ticks`, 0 normally).
    race_delay_ticks: u64,
    /// Where the pause time is reported to the kernel (`abi::STATS_ADDR`).
    stats: Option<&'static AtomicU64>,
    pause_reported: u64,
    /// `recv` consulted the governor since the last message.
    waited: bool,
    /// Times `recv` asked the kernel to sleep, and times it actually slept.
    pub sleeps_requested: u64,
    pub sleeps: u64,
    /// Times a sleep announcement was withdrawn because the inbox re-check
    /// found a message (published while this core went to sleep).
    pub sleeps_withdrawn: u64,
}

/// Asks the kernel to lower (or restore) this core's P-state after a long
/// idle period. Out of line and cold, so that the system call does not
/// shape the code of `recv`'s poll loop.
#[cold]
#[inline(never)]
fn idle_pstate(lower: bool) {
    crate::syscall3(abi::nr::IDLE_PSTATE, u64::from(lower), 0, 0);
}

fn ring_len(slots: u32) -> Result<usize, OpenError> {
    ringbuf::region_size(slots as usize).map(|s| s.next_multiple_of(4096)).map_err(|_| OpenError::BadRing)
}

/// The info page the kernel mapped for this server.
pub fn info() -> Option<&'static abi::ServerInfo> {
    // SAFETY: the kernel maps a read-only, initialised `ServerInfo` at
    // `INFO_ADDR` before the server starts and never changes it; if the
    // page were missing the read would fault this server only. The magic
    // check rejects a page with something else in it.
    let info = unsafe { &*(abi::INFO_ADDR as *const abi::ServerInfo) };
    (info.magic == abi::INFO_MAGIC).then_some(info)
}

/// The server's `args` text from the system TOML ("" if none).
pub fn args() -> &'static str {
    let Some(info) = info() else { return "" };
    let len = info.args.iter().position(|&b| b == 0).unwrap_or(info.args.len());
    core::str::from_utf8(&info.args[..len]).unwrap_or("")
}

/// The value of `key=value` in the server's args, if given.
pub fn arg(key: &str) -> Option<&'static str> {
    args().split_ascii_whitespace().filter_map(|w| w.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// `arg(key)` as a number, or `default`.
pub fn arg_u64(key: &str, default: u64) -> u64 {
    arg(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

impl Channel {
    /// Attaches to the rings described by the info page. Call once.
    pub fn open() -> Result<Channel, OpenError> {
        let info = info().ok_or(OpenError::NoInfoPage)?;
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
        let policy = Escalation {
            spin_polls: info.spin_polls_before_pause,
            pause_ticks: info.pause_ticks_before_sleep,
            // The kind only matters to the kernel; here: may we sleep at all.
            sleep: if info.sleep == abi::SLEEP_WAIT { SleepKind::Hlt } else { SleepKind::Never },
            idle_pstate_after_ticks: Some(info.idle_pstate_after_ticks).filter(|&t| t > 0),
        };
        // SAFETY: the kernel maps a zeroed, writable page at `STATS_ADDR` for
        // every server, for its whole life; only this server writes it (the
        // kernel reads it as untrusted figures), and `open` is called once.
        // An old kernel without the page would fault this server only.
        let stats = Some(unsafe { &*(abi::STATS_ADDR as *const AtomicU64) });
        Ok(Channel {
            info,
            mover_sleeps: info.mover_sleeps != 0,
            race_delay_ticks: info.race_delay_ticks,
            stats,
            pause_reported: 0,
            waited: false,
            outbox,
            inboxes,
            inbox_count,
            next_inbox: 0,
            next_sequence: 0,
            governor: Governor::new(policy),
            sleeps_requested: 0,
            sleeps: 0,
            sleeps_withdrawn: 0,
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

    /// The endpoint number that reaches the server with `badge`, if held.
    pub fn endpoint_for_badge(&self, badge: u64) -> Option<u32> {
        let count = (self.info.endpoint_count as usize).min(abi::MAX_ENDPOINTS);
        self.info.endpoint_badges[..count].iter().position(|&b| b == badge && b != 0).map(|i| i as u32)
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
        self.wake_mover_if_asleep();
        Ok(())
    }

    /// After publishing: if the mover may sleep and announced it, wake it
    /// (one fence and one load per call; a system call only when it sleeps).
    #[inline]
    fn wake_mover_if_asleep(&mut self) {
        if self.mover_sleeps && self.outbox.consumer_needs_wakeup() {
            crate::syscall3(abi::nr::WAKE_MOVER, 0, 0, 0);
        }
    }

    /// Queues a message, spinning (and draining nothing) while the outbox is full.
    #[inline]
    pub fn send_message(&mut self, message: &Message) {
        while self.outbox.push(message).is_err() {
            core::hint::spin_loop();
        }
        self.wake_mover_if_asleep();
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
            self.wake_mover_if_asleep();
        }
        sent
    }

    /// The next message from any inbox, if one is waiting (inboxes are
    /// polled round-robin so no mover starves).
    #[inline]
    pub fn try_recv(&mut self) -> Option<Message> {
        for _ in 0..self.inbox_count {
            let index = self.next_inbox;
            self.next_inbox = if index + 1 == self.inbox_count { 0 } else { index + 1 };
            if let Some(message) = self.inboxes[index].as_mut().and_then(Consumer::pop) {
                return Some(message);
            }
        }
        None
    }

    /// Waits for the next message, escalating as the core's power policy
    /// says: re-poll, then `pause` between polls, then sleep in the kernel
    /// until a mover delivers (see `docs/power.md`).
    #[inline]
    pub fn recv(&mut self) -> Message {
        loop {
            if let Some(message) = self.try_recv() {
                // Only a wait that reached the governor has state to reset:
                // a message that is already there costs no more than a poll.
                if self.waited {
                    self.waited = false;
                    if self.governor.work_found() {
                        idle_pstate(false);
                    }
                    self.report_pause_time();
                }
                return message;
            }
            self.waited = true;
            match self.governor.idle(crate::rdtsc) {
                Step::Spin => {}
                Step::Pause => core::hint::spin_loop(),
                Step::Sleep => {
                    self.report_pause_time();
                    self.sleep();
                }
                Step::LowerPstate => idle_pstate(true),
            }
        }
    }

    /// Publishes the pause time on the statistics page (read by the kernel
    /// for the power report) if it changed: before each sleep and when a
    /// message ends a wait.
    #[inline]
    fn report_pause_time(&mut self) {
        let paused = self.governor.pause_ticks();
        if paused != self.pause_reported
            && let Some(stats) = self.stats
        {
            self.pause_reported = paused;
            // Relaxed: a statistic, read whenever the kernel reports.
            stats.store(paused, Ordering::Relaxed);
        }
    }

    /// Announces sleep on every inbox (the wake-flag protocol), and if all
    /// are still empty asks the kernel to sleep until a mover delivers.
    fn sleep(&mut self) {
        // The race-test knob widens the windows before and after the
        // announcements (no effect normally: the delay is 0).
        crate::spin_ticks(self.race_delay_ticks);
        let mut announced = 0;
        let mut all_empty = true;
        for inbox in self.inboxes.iter_mut().take(self.inbox_count).flatten() {
            if !inbox.prepare_to_sleep() {
                self.sleeps_withdrawn += 1;
                all_empty = false;
                break;
            }
            announced += 1;
        }
        if all_empty {
            crate::spin_ticks(self.race_delay_ticks);
            self.sleeps_requested += 1;
            if crate::syscall3(abi::nr::WAIT, 0, 0, 0) == 1 {
                self.sleeps += 1;
            }
        }
        for inbox in self.inboxes.iter_mut().take(announced).flatten() {
            inbox.finish_sleep();
        }
    }

    /// Copies up to `out.len()` waiting messages into `out`; returns how many.
    #[inline]
    pub fn recv_batch(&mut self, out: &mut [Message]) -> usize {
        let mut got = 0;
        for _ in 0..self.inbox_count {
            let index = self.next_inbox;
            self.next_inbox = if index + 1 == self.inbox_count { 0 } else { index + 1 };
            if let Some(inbox) = self.inboxes[index].as_mut() {
                got += inbox.pop_into(&mut out[got..]);
            }
            if got == out.len() {
                break;
            }
        }
        got
    }
}
