//! The consumer handle: finds each message by the stamp in its slot, copies
//! it into private memory and releases slots with one Release store of the
//! consumer index per pop or per batch.
//!
//! Invariants:
//! - `next_read_index` is private and authoritative: the shared consumer
//!   index is only ever written from it, never read back.
//! - Message `n` is taken only after an Acquire load of slot `n`'s stamp
//!   word found exactly `stamp_for(n)`; a batch counts consecutive such
//!   slots from `next_read_index`, at most `capacity` of them. The shared
//!   producer index is never read on the message path (only its address is
//!   handed out), so a peer's lie there changes nothing here.
//! - A slot is copied word by word, each word loaded exactly once, into a
//!   private `Message` before anything looks at it (no double fetch), and
//!   the copy's stamp byte is cleared; no reference to slot memory ever
//!   leaves this module.

use crate::error::RingError;
use crate::layout::{
    ROOM_NOT_WANTED, STAMP_MASK, STAMP_PUBLISHED, STAMP_SHIFT, STAMP_WORD, Slot, WAKE_STATE_AWAKE, WAKE_STATE_SLEEPING,
    stamp_bits, stamp_for,
};
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
    /// [`Consumer::next_read_index`] (a restarted server's fresh outbox).
    /// Nothing is cached any more (every read looks at the stamps in the
    /// slots), so this does nothing; kept so that callers need not change.
    #[inline]
    pub fn forget_published(&mut self) {}

    /// Address of the shared producer index word. The producer still stores
    /// it after every push and batch, so MONITOR armed on it wakes on a
    /// publish; [`Consumer::next_slot_address`] is the line the consumer
    /// actually polls.
    #[inline]
    pub fn producer_index_address(&self) -> *const u64 {
        core::ptr::from_ref(self.producer_index).cast::<u64>()
    }

    /// Address of the slot of [`Consumer::next_read_index`]: the line whose
    /// stamp publishes the next message, to arm MONITOR on before
    /// [`Consumer::prepare_to_sleep`] when sleeping with MWAIT.
    #[inline]
    pub fn next_slot_address(&self) -> *const u8 {
        core::ptr::from_ref(self.slot(self.next_read_index)).cast::<u8>()
    }

    #[inline(always)]
    fn slot(&self, index: u64) -> &'a Slot {
        let slot_number = (index & (self.slots.len() as u64 - 1)) as usize;
        // SAFETY: `slots.len()` is a non-zero power of two (RingRegion
        // invariant), so `index & (len - 1) < len`.
        unsafe { self.slots.get_unchecked(slot_number) }
    }

    /// Loads the stamp word of `index`'s slot once; `Ok` with the word if it
    /// carries `index`'s stamp (the message is published).
    #[inline(always)]
    fn stamp_word(&self, index: u64) -> Result<u64, u64> {
        self.published_slot(index).map(|(_, word)| word)
    }

    /// [`Consumer::stamp_word`] with the slot it loaded from, so that the
    /// copy that follows need not find the slot again: the Acquire load
    /// keeps the compiler from holding `self`'s fields in registers across
    /// it, and finding the slot anew cost a pop five more instructions.
    #[inline(always)]
    fn published_slot(&self, index: u64) -> Result<(&'a Slot, u64), u64> {
        let slot = self.slot(index);
        let expected = stamp_bits(index, self.slots.len().trailing_zeros());
        // Acquire: pairs with the Release stamp store in
        // `Producer::write_slot` / `WriteBatch::commit`; the slot's other
        // words stored before it are visible to the Relaxed loads that follow.
        let word = slot.words[STAMP_WORD].load(Ordering::Acquire);
        if word & STAMP_MASK == expected { Ok((slot, word)) } else { Err(word) }
    }

    /// [`Consumer::not_published`] with the answers an empty ring gives (no
    /// stamp, or the previous lap's) decided inline: the mover asks this of
    /// every empty outbox on every pass, and a call per ring made its scan
    /// of 64 rings cost twice what it did with the producer index.
    #[inline(always)]
    fn why_not_published(&self, index: u64, word: u64) -> RingError {
        if self.reads_empty(index, word) { RingError::Empty } else { self.not_published(index, word) }
    }

    /// Whether `word`, loaded from `index`'s slot, is what an empty ring
    /// leaves there: no stamp, or the previous lap's.
    #[inline(always)]
    fn reads_empty(&self, index: u64, word: u64) -> bool {
        let stamp = word & STAMP_MASK;
        let previous_lap = stamp_bits(index.wrapping_sub(self.slots.len() as u64), self.slots.len().trailing_zeros());
        stamp & (u64::from(STAMP_PUBLISHED) << STAMP_SHIFT) == 0 || stamp == previous_lap
    }

    /// Why the stamp word `word` found in `index`'s slot does not publish
    /// it: `Empty` for what a protocol-following producer leaves before
    /// publishing (no stamp, or the previous lap's), else `PeerStampInvalid`.
    #[cold]
    #[inline(never)]
    fn not_published(&self, index: u64, word: u64) -> RingError {
        let lap_shift = self.slots.len().trailing_zeros();
        let stamp = (word >> STAMP_SHIFT) as u8;
        let previous_lap = stamp_for(index.wrapping_sub(self.slots.len() as u64), lap_shift);
        if stamp & STAMP_PUBLISHED == 0 || stamp == previous_lap {
            RingError::Empty
        } else {
            RingError::PeerStampInvalid { own_index: index, stamp, expected: stamp_for(index, lap_shift) }
        }
    }

    /// Published messages from `next_read_index` on, up to `max` (and at
    /// most `capacity`): the run of slots whose stamps publish their
    /// indices. `Err` only if the very first slot is not published.
    #[inline]
    fn available(&self, max: u64) -> Result<u64, RingError> {
        // The first slot on its own, straight-line: an empty ring (the
        // mover's answer for most outboxes on most passes) is one load and
        // two compares, not a trip into the loop below.
        let first = self.next_read_index;
        if let Err(word) = self.stamp_word(first) {
            return Err(self.why_not_published(first, word));
        }
        let limit = max.min(self.slots.len() as u64);
        let mut count = 1;
        while count < limit && self.stamp_word(first.wrapping_add(count)).is_ok() {
            count += 1;
        }
        Ok(count)
    }

    /// Copies the slot of `index` into private memory, each word loaded
    /// once, the stamp byte cleared. Call only after `stamp_word(index)`
    /// (or `available`) said the slot is published.
    #[inline(always)]
    fn read_slot(&self, index: u64) -> Message {
        // Relaxed: made visible by the Acquire stamp load that found the
        // slot published (pairs with the producer's Release stamp store).
        let stamp_word = self.slot(index).words[STAMP_WORD].load(Ordering::Relaxed);
        self.read_published_slot(index, stamp_word)
    }

    /// Copies the slot of `index` whose stamp word `stamp_word` was just
    /// loaded (and found published): the other seven words loaded once
    /// each, the stamp word's value reused, its stamp byte cleared.
    #[inline(always)]
    fn read_published_slot(&self, index: u64, stamp_word: u64) -> Message {
        Self::copy_published(self.slot(index), stamp_word)
    }

    /// Copies `slot`, whose stamp word `stamp_word` was just loaded and
    /// found published (see [`Consumer::read_published_slot`]).
    #[inline(always)]
    fn copy_published(slot: &Slot, stamp_word: u64) -> Message {
        let mut words = [0u64; MESSAGE_WORDS];
        for (position, (copy, word)) in words.iter_mut().zip(&slot.words).enumerate() {
            *copy = if position == STAMP_WORD {
                stamp_word & !STAMP_MASK
            } else {
                // Relaxed: made visible by the Acquire load of `stamp_word`
                // (pairs with the producer's Release stamp store); loaded once.
                word.load(Ordering::Relaxed)
            };
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

    /// One look at the next slot's stamp, for a reader that visits many
    /// rings (the mover): `false` exactly when [`Consumer::read_untrusted`]
    /// would answer `Err(Empty)` now (no stamp, or the previous lap's);
    /// `true` for a published message and for a stamp an honest producer
    /// cannot leave there, which the read then reports. Loads one word and
    /// changes nothing; nothing it saw is used, the read loads again.
    #[inline(always)]
    pub fn may_have_work(&self) -> bool {
        let index = self.next_read_index;
        // Relaxed: only decides whether to read; the read's own Acquire
        // load of the same word is what the copy relies on.
        let word = self.slot(index).words[STAMP_WORD].load(Ordering::Relaxed);
        !self.reads_empty(index, word)
    }

    /// Copies out the oldest message and releases its slot. An empty ring —
    /// or one whose next slot carries a corrupt stamp, which reads as empty
    /// here — returns `None`.
    #[inline]
    pub fn pop(&mut self) -> Option<Message> {
        self.pop_untrusted().ok()
    }

    /// Copies out the oldest message and releases its slot, for a consumer
    /// that does not trust the producer (the mover reading a server's
    /// outbox). The stamp of the next slot is loaded once and must be
    /// exactly the one for our index; anything an honest producer cannot
    /// leave there is `Err(PeerStampInvalid)`. The message is a private
    /// copy, still to be checked with [`Message::validate`] before use.
    #[inline]
    pub fn pop_untrusted(&mut self) -> Result<Message, RingError> {
        let index = self.next_read_index;
        let (slot, stamp_word) = match self.published_slot(index) {
            Ok(found) => found,
            Err(word) => return Err(self.why_not_published(index, word)),
        };
        let message = Self::copy_published(slot, stamp_word);
        self.release_to(index.wrapping_add(1));
        Ok(message)
    }

    /// Up to `max` published messages to copy out and then release with one
    /// store. Fewer (maybe none) if fewer are published; a corrupt stamp
    /// reads as the end of what is published.
    #[inline]
    pub fn read(&mut self, max: usize) -> ReadBatch<'_, 'a> {
        let available = self.available(max as u64).unwrap_or(0);
        let len = available.min(max as u64);
        ReadBatch { consumer: self, len }
    }

    /// [`Consumer::read`] for a consumer that does not trust the producer:
    /// `Err(Empty)` if nothing is published, `Err(PeerStampInvalid)` if the
    /// next slot carries a stamp no honest producer leaves there. A corrupt
    /// stamp further on ends the batch; it is reported once it is next.
    #[inline]
    pub fn read_untrusted(&mut self, max: usize) -> Result<ReadBatch<'_, 'a>, RingError> {
        if max == 0 {
            return Err(RingError::Empty);
        }
        let len = self.available(max as u64)?;
        if len == 0 {
            return Err(RingError::Empty);
        }
        Ok(ReadBatch { consumer: self, len })
    }

    /// Copies as many messages as are published (up to `out.len()`) into
    /// `out` and releases them with one store; returns how many.
    #[inline]
    pub fn pop_into(&mut self, out: &mut [Message]) -> usize {
        let limit = out.len().min(self.slots.len());
        let mut count = 0;
        while count < limit {
            let index = self.next_read_index.wrapping_add(count as u64);
            let Ok((slot, stamp_word)) = self.published_slot(index) else { break };
            out[count] = Self::copy_published(slot, stamp_word);
            count += 1;
        }
        if count > 0 {
            self.release_to(self.next_read_index.wrapping_add(count as u64));
        }
        count
    }

    /// Wake-flag protocol, consumer half: announce sleep, then look once
    /// more. `true`: the ring is still empty and the caller may sleep (a
    /// producer publishing from now on will see the announcement and ring
    /// the doorbell); `false`: messages (or a corrupt index) arrived, the
    /// announcement is withdrawn, keep polling.
    ///
    /// For MWAIT arm MONITOR on [`Consumer::next_slot_address`] (or
    /// [`Consumer::producer_index_address`]) *before* this call; for HLT disable interrupts before it and use
    /// `sti; hlt`. After waking for any reason call [`Consumer::finish_sleep`].
    #[inline]
    pub fn prepare_to_sleep(&mut self) -> bool {
        // Relaxed: ordered before the re-check below by the SeqCst fence.
        self.wake_state.store(WAKE_STATE_SLEEPING, Ordering::Relaxed);
        // SeqCst fence: pairs with the SeqCst fence in
        // `Producer::consumer_needs_wakeup`: either the producer's load sees
        // SLEEPING, or our re-check below sees the stamp it stored.
        fence(Ordering::SeqCst);
        let index = self.next_read_index;
        match self.stamp_word(index) {
            Err(word) if self.why_not_published(index, word) == RingError::Empty => true,
            _ => {
                self.finish_sleep();
                false
            }
        }
    }

    /// [`Consumer::prepare_to_sleep`] for a ring whose producer is
    /// untrusted: `Ok(true)` empty and announced, `Ok(false)` messages
    /// arrived (announcement withdrawn), `Err` the next slot carries a
    /// corrupt stamp. On `Err` the announcement is **kept**: a corrupt ring
    /// has nothing to read, and if its producer repairs the slot and
    /// publishes it will see SLEEPING and ring the doorbell.
    #[inline]
    pub fn prepare_to_sleep_untrusted(&mut self) -> Result<bool, RingError> {
        // Relaxed: ordered before the re-check below by the SeqCst fence.
        self.wake_state.store(WAKE_STATE_SLEEPING, Ordering::Relaxed);
        // SeqCst fence: pairs with the SeqCst fence in
        // `Producer::consumer_needs_wakeup`, as in `prepare_to_sleep`.
        fence(Ordering::SeqCst);
        let index = self.next_read_index;
        match self.stamp_word(index) {
            Ok(_) => {
                self.finish_sleep();
                Ok(false)
            }
            Err(word) => match self.why_not_published(index, word) {
                RingError::Empty => Ok(true),
                err => Err(err),
            },
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
