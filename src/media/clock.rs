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
//!   pace:   how much faster than the system's clock the microphone's card recorded
//!           over the last two minutes or so shortens every frame by as much (±1,000 ppm
//!           at most; learned after 30 s)
//! ```
//!
//! Both ways the clock keeps the microphone's pace, and the headset's ring, filled at the
//! ticks, keeps its fill. The pace makes it smooth: a microphone 170 ppm faster than the
//! system's clock otherwise gains a capture period every 20 s or so, given back at once by
//! a tick that much earlier, and the headset's ring, written at the ticks and held by its
//! drift loop at the *sum* of its level and the microphone's backlog, rises and falls by as
//! much (its cushion gave back margin at the top of that swing and ran dry at the bottom).

use std::time::{Duration, Instant};

use super::device::Backlog;
use super::FRAME_MS;

/// Longest a tick waits for a microphone frame a sound card is a little short of.
const MAX_CAPTURE_WAIT: Duration = Duration::from_millis(6);
/// Shortest such wait: the callback that completes the frame may come later than its
/// samples' duration says.
const MIN_CAPTURE_WAIT: Duration = Duration::from_micros(500);
/// A tick this late restarts the grid.
const BEHIND: Duration = Duration::from_millis(100);
/// How long the card's record is remembered: it fades with this time constant.
const PACE_MEMORY_S: f64 = 120.0;
/// A record shorter than this teaches no pace: a few callbacks' jitter would be most of it.
const PACE_LEARNED_S: f64 = 30.0;
/// After an idle spell the streams start again: their first seconds are not counted.
const PACE_WARM_UP: Duration = Duration::from_secs(5);
/// The most the pace shortens or lengthens a frame (ppm); sound cards are within a few
/// hundred.
const MAX_PACE_PPM: f64 = 1_000.0;

/// One frame of the clock.
const FRAME: Duration = Duration::from_millis(FRAME_MS as u64);

/// The time of the next tick, and how it moves.
#[derive(Debug, Clone)]
pub(super) struct MediaClock {
    next: Instant,
    pace: Pace,
}

/// The microphone's pace against the system's clock, from what the card recorded (its
/// callbacks' frames) over the ticks' time, both fading with [`PACE_MEMORY_S`]. The card's
/// own count: what a full ring dropped, a tick's lateness or the cushion's moves do not
/// change it. An interval in which the capture path primed afresh (a pause, another
/// device) is left out.
#[derive(Debug, Clone)]
struct Pace {
    /// Seconds the card recorded beyond the system's clock.
    gained: f64,
    /// Seconds of the system's clock they were recorded over.
    span: f64,
    /// Ticks before this are a stream's start, not its pace.
    from: Instant,
    /// How much earlier each frame comes now (ppm; negative: later).
    ppm: f64,
    /// The microphone's backlog at the last tick, and when.
    last: Option<(Instant, Backlog)>,
}

impl Pace {
    fn new(from: Instant) -> Pace {
        Pace {
            gained: 0.0,
            span: 0.0,
            from,
            ppm: 0.0,
            last: None,
        }
    }

    /// The frame as the pace shortens it.
    fn frame(&self) -> Duration {
        FRAME.mul_f64(1.0 - self.ppm * 1e-6)
    }

    /// A tick at `t` left the microphone's `backlog`: the record grows by the interval since
    /// the last one, the pace learned anew.
    fn tick(&mut self, t: Instant, backlog: Option<Backlog>) {
        let before = std::mem::replace(&mut self.last, backlog.map(|b| (t, b)));
        let (Some((then, b)), Some(n)) = (before, backlog) else {
            return;
        };
        let elapsed = t.saturating_duration_since(then).as_secs_f64();
        if then < self.from || b.moves != n.moves || elapsed <= 0.0 {
            return;
        }
        let keep = (-elapsed / PACE_MEMORY_S).exp();
        self.gained = self.gained * keep + (n.recorded_ms - b.recorded_ms) / 1000.0 - elapsed;
        self.span = self.span * keep + elapsed;
        if self.span >= PACE_LEARNED_S {
            self.ppm = (self.gained / self.span * 1e6).clamp(-MAX_PACE_PPM, MAX_PACE_PPM);
        }
    }
}

impl MediaClock {
    /// A clock whose first tick is due at `start`.
    pub(super) fn new(start: Instant) -> MediaClock {
        MediaClock {
            next: start,
            pace: Pace::new(start + PACE_WARM_UP),
        }
    }

    /// How much earlier than the system's clock says each frame comes, in ppm: the
    /// microphone's pace as learned (0 until it is).
    pub(super) fn pace_ppm(&self) -> f64 {
        self.pace.ppm
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

    /// The tick that ran at `t` is done, leaving the microphone's `backlog`: the next is a
    /// frame (as the pace has it) later, or earlier by the microphone's `lead` (a frame at
    /// most); a grid far behind `t` starts again from it.
    pub(super) fn ticked(&mut self, t: Instant, lead: Option<Duration>, backlog: Option<Backlog>) {
        let frame = self.pace.frame();
        let lead = lead.map_or(Duration::ZERO, |l| l.min(FRAME));
        self.pace.tick(t, backlog);
        self.next += frame;
        self.next = self.next.checked_sub(lead).unwrap_or(self.next);
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
        self.pace.from = t + PACE_WARM_UP;
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
            clock.ticked(t0 + FRAME * (k - 1) + us(300), None, None);
            assert_eq!(clock.until_due(t0 + FRAME * k - FRAME / 4), Some(FRAME / 4));
            assert_eq!(clock.until_due(t0 + FRAME * k), None);
        }
    }

