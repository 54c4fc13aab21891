//! Blind transfer that keeps its promise behind a strict B2BUA PBX (issue 14).
//!
//! A PBX that takes a REFER over itself (Asterisk, FreeSWITCH) drops the caller when the
//! target is busy: NOTIFY 503 terminated, then BYE, within a millisecond (shared/LAB.md). So:
//!
//! - `blind = "notify"` against sipp playing such a PBX (peer to peer): a success (NOTIFY
//!   100/180/200, then our BYE) is one `succeeded`; a dropped caller (NOTIFY 503 terminated,
//!   then the PBX's BYE crossing our recall) is one `failed` outcome saying so, never
//!   `recalled` then `ended`.
//! - `blind = "safe"` (ring-first) through kamailio: alice holds bob (a switchboard playing
//!   1 kHz) and rings the target herself. linphonec answering is joined to bob by REFER with
//!   Replaces and hears bob's tone; a busy sipp (486), a sipp that never answers
//!   (`blind_timeout`, CANCEL) and a target nobody registered (404) bring bob back, and both
//!   alice's and bob's recordings after the recall hold the other's tone. A real phone as the
//!   caller: linphonec (it copies Replaces from Refer-To) is handed to a switchboard target,
//!   whose recording holds linphonec's tone.

mod common;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::{
    hosts, secs, Kamailio, Linphonec, LinphonecOptions, Net, Sipp, Switchboard, SwitchboardConfig,
};
use serde_json::Value;

// ---- notify mechanism: sipp as a B2BUA PBX --------------------------------------------------

/// switchboard (peer to peer, `blind = "notify"`) in a call with sipp running `scenario`,
/// transferring it to `sip:carol@<sipp>`; returns once the call is held for the REFER.
fn notify_transfer(test: &str, scenario: &str) -> (Net, Sipp, Switchboard, String) {
    let net = Net::for_test(&format!("transfer_pbx::{test}"));
    let uas = Sipp::uas(&net, hosts::SIPP, scenario, &[]);
    let config = SwitchboardConfig::peer_to_peer(&net)
        .with_extra("[transfer]\nblind = \"notify\"\nblind_timeout = 5");
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "connected");
    let target = format!("sip:carol@{}", uas.ip());
    sb.send(&format!("transfer {target}"));
    let requested = sb.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "blind");
    assert_eq!(requested["mechanism"], "notify");
    sb.wait_call_state(secs(5), 1, "held");
    (net, uas, sb, target)
}

/// True for a `transfer` event with one of `statuses`.
fn is_transfer(e: &Value, statuses: &[&str]) -> bool {
    e["event"] == "transfer" && statuses.iter().any(|s| e["status"] == *s)
}

#[test]
fn a_pbx_that_takes_the_refer_over_and_reaches_the_target_is_one_success() {
    let (_net, mut uas, mut sb, target) =
        notify_transfer("b2bua_success", "uas_b2bua_refer_success");
    sb.wait_transfer(secs(5), "accepted");
    sb.wait_transfer(secs(5), "trying");
    sb.wait_transfer(secs(5), "ringing");
    let done = sb.wait_transfer(secs(5), "succeeded");
    assert_eq!(done["mechanism"], "notify");
    assert_eq!(done["reason"], format!("transferred to {target}"));
    sb.wait_call_state(secs(5), 1, "ended");
    sb.expect_no_event(Duration::from_millis(1500), |e| {
        is_transfer(e, &["failed", "recalled"])
    });
    // sipp got our 200s and our BYE.
    uas.expect_pass(secs(10));
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn a_pbx_that_drops_the_caller_after_a_failure_is_one_outcome_never_recalled() {
    let (_net, mut uas, mut sb, _target) = notify_transfer("b2bua_drop", "uas_b2bua_refer_drop");
    sb.wait_transfer(secs(5), "trying");
    let failed = sb.wait_transfer(secs(5), "failed");
    assert_eq!(failed["mechanism"], "notify");
    assert_eq!(failed["status_code"], 503);
    assert_eq!(
        failed["reason"],
        "the PBX could not reach carol (503 Service Unavailable) and ended the caller's call"
    );
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "the far end hung up");
    sb.expect_no_event(Duration::from_millis(1500), |e| {
        is_transfer(e, &["failed", "recalled", "succeeded"])
    });
    // sipp answered our recall 481 and got its ACK.
    uas.expect_pass(secs(10));
    assert!(sb.quit_and_wait(secs(10)).success());
}

