//! Blind transfer as the transferor (RFC 3515 REFER, RFC 5589 §6): the
//! operator hands the call on the selected line to a target and moves on,
//! and the call comes back if the target never takes it.
//!
//! Three mechanisms ([`BlindMode`]). `ring-first` (`blind = "safe"`, the default) rings the
//! target from a free line while the caller hears music on hold and joins them with REFER +
//! Replaces once the target answered (`attended.rs`: a consultation that completes itself);
//! behind a B2BUA PBX this is the only way a failure can still bring the caller back, since a
//! PBX that takes a REFER over drops the caller when the target is busy. `notify` (and
//! `ring-first` with no free line) is the REFER-and-watch machine below; `immediate` ends the
//! call once the REFER is accepted.
//!
//! ```text
//!  transfer <target>
//!     │ call connected: hold re-INVITE first (a REFER racing it gets 491)
//!     ▼
//!  Holding ──hold 2xx──► Referring ──202──► Accepted ──NOTIFY 2xx──► succeeded: BYE, line ends
//!     │                     │                  │ NOTIFY 1xx: trying / ringing
//!     │ hold failed         │ ≥300, timeout    │ NOTIFY ≥300, no final NOTIFY in time,
//!     ▼                     ▼                  ▼ subscription ended without a result
//!  failed (call stays)    Recalling: resume re-INVITE sent, nothing told yet
//!                            (Yielding first while the transferee holds the call too: its
//!                            resume, answered with ours, recalls; else ours after RECALL_YIELD)
//!                            │ resume answered ─► failed + recalled, "the call is back on line N"
//!                            │ BYE first ──────► Dropped: one outcome, "the PBX could not reach
//!                            ▼                   103 (busy) and ended the caller's call"
//!
//!  With a consultation (attended, ring-first join) a NOTIFY ≥300 waits DROP_WINDOW in Failing
//!  (no resume is needed: the target's call stays), so a PBX's BYE right after it reads as
//!  one dropped-caller outcome too.
//!
//!  Referring, Accepted ──BYE from the transferee──► HungUp (call ended, subscription kept
//!  a few seconds; a BYE while Holding fails the transfer at once)
//!     NOTIFY 2xx ─► succeeded;  NOTIFY ≥300 within DROP_WINDOW of the BYE ─► dropped words;
//!     later, subscription ended, or nothing ─► failed:
//!     "the caller hung up during the transfer" (no recall: there is no call to bring back)
//! ```
//!
//! The `notify` mechanism keeps the dialog until the NOTIFY's sipfrag gives a
//! final status. The transferee hanging up while the transfer is under way
//! ends the call, but not the refer subscription (RFC 5057 §5: the
//! subscription usage outlives the INVITE usage): some phones (twinkle) BYE
//! the transferor as soon as the target answers and send the final NOTIFY
//! after, so a success reported then still counts.
//!
//! Every wait of the machine (the REFER sent again after 491, the final NOTIFY, the BYE after
//! a failure NOTIFY, the lingering of a dropped call) is the call's one
//! [`CallTimer::Transfer`], armed as the phase changes and handled in the call's timer `match`.

use std::time::{Duration, Instant};

use super::api::{CallState, Event, TransferKind, TransferMechanism, TransferStatus};
use super::call::CallTimer;
use super::happening::Happening;
use super::msg::{Message, Method};
use super::refer::{self, SubscriptionState};
use super::target::Target;
use super::{line_no, UserAgent};

/// How a blind transfer is carried out (`[transfer] blind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlindMode {
    /// `"safe"`: hold the caller, ring the target from a free line, join them (REFER with
    /// Replaces) once the target answered; resume the caller on failure. With no free line,
    /// [`BlindMode::Notify`].
    #[default]
    RingFirst,
    /// `"notify"`: REFER, keep the call until the transferee reports the target's answer;
    /// recall on failure.
    Notify,
    /// `"immediate"`: end the call as soon as the transferee accepts the REFER.
    Immediate,
}

/// What to do when the far end asks to transfer one of our calls (REFER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReferPolicy {
    /// Call the target at once.
    #[default]
    Accept,
    /// Tell the operator and wait for `answer` (go) or `decline` (stay).
    Ask,
    /// Refuse with 603 Decline.
    Reject,
}

