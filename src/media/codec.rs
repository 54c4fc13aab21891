//! Codecs at the engine's rate: 48 kHz mono, whole frames ([`FRAME_SAMPLES`]) in and out; one
//! packet carries one or more frames (the packetisation time, `ptime`).
//!
//! Owns one encoder and one decoder per call leg ([`Codec`]): Opus through
//! libopus (the `opus` crate), G.711 µ-law (PCMU) and A-law (PCMA) written
//! here from ITU-T G.711, with the 48 kHz ⇄ 8 kHz conversion G.711 needs, and
//! G.722 (`g722.rs`) with the 48 kHz ⇄ 16 kHz conversion it needs.
//! It must not read clocks, allocate per frame, log, or panic on a payload.
//!
//! ```text
//!  encode:  k frames @ 48k ─┬─ Opus (one packet of k frames) ──────────────► payload (≈60 B per 20 ms @ 24 kb/s)
//!                           ├─ per frame: low-pass FIR ─► ↓6 ─► 8k ─ G.711 ─► payload (8 B per ms)
//!                           └─ per frame: low-pass FIR ─► ↓3 ─► 16k ─ G.722 ─► payload (8 B per ms)
//!
//!  decode:  payload ─┬─ Opus ─────────────────────────────────────────► k frames
//!                    ├─ G.711 ─► 8k ─► ↑6 polyphase FIR, per frame ───► k frames
//!                    └─ G.722 ─► 16k ─► ↑3 polyphase FIR, per frame ──► k frames
//!
//!  conceal: Opus  next packet given ─► in-band FEC of the lost packet
//!                 none              ─► libopus PLC (decode of an empty packet)
//!           G.711, G.722  last good frame repeated, fading by half per 20 ms, then silence
//! ```
//!
//! Each resampling filter is one 240-tap Kaiser-windowed sinc (≈ 50 dB stop band) used both
//! to band-limit before decimating and, split into phases, to interpolate: for G.711 cut-off
//! 3.7 kHz (transition ≈ 3.4–4.0 kHz), six 40-tap phases; for G.722 cut-off 7.4 kHz
//! (transition ≈ 7.1–7.7 kHz), three 80-tap phases. Its linear-phase delay is 119.5 samples
//! at 48 kHz (2.5 ms) in each direction. G.722 keeps the RTP clock at 8 kHz although it
//! samples at 16 kHz (RFC 3551 §4.5.2): 20 ms are 160 timestamp units.

use super::{g722, CodecKind, Frame, FRAME_MS, FRAME_SAMPLES};

/// Most frames one packet carries: 120 ms, Opus' longest packet.
pub const MAX_PACKET_FRAMES: usize = 120 / FRAME_MS as usize;

/// Samples at 48 kHz of the longest packet.
pub const MAX_PACKET_SAMPLES: usize = MAX_PACKET_FRAMES * FRAME_SAMPLES;

/// Largest payload `decode`/`conceal` accept: 120 ms of Opus at the maximum
/// frame size (6 × 1275 bytes) rounded up; anything bigger is not audio.
const MAX_DECODE_PAYLOAD: usize = 8000;

/// Decimation / interpolation factor between 48 kHz and 8 kHz.
const NARROW_FACTOR: usize = 6;

/// Decimation / interpolation factor between 48 kHz and 16 kHz.
const WIDE_FACTOR: usize = 3;

/// Samples of one frame at G.711's 8 kHz (one byte each).
const NARROW_SAMPLES: usize = FRAME_SAMPLES / NARROW_FACTOR;

/// Samples of one frame at G.722's 16 kHz.
const WIDE_SAMPLES: usize = FRAME_SAMPLES / WIDE_FACTOR;

/// Bytes of one G.722 frame at 64 kbit/s.
const G722_BYTES: usize = WIDE_SAMPLES / 2;

/// Taps of the resampling low-pass filters (a multiple of both factors).
const TAPS: usize = 240;

/// Cut-off of the 8 kHz filter (Hz): transition ≈ 3.4–4.0 kHz.
const NARROW_CUTOFF_HZ: f64 = 3_700.0;

/// Cut-off of the 16 kHz filter (Hz): transition ≈ 7.1–7.7 kHz, so G.722's band to 7 kHz
/// passes and little above 8 kHz folds back.
const WIDE_CUTOFF_HZ: f64 = 7_400.0;

/// Gain applied over each 20 ms of concealment (G.711, G.722).
const G711_FADE: f32 = 0.5;

/// Below this gain a concealed G.711 frame is plain silence.
const G711_SILENT_GAIN: f32 = 1.0 / 16.0;

/// Opus encoder settings for one call leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpusSettings {
    /// Target bitrate in bits per second (libopus accepts 500–512000).
    pub bitrate: i32,
    /// Encoder complexity, 0 (cheapest) to 10 (best).
    pub complexity: u8,
    /// In-band forward error correction (LBRR): each packet carries a coarse
    /// copy of the previous frame, so one lost packet can be rebuilt.
    pub fec: bool,
    /// Discontinuous transmission: during silence [`Codec::encode`] returns 0
    /// ("send nothing") for most frames.
    pub dtx: bool,
    /// Packet loss the encoder should expect, in percent (tunes FEC strength).
    pub expected_loss_pct: u8,
}

impl Default for OpusSettings {
    fn default() -> Self {
        OpusSettings {
            bitrate: 24_000,
            complexity: 5,
            fec: true,
            dtx: false,
            expected_loss_pct: 10,
        }
    }
}

/// Why a frame could not be encoded or decoded.
#[derive(thiserror::Error, Debug)]
pub enum CodecError {
    /// libopus refused a setting or a packet.
    #[error("opus: {0}")]
    Opus(#[from] opus::Error),
    /// An empty payload was given to `decode`; a lost frame goes to `conceal`.
    #[error("empty payload: a lost frame must be concealed, not decoded")]
    EmptyPayload,
    /// The payload is larger than any audio packet can be.
    #[error("payload of {0} bytes is too large to be one audio frame")]
    PayloadTooLarge(usize),
    /// The payload's duration is not a whole number of frames that fits a packet.
    #[error(
        "payload holds {got} samples at the codec's rate, not whole frames of {frame} up to {most}"
    )]
    FrameLength {
        /// Samples in one frame at the codec's rate.
        frame: usize,
        /// Samples in the longest packet at the codec's rate.
        most: usize,
        /// Samples the payload holds.
        got: usize,
    },
    /// The audio given to `encode` or asked of `conceal` is not a whole number of frames
    /// one packet can carry.
    #[error("{0} samples are not whole frames of one packet")]
    Samples(usize),
    /// The output buffer cannot hold one encoded frame.
    #[error("output buffer of {got} bytes is smaller than one encoded frame ({need} bytes)")]
    OutputTooSmall {
        /// Bytes one encoded frame needs.
        need: usize,
        /// Bytes the buffer has.
        got: usize,
    },
}

