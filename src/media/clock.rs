//! The media thread's frame clock as a rule, without a clock of its own: the engine
//! (`engine.rs`) hands it the times it reads, the simulations of a sound card
//! (`device/paths.rs`) hand it simulated ones, so both run the same rule.
//!
//! ```text
//!   grid:   next ──frame──► next ──frame──► …      a late wake-up does not move it
//!   wait:   the tick finds its microphone frame a little short and waits (0.5–6 ms)
//!           for the callback that completes it: the grid moves that much later
//!   lead:   the capture cushion gives margin back: the next tick comes that much
//!           earlier (a frame at most) instead of the audio being dropped
//!   behind: more than 100 ms late (suspend, debugger): the grid starts again
//!   idle:   no tick while nothing needs the clock; the ticks that went by are skipped
//! ```
//!
//! Both ways the clock keeps the microphone's pace, and the headset's ring, filled at the
//! ticks, keeps its fill.

use std::time::{Duration, Instant};

use super::FRAME_MS;

/// Longest a tick waits for a microphone frame a sound card is a little short of.
const MAX_CAPTURE_WAIT: Duration = Duration::from_millis(6);
/// Shortest such wait: the callback that completes the frame may come later than its
/// samples' duration says.
const MIN_CAPTURE_WAIT: Duration = Duration::from_micros(500);
/// A tick this late restarts the grid.
const BEHIND: Duration = Duration::from_millis(100);

/// One frame of the clock.
const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);

/// The time of the next tick, and how it moves.
#[derive(Debug, Clone)]
pub(super) struct MediaClock {
    next: Instant,
}

impl MediaClock {
    /// A clock whose first tick is due at `start`.
    pub(super) fn new(start: Instant) -> MediaClock {
        MediaClock { next: start }
    }

    /// How long to sleep, woken at `t`, before the next tick is due; `None`: tick now.
    pub(super) fn until_due(&self, t: Instant) -> Option<Duration> {
        (t < self.next).then(|| self.next - t)
    }

    /// How late a tick woken at `t` is (`None`: not late).
    pub(super) fn late(&self, t: Instant) -> Option<Duration> {
        t.checked_duration_since(self.next).filter(|d| !d.is_zero())
    }

    /// Whether a tick woken at `t` may wait for its microphone frame: not when it is already
    /// later than a wait could be (catching up after a stall).
    pub(super) fn may_wait(&self, t: Instant) -> bool {
        t.saturating_duration_since(self.next) <= MAX_CAPTURE_WAIT
    }

    /// Waits for a microphone frame the sound card is a little short of: `shortfall` says by
    /// how much (`None`: the frame is there), `sleep` waits and says how long it is since the
    /// tick woke. Each wait is the shortfall, 0.5 ms at least, and all of them together 6 ms
    /// at most. How long it took, if it waited and the frame came; `None` otherwise (a frame
    /// that does not come in time is the device's dropout).
    pub(super) fn wait_for_frame(
        mut shortfall: impl FnMut() -> Option<Duration>,
        mut sleep: impl FnMut(Duration) -> Duration,
    ) -> Option<Duration> {
        let mut elapsed = None;
        while let Some(short) = shortfall() {
            let wait = short.max(MIN_CAPTURE_WAIT);
            if elapsed.unwrap_or_default() + wait > MAX_CAPTURE_WAIT {
                return None;
            }
            elapsed = Some(sleep(wait));
        }
        elapsed
    }

    /// The tick waited `waited` for the callback that completed its frame: the ticks to
    /// come keep that phase.
    pub(super) fn keep_phase(&mut self, waited: Duration) {
        self.next += waited;
    }

    /// The tick that ran at `t` is done: the next is a frame later, or earlier by the
    /// microphone's `lead` (a frame at most); a grid far behind `t` starts again from it.
    pub(super) fn ticked(&mut self, t: Instant, lead: Option<Duration>) {
        self.next += FRAME;
        if let Some(lead) = lead {
            self.next = self.next.checked_sub(lead.min(FRAME)).unwrap_or(self.next);
        }
        if t > self.next + BEHIND {
            self.next = t + FRAME;
        }
    }

