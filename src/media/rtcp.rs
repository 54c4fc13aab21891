//! RTCP reports for one call leg (RFC 3550 §6, appendix A); the RTP wire format is
//! [`super::rtp`].
//!
//! Owns one leg's RTCP state ([`RtcpSession`]): receive statistics of the
//! remote source (loss, jitter, extended highest sequence number, probation,
//! SSRC change), the remote's
//! last SR for the LSR/DLSR we echo, round-trip time from the reports about
//! us, and the compound SR/RR + SDES CNAME we send.
//! It must not read clocks (every `now` and wallclock is an argument), touch
//! sockets, allocate per packet once the caller's buffers have capacity, log,
//! or panic on any input: malformed packets are [`RtpError`]s.
//!
//! ```text
//!   outgoing:  payload ─► RtpSender::packet ─► RTP bytes ─────────────────────► socket
//!                              │ packets/octets sent
//!                              ▼
//!   timer (next_report) ─► RtcpSession::report ─► SR|RR + SDES CNAME ────────► socket
//!
//!   incoming:  socket ─► is_rtcp? ─ yes ─► RtcpSession::on_rtcp ─► LSR/DLSR kept, RTT
//!                           └─ no ──► parse_rtp ─► RtcpSession::on_rtp ─► loss, jitter
//!                                         └─► jitter buffer / codec (elsewhere)
//!
//!   RTT (RFC 3550 6.4.1), all in NTP middle-32 units (1/65536 s), our clock only:
//!     we: SR at T1 (NTP middle = LSR) ──► they: hold DLSR ──► RR back, arrives at A
//!     RTT = A − LSR − DLSR
//! ```
//!
//! RTCP is written by hand here: `rtp-rs` has no RTCP support. Malformed reports are
//! [`RtpError`]s.
//!
//! Receive statistics follow RFC 3550 A.1 (sequence validation: a new source
//! is on probation until two sequential packets arrive; a jump of more than
//! 3000 is accepted only when confirmed by the next packet), A.3 (expected,
//! lost, interval fraction) and A.8 (interarrival jitter), with one addition:
//! a 128-packet history of received sequence numbers, so duplicates are not
//! counted as received (A.1 counts them, which hides losses).
//! A packet from a new SSRC starts a candidate source; when it passes
//! probation it replaces the current one and statistics restart (after a
//! transfer). A stray packet from another SSRC therefore resets nothing.
//!
//! The report interval is [`DEFAULT_REPORT_INTERVAL`] (settable), randomised
//! 0.5–1.5× per RFC 3550 6.3.1 by a PRNG seeded from the local SSRC, so a
//! schedule is deterministic for tests; the first report is due
//! [`FIRST_REPORT_DELAY`] after the session starts.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::rtp::{RtpError, RtpPacket, RtpSender};

/// Mean time between two RTCP reports (RFC 3550's minimum interval).
pub const DEFAULT_REPORT_INTERVAL: Duration = Duration::from_secs(5);

/// Delay from [`RtcpSession::new`] to the first report.
pub const FIRST_REPORT_DELAY: Duration = Duration::from_secs(1);

/// RTCP packet types (RFC 3550 12.1).
const RTCP_SR: u8 = 200;
const RTCP_RR: u8 = 201;
const RTCP_SDES: u8 = 202;

/// SDES item type of the canonical name.
const SDES_CNAME: u8 = 1;

/// Bytes of one reception report block.
const REPORT_BLOCK_LEN: usize = 24;

/// Bytes of an SR's body before its report blocks: SSRC and sender info.
const SR_BODY_FIXED: usize = 24;

/// Bytes of an RR's body before its report blocks: the SSRC.
const RR_BODY_FIXED: usize = 4;

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// NTP middle-32 units per second (16.16 fixed point).
const NTP_SHORT_PER_SEC: u64 = 65_536;

/// RTTs above this (in 1/65536 s) are taken as a bogus LSR and ignored.
const MAX_RTT: u32 = 60 * 65_536;

/// Negative RTTs down to this (in 1/65536 s, ≈ 1 ms) are rounding and read as 0.
const RTT_ROUNDING: u32 = 66;

/// RFC 3550 A.1 sequence validation constants.
const RTP_SEQ_MOD: u32 = 1 << 16;
const MAX_DROPOUT: u16 = 3000;
const MAX_MISORDER: u16 = 100;
const MIN_SEQUENTIAL: u8 = 2;

/// Call quality as we receive it, plus the round-trip time.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Quality {
    /// Cumulative loss of the remote source since it (re)started, percent of
    /// expected packets (RFC 3550 A.3); 0 when nothing is lost.
    pub loss_pct: f32,
    /// Interarrival jitter (RFC 3550 A.8) in milliseconds.
    pub jitter_ms: f32,
    /// Round-trip time from the last report about us with an LSR.
    pub rtt_ms: Option<f32>,
    /// Packets received from the remote source (duplicates not counted).
    pub packets_received: u64,
    /// Expected minus received (negative only in corner cases).
    pub packets_lost: i64,
}

/// One leg's RTCP: statistics of what we receive, the remote's last SR,
/// round-trip time, and the report schedule.
///
/// `local_ssrc` must be the SSRC of the leg's [`RtpSender`]: reports from
/// the remote are about that SSRC.
#[derive(Debug, Clone)]
pub struct RtcpSession {
    local_ssrc: u32,
    clock_rate: u32,
    epoch: Instant,
    interval: Duration,
    next_report: Instant,
    rng: u32,
    current: Option<Source>,
    candidate: Option<Source>,
    last_sr: Option<LastSr>,
    rtt_ms: Option<f32>,
    interval_fraction: u8,
}

/// The remote's last sender report: what we echo as LSR/DLSR.
#[derive(Debug, Clone, Copy)]
struct LastSr {
    ssrc: u32,
    ntp_middle: u32,
    received: Instant,
}

