//! How much audio waits in a device ring: the adaptive cushion between the media thread's
//! ticks (one frame each) and the device's own callbacks.
//!
//! Owns one controller per stream, fed once per tick with what the ring's two sides saw:
//! the least *margin* since the last tick (samples beyond what the consumer took at once —
//! a playback callback's request, or a capture read's frame), the largest callback the device
//! made (its period, as observed), and whether the consumer ran dry. It answers with a move
//! for the ring's media-thread end to make. Pure arithmetic: no clock, no allocation, no ring;
//! tests drive it with a simulated device clock.
//!
//! The least margin a shrink leaves, `keep`, is a quarter period and an *allowance* for
//! ticks late by design (a playback ring's owner sets it to a capture period: a tick waits
//! for the microphone's callback before it writes), or what dropouts taught:
//! each raises a *floor* by half a period, and a floor comes down 2 ms only after a minute
//! in which the margin never fell below half of it. A window sees only the delays that
//! happened in it; a delay that comes once every few seconds (a scheduler's, a sound
//! server's) would otherwise be forgotten by the next window and met again as a dropout.
//! A dropout after the floor came down shows it came down too far: the hold doubles (up to
//! 8 minutes), so a delay that comes every minute or two is not met again each time the
//! floor is given back.
//!
//! ```text
//!   ran dry ──► Grow(one period) now, floor += period/2 (once per burst: not again within
//!               1 s of the last dropout); the next shrink waits twice as long (2 s … 16 s)
//!   a whole window without running dry, least margin m > keep + period/4, excess e = m − keep
//!           ──► e > a period: Shrink(e) at once            (a backlog: stale audio, not a cushion)
//!               else Shrink(min(e, max(2 ms, e/4)))        (the margin settles near keep)
//!   a backlog (e > a period) over the last 1 s, however long the window ──► Shrink(e) at once
//!   a hold (1 min; doubled by each dropout after the floor came down, up to 8 min) without
//!   running dry, least margin ≥ floor/2 ──► floor −= 2 ms
//!   otherwise ─► Hold
//! ```
//!
//! So a stream starts small (half a requested period), grows quickly when the device's
//! timing is irregular, and gives latency back when it is steady: a backlog of more than a
//! period that a whole window never needed (a burst from the audio system, a stream that ran
//! on while the media thread was idle) at once, 2 ms at a time near the aim.

use crate::media::TICKS_PER_SECOND;

/// Ticks of the first shrink window: 2 s.
const BASE_WINDOW: u32 = 2 * TICKS_PER_SECOND;
/// Ticks over which a backlog is judged, whatever the shrink window: 1 s.
const BACKLOG_WINDOW: u32 = TICKS_PER_SECOND;
/// Ticks of the longest shrink window, reached after repeated dropouts: 16 s.
const MAX_WINDOW: u32 = 16 * TICKS_PER_SECOND;
/// Most the cushion shrinks in one window near its aim (ms); an excess up to a period loses
/// at most a quarter, a larger one goes at once.
const MAX_SHRINK_MS: u32 = 2;
/// Most margin the cushion grows to (ms).
const MAX_MARGIN_MS: u32 = 80;
/// Ticks a floor learned from dropouts is kept before it may come down: 1 min at first, up
/// to 8 min after dropouts that followed its coming down.
const FLOOR_HOLD: u32 = 60 * TICKS_PER_SECOND;
const MAX_FLOOR_HOLD: u32 = 8 * FLOOR_HOLD;

/// What the ring's media-thread end should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Move {
    /// Nothing.
    Hold,
    /// Queue this many samples of silence (playback) or wait for this many more (capture).
    Grow(usize),
    /// Leave out this many samples: latency given back.
    Shrink(usize),
}

/// The controller of one ring's cushion (all counts in samples at the device's rate).
#[derive(Debug)]
pub(super) struct Cushion {
    /// The margin to build when the stream starts or has run dry.
    margin: usize,
    max_margin: usize,
    max_shrink: usize,
    /// Least margin seen in this window (`usize::MAX`: none yet).
    window_low: usize,
    ticks: u32,
    /// Least margin seen in the current backlog window, and its ticks.
    backlog_low: usize,
    backlog_ticks: u32,
    window: u32,
    /// Largest period seen in this window and in the one before.
    period_now: usize,
    period_before: usize,
    /// The period assumed until the device has shown its own.
    period_hint: usize,
    /// Margin kept beyond a quarter period whatever the windows see: how late a tick may be
    /// by design (it waits for the microphone's callback; see [`Cushion::allow`]).
    allowance: usize,
    /// Margin that dropouts showed is needed beyond what a window sees, and the ticks and
    /// least margin since the last dropout or relaxation.
    floor: usize,
    floor_ticks: u32,
    floor_low: usize,
    /// Ticks the floor is held, and whether it came down since the last dropout.
    floor_hold: u32,
    floor_lowered: bool,
    /// Ticks since the last dropout (a burst's dropouts raise the floor once).
    since_dry: u32,
    grows: u64,
    shrinks: u64,
}