/// Transfer settings of the user agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransferConfig {
    /// How blind transfers are carried out.
    pub blind: BlindMode,
    /// How long a safe blind transfer lets the target ring (ring-first), or waits for the
    /// final NOTIFY once the REFER is accepted (notify), before the call is recalled.
    pub timeout: Duration,
    /// Whether we let ourselves be transferred.
    pub accept_refer: ReferPolicy,
    /// When an attended transfer cannot be done with Replaces (the caller's phone does not
    /// announce it, or refuses the REFER), end the consultation and transfer blind instead.
    pub fallback_to_blind: bool,
    /// Put `Referred-By` (our address) in REFERs.
    pub referred_by: bool,
    /// Transfer by keying these PBX feature codes instead of sending REFER.
    pub pbx_codes: Option<super::PbxCodes>,
}

impl Default for TransferConfig {
    fn default() -> Self {
        TransferConfig {
            blind: BlindMode::RingFirst,
            timeout: Duration::from_secs(30),
            accept_refer: ReferPolicy::Accept,
            fallback_to_blind: true,
            referred_by: true,
            pbx_codes: None,
        }
    }
}

/// How far a transfer has gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for our hold re-INVITE to complete.
    Holding,
    /// REFER sent (its CSeq), no final answer yet.
    Referring(u32),
    /// The REFER met a request in progress (491): send it again when the call's
    /// [`CallTimer::Transfer`] expires.
    RetryAt,
    /// REFER accepted: waiting for the NOTIFY with the final status, until the timer.
    Accepted,
    /// The transferee hung up (at `since`) after accepting: its final NOTIFY may still come,
    /// until the timer.
    HungUp { since: Instant },
    /// A NOTIFY reported a failure while a consultation is up: told when the timer expires
    /// unless the far end hangs up first (a PBX that dropped the caller).
    Failing,
    /// The transfer failed while the transferee holds the call too (a phone that pauses on a
    /// REFER, as Linphone and switchboard do): its own resume, answered with ours, brings the
    /// call back in one exchange; ours goes when the timer expires ([`RECALL_YIELD`]). Both
    /// re-INVITEs at once would cross (491 each way), and a phone that never retries its
    /// resume after a 491 (linphonec) would keep the caller on hold.
    Yielding,
    /// The transfer failed and the resume re-INVITE is out: the outcome is told when it is
    /// answered, or as a dropped caller if the far end hangs up first.
    Recalling,
    /// The far end hung up during the recall (outcome told): kept until the timer so the
    /// call lingers for the resume's answer (a crossing 2xx is still ACKed).
    Dropped,
}

/// Why a transfer failed, kept while the outcome waits (Failing, Recalling).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Failure {
    code: Option<u16>,
    reason: String,
}

/// How many times a REFER answered 491 Request Pending is sent again.
const GLARE_RETRIES: u8 = 2;

/// How long the refer subscription is kept after the transferee hung up, for a final NOTIFY
/// sent after its BYE (or sent before it and lost): long enough for seven transmissions of
/// that NOTIFY (0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5 s), so 30 % loss on each of two hops still
/// reports a success as one (tests/network_faults.rs).
const AFTER_HANGUP: Duration = Duration::from_secs(16);

/// What the operator is told when the transferee hung up and no success was reported.
const HUNG_UP: &str = "the caller hung up during the transfer";

/// A failure NOTIFY and the far end's BYE this close together (either order) are one event:
/// a PBX that took the REFER over and dropped the caller (Asterisk sends both within a
/// millisecond).
const DROP_WINDOW: Duration = Duration::from_millis(1_000);

/// How long the recall of a call the transferee holds waits for the transferee's own resume
/// before sending ours: phones resume right after their failure NOTIFY (linphonec and
/// switchboard within 20 ms of it).
const RECALL_YIELD: Duration = Duration::from_millis(1_000);

/// How long a dropped call lingers for the answer to its resume re-INVITE (64 × T1).
const RESUME_LINGER: Duration = Duration::from_secs(32);

/// A transfer in progress on a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transfer {
    pub(super) kind: TransferKind,
    /// How a blind transfer is carried out (`None` for attended).
    pub(super) mechanism: Option<TransferMechanism>,
    /// The target as the operator sees it (a SIP URI, without angle brackets).
    pub(super) target: String,
    /// The Refer-To value to send (with angle brackets) when it is not just `<target>`:
    /// the consult dialog's target with Replaces.
    pub(super) refer_to: Option<String>,
    /// Attended: the consultation call (Call-ID), ended once the transfer succeeds.
    pub(super) consult: Option<String>,
    /// Attended while the target still rings: cancel the consultation once the REFER is
    /// accepted.
    cancel_consult_on_accept: bool,
    phase: Phase,
    /// The CSeq of our REFER once sent: a NOTIFY whose `Event: refer;id=` names another
    /// REFER (an earlier transfer of this call) is not about this one (RFC 3515 §2.4.6).
    refer_cseq: Option<u32>,
    /// REFERs sent again after 491 so far.
    glare_retries: u8,
    /// The failure waiting to be told (Failing, Recalling).
    failure: Option<Failure>,
}

