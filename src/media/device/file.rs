//! The file and null back-ends: a WAV file as the microphone, a WAV file as
//! the headset.
//!
//! Owns the media-thread ends of the input and the output: the input is
//! streamed by `file_input.rs` (any rate and format converted to 48 kHz mono
//! 16-bit, two seconds in memory), the output written by `file_output.rs`'s
//! thread (48 kHz mono 16-bit, flushed about once a second so a crash loses at
//! most a second and leaves a valid file, finalized on drop). Neither side
//! touches the disk on the media thread. It must not read a clock or allocate
//! per frame; a write error becomes an [`DeviceNotice::OutputLost`], never a
//! panic.
//!
//! ```text
//!   input.wav ─ reader thread (file_input.rs) ─► ring (2 s, 48 kHz i16) ─► read_frame
//!                                                   (once: false after the end; looping: wraps)
//!   write_ring_frame ─► RingMix ─┐
//!   write_frame ─────────────────┴─ saturating add ─► ring ─► writer thread (file_output.rs) ─► output.wav
//!   resume(missed): the input skips, the output gets silence: tick k stays the file's frame k
//!   switch(in|out, PATH): opened on a helper thread, takes over between two frames
//! ```

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use super::file_input::FileInput;
use super::file_output::FileOutput;
use super::{AudioDevice, DeviceError, DeviceNotice, RingMix};
use crate::media::Frame;
use crate::sound::DeviceRole;

/// WAV files (or nothing) in place of a sound card.
pub(super) struct FileDevice {
    input: Option<FileInput>,
    looping: bool,
    /// The null back-end: no files, nothing to switch to.
    null: bool,
    output: Option<FileOutput>,
    ring: RingMix,
    notices: VecDeque<DeviceNotice>,
    /// A switch under way: the role, the file, and the helper thread's answer.
    switching: Option<(DeviceRole, String, mpsc::Receiver<Opening>)>,
}

/// What the helper thread of a switch hands back.
type Opening = Result<Opened, DeviceError>;

/// A file opened for a switch.
enum Opened {
    Input(FileInput),
    Output(FileOutput),
}

impl FileDevice {
    /// Opens `input` (streamed) and creates `output`; either may be absent.
    pub(super) fn open(
        input: Option<&Path>,
        looping: bool,
        output: Option<&Path>,
    ) -> Result<FileDevice, DeviceError> {
        let input = match input {
            Some(path) => Some(FileInput::open(path, looping)?),
            None => None,
        };
        let output = match output {
            Some(path) => Some(FileOutput::create(path)?),
            None => None,
        };
        Ok(FileDevice {
            input,
            looping,
            null: false,
            output,
            ring: RingMix::new(),
            notices: VecDeque::new(),
            switching: None,
        })
    }

    /// No input, no output.
    pub(super) fn null() -> FileDevice {
        FileDevice {
            input: None,
            looping: false,
            null: true,
            output: None,
            ring: RingMix::new(),
            notices: VecDeque::new(),
            switching: None,
        }
    }

    /// The answer of a switch under way, once it is in.
    fn poll_switch(&mut self) -> Option<DeviceNotice> {
        let (role, name, answer) = self.switching.as_ref()?;
        let result = match answer.try_recv() {
            Err(mpsc::TryRecvError::Empty) => return None,
            Ok(result) => result,
            Err(mpsc::TryRecvError::Disconnected) => Err(DeviceError::Host(
                "the thread opening the file ended".into(),
            )),
        };
        let (role, device) = (*role, name.clone());
        self.switching = None;
        Some(match result {
            Ok(opened) => {
                match opened {
                    Opened::Input(input) => self.input = Some(input),
                    // The old file is finished on the helper's way out, not here.
                    Opened::Output(output) => {
                        if let Some(old) = self.output.replace(output) {
                            let _ = thread::Builder::new()
                                .name("audio-close".into())
                                .spawn(move || drop(old));
                        }
                    }
                }
                DeviceNotice::Chosen { role, device }
            }
            Err(e) => DeviceNotice::NotChosen {
                role,
                device,
                reason: e.to_string(),
            },
        })
    }
}

