//! Recording on demand, end to end: two switchboard processes on loopback with file audio,
//! the caller playing 1 kHz and the callee 600 Hz. The caller records; its file must hold its
//! own tone on the left and the callee's on the right, in WAV and in Ogg Opus, started by
//! `record start` or by `[recording] auto`, ended by `record stop` or the hang-up; and a
//! recording cut by SIGKILL must still be a valid file missing at most the last half second
//! (the flush interval) and the frames queued for its writer: 0.6 s in all.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::{secs, Net, Switchboard, SwitchboardConfig};
use serde_json::Value;
use switchboard::config::Config;

/// The host number of the callee in the test's /24.
const CALLEE: u8 = 6;
/// The caller's and the callee's tone (Hz).
const CALLER_HZ: f64 = 1000.0;
const CALLEE_HZ: f64 = 600.0;
const RATE: u32 = 48_000;

#[allow(clippy::disallowed_methods)] // the test's own stopwatch for the SIGKILL check
fn epoch() -> Instant {
    Instant::now()
}

/// A 48 kHz mono WAV of a sine at `hz`, `seconds` long.
fn tone(path: &Path, hz: f64, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating a tone");
    for i in 0..RATE * seconds {
        let phase = std::f64::consts::TAU * hz * f64::from(i) / f64::from(RATE);
        w.write_sample((8000.0 * phase.sin()) as i16)
            .expect("writing a sample");
    }
    w.finalize().expect("finishing the tone");
}

/// Level of `hz` in `samples` (Goertzel), about the sine's amplitude for a pure tone.
fn level_at(samples: &[i16], hz: f64) -> f64 {
    let w = std::f64::consts::TAU * hz / f64::from(RATE);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0, 0.0);
    for &x in samples {
        let s0 = f64::from(x) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = (s1 * s1 + s2 * s2 - coeff * s1 * s2).max(0.0);
    2.0 * power.sqrt() / samples.len().max(1) as f64
}

/// Checks that `left` carries the caller's tone and `right` the callee's, each well above
/// the other's (one second from the middle of the recording, past any start-up).
fn assert_channels(left: &[i16], right: &[i16]) {
    let mid = left.len() / 2;
    let window = RATE as usize;
    assert!(left.len() >= 2 * window, "at least 2 s recorded");
    let l = &left[mid - window / 2..mid + window / 2];
    let r = &right[mid - window / 2..mid + window / 2];
    let (l_own, l_other) = (level_at(l, CALLER_HZ), level_at(l, CALLEE_HZ));
    let (r_own, r_other) = (level_at(r, CALLEE_HZ), level_at(r, CALLER_HZ));
    println!(
        "left: {CALLER_HZ} Hz {l_own:.0}, {CALLEE_HZ} Hz {l_other:.0}; \
         right: {CALLEE_HZ} Hz {r_own:.0}, {CALLER_HZ} Hz {r_other:.0}"
    );
    assert!(
        l_own > 1000.0 && l_own > 10.0 * l_other,
        "left is the operator"
    );
    assert!(
        r_own > 1000.0 && r_own > 10.0 * r_other,
        "right is the far end"
    );
}

/// The two channels of a WAV recording, checking its format.
fn wav_channels(path: &Path) -> (Vec<i16>, Vec<i16>) {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a valid WAV: {e}", path.display()));
    let spec = reader.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (2, RATE, 16)
    );
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect();
    split(&samples)
}

fn split(interleaved: &[i16]) -> (Vec<i16>, Vec<i16>) {
    let left = interleaved.iter().step_by(2).copied().collect();
    let right = interleaved.iter().skip(1).step_by(2).copied().collect();
    (left, right)
}

/// An Ogg Opus recording: its audio packets decoded, and the duration its last granule
/// position gives (seconds). Tolerates a file that ends without its last page (killed).
fn ogg_decode(path: &Path) -> ((Vec<i16>, Vec<i16>), f64) {
    let mut reader = ogg::PacketReader::new(File::open(path).expect("opening the recording"));
    let mut packets = Vec::new();
    while let Ok(Some(packet)) = reader.read_packet() {
        packets.push(packet);
    }
    assert!(packets.len() > 2, "OpusHead, OpusTags and audio");
    let head = &packets[0].data;
    assert_eq!(&head[..8], b"OpusHead");
    assert_eq!(head[9], 2, "stereo");
    assert_eq!(&packets[1].data[..8], b"OpusTags");
    let pre_skip = u64::from(u16::from_le_bytes([head[10], head[11]]));
    let granule = packets.last().map_or(0, ogg::Packet::absgp_page);
    let mut decoder = opus::Decoder::new(RATE, opus::Channels::Stereo).expect("decoder");
    let mut pcm = Vec::new();
    let mut out = vec![0i16; 2 * 5760];
    for p in &packets[2..] {
        let n = decoder.decode(&p.data, &mut out, false).expect("decodable");
        pcm.extend_from_slice(&out[..2 * n]);
    }
    let seconds = granule.saturating_sub(pre_skip) as f64 / f64::from(RATE);
    (split(&pcm), seconds)
}

