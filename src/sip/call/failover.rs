//! INVITE failover (RFC 3263 §4.3): a new call sent to the registration's server (registrar
//! or outbound proxy) that gets no answer (timer B), a 503 or a lost connection goes to the
//! next target of its DNS answer (a new branch and CSeq, the same Call-ID and From tag),
//! before the operator is told it failed. The registration is left where it is: it moves by its own rules (`failover.rs`).
//!
//! ```text
//!   INVITE ─► target k ── timer B / 503, still Dialing ──► target k+1 exists? ─► INVITE there
//!                                                                   └─ no ─► the call fails
//! ```
//!
//! A call to a domain not ours goes straight to that domain's server, located by DNS like the
//! registrar (`located_by_dns`, `call_resolved`), and fails over across its targets the same way.
//!
//! Calls of a registering account fail over through the server its registration uses (the
//! outbound proxy when there is one, located by DNS like the registrar). Calls of an account
//! that does not register go to its server known by name (`call_through_server`: its outbound
//! proxy, or its registrar) at the first target of the account's DNS answer while that answer
//! is within its TTL, else once DNS answers again, and fail over across its targets the same
//! way.

use super::*;
use crate::sip::locate;

impl UserAgent {
    /// The initial INVITE of `call_id` failed at its first hop (`why`: for the log). When the
    /// call still dials and another target of its server's DNS answer is left after the one
    /// it used, the INVITE goes there and true is returned; otherwise false (the caller ends
    /// the call as before).
    pub(in crate::sip::call) fn invite_fail_over(
        &mut self,
        now: Instant,
        call_id: &str,
        why: &str,
    ) -> bool {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return false;
        };
        let account = call.account;
        if call.finalised || !matches!(call.phase, Phase::Dialing) {
            return false;
        }
        let own = self
            .call_lookups
            .iter()
            .find(|(id, _, _)| id == call_id)
            .map(|(_, _, targets)| targets.as_ref());
        let targets = match own {
            Some(Some(targets)) => targets,
            Some(None) => return false,
            None if self.account(account).register => &self.accounts[account].registrar_targets,
            None => return false,
        };
        let Some(next) = call.first_hop.and_then(|failed| targets.after(failed)) else {
            return false;
        };
        tracing::warn!(%call_id, failed = ?call.first_hop, %next, %why, "INVITE target failed; trying the next one");
        if self.unregistered_server(account).is_some() {
            // An account that does not register: its next calls go there too, until the next
            // DNS answer (after the TTL) starts again from the best target.
            self.accounts[account].registrar_targets.prefer(next);
            self.use_registrar_target(account);
        }
        let Some(call) = self.call_mut(call_id) else {
            return false;
        };
        call.first_hop = Some(next);
        call.dialog = None;
        self.send_invite(now, call_id, None);
        true
    }

    /// When a call to `uri` goes straight to the URI's server, located by DNS (RFC 3263):
    /// the first account, no outbound proxy, and a host name that is not the account's domain
    /// or registrar (those calls go through the registrar, which knows its users), or any
    /// host name when the account has no registrar route; any other account with no outbound
    /// proxy that registers, for a host name not its own.
    pub(in crate::sip::call) fn located_by_dns(
        &self,
        index: usize,
        uri: &str,
    ) -> Option<locate::Plan> {
        let account = self.account(index);
        if account.outbound_proxy.is_some() || (index > 0 && !account.register) {
            return None;
        }
        let plan = locate::Plan::of_uri(uri)?;
        let host = plan.host().filter(|h| h != "localhost")?;
        let ours = host.eq_ignore_ascii_case(account.domain.trim_end_matches('.'))
            || locate::Plan::of_uri(&account.registrar)
                .and_then(|p| p.host())
                .is_some_and(|h| h == host);
        let through_registrar = account.register && account.registrar_addr.is_some();
        (!ours || !through_registrar).then_some(plan)
    }

    /// Asks the driver to locate `uri` for the call `call_id`.
    pub(in crate::sip::call) fn look_up_call(
        &mut self,
        call_id: &str,
        uri: &str,
        plan: locate::Plan,
    ) {
        let live: Vec<String> = self.calls().map(|c| c.call_id.clone()).collect();
        self.call_lookups.retain(|(id, _, _)| live.contains(id));
        self.call_lookups
            .push((call_id.to_owned(), uri.to_owned(), None));
        self.resolves.push_back(crate::sip::Resolve {
            uri: uri.to_owned(),
            plan,
            transport: self.cfg.transport,
        });
    }

    /// A call through account `account`'s server known by name `server` (an account that does
    /// not register, [`UserAgent::unregistered_server`]): its INVITE goes to the account's
    /// target in use (the first of its DNS answer, or the one an earlier call failed over to)
    /// when the answer is within its TTL, else once DNS answers again (`call_resolved`, the
    /// first target); either way the call fails over across those targets.
    pub(in crate::sip::call) fn call_through_server(
        &mut self,
        now: Instant,
        call_id: &str,
        account: usize,
        server: &str,
        plan: locate::Plan,
    ) {
        let known = &self.accounts[account].registrar_targets;
        if known.is_empty() || known.is_stale(now) {
            self.look_up_call(call_id, server, plan);
            return;
        }
        let targets = known.clone();
        let first = targets.current();
        let live: Vec<String> = self.calls().map(|c| c.call_id.clone()).collect();
        self.call_lookups.retain(|(id, _, _)| live.contains(id));
        self.call_lookups
            .push((call_id.to_owned(), server.to_owned(), Some(targets)));
        if let Some(call) = self.call_mut(call_id) {
            call.first_hop = first;
        }
        self.send_invite(now, call_id, None);
    }

    /// A DNS answer for `uri`: calls waiting for it send their INVITE to its first target
    /// (or end, when there is none). True when some call was waiting.
    pub(in crate::sip) fn call_resolved(
        &mut self,
        now: Instant,
        uri: &str,
        answer: &Result<locate::Located, String>,
    ) -> bool {
        let waiting: Vec<String> = self
            .call_lookups
            .iter()
            .filter(|(_, asked, targets)| asked == uri && targets.is_none())
            .map(|(id, _, _)| id.clone())
            .collect();
        for call_id in &waiting {
            let list: Vec<SocketAddr> = match answer {
                Ok(located) => located.over(self.cfg.transport),
                Err(_) => Vec::new(),
            };
            let mut targets = locate::Targets::default();
            if let Ok(located) = answer {
                targets.replace(list, located.ttl, now);
            }
            let first = targets.current();
            if let Some(entry) = self
                .call_lookups
                .iter_mut()
                .find(|(id, _, _)| id == call_id)
            {
                entry.2 = Some(targets);
            }
            let Some(call) = self.call_mut(call_id) else {
                continue;
            };
            if call.is_gone() {
                continue;
            }
            match first {
                Some(dst) => {
                    tracing::info!(%call_id, %uri, %dst, "call located by DNS");
                    call.first_hop = Some(dst);
                    self.send_invite(now, call_id, None);
                }
                None => {
                    let why = match answer {
                        Err(e) => e.clone(),
                        Ok(_) => "no address for this transport".to_owned(),
                    };
                    call.finalised = true;
                    self.finish_call(call_id, None, &format!("cannot locate {uri}: {why}"));
                }
            }
        }
        !waiting.is_empty()
    }

    /// The stream connection to `peer` closed or could not be opened: calls still dialing
    /// there move to the next target at once, as after a timeout (their INVITE transaction
    /// on the dead connection is dropped, so its timer B cannot end the call later).
    pub(in crate::sip) fn calls_lost_connection(&mut self, now: Instant, peer: SocketAddr) {
        let dialing: Vec<String> = self
            .calls()
            .filter(|c| c.first_hop == Some(peer) && matches!(c.phase, Phase::Dialing))
            .map(|c| c.call_id.clone())
            .collect();
        for call_id in dialing {
            if !self.invite_fail_over(now, &call_id, "connection lost") {
                continue;
            }
            let Some(cseq) = self
                .calls()
                .find(|c| c.call_id == call_id)
                .map(|c| c.invite.cseq.0)
            else {
                continue;
            };
            self.clients.retain(|_, (tx, owner)| {
                let request = tx.request();
                !(matches!(owner, Owner::Call(id) if *id == call_id)
                    && request.method() == Method::Invite
                    && request.cseq.0 < cseq)
            });
        }
    }
}
