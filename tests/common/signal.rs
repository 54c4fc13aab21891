//! Test signals and how to compare what came out with what went in.
//!
//! [`write_test_signal`] writes a speech-band sweep with a stepped pitch
//! contour (no period shorter than the whole clip, so the correlation has one
//! peak). [`best_alignment`] finds the delay that lines the output up with the
//! reference and the normalised cross-correlation there; [`longest_gap_ms`]
//! finds the longest run of near-silence inside a span (a dropout).

use std::path::Path;

/// The rate test signals are written at.
pub const RATE: u32 = 48_000;

/// Writes `seconds` of the test signal (48 kHz mono 16-bit) to `path`.
pub fn write_test_signal(path: &Path, seconds: f32) -> Vec<f32> {
    let n = (seconds * RATE as f32) as usize;
    let mut samples = Vec::with_capacity(n);
    let mut phase = 0.0f32;
    let mut phase2 = 0.0f32;
    for i in 0..n {
        let t = i as f32 / RATE as f32;
        // A pitch that wanders 300–2400 Hz without repeating, plus a second partial.
        let f =
            900.0 + 600.0 * (t * 1.3).sin() + 450.0 * (t * 3.7).sin() + 300.0 * (t * 0.37).cos();
        phase += 2.0 * std::f32::consts::PI * f / RATE as f32;
        phase2 += 2.0 * std::f32::consts::PI * (f * 1.5) / RATE as f32;
        // A syllable-like envelope (never fully silent).
        let env = 0.55 + 0.45 * (t * 2.0 * std::f32::consts::PI * 3.1).sin().abs();
        samples.push(env * (0.5 * phase.sin() + 0.2 * phase2.sin()));
    }
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating the test signal");
    for s in &samples {
        w.write_sample((s * 16_000.0) as i16)
            .expect("writing a sample");
    }
    w.finalize().expect("finishing the test signal");
    samples
}