// ---- ring-first (`blind = "safe"`) through kamailio -----------------------------------------

#[allow(clippy::disallowed_methods)] // the test's own stopwatch, for printed figures only
fn clock() -> std::time::Instant {
    std::time::Instant::now()
}

/// Host number of the switchboard playing bob, the caller.
const SB_BOB: u8 = 7;
/// alice's and bob's tones (Hz), and the rate of the tone files and recordings.
const ALICE_HZ: f64 = 600.0;
const BOB_HZ: f64 = 1000.0;
const RATE: u32 = 48_000;

/// A 48 kHz mono WAV of a sine at `hz`, two seconds long (played in a loop).
fn tone(path: &Path, hz: f64) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("creating a tone");
    for i in 0..RATE * 2 {
        let phase = std::f64::consts::TAU * hz * f64::from(i) / f64::from(RATE);
        w.write_sample((8000.0 * phase.sin()) as i16)
            .expect("writing a sample");
    }
    w.finalize().expect("finishing the tone");
}

/// A switchboard registering as `user` at host `host`, looping a tone of `hz`, recording to
/// `dir/user`, with `extra` TOML.
fn office_phone(net: &Net, user: &str, host: u8, hz: f64, dir: &Path, extra: &str) -> Switchboard {
    let tone_file = dir.join(format!("{user}.wav"));
    tone(&tone_file, hz);
    let mut cfg = SwitchboardConfig::registering(net, user, &format!("{user}pw"));
    cfg.bind = (net.ip(host), 5060).into();
    let audio = format!(
        "backend = \"file\"\nfile_loop = true\nfile_in = \"{}\"\n",
        tone_file.display()
    );
    let cfg = cfg
        .with_codecs(&["opus", "pcmu"])
        .with_audio(&audio)
        .with_extra(&format!(
            "[recording]\ndir = \"{}\"\nformat = \"wav\"\n{extra}",
            dir.join(user).display()
        ));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "registered");
    sb
}

/// alice (the operator, `blind_timeout = 5`) and bob, both switchboards through kamailio,
/// in a connected call.
struct Office {
    _dir: tempfile::TempDir,
    kam: Kamailio,
    net: Net,
    alice: Switchboard,
    bob: Switchboard,
}

fn office(test: &str) -> Office {
    let net = Net::for_test(&format!("transfer_pbx::{test}"));
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let mut alice = office_phone(
        &net,
        "alice",
        hosts::SWITCHBOARD,
        ALICE_HZ,
        dir.path(),
        "[transfer]\nblind_timeout = 5\n",
    );
    let mut bob = office_phone(&net, "bob", SB_BOB, BOB_HZ, dir.path(), "");
    alice.send("dial bob");
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_call_state(secs(5), 1, "connected");
    Office {
        _dir: dir,
        kam,
        net,
        alice,
        bob,
    }
}

/// `transfer carol` on alice: ring-first, bob held, carol called on line 2.
fn transfer_to_carol(o: &mut Office) {
    o.alice.send("transfer carol");
    let requested = o.alice.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "blind");
    assert_eq!(requested["mechanism"], "ring-first");
    assert_eq!(requested["line"], 1);
    assert_eq!(
        requested["reason"],
        format!(
            "ringing sip:carol@{} on line 2 first; the caller hears music on hold",
            o.kam.ip()
        )
    );
    o.alice.wait_call_state(secs(5), 1, "held");
    o.alice.wait_event(secs(5), |e| {
        e["event"] == "call" && e["line"] == 2 && e["state"] != "ended"
    });
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

/// The far end's channel (right) of a stereo WAV recording.
fn far_end(path: &Path) -> Vec<i16> {
    let mut reader = hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("{} is not a valid WAV: {e}", path.display()));
    assert_eq!(reader.spec().channels, 2);
    let samples: Vec<i16> = reader
        .samples::<i16>()
        .map(|s| s.expect("a sample"))
        .collect();
    samples.iter().skip(1).step_by(2).copied().collect()
}

/// `record start`, 2.5 s, `record stop` on `sb`: the recording's path.
fn record_a_moment(sb: &mut Switchboard) -> PathBuf {
    sb.send("record start");
    let started = sb.wait_event(secs(5), |e| {
        e["event"] == "record" && e["recording"] == true
    });
    thread::sleep(Duration::from_millis(2500));
    sb.send("record stop");
    sb.wait_event(secs(5), |e| {
        e["event"] == "record" && e["recording"] == false
    });
    PathBuf::from(started["path"].as_str().expect("a recording path"))
}

