//! What each stage of a sound path holds, measured as the call runs: the latency breakdown.
//!
//! Owns one meter per stream, fed once per tick by the media-thread end of the ring
//! (`paths.rs`): the samples a frame waits in the ring, and the device delays the callbacks
//! took from cpal's timestamps (`realtime.rs`, atomics only). Every few seconds
//! `cpal_backend.rs` logs the means (`audio latency` lines), which the latency bench reads.
//! Beside the stages, each stream's pace against the media clock (`PaceMeter`): how far its
//! callbacks are ahead of the ticks, which tells a sound card whose clock parts from the
//! ticks (a slope) from a burst of the audio system (a step). Pure arithmetic: no clock, no
//! allocation.
//!
//! ```text
//!   capture:  device delay dc (the audio system's, at a callback: oldest sample's wait)
//!             ring r (samples left behind the frame the tick takes: the newest one's wait)
//!             newest sample's age at the tick ≈ r + dc − period/2
//!   playback: ring r (samples queued ahead of the frame the tick writes)
//!             device delay dp (at a callback, before its samples: what is queued below)
//!             first sample's wait ≈ r + dp + period/2
//! ```

use crate::media::FRAME_MS;

/// The means of one window, in milliseconds (`None`: nothing was measured).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct StageMeans {
    /// Wait in switchboard's ring.
    pub(super) ring_ms: Option<f64>,
    /// Delay below the ring, in the audio system, as its timestamps say.
    pub(super) device_ms: Option<f64>,
}

/// Sums for one window of one stream.
#[derive(Debug, Default)]
pub(super) struct StageMeter {
    ring_samples: u64,
    rings: u64,
    delay_us: u64,
    delays: u64,
}

impl StageMeter {
    /// One tick's ring wait, in device samples.
    pub(super) fn ring(&mut self, samples: usize) {
        self.ring_samples += samples as u64;
        self.rings += 1;
    }

    /// The callbacks' device delays since the last tick: their sum (µs) and count.
    pub(super) fn device(&mut self, (sum_us, count): (u64, u64)) {
        self.delay_us += sum_us;
        self.delays += count;
    }

    /// The window's means for a stream at `rate` Hz, and a new window.
    pub(super) fn take(&mut self, rate: u32) -> StageMeans {
        let ring_ms = (self.rings > 0 && rate > 0)
            .then(|| self.ring_samples as f64 * 1000.0 / f64::from(rate) / self.rings as f64);
        let device_ms =
            (self.delays > 0).then(|| self.delay_us as f64 / 1000.0 / self.delays as f64);
        *self = StageMeter::default();
        StageMeans { ring_ms, device_ms }
    }
}

/// A stream's pace against the media clock since the stream started (or resumed): how far
/// the samples its callbacks carried are ahead of the ticks' (a frame each), in
/// milliseconds. A steady slope is a sound card whose clock parts from the ticks (a headset
/// that drains its ring when positive, a microphone that fills its); a step is a burst (the
/// audio system late, then catching up). Exact to a callback's period.
#[derive(Debug, Default)]
pub(super) struct PaceMeter {
    /// The samples carried at the first tick, and the ticks since.
    origin: Option<u64>,
    ticks: u64,
    carried: u64,
}

impl PaceMeter {
    /// One tick, with the samples the stream's callbacks carried so far.
    pub(super) fn tick(&mut self, carried: u64) {
        match self.origin {
            None => self.origin = Some(carried),
            Some(_) => self.ticks += 1,
        }
        self.carried = carried;
    }

    /// Starts over (the stream resumed after a pause: its idle callbacks are no pace).
    pub(super) fn restart(&mut self) {
        *self = PaceMeter::default();
    }

    /// How far the stream (at `rate` Hz) is ahead of the ticks, in ms; `None` before a tick.
    pub(super) fn ahead_ms(&self, rate: u32) -> Option<f64> {
        let origin = self.origin?;
        let carried = self.carried.saturating_sub(origin) as f64;
        let ticked = self.ticks as f64 * f64::from(rate) * f64::from(FRAME_MS) / 1000.0;
        (rate > 0).then(|| (carried - ticked) * 1000.0 / f64::from(rate))
    }
}

/// Rounds to 0.1 ms for the log.
pub(super) fn tenth(ms: Option<f64>) -> f64 {
    ms.map_or(f64::NAN, |x| (x * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{FRAME_SAMPLES, TICKS_PER_SECOND};

    #[test]
    fn pace_counts_the_samples_ahead_of_the_ticks_from_the_first_tick_on() {
        let mut pace = PaceMeter::default();
        assert_eq!(pace.ahead_ms(48_000), None);
        // 7,000 samples before the first tick (an idle stream's) are not counted.
        pace.tick(7_000);
        assert_eq!(pace.ahead_ms(48_000), Some(0.0));
        // 20 s of ticks at 48 kHz, each a frame and 300 ppm more: 6 ms ahead.
        let (frame, ticks) = (FRAME_SAMPLES as u64, 20 * u64::from(TICKS_PER_SECOND));
        for k in 1..=ticks {
            pace.tick(7_000 + k * frame + k * frame * 3 / 10_000);
        }
        let ahead = pace.ahead_ms(48_000).expect("a pace");
        assert!((ahead - 6.0).abs() < 1e-9, "{ahead}");
        // A device behind the ticks (50 ticks at 16 kHz, 4 samples short each: 200 in all);
        // then a restart forgets all of it.
        let mut slow = PaceMeter::default();
        slow.tick(0);
        for k in 1..=50 {
            slow.tick(k * (16 * u64::from(FRAME_MS) - 4));
        }
        assert!((slow.ahead_ms(16_000).expect("a pace") + 12.5).abs() < 1e-9);
        slow.restart();
        assert_eq!(slow.ahead_ms(16_000), None);
    }

    #[test]
    fn means_per_window_then_empty() {
        let mut m = StageMeter::default();
        assert_eq!(
            m.take(48_000),
            StageMeans {
                ring_ms: None,
                device_ms: None
            }
        );
        m.ring(480);
        m.ring(0);
        m.device((30_000, 2));
        m.device((0, 0));
        m.device((6_000, 1));
        let means = m.take(48_000);
        assert_eq!(means.ring_ms, Some(5.0));
        assert_eq!(means.device_ms, Some(12.0));
        assert_eq!(m.take(48_000).ring_ms, None, "a new window");
        assert_eq!(tenth(Some(12.345)), 12.3);
        assert!(tenth(None).is_nan());
    }
}
