//! One tick of the media thread: receive, play out, capture, send — for
//! every line. Pure with respect to time (`now` is given) so the engine's
//! thread is the only clock.
//!
//! ```text
//!  tick(now):
//!    for each line: drain RTP/RTCP sockets ─► jitter buffer / RTCP stats / DTMF in
//!    mic  = device.read_frame()
//!    for each line with a stream:
//!       receive: jitter.pop ─► decode | conceal ─► mix into headset (if it has the mic)
//!       send:    DTMF event | encode(mic | MOH | silence) ─► RTP
//!       RTCP report when due, quality report every 5 s
//!    tones ─► headset (ringback) / ring device (ring)
//!    device.write_ring_frame(ring); device.write_frame(headset)
//! ```

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use super::codec::Codec;
use super::device::AudioDevice;
use super::dtmf::{DtmfReceiver, DtmfSender};
use super::engine::{
    Control, EngineConfig, LineSockets, LineTone, Report, SendSource, StreamParams,
};
use super::jitter::{JitterBuffer, Playout};
use super::rtp::{is_rtcp, parse_rtp, RtcpSession, RtpSender};
use super::tones::{MusicOnHold, ToneGenerator, ToneKind};
use super::{Frame, FRAME_SAMPLES};

/// How often a line reports its receive quality.
const QUALITY_EVERY: Duration = Duration::from_secs(5);
/// Largest datagram we read.
const MAX_PACKET: usize = 1500;
/// Datagrams read from one socket per tick at most, so a flood cannot stall the clock
/// (a 20 ms stream delivers one; the rest wait for the next tick).
const MAX_PACKETS_PER_TICK: usize = 64;
/// Socket errors skipped in a row before giving up until the next tick.
const MAX_SOCKET_ERRORS: usize = 4;

/// An RTP stream in flight on a line.
struct ActiveStream {
    params: StreamParams,
    codec: Codec,
    jitter: JitterBuffer,
    sender: RtpSender,
    rtcp: RtcpSession,
    dtmf_out: DtmfSender,
    dtmf_in: DtmfReceiver,
    /// Where RTP goes now (the negotiated address, or the latched source).
    send_to: SocketAddr,
    /// A packet from the expected address has been seen (no more latching).
    heard: bool,
    /// RTP timestamp of the next frame we send.
    timestamp: u32,
    /// The next packet starts a talk-spurt (marker bit).
    spurt: bool,
    next_quality: Instant,
}

impl ActiveStream {
    fn new(
        now: Instant,
        params: StreamParams,
        config: &EngineConfig,
    ) -> Result<ActiveStream, String> {
        let mut opus = config.opus;
        if let Some(cap) = params.max_bitrate {
            // RFC 7587: never send more than the receiver asked for (libopus' floor is 500).
            let cap = i32::try_from(cap).unwrap_or(i32::MAX).max(500);
            opus.bitrate = opus.bitrate.min(cap);
        }
        let codec = Codec::new(params.codec, &opus).map_err(|e| e.to_string())?;
        let rate = params.codec.clock_rate();
        let ssrc = rand::random();
        Ok(ActiveStream {
            jitter: JitterBuffer::new(rate, params.codec.samples_per_frame(), config.jitter),
            sender: RtpSender::new(ssrc, rand::random()),
            rtcp: RtcpSession::new(ssrc, rate, now),
            dtmf_out: DtmfSender::new(rate),
            dtmf_in: DtmfReceiver::default(),
            send_to: params.remote,
            heard: false,
            timestamp: rand::random(),
            spurt: true,
            next_quality: now + QUALITY_EVERY,
            codec,
            params,
        })
    }

    /// Takes new parameters; false when the stream must be rebuilt instead.
    fn update(&mut self, params: StreamParams) -> bool {
        if params.codec != self.params.codec
            || params.payload_type != self.params.payload_type
            || params.max_bitrate != self.params.max_bitrate
        {
            return false;
        }
        if params.remote != self.params.remote {
            self.send_to = params.remote;
            self.heard = false;
        }
        if params.send && !self.params.send {
            self.spurt = true;
        }
        self.params = params;
        true
    }

    /// RTCP goes to the RTP port + 1 of where RTP goes.
    fn rtcp_to(&self) -> SocketAddr {
        SocketAddr::new(self.send_to.ip(), self.send_to.port().wrapping_add(1))
    }
}

