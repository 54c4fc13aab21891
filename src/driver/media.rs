//! The bridge between the core and the media engine: [`MediaOrder`]s become
//! engine [`Control`]s, engine [`Report`]s become operator [`Event`]s; and
//! [`start`], which opens the audio device and starts the engine.
//!
//! The core speaks of lines 1-based with SDP types; the engine of line
//! indices with its own codec and stream types (it never imports `sip`).
//! Recording orders get their file path here (the template needs the
//! wall-clock time, which the core never reads), and the engine's recording
//! reports become `record` events.

use std::time::SystemTime;

use tokio::sync::mpsc;

use super::setup::{MediaSetup, RecordingSetup};
use crate::front::Event;
use crate::media::api::{
    Control, LineSockets, LineTone, Report, SendSource, SoundOrder, SrtpKeys, SrtpSuite,
    StreamParams,
};
use crate::media::device::{self, Backend, DeviceNotice};
use crate::media::engine::MediaEngine;
use crate::media::recorder::name::{self, CallFacts};
use crate::media::tones::MusicOnHold;
use crate::media::CodecKind;
use crate::sip::media_order::{Source, Stream, Tone};
use crate::sip::sdes::CryptoSuite;
use crate::sip::sdp::Codec;
use crate::sip::{self, Direction, LineNo, MediaOrder};
use crate::sound::DeviceRole;

/// Opens the audio device and starts the media engine on `sockets`; its reports arrive on
/// `reports`. A device that cannot be opened, or music on hold that cannot be loaded, is not
/// fatal: the returned events say what runs instead (no sound, silence on hold).
pub fn start(
    setup: MediaSetup,
    sockets: Vec<LineSockets>,
    reports: mpsc::UnboundedSender<Report>,
) -> Result<(MediaEngine, Vec<Event>), String> {
    let mut notes = Vec::new();
    let mut opened = setup.backend.clone();
    let device = device::open(&setup.backend).or_else(|e| {
        tracing::warn!(error = %e, "audio device unavailable");
        notes.push(Event::Audio {
            message: format!("{e}; running without sound"),
        });
        opened = Backend::Null;
        device::open(&Backend::Null)
    });
    let (input, output, ring) = opened.describe();
    notes.insert(
        0,
        Event::Devices {
            input,
            output,
            ring,
        },
    );
    let device = device.map_err(|e| format!("even the silent audio backend failed: {e}"))?;
    let moh = setup.music_on_hold.as_ref().and_then(|path| {
        MusicOnHold::load(path)
            .map_err(|e| {
                tracing::warn!(error = %e, "music on hold unavailable");
                notes.push(Event::Audio {
                    message: format!(
                        "music on hold {}: {e}; held callers hear silence",
                        path.display()
                    ),
                });
            })
            .ok()
    });
    let mut engine_config = setup.engine;
    engine_config.rtp_sequence_start = test_sequence_start();
    let sink = Box::new(move |report| {
        // The driver gone means we are stopping; the report no longer matters.
        let _ = reports.send(report);
    });
    let engine =
        MediaEngine::start(device, sockets, engine_config, moh, sink).map_err(|e| e.to_string())?;
    Ok((engine, notes))
}

/// The environment variable that fixes the first RTP sequence number of every stream (tests
/// only: it lets a short call cross the 16-bit wrap, where SRTP's rollover counter must
/// advance on both sides).
pub const SEQUENCE_START_VAR: &str = "SWITCHBOARD_TEST_RTP_SEQ_START";

/// The sequence start [`SEQUENCE_START_VAR`] asks for, if any. An environment variable rather
/// than a configuration key or an option: operators never want it (RFC 3550 asks for a random
/// start, and a known one helps no one), so it stays out of the documented surface, and a
/// test harness sets it without writing anything else.
fn test_sequence_start() -> Option<u16> {
    let value = std::env::var(SEQUENCE_START_VAR).ok()?;
    match value.trim().parse() {
        Ok(start) => {
            tracing::warn!(
                start,
                "RTP sequence numbers start at a fixed value (test setting)"
            );
            Some(start)
        }
        Err(_) => {
            tracing::warn!(%value, "ignoring {SEQUENCE_START_VAR}: not a number 0-65535");
            None
        }
    }
}

/// What the operator calls a device role.
fn role_name(role: DeviceRole) -> &'static str {
    match role {
        DeviceRole::Input => "microphone",
        DeviceRole::Output => "headset",
        DeviceRole::Ring => "ring device",
    }
}

