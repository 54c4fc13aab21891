//! The operator's voice end to end: G.722 wideband with a real phone (baresip's `g722`
//! module) and between two switchboards (DTMF alongside), and noise suppression measured on
//! speech in babble at 5 dB SNR through a real call.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::signal::read_wav;
use common::{
    secs, AudioSource, Baresip, BaresipOptions, Kamailio, Net, Switchboard, SwitchboardConfig,
};

/// The host number of the second switchboard in the test's /24.
const CALLEE: u8 = 6;

/// The `[audio]` lines of the file backend.
fn audio_toml(file_in: Option<&Path>, file_out: &Path, extra: &str) -> String {
    let mut s = String::from("backend = \"file\"\nfile_loop = true\n");
    if let Some(f) = file_in {
        s.push_str(&format!("file_in = \"{}\"\n", f.display()));
    }
    s.push_str(&format!("file_out = \"{}\"\n{extra}", file_out.display()));
    s
}

/// Writes a 48 kHz mono WAV of a sine at `hz`, amplitude 0.4 full scale, `seconds` long.
fn tone_48k(path: &Path, hz: f32, seconds: f32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating a tone");
    for n in 0..(seconds * 48_000.0) as usize {
        let s = 0.4 * (2.0 * std::f32::consts::PI * hz * n as f32 / 48_000.0).sin();
        w.write_sample((s * 32_767.0) as i16).expect("writing");
    }
    w.finalize().expect("finishing a tone");
}

