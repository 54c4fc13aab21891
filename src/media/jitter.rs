//! Adaptive jitter buffer: RTP payloads in as they arrive, one packet out each time the
//! playout has played the one before (every packetisation time).
//!
//! Owns, for one call leg's receive direction, the reordering of payloads by
//! RTP timestamp, the choice of playout delay (the *target*, following the
//! measured arrival jitter), the compensation of clock drift between the far
//! end and the playout clock, and the decision of when to play, conceal,
//! stretch, drop or re-fill. It does not decode: [`Playout`] tells the codec
//! what to do. It must not read clocks (time is the `now` argument), allocate
//! after [`JitterBuffer::new`], log, or panic on any packet.
//!
//! ```text
//!  push(now, seq, ts, ssrc, payload)
//!    │ fits the current stream? (same SSRC, seq and ts move the same way,
//!    │ arrival consistent with the timestamp)  no ─► probation: reset only once
//!    │                                               a second packet follows it
//!    │ slot = round((ts − ts of the stream's first packet) / samples_per_frame)
//!    ▼
//!  ┌─ slots (frame mod N, 1500 B each, allocated in `new`) ─────────────────┐
//!  │ played │ played │ ▶cursor: ready │ hole │ ready │ ready │ empty │ …    │
//!  └────────────────────────────────────────────────────────────────────────┘
//!  pop(now), once per packet played (each tick while filling):
//!    delay D  = now − (when the cursor packet would arrive on the fastest path)
//!             = now − cursor × packet length − min transit over the last second
//!    target T = 97th percentile of (transit − min transit), a histogram with
//!               forgetting (≈ 2 s memory), + 5 ms, clamped to [min_ms, max_ms]
//!    D < T                  → Missed { next: None }, cursor stays (stretch)
//!    cursor frame ready     → Packet; when D > T + 30 ms and the next frame is
//!                             ready, drop the older one (shrink, clock drift)
//!    cursor frame missing   → Missed { next }, cursor advances (loss)
//!    nothing for 300 ms     → Filling until the next packet has waited T
//! ```
//!
//! A packet is late exactly when its delay relative to the fastest one exceeds
//! D, so keeping D ≥ T keeps late packets to the tail the percentile leaves
//! out. The delay grows at once (one stretched frame per tick) when the
//! percentile rises; it shrinks by at most one dropped frame every 200 ms
//! (every 40 ms while more than 100 ms too deep), and the percentile itself
//! forgets a jittery past over several seconds. A single very late packet
//! does not move the percentile; eight unusable packets in a row (late or
//! duplicate: the delay jumped beyond what stretching can follow) restart
//! the playout on the stream.
//!
//! Clock drift needs nothing special: a far end that is fast makes D creep up
//! until a frame is dropped, one that is slow makes D creep down until a frame
//! is stretched (about one per 200 frames at 0.5 %).

use std::time::Instant;

/// Largest payload stored; bigger ones are refused (counted in
/// [`JitterStats::rejected`]), never truncated.
pub const MAX_PAYLOAD: usize = 1500;

/// Extra slots beyond the largest delay, for early packets and reordering.
const EXTRA_SLOTS: usize = 16;
/// Upper bound on the number of slots, whatever the configuration.
const MAX_SLOTS: usize = 1024;
/// Largest `max_ms` honoured.
const MAX_DELAY_LIMIT_MS: u32 = 2000;

/// Width of one bin of the relative-delay histogram.
const BIN_MS: f64 = 5.0;
/// Upper bound on the number of histogram bins.
const MAX_BINS: usize = 512;
/// Weight kept by the histogram on each packet (memory ≈ 1 / (1 − f) packets).
const FORGET: f64 = 0.99;
/// Share of packets allowed above the delay percentile.
const TAIL: f64 = 0.03;
/// Headroom added to the delay percentile.
const MARGIN_MS: f64 = 5.0;

/// Drop a frame when the delay exceeds the target by more than this.
const DROP_ABOVE_MS: f64 = 30.0;
/// Least playout time between two drops (ms).
const DROP_INTERVAL_MS: f64 = 200.0;
/// Least playout time between two drops when the delay is far above the target (ms).
const FAST_DROP_INTERVAL_MS: f64 = 40.0;
/// "Far above the target".
const FAR_ABOVE_MS: f64 = 100.0;

/// Transit values older than this do not count for the minimum.
const WINDOW_MS: f64 = 1000.0;
/// Transit values remembered (more than one second of 10 ms packets).
const WINDOW_LEN: usize = 128;

/// With nothing buffered and no packet for this long, go back to filling.
const DRY_MS: f64 = 300.0;
/// A stream silent for this long is replaced by a new one without probation.
const STALE_MS: f64 = 1000.0;
/// Consecutive late or duplicate packets that restart the playout.
const LATE_RESTART: u32 = 8;
/// Transit further than this from the stream's means a timestamp jump.
const JUMP_MS: f64 = 1000.0;
/// A sequence step this large (either way) is a discontinuity.
const SEQ_JUMP: i32 = 1000;
/// A probation packet is confirmed by one at most this many sequence numbers away.
const PROBATION_SEQ: i32 = 4;
/// ... and within this time.
const PROBATION_MS: f64 = 1000.0;
/// After a reset, packets of the previous stream are strays for this long.
const GUARD_MS: f64 = 1000.0;
/// "Of the previous stream": within this many sequence numbers of its last.
const GUARD_SEQ: i32 = 200;

/// Playout delay bounds, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Smallest target delay (default 20).
    pub min_ms: u32,
    /// Largest target delay (default 200; at most 2000 is honoured).
    pub max_ms: u32,
    /// Target delay at the start of a stream and after a reset (default 40).
    pub start_ms: u32,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            min_ms: 20,
            max_ms: 200,
            start_ms: 40,
        }
    }
}

/// What to play for one tick; borrows the payload from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Playout<'a> {
    /// The frame to decode.
    Packet(&'a [u8]),
    /// No frame to decode this tick: conceal. `next` is the payload of the
    /// following frame when it is already buffered (for Opus in-band FEC).
    /// Also returned, with `next: None`, to stretch the delay when it must
    /// grow (the frame due then plays on a later tick).
    Missed {
        /// The following frame's payload, if buffered.
        next: Option<&'a [u8]>,
    },
    /// Nothing to play yet (start, after a reset or a long silence): play silence.
    Filling,
}

/// Counters and gauges of one buffer, for call statistics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JitterStats {
    /// Current target delay (ms).
    pub target_ms: u32,
    /// Buffered audio from the next frame due to the newest one (ms).
    pub depth_ms: u32,
    /// Delay of the fastest packet at the last tick: time from its arrival
    /// (on the fastest path) to its playout (ms).
    pub delay_ms: u32,
    /// Every call to `push`.
    pub received: u64,
    /// Ticks answered with [`Playout::Packet`].
    pub played: u64,
    /// Ticks answered with [`Playout::Missed`] for a lost (or too late) frame.
    pub concealed: u64,
    /// Ticks answered with [`Playout::Missed`] to grow the delay (the frame
    /// due is kept): when the target rises or the far end's clock is slow.
    pub expanded: u64,
    /// Ticks answered with [`Playout::Filling`].
    pub filling: u64,
    /// Frames thrown away unplayed to cut the delay (target fell, far end's
    /// clock fast, or the playout clock stalled).
    pub dropped: u64,
    /// Packets that arrived after their frame's tick.
    pub late: u64,
    /// Packets whose frame was already buffered or played.
    pub duplicates: u64,
    /// Packets fitting neither the current stream nor a confirmed new one
    /// (a lone packet of another SSRC, stragglers of a replaced stream).
    pub stray: u64,
    /// Packets refused for their size (empty or over [`MAX_PAYLOAD`]).
    pub rejected: u64,
    /// Restarts: new SSRC, sequence or timestamp jump, or playout lost track.
    pub resets: u64,
    /// Interarrival jitter, RFC 3550 §6.4.1 estimate (ms).
    pub jitter_ms: f32,
}

