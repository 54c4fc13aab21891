//! Audio devices: where the engine's frames meet the headset, the ring
//! device, WAV files, or nothing.
//!
//! Owns the three back-ends behind one [`AudioDevice`] trait, chosen by
//! [`Backend`] and built by [`open`]:
//!
//! - **cpal** (`cpal_backend`): real sound cards, through the sound server's own protocol
//!   (PulseAudio, or PipeWire's pipewire-pulse) or through ALSA, as [`Host`] says. The only
//!   real-time code of the program lives in `realtime`: the cpal callbacks, which move
//!   samples through pre-sized `rtrb` rings and touch atomics, nothing else.
//! - **file** (`file`, `file_input`): a WAV file as the microphone (streamed
//!   by a reader thread and converted to 48 kHz mono, two seconds in memory)
//!   and a WAV file as the headset, for tests, lab calls and recordings.
//! - **null**: silence in, everything out discarded.
//!
//! It must not read a clock (the media thread paces it, one call of each
//! method per tick; the devices are not the clock), allocate per frame,
//! log, or panic on anything a device or a file does.
//!
//! ```text
//!   cpal input callback ──► rtrb ring (200 ms, device rate, mono f32) ──► read_frame ─► Frame
//!     (downmix to mono,          │ full → xrun       (a frame + the adaptive cushion's margin,
//!      no alloc/lock/log)        ▼                    backlog dropped; resample → 48 kHz;
//!                                                     capture_shortfall: how long until then;
//!                                                     capture_lead: how much earlier it may come)
//!
//!   Frame ─► write_frame ──► rtrb ring (a period + margin, ≤ 30 ms more) ──► cpal output
//!            (+ pending ring frame when there is no ring device,      callback (copy to every
//!             resample 48 kHz → device rate)                       channel, empty → silence)
//!
//!   Frame ─► write_ring_frame ─► ring device's own stream, as above (or mixed into the headset)
//! ```
//!
//! Device trouble never stops the media thread: a lost device is reported once
//! through [`AudioDevice::poll_notice`], reopened every 2 s (the configured
//! device, then the default one) and in between the device is silent.
//!
//! The operator may switch a device live ([`AudioDevice::switch`]): the new one
//! is opened on a helper thread while the old one keeps playing, and takes over
//! between two frames ([`DeviceNotice::Chosen`]); if it cannot open, the old one
//! stays ([`DeviceNotice::NotChosen`], with the reason).

mod cpal_backend;
mod cushion;
#[cfg(test)]
mod dice;
mod drift;
mod file;
mod file_input;
mod file_output;
mod latency;
mod paths;
mod realtime;

use std::path::PathBuf;

use super::{Frame, FRAME_SAMPLES};
use crate::sound::DeviceRole;
pub use paths::Backlog;

/// Which of cpal's audio systems reaches the sound cards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Host {
    /// PulseAudio's protocol when a server answers (`PULSE_SERVER`, or the socket under
    /// `XDG_RUNTIME_DIR`), else ALSA.
    Auto,
    /// PulseAudio's protocol, spoken directly to the server (PulseAudio or pipewire-pulse).
    Pulse,
    /// ALSA (its `pulse` and `pipewire` plugins included), the default.
    #[default]
    Alsa,
}

/// Which audio back-end to open, and on which devices or files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    /// Sound cards through cpal. Names are matched exactly against
    /// [`DeviceInfo::name`] or [`DeviceInfo::id`]; `None` is the system's
    /// default device.
    Cpal {
        /// The audio system the devices are on.
        host: Host,
        /// Microphone device.
        input: Option<String>,
        /// Headset (earpiece) device.
        output: Option<String>,
        /// A separate device for the ringer (e.g. loudspeakers); `None` rings
        /// on the headset.
        ring_output: Option<String>,
    },
    /// WAV files: `input` is the microphone (any rate, 1–2 channels, 8–32-bit
    /// integer or 32-bit float, converted to 48 kHz mono as it streams; `None`
    /// is silence), `looping` replays it forever instead of once; `output`
    /// records the headset (and ring) audio as 48 kHz mono 16-bit (`None`
    /// discards it).
    File {
        /// WAV file played as the microphone.
        input: Option<PathBuf>,
        /// Replay the input from its start when it ends.
        looping: bool,
        /// WAV file the headset audio is written to.
        output: Option<PathBuf>,
    },
    /// No audio at all: silence in, output discarded.
    Null,
}

