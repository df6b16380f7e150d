//! Synchronous IPC, L4 style, and the scheduling it needs on cores that
//! several servers share: `call` blocks the caller until the callee
//! answers with `reply_recv`; the message travels in registers
//! (`abi::SyncMessage`). Same capability and badge rules as the mover.
//!
//! ```text
//!  same core (direct switch, no scheduler pass, no timer):
//!   A: call(B, m) -> save A's registers, m into B's registers, CR3 := B  -> B runs
//!   B: reply_recv(r) -> r into A's registers, save B's, CR3 := A        -> A runs
//!   = 2 system calls and 2 CR3 writes per round trip
//!  cross core (callee blocked in the kernel, woken by an IPI):
//!   core a, A: call(B, m) -> m into B's registers, B ready, IPI core b; core a halts
//!   core b, B: wakes, resumes with m ... reply_recv(r) -> A ready, IPI core a
//!   = 2 system calls, 2 IPIs, no CR3 write (each core keeps its server)
//! ```
//! Invariants:
//! - A server is in exactly one state of [`Run`]; its registers are in
//!   `saved` whenever it is not on its core. Every state change happens
//!   under one lock (`SYNC`), taken with interrupts off (syscall and trap
//!   context), never from an interrupt handler.
//! - A core runs one server at a time and switches only when that server
//!   blocks (`call`, `reply_recv` with nothing to receive) or stops: there
//!   is no timer and no preemption. A server that never blocks keeps its
//!   core; the others on that core wait (documented in docs/servers.md).
//! - Every call is answered exactly once: by its callee's reply, with
//!   `NO_REPLY` if the callee took its next call without replying, or with
//!   `NOT_RUNNING` if the callee stopped before answering. A caller never
//!   waits on a stopped server.
//! - A caller is in at most one callee's queue, so each queue's capacity
//!   (the number of servers) is never exceeded and never reallocates.

use crate::arch::x86_64::user::{SyscallFrame, enter_user, resume_user};
use crate::arch::x86_64::{gdt, tsc};
use crate::server::life::{self, Cause};
use crate::server::{self, State};
use abi::{SyncMessage, error_return};
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use cores::{CORES, Role};

/// Where a server is, for the synchronous path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    /// Loaded, never run: starts at its ELF entry when its core picks it.
    NotStarted,
    /// The current server of its core.
    OnCore,
    /// Runnable, registers in `saved`, waiting for its core.
    Ready,
    /// Blocked in `reply_recv` with no call to take.
    WaitingForCall,
    /// Blocked in `call` until `callee` answers.
    WaitingForReply { callee: usize },
    /// Exited or faulted.
    Stopped,
}

struct Thread {
    run: Run,
    saved: SyscallFrame,
    /// Calls not yet taken: (caller, message), oldest first.
    callers: VecDeque<(usize, SyncMessage)>,
    /// The caller whose call it is handling.
    serving: Option<usize>,
    core: usize,
    badge: u64,
}

struct SyncState {
    threads: Vec<Thread>,
    /// Servers of each core, in file order (index = core).
    on_core: Vec<Vec<usize>>,
}

static SYNC: spin::Once<spin::Mutex<SyncState>> = spin::Once::new();

/// Builds the state for every loaded server (BSP, before any server runs).
pub fn init() {
    let servers = server::all();
    let cores = servers.iter().map(|s| s.core + 1).max().unwrap_or(0);
    let mut on_core = alloc::vec![Vec::new(); cores];
    let threads = servers
        .iter()
        .enumerate()
        .map(|(index, s)| {
            on_core[s.core].push(index);
            Thread {
                run: Run::NotStarted,
                saved: SyscallFrame::fresh(s.entry, s.stack_top),
                callers: VecDeque::with_capacity(servers.len()),
                serving: None,
                core: s.core,
                badge: s.badge(),
            }
        })
        .collect();
    SYNC.call_once(|| spin::Mutex::new(SyncState { threads, on_core }));
}

fn state() -> &'static spin::Mutex<SyncState> {
    SYNC.get().expect("sync_ipc::init runs before any server")
}