/// An adaptive jitter buffer for one received RTP stream of packets of one length.
pub struct JitterBuffer {
    clock_rate: u32,
    samples_per_frame: i64,
    /// The packet length the slots were counted for: the shortest taken.
    shortest: i64,
    frame_ms: f64,
    min_ms: f64,
    max_ms: f64,
    start_ms: f64,
    /// `slots.len()` payloads of [`MAX_PAYLOAD`] bytes, back to back.
    data: Vec<u8>,
    slots: Vec<Slot>,
    /// Slots in state `Ready`.
    ready: usize,
    /// Highest frame stored since the last restart.
    newest: Option<i64>,
    phase: Phase,
    /// The frame the cursor last passed (played, concealed or dropped).
    last_played: Option<i64>,
    stream: Option<Stream>,
    previous: Option<Previous>,
    candidate: Option<Candidate>,
    candidate_data: Vec<u8>,
    window: [(f64, f64); WINDOW_LEN],
    window_len: usize,
    window_next: usize,
    /// Minimum transit over the window (ms); the stream's reference.
    min_transit: f64,
    has_transit: bool,
    /// Relative-delay histogram (sums to 1).
    hist: Vec<f64>,
    /// RFC 3550 jitter (ms) and the previous exact transit.
    jitter: f64,
    last_exact_transit: Option<f64>,
    late_run: u32,
    ticks_since_drop: u32,
    origin: Option<Instant>,
    delay_ms: f64,
    stats: JitterStats,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SlotState {
    Empty,
    Ready,
    Played,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    frame: i64,
    len: usize,
    state: SlotState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting; the cursor is the earliest frame buffered, if any.
    Filling(Option<i64>),
    /// Playing; the cursor is the next frame due.
    Playing(i64),
}

/// The stream being played and how its timestamps unwrap.
#[derive(Debug, Clone, Copy)]
struct Stream {
    ssrc: u32,
    /// Highest timestamp seen and its value relative to the first packet's.
    last_ts: u32,
    last_ext: i64,
    /// Sequence number of that packet.
    highest_seq: u16,
    last_arrival: f64,
}

#[derive(Debug, Clone, Copy)]
struct Previous {
    ssrc: u32,
    seq: u16,
    until: f64,
}

#[derive(Debug, Clone, Copy)]
struct Packet {
    seq: u16,
    ts: u32,
    ssrc: u32,
    at: f64,
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    packet: Packet,
    len: usize,
}

enum Fit {
    Current,
    Previous,
    Foreign,
}

enum Place {
    Stored,
    Late,
    Duplicate,
}

impl JitterBuffer {
    /// Creates an empty buffer for a stream with this RTP clock rate (Hz) and
    /// packet length (timestamp units per packet), allocating every slot now: enough
    /// for packets of this length or longer ([`JitterBuffer::reframe`]).
    /// Out-of-order bounds are repaired: `min ≤ start ≤ max ≤ 2000`.
    pub fn new(clock_rate: u32, samples_per_frame: u32, config: JitterConfig) -> JitterBuffer {
        let clock_rate = if clock_rate == 0 { 8000 } else { clock_rate };
        let samples_per_frame = if samples_per_frame == 0 {
            (clock_rate / 50).max(1)
        } else {
            samples_per_frame
        };
        let frame_ms = f64::from(samples_per_frame) * 1000.0 / f64::from(clock_rate);
        let max = config.max_ms.clamp(1, MAX_DELAY_LIMIT_MS);
        let min = config.min_ms.min(max);
        let start = config.start_ms.clamp(min, max);
        let (min_ms, max_ms, start_ms) = (f64::from(min), f64::from(max), f64::from(start));
        let span = (max_ms + DROP_ABOVE_MS + FAR_ABOVE_MS) / frame_ms;
        let n_slots = (span.ceil() as usize + EXTRA_SLOTS).min(MAX_SLOTS);
        let n_bins = (((max_ms + 2.0 * BIN_MS) / BIN_MS).ceil() as usize).clamp(2, MAX_BINS);
        let mut jb = JitterBuffer {
            clock_rate,
            samples_per_frame: i64::from(samples_per_frame),
            shortest: i64::from(samples_per_frame),
            frame_ms,
            min_ms,
            max_ms,
            start_ms,
            data: vec![0; n_slots * MAX_PAYLOAD],
            slots: vec![
                Slot {
                    frame: i64::MIN,
                    len: 0,
                    state: SlotState::Empty,
                };
                n_slots
            ],
            ready: 0,
            newest: None,
            phase: Phase::Filling(None),
            last_played: None,
            stream: None,
            previous: None,
            candidate: None,
            candidate_data: vec![0; MAX_PAYLOAD],
            window: [(0.0, 0.0); WINDOW_LEN],
            window_len: 0,
            window_next: 0,
            min_transit: 0.0,
            has_transit: false,
            hist: vec![0.0; n_bins],
            jitter: 0.0,
            last_exact_transit: None,
            late_run: 0,
            ticks_since_drop: 0,
            origin: None,
            delay_ms: 0.0,
            stats: JitterStats::default(),
        };
        jb.reset_histogram();
        jb
    }

    /// Stores one RTP payload. Never panics; copies the payload into a
    /// pre-allocated slot. Empty payloads and payloads over [`MAX_PAYLOAD`]
    /// bytes are refused; duplicates, late packets and strays are counted
    /// and dropped; a new SSRC or a sequence/timestamp jump restarts the
    /// buffer once a second packet confirms it.
    pub fn push(&mut self, now: Instant, sequence: u16, timestamp: u32, ssrc: u32, payload: &[u8]) {
        let at = self.ms(now);
        self.stats.received += 1;
        if payload.is_empty() || payload.len() > MAX_PAYLOAD {
            self.stats.rejected += 1;
            return;
        }
        let packet = Packet {
            seq: sequence,
            ts: timestamp,
            ssrc,
            at,
        };
        match self.fit(&packet) {
            Fit::Current => self.accept(packet, payload),
            Fit::Previous => self.stats.stray += 1,
            Fit::Foreign => {
                let stale = self.stream.is_none_or(|s| {
                    at - s.last_arrival > STALE_MS || at < s.last_arrival - STALE_MS
                });
                if stale {
                    self.candidate = None;
                    self.new_stream(packet);
                    self.accept(packet, payload);
                } else if let Some(c) = self
                    .candidate
                    .filter(|c| confirms(c, &packet, self.clock_rate))
                {
                    self.candidate = None;
                    // Counted as a stray while on probation; it was not one.
                    self.stats.stray = self.stats.stray.saturating_sub(1);
                    self.new_stream(c.packet);
                    let data = std::mem::take(&mut self.candidate_data);
                    self.accept(c.packet, &data[..c.len.min(data.len())]);
                    self.candidate_data = data;
                    self.accept(packet, payload);
                } else {
                    self.stats.stray += 1;
                    self.candidate_data[..payload.len()].copy_from_slice(payload);
                    self.candidate = Some(Candidate {
                        packet,
                        len: payload.len(),
                    });
                }
            }
        }
    }

    /// Called by the playout clock each time it needs the next packet (or, while
    /// filling, each tick): the packet to play now, or what to do instead.
    pub fn pop(&mut self, now: Instant) -> Playout<'_> {
        let now_ms = self.ms(now);
        self.ticks_since_drop = self.ticks_since_drop.saturating_add(1);
        let target = self.target();
        match self.phase {
            Phase::Filling(None) => {
                self.stats.filling += 1;
                Playout::Filling
            }
            Phase::Filling(Some(c)) => {
                let delay = self.delay_at(now_ms, c);
                if delay >= target {
                    self.phase = Phase::Playing(c);
                    self.play(c, delay, target)
                } else {
                    self.delay_ms = delay;
                    self.stats.filling += 1;
                    Playout::Filling
                }
            }
            Phase::Playing(c) => {
                let silent = self.stream.is_none_or(|s| now_ms - s.last_arrival > DRY_MS);
                if self.ready == 0 && silent {
                    // A long gap: stop concealing and wait for the next talk
                    // spurt, measuring its transit afresh.
                    self.phase = Phase::Filling(None);
                    self.clear_window();
                    self.stats.filling += 1;
                    return Playout::Filling;
                }
                let delay = self.delay_at(now_ms, c);
                self.play(c, delay, target)
            }
        }
    }

