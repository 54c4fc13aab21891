//! A WAV file as the headset, written by its own thread: the media thread queues each frame
//! and never touches the disk.
//!
//! Owns the writer thread, the ring between it and the media thread, and the file. On a busy
//! machine a `write` can wait on the disk's writeback for hundreds of milliseconds, and the
//! media thread must tick every frame: a stalled tick is a burst on the wire instead of a
//! stream, heard as gaps at the far end. The writer flushes the WAV header about once a
//! second, so a crash loses at most about a second and leaves a valid file, and finalizes it
//! when dropped.
//!
//! ```text
//!   push (media thread) ─► ring (2 s, i16) ──────────────► writer thread ─► hound ─► out.wav
//!   pad(missed)         ─► gaps (position, samples) ──────┘ zeros written at that position
//!   wakes the writer every 200 ms of frames; the writer parks when the ring is empty
//!   writer fails: the reason is kept, `lost` hands it to the media thread once
//! ```

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};

use rtrb::{Consumer, Producer, RingBuffer};

use super::DeviceError;
use crate::media::{Frame, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE};

/// Audio the ring holds for the writer: two seconds.
const RING_SAMPLES: usize = 2 * SAMPLE_RATE as usize;
/// Silences (after idle ticks) queued for the writer at most.
const GAPS: usize = 16;
/// Frames queued between two wake-ups of the writer: 200 ms.
const WAKE_EVERY: u32 = 200 / FRAME_MS;
/// Samples written between two flushes of the file (0.8 s: with the writer woken every
/// 200 ms, what is on disk is at most about a second behind).
const FLUSH_SAMPLES: u64 = 4 * SAMPLE_RATE as u64 / 5;

/// What the writer and the media thread share, besides the rings.
#[derive(Debug, Default)]
struct Shared {
    /// The media thread is gone: the writer writes what is queued, finalizes and ends.
    stop: AtomicBool,
    /// Why writing failed; the writer has stopped.
    failed: OnceLock<String>,
}

/// The media thread's end of an output file.
pub(super) struct FileOutput {
    ring: Producer<i16>,
    gaps: Producer<Gap>,
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
    /// Samples queued so far (where the next gap goes).
    queued: u64,
    /// Frames queued since the writer was last woken.
    since_wake: u32,
    /// The failure was handed to the media thread.
    reported: bool,
}

/// Silence to write once the writer has written `at` samples.
#[derive(Debug, Clone, Copy)]
struct Gap {
    at: u64,
    samples: u64,
}

impl FileOutput {
    /// Creates `path` (48 kHz mono 16-bit WAV) and starts its writer thread.
    pub(super) fn create(path: &Path) -> Result<FileOutput, DeviceError> {
        let fail = |reason: String| DeviceError::OutputFile {
            path: path.to_path_buf(),
            reason,
        };
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav = hound::WavWriter::create(path, spec).map_err(|e| fail(e.to_string()))?;
        // A valid (empty) file from the start.
        wav.flush().map_err(|e| fail(e.to_string()))?;
        let (ring, samples) = RingBuffer::new(RING_SAMPLES);
        let (gaps, silences) = RingBuffer::new(GAPS);
        let shared = Arc::new(Shared::default());
        let writer = Writer {
            wav: Some(wav),
            samples,
            silences,
            shared: Arc::clone(&shared),
            written: 0,
            since_flush: 0,
            display: path.display().to_string(),
        };
        let thread = thread::Builder::new()
            .name("audio-file-out".into())
            .spawn(move || writer.run())
            .map_err(|e| fail(format!("cannot start the writer thread: {e}")))?;
        Ok(FileOutput {
            ring,
            gaps,
            shared,
            writer: Some(thread),
            queued: 0,
            since_wake: 0,
            reported: false,
        })
    }

