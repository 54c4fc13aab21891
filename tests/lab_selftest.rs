//! Proves the lab harness itself (tests/common) works with the real peers on this machine:
//! kamailio comes up and answers OPTIONS, baresip and linphonec register to it with digest auth
//! and show up in its location table, every sipp scenario in tests/lab runs to success against
//! its counterpart, calls cross kamailio in both directions with correct route sets, peers die
//! with their process group when dropped, and the switchboard wrapper works (against a fake
//! binary, since the real one is tested by the other test files).
//!
//! Each test is a few seconds at most. They need the Debian packages listed in tests/common.
#![allow(clippy::disallowed_methods)] // the lab waits on real processes in real time

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use common::audio;
use common::digest::{md5_hex, verify_digest};
use common::process::{live_group_members, udp_bound};
use common::{
    garbage_cases, hosts, millis, secs, send_garbage, sip_options, AnswerMode, AudioSource,
    Baresip, BaresipOptions, Capture, Kamailio, KamailioAuth, Linphonec, LinphonecOptions, Net,
    Pjsua, PjsuaOptions, Sipp, SippOutcome, Switchboard, SwitchboardConfig, Twinkle,
    TwinkleOptions,
};

// ---------------------------------------------------------------------------------------------
// Pure helpers

#[test]
fn md5_matches_the_rfc_1321_test_suite() {
    let vectors = [
        ("", "d41d8cd98f00b204e9800998ecf8427e"),
        ("a", "0cc175b9c0f1b6a831c399e269772661"),
        ("abc", "900150983cd24fb0d6963f7d28e17f72"),
        ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
        (
            "abcdefghijklmnopqrstuvwxyz",
            "c3fcd3d76192e4007dfb496cca67e13b",
        ),
        (
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
            "d174ab98d277d9f5a5611c2c9f419d9f",
        ),
        (
            "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
            "57edf4a22be3c955ac49da2e2107b67a",
        ),
    ];
    for (input, expected) in vectors {
        assert_eq!(md5_hex(input.as_bytes()), expected, "MD5({input:?})");
    }
}

#[test]
fn digest_check_accepts_the_rfc_2617_example_and_rejects_a_wrong_password() {
    // RFC 2617 section 3.5 (HTTP, but the computation is the same).
    let creds = r#"Digest username="Mufasa", realm="testrealm@host.com",
        nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth,
        nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1",
        opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
    let params = verify_digest(creds, "GET", "Circle Of Life").expect("RFC 2617 example");
    assert_eq!(params["username"], "Mufasa");
    assert!(verify_digest(creds, "GET", "wrong").is_err());
    assert!(verify_digest(creds, "POST", "Circle Of Life").is_err());
    assert!(verify_digest("Basic QWxhZGRpbjpvcGVu", "GET", "x").is_err());
}

#[test]
fn nets_are_stable_per_name_distinct_at_once_and_avoid_127_0() {
    let first_ip = {
        let net = Net::for_test("lab_selftest::nets_a");
        net.ip(1)
    };
    // Released on drop, so the same name gets the same subnet again.
    let again = Net::for_test("lab_selftest::nets_a");
    assert_eq!(again.ip(1), first_ip);
    // The same name while the first is alive: a different subnet (the collision path).
    let twin = Net::for_test("lab_selftest::nets_a");
    assert_ne!(twin.ip(1), again.ip(1));
    let other = Net::for_test("lab_selftest::nets_b");
    for net in [&again, &twin, &other] {
        let o = net.ip(7).octets();
        assert_eq!(o[0], 127);
        assert!((1..=254).contains(&o[1]), "{}", net.subnet());
        assert_eq!(o[3], 7);
    }
    assert_ne!(other.ip(1), again.ip(1));
}

