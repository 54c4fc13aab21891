//! Attended transfer as the transferor (RFC 5589 §7): the operator holds the
//! caller, consults the target on the other line, then joins them with a
//! REFER whose Refer-To carries Replaces for the consultation (RFC 3891).
//!
//! ```text
//!  consult <target>: hold the caller (music on hold), call the target on the free line
//!     │ target busy / no answer / hangs up ──► failed, recalled: the caller is resumed
//!     │ caller hangs up ─────────────────────► failed; the consultation goes on
//!     │ cancel (or hang up the consultation) ► recalled: the caller is resumed
//!     │ consult <other> ─────────────────────► the consultation is replaced
//!     │ transfer <other> ────────────────────► consultation ends, blind transfer of the caller
//!     ▼
//!  complete ─ target answered: REFER <target-contact?Replaces=consult dialog>
//!     │       target ringing:  REFER <target AOR>, the ringing consultation is cancelled on 202
//!     │       caller's phone lists no `replaces`, or refuses: fallback (blind) if configured
//!     ▼
//!  the blind-transfer machine (`transfer.rs`) watches the NOTIFYs; on success both calls end.
//!  A failure while the consultation is still up leaves both calls with the operator.
//! ```
//!
//! The ring-first blind transfer (`blind = "safe"`) is a consultation that completes itself:
//!
//! ```text
//!  transfer <target>: hold the caller, ring the target on the free line (operator hears ringback)
//!     │ target busy / declines / unreachable ──► failed (its words), recalled: caller resumed
//!     │ no answer within blind_timeout ─────────► CANCEL, "target did not answer", recalled
//!     │ caller hangs up ────────────────────────► CANCEL, failed: "the caller hung up"
//!     │ target answers, caller announced `replaces` ► REFER with Replaces (as `complete`)
//!     │ target answers, no `replaces` ──────────► attended_fallback: "blind" hangs the target
//!     ▼                                            up and REFERs (notify); "none" leaves both
//!  joined: success ends both calls; a refused REFER follows attended_fallback the same way
//! ```

use std::time::Instant;

use super::api::{Event, TransferKind, TransferMechanism, TransferStatus};
use super::call::CallTimer;
use super::msg::Message;
use super::refer::{self, Replaces};
use super::target::Target;
use super::transfer::{BlindMode, Transfer};
use super::{line_no, UserAgent};

/// An attended transfer being prepared: the caller on hold and the consultation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Consult {
    /// Call-ID of the call to transfer (held while consulting).
    held: String,
    /// Call-ID of the consultation with the target.
    call: String,
    /// The target (SIP URI).
    target: String,
    /// `complete` was given: the REFER for it is under way on the held call.
    completing: bool,
    /// A ring-first blind transfer: completes itself when the target answers, and gives the
    /// ringing target up when the held call's [`CallTimer::RingFirst`] expires.
    ring_first: bool,
    /// Ring-first: the target's ringing was reported.
    rang: bool,
}

impl Consult {
    /// A consultation of `target` on `call` for the held call `held`.
    fn new(held: String, call: String, target: String) -> Consult {
        Consult {
            held,
            call,
            target,
            completing: false,
            ring_first: false,
            rang: false,
        }
    }

    /// Two calls the operator already has, about to be joined by `complete` (leaving a
    /// conference): `held` is referred to `call`, whose far end is `target`.
    pub(super) fn joined(held: String, call: String, target: String) -> Consult {
        Consult::new(held, call, target)
    }

    /// `complete` was given and its REFER is under way.
    pub(super) fn is_completing(&self) -> bool {
        self.completing
    }

    /// The Call-ID of the held call (the one to transfer).
    pub(super) fn held(&self) -> &str {
        &self.held
    }

    /// `blind` for a ring-first transfer, else `attended`.
    fn kind(&self) -> TransferKind {
        if self.ring_first {
            TransferKind::Blind
        } else {
            TransferKind::Attended
        }
    }

    fn mechanism(&self) -> Option<TransferMechanism> {
        self.ring_first.then_some(TransferMechanism::RingFirst)
    }
}