impl AudioDevice for FileDevice {
    fn read_frame(&mut self, frame: &mut Frame) -> bool {
        match &mut self.input {
            Some(input) => input.read(frame),
            None => false,
        }
    }

    fn write_frame(&mut self, frame: &Frame) {
        let mut mixed = *frame;
        self.ring.mix_into(&mut mixed);
        let Some(output) = &mut self.output else {
            return;
        };
        output.push(&mixed);
        if let Some(why) = output.lost() {
            self.notices
                .push_back(DeviceNotice::OutputLost(why.to_owned()));
        }
    }

    fn write_ring_frame(&mut self, frame: &Frame) {
        self.ring.put(frame);
    }

    fn poll_notice(&mut self) -> Option<DeviceNotice> {
        if let Some(notice) = self.poll_switch() {
            self.notices.push_back(notice);
        }
        self.notices.pop_front()
    }

    /// `name` is a WAV file: the microphone's input (played from its start, looping as
    /// configured) or the headset's new recording. The ring has no file of its own.
    fn switch(&mut self, role: DeviceRole, name: &str) -> Option<DeviceNotice> {
        let refuse = |reason: &str| {
            Some(DeviceNotice::NotChosen {
                role,
                device: name.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.null {
            return refuse("the null audio backend has no devices to choose");
        }
        if self.switching.is_some() {
            return refuse("another device switch is under way");
        }
        let path = PathBuf::from(name);
        let looping = self.looping;
        let open: Box<dyn FnOnce() -> Result<Opened, DeviceError> + Send> = match role {
            DeviceRole::Input => {
                Box::new(move || FileInput::open(&path, looping).map(Opened::Input))
            }
            DeviceRole::Output => Box::new(move || FileOutput::create(&path).map(Opened::Output)),
            DeviceRole::Ring => return refuse("the file backend rings in the headset's file"),
        };
        let (tx, rx) = mpsc::channel();
        let spawned = thread::Builder::new()
            .name("audio-open".into())
            .spawn(move || {
                // The device may be gone by now (the engine stopped): the file then closes here.
                let _ = tx.send(open());
            });
        if let Err(e) = spawned {
            return refuse(&format!("cannot start a thread to open it: {e}"));
        }
        self.switching = Some((role, name.to_owned(), rx));
        None
    }

    fn is_switching(&self) -> bool {
        self.switching.is_some()
    }

    fn resume(&mut self, missed: u64) {
        if let Some(input) = &mut self.input {
            input.skip(missed);
        }
        if let Some(output) = &mut self.output {
            output.pad(missed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{FRAME_SAMPLES, TICKS_PER_SECOND};
    use std::f64::consts::PI;

    /// Frames in `seconds`.
    fn frames(seconds: u32) -> usize {
        (seconds * TICKS_PER_SECOND) as usize
    }

    fn write_wav<S: hound::Sample + Copy>(path: &Path, spec: hound::WavSpec, samples: &[S]) {
        let mut w = hound::WavWriter::create(path, spec).expect("create test wav");
        for &s in samples {
            w.write_sample(s).expect("write test sample");
        }
        w.finalize().expect("finalize test wav");
    }

    fn spec(rate: u32, channels: u16, bits: u16, float: bool) -> hound::WavSpec {
        hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        }
    }

    /// Waits (at most 5 s) until the reader thread has queued a whole frame or ended, so a
    /// test reading faster than real time never sees an underrun.
    fn settle(dev: &FileDevice) {
        let Some(input) = &dev.input else { return };
        for _ in 0..5000 {
            if input.queued() >= FRAME_SAMPLES || input.ended() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        panic!("the file reader did not keep up");
    }

    /// [`AudioDevice::read_frame`] once the reader has caught up.
    fn read_settled(dev: &mut FileDevice, frame: &mut Frame) -> bool {
        settle(dev);
        dev.read_frame(frame)
    }

    fn read_all(dev: &mut FileDevice, max_frames: usize) -> Vec<i16> {
        let mut out = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..max_frames {
            if !read_settled(dev, &mut frame) {
                break;
            }
            out.extend_from_slice(&frame);
        }
        out
    }

    fn read_wav(path: &Path) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::open(path).expect("readable wav");
        let samples = r
            .samples::<i16>()
            .collect::<Result<Vec<_>, _>>()
            .expect("samples");
        (r.spec(), samples)
    }

    #[test]
    fn mono_48k_16_bit_round_trips_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.wav");
        let samples: Vec<i16> = (0..2 * FRAME_SAMPLES as i32)
            .map(|i| (i * 37 % 65536 - 32768) as i16)
            .collect();
        write_wav(&path, spec(48_000, 1, 16, false), &samples);
        let mut dev = FileDevice::open(Some(&path), false, None).expect("open");
        assert_eq!(read_all(&mut dev, 10), samples);
    }

    #[test]
    fn stereo_8k_becomes_48k_mono_at_the_same_pitch() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.wav");
        // 1 s of 1 kHz: left at 0.6, right at 0.2 → mono 0.4.
        let mut samples = Vec::new();
        for n in 0..8000 {
            let s = (2.0 * PI * 1000.0 * f64::from(n) / 8000.0).sin();
            samples.push((0.6 * 32767.0 * s).round() as i16);
            samples.push((0.2 * 32767.0 * s).round() as i16);
        }
        write_wav(&path, spec(8000, 2, 16, false), &samples);
        let mut dev = FileDevice::open(Some(&path), false, None).expect("open");
        let out = read_all(&mut dev, frames(2));
        assert_eq!(out.len(), frames(1) * FRAME_SAMPLES, "1 s of frames");
        let mid = &out[4800..43_200];
        let crossings = mid.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
        let freq = crossings as f64 * 48_000.0 / mid.len() as f64 / 2.0;
        assert!((freq - 1000.0).abs() < 3.0, "1 kHz came out as {freq} Hz");
        let rms = (mid.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / mid.len() as f64)
            .sqrt()
            / 32768.0;
        let expected = 0.4 / 2f64.sqrt();
        assert!((rms - expected).abs() < 0.02 * expected, "rms {rms}");
    }

    #[test]
    fn wide_and_float_samples_are_scaled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p24 = dir.path().join("24.wav");
        write_wav(
            &p24,
            spec(48_000, 1, 24, false),
            &[4_194_304i32, -8_388_608, 256],
        );
        let pf = dir.path().join("f.wav");
        write_wav(&pf, spec(48_000, 1, 32, true), &[0.5f32, -1.0, 2.0]);
        let p8 = dir.path().join("8.wav");
        write_wav(&p8, spec(48_000, 1, 8, false), &[64i8, -128]);
        let mut frame = [1i16; FRAME_SAMPLES];
        let mut d24 = FileDevice::open(Some(&p24), false, None).expect("24-bit");
        assert!(d24.read_frame(&mut frame));
        assert_eq!(frame[..4], [16384, -32768, 1, 0]);
        let mut df = FileDevice::open(Some(&pf), false, None).expect("float");
        assert!(df.read_frame(&mut frame));
        assert_eq!(frame[..4], [16384, -32768, 32767, 0]);
        let mut d8 = FileDevice::open(Some(&p8), false, None).expect("8-bit");
        assert!(d8.read_frame(&mut frame));
        assert_eq!(frame[..3], [16384, -32768, 0]);
    }

    #[test]
    fn once_ends_and_looping_wraps() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("in.wav");
        const F: usize = FRAME_SAMPLES;
        let samples: Vec<i16> = (1..=3 * F / 2).map(|i| i as i16).collect(); // 1.5 frames
        write_wav(&path, spec(48_000, 1, 16, false), &samples);
        let mut frame = [0i16; FRAME_SAMPLES];

        let mut once = FileDevice::open(Some(&path), false, None).expect("open");
        assert!(once.read_frame(&mut frame));
        assert_eq!(frame[F - 1], F as i16);
        frame.fill(-1);
        assert!(
            once.read_frame(&mut frame),
            "the last partial frame is audio"
        );
        assert_eq!(frame[0], F as i16 + 1);
        assert_eq!(frame[F / 2 - 1], (3 * F / 2) as i16);
        assert!(
            frame[F / 2..].iter().all(|&s| s == 0),
            "padded with silence"
        );
        assert!(!once.read_frame(&mut frame), "then the input has ended");
        assert!(!once.read_frame(&mut frame));

        let mut looping = FileDevice::open(Some(&path), true, None).expect("open");
        for _ in 0..1000 {
            assert!(read_settled(&mut looping, &mut frame));
        }
        // 1000 frames = 666 loops of 1.5 frames + 1 frame: the next starts at sample F + 1.
        assert!(read_settled(&mut looping, &mut frame));
        assert_eq!(frame[0], F as i16 + 1);
        assert_eq!(frame[F / 2 - 1], (3 * F / 2) as i16);
        assert_eq!(frame[F / 2], 1, "wrapped seamlessly");
    }

    /// `n` samples counting up (wrapping at 30 000), so a sample's value says where it is.
    fn ramp(n: usize) -> Vec<i16> {
        (0..n).map(|i| (i % 30_000) as i16).collect()
    }

    #[test]
    fn a_file_longer_than_the_ring_streams_exactly() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("long.wav");
        let samples = ramp(5 * 48_000); // 5 s: more than twice the ring
        write_wav(&path, spec(48_000, 1, 16, false), &samples);
        let mut dev = FileDevice::open(Some(&path), false, None).expect("open");
        assert_eq!(read_all(&mut dev, frames(6)), samples);
    }