    /// Counters and the current target, depth and delay.
    pub fn stats(&self) -> JitterStats {
        let cursor = match self.phase {
            Phase::Filling(c) => c,
            Phase::Playing(c) => Some(c),
        };
        let depth = match (cursor, self.newest) {
            (Some(c), Some(n)) if self.ready > 0 && n >= c => (n - c + 1) as f64 * self.frame_ms,
            _ => 0.0,
        };
        JitterStats {
            target_ms: self.target().round() as u32,
            depth_ms: depth.round() as u32,
            delay_ms: self.delay_ms.max(0.0).round() as u32,
            jitter_ms: self.jitter as f32,
            ..self.stats
        }
    }

    /// Plays the cursor frame `c` (or stretches, drops, conceals).
    fn play(&mut self, c: i64, delay: f64, target: f64) -> Playout<'_> {
        self.delay_ms = delay;
        if delay < target {
            self.stats.expanded += 1;
            return Playout::Missed { next: None };
        }
        let Some(mut idx) = self.ready_slot(c) else {
            self.stats.concealed += 1;
            self.advance_past(c);
            return Playout::Missed {
                next: self.ready_slot(c + 1).map(|i| self.payload(i)),
            };
        };
        let mut c = c;
        let interval = if delay > target + FAR_ABOVE_MS {
            FAST_DROP_INTERVAL_MS
        } else {
            DROP_INTERVAL_MS
        };
        let since_drop = f64::from(self.ticks_since_drop) * self.frame_ms;
        if delay > target + DROP_ABOVE_MS && since_drop >= interval - 0.5 {
            if let Some(next) = self.ready_slot(c + 1) {
                self.slots[idx].state = SlotState::Empty;
                self.ready = self.ready.saturating_sub(1);
                self.stats.dropped += 1;
                self.ticks_since_drop = 0;
                c += 1;
                idx = next;
            }
        }
        self.slots[idx].state = SlotState::Played;
        self.ready = self.ready.saturating_sub(1);
        self.stats.played += 1;
        self.advance_past(c);
        Playout::Packet(self.payload(idx))
    }

    /// Moves the cursor just past frame `c`.
    fn advance_past(&mut self, c: i64) {
        self.phase = Phase::Playing(c + 1);
        self.last_played = Some(c);
    }

    /// How a packet relates to the current stream.
    fn fit(&self, p: &Packet) -> Fit {
        let Some(s) = self.stream else {
            return Fit::Foreign;
        };
        if p.ssrc == s.ssrc {
            let dseq = i32::from(p.seq.wrapping_sub(s.highest_seq) as i16);
            let dts = i64::from(p.ts.wrapping_sub(s.last_ts) as i32);
            let same_way = match dseq.cmp(&0) {
                std::cmp::Ordering::Greater => dts > 0,
                std::cmp::Ordering::Less => dts < 0,
                std::cmp::Ordering::Equal => dts == 0,
            };
            if same_way && dseq.abs() < SEQ_JUMP {
                let frame = self.frame_of(s.last_ext + dts);
                let transit = p.at - frame as f64 * self.frame_ms;
                if !self.has_transit || (transit - self.min_transit).abs() <= JUMP_MS {
                    return Fit::Current;
                }
            }
        }
        if let Some(prev) = self.previous {
            let dseq = i32::from(p.seq.wrapping_sub(prev.seq) as i16);
            if p.ssrc == prev.ssrc && dseq.abs() <= GUARD_SEQ && p.at < prev.until {
                return Fit::Previous;
            }
        }
        Fit::Foreign
    }

    /// Forgets everything buffered and measured and starts a stream at `first`.
    fn new_stream(&mut self, first: Packet) {
        if let Some(s) = self.stream {
            self.previous = Some(Previous {
                ssrc: s.ssrc,
                seq: s.highest_seq,
                until: first.at + GUARD_MS,
            });
        }
        self.restart();
        self.stream = Some(Stream {
            ssrc: first.ssrc,
            last_ts: first.ts,
            last_ext: 0,
            highest_seq: first.seq,
            last_arrival: first.at,
        });
    }

    /// Takes packets of `samples_per_frame` timestamp units from now on (the far end changed
    /// its packetisation): a restart, as for a new stream. Packets shorter than the one
    /// the buffer was created for would get fewer slots than their delay needs; they are
    /// refused (false).
    pub fn reframe(&mut self, samples_per_frame: u32) -> bool {
        let spf = i64::from(samples_per_frame);
        if spf == self.samples_per_frame {
            return true;
        }
        if spf < self.shortest {
            return false;
        }
        self.samples_per_frame = spf;
        self.frame_ms = f64::from(samples_per_frame) * 1000.0 / f64::from(self.clock_rate);
        self.restart();
        self.stream = None;
        self.previous = None;
        self.candidate = None;
        true
    }

    /// Empties the slots and the delay measurements; the stream identity stays.
    fn restart(&mut self) {
        if self.stream.is_some() {
            self.stats.resets += 1;
        }
        for slot in &mut self.slots {
            slot.state = SlotState::Empty;
        }
        self.ready = 0;
        self.newest = None;
        self.phase = Phase::Filling(None);
        self.last_played = None;
        self.clear_window();
        self.has_transit = false;
        self.last_exact_transit = None;
        self.late_run = 0;
        self.ticks_since_drop = 0;
        self.reset_histogram();
    }

    /// Takes a packet of the current stream.
    fn accept(&mut self, p: Packet, payload: &[u8]) {
        let Some(mut s) = self.stream else {
            return;
        };
        let dts = i64::from(p.ts.wrapping_sub(s.last_ts) as i32);
        let ext = s.last_ext + dts;
        if dts > 0 {
            s.last_ts = p.ts;
            s.last_ext = ext;
            s.highest_seq = p.seq;
        }
        s.last_arrival = s.last_arrival.max(p.at);
        self.stream = Some(s);
        let frame = self.frame_of(ext);
        let place = match self.place(frame, payload) {
            Place::Stored => Place::Stored,
            other => {
                self.late_run += 1;
                if self.late_run >= LATE_RESTART {
                    // The playout lost track of this stream (its delay jumped
                    // further than the target can follow): start over on it.
                    self.restart();
                    self.place(frame, payload)
                } else {
                    other
                }
            }
        };
        match place {
            Place::Stored => self.late_run = 0,
            Place::Late => self.stats.late += 1,
            Place::Duplicate => {
                self.stats.duplicates += 1;
                return;
            }
        }
        self.measure(p.at, frame, ext);
    }

    /// Puts a frame into its slot, moving the cursor as the phase requires.
    fn place(&mut self, frame: i64, payload: &[u8]) -> Place {
        let n = self.slots.len() as i64;
        if self.last_played.is_some_and(|lp| frame <= lp) {
            return self.late_or_duplicate(frame);
        }
        match self.phase {
            Phase::Filling(None) => self.phase = Phase::Filling(Some(frame)),
            Phase::Filling(Some(c)) if frame < c => {
                if self.newest.is_some_and(|newest| newest - frame >= n) {
                    return Place::Late;
                }
                self.phase = Phase::Filling(Some(frame));
            }
            Phase::Filling(Some(c)) | Phase::Playing(c) => {
                if frame < c {
                    return self.late_or_duplicate(frame);
                }
                if frame - c >= n {
                    // Far ahead of the cursor (the playout clock stalled):
                    // skip the oldest frames to make room.
                    self.skip_to(c, frame - n + 1);
                }
            }
        }
        let idx = self.index(frame);
        let slot = self.slots[idx];
        if slot.frame == frame && slot.state != SlotState::Empty {
            return Place::Duplicate;
        }
        if slot.state == SlotState::Ready {
            // Cannot happen while every ready frame lies within N of the
            // cursor; counted rather than trusted.
            self.ready = self.ready.saturating_sub(1);
            self.stats.dropped += 1;
        }
        let start = idx * MAX_PAYLOAD;
        let len = payload.len().min(MAX_PAYLOAD);
        self.data[start..start + len].copy_from_slice(&payload[..len]);
        self.slots[idx] = Slot {
            frame,
            len,
            state: SlotState::Ready,
        };
        self.ready += 1;
        self.newest = Some(self.newest.map_or(frame, |n| n.max(frame)));
        Place::Stored
    }

    /// Moves the cursor from `from` to `to`, dropping the frames in between.
    fn skip_to(&mut self, from: i64, to: i64) {
        let n = self.slots.len() as i64;
        for frame in from.max(to - n)..to {
            if let Some(idx) = self.ready_slot(frame) {
                self.slots[idx].state = SlotState::Empty;
                self.ready = self.ready.saturating_sub(1);
                self.stats.dropped += 1;
            }
        }
        match self.phase {
            Phase::Filling(_) => self.phase = Phase::Filling(Some(to)),
            Phase::Playing(_) => self.advance_past(to - 1),
        }
    }

    fn late_or_duplicate(&self, frame: i64) -> Place {
        let slot = self.slots[self.index(frame)];
        if slot.frame == frame && slot.state != SlotState::Empty {
            Place::Duplicate
        } else {
            Place::Late
        }
    }

    /// Updates transit minimum, delay histogram and RFC 3550 jitter.
    fn measure(&mut self, at: f64, frame: i64, ext: i64) {
        let transit = at - frame as f64 * self.frame_ms;
        self.window[self.window_next] = (at, transit);
        self.window_next = (self.window_next + 1) % WINDOW_LEN;
        self.window_len = (self.window_len + 1).min(WINDOW_LEN);
        let mut min = transit;
        for &(t, tr) in self.window.iter().take(self.window_len) {
            if at - t <= WINDOW_MS && tr < min {
                min = tr;
            }
        }
        self.min_transit = min;
        self.has_transit = true;
        let relative = transit - min;
        let last = self.hist.len() - 1;
        let bin = ((relative / BIN_MS).max(0.0) as usize).min(last);
        for h in &mut self.hist {
            *h *= FORGET;
            if *h < 1e-12 {
                *h = 0.0;
            }
        }
        self.hist[bin] += 1.0 - FORGET;
        let exact = at - ext as f64 * 1000.0 / f64::from(self.clock_rate);
        if let Some(prev) = self.last_exact_transit {
            self.jitter += ((exact - prev).abs() - self.jitter) / 16.0;
        }
        self.last_exact_transit = Some(exact);
    }

    fn clear_window(&mut self) {
        self.window_len = 0;
        self.window_next = 0;
    }

    /// All the histogram's weight on the start delay.
    fn reset_histogram(&mut self) {
        for h in &mut self.hist {
            *h = 0.0;
        }
        let last = self.hist.len() - 1;
        let bin = ((self.start_ms - MARGIN_MS) / BIN_MS).ceil() as isize - 1;
        self.hist[bin.clamp(0, last as isize) as usize] = 1.0;
    }

    /// Target delay: the relative-delay percentile plus headroom, clamped.
    fn target(&self) -> f64 {
        let mut tail = 0.0;
        let mut bin = 0;
        for (b, h) in self.hist.iter().enumerate().rev() {
            tail += h;
            if tail > TAIL {
                bin = b;
                break;
            }
        }
        let percentile = (bin + 1) as f64 * BIN_MS;
        (percentile + MARGIN_MS).clamp(self.min_ms, self.max_ms)
    }

    /// Delay of the fastest packet of frame `c` if it played at `now_ms`.
    fn delay_at(&self, now_ms: f64, c: i64) -> f64 {
        now_ms - c as f64 * self.frame_ms - self.min_transit
    }

    /// Frame slot of a timestamp relative to the stream's first, rounded.
    fn frame_of(&self, ext: i64) -> i64 {
        (ext + self.samples_per_frame / 2).div_euclid(self.samples_per_frame)
    }

    fn index(&self, frame: i64) -> usize {
        frame.rem_euclid(self.slots.len() as i64) as usize
    }

    fn ready_slot(&self, frame: i64) -> Option<usize> {
        let idx = self.index(frame);
        let slot = self.slots[idx];
        (slot.frame == frame && slot.state == SlotState::Ready).then_some(idx)
    }

    fn payload(&self, idx: usize) -> &[u8] {
        let start = idx * MAX_PAYLOAD;
        &self.data[start..start + self.slots[idx].len.min(MAX_PAYLOAD)]
    }

    /// Milliseconds since the first instant this buffer saw.
    fn ms(&mut self, now: Instant) -> f64 {
        let origin = *self.origin.get_or_insert(now);
        match now.checked_duration_since(origin) {
            Some(d) => d.as_secs_f64() * 1000.0,
            None => -(origin.saturating_duration_since(now).as_secs_f64() * 1000.0),
        }
    }
}

