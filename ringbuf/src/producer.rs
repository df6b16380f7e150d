//! The producer handle: writes messages into slots and publishes each one
//! with a Release store of its slot's stamp word (see [`crate::layout`]),
//! then stores the producer index once per push or per batch.
//!
//! Invariants:
//! - A slot's stamp word is stored last, with Release, after the slot's
//!   other seven words; it carries `stamp_for(index)` only when the message
//!   is published. A [`WriteBatch`] writes its slots with the stamp byte
//!   zero (unpublished) and stamps them in [`WriteBatch::commit`], so a
//!   batch that is dropped publishes nothing.
//! - A batch (`push_slice`, `commit`) stamps its first slot last. The
//!   consumer takes slots strictly in order from its index, so the batch
//!   appears at once; a slot further on with its stamp already set is
//!   never taken before the first one.
//! - The shared producer index is stored after the stamps it covers: a
//!   reader of it learns a lower bound of what is published. The consumer
//!   does not read it.
//! - `next_write_index` is private and authoritative: the shared producer
//!   index is only ever *written* from it, never read back (a hostile
//!   consumer may overwrite the shared word; that cannot move us).
//! - `cached_consumer_index` holds only values that passed the range check
//!   `next_write_index - value <= capacity`, so `free` is always in
//!   `0..=capacity` and a write never overtakes an unreleased slot of a
//!   consumer that follows the protocol.
//! - The consumer index is read once per refresh, into a local, and checked
//!   before use (no double fetch).

use crate::error::{RingError, RingFull};
use crate::layout::{ROOM_NOT_WANTED, ROOM_WANTED, STAMP_MASK, STAMP_WORD, Slot, WAKE_STATE_AWAKE, stamp_bits};
use crate::message::{MESSAGE_WORDS, Message};
use crate::sync::{AtomicU64, Ordering, fence};

/// The writing end of a ring. `Send`, not `Clone`: there is one producer.
pub struct Producer<'a> {
    producer_index: &'a AtomicU64,
    consumer_index: &'a AtomicU64,
    wake_state: &'a AtomicU64,
    room_wanted: &'a AtomicU64,
    slots: &'a [Slot],
    /// Index of the next slot to write. Private and authoritative.
    next_write_index: u64,
    /// Last validated consumer index; everything below it is free.
    cached_consumer_index: u64,
}

impl<'a> Producer<'a> {
    pub(crate) fn new(
        producer_index: &'a AtomicU64,
        consumer_index: &'a AtomicU64,
        wake_state: &'a AtomicU64,
        room_wanted: &'a AtomicU64,
        slots: &'a [Slot],
    ) -> Self {
        // Relaxed: pairs with nothing. The region was initialised before this
        // handle was made (same thread, or handed over with synchronisation).
        let next_write_index = producer_index.load(Ordering::Relaxed);
        Self::starting_at(producer_index, consumer_index, wake_state, room_wanted, slots, next_write_index)
    }

    /// A handle whose private index is `next_write_index`, read from nowhere.
    pub(crate) fn starting_at(
        producer_index: &'a AtomicU64,
        consumer_index: &'a AtomicU64,
        wake_state: &'a AtomicU64,
        room_wanted: &'a AtomicU64,
        slots: &'a [Slot],
        next_write_index: u64,
    ) -> Self {
        Producer {
            producer_index,
            consumer_index,
            wake_state,
            room_wanted,
            slots,
            next_write_index,
            // "Full" until the first refresh reads and checks the real value.
            cached_consumer_index: next_write_index.wrapping_sub(slots.len() as u64),
        }
    }

    /// Number of slots in the ring.
    #[inline]
    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Index the next written message will get.
    #[inline]
    pub fn next_write_index(&self) -> u64 {
        self.next_write_index
    }

    /// Free slots as of the last look at the consumer index (a lower bound).
    #[inline]
    fn cached_free(&self) -> u64 {
        self.slots.len() as u64 - self.next_write_index.wrapping_sub(self.cached_consumer_index)
    }

    /// Reads the shared consumer index once, checks it, caches it; returns free slots.
    #[inline]
    fn refresh_consumer_index(&mut self) -> Result<u64, RingError> {
        // Acquire: pairs with the Release store in `Consumer::release_to`, so
        // the consumer's copies out of the slots it released happen before
        // we overwrite those slots.
        let peer_index = self.consumer_index.load(Ordering::Acquire);
        let capacity = self.slots.len() as u64;
        let in_flight = self.next_write_index.wrapping_sub(peer_index);
        if in_flight > capacity {
            return Err(RingError::PeerIndexOutOfRange { own_index: self.next_write_index, peer_index, capacity });
        }
        self.cached_consumer_index = peer_index;
        Ok(capacity - in_flight)
    }

