//! Locally played sounds at the engine's frame (48 kHz mono): the call
//! progress tones ([`ToneGenerator`]) and music on hold ([`MusicOnHold`]).
//!
//! Owns the tone plans (frequencies, cadences, level, edge fades) and the
//! one-time WAV decode and conversion to 48 kHz mono. It must not read clocks,
//! log, or allocate in `fill`; it never panics on a file's contents: a bad
//! file is a [`ToneError`] from [`MusicOnHold::load`].
//!
//! ```text
//!  Ringback  425 Hz (CEPT/ETSI, ITU-T E.180; Europe)    ▇▇▁▁▁▁▁▁▇▇▁▁▁▁▁▁   1 s on, 4 s off
//!  Busy      425 Hz                                      ▇▁▇▁▇▁▇▁▇▁▇▁▇▁▇▁   0.5 s on, 0.5 s off
//!  Ring      784 ⇄ 988 Hz warble (G5/B5, 16 Hz trill)    ▇▇▇▇▁▁▁▁▁▁▁▁▇▇▇▇   2 s on, 4 s off
//!
//!  level: −12 dBFS peak; every burst fades in and out over 5 ms (raised cosine);
//!  one phase accumulator runs across frames, so frame edges never click.
//!
//!  MusicOnHold::load:  WAV (8/16/24/32-bit int or 32-bit float, any rate, any channels)
//!      ─► channel average ─► Catmull-Rom resampling to 48 kHz (wrapping, for the loop)
//!      ─► 50 ms crossfade of the end into the start ─► i16 buffer played in a loop
//! ```
//!
//! Every tone starts at the beginning of its "on" period.

use std::f64::consts::TAU;
use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use super::{Frame, SAMPLE_RATE};

/// Peak level of the tones, in dBFS.
pub const TONE_LEVEL_DBFS: f32 = -12.0;

/// Peak amplitude of the tones: 32767 · 10^(−12/20).
const AMPLITUDE: f64 = 8_230.7;

/// Length of the fade at each edge of a tone burst (5 ms).
const FADE_SAMPLES: u32 = SAMPLE_RATE / 200;

/// The ETSI call progress frequency (Hz) of ringback and busy.
const ETSI_HZ: f64 = 425.0;

/// The two frequencies of the ring warble (Hz): G5 and B5, a major third.
const RING_HZ: [f64; 2] = [783.99, 987.77];

/// Samples each ring frequency lasts before switching: 1/32 s, a 16 Hz trill.
const RING_HALF_SAMPLES: u32 = SAMPLE_RATE / 32;

/// Samples over which the ring frequency glides from one to the other (2 ms).
const RING_GLIDE_SAMPLES: u32 = SAMPLE_RATE / 500;

/// Longest music on hold accepted, in seconds (5 minutes: 28.8 MB at 48 kHz).
pub const MOH_MAX_SECONDS: u32 = 300;

/// Length of the crossfade that joins the end of the music to its start (50 ms).
const LOOP_CROSSFADE: usize = SAMPLE_RATE as usize / 20;

/// A locally generated tone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToneKind {
    /// Ringback (the far end is ringing): 425 Hz, 1 s on, 4 s off (ETSI).
    Ringback,
    /// Incoming call alert played on the headset: 784/988 Hz warble, 2 s on, 4 s off.
    Ring,
    /// Busy: 425 Hz, 0.5 s on, 0.5 s off (ETSI).
    Busy,
}

impl ToneKind {
    /// (samples on, samples off) of one cadence cycle.
    fn cadence(self) -> (u32, u32) {
        match self {
            ToneKind::Ringback => (SAMPLE_RATE, 4 * SAMPLE_RATE),
            ToneKind::Ring => (2 * SAMPLE_RATE, 4 * SAMPLE_RATE),
            ToneKind::Busy => (SAMPLE_RATE / 2, SAMPLE_RATE / 2),
        }
    }

