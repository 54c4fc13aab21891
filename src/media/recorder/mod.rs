//! Call recording: a tap on each recorded line, a ring, and a writer thread per file.
//!
//! ```text
//!   media thread, every frame                 writer thread (one per recording)
//!   ─────────────────────────                 ────────────────────────────────
//!   left  = the frame sent on the line ─┐
//!   right = the frame decoded from it  ─┴► push ─► rtrb ring ─► pop ─► WAV | Ogg Opus file
//!           (full ring: frame dropped and counted)                 flush every 0.5 s
//! ```
//!
//! [`Recordings`] is the media thread's side: it starts and stops recordings, pushes one stereo
//! frame per tick into each recording's ring without ever waiting or allocating, and turns what
//! the writers tell it into [`Report`]s. The writers (`writer.rs`) own the files: they open
//! them, encode (`wav.rs`: WAV, RF64 past 4 GiB; `ogg_opus.rs`) and make what is on disk a
//! valid file at least every half second, so a SIGKILL loses at most that (plus frames still
//! in the ring). File names come from `name.rs` (the driver's
//! business: it has the clock). This module never reads the clock and knows nothing of SIP.
//!
//! The recording is 48 kHz (the engine's rate, whatever the codec), 16-bit, stereo: left is the
//! operator (exactly what the line sent: the microphone, silence when muted or while nothing is
//! sent, music on hold while held), right is the far end after the jitter buffer and loss
//! concealment.

pub mod name;
mod ogg_opus;
mod wav;
mod writer;

use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use thiserror::Error;

use super::api::Report;
use super::{Frame, FRAME_MS, FRAME_SAMPLES, TICKS_PER_SECOND};

pub use ogg_opus::OggOpusSink;
pub use wav::WavSink;

/// Frames the ring between the media thread and a writer holds: 5 s of audio, so a writer
/// stalled by a slow disk loses nothing for that long.
const RING_FRAMES: usize = 5 * TICKS_PER_SECOND as usize;

/// How a recording is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    /// RIFF WAVE, 16-bit PCM, 2 channels, 48 kHz (`.wav`).
    Wav,
    /// Ogg Opus (RFC 7845), 2 channels, 48 kHz (`.opus`).
    OggOpus,
}

impl RecordFormat {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            RecordFormat::Wav => "wav",
            RecordFormat::OggOpus => "opus",
        }
    }
}

/// One stereo frame: both directions of a call at the same instant.
#[derive(Debug, Clone, Copy)]
pub struct StereoFrame {
    /// The operator: what the line sent.
    pub left: Frame,
    /// The far end: what the line received, decoded.
    pub right: Frame,
}

impl StereoFrame {
    /// A frame of silence on both channels.
    pub const SILENCE: StereoFrame = StereoFrame {
        left: [0; FRAME_SAMPLES],
        right: [0; FRAME_SAMPLES],
    };

    /// The two channels interleaved (left, right, left, …) into `out`.
    pub fn interleave(&self, out: &mut [i16; 2 * FRAME_SAMPLES]) {
        for (i, (l, r)) in self.left.iter().zip(&self.right).enumerate() {
            out[2 * i] = *l;
            out[2 * i + 1] = *r;
        }
    }
}

/// Why a recording file could not be written.
#[derive(Debug, Error)]
pub enum RecordError {
    /// The file or its directory could not be created or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The Opus encoder failed.
    #[error("Opus encoder: {0}")]
    Opus(#[from] opus::Error),
}

/// A recording file being written, one stereo frame at a time.
pub trait Sink: Send {
    /// Appends one frame.
    fn write(&mut self, frame: &StereoFrame) -> Result<(), RecordError>;
    /// Makes everything appended so far a valid file on disk (headers and sizes updated, pages
    /// written out).
    fn flush(&mut self) -> Result<(), RecordError>;
    /// Ends the file properly.
    fn finish(self: Box<Self>) -> Result<(), RecordError>;
}

/// What a writer thread tells the media thread.
#[derive(Debug)]
enum Notice {
    /// The file is open (at this path, which may carry a `-2`… suffix).
    Opened { id: u64, path: PathBuf },
    /// The file could not be opened or written; the writer has ended.
    Failed { id: u64, error: String },
    /// The ring was closed and the file finished after `frames` frames.
    Finished { id: u64, frames: u64 },
}

/// The media thread's handle on one recording.
struct Tap {
    id: u64,
    line: usize,
    call_id: String,
    path: PathBuf,
    /// `None` once stopped: the writer drains the ring and finishes.
    producer: Option<rtrb::Producer<StereoFrame>>,
    dropped: u64,
    /// Why it was stopped, once it was.
    reason: Option<String>,
    thread: Option<JoinHandle<()>>,
}

impl Tap {
    fn close(&mut self, reason: &str) {
        if self.producer.take().is_some() {
            self.reason = Some(reason.to_owned());
        }
    }

    fn join(&mut self) {
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!(line = self.line + 1, "a recording writer panicked");
            }
        }
    }
}

