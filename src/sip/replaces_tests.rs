//! INVITE with Replaces (RFC 3891) on simulated time: a transferee takes over our call, and
//! every refusal (481, 486, 603, 400).

use super::api::{CallState, Command, Event};
use super::msg::{Message, Method};
use super::ua_tests::{connected_call, phone_sdp, reply, Bench, PHONE};

/// Where the transferee (carol) sends from.
const CAROL: &str = "127.0.0.4:5060";

/// carol's INVITE carrying `replaces` (and a Referred-By from bob).
fn invite_with_replaces(replaces: &str) -> String {
    let sdp = phone_sdp("sendrecv");
    format!(
        "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.4:5060;branch=z9hG4bKcarol1\r\n\
         Max-Forwards: 70\r\nFrom: \"Carol\" <sip:carol@127.0.0.1>;tag=c1\r\nTo: <sip:alice@127.0.0.1>\r\n\
         Call-ID: carol-call\r\nCSeq: 1 INVITE\r\nContact: <sip:carol@127.0.0.4:5060>\r\n\
         Replaces: {replaces}\r\nReferred-By: \"Bob\" <sip:bob@127.0.0.1>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The status codes of what was sent.
fn codes(sent: &[Message]) -> Vec<u16> {
    sent.iter().filter_map(Message::code).collect()
}

#[test]
fn a_transferee_takes_over_our_confirmed_call_on_the_same_line() {
    let mut b = Bench::new(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.events();
    let ours = invite.from.tag().expect("our tag");
    b.recv(
        CAROL,
        &invite_with_replaces(&format!("{};to-tag={ours};from-tag=bobtag", invite.call_id)),
    );
    let sent = b.sent();
    assert_eq!(codes(&sent), [100, 200], "answered at once, no ringing");
    let bye = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Bye)
        .expect("the replaced call is ended");
    assert_eq!(bye.call_id, invite.call_id);
    let events = b.events();
    assert!(events.contains(&Event::Incoming {
        line: 1,
        call_id: "carol-call".into(),
        from: "sip:carol@127.0.0.1".into(),
        display_name: Some("Carol".into()),
        referred_by: Some("sip:bob@127.0.0.1".into()),
        replaces: Some(invite.call_id.clone()),
        account: "desk".into(),
    }));
    let states: Vec<(String, CallState, u8)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Call {
                call_id,
                state,
                line,
                ..
            } => Some((call_id.clone(), *state, *line)),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        [
            (invite.call_id.clone(), CallState::Ended, 1),
            ("carol-call".to_string(), CallState::Connected, 1),
        ]
    );
    // The line now belongs to carol: hangup ends her call.
    b.cmd(Command::Hangup(None));
    assert!(b
        .sent()
        .iter()
        .any(|m| m.method() == Method::Bye && m.call_id == "carol-call"));
}

#[test]
fn replaces_for_an_unknown_dialog_gets_481_and_nothing_changes() {
    let mut b = Bench::new(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.events();
    b.recv(
        CAROL,
        &invite_with_replaces("nosuchcall;to-tag=x;from-tag=y"),
    );
    assert_eq!(codes(&b.sent()), [100, 481]);
    // Right Call-ID, tags the wrong way round: no match either.
    let ours = invite.from.tag().expect("our tag");
    b.recv(
        CAROL,
        &invite_with_replaces(&format!("{};to-tag=bobtag;from-tag={ours}", invite.call_id))
            .replace("z9hG4bKcarol1", "z9hG4bKcarol2"),
    );
    assert_eq!(codes(&b.sent()), [100, 481]);
    assert!(b.events().is_empty(), "our call goes on untouched");
}

#[test]
fn early_only_for_an_answered_call_gets_486() {
    let mut b = Bench::new(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    let ours = invite.from.tag().expect("our tag");
    b.recv(
        CAROL,
        &invite_with_replaces(&format!(
            "{};to-tag={ours};from-tag=bobtag;early-only",
            invite.call_id
        )),
    );
    assert_eq!(codes(&b.sent()), [100, 486]);
}

#[test]
fn a_ringing_incoming_call_cannot_be_replaced() {
    let mut b = Bench::new(false);
    let sdp = phone_sdp("sendrecv");
    b.recv(
        PHONE,
        &format!(
            "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKi1\r\n\
             From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: in1\r\n\
             CSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.3:5060>\r\n\
             Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    let ringing = b.sent();
    let ours = ringing[1].to.tag().expect("our tag").to_string();
    b.recv(
        CAROL,
        &invite_with_replaces(&format!("in1;to-tag={ours};from-tag=b1")),
    );
    assert_eq!(codes(&b.sent()), [100, 481]);
}

#[test]
fn our_own_ringing_call_is_cancelled_when_it_is_picked_up_elsewhere() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("bob".into()));
    let invite = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&invite, 180, "bobtag", "", ""));
    b.sent();
    b.events();
    let ours = invite.from.tag().expect("our tag");
    b.recv(
        CAROL,
        &invite_with_replaces(&format!(
            "{};to-tag={ours};from-tag=bobtag;early-only",
            invite.call_id
        )),
    );
    let sent = b.sent();
    assert_eq!(codes(&sent), [100, 200]);
    assert!(sent.iter().any(|m| m.code().is_none()
        && m.method() == Method::Cancel
        && m.call_id == invite.call_id));
}

#[test]
fn a_call_already_hung_up_gets_603_and_a_bad_header_400() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("bob".into()));
    let invite = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&invite, 180, "bobtag", "", ""));
    b.cmd(Command::Hangup(None));
    assert!(b.sent().iter().any(|m| m.method() == Method::Cancel));
    let ours = invite.from.tag().expect("our tag");
    b.recv(
        CAROL,
        &invite_with_replaces(&format!("{};to-tag={ours};from-tag=bobtag", invite.call_id)),
    );
    assert_eq!(codes(&b.sent()), [100, 603]);
    b.recv(
        CAROL,
        &invite_with_replaces(&format!("{};to-tag={ours}", invite.call_id))
            .replace("z9hG4bKcarol1", "z9hG4bKcarol3"),
    );
    let sent = b.sent();
    assert_eq!(codes(&sent), [100, 400]);
    assert!(sent[1]
        .header("Warning")
        .is_some_and(|w| w.contains("from-tag")));
}
