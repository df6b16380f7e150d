//! The only place the kernel reads or writes user memory: copies that walk
//! the server's page tables and go through the direct map.
//!
//! A pointer a server passes is an allegation (`abi::UserRange`). One
//! constructor, [`UserSlice::new`], checks it against the user half and a
//! length limit; only a `UserSlice` can be copied from or to, so a range is
//! checked once, where it enters the kernel, and never re-checked by hand.
//! Mapping and access are checked page by page during the copy (the server
//! may unmap nothing while it runs, but it may have lied).

use super::paging::translate_user;
use super::phys_to_virt;
use abi::UserRange;

/// Why a user range cannot be copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMemError {
    /// Outside the user half, or `addr + len` wraps.
    OutOfRange,
    /// Longer than the call allows.
    TooLong,
    /// Some page is not mapped (or not writable, for a copy out).
    NotMapped(u64),
}

impl UserMemError {
    /// The `abi::err` code a system call returns for it.
    pub fn code(self) -> i64 {
        match self {
            UserMemError::OutOfRange => abi::err::OUT_OF_RANGE,
            UserMemError::TooLong => abi::err::TOO_LONG,
            UserMemError::NotMapped(_) => abi::err::NOT_MAPPED,
        }
    }
}

/// A user range that lies in the user half, without wrapping, and is at
/// most the length its call allows. Its pages are still unchecked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserSlice {
    addr: u64,
    len: usize,
}

impl UserSlice {
    /// Checks the allegation `range` against the user half and `max_len`.
    pub fn new(range: UserRange, max_len: usize) -> Result<UserSlice, UserMemError> {
        if range.len > max_len as u64 {
            return Err(UserMemError::TooLong);
        }
        if !range.in_user_half() {
            return Err(UserMemError::OutOfRange);
        }
        Ok(UserSlice { addr: range.addr, len: range.len as usize })
    }

    /// Copies the range into `out[..self.len()]` from the tree at `cr3`;
    /// returns the bytes copied.
    pub fn read<'a>(&self, cr3: u64, out: &'a mut [u8]) -> Result<&'a [u8], UserMemError> {
        let out = out.get_mut(..self.len).ok_or(UserMemError::TooLong)?;
        let mut done = 0;
        while done < out.len() {
            let at = self.addr + done as u64;
            let phys = translate_user(cr3, at, false).ok_or(UserMemError::NotMapped(at))?;
            let chunk = (4096 - (at & 0xFFF) as usize).min(out.len() - done);
            // SAFETY: `phys..phys+chunk` lies in one mapped user frame (chunk
            // stops at the page end); the direct map covers it. The server may
            // write it concurrently: we copy bytes, never form a reference into
            // it, and look at the copy only.
            unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(phys), out[done..].as_mut_ptr(), chunk) };
            done += chunk;
        }
        Ok(out)
    }

    /// Copies `data` to the start of the range (pages must be
    /// user-writable); `data` must fit in it.
    pub fn write(&self, cr3: u64, data: &[u8]) -> Result<(), UserMemError> {
        if data.len() > self.len {
            return Err(UserMemError::TooLong);
        }
        // Every page is checked before the first byte is written: a refused
        // call changes nothing (a buffer that runs into an unmapped page
        // gets NOT_MAPPED and no partial copy).
        let mut page = self.addr & !0xFFF;
        while page < self.addr + data.len() as u64 {
            let at = page.max(self.addr);
            translate_user(cr3, at, true).ok_or(UserMemError::NotMapped(at))?;
            page += 4096;
        }
        let mut done = 0;
        while done < data.len() {
            let at = self.addr + done as u64;
            let phys = translate_user(cr3, at, true).ok_or(UserMemError::NotMapped(at))?;
            let chunk = (4096 - (at & 0xFFF) as usize).min(data.len() - done);
            // SAFETY: as in `read`; the page is user-writable, so the server
            // expects it to change.
            unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), phys_to_virt(phys), chunk) };
            done += chunk;
        }
        Ok(())
    }
}
