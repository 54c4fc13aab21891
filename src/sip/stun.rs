//! STUN binding requests (RFC 5389) that learn the public address of an RTP socket behind a
//! NAT, so SDP can offer it: the message codec and one binding transaction, as pure code.
//!
//! This module owns the bytes and the retransmission rules; it owns no socket, does no DNS and
//! never reads the clock (the driver, `src/driver/stun.rs`, sends what [`Binding`] asks and
//! feeds it datagrams and timeouts).
//!
//! ```text
//!   new(now) ──► Sending ──poll_transmit──► request to the server
//!                  │  timeout: resend, wait doubled (500 ms, 1 s, 2 s …), at most MAX_SENDS
//!                  ├─ success response, same transaction id ──► Mapped(public address)
//!                  ├─ error response (e.g. 420, 500)       ──► Failed(code and reason)
//!                  └─ last wait over                        ──► Failed(no answer)
//! ```
//!
//! Only the parts a client binding needs are read: the header, XOR-MAPPED-ADDRESS (and the
//! older MAPPED-ADDRESS), ERROR-CODE. Anything else, and malformed input, is ignored or refused
//! without a panic.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The magic cookie every RFC 5389 message carries (bytes 4..8).
pub const MAGIC_COOKIE: u32 = 0x2112_A442;
/// The default STUN port (RFC 5389 §9) when a `stun:` URI names none.
pub const DEFAULT_PORT: u16 = 3478;
/// The first retransmission timeout (RFC 5389 §7.2.1).
pub const INITIAL_RTO: Duration = Duration::from_millis(500);
/// Requests sent at most (the RFC allows 7; fewer keep start-up short when no server answers).
pub const MAX_SENDS: u32 = 3;

const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const BINDING_ERROR: u16 = 0x0111;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_ERROR_CODE: u16 = 0x0009;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;
const HEADER_LEN: usize = 20;

/// A STUN transaction id (96 random bits, from a CSPRNG).
pub type TransactionId = [u8; 12];

/// A `stun:host[:port]` server as configured: the host (IPv6 without brackets) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StunServer {
    /// Host name or IP literal.
    pub host: String,
    /// UDP port; [`DEFAULT_PORT`] when none is written.
    pub port: u16,
}

impl StunServer {
    /// Parses `stun:host[:port]` (RFC 7064, without the query part); the error says what is
    /// wrong in words.
    pub fn parse(uri: &str) -> Result<StunServer, String> {
        let rest = match uri.trim().split_once(':') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("stun") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("stuns") => {
                return Err("`stuns:` (STUN over TLS) is not supported: use `stun:`".into())
            }
            _ => return Err("must look like `stun:host` or `stun:host:port`".into()),
        };
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6.split_once(']').ok_or("unclosed `[` in the host")?;
                (host, after.strip_prefix(':'))
            }
            None => match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            },
        };
        let valid_name = host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if host.is_empty() || (!valid_name && host.parse::<IpAddr>().is_err()) {
            return Err(format!("`{host}` is not a host name or IP address"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(format!("`{p}` is not a port (1-65535)")),
            },
        };
        Ok(StunServer {
            host: host.to_owned(),
            port,
        })
    }
}

/// A binding request with transaction id `id` (RFC 5389 §6: no attributes).
pub fn binding_request(id: &TransactionId) -> [u8; HEADER_LEN] {
    let mut out = [0u8; HEADER_LEN];
    out[0..2].copy_from_slice(&BINDING_REQUEST.to_be_bytes());
    // Message length 0: no attributes.
    out[4..8].copy_from_slice(&MAGIC_COOKIE.to_be_bytes());
    out[8..20].copy_from_slice(id);
    out
}

/// True when `bytes` look like a STUN message (RFC 7983: first two bits zero, the magic
/// cookie), which tells them apart from RTP and RTCP on a shared socket.
pub fn is_stun(bytes: &[u8]) -> bool {
    bytes.len() >= HEADER_LEN && bytes[0] & 0xC0 == 0 && bytes[4..8] == MAGIC_COOKIE.to_be_bytes()
}

/// What a response to a binding request says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A success response: the address the server saw the request come from.
    Mapped(SocketAddr),
    /// An error response: its code and reason phrase.
    Error(u16, String),
}

