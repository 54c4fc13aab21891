//! Microphone clean-up on the media thread: noise suppression and automatic gain control.
//!
//! Owns the capture-side processing between the device's microphone frame and the encoders
//! ([`MicCleanup`]); runs on the media thread only, never in an audio callback, and allocates
//! nothing per frame (its buffers and RNNoise's state are made once).
//!
//! ```text
//!  mic frame (48 kHz) ─► [noise suppression: RNNoise, per 480-sample (10 ms) block]
//!                     ─► [AGC: speech level ─► gain, held in pauses, peak-limited] ─► encoders
//! ```
//!
//! Noise suppression is RNNoise's recurrent network through the pure-Rust `nnnoiseless`
//! (48 kHz, samples scaled like i16 in f32); it adds 10 ms of delay and also reports a
//! voice-activity probability. The AGC moves the speech level towards [`AGC_TARGET_DBFS`]
//! (at most +20 dB, −6 dB), adapts only while someone speaks (the VAD with noise suppression
//! on, an energy gate above the tracked noise floor without), so pauses are not pumped up.

use nnnoiseless::DenoiseState;

use super::{Frame, FRAME_MS, FRAME_SAMPLES};

/// RNNoise's frame: 10 ms at 48 kHz.
const NS_FRAME: usize = DenoiseState::FRAME_SIZE;
// A frame is a whole number of RNNoise's (one at 10 ms, two at 20 ms).
const _: () = assert!(FRAME_SAMPLES % NS_FRAME == 0);

/// The AGC's target speech level, dB re full scale (RMS of a speech frame).
pub const AGC_TARGET_DBFS: f32 = -20.0;
/// Largest AGC gain (+20 dB).
const AGC_MAX_GAIN: f32 = 10.0;
/// Smallest AGC gain (−6 dB).
const AGC_MIN_GAIN: f32 = 0.5;
/// Share of the way to the wanted gain taken per speech frame: a 0.4 s time constant.
const AGC_RATE: f32 = FRAME_MS as f32 / 400.0;
/// Peaks are kept below this after gain.
const AGC_PEAK: f32 = 30_000.0;
/// RNNoise's voice probability above which a frame is speech.
const VAD_SPEECH: f32 = 0.6;
/// Without the VAD: a frame is speech when it is this much louder than the noise floor (+12 dB).
const ENERGY_GATE: f32 = 4.0;
/// Frames quieter than this (RMS, −60 dBFS) never count as speech.
const QUIET_RMS: f32 = 33.0;
/// The noise floor rises by this factor per frame when the signal is above it (1 % per
/// 20 ms: ≈ 4 dB/s).
const FLOOR_RISE: f32 = 1.0 + FRAME_MS as f32 / 2_000.0;

/// Which clean-up stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VoiceSettings {
    /// RNNoise noise suppression.
    pub noise_suppression: bool,
    /// Automatic gain control.
    pub agc: bool,
}

/// The microphone clean-up of one engine (the operator has one microphone).
pub struct MicCleanup {
    settings: VoiceSettings,
    denoise: Box<DenoiseState<'static>>,
    input: [f32; NS_FRAME],
    output: [f32; NS_FRAME],
    agc: Agc,
}

impl MicCleanup {
    /// Clean-up with `settings`; RNNoise's state is made here, once.
    pub fn new(settings: VoiceSettings) -> MicCleanup {
        MicCleanup {
            settings,
            denoise: DenoiseState::new(),
            input: [0.0; NS_FRAME],
            output: [0.0; NS_FRAME],
            agc: Agc::default(),
        }
    }

    /// The stages that run now.
    pub fn settings(&self) -> VoiceSettings {
        self.settings
    }

    /// Switches stages on or off from the next frame.
    pub fn set(&mut self, settings: VoiceSettings) {
        self.settings = settings;
    }