/// One line's RTP and RTCP sockets, registered with the media thread's poll.
struct Sockets {
    rtp: mio::net::UdpSocket,
    rtcp: mio::net::UdpSocket,
}

/// One line: its sockets, stream and tone.
struct Leg {
    sockets: Sockets,
    stream: Option<ActiveStream>,
    tone: Option<(LineTone, ToneGenerator)>,
}

/// Everything the media thread owns.
pub(super) struct Pipeline {
    device: Box<dyn AudioDevice>,
    legs: Vec<Leg>,
    config: EngineConfig,
    moh: Option<MusicOnHold>,
    reports: Box<dyn FnMut(Report) + Send>,
    // Scratch space, allocated once.
    mic: Frame,
    headset: Frame,
    ring: Frame,
    scratch: Frame,
    moh_frame: Frame,
    silence: Frame,
    packet: Vec<u8>,
    payload: Vec<u8>,
    recv: Vec<u8>,
}

impl Pipeline {
    pub(super) fn new(
        device: Box<dyn AudioDevice>,
        sockets: Vec<LineSockets>,
        config: EngineConfig,
        moh: Option<MusicOnHold>,
        reports: Box<dyn FnMut(Report) + Send>,
    ) -> Pipeline {
        Pipeline {
            device,
            legs: sockets
                .into_iter()
                .map(|sockets| Leg {
                    sockets: Sockets {
                        rtp: mio::net::UdpSocket::from_std(sockets.rtp),
                        rtcp: mio::net::UdpSocket::from_std(sockets.rtcp),
                    },
                    stream: None,
                    tone: None,
                })
                .collect(),
            config,
            moh,
            reports,
            mic: [0; FRAME_SAMPLES],
            headset: [0; FRAME_SAMPLES],
            ring: [0; FRAME_SAMPLES],
            scratch: [0; FRAME_SAMPLES],
            moh_frame: [0; FRAME_SAMPLES],
            silence: [0; FRAME_SAMPLES],
            packet: Vec::with_capacity(MAX_PACKET),
            payload: vec![0; MAX_PACKET],
            recv: vec![0; MAX_PACKET],
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
                            .is_some_and(|s| s.update(params.clone()));
                        if !kept {
                            match ActiveStream::new(now, params, &self.config) {
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
        }
    }

    /// One 20 ms step.
    pub(super) fn tick(&mut self, now: Instant, wallclock: SystemTime) {
        self.receive_all(now, wallclock);
        if !self.device.read_frame(&mut self.mic) {
            self.mic.fill(0);
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
        for index in 0..self.legs.len() {
            self.play_and_send(index, now, wallclock);
        }
        self.device.write_ring_frame(&self.ring);
        self.device.write_frame(&self.headset);
        while let Some(notice) = self.device.poll_notice() {
            (self.reports)(Report::Device(notice));
        }
    }

    /// Registers every socket with the media thread's poll, so packets are read (and their
    /// arrival timed) as they come rather than at the next tick.
    pub(super) fn register(&mut self, registry: &mio::Registry) -> std::io::Result<()> {
        for (index, leg) in self.legs.iter_mut().enumerate() {
            registry.register(
                &mut leg.sockets.rtp,
                mio::Token(2 * index),
                mio::Interest::READABLE,
            )?;
            registry.register(
                &mut leg.sockets.rtcp,
                mio::Token(2 * index + 1),
                mio::Interest::READABLE,
            )?;
        }
        Ok(())
    }

    /// Reads whatever waits on every line's sockets.
    pub(super) fn receive_all(&mut self, now: Instant, wallclock: SystemTime) {
        for index in 0..self.legs.len() {
            self.receive(index, now, wallclock);
        }
    }

    /// Drains a line's sockets into its jitter buffer and statistics.
    fn receive(&mut self, index: usize, now: Instant, wallclock: SystemTime) {
        let leg = &mut self.legs[index];
        for _ in 0..MAX_PACKETS_PER_TICK {
            let Some((len, src)) = receive_one(&leg.sockets.rtp, &mut self.recv) else {
                break;
            };
            let Some(stream) = leg.stream.as_mut() else {
                continue;
            };
            let buf = &self.recv[..len];
            if is_rtcp(buf) {
                if src.ip() == stream.send_to.ip() {
                    let _ = stream.rtcp.on_rtcp(now, wallclock, buf);
                }
                continue;
            }
            let Ok(pkt) = parse_rtp(buf) else { continue };
            let expected = pkt.payload_type == stream.params.payload_type
                || Some(pkt.payload_type) == stream.params.dtmf_payload_type;
            if !expected {
                continue;
            }
            if src != stream.send_to {
                // Symmetric RTP (NAT): latch to the first valid source until the
                // negotiated address itself is heard from.
                if stream.heard {
                    continue;
                }
                tracing::info!(line = index + 1, from = %src, "RTP latched to a new source");
                stream.send_to = src;
            }
            stream.heard = true;
            if !stream.params.receive {
                continue;
            }
            stream.rtcp.on_rtp(now, &pkt);
            if Some(pkt.payload_type) == stream.params.dtmf_payload_type {
                if let Some(digit) = stream.dtmf_in.on_packet(pkt.timestamp, pkt.payload) {
                    (self.reports)(Report::Dtmf { line: index, digit });
                }
            } else {
                stream
                    .jitter
                    .push(now, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.payload);
            }
        }
        for _ in 0..MAX_PACKETS_PER_TICK {
            let Some((len, src)) = receive_one(&leg.sockets.rtcp, &mut self.recv) else {
                break;
            };
            if let Some(stream) = leg.stream.as_mut() {
                if src.ip() == stream.send_to.ip() {
                    let _ = stream.rtcp.on_rtcp(now, wallclock, &self.recv[..len]);
                }
            }
        }
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
            return;
        };
        let line = index;
        if stream.params.receive {
            let decoded = match stream.jitter.pop(now) {
                Playout::Packet(payload) => stream.codec.decode(payload, &mut self.scratch),
                Playout::Missed { next } => stream.codec.conceal(next, &mut self.scratch),
                Playout::Filling => {
                    self.scratch.fill(0);
                    Ok(())
                }
            };
            if decoded.is_err() {
                self.scratch.fill(0);
            }
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
                for _ in 0..event.redundant_copies.max(1) {
                    stream.sender.packet(
                        pt,
                        event.timestamp,
                        event.marker,
                        &event.payload,
                        &mut self.packet,
                    );
                    let _ = leg.sockets.rtp.send_to(&self.packet, stream.send_to);
                }
                stream.spurt = true;
            } else if !stream.dtmf_out.is_active() {
                let source = match stream.params.source {
                    SendSource::Microphone if !stream.params.muted => &self.mic,
                    SendSource::Microphone => &self.silence,
                    SendSource::MusicOnHold => &self.moh_frame,
                };
                match stream.codec.encode(source, &mut self.payload) {
                    Ok(0) => stream.spurt = true, // DTX: nothing to send
                    Ok(len) => {
                        stream.sender.packet(
                            stream.params.payload_type,
                            frame_ts,
                            stream.spurt,
                            &self.payload[..len],
                            &mut self.packet,
                        );
                        stream.spurt = false;
                        let _ = leg.sockets.rtp.send_to(&self.packet, stream.send_to);
                    }
                    Err(e) => tracing::warn!(line = line + 1, error = %e, "encoding failed"),
                }
            }
        }
        if now >= stream.rtcp.next_report() {
            let sender = stream.params.send.then_some((&stream.sender, frame_ts));
            stream
                .rtcp
                .report(now, wallclock, sender, &self.config.cname, &mut self.packet);
            let _ = leg.sockets.rtcp.send_to(&self.packet, stream.rtcp_to());
        }
        if now >= stream.next_quality {
            stream.next_quality = now + QUALITY_EVERY;
            (self.reports)(Report::Quality {
                line,
                codec: stream.params.codec,
                quality: stream.rtcp.quality(),
                buffer_ms: stream.jitter.stats().delay_ms,
            });
        }
    }
}

/// The next datagram waiting on `socket`, skipping the errors an earlier ICMP message leaves
/// behind (port unreachable); `None` when nothing more is waiting.
fn receive_one(socket: &mio::net::UdpSocket, buf: &mut [u8]) -> Option<(usize, SocketAddr)> {
    for _ in 0..MAX_SOCKET_ERRORS {
        match socket.recv_from(buf) {
            Ok(received) => return Some(received),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return None,
            Err(_) => {}
        }
    }
    None
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