/// The far end of `path` carries `hz` strongly, and not `other`.
fn assert_hears(path: &Path, hz: f64, other: f64, who: &str) {
    let heard = far_end(path);
    let window = RATE as usize;
    assert!(heard.len() >= 2 * window, "{who}: at least 2 s recorded");
    let mid = heard.len() / 2;
    let second = &heard[mid - window / 2..mid + window / 2];
    let (own, else_) = (level_at(second, hz), level_at(second, other));
    println!("{who} hears {hz} Hz at {own:.0}, {other} Hz at {else_:.0}");
    assert!(own > 1000.0 && own > 10.0 * else_, "{who} hears {hz} Hz");
}

/// The call came back: `failed` with `reason` (and `code`), `recalled`, bob resumed on line 1,
/// and after the recall alice hears bob's tone and bob hears alice's.
fn assert_back_and_talking(o: &mut Office, code: Option<u64>, reason: &str) {
    let failed = o.alice.wait_transfer(secs(15), "failed");
    assert_eq!(failed["mechanism"], "ring-first");
    assert_eq!(failed["status_code"].as_u64(), code, "{failed}");
    assert_eq!(failed["reason"], reason);
    let recalled = o.alice.wait_transfer(secs(2), "recalled");
    assert_eq!(
        recalled["reason"],
        format!("{reason}: reconnecting, the call is back on line 1")
    );
    o.alice.wait_call_state(secs(5), 1, "connected");
    o.bob.wait_call_state(secs(5), 1, "connected");
    thread::sleep(Duration::from_millis(500));
    let alice_heard = record_a_moment(&mut o.alice);
    let bob_heard = record_a_moment(&mut o.bob);
    assert_hears(&alice_heard, BOB_HZ, ALICE_HZ, "alice");
    assert_hears(&bob_heard, ALICE_HZ, BOB_HZ, "bob");
    o.alice.send("hangup");
    o.bob.wait_call_state(secs(5), 1, "ended");
    assert!(o.alice.quit_and_wait(secs(10)).success());
    assert!(o.bob.quit_and_wait(secs(10)).success());
}

#[test]
fn ring_first_joins_bob_with_linphonec_once_she_answers_and_they_talk() {
    let mut o = office("ring_first_answered");
    let carol_heard = o._dir.path().join("carol-heard.wav");
    let carol = Linphonec::start(
        &o.net,
        "carol",
        "carolpw",
        o.kam.ip(),
        LinphonecOptions {
            record_file: Some(carol_heard.clone()),
            ..LinphonecOptions::default()
        },
    );
    carol.wait_registered(secs(10));
    let start = clock();
    transfer_to_carol(&mut o);
    // carol answers by herself; alice joins them without a key.
    o.alice.wait_call_state(secs(10), 2, "connected");
    let answered = clock();
    let joining = o.alice.wait_transfer(secs(5), "trying");
    assert_eq!(
        joining["reason"],
        "the target answered: connecting the caller"
    );
    let done = o.alice.wait_transfer(secs(15), "succeeded");
    // Figures, not assertions: how long the target's answer waits for the join.
    println!(
        "transfer → carol answered {:?}; answered → succeeded {:?}",
        answered - start,
        clock() - answered
    );
    assert_eq!(done["mechanism"], "ring-first");
    assert_eq!(done["kind"], "blind");
    let told = o.bob.wait_transfer(secs(5), "succeeded");
    assert_eq!(told["kind"], "incoming");
    o.bob.wait_call_state(secs(5), 2, "connected");
    o.alice.wait_event(secs(10), |e| {
        e["event"] == "call" && e["line"] == 2 && e["state"] == "ended"
    });
    thread::sleep(Duration::from_millis(300));
    assert!(o.alice.no_call_left(), "alice still has a call");
    // bob and carol talk: carol's recording holds bob's 1 kHz.
    thread::sleep(Duration::from_secs(3));
    o.bob.send("hangup 2");
    o.bob.wait_call_state(secs(5), 2, "ended");
    let mut heard = (0.0, 0.0);
    for _ in 0..50 {
        // linphonec writes the WAV header late: until it has, there is nothing to read.
        let header = std::fs::read(&carol_heard).is_ok_and(|b| b.starts_with(b"RIFF"));
        if !header {
            thread::sleep(Duration::from_millis(100));
            continue;
        }
        heard = common::audio::loudest_second_hz(&carol_heard);
        if heard.1 > 0.05 {
            break;
        }
        thread::sleep(Duration::from_millis(100));
    }
    let (hz, level) = heard;
    assert!(
        level > 0.05 && (900.0..1100.0).contains(&hz),
        "carol heard {hz} Hz at RMS {level}"
    );
    assert!(o.alice.quit_and_wait(secs(10)).success());
    assert!(o.bob.quit_and_wait(secs(10)).success());
}

