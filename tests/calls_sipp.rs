//! switchboard (headless) against sipp scenarios, peer to peer on loopback:
//! answered, busy, never answered and cancelled, challenged, held and
//! resumed, hung up by the far end; calls from sipp answered, cancelled and
//! held by the caller; an INVITE replacing an unknown dialog; garbage; and a `tel:` target.

mod common;

use common::{assert_garbage_handled, hosts, secs, Net, Sipp, Switchboard, SwitchboardConfig};
use serde_json::Value;
use std::time::Duration;

/// switchboard at `.2` as alice, calling straight to sipp (no registrar).
fn switchboard(net: &Net) -> Switchboard {
    let mut sb = Switchboard::start(&SwitchboardConfig::peer_to_peer(net).to_toml());
    sb.wait_for(secs(10), "started");
    sb
}

fn ended_with(ev: &Value) -> (Option<u64>, String) {
    (
        ev["status"].as_u64(),
        ev["reason"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn call_answered_by_sipp_connects_with_pcmu_and_our_bye_ends_it() {
    let net = Net::for_test("calls_sipp::answered");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    let mut sb = switchboard(&net);
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "dialing");
    sb.wait_call_state(secs(5), 1, "ringing");
    let connected = sb.wait_call_state(secs(5), 1, "connected");
    assert!(connected["call_id"].as_str().is_some_and(|c| !c.is_empty()));
    let media = sb.wait_for(secs(2), "media");
    assert_eq!(media["codec"], "PCMU");
    assert_eq!(media["direction"], "sendrecv");
    assert_eq!(media["remote"], uas.media_addr().to_string());
    sb.send("hangup");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended_with(&ended).1, "you hung up");
    uas.expect_pass(secs(10));
    // What sipp saw: our INVITE offered PCMU, PCMA and telephone-event.
    let invite = &uas.received()[0];
    assert!(invite.body().contains("PCMU/8000") && invite.body().contains("telephone-event"));
    assert!(invite
        .header("Via")
        .is_some_and(|v| v.contains(";branch=z9hG4bK") && v.contains("rport")));
    assert!(invite.header("User-Agent").is_some());
    assert!(sb.quit_and_wait(secs(10)).success());
}

/// `dial` takes what `transfer` takes: a pasted `tel:` URI with a display name becomes a SIP
/// URI in the account's domain with `user=phone`, sent through the outbound proxy (sipp).
#[test]
fn dial_takes_a_pasted_tel_uri_as_a_number_in_the_accounts_domain() {
    let net = Net::for_test("calls_sipp::dial_tel");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    let config =
        SwitchboardConfig::peer_to_peer(&net).with_outbound_proxy(&format!("sip:{}", uas.addr()));
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send("dial \"Bob\" <tel:+1-555-0100>");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    uas.expect_pass(secs(10));
    let me = net.ip(hosts::SWITCHBOARD);
    assert_eq!(
        uas.received()[0].start_line(),
        format!("INVITE sip:+15550100@{me};user=phone SIP/2.0")
    );
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn trace_on_reports_each_sip_message_and_trace_off_stops() {
    let net = Net::for_test("calls_sipp::trace");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_busy", &[]);
    let mut sb = switchboard(&net);
    sb.send("trace on");
    sb.send(&format!("dial {}", uas.uri("bob")));
    let invite = sb.wait_event(secs(5), |e| e["event"] == "sip" && e["direction"] == "out");
    let text = invite["message"].as_str().unwrap_or_default();
    assert!(text.starts_with("INVITE sip:bob@"), "{text}");
    assert!(
        text.contains("\r\nCall-ID: ") && text.contains("m=audio "),
        "whole: {text}"
    );
    assert_eq!(invite["peer"], uas.addr().to_string());
    let busy = sb.wait_event(secs(5), |e| {
        e["event"] == "sip"
            && e["direction"] == "in"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("SIP/2.0 486"))
    });
    assert_eq!(busy["peer"], uas.addr().to_string());
    sb.wait_call_state(secs(5), 1, "ended");
    uas.expect_pass(secs(10));
    // The INVITE of the next call goes out at once (sipp has gone: nobody answers it), but
    // is not reported.
    sb.send("trace off");
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "dialing");
    sb.expect_no_event(Duration::from_millis(300), |e| {
        e["event"] == "sip"
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("INVITE"))
    });
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn busy_callee_ends_the_call_with_486_in_plain_words() {
    let net = Net::for_test("calls_sipp::busy");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_busy", &[]);
    let mut sb = switchboard(&net);
    sb.send(&format!("dial {}", uas.uri("bob")));
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(
        ended_with(&ended),
        (Some(486), "the far end is busy".to_string())
    );
    uas.expect_pass(secs(5));
}

