//! The network stack server (issue 16): smoltcp over frames from the
//! `virtio-net` driver, 10.0.2.15/24 with gateway 10.0.2.2 (QEMU user
//! networking); TCP port 7000 and UDP port 7001 for the `kv` server.
//!
//! ```text
//!  driver ──FRAME(desc into its rx region)──▶ netstack   copies out, FRAME_RETURN
//!  driver ◀─FRAME(desc into our tx region)─── netstack   driver copies out, FRAME_RETURN
//!  kv ◀── TCP_OPEN/TCP_DATA/TCP_CLOSED [slot, bytes] ── netstack
//!  kv ─── TCP_SEND [slot, bytes] ─────────────────────▶ netstack
//!  kv ◀── UDP_DATA [ip, port, total, offset, bytes] / UDP_SEND ─▶ netstack
//! ```
//!
//! Invariants: every frame the driver hands over is copied out of its
//! region before smoltcp sees it (the driver could rewrite it), and its
//! buffer returned at once; a tx buffer is ours again only when the driver
//! returns it (`BufferPool::release` refuses anything else). A frame
//! from the driver is taken from the inbox only when the receive queue has
//! room for it (otherwise it waits there, and the driver's buffers with
//! it: backpressure, not loss); what still does not fit (no free tx
//! buffer, a full socket buffer) is dropped and counted, and the counts
//! are logged when they change. Sends to kv never block (kv may be
//! waiting for room in our inbox): with our outbox full, bytes wait in
//! their socket. Polling only: the loop never sleeps while it has sockets
//! to serve.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet, SocketStorage};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Address};
use userlib::abi::region::ACCESS_RO;
use userlib::region::{copy_out, descriptor_message, descriptor_of};
use userlib::{BufferPool, Channel, Region};

userlib::server_main!(run);

/// Labels between driver, stack and kv (the same numbers in each).
pub mod label {
    pub const MAC: u32 = 0x4e00;
    pub const FRAME: u32 = 0x4e01;
    pub const FRAME_RETURN: u32 = 0x4e02;
    pub const READY: u32 = 0x4e03;
    pub const TCP_OPEN: u32 = 0x4e10;
    pub const TCP_DATA: u32 = 0x4e11;
    pub const TCP_CLOSED: u32 = 0x4e12;
    pub const TCP_SEND: u32 = 0x4e13;
    pub const UDP_DATA: u32 = 0x4e20;
    pub const UDP_SEND: u32 = 0x4e21;
}

