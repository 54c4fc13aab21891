//! The media-thread side of the cpal rings: 20 ms frames at 48 kHz in and
//! out, sample-rate conversion, and latency bounds.
//!
//! Owns one ring end per stream, a fixed-ratio FFT resampler (rubato) when
//! the device does not run at 48 kHz, and pre-sized scratch buffers. It must
//! not allocate per frame, read a clock or block; it never talks to cpal, so
//! it is tested with bare rings.
//!
//! ```text
//!   capture:  ring (device rate) ─► [prime 40 ms] ─► resample → 960 @ 48 kHz ─► Frame
//!             more than 120 ms queued → drop the oldest down to 40 ms
//!   playback: Frame ─► resample → ≈ 20 ms @ device rate ─► ring
//!             ring ran dry → 40 ms of silence first; more than 100 ms queued → drop the frame
//! ```

use rtrb::{Consumer, Producer, RingBuffer};
use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::DeviceError;
use crate::media::{Frame, FRAME_SAMPLES, SAMPLE_RATE};

/// Capacity of each ring.
const RING_MS: u32 = 200;
/// Extra input (beyond one frame) to collect before reading, to ride out
/// bursty callbacks.
const CAPTURE_MARGIN_MS: u32 = 20;
/// Queued input above this is stale: trim it.
const CAPTURE_MAX_MS: u32 = 120;
/// What trimming leaves queued.
const CAPTURE_KEEP_MS: u32 = 40;
/// Silence queued ahead of the output when it starts or has run dry.
const PLAYBACK_PREFILL_MS: u32 = 40;
/// Queued output above this would only add delay: drop the frame instead.
const PLAYBACK_MAX_MS: u32 = 100;

/// Samples of `ms` milliseconds at `rate` Hz.
fn samples(rate: u32, ms: u32) -> usize {
    (u64::from(rate) * u64::from(ms) / 1000) as usize
}

/// A ring for one stream: 200 ms of mono f32 at `rate`.
pub(super) fn ring(rate: u32) -> (Producer<f32>, Consumer<f32>) {
    RingBuffer::new(samples(rate, RING_MS).max(4 * FRAME_SAMPLES))
}

fn resampler(from: u32, to: u32, fixed: FixedSync) -> Result<Fft<f32>, DeviceError> {
    Fft::<f32>::new(from as usize, to as usize, FRAME_SAMPLES, 1, fixed).map_err(|e| {
        DeviceError::Resampler {
            from,
            to,
            reason: e.to_string(),
        }
    })
}

fn to_i16(x: f32) -> i16 {
    (x * 32768.0).round().clamp(-32768.0, 32767.0) as i16
}

fn to_f32(x: i16) -> f32 {
    f32::from(x) / 32768.0
}

/// Microphone audio: device-rate samples from the callback's ring → frames.
pub(super) struct CapturePath {
    ring: Consumer<f32>,
    resampler: Option<Fft<f32>>,
    scratch_in: Vec<f32>,
    scratch_out: Vec<f32>,
    primed: bool,
    margin: usize,
    max_queued: usize,
    keep_queued: usize,
    glitches: u64,
}

