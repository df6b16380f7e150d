//! The network stack server (issue 16): smoltcp over frames from the
//! `virtio-net` driver, 10.0.2.15/24 with gateway 10.0.2.2 (QEMU user
//! networking); TCP port 7000 and UDP port 7001 for the `kv` server.
//! Payloads travel as descriptors both ways: frames in the regions
//! `rx-frames`/`tx-frames`, application bytes in `to-app` (ours, kv holds
//! it read-only) and `to-stack` (kv's); the messages with kv and their
//! rules are `net-proto`'s.
//!
//! ```text
//!  driver ──FRAME(desc into its rx region)──▶ netstack   copies out, FRAME_RETURN
//!  driver ◀─FRAME(desc into our tx region)─── netstack   driver copies out, FRAME_RETURN
//!  kv ◀── TCP_OPEN/TCP_CLOSED [slot] ──────────────────── netstack
//!  kv ◀── TCP_DATA desc(to-app) ── TCP_DONE (taken) ─────▶ netstack   one chunk per slot
//!  kv ─── TCP_SEND desc(to-stack) ─▶ netstack   copies out, STACK_RETURN
//!  kv ◀── UDP_DATA desc(to-app) ─── APP_RETURN ──────────▶ netstack   a whole datagram
//!  kv ─── UDP_SEND desc(to-stack) ─▶ netstack   copies out, STACK_RETURN
//! ```
//!
//! Invariants: every frame the driver hands over is copied out of its
//! region before smoltcp sees it (the driver could rewrite it), and its
//! buffer returned at once; a tx buffer is ours again only when the driver
//! returns it (`BufferPool::release` refuses anything else). The same for
//! kv: its `TCP_SEND`/`UDP_SEND` buffers are copied out before use and
//! returned at once (`STACK_RETURN`), and a `to-app` buffer is ours again
//! only when kv returns it with our current epoch (`net-proto`), or when a
//! notice says kv stopped or restarted (then every one is taken back, the
//! epoch changes and the connections kv knew are reset). A frame
//! from the driver is taken from the inbox only when the receive queue has
//! room for it (otherwise it waits there, and the driver's buffers with
//! it: backpressure, not loss); what still does not fit (no free tx
//! buffer, a full socket buffer) is dropped and counted, and the counts
//! are logged when they change. Without a free `to-app` buffer, bytes wait
//! in their TCP socket and datagrams in the UDP socket (counted as waits,
//! not drops). Sends to kv never block (kv may be waiting for room in our
//! inbox): with our outbox full, bytes wait in their socket, a chunk or a
//! return in its queue. Polling only: the loop never sleeps while it has
//! sockets to serve.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use net_proto::{BUFFER_BYTES, Chunk, Done, DoneInline, TcpInline, UdpInline, epoch_bytes, epoch_of, first_epoch};
use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use userlib::abi::region::{ACCESS_RO, Descriptor};
use userlib::region::{copy_out, descriptor_message, descriptor_of, inline_of};
use userlib::{BufferPool, Channel, Region};

userlib::server_main!(run);

/// Labels: between driver and stack, and between stack and kv (`net-proto`).
pub mod label {
    pub use net_proto::label::*;
    pub use net_proto::link_label::*;
}

const FRAME_MAX: usize = 1514;
const RX_QUEUE: usize = 16;
const TX_QUEUE: usize = 8;
const TCP_SOCKETS: usize = net_proto::TCP_SLOTS;
const TCP_PORT: u16 = 7000;
const UDP_PORT: u16 = 7001;
/// Datagrams each way the UDP socket holds (8 KiB of bytes each way).
const UDP_DATAGRAMS: usize = 64;
/// kv's `to-stack` buffers we may owe it at once (its region holds 128).
const RETURNS: usize = 128;
/// How long a chunk kv took only part of waits before it is offered again.
const RETRY_US: u64 = 50;