    /// Queues one frame; never waits. A writer more than two seconds behind loses the frame
    /// (the file is then shorter than the call: the writer cannot keep up with the disk).
    pub(super) fn push(&mut self, frame: &Frame) {
        if let Ok(mut chunk) = self.ring.write_chunk(FRAME_SAMPLES) {
            let (a, b) = chunk.as_mut_slices();
            let split = a.len();
            a.copy_from_slice(&frame[..split]);
            b.copy_from_slice(&frame[split..]);
            chunk.commit_all();
            self.queued += FRAME_SAMPLES as u64;
        }
        self.since_wake += 1;
        if self.since_wake >= WAKE_EVERY {
            self.wake();
        }
    }

    /// Pads the file with `frames` frames of silence (ticks that did not run), after what is
    /// queued, so tick k stays the file's frame k.
    pub(super) fn pad(&mut self, frames: u64) {
        let samples = frames.saturating_mul(FRAME_SAMPLES as u64);
        if samples > 0
            && self
                .gaps
                .push(Gap {
                    at: self.queued,
                    samples,
                })
                .is_ok()
        {
            self.queued += samples;
        }
        self.wake();
    }

    /// Why writing failed, once (the writer has stopped; the file keeps what was flushed).
    pub(super) fn lost(&mut self) -> Option<&str> {
        if self.reported {
            return None;
        }
        let failed = self.shared.failed.get()?;
        self.reported = true;
        Some(failed)
    }

    fn wake(&mut self) {
        self.since_wake = 0;
        if let Some(writer) = &self.writer {
            writer.thread().unpark();
        }
    }
}

impl Drop for FileOutput {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(writer) = self.writer.take() {
            writer.thread().unpark();
            if writer.join().is_err() {
                tracing::error!("the audio file writer panicked");
            }
        }
    }
}

/// The writer thread's side.
struct Writer {
    wav: Option<hound::WavWriter<BufWriter<File>>>,
    samples: Consumer<i16>,
    silences: Consumer<Gap>,
    shared: Arc<Shared>,
    /// Samples written (queued ones and silences).
    written: u64,
    since_flush: u64,
    display: String,
}

impl Writer {
    fn run(mut self) {
        loop {
            // `stop` first: once it is set, everything the media thread will queue is in.
            let stop = self.shared.stop.load(Ordering::Acquire);
            if let Err(e) = self.drain() {
                let _ = self.shared.failed.set(format!("{}: {e}", self.display));
                self.wav = None;
                return;
            }
            if stop {
                break;
            }
            thread::park();
        }
        if let Some(wav) = self.wav.take() {
            if let Err(e) = wav.finalize() {
                tracing::warn!(file = %self.display, error = %e, "finishing the output file");
            }
        }
    }

    /// Writes everything queued, silences in their place, flushing about once a second.
    fn drain(&mut self) -> Result<(), hound::Error> {
        let Some(wav) = self.wav.as_mut() else {
            return Ok(());
        };
        loop {
            let gap = self.silences.peek().ok().copied();
            if let Some(gap) = gap.filter(|g| g.at <= self.written) {
                for _ in 0..gap.samples {
                    wav.write_sample(0i16)?;
                }
                self.written += gap.samples;
                self.since_flush += gap.samples;
                let _ = self.silences.pop();
                continue;
            }
            let ready = self.samples.slots() as u64;
            let take = gap.map_or(ready, |g| ready.min(g.at - self.written));
            if take == 0 {
                break;
            }
            let Ok(chunk) = self
                .samples
                .read_chunk(usize::try_from(take).unwrap_or(usize::MAX))
            else {
                break; // never: no more than the slots counted
            };
            let (a, b) = chunk.as_slices();
            for &s in a.iter().chain(b) {
                wav.write_sample(s)?;
            }
            chunk.commit_all();
            self.written += take;
            self.since_flush += take;
            if self.since_flush >= FLUSH_SAMPLES {
                self.since_flush = 0;
                wav.flush()?;
            }
        }
        Ok(())
    }
}
