//! A received stream's playout: packets of any whole number of frames in (the far end's
//! packetisation time, which it may change), one frame out per tick.
//!
//! ```text
//!  push: payload ─► its length in samples (codec: bytes, or Opus' table of contents)
//!          same as the jitter buffer's packets ─► jitter buffer
//!          another whole number of frames, twice running ─► jitter buffer reframed, then in
//!          (the first of them is dropped: one lone odd packet does not restart the playout)
//!  next_frame: the decoded packet has a frame left ─► that frame
//!              else jitter.pop ─► decode | conceal (the packet's length) | silence (one frame)
//! ```
//!
//! The jitter buffer is popped once per packet, as its delay measurement expects; a 20 ms
//! packet plays over two 10 ms ticks. Allocation happens in `new` only.

use std::time::Instant;

use super::codec::{whole_frames, Codec, MAX_PACKET_SAMPLES};
use super::jitter::{JitterBuffer, JitterConfig, JitterStats, Playout};
use super::{CodecKind, Frame, FRAME_MS, FRAME_SAMPLES};

/// Packetisation assumed until the first packet tells (RFC 3551's default), in ms.
const DEFAULT_PACKET_MS: usize = 20;

/// One received stream between its datagrams and the tick.
pub(crate) struct Inbound {
    kind: CodecKind,
    jitter: JitterBuffer,
    /// Samples (48 kHz) of the packets the jitter buffer holds.
    packet_samples: usize,
    /// A packet of another length was seen last: its length.
    reframe_to: Option<usize>,
    /// A packet was taken: from then on a new length must come twice to be taken.
    started: bool,
    /// The packet being played, decoded, and the next sample of it to play.
    pcm: Box<[i16; MAX_PACKET_SAMPLES]>,
    len: usize,
    at: usize,
}

impl Inbound {
    /// An empty stream of `kind`, its jitter buffer slots counted for one-frame packets.
    pub(crate) fn new(kind: CodecKind, config: JitterConfig) -> Inbound {
        let mut jitter = JitterBuffer::new(kind.clock_rate(), kind.samples_per_frame(), config);
        let packet_samples = DEFAULT_PACKET_MS * FRAME_SAMPLES / FRAME_MS as usize;
        jitter.reframe(units(kind, packet_samples));
        Inbound {
            kind,
            jitter,
            packet_samples,
            reframe_to: None,
            started: false,
            pcm: Box::new([0; MAX_PACKET_SAMPLES]),
            len: 0,
            at: 0,
        }
    }

    /// Takes one RTP payload of the stream.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        codec: &Codec,
        (sequence, timestamp, ssrc): (u16, u32, u32),
        payload: &[u8],
    ) {
        let samples = codec.packet_samples(payload);
        if let Some(n) = samples.filter(|&n| n != self.packet_samples && whole_frames(n)) {
            if self.started && self.reframe_to != Some(n) {
                self.reframe_to = Some(n);
                return;
            }
            if self.jitter.reframe(units(self.kind, n)) {
                self.packet_samples = n;
            }
        }
        self.reframe_to = None;
        self.started = true;
        self.jitter.push(now, sequence, timestamp, ssrc, payload);
    }

    /// The next frame to play: the rest of the packet playing, else the next packet decoded
    /// or concealed, else silence while the buffer fills.
    pub(crate) fn next_frame(&mut self, now: Instant, codec: &mut Codec, out: &mut Frame) {
        if self.at >= self.len {
            self.at = 0;
            self.len = self.refill(now, codec);
        }
        let end = (self.at + FRAME_SAMPLES).min(self.len);
        out.copy_from_slice(&self.pcm[self.at..end]);
        self.at = end;
    }

    /// Decodes the next packet into `pcm`; returns its length (at least one frame).
    fn refill(&mut self, now: Instant, codec: &mut Codec) -> usize {
        let expected = self.packet_samples;
        let pcm = &mut self.pcm[..];
        let decoded = match self.jitter.pop(now) {
            Playout::Packet(payload) => codec.decode(payload, pcm),
            Playout::Missed { next } => {
                codec.conceal(next, &mut pcm[..expected]).map(|()| expected)
            }
            Playout::Filling => Ok(0),
        };
        match decoded {
            Ok(n) if n > 0 => n,
            Ok(_) => {
                pcm[..FRAME_SAMPLES].fill(0);
                FRAME_SAMPLES
            }
            Err(_) => {
                pcm[..expected].fill(0);
                expected
            }
        }
    }

    /// The jitter buffer's counters and delay.
    pub(crate) fn stats(&self) -> JitterStats {
        self.jitter.stats()
    }
}

/// RTP timestamp units of `samples` at 48 kHz in `kind`'s clock.
fn units(kind: CodecKind, samples: usize) -> u32 {
    let frames = u32::try_from(samples / FRAME_SAMPLES).unwrap_or(1);
    frames * kind.samples_per_frame()
}
