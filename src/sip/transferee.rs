//! Being transferred (RFC 3515 REFER, RFC 5589 §6–7 as the transferee): the
//! far end asks us to call someone else; we do, report how it goes in NOTIFYs
//! and end the old call once the new one is answered.
//!
//! ```text
//!  REFER on call A ──► 202, NOTIFY "100 Trying" (active)
//!        │             INVITE to the Refer-To URI on a free line (call B), with its
//!        │             Replaces header and the REFER's Referred-By
//!        ▼
//!  B rings     ──► NOTIFY "180 Ringing" (active)
//!  B answered  ──► NOTIFY "200 OK" (terminated;reason=noresource); once it is
//!                  answered (or timed out), BYE on A
//!  B failed    ──► NOTIFY "<final status>" (terminated;reason=noresource); A stays,
//!                  for the transferor to take back: resumed (and its line selected) if
//!                  calling B held it
//!  A resumed by the transferor while B rings ──► the transferor took A back: B is
//!                  cancelled (NOTIFY "487"), A is resumed if calling B held it
//! ```
//!
//! `[transfer] accept_refer = "reject"` answers every REFER 603 instead; `"ask"` holds the
//! REFER unanswered, tells the operator, and goes on when they say `answer` (go) or stops
//! with 603 on `decline` (stay) or after [`ASK_WINDOW`] without a word — well inside the
//! 32 s the transferor's REFER transaction waits.

use std::time::{Duration, Instant};

use super::api::{CallState, Event, TransferKind, TransferStatus};
use super::call::CallTimer;
use super::msg::{reason_phrase, Message, Method};
use super::refer::{self, ReferTo};
use super::transfer::ReferPolicy;
use super::{line_no, UserAgent};

/// How long our refer subscription is said to last (s); it ends with the final NOTIFY.
const SUBSCRIPTION_SECONDS: u32 = 60;

/// How long a REFER waits for the operator's word under `accept_refer = "ask"`.
pub(super) const ASK_WINDOW: Duration = Duration::from_secs(20);

/// A REFER waiting for the operator (`accept_refer = "ask"`), refused for want of an answer
/// when the call's [`CallTimer::ReferAsk`] expires.
#[derive(Debug, Clone)]
pub(super) struct AskedRefer {
    /// The REFER, still unanswered.
    request: Message,
    /// Its Refer-To, already checked.
    refer_to: ReferTo,
}

/// A REFER we accepted on a call, until its outcome is reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Referral {
    /// Call-ID of the call we placed to the target.
    new_call: String,
    /// The target (Refer-To URI without headers).
    target: String,
    /// The highest sipfrag status reported so far.
    reported: u16,
    /// The final status of the call to the target, when it failed.
    outcome: Option<u16>,
    /// Calling the target put this call on hold (it was talking): a failure resumes it.
    held: bool,
}

impl UserAgent {
    /// A REFER on the dialog of `call_id`.
    pub(super) fn on_refer(&mut self, now: Instant, call_id: &str, req: &Message) {
        if self.call_policy(call_id).transfer.accept_refer == ReferPolicy::Reject {
            self.respond(now, req, 603, |b| b);
            return;
        }
        let busy = self
            .calls()
            .find(|c| c.call_id == call_id)
            .is_none_or(|c| c.referred.is_some() || c.refer_ask.is_some() || !c.is_established());
        if busy {
            self.respond(now, req, 491, |b| b);
            return;
        }
        let refer_to = match req.header("Refer-To").map(refer::parse_refer_to) {
            Some(Ok(r)) if r.is_sip() => r,
            Some(Ok(r)) => {
                self.respond(now, req, 416, |b| b);
                tracing::info!(uri = %r.uri, "REFER to a URI we cannot call");
                return;
            }
            Some(Err(e)) => {
                let warning = format!("399 switchboard \"bad Refer-To: {e}\"");
                self.respond(now, req, 400, |b| b.header("Warning", warning));
                return;
            }
            None => {
                self.respond(now, req, 400, |b| {
                    b.header("Warning", "399 switchboard \"no Refer-To\"")
                });
                return;
            }
        };
        if self.call_policy(call_id).transfer.accept_refer == ReferPolicy::Ask {
            return self.ask_operator(now, call_id, req, refer_to);
        }
        self.accept_refer(now, call_id, req, refer_to, TransferStatus::Requested);
    }

