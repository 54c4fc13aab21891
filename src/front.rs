//! The vocabulary between a front end (the TUI, headless stdin and stdout) and the driver:
//! [`Command`]s in, [`Event`]s out.
//!
//! Each wraps the SIP core's own vocabulary ([`sip::Command`], [`sip::Event`]) and adds what
//! only the driver, the media engine and the front ends know: outbound routes, the SIP trace,
//! the microphone's clean-up stages, the sound check, audio devices, call quality, recording
//! files and the process census. The core neither sees these commands nor emits these events.
//!
//! Every event serialises to one flat JSON object with an `"event"` field; a SIP event
//! serialises exactly as [`sip::Event`] does (the wrapper adds nothing). New words extend the
//! enums; existing words and fields never change meaning.

use serde::Serialize;

use crate::sip;
use crate::sip::LineNo;
use crate::sound::{SoundCommand, VoiceStage};

/// What the operator (keys, `:` line or headless stdin) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// For the SIP core (after the driver's outbound routes rewrote dial targets).
    Sip(sip::Command),
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
    /// A sound check: level meter, test tone, echo, device choice.
    Sound(SoundCommand),
}

impl From<sip::Command> for Command {
    fn from(command: sip::Command) -> Command {
        Command::Sip(command)
    }
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
        /// The names of the accounts that run, the default (the first) first.
        accounts: Vec<String>,
        /// One line about how we run (e.g. that the embedded default is in use).
        note: String,
        /// How many lines the phone has (`[ui] lines`).
        lines: LineNo,
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
    /// A SIP message sent or received, while `trace on` or `trace on raw`.
    #[serde(rename = "sip")]
    SipMessage {
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
    /// What is alive, after `stats`.
    Stats {
        /// The SIP core's state.
        core: crate::sip::Census,
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
    /// What was learnt about reaching us through the network (a STUN answer, or its absence).
    Network {
        /// What happened, in words.
        message: String,
    },
    /// Every audio device the system offers (`list-devices`), or why none could be listed.
    DeviceList {
        /// The devices, in the system's order.
        devices: Vec<ListedDevice>,
        /// Why listing failed (`devices` is then empty).
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<String>,
    },
    /// From the SIP core: serialised as the core's event itself. Stays the last variant
    /// (serde wants untagged variants at the end): add new ones above it.
    #[serde(untagged)]
    Sip(sip::Event),
}

impl From<sip::Event> for Event {
    fn from(event: sip::Event) -> Event {
        Event::Sip(event)
    }
}

/// One audio device in a [`Event::DeviceList`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedDevice {
    /// Its name, as `use-device` and the configuration take it.
    pub name: String,
    /// Its stable identifier (also accepted as a name); empty if the system gives none.
    pub id: String,
    /// It can record (a microphone).
    pub input: bool,
    /// It can play (a headset, a ringer).
    pub output: bool,
    /// Its default format, e.g. `48000 Hz, 2 ch, f32`; `None` when it has none now.
    pub default_config: Option<String>,
    /// It is the system's default input or output.
    pub default: bool,
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
