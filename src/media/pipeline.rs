//! One tick of the media thread: receive, play out, capture, send — for
//! every line. Pure with respect to time (`now` is given) so the engine's
//! thread is the only clock, and without sockets: datagrams come in through
//! [`Pipeline::handle_datagram`] and what to send goes out through
//! [`Pipeline::poll_transmit`] (`net.rs` moves them between the two and the
//! sockets), so two pipelines can talk to each other in a test with no network.
//!
//! ```text
//!  handle_datagram(now, line, port, src, bytes) ─► SRTP ─► jitter buffer / RTCP stats / DTMF in
//!  tick(now):
//!    mic  = device.read_frame(); noise suppression + AGC (voice.rs) when a line sends it
//!    conference members: decode each ─► mix-minus (mixer.rs) ─► headset + what each is sent
//!    for each line with a stream:
//!       receive: the packet playing, else jitter.pop ─► decode | conceal (inbound.rs)
//!                ─► mix into headset (if it has the mic)
//!       send:    DTMF event | frame (mic | MOH | silence) queued; the packet's last ─► encode ─► RTP
//!       RTCP report when due, quality report every 5 s
//!       recording: (frame sent | silence, frame decoded | silence) ─► recorder ring
//!    tones ─► headset (ringback) / ring device (ring)
//!    sound check (sound_check.rs): mic level report; test tone and echo ─► headset
//!    device.write_ring_frame(ring); device.write_frame(headset)
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::api::{Control, EngineConfig, LineTone, Report, SendSource, StreamParams};
use super::codec::{Codec, MAX_PACKET_SAMPLES};
use super::device::{AudioDevice, Backlog};
use super::dtmf::{DtmfReceiver, DtmfSender};
use super::inbound::Inbound;
use super::mixer::Mixer;
use super::recorder::Recordings;
use super::rtcp::RtcpSession;
use super::rtp::{is_rtcp, parse_rtp, RtpSender};
use super::sound_check::SoundCheck;
use super::srtp::SrtpSession;
use super::tones::{MusicOnHold, ToneGenerator, ToneKind};
use super::voice::MicCleanup;
use super::warnings::{Limiter, Warnings};
use super::{Frame, FRAME_SAMPLES};

/// How often a line reports its receive quality.
const QUALITY_EVERY: Duration = Duration::from_secs(5);
/// Largest datagram we read or send.
pub(super) const MAX_PACKET: usize = 1500;
/// Packets one line may queue for sending between two drains: a voice frame, DTMF's
/// redundant end packets and an RTCP report, with room to spare.
const OUTBOX_PER_LINE: usize = 8;

/// Which of a line's two ports a datagram uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Port {
    /// RTP (even port; RTCP may arrive here too, RFC 5761).
    Rtp,
    /// RTCP (RTP port + 1).
    Rtcp,
}

/// A packet the pipeline wants sent, borrowed until the next [`Pipeline::poll_transmit`].
#[derive(Debug)]
pub(super) struct Transmit<'a> {
    /// The line whose socket sends it.
    pub(super) line: usize,
    /// Which of its sockets.
    pub(super) port: Port,
    /// Where to.
    pub(super) to: SocketAddr,
    /// The datagram (already protected on an SRTP line).
    pub(super) bytes: &'a [u8],
}

/// One queued packet: line, port, destination and bytes.
type Queued = (usize, Port, SocketAddr, Vec<u8>);

/// Packets waiting to be sent: buffers allocated once, reused for every tick.
struct Outbox {
    slots: Vec<Queued>,
    queued: usize,
    next: usize,
}

impl Outbox {
    fn new(lines: usize) -> Outbox {
        let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
        Outbox {
            slots: (0..lines.max(1) * OUTBOX_PER_LINE)
                .map(|_| (0, Port::Rtp, unspecified, Vec::with_capacity(MAX_PACKET)))
                .collect(),
            queued: 0,
            next: 0,
        }
    }

    /// Queues a copy of `bytes`; false when the outbox is full (nobody drained it).
    fn push(&mut self, line: usize, port: Port, to: SocketAddr, bytes: &[u8]) -> bool {
        let Some(slot) = self.slots.get_mut(self.queued) else {
            return false;
        };
        slot.3.clear();
        slot.3
            .extend_from_slice(&bytes[..bytes.len().min(MAX_PACKET)]);
        (slot.0, slot.1, slot.2) = (line, port, to);
        self.queued += 1;
        true
    }

    fn pop(&mut self) -> Option<Transmit<'_>> {
        if self.next >= self.queued {
            (self.queued, self.next) = (0, 0);
            return None;
        }
        let (line, port, to, bytes) = &self.slots[self.next];
        self.next += 1;
        Some(Transmit {
            line: *line,
            port: *port,
            to: *to,
            bytes,
        })
    }
}

/// The random starting points of a stream we send (RFC 3550 §5.1): drawn by the pipeline in
/// one place, an input of [`ActiveStream::new`].
#[derive(Debug, Clone, Copy)]
struct StreamSeeds {
    ssrc: u32,
    sequence: u16,
    timestamp: u32,
}

impl StreamSeeds {
    /// Fresh random seeds; the sequence start is `sequence` when the engine was given one.
    fn draw(sequence: Option<u16>) -> StreamSeeds {
        StreamSeeds {
            ssrc: rand::random(),
            sequence: sequence.unwrap_or_else(rand::random),
            timestamp: rand::random(),
        }
    }
}

/// An RTP stream in flight on a line.
struct ActiveStream {
    params: StreamParams,
    codec: Codec,
    inbound: Inbound,
    /// Frames queued for the next packet we send, the packet's length in frames (the far
    /// end's `a=ptime`), how many are queued, and the timestamp of the first.
    outgoing: Box<[i16; MAX_PACKET_SAMPLES]>,
    send_frames: usize,
    queued: usize,
    packet_ts: u32,
    sender: RtpSender,
    rtcp: RtcpSession,
    dtmf_out: DtmfSender,
    dtmf_in: DtmfReceiver,
    /// Where RTP goes now (the negotiated address, or the latched source).
    send_to: SocketAddr,
    /// A packet from the negotiated address has been seen (no more latching; a
    /// latched source is dropped from then on).
    heard: bool,
    /// Where the far end's last RTCP came from: our reports go there (symmetric RTCP,
    /// RFC 4961), whatever its SDP said.
    rtcp_from: Option<SocketAddr>,
    /// When RTP from the far end was last accepted (or two-way audio began).
    last_heard: Instant,
    /// The current silence has been reported (re-armed by the next packet).
    silence_reported: bool,
    /// RTP timestamp of the next frame we send.
    timestamp: u32,
    /// The next packet starts a talk-spurt (marker bit).
    spurt: bool,
    next_quality: Instant,
    /// SRTP contexts when the stream is encrypted.
    srtp: Option<SrtpSession>,
    /// Received packets dropped because they failed SRTP authentication.
    srtp_failures: u64,
}

impl ActiveStream {
    fn new(
        now: Instant,
        params: StreamParams,
        config: &EngineConfig,
        seeds: StreamSeeds,
    ) -> Result<ActiveStream, String> {
        let mut opus = config.opus;
        if let Some(cap) = params.max_bitrate {
            // RFC 7587: never send more than the receiver asked for (libopus' floor is 500).
            let cap = i32::try_from(cap).unwrap_or(i32::MAX).max(500);
            opus.bitrate = opus.bitrate.min(cap);
        }
        let codec = Codec::new(params.codec, &opus).map_err(|e| e.to_string())?;
        let srtp = params
            .srtp
            .clone()
            .map(SrtpSession::new)
            .transpose()
            .map_err(|e| e.to_string())?;
        let rate = params.codec.clock_rate();
        let StreamSeeds {
            ssrc,
            sequence,
            timestamp,
        } = seeds;
        Ok(ActiveStream {
            inbound: Inbound::new(params.codec, config.jitter),
            outgoing: Box::new([0; MAX_PACKET_SAMPLES]),
            send_frames: params.codec.send_frames(params.ptime),
            queued: 0,
            packet_ts: timestamp,
            sender: RtpSender::new(ssrc, sequence),
            rtcp: RtcpSession::new(ssrc, rate, now),
            dtmf_out: DtmfSender::new(rate),
            dtmf_in: DtmfReceiver::default(),
            send_to: params.remote,
            heard: false,
            rtcp_from: None,
            last_heard: now,
            silence_reported: false,
            timestamp,
            spurt: true,
            next_quality: now + QUALITY_EVERY,
            srtp,
            srtp_failures: 0,
            codec,
            params,
        })
    }

    /// Queues this tick's frame (`ts` its RTP timestamp) for the next packet; when that is
    /// the packet's last frame, the samples queued, to encode and send.
    fn queue_frame(&mut self, frame: &Frame, ts: u32) -> Option<usize> {
        if self.queued == 0 {
            self.packet_ts = ts;
        }
        let at = self.queued * FRAME_SAMPLES;
        self.outgoing[at..at + FRAME_SAMPLES].copy_from_slice(frame);
        self.queued += 1;
        if self.queued < self.send_frames {
            return None;
        }
        self.queued = 0;
        Some(at + FRAME_SAMPLES)
    }

    /// Takes new parameters; false when the stream must be rebuilt instead.
    fn update(&mut self, now: Instant, params: StreamParams) -> bool {
        if params.codec != self.params.codec
            || params.payload_type != self.params.payload_type
            || params.max_bitrate != self.params.max_bitrate
        {
            return false;
        }
        if params.srtp != self.params.srtp {
            // New keys (the far end rekeyed): new contexts, or a rebuild if they are refused.
            match params.srtp.clone().map(SrtpSession::new).transpose() {
                Ok(srtp) => self.srtp = srtp,
                Err(_) => return false,
            }
        }
        if params.remote != self.params.remote {
            self.send_to = params.remote;
            self.heard = false;
        }
        if params.remote != self.params.remote || params.remote_rtcp != self.params.remote_rtcp {
            self.rtcp_from = None;
        }
        if params.ptime != self.params.ptime {
            // Another packetisation asked (a re-offer): the same stream, a half-queued packet
            // dropped.
            self.send_frames = params.codec.send_frames(params.ptime);
            self.queued = 0;
        }
        if params.send && !self.params.send {
            self.spurt = true;
        }
        if params.send && params.receive && !(self.params.send && self.params.receive) {
            // Two-way audio (re)starts: the silence clock starts now.
            self.last_heard = now;
            self.silence_reported = false;
        }
        self.params = params;
        true
    }

    /// Where RTCP goes: where the far end's RTCP comes from once it came (symmetric RTCP: a
    /// NAT maps that socket where its SDP cannot know); before that, where its SDP says
    /// (`a=rtcp`, RFC 3605, else the RTP port + 1) while RTP goes to the negotiated address,
    /// and the port above a latched RTP source while RTP follows one.
    fn rtcp_to(&self) -> SocketAddr {
        if let Some(from) = self.rtcp_from {
            from
        } else if self.send_to == self.params.remote {
            self.params.remote_rtcp
        } else {
            SocketAddr::new(self.send_to.ip(), self.send_to.port().wrapping_add(1))
        }
    }
}

/// One line: its stream and tone.
struct Leg {
    stream: Option<ActiveStream>,
    tone: Option<(LineTone, ToneGenerator)>,
}

