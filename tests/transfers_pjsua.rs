//! Transfers with pjsip (pjsua2), the strictest peer of the lab, in every role around
//! switchboard, through kamailio: pjsua as the transferor that refers switchboard (blind, and
//! attended with Replaces with switchboard as transferee or as target), as the transferee of
//! switchboard's blind transfer, as the target of switchboard's attended transfer, and as a
//! second operator, busy with a call of its own, whose line switchboard completes against; and
//! a pjsua that refuses the REFER comes back to the operator. Every test checks that the two
//! parties left talking hear each other's tone.

mod common;

use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use common::{
    audio, secs, AudioSource, Baresip, BaresipOptions, Kamailio, Net, Pjsua, PjsuaOptions,
    Switchboard, SwitchboardConfig,
};
use serde_json::Value;

/// Host numbers in the test's /24 for switchboards other than the one at `.2`.
const SB_BOB: u8 = 7;
const SB_CAROL: u8 = 8;
/// Host number of a baresip other than the one at `.3`.
const BARESIP_CAROL: u8 = 6;

/// kamailio with alice, bob, carol and dave.
fn kamailio(net: &Net) -> Kamailio {
    Kamailio::start(
        net,
        &[
            ("alice", "alicepw"),
            ("bob", "bobpw"),
            ("carol", "carolpw"),
            ("dave", "davepw"),
        ],
    )
}

/// A tone of `hz` for 10 s (players loop it), in `dir`.
fn tone(dir: &Path, hz: u32) -> PathBuf {
    audio::tone_wav(dir, &format!("tone-{hz}.wav"), hz, 10)
}

/// A registered pjsua `user` at `host`, playing `play` (if any), answering by itself when
/// `auto_answer`.
fn pjsua(
    net: &Net,
    kam: &Kamailio,
    user: &str,
    host: u8,
    play: Option<PathBuf>,
    auto_answer: bool,
) -> Pjsua {
    let mut p = Pjsua::start(
        net,
        user,
        &format!("{user}pw"),
        kam.ip(),
        PjsuaOptions {
            host,
            play,
            auto_answer,
            ..PjsuaOptions::default()
        },
    );
    p.wait_registered(secs(5));
    p
}

/// A registered switchboard `user` at `host`. With `audio`, it plays the first file and writes
/// what it hears to the second; without, it has no sound.
fn switchboard(net: &Net, user: &str, host: u8, audio: Option<(&Path, &Path)>) -> Switchboard {
    // `transfer` by REFER at once (`notify`): these tests put pjsip in the transferee's seat.
    // Ring-first's join is the attended completion, tested with pjsua as caller and target.
    let mut cfg = SwitchboardConfig::registering(net, user, &format!("{user}pw"))
        .with_extra("[transfer]\nblind = \"notify\"\n");
    cfg.bind = (net.ip(host), 5060).into();
    if let Some((file_in, file_out)) = audio {
        cfg = cfg.with_audio(&format!(
            "backend = \"file\"\nfile_in = \"{}\"\nfile_out = \"{}\"\n",
            file_in.display(),
            file_out.display()
        ));
    }
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(20), "registered");
    sb
}

/// A registered baresip `user` at `host` playing a sine of `hz`.
fn baresip(net: &Net, kam: &Kamailio, user: &str, host: u8, hz: u32) -> Baresip {
    let b = Baresip::start(
        net,
        user,
        &format!("{user}pw"),
        kam.ip(),
        BaresipOptions {
            host,
            audio_source: AudioSource::Sine(hz),
            ..BaresipOptions::default()
        },
    );
    b.wait_registered(secs(5));
    b
}

/// Asserts that the loudest second of `recording` is a tone of `hz` (±10 %).
#[track_caller]
fn assert_heard(recording: &Path, hz: f64, who: &str) {
    let (heard, level) = audio::loudest_second_hz(recording);
    assert!(
        level > 0.05 && (hz * 0.9..hz * 1.1).contains(&heard),
        "{who} should hear {hz} Hz: the loudest second of {} is {heard} Hz at RMS {level}",
        recording.display()
    );
}

/// The number of a pjsua call from one of its events.
fn number(ev: &Value) -> u64 {
    ev["call"].as_u64().expect("a pjsua call number")
}

