//! The INVITE usage (RFC 3261 §13–15, RFC 3264): one [`Call`] per line,
//! from the first INVITE to the BYE, with hold and resume by re-INVITE.
//!
//! This file owns the [`Call`]: its [`Phase`] (where its INVITE is, with the data each phase
//! needs), its timer table (`timer.rs`, with the deadlines of the transfer machines riding on
//! the call; expired timers handled in one `match` in
//! `on_call_timer`), the in-dialog dispatch, and ending and announcing a call. News for the
//! features goes out as happenings (`happening.rs`: `Answered`, `HoldSettled`, `CallEnded`);
//! only the transfer's abandonment and the recording's stop are called straight from
//! `finish_call`, as their outcome must precede the `ended` event. The seams live beside it:
//! `line.rs` (the operator's line policy), `invite_client.rs` (our INVITE), `invite_server.rs`
//! (theirs), `reinvite.rs` (hold, resume, glare, session timer). Must not read a clock.
//!
//! ```text
//!  outgoing:  Dialing ─180─► Ringing ─2xx─► Connected ◄──re-INVITE──► Held
//!                │  └─183+SDP─► Early ─2xx─┘     │  peer's sendonly ──► RemoteHeld
//!                └─ ≥300, CANCEL, timeout ─► Ended ◄── BYE either way ┘
//!  incoming:  INVITE ─► 180 Ringing ─answer─► 200 (resent T1…T2 until ACK) ─► Connected
//!                         └─ decline: 603, hangup: 603, CANCEL: 487 ─► Ended
//! ```
//!
//! A call the operator hung up before it was answered stays (detached from
//! its line) until the INVITE transaction finishes: a provisional response
//! lets us CANCEL, and a 2xx that crosses the CANCEL is ACKed and BYEd.
//! Glare on re-INVITE (491) is retried after the §14.1 random delay.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::api::{CallState, Direction, Event};
use super::dialog::{Dialog, Role};
use super::happening::Happening;
use super::media_order::{Stream, Tone};
use super::msg::{Builder, Message, Method, NameAddr, SipUri};
use super::sdes::SrtpMode;
use super::sdp::{self, LocalMedia, Negotiated, Sdp};
use super::session_timer::{self, SessionTimer};
use super::target::Target;
use super::transaction::TxKey;
use super::transfer::Transfer;
use super::transferee::{AskedRefer, Referral};
use super::{line_no, Owner, Transmit, UserAgent};
pub(super) use timer::CallTimer;
use timer::TimerTable;

mod failover;
mod invite_client;
mod invite_server;
mod line;
mod reinvite;
mod timer;

/// How long a wanted resume waits for a re-INVITE under way on the call before looking again.
const RESUME_RETRY: Duration = Duration::from_millis(500);

/// How long we resend a 2xx waiting for its ACK: 64·T1 (§13.3.1.4).
const ACK_WAIT_T1S: u32 = 64;

/// A hold or resume offer in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reinvite {
    /// True for hold, false for resume.
    hold: bool,
    /// Its CSeq number (for the ACK).
    cseq: u32,
    /// Sent only to refresh the session (RFC 4028): its failure is not the operator's.
    refresh: bool,
}

/// Our 2xx to an INVITE, resent until the ACK arrives ([`CallTimer::AckResend`], given up at
/// [`CallTimer::AckGiveUp`]).
#[derive(Debug, Clone)]
struct PendingAck {
    wire: Transmit,
    cseq: u32,
    /// The wait before the next resend.
    interval: Duration,
    /// The 2xx carries our offer (their INVITE had none): the answer comes in the ACK.
    offer: bool,
    /// Another line wanted this call held meanwhile (no re-INVITE may go before the ACK):
    /// the hold is sent when the ACK comes.
    hold_after: bool,
}

