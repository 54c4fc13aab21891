//! A WAV file as the microphone, streamed: a reader thread decodes it as needed (any rate,
//! any channel count averaged to mono, 8–32-bit integer or 32-bit float → 48 kHz mono
//! 16-bit) into a two-second ring the media thread takes its frames from.
//!
//! Owns the reader thread and the ring. The media thread's side ([`FileInput::read`],
//! [`FileInput::skip`]) never reads the file, allocates or waits: it pops samples and touches
//! atomics; the reader does the I/O, the conversion and the resampling. Only two seconds of
//! audio are ever in memory, whatever the file's length.
//!
//! ```text
//!   input.wav ─ hound (BufReader) ─► f32, channels averaged ─► rubato FFT → 48 kHz ─► i16
//!             (48 kHz mono 16-bit: the samples as they are)
//!        reader thread: fills the ring, parks when it is full; looping: seeks back at the end
//!   ring (2 s) ─► read: one frame per tick; unparks the reader below half full
//!                 underrun: the missing samples are owed (`skip`), so tick k always plays
//!                 the file's k-th frame; the reader drops what is owed before queueing
//! ```

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use rtrb::{Consumer, Producer, RingBuffer};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::DeviceError;
use crate::media::{Frame, FRAME_SAMPLES, SAMPLE_RATE};

/// Converted audio queued ahead of the media thread (samples at 48 kHz): two seconds.
const RING_SAMPLES: usize = 2 * SAMPLE_RATE as usize;
/// Input frames the reader converts at a time (and the resampler's chunk).
const CHUNK: usize = 1024;

/// What the reader and the media thread share, besides the ring.
#[derive(Debug, Default)]
struct Shared {
    /// Samples the media thread did not take (skipped while idle, or missing at an
    /// underrun): the reader drops this many before queueing more.
    owed: AtomicU64,
    /// The reader has queued its last sample (a file played once).
    ended: AtomicBool,
    /// The media thread is gone: the reader stops.
    stop: AtomicBool,
}

/// The media thread's end of a streamed input file.
pub(super) struct FileInput {
    ring: Consumer<i16>,
    shared: Arc<Shared>,
    reader: Option<JoinHandle<()>>,
}

impl FileInput {
    /// Opens `path`, queues its first two seconds (so the first frames never underrun) and
    /// starts the reader thread. `looping` replays it from the start when it ends.
    pub(super) fn open(path: &Path, looping: bool) -> Result<FileInput, DeviceError> {
        let fail = |reason: String| DeviceError::InputFile {
            path: path.to_path_buf(),
            reason,
        };
        let mut decoder = Decoder::open(path, looping).map_err(fail)?;
        let (mut producer, ring) = RingBuffer::new(RING_SAMPLES);
        let shared = Arc::new(Shared::default());
        decoder.fill(&mut producer, &shared);
        let reader = if shared.ended.load(Ordering::Acquire) {
            None
        } else {
            let theirs = Arc::clone(&shared);
            let thread = thread::Builder::new()
                .name("audio-file".into())
                .spawn(move || decoder.run(producer, &theirs))
                .map_err(|e| fail(format!("cannot start the reader thread: {e}")))?;
            Some(thread)
        };
        Ok(FileInput {
            ring,
            shared,
            reader,
        })
    }

    /// The next frame: `false` once a file played once has ended and everything is taken.
    /// A short ring (the reader fell behind) gives what there is, padded with silence.
    pub(super) fn read(&mut self, frame: &mut Frame) -> bool {
        // `ended` first: once it is set, every sample the reader will ever queue is in.
        let ended = self.shared.ended.load(Ordering::Acquire);
        if ended {
            let owed = self.shared.owed.swap(0, Ordering::AcqRel);
            self.drop_queued(owed);
        }
        let available = self.ring.slots().min(FRAME_SAMPLES);
        if available == 0 && ended {
            return false;
        }
        if let Ok(chunk) = self.ring.read_chunk(available) {
            let (a, b) = chunk.as_slices();
            frame[..a.len()].copy_from_slice(a);
            frame[a.len()..available].copy_from_slice(b);
            chunk.commit_all();
        }
        frame[available..].fill(0);
        if available < FRAME_SAMPLES && !ended {
            self.skip_samples((FRAME_SAMPLES - available) as u64);
        }
        self.wake_reader();
        true
    }

    /// Skips `frames` frames of input (the media thread did not tick): what is queued is
    /// dropped at once, the rest is owed by the reader.
    pub(super) fn skip(&mut self, frames: u64) {
        let samples = frames.saturating_mul(FRAME_SAMPLES as u64);
        let queued = self.ring.slots() as u64;
        // The reader owes what lies beyond the queued samples (recorded before they are
        // dropped, so it cannot queue past them unawares); once it has ended, that is gone.
        if samples > queued && !self.shared.ended.load(Ordering::Acquire) {
            self.skip_samples(samples - queued);
        }
        self.drop_queued(samples.min(queued));
        self.wake_reader();
    }

