//! Transfer by PBX feature codes (`transfer_method = "dtmf"`): for PBXes that transfer when
//! the operator keys a code during the call (Asterisk's `#1` blind and `*2` attended transfer)
//! instead of honouring REFER. The codes go as DTMF (RFC 4733, or SIP INFO when configured).
//!
//! ```text
//!  transfer <n>: DTMF blind code with n ─► hang up once the digits are out ─► succeeded
//!  consult <n>:  DTMF attended code with n (the PBX holds the caller and calls n on this call)
//!     ├─ complete: hang up ─► the PBX joins the caller with n ─► succeeded
//!     └─ cancel:   DTMF cancel code ─► the PBX drops n and returns the caller ─► recalled
//! ```
//!
//! Nothing comes back from the PBX but its hang-up: a PBX that takes the call over ends the
//! operator's leg once it has the code (Asterisk about 0.8 s after the last digit, before our
//! own planned BYE). A BYE after the last digit went out is therefore the hand-over succeeding
//! (`succeeded`, "the PBX took the call"); a BYE before it is the caller hanging up. A failure
//! after the hand-over is the PBX's to announce (it usually returns the caller to the operator).

use std::time::{Duration, Instant};

use super::api::{Event, TransferKind, TransferStatus};
use super::call::CallTimer;
use super::target::Target;
use super::{line_no, UserAgent};

/// How long one DTMF digit takes on the wire (tone and gap), with room to spare.
const PER_DIGIT: Duration = Duration::from_millis(200);
/// Extra wait after the last digit before hanging up, so the PBX has heard it.
const SETTLE: Duration = Duration::from_millis(800);
/// From the start of one RFC 4733 digit to the next as the media engine keys them (100 ms of
/// tone, 60 ms of gap: `media::dtmf`); the last digit starts (n − 1) of these after the first.
const DIGIT_SPACING: Duration = Duration::from_millis(160);

/// The account's feature codes; `{target}` stands for the number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PbxCodes {
    /// Blind transfer, e.g. `#1{target}#`.
    pub blind: String,
    /// Attended transfer, e.g. `*2{target}#`.
    pub attended: String,
    /// Back to the caller during an attended transfer, e.g. `*1`.
    pub cancel: String,
}

/// A transfer the PBX carries out on one of our calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PbxTransfer {
    /// The number keyed after the code.
    target: String,
    /// Attended (`consult`): the operator talks to the target on this call. Blind: the call
    /// is hung up when its [`CallTimer::PbxHangup`] expires (the digits are out by then).
    attended: bool,
    /// When the last digit of the code starts to go out: a hang-up from then on is the PBX
    /// taking the call.
    last_digit_at: Instant,
}

impl UserAgent {
    /// `transfer <n>` with feature codes: key the blind code, then hang up.
    pub(super) fn pbx_blind(&mut self, now: Instant, codes: &PbxCodes, typed: &str) {
        let Some((call_id, target, digits)) = self.pbx_start(typed, &codes.blind) else {
            return;
        };
        self.dtmf(now, &digits);
        let count = u32::try_from(digits.len()).unwrap_or(u32::MAX);
        let wait = PER_DIGIT * count + SETTLE;
        if let Some(call) = self.call_mut(&call_id) {
            call.pbx = Some(PbxTransfer {
                target: target.clone(),
                attended: false,
                last_digit_at: now + DIGIT_SPACING * count.saturating_sub(1),
            });
            call.arm(CallTimer::PbxHangup, now + wait);
        }
        let words = format!("keying the PBX's transfer code {digits}");
        self.pbx_event(
            &call_id,
            TransferKind::Blind,
            TransferStatus::Requested,
            &target,
            &words,
        );
    }

    /// `consult <n>` with feature codes: key the attended code; the PBX calls the target.
    pub(super) fn pbx_consult(&mut self, now: Instant, codes: &PbxCodes, typed: &str) {
        let Some((call_id, target, digits)) = self.pbx_start(typed, &codes.attended) else {
            return;
        };
        self.dtmf(now, &digits);
        let count = u32::try_from(digits.len()).unwrap_or(u32::MAX);
        if let Some(call) = self.call_mut(&call_id) {
            call.pbx = Some(PbxTransfer {
                target: target.clone(),
                attended: true,
                last_digit_at: now + DIGIT_SPACING * count.saturating_sub(1),
            });
        }
        let words =
            format!("keyed {digits}: the PBX calls {target}; talk, then complete or cancel");
        self.pbx_event(
            &call_id,
            TransferKind::Attended,
            TransferStatus::Requested,
            &target,
            &words,
        );
    }