/// Where a call is in its life (RFC 3261 §13): what its INVITE has done, seen from the line.
/// The operator's [`CallState`] is a view of it and of the holds ([`Call::state`]).
///
/// ```text
///  ours:    Dialing ──1xx──► Alerting { early } ──2xx──► Confirmed { local_hold, remote_hold }
///  theirs:  Ringing { offer } ──answer──► Confirmed { .. }  (holds change by re-INVITE)
///  any ── hangup, failure, CANCEL, BYE ──► Ended { status, answered, cancel_owed }
/// ```
#[derive(Debug, Clone)]
enum Phase {
    /// Ours: the INVITE is out and no provisional response came (no CANCEL before one, §9.1).
    Dialing,
    /// Ours: a provisional response came, so a CANCEL may go; `early`: one brought media.
    Alerting { early: bool },
    /// Theirs: it rings here; `offer` is the SDP offer of their INVITE, if any.
    Ringing { offer: Option<Sdp> },
    /// Answered (a 2xx sent or received): only such a call can be held, either way.
    Confirmed {
        /// We hold the far end.
        local_hold: bool,
        /// The far end holds us.
        remote_hold: bool,
    },
    /// The operator was told it ended; the INVITE's signalling may go on detached.
    Ended {
        /// The SIP status that ended it, if any.
        status: Option<u16>,
        /// It had been answered.
        answered: bool,
        /// Hung up before any provisional response: CANCEL as soon as one comes.
        cancel_owed: bool,
    },
}

/// An ACK we sent for a 2xx to one of our INVITEs, kept to answer the 2xx's retransmissions
/// for as long as the far end may resend it (64·T1), whether or not its call is still with us.
#[derive(Debug, Clone)]
pub(super) struct SentAck {
    call_id: String,
    cseq: u32,
    /// The To tag of the 2xx (forked answers each get their own ACK).
    to_tag: String,
    wire: Transmit,
    until: Instant,
}

impl SentAck {
    /// When the ACK is no longer kept (64·T1 after it was sent).
    pub(super) fn until(&self) -> Instant {
        self.until
    }
}

/// One call on one line.
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// SIP Call-ID.
    pub(super) call_id: String,
    /// Index of the line (0-based).
    pub(super) line: usize,
    /// Where the call is in its life.
    phase: Phase,
    pub(super) role: Role,
    /// The far end as the operator sees it (URI).
    pub(super) peer: String,
    /// Set once a dialog exists (early or confirmed).
    pub(super) dialog: Option<Dialog>,
    /// Our tag (From for calls we place, To for calls we answer).
    local_tag: String,
    /// The initial INVITE: ours (for CANCEL and auth retries) or theirs
    /// (for answering).
    invite: Message,
    /// Where our out-of-dialog requests for this call go.
    first_hop: Option<SocketAddr>,
    /// The initial INVITE got its final response.
    finalised: bool,
    /// What media was agreed.
    pub(super) media: Option<Negotiated>,
    sdp_session: u64,
    sdp_version: u64,
    last_sdp_direction: Option<Direction>,
    reinvite: Option<Reinvite>,
    /// What the re-INVITE a 491 refused asked for (hold: `true`), sent again at
    /// [`CallTimer::GlareRetry`].
    glare_hold: bool,
    /// Our 2xx waiting for its ACK.
    pending_ack: Option<PendingAck>,
    /// The call's own timers.
    timers: TimerTable,
    /// The media order last sent for this call (to send only changes).
    pub(super) media_sent: Option<(Option<Stream>, Option<Tone>)>,
    /// The operator muted the microphone on this call.
    pub(super) muted: bool,
    /// DTMF digits waiting to go as SIP INFO, one request at a time.
    pub(super) info_queue: VecDeque<char>,
    /// CSeq of the INFO in flight.
    pub(super) info_in_flight: Option<u32>,
    /// A transfer of this call in progress.
    pub(super) transfer: Option<Transfer>,
    /// Extra headers of our initial INVITE (Referred-By, Replaces).
    invite_headers: Vec<(&'static str, String)>,
    /// We are being transferred: the REFER we accepted on this call.
    pub(super) referred: Option<Referral>,
    /// A REFER on this call waiting for the operator's word (`accept_refer = "ask"`).
    pub(super) refer_ask: Option<AskedRefer>,
    /// This call was placed for a REFER received on that call (its Call-ID).
    pub(super) referred_from: Option<String>,
    /// We were transferred: the CSeq of our final NOTIFY, whose answer this call's BYE
    /// waits for, and the reason it ends with.
    pub(super) bye_after_notify: Option<(u32, String)>,
    /// The far end announced `replaces` (it can take part in an attended transfer).
    pub(super) remote_replaces: bool,
    /// A transfer by PBX feature codes on this call.
    pub(super) pbx: Option<super::pbx_transfer::PbxTransfer>,
    /// The account (`accounts.rs`) the call went out through or came in for: its identity,
    /// Contact and credentials serve every request of the call.
    pub(super) account: usize,
    /// The call is being recorded (a start order went out and no stop since).
    pub(super) recording: bool,
    /// Auto-recording has been started once for this call (it is not restarted after a stop).
    pub(super) auto_recorded: bool,
    /// A member of the local conference (`conference.rs`).
    pub(super) in_conference: bool,
    /// The session timer (RFC 4028) the last offer/answer set, if any.
    session: Option<SessionTimer>,
    /// The `Session-Expires` our initial INVITE asks for (raised by a 422).
    session_asked: u32,
}