/// The local conference's buffers, allocated once for every line.
struct Conference {
    mixer: Mixer,
    /// Per line: its place among this frame's members.
    slot: Vec<Option<usize>>,
    /// Per member: what it said this frame (decoded).
    heard: Vec<Frame>,
    /// Per member: what it is sent this frame (the operator and the others).
    sends: Vec<Frame>,
    /// What the operator hears of the conference.
    operator: Frame,
}

impl Conference {
    fn new(lines: usize) -> Conference {
        Conference {
            mixer: Mixer::new(),
            slot: vec![None; lines],
            heard: vec![[0; FRAME_SAMPLES]; lines],
            sends: vec![[0; FRAME_SAMPLES]; lines],
            operator: [0; FRAME_SAMPLES],
        }
    }
}

/// Everything the media thread owns.
pub(super) struct Pipeline {
    device: Box<dyn AudioDevice>,
    legs: Vec<Leg>,
    config: EngineConfig,
    moh: Option<MusicOnHold>,
    reports: Box<dyn FnMut(Report) + Send>,
    recordings: Recordings,
    /// Noise suppression and AGC of the microphone.
    cleanup: MicCleanup,
    /// Level meter, test tone and echo of the sound check.
    check: SoundCheck,
    // Scratch space, allocated once.
    mic: Frame,
    headset: Frame,
    ring: Frame,
    scratch: Frame,
    moh_frame: Frame,
    silence: Frame,
    conference: Conference,
    packet: Vec<u8>,
    payload: Vec<u8>,
    /// What waits to be sent.
    outbox: Outbox,
    /// A received SRTP packet once unprotected.
    plain: Vec<u8>,
    /// Per-frame warnings, each logged at most once per period.
    warnings: Warnings,
}

impl Pipeline {
    pub(super) fn new(
        device: Box<dyn AudioDevice>,
        lines: usize,
        config: EngineConfig,
        moh: Option<MusicOnHold>,
        reports: Box<dyn FnMut(Report) + Send>,
    ) -> Pipeline {
        Pipeline {
            device,
            legs: (0..lines)
                .map(|_| Leg {
                    stream: None,
                    tone: None,
                })
                .collect(),
            moh,
            reports,
            recordings: Recordings::default(),
            cleanup: MicCleanup::new(config.voice),
            check: SoundCheck::default(),
            config,
            mic: [0; FRAME_SAMPLES],
            headset: [0; FRAME_SAMPLES],
            ring: [0; FRAME_SAMPLES],
            scratch: [0; FRAME_SAMPLES],
            moh_frame: [0; FRAME_SAMPLES],
            silence: [0; FRAME_SAMPLES],
            conference: Conference::new(lines),
            packet: Vec::with_capacity(MAX_PACKET),
            payload: vec![0; MAX_PACKET],
            outbox: Outbox::new(lines),
            plain: Vec::with_capacity(MAX_PACKET),
            warnings: Warnings::default(),
        }
    }

    /// Applies an order from the driver.
    pub(super) fn control(&mut self, now: Instant, control: Control) {
        match control {
            Control::Line { line, stream, tone } => {
                let Some(leg) = self.legs.get_mut(line) else {
                    return;
                };
                leg.tone = match (tone, leg.tone.take()) {
                    (Some(t), Some((old, g))) if t == old => Some((old, g)),
                    (Some(t), _) => Some((t, ToneGenerator::new(tone_kind(t)))),
                    (None, _) => None,
                };
                match stream {
                    None => leg.stream = None,
                    Some(params) => {
                        let kept = leg
                            .stream
                            .as_mut()
                            .is_some_and(|s| s.update(now, params.clone()));
                        if !kept {
                            let seeds = StreamSeeds::draw(self.config.rtp_sequence_start);
                            match ActiveStream::new(now, params, &self.config, seeds) {
                                Ok(s) => leg.stream = Some(s),
                                Err(message) => {
                                    leg.stream = None;
                                    (self.reports)(Report::Problem { line, message });
                                }
                            }
                        }
                    }
                }
            }
            Control::Dtmf { line, digits } => {
                let result = match self.legs.get_mut(line).and_then(|l| l.stream.as_mut()) {
                    Some(s) if s.params.dtmf_payload_type.is_some() => {
                        s.dtmf_out.queue(&digits).map_err(|e| e.to_string())
                    }
                    _ => Err("no telephone-event stream on this line".to_string()),
                };
                if let Err(message) = result {
                    (self.reports)(Report::Problem { line, message });
                }
            }
            Control::StartRecording {
                line,
                call_id,
                path,
                format,
            } => {
                if line >= self.legs.len() {
                    return;
                }
                if let Err(message) = self.recordings.start(line, call_id, path, format) {
                    (self.reports)(Report::Problem { line, message });
                }
            }
            Control::Voice(settings) => self.cleanup.set(settings),
            Control::SoundCheck(order) => self.check.order(order),
            Control::SwitchDevice { role, device } => {
                if let Some(notice) = self.device.switch(role, &device) {
                    (self.reports)(Report::Device(notice));
                }
            }
            Control::StopRecording {
                line,
                call_id,
                reason,
            } => {
                self.recordings.stop(line, &call_id, &reason);
            }
        }
    }

    /// One 20 ms step (after the datagrams that arrived since the last one).
    pub(super) fn tick(&mut self, now: Instant, wallclock: SystemTime) {
        if !self.device.read_frame(&mut self.mic) {
            self.mic.fill(0);
        }
        if self.sends_mic() {
            self.cleanup.process(&mut self.mic);
        }
        let needs_moh = self.legs.iter().any(|l| {
            l.stream
                .as_ref()
                .is_some_and(|s| s.params.send && s.params.source == SendSource::MusicOnHold)
        });
        match (&mut self.moh, needs_moh) {
            (Some(moh), true) => moh.fill(&mut self.moh_frame),
            _ => self.moh_frame.fill(0),
        }
        self.headset.fill(0);
        self.ring.fill(0);
        self.mix_conference(now);
        for index in 0..self.legs.len() {
            self.play_and_send(index, now, wallclock);
        }
        if let Some(dbfs) = self.check.frame(&self.mic, &mut self.headset) {
            (self.reports)(Report::Level { dbfs });
        }
        self.device.write_ring_frame(&self.ring);
        self.device.write_frame(&self.headset);
        while let Some(notice) = self.device.poll_notice() {
            (self.reports)(Report::Device(notice));
        }
        self.recordings.poll(&mut self.reports);
    }

    /// How long the next microphone frame will take to complete, when a sound card is a
    /// little behind (see [`AudioDevice::capture_shortfall`]).
    pub(super) fn capture_shortfall(&mut self) -> Option<Duration> {
        self.device.capture_shortfall()
    }

    /// How much earlier the next tick may come (see [`AudioDevice::capture_lead`]).
    pub(super) fn capture_lead(&mut self) -> Option<Duration> {
        self.device.capture_lead()
    }

    /// What the microphone recorded that no tick has read (see
    /// [`AudioDevice::capture_backlog`]).
    pub(super) fn capture_backlog(&mut self, now: Instant) -> Option<Backlog> {
        self.device.capture_backlog(now)
    }

    /// Nothing needs the clock: no stream, tone, sound check, recording or device switch
    /// under way. The media thread then sleeps until the next order instead of ticking.
    pub(super) fn is_idle(&self) -> bool {
        self.legs
            .iter()
            .all(|l| l.stream.is_none() && l.tone.is_none())
            && self.check.is_idle()
            && self.recordings.is_idle()
            && !self.device.is_switching()
    }

    /// The device stops until [`Pipeline::resume`].
    pub(super) fn pause(&mut self) {
        self.device.pause();
    }

    /// Ticking again after `missed` ticks were skipped.
    pub(super) fn resume(&mut self, missed: u64) {
        self.device.resume(missed);
    }

    /// Whether some line sends the microphone now (the clean-up runs only then).
    fn sends_mic(&self) -> bool {
        self.legs.iter().any(|l| {
            l.stream.as_ref().is_some_and(|s| {
                s.params.send
                    && !s.params.muted
                    && matches!(
                        s.params.source,
                        SendSource::Microphone | SendSource::Conference
                    )
            })
        })
    }

    /// Takes one datagram that arrived on line `line`'s `port` from `src`: SRTP checks, then
    /// RTCP statistics, or (RTP from the far end or the first valid source, symmetric RTP)
    /// the jitter buffer or DTMF. Anything else is dropped; nothing here can panic.
    pub(super) fn handle_datagram(
        &mut self,
        now: Instant,
        wallclock: SystemTime,
        line: usize,
        port: Port,
        src: SocketAddr,
        bytes: &[u8],
    ) {
        let Some(stream) = self.legs.get_mut(line).and_then(|l| l.stream.as_mut()) else {
            return;
        };
        let rtcp = port == Port::Rtcp || is_rtcp(bytes);
        let mut buf = bytes;
        if let Some(srtp) = stream.srtp.as_mut() {
            let unprotected = if rtcp {
                srtp.unprotect_rtcp(buf, &mut self.plain)
            } else {
                srtp.unprotect_rtp(buf, &mut self.plain)
            };
            if let Err(e) = unprotected {
                count_srtp_failure(
                    line,
                    &mut stream.srtp_failures,
                    src,
                    &e,
                    &mut self.warnings.srtp_in,
                    now,
                );
                return;
            }
            buf = &self.plain;
        }
        if rtcp {
            let from_far_end =
                src.ip() == stream.send_to.ip() || src.ip() == stream.params.remote_rtcp.ip();
            // Only a valid report on the RTCP socket moves where ours go.
            if from_far_end
                && stream.rtcp.on_rtcp(now, wallclock, buf).is_ok()
                && port == Port::Rtcp
            {
                stream.rtcp_from = Some(src);
            }
            return;
        }
        let Ok(pkt) = parse_rtp(buf) else { return };
        let expected = pkt.payload_type == stream.params.payload_type
            || Some(pkt.payload_type) == stream.params.dtmf_payload_type;
        if !expected {
            return;
        }
        if src == stream.params.remote {
            // The negotiated address itself: it ends any latch, for good.
            stream.send_to = src;
            stream.heard = true;
        } else if src != stream.send_to {
            // Symmetric RTP (NAT): latch to the first valid source until the
            // negotiated address itself is heard from.
            if stream.heard || stream.send_to != stream.params.remote {
                return;
            }
            tracing::info!(line = line + 1, from = %src, "RTP latched to a new source");
            stream.send_to = src;
        }
        stream.last_heard = now;
        stream.silence_reported = false;
        if !stream.params.receive {
            return;
        }
        stream.rtcp.on_rtp(now, &pkt);
        if Some(pkt.payload_type) == stream.params.dtmf_payload_type {
            if let Some(digit) = stream.dtmf_in.on_packet(pkt.timestamp, pkt.payload) {
                (self.reports)(Report::Dtmf { line, digit });
            }
        } else {
            stream.inbound.push(
                now,
                &stream.codec,
                (pkt.sequence, pkt.timestamp, pkt.ssrc),
                pkt.payload,
            );
        }
    }

