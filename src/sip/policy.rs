//! What each account's PBX expects beyond registration: how it transfers (REFER or feature
//! codes, `Referred-By`), picks up and parks calls, whether its calls use SRTP, and how calls
//! for it are answered (auto-answer, the do-not-disturb status and codes).
//!
//! Every [`Account`](super::Account) carries its own [`Policy`], built by the driver from its
//! `[[account]]` keys and the shared `[transfer]` and `[wrapup]` sections. The user agent reads
//! the policy of the account a call belongs to; what starts a new call (pickup, unpark, a
//! do-not-disturb code) reads the account new calls go out through.

use super::answer_policy::AnswerConfig;
use super::attendant::AttendantConfig;
use super::pbx_transfer::PbxCodes;
use super::pickup::PickupConfig;
use super::sdes::SrtpConfig;
use super::transfer::TransferConfig;
use super::UserAgent;

/// One account's behaviour towards its PBX.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// How transfers are carried out.
    pub transfer: TransferConfig,
    /// How `pickup` works.
    pub pickup: PickupConfig,
    /// SRTP policy and key source.
    pub srtp: SrtpConfig,
    /// Favourites (one key each) and call park.
    pub attendant: AttendantConfig,
    /// Do not disturb, auto-answer and wrap-up.
    pub answer: AnswerConfig,
}

impl UserAgent {
    /// The policy of account `index` (the first for an index out of range).
    pub(super) fn policy(&self, index: usize) -> &Policy {
        &self.account(index).policy
    }

    /// The policy of the account the call `call_id` belongs to (the first's without such a
    /// call).
    pub(super) fn call_policy(&self, call_id: &str) -> &Policy {
        self.policy(self.call_account(call_id))
    }

    /// The policy of the account the call on line `line` belongs to; with no call there,
    /// the account new calls go out through.
    pub(super) fn line_policy(&self, line: usize) -> &Policy {
        self.policy(self.line_account(line))
    }

    /// The feature codes that transfer the selected line's call, when its PBX transfers by
    /// them instead of REFER.
    pub(super) fn selected_pbx_codes(&self) -> Option<PbxCodes> {
        self.line_policy(self.selected).transfer.pbx_codes.clone()
    }

    /// The policy of the account new calls go out through.
    pub(super) fn default_policy(&self) -> &Policy {
        self.policy(self.default_account)
    }

    /// The first account's policy, for what the accounts share (`[wrapup]`, the favourites;
    /// every account's policy holds the same there).
    pub(super) fn shared_policy(&self) -> &Policy {
        self.policy(0)
    }
}