impl Transfer {
    /// A blind transfer to `target` (a SIP URI) by REFER, watched as `mechanism` says.
    pub(super) fn blind(target: String, mechanism: TransferMechanism) -> Transfer {
        Transfer {
            kind: TransferKind::Blind,
            mechanism: Some(mechanism),
            target,
            refer_to: None,
            consult: None,
            cancel_consult_on_accept: false,
            phase: Phase::Holding,
            refer_cseq: None,
            glare_retries: 0,
            failure: None,
        }
    }

    /// An attended transfer to `target` ending the consultation `consult`: REFER with
    /// `refer_to` (Replaces) when the target answered, else to the target's AOR with the
    /// ringing consultation cancelled once the REFER is accepted.
    pub(super) fn attended(target: String, refer_to: Option<String>, consult: String) -> Transfer {
        Transfer {
            kind: TransferKind::Attended,
            mechanism: None,
            cancel_consult_on_accept: refer_to.is_none(),
            refer_to,
            consult: Some(consult),
            ..Transfer::blind(target, TransferMechanism::Notify)
        }
    }

    /// The join of a ring-first blind transfer: the target answered the consultation
    /// `consult`, REFER the caller with `refer_to` (Replaces).
    pub(super) fn ring_first_join(target: String, refer_to: String, consult: String) -> Transfer {
        Transfer {
            refer_to: Some(refer_to),
            consult: Some(consult),
            ..Transfer::blind(target, TransferMechanism::RingFirst)
        }
    }
}

impl UserAgent {
    /// `transfer <target>`: blind transfer of the selected call (while consulting: of the
    /// held call, and the consultation ends).
    pub(super) fn blind_transfer(&mut self, now: Instant, typed: &str) {
        let index = match self.end_consult_for_blind(now) {
            Some(index) => index,
            None => self.selected,
        };
        self.blind_transfer_line(now, index, typed);
    }

    /// Blind transfer of the call on line `index` to what the operator typed.
    pub(super) fn blind_transfer_line(&mut self, now: Instant, index: usize, typed: &str) {
        let Some(call) = self.lines.get(index).and_then(Option::as_ref) else {
            return self.error(format!("no call on line {} to transfer", line_no(index)));
        };
        if !call.is_established() {
            return self.error(format!(
                "the call on line {} is not connected: transfer it once it is",
                line_no(index)
            ));
        }
        if call.transfer.is_some() {
            return self.error(format!(
                "the call on line {} is already being transferred",
                line_no(index)
            ));
        }
        let domain = &self.account(call.account).domain;
        let target = match Target::parse(typed, domain) {
            Ok(target) => target.to_string(),
            Err(e) => return self.error(format!("cannot transfer to '{typed}': {e}")),
        };
        let call_id = call.call_id.clone();
        let (mechanism, why) = match self.policy(call.account).transfer.blind {
            BlindMode::RingFirst if self.free_line(index).is_some() => {
                return self.ring_first(now, call_id, target);
            }
            BlindMode::RingFirst => (
                TransferMechanism::Notify,
                Some("no free line to ring the target first: handing the call over by REFER"),
            ),
            BlindMode::Notify => (TransferMechanism::Notify, None),
            BlindMode::Immediate => (TransferMechanism::Immediate, None),
        };
        if self.begin_transfer(now, &call_id, Transfer::blind(target, mechanism)) {
            self.transfer_event(&call_id, TransferStatus::Requested, None, why);
        }
    }

