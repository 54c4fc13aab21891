//! The vocabulary shared by every front end: [`Command`]s in, [`Event`]s out.
//!
//! These are the only SIP-layer types the TUI and the headless mode see. Every
//! event serialises to one JSON object with an `"event"` field; events about a
//! call carry `"line"` (1-based) and `"call_id"`. Later features extend both
//! enums; existing words and fields never change meaning. Non-SIP payloads (the sound
//! vocabulary) live in [`crate::sound`].

use serde::Serialize;

use crate::sound::{SoundCommand, VoiceStage};

/// A line number as the operator sees it: 1, 2, …
pub type LineNo = u8;

/// What the operator (keys, `:` line or headless stdin) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Call a number or SIP URI on the selected line.
    Dial(String),
    /// Call a number or SIP URI through another configured account (a trunk): its identity,
    /// credentials and proxy. Outbound routes produce it.
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
    /// Choose the outbound route for the next call.
    Route(String),
    /// Report every SIP message sent and received as a `sip` event (secrets redacted, or raw),
    /// or stop.
    Trace(TraceMode),
    /// Switch a microphone clean-up stage on (`Some(true)`), off, or over (`None`).
    Voice(VoiceStage, Option<bool>),
    /// Report what is alive (a `stats` event): transactions, calls, subscriptions, threads,
    /// open files and memory, for leak checks over a shift.
    Stats,
    /// A sound check: level meter, test tone, echo, device choice (not SIP; the core passes
    /// it by).
    Sound(SoundCommand),
    /// Un-register, end all calls and stop.
    Quit,
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

/// Which way a traced SIP message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceDirection {
    /// Received.
    In,
    /// Sent.
    Out,
}

/// What `trace` reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceMode {
    /// No `sip` events.
    Off,
    /// `trace on`: every message, with digest credentials and SRTP keys redacted.
    On,
    /// `trace on raw`: every message as on the wire, credentials and SRTP keys included.
    Raw,
}