/// Level (dB re full scale, RMS) of the component at `hz` in `x` (Goertzel over the whole
/// slice), and of all of `x`.
fn tone_and_total_db(x: &[f32], rate: u32, hz: f32) -> (f64, f64) {
    let w = 2.0 * std::f64::consts::PI * f64::from(hz) / f64::from(rate);
    let coeff = 2.0 * w.cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    for &v in x {
        let s0 = f64::from(v) + coeff * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    let power = s1 * s1 + s2 * s2 - coeff * s1 * s2;
    let n = x.len().max(1) as f64;
    // A sine of amplitude A gives power (A·n/2)²: its RMS is A/√2.
    let amplitude = 2.0 * power.max(0.0).sqrt() / n;
    let tone_rms = amplitude / 2f64.sqrt();
    let total_rms = (x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / n).sqrt();
    (
        20.0 * tone_rms.max(1e-9).log10(),
        20.0 * total_rms.max(1e-9).log10(),
    )
}

/// The middle of a recording: from `skip` seconds after the first sound, `len` seconds.
fn steady(x: &[f32], rate: u32, skip: f32, len: f32) -> &[f32] {
    let onset = x.iter().position(|s| s.abs() > 0.02).unwrap_or(x.len());
    let start = (onset + (skip * rate as f32) as usize).min(x.len());
    let end = (start + (len * rate as f32) as usize).min(x.len());
    &x[start..end]
}

#[test]
fn g722_call_with_baresip_is_wideband_both_ways() {
    let net = Net::for_test("voice::g722_baresip");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(6_000),
            codecs: "G722".to_owned(),
            extra_config: vec!["module\t\t\tg722.so".to_owned()],
            ..BaresipOptions::default()
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("tone6k.wav");
    tone_48k(&tone, 6_000.0, 3.0);
    let our_out = dir.path().join("heard.wav");
    let cfg = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_codecs(&["g722", "pcmu"])
        .with_audio(&audio_toml(Some(&tone), &our_out, ""));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    sb.send("dial bob");
    let media = sb.wait_for(secs(10), "media");
    assert_eq!(
        (media["codec"].as_str(), media["payload_type"].as_u64()),
        (Some("G722"), Some(9)),
        "{media}"
    );
    sb.wait_call_state(secs(10), 1, "connected");
    thread::sleep(Duration::from_secs(4));
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    assert!(sb.quit_and_wait(secs(10)).success());

    // We heard baresip's 6 kHz sine: above G.711's 4 kHz band edge.
    let (ours, rate) = read_wav(&our_out);
    let (tone_db, total_db) = tone_and_total_db(steady(&ours, rate, 0.5, 2.0), rate, 6_000.0);
    println!("we heard 6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS");
    assert!(
        tone_db > -30.0,
        "no 6 kHz tone from baresip: {tone_db:.1} dBFS"
    );
    assert!(
        total_db - tone_db < 1.0,
        "the 6 kHz tone is not what we heard: {tone_db:.1} of {total_db:.1} dBFS"
    );
    // baresip heard our 6 kHz sine (sent at 0.4 full scale, −11 dBFS RMS).
    let recordings = bob.heard_recordings();
    let (theirs, rate) = read_wav(recordings.first().expect("baresip recorded the call"));
    assert_eq!(rate, 16_000, "baresip decoded at G.722's 16 kHz");
    let (tone_db, total_db) = tone_and_total_db(steady(&theirs, rate, 0.5, 2.0), rate, 6_000.0);
    println!("baresip heard 6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS");
    assert!(
        (-14.0..-8.0).contains(&tone_db),
        "baresip heard 6 kHz at {tone_db:.1} dBFS, sent at −11"
    );
    assert!(total_db - tone_db < 1.0, "{tone_db:.1} of {total_db:.1}");
}

#[test]
fn g722_between_two_switchboards_carries_dtmf_at_8khz() {
    let net = Net::for_test("voice::g722_dtmf");
    let dir = tempfile::tempdir().expect("tempdir");
    let tone = dir.path().join("tone6k.wav");
    tone_48k(&tone, 6_000.0, 3.0);
    let caller_cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_codecs(&["g722"])
        .with_audio(&audio_toml(
            Some(&tone),
            &dir.path().join("caller_out.wav"),
            "",
        ));
    let callee_out = dir.path().join("callee_out.wav");
    let mut callee_cfg = SwitchboardConfig::peer_to_peer(&net).with_codecs(&["opus", "g722"]);
    let ip = net.ip(CALLEE);
    callee_cfg.bind = (ip, 5060).into();
    callee_cfg.accounts[0].user = "bob".into();
    callee_cfg.accounts[0].domain = ip.to_string();
    callee_cfg = callee_cfg.with_audio(&audio_toml(None, &callee_out, ""));
    let mut caller = Switchboard::start(&caller_cfg.to_toml());
    let mut callee = Switchboard::start(&callee_cfg.to_toml());
    caller.wait_for(secs(10), "started");
    callee.wait_for(secs(10), "started");
    caller.send(&format!("dial sip:bob@{ip}:5060"));
    callee.wait_for(secs(5), "incoming");
    callee.send("answer");
    caller.wait_call_state(secs(5), 1, "connected");
    let media = callee.wait_for(secs(5), "media");
    assert_eq!(media["codec"], "G722", "{media}");
    // telephone-event at G.722's 8000 RTP clock (RFC 4733 §2.1), PT 101.
    assert_eq!(media["dtmf_payload_type"], 101, "{media}");
    // Two seconds of tone before the digits (the callee's recording is measured there).
    thread::sleep(Duration::from_secs(2));
    caller.send("dtmf 5#");
    for digit in ["5", "#"] {
        let ev = callee.wait_event(secs(5), |e| e["event"] == "dtmf");
        assert_eq!(ev["digit"], digit, "{ev}");
    }
    thread::sleep(Duration::from_secs(1));
    caller.send("hangup");
    callee.wait_call_state(secs(5), 1, "ended");
    assert!(caller.quit_and_wait(secs(10)).success());
    assert!(callee.quit_and_wait(secs(10)).success());
    let (heard, rate) = read_wav(&callee_out);
    let (tone_db, total_db) = tone_and_total_db(steady(&heard, rate, 0.3, 1.0), rate, 6_000.0);
    println!("the callee heard 6 kHz at {tone_db:.1} dBFS of {total_db:.1} dBFS");
    assert!(
        (-14.0..-8.0).contains(&tone_db),
        "6 kHz at {tone_db:.1} dBFS"
    );
}
