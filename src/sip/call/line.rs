//! The operator's line policy: which call is on which line and "only one line talks at a
//! time" — `dial` (on the selected line or a free one, holding the others), `decline`,
//! `hangup`, `hold`/`resume`, `line N`/`swap`, ending a call in whatever phase it is, and a
//! recall's resume once the re-INVITE under way settles. Must not: build SIP messages itself
//! (the INVITE client and server and the re-INVITE modules do).

use super::*;

impl UserAgent {
    /// `dial`: places a call on the selected line, or on a free one
    /// (holding the call on the selected line).
    pub(in crate::sip) fn dial(&mut self, now: Instant, target: &str) {
        let uri = match self.target_uri(target) {
            Ok(uri) => uri,
            Err(e) => return self.error(e),
        };
        if let Err(e) = self.place_call(now, &uri, Vec::new()) {
            self.error(e);
        }
    }

    /// A call through the account named `account`: its domain completes a number, its
    /// identity goes in From, its proxy or registrar is the first hop and its credentials
    /// answer challenges.
    pub(in crate::sip) fn dial_via(&mut self, now: Instant, account: &str, target: &str) {
        let Some(index) = self.account_named(account) else {
            return self.error(format!("there is no account `{account}` to call through"));
        };
        let domain = self.account(index).domain.clone();
        let uri = match target_uri_in(target, &domain) {
            Ok(uri) => uri,
            Err(e) => return self.error(e),
        };
        if let Err(e) = self.place_call_via(now, index, &uri, Vec::new()) {
            self.error(e);
        }
    }