/// One call leg's encoder and decoder for the negotiated codec.
pub struct Codec {
    kind: CodecKind,
    inner: Inner,
}

enum Inner {
    Opus(OpusCodec),
    G711(Box<G711Codec>),
    G722(Box<G722Codec>),
}

struct OpusCodec {
    encoder: opus::Encoder,
    decoder: opus::Decoder,
    dtx: bool,
}

impl Codec {
    /// Creates an encoder and a decoder for `kind` at 48 kHz mono.
    /// `opus` is used only for [`CodecKind::Opus`]; libopus rejects
    /// out-of-range settings with [`CodecError::Opus`].
    pub fn new(kind: CodecKind, opus: &OpusSettings) -> Result<Codec, CodecError> {
        let inner = match kind {
            CodecKind::Opus => Inner::Opus(OpusCodec::new(opus)?),
            CodecKind::Pcmu => Inner::G711(Box::new(G711Codec::new(Law::Mu))),
            CodecKind::Pcma => Inner::G711(Box::new(G711Codec::new(Law::A))),
            CodecKind::G722 => Inner::G722(Box::new(G722Codec::new())),
        };
        Ok(Codec { kind, inner })
    }

    /// The codec this leg speaks.
    pub fn kind(&self) -> CodecKind {
        self.kind
    }

    /// Encodes `pcm`, one or more whole frames (Opus: 10, 20, 40 or 60 ms … 120 ms), into
    /// one payload; returns its length in `out` (give it at least 1500 bytes). With DTX, 0
    /// means "send nothing".
    pub fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        if !whole_frames(pcm.len()) {
            return Err(CodecError::Samples(pcm.len()));
        }
        match &mut self.inner {
            Inner::Opus(c) => c.encode(pcm, out),
            Inner::G711(c) => c.encode(pcm, out),
            Inner::G722(c) => c.encode(pcm, out),
        }
    }

    /// Decodes one received payload into `out` (room for [`MAX_PACKET_SAMPLES`]); returns the
    /// samples written, whole frames. A payload that is empty, malformed or not whole frames
    /// long is an error; `out` is then unspecified.
    pub fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        if payload.is_empty() {
            return Err(CodecError::EmptyPayload);
        }
        if payload.len() > MAX_DECODE_PAYLOAD {
            return Err(CodecError::PayloadTooLarge(payload.len()));
        }
        match &mut self.inner {
            Inner::Opus(c) => c.decode(payload, out),
            Inner::G711(c) => c.decode(payload, out),
            Inner::G722(c) => c.decode(payload, out),
        }
    }

    /// Conceals a lost packet of `out.len()` samples (whole frames): Opus uses the in-band
    /// FEC of `next` (the packet after the lost one) when given, else its PLC; G.711 and
    /// G.722 repeat the last good frame, halving its level every 20 ms, then play silence.
    pub fn conceal(&mut self, next: Option<&[u8]>, out: &mut [i16]) -> Result<(), CodecError> {
        if !whole_frames(out.len()) {
            return Err(CodecError::Samples(out.len()));
        }
        let next = next.filter(|p| !p.is_empty() && p.len() <= MAX_DECODE_PAYLOAD);
        match &mut self.inner {
            Inner::Opus(c) => c.conceal(next, out),
            Inner::G711(c) => {
                c.conceal(out);
                Ok(())
            }
            Inner::G722(c) => {
                c.conceal(out);
                Ok(())
            }
        }
    }

    /// Samples at 48 kHz that `payload` holds, from its length or (Opus) its table of
    /// contents; `None` when that cannot be told.
    pub fn packet_samples(&self, payload: &[u8]) -> Option<usize> {
        match &self.inner {
            _ if payload.is_empty() => None,
            Inner::Opus(c) => c.decoder.get_nb_samples(payload).ok(),
            Inner::G711(_) => Some(payload.len() * NARROW_FACTOR),
            Inner::G722(_) => Some(payload.len() * 2 * WIDE_FACTOR),
        }
    }
}

/// `samples` (at 48 kHz) are one or more whole frames, at most one packet's.
pub(crate) fn whole_frames(samples: usize) -> bool {
    samples > 0 && samples % FRAME_SAMPLES == 0 && samples <= MAX_PACKET_SAMPLES
}

/// The error for a payload holding `got` samples at a rate `factor` times below 48 kHz.
fn length_error(got: usize, factor: usize) -> CodecError {
    CodecError::FrameLength {
        frame: FRAME_SAMPLES / factor,
        most: MAX_PACKET_SAMPLES / factor,
        got,
    }
}

impl OpusCodec {
    fn new(s: &OpusSettings) -> Result<OpusCodec, CodecError> {
        let rate = super::SAMPLE_RATE;
        let mut encoder = opus::Encoder::new(rate, opus::Channels::Mono, opus::Application::Voip)?;
        encoder.set_bitrate(opus::Bitrate::Bits(s.bitrate))?;
        encoder.set_complexity(i32::from(s.complexity))?;
        encoder.set_inband_fec(s.fec)?;
        encoder.set_packet_loss_perc(i32::from(s.expected_loss_pct))?;
        encoder.set_dtx(s.dtx)?;
        let decoder = opus::Decoder::new(rate, opus::Channels::Mono)?;
        Ok(OpusCodec {
            encoder,
            decoder,
            dtx: s.dtx,
        })
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let len = self.encoder.encode(pcm, out)?;
        // A DTX frame is a bare TOC byte (or two): nothing worth sending.
        if self.dtx && len <= 2 {
            return Ok(0);
        }
        Ok(len)
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let room = out.len().min(MAX_PACKET_SAMPLES);
        let got = self.decoder.decode(payload, &mut out[..room], false)?;
        if whole_frames(got) {
            Ok(got)
        } else {
            Err(length_error(got, 1))
        }
    }