/// Waits for pjsua's final NOTIFY of its transfer of `call` and asserts that it says 200.
#[track_caller]
fn assert_transfer_succeeded(transferor: &mut Pjsua, call: u64) {
    let done = transferor.wait_event(secs(15), |e| {
        e["event"] == "xfer_status" && e["call"] == call && e["final"] == true
    });
    assert_eq!(done["code"], 200, "the final NOTIFY: {done}");
}

/// Sends the transfer command `cmd` until switchboard takes it (`requested`): right after
/// answering, while its 2xx waits for the ACK, it asks to try again in a moment.
#[track_caller]
fn transfer_once_acked(sb: &mut Switchboard, cmd: &str) {
    for _ in 0..20 {
        sb.send(cmd);
        let ev = sb.wait_event(secs(2), |e| {
            (e["event"] == "transfer" && e["status"] == "requested")
                || (e["event"] == "error"
                    && e["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("try the transfer again")))
        });
        if ev["event"] == "transfer" {
            return;
        }
        thread::sleep(Duration::from_millis(100));
    }
    panic!("switchboard never took {cmd:?}\n{}", sb.failure_report());
}

/// The first SIP request `method` in `messages` (pjsua's logged ones).
fn request<'a>(messages: &'a [String], method: &str) -> &'a str {
    messages
        .iter()
        .find(|m| m.starts_with(&format!("{method} ")))
        .unwrap_or_else(|| panic!("no {method} among {} messages", messages.len()))
}

/// The value of header `name` in a SIP message, if present.
fn header<'a>(message: &'a str, name: &str) -> Option<&'a str> {
    message.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[test]
fn pjsua_blind_transfers_a_switchboard_caller_to_baresip_and_they_talk() {
    let net = Net::for_test("transfers_pjsua::blind_sb_transferee");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let bob_heard = dir.path().join("bob-heard.wav");
    let mut bob = switchboard(
        &net,
        "bob",
        SB_BOB,
        Some((&tone(dir.path(), 1000), &bob_heard)),
    );
    let carol = baresip(&net, &kam, "carol", BARESIP_CAROL, 500);
    let mut alice = pjsua(&net, &kam, "alice", common::hosts::PJSUA, None, true);

    let call = alice.dial(&kam.aor("bob"));
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_state(secs(10), call, "confirmed");
    let old = bob.wait_call_state(secs(5), 1, "connected");

    alice.send(&format!("xfer {call} {}", kam.aor("carol")));
    let told = bob.wait_transfer(secs(5), "requested");
    assert_eq!(told["kind"], "incoming");
    assert_eq!(told["target"], kam.aor("carol"));
    let new = bob.wait_call_state(secs(10), 2, "connected");
    assert_ne!(new["call_id"], old["call_id"]);
    bob.wait_transfer(secs(5), "succeeded");
    bob.wait_event(secs(5), |e| {
        e["event"] == "call" && e["state"] == "ended" && e["call_id"] == old["call_id"]
    });
    // pjsua followed the transfer through switchboard's NOTIFYs, and its call ended.
    assert_transfer_succeeded(&mut alice, call);
    alice.wait_state(secs(5), call, "disconnected");
    let refer = request(&alice.sent_messages(), "REFER").to_owned();
    assert!(
        header(&refer, "Refer-To").is_some_and(|r| r.contains(&kam.aor("carol"))),
        "{refer}"
    );

    // bob and carol talk.
    carol.wait_log("Call established", secs(5));
    thread::sleep(Duration::from_secs(3));
    bob.send("hangup 2");
    bob.wait_call_state(secs(5), 2, "ended");
    carol.wait_log("session closed", secs(5));
    assert!(bob.quit_and_wait(secs(10)).success());
    let carol_heard = carol.heard_recordings();
    assert_heard(
        carol_heard.last().expect("carol recorded the call"),
        1000.0,
        "carol",
    );
    assert_heard(&bob_heard, 500.0, "bob");
    alice.quit(secs(5));
}