#[test]
fn switchboard_config_builder_renders_the_expected_toml() {
    let net = Net::for_test("lab_selftest::config_builder");
    let kam = net.ip(hosts::KAMAILIO);
    let sb = net.ip(hosts::SWITCHBOARD);
    let toml = SwitchboardConfig::registering(&net, "alice", "al\"ice")
        .with_codecs(&["pcma"])
        .with_outbound_proxy(&format!("sip:{kam}:5060"))
        .with_network("rtp_port_min = 30000")
        .with_audio("backend = \"file\"")
        .with_extra("[media]\ndtmf = \"info\"")
        .to_toml();
    for line in [
        "[general]".to_owned(),
        "log_level = \"debug\"".to_owned(),
        "[network]".to_owned(),
        format!("bind = \"{sb}:5060\""),
        "[[account]]".to_owned(),
        "user = \"alice\"".to_owned(),
        format!("domain = \"{kam}\""),
        format!("registrar = \"sip:{kam}:5060\""),
        format!("outbound_proxy = \"sip:{kam}:5060\""),
        "transport = \"udp\"".to_owned(),
        "password = \"al\\\"ice\"".to_owned(),
        "register = true".to_owned(),
        "expires = 600".to_owned(),
        "order = [\"pcma\"]".to_owned(),
        "rtp_port_min = 30000".to_owned(),
        "[audio]".to_owned(),
        "backend = \"file\"".to_owned(),
        "[media]".to_owned(),
        "dtmf = \"info\"".to_owned(),
    ] {
        assert!(
            toml.lines().any(|l| l == line),
            "missing {line:?} in:\n{toml}"
        );
    }
    let p2p = SwitchboardConfig::peer_to_peer(&net).to_toml();
    assert!(p2p.contains("register = false"), "{p2p}");
    for text in [&toml, &p2p] {
        if let Err(e) = switchboard::config::Config::parse(text, std::path::Path::new("lab.toml")) {
            panic!("the builder's TOML is rejected: {e}\n{text}");
        }
    }
    assert!(!p2p.contains("password"), "{p2p}");
}

// ---------------------------------------------------------------------------------------------
// kamailio

#[test]
fn kamailio_starts_and_answers_options() {
    let net = Net::for_test("lab_selftest::kamailio_options");
    let kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    assert!(kam.ping(), "sipsak OPTIONS");
    let reply = sip_options(kam.addr(), net.addr(hosts::TOOLS, 5099)).expect("raw OPTIONS reply");
    assert!(reply.starts_with("SIP/2.0 200"), "{reply}");
    assert!(kam.ul_dump().contains("Domain: location"), "kamcmd works");
    assert!(kam.contacts("alice").is_empty());
}

#[test]
fn capture_records_the_sip_of_the_test_subnet() {
    let net = Net::for_test("lab_selftest::capture");
    let mut capture = Capture::start(&net);
    let kam = Kamailio::start_without_auth(&net);
    assert!(kam.ping());
    let summary = capture.sip_summary();
    assert!(summary.contains("Request: OPTIONS"), "{summary}");
    assert!(summary.contains("Status: 200"), "{summary}");
}

#[test]
fn two_kamailios_run_side_by_side() {
    let net_a = Net::for_test("lab_selftest::kamailio_twin_a");
    let net_b = Net::for_test("lab_selftest::kamailio_twin_b");
    let a = Kamailio::start(&net_a, &[]);
    let b = Kamailio::start_without_auth(&net_b);
    assert!(a.ping() && b.ping());
    // Each answers on its own ctl socket.
    assert!(a.rpc(&["core.version"]).is_ok());
    assert!(b.rpc(&["core.version"]).is_ok());
}

#[test]
fn dropped_peers_leave_no_process_behind() {
    let net = Net::for_test("lab_selftest::no_leftovers");
    let kam = Kamailio::start(&net, &[]);
    let pid = kam.run_dir().join("kamailio.pid");
    let pid: u32 = fs::read_to_string(pid)
        .expect("kamailio wrote its pid file")
        .trim()
        .parse()
        .expect("a pid");
    assert!(
        live_group_members(pid) > 1,
        "kamailio forks its workers into its group"
    );
    drop(kam);
    assert_eq!(live_group_members(pid), 0, "kamailio's group is gone");
    assert!(!udp_bound(net.sip_addr(hosts::KAMAILIO)));
}

#[test]
fn kamailio_survives_garbage_and_the_garbage_helper_matches_replies() {
    let net = Net::for_test("lab_selftest::garbage_kamailio");
    let kam = Kamailio::start_without_auth(&net);
    let from = net.addr(hosts::TOOLS, 5098);
    let cases = garbage_cases(kam.addr(), from);
    let replies = send_garbage(kam.addr(), from);
    assert_eq!(replies.len(), cases.len());
    // Nothing can answer datagrams without a Via, a stray response or junk.
    for (case, reply) in cases.iter().zip(&replies) {
        if [
            "missing Via",
            "binary junk",
            "stray response",
            "empty datagram",
        ]
        .contains(&case.name)
        {
            assert!(reply.is_none(), "{}: {reply:?}", case.name);
        }
    }
    // A well-formed request to an unknown user gets kamailio's 404, proving replies are
    // matched to their case.
    let unknown_method = cases
        .iter()
        .position(|c| c.name == "unknown method")
        .expect("case exists");
    let reply = replies[unknown_method].as_deref().unwrap_or("");
    assert!(reply.starts_with("SIP/2.0 404"), "{reply:?}");
    assert!(kam.ping(), "kamailio still answers");
}