    /// Cleans one microphone frame in place.
    pub fn process(&mut self, frame: &mut Frame) {
        let mut voice = None;
        if self.settings.noise_suppression {
            let mut vad = 0.0f32;
            for block in frame.chunks_exact_mut(NS_FRAME) {
                for (i, &s) in self.input.iter_mut().zip(block.iter()) {
                    *i = f32::from(s);
                }
                vad = vad.max(self.denoise.process_frame(&mut self.output, &self.input));
                for (s, &o) in block.iter_mut().zip(self.output.iter()) {
                    *s = o.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
                }
            }
            voice = Some(vad);
        }
        if self.settings.agc {
            self.agc.process(frame, voice);
        }
    }
}

/// Automatic gain control state.
#[derive(Debug, Clone)]
struct Agc {
    /// The gain applied at the end of the last frame.
    gain: f32,
    /// Tracked noise floor (RMS), for the energy gate.
    floor: f32,
}

impl Default for Agc {
    fn default() -> Self {
        Agc {
            gain: 1.0,
            floor: QUIET_RMS,
        }
    }
}

impl Agc {
    /// Applies the gain to `frame`, adapting it when the frame is speech (`vad`: RNNoise's
    /// voice probability when it ran).
    fn process(&mut self, frame: &mut Frame, vad: Option<f32>) {
        let energy: f32 = frame.iter().map(|&s| f32::from(s) * f32::from(s)).sum();
        let rms = (energy / FRAME_SAMPLES as f32).sqrt();
        let speech = rms > QUIET_RMS
            && match vad {
                Some(p) => p > VAD_SPEECH,
                None => rms > ENERGY_GATE * self.floor,
            };
        // The floor follows quiet frames down at once and creeps up otherwise.
        self.floor = if rms < self.floor {
            rms.max(1.0)
        } else {
            self.floor * FLOOR_RISE
        };
        let start = self.gain;
        if speech {
            let target = 32_768.0 * 10f32.powf(AGC_TARGET_DBFS / 20.0);
            let wanted = (target / rms).clamp(AGC_MIN_GAIN, AGC_MAX_GAIN);
            self.gain += (wanted - self.gain) * AGC_RATE;
        }
        let peak = frame
            .iter()
            .map(|&s| f32::from(s).abs())
            .fold(0.0f32, f32::max);
        if peak * self.gain > AGC_PEAK {
            self.gain = AGC_PEAK / peak;
        }
        // Glide from the old gain to the new across the frame (no steps), never above the
        // peak limit.
        let end = self.gain;
        let limit = if peak > 0.0 { AGC_PEAK / peak } else { end };
        let step = (end - start) / FRAME_SAMPLES as f32;
        for (i, s) in frame.iter_mut().enumerate() {
            let g = (start + step * i as f32).min(limit);
            *s = (f32::from(*s) * g)
                .round()
                .clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::TICKS_PER_SECOND;
    use std::f32::consts::PI;

    fn rms(x: &[i16]) -> f32 {
        (x.iter().map(|&s| f32::from(s).powi(2)).sum::<f32>() / x.len().max(1) as f32).sqrt()
    }

    /// Deterministic white noise of the given RMS.
    fn noise(state: &mut u64, level: f32, frame: &mut Frame) {
        for s in frame.iter_mut() {
            *state ^= *state << 13;
            *state ^= *state >> 7;
            *state ^= *state << 17;
            let u = (*state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            *s = (u * level * 3.46) as i16; // uniform: RMS = width / √12
        }
    }

    #[test]
    fn off_leaves_the_frame_alone() {
        let mut cleanup = MicCleanup::new(VoiceSettings::default());
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut state = 7;
        noise(&mut state, 3_000.0, &mut frame);
        let before = frame;
        cleanup.process(&mut frame);
        assert_eq!(frame, before);
    }

    #[test]
    fn noise_suppression_removes_steady_noise() {
        let mut cleanup = MicCleanup::new(VoiceSettings {
            noise_suppression: true,
            agc: false,
        });
        let mut state = 0x2545_F491_4F6C_DD1D;
        let mut frame = [0i16; FRAME_SAMPLES];
        let (mut before, mut after) = (0.0, 0.0);
        let mut low = 0.0f32;
        // Ten seconds; the last five measured.
        for i in 0..10 * TICKS_PER_SECOND {
            noise(&mut state, 1_000.0, &mut frame);
            // Low-passed (one pole at ≈ 1 kHz): a fan- or room-like hiss rather than white.
            for s in frame.iter_mut() {
                low += 0.12 * (f32::from(*s) - low);
                *s = (3.0 * low) as i16;
            }
            let level = rms(&frame);
            cleanup.process(&mut frame);
            if i >= 5 * TICKS_PER_SECOND {
                before += level;
                after += rms(&frame);
            }
        }
        let db = 20.0 * (after / before).log10();
        println!("steady hiss through noise suppression: {db:.1} dB");
        assert!(db < -15.0, "steady noise only {db:.1} dB down");
    }

    #[test]
    fn agc_brings_quiet_speech_up_and_holds_in_pauses() {
        let mut cleanup = MicCleanup::new(VoiceSettings {
            noise_suppression: false,
            agc: true,
        });
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut state = 3;
        let mut phase = 0.0f32;
        // A quiet "voice" (−40 dBFS) over a very quiet floor (−70 dBFS), 1 s on, 0.5 s off.
        let mut last_speech = 0.0;
        let mut pause_levels = Vec::new();
        let half_second = TICKS_PER_SECOND / 2;
        for i in 0..6 * TICKS_PER_SECOND {
            let talking = (i / half_second) % 3 != 2;
            noise(&mut state, 10.0, &mut frame);
            if talking {
                for s in frame.iter_mut() {
                    phase += 2.0 * PI * 300.0 / 48_000.0;
                    *s = s.saturating_add((460.0 * phase.sin()) as i16);
                }
            }
            cleanup.process(&mut frame);
            if talking {
                last_speech = rms(&frame);
            } else if i > 4 * TICKS_PER_SECOND {
                pause_levels.push(rms(&frame));
            }
        }
        let speech_db = 20.0 * (last_speech / 32_768.0).log10();
        println!(
            "AGC: speech at {speech_db:.1} dBFS (from −40), gain {:.2}",
            cleanup.agc.gain
        );
        assert!(
            (-24.0..-17.0).contains(&speech_db),
            "speech at {speech_db:.1} dBFS"
        );
        // The pauses carry the floor at the speech gain (held, not pumped towards the target).
        let pause = pause_levels.iter().copied().fold(0.0f32, f32::max);
        assert!(pause < 10.0 * 10.0 * 1.5, "pause RMS {pause}");
    }

    #[test]
    fn agc_limits_peaks() {
        let mut cleanup = MicCleanup::new(VoiceSettings {
            noise_suppression: false,
            agc: true,
        });
        cleanup.agc.gain = AGC_MAX_GAIN;
        let mut frame = [0i16; FRAME_SAMPLES];
        for (n, s) in frame.iter_mut().enumerate() {
            *s = (20_000.0 * (2.0 * PI * 440.0 * n as f32 / 48_000.0).sin()) as i16;
        }
        cleanup.process(&mut frame);
        let peak = frame.iter().map(|s| s.unsigned_abs()).max().unwrap_or(0);
        assert!(f32::from(peak) <= AGC_PEAK + 1.0, "peak {peak}");
    }

    #[test]
    fn processing_allocates_nothing_per_frame() {
        let mut cleanup = MicCleanup::new(VoiceSettings {
            noise_suppression: true,
            agc: true,
        });
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut state = 11;
        // The first frames set up the FFT's per-thread plans.
        for _ in 0..3 {
            noise(&mut state, 2_000.0, &mut frame);
            cleanup.process(&mut frame);
        }
        let before = assert_no_alloc::violation_count();
        assert_no_alloc::assert_no_alloc(|| {
            for _ in 0..20 {
                noise(&mut state, 2_000.0, &mut frame);
                cleanup.process(&mut frame);
            }
        });
        assert_eq!(assert_no_alloc::violation_count() - before, 0);
    }
}
