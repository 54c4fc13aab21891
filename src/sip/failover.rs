//! Which target of the registration's server REGISTER goes to (RFC 3263 §4.3 failover): the
//! outbound proxy when there is one, else the registrar. Asking the driver to look it up,
//! taking its answer, moving to the next target when one fails, and going back to the first
//! (the primary) at the next refresh.
//!
//! ```text
//!   server is a name ──► Resolve output ──► handle_resolved ──► targets [primary, backup…]
//!   REGISTER: timeout (timer F), 503, connection lost ──► next target, REGISTER at once
//!                                  none left ──► back to the first; registration failed, backoff
//!   refresh while on a backup ──► first target again (the primary may be back)
//!   answer expired (TTL) at a refresh or retry ──► looked up again before REGISTER
//! ```
//!
//! The address in use is kept in the account (`outbound_proxy`'s address, else
//! `registrar_addr`), which calls and keep-alives follow. This module owns no socket and does
//! no DNS.

use std::net::SocketAddr;
use std::time::Instant;

use super::locate::{Located, Plan};
use super::{Account, Resolve, UserAgent};

impl UserAgent {
    /// The answer to a [`Resolve`] for `uri`: the targets in order, or why there are none.
    /// Calls to that URI waiting for it send their INVITE; a REGISTER waiting for it is sent (or, without targets, the registration fails and is
    /// retried after the backoff).
    pub fn handle_resolved(&mut self, now: Instant, uri: &str, answer: Result<Located, String>) {
        let answer = answer.map(|located| located.preferring(self.cfg.local.ip()));
        if self.call_resolved(now, uri, &answer) {
            self.collect_finished();
            return;
        }
        if uri != self.cfg.account.server_uri()
            || !self.awaiting_dns
            || self.quit_deadline.is_some()
        {
            return;
        }
        self.awaiting_dns = false;
        match answer {
            Ok(located) => {
                let list: Vec<SocketAddr> = located
                    .targets
                    .iter()
                    .filter(|(_, t)| *t == self.cfg.transport)
                    .map(|(a, _)| *a)
                    .collect();
                tracing::info!(registrar = %uri, targets = ?list, ttl = ?located.ttl, "registrar located");
                self.registrar_targets.replace(list, located.ttl, now);
                self.use_registrar_target();
                if self.registrar_targets.is_empty() {
                    self.registration_failed(now, None, "DNS gives the registrar no address");
                    return;
                }
                self.start_keepalive(now);
                self.send_register(now);
            }
            Err(why) => {
                tracing::warn!(registrar = %uri, error = %why, "registrar lookup failed");
                self.registration_failed(
                    now,
                    None,
                    &format!("cannot resolve the registrar: {why}"),
                );
            }
        }
        self.collect_finished();
    }

    /// Before a REGISTER: true when it must wait for a DNS answer (asked for here), because
    /// the registrar is a name not yet looked up or whose answer has expired.
    pub(super) fn registrar_lookup_needed(&mut self, now: Instant) -> bool {
        if self.awaiting_dns {
            return true;
        }
        let uri = self.cfg.account.server_uri().to_owned();
        let needs_dns = matches!(
            Plan::of_uri(&uri),
            Some(Plan::Host { .. } | Plan::Domain { .. })
        );
        if !needs_dns {
            return false;
        }
        if !self.registrar_targets.is_empty() && !self.registrar_targets.is_stale(now) {
            return false;
        }
        let Some(plan) = Plan::of_uri(&uri) else {
            return false;
        };
        self.awaiting_dns = true;
        self.resolves.push_back(Resolve {
            uri,
            plan,
            transport: self.cfg.transport,
        });
        true
    }

    /// REGISTER failed at the target in use (timeout, 503, connection lost): when another
    /// target is left, it is used and REGISTER sent there at once (true). Otherwise the first
    /// target is used again for the next retry (false: the caller reports the failure).
    pub(super) fn registrar_fail_over(&mut self, now: Instant) -> bool {
        let failed = self.registrar_targets.current();
        if !self.registrar_targets.advance() {
            self.use_registrar_target();
            return false;
        }
        self.use_registrar_target();
        tracing::warn!(
            failed = ?failed,
            next = ?self.cfg.account.server_addr(),
            "registrar target failed; trying the next one"
        );
        self.clients
            .retain(|_, (_, owner)| *owner != super::Owner::Register);
        self.send_register(now);
        true
    }

    /// A refresh is due: while on a backup target, the first one is tried again.
    pub(super) fn registrar_back_to_first(&mut self) {
        if self.registrar_targets.on_backup() {
            self.registrar_targets.first();
            self.use_registrar_target();
            tracing::info!(server = ?self.cfg.account.server_addr(), "trying the first registrar target again");
        }
    }

    /// Makes the target in use the address REGISTER, calls and keep-alives go to: the
    /// outbound proxy's when there is one, else the registrar's.
    fn use_registrar_target(&mut self) {
        if let Some(addr) = self.registrar_targets.current() {
            match self.cfg.account.outbound_proxy.as_mut() {
                Some((_, proxy)) => *proxy = addr,
                None => self.cfg.account.registrar_addr = Some(addr),
            }
            if let Some(keepalive) = self.keepalive.as_mut() {
                keepalive.set_dst(addr);
            }
        }
    }

    /// Keep-alives start once the registrar's address is known.
    fn start_keepalive(&mut self, now: Instant) {
        if self.keepalive.is_some() || self.quit_deadline.is_some() {
            return;
        }
        if let Some((interval, dst)) = self.cfg.account.keepalive.zip(self.keepalive_dst()) {
            self.keepalive = Some(super::keepalive::Keepalive::new(interval, dst, now));
        }
    }
}

impl Account {
    /// The server REGISTER goes to first and whose DNS answer [`Targets`](super::locate::Targets)
    /// holds: the outbound proxy when there is one, else the registrar.
    pub fn server_uri(&self) -> &str {
        self.outbound_proxy
            .as_ref()
            .map_or(&self.registrar, |(uri, _)| uri)
    }

    /// The outbound proxy's address in use; `None` without a proxy, or while a proxy known
    /// by name waits for its first DNS answer (its address is then unspecified).
    pub fn proxy_addr(&self) -> Option<SocketAddr> {
        self.outbound_proxy
            .as_ref()
            .map(|(_, addr)| *addr)
            .filter(|addr| !addr.ip().is_unspecified())
    }

    /// The address of the server REGISTER goes to, when known.
    pub fn server_addr(&self) -> Option<SocketAddr> {
        match &self.outbound_proxy {
            Some(_) => self.proxy_addr(),
            None => self.registrar_addr,
        }
    }
}