impl CapturePath {
    /// Reads from `ring`, filled at `rate` Hz by a [`super::realtime::CaptureCallback`].
    pub(super) fn new(ring: Consumer<f32>, rate: u32) -> Result<CapturePath, DeviceError> {
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(resampler(rate, SAMPLE_RATE, FixedSync::Output)?)
        };
        let max_in = resampler
            .as_ref()
            .map_or(FRAME_SAMPLES, |r| r.input_frames_max());
        let max_out = resampler
            .as_ref()
            .map_or(FRAME_SAMPLES, |r| r.output_frames_max());
        Ok(CapturePath {
            ring,
            resampler,
            scratch_in: vec![0.0; max_in],
            scratch_out: vec![0.0; max_out.max(FRAME_SAMPLES)],
            primed: false,
            margin: samples(rate, CAPTURE_MARGIN_MS),
            max_queued: samples(rate, CAPTURE_MAX_MS),
            keep_queued: samples(rate, CAPTURE_KEEP_MS),
            glitches: 0,
        })
    }

    /// Dropouts seen here: underruns after priming and latency trims.
    pub(super) fn glitches(&self) -> u64 {
        self.glitches
    }

    /// The next 20 ms at 48 kHz, or `false` while priming or on underrun.
    pub(super) fn read(&mut self, frame: &mut Frame) -> bool {
        let need = self
            .resampler
            .as_ref()
            .map_or(FRAME_SAMPLES, |r| r.input_frames_next());
        let mut queued = self.ring.slots();
        if queued > self.max_queued.max(need + self.margin) {
            let drop = queued - self.keep_queued.max(need);
            if let Ok(chunk) = self.ring.read_chunk(drop) {
                chunk.commit_all();
                queued -= drop;
                self.glitches += 1;
            }
        }
        if !self.primed {
            if queued < need + self.margin {
                return false;
            }
            self.primed = true;
        }
        if queued < need || need > self.scratch_in.len() {
            self.primed = false;
            self.glitches += 1;
            return false;
        }
        if self
            .ring
            .pop_entire_slice(&mut self.scratch_in[..need])
            .is_err()
        {
            return false;
        }
        let produced = match &mut self.resampler {
            None => &self.scratch_in[..FRAME_SAMPLES],
            Some(r) => {
                let (Ok(input), Ok(mut output)) = (
                    InterleavedSlice::new(&self.scratch_in[..need], 1, need),
                    InterleavedSlice::new_mut(&mut self.scratch_out[..], 1, FRAME_SAMPLES),
                ) else {
                    return false;
                };
                match r.process_into_buffer(&input, &mut output, None) {
                    Ok((_, n)) if n == FRAME_SAMPLES => &self.scratch_out[..FRAME_SAMPLES],
                    _ => return false,
                }
            }
        };
        for (o, &s) in frame.iter_mut().zip(produced) {
            *o = to_i16(s);
        }
        true
    }
}

/// Headset or ring audio: frames → device-rate samples into the callback's ring.
pub(super) struct PlaybackPath {
    ring: Producer<f32>,
    resampler: Option<Fft<f32>>,
    scratch_in: Vec<f32>,
    scratch_out: Vec<f32>,
    prefill: usize,
    max_queued: usize,
    glitches: u64,
    /// The previous frame was dropped too (one glitch per run of drops).
    dropping: bool,
}

impl PlaybackPath {
    /// Writes to `ring`, drained at `rate` Hz by a
    /// [`super::realtime::PlaybackCallback`]; queues the start-up silence.
    pub(super) fn new(ring: Producer<f32>, rate: u32) -> Result<PlaybackPath, DeviceError> {
        let resampler = if rate == SAMPLE_RATE {
            None
        } else {
            Some(resampler(SAMPLE_RATE, rate, FixedSync::Input)?)
        };
        let max_out = resampler
            .as_ref()
            .map_or(FRAME_SAMPLES, |r| r.output_frames_max());
        let mut path = PlaybackPath {
            ring,
            resampler,
            scratch_in: vec![0.0; FRAME_SAMPLES],
            scratch_out: vec![0.0; max_out.max(FRAME_SAMPLES)],
            prefill: samples(rate, PLAYBACK_PREFILL_MS),
            max_queued: samples(rate, PLAYBACK_MAX_MS),
            glitches: 0,
            dropping: false,
        };
        path.queue_silence();
        Ok(path)
    }

    /// Runs of frames dropped here because the ring was too full (the
    /// device stalled or runs slower than the media clock).
    pub(super) fn glitches(&self) -> u64 {
        self.glitches
    }

    fn queue_silence(&mut self) {
        let n = self.prefill.min(self.ring.slots());
        if let Ok(chunk) = self.ring.write_chunk(n) {
            chunk.commit_all(); // `write_chunk` fills with 0.0
        }
    }

