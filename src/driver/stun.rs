//! Learning the public address of every line's RTP and RTCP sockets from a STUN server at
//! start, before the media engine takes the sockets over, and again before a call when the
//! last answer may be stale ([`Refresher`]): the socket side of
//! [`crate::sip::stun::Binding`], which holds the rules.
//!
//! Each socket runs its own binding transaction at the same time as the others, so start-up
//! waits at most one transaction's bounded retransmissions (3.5 s) when the server is silent.
//! This module only sends, receives and reads the clock; what the answers mean for SDP is
//! [`apply`]'s business.
//!
//! A router forgets an idle mapping (often after 30 s to a few minutes) and may give the socket
//! another public port when it next sends: so before a call starts with no other call up, if
//! the last answer is older than [`STALE_AFTER`], every line's RTP and RTCP socket asks again, and the
//! call waits for the answers at most [`REFRESH_WAIT`] (then SDP carries the last known
//! address). The media thread is asleep then (no call), so the answers wait unread on the
//! sockets for the driver's duplicates of them. Nothing runs while idle: no timer, no wake-up.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use rand::RngCore;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, Instant};

use super::now;

use crate::front::Event;
use crate::media::api::LineSockets;
use crate::sip::stun::{Binding, Outcome, TransactionId};

/// The public address of one line's sockets, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineMapping {
    /// The RTP socket's public address.
    pub rtp: Result<SocketAddr, String>,
    /// The RTCP socket's public address.
    pub rtcp: Result<SocketAddr, String>,
}

/// Asks `server` for the public address of every socket in `sockets`; gives the sockets back
/// (still non-blocking, in order) with one [`LineMapping`] per line.
pub async fn learn(
    server: SocketAddr,
    sockets: Vec<LineSockets>,
) -> (Vec<LineSockets>, Vec<LineMapping>) {
    let mut tasks = JoinSet::new();
    let lines = sockets.len();
    for (line, pair) in sockets.into_iter().enumerate() {
        for (k, socket) in [pair.rtp, pair.rtcp].into_iter().enumerate() {
            tasks.spawn(async move {
                let (socket, outcome) = bind_one(server, socket).await;
                (2 * line + k, socket, outcome)
            });
        }
    }
    let mut slots: Vec<Option<(std::net::UdpSocket, Result<SocketAddr, String>)>> =
        (0..2 * lines).map(|_| None).collect();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok((index, socket, outcome)) => slots[index] = Some((socket, outcome)),
            // A task only ends without an answer if it panicked: its socket is lost.
            Err(e) => tracing::error!(error = %e, "STUN task failed"),
        }
    }
    let mut out_sockets = Vec::with_capacity(lines);
    let mut mappings = Vec::with_capacity(lines);
    let mut slots = slots.into_iter();
    while let (Some(Some((rtp, rtp_out))), Some(Some((rtcp, rtcp_out)))) =
        (slots.next(), slots.next())
    {
        out_sockets.push(LineSockets { rtp, rtcp });
        mappings.push(LineMapping {
            rtp: rtp_out,
            rtcp: rtcp_out,
        });
    }
    (out_sockets, mappings)
}

/// One socket's binding transaction, to its end.
async fn bind_one(
    server: SocketAddr,
    socket: std::net::UdpSocket,
) -> (std::net::UdpSocket, Result<SocketAddr, String>) {
    let keep = match socket.try_clone() {
        Ok(keep) => keep,
        Err(e) => return (socket, Err(format!("cannot use the socket: {e}"))),
    };
    let outcome = match socket
        .set_nonblocking(true)
        .and_then(|()| UdpSocket::from_std(socket))
    {
        Ok(socket) => run(server, &socket).await,
        Err(e) => Err(format!("cannot use the socket: {e}")),
    };
    // The tokio socket is dropped (deregistered) above; its twin keeps the port.
    (keep, outcome)
}