/// Which call each line's media belongs to (for naming reports), how recordings are named,
/// and which devices are in use (microphone, headset, ring: what a `devices` event says).
#[derive(Debug)]
pub struct MediaBridge {
    calls: Vec<Option<String>>,
    recording: RecordingSetup,
    devices: (String, String, String),
}

impl MediaBridge {
    /// A bridge naming recordings after `recording`.
    pub fn new(recording: RecordingSetup) -> MediaBridge {
        MediaBridge {
            calls: Vec::new(),
            recording,
            devices: Default::default(),
        }
    }

    /// Learns the devices in use from a `devices` event among [`start`]'s notes.
    pub fn note(&mut self, event: &Event) {
        if let Event::Devices {
            input,
            output,
            ring,
        } = event
        {
            self.devices = (input.clone(), output.clone(), ring.clone());
        }
    }

    /// The `devices` event after `role` switched to `device`.
    fn chosen(&mut self, role: DeviceRole, device: String) -> Event {
        match role {
            DeviceRole::Input => self.devices.0 = device,
            DeviceRole::Output => self.devices.1 = device,
            DeviceRole::Ring => self.devices.2 = device,
        }
        let (input, output, ring) = self.devices.clone();
        Event::Devices {
            input,
            output,
            ring,
        }
    }

    /// Translates an order (`now`: the wall-clock time, for recording names); remembers which
    /// call owns the line.
    pub fn order(&mut self, order: MediaOrder, now: SystemTime) -> Option<Control> {
        match order {
            MediaOrder::Line {
                line,
                call_id,
                stream,
                tone,
            } => {
                let index = index(line)?;
                if self.calls.len() <= index {
                    self.calls.resize(index + 1, None);
                }
                self.calls[index] = (stream.is_some() || tone.is_some()).then_some(call_id);
                Some(Control::Line {
                    line: index,
                    stream: stream.map(stream_params),
                    tone: tone.map(|t| match t {
                        Tone::Ringback => LineTone::Ringback,
                        Tone::Ring => LineTone::Ring,
                    }),
                })
            }
            MediaOrder::Beep => Some(Control::SoundCheck(SoundOrder::Beep)),
            MediaOrder::Dtmf { line, digits } => Some(Control::Dtmf {
                line: index(line)?,
                digits,
            }),
            MediaOrder::StartRecording {
                line,
                call_id,
                incoming,
                peer,
            } => {
                let facts = CallFacts {
                    line,
                    incoming,
                    peer: &peer,
                };
                let format = self.recording.format;
                let local = chrono::DateTime::<chrono::Local>::from(now).fixed_offset();
                let file =
                    name::file_name(&self.recording.template, local, &facts, format.extension());
                Some(Control::StartRecording {
                    line: index(line)?,
                    call_id,
                    path: self.recording.dir.join(file),
                    format,
                })
            }
            MediaOrder::StopRecording {
                line,
                call_id,
                reason,
            } => Some(Control::StopRecording {
                line: index(line)?,
                call_id,
                reason,
            }),
        }
    }

    /// Translates a report into an event for the operator, if it is one.
    pub fn report(&mut self, report: Report) -> Option<Event> {
        match report {
            Report::Quality {
                line,
                codec,
                quality,
                buffer_ms,
            } => Some(Event::Quality {
                line: line_no(line),
                call_id: self.call(line)?,
                codec: codec_name(codec).to_string(),
                loss_pct: quality.loss_pct,
                jitter_ms: quality.jitter_ms,
                rtt_ms: quality.rtt_ms,
                buffer_ms,
            }),
            Report::Dtmf { line, digit } => Some(Event::Sip(sip::Event::Dtmf {
                line: line_no(line),
                call_id: self.call(line)?,
                digit,
            })),
            Report::Level { dbfs } => Some(Event::Level { dbfs }),
            Report::Device(DeviceNotice::Chosen { role, device }) => {
                Some(self.chosen(role, device))
            }
            Report::Device(notice) => Some(Event::Audio {
                message: match notice {
                    DeviceNotice::InputLost(what) => format!("microphone lost: {what}"),
                    DeviceNotice::OutputLost(what) => format!("headset output lost: {what}"),
                    DeviceNotice::Xruns { input, output } => {
                        format!("audio glitches: {input} input and {output} output under/overruns")
                    }
                    DeviceNotice::Switched(what) => what,
                    DeviceNotice::NotChosen {
                        role,
                        device,
                        reason,
                    } => format!(
                        "cannot use \"{device}\" as the {}: {reason}; the {} stays",
                        role_name(role),
                        role_name(role)
                    ),
                    DeviceNotice::Chosen { device, .. } => format!("now using \"{device}\""),
                },
            }),
            Report::RecordingStarted {
                line,
                call_id,
                path,
            } => Some(Event::Record {
                line: line_no(line),
                call_id,
                recording: true,
                path: path.display().to_string(),
                reason: None,
                duration_ms: None,
                dropped_frames: None,
            }),
            Report::RecordingStopped {
                line,
                call_id,
                path,
                reason,
                duration_ms,
                dropped_frames,
                ..
            } => Some(Event::Record {
                line: line_no(line),
                call_id,
                recording: false,
                path: path.display().to_string(),
                reason: Some(reason),
                duration_ms: Some(duration_ms),
                dropped_frames: Some(dropped_frames),
            }),
            Report::Silent { .. } => None,
            Report::Problem { line, message } => Some(Event::Sip(sip::Event::Error {
                message: format!("line {}: {message}", line_no(line)),
            })),
        }
    }