    /// Places a call to `uri` on the selected line or a free one (holding the others), with
    /// `headers` added to its INVITE; returns its Call-ID.
    pub(in crate::sip) fn place_call(
        &mut self,
        now: Instant,
        uri: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Result<String, String> {
        self.place_call_via(now, self.default_account, uri, headers)
    }

    /// [`Self::place_call`] through account `account`.
    pub(in crate::sip) fn place_call_via(
        &mut self,
        now: Instant,
        account: usize,
        uri: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Result<String, String> {
        let uri = uri.to_string();
        let Some(line) = self.free_line(self.selected) else {
            return Err("every line is busy: hang up or transfer a call first".to_string());
        };
        let lookup = self.located_by_dns(account, &uri);
        let server = self.unregistered_server(account);
        let dst = self.first_hop_via(account, &uri);
        if dst.is_none() && lookup.is_none() && server.is_none() {
            return Err(format!(
                "cannot reach {uri}: give an IP address, or configure a registrar or outbound proxy"
            ));
        }
        self.hold_others(now, line);
        self.set_selected(line);
        let call_id = format!("{}@switchboard", self.tokens.hex());
        let tag = self.new_tag();
        let session = self.tokens.next() >> 1;
        let mut to = NameAddr::new(&uri);
        to.display = None;
        let placeholder = Message::parse(
            format!(
                "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 0.0.0.0;branch=z9hG4bK0\r\nFrom: <{uri}>;tag=0\r\n\
                 To: {to}\r\nCall-ID: {call_id}\r\nCSeq: 0 INVITE\r\n\r\n"
            )
            .as_bytes(),
        );
        let Ok(placeholder) = placeholder else {
            return Err(format!("cannot dial {uri}: not a valid address"));
        };
        let mut call = Call::new(
            call_id.clone(),
            line,
            Role::Caller,
            uri.clone(),
            tag,
            placeholder,
        );
        call.sdp_session = session;
        call.first_hop = if lookup.is_some() || server.is_some() {
            None
        } else {
            dst
        };
        call.invite_headers = headers;
        call.account = account;
        self.lines[line] = Some(call);
        self.new_srtp_keys(line);
        match (lookup, server) {
            // The INVITE goes once DNS answers (`call_resolved`).
            (Some(plan), _) => self.look_up_call(&call_id, &uri, plan),
            (None, Some((server, plan))) => {
                self.call_through_server(now, &call_id, account, &server, plan);
            }
            (None, None) => self.send_invite(now, &call_id, None),
        }
        self.announce(&call_id, None, None);
        Ok(call_id)
    }

    /// `decline`: rejects a ringing call with 603.
    pub(in crate::sip) fn decline(&mut self, now: Instant, line: Option<crate::sip::LineNo>) {
        let found = self.lines.iter().flatten().find(|c| {
            c.role == Role::Callee
                && c.state() == CallState::Ringing
                && line.is_none_or(|l| line_no(c.line) == l)
        });
        match found.map(|c| c.call_id.clone()) {
            Some(call_id) => self.end_call(now, &call_id, "you declined the call"),
            None if self.settle_refer_ask(now, line, false) => {}
            None => self.error("no call is ringing"),
        }
    }

    /// `hangup`: ends, cancels or rejects the call on `line`.
    pub(in crate::sip) fn hangup(&mut self, now: Instant, line: Option<crate::sip::LineNo>) {
        let index = match line {
            Some(l) => usize::from(l).wrapping_sub(1),
            None => self.selected,
        };
        match self.lines.get(index).and_then(|c| c.as_ref()) {
            Some(call) => {
                let call_id = call.call_id.clone();
                if self.is_consultation(&call_id) {
                    return self.cancel_consult(now);
                }
                self.end_call(now, &call_id, "you hung up");
            }
            None => self.error(format!("no call on line {}", line_no(index))),
        }
    }

    /// `hold` / `resume` on `line` (default: selected).
    pub(in crate::sip) fn set_hold(
        &mut self,
        now: Instant,
        line: Option<crate::sip::LineNo>,
        hold: bool,
    ) {
        let index = match line {
            Some(l) => usize::from(l).wrapping_sub(1),
            None => self.selected,
        };
        if self.is_conference_line(index) {
            return self.hold_conference(now, hold, index);
        }
        let Some(call) = self.lines.get(index).and_then(|c| c.as_ref()) else {
            return self.error(format!("no call on line {}", line_no(index)));
        };
        if !call.is_established() {
            return self.error(format!(
                "the call on line {} is not connected",
                line_no(index)
            ));
        }
        if call.local_hold() == hold && call.reinvite.is_none() {
            return; // already there
        }
        if call.reinvite.is_some() || call.pending_ack.is_some() {
            return self.error("the call is being renegotiated; try again in a moment");
        }
        let call_id = call.call_id.clone();
        if !hold {
            self.hold_others(now, index);
            self.set_selected(index);
        }
        self.send_reinvite(now, &call_id, hold);
    }

    /// `line N` / `swap`: selects a line; the call on the line we leave is
    /// held, a call we held on the line we select is resumed.
    pub(in crate::sip) fn select_line(&mut self, now: Instant, n: crate::sip::LineNo) {
        let index = usize::from(n).wrapping_sub(1);
        if index >= self.lines.len() {
            return self.error(format!(
                "there is no line {n}: lines are 1 to {}",
                self.lines.len()
            ));
        }
        if self.is_conference_line(index) {
            return self.hold_conference(now, false, index);
        }
        self.hold_others(now, index);
        self.set_selected(index);
        let resume = self.lines[index]
            .as_ref()
            .filter(|c| c.local_hold() && c.reinvite.is_none() && c.is_established())
            .map(|c| c.call_id.clone());
        if let Some(call_id) = resume {
            self.send_reinvite(now, &call_id, false);
        }
    }

    /// Ends a call in whatever state it is (hangup, decline, quit).
    pub(in crate::sip) fn end_call(&mut self, now: Instant, call_id: &str, reason: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if call.is_gone() {
            return;
        }
        let mut cancel_owed = false;
        match (call.role, call.state()) {
            (Role::Callee, CallState::Ringing) => {
                let invite = call.invite.clone();
                self.respond(now, &invite, 603, |b| b);
            }
            (Role::Caller, CallState::Dialing | CallState::Ringing | CallState::Early) => {
                if matches!(call.phase, Phase::Alerting { .. }) {
                    self.send_cancel(now, call_id);
                } else {
                    cancel_owed = true;
                }
            }
            _ => {
                self.send_bye(now, call_id);
            }
        }
        self.finish_call(call_id, None, reason);
        if let Some(Phase::Ended {
            cancel_owed: owed, ..
        }) = self.call_mut(call_id).map(|c| &mut c.phase)
        {
            *owed = cancel_owed;
        }
    }

    /// Holds every talking call except the one on line `keep`.
    pub(in crate::sip) fn hold_others(&mut self, now: Instant, keep: usize) {
        let talking: Vec<String> = self
            .lines
            .iter()
            .flatten()
            .filter(|c| c.line != keep && c.is_talking() && c.reinvite.is_none())
            .map(|c| c.call_id.clone())
            .collect();
        for call_id in talking {
            match self.call_mut(&call_id) {
                // No re-INVITE before the ACK of our 2xx: hold when it comes.
                Some(Call {
                    pending_ack: Some(p),
                    ..
                }) => p.hold_after = true,
                _ => self.send_reinvite(now, &call_id, true),
            }
        }
        if let Some(c) = self.lines.get_mut(keep).and_then(Option::as_mut) {
            if let Some(p) = c.pending_ack.as_mut() {
                p.hold_after = false;
            }
        }
    }

    /// Selects line `index`, telling the operator when it changes.
    pub(in crate::sip) fn set_selected(&mut self, index: usize) {
        if self.selected != index {
            self.selected = index;
            self.emit(Event::Line {
                line: line_no(index),
            });
        }
    }

    /// Takes the call back from our hold (a recall): resumes it, selecting its line and holding
    /// the others, now or, when a re-INVITE is under way on it (our hold still in flight, the
    /// far end's offer), once that is over. Nothing when the call is not held by us.
    pub(in crate::sip) fn resume_when_settled(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if call.is_gone() || !call.is_established() {
            return;
        }
        if call.timers.is_set(CallTimer::GlareRetry) && call.glare_hold && !call.local_hold() {
            // The hold a 491 postponed is no longer wanted.
            call.timers.stop(CallTimer::GlareRetry);
        }
        if call.is_renegotiating() || call.timers.is_set(CallTimer::GlareRetry) {
            let first = !call.timers.is_set(CallTimer::ResumeRetry);
            call.timers.set(CallTimer::ResumeRetry, now + RESUME_RETRY);
            if first {
                // The operator has the line at once; the resume follows the re-INVITE.
                let line = call.line;
                self.set_selected(line);
            }
            return;
        }
        if !call.local_hold() {
            return;
        }
        let line = call.line;
        self.hold_others(now, line);
        self.set_selected(line);
        self.send_reinvite(now, call_id, false);
    }

    /// `preferred` if free, else the first free line.
    pub(in crate::sip) fn free_line(&self, preferred: usize) -> Option<usize> {
        if self.lines.get(preferred).is_some_and(Option::is_none) {
            return Some(preferred);
        }
        self.lines.iter().position(Option::is_none)
    }

    /// The Request-URI for what the operator typed, completed in the default account's
    /// domain ([`Target::parse`]).
    pub(in crate::sip) fn target_uri(&self, typed: &str) -> Result<String, String> {
        target_uri_in(typed, &self.account(self.default_account).domain)
    }
}

/// The Request-URI for what the operator typed, a number completed in `domain`.
pub(in crate::sip::call) fn target_uri_in(typed: &str, domain: &str) -> Result<String, String> {
    Target::parse(typed, domain)
        .map(|t| t.to_string())
        .map_err(|e| e.to_string())
}