/// Frames received from the driver (copied out), waiting for smoltcp.
struct RxQueue {
    frames: [[u8; FRAME_MAX]; RX_QUEUE],
    len: [usize; RX_QUEUE],
    head: usize,
    count: usize,
}

/// What the stack dropped, by where; logged when it changes.
#[derive(Clone, Copy, Default, PartialEq)]
struct Drops {
    /// Frames from the driver that could not be copied out.
    rx_unreadable: u64,
    /// Frames from the driver that found the receive queue full (only
    /// while every tx buffer is with the driver too).
    rx_queue_full: u64,
    /// Frames smoltcp made while every tx buffer was with the driver.
    tx_no_buffer: u64,
    /// TCP_SEND bytes a socket would not queue (full send buffer, or not
    /// connected any more).
    tcp_unsent: u64,
    /// Echoes the UDP socket would not queue (its tx buffer full).
    udp_unsent: u64,
    /// Datagrams not forwarded to kv: ones that came back undelivered (a
    /// bounce: kv not running).
    udp_unforwarded: u64,
    /// kv's messages refused: a payload that could not be copied out (or
    /// no descriptor), an answer naming no buffer we lent, a stale epoch.
    kv_refused: u64,
    /// Returns owed to kv that did not fit our queue (kv sent more
    /// buffers than its region holds).
    returns_lost: u64,
    /// Turns of the loop in which bytes or a datagram waited in their
    /// socket for a free `to-app` buffer (a wait, not a drop).
    app_buffer_waits: u64,
}

/// kv's buffers we copied out and owe back (`STACK_RETURN`), in order:
/// the descriptor (our view) and kv's epoch beside it.
struct Returns {
    owed: [(Descriptor, u32); RETURNS],
    head: usize,
    len: usize,
}

impl Returns {
    fn push(&mut self, descriptor: Descriptor, epoch: u32) -> bool {
        if self.len == RETURNS {
            return false;
        }
        self.owed[(self.head + self.len) % RETURNS] = (descriptor, epoch);
        self.len += 1;
        true
    }

    /// Sends what fits the outbox, oldest first; never blocks.
    fn flush(&mut self, channel: &mut Channel, kv: u32) {
        while self.len > 0 {
            let (descriptor, epoch) = self.owed[self.head];
            if let Ok(message) = descriptor_message(kv, label::STACK_RETURN, &descriptor, &epoch.to_le_bytes())
                && channel.try_send_message(&message).is_err()
            {
                return;
            }
            self.head = (self.head + 1) % RETURNS;
            self.len -= 1;
        }
    }
}

impl RxQueue {
    /// Room for one more frame: its buffer, to copy into.
    fn slot(&mut self) -> Option<&mut [u8; FRAME_MAX]> {
        (self.count < RX_QUEUE).then(|| &mut self.frames[(self.head + self.count) % RX_QUEUE])
    }

    fn push(&mut self, len: usize) {
        self.len[(self.head + self.count) % RX_QUEUE] = len;
        self.count += 1;
    }
}

/// Frames smoltcp produced, waiting to go to the driver.
struct TxQueue {
    frames: [[u8; FRAME_MAX]; TX_QUEUE],
    len: [usize; TX_QUEUE],
    count: usize,
    /// Frames smoltcp may make before the next flush: at most TX_QUEUE,
    /// and no more than the free `tx-frames` buffers, so what it makes
    /// has a buffer (what it may not send waits in its sockets).
    room: usize,
}

/// smoltcp's view of the driver: the two queues.
struct Link {
    rx: RxQueue,
    tx: TxQueue,
}

struct Rx<'a>(&'a [u8]);
struct Tx<'a>(&'a mut TxQueue);

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let queue = self.0;
        let n = queue.count;
        let len = len.min(FRAME_MAX);
        let result = f(&mut queue.frames[n][..len]);
        queue.len[n] = len;
        queue.count += 1;
        result
    }
}

