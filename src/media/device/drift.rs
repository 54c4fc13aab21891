//! How fast a headset's ring should be filled: the correction that holds its level when the
//! headset's sound card keeps its own time.
//!
//! The media thread's ticks follow the microphone (`clock.rs`); a headset on another clock —
//! another card, or another stream of a sound server (the lab's PulseAudio plays 150–250 ppm
//! faster than it records) — drains or fills its ring by that much. Left alone, a draining
//! ring runs dry about once a minute; a filling one has its excess cut out by the cushion
//! (`cushion.rs`). This controller watches the headset's level when each frame is written
//! (how long until the ring's last sample is played, `paths.rs`) plus what the microphone has
//! recorded that no tick has read yet: a tick the capture cushion's give-back moves earlier,
//! or one that waits for the microphone, moves the one by as much as the other the other way,
//! so their sum moves only with the two cards' paces (the level alone made a sawtooth of
//! such moves, about 4 ms every 15 s in the lab, that the loop chased and mislearned at the
//! start). Of that it takes the median of a second, and steers the rate the frames are
//! written at (a slip of one sample, crossfaded, now and then: rubato's `Slip`) so that the
//! level stays where the cushion last set it: a PI loop whose integral learns the card's
//! drift (settling in about half a minute, within about 1 ms per 250 ppm of drift). The
//! ring's end re-anchors it whenever it moves the level itself (silence queued, a frame
//! dropped, the cushion grown or shrunk): what the cushion decides is the level, the loop
//! only holds it. Pure arithmetic: no clock, no allocation.
//!
//! Once it has had time to learn the pace, its bandwidth narrows as far as the level's
//! wander asks, as a delay-locked loop's does (PipeWire's DLL goes from a wide to a narrow
//! bandwidth the same way): a sound server's level wanders by milliseconds from one second
//! to the next, and a loop wide enough to learn a drift in seconds turns that wander into
//! corrections of hundreds of ppm either way, each of them moving the level in turn. Narrow,
//! it follows the card's pace and lets the cushion cover the wander; a card's own steady
//! level keeps it wide, holding the level tightly. A level away the same way for several
//! seconds (the pace changed: another device, a server restarted) widens it again.
//!
//! ```text
//!   each 1 s window without a move of the path's own:  m = median level
//!     no anchor yet ──► anchor = m
//!     else e = anchor − m (ms; positive: draining)
//!          drift += b²·KI·e, correction = drift + b·KP·e      (b: the bandwidth, 1 … 1/8)
//!          w = the median change of m between windows lately; after 30 windows wide, b steps
//!          each window towards 30 ppm / (KP·w) (the P term's answer to the wander), 1/8 … 1;
//!          |e| > 4 ms the same way 4 windows running ──► b = 1 for 30 windows again
//!   a move of the path's own ──► the window is dropped and the next one anchors; drift and b kept
//! ```

