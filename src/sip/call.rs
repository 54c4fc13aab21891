//! The INVITE usage (RFC 3261 §13–15, RFC 3264): one [`Call`] per line,
//! from the first INVITE to the BYE, with hold and resume by re-INVITE.
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
use super::auth;
use super::call_timer::{CallTimer, TimerTable};
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
///  ours:    Dialing ──1xx──► Alerting { early } ──2xx──► Confirmed
///  theirs:  Ringing { offer } ──answer──► Confirmed
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
    /// Answered (a 2xx sent or received).
    Confirmed,
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
    /// Digest challenges answered for the INVITE.
    auth_tries: u32,
    /// The operator has been told the call ended: set with [`Phase::Ended`], which it mirrors
    /// for the INVITE's digest-challenge handling (to go with it into the auth layer).
    gone: bool,
    /// What media was agreed.
    pub(super) media: Option<Negotiated>,
    sdp_session: u64,
    sdp_version: u64,
    last_sdp_direction: Option<Direction>,
    /// We hold the peer.
    pub(super) local_hold: bool,
    /// The peer holds us.
    remote_hold: bool,
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
    /// The trunk (index into `UaConfig::trunks`) an outgoing call went out through; `None`
    /// for the main account.
    pub(super) trunk: Option<usize>,
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
            auth_tries: 0,
            gone: false,
            media: None,
            sdp_session: 0,
            sdp_version: 0,
            last_sdp_direction: None,
            local_hold: false,
            remote_hold: false,
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
            trunk: None,
            recording: false,
            auto_recorded: false,
            in_conference: false,
            session: None,
            session_asked: session_timer::WANTED,
        }
    }

    /// The next time this call needs `on_call_timer`: its timer table's earliest, or a
    /// deadline of the feature machines riding on it.
    pub(super) fn deadline(&self) -> Option<Instant> {
        super::timer::earliest([
            self.timers.earliest(),
            self.transfer.as_ref().and_then(Transfer::deadline),
            self.refer_ask.as_ref().map(|a| a.deadline),
            self.pbx
                .as_ref()
                .and_then(super::pbx_transfer::PbxTransfer::deadline),
        ])
    }

    /// The call's state as the operator sees it.
    pub(super) fn state(&self) -> CallState {
        match self.phase {
            Phase::Dialing => CallState::Dialing,
            Phase::Alerting { early: false } | Phase::Ringing { .. } => CallState::Ringing,
            Phase::Alerting { early: true } => CallState::Early,
            Phase::Confirmed if self.local_hold => CallState::Held,
            Phase::Confirmed if self.remote_hold => CallState::RemoteHeld,
            Phase::Confirmed => CallState::Connected,
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

    /// The far end holds us.
    pub(super) fn is_remote_held(&self) -> bool {
        self.remote_hold
    }

    /// Stop holding the far end (the answer to its re-INVITE under way says so).
    pub(super) fn release_local_hold(&mut self) {
        self.local_hold = false;
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
        self.state() == CallState::Connected
            && !self.local_hold
            && !self.remote_hold
            && !self.is_renegotiating()
    }

    pub(super) fn is_established(&self) -> bool {
        matches!(self.phase, Phase::Confirmed)
    }

    /// The direction we want given both holds.
    fn wanted_direction(&self) -> Direction {
        match (self.local_hold, self.remote_hold) {
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

    /// `dial`: places a call on the selected line, or on a free one
    /// (holding the call on the selected line).
    pub(in crate::sip) fn dial(&mut self, now: Instant, target: &str) {
        let uri = match self.target_uri(target) {
            Ok(uri) => uri,
            Err(e) => return self.error(e),
        };
        if let Err(e) = self.place_call(now, &uri, Vec::new()) {
            self.error(e);
        }
    }

    /// A call through the trunk named `account`: its domain completes a number, its identity
    /// goes in From, its proxy is the first hop and its credentials answer challenges.
    pub(in crate::sip) fn dial_via(&mut self, now: Instant, account: &str, target: &str) {
        let Some(trunk) = self.cfg.trunks.iter().position(|(name, _)| name == account) else {
            return self.error(format!("there is no account `{account}` to call through"));
        };
        let domain = self.account_of(Some(trunk)).domain.clone();
        let uri = match target_uri_in(target, &domain) {
            Ok(uri) => uri,
            Err(e) => return self.error(e),
        };
        if let Err(e) = self.place_call_via(now, Some(trunk), &uri, Vec::new()) {
            self.error(e);
        }
    }

    /// Places a call to `uri` on the selected line or a free one (holding the others), with
    /// `headers` added to its INVITE; returns its Call-ID.
    pub(in crate::sip) fn place_call(
        &mut self,
        now: Instant,
        uri: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Result<String, String> {
        self.place_call_via(now, None, uri, headers)
    }

    /// [`Self::place_call`] through trunk `trunk` (`None`: the main account).
    pub(in crate::sip::call) fn place_call_via(
        &mut self,
        now: Instant,
        trunk: Option<usize>,
        uri: &str,
        headers: Vec<(&'static str, String)>,
    ) -> Result<String, String> {
        let uri = uri.to_string();
        let Some(line) = self.free_line(self.selected) else {
            return Err("every line is busy: hang up or transfer a call first".to_string());
        };
        let Some(dst) = self.first_hop_via(trunk, &uri) else {
            return Err(format!(
                "cannot reach {uri}: give an IP address, or configure a registrar or outbound proxy"
            ));
        };
        self.hold_others(now, line);
        self.set_selected(line);
        let call_id = format!("{}@switchboard", self.tokens.hex());
        let tag = self.new_tag();
        let session = self.tokens.next() >> 1;
        let mut to = NameAddr::new(&uri);
        to.display = None;
        let placeholder = Message::parse(
            format!(
                "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 0.0.0.0;branch=z9hG4bK0\r\nFrom: <{uri}>;tag=0\r\n\
                 To: {to}\r\nCall-ID: {call_id}\r\nCSeq: 0 INVITE\r\n\r\n"
            )
            .as_bytes(),
        );
        let Ok(placeholder) = placeholder else {
            return Err(format!("cannot dial {uri}: not a valid address"));
        };
        let mut call = Call::new(
            call_id.clone(),
            line,
            Role::Caller,
            uri.clone(),
            tag,
            placeholder,
        );
        call.sdp_session = session;
        call.first_hop = Some(dst);
        call.invite_headers = headers;
        call.trunk = trunk;
        self.lines[line] = Some(call);
        self.new_srtp_keys(line);
        self.send_invite(now, &call_id, None);
        self.announce(&call_id, None, None);
        Ok(call_id)
    }

    /// `answer`: accepts the ringing call on `line` (or the first one).
    pub(in crate::sip) fn answer(&mut self, now: Instant, line: Option<super::LineNo>) {
        let ringing = |c: &&Call| {
            c.role == Role::Callee
                && c.state() == CallState::Ringing
                && line.is_none_or(|l| line_no(c.line) == l)
        };
        if !self.lines.iter().flatten().any(|c| ringing(&c))
            && self.settle_refer_ask(now, line, true)
        {
            return;
        }
        let Some(call) = self.lines.iter().flatten().find(ringing) else {
            return self.error(match line {
                Some(l) => format!("no call is ringing on line {l}"),
                None => "no call is ringing".to_string(),
            });
        };
        let (call_id, index) = (call.call_id.clone(), call.line);
        self.hold_others(now, index);
        self.set_selected(index);
        let local = self.local_media(index);
        let contact = self.contact_uri();
        let Some(call) = self.call_mut(&call_id) else {
            return;
        };
        let remote_offer = match &call.phase {
            Phase::Ringing { offer } => offer.clone(),
            _ => None,
        };
        let (body, negotiated) = match remote_offer {
            Some(offer) => {
                let dir = call.wanted_direction();
                let version = call.next_sdp_version(dir);
                match sdp::answer(&offer, &local, dir, call.sdp_session, version) {
                    Ok((body, n)) => (body, Some(n)),
                    Err(e) => {
                        let invite = call.invite.clone();
                        self.respond(now, &invite, 488, |b| {
                            b.header("Warning", format!("305 switchboard \"{e}\""))
                        });
                        return self.finish_call(
                            &call_id,
                            Some(488),
                            "no codec in common with the caller",
                        );
                    }
                }
            }
            None => {
                let version = call.next_sdp_version(Direction::SendRecv);
                (
                    sdp::offer(&local, Direction::SendRecv, call.sdp_session, version),
                    None,
                )
            }
        };
        let offer_in_2xx = negotiated.is_none();
        call.media = negotiated;
        call.phase = Phase::Confirmed;
        let invite = call.invite.clone();
        let (session, session_headers) = session_timer::answer(&invite, now).unzip();
        call.set_session(session);
        let wire = self.respond(now, &invite, 200, |b| {
            session_headers
                .into_iter()
                .flatten()
                .fold(b, |b, (name, value)| b.header(name, value))
                .header("Contact", format!("<{contact}>"))
                .header("Allow", super::ALLOW)
                .header("Supported", super::SUPPORTED)
                .body("application/sdp", body)
        });
        let t1 = self.cfg.timers.t1;
        if let (Some(wire), Some(call)) = (wire, self.call_mut(&call_id)) {
            call.await_ack(wire, invite.cseq.0, offer_in_2xx, now, t1);
        }
        self.announce(&call_id, None, None);
        self.announce_media(&call_id);
        self.happen(Happening::Answered(call_id));
    }

    /// `decline`: rejects a ringing call with 603.
    pub(in crate::sip) fn decline(&mut self, now: Instant, line: Option<super::LineNo>) {
        let found = self.lines.iter().flatten().find(|c| {
            c.role == Role::Callee
                && c.state() == CallState::Ringing
                && line.is_none_or(|l| line_no(c.line) == l)
        });
        match found.map(|c| c.call_id.clone()) {
            Some(call_id) => self.end_call(now, &call_id, "you declined the call"),
            None if self.settle_refer_ask(now, line, false) => {}
            None => self.error("no call is ringing"),
        }
    }

    /// `hangup`: ends, cancels or rejects the call on `line`.
    pub(in crate::sip) fn hangup(&mut self, now: Instant, line: Option<super::LineNo>) {
        let index = match line {
            Some(l) => usize::from(l).wrapping_sub(1),
            None => self.selected,
        };
        match self.lines.get(index).and_then(|c| c.as_ref()) {
            Some(call) => {
                let call_id = call.call_id.clone();
                if self.is_consultation(&call_id) {
                    return self.cancel_consult(now);
                }
                self.end_call(now, &call_id, "you hung up");
            }
            None => self.error(format!("no call on line {}", line_no(index))),
        }
    }

    /// `hold` / `resume` on `line` (default: selected).
    pub(in crate::sip) fn set_hold(
        &mut self,
        now: Instant,
        line: Option<super::LineNo>,
        hold: bool,
    ) {
        let index = match line {
            Some(l) => usize::from(l).wrapping_sub(1),
            None => self.selected,
        };
        if self.is_conference_line(index) {
            return self.hold_conference(now, hold, index);
        }
        let Some(call) = self.lines.get(index).and_then(|c| c.as_ref()) else {
            return self.error(format!("no call on line {}", line_no(index)));
        };
        if !call.is_established() {
            return self.error(format!(
                "the call on line {} is not connected",
                line_no(index)
            ));
        }
        if call.local_hold == hold && call.reinvite.is_none() {
            return; // already there
        }
        if call.reinvite.is_some() || call.pending_ack.is_some() {
            return self.error("the call is being renegotiated; try again in a moment");
        }
        let call_id = call.call_id.clone();
        if !hold {
            self.hold_others(now, index);
            self.set_selected(index);
        }
        self.send_reinvite(now, &call_id, hold);
    }

    /// `line N` / `swap`: selects a line; the call on the line we leave is
    /// held, a call we held on the line we select is resumed.
    pub(in crate::sip) fn select_line(&mut self, now: Instant, n: super::LineNo) {
        let index = usize::from(n).wrapping_sub(1);
        if index >= self.lines.len() {
            return self.error(format!(
                "there is no line {n}: lines are 1 to {}",
                self.lines.len()
            ));
        }
        if self.is_conference_line(index) {
            return self.hold_conference(now, false, index);
        }
        self.hold_others(now, index);
        self.set_selected(index);
        let resume = self.lines[index]
            .as_ref()
            .filter(|c| c.local_hold && c.reinvite.is_none() && c.is_established())
            .map(|c| c.call_id.clone());
        if let Some(call_id) = resume {
            self.send_reinvite(now, &call_id, false);
        }
    }

    /// Ends a call in whatever state it is (hangup, decline, quit).
    pub(in crate::sip) fn end_call(&mut self, now: Instant, call_id: &str, reason: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if call.is_gone() {
            return;
        }
        let mut cancel_owed = false;
        match (call.role, call.state()) {
            (Role::Callee, CallState::Ringing) => {
                let invite = call.invite.clone();
                self.respond(now, &invite, 603, |b| b);
            }
            (Role::Caller, CallState::Dialing | CallState::Ringing | CallState::Early) => {
                if matches!(call.phase, Phase::Alerting { .. }) {
                    self.send_cancel(now, call_id);
                } else {
                    cancel_owed = true;
                }
            }
            _ => {
                self.send_bye(now, call_id);
            }
        }
        self.finish_call(call_id, None, reason);
        if let Some(Phase::Ended {
            cancel_owed: owed, ..
        }) = self.call_mut(call_id).map(|c| &mut c.phase)
        {
            *owed = cancel_owed;
        }
    }

    // ---- requests we send ----

    /// Sends (or re-sends with credentials) the initial INVITE.
    pub(in crate::sip::call) fn send_invite(
        &mut self,
        now: Instant,
        call_id: &str,
        authorization: Option<(&'static str, String)>,
    ) {
        let via = self.via();
        let contact = self.contact_uri();
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let mut from = self.name_addr_of(call.trunk);
        let proxy = self.account_of(call.trunk).outbound_proxy.clone();
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        from.params.set("tag", Some(&call.local_tag));
        let cseq = call.invite.cseq.0 + 1;
        let version = call.next_sdp_version(Direction::SendRecv);
        let body = sdp::offer(&local, Direction::SendRecv, call.sdp_session, version);
        let mut b = Builder::request(Method::Invite, &call.peer)
            .header("Via", &via)
            .header("Max-Forwards", "70")
            .header("From", from.to_string())
            .header("To", NameAddr::new(&call.peer).to_string())
            .header("Call-ID", call_id)
            .header("CSeq", format!("{cseq} INVITE"))
            .header("Contact", format!("<{contact}>"))
            .header("Allow", super::ALLOW)
            .header("Supported", super::SUPPORTED);
        for (name, value) in session_timer::invite_headers(call.session_asked) {
            b = b.header(name, value);
        }
        if let Some((uri, _)) = &proxy {
            b = b.header("Route", format!("<{uri};lr>"));
        }
        if let Some((name, value)) = authorization {
            b = b.header(name, value);
        }
        for (name, value) in &call.invite_headers {
            b = b.header(name, value);
        }
        b = self.common_headers(b).body("application/sdp", body);
        let bytes = b.build();
        let Ok(invite) = Message::parse(&bytes) else {
            return self.finish_call(call_id, None, "could not build the INVITE");
        };
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        call.invite = invite;
        let dst = call.first_hop;
        match dst {
            Some(dst) => {
                self.send_request(now, dst, bytes, Owner::Call(call_id.to_string()));
            }
            None => self.finish_call(call_id, None, "no route to the far end"),
        }
    }

    /// CANCEL for our INVITE (§9.1): same Request-URI, Via branch, From,
    /// To, Call-ID, Route; CSeq number with method CANCEL.
    pub(in crate::sip::call) fn send_cancel(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let invite = call.invite.clone();
        let dst = call.first_hop;
        let b = super::transaction::invite_sibling(&invite, Method::Cancel, &invite.to);
        let bytes = self.common_headers(b).build();
        if let Some(dst) = dst {
            self.send_request(now, dst, bytes, Owner::Call(call_id.to_string()));
        }
    }

    /// BYE on the call's dialog.
    pub(in crate::sip::call) fn send_bye(&mut self, now: Instant, call_id: &str) {
        self.send_in_dialog(now, call_id, Method::Bye, None);
    }

    /// Hold (`true`) or resume by re-INVITE with a new offer.
    pub(in crate::sip) fn send_reinvite(&mut self, now: Instant, call_id: &str, hold: bool) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let dir = match (hold, call.remote_hold) {
            (true, true) => Direction::Inactive,
            (true, false) => Direction::SendOnly,
            (false, _) => Direction::SendRecv,
        };
        let version = call.next_sdp_version(dir);
        let body = sdp::offer(&local, dir, call.sdp_session, version);
        call.timers.stop(CallTimer::GlareRetry);
        if let Some(cseq) = self.send_in_dialog(
            now,
            call_id,
            Method::Invite,
            Some(("application/sdp", body)),
        ) {
            if let Some(call) = self.call_mut(call_id) {
                call.reinvite = Some(Reinvite {
                    hold,
                    cseq,
                    refresh: false,
                });
            }
        }
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
        let via = self.via();
        let contact = self.contact_uri();
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

    /// ACK for a 2xx to our INVITE `request` (its own transaction, §13.2.2.4), sent in every
    /// state of the call, even one already ended and forgotten, and kept for resending.
    pub(in crate::sip) fn ack_2xx(
        &mut self,
        now: Instant,
        request: &Message,
        resp: &Message,
        sent_to: SocketAddr,
    ) {
        let via = self.via();
        let Some((b, hop)) = Dialog::ack_for_2xx(request, resp, &via, 70) else {
            tracing::warn!(call_id = %resp.call_id, "a 2xx without a To tag cannot be ACKed");
            return;
        };
        let b = b.header("User-Agent", &self.cfg.user_agent);
        let wire = Transmit {
            transport: self.cfg.transport,
            dst: hop.unwrap_or(sent_to),
            payload: b.build(),
        };
        self.transmits.push_back(wire.clone());
        self.acks.retain(|a| a.until > now);
        self.acks.push(SentAck {
            call_id: resp.call_id.clone(),
            cseq: resp.cseq.0,
            to_tag: resp.to.tag().unwrap_or_default().to_string(),
            wire,
            until: now + self.cfg.timers.t1 * ACK_WAIT_T1S,
        });
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

    pub(in crate::sip::call) fn on_invite_response(
        &mut self,
        now: Instant,
        call_id: &str,
        code: u16,
        resp: &Message,
    ) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        match code {
            100 => {}
            101..=199 => {
                if call.dialog.is_none() {
                    call.dialog = Dialog::from_response(&call.invite, resp);
                }
                match &mut call.phase {
                    Phase::Ended {
                        cancel_owed: owed @ true,
                        ..
                    } => {
                        *owed = false;
                        return self.send_cancel(now, call_id);
                    }
                    Phase::Dialing | Phase::Alerting { .. } => {}
                    _ => return,
                }
                let early = resp
                    .body_text()
                    .and_then(|b| sdp::parse(b.as_bytes()).ok())
                    .and_then(|s| sdp::negotiate_answer(&s, &local).ok());
                let state = match early {
                    Some(n) => {
                        call.media = Some(n);
                        CallState::Early
                    }
                    None if call.state() == CallState::Early => CallState::Early,
                    None => CallState::Ringing,
                };
                let changed = call.state() != state;
                let had_media = call.media.is_some() && state == CallState::Early;
                call.phase = Phase::Alerting {
                    early: state == CallState::Early,
                };
                if changed {
                    self.announce(call_id, None, None);
                    if had_media {
                        self.announce_media(call_id);
                    }
                    self.happen(Happening::Alerting(call_id.to_string()));
                }
            }
            200..=299 => {
                let fresh = !call.finalised;
                call.finalised = true;
                call.remote_replaces |= super::attended::announces_replaces(resp);
                let dialog = Dialog::from_response(&call.invite, resp);
                match (&call.dialog, dialog) {
                    (Some(d), Some(new)) if d.remote_tag == new.remote_tag => {
                        // The early dialog becomes confirmed: take the 2xx's target and routes.
                        call.dialog = Some(new);
                    }
                    (_, Some(new)) => call.dialog = Some(new),
                    (_, None) => {}
                }
                if call.is_gone() || !fresh {
                    if call.is_gone() {
                        self.send_bye(now, call_id);
                    }
                    return;
                }
                let negotiated = resp.body_text().map(|b| {
                    sdp::parse(b.as_bytes()).and_then(|s| sdp::negotiate_answer(&s, &local))
                });
                match negotiated {
                    Some(Ok(n)) => call.media = Some(n),
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "unusable SDP answer; ending the call");
                        self.send_bye(now, call_id);
                        let reason = match e {
                            sdp::SdpError::NoCrypto | sdp::SdpError::SrtpOff => e.to_string(),
                            _ => "the far end answered with media we cannot use".to_owned(),
                        };
                        return self.finish_call(call_id, None, &reason);
                    }
                    None if call.media.is_some() => {}
                    None => {
                        self.send_bye(now, call_id);
                        return self.finish_call(
                            call_id,
                            None,
                            "the far end answered without media",
                        );
                    }
                }
                call.phase = Phase::Confirmed;
                call.set_session(session_timer::from_response(resp, now));
                self.announce(call_id, None, None);
                self.announce_media(call_id);
                self.happen(Happening::Answered(call_id.to_string()));
            }
            422 if !call.is_gone() => self.on_session_too_brief(now, call_id, resp),
            401 | 407 => {
                call.finalised = false;
                let (name, header) = if code == 407 {
                    ("Proxy-Authenticate", "Proxy-Authorization")
                } else {
                    ("WWW-Authenticate", "Authorization")
                };
                let values: Vec<&str> = resp.headers(name).collect();
                let challenge = auth::pick_strongest(&values);
                let trunk = call.trunk;
                let account = self.account_of(trunk);
                let password = account.password.clone();
                let user = account.auth_user.clone();
                let cnonce = format!("{:08x}", self.tokens.next() as u32);
                let Some(call) = self.call_mut(call_id) else {
                    return;
                };
                let retry = call.auth_tries == 0 || challenge.as_ref().is_some_and(|c| c.stale);
                match (challenge, password, retry && !call.gone) {
                    (Some(ch), Some(pw), true) => {
                        call.auth_tries += 1;
                        let uri = call.peer.clone();
                        let value =
                            auth::authorization(&ch, &user, &pw, "INVITE", &uri, 1, &cnonce);
                        self.send_invite(now, call_id, Some((header, value)));
                    }
                    _ => {
                        call.finalised = true;
                        self.finish_call(
                            call_id,
                            Some(code),
                            "authentication failed: check the user name and password",
                        );
                    }
                }
            }
            _ => {
                call.finalised = true;
                if call.is_gone() {
                    return;
                }
                let mut reason = self
                    .pickup_failure_words(call_id, code)
                    .unwrap_or_else(|| failure_reason(code, resp.reason()));
                if matches!(code, 488 | 606) && self.cfg.srtp.effective() == SrtpMode::Mandatory {
                    reason = format!(
                        "{reason} (this account requires SRTP: the far end may not support it)"
                    );
                }
                self.finish_call(call_id, Some(code), &reason);
            }
        }
    }

    pub(in crate::sip::call) fn on_reinvite_response(
        &mut self,
        now: Instant,
        call_id: &str,
        cseq: u32,
        code: u16,
        resp: &Message,
    ) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        let local = self.local_media(call.line);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let Some(re) = call.reinvite.filter(|r| r.cseq == cseq) else {
            return;
        };
        if code < 200 {
            return;
        }
        call.reinvite = None;
        let what = if re.hold { "hold" } else { "resume" };
        if (200..300).contains(&code) {
            call.set_session(session_timer::from_response(resp, now));
        }
        match code {
            200..=299 if re.refresh => {
                if let Some(dialog) = call.dialog.as_mut() {
                    dialog.refresh_target(resp);
                }
            }
            200..=299 => {
                let offered = match (re.hold, call.remote_hold) {
                    (true, true) => Direction::Inactive,
                    (true, false) => Direction::SendOnly,
                    (false, _) => Direction::SendRecv,
                };
                if let Some(dialog) = call.dialog.as_mut() {
                    dialog.refresh_target(resp);
                }
                let negotiated = resp
                    .body_text()
                    .and_then(|b| sdp::parse(b.as_bytes()).ok())
                    .and_then(|s| sdp::negotiate_answer(&s, &local).ok());
                if let Some(mut n) = negotiated {
                    call.remote_hold = held_by_answer(offered, n.direction, call.remote_hold);
                    n.direction = intersect(offered, n.direction);
                    call.media = Some(n);
                }
                call.local_hold = re.hold;
                self.announce(call_id, None, None);
                self.announce_media(call_id);
                self.happen(Happening::HoldSettled {
                    call_id: call_id.to_string(),
                    held: re.hold,
                });
            }
            491 => {
                let role = call.role;
                let wait = self.glare_wait(role);
                let Some(call) = self.call_mut(call_id) else {
                    return;
                };
                call.glare_hold = re.hold;
                call.timers.set(CallTimer::GlareRetry, now + wait);
            }
            408 | 481 => {
                self.send_bye(now, call_id);
                self.finish_call(
                    call_id,
                    Some(code),
                    "the call was lost (the far end no longer knows it)",
                );
            }
            _ if re.refresh => {
                // The session goes on until its timer says otherwise.
                tracing::warn!(call_id, code, "session refresh refused");
            }
            _ => {
                self.error(format!(
                    "{what} failed: the far end answered {code} {}",
                    resp.reason()
                ));
                self.happen(Happening::HoldSettled {
                    call_id: call_id.to_string(),
                    held: false,
                });
            }
        }
    }

    /// A 2xx for an INVITE whose transaction is gone: resend our ACK.
    pub(in crate::sip) fn on_stray_invite_2xx(&mut self, now: Instant, resp: &Message) {
        let to_tag = resp.to.tag().unwrap_or_default();
        let ack = self
            .acks
            .iter()
            .find(|a| {
                a.until > now
                    && a.call_id == resp.call_id
                    && a.cseq == resp.cseq.0
                    && a.to_tag == to_tag
            })
            .map(|a| a.wire.clone());
        if let Some(wire) = ack {
            self.transmits.push_back(wire);
        }
    }

    /// A client transaction of the call got no answer (Timer B or F).
    pub(in crate::sip) fn on_call_tx_timeout(
        &mut self,
        now: Instant,
        call_id: &str,
        request: &Message,
    ) {
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

    /// A call's timers: its own table's expired ones, handled in one `match`, then the
    /// feature machines riding on it.
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
            }
        }
        self.on_transfer_timer(now, call_id);
        self.on_pbx_timer(now, call_id);
        self.on_refer_ask_timer(now, call_id);
    }

    /// No ACK came for our 2xx: the call ends (`true`) if it was the initial INVITE's (or
    /// carried our offer), else it goes on, and a hold that waited for the ACK is sent.
    pub(in crate::sip::call) fn ack_given_up(&mut self, now: Instant, call_id: &str) -> bool {
        let Some(call) = self.call_mut(call_id) else {
            return false;
        };
        let initial_cseq = (call.role == Role::Callee).then_some(call.invite.cseq.0);
        let Some((cseq, offer, hold)) = call
            .pending_ack
            .as_ref()
            .map(|p| (p.cseq, p.offer, p.hold_after))
        else {
            return false;
        };
        call.ack_settled();
        if initial_cseq == Some(cseq) || offer {
            tracing::warn!(call_id, "no ACK for our 2xx; ending the call");
            self.send_bye(now, call_id);
            self.finish_call(
                call_id,
                None,
                "the far end never confirmed the answer (no ACK)",
            );
            return true;
        }
        // A lost ACK to the 2xx of a re-INVITE (hold, resume, refresh) leaves the session
        // as that 2xx set it. §13.3.1.4 says the session SHOULD end; a caller lost to
        // dropped ACKs is worse, so the call goes on.
        tracing::warn!(
            call_id,
            "no ACK for our 2xx to a re-INVITE; the call goes on"
        );
        if hold && call.is_talking() && call.reinvite.is_none() {
            self.send_reinvite(now, call_id, true);
        }
        false
    }

    /// Resends our 2xx still waiting for its ACK (over UDP), the interval doubling up to T2.
    pub(in crate::sip::call) fn resend_2xx(&mut self, now: Instant, call_id: &str) {
        let t2 = self.cfg.timers.t2;
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let Some(p) = call.pending_ack.as_mut() else {
            return;
        };
        p.interval = (p.interval * 2).min(t2);
        let (interval, wire) = (p.interval, p.wire.clone());
        call.timers.set(CallTimer::AckResend, now + interval);
        if !wire.transport.is_reliable() {
            self.transmits.push_back(wire);
        }
    }

    // ---- requests we receive ----

    /// A new INVITE (no To tag).
    pub(in crate::sip) fn on_new_invite(&mut self, now: Instant, req: &Message) {
        // A retransmission after our 2xx (its transaction is gone): resend the 2xx.
        let existing = self.calls().find(|c| {
            c.call_id == req.call_id
                && c.role == Role::Callee
                && c.invite.from.tag() == req.from.tag()
        });
        if let Some(call) = existing {
            if call.invite.via.branch() != req.via.branch() {
                // The same request by another path (§8.2.2.2): a merged request.
                self.respond(now, req, 482, |b| b);
                return;
            }
            if let Some(p) = &call.pending_ack {
                let wire = p.wire.clone();
                self.transmits.push_back(wire);
            }
            // The call answers this INVITE itself: the transaction just made for the
            // retransmission would otherwise wait for a final response forever.
            if let Some(key) = TxKey::of(req) {
                self.servers.remove(&key);
            }
            return;
        }
        if self.calls().any(|c| c.call_id == req.call_id) {
            self.respond(now, req, 482, |b| b);
            return;
        }
        if session_timer::too_brief(req) {
            self.respond(now, req, 422, |b| {
                b.header("Min-SE", session_timer::MIN_SE.to_string())
            });
            return;
        }
        let replaced = match self.replaced_call(req) {
            Ok(replaced) => replaced,
            Err((code, why)) => {
                self.respond(now, req, code, |b| {
                    b.header("Warning", format!("399 switchboard \"{why}\""))
                });
                return;
            }
        };
        let line = match &replaced {
            Some((_, line)) => *line,
            None => match self.free_line(self.selected) {
                Some(line) => line,
                None => {
                    self.respond(now, req, 486, |b| b);
                    return;
                }
            },
        };
        let remote_offer = match req.body_text().filter(|b| !b.trim().is_empty()) {
            None => None,
            Some(body) => match sdp::parse(body.as_bytes()) {
                Ok(offer) => {
                    let local = self.local_media(line);
                    if let Err(e) = sdp::answer(&offer, &local, Direction::SendRecv, 0, 0) {
                        self.respond(now, req, 488, |b| {
                            b.header("Warning", format!("305 switchboard \"{e}\""))
                        });
                        if matches!(e, sdp::SdpError::NoCrypto | sdp::SdpError::SrtpOff) {
                            self.error(format!("refused a call from {}: {e}", req.from.uri));
                        }
                        return;
                    }
                    Some(offer)
                }
                Err(e) => {
                    self.respond(now, req, 400, |b| {
                        b.header("Warning", format!("399 switchboard \"bad SDP: {e}\""))
                    });
                    return;
                }
            },
        };
        if let Some((old, _)) = &replaced {
            self.end_replaced(now, old, req);
        }
        let tag = self.new_tag();
        let session = self.tokens.next() >> 1;
        let mut call = Call::new(
            req.call_id.clone(),
            line,
            Role::Callee,
            req.from.uri.clone(),
            tag.clone(),
            req.clone(),
        );
        call.dialog = Some(Dialog::from_request(req, &tag));
        call.remote_replaces = super::attended::announces_replaces(req);
        call.phase = Phase::Ringing {
            offer: remote_offer,
        };
        call.sdp_session = session;
        call.first_hop = req
            .contact()
            .and_then(|c| SipUri::parse(&c.uri)?.socket_addr());
        self.lines[line] = Some(call);
        self.new_srtp_keys(line);
        self.emit(Event::Incoming {
            line: line_no(line),
            call_id: req.call_id.clone(),
            from: req.from.uri.clone(),
            display_name: req.from.display.clone(),
            referred_by: req
                .header("Referred-By")
                .and_then(super::replaces::referred_by_uri),
            replaces: replaced.as_ref().map(|(old, _)| old.clone()),
        });
        if replaced.is_some() {
            // RFC 3891 §3: the new call takes over without alerting the operator.
            return self.answer(now, Some(line_no(line)));
        }
        let contact = self.contact_uri();
        self.respond(now, req, 180, |b| {
            b.header("Contact", format!("<{contact}>"))
        });
        self.announce(&req.call_id, None, None);
    }

    /// CANCEL of an INVITE we have not answered (§9.2).
    pub(in crate::sip) fn on_cancel(&mut self, now: Instant, req: &Message) {
        let ringing = self
            .calls()
            .find(|c| {
                c.role == Role::Callee
                    && c.call_id == req.call_id
                    && c.state() == CallState::Ringing
                    && c.invite.via.branch() == req.via.branch()
            })
            .map(|c| (c.call_id.clone(), c.invite.clone()));
        match ringing {
            Some((call_id, invite)) => {
                self.respond(now, req, 200, |b| b);
                self.respond(now, &invite, 487, |b| b);
                self.finish_call(&call_id, Some(487), "the caller hung up");
            }
            None => {
                self.respond(now, req, 481, |b| b);
            }
        }
    }

    /// The ACK for our 2xx (its own transaction).
    pub(in crate::sip) fn on_ack(&mut self, now: Instant, req: &Message) {
        let Some(call) = self
            .lines
            .iter_mut()
            .flatten()
            .find(|c| c.dialog.as_ref().is_some_and(|d| d.matches(req)))
        else {
            return;
        };
        if call
            .pending_ack
            .as_ref()
            .is_none_or(|p| p.cseq != req.cseq.0)
        {
            return;
        }
        let (offer, hold) = call
            .pending_ack
            .as_ref()
            .map_or((false, false), |p| (p.offer, p.hold_after));
        call.ack_settled();
        if let Some(dialog) = call.dialog.as_mut() {
            dialog.refresh_target(req);
        }
        let call_id = call.call_id.clone();
        if offer {
            self.answer_in_ack(now, &call_id, req);
        }
        if hold
            && self
                .calls()
                .any(|c| c.call_id == call_id && c.is_talking() && c.reinvite.is_none())
        {
            self.send_reinvite(now, &call_id, true);
        }
    }

    /// The ACK carrying the answer to the offer we put in our 2xx.
    pub(in crate::sip::call) fn answer_in_ack(
        &mut self,
        now: Instant,
        call_id: &str,
        req: &Message,
    ) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let line = call.line;
        let local = self.local_media(line);
        let answer = req
            .body_text()
            .map(|b| sdp::parse(b.as_bytes()).and_then(|s| sdp::negotiate_answer(&s, &local)));
        match answer {
            Some(Ok(n)) => {
                if let Some(call) = self.call_mut(call_id) {
                    let offered = call.last_sdp_direction.unwrap_or(Direction::SendRecv);
                    call.remote_hold = held_by_answer(offered, n.direction, call.remote_hold);
                    call.media = Some(n);
                }
                self.announce(call_id, None, None);
                self.announce_media(call_id);
            }
            _ => {
                self.send_bye(now, call_id);
                self.finish_call(
                    call_id,
                    None,
                    "the far end sent no usable answer to our offer",
                );
            }
        }
    }

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

    /// The peer's re-INVITE: hold, resume, or a session refresh.
    pub(in crate::sip::call) fn on_reinvite(&mut self, now: Instant, call_id: &str, req: &Message) {
        let Some(call) = self.calls().find(|c| c.call_id == call_id) else {
            return;
        };
        if call.reinvite.is_some() || call.pending_ack.is_some() {
            self.respond(now, req, 491, |b| b);
            return;
        }
        if !call.is_established() {
            self.respond(now, req, 500, |b| b.header("Retry-After", "1"));
            return;
        }
        if session_timer::too_brief(req) {
            self.respond(now, req, 422, |b| {
                b.header("Min-SE", session_timer::MIN_SE.to_string())
            });
            return;
        }
        let local = self.local_media(call.line);
        let contact = self.contact_uri();
        let before = call.state();
        self.taken_back(now, call_id, req);
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if let Some(dialog) = call.dialog.as_mut() {
            dialog.refresh_target(req);
        }
        call.remote_replaces |= super::attended::announces_replaces(req);
        let offer = req.body_text().filter(|b| !b.trim().is_empty());
        let (body, negotiated) = match offer.map(|b| sdp::parse(b.as_bytes())) {
            Some(Ok(offer)) => {
                let remote_hold = offer.is_hold();
                let wish = if call.local_hold {
                    Direction::SendOnly
                } else {
                    Direction::SendRecv
                };
                let version = call.next_sdp_version(wish_with(wish, remote_hold));
                match sdp::answer(&offer, &local, wish, call.sdp_session, version) {
                    Ok((body, n)) => {
                        call.remote_hold = remote_hold;
                        (body, Some(n))
                    }
                    Err(e) => {
                        self.respond(now, req, 488, |b| {
                            b.header("Warning", format!("305 switchboard \"{e}\""))
                        });
                        return;
                    }
                }
            }
            Some(Err(e)) => {
                self.respond(now, req, 488, |b| {
                    b.header("Warning", format!("399 switchboard \"bad SDP: {e}\""))
                });
                return;
            }
            None => {
                let dir = call.wanted_direction();
                let version = call.next_sdp_version(dir);
                (sdp::offer(&local, dir, call.sdp_session, version), None)
            }
        };
        let offer_in_2xx = negotiated.is_none();
        if let Some(n) = negotiated {
            call.media = Some(n);
        }
        let changed = before != call.state();
        // Every re-INVITE refreshes the session, or ends its timer if it asks for none (§9).
        let (session, session_headers) = session_timer::answer(req, now).unzip();
        call.set_session(session);
        let wire = self.respond(now, req, 200, |b| {
            session_headers
                .into_iter()
                .flatten()
                .fold(b, |b, (name, value)| b.header(name, value))
                .header("Contact", format!("<{contact}>"))
                .header("Allow", super::ALLOW)
                .header("Supported", super::SUPPORTED)
                .body("application/sdp", body)
        });
        let t1 = self.cfg.timers.t1;
        if let (Some(wire), Some(call)) = (wire, self.call_mut(call_id)) {
            call.await_ack(wire, req.cseq.0, offer_in_2xx, now, t1);
        }
        if changed {
            self.announce(call_id, None, None);
        }
        self.announce_media(call_id);
    }

    // ---- session timer (RFC 4028) ----

    /// The call's session timer is due: refresh by re-INVITE, or end a call the far end
    /// stopped refreshing.
    pub(in crate::sip::call) fn on_session_timer(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        let Some(timer) = call.session else {
            return;
        };
        if !timer.we_refresh {
            tracing::warn!(
                call_id,
                "no session refresh from the far end; ending the call"
            );
            self.send_bye(now, call_id);
            return self.finish_call(
                call_id,
                None,
                "session timer expired: the far end stopped refreshing the call",
            );
        }
        // Whatever happens next (a 2xx restarts it), do not fire again before the expiry.
        call.set_session(Some(SessionTimer {
            due: now + Duration::from_secs(u64::from(timer.interval) / 2),
            ..timer
        }));
        if !call.is_established() || call.is_renegotiating() {
            return; // the re-INVITE or 2xx under way refreshes the session itself
        }
        let hold = call.local_hold;
        self.send_reinvite(now, call_id, hold);
        if let Some(re) = self.call_mut(call_id).and_then(|c| c.reinvite.as_mut()) {
            re.refresh = true;
        }
    }

    /// A 422 to our INVITE: ask again with the far end's larger `Min-SE` (RFC 4028 §7.4),
    /// with the same credentials, or give up.
    pub(in crate::sip::call) fn on_session_too_brief(
        &mut self,
        now: Instant,
        call_id: &str,
        resp: &Message,
    ) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        match session_timer::retry_after_422(resp, call.session_asked) {
            Some(interval) => {
                call.session_asked = interval;
                call.finalised = false;
                let credentials = ["Proxy-Authorization", "Authorization"]
                    .into_iter()
                    .find_map(|name| Some((name, call.invite.header(name)?.to_string())));
                self.send_invite(now, call_id, credentials);
            }
            None => {
                call.finalised = true;
                self.finish_call(
                    call_id,
                    Some(422),
                    "the far end wants an unusable session timer (422 Session Interval Too Small)",
                );
            }
        }
    }

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
        call.gone = true;
        call.phase = Phase::Ended {
            status,
            answered: call.is_established(),
            cancel_owed: false,
        };
        call.ack_settled();
        // A re-INVITE still out is only ACKed when answered: an ended call does not change.
        call.reinvite = None;
        call.set_session(None);
        call.timers.stop_all();
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

    /// Holds every talking call except the one on line `keep`.
    pub(in crate::sip) fn hold_others(&mut self, now: Instant, keep: usize) {
        let talking: Vec<String> = self
            .lines
            .iter()
            .flatten()
            .filter(|c| c.line != keep && c.is_talking() && c.reinvite.is_none())
            .map(|c| c.call_id.clone())
            .collect();
        for call_id in talking {
            match self.call_mut(&call_id) {
                // No re-INVITE before the ACK of our 2xx: hold when it comes.
                Some(Call {
                    pending_ack: Some(p),
                    ..
                }) => p.hold_after = true,
                _ => self.send_reinvite(now, &call_id, true),
            }
        }
        if let Some(c) = self.lines.get_mut(keep).and_then(Option::as_mut) {
            if let Some(p) = c.pending_ack.as_mut() {
                p.hold_after = false;
            }
        }
    }

    /// Selects line `index`, telling the operator when it changes.
    pub(in crate::sip) fn set_selected(&mut self, index: usize) {
        if self.selected != index {
            self.selected = index;
            self.emit(Event::Line {
                line: line_no(index),
            });
        }
    }

    /// Takes the call back from our hold (a recall): resumes it, selecting its line and holding
    /// the others, now or, when a re-INVITE is under way on it (our hold still in flight, the
    /// far end's offer), once that is over. Nothing when the call is not held by us.
    pub(in crate::sip) fn resume_when_settled(&mut self, now: Instant, call_id: &str) {
        let Some(call) = self.call_mut(call_id) else {
            return;
        };
        if call.is_gone() || !call.is_established() {
            return;
        }
        if call.timers.is_set(CallTimer::GlareRetry) && call.glare_hold && !call.local_hold {
            // The hold a 491 postponed is no longer wanted.
            call.timers.stop(CallTimer::GlareRetry);
        }
        if call.is_renegotiating() || call.timers.is_set(CallTimer::GlareRetry) {
            let first = !call.timers.is_set(CallTimer::ResumeRetry);
            call.timers.set(CallTimer::ResumeRetry, now + RESUME_RETRY);
            if first {
                // The operator has the line at once; the resume follows the re-INVITE.
                let line = call.line;
                self.set_selected(line);
            }
            return;
        }
        if !call.local_hold {
            return;
        }
        let line = call.line;
        self.hold_others(now, line);
        self.set_selected(line);
        self.send_reinvite(now, call_id, false);
    }

    /// A hold or resume re-INVITE finished (`held`: the call is now held): what waited for it
    /// goes on — a transfer's REFER, a `conference` asked for meanwhile, a resume wanted after
    /// a failed transfer of us.
    pub(in crate::sip) fn hold_settled(&mut self, now: Instant, call_id: &str, held: bool) {
        self.transfer_after_hold(now, call_id, held);
        let t1 = self.cfg.timers.t1;
        if let Some(c) = self.call_mut(call_id) {
            if let Some(at) = c.timers.get(CallTimer::ResumeRetry) {
                // A resume waiting for this re-INVITE goes T1 after its ACK: sent at once, it
                // could pass the ACK in a proxy, and the far end refuses it (pjsip: 500).
                c.timers.set(CallTimer::ResumeRetry, at.max(now + t1));
            }
        }
        self.join_wanted_conference(now);
    }

    /// How long to wait before asking again after 491 Request Pending (RFC 3261 §14.1): the
    /// Call-ID's owner 2.1–4 s, the other side 0–2 s.
    pub(in crate::sip) fn glare_wait(&mut self, role: Role) -> Duration {
        let ms = match role {
            Role::Caller => 2_100 + self.tokens.next() % 1_901,
            Role::Callee => self.tokens.next() % 2_001,
        };
        Duration::from_millis(ms)
    }

    /// `preferred` if free, else the first free line.
    pub(in crate::sip) fn free_line(&self, preferred: usize) -> Option<usize> {
        if self.lines.get(preferred).is_some_and(Option::is_none) {
            return Some(preferred);
        }
        self.lines.iter().position(Option::is_none)
    }

    /// What we can receive on line `index`.
    pub(in crate::sip::call) fn local_media(&self, index: usize) -> LocalMedia {
        LocalMedia {
            addr: self.cfg.media_ip,
            port: self.cfg.rtp_ports.get(index).copied().unwrap_or_default(),
            codecs: self.cfg.codecs.clone(),
            dtmf: true,
            opus_bitrate: self.cfg.opus_bitrate,
            srtp: self.cfg.srtp.effective(),
            keys: self.srtp_keys.get(index).copied().unwrap_or_default(),
        }
    }

    /// Fresh SRTP keys for a new call on line `index` (kept for the call's life, through
    /// hold and resume).
    pub(in crate::sip::call) fn new_srtp_keys(&mut self, index: usize) {
        let Some(source) = self.cfg.srtp.keys.as_ref() else {
            return;
        };
        let keys = [source.key(), source.key()];
        if let Some(slot) = self.srtp_keys.get_mut(index) {
            *slot = keys;
        }
    }

    /// The Request-URI for what the operator typed, completed in the account's domain
    /// ([`Target::parse`]).
    pub(in crate::sip) fn target_uri(&self, typed: &str) -> Result<String, String> {
        target_uri_in(typed, &self.cfg.account.domain)
    }
}