    /// Holds the REFER and asks the operator whether to go.
    fn ask_operator(&mut self, now: Instant, call_id: &str, req: &Message, refer_to: ReferTo) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let line = line_no(call.line);
        let target = refer_to.uri.clone();
        call.refer_ask = Some(AskedRefer {
            request: req.clone(),
            refer_to,
        });
        call.arm(CallTimer::ReferAsk, now + ASK_WINDOW);
        self.emit_referral(
            call_id,
            &target,
            TransferStatus::Asking,
            None,
            format!(
                "the far end asks to transfer you to {target}: `answer {line}` to go, \
                 `decline {line}` to stay"
            ),
        );
    }

    /// The operator's word on the REFER waiting on line `line` (or any line): `go` or stay.
    /// False when no REFER waits there.
    pub(super) fn settle_refer_ask(
        &mut self,
        now: Instant,
        line: Option<super::LineNo>,
        go: bool,
    ) -> bool {
        let found = self
            .lines
            .iter()
            .flatten()
            .find(|c| c.refer_ask.is_some() && line.is_none_or(|l| line_no(c.line) == l))
            .map(|c| c.call_id.clone());
        let Some(call_id) = found else {
            return false;
        };
        let Some(asked) = self.call_mut(&call_id).and_then(|c| {
            c.disarm(CallTimer::ReferAsk);
            c.refer_ask.take()
        }) else {
            return false;
        };
        if go {
            self.accept_refer(
                now,
                &call_id,
                &asked.request,
                asked.refer_to,
                TransferStatus::Accepted,
            );
        } else {
            self.refuse_asked(now, &call_id, asked, "you declined to be transferred");
        }
        true
    }

    /// A REFER the operator did not answer in time ([`CallTimer::ReferAsk`]) is refused.
    pub(super) fn on_refer_ask_timer(&mut self, now: Instant, call_id: &str) {
        if let Some(asked) = self.call_mut(call_id).and_then(|c| c.refer_ask.take()) {
            let reason = format!(
                "no answer in {} s: the transfer was refused",
                ASK_WINDOW.as_secs()
            );
            self.refuse_asked(now, call_id, asked, &reason);
        }
    }

    fn refuse_asked(&mut self, now: Instant, call_id: &str, asked: AskedRefer, reason: &str) {
        self.respond(now, &asked.request, 603, |b| b);
        self.emit_referral(
            call_id,
            &asked.refer_to.uri,
            TransferStatus::Failed,
            Some(603),
            reason.to_string(),
        );
    }

    /// 202, the first NOTIFY and the call to the target; `status` is what the event says
    /// (`requested` when it happens by itself, `accepted` when the operator said so).
    fn accept_refer(
        &mut self,
        now: Instant,
        call_id: &str,
        req: &Message,
        refer_to: ReferTo,
        status: TransferStatus,
    ) {
        let ReferTo { uri, replaces, .. } = refer_to;
        let mut headers = Vec::new();
        if let Some(by) = req.header("Referred-By") {
            headers.push(("Referred-By", by.to_string()));
        }
        if let Some(r) = &replaces {
            headers.push(("Replaces", r.to_header_value()));
        }
        let contact = self.contact_uri(self.call_account(&req.call_id));
        // The 202 creates the refer subscription's dialog usage (RFC 6665 §4.2.1.1).
        self.respond(now, req, 202, |b| {
            b.header("Contact", format!("<{contact}>"))
        });
        self.send_refer_notify(now, call_id, 100, false);
        self.emit_referral(
            call_id,
            &uri,
            status,
            None,
            format!("the far end transfers this call to {uri}"),
        );
        let talking = self
            .calls()
            .find(|c| c.call_id == call_id)
            .is_some_and(|c| c.is_talking() && !c.local_hold());
        let account = self.call_account(call_id);
        match self.place_call_via(now, account, &uri, headers) {
            Ok(new_call) => {
                if let Some(c) = self.call_mut(&new_call) {
                    c.referred_from = Some(call_id.to_string());
                }
                if let Some(c) = self.call_mut(call_id) {
                    c.referred = Some(Referral {
                        new_call,
                        target: uri,
                        reported: 100,
                        outcome: None,
                        held: talking,
                    });
                }
            }
            Err(e) => {
                self.send_refer_notify(now, call_id, 503, true);
                self.emit_referral(
                    call_id,
                    &uri,
                    TransferStatus::Failed,
                    Some(503),
                    format!("cannot call the transfer target: {e}"),
                );
            }
        }
    }

    /// The call `call_id` ended: if we placed it for a REFER, remember how.
    pub(super) fn referred_call_ended(&mut self, call_id: &str) {
        let Some((old, status)) = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| Some((c.referred_from.clone()?, c.end_status())))
        else {
            return;
        };
        if let Some(r) = self.call_mut(&old).and_then(|c| c.referred.as_mut()) {
            if r.new_call == call_id && r.outcome.is_none() {
                r.outcome = Some(status.filter(|s| *s >= 300).unwrap_or(487));
            }
        }
    }

    /// The call `call_id` ended: a REFER on it still waiting for the operator is answered 487
    /// (RFC 3261 §15.1.2).
    pub(super) fn refer_ask_orphaned(&mut self, now: Instant, call_id: &str) {
        let Some(asked) = self
            .call_mut(call_id)
            .filter(|c| c.is_gone())
            .and_then(|c| {
                c.disarm(CallTimer::ReferAsk);
                c.refer_ask.take()
            })
        else {
            return;
        };
        self.respond(now, &asked.request, 487, |b| b);
    }

    /// Something happened to `new_call`: if we placed it for a REFER, report its progress to
    /// the transferor (NOTIFY) and the operator.
    pub(super) fn referral_progress(&mut self, now: Instant, new_call: &str) {
        let pending: Vec<(String, Referral)> = self
            .calls()
            .filter_map(|c| c.referred.clone().map(|r| (c.call_id.clone(), r)))
            .filter(|(_, r)| r.new_call == new_call)
            .collect();
        for (old, referral) in pending {
            let state = self
                .calls()
                .find(|c| c.call_id == referral.new_call)
                .map(|c| c.state());
            match (referral.outcome, state) {
                (Some(code), _) => {
                    self.send_refer_notify(now, &old, code, true);
                    if let Some(c) = self.call_mut(&old) {
                        c.referred = None;
                    }
                    self.emit_referral(
                        &old,
                        &referral.target,
                        TransferStatus::Failed,
                        Some(code),
                        super::transfer::failure_words(code, reason_phrase(code)),
                    );
                    if referral.held {
                        // Unless the operator moved on meanwhile (hung up, or resumed it).
                        self.resume_when_settled(now, &old);
                    }
                }
                (None, Some(CallState::Connected | CallState::Held | CallState::RemoteHeld)) => {
                    let notify = self.send_refer_notify(now, &old, 200, true);
                    if let Some(c) = self.call_mut(&old) {
                        c.referred = None;
                    }
                    let reason = format!("transferred to {}", referral.target);
                    self.emit_referral(
                        &old,
                        &referral.target,
                        TransferStatus::Succeeded,
                        Some(200),
                        reason.clone(),
                    );
                    // Sent together, a proxy may deliver the BYE first, and the transferor
                    // then refuses the NOTIFY (pjsip: 500 Invalid CSeq) and never hears the
                    // outcome: the BYE waits for the NOTIFY's answer.
                    match (notify, self.call_mut(&old)) {
                        (Some(cseq), Some(c)) => c.bye_after_notify = Some((cseq, reason)),
                        _ => self.end_call(now, &old, &reason),
                    }
                }
                (None, Some(CallState::Ringing | CallState::Early)) if referral.reported < 180 => {
                    self.send_refer_notify(now, &old, 180, false);
                    if let Some(r) = self.call_mut(&old).and_then(|c| c.referred.as_mut()) {
                        r.reported = 180;
                    }
                    self.emit_referral(
                        &old,
                        &referral.target,
                        TransferStatus::Ringing,
                        Some(180),
                        format!("{} is ringing", referral.target),
                    );
                }
                _ => {}
            }
        }
    }

    /// The transferor's re-INVITE `req` on `call_id`: if it resumes the call it held while we
    /// call the target (its `safe` blind transfer gave up and recalled us), it took the call
    /// back: the call to the target ends (the last NOTIFY says 487) and, if calling the target
    /// held this call, the answer to `req` resumes it.
    pub(super) fn taken_back(&mut self, now: Instant, call_id: &str, req: &Message) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let Some(referral) = call.referred.clone() else {
            return;
        };
        if !offers_resume(req) || !call.is_remote_held() {
            return;
        }
        tracing::info!(call_id, "the transferor took the call back");
        self.end_call(now, &referral.new_call, "the transferor took the call back");
        if referral.held {
            if let Some(call) = self.call_mut(call_id) {
                call.set_local_hold(false);
            }
        }
    }

    /// The answer to a NOTIFY we sent on `call_id` (408 when none came): the final one of a
    /// transfer lets the old call end.
    pub(super) fn on_refer_notify_answered(
        &mut self,
        now: Instant,
        call_id: &str,
        cseq: u32,
        code: u16,
    ) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if code < 200
            || call
                .bye_after_notify
                .as_ref()
                .is_none_or(|(c, _)| *c != cseq)
        {
            return;
        }
        if let Some((_, reason)) = call.bye_after_notify.take() {
            self.end_call(now, call_id, &reason);
        }
    }

    /// NOTIFY of the refer subscription on `call_id` with a sipfrag of `code`; its CSeq.
    fn send_refer_notify(
        &mut self,
        now: Instant,
        call_id: &str,
        code: u16,
        last: bool,
    ) -> Option<u32> {
        let state = if last {
            "terminated;reason=noresource".to_string()
        } else {
            format!("active;expires={SUBSCRIPTION_SECONDS}")
        };
        let headers = vec![
            ("Event", "refer".to_string()),
            ("Subscription-State", state),
        ];
        let body = refer::sipfrag_body(code, reason_phrase(code));
        self.send_in_dialog_with(
            now,
            call_id,
            Method::Notify,
            headers,
            Some((refer::SIPFRAG_CONTENT_TYPE, body)),
        )
    }

    fn emit_referral(
        &mut self,
        call_id: &str,
        target: &str,
        status: TransferStatus,
        status_code: Option<u16>,
        reason: String,
    ) {
        let Some(line) = self.calls().find(|c| c.call_id == call_id).map(|c| c.line) else {
            return;
        };
        self.emit(Event::Transfer {
            line: line_no(line),
            call_id: call_id.to_string(),
            kind: TransferKind::Incoming,
            mechanism: None,
            status,
            target: target.to_string(),
            status_code,
            reason: Some(reason),
        });
    }
}

/// Whether a re-INVITE's SDP offer takes the call off hold (an offer that holds, a bad one or
/// none does not).
pub(super) fn offers_resume(req: &Message) -> bool {
    req.body_text()
        .and_then(|b| super::sdp::parse(b.as_bytes()).ok())
        .is_some_and(|offer| !offer.is_hold())
}
