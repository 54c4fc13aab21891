//! Blind transfer with real phones through kamailio: switchboard (alice) calls baresip or
//! linphonec (bob) and transfers him to a second baresip (carol), who then really talks with
//! bob; a transfer to nobody comes back to the operator; and a switchboard is transferred.

mod common;

use std::thread;
use std::time::Duration;

use common::{
    secs, Baresip, BaresipOptions, Kamailio, Linphonec, LinphonecOptions, Net, Switchboard,
    SwitchboardConfig,
};
use serde_json::Value;

/// alice's config: blind transfers REFER and watch the NOTIFYs (`blind = "notify"`), as
/// these tests are about the transferee's NOTIFYs (ring-first is `tests/transfer_pbx.rs`).
fn alice_notify(net: &Net) -> SwitchboardConfig {
    SwitchboardConfig::registering(net, "alice", "alicepw")
        .with_extra("[transfer]\nblind = \"notify\"")
}

/// Host number of the second baresip (carol) in the test's /24.
const CAROL: u8 = 6;

/// carol: a baresip at [`CAROL`] registering at `kam`, playing a 500 Hz sine.
fn carol_baresip(net: &Net, kam: &Kamailio) -> Baresip {
    Baresip::start(
        net,
        "carol",
        "carolpw",
        kam.ip(),
        BaresipOptions {
            host: CAROL,
            audio_source: common::AudioSource::Sine(500),
            ..BaresipOptions::default()
        },
    )
}

/// kamailio with alice, bob and carol; bob is a baresip playing a 1 kHz sine; switchboard is
/// alice, in a connected call with bob.
fn call_with_bob(name: &str) -> (Net, Kamailio, Baresip, Switchboard) {
    let net = Net::for_test(name);
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let bob = Baresip::start(&net, "bob", "bobpw", kam.ip(), BaresipOptions::default());
    let mut sb = Switchboard::start(&alice_notify(&net).to_toml());
    sb.wait_for(secs(10), "registered");
    bob.wait_registered(secs(10));
    sb.send("dial bob");
    sb.wait_call_state(secs(10), 1, "connected");
    (net, kam, bob, sb)
}