// ---------------------------------------------------------------------------------------------
// baresip and linphonec registering

#[test]
fn baresip_registers_with_digest_and_is_reachable_through_kamailio() {
    let net = Net::for_test("lab_selftest::baresip_register");
    let kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    let baresip = Baresip::start(
        &net,
        "alice",
        "alicepw",
        kam.ip(),
        BaresipOptions::default(),
    );
    baresip.wait_registered(secs(5));
    let contacts = kam.wait_registered("alice", secs(2));
    assert!(
        contacts
            .iter()
            .any(|c| c.contains(&baresip.ip().to_string())),
        "{contacts:?}"
    );
    // An OPTIONS to the AOR is relayed by kamailio to baresip, which answers it.
    let out = kam.options(&kam.aor("alice")).expect("OPTIONS to the AOR");
    assert!(out.contains("baresip"), "{out}");
    assert!(kam.log().contains("LAB-REQ REGISTER"));
}

#[test]
fn baresip_with_a_wrong_password_is_refused() {
    let net = Net::for_test("lab_selftest::baresip_wrong_password");
    let kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    let baresip = Baresip::start(&net, "alice", "nope", kam.ip(), BaresipOptions::default());
    let refused = catch_unwind(AssertUnwindSafe(|| baresip.wait_registered(secs(5))));
    assert!(refused.is_err(), "registration must fail");
    assert!(kam.contacts("alice").is_empty());
}

#[test]
fn linphonec_registers_with_digest() {
    let net = Net::for_test("lab_selftest::linphonec_register");
    let kam = Kamailio::start(&net, &[("bob", "bobpw")]);
    let linphonec = Linphonec::start(&net, "bob", "bobpw", kam.ip(), LinphonecOptions::default());
    linphonec.wait_registered(secs(5));
    let contacts = kam.wait_registered("bob", secs(2));
    assert!(
        contacts
            .iter()
            .any(|c| c.contains(&linphonec.ip().to_string())),
        "{contacts:?}"
    );
}

#[test]
fn twinkles_register_with_digest_on_their_own_ports_and_answer_options() {
    let net = Net::for_test("lab_selftest::twinkle_register");
    let kam = Kamailio::start(&net, &[("bob", "bobpw"), ("carol", "carolpw")]);
    let mut bob = Twinkle::start(&net, "bob", "bobpw", kam.ip(), TwinkleOptions::default());
    // twinkle binds 0.0.0.0: a second one in the same subnet needs other ports.
    let carol = Twinkle::start(
        &net,
        "carol",
        "carolpw",
        kam.ip(),
        TwinkleOptions::default(),
    );
    assert_ne!(bob.sip_port(), carol.sip_port());
    bob.wait_registered(secs(5));
    carol.wait_registered(secs(5));
    for (user, twinkle) in [("bob", &bob), ("carol", &carol)] {
        let contacts = kam.wait_registered(user, secs(2));
        assert!(
            contacts
                .iter()
                .any(|c| c.contains(&twinkle.addr().to_string())),
            "{contacts:?}"
        );
    }
    // An OPTIONS to the AOR is relayed by kamailio to twinkle, which answers it.
    let out = kam.options(&kam.aor("bob")).expect("OPTIONS to the AOR");
    assert!(out.contains("Twinkle"), "{out}");
    assert!(bob.sound_server_running());
    assert!(bob.is_running());
}