#[test]
fn pjsua_attended_transfer_refers_a_switchboard_to_a_pjsua_target_with_replaces() {
    let net = Net::for_test("transfers_pjsua::attended_sb_transferee");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let bob_heard = dir.path().join("bob-heard.wav");
    let mut bob = switchboard(
        &net,
        "bob",
        SB_BOB,
        Some((&tone(dir.path(), 1000), &bob_heard)),
    );
    let mut alice = pjsua(&net, &kam, "alice", common::hosts::PJSUA, None, true);
    let mut carol = pjsua(
        &net,
        &kam,
        "carol",
        common::hosts::PJSUA + 1,
        Some(tone(dir.path(), 500)),
        true,
    );

    let to_bob = alice.dial(&kam.aor("bob"));
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_state(secs(10), to_bob, "confirmed");
    let old = bob.wait_call_state(secs(5), 1, "connected");
    alice.send(&format!("hold {to_bob}"));
    bob.wait_call_state(secs(5), 1, "remote_held");
    let to_carol = alice.dial(&kam.aor("carol"));
    alice.wait_state(secs(10), to_carol, "confirmed");
    let consult = carol.wait_incoming(secs(5));

    alice.send(&format!("xfer_replaces {to_bob} {to_carol}"));
    let told = bob.wait_transfer(secs(5), "requested");
    assert_eq!(told["kind"], "incoming");
    let new = bob.wait_call_state(secs(10), 2, "connected");
    assert_ne!(new["call_id"], old["call_id"]);
    bob.wait_transfer(secs(5), "succeeded");
    // carol: bob's INVITE with Replaces took over the consultation, which ended.
    let replaced = carol.wait_for(secs(5), "replaced");
    assert_eq!(replaced["call"], consult["call"]);
    let invite = carol
        .received_messages()
        .into_iter()
        .find(|m| m.starts_with("INVITE ") && header(m, "Replaces").is_some())
        .expect("carol received an INVITE with Replaces");
    assert!(
        header(&invite, "Replaces")
            .is_some_and(|r| r.starts_with(consult["call_id"].as_str().expect("a Call-ID"))),
        "{invite}"
    );
    carol.wait_state(secs(5), number(&consult), "disconnected");
    assert_transfer_succeeded(&mut alice, to_bob);
    alice.wait_state(secs(5), to_carol, "disconnected");
    alice.wait_state(secs(5), to_bob, "disconnected");
    let refer = request(&alice.sent_messages(), "REFER").to_owned();
    assert!(
        header(&refer, "Refer-To").is_some_and(|r| r.contains("Replaces=")),
        "{refer}"
    );

    // bob and carol talk.
    let carol_call = replaced["new_call"].as_u64().expect("the new call");
    thread::sleep(Duration::from_secs(3));
    bob.send("hangup 2");
    bob.wait_call_state(secs(5), 2, "ended");
    carol.wait_state(secs(5), carol_call, "disconnected");
    assert!(bob.quit_and_wait(secs(10)).success());
    assert_heard(&carol.recording(secs(5), carol_call), 1000.0, "carol");
    assert_heard(&bob_heard, 500.0, "bob");
    alice.quit(secs(5));
    carol.quit(secs(5));
}

#[test]
fn pjsua_attended_transfer_sends_a_pjsua_caller_to_a_switchboard_target_with_replaces() {
    let net = Net::for_test("transfers_pjsua::attended_sb_target");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let carol_heard = dir.path().join("carol-heard.wav");
    let mut carol = switchboard(
        &net,
        "carol",
        SB_CAROL,
        Some((&tone(dir.path(), 500), &carol_heard)),
    );
    let mut alice = pjsua(&net, &kam, "alice", common::hosts::PJSUA, None, true);
    let mut bob = pjsua(
        &net,
        &kam,
        "bob",
        common::hosts::PJSUA + 1,
        Some(tone(dir.path(), 1000)),
        true,
    );

    let to_bob = alice.dial(&kam.aor("bob"));
    alice.wait_state(secs(10), to_bob, "confirmed");
    let bob_old = bob.wait_incoming(secs(5));
    alice.send(&format!("hold {to_bob}"));
    bob.wait_event(secs(5), |e| {
        e["event"] == "media" && e["status"] == "remote_hold"
    });
    let to_carol = alice.dial(&kam.aor("carol"));
    let consult = carol.wait_for(secs(10), "incoming");
    carol.send("answer");
    alice.wait_state(secs(10), to_carol, "confirmed");
    carol.wait_call_state(secs(5), 1, "connected");

    alice.send(&format!("xfer_replaces {to_bob} {to_carol}"));
    let request = bob.wait_for(secs(5), "xfer_request");
    assert!(
        request["target"]
            .as_str()
            .is_some_and(|t| t.contains("Replaces=")),
        "{request}"
    );
    // carol: bob's INVITE with Replaces takes over the consultation on its line.
    let replacing = carol.wait_event(secs(10), |e| {
        e["event"] == "incoming" && e["replaces"] == consult["call_id"]
    });
    assert_eq!(replacing["line"], 1);
    assert_eq!(replacing["from"], kam.aor("bob"));
    assert_eq!(replacing["referred_by"], kam.aor("alice"));
    carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == replacing["call_id"] && e["state"] == "connected"
    });
    carol.wait_event(secs(5), |e| {
        e["event"] == "call" && e["call_id"] == consult["call_id"] && e["state"] == "ended"
    });
    let bob_new = bob.wait_event(secs(10), |e| {
        e["event"] == "state" && e["state"] == "confirmed" && e["call"] != bob_old["call"]
    });
    assert_transfer_succeeded(&mut alice, to_bob);
    alice.wait_state(secs(5), to_carol, "disconnected");
    alice.wait_state(secs(5), to_bob, "disconnected");

    // bob and carol talk.
    thread::sleep(Duration::from_secs(3));
    carol.send("hangup");
    carol.wait_call_state(secs(5), 1, "ended");
    assert!(carol.quit_and_wait(secs(10)).success());
    let bob_call = number(&bob_new);
    bob.wait_state(secs(5), bob_call, "disconnected");
    assert_heard(&bob.recording(secs(5), bob_call), 500.0, "bob");
    assert_heard(&carol_heard, 1000.0, "carol");
    alice.quit(secs(5));
    bob.quit(secs(5));
}