struct Pair {
    caller: Switchboard,
    callee: Switchboard,
    recordings: PathBuf,
    _dir: tempfile::TempDir,
}

/// Caller at .2 (1 kHz, `[recording]` from `recording`) calls the callee at .6 (600 Hz),
/// who answers.
fn call_pair(net: &Net, recording: &str) -> Pair {
    let dir = tempfile::tempdir().expect("tempdir");
    let recordings = dir.path().join("recordings");
    let (caller_in, callee_in) = (dir.path().join("a.wav"), dir.path().join("b.wav"));
    tone(&caller_in, CALLER_HZ, 2);
    tone(&callee_in, CALLEE_HZ, 2);
    let audio = |file_in: &Path| {
        format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\n",
            file_in.display()
        )
    };
    let caller_cfg = SwitchboardConfig::peer_to_peer(net)
        .with_codecs(&["opus"])
        .with_audio(&audio(&caller_in))
        .with_network("rtp_port_min = 30000\nrtp_port_max = 30009\n")
        .with_extra(&format!(
            "[recording]\ndir = \"{}\"\n{recording}",
            recordings.display()
        ));
    let ip = net.ip(CALLEE);
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(net).with_codecs(&["opus"]);
    callee_cfg = callee_cfg.at(ip, "bob");
    let callee_cfg = callee_cfg
        .with_audio(&audio(&callee_in))
        .with_network("rtp_port_min = 31000\nrtp_port_max = 31009\n");
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_cfg.to_toml());
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    callee.wait_call_state(secs(5), 1, "connected");
    Pair {
        caller,
        callee,
        recordings,
        _dir: dir,
    }
}

/// The next `record` event of `sb` with `recording` as given.
fn record_event(sb: &mut Switchboard, recording: bool) -> Value {
    sb.wait_event(secs(5), |e| {
        e["event"] == "record" && e["recording"] == recording
    })
}

fn finish(pair: &mut Pair) {
    pair.caller.send("hangup");
    pair.callee.wait_call_state(secs(5), 1, "ended");
    assert!(pair.caller.quit_and_wait(secs(10)).success());
    assert!(pair.callee.quit_and_wait(secs(10)).success());
}

#[test]
fn record_start_and_stop_write_a_stereo_wav_operator_left_far_end_right() {
    let net = Net::for_test("recording::wav");
    let mut pair = call_pair(&net, "format = \"wav\"\n");
    pair.caller.send("record start");
    let started = record_event(&mut pair.caller, true);
    println!("{started}");
    assert_eq!(started["line"], 1);
    let path = PathBuf::from(started["path"].as_str().expect("a path"));
    assert!(path.starts_with(&pair.recordings), "{}", path.display());
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    assert!(
        name.ends_with("_line1_out_bob.wav"),
        "named after the template: {name}"
    );
    pair.caller.send("record start");
    let error = pair.caller.wait_for(secs(5), "error");
    assert!(error["message"]
        .as_str()
        .unwrap_or_default()
        .contains("already"));
    thread::sleep(Duration::from_secs(3));
    pair.caller.send("record stop");
    let stopped = record_event(&mut pair.caller, false);
    println!("{stopped}");
    assert_eq!(stopped["reason"], "stopped by the operator");
    assert_eq!(stopped["path"], started["path"]);
    assert_eq!(stopped["dropped_frames"], 0);
    let duration_ms = stopped["duration_ms"].as_u64().expect("a duration");
    let (left, right) = wav_channels(&path);
    assert_eq!(left.len() as u64, duration_ms * u64::from(RATE) / 1000);
    assert_channels(&left, &right);
    finish(&mut pair);
}

