//! Shared regions (`[[region]]` in the system TOML) as this server sees
//! them, and the buffer descriptors messages carry over them
//! (`docs/regions.md`). A [`Region`] is found by name in the info page;
//! [`descriptor_of`] reads the descriptor a delivered message carries
//! (already checked by the mover and in *our* view); [`copy_out`] is the
//! copy-before-validate helper.
//!
//! ```ignore
//! let region = userlib::Region::named("frames")?;
//! region.write(offset, &bytes)?;                                   // we hold it rw
//! let d = region.descriptor(offset, bytes.len() as u32, abi::region::ACCESS_RO);
//! channel.send_message(&userlib::region::descriptor_message(to, LABEL, &d, b"")?);
//! // the receiver:
//! if let Some(d) = userlib::region::descriptor_of(&message) {
//!     let n = userlib::region::copy_out(&d, &mut private)?;       // then validate `private[..n]`
//! }
//! ```
//!
//! **The trust rule.** A region is shared memory: whoever else holds it
//! with `rw` (the sender of a buffer always does, it filled it) can change
//! any byte at any moment, also after sending the descriptor and while we
//! read it. So a receiver never validates bytes in place and then uses
//! them: it copies the buffer into private memory first ([`copy_out`]) and
//! validates and uses only the copy, the rule the kernel follows with
//! rings. Only a region nobody else can write (we are its only `rw`
//! holder) may be read in place.
//!
//! Invariants: no Rust reference to region memory is ever made except to
//! atomics (every byte is read and written with relaxed atomic loads and
//! stores, which a concurrent writer cannot make undefined); every access
//! is bounds-checked against the size in the info page, which never
//! changes while the server runs.

use crate::abi;
use abi::region::{ACCESS_RW, DESCRIPTOR_LEN, Descriptor, FLAG_DESCRIPTOR, RegionInfo};
use core::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use ringbuf::Message;

/// Why a region access was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionError {
    /// The info page is missing or has the wrong magic.
    NoInfoPage,
    /// This server holds no region of that name (or index).
    NotFound,
    /// The range is not inside the region (or wraps).
    OutOfRange,
    /// A write to a region held read-only.
    ReadOnly,
    /// The destination is shorter than the buffer.
    TooSmall,
    /// More inline bytes than fit beside the descriptor.
    TooLong,
    /// A word-by-word copy ([`copy_out_words`]) of a range whose offset or
    /// length is not a multiple of 8.
    Unaligned,
}

/// One region this server holds, at `abi::region::addr(index)`.
#[derive(Debug, Clone, Copy)]
pub struct Region {
    index: u16,
    base: u64,
    size: u64,
    access: u16,
    owner: bool,
}

fn info_entries() -> Result<&'static [RegionInfo], RegionError> {
    let info = crate::info().ok_or(RegionError::NoInfoPage)?;
    let count = (info.region_count as usize).min(abi::region::MAX_REGIONS);
    Ok(&info.regions[..count])
}

impl Region {
    /// The region called `name` in the system TOML, if this server holds it.
    pub fn named(name: &str) -> Result<Region, RegionError> {
        let entries = info_entries()?;
        let index = entries
            .iter()
            .position(|r| {
                let len = r.name.iter().position(|&b| b == 0).unwrap_or(r.name.len());
                &r.name[..len] == name.as_bytes()
            })
            .ok_or(RegionError::NotFound)?;
        Region::at(index)
    }

    /// This server's region number `index` (its position in the info page:
    /// what a descriptor in our view names).
    pub fn at(index: usize) -> Result<Region, RegionError> {
        let entry = info_entries()?.get(index).ok_or(RegionError::NotFound)?;
        Ok(Region {
            index: index as u16,
            base: abi::region::addr(index),
            size: entry.size,
            access: entry.access,
            owner: entry.owner != 0,
        })
    }

    /// Its number in this server's view (descriptors name it so).
    pub fn index(&self) -> u16 {
        self.index
    }

    /// Bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// `abi::region::ACCESS_RO` or `ACCESS_RW`.
    pub fn access(&self) -> u16 {
        self.access
    }