/// Receive state of one remote source (RFC 3550 A.1 `source`).
#[derive(Debug, Clone)]
struct Source {
    ssrc: u32,
    max_seq: u16,
    /// Sequence number wraps seen.
    cycles: u64,
    base_seq: u16,
    bad_seq: u32,
    probation: u8,
    received: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Bit `i` set: sequence `max_seq - i` was received.
    history: u128,
    /// Relative transit time of the previous packet, in RTP units.
    transit: Option<u32>,
    /// Jitter estimate in RTP timestamp units.
    jitter: f64,
}

impl Source {
    /// A newly seen source, on probation (A.1 "new source").
    fn on_probation(ssrc: u32, seq: u16) -> Source {
        let mut s = Source {
            ssrc,
            max_seq: seq,
            cycles: 0,
            base_seq: seq,
            bad_seq: RTP_SEQ_MOD + 1,
            probation: MIN_SEQUENTIAL,
            received: 0,
            expected_prior: 0,
            received_prior: 0,
            history: 0,
            transit: None,
            jitter: 0.0,
        };
        s.init_seq(seq);
        s.max_seq = seq.wrapping_sub(1);
        s.probation = MIN_SEQUENTIAL;
        s
    }

    fn init_seq(&mut self, seq: u16) {
        self.base_seq = seq;
        self.max_seq = seq;
        self.bad_seq = RTP_SEQ_MOD + 1;
        self.cycles = 0;
        self.received = 0;
        self.received_prior = 0;
        self.expected_prior = 0;
        self.history = 1;
        self.transit = None;
        self.jitter = 0.0;
    }

    fn extended_max(&self) -> u64 {
        (self.cycles << 16) | u64::from(self.max_seq)
    }

    fn expected(&self) -> u64 {
        (self.extended_max() + 1).saturating_sub(u64::from(self.base_seq))
    }

    fn lost(&self) -> i64 {
        let expected = i64::try_from(self.expected()).unwrap_or(i64::MAX);
        let received = i64::try_from(self.received).unwrap_or(i64::MAX);
        expected - received
    }

    /// A.1 `update_seq`, plus duplicate detection: true when the packet
    /// counts as received (valid source, not a duplicate, not a bad jump).
    fn update_seq(&mut self, seq: u16) -> bool {
        let udelta = seq.wrapping_sub(self.max_seq);
        if self.probation > 0 {
            if seq == self.max_seq.wrapping_add(1) {
                self.probation -= 1;
                self.max_seq = seq;
                if self.probation == 0 {
                    self.init_seq(seq);
                    self.received += 1;
                    return true;
                }
            } else {
                self.probation = MIN_SEQUENTIAL - 1;
                self.max_seq = seq;
            }
            return false;
        }
        if udelta == 0 {
            // The newest packet again.
            return false;
        }
        if udelta < MAX_DROPOUT {
            // In order, with a permissible gap.
            if seq < self.max_seq {
                self.cycles += 1;
            }
            self.max_seq = seq;
            self.history = if udelta >= 128 {
                1
            } else {
                (self.history << udelta) | 1
            };
        } else if u32::from(udelta) <= RTP_SEQ_MOD - u32::from(MAX_MISORDER) {
            // A very large jump: believe it only if the next packet follows.
            if u32::from(seq) == self.bad_seq {
                self.init_seq(seq);
            } else {
                self.bad_seq = (u32::from(seq) + 1) & (RTP_SEQ_MOD - 1);
                return false;
            }
        } else {
            // Late (reordered) or duplicate, at most MAX_MISORDER behind.
            let behind = self.max_seq.wrapping_sub(seq);
            let extended = self.extended_max().checked_sub(u64::from(behind));
            if extended.is_none_or(|e| e < u64::from(self.base_seq)) {
                // From before the stream (re)started: not in `expected`.
                return false;
            }
            let bit = 1u128 << behind;
            if self.history & bit != 0 {
                return false;
            }
            self.history |= bit;
        }
        self.received += 1;
        true
    }

    /// A.8 interarrival jitter; `arrival` in RTP timestamp units.
    fn update_jitter(&mut self, arrival: u32, timestamp: u32) {
        let transit = arrival.wrapping_sub(timestamp);
        if let Some(prev) = self.transit {
            let d = (transit.wrapping_sub(prev) as i32).unsigned_abs();
            self.jitter += (f64::from(d) - self.jitter) / 16.0;
        }
        self.transit = Some(transit);
    }
}

/// One RTCP packet of a compound, header checked, padding removed.
#[derive(Debug, Clone, Copy)]
struct RtcpView<'a> {
    packet_type: u8,
    /// The 5-bit count field (report blocks for SR/RR, chunks for SDES).
    count: u8,
    /// Everything after the 4-byte header, without padding.
    body: &'a [u8],
}

/// Walks a compound RTCP packet; stops after the first error.
struct RtcpIter<'a> {
    rest: &'a [u8],
    started: bool,
}

