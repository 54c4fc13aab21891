//! Attended transfer with real phones through kamailio. switchboard (alice) is the operator:
//! she talks to bob, consults carol on line 2, and completes; bob and carol then really talk
//! (the target's recording holds bob's tone) and alice has no call left. The roles a lab phone
//! can play (shared/LAB.md): only linphonec takes an INVITE with Replaces as the target, so the
//! other target is a second switchboard; linphonec and switchboard copy Replaces as transferee.

mod common;

use std::path::Path;
use std::thread;
use std::time::Duration;

use common::{
    audio, secs, AudioSource, Baresip, BaresipOptions, Kamailio, Linphonec, LinphonecOptions, Net,
    Switchboard, SwitchboardConfig,
};
use serde_json::Value;

/// Host numbers in the test's /24 for the second and third switchboard.
const SB_BOB: u8 = 7;
const SB_CAROL: u8 = 8;
/// Host number of the second baresip (carol).
const BARESIP_CAROL: u8 = 6;

/// A switchboard registering as `user` at host `host` with file audio: it plays `file_in`
/// (if any) and writes what it hears to `file_out`.
fn switchboard_with_audio(
    net: &Net,
    user: &str,
    host: u8,
    file_in: Option<&Path>,
    file_out: &Path,
) -> Switchboard {
    let mut cfg = SwitchboardConfig::registering(net, user, &format!("{user}pw"));
    cfg.bind = (net.ip(host), 5060).into();
    let mut audio = format!(
        "backend = \"file\"\nfile_out = \"{}\"\n",
        file_out.display()
    );
    if let Some(f) = file_in {
        audio.push_str(&format!("file_in = \"{}\"\n", f.display()));
    }
    let mut sb = Switchboard::start(&cfg.with_audio(&audio).to_toml());
    sb.wait_for(secs(10), "registered");
    sb
}

/// alice, the operator: registering at `.2`, no audio.
fn alice(net: &Net) -> Switchboard {
    let mut sb =
        Switchboard::start(&SwitchboardConfig::registering(net, "alice", "alicepw").to_toml());
    sb.wait_for(secs(10), "registered");
    sb
}

/// alice consults `carol` while `line 1` holds bob, and completes once carol answered; returns
/// the succeeded event. Both of alice's calls must end.
fn consult_and_complete(alice: &mut Switchboard, kam: &Kamailio) -> Value {
    alice.send("consult carol");
    let requested = alice.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "attended");
    assert_eq!(requested["line"], 1);
    assert_eq!(requested["target"], format!("sip:carol@{}", kam.ip()));
    alice.wait_call_state(secs(5), 1, "held");
    alice.wait_call_state(secs(10), 2, "connected");
    // A moment of consultation, then the operator joins them.
    thread::sleep(Duration::from_millis(500));
    alice.send("complete");
    alice.wait_transfer(secs(5), "accepted");
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["kind"], "attended");
    alice.wait_event(secs(5), |e| {
        e["event"] == "call" && e["line"] == 1 && e["state"] == "ended"
    });
    done
}

