//! Audio fixtures made with sox at test time (no binary files in the repository): tones for the
//! peers to send, and a rough look at recordings (did the far end hear a tone?).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::process::run_bounded;
use super::require_tool;

/// Writes `dir/name` as a WAV of a sine tone: 8 kHz, mono, signed 16-bit (what baresip's
/// `aufile` and linphonec's `play` want), `seconds` long, at `hz`. Returns its path.
pub fn tone_wav(dir: &Path, name: &str, hz: u32, seconds: u32) -> PathBuf {
    let sox = require_tool("sox", "sox");
    let path = dir.join(name);
    let done = run_bounded(
        Command::new(sox)
            .args([
                "-n",
                "-r",
                "8000",
                "-c",
                "1",
                "-b",
                "16",
                "-e",
                "signed-integer",
            ])
            .arg(&path)
            .args(["synth", &seconds.to_string(), "sine", &hz.to_string()])
            .args(["vol", "0.5"]),
        Duration::from_secs(20),
    );
    assert!(
        done.success(),
        "sox could not make {}: {}",
        path.display(),
        done.stderr
    );
    path
}

/// Converts a WAV into raw u-law (`NAME.ulaw` beside it), the format of sipp's
/// `rtp_stream="FILE,-1,0"`. Returns its path.
pub fn wav_to_ulaw(wav: &Path) -> PathBuf {
    let sox = require_tool("sox", "sox");
    let out = wav.with_extension("ulaw");
    let done = run_bounded(
        Command::new(sox)
            .arg(wav)
            .args(["-r", "8000", "-c", "1", "-t", "raw", "-e", "u-law"])
            .arg(&out),
        Duration::from_secs(20),
    );
    assert!(
        done.success(),
        "sox could not convert {}: {}",
        wav.display(),
        done.stderr
    );
    out
}

/// `sox FILE -n stat` as a map, e.g. `"RMS amplitude" -> 0.35`, `"Rough frequency" -> 1000`,
/// `"Length (seconds)" -> 2.0`. Panics if sox cannot read the file.
pub fn wav_stat(path: &Path) -> HashMap<String, f64> {
    let sox = require_tool("sox", "sox");
    let done = run_bounded(
        Command::new(sox).arg(path).args(["-n", "stat"]),
        Duration::from_secs(20),
    );
    assert!(
        done.success(),
        "sox cannot read {}: {}",
        path.display(),
        done.stderr
    );
    // `stat` prints to stderr, lines like "RMS     amplitude:     0.353553".
    done.stderr
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once(':')?;
            let key = key.split_whitespace().collect::<Vec<_>>().join(" ");
            Some((key, value.trim().parse::<f64>().ok()?))
        })
        .collect()
}

/// The frequency of the loudest second of a recording (from its zero crossings), and that
/// second's RMS.
pub fn loudest_second_hz(recording: &Path) -> (f64, f32) {
    let (samples, rate) = super::signal::read_wav(recording);
    let second = rate as usize;
    let loudest = samples
        .chunks(second)
        .filter(|c| c.len() == second)
        .map(|c| (rms(c), c))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let Some((level, chunk)) = loudest else {
        return (0.0, 0.0);
    };
    let crossings = chunk
        .windows(2)
        .filter(|w| (w[0] < 0.0) != (w[1] < 0.0))
        .count();
    (crossings as f64 / 2.0, level)
}

fn rms(x: &[f32]) -> f32 {
    (x.iter().map(|v| v * v).sum::<f32>() / x.len().max(1) as f32).sqrt()
}

/// Writes `dir/name` as a 48 kHz mono 16-bit WAV of a sine at `hz`, 4 s long (switchboard's
/// file backend loops it). Returns its path.
pub fn sine_wav48(dir: &Path, name: &str, hz: f64) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("creating a WAV");
    for i in 0..4 * 48_000 {
        let s = 0.3 * (std::f64::consts::TAU * hz * f64::from(i) / 48_000.0).sin();
        w.write_sample((s * f64::from(i16::MAX)) as i16)
            .expect("writing a WAV");
    }
    w.finalize().expect("finishing a WAV");
    path
}

/// Amplitude of the `hz` tone in `x` (sampled at `rate`), by correlation with a sine/cosine
/// pair.
pub fn tone_level(x: &[f32], rate: u32, hz: f64) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for (i, v) in x.iter().enumerate() {
        let ph = std::f64::consts::TAU * hz * i as f64 / f64::from(rate);
        s += f64::from(*v) * ph.sin();
        c += f64::from(*v) * ph.cos();
    }
    2.0 * (s * s + c * c).sqrt() / x.len().max(1) as f64
}

/// The `q` quantile (0 = quietest, 1 = loudest) of [`tone_level`] over the 100 ms blocks of
/// `x`: how loud the `hz` tone is in most of the sound, robust where one coherent sum over
/// seconds is not (a phase jump from a concealed or dropped frame cancels part of a long sum
/// although the tone never stopped). 0 for less than one block.
pub fn tone_level_quantile(x: &[f32], rate: u32, hz: f64, q: f64) -> f64 {
    let block = (rate as usize / 10).max(1);
    let mut levels: Vec<f64> = x
        .chunks_exact(block)
        .map(|b| tone_level(b, rate, hz))
        .collect();
    levels.sort_by(f64::total_cmp);
    let last = levels.len().saturating_sub(1);
    let at = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
    levels.get(at).copied().unwrap_or(0.0)
}

/// How many samples a switchboard's `file_out` (48 kHz mono 16-bit WAV, flushed about once a
/// second) holds on disk now: a mark of "now" in the recording without reading a clock, at
/// most a second behind. Sample `mark + 48_000 · 1.5` and later were heard after the mark
/// was taken.
pub fn recorded_samples(path: &Path) -> usize {
    let len = std::fs::metadata(path).map_or(0, |m| m.len());
    usize::try_from(len.saturating_sub(44) / 2).unwrap_or(usize::MAX)
}