impl Call {
    fn new(
        call_id: String,
        line: usize,
        role: Role,
        peer: String,
        local_tag: String,
        invite: Message,
    ) -> Call {
        Call {
            call_id,
            line,
            phase: Phase::Dialing,
            role,
            peer,
            dialog: None,
            local_tag,
            invite,
            first_hop: None,
            finalised: false,
            media: None,
            sdp_session: 0,
            sdp_version: 0,
            last_sdp_direction: None,
            reinvite: None,
            glare_hold: false,
            pending_ack: None,
            timers: TimerTable::default(),
            media_sent: None,
            muted: false,
            info_queue: VecDeque::new(),
            info_in_flight: None,
            transfer: None,
            invite_headers: Vec::new(),
            referred: None,
            refer_ask: None,
            referred_from: None,
            bye_after_notify: None,
            remote_replaces: false,
            pbx: None,
            account: 0,
            recording: false,
            auto_recorded: false,
            in_conference: false,
            session: None,
            session_asked: session_timer::WANTED,
        }
    }

    /// The next time this call needs `on_call_timer`: its timer table's earliest.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.timers.earliest()
    }

    /// Arms `timer` for `at` (a feature riding on the call: transfer, PBX, asked REFER).
    pub(in crate::sip) fn arm(&mut self, timer: CallTimer, at: Instant) {
        self.timers.set(timer, at);
    }

    /// Disarms `timer`.
    pub(in crate::sip) fn disarm(&mut self, timer: CallTimer) {
        self.timers.stop(timer);
    }

    /// The call's state as the operator sees it.
    pub(super) fn state(&self) -> CallState {
        match self.phase {
            Phase::Dialing => CallState::Dialing,
            Phase::Alerting { early: false } | Phase::Ringing { .. } => CallState::Ringing,
            Phase::Alerting { early: true } => CallState::Early,
            Phase::Confirmed {
                local_hold: true, ..
            } => CallState::Held,
            Phase::Confirmed {
                remote_hold: true, ..
            } => CallState::RemoteHeld,
            Phase::Confirmed { .. } => CallState::Connected,
            Phase::Ended { .. } => CallState::Ended,
        }
    }

    /// The SIP status that ended the call, if it ended with one.
    pub(super) fn end_status(&self) -> Option<u16> {
        match self.phase {
            Phase::Ended { status, .. } => status,
            _ => None,
        }
    }

    /// The call ended after it had been answered.
    pub(super) fn was_answered(&self) -> bool {
        matches!(self.phase, Phase::Ended { answered: true, .. })
    }

    /// True when nothing about the call is left to do.
    pub(super) fn is_ended(&self) -> bool {
        self.is_gone() && (self.role == Role::Callee || self.finalised) && self.transfer.is_none()
    }

    /// Our tag in this call's dialog.
    pub(super) fn local_tag(&self) -> &str {
        &self.local_tag
    }

    /// True if `req` is (a CANCEL of) the INVITE this call answers.
    pub(super) fn answers(&self, req: &Message) -> bool {
        self.role == Role::Callee
            && self.call_id == req.call_id
            && self.invite.from.tag() == req.from.tag()
            && self.invite.via.branch() == req.via.branch()
    }

    /// True if `request` is our initial INVITE (its latest auth or 422 retry), not one of the
    /// re-INVITEs in the dialog: only a call we placed has one. A callee's `invite` is the
    /// one it received, whose CSeq may well equal that of its own first re-INVITE.
    fn is_initial_invite(&self, request: &Message) -> bool {
        self.role == Role::Caller
            && request.method() == Method::Invite
            && request.to.tag().is_none()
            && request.cseq.0 == self.invite.cseq.0
    }

    /// Our initial INVITE was sent again as `invite` (with credentials, by `client_auth.rs`):
    /// CANCEL, ACK and the dialog follow the new one.
    pub(super) fn reissued_invite(&mut self, invite: Message) {
        if self.role == Role::Caller && invite.to.tag().is_none() {
            self.invite = invite;
        }
    }

    /// We hold the far end (only an answered call can be held).
    pub(super) fn local_hold(&self) -> bool {
        matches!(
            self.phase,
            Phase::Confirmed {
                local_hold: true,
                ..
            }
        )
    }

    /// The far end holds us.
    pub(super) fn is_remote_held(&self) -> bool {
        matches!(
            self.phase,
            Phase::Confirmed {
                remote_hold: true,
                ..
            }
        )
    }

    /// We hold the far end, or stop holding it (nothing unless the call is answered).
    pub(super) fn set_local_hold(&mut self, on: bool) {
        if let Phase::Confirmed { local_hold, .. } = &mut self.phase {
            *local_hold = on;
        }
    }

    /// The far end holds us, or stopped (nothing unless the call is answered).
    fn set_remote_hold(&mut self, on: bool) {
        if let Phase::Confirmed { remote_hold, .. } = &mut self.phase {
            *remote_hold = on;
        }
    }

    /// True once the operator was told it ended (it may linger detached).
    pub(super) fn is_gone(&self) -> bool {
        matches!(self.phase, Phase::Ended { .. })
    }

    pub(super) fn is_talking(&self) -> bool {
        matches!(self.state(), CallState::Connected | CallState::RemoteHeld)
    }

    /// Our hold re-INVITE is in flight.
    pub(super) fn is_holding(&self) -> bool {
        self.reinvite.is_some_and(|r| r.hold)
    }

    /// An offer/answer exchange is under way (our re-INVITE, or our 2xx awaiting its ACK).
    pub(super) fn is_renegotiating(&self) -> bool {
        self.reinvite.is_some() || self.pending_ack.is_some()
    }

    /// The far end as the operator sees it (URI).
    pub(super) fn peer(&self) -> &str {
        &self.peer
    }

    /// Audio should flow both ways: connected, held by neither side, no re-INVITE under way.
    pub(super) fn expects_audio(&self) -> bool {
        self.state() == CallState::Connected && !self.is_renegotiating()
    }

    pub(super) fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Confirmed { .. })
    }

    /// The direction we want given both holds.
    fn wanted_direction(&self) -> Direction {
        match (self.local_hold(), self.is_remote_held()) {
            (false, false) => Direction::SendRecv,
            (true, false) => Direction::SendOnly,
            (false, true) => Direction::RecvOnly,
            (true, true) => Direction::Inactive,
        }
    }

    /// Starts resending our 2xx `wire` (to the INVITE with CSeq `cseq`) until its ACK comes.
    /// `offer`: the 2xx carries our offer.
    fn await_ack(&mut self, wire: Transmit, cseq: u32, offer: bool, now: Instant, t1: Duration) {
        self.pending_ack = Some(PendingAck {
            wire,
            cseq,
            interval: t1,
            offer,
            hold_after: false,
        });
        self.timers.set(CallTimer::AckResend, now + t1);
        self.timers
            .set(CallTimer::AckGiveUp, now + t1 * ACK_WAIT_T1S);
    }

    /// The ACK came, or is no longer waited for.
    fn ack_settled(&mut self) {
        self.pending_ack = None;
        self.timers.stop(CallTimer::AckResend);
        self.timers.stop(CallTimer::AckGiveUp);
    }

    /// The session timer the last offer/answer set (`None`: none), armed in the table.
    fn set_session(&mut self, session: Option<SessionTimer>) {
        self.session = session;
        match session {
            Some(s) => self.timers.set(CallTimer::Session, s.due),
            None => self.timers.stop(CallTimer::Session),
        }
    }

    /// The version for the next SDP we write (bumped when it changes).
    fn next_sdp_version(&mut self, dir: Direction) -> u64 {
        if self.last_sdp_direction != Some(dir) {
            self.sdp_version += 1;
            self.last_sdp_direction = Some(dir);
        }
        self.sdp_version
    }
}