#[test]
fn unanswered_call_is_cancelled_by_hangup() {
    let net = Net::for_test("calls_sipp::cancel");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_no_answer", &[]);
    let mut sb = switchboard(&net);
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "ringing");
    sb.send("hangup");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended_with(&ended).1, "you hung up");
    uas.expect_pass(secs(10));
    let cancel = uas
        .received()
        .into_iter()
        .find(|m| m.method() == Some("CANCEL"))
        .expect("sipp got a CANCEL");
    assert_eq!(cancel.header("CSeq"), Some("1 CANCEL"));
}

#[test]
fn proxy_challenge_is_answered_with_a_valid_digest() {
    let net = Net::for_test("calls_sipp::challenge");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_challenge", &[]);
    let mut config = SwitchboardConfig::peer_to_peer(&net);
    config.accounts[0].password = Some("alicepw".into());
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    uas.expect_pass(secs(10));
    uas.verify_digest("alice", "alicepw")
        .expect("a digest sipp accepts");
    assert!(uas.verify_digest("alice", "wrong").is_err());
}

#[test]
fn hold_sends_sendonly_and_resume_sendrecv() {
    let net = Net::for_test("calls_sipp::hold");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_hold", &[]);
    let mut sb = switchboard(&net);
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hold");
    sb.wait_call_state(secs(5), 1, "held");
    let media = sb.wait_event(secs(2), |e| {
        e["event"] == "media" && e["direction"] == "sendonly"
    });
    assert_eq!(media["line"], 1);
    sb.send("resume");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    uas.expect_pass(secs(10));
}

#[test]
fn far_end_hangup_ends_the_call() {
    let net = Net::for_test("calls_sipp::far_bye");
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_answer_then_bye", &["-d", "300"]);
    let mut sb = switchboard(&net);
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "connected");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended_with(&ended).1, "the far end hung up");
    uas.expect_pass(secs(5));
}

#[test]
fn incoming_call_from_sipp_rings_and_is_answered() {
    let net = Net::for_test("calls_sipp::incoming");
    let mut sb = switchboard(&net);
    let me = net.sip_addr(hosts::SWITCHBOARD);
    let mut uac = Sipp::uac(&net, hosts::SIPP, "uac_invite", me, "alice", &["-d", "500"]);
    let incoming = sb.wait_for(secs(5), "incoming");
    assert_eq!(incoming["line"], 1);
    assert!(incoming["from"]
        .as_str()
        .is_some_and(|f| f.starts_with("sip:")));
    sb.wait_call_state(secs(2), 1, "ringing");
    sb.send("answer");
    sb.wait_call_state(secs(5), 1, "connected");
    let media = sb.wait_for(secs(2), "media");
    assert_eq!(media["codec"], "PCMU");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended_with(&ended).1, "the far end hung up");
    uac.expect_pass(secs(10));
    let ok = uac
        .received()
        .into_iter()
        .find(|m| m.status() == Some(200))
        .expect("sipp got our 200");
    assert!(ok.body().contains("a=sendrecv"), "{ok:?}");
    assert!(ok.header("Contact").is_some());
}

#[test]
fn caller_cancel_ends_the_ringing_call() {
    let net = Net::for_test("calls_sipp::incoming_cancel");
    let mut sb = switchboard(&net);
    let me = net.sip_addr(hosts::SWITCHBOARD);
    let mut uac = Sipp::uac(&net, hosts::SIPP, "uac_cancel", me, "alice", &[]);
    sb.wait_for(secs(5), "incoming");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended_with(&ended).1, "the caller hung up");
    uac.expect_pass(secs(10));
}

#[test]
fn peer_hold_shows_remote_held_then_connected() {
    let net = Net::for_test("calls_sipp::remote_hold");
    let mut sb = switchboard(&net);
    let me = net.sip_addr(hosts::SWITCHBOARD);
    let mut uac = Sipp::uac(&net, hosts::SIPP, "uac_hold", me, "alice", &["-d", "500"]);
    sb.wait_for(secs(5), "incoming");
    sb.send("answer");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.wait_call_state(secs(5), 1, "remote_held");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.wait_call_state(secs(5), 1, "ended");
    uac.expect_pass(secs(10));
}

