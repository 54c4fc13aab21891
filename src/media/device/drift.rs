//! How fast a headset's ring should be filled: the correction that holds its level when the
//! headset's sound card keeps its own time.
//!
//! The media thread's ticks follow the microphone (`clock.rs`); a headset on another clock —
//! another card, or another stream of a sound server (the lab's PulseAudio plays 150–250 ppm
//! faster than it records) — drains or fills its ring by that much. Left alone, a draining
//! ring runs dry about once a minute; a filling one has its excess cut out by the cushion
//! (`cushion.rs`). This controller watches the headset's level when each frame is written
//! (how long until the ring's last sample is played, `paths.rs`), the median of a second, and
//! steers the rate the frames are written at (a slip of one sample, crossfaded, now and then:
//! rubato's `Slip`) so that the level stays where the cushion last set it: a PI loop whose
//! integral learns the card's drift (settling in about a minute, within about 1 ms per 250
//! ppm of drift). The ring's end re-anchors it whenever it moves the level itself (silence
//! queued, a frame dropped, the cushion grown or shrunk): what the cushion decides is the
//! level, the loop only holds it. Pure arithmetic: no clock, no allocation.
//!
//! ```text
//!   each 1 s window without a move of the path's own:  m = median level
//!     no anchor yet ──► anchor = m
//!     else e = anchor − m (ms; positive: draining) ──► drift += KI·e, correction = drift + KP·e
//!   a move of the path's own ──► the window is dropped and the next one anchors; drift kept
//! ```

/// Ticks (20 ms) in a window: 1 s.
const WINDOW: usize = 50;
/// The proportional gain: ppm of correction per ms of level away from the anchor.
const KP: f64 = 200.0;
/// The integral gain: ppm learned per ms away, each window.
const KI: f64 = 20.0;
/// Most correction, either way (ppm): well beyond a crystal's drift, far below hearing.
const MAX_PPM: f64 = 2_000.0;

/// The rate correction of one playback ring.
#[derive(Debug)]
pub(super) struct Drift {
    rate: u32,
    /// The window's levels so far (samples).
    levels: [f64; WINDOW],
    ticks: usize,
    /// The window median the level is held at (samples); `None` until a window ends after a
    /// move.
    anchor: Option<f64>,
    /// What the loop has learned of the card's pace (ppm), and the correction now (ppm).
    drift: f64,
    correction: f64,
}

impl Drift {
    /// A controller for a ring at `rate` Hz, with nothing learned.
    pub(super) fn new(rate: u32) -> Drift {
        Drift {
            rate: rate.max(1),
            levels: [0.0; WINDOW],
            ticks: 0,
            anchor: None,
            drift: 0.0,
            correction: 0.0,
        }
    }

    /// The headset's level when a frame came (samples, before it was written). At the end of a
    /// window, the new correction (ppm: samples to write beyond the nominal, per million).
    pub(super) fn tick(&mut self, level: f64) -> Option<f64> {
        self.levels[self.ticks] = level;
        self.ticks += 1;
        if self.ticks < WINDOW {
            return None;
        }
        self.ticks = 0;
        // The median: a sound server's delay now and then far off its usual does not move it.
        let (_, &mut median, _) = self
            .levels
            .select_nth_unstable_by(WINDOW / 2, f64::total_cmp);
        let Some(anchor) = self.anchor else {
            self.anchor = Some(median);
            return None;
        };
        let away_ms = (anchor - median) * 1000.0 / f64::from(self.rate);
        self.drift = (self.drift + KI * away_ms).clamp(-MAX_PPM, MAX_PPM);
        self.correction = (self.drift + KP * away_ms).clamp(-MAX_PPM, MAX_PPM);
        Some(self.correction)
    }

    /// The ring's end moved the level itself (or the stream paused): hold it where it is next
    /// found; what was learned of the card's pace stays.
    pub(super) fn reanchor(&mut self) {
        self.ticks = 0;
        self.anchor = None;
    }

    /// The correction now (ppm).
    pub(super) fn correction(&self) -> f64 {
        self.correction
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ring drained by a card `ppm` faster than the ticks fill it, starting at 10 ms, the
    /// frames written at the rate the controller asks for: the first window's mean (ms), the
    /// mean of each window after it (ms), and the last correction.
    fn follow(ppm: f64, seconds: u32) -> (f64, Vec<f64>, f64) {
        let mut drift = Drift::new(48_000);
        let mut level = 480.0;
        let mut correction = 0.0;
        let mut means = Vec::new();
        let mut sum = 0.0;
        for tick in 1..=seconds * 50 {
            sum += level;
            if let Some(c) = drift.tick(level) {
                correction = c;
            }
            if tick % 50 == 0 {
                means.push(sum / 50.0 / 48.0);
                sum = 0.0;
            }
            level += 960.0 * (correction - ppm) * 1e-6;
        }
        let anchor = means.remove(0);
        (anchor, means, correction)
    }

    #[test]
    fn learns_the_cards_pace_and_holds_the_fill() {
        for ppm in [250.0, -250.0, 0.0, 1_000.0] {
            let (anchor, means, correction) = follow(ppm, 300);
            let worst = means.iter().fold(0f64, |w, &m| w.max((m - anchor).abs()));
            // At most 1 ms for each 250 ppm the card parts from the ticks: the fill a
            // headset's margin of several ms covers while the loop learns.
            let bound = f64::abs(ppm) * 0.004;
            assert!(worst <= bound, "{ppm} ppm: {worst:.2} ms from the anchor");
            let last = means.last().copied().unwrap_or_default();
            // The anchor is the first window's median, half a tick's drain off its mean.
            assert!((last - anchor).abs() < 0.02, "{ppm} ppm: ends {last:.3} ms");
            assert!((correction - ppm).abs() < 1.0, "{ppm} ppm: {correction:.1}");
        }
    }

    #[test]
    fn a_move_of_the_paths_own_re_anchors_and_keeps_the_pace() {
        let mut drift = Drift::new(48_000);
        // Anchored at 480 samples, then a second 4.8 samples (0.1 ms) lower: draining.
        for _ in 0..50 {
            drift.tick(480.0);
        }
        let first = (0..50).filter_map(|_| drift.tick(475.0)).last();
        assert!(first.is_some_and(|c| c > 0.0), "{first:?}");
        let learned = drift.drift;
        // The cushion grew by 5 ms: that new fill is the level, not a filling card.
        drift.reanchor();
        assert_eq!(
            (0..50).filter_map(|_| drift.tick(720.0)).count(),
            0,
            "anchors"
        );
        let next = (0..50).filter_map(|_| drift.tick(720.0)).last();
        assert_eq!(next, Some(learned), "held: the pace learned, no error");
        assert!(drift.correction() > 0.0);
        // Nothing measured in a 16 kHz ring's windows is in ms of 48 kHz.
        let mut slow = Drift::new(16_000);
        for _ in 0..50 {
            slow.tick(160.0);
        }
        let c = (0..50).filter_map(|_| slow.tick(144.0)).last();
        assert_eq!(c, Some(KI + KP), "16 samples at 16 kHz: 1 ms");
    }
}