#[test]
fn blind_transfer_hands_bob_to_carol_and_they_talk() {
    let (net, kam, bob, mut sb) = call_with_bob("transfers::blind_to_carol");
    let carol = carol_baresip(&net, &kam);
    carol.wait_registered(secs(10));
    sb.send("transfer carol");
    let requested = sb.wait_transfer(secs(2), "requested");
    assert_eq!(requested["kind"], "blind");
    assert_eq!(requested["target"], format!("sip:carol@{}", kam.ip()));
    // We hold bob before referring him (a REFER racing a re-INVITE gets 491).
    sb.wait_call_state(secs(5), 1, "held");
    sb.wait_transfer(secs(5), "accepted");
    let done = sb.wait_transfer(secs(15), "succeeded");
    assert_eq!(
        done["reason"],
        format!("transferred to sip:carol@{}", kam.ip())
    );
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    println!("our call ended: {ended}");
    // baresip never BYEs the transferor after a transfer: we did, and nothing is left.
    thread::sleep(Duration::from_millis(500));
    let last = sb.events().into_iter().rfind(|e| e["event"] == "call");
    assert_eq!(last.map(|e| e["state"].clone()), Some("ended".into()));
    // bob and carol talk: carol hears bob's 1 kHz sine.
    carol.wait_log("Call established", secs(5));
    thread::sleep(Duration::from_secs(2));
    bob.hangup();
    carol.wait_log("session closed", secs(5));
    let heard = carol.heard_recordings();
    let recording = heard.first().expect("carol recorded the call");
    let stat = common::audio::wav_stat(recording);
    println!("carol heard: {stat:?}");
    assert!(
        (900.0..1100.0).contains(&stat["Rough frequency"]),
        "carol hears bob's 1 kHz: {stat:?}"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn a_transfer_to_nobody_brings_the_call_back() {
    let (_net, kam, bob, mut sb) = call_with_bob("transfers::blind_to_nobody");
    sb.send("transfer nobody");
    sb.wait_transfer(secs(2), "requested");
    sb.wait_call_state(secs(5), 1, "held");
    let failed = sb.wait_transfer(secs(15), "failed");
    println!("failed: {failed}");
    assert!(
        failed["status_code"].as_u64().is_some_and(|c| c >= 400),
        "{failed}"
    );
    let recalled = sb.wait_transfer(secs(2), "recalled");
    assert_eq!(
        recalled["reason"],
        "reconnecting: the call is back on line 1"
    );
    // The call is resumed and still up with bob.
    sb.wait_call_state(secs(5), 1, "connected");
    sb.expect_no_event(Duration::from_secs(1), |e| {
        e["event"] == "call" && e["state"] == "ended"
    });
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    let log = kam.log();
    assert!(
        log.contains("LAB-REQ REFER"),
        "the REFER went through kamailio"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
}

/// Three parties through kamailio: alice and bob are switchboards (bob with `bob_extra` in
/// his config), carol a baresip; alice has called bob and he answered (`bob_call` is bob's
/// `connected` event). Keep `kam` and `_net` alive while the test runs.
struct SbToSb {
    kam: Kamailio,
    carol: Baresip,
    alice: Switchboard,
    bob: Switchboard,
    bob_call: Value,
    _net: Net,
}

fn alice_calls_switchboard_bob(name: &str, bob_extra: &str) -> SbToSb {
    let net = Net::for_test(name);
    let kam = Kamailio::start(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw"), ("carol", "carolpw")],
    );
    let carol = carol_baresip(&net, &kam);
    let mut alice = Switchboard::start(&alice_notify(&net).to_toml());
    let mut bob_cfg = SwitchboardConfig::registering(&net, "bob", "bobpw").with_extra(bob_extra);
    bob_cfg.bind = (net.ip(7), 5060).into();
    let mut bob = Switchboard::start(&bob_cfg.to_toml());
    alice.wait_for(secs(10), "registered");
    bob.wait_for(secs(10), "registered");
    carol.wait_registered(secs(10));
    alice.send("dial bob");
    bob.wait_for(secs(10), "incoming");
    bob.send("answer");
    alice.wait_call_state(secs(10), 1, "connected");
    let bob_call = bob.wait_call_state(secs(5), 1, "connected");
    SbToSb {
        kam,
        carol,
        alice,
        bob,
        bob_call,
        _net: net,
    }
}

#[test]
fn switchboard_transfers_switchboard_to_baresip() {
    let SbToSb {
        kam,
        carol,
        mut alice,
        mut bob,
        bob_call: old,
        _net,
    } = alice_calls_switchboard_bob("transfers::sb_to_sb_to_carol", "");

    alice.send("transfer carol");
    // bob is told, calls carol on line 2, and the old call ends once she answers.
    let told = bob.wait_transfer(secs(5), "requested");
    assert_eq!(told["kind"], "incoming");
    assert_eq!(told["target"], format!("sip:carol@{}", kam.ip()));
    let new = bob.wait_call_state(secs(10), 2, "connected");
    assert_ne!(new["call_id"], old["call_id"]);
    bob.wait_transfer(secs(5), "succeeded");
    let ended = bob.wait_event(secs(5), |e| {
        e["event"] == "call" && e["state"] == "ended" && e["call_id"] == old["call_id"]
    });
    assert_eq!(
        ended["reason"],
        format!("transferred to sip:carol@{}", kam.ip())
    );
    // alice saw the whole transfer through bob's NOTIFYs.
    let done = alice.wait_transfer(secs(10), "succeeded");
    assert_eq!(done["status_code"], 200);
    alice.wait_call_state(secs(5), 1, "ended");
    carol.wait_log("Call established", secs(5));
    bob.send("hangup 2");
    bob.wait_call_state(secs(5), 2, "ended");
    carol.wait_log("session closed", secs(5));
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn a_switchboard_that_asks_first_is_transferred_only_when_its_operator_says_so() {
    let SbToSb {
        kam: _kam,
        carol,
        mut alice,
        mut bob,
        _net,
        ..
    } = alice_calls_switchboard_bob(
        "transfers::ask_before_transfer",
        "[transfer]\naccept_refer = \"ask\"\n",
    );

    // Bob's operator says no: alice's REFER is refused and her call comes back.
    alice.send("transfer carol");
    let asked = bob.wait_transfer(secs(5), "asking");
    assert_eq!(asked["kind"], "incoming");
    bob.expect_no_event(Duration::from_millis(500), |e| {
        e["event"] == "call" && e["line"] == 2
    });
    bob.send("decline 1");
    let refused = alice.wait_transfer(secs(5), "failed");
    assert_eq!(refused["status_code"], 603);
    alice.wait_transfer(secs(10), "recalled");
    alice.wait_call_state(secs(10), 1, "connected");

    // Asked again, bob's operator agrees: bob calls carol and the old call ends.
    alice.send("transfer carol");
    bob.wait_transfer(secs(5), "asking");
    bob.send("answer 1");
    bob.wait_transfer(secs(5), "accepted");
    bob.wait_call_state(secs(10), 2, "connected");
    alice.wait_transfer(secs(10), "succeeded");
    carol.wait_log("Call established", secs(5));
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn blind_transfer_of_linphonec_to_baresip() {
    let net = Net::for_test("transfers::linphonec_to_carol");
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
    let carol = carol_baresip(&net, &kam);
    bob.wait_registered(secs(10));
    carol.wait_registered(secs(10));
    let mut sb = Switchboard::start(&alice_notify(&net).to_toml());
    sb.wait_for(secs(10), "registered");
    sb.send("dial bob");
    sb.wait_call_state(secs(10), 1, "connected");
    sb.send("transfer carol");
    sb.wait_transfer(secs(5), "accepted");
    // linphonec holds us before acting on the REFER and ends its subscription with a
    // malformed `Subscription-State: terminated;reason=reason=noresource`.
    let done = sb.wait_transfer(secs(15), "succeeded");
    assert_eq!(done["status_code"], 200);
    sb.wait_call_state(secs(5), 1, "ended");
    carol.wait_log("Call established", secs(5));
    thread::sleep(Duration::from_secs(2));
    bob.command("terminate all");
    carol.wait_log("session closed", secs(5));
    let heard = carol.heard_recordings();
    let recording = heard.first().expect("carol recorded the call");
    let stat = common::audio::wav_stat(recording);
    assert!(
        (900.0..1100.0).contains(&stat["Rough frequency"]),
        "carol hears bob's 1 kHz: {stat:?}"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn a_pbx_transfer_keys_the_feature_code_as_dtmf_then_hangs_up() {
    // The "PBX" is a second switchboard: it reports every digit it receives.
    let net = Net::for_test("transfers::pbx_dtmf");
    let mut pbx_cfg = SwitchboardConfig::peer_to_peer(&net);
    pbx_cfg.bind = (net.ip(7), 5060).into();
    pbx_cfg.accounts[0].user = "pbx".into();
    let mut pbx = Switchboard::start(&pbx_cfg.to_toml());
    let mut cfg = SwitchboardConfig::peer_to_peer(&net);
    cfg.accounts[0].extra = "transfer_method = \"dtmf\"\n".into();
    let mut sb = Switchboard::start(&cfg.to_toml());
    pbx.wait_for(secs(10), "started");
    sb.wait_for(secs(10), "started");
    sb.send(&format!("dial sip:pbx@{}", net.ip(7)));
    pbx.wait_for(secs(5), "incoming");
    pbx.send("answer");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("transfer 200");
    let asked = sb.wait_transfer(secs(2), "requested");
    assert_eq!(asked["reason"], "keying the PBX's transfer code #1200#");
    let mut digits = String::new();
    while digits.len() < 6 {
        let e = pbx.wait_event(secs(5), |e| e["event"] == "dtmf");
        digits.push_str(e["digit"].as_str().unwrap_or("?"));
    }
    assert_eq!(digits, "#1200#");
    sb.wait_transfer(secs(5), "succeeded");
    let ended = pbx.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "the far end hung up");
    assert!(sb.quit_and_wait(secs(10)).success());
    assert!(pbx.quit_and_wait(secs(10)).success());
}

#[test]
fn a_pbx_that_hangs_up_after_the_feature_code_took_the_call() {
    // Asterisk's blindxfer ends the operator's leg about 0.8 s after the last digit, before
    // switchboard's own BYE: the "PBX" here (a second switchboard that reports each digit)
    // hangs up as soon as it has the whole code. That is the hand-over succeeding.
    let net = Net::for_test("transfers::pbx_dtmf_hangup");
    let mut pbx_cfg = SwitchboardConfig::peer_to_peer(&net);
    pbx_cfg.bind = (net.ip(7), 5060).into();
    pbx_cfg.accounts[0].user = "pbx".into();
    let mut pbx = Switchboard::start(&pbx_cfg.to_toml());
    let hook_dir = tempfile::tempdir().expect("temp dir");
    let hook_env = hook_dir.path().join("transfer.env");
    let mut cfg = SwitchboardConfig::peer_to_peer(&net).with_extra(&format!(
        "[hooks]\non_transfer = \"env | grep ^SWITCHBOARD_ > {}\"\n",
        hook_env.display()
    ));
    cfg.accounts[0].extra = "transfer_method = \"dtmf\"\n".into();
    let mut sb = Switchboard::start(&cfg.to_toml());
    pbx.wait_for(secs(10), "started");
    sb.wait_for(secs(10), "started");
    sb.send(&format!("dial sip:pbx@{}", net.ip(7)));
    pbx.wait_for(secs(5), "incoming");
    pbx.send("answer");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("transfer 200");
    sb.wait_transfer(secs(2), "requested");
    let mut digits = String::new();
    while digits.len() < 6 {
        let e = pbx.wait_event(secs(5), |e| e["event"] == "dtmf");
        digits.push_str(e["digit"].as_str().unwrap_or("?"));
    }
    assert_eq!(digits, "#1200#");
    pbx.send("hangup");
    let done = sb.wait_transfer(secs(5), "succeeded");
    assert!(
        done["reason"]
            .as_str()
            .is_some_and(|r| r.contains("the PBX took the call")),
        "{done}"
    );
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "handed to the PBX for 200", "{ended}");
    // The far end hung up first: switchboard sent no BYE of its own.
    let pbx_ended = pbx.wait_call_state(secs(5), 1, "ended");
    assert_ne!(pbx_ended["reason"], "the far end hung up", "{pbx_ended}");
    sb.expect_no_event(Duration::from_millis(500), |e| {
        e["event"] == "transfer" && e["status"] != "succeeded"
    });
    // The hook ran for the transfer, and the history says where the call went.
    let env = common::wait_for_file(&hook_env);
    assert!(env.contains("SWITCHBOARD_EVENT=transfer"), "{env}");
    let history = sb
        .run_dir()
        .join("home/.local/share/switchboard/history.jsonl");
    let text = common::wait_for_file(&history);
    assert!(text.contains("\"transferred\""), "{text}");
    assert!(sb.quit_and_wait(secs(10)).success());
    assert!(pbx.quit_and_wait(secs(10)).success());
}