impl UserAgent {
    /// `consult <target>`: hold the selected call and call the target on a free line; while
    /// consulting, replace the consultation.
    pub(super) fn consult(&mut self, now: Instant, typed: &str) {
        // The consultation goes out through the account of the call it transfers.
        let held_account = match &self.consult {
            Some(c) => self.call_account(&c.held),
            None => self
                .lines
                .get(self.selected)
                .and_then(Option::as_ref)
                .map_or(0, |c| c.account),
        };
        let target = match Target::parse(typed, &self.account(held_account).domain) {
            Ok(target) => target.to_string(),
            Err(e) => return self.error(format!("cannot consult '{typed}': {e}")),
        };
        let held = match self.consult.clone() {
            Some(c) if c.completing => {
                return self.error("the transfer is already under way: wait for its outcome")
            }
            Some(c) => {
                self.consult = None;
                self.end_call(now, &c.call, "consultation replaced");
                self.detach(&c.call);
                c.held
            }
            None => {
                let Some(call) = self.lines.get(self.selected).and_then(Option::as_ref) else {
                    return self.error(format!(
                        "no call on line {} to transfer",
                        line_no(self.selected)
                    ));
                };
                if !call.is_established() || call.transfer.is_some() {
                    return self.error(format!(
                        "the call on line {} cannot be transferred now",
                        line_no(self.selected)
                    ));
                }
                call.call_id.clone()
            }
        };
        self.start_consult(now, Consult::new(held, String::new(), target));
    }

    /// `transfer <target>` with `blind = "safe"`: hold the call `held` and ring the target
    /// on a free line; joined once the target answers (see the module docs).
    pub(super) fn ring_first(&mut self, now: Instant, held: String, target: String) {
        let deadline = now + self.call_policy(&held).transfer.timeout;
        if let Some(call) = self.call_mut(&held) {
            call.arm(CallTimer::RingFirst, deadline);
        }
        let c = Consult {
            ring_first: true,
            ..Consult::new(held, String::new(), target)
        };
        self.start_consult(now, c);
    }

    /// Calls the consultation's target (holding the others) and reports it.
    fn start_consult(&mut self, now: Instant, mut c: Consult) {
        let account = self.call_account(&c.held);
        match self.place_call_via(now, account, &c.target, Vec::new()) {
            Ok(call) => {
                let line = self.calls().find(|x| x.call_id == call).map(|x| x.line);
                let line = line.map_or(0, line_no);
                c.call = call;
                let reason = if c.ring_first {
                    format!(
                        "ringing {} on line {line} first; the caller hears music on hold",
                        c.target
                    )
                } else {
                    format!("consulting {} on line {line}", c.target)
                };
                self.consult_event(&c, TransferStatus::Requested, None, &reason);
                self.consult = Some(c);
            }
            Err(e) if c.ring_first => {
                let reason = format!("cannot ring {}: {e}", c.target);
                self.consult_event(&c, TransferStatus::Failed, None, &reason);
                self.recall_held(now, &c, "transfer not possible");
            }
            Err(e) => {
                self.error(format!("cannot consult {}: {e}", c.target));
                self.recall_held(now, &c, "consultation not possible");
            }
        }
    }

    /// `complete`: join the held caller with the target.
    pub(super) fn complete(&mut self, now: Instant) {
        let Some(c) = self.consult.clone() else {
            return self.error("nothing to complete: start with consult <target>");
        };
        if c.completing {
            return self.error("the transfer is already under way");
        }
        if c.ring_first {
            return self.error(
                "the transfer joins by itself once the target answers; cancel takes the caller back",
            );
        }
        let Some(consult) = self.calls().find(|x| x.call_id == c.call) else {
            return;
        };
        let answered = consult.is_established();
        let replaces = consult.dialog.as_ref().filter(|_| answered).map(|d| {
            refer::refer_to_with_replaces(&d.remote_target, &Replaces::from_dialog(d, false))
        });
        let supports = self
            .calls()
            .find(|x| x.call_id == c.held)
            .is_some_and(|x| x.remote_replaces);
        if answered && !supports && self.call_policy(&c.held).transfer.fallback_to_blind {
            return self.fallback_to_blind(
                now,
                &c,
                "the caller's phone does not announce attended transfer (Replaces)",
            );
        }
        let transfer = Transfer::attended(c.target.clone(), replaces, c.call.clone());
        if let Some(x) = self.consult.as_mut() {
            x.completing = true;
        }
        if self.begin_transfer(now, &c.held, transfer) {
            let how = if answered {
                "connecting the caller with the target"
            } else {
                "the target still rings: handing the caller over"
            };
            self.transfer_event(&c.held, TransferStatus::Requested, None, Some(how));
        } else if let Some(x) = self.consult.as_mut() {
            x.completing = false;
        }
    }