/// Drives one [`Binding`] on `socket`.
async fn run(server: SocketAddr, socket: &UdpSocket) -> Result<SocketAddr, String> {
    let mut id: TransactionId = [0; 12];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let mut binding = Binding::new(now(), server, id);
    let mut buf = [0u8; 1500];
    loop {
        while let Some((to, request)) = binding.poll_transmit(now()) {
            if let Err(e) = socket.send_to(&request, to).await {
                tracing::debug!(error = %e, "STUN request not sent");
            }
        }
        match binding.outcome() {
            Some(Outcome::Mapped(addr)) => return Ok(*addr),
            Some(Outcome::Failed(why)) => return Err(why.clone()),
            None => {}
        }
        let Some(deadline) = binding.poll_timeout() else {
            return Err("the STUN transaction stopped".into());
        };
        tokio::select! {
            received = socket.recv_from(&mut buf) => {
                if let Ok((len, src)) = received {
                    binding.handle_datagram(src, &buf[..len]);
                }
            }
            () = sleep_until(Instant::from_std(deadline)) => {
                binding.handle_timeout(now());
            }
        }
    }
}

/// How old the last STUN answer may be before a new call asks again: below common routers'
/// UDP timeouts (30 s and more), so a mapping the router may have forgotten is not offered.
pub const STALE_AFTER: Duration = Duration::from_secs(20);
/// A test-only environment variable that shortens [`STALE_AFTER`] (milliseconds): the NAT
/// lab's router forgets mappings after 3 s, and a test waits seconds, not minutes. Not a
/// configuration key: operators have no reason to change the bound.
pub const STALE_AFTER_VAR: &str = "SWITCHBOARD_TEST_STUN_STALE_MS";

/// [`STALE_AFTER`], or what [`STALE_AFTER_VAR`] asks for.
fn stale_after() -> Duration {
    let Ok(value) = std::env::var(STALE_AFTER_VAR) else {
        return STALE_AFTER;
    };
    match value.trim().parse() {
        Ok(ms) => {
            tracing::warn!(
                ms,
                "STUN answers count as stale after {ms} ms (test setting)"
            );
            Duration::from_millis(ms)
        }
        Err(_) => {
            tracing::warn!(%value, "ignoring {STALE_AFTER_VAR}: not a number of milliseconds");
            STALE_AFTER
        }
    }
}
/// How long a new call waits for fresh STUN answers before using the last known ones.
pub const REFRESH_WAIT: Duration = Duration::from_millis(500);

/// One of a line's two media sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Socket {
    /// The RTP socket.
    Rtp,
    /// The RTCP socket (the RTP port + 1 locally).
    Rtcp,
}

/// Learns the lines' public RTP and RTCP addresses again when they may be stale (see the
/// module docs).
pub struct Refresher {
    server: SocketAddr,
    /// A duplicate of each line's RTP and RTCP socket (the media engine has the originals).
    sockets: Vec<(usize, Socket, std::net::UdpSocket)>,
    /// The last address learnt per entry of `sockets`.
    mapped: Vec<Option<SocketAddr>>,
    /// When STUN was last asked.
    asked: std::time::Instant,
    /// How old an answer may be ([`STALE_AFTER`] unless a test says otherwise).
    stale_after: Duration,
}

impl Refresher {
    /// A refresher for `sockets` (duplicated here), asked at `asked` with `mappings` as the
    /// answers. `None` when a socket cannot be duplicated.
    pub fn new(
        server: SocketAddr,
        sockets: &[LineSockets],
        mappings: &[LineMapping],
        asked: std::time::Instant,
    ) -> Option<Refresher> {
        let duplicates = sockets
            .iter()
            .enumerate()
            .flat_map(|(line, s)| {
                [
                    s.rtp.try_clone().map(|d| (line, Socket::Rtp, d)),
                    s.rtcp.try_clone().map(|d| (line, Socket::Rtcp, d)),
                ]
            })
            .collect::<std::io::Result<Vec<_>>>();
        match duplicates {
            Ok(sockets) => Some(Refresher {
                server,
                sockets,
                mapped: mappings
                    .iter()
                    .flat_map(|m| [m.rtp.clone().ok(), m.rtcp.clone().ok()])
                    .collect(),
                asked,
                stale_after: stale_after(),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "STUN: the media sockets cannot be shared; addresses are learnt at start only");
                None
            }
        }
    }

    /// Whether the last answers are older than [`STALE_AFTER`] at `now`.
    pub fn stale(&self, now: std::time::Instant) -> bool {
        now.saturating_duration_since(self.asked) >= self.stale_after
    }