    /// Free slots, re-reading the consumer index only if the cache shows fewer than `wanted`.
    #[inline]
    fn free_slots(&mut self, wanted: u64) -> Result<u64, RingError> {
        let cached = self.cached_free();
        if cached >= wanted { Ok(cached) } else { self.refresh_consumer_index() }
    }

    #[inline(always)]
    fn slot(&self, index: u64) -> &'a Slot {
        let slot_number = (index & (self.slots.len() as u64 - 1)) as usize;
        // SAFETY: `slots.len()` is a non-zero power of two (RingRegion
        // invariant), so `index & (len - 1) < len`.
        unsafe { self.slots.get_unchecked(slot_number) }
    }

    /// `log2(capacity)`: the shift from an index to its lap number.
    #[inline(always)]
    fn lap_shift(&self) -> u32 {
        self.slots.len().trailing_zeros()
    }

    /// Writes the message with index `index` into its slot: the seven other
    /// words, then the stamp word. `publish_now`: the stamp word carries the
    /// index's stamp (the message is visible from this store on); otherwise
    /// its stamp byte is zero, and [`WriteBatch::commit`] stamps it later.
    #[inline(always)]
    fn write_slot(&self, index: u64, message: &Message, publish_now: bool) {
        let slot = self.slot(index);
        let words = message.to_words();
        for (position, (word, value)) in slot.words.iter().zip(words).enumerate() {
            if position != STAMP_WORD {
                // Relaxed: made visible to the consumer by the Release store
                // of the stamp word below (pairs with the Acquire stamp load
                // in `Consumer::stamp_word`). Atomic only so that a peer
                // writing the same word is a value change, not a data race.
                word.store(value, Ordering::Relaxed);
            }
        }
        // Whatever the message carried in the ring's byte is overwritten.
        let unstamped = words[STAMP_WORD] & !STAMP_MASK;
        let stamp = if publish_now { stamp_bits(index, self.lap_shift()) } else { 0 };
        // Release: pairs with the Acquire load in `Consumer::stamp_word`; the
        // seven stores above are visible to a consumer that sees this stamp.
        // Unstamped (batch), it is still Release: harmless, and a slot is
        // only ever *published* by a Release store (in `WriteBatch::commit`).
        slot.words[STAMP_WORD].store(unstamped | stamp, Ordering::Release);
    }

    /// Stores the producer index (after the stamps it covers).
    #[inline(always)]
    fn publish(&mut self, new_write_index: u64) {
        self.next_write_index = new_write_index;
        // Release: orders the stamps before it, so a reader of the shared
        // producer index (tests, a debugger, MONITOR users) finds at least
        // that many messages published. The consumer does not read it; the
        // stamps publish the messages.
        self.producer_index.store(new_write_index, Ordering::Release);
    }

    /// The consumer's index, read once and range-checked (it must lie
    /// within `capacity` below [`Producer::next_write_index`]). Everything
    /// from it up to `next_write_index` is written and not yet released:
    /// what the mover hands back to senders when an inbox's owner stops.
    #[inline]
    pub fn consumer_index_untrusted(&mut self) -> Result<u64, RingError> {
        self.refresh_consumer_index()?;
        Ok(self.cached_consumer_index)
    }

    /// Copies back the slot of `index`, each word loaded once: what this
    /// producer wrote there, unless the consumer has overwritten it since
    /// (its memory; any bit pattern is a `Message`). For handing back
    /// messages a stopped consumer never took, between
    /// [`Producer::consumer_index_untrusted`] and `next_write_index`.
    /// The ring's stamp byte is cleared in the copy, as in every copy out of
    /// a ring.
    pub fn read_back(&self, index: u64) -> Message {
        let slot = self.slot(index);
        let mut words = [0u64; MESSAGE_WORDS];
        for (copy, word) in words.iter_mut().zip(&slot.words) {
            // Relaxed: our own earlier stores, or a stopped peer's; atomic
            // so that a peer still writing is a value change, not a race.
            *copy = word.load(Ordering::Relaxed);
        }
        words[STAMP_WORD] &= !STAMP_MASK;
        Message::from_words(words)
    }

    /// Writes one message and publishes it. A ring that is full — or whose
    /// consumer index is corrupt, which reads as full here — returns
    /// `Err(RingFull)` and writes nothing.
    #[inline]
    pub fn push(&mut self, message: &Message) -> Result<(), RingFull> {
        self.push_untrusted(message).map_err(|_| RingFull)
    }

    /// Writes one message and publishes it, for a producer that does not
    /// trust the consumer (the mover writing a server's inbox). The shared
    /// consumer index is read at most once and range-checked;
    /// `Err(PeerIndexOutOfRange)` reports a consumer that lied.
    #[inline]
    pub fn push_untrusted(&mut self, message: &Message) -> Result<(), RingError> {
        if self.free_slots(1)? == 0 {
            return Err(RingError::Full);
        }
        self.write_slot(self.next_write_index, message, true);
        self.publish(self.next_write_index.wrapping_add(1));
        Ok(())
    }

    /// Reserves up to `max` free slots to fill and then publish together
    /// ([`WriteBatch::commit`]). Fewer (maybe none) if the ring is fuller; a corrupt consumer
    /// index reads as full.
    #[inline]
    pub fn reserve(&mut self, max: usize) -> WriteBatch<'_, 'a> {
        let free = self.free_slots(max as u64).unwrap_or(0);
        let reserved = free.min(max as u64);
        WriteBatch { producer: self, reserved, written: 0 }
    }

    /// [`Producer::reserve`] for a producer that does not trust the
    /// consumer: `Err(Full)` if no slot is free, `Err(PeerIndexOutOfRange)`
    /// if the consumer index is corrupt.
    #[inline]
    pub fn reserve_untrusted(&mut self, max: usize) -> Result<WriteBatch<'_, 'a>, RingError> {
        let free = self.free_slots(max as u64)?;
        if free == 0 || max == 0 {
            return Err(RingError::Full);
        }
        let reserved = free.min(max as u64);
        Ok(WriteBatch { producer: self, reserved, written: 0 })
    }

    /// Writes as many of `messages` as fit and publishes them together:
    /// every slot but the first is written with its stamp, the first slot
    /// last (its Release stamp store publishes the whole run, since the
    /// consumer reads in order), then the producer index is stored once.
    /// Returns how many were written.
    ///
    /// Why the first slot last: stamped in order, a consumer that keeps up
    /// polls each slot of the batch while it is being written and takes
    /// the batch a line at a time, pulling every line away from the
    /// producer mid-write; measured, that cut batch-32/64 streaming to a
    /// third (docs/ringbuf.md, Results 2026-12-01). This way the consumer
    /// waits on one line and then finds the whole batch, as it did when the
    /// producer index published batches.
    #[inline]
    pub fn push_slice(&mut self, messages: &[Message]) -> usize {
        let free = self.free_slots(messages.len() as u64).unwrap_or(0);
        let count = free.min(messages.len() as u64) as usize;
        let Some((first, rest)) = messages[..count].split_first() else { return 0 };
        for (offset, message) in rest.iter().enumerate() {
            self.write_slot(self.next_write_index.wrapping_add(1 + offset as u64), message, true);
        }
        // Stamped out of order, but nobody can take slot `n + k` before
        // slot `n`: the consumer scans from its index and stops at the
        // first slot that is not published, and this Release store comes
        // after every store of the batch. No code runs between the stores
        // (nothing can panic or be dropped half-way).
        self.write_slot(self.next_write_index, first, true);
        self.publish(self.next_write_index.wrapping_add(count as u64));
        count
    }

    /// Room protocol, producer half: the ring is full and the caller wants
    /// to sleep until the consumer takes something. Announces it, with the
    /// fence that orders the announcement before the caller's next look at
    /// the consumer index (`refresh`/`consumer_index_untrusted`): if that
    /// look still finds no room, the caller may sleep, and the consumer's
    /// [`Consumer::producer_waits_for_room`](crate::Consumer::producer_waits_for_room)
    /// will see the announcement once it has freed a slot and emptied the
    /// ring. Withdraw with [`Producer::stop_waiting_for_room`] after waking.
    #[inline]
    pub fn wait_for_room(&mut self) {
        // Relaxed: ordered before the caller's next consumer-index load by
        // the fence (pairs with the fence in `Consumer::producer_waits_for_room`).
        self.room_wanted.store(ROOM_WANTED, Ordering::Relaxed);
        fence(Ordering::SeqCst);
    }

    /// Withdraws [`Producer::wait_for_room`] (awake again; a wake-up the
    /// consumer already claimed is spurious and harmless).
    #[inline]
    pub fn stop_waiting_for_room(&mut self) {
        // Relaxed: only stops wake-ups.
        self.room_wanted.store(ROOM_NOT_WANTED, Ordering::Relaxed);
    }

    /// Wake-flag protocol, producer half: call after publishing. Returns
    /// `true` exactly when the caller must ring the consumer's doorbell
    /// (it announced sleep and nobody has claimed the wakeup yet).
    ///
    /// ```text
    /// producer                         consumer (prepare_to_sleep)
    /// store slot stamp (Release)       store wake = SLEEPING
    /// fence(SeqCst)  <-- pairs with -> fence(SeqCst)
    /// load wake                        load the stamp of its next slot
    /// ```
    /// With both fences at least one side sees the other's store, so a
    /// message published while the consumer goes to sleep is never missed.
    #[inline]
    pub fn consumer_needs_wakeup(&mut self) -> bool {
        // SeqCst fence: pairs with the SeqCst fence in
        // `Consumer::prepare_to_sleep`; orders our earlier stamp stores
        // (and producer-index store) before the wake-state load below
        // (store-buffering litmus).
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence above; reads the consumer's store of
        // SLEEPING in `Consumer::prepare_to_sleep` (ordered by its fence).
        if self.wake_state.load(Ordering::Relaxed) == WAKE_STATE_AWAKE {
            return false;
        }
        // SeqCst swap: claims the wakeup so one doorbell rings per sleep;
        // races only with the consumer's own stores to this word in
        // `prepare_to_sleep`/`finish_sleep`, and the word's modification
        // order decides. SeqCst, not Relaxed, for the kernel's doorbell
        // decision after it (`power::needs_doorbell`: a SeqCst load of the
        // sleeper's HALTING flag, which the sleeper stores SeqCst before its
        // SeqCst load of this word): only SeqCst operations are in the single
        // order that makes one of the two see the other; a Relaxed RMW is
        // not. On x86 both are the same `xchg`. A garbage value (hostile
        // consumer) reads as asleep: one extra doorbell, never a lost message.
        self.wake_state.swap(WAKE_STATE_AWAKE, Ordering::SeqCst) != WAKE_STATE_AWAKE
    }
}