    /// `cancel`: end the consultation and take the held caller back.
    pub(super) fn cancel_consult(&mut self, now: Instant) {
        let Some(c) = self.consult.clone() else {
            return self.error("no consultation to cancel");
        };
        if c.completing {
            return self.error("the transfer is already under way: wait for its outcome");
        }
        self.consult = None;
        let why = if c.ring_first {
            "transfer cancelled"
        } else {
            "consultation cancelled"
        };
        self.end_call(now, &c.call, why);
        self.detach(&c.call);
        self.recall_held(now, &c, why);
    }

    /// True when `call_id` is the consultation (hanging it up cancels the transfer).
    pub(super) fn is_consultation(&self, call_id: &str) -> bool {
        self.consult
            .as_ref()
            .is_some_and(|c| c.call == call_id && !c.completing)
    }

    /// `transfer <other>` while consulting: the consultation ends and the held call is the one
    /// to transfer; returns its line. `None` when not consulting.
    pub(super) fn end_consult_for_blind(&mut self, now: Instant) -> Option<usize> {
        let c = self.consult.clone()?;
        let line = self.calls().find(|x| x.call_id == c.held).map(|x| x.line)?;
        if !c.completing {
            self.consult = None;
            self.end_call(now, &c.call, "consultation ended for a blind transfer");
            self.detach(&c.call);
        }
        Some(line)
    }

    /// An attended transfer failed (`transfer.rs` asks before recalling): fall back to a blind
    /// transfer, or leave both calls with the operator. False when the usual recall applies.
    pub(super) fn attended_failed(
        &mut self,
        now: Instant,
        call_id: &str,
        t: &Transfer,
        code: Option<u16>,
        reason: &str,
    ) -> bool {
        if t.consult.is_none() {
            return false;
        }
        let consult_up = t
            .consult
            .as_ref()
            .is_some_and(|id| self.calls().any(|x| x.call_id == *id && !x.is_gone()));
        let Some(c) = self
            .consult
            .clone()
            .filter(|c| c.held == call_id && consult_up)
        else {
            self.consult = None;
            return false;
        };
        if t.refer_to.is_some()
            && code.is_some()
            && self.call_policy(&c.held).transfer.fallback_to_blind
        {
            self.fallback_to_blind(now, &c, &format!("attended transfer refused ({reason})"));
            return true;
        }
        if let Some(x) = self.consult.as_mut() {
            x.completing = false;
        }
        if let Some(x) = self.consult.as_mut() {
            // No longer completes itself: the operator decides.
            x.ring_first = false;
            let held = x.held.clone();
            if let Some(call) = self.call_mut(&held) {
                call.disarm(CallTimer::RingFirst);
            }
        }
        let words = format!("{reason}; both calls are still yours: complete, swap or cancel");
        self.emit(Event::Transfer {
            line: self.line_of(call_id),
            call_id: call_id.to_string(),
            kind: t.kind,
            mechanism: t.mechanism,
            status: TransferStatus::Failed,
            target: t.target.clone(),
            status_code: code,
            reason: Some(words),
        });
        true
    }