/// Reads a response to the request `id`; `None` when `bytes` are not one (another message,
/// another transaction, malformed, or a success without an address).
pub fn parse_response(bytes: &[u8], id: &TransactionId) -> Option<Answer> {
    if !is_stun(bytes) || bytes[8..20] != id[..] {
        return None;
    }
    let kind = u16::from_be_bytes([bytes[0], bytes[1]]);
    let len = usize::from(u16::from_be_bytes([bytes[2], bytes[3]]));
    let body = bytes.get(HEADER_LEN..HEADER_LEN + len)?;
    let mut mapped = None;
    let mut xor_mapped = None;
    let mut error = None;
    let mut at = 0;
    while at + 4 <= body.len() {
        let attr = u16::from_be_bytes([body[at], body[at + 1]]);
        let attr_len = usize::from(u16::from_be_bytes([body[at + 2], body[at + 3]]));
        let value = body.get(at + 4..at + 4 + attr_len)?;
        match attr {
            ATTR_XOR_MAPPED_ADDRESS => xor_mapped = address(value, Some(&bytes[4..20])),
            ATTR_MAPPED_ADDRESS => mapped = address(value, None),
            ATTR_ERROR_CODE if value.len() >= 4 => {
                let code = u16::from(value[2] & 0x07) * 100 + u16::from(value[3]);
                error = Some((code, String::from_utf8_lossy(&value[4..]).into_owned()));
            }
            _ => {}
        }
        // Attributes are padded to four bytes.
        at += 4 + attr_len.div_ceil(4) * 4;
    }
    match kind {
        BINDING_SUCCESS => xor_mapped.or(mapped).map(Answer::Mapped),
        BINDING_ERROR => Some(match error {
            Some((code, reason)) => Answer::Error(code, reason),
            None => Answer::Error(0, "error response without ERROR-CODE".into()),
        }),
        _ => None,
    }
}

/// A (XOR-)MAPPED-ADDRESS value; `xor` is the cookie and transaction id to undo the XOR with.
fn address(value: &[u8], xor: Option<&[u8]>) -> Option<SocketAddr> {
    let family = *value.get(1)?;
    let mask = |i: usize| xor.map_or(0, |x| x[i]);
    let port = u16::from_be_bytes([value.get(2)? ^ mask(0), value.get(3)? ^ mask(1)]);
    let ip = match family {
        0x01 => {
            let b = value.get(4..8)?;
            IpAddr::V4(Ipv4Addr::new(
                b[0] ^ mask(0),
                b[1] ^ mask(1),
                b[2] ^ mask(2),
                b[3] ^ mask(3),
            ))
        }
        0x02 => {
            let b = value.get(4..20)?;
            let mut octets = [0u8; 16];
            for (i, o) in octets.iter_mut().enumerate() {
                *o = b[i] ^ mask(i);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Where a [`Binding`] stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The public address of the socket.
    Mapped(SocketAddr),
    /// No public address: why, in words.
    Failed(String),
}

/// One binding transaction over UDP (RFC 5389 §7.2.1): the request is resent after 500 ms,
/// then after each doubled wait, [`MAX_SENDS`] times at most; an answer from the server ends
/// it, and so does the last wait running out.
#[derive(Debug)]
pub struct Binding {
    server: SocketAddr,
    id: TransactionId,
    sent: u32,
    send_now: bool,
    deadline: Instant,
    rto: Duration,
    outcome: Option<Outcome>,
}

impl Binding {
    /// A transaction asking `server`, started at `now` (its first request is due at once).
    pub fn new(now: Instant, server: SocketAddr, id: TransactionId) -> Binding {
        Binding {
            server,
            id,
            sent: 0,
            send_now: true,
            deadline: now,
            rto: INITIAL_RTO,
            outcome: None,
        }
    }

    /// The request to send now, and where; `None` when nothing is due.
    pub fn poll_transmit(&mut self, now: Instant) -> Option<(SocketAddr, [u8; HEADER_LEN])> {
        if !self.send_now || self.outcome.is_some() {
            return None;
        }
        self.send_now = false;
        self.sent += 1;
        self.deadline = now + self.rto;
        self.rto *= 2;
        Some((self.server, binding_request(&self.id)))
    }

    /// When [`Binding::handle_timeout`] is next due; `None` once finished.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.outcome.is_none().then_some(self.deadline)
    }

    /// Time passed: a request is resent, or the transaction gives up.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.outcome.is_some() || now < self.deadline || self.send_now {
            return;
        }
        if self.sent >= MAX_SENDS {
            self.outcome = Some(Outcome::Failed(format!(
                "no answer from the STUN server {} after {} requests",
                self.server, self.sent
            )));
        } else {
            self.send_now = true;
        }
    }

    /// A datagram arrived on the socket: when it is the server's answer to this request,
    /// the transaction ends. Anything else is ignored.
    pub fn handle_datagram(&mut self, src: SocketAddr, bytes: &[u8]) {
        if self.outcome.is_some() || src != self.server {
            return;
        }
        self.outcome = match parse_response(bytes, &self.id) {
            Some(Answer::Mapped(addr)) => Some(Outcome::Mapped(addr)),
            Some(Answer::Error(code, reason)) => Some(Outcome::Failed(format!(
                "the STUN server {} answered {code} {reason}",
                self.server
            ))),
            None => None,
        };
    }

    /// How it ended; `None` while it runs.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }
}