impl Device for Link {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _now: Instant) -> Option<(Rx<'_>, Tx<'_>)> {
        if self.rx.count == 0 || self.tx.count >= self.tx.room {
            return None;
        }
        let i = self.rx.head;
        self.rx.head = (i + 1) % RX_QUEUE;
        self.rx.count -= 1;
        let len = self.rx.len[i].min(FRAME_MAX);
        Some((Rx(&self.rx.frames[i][..len]), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _now: Instant) -> Option<Tx<'_>> {
        (self.tx.count < self.tx.room).then_some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = FRAME_MAX;
        caps.max_burst_size = Some(1);
        caps
    }
}

fn now(ticks_per_us: u64) -> Instant {
    Instant::from_micros((userlib::rdtsc() / ticks_per_us.max(1)) as i64)
}

/// Queues `data` (kv's `UDP_SEND` payload, or nothing for
/// `UDP_SEND_EMPTY`) as a datagram to the destination in kv's inline
/// bytes; counts a destination that does not decode, or a full socket.
fn send_datagram(socket: &mut udp::Socket, inline: &[u8], data: &[u8], drops: &mut Drops) {
    let Some(to) = UdpInline::decode(inline) else {
        drops.kv_refused += 1;
        return;
    };
    let endpoint = IpEndpoint::new(IpAddress::Ipv4(Ipv4Address::from(to.ip)), to.port);
    if socket.send_slice(data, endpoint).is_err() {
        drops.udp_unsent += 1;
    }
}

