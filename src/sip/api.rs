//! The SIP core's vocabulary: [`Command`]s in, [`Event`]s out.
//!
//! These are the only SIP-layer types the TUI and the headless mode see. Every
//! event serialises to one JSON object with an `"event"` field; events about a
//! call carry `"line"` (1-based) and `"call_id"`. Later features extend both
//! enums; existing words and fields never change meaning. Only the SIP core's words are
//! here: what the driver, the media engine and the screen add (routes, trace, sound, devices,
//! quality, recording files, stats) is in [`crate::front`], which wraps these.

use serde::Serialize;

/// A line number as the operator sees it: 1, 2, …
pub type LineNo = u8;

/// What the operator (keys, `:` line or headless stdin) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Call a number or SIP URI on the selected line.
    Dial(String),
    /// Call a number or SIP URI through the configured account named `account`: its identity,
    /// credentials and proxy or registrar. Outbound routes produce it.
    DialVia {
        /// The account's name (`[[account]] name`).
        account: String,
        /// The number or SIP URI.
        target: String,
    },
    /// Answer the ringing call on the given line (or the first ringing one).
    Answer(Option<LineNo>),
    /// Reject a ringing call with 603 Decline.
    Decline(Option<LineNo>),
    /// End (or cancel, or reject) the call on the given line (default: selected).
    Hangup(Option<LineNo>),
    /// Put the call on hold.
    Hold(Option<LineNo>),
    /// Take the call off hold.
    Resume(Option<LineNo>),
    /// Select a line; a connected call on the previously selected line is held.
    Line(LineNo),
    /// Select the other line (holding the current call).
    Swap,
    /// Blind transfer of the selected call.
    Transfer(String),
    /// Attended transfer: hold the selected call and call the target.
    Consult(String),
    /// Complete the attended transfer.
    Complete,
    /// Cancel the attended transfer.
    Cancel,
    /// Send DTMF digits on the selected call.
    Dtmf(String),
    /// Toggle microphone mute on the selected line.
    Mute,
    /// Join every line with an answered call in a local conference; while joined, split it
    /// (the selected line talks, the others are held).
    Conference,
    /// Start (`true`) or stop recording the call on the given line (default: selected).
    Record(bool, Option<LineNo>),
    /// Pick up a call ringing at another extension.
    Pickup(String),
    /// These extensions are in view now (the picker's rows): keep busy lamps for them beside
    /// the configured ones, within a bound; those that left the view are ended after a grace
    /// period. Empty: nothing is in view.
    Watch(Vec<String>),
    /// Un-register, end all calls and stop.
    Quit,
    /// A favourite's key (by position from 1, label or number): with a call selected the
    /// configured transfer to it, on a ringing lamp its pickup, else a call to it.
    Favourite(String),
    /// List the favourites with their lamps.
    Favourites,
    /// Park the call on this line (the selected one by default) at the account's park
    /// extension.
    Park(Option<LineNo>),
    /// Take back the call parked in this slot.
    Unpark(String),
    /// Do not disturb on (`Some(true)`), off, or the other way (`None`).
    Dnd(Option<bool>),
    /// Close the oldest open wrap-up with a code and note, or skip it.
    Wrapup(super::answer_policy::WrapupChoice),
    /// Make the account with this name the one new calls go out through (when no route names
    /// one).
    Account(String),
}

/// The state of a call as shown to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CallState {
    /// Our INVITE is out, nothing heard back yet.
    Dialing,
    /// The far end is ringing (180 without early media).
    Ringing,
    /// The far end sent early media (183 with SDP).
    Early,
    /// Talking.
    Connected,
    /// We hold the far end.
    Held,
    /// The far end holds us.
    RemoteHeld,
    /// The call is over.
    Ended,
}

/// Blind or attended, as shown in `transfer` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferKind {
    /// `transfer <target>`.
    Blind,
    /// `consult <target>` then `complete` (REFER with Replaces).
    Attended,
    /// The far end transfers this call (we received its REFER).
    Incoming,
}

/// How a blind transfer is carried out, as shown in `transfer` events (`"mechanism"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransferMechanism {
    /// `blind = "safe"`: the caller is held and the target rung from a free line first; only
    /// once the target answers are they joined (REFER with Replaces). Nothing is handed over
    /// before the target took the call, so a PBX cannot drop the caller on failure.
    RingFirst,
    /// `blind = "notify"` (or `"safe"` with no free line): REFER, then the call stays until
    /// the NOTIFYs report the target's answer; on failure the call comes back.
    Notify,
    /// `blind = "immediate"`: REFER, and the call ends once the REFER is accepted.
    Immediate,
}

