//! A local three-way conference end to end: the operator's switchboard (file audio saying a
//! 500 Hz tone) calls two other switchboards, bob (800 Hz) and carol (1300 Hz), each
//! recording what it hears, and joins them with `conference`. Each party must hear the
//! other party and the operator, never itself; the operator hears both parties.

mod common;

use std::f64::consts::TAU;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::signal::read_wav;
use common::{hosts, secs, Net, Switchboard, SwitchboardConfig};

/// Host numbers of the parties in the test's /24.
const BOB: u8 = 6;
const CAROL: u8 = 7;
/// Each switchboard's own tone (Hz).
const OPERATOR_HZ: f64 = 500.0;
const BOB_HZ: f64 = 800.0;
const CAROL_HZ: f64 = 1300.0;

/// Writes a 48 kHz mono WAV of a sine at `hz`, 4 s long (the file backend loops it).
fn tone_file(dir: &Path, name: &str, hz: f64) -> PathBuf {
    let path = dir.join(name);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 48_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).expect("creating a WAV");
    for i in 0..4 * 48_000 {
        let s = 0.3 * (TAU * hz * f64::from(i) / 48_000.0).sin();
        w.write_sample((s * f64::from(i16::MAX)) as i16)
            .expect("writing a WAV");
    }
    w.finalize().expect("finishing a WAV");
    path
}

/// A switchboard config at host `n` as `user`, playing `file_in`, recording to `file_out`,
/// with RTP ports from `rtp`.
fn party(net: &Net, n: u8, user: &str, file_in: &Path, file_out: &Path, rtp: u16) -> String {
    let mut cfg = SwitchboardConfig::peer_to_peer(net).with_codecs(&["pcmu"]);
    let ip = net.ip(n);
    cfg.bind = (ip, 5060).into();
    cfg.accounts[0].user = user.into();
    cfg.accounts[0].domain = ip.to_string();
    cfg.with_audio(&format!(
        "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
        file_in.display(),
        file_out.display()
    ))
    .with_network(&format!(
        "rtp_port_min = {rtp}\nrtp_port_max = {}\n",
        rtp + 9
    ))
    .to_toml()
}

/// Amplitude of the `hz` tone in `x` (48 kHz), by correlation with a sine/cosine pair.
fn level(x: &[f32], hz: f64) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for (i, v) in x.iter().enumerate() {
        let ph = TAU * hz * i as f64 / 48_000.0;
        s += f64::from(*v) * ph.sin();
        c += f64::from(*v) * ph.cos();
    }
    2.0 * (s * s + c * c).sqrt() / x.len().max(1) as f64
}

/// The last 2 s of sound in a recording (ending 0.5 s before the sound stops): the
/// conference, which is the last thing every party hears.
fn last_sound(path: &Path) -> Vec<f32> {
    let (samples, rate) = read_wav(path);
    assert_eq!(rate, 48_000);
    let end = samples
        .iter()
        .rposition(|s| s.abs() > 0.02)
        .unwrap_or_else(|| panic!("{} holds no sound", path.display()));
    let end = end.saturating_sub(24_000);
    let start = end.saturating_sub(96_000);
    assert!(end - start == 96_000, "{} is too short", path.display());
    samples[start..end].to_vec()
}

/// Tone levels heard by `who`: prints them and checks `present` are loud, `absent` is not.
fn check(who: &str, heard: &[f32], present: &[f64], absent: f64) {
    let levels: Vec<(f64, f64)> = [OPERATOR_HZ, BOB_HZ, CAROL_HZ]
        .iter()
        .map(|hz| (*hz, level(heard, *hz)))
        .collect();
    println!("{who} hears (Hz, amplitude): {levels:?}");
    for (hz, l) in &levels {
        if present.contains(hz) {
            assert!(*l > 0.1, "{who} must hear {hz} Hz: {levels:?}");
        } else if *hz == absent {
            assert!(
                *l < 0.02,
                "{who} must not hear {hz} Hz (its own): {levels:?}"
            );
        }
    }
}

#[test]
fn three_way_conference_each_party_hears_the_others_and_not_itself() {
    let net = Net::for_test("conference::three_way");
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let op_out = d.join("operator_out.wav");
    let bob_out = d.join("bob_out.wav");
    let carol_out = d.join("carol_out.wav");
    let op_toml = party(
        &net,
        hosts::SWITCHBOARD,
        "alice",
        &tone_file(d, "op.wav", OPERATOR_HZ),
        &op_out,
        30_000,
    );
    let bob_toml = party(
        &net,
        BOB,
        "bob",
        &tone_file(d, "bob.wav", BOB_HZ),
        &bob_out,
        31_000,
    );
    let carol_toml = party(
        &net,
        CAROL,
        "carol",
        &tone_file(d, "carol.wav", CAROL_HZ),
        &carol_out,
        32_000,
    );
    let mut op = Switchboard::start(&op_toml);
    let mut bob = Switchboard::start(&bob_toml);
    let mut carol = Switchboard::start(&carol_toml);
    for sb in [&mut op, &mut bob, &mut carol] {
        sb.wait_for(secs(10), "started");
    }

    op.send(&format!("dial sip:bob@{}:5060", net.ip(BOB)));
    bob.wait_for(secs(5), "incoming");
    bob.send("answer");
    op.wait_call_state(secs(5), 1, "connected");
    op.send(&format!("dial sip:carol@{}:5060", net.ip(CAROL)));
    carol.wait_for(secs(5), "incoming");
    carol.send("answer");
    op.wait_call_state(secs(5), 2, "connected");
    op.wait_call_state(secs(5), 1, "held");

    op.send("conference");
    let joined = op.wait_for(secs(5), "conference");
    assert_eq!(joined["lines"], serde_json::json!([1, 2]), "{joined}");
    assert_eq!(joined["active"], true);
    op.wait_call_state(secs(5), 1, "connected");
    thread::sleep(Duration::from_secs(4));

    // The operator quits: both calls end, every recording is final.
    assert!(op.quit_and_wait(secs(10)).success());
    bob.wait_call_state(secs(5), 1, "ended");
    carol.wait_call_state(secs(5), 1, "ended");
    assert!(bob.quit_and_wait(secs(10)).success());
    assert!(carol.quit_and_wait(secs(10)).success());

    check(
        "bob",
        &last_sound(&bob_out),
        &[OPERATOR_HZ, CAROL_HZ],
        BOB_HZ,
    );
    check(
        "carol",
        &last_sound(&carol_out),
        &[OPERATOR_HZ, BOB_HZ],
        CAROL_HZ,
    );
    check(
        "the operator",
        &last_sound(&op_out),
        &[BOB_HZ, CAROL_HZ],
        OPERATOR_HZ,
    );
}