/// Every recording of the engine, as the media thread sees them.
pub(crate) struct Recordings {
    taps: Vec<Tap>,
    notices: mpsc::Receiver<Notice>,
    notice_tx: mpsc::Sender<Notice>,
    next_id: u64,
}

impl Default for Recordings {
    fn default() -> Self {
        let (notice_tx, notices) = mpsc::channel();
        Recordings {
            taps: Vec::new(),
            notices,
            notice_tx,
            next_id: 0,
        }
    }
}

impl Recordings {
    /// Starts recording line `line` of call `call_id` into `path` (a writer thread opens it).
    /// An error when that line already records.
    pub(crate) fn start(
        &mut self,
        line: usize,
        call_id: String,
        path: PathBuf,
        format: RecordFormat,
    ) -> Result<(), String> {
        if let Some(tap) = self.live(line) {
            return Err(format!(
                "already recording to {}; stop that first",
                tap.path.display()
            ));
        }
        let (producer, consumer) = rtrb::RingBuffer::new(RING_FRAMES);
        let id = self.next_id;
        self.next_id += 1;
        let notices = self.notice_tx.clone();
        let target = path.clone();
        let thread = thread::Builder::new()
            .name(format!("recorder-{}", line + 1))
            .spawn(move || writer::run(id, consumer, &target, format, &notices))
            .map_err(|e| format!("cannot start the recording writer: {e}"))?;
        self.taps.push(Tap {
            id,
            line,
            call_id,
            path,
            producer: Some(producer),
            dropped: 0,
            reason: None,
            thread: Some(thread),
        });
        Ok(())
    }

    /// Stops recording line `line` if it records call `call_id`: the writer finishes the file
    /// and a report follows. True when there was such a recording.
    pub(crate) fn stop(&mut self, line: usize, call_id: &str, reason: &str) -> bool {
        let tap = self
            .taps
            .iter_mut()
            .find(|t| t.line == line && t.producer.is_some() && t.call_id == call_id);
        match tap {
            Some(tap) => {
                tap.close(reason);
                true
            }
            None => false,
        }
    }

    /// One frame of line `line`: `sent` left, `received` right. Never waits, never allocates:
    /// a full ring drops the frame and counts it.
    pub(crate) fn push(&mut self, line: usize, sent: &Frame, received: &Frame) {
        for tap in &mut self.taps {
            if tap.line != line {
                continue;
            }
            if let Some(producer) = tap.producer.as_mut() {
                let frame = StereoFrame {
                    left: *sent,
                    right: *received,
                };
                if producer.push(frame).is_err() {
                    tap.dropped += 1;
                }
            }
        }
    }

    /// No recording is running or finishing (every report has been made).
    pub(crate) fn is_idle(&self) -> bool {
        self.taps.is_empty()
    }

    /// Turns what the writers said since the last call into reports.
    pub(crate) fn poll(&mut self, reports: &mut dyn FnMut(Report)) {
        while let Ok(notice) = self.notices.try_recv() {
            let id = match &notice {
                Notice::Opened { id, .. }
                | Notice::Failed { id, .. }
                | Notice::Finished { id, .. } => *id,
            };
            let Some(index) = self.taps.iter().position(|t| t.id == id) else {
                continue;
            };
            match notice {
                Notice::Opened { path, .. } => {
                    let tap = &mut self.taps[index];
                    tap.path = path;
                    reports(Report::RecordingStarted {
                        line: tap.line,
                        call_id: tap.call_id.clone(),
                        path: tap.path.clone(),
                    });
                }
                Notice::Failed { error, .. } => {
                    let mut tap = self.taps.swap_remove(index);
                    tap.producer = None;
                    tap.join();
                    tracing::warn!(line = tap.line + 1, %error, "recording failed");
                    reports(Report::RecordingStopped {
                        line: tap.line,
                        call_id: tap.call_id,
                        path: tap.path,
                        reason: format!("recording failed: {error}"),
                        failed: true,
                        duration_ms: 0,
                        dropped_frames: tap.dropped,
                    });
                }
                Notice::Finished { frames, .. } => {
                    let mut tap = self.taps.swap_remove(index);
                    tap.join();
                    if tap.dropped > 0 {
                        tracing::warn!(
                            line = tap.line + 1,
                            dropped = tap.dropped,
                            "recording frames dropped: the writer fell behind"
                        );
                    }
                    reports(Report::RecordingStopped {
                        line: tap.line,
                        call_id: tap.call_id,
                        path: tap.path,
                        reason: tap.reason.unwrap_or_else(|| "stopped".to_owned()),
                        failed: false,
                        duration_ms: frames * u64::from(FRAME_MS),
                        dropped_frames: tap.dropped,
                    });
                }
            }
        }
    }
}

impl Drop for Recordings {
    /// Closes every ring and waits for the writers to finish their files.
    fn drop(&mut self) {
        for tap in &mut self.taps {
            tap.close("switchboard stopped");
        }
        for tap in &mut self.taps {
            tap.join();
        }
    }
}

impl Recordings {
    fn live(&self, line: usize) -> Option<&Tap> {
        self.taps
            .iter()
            .find(|t| t.line == line && t.producer.is_some())
    }
}

#[cfg(test)]
mod tests;