    /// Asks again for every line's sockets (all at once), waiting at most [`REFRESH_WAIT`];
    /// returns the sockets whose public address changed, with the new address, by line (RTP
    /// first). A socket without an answer keeps its last known address. Call it only while
    /// no call is up (the media thread would read the answers otherwise).
    pub async fn refresh(&mut self) -> Vec<(usize, Socket, SocketAddr)> {
        self.asked = now();
        tracing::debug!(
            lines = self.sockets.len(),
            "STUN: asking again before a call"
        );
        let mut tasks = JoinSet::new();
        for (index, (line, kind, socket)) in self.sockets.iter().enumerate() {
            let (line, kind) = (*line, *kind);
            // Non-blocking, as the media engine keeps it (the flag is shared by duplicates).
            let duplicate = socket
                .try_clone()
                .and_then(|s| s.set_nonblocking(true).map(|()| s));
            let socket = match duplicate.and_then(UdpSocket::from_std) {
                Ok(socket) => socket,
                Err(e) => {
                    tracing::debug!(line, ?kind, error = %e, "STUN refresh: socket unusable");
                    continue;
                }
            };
            let server = self.server;
            tasks.spawn(async move {
                let answer = tokio::time::timeout(REFRESH_WAIT, run(server, &socket)).await;
                (index, answer)
            });
        }
        let mut changed = Vec::new();
        while let Some(done) = tasks.join_next().await {
            let Ok((index, answer)) = done else { continue };
            let (Some((line, kind, _)), Some(slot)) =
                (self.sockets.get(index), self.mapped.get_mut(index))
            else {
                continue;
            };
            let (line, kind) = (*line, *kind);
            match answer {
                Ok(Ok(public)) => {
                    if *slot != Some(public) {
                        tracing::info!(line = line + 1, ?kind, %public, old = ?slot, "STUN: the public address changed");
                        *slot = Some(public);
                        changed.push((line, kind, public));
                    }
                }
                Ok(Err(why)) => {
                    tracing::warn!(line = line + 1, ?kind, error = %why, "STUN refresh failed; SDP keeps the last known address");
                }
                Err(_) => {
                    tracing::warn!(
                        line = line + 1,
                        ?kind,
                        "no STUN answer within {REFRESH_WAIT:?}; SDP keeps the last known address"
                    );
                }
            }
        }
        changed.sort_unstable();
        tracing::debug!(took = ?now().saturating_duration_since(self.asked), "STUN: asked again");
        changed
    }
}

/// Before something that may start a call (`starts_call`: a dial command, an incoming INVITE)
/// with no call up: learns the public RTP and RTCP addresses again if they are stale and gives them to
/// the core. Returns the events that tell the operator about a changed address.
pub async fn before_call(
    refresher: Option<&mut Refresher>,
    ua: &mut crate::sip::UserAgent,
    starts_call: bool,
) -> Vec<Event> {
    let Some(refresher) = refresher else {
        return Vec::new();
    };
    if !starts_call || !refresher.stale(now()) || ua.census().calls > 0 {
        return Vec::new();
    }
    let mut events = Vec::new();
    for (line, kind, public) in refresher.refresh().await {
        let what = match kind {
            Socket::Rtp => {
                ua.set_public_rtp(line, public);
                "RTP"
            }
            Socket::Rtcp => {
                ua.set_public_rtcp(line, public);
                "RTCP"
            }
        };
        events.push(Event::Network {
            message: format!(
                "line {}: {what} is reached at {public} (STUN, renewed)",
                line + 1
            ),
        });
    }
    events
}

/// Whether `bytes` is an INVITE (a new call coming in, when no call is up).
pub fn is_invite(bytes: &[u8]) -> bool {
    bytes.starts_with(b"INVITE ")
}

/// Whether `command` may start a call (and so make an offer).
pub fn starts_call(command: &crate::sip::Command) -> bool {
    use crate::sip::Command as C;
    matches!(
        command,
        C::Dial(_) | C::DialVia { .. } | C::Pickup(_) | C::Favourite(_) | C::Unpark(_)
    )
}

