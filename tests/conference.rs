//! A local three-way conference end to end: the operator's switchboard (file audio saying a
//! 500 Hz tone) calls two parties, bob (800 Hz) and carol (1300 Hz), each recording what it
//! hears, and joins them with `conference`. Each party must hear the other party and the
//! operator, never itself; the operator hears both parties. The parties are two other
//! switchboards, then two real phones from the lab (baresip and linphonec through kamailio).

mod common;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::signal::read_wav;
use common::{
    audio, hosts, secs, AudioSource, Baresip, BaresipOptions, Kamailio, Linphonec,
    LinphonecOptions, Net, Switchboard, SwitchboardConfig,
};

/// Host numbers of the parties in the test's /24.
const BOB: u8 = 6;
const CAROL: u8 = 7;
/// Each switchboard's own tone (Hz).
const OPERATOR_HZ: f64 = 500.0;
const BOB_HZ: f64 = 800.0;
const CAROL_HZ: f64 = 1300.0;

/// Writes a 48 kHz mono WAV of a sine at `hz`, 4 s long (the file backend loops it).
fn tone_file(dir: &Path, name: &str, hz: f64) -> PathBuf {
    audio::sine_wav48(dir, name, hz)
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

/// Amplitude of the `hz` tone in `x` (sampled at `rate`): the upper quartile of its level
/// over 100 ms blocks. One coherent sum over the whole window is cancelled in part by every
/// phase jump (a concealed or late frame), and on a loaded machine the parties' playback has
/// gaps of a few hundred milliseconds; a tone that is mixed in is still loud in most blocks,
/// one that is not is absent from all of them.
fn level(x: &[f32], rate: u32, hz: f64) -> f64 {
    audio::tone_level_quantile(x, rate, hz, 0.75)
}

/// The last 2 s of sound in a recording (ending 0.5 s before the sound stops): the
/// conference, which is the last thing every party hears. Returns the samples and their rate.
fn last_sound(path: &Path) -> (Vec<f32>, u32) {
    let (samples, rate) = read_wav(path);
    let second = rate as usize;
    let end = samples
        .iter()
        .rposition(|s| s.abs() > 0.02)
        .unwrap_or_else(|| panic!("{} holds no sound", path.display()));
    let end = end.saturating_sub(second / 2);
    let start = end.saturating_sub(2 * second);
    assert!(end - start == 2 * second, "{} is too short", path.display());
    (samples[start..end].to_vec(), rate)
}

/// Tone levels heard by `who`: prints them and checks `present` are loud, `absent` is not.
fn check(who: &str, (heard, rate): &(Vec<f32>, u32), present: &[f64], absent: f64) {
    let levels: Vec<(f64, f64)> = [OPERATOR_HZ, BOB_HZ, CAROL_HZ]
        .iter()
        .map(|hz| (*hz, level(heard, *rate, *hz)))
        .collect();
    println!("{who} hears (Hz, amplitude): {levels:?}");
    for (hz, l) in &levels {
        if present.contains(hz) {
            assert!(*l > 0.1, "{who} must hear {hz} Hz: {levels:?}");
        } else if *hz == absent {
            let loudest = audio::tone_level_quantile(heard, *rate, *hz, 1.0);
            assert!(
                loudest < 0.02,
                "{who} must not hear {hz} Hz (its own) in any 100 ms: {loudest} ({levels:?})"
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

/// Waits (at most 5 s) until `path` is a WAV of at least `seconds`: linphonec writes the
/// header only when the call's recorder closes.
fn wait_for_wav(path: &Path, seconds: u32) {
    for _ in 0..50 {
        let long = hound::WavReader::open(path)
            .is_ok_and(|r| r.duration() >= seconds * r.spec().sample_rate);
        if long {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("{} is not a WAV of {seconds} s after 5 s", path.display());
}

#[test]
fn three_way_conference_with_two_real_phones() {
    let net = Net::for_test("conference::real_phones");
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let op_out = d.join("operator_out.wav");
    let bob_out = d.join("bob_out.wav");
    // bob (line 1) is held while carol is called and resumed when they are joined; carol
    // (line 2) talks throughout. (baresip's recorder restarts its file on a re-INVITE, so it
    // plays carol.)
    let bob = Linphonec::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        LinphonecOptions {
            play_file: Some(audio::tone_wav(d, "bob.wav", BOB_HZ as u32, 60)),
            record_file: Some(bob_out.clone()),
            ..LinphonecOptions::default()
        },
    );
    let carol = Baresip::start(
        &net,
        "carol",
        "carolpw",
        kam.ip(),
        BaresipOptions {
            host: 6,
            audio_source: AudioSource::Sine(CAROL_HZ as u32),
            ..BaresipOptions::default()
        },
    );
    let op_cfg = SwitchboardConfig::registering(&net, "alice", "alicepw")
        .with_codecs(&["pcmu"])
        .with_audio(&format!(
            "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            tone_file(d, "op.wav", OPERATOR_HZ).display(),
            op_out.display()
        ));
    let mut op = Switchboard::start(&op_cfg.to_toml());
    op.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    carol.wait_registered(secs(10));

    op.send("dial bob");
    op.wait_call_state(secs(10), 1, "connected");
    op.send("dial carol");
    op.wait_call_state(secs(10), 2, "connected");
    op.send("conference");
    let joined = op.wait_for(secs(5), "conference");
    assert_eq!(joined["lines"], serde_json::json!([1, 2]), "{joined}");
    op.wait_call_state(secs(5), 1, "connected");
    thread::sleep(Duration::from_secs(4));
    assert!(op.quit_and_wait(secs(10)).success());
    carol.wait_log("session closed", secs(5));
    wait_for_wav(&bob_out, 3);

    check(
        "bob (linphonec)",
        &last_sound(&bob_out),
        &[OPERATOR_HZ, CAROL_HZ],
        BOB_HZ,
    );
    let carol_heard = carol.heard_recordings();
    let carol_out = carol_heard.last().expect("carol recorded the call");
    check(
        "carol (baresip)",
        &last_sound(carol_out),
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
