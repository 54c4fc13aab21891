//! Session timers (RFC 4028) on simulated time: who refreshes, when, what happens when the
//! far end stops refreshing, and the 422 / Min-SE exchange both ways.

use std::time::Duration;

use super::api::{CallState, Command, Event};
use super::msg::{Message, Method};
use super::session_timer::{MIN_SE, WANTED};
use super::ua_tests::{incoming_invite, phone_sdp, reply, Bench, PHONE};

/// The call ended with a reason containing `words`.
fn ended_with(events: &[Event], words: &str) -> bool {
    events.iter().any(|e| {
        matches!(e, Event::Call { state: CallState::Ended, reason: Some(r), .. } if r.contains(words))
    })
}

/// Dials bob, who answers with `extra` headers in his 200; returns the INVITE.
fn dial_answered_with(b: &mut Bench, extra: &str) -> Message {
    b.cmd(Command::Dial("bob".into()));
    let invite = b.sent_request(Method::Invite);
    let ok = reply(
        &invite,
        200,
        "bobtag",
        &format!("Contact: <sip:bob@127.0.0.3:5060>\r\n{extra}"),
        &phone_sdp("sendrecv"),
    );
    b.recv(PHONE, &ok);
    b.sent_request(Method::Ack);
    b.events();
    invite
}

/// An incoming INVITE with `extra` headers (inserted after Max-Forwards).
fn invite_with(call_id: &str, branch: &str, extra: &str) -> String {
    incoming_invite(call_id, branch).replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{extra}"),
        1,
    )
}

/// bob's re-INVITE on the call `in1` we answered with To tag `tag`.
fn bobs_reinvite(tag: &str, cseq: u32, extra: &str) -> String {
    let sdp = phone_sdp("sendrecv");
    format!(
        "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKr{cseq}\r\n\
         Max-Forwards: 70\r\nFrom: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
         Call-ID: in1\r\nCSeq: {cseq} INVITE\r\nContact: <sip:bob@127.0.0.3:5060>\r\n{extra}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// bob's ACK for our 2xx to his request with `cseq`.
fn bobs_ack(tag: &str, cseq: u32) -> String {
    format!(
        "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKa{cseq}\r\n\
         From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
         Call-ID: in1\r\nCSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n"
    )
}

/// Answers bob's INVITE carrying `extra`; returns our 200 and our To tag (ACKed).
fn answered_incoming(b: &mut Bench, extra: &str) -> (Message, String) {
    b.recv(PHONE, &invite_with("in1", "z9hG4bKi1", extra));
    b.sent();
    b.cmd(Command::Answer(None));
    let ok = b.sent().remove(0);
    assert_eq!(ok.code(), Some(200));
    let tag = ok.to.tag().expect("our To tag").to_string();
    b.recv(PHONE, &bobs_ack(&tag, 1));
    b.events();
    (ok, tag)
}

#[test]
fn our_invite_asks_for_a_session_timer_and_says_we_support_it() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("bob".into()));
    let invite = b.sent_request(Method::Invite);
    assert!(invite.has_token("Supported", "timer"));
    assert!(invite.has_token("Supported", "replaces"));
    assert_eq!(
        invite.header("Session-Expires"),
        Some(WANTED.to_string().as_str())
    );
    assert_eq!(invite.header("Min-SE"), Some(MIN_SE.to_string().as_str()));
}

#[test]
fn as_refresher_we_reinvite_at_half_the_interval_and_keep_the_call() {
    let mut b = Bench::new(false);
    dial_answered_with(
        &mut b,
        "Session-Expires: 120;refresher=uac\r\nRequire: timer\r\n",
    );
    b.advance(Duration::from_millis(59_900));
    assert!(b.sent().is_empty(), "no refresh before half the interval");
    b.advance(Duration::from_millis(200));
    let refresh = b.sent_request(Method::Invite);
    assert_eq!(refresh.to.tag(), Some("bobtag"), "in the dialog");
    assert_eq!(refresh.header("Session-Expires"), Some("120;refresher=uac"));
    assert!(refresh
        .body_text()
        .is_some_and(|s| s.contains("a=sendrecv")));
    b.recv(
        PHONE,
        &reply(
            &refresh,
            200,
            "",
            "Session-Expires: 120;refresher=uac\r\nRequire: timer\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    b.sent_request(Method::Ack);
    // The refresh is invisible to the operator: no state change, no error.
    let events = b.events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::Call { .. } | Event::Error { .. })),
        "{events:?}"
    );
    // And the next one comes half an interval after the last 2xx.
    b.advance(Duration::from_millis(59_900));
    assert!(b.sent().is_empty());
    b.advance(Duration::from_millis(200));
    b.sent_request(Method::Invite);
}

