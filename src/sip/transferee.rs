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
//!  B answered  ──► NOTIFY "200 OK" (terminated;reason=noresource), BYE on A
//!  B failed    ──► NOTIFY "<final status>" (terminated;reason=noresource); A stays,
//!                  for the transferor to take back
//! ```
//!
//! `[transfer] accept_refer = "reject"` answers every REFER 603 instead.

use std::time::Instant;

use super::api::{CallState, Event, TransferKind, TransferStatus};
use super::msg::{reason_phrase, Message, Method};
use super::refer::{self, ReferTo};
use super::{line_no, UserAgent};

/// How long our refer subscription is said to last (s); it ends with the final NOTIFY.
const SUBSCRIPTION_SECONDS: u32 = 60;

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
}

impl UserAgent {
    /// A REFER on the dialog of `call_id`.
    pub(super) fn on_refer(&mut self, now: Instant, call_id: &str, req: &Message) {
        if !self.cfg.transfer.accept_refer {
            self.respond(now, req, 603, |b| b);
            return;
        }
        let busy = self
            .calls()
            .find(|c| c.call_id == call_id)
            .is_none_or(|c| c.referred.is_some() || !c.is_established());
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
        let ReferTo { uri, replaces, .. } = refer_to;
        let mut headers = Vec::new();
        if let Some(by) = req.header("Referred-By") {
            headers.push(("Referred-By", by.to_string()));
        }
        if let Some(r) = &replaces {
            headers.push(("Replaces", r.to_header_value()));
        }
        self.respond(now, req, 202, |b| b);
        self.send_refer_notify(now, call_id, 100, false);
        self.emit_referral(
            call_id,
            &uri,
            TransferStatus::Requested,
            None,
            format!("the far end transfers this call to {uri}"),
        );
        match self.place_call(now, &uri, headers) {
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

    /// The call `call_id` ended with `status`: if we placed it for a REFER, remember how.
    pub(super) fn referred_call_ended(&mut self, call_id: &str, status: Option<u16>) {
        let Some(old) = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.referred_from.clone())
        else {
            return;
        };
        if let Some(r) = self.call_mut(&old).and_then(|c| c.referred.as_mut()) {
            if r.new_call == call_id && r.outcome.is_none() {
                r.outcome = Some(status.filter(|s| *s >= 300).unwrap_or(487));
            }
        }
    }

    /// Reports the progress of every call we placed for a REFER (after each input).
    pub(super) fn flush_referrals(&mut self, now: Instant) {
        let pending: Vec<(String, Referral)> = self
            .calls()
            .filter_map(|c| c.referred.clone().map(|r| (c.call_id.clone(), r)))
            .collect();
        for (old, referral) in pending {
            let state = self
                .calls()
                .find(|c| c.call_id == referral.new_call)
                .map(|c| c.state);
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
                }
                (None, Some(CallState::Connected | CallState::Held | CallState::RemoteHeld)) => {
                    self.send_refer_notify(now, &old, 200, true);
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
                    self.end_call(now, &old, &reason);
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

    /// NOTIFY of the refer subscription on `call_id` with a sipfrag of `code`.
    fn send_refer_notify(&mut self, now: Instant, call_id: &str, code: u16, last: bool) {
        let state = if last {
            "terminated;reason=noresource".to_string()
        } else {
            format!("active;expires={SUBSCRIPTION_SECONDS}")
        };
        let headers = vec![
            ("Event", "refer".to_string()),
            ("Subscription-State", state),
            ("Contact", format!("<{}>", self.contact_uri())),
        ];
        let body = refer::sipfrag_body(code, reason_phrase(code));
        self.send_in_dialog_with(
            now,
            call_id,
            Method::Notify,
            headers,
            Some((refer::SIPFRAG_CONTENT_TYPE, body)),
        );
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
            status,
            target: target.to_string(),
            status_code,
            reason: Some(reason),
        });
    }
}