/// Ticks in a window: 1 s.
const WINDOW: usize = crate::media::TICKS_PER_SECOND as usize;
/// The proportional gain: ppm of correction per ms of level away from the anchor.
const KP: f64 = 200.0;
/// The integral gain: ppm learned per ms away, each window.
const KI: f64 = 20.0;
/// Most correction, either way (ppm): well beyond a crystal's drift, far below hearing.
const MAX_PPM: f64 = 2_000.0;
/// The narrowest bandwidth, as a share of the widest.
const NARROWEST: f64 = 0.125;
/// Windows the loop stays wide from the start, or from a change of pace: long enough to
/// learn a drift (its time constant at full bandwidth is about 7 windows).
const WIDE_WINDOWS: u32 = 30;
/// After that, each window moves the bandwidth by this factor towards its aim (from 1 to
/// 1/8 in 20 windows).
const NARROWING: f64 = 0.9;
/// The correction the level's wander may cause through the P term (ppm): the bandwidth's aim.
const WANDER_PPM: f64 = 30.0;
/// Window-to-window changes of the level the wander is the median of: a step of the level
/// (the audio system moved its own phase) is one change and does not count, a level that
/// wanders changes every second.
const CHANGES: usize = 15;
/// A median this far from the anchor (ms), the same way for [`AWAY_WINDOWS`] windows running,
/// is the pace changing, not the level wandering: the bandwidth widens again.
const AWAY_MS: f64 = 4.0;
const AWAY_WINDOWS: i32 = 4;

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
    /// The loop's bandwidth as a share of the widest (gains `b·KP`, `b²·KI`: the same damping).
    bandwidth: f64,
    /// Windows left at full bandwidth.
    wide_for: u32,
    /// The last windows' changes of the median (ms), where the next goes, and the last
    /// window's distance from the anchor (`None` after a move: the change is the path's own).
    changes: [f64; CHANGES],
    changed: usize,
    last_away: Option<f64>,
    /// Windows running with the median [`AWAY_MS`] above (positive) or below the anchor.
    away: i32,
    /// The last window's median level (samples).
    median: f64,
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
            bandwidth: 1.0,
            wide_for: WIDE_WINDOWS,
            changes: [0.0; CHANGES],
            changed: 0,
            last_away: None,
            away: 0,
            median: 0.0,
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
        self.median = median;
        let Some(anchor) = self.anchor else {
            self.anchor = Some(median);
            return None;
        };
        let away_ms = (anchor - median) * 1000.0 / f64::from(self.rate);
        let b = self.bandwidth;
        self.drift = (self.drift + b * b * KI * away_ms).clamp(-MAX_PPM, MAX_PPM);
        self.correction = (self.drift + b * KP * away_ms).clamp(-MAX_PPM, MAX_PPM);
        self.schedule(away_ms);
        Some(self.correction)
    }

    /// Once the loop has had time to learn the pace, moves the bandwidth towards what the
    /// level's wander asks; widens it at once when the level has stayed away the same way
    /// for several windows.
    fn schedule(&mut self, away_ms: f64) {
        if let Some(last) = self.last_away.replace(away_ms) {
            self.changes[self.changed % CHANGES] = (away_ms - last).abs();
            self.changed += 1;
        }
        self.away = match away_ms {
            e if e > AWAY_MS => self.away.max(0) + 1,
            e if e < -AWAY_MS => self.away.min(0) - 1,
            _ => 0,
        };
        if self.away.abs() >= AWAY_WINDOWS {
            self.bandwidth = 1.0;
            self.wide_for = WIDE_WINDOWS;
            self.away = 0;
        } else if self.wide_for > 0 {
            self.wide_for -= 1;
        } else {
            let aim = (WANDER_PPM / (KP * self.wander_ms())).clamp(NARROWEST, 1.0);
            self.bandwidth = if self.bandwidth > aim {
                (self.bandwidth * NARROWING).max(aim)
            } else {
                (self.bandwidth / NARROWING).min(aim)
            };
        }
    }

    /// How much the level wanders from one window to the next (ms): the median of the last
    /// changes.
    fn wander_ms(&self) -> f64 {
        let n = self.changed.min(CHANGES);
        if n == 0 {
            return 0.0;
        }
        let mut changes = self.changes;
        let (_, &mut median, _) = changes[..n].select_nth_unstable_by(n / 2, f64::total_cmp);
        median
    }

    /// The ring's end moved the level itself (or the stream paused): hold it where it is next
    /// found; what was learned of the card's pace stays.
    pub(super) fn reanchor(&mut self) {
        self.ticks = 0;
        self.anchor = None;
        self.last_away = None;
    }

    /// The correction now (ppm).
    pub(super) fn correction(&self) -> f64 {
        self.correction
    }
}

