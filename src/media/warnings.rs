//! Rate limits for the warnings the media thread could log on every frame or packet (a codec
//! that fails to encode, a packet SRTP cannot protect, a flood of packets that fail SRTP
//! checks): at most one line per kind every [`EVERY`], saying how many were left out since the
//! last one. Pure with respect to time (`now` is given) and free of allocation: a suppressed
//! warning is one comparison and one addition.

use std::time::{Duration, Instant};

/// The least time between two lines of one kind.
pub const EVERY: Duration = Duration::from_secs(10);

/// One kind of warning: when it may be logged next, and how many were left out meanwhile.
#[derive(Debug, Clone)]
pub struct Limiter {
    every: Duration,
    next: Option<Instant>,
    suppressed: u64,
}

impl Limiter {
    /// A limiter letting one line through every `every`; the first one passes.
    pub const fn new(every: Duration) -> Limiter {
        Limiter {
            every,
            next: None,
            suppressed: 0,
        }
    }

    /// One occurrence at `now`: `Some(left out since the last line)` when it may be logged,
    /// `None` (counted) when it must not.
    pub fn allow(&mut self, now: Instant) -> Option<u64> {
        match self.next {
            Some(next) if now < next => {
                self.suppressed = self.suppressed.saturating_add(1);
                None
            }
            _ => {
                self.next = Some(now + self.every);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

/// The media thread's limited warnings, one limiter per kind, shared by all lines.
#[derive(Debug, Clone)]
pub struct Warnings {
    /// "encoding failed".
    pub encode: Limiter,
    /// "not sending a packet that could not be protected".
    pub protect: Limiter,
    /// "dropping SRTP packets that fail authentication".
    pub srtp_in: Limiter,
}

impl Default for Warnings {
    fn default() -> Warnings {
        Warnings {
            encode: Limiter::new(EVERY),
            protect: Limiter::new(EVERY),
            srtp_in: Limiter::new(EVERY),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{FRAME_MS, TICKS_PER_SECOND};

    #[allow(clippy::disallowed_methods)] // the tests' one clock reading: their epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    #[test]
    fn one_line_per_period_with_the_count_left_out() {
        let start = epoch();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut limiter = Limiter::new(Duration::from_secs(10));
        // A warning every frame for 25 s: lines at 0 s, 10 s and 20 s.
        let (frame_ms, per_second) = (u64::from(FRAME_MS), u64::from(TICKS_PER_SECOND));
        let mut lines = Vec::new();
        for frame in 0..25 * per_second {
            if let Some(left_out) = limiter.allow(at(frame * frame_ms)) {
                lines.push((frame * frame_ms, left_out));
            }
        }
        let ten_seconds_less_one = 10 * per_second - 1;
        assert_eq!(
            lines,
            [
                (0, 0),
                (10_000, ten_seconds_less_one),
                (20_000, ten_seconds_less_one)
            ]
        );
        // After a quiet spell the next occurrence passes at once, with what was left out.
        assert_eq!(limiter.allow(at(60_000)), Some(5 * per_second - 1));
        assert_eq!(limiter.allow(at(60_001)), None);
    }

    #[test]
    fn a_suppressed_warning_does_not_allocate() {
        let start = epoch();
        let mut warnings = Warnings::default();
        assert_eq!(warnings.encode.allow(start), Some(0));
        let before = assert_no_alloc::violation_count();
        assert_no_alloc::assert_no_alloc(|| {
            for ms in 1..1_000 {
                let now = start + Duration::from_millis(ms);
                assert!(warnings.encode.allow(now).is_none());
                assert!(warnings.protect.allow(now).is_some() == (ms == 1));
            }
        });
        assert_eq!(assert_no_alloc::violation_count() - before, 0);
    }
}