#[test]
fn a_far_end_that_refreshes_keeps_the_call_and_one_that_stops_gets_a_bye() {
    let mut b = Bench::new(false);
    let (ok, tag) = answered_incoming(
        &mut b,
        "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
    );
    // We accept its choice: bob refreshes; our 200 says so and requires the extension.
    assert_eq!(ok.header("Session-Expires"), Some("90;refresher=uac"));
    assert!(ok.has_token("Require", "timer"));
    // bob refreshes at 45 s: our 2xx restarts the watch.
    b.advance(Duration::from_secs(45));
    b.recv(
        PHONE,
        &bobs_reinvite(
            &tag,
            2,
            "Supported: timer\r\nSession-Expires: 90;refresher=uac\r\n",
        ),
    );
    let sent = b.sent();
    let ok2 = sent
        .iter()
        .find(|m| m.code() == Some(200))
        .expect("a 200 to the refresh");
    assert_eq!(ok2.header("Session-Expires"), Some("90;refresher=uac"));
    b.recv(PHONE, &bobs_ack(&tag, 2));
    // 90 − min(32, 30) = 60 s after the refresh, not before.
    b.advance(Duration::from_millis(59_900));
    assert!(b.sent().is_empty(), "the refresh kept the call");
    assert!(!ended_with(&b.events(), "session"));
    b.advance(Duration::from_millis(200));
    let bye = b.sent_request(Method::Bye);
    assert_eq!(bye.call_id, "in1");
    assert!(ended_with(&b.events(), "session timer expired"));
}

#[test]
fn a_caller_without_timer_support_leaves_the_refreshing_to_us() {
    let mut b = Bench::new(false);
    // A proxy put Session-Expires in; the caller itself does not support timers.
    let (ok, _) = answered_incoming(&mut b, "Session-Expires: 200\r\n");
    assert_eq!(ok.header("Session-Expires"), Some("200;refresher=uas"));
    assert!(!ok.has_token("Require", "timer"));
    b.advance(Duration::from_millis(99_900));
    assert!(b.sent().is_empty());
    b.advance(Duration::from_millis(200));
    let refresh = b.sent_request(Method::Invite);
    assert_eq!(refresh.header("Session-Expires"), Some("200;refresher=uac"));
}

#[test]
fn without_session_expires_in_the_2xx_there_is_no_timer() {
    let mut b = Bench::new(false);
    dial_answered_with(&mut b, "");
    b.advance(Duration::from_secs(4 * 3600));
    assert!(
        b.sent().iter().all(|m| m.method() != Method::Invite),
        "no refresh"
    );
    assert!(!ended_with(&b.events(), "session"));
}

#[test]
fn a_too_brief_session_expires_gets_422_with_our_min_se() {
    let mut b = Bench::new(false);
    b.recv(
        PHONE,
        &invite_with(
            "in1",
            "z9hG4bKi1",
            "Supported: timer\r\nSession-Expires: 30\r\n",
        ),
    );
    let sent = b.sent();
    let codes: Vec<u16> = sent.iter().filter_map(Message::code).collect();
    assert_eq!(codes, vec![100, 422]);
    assert_eq!(sent[1].header("Min-SE"), Some("90"));
    assert!(
        !b.events()
            .iter()
            .any(|e| matches!(e, Event::Incoming { .. })),
        "the operator is not rung for it"
    );
}

#[test]
fn a_422_to_our_invite_is_retried_with_the_larger_min_se() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("bob".into()));
    let invite = b.sent_request(Method::Invite);
    b.recv(
        PHONE,
        &reply(&invite, 422, "bobtag", "Min-SE: 3600\r\n", ""),
    );
    let sent = b.sent();
    assert!(sent.iter().any(|m| m.method() == Method::Ack), "422 ACKed");
    let again: Vec<&Message> = sent
        .iter()
        .filter(|m| m.code().is_none() && m.method() == Method::Invite)
        .collect();
    assert_eq!(again.len(), 1, "{sent:#?}");
    assert_eq!(again[0].header("Session-Expires"), Some("3600"));
    assert_eq!(again[0].cseq.0, invite.cseq.0 + 1);
    assert_eq!(again[0].call_id, invite.call_id);
    assert!(!ended_with(&b.events(), ""));
    // A second 422 that asks for no more ends the call instead of looping.
    b.recv(
        PHONE,
        &reply(again[0], 422, "bobtag", "Min-SE: 3600\r\n", ""),
    );
    assert!(b
        .sent()
        .iter()
        .all(|m| m.code().is_some() || m.method() != Method::Invite));
    assert!(ended_with(&b.events(), "422"));
}
