//! The one refresh and retry schedule of REGISTER (RFC 3261 §10.2.4) and SUBSCRIBE
//! (RFC 6665 §4.1.2.1): refresh at 85 % of the lifetime granted, retry after a failure with
//! exponential backoff and jitter, or when the server's `Retry-After` says.
//!
//! ```text
//!   granted N s ──► refresh at 0.85·N (≥ 5 s)
//!   failure k   ──► Retry-After, when given (≤ 24 h)
//!                   else 5 s · 2^(k-1) (≤ 300 s) plus up to a fifth more, from the tokens
//! ```
//!
//! The jitter spreads the retries of many operators who lost the same server at the same
//! moment; it comes from the user agent's tokens, so tests stay deterministic. Pure: the
//! caller passes `now` and the random word.

use std::time::{Duration, Instant};

use super::msg::Message;

/// First retry delay after a failure; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
/// Longest delay between attempts (without a `Retry-After`).
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Shortest refresh interval, whatever the server grants.
const MIN_REFRESH: Duration = Duration::from_secs(5);
/// The longest `Retry-After` followed.
pub(super) const MAX_ASKED_WAIT: u32 = 24 * 3600;

/// When the next refresh or retry of one registration or subscription is due.
#[derive(Debug, Clone, Default)]
pub(super) struct Refresh {
    /// When to send again (refresh, retry, or what the owner set with [`Refresh::at`]).
    next_at: Option<Instant>,
    /// Consecutive failures, for the backoff.
    failures: u32,
}

impl Refresh {
    /// True when the next attempt is due.
    pub(super) fn due(&self, now: Instant) -> bool {
        self.next_at.is_some_and(|t| t <= now)
    }

    /// When the next attempt is due.
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.next_at
    }

    /// Nothing scheduled (a request is in flight, or nothing more is wanted).
    pub(super) fn clear(&mut self) {
        self.next_at = None;
    }

    /// Schedules the next attempt at `at` (the owner's own reasons: linger, asked waits).
    pub(super) fn at(&mut self, at: Instant) {
        self.next_at = Some(at);
    }

    /// The server granted `granted` seconds: failures are forgotten and the refresh is
    /// scheduled at 85 % of it; returns when.
    pub(super) fn granted(&mut self, now: Instant, granted: u32) -> Instant {
        self.failures = 0;
        let refresh = Duration::from_secs(u64::from(granted) * 85 / 100).max(MIN_REFRESH);
        let at = now + refresh;
        self.next_at = Some(at);
        at
    }

    /// Forgets the failures without scheduling anything (a success with nothing to refresh).
    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
    }

    /// An attempt failed: schedules the retry after `retry_after` (the server's word) or the
    /// backoff plus jitter taken from `random`; returns the delay.
    pub(super) fn failed(
        &mut self,
        now: Instant,
        retry_after: Option<Duration>,
        random: u64,
    ) -> Duration {
        self.failures = self.failures.saturating_add(1);
        let delay = retry_after.unwrap_or_else(|| {
            let shift = self.failures.saturating_sub(1).min(6);
            let base = (FIRST_BACKOFF * (1 << shift)).min(MAX_BACKOFF);
            let fifth = u64::try_from(base.as_millis() / 5).unwrap_or(1).max(1);
            base + Duration::from_millis(random % fifth)
        });
        self.next_at = Some(now + delay);
        delay
    }
}

/// The `Retry-After` of a response, in seconds (comments and parameters ignored), when
/// it is at most [`MAX_ASKED_WAIT`].
pub(super) fn retry_after(resp: &Message) -> Option<Duration> {
    let value = resp.header("Retry-After")?;
    let digits: String = value
        .trim()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let seconds: u32 = digits.parse().ok()?;
    (seconds <= MAX_ASKED_WAIT).then(|| Duration::from_secs(u64::from(seconds)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::timer::epoch;

    #[test]
    fn backoff_doubles_with_jitter_below_a_fifth_and_stops_at_the_cap() {
        let now = epoch();
        let mut r = Refresh::default();
        let mut seen = Vec::new();
        for random in [0, 999_999, 3, 7, 11, 13, 17, 19, 23] {
            seen.push(r.failed(now, None, random));
        }
        let floors = [5, 10, 20, 40, 80, 160, 300, 300, 300];
        for (delay, floor) in seen.iter().zip(floors) {
            let floor = Duration::from_secs(floor);
            assert!(*delay >= floor && *delay < floor + floor / 5, "{seen:?}");
        }
        assert_ne!(seen[0], seen[1], "the jitter spreads equal failures apart");
        assert_eq!(r.deadline(), Some(now + seen[8]));
    }

    #[test]
    fn retry_after_wins_and_success_resets_the_backoff() {
        let now = epoch();
        let mut r = Refresh::default();
        r.failed(now, None, 0);
        r.failed(now, None, 0);
        assert_eq!(
            r.failed(now, Some(Duration::from_secs(42)), 0),
            Duration::from_secs(42)
        );
        let at = r.granted(now, 100);
        assert_eq!(at, now + Duration::from_secs(85));
        assert!(r.due(at) && !r.due(now));
        assert_eq!(r.failed(now, None, 0), FIRST_BACKOFF);
        assert_eq!(r.granted(now, 1), now + MIN_REFRESH);
    }

    #[test]
    fn retry_after_is_read_with_comments_and_bounded() {
        let parse = |v: &str| {
            let text = format!(
                "SIP/2.0 503 Busy\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\n\
                 To: <sip:a@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 REGISTER\r\nRetry-After: {v}\r\n\
                 Content-Length: 0\r\n\r\n"
            );
            retry_after(&Message::parse(text.as_bytes()).expect("parses"))
        };
        assert_eq!(
            parse("120 (maintenance);duration=60"),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse("99999999"), None);
        assert_eq!(parse("soon"), None);
    }
}