    /// Something happened to call `call_id`: if it is one of the consultation's, the
    /// consultation follows — it ended or lost its caller, or (ring-first) the target rings
    /// or answered.
    pub(super) fn consult_follows(&mut self, now: Instant, call_id: &str) {
        let Some(c) = self
            .consult
            .clone()
            .filter(|c| c.held == call_id || c.call == call_id)
        else {
            return;
        };
        if c.completing {
            // The transfer machine reports from here on; if the caller's call ended under
            // it (a hold never answered, a BYE), nothing is left to complete.
            let abandoned = self
                .calls()
                .find(|x| x.call_id == c.held)
                .is_none_or(|x| x.is_gone() && x.transfer.is_none());
            if abandoned {
                self.consult = None;
            }
            return;
        }
        let gone = |id: &str| {
            self.calls()
                .find(|x| x.call_id == id)
                .is_none_or(|x| x.is_gone())
        };
        if gone(&c.held) {
            self.consult = None;
            if c.ring_first {
                // Nobody is left to hand over: stop ringing the target.
                self.end_call(now, &c.call, "the caller hung up");
                self.detach(&c.call);
                self.consult_event(&c, TransferStatus::Failed, None, "the caller hung up");
                return;
            }
            self.consult_event(
                &c,
                TransferStatus::Failed,
                None,
                "the caller hung up during the transfer",
            );
            return;
        }
        if !gone(&c.call) {
            if c.ring_first {
                self.ring_first_progress(now, &c);
            }
            return;
        }
        self.consult = None;
        let (code, answered) = self
            .calls()
            .find(|x| x.call_id == c.call)
            .map_or((None, false), |x| (x.end_status(), x.was_answered()));
        let reason = match code {
            _ if answered => "the target hung up the consultation".to_string(),
            Some(code) => super::transfer::failure_words(code, ""),
            None => "the consultation call failed".to_string(),
        };
        self.consult_event(&c, TransferStatus::Failed, code, &reason);
        self.recall_held(now, &c, &reason);
    }

    /// Ring-first: the target rings (reported once) or answered (joined at once).
    fn ring_first_progress(&mut self, now: Instant, c: &Consult) {
        let Some(call) = self.calls().find(|x| x.call_id == c.call) else {
            return;
        };
        if call.is_established() {
            return self.join_ring_first(now, c);
        }
        let ringing = matches!(
            call.state(),
            super::CallState::Ringing | super::CallState::Early
        );
        let line = line_no(call.line);
        if ringing && !c.rang {
            if let Some(x) = self.consult.as_mut() {
                x.rang = true;
            }
            let words = format!("{} rings on line {line}", c.target);
            self.consult_event(c, TransferStatus::Ringing, Some(180), &words);
        }
    }

    /// Ring-first: the target answered; REFER the caller with Replaces (the caller's phone
    /// announced it), else follow `attended_fallback`.
    fn join_ring_first(&mut self, now: Instant, c: &Consult) {
        let supports = self
            .calls()
            .find(|x| x.call_id == c.held)
            .is_some_and(|x| x.remote_replaces);
        let refer_to = self
            .calls()
            .find(|x| x.call_id == c.call)
            .and_then(|x| x.dialog.as_ref())
            .map(|d| {
                refer::refer_to_with_replaces(&d.remote_target, &Replaces::from_dialog(d, false))
            });
        let why = "the caller's phone does not announce attended transfer (Replaces)";
        let refer_to = match refer_to {
            Some(r) if supports => r,
            _ if self.call_policy(&c.held).transfer.fallback_to_blind => {
                return self.fallback_to_blind(now, c, why);
            }
            _ => return self.ring_first_to_operator(c, why),
        };
        if let Some(x) = self.consult.as_mut() {
            x.completing = true;
        }
        let transfer = Transfer::ring_first_join(c.target.clone(), refer_to, c.call.clone());
        if self.begin_transfer(now, &c.held, transfer) {
            let words = "the target answered: connecting the caller";
            self.transfer_event(&c.held, TransferStatus::Trying, None, Some(words));
        } else {
            self.ring_first_to_operator(c, "the caller's call is busy");
        }
    }

    /// Ring-first cannot join by itself: the target (answered) and the held caller stay with
    /// the operator as an ordinary consultation.
    fn ring_first_to_operator(&mut self, c: &Consult, why: &str) {
        if let Some(x) = self.consult.as_mut() {
            x.completing = false;
            x.ring_first = false;
            let held = x.held.clone();
            if let Some(call) = self.call_mut(&held) {
                call.disarm(CallTimer::RingFirst);
            }
        }
        let words = format!("{why}; both calls are still yours: complete, swap or cancel");
        self.consult_event(c, TransferStatus::Failed, None, &words);
    }

