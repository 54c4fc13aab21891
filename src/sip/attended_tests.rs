//! Attended transfer as the transferor, on simulated time: consult, complete with Replaces,
//! completion while the target rings, the blind fallback, cancel, and every way the
//! consultation can fail.

use super::api::{CallState, Command, Direction, Event, TransferKind, TransferStatus};
use super::msg::{Message, Method};
use super::refer;
use super::transfer::BlindMode;
use super::ua_tests::{config, phone_sdp, reply, sdp_direction, Bench, PHONE};

/// Where the target (carol) answers from.
const CAROL: &str = "127.0.0.4:5060";

/// A NOTIFY from bob (the phone of the held call, our INVITE, bob's tag `bobtag`).
fn notify(invite: &Message, cseq: u32, frag: &str, state: &str) -> String {
    format!(
        "NOTIFY sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKn{cseq}\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} NOTIFY\r\nEvent: refer\r\nSubscription-State: {state}\r\n\
         Content-Type: message/sipfrag;version=2.0\r\nContent-Length: {}\r\n\r\n{frag}",
        invite.from.tag().expect("tag"),
        invite.call_id,
        frag.len()
    )
}

/// The sent requests of `method`.
fn requests(sent: &[Message], method: Method) -> Vec<Message> {
    sent.iter()
        .filter(|m| m.code().is_none() && m.method() == method)
        .cloned()
        .collect()
}

/// The transfer events since the last look: (kind, status, code, reason).
fn transfers(b: &mut Bench) -> Vec<(TransferKind, TransferStatus, Option<u16>, String)> {
    b.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Transfer {
                kind,
                status,
                status_code,
                reason,
                ..
            } => Some((kind, status, status_code, reason.unwrap_or_default())),
            _ => None,
        })
        .collect()
}

/// The calls of a consultation.
struct Consulting {
    /// Our INVITE to bob (line 1, held).
    bob: Message,
    /// Our INVITE to carol (line 2).
    carol: Message,
}

/// bob on line 1 (his phone announces Replaces when `replaces`), then `consult carol`: bob
/// is held, carol is called on line 2 and rings.
fn consult_ringing(b: &mut Bench, replaces: bool) -> Consulting {
    b.cmd(Command::Dial("bob".into()));
    let bob = b.sent_request(Method::Invite);
    let supported = if replaces {
        "Supported: replaces, timer\r\n"
    } else {
        "Supported: timer\r\n"
    };
    b.recv(
        PHONE,
        &reply(
            &bob,
            200,
            "bobtag",
            &format!("Contact: <sip:bob@127.0.0.3:5060>\r\n{supported}"),
            &phone_sdp("sendrecv"),
        ),
    );
    b.sent();
    b.events();
    b.cmd(Command::Consult("carol".into()));
    let sent = b.sent();
    let invites = requests(&sent, Method::Invite);
    assert_eq!(
        invites.len(),
        2,
        "hold for bob, INVITE for carol: {sent:#?}"
    );
    let (hold, carol) = if invites[0].call_id == bob.call_id {
        (invites[0].clone(), invites[1].clone())
    } else {
        (invites[1].clone(), invites[0].clone())
    };
    assert_eq!(sdp_direction(&hold), Direction::SendOnly, "bob is held");
    assert_eq!(carol.request_uri(), Some("sip:carol@127.0.0.1"));
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.recv(CAROL, &reply(&carol, 180, "caroltag", "", ""));
    b.sent();
    let events = transfers(b);
    assert_eq!(
        events,
        [(
            TransferKind::Attended,
            TransferStatus::Requested,
            None,
            "consulting sip:carol@127.0.0.1 on line 2".to_string()
        )]
    );
    Consulting { bob, carol }
}