    #[test]
    fn a_wait_moves_the_phase_later_and_a_lead_earlier_by_a_frame_at_most() {
        let t0 = epoch();
        let mut clock = MediaClock::new(t0);
        clock.keep_phase(us(1_700));
        clock.ticked(t0 + us(1_700), None, None);
        assert_eq!(clock.until_due(t0), Some(FRAME + us(1_700)));
        clock.ticked(t0 + FRAME + us(1_700), Some(us(400)), None);
        assert_eq!(clock.until_due(t0), Some(FRAME * 2 + us(1_300)));
        // A lead larger than a frame moves the tick by a frame.
        clock.ticked(t0 + FRAME * 2 + us(1_300), Some(FRAME * 2 + ms(5)), None);
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

    /// Ten minutes of ticks reading a microphone `ppm` faster than the system's clock that
    /// has recorded `start` seconds more than a frame at the first, as the engine does: a
    /// frame short is waited for (0.5 ms at least); every 2 s a backlog beyond 4 ms is given
    /// back by a lead, 2 ms at most, down to 1 ms. At 200 s a tick comes 44 ms late,
    /// the capture path drops what waits beyond 1 ms, and the ticks that catch up find no
    /// frame. The leads and the waits over the
    /// last five minutes (ms), and the pace learned farthest from `ppm` after the first
    /// minute.
    fn follow_microphone(ppm: f64, start: f64) -> (f64, f64, f64) {
        let t0 = epoch();
        let mut clock = MediaClock::new(t0);
        let frame = FRAME.as_secs_f64();
        // Seconds of audio recorded by `t`, and read (or dropped) by the ticks.
        let recorded = |t: Duration| (t.as_secs_f64() + frame + start) * (1.0 + ppm * 1e-6);
        let (mut t, mut read, mut moves) = (Duration::ZERO, 0.0, 0);
        let (mut leads, mut waits, mut pace) = (0.0, 0.0, ppm);
        for k in 0..60_000 {
            t += clock.until_due(t0 + t).unwrap_or_default();
            if k == 20_000 {
                t += ms(44);
                read = recorded(t) - frame - 0.001;
                moves += 1;
            }
            let counted = if k >= 30_000 { 1_000.0 } else { 0.0 };
            let short = read + frame - recorded(t);
            if short <= 0.0 {
                read += frame;
            } else if clock.may_wait(t0 + t) {
                let wait = Duration::from_secs_f64(short).max(MIN_CAPTURE_WAIT);
                clock.keep_phase(wait);
                t += wait;
                waits += wait.as_secs_f64() * counted;
                read += frame;
            } else {
                // Catching up: the frame is missing and the capture path primes afresh.
                moves += 1;
            }
            let backlog = recorded(t) - read;
            let lead = (k % 200 == 0 && backlog > 0.004)
                .then(|| Duration::from_secs_f64((backlog - 0.001).min(0.002)));
            leads += lead.map_or(0.0, |l| l.as_secs_f64() * counted);
            let backlog = Backlog {
                ms: backlog * 1000.0,
                top_ms: 4.0,
                moves,
                recorded_ms: recorded(t) * 1000.0,
            };
            clock.ticked(t0 + t, lead, Some(backlog));
            if k >= 6_000 && (clock.pace_ppm() - ppm).abs() > (pace - ppm).abs() {
                pace = clock.pace_ppm();
            }
        }
        (leads, waits, pace)
    }

    /// The clock learns the microphone's pace from what its card recorded: one 200 ppm fast
    /// or slow then moves the ticks' phase now and then by a fraction of a millisecond,
    /// where without the pace its backlog is given back 2 ms every 10 s (60 ms in five
    /// minutes) or a frame waited for every 2.5 s (0.5 ms each): the capture and headset
    /// rings no longer swing. A stream's start with 20 ms recorded, and a stall whose
    /// backlog the capture path dropped, teach nothing. (Learned from the phase moves and
    /// what the backlog gained instead, such a stall in the lab turned +212 ppm into −405.)
    #[test]
    fn the_clock_learns_the_microphones_pace() {
        let (leads, waits, pace) = follow_microphone(200.0, 0.001);
        assert!((pace - 200.0).abs() < 10.0, "{pace} ppm");
        assert!(
            leads < 6.0 && waits < 1.0,
            "{leads} ms of leads, {waits} of waits"
        );
        let (leads, waits, pace) = follow_microphone(-200.0, 0.001);
        assert!((pace + 200.0).abs() < 10.0, "{pace} ppm");
        assert!(
            waits < 6.0 && leads < 1.0,
            "{leads} ms of leads, {waits} of waits"
        );
        let (leads, waits, pace) = follow_microphone(0.0, 0.02);
        assert!(pace.abs() < 10.0, "{pace} ppm");
        assert_eq!((leads, waits), (0.0, 0.0), "a microphone on time");
    }

    #[test]
    fn a_stall_restarts_the_grid_and_idle_ticks_are_skipped_on_it() {
        let t0 = epoch();
        let mut clock = MediaClock::new(t0);
        // A tick only 100 ms late keeps the grid.
        clock.ticked(t0 + FRAME + ms(100), None, None);
        assert_eq!(clock.until_due(t0), Some(FRAME), "the grid is kept");
        // A tick that ran 200 ms late (a suspended process): the next comes a frame after it.
        let late = t0 + ms(200);
        clock.ticked(late, None, None);
        assert_eq!(clock.until_due(late), Some(FRAME));
        // Idle from then until three frames and three quarters later: the ticks at one, two
        // and three frames went by; the next is at four.
        let idle = late + FRAME * 3 + FRAME * 3 / 4;
        assert_eq!(clock.skip_to(idle), 3);
        assert_eq!(clock.until_due(idle), Some(FRAME / 4));
        assert_eq!(clock.skip_to(idle + FRAME / 8), 0, "before the next tick");
    }
}