impl<'a> RtcpIter<'a> {
    fn new(buf: &'a [u8]) -> RtcpIter<'a> {
        RtcpIter {
            rest: buf,
            started: false,
        }
    }
}

impl<'a> Iterator for RtcpIter<'a> {
    type Item = Result<RtcpView<'a>, RtpError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            if self.started {
                return None;
            }
            self.started = true;
            return Some(Err(RtpError::Empty));
        }
        self.started = true;
        match parse_rtcp_one(self.rest) {
            Ok((view, used)) => {
                self.rest = self.rest.get(used..).unwrap_or(&[]);
                Some(Ok(view))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Parses the RTCP packet at the start of `buf`; returns it and its length.
fn parse_rtcp_one(buf: &[u8]) -> Result<(RtcpView<'_>, usize), RtpError> {
    let [first, packet_type, len_hi, len_lo, ..] = *buf else {
        return Err(RtpError::Truncated {
            need: 4,
            have: buf.len(),
        });
    };
    if first >> 6 != 2 {
        return Err(RtpError::Version(first >> 6));
    }
    if !(192..=223).contains(&packet_type) {
        return Err(RtpError::NotRtcp(packet_type));
    }
    let len = (usize::from(u16::from_be_bytes([len_hi, len_lo])) + 1) * 4;
    let Some(packet) = buf.get(..len) else {
        return Err(RtpError::RtcpLength {
            declared: len,
            available: buf.len(),
        });
    };
    let mut body = packet.get(4..).unwrap_or(&[]);
    if first & 0x20 != 0 {
        let pad = packet.last().copied().unwrap_or(0);
        let keep = body.len().checked_sub(usize::from(pad));
        match keep {
            Some(keep) if pad != 0 => body = body.get(..keep).unwrap_or(&[]),
            _ => return Err(RtpError::Padding { pad, len }),
        }
    }
    let count = first & 0x1f;
    let blocks = usize::from(count) * REPORT_BLOCK_LEN;
    let need = match packet_type {
        RTCP_SR => SR_BODY_FIXED + blocks,
        RTCP_RR => RR_BODY_FIXED + blocks,
        _ => 0,
    };
    if body.len() < need {
        return Err(RtpError::RtcpBody {
            packet_type,
            count,
            len: body.len(),
        });
    }
    Ok((
        RtcpView {
            packet_type,
            count,
            body,
        },
        len,
    ))
}

/// Big-endian u32 at `at`, 0 past the end (callers check lengths first).
fn be32(buf: &[u8], at: usize) -> u32 {
    match buf.get(at..at.saturating_add(4)) {
        Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]),
        _ => 0,
    }
}

