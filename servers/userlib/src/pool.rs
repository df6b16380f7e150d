//! A buffer pool over a region this server owns (or holds `rw`): fixed-size
//! buffers handed out, sent as descriptors, and given back by the receiver
//! returning the descriptor. The ownership protocol needs no lock shared
//! with the peer: a buffer is ours while it is free or being filled, the
//! receiver's from the send until it returns it, and every transfer is a
//! message (through the mover, which checks each descriptor).
//!
//! ```text
//!   owner                                   receiver
//!   b = pool.alloc()         (free -> out)
//!   fill b; send DATA(desc b) ───────────►  copy_out(desc) into private memory
//!                                            validate and use the copy
//!   pool.release(desc) ◄──────────────────  send RETURN(desc)   (same descriptor)
//!   (out -> free)
//! ```
//!
//! Invariants: a buffer is handed out at most once until released; a
//! release is accepted only for a descriptor that names exactly a buffer of
//! this pool that is out (a hostile or confused peer returning a foreign,
//! misaligned, or already returned buffer is refused and changes nothing).
//! The pool trusts nothing of the receiver but the return: it never reads
//! the buffer back. A receiver that never returns buffers starves the pool
//! (`alloc` returns `None`): the owner decides how long to wait, and takes
//! every buffer back when told the peer stopped (`reclaim_all`).

use crate::region::Region;
use abi::region::Descriptor;

/// Most buffers one pool manages.
pub const MAX_BUFFERS: usize = 1024;

/// Why a release was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolError {
    /// The descriptor names another region.
    ForeignRegion,
    /// Not the start of one of our buffers (or past the last one).
    NotABuffer,
    /// The buffer is not out (a second return, or never sent).
    NotOut,
}

/// A buffer handed out by [`BufferPool::alloc`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffer {
    /// Its number in the pool.
    pub number: usize,
    /// Byte offset in the region.
    pub offset: u64,
}

/// Fixed-size buffers over one region.
pub struct BufferPool {
    region: Region,
    buffer_size: u64,
    count: usize,
    /// Bit set: buffer out.
    out: [u64; MAX_BUFFERS / 64],
    outstanding: usize,
    /// Where the next search starts (buffers are reused round-robin).
    next: usize,
}

impl BufferPool {
    /// Buffers of `buffer_size` bytes (a multiple of 8) over all of
    /// `region` (as many as fit, at most [`MAX_BUFFERS`]); `None` if not
    /// even one fits.
    pub fn new(region: Region, buffer_size: u64) -> Option<BufferPool> {
        if buffer_size == 0 || !buffer_size.is_multiple_of(8) {
            return None;
        }
        let count = usize::try_from(region.size() / buffer_size).ok()?.min(MAX_BUFFERS);
        (count > 0).then_some(BufferPool {
            region,
            buffer_size,
            count,
            out: [0; MAX_BUFFERS / 64],
            outstanding: 0,
            next: 0,
        })
    }

    pub fn region(&self) -> &Region {
        &self.region
    }

    pub fn buffer_size(&self) -> u64 {
        self.buffer_size
    }

    /// Buffers in the pool.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Buffers handed out and not yet returned.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    fn is_out(&self, n: usize) -> bool {
        self.out[n / 64] & (1 << (n % 64)) != 0
    }

    /// A free buffer, now out; `None` if all are out.
    pub fn alloc(&mut self) -> Option<Buffer> {
        if self.outstanding == self.count {
            return None;
        }
        for step in 0..self.count {
            let n = (self.next + step) % self.count;
            if !self.is_out(n) {
                self.out[n / 64] |= 1 << (n % 64);
                self.outstanding += 1;
                self.next = (n + 1) % self.count;
                return Some(Buffer { number: n, offset: n as u64 * self.buffer_size });
            }
        }
        None
    }

    /// The descriptor for the first `length` bytes of `buffer`, asking
    /// `access` (`ACCESS_RO` unless the receiver is to write it).
    pub fn descriptor(&self, buffer: &Buffer, length: u32, access: u16) -> Descriptor {
        let length = length.min(u32::try_from(self.buffer_size).unwrap_or(u32::MAX));
        self.region.descriptor(buffer.offset, length, access)
    }

    /// Takes back every buffer that is out, and returns how many: for an
    /// owner told that the peer holding them stopped or restarted (a notice),
    /// which will never return them. The owner must make sure a late return
    /// or bounce of one of them is not taken for a later loan of the same
    /// buffer (`net-proto`'s epoch beside each descriptor does that).
    pub fn reclaim_all(&mut self) -> usize {
        let reclaimed = self.outstanding;
        self.out = [0; MAX_BUFFERS / 64];
        self.outstanding = 0;
        reclaimed
    }

    /// Takes back the buffer a returned descriptor names (our view, as the
    /// mover delivered it).
    pub fn release(&mut self, descriptor: &Descriptor) -> Result<Buffer, PoolError> {
        if descriptor.region != self.region.index() {
            return Err(PoolError::ForeignRegion);
        }
        if !descriptor.offset.is_multiple_of(self.buffer_size) {
            return Err(PoolError::NotABuffer);
        }
        let n = usize::try_from(descriptor.offset / self.buffer_size).map_err(|_| PoolError::NotABuffer)?;
        if n >= self.count {
            return Err(PoolError::NotABuffer);
        }
        if !self.is_out(n) {
            return Err(PoolError::NotOut);
        }
        self.out[n / 64] &= !(1 << (n % 64));
        self.outstanding -= 1;
        Ok(Buffer { number: n, offset: descriptor.offset })
    }
}