    /// The frequency (Hz) at sample `pos` of the "on" period.
    fn frequency(self, pos: u32) -> f64 {
        match self {
            ToneKind::Ringback | ToneKind::Busy => ETSI_HZ,
            ToneKind::Ring => {
                let half = (pos / RING_HALF_SAMPLES) as usize % 2;
                let into = pos % RING_HALF_SAMPLES;
                let target = RING_HZ[half];
                if pos < RING_HALF_SAMPLES || into >= RING_GLIDE_SAMPLES {
                    target
                } else {
                    let from = RING_HZ[1 - half];
                    from + (target - from) * f64::from(into) / f64::from(RING_GLIDE_SAMPLES)
                }
            }
        }
    }
}

/// Plays one [`ToneKind`] frame after frame, phase-continuous.
#[derive(Debug, Clone)]
pub struct ToneGenerator {
    kind: ToneKind,
    on: u32,
    period: u32,
    /// Position in the cadence cycle, in samples.
    pos: u32,
    /// Oscillator phase, in cycles (0 ≤ phase < 1).
    phase: f64,
}

impl ToneGenerator {
    /// A generator for `kind`, starting at the beginning of a burst.
    pub fn new(kind: ToneKind) -> ToneGenerator {
        let (on, off) = kind.cadence();
        ToneGenerator {
            kind,
            on,
            period: on + off,
            pos: 0,
            phase: 0.0,
        }
    }

    /// Writes the next frame of the tone into `frame`.
    pub fn fill(&mut self, frame: &mut Frame) {
        for out in frame.iter_mut() {
            let pos = self.pos;
            *out = if pos < self.on {
                let gain = edge_gain(pos, self.on);
                let value = AMPLITUDE * gain * (TAU * self.phase).sin();
                self.phase += self.kind.frequency(pos) / f64::from(SAMPLE_RATE);
                self.phase -= self.phase.floor();
                value.round() as i16
            } else {
                0
            };
            self.pos = (pos + 1) % self.period;
        }
    }
}

/// Raised-cosine gain at the edges of a burst of `on` samples.
fn edge_gain(pos: u32, on: u32) -> f64 {
    let from_edge = pos.min(on - 1 - pos);
    if from_edge >= FADE_SAMPLES {
        1.0
    } else {
        0.5 - 0.5 * (std::f64::consts::PI * f64::from(from_edge) / f64::from(FADE_SAMPLES)).cos()
    }
}

/// Why music on hold could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ToneError {
    /// There is no file at the path.
    #[error("music on hold: file not found: {0}")]
    NotFound(PathBuf),
    /// The file exists but could not be read.
    #[error("music on hold: cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The file is not a readable WAV file.
    #[error("music on hold: {path} is not a valid WAV file: {reason}")]
    NotWav {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The WAV file uses a format this loader does not handle.
    #[error("music on hold: {path}: unsupported WAV format: {reason}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Which format.
        reason: String,
    },
    /// The WAV file holds no audio.
    #[error("music on hold: {0} contains no audio")]
    Empty(PathBuf),
    /// The WAV file is longer than [`MOH_MAX_SECONDS`].
    #[error("music on hold: {path} lasts {seconds} s, more than the {max} s allowed")]
    TooLong {
        /// The file.
        path: PathBuf,
        /// Its length in seconds.
        seconds: u64,
        /// The limit ([`MOH_MAX_SECONDS`]).
        max: u32,
    },
}

/// Music on hold: a WAV file converted once to 48 kHz mono, played in a loop.
#[derive(Debug, Clone)]
pub struct MusicOnHold {
    samples: Vec<i16>,
    pos: usize,
}