impl Backend {
    /// What the operator is told about the devices in use: microphone, headset, ringer.
    pub fn describe(&self) -> (String, String, String) {
        let file = |p: &Option<PathBuf>, none: &str| {
            p.as_ref().map_or_else(
                || none.to_owned(),
                |p| {
                    p.file_name()
                        .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
                },
            )
        };
        match self {
            Backend::Cpal {
                input,
                output,
                ring_output,
                ..
            } => {
                let name = |d: &Option<String>| d.clone().unwrap_or_else(|| "default".to_owned());
                let headset = name(output);
                let ring = ring_output.clone().unwrap_or_else(|| "headset".to_owned());
                (name(input), headset, ring)
            }
            Backend::File { input, output, .. } => (
                file(input, "silence"),
                file(output, "discarded"),
                "headset".to_owned(),
            ),
            Backend::Null => ("none".to_owned(), "none".to_owned(), "none".to_owned()),
        }
    }
}

/// One audio device as the media thread sees it: frames of 48 kHz mono
/// in and out. Each method is called once per tick, in the order
/// `read_frame`, `write_ring_frame`, `write_frame`, `poll_notice`.
pub trait AudioDevice: Send {
    /// The next frame of microphone audio (48 kHz mono). `false` = none
    /// available (underrun or input ended) → the caller uses silence.
    fn read_frame(&mut self, frame: &mut Frame) -> bool;
    /// One frame for the headset.
    fn write_frame(&mut self, frame: &Frame);
    /// One frame for the ring device; when there is no separate ring device it is
    /// mixed (saturating) into the next [`write_frame`](Self::write_frame).
    fn write_ring_frame(&mut self, frame: &Frame);
    /// Problems seen since the last call (device lost or back, xruns), one
    /// per call; `None` when there is nothing to report.
    fn poll_notice(&mut self) -> Option<DeviceNotice>;
    /// The media thread stops ticking (no call, tone or sound check needs it) until
    /// [`resume`](Self::resume): a sound card's streams stop. Default: nothing to do.
    fn pause(&mut self) {}
    /// The media thread ticks again after `missed` ticks went by without any call: a file
    /// skips that much input and writes that much silence (so tick `k` still reads and writes
    /// the `k`-th frame), a sound card restarts its streams and forgets the pause's dropouts.
    fn resume(&mut self, missed: u64) {
        let _ = missed;
    }
    /// Starts using the device (or file) `name` for `role` in place of the current one. It
    /// opens off the media thread; the outcome arrives through
    /// [`poll_notice`](Self::poll_notice) as [`DeviceNotice::Chosen`] (the old one is closed)
    /// or [`DeviceNotice::NotChosen`] (the old one stays). What is returned is an outcome
    /// known at once. Default: this back-end has no devices to choose.
    fn switch(&mut self, role: DeviceRole, name: &str) -> Option<DeviceNotice> {
        Some(DeviceNotice::NotChosen {
            role,
            device: name.to_owned(),
            reason: "this audio backend has no devices to choose".to_owned(),
        })
    }
    /// A [`switch`](Self::switch) is under way: the media thread must keep ticking (polling)
    /// until its outcome is in.
    fn is_switching(&self) -> bool {
        false
    }

    /// How much audio the next [`read_frame`](Self::read_frame) still lacks, as time at the
    /// device's rate, when the microphone is a sound card that has been delivering and is
    /// only a little behind (at most a callback period): the media thread may wait that long
    /// and so phase its tick just after the capture callback that completes the frame.
    /// `None`: the frame is there, or waiting would not help (files, null, priming, no stream).
    fn capture_shortfall(&mut self) -> Option<std::time::Duration> {
        None
    }

    /// How much earlier the media thread's next tick may come, when the microphone's frames
    /// waited in its ring longer than the sound card's timing needs: the latency the capture
    /// cushion gives back, taken by moving the clock's phase rather than by dropping audio.
    /// `None`: nothing to give back (and always for files and null).
    fn capture_lead(&mut self) -> Option<std::time::Duration> {
        None
    }