/// A sipp UAS running `scenario`, registered at kamailio as carol.
fn sipp_carol(o: &Office, scenario: &str) -> Sipp {
    let uas = Sipp::uas(&o.net, hosts::SIPP, scenario, &[]);
    uas.register_at(&o.kam, "carol", "carolpw");
    uas
}

#[test]
fn ring_first_brings_bob_back_when_the_target_is_busy() {
    let mut o = office("ring_first_busy");
    let mut carol = sipp_carol(&o, "uas_busy");
    transfer_to_carol(&mut o);
    assert_back_and_talking(&mut o, Some(486), "target is busy");
    carol.expect_pass(secs(10));
}

#[test]
fn ring_first_cancels_a_target_that_never_answers_and_brings_bob_back() {
    let mut o = office("ring_first_no_answer");
    let mut carol = sipp_carol(&o, "uas_no_answer");
    transfer_to_carol(&mut o);
    o.alice.wait_transfer(secs(5), "ringing");
    assert_back_and_talking(&mut o, None, "target did not answer");
    // sipp got the CANCEL (200, 487, ACK).
    carol.expect_pass(secs(10));
}

#[test]
fn ring_first_brings_bob_back_when_the_target_cannot_be_reached() {
    // Nobody is registered as carol: kamailio answers 404.
    let mut o = office("ring_first_unreachable");
    transfer_to_carol(&mut o);
    assert_back_and_talking(&mut o, Some(404), "target does not exist");
    let log = o.kam.log();
    assert!(
        !log.contains("LAB-REQ REFER"),
        "nothing was handed over to the proxy"
    );
}

#[test]
fn ring_first_hands_a_linphonec_caller_to_a_switchboard_target_by_replaces() {
    let net = Net::for_test("transfer_pbx::ring_first_linphonec_caller");
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = common::audio::tone_wav(dir.path(), "bob-1k.wav", 1000, 60);
    let bob = Linphonec::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        LinphonecOptions {
            play_file: Some(tone),
            ..LinphonecOptions::default()
        },
    );
    bob.wait_registered(secs(10));
    let mut carol = office_phone(&net, "carol", 8, ALICE_HZ, dir.path(), "");
    let mut alice =
        Switchboard::start(&SwitchboardConfig::registering(&net, "alice", "alicepw").to_toml());
    alice.wait_for(secs(10), "registered");
    alice.send("dial bob");
    alice.wait_call_state(secs(10), 1, "connected");
    alice.send("transfer carol");
    let requested = alice.wait_transfer(secs(2), "requested");
    assert_eq!(requested["mechanism"], "ring-first");
    // carol's phone rings; nothing was handed to bob's phone yet.
    let incoming = carol.wait_for(secs(10), "incoming");
    assert_eq!(incoming["from"], format!("sip:alice@{}", kam.ip()));
    alice.wait_transfer(secs(5), "ringing");
    carol.send("answer");
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["mechanism"], "ring-first");
    // bob's INVITE with Replaces took alice's call to carol over.
    let replaced = carol.wait_event(secs(10), |e| {
        e["event"] == "incoming" && e["replaces"] == incoming["call_id"]
    });
    assert_eq!(replaced["from"], format!("sip:bob@{}", kam.ip()));
    carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == replaced["call_id"] && e["state"] == "connected"
    });
    alice.wait_event(secs(10), |e| {
        e["event"] == "call" && e["line"] == 2 && e["state"] == "ended"
    });
    thread::sleep(Duration::from_millis(500));
    assert!(alice.no_call_left(), "alice still has a call");
    // carol hears bob's 1 kHz.
    let heard = record_a_moment(&mut carol);
    let window = RATE as usize;
    let far = far_end(&heard);
    assert!(far.len() >= 2 * window, "at least 2 s recorded");
    let mid = far.len() / 2;
    let level = level_at(&far[mid - window / 2..mid + window / 2], BOB_HZ);
    println!("carol hears bob's 1 kHz at {level:.0}");
    assert!(level > 500.0, "carol hears bob's 1 kHz");
    carol.send("hangup");
    assert!(carol.quit_and_wait(secs(10)).success());
    assert!(alice.quit_and_wait(secs(10)).success());
}
