//! The consumer handle: copies messages out of slots into private memory
//! and releases them with one Release store of the consumer index per pop
//! or per batch.
//!
//! Invariants:
//! - `next_read_index` is private and authoritative: the shared consumer
//!   index is only ever written from it, never read back.
//! - `cached_producer_index` holds only values that passed the range check
//!   `value - next_read_index <= capacity`, so `available` is always in
//!   `0..=capacity`.
//! - A slot is copied word by word, each word loaded exactly once, into a
//!   private `Message` before anything looks at it (no double fetch); no
//!   reference to slot memory ever leaves this module.

use crate::error::RingError;
use crate::layout::{ROOM_NOT_WANTED, Slot, WAKE_STATE_AWAKE, WAKE_STATE_SLEEPING};
use crate::message::{MESSAGE_WORDS, Message};
use crate::sync::{AtomicU64, Ordering, fence};

/// The reading end of a ring. `Send`, not `Clone`: there is one consumer.
pub struct Consumer<'a> {
    producer_index: &'a AtomicU64,
    consumer_index: &'a AtomicU64,
    wake_state: &'a AtomicU64,
    room_wanted: &'a AtomicU64,
    slots: &'a [Slot],
    /// Index of the next slot to read. Private and authoritative.
    next_read_index: u64,
    /// Last validated producer index; everything below it is readable.
    cached_producer_index: u64,
    /// `next_read_index` when the room-wanted word was last looked at: a
    /// release since then makes [`Consumer::room_check_due`] true.
    room_checked_at: u64,
}

impl<'a> Consumer<'a> {
    pub(crate) fn new(
        producer_index: &'a AtomicU64,
        consumer_index: &'a AtomicU64,
        wake_state: &'a AtomicU64,
        room_wanted: &'a AtomicU64,
        slots: &'a [Slot],
    ) -> Self {
        // Relaxed: pairs with nothing. The region was initialised before this
        // handle was made (same thread, or handed over with synchronisation).
        let next_read_index = consumer_index.load(Ordering::Relaxed);
        Self::starting_at(producer_index, consumer_index, wake_state, room_wanted, slots, next_read_index)
    }

    /// A handle whose private index is `next_read_index`, read from nowhere.
    pub(crate) fn starting_at(
        producer_index: &'a AtomicU64,
        consumer_index: &'a AtomicU64,
        wake_state: &'a AtomicU64,
        room_wanted: &'a AtomicU64,
        slots: &'a [Slot],
        next_read_index: u64,
    ) -> Self {
        Consumer {
            producer_index,
            consumer_index,
            wake_state,
            room_wanted,
            slots,
            next_read_index,
            // "Empty" until the first refresh reads and checks the real value.
            cached_producer_index: next_read_index,
            room_checked_at: next_read_index,
        }
    }

    /// Number of slots in the ring.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Index of the next message to read.
    #[inline]
    pub fn next_read_index(&self) -> u64 {
        self.next_read_index
    }

    /// Forgets what the last look at the producer index promised: the next
    /// read looks again. For a ring the kernel re-initialised at
    /// [`Consumer::next_read_index`] (a restarted server's fresh outbox),
    /// where the old promise names messages that no longer exist.
    #[inline]
    pub fn forget_published(&mut self) {
        self.cached_producer_index = self.next_read_index;
    }

    /// Address of the shared producer index word: the line to arm MONITOR
    /// on before [`Consumer::prepare_to_sleep`] when sleeping with MWAIT.
    #[inline]
    pub fn producer_index_address(&self) -> *const u64 {
        core::ptr::from_ref(self.producer_index).cast::<u64>()
    }

    #[inline]
    fn cached_available(&self) -> u64 {
        self.cached_producer_index.wrapping_sub(self.next_read_index)
    }

    /// Reads the shared producer index once, checks it, caches it; returns readable messages.
    #[inline]
    fn refresh_producer_index(&mut self) -> Result<u64, RingError> {
        // Acquire: pairs with the Release store in `Producer::publish`, so
        // the slot words stored before it are visible to `read_slot`.
        let peer_index = self.producer_index.load(Ordering::Acquire);
        let capacity = self.slots.len() as u64;
        let available = peer_index.wrapping_sub(self.next_read_index);
        if available > capacity {
            return Err(RingError::PeerIndexOutOfRange { own_index: self.next_read_index, peer_index, capacity });
        }
        self.cached_producer_index = peer_index;
        Ok(available)
    }

    /// Readable messages, re-reading the producer index only if the cache shows fewer than `wanted`.
    #[inline]
    fn available(&mut self, wanted: u64) -> Result<u64, RingError> {
        let cached = self.cached_available();
        if cached >= wanted { Ok(cached) } else { self.refresh_producer_index() }
    }