/// The Request-URI for what the operator typed, a number completed in `domain`.
pub(in crate::sip::call) fn target_uri_in(typed: &str, domain: &str) -> Result<String, String> {
    Target::parse(typed, domain)
        .map(|t| t.to_string())
        .map_err(|e| e.to_string())
}

/// The operator's words for a failed INVITE.
pub(in crate::sip::call) fn failure_reason(code: u16, phrase: &str) -> String {
    match code {
        404 | 604 => "the number does not exist".to_string(),
        408 => "the far end did not answer".to_string(),
        480 => "the far end is not available".to_string(),
        486 | 600 => "the far end is busy".to_string(),
        487 => "the call was cancelled".to_string(),
        488 | 606 => "no codec in common with the far end".to_string(),
        603 => "the far end declined the call".to_string(),
        _ => format!("the call failed: {code} {phrase}"),
    }
}

/// True if a direction (ours) includes receiving.
pub(in crate::sip::call) fn receives(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::RecvOnly)
}

/// True if a direction (ours) includes sending.
pub(in crate::sip::call) fn sends(d: Direction) -> bool {
    matches!(d, Direction::SendRecv | Direction::SendOnly)
}

/// Whether the far end holds us after answering our offer of `offered` (`ours`: our
/// direction as its answer leaves it): it takes no audio from us (RFC 3264 §8.4: its answer
/// is `sendonly` or `inactive`). An answer to an `inactive` offer says nothing: `before` stays.
pub(in crate::sip::call) fn held_by_answer(
    offered: Direction,
    ours: Direction,
    before: bool,
) -> bool {
    if offered == Direction::Inactive {
        before
    } else {
        !sends(ours)
    }
}

/// The direction allowed by both what we offered and what was answered.
pub(in crate::sip::call) fn intersect(offered: Direction, answered: Direction) -> Direction {
    let send = !matches!(offered, Direction::RecvOnly | Direction::Inactive)
        && !matches!(answered, Direction::RecvOnly | Direction::Inactive);
    let recv = receives(offered) && receives(answered);
    match (send, recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// Our direction after answering with `wish` when the peer holds or not
/// (only for SDP version bookkeeping).
pub(in crate::sip::call) fn wish_with(wish: Direction, remote_hold: bool) -> Direction {
    if remote_hold {
        intersect(wish, Direction::SendOnly)
    } else {
        wish
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