    /// `complete` with feature codes: hang up, the PBX joins the caller with the target.
    pub(super) fn pbx_complete(&mut self, now: Instant) {
        let Some((call_id, target)) = self.pbx_consultation() else {
            return self.error("nothing to complete: start with consult <number>");
        };
        if let Some(call) = self.call_mut(&call_id) {
            call.pbx = None;
        }
        let words = format!("handed to the PBX, which joins the caller with {target}");
        self.pbx_event(
            &call_id,
            TransferKind::Attended,
            TransferStatus::Succeeded,
            &target,
            &words,
        );
        self.end_call(now, &call_id, &words);
    }

    /// `cancel` with feature codes: key the cancel code; the PBX returns to the caller.
    pub(super) fn pbx_cancel(&mut self, now: Instant, codes: &PbxCodes) {
        let Some((call_id, target)) = self.pbx_consultation() else {
            return self.error("no consultation to cancel");
        };
        let selected = self.lines[self.selected]
            .as_ref()
            .is_some_and(|c| c.call_id == call_id);
        if !selected {
            return self.error("select the consultation's line first");
        }
        self.dtmf(now, &codes.cancel);
        if let Some(call) = self.call_mut(&call_id) {
            call.pbx = None;
        }
        let words = format!(
            "keyed {}: the PBX returns to the caller on this call",
            codes.cancel
        );
        self.pbx_event(
            &call_id,
            TransferKind::Attended,
            TransferStatus::Recalled,
            &target,
            &words,
        );
    }

    /// A blind PBX transfer's digits are out ([`CallTimer::PbxHangup`]): hang up.
    pub(super) fn on_pbx_timer(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let Some(t) = call.pbx.clone().filter(|t| !t.attended) else {
            return;
        };
        if !call.info_queue.is_empty() || call.info_in_flight.is_some() {
            // Digits still going out as SIP INFO: wait for them.
            if let Some(call) = self.call_mut(call_id) {
                call.arm(CallTimer::PbxHangup, now + PER_DIGIT);
            }
            return;
        }
        let words = format!(
            "handed to the PBX, which transfers the caller to {}",
            t.target
        );
        self.blind_pbx_outcome(call_id, &t.target, TransferStatus::Succeeded, &words);
        self.end_call(now, call_id, &words);
    }

    /// The far end hung up call `call_id`. During a blind PBX transfer whose code is out, that
    /// is the PBX taking the call: the transfer succeeded, and the call ends with the words
    /// returned. Before the code is out, the transfer failed: the caller hung up.
    pub(super) fn pbx_far_end_hung_up(&mut self, now: Instant, call_id: &str) -> Option<String> {
        let call = self.calls().find(|c| c.call_id == call_id)?;
        let t = call.pbx.clone().filter(|t| !t.attended)?;
        if call.info_queue.is_empty() && now >= t.last_digit_at {
            let words = format!(
                "the PBX took the call after the transfer code and transfers the caller to {}",
                t.target
            );
            self.blind_pbx_outcome(call_id, &t.target, TransferStatus::Succeeded, &words);
            Some(format!("handed to the PBX for {}", t.target))
        } else {
            let words = "the caller hung up before the transfer code was out";
            self.blind_pbx_outcome(call_id, &t.target, TransferStatus::Failed, words);
            None
        }
    }

    /// A blind PBX transfer on `call_id` is over: the call forgets it, the operator is told.
    fn blind_pbx_outcome(
        &mut self,
        call_id: &str,
        target: &str,
        status: TransferStatus,
        words: &str,
    ) {
        if let Some(call) = self.call_mut(call_id) {
            call.pbx = None;
            call.disarm(CallTimer::PbxHangup);
        }
        self.pbx_event(call_id, TransferKind::Blind, status, target, words);
    }

    /// The selected talking call, the number and the digits to key for `code`.
    fn pbx_start(&mut self, typed: &str, code: &str) -> Option<(String, String, String)> {
        let domain = &self.account(self.line_account(self.selected)).domain;
        let target = match dtmf_number(typed, domain) {
            Ok(n) => n,
            Err(e) => {
                self.error(e);
                return None;
            }
        };
        let call = self.lines[self.selected].as_ref()?;
        if !call.is_established() || call.local_hold() {
            self.error(format!(
                "the call on line {} is not connected: transfer it while talking",
                line_no(self.selected)
            ));
            return None;
        }
        if call.pbx.is_some() {
            self.error("a transfer of this call is already under way");
            return None;
        }
        let call_id = call.call_id.clone();
        Some((call_id, target.clone(), code.replace("{target}", &target)))
    }

