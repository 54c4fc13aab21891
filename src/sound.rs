//! The sound vocabulary the front ends share with the driver: what the operator can switch or
//! check about the microphone and the headset. Not SIP: the core never sees these commands
//! (they travel in [`crate::front::Command`]).
//!
//! Plain types only; the media engine carries them out (`driver/mod.rs` translates).
//! [`SoundCommand::UseDevice`] also has the front end write the device into the configuration
//! file (`config::edit`), and [`SoundCommand::ListDevices`] is answered by the front end alone
//! (listing devices can block, so it runs on a thread of its own).

/// A microphone clean-up stage the operator can switch live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoiceStage {
    /// RNNoise noise suppression (`ns`).
    NoiseSuppression,
    /// Automatic gain control (`agc`).
    Agc,
}

/// What an audio device is used for, as `use-device in|out|ring NAME` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRole {
    /// The microphone (`[audio] input`).
    Input,
    /// The headset (`[audio] output`).
    Output,
    /// Where ringing goes (`[audio] ring_output`).
    Ring,
}

impl DeviceRole {
    /// The `[audio]` key that holds this role's device.
    pub fn key(self) -> &'static str {
        match self {
            DeviceRole::Input => "input",
            DeviceRole::Output => "output",
            DeviceRole::Ring => "ring_output",
        }
    }
}

/// A sound-check command: the operator checks the workstation's audio without a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoundCommand {
    /// Report the microphone's level every 100 ms as `level` events (`true`), or stop.
    Level(bool),
    /// Play a two-second 1 kHz test tone in the headset.
    Tone,
    /// Play the microphone back in the headset one second later (`true`), or stop.
    Echo(bool),
    /// Use this device for this role now (the media engine switches between two frames; if
    /// it cannot open, the old one stays) and write it into the configuration file (comments
    /// kept) for the next start.
    UseDevice(DeviceRole, String),
    /// List every audio device the system offers (a `device_list` event).
    ListDevices,
}

/// An audio device as the sound check lists it (`switchboard devices`' data).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioDevice {
    /// The name a configuration uses for it.
    pub name: String,
    /// It can record (a microphone).
    pub input: bool,
    /// It can play (a headset, a ringer).
    pub output: bool,
}