    /// Nothing ticked until `t` (the pipeline was idle): the ticks that went by are skipped
    /// on the grid; how many.
    pub(super) fn skip_to(&mut self, t: Instant) -> u64 {
        if t < self.next {
            return 0;
        }
        let missed = u64::try_from(t.duration_since(self.next).as_nanos() / FRAME.as_nanos())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        self.next += FRAME.saturating_mul(u32::try_from(missed).unwrap_or(u32::MAX));
        missed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::timer::epoch;
    use std::cell::Cell;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn us(n: u64) -> Duration {
        Duration::from_micros(n)
    }

    #[test]
    fn a_tick_is_late_only_after_it_was_due() {
        let t0 = epoch();
        let clock = MediaClock::new(t0 + ms(10));
        assert_eq!(clock.late(t0 + ms(9)), None);
        assert_eq!(clock.late(t0 + ms(10)), None);
        assert_eq!(clock.late(t0 + ms(13)), Some(ms(3)));
    }

    #[test]
    fn ticks_keep_the_grid_whatever_the_wake_ups() {
        let t0 = epoch();
        let mut clock = MediaClock::new(t0);
        assert_eq!(clock.until_due(t0), None, "the first tick is due at once");
        // Woken 0.3 ms late each time: the grid stays on steps of a frame.
        for k in 1..=3 {
            clock.ticked(t0 + FRAME * (k - 1) + us(300), None);
            assert_eq!(clock.until_due(t0 + FRAME * k - FRAME / 4), Some(FRAME / 4));
            assert_eq!(clock.until_due(t0 + FRAME * k), None);
        }
    }

    #[test]
    fn a_wait_moves_the_phase_later_and_a_lead_earlier_by_a_frame_at_most() {
        let t0 = epoch();
        let mut clock = MediaClock::new(t0);
        clock.keep_phase(us(1_700));
        clock.ticked(t0 + us(1_700), None);
        assert_eq!(clock.until_due(t0), Some(FRAME + us(1_700)));
        clock.ticked(t0 + FRAME + us(1_700), Some(us(400)));
        assert_eq!(clock.until_due(t0), Some(FRAME * 2 + us(1_300)));
        // A lead larger than a frame moves the tick by a frame.
        clock.ticked(t0 + FRAME * 2 + us(1_300), Some(FRAME * 2 + ms(5)));
        assert_eq!(clock.until_due(t0), Some(FRAME * 2 + us(1_300)));
    }

    /// A frame that the callbacks complete after `arrives`, waited for by a tick.
    fn wait_for(arrives: Duration, wake_up_late: Duration) -> (Option<Duration>, Vec<Duration>) {
        let (t, mut waits) = (Cell::new(Duration::ZERO), Vec::new());
        let waited = MediaClock::wait_for_frame(
            || arrives.checked_sub(t.get()).filter(|d| !d.is_zero()),
            |wait| {
                waits.push(wait);
                t.set(t.get() + wait + wake_up_late);
                t.get()
            },
        );
        (waited, waits)
    }

    #[test]
    fn a_tick_waits_for_its_frame_within_six_ms_in_steps_of_half_a_ms_at_least() {
        assert_eq!(wait_for(ms(0), ms(0)), (None, vec![]), "the frame is there");
        assert_eq!(wait_for(us(100), ms(0)), (Some(us(500)), vec![us(500)]));
        assert_eq!(
            wait_for(us(3_300), us(50)),
            (Some(us(3_350)), vec![us(3_300)]),
            "one wait for the shortfall; a late wake-up is part of the phase"
        );
        assert_eq!(
            wait_for(us(5_800), us(200)).1,
            vec![us(5_800)],
            "within 6 ms"
        );
        assert_eq!(
            wait_for(us(6_100), ms(0)),
            (None, vec![]),
            "a frame 6.1 ms short is not waited for"
        );
        // 3 ms short, then (the callback came late) 2.8 ms more: past 6 ms, given up.
        let (waited, waits) = wait_for(us(3_000), ms(0));
        assert_eq!((waited, waits.len()), (Some(ms(3)), 1));
        let mut shortfalls = [Some(ms(3)), Some(us(2_800)), None].into_iter();
        let mut t = Duration::ZERO;
        let given_up = MediaClock::wait_for_frame(
            || shortfalls.next().flatten(),
            |wait| {
                t += wait + us(300);
                t
            },
        );
        assert_eq!(given_up, None);
        let t0 = epoch();
        let clock = MediaClock::new(t0);
        assert!(clock.may_wait(t0 + ms(6)));
        assert!(!clock.may_wait(t0 + ms(7)), "catching up: no wait");
    }

    #[test]
    fn a_stall_restarts_the_grid_and_idle_ticks_are_skipped_on_it() {
        let t0 = epoch();
        let mut clock = MediaClock::new(t0);
        // A tick only 100 ms late keeps the grid.
        clock.ticked(t0 + FRAME + ms(100), None);
        assert_eq!(clock.until_due(t0), Some(FRAME), "the grid is kept");
        // A tick that ran 200 ms late (a suspended process): the next comes a frame after it.
        let late = t0 + ms(200);
        clock.ticked(late, None);
        assert_eq!(clock.until_due(late), Some(FRAME));
        // Idle from then until three frames and three quarters later: the ticks at one, two
        // and three frames went by; the next is at four.
        let idle = late + FRAME * 3 + FRAME * 3 / 4;
        assert_eq!(clock.skip_to(idle), 3);
        assert_eq!(clock.until_due(idle), Some(FRAME / 4));
        assert_eq!(clock.skip_to(idle + FRAME / 8), 0, "before the next tick");
    }
}