/// Whether `p` follows the probation candidate closely enough to be the
/// same new stream.
fn confirms(c: &Candidate, p: &Packet, clock_rate: u32) -> bool {
    let c = c.packet;
    let dseq = i32::from(p.seq.wrapping_sub(c.seq) as i16);
    let dts = i64::from(p.ts.wrapping_sub(c.ts) as i32);
    c.ssrc == p.ssrc
        && (p.at - c.at).abs() <= PROBATION_MS
        && (1..=PROBATION_SEQ).contains(&dseq.abs())
        && dts.signum() == i64::from(dseq.signum())
        && dts.abs() <= i64::from(clock_rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    const CLOCK: u32 = 48_000;
    const SPF: u32 = 960;

    /// A tick's outcome, owned: payloads are reduced to the id they carry.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Out {
        Play(u32),
        Miss(Option<u32>),
        Fill,
    }

    fn id_of(p: &[u8]) -> u32 {
        match p {
            [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => u32::MAX,
        }
    }

    fn owned(p: Playout<'_>) -> Out {
        match p {
            Playout::Packet(p) => Out::Play(id_of(p)),
            Playout::Missed { next } => Out::Miss(next.map(id_of)),
            Playout::Filling => Out::Fill,
        }
    }

    #[derive(Debug, Clone, Copy)]
    struct Arrival {
        at: f64,
        seq: u16,
        ts: u32,
        ssrc: u32,
        id: u32,
    }

    /// Packets `id0..id0+n`, sent every `interval` ms from `start` with
    /// consecutive sequence numbers and timestamps, arriving `delay(i)` ms
    /// after being sent (`i` counts from 0).
    #[allow(clippy::too_many_arguments)]
    fn stream(
        id0: u32,
        n: u32,
        start: f64,
        interval: f64,
        seq0: u16,
        ts0: u32,
        ssrc: u32,
        mut delay: impl FnMut(u32) -> f64,
    ) -> Vec<Arrival> {
        (0..n)
            .map(|i| Arrival {
                at: start + f64::from(i) * interval + delay(i),
                seq: seq0.wrapping_add(i as u16),
                ts: ts0.wrapping_add(i.wrapping_mul(SPF)),
                ssrc,
                id: id0 + i,
            })
            .collect()
    }

    fn at(t0: Instant, ms: f64) -> Instant {
        t0 + Duration::from_secs_f64(ms.max(0.0) / 1000.0)
    }

    fn push(jb: &mut JitterBuffer, t0: Instant, a: &Arrival) {
        let mut payload = [0xA5u8; 40];
        payload[..4].copy_from_slice(&a.id.to_be_bytes());
        jb.push(at(t0, a.at), a.seq, a.ts, a.ssrc, &payload);
    }

    /// Ticks every `period` ms from `phase` ms, pushing every arrival due at
    /// or before a tick first; `each` sees the tick index, the buffer and the
    /// outcome after every pop.
    fn run(
        jb: &mut JitterBuffer,
        arrivals: &[Arrival],
        ticks: usize,
        period: f64,
        phase: f64,
        each: impl FnMut(usize, &JitterBuffer, Out),
    ) -> Vec<Out> {
        run_ticks(jb, arrivals, ticks, |k| phase + k as f64 * period, each)
    }

    /// As [`run`], with tick `k` at `tick(k)` ms.
    fn run_ticks(
        jb: &mut JitterBuffer,
        arrivals: &[Arrival],
        ticks: usize,
        mut tick: impl FnMut(usize) -> f64,
        mut each: impl FnMut(usize, &JitterBuffer, Out),
    ) -> Vec<Out> {
        let t0 = epoch();
        let mut sorted = arrivals.to_vec();
        sorted.sort_by(|a, b| a.at.total_cmp(&b.at));
        let mut next = 0;
        let mut outs = Vec::with_capacity(ticks);
        for k in 0..ticks {
            let now = tick(k);
            while next < sorted.len() && sorted[next].at <= now {
                push(jb, t0, &sorted[next]);
                next += 1;
            }
            let out = owned(jb.pop(at(t0, now)));
            each(k, jb, out);
            outs.push(out);
        }
        outs
    }

    fn played(outs: &[Out]) -> Vec<u32> {
        outs.iter()
            .filter_map(|o| match o {
                Out::Play(id) => Some(*id),
                _ => None,
            })
            .collect()
    }

    /// Longest run of ticks that did not play a packet, between the first
    /// and the last played packet.
    fn longest_gap(outs: &[Out]) -> usize {
        let first = outs.iter().position(|o| matches!(o, Out::Play(_)));
        let last = outs.iter().rposition(|o| matches!(o, Out::Play(_)));
        let (Some(first), Some(last)) = (first, last) else {
            return usize::MAX;
        };
        outs[first..=last]
            .split(|o| matches!(o, Out::Play(_)))
            .map(<[Out]>::len)
            .max()
            .unwrap_or(0)
    }

    /// Ticks that did not play a packet between the first and the last that did.
    fn holes(outs: &[Out]) -> usize {
        let first = outs
            .iter()
            .position(|o| matches!(o, Out::Play(_)))
            .unwrap_or(0);
        let last = outs
            .iter()
            .rposition(|o| matches!(o, Out::Play(_)))
            .unwrap_or(0);
        outs[first..=last]
            .iter()
            .filter(|o| !matches!(o, Out::Play(_)))
            .count()
    }

    fn strictly_increasing(ids: &[u32]) -> bool {
        ids.windows(2).all(|w| w[0] < w[1])
    }

    /// xorshift64: a seeded, deterministic source of noise.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn opus_buffer() -> JitterBuffer {
        JitterBuffer::new(CLOCK, SPF, JitterConfig::default())
    }

    #[test]
    fn default_config_and_empty_buffer() {
        let config = JitterConfig::default();
        assert_eq!(
            config,
            JitterConfig {
                min_ms: 20,
                max_ms: 200,
                start_ms: 40
            }
        );
        let mut jb = opus_buffer();
        let stats = jb.stats();
        assert_eq!(stats.target_ms, 40);
        assert_eq!((stats.depth_ms, stats.received, stats.played), (0, 0, 0));
        assert_eq!(jb.pop(epoch()), Playout::Filling);
        assert_eq!(jb.stats().filling, 1);
        // Other start delays are honoured too.
        for start in [20, 60, 100, 200] {
            let config = JitterConfig {
                start_ms: start,
                ..JitterConfig::default()
            };
            let jb = JitterBuffer::new(CLOCK, SPF, config);
            assert_eq!(jb.stats().target_ms, start, "start {start}");
        }
    }

    #[test]
    fn in_order_stream_plays_every_packet_in_order_after_the_start_delay() {
        let mut jb = opus_buffer();
        let arrivals = stream(0, 200, 0.0, 20.0, 1000, 5000, 7, |_| 0.0);
        let outs = run(&mut jb, &arrivals, 225, 20.0, 5.0, |k, jb, _| {
            if (3..200).contains(&k) {
                // Frames k−1 (played) .. k+1 arrived: two frames still ahead.
                let s = jb.stats();
                assert_eq!((s.depth_ms, s.delay_ms), (40, 45), "tick {k}: {s:?}");
            }
        });
        // First packet at 0 ms, ticks at 5, 25, 45 ms: it waits 45 ≥ 40 ms.
        let filling = outs.iter().take_while(|o| **o == Out::Fill).count();
        assert_eq!(filling, 2, "{:?}", &outs[..5]);
        assert_eq!(played(&outs), (0..200).collect::<Vec<_>>());
        assert!(outs[2..202].iter().all(|o| matches!(o, Out::Play(_))));
        // After the stream ends: concealment for 300 ms, then filling.
        assert_eq!(outs.last(), Some(&Out::Fill));
        let stats = jb.stats();
        println!("{stats:?}");
        assert_eq!((stats.received, stats.played, stats.late), (200, 200, 0));
        assert_eq!((stats.duplicates, stats.dropped, stats.expanded), (0, 0, 0));
        assert_eq!(stats.resets, 0);
        assert!((11..=16).contains(&stats.concealed), "{stats:?}");
        assert!(stats.jitter_ms < 0.01);
    }

    #[test]
    fn reordering_within_the_depth_is_corrected() {
        let mut jb = opus_buffer();
        // Pairs swapped: every even packet arrives after the odd one after it.
        let arrivals = stream(0, 300, 0.0, 20.0, 7, 123_456, 9, |i| {
            if i % 2 == 0 {
                21.0
            } else {
                0.0
            }
        });
        let outs = run(&mut jb, &arrivals, 310, 20.0, 11.0, |_, _, _| {});
        assert_eq!(played(&outs), (0..300).collect::<Vec<_>>());
        let stats = jb.stats();
        assert_eq!(
            (stats.late, stats.resets, holes(&outs)),
            (0, 0, 0),
            "{stats:?}"
        );
        // Relative delay of 21 ms on half the packets: the target covers it.
        assert!(stats.target_ms >= 30, "{stats:?}");
        assert!(stats.jitter_ms > 5.0, "{stats:?}");
    }

    #[test]
    fn duplicates_are_dropped_and_counted() {
        let mut jb = opus_buffer();
        let mut arrivals = stream(0, 200, 0.0, 20.0, 65_000, 0, 3, |_| 1.0);
        let copies: Vec<_> = arrivals.clone();
        // Every packet twice at once, every tenth once more 300 ms later
        // (after it was played).
        arrivals.extend(copies.iter().copied());
        arrivals.extend(copies.iter().step_by(10).map(|a| Arrival {
            at: a.at + 300.0,
            ..*a
        }));
        let outs = run(&mut jb, &arrivals, 210, 20.0, 3.0, |_, _, _| {});
        assert_eq!(played(&outs), (0..200).collect::<Vec<_>>());
        let stats = jb.stats();
        assert_eq!(stats.duplicates, 220, "{stats:?}");
        assert_eq!(
            (stats.late, stats.resets, holes(&outs)),
            (0, 0, 0),
            "{stats:?}"
        );
    }

    #[test]
    fn late_packets_are_dropped_and_counted_without_raising_the_target() {
        let mut jb = opus_buffer();
        let arrivals = stream(0, 150, 0.0, 20.0, 1, 1, 1, |i| {
            if i == 50 {
                300.0
            } else {
                0.0
            }
        });
        let outs = run(&mut jb, &arrivals, 150, 20.0, 5.0, |_, _, _| {});
        let ids = played(&outs);
        assert_eq!(
            ids,
            (0..150)
                .filter(|&i| i != 50)
                .take(ids.len())
                .collect::<Vec<_>>()
        );
        assert!(ids.len() >= 145);
        // Frame 50 is concealed with frame 51 at hand for FEC.
        let pos = outs
            .iter()
            .position(|o| *o == Out::Play(49))
            .expect("49 played");
        assert_eq!(outs[pos + 1], Out::Miss(Some(51)));
        assert_eq!(outs[pos + 2], Out::Play(51));
        let stats = jb.stats();
        assert_eq!(
            (stats.late, stats.concealed, stats.expanded),
            (1, 1, 0),
            "{stats:?}"
        );
        // One outlier is not jitter: the target did not jump to it.
        assert_eq!(stats.target_ms, 40, "{stats:?}");
    }

    #[test]
    fn loss_is_concealed_with_the_next_frame_when_buffered() {
        let mut jb = opus_buffer();
        let mut arrivals = stream(0, 60, 0.0, 20.0, 500, 77, 5, |_| 0.0);
        arrivals.retain(|a| ![30, 40, 41].contains(&a.id));
        let outs = run(&mut jb, &arrivals, 62, 20.0, 5.0, |_, _, _| {});
        let mut expected = vec![Out::Fill, Out::Fill];
        for id in 0..60 {
            expected.push(match id {
                30 => Out::Miss(Some(31)),
                40 => Out::Miss(None),
                41 => Out::Miss(Some(42)),
                _ => Out::Play(id),
            });
        }
        assert_eq!(outs, expected);
        let stats = jb.stats();
        assert_eq!((stats.concealed, stats.played, stats.late), (3, 57, 0));
    }

    #[test]
    fn sequence_and_timestamp_wrap_around() {
        for (clock, spf) in [(48_000, 960), (8_000, 160)] {
            let mut jb = JitterBuffer::new(clock, spf, JitterConfig::default());
            // Both wrap near packet 36 and 50; pairs are swapped around them.
            let mut arrivals: Vec<_> = (0u32..120)
                .map(|i| Arrival {
                    at: f64::from(i) * 20.0 + if i % 2 == 0 { 25.0 } else { 0.0 },
                    seq: 65_500u16.wrapping_add(i as u16),
                    ts: (u32::MAX - 50 * spf).wrapping_add(i * spf),
                    ssrc: 0xDEAD_BEEF,
                    id: i,
                })
                .collect();
            arrivals.sort_by(|a, b| a.at.total_cmp(&b.at));
            let outs = run(&mut jb, &arrivals, 125, 20.0, 2.0, |_, _, _| {});
            assert_eq!(played(&outs), (0..120).collect::<Vec<_>>(), "clock {clock}");
            let stats = jb.stats();
            assert_eq!(
                (stats.late, stats.resets, holes(&outs)),
                (0, 0, 0),
                "{stats:?}"
            );
        }
    }

    #[test]
    fn ssrc_change_resets_and_resumes_within_the_start_delay() {
        let mut jb = opus_buffer();
        let mut arrivals = stream(0, 100, 0.0, 20.0, 100, 0, 1, |_| 2.0);
        arrivals.extend(stream(
            1000,
            100,
            2000.0,
            20.0,
            40_000,
            3_000_000_000,
            2,
            |_| 2.0,
        ));
        // Two stragglers of the old stream after the switch: strays.
        arrivals.push(Arrival {
            at: 2050.0,
            ..arrivals[98]
        });
        arrivals.push(Arrival {
            at: 2051.0,
            ..arrivals[99]
        });
        let outs = run(&mut jb, &arrivals, 205, 20.0, 7.0, |_, _, _| {});
        let ids = played(&outs);
        assert!(strictly_increasing(&ids), "{ids:?}");
        let new: Vec<_> = ids.iter().copied().filter(|&i| i >= 1000).collect();
        assert_eq!(new, (1000..1100).collect::<Vec<_>>());
        assert!(ids.iter().filter(|&&i| i < 1000).count() >= 97);
        // The switch: at most the start delay (two ticks) without a packet.
        assert!(longest_gap(&outs) <= 2, "gap {} ticks", longest_gap(&outs));
        let stats = jb.stats();
        assert_eq!(
            (stats.resets, stats.stray, stats.late),
            (1, 2, 0),
            "{stats:?}"
        );
    }

    #[test]
    fn a_lone_packet_of_another_ssrc_does_not_reset() {
        let mut jb = opus_buffer();
        let mut arrivals = stream(0, 100, 0.0, 20.0, 100, 0, 1, |_| 0.0);
        arrivals.push(Arrival {
            at: 1000.5,
            seq: 9,
            ts: 9,
            ssrc: 666,
            id: 666,
        });
        let outs = run(&mut jb, &arrivals, 102, 20.0, 5.0, |_, _, _| {});
        assert_eq!(played(&outs), (0..100).collect::<Vec<_>>());
        let stats = jb.stats();
        assert_eq!((stats.resets, stats.stray), (0, 1), "{stats:?}");
    }

    #[test]
    fn sequence_jumps_forward_and_backward_reset_cleanly() {
        let mut jb = opus_buffer();
        // Timestamps run on; the sequence jumps +30000 at packet 100 and
        // −20000 at packet 200.
        let mut arrivals = stream(0, 300, 0.0, 20.0, 10, 0, 4, |_| 1.0);
        for a in &mut arrivals {
            if a.id >= 100 {
                a.seq = a.seq.wrapping_add(30_000);
            }
            if a.id >= 200 {
                a.seq = a.seq.wrapping_sub(20_000);
            }
        }
        let outs = run(&mut jb, &arrivals, 305, 20.0, 5.0, |_, _, _| {});
        let ids = played(&outs);
        assert!(strictly_increasing(&ids), "{ids:?}");
        assert!(ids.len() >= 294, "{} played", ids.len());
        assert!(longest_gap(&outs) <= 2, "gap {} ticks", longest_gap(&outs));
        assert_eq!(ids.last(), Some(&299));
        let stats = jb.stats();
        assert_eq!(stats.resets, 2, "{stats:?}");
    }

    #[test]
    fn timestamp_jumps_reset_and_never_stick() {
        // (timestamp step, sequence step) applied from packet 100 on.
        let cases: [(i64, i32); 5] = [
            (-5 * 48_000, 0),       // timestamp back 5 s, sequence runs on
            (-10 * 960, 0),         // timestamp back 200 ms, sequence runs on
            (3600 * 48_000, 0),     // timestamp forward an hour
            (-10 * 960, -10),       // both back 10 frames: a replay
            (1_234_567_890, -5000), // both jump
        ];
        for (dts, dseq) in cases {
            let mut jb = opus_buffer();
            let mut arrivals = stream(0, 250, 0.0, 20.0, 300, 1_000_000, 8, |_| 1.0);
            for a in &mut arrivals {
                if a.id >= 100 {
                    a.ts = (i64::from(a.ts) + dts).rem_euclid(1 << 32) as u32;
                    a.seq = (i32::from(a.seq) + dseq).rem_euclid(1 << 16) as u16;
                }
            }
            let outs = run(&mut jb, &arrivals, 255, 20.0, 5.0, |_, _, _| {});
            let ids = played(&outs);
            let stats = jb.stats();
            println!(
                "ts {dts:+}, seq {dseq:+}: gap {} ticks, {stats:?}",
                longest_gap(&outs)
            );
            assert!(strictly_increasing(&ids), "{dts}/{dseq}: {ids:?}");
            assert_eq!(ids.last(), Some(&249), "{dts}/{dseq}");
            assert!(stats.resets >= 1, "{dts}/{dseq}: {stats:?}");
            // A replay costs the few packets that prove the playout lost
            // track; real jumps only the start delay.
            let allowed = if dseq == -10 {
                LATE_RESTART as usize + 3
            } else {
                2
            };
            assert!(
                longest_gap(&outs) <= allowed,
                "{dts}/{dseq}: gap {}",
                longest_gap(&outs)
            );
            assert!(ids.len() >= 230, "{dts}/{dseq}: {} played", ids.len());
        }
    }

    #[test]
    fn an_outage_conceals_then_refills_and_resumes() {
        for dtx in [false, true] {
            let mut jb = opus_buffer();
            let mut arrivals = stream(0, 100, 0.0, 20.0, 0, 0, 1, |_| 3.0);
            // One second later the stream resumes: the sequence runs on
            // (DTX: nothing was sent) or skips the lost packets (outage).
            let mut rest = stream(200, 100, 3000.0, 20.0, 0, 150 * SPF, 1, |_| 3.0);
            for (k, a) in rest.iter_mut().enumerate() {
                a.seq = if dtx { 100 + k as u16 } else { 150 + k as u16 };
            }
            arrivals.extend(rest);
            let outs = run(&mut jb, &arrivals, 255, 20.0, 5.0, |_, _, _| {});
            let ids = played(&outs);
            let expected: Vec<u32> = (0..100).chain(200..300).collect();
            assert_eq!(ids, expected, "dtx {dtx}");
            let stats = jb.stats();
            assert_eq!((stats.resets, stats.late), (0, 0), "{stats:?}");
            // ~300 ms of concealment, then silence until the stream returns.
            assert!((14..=17).contains(&stats.concealed), "{stats:?}");
            let resume = outs
                .iter()
                .position(|o| *o == Out::Play(200))
                .expect("resumed");
            assert_eq!(outs[resume - 1], Out::Fill);
            assert_eq!(outs[resume - 3], Out::Fill);
            // Resumes after the start delay: 3003 ms arrival, tick at 3045.
            assert_eq!(resume, 152, "dtx {dtx}");
        }
    }

    /// A 10-minute call whose far end's clock runs `ppm` parts per million
    /// fast (frames every 20 ms / (1 + ppm·1e-6)) against a 20 ms playout
    /// tick, with up to 5 ms of network jitter and up to `tick_jitter` ms of
    /// lateness on each tick.
    fn drift_call(ppm: f64, tick_jitter: f64) -> JitterStats {
        let mut jb = opus_buffer();
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let ticks = 30_000;
        let interval = 20.0 / (1.0 + ppm * 1e-6);
        let n = (ticks as f64 * 20.0 / interval) as u32 + 10;
        let arrivals = stream(0, n, 0.0, interval, 0, 0, 42, |_| 5.0 * rng.unit());
        let mut worst_depth = 0;
        let mut worst_delay = 0;
        let mut tick_rng = Rng(0x1234_5678_9ABC_DEF1);
        let tick = |k: usize| 13.0 + k as f64 * 20.0 + tick_jitter * tick_rng.unit();
        let outs = run_ticks(&mut jb, &arrivals, ticks, tick, |k, jb, _| {
            if k > 100 {
                let s = jb.stats();
                worst_depth = worst_depth.max(s.depth_ms);
                worst_delay = worst_delay.max(s.delay_ms);
            }
        });
        let stats = jb.stats();
        let gaps = (stats.concealed + stats.expanded) as f64 / ticks as f64;
        println!(
            "drift {ppm:+} ppm, ticks ±{tick_jitter} ms: played {}, concealed {}, expanded {}, dropped {}, late {}, \
             worst depth {worst_depth} ms, worst delay {worst_delay} ms, final target {} ms, \
             concealment rate {:.3} %",
            stats.played,
            stats.concealed,
            stats.expanded,
            stats.dropped,
            stats.late,
            stats.target_ms,
            gaps * 100.0
        );
        assert!(strictly_increasing(&played(&outs)));
        assert!(worst_depth <= 200, "depth reached {worst_depth} ms");
        assert!(worst_delay <= 200, "delay reached {worst_delay} ms");
        assert!(gaps < 0.01, "concealment rate {gaps}");
        assert_eq!((stats.late, stats.resets), (0, 0), "{stats:?}");
        stats
    }

    #[test]
    fn far_end_clock_half_a_percent_fast_for_ten_minutes() {
        for tick_jitter in [0.0, 6.0] {
            let stats = drift_call(5000.0, tick_jitter);
            // 0.5 % of 30 000 frames must go: about 150 drops, no stretching.
            assert!((130..=175).contains(&stats.dropped), "{stats:?}");
            assert!(stats.expanded <= 10, "{stats:?}");
        }
    }

    #[test]
    fn far_end_clock_half_a_percent_slow_for_ten_minutes() {
        for tick_jitter in [0.0, 6.0] {
            let stats = drift_call(-5000.0, tick_jitter);
            // 0.5 % of the ticks have no frame: about 150 stretches, no drops.
            assert!((130..=175).contains(&stats.expanded), "{stats:?}");
            assert!(stats.dropped <= 10, "{stats:?}");
            assert!(stats.concealed <= 20, "{stats:?}");
        }
    }

    /// An hour-long call (180 000 frames, the RTP sequence wrapping twice) whose far end's
    /// clock is `ppm` off, with up to 5 ms of network jitter and ticks up to 6 ms late. Asserts
    /// that the buffer neither grows (its depth and delay in the last ten minutes stay within
    /// those of the first ten, plus one frame) nor underruns repeatedly (a handful of
    /// concealed frames at most; the slow clock's frames are stretched on purpose, about one
    /// per 10 000), and that the RTCP receive statistics of the same packets stay sane:
    /// nothing lost across the wraps, jitter near the network's.
    fn hour_long_drift(ppm: f64) -> JitterStats {
        use crate::media::rtcp::RtcpSession;
        use crate::media::rtp::RtpPacket;
        const TICKS: usize = 180_000;
        const TEN_MINUTES: usize = 30_000;
        let mut jb = opus_buffer();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let interval = 20.0 / (1.0 + ppm * 1e-6);
        let n = (TICKS as f64 * 20.0 / interval) as u32 + 10;
        let arrivals = stream(0, n, 0.0, interval, 65_000, 0, 42, |_| 5.0 * rng.unit());
        let t0 = epoch();
        let mut rtcp = RtcpSession::new(7, CLOCK, t0);
        let mut tick_rng = Rng(0x0DDB_1A5E_5BAD_5EED);
        let tick = |k: usize| 13.0 + k as f64 * 20.0 + 6.0 * tick_rng.unit();
        // (worst depth, worst delay) in the first and the last ten minutes.
        let (mut first, mut last) = ((0, 0), (0, 0));
        let outs = run_ticks(&mut jb, &arrivals, TICKS, tick, |k, jb, _| {
            let s = jb.stats();
            let window = match k {
                100..TEN_MINUTES => &mut first,
                _ if k >= TICKS - TEN_MINUTES => &mut last,
                _ => return,
            };
            window.0 = window.0.max(s.depth_ms);
            window.1 = window.1.max(s.delay_ms);
        });
        for a in arrivals.iter().filter(|a| a.at <= 20.0 * TICKS as f64) {
            let packet = RtpPacket {
                payload_type: 111,
                sequence: a.seq,
                timestamp: a.ts,
                ssrc: a.ssrc,
                marker: false,
                payload: &[0; 40],
            };
            rtcp.on_rtp(at(t0, a.at), &packet);
        }
        let stats = jb.stats();
        let quality = rtcp.quality();
        println!(
            "an hour at {ppm:+} ppm: played {}, concealed {}, expanded {}, dropped {}, late {}, \
             worst depth/delay first 10 min {first:?} ms, last 10 min {last:?} ms, \
             RTCP loss {} %, jitter {:.2} ms",
            stats.played,
            stats.concealed,
            stats.expanded,
            stats.dropped,
            stats.late,
            quality.loss_pct,
            quality.jitter_ms
        );
        assert!(strictly_increasing(&played(&outs)));
        assert_eq!((stats.late, stats.resets), (0, 0), "{stats:?}");
        assert!(
            last.0 <= first.0 + 20 && last.1 <= first.1 + 20,
            "the buffer grew: first ten minutes {first:?} ms, last ten {last:?} ms"
        );
        assert!(last.0 <= 100 && last.1 <= 100, "{last:?}");
        assert!(stats.concealed <= 5, "repeated underruns: {stats:?}");
        assert_eq!(quality.packets_lost, 0, "{quality:?}");
        assert!(quality.jitter_ms < 5.0, "{quality:?}");
        stats
    }

    #[test]
    fn far_end_clock_100_ppm_fast_for_an_hour() {
        let stats = hour_long_drift(100.0);
        // 100 ppm of 180 000 frames is 18 surplus frames: each dropped, none stretched.
        assert!((10..=30).contains(&stats.dropped), "{stats:?}");
        assert!(stats.expanded <= 5, "{stats:?}");
    }

    #[test]
    fn far_end_clock_100_ppm_slow_for_an_hour() {
        let stats = hour_long_drift(-100.0);
        // 18 frames short over the hour: each tick without one is stretched, none dropped.
        assert!((10..=30).contains(&stats.expanded), "{stats:?}");
        assert!(stats.dropped <= 5, "{stats:?}");
    }

    #[test]
    fn network_delay_steps_up_and_down_are_followed() {
        let mut jb = opus_buffer();
        // +200 ms from packet 100 on, back to +50 ms from packet 300 on.
        let arrivals = stream(0, 600, 0.0, 20.0, 0, 0, 1, |i| match i {
            100..=299 => 200.0,
            300.. => 50.0,
            _ => 0.0,
        });
        let mut delay = vec![0u32; 620];
        let outs = run(&mut jb, &arrivals, 620, 20.0, 5.0, |k, jb, _| {
            delay[k] = jb.stats().delay_ms;
            assert!(jb.stats().depth_ms <= 200, "{:?}", jb.stats());
        });
        let ids = played(&outs);
        let stats = jb.stats();
        println!("delay steps: {stats:?}");
        let at_ticks = [99, 150, 299, 320, 400, 500, 619].map(|k| delay[k]);
        println!("delay at ticks 99/150/299/320/400/500/619: {at_ticks:?} ms");
        assert!(strictly_increasing(&ids));
        assert_eq!(ids.last(), Some(&599));
        // The step up costs the packets in flight, not the rest of the call.
        assert!(ids.len() >= 580, "{} played", ids.len());
        // The step down (a burst of reordering: the packets still on the
        // old path arrive 150 ms after newer ones, which briefly raises the
        // target) is absorbed by dropping frames within a few seconds.
        assert!(stats.dropped >= 5, "{stats:?}");
        assert!(
            delay[500] <= 80,
            "delay {} ms four seconds after the step down",
            delay[500]
        );
        assert!(delay[619] <= 60, "delay {} ms at the end", delay[619]);
        assert!(stats.target_ms <= 40, "{stats:?}");
    }

    #[test]
    fn target_follows_jitter_up_quickly_and_down_slowly() {
        let mut jb = opus_buffer();
        let mut rng = Rng(12345);
        // 10 s calm, 60 s with up to 40 ms random delay, 30 s calm.
        let n = 5000;
        let arrivals = stream(0, n, 0.0, 20.0, 0, 0, 1, |i| {
            let noise = rng.unit();
            if (500..3500).contains(&i) {
                10.0 + 40.0 * noise
            } else {
                10.0 + noise
            }
        });
        let mut target = vec![0u32; n as usize + 10];
        let mut late_at = vec![0u64; n as usize + 10];
        let mut delay = vec![0u32; n as usize + 10];
        let outs = run(
            &mut jb,
            &arrivals,
            n as usize + 10,
            20.0,
            3.0,
            |k, jb, _| {
                let s = jb.stats();
                target[k] = s.target_ms;
                late_at[k] = s.late;
                delay[k] = s.delay_ms;
            },
        );
        // Tick k is at 20k + 3 ms; packet i arrives at 20i + 10..50 ms.
        println!(
            "target over the first second of jitter: {:?}",
            &target[495..560]
        );
        println!(
            "target: calm {} ms, +1 s of jitter {} ms, jittery {} ms, \
             +1 s calm {} ms, +5 s calm {} ms, +25 s calm {} ms",
            target[499], target[550], target[3499], target[3550], target[3750], target[4750]
        );
        assert_eq!(target[499], 20, "calm target");
        assert!(target[550] >= 40, "slow to grow: {}", target[550]);
        assert!(target[600] > 40, "slow to grow: {}", target[600]);
        assert!(target[3499] > 40, "jittery target {}", target[3499]);
        let late = late_at[3510] - late_at[495];
        let rate = late as f64 / 3000.0;
        println!("late during jitter: {late} of 3000 ({:.2} %)", rate * 100.0);
        assert!(rate < 0.02, "late rate {rate}");
        // Calm again: down, but not at once.
        assert!(target[3550] >= 30, "shrank too fast: {}", target[3550]);
        assert!(target[4750] <= 25, "did not shrink: {}", target[4750]);
        assert!(
            delay[4750] < delay[3499],
            "{} → {}",
            delay[3499],
            delay[4750]
        );
        assert!(delay[4750] <= 60, "delay {}", delay[4750]);
        assert!(strictly_increasing(&played(&outs)));
    }

    #[test]
    fn timestamps_off_the_frame_grid_round_to_the_nearest_slot() {
        let mut jb = opus_buffer();
        let mut rng = Rng(99);
        let mut arrivals = stream(0, 200, 0.0, 20.0, 0, 1_000, 1, |_| 0.0);
        for a in &mut arrivals {
            // Up to ±0.45 frame off the grid set by the first packet.
            let off = (rng.unit() - 0.5) * 0.9 * f64::from(SPF);
            a.ts = (i64::from(a.ts) + off as i64) as u32;
        }
        arrivals[0].ts = 1_000;
        let outs = run(&mut jb, &arrivals, 205, 20.0, 5.0, |_, _, _| {});
        assert_eq!(played(&outs), (0..200).collect::<Vec<_>>());
        let stats = jb.stats();
        assert_eq!(
            (stats.duplicates, stats.late, stats.resets),
            (0, 0, 0),
            "{stats:?}"
        );
    }

    #[test]
    fn a_stalled_playout_clock_keeps_the_newest_frames() {
        let mut jb = opus_buffer();
        let t0 = epoch();
        let arrivals = stream(0, 400, 0.0, 20.0, 0, 0, 1, |_| 0.0);
        // Ticks run for 1 s, stop for 5 s, then catch up one per packet.
        let mut outs = Vec::new();
        for a in &arrivals {
            push(&mut jb, t0, a);
            assert!(jb.stats().depth_ms <= 1200, "{:?}", jb.stats());
            if a.at < 1000.0 || a.at >= 6000.0 {
                outs.push(owned(jb.pop(at(t0, a.at + 5.0))));
            }
        }
        for k in 1..10 {
            outs.push(owned(jb.pop(at(t0, 8000.0 + 5.0 + f64::from(k) * 20.0))));
        }
        let ids = played(&outs);
        assert!(strictly_increasing(&ids));
        assert_eq!(ids.last(), Some(&399));
        let stats = jb.stats();
        assert!(stats.dropped >= 200, "{stats:?}");
        assert!(stats.depth_ms <= 200, "{stats:?}");
    }

    #[test]
    fn garbage_input_never_panics() {
        let mut jb = opus_buffer();
        let t0 = epoch();
        jb.push(t0, 1, 1, 1, &[]);
        jb.push(t0, 2, 961, 1, &[0u8; MAX_PAYLOAD + 1]);
        assert_eq!(jb.stats().rejected, 2);
        assert_eq!(jb.stats().received, 2);
        assert_eq!(jb.pop(t0), Playout::Filling);
        // A full-size payload is kept whole.
        jb.push(t0, 3, 1921, 1, &[7u8; MAX_PAYLOAD]);
        let out = jb.pop(at(t0, 100.0));
        assert_eq!(out, Playout::Packet(&[7u8; MAX_PAYLOAD][..]));
        // Odd constructor arguments are repaired.
        let odd = [
            (
                0,
                0,
                JitterConfig {
                    min_ms: 500,
                    max_ms: 10,
                    start_ms: 9999,
                },
            ),
            (
                8_000,
                1,
                JitterConfig {
                    min_ms: 0,
                    max_ms: u32::MAX,
                    start_ms: 0,
                },
            ),
            (u32::MAX, u32::MAX, JitterConfig::default()),
            (
                8_000,
                160,
                JitterConfig {
                    min_ms: 0,
                    max_ms: 0,
                    start_ms: 0,
                },
            ),
        ];
        let mut rng = Rng(0xC0FF_EE00_1234_5678);
        let mut buf = [0u8; 2000];
        for (clock, spf, config) in odd
            .into_iter()
            .chain([(CLOCK, SPF, JitterConfig::default())])
        {
            let mut jb = JitterBuffer::new(clock, spf, config);
            let mut now = 0.0;
            for _ in 0..20_000 {
                let r = rng.next();
                now += (r % 50) as f64 * 0.7;
                if r % 3 == 0 {
                    match jb.pop(at(t0, now)) {
                        Playout::Packet(p) => assert!(!p.is_empty() && p.len() <= MAX_PAYLOAD),
                        Playout::Missed { next: Some(p) } => assert!(p.len() <= MAX_PAYLOAD),
                        _ => {}
                    }
                } else {
                    let len = (rng.next() % 1600) as usize;
                    let ssrc = (rng.next() % 3) as u32;
                    let seq = rng.next() as u16;
                    let ts = if r % 5 == 0 {
                        rng.next() as u32
                    } else {
                        u32::from(seq) * 960
                    };
                    buf[..len].fill(r as u8);
                    // Sometimes time runs backwards.
                    let when = if r % 97 == 0 { now - 500.0 } else { now };
                    jb.push(at(t0, when), seq, ts, ssrc, &buf[..len]);
                }
                let s = jb.stats();
                assert!(s.target_ms <= MAX_DELAY_LIMIT_MS);
                assert!(s.depth_ms as usize <= MAX_SLOTS * 1000);
            }
        }
    }
}
