//! A UDP impairment relay on loopback, for RTP: both ends talk to the relay and believe it
//! is the other end, so neither needs to latch onto a new source.
//!
//! ```text
//!                      relay IP
//!   caller ──► [callee-facing port, advertised by the callee]
//!                 ──[loss, jitter, reorder]──► sent from [caller-facing port] ──► callee
//!   caller ◄── sent from [callee-facing port] ◄────── as is ────── [caller-facing port] ◄── callee
//! ```
//!
//! Each end advertises the relay's IP as its media address with its own RTP port, so the
//! relay listens on the relay IP at both ports. Only the caller → callee direction is
//! impaired; [`Relay::cut`] blocks both directions at once (a network cut). Dropping the
//! relay stops its thread.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How the caller → callee direction is hurt.
#[derive(Debug, Clone, Copy)]
pub struct Impairment {
    /// Fraction of packets dropped (0.05 = 5 %).
    pub loss: f64,
    /// Each packet is delayed uniformly by 0..`jitter`, so packets reorder.
    pub jitter: Duration,
}

/// Counters of a relay.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Packets forwarded to the callee.
    pub forwarded: AtomicU64,
    /// Packets dropped on purpose.
    pub dropped: AtomicU64,
    /// Packets handed back to the caller.
    pub returned: AtomicU64,
    /// The first [`CAPTURED`] packets from the caller, as they crossed the relay.
    pub captured: std::sync::Mutex<Vec<Vec<u8>>>,
    /// Packets (either direction) lost to a cut.
    pub cut: AtomicU64,
}

/// How many caller packets [`RelayStats::captured`] keeps.
pub const CAPTURED: usize = 50;

/// A running relay.
#[derive(Debug)]
pub struct Relay {
    stop: Arc<AtomicBool>,
    blocked: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Its counters.
    pub stats: Arc<RelayStats>,
}

/// The two real ends of a relayed stream.
#[derive(Debug, Clone, Copy)]
pub struct Ends {
    /// The caller's real RTP address.
    pub caller: SocketAddr,
    /// The callee's real RTP address.
    pub callee: SocketAddr,
}

impl Relay {
    /// Relays between `ends` through `relay_ip`, listening there on the callee's RTP port
    /// (for the caller) and on the caller's RTP port (for the callee).
    pub fn start(
        relay_ip: std::net::Ipv4Addr,
        ends: Ends,
        impairment: Impairment,
        seed: u64,
    ) -> Relay {
        let bind = |port: u16| {
            let socket = UdpSocket::bind((relay_ip, port))
                .unwrap_or_else(|e| panic!("relay bind {relay_ip}:{port}: {e}"));
            socket
                .set_read_timeout(Some(Duration::from_millis(1)))
                .expect("relay timeout");
            socket
        };
        let for_caller = bind(ends.callee.port());
        let for_callee = bind(ends.caller.port());
        let stop = Arc::new(AtomicBool::new(false));
        let blocked = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(RelayStats::default());
        let (stop2, blocked2, stats2) = (stop.clone(), blocked.clone(), stats.clone());
        let thread = thread::spawn(move || {
            relay(
                &for_caller,
                &for_callee,
                ends,
                impairment,
                seed,
                &Switches {
                    stop: &stop2,
                    blocked: &blocked2,
                },
                &stats2,
            )
        });
        Relay {
            stop,
            blocked,
            thread: Some(thread),
            stats,
        }
    }
}

impl Relay {
    /// Cuts the network (`true`: every packet either way is lost) or mends it (`false`).
    pub fn cut(&self, on: bool) {
        self.blocked.store(on, Ordering::Relaxed);
    }
}

/// What the test flips while the relay runs.
struct Switches<'a> {
    stop: &'a AtomicBool,
    blocked: &'a AtomicBool,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[allow(clippy::disallowed_methods)] // the relay runs in real time
fn relay(
    for_caller: &UdpSocket,
    for_callee: &UdpSocket,
    ends: Ends,
    imp: Impairment,
    mut seed: u64,
    switches: &Switches<'_>,
    stats: &RelayStats,
) {
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for_callee.set_nonblocking(true).expect("non-blocking");
    let mut queue: Vec<(Instant, Vec<u8>)> = Vec::new();
    let mut buf = [0u8; 2048];
    while !switches.stop.load(Ordering::Relaxed) {
        let blocked = switches.blocked.load(Ordering::Relaxed);
        // Caller → callee: impaired. (This read waits up to 1 ms: the loop's pace.)
        if let Ok((len, src)) = for_caller.recv_from(&mut buf) {
            if src == ends.caller {
                if let Ok(mut captured) = stats.captured.lock() {
                    if captured.len() < CAPTURED {
                        captured.push(buf[..len].to_vec());
                    }
                }
                if blocked {
                    stats.cut.fetch_add(1, Ordering::Relaxed);
                } else if (rand() % 10_000) as f64 / 10_000.0 < imp.loss {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                } else {
                    let max = imp.jitter.as_micros().max(1) as u64;
                    let delay = Duration::from_micros(rand() % max);
                    queue.push((Instant::now() + delay, buf[..len].to_vec()));
                }
            }
        }
        // Callee → caller: as is.
        while let Ok((len, src)) = for_callee.recv_from(&mut buf) {
            if src == ends.callee && blocked {
                stats.cut.fetch_add(1, Ordering::Relaxed);
            } else if src == ends.callee {
                let _ = for_caller.send_to(&buf[..len], ends.caller);
                stats.returned.fetch_add(1, Ordering::Relaxed);
            }
        }
        let now = Instant::now();
        queue.sort_by_key(|(t, _)| *t);
        while queue.first().is_some_and(|(t, _)| *t <= now) {
            let (_, packet) = queue.remove(0);
            let _ = for_callee.send_to(&packet, ends.callee);
            stats.forwarded.fetch_add(1, Ordering::Relaxed);
        }
    }
}
