//! The host process's own key-value service: `kv-logic` behind std TCP and
//! UDP sockets on 127.0.0.1. A test fixture for the load generator and the
//! end-to-end checks; its figures are the host's, never the guest's.
//!
//! Invariants: it binds 127.0.0.1 only; one thread per connection, one
//! [`Store`] behind a mutex (answers in each connection's order, exactly as
//! the guest must); at most `max_connections` connections are served at
//! once, a connection beyond that is closed at once without a byte (as a
//! stack out of sockets refuses it).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kv_logic::{MAX_RESPONSE, Session, Store};

/// Keys the fixture's store holds.
pub const HOST_STORE_CAPACITY: usize = 128;

/// A running fixture; stops when dropped.
pub struct HostService {
    pub tcp: SocketAddr,
    pub udp: SocketAddr,
    stop: Arc<AtomicBool>,
}

struct Shared {
    store: Mutex<Store<HOST_STORE_CAPACITY>>,
    open: AtomicUsize,
    max_connections: usize,
    stop: Arc<AtomicBool>,
}

impl HostService {
    /// Starts the service on free ports of 127.0.0.1.
    pub fn start(max_connections: usize) -> std::io::Result<HostService> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let udp = UdpSocket::bind(("127.0.0.1", 0))?;
        udp.set_read_timeout(Some(Duration::from_millis(100)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new()),
            open: AtomicUsize::new(0),
            max_connections,
            stop: stop.clone(),
        });
        let service = HostService { tcp: listener.local_addr()?, udp: udp.local_addr()?, stop: stop.clone() };
        let accepting = shared.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if accepting.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                // Relaxed is enough: the count only bounds, it publishes nothing.
                if accepting.open.fetch_add(1, Ordering::Relaxed) >= accepting.max_connections {
                    accepting.open.fetch_sub(1, Ordering::Relaxed);
                    drop(stream);
                    continue;
                }
                let serving = accepting.clone();
                std::thread::spawn(move || {
                    serve(&serving, stream);
                    serving.open.fetch_sub(1, Ordering::Relaxed);
                });
            }
        });
        std::thread::spawn(move || {
            let mut buffer = [0u8; 2048];
            while !stop.load(Ordering::Acquire) {
                if let Ok((len, from)) = udp.recv_from(&mut buffer) {
                    let _ = udp.send_to(&buffer[..len], from);
                }
            }
        });
        Ok(service)
    }
}

impl Drop for HostService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release); // pairs with the threads' Acquire loads
        let _ = TcpStream::connect(self.tcp); // wakes the accepting thread
    }
}

fn serve(shared: &Shared, mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut session = Session::new();
    let mut input = [0u8; 4096];
    let mut out = [0u8; 8 * MAX_RESPONSE];
    while !shared.stop.load(Ordering::Acquire) {
        let len = match stream.read(&mut input) {
            Ok(0) => return,
            Ok(len) => len,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => continue,
            Err(_) => return,
        };
        let mut rest = &input[..len];
        while !rest.is_empty() {
            let progress = {
                let Ok(mut store) = shared.store.lock() else { return };
                session.feed(&mut store, rest, &mut out)
            };
            if stream.write_all(&out[..progress.written]).is_err() {
                return;
            }
            rest = &rest[progress.consumed..];
        }
    }
}