impl MusicOnHold {
    /// Loads a WAV file (any sample rate, any number of channels, 8/16/24/32-bit
    /// integer or 32-bit float samples) and converts it to 48 kHz mono: channels
    /// averaged, Catmull-Rom (cubic) interpolation, the last 50 ms crossfaded
    /// into the start so the loop has no seam. Errors name the problem: not
    /// found, unreadable, not WAV, unsupported format, empty, too long.
    pub fn load(path: &Path) -> Result<MusicOnHold, ToneError> {
        let file = File::open(path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => ToneError::NotFound(path.to_path_buf()),
            _ => ToneError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
        let not_wav = |e: hound::Error| match e {
            // An error from the OS is an I/O problem; hound's own (short
            // read) I/O errors mean the file is cut short.
            hound::Error::IoError(source) if source.raw_os_error().is_some() => ToneError::Io {
                path: path.to_path_buf(),
                source,
            },
            hound::Error::Unsupported => ToneError::Unsupported {
                path: path.to_path_buf(),
                reason: "codec other than PCM or IEEE float".into(),
            },
            other => ToneError::NotWav {
                path: path.to_path_buf(),
                reason: other.to_string(),
            },
        };
        let mut reader = hound::WavReader::new(BufReader::new(file)).map_err(not_wav)?;
        let spec = reader.spec();
        let unsupported = |reason: String| ToneError::Unsupported {
            path: path.to_path_buf(),
            reason,
        };
        if spec.channels == 0 || spec.sample_rate == 0 {
            return Err(unsupported(format!(
                "{} channels at {} Hz",
                spec.channels, spec.sample_rate
            )));
        }
        let scale = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => 1.0,
            (hound::SampleFormat::Int, bits @ 1..=32) => 1.0 / f64::from(1u32 << (bits - 1)),
            (format, bits) => return Err(unsupported(format!("{bits}-bit {format:?} samples"))),
        };
        let frames = reader.duration();
        let seconds = u64::from(frames) / u64::from(spec.sample_rate);
        if seconds > u64::from(MOH_MAX_SECONDS) {
            return Err(ToneError::TooLong {
                path: path.to_path_buf(),
                seconds,
                max: MOH_MAX_SECONDS,
            });
        }
        let channels = usize::from(spec.channels);
        // The header's length is only a hint (it may lie): cap the reservation.
        let mut mono: Vec<f32> = Vec::with_capacity((frames as usize).min(1 << 22));
        let mut sum = 0.0f64;
        let mut count = 0usize;
        let mut push = |x: f64| {
            sum += x;
            count += 1;
            if count == channels {
                mono.push((sum / channels as f64) as f32);
                sum = 0.0;
                count = 0;
            }
        };
        if spec.sample_format == hound::SampleFormat::Float {
            for s in reader.samples::<f32>() {
                push(f64::from(s.map_err(not_wav)?));
            }
        } else {
            for s in reader.samples::<i32>() {
                push(f64::from(s.map_err(not_wav)?) * scale);
            }
        }
        if mono.is_empty() {
            return Err(ToneError::Empty(path.to_path_buf()));
        }
        let mut samples = resample(&mono, spec.sample_rate, SAMPLE_RATE);
        if samples.is_empty() {
            return Err(ToneError::Empty(path.to_path_buf()));
        }
        crossfade_loop(&mut samples);
        Ok(MusicOnHold {
            samples: samples.into_iter().map(to_i16).collect(),
            pos: 0,
        })
    }

    /// Writes the next frame of the music into `frame`, wrapping to the start.
    pub fn fill(&mut self, frame: &mut Frame) {
        let mut filled = 0;
        while filled < frame.len() {
            let Some(rest) = self.samples.get(self.pos..).filter(|r| !r.is_empty()) else {
                // Only reachable if the buffer were empty, which `load` refuses.
                frame[filled..].fill(0);
                self.pos = 0;
                return;
            };
            let n = rest.len().min(frame.len() - filled);
            frame[filled..filled + n].copy_from_slice(&rest[..n]);
            filled += n;
            self.pos += n;
            if self.pos >= self.samples.len() {
                self.pos = 0;
            }
        }
    }
}

/// Converts `x` from `from` Hz to `to` Hz with Catmull-Rom interpolation;
/// neighbours wrap around, as the result is played in a loop.
fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    let n = x.len();
    let out_len = ((n as u64 * u64::from(to) + u64::from(from) / 2) / u64::from(from)) as usize;
    let at = |i: usize, d: isize| x[(i as isize + d).rem_euclid(n as isize) as usize];
    (0..out_len)
        .map(|k| {
            // Exact source position k·from/to as an integer part and a fraction.
            let num = k as u64 * u64::from(from);
            let i = (num / u64::from(to)) as usize % n;
            let t = (num % u64::from(to)) as f32 / to as f32;
            let (p0, p1, p2, p3) = (at(i, -1), at(i, 0), at(i, 1), at(i, 2));
            p1 + 0.5
                * t
                * (p2 - p0
                    + t * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3 + t * (3.0 * (p1 - p2) + p3 - p0)))
        })
        .collect()
}