impl UserAgent {
    // ---- commands ----

    // ---- requests we send ----

    /// BYE on the call's dialog.
    pub(in crate::sip::call) fn send_bye(&mut self, now: Instant, call_id: &str) {
        self.send_in_dialog(now, call_id, Method::Bye, None);
    }

    /// Sends a request on the call's dialog with an optional
    /// `(content type, body)`; returns its CSeq number.
    pub(in crate::sip) fn send_in_dialog(
        &mut self,
        now: Instant,
        call_id: &str,
        method: Method,
        body: Option<(&str, String)>,
    ) -> Option<u32> {
        self.send_in_dialog_with(now, call_id, method, Vec::new(), body)
    }

    /// [`Self::send_in_dialog`] with extra headers.
    pub(in crate::sip) fn send_in_dialog_with(
        &mut self,
        now: Instant,
        call_id: &str,
        method: Method,
        headers: Vec<(&str, String)>,
        body: Option<(&str, String)>,
    ) -> Option<u32> {
        let account = self.calls().find(|c| c.call_id == call_id)?.account;
        let via = self.via(account);
        let contact = self.contact_uri(account);
        let user_agent = self.cfg.user_agent.clone();
        let call = self.call_mut(call_id)?;
        let session = call.session;
        let dialog = call.dialog.as_mut()?;
        let mut b = dialog.request(method, &via, 70);
        let cseq = dialog.local_cseq;
        let dst = dialog.next_hop().or(call.first_hop)?;
        if method_needs_contact(method) {
            // RFC 3261 §8.1.1.8 (INVITE, UPDATE), RFC 3515 §2.4.1 and RFC 6665 §4.1.2.1 /
            // §4.2.2 (REFER, SUBSCRIBE, NOTIFY): a strict PBX refuses them without one.
            b = b.header("Contact", format!("<{contact}>"));
        }
        if method == Method::Invite {
            b = b
                .header("Allow", super::ALLOW)
                .header("Supported", super::SUPPORTED);
            for (name, value) in session.map(|s| s.request_headers()).unwrap_or_default() {
                b = b.header(name, value);
            }
        }
        b = b.header("User-Agent", user_agent);
        for (name, value) in headers {
            b = b.header(name, value);
        }
        if let Some((content_type, body)) = body {
            b = b.body(content_type, body);
        }
        self.send_request(now, dst, b.build(), Owner::Call(call_id.to_string()))?;
        Some(cseq)
    }

