//! The sound check at the start of a shift, on the media thread: the microphone's level, a
//! test tone in the headset, and an echo of the microphone one second later — all local, no
//! call needed.
//!
//! ```text
//!   mic frame ─┬─► level meter ── every 100 ms ──► Report::Level (dBFS)
//!              └─► 1 s delay line ──────────────┐
//!   test tone (1 kHz, 2 s) ─────────────────────┴─► mixed into the headset frame
//! ```
//!
//! [`SoundCheck::frame`] runs once per tick and never allocates: the delay line is
//! allocated when the echo is switched on (an order, not a frame).

use std::f64::consts::TAU;

use super::{Frame, FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, TICKS_PER_SECOND};

/// How many frames one level reading covers: 100 ms.
const LEVEL_FRAMES: u32 = 100 / FRAME_MS;
/// How long the echo waits: one second of frames.
const ECHO_FRAMES: usize = TICKS_PER_SECOND as usize;
/// The test tone's pitch.
const TONE_HZ: f64 = 1000.0;
/// The test tone's amplitude (−12 dBFS).
const TONE_AMPLITUDE: f64 = 8192.0;
/// How long the test tone plays: two seconds of frames.
const TONE_FRAMES: u32 = 2 * TICKS_PER_SECOND;
/// How long the auto-answer beep plays: 200 ms of frames.
const BEEP_FRAMES: u32 = 200 / FRAME_MS;
/// The level reported for digital silence.
pub const SILENCE_DBFS: f32 = -96.0;

/// An order for the sound check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SoundOrder {
    /// Report the microphone's level every 100 ms (`true`), or stop.
    Meter(bool),
    /// Play the test tone in the headset once (two seconds).
    Tone,
    /// A short beep (the test tone for 200 ms): a call is being answered by itself.
    Beep,
    /// Play the microphone back in the headset one second later (`true`), or stop.
    Echo(bool),
}

/// The sound check's state; idle costs one branch per frame.
#[derive(Debug, Default)]
pub struct SoundCheck {
    meter: bool,
    /// Sum of squares and frames of the reading under way.
    energy: f64,
    frames: u32,
    /// Frames of test tone left, and the next sample's index.
    tone_left: u32,
    tone_at: u64,
    /// The delay line (one second) and where the next frame goes.
    echo: Option<Box<[i16]>>,
    echo_at: usize,
}

impl SoundCheck {
    /// Applies an order (may allocate: the echo's delay line).
    pub fn order(&mut self, order: SoundOrder) {
        match order {
            SoundOrder::Meter(on) => {
                self.meter = on;
                self.energy = 0.0;
                self.frames = 0;
            }
            SoundOrder::Tone => {
                self.tone_left = TONE_FRAMES;
                self.tone_at = 0;
            }
            SoundOrder::Beep => {
                self.tone_left = BEEP_FRAMES;
                self.tone_at = 0;
            }
            SoundOrder::Echo(true) => {
                if self.echo.is_none() {
                    self.echo = Some(vec![0; FRAME_SAMPLES * ECHO_FRAMES].into_boxed_slice());
                    self.echo_at = 0;
                }
            }
            SoundOrder::Echo(false) => self.echo = None,
        }
    }

    /// Nothing is under way: no meter, tone or echo.
    pub fn is_idle(&self) -> bool {
        !self.meter && self.tone_left == 0 && self.echo.is_none()
    }

    /// One frame: measures `mic`, mixes the tone and the echo into `headset`; returns a
    /// level reading (dBFS) when one is complete. Never allocates.
    pub fn frame(&mut self, mic: &Frame, headset: &mut Frame) -> Option<f32> {
        if let Some(line) = &mut self.echo {
            let start = self.echo_at * FRAME_SAMPLES;
            let slot = &mut line[start..start + FRAME_SAMPLES];
            for (out, (old, new)) in headset.iter_mut().zip(slot.iter_mut().zip(mic)) {
                *out = out.saturating_add(*old);
                *old = *new;
            }
            self.echo_at = (self.echo_at + 1) % ECHO_FRAMES;
        }
        if self.tone_left > 0 {
            self.tone_left -= 1;
            let rate = f64::from(SAMPLE_RATE);
            for out in headset.iter_mut() {
                #[allow(clippy::cast_precision_loss)] // the index stays far below 2^52
                let t = self.tone_at as f64 / rate;
                #[allow(clippy::cast_possible_truncation)] // within ±TONE_AMPLITUDE
                let sample = (TONE_AMPLITUDE * (TAU * TONE_HZ * t).sin()) as i16;
                *out = out.saturating_add(sample);
                self.tone_at += 1;
            }
        }
        if !self.meter {
            return None;
        }
        self.energy += mic
            .iter()
            .map(|&s| f64::from(s) * f64::from(s))
            .sum::<f64>();
        self.frames += 1;
        if self.frames < LEVEL_FRAMES {
            return None;
        }
        #[allow(clippy::cast_precision_loss)] // a few thousand samples
        let mean = self.energy / (f64::from(self.frames) * FRAME_SAMPLES as f64);
        self.energy = 0.0;
        self.frames = 0;
        Some(dbfs(mean.sqrt()))
    }
}

