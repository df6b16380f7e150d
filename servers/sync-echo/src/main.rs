//! A called server: waits in `reply_recv` and answers every call with the
//! same sequence and payload and `label + 1` (so a caller can tell an
//! answer from its own message). Optional args:
//! - `fault_at=N`: take N calls, then fault (a null read) while the N-th
//!   is being served: its caller must get `NOT_RUNNING`, never hang.
//! - `no_reply_at=N`: take the N-th call's successor without answering the
//!   N-th (its caller must get `NO_REPLY`).
//!
//! It never exits on its own: mark it `service = true` in the TOML.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![deny(unsafe_code)] // one deliberate fault below, nothing else

use userlib::abi::SyncMessage;

userlib::server_main!(run);

fn run() -> i32 {
    let fault_at = userlib::arg_u64("fault_at", 0);
    let no_reply_at = userlib::arg_u64("no_reply_at", 0);
    let mut served: u64 = 0;
    let mut reply: Option<SyncMessage> = None;
    loop {
        let call = match userlib::reply_recv(reply.as_ref()) {
            Ok(call) => call,
            Err(e) => {
                userlib::log!("reply_recv failed: {}", e.name());
                return 1;
            }
        };
        served += 1;
        if served == fault_at {
            userlib::log!("faulting on purpose while serving call {served}");
            fault_now();
        }
        let mut answer = call.message;
        answer.label = answer.label.wrapping_add(1);
        reply = if served == no_reply_at { None } else { Some(answer) };
    }
}

/// Reads address 0, which is never mapped (the first 2 MiB of every
/// server stay unmapped): a page fault in ring 3, on purpose.
#[allow(unsafe_code)]
fn fault_now() -> ! {
    // SAFETY: not sound, on purpose: this is the fault-containment test's
    // fixture; the kernel stops this server at the read and never returns
    // here.
    let value = unsafe { core::ptr::read_volatile(core::hint::black_box(core::ptr::null::<u64>())) };
    panic!("read {value} from address 0: the kernel did not stop the server")
}
