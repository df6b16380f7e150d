//! In-kernel checks of the frame allocator and of address-space teardown,
//! run by the `MEM0001` boot test (`kernel/src/ktest.rs`).
//!
//! What they show: an address space gives back exactly the frames it owns
//! (its pages and tables, not borrowed ring frames), so 1000 create/destroy
//! cycles leave the allocator's in-use count where it started; freed
//! contiguous blocks are reused; and a page-table allocation that finds no
//! memory is reported as "out of physical memory", never "already mapped".

use super::frames::{self, FrameCounts};
use super::paging::{AddressSpace, MapError, UserAccess};
use super::phys_to_virt;
use x86_64::structures::paging::PhysFrame;

type Check = Result<(), &'static str>;

const RW: UserAccess = UserAccess { write: true, execute: false };
const RX: UserAccess = UserAccess { write: false, execute: true };
const CYCLES: usize = 1000;

/// Runs every check; the first failure is the answer.
pub fn address_spaces_give_back_frames() -> Check {
    let start = frames::counts();
    create_and_destroy(CYCLES)?;
    expect_in_use(start, "1000 address spaces created and destroyed leaked frames")?;
    contiguous_blocks_are_reused()?;
    expect_in_use(start, "contiguous blocks freed and reused leaked frames")?;
    out_of_frames_is_reported_as_such()?;
    expect_in_use(start, "exhausting memory and giving it back leaked frames")?;
    let end = frames::counts();
    log::info!(
        "mem: selftest: {CYCLES} address spaces created and destroyed; frames in use {} before and {} after, {} on free lists",
        start.in_use,
        end.in_use,
        end.freed
    );
    Ok(())
}

fn expect_in_use(start: FrameCounts, why: &'static str) -> Check {
    if frames::counts().in_use == start.in_use { Ok(()) } else { Err(why) }
}

/// One tree per cycle: owned pages in three PML4 slots (code, data, stack
/// ranges, so several table levels), one borrowed frame shared by all
/// trees, one adopted frame; then destroy and check what came back.
fn create_and_destroy(cycles: usize) -> Check {
    let borrowed = frames::alloc_zeroed().ok_or("no frame for the borrowed page")?;
    // SAFETY: a pattern in a frame only this test uses.
    unsafe { core::ptr::write_volatile(phys_to_virt(borrowed.start_address().as_u64()) as *mut u64, 0x5a5a) };
    let owned_pages = [abi::USER_MIN, abi::USER_MIN + 0x1000, 0x4000_0000_0000, abi::stack_top_for_server(3) - 0x1000];
    for _ in 0..cycles {
        let mut space = AddressSpace::new_user().map_err(|_| "new_user failed")?;
        for (i, &addr) in owned_pages.iter().enumerate() {
            let access = if i == 0 { RX } else { RW };
            space.map_user_page(addr, access).map_err(|_| "map_user_page failed")?;
        }
        space.map_user_frame(abi::OUTBOX_ADDR, borrowed, RW).map_err(|_| "map_user_frame failed")?;
        let adopted = frames::alloc_zeroed().ok_or("no frame to adopt")?;
        space.adopt_user_frame(abi::INFO_ADDR, adopted, RW).map_err(|_| "adopt_user_frame failed")?;
        match space.map_user_frame(abi::USER_MIN, borrowed, RW) {
            Err(MapError::AlreadyMapped(_)) => {}
            _ => return Err("mapping over a mapped page was not refused as already mapped"),
        }
        // SAFETY: the tree was never loaded on any core and nothing keeps a
        // pointer into its pages.
        let freed = unsafe { space.destroy() };
        if freed.pages != owned_pages.len() as u64 + 1 || freed.borrowed != 1 {
            return Err("destroy freed other pages than the tree owned");
        }
    }
    // SAFETY: a borrowed frame survives every destroy: still our pattern.
    let pattern = unsafe { core::ptr::read_volatile(phys_to_virt(borrowed.start_address().as_u64()) as *const u64) };
    // SAFETY: no tree maps it any more; only this test used it.
    unsafe { frames::free(borrowed) };
    if pattern != 0x5a5a { Err("a borrowed frame was freed (and reused) by destroy") } else { Ok(()) }
}

/// Freed blocks come back for the next request of their size or smaller,
/// zeroed, before fresh memory is used.
fn contiguous_blocks_are_reused() -> Check {
    let first = frames::alloc_contiguous(3).ok_or("no 3-frame block")?;
    // SAFETY: the block is ours; dirty it to check the next one is zeroed.
    unsafe { core::ptr::write_bytes(phys_to_virt(first), 0xee, 3 * 4096) };
    // SAFETY: nothing uses the block any more.
    unsafe { frames::free_contiguous(first, 3) };
    let again = frames::alloc_contiguous(2).ok_or("no 2-frame block")?;
    if !(first..first + 3 * 4096).contains(&again) {
        return Err("a freed 3-frame block was not reused for 2 frames");
    }
    // SAFETY: the block was just handed out to us.
    let dirty = unsafe { core::slice::from_raw_parts(phys_to_virt(again), 2 * 4096) }.iter().any(|&b| b != 0);
    let rest = frames::alloc_zeroed().ok_or("no single frame")?;
    // SAFETY: nothing uses these frames any more.
    unsafe {
        frames::free_contiguous(again, 2);
        frames::free(rest);
    }
    if dirty { Err("a reused block was not zeroed") } else { Ok(()) }
}

/// Takes every free frame (chained through their first word), then asks an
/// empty tree for a mapping that needs three new tables.
fn out_of_frames_is_reported_as_such() -> Check {
    let mut space = AddressSpace::new_user().map_err(|_| "new_user failed")?;
    let borrowed = frames::alloc_zeroed().ok_or("no frame for the borrowed page")?;
    let mut chain: u64 = 0;
    let mut taken = 0u64;
    while let Some(frame) = frames::alloc_zeroed() {
        let addr = frame.start_address().as_u64();
        // SAFETY: a frame only this test holds: its first word links the chain.
        unsafe { core::ptr::write(phys_to_virt(addr) as *mut u64, chain) };
        chain = addr;
        taken += 1;
    }
    let map_frame = space.map_user_frame(abi::USER_MIN, borrowed, RW);
    let map_page = space.map_user_page(abi::USER_MIN, RW);
    while chain != 0 {
        // SAFETY: every frame on the chain was allocated above and holds the
        // next link.
        let next = unsafe { core::ptr::read(phys_to_virt(chain) as *const u64) };
        // SAFETY: nothing else uses it.
        unsafe { frames::free(PhysFrame::containing_address(x86_64::PhysAddr::new(chain))) };
        chain = next;
    }
    // SAFETY: never loaded on a core; nothing else uses these.
    unsafe {
        space.destroy();
        frames::free(borrowed);
    }
    log::info!(
        "mem: selftest: took all {taken} free frames; mapping then failed with: {:?} / {:?}",
        map_frame,
        map_page
    );
    match (map_frame, map_page) {
        (Err(MapError::OutOfFrames), Err(MapError::OutOfFrames)) => Ok(()),
        (Err(MapError::AlreadyMapped(_)), _) => Err("a failed table allocation was reported as already mapped"),
        _ => Err("mapping with no free frame did not report out of physical memory"),
    }
}