#[test]
fn pjsua_registers_with_digest_and_talks_both_ways_with_baresip_through_kamailio() {
    let net = Net::for_test("lab_selftest::pjsua_register_and_talk");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let dir = tempfile::tempdir().expect("temp dir");
    let tone = audio::tone_wav(dir.path(), "alice-1k.wav", 1000, 30);
    let mut alice = Pjsua::start(
        &net,
        "alice",
        "alicepw",
        kam.ip(),
        PjsuaOptions {
            play: Some(tone),
            ..PjsuaOptions::default()
        },
    );
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(500),
            ..BaresipOptions::default()
        },
    );
    alice.wait_registered(secs(5));
    bob.wait_registered(secs(5));
    let contacts = kam.wait_registered("alice", secs(2));
    assert!(
        contacts.iter().any(|c| c.contains(&alice.ip().to_string())),
        "{contacts:?}"
    );
    let call = alice.dial(&format!("sip:bob@{}", kam.ip()));
    alice.wait_state(secs(10), call, "confirmed");
    std::thread::sleep(millis(2500));
    alice.send(&format!("hangup {call}"));
    alice.wait_state(secs(5), call, "disconnected");
    let heard = alice.recording(secs(5), call);
    let stat = audio::wav_stat(&heard);
    assert!(stat["RMS amplitude"] > 0.05, "alice heard {stat:?}");
    assert!(
        (450.0..550.0).contains(&stat["Rough frequency"]),
        "alice hears bob's 500 Hz: {stat:?}"
    );
    bob.wait_log("session closed", secs(5));
    let bob_heard = bob.heard_recordings();
    let stat = audio::wav_stat(bob_heard.first().expect("bob recorded the call"));
    assert!(
        (900.0..1100.0).contains(&stat["Rough frequency"]),
        "bob hears alice's 1 kHz: {stat:?}"
    );
    // The log parser finds the REGISTER challenge and the INVITE.
    let sent = alice.sent_messages();
    assert!(sent
        .iter()
        .any(|m| m.starts_with("REGISTER ") && m.contains("Authorization:")));
    assert!(sent.iter().any(|m| m.starts_with("INVITE sip:bob@")));
    assert!(alice
        .received_messages()
        .iter()
        .any(|m| m.starts_with("SIP/2.0 401")));
    alice.quit(secs(5));
}

#[test]
fn pjsua_transfers_a_pjsua_peer_to_peer_and_the_target_takes_replaces() {
    // Three pjsuas without kamailio: alice talks to bob and consults carol, then refers bob to
    // carol with Replaces; bob's INVITE replaces alice's call at carol.
    let net = Net::for_test("lab_selftest::pjsua_attended_p2p");
    let p2p = |host| PjsuaOptions {
        host,
        register: false,
        ..PjsuaOptions::default()
    };
    let domain = net.ip(hosts::KAMAILIO);
    let mut alice = Pjsua::start(&net, "alice", "", domain, p2p(hosts::PJSUA));
    let mut bob = Pjsua::start(&net, "bob", "", domain, p2p(hosts::PJSUA + 1));
    let mut carol = Pjsua::start(&net, "carol", "", domain, p2p(hosts::PJSUA + 2));
    let to_bob = alice.dial(&bob.direct_uri());
    alice.wait_state(secs(5), to_bob, "confirmed");
    alice.send(&format!("hold {to_bob}"));
    alice.wait_event(secs(5), |e| {
        e["event"] == "media" && e["status"] == "local_hold"
    });
    bob.wait_event(secs(5), |e| {
        e["event"] == "media" && e["status"] == "remote_hold"
    });
    let to_carol = alice.dial(&carol.direct_uri());
    alice.wait_state(secs(5), to_carol, "confirmed");
    let consult = carol.wait_incoming(secs(2));
    alice.send(&format!("xfer_replaces {to_bob} {to_carol}"));
    let request = bob.wait_for(secs(5), "xfer_request");
    assert!(
        request["target"]
            .as_str()
            .is_some_and(|t| t.contains("Replaces=")),
        "{request}"
    );
    let done = alice.wait_event(secs(10), |e| {
        e["event"] == "xfer_status" && e["final"] == true
    });
    assert_eq!(done["code"], 200, "{done}");
    let replaced = carol.wait_for(secs(5), "replaced");
    assert_eq!(replaced["call"], consult["call"]);
    carol.wait_state(
        secs(5),
        consult["call"].as_u64().expect("call"),
        "disconnected",
    );
    alice.wait_state(secs(5), to_carol, "disconnected");
    alice.send(&format!("hangup {to_bob}"));
    alice.wait_state(secs(5), to_bob, "disconnected");
    carol.send("hangup all");
    bob.wait_event(secs(5), |e| {
        e["event"] == "state" && e["state"] == "disconnected"
    });
}

// ---------------------------------------------------------------------------------------------
// sipp scenarios against each other (peer to peer, no kamailio)

/// Runs `uas` at .10 and `uac` at .11 calling it, and requires both to pass.
fn sipp_pair(
    name: &str,
    uas: &str,
    uas_args: &[&str],
    uac: &str,
    uac_args: &[&str],
) -> (Net, Sipp, Sipp) {
    let net = Net::for_test(name);
    let mut server = Sipp::uas(&net, hosts::SIPP, uas, uas_args);
    let mut args = vec!["-d", "200"];
    args.extend_from_slice(uac_args);
    let mut client = Sipp::uac(&net, hosts::SIPP + 1, uac, server.addr(), "bob", &args);
    client.expect_pass(secs(10));
    server.expect_pass(secs(5));
    (net, server, client)
}