    /// Drops up to `samples` queued samples.
    fn drop_queued(&mut self, samples: u64) {
        let now = self
            .ring
            .slots()
            .min(usize::try_from(samples).unwrap_or(usize::MAX));
        if let Ok(chunk) = self.ring.read_chunk(now) {
            chunk.commit_all();
        }
    }

    fn skip_samples(&self, samples: u64) {
        self.shared.owed.fetch_add(samples, Ordering::AcqRel);
    }

    /// Lets a parked reader refill once the ring is below half full (a futex wake at most
    /// about once a second; an atomic otherwise).
    fn wake_reader(&self) {
        if self.ring.slots() < RING_SAMPLES / 2 {
            if let Some(reader) = &self.reader {
                reader.thread().unpark();
            }
        }
    }

    /// Samples queued now (tests wait for the reader with it).
    #[cfg(test)]
    pub(super) fn queued(&self) -> usize {
        self.ring.slots()
    }

    /// Whether the reader has queued its last sample.
    #[cfg(test)]
    pub(super) fn ended(&self) -> bool {
        self.shared.ended.load(Ordering::Acquire)
    }
}

impl Drop for FileInput {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(reader) = self.reader.take() {
            reader.thread().unpark();
            if reader.join().is_err() {
                tracing::error!("the audio file reader panicked");
            }
        }
    }
}

/// How the file's samples become f32.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// Integer samples, multiplied by this to land in −1..1.
    Int(f64),
    Float,
}

/// The reader's side: the WAV file, its conversion, and the place in the current pass.
struct Decoder {
    wav: hound::WavReader<BufReader<File>>,
    format: Format,
    /// Bits per sample.
    bits: u16,
    channels: usize,
    /// Frames (per channel) in the file, and read in this pass.
    frames: u64,
    read: u64,
    looping: bool,
    resampler: Option<Resampling>,
    /// One chunk of mono input, and of converted output.
    mono: Vec<f32>,
    out: Vec<f32>,
    /// Converted samples not yet queued: `pending[at..]`.
    pending: Vec<i16>,
    at: usize,
    /// Output samples in one pass, and still to come in this one.
    pass_len: u64,
    left: u64,
    /// The file is exhausted (played once) or unreadable.
    done: bool,
}

/// Sample-rate conversion of one pass, as `Resampler::process_all` does it for a whole clip:
/// the resampler's delay trimmed at the start, zeros pumped at the end.
struct Resampling {
    fft: Fft<f32>,
    trim: usize,
}

impl Decoder {
    fn open(path: &Path, looping: bool) -> Result<Decoder, String> {
        let wav = hound::WavReader::open(path).map_err(|e| e.to_string())?;
        let spec = wav.spec();
        let channels = usize::from(spec.channels);
        if channels == 0 {
            return Err("the file declares 0 channels".into());
        }
        let format = match spec.sample_format {
            hound::SampleFormat::Int => {
                if spec.bits_per_sample == 0 || spec.bits_per_sample > 32 {
                    return Err(format!(
                        "{}-bit integer samples are not supported",
                        spec.bits_per_sample
                    ));
                }
                Format::Int(1.0 / (1u64 << (spec.bits_per_sample - 1)) as f64)
            }
            hound::SampleFormat::Float => Format::Float,
        };
        let frames = u64::from(wav.duration());
        let (resampler, pass_len, out_len) = if spec.sample_rate == SAMPLE_RATE {
            (None, frames, CHUNK)
        } else {
            let fft = Fft::<f32>::new(
                spec.sample_rate as usize,
                SAMPLE_RATE as usize,
                CHUNK,
                1,
                FixedSync::Input,
            )
            .map_err(|e| {
                format!(
                    "cannot convert {} Hz to {SAMPLE_RATE} Hz: {e}",
                    spec.sample_rate
                )
            })?;
            let ratio = f64::from(SAMPLE_RATE) / f64::from(spec.sample_rate);
            let pass = (ratio * frames as f64).ceil() as u64;
            let out_len = fft.output_frames_max();
            let trim = fft.output_delay();
            (Some(Resampling { fft, trim }), pass, out_len)
        };
        Ok(Decoder {
            wav,
            format,
            bits: spec.bits_per_sample,
            channels,
            frames,
            read: 0,
            looping,
            resampler,
            mono: vec![0.0; CHUNK],
            out: vec![0.0; out_len],
            pending: Vec::with_capacity(out_len),
            at: 0,
            pass_len,
            left: pass_len,
            done: pass_len == 0,
        })
    }

    /// The reader thread: keeps the ring full until the file ends (played once) or the media
    /// thread is gone; parks while the ring is full.
    fn run(mut self, mut ring: Producer<i16>, shared: &Shared) {
        while !shared.stop.load(Ordering::Acquire) && !ring.is_abandoned() {
            self.fill(&mut ring, shared);
            if shared.ended.load(Ordering::Acquire) {
                return;
            }
            thread::park();
        }
    }

