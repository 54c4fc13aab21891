//! The media engine: one thread, one 20 ms clock, every line.
//!
//! ```text
//!            ┌──────────────── media thread, every 20 ms ────────────────┐
//!  headset ─►│ read_frame ─► clean-up (voice.rs: noise suppression, AGC) │
//!            │               mic ──► line with the mic: encode ─► RTP ──┼─► far end
//!            │                  MOH ─► held lines:     encode ─► RTP ──┼─►
//!  headset ◄─│ write_frame ◄─ mix ◄─ decode ◄─ jitter ◄─ RTP (each line) ┼─◄ far end
//!            │ conference lines: mic + the other members (mixer.rs) ─► RTP ┼─►
//!  ring dev ◄│ write_ring_frame ◄─ ring tone                             │
//!            │ RTCP SR/RR every ~5 s, quality and DTMF reports ──────────┼─► driver
//!            └───────────────────────────────────────────────────────────┘
//! ```
//!
//! The driver sends [`Control`]s (what each line should do) and receives
//! [`Report`]s through a callback. The thread owns the device and the RTP
//! sockets; nothing is shared with locks. The audio callbacks of the device
//! (in `device.rs`) are the only real-time code; this thread may allocate
//! when a call starts, never per frame — with one exception: an SRTP line's packets go through
//! `rtc-srtp`, which has no in-place API and returns a new buffer per packet (see `srtp.rs`).

use std::net::{SocketAddr, UdpSocket};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use thiserror::Error;

use super::codec::OpusSettings;
use super::device::{AudioDevice, DeviceNotice};
use super::jitter::JitterConfig;
use super::pipeline::Pipeline;
use super::rtp::Quality;
pub use super::sound_check::SoundOrder;
pub use super::srtp::{SrtpKeys, SrtpSuite};
use super::tones::MusicOnHold;
pub use super::voice::VoiceSettings;
use super::{CodecKind, FRAME_MS};

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
    /// Where RTP goes; RTCP goes to the next port.
    pub remote: SocketAddr,
    /// We send.
    pub send: bool,
    /// We receive (and play, when the line has the microphone).
    pub receive: bool,
    /// telephone-event payload type at the codec's clock rate.
    pub dtmf_payload_type: Option<u8>,
    /// The most the far end wants to receive (bits per second): caps the Opus bitrate.
    pub max_bitrate: Option<u32>,
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

/// Why the engine could not start.
#[derive(Debug, Error)]
pub enum EngineError {
    /// A socket could not be made non-blocking.
    #[error("RTP socket: {0}")]
    Socket(#[from] std::io::Error),
    /// The thread could not be spawned.
    #[error("cannot start the media thread: {0}")]
    Thread(std::io::Error),
}

/// A running media engine; dropping it stops the thread.
#[derive(Debug)]
pub struct MediaEngine {
    control: Option<mpsc::Sender<Control>>,
    thread: Option<JoinHandle<()>>,
}

impl MediaEngine {
    /// Starts the media thread with its device, one socket pair per line, and the music
    /// held parties hear (silence when `None`).
    pub fn start(
        device: Box<dyn AudioDevice>,
        sockets: Vec<LineSockets>,
        config: EngineConfig,
        moh: Option<MusicOnHold>,
        reports: Box<dyn FnMut(Report) + Send>,
    ) -> Result<MediaEngine, EngineError> {
        for s in &sockets {
            s.rtp.set_nonblocking(true)?;
            s.rtcp.set_nonblocking(true)?;
        }
        let (tx, rx) = mpsc::channel();
        let mut pipeline = Pipeline::new(device, sockets, config, moh, reports);
        let poll = mio::Poll::new()?;
        pipeline.register(poll.registry())?;
        let thread = thread::Builder::new()
            .name("media".into())
            .spawn(move || run(pipeline, poll, rx))
            .map_err(EngineError::Thread)?;
        Ok(MediaEngine {
            control: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands an order to the media thread.
    pub fn send(&self, control: Control) {
        if let Some(tx) = &self.control {
            if tx.send(control).is_err() {
                tracing::warn!("the media thread is gone; order dropped");
            }
        }
    }
}

impl Drop for MediaEngine {
    fn drop(&mut self) {
        self.control = None; // the thread sees the channel close and ends
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the media thread panicked");
            }
        }
    }
}

/// The media clock: the only place the engine reads the time.
#[allow(clippy::disallowed_methods)] // the media thread is where its time enters
fn now() -> Instant {
    Instant::now()
}

#[allow(clippy::disallowed_methods)] // RTCP needs wall-clock (NTP) time
fn wallclock() -> std::time::SystemTime {
    std::time::SystemTime::now()
}

/// The media thread: a tick every 20 ms until the driver hangs up; in between it sleeps in
/// `poll` and reads packets the moment they arrive (so their arrival times, which the jitter
/// buffer and RTCP's round-trip time depend on, are exact rather than rounded to a tick).
fn run(mut pipeline: Pipeline, mut poll: mio::Poll, control: mpsc::Receiver<Control>) {
    let frame = Duration::from_millis(u64::from(FRAME_MS));
    let mut events = mio::Events::with_capacity(16);
    let mut next = now();
    // Tick k reads the k-th microphone frame: with file audio this line lets a test turn
    // sample positions into wall-clock times (and so measure the mouth-to-ear delay).
    let unix_ms = wallclock()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    tracing::info!(unix_ms, "media clock started");
    loop {
        loop {
            match control.try_recv() {
                Ok(c) => pipeline.control(now(), c),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        let t = now();
        if t >= next {
            pipeline.tick(t, wallclock());
            next += frame;
            if t > next + frame * 5 {
                // We fell far behind (suspend, debugger): restart the clock.
                next = t + frame;
            }
            continue;
        }
        match poll.poll(&mut events, Some(next - t)) {
            Ok(()) if !events.is_empty() => pipeline.receive_all(now(), wallclock()),
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Should never happen; fall back to reading at the ticks.
                tracing::warn!(error = %e, "media poll failed");
                thread::sleep(next - t);
            }
        }
    }
}
