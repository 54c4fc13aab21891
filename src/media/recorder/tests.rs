//! The recorder on real files in a temporary directory: channels come back where they were
//! put, flushed files are valid while still being written, Ogg pages are laid out as RFC 7845
//! says, and a full ring drops rather than waits.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::writer::FLUSH_FRAMES;
use super::*;
use crate::media::api::Report;

/// A frame of a sine at `hz` (a whole number of periods per frame for multiples of 100 Hz).
fn tone(hz: f64) -> Frame {
    let mut frame = [0i16; FRAME_SAMPLES];
    for (i, s) in frame.iter_mut().enumerate() {
        let phase = std::f64::consts::TAU * hz * i as f64 / 48_000.0;
        *s = (8000.0 * phase.sin()) as i16;
    }
    frame
}

fn rms(samples: &[i16]) -> f64 {
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len().max(1) as f64).sqrt()
}

/// Energy at `hz` (Goertzel), normalised so a full-scale-ish sine gives roughly its amplitude.
fn level_at(samples: &[i16], hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / 48_000.0;
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    2.0 * power.sqrt() / samples.len().max(1) as f64
}

/// Stops line 0's recording and waits (bounded) for the writer's reports.
fn stop_and_collect(recordings: &mut Recordings, call_id: &str) -> Vec<Report> {
    assert!(recordings.stop(0, call_id, "stopped by the operator"));
    collect_until_stopped(recordings)
}

fn collect_until_stopped(recordings: &mut Recordings) -> Vec<Report> {
    let mut reports = Vec::new();
    for _ in 0..500 {
        recordings.poll(&mut |r| reports.push(r));
        if reports
            .iter()
            .any(|r| matches!(r, Report::RecordingStopped { .. }))
        {
            return reports;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("the writer did not finish within 5 s: {reports:?}");
}

fn stopped_path(reports: &[Report]) -> PathBuf {
    reports
        .iter()
        .find_map(|r| match r {
            Report::RecordingStopped { path, .. } => Some(path.clone()),
            _ => None,
        })
        .expect("a stop report")
}

/// Samples of one channel of an interleaved stereo buffer.
fn channel(interleaved: &[i16], which: usize) -> Vec<i16> {
    interleaved.iter().skip(which).step_by(2).copied().collect()
}

#[test]
fn wav_keeps_the_operator_left_and_the_far_end_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sub/dir/call.wav");
    let mut recordings = Recordings::default();
    recordings
        .start(0, "c1".into(), path.clone(), RecordFormat::Wav)
        .expect("start");
    let (left, right) = (tone(1000.0), tone(600.0));
    // 1.2 s of frames.
    let frames = 6 * TICKS_PER_SECOND / 5;
    for _ in 0..frames {
        recordings.push(0, &left, &right);
        recordings.push(1, &right, &left); // another line: not in this file
    }
    let reports = stop_and_collect(&mut recordings, "c1");
    assert!(matches!(
        &reports[0],
        Report::RecordingStarted { line: 0, call_id, path: p } if call_id == "c1" && *p == path
    ));
    assert!(matches!(
        reports.last(),
        Some(Report::RecordingStopped { failed: false, duration_ms: 1200, dropped_frames: 0, reason, .. })
            if reason == "stopped by the operator"
    ));
    let mut reader = hound::WavReader::open(&path).expect("a valid WAV");
    assert_eq!(
        reader.spec(),
        hound::WavSpec {
            channels: 2,
            sample_rate: 48_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        }
    );
    assert_eq!(reader.duration(), frames * FRAME_SAMPLES as u32);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("sample"))
        .collect();
    let (l, r) = (channel(&samples, 0), channel(&samples, 1));
    assert_eq!(&l[..FRAME_SAMPLES], &left[..]);
    assert_eq!(&r[..FRAME_SAMPLES], &right[..]);
    assert!(level_at(&l, 1000.0) > 10.0 * level_at(&l, 600.0));
    assert!(level_at(&r, 600.0) > 10.0 * level_at(&r, 1000.0));
}

#[test]
fn an_existing_file_is_never_overwritten() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("call.wav");
    std::fs::write(&path, b"keep me").expect("write");
    let mut recordings = Recordings::default();
    recordings
        .start(0, "c1".into(), path.clone(), RecordFormat::Wav)
        .expect("start");
    recordings.push(0, &tone(1000.0), &tone(600.0));
    let reports = stop_and_collect(&mut recordings, "c1");
    assert_eq!(stopped_path(&reports), dir.path().join("call-2.wav"));
    assert_eq!(std::fs::read(&path).expect("read"), b"keep me");
}

