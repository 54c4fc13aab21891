//! The `[transfer]` section: how blind transfers are carried out (safe, notify, immediate),
//! whether we let ourselves be transferred, and what a favourite's key does, with its checks.

use serde::Deserialize;

use super::Problem;

/// Bounds for `blind_timeout`, in seconds.
const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 5..=300;

/// How a blind transfer is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BlindTransfer {
    /// Hold the caller, ring the target from a free line, and join them (REFER with
    /// Replaces) only once the target answered; bring the call back otherwise. Works behind
    /// a B2BUA PBX. With no free line, as `Notify`.
    #[default]
    Safe,
    /// REFER, keep the call until the NOTIFYs report the target's answer; bring it back if
    /// the transfer fails (a PBX that takes the REFER over drops the caller instead).
    Notify,
    /// Drop the call as soon as the transferee accepts the REFER.
    Immediate,
}

/// What to do when the far end transfers one of our calls (sends REFER).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AcceptRefer {
    /// Call the target and hand the call over (`"accept"`), the default.
    #[default]
    Accept,
    /// Show the request and wait for the operator's `answer` (go) or `decline` (stay);
    /// refused after 20 s without a word (`"ask"`).
    Ask,
    /// Refuse to be transferred (`"reject"`: 603 Decline).
    Reject,
}

/// What to do when an attended transfer cannot use Replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttendedFallback {
    /// End the consultation and transfer the caller blind to the target (`"blind"`), the
    /// default.
    #[default]
    Blind,
    /// Report the failure and leave both calls with the operator (`"none"`).
    None,
}

/// What a favourite's key does with a call selected (`favourite_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FavouriteAction {
    /// A blind transfer, carried out as `blind` says (`"blind"`), the default.
    #[default]
    Blind,
    /// Consult the favourite first: an attended transfer (`"consult"`).
    Consult,
}

/// The `[transfer]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Transfer {
    /// `"safe"`, `"notify"` or `"immediate"`. Default `"safe"`.
    pub blind: BlindTransfer,
    /// Seconds a blind transfer (`safe` or `notify`) waits for the target to answer before the
    /// call comes back, 5 to 300. Default 30.
    pub blind_timeout: u32,
    /// `"accept"`, `"ask"` or `"reject"`. Default `"accept"`.
    pub accept_refer: AcceptRefer,
    /// `"blind"` or `"none"`. Default `"blind"`.
    pub attended_fallback: AttendedFallback,
    /// `"blind"` or `"consult"`: what a favourite's key does with a call selected. Default
    /// `"blind"`.
    pub favourite_action: FavouriteAction,
}

impl Default for Transfer {
    fn default() -> Self {
        Self {
            blind: BlindTransfer::Safe,
            blind_timeout: 30,
            accept_refer: AcceptRefer::Accept,
            attended_fallback: AttendedFallback::Blind,
            favourite_action: FavouriteAction::Blind,
        }
    }
}

impl Transfer {
    /// Problems within `[transfer]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        if !TIMEOUT_RANGE.contains(&self.blind_timeout) {
            out.push(Problem::new(
                "transfer.blind_timeout",
                format!(
                    "{} seconds is out of range: use {} to {}",
                    self.blind_timeout,
                    TIMEOUT_RANGE.start(),
                    TIMEOUT_RANGE.end()
                ),
            ));
        }
    }
}