/// The loop's state as `key=value` words, for the log: the anchor and the last window's
/// median level (ms), what it learned of the pace and the correction (ppm), its bandwidth.
impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |samples: f64| samples * 1000.0 / f64::from(self.rate);
        match self.anchor {
            Some(anchor) => write!(f, "anchor_ms={:.2} ", ms(anchor))?,
            None => write!(f, "anchor_ms=none ")?,
        }
        write!(
            f,
            "median_ms={:.2} drift_ppm={:.1} correction_ppm={:.1} bandwidth={:.3}",
            ms(self.median),
            self.drift,
            self.correction,
            self.bandwidth
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::device::dice::Dice;
    use crate::media::{FRAME_SAMPLES, TICKS_PER_SECOND};

    /// Samples a frame drains from the ring at 48 kHz.
    const DRAIN: f64 = FRAME_SAMPLES as f64;
    /// Ticks in a second, as a float for means.
    const TICKS: f64 = TICKS_PER_SECOND as f64;

    /// A ring drained by a card `ppm` faster than the ticks fill it, starting at 10 ms, the
    /// frames written at the rate the controller asks for: the first window's mean (ms), the
    /// mean of each window after it (ms), and the last correction.
    fn follow(ppm: f64, seconds: u32) -> (f64, Vec<f64>, f64) {
        let mut drift = Drift::new(48_000);
        let mut level = 480.0;
        let mut correction = 0.0;
        let mut means = Vec::new();
        let mut sum = 0.0;
        for tick in 1..=seconds * TICKS_PER_SECOND {
            sum += level;
            if let Some(c) = drift.tick(level) {
                correction = c;
            }
            if tick % TICKS_PER_SECOND == 0 {
                means.push(sum / TICKS / 48.0);
                sum = 0.0;
            }
            level += DRAIN * (correction - ppm) * 1e-6;
        }
        let anchor = means.remove(0);
        (anchor, means, correction)
    }

    /// A card's pace that changes to `then` ppm after `change` s, seen through a level that
    /// wanders by up to `wander_ms` either way from one second to the next (a sound server's
    /// delay, `seed` picking how); the ring starts at 10 ms. Each window's correction (ppm) and
    /// the level's mean (ms), and the bandwidth at the end.
    fn follow_wandering(
        pace: (f64, f64),
        change: u32,
        seconds: u32,
        wander_ms: f64,
        seed: u64,
    ) -> (Vec<(f64, f64)>, f64) {
        let mut drift = Drift::new(48_000);
        let mut dice = Dice(seed);
        let mut level = 480.0;
        let (mut correction, mut wander, mut sum) = (0.0, 0.0, 0.0);
        let mut windows = Vec::new();
        for tick in 1..=seconds * TICKS_PER_SECOND {
            if tick % TICKS_PER_SECOND == 1 {
                wander = dice.signed() * wander_ms * 48.0;
            }
            sum += level;
            if let Some(c) = drift.tick(level + wander) {
                correction = c;
            }
            if tick % TICKS_PER_SECOND == 0 {
                windows.push((correction, sum / TICKS / 48.0));
                sum = 0.0;
            }
            let ppm = if tick <= change * TICKS_PER_SECOND {
                pace.0
            } else {
                pace.1
            };
            level += DRAIN * (correction - ppm) * 1e-6;
        }
        (windows, drift.bandwidth)
    }

    #[test]
    fn the_log_words_hold_the_anchor_the_median_and_the_correction() {
        let mut drift = Drift::new(48_000);
        assert!(drift.to_string().starts_with("anchor_ms=none "));
        for _ in 0..WINDOW {
            drift.tick(480.0);
        }
        for _ in 0..WINDOW {
            drift.tick(432.0);
        }
        // 1 ms below the anchor: P 200 ppm and I 20 ppm at full bandwidth.
        assert_eq!(
            drift.to_string(),
            "anchor_ms=10.00 median_ms=9.00 drift_ppm=20.0 correction_ppm=220.0 bandwidth=1.000"
        );
    }

    #[test]
    fn a_wandering_level_does_not_swing_the_correction() {
        for (seed, wander) in [(7, 3.0), (4_242, 3.0), (99_991, 3.0), (7, 1.0), (7, 0.5)] {
            let (windows, bandwidth) = follow_wandering((250.0, 250.0), 600, 600, wander, seed);
            // Two minutes to learn and narrow; then the correction stays near the card's pace
            // (98–105 ppm at most with a wander of 3 ms, 100 and 111 with 1 and 0.5 ms; a loop
            // kept wide swings it by 840–900 ppm with a wander of 3 ms).
            let worst = windows[120..]
                .iter()
                .fold(0f64, |w, &(c, _)| w.max((c - 250.0).abs()));
            assert!(worst <= 120.0, "seed {seed}: {worst:.0} ppm off the pace");
            assert!(bandwidth < 0.7, "{wander} ms: bandwidth {bandwidth:.2}");
            let start = windows[0].1;
            let level = windows[120..]
                .iter()
                .fold(0f64, |w, &(_, m)| w.max((m - start).abs()));
            // The anchor is one window's median: its wander included.
            assert!(
                level <= wander + 1.0,
                "seed {seed}: the level moved {level:.2} ms"
            );
        }
        // A level that does not wander keeps the loop wide, holding it tightly.
        let (_, bandwidth) = follow_wandering((250.0, 250.0), 600, 600, 0.0, 1);
        assert_eq!(bandwidth, 1.0);
    }

    #[test]
    fn a_change_of_pace_widens_the_loop_again() {
        // Narrowed by a wandering level at +250 ppm for five minutes, then another device,
        // 250 ppm slow.
        let (windows, _) = follow_wandering((250.0, -250.0), 300, 600, 3.0, 1);
        let start = windows[0].1;
        let worst = windows[300..]
            .iter()
            .fold(0f64, |w, &(_, m)| w.max((m - start).abs()));
        // 4.6 ms; kept narrow, the level would stray 10 ms before the loop caught up.
        assert!(worst <= 6.0, "the level strayed {worst:.2} ms");
        let last = windows[540..].iter().map(|&(c, _)| c).sum::<f64>() / 60.0;
        // −252.6 ppm over the last minute; kept narrow, still −262.6.
        assert!((last + 250.0).abs() < 5.0, "{last:.1} ppm");
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
        for _ in 0..WINDOW {
            drift.tick(480.0);
        }
        let first = (0..WINDOW).filter_map(|_| drift.tick(475.0)).last();
        assert!(first.is_some_and(|c| c > 0.0), "{first:?}");
        let learned = drift.drift;
        // The cushion grew by 5 ms: that new fill is the level, not a filling card.
        drift.reanchor();
        assert_eq!(
            (0..WINDOW).filter_map(|_| drift.tick(720.0)).count(),
            0,
            "anchors"
        );
        let next = (0..WINDOW).filter_map(|_| drift.tick(720.0)).last();
        assert_eq!(next, Some(learned), "held: the pace learned, no error");
        assert!(drift.correction() > 0.0);
        // Nothing measured in a 16 kHz ring's windows is in ms of 48 kHz.
        let mut slow = Drift::new(16_000);
        for _ in 0..WINDOW {
            slow.tick(160.0);
        }
        let c = (0..WINDOW).filter_map(|_| slow.tick(144.0)).last();
        assert_eq!(c, Some(KI + KP), "16 samples at 16 kHz: 1 ms");
    }
}