    /// Queues converted audio until the ring is full or the file has ended (then `ended`).
    fn fill(&mut self, ring: &mut Producer<i16>, shared: &Shared) {
        loop {
            if self.at == self.pending.len() {
                if self.done {
                    shared.ended.store(true, Ordering::Release);
                    return;
                }
                self.convert_chunk();
            }
            self.pay_debt(shared);
            let n = ring.slots().min(self.pending.len() - self.at);
            if n == 0 && self.at < self.pending.len() {
                return; // full
            }
            if let Ok(mut chunk) = ring.write_chunk(n) {
                let (a, b) = chunk.as_mut_slices();
                let src = &self.pending[self.at..self.at + n];
                a.copy_from_slice(&src[..a.len()]);
                b.copy_from_slice(&src[a.len()..]);
                chunk.commit_all();
            }
            self.at += n;
        }
    }

    /// Drops what the media thread skipped from the converted audio (a looping file skips
    /// whole passes by arithmetic, not by decoding them).
    fn pay_debt(&mut self, shared: &Shared) {
        let mut owed = shared.owed.swap(0, Ordering::AcqRel);
        if owed == 0 {
            return;
        }
        if self.looping && self.pass_len > 0 {
            owed %= self.pass_len;
        }
        let here = ((self.pending.len() - self.at) as u64).min(owed);
        self.at += here as usize;
        owed -= here;
        if owed > 0 {
            shared.owed.fetch_add(owed, Ordering::AcqRel);
        }
    }

    /// Converts the next chunk of the file into `pending` (empty when the file is done).
    fn convert_chunk(&mut self) {
        self.pending.clear();
        self.at = 0;
        if self.read == self.frames && self.resampler.is_none() {
            self.next_pass();
            if self.done {
                return;
            }
        }
        let int16 = self.bits == 16 && matches!(self.format, Format::Int(_));
        if self.resampler.is_none() && self.channels == 1 && int16 {
            // Already 48 kHz mono 16-bit: the samples as they are, no conversion.
            let got = self.read_direct();
            self.left = self.left.saturating_sub(got as u64);
            return;
        }
        let got = self.read_mono();
        match &mut self.resampler {
            None => {
                self.pending
                    .extend(self.mono[..got].iter().map(|&x| to_i16(x)));
                self.left = self.left.saturating_sub(got as u64);
            }
            Some(r) => {
                self.mono[got..].fill(0.0);
                let capacity = self.out.len();
                let (Ok(input), Ok(mut output)) = (
                    InterleavedSlice::new(&self.mono[..], 1, CHUNK),
                    InterleavedSlice::new_mut(&mut self.out[..], 1, capacity),
                ) else {
                    self.done = true;
                    return;
                };
                let Ok((_, produced)) = r.fft.process_into_buffer(&input, &mut output, None) else {
                    self.done = true;
                    return;
                };
                let trimmed = produced.min(r.trim);
                r.trim -= trimmed;
                let keep = ((produced - trimmed) as u64).min(self.left) as usize;
                self.pending
                    .extend(self.out[trimmed..trimmed + keep].iter().map(|&x| to_i16(x)));
                self.left -= keep as u64;
                if self.left == 0 {
                    self.next_pass();
                }
            }
        }
    }

    /// The end of a pass: back to the start of the file when looping, else done.
    fn next_pass(&mut self) {
        if !self.looping || self.wav.seek(0).is_err() {
            self.done = true;
            return;
        }
        self.read = 0;
        self.left = self.pass_len;
        if let Some(r) = &mut self.resampler {
            r.fft.reset();
            r.trim = r.fft.output_delay();
        }
    }

    /// Reads up to one chunk of a 16-bit mono file into `pending` as it is; how many samples
    /// it read. A read error ends the file where it broke.
    fn read_direct(&mut self) -> usize {
        let want = (self.frames - self.read).min(CHUNK as u64) as usize;
        let mut samples = self.wav.samples::<i16>();
        for i in 0..want {
            match samples.next() {
                Some(Ok(x)) => self.pending.push(x),
                _ => {
                    self.frames = self.read + i as u64;
                    self.read = self.frames;
                    return i;
                }
            }
        }
        self.read += want as u64;
        want
    }

    /// Reads up to one chunk of frames into `mono` (channels averaged); how many it read. A
    /// read error ends the file where it broke.
    fn read_mono(&mut self) -> usize {
        let want = (self.frames - self.read).min(CHUNK as u64) as usize;
        let scale = 1.0 / self.channels as f32;
        for i in 0..want {
            let mut sum = 0.0f32;
            for _ in 0..self.channels {
                let sample = match self.format {
                    Format::Int(k) => self
                        .wav
                        .samples::<i32>()
                        .next()
                        .map(|s| s.map(|s| (f64::from(s) * k) as f32)),
                    Format::Float => self.wav.samples::<f32>().next(),
                };
                match sample {
                    Some(Ok(x)) => sum += x,
                    _ => {
                        self.frames = self.read + i as u64;
                        self.read = self.frames;
                        return i;
                    }
                }
            }
            self.mono[i] = sum * scale;
        }
        self.read += want as u64;
        want
    }
}

fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}