    /// Starts `transfer` on an established call: REFER at once when the call is held, else
    /// hold first. False (with an error event) when the call is being renegotiated.
    pub(super) fn begin_transfer(
        &mut self,
        now: Instant,
        call_id: &str,
        transfer: Transfer,
    ) -> bool {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return false;
        };
        let busy = call.is_renegotiating();
        let held = call.local_hold() && !busy;
        // Our hold is on its way already: the REFER follows its answer.
        let holding = call.is_holding();
        if busy && !held && !holding {
            self.error("the call is being renegotiated; try the transfer again in a moment");
            return false;
        }
        if let Some(call) = self.call_mut(call_id) {
            call.transfer = Some(transfer);
        }
        if holding {
            return true;
        }
        if held {
            self.send_refer(now, call_id);
        } else {
            self.send_reinvite(now, call_id, true);
        }
        true
    }

    /// A hold or resume re-INVITE of the call finished (`ok`: the call is now held): after
    /// the hold before a transfer's REFER, REFER or fail the transfer; after the resume of a
    /// recall, tell the outcome.
    pub(super) fn transfer_after_hold(&mut self, now: Instant, call_id: &str, ok: bool) {
        let phase = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.as_ref())
            .map(|t| t.phase);
        match phase {
            Some(Phase::Holding) => {}
            Some(Phase::Recalling) if !ok => return self.recalled(call_id),
            Some(Phase::Dropped) => {
                self.take_transfer(call_id);
                return;
            }
            _ => return,
        }
        if ok {
            self.send_refer(now, call_id);
        } else {
            self.transfer_failed(
                now,
                call_id,
                None,
                "the call could not be put on hold first",
            );
        }
    }

    /// Sends the REFER of the call's transfer.
    fn send_refer(&mut self, now: Instant, call_id: &str) {
        let Some(refer_to) = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.as_ref())
            .map(|t| {
                t.refer_to
                    .clone()
                    .unwrap_or_else(|| format!("<{}>", t.target))
            })
        else {
            return;
        };
        let account = self.account(self.call_account(call_id));
        let referred_by = format!("<sip:{}@{}>", account.user, account.domain);
        let mut headers = vec![("Refer-To", refer_to)];
        if account.policy.transfer.referred_by {
            headers.push(("Referred-By", referred_by));
        }
        match self.send_in_dialog_with(now, call_id, Method::Refer, headers, None) {
            Some(cseq) => {
                if let Some(call) = self.call_mut(call_id) {
                    call.disarm(CallTimer::Transfer);
                    if let Some(t) = call.transfer.as_mut() {
                        t.phase = Phase::Referring(cseq);
                        t.refer_cseq = Some(cseq);
                    }
                }
            }
            None => self.transfer_failed(now, call_id, None, "transfer failed (no dialog)"),
        }
    }

    /// The transferee's answer to our REFER.
    pub(super) fn on_refer_response(
        &mut self,
        now: Instant,
        call_id: &str,
        cseq: u32,
        code: u16,
        resp: &Message,
    ) {
        let Some(t) = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.clone())
        else {
            return;
        };
        if t.phase != Phase::Referring(cseq) || code < 200 {
            return;
        }
        if (200..300).contains(&code) {
            self.transfer_accepted(now, call_id);
        } else if code == 491 && t.glare_retries < GLARE_RETRIES {
            // A request of the transferee's own is in progress (its re-INVITE, say): wait
            // as RFC 3261 §14.1 says for re-INVITEs, then ask again.
            let role = self.calls().find(|c| c.call_id == call_id).map(|c| c.role);
            let wait = role.map_or(Duration::ZERO, |role| self.glare_wait(role));
            if let Some(call) = self.call_mut(call_id) {
                if let Some(t) = call.transfer.as_mut() {
                    t.glare_retries += 1;
                    t.phase = Phase::RetryAt;
                    call.arm(CallTimer::Transfer, now + wait);
                }
            }
        } else {
            let reason = match code {
                403 => "transfer refused by the caller's phone (403 Forbidden)".to_string(),
                405 | 501 => format!(
                    "the caller's phone cannot be transferred ({code} {})",
                    resp.reason()
                ),
                _ => format!("transfer failed ({code} {})", resp.reason()),
            };
            self.transfer_failed(now, call_id, Some(code), &reason);
        }
    }

    /// The REFER got no answer at all.
    pub(super) fn on_refer_timeout(&mut self, now: Instant, call_id: &str) {
        let referring = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.as_ref())
            .is_some_and(|t| matches!(t.phase, Phase::Referring(_)));
        if referring {
            self.transfer_failed(
                now,
                call_id,
                Some(408),
                "transfer failed: the caller's phone did not answer the request",
            );
        }
    }

    /// 202 Accepted (or the first NOTIFY, which implies it).
    fn transfer_accepted(&mut self, now: Instant, call_id: &str) {
        let deadline = now + self.call_policy(call_id).transfer.timeout;
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let referring = call.transfer.as_ref().map(|t| t.phase);
        if !matches!(referring, Some(Phase::Referring(_))) {
            return;
        }
        call.arm(CallTimer::Transfer, deadline);
        let Some(t) = call.transfer.as_mut() else {
            return;
        };
        t.phase = Phase::Accepted;
        let immediate = t.mechanism == Some(TransferMechanism::Immediate);
        let target = t.target.clone();
        let ringing_consult = t.consult.clone().filter(|_| t.cancel_consult_on_accept);
        self.transfer_event(call_id, TransferStatus::Accepted, Some(202), None);
        if let Some(consult) = ringing_consult {
            // The transferee now calls the target itself: stop our ringing consultation.
            self.end_call(now, &consult, "the caller is now calling the target");
        }
        if immediate {
            self.transfer_done(
                now,
                call_id,
                TransferStatus::Succeeded,
                None,
                &format!("handed over to {target} (not watched: immediate mode)"),
            );
        }
    }

    /// A NOTIFY in the call's dialog: progress of the transfer (RFC 3515 §2.4.4).
    pub(super) fn on_notify(&mut self, now: Instant, call_id: &str, req: &Message) {
        let transfer = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.as_ref());
        let phase = transfer.map(|t| t.phase);
        let ours = phase.is_some_and(|p| {
            matches!(
                p,
                Phase::Referring(_) | Phase::Accepted | Phase::HungUp { .. }
            )
        });
        let hung_up = matches!(phase, Some(Phase::HungUp { .. }));
        let consulting = transfer.is_some_and(|t| t.consult.is_some());
        let event = req.header("Event");
        let is_refer = event.is_some_and(refer::event_is_refer);
        let other_refer = event.and_then(refer::refer_event_id).is_some_and(|id| {
            transfer
                .and_then(|t| t.refer_cseq)
                .is_some_and(|cseq| cseq != id)
        });
        if !ours || !is_refer || other_refer {
            // No refer subscription of ours in this dialog (RFC 6665 §4.1.3).
            self.respond(now, req, 481, |b| b);
            return;
        }
        let frag = refer::parse_sipfrag(&req.body);
        let state = req
            .header("Subscription-State")
            .and_then(refer::parse_subscription_state);
        let Ok(frag) = frag else {
            self.respond(now, req, 400, |b| {
                b.header(
                    "Warning",
                    "399 switchboard \"expected a message/sipfrag body\"",
                )
            });
            return;
        };
        self.respond(now, req, 200, |b| b);
        self.parking.notified(call_id, &req.body);
        let terminated = matches!(state, Some(SubscriptionState::Terminated { .. }));
        if hung_up {
            return self.on_notify_after_hangup(now, call_id, frag.code, &frag.reason, terminated);
        }
        self.transfer_accepted(now, call_id);
        match frag.code {
            100..=179 | 184..=199 => {
                self.transfer_event(call_id, TransferStatus::Trying, Some(frag.code), None);
            }
            180..=183 => {
                self.transfer_event(call_id, TransferStatus::Ringing, Some(frag.code), None);
            }
            200..=299 => {
                let target = self
                    .calls()
                    .find(|c| c.call_id == call_id)
                    .and_then(|c| c.transfer.as_ref())
                    .map(|t| t.target.clone())
                    .unwrap_or_default();
                self.transfer_done(
                    now,
                    call_id,
                    TransferStatus::Succeeded,
                    Some(frag.code),
                    &format!("transferred to {target}"),
                );
                return;
            }
            code => {
                let reason = failure_words(code, &frag.reason);
                if consulting {
                    self.transfer_failing(now, call_id, Some(code), reason);
                } else {
                    self.transfer_failed(now, call_id, Some(code), &reason);
                }
                return;
            }
        }
        if terminated {
            self.transfer_failed(
                now,
                call_id,
                None,
                "transfer failed: the caller's phone stopped reporting before the target answered",
            );
        }
    }

    /// A NOTIFY after the transferee hung up: only a success changes what the operator is
    /// told; a failure right after the BYE means the far end (a PBX) dropped the caller;
    /// anything else final ends the subscription with the hang-up words.
    fn on_notify_after_hangup(
        &mut self,
        now: Instant,
        call_id: &str,
        code: u16,
        phrase: &str,
        terminated: bool,
    ) {
        let since = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.as_ref())
            .and_then(|t| match t.phase {
                Phase::HungUp { since, .. } => Some(since),
                _ => None,
            });
        let dropped = since.is_some_and(|s| now <= s + DROP_WINDOW);
        if (200..300).contains(&code) {
            let target = self
                .calls()
                .find(|c| c.call_id == call_id)
                .and_then(|c| c.transfer.as_ref())
                .map(|t| t.target.clone())
                .unwrap_or_default();
            let reason = format!("transferred to {target}");
            self.transfer_done(now, call_id, TransferStatus::Succeeded, Some(code), &reason);
        } else if code >= 300 && code != 487 && dropped {
            let failure = Failure {
                code: Some(code),
                reason: failure_words(code, phrase),
            };
            self.transfer_dropped(call_id, &failure, None);
        } else if code >= 300 {
            self.transfer_failed(now, call_id, Some(code), HUNG_UP);
        } else if terminated {
            self.transfer_failed(now, call_id, None, HUNG_UP);
        }
    }

    /// The call's [`CallTimer::Transfer`] expired: send the REFER again after a 491, or stop
    /// waiting (for the final NOTIFY, for a BYE after a failure, for the resume's answer).
    pub(super) fn on_transfer_timer(&mut self, now: Instant, call_id: &str) {
        let Some(phase) = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.as_ref())
            .map(|t| t.phase)
        else {
            return;
        };
        let reason = match phase {
            Phase::RetryAt => return self.send_refer(now, call_id),
            Phase::Yielding => {
                // The transferee did not resume the call itself: we do.
                if let Some(t) = self.call_mut(call_id).and_then(|c| c.transfer.as_mut()) {
                    t.phase = Phase::Recalling;
                }
                return self.resume_when_settled(now, call_id);
            }
            Phase::Accepted => NO_ANSWER,
            Phase::HungUp { .. } => HUNG_UP,
            Phase::Failing => {
                let failure = self
                    .call_mut(call_id)
                    .and_then(|c| c.transfer.as_mut())
                    .and_then(|t| t.failure.take());
                if let Some(f) = failure {
                    self.transfer_failed(now, call_id, f.code, &f.reason);
                }
                return;
            }
            Phase::Dropped => {
                // The resume was never answered: nothing is left to tell.
                self.take_transfer(call_id);
                return;
            }
            // No timer runs in these phases.
            Phase::Holding | Phase::Referring(_) | Phase::Recalling => return,
        };
        self.transfer_failed(now, call_id, None, reason);
    }

    /// The transferee hung up while the transfer was under way. Once the REFER is out, the
    /// subscription is kept for [`AFTER_HANGUP`]: its final NOTIFY may follow the BYE.
    pub(super) fn on_transferee_gone(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if let Some(t) = call.transfer.as_mut() {
            match t.phase {
                Phase::Referring(_) | Phase::Accepted => {
                    t.phase = Phase::HungUp { since: now };
                    call.arm(CallTimer::Transfer, now + AFTER_HANGUP);
                    return;
                }
                Phase::Failing | Phase::Yielding | Phase::Recalling => {
                    let recalling = t.phase == Phase::Recalling;
                    let failure = t.failure.clone().unwrap_or(Failure {
                        code: None,
                        reason: NO_ANSWER.to_string(),
                    });
                    // Our resume re-INVITE may still be out: its answer must find the call.
                    let linger = recalling.then_some(now + RESUME_LINGER);
                    self.transfer_dropped(call_id, &failure, linger);
                    return;
                }
                _ => {}
            }
        }
        call.disarm(CallTimer::Transfer);
        let Some(t) = call.transfer.take() else {
            return;
        };
        self.happen(Happening::TransferOver(call_id.to_string()));
        let reason = "the caller hung up before the transfer started";
        self.emit_transfer(call_id, &t, TransferStatus::Failed, None, Some(reason));
    }

    /// Ends the call's transfer machine, if it has one (its outcome is the caller's to tell).
    fn take_transfer(&mut self, call_id: &str) -> Option<Transfer> {
        let call = self.call_mut(call_id)?;
        call.disarm(CallTimer::Transfer);
        let t = call.transfer.take()?;
        self.happen(Happening::TransferOver(call_id.to_string()));
        Some(t)
    }

    /// The call ended for another reason while a transfer was under way (a subscription
    /// outliving the transferee's BYE is kept).
    pub(super) fn transfer_abandoned(&mut self, call_id: &str, why: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if let Some(Phase::HungUp { .. } | Phase::Dropped) = call.transfer.as_ref().map(|t| t.phase)
        {
            return;
        }
        call.disarm(CallTimer::Transfer);
        let Some(t) = call.transfer.take() else {
            return;
        };
        self.happen(Happening::TransferOver(call_id.to_string()));
        let reason = match &t.failure {
            // The transfer had failed already; say both in one outcome.
            Some(f) => format!("{}; {why}", f.reason),
            None => format!("transfer abandoned: {why}"),
        };
        self.emit_transfer(call_id, &t, TransferStatus::Failed, None, Some(&reason));
    }

    /// A successful (or handed-over) transfer: tell the operator, end our call.
    fn transfer_done(
        &mut self,
        now: Instant,
        call_id: &str,
        status: TransferStatus,
        code: Option<u16>,
        reason: &str,
    ) {
        let Some(t) = self.take_transfer(call_id) else {
            return;
        };
        self.emit_transfer(call_id, &t, status, code, Some(reason));
        let gone = self
            .calls()
            .find(|c| c.call_id == call_id)
            .is_none_or(|c| c.is_gone());
        if !gone {
            // RFC 5589 §6.1: the transferor ends its dialog with the transferee.
            self.end_call(now, call_id, reason);
        }
        if let Some(consult) = &t.consult {
            // The target normally ends the replaced consultation itself; make sure.
            self.end_call(now, consult, reason);
            self.consult = None;
        }
    }

    /// A NOTIFY reported a failure while a consultation is up: wait [`DROP_WINDOW`] for a
    /// BYE (a PBX that dropped the caller) before telling the operator.
    fn transfer_failing(&mut self, now: Instant, call_id: &str, code: Option<u16>, reason: String) {
        if let Some(call) = self.call_mut(call_id) {
            if let Some(t) = call.transfer.as_mut() {
                t.phase = Phase::Failing;
                t.failure = Some(Failure { code, reason });
                call.arm(CallTimer::Transfer, now + DROP_WINDOW);
            }
        }
    }

    /// A failed transfer: bring the call back (resume), and tell the operator why once the
    /// resume is answered.
    fn transfer_failed(&mut self, now: Instant, call_id: &str, code: Option<u16>, reason: &str) {
        let Some(mut t) = self.take_transfer(call_id) else {
            return;
        };
        if self.attended_failed(now, call_id, &t, code, reason) {
            return;
        }
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        if call.is_gone() || call.state() == CallState::Ended {
            self.emit_transfer(call_id, &t, TransferStatus::Failed, code, Some(reason));
            return;
        }
        // Held, or its hold still in flight: resumed, once that is over.
        let held = call.local_hold() || call.is_holding();
        t.failure = Some(Failure {
            code,
            reason: reason.to_string(),
        });
        if !held {
            // Not held: the call is with the operator already.
            if let Some(call) = self.call_mut(call_id) {
                call.transfer = Some(t);
            }
            return self.recalled(call_id);
        }
        // Told once the resume is answered: a PBX that took the REFER over may hang the
        // caller up first, and "the call is back" must not precede "ended".
        let yields = call.local_hold() && !call.is_renegotiating() && call.is_remote_held();
        t.phase = if yields {
            Phase::Yielding
        } else {
            Phase::Recalling
        };
        if let Some(call) = self.call_mut(call_id) {
            call.transfer = Some(t);
            if yields {
                call.arm(CallTimer::Transfer, now + RECALL_YIELD);
                return;
            }
        }
        self.resume_when_settled(now, call_id);
    }

    /// The transferee's re-INVITE `req` while the recall yields to it: an offer that resumes
    /// is answered with our resume too (the operator has the line at once; other lines are
    /// held). Returns true if it was, and the recall is told once the answer is sent.
    pub(super) fn recall_offered(&mut self, now: Instant, call_id: &str, req: &Message) -> bool {
        let Some(call) = self.call_mut(call_id) else {
            return false;
        };
        let yielding = call
            .transfer
            .as_ref()
            .is_some_and(|t| t.phase == Phase::Yielding);
        if !yielding || !super::transferee::offers_resume(req) {
            return false;
        }
        tracing::info!(call_id, "the transferee resumed the call: recalled with it");
        call.set_local_hold(false);
        call.disarm(CallTimer::Transfer);
        if let Some(t) = call.transfer.as_mut() {
            t.phase = Phase::Recalling;
        }
        let line = call.line;
        self.hold_others(now, line);
        self.set_selected(line);
        true
    }

    /// The recall of a failed transfer can happen: `failed` with the reason, then
    /// `recalled`.
    fn recalled(&mut self, call_id: &str) {
        let Some(t) = self.take_transfer(call_id) else {
            return;
        };
        let (code, reason) = t
            .failure
            .clone()
            .map_or((None, String::new()), |f| (f.code, f.reason));
        self.emit_transfer(call_id, &t, TransferStatus::Failed, code, Some(&reason));
        let line = self.calls().find(|c| c.call_id == call_id).map(|c| c.line);
        let back = format!(
            "reconnecting: the call is back on line {}",
            line_no(line.unwrap_or_default())
        );
        self.emit_transfer(call_id, &t, TransferStatus::Recalled, None, Some(&back));
    }

    /// The far end ended the call of a failed transfer (a PBX that took the REFER over and
    /// dropped the caller): one `failed` outcome saying so; a consultation stays with the
    /// operator. With `linger`, the call is kept until then for the answer to our resume.
    fn transfer_dropped(&mut self, call_id: &str, failure: &Failure, linger: Option<Instant>) {
        let Some(mut t) = self.take_transfer(call_id) else {
            return;
        };
        let mut words = dropped_words(&t.target, failure.code, &failure.reason);
        if let Some(consult) = &t.consult {
            if self.consult.as_ref().is_some_and(|c| c.held() == call_id) {
                self.consult = None;
            }
            let line = self
                .calls()
                .find(|c| c.call_id == *consult && !c.is_gone())
                .map(|c| c.line);
            if let Some(line) = line {
                words.push_str(&format!("; the target is still on line {}", line_no(line)));
            }
        }
        self.emit_transfer(
            call_id,
            &t,
            TransferStatus::Failed,
            failure.code,
            Some(&words),
        );
        if let Some(deadline) = linger {
            t.phase = Phase::Dropped;
            if let Some(call) = self.call_mut(call_id) {
                call.transfer = Some(t);
                call.arm(CallTimer::Transfer, deadline);
            }
        }
    }

    pub(super) fn transfer_event(
        &mut self,
        call_id: &str,
        status: TransferStatus,
        code: Option<u16>,
        reason: Option<&str>,
    ) {
        let Some(t) = self
            .calls()
            .find(|c| c.call_id == call_id)
            .and_then(|c| c.transfer.clone())
        else {
            return;
        };
        self.emit_transfer(call_id, &t, status, code, reason);
    }

    pub(super) fn emit_transfer(
        &mut self,
        call_id: &str,
        t: &Transfer,
        status: TransferStatus,
        status_code: Option<u16>,
        reason: Option<&str>,
    ) {
        let Some(line) = self.calls().find(|c| c.call_id == call_id).map(|c| c.line) else {
            return;
        };
        self.emit(Event::Transfer {
            line: line_no(line),
            call_id: call_id.to_string(),
            kind: t.kind,
            mechanism: t.mechanism,
            status,
            target: t.target.clone(),
            status_code,
            reason: reason.map(str::to_string),
        });
    }
}