/// Slots reserved by [`Producer::reserve`]: fill them in order, then
/// [`WriteBatch::commit`] publishes all written ones (a Release stamp store
/// per slot, the first slot's last, then one producer-index store).
/// Dropping the batch without committing publishes nothing.
pub struct WriteBatch<'p, 'a> {
    producer: &'p mut Producer<'a>,
    reserved: u64,
    written: u64,
}

impl WriteBatch<'_, '_> {
    /// Slots reserved.
    #[inline]
    pub fn len(&self) -> usize {
        self.reserved as usize
    }

    /// True if no slot could be reserved.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.reserved == 0
    }

    /// Messages written so far.
    #[inline]
    pub fn written(&self) -> usize {
        self.written as usize
    }

    /// Writes the next reserved slot (not yet visible to the consumer).
    /// `Err(RingFull)` once every reserved slot is written.
    #[inline]
    pub fn write_next(&mut self, message: &Message) -> Result<(), RingFull> {
        if self.written == self.reserved {
            return Err(RingFull);
        }
        let index = self.producer.next_write_index.wrapping_add(self.written);
        self.producer.write_slot(index, message, false);
        self.written += 1;
        Ok(())
    }

    /// Publishes every written message (the first slot's stamp last, so
    /// they appear together) and stores the producer index once; returns
    /// how many.
    #[inline]
    pub fn commit(self) -> usize {
        let lap_shift = self.producer.lap_shift();
        // The first slot last, as in `Producer::push_slice` (and for the
        // same reason): its stamp publishes the whole batch.
        for offset in (1..self.written).chain(0..self.written.min(1)) {
            let index = self.producer.next_write_index.wrapping_add(offset);
            let stamp_word = &self.producer.slot(index).words[STAMP_WORD];
            // Relaxed: our own store in `write_next` (or a hostile
            // consumer's since, which garbles only its own message).
            let unstamped = stamp_word.load(Ordering::Relaxed) & !STAMP_MASK;
            // Release: pairs with the Acquire load in `Consumer::stamp_word`;
            // the words `write_next` stored in this slot (and, for the
            // first slot, in every slot of the batch) are visible to a
            // consumer that sees the stamp.
            stamp_word.store(unstamped | stamp_bits(index, lap_shift), Ordering::Release);
        }
        if self.written > 0 {
            let new_write_index = self.producer.next_write_index.wrapping_add(self.written);
            self.producer.publish(new_write_index);
        }
        self.written as usize
    }
}