#[test]
fn sipp_uas_answer_with_uac_invite() {
    let (_net, server, _client) = sipp_pair(
        "lab_selftest::sipp_answer",
        "uas_answer",
        &[],
        "uac_invite",
        &[],
    );
    let received = server.received();
    let methods: Vec<&str> = received.iter().filter_map(|m| m.method()).collect();
    assert_eq!(methods, ["INVITE", "ACK", "BYE"]);
    assert!(received[0].body().contains("m=audio 16000 RTP/AVP 0 8 101"));
    let answer = &server.sent()[2];
    assert_eq!(answer.status(), Some(200));
    assert!(answer.body().contains("a=rtpmap:0 PCMU/8000"));
    assert_eq!(answer.header("content-type"), Some("application/sdp"));
}

/// uac_intercom is uac_invite with `Call-Info: <sip:…>;answer-after=0` on its INVITE.
#[test]
fn sipp_uas_answer_with_uac_intercom() {
    let (_net, server, _client) = sipp_pair(
        "lab_selftest::sipp_intercom",
        "uas_answer",
        &[],
        "uac_intercom",
        &[],
    );
    let invite = &server.received()[0];
    assert!(invite
        .header("Call-Info")
        .is_some_and(|v| v.ends_with(";answer-after=0")));
}

#[test]
fn sipp_uas_answer_pcma_with_uac_invite() {
    let (_net, server, client) = sipp_pair(
        "lab_selftest::sipp_answer_pcma",
        "uas_answer_pcma",
        &[],
        "uac_invite",
        &[],
    );
    let answer = &server.sent()[2];
    assert!(
        answer.body().contains("m=audio 16000 RTP/AVP 8\n"),
        "{answer:?}"
    );
    assert!(client
        .received()
        .iter()
        .any(|m| m.body().contains("PCMA/8000")));
}

#[test]
fn sipp_uas_answer_then_bye_with_uac_invite_recv_bye() {
    let (_net, server, client) = sipp_pair(
        "lab_selftest::sipp_answer_then_bye",
        "uas_answer_then_bye",
        &[],
        "uac_invite_recv_bye",
        &[],
    );
    let bye = server
        .sent()
        .into_iter()
        .find(|m| m.method() == Some("BYE"))
        .expect("sipp sent a BYE");
    let invite = &client.sent()[0];
    // The BYE's To is the caller's From (with its tag), its From the callee's To + a tag.
    assert_eq!(bye.header("To"), invite.header("From"));
    let callee = invite.header("To").expect("To");
    assert!(
        bye.header("From")
            .is_some_and(|f| f.starts_with(callee) && f.contains(";tag=")),
        "{bye:?}"
    );
    assert_eq!(bye.header("Call-ID"), invite.header("Call-ID"));
    assert!(bye.start_line().starts_with("BYE sip:sipp@"), "{bye:?}");
}

#[test]
fn sipp_uas_hold_with_uac_hold() {
    let (_net, server, client) =
        sipp_pair("lab_selftest::sipp_hold", "uas_hold", &[], "uac_hold", &[]);
    let log = server.action_log();
    assert!(log.contains("hold re-INVITE offers a=sendonly"), "{log}");
    assert!(log.contains("resume re-INVITE offers a=sendrecv"), "{log}");
    assert!(client.action_log().contains("(recvonly)"));
}

#[test]
fn sipp_uas_hold_fails_when_the_hold_offer_is_not_sendonly() {
    // uac_invite never sends the re-INVITEs: its BYE arrives where uas_hold expects the hold.
    let net = Net::for_test("lab_selftest::sipp_hold_negative");
    let mut server = Sipp::uas(&net, hosts::SIPP, "uas_hold", &["-timeout", "5s"]);
    let mut client = Sipp::uac(
        &net,
        hosts::SIPP + 1,
        "uac_invite",
        server.addr(),
        "bob",
        &["-d", "100", "-timeout", "5s"],
    );
    let _ = client.wait(secs(8));
    assert!(matches!(server.wait(secs(8)), SippOutcome::Failed { .. }));
}

#[test]
fn sipp_uas_busy_with_uac_expect_busy() {
    let (_net, server, _client) = sipp_pair(
        "lab_selftest::sipp_busy",
        "uas_busy",
        &[],
        "uac_expect_busy",
        &[],
    );
    let ack = server
        .received()
        .into_iter()
        .find(|m| m.method() == Some("ACK"))
        .expect("ACK");
    let invite = &server.received()[0];
    // The ACK of a non-2xx response is in the INVITE transaction: same Via branch.
    assert_eq!(ack.header("Via"), invite.header("Via"));
}