    // ---- responses to our requests ----

    /// A response to an INVITE, re-INVITE, BYE or CANCEL of call `call_id`.
    pub(in crate::sip) fn on_call_response(
        &mut self,
        now: Instant,
        call_id: &str,
        request: &Message,
        resp: &Message,
    ) {
        let Some(code) = resp.code() else { return };
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        match request.method() {
            Method::Invite if call.is_initial_invite(request) => {
                self.on_invite_response(now, call_id, code, resp)
            }
            Method::Invite => self.on_reinvite_response(now, call_id, request.cseq.0, code, resp),
            Method::Info => self.on_info_response(now, call_id, request.cseq.0, code),
            Method::Refer => self.on_refer_response(now, call_id, request.cseq.0, code, resp),
            Method::Notify => self.on_refer_notify_answered(now, call_id, request.cseq.0, code),
            _ => {}
        }
    }

    /// A client transaction of the call got no answer (Timer B or F).
    pub(in crate::sip) fn on_call_tx_timeout(
        &mut self,
        now: Instant,
        call_id: &str,
        request: &Message,
    ) {
        let initial = self
            .calls()
            .any(|c| c.call_id == call_id && c.is_initial_invite(request));
        if initial && self.invite_fail_over(now, call_id, "no answer (timer B)") {
            return;
        }
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        match request.method() {
            Method::Invite if !call.finalised && call.is_initial_invite(request) => {
                call.finalised = true;
                self.finish_call(
                    call_id,
                    Some(408),
                    "the far end did not answer (request timed out)",
                );
            }
            Method::Invite => {
                call.reinvite = None;
                self.send_bye(now, call_id);
                self.finish_call(call_id, Some(408), "the far end stopped answering");
            }
            Method::Refer => self.on_refer_timeout(now, call_id),
            Method::Notify => self.on_refer_notify_answered(now, call_id, request.cseq.0, 408),
            _ => {}
        }
    }