    /// Whether this server is its owner.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// A descriptor for `length` bytes at `offset`, asking `access` for
    /// the receiver. Nothing is checked here: the mover checks it.
    pub fn descriptor(&self, offset: u64, length: u32, access: u16) -> Descriptor {
        Descriptor { region: self.index, access, length, offset }
    }

    /// Checks `offset..offset + len` against the region.
    fn range(&self, offset: u64, len: u64) -> Result<u64, RegionError> {
        let end = offset.checked_add(len).ok_or(RegionError::OutOfRange)?;
        if end > self.size {
            return Err(RegionError::OutOfRange);
        }
        Ok(self.base + offset)
    }

    /// Copies `src` into the region at `offset` (we must hold it `rw`).
    pub fn write(&self, offset: u64, src: &[u8]) -> Result<(), RegionError> {
        if self.access != ACCESS_RW {
            return Err(RegionError::ReadOnly);
        }
        let addr = self.range(offset, src.len() as u64)?;
        copy_in_raw(addr, src);
        Ok(())
    }

    /// Writes `words` 8-byte words at `offset` (8-aligned), word `i` being
    /// `word(i)`: filling a buffer without a staging copy.
    pub fn fill_words(&self, offset: u64, words: usize, mut word: impl FnMut(usize) -> u64) -> Result<(), RegionError> {
        if self.access != ACCESS_RW {
            return Err(RegionError::ReadOnly);
        }
        if !offset.is_multiple_of(8) {
            return Err(RegionError::OutOfRange);
        }
        let addr = self.range(offset, words as u64 * 8)?;
        for i in 0..words {
            // SAFETY: `range` checked that the word lies inside the region,
            // which the kernel mapped read/write here for the server's whole
            // life; it is 8-aligned (base and offset are); only an atomic is
            // referenced, so a peer writing it concurrently is no UB.
            let cell = unsafe { &*((addr + i as u64 * 8) as *const AtomicU64) };
            cell.store(word(i), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Copies `dst.len()` bytes at `offset` into `dst` (private memory).
    pub fn read(&self, offset: u64, dst: &mut [u8]) -> Result<(), RegionError> {
        let addr = self.range(offset, dst.len() as u64)?;
        copy_out_raw(addr, dst);
        Ok(())
    }
}

/// The descriptor a delivered message carries, in this server's view
/// (the mover checked and rewrote it), or `None` for a plain message.
/// A bounce carries the descriptor as it was sent (our view too).
pub fn descriptor_of(message: &Message) -> Option<Descriptor> {
    if message.flags != FLAG_DESCRIPTOR || (message.payload_len as usize) < DESCRIPTOR_LEN {
        return None;
    }
    Descriptor::decode(&message.payload)
}

/// The inline bytes beside a message's descriptor.
pub fn inline_of(message: &Message) -> &[u8] {
    message.payload_bytes().get(DESCRIPTOR_LEN..).unwrap_or(&[])
}

/// A message to `endpoint` carrying `descriptor` and up to 24 `inline`
/// bytes beside it (sequence number 0: `Channel::send_message` sends it
/// as is; number it yourself if you need to).
pub fn descriptor_message(
    endpoint: u32,
    label: u32,
    descriptor: &Descriptor,
    inline: &[u8],
) -> Result<Message, RegionError> {
    let mut payload = [0u8; ringbuf::PAYLOAD_CAPACITY];
    if inline.len() > payload.len() - DESCRIPTOR_LEN {
        return Err(RegionError::TooLong);
    }
    payload[..DESCRIPTOR_LEN].copy_from_slice(&descriptor.encode());
    payload[DESCRIPTOR_LEN..DESCRIPTOR_LEN + inline.len()].copy_from_slice(inline);
    let mut message =
        Message::new(endpoint, label, &payload[..DESCRIPTOR_LEN + inline.len()]).map_err(|_| RegionError::TooLong)?;
    message.flags = FLAG_DESCRIPTOR;
    Ok(message)
}

/// The copy-before-validate helper: copies the buffer `descriptor` names
/// (in our view, as delivered) into `dst` and returns its length. Validate
/// and use only `dst[..n]` afterwards, never the region (see the trust
/// rule above): the sender may rewrite the buffer while we copy, and the
/// copy may then mix old and new bytes, which validation of the copy
/// catches, and nothing can change it after that.
pub fn copy_out(descriptor: &Descriptor, dst: &mut [u8]) -> Result<usize, RegionError> {
    let region = Region::at(usize::from(descriptor.region))?;
    let n = descriptor.length as usize;
    let dst = dst.get_mut(..n).ok_or(RegionError::TooSmall)?;
    region.read(descriptor.offset, dst)?;
    Ok(n)
}

/// [`copy_out`] and a look at every byte in one pass: each aligned
/// 8-byte word of the buffer is loaded once from the region, stored into
/// `dst`, and handed to `seen` (in order, as `u64::from_le_bytes` of its
/// bytes). What `seen` checks is therefore exactly what the private copy
/// holds, so the trust rule holds as with `copy_out` and then a check; the
/// bytes are just not read a second time (the same idea as a network
/// stack's checksum-and-copy). The range must start and end on multiples
/// of 8 (`RegionError::Unaligned` otherwise).
pub fn copy_out_words(
    descriptor: &Descriptor,
    dst: &mut [u8],
    mut seen: impl FnMut(u64),
) -> Result<usize, RegionError> {
    let region = Region::at(usize::from(descriptor.region))?;
    let n = descriptor.length as usize;
    if !descriptor.offset.is_multiple_of(8) || !n.is_multiple_of(8) {
        return Err(RegionError::Unaligned);
    }
    let dst = dst.get_mut(..n).ok_or(RegionError::TooSmall)?;
    let addr = region.range(descriptor.offset, n as u64)?;
    for (i, out) in dst.chunks_exact_mut(8).enumerate() {
        // SAFETY: the range is inside a region mapped here for the
        // server's whole life (checked above), region bases are page
        // aligned and the offset a multiple of 8, so this is an aligned
        // word of it; only an atomic is referenced (a peer may write it).
        let word = unsafe { &*((addr + 8 * i as u64) as *const AtomicU64) }.load(Ordering::Relaxed);
        let bytes = word.to_ne_bytes();
        out.copy_from_slice(&bytes);
        seen(u64::from_le_bytes(bytes));
    }
    Ok(n)
}

/// Copies region bytes at user address `addr` into `dst`: aligned words
/// with relaxed atomic loads, the ragged ends byte by byte.
fn copy_out_raw(addr: u64, dst: &mut [u8]) {
    let mut i = 0;
    while i < dst.len() && !(addr + i as u64).is_multiple_of(8) {
        // SAFETY: the caller checked the range is inside a region mapped
        // here for the server's whole life; only an atomic is referenced.
        dst[i] = unsafe { &*((addr + i as u64) as *const AtomicU8) }.load(Ordering::Relaxed);
        i += 1;
    }
    while i + 8 <= dst.len() {
        // SAFETY: as above; `addr + i` is 8-aligned here.
        let word = unsafe { &*((addr + i as u64) as *const AtomicU64) }.load(Ordering::Relaxed);
        dst[i..i + 8].copy_from_slice(&word.to_ne_bytes());
        i += 8;
    }
    while i < dst.len() {
        // SAFETY: as above.
        dst[i] = unsafe { &*((addr + i as u64) as *const AtomicU8) }.load(Ordering::Relaxed);
        i += 1;
    }
}

/// Copies `src` into region bytes at user address `addr` (mapped
/// writable): aligned words with relaxed atomic stores, the ends by byte.
fn copy_in_raw(addr: u64, src: &[u8]) {
    let mut i = 0;
    while i < src.len() && !(addr + i as u64).is_multiple_of(8) {
        // SAFETY: the caller checked the range and that it is mapped
        // writable; only an atomic is referenced.
        unsafe { &*((addr + i as u64) as *const AtomicU8) }.store(src[i], Ordering::Relaxed);
        i += 1;
    }
    while i + 8 <= src.len() {
        let word = u64::from_ne_bytes(src[i..i + 8].try_into().unwrap_or([0; 8]));
        // SAFETY: as above; `addr + i` is 8-aligned here.
        unsafe { &*((addr + i as u64) as *const AtomicU64) }.store(word, Ordering::Relaxed);
        i += 8;
    }
    while i < src.len() {
        // SAFETY: as above.
        unsafe { &*((addr + i as u64) as *const AtomicU8) }.store(src[i], Ordering::Relaxed);
        i += 1;
    }
}
