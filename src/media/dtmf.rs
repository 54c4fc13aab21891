//! DTMF as RFC 4733 telephone-events: the sender that turns queued digits
//! into event packets frame by frame, and the receiver that turns received
//! event packets back into digits, once per key press.
//!
//! Owns the digit queue, the event state machine and the 4-byte event payload
//! format. It must not touch sockets, RTP headers beyond the values it hands
//! out (timestamp, marker), clocks, or the voice path; it never allocates
//! after construction and never panics on a received payload.
//!
//! ```text
//!  payload (RFC 4733 §2.3):
//!   0                   1                   2                   3
//!   0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!  |     event     |E|R| volume    |          duration             |
//!  +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//!
//!  sender, digits "1#" at 8 kHz, drawn with 20 ms frames (160 timestamp units each;
//!  10 ms frames send twice the packets, 80 units apart, to the same durations):
//!
//!  frame   0     1     2     3     4          5   6   7   8     ...
//!          ├──── tone of '1' (100 ms) ────┤   ├─ gap ──┤  ├─ '#' ...
//!  packet  M     .     .     .     E×3        -   -   -   M
//!  ts      T     T     T     T     T          voice       T+8·160
//!  dur     160   320   480   640   800
//!  voice   no    no    no    no    no         yes yes yes no
//! ```
//!
//! The media thread drives one [`DtmfSender`] per line with this loop, once per
//! frame, `ts` being the RTP timestamp that frame carries:
//!
//! ```text
//!  match sender.tick(ts) {
//!      Some(p) => send p.payload (payload type = telephone-event, marker = p.marker,
//!                 timestamp = p.timestamp) p.redundant_copies times; no voice this frame
//!      None    => send the voice frame as usual
//!  }
//! ```
//!
//! [`DtmfSender::is_active`] answers, before the tick, whether that tick will
//! return a packet (voice must be suppressed this frame); after the tick it
//! answers the same for the next frame. So `if tick().is_none() && !is_active()`
//! (the brief's form) and plain `if tick().is_none()` behave identically.
//! During the gap between digits and during `,` pauses voice flows again.
//!
//! The receiver reports a digit on the first packet it sees of each event
//! (deduplicated by the event timestamp), so lost first packets, redundant end
//! packets, late packets of an earlier event and long events split into
//! segments (RFC 4733 §2.5.1.3) all yield exactly one digit per key press.

use super::FRAME_MS;

/// Tone length of one digit, in milliseconds.
pub const TONE_MS: u32 = 100;
/// Silence (voice resumes) between the end of one digit and the next, in milliseconds.
pub const GAP_MS: u32 = 60;
/// Length of the pause a `,` in the digit string stands for, in milliseconds.
pub const PAUSE_MS: u32 = 500;
/// Digits (and pauses) that can wait in one sender's queue.
pub const QUEUE_CAPACITY: usize = 64;
/// Volume field of sent events: the tone's power is −10 dBm0.
pub const VOLUME: u8 = 10;
/// How many times the end packet of each event is sent (RFC 4733 §2.5.1.4).
pub const END_COPIES: u8 = 3;

/// Frames one digit's tone lasts.
const TONE_FRAMES: u32 = TONE_MS / FRAME_MS;
/// Frames of the gap after each digit.
const GAP_FRAMES: u32 = GAP_MS / FRAME_MS;
/// Frames one `,` pause lasts.
const PAUSE_FRAMES: u32 = PAUSE_MS / FRAME_MS;

/// Queue entry for a `,` pause (event codes are 0–15).
const PAUSE: u8 = 0xFF;

/// The E (end) bit in the second payload byte.
const END_BIT: u8 = 0x80;

/// Receiver: an event whose last segment lasted at least this long (timestamp
/// units) may be continued by a new segment (RFC 4733 §2.5.1.3 splits events
/// only when the 16-bit duration is about to overflow).
const LONG_EVENT_MIN: u32 = 0x8000;

/// Receiver: how far past the previous segment's last seen duration the next
/// segment may start (covers lost packets at the segment's end): 100 ms at 48 kHz.
const CONTINUATION_SLACK: u32 = 4_800;