    /// A call's expired timers, the INVITE usage's and its features', handled in one `match`.
    pub(in crate::sip) fn on_call_timer(&mut self, now: Instant, call_id: &str) {
        for _ in CallTimer::ALL {
            let Some(timer) = self
                .call_mut(call_id)
                .and_then(|c| c.timers.next_expired(now))
            else {
                break;
            };
            match timer {
                CallTimer::AckGiveUp if self.ack_given_up(now, call_id) => return,
                CallTimer::AckGiveUp => {}
                CallTimer::AckResend => self.resend_2xx(now, call_id),
                CallTimer::GlareRetry => {
                    let Some(call) = self.call_mut(call_id) else {
                        return;
                    };
                    if call.is_established() && call.reinvite.is_none() {
                        let hold = call.glare_hold;
                        self.send_reinvite(now, call_id, hold);
                    }
                }
                CallTimer::ResumeRetry => self.resume_when_settled(now, call_id),
                CallTimer::Session => self.on_session_timer(now, call_id),
                CallTimer::Transfer => self.on_transfer_timer(now, call_id),
                CallTimer::RingFirst => self.on_ring_first_timer(now, call_id),
                CallTimer::PbxHangup => self.on_pbx_timer(now, call_id),
                CallTimer::ReferAsk => self.on_refer_ask_timer(now, call_id),
            }
        }
    }

    // ---- requests we receive ----

    /// A request inside a dialog (To tag present).
    pub(in crate::sip) fn on_in_dialog_request(&mut self, now: Instant, req: &Message) {
        // A transfer's subscription outlives the call (RFC 5057): its NOTIFYs still match.
        let notify = req.method() == Method::Notify;
        let found = self
            .lines
            .iter_mut()
            .flatten()
            .chain(&mut self.detached)
            .filter(|c| !c.is_gone() || (notify && c.transfer.is_some()))
            .find(|c| c.dialog.as_ref().is_some_and(|d| d.matches(req)));
        let Some(call) = found else {
            self.respond(now, req, 481, |b| b);
            return;
        };
        let call_id = call.call_id.clone();
        let gone = call.is_gone();
        let Some(dialog) = call.dialog.as_mut() else {
            return;
        };
        // A NOTIFY sent together with the transferee's BYE may arrive after it with a lower
        // CSeq (twinkle does this): the call is over, its subscription is not.
        let lingering = notify && gone;
        if !dialog.accept_remote_cseq(req.cseq.0) && !lingering {
            self.respond(now, req, 500, |b| b.header("Retry-After", "1"));
            return;
        }
        match req.method() {
            Method::Bye => {
                // The transferor hanging up once told of our transfer's success.
                let reason = call
                    .bye_after_notify
                    .take()
                    .map_or_else(|| "the far end hung up".to_string(), |(_, r)| r);
                self.respond(now, req, 200, |b| b);
                // A BYE in the early dialog of a call still ringing here: its INVITE is still
                // owed a final response (§15.1.2 recommends 487), or its transaction lingers.
                let unanswered = self
                    .calls()
                    .find(|c| c.call_id == call_id && c.role == Role::Callee)
                    .filter(|c| !c.is_established() && !c.finalised)
                    .map(|c| c.invite.clone());
                if let Some(invite) = unanswered {
                    self.respond(now, &invite, 487, |b| b);
                }
                self.on_transferee_gone(now, &call_id);
                let words = self.pbx_far_end_hung_up(now, &call_id);
                let words = words.unwrap_or(reason);
                self.finish_call(&call_id, None, &words);
            }
            Method::Notify => self.on_notify(now, &call_id, req),
            Method::Invite => self.on_reinvite(now, &call_id, req),
            Method::Info => self.on_info(now, &call_id, req),
            Method::Options => {
                self.respond(now, req, 200, |b| {
                    b.header("Allow", super::ALLOW)
                        .header("Accept", super::ACCEPT)
                        .header("Supported", super::SUPPORTED)
                });
            }
            Method::Refer => self.on_refer(now, &call_id, req),
            _ => {
                self.respond(now, req, 405, |b| b.header("Allow", super::ALLOW));
            }
        }
    }