    /// The next packet to send, until `None`; drain it after every tick (packets queued
    /// beyond [`OUTBOX_PER_LINE`] per line between two drains are dropped).
    pub(super) fn poll_transmit(&mut self) -> Option<Transmit<'_>> {
        self.outbox.pop()
    }

    /// Decodes this frame of every conference member and mixes them (mix-minus): the
    /// operator's share goes into the headset, each member's waits in its send buffer.
    fn mix_conference(&mut self, now: Instant) {
        let conf = &mut self.conference;
        let mut members = 0;
        let mut muted = false;
        for (index, leg) in self.legs.iter_mut().enumerate() {
            conf.slot[index] = None;
            let Some(stream) = leg
                .stream
                .as_mut()
                .filter(|s| s.params.source == SendSource::Conference)
            else {
                continue;
            };
            conf.slot[index] = Some(members);
            muted |= stream.params.muted;
            if stream.params.receive {
                decode_next(stream, now, &mut conf.heard[members]);
            } else {
                conf.heard[members].fill(0);
            }
            members += 1;
        }
        if members == 0 {
            return;
        }
        let mic = if muted { &self.silence } else { &self.mic };
        conf.mixer.mix_minus(
            mic,
            &conf.heard[..members],
            &mut conf.sends[..members],
            &mut conf.operator,
        );
        mix(&mut self.headset, &conf.operator);
    }

    /// Plays a line's audio and tones, and sends its frame.
    fn play_and_send(&mut self, index: usize, now: Instant, wallclock: SystemTime) {
        let leg = &mut self.legs[index];
        if let Some((kind, generator)) = leg.tone.as_mut() {
            generator.fill(&mut self.scratch);
            match kind {
                LineTone::Ringback => mix(&mut self.headset, &self.scratch),
                LineTone::Ring => mix(&mut self.ring, &self.scratch),
            }
        }
        let Some(stream) = leg.stream.as_mut() else {
            self.recordings.push(index, &self.silence, &self.silence);
            return;
        };
        let line = index;
        // What this tick sent on the line, for the recording (silence unless voice went out).
        let mut sent = &self.silence;
        // A conference member's frame was decoded by `mix_conference`.
        if stream.params.receive && stream.params.source != SendSource::Conference {
            decode_next(stream, now, &mut self.scratch);
            if stream.params.source == SendSource::Microphone {
                mix(&mut self.headset, &self.scratch);
            }
        }
        let frame_ts = stream.timestamp;
        stream.timestamp = stream
            .timestamp
            .wrapping_add(stream.params.codec.samples_per_frame());
        if stream.params.send {
            if let (Some(pt), Some(event)) = (
                stream.params.dtmf_payload_type,
                stream.dtmf_out.tick(frame_ts),
            ) {
                // A tone replaces the voice: a packet half queued is not sent.
                stream.queued = 0;
                // Updates go at the packet interval (RFC 4733 §2.5.1.2), the first and the
                // end packets at once.
                let spf = stream.params.codec.samples_per_frame().max(1);
                let frames = frame_ts.wrapping_sub(event.timestamp) / spf + 1;
                let due = event.marker
                    || event.redundant_copies > 1
                    || frames as usize % stream.send_frames == 0;
                for _ in 0..event.redundant_copies.max(1) * u8::from(due) {
                    send_rtp(
                        &mut self.outbox,
                        &mut self.packet,
                        &mut self.warnings.protect,
                        (line, &mut *stream),
                        (pt, event.timestamp, event.marker, &event.payload),
                        now,
                    );
                }
                stream.spurt = true;
            } else {
                let source = match stream.params.source {
                    SendSource::Microphone if !stream.params.muted => &self.mic,
                    SendSource::Microphone => &self.silence,
                    SendSource::MusicOnHold => &self.moh_frame,
                    SendSource::Conference => match self.conference.slot[index] {
                        Some(k) => &self.conference.sends[k],
                        None => &self.silence,
                    },
                };
                sent = source;
                if let Some(whole) = stream.queue_frame(source, frame_ts) {
                    match stream
                        .codec
                        .encode(&stream.outgoing[..whole], &mut self.payload)
                    {
                        Ok(0) => stream.spurt = true, // DTX: nothing to send
                        Ok(len) => {
                            let (pt, ts) = (stream.params.payload_type, stream.packet_ts);
                            let marker = std::mem::take(&mut stream.spurt);
                            send_rtp(
                                &mut self.outbox,
                                &mut self.packet,
                                &mut self.warnings.protect,
                                (line, &mut *stream),
                                (pt, ts, marker, &self.payload[..len]),
                                now,
                            );
                        }
                        Err(e) => {
                            if let Some(suppressed) = self.warnings.encode.allow(now) {
                                tracing::warn!(line = line + 1, error = %e, suppressed, "encoding failed");
                            }
                        }
                    }
                }
            }
        }
        let received = match (stream.params.source, self.conference.slot[index]) {
            (SendSource::Conference, Some(k)) if stream.params.receive => &self.conference.heard[k],
            _ if stream.params.receive => &self.scratch,
            _ => &self.silence,
        };
        self.recordings.push(line, sent, received);
        if now >= stream.rtcp.next_report() {
            let sender = stream.params.send.then_some((&stream.sender, frame_ts));
            stream
                .rtcp
                .report(now, wallclock, sender, &self.config.cname, &mut self.packet);
            let to = stream.rtcp_to();
            send_protected(
                &mut self.outbox,
                (line, Port::Rtcp, to),
                stream.srtp.as_mut(),
                &mut self.packet,
                &mut self.warnings.protect,
                now,
            );
        }
        if let Some(limit) = self.config.rtp_timeout {
            let silent = now.saturating_duration_since(stream.last_heard);
            if stream.params.send
                && stream.params.receive
                && !stream.silence_reported
                && silent >= limit
            {
                stream.silence_reported = true;
                (self.reports)(Report::Silent {
                    line,
                    seconds: silent.as_secs(),
                });
            }
        }
        if now >= stream.next_quality {
            stream.next_quality = now + QUALITY_EVERY;
            (self.reports)(Report::Quality {
                line,
                codec: stream.params.codec,
                quality: stream.rtcp.quality(),
                buffer_ms: stream.inbound.stats().delay_ms,
            });
        }
    }
}

/// Builds one RTP packet of `line`'s stream in `packet` and sends it (see
/// [`send_protected`]).
fn send_rtp(
    outbox: &mut Outbox,
    packet: &mut Vec<u8>,
    warned: &mut Limiter,
    (line, stream): (usize, &mut ActiveStream),
    (payload_type, timestamp, marker, payload): (u8, u32, bool, &[u8]),
    now: Instant,
) {
    stream
        .sender
        .packet(payload_type, timestamp, marker, payload, packet);
    send_protected(
        outbox,
        (line, Port::Rtp, stream.send_to),
        stream.srtp.as_mut(),
        packet,
        warned,
        now,
    );
}

/// Queues an RTP (or, to the RTCP port, RTCP) packet for `(line, port, to)`, protected first
/// when the stream has SRTP. A packet that cannot be protected is not sent: clear media never
/// leaves an SRTP stream.
fn send_protected(
    outbox: &mut Outbox,
    (line, port, to): (usize, Port, SocketAddr),
    srtp: Option<&mut SrtpSession>,
    packet: &mut Vec<u8>,
    warned: &mut Limiter,
    now: Instant,
) {
    if let Some(srtp) = srtp {
        let protected = if port == Port::Rtcp {
            srtp.protect_rtcp(packet)
        } else {
            srtp.protect_rtp(packet)
        };
        if let Err(e) = protected {
            if let Some(suppressed) = warned.allow(now) {
                tracing::warn!(error = %e, suppressed, "not sending a packet that could not be protected");
            }
            return;
        }
    }
    if !outbox.push(line, port, to, packet) && warned.allow(now).is_some() {
        tracing::warn!(
            line = line + 1,
            "outgoing packets dropped: nobody drained them"
        );
    }
}

/// Counts a received packet that failed SRTP checks; logs at most one line per period (all
/// lines share `warned`), with this stream's total so far.
fn count_srtp_failure(
    index: usize,
    failures: &mut u64,
    src: SocketAddr,
    error: &super::srtp::SrtpError,
    warned: &mut Limiter,
    now: Instant,
) {
    *failures += 1;
    if warned.allow(now).is_some() {
        tracing::warn!(line = index + 1, from = %src, %error, dropped = *failures, "dropping SRTP packets that fail authentication");
    }
}

/// The stream's next frame: of the packet playing, or decoded or concealed from its jitter
/// buffer, or silence.
fn decode_next(stream: &mut ActiveStream, now: Instant, out: &mut Frame) {
    stream.inbound.next_frame(now, &mut stream.codec, out);
}

fn tone_kind(tone: LineTone) -> ToneKind {
    match tone {
        LineTone::Ringback => ToneKind::Ringback,
        LineTone::Ring => ToneKind::Ring,
    }
}

/// Adds `src` into `dst` with saturation (no wrap-around clicks).
fn mix(dst: &mut Frame, src: &Frame) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = d.saturating_add(*s);
    }
}

#[cfg(test)]
mod tests {
    //! The pipeline driven tick by tick with simulated time, real UDP sockets on
    //! 127.0.0.1 and a scripted audio device: what goes out on the wire, what
    //! reaches the headset and the ring device, and what is reported.

    use std::io::ErrorKind;
    use std::net::{SocketAddr, UdpSocket};
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

    use super::super::api::{
        Control, EngineConfig, LineSockets, LineTone, Report, SendSource, SoundOrder, StreamParams,
    };
    use super::super::codec::{Codec, OpusSettings, MAX_PACKET_SAMPLES};
    use super::super::device::{AudioDevice, DeviceNotice};
    use super::super::dtmf::{GAP_MS, TONE_MS};
    use super::super::jitter::JitterConfig;
    use super::super::net::LineNet;
    use super::super::rtp::{is_rtcp, parse_rtp, RtpSender};
    use super::super::tones::MusicOnHold;
    use super::super::{CodecKind, Frame, FRAME_MS, FRAME_SAMPLES};
    use super::Pipeline;

    const TICK: Duration = Duration::from_millis(FRAME_MS as u64);

    /// Ticks in `ms` milliseconds.
    fn ticks(ms: u32) -> usize {
        (ms / FRAME_MS) as usize
    }
    const PT_PCMU: u8 = 0;
    const PT_PCMA: u8 = 8;
    const PT_OPUS: u8 = 111;
    const PT_EVENT: u8 = 101;
    /// RMS above which a frame is "sound", below which [`QUIET`] it is "silence".
    const LOUD: f64 = 1000.0;
    const QUIET: f64 = 30.0;

    #[allow(clippy::disallowed_methods)] // the tests' one clock reading: their epoch
    fn epoch() -> Instant {
        Instant::now()
    }

    /// 1 kHz at 48 kHz: exactly 20 periods per frame, so frames join seamlessly.
    fn sine() -> Frame {
        let mut frame = [0i16; FRAME_SAMPLES];
        for (i, s) in frame.iter_mut().enumerate() {
            let phase = std::f64::consts::TAU * 1000.0 * i as f64 / 48_000.0;
            *s = (8000.0 * phase.sin()) as i16;
        }
        frame
    }

    fn rms(samples: &[i16]) -> f64 {
        if samples.is_empty() {
            return 0.0;
        }
        let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
        (sum / samples.len() as f64).sqrt()
    }

    fn decode(kind: CodecKind, payload: &[u8]) -> Frame {
        let mut codec = Codec::new(kind, &OpusSettings::default()).expect("codec");
        let mut frame = [0i16; FRAME_SAMPLES];
        codec
            .decode(payload, &mut frame)
            .expect("a decodable payload");
        frame
    }

    type Frames = Arc<Mutex<Vec<Frame>>>;