#[test]
fn switchboard_blind_transfers_a_pjsua_caller_to_baresip_and_they_talk() {
    let net = Net::for_test("transfers_pjsua::blind_pjsua_transferee");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut alice = switchboard(&net, "alice", common::hosts::SWITCHBOARD, None);
    let carol = baresip(&net, &kam, "carol", BARESIP_CAROL, 500);
    let mut bob = pjsua(
        &net,
        &kam,
        "bob",
        common::hosts::PJSUA,
        Some(tone(dir.path(), 1000)),
        true,
    );

    let old = bob.dial(&kam.aor("alice"));
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_state(secs(5), old, "confirmed");

    transfer_once_acked(&mut alice, "transfer carol");
    alice.wait_transfer(secs(5), "accepted");
    let request = bob.wait_for(secs(5), "xfer_request");
    assert_eq!(request["target"], format!("<{}>", kam.aor("carol")));
    let new = bob.wait_event(secs(10), |e| {
        e["event"] == "state" && e["state"] == "confirmed" && e["call"] != old
    });
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["kind"], "blind");
    alice.wait_call_state(secs(5), 1, "ended");
    bob.wait_state(secs(5), old, "disconnected");
    thread::sleep(Duration::from_millis(300));
    assert!(alice.no_call_left(), "alice still has a call");

    // bob and carol talk.
    carol.wait_log("Call established", secs(5));
    thread::sleep(Duration::from_secs(3));
    let bob_call = number(&new);
    bob.send(&format!("hangup {bob_call}"));
    carol.wait_log("session closed", secs(5));
    assert_heard(&bob.recording(secs(5), bob_call), 500.0, "bob");
    let carol_heard = carol.heard_recordings();
    assert_heard(
        carol_heard.last().expect("carol recorded the call"),
        1000.0,
        "carol",
    );
    assert!(alice.quit_and_wait(secs(10)).success());
    bob.quit(secs(5));
}