/// Starts the first server of every core on it (posted to the core's
/// mailbox). Other servers of a shared core start when that core first has
/// nothing else to run (`sync_ipc`).
pub fn start_all() {
    let mut started = Vec::new();
    for server in server::all() {
        if started.contains(&server.core) {
            continue;
        }
        started.push(server.core);
        if !crate::smp::post_work(server.core, run_on_this_core, server.core) {
            log::error!("server `{}`: core {} is busy; not started", server.name, server.core);
        }
    }
}

/// Mailbox work on a server's core: becomes the server, never returns.
fn run_on_this_core(core_index: usize) {
    let core = &CORES[core_index];
    let Some(server) = server::all().get(core.server.load(Ordering::Acquire)) else { return };
    core.set_role(Role::Server);
    core.role_started_tsc.store(tsc::now(), Ordering::Relaxed);
    server.set_state(State::Running);
    started_on_core(core.server.load(Ordering::Acquire));
    x86_64::instructions::interrupts::disable();
    // SAFETY: the address space was built by `load` with the kernel half
    // shared; entry and stack are mapped user pages in it; the stack top
    // is this core's own kernel stack (gdt module).
    unsafe { enter_user(server.cr3(), server.entry, server.stack_top, gdt::ap_stack_top(core_index)) }
}

/// Marks the server starting on its core now (the first server of each
/// core, `start_all`) as the core's current one.
fn started_on_core(index: usize) {
    if let Some(t) = state().lock().threads.get_mut(index) {
        t.run = Run::OnCore;
    }
}

fn put_message(frame: &mut SyscallFrame, badge: u64, message: &SyncMessage) {
    let (rsi, rdx) = message.header_registers();
    frame.rax = 0;
    frame.rdi = badge;
    frame.rsi = rsi;
    frame.rdx = rdx;
    [frame.r10, frame.r8, frame.r9, frame.r12, frame.r13] = message.payload;
}

impl SyncState {
    /// Gives `callee` (waiting for a call) the call of `caller`: it becomes
    /// ready with the message in its registers. Returns the core to wake.
    fn deliver_call(&mut self, callee: usize, caller: usize, message: &SyncMessage) -> usize {
        let badge = self.threads[caller].badge;
        let t = &mut self.threads[callee];
        put_message(&mut t.saved, badge, message);
        t.serving = Some(caller);
        t.run = Run::Ready;
        t.core
    }

    /// Answers `caller` (waiting for a reply) with `reply` from `from`, or
    /// with an error. Returns the core to wake.
    fn deliver_reply(&mut self, caller: usize, from: usize, reply: Result<&SyncMessage, i64>) -> usize {
        let badge = self.threads[from].badge;
        let t = &mut self.threads[caller];
        match reply {
            Ok(message) => put_message(&mut t.saved, badge, message),
            Err(code) => t.saved.rax = error_return(code),
        }
        t.run = Run::Ready;
        t.core
    }

    /// The next server for `core`: `prefer` if it is ready, else the first
    /// ready one, else the first one never started.
    fn pick(&self, core: usize, prefer: Option<usize>) -> Option<usize> {
        let list = self.on_core.get(core)?;
        if let Some(p) = prefer.filter(|&p| self.threads[p].core == core && self.threads[p].run == Run::Ready) {
            return Some(p);
        }
        list.iter()
            .copied()
            .find(|&i| self.threads[i].run == Run::Ready)
            .or_else(|| list.iter().copied().find(|&i| self.threads[i].run == Run::NotStarted))
    }

    /// Whether any server of `core` may still run (now or after a call).
    fn core_has_life(&self, core: usize) -> bool {
        self.on_core.get(core).is_some_and(|list| list.iter().any(|&i| self.threads[i].run != Run::Stopped))
    }
}

/// Makes `next` the current server of this core, its registers in `frame`,
/// its address space loaded (a CR3 write only if it differs).
fn switch_in(s: &mut SyncState, frame: &mut SyscallFrame, next: usize) {
    let t = &mut s.threads[next];
    *frame = t.saved;
    if t.run == Run::NotStarted && server::all()[next].state() == State::Loaded {
        server::all()[next].set_state(State::Running); // a shared core's later server starts now
    }
    t.run = Run::OnCore;
    let core = cores::this_core();
    let previous = core.server.swap(next, Ordering::AcqRel);
    if previous != next {
        let cr3 = server::all()[next].cr3();
        // SAFETY: `cr3` is the root of a complete server address space
        // whose kernel half is the kernel's (built by `server::load`), so
        // the kernel keeps running after the write.
        unsafe { core::arch::asm!("mov cr3, {}", in(reg) cr3, options(nostack)) };
        core.cr3_writes.fetch_add(1, Ordering::Relaxed);
    }
}