#[test]
fn sipp_uas_no_answer_with_uac_cancel() {
    let (_net, server, _client) = sipp_pair(
        "lab_selftest::sipp_cancel",
        "uas_no_answer",
        &[],
        "uac_cancel",
        &[],
    );
    let sent = server.sent();
    let statuses: Vec<u16> = sent.iter().filter_map(|m| m.status()).collect();
    assert_eq!(statuses, [100, 180, 200, 487]);
    assert_eq!(sent[3].header("CSeq"), Some("1 INVITE"));
}

#[test]
fn sipp_uas_challenge_407_with_uac_auth_and_the_digest_checks_out() {
    let (_net, server, _client) = sipp_pair(
        "lab_selftest::sipp_challenge_407",
        "uas_challenge",
        &[],
        "uac_auth",
        &["-au", "bob", "-ap", "bobpw"],
    );
    let creds = server.verify_digest("bob", "bobpw").expect("valid digest");
    assert_eq!(creds.len(), 1);
    assert!(server.verify_digest("bob", "wrong").is_err());
    let invites: Vec<_> = server
        .received()
        .into_iter()
        .filter(|m| m.method() == Some("INVITE"))
        .collect();
    assert!(invites[1].header("Proxy-Authorization").is_some());
}

#[test]
fn sipp_uas_challenge_401_with_uac_auth_and_the_digest_checks_out() {
    let (_net, server, _client) = sipp_pair(
        "lab_selftest::sipp_challenge_401",
        "uas_challenge_401",
        &[],
        "uac_auth",
        &["-au", "bob", "-ap", "bobpw"],
    );
    server.verify_digest("bob", "bobpw").expect("valid digest");
    let challenge = &server.sent()[0];
    assert_eq!(challenge.status(), Some(401));
    assert!(challenge
        .header("WWW-Authenticate")
        .is_some_and(|h| h.contains("qop=\"auth\"")));
}

#[test]
fn sipp_uas_challenge_fails_without_credentials() {
    let net = Net::for_test("lab_selftest::sipp_challenge_negative");
    let mut server = Sipp::uas(&net, hosts::SIPP, "uas_challenge", &["-timeout", "2s"]);
    // uac_invite cannot answer a 407: the call fails on both sides.
    let mut client = Sipp::uac(
        &net,
        hosts::SIPP + 1,
        "uac_invite",
        server.addr(),
        "bob",
        &["-timeout", "2s"],
    );
    assert!(!client.wait(secs(8)).passed());
    assert!(!server.wait(secs(8)).passed());
}

#[test]
fn sipp_scenario_that_does_not_load_fails_fast() {
    let net = Net::for_test("lab_selftest::sipp_bad_scenario");
    let dir = tempfile::tempdir().expect("tempdir");
    // A keyword sipp does not know: rejected when the scenario loads.
    let bad = dir.path().join("bad.xml");
    fs::write(
        &bad,
        "<?xml version=\"1.0\"?><scenario name=\"bad\">\
         <send><![CDATA[\n\nOPTIONS sip:x@[no_such_keyword] SIP/2.0\n\n]]></send></scenario>",
    )
    .expect("writing scenario");
    let started = std::time::Instant::now();
    let mut sipp = Sipp::uac(
        &net,
        hosts::SIPP,
        bad.to_str().expect("UTF-8 path"),
        net.sip_addr(hosts::SIPP + 1),
        "bob",
        &[],
    );
    assert!(matches!(sipp.wait(secs(5)), SippOutcome::Failed { .. }));
    assert!(started.elapsed() < secs(5));
}

// ---------------------------------------------------------------------------------------------
// Calls through kamailio with real peers

#[test]
fn baresip_calls_a_registered_sipp_through_kamailio_which_hangs_up_via_the_route_set() {
    let net = Net::for_test("lab_selftest::baresip_to_sipp_via_kamailio");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_answer_then_bye", &["-d", "500"]);
    uas.register_at(&kam, "bob", "bobpw");
    let baresip = Baresip::start(
        &net,
        "alice",
        "alicepw",
        kam.ip(),
        BaresipOptions::default(),
    );
    baresip.wait_registered(secs(5));
    baresip.dial(&kam.aor("bob"));
    uas.expect_pass(secs(10));
    // kamailio record-routed the call, and sipp's BYE went through it.
    let invite = &uas.received()[0];
    assert!(
        invite
            .header("Record-Route")
            .is_some_and(|rr| rr.contains(&kam.ip().to_string())),
        "{invite:?}"
    );
    let bye = uas
        .sent()
        .into_iter()
        .find(|m| m.method() == Some("BYE"))
        .expect("BYE");
    assert!(bye.header("Route").is_some(), "{bye:?}");
    assert!(kam.log().contains("LAB-REQ BYE"));
    baresip.wait_log("session closed", secs(3));
}

