//! The media sections of the configuration: `[audio]` (devices, files, music on hold) and
//! `[media]` (jitter buffer bounds, DTMF method), with their checks.
//!
//! Like the rest of `config`, this only turns text into checked values: it opens no device
//! and reads no file.

use std::path::PathBuf;

use serde::Deserialize;

use super::Problem;

/// Bounds for the jitter buffer settings, in milliseconds.
const JITTER_RANGE: std::ops::RangeInclusive<u32> = 20..=1000;
/// Bounds for `[media] rtp_timeout`, in seconds (0 = off).
const RTP_TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 0..=3600;

/// Where call audio comes from and goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioBackend {
    /// The sound card through cpal (`"cpal"`), the default.
    #[default]
    Cpal,
    /// WAV files (`"file"`): `file_in` is the microphone, `file_out` the headset.
    File,
    /// No audio at all (`"null"`): silence is sent, nothing is played.
    Null,
}

/// Which audio system the `cpal` backend reaches the sound cards through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AudioHost {
    /// PulseAudio's protocol when a server answers, else ALSA (`"auto"`).
    Auto,
    /// PulseAudio's protocol, spoken directly to PulseAudio or pipewire-pulse (`"pulse"`).
    Pulse,
    /// ALSA, its `pulse` and `pipewire` plugins included (`"alsa"`), the default: the
    /// devices configurations name, and the lower latency measured through PulseAudio.
    #[default]
    Alsa,
}

/// The `[audio]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Audio {
    /// `"cpal"`, `"file"` or `"null"`. Default `"cpal"`.
    pub backend: AudioBackend,
    /// `"auto"`, `"pulse"` or `"alsa"`: the audio system of the `cpal` backend. Default
    /// `"alsa"`.
    pub host: AudioHost,
    /// cpal input device (the headset microphone) by name; `None`: the default device.
    pub input: Option<String>,
    /// cpal output device (the headset) by name; `None`: the default device.
    pub output: Option<String>,
    /// cpal output device for the ring tone; `None`: the ring is played in the headset.
    pub ring_output: Option<String>,
    /// File backend: the WAV file the microphone reads; `None`: silence.
    pub file_in: Option<PathBuf>,
    /// File backend: start `file_in` again at its end. Default true.
    pub file_loop: bool,
    /// File backend: the WAV file the headset writes (48 kHz mono); `None`: discarded.
    pub file_out: Option<PathBuf>,
    /// A WAV file held parties hear; `None`: they hear silence.
    pub music_on_hold: Option<PathBuf>,
    /// RNNoise noise suppression on the microphone. Default false.
    pub noise_suppression: bool,
    /// Automatic gain control on the microphone. Default false.
    pub agc: bool,
}

impl Default for Audio {
    fn default() -> Self {
        Self {
            backend: AudioBackend::Cpal,
            host: AudioHost::Alsa,
            input: None,
            output: None,
            ring_output: None,
            file_in: None,
            file_loop: true,
            file_out: None,
            music_on_hold: None,
            noise_suppression: false,
            agc: false,
        }
    }
}

/// How DTMF digits are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DtmfMethod {
    /// RFC 4733 telephone-events in the RTP stream (`"rfc4733"`), the default.
    #[default]
    Rfc4733,
    /// SIP INFO with `application/dtmf-relay` bodies (`"info"`).
    Info,
}

/// The `[media]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Media {
    /// Smallest jitter buffer delay (ms). Default 20.
    pub jitter_min_ms: u32,
    /// Jitter buffer delay at the start of a stream (ms). Default 40.
    pub jitter_start_ms: u32,
    /// Largest jitter buffer delay (ms). Default 200.
    pub jitter_max_ms: u32,
    /// `"rfc4733"` or `"info"`. Default `"rfc4733"`.
    pub dtmf: DtmfMethod,
    /// Seconds without RTP from the far end, while audio should flow both ways, after which
    /// the call is ended; 0 turns the check off. Default 30.
    pub rtp_timeout: u32,
}

impl Default for Media {
    fn default() -> Self {
        Self {
            jitter_min_ms: 20,
            jitter_start_ms: 40,
            jitter_max_ms: 200,
            dtmf: DtmfMethod::Rfc4733,
            rtp_timeout: 30,
        }
    }
}

impl Audio {
    /// Problems within `[audio]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        for (key, value) in [
            ("input", &self.input),
            ("output", &self.output),
            ("ring_output", &self.ring_output),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                out.push(Problem::new(
                    format!("audio.{key}"),
                    "must not be empty; remove the key to use the default device",
                ));
            }
        }
        for (key, value) in [
            ("file_in", &self.file_in),
            ("file_out", &self.file_out),
            ("music_on_hold", &self.music_on_hold),
        ] {
            if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
                out.push(Problem::new(
                    format!("audio.{key}"),
                    "must not be empty; remove the key instead",
                ));
            }
        }
    }

    /// Expands a leading `~/` in the file paths.
    pub(super) fn expand_paths(&mut self) {
        for path in [
            &mut self.file_in,
            &mut self.file_out,
            &mut self.music_on_hold,
        ]
        .into_iter()
        .flatten()
        {
            *path = super::expand_home(path);
        }
    }
}

impl Media {
    /// Problems within `[media]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        if !RTP_TIMEOUT_RANGE.contains(&self.rtp_timeout) {
            out.push(Problem::new(
                "media.rtp_timeout",
                format!(
                    "{} seconds is out of range: use {} (off) to {}",
                    self.rtp_timeout,
                    RTP_TIMEOUT_RANGE.start(),
                    RTP_TIMEOUT_RANGE.end()
                ),
            ));
        }
        for (key, value) in [
            ("jitter_min_ms", self.jitter_min_ms),
            ("jitter_start_ms", self.jitter_start_ms),
            ("jitter_max_ms", self.jitter_max_ms),
        ] {
            if !JITTER_RANGE.contains(&value) {
                out.push(Problem::new(
                    format!("media.{key}"),
                    format!(
                        "{value} ms is out of range: use {} to {}",
                        JITTER_RANGE.start(),
                        JITTER_RANGE.end()
                    ),
                ));
            }
        }
        if self.jitter_min_ms > self.jitter_max_ms {
            out.push(
                Problem::new(
                    "media.jitter_min_ms",
                    format!(
                        "jitter_min_ms ({}) must not exceed jitter_max_ms ({})",
                        self.jitter_min_ms, self.jitter_max_ms
                    ),
                )
                .or_at("media.jitter_max_ms"),
            );
        } else if !(self.jitter_min_ms..=self.jitter_max_ms).contains(&self.jitter_start_ms) {
            out.push(
                Problem::new(
                    "media.jitter_start_ms",
                    format!(
                        "{} ms is outside jitter_min_ms..jitter_max_ms ({}..{})",
                        self.jitter_start_ms, self.jitter_min_ms, self.jitter_max_ms
                    ),
                )
                .or_at("media"),
            );
        }
    }
}