    /// Copies the slot of `index` into private memory, each word loaded once.
    #[inline(always)]
    fn read_slot(&self, index: u64) -> Message {
        let slot_number = (index & (self.slots.len() as u64 - 1)) as usize;
        // SAFETY: `slots.len()` is a non-zero power of two (RingRegion
        // invariant), so `index & (len - 1) < len`.
        let slot = unsafe { self.slots.get_unchecked(slot_number) };
        let mut words = [0u64; MESSAGE_WORDS];
        for (copy, word) in words.iter_mut().zip(&slot.words) {
            // Relaxed: made visible by the Acquire load in
            // `refresh_producer_index` (pairs with the Release store in
            // `Producer::publish`). Atomic so that a peer writing the word
            // at the same moment is not a data race; loaded exactly once.
            *copy = word.load(Ordering::Relaxed);
        }
        Message::from_words(words)
    }

    #[inline(always)]
    fn release_to(&mut self, new_read_index: u64) {
        self.next_read_index = new_read_index;
        // Release: pairs with the Acquire load in
        // `Producer::refresh_consumer_index`; our slot loads happen before
        // the producer overwrites the released slots.
        self.consumer_index.store(new_read_index, Ordering::Release);
    }

    /// Copies out the oldest message and releases its slot. An empty ring —
    /// or one whose producer index is corrupt, which reads as empty here —
    /// returns `None`.
    #[inline]
    pub fn pop(&mut self) -> Option<Message> {
        self.pop_untrusted().ok()
    }

    /// Copies out the oldest message and releases its slot, for a consumer
    /// that does not trust the producer (the mover reading a server's
    /// outbox). The shared producer index is read at most once and
    /// range-checked; the message is a private copy, still to be checked
    /// with [`Message::validate`] before use.
    #[inline]
    pub fn pop_untrusted(&mut self) -> Result<Message, RingError> {
        if self.available(1)? == 0 {
            return Err(RingError::Empty);
        }
        let message = self.read_slot(self.next_read_index);
        self.release_to(self.next_read_index.wrapping_add(1));
        Ok(message)
    }

    /// Up to `max` published messages to copy out and then release with one
    /// store. Fewer (maybe none) if fewer are published; a corrupt producer
    /// index reads as empty.
    #[inline]
    pub fn read(&mut self, max: usize) -> ReadBatch<'_, 'a> {
        let available = self.available(max as u64).unwrap_or(0);
        let len = available.min(max as u64);
        ReadBatch { consumer: self, len }
    }

    /// [`Consumer::read`] for a consumer that does not trust the producer:
    /// `Err(Empty)` if nothing is published, `Err(PeerIndexOutOfRange)` if
    /// the producer index is corrupt.
    #[inline]
    pub fn read_untrusted(&mut self, max: usize) -> Result<ReadBatch<'_, 'a>, RingError> {
        let available = self.available(max as u64)?;
        if available == 0 || max == 0 {
            return Err(RingError::Empty);
        }
        let len = available.min(max as u64);
        Ok(ReadBatch { consumer: self, len })
    }

    /// Copies as many messages as are published (up to `out.len()`) into
    /// `out` and releases them with one store; returns how many.
    #[inline]
    pub fn pop_into(&mut self, out: &mut [Message]) -> usize {
        let batch = self.read(out.len());
        let count = batch.len();
        for (offset, destination) in out[..count].iter_mut().enumerate() {
            *destination = batch.consumer.read_slot(batch.consumer.next_read_index.wrapping_add(offset as u64));
        }
        batch.release()
    }

    /// Wake-flag protocol, consumer half: announce sleep, then look once
    /// more. `true`: the ring is still empty and the caller may sleep (a
    /// producer publishing from now on will see the announcement and ring
    /// the doorbell); `false`: messages (or a corrupt index) arrived, the
    /// announcement is withdrawn, keep polling.
    ///
    /// For MWAIT arm MONITOR on [`Consumer::producer_index_address`]
    /// *before* this call; for HLT disable interrupts before it and use
    /// `sti; hlt`. After waking for any reason call [`Consumer::finish_sleep`].
    #[inline]
    pub fn prepare_to_sleep(&mut self) -> bool {
        // Relaxed: ordered before the re-check below by the SeqCst fence.
        self.wake_state.store(WAKE_STATE_SLEEPING, Ordering::Relaxed);
        // SeqCst fence: pairs with the SeqCst fence in
        // `Producer::consumer_needs_wakeup`: either the producer's load sees
        // SLEEPING, or our re-check below sees its new producer index.
        fence(Ordering::SeqCst);
        match self.refresh_producer_index() {
            Ok(0) => true,
            _ => {
                self.finish_sleep();
                false
            }
        }
    }