    /// What the microphone has recorded at `now` that no tick has read yet, and all it has
    /// recorded (the media clock learns the microphone's pace from it, the headsets' drift
    /// loops hold their level plus it). `None`: no sound card records.
    fn capture_backlog(&mut self, _now: std::time::Instant) -> Option<Backlog> {
        None
    }
}

/// Something the operator (or the log) should hear about a device.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceNotice {
    /// The microphone stopped (e.g. unplugged); its name or file. Input is
    /// silent until it comes back.
    InputLost(String),
    /// The headset or ring device stopped (or the output file could not be
    /// written); its name or file. Output is discarded until it comes back.
    OutputLost(String),
    /// Dropouts since the last such notice (reported at most every 5 s, only
    /// when there were some): microphone audio lost or trimmed (`input`),
    /// headset/ring audio missing or dropped to bound latency (`output`).
    Xruns {
        /// Input dropouts (ring full, underrun at the media thread, latency trim).
        input: u64,
        /// Output dropouts (ring empty in the callback, frame dropped because
        /// the ring was too full).
        output: u64,
    },
    /// A lost device was reopened, or another one took its place, e.g.
    /// `output fell back to the default device "default"`.
    Switched(String),
    /// The device the operator chose for `role` is in use now (the old one is closed).
    Chosen {
        /// What it is used for.
        role: DeviceRole,
        /// The device (or file) as chosen.
        device: String,
    },
    /// The device the operator chose for `role` could not be opened: the old one stays.
    NotChosen {
        /// What it was chosen for.
        role: DeviceRole,
        /// The device (or file) as chosen.
        device: String,
        /// Why it cannot be used.
        reason: String,
    },
}

/// Why a device or file could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The input WAV file is missing, unreadable or not audio we can convert.
    #[error("cannot use {} as microphone input: {reason}", path.display())]
    InputFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The output WAV file cannot be created.
    #[error("cannot create the output recording {}: {reason}", path.display())]
    OutputFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// No device of that name; lists the names that exist.
    #[error(
        "no {direction} device named \"{name}\"; available: {}",
        list_names(available)
    )]
    NoSuchDevice {
        /// "input", "output" or "ring output".
        direction: &'static str,
        /// The name asked for.
        name: String,
        /// The names of the devices that can do `direction`.
        available: Vec<String>,
    },
    /// The system has no default device for that direction.
    #[error(
        "no default {direction} device (no sound card or sound server?); \
         available: {}; or use the file or null audio backend",
        list_names(available)
    )]
    NoDefaultDevice {
        /// "input", "output" or "ring output".
        direction: &'static str,
        /// The names of the devices that can do `direction`.
        available: Vec<String>,
    },
    /// The device exists but no stream could be opened on it.
    #[error("cannot open the {direction} stream on \"{device}\": {reason}")]
    Stream {
        /// "input", "output" or "ring output".
        direction: &'static str,
        /// The device's name.
        device: String,
        /// What the audio system said.
        reason: String,
    },
    /// The audio system itself failed (e.g. listing devices).
    #[error("audio system: {0}")]
    Host(String),
    /// A sample-rate converter could not be built for that rate.
    #[error("cannot convert between {from} Hz and {to} Hz: {reason}")]
    Resampler {
        /// Source rate (Hz).
        from: u32,
        /// Target rate (Hz).
        to: u32,
        /// What the resampler said.
        reason: String,
    },
}

