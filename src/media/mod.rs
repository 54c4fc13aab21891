//! The voice path: headset ⇄ codec ⇄ RTP, one media thread for all lines.
//!
//! Never imports `sip`: the driver translates negotiated SDP into
//! [`CodecKind`] and addresses.
//!
//! - [`api`]: the vocabulary between the driver and the media thread (orders, reports).
//! - [`engine`]: the media thread; `clock` the rule of its frame clock (10 ms), `pipeline` one tick.
//! - [`device`]: headset and ring device (cpal, WAV files, null).
//! - [`rtp`] / [`rtcp`]: the RTP wire format and one leg's RTCP state; [`srtp`] protects both.
//! - [`jitter`] (with `inbound`, a received stream of any packetisation), [`codec`], [`g722`], [`dtmf`], [`mixer`], [`tones`], [`voice`], [`recorder`].

pub mod api;
mod clock;
pub mod codec;
pub mod device;
pub mod dtmf;
pub mod engine;
pub mod g722;
pub(crate) mod inbound;
pub mod jitter;
pub mod mixer;
mod net;
mod pipeline;
pub mod priority;
pub mod recorder;
pub mod rtcp;
pub mod rtp;
pub mod sound_check;
pub mod srtp;
pub mod tones;
pub mod voice;
mod warnings;

/// The engine's internal sample rate (Hz): devices and codecs convert to it.
pub const SAMPLE_RATE: u32 = 48_000;
/// Length of one frame in milliseconds: the media clock's tick.
pub const FRAME_MS: u32 = 10;
/// Samples in one mono frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = (SAMPLE_RATE / 1000 * FRAME_MS) as usize;
/// Media ticks in one second.
pub const TICKS_PER_SECOND: u32 = 1000 / FRAME_MS;
/// Longest packet we send (ms), whatever the far end asks.
const MAX_SEND_MS: u32 = 60;
/// One frame of mono 16-bit PCM at 48 kHz.
pub type Frame = [i16; FRAME_SAMPLES];

/// The audio codecs the engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// Opus, 48 kHz RTP clock, mono.
    Opus,
    /// G.711 µ-law, 8 kHz.
    Pcmu,
    /// G.711 A-law, 8 kHz.
    Pcma,
    /// G.722 at 64 kbit/s: samples at 16 kHz, RTP clock at 8 kHz (RFC 3551 §4.5.2).
    G722,
}

impl CodecKind {
    /// The RTP clock rate (Hz).
    pub fn clock_rate(self) -> u32 {
        match self {
            CodecKind::Opus => 48_000,
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => 8_000,
        }
    }

    /// RTP timestamp units in one frame.
    pub fn samples_per_frame(self) -> u32 {
        self.clock_rate() / TICKS_PER_SECOND
    }

    /// Frames per packet we send when the far end asks for `ptime` ms (`a=ptime`; RFC 3551's
    /// 20 ms when it does not say): whole frames, 10 to 60 ms, and for Opus one of its packet
    /// lengths (10, 20, 40, 60 ms), never longer than asked unless below one frame.
    pub fn send_frames(self, ptime: Option<u32>) -> usize {
        let ms = ptime.unwrap_or(20).clamp(FRAME_MS, MAX_SEND_MS);
        let ms = match self {
            CodecKind::Opus => [60, 40, 20, 10]
                .into_iter()
                .find(|&valid| valid <= ms && valid % FRAME_MS == 0)
                .unwrap_or(FRAME_MS),
            CodecKind::Pcmu | CodecKind::Pcma | CodecKind::G722 => ms,
        };
        (ms / FRAME_MS) as usize
    }
}