    fn conceal(&mut self, next: Option<&[u8]>, out: &mut [i16]) -> Result<(), CodecError> {
        if let Some(next) = next {
            if let Ok(got) = self.decoder.decode(next, out, true) {
                if got == out.len() {
                    return Ok(());
                }
            }
            // A malformed `next` cannot rebuild the packet: fall back to PLC.
        }
        let got = self.decoder.decode(&[], out, false)?;
        if got == out.len() {
            Ok(())
        } else {
            Err(CodecError::Samples(got))
        }
    }
}

// ---------------------------------------------------------------------------
// G.711

/// The two G.711 companding laws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Law {
    /// µ-law (PCMU, North America / Japan).
    Mu,
    /// A-law (PCMA, Europe and most of the world).
    A,
}

impl Law {
    fn encode(self, sample: i16) -> u8 {
        match self {
            Law::Mu => ulaw_encode(sample),
            Law::A => alaw_encode(sample),
        }
    }

    fn decode(self, byte: u8) -> i16 {
        match self {
            Law::Mu => ULAW_DECODE[usize::from(byte)],
            Law::A => ALAW_DECODE[usize::from(byte)],
        }
    }
}

/// Segment end points of µ-law on the 14-bit biased magnitude.
const ULAW_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// Segment end points of A-law on the 13-bit magnitude.
const ALAW_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];

fn segment(value: i32, ends: &[i32; 8]) -> Option<i32> {
    ends.iter().position(|&end| value <= end).map(|s| s as i32)
}

/// Linear 16-bit → µ-law (G.711 §2 on 14 bits with bias 33; negative values
/// by ones' complement as in the ITU-T G.191 reference, so −1 is "−0", 0x7F).
fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x21;
    const CLIP: i32 = 8159;
    let sample = i32::from(sample);
    let (magnitude, mask) = if sample < 0 {
        (!sample >> 2, 0x7F)
    } else {
        (sample >> 2, 0xFF)
    };
    let value = magnitude.min(CLIP) + BIAS;
    let code = match segment(value, &ULAW_SEG_END) {
        Some(seg) => (seg << 4) | ((value >> (seg + 1)) & 0x0F),
        None => 0x7F,
    };
    (code ^ mask) as u8
}

/// µ-law → linear 16-bit.
const fn ulaw_decode(byte: u8) -> i16 {
    const BIAS: i32 = 0x84;
    let u = !byte as i32;
    let mut t = ((u & 0x0F) << 3) + BIAS;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { BIAS - t } else { t - BIAS }) as i16
}

/// Linear 16-bit → A-law (G.711 §3, on 13 bits, even bits inverted).
fn alaw_encode(sample: i16) -> u8 {
    let mut value = i32::from(sample) >> 3;
    let mask: i32 = if value >= 0 {
        0xD5
    } else {
        value = -value - 1;
        0x55
    };
    let code = match segment(value, &ALAW_SEG_END) {
        Some(seg) if seg < 2 => (seg << 4) | ((value >> 1) & 0x0F),
        Some(seg) => (seg << 4) | ((value >> seg) & 0x0F),
        None => 0x7F,
    };
    (code ^ mask) as u8
}

/// A-law → linear 16-bit.
const fn alaw_decode(byte: u8) -> i16 {
    let a = (byte ^ 0x55) as i32;
    let mut t = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

const fn decode_table(law_a: bool) -> [i16; 256] {
    let mut table = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        table[i] = if law_a {
            alaw_decode(i as u8)
        } else {
            ulaw_decode(i as u8)
        };
        i += 1;
    }
    table
}

static ULAW_DECODE: [i16; 256] = decode_table(false);
static ALAW_DECODE: [i16; 256] = decode_table(true);

/// A G.711 leg: companding plus the 48 kHz ⇄ 8 kHz resamplers.
struct G711Codec {
    law: Law,
    down: Decimator,
    up: Interpolator,
    /// The last good frame at 8 kHz, repeated by concealment.
    last: [f32; NARROW_SAMPLES],
    /// Level of the next concealed frame (1 after a good frame).
    conceal_gain: f32,
}

impl G711Codec {
    fn new(law: Law) -> G711Codec {
        let taps = lowpass_taps(NARROW_CUTOFF_HZ);
        G711Codec {
            law,
            down: Decimator::new(&taps, NARROW_FACTOR),
            up: Interpolator::new(&taps, NARROW_FACTOR),
            last: [0.0; NARROW_SAMPLES],
            conceal_gain: 0.0,
        }
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let need = pcm.len() / NARROW_FACTOR;
        let Some(out) = out.get_mut(..need) else {
            return Err(CodecError::OutputTooSmall {
                need,
                got: out.len(),
            });
        };
        let mut narrow = [0.0f32; NARROW_SAMPLES];
        for (frame, bytes) in frames(pcm).zip(out.chunks_exact_mut(NARROW_SAMPLES)) {
            self.down.process(frame, &mut narrow);
            for (byte, &s) in bytes.iter_mut().zip(narrow.iter()) {
                *byte = self.law.encode(to_i16(s));
            }
        }
        Ok(need)
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let samples = payload.len() * NARROW_FACTOR;
        if !whole_frames(samples) || samples > out.len() {
            return Err(length_error(payload.len(), NARROW_FACTOR));
        }
        for (bytes, frame) in payload
            .chunks_exact(NARROW_SAMPLES)
            .zip(frames_mut(&mut out[..samples]))
        {
            for (s, &byte) in self.last.iter_mut().zip(bytes) {
                *s = f32::from(self.law.decode(byte));
            }
            self.up.process(&self.last, frame);
        }
        self.conceal_gain = 1.0;
        Ok(samples)
    }

    fn conceal(&mut self, out: &mut [i16]) {
        let mut narrow = [0.0f32; NARROW_SAMPLES];
        for frame in frames_mut(out) {
            self.conceal_gain = fade(&self.last, self.conceal_gain, &mut narrow);
            // Silence still runs through the interpolator so its history stays in step.
            self.up.process(&narrow, frame);
        }
    }
}

// ---------------------------------------------------------------------------
// G.722

/// A G.722 leg: the sub-band ADPCM of `g722.rs` plus the 48 kHz ⇄ 16 kHz resamplers.
struct G722Codec {
    encoder: g722::Encoder,
    decoder: g722::Decoder,
    down: Decimator,
    up: Interpolator,
    /// The last good frame at 16 kHz, repeated by concealment.
    last: [f32; WIDE_SAMPLES],
    /// Level of the next concealed frame (1 after a good frame).
    conceal_gain: f32,
}

