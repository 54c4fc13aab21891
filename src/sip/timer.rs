//! RFC 3261 timer values (§17, table 4) and a helper for "the earliest of
//! several optional deadlines". The core never reads a clock: every deadline
//! is computed from the `now` it was handed.

use std::time::{Duration, Instant};

/// The base timer values; tests may shorten them, real use keeps RFC values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimerValues {
    /// RTT estimate (500 ms).
    pub t1: Duration,
    /// Maximum retransmit interval for non-INVITE requests and INVITE responses (4 s).
    pub t2: Duration,
    /// Maximum time a message stays in the network (5 s).
    pub t4: Duration,
}

impl Default for TimerValues {
    fn default() -> Self {
        TimerValues {
            t1: Duration::from_millis(500),
            t2: Duration::from_secs(4),
            t4: Duration::from_secs(5),
        }
    }
}

impl TimerValues {
    /// Timers B, F, H and J: 64·T1, the transaction timeout.
    pub fn timeout(&self) -> Duration {
        self.t1 * 64
    }

    /// Timer D: wait for response retransmissions (≥ 32 s over UDP, 0 over TCP).
    pub fn timer_d(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            Duration::from_secs(32).max(self.timeout())
        }
    }

    /// Timers I and K: T4 over UDP, 0 over TCP.
    pub fn timer_k(&self, reliable: bool) -> Duration {
        if reliable {
            Duration::ZERO
        } else {
            self.t4
        }
    }
}

/// The earliest of some optional deadlines.
pub fn earliest(deadlines: impl IntoIterator<Item = Option<Instant>>) -> Option<Instant> {
    deadlines.into_iter().flatten().min()
}

/// True when an optional deadline has passed.
pub fn due(deadline: Option<Instant>, now: Instant) -> bool {
    deadline.is_some_and(|d| d <= now)
}

/// The origin of simulated time in unit tests: the only clock read they do.
#[cfg(test)]
#[allow(clippy::disallowed_methods)] // reading the clock once is the point
pub(crate) fn epoch() -> Instant {
    Instant::now()
}
