//! The media thread's vocabulary: what the driver orders ([`Control`]), what the thread
//! reports back ([`Report`]), and the settings and sockets it starts with.
//!
//! Types only: this module runs nothing and imports neither the thread runner
//! (`engine.rs`) nor the pipeline, so both of them (and the recorder) depend on it and not on
//! each other.

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use super::codec::OpusSettings;
use super::device::DeviceNotice;
use super::jitter::JitterConfig;
use super::rtcp::Quality;
pub use super::sound_check::SoundOrder;
pub use super::srtp::{SrtpKeys, SrtpSuite};
pub use super::voice::VoiceSettings;
use super::CodecKind;

/// Settings of the engine that do not change during a run.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Opus encoder settings.
    pub opus: OpusSettings,
    /// Jitter buffer bounds.
    pub jitter: JitterConfig,
    /// RTCP CNAME (e.g. `user@host`).
    pub cname: String,
    /// Report [`Report::Silent`] when a two-way stream receives no RTP for this long.
    pub rtp_timeout: Option<Duration>,
    /// Microphone clean-up at start ([`Control::Voice`] changes it).
    pub voice: VoiceSettings,
    /// The first RTP sequence number of every stream we send; `None` (always, outside tests):
    /// random, as RFC 3550 §5.1 asks. Tests set it just below 65535 to cross the wrap.
    pub rtp_sequence_start: Option<u16>,
}

/// The sockets of one line: RTP and RTCP (the next port).
#[derive(Debug)]
pub struct LineSockets {
    /// RTP, even port.
    pub rtp: UdpSocket,
    /// RTCP, RTP port + 1.
    pub rtcp: UdpSocket,
}

/// What a line sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendSource {
    /// The operator's microphone.
    Microphone,
    /// Music on hold (silence when none is configured).
    MusicOnHold,
    /// A local conference member: the microphone and every other member, never itself
    /// (its received audio goes to the headset and to the other members).
    Conference,
}

/// A negotiated RTP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    /// The codec.
    pub codec: CodecKind,
    /// Its RTP payload type.
    pub payload_type: u8,
    /// Where RTP goes.
    pub remote: SocketAddr,
    /// Where RTCP goes while RTP goes to `remote` (the peer's `a=rtcp`, else the next port).
    pub remote_rtcp: SocketAddr,
    /// We send.
    pub send: bool,
    /// We receive (and play, when the line has the microphone).
    pub receive: bool,
    /// telephone-event payload type at the codec's clock rate.
    pub dtmf_payload_type: Option<u8>,
    /// The most the far end wants to receive (bits per second): caps the Opus bitrate.
    pub max_bitrate: Option<u32>,
    /// The packetisation the far end asks for (`a=ptime`, ms); RFC 3551's 20 ms when `None`.
    pub ptime: Option<u32>,
    /// What we send.
    pub source: SendSource,
    /// The microphone is muted (silence is sent).
    pub muted: bool,
    /// SRTP keys: every packet is protected and must authenticate; `None`: plain RTP.
    pub srtp: Option<SrtpKeys>,
}

/// A local tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineTone {
    /// Ringback in the headset (the far end rings).
    Ringback,
    /// Ringing on the ring device (a call for us).
    Ring,
}

/// An order for the media thread.
#[derive(Debug)]
pub enum Control {
    /// The whole desired state of line `line` (0-based).
    Line {
        /// Line index.
        line: usize,
        /// The stream, if media flows.
        stream: Option<StreamParams>,
        /// A tone, if any.
        tone: Option<LineTone>,
    },
    /// Send DTMF digits on line `line` (0-based).
    Dtmf {
        /// Line index.
        line: usize,
        /// `0-9 * # A-D`.
        digits: String,
    },
    /// Start recording line `line` (0-based) of call `call_id` into a new file at `path` (a
    /// `-2`… suffix is added if it exists). Reported by [`Report::RecordingStarted`], or by a
    /// failed [`Report::RecordingStopped`].
    StartRecording {
        /// Line index.
        line: usize,
        /// The call being recorded (reports name it).
        call_id: String,
        /// The file to create; its directory is created too.
        path: std::path::PathBuf,
        /// WAV or Ogg Opus.
        format: super::recorder::RecordFormat,
    },
    /// Switch the microphone's noise suppression and AGC (from the next frame).
    Voice(VoiceSettings),
    /// A sound-check order: level meter, test tone, echo (`sound_check.rs`).
    SoundCheck(SoundOrder),
    /// Stop recording line `line` if it records call `call_id`; the file is finished and
    /// [`Report::RecordingStopped`] follows.
    StopRecording {
        /// Line index.
        line: usize,
        /// The call whose recording stops.
        call_id: String,
        /// Why, for the report.
        reason: String,
    },
    /// Use the device (or, with the file backend, the WAV file) `device` for `role` from now
    /// on; the outcome comes back as a [`Report::Device`] (`Chosen` or `NotChosen`).
    SwitchDevice {
        /// Microphone, headset or ring device.
        role: crate::sound::DeviceRole,
        /// The device's name.
        device: String,
    },
}

/// Something the media thread tells the driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// Receive quality of a line, every few seconds while it has a stream.
    Quality {
        /// Line index.
        line: usize,
        /// The codec in use.
        codec: CodecKind,
        /// The figures.
        quality: Quality,
        /// How long received audio waits in the jitter buffer now (ms).
        buffer_ms: u32,
    },
    /// A DTMF digit arrived as a telephone-event.
    Dtmf {
        /// Line index.
        line: usize,
        /// The digit.
        digit: char,
    },
    /// An audio device problem.
    Device(DeviceNotice),
    /// The microphone's level over the last 100 ms, while the meter is on.
    Level {
        /// RMS in dB relative to full scale (−96 for silence).
        dbfs: f32,
    },
    /// A recording's file is open and being written.
    RecordingStarted {
        /// Line index.
        line: usize,
        /// The call being recorded.
        call_id: String,
        /// The file.
        path: std::path::PathBuf,
    },
    /// A recording ended: stopped, its call ended, or its file failed.
    RecordingStopped {
        /// Line index.
        line: usize,
        /// The call that was recorded.
        call_id: String,
        /// The file (complete and valid unless `failed`).
        path: std::path::PathBuf,
        /// Why it ended, in words.
        reason: String,
        /// The file could not be created or written.
        failed: bool,
        /// How much audio the file holds (ms).
        duration_ms: u64,
        /// Frames lost because the writer fell behind (the audio path never waits for it).
        dropped_frames: u64,
    },
    /// A line whose audio should flow both ways received no RTP for `seconds` (once per
    /// silence; receiving again re-arms it).
    Silent {
        /// Line index.
        line: usize,
        /// How long it has been silent.
        seconds: u64,
    },
    /// A line could not do what it was asked (e.g. the codec failed to start).
    Problem {
        /// Line index.
        line: usize,
        /// What went wrong.
        message: String,
    },
}