impl Cushion {
    /// A cushion for a stream at `rate` Hz whose callbacks were asked to carry `period_hint`
    /// samples: it starts at half that.
    pub(super) fn new(rate: u32, period_hint: usize) -> Cushion {
        let ms = |ms: u32| (u64::from(rate) * u64::from(ms) / 1000) as usize;
        Cushion {
            margin: period_hint / 2,
            max_margin: ms(MAX_MARGIN_MS),
            max_shrink: ms(MAX_SHRINK_MS).max(1),
            window_low: usize::MAX,
            ticks: 0,
            backlog_low: usize::MAX,
            backlog_ticks: 0,
            window: BASE_WINDOW,
            period_now: 0,
            period_before: 0,
            period_hint: period_hint.max(1),
            allowance: 0,
            floor: 0,
            floor_ticks: BACKLOG_WINDOW,
            floor_low: usize::MAX,
            floor_hold: FLOOR_HOLD,
            floor_lowered: false,
            since_dry: BACKLOG_WINDOW,
            grows: 0,
            shrinks: 0,
        }
    }

    /// The margin a (re)starting stream builds.
    pub(super) fn margin(&self) -> usize {
        self.margin
    }

    /// The device's period as observed lately (the hint until a callback has run).
    pub(super) fn period(&self) -> usize {
        match self.period_now.max(self.period_before) {
            0 => self.period_hint,
            p => p,
        }
    }

    /// Keeps `samples` more than a quarter period at least: the delay the media thread's
    /// ticks may take by design (a playback ring's writes wait for the microphone's callback
    /// that completes a frame).
    pub(super) fn allow(&mut self, samples: usize) {
        self.allowance = samples.min(self.max_margin);
    }

    /// The least margin a shrink leaves: a quarter period and the allowance, or the floor
    /// dropouts taught.
    fn keep(&self) -> usize {
        (self.period() / 4 + self.allowance).max(self.floor)
    }

    /// The least margin above which a window gives margin back.
    pub(super) fn top(&self) -> usize {
        self.keep() + self.period() / 4
    }

    /// A hold without a dropout in which the margin never fell below half the floor: the
    /// floor comes down 2 ms.
    fn relax_floor(&mut self, low: Option<usize>) {
        if let Some(low) = low {
            self.floor_low = self.floor_low.min(low);
        }
        self.floor_ticks += 1;
        if self.floor_ticks < self.floor_hold {
            return;
        }
        if self.floor_low >= self.floor / 2 && self.floor > 0 {
            self.floor = self.floor.saturating_sub(self.max_shrink);
            self.floor_lowered = true;
        }
        self.floor_ticks = 0;
        self.floor_low = usize::MAX;
    }

    /// Times it grew and shrank so far.
    #[cfg(test)]
    pub(super) fn moves(&self) -> (u64, u64) {
        (self.grows, self.shrinks)
    }

    /// One tick's observations: the least margin since the last tick (`None`: the device did
    /// not run), the largest callback since then (0: none), and whether the consumer ran dry.
    pub(super) fn tick(&mut self, low: Option<usize>, period: usize, ran_dry: bool) -> Move {
        self.period_now = self.period_now.max(period);
        if ran_dry {
            let grow = self
                .period()
                .min(self.max_margin.saturating_sub(self.margin));
            if self.since_dry >= BACKLOG_WINDOW {
                // One raise per burst: dropouts within a second of each other are one delay.
                self.floor = (self.keep() + self.period() / 2).min(self.max_margin);
                if std::mem::take(&mut self.floor_lowered) {
                    self.floor_hold = (self.floor_hold * 2).min(MAX_FLOOR_HOLD);
                }
            }
            self.since_dry = 0;
            self.floor_ticks = 0;
            self.floor_low = usize::MAX;
            self.margin += grow;
            self.grows += u64::from(grow > 0);
            self.window = (self.window * 2).min(MAX_WINDOW);
            self.new_window();
            return if grow > 0 {
                Move::Grow(grow)
            } else {
                Move::Hold
            };
        }
        self.since_dry = self.since_dry.saturating_add(1);
        self.relax_floor(low);
        if let Some(low) = low {
            self.window_low = self.window_low.min(low);
            self.backlog_low = self.backlog_low.min(low);
        }
        self.backlog_ticks += 1;
        if self.backlog_ticks >= BACKLOG_WINDOW {
            let low = self.backlog_low;
            let (period, keep) = (self.period(), self.keep());
            self.backlog_low = usize::MAX;
            self.backlog_ticks = 0;
            if low != usize::MAX && low.saturating_sub(keep) > period {
                let excess = low - keep;
                self.margin = self.margin.saturating_sub(excess);
                self.shrinks += 1;
                self.new_window();
                return Move::Shrink(excess);
            }
        }
        self.ticks += 1;
        if self.ticks < self.window {
            return Move::Hold;
        }
        let low = self.window_low;
        let (period, keep) = (self.period(), self.keep());
        self.new_window();
        if low == usize::MAX || low <= keep + period / 4 {
            return Move::Hold;
        }
        let excess = low - keep;
        let shrink = if excess > period {
            excess
        } else {
            excess.min(self.max_shrink.max(excess / 4))
        };
        self.margin = self.margin.saturating_sub(shrink);
        self.shrinks += 1;
        Move::Shrink(shrink)
    }

