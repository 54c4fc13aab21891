//! Attended transfer as the transferor, on simulated time: consult, complete with Replaces,
//! completion while the target rings, the blind fallback, cancel, and every way the
//! consultation can fail.

use std::time::Duration;

use super::api::{
    CallState, Command, Direction, Event, TransferKind, TransferMechanism, TransferStatus,
};
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
    cfg.account.policy.transfer.fallback_to_blind = false;
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
        .any(|call| call.call_id == c.carol.call_id && call.state() == CallState::Connected));
}

#[test]
fn transfer_while_consulting_sends_bob_elsewhere_and_consult_replaces_the_target() {
    let mut cfg = config(false);
    cfg.account.policy.transfer.blind = BlindMode::Notify;
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

// ---- ring-first blind transfer (`blind = "safe"`) ----

/// The blind transfer events since the last look: (mechanism, status, code, reason).
fn blind_events(
    b: &mut Bench,
) -> Vec<(
    Option<TransferMechanism>,
    TransferStatus,
    Option<u16>,
    String,
)> {
    b.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Transfer {
                kind,
                mechanism,
                status,
                status_code,
                reason,
                ..
            } => {
                assert_eq!(kind, TransferKind::Blind, "{reason:?}");
                Some((mechanism, status, status_code, reason.unwrap_or_default()))
            }
            _ => None,
        })
        .collect()
}

const RING_FIRST: Option<TransferMechanism> = Some(TransferMechanism::RingFirst);

/// bob on line 1 (announcing Replaces when `replaces`), then `transfer carol` with the
/// default `blind = "safe"`: bob is held, carol is rung on line 2 and rings.
fn ring_first_ringing(b: &mut Bench, replaces: bool) -> Consulting {
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
    b.cmd(Command::Transfer("carol".into()));
    let sent = b.sent();
    assert!(
        requests(&sent, Method::Refer).is_empty(),
        "nothing handed over yet"
    );
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
    assert_eq!(
        sdp_direction(&hold),
        Direction::SendOnly,
        "bob hears music on hold"
    );
    assert_eq!(carol.request_uri(), Some("sip:carol@127.0.0.1"));
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.recv(CAROL, &reply(&carol, 180, "caroltag", "", ""));
    b.sent();
    assert_eq!(
        blind_events(b),
        [
            (
                RING_FIRST,
                TransferStatus::Requested,
                None,
                "ringing sip:carol@127.0.0.1 on line 2 first; the caller hears music on hold"
                    .to_string()
            ),
            (
                RING_FIRST,
                TransferStatus::Ringing,
                Some(180),
                "sip:carol@127.0.0.1 rings on line 2".to_string()
            ),
        ]
    );
    Consulting { bob, carol }
}

/// carol answers the ring-first call.
fn carol_answers(b: &mut Bench, c: &Consulting) {
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
}

/// The resume re-INVITE for bob among `sent`.
fn bob_resumed(sent: &[Message], c: &Consulting) {
    let resume = requests(sent, Method::Invite);
    assert_eq!(resume.len(), 1, "{sent:#?}");
    assert_eq!(resume[0].call_id, c.bob.call_id);
    assert_eq!(sdp_direction(&resume[0]), Direction::SendRecv);
}

#[test]
fn ring_first_joins_bob_and_carol_with_replaces_once_she_answers() {
    let mut b = Bench::new(false);
    let c = ring_first_ringing(&mut b, true);
    carol_answers(&mut b, &c);
    let sent = b.sent();
    let refer = requests(&sent, Method::Refer);
    assert_eq!(refer.len(), 1, "joined without a key from the operator");
    assert_eq!(refer[0].call_id, c.bob.call_id, "REFER on the held call");
    let parsed = refer::parse_refer_to(refer[0].header("Refer-To").expect("Refer-To"))
        .expect("a Refer-To we can read back");
    assert_eq!(parsed.uri, "sip:carol@127.0.0.4:5060;ob");
    let replaces = parsed.replaces.expect("Replaces in Refer-To");
    assert_eq!(replaces.call_id, c.carol.call_id);
    assert_eq!(replaces.to_tag, "caroltag");
    b.recv(PHONE, &reply(&refer[0], 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(
            &c.bob,
            20,
            "SIP/2.0 200 OK\r\n",
            "terminated;reason=noresource",
        ),
    );
    let mut ended: Vec<String> = requests(&b.sent(), Method::Bye)
        .into_iter()
        .map(|m| m.call_id)
        .collect();
    ended.sort_unstable();
    let mut both = vec![c.bob.call_id.clone(), c.carol.call_id.clone()];
    both.sort_unstable();
    assert_eq!(ended, both, "both of the operator's calls end");
    assert_eq!(
        blind_events(&mut b),
        [
            (
                RING_FIRST,
                TransferStatus::Trying,
                None,
                "the target answered: connecting the caller".to_string()
            ),
            (
                RING_FIRST,
                TransferStatus::Accepted,
                Some(202),
                String::new()
            ),
            (
                RING_FIRST,
                TransferStatus::Succeeded,
                Some(200),
                "transferred to sip:carol@127.0.0.1".to_string()
            ),
        ]
    );
}

#[test]
fn ring_first_brings_bob_back_when_carol_is_busy() {
    let mut b = Bench::new(false);
    let c = ring_first_ringing(&mut b, true);
    b.cmd(Command::Complete);
    assert!(b.sent().is_empty(), "nothing to press: it joins by itself");
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Error { message } if message.starts_with("the transfer joins by itself")
    )));
    b.recv(CAROL, &reply(&c.carol, 486, "caroltag", "", ""));
    let sent = b.sent();
    assert!(requests(&sent, Method::Refer).is_empty());
    bob_resumed(&sent, &c);
    assert_eq!(
        blind_events(&mut b),
        [
            (
                RING_FIRST,
                TransferStatus::Failed,
                Some(486),
                "target is busy".to_string()
            ),
            (
                RING_FIRST,
                TransferStatus::Recalled,
                None,
                "target is busy: reconnecting, the call is back on line 1".to_string()
            ),
        ]
    );
}