const FRAME_MAX: usize = 1514;
const RX_QUEUE: usize = 16;
const TX_QUEUE: usize = 8;
const TCP_SOCKETS: usize = 64;
const TCP_PORT: u16 = 7000;
const UDP_PORT: u16 = 7001;
/// Datagrams each way the UDP socket holds (8 KiB of bytes each way).
const UDP_DATAGRAMS: usize = 64;
/// Bytes of TCP data per message to kv (1 byte slot + 39).
const CHUNK: usize = 39;
/// Bytes of UDP data per message (4 address + 2 port + 2 total + 2 offset + 30).
const UDP_CHUNK: usize = 30;

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
    /// Datagrams cut off on the way to kv (our outbox filled midway).
    udp_unforwarded: u64,
    /// UDP_SEND pieces out of step (a datagram dropped).
    udp_out_of_step: u64,
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
    let ticks_per_us = userlib::tsc_hz() / 1_000_000;
    // The driver tells us the MAC first.
    let mac = loop {
        let m = channel.recv();
        if m.sender_badge != 0 && m.label == label::MAC && m.payload_bytes().len() == 6 {
            let mut mac = [0u8; 6];
            mac.copy_from_slice(m.payload_bytes());
            break mac;
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
        "netstack: 10.0.2.15/24 via 10.0.2.2, listening on tcp {TCP_PORT} ({TCP_SOCKETS} sockets) and udp {UDP_PORT}"
    );

    let mut open = [false; TCP_SOCKETS];
    let mut drops = Drops::default();
    let mut drops_logged = Drops::default();
    let mut drops_logged_at = 0u64;
    let mut chunk = [0u8; 40];
    let mut udp_buf = [0u8; 1500];
    let mut udp_out = [0u8; 1500];
    let mut udp_out_len = usize::MAX;
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
                    match notice.kind {
                        STOPPED | GAVE_UP => userlib::log!(
                            "netstack: the driver stopped (cause {}, detail {}{}): the device is gone; TCP and UDP wait",
                            notice.cause,
                            notice.detail,
                            if notice.kind == GAVE_UP { ", for good" } else { ", to be restarted" }
                        ),
                        RESTARTED => userlib::log!(
                            "netstack: the driver is back (generation {}): the device is here again",
                            notice.generation
                        ),
                        _ => userlib::log!("netstack: notice {notice:?}"),
                    }
                } else if let Some(d) = descriptor_of(&m) {
                    // A frame of ours bounced back: ours again.
                    let _ = tx_pool.release(&d);
                }
                continue;
            }
            match m.label {
                label::FRAME => {
                    let Some(d) = descriptor_of(&m) else { continue };
                    match link.rx.slot() {
                        Some(slot) => match copy_out(&d, &mut slot[..]) {
                            Ok(n) => link.rx.push(n),
                            Err(_) => drops.rx_unreadable += 1,
                        },
                        None => drops.rx_queue_full += 1,
                    }
                    if let Ok(back) = descriptor_message(driver, label::FRAME_RETURN, &d, &[]) {
                        channel.send_message(&back);
                    }
                }
                label::FRAME_RETURN => {
                    if let Some(d) = descriptor_of(&m) {
                        let _ = tx_pool.release(&d);
                    }
                }
                label::TCP_SEND => {
                    let bytes = m.payload_bytes();
                    let Some((&slot, data)) = bytes.split_first() else { continue };
                    if let Some(Some(h)) = tcp_handles.get(usize::from(slot)) {
                        let socket = sockets.get_mut::<tcp::Socket>(*h);
                        if socket.send_slice(data) != Ok(data.len()) {
                            drops.tcp_unsent += 1;
                        }
                    }
                }
                label::UDP_SEND => {
                    let bytes = m.payload_bytes();
                    if bytes.len() < 10 {
                        continue;
                    }
                    let total = usize::from(u16::from_le_bytes([bytes[6], bytes[7]]));
                    let offset = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
                    let data = &bytes[10..];
                    if offset == 0 {
                        udp_out_len = 0;
                    }
                    if offset != udp_out_len || total > udp_out.len() || offset + data.len() > total {
                        udp_out_len = usize::MAX; // out of step: drop this datagram
                        drops.udp_out_of_step += 1;
                        continue;
                    }
                    udp_out[offset..offset + data.len()].copy_from_slice(data);
                    udp_out_len = offset + data.len();
                    if udp_out_len == total {
                        let ip = Ipv4Address::new(bytes[0], bytes[1], bytes[2], bytes[3]);
                        let port = u16::from_le_bytes([bytes[4], bytes[5]]);
                        let socket = sockets.get_mut::<udp::Socket>(udp_handle);
                        if socket.send_slice(&udp_out[..total], IpEndpoint::new(IpAddress::Ipv4(ip), port)).is_err() {
                            drops.udp_unsent += 1;
                        }
                        udp_out_len = usize::MAX;
                    }
                }
                _ => {}
            }
        }
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
                if let Ok(message) = descriptor_message(driver, label::FRAME, &d, &[]) {
                    channel.send_message(&message);
                }
            }
            link.tx.count = 0;
            if link.rx.count == 0 && !filled {
                break;
            }
        }
        // 4. Sockets to kv. Never a blocking send: kv may itself be
        // waiting for room in our inbox, so when our outbox is full the
        // bytes stay in their socket (TCP) or datagram (UDP) until a later
        // turn, and the loop goes on taking kv's messages.
        for (slot, handle) in tcp_handles.iter().enumerate() {
            let Some(h) = handle else { continue };
            let socket = sockets.get_mut::<tcp::Socket>(*h);
            if socket.is_active() && !open[slot] && channel.try_send(kv, label::TCP_OPEN, &[slot as u8]).is_ok() {
                open[slot] = true;
            }
            while open[slot] && socket.can_recv() {
                let sent = socket.recv(|data| {
                    let n = data.len().min(CHUNK);
                    chunk[0] = slot as u8;
                    chunk[1..1 + n].copy_from_slice(&data[..n]);
                    if n > 0 && channel.try_send(kv, label::TCP_DATA, &chunk[..1 + n]).is_ok() {
                        (n, true)
                    } else {
                        (0, false)
                    }
                });
                if sent != Ok(true) {
                    break;
                }
            }
            if open[slot] && !socket.may_recv() && socket.state() == tcp::State::CloseWait {
                socket.close();
            }
            if open[slot] && !socket.is_active() && channel.try_send(kv, label::TCP_CLOSED, &[slot as u8]).is_ok() {
                open[slot] = false;
            }
            // Listens again only once kv knows the last client left, so a
            // new client's slot never carries an old session.
            if !socket.is_open() && !open[slot] {
                let _ = socket.listen(TCP_PORT);
            }
        }
        let socket = sockets.get_mut::<udp::Socket>(udp_handle);
        while let Ok((n, meta)) = socket.peek_slice(&mut udp_buf) {
            let IpAddress::Ipv4(ip) = meta.endpoint.addr;
            let port = meta.endpoint.port;
            // In pieces: [address, port, total, offset, bytes...]; kv
            // answers each piece in order and we put the datagram together.
            let total = n as u16;
            let mut offset = 0usize;
            let mut pieces_sent = 0usize;
            loop {
                let part = (n - offset).min(UDP_CHUNK);
                let mut message = [0u8; 40];
                message[..4].copy_from_slice(&ip.octets());
                message[4..6].copy_from_slice(&port.to_le_bytes());
                message[6..8].copy_from_slice(&total.to_le_bytes());
                message[8..10].copy_from_slice(&(offset as u16).to_le_bytes());
                message[10..10 + part].copy_from_slice(&udp_buf[offset..offset + part]);
                if channel.try_send(kv, label::UDP_DATA, &message[..10 + part]).is_err() {
                    break;
                }
                pieces_sent += 1;
                offset += part;
                if offset >= n {
                    break;
                }
            }
            if pieces_sent == 0 {
                break; // the outbox is full: the datagram waits in the socket
            }
            if offset < n {
                drops.udp_unforwarded += 1; // cut off: its echo will be out of step
            }
            let _ = socket.recv_slice(&mut udp_buf);
        }
        // 5. Drops, when they changed (at most every 2 s).
        if drops != drops_logged && userlib::rdtsc().wrapping_sub(drops_logged_at) > 2_000_000 * ticks_per_us {
            userlib::log!(
                "netstack: dropped so far: {} unreadable rx frames, {} rx frames on a full queue, {} tx frames without a buffer, {} TCP sends, {} UDP echoes unsent, {} datagrams cut off towards kv, {} out of step",
                drops.rx_unreadable,
                drops.rx_queue_full,
                drops.tx_no_buffer,
                drops.tcp_unsent,
                drops.udp_unsent,
                drops.udp_unforwarded,
                drops.udp_out_of_step
            );
            drops_logged = drops;
            drops_logged_at = userlib::rdtsc();
        }
        core::hint::spin_loop();
    }
}