#[test]
fn a_second_start_on_a_recording_line_is_refused_and_stop_needs_the_same_call() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut recordings = Recordings::default();
    let path = dir.path().join("a.wav");
    recordings
        .start(0, "c1".into(), path.clone(), RecordFormat::Wav)
        .expect("start");
    let again = recordings.start(0, "c1".into(), dir.path().join("b.wav"), RecordFormat::Wav);
    assert!(again.is_err_and(|e| e.contains("already recording")));
    assert!(!recordings.stop(0, "other-call", "x"));
    assert!(!recordings.stop(1, "c1", "x"));
    stop_and_collect(&mut recordings, "c1");
}

#[test]
fn a_file_that_cannot_be_created_is_a_failed_stop() {
    let dir = tempfile::tempdir().expect("tempdir");
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").expect("write");
    let mut recordings = Recordings::default();
    recordings
        .start(0, "c1".into(), blocker.join("call.wav"), RecordFormat::Wav)
        .expect("start");
    let reports = collect_until_stopped(&mut recordings);
    assert!(matches!(
        reports.as_slice(),
        [Report::RecordingStopped { failed: true, reason, .. }] if reason.contains("cannot create")
    ));
    // The line is free again.
    recordings
        .start(0, "c1".into(), dir.path().join("ok.wav"), RecordFormat::Wav)
        .expect("start again");
    stop_and_collect(&mut recordings, "c1");
}

#[test]
fn a_full_ring_drops_frames_and_counts_them_without_waiting() {
    let mut recordings = Recordings::default();
    // A tap whose writer never reads: the ring fills up.
    let (producer, consumer) = rtrb::RingBuffer::new(RING_FRAMES);
    recordings.taps.push(Tap {
        id: 99,
        line: 0,
        call_id: "c1".into(),
        path: PathBuf::from("unused.wav"),
        producer: Some(producer),
        dropped: 0,
        reason: None,
        thread: None,
    });
    let frame = tone(1000.0);
    for _ in 0..RING_FRAMES + 10 {
        recordings.push(0, &frame, &frame);
    }
    assert_eq!(consumer.slots(), RING_FRAMES);
    assert_eq!(recordings.taps[0].dropped, 10);
}

#[test]
fn a_flushed_wav_is_valid_while_still_being_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.wav");
    let mut sink = WavSink::new(File::create(&path).expect("create")).expect("sink");
    let frame = StereoFrame {
        left: tone(1000.0),
        right: tone(600.0),
    };
    for _ in 0..FLUSH_FRAMES {
        sink.write(&frame).expect("write");
    }
    sink.flush().expect("flush");
    for _ in 0..10 {
        sink.write(&frame).expect("write"); // not flushed: as if killed now
    }
    let reader = hound::WavReader::open(&path).expect("valid mid-recording");
    assert_eq!(
        reader.duration(),
        FLUSH_FRAMES as u32 * FRAME_SAMPLES as u32
    );
    drop(sink);
}

/// A WAV or RF64 file read by its own sizes (EBU Tech 3306): whether it is RF64, the `ds64`
/// sample count if any, and the interleaved samples the header covers.
fn read_wav_or_rf64(path: &Path) -> (bool, Option<u64>, Vec<i16>) {
    let bytes = std::fs::read(path).expect("read");
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let rf64 = match &bytes[..4] {
        b"RF64" => true,
        b"RIFF" => false,
        other => panic!("not a WAV: {other:?}"),
    };
    assert_eq!(&bytes[8..12], b"WAVE");
    assert_eq!(
        u32_at(4) == u32::MAX,
        rf64,
        "an RF64 RIFF size is 0xFFFFFFFF"
    );
    let (mut at, mut ds64, mut fmt) = (12, None, false);
    loop {
        let (id, size) = (&bytes[at..at + 4], u32_at(at + 4));
        let body = at + 8;
        match id {
            b"ds64" => {
                assert!(rf64, "ds64 only in RF64");
                assert_eq!(at, 12, "ds64 is the first chunk");
                // Samples written after the last flush may follow what the sizes cover.
                assert!(u64_at(body) <= bytes.len() as u64 - 8, "64-bit RIFF size");
                assert_eq!(u64_at(body), wav::HEADER_BYTES - 8 + u64_at(body + 8));
                ds64 = Some((u64_at(body + 8), u64_at(body + 16)));
            }
            b"fmt " => {
                assert_eq!(u16::from_le_bytes([bytes[body], bytes[body + 1]]), 1, "PCM");
                assert_eq!(u16::from_le_bytes([bytes[body + 2], bytes[body + 3]]), 2);
                assert_eq!(u32_at(body + 4), 48_000);
                fmt = true;
            }
            b"data" => {
                assert!(fmt, "fmt before data");
                let len = match ds64 {
                    Some((data, _)) => {
                        assert_eq!(size, u32::MAX);
                        data
                    }
                    None => u64::from(size),
                };
                let end = body + usize::try_from(len).expect("fits");
                assert!(end <= bytes.len(), "the header covers only what is on disk");
                let samples = bytes[body..end]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                return (rf64, ds64.map(|(_, count)| count), samples);
            }
            _ => {}
        }
        at = body + size as usize + (size as usize & 1);
    }
}

