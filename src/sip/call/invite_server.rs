//! The INVITE server (RFC 3261 §13.3): a new INVITE rings a line (or is refused: busy,
//! merged, bad SDP, too brief a session); `answer` sends the 200, resent until its ACK
//! (T1 doubling to T2, given up after 64·T1); CANCEL of a ringing call; the ACK, with the
//! answer when our 2xx carried the offer.
//!
//! ```text
//!  INVITE ─► Ringing { offer } ─answer─► 200 (resent until ACK) ─► Confirmed
//!                └─ decline: 603, hangup: 603, CANCEL: 487 ─► Ended
//! ```

use super::reinvite::held_by_answer;
use super::*;

impl UserAgent {
    /// `answer`: accepts the ringing call on `line` (or the first one).
    pub(in crate::sip) fn answer(&mut self, now: Instant, line: Option<crate::sip::LineNo>) {
        let ringing = |c: &&Call| {
            c.role == Role::Callee
                && c.state() == CallState::Ringing
                && line.is_none_or(|l| line_no(c.line) == l)
        };
        if !self.lines.iter().flatten().any(|c| ringing(&c))
            && self.settle_refer_ask(now, line, true)
        {
            return;
        }
        let Some(call) = self.lines.iter().flatten().find(ringing) else {
            return self.error(match line {
                Some(l) => format!("no call is ringing on line {l}"),
                None => "no call is ringing".to_string(),
            });
        };
        let (call_id, index, account) = (call.call_id.clone(), call.line, call.account);
        self.hold_others(now, index);
        self.set_selected(index);
        let local = self.local_media(index);
        let contact = self.contact_uri(account);
        let Some(call) = self.call_mut(&call_id) else {
            return;
        };
        let remote_offer = match &call.phase {
            Phase::Ringing { offer } => offer.clone(),
            _ => None,
        };
        let (body, negotiated) = match remote_offer {
            Some(offer) => {
                let dir = call.wanted_direction();
                let version = call.next_sdp_version(dir);
                match sdp::answer(&offer, &local, dir, call.sdp_session, version) {
                    Ok((body, n)) => (body, Some(n)),
                    Err(e) => {
                        let invite = call.invite.clone();
                        self.respond(now, &invite, 488, |b| {
                            b.header("Warning", format!("305 switchboard \"{e}\""))
                        });
                        return self.finish_call(
                            &call_id,
                            Some(488),
                            "no codec in common with the caller",
                        );
                    }
                }
            }
            None => {
                let version = call.next_sdp_version(Direction::SendRecv);
                (
                    sdp::offer(&local, Direction::SendRecv, call.sdp_session, version),
                    None,
                )
            }
        };
        let offer_in_2xx = negotiated.is_none();
        call.media = negotiated;
        call.phase = Phase::Confirmed {
            local_hold: false,
            remote_hold: false,
        };
        let invite = call.invite.clone();
        let (session, session_headers) = session_timer::answer(&invite, now).unzip();
        call.set_session(session);
        let wire = self.respond(now, &invite, 200, |b| {
            session_headers
                .into_iter()
                .flatten()
                .fold(b, |b, (name, value)| b.header(name, value))
                .header("Contact", format!("<{contact}>"))
                .header("Allow", crate::sip::ALLOW)
                .header("Supported", crate::sip::SUPPORTED)
                .body("application/sdp", body)
        });
        let t1 = self.cfg.timers.t1;
        if let (Some(wire), Some(call)) = (wire, self.call_mut(&call_id)) {
            call.await_ack(wire, invite.cseq.0, offer_in_2xx, now, t1);
        }
        self.announce(&call_id, None, None);
        self.announce_media(&call_id);
        self.happen(Happening::Answered(call_id));
    }

