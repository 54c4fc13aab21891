//! `pickup <ext>`: answering a call that rings at another extension.
//!
//! Two ways, chosen per account ([`PickupMethod`]):
//!
//! ```text
//!  code:    dial the PBX's feature code (e.g. *8201) on a free line ─► a normal call
//!  dialog:  the busy lamp of <ext> already knows its calls ──┐
//!           else SUBSCRIBE Event: dialog (a short fetch) ────┴─► an early dialog it received?
//!              ├─ yes, with Call-ID and tags: INVITE with Replaces: …;early-only ─► connected
//!              ├─ yes, but the PBX hides its identity ─┐
//!              ├─ no: "nothing is ringing at <ext>"    ├─► the feature code when one is set,
//!              └─ SUBSCRIBE refused, no state in 4 s ──┘   else the reason in plain words
//! ```
//!
//! The Replaces header names the dialog as its originator knows it: RFC 3891 §3 lets only
//! the UA that sent the INVITE replace an early dialog (§7.1: "replacing an early dialog at
//! the originator"). The dialog-info describes the dialog from the ringing extension's side
//! (RFC 4235 §4.1.6: `local-tag` is the extension's, `remote-tag` the caller's), so
//! `to-tag` = `remote-tag`, `from-tag` = `local-tag`, and the INVITE goes to the caller
//! (`<remote><target>` or `<identity>`), as Snom and Yealink phones do for BLF pickup.

use std::time::{Duration, Instant};

use super::dialog_info::DialogEntry;
use super::msg::SipUri;
use super::refer::Replaces;
use super::subscription::Purpose;
use super::target::Target;
use super::UserAgent;

/// How long a pickup waits for the PBX to report the extension's calls.
const STATE_WAIT: Duration = Duration::from_secs(4);

/// How `pickup` works for the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PickupMethod {
    /// Dial the PBX's pickup feature code.
    Code,
    /// Find the ringing dialog through the dialog event package and replace it; falls back to
    /// the feature code, when one is configured, where the PBX does not tell enough.
    #[default]
    Dialog,
}

/// The account's pickup settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PickupConfig {
    /// Which way.
    pub method: PickupMethod,
    /// The feature code with `{ext}` where the extension goes, e.g. `*8{ext}`.
    pub code: Option<String>,
}

impl UserAgent {
    /// `pickup <ext>`.
    pub(super) fn pickup(&mut self, now: Instant, ext: &str) {
        let ext = ext.trim();
        if ext.is_empty() {
            return self.error("pickup needs an extension");
        }
        if let Err(e) = Target::parse(ext, &self.account(self.default_account).domain) {
            return self.error(format!("pickup: {e}"));
        }
        if self.free_line(self.selected).is_none() {
            return self.error("both lines are busy: hang up or transfer a call first");
        }
        let config = self.default_policy().pickup.clone();
        match (config.method, config.code) {
            (PickupMethod::Code, Some(code)) => self.pickup_by_code(now, ext, &code),
            (PickupMethod::Code, None) => {
                self.error("pickup: no pickup_code is configured for this account")
            }
            (PickupMethod::Dialog, _) => {
                let lamp = self
                    .subscriptions
                    .iter()
                    .find(|s| s.purpose == Purpose::Blf && s.ext == ext && s.known)
                    .map(|s| s.dialogs.clone());
                match lamp {
                    Some(dialogs) => self.pickup_from(now, ext, &dialogs),
                    None => self.subscribe(
                        now,
                        ext,
                        Purpose::Pickup {
                            give_up: Some(now + STATE_WAIT),
                        },
                    ),
                }
            }
        }
    }

    /// The pickup subscription `index` has the extension's state: end it and act on it.
    pub(super) fn pickup_decide(&mut self, now: Instant, index: usize) {
        let Some(sub) = self.subscriptions.get(index) else {
            return;
        };
        let (ext, dialogs) = (sub.ext.clone(), sub.dialogs.clone());
        self.unsubscribe(now, index);
        self.pickup_from(now, &ext, &dialogs);
    }