    #[test]
    fn resuming_skips_the_input_and_pads_the_output() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("long.wav");
        let out = dir.path().join("out.wav");
        let samples = ramp(5 * 48_000);
        write_wav(&path, spec(48_000, 1, 16, false), &samples);
        let mut dev = FileDevice::open(Some(&path), false, Some(&out)).expect("open");
        let mut frame = [0i16; FRAME_SAMPLES];
        assert!(read_settled(&mut dev, &mut frame));
        dev.write_frame(&frame);
        // Idle for 3 s: more than is queued, so the reader owes the rest.
        let idle = frames(3);
        dev.pause();
        dev.resume(idle as u64);
        assert!(read_settled(&mut dev, &mut frame));
        let k = idle + 1;
        assert_eq!(
            frame[..],
            samples[k * FRAME_SAMPLES..(k + 1) * FRAME_SAMPLES],
            "tick k reads the file's frame k"
        );
        dev.write_frame(&frame);
        drop(dev);
        let (_, written) = read_wav(&out);
        assert_eq!(written.len(), (k + 1) * FRAME_SAMPLES, "one frame per tick");
        assert!(written[FRAME_SAMPLES..k * FRAME_SAMPLES]
            .iter()
            .all(|&s| s == 0));
        assert_eq!(written[k * FRAME_SAMPLES..], frame);