    /// A new INVITE (no To tag), for account `account` (`accounts.rs`).
    pub(in crate::sip) fn on_new_invite(&mut self, now: Instant, req: &Message, account: usize) {
        // A retransmission after our 2xx (its transaction is gone): resend the 2xx.
        let existing = self.calls().find(|c| {
            c.call_id == req.call_id
                && c.role == Role::Callee
                && c.invite.from.tag() == req.from.tag()
        });
        if let Some(call) = existing {
            if call.invite.via.branch() != req.via.branch() {
                // The same request by another path (§8.2.2.2): a merged request.
                self.respond(now, req, 482, |b| b);
                return;
            }
            if let Some(p) = &call.pending_ack {
                let wire = p.wire.clone();
                self.transmits.push_back(wire);
            }
            // The call answers this INVITE itself: the transaction just made for the
            // retransmission would otherwise wait for a final response forever.
            if let Some(key) = TxKey::of(req) {
                self.servers.remove(&key);
            }
            return;
        }
        if self.calls().any(|c| c.call_id == req.call_id) {
            self.respond(now, req, 482, |b| b);
            return;
        }
        if session_timer::too_brief(req) {
            self.respond(now, req, 422, |b| {
                b.header("Min-SE", session_timer::MIN_SE.to_string())
            });
            return;
        }
        let replaced = match self.replaced_call(req) {
            Ok(replaced) => replaced,
            Err((code, why)) => {
                self.respond(now, req, code, |b| {
                    b.header("Warning", format!("399 switchboard \"{why}\""))
                });
                return;
            }
        };
        if replaced.is_none() && self.refused_by_policy(now, req, account) {
            return;
        }
        let line = match &replaced {
            Some((_, line)) => *line,
            None => match self.free_line(self.selected) {
                Some(line) => line,
                None => {
                    self.respond(now, req, 486, |b| b);
                    return;
                }
            },
        };
        let remote_offer = match req.body_text().filter(|b| !b.trim().is_empty()) {
            None => None,
            Some(body) => match sdp::parse(body.as_bytes()) {
                Ok(offer) => {
                    let local = self.local_media(line);
                    if let Err(e) = sdp::answer(&offer, &local, Direction::SendRecv, 0, 0) {
                        self.respond(now, req, 488, |b| {
                            b.header("Warning", format!("305 switchboard \"{e}\""))
                        });
                        if matches!(e, sdp::SdpError::NoCrypto | sdp::SdpError::SrtpOff) {
                            self.error(format!("refused a call from {}: {e}", req.from.uri));
                        }
                        return;
                    }
                    Some(offer)
                }
                Err(e) => {
                    self.respond(now, req, 400, |b| {
                        b.header("Warning", format!("399 switchboard \"bad SDP: {e}\""))
                    });
                    return;
                }
            },
        };
        // A call that replaces one of ours belongs to the same account.
        let account = replaced
            .as_ref()
            .and_then(|(old, _)| self.calls().find(|c| &c.call_id == old))
            .map_or(account, |c| c.account);
        if let Some((old, _)) = &replaced {
            self.end_replaced(now, old, req);
        }
        let tag = self.new_tag();
        let session = self.tokens.next() >> 1;
        let mut call = Call::new(
            req.call_id.clone(),
            line,
            Role::Callee,
            req.from.uri.clone(),
            tag.clone(),
            req.clone(),
        );
        call.dialog = Some(Dialog::from_request(req, &tag));
        call.remote_replaces = crate::sip::attended::announces_replaces(req);
        call.phase = Phase::Ringing {
            offer: remote_offer,
        };
        call.sdp_session = session;
        call.account = account;
        call.first_hop = req
            .contact()
            .and_then(|c| SipUri::parse(&c.uri)?.socket_addr());
        self.lines[line] = Some(call);
        self.new_srtp_keys(line);
        self.emit(Event::Incoming {
            line: line_no(line),
            call_id: req.call_id.clone(),
            from: req.from.uri.clone(),
            display_name: req.from.display.clone(),
            referred_by: req
                .header("Referred-By")
                .and_then(crate::sip::replaces::referred_by_uri),
            replaces: replaced.as_ref().map(|(old, _)| old.clone()),
            account: self.account(account).name.clone(),
        });
        if replaced.is_some() {
            // RFC 3891 §3: the new call takes over without alerting the operator.
            return self.answer(now, Some(line_no(line)));
        }
        let contact = self.contact_uri(account);
        self.respond(now, req, 180, |b| {
            b.header("Contact", format!("<{contact}>"))
        });
        self.announce(&req.call_id, None, None);
        self.ringing_by_policy(now, &req.call_id, req);
    }

    /// CANCEL of an INVITE we have not answered (§9.2).
    pub(in crate::sip) fn on_cancel(&mut self, now: Instant, req: &Message) {
        let ringing = self
            .calls()
            .find(|c| {
                c.role == Role::Callee
                    && c.call_id == req.call_id
                    && c.state() == CallState::Ringing
                    && c.invite.via.branch() == req.via.branch()
            })
            .map(|c| (c.call_id.clone(), c.invite.clone()));
        match ringing {
            Some((call_id, invite)) => {
                self.respond(now, req, 200, |b| b);
                self.respond(now, &invite, 487, |b| b);
                self.finish_call(&call_id, Some(487), "the caller hung up");
            }
            None => {
                self.respond(now, req, 481, |b| b);
            }
        }
    }