    /// Picks up the call ringing among `dialogs` of `ext`, or says why not.
    fn pickup_from(&mut self, now: Instant, ext: &str, dialogs: &[DialogEntry]) {
        let ringing: Vec<&DialogEntry> = dialogs.iter().filter(|d| d.is_ringing_here()).collect();
        if ringing.is_empty() {
            return self.error(format!("pickup {ext}: nothing is ringing at {ext}"));
        }
        let Some((replaces, remote)) = ringing
            .iter()
            .find_map(|d| pickup_replaces(d).map(|r| (r, d.remote_uri.clone())))
        else {
            return self.pickup_fallback(
                now,
                ext,
                "the PBX shows a call ringing there but not which one (no call-id and tags in \
                 its dialog-info)",
            );
        };
        let ext_uri = match self.target_uri(ext) {
            Ok(uri) => uri,
            Err(e) => return self.error(e),
        };
        let uri = remote
            .filter(|u| SipUri::parse(u).is_some() && self.first_hop(u).is_some())
            .unwrap_or(ext_uri);
        let headers = vec![("Replaces", replaces.to_header_value())];
        match self.place_call(now, &uri, headers) {
            Ok(call_id) => self.pickups.push((call_id, ext.to_string())),
            Err(e) => self.error(format!("pickup {ext}: {e}")),
        }
    }

    /// The dialog way cannot work for `ext` (subscription `index`, now ended): the feature
    /// code when one is configured, else the reason.
    pub(super) fn pickup_not_possible(
        &mut self,
        now: Instant,
        index: usize,
        ext: &str,
        reason: &str,
    ) {
        self.unsubscribe(now, index);
        self.pickup_fallback(now, ext, reason);
    }

    fn pickup_fallback(&mut self, now: Instant, ext: &str, reason: &str) {
        match self.default_policy().pickup.code.clone() {
            Some(code) => {
                tracing::info!(
                    ext,
                    reason,
                    "pickup by dialog not possible; dialling the code"
                );
                self.pickup_by_code(now, ext, &code);
            }
            None => self.error(format!("pickup {ext}: {reason}")),
        }
    }

    /// Dials the feature code for `ext` (its digits: `20-1` and `sip:201@pbx` key `201`).
    fn pickup_by_code(&mut self, now: Instant, ext: &str, code: &str) {
        let digits = Target::parse(ext, &self.account(self.default_account).domain)
            .ok()
            .and_then(|t| t.digits());
        let Some(digits) = digits else {
            return self.error(format!(
                "pickup {ext}: the pickup code needs an extension number (digits, * and #)"
            ));
        };
        let number = code.replace("{ext}", &digits);
        let placed = self
            .target_uri(&number)
            .and_then(|uri| self.place_call(now, &uri, Vec::new()));
        match placed {
            Ok(call_id) => self.pickups.push((call_id, ext.to_string())),
            Err(e) => self.error(format!("pickup {ext}: {e}")),
        }
    }

    /// The operator's words when the pickup call `call_id` failed with `code`; `None` when it
    /// is not a pickup.
    pub(super) fn pickup_failure_words(&mut self, call_id: &str, code: u16) -> Option<String> {
        let at = self.pickups.iter().position(|(id, _)| id == call_id)?;
        let (_, ext) = self.pickups.swap_remove(at);
        Some(match code {
            481 | 404 => format!("nothing is ringing at {ext} any more"),
            486 | 487 => format!("the call at {ext} was answered or ended first"),
            401 | 403 | 407 | 603 => format!("pickup refused ({code})"),
            _ => format!("pickup of {ext} failed ({code})"),
        })
    }

    /// Forgets pickups whose calls are over.
    pub(super) fn forget_pickups(&mut self) {
        let live: Vec<String> = self
            .calls()
            .filter(|c| !c.is_gone())
            .map(|c| c.call_id.clone())
            .collect();
        self.pickups.retain(|(id, _)| live.contains(id));
    }
}

/// The Replaces for picking up `dialog`, seen from the ringing extension: to its
/// originator, `to-tag` = the caller's tag (`remote-tag`), `from-tag` = the extension's
/// (`local-tag`), early only. `None` when the notifier left out the Call-ID or a tag.
pub(super) fn pickup_replaces(dialog: &DialogEntry) -> Option<Replaces> {
    Some(Replaces {
        call_id: dialog.call_id.clone()?,
        to_tag: dialog.remote_tag.clone()?,
        from_tag: dialog.local_tag.clone()?,
        early_only: true,
    })
}
