//! Happenings: what a call reports about itself (alerting, answered, a hold settled, ended,
//! its transfer over) for the features built on calls to react to — the transfer machine, a
//! consultation, the conference, a REFER we accepted. Calls push them as they happen; the
//! user agent drains the queue at ONE point, [`UserAgent::settle`], after every input
//! (datagram, timeout, command, media timeout, connection news), so no entry point can
//! forget a feature and no feature re-scans every call after every input.
//!
//! ```text
//!   input ─► call code ─► happen(Happening) ─► queue ─► settle(): react … until empty
//!                                                          └─► collect_finished()
//! ```
//!
//! Must not: send, emit or change calls itself; the reactions in the features' own files do.

use std::collections::VecDeque;
use std::time::Instant;

use super::UserAgent;

/// Something that happened to one call (by Call-ID).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Happening {
    /// A call we placed rings or plays early media (a provisional response changed its state).
    Alerting(String),
    /// The call was answered (the 2xx to our INVITE, or our 200 to theirs).
    Answered(String),
    /// A hold (`held`) or resume re-INVITE of ours got its final answer.
    HoldSettled {
        /// The call.
        call_id: String,
        /// The call is now held by us.
        held: bool,
    },
    /// The operator was told the call ended.
    CallEnded(String),
    /// The call's transfer machine finished (its outcome told, or nobody left to tell).
    TransferOver(String),
}

/// The queue of happenings not yet reacted to.
pub(super) type Happenings = VecDeque<Happening>;

impl UserAgent {
    /// Records a happening for [`Self::settle`].
    pub(super) fn happen(&mut self, happening: Happening) {
        self.happenings.push_back(happening);
    }

    /// After every input: lets the features react to what happened, until nothing more does
    /// (a reaction may end a call, which happens in turn), then forgets finished transactions
    /// and calls. Each reaction changes a call for good (ended, answered, settled), so the
    /// queue runs dry.
    pub(super) fn settle(&mut self, now: Instant) {
        while let Some(happening) = self.happenings.pop_front() {
            tracing::trace!(?happening, "reacting");
            match happening {
                Happening::Alerting(call_id) => {
                    self.referral_progress(now, &call_id);
                    self.consult_follows(now, &call_id);
                }
                Happening::Answered(call_id) => {
                    self.referral_progress(now, &call_id);
                    self.consult_follows(now, &call_id);
                    self.answered_by_policy(now, &call_id);
                }
                Happening::HoldSettled { call_id, held } => {
                    self.hold_settled(now, &call_id, held);
                }
                Happening::CallEnded(call_id) => {
                    self.refer_ask_orphaned(now, &call_id);
                    self.referred_call_ended(&call_id);
                    self.referral_progress(now, &call_id);
                    self.consult_follows(now, &call_id);
                    self.conference_member_ended(&call_id);
                    self.ended_by_policy(now, &call_id);
                }
                Happening::TransferOver(call_id) => self.consult_follows(now, &call_id),
            }
        }
        self.collect_finished();
    }
}