/// [`consult_ringing`], and carol answers.
fn consulting(b: &mut Bench, replaces: bool) -> Consulting {
    let c = consult_ringing(b, replaces);
    b.recv(
        CAROL,
        &reply(
            &c.carol,
            200,
            "caroltag",
            "Contact: <sip:carol@127.0.0.4:5060;ob>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    b.sent();
    b.events();
    c
}

#[test]
fn complete_refers_bob_to_carols_dialog_and_both_calls_end_on_success() {
    let mut b = Bench::new(false);
    let c = consulting(&mut b, true);
    b.cmd(Command::Complete);
    let refer = b.sent_request(Method::Refer);
    assert_eq!(refer.call_id, c.bob.call_id, "REFER on the held call");
    let parsed = refer::parse_refer_to(refer.header("Refer-To").expect("Refer-To"))
        .expect("a Refer-To we can read back");
    assert_eq!(parsed.uri, "sip:carol@127.0.0.4:5060;ob", "carol's contact");
    let replaces = parsed.replaces.expect("Replaces in Refer-To");
    assert_eq!(replaces.call_id, c.carol.call_id);
    assert_eq!(replaces.to_tag, "caroltag");
    assert_eq!(replaces.from_tag, c.carol.from.tag().expect("our tag"));
    assert!(!replaces.early_only);
    assert_eq!(refer.header("Referred-By"), Some("<sip:alice@127.0.0.1>"));
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(
            &c.bob,
            20,
            "SIP/2.0 200 OK\r\n",
            "terminated;reason=noresource",
        ),
    );
    let sent = b.sent();
    let byes = requests(&sent, Method::Bye);
    let mut ended: Vec<&str> = byes.iter().map(|m| m.call_id.as_str()).collect();
    ended.sort_unstable();
    let mut both = vec![c.bob.call_id.as_str(), c.carol.call_id.as_str()];
    both.sort_unstable();
    assert_eq!(ended, both, "both of the operator's calls end");
    let events = transfers(&mut b);
    assert_eq!(
        events.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(),
        [
            (TransferKind::Attended, TransferStatus::Requested),
            (TransferKind::Attended, TransferStatus::Accepted),
            (TransferKind::Attended, TransferStatus::Succeeded),
        ]
    );
    // Nothing is left: a new consult has no call to work on.
    b.cmd(Command::Complete);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Error { message } if message.starts_with("nothing to complete")
    )));
}

#[test]
fn completing_while_the_target_rings_refers_to_her_aor_and_cancels_the_consultation() {
    let mut b = Bench::new(false);
    let c = consult_ringing(&mut b, true);
    b.cmd(Command::Complete);
    let refer = b.sent_request(Method::Refer);
    assert_eq!(refer.header("Refer-To"), Some("<sip:carol@127.0.0.1>"));
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    let cancels = requests(&b.sent(), Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].call_id, c.carol.call_id);
    b.recv(
        PHONE,
        &notify(
            &c.bob,
            20,
            "SIP/2.0 200 OK\r\n",
            "terminated;reason=noresource",
        ),
    );
    assert_eq!(requests(&b.sent(), Method::Bye).len(), 1, "bob's call ends");
    assert!(transfers(&mut b)
        .iter()
        .any(|e| e.1 == TransferStatus::Succeeded));
}

#[test]
fn a_phone_without_replaces_gets_a_blind_transfer_instead() {
    let mut b = Bench::new(false);
    let c = consulting(&mut b, false);
    b.cmd(Command::Complete);
    let sent = b.sent();
    let byes = requests(&sent, Method::Bye);
    assert_eq!(byes.len(), 1);
    assert_eq!(byes[0].call_id, c.carol.call_id, "the consultation ends");
    let refers = requests(&sent, Method::Refer);
    assert_eq!(refers.len(), 1);
    assert_eq!(refers[0].header("Refer-To"), Some("<sip:carol@127.0.0.1>"));
    let events = transfers(&mut b);
    assert_eq!(events[0].0, TransferKind::Attended);
    assert_eq!(events[0].1, TransferStatus::Failed);
    assert!(
        events[0].3.contains("falling back to a blind transfer"),
        "{events:?}"
    );
    assert_eq!(
        (events[1].0, events[1].1),
        (TransferKind::Blind, TransferStatus::Requested)
    );
}

#[test]
fn a_refused_replaces_falls_back_to_blind() {
    let mut b = Bench::new(false);
    let c = consulting(&mut b, true);
    b.cmd(Command::Complete);
    let refer = b.sent_request(Method::Refer);
    b.recv(PHONE, &reply(&refer, 501, "", "", ""));
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    let blind = requests(&sent, Method::Refer);
    assert_eq!(blind[0].header("Refer-To"), Some("<sip:carol@127.0.0.1>"));
    let events = transfers(&mut b);
    assert!(events
        .iter()
        .any(|e| e.1 == TransferStatus::Failed && e.3.contains("falling back")));
}