/// Crossfades the last [`LOOP_CROSSFADE`] samples into the first ones and drops
/// those, so playback runs from the end straight into the music that followed
/// them. Buffers shorter than four crossfades are left alone.
fn crossfade_loop(x: &mut Vec<f32>) {
    let n = x.len();
    let l = LOOP_CROSSFADE;
    if n < 4 * l {
        return;
    }
    for i in 0..l {
        let w = (i as f32 + 0.5) / l as f32;
        x[n - l + i] = x[n - l + i] * (1.0 - w) + x[i] * w;
    }
    x.drain(..l);
}

/// A sample in −1…1 to 16-bit, clipped.
fn to_i16(x: f32) -> i16 {
    (x * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

#[cfg(test)]
mod tests {
    use super::super::{FRAME_MS, FRAME_SAMPLES, TICKS_PER_SECOND};
    use super::*;

    /// `ms` milliseconds of `kind` in frames, concatenated.
    fn tone(kind: ToneKind, ms: u32) -> Vec<i16> {
        let frames = (ms / FRAME_MS) as usize;
        let mut g = ToneGenerator::new(kind);
        let mut out = Vec::with_capacity(frames * FRAME_SAMPLES);
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..frames {
            frame.fill(1234); // fill must overwrite everything
            g.fill(&mut frame);
            out.extend_from_slice(&frame);
        }
        out
    }

    /// Power of `x` at `freq` Hz (Goertzel), normalised by the length.
    fn goertzel(x: &[i16], freq: f64) -> f64 {
        let w = TAU * freq / f64::from(SAMPLE_RATE);
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s0 = f64::from(v) + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f64).powi(2)
    }

    /// Frequency from rising zero crossings, using the first and last crossing.
    fn zero_crossing_hz(x: &[i16]) -> f64 {
        let rising: Vec<usize> = (1..x.len())
            .filter(|&i| x[i - 1] < 0 && x[i] >= 0)
            .collect();
        let (first, last) = (rising[0], rising[rising.len() - 1]);
        (rising.len() - 1) as f64 * f64::from(SAMPLE_RATE) / (last - first) as f64
    }

    fn peak(x: &[i16]) -> i32 {
        x.iter().map(|&v| i32::from(v).abs()).max().unwrap_or(0)
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Largest step between consecutive samples.
    fn max_step(x: &[i16]) -> i32 {
        x.windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .max()
            .unwrap_or(0)
    }

    /// (first, last) sample index of each burst: runs of nonzero samples
    /// separated by at least 0.1 s of zeros.
    fn bursts(x: &[i16]) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (i, &v) in x.iter().enumerate() {
            if v == 0 {
                continue;
            }
            match out.last_mut() {
                Some((_, end)) if i - *end < 4_800 => *end = i,
                _ => out.push((i, i)),
            }
        }
        out
    }

    #[test]
    fn ringback_is_425hz_one_second_in_five() {
        let x = tone(ToneKind::Ringback, 12_000);
        let b = bursts(&x);
        assert_eq!(b.len(), 3);
        for (k, &(start, end)) in b.iter().enumerate() {
            let cycle = k * 5 * 48_000;
            // The fade's first sample is gain 0, the rest rounds to nonzero quickly.
            assert!(
                (cycle..cycle + 20).contains(&start),
                "burst {k} starts at {start}"
            );
            assert!(
                (cycle + 48_000 - 20..cycle + 48_000).contains(&end),
                "burst {k} ends at {end}"
            );
        }
        assert!(x[48_000..5 * 48_000].iter().all(|&v| v == 0));
        let on = &x[..48_000];
        let hz = zero_crossing_hz(on);
        assert!((hz - 425.0).abs() < 0.5, "{hz} Hz");
        assert!(goertzel(on, 425.0) > 1_000.0 * goertzel(on, 850.0));
    }

    #[test]
    fn busy_is_425hz_half_on_half_off() {
        let x = tone(ToneKind::Busy, 5_000);
        let b = bursts(&x);
        assert_eq!(b.len(), 5);
        for (k, &(start, end)) in b.iter().enumerate() {
            let cycle = k * 48_000;
            assert!((cycle..cycle + 20).contains(&start));
            assert!((cycle + 24_000 - 20..cycle + 24_000).contains(&end));
            assert!(x[cycle + 24_000..cycle + 48_000].iter().all(|&v| v == 0));
        }
        let hz = zero_crossing_hz(&x[..24_000]);
        assert!((hz - 425.0).abs() < 1.0, "{hz} Hz");
        // Per-frame view: the first half second's frames on, the next half second's off.
        let second = TICKS_PER_SECOND as usize;
        for (i, f) in x.chunks_exact(FRAME_SAMPLES).take(second).enumerate() {
            assert_eq!(rms(f) > 1_000.0, i < second / 2, "frame {i}");
        }
    }

    #[test]
    fn ring_warbles_two_seconds_in_six() {
        let x = tone(ToneKind::Ring, 18_000);
        let b = bursts(&x);
        assert_eq!(b.len(), 3);
        for (k, &(start, end)) in b.iter().enumerate() {
            let cycle = k * 6 * 48_000;
            assert!((cycle..cycle + 20).contains(&start));
            assert!((cycle + 96_000 - 20..cycle + 96_000).contains(&end));
        }
        // Each 1/32 s half is one steady frequency after its 2 ms glide.
        let half = RING_HALF_SAMPLES as usize;
        for h in 1..60 {
            let seg = &x[h * half + 200..(h + 1) * half];
            let (want, other) = if h % 2 == 0 {
                (RING_HZ[0], RING_HZ[1])
            } else {
                (RING_HZ[1], RING_HZ[0])
            };
            let (pw, po) = (goertzel(seg, want), goertzel(seg, other));
            assert!(pw > 50.0 * po, "half {h}: {pw} vs {po}");
        }
    }

    #[test]
    fn level_is_minus_12_dbfs() {
        for kind in [ToneKind::Ringback, ToneKind::Ring, ToneKind::Busy] {
            let x = tone(kind, 500);
            let p = peak(&x);
            assert!((8_220..=8_231).contains(&p), "{kind:?} peak {p}");
            let steady = &x[4_800..19_200];
            let r = rms(steady);
            assert!((r - 8_230.7 / 2f64.sqrt()).abs() < 60.0, "{kind:?} rms {r}");
        }
    }

    #[test]
    fn no_clicks_at_frame_edges_or_burst_edges() {
        for (kind, max_hz) in [
            (ToneKind::Ringback, ETSI_HZ),
            (ToneKind::Busy, ETSI_HZ),
            (ToneKind::Ring, RING_HZ[1]),
        ] {
            let x = tone(kind, 8_000);
            // A full-scale sine moves at most A·2πf/fs per sample; the fade adds A·π/(2·fade).
            let bound = AMPLITUDE
                * (TAU * max_hz / f64::from(SAMPLE_RATE)
                    + std::f64::consts::PI / (2.0 * f64::from(FADE_SAMPLES)))
                + 2.0;
            let step = max_step(&x);
            assert!(f64::from(step) <= bound, "{kind:?}: step {step} > {bound}");
            // And the sine really is running: steps near the pure-sine maximum occur.
            let sine_step = AMPLITUDE * TAU * ETSI_HZ / f64::from(SAMPLE_RATE);
            assert!(f64::from(step) > 0.95 * sine_step, "{kind:?}: step {step}");
            // Edges are faded: the first samples of each burst are tiny.
            assert!(
                x[..8].iter().all(|&v| v.abs() < 100),
                "{kind:?}: {:?}",
                &x[..8]
            );
        }
    }

    #[test]
    fn generators_are_independent_and_deterministic() {
        assert_eq!(tone(ToneKind::Busy, 1_200), tone(ToneKind::Busy, 1_200));
        assert_ne!(tone(ToneKind::Busy, 1_200), tone(ToneKind::Ringback, 1_200));
    }

    fn asset() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/music_on_hold.wav")
    }

    #[test]
    fn music_on_hold_asset_loads_and_loops_seamlessly() {
        let mut moh = MusicOnHold::load(&asset()).expect("asset loads");
        let len = moh.samples.len();
        // 24 s at 16 kHz → 48 kHz, minus the 50 ms crossfade.
        assert_eq!(len, 24 * 48_000 - 2_400);
        let frames = len / FRAME_SAMPLES + 30;
        let mut out = Vec::with_capacity(frames * FRAME_SAMPLES);
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..frames {
            moh.fill(&mut frame);
            out.extend_from_slice(&frame);
        }
        assert_eq!(
            &out[len..],
            &out[..out.len() - len],
            "second pass repeats the first"
        );
        let r = rms(&out[..len]);
        assert!((1_000.0..12_000.0).contains(&r), "music level {r}");
        // The seam is no rougher than the music itself.
        let seam = (i32::from(out[len]) - i32::from(out[len - 1])).abs();
        let typical = out[..len]
            .windows(2)
            .map(|w| (i32::from(w[1]) - i32::from(w[0])).abs())
            .sum::<i32>()
            / len as i32;
        assert!(
            seam <= 4 * typical.max(1),
            "seam step {seam}, typical {typical}"
        );
    }

    fn write_wav(
        path: &Path,
        spec: hound::WavSpec,
        frames: usize,
        sample: impl Fn(usize, u16) -> f64,
    ) {
        let mut w = hound::WavWriter::create(path, spec).expect("create wav");
        for i in 0..frames {
            for c in 0..spec.channels {
                let v = sample(i, c);
                match spec.sample_format {
                    hound::SampleFormat::Float => w.write_sample(v as f32).expect("write"),
                    hound::SampleFormat::Int => {
                        w.write_sample((v * 32_767.0) as i16).expect("write")
                    }
                }
            }
        }
        w.finalize().expect("finalize");
    }

    #[test]
    fn eight_khz_stereo_is_averaged_and_resampled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("stereo8k.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        // 1 kHz: left at 0.5, right at 0.25 → mono 0.375 (12288).
        write_wav(&path, spec, 8_000, |i, c| {
            let a = if c == 0 { 0.5 } else { 0.25 };
            a * (TAU * 1_000.0 * i as f64 / 8_000.0).sin()
        });
        let mut moh = MusicOnHold::load(&path).expect("loads");
        assert_eq!(moh.samples.len(), 48_000 - 2_400);
        let mut out = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..2 * TICKS_PER_SECOND {
            moh.fill(&mut frame);
            out.extend_from_slice(&frame);
        }
        let hz = zero_crossing_hz(&out[..40_000]);
        assert!((hz - 1_000.0).abs() < 1.0, "{hz} Hz");
        let p = peak(&out);
        assert!((12_100..=12_400).contains(&p), "peak {p}");
        // Cubic interpolation keeps the 7 kHz image well down.
        let (sig, image) = (
            goertzel(&out[..40_000], 1_000.0),
            goertzel(&out[..40_000], 7_000.0),
        );
        println!("1 kHz / 7 kHz image power: {:.0}", sig / image);
        assert!(sig > 1_000.0 * image, "image {image} vs {sig}");
        // Looping wraps around the whole buffer, also across frames not aligned to it.
        assert_eq!(out[45_600..45_700], out[..100]);
    }

    #[test]
    fn float_44k1_mono_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("float.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 44_100,
            bits_per_sample: 32,
            sample_format: hound::SampleFormat::Float,
        };
        write_wav(&path, spec, 44_100, |i, _| {
            0.25 * (TAU * 441.0 * i as f64 / 44_100.0).sin()
        });
        let mut moh = MusicOnHold::load(&path).expect("loads");
        assert_eq!(moh.samples.len(), 48_000 - 2_400);
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut out = Vec::new();
        for _ in 0..TICKS_PER_SECOND * 4 / 5 {
            moh.fill(&mut frame);
            out.extend_from_slice(&frame);
        }
        let hz = zero_crossing_hz(&out);
        assert!((hz - 441.0).abs() < 0.5, "{hz} Hz");
        assert!((8_150..=8_250).contains(&peak(&out)), "peak {}", peak(&out));
    }

    #[test]
    fn short_files_loop_without_crossfade() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("short.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write_wav(&path, spec, 100, |i, _| i as f64 / 200.0);
        let mut moh = MusicOnHold::load(&path).expect("loads");
        assert_eq!(moh.samples.len(), 100);
        let mut frame = [0i16; FRAME_SAMPLES];
        moh.fill(&mut frame);
        assert_eq!(frame[..100], frame[100..200]);
        let end = FRAME_SAMPLES - 60;
        assert_eq!(frame[end..], frame[end % 100..end % 100 + 60]);
        assert_eq!(frame[1], (32_767.0f64 / 200.0) as i16);
    }

    #[test]
    fn load_errors_name_the_problem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.wav");
        match MusicOnHold::load(&missing) {
            Err(e @ ToneError::NotFound(_)) => assert!(e.to_string().contains("not found")),
            other => panic!("missing file: {other:?}"),
        }
        let text = dir.path().join("notes.wav");
        std::fs::write(&text, "these are not the samples you are looking for").expect("write");
        match MusicOnHold::load(&text) {
            Err(e @ ToneError::NotWav { .. }) => assert!(e.to_string().contains("not a valid WAV")),
            other => panic!("text file: {other:?}"),
        }
        let tiny = dir.path().join("tiny.wav");
        std::fs::write(&tiny, b"RIFF").expect("write");
        let r = MusicOnHold::load(&tiny);
        assert!(matches!(r, Err(ToneError::NotWav { .. })), "{r:?}");
        let empty = dir.path().join("empty.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write_wav(&empty, spec, 0, |_, _| 0.0);
        match MusicOnHold::load(&empty) {
            Err(e @ ToneError::Empty(_)) => assert!(e.to_string().contains("no audio")),
            other => panic!("empty wav: {other:?}"),
        }
        // Truncated sample data: never a panic.
        let full = dir.path().join("full.wav");
        write_wav(&full, spec, 1_000, |i, _| (i % 7) as f64 / 10.0);
        let bytes = std::fs::read(&full).expect("read");
        let cut = dir.path().join("cut.wav");
        std::fs::write(&cut, &bytes[..bytes.len() - 1_001]).expect("write");
        let r = MusicOnHold::load(&cut);
        assert!(matches!(r, Err(ToneError::NotWav { .. })), "{r:?}");
        let r = MusicOnHold::load(dir.path());
        assert!(matches!(r, Err(ToneError::Io { .. })), "a directory: {r:?}");
    }

    #[test]
    fn garbage_after_a_wav_header_never_panics() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.wav");
        let spec = hound::WavSpec {
            channels: 3,
            sample_rate: 11_025,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        write_wav(&path, spec, 300, |i, c| {
            ((i * 31 + usize::from(c)) % 17) as f64 / 20.0
        });
        let good = std::fs::read(&path).expect("read");
        let mut x: u32 = 12_345;
        for round in 0..300 {
            let mut bytes = good.clone();
            for _ in 0..4 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                let at = (x >> 8) as usize % 60; // mostly in the header
                bytes[at] = (x >> 24) as u8;
            }
            let p = dir.path().join(format!("g{round}.wav"));
            std::fs::write(&p, &bytes).expect("write");
            if let Ok(mut moh) = MusicOnHold::load(&p) {
                let mut frame = [0i16; FRAME_SAMPLES];
                moh.fill(&mut frame);
            }
        }
        let mut moh = MusicOnHold::load(&path).expect("the original loads");
        assert_eq!(
            moh.samples.len(),
            (300.0f64 * 48_000.0 / 11_025.0).round() as usize
        );
        let mut frame = [0i16; FRAME_SAMPLES];
        moh.fill(&mut frame);
    }
}