impl G722Codec {
    fn new() -> G722Codec {
        let taps = lowpass_taps(WIDE_CUTOFF_HZ);
        G722Codec {
            encoder: g722::Encoder::new(),
            decoder: g722::Decoder::new(),
            down: Decimator::new(&taps, WIDE_FACTOR),
            up: Interpolator::new(&taps, WIDE_FACTOR),
            last: [0.0; WIDE_SAMPLES],
            conceal_gain: 0.0,
        }
    }

    fn encode(&mut self, pcm: &[i16], out: &mut [u8]) -> Result<usize, CodecError> {
        let need = pcm.len() / FRAME_SAMPLES * G722_BYTES;
        let Some(out) = out.get_mut(..need) else {
            return Err(CodecError::OutputTooSmall {
                need,
                got: out.len(),
            });
        };
        let mut wide = [0.0f32; WIDE_SAMPLES];
        let mut wide_pcm = [0i16; WIDE_SAMPLES];
        for (frame, bytes) in frames(pcm).zip(out.chunks_exact_mut(G722_BYTES)) {
            self.down.process(frame, &mut wide);
            for (p, &s) in wide_pcm.iter_mut().zip(wide.iter()) {
                *p = to_i16(s);
            }
            self.encoder.encode(&wide_pcm, bytes);
        }
        Ok(need)
    }

    fn decode(&mut self, payload: &[u8], out: &mut [i16]) -> Result<usize, CodecError> {
        let samples = payload.len() * 2 * WIDE_FACTOR;
        if !whole_frames(samples) || samples > out.len() {
            return Err(length_error(2 * payload.len(), WIDE_FACTOR));
        }
        let mut pcm = [0i16; WIDE_SAMPLES];
        for (bytes, frame) in payload
            .chunks_exact(G722_BYTES)
            .zip(frames_mut(&mut out[..samples]))
        {
            self.decoder.decode(bytes, &mut pcm);
            for (s, &p) in self.last.iter_mut().zip(pcm.iter()) {
                *s = f32::from(p);
            }
            self.up.process(&self.last, frame);
        }
        self.conceal_gain = 1.0;
        Ok(samples)
    }

    fn conceal(&mut self, out: &mut [i16]) {
        let mut wide = [0.0f32; WIDE_SAMPLES];
        for frame in frames_mut(out) {
            self.conceal_gain = fade(&self.last, self.conceal_gain, &mut wide);
            // Silence still runs through the interpolator so its history stays in step.
            self.up.process(&wide, frame);
        }
    }
}

/// `pcm`'s whole frames.
fn frames(pcm: &[i16]) -> impl Iterator<Item = &Frame> {
    pcm.chunks_exact(FRAME_SAMPLES)
        .filter_map(|chunk| chunk.try_into().ok())
}

/// `pcm`'s whole frames, to write.
fn frames_mut(pcm: &mut [i16]) -> impl Iterator<Item = &mut Frame> {
    pcm.chunks_exact_mut(FRAME_SAMPLES)
        .filter_map(|chunk| chunk.try_into().ok())
}

/// Writes `last` into `out` fading from `start` down by [`G711_FADE`] per 20 ms; returns the
/// next frame's gain. Below [`G711_SILENT_GAIN`] `out` is left silent.
fn fade(last: &[f32], start: f32, out: &mut [f32]) -> f32 {
    if start <= G711_SILENT_GAIN {
        return start;
    }
    let end = start * G711_FADE.powf(FRAME_MS as f32 / 20.0);
    let step = (end - start) / out.len() as f32;
    for (i, (n, &s)) in out.iter_mut().zip(last.iter()).enumerate() {
        *n = s * (start + step * i as f32);
    }
    end
}

fn to_i16(x: f32) -> i16 {
    x.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16
}

/// A resampling low-pass at 48 kHz: Kaiser-windowed sinc, unity DC gain.
fn lowpass_taps(cutoff_hz: f64) -> [f32; TAPS] {
    const BETA: f64 = 4.53; // Kaiser β for ≈ 50 dB stop-band attenuation
    let fc = cutoff_hz / f64::from(super::SAMPLE_RATE);
    let centre = (TAPS - 1) as f64 / 2.0;
    let mut taps = [0.0f64; TAPS];
    for (k, tap) in taps.iter_mut().enumerate() {
        let x = k as f64 - centre;
        let sinc = if x == 0.0 {
            2.0 * fc
        } else {
            (2.0 * std::f64::consts::PI * fc * x).sin() / (std::f64::consts::PI * x)
        };
        let r = x / centre;
        let window = bessel_i0(BETA * (1.0 - r * r).max(0.0).sqrt()) / bessel_i0(BETA);
        *tap = sinc * window;
    }
    let sum: f64 = taps.iter().sum();
    taps.map(|t| (t / sum) as f32)
}

