//! A lossy SIP relay on loopback that every SIP datagram of a test must cross, both ways.
//!
//! Each party (kamailio, each switchboard) gets an *alias*: an address of the relay that
//! stands for it. A datagram that reaches the alias of X from the real address of Y is sent
//! on to X's real address *from the alias of Y*, so X believes it talks to Y's alias. The
//! relay rewrites the real addresses written in SIP headers (Via, Contact, Record-Route,
//! Request-URI, From/To, Refer-To...) into aliases, and the receiver's own alias back into its
//! real address, the way a SIP-aware NAT would: so kamailio's stored contacts, Record-Route
//! and every in-dialog request point at aliases and cross the relay too.
//!
//! ```text
//!   alice (real) ─► [alias of kamailio] ─ 30 % lost ─► sent from [alias of alice] ─► kamailio
//!   alice (real) ◄─ sent from [alias of kamailio] ◄─ 30 % lost ─ [alias of alice] ◄─ kamailio
//! ```
//!
//! Bodies (SDP, sipfrag) are left as they are, so media flows directly between the parties.
//! Digest headers (`Authorization`, `WWW-Authenticate`, their proxy forms) are left too: the
//! digest covers the `uri` the client wrote, and the realm must stay the one kamailio chose.
//!
//! Losses come from a seeded xorshift generator, one draw per datagram; dropping the relay
//! stops its thread.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// One party behind the relay.
#[derive(Debug, Clone, Copy)]
pub struct Party {
    /// Where it really listens (and sends from).
    pub real: SocketAddr,
    /// The relay's address that stands for it.
    pub alias: SocketAddr,
}

/// Counters of a SIP relay.
#[derive(Debug, Default)]
pub struct SipRelayStats {
    /// Datagrams received from a party.
    pub seen: AtomicU64,
    /// Datagrams dropped on purpose.
    pub dropped: AtomicU64,
    /// Datagrams forwarded.
    pub forwarded: AtomicU64,
    /// Datagrams whose bytes the relay had seen before: retransmissions.
    pub repeats: AtomicU64,
    /// Datagrams from an address that is no party's (ignored).
    pub strangers: AtomicU64,
}

impl SipRelayStats {
    /// `(seen, dropped, forwarded, repeats)` now.
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            self.seen.load(Ordering::Relaxed),
            self.dropped.load(Ordering::Relaxed),
            self.forwarded.load(Ordering::Relaxed),
            self.repeats.load(Ordering::Relaxed),
        )
    }
}

/// A running SIP relay.
#[derive(Debug)]
pub struct SipRelay {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    /// Its counters.
    pub stats: Arc<SipRelayStats>,
}

impl SipRelay {
    /// Binds every party's alias and relays between them, dropping `loss` (0.3 = 30 %) of
    /// the datagrams in every direction. Aliases and real addresses must be IPv4 addresses
    /// no one of which is a prefix of another (e.g. `.1` with `.31`, not with `.10`), because
    /// headers are rewritten by IP text.
    pub fn start(parties: &[Party], loss: f64, seed: u64) -> SipRelay {
        let sockets: Vec<UdpSocket> = parties
            .iter()
            .map(|p| {
                let s = UdpSocket::bind(p.alias)
                    .unwrap_or_else(|e| panic!("SIP relay: binding {}: {e}", p.alias));
                s.set_nonblocking(true).expect("non-blocking relay socket");
                s
            })
            .collect();
        let parties = parties.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(SipRelayStats::default());
        let (stop2, stats2) = (stop.clone(), stats.clone());
        let thread = thread::Builder::new()
            .name("sip-relay".to_owned())
            .spawn(move || run(&parties, &sockets, loss, seed | 1, &stop2, &stats2))
            .expect("spawning the SIP relay");
        SipRelay {
            stop,
            thread: Some(thread),
            stats,
        }
    }
}

impl Drop for SipRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    parties: &[Party],
    sockets: &[UdpSocket],
    loss: f64,
    mut seed: u64,
    stop: &AtomicBool,
    stats: &SipRelayStats,
) {
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut known: HashSet<Vec<u8>> = HashSet::new();
    let mut buf = [0u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        let mut idle = true;
        for (to, socket) in sockets.iter().enumerate() {
            while let Ok((len, src)) = socket.recv_from(&mut buf) {
                idle = false;
                let Some(from) = parties.iter().position(|p| p.real == src) else {
                    stats.strangers.fetch_add(1, Ordering::Relaxed);
                    continue;
                };
                stats.seen.fetch_add(1, Ordering::Relaxed);
                let datagram = &buf[..len];
                if !known.insert(datagram.to_vec()) {
                    stats.repeats.fetch_add(1, Ordering::Relaxed);
                }
                if (rand() % 10_000) as f64 / 10_000.0 < loss {
                    stats.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                let out = rewrite(datagram, parties, to);
                let _ = sockets[from].send_to(&out, parties[to].real);
                stats.forwarded.fetch_add(1, Ordering::Relaxed);
            }
        }
        if idle {
            thread::sleep(Duration::from_millis(1));
        }
    }
}

/// Headers left as written (digest).
const UNTOUCHED: [&str; 4] = [
    "authorization:",
    "proxy-authorization:",
    "www-authenticate:",
    "proxy-authenticate:",
];

/// The datagram for party `to`: in its header lines (not the body), every party's real IP
/// becomes its alias IP, then `to`'s alias IP becomes its real IP.
fn rewrite(datagram: &[u8], parties: &[Party], to: usize) -> Vec<u8> {
    let Ok(text) = std::str::from_utf8(datagram) else {
        return datagram.to_vec();
    };
    let (head, body) = match text.find("\r\n\r\n") {
        Some(end) => text.split_at(end),
        None => (text, ""),
    };
    let ip = |a: SocketAddr| -> Ipv4Addr {
        match a {
            SocketAddr::V4(v4) => *v4.ip(),
            SocketAddr::V6(_) => panic!("the SIP relay is IPv4 only"),
        }
    };
    let mut out = String::with_capacity(datagram.len() + 64);
    for (i, line) in head.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let lower = line.to_ascii_lowercase();
        if UNTOUCHED.iter().any(|h| lower.starts_with(h)) {
            out.push_str(line);
            continue;
        }
        let mut line = line.to_owned();
        for p in parties {
            line = line.replace(&ip(p.real).to_string(), &ip(p.alias).to_string());
        }
        let me = parties[to];
        line = line.replace(&ip(me.alias).to_string(), &ip(me.real).to_string());
        out.push_str(&line);
    }
    out.push_str(body);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_rewritten_and_the_body_and_digest_are_not() {
        let k = Party {
            real: "127.0.0.1:5060".parse().unwrap(),
            alias: "127.0.0.31:5060".parse().unwrap(),
        };
        let a = Party {
            real: "127.0.0.2:5060".parse().unwrap(),
            alias: "127.0.0.32:5060".parse().unwrap(),
        };
        let msg = "REGISTER sip:127.0.0.31:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:5060\r\n\
                   Authorization: Digest uri=\"sip:127.0.0.31:5060\"\r\n\r\nc=IN IP4 127.0.0.2\r\n";
        let out = String::from_utf8(rewrite(msg.as_bytes(), &[k, a], 0)).unwrap();
        assert_eq!(
            out,
            "REGISTER sip:127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.32:5060\r\n\
             Authorization: Digest uri=\"sip:127.0.0.31:5060\"\r\n\r\nc=IN IP4 127.0.0.2\r\n"
        );
    }
}