/// An RMS amplitude in dB relative to full scale, floored at [`SILENCE_DBFS`].
fn dbfs(rms: f64) -> f32 {
    if rms < 1.0 {
        return SILENCE_DBFS;
    }
    #[allow(clippy::cast_possible_truncation)] // between −96 and +3
    let db = (20.0 * (rms / 32768.0).log10()) as f32;
    db.max(SILENCE_DBFS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loud() -> Frame {
        let mut f = [0; FRAME_SAMPLES];
        for (i, s) in f.iter_mut().enumerate() {
            *s = if i % 2 == 0 { 16384 } else { -16384 };
        }
        f
    }

    #[test]
    fn the_meter_reads_every_100_ms_and_tells_silence_from_speech() {
        let mut check = SoundCheck::default();
        let mut headset = [0; FRAME_SAMPLES];
        assert_eq!(check.frame(&loud(), &mut headset), None, "off by default");
        check.order(SoundOrder::Meter(true));
        let quiet = [0; FRAME_SAMPLES];
        // 200 ms of frames: two readings.
        let readings: Vec<_> = (0..2 * LEVEL_FRAMES)
            .filter_map(|_| check.frame(&quiet, &mut headset))
            .collect();
        assert_eq!(readings, [SILENCE_DBFS, SILENCE_DBFS]);
        let loud_reading = (0..LEVEL_FRAMES).find_map(|_| check.frame(&loud(), &mut headset));
        let db = loud_reading.expect("a reading after 100 ms");
        assert!((db - -6.0).abs() < 0.1, "half scale is −6 dBFS: {db}");
        assert_eq!(headset, [0; FRAME_SAMPLES], "the meter plays nothing");
    }

    #[test]
    fn the_echo_comes_back_one_second_later_and_stops() {
        let mut check = SoundCheck::default();
        check.order(SoundOrder::Echo(true));
        let quiet = [0; FRAME_SAMPLES];
        let mut heard = Vec::new();
        let frames = ECHO_FRAMES + ECHO_FRAMES / 5;
        for i in 0..frames {
            let mut headset = [0; FRAME_SAMPLES];
            let mic = if i == 3 { loud() } else { quiet };
            check.frame(&mic, &mut headset);
            heard.push(headset.iter().any(|&s| s != 0));
        }
        let back: Vec<usize> = (0..frames).filter(|&i| heard[i]).collect();
        assert_eq!(back, [3 + ECHO_FRAMES], "frame 3 is heard one second later");
        check.order(SoundOrder::Echo(false));
        let mut headset = [0; FRAME_SAMPLES];
        check.frame(&loud(), &mut headset);
        assert_eq!(headset, [0; FRAME_SAMPLES]);
    }

    #[test]
    fn the_auto_answer_beep_plays_200_ms() {
        let mut check = SoundCheck::default();
        check.order(SoundOrder::Beep);
        let quiet = [0; FRAME_SAMPLES];
        // 400 ms of frames: the beep is heard in the first half.
        let beep = (200 / FRAME_MS) as usize;
        let heard: Vec<bool> = (0..2 * beep)
            .map(|_| {
                let mut headset = [0; FRAME_SAMPLES];
                check.frame(&quiet, &mut headset);
                headset.iter().any(|&s| s != 0)
            })
            .collect();
        assert_eq!(heard.iter().filter(|h| **h).count(), beep);
        assert!(heard[..beep].iter().all(|h| *h), "from the first frame on");
    }

    #[test]
    fn the_tone_plays_two_seconds_then_stops_without_allocating() {
        let mut check = SoundCheck::default();
        check.order(SoundOrder::Tone);
        check.order(SoundOrder::Echo(true));
        check.order(SoundOrder::Meter(true));
        let quiet = [0; FRAME_SAMPLES];
        let mut loud_frames = 0;
        let before = assert_no_alloc::violation_count();
        assert_no_alloc::assert_no_alloc(|| {
            // Three seconds of frames.
            for _ in 0..3 * TICKS_PER_SECOND {
                let mut headset = [0; FRAME_SAMPLES];
                check.frame(&quiet, &mut headset);
                if headset.iter().any(|&s| s.unsigned_abs() > 4000) {
                    loud_frames += 1;
                }
            }
        });
        assert_eq!(assert_no_alloc::violation_count() - before, 0);
        assert_eq!(loud_frames, 2 * TICKS_PER_SECOND, "two seconds");
    }
}
