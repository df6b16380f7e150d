//! The kernel heap: `talc` over a static arena. Used at boot and for
//! control-plane data (server tables); never on the IPC hot path.

use talc::TalcLock;
use talc::source::Claim;

const HEAP_BYTES: usize = 8 * 1024 * 1024;

#[global_allocator]
static HEAP: TalcLock<spinning_top::RawSpinlock, Claim> = TalcLock::new({
    static mut ARENA: [u8; HEAP_BYTES] = [0; HEAP_BYTES];
    // SAFETY: `ARENA` is used by nothing but this allocator (it is only
    // named here), lives for the whole run, and `Claim` hands it to talc
    // once, on the first allocation.
    unsafe { Claim::array(&raw mut ARENA) }
});