#[test]
fn ring_first_cancels_carol_after_blind_timeout_and_brings_bob_back() {
    let mut b = Bench::new(false);
    let c = ring_first_ringing(&mut b, true);
    b.advance(Duration::from_secs(29));
    assert!(b.sent().is_empty(), "carol still rings at 29 s");
    assert!(blind_events(&mut b).is_empty());
    b.advance(Duration::from_secs(1));
    let sent = b.sent();
    let cancels = requests(&sent, Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].call_id, c.carol.call_id);
    bob_resumed(&sent, &c);
    assert_eq!(
        blind_events(&mut b),
        [
            (
                RING_FIRST,
                TransferStatus::Failed,
                None,
                "target did not answer".to_string()
            ),
            (
                RING_FIRST,
                TransferStatus::Recalled,
                None,
                "target did not answer: reconnecting, the call is back on line 1".to_string()
            ),
        ]
    );
    // A late answer from carol finds no consultation: her call is ended.
    carol_answers(&mut b, &c);
    let sent = b.sent();
    assert!(requests(&sent, Method::Refer).is_empty());
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
}

#[test]
fn ring_first_cancels_carol_when_bob_hangs_up_while_she_rings() {
    let mut b = Bench::new(false);
    let c = ring_first_ringing(&mut b, true);
    b.recv(
        PHONE,
        &format!(
            "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKbye1\r\n\
             From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
             CSeq: 30 BYE\r\nContent-Length: 0\r\n\r\n",
            c.bob.from.tag().expect("tag"),
            c.bob.call_id
        ),
    );
    let sent = b.sent();
    let cancels = requests(&sent, Method::Cancel);
    assert_eq!(cancels.len(), 1);
    assert_eq!(cancels[0].call_id, c.carol.call_id);
    assert_eq!(
        blind_events(&mut b),
        [(
            RING_FIRST,
            TransferStatus::Failed,
            None,
            "the caller hung up".to_string()
        )]
    );
    b.advance(Duration::from_secs(40));
    assert!(blind_events(&mut b).is_empty(), "one outcome");
}