/// Reads a mono (or first channel of a) WAV as floats in −1..1, with its rate.
pub fn read_wav(path: &Path) -> (Vec<f32>, u32) {
    let mut r =
        hound::WavReader::open(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let spec = r.spec();
    let channels = usize::from(spec.channels.max(1));
    let samples: Vec<f32> = match spec.sample_format {
        hound::SampleFormat::Int => r
            .samples::<i32>()
            .map(|s| s.unwrap_or(0) as f32 / (1 << (spec.bits_per_sample - 1)) as f32)
            .collect(),
        hound::SampleFormat::Float => r.samples::<f32>().map(|s| s.unwrap_or(0.0)).collect(),
    };
    (
        samples.into_iter().step_by(channels).collect(),
        spec.sample_rate,
    )
}

/// Averages blocks of `factor` samples (a crude low-pass before decimating).
fn decimate(x: &[f32], factor: usize) -> Vec<f32> {
    x.chunks(factor)
        .map(|c| c.iter().sum::<f32>() / c.len() as f32)
        .collect()
}

/// The delay (ms) at which `output` best matches a 1.5 s window of
/// `reference` starting at 0.5 s, and the normalised cross-correlation
/// there (1.0 = identical shape). Both at 48 kHz; compared at 8 kHz.
pub fn best_alignment(reference: &[f32], output: &[f32], max_delay_ms: u32) -> (f32, f32) {
    let factor = 6;
    let r = decimate(reference, factor);
    let o = decimate(output, factor);
    let rate = (RATE as usize / factor) as f32;
    let start = (0.5 * rate) as usize;
    let len = (1.5 * rate) as usize;
    let window = &r[start.min(r.len())..(start + len).min(r.len())];
    let max_lag = (max_delay_ms as f32 / 1000.0 * rate) as usize;
    let energy_r: f32 = window.iter().map(|v| v * v).sum();
    let (mut best, mut best_lag) = (f32::MIN, 0);
    for lag in 0..=max_lag {
        let from = start + lag;
        if from + window.len() > o.len() {
            break;
        }
        let seg = &o[from..from + window.len()];
        let dot: f32 = window.iter().zip(seg).map(|(a, b)| a * b).sum();
        let energy_o: f32 = seg.iter().map(|v| v * v).sum();
        let ncc = dot / (energy_r * energy_o).sqrt().max(1e-9);
        if ncc > best {
            best = ncc;
            best_lag = lag;
        }
    }
    (best_lag as f32 / rate * 1000.0, best)
}

/// The longest run (ms) of samples below `threshold` in `x[from..to]` (48 kHz).
pub fn longest_gap_ms(x: &[f32], from_s: f32, to_s: f32, threshold: f32) -> f32 {
    let from = (from_s * RATE as f32) as usize;
    let to = ((to_s * RATE as f32) as usize).min(x.len());
    let (mut run, mut longest) = (0usize, 0usize);
    for v in &x[from.min(to)..to] {
        if v.abs() < threshold {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    longest as f32 / RATE as f32 * 1000.0
}

/// When a switchboard's media clock started (Unix ms), from its log text: the line
/// `media clock started unix_ms=…`. Tick k of that clock reads the k-th microphone frame and
/// writes the k-th headset frame, so with file audio sample positions become wall-clock times.
pub fn media_clock_start(log: &str) -> Option<f64> {
    let line = log.lines().find(|l| l.contains("media clock started"))?;
    let value = line.split("unix_ms=").nth(1)?.split_whitespace().next()?;
    value.parse().ok()
}

/// The part of a 48 kHz recording from 1 s after the first sound (|x| > 0.02) to the last
/// sound, and where that part starts in the recording (samples); `None` if it is silent.
pub fn after_onset(recording: &[f32]) -> Option<(&[f32], usize)> {
    let onset = recording.iter().position(|s| s.abs() > 0.02)?;
    let last = recording
        .iter()
        .rposition(|s| s.abs() > 0.02)
        .unwrap_or(recording.len());
    let start = (onset + RATE as usize).min(last);
    Some((&recording[start..last], start))
}

/// Where `heard` (a recording of a sender that loops `reference`) lines up with the
/// reference: `(lag_ms, ncc)` as [`best_alignment`], searched over every phase of the loop.
pub fn align_with_loop(heard: &[f32], reference: &[f32]) -> (f32, f32) {
    let mut looped = reference.to_vec();
    looped.extend_from_slice(reference);
    let period_ms = (reference.len() as u64 * 1000 / u64::from(RATE)) as u32;
    best_alignment(heard, &looped, period_ms)
}

/// The normalised cross-correlation of each `window_s` window of `heard` with the looping
/// `reference`, every window aligned on its own within ±`slack_ms` of `lag_ms` (the lag of
/// [`align_with_loop`]). A jitter buffer that moves its delay during a call shifts the windows
/// after the move, which one alignment for the whole recording would count as distortion;
/// garbled or missing audio lowers every window. Compared at 8 kHz like [`best_alignment`].
pub fn ncc_by_window(
    heard: &[f32],
    reference: &[f32],
    lag_ms: f32,
    window_s: f32,
    slack_ms: f32,
) -> Vec<f32> {
    let factor = 6;
    let h = decimate(heard, factor);
    let r = decimate(reference, factor);
    let rate = (RATE as usize / factor) as f32;
    let len = (window_s * rate) as usize;
    let slack = (slack_ms / 1000.0 * rate) as isize;
    let lag = (lag_ms / 1000.0 * rate) as isize;
    let mut nccs = Vec::new();
    for window in h.chunks_exact(len.max(1)) {
        let start = (nccs.len() * len) as isize;
        let coarse = (-slack..=slack)
            .map(|shift| (ncc_at(window, &r, start + lag + shift), shift))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map_or(0, |(_, shift)| shift);
        // Lined up to the sample at 48 kHz: the decimation's blocks fall on the recording
        // where its first sound does, so at 8 kHz alone a delay that is not a multiple of six
        // samples would count as distortion in the upper band.
        let full = factor as isize;
        let from = start as usize * factor;
        let window = &heard[from..from + len * factor];
        let at = (start + lag + coarse) * full;
        let fine = (-full..=full)
            .map(|d| ncc_at(window, reference, at + d))
            .fold(f32::MIN, f32::max);
        nccs.push(fine);
    }
    nccs
}

/// The normalised cross-correlation of `window` with the looping `reference` read from `at`.
fn ncc_at(window: &[f32], reference: &[f32], at: isize) -> f32 {
    let period = reference.len() as isize;
    let (mut dot, mut hh, mut rr) = (0.0f32, 0.0f32, 0.0f32);
    for (i, v) in window.iter().enumerate() {
        let x = reference[(at + i as isize).rem_euclid(period) as usize];
        dot += v * x;
        hh += v * v;
        rr += x * x;
    }
    dot / (hh * rr).sqrt().max(1e-9)
}

/// How well `heard`, a recording of a sender that loops `reference`, carries it: the lag of
/// [`align_with_loop`] and the normalised cross-correlation of every 0.5 s window, each lined
/// up on its own within ±100 ms ([`ncc_by_window`]). Judge the median of the windows: one
/// jitter-buffer step on a loaded machine lowers one window, garbled audio lowers them all.
pub fn windows_heard(heard: &[f32], reference: &[f32]) -> (f32, Vec<f32>) {
    let (lag_ms, _) = align_with_loop(heard, reference);
    (lag_ms, ncc_by_window(heard, reference, lag_ms, 0.5, 100.0))
}

/// The median of the windows' correlations ([`windows_heard`]), printed with each of them
/// under `label`; at least `min_windows` windows must have been heard.
pub fn median_ncc(label: &str, windows: &[f32], min_windows: usize) -> f32 {
    let shown: Vec<String> = windows.iter().map(|v| format!("{v:.3}")).collect();
    println!("{label}: ncc by 0.5 s window [{}]", shown.join(", "));
    assert!(
        windows.len() >= min_windows,
        "{label}: {} windows of audio heard",
        windows.len()
    );
    let values: Vec<f64> = windows.iter().copied().map(f64::from).collect();
    super::median(&values) as f32
}

/// The mouth-to-ear delay (ms) of a file-to-file call: the sender's media clock started at
/// `sender_clock` and the receiver's at `receiver_clock` (Unix ms, [`media_clock_start`]); the
/// receiver's excerpt starting at sample `excerpt_start` of its recording lines up with the
/// looping reference (`reference_len` samples) at `lag_ms` ([`align_with_loop`]).
///
/// The sender's tick k reads the reference at `k·480 mod len` (a 10 ms frame) and the
/// receiver's tick j writes recording frame j, so the lag turns into a delay modulo the loop's
/// length (far longer than any delay). The jitter buffer is included; a real microphone would
/// add one packet (20 ms by default) of packetisation, which file audio hands over at once.
pub fn mouth_to_ear_ms(
    sender_clock: f64,
    receiver_clock: f64,
    excerpt_start: usize,
    lag_ms: f32,
    reference_len: usize,
) -> f64 {
    let rate_khz = f64::from(RATE) / 1000.0;
    let period = reference_len as f64 / rate_khz;
    (receiver_clock - sender_clock + excerpt_start as f64 / rate_khz - f64::from(lag_ms))
        .rem_euclid(period)
}