    /// [`Consumer::prepare_to_sleep`] for a ring whose producer is
    /// untrusted: `Ok(true)` empty and announced, `Ok(false)` messages
    /// arrived (announcement withdrawn), `Err` the producer index is out of
    /// range. On `Err` the announcement is **kept**: a corrupt ring has
    /// nothing to read, and if its producer repairs the index and publishes
    /// it will see SLEEPING and ring the doorbell.
    #[inline]
    pub fn prepare_to_sleep_untrusted(&mut self) -> Result<bool, RingError> {
        // Relaxed: ordered before the re-check below by the SeqCst fence.
        self.wake_state.store(WAKE_STATE_SLEEPING, Ordering::Relaxed);
        // SeqCst fence: pairs with the SeqCst fence in
        // `Producer::consumer_needs_wakeup`, as in `prepare_to_sleep`.
        fence(Ordering::SeqCst);
        match self.refresh_producer_index() {
            Ok(0) => Ok(true),
            Ok(_) => {
                self.finish_sleep();
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }

    /// Room protocol, consumer half: whether slots were released since
    /// [`Consumer::producer_waits_for_room`] last looked. One comparison of
    /// private words; call it when a poll finds the ring empty, and the
    /// check when it says so.
    #[inline]
    pub fn room_check_due(&self) -> bool {
        self.next_read_index != self.room_checked_at
    }

    /// Room protocol, consumer half: after releasing slots, did the
    /// producer find the ring full and announce that it may sleep? `true`
    /// exactly when the caller must wake the producer (this call claimed
    /// the wake-up). Call it once the ring is empty (after
    /// [`Consumer::room_check_due`]): a producer that waits is then woken
    /// at the latest when everything it had published was taken.
    ///
    /// ```text
    /// consumer                           producer (wait_for_room)
    /// store consumer index (Release)     store room wanted = WANTED
    /// fence(SeqCst)  <-- pairs with -->  fence(SeqCst)
    /// load room wanted                   load consumer index: still full?
    /// ```
    /// At least one side sees the other's store: the producer sees the
    /// room (and does not sleep), or this call sees WANTED (and wakes it).
    #[cold]
    #[inline(never)]
    pub fn producer_waits_for_room(&mut self) -> bool {
        self.room_checked_at = self.next_read_index;
        // SeqCst fence: pairs with the SeqCst fence in
        // `Producer::wait_for_room`; orders our earlier consumer-index
        // store (`release_to`) before the load below.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above.
        if self.room_wanted.load(Ordering::Relaxed) == ROOM_NOT_WANTED {
            return false;
        }
        // Relaxed swap: claims the wake-up, one per announcement; races only
        // with the producer's own stores in `wait_for_room` /
        // `stop_waiting_for_room`. Garbage reads as wanted: one spurious wake-up.
        self.room_wanted.swap(ROOM_NOT_WANTED, Ordering::Relaxed) != ROOM_NOT_WANTED
    }

    /// Announces sleep whatever the ring holds: for a consumer that cannot
    /// take the messages there now (the mover, whose head message waits
    /// for room elsewhere) but wants a publish behind them to wake it.
    /// Withdraw with [`Consumer::finish_sleep`].
    #[inline]
    pub fn announce_sleep_untrusted(&mut self) {
        // Relaxed, then the SeqCst fence that pairs with the producer's in
        // `Producer::consumer_needs_wakeup`, as in `prepare_to_sleep`.
        self.wake_state.store(WAKE_STATE_SLEEPING, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Withdraws a sleep announcement (after waking, or to keep polling).
    #[inline]
    pub fn finish_sleep(&mut self) {
        // Relaxed: only stops doorbells; a doorbell that was already claimed
        // (the producer's swap in `consumer_needs_wakeup`) is spurious and harmless.
        self.wake_state.store(WAKE_STATE_AWAKE, Ordering::Relaxed);
    }
}

/// Published messages obtained by [`Consumer::read`]: copy them out, then
/// [`ReadBatch::release`] frees all their slots with one Release store.
/// Dropping the batch without releasing leaves them in the ring.
pub struct ReadBatch<'c, 'a> {
    consumer: &'c mut Consumer<'a>,
    len: u64,
}

impl ReadBatch<'_, '_> {
    /// Messages in the batch.
    #[inline]
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// True if no message was available.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A private copy of message `position` of the batch (`None` past the
    /// end). Every call copies the slot again; a hostile producer may have
    /// changed it in between, so copy once and keep the copy.
    #[inline]
    pub fn get(&self, position: usize) -> Option<Message> {
        if (position as u64) < self.len {
            Some(self.consumer.read_slot(self.consumer.next_read_index.wrapping_add(position as u64)))
        } else {
            None
        }
    }

    /// Private copies of the batch's messages, oldest first.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = Message> + '_ {
        (0..self.len).map(|offset| self.consumer.read_slot(self.consumer.next_read_index.wrapping_add(offset)))
    }

    /// Frees the first `count` messages of the batch (at most all of them)
    /// with one Release store and leaves the rest in the ring, to be read
    /// again; returns how many were freed. The mover uses this when a
    /// destination is full part-way through a batch (backpressure).
    #[inline]
    pub fn release_first(self, count: usize) -> usize {
        let count = (count as u64).min(self.len);
        if count > 0 {
            let new_read_index = self.consumer.next_read_index.wrapping_add(count);
            self.consumer.release_to(new_read_index);
        }
        count as usize
    }

    /// Frees every slot of the batch with one Release store; returns how many.
    #[inline]
    pub fn release(self) -> usize {
        if self.len > 0 {
            let new_read_index = self.consumer.next_read_index.wrapping_add(self.len);
            self.consumer.release_to(new_read_index);
        }
        self.len as usize
    }
}