#[test]
fn baresip_hears_its_tone_echoed_by_sipp() {
    let net = Net::for_test("lab_selftest::baresip_rtp_echo");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let mut uas = Sipp::uas(
        &net,
        hosts::SIPP,
        "uas_answer_then_bye",
        &["-d", "1500", "-rtp_echo"],
    );
    uas.register_at(&kam, "bob", "bobpw");
    let baresip = Baresip::start(
        &net,
        "alice",
        "alicepw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(1000),
            ..BaresipOptions::default()
        },
    );
    baresip.wait_registered(secs(5));
    baresip.dial(&kam.aor("bob"));
    uas.expect_pass(secs(10));
    baresip.wait_log("session closed", secs(3));
    let heard = baresip.heard_recordings();
    assert_eq!(heard.len(), 1, "{heard:?}");
    let stat = audio::wav_stat(&heard[0]);
    assert!(stat["Length (seconds)"] > 1.0, "{stat:?}");
    assert!(stat["RMS amplitude"] > 0.05, "{stat:?}");
    let freq = stat["Rough frequency"];
    assert!((900.0..1100.0).contains(&freq), "{stat:?}");
}

#[test]
fn sipp_calls_baresip_through_kamailio() {
    let net = Net::for_test("lab_selftest::sipp_to_baresip_via_kamailio");
    let kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    let baresip = Baresip::start(
        &net,
        "alice",
        "alicepw",
        kam.ip(),
        BaresipOptions::default(),
    );
    baresip.wait_registered(secs(5));
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_invite",
        kam.addr(),
        "alice",
        &["-d", "500"],
    );
    uac.expect_pass(secs(10));
    let ok = uac
        .received()
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200");
    assert!(ok.body().contains("PCMU"), "{ok:?}");
}

#[test]
fn sipp_calls_baresip_directly_and_manual_answer_can_be_driven_by_console() {
    let net = Net::for_test("lab_selftest::sipp_to_baresip_direct");
    let baresip = Baresip::start(
        &net,
        "alice",
        "",
        net.ip(hosts::KAMAILIO),
        BaresipOptions {
            register: false,
            answer_mode: AnswerMode::Manual,
            ..BaresipOptions::default()
        },
    );
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_invite",
        baresip.addr(),
        "alice",
        &["-d", "300"],
    );
    baresip.wait_log("Incoming call", secs(5));
    baresip.command("/accept");
    uac.expect_pass(secs(10));
}

#[test]
fn sipp_calls_linphonec_through_kamailio_and_in_dialog_requests_reach_its_gruu() {
    let net = Net::for_test("lab_selftest::sipp_to_linphonec_via_kamailio");
    let kam = Kamailio::start(&net, &[("bob", "bobpw")]);
    let linphonec = Linphonec::start(&net, "bob", "bobpw", kam.ip(), LinphonecOptions::default());
    linphonec.wait_registered(secs(5));
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_invite",
        kam.addr(),
        "bob",
        &["-d", "500"],
    );
    uac.expect_pass(secs(10));
    let ok = uac
        .received()
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("200");
    let contact = ok.header("Contact").unwrap_or_default().to_owned();
    let bye = uac
        .sent()
        .into_iter()
        .find(|m| m.method() == Some("BYE"))
        .expect("BYE");
    // linphonec's Contact is a GRUU at kamailio (sip:bob@KAMAILIO;gr=urn:uuid:...): the ACK
    // and BYE to it only arrive because kamailio looks GRUUs up for in-dialog requests.
    assert!(
        contact.contains(";gr=") && contact.contains(&kam.ip().to_string()),
        "{contact}"
    );
    assert!(bye.header("Route").is_some(), "{bye:?}");
    assert!(bye.start_line().contains(";gr="), "{bye:?}");
}

#[test]
fn kamailio_with_call_auth_challenges_invites_from_local_users() {
    let net = Net::for_test("lab_selftest::kamailio_call_auth");
    let kam = Kamailio::start_with(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw")],
        KamailioAuth::RegisterAndCalls,
    );
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    uas.register_at(&kam, "bob", "bobpw");
    let baresip = Baresip::start(
        &net,
        "alice",
        "alicepw",
        kam.ip(),
        BaresipOptions::default(),
    );
    baresip.wait_registered(secs(5));
    baresip.dial(&kam.aor("bob"));
    // baresip answers the 407 and the call reaches sipp; hang up once it is up.
    process_wait_for_invite(&uas);
    baresip.hangup();
    uas.expect_pass(secs(10));
    let log = kam.log();
    assert!(log.contains("LAB-REQ INVITE"), "{log}");
    let invite = &uas.received()[0];
    // kamailio consumed the credentials before relaying.
    assert!(invite.header("Proxy-Authorization").is_none());
}