    /// The call whose line fell silent, and for how long, when `report` says so: the core
    /// decides whether that ends the call.
    pub fn silence(&self, report: &Report) -> Option<(String, u64)> {
        match report {
            Report::Silent { line, seconds } => Some((self.call(*line)?, *seconds)),
            _ => None,
        }
    }

    fn call(&self, index: usize) -> Option<String> {
        self.calls.get(index)?.clone()
    }
}

fn index(line: LineNo) -> Option<usize> {
    usize::from(line).checked_sub(1)
}

fn line_no(index: usize) -> LineNo {
    LineNo::try_from(index + 1).unwrap_or(LineNo::MAX)
}

fn codec_kind(codec: Codec) -> CodecKind {
    match codec {
        Codec::Opus => CodecKind::Opus,
        Codec::Pcmu => CodecKind::Pcmu,
        Codec::Pcma => CodecKind::Pcma,
        Codec::G722 => CodecKind::G722,
    }
}

fn codec_name(codec: CodecKind) -> &'static str {
    match codec {
        CodecKind::Opus => "opus",
        CodecKind::Pcmu => "PCMU",
        CodecKind::Pcma => "PCMA",
        CodecKind::G722 => "G722",
    }
}

fn stream_params(s: Stream) -> StreamParams {
    StreamParams {
        codec: codec_kind(s.codec),
        payload_type: s.payload_type,
        remote: s.remote,
        remote_rtcp: s.remote_rtcp,
        send: matches!(s.direction, Direction::SendRecv | Direction::SendOnly),
        receive: matches!(s.direction, Direction::SendRecv | Direction::RecvOnly),
        dtmf_payload_type: s.dtmf_payload_type,
        max_bitrate: s.max_bitrate,
        ptime: s.ptime,
        source: match s.source {
            Source::Microphone => SendSource::Microphone,
            Source::MusicOnHold => SendSource::MusicOnHold,
            Source::Conference => SendSource::Conference,
        },
        muted: s.muted,
        srtp: s.srtp.map(|m| SrtpKeys {
            suite: match m.suite {
                CryptoSuite::AesCm128HmacSha1_80 => SrtpSuite::AesCm128HmacSha1_80,
                CryptoSuite::AesCm128HmacSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
            },
            local: m.local,
            remote: m.remote,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::recorder::RecordFormat;
    use crate::media::rtcp::Quality;
    use std::path::PathBuf;
    use std::time::{Duration, UNIX_EPOCH};

    fn bridge() -> MediaBridge {
        MediaBridge::new(RecordingSetup {
            dir: PathBuf::from("/rec"),
            format: RecordFormat::OggOpus,
            template: "{date}_{time}_{line}_{direction}_{number}".into(),
            auto: false,
        })
    }

    fn at() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_751_293_503)
    }

    fn line_order(direction: Direction) -> MediaOrder {
        MediaOrder::Line {
            line: 2,
            call_id: "c2".into(),
            stream: Some(Stream {
                codec: Codec::Opus,
                payload_type: 111,
                remote: "127.0.0.3:4000".parse().expect("addr"),
                remote_rtcp: "127.0.0.3:4001".parse().expect("addr"),
                direction,
                dtmf_payload_type: Some(110),
                max_bitrate: Some(16_000),
                ptime: Some(20),
                source: Source::MusicOnHold,
                muted: false,
                srtp: None,
            }),
            tone: None,
        }
    }

    #[test]
    fn orders_map_lines_directions_and_sources() {
        let mut bridge = bridge();
        let Some(Control::Line {
            line: 1,
            stream: Some(p),
            tone: None,
        }) = bridge.order(line_order(Direction::SendOnly), at())
        else {
            panic!("a line control for index 1");
        };
        assert_eq!(p.codec, CodecKind::Opus);
        assert!(p.send && !p.receive);
        assert_eq!(p.source, SendSource::MusicOnHold);
        assert!(bridge
            .order(
                MediaOrder::Dtmf {
                    line: 0,
                    digits: "1".into()
                },
                at()
            )
            .is_none());
    }

    #[test]
    fn reports_name_the_call_of_the_line() {
        let mut bridge = bridge();
        bridge.order(line_order(Direction::SendRecv), at());
        let quality = Quality {
            loss_pct: 1.5,
            jitter_ms: 3.0,
            rtt_ms: None,
            packets_received: 100,
            packets_lost: 2,
        };
        let ev = bridge.report(Report::Quality {
            line: 1,
            codec: CodecKind::Opus,
            quality,
            buffer_ms: 45,
        });
        assert!(
            matches!(ev, Some(Event::Quality { line: 2, ref call_id, buffer_ms: 45, loss_pct, .. })
                if call_id == "c2" && loss_pct == 1.5)
        );
        assert!(
            bridge
                .report(Report::Dtmf {
                    line: 0,
                    digit: '5'
                })
                .is_none(),
            "no call on line 1"
        );
    }

    #[test]
    fn recording_orders_get_a_named_path_and_reports_become_record_events() {
        let mut bridge = bridge();
        let control = bridge.order(
            MediaOrder::StartRecording {
                line: 2,
                call_id: "c2".into(),
                incoming: true,
                peer: "sip:+4420 7946@pbx".into(),
            },
            at(),
        );
        let Some(Control::StartRecording {
            line: 1,
            call_id,
            path,
            format: RecordFormat::OggOpus,
        }) = control
        else {
            panic!("a start control for index 1: {control:?}");
        };
        assert_eq!(call_id, "c2");
        assert_eq!(
            path,
            PathBuf::from("/rec/2025-06-30_142503_2_in_+4420_7946.opus")
        );
        let ev = bridge.report(Report::RecordingStopped {
            line: 1,
            call_id: "c2".into(),
            path,
            reason: "the call ended".into(),
            failed: false,
            duration_ms: 1500,
            dropped_frames: 0,
        });
        assert_eq!(
            ev,
            Some(Event::Record {
                line: 2,
                call_id: "c2".into(),
                recording: false,
                path: "/rec/2025-06-30_142503_2_in_+4420_7946.opus".into(),
                reason: Some("the call ended".into()),
                duration_ms: Some(1500),
                dropped_frames: Some(0),
            })
        );
        assert!(matches!(
            bridge.order(
                MediaOrder::StopRecording {
                    line: 2,
                    call_id: "c2".into(),
                    reason: "stopped by the operator".into()
                },
                at()
            ),
            Some(Control::StopRecording { line: 1, .. })
        ));
    }

    #[test]
    fn a_chosen_device_updates_the_devices_in_use() {
        let mut bridge = bridge();
        bridge.note(&Event::Devices {
            input: "default".into(),
            output: "default".into(),
            ring: "headset".into(),
        });
        let ev = bridge.report(Report::Device(DeviceNotice::Chosen {
            role: DeviceRole::Output,
            device: "USB Headset".into(),
        }));
        assert_eq!(
            ev,
            Some(Event::Devices {
                input: "default".into(),
                output: "USB Headset".into(),
                ring: "headset".into(),
            })
        );
        let ev = bridge.report(Report::Device(DeviceNotice::NotChosen {
            role: DeviceRole::Input,
            device: "Gone".into(),
            reason: "no input device named \"Gone\"".into(),
        }));
        assert_eq!(
            ev,
            Some(Event::Audio {
                message: "cannot use \"Gone\" as the microphone: no input device named \"Gone\"; \
                          the microphone stays"
                    .into()
            })
        );
    }
}