/// The calling server blocked (its registers already saved): runs the next
/// server of this core in `frame`, halting until one can run.
fn run_next(frame: &mut SyscallFrame, core: usize, prefer: Option<usize>) {
    loop {
        {
            let mut s = state().lock();
            if let Some(next) = s.pick(core, prefer) {
                switch_in(&mut s, frame, next);
                return;
            }
        }
        // Interrupts are off (syscall or trap context): a wake-up IPI sent
        // after the check above stays pending and ends the `hlt` at once
        // (`sti` takes effect after the next instruction).
        // SAFETY: waits for an interrupt with interrupts enabled only for
        // the halt; they are off again before the state is looked at.
        unsafe { core::arch::asm!("sti", "hlt", "cli", options(nostack)) };
    }
}

fn wake_cores(this_core: usize, cores: &[Option<usize>]) {
    for &core in cores.iter().flatten() {
        if core != this_core {
            crate::smp::wake(core);
        }
    }
}

/// The `call` system call of server `me`, whose registers are `frame`.
pub fn call(frame: &mut SyscallFrame, me: usize, endpoint: u64, message: SyncMessage) {
    let srv = &server::all()[me];
    let callee = match usize::try_from(endpoint).ok().and_then(|e| srv.capabilities.get(e)) {
        None => return frame.rax = error_return(abi::err::NO_CAPABILITY),
        Some(None) => return frame.rax = error_return(abi::err::NOT_RUNNING),
        Some(&Some(callee)) => callee,
    };
    if callee == me {
        frame.rax = error_return(abi::err::WOULD_DEADLOCK);
        return;
    }
    let core = srv.core;
    let wake;
    {
        let mut s = state().lock();
        if s.threads[callee].run == Run::Stopped {
            frame.rax = error_return(abi::err::NOT_RUNNING);
            return;
        }
        let t = &mut s.threads[me];
        t.saved = *frame;
        t.run = Run::WaitingForReply { callee };
        if s.threads[callee].run == Run::WaitingForCall {
            wake = Some(s.deliver_call(callee, me, &message));
        } else {
            s.threads[callee].callers.push_back((me, message));
            wake = None;
        }
        // The direct switch: the callee is ready on this core.
        if let Some(next) = s.pick(core, Some(callee)) {
            switch_in(&mut s, frame, next);
            drop(s);
            return wake_cores(core, &[wake]);
        }
    }
    wake_cores(core, &[wake]);
    run_next(frame, core, None);
}

/// The `reply_recv` system call of server `me`, whose registers are `frame`
/// (`receive` false: only answer, and return 0 at once).
pub fn reply_recv(frame: &mut SyscallFrame, me: usize, reply: Option<SyncMessage>, receive: bool) {
    let core = server::all()[me].core;
    let mut wake = None;
    let answered;
    {
        let mut s = state().lock();
        let serving = s.threads[me].serving.take();
        answered = serving;
        match (serving, reply) {
            (Some(caller), Some(reply)) => wake = Some(s.deliver_reply(caller, me, Ok(&reply))),
            (Some(caller), None) => wake = Some(s.deliver_reply(caller, me, Err(abi::err::NO_REPLY))),
            (None, Some(_)) => {
                frame.rax = error_return(abi::err::NOT_SERVING);
                return;
            }
            (None, None) => {}
        }
        if !receive {
            frame.rax = 0;
            drop(s);
            return wake_cores(core, &[wake]);
        }
        if let Some((caller, message)) = s.threads[me].callers.pop_front() {
            let badge = s.threads[caller].badge;
            s.threads[me].serving = Some(caller);
            put_message(frame, badge, &message);
            drop(s);
            return wake_cores(core, &[wake]);
        }
        let t = &mut s.threads[me];
        t.saved = *frame;
        t.run = Run::WaitingForCall;
        // The direct switch back: the caller just answered, if it is here.
        if let Some(next) = s.pick(core, answered) {
            switch_in(&mut s, frame, next);
            drop(s);
            return wake_cores(core, &[wake]);
        }
    }
    wake_cores(core, &[wake]);
    run_next(frame, core, None);
}