    /// A microphone that always says the same sine frame; records what it is given.
    struct TestDevice {
        mic: Frame,
        headset: Frames,
        ring: Frames,
        notices: Vec<DeviceNotice>,
    }

    impl AudioDevice for TestDevice {
        fn read_frame(&mut self, frame: &mut Frame) -> bool {
            frame.copy_from_slice(&self.mic);
            true
        }
        fn write_frame(&mut self, frame: &Frame) {
            self.headset.lock().expect("lock").push(*frame);
        }
        fn write_ring_frame(&mut self, frame: &Frame) {
            self.ring.lock().expect("lock").push(*frame);
        }
        fn poll_notice(&mut self) -> Option<DeviceNotice> {
            self.notices.pop()
        }
    }

    /// One RTP packet as it went over the wire.
    #[derive(Debug, Clone)]
    struct Sent {
        pt: u8,
        seq: u16,
        ts: u32,
        ssrc: u32,
        marker: bool,
        payload: Vec<u8>,
    }

    fn parse(bytes: &[u8]) -> Sent {
        let p = parse_rtp(bytes).expect("the pipeline sends valid RTP");
        Sent {
            pt: p.payload_type,
            seq: p.sequence,
            ts: p.timestamp,
            ssrc: p.ssrc,
            marker: p.marker,
            payload: p.payload.to_vec(),
        }
    }

    /// A far end: RTP on an even port, RTCP on the next one.
    struct Peer {
        rtp: UdpSocket,
        rtcp: UdpSocket,
    }

    impl Peer {
        fn new() -> Peer {
            for _ in 0..200 {
                let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind");
                let port = rtp.local_addr().expect("addr").port();
                if port % 2 != 0 || port == u16::MAX {
                    continue;
                }
                if let Ok(rtcp) = UdpSocket::bind(("127.0.0.1", port + 1)) {
                    for s in [&rtp, &rtcp] {
                        s.set_read_timeout(Some(Duration::from_millis(200)))
                            .expect("timeout");
                    }
                    return Peer { rtp, rtcp };
                }
            }
            panic!("no free even/odd port pair on 127.0.0.1");
        }

        fn addr(&self) -> SocketAddr {
            self.rtp.local_addr().expect("addr")
        }

        /// The next RTP packet, waiting at most 200 ms.
        fn recv(&self) -> Sent {
            let mut buf = [0u8; 1500];
            let (len, _) = self.rtp.recv_from(&mut buf).expect("an RTP packet");
            parse(&buf[..len])
        }

        /// The RTP packets already waiting.
        fn drain(&self) -> Vec<Sent> {
            drain(&self.rtp).iter().map(|b| parse(b)).collect()
        }
    }

    /// Every datagram already waiting on `socket`, without waiting.
    fn drain(socket: &UdpSocket) -> Vec<Vec<u8>> {
        socket.set_nonblocking(true).expect("nonblocking");
        let mut out = Vec::new();
        let mut buf = [0u8; 1500];
        while let Ok((len, _)) = socket.recv_from(&mut buf) {
            out.push(buf[..len].to_vec());
        }
        socket.set_nonblocking(false).expect("blocking");
        out
    }

    /// Builds a far end's RTP stream of one frame per call.
    struct Talker {
        sender: RtpSender,
        codec: Codec,
        pt: u8,
        ts: u32,
        frame: Frame,
        first: bool,
    }

    impl Talker {
        fn new(kind: CodecKind, pt: u8, ssrc: u32) -> Talker {
            Talker {
                sender: RtpSender::new(ssrc, 1000),
                codec: Codec::new(kind, &OpusSettings::default()).expect("codec"),
                pt,
                ts: 50_000,
                frame: sine(),
                first: true,
            }
        }

        fn next(&mut self) -> Vec<u8> {
            self.next_of(1)
        }

        /// A packet of `frames` frames of the sine.
        fn next_of(&mut self, frames: usize) -> Vec<u8> {
            let mut pcm = Vec::new();
            for _ in 0..frames {
                pcm.extend_from_slice(&self.frame);
            }
            let mut payload = [0u8; 1500];
            let len = self.codec.encode(&pcm, &mut payload).expect("encode");
            let mut out = Vec::new();
            self.sender
                .packet(self.pt, self.ts, self.first, &payload[..len], &mut out);
            self.first = false;
            let step = frames as u32 * self.codec.kind().samples_per_frame();
            self.ts = self.ts.wrapping_add(step);
            out
        }

        /// A telephone-event packet (RFC 4733) at `ts`.
        fn event(&mut self, code: u8, end: bool, duration: u16, ts: u32) -> Vec<u8> {
            let [hi, lo] = duration.to_be_bytes();
            let flags = if end { 0x80 | 10 } else { 10 };
            let mut out = Vec::new();
            self.sender
                .packet(PT_EVENT, ts, false, &[code, flags, hi, lo], &mut out);
            out
        }
    }

    /// The pipeline with its device, reports and one socket pair per line.
    struct Harness {
        pipeline: Pipeline,
        net: LineNet,
        t0: Instant,
        elapsed: Duration,
        /// Per line: (RTP address, RTCP address).
        addrs: Vec<(SocketAddr, SocketAddr)>,
        /// Per line: clones of its (RTP, RTCP) sockets, to see that a datagram waits.
        probes: Vec<(UdpSocket, UdpSocket)>,
        reports: Arc<Mutex<Vec<Report>>>,
        headset: Frames,
        ring: Frames,
    }

    impl Harness {
        fn new(lines: usize) -> Harness {
            Harness::with(lines, EngineConfig::default(), None, Vec::new())
        }

        fn with(
            lines: usize,
            mut config: EngineConfig,
            moh: Option<MusicOnHold>,
            notices: Vec<DeviceNotice>,
        ) -> Harness {
            config.jitter = JitterConfig {
                min_ms: 20,
                max_ms: 200,
                start_ms: 40,
            };
            config.cname = "test@pipeline".into();
            let headset = Frames::default();
            let ring = Frames::default();
            let device = TestDevice {
                mic: sine(),
                headset: Arc::clone(&headset),
                ring: Arc::clone(&ring),
                notices,
            };
            let mut sockets = Vec::new();
            let mut addrs = Vec::new();
            let mut probes = Vec::new();
            for _ in 0..lines {
                let rtp = UdpSocket::bind("127.0.0.1:0").expect("bind");
                let rtcp = UdpSocket::bind("127.0.0.1:0").expect("bind");
                rtp.set_nonblocking(true).expect("nonblocking");
                rtcp.set_nonblocking(true).expect("nonblocking");
                addrs.push((
                    rtp.local_addr().expect("addr"),
                    rtcp.local_addr().expect("addr"),
                ));
                probes.push((
                    rtp.try_clone().expect("clone"),
                    rtcp.try_clone().expect("clone"),
                ));
                sockets.push(LineSockets { rtp, rtcp });
            }
            let reports = Arc::new(Mutex::new(Vec::new()));
            let sink = Arc::clone(&reports);
            let net = LineNet::new(sockets);
            let pipeline = Pipeline::new(
                Box::new(device),
                lines,
                config,
                moh,
                Box::new(move |r| sink.lock().expect("lock").push(r)),
            );
            Harness {
                pipeline,
                net,
                t0: epoch(),
                elapsed: Duration::ZERO,
                addrs,
                probes,
                reports,
                headset,
                ring,
            }
        }

        fn now(&self) -> Instant {
            self.t0 + self.elapsed
        }

        fn wallclock(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_secs(1_800_000_000) + self.elapsed
        }

        /// One tick at the current time, then the clock moves 20 ms on.
        fn tick(&mut self) {
            let (now, wallclock) = (self.now(), self.wallclock());
            self.net.receive_all(&mut self.pipeline, now, wallclock);
            self.pipeline.tick(now, wallclock);
            self.net.flush(&mut self.pipeline);
            self.elapsed += TICK;
        }

        fn line(&mut self, line: usize, stream: Option<StreamParams>, tone: Option<LineTone>) {
            let now = self.now();
            self.pipeline
                .control(now, Control::Line { line, stream, tone });
        }

        fn dtmf(&mut self, line: usize, digits: &str) {
            let now = self.now();
            self.pipeline.control(
                now,
                Control::Dtmf {
                    line,
                    digits: digits.into(),
                },
            );
        }

        /// Sends `bytes` from `from` to line 0's RTP socket and lets the pipeline read it.
        fn send(&mut self, from: &UdpSocket, bytes: &[u8]) {
            self.send_to_line(0, false, from, bytes);
        }

        /// Sends `bytes` to a line's RTP (or RTCP) socket, waits (bounded) until the
        /// kernel has queued it, then lets the pipeline read its sockets.
        fn send_to_line(&mut self, line: usize, rtcp: bool, from: &UdpSocket, bytes: &[u8]) {
            self.queue(line, rtcp, from, bytes);
            let (now, wallclock) = (self.now(), self.wallclock());
            self.net.receive_all(&mut self.pipeline, now, wallclock);
        }

        /// Sends `bytes` to a line's RTP (or RTCP) socket and waits (bounded) until the
        /// kernel has queued it; the pipeline reads it at its next tick.
        fn queue(&mut self, line: usize, rtcp: bool, from: &UdpSocket, bytes: &[u8]) {
            let (to, probe) = if rtcp {
                (self.addrs[line].1, &self.probes[line].1)
            } else {
                (self.addrs[line].0, &self.probes[line].0)
            };
            from.send_to(bytes, to).expect("send");
            let mut buf = [0u8; 1500];
            for _ in 0..50 {
                match probe.peek_from(&mut buf) {
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                    _ => break,
                }
            }
        }

        fn headset(&self) -> Vec<Frame> {
            self.headset.lock().expect("lock").clone()
        }

        fn ring(&self) -> Vec<Frame> {
            self.ring.lock().expect("lock").clone()
        }

        fn take_reports(&self) -> Vec<Report> {
            std::mem::take(&mut *self.reports.lock().expect("lock"))
        }
    }

    fn params(codec: CodecKind, payload_type: u8, remote: SocketAddr) -> StreamParams {
        StreamParams {
            codec,
            payload_type,
            remote,
            remote_rtcp: rtcp_of(remote),
            send: true,
            receive: true,
            dtmf_payload_type: Some(PT_EVENT),
            // One packet per tick, so each tick's packet can be checked.
            ptime: Some(FRAME_MS),
            max_bitrate: None,
            source: SendSource::Microphone,
            muted: false,
            srtp: None,
        }
    }