/// The 64-bit NTP timestamp of a wallclock time (0 before 1970).
fn ntp_from_wallclock(wallclock: SystemTime) -> u64 {
    let since_unix = wallclock
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO);
    let secs = since_unix.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(since_unix.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// The middle 32 bits of an NTP timestamp (16.16 seconds), as LSR uses.
fn ntp_middle(ntp: u64) -> u32 {
    (ntp >> 16) as u32
}

/// A duration in 1/65536 s, saturating (DLSR).
fn ntp_short(d: Duration) -> u32 {
    let units = d.as_nanos() * u128::from(NTP_SHORT_PER_SEC) / 1_000_000_000;
    u32::try_from(units).unwrap_or(u32::MAX)
}

/// Appends `cname` (at most 255 bytes, cut at a character boundary) as an
/// SDES packet with one chunk for `ssrc`.
fn write_sdes(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    let mut end = cname.len().min(255);
    while !cname.is_char_boundary(end) {
        end -= 1;
    }
    let name = cname.as_bytes().get(..end).unwrap_or(&[]);
    // SSRC, item type, item length, text, at least one END octet, to a word.
    let chunk = (4 + 2 + name.len() + 1).div_ceil(4) * 4;
    let words = (4 + chunk) / 4 - 1;
    out.extend_from_slice(&[0x81, RTCP_SDES]);
    out.extend_from_slice(&(words as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(&[SDES_CNAME, name.len() as u8]);
    out.extend_from_slice(name);
    let padding = chunk - 4 - 2 - name.len();
    out.extend(std::iter::repeat_n(0u8, padding));
}

impl RtcpSession {
    /// A session for the leg whose outgoing SSRC is `local_ssrc`, receiving
    /// a stream with `clock_rate` (Hz, for jitter); the first report is due
    /// [`FIRST_REPORT_DELAY`] after `now`.
    pub fn new(local_ssrc: u32, clock_rate: u32, now: Instant) -> RtcpSession {
        RtcpSession {
            local_ssrc,
            clock_rate: clock_rate.max(1),
            epoch: now,
            interval: DEFAULT_REPORT_INTERVAL,
            next_report: now.checked_add(FIRST_REPORT_DELAY).unwrap_or(now),
            rng: (local_ssrc ^ 0x9e37_79b9).max(1),
            current: None,
            candidate: None,
            last_sr: None,
            rtt_ms: None,
            interval_fraction: 0,
        }
    }

    /// Sets the mean report interval for reports scheduled from now on
    /// (each randomised 0.5–1.5×). Does not move the first report.
    pub fn set_report_interval(&mut self, interval: Duration) {
        self.interval = interval;
    }

    /// Every accepted incoming RTP packet: updates loss, jitter (RFC 3550
    /// A.3, A.8) and the extended highest sequence number, validates new
    /// sources (probation) and restarts statistics when the remote SSRC
    /// changes. Duplicates and reordering are not counted as loss.
    pub fn on_rtp(&mut self, now: Instant, packet: &RtpPacket<'_>) {
        let arrival = self.rtp_clock(now);
        if let Some(current) = self.current.as_mut() {
            if current.ssrc == packet.ssrc {
                if current.update_seq(packet.sequence) {
                    current.update_jitter(arrival, packet.timestamp);
                }
                return;
            }
        }
        if self.candidate.as_ref().map(|c| c.ssrc) != Some(packet.ssrc) {
            self.candidate = Some(Source::on_probation(packet.ssrc, packet.sequence));
        }
        if let Some(candidate) = self.candidate.as_mut() {
            if candidate.update_seq(packet.sequence) {
                candidate.update_jitter(arrival, packet.timestamp);
                self.current = self.candidate.take();
                self.interval_fraction = 0;
            }
        }
    }

    /// An incoming compound RTCP packet: keeps the remote's SR (for the
    /// LSR/DLSR we send back) and takes the RTT from any SR/RR report block
    /// about our SSRC (RTT = arrival − LSR − DLSR, RFC 3550 6.4.1), with
    /// `wallclock` the time it arrived. SDES, BYE, APP and feedback packets
    /// are skipped. A malformed compound is an error and changes nothing.
    pub fn on_rtcp(
        &mut self,
        now: Instant,
        wallclock: SystemTime,
        buf: &[u8],
    ) -> Result<(), RtpError> {
        if buf.len() % 4 != 0 {
            return Err(RtpError::RtcpAlignment(buf.len()));
        }
        for packet in RtcpIter::new(buf) {
            packet?;
        }
        let arrival = ntp_middle(ntp_from_wallclock(wallclock));
        for packet in RtcpIter::new(buf).flatten() {
            let blocks = match packet.packet_type {
                RTCP_SR => {
                    let ssrc = be32(packet.body, 0);
                    if ssrc != self.local_ssrc {
                        let ntp = (u64::from(be32(packet.body, 4)) << 32)
                            | u64::from(be32(packet.body, 8));
                        self.last_sr = Some(LastSr {
                            ssrc,
                            ntp_middle: ntp_middle(ntp),
                            received: now,
                        });
                    }
                    packet.body.get(SR_BODY_FIXED..)
                }
                RTCP_RR => packet.body.get(RR_BODY_FIXED..),
                _ => None,
            };
            let blocks = blocks.unwrap_or(&[]);
            for block in blocks
                .chunks_exact(REPORT_BLOCK_LEN)
                .take(usize::from(packet.count))
            {
                self.on_report_block(block, arrival);
            }
        }
        Ok(())
    }

    /// A report block: if it is about us and echoes an SR, the RTT.
    fn on_report_block(&mut self, block: &[u8], arrival: u32) {
        if be32(block, 0) != self.local_ssrc {
            return;
        }
        let lsr = be32(block, 16);
        let dlsr = be32(block, 20);
        if lsr == 0 {
            return;
        }
        let mut rtt = arrival.wrapping_sub(lsr).wrapping_sub(dlsr);
        if rtt > i32::MAX as u32 {
            if rtt.wrapping_neg() > RTT_ROUNDING {
                return;
            }
            rtt = 0;
        }
        if rtt > MAX_RTT {
            return;
        }
        self.rtt_ms = Some(rtt as f32 * 1000.0 / NTP_SHORT_PER_SEC as f32);
    }

    /// When the next report is due.
    pub fn next_report(&self) -> Instant {
        self.next_report
    }

    /// Writes a compound RTCP packet into `out` (cleared first; no
    /// allocation once it holds ~100 bytes plus the CNAME): an SR if
    /// `sender` is `Some((rtp_sender, rtp_timestamp_now))`, else an RR, with
    /// one report block for the remote source if one is valid, then SDES
    /// CNAME. Closes the loss interval and schedules the next report.
    pub fn report(
        &mut self,
        now: Instant,
        wallclock: SystemTime,
        sender: Option<(&RtpSender, u32)>,
        cname: &str,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        let block = self.report_block(now);
        let count = u8::from(block.is_some());
        let blocks_len = usize::from(count) * REPORT_BLOCK_LEN;
        match sender {
            Some((rtp, rtp_timestamp)) => {
                let words = (4 + SR_BODY_FIXED + blocks_len) / 4 - 1;
                out.extend_from_slice(&[0x80 | count, RTCP_SR]);
                out.extend_from_slice(&(words as u16).to_be_bytes());
                out.extend_from_slice(&self.local_ssrc.to_be_bytes());
                out.extend_from_slice(&ntp_from_wallclock(wallclock).to_be_bytes());
                out.extend_from_slice(&rtp_timestamp.to_be_bytes());
                out.extend_from_slice(&rtp.packets_sent().to_be_bytes());
                out.extend_from_slice(&rtp.octets_sent().to_be_bytes());
            }
            None => {
                let words = (4 + RR_BODY_FIXED + blocks_len) / 4 - 1;
                out.extend_from_slice(&[0x80 | count, RTCP_RR]);
                out.extend_from_slice(&(words as u16).to_be_bytes());
                out.extend_from_slice(&self.local_ssrc.to_be_bytes());
            }
        }
        if let Some(block) = block {
            out.extend_from_slice(&block);
        }
        write_sdes(out, self.local_ssrc, cname);
        self.schedule(now);
    }

    /// The report block about the current remote source, closing the
    /// interval for the fraction lost (A.3).
    fn report_block(&mut self, now: Instant) -> Option<[u8; REPORT_BLOCK_LEN]> {
        let source = self.current.as_mut()?;
        let expected = source.expected();
        let expected_interval = expected.saturating_sub(source.expected_prior);
        let received_interval = source.received.saturating_sub(source.received_prior);
        source.expected_prior = expected;
        source.received_prior = source.received;
        let lost_interval = expected_interval as i64 - received_interval as i64;
        let fraction = if expected_interval == 0 || lost_interval <= 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval as i64).min(255) as u8
        };
        self.interval_fraction = fraction;
        let lost = source.lost().clamp(-0x80_0000, 0x7f_ffff) as i32 as u32 & 0x00ff_ffff;
        let (lsr, dlsr) = match self.last_sr {
            Some(sr) if sr.ssrc == source.ssrc => (
                sr.ntp_middle,
                ntp_short(now.saturating_duration_since(sr.received)),
            ),
            _ => (0, 0),
        };
        let mut block = [0u8; REPORT_BLOCK_LEN];
        block[0..4].copy_from_slice(&source.ssrc.to_be_bytes());
        block[4..8].copy_from_slice(&((u32::from(fraction) << 24) | lost).to_be_bytes());
        block[8..12].copy_from_slice(&(source.extended_max() as u32).to_be_bytes());
        block[12..16].copy_from_slice(&(source.jitter as u32).to_be_bytes());
        block[16..20].copy_from_slice(&lsr.to_be_bytes());
        block[20..24].copy_from_slice(&dlsr.to_be_bytes());
        Some(block)
    }

    /// Next report at `now` + interval × a deterministic factor in [0.5, 1.5).
    fn schedule(&mut self, now: Instant) {
        // xorshift32
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 17;
        self.rng ^= self.rng << 5;
        let factor = 0.5 + f64::from(self.rng) / 4_294_967_296.0;
        let delay = Duration::try_from_secs_f64(self.interval.as_secs_f64() * factor)
            .unwrap_or(DEFAULT_REPORT_INTERVAL);
        self.next_report = now.checked_add(delay).unwrap_or(now);
    }

    /// `now` on the remote stream's RTP clock (wrapping).
    fn rtp_clock(&self, now: Instant) -> u32 {
        let nanos = now.saturating_duration_since(self.epoch).as_nanos();
        (nanos * u128::from(self.clock_rate) / 1_000_000_000) as u32
    }

    /// Receive quality of the current remote source, and the last RTT.
    pub fn quality(&self) -> Quality {
        let mut q = Quality {
            rtt_ms: self.rtt_ms,
            ..Quality::default()
        };
        if let Some(s) = &self.current {
            let expected = s.expected();
            let lost = s.lost();
            q.packets_received = s.received;
            q.packets_lost = lost;
            if expected > 0 && lost > 0 {
                q.loss_pct = (lost as f64 * 100.0 / expected as f64) as f32;
            }
            q.jitter_ms = (s.jitter * 1000.0 / f64::from(self.clock_rate)) as f32;
        }
        q
    }

    /// Loss in the last closed report interval (the fraction lost we last
    /// reported), in percent.
    pub fn interval_loss_pct(&self) -> f32 {
        f32::from(self.interval_fraction) * 100.0 / 256.0
    }

    /// The SSRC of the validated remote source, if any.
    pub fn remote_ssrc(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.ssrc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::rtp::{is_rtcp, parse_rtp, RTP_HEADER_LEN};

    #[allow(clippy::disallowed_methods)]
    fn epoch() -> Instant {
        Instant::now()
    }

    /// A fixed wallclock: 2023-11-14 22:13:20.5 UTC.
    fn wall0() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_500)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// splitmix64: a seeded, dependency-free PRNG for the fuzz loops.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn rtp_bytes(ssrc: u32, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        RtpSender::new(ssrc, seq).packet(0, ts, false, payload, &mut out);
        out
    }

    /// Feeds `seqs` (20 ms apart on the wire, arriving on time) from `ssrc`.
    fn feed(session: &mut RtcpSession, t0: Instant, ssrc: u32, seqs: &[u16]) {
        for (i, &seq) in seqs.iter().enumerate() {
            let packet = RtpPacket {
                payload_type: 0,
                sequence: seq,
                timestamp: u32::from(seq).wrapping_mul(160),
                ssrc,
                marker: false,
                payload: &[0; 160],
            };
            session.on_rtp(t0 + ms(20 * i as u64), &packet);
        }
    }

    fn views(buf: &[u8]) -> Vec<RtcpView<'_>> {
        RtcpIter::new(buf)
            .collect::<Result<Vec<_>, _>>()
            .expect("valid compound")
    }

    // ---- receive statistics ----

    #[test]
    fn loss_counts_known_gaps() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        let seqs: Vec<u16> = (0..1000).filter(|i| i % 10 != 5).collect();
        feed(&mut s, t0, 77, &seqs);
        let q = s.quality();
        // Packet 0 is eaten by probation: the stream counts from 1 to 999.
        assert_eq!(q.packets_received, 899);
        assert_eq!(q.packets_lost, 100);
        assert!((q.loss_pct - 100.0 * 100.0 / 999.0).abs() < 1e-3, "{q:?}");
        assert_eq!(s.remote_ssrc(), Some(77));
    }

    #[test]
    fn reordering_and_duplicates_are_not_loss() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        let mut seqs: Vec<u16> = (0..200).collect();
        for i in (4..196).step_by(4) {
            seqs.swap(i, i + 1); // late by one
        }
        seqs.swap(50, 58); // late by eight
        let mut with_dups = Vec::new();
        for (i, &seq) in seqs.iter().enumerate() {
            with_dups.push(seq);
            if i % 7 == 0 {
                with_dups.push(seq); // immediate duplicate
            }
            if i % 13 == 0 && i > 20 {
                with_dups.push(seq - 10); // late duplicate
            }
        }
        feed(&mut s, t0, 9, &with_dups);
        let q = s.quality();
        assert_eq!(q.packets_received, 199);
        assert_eq!(q.packets_lost, 0);
        assert_eq!(q.loss_pct, 0.0);
    }

    #[test]
    fn a_duplicate_does_not_hide_a_loss() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        feed(&mut s, t0, 9, &[0, 1, 2, 3, 3, 5, 6]);
        let q = s.quality();
        assert_eq!(q.packets_received, 5);
        assert_eq!(q.packets_lost, 1);
    }

    #[test]
    fn sequence_wrap_extends_the_highest_sequence() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        let seqs: Vec<u16> = (0..200u32).map(|i| (65_500 + i) as u16).collect();
        feed(&mut s, t0, 9, &seqs);
        let mut out = Vec::new();
        s.report(t0 + ms(4000), wall0(), None, "x", &mut out);
        let rr = views(&out)[0];
        assert_eq!(rr.count, 1);
        let block = &rr.body[4..28];
        assert_eq!(be32(block, 0), 9);
        assert_eq!(be32(block, 8), 65_500 + 199, "one cycle plus 163");
        assert_eq!(be32(block, 4), 0, "nothing lost");
        assert_eq!(s.quality().packets_received, 199);
    }

    #[test]
    fn a_big_jump_needs_confirmation() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        feed(&mut s, t0, 9, &(0..50).collect::<Vec<_>>());
        feed(&mut s, t0 + ms(1000), 9, &[20_000, 50, 51]);
        let q = s.quality();
        assert_eq!(
            (q.packets_received, q.packets_lost),
            (51, 0),
            "stray jump ignored"
        );
        feed(&mut s, t0 + ms(2000), 9, &[30_000, 30_001, 30_002]);
        let q = s.quality();
        assert_eq!(
            (q.packets_received, q.packets_lost),
            (2, 0),
            "confirmed jump restarts the count at 30001"
        );
    }

    #[test]
    fn a_new_ssrc_resets_statistics_but_a_stray_packet_does_not() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        let seqs: Vec<u16> = (0..100).filter(|i| i % 10 != 5).collect();
        feed(&mut s, t0, 0xaaaa, &seqs);
        let before = s.quality();
        assert_eq!(before.packets_lost, 10);
        feed(&mut s, t0 + ms(2000), 0xcccc, &[4000]);
        assert_eq!(s.quality(), before);
        assert_eq!(s.remote_ssrc(), Some(0xaaaa));
        feed(
            &mut s,
            t0 + ms(3000),
            0xbbbb,
            &(7000..7020).collect::<Vec<_>>(),
        );
        assert_eq!(s.remote_ssrc(), Some(0xbbbb));
        let q = s.quality();
        assert_eq!((q.packets_received, q.packets_lost), (19, 0));
        assert_eq!(q.loss_pct, 0.0);
    }

    #[test]
    fn jitter_matches_synthetic_arrival_jitter() {
        for (clock, ts_step) in [(8000u32, 160u32), (48_000, 960)] {
            let t0 = epoch();
            let mut s = RtcpSession::new(1, clock, t0);
            for i in 0..600u32 {
                // Alternately on time and 5 ms late: |D| = 5 ms every packet.
                let arrival = t0 + ms(20 * u64::from(i) + 5 * u64::from(i % 2));
                let packet = RtpPacket {
                    payload_type: 0,
                    sequence: i as u16,
                    timestamp: (u32::MAX - 5000).wrapping_add(i * ts_step),
                    ssrc: 3,
                    marker: false,
                    payload: &[],
                };
                s.on_rtp(arrival, &packet);
            }
            let j = s.quality().jitter_ms;
            assert!((j - 5.0).abs() < 0.01, "clock {clock}: jitter {j}");
        }
        // Perfectly paced arrivals: no jitter.
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        feed(&mut s, t0, 3, &(0..100).collect::<Vec<_>>());
        assert_eq!(s.quality().jitter_ms, 0.0);
    }

    #[test]
    fn interval_fraction_lost_is_per_report() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        let seqs: Vec<u16> = (0..=100).filter(|i| i % 4 != 3).collect();
        feed(&mut s, t0, 9, &seqs);
        let mut out = Vec::new();
        s.report(t0 + ms(3000), wall0(), None, "x", &mut out);
        let block = &views(&out)[0].body[4..28];
        assert_eq!(block[4], 64, "25 of 100 lost: 64/256");
        assert_eq!(be32(block, 4) & 0xff_ffff, 25);
        assert_eq!(s.interval_loss_pct(), 25.0);
        feed(&mut s, t0 + ms(3000), 9, &(101..200).collect::<Vec<_>>());
        s.report(t0 + ms(8000), wall0(), None, "x", &mut out);
        let block = &views(&out)[0].body[4..28];
        assert_eq!(block[4], 0);
        assert_eq!(be32(block, 4) & 0xff_ffff, 25, "cumulative stays");
        assert_eq!(s.interval_loss_pct(), 0.0);
    }

    // ---- reports ----

    #[test]
    fn receiver_report_without_source_matches_rfc_layout() {
        let t0 = epoch();
        let mut s = RtcpSession::new(0x0102_0304, 8000, t0);
        let mut out = Vec::new();
        s.report(t0 + ms(1000), wall0(), None, "op1@pc", &mut out);
        let expected: Vec<u8> = [
            &[0x80, 201, 0, 1, 1, 2, 3, 4][..],
            &[0x81, 202, 0, 4, 1, 2, 3, 4, 1, 6],
            b"op1@pc",
            &[0, 0, 0, 0],
        ]
        .concat();
        assert_eq!(out, expected);
        s.on_rtcp(t0, wall0(), &out).unwrap();
    }

    #[test]
    fn sender_report_matches_rfc_layout_and_parses_back() {
        let t0 = epoch();
        let mut s = RtcpSession::new(0xaabb_ccdd, 8000, t0);
        feed(&mut s, t0, 0x1111_2222, &(10..60).collect::<Vec<_>>());
        let mut sender = RtpSender::new(0xaabb_ccdd, 0);
        let mut pkt = Vec::new();
        for i in 0..3 {
            sender.packet(0, i * 160, false, &[0; 160], &mut pkt);
        }
        let mut out = Vec::with_capacity(256);
        let ptr = out.as_ptr();
        let cname = "operator-7@switchboard"; // 22 bytes
        s.report(
            t0 + ms(2000),
            wall0(),
            Some((&sender, 4242)),
            cname,
            &mut out,
        );
        assert_eq!(out.as_ptr(), ptr, "no reallocation");
        assert_eq!(out.len() % 4, 0);
        let v = views(&out);
        assert_eq!(v.len(), 2);
        let (sr, sdes) = (v[0], v[1]);
        assert_eq!(out[0], 0x81, "V=2, P=0, RC=1");
        assert_eq!((sr.packet_type, sr.count, sr.body.len()), (200, 1, 48));
        assert_eq!(&out[2..4], &[0, 12], "length in words minus one");
        assert_eq!(be32(sr.body, 0), 0xaabb_ccdd);
        assert_eq!(
            be32(sr.body, 4),
            1_700_000_000 + 2_208_988_800,
            "NTP seconds"
        );
        assert_eq!(be32(sr.body, 8), 0x8000_0000, "NTP fraction: .5 s");
        assert_eq!(be32(sr.body, 12), 4242, "RTP timestamp");
        assert_eq!(be32(sr.body, 16), 3, "packet count");
        assert_eq!(be32(sr.body, 20), 480, "octet count");
        let block = &sr.body[24..48];
        assert_eq!(be32(block, 0), 0x1111_2222);
        assert_eq!(be32(block, 4), 0, "no loss");
        assert_eq!(be32(block, 8), 59);
        assert_eq!(be32(block, 12), 0, "no jitter");
        assert_eq!((be32(block, 16), be32(block, 20)), (0, 0), "no SR heard");
        assert_eq!((sdes.packet_type, sdes.count), (202, 1));
        assert_eq!(be32(sdes.body, 0), 0xaabb_ccdd);
        assert_eq!(sdes.body[4], 1, "CNAME");
        assert_eq!(usize::from(sdes.body[5]), cname.len());
        assert_eq!(&sdes.body[6..6 + cname.len()], cname.as_bytes());
        assert!(sdes.body[6 + cname.len()..].iter().all(|&b| b == 0));
        assert!(sdes.body.len() > 6 + cname.len(), "END octet present");
    }

    #[test]
    fn a_long_cname_is_cut_at_255_bytes_on_a_char_boundary() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        let cname = "é".repeat(200); // 400 bytes
        let mut out = Vec::new();
        s.report(t0, wall0(), None, &cname, &mut out);
        let sdes = views(&out)[1];
        assert_eq!(sdes.body[5], 254);
        assert!(std::str::from_utf8(&sdes.body[6..260]).is_ok());
    }

    #[test]
    fn sr_then_rr_gives_the_simulated_round_trip_time() {
        for one_way_ms in [0u64, 3, 40, 150, 400] {
            let t0 = epoch();
            let one_way = ms(one_way_ms);
            // Two machines whose wallclocks disagree by 3.7 s.
            let wall_a = |t: Instant| wall0() + (t - t0);
            let wall_b = |t: Instant| wall0() + (t - t0) + ms(3700);
            let mut a = RtcpSession::new(0xaaaa, 8000, t0);
            let mut b = RtcpSession::new(0xbbbb, 8000, t0);
            let mut a_rtp = RtpSender::new(0xaaaa, 1000);
            let mut buf = Vec::new();
            for i in 0..50u32 {
                let sent = t0 + ms(20 * u64::from(i));
                a_rtp.packet(0, i * 160, i == 0, &[0xff; 160], &mut buf);
                b.on_rtp(sent + one_way, &parse_rtp(&buf).unwrap());
            }
            let t_sr = t0 + ms(1000);
            a.report(t_sr, wall_a(t_sr), Some((&a_rtp, 8000)), "a", &mut buf);
            b.on_rtcp(t_sr + one_way, wall_b(t_sr + one_way), &buf)
                .unwrap();
            let t_rr = t_sr + one_way + ms(1234);
            b.report(t_rr, wall_b(t_rr), None, "b", &mut buf);
            let block = &views(&buf)[0].body[4..28];
            assert_ne!(be32(block, 16), 0, "LSR echoed");
            let dlsr = be32(block, 20);
            assert!(
                (f64::from(dlsr) / 65536.0 - 1.234).abs() < 1e-4,
                "DLSR {dlsr}"
            );
            assert_eq!(a.quality().rtt_ms, None);
            a.on_rtcp(t_rr + one_way, wall_a(t_rr + one_way), &buf)
                .unwrap();
            let rtt = a.quality().rtt_ms.expect("rtt measured");
            let want = 2.0 * one_way_ms as f32;
            assert!((rtt - want).abs() <= 1.0, "rtt {rtt} want {want}");
            // B heard nothing from A's direction... but all 49 counted packets.
            assert_eq!(b.quality().packets_received, 49);
            assert_eq!(b.quality().packets_lost, 0);
        }
    }

    #[test]
    fn reports_about_other_ssrcs_or_without_lsr_give_no_rtt() {
        let t0 = epoch();
        let mut a = RtcpSession::new(0xaaaa, 8000, t0);
        let mut block = [0u8; 24];
        block[0..4].copy_from_slice(&0xdddd_u32.to_be_bytes()); // not us
        block[16..20].copy_from_slice(&1234_u32.to_be_bytes());
        let rr: Vec<u8> = [&[0x81, 201, 0, 7, 0, 0, 0xbb, 0xbb][..], &block].concat();
        a.on_rtcp(t0, wall0(), &rr).unwrap();
        assert_eq!(a.quality().rtt_ms, None);
        let mut rr = rr;
        rr[8..12].copy_from_slice(&0xaaaa_u32.to_be_bytes());
        rr[24..28].copy_from_slice(&[0; 4]); // LSR 0: no SR received yet
        a.on_rtcp(t0, wall0(), &rr).unwrap();
        assert_eq!(a.quality().rtt_ms, None);
    }

    #[test]
    fn garbage_rtcp_is_an_error() {
        let t0 = epoch();
        let mut s = RtcpSession::new(1, 8000, t0);
        let mut good = Vec::new();
        s.report(t0, wall0(), None, "x", &mut good);
        let cases: Vec<(Vec<u8>, RtpError)> = vec![
            (vec![], RtpError::Empty),
            (vec![0x80, 201, 0], RtpError::RtcpAlignment(3)),
            (vec![0x40, 201, 0, 1, 0, 0, 0, 1], RtpError::Version(1)),
            (vec![0x80, 96, 0, 1, 0, 0, 0, 1], RtpError::NotRtcp(96)),
            (
                vec![0x80, 201, 0, 9, 0, 0, 0, 1],
                RtpError::RtcpLength {
                    declared: 40,
                    available: 8,
                },
            ),
            (
                vec![0x81, 201, 0, 1, 0, 0, 0, 1],
                RtpError::RtcpBody {
                    packet_type: 201,
                    count: 1,
                    len: 4,
                },
            ),
            (
                vec![0xa0, 201, 0, 1, 0, 0, 0, 0],
                RtpError::Padding { pad: 0, len: 8 },
            ),
            (
                vec![0xa0, 201, 0, 1, 0, 0, 0, 9],
                RtpError::Padding { pad: 9, len: 8 },
            ),
            ([&good[..], &[0, 0, 0, 0]].concat(), RtpError::Version(0)),
        ];
        for (buf, want) in cases {
            assert_eq!(s.on_rtcp(t0, wall0(), &buf), Err(want.clone()), "{buf:?}");
        }
        // An RTP packet handed to the RTCP path.
        assert!(s
            .on_rtcp(t0, wall0(), &rtp_bytes(1, 1, 1, &[0; 160]))
            .is_err());
        s.on_rtcp(t0, wall0(), &good).unwrap();
    }

    #[test]
    fn a_bad_tail_changes_nothing() {
        let t0 = epoch();
        let mut b = RtcpSession::new(0xbbbb, 8000, t0);
        let mut a = RtcpSession::new(0xaaaa, 8000, t0);
        let sender = RtpSender::new(0xaaaa, 0);
        let mut sr = Vec::new();
        a.report(t0, wall0(), Some((&sender, 0)), "a", &mut sr);
        sr.extend_from_slice(&[0x80, 203, 0, 5]); // BYE claiming 24 bytes, 4 present
        assert!(b.on_rtcp(t0, wall0(), &sr).is_err());
        assert!(
            b.last_sr.is_none(),
            "the SR before the bad packet is not taken"
        );
    }

    #[test]
    fn reports_are_scheduled_deterministically() {
        let t0 = epoch();
        let mut s = RtcpSession::new(42, 8000, t0);
        assert_eq!(s.next_report(), t0 + FIRST_REPORT_DELAY);
        let mut twin = RtcpSession::new(42, 8000, t0);
        let mut out = Vec::new();
        let mut now = s.next_report();
        let mut delays = Vec::new();
        for _ in 0..200 {
            s.report(now, wall0(), None, "x", &mut out);
            twin.report(now, wall0(), None, "x", &mut out);
            assert_eq!(s.next_report(), twin.next_report());
            let delay = s.next_report() - now;
            assert!(delay >= ms(2500) && delay < ms(7500), "{delay:?}");
            delays.push(delay);
            now = s.next_report();
        }
        let mean = delays.iter().sum::<Duration>() / 200;
        assert!(mean > ms(4500) && mean < ms(5500), "mean {mean:?}");
        assert!(delays.windows(2).any(|w| w[0] != w[1]), "randomised");
        s.set_report_interval(ms(1000));
        s.report(now, wall0(), None, "x", &mut out);
        let delay = s.next_report() - now;
        assert!(delay >= ms(500) && delay < ms(1500), "{delay:?}");
    }

    // ---- robustness ----

    #[test]
    fn never_panics_on_random_or_mutated_buffers() {
        let t0 = epoch();
        let mut rng = Rng(0x5eed_f00d_5717_c4b0);
        let mut session = RtcpSession::new(0xaaaa, 8000, t0);
        let mut valid_rtp = Vec::new();
        RtpSender::new(0xbbbb, 7).packet(111, 960, true, &[1; 40], &mut valid_rtp);
        let mut valid_rtcp = Vec::new();
        {
            let mut other = RtcpSession::new(0xbbbb, 8000, t0);
            feed(&mut other, t0, 0xaaaa, &(0..10).collect::<Vec<_>>());
            let s = RtpSender::new(0xbbbb, 0);
            other.report(t0, wall0(), Some((&s, 0)), "fuzz", &mut valid_rtcp);
        }
        let seeds = [
            super::super::rtp::tests::full_packet(),
            valid_rtp,
            valid_rtcp,
        ];
        let (mut rtp_ok, mut rtcp_ok) = (0, 0);
        let mut buf = Vec::with_capacity(256);
        for i in 0..100_000u32 {
            buf.clear();
            if i % 3 == 0 {
                let len = rng.below(96);
                buf.extend((0..len).map(|_| rng.next() as u8));
                if rng.below(2) == 0 && !buf.is_empty() {
                    buf[0] = 0x80 | (buf[0] & 0x3f); // mostly version 2
                }
            } else {
                buf.extend_from_slice(&seeds[rng.below(seeds.len())]);
                for _ in 0..1 + rng.below(4) {
                    let at = rng.below(buf.len());
                    buf[at] ^= 1 << rng.below(8);
                }
                match rng.below(4) {
                    0 => buf.truncate(rng.below(buf.len() + 1)),
                    1 => buf.extend((0..rng.below(9)).map(|_| rng.next() as u8)),
                    _ => {}
                }
            }
            let now = t0 + ms(u64::from(i));
            if let Ok(p) = parse_rtp(&buf) {
                rtp_ok += 1;
                let range = buf.as_ptr_range();
                assert!(p.payload.is_empty() || range.contains(&p.payload.as_ptr()));
                assert!(p.payload.len() <= buf.len() - RTP_HEADER_LEN);
                session.on_rtp(now, &p);
            }
            let _ = is_rtcp(&buf);
            if session.on_rtcp(now, wall0(), &buf).is_ok() {
                rtcp_ok += 1;
            }
        }
        assert!(rtp_ok > 10_000, "fuzz reached valid RTP {rtp_ok} times");
        assert!(rtcp_ok > 1_000, "fuzz reached valid RTCP {rtcp_ok} times");
        let mut out = Vec::new();
        session.report(t0, wall0(), None, "after", &mut out);
        assert!(views(&out).len() == 2);
        let q = session.quality();
        assert!(q.loss_pct.is_finite() && q.jitter_ms.is_finite());
    }
}