#[test]
fn a_wav_turns_rf64_past_the_riff_limit_and_stays_valid_at_every_flush() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("long.wav");
    let frame_bytes = 4 * FRAME_SAMPLES as u64;
    // Room for exactly 10 frames as a plain WAV.
    let limit = wav::HEADER_BYTES - 8 + 10 * frame_bytes;
    let mut sink = WavSink::with_limit(File::create(&path).expect("create"), limit).expect("sink");
    let frame = |n: i16| StereoFrame {
        left: [n; FRAME_SAMPLES],
        right: [-n; FRAME_SAMPLES],
    };
    for n in 0..10 {
        sink.write(&frame(n)).expect("write");
    }
    sink.flush().expect("flush");
    // At the limit: a plain WAV that any reader takes (hound skips the JUNK chunk).
    let (rf64, _, samples) = read_wav_or_rf64(&path);
    assert!(!rf64);
    assert_eq!(samples.len(), 10 * 2 * FRAME_SAMPLES);
    let reader = hound::WavReader::open(&path).expect("a plain WAV under the limit");
    assert_eq!(reader.duration(), 10 * FRAME_SAMPLES as u32);

    // One frame more: RF64, with every sample still there, in order.
    sink.write(&frame(10)).expect("write");
    sink.flush().expect("flush");
    let (rf64, count, samples) = read_wav_or_rf64(&path);
    assert!(rf64, "past the limit");
    assert_eq!(count, Some(11 * FRAME_SAMPLES as u64), "ds64 sample count");
    assert_eq!(samples.len(), 11 * 2 * FRAME_SAMPLES);
    for (i, pair) in samples.chunks_exact(2).enumerate() {
        let n = (i / FRAME_SAMPLES) as i16;
        assert_eq!(pair, [n, -n], "sample frame {i}");
    }

    // Killed between flushes: the header covers what was flushed, the rest is ignored.
    for n in 11..11 + FLUSH_FRAMES as i16 {
        sink.write(&frame(n)).expect("write");
    }
    sink.flush().expect("flush");
    for n in 0..FLUSH_FRAMES as i16 - 1 {
        sink.write(&frame(n)).expect("write"); // not flushed: as if killed now
    }
    let (_, count, samples) = read_wav_or_rf64(&path);
    let flushed = 11 + FLUSH_FRAMES;
    assert_eq!(count, Some(flushed * FRAME_SAMPLES as u64));
    assert_eq!(samples.len() as u64, flushed * 2 * FRAME_SAMPLES as u64);
    std::mem::forget(sink);

    // Finished: the whole recording.
    let path = dir.path().join("finished.wav");
    let mut sink: Box<dyn Sink> =
        Box::new(WavSink::with_limit(File::create(&path).expect("create"), limit).expect("sink"));
    for n in 0..30 {
        sink.write(&frame(n)).expect("write");
    }
    sink.finish().expect("finish");
    let (rf64, count, samples) = read_wav_or_rf64(&path);
    assert!(rf64 && count == Some(30 * FRAME_SAMPLES as u64));
    assert_eq!(samples.len(), 30 * 2 * FRAME_SAMPLES);
}

#[test]
fn the_real_limit_is_the_4_gib_of_a_32_bit_riff_size() {
    assert_eq!(wav::RIFF_LIMIT, u64::from(u32::MAX));
    // Stereo 48 kHz 16-bit: 192,000 bytes a second, so about 6 h 12 min fit in a plain WAV.
    let seconds = (wav::RIFF_LIMIT - (wav::HEADER_BYTES - 8)) / (48_000 * 4);
    assert_eq!(seconds / 60, 372);
}