/// Puts what STUN learnt into what SDP offers (the core's `media_ip` and `rtp_ports`): each
/// line's public RTP port, and the public address of the first line that has one. Returns the
/// events that tell the operator what happened (a line without an answer keeps its local
/// address).
pub fn apply(media_ip: &mut IpAddr, rtp_ports: &mut [u16], mappings: &[LineMapping]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut public_ip = None;
    for (line, mapping) in mappings.iter().enumerate() {
        match &mapping.rtp {
            Ok(addr) => {
                let ip = *public_ip.get_or_insert(addr.ip());
                if ip != addr.ip() {
                    tracing::warn!(line, %addr, %ip, "STUN maps lines to different addresses; SDP uses the first");
                }
                if let Some(port) = rtp_ports.get_mut(line) {
                    *port = addr.port();
                }
                let rtcp = match &mapping.rtcp {
                    Ok(rtcp)
                        if *rtcp == SocketAddr::new(addr.ip(), addr.port().wrapping_add(1)) =>
                    {
                        String::new()
                    }
                    Ok(rtcp) => format!("; RTCP at {rtcp} (SDP a=rtcp)"),
                    Err(why) => format!("; RTCP: {why}"),
                };
                tracing::info!(line = line + 1, public = %addr, rtcp = ?mapping.rtcp, "STUN: public RTP address");
                events.push(Event::Network {
                    message: format!("line {}: RTP is reached at {addr} (STUN){rtcp}", line + 1),
                });
            }
            Err(why) => {
                tracing::warn!(line = line + 1, error = %why, "STUN failed: SDP keeps the local address");
                events.push(Event::Network {
                    message: format!(
                        "line {}: {why}; SDP offers the local address {}:{}",
                        line + 1,
                        media_ip,
                        rtp_ports.get(line).copied().unwrap_or_default()
                    ),
                });
            }
        }
    }
    if let Some(ip) = public_ip {
        *media_ip = ip;
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::driver::setup::bind_rtp;

    /// A STUN server on loopback answers with the address it sees: the sockets' own, since
    /// there is no NAT between them (the NAT lab, `tests/nat_namespaces.rs`, has one).
    #[tokio::test]
    async fn every_socket_learns_its_address_from_a_stun_server() {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let server_addr = server.local_addr().expect("addr");
        let responder = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            for _ in 0..4 {
                let (_, src) = server.recv_from(&mut buf).expect("recv");
                let mut resp = vec![0x01, 0x01, 0x00, 0x0c];
                resp.extend_from_slice(&buf[4..20]);
                resp.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
                let cookie = crate::sip::stun::MAGIC_COOKIE.to_be_bytes();
                let port = src.port() ^ 0x2112;
                resp.extend_from_slice(&port.to_be_bytes());
                let std::net::IpAddr::V4(ip) = src.ip() else {
                    panic!("v4")
                };
                for (o, c) in ip.octets().iter().zip(cookie) {
                    resp.push(o ^ c);
                }
                server.send_to(&resp, src).expect("send");
            }
        });
        let sockets = bind_rtp("127.0.0.1".parse().unwrap(), 43100, 43199, 2).expect("rtp");
        let locals: Vec<SocketAddr> = sockets
            .iter()
            .flat_map(|s| [s.rtp.local_addr().unwrap(), s.rtcp.local_addr().unwrap()])
            .collect();
        let (sockets, mappings) = learn(server_addr, sockets).await;
        responder.join().expect("responder");
        assert_eq!(sockets.len(), 2);
        let learnt: Vec<SocketAddr> = mappings
            .iter()
            .flat_map(|m| [m.rtp.clone().unwrap(), m.rtcp.clone().unwrap()])
            .collect();
        assert_eq!(learnt, locals);
        // The sockets come back in order, still bound to their ports.
        assert_eq!(sockets[1].rtcp.local_addr().unwrap(), locals[3]);
    }

    /// A STUN server on loopback that answers every request with `mapped` as the address.
    fn answering(mapped: SocketAddr) -> (SocketAddr, std::thread::JoinHandle<usize>) {
        let server = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        server
            .set_read_timeout(Some(std::time::Duration::from_secs(2)))
            .expect("timeout");
        let addr = server.local_addr().expect("addr");
        let responder = std::thread::spawn(move || {
            let mut buf = [0u8; 1500];
            let mut answered = 0;
            while let Ok((_, src)) = server.recv_from(&mut buf) {
                let mut resp = vec![0x01, 0x01, 0x00, 0x0c];
                resp.extend_from_slice(&buf[4..20]);
                resp.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01]);
                let cookie = crate::sip::stun::MAGIC_COOKIE.to_be_bytes();
                resp.extend_from_slice(&(mapped.port() ^ 0x2112).to_be_bytes());
                let std::net::IpAddr::V4(ip) = mapped.ip() else {
                    panic!("v4")
                };
                for (o, c) in ip.octets().iter().zip(cookie) {
                    resp.push(o ^ c);
                }
                server.send_to(&resp, src).expect("send");
                answered += 1;
            }
            answered
        });
        (addr, responder)
    }

    #[tokio::test]
    async fn a_stale_mapping_is_asked_again_and_a_fresh_one_is_not() {
        let public: SocketAddr = "203.0.113.9:47000".parse().unwrap();
        let (server, responder) = answering(public);
        let sockets = bind_rtp("127.0.0.1".parse().unwrap(), 43300, 43399, 1).expect("rtp");
        let old: SocketAddr = "203.0.113.9:40000".parse().unwrap();
        let mappings = [LineMapping {
            rtp: Ok(old),
            rtcp: Err("unused".into()),
        }];
        let t0 = now();
        let mut refresher = Refresher::new(server, &sockets, &mappings, t0).expect("refresher");
        assert!(!refresher.stale(t0 + STALE_AFTER / 2));
        assert!(refresher.stale(t0 + STALE_AFTER));
        // The new mappings are learnt through duplicates of the line's sockets (this server
        // maps both to one address), RTP first.
        assert_eq!(
            refresher.refresh().await,
            vec![(0, Socket::Rtp, public), (0, Socket::Rtcp, public)]
        );
        // Asked again with the same answer: nothing changed, nothing to tell.
        assert_eq!(refresher.refresh().await, Vec::new());
        assert!(!refresher.stale(now()));
        // The media engine's socket is still usable and bound where it was.
        assert!(sockets[0].rtp.local_addr().is_ok());
        assert!(sockets[0].rtcp.local_addr().is_ok());
        assert_eq!(responder.join().expect("responder"), 4);
    }

    #[tokio::test]
    async fn a_silent_server_ends_the_refresh_and_keeps_the_last_address() {
        // A bound socket that never answers.
        let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
        let sockets = bind_rtp("127.0.0.1".parse().unwrap(), 43400, 43499, 1).expect("rtp");
        let mappings = [LineMapping {
            rtp: Ok("203.0.113.9:40000".parse().unwrap()),
            rtcp: Err("unused".into()),
        }];
        let mut refresher = Refresher::new(
            silent.local_addr().expect("addr"),
            &sockets,
            &mappings,
            now(),
        )
        .expect("refresher");
        // The wait is bounded (REFRESH_WAIT): the refresh ends, and keeps the last address.
        assert_eq!(refresher.refresh().await, Vec::new());
        assert_eq!(
            refresher.mapped,
            vec![Some("203.0.113.9:40000".parse().unwrap()), None]
        );
    }

    #[test]
    fn only_dials_and_invites_start_calls() {
        use crate::sip::Command as C;
        assert!(starts_call(&C::Dial("201".into())));
        assert!(starts_call(&C::Pickup("201".into())));
        assert!(!starts_call(&C::Hangup(None)));
        assert!(!starts_call(&C::Answer(None)));
        assert!(is_invite(b"INVITE sip:a@b SIP/2.0\r\n"));
        assert!(!is_invite(b"SIP/2.0 200 OK\r\n"));
        assert!(!is_invite(b"OPTIONS sip:a@b SIP/2.0\r\n"));
    }

    #[test]
    fn apply_puts_public_ports_in_sdp_and_warns_for_the_rest() {
        let mut media_ip: IpAddr = "192.168.1.20".parse().unwrap();
        let mut rtp_ports = [40000, 40002, 40004];
        let mappings = [
            LineMapping {
                rtp: Ok("203.0.113.5:61000".parse().unwrap()),
                rtcp: Ok("203.0.113.5:61001".parse().unwrap()),
            },
            LineMapping {
                rtp: Err("no answer from the STUN server".into()),
                rtcp: Err("no answer".into()),
            },
            LineMapping {
                rtp: Ok("203.0.113.5:62000".parse().unwrap()),
                rtcp: Ok("203.0.113.5:45001".parse().unwrap()),
            },
        ];
        let events = apply(&mut media_ip, &mut rtp_ports, &mappings);
        assert_eq!(media_ip.to_string(), "203.0.113.5");
        assert_eq!(rtp_ports, [61000, 40002, 62000]);
        let messages: Vec<&str> = events
            .iter()
            .map(|e| match e {
                Event::Network { message } => message.as_str(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            messages[0],
            "line 1: RTP is reached at 203.0.113.5:61000 (STUN)"
        );
        assert!(messages[1].contains("no answer"), "{}", messages[1]);
        assert_eq!(
            messages[2],
            "line 3: RTP is reached at 203.0.113.5:62000 (STUN); RTCP at 203.0.113.5:45001 (SDP a=rtcp)"
        );
    }
}
