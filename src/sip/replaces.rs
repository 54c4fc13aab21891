//! Being taken over (RFC 3891 §3): a new INVITE whose `Replaces` header names
//! one of our dialogs. It is how the target of an attended transfer meets the
//! transferee, and how a picked-up call reaches the one who picked it up.
//!
//! ```text
//!  INVITE + Replaces(call-id; to-tag = ours; from-tag = theirs)
//!     │ no such dialog ─────────────────────────────► 481
//!     │ that call already ended ────────────────────► 603
//!     │ confirmed, but `early-only` ────────────────► 486
//!     │ early, and we did not send its INVITE ──────► 481
//!     ▼
//!  answered at once on the replaced call's line; the replaced call ends
//!  (BYE when confirmed, CANCEL when it was our early outgoing call)
//! ```
//!
//! The operator sees an `incoming` event carrying `replaces` (the old
//! Call-ID) and `referred_by` (who arranged it), then the new call connected
//! on the same line.

use std::time::Instant;

use super::dialog::Role;
use super::msg::{Message, NameAddr};
use super::refer::Replaces;
use super::UserAgent;

/// Why an INVITE with Replaces is refused: status code and Warning text.
pub(super) type Refusal = (u16, String);

impl UserAgent {
    /// Which of our calls `req` replaces, with its line index: `Ok(None)` when it has no
    /// Replaces header, `Err` with the status to answer when it cannot be honoured.
    pub(super) fn replaced_call(&self, req: &Message) -> Result<Option<(String, usize)>, Refusal> {
        let Some(value) = req.header("Replaces") else {
            return Ok(None);
        };
        let replaces = Replaces::parse(value).map_err(|e| (400, e.to_string()))?;
        let matching = |gone: bool| {
            self.lines
                .iter()
                .flatten()
                .chain(&self.detached)
                .filter(|c| c.is_gone() == gone)
                .find(|c| {
                    c.dialog
                        .as_ref()
                        .is_some_and(|d| replaces.matches(&d.call_id, &d.local_tag, &d.remote_tag))
                })
        };
        let Some(call) = matching(false) else {
            return Err(match matching(true) {
                Some(_) => (603, "the replaced call has already ended".to_string()),
                None => (481, "no dialog matches Replaces".to_string()),
            });
        };
        let early = !call.is_established();
        if !early && replaces.early_only {
            return Err((486, "the replaced call is already answered".to_string()));
        }
        if early && call.role == Role::Callee {
            return Err((481, "only our own early calls can be replaced".to_string()));
        }
        Ok(Some((call.call_id.clone(), call.line)))
    }

    /// Ends `old` because `req` replaces it, and frees its line for the new call.
    pub(super) fn end_replaced(&mut self, now: Instant, old: &str, req: &Message) {
        let who = req
            .from
            .display
            .clone()
            .unwrap_or_else(|| req.from.uri.clone());
        self.end_call(now, old, &format!("replaced by the call from {who}"));
        self.detach(old);
    }
}

/// The URI in a Referred-By value (`"Alice" <sip:alice@pbx>;cid=…`), if it parses.
pub(super) fn referred_by_uri(value: &str) -> Option<String> {
    NameAddr::parse(value).map(|na| na.uri)
}