    /// The call with an attended PBX transfer (the selected one first), and its target.
    fn pbx_consultation(&self) -> Option<(String, String)> {
        let selected = self.lines[self.selected].iter();
        let others = self.lines.iter().flatten();
        selected.chain(others).find_map(|c| {
            c.pbx
                .as_ref()
                .filter(|t| t.attended)
                .map(|t| (c.call_id.clone(), t.target.clone()))
        })
    }

    fn pbx_event(
        &mut self,
        call_id: &str,
        kind: TransferKind,
        status: TransferStatus,
        target: &str,
        reason: &str,
    ) {
        let Some(line) = self.calls().find(|c| c.call_id == call_id).map(|c| c.line) else {
            return;
        };
        self.emit(Event::Transfer {
            line: line_no(line),
            call_id: call_id.to_string(),
            kind,
            mechanism: None,
            status,
            target: target.to_string(),
            status_code: None,
            reason: Some(reason.to_string()),
        });
    }
}

/// The number to key after a feature code: the digits of the target typed ([`Target::digits`]).
fn dtmf_number(typed: &str, domain: &str) -> Result<String, String> {
    let target = Target::parse(typed, domain).map_err(|e| e.to_string())?;
    target.digits().ok_or_else(|| {
        format!(
            "'{}' cannot be keyed as DTMF: a PBX transfer needs a number (digits, * and #)",
            typed.trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::dtmf_number;
    use super::PbxCodes;
    use crate::sip::api::{CallState, Command, Event, TransferKind, TransferStatus};
    use crate::sip::media_order::MediaOrder;
    use crate::sip::msg::Method;
    use crate::sip::transfer_tests::bye_from_phone;
    use crate::sip::ua_tests::{config, connected_call, Bench, PHONE};
    use std::time::Duration;

    /// A bench whose account transfers by Asterisk's feature codes, in a connected call.
    fn pbx_call() -> Bench {
        pbx_call_with_invite().0
    }

    /// [`pbx_call`] and our INVITE of the call.
    fn pbx_call_with_invite() -> (Bench, crate::sip::msg::Message) {
        let mut cfg = config(false);
        cfg.account.policy.transfer.pbx_codes = Some(PbxCodes {
            blind: "#1{target}#".into(),
            attended: "*2{target}#".into(),
            cancel: "*1".into(),
        });
        let mut b = Bench::with_config(cfg);
        let (invite, _) = connected_call(&mut b);
        b.sent();
        b.events();
        b.media_orders();
        (b, invite)
    }

    /// The call's end reason among `events`.
    fn end_reason(events: &[Event]) -> Option<String> {
        events.iter().find_map(|e| match e {
            Event::Call {
                state: CallState::Ended,
                reason,
                ..
            } => reason.clone(),
            _ => None,
        })
    }

    #[test]
    fn the_pbx_hanging_up_after_the_code_is_the_transfer_succeeding() {
        let (mut b, invite) = pbx_call_with_invite();
        b.cmd(Command::Transfer("200".into()));
        assert_eq!(keyed(&mut b), ["#1200#"]);
        b.events();
        // Asterisk's blindxfer: the operator's leg is hung up 0.8 s after the last digit,
        // before our own BYE (6 digits · 200 ms + 800 ms).
        b.advance(Duration::from_millis(1_600));
        assert!(b.sent().is_empty());
        b.recv(PHONE, &bye_from_phone(&invite, 2));
        let sent = b.sent();
        assert!(sent.iter().all(|m| m.code() == Some(200)), "{sent:#?}");
        let events = b.events();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Transfer { status: TransferStatus::Succeeded, reason: Some(r), .. }
                    if r.contains("the PBX took the call")
            )),
            "{events:#?}"
        );
        assert_eq!(
            end_reason(&events).as_deref(),
            Some("handed to the PBX for 200")
        );
        b.advance(Duration::from_secs(2));
        assert!(b.sent().is_empty(), "no BYE of ours after the PBX's");
        assert!(transfers(&mut b).is_empty(), "one outcome only");
    }

    #[test]
    fn a_hang_up_before_the_code_is_out_is_the_caller_leaving() {
        let (mut b, invite) = pbx_call_with_invite();
        b.cmd(Command::Transfer("200".into()));
        keyed(&mut b);
        b.events();
        b.advance(Duration::from_millis(300));
        b.recv(PHONE, &bye_from_phone(&invite, 2));
        let events = b.events();
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Transfer { status: TransferStatus::Failed, reason: Some(r), .. }
                    if r == "the caller hung up before the transfer code was out"
            )),
            "{events:#?}"
        );
        assert_eq!(end_reason(&events).as_deref(), Some("the far end hung up"));
    }

    fn keyed(b: &mut Bench) -> Vec<String> {
        b.media_orders()
            .into_iter()
            .filter_map(|o| match o {
                MediaOrder::Dtmf { digits, .. } => Some(digits),
                _ => None,
            })
            .collect()
    }

    fn transfers(b: &mut Bench) -> Vec<(TransferKind, TransferStatus)> {
        b.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Transfer { kind, status, .. } => Some((kind, status)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn blind_keys_the_code_then_hangs_up_once_the_digits_are_out() {
        let mut b = pbx_call();
        b.cmd(Command::Transfer("sip:200@pbx".into()));
        assert_eq!(keyed(&mut b), ["#1200#"]);
        assert!(b.sent().is_empty(), "no REFER, no BYE yet");
        assert_eq!(
            transfers(&mut b),
            [(TransferKind::Blind, TransferStatus::Requested)]
        );
        b.advance(Duration::from_millis(1_000));
        assert!(b.sent().is_empty(), "still keying");
        b.advance(Duration::from_millis(1_000));
        assert!(b.sent().iter().any(|m| m.method() == Method::Bye));
        let events = b.events();
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Transfer { status: TransferStatus::Succeeded, reason: Some(r), .. }
                if r == "handed to the PBX, which transfers the caller to 200"
        )));
        assert!(events.iter().any(|e| matches!(
            e,
            Event::Call {
                state: CallState::Ended,
                ..
            }
        )));
    }

    /// The hang-up is the call's PBX timer: six digits take 6 × 200 ms + 800 ms, and the BYE
    /// goes exactly then on simulated time.
    #[test]
    fn the_blind_hang_up_comes_exactly_when_the_digits_are_out() {
        let mut b = pbx_call();
        b.cmd(Command::Transfer("200".into()));
        assert_eq!(keyed(&mut b), ["#1200#"]);
        b.advance(Duration::from_millis(1_999));
        assert!(b.sent().is_empty(), "still keying at 1.999 s");
        b.advance(Duration::from_millis(1));
        assert!(b.sent().iter().any(|m| m.method() == Method::Bye));
    }

    #[test]
    fn attended_keys_the_code_cancel_returns_and_complete_hangs_up() {
        let mut b = pbx_call();
        b.cmd(Command::Consult("201".into()));
        assert_eq!(keyed(&mut b), ["*2201#"]);
        b.cmd(Command::Cancel);
        assert_eq!(keyed(&mut b), ["*1"]);
        assert!(b.sent().is_empty(), "the call stays up");
        assert_eq!(
            transfers(&mut b),
            [
                (TransferKind::Attended, TransferStatus::Requested),
                (TransferKind::Attended, TransferStatus::Recalled)
            ]
        );
        b.cmd(Command::Consult("202".into()));
        assert_eq!(keyed(&mut b), ["*2202#"]);
        b.cmd(Command::Complete);
        assert!(b.sent().iter().any(|m| m.method() == Method::Bye));
        assert_eq!(
            transfers(&mut b),
            [
                (TransferKind::Attended, TransferStatus::Requested),
                (TransferKind::Attended, TransferStatus::Succeeded)
            ]
        );
        b.cmd(Command::Complete);
        assert!(matches!(b.events().as_slice(), [Event::Error { .. }]));
    }

    #[test]
    fn numbers_are_cleaned_for_keying() {
        assert_eq!(dtmf_number(" 20-1 ", "pbx").as_deref(), Ok("201"));
        assert_eq!(dtmf_number("sip:201@pbx", "pbx").as_deref(), Ok("201"));
        assert_eq!(dtmf_number("201@pbx", "pbx").as_deref(), Ok("201"));
        assert_eq!(dtmf_number("*8#", "pbx").as_deref(), Ok("*8#"));
        assert!(dtmf_number("+358 40", "pbx").is_err());
        assert!(dtmf_number("sip:bob@pbx", "pbx").is_err());
        assert!(dtmf_number("", "pbx").is_err());
    }
}