#[test]
fn switchboard_attended_transfer_hands_a_pjsua_caller_to_a_pjsua_target() {
    let net = Net::for_test("transfers_pjsua::attended_pjsua_target");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut alice = switchboard(&net, "alice", common::hosts::SWITCHBOARD, None);
    let mut bob = pjsua(
        &net,
        &kam,
        "bob",
        common::hosts::PJSUA,
        Some(tone(dir.path(), 1000)),
        true,
    );
    let mut carol = pjsua(
        &net,
        &kam,
        "carol",
        common::hosts::PJSUA + 1,
        Some(tone(dir.path(), 500)),
        true,
    );

    let old = bob.dial(&kam.aor("alice"));
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_state(secs(5), old, "confirmed");

    alice.send("consult carol");
    alice.wait_call_state(secs(5), 1, "held");
    alice.wait_call_state(secs(10), 2, "connected");
    let consult = carol.wait_incoming(secs(5));
    thread::sleep(Duration::from_millis(500));
    alice.send("complete");
    alice.wait_transfer(secs(5), "accepted");
    let request = bob.wait_for(secs(5), "xfer_request");
    assert!(
        request["target"]
            .as_str()
            .is_some_and(|t| t.contains("Replaces=")),
        "{request}"
    );
    let replaced = carol.wait_for(secs(10), "replaced");
    assert_eq!(replaced["call"], consult["call"]);
    let done = alice.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["kind"], "attended");
    alice.wait_call_state(secs(5), 1, "ended");
    alice.wait_call_state(secs(10), 2, "ended");
    thread::sleep(Duration::from_millis(300));
    assert!(alice.no_call_left(), "alice still has a call");
    let new = bob.wait_event(secs(10), |e| {
        e["event"] == "state" && e["state"] == "confirmed" && e["call"] != old
    });
    bob.wait_state(secs(5), old, "disconnected");

    // bob and carol talk.
    thread::sleep(Duration::from_secs(3));
    let bob_call = number(&new);
    let carol_call = replaced["new_call"].as_u64().expect("the new call");
    bob.send(&format!("hangup {bob_call}"));
    carol.wait_state(secs(5), carol_call, "disconnected");
    assert_heard(&bob.recording(secs(5), bob_call), 500.0, "bob");
    assert_heard(&carol.recording(secs(5), carol_call), 1000.0, "carol");
    assert!(alice.quit_and_wait(secs(10)).success());
    bob.quit(secs(5));
    carol.quit(secs(5));
}

#[test]
fn switchboard_completes_against_a_pjsua_second_operator_busy_with_her_own_caller() {
    let net = Net::for_test("transfers_pjsua::second_operator");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut alice = switchboard(&net, "alice", common::hosts::SWITCHBOARD, None);
    let mut bob = pjsua(
        &net,
        &kam,
        "bob",
        common::hosts::PJSUA,
        Some(tone(dir.path(), 1000)),
        true,
    );
    // carol, the second operator, answers by hand and is on a call with dave.
    let mut carol = pjsua(
        &net,
        &kam,
        "carol",
        common::hosts::PJSUA + 1,
        Some(tone(dir.path(), 500)),
        false,
    );
    let dave = baresip(&net, &kam, "dave", common::hosts::BARESIP, 300);
    let with_dave = carol.dial(&kam.aor("dave"));
    carol.wait_state(secs(10), with_dave, "confirmed");

    let old = bob.dial(&kam.aor("alice"));
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_state(secs(5), old, "confirmed");

    // alice consults carol, who holds dave to take the call.
    alice.send("consult carol");
    alice.wait_call_state(secs(5), 1, "held");
    let consult = carol.wait_incoming(secs(10));
    carol.send(&format!("hold {with_dave}"));
    carol.wait_event(secs(5), |e| {
        e["event"] == "media" && e["call"] == with_dave && e["status"] == "local_hold"
    });
    carol.send(&format!("answer {}", number(&consult)));
    alice.wait_call_state(secs(10), 2, "connected");
    thread::sleep(Duration::from_millis(500));
    alice.send("complete");
    let replaced = carol.wait_for(secs(10), "replaced");
    assert_eq!(replaced["call"], consult["call"]);
    alice.wait_transfer(secs(15), "succeeded");
    alice.wait_call_state(secs(5), 1, "ended");
    alice.wait_call_state(secs(10), 2, "ended");
    thread::sleep(Duration::from_millis(300));
    assert!(alice.no_call_left(), "alice still has a call");
    let new = bob.wait_event(secs(10), |e| {
        e["event"] == "state" && e["state"] == "confirmed" && e["call"] != old
    });
    // dave is still on hold with carol, untouched.
    carol.expect_no_event(Duration::from_millis(500), |e| {
        e["event"] == "state" && e["call"] == with_dave && e["state"] == "disconnected"
    });

    // bob and carol talk, then carol goes back to dave.
    thread::sleep(Duration::from_secs(3));
    let bob_call = number(&new);
    let carol_call = replaced["new_call"].as_u64().expect("the new call");
    carol.send(&format!("hangup {carol_call}"));
    bob.wait_state(secs(5), bob_call, "disconnected");
    assert_heard(&bob.recording(secs(5), bob_call), 500.0, "bob");
    assert_heard(&carol.recording(secs(5), carol_call), 1000.0, "carol");
    carol.send(&format!("unhold {with_dave}"));
    carol.wait_event(secs(5), |e| {
        e["event"] == "media" && e["call"] == with_dave && e["status"] == "active"
    });
    carol.send(&format!("hangup {with_dave}"));
    dave.wait_log("session closed", secs(5));
    assert!(alice.quit_and_wait(secs(10)).success());
    bob.quit(secs(5));
    carol.quit(secs(5));
}