        // Looping: a skip of many passes lands where the clock says.
        let clip = ramp(3 * FRAME_SAMPLES / 2);
        write_wav(&path, spec(48_000, 1, 16, false), &clip);
        let mut looping = FileDevice::open(Some(&path), true, None).expect("open");
        looping.resume(1001);
        assert!(read_settled(&mut looping, &mut frame));
        // Frame 1001 starts 667 passes of 1.5 frames and half a frame in.
        assert_eq!(frame[0], (FRAME_SAMPLES / 2) as i16);
        assert_eq!(frame[FRAME_SAMPLES - 1], (3 * FRAME_SAMPLES / 2 - 1) as i16);

        // Played once and skipped past its end: ended.
        let mut once = FileDevice::open(Some(&path), false, None).expect("open");
        once.resume(5);
        assert!(!once.read_frame(&mut frame));
    }

    #[test]
    fn no_input_file_and_empty_file_are_silent() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("empty.wav");
        write_wav::<i16>(&path, spec(8000, 1, 16, false), &[]);
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut empty = FileDevice::open(Some(&path), true, None).expect("open");
        assert!(!empty.read_frame(&mut frame));
        let mut none = FileDevice::open(None, true, None).expect("open");
        assert!(!none.read_frame(&mut frame));
    }

    #[test]
    fn missing_or_bad_input_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("nope.wav");
        let err = FileDevice::open(Some(&missing), false, None)
            .err()
            .expect("missing file is an error");
        assert!(matches!(err, DeviceError::InputFile { .. }));
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"this is not a wav file at all").expect("write");
        let err = FileDevice::open(Some(&junk), false, None)
            .err()
            .expect("junk is an error");
        assert!(err.to_string().contains("junk.wav"), "{err}");
    }

    #[test]
    fn output_that_cannot_be_created_names_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("no-such-dir").join("out.wav");
        let err = FileDevice::open(None, false, Some(&path))
            .err()
            .expect("cannot create");
        assert!(matches!(err, DeviceError::OutputFile { .. }));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn output_is_valid_while_open_and_complete_after_drop() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.wav");
        let mut dev = FileDevice::open(None, false, Some(&path)).expect("open");
        let frame: Frame = std::array::from_fn(|i| i as i16 - 480);
        let (queued, flushed_at) = (frames(6) / 5, frames(4) / 5);
        for _ in 0..queued {
            dev.write_frame(&frame);
        }
        // Still open, 1.2 s queued: the writer thread flushes within about a second, with a
        // valid header (waited for, at most 5 s).
        let mut flushed = read_wav(&path);
        for _ in 0..500 {
            if flushed.1.len() >= flushed_at * FRAME_SAMPLES {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            flushed = read_wav(&path);
        }
        let (spec, samples) = flushed;
        assert_eq!(spec.sample_rate, 48_000);
        assert_eq!(spec.channels, 1);
        assert_eq!(spec.bits_per_sample, 16);
        assert!(
            samples.len() >= flushed_at * FRAME_SAMPLES,
            "{}",
            samples.len()
        );
        assert_eq!(samples[..FRAME_SAMPLES], frame);
        drop(dev);
        let (_, samples) = read_wav(&path);
        assert_eq!(samples.len(), queued * FRAME_SAMPLES);
        assert_eq!(samples[(queued - 1) * FRAME_SAMPLES..], frame);
        assert_eq!(FileDevice::null().poll_notice(), None);
    }

    #[test]
    fn ring_is_mixed_into_the_next_headset_frame() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("out.wav");
        let mut dev = FileDevice::open(None, false, Some(&path)).expect("open");
        let voice = [30_000i16; FRAME_SAMPLES];
        let mut ring = [1000i16; FRAME_SAMPLES];
        ring[1] = -5000;
        dev.write_ring_frame(&ring);
        dev.write_frame(&voice);
        dev.write_frame(&voice);
        drop(dev);
        let (_, samples) = read_wav(&path);
        assert_eq!(samples.len(), 2 * FRAME_SAMPLES);
        assert_eq!(samples[0], 31_000);
        assert_eq!(samples[1], 25_000);
        assert_eq!(
            samples[FRAME_SAMPLES], 30_000,
            "the ring frame is used once"
        );
        let mut loud = FileDevice::open(None, false, Some(&path)).expect("reopen");
        loud.write_ring_frame(&[10_000; FRAME_SAMPLES]);
        loud.write_frame(&voice);
        drop(loud);
        assert_eq!(read_wav(&path).1[0], i16::MAX, "saturating add");
    }

    #[test]
    fn through_open_with_the_public_backend() {
        let dir = tempfile::tempdir().expect("tempdir");
        let input = dir.path().join("in.wav");
        let output = dir.path().join("out.wav");
        write_wav(&input, spec(16_000, 1, 16, false), &vec![1000i16; 3200]);
        let mut dev = super::super::open(&super::super::Backend::File {
            input: Some(input),
            looping: false,
            output: Some(output.clone()),
        })
        .expect("open");
        let mut frame = [0i16; FRAME_SAMPLES];
        let mut frames = 0;
        while dev.read_frame(&mut frame) {
            frames += 1;
            dev.write_frame(&frame);
        }
        let expected = TICKS_PER_SECOND / 5;
        assert_eq!(
            frames, expected,
            "0.2 s at 16 kHz is 0.2 s of frames at 48 kHz"
        );
        drop(dev);
        let (_, samples) = read_wav(&output);
        assert_eq!(samples.len(), expected as usize * FRAME_SAMPLES);
        assert!(
            (i32::from(samples[4800]) - 1000).abs() < 20,
            "{}",
            samples[4800]
        );
    }
}
