//! The INVITE client (RFC 3261 §13.2, §9.1): our initial INVITE, its CANCEL, the ACK of
//! every 2xx (kept to answer its retransmissions, §13.2.2.4) and what its responses do to
//! the call — ringing, early media, answer, failure, a 422 retried with a larger
//! `Session-Expires` (RFC 4028 §7.4), a digest challenge answered.
//!
//! ```text
//!  Dialing ─1xx─► Alerting ─2xx─► Confirmed        ≥300, timeout ─► Ended
//!     └─ hung up: Ended { cancel_owed } ─1xx─► CANCEL;  2xx crossing it ─► ACK + BYE
//! ```

use super::*;

impl UserAgent {
    /// Sends (or re-sends with credentials) the initial INVITE.
    pub(in crate::sip::call) fn send_invite(
        &mut self,
        now: Instant,
        call_id: &str,
        authorization: Option<(&'static str, String)>,
    ) {
        let Some(account) = self
            .calls()
            .find(|c| c.call_id == call_id)
            .map(|c| c.account)
        else {
            return;
        };
        let via = self.via(account);
        let contact = self.contact_uri(account);
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let mut from = self.name_addr_of(account);
        let proxy = self.account(account).outbound_proxy.clone();
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        from.params.set("tag", Some(&call.local_tag));
        let cseq = call.invite.cseq.0 + 1;
        let version = call.next_sdp_version(Direction::SendRecv);
        let body = sdp::offer(&local, Direction::SendRecv, call.sdp_session, version);
        let mut b = Builder::request(Method::Invite, &call.peer)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", from.to_string())
            .header("To", NameAddr::new(&call.peer).to_string())
            .header("Call-ID", call_id)
            .header("CSeq", format!("{cseq} INVITE"))
            .header("Contact", format!("<{contact}>"))
            .header("Allow", crate::sip::ALLOW)
            .header("Supported", crate::sip::SUPPORTED);
        for (name, value) in session_timer::invite_headers(call.session_asked) {
            b = b.header(name, value);
        }
        if let Some((uri, _)) = &proxy {
            b = b.header("Route", format!("<{uri};lr>"));
        }
        if let Some((name, value)) = authorization {
            b = b.header(name, value);
        }
        for (name, value) in &call.invite_headers {
            b = b.header(name, value);
        }
        b = self.common_headers(b).body("application/sdp", body);
        let bytes = b.build();
        let Ok(invite) = Message::parse(&bytes) else {
            return self.finish_call(call_id, None, "could not build the INVITE");
        };
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        call.invite = invite;
        let dst = call.first_hop;
        match dst {
            Some(dst) => {
                self.send_request(now, dst, bytes, Owner::Call(call_id.to_string()));
            }
            None => self.finish_call(call_id, None, "no route to the far end"),
        }
    }

    /// CANCEL for our INVITE (§9.1): same Request-URI, Via branch, From,
    /// To, Call-ID, Route; CSeq number with method CANCEL.
    pub(in crate::sip::call) fn send_cancel(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let invite = call.invite.clone();
        let dst = call.first_hop;
        let b = crate::sip::transaction::invite_sibling(&invite, Method::Cancel, &invite.to);
        let bytes = self.common_headers(b).build();
        if let Some(dst) = dst {
            self.send_request(now, dst, bytes, Owner::Call(call_id.to_string()));
        }
    }

    /// ACK for a 2xx to our INVITE `request` (its own transaction, §13.2.2.4), sent in every
    /// state of the call, even one already ended and forgotten, and kept for resending.
    pub(in crate::sip) fn ack_2xx(
        &mut self,
        now: Instant,
        request: &Message,
        resp: &Message,
        sent_to: SocketAddr,
    ) {
        let via = self.via(self.call_account(&request.call_id));
        let Some((b, hop)) = Dialog::ack_for_2xx(request, resp, &via, 70) else {
            tracing::warn!(call_id = %resp.call_id, "a 2xx without a To tag cannot be ACKed");
            return;
        };
        let b = b.header("User-Agent", &self.cfg.user_agent);
        let wire = Transmit {
            transport: self.cfg.transport,
            dst: hop.unwrap_or(sent_to),
            payload: b.build(),
        };
        self.transmits.push_back(wire.clone());
        self.acks.retain(|a| a.until > now);
        self.acks.push(SentAck {
            call_id: resp.call_id.clone(),
            cseq: resp.cseq.0,
            to_tag: resp.to.tag().unwrap_or_default().to_string(),
            wire,
            until: now + self.cfg.timers.t1 * ACK_WAIT_T1S,
        });
    }

    pub(in crate::sip::call) fn on_invite_response(
        &mut self,
        now: Instant,
        call_id: &str,
        code: u16,
        resp: &Message,
    ) {
        if code == 503 && self.invite_fail_over(now, call_id, "503") {
            return;
        }
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        match code {
            100 => {}
            101..=199 => {
                if call.dialog.is_none() {
                    call.dialog = Dialog::from_response(&call.invite, resp);
                }
                match &mut call.phase {
                    Phase::Ended {
                        cancel_owed: owed @ true,
                        ..
                    } => {
                        *owed = false;
                        return self.send_cancel(now, call_id);
                    }
                    Phase::Dialing | Phase::Alerting { .. } => {}
                    _ => return,
                }
                let early = resp
                    .body_text()
                    .and_then(|b| sdp::parse(b.as_bytes()).ok())
                    .and_then(|s| sdp::negotiate_answer(&s, &local).ok());
                let state = match early {
                    Some(n) => {
                        call.media = Some(n);
                        CallState::Early
                    }
                    None if call.state() == CallState::Early => CallState::Early,
                    None => CallState::Ringing,
                };
                let changed = call.state() != state;
                let had_media = call.media.is_some() && state == CallState::Early;
                call.phase = Phase::Alerting {
                    early: state == CallState::Early,
                };
                if changed {
                    self.announce(call_id, None, None);
                    if had_media {
                        self.announce_media(call_id);
                    }
                    self.happen(Happening::Alerting(call_id.to_string()));
                }
            }
            200..=299 => {
                let fresh = !call.finalised;
                call.finalised = true;
                call.remote_replaces |= crate::sip::attended::announces_replaces(resp);
                let dialog = Dialog::from_response(&call.invite, resp);
                match (&call.dialog, dialog) {
                    (Some(d), Some(new)) if d.remote_tag == new.remote_tag => {
                        // The early dialog becomes confirmed: take the 2xx's target and routes.
                        call.dialog = Some(new);
                    }
                    (_, Some(new)) => call.dialog = Some(new),
                    (_, None) => {}
                }
                if call.is_gone() || !fresh {
                    if call.is_gone() {
                        self.send_bye(now, call_id);
                    }
                    return;
                }
                let negotiated = resp.body_text().map(|b| {
                    sdp::parse(b.as_bytes()).and_then(|s| sdp::negotiate_answer(&s, &local))
                });
                match negotiated {
                    Some(Ok(n)) => call.media = Some(n),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "unusable SDP answer; ending the call");
                        self.send_bye(now, call_id);
                        let reason = match e {
                            sdp::SdpError::NoCrypto | sdp::SdpError::SrtpOff => e.to_string(),
                            _ => "the far end answered with media we cannot use".to_owned(),
                        };
                        return self.finish_call(call_id, None, &reason);
                    }
                    None if call.media.is_some() => {}
                    None => {
                        self.send_bye(now, call_id);
                        return self.finish_call(
                            call_id,
                            None,
                            "the far end answered without media",
                        );
                    }
                }
                call.phase = Phase::Confirmed {
                    local_hold: false,
                    remote_hold: false,
                };
                call.set_session(session_timer::from_response(resp, now));
                self.announce(call_id, None, None);
                self.announce_media(call_id);
                self.happen(Happening::Answered(call_id.to_string()));
            }
            422 if !call.is_gone() => self.on_session_too_brief(now, call_id, resp),
            401 | 407 => {
                // The authentication layer (`client_auth.rs`) answered what it could: this
                // challenge is one it may not answer.
                call.finalised = true;
                let account = call.account;
                let reason = if self.account(account).password.is_none() {
                    "the far end asks for a password and none is configured"
                } else {
                    "authentication failed: check the user name and password"
                };
                self.finish_call(call_id, Some(code), reason);
            }
            _ => {
                call.finalised = true;
                if call.is_gone() {
                    return;
                }
                let mut reason = self
                    .pickup_failure_words(call_id, code)
                    .unwrap_or_else(|| failure_reason(code, resp.reason()));
                if matches!(code, 488 | 606)
                    && self.call_policy(call_id).srtp.effective() == SrtpMode::Mandatory
                {
                    reason = format!(
                        "{reason} (this account requires SRTP: the far end may not support it)"
                    );
                }
                self.finish_call(call_id, Some(code), &reason);
            }
        }
    }

    /// A 2xx for an INVITE whose transaction is gone: resend our ACK.
    pub(in crate::sip) fn on_stray_invite_2xx(&mut self, now: Instant, resp: &Message) {
        let to_tag = resp.to.tag().unwrap_or_default();
        let ack = self
            .acks
            .iter()
            .find(|a| {
                a.until > now
                    && a.call_id == resp.call_id
                    && a.cseq == resp.cseq.0
                    && a.to_tag == to_tag
            })
            .map(|a| a.wire.clone());
        if let Some(wire) = ack {
            self.transmits.push_back(wire);
        }
    }

    /// A 422 to our INVITE: ask again with the far end's larger `Min-SE` (RFC 4028 §7.4),
    /// with the same credentials, or give up.
    pub(in crate::sip::call) fn on_session_too_brief(
        &mut self,
        now: Instant,
        call_id: &str,
        resp: &Message,
    ) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        match session_timer::retry_after_422(resp, call.session_asked) {
            Some(interval) => {
                call.session_asked = interval;
                call.finalised = false;
                let credentials = ["Proxy-Authorization", "Authorization"]
                    .into_iter()
                    .find_map(|name| Some((name, call.invite.header(name)?.to_string())));
                self.send_invite(now, call_id, credentials);
            }
            None => {
                call.finalised = true;
                self.finish_call(
                    call_id,
                    Some(422),
                    "the far end wants an unusable session timer (422 Session Interval Too Small)",
                );
            }
        }
    }
}

/// The operator's words for a failed INVITE.
pub(in crate::sip::call) fn failure_reason(code: u16, phrase: &str) -> String {
    match code {
        404 | 604 => "the number does not exist".to_string(),
        408 => "the far end did not answer".to_string(),
        480 => "the far end is not available".to_string(),
        486 | 600 => "the far end is busy".to_string(),
        487 => "the call was cancelled".to_string(),
        488 | 606 => "no codec in common with the far end".to_string(),
        603 => "the far end declined the call".to_string(),
        _ => format!("the call failed: {code} {phrase}"),
    }
}