#[test]
fn busy_lines_reject_a_third_call_with_486() {
    let net = Net::for_test("calls_sipp::third_call");
    let mut sb = switchboard(&net);
    let me = net.sip_addr(hosts::SWITCHBOARD);
    let mut first = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_invite",
        me,
        "alice",
        &["-d", "4000"],
    );
    sb.wait_for(secs(5), "incoming");
    sb.send("answer 1");
    sb.wait_call_state(secs(5), 1, "connected");
    let mut second = Sipp::uac(
        &net,
        hosts::SIPP + 1,
        "uac_invite",
        me,
        "alice",
        &["-d", "3000"],
    );
    let incoming = sb.wait_for(secs(5), "incoming");
    assert_eq!(incoming["line"], 2);
    let mut third = Sipp::uac(&net, hosts::SIPP + 2, "uac_expect_busy", me, "alice", &[]);
    third.expect_pass(secs(10));
    sb.send("decline 2");
    sb.wait_call_state(secs(5), 2, "ended");
    // uac_invite expects a 200, so sipp fails; what it got instead must be the 603.
    assert!(
        !second.wait(secs(10)).passed(),
        "the second caller was declined"
    );
    let finals: Vec<u16> = second
        .received()
        .iter()
        .filter_map(|m| m.status())
        .filter(|s| *s >= 200)
        .collect();
    assert!(
        !finals.is_empty() && finals.iter().all(|s| *s == 603),
        "decline answers 603 Decline, and only that: {finals:?}"
    );
    first.expect_pass(secs(15));
}

#[test]
fn invite_replacing_an_unknown_dialog_gets_481_and_the_call_goes_on() {
    let net = Net::for_test("calls_sipp::replaces_unknown");
    let mut sb = switchboard(&net);
    let me = net.sip_addr(hosts::SWITCHBOARD);
    let mut call = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_invite",
        me,
        "alice",
        &["-d", "3000"],
    );
    sb.wait_for(secs(5), "incoming");
    sb.send("answer 1");
    sb.wait_call_state(secs(5), 1, "connected");
    let mut stranger = Sipp::uac(
        &net,
        hosts::SIPP + 1,
        "uac_replaces_unknown",
        me,
        "alice",
        &[],
    );
    stranger.expect_pass(secs(10));
    sb.expect_no_event(Duration::from_millis(300), |e| {
        e["event"] == "incoming" || (e["event"] == "call" && e["state"] == "ended")
    });
    call.expect_pass(secs(15));
    sb.wait_call_state(secs(5), 1, "ended");
}

#[test]
fn garbage_is_answered_or_dropped_and_the_phone_keeps_working() {
    let net = Net::for_test("calls_sipp::garbage");
    let mut sb = switchboard(&net);
    let me = net.sip_addr(hosts::SWITCHBOARD);
    assert_garbage_handled(me, net.sip_addr(hosts::TOOLS));
    let mut uas = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    sb.send(&format!("dial {}", uas.uri("bob")));
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    uas.expect_pass(secs(10));
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn a_session_timer_asked_by_the_caller_is_negotiated_after_a_422() {
    let net = Net::for_test("calls_sipp::session_timer");
    let mut sb = switchboard(&net);
    let me = net.sip_addr(hosts::SWITCHBOARD);
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_session_timer",
        me,
        "alice",
        &["-d", "500"],
    );
    // Only the second INVITE (90 s) rings: the 30 s one was refused before the operator.
    let incoming = sb.wait_for(secs(10), "incoming");
    assert_eq!(incoming["line"], 1);
    sb.send("answer");
    sb.wait_call_state(secs(5), 1, "connected");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended_with(&ended).1, "the far end hung up");
    uac.expect_pass(secs(10));
    let received = uac.received();
    let too_brief = received
        .iter()
        .find(|m| m.status() == Some(422))
        .expect("sipp got our 422");
    assert_eq!(too_brief.header("Min-SE"), Some("90"));
    let ok = received
        .iter()
        .find(|m| m.status() == Some(200) && m.header("Session-Expires").is_some())
        .expect("sipp got our 200 with Session-Expires");
    assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uas"));
    assert!(ok.header("Require").is_some_and(|r| r.contains("timer")));
    assert!(ok.header("Supported").is_some_and(|s| s.contains("timer")));
    assert_eq!(
        sb.events()
            .iter()
            .filter(|e| e["event"] == "incoming")
            .count(),
        1
    );
}