#[test]
fn a_pjsua_refusing_the_refer_comes_back_to_the_operator_and_they_talk_again() {
    let net = Net::for_test("transfers_pjsua::refer_refused");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let alice_heard = dir.path().join("alice-heard.wav");
    let mut alice = switchboard(
        &net,
        "alice",
        common::hosts::SWITCHBOARD,
        Some((&tone(dir.path(), 1000), &alice_heard)),
    );
    let mut bob = Pjsua::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        PjsuaOptions {
            play: Some(tone(dir.path(), 500)),
            accept_refer: false,
            ..PjsuaOptions::default()
        },
    );
    bob.wait_registered(secs(5));

    let call = bob.dial(&kam.aor("alice"));
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    bob.wait_state(secs(5), call, "confirmed");
    transfer_once_acked(&mut alice, "transfer carol");
    let refused = bob.wait_for(secs(5), "xfer_request");
    assert_eq!(refused["answer"], 603);
    let failed = alice.wait_transfer(secs(5), "failed");
    assert_eq!(failed["status_code"], 603, "{failed}");
    alice.wait_transfer(secs(5), "recalled");
    alice.wait_call_state(secs(5), 1, "connected");
    // bob was held for the REFER and is resumed.
    bob.wait_event(secs(5), |e| {
        e["event"] == "media" && e["call"] == call && e["status"] == "remote_hold"
    });
    bob.wait_event(secs(5), |e| {
        e["event"] == "media" && e["call"] == call && e["status"] == "active"
    });
    thread::sleep(Duration::from_secs(2));
    alice.send("hangup");
    alice.wait_call_state(secs(5), 1, "ended");
    bob.wait_state(secs(5), call, "disconnected");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert_heard(&alice_heard, 500.0, "alice");
    assert_heard(&bob.recording(secs(5), call), 1000.0, "bob");
    bob.quit(secs(5));
}

#[test]
fn a_switchboard_referred_to_nobody_stays_with_the_pjsua_transferor_and_they_talk_again() {
    let net = Net::for_test("transfers_pjsua::referred_to_nobody");
    let kam = kamailio(&net);
    let dir = tempfile::tempdir().expect("temp dir");
    let bob_heard = dir.path().join("bob-heard.wav");
    let mut bob = switchboard(
        &net,
        "bob",
        SB_BOB,
        Some((&tone(dir.path(), 1000), &bob_heard)),
    );
    let mut alice = pjsua(
        &net,
        &kam,
        "alice",
        common::hosts::PJSUA,
        Some(tone(dir.path(), 500)),
        true,
    );
    let call = alice.dial(&kam.aor("bob"));
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_state(secs(10), call, "confirmed");
    bob.wait_call_state(secs(5), 1, "connected");
    alice.send(&format!("hold {call}"));
    bob.wait_call_state(secs(5), 1, "remote_held");

    alice.send(&format!("xfer {call} {}", kam.aor("nobody")));
    let failed = bob.wait_transfer(secs(10), "failed");
    assert_eq!(failed["kind"], "incoming");
    let told = alice.wait_event(secs(10), |e| {
        e["event"] == "xfer_status" && e["call"] == call && e["final"] == true
    });
    assert!(told["code"].as_u64().is_some_and(|c| c >= 400), "{told}");
    // bob had held alice to call the target: the call comes back to his line 1, resumed.
    bob.wait_event(secs(5), |e| e["event"] == "line" && e["line"] == 1);
    bob.wait_call_state(secs(5), 1, "held");
    bob.wait_event(secs(5), |e| {
        e["event"] == "call"
            && e["line"] == 1
            && (e["state"] == "connected" || e["state"] == "remote_held")
    });
    // alice takes bob back; they talk again.
    alice.send(&format!("unhold {call}"));
    alice.wait_event(secs(5), |e| {
        e["event"] == "media" && e["call"] == call && e["status"] == "active"
    });
    thread::sleep(Duration::from_secs(3));
    alice.send(&format!("hangup {call}"));
    bob.wait_call_state(secs(5), 1, "ended");
    assert!(bob.quit_and_wait(secs(10)).success());
    assert_heard(&alice.recording(secs(5), call), 1000.0, "alice");
    assert_heard(&bob_heard, 500.0, "bob");
    alice.quit(secs(5));
}