/// Modified Bessel function of the first kind, order 0 (power series).
fn bessel_i0(x: f64) -> f64 {
    let mut sum = 1.0;
    let mut term = 1.0;
    let half = x / 2.0;
    for k in 1..40 {
        term *= half / k as f64;
        sum += term * term;
        if term * term < 1e-12 * sum {
            break;
        }
    }
    sum
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// 48 kHz → `48 / factor` kHz: low-pass then keep every `factor`-th sample.
struct Decimator {
    taps: [f32; TAPS],
    factor: usize,
    /// The last `TAPS - 1` input samples.
    history: [f32; TAPS - 1],
}

impl Decimator {
    fn new(taps: &[f32; TAPS], factor: usize) -> Decimator {
        Decimator {
            taps: *taps,
            factor,
            history: [0.0; TAPS - 1],
        }
    }

    /// `out` holds `FRAME_SAMPLES / factor` samples.
    fn process(&mut self, input: &Frame, out: &mut [f32]) {
        let mut buf = [0.0f32; TAPS - 1 + FRAME_SAMPLES];
        buf[..TAPS - 1].copy_from_slice(&self.history);
        for (b, &s) in buf[TAPS - 1..].iter_mut().zip(input.iter()) {
            *b = f32::from(s);
        }
        // The taps are symmetric, so the convolution is a plain dot product.
        let factor = self.factor;
        for (m, o) in out.iter_mut().enumerate() {
            let n = factor * m + factor - 1;
            *o = dot(&self.taps, &buf[n..n + TAPS]);
        }
        self.history.copy_from_slice(&buf[FRAME_SAMPLES..]);
    }
}

/// `48 / factor` kHz → 48 kHz: zero-stuffing by `factor` and the same low-pass, as
/// `factor` phases of `TAPS / factor` taps.
struct Interpolator {
    /// Phase `p` is `phases[p * len .. (p + 1) * len]` with `len = TAPS / factor`:
    /// `phases[p * len + r]` = factor · taps[p + factor · (len - 1 - r)].
    phases: [f32; TAPS],
    factor: usize,
    /// The last `TAPS / factor - 1` input samples (the front of the array).
    history: [f32; TAPS],
}

impl Interpolator {
    fn new(taps: &[f32; TAPS], factor: usize) -> Interpolator {
        let len = TAPS / factor;
        let mut phases = [0.0f32; TAPS];
        for (p, phase) in phases.chunks_exact_mut(len).enumerate() {
            for (r, c) in phase.iter_mut().enumerate() {
                *c = factor as f32 * taps[p + factor * (len - 1 - r)];
            }
        }
        Interpolator {
            phases,
            factor,
            history: [0.0; TAPS],
        }
    }

    /// `input` holds `FRAME_SAMPLES / factor` samples.
    fn process(&mut self, input: &[f32], out: &mut Frame) {
        let len = TAPS / self.factor;
        let keep = len - 1;
        let mut buf = [0.0f32; TAPS + WIDE_SAMPLES];
        buf[..keep].copy_from_slice(&self.history[..keep]);
        buf[keep..keep + input.len()].copy_from_slice(input);
        for (i, group) in out.chunks_exact_mut(self.factor).enumerate() {
            let window = &buf[i..i + len];
            for (o, phase) in group.iter_mut().zip(self.phases.chunks_exact(len)) {
                *o = to_i16(dot(phase, window));
            }
        }
        self.history[..keep].copy_from_slice(&buf[input.len()..input.len() + keep]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One 20 ms packet, the usual packetisation: what these tests encode and decode.
    const PACKET: usize = 20 / FRAME_MS as usize * FRAME_SAMPLES;
    use std::f64::consts::PI;

    fn sine(freq: f64, amplitude: f64, frames: usize) -> Vec<i16> {
        (0..frames * PACKET)
            .map(|n| (amplitude * (2.0 * PI * freq * n as f64 / 48_000.0).sin()).round() as i16)
            .collect()
    }

    /// A voiced, speech-like signal: a gliding 120–220 Hz pulse train through
    /// two formant-ish resonances, with a 3 Hz syllable envelope.
    fn speechlike(frames: usize) -> Vec<i16> {
        let mut out = Vec::with_capacity(frames * PACKET);
        let mut phase = 0.0f64;
        for n in 0..frames * PACKET {
            let t = n as f64 / 48_000.0;
            let f0 = 170.0 + 50.0 * (2.0 * PI * 0.7 * t).sin();
            phase += f0 / 48_000.0;
            let mut s = 0.0;
            for h in 1..20 {
                let fh = f0 * h as f64;
                let formant = (-((fh - 700.0) / 300.0).powi(2)).exp()
                    + 0.6 * (-((fh - 1800.0) / 400.0).powi(2)).exp()
                    + 0.1;
                s += formant * (2.0 * PI * phase * h as f64).sin();
            }
            let envelope = 0.55 + 0.45 * (2.0 * PI * 3.0 * t).sin();
            out.push((2500.0 * envelope * s).clamp(-32000.0, 32000.0) as i16);
        }
        out
    }

    /// Runs `input` through encode → decode, frame by frame.
    fn round_trip(codec: &mut Codec, input: &[i16]) -> Vec<i16> {
        let mut out = Vec::with_capacity(input.len());
        let mut payload = [0u8; 1500];
        let mut frame = [0i16; PACKET];
        for chunk in input.chunks_exact(PACKET) {
            frame.copy_from_slice(chunk);
            let len = codec.encode(&frame, &mut payload).expect("encode");
            let mut decoded = [0i16; PACKET];
            codec.decode(&payload[..len], &mut decoded).expect("decode");
            out.extend_from_slice(&decoded);
        }
        out
    }

    fn rms(x: &[i16]) -> f64 {
        (x.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    /// Best normalised cross-correlation of `output` against `input` over
    /// delays 0..max_delay, comparing `len` samples from `start`.
    fn best_correlation(input: &[i16], output: &[i16], start: usize, len: usize) -> (f64, usize) {
        let mut best = (f64::MIN, 0);
        for delay in 0..2_000 {
            let a = &input[start..start + len];
            let b = &output[start + delay..start + delay + len];
            let (mut ab, mut aa, mut bb) = (0.0, 0.0, 0.0);
            for (&x, &y) in a.iter().zip(b) {
                let (x, y) = (f64::from(x), f64::from(y));
                ab += x * y;
                aa += x * x;
                bb += y * y;
            }
            let c = ab / (aa * bb).sqrt().max(1e-9);
            if c > best.0 {
                best = (c, delay);
            }
        }
        best
    }

    #[test]
    fn ulaw_known_values() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(-1), 0x7F);
        assert_eq!(ulaw_encode(i16::MAX), 0x80);
        assert_eq!(ulaw_encode(i16::MIN), 0x00);
        assert_eq!(ULAW_DECODE[0xFF], 0);
        assert_eq!(ULAW_DECODE[0x7F], 0);
        assert_eq!(ULAW_DECODE[0x80], 32_124);
        assert_eq!(ULAW_DECODE[0x00], -32_124);
        // First segment step: code 0xFE is 8 (Sun g711.c reference values).
        assert_eq!(ULAW_DECODE[0xFE], 8);
        assert_eq!(ULAW_DECODE[0xEF], 132);
        // Every code decodes to a value that encodes back to itself (0x7F is -0 → 0xFF).
        for code in 0..=255u8 {
            let back = ulaw_encode(ULAW_DECODE[usize::from(code)]);
            if code == 0x7F {
                assert_eq!(back, 0xFF);
            } else {
                assert_eq!(back, code, "code {code:#04x}");
            }
        }
    }

    #[test]
    fn alaw_known_values() {
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_encode(-1), 0x55);
        assert_eq!(alaw_encode(i16::MAX), 0xAA);
        assert_eq!(alaw_encode(i16::MIN), 0x2A);
        assert_eq!(ALAW_DECODE[0xD5], 8);
        assert_eq!(ALAW_DECODE[0x55], -8);
        assert_eq!(ALAW_DECODE[0xAA], 32_256);
        assert_eq!(ALAW_DECODE[0x2A], -32_256);
        for code in 0..=255u8 {
            assert_eq!(
                alaw_encode(ALAW_DECODE[usize::from(code)]),
                code,
                "code {code:#04x}"
            );
        }
    }

    #[test]
    fn g711_round_trip_error_is_within_half_a_step() {
        for law in [Law::Mu, Law::A] {
            let mut worst_relative = 0.0f64;
            for x in i16::MIN..=i16::MAX {
                let y = law.decode(law.encode(x));
                let err = (i32::from(x) - i32::from(y)).abs();
                // Half a quantisation step: 8 near zero, under 4 % of |x| above;
                // the clipped top (beyond ±32124 / ±32256) may add ~640.
                let bound = i32::from(x).abs() / 25 + 8;
                let clip = if i32::from(x).abs() > 32_000 { 700 } else { 0 };
                assert!(err <= bound.max(clip), "{law:?}: {x} → {y} (error {err})");
                if x.unsigned_abs() >= 1024 {
                    worst_relative = worst_relative.max(f64::from(err) / f64::from(x).abs());
                }
            }
            println!("{law:?}: worst relative error above 1024: {worst_relative:.4}");
            assert!(
                worst_relative < 0.04,
                "{law:?} worst relative error {worst_relative}"
            );
        }
    }

    #[test]
    fn resampling_filter_is_unity_at_dc_and_symmetric() {
        let taps = lowpass_taps(NARROW_CUTOFF_HZ);
        let sum: f32 = taps.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4);
        for k in 0..TAPS {
            assert!((taps[k] - taps[TAPS - 1 - k]).abs() < 1e-7);
        }
    }

    #[test]
    fn pcmu_and_pcma_carry_a_1khz_sine() {
        for kind in [CodecKind::Pcmu, CodecKind::Pcma] {
            let mut codec = Codec::new(kind, &OpusSettings::default()).expect("g711");
            assert_eq!(codec.kind(), kind);
            let input = sine(1_000.0, 10_000.0, 50);
            let output = round_trip(&mut codec, &input);
            let (corr, _) = best_correlation(&input, &output, 9_600, 19_200);
            assert!(corr > 0.999, "{kind:?} correlation {corr}");
            let level = rms(&output[9_600..]) / rms(&input[9_600..]);
            assert!(
                (0.97..1.03).contains(&level),
                "{kind:?} level ratio {level}"
            );
            // The delay, on a signal that is not periodic: resampling down and
            // up adds two linear-phase delays of 119.5 samples.
            let mut codec = Codec::new(kind, &OpusSettings::default()).expect("g711");
            let speech = speechlike(50);
            let output = round_trip(&mut codec, &speech);
            let (corr, delay) = best_correlation(&speech, &output, 9_600, 19_200);
            println!("{kind:?}: speech-like correlation {corr:.4} at delay {delay} samples");
            assert!(corr > 0.99, "{kind:?} correlation {corr}");
            assert!((230..=244).contains(&delay), "{kind:?} delay {delay}");
        }
    }

    #[test]
    fn pcmu_strongly_attenuates_a_5khz_tone() {
        let mut codec = Codec::new(CodecKind::Pcmu, &OpusSettings::default()).expect("pcmu");
        let input = sine(5_000.0, 10_000.0, 50);
        let output = round_trip(&mut codec, &input);
        let ratio_db = 20.0 * (rms(&output[9_600..]) / rms(&input[9_600..])).log10();
        println!("5 kHz tone through PCMU: {ratio_db:.1} dB");
        assert!(ratio_db < -40.0, "5 kHz leaked through at {ratio_db:.1} dB");
    }

    /// Signal-to-noise ratio (dB) of `output` against `input` delayed by `delay`, over
    /// `len` samples from `start`, after the best least-squares gain.
    fn snr_db(input: &[i16], output: &[i16], delay: usize, start: usize, len: usize) -> f64 {
        let a = &input[start..start + len];
        let b = &output[start + delay..start + delay + len];
        let (mut ab, mut aa) = (0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            ab += f64::from(x) * f64::from(y);
            aa += f64::from(x) * f64::from(x);
        }
        let gain = ab / aa.max(1e-9);
        let (mut signal, mut noise) = (0.0, 0.0);
        for (&x, &y) in a.iter().zip(b) {
            let x = gain * f64::from(x);
            signal += x * x;
            noise += (f64::from(y) - x).powi(2);
        }
        10.0 * (signal / noise.max(1e-9)).log10()
    }

    #[test]
    fn g722_carries_1khz_and_6khz_tones() {
        for freq in [1_000.0, 6_000.0] {
            let mut codec = Codec::new(CodecKind::G722, &OpusSettings::default()).expect("g722");
            assert_eq!(codec.kind(), CodecKind::G722);
            let input = sine(freq, 10_000.0, 50);
            let output = round_trip(&mut codec, &input);
            let (corr, delay) = best_correlation(&input, &output, 9_600, 19_200);
            let snr = snr_db(&input, &output, delay, 9_600, 19_200);
            let level = rms(&output[9_600..]) / rms(&input[9_600..]);
            println!("G.722 {freq} Hz: correlation {corr:.4}, SNR {snr:.1} dB, level {level:.3}");
            assert!(corr > 0.99, "{freq} Hz correlation {corr}");
            assert!(snr > 20.0, "{freq} Hz SNR {snr:.1} dB");
            assert!((0.9..1.1).contains(&level), "{freq} Hz level ratio {level}");
        }
    }

    #[test]
    fn g722_is_wideband_where_g711_is_not() {
        let input = sine(6_000.0, 10_000.0, 50);
        let through = |kind| {
            let mut codec = Codec::new(kind, &OpusSettings::default()).expect("codec");
            let output = round_trip(&mut codec, &input);
            20.0 * (rms(&output[9_600..]) / rms(&input[9_600..])).log10()
        };
        let (wide, narrow) = (through(CodecKind::G722), through(CodecKind::Pcmu));
        println!("6 kHz tone: G.722 {wide:.1} dB, PCMU {narrow:.1} dB");
        assert!(wide > -1.0, "G.722 lost the 6 kHz tone: {wide:.1} dB");
        assert!(narrow < -40.0, "PCMU passed the 6 kHz tone: {narrow:.1} dB");
    }

    #[test]
    fn g722_carries_speech_with_a_fixed_delay() {
        let mut codec = Codec::new(CodecKind::G722, &OpusSettings::default()).expect("g722");
        let speech = speechlike(50);
        let output = round_trip(&mut codec, &speech);
        let (corr, delay) = best_correlation(&speech, &output, 9_600, 19_200);
        let snr = snr_db(&speech, &output, delay, 9_600, 19_200);
        println!("G.722 speech-like: correlation {corr:.4}, SNR {snr:.1} dB at delay {delay}");
        assert!(corr > 0.99, "correlation {corr}");
        // Two resampling filters (2 × 119.5 samples) and the two QMFs (23 samples at 16 kHz).
        assert!((290..=320).contains(&delay), "delay {delay}");
    }

    #[test]
    fn g722_payload_is_160_bytes_and_timestamps_run_at_8khz() {
        let mut codec = Codec::new(CodecKind::G722, &OpusSettings::default()).expect("g722");
        let mut payload = [0u8; 1500];
        let len = codec.encode(&[0; PACKET], &mut payload).expect("encode");
        assert_eq!(len, 160);
        assert_eq!(CodecKind::G722.clock_rate(), 8_000);
        assert_eq!(CodecKind::G722.samples_per_frame() * 20 / FRAME_MS, 160);
        let mut small = [0u8; 159];
        assert!(matches!(
            codec.encode(&[0; PACKET], &mut small),
            Err(CodecError::OutputTooSmall {
                need: 160,
                got: 159
            })
        ));
    }

    #[test]
    fn g711_and_g722_allocate_nothing_per_frame() {
        for kind in [CodecKind::Pcmu, CodecKind::G722] {
            let mut codec = Codec::new(kind, &OpusSettings::default()).expect("codec");
            let input = sine(6_000.0, 8_000.0, 3);
            let mut frame = [0i16; PACKET];
            let mut payload = [0u8; 1500];
            let before = assert_no_alloc::violation_count();
            assert_no_alloc::assert_no_alloc(|| {
                for chunk in input.chunks_exact(PACKET) {
                    frame.copy_from_slice(chunk);
                    let len = codec.encode(&frame, &mut payload).expect("encode");
                    codec.decode(&payload[..len], &mut frame).expect("decode");
                    codec.conceal(None, &mut frame).expect("conceal");
                }
            });
            assert_eq!(assert_no_alloc::violation_count() - before, 0, "{kind:?}");
        }
    }

    #[test]
    fn g722_concealment_repeats_then_fades_to_silence() {
        let mut codec = Codec::new(CodecKind::G722, &OpusSettings::default()).expect("g722");
        let input = sine(440.0, 8_000.0, 10);
        let decoded = round_trip(&mut codec, &input);
        let good = rms(&decoded[8 * PACKET..]);
        let mut out = [0i16; PACKET];
        let mut levels = Vec::new();
        for _ in 0..7 {
            codec.conceal(None, &mut out).expect("conceal");
            levels.push(rms(&out) / good);
        }
        assert!(levels[0] > 0.6, "first concealed frame: {levels:?}");
        assert!(levels[4] < 0.05, "still loud after five losses: {levels:?}");
        assert_eq!(levels[6], 0.0, "not silent after seven losses: {levels:?}");
    }

    #[test]
    fn opus_carries_a_1khz_sine() {
        let mut codec = Codec::new(CodecKind::Opus, &OpusSettings::default()).expect("opus");
        assert_eq!(codec.kind(), CodecKind::Opus);
        let input = sine(1_000.0, 10_000.0, 100);
        let output = round_trip(&mut codec, &input);
        let (corr, _) = best_correlation(&input, &output, 48_000, 24_000);
        assert!(corr > 0.98, "correlation {corr}");
        let level = rms(&output[48_000..]) / rms(&input[48_000..]);
        println!("opus 1 kHz: correlation {corr:.4}, level ratio {level:.3}");
        assert!((0.89..1.12).contains(&level), "level ratio {level}");
        // The delay, on a signal that is not periodic: libopus's 6.5 ms
        // (312 samples) of look-ahead and decoder delay.
        let mut codec = Codec::new(CodecKind::Opus, &OpusSettings::default()).expect("opus");
        let speech = speechlike(100);
        let output = round_trip(&mut codec, &speech);
        let (corr, delay) = best_correlation(&speech, &output, 48_000, 24_000);
        println!("opus speech-like: correlation {corr:.4} at delay {delay} samples");
        assert!(corr > 0.9, "correlation {corr}");
        assert!((300..=330).contains(&delay), "delay {delay}");
    }

    #[test]
    fn opus_fec_rebuilds_a_lost_frame_better_than_plc() {
        let settings = OpusSettings {
            expected_loss_pct: 20,
            ..OpusSettings::default()
        };
        let mut encoder = Codec::new(CodecKind::Opus, &settings).expect("opus");
        let input = speechlike(150);
        let mut packets = Vec::new();
        let mut frame = [0i16; PACKET];
        let mut buf = [0u8; 1500];
        for chunk in input.chunks_exact(PACKET) {
            frame.copy_from_slice(chunk);
            let len = encoder.encode(&frame, &mut buf).expect("encode");
            packets.push(buf[..len].to_vec());
        }
        let lost = |i: usize| i >= 50 && i % 9 == 0;
        // Three decoders on the same packets: no loss (the reference), PLC, FEC.
        let mut reference = Codec::new(CodecKind::Opus, &settings).expect("opus");
        let mut plc = Codec::new(CodecKind::Opus, &settings).expect("opus");
        let mut fec = Codec::new(CodecKind::Opus, &settings).expect("opus");
        let (mut err_plc, mut err_fec, mut energy) = (0.0f64, 0.0f64, 0.0f64);
        let (mut r, mut p, mut f) = ([0i16; PACKET], [0i16; PACKET], [0i16; PACKET]);
        for (i, packet) in packets.iter().enumerate() {
            reference.decode(packet, &mut r).expect("decode");
            if lost(i) {
                plc.conceal(None, &mut p).expect("plc");
                fec.conceal(packets.get(i + 1).map(Vec::as_slice), &mut f)
                    .expect("fec");
                for k in 0..PACKET {
                    let x = f64::from(r[k]);
                    energy += x * x;
                    err_plc += (x - f64::from(p[k])).powi(2);
                    err_fec += (x - f64::from(f[k])).powi(2);
                }
            } else {
                plc.decode(packet, &mut p).expect("decode");
                fec.decode(packet, &mut f).expect("decode");
            }
        }
        let snr = |e: f64| 10.0 * (energy / e.max(1.0)).log10();
        println!(
            "lost frames: PLC SNR {:.1} dB, FEC SNR {:.1} dB",
            snr(err_plc),
            snr(err_fec)
        );
        assert!(
            err_fec < 0.5 * err_plc,
            "FEC {err_fec:.3e} vs PLC {err_plc:.3e}"
        );
    }

    #[test]
    fn opus_dtx_sends_nothing_in_silence() {
        let settings = OpusSettings {
            dtx: true,
            ..OpusSettings::default()
        };
        let mut codec = Codec::new(CodecKind::Opus, &settings).expect("opus");
        let silence = [0i16; PACKET];
        let mut buf = [0u8; 1500];
        let empty = (0..100)
            .filter(|_| codec.encode(&silence, &mut buf).expect("encode") == 0)
            .count();
        assert!(
            empty > 80,
            "only {empty} of 100 silent frames were suppressed"
        );
    }

    #[test]
    fn g711_concealment_repeats_then_fades_to_silence() {
        let mut codec = Codec::new(CodecKind::Pcma, &OpusSettings::default()).expect("pcma");
        let mut out = [0i16; PACKET];
        // Nothing received yet: silence.
        codec.conceal(None, &mut out).expect("conceal");
        assert!(out.iter().all(|&s| s == 0));
        let input = sine(440.0, 8_000.0, 10);
        let decoded = round_trip(&mut codec, &input);
        let good = rms(&decoded[8 * PACKET..]);
        let mut levels = Vec::new();
        for _ in 0..6 {
            codec.conceal(None, &mut out).expect("conceal");
            levels.push(rms(&out) / good);
        }
        assert!(
            levels[0] > 0.6,
            "first concealed frame too quiet: {levels:?}"
        );
        assert!(levels.windows(2).all(|w| w[1] < w[0]), "{levels:?}");
        assert!(levels[4] < 0.05, "still loud after five losses: {levels:?}");
        assert_eq!(levels[5], 0.0, "not silent after six losses: {levels:?}");
        // A good frame restores full level.
        let decoded = round_trip(&mut codec, &input[..2 * PACKET]);
        assert!(rms(&decoded[PACKET..]) / good > 0.9);
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        let settings = OpusSettings::default();
        let mut out = [0i16; PACKET];
        for kind in [
            CodecKind::Opus,
            CodecKind::Pcmu,
            CodecKind::Pcma,
            CodecKind::G722,
        ] {
            let mut codec = Codec::new(kind, &settings).expect("codec");
            assert!(matches!(
                codec.decode(&[], &mut out),
                Err(CodecError::EmptyPayload)
            ));
            let huge = vec![0u8; MAX_DECODE_PAYLOAD + 1];
            assert!(matches!(
                codec.decode(&huge, &mut out),
                Err(CodecError::PayloadTooLarge(_))
            ));
        }
        let mut pcmu = Codec::new(CodecKind::Pcmu, &settings).expect("pcmu");
        // 100 bytes are 12.5 ms: not whole frames.
        assert!(matches!(
            pcmu.decode(&[0u8; 100], &mut out),
            Err(CodecError::FrameLength { got: 100, .. })
        ));
        let mut g722 = Codec::new(CodecKind::G722, &settings).expect("g722");
        assert!(matches!(
            g722.decode(&[0u8; 100], &mut out),
            Err(CodecError::FrameLength { got: 200, .. })
        ));
        let mut opus = Codec::new(CodecKind::Opus, &settings).expect("opus");
        // Code-3 packet declaring zero frames: malformed.
        assert!(opus.decode(&[0x03, 0x00], &mut out).is_err());
        // A 60 ms SILK packet (config 3) does not fit a 20 ms buffer.
        assert!(opus.decode(&[0x18, 0xAA, 0xBB], &mut out).is_err());
        // A 2.5 ms CELT packet (config 28) is not whole frames.
        assert!(matches!(
            opus.decode(&[0xE0, 0x11, 0x22], &mut out),
            Err(CodecError::FrameLength { got: 120, .. })
        ));
        // A 10 ms CELT packet (config 30) is one.
        assert_eq!(opus.decode(&[0xF0, 0x11, 0x22], &mut out).ok(), Some(480));
        // Concealment with a garbage `next` falls back to PLC.
        opus.conceal(Some(&[0x03, 0x00]), &mut out)
            .expect("plc fallback");
        // Random bytes: any result but a panic.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut payload = [0u8; 400];
        for round in 0..3_000 {
            let len = 1 + round % payload.len();
            for b in payload.iter_mut().take(len) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            let _ = opus.decode(&payload[..len], &mut out);
            let _ = opus.conceal(Some(&payload[..len]), &mut out);
            let _ = pcmu.decode(&payload[..len], &mut out);
            let _ = g722.decode(&payload[..len], &mut out);
        }
        // Any 160 bytes are a valid G.722 frame.
        for _ in 0..200 {
            for b in payload.iter_mut().take(160) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                *b = state as u8;
            }
            g722.decode(&payload[..160], &mut out)
                .expect("any byte decodes");
        }
    }

    #[test]
    fn opus_rejects_out_of_range_settings() {
        let bad = OpusSettings {
            complexity: 11,
            ..OpusSettings::default()
        };
        assert!(matches!(
            Codec::new(CodecKind::Opus, &bad),
            Err(CodecError::Opus(_))
        ));
        // G.711 ignores Opus settings.
        assert!(Codec::new(CodecKind::Pcmu, &bad).is_ok());
    }

    #[test]
    fn encode_refuses_a_short_output_buffer() {
        let mut codec = Codec::new(CodecKind::Pcmu, &OpusSettings::default()).expect("pcmu");
        let mut small = [0u8; 100];
        assert!(matches!(
            codec.encode(&[0; PACKET], &mut small),
            Err(CodecError::OutputTooSmall {
                need: 160,
                got: 100
            })
        ));
    }
}