#[test]
fn without_fallback_a_refusal_leaves_both_calls_and_cancel_takes_bob_back() {
    let mut cfg = config(false);
    cfg.transfer.fallback_to_blind = false;
    let mut b = Bench::with_config(cfg);
    let c = consulting(&mut b, false);
    b.cmd(Command::Complete);
    let refer = b.sent_request(Method::Refer);
    assert!(refer
        .header("Refer-To")
        .is_some_and(|r| r.contains("Replaces=")));
    b.recv(PHONE, &reply(&refer, 403, "", "", ""));
    let sent = b.sent();
    assert!(requests(&sent, Method::Bye).is_empty(), "both calls stay");
    assert!(requests(&sent, Method::Invite).is_empty(), "bob stays held");
    let events = transfers(&mut b);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[1].1, TransferStatus::Failed);
    assert_eq!(
        events[1].3,
        "transfer refused by the caller's phone (403 Forbidden); both calls are still yours: \
         complete, swap or cancel"
    );
    b.cmd(Command::Cancel);
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    let resume = requests(&sent, Method::Invite);
    assert_eq!(resume[0].call_id, c.bob.call_id);
    assert_eq!(sdp_direction(&resume[0]), Direction::SendRecv);
    let events = b.events();
    assert!(events.contains(&Event::Line { line: 1 }));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Transfer { status: TransferStatus::Recalled, reason: Some(r), .. }
            if r == "consultation cancelled: reconnecting, the call is back on line 1"
    )));
}

#[test]
fn a_busy_target_brings_bob_back() {
    let mut b = Bench::new(false);
    let c = consult_ringing(&mut b, true);
    b.recv(CAROL, &reply(&c.carol, 486, "caroltag", "", ""));
    let sent = b.sent();
    let resume = requests(&sent, Method::Invite);
    assert_eq!(resume.len(), 1);
    assert_eq!(resume[0].call_id, c.bob.call_id);
    assert_eq!(sdp_direction(&resume[0]), Direction::SendRecv);
    let events = transfers(&mut b);
    assert_eq!(
        events,
        [
            (
                TransferKind::Attended,
                TransferStatus::Failed,
                Some(486),
                "target is busy".to_string()
            ),
            (
                TransferKind::Attended,
                TransferStatus::Recalled,
                None,
                "target is busy: reconnecting, the call is back on line 1".to_string()
            ),
        ]
    );
}

#[test]
fn hanging_up_the_consultation_cancels_and_the_caller_hanging_up_is_reported() {
    let mut b = Bench::new(false);
    let c = consulting(&mut b, true);
    b.cmd(Command::Hangup(None));
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    assert_eq!(requests(&sent, Method::Invite)[0].call_id, c.bob.call_id);
    assert!(transfers(&mut b)
        .iter()
        .any(|e| e.1 == TransferStatus::Recalled));

    // A second consultation; this time bob hangs up while we talk to carol.
    let mut b = Bench::new(false);
    let c = consulting(&mut b, true);
    let bye = format!(
        "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKbye1\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: 30 BYE\r\nContent-Length: 0\r\n\r\n",
        c.bob.from.tag().expect("tag"),
        c.bob.call_id
    );
    b.recv(PHONE, &bye);
    let sent = b.sent();
    assert!(requests(&sent, Method::Bye).is_empty(), "carol stays");
    let events = transfers(&mut b);
    assert_eq!(
        events,
        [(
            TransferKind::Attended,
            TransferStatus::Failed,
            None,
            "the caller hung up during the transfer".to_string()
        )]
    );
    b.cmd(Command::Complete);
    assert!(b.events().iter().any(|e| matches!(e, Event::Error { .. })));
    assert!(b
        .ua
        .lines
        .iter()
        .flatten()
        .any(|call| call.call_id == c.carol.call_id && call.state == CallState::Connected));
}

#[test]
fn transfer_while_consulting_sends_bob_elsewhere_and_consult_replaces_the_target() {
    let mut cfg = config(false);
    cfg.transfer.blind = BlindMode::Notify;
    let mut b = Bench::with_config(cfg);
    let c = consulting(&mut b, true);
    b.cmd(Command::Consult("dave".into()));
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    let dave = requests(&sent, Method::Invite);
    assert_eq!(dave.len(), 1);
    assert_eq!(dave[0].request_uri(), Some("sip:dave@127.0.0.1"));
    assert!(transfers(&mut b)
        .iter()
        .any(|e| e.3 == "consulting sip:dave@127.0.0.1 on line 2"));
    b.recv(CAROL, &reply(&dave[0], 180, "davetag", "", ""));
    b.sent();
    b.cmd(Command::Transfer("erin".into()));
    let sent = b.sent();
    let refer = requests(&sent, Method::Refer);
    assert_eq!(refer.len(), 1, "bob is held already: REFER at once");
    assert_eq!(refer[0].call_id, c.bob.call_id);
    assert_eq!(refer[0].header("Refer-To"), Some("<sip:erin@127.0.0.1>"));
    assert!(
        requests(&sent, Method::Cancel).len() == 1,
        "dave, still ringing, is cancelled"
    );
}