    fn new_window(&mut self) {
        self.window_low = usize::MAX;
        self.ticks = 0;
        self.backlog_low = usize::MAX;
        self.backlog_ticks = 0;
        self.period_before = self.period_now;
        self.period_now = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_by_a_period_at_once_and_waits_longer_to_shrink() {
        let mut c = Cushion::new(48_000, 480);
        assert_eq!(c.margin(), 240, "starts at half a period");
        assert_eq!(c.tick(Some(100), 960, true), Move::Grow(960));
        assert_eq!(c.margin(), 1200);
        // The next window is 4 s long: its quiet ticks hold, the last one shrinks (towards the
        // floor the dropout taught: a quarter period + half a period = 720).
        for _ in 1..2 * BASE_WINDOW {
            assert_eq!(c.tick(Some(1100), 960, false), Move::Hold);
        }
        assert_eq!(
            c.tick(Some(1100), 960, false),
            Move::Shrink(96),
            "2 ms at most near the aim"
        );
        assert_eq!(c.margin(), 1104);
        assert_eq!(
            steady(160, 100, BASE_WINDOW),
            Move::Shrink(60),
            "down to a quarter period"
        );
        assert_eq!(
            steady(480, 5000, BACKLOG_WINDOW),
            Move::Shrink(4880),
            "a backlog beyond a period goes after 1 s, down to a quarter period"
        );
        assert_eq!(
            steady(480, 560, BASE_WINDOW),
            Move::Shrink(110),
            "within a period: a quarter of the excess"
        );
    }

    /// An allowance for late ticks is kept beyond the quarter period: a steady device's
    /// excess is given back down to both.
    #[test]
    fn an_allowance_for_late_ticks_is_kept() {
        // keep = 40 + 160: an excess of 100 (within a period) loses 2 ms at most.
        assert_eq!(steady_allowing(160, 300, 160), Move::Shrink(96));
        assert_eq!(
            steady_allowing(160, 240, 160),
            Move::Hold,
            "within keep and a quarter period"
        );
        assert_eq!(
            steady(160, 240, BASE_WINDOW),
            Move::Shrink(200),
            "without the allowance, 200 beyond a quarter period is a backlog"
        );
    }

    fn steady_allowing(period: usize, margin: usize, allowance: usize) -> Move {
        let mut c = Cushion::new(48_000, period);
        c.allow(allowance);
        for _ in 1..BASE_WINDOW {
            c.tick(Some(margin), period, false);
        }
        c.tick(Some(margin), period, false)
    }

    /// A new cushion for a device of `period` samples at 48 kHz after `ticks` steady ticks
    /// with `margin` samples left each time: the last tick's move.
    fn steady(period: usize, margin: usize, ticks: u32) -> Move {
        let mut c = Cushion::new(48_000, period);
        for _ in 1..ticks {
            c.tick(Some(margin), period, false);
        }
        c.tick(Some(margin), period, false)
    }

    /// A backlog goes after 1 s even while a dropout has made the shrink window 4 s long.
    #[test]
    fn a_backlog_goes_within_a_second_whatever_the_window() {
        let mut c = Cushion::new(48_000, 480);
        assert_eq!(
            c.tick(Some(0), 480, true),
            Move::Grow(480),
            "ran dry: 4 s window"
        );
        for _ in 1..BACKLOG_WINDOW {
            assert_eq!(c.tick(Some(3000), 480, false), Move::Hold);
        }
        assert_eq!(
            c.tick(Some(3000), 480, false),
            Move::Shrink(2640),
            "down to the floor the dropout taught (a quarter + half a period) after 1 s"
        );
        // Within a period of the aim the 4 s window's gentle shrink applies.
        for _ in 1..2 * BASE_WINDOW {
            assert_eq!(c.tick(Some(500), 480, false), Move::Hold);
        }
        assert_eq!(c.tick(Some(500), 480, false), Move::Shrink(96));
    }

    /// A dropout raises the least margin a shrink leaves by half a period; it stays while
    /// the margin is used, and comes down 2 ms after a minute in which it was not.
    #[test]
    fn dropouts_raise_the_floor_that_only_a_quiet_minute_lowers() {
        let mut c = Cushion::new(48_000, 480);
        assert_eq!(c.keep(), 120, "a quarter period");
        c.tick(Some(0), 480, true);
        assert_eq!(c.keep(), 360);
        c.tick(Some(0), 480, true);
        assert_eq!(c.keep(), 360, "a burst of dropouts raises it once");
        for _ in 0..BACKLOG_WINDOW {
            c.tick(Some(400), 480, false);
        }
        c.tick(Some(0), 480, true);
        assert_eq!(
            c.keep(),
            600,
            "each dropout a second apart adds half a period"
        );
        // A margin that stays within a quarter period above the floor holds, however long.
        for _ in 0..(2 * FLOOR_HOLD) {
            assert_eq!(c.tick(Some(500), 480, false), Move::Hold);
        }
        assert_eq!(
            c.keep(),
            408,
            "two quiet minutes: 2 ms less each (600, 504, 408)"
        );
        // A minute in which a delay used more than half the floor keeps it.
        let mut c = two_dropouts_a_second_apart();
        for i in 0..FLOOR_HOLD {
            c.tick(
                Some(if i == 20 * TICKS_PER_SECOND { 200 } else { 600 }),
                480,
                false,
            );
        }
        assert_eq!(c.keep(), 600, "a late callback used the floor: kept");
    }

    /// A cushion of 10 ms periods at 48 kHz that ran dry twice, a second apart: its floor
    /// 600 samples (a quarter period and twice half a period).
    fn two_dropouts_a_second_apart() -> Cushion {
        let mut c = Cushion::new(48_000, 480);
        c.tick(Some(0), 480, true);
        for _ in 0..BACKLOG_WINDOW {
            c.tick(Some(400), 480, false);
        }
        c.tick(Some(0), 480, true);
        c
    }

    /// A dropout after the floor came down doubles how long the next floor is held.
    #[test]
    fn a_dropout_after_the_floor_came_down_holds_the_next_one_longer() {
        let mut c = Cushion::new(48_000, 480);
        c.tick(Some(0), 480, true);
        for _ in 0..FLOOR_HOLD {
            c.tick(Some(500), 480, false);
        }
        assert_eq!(c.keep(), 264, "a quiet minute: 360 − 96");
        // The delay comes back at once: the floor it needs is learned anew and held two
        // minutes.
        c.tick(Some(0), 480, true);
        assert_eq!(c.keep(), 504);
        for _ in 0..(2 * FLOOR_HOLD - 1) {
            c.tick(Some(600), 480, false);
        }
        assert_eq!(c.keep(), 504, "held two minutes");
        c.tick(Some(600), 480, false);
        assert_eq!(c.keep(), 408);
        // Dropouts while the floor has not come down (a new delay, a burst) keep the hold.
        let mut c = two_dropouts_a_second_apart();
        for _ in 0..FLOOR_HOLD {
            c.tick(Some(700), 480, false);
        }
        assert_eq!(c.keep(), 504, "one minute: 600 − 96");
    }

    #[test]
    fn holds_when_the_margin_is_within_half_a_period() {
        let mut c = Cushion::new(48_000, 480);
        for _ in 0..20 * TICKS_PER_SECOND {
            assert_eq!(c.tick(Some(240), 480, false), Move::Hold);
        }
        assert_eq!(c.moves(), (0, 0));
        // No callback at all (paused device): nothing to learn, nothing to do.
        for _ in 0..20 * TICKS_PER_SECOND {
            assert_eq!(c.tick(None, 0, false), Move::Hold);
        }
    }

    #[test]
    fn growth_stops_at_80_ms() {
        let mut c = Cushion::new(48_000, 480);
        for _ in 0..20 {
            c.tick(Some(0), 1920, true);
        }
        assert_eq!(c.margin(), 3840);
        assert_eq!(c.tick(Some(0), 1920, true), Move::Hold);
    }

    #[test]
    fn the_period_is_the_largest_callback_of_the_last_two_windows() {
        let mut c = Cushion::new(48_000, 480);
        assert_eq!(c.period(), 480, "the hint before any callback");
        c.tick(Some(1000), 2048, false); // one large first callback
        for _ in 1..BASE_WINDOW {
            c.tick(Some(1000), 512, false);
        }
        assert_eq!(c.period(), 2048, "still this window's largest");
        for _ in 0..BASE_WINDOW {
            c.tick(Some(1000), 512, false);
        }
        assert_eq!(c.period(), 512, "forgotten two windows later");
    }
}