    /// The RTCP address next to RTP's `rtp`.
    fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
        SocketAddr::new(rtp.ip(), rtp.port() + 1)
    }

    fn pcmu(remote: SocketAddr) -> StreamParams {
        params(CodecKind::Pcmu, PT_PCMU, remote)
    }

    /// `stream` with the far end asking for `ms` packets.
    fn with_ptime(stream: StreamParams, ms: u32) -> StreamParams {
        StreamParams {
            ptime: Some(ms),
            ..stream
        }
    }

    /// Ticks `n` times and returns, per tick, the RTP packets the peer got.
    fn tick_and_collect(h: &mut Harness, peer: &Peer, n: usize) -> Vec<Vec<Sent>> {
        (0..n)
            .map(|_| {
                h.tick();
                peer.drain()
            })
            .collect()
    }

    // ---- sending ----

    fn assert_steady_stream(peer: &Peer, h: &mut Harness, pt: u8, step: u32) {
        let mut previous: Option<Sent> = None;
        for i in 0..10 {
            h.tick();
            let p = peer.recv();
            assert!(peer.drain().is_empty(), "one packet per tick (tick {i})");
            assert_eq!(p.pt, pt);
            assert_eq!(p.marker, i == 0, "only the first packet is marked");
            if let Some(prev) = &previous {
                assert_eq!(p.seq, prev.seq.wrapping_add(1));
                assert_eq!(p.ts, prev.ts.wrapping_add(step));
                assert_eq!(p.ssrc, prev.ssrc);
            }
            previous = Some(p);
        }
    }

    #[test]
    fn pcmu_stream_sends_one_packet_per_tick() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let spf = CodecKind::Pcmu.samples_per_frame();
        assert_steady_stream(&peer, &mut h, PT_PCMU, spf);
        h.tick();
        let p = peer.recv();
        assert_eq!(p.payload.len(), spf as usize, "a frame of G.711 at 8 kHz");
        let heard = decode(CodecKind::Pcmu, &p.payload);
        assert!(rms(&heard) > LOUD, "the microphone's sine is sent");
        assert!(h.take_reports().is_empty());
    }

    #[test]
    fn a_packet_carries_the_frames_the_far_end_asks_for() {
        // (codec, the far end's a=ptime, frames per packet we send)
        for (kind, pt, ptime, frames) in [
            (CodecKind::Pcmu, PT_PCMU, None, 20 / FRAME_MS),
            (CodecKind::Pcmu, PT_PCMU, Some(30), 30 / FRAME_MS),
            (CodecKind::Pcmu, PT_PCMU, Some(200), 60 / FRAME_MS),
            (CodecKind::G722, 9, Some(40), 40 / FRAME_MS),
            // Opus has no 30 ms packet: the next shorter one.
            (CodecKind::Opus, PT_OPUS, Some(30), 20 / FRAME_MS),
            (CodecKind::Opus, PT_OPUS, Some(10), 10 / FRAME_MS),
        ] {
            let peer = Peer::new();
            let mut h = Harness::new(1);
            let stream = StreamParams {
                ptime,
                ..params(kind, pt, peer.addr())
            };
            h.line(0, Some(stream), None);
            let frames = frames as usize;
            let sent = tick_and_collect(&mut h, &peer, 4 * frames);
            let counts: Vec<usize> = sent.iter().map(Vec::len).collect();
            let expected: Vec<usize> = (1..=4 * frames)
                .map(|t| usize::from(t % frames == 0))
                .collect();
            assert_eq!(
                counts, expected,
                "{kind:?} at {ptime:?}: one packet per {frames} ticks"
            );
            let packets: Vec<&Sent> = sent.iter().flatten().collect();
            let step = frames as u32 * kind.samples_per_frame();
            for pair in packets.windows(2) {
                assert_eq!(pair[1].seq, pair[0].seq.wrapping_add(1));
                assert_eq!(pair[1].ts, pair[0].ts.wrapping_add(step), "{kind:?}");
            }
            // The payload holds the packet's frames: decoded, the microphone's sine throughout.
            let mut codec = Codec::new(kind, &OpusSettings::default()).expect("codec");
            let mut pcm = [0i16; MAX_PACKET_SAMPLES];
            for p in &packets {
                let n = codec.decode(&p.payload, &mut pcm).expect("decodes");
                assert_eq!(n, frames * FRAME_SAMPLES, "{kind:?} at {ptime:?}");
            }
            let last = &pcm[(frames - 1) * FRAME_SAMPLES..frames * FRAME_SAMPLES];
            assert!(rms(last) > LOUD, "{kind:?}: the sine is sent");
        }
    }

    #[test]
    fn a_new_ptime_changes_the_packets_not_the_stream() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        let twenty = with_ptime(pcmu(peer.addr()), 20);
        h.line(0, Some(twenty.clone()), None);
        let before: Vec<Sent> = tick_and_collect(&mut h, &peer, 4)
            .into_iter()
            .flatten()
            .collect();
        h.line(0, Some(with_ptime(twenty, 40)), None);
        let after: Vec<Sent> = tick_and_collect(&mut h, &peer, 8)
            .into_iter()
            .flatten()
            .collect();
        let frame = CodecKind::Pcmu.samples_per_frame() as usize;
        assert!(before.iter().all(|p| p.payload.len() == 2 * frame));
        assert_eq!(after.len(), 2);
        assert!(
            after.iter().all(|p| p.payload.len() == 4 * frame),
            "40 ms packets now"
        );
        let last = before.last().expect("sent");
        assert_eq!(after[0].ssrc, last.ssrc, "the same stream");
        assert_eq!(after[0].seq, last.seq.wrapping_add(1));
        assert!(!after[0].marker);
    }

    #[test]
    fn packets_of_any_length_play_without_a_gap() {
        // The far end's packets: 20, 40 and 30 ms; then it changes from 20 to 10 ms mid-call.
        for (kind, pt, frames) in [
            (CodecKind::Pcmu, PT_PCMU, vec![20 / FRAME_MS; 30]),
            (CodecKind::Opus, PT_OPUS, vec![40 / FRAME_MS; 15]),
            (CodecKind::G722, 9, vec![30 / FRAME_MS; 20]),
            (
                CodecKind::Pcmu,
                PT_PCMU,
                [vec![20 / FRAME_MS; 15], vec![1; 30]].concat(),
            ),
        ] {
            let peer = Peer::new();
            let mut h = Harness::new(1);
            h.line(0, Some(params(kind, pt, peer.addr())), None);
            let mut talker = Talker::new(kind, pt, 5);
            let mut playing_from = Vec::new();
            for &n in &frames {
                let pkt = talker.next_of(n as usize);
                h.send(&peer.rtp, &pkt);
                for _ in 0..n {
                    h.tick();
                }
                playing_from.push(h.headset().len());
            }
            let heard = h.headset();
            let start = first_loud(&heard).expect("heard");
            assert!(start <= ticks(100), "{kind:?}: starts after {start} ticks");
            // Every frame after the first (Opus' onset) carries the sine, but at a change of
            // packetisation (the first packet of the new length is held back, the buffer
            // refills).
            let change = frames.iter().position(|&n| n != frames[0]);
            let gaps: Vec<usize> = (start + 1..heard.len())
                .filter(|&i| !(4000.0..7000.0).contains(&rms(&heard[i])))
                .collect();
            match change {
                None => assert!(gaps.is_empty(), "{kind:?}: gaps at {gaps:?}"),
                Some(k) => {
                    let at = playing_from[k - 1];
                    assert!(
                        gaps.iter().all(|&g| (at..at + ticks(100)).contains(&g)),
                        "{kind:?}: gaps at {gaps:?}, the change at {at}"
                    );
                    assert!(
                        (heard.len() - ticks(200)..heard.len()).all(|i| rms(&heard[i]) > LOUD),
                        "{kind:?}: 10 ms packets play after the change"
                    );
                }
            }
        }
    }

    #[test]
    fn opus_stream_steps_the_timestamp_by_one_frame() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(params(CodecKind::Opus, PT_OPUS, peer.addr())), None);
        assert_steady_stream(&peer, &mut h, PT_OPUS, CodecKind::Opus.samples_per_frame());
    }

    #[test]
    fn idle_only_when_nothing_needs_the_clock() {
        let peer = Peer::new();
        let mut h = Harness::new(2);
        assert!(h.pipeline.is_idle(), "no stream, tone or sound check");
        h.line(1, None, Some(LineTone::Ring));
        assert!(!h.pipeline.is_idle(), "a ring tone needs ticks");
        h.line(1, None, None);
        assert!(h.pipeline.is_idle());
        h.line(0, Some(pcmu(peer.addr())), None);
        assert!(!h.pipeline.is_idle(), "a stream needs ticks");
        h.line(0, None, None);
        assert!(h.pipeline.is_idle());
        for (on, off) in [
            (SoundOrder::Meter(true), SoundOrder::Meter(false)),
            (SoundOrder::Echo(true), SoundOrder::Echo(false)),
        ] {
            h.pipeline.control(h.t0, Control::SoundCheck(on));
            assert!(!h.pipeline.is_idle(), "the sound check needs ticks");
            h.pipeline.control(h.t0, Control::SoundCheck(off));
            assert!(h.pipeline.is_idle());
        }
        // The test tone plays for two seconds, then the clock may stop.
        h.pipeline
            .control(h.t0, Control::SoundCheck(SoundOrder::Tone));
        assert!(!h.pipeline.is_idle());
        for _ in 0..ticks(2_000) {
            h.tick();
        }
        assert!(h.pipeline.is_idle(), "the tone has ended");
    }

    #[test]
    fn no_stream_sends_nothing_and_removing_it_stops_sending() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        for _ in 0..3 {
            h.tick();
        }
        assert!(peer.drain().is_empty());
        h.line(0, Some(pcmu(peer.addr())), None);
        h.tick();
        assert_eq!(peer.drain().len(), 1);
        h.line(0, None, None);
        for _ in 0..3 {
            h.tick();
        }
        assert!(peer.drain().is_empty(), "no stream, no packets");
        // Orders for lines that do not exist are ignored.
        h.line(7, Some(pcmu(peer.addr())), None);
        h.dtmf(7, "1");
        h.tick();
        assert!(peer.drain().is_empty());
    }

    #[test]
    fn mute_sends_silence_and_unmuting_sends_the_microphone_again() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        let mut muted = pcmu(peer.addr());
        muted.muted = true;
        h.line(0, Some(muted.clone()), None);
        let sent = tick_and_collect(&mut h, &peer, 5);
        for tick in &sent {
            assert_eq!(tick.len(), 1, "muted still sends (silence)");
            assert!(rms(&decode(CodecKind::Pcmu, &tick[0].payload)) < QUIET);
        }
        let last_seq = sent[4][0].seq;
        muted.muted = false;
        h.line(0, Some(muted), None);
        let sent = tick_and_collect(&mut h, &peer, 3);
        assert_eq!(sent[0][0].seq, last_seq.wrapping_add(1), "same stream");
        for tick in &sent {
            assert!(rms(&decode(CodecKind::Pcmu, &tick[0].payload)) > LOUD);
        }
    }

    #[test]
    fn music_on_hold_source_without_music_sends_silence() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        let mut held = pcmu(peer.addr());
        held.source = SendSource::MusicOnHold;
        h.line(0, Some(held), None);
        for tick in tick_and_collect(&mut h, &peer, 5) {
            assert_eq!(tick.len(), 1);
            assert!(rms(&decode(CodecKind::Pcmu, &tick[0].payload)) < QUIET);
        }
    }

    #[test]
    fn held_line_hears_music_and_its_audio_stays_out_of_the_headset() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/music_on_hold.wav");
        let moh = MusicOnHold::load(std::path::Path::new(path)).expect("the bundled music");
        let peer = Peer::new();
        let mut h = Harness::with(1, EngineConfig::default(), Some(moh), Vec::new());
        let mut held = pcmu(peer.addr());
        held.source = SendSource::MusicOnHold;
        h.line(0, Some(held.clone()), None);
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 7);
        let mic = {
            let mut codec = Codec::new(CodecKind::Pcmu, &OpusSettings::default()).expect("codec");
            let mut out = [0u8; 1500];
            let len = codec.encode(&sine(), &mut out).expect("encode");
            out[..len].to_vec()
        };
        let mut loudest: f64 = 0.0;
        for _ in 0..15 {
            let pkt = talker.next();
            h.send(&peer.rtp, &pkt);
            h.tick();
            let sent = peer.drain();
            assert_eq!(sent.len(), 1);
            assert_ne!(sent[0].payload, mic, "the music, not the microphone");
            let music = decode(CodecKind::Pcmu, &sent[0].payload);
            loudest = loudest.max(rms(&music));
        }
        assert!(
            loudest > LOUD,
            "music is sent (loudest frame rms {loudest})"
        );
        assert!(
            h.headset().iter().all(|f| rms(f) < QUIET),
            "the held party's audio is not played"
        );
        // Taking the line off hold plays the very same stream.
        held.source = SendSource::Microphone;
        h.line(0, Some(held), None);
        for _ in 0..5 {
            let pkt = talker.next();
            h.send(&peer.rtp, &pkt);
            h.tick();
        }
        let headset = h.headset();
        assert!(rms(&headset[headset.len() - 1]) > LOUD);
    }

    /// A sine of `hz` (a multiple of 50 Hz, so frames join seamlessly) at 48 kHz.
    fn tone_frame(hz: f64) -> Frame {
        let mut frame = [0i16; FRAME_SAMPLES];
        for (i, s) in frame.iter_mut().enumerate() {
            let phase = std::f64::consts::TAU * hz * i as f64 / 48_000.0;
            *s = (6000.0 * phase.sin()) as i16;
        }
        frame
    }

    /// The amplitude of the `hz` tone in `x` (correlation with a sine/cosine pair).
    fn amplitude(x: &Frame, hz: f64) -> f64 {
        let (mut s, mut c) = (0.0, 0.0);
        for (i, v) in x.iter().enumerate() {
            let ph = std::f64::consts::TAU * hz * i as f64 / 48_000.0;
            s += f64::from(*v) * ph.sin();
            c += f64::from(*v) * ph.cos();
        }
        2.0 * (s * s + c * c).sqrt() / x.len() as f64
    }

    #[test]
    fn conference_members_hear_the_operator_and_each_other_but_not_themselves() {
        let (a, b) = (Peer::new(), Peer::new());
        let mut h = Harness::new(2);
        for (line, peer) in [(0, &a), (1, &b)] {
            let mut p = pcmu(peer.addr());
            p.source = SendSource::Conference;
            h.line(line, Some(p), None);
        }
        let mut talk_a = Talker::new(CodecKind::Pcmu, PT_PCMU, 1);
        talk_a.frame = tone_frame(400.0);
        let mut talk_b = Talker::new(CodecKind::Pcmu, PT_PCMU, 2);
        talk_b.frame = tone_frame(600.0);
        let (mut to_a, mut to_b) = (Vec::new(), Vec::new());
        for _ in 0..12 {
            let (pa, pb) = (talk_a.next(), talk_b.next());
            h.send_to_line(0, false, &a.rtp, &pa);
            h.send_to_line(1, false, &b.rtp, &pb);
            h.tick();
            to_a.extend(a.drain());
            to_b.extend(b.drain());
        }
        assert_eq!(
            (to_a.len(), to_b.len()),
            (12, 12),
            "one packet per tick each"
        );
        // Decoded by one decoder each, as the phones would (its filter state carries over).
        let last = |sent: &[Sent]| {
            let mut codec = Codec::new(CodecKind::Pcmu, &OpusSettings::default()).expect("codec");
            let mut frame = [0i16; FRAME_SAMPLES];
            for p in sent {
                codec.decode(&p.payload, &mut frame).expect("decodable");
            }
            frame
        };
        let (heard_a, heard_b) = (last(&to_a), last(&to_b));
        let headset = h.headset();
        let headset = &headset[11];
        let loud = |x: f64| x > 3000.0;
        let absent = |x: f64| x < 300.0;
        // The microphone says 1 kHz.
        assert!(loud(amplitude(&heard_a, 1000.0)) && loud(amplitude(&heard_a, 600.0)));
        assert!(absent(amplitude(&heard_a, 400.0)), "A does not hear itself");
        assert!(loud(amplitude(&heard_b, 1000.0)) && loud(amplitude(&heard_b, 400.0)));
        assert!(absent(amplitude(&heard_b, 600.0)), "B does not hear itself");
        assert!(loud(amplitude(headset, 400.0)) && loud(amplitude(headset, 600.0)));
        assert!(absent(amplitude(headset, 1000.0)), "no sidetone of the mic");

        // Muting the operator takes the microphone out of every member's mix.
        for (line, peer) in [(0, &a), (1, &b)] {
            let mut p = pcmu(peer.addr());
            p.source = SendSource::Conference;
            p.muted = true;
            h.line(line, Some(p), None);
        }
        for _ in 0..3 {
            let (pa, pb) = (talk_a.next(), talk_b.next());
            h.send_to_line(0, false, &a.rtp, &pa);
            h.send_to_line(1, false, &b.rtp, &pb);
            h.tick();
            to_a.extend(a.drain());
        }
        let heard_a = last(&to_a);
        assert!(absent(amplitude(&heard_a, 1000.0)), "muted");
        assert!(loud(amplitude(&heard_a, 600.0)), "still hears B");
        b.drain();
    }

    /// The per-frame path allocates nothing once a stream is set up: receiving (socket,
    /// jitter buffer, RTCP statistics), decoding and mixing into the headset, encoding the
    /// microphone and sending, RTCP reports and the quality report, for seven seconds of
    /// ticks with PCMU and with Opus. (An SRTP line is the documented exception, see
    /// `srtp.rs`; Opus' own buffers are libopus', allocated when the codec starts.)
    #[test]
    fn the_per_frame_path_does_not_allocate() {
        for (kind, pt) in [(CodecKind::Pcmu, PT_PCMU), (CodecKind::Opus, PT_OPUS)] {
            let peer = Peer::new();
            let mut h = Harness::new(1);
            // 20 ms packets: the frames queued for a packet are on the path too.
            h.line(0, Some(with_ptime(params(kind, pt, peer.addr()), 20)), None);
            let mut talker = Talker::new(kind, pt, 42);
            let ticks = ticks(7_000);
            // The test device and report sink keep what they get: room for all of it now.
            h.headset.lock().expect("lock").reserve(ticks);
            h.ring.lock().expect("lock").reserve(ticks);
            h.reports.lock().expect("lock").reserve(ticks);
            let before = assert_no_alloc::violation_count();
            for _ in 0..ticks {
                let pkt = talker.next();
                h.queue(0, false, &peer.rtp, &pkt); // read by the tick, inside the check
                assert_no_alloc::assert_no_alloc(|| h.tick());
                drain(&peer.rtp);
                drain(&peer.rtcp);
            }
            assert_eq!(
                assert_no_alloc::violation_count() - before,
                0,
                "{kind:?}: allocations on the per-frame path"
            );
            let reports = h.take_reports();
            assert!(
                reports.iter().any(|r| matches!(r, Report::Quality { .. })),
                "{kind:?}: the quality report ran inside the check: {reports:?}"
            );
            assert!(
                rms(&h.headset()[ticks - 1]) > LOUD,
                "{kind:?}: the far end is heard"
            );
        }
    }

    /// Two pipelines wired back to back through `poll_transmit` and `handle_datagram`, no
    /// socket anywhere: an SRTP call whose sequence numbers start just below the wrap on both
    /// sides, each side hearing the other well after both wrapped.
    #[test]
    fn two_pipelines_talk_without_sockets_over_srtp_across_the_wrap() {
        use super::super::srtp::{SrtpKeys, SrtpSuite, KEY_LEN, SALT_LEN};
        use super::Port;
        let addr = |s: &str| s.parse::<SocketAddr>().expect("address");
        let (a_addr, b_addr) = (addr("192.0.2.1:4000"), addr("192.0.2.2:5000"));
        let side = |mic: Frame, remote: SocketAddr, local: u8, far: u8| {
            let headset = Frames::default();
            let device = TestDevice {
                mic,
                headset: Arc::clone(&headset),
                ring: Frames::default(),
                notices: Vec::new(),
            };
            let config = EngineConfig {
                rtp_sequence_start: Some(65_500),
                ..EngineConfig::default()
            };
            let mut pipeline = Pipeline::new(Box::new(device), 1, config, None, Box::new(|_| {}));
            let stream = StreamParams {
                srtp: Some(SrtpKeys {
                    suite: SrtpSuite::AesCm128HmacSha1_80,
                    local: [local; KEY_LEN + SALT_LEN],
                    remote: [far; KEY_LEN + SALT_LEN],
                }),
                ..pcmu(remote)
            };
            pipeline.control(
                epoch(),
                Control::Line {
                    line: 0,
                    stream: Some(stream),
                    tone: None,
                },
            );
            (pipeline, headset)
        };
        let (mut a, a_heard) = side(sine(), b_addr, 1, 2);
        let (mut b, b_heard) = side(tone_frame(600.0), a_addr, 2, 1);
        let t0 = epoch();
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut sequences = Vec::new();
        for k in 0..200u32 {
            let now = t0 + TICK * k;
            a.tick(now, wall);
            b.tick(now, wall);
            while let Some(t) = a.poll_transmit() {
                let rtcp_to = rtcp_of(b_addr);
                assert_eq!(t.to, if t.port == Port::Rtp { b_addr } else { rtcp_to });
                if t.port == Port::Rtp {
                    sequences.push(parse(t.bytes).seq);
                }
                let from = if t.port == Port::Rtp {
                    a_addr
                } else {
                    rtcp_of(a_addr)
                };
                b.handle_datagram(now, wall, 0, t.port, from, t.bytes);
            }
            while let Some(t) = b.poll_transmit() {
                let rtcp_to = rtcp_of(a_addr);
                assert_eq!(t.to, if t.port == Port::Rtp { a_addr } else { rtcp_to });
                let from = if t.port == Port::Rtp {
                    b_addr
                } else {
                    rtcp_of(b_addr)
                };
                a.handle_datagram(now, wall, 0, t.port, from, t.bytes);
            }
        }
        assert_eq!(sequences.first(), Some(&65_500));
        assert!(
            sequences.contains(&65_535) && sequences.contains(&0),
            "wrapped"
        );
        let heard = |frames: &Frames, hz: f64| {
            let frames = frames.lock().expect("lock");
            frames[100..].iter().all(|f| amplitude(f, hz) > 3000.0)
        };
        assert!(heard(&b_heard, 1000.0), "B hears A after the wrap");
        assert!(heard(&a_heard, 600.0), "A hears B after the wrap");
    }

    // ---- receiving ----

    /// The index of the first headset frame with sound.
    fn first_loud(frames: &[Frame]) -> Option<usize> {
        frames.iter().position(|f| rms(f) > LOUD)
    }

    #[test]
    fn received_audio_reaches_the_headset_after_the_jitter_delay() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 42);
        for _ in 0..15 {
            let pkt = talker.next();
            h.send(&peer.rtp, &pkt);
            h.tick();
        }
        let frames = h.headset();
        assert_eq!(frames.len(), 15);
        // Packets arrive exactly on time: the 40 ms start delay is four frames.
        let start = 40 / FRAME_MS as usize;
        assert_eq!(
            first_loud(&frames),
            Some(start),
            "played after the jitter delay"
        );
        assert!(frames[..start].iter().all(|f| rms(f) < QUIET));
        for f in &frames[start + 1..] {
            let level = rms(f);
            assert!((4000.0..7000.0).contains(&level), "sine rms {level}");
        }
    }

    #[test]
    fn foreign_source_is_dropped_once_the_peer_is_heard() {
        let peer = Peer::new();
        let foreign = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 1);
        let mut intruder = Talker::new(CodecKind::Pcmu, PT_PCMU, 2);
        for _ in 0..6 {
            let pkt = talker.next();
            h.send(&peer.rtp, &pkt);
            h.tick();
        }
        assert!(rms(&h.headset()[5]) > LOUD, "the peer is heard");
        // The peer stops; only the foreign source talks now.
        for _ in 0..25 {
            let pkt = intruder.next();
            h.send(&foreign.rtp, &pkt);
            h.tick();
        }
        let frames = h.headset();
        assert!(
            frames[frames.len() - 10..].iter().all(|f| rms(f) < QUIET),
            "the foreign source is not played"
        );
        assert_eq!(peer.drain().len(), 31, "RTP still goes to the peer");
        assert!(
            foreign.drain().is_empty(),
            "no latching once the peer is heard"
        );
    }

    #[test]
    fn a_foreign_flood_during_the_call_leaves_the_peer_clean() {
        let peer = Peer::new();
        let foreign = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 1);
        // Valid-looking RTP with another SSRC and a far-off sequence, 20 per tick,
        // plus junk, all from a foreign address, while the peer talks.
        let mut intruder = Talker::new(CodecKind::Pcmu, PT_PCMU, 0xdead);
        intruder.sender = RtpSender::new(0xdead, 30_000);
        for _ in 0..30 {
            let pkt = talker.next();
            h.send(&peer.rtp, &pkt);
            for i in 0..20 {
                let junk = if i % 5 == 0 {
                    vec![0x80u8; 12]
                } else {
                    intruder.next()
                };
                foreign
                    .rtp
                    .send_to(&junk, h.addrs[0].0)
                    .expect("send foreign");
            }
            h.tick();
        }
        let frames = h.headset();
        let start = 40 / FRAME_MS as usize + 1;
        for (i, f) in frames[start..].iter().enumerate() {
            let level = rms(f);
            assert!(
                (4000.0..7000.0).contains(&level),
                "frame {}: the peer's sine, undisturbed (rms {level})",
                i + start
            );
        }
        assert!(
            foreign.drain().is_empty(),
            "nothing is sent to the intruder"
        );
    }

    #[test]
    fn silence_on_a_two_way_stream_is_reported_once_and_held_lines_never() {
        let peer = Peer::new();
        let config = EngineConfig {
            rtp_timeout: Some(Duration::from_secs(1)),
            ..EngineConfig::default()
        };
        let mut h = Harness::with(2, config, None, Vec::new());
        h.line(0, Some(pcmu(peer.addr())), None);
        let held = StreamParams {
            receive: false,
            source: SendSource::MusicOnHold,
            ..pcmu(peer.addr())
        };
        h.line(1, Some(held), None);
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 1);
        // Talking for 0.8 s, then silent for 2 s.
        for _ in 0..ticks(800) {
            let pkt = talker.next();
            h.send(&peer.rtp, &pkt);
            h.tick();
        }
        assert!(h
            .take_reports()
            .iter()
            .all(|r| !matches!(r, Report::Silent { .. })));
        for _ in 0..ticks(2_000) {
            h.tick();
        }
        let silent: Vec<Report> = h
            .take_reports()
            .into_iter()
            .filter(|r| matches!(r, Report::Silent { .. }))
            .collect();
        assert!(
            matches!(
                silent[..],
                [Report::Silent {
                    line: 0,
                    seconds: 1
                }]
            ),
            "one report for line 0 only: {silent:?}"
        );
        // Heard again, then silent again: reported again.
        let pkt = talker.next();
        h.send(&peer.rtp, &pkt);
        for _ in 0..ticks(1_200) {
            h.tick();
        }
        let again = h
            .take_reports()
            .into_iter()
            .filter(|r| matches!(r, Report::Silent { line: 0, .. }))
            .count();
        assert_eq!(again, 1);
    }

    #[test]
    fn unexpected_payload_type_is_dropped_and_does_not_latch() {
        let peer = Peer::new();
        let foreign = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        // PCMA (type 8) on a PCMU stream, from the peer and from elsewhere.
        let mut wrong = Talker::new(CodecKind::Pcma, PT_PCMA, 3);
        for i in 0..20 {
            let pkt = wrong.next();
            let from = if i % 2 == 0 { &peer.rtp } else { &foreign.rtp };
            h.send(from, &pkt);
            h.tick();
        }
        assert!(h.headset().iter().all(|f| rms(f) < QUIET));
        assert_eq!(peer.drain().len(), 20);
        assert!(
            foreign.drain().is_empty(),
            "an unexpected type does not latch"
        );
    }

    #[test]
    fn first_valid_source_is_latched_until_the_peer_is_heard() {
        let negotiated = Peer::new();
        let nat = Peer::new();
        let other = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(negotiated.addr())), None);
        h.tick();
        assert_eq!(
            negotiated.drain().len(),
            1,
            "RTP starts at the negotiated address"
        );
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 11);
        for _ in 0..8 {
            let pkt = talker.next();
            h.send(&nat.rtp, &pkt);
            h.tick();
        }
        assert!(negotiated.drain().is_empty(), "latched away");
        assert_eq!(
            nat.drain().len(),
            8,
            "symmetric RTP: sent where it came from"
        );
        assert!(
            rms(&h.headset()[8]) > LOUD,
            "and the latched source is played"
        );
        // Only the first source latches.
        let mut third = Talker::new(CodecKind::Pcmu, PT_PCMU, 12);
        let pkt = third.next();
        h.send(&other.rtp, &pkt);
        h.tick();
        assert!(other.drain().is_empty());
        assert_eq!(nat.drain().len(), 1);
        // The negotiated address itself speaks up: it wins, and the latch ends.
        let mut real = Talker::new(CodecKind::Pcmu, PT_PCMU, 13);
        let pkt = real.next();
        h.send(&negotiated.rtp, &pkt);
        h.tick();
        assert_eq!(
            negotiated.drain().len(),
            1,
            "back to the negotiated address"
        );
        assert!(nat.drain().is_empty());
        let pkt = talker.next();
        h.send(&nat.rtp, &pkt);
        h.tick();
        assert_eq!(negotiated.drain().len(), 1, "no latching once it is heard");
        assert!(nat.drain().is_empty());
    }

    // ---- DTMF ----

    #[test]
    fn dtmf_digits_are_sent_as_telephone_events_instead_of_voice() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let voice = tick_and_collect(&mut h, &peer, 2);
        let last_voice = voice[1][0].clone();
        h.dtmf(0, "12");
        // Each tick sends: an event packet per frame of the tone (the last one 3 times),
        // a voice frame per frame of the gap after each digit.
        let (tone, gap) = ((TONE_MS / FRAME_MS) as usize, (GAP_MS / FRAME_MS) as usize);
        let spf = CodecKind::Pcmu.samples_per_frame();
        let ticks = tick_and_collect(&mut h, &peer, 2 * (tone + gap) + 1);
        let counts: Vec<usize> = ticks.iter().map(Vec::len).collect();
        let digit: Vec<usize> = (0..tone + gap)
            .map(|k| if k == tone - 1 { 3 } else { 1 })
            .collect();
        assert_eq!(counts, [&digit[..], &digit[..], &[1]].concat());
        let all: Vec<&Sent> = ticks.iter().flatten().collect();
        let mut seq = last_voice.seq;
        for p in &all {
            seq = seq.wrapping_add(1);
            assert_eq!(p.seq, seq, "one sequence for voice and events");
        }
        for (digit, first_tick) in [(1u8, 0usize), (2, tone + gap)] {
            let start = last_voice.ts.wrapping_add(spf * (first_tick as u32 + 1));
            for (k, tick) in ticks[first_tick..first_tick + tone].iter().enumerate() {
                for p in tick {
                    assert_eq!(p.pt, PT_EVENT);
                    assert_eq!(p.ts, start, "an event keeps its start timestamp");
                    assert_eq!(p.marker, k == 0, "marker on the event's first packet");
                    assert_eq!(p.payload[0], digit);
                    let end = k == tone - 1;
                    assert_eq!(p.payload[1] & 0x80 != 0, end);
                    let duration = u16::from_be_bytes([p.payload[2], p.payload[3]]);
                    assert_eq!(u32::from(duration), spf * (k as u32 + 1));
                }
            }
            let gap = &ticks[first_tick + tone..first_tick + tone + gap];
            for (k, tick) in gap.iter().enumerate() {
                assert_eq!(tick[0].pt, PT_PCMU, "voice between digits");
                assert_eq!(tick[0].marker, k == 0, "voice resumes with a marker");
                let frame = (first_tick + tone + k) as u32 + 1;
                assert_eq!(tick[0].ts, last_voice.ts.wrapping_add(spf * frame));
            }
        }
        assert!(h.take_reports().is_empty());
    }

    #[test]
    fn dtmf_updates_go_at_the_packet_interval() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(with_ptime(pcmu(peer.addr()), 20)), None);
        tick_and_collect(&mut h, &peer, 4);
        h.dtmf(0, "7");
        let tone = (TONE_MS / FRAME_MS) as usize;
        let ticks = tick_and_collect(&mut h, &peer, tone);
        let counts: Vec<usize> = ticks.iter().map(Vec::len).collect();
        // The first packet at once, then one every 20 ms, the end three times.
        let expected: Vec<usize> = (1..=tone)
            .map(|k| match k {
                1 => 1,
                _ if k == tone => 3,
                _ => usize::from(k % 2 == 0),
            })
            .collect();
        assert_eq!(counts, expected);
        let spf = CodecKind::Pcmu.samples_per_frame();
        for (k, tick) in ticks.iter().enumerate() {
            for p in tick {
                let duration = u16::from_be_bytes([p.payload[2], p.payload[3]]);
                assert_eq!(
                    u32::from(duration),
                    spf * (k as u32 + 1),
                    "the event so far"
                );
            }
        }
    }

    #[test]
    fn dtmf_without_telephone_events_is_a_problem() {
        let peer = Peer::new();
        let mut h = Harness::new(2);
        let mut plain = pcmu(peer.addr());
        plain.dtmf_payload_type = None;
        h.line(0, Some(plain), None);
        h.dtmf(0, "5");
        h.dtmf(1, "5"); // no stream at all
        h.line(1, Some(pcmu(peer.addr())), None);
        h.dtmf(1, "5x"); // not a digit: nothing queued
        let reports = h.take_reports();
        let lines: Vec<usize> = reports
            .iter()
            .map(|r| match r {
                Report::Problem { line, .. } => *line,
                other => panic!("unexpected report {other:?}"),
            })
            .collect();
        assert_eq!(lines, [0, 1, 1]);
        for tick in tick_and_collect(&mut h, &peer, 6) {
            assert_eq!(tick.len(), 2, "one voice packet per line");
            assert!(tick.iter().all(|p| p.pt == PT_PCMU), "no event was sent");
        }
    }

    #[test]
    fn received_telephone_events_report_each_digit_once() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 5);
        for (digit, ts) in [(5u8, 80_000u32), (11, 81_600)] {
            for k in 1..=5u16 {
                let end = k == 5;
                for _ in 0..if end { 3 } else { 1 } {
                    let pkt = talker.event(digit, end, 160 * k, ts);
                    h.send(&peer.rtp, &pkt);
                }
                h.tick();
            }
        }
        assert_eq!(
            h.take_reports(),
            [
                Report::Dtmf {
                    line: 0,
                    digit: '5'
                },
                Report::Dtmf {
                    line: 0,
                    digit: '#'
                }
            ]
        );
        assert!(
            h.headset().iter().all(|f| rms(f) < QUIET),
            "events are not played as audio"
        );
    }

    // ---- tones and device ----

    #[test]
    fn ringback_plays_in_the_headset_without_a_stream() {
        let mut h = Harness::new(1);
        h.line(0, None, Some(LineTone::Ringback));
        for _ in 0..5 {
            h.tick();
        }
        // Re-sending the same tone keeps it going (no restart).
        h.line(0, None, Some(LineTone::Ringback));
        for _ in 0..5 {
            h.tick();
        }
        assert!(h.headset()[1..10].iter().all(|f| rms(f) > LOUD));
        assert!(h.ring().iter().all(|f| rms(f) < QUIET));
        h.line(0, None, None);
        h.tick();
        assert!(rms(&h.headset()[10]) < QUIET, "the tone stops");
    }

    #[test]
    fn ring_goes_to_the_ring_device() {
        let mut h = Harness::new(1);
        h.line(0, None, Some(LineTone::Ring));
        for _ in 0..5 {
            h.tick();
        }
        assert!(h.ring()[1..].iter().all(|f| rms(f) > LOUD));
        assert!(h.headset().iter().all(|f| rms(f) < QUIET));
    }

    #[test]
    fn device_notices_are_reported() {
        let notice = DeviceNotice::InputLost("mic".into());
        let mut h = Harness::with(1, EngineConfig::default(), None, vec![notice.clone()]);
        h.tick();
        h.tick();
        assert_eq!(h.take_reports(), [Report::Device(notice)]);
    }

    #[test]
    fn codec_that_cannot_start_is_a_problem() {
        let peer = Peer::new();
        let mut config = EngineConfig::default();
        config.opus.complexity = 200;
        let mut h = Harness::with(1, config, None, Vec::new());
        h.line(0, Some(params(CodecKind::Opus, PT_OPUS, peer.addr())), None);
        assert!(matches!(
            h.take_reports().as_slice(),
            [Report::Problem { line: 0, .. }]
        ));
        h.tick();
        assert!(peer.drain().is_empty(), "no stream");
    }

    // ---- RTCP and quality ----

    #[test]
    fn rtcp_after_a_second_and_quality_every_five_seconds() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 9);
        let mut quality_at = Vec::new();
        let second = ticks(1_000);
        for i in 0..=10 * second {
            if i < ticks(1_200) {
                let pkt = talker.next();
                h.send(&peer.rtp, &pkt);
            }
            h.tick();
            if i < ticks(1_200) {
                let rtcp = drain(&peer.rtcp);
                if i < second {
                    assert!(rtcp.is_empty(), "no RTCP before 1 s (tick {i})");
                } else if i == second {
                    assert_eq!(rtcp.len(), 1, "the first report at 1 s");
                    assert!(is_rtcp(&rtcp[0]));
                    assert_eq!(rtcp[0][1], 200, "a sender report: we send");
                    assert!(drain(&peer.rtp).iter().all(|p| !is_rtcp(p)));
                }
            }
            for r in h.take_reports() {
                match r {
                    Report::Quality { line, codec, .. } => {
                        assert_eq!((line, codec), (0, CodecKind::Pcmu));
                        quality_at.push(i);
                    }
                    other => panic!("unexpected report {other:?}"),
                }
            }
        }
        assert_eq!(quality_at, [ticks(5_000), ticks(10_000)], "every 5 s");
    }

    #[test]
    fn rtcp_goes_where_the_far_ends_sdp_says_then_where_its_rtcp_comes_from() {
        let peer = Peer::new();
        // The far end's a=rtcp names a port that is not next to its RTP port.
        let elsewhere = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let nat = Peer::new();
        let mut h = Harness::new(1);
        let stream = StreamParams {
            remote_rtcp: elsewhere.local_addr().expect("addr"),
            ..pcmu(peer.addr())
        };
        h.line(0, Some(stream), None);
        for _ in 0..=ticks(1_000) {
            h.tick();
        }
        let reports = drain(&elsewhere);
        assert_eq!(reports.len(), 1, "the first report at 1 s, to a=rtcp");
        assert!(is_rtcp(&reports[0]));
        assert!(drain(&peer.rtcp).is_empty(), "nothing to RTP + 1");
        // RTP latched to another source (a NAT the SDP does not know): RTCP follows it.
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 14);
        // The next report comes within 1.5 report intervals (7.5 s).
        for _ in 0..=ticks(8_000) {
            let pkt = talker.next();
            h.send(&nat.rtp, &pkt);
            h.tick();
        }
        assert!(
            !drain(&nat.rtcp).is_empty(),
            "RTCP next to the latched source"
        );
        assert!(drain(&elsewhere).is_empty());
        // The far end's own RTCP arrives from a port of its NAT's choosing: reports follow it
        // (symmetric RTCP).
        let mapped = UdpSocket::bind("127.0.0.1:0").expect("bind");
        let receiver_report = [0x80, 201, 0, 1, 0, 0, 0, 42];
        h.send_to_line(0, true, &mapped, &receiver_report);
        for _ in 0..=ticks(8_000) {
            let pkt = talker.next();
            h.send(&nat.rtp, &pkt);
            h.tick();
        }
        assert!(
            !drain(&mapped).is_empty(),
            "RTCP to where the far end's came from"
        );
        assert!(drain(&nat.rtcp).is_empty());
    }

    // ---- hostile input ----

    /// xorshift32: deterministic noise.
    struct Noise(u32);

    impl Noise {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }

        fn bytes(&mut self, len: usize) -> Vec<u8> {
            (0..len).map(|_| self.next() as u8).collect()
        }
    }

    fn hostile_datagrams() -> Vec<Vec<u8>> {
        let mut noise = Noise(0x1234_5678);
        let mut out = Vec::new();
        for _ in 0..150 {
            let len = (noise.next() % 100) as usize;
            out.push(noise.bytes(len));
        }
        let mut good = Vec::new();
        RtpSender::new(1, 1).packet(PT_PCMU, 0, true, &[0x55; 160], &mut good);
        for cut in 0..=12 {
            out.push(good[..cut].to_vec());
        }
        let mut csrc = good[..16].to_vec();
        csrc[0] |= 0x0f; // 15 CSRCs announced, none there
        out.push(csrc);
        let mut ext = good[..14].to_vec();
        ext[0] |= 0x10; // a header extension that is cut off
        out.push(ext);
        let mut pad = good.clone();
        pad[0] |= 0x20;
        *pad.last_mut().expect("bytes") = 0xff; // more padding than packet
        out.push(pad);
        let mut zero_pad = good.clone();
        zero_pad[0] |= 0x20;
        *zero_pad.last_mut().expect("bytes") = 0;
        out.push(zero_pad);
        let mut odd = good.clone();
        odd.truncate(12 + 77); // not one frame of G.711
        out.push(odd);
        out.push(vec![0x80, 200, 0xff, 0xff]); // RTCP claiming a huge length
        out.push(vec![0x80, 201, 0x00, 0x07, 1, 2, 3, 4]);
        out.push(vec![0x81, 200, 0x00, 0x01, 0, 0, 0, 1]); // SR cut short
        out
    }

    #[test]
    fn garbage_never_panics_and_plays_nothing() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        for (i, datagram) in hostile_datagrams().iter().enumerate() {
            h.send_to_line(0, i % 3 == 0, &peer.rtp, datagram);
            if i % 4 == 0 {
                h.tick();
            }
        }
        for _ in 0..5 {
            h.tick();
        }
        assert!(h.headset().iter().all(|f| rms(f) < QUIET), "no audio");
        // The stream is still alive and still sends to the peer.
        assert!(!peer.drain().is_empty());
        let mut talker = Talker::new(CodecKind::Pcmu, PT_PCMU, 77);
        for _ in 0..100 / FRAME_MS {
            let pkt = talker.next();
            h.send(&peer.rtp, &pkt);
            h.tick();
        }
        assert!(rms(&h.headset()[h.headset().len() - 1]) > LOUD);
    }

    #[test]
    fn garbage_on_an_opus_line_or_a_line_without_stream_never_panics() {
        let peer = Peer::new();
        let mut h = Harness::new(2);
        h.line(0, Some(params(CodecKind::Opus, PT_OPUS, peer.addr())), None);
        for (i, datagram) in hostile_datagrams().iter().enumerate() {
            h.send_to_line(i % 2, i % 3 == 0, &peer.rtp, datagram);
            h.tick();
        }
        assert!(!peer.drain().is_empty());
    }

    // ---- stream updates ----

    #[test]
    fn new_remote_address_retargets_without_resetting_the_sequence() {
        let first = Peer::new();
        let second = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(first.addr())), None);
        let before = tick_and_collect(&mut h, &first, 3);
        let last = before[2][0].clone();
        // The driver repeats the whole state: an identical order changes nothing.
        h.line(0, Some(pcmu(first.addr())), None);
        h.tick();
        let same = first.recv();
        assert_eq!(same.seq, last.seq.wrapping_add(1));
        assert!(!same.marker);
        h.line(0, Some(pcmu(second.addr())), None);
        h.tick();
        let moved = second.recv();
        assert!(first.drain().is_empty(), "nothing more to the old address");
        assert_eq!(moved.seq, last.seq.wrapping_add(2), "same sequence");
        assert_eq!(
            moved.ts,
            last.ts
                .wrapping_add(2 * CodecKind::Pcmu.samples_per_frame())
        );
        assert_eq!(moved.ssrc, last.ssrc, "same stream");
        // Pausing and resuming sending: same stream, a marker, the clock ran on.
        let mut paused = pcmu(second.addr());
        paused.send = false;
        h.line(0, Some(paused.clone()), None);
        h.tick();
        h.tick();
        assert!(second.drain().is_empty(), "not sending");
        paused.send = true;
        h.line(0, Some(paused), None);
        h.tick();
        let resumed = second.recv();
        assert_eq!(resumed.seq, moved.seq.wrapping_add(1));
        assert_eq!(
            resumed.ts,
            moved
                .ts
                .wrapping_add(3 * CodecKind::Pcmu.samples_per_frame())
        );
        assert!(resumed.marker, "a new talk-spurt");
    }

    #[test]
    fn codec_change_rebuilds_the_stream() {
        let peer = Peer::new();
        let mut h = Harness::new(1);
        h.line(0, Some(pcmu(peer.addr())), None);
        let before = tick_and_collect(&mut h, &peer, 3);
        let old = before[2][0].clone();
        h.line(0, Some(params(CodecKind::Pcma, PT_PCMA, peer.addr())), None);
        let after = tick_and_collect(&mut h, &peer, 3);
        let first = &after[0][0];
        assert_eq!(first.pt, PT_PCMA);
        assert!(first.marker, "a new stream starts marked");
        assert_ne!(first.ssrc, old.ssrc, "with a new SSRC");
        assert_eq!(after[1][0].seq, first.seq.wrapping_add(1));
        assert!(rms(&decode(CodecKind::Pcma, &after[2][0].payload)) > LOUD);
        assert!(h.take_reports().is_empty());
    }
}
