//! The only place the kernel reads or writes user memory: copies that walk
//! the server's page tables and go through the direct map. A pointer a
//! server passes is an allegation; it becomes bytes here or an error.

use super::paging::{USER_END, USER_MIN, translate_user};
use super::phys_to_virt;

/// Why a user range cannot be copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserMemError {
    /// Outside the user half, or `addr + len` wraps.
    OutOfRange,
    /// Some page is not mapped (or not writable, for a copy out).
    NotMapped(u64),
}

fn check_range(addr: u64, len: usize) -> Result<(), UserMemError> {
    let end = addr.checked_add(len as u64).ok_or(UserMemError::OutOfRange)?;
    if addr < USER_MIN || end > USER_END {
        return Err(UserMemError::OutOfRange);
    }
    Ok(())
}

/// Copies `out.len()` bytes from user address `addr` of the tree at `cr3`.
pub fn copy_from_user(cr3: u64, addr: u64, out: &mut [u8]) -> Result<(), UserMemError> {
    check_range(addr, out.len())?;
    let mut done = 0;
    while done < out.len() {
        let at = addr + done as u64;
        let phys = translate_user(cr3, at, false).ok_or(UserMemError::NotMapped(at))?;
        let chunk = (4096 - (at & 0xFFF) as usize).min(out.len() - done);
        // SAFETY: `phys..phys+chunk` lies in one mapped user frame (chunk
        // stops at the page end); the direct map covers it. The server may
        // write it concurrently: we copy bytes, never form a reference into
        // it, and look at the copy only.
        unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(phys), out[done..].as_mut_ptr(), chunk) };
        done += chunk;
    }
    Ok(())
}

/// Copies `data` to user address `addr` (pages must be user-writable).
pub fn copy_to_user(cr3: u64, addr: u64, data: &[u8]) -> Result<(), UserMemError> {
    check_range(addr, data.len())?;
    let mut done = 0;
    while done < data.len() {
        let at = addr + done as u64;
        let phys = translate_user(cr3, at, true).ok_or(UserMemError::NotMapped(at))?;
        let chunk = (4096 - (at & 0xFFF) as usize).min(data.len() - done);
        // SAFETY: as in `copy_from_user`; the page is user-writable, so the
        // server expects it to change.
        unsafe { core::ptr::copy_nonoverlapping(data[done..].as_ptr(), phys_to_virt(phys), chunk) };
        done += chunk;
    }
    Ok(())
}