/// Waits until sipp has seen the ACK of an answered call.
fn process_wait_for_invite(uas: &Sipp) {
    common::process::wait_until(secs(10), || {
        uas.received()
            .iter()
            .any(|m| m.method() == Some("ACK"))
            .then_some(())
    })
    .unwrap_or_else(|| panic!("the call never reached sipp:\n{}", uas.report()));
}

// ---------------------------------------------------------------------------------------------
// The switchboard wrapper, against a fake binary

/// A shell script that behaves like `switchboard --headless` for the wrapper's purposes.
fn fake_switchboard(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-switchboard");
    let script = format!(
        "#!/bin/bash\n\
         # args: --headless --config FILE --log-file FILE\n\
         [ \"$1\" = --headless ] || exit 2\n\
         cfg=\"$3\"; log=\"$5\"\n\
         echo \"fake switchboard with $(wc -l < \"$cfg\") config lines\" >> \"$log\"\n\
         {body}\n"
    );
    fs::write(&path, script).expect("writing the fake binary");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

#[test]
fn switchboard_wrapper_collects_events_and_quits() {
    let net = Net::for_test("lab_selftest::switchboard_wrapper");
    let dir = tempfile::tempdir().expect("tempdir");
    let bin = fake_switchboard(
        dir.path(),
        r#"echo '{"event":"started","local":"127.0.0.2:5060","transport":"udp"}'
echo 'this line is not JSON'
while read -r line; do
  case "$line" in
    quit) echo '{"event":"stopped"}'; exit 0;;
    dial*) echo '{"event":"media","line":1}'; echo '{"event":"call","line":1,"state":"connected"}';;
    *) printf '{"event":"echo","cmd":"%s"}\n' "$line";;
  esac
done"#,
    );
    let config = SwitchboardConfig::peer_to_peer(&net).to_toml();
    let mut sb = Switchboard::start_binary(&bin, &config);
    let started = sb.wait_for(secs(5), "started");
    assert_eq!(started["transport"], "udp");
    sb.send("dial sip:bob@127.0.0.1");
    // Waits need not follow the order of the events.
    sb.wait_call_state(secs(5), 1, "connected");
    sb.wait_for(secs(5), "media");
    sb.send("hold");
    let echo = sb.wait_for(secs(5), "echo");
    assert_eq!(echo["cmd"], "hold");
    sb.expect_no_event(millis(200), |e| e["event"] == "echo");
    let status = sb.quit_and_wait(secs(5));
    assert!(status.success());
    let events = sb.events();
    assert_eq!(events.last().expect("events")["event"], "stopped");
    assert!(events.iter().any(|e| e["event"] == "_not_json"));
    assert!(sb.log().contains("fake switchboard with"));
}

#[test]
fn switchboard_wrapper_timeout_panics_with_history_and_drop_kills_the_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("sleeper.pid");
    let bin = fake_switchboard(
        dir.path(),
        &format!(
            "echo '{{\"event\":\"started\"}}'\n\
             echo \"stuck\" >> \"$log\"\n\
             sleep 60 &\n\
             echo $! > {}\n\
             wait",
            pid_file.display()
        ),
    );
    let mut sb = Switchboard::start_binary(&bin, "");
    sb.wait_for(secs(5), "started");
    let timed_out = catch_unwind(AssertUnwindSafe(|| {
        sb.wait_for(millis(300), "registered");
    }));
    let message = timed_out
        .expect_err("the wait must time out")
        .downcast::<String>()
        .expect("a formatted panic message");
    assert!(message.contains("\"started\""), "{message}");
    assert!(message.contains("stuck"), "log tail in: {message}");
    // quit is ignored by this fake: the bounded wait panics, and Drop kills the process group
    // including its `sleep` child.
    let no_exit = catch_unwind(AssertUnwindSafe(|| {
        sb.quit_and_wait(millis(300));
    }));
    assert!(no_exit.is_err());
    let sleeper: u32 = fs::read_to_string(&pid_file)
        .expect("pid of the child")
        .trim()
        .parse()
        .expect("pid");
    drop(sb);
    let gone = common::process::wait_until(secs(2), || {
        let stat = fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        (stat.is_empty() || stat.contains(") Z ")).then_some(())
    });
    assert!(gone.is_some(), "the fake's child survived");
}
