//! CRLF keep-alives (RFC 5626 §3.5.1 / §4.4.1) towards the registrar or outbound proxy.
//!
//! Every `interval` the user agent sends `"\r\n\r\n"` to the first hop, on the account's
//! transport: over UDP it keeps NAT bindings open; over TCP it also probes the connection,
//! whose pong (`"\r\n"`) the driver's connection task watches. This module only keeps the
//! schedule; it builds no SIP message and owns no socket.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// The keep-alive "ping": a double CRLF.
pub(super) const PING: &[u8] = b"\r\n\r\n";

/// The keep-alive schedule of the account.
#[derive(Debug, Clone)]
pub(super) struct Keepalive {
    interval: Duration,
    dst: SocketAddr,
    next_at: Instant,
}

impl Keepalive {
    /// Pings `dst` every `interval`, the first one `interval` after `now`.
    pub(super) fn new(interval: Duration, dst: SocketAddr, now: Instant) -> Keepalive {
        Keepalive {
            interval,
            dst,
            next_at: now + interval,
        }
    }

    /// Sends the next pings to `dst` (the registrar moved to another target).
    pub(super) fn set_dst(&mut self, dst: SocketAddr) {
        self.dst = dst;
    }

    /// When the next ping is due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        Some(self.next_at)
    }

    /// Where a ping must go now, if one is due; schedules the next one.
    pub(super) fn on_timeout(&mut self, now: Instant) -> Option<SocketAddr> {
        if now < self.next_at {
            return None;
        }
        // After a stall (a suspended laptop) the next ping is an interval from now, not a burst.
        self.next_at = (self.next_at + self.interval).max(now + self.interval / 2);
        Some(self.dst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::timer::epoch;

    #[test]
    fn pings_once_per_interval_and_never_bursts() {
        let t0 = epoch();
        let dst: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let mut k = Keepalive::new(Duration::from_secs(30), dst, t0);
        assert_eq!(k.on_timeout(t0 + Duration::from_secs(29)), None);
        assert_eq!(k.on_timeout(t0 + Duration::from_secs(30)), Some(dst));
        assert_eq!(k.on_timeout(t0 + Duration::from_secs(31)), None);
        assert_eq!(k.deadline(), Some(t0 + Duration::from_secs(60)));
        // Woken up 10 minutes late: one ping, then the next one later, not 20 at once.
        let late = t0 + Duration::from_secs(660);
        assert_eq!(k.on_timeout(late), Some(dst));
        assert_eq!(k.on_timeout(late), None);
        assert!(k.deadline().is_some_and(|d| d > late));
    }
}