    /// Ring-first: the target did not answer within `blind_timeout` (the held call's
    /// [`CallTimer::RingFirst`]): cancel its call and resume the caller. Nothing while the
    /// join's REFER is under way.
    pub(super) fn on_ring_first_timer(&mut self, now: Instant, held: &str) {
        let Some(c) = self
            .consult
            .clone()
            .filter(|c| c.held == held && c.ring_first && !c.completing)
        else {
            return;
        };
        let answered = self
            .calls()
            .any(|x| x.call_id == c.call && x.is_established());
        if answered {
            return; // its `Answered` happening joins it
        }
        self.consult = None;
        let reason = super::transfer::NO_ANSWER;
        self.end_call(now, &c.call, reason);
        self.detach(&c.call);
        self.consult_event(&c, TransferStatus::Failed, None, reason);
        self.recall_held(now, &c, reason);
    }

    /// Ends the consultation and blind-transfers the held caller to the target instead
    /// (REFER watched by NOTIFY, or immediate when so configured).
    fn fallback_to_blind(&mut self, now: Instant, c: &Consult, why: &str) {
        self.consult = None;
        self.end_call(now, &c.call, "handing the caller over to the target");
        self.detach(&c.call);
        let words = if c.ring_first {
            format!(
                "{why}: handing the caller over by REFER instead; {} rings again",
                c.target
            )
        } else {
            let words = format!("{why}: falling back to a blind transfer to {}", c.target);
            self.consult_event(c, TransferStatus::Failed, None, &words);
            words
        };
        let mechanism = match self.call_policy(&c.held).transfer.blind {
            BlindMode::Immediate => TransferMechanism::Immediate,
            BlindMode::RingFirst | BlindMode::Notify => TransferMechanism::Notify,
        };
        if self.begin_transfer(now, &c.held, Transfer::blind(c.target.clone(), mechanism)) {
            self.transfer_event(&c.held, TransferStatus::Requested, None, Some(&words));
        }
    }

    /// Brings the held caller back: `recalled` event, resumed, its line selected.
    fn recall_held(&mut self, now: Instant, c: &Consult, why: &str) {
        let Some(call) = self.calls().find(|x| x.call_id == c.held && !x.is_gone()) else {
            return;
        };
        let line = call.line;
        let words = format!(
            "{why}: reconnecting, the call is back on line {}",
            line_no(line)
        );
        self.consult_event(c, TransferStatus::Recalled, None, &words);
        self.hold_others(now, line);
        self.set_selected(line);
        // The hold of `consult` may still be in flight (a target busy at once): resume after it.
        self.resume_when_settled(now, &c.held);
    }

    /// A `transfer` event about the held call of consultation `c` (attended, or blind
    /// ring-first).
    fn consult_event(
        &mut self,
        c: &Consult,
        status: TransferStatus,
        code: Option<u16>,
        reason: &str,
    ) {
        self.emit(Event::Transfer {
            line: self.line_of(&c.held),
            call_id: c.held.clone(),
            kind: c.kind(),
            mechanism: c.mechanism(),
            status,
            target: c.target.clone(),
            status_code: code,
            reason: Some(reason.to_string()),
        });
    }

    /// The operator's number of the line `call_id` is (or was) on.
    fn line_of(&self, call_id: &str) -> super::LineNo {
        self.calls()
            .find(|x| x.call_id == call_id)
            .map_or(0, |x| line_no(x.line))
    }

    /// Moves a call the operator was told has ended off its line, so the line is free now.
    pub(super) fn detach(&mut self, call_id: &str) {
        let slot = self.lines.iter_mut().find(|s| {
            s.as_ref()
                .is_some_and(|c| c.call_id == call_id && c.is_gone())
        });
        if let Some(call) = slot.and_then(Option::take) {
            self.detached.push(call);
        }
    }
}

/// True when `msg` announces support for Replaces (`Supported` or `Require: replaces`).
pub(super) fn announces_replaces(msg: &Message) -> bool {
    msg.headers("Supported")
        .chain(msg.headers("Require"))
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("replaces"))
}