#[test]
fn switchboard_transfers_a_switchboard_caller_to_linphonec_and_they_talk() {
    let net = Net::for_test("transfers_attended::sb_to_linphonec");
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = audio::tone_wav(dir.path(), "bob-1k.wav", 1000, 60);
    let carol_heard = dir.path().join("carol-heard.wav");
    let carol = Linphonec::start(
        &net,
        "carol",
        "carolpw",
        kam.ip(),
        LinphonecOptions {
            record_file: Some(carol_heard.clone()),
            ..LinphonecOptions::default()
        },
    );
    carol.wait_registered(secs(10));
    let mut bob = switchboard_with_audio(
        &net,
        "bob",
        SB_BOB,
        Some(&tone),
        &dir.path().join("bob-heard.wav"),
    );
    let mut alice = alice(&net);
    alice.send("dial bob");
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    let old = bob.wait_call_state(secs(5), 1, "connected");

    consult_and_complete(&mut alice, &kam);
    // bob was transferred: he called carol with Replaces on his free line.
    let told = bob.wait_transfer(secs(5), "succeeded");
    assert_eq!(told["kind"], "incoming");
    assert_eq!(told["call_id"], old["call_id"]);
    let new = bob.wait_call_state(secs(5), 2, "connected");
    assert_ne!(new["call_id"], old["call_id"]);
    // linphonec replaced the consultation and ended it: alice has nothing left.
    alice.wait_event(secs(10), |e| {
        e["event"] == "call" && e["line"] == 2 && e["state"] == "ended"
    });
    thread::sleep(Duration::from_millis(300));
    assert!(alice.no_call_left(), "alice still has a call");
    // bob and carol talk: carol's recording holds bob's 1 kHz.
    thread::sleep(Duration::from_secs(3));
    bob.send("hangup 2");
    bob.wait_call_state(secs(5), 2, "ended");
    // linphonec writes the WAV header when the call's recorder closes: poll for it.
    let mut heard = (0.0, 0.0);
    for _ in 0..50 {
        heard = audio::loudest_second_hz(&carol_heard);
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
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn linphonec_is_transferred_to_a_switchboard_target_by_replaces() {
    let net = Net::for_test("transfers_attended::linphonec_to_sb");
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = audio::tone_wav(dir.path(), "bob-1k.wav", 1000, 60);
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
    let carol_heard = dir.path().join("carol-heard.wav");
    let mut carol = switchboard_with_audio(&net, "carol", SB_CAROL, None, &carol_heard);
    let mut alice = alice(&net);
    alice.send("dial bob");
    alice.wait_call_state(secs(10), 1, "connected");

    // carol answers the consultation by hand.
    alice.send("consult carol");
    let incoming = carol.wait_for(secs(10), "incoming");
    carol.send("answer");
    let consult_call = incoming["call_id"].clone();
    alice.wait_call_state(secs(10), 2, "connected");
    alice.send("complete");
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["kind"], "attended");
    alice.wait_event(secs(5), |e| {
        e["event"] == "call" && e["line"] == 1 && e["state"] == "ended"
    });

    // carol: bob's INVITE with Replaces took over the consultation on the same line.
    let replaced = carol.wait_event(secs(10), |e| {
        e["event"] == "incoming" && e["replaces"] == consult_call
    });
    assert_eq!(replaced["line"], 1);
    assert_eq!(
        replaced["referred_by"],
        format!("sip:alice@{}", kam.ip()),
        "carol sees who transferred bob"
    );
    assert_eq!(replaced["from"], format!("sip:bob@{}", kam.ip()));
    let talking = carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == replaced["call_id"] && e["state"] == "connected"
    });
    assert_eq!(talking["line"], 1);
    carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == consult_call && e["state"] == "ended"
    });
    alice.wait_event(secs(10), |e| {
        e["event"] == "call" && e["line"] == 2 && e["state"] == "ended"
    });
    thread::sleep(Duration::from_secs(3));
    assert!(alice.no_call_left(), "alice still has a call");
    carol.send("hangup");
    carol.wait_call_state(secs(5), 1, "ended");
    assert!(carol.quit_and_wait(secs(10)).success());
    let (hz, level) = audio::loudest_second_hz(&carol_heard);
    assert!(
        level > 0.05 && (900.0..1100.0).contains(&hz),
        "carol heard {hz} Hz at RMS {level} in her call with bob"
    );
    assert!(alice.quit_and_wait(secs(10)).success());
}

#[test]
fn baresip_cannot_take_replaces_so_the_transfer_falls_back_to_blind() {
    let net = Net::for_test("transfers_attended::baresip_fallback");
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let bob = Baresip::start(&net, "bob", "bobpw", kam.ip(), BaresipOptions::default());
    let carol = Baresip::start(
        &net,
        "carol",
        "carolpw",
        kam.ip(),
        BaresipOptions {
            host: BARESIP_CAROL,
            audio_source: AudioSource::Sine(500),
            ..BaresipOptions::default()
        },
    );
    bob.wait_registered(secs(10));
    carol.wait_registered(secs(10));
    let mut alice = alice(&net);
    alice.send("dial bob");
    alice.wait_call_state(secs(10), 1, "connected");
    alice.send("consult carol");
    alice.wait_call_state(secs(10), 2, "connected");
    alice.send("complete");
    // baresip does not announce Replaces (and would not copy it): the consultation ends and
    // bob is transferred blind to carol.
    let fallback = alice.wait_event(secs(5), |e| {
        e["event"] == "transfer" && e["kind"] == "attended" && e["status"] == "failed"
    });
    assert!(
        fallback["reason"]
            .as_str()
            .is_some_and(|r| r.contains("falling back to a blind transfer")),
        "{fallback}"
    );
    alice.wait_call_state(secs(5), 2, "ended");
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["kind"], "blind");
    alice.wait_call_state(secs(5), 1, "ended");
    thread::sleep(Duration::from_millis(300));
    assert!(alice.no_call_left(), "alice still has a call");
    // bob and carol talk: carol hears bob's 1 kHz.
    thread::sleep(Duration::from_secs(2));
    bob.hangup();
    carol.wait_log("session closed", secs(5));
    let heard = carol.heard_recordings();
    let last = heard.last().expect("carol recorded her calls");
    let (hz, level) = audio::loudest_second_hz(last);
    assert!(
        level > 0.05 && (900.0..1100.0).contains(&hz),
        "carol heard {hz} Hz at RMS {level}"
    );
    assert!(alice.quit_and_wait(secs(10)).success());
}