/// Every packet of an Ogg file, with its page's granule position, tolerating a missing end.
fn ogg_packets(path: &Path) -> Vec<ogg::Packet> {
    let mut reader = ogg::PacketReader::new(File::open(path).expect("open"));
    let mut packets = Vec::new();
    while let Ok(Some(packet)) = reader.read_packet() {
        packets.push(packet);
    }
    packets
}

#[test]
fn ogg_opus_has_its_headers_granules_and_both_channels() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("call.opus");
    let mut recordings = Recordings::default();
    recordings
        .start(0, "c1".into(), path.clone(), RecordFormat::OggOpus)
        .expect("start");
    let silence = [0i16; FRAME_SAMPLES];
    // 2 s of frames.
    let frames = 2 * TICKS_PER_SECOND;
    for _ in 0..frames {
        recordings.push(0, &tone(1000.0), &silence);
    }
    let reports = stop_and_collect(&mut recordings, "c1");
    assert!(matches!(
        reports.last(),
        Some(Report::RecordingStopped {
            failed: false,
            duration_ms: 2000,
            ..
        })
    ));
    let packets = ogg_packets(&path);
    assert_eq!(
        packets.len(),
        2 + frames as usize,
        "OpusHead, OpusTags, one packet per frame"
    );
    let head = &packets[0].data;
    assert_eq!(&head[..8], b"OpusHead");
    assert_eq!(head.len(), 19);
    assert_eq!((head[8], head[9]), (1, 2), "version 1, two channels");
    let pre_skip = u64::from(u16::from_le_bytes([head[10], head[11]]));
    assert_eq!(
        u32::from_le_bytes([head[12], head[13], head[14], head[15]]),
        48_000
    );
    assert!(packets[0].first_in_stream() && packets[0].last_in_page());
    assert_eq!(&packets[1].data[..8], b"OpusTags");
    assert!(packets[1].last_in_page(), "OpusTags ends its page");
    assert_eq!(packets[1].absgp_page(), 0);
    let last = packets.last().expect("audio");
    assert!(last.last_in_stream(), "the stream is ended");
    assert_eq!(
        last.absgp_page(),
        pre_skip + u64::from(frames) * FRAME_SAMPLES as u64
    );
    // Pages close at least every FLUSH_PACKETS packets.
    let mut in_page = 0;
    for p in &packets[2..] {
        in_page += 1;
        if p.last_in_page() {
            assert!(in_page <= ogg_opus::FLUSH_PACKETS);
            assert_eq!(
                p.absgp_page() % FRAME_SAMPLES as u64,
                pre_skip % FRAME_SAMPLES as u64
            );
            in_page = 0;
        }
    }
    let mut decoder = opus::Decoder::new(48_000, opus::Channels::Stereo).expect("decoder");
    let mut pcm = Vec::new();
    let mut out = [0i16; 2 * FRAME_SAMPLES];
    for p in &packets[2..] {
        let n = decoder.decode(&p.data, &mut out, false).expect("decodable");
        pcm.extend_from_slice(&out[..2 * n]);
    }
    let steady = &pcm[pcm.len() / 2..];
    let (l, r) = (channel(steady, 0), channel(steady, 1));
    assert!(level_at(&l, 1000.0) > 2000.0, "left carries the tone");
    assert!(rms(&r) < 300.0, "right stays quiet: rms {}", rms(&r));
}

#[test]
fn an_ogg_file_cut_short_still_parses_up_to_its_last_page() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("live.opus");
    let mut sink = OggOpusSink::new(File::create(&path).expect("create"), 7).expect("sink");
    let frame = StereoFrame {
        left: tone(1000.0),
        right: tone(600.0),
    };
    let written = 3 * ogg_opus::FLUSH_PACKETS + 5;
    for _ in 0..written {
        sink.write(&frame).expect("write");
    }
    sink.flush().expect("flush");
    // As if killed now: read what is on disk while the sink lives.
    let packets = ogg_packets(&path);
    let audio = (packets.len() - 2) as u32;
    assert!(
        audio <= written && written - audio <= ogg_opus::FLUSH_PACKETS,
        "{audio} of {written} packets on disk"
    );
    assert!(packets.iter().all(|p| p.stream_serial() == 7));
    drop(sink);
}
