//! A UDP NAT router on loopback, for SIP: switchboard sends to the router's inside address
//! (its outbound proxy); the router forwards to the server from an outside socket of its own
//! (the public address and port the server sees), and sends back to switchboard whatever
//! reaches that outside socket while the binding lives.
//!
//! ```text
//!   switchboard ──► inside (ip:5060) ══ binding ══ outside (ip:random) ──► server
//!   switchboard ◄── inside ◄══════════════════════ outside ◄── anyone (full cone)
//! ```
//!
//! A binding lives `timeout` after the last packet through it, either way (like conntrack's
//! UDP timeout); then its socket is closed, what reaches its old port is lost, and the next
//! packet from inside opens a new one on another port. The loop runs at most `timeout` of
//! idle per binding and stops when the router is dropped. Dropping the router stops its thread.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A running NAT router.
#[derive(Debug)]
pub struct UdpNat {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    outside: Arc<Mutex<Option<SocketAddr>>>,
    /// Bindings opened so far (1 while keep-alives hold the first one).
    pub bindings: Arc<AtomicU64>,
}

/// One live binding.
struct Binding {
    socket: UdpSocket,
    client: SocketAddr,
    last: Instant,
}

impl UdpNat {
    /// A router listening at `inside`, forwarding to `server` from `outside_ip`, with UDP
    /// bindings that expire after `timeout` idle.
    pub fn start(
        inside: SocketAddr,
        outside_ip: Ipv4Addr,
        server: SocketAddr,
        timeout: Duration,
    ) -> UdpNat {
        let inner = UdpSocket::bind(inside).unwrap_or_else(|e| panic!("NAT inside {inside}: {e}"));
        inner
            .set_read_timeout(Some(Duration::from_millis(5)))
            .expect("read timeout");
        let stop = Arc::new(AtomicBool::new(false));
        let outside = Arc::new(Mutex::new(None));
        let bindings = Arc::new(AtomicU64::new(0));
        let (stop2, outside2, bindings2) = (stop.clone(), outside.clone(), bindings.clone());
        let thread = thread::spawn(move || {
            let mut buf = vec![0u8; 65_535];
            let mut binding: Option<Binding> = None;
            while !stop2.load(Ordering::Relaxed) {
                if binding.as_ref().is_some_and(|b| b.last.elapsed() > timeout) {
                    binding = None;
                    *outside2.lock().expect("lock") = None;
                }
                if let Ok((len, client)) = inner.recv_from(&mut buf) {
                    if binding.as_ref().is_none_or(|b| b.client != client) {
                        let socket = UdpSocket::bind((outside_ip, 0)).expect("NAT outside socket");
                        socket
                            .set_read_timeout(Some(Duration::from_millis(5)))
                            .expect("read timeout");
                        *outside2.lock().expect("lock") = socket.local_addr().ok();
                        bindings2.fetch_add(1, Ordering::Relaxed);
                        binding = Some(Binding {
                            socket,
                            client,
                            last: Instant::now(),
                        });
                    }
                    if let Some(b) = binding.as_mut() {
                        b.last = Instant::now();
                        let _ = b.socket.send_to(&buf[..len], server);
                    }
                }
                if let Some(b) = binding.as_mut() {
                    if let Ok((len, _)) = b.socket.recv_from(&mut buf) {
                        b.last = Instant::now();
                        let _ = inner.send_to(&buf[..len], b.client);
                    }
                }
            }
        });
        UdpNat {
            stop,
            thread: Some(thread),
            outside,
            bindings,
        }
    }

    /// The public address of the live binding, if any.
    pub fn outside(&self) -> Option<SocketAddr> {
        *self.outside.lock().expect("lock")
    }
}

impl Drop for UdpNat {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