/// Receiver: a packet whose timestamp is at most this far before the current
/// event's is a late packet of an earlier event and is ignored; further back is
/// taken as a new stream (2 s at 48 kHz, 12 s at 8 kHz).
const STALE_WINDOW: u32 = 96_000;

/// Why digits were not queued. Nothing is queued when an error is returned.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DtmfError {
    /// The character is not one of `0-9 * # A-D a-d ,`.
    #[error("'{0}' is not a DTMF digit (use 0-9 * # A-D, ',' for a pause)")]
    InvalidDigit(char),
    /// The digits do not fit in the queue.
    #[error("DTMF queue full: {queued} waiting, {adding} more do not fit in {capacity}")]
    QueueFull {
        /// Entries already waiting.
        queued: usize,
        /// Entries the refused call would have added.
        adding: usize,
        /// The queue's capacity ([`QUEUE_CAPACITY`]).
        capacity: usize,
    },
}

/// One telephone-event packet to send in place of this frame's voice packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfPacket {
    /// The RTP payload: event, E bit + volume, duration (big-endian).
    pub payload: [u8; 4],
    /// The RTP marker bit: set on the first packet of an event.
    pub marker: bool,
    /// The RTP timestamp: the event's start, the same on all of its packets.
    pub timestamp: u32,
    /// How many identical copies to send now: [`END_COPIES`] for the end
    /// packet, 1 otherwise (the RTP sequence number still advances per copy).
    pub redundant_copies: u8,
}

/// Where the sender is in its cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing in progress; the next tick starts the queue's head, if any.
    Idle,
    /// An event is being sent: `sent` packets so far, all at `start`.
    Tone { code: u8, start: u32, sent: u32 },
    /// Voice flows for `left` more frames (gap after a digit, or a pause).
    Quiet { left: u32 },
}

/// Sends queued DTMF digits as RFC 4733 telephone-events, one packet per frame.
#[derive(Debug, Clone)]
pub struct DtmfSender {
    samples_per_frame: u32,
    state: State,
    queue: [u8; QUEUE_CAPACITY],
    head: usize,
    len: usize,
}

impl DtmfSender {
    /// A sender for a telephone-event stream at `clock_rate` Hz: 8000 next to
    /// PCMU/PCMA, 48000 next to Opus (the rate the SDP negotiated).
    pub fn new(clock_rate: u32) -> DtmfSender {
        DtmfSender {
            samples_per_frame: (clock_rate / (1000 / FRAME_MS)).max(1),
            state: State::Idle,
            queue: [0; QUEUE_CAPACITY],
            head: 0,
            len: 0,
        }
    }

    /// Queues digits `0-9 * # A-D` (`a-d` too) to be sent after any already
    /// queued; `,` queues a 500 ms pause. Any other character is refused with
    /// [`DtmfError::InvalidDigit`], and digits that do not all fit with
    /// [`DtmfError::QueueFull`]; in both cases nothing is queued.
    pub fn queue(&mut self, digits: &str) -> Result<(), DtmfError> {
        let mut adding = 0usize;
        for c in digits.chars() {
            if c != ',' {
                digit_to_event(c).ok_or(DtmfError::InvalidDigit(c))?;
            }
            adding += 1;
        }
        if self.len + adding > QUEUE_CAPACITY {
            return Err(DtmfError::QueueFull {
                queued: self.len,
                adding,
                capacity: QUEUE_CAPACITY,
            });
        }
        for c in digits.chars() {
            let code = if c == ',' {
                PAUSE
            } else {
                digit_to_event(c).unwrap_or(PAUSE)
            };
            self.queue[(self.head + self.len) % QUEUE_CAPACITY] = code;
            self.len += 1;
        }
        Ok(())
    }

    /// True exactly when the next [`tick`](Self::tick) will return a packet,
    /// i.e. when this frame's voice must not be sent: an event is under way,
    /// or one is queued next and no gap or pause is pending before it.
    pub fn is_active(&self) -> bool {
        match self.state {
            State::Tone { .. } => true,
            State::Quiet { .. } => false,
            State::Idle => self.len > 0 && self.queue[self.head] != PAUSE,
        }
    }