impl TraceMode {
    /// In words, what the `sip` events carry in this mode.
    pub fn shows(self) -> &'static str {
        match self {
            TraceMode::Off => "no SIP messages",
            TraceMode::On => {
                "every SIP message, with digest credentials (Authorization, \
                 Proxy-Authorization, Authentication-Info) and SRTP keys (a=crypto inline:) \
                 replaced by <redacted>"
            }
            TraceMode::Raw => {
                "every SIP message as sent and received, UNREDACTED: digest credentials \
                 and SRTP media keys included; do not keep these logs"
            }
        }
    }
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
    /// The user agent is up and listening.
    Started {
        /// Local SIP address (`ip:port`).
        local: String,
        /// Transport of the listening socket(s).
        transport: String,
        /// The account in use (`user@domain`).
        account: String,
        /// One line about how we run (e.g. that the embedded default is in use).
        note: String,
        /// How many lines the phone has (`[ui] lines`).
        lines: LineNo,
    },
    /// The registrar accepted our binding.
    Registered {
        /// The account (`user@domain`).
        account: String,
        /// Granted expiry in seconds.
        expires: u32,
    },
    /// Registration failed; a retry is scheduled.
    RegistrationFailed {
        /// The account (`user@domain`).
        account: String,
        /// SIP status code, absent on timeout or transport error.
        status: Option<u16>,
        /// What went wrong, in words.
        reason: String,
        /// Seconds until the next attempt.
        retry_in: u64,
    },
    /// The binding was removed (on quit).
    Unregistered {
        /// The account (`user@domain`).
        account: String,
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
    /// Receive quality of a call, every few seconds while it has media.
    Quality {
        /// The line of the call.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// Codec name (`opus`, `PCMU`, `PCMA`).
        codec: String,
        /// Packets lost, in percent of those expected.
        loss_pct: f32,
        /// Interarrival jitter (RFC 3550) in milliseconds.
        jitter_ms: f32,
        /// Round-trip time from RTCP, when known.
        rtt_ms: Option<f32>,
        /// How long received audio waits in the jitter buffer (ms).
        buffer_ms: u32,
    },
    /// The microphone's clean-up stages (after start, and after each change).
    Voice {
        /// Noise suppression is on.
        noise_suppression: bool,
        /// Automatic gain control is on.
        agc: bool,
    },
    /// The audio devices in use (after start, and when they change).
    Devices {
        /// The microphone: a device name, `default`, a file, `silence` or `none`.
        input: String,
        /// The headset: a device name, `default`, a file, `discarded` or `none`.
        output: String,
        /// Where ringing goes: a device, `headset` or `none`.
        ring: String,
    },
    /// The microphone's level over the last 100 ms, while `level on`.
    Level {
        /// RMS in dB relative to full scale (−96 for silence, 0 for a full-scale square).
        dbfs: f32,
    },
    /// A device was written into the configuration file (`use-device`).
    DeviceChosen {
        /// `input`, `output` or `ring_output` (the `[audio]` key).
        role: String,
        /// The device as written.
        device: String,
        /// The configuration file changed.
        file: String,
    },
    /// Recording of a call started or stopped (by the operator, because the call ended, or
    /// because the file could not be written).
    Record {
        /// The line of the call.
        line: LineNo,
        /// SIP Call-ID.
        call_id: String,
        /// True from now on the call is being recorded; false: it no longer is.
        recording: bool,
        /// The recording file.
        path: String,
        /// Why it stopped (only when `recording` is false).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// How much audio the finished file holds, in milliseconds (on stop).
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        /// 20 ms frames lost because the disk could not keep up (on stop).
        #[serde(skip_serializing_if = "Option::is_none")]
        dropped_frames: Option<u64>,
    },
    /// Something happened to the audio devices (e.g. the headset was unplugged).
    Audio {
        /// What happened, in words.
        message: String,
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
    /// A SIP message sent or received, while `trace on` or `trace on raw`.
    Sip {
        /// `in` (received) or `out` (sent).
        direction: TraceDirection,
        /// The other end (`ip:port`).
        peer: String,
        /// The whole message as text (bodies that are not UTF-8 are shown lossily); secrets
        /// redacted unless `raw`.
        message: String,
        /// The message is unredacted (`trace on raw`).
        raw: bool,
    },
    /// The trace mode changed (`trace …`): what the `sip` events now carry.
    Trace {
        /// `off`, `on` (redacted) or `raw`.
        mode: TraceMode,
        /// In words, what the `sip` events show.
        shows: String,
    },
    /// The busy lamp of a watched extension changed (`[[account]] blf`, or `watch`); a lamp
    /// from the view goes `unknown` when it is no longer watched.
    Blf {
        /// The extension as configured.
        ext: String,
        /// `idle`, `ringing`, `busy` or `unknown`.
        state: super::dialog_info::BlfState,
    },
    /// What is alive, after `stats`.
    Stats {
        /// The SIP core's state.
        core: Census,
        /// The process: threads, open file descriptors, resident memory (from `/proc`;
        /// `None` where it cannot be read).
        threads: Option<u64>,
        /// Open file descriptors (sockets, files).
        fds: Option<u64>,
        /// Resident set size in KiB.
        rss_kib: Option<u64>,
        /// The anonymous part of it (heap, stacks) in KiB: what grows if memory leaks, unlike
        /// the program's code paged in as new paths run.
        rss_anon_kib: Option<u64>,
        /// Bytes the program has allocated and not released, in KiB: unlike the resident
        /// size, it does not count what the allocator keeps of freed memory.
        heap_kib: Option<u64>,
    },
    /// The user agent stopped (after `quit`).
    Stopped,
    /// What was learnt about reaching us through the network (a STUN answer, or its absence).
    Network {
        /// What happened, in words.
        message: String,
    },
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
