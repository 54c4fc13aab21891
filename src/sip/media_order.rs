//! What the core asks of the media engine: the desired media of each line.
//!
//! The core emits a [`MediaOrder::Line`] whenever what a line should do
//! changes (a codec was negotiated, the call was held, ringback should
//! start, the call ended); the driver hands it to the media engine. Orders
//! are idempotent descriptions of the whole state, not deltas; recording orders are the
//! exception, one per start and stop.

use std::net::SocketAddr;

use super::api::{Direction, LineNo};
use super::sdes::SrtpMaterial;
use super::sdp::Codec;

/// A local tone for a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    /// The far end rings (180 without early media): the operator hears ringback.
    Ringback,
    /// A call rings at us: the ring device rings.
    Ring,
}

/// What a line sends when it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The operator's microphone.
    Microphone,
    /// Music on hold (we hold the call), or silence when none is configured.
    MusicOnHold,
    /// A member of the local conference: the microphone plus every other member (never
    /// this call's own audio); what this call says goes to the headset and the others.
    Conference,
}

/// An RTP stream as negotiated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// The codec.
    pub codec: Codec,
    /// Its payload type (the peer's number).
    pub payload_type: u8,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Where to send RTCP: the peer's SDP `a=rtcp` (RFC 3605), else the RTP port + 1.
    pub remote_rtcp: SocketAddr,
    /// Direction from our point of view.
    pub direction: Direction,
    /// telephone-event payload type (at the codec's clock rate), if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// The most the far end wants to receive (Opus `maxaveragebitrate`), bits per second.
    pub max_bitrate: Option<u32>,
    /// The packetisation the far end asks for (`a=ptime`, ms).
    pub ptime: Option<u32>,
    /// What we send.
    pub source: Source,
    /// The microphone is muted on this line.
    pub muted: bool,
    /// The SRTP keys, when the stream is encrypted; `None`: plain RTP.
    pub srtp: Option<SrtpMaterial>,
}

/// An order for the media engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOrder {
    /// The whole desired media state of a line; `stream: None, tone: None` is idle.
    Line {
        /// The line (1-based).
        line: LineNo,
        /// The call it belongs to.
        call_id: String,
        /// The RTP stream, when media flows (or may flow).
        stream: Option<Stream>,
        /// A local tone to play.
        tone: Option<Tone>,
    },
    /// Send these DTMF digits as RFC 4733 telephone-events on the line.
    Dtmf {
        /// The line (1-based).
        line: LineNo,
        /// `0-9 * # A-D`.
        digits: String,
    },
    /// Start recording the call on the line (both directions, to a new file).
    StartRecording {
        /// The line (1-based).
        line: LineNo,
        /// The call.
        call_id: String,
        /// The far end called us.
        incoming: bool,
        /// The far end's URI (for the file name).
        peer: String,
    },
    /// A short beep in the headset: a call is being answered by itself (auto-answer).
    Beep,
    /// Stop recording the call on the line.
    StopRecording {
        /// The line (1-based).
        line: LineNo,
        /// The call.
        call_id: String,
        /// Why, in words (`stopped by the operator`, `the call ended`).
        reason: String,
    },
}