/// Where a transfer stands, as shown in `transfer` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TransferStatus {
    /// The operator asked for it (or, for `incoming`, the far end did).
    Requested,
    /// The far end asks to transfer this call and waits for the operator's word:
    /// `answer` goes, `decline` stays (`[transfer] accept_refer = "ask"`).
    Asking,
    /// The transferee accepted the REFER (202).
    Accepted,
    /// The transferee is calling the target (ring-first: the target answered and the caller
    /// is being joined to it).
    Trying,
    /// The target is ringing.
    Ringing,
    /// The target answered; our call ends.
    Succeeded,
    /// It did not work (`reason` says why).
    Failed,
    /// The call is back with the operator.
    Recalled,
}

/// Direction of a negotiated media stream, from our point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Both ways.
    SendRecv,
    /// We only send (we hold).
    SendOnly,
    /// We only receive (the peer holds).
    RecvOnly,
    /// No media either way.
    Inactive,
}

/// Something that happened, for the screen, the JSON stream and the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The registrar accepted our binding.
    Registered {
        /// The account's name (`[[account]] name`).
        account: String,
        /// Its address-of-record (`user@domain`).
        aor: String,
        /// Granted expiry in seconds.
        expires: u32,
    },
    /// Registration failed; a retry is scheduled.
    RegistrationFailed {
        /// The account's name (`[[account]] name`).
        account: String,
        /// Its address-of-record (`user@domain`).
        aor: String,
        /// SIP status code, absent on timeout or transport error.
        status: Option<u16>,
        /// What went wrong, in words.
        reason: String,
        /// Seconds until the next attempt.
        retry_in: u64,
    },
    /// The binding was removed (on quit).
    Unregistered {
        /// The account's name (`[[account]] name`).
        account: String,
        /// Its address-of-record (`user@domain`).
        aor: String,
    },
    /// A call arrived and rings on `line`.
    Incoming {
        /// The line it rings on.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// The caller's URI.
        from: String,
        /// The caller's display name, if any.
        display_name: Option<String>,
        /// Who transferred the caller to us (the INVITE's Referred-By URI), if anyone.
        #[serde(skip_serializing_if = "Option::is_none")]
        referred_by: Option<String>,
        /// The Call-ID of our call this one replaces (INVITE with Replaces, RFC 3891): it is
        /// answered at once on that call's line and the old call ends.
        #[serde(skip_serializing_if = "Option::is_none")]
        replaces: Option<String>,
        /// The account (its name) the call came in for: the line it rings on.
        account: String,
    },
    /// A call changed state.
    Call {
        /// The line of the call.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// The new state.
        state: CallState,
        /// The far end's URI.
        peer: String,
        /// The SIP status that ended the call, if any.
        #[serde(skip_serializing_if = "Option::is_none")]
        status: Option<u16>,
        /// Why the call ended, in words.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// The account (its name) the call belongs to, when several accounts run.
        #[serde(skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// Media was negotiated (or renegotiated) for a call.
    Media {
        /// The line of the call.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// Codec name (`opus`, `PCMU`, `PCMA`).
        codec: String,
        /// RTP payload type used for it.
        payload_type: u8,
        /// The remote RTP address (`ip:port`).
        remote: String,
        /// Direction from our point of view.
        direction: Direction,
        /// Payload type of telephone-event, if negotiated.
        #[serde(skip_serializing_if = "Option::is_none")]
        dtmf_payload_type: Option<u8>,
    },
    /// The microphone of a call was muted or unmuted.
    Mute {
        /// The line of the call.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// True when the far end no longer hears the operator.
        muted: bool,
    },
    /// The far end sent a DTMF digit (RFC 4733 or SIP INFO).
    Dtmf {
        /// The line of the call.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// `0-9`, `*`, `#`, `A-D`.
        digit: char,
    },
    /// Progress of a transfer of the call on `line`.
    Transfer {
        /// The line of the call being transferred.
        line: LineNo,
        /// SIP Call-ID of that call.
        call_id: String,
        /// `blind` (or `attended`).
        kind: TransferKind,
        /// How a blind transfer is carried out: `ring-first`, `notify` or `immediate`
        /// (absent for attended and incoming transfers, and for PBX feature codes).
        #[serde(skip_serializing_if = "Option::is_none")]
        mechanism: Option<TransferMechanism>,
        /// Where it stands.
        status: TransferStatus,
        /// The transfer target (SIP URI).
        target: String,
        /// The SIP status behind this step, where there is one.
        #[serde(skip_serializing_if = "Option::is_none")]
        status_code: Option<u16>,
        /// What happened, in words (failures, recall, success).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Calls were joined in a local conference (`active`), its members changed, or it ended
    /// (`active: false`: split, left, or one member left).
    Conference {
        /// The members' lines, in order.
        lines: Vec<LineNo>,
        /// True while the calls are joined.
        active: bool,
    },
    /// The selected line changed.
    Line {
        /// The now selected line.
        line: LineNo,
    },
    /// A command could not be carried out, or input was malformed.
    Error {
        /// What went wrong, in words.
        message: String,
    },
    /// The busy lamp of a watched extension changed (`[[account]] blf`, or `watch`); a lamp
    /// from the view goes `unknown` when it is no longer watched.
    Blf {
        /// The extension as configured.
        ext: String,
        /// `idle`, `ringing`, `busy` or `unknown`.
        state: super::dialog_info::BlfState,
    },
    /// The user agent stopped (after `quit`).
    Stopped,
    /// Do not disturb was switched on or off (`dnd`).
    Dnd {
        /// New calls are refused (or the PBX was told, by `code`).
        on: bool,
        /// The PBX feature code dialled to tell it (`dnd_on_code` / `dnd_off_code`).
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
    },
    /// A new call was answered busy without ringing: do not disturb, or a wrap-up under way
    /// with `busy_during_wrapup`. It took no line.
    Refused {
        /// SIP Call-ID.
        call_id: String,
        /// The caller's URI.
        from: String,
        /// The caller's display name, if any.
        display_name: Option<String>,
        /// The status sent (486 or 480).
        status: u16,
        /// Why, in words (`do not disturb`, …).
        reason: String,
    },
    /// The ringing call on `line` will be answered by itself after `after_ms`
    /// (`auto_answer = "on"`, or an intercom call).
    AutoAnswer {
        /// The line it rings on.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// Milliseconds until it is answered.
        after_ms: u64,
    },
    /// The after-call wrap-up of a call (`[wrapup]`): `started` as the call ends (just before
    /// its `ended` state), then `saved`, `skipped` or `expired`.
    Wrapup {
        /// The line the call was on.
        line: LineNo,
        /// SIP Call-ID of the call.
        call_id: String,
        /// The far end's URI.
        peer: String,
        /// Where it stands.
        status: super::answer_policy::WrapupStatus,
        /// The codes offered (on `started`).
        #[serde(skip_serializing_if = "Vec::is_empty")]
        codes: Vec<String>,
        /// Seconds until it closes itself (on `started`, when limited).
        #[serde(skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
        /// A code must be chosen (on `started`).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        required: bool,
        /// The code chosen (on `saved`).
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// The note typed (on `saved`).
        #[serde(skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// The favourites with their lamps, after `favourites`.
    Favourites {
        /// In their configured order.
        favourites: Vec<FavouriteLamp>,
    },
    /// A call was parked: the PBX accepted the transfer to the park extension.
    Parked {
        /// The line the call was on.
        line: LineNo,
        /// SIP Call-ID of the parked call.
        call_id: String,
        /// The parked party's URI.
        peer: String,
        /// The slot it waits in, when the PBX said (`unpark <slot>` takes it back).
        #[serde(skip_serializing_if = "Option::is_none")]
        slot: Option<String>,
    },
    /// A call that rings now is one we parked, come back (the PBX's park timeout).
    ParkReturned {
        /// The line it rings on.
        line: LineNo,
        /// SIP Call-ID of the new call.
        call_id: String,
        /// The caller's URI.
        from: String,
        /// The slot it was parked in, when known.
        #[serde(skip_serializing_if = "Option::is_none")]
        slot: Option<String>,
    },
    /// New calls now go out through this account (its name) when no route names one.
    AccountSelected {
        /// The account's name.
        account: String,
    },
}

/// One favourite as `favourites` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FavouriteLamp {
    /// The configured label.
    pub label: String,
    /// The extension or URI.
    pub number: String,
    /// Its key on the screen (`f1`, `alt-1`), if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its busy lamp: `idle`, `ringing`, `busy` or `unknown`.
    pub lamp: super::dialog_info::BlfState,
}

/// How much state the SIP core holds: after every call and subscription has ended and the
/// transactions' wait states have run out, everything but `history` is back at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Census {
    /// Client transactions (requests we sent, not yet finished).
    pub client_transactions: usize,
    /// Server transactions (requests we received, including their wait states).
    pub server_transactions: usize,
    /// Calls on a line or still finishing their signalling.
    pub calls: usize,
    /// Dialog-state subscriptions (busy lamps, pickups).
    pub subscriptions: usize,
    /// ACKs kept to answer retransmitted 2xx responses.
    pub acks: usize,
    /// Calls placed by `pickup` still remembered.
    pub pickups: usize,
}
