//! Which target of each registration's server REGISTER goes to (RFC 3263 §4.3 failover): the
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
//! Every account has its own targets and lookup (`accounts.rs`). The address in use is kept
//! in the account (`outbound_proxy`'s address, else `registrar_addr`), which calls and
//! keep-alives follow. This module owns no socket and does no DNS.
//!
//! An account that does not register but sends its calls to a server known by name (its
//! outbound proxy, or the registrar of an account other than the first) has the same targets:
//! looked up at start ([`UserAgent::look_up_servers`]), kept for their TTL, looked up again by
//! the first call after that (`call/failover.rs`), which fails over across them.

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
        self.server_resolved(now, uri, &answer);
        if self.call_resolved(now, uri, &answer) {
            self.collect_finished();
            return;
        }
        if self.quit_deadline.is_some() {
            return;
        }
        let waiting: Vec<usize> = (0..self.accounts.len())
            .filter(|&i| self.accounts[i].awaiting_dns && self.account(i).server_uri() == uri)
            .collect();
        for index in waiting {
            self.registrar_resolved(now, index, uri, &answer);
        }
        self.collect_finished();
    }

    /// The answer to account `index`'s lookup of its registrar (or outbound proxy) `uri`.
    fn registrar_resolved(
        &mut self,
        now: Instant,
        index: usize,
        uri: &str,
        answer: &Result<Located, String>,
    ) {
        self.accounts[index].awaiting_dns = false;
        match answer {
            Ok(located) => {
                let list = located.over(self.cfg.transport);
                tracing::info!(registrar = %uri, targets = ?list, ttl = ?located.ttl, "registrar located");
                self.accounts[index]
                    .registrar_targets
                    .replace(list, located.ttl, now);
                self.use_registrar_target(index);
                if self.accounts[index].registrar_targets.is_empty() {
                    self.registration_failed(
                        now,
                        index,
                        None,
                        "DNS gives the registrar no address",
                    );
                    return;
                }
                self.start_keepalive(now, index);
                self.send_register(now, index);
            }
            Err(why) => {
                tracing::warn!(registrar = %uri, error = %why, "registrar lookup failed");
                self.registration_failed(
                    now,
                    index,
                    None,
                    &format!("cannot resolve the registrar: {why}"),
                );
            }
        }
    }

    /// Before a REGISTER: true when it must wait for a DNS answer (asked for here), because
    /// the registrar is a name not yet looked up or whose answer has expired.
    pub(super) fn registrar_lookup_needed(&mut self, now: Instant, index: usize) -> bool {
        if self.accounts[index].awaiting_dns {
            return true;
        }
        let uri = self.account(index).server_uri().to_owned();
        let needs_dns = matches!(
            Plan::of_uri(&uri),
            Some(Plan::Host { .. } | Plan::Domain { .. })
        );
        if !needs_dns {
            return false;
        }
        let targets = &self.accounts[index].registrar_targets;
        if !targets.is_empty() && !targets.is_stale(now) {
            return false;
        }
        let Some(plan) = Plan::of_uri(&uri) else {
            return false;
        };
        self.accounts[index].awaiting_dns = true;
        // Two accounts with one registrar ask once; the answer serves both.
        if self.resolves.iter().any(|r| r.uri == uri) {
            return true;
        }
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
    pub(super) fn registrar_fail_over(&mut self, now: Instant, index: usize) -> bool {
        let failed = self.accounts[index].registrar_targets.current();
        if !self.accounts[index].registrar_targets.advance() {
            self.use_registrar_target(index);
            return false;
        }
        self.use_registrar_target(index);
        tracing::warn!(
            failed = ?failed,
            next = ?self.account(index).server_addr(),
            "registrar target failed; trying the next one"
        );
        self.clients
            .retain(|_, (_, owner)| *owner != super::Owner::Register(index));
        self.send_register(now, index);
        true
    }

    /// A refresh of account `index` is due: while on a backup target, the first one is tried
    /// again.
    pub(super) fn registrar_back_to_first(&mut self, index: usize) {
        if self.accounts[index].registrar_targets.on_backup() {
            self.accounts[index].registrar_targets.first();
            self.use_registrar_target(index);
            tracing::info!(server = ?self.account(index).server_addr(), "trying the first registrar target again");
        }
    }

    /// Makes the target in use the address account `index`'s REGISTER, calls and keep-alives
    /// go to: the outbound proxy's when there is one, else the registrar's.
    pub(super) fn use_registrar_target(&mut self, index: usize) {
        if let Some(addr) = self.accounts[index].registrar_targets.current() {
            let account = self.account_mut(index);
            match account.outbound_proxy.as_mut() {
                Some((_, proxy)) => *proxy = addr,
                None => account.registrar_addr = Some(addr),
            }
            if let Some(keepalive) = self.accounts[index].keepalive.as_mut() {
                keepalive.set_dst(addr);
            }
        }
    }

    /// The server account `index` sends its calls to when it does not register and that
    /// server is known by a DNS name: its outbound proxy, else (an account other than the
    /// first, whose calls go to its registrar) its registrar. With the plan of its lookup.
    pub(super) fn unregistered_server(&self, index: usize) -> Option<(String, Plan)> {
        let account = self.account(index);
        if account.register || (index == 0 && account.outbound_proxy.is_none()) {
            return None;
        }
        let uri = account.server_uri();
        let plan =
            Plan::of_uri(uri).filter(|p| matches!(p, Plan::Host { .. } | Plan::Domain { .. }))?;
        Some((uri.to_owned(), plan))
    }

    /// Asks for the lookup of every [`Self::unregistered_server`] (at start, so that their
    /// addresses are known early; nothing waits for the answers but the calls placed meanwhile).
    pub(super) fn look_up_servers(&mut self) {
        for index in 0..self.account_count() {
            let Some((uri, plan)) = self.unregistered_server(index) else {
                continue;
            };
            if self.resolves.iter().all(|r| r.uri != uri) {
                self.resolves.push_back(Resolve {
                    uri,
                    plan,
                    transport: self.cfg.transport,
                });
            }
        }
    }

    /// A DNS answer for `uri`: every account that does not register and whose server it is
    /// keeps its targets for the answer's TTL; the first one becomes the address its
    /// requests and keep-alives go to. A failed lookup keeps the targets known before.
    fn server_resolved(&mut self, now: Instant, uri: &str, answer: &Result<Located, String>) {
        for index in 0..self.account_count() {
            if self
                .unregistered_server(index)
                .is_none_or(|(server, _)| server != uri)
            {
                continue;
            }
            match answer {
                Ok(located) => {
                    let list = located.over(self.cfg.transport);
                    tracing::info!(account = %self.account(index).name, server = %uri, targets = ?list, ttl = ?located.ttl, "server located");
                    let targets = &mut self.accounts[index].registrar_targets;
                    targets.replace(list, located.ttl, now);
                    // A fresh answer: the best target again (a primary calls had left may be back).
                    targets.first();
                    self.use_registrar_target(index);
                    self.start_keepalive(now, index);
                }
                Err(why) => {
                    tracing::warn!(account = %self.account(index).name, server = %uri, error = %why, "server lookup failed");
                }
            }
        }
    }

    /// Account `index`'s keep-alives start once its registrar's address is known.
    fn start_keepalive(&mut self, now: Instant, index: usize) {
        if self.accounts[index].keepalive.is_some() || self.quit_deadline.is_some() {
            return;
        }
        let interval = self.account(index).keepalive;
        if let Some((interval, dst)) = interval.zip(self.keepalive_dst(index)) {
            self.accounts[index].keepalive =
                Some(super::keepalive::Keepalive::new(interval, dst, now));
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
