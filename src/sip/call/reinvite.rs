//! Re-INVITE and hold (RFC 3261 §14, RFC 3264 §8.4): our hold and resume offers and their
//! answers, the far end's re-INVITEs (hold, resume, refresh), glare (491, retried after the
//! §14.1 random wait), the session timer's refreshes (RFC 4028), and what waited for a hold
//! to settle (reported as a `HoldSettled` happening). Who holds whom is data of
//! `Phase::Confirmed { local_hold, remote_hold }`: a call not answered cannot be held.
//!
//! ```text
//!  Confirmed ─hold─► re-INVITE sendonly ─2xx─► Held ─resume─► re-INVITE sendrecv ─2xx─► Connected
//!      peer's sendonly/inactive ─► RemoteHeld          491 ─► GlareRetry timer ─► again
//! ```

use super::*;

impl UserAgent {
    /// Hold (`true`) or resume by re-INVITE with a new offer.
    pub(in crate::sip) fn send_reinvite(&mut self, now: Instant, call_id: &str, hold: bool) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let dir = match (hold, call.is_remote_held()) {
            (true, true) => Direction::Inactive,
            (true, false) => Direction::SendOnly,
            (false, _) => Direction::SendRecv,
        };
        let version = call.next_sdp_version(dir);
        let body = sdp::offer(&local, dir, call.sdp_session, version);
        call.timers.stop(CallTimer::GlareRetry);
        if let Some(cseq) = self.send_in_dialog(
            now,
            call_id,
            Method::Invite,
            Some(("application/sdp", body)),
        ) {
            if let Some(call) = self.call_mut(call_id) {
                call.reinvite = Some(Reinvite {
                    hold,
                    cseq,
                    refresh: false,
                });
            }
        }
    }

    pub(in crate::sip::call) fn on_reinvite_response(
        &mut self,
        now: Instant,
        call_id: &str,
        cseq: u32,
        code: u16,
        resp: &Message,
    ) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let Some(re) = call.reinvite.filter(|r| r.cseq == cseq) else {
            return;
        };
        if code < 200 {
            return;
        }
        call.reinvite = None;
        let what = if re.hold { "hold" } else { "resume" };
        if (200..300).contains(&code) {
            call.set_session(session_timer::from_response(resp, now));
        }
        match code {
            200..=299 if re.refresh => {
                if let Some(dialog) = call.dialog.as_mut() {
                    dialog.refresh_target(resp);
                }
            }
            200..=299 => {
                let offered = match (re.hold, call.is_remote_held()) {
                    (true, true) => Direction::Inactive,
                    (true, false) => Direction::SendOnly,
                    (false, _) => Direction::SendRecv,
                };
                if let Some(dialog) = call.dialog.as_mut() {
                    dialog.refresh_target(resp);
                }
                let negotiated = resp
                    .body_text()
                    .and_then(|b| sdp::parse(b.as_bytes()).ok())
                    .and_then(|s| sdp::negotiate_answer(&s, &local).ok());
                if let Some(mut n) = negotiated {
                    let held = held_by_answer(offered, n.direction, call.is_remote_held());
                    call.set_remote_hold(held);
                    n.direction = intersect(offered, n.direction);
                    call.media = Some(n);
                }
                call.set_local_hold(re.hold);
                self.announce(call_id, None, None);
                self.announce_media(call_id);
                self.happen(Happening::HoldSettled {
                    call_id: call_id.to_string(),
                    held: re.hold,
                });
            }
            491 => {
                let role = call.role;
                let wait = self.glare_wait(role);
                let Some(call) = self.call_mut(call_id) else {
                    return;
                };
                call.glare_hold = re.hold;
                call.timers.set(CallTimer::GlareRetry, now + wait);
            }
            408 | 481 => {
                self.send_bye(now, call_id);
                self.finish_call(
                    call_id,
                    Some(code),
                    "the call was lost (the far end no longer knows it)",
                );
            }
            _ if re.refresh => {
                // The session goes on until its timer says otherwise.
                tracing::warn!(call_id, code, "session refresh refused");
            }
            _ => {
                self.error(format!(
                    "{what} failed: the far end answered {code} {}",
                    resp.reason()
                ));
                self.happen(Happening::HoldSettled {
                    call_id: call_id.to_string(),
                    held: false,
                });
            }
        }
    }

    /// The peer's re-INVITE: hold, resume, or a session refresh.
    pub(in crate::sip::call) fn on_reinvite(&mut self, now: Instant, call_id: &str, req: &Message) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        if call.reinvite.is_some() || call.pending_ack.is_some() {
            self.respond(now, req, 491, |b| b);
            return;
        }
        if !call.is_established() {
            self.respond(now, req, 500, |b| b.header("Retry-After", "1"));
            return;
        }
        if session_timer::too_brief(req) {
            self.respond(now, req, 422, |b| {
                b.header("Min-SE", session_timer::MIN_SE.to_string())
            });
            return;
        }
        let local = self.local_media(call.line);
        let contact = self.contact_uri(call.account);
        let before = call.state();
        self.taken_back(now, call_id, req);
        let recalled = self.recall_offered(now, call_id, req);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if let Some(dialog) = call.dialog.as_mut() {
            dialog.refresh_target(req);
        }
        call.remote_replaces |= crate::sip::attended::announces_replaces(req);
        let offer = req.body_text().filter(|b| !b.trim().is_empty());
        let (body, negotiated) = match offer.map(|b| sdp::parse(b.as_bytes())) {
            Some(Ok(offer)) => {
                let remote_hold = offer.is_hold();
                let wish = if call.local_hold() {
                    Direction::SendOnly
                } else {
                    Direction::SendRecv
                };
                let version = call.next_sdp_version(wish_with(wish, remote_hold));
                match sdp::answer(&offer, &local, wish, call.sdp_session, version) {
                    Ok((body, n)) => {
                        call.set_remote_hold(remote_hold);
                        (body, Some(n))
                    }
                    Err(e) => {
                        self.respond(now, req, 488, |b| {
                            b.header("Warning", format!("305 switchboard \"{e}\""))
                        });
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                self.respond(now, req, 488, |b| {
                    b.header("Warning", format!("399 switchboard \"bad SDP: {e}\""))
                });
                return;
            }
            None => {
                let dir = call.wanted_direction();
                let version = call.next_sdp_version(dir);
                (sdp::offer(&local, dir, call.sdp_session, version), None)
            }
        };
        let offer_in_2xx = negotiated.is_none();
        if let Some(n) = negotiated {
            call.media = Some(n);
        }
        let changed = before != call.state();
        // Every re-INVITE refreshes the session, or ends its timer if it asks for none (§9).
        let (session, session_headers) = session_timer::answer(req, now).unzip();
        call.set_session(session);
        let wire = self.respond(now, req, 200, |b| {
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
        if let (Some(wire), Some(call)) = (wire, self.call_mut(call_id)) {
            call.await_ack(wire, req.cseq.0, offer_in_2xx, now, t1);
        }
        if changed {
            self.announce(call_id, None, None);
        }
        self.announce_media(call_id);
        if recalled {
            self.happen(Happening::HoldSettled {
                call_id: call_id.to_string(),
                held: false,
            });
        }
    }

    /// The call's session timer is due: refresh by re-INVITE, or end a call the far end
    /// stopped refreshing.
    pub(in crate::sip::call) fn on_session_timer(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let Some(timer) = call.session else {
            return;
        };
        if !timer.we_refresh {
            tracing::warn!(
                call_id,
                "no session refresh from the far end; ending the call"
            );
            self.send_bye(now, call_id);
            return self.finish_call(
                call_id,
                None,
                "session timer expired: the far end stopped refreshing the call",
            );
        }
        // Whatever happens next (a 2xx restarts it), do not fire again before the expiry.
        call.set_session(Some(SessionTimer {
            due: now + Duration::from_secs(u64::from(timer.interval) / 2),
            ..timer
        }));
        if !call.is_established() || call.is_renegotiating() {
            return; // the re-INVITE or 2xx under way refreshes the session itself
        }
        let hold = call.local_hold();
        self.send_reinvite(now, call_id, hold);
        if let Some(re) = self.call_mut(call_id).and_then(|c| c.reinvite.as_mut()) {
            re.refresh = true;
        }
    }

    /// A hold or resume re-INVITE finished (`held`: the call is now held): what waited for it
    /// goes on — a transfer's REFER, a `conference` asked for meanwhile, a resume wanted after
    /// a failed transfer of us.
    pub(in crate::sip) fn hold_settled(&mut self, now: Instant, call_id: &str, held: bool) {
        self.transfer_after_hold(now, call_id, held);
        let t1 = self.cfg.timers.t1;
        if let Some(c) = self.call_mut(call_id) {
            if let Some(at) = c.timers.get(CallTimer::ResumeRetry) {
                // A resume waiting for this re-INVITE goes T1 after its ACK: sent at once, it
                // could pass the ACK in a proxy, and the far end refuses it (pjsip: 500).
                c.timers.set(CallTimer::ResumeRetry, at.max(now + t1));
            }
        }
        self.join_wanted_conference(now);
    }

    /// How long to wait before asking again after 491 Request Pending (RFC 3261 §14.1): the
    /// Call-ID's owner 2.1–4 s, the other side 0–2 s.
    pub(in crate::sip) fn glare_wait(&mut self, role: Role) -> Duration {
        let ms = match role {
            Role::Caller => 2_100 + self.tokens.next() % 1_901,
            Role::Callee => self.tokens.next() % 2_001,
        };
        Duration::from_millis(ms)
    }
}

/// True if a direction (ours) includes receiving.
pub(in crate::sip::call) fn receives(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::RecvOnly)
}

/// True if a direction (ours) includes sending.
pub(in crate::sip::call) fn sends(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::SendOnly)
}

/// Whether the far end holds us after answering our offer of `offered` (`ours`: our
/// direction as its answer leaves it): it takes no audio from us (RFC 3264 §8.4: its answer
/// is `sendonly` or `inactive`). An answer to an `inactive` offer says nothing: `before` stays.
pub(in crate::sip::call) fn held_by_answer(
    offered: Direction,
    ours: Direction,
    before: bool,
) -> bool {
    if offered == Direction::Inactive {
        before
    } else {
        !sends(ours)
    }
}

/// The direction allowed by both what we offered and what was answered.
pub(in crate::sip::call) fn intersect(offered: Direction, answered: Direction) -> Direction {
    let send = !matches!(offered, Direction::RecvOnly | Direction::Inactive)
        && !matches!(answered, Direction::RecvOnly | Direction::Inactive);
    let recv = receives(offered) && receives(answered);
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// Our direction after answering with `wish` when the peer holds or not
/// (only for SDP version bookkeeping).
pub(in crate::sip::call) fn wish_with(wish: Direction, remote_hold: bool) -> Direction {
    if remote_hold {
        intersect(wish, Direction::SendOnly)
    } else {
        wish
    }
}