#[test]
fn auto_records_ogg_opus_from_answer_until_the_hang_up() {
    let net = Net::for_test("recording::ogg_auto");
    let mut pair = call_pair(&net, "format = \"ogg\"\nauto = true\n");
    let started = record_event(&mut pair.caller, true);
    let path = PathBuf::from(started["path"].as_str().expect("a path"));
    assert_eq!(path.extension().and_then(|e| e.to_str()), Some("opus"));
    pair.callee
        .expect_no_event(Duration::from_millis(200), |e| e["event"] == "record");
    thread::sleep(Duration::from_secs(3));
    pair.caller.send("hangup");
    let stopped = record_event(&mut pair.caller, false);
    assert_eq!(stopped["reason"], "the call ended");
    pair.callee.wait_call_state(secs(5), 1, "ended");
    let ((left, right), seconds) = ogg_decode(&path);
    let reported = stopped["duration_ms"].as_u64().expect("a duration") as f64 / 1000.0;
    println!("ogg: {seconds:.2} s by granule, {reported:.2} s reported");
    assert!((seconds - reported).abs() < 0.05);
    assert_channels(&left, &right);
    assert!(pair.caller.quit_and_wait(secs(10)).success());
    assert!(pair.callee.quit_and_wait(secs(10)).success());
}

/// What a SIGKILL may cost a recording: the half second since the last flush, plus frames
/// still queued for the writer (it looks every 20 ms) and the media tick in flight.
const MAX_LOST_S: f64 = 0.6;

/// Records for about 3 s, then kills the caller with SIGKILL; returns the file and how long
/// it had been recording by then (from the `record` event, which comes after the file opened).
fn record_then_kill(pair: &mut Pair) -> (PathBuf, f64) {
    pair.caller.send("record start");
    let started = record_event(&mut pair.caller, true);
    let t0 = epoch();
    let path = PathBuf::from(started["path"].as_str().expect("a path"));
    thread::sleep(Duration::from_millis(3_300));
    let recorded = t0.elapsed().as_secs_f64();
    let killed = Command::new("kill")
        .args(["-KILL", &pair.caller.pid().to_string()])
        .status()
        .expect("running kill");
    assert!(killed.success());
    pair.caller.wait_exit(secs(5));
    (path, recorded)
}

#[test]
fn a_wav_recording_survives_sigkill_losing_at_most_the_last_flush() {
    let net = Net::for_test("recording::kill_wav");
    let mut pair = call_pair(&net, "format = \"wav\"\n");
    let (path, recorded) = record_then_kill(&mut pair);
    let (left, right) = wav_channels(&path);
    let seconds = left.len() as f64 / f64::from(RATE);
    println!("killed after {recorded:.2} s of recording; the WAV holds {seconds:.2} s");
    assert!(seconds <= recorded + 0.2 && seconds >= recorded - MAX_LOST_S);
    assert_channels(&left, &right);
}

#[test]
fn an_ogg_recording_survives_sigkill_losing_at_most_the_last_flush() {
    let net = Net::for_test("recording::kill_ogg");
    let mut pair = call_pair(&net, "format = \"ogg\"\n");
    let (path, recorded) = record_then_kill(&mut pair);
    let ((left, right), seconds) = ogg_decode(&path);
    println!("killed after {recorded:.2} s of recording; the Ogg file holds {seconds:.2} s");
    assert!(seconds <= recorded + 0.2 && seconds >= recorded - MAX_LOST_S);
    assert_channels(&left, &right);
}

#[test]
fn bad_recording_settings_name_the_file_line_and_key() {
    let file = Path::new("rec.toml");
    let cases = [
        (
            "[recording]\nformat = \"mp3\"\n",
            "rec.toml:2:",
            "recording.format",
        ),
        (
            "[recording]\ntemplate = \"{date}-{caller}\"\n",
            "rec.toml:2:",
            "recording.template",
        ),
        ("[recording]\ndir = \"\"\n", "rec.toml:2:", "recording.dir"),
        (
            "[recording]\nauto = \"yes\"\n",
            "rec.toml:2:",
            "recording.auto",
        ),
    ];
    for (text, position, key) in cases {
        let shown = match Config::parse(text, file) {
            Ok(config) => panic!("{text:?} was accepted: {:?}", config.recording),
            Err(errors) => errors.to_string(),
        };
        assert!(
            shown.starts_with(position) && shown.contains(key),
            "{text:?} gave {shown}"
        );
    }
}