    // ---- session timer (RFC 4028) ----

    // ---- helpers ----

    /// Tells the operator the call ended and detaches it from its line.
    pub(in crate::sip::call) fn finish_call(
        &mut self,
        call_id: &str,
        status: Option<u16>,
        reason: &str,
    ) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if call.is_gone() {
            return;
        }
        call.phase = Phase::Ended {
            status,
            answered: call.is_established(),
            cancel_owed: false,
        };
        call.ack_settled();
        // A re-INVITE still out is only ACKed when answered: an ended call does not change.
        call.reinvite = None;
        call.set_session(None);
        call.timers.stop_invite_timers();
        self.transfer_abandoned(call_id, reason);
        self.stop_recording(call_id, "the call ended");
        self.announce(call_id, status, Some(reason.to_string()));
        self.happen(Happening::CallEnded(call_id.to_string()));
    }

    /// Emits the call's current state.
    pub(in crate::sip::call) fn announce(
        &mut self,
        call_id: &str,
        status: Option<u16>,
        reason: Option<String>,
    ) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let ev = Event::Call {
            line: line_no(call.line),
            call_id: call.call_id.clone(),
            state: call.state(),
            peer: call.peer.clone(),
            status,
            reason,
            account: (self.account_count() > 1).then(|| self.account(call.account).name.clone()),
        };
        self.emit(ev);
        self.sync_media(call_id);
        self.auto_record(call_id);
    }

    /// Emits the call's negotiated media.
    pub(in crate::sip::call) fn announce_media(&mut self, call_id: &str) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let Some(m) = &call.media else { return };
        let ev = Event::Media {
            line: line_no(call.line),
            call_id: call.call_id.clone(),
            codec: m.codec.name().to_string(),
            payload_type: m.payload_type,
            remote: m.remote.to_string(),
            direction: m.direction,
            dtmf_payload_type: m.dtmf_payload_type,
        };
        self.emit(ev);
        self.sync_media(call_id);
    }

    /// What we can receive on line `index`.
    pub(in crate::sip::call) fn local_media(&self, index: usize) -> LocalMedia {
        LocalMedia {
            addr: self.media_ip_of_line(index),
            port: self.cfg.rtp_ports.get(index).copied().unwrap_or_default(),
            rtcp: self.rtcp_of_line(index),
            codecs: self.cfg.codecs.clone(),
            dtmf: true,
            opus_bitrate: self.cfg.opus_bitrate,
            ptime: self.cfg.ptime,
            srtp: self.line_policy(index).srtp.effective(),
            keys: self.srtp_keys.get(index).copied().unwrap_or_default(),
        }
    }

    /// Fresh SRTP keys for a new call on line `index` (kept for the call's life, through
    /// hold and resume).
    pub(in crate::sip::call) fn new_srtp_keys(&mut self, index: usize) {
        let Some(source) = self.line_policy(index).srtp.keys.as_ref() else {
            return;
        };
        let keys = [source.key(), source.key()];
        if let Some(slot) = self.srtp_keys.get_mut(index) {
            *slot = keys;
        }
    }
}

/// True for the requests that must carry our Contact: those that create a dialog or a
/// subscription, or refresh the remote target.
fn method_needs_contact(method: Method) -> bool {
    matches!(
        method,
        Method::Invite | Method::Refer | Method::Subscribe | Method::Notify | Method::Update
    )
}