fn run() -> i32 {
    let Some(mut channel) = Channel::open_or_log() else { return 1 };
    let (Some(driver), Some(kv)) = (channel.endpoint_named("driver"), channel.endpoint_named("kv")) else {
        userlib::log!("netstack: needs endpoints `driver` and `kv`");
        return 1;
    };
    let Some(mut tx_pool) = Region::named("tx-frames").ok().and_then(|r| BufferPool::new(r, 2048)) else {
        userlib::log!("netstack: needs the region `tx-frames` (owner)");
        return 1;
    };
    let Some(mut app_pool) = Region::named("to-app").ok().and_then(|r| BufferPool::new(r, BUFFER_BYTES as u64)) else {
        userlib::log!("netstack: needs the region `to-app` (owner)");
        return 1;
    };
    if Region::named("to-stack").is_err() {
        userlib::log!("netstack: needs the region `to-stack` (kv's, read-only)");
        return 1;
    }
    let ticks_per_us = userlib::tsc_hz() / 1_000_000;
    let generation = userlib::generation();
    // Test hook (NET0004, qemu-scripts/systems/tests/net-stack-restart.toml):
    // the first incarnation exits with code 3 on the Nth frame from the
    // driver, after copying it and before returning its buffer, so the
    // driver and kv each hold loans to a server that stopped.
    let mut exit_after_frames =
        userlib::arg("exit_after_frames").and_then(|v| v.parse::<u64>().ok()).filter(|_| generation == 0);
    // The driver tells us the MAC first (again after we restarted: the
    // notice of our restart makes it send it). A frame that comes before
    // it goes back at once, with the driver's bytes.
    let mac = loop {
        let m = channel.recv();
        if m.sender_badge != 0 && m.label == label::MAC && m.payload_bytes().len() == 6 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(m.payload_bytes());
            break mac;
        }
        if m.sender_badge != 0
            && m.label == label::FRAME
            && let Some(d) = descriptor_of(&m)
            && let Ok(back) = descriptor_message(driver, label::FRAME_RETURN, &d, epoch_bytes(inline_of(&m)))
        {
            channel.send_message(&back);
        }
    };
    let mut link = Link {
        rx: RxQueue { frames: [[0; FRAME_MAX]; RX_QUEUE], len: [0; RX_QUEUE], head: 0, count: 0 },
        tx: TxQueue { frames: [[0; FRAME_MAX]; TX_QUEUE], len: [0; TX_QUEUE], count: 0, room: TX_QUEUE },
    };
    let config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
    let mut iface = Interface::new(config, &mut link, now(ticks_per_us));
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::v4(10, 0, 2, 15), 24));
    });
    let _ = iface.routes_mut().add_default_ipv4_route(Ipv4Address::new(10, 0, 2, 2));

    // On the stack (net.toml's stack_kib = 512): 64 x (1 KiB rx + 2 KiB
    // tx) = 192 KiB of socket buffers, 36 KiB of frame queues, 16 KiB of
    // UDP buffers and the socket set. A request line is at most 326 bytes
    // (kv-logic) and a reply at most 263, so 1 KiB / 2 KiB hold several.
    let mut tcp_rx = [[0u8; 1024]; TCP_SOCKETS];
    let mut tcp_tx = [[0u8; 2048]; TCP_SOCKETS];
    let mut udp_rx_meta = [udp::PacketMetadata::EMPTY; UDP_DATAGRAMS];
    let mut udp_tx_meta = [udp::PacketMetadata::EMPTY; UDP_DATAGRAMS];
    let mut udp_rx = [0u8; 8192];
    let mut udp_tx = [0u8; 8192];
    let mut storage = [SocketStorage::EMPTY; TCP_SOCKETS + 1];
    let mut sockets = SocketSet::new(&mut storage[..]);
    let mut tcp_handles: [Option<SocketHandle>; TCP_SOCKETS] = [None; TCP_SOCKETS];
    for ((handle, rx), tx) in tcp_handles.iter_mut().zip(tcp_rx.iter_mut()).zip(tcp_tx.iter_mut()) {
        let mut socket = tcp::Socket::new(tcp::SocketBuffer::new(&mut rx[..]), tcp::SocketBuffer::new(&mut tx[..]));
        let _ = socket.listen(TCP_PORT);
        *handle = Some(sockets.add(socket));
    }
    let mut udp_socket = udp::Socket::new(
        udp::PacketBuffer::new(&mut udp_rx_meta[..], &mut udp_rx[..]),
        udp::PacketBuffer::new(&mut udp_tx_meta[..], &mut udp_tx[..]),
    );
    let _ = udp_socket.bind(UDP_PORT);
    let udp_handle = sockets.add(udp_socket);
    let _ = channel.send(kv, label::READY, &[]);
    userlib::log!(
        "netstack: 10.0.2.15/24 via 10.0.2.2, listening on tcp {TCP_PORT} ({TCP_SOCKETS} sockets) and udp {UDP_PORT}; {} to-app buffers of {BUFFER_BYTES} bytes",
        app_pool.count()
    );

    let mut open = [false; TCP_SOCKETS];
    // The chunk of each slot's bytes lent to kv (net-proto: one at a time).
    let mut chunks: [Option<Chunk>; TCP_SOCKETS] = [None; TCP_SOCKETS];
    // Change when kv (the driver) stops or restarts: returns of older
    // loans of `to-app` (`tx-frames`) buffers are stale. Each incarnation
    // starts on epochs of its own, so returns addressed to the one before
    // are stale too.
    let mut app_epoch = first_epoch(generation);
    let mut tx_epoch = first_epoch(generation);
    let mut kv_up = true;
    let empty = Descriptor { region: 0, access: 0, length: 0, offset: 0 };
    let mut returns = Returns { owed: [(empty, 0); RETURNS], head: 0, len: 0 };
    let mut drops = Drops::default();
    let mut drops_logged = Drops::default();
    let mut drops_logged_at = 0u64;
    // Private copies of kv's payloads (the trust rule: never parse in place).
    let mut from_kv = [0u8; BUFFER_BYTES];
    loop {
        // 1. Messages: frames from the driver, returned tx buffers, data
        // from kv; only while the receive queue has room for a frame, so a
        // burst waits in the inbox instead of being dropped here.
        // (When every tx buffer is with the driver as well, messages are
        // taken anyway: its FRAME_RETURNs are what frees them, and a frame
        // that finds the queue full is dropped and counted.)
        while (link.rx.count < RX_QUEUE || tx_pool.outstanding() == tx_pool.count())
            && let Some(m) = channel.try_recv()
        {
            if m.sender_badge == 0 {
                if let Some(notice) = Channel::notice(&m) {
                    use userlib::abi::notice::{GAVE_UP, RESTARTED, STOPPED};
                    if m.destination_endpoint == kv {
                        // kv will never return what the stopped incarnation
                        // held, and its sessions are gone: take every
                        // buffer back, make late returns stale, and reset
                        // the connections it was serving.
                        let reclaimed = app_pool.reclaim_all();
                        app_epoch = app_epoch.wrapping_add(1);
                        chunks = [None; TCP_SOCKETS];
                        returns.len = 0;
                        let mut reset = 0;
                        for (slot, handle) in tcp_handles.iter().enumerate() {
                            if let Some(h) = handle
                                && open[slot]
                            {
                                sockets.get_mut::<tcp::Socket>(*h).abort();
                                open[slot] = false;
                                reset += 1;
                            }
                        }
                        kv_up = notice.kind == RESTARTED;
                        userlib::log!(
                            "netstack: kv {} (generation {}): {reclaimed} to-app buffers taken back, {reset} connections reset",
                            if kv_up { "is back" } else { "stopped" },
                            notice.generation
                        );
                        continue;
                    }
                    match notice.kind {
                        STOPPED | GAVE_UP => {
                            // It will never return the frames it held.
                            let reclaimed = tx_pool.reclaim_all();
                            tx_epoch = tx_epoch.wrapping_add(1);
                            userlib::log!(
                                "netstack: the driver stopped (cause {}, detail {}{}): the device is gone; TCP and UDP wait; {reclaimed} tx buffers taken back",
                                notice.cause,
                                notice.detail,
                                if notice.kind == GAVE_UP { ", for good" } else { ", to be restarted" }
                            )
                        }
                        RESTARTED => userlib::log!(
                            "netstack: the driver is back (generation {}): the device is here again",
                            notice.generation
                        ),
                        _ => userlib::log!("netstack: notice {notice:?}"),
                    }
                } else if let Some(d) = descriptor_of(&m) {
                    // A message of ours bounced back (the label says why,
                    // the descriptor's region which buffer it was).
                    if d.region == tx_pool.region().index() {
                        if epoch_of(inline_of(&m)) == Some(tx_epoch) {
                            let _ = tx_pool.release(&d);
                        }
                    } else if d.region == app_pool.region().index() && epoch_of(inline_of(&m)) == Some(app_epoch) {
                        match chunks.iter_mut().flatten().find(|c| c.in_flight && c.rest().0 == d.offset) {
                            // A TCP chunk: offered again later.
                            Some(chunk) => {
                                chunk.in_flight = false;
                                chunk.retry_at = userlib::rdtsc() + RETRY_US * ticks_per_us;
                            }
                            // A datagram: lost.
                            None => {
                                if app_pool.release(&d).is_ok() {
                                    drops.udp_unforwarded += 1;
                                }
                            }
                        }
                    }
                    // (kv's own buffers bounced back to us are kv's business.)
                } else if m.label == label::UDP_EMPTY {
                    drops.udp_unforwarded += 1; // an empty datagram bounced: lost
                }
                continue;
            }
            let from_kv_endpoint = channel.endpoint_for_badge(m.sender_badge) == Some(kv);
            match m.label {
                label::FRAME if !from_kv_endpoint => {
                    let Some(d) = descriptor_of(&m) else { continue };
                    match link.rx.slot() {
                        Some(slot) => match copy_out(&d, &mut slot[..]) {
                            Ok(n) => link.rx.push(n),
                            Err(_) => drops.rx_unreadable += 1,
                        },
                        None => drops.rx_queue_full += 1,
                    }
                    if let Some(left) = exit_after_frames.as_mut() {
                        *left = left.saturating_sub(1);
                        if *left == 0 {
                            userlib::log!(
                                "netstack: exiting on purpose (exit_after_frames), holding a frame of the driver's, {} tx buffers and {} to-app buffers out",
                                tx_pool.outstanding(),
                                app_pool.outstanding()
                            );
                            return 3;
                        }
                    }
                    if let Ok(back) = descriptor_message(driver, label::FRAME_RETURN, &d, epoch_bytes(inline_of(&m))) {
                        channel.send_message(&back);
                    }
                }
                label::FRAME_RETURN if !from_kv_endpoint => {
                    if let Some(d) = descriptor_of(&m)
                        && epoch_of(inline_of(&m)) == Some(tx_epoch)
                    {
                        let _ = tx_pool.release(&d);
                    }
                }
                label::TCP_SEND | label::UDP_SEND if from_kv_endpoint => {
                    // Copy out, owe the buffer back at once, then use the copy.
                    let Some(d) = descriptor_of(&m) else {
                        drops.kv_refused += 1;
                        continue;
                    };
                    let inline = inline_of(&m);
                    let copied = copy_out(&d, &mut from_kv);
                    if !returns.push(d, epoch_of(inline).unwrap_or(0)) {
                        drops.returns_lost += 1;
                    }
                    let Ok(n) = copied else {
                        drops.kv_refused += 1;
                        continue;
                    };
                    let data = &from_kv[..n];
                    if m.label == label::TCP_SEND {
                        let Some(TcpInline { slot, .. }) = TcpInline::decode(inline) else {
                            drops.kv_refused += 1;
                            continue;
                        };
                        if let Some(Some(h)) = tcp_handles.get(usize::from(slot)) {
                            let socket = sockets.get_mut::<tcp::Socket>(*h);
                            if socket.send_slice(data) != Ok(data.len()) {
                                drops.tcp_unsent += 1;
                            }
                        }
                    } else {
                        send_datagram(sockets.get_mut::<udp::Socket>(udp_handle), inline, data, &mut drops);
                    }
                }
                label::UDP_SEND_EMPTY if from_kv_endpoint => {
                    send_datagram(sockets.get_mut::<udp::Socket>(udp_handle), m.payload_bytes(), &[], &mut drops);
                }
                label::TCP_DONE if from_kv_endpoint => {
                    let (Some(d), Some(done)) = (descriptor_of(&m), DoneInline::decode(inline_of(&m))) else {
                        drops.kv_refused += 1;
                        continue;
                    };
                    if done.epoch != app_epoch || d.region != app_pool.region().index() {
                        continue; // a loan taken back since (kv restarted)
                    }
                    let slot = usize::from(done.slot);
                    let Some(Some(chunk)) = chunks.get_mut(slot) else {
                        drops.kv_refused += 1;
                        continue;
                    };
                    match chunk.done(d.offset, u32::from(done.taken)) {
                        Ok(Done::Finished) => {
                            let buffer = chunk.buffer;
                            chunks[slot] = None;
                            let _ = app_pool.release(&app_pool.region().descriptor(buffer, 0, ACCESS_RO));
                        }
                        // kv had no buffer for more replies: the rest later.
                        Ok(Done::Partly) => chunk.retry_at = userlib::rdtsc() + RETRY_US * ticks_per_us,
                        Err(_) => drops.kv_refused += 1,
                    }
                }
                label::APP_RETURN if from_kv_endpoint => {
                    let Some(d) = descriptor_of(&m) else {
                        drops.kv_refused += 1;
                        continue;
                    };
                    if epoch_of(inline_of(&m)) != Some(app_epoch) {
                        continue; // a loan taken back since (kv restarted)
                    }
                    // Never a TCP chunk's buffer (those come back by TCP_DONE).
                    let lent_as_chunk = chunks.iter().flatten().any(|c| c.buffer == d.offset);
                    if lent_as_chunk || app_pool.release(&d).is_err() {
                        drops.kv_refused += 1;
                    }
                }
                _ => {}
            }
        }
        returns.flush(&mut channel, kv);
        // 2. The stack, and 3. the frames it made go to the driver through
        // our region. smoltcp takes a received frame only while the tx
        // queue has room for an answer, and sends at most that many frames
        // a poll, so this repeats while frames are waiting to come in or
        // the last poll filled the tx queue (more may be waiting in the
        // sockets), as long as tx buffers are free.
        for _ in 0..RX_QUEUE {
            link.tx.room = TX_QUEUE.min(tx_pool.count() - tx_pool.outstanding());
            if link.tx.room == 0 {
                break;
            }
            iface.poll(now(ticks_per_us), &mut link, &mut sockets);
            let filled = link.tx.count == link.tx.room;
            for i in 0..link.tx.count {
                let frame = &link.tx.frames[i][..link.tx.len[i]];
                let Some(buffer) = tx_pool.alloc() else {
                    drops.tx_no_buffer += 1;
                    continue;
                };
                if tx_pool.region().write(buffer.offset, frame).is_err() {
                    let _ = tx_pool.release(&tx_pool.descriptor(&buffer, 0, ACCESS_RO));
                    continue;
                }
                let d = tx_pool.descriptor(&buffer, frame.len() as u32, ACCESS_RO);
                if let Ok(message) = descriptor_message(driver, label::FRAME, &d, &tx_epoch.to_le_bytes()) {
                    channel.send_message(&message);
                }
            }
            link.tx.count = 0;
            if link.rx.count == 0 && !filled {
                break;
            }
        }
        // 4. Sockets to kv, as descriptors of `to-app` buffers. Never a
        // blocking send: kv may itself be waiting for room in our inbox, so
        // when our outbox is full the bytes stay in their socket (TCP), a
        // chunk stays unoffered, a datagram stays in the UDP socket, until
        // a later turn, and the loop goes on taking kv's messages. The same
        // without a free `to-app` buffer.
        let turn = userlib::rdtsc();
        let mut waited = false;
        for (slot, handle) in tcp_handles.iter().enumerate() {
            let Some(h) = handle else { continue };
            let socket = sockets.get_mut::<tcp::Socket>(*h);
            if kv_up
                && socket.is_active()
                && !open[slot]
                && channel.try_send(kv, label::TCP_OPEN, &[slot as u8]).is_ok()
            {
                open[slot] = true;
            }
            // A new chunk: as many bytes as the socket holds in one piece.
            if open[slot] && chunks[slot].is_none() && socket.can_recv() {
                match app_pool.alloc() {
                    None => waited = true,
                    Some(buffer) => {
                        let region = app_pool.region();
                        let taken = socket.recv(|data| {
                            let n = data.len().min(BUFFER_BYTES);
                            if region.write(buffer.offset, &data[..n]).is_ok() { (n, n) } else { (0, 0) }
                        });
                        match taken {
                            Ok(n) if n > 0 => chunks[slot] = Some(Chunk::new(buffer.offset, n as u32)),
                            _ => {
                                let _ = app_pool.release(&app_pool.descriptor(&buffer, 0, ACCESS_RO));
                            }
                        }
                    }
                }
            }
            if let Some(chunk) = chunks[slot].as_mut()
                && open[slot]
                && chunk.may_offer(turn)
            {
                let (offset, len) = chunk.rest();
                let d = app_pool.region().descriptor(offset, len, ACCESS_RO);
                let inline = TcpInline { epoch: app_epoch, slot: slot as u8 }.encode();
                if let Ok(message) = descriptor_message(kv, label::TCP_DATA, &d, &inline)
                    && channel.try_send_message(&message).is_ok()
                {
                    chunk.in_flight = true;
                }
            }
            // Half closed by the client: close our side once kv has
            // answered everything (its replies come before its TCP_DONE).
            if open[slot] && chunks[slot].is_none() && !socket.may_recv() && socket.state() == tcp::State::CloseWait {
                socket.close();
            }
            // Gone: what kv did not take of its bytes goes with it, but
            // only once no chunk of the slot is with kv, so TCP_CLOSED
            // (and a new client's TCP_OPEN) come after the last of them.
            if open[slot] && !socket.is_active() && chunks[slot].is_none_or(|c| !c.in_flight) {
                if let Some(chunk) = chunks[slot].take() {
                    let _ = app_pool.release(&app_pool.region().descriptor(chunk.buffer, 0, ACCESS_RO));
                }
                if channel.try_send(kv, label::TCP_CLOSED, &[slot as u8]).is_ok() {
                    open[slot] = false;
                }
            }
            // Listens again only once kv knows the last client left, so a
            // new client's slot never carries an old session.
            if !socket.is_open() && !open[slot] {
                let _ = socket.listen(TCP_PORT);
            }
        }
        // Datagrams, whole, one buffer each.
        let socket = sockets.get_mut::<udp::Socket>(udp_handle);
        while kv_up && socket.can_recv() {
            if let Ok((data, meta)) = socket.peek()
                && data.is_empty()
            {
                // An empty datagram: no buffer to describe (a descriptor
                // has a length), so only its sender travels, inline.
                let IpAddress::Ipv4(ip) = meta.endpoint.addr;
                let inline = UdpInline { epoch: app_epoch, ip: ip.octets(), port: meta.endpoint.port }.encode();
                if channel.try_send(kv, label::UDP_EMPTY, &inline).is_err() {
                    break; // the outbox is full: the datagram waits in the socket
                }
                let _ = socket.recv();
                continue;
            }
            let Some(buffer) = app_pool.alloc() else {
                waited = true;
                break; // the datagram waits in the socket
            };
            let region = app_pool.region();
            let written = match socket.peek() {
                Ok((data, meta)) => {
                    let IpAddress::Ipv4(ip) = meta.endpoint.addr;
                    let n = data.len().min(BUFFER_BYTES);
                    region.write(buffer.offset, &data[..n]).ok().map(|()| (n, ip, meta.endpoint.port))
                }
                Err(_) => None,
            };
            let Some((n, ip, port)) = written else {
                let _ = app_pool.release(&app_pool.descriptor(&buffer, 0, ACCESS_RO));
                let _ = socket.recv(); // unreadable: let it go
                continue;
            };
            let d = app_pool.descriptor(&buffer, n as u32, ACCESS_RO);
            let inline = UdpInline { epoch: app_epoch, ip: ip.octets(), port }.encode();
            let sent = descriptor_message(kv, label::UDP_DATA, &d, &inline)
                .is_ok_and(|message| channel.try_send_message(&message).is_ok());
            if !sent {
                let _ = app_pool.release(&d);
                break; // the outbox is full: the datagram waits in the socket
            }
            let _ = socket.recv();
        }
        if waited {
            drops.app_buffer_waits += 1;
        }
        // 5. Drops, when they changed (at most every 2 s).
        if drops != drops_logged && userlib::rdtsc().wrapping_sub(drops_logged_at) > 2_000_000 * ticks_per_us {
            userlib::log!(
                "netstack: dropped so far: {} unreadable rx frames, {} rx frames on a full queue, {} tx frames without a buffer, {} TCP sends, {} UDP echoes unsent, {} datagrams not forwarded to kv, {} kv messages refused, {} returns to kv lost; {} turns waited for a to-app buffer",
                drops.rx_unreadable,
                drops.rx_queue_full,
                drops.tx_no_buffer,
                drops.tcp_unsent,
                drops.udp_unsent,
                drops.udp_unforwarded,
                drops.kv_refused,
                drops.returns_lost,
                drops.app_buffer_waits
            );
            drops_logged = drops;
            drops_logged_at = userlib::rdtsc();
        }
        core::hint::spin_loop();
    }
}