    /// Converts and queues one frame; drops it if the ring already holds
    /// more than 100 ms.
    pub(super) fn write(&mut self, frame: &Frame) {
        let out: &[f32] = match &mut self.resampler {
            None => {
                for (o, &s) in self.scratch_out.iter_mut().zip(frame.iter()) {
                    *o = to_f32(s);
                }
                &self.scratch_out[..FRAME_SAMPLES]
            }
            Some(r) => {
                for (o, &s) in self.scratch_in.iter_mut().zip(frame.iter()) {
                    *o = to_f32(s);
                }
                let capacity = self.scratch_out.len();
                let (Ok(input), Ok(mut output)) = (
                    InterleavedSlice::new(&self.scratch_in[..], 1, FRAME_SAMPLES),
                    InterleavedSlice::new_mut(&mut self.scratch_out[..], 1, capacity),
                ) else {
                    return;
                };
                match r.process_into_buffer(&input, &mut output, None) {
                    Ok((_, n)) => &self.scratch_out[..n.min(capacity)],
                    Err(_) => return,
                }
            }
        };
        let queued = self.ring.buffer().capacity() - self.ring.slots();
        let n = out.len();
        if queued == 0 {
            // The callback ran dry (or never had audio): rebuild the cushion.
            let fill = self.prefill.min(self.ring.slots());
            if let Ok(chunk) = self.ring.write_chunk(fill) {
                chunk.commit_all();
            }
        } else if queued + n > self.max_queued {
            if !self.dropping {
                self.dropping = true;
                self.glitches += 1;
            }
            return;
        }
        self.dropping = false;
        let _ = self.ring.push_partial_slice(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::device::realtime::{CaptureCallback, PlaybackCallback, StreamFlags};
    use std::f64::consts::PI;
    use std::sync::Arc;

    /// Zero crossings per second of `x` sampled at `rate`: twice the frequency of a sine.
    fn crossings_per_second(x: &[f32], rate: f64) -> f64 {
        let n = x
            .windows(2)
            .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
            .count();
        n as f64 * rate / x.len() as f64
    }

    fn sine(freq: f64, amplitude: f64, rate: f64, len: usize, offset: usize) -> Vec<f32> {
        (offset..offset + len)
            .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / rate).sin()) as f32)
            .collect()
    }

    #[test]
    fn capture_at_48k_primes_then_passes_frames_through() {
        let (mut prod, cons) = ring(48_000);
        let mut path = CapturePath::new(cons, 48_000).expect("48k");
        let mut frame = [0i16; FRAME_SAMPLES];
        let ramp: Vec<f32> = (0..3 * FRAME_SAMPLES).map(|i| i as f32 / 4096.0).collect();
        let _ = prod.push_partial_slice(&ramp[..FRAME_SAMPLES]);
        assert!(
            !path.read(&mut frame),
            "one frame queued is not primed (needs +20 ms)"
        );
        let _ = prod.push_partial_slice(&ramp[FRAME_SAMPLES..]);
        assert!(path.read(&mut frame));
        assert_eq!(frame[0], 0);
        assert_eq!(frame[100], to_i16(100.0 / 4096.0));
        assert!(path.read(&mut frame));
        assert_eq!(frame[0], to_i16(960.0 / 4096.0));
        assert!(path.read(&mut frame));
        assert!(!path.read(&mut frame), "ring empty: underrun");
        assert_eq!(path.glitches(), 1);
        let _ = prod.push_partial_slice(&ramp[..FRAME_SAMPLES]);
        assert!(!path.read(&mut frame), "after an underrun it primes again");
        assert_eq!(path.glitches(), 1, "no new glitch while priming");
    }

    #[test]
    fn capture_trims_stale_audio() {
        let (mut prod, cons) = ring(48_000);
        let mut path = CapturePath::new(cons, 48_000).expect("48k");
        let old = vec![0.5f32; samples(48_000, 150)];
        let _ = prod.push_partial_slice(&old);
        let mut frame = [0i16; FRAME_SAMPLES];
        assert!(path.read(&mut frame));
        assert_eq!(path.glitches(), 1, "the trim counts as a glitch");
        // 40 ms kept, one frame read: 20 ms left.
        assert_eq!(prod.buffer().capacity() - prod.slots(), samples(48_000, 20));
    }

    #[test]
    fn capture_resamples_44k1_to_48k() {
        let rate = 44_100.0;
        let (prod, cons) = ring(44_100);
        let mut cb = CaptureCallback::new(prod, 1, Arc::new(StreamFlags::default()));
        let mut path = CapturePath::new(cons, 44_100).expect("44.1k");
        let mut out = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut fed = 0;
        let mut reads = 0;
        // 441 samples (10 ms) per callback, two callbacks per 20 ms tick.
        for _ in 0..100 {
            for _ in 0..2 {
                cb.process(&sine(1000.0, 0.5, rate, 441, fed));
                fed += 441;
            }
            if path.read(&mut frame) {
                reads += 1;
                out.extend(frame.iter().map(|&s| f32::from(s) / 32768.0));
            }
        }
        assert!(reads >= 97, "only {reads} frames out of 100 ticks");
        let steady = &out[10 * FRAME_SAMPLES..];
        let freq = crossings_per_second(steady, 48_000.0) / 2.0;
        assert!((freq - 1000.0).abs() < 5.0, "1 kHz came out as {freq} Hz");
        let peak = steady.iter().fold(0f32, |m, &s| m.max(s.abs()));
        assert!((peak - 0.5).abs() < 0.03, "peak {peak}");
    }

    #[test]
    fn playback_at_48k_prefills_then_queues_frames() {
        let (prod, mut cons) = ring(48_000);
        let mut path = PlaybackPath::new(prod, 48_000).expect("48k");
        assert_eq!(cons.slots(), samples(48_000, 40), "40 ms of silence queued");
        let mut frame = [0i16; FRAME_SAMPLES];
        frame[0] = 16384;
        path.write(&frame);
        assert_eq!(cons.slots(), samples(48_000, 60));
        let mut all = vec![0f32; cons.slots()];
        cons.pop_entire_slice(&mut all).expect("queued");
        assert!(all[..1920].iter().all(|&s| s == 0.0));
        assert_eq!(all[1920], 0.5);
        // Ring empty (the callback ran dry): silence is queued again first.
        path.write(&frame);
        assert_eq!(cons.slots(), samples(48_000, 60));
    }

    #[test]
    fn playback_drops_frames_beyond_100_ms() {
        let (prod, mut cons) = ring(48_000);
        let mut path = PlaybackPath::new(prod, 48_000).expect("48k");
        let frame = [1000i16; FRAME_SAMPLES];
        for _ in 0..10 {
            path.write(&frame);
        }
        assert_eq!(cons.slots(), samples(48_000, 100), "40 ms + 3 frames");
        assert_eq!(path.glitches(), 1, "7 frames dropped in one run");
        let mut drained = vec![0f32; 960];
        cons.pop_entire_slice(&mut drained).expect("queued");
        path.write(&frame);
        assert_eq!(cons.slots(), samples(48_000, 100), "room again: queued");
        path.write(&frame);
        assert_eq!(path.glitches(), 2, "a new run of drops");
    }

    #[test]
    fn playback_resamples_48k_to_44k1() {
        let (prod, cons) = ring(44_100);
        let mut cb = PlaybackCallback::new(cons, 2, Arc::new(StreamFlags::default()));
        let mut path = PlaybackPath::new(prod, 44_100).expect("44.1k");
        let input = sine(1000.0, 0.5, 48_000.0, 100 * FRAME_SAMPLES, 0);
        let mut device = vec![0f32; 2 * 882];
        let mut left = Vec::new();
        for chunk in input.chunks_exact(FRAME_SAMPLES) {
            let mut frame = [0i16; FRAME_SAMPLES];
            for (o, &s) in frame.iter_mut().zip(chunk) {
                *o = to_i16(s);
            }
            path.write(&frame);
            cb.process(&mut device);
            left.extend(device.iter().step_by(2));
            assert_eq!(device[0], device[1], "mono on both channels");
        }
        assert_eq!(path.glitches(), 0);
        let steady = &left[20 * 882..];
        let freq = crossings_per_second(steady, 44_100.0) / 2.0;
        assert!((freq - 1000.0).abs() < 5.0, "1 kHz came out as {freq} Hz");
    }

    /// Steady state with conversion both ways, under the allocation checker.
    #[test]
    fn paths_do_not_allocate_per_frame() {
        let (cap_prod, cap_cons) = ring(44_100);
        let (play_prod, play_cons) = ring(16_000);
        let flags = Arc::new(StreamFlags::default());
        let mut capture_cb = CaptureCallback::new(cap_prod, 2, flags.clone());
        let mut playback_cb = PlaybackCallback::new(play_cons, 1, flags);
        let mut capture = CapturePath::new(cap_cons, 44_100).expect("44.1k");
        let mut playback = PlaybackPath::new(play_prod, 16_000).expect("16k");
        let device_in = vec![0.25f32; 2 * 441];
        let mut device_out = vec![0i16; 320];
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut reads = 0;
        let before = assert_no_alloc::violation_count();
        assert_no_alloc::assert_no_alloc(|| {
            for _ in 0..200 {
                capture_cb.process(&device_in);
                capture_cb.process(&device_in);
                if capture.read(&mut frame) {
                    reads += 1;
                }
                playback.write(&frame);
                playback_cb.process(&mut device_out);
            }
        });
        assert_eq!(assert_no_alloc::violation_count() - before, 0);
        assert!(reads > 190);
        assert_eq!(frame[500], 8192);
        assert!(device_out.iter().all(|&s| (s - 8192).abs() < 200));
    }
}
