//! The sound vocabulary the front ends share with the driver: what the operator can switch or
//! check about the microphone and the headset. Not SIP: the core passes these commands by.
//!
//! Plain types only; the media engine carries them out (`driver/mod.rs` translates).

/// A microphone clean-up stage the operator can switch live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceStage {
    /// RNNoise noise suppression (`ns`).
    NoiseSuppression,
    /// Automatic gain control (`agc`).
    Agc,
}