    /// Advances by one frame whose RTP timestamp would be
    /// `frame_timestamp`, and returns the telephone-event packet to send
    /// instead of that frame's voice, if any. Call it for every frame the
    /// stream sends. Durations count calls, so frames not ticked (stream
    /// paused) do not lengthen an event.
    pub fn tick(&mut self, frame_timestamp: u32) -> Option<DtmfPacket> {
        match self.state {
            State::Quiet { left } => {
                self.state = if left > 1 {
                    State::Quiet { left: left - 1 }
                } else {
                    State::Idle
                };
                None
            }
            State::Idle => {
                let code = self.pop()?;
                if code == PAUSE {
                    // This frame is the pause's first; `Quiet` counts the rest.
                    self.state = match PAUSE_FRAMES.saturating_sub(1) {
                        0 => State::Idle,
                        left => State::Quiet { left },
                    };
                    return None;
                }
                self.state = State::Tone {
                    code,
                    start: frame_timestamp,
                    sent: 0,
                };
                self.tone_packet()
            }
            State::Tone { .. } => self.tone_packet(),
        }
    }

    /// The next packet of the event under way; moves to the gap after its end.
    fn tone_packet(&mut self) -> Option<DtmfPacket> {
        let State::Tone { code, start, sent } = self.state else {
            return None;
        };
        let sent = sent + 1;
        let end = sent >= TONE_FRAMES;
        let duration =
            u16::try_from(sent.saturating_mul(self.samples_per_frame)).unwrap_or(u16::MAX);
        let [hi, lo] = duration.to_be_bytes();
        let flags = if end { END_BIT | VOLUME } else { VOLUME };
        self.state = if !end {
            State::Tone { code, start, sent }
        } else if GAP_FRAMES > 0 {
            State::Quiet { left: GAP_FRAMES }
        } else {
            State::Idle
        };
        Some(DtmfPacket {
            payload: [code, flags, hi, lo],
            marker: sent == 1,
            timestamp: start,
            redundant_copies: if end { END_COPIES } else { 1 },
        })
    }

    /// Takes the queue's head.
    fn pop(&mut self) -> Option<u8> {
        if self.len == 0 {
            return None;
        }
        let code = self.queue[self.head];
        self.head = (self.head + 1) % QUEUE_CAPACITY;
        self.len -= 1;
        Some(code)
    }
}

/// The event under way at the receiver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heard {
    timestamp: u32,
    code: u8,
    ended: bool,
    max_duration: u16,
}

/// Turns received telephone-event payloads into digits, one per key press.
///
/// Reset it (`DtmfReceiver::default()`) when the remote stream changes (new
/// SSRC), since deduplication relies on one timestamp space.
#[derive(Debug, Default, Clone)]
pub struct DtmfReceiver {
    last: Option<Heard>,
}

impl DtmfReceiver {
    /// Takes one telephone-event packet (its RTP timestamp and payload) and
    /// returns the digit when it is the first packet seen of a new event.
    /// Payloads under 4 bytes and events other than 0–15 (`0-9 * # A-D`) are
    /// ignored; further packets of an event (same timestamp), late packets of
    /// an earlier event, and the continuation segments of an event longer than
    /// the 16-bit duration allows return `None`.
    pub fn on_packet(&mut self, timestamp: u32, payload: &[u8]) -> Option<char> {
        let [code, flags, hi, lo, ..] = *payload else {
            return None;
        };
        let digit = event_to_digit(code)?;
        let ended = flags & END_BIT != 0;
        let duration = u16::from_be_bytes([hi, lo]);
        if let Some(last) = &mut self.last {
            let ahead = timestamp.wrapping_sub(last.timestamp);
            if ahead == 0 {
                last.ended |= ended;
                last.max_duration = last.max_duration.max(duration);
                return None;
            }
            let behind = last.timestamp.wrapping_sub(timestamp);
            if behind <= STALE_WINDOW {
                return None;
            }
            let seen = u32::from(last.max_duration);
            let continues = code == last.code
                && !last.ended
                && seen >= LONG_EVENT_MIN
                && ahead >= seen
                && ahead <= seen + CONTINUATION_SLACK;
            *last = Heard {
                timestamp,
                code,
                ended,
                max_duration: duration,
            };
            if continues {
                return None;
            }
        } else {
            self.last = Some(Heard {
                timestamp,
                code,
                ended,
                max_duration: duration,
            });
        }
        Some(digit)
    }
}