fn list_names(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One device as listed by [`list_devices`] (for `switchboard devices`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's description, e.g. `USB Headset, USB Audio`; a
    /// configuration may name a device by this or by [`id`](Self::id).
    pub name: String,
    /// Its stable identifier, e.g. `alsa:hw:CARD=Headset,DEV=0` or
    /// `pulseaudio:alsa_output.usb-Headset-00.analog-stereo` (also accepted without the
    /// host's prefix); empty if the system gives none.
    pub id: String,
    /// It can record (microphone).
    pub input: bool,
    /// It can play (headset, ringer).
    pub output: bool,
    /// Its default configuration, e.g. `48000 Hz, 2 ch, f32` (the output's
    /// when it has both directions and they differ, followed by the input's);
    /// `None` when it has none now (a plugin without a card or server behind it).
    pub default_config: Option<String>,
    /// It is the system's default input or output device.
    pub is_default: bool,
}

/// Opens `backend`. Named devices or files that do not exist are errors that
/// name them; the returned device never fails afterwards, it reports.
pub fn open(backend: &Backend) -> Result<Box<dyn AudioDevice>, DeviceError> {
    match backend {
        Backend::Cpal {
            host,
            input,
            output,
            ring_output,
        } => Ok(Box::new(cpal_backend::CpalDevice::open(
            *host,
            input.as_deref(),
            output.as_deref(),
            ring_output.as_deref(),
        )?)),
        Backend::File {
            input,
            looping,
            output,
        } => Ok(Box::new(file::FileDevice::open(
            input.as_deref(),
            *looping,
            output.as_deref(),
        )?)),
        Backend::Null => Ok(Box::new(file::FileDevice::null())),
    }
}

/// The sound devices cpal can see on `host`, for `switchboard devices`.
pub fn list_devices(host: Host) -> Result<Vec<DeviceInfo>, DeviceError> {
    cpal_backend::list_devices(host)
}

/// The ring frame waiting to be mixed into the next headset frame when there
/// is no separate ring device.
struct RingMix {
    frame: Frame,
    pending: bool,
}

impl RingMix {
    fn new() -> RingMix {
        RingMix {
            frame: [0; FRAME_SAMPLES],
            pending: false,
        }
    }

    /// Keeps `frame` for the next [`mix_into`](Self::mix_into) (a newer one replaces it).
    fn put(&mut self, frame: &Frame) {
        self.frame.copy_from_slice(frame);
        self.pending = true;
    }

    /// Adds (saturating) the pending ring frame, if any, into `out`.
    fn mix_into(&mut self, out: &mut Frame) {
        if self.pending {
            for (o, r) in out.iter_mut().zip(self.frame.iter()) {
                *o = o.saturating_add(*r);
            }
            self.pending = false;
        }
    }
}

/// The allocation checker for the real-time tests: counts allocations made
/// inside `assert_no_alloc` on the calling thread, passes everything through.
#[cfg(test)]
#[global_allocator]
static ALLOC_CHECK: assert_no_alloc::AllocDisabler = assert_no_alloc::AllocDisabler;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_mix_saturates_and_is_used_once() {
        let mut mix = RingMix::new();
        let mut out = [30_000i16; FRAME_SAMPLES];
        mix.mix_into(&mut out);
        assert_eq!(out[0], 30_000, "nothing pending: unchanged");
        let mut ring = [0i16; FRAME_SAMPLES];
        ring[0] = 10_000;
        ring[1] = -100;
        ring[2] = i16::MIN;
        mix.put(&ring);
        out[2] = -30_000;
        mix.mix_into(&mut out);
        assert_eq!(out[0], i16::MAX);
        assert_eq!(out[1], 29_900);
        assert_eq!(out[2], i16::MIN);
        let mut again = [5i16; FRAME_SAMPLES];
        mix.mix_into(&mut again);
        assert_eq!(again[0], 5, "a ring frame is mixed once");
    }

    #[test]
    fn errors_name_what_is_missing() {
        let e = DeviceError::NoSuchDevice {
            direction: "output",
            name: "USB Headset".into(),
            available: vec!["default".into(), "pulse".into()],
        };
        assert_eq!(
            e.to_string(),
            "no output device named \"USB Headset\"; available: \"default\", \"pulse\""
        );
        let e = DeviceError::NoDefaultDevice {
            direction: "input",
            available: vec![],
        };
        assert!(e.to_string().contains("no default input device"));
        assert!(e.to_string().contains("available: none"));
    }

    #[test]
    fn null_backend_is_silent_and_quiet() {
        let mut dev = open(&Backend::Null).expect("null always opens");
        let mut frame = [7i16; FRAME_SAMPLES];
        assert!(!dev.read_frame(&mut frame));
        dev.write_ring_frame(&frame);
        dev.write_frame(&frame);
        assert_eq!(dev.poll_notice(), None);
    }
}