#[test]
fn ring_first_without_a_free_line_refers_and_watches_the_notifys() {
    let mut b = Bench::new(false);
    // Two calls fill both lines; line 2 (dave) is selected and transferred.
    b.cmd(Command::Dial("bob".into()));
    let bob = b.sent_request(Method::Invite);
    b.recv(
        PHONE,
        &reply(
            &bob,
            200,
            "bobtag",
            "Contact: <sip:bob@127.0.0.3:5060>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    b.sent();
    b.cmd(Command::Dial("dave".into()));
    let dave = requests(&b.sent(), Method::Invite)
        .into_iter()
        .find(|m| m.request_uri() == Some("sip:dave@127.0.0.1"))
        .expect("INVITE to dave");
    b.recv(
        CAROL,
        &reply(
            &dave,
            200,
            "davetag",
            "Contact: <sip:dave@127.0.0.4:5060>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    b.sent();
    b.events();
    b.cmd(Command::Transfer("carol".into()));
    let hold = b.sent_request(Method::Invite);
    assert_eq!(hold.call_id, dave.call_id);
    assert_eq!(sdp_direction(&hold), Direction::SendOnly);
    b.recv(CAROL, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    let refer = b.sent_request(Method::Refer);
    assert_eq!(refer.header("Refer-To"), Some("<sip:carol@127.0.0.1>"));
    assert_eq!(
        blind_events(&mut b),
        [(
            Some(TransferMechanism::Notify),
            TransferStatus::Requested,
            None,
            "no free line to ring the target first: handing the call over by REFER".to_string()
        )]
    );
}

#[test]
fn ring_first_falls_back_to_refer_when_bob_refuses_the_join() {
    let mut b = Bench::new(false);
    let c = ring_first_ringing(&mut b, true);
    carol_answers(&mut b, &c);
    let refer = b.sent_request(Method::Refer);
    b.events();
    b.recv(PHONE, &reply(&refer, 403, "", "", ""));
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    let blind = requests(&sent, Method::Refer);
    assert_eq!(blind.len(), 1);
    assert_eq!(blind[0].header("Refer-To"), Some("<sip:carol@127.0.0.1>"));
    assert_eq!(
        blind_events(&mut b),
        [(
            Some(TransferMechanism::Notify),
            TransferStatus::Requested,
            None,
            "attended transfer refused (transfer refused by the caller's phone (403 Forbidden)): \
             handing the caller over by REFER instead; sip:carol@127.0.0.1 rings again"
                .to_string()
        )]
    );
}

#[test]
fn ring_first_to_a_phone_without_replaces_follows_attended_fallback() {
    // "blind": carol is hung up and bob referred to her address.
    let mut b = Bench::new(false);
    let c = ring_first_ringing(&mut b, false);
    carol_answers(&mut b, &c);
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    let refer = requests(&sent, Method::Refer);
    assert_eq!(refer[0].header("Refer-To"), Some("<sip:carol@127.0.0.1>"));
    let events = blind_events(&mut b);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].0, Some(TransferMechanism::Notify));
    assert!(events[0].3.starts_with(
        "the caller's phone does not announce attended transfer (Replaces): handing the caller over"
    ));

    // "none": both calls stay with the operator, who can complete, swap or cancel.
    let mut cfg = config(false);
    cfg.account.policy.transfer.fallback_to_blind = false;
    let mut b = Bench::with_config(cfg);
    let c = ring_first_ringing(&mut b, false);
    carol_answers(&mut b, &c);
    let sent = b.sent();
    assert!(requests(&sent, Method::Refer).is_empty());
    assert!(requests(&sent, Method::Bye).is_empty(), "both calls stay");
    assert_eq!(
        blind_events(&mut b),
        [(
            RING_FIRST,
            TransferStatus::Failed,
            None,
            "the caller's phone does not announce attended transfer (Replaces); both calls are \
             still yours: complete, swap or cancel"
                .to_string()
        )]
    );
    b.advance(Duration::from_secs(60));
    assert!(b.sent().is_empty(), "no timer gives the target up now");
    b.cmd(Command::Cancel);
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    bob_resumed(&sent, &c);
}

#[test]
fn an_attended_failure_notify_then_the_pbx_bye_is_one_dropped_caller_outcome() {
    let mut b = Bench::new(false);
    let c = consulting(&mut b, true);
    b.cmd(Command::Complete);
    let refer = b.sent_request(Method::Refer);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(
            &c.bob,
            20,
            "SIP/2.0 503 Service Unavailable\r\n",
            "terminated;reason=noresource",
        ),
    );
    b.advance(Duration::from_millis(2));
    b.recv(
        PHONE,
        &format!(
            "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKbye2\r\n\
             From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
             CSeq: 21 BYE\r\nContent-Length: 0\r\n\r\n",
            c.bob.from.tag().expect("tag"),
            c.bob.call_id
        ),
    );
    let sent = b.sent();
    assert!(requests(&sent, Method::Bye).is_empty(), "carol stays");
    b.advance(Duration::from_secs(5));
    let events = transfers(&mut b);
    assert_eq!(
        events[2..],
        [(
            TransferKind::Attended,
            TransferStatus::Failed,
            Some(503),
            "the PBX could not reach carol (503 Service Unavailable) and ended the caller's \
                 call; the target is still on line 2"
                .to_string()
        ),],
        "one outcome, no 'both calls are still yours', no recall"
    );
    assert!(b
        .ua
        .lines
        .iter()
        .flatten()
        .any(|call| call.call_id == c.carol.call_id && call.state() == CallState::Connected));
}

#[test]
fn a_target_busy_before_the_hold_is_answered_still_gets_bob_resumed() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("bob".into()));
    let bob = b.sent_request(Method::Invite);
    b.recv(
        PHONE,
        &reply(
            &bob,
            200,
            "bobtag",
            "Contact: <sip:bob@127.0.0.3:5060>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    b.sent();
    b.events();
    b.cmd(Command::Transfer("carol".into()));
    let invites = requests(&b.sent(), Method::Invite);
    let hold = invites
        .iter()
        .find(|m| m.call_id == bob.call_id)
        .expect("hold")
        .clone();
    let carol = invites
        .iter()
        .find(|m| m.call_id != bob.call_id)
        .expect("carol")
        .clone();
    // carol is busy at once, while bob's hold is still out.
    b.recv(CAROL, &reply(&carol, 486, "caroltag", "", ""));
    let sent = b.sent();
    assert!(
        requests(&sent, Method::Invite).is_empty(),
        "no re-INVITE over the hold"
    );
    let events = blind_events(&mut b);
    assert_eq!(events.last().map(|e| e.1), Some(TransferStatus::Recalled));
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    // T1 after the hold's ACK, so that the resume cannot pass it in a proxy.
    assert!(requests(&b.sent(), Method::Invite).is_empty());
    b.advance(Duration::from_millis(600));
    let resume = requests(&b.sent(), Method::Invite);
    assert_eq!(resume.len(), 1, "resumed once the hold is answered");
    assert_eq!(resume[0].call_id, bob.call_id);
    assert_eq!(sdp_direction(&resume[0]), Direction::SendRecv);
    assert!(blind_events(&mut b).is_empty());
    assert!(b.ua.lines[0].as_ref().is_some_and(|c| c.transfer.is_none()));
}

#[test]
fn an_attended_failure_notify_without_a_bye_is_told_after_the_drop_window() {
    let mut cfg = config(false);
    cfg.account.policy.transfer.fallback_to_blind = false;
    let mut b = Bench::with_config(cfg);
    let c = consulting(&mut b, true);
    b.cmd(Command::Complete);
    let refer = b.sent_request(Method::Refer);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(
            &c.bob,
            20,
            "SIP/2.0 486 Busy Here\r\n",
            "terminated;reason=noresource",
        ),
    );
    b.sent();
    let told = |b: &mut Bench| {
        transfers(b)
            .into_iter()
            .filter(|e| e.1 == TransferStatus::Failed)
            .collect::<Vec<_>>()
    };
    assert!(told(&mut b).is_empty(), "a PBX's BYE may still follow");
    b.advance(Duration::from_millis(999));
    assert!(told(&mut b).is_empty());
    b.advance(Duration::from_millis(2));
    assert_eq!(
        told(&mut b),
        [(
            TransferKind::Attended,
            TransferStatus::Failed,
            Some(486),
            "target is busy; both calls are still yours: complete, swap or cancel".to_string()
        )]
    );
    assert!(b.sent().is_empty(), "both calls stay as they are");
}

#[test]
fn ring_first_join_refused_without_fallback_leaves_both_calls() {
    let mut cfg = config(false);
    cfg.account.policy.transfer.fallback_to_blind = false;
    let mut b = Bench::with_config(cfg);
    let c = ring_first_ringing(&mut b, true);
    carol_answers(&mut b, &c);
    let refer = b.sent_request(Method::Refer);
    b.events();
    b.recv(PHONE, &reply(&refer, 403, "", "", ""));
    let sent = b.sent();
    assert!(requests(&sent, Method::Bye).is_empty(), "both calls stay");
    assert!(requests(&sent, Method::Refer).is_empty());
    assert_eq!(
        blind_events(&mut b),
        [(
            RING_FIRST,
            TransferStatus::Failed,
            Some(403),
            "transfer refused by the caller's phone (403 Forbidden); both calls are still yours: \
             complete, swap or cancel"
                .to_string()
        )]
    );
    // Now an ordinary consultation: the operator may try `complete` again.
    b.cmd(Command::Complete);
    assert_eq!(requests(&b.sent(), Method::Refer).len(), 1);
}

#[test]
fn a_consultation_lost_by_media_timeout_brings_bob_back_like_a_hangup() {
    let mut b = Bench::new(false);
    let c = consulting(&mut b, true);
    // The media thread saw no RTP from carol: the same reactions as any other ending.
    b.ua.handle_media_timeout(b.now, &c.carol.call_id, 10);
    let sent = b.sent();
    assert_eq!(requests(&sent, Method::Bye)[0].call_id, c.carol.call_id);
    let resume = requests(&sent, Method::Invite);
    assert_eq!(resume.len(), 1, "bob is resumed: {sent:#?}");
    assert_eq!(resume[0].call_id, c.bob.call_id);
    assert_eq!(sdp_direction(&resume[0]), Direction::SendRecv);
    let events = transfers(&mut b);
    assert_eq!(
        events.iter().map(|e| e.1).collect::<Vec<_>>(),
        [TransferStatus::Failed, TransferStatus::Recalled],
        "{events:?}"
    );
    assert!(b.ua.consult.is_none(), "the consultation is over");
    assert_eq!(b.ua.selected_line(), 1);
}
