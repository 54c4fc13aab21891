//! What each stage of a sound path holds, measured as the call runs: the latency breakdown.
//!
//! Owns one meter per stream, fed once per tick by the media-thread end of the ring
//! (`paths.rs`): the samples a frame waits in the ring, and the device delays the callbacks
//! took from cpal's timestamps (`realtime.rs`, atomics only). Every few seconds
//! `cpal_backend.rs` logs the means (`audio latency` lines), which the latency bench reads.
//! Pure arithmetic: no clock, no allocation.
//!
//! ```text
//!   capture:  device delay dc (the audio system's, at a callback: oldest sample's wait)
//!             ring r (samples left behind the frame the tick takes: the newest one's wait)
//!             newest sample's age at the tick ≈ r + dc − period/2
//!   playback: ring r (samples queued ahead of the frame the tick writes)
//!             device delay dp (at a callback, before its samples: what is queued below)
//!             first sample's wait ≈ r + dp + period/2
//! ```

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

/// Rounds to 0.1 ms for the log.
pub(super) fn tenth(ms: Option<f64>) -> f64 {
    ms.map_or(f64::NAN, |x| (x * 10.0).round() / 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

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