impl super::UserAgent {
    /// STUN learnt line `line`'s RTP socket anew at `public` (the driver asks again before a
    /// call when the last answer may be stale): offers and answers made from now on carry that
    /// address and port; calls already set up keep theirs.
    pub fn set_public_rtp(&mut self, line: usize, public: SocketAddr) {
        if let Some(port) = self.cfg.rtp_ports.get_mut(line) {
            *port = public.port();
        }
        self.cfg.media_ip = public.ip();
    }

    /// STUN learnt line `line`'s RTCP socket at `public` (at start, or anew before a call):
    /// SDP's `a=rtcp` names it from now on (RFC 3605) instead of the RTP port + 1.
    pub fn set_public_rtcp(&mut self, line: usize, public: SocketAddr) {
        if let Some(slot) = self.public_rtcp.get_mut(line) {
            *slot = Some(public);
        }
    }

    /// Where line `line` receives RTCP, as SDP says it: the STUN-mapped address of its RTCP
    /// socket, else the media address and the RTP port + 1.
    pub(super) fn rtcp_of_line(&self, line: usize) -> SocketAddr {
        self.public_rtcp
            .get(line)
            .copied()
            .flatten()
            .unwrap_or_else(|| {
                let rtp = self.cfg.rtp_ports.get(line).copied().unwrap_or_default();
                SocketAddr::new(self.media_ip_of_line(line), rtp.wrapping_add(1))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::timer::epoch;

    const ID: TransactionId = [
        0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae,
    ];

    /// RFC 5769 §2.2's IPv4 response (its XOR-MAPPED-ADDRESS), without the SOFTWARE,
    /// MESSAGE-INTEGRITY and FINGERPRINT attributes, which we do not read.
    fn rfc5769_response() -> Vec<u8> {
        let mut m = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&ID);
        m.extend_from_slice(&[0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47]);
        m.extend_from_slice(&[0xe1, 0x12, 0xa6, 0x43]);
        m
    }

    fn server() -> SocketAddr {
        "127.0.0.1:3478".parse().unwrap()
    }

    #[test]
    fn the_request_is_a_bare_binding_with_the_cookie() {
        let req = binding_request(&ID);
        assert_eq!(&req[..8], &[0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42]);
        assert_eq!(&req[8..], &ID);
        assert!(is_stun(&req));
        // RTP (version 2) is not STUN.
        let mut rtp = req;
        rtp[0] = 0x80;
        assert!(!is_stun(&rtp));
    }

    #[test]
    fn rfc5769_ipv4_response_gives_the_mapped_address() {
        assert_eq!(
            parse_response(&rfc5769_response(), &ID),
            Some(Answer::Mapped("192.0.2.1:32853".parse().unwrap()))
        );
        // Another transaction's response is not ours.
        let mut other = ID;
        other[0] ^= 1;
        assert_eq!(parse_response(&rfc5769_response(), &other), None);
    }

    #[test]
    fn rfc5769_ipv6_response_gives_the_mapped_address() {
        let mut m = vec![0x01, 0x01, 0x00, 0x18, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&ID);
        m.extend_from_slice(&[0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47]);
        m.extend_from_slice(&[
            0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2,
            0xb9, 0xd9,
        ]);
        assert_eq!(
            parse_response(&m, &ID),
            Some(Answer::Mapped(
                "[2001:db8:1234:5678:11:2233:4455:6677]:32853"
                    .parse()
                    .unwrap()
            ))
        );
    }

    #[test]
    fn plain_mapped_address_and_error_codes_are_read() {
        let mut m = vec![0x01, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        m.extend_from_slice(&ID);
        m.extend_from_slice(&[0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x13, 0x88, 10, 0, 0, 7]);
        assert_eq!(
            parse_response(&m, &ID),
            Some(Answer::Mapped("10.0.0.7:5000".parse().unwrap()))
        );
        // ERROR-CODE 420 "Unknown Attr" (12 bytes of reason: no padding).
        let mut e = vec![0x01, 0x11, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42];
        e.extend_from_slice(&ID);
        e.extend_from_slice(&[0x00, 0x09, 0x00, 0x10, 0, 0, 4, 20]);
        e.extend_from_slice(b"Unknown Attr");
        assert_eq!(
            parse_response(&e, &ID),
            Some(Answer::Error(420, "Unknown Attr".into()))
        );
    }

    #[test]
    fn malformed_responses_are_refused_without_panic() {
        let good = rfc5769_response();
        for cut in 0..good.len() {
            assert_eq!(parse_response(&good[..cut], &ID), None, "cut at {cut}");
        }
        // Lengths that point past the end, odd families, a success without address.
        let mut long_attr = good.clone();
        long_attr[23] = 0xff;
        assert_eq!(parse_response(&long_attr, &ID), None);
        let mut family = good.clone();
        family[25] = 0x07;
        assert_eq!(parse_response(&family, &ID), None);
        let mut seed = 7u32;
        for _ in 0..2000 {
            let mut m = good.clone();
            seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let at = (seed as usize >> 8) % m.len();
            m[at] = (seed >> 16) as u8;
            let _ = parse_response(&m, &ID);
        }
    }

    #[test]
    fn server_uris_parse_with_their_mistakes_named() {
        assert_eq!(
            StunServer::parse("stun:stun.example.com"),
            Ok(StunServer {
                host: "stun.example.com".into(),
                port: 3478
            })
        );
        assert_eq!(
            StunServer::parse("STUN:[::1]:3479"),
            Ok(StunServer {
                host: "::1".into(),
                port: 3479
            })
        );
        assert_eq!(
            StunServer::parse("stun:127.0.0.1:19302").map(|s| s.port),
            Ok(19302)
        );
        for bad in [
            "stun.example.com",
            "stun:",
            "stun:host:0",
            "stun:host:port",
            "stun:a b",
            "stuns:x",
            "turn:x",
            "stun:[::1",
        ] {
            assert!(StunServer::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn retransmits_double_from_500_ms_then_give_up() {
        let t0 = epoch();
        let mut b = Binding::new(t0, server(), ID);
        let mut sends = Vec::new();
        let mut now = t0;
        for _ in 0..20 {
            while b.poll_transmit(now).is_some() {
                sends.push(now - t0);
            }
            match b.poll_timeout() {
                Some(deadline) => {
                    now = deadline;
                    b.handle_timeout(now);
                }
                None => break,
            }
        }
        assert_eq!(
            sends,
            [0, 500, 1500].map(Duration::from_millis),
            "500 ms, then doubled"
        );
        assert_eq!(now - t0, Duration::from_millis(3500));
        assert!(matches!(b.outcome(), Some(Outcome::Failed(why)) if why.contains("no answer")));
        assert_eq!(b.poll_transmit(now), None);
    }

    #[test]
    fn the_servers_answer_ends_it_and_strangers_are_ignored() {
        let t0 = epoch();
        let mut b = Binding::new(t0, server(), ID);
        assert!(b.poll_transmit(t0).is_some());
        // Not from the server, or not STUN: ignored.
        b.handle_datagram("127.0.0.9:3478".parse().unwrap(), &rfc5769_response());
        b.handle_datagram(server(), &[0x80; 40]);
        assert_eq!(b.outcome(), None);
        // An early timeout does nothing.
        b.handle_timeout(t0 + Duration::from_millis(499));
        assert_eq!(b.poll_transmit(t0 + Duration::from_millis(499)), None);
        b.handle_datagram(server(), &rfc5769_response());
        assert_eq!(
            b.outcome(),
            Some(&Outcome::Mapped("192.0.2.1:32853".parse().unwrap()))
        );
        assert_eq!(b.poll_timeout(), None);
    }

    #[test]
    fn an_error_response_fails_at_once() {
        let t0 = epoch();
        let mut b = Binding::new(t0, server(), ID);
        let _ = b.poll_transmit(t0);
        let mut e = vec![0x01, 0x11, 0x00, 0x08, 0x21, 0x12, 0xa4, 0x42];
        e.extend_from_slice(&ID);
        e.extend_from_slice(&[0x00, 0x09, 0x00, 0x04, 0, 0, 5, 0]);
        b.handle_datagram(server(), &e);
        assert!(matches!(b.outcome(), Some(Outcome::Failed(why)) if why.contains("500")));
    }
}