    /// The ACK for our 2xx (its own transaction).
    pub(in crate::sip) fn on_ack(&mut self, now: Instant, req: &Message) {
        let Some(call) = self
            .lines
            .iter_mut()
            .flatten()
            .find(|c| c.dialog.as_ref().is_some_and(|d| d.matches(req)))
        else {
            return;
        };
        if call
            .pending_ack
            .as_ref()
            .is_none_or(|p| p.cseq != req.cseq.0)
        {
            return;
        }
        let (offer, hold) = call
            .pending_ack
            .as_ref()
            .map_or((false, false), |p| (p.offer, p.hold_after));
        call.ack_settled();
        if let Some(dialog) = call.dialog.as_mut() {
            dialog.refresh_target(req);
        }
        let call_id = call.call_id.clone();
        if offer {
            self.answer_in_ack(now, &call_id, req);
        }
        if hold
            && self
                .calls()
                .any(|c| c.call_id == call_id && c.is_talking() && c.reinvite.is_none())
        {
            self.send_reinvite(now, &call_id, true);
        }
    }

    /// The ACK carrying the answer to the offer we put in our 2xx.
    pub(in crate::sip::call) fn answer_in_ack(
        &mut self,
        now: Instant,
        call_id: &str,
        req: &Message,
    ) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let line = call.line;
        let local = self.local_media(line);
        let answer = req
            .body_text()
            .map(|b| sdp::parse(b.as_bytes()).and_then(|s| sdp::negotiate_answer(&s, &local)));
        match answer {
            Some(Ok(n)) => {
                if let Some(call) = self.call_mut(call_id) {
                    let offered = call.last_sdp_direction.unwrap_or(Direction::SendRecv);
                    let held = held_by_answer(offered, n.direction, call.is_remote_held());
                    call.set_remote_hold(held);
                    call.media = Some(n);
                }
                self.announce(call_id, None, None);
                self.announce_media(call_id);
            }
            _ => {
                self.send_bye(now, call_id);
                self.finish_call(
                    call_id,
                    None,
                    "the far end sent no usable answer to our offer",
                );
            }
        }
    }

    /// No ACK came for our 2xx: the call ends (`true`) if it was the initial INVITE's (or
    /// carried our offer), else it goes on, and a hold that waited for the ACK is sent.
    pub(in crate::sip::call) fn ack_given_up(&mut self, now: Instant, call_id: &str) -> bool {
        let Some(call) = self.call_mut(call_id) else {
            return false;
        };
        let initial_cseq = (call.role == Role::Callee).then_some(call.invite.cseq.0);
        let Some((cseq, offer, hold)) = call
            .pending_ack
            .as_ref()
            .map(|p| (p.cseq, p.offer, p.hold_after))
        else {
            return false;
        };
        call.ack_settled();
        if initial_cseq == Some(cseq) || offer {
            tracing::warn!(call_id, "no ACK for our 2xx; ending the call");
            self.send_bye(now, call_id);
            self.finish_call(
                call_id,
                None,
                "the far end never confirmed the answer (no ACK)",
            );
            return true;
        }
        // A lost ACK to the 2xx of a re-INVITE (hold, resume, refresh) leaves the session
        // as that 2xx set it. §13.3.1.4 says the session SHOULD end; a caller lost to
        // dropped ACKs is worse, so the call goes on.
        tracing::warn!(
            call_id,
            "no ACK for our 2xx to a re-INVITE; the call goes on"
        );
        if hold && call.is_talking() && call.reinvite.is_none() {
            self.send_reinvite(now, call_id, true);
        }
        false
    }

    /// Resends our 2xx still waiting for its ACK (over UDP), the interval doubling up to T2.
    pub(in crate::sip::call) fn resend_2xx(&mut self, now: Instant, call_id: &str) {
        let t2 = self.cfg.timers.t2;
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let Some(p) = call.pending_ack.as_mut() else {
            return;
        };
        p.interval = (p.interval * 2).min(t2);
        let (interval, wire) = (p.interval, p.wire.clone());
        call.timers.set(CallTimer::AckResend, now + interval);
        if !wire.transport.is_reliable() {
            self.transmits.push_back(wire);
        }
    }
}