/// Server `me` stopped (exit or fault): every call it was serving or had
/// queued is answered with `NOT_RUNNING`. Returns whether another server
/// of its core may still run (then the core keeps scheduling instead of
/// parking).
fn stop(me: usize) -> bool {
    let core = server::all()[me].core;
    let mut wakes: Vec<Option<usize>> = Vec::new();
    let alive;
    {
        let mut s = state().lock();
        s.threads[me].run = Run::Stopped;
        let mut answer: Vec<usize> = s.threads[me].callers.drain(..).map(|(caller, _)| caller).collect();
        answer.extend(s.threads[me].serving.take());
        for caller in answer {
            wakes.push(Some(s.deliver_reply(caller, me, Err(abi::err::NOT_RUNNING))));
        }
        alive = s.core_has_life(core);
    }
    wake_cores(core, &wakes);
    alive
}

/// After a stop of `me` (on its core, its registers no longer needed):
/// answers its callers, restarts it if its policy said so (`restart` =
/// the back-off), and runs the next server of this core in `frame` — the
/// new incarnation, or another server sharing the core — or parks.
fn after_stop(frame: &mut SyscallFrame, me: usize, restart: Option<u32>) {
    let srv = &server::all()[me];
    let mut alive = stop(me);
    if let Some(backoff_ms) = restart {
        match life::reincarnate(me, backoff_ms) {
            Ok(()) => {
                let mut s = state().lock();
                let t = &mut s.threads[me];
                t.run = Run::NotStarted;
                t.saved = SyscallFrame::fresh(srv.entry, srv.stack_top);
                t.badge = srv.badge();
                t.serving = None;
                alive = true;
            }
            Err(e) => life::restart_failed(me, &e),
        }
    }
    if !alive {
        server::fault::park(srv)
    }
    run_next(frame, srv.core, Some(me));
}

/// The `exit` system call: the server stops; its core runs the next server
/// that shares it (returning through `frame`), its next incarnation, or parks.
pub fn exit(frame: &mut SyscallFrame, me: usize, code: i64) {
    let srv = &server::all()[me];
    if life::worth_a_line(srv.life.exits.load(Ordering::Relaxed) + 1) {
        log::info!("server `{}` (core {}) exited with code {code}", srv.name, srv.core);
    }
    let restart = life::stopped(me, Cause::Exited(code));
    after_stop(frame, me, restart);
}

/// A fault (exception `vector`, reported already) stopped the current
/// server: answers its callers, then runs its next incarnation, the next
/// server of this core, or parks it.
pub fn fault_current(vector: u64) -> ! {
    let me = cores::this_core().server.load(Ordering::Acquire);
    let restart = life::stopped(me, Cause::Faulted(vector));
    let mut frame = SyscallFrame::default();
    after_stop(&mut frame, me, restart);
    // SAFETY: `after_stop` returned, so `run_next` loaded the address
    // space of the server whose registers it put in `frame` (a saved
    // syscall context or a fresh start); we entered from ring 3, so the
    // kernel GS base is active.
    unsafe { resume_user(&frame) }
}

/// A mover found the current server hung (`life::request_stop_hung`) and
/// its core noticed in a trap from ring 3: stops it like a fault.
pub fn hung_current() -> ! {
    let me = cores::this_core().server.load(Ordering::Acquire);
    let restart = life::stopped(me, Cause::Hung);
    let mut frame = SyscallFrame::default();
    after_stop(&mut frame, me, restart);
    // SAFETY: as in `fault_current`.
    unsafe { resume_user(&frame) }
}

/// The same, noticed at the server's next system call (its registers in
/// `frame` are dropped: the call is not made).
pub fn hung_in_syscall(frame: &mut SyscallFrame, me: usize) {
    let restart = life::stopped(me, Cause::Hung);
    after_stop(frame, me, restart);
}