/// What the operator is told when the target never answered in time.
pub(super) const NO_ANSWER: &str = "target did not answer";

/// The operator's words for the final status of the transferee's call to the target.
pub(super) fn failure_words(code: u16, phrase: &str) -> String {
    match code {
        486 | 600 => "target is busy".to_string(),
        408 | 480 | 487 => NO_ANSWER.to_string(),
        603 => "target declined the call".to_string(),
        404 | 604 => "target does not exist".to_string(),
        _ if phrase.is_empty() => format!("transfer failed ({code})"),
        _ => format!("transfer failed ({code} {phrase})"),
    }
}

/// The one outcome of a transfer whose failure the far end answered by hanging the caller up:
/// `the PBX could not reach 103 (busy) and ended the caller's call`.
fn dropped_words(target: &str, code: Option<u16>, reason: &str) -> String {
    let why = match code {
        Some(486 | 600) => "busy",
        Some(408 | 480 | 487) => "no answer",
        Some(603) => "declined",
        Some(404 | 604) => "no such number",
        None if reason == NO_ANSWER => "no answer",
        _ => reason
            .strip_prefix("transfer failed (")
            .and_then(|r| r.strip_suffix(')'))
            .unwrap_or(reason),
    };
    let bare = target
        .trim_start_matches("sips:")
        .trim_start_matches("sip:");
    let who = bare.split('@').next().unwrap_or(bare);
    format!("the PBX could not reach {who} ({why}) and ended the caller's call")
}
