//! INVITE failover (RFC 3263 §4.3): a new call sent to the registration's server (registrar or
//! outbound proxy) that gets no answer (timer B) or a 503 goes to the next target of its DNS answer
//! (a new branch and CSeq, the same Call-ID and From tag), before the operator is told it
//! failed. The registration is left where it is: it moves by its own rules (`failover.rs`).
//!
//! ```text
//!   INVITE ─► target k ── timer B / 503, still Dialing ──► target k+1 exists? ─► INVITE there
//!                                                                   └─ no ─► the call fails
//! ```
//!
//! Only calls of the registering account fail over, through the server its registration uses
//! (the outbound proxy when there is one, located by DNS like the registrar); trunks have one
//! address.

use super::*;

impl UserAgent {
    /// The initial INVITE of `call_id` failed at its first hop (`why`: for the log). When the
    /// call still dials through the registration's server and another target of its DNS answer
    /// is left after the one it used, the INVITE goes there and true is returned; otherwise false (the caller
    /// ends the call as before).
    pub(in crate::sip::call) fn invite_fail_over(
        &mut self,
        now: Instant,
        call_id: &str,
        why: &str,
    ) -> bool {
        if !self.cfg.account.register {
            return false;
        }
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return false;
        };
        if call.trunk.is_some() || call.finalised || !matches!(call.phase, Phase::Dialing) {
            return false;
        }
        let Some(next) = call
            .first_hop
            .and_then(|failed| self.registrar_targets.after(failed))
        else {
            return false;
        };
        tracing::warn!(%call_id, failed = ?call.first_hop, %next, %why, "INVITE target failed; trying the next one");
        let Some(call) = self.call_mut(call_id) else {
            return false;
        };
        call.first_hop = Some(next);
        call.dialog = None;
        self.send_invite(now, call_id, None);
        true
    }
}
