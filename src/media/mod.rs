//! The voice path: headset ⇄ codec ⇄ RTP, one media thread for all lines.
//!
//! Never imports `sip`: the driver translates negotiated SDP into
//! [`CodecKind`] and addresses.
//!
//! - [`api`]: the vocabulary between the driver and the media thread (orders, reports).
//! - [`engine`]: the media thread; `clock` the rule of its 20 ms clock, `pipeline` one tick.
//! - [`device`]: headset and ring device (cpal, WAV files, null).
//! - [`rtp`] / [`rtcp`]: the RTP wire format and one leg's RTCP state; [`srtp`] protects both.
//! - [`jitter`], [`codec`], [`g722`], [`dtmf`], [`mixer`], [`tones`], [`voice`], [`recorder`].

pub mod api;
mod clock;
pub mod codec;
pub mod device;
pub mod dtmf;
pub mod engine;
pub mod g722;
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
pub const FRAME_MS: u32 = 20;
/// Samples in one 20 ms mono frame at [`SAMPLE_RATE`].
pub const FRAME_SAMPLES: usize = 960;
/// One 20 ms frame of mono 16-bit PCM at 48 kHz.
pub type Frame = [i16; FRAME_SAMPLES];

/// The audio codecs the engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodecKind {
    /// Opus, 48 kHz RTP clock, mono, 20 ms.
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

    /// RTP timestamp units in one 20 ms frame.
    pub fn samples_per_frame(self) -> u32 {
        self.clock_rate() / (1000 / FRAME_MS)
    }
}
