//! NAT contact rewrite: learning our public address from each registrar's answer.
//!
//! Behind a NAT router the registrar sees our REGISTER come from the router's public address
//! and port, and says so in the top Via of its response (`received`, and `rport` per RFC
//! 3581). When that differs from the address in our Contact, the Contact we registered is
//! unreachable from outside: with `nat` on (the account's `nat = "auto"`, over UDP) the
//! public address replaces ours in Contact, Via and (when SDP carried the same address) the
//! media address, and REGISTER is sent again at once, removing the old Contact with
//! `expires=0`. The CRLF keep-alives then hold the router's binding open.
//!
//! ```text
//!   2xx to REGISTER ── Via received/rport == Contact ──► nothing to do
//!                   └─ differs (nat on, UDP) ──► local := public; REGISTER <public>,
//!                                                <old>;expires=0
//! ```
//!
//! Pure protocol logic: no socket, no STUN.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::msg::Message;
use super::{Transport, UserAgent};

/// The address the sender of `resp`'s request was seen at: the top Via's `received` (else
/// its sent-by host) and `rport` value (else its sent-by port). `None` when the Via carries
/// neither parameter (the registrar says nothing about NAT).
pub(super) fn seen_at(resp: &Message, sent_from: SocketAddr) -> Option<SocketAddr> {
    let received = resp.via.params.get("received");
    let rport = resp.via.params.get("rport").filter(|v| !v.is_empty());
    if received.is_none() && rport.is_none() {
        return None;
    }
    let ip = match received {
        Some(ip) => super::msg::parse_ip(ip)?,
        None => sent_from.ip().to_canonical(),
    };
    let port = match rport {
        Some(port) => port.trim().parse::<u16>().ok().filter(|p| *p != 0)?,
        None => sent_from.port(),
    };
    Some(SocketAddr::new(ip, port))
}

impl UserAgent {
    /// After a 2xx to REGISTER: when NAT rewrite is on and the registrar saw us elsewhere than
    /// our Contact says, takes that address and registers it (see the module docs).
    /// Each account learns its own address from its own registrar, for its Via, Contact and
    /// SDP; the first account's is also the user agent's (`UaConfig::local`, `media_ip`).
    pub(super) fn rewrite_contact_behind_nat(
        &mut self,
        now: Instant,
        index: usize,
        resp: &Message,
    ) {
        if !self.account(index).nat || self.cfg.transport != Transport::Udp {
            return;
        }
        let local = self.local_of(index);
        let Some(public) = seen_at(resp, local) else {
            return;
        };
        if public == local {
            return;
        }
        let old = self.contact_uri(index);
        tracing::info!(%local, %public, "behind NAT: registering the public address");
        let media_ip = self.accounts[index].media_ip.unwrap_or(self.cfg.media_ip);
        if media_ip == local.ip() {
            if index == 0 {
                // The others keep the address they announce until their registrar says more.
                for state in self.accounts.iter_mut().skip(1) {
                    state.media_ip.get_or_insert(media_ip);
                }
                self.cfg.media_ip = public.ip();
            } else {
                self.accounts[index].media_ip = Some(public.ip());
            }
        }
        if index == 0 {
            self.cfg.local = public;
        }
        self.accounts[index].local = public;
        self.accounts[index].stale_contact = Some(old);
        self.send_register(now, index);
    }

    /// The driver found which local address reaches the registrar (bound to every
    /// interface): it replaces ours in Via, Contact and, when SDP carried the same address,
    /// in SDP. Calls in progress keep what they announced.
    pub fn set_local_ip(&mut self, ip: IpAddr) {
        if self.cfg.local.ip() == ip {
            return;
        }
        if self.cfg.media_ip == self.cfg.local.ip() {
            self.cfg.media_ip = ip;
        }
        let old = self.cfg.local;
        for state in &mut self.accounts {
            if state.local == old {
                state.local.set_ip(ip);
            }
        }
        self.cfg.local.set_ip(ip);
    }
}