/// The RFC 4733 §3.2 event code of a DTMF digit (`a-d` accepted).
fn digit_to_event(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '*' => Some(10),
        '#' => Some(11),
        'A'..='D' => Some(c as u8 - b'A' + 12),
        'a'..='d' => Some(c as u8 - b'a' + 12),
        _ => None,
    }
}

/// The DTMF digit of an RFC 4733 §3.2 event code, for codes 0–15.
fn event_to_digit(code: u8) -> Option<char> {
    const DIGITS: &[u8; 16] = b"0123456789*#ABCD";
    DIGITS.get(usize::from(code)).map(|&b| char::from(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::TICKS_PER_SECOND;

    /// Timestamp units in one frame at 8 kHz and at 48 kHz.
    const AT_8K: u32 = 8_000 / TICKS_PER_SECOND;
    const AT_48K: u32 = 48_000 / TICKS_PER_SECOND;
    /// Frames from one digit's start to the next's: its tone and the gap.
    const CYCLE: u32 = TONE_FRAMES + GAP_FRAMES;

    /// Ticks `sender` for `frames` frames from `ts0`, `step` timestamp units
    /// apart; checks `is_active` against each tick; returns each frame's packet.
    fn run(sender: &mut DtmfSender, ts0: u32, step: u32, frames: u32) -> Vec<Option<DtmfPacket>> {
        (0..frames)
            .map(|i| {
                let active = sender.is_active();
                let p = sender.tick(ts0.wrapping_add(i * step));
                assert_eq!(
                    active,
                    p.is_some(),
                    "frame {i}: is_active disagrees with tick"
                );
                p
            })
            .collect()
    }

    fn packet(code: u8, end: bool, duration: u16, ts: u32, marker: bool) -> DtmfPacket {
        let [hi, lo] = duration.to_be_bytes();
        DtmfPacket {
            payload: [code, if end { 0x80 | 10 } else { 10 }, hi, lo],
            marker,
            timestamp: ts,
            redundant_copies: if end { 3 } else { 1 },
        }
    }

    /// Everything the sender puts on the wire, copies included, as (ts, payload).
    fn wire(packets: &[Option<DtmfPacket>]) -> Vec<(u32, [u8; 4])> {
        packets
            .iter()
            .flatten()
            .flat_map(|p| {
                std::iter::repeat_n((p.timestamp, p.payload), usize::from(p.redundant_copies))
            })
            .collect()
    }

    fn decode(packets: impl IntoIterator<Item = (u32, [u8; 4])>) -> String {
        let mut rx = DtmfReceiver::default();
        packets
            .into_iter()
            .filter_map(|(ts, p)| rx.on_packet(ts, &p))
            .collect()
    }

    #[test]
    fn two_digits_at_8khz_give_the_exact_packet_sequence() {
        let mut tx = DtmfSender::new(8_000);
        assert!(!tx.is_active());
        tx.queue("1#").expect("queue");
        assert!(tx.is_active());
        let frames = 2 * CYCLE + 4;
        let out = run(&mut tx, 1_000, AT_8K, frames);
        let t1 = 1_000;
        let t2 = 1_000 + CYCLE * AT_8K;
        // Each digit: a packet a frame, its duration growing by a frame's units, the last
        // one the end; the gap's frames carry voice.
        let mut expected = Vec::new();
        for (code, t) in [(1, t1), (11, t2)] {
            for k in 1..=TONE_FRAMES {
                let duration = u16::try_from(k * AT_8K).expect("fits");
                expected.push(Some(packet(code, k == TONE_FRAMES, duration, t, k == 1)));
            }
            expected.resize(expected.len() + GAP_FRAMES as usize, None);
        }
        expected.resize(frames as usize, None);
        assert_eq!(out, expected);
        assert!(!tx.is_active());
        // Raw bytes of the end packet: E bit and volume 10, 100 ms = 800 = 0x0320.
        assert_eq!(
            out[TONE_FRAMES as usize - 1].map(|p| p.payload),
            Some([1, 0x8A, 0x03, 0x20])
        );
    }

    #[test]
    fn opus_clock_steps_duration_by_a_frame() {
        let mut tx = DtmfSender::new(48_000);
        tx.queue("D").expect("queue");
        let out = run(&mut tx, 0, AT_48K, TONE_FRAMES + 1);
        let durations: Vec<u32> = out
            .iter()
            .flatten()
            .map(|p| u32::from(u16::from_be_bytes([p.payload[2], p.payload[3]])))
            .collect();
        let expected: Vec<u32> = (1..=TONE_FRAMES).map(|k| k * AT_48K).collect();
        assert_eq!(durations, expected);
        assert_eq!(durations.last(), Some(&4_800), "100 ms at 48 kHz");
        assert!(out
            .iter()
            .flatten()
            .all(|p| p.payload[0] == 15 && p.timestamp == 0));
        assert_eq!(out[TONE_FRAMES as usize], None);
    }

    #[test]
    fn lower_case_letters_map_to_a_to_d() {
        let mut tx = DtmfSender::new(8_000);
        tx.queue("aBcD*0").expect("queue");
        let codes: Vec<u8> = run(&mut tx, 0, AT_8K, 6 * CYCLE + 4)
            .iter()
            .flatten()
            .filter(|p| p.marker)
            .map(|p| p.payload[0])
            .collect();
        assert_eq!(codes, vec![12, 13, 14, 15, 10, 0]);
    }

    #[test]
    fn invalid_digits_are_rejected_and_nothing_is_queued() {
        let mut tx = DtmfSender::new(8_000);
        assert_eq!(tx.queue("12x3"), Err(DtmfError::InvalidDigit('x')));
        assert_eq!(tx.queue("E"), Err(DtmfError::InvalidDigit('E')));
        assert_eq!(tx.queue(" "), Err(DtmfError::InvalidDigit(' ')));
        assert_eq!(tx.queue("5é"), Err(DtmfError::InvalidDigit('é')));
        assert!(!tx.is_active());
        assert!(run(&mut tx, 0, AT_8K, 30).iter().all(Option::is_none));
        assert_eq!(tx.queue(""), Ok(()));
        assert!(!tx.is_active());
    }

    #[test]
    fn the_queue_is_bounded_and_all_or_nothing() {
        let mut tx = DtmfSender::new(8_000);
        tx.queue(&"1".repeat(60)).expect("60 fit");
        assert_eq!(
            tx.queue("23456"),
            Err(DtmfError::QueueFull {
                queued: 60,
                adding: 5,
                capacity: 64
            })
        );
        tx.queue("2345").expect("4 more fit");
        assert!(tx.queue("6").is_err());
        // Sending frees room: after one digit's tone the queue holds 63.
        run(&mut tx, 0, AT_8K, TONE_FRAMES);
        tx.queue("7").expect("room again");
        let markers = run(&mut tx, TONE_FRAMES * AT_8K, AT_8K, 64 * CYCLE + 10)
            .iter()
            .flatten()
            .filter(|p| p.marker)
            .count();
        assert_eq!(markers, 64, "the 63 remaining digits and the 7");
    }

    #[test]
    fn comma_pauses_500ms_with_voice_flowing() {
        let mut tx = DtmfSender::new(8_000);
        tx.queue("1,2").expect("queue");
        // Tone 100 ms, gap 60 ms, pause 500 ms: the second digit starts 660 ms in.
        let second = CYCLE + PAUSE_FRAMES;
        assert_eq!(second * FRAME_MS, 660);
        let out = run(&mut tx, 0, AT_8K, second + 2 * TONE_FRAMES);
        let starts: Vec<u32> = (0..)
            .zip(&out)
            .filter(|(_, p)| p.is_some_and(|p| p.marker))
            .map(|(i, _)| i)
            .collect();
        assert_eq!(starts, vec![0, second]);
        let second = second as usize;
        assert_eq!(out[second].map(|p| p.timestamp), Some(660 * 8));
        assert!(out[TONE_FRAMES as usize..second]
            .iter()
            .all(Option::is_none));
        // A leading pause: voice flows, then the digit.
        let mut tx = DtmfSender::new(8_000);
        tx.queue(",9").expect("queue");
        assert!(!tx.is_active());
        let out = run(&mut tx, 0, AT_8K, PAUSE_FRAMES + TONE_FRAMES);
        let pause = PAUSE_FRAMES as usize;
        assert!(out[..pause].iter().all(Option::is_none));
        assert!(out[pause].is_some_and(|p| p.marker && p.payload[0] == 9));
    }

    #[test]
    fn digits_queued_during_the_gap_wait_for_it() {
        let mut tx = DtmfSender::new(8_000);
        tx.queue("4").expect("queue");
        run(&mut tx, 0, AT_8K, TONE_FRAMES + 1); // tone + one gap frame
        tx.queue("5").expect("queue");
        assert!(!tx.is_active(), "still in the gap");
        let out = run(&mut tx, (TONE_FRAMES + 1) * AT_8K, AT_8K, GAP_FRAMES + 1);
        let rest = GAP_FRAMES as usize - 1;
        assert!(
            out[..rest].iter().all(Option::is_none),
            "the rest of the gap"
        );
        let duration = u16::try_from(AT_8K).expect("fits");
        assert_eq!(
            out[rest],
            Some(packet(5, false, duration, CYCLE * AT_8K, true))
        );
    }

    #[test]
    fn timestamps_wrap() {
        let mut tx = DtmfSender::new(8_000);
        tx.queue("78").expect("queue");
        let ts0 = u32::MAX - 500;
        let out = run(&mut tx, ts0, AT_8K, 2 * CYCLE);
        let tone = TONE_FRAMES as usize;
        let first: Vec<u32> = out[..tone].iter().flatten().map(|p| p.timestamp).collect();
        assert_eq!(first, vec![ts0; tone]);
        let t2 = ts0.wrapping_add(CYCLE * AT_8K);
        assert_eq!(out[CYCLE as usize].map(|p| p.timestamp), Some(t2));
        assert!(t2 < 1_000, "really wrapped");
        assert_eq!(decode(wire(&out)), "78");
    }

    #[test]
    fn receiver_decodes_the_senders_output() {
        let digits = "0123456789*#ABCD";
        let mut tx = DtmfSender::new(8_000);
        tx.queue(digits).expect("queue");
        let out = run(&mut tx, 12_345, AT_8K, 16 * CYCLE + 5);
        let packets = wire(&out);
        assert_eq!(decode(packets.iter().copied()), digits);
        // Each event's first packet lost.
        let lost_first = out.iter().flatten().filter(|p| !p.marker).flat_map(|p| {
            std::iter::repeat_n((p.timestamp, p.payload), usize::from(p.redundant_copies))
        });
        assert_eq!(decode(lost_first), digits);
        // Only the end packets arrive, each duplicated once more.
        let ends = packets
            .iter()
            .filter(|(_, p)| p[1] & 0x80 != 0)
            .flat_map(|&x| [x, x]);
        assert_eq!(decode(ends), digits);
    }

    #[test]
    fn repeated_digits_are_separate_events() {
        let mut tx = DtmfSender::new(48_000);
        tx.queue("555").expect("queue");
        let out = run(&mut tx, 7, AT_48K, 3 * CYCLE + 6);
        assert_eq!(decode(wire(&out)), "555");
        // Even when every end packet is lost.
        let no_ends = wire(&out).into_iter().filter(|(_, p)| p[1] & 0x80 == 0);
        assert_eq!(decode(no_ends), "555");
    }

    #[test]
    fn late_packets_of_an_earlier_event_are_ignored() {
        let mut tx = DtmfSender::new(8_000);
        tx.queue("12").expect("queue");
        let packets = wire(&run(&mut tx, 0, AT_8K, 2 * CYCLE));
        let mut rx = DtmfReceiver::default();
        assert_eq!(rx.on_packet(packets[0].0, &packets[0].1), Some('1'));
        let second = packets
            .iter()
            .find(|(ts, _)| *ts != 0)
            .copied()
            .expect("digit 2");
        assert_eq!(rx.on_packet(second.0, &second.1), Some('2'));
        for (ts, p) in packets.iter().filter(|(ts, _)| *ts == 0) {
            assert_eq!(rx.on_packet(*ts, p), None, "late '1' packet");
        }
        // A jump far back is a new stream, not a late packet.
        assert_eq!(
            rx.on_packet(second.0.wrapping_sub(1_000_000), &[9, 10, 0, 160]),
            Some('9')
        );
    }

    #[test]
    fn long_event_segments_give_one_digit() {
        // A '#' held for 20 s at 8 kHz, a packet a frame: segments of 0xFFFF (RFC 4733
        // §2.5.1.3).
        let mut rx = DtmfReceiver::default();
        let mut digits = String::new();
        let t0 = u32::MAX - 70_000; // and wrap on the way
        let mut seg_ts = t0;
        let mut seg_dur: u32 = 0;
        for _ in 0..20 * TICKS_PER_SECOND {
            seg_dur += AT_8K;
            if seg_dur > 0xFFFF {
                // The segment ends at 0xFFFF; the next starts where it ended.
                let p = [11, 10, 0xFF, 0xFF];
                digits.extend(rx.on_packet(seg_ts, &p));
                seg_ts = seg_ts.wrapping_add(0xFFFF);
                seg_dur -= 0xFFFF;
            }
            let [hi, lo] = u16::try_from(seg_dur).expect("fits").to_be_bytes();
            digits.extend(rx.on_packet(seg_ts, &[11, 10, hi, lo]));
        }
        let [hi, lo] = u16::try_from(seg_dur).expect("fits").to_be_bytes();
        for _ in 0..3 {
            digits.extend(rx.on_packet(seg_ts, &[11, 0x8A, hi, lo]));
        }
        assert_eq!(digits, "#");
        // The same key pressed again later is a new digit.
        let again = seg_ts.wrapping_add(u32::from(u16::from_be_bytes([hi, lo])) + 480);
        assert_eq!(rx.on_packet(again, &[11, 10, 0, 160]), Some('#'));
    }

    #[test]
    fn long_event_with_lost_segment_end_gives_one_digit() {
        let mut rx = DtmfReceiver::default();
        assert_eq!(rx.on_packet(100, &[3, 10, 0, 160]), Some('3'));
        // Last packets of the first segment (up to 0xFFFF) lost: seen 0xFD00.
        assert_eq!(rx.on_packet(100, &[3, 10, 0xFD, 0x00]), None);
        assert_eq!(rx.on_packet(100 + 0xFFFF, &[3, 10, 0x01, 0x00]), None);
        assert_eq!(rx.on_packet(100 + 0xFFFF, &[3, 0x8A, 0x02, 0x00]), None);
    }

    #[test]
    fn short_and_foreign_payloads_are_ignored() {
        let mut rx = DtmfReceiver::default();
        assert_eq!(rx.on_packet(0, &[]), None);
        assert_eq!(rx.on_packet(0, &[1, 10, 0]), None);
        assert_eq!(rx.on_packet(0, &[16, 10, 0, 160]), None, "flash");
        assert_eq!(rx.on_packet(0, &[255, 10, 0, 160]), None);
        // Ignored events do not disturb the state: the digit at ts 0 still counts.
        assert_eq!(rx.on_packet(0, &[4, 10, 0, 160, 0xAA, 0xBB]), Some('4'));
        assert_eq!(rx.on_packet(0, &[4, 0x8A, 0, 160]), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mut rx = DtmfReceiver::default();
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut buf = [0u8; 12];
        let mut digits = 0;
        for _ in 0..100_000 {
            let r = next();
            let len = (r % 13) as usize;
            for b in &mut buf {
                *b = (next() & 0x1F) as u8; // mostly valid event codes
            }
            if rx.on_packet((r >> 32) as u32, &buf[..len]).is_some() {
                digits += 1;
            }
        }
        assert!(digits > 0, "some random packets are new events");
        let mut tx = DtmfSender::new(0);
        tx.queue("1").expect("queue");
        let sent = run(&mut tx, 0, 0, CYCLE).iter().flatten().count();
        assert_eq!(sent, TONE_FRAMES as usize);
        let mut tx = DtmfSender::new(u32::MAX);
        tx.queue("1").expect("queue");
        let out = run(&mut tx, 0, 0, CYCLE);
        assert!(out.iter().flatten().all(|p| p.payload[2..] == [0xFF, 0xFF]));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            DtmfError::InvalidDigit('x').to_string(),
            "'x' is not a DTMF digit (use 0-9 * # A-D, ',' for a pause)"
        );
        assert!(DtmfError::QueueFull {
            queued: 64,
            adding: 1,
            capacity: 64
        }
        .to_string()
        .contains("queue full"));
    }
}
