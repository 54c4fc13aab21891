//! Blind transfer as the transferor, on simulated time: the REFER after the hold, the NOTIFY
//! progress, success, every failure bringing the call back, and immediate mode.

use std::time::Duration;

use super::api::{CallState, Command, Direction, Event, TransferStatus};
use super::msg::{Message, Method};
use super::transfer::BlindMode;
use super::ua_tests::{config, connected_call, phone_sdp, reply, sdp_direction, Bench, PHONE};

/// A NOTIFY from the phone in the call's dialog (the INVITE is ours, so the phone's tag is
/// `bobtag`), with a sipfrag body.
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

/// A bench whose blind transfers REFER and watch the NOTIFYs (`blind = "notify"`).
pub(super) fn notify_bench() -> Bench {
    let mut cfg = config(false);
    cfg.account.policy.transfer.blind = BlindMode::Notify;
    Bench::with_config(cfg)
}

/// The transfer events emitted since the last look: (status, code, reason).
fn transfer_events(b: &mut Bench) -> Vec<(TransferStatus, Option<u16>, Option<String>)> {
    b.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Transfer {
                status,
                status_code,
                reason,
                ..
            } => Some((status, status_code, reason)),
            _ => None,
        })
        .collect()
}

/// The recall of a failed transfer: the resume re-INVITE among `sent` (sendrecv) is answered;
/// returns the transfer events, which wait for that answer.
fn answer_resume(
    b: &mut Bench,
    sent: &[Message],
) -> Vec<(TransferStatus, Option<u16>, Option<String>)> {
    assert!(
        transfer_events(b)
            .iter()
            .all(|(s, _, _)| !matches!(s, TransferStatus::Failed | TransferStatus::Recalled)),
        "no outcome before the resume is answered"
    );
    let resume = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("the call is resumed");
    assert_eq!(sdp_direction(resume), Direction::SendRecv);
    b.recv(PHONE, &reply(resume, 200, "", "", &phone_sdp("sendrecv")));
    transfer_events(b)
}

/// A connected call that the operator blind-transfers to 2000: hold, then REFER.
/// Returns our INVITE and the REFER.
pub(super) fn transferring(b: &mut Bench) -> (Message, Message) {
    let (invite, _) = connected_call(b);
    b.sent();
    b.events();
    b.cmd(Command::Transfer("2000".into()));
    let hold = b.sent_request(Method::Invite);
    assert_eq!(
        sdp_direction(&hold),
        Direction::SendOnly,
        "held before REFER"
    );
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    let sent = b.sent();
    assert!(sent
        .iter()
        .any(|m| m.code().is_none() && m.method() == Method::Ack));
    let refer = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Refer)
        .expect("REFER once the hold completed")
        .clone();
    (invite, refer)
}

#[test]
fn blind_transfer_holds_refers_and_ends_the_call_when_the_target_answers() {
    let mut b = notify_bench();
    let (invite, refer) = transferring(&mut b);
    assert_eq!(refer.header("Refer-To"), Some("<sip:2000@127.0.0.1>"));
    assert_eq!(refer.header("Referred-By"), Some("<sip:alice@127.0.0.1>"));
    assert_eq!(refer.to.tag(), Some("bobtag"));
    assert_eq!(
        transfer_events(&mut b)
            .into_iter()
            .map(|(s, _, _)| s)
            .collect::<Vec<_>>(),
        [TransferStatus::Requested]
    );
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(&invite, 10, "SIP/2.0 100 Trying\r\n", "active;expires=60"),
    );
    assert_eq!(b.sent()[0].code(), Some(200));
    b.recv(
        PHONE,
        &notify(&invite, 11, "SIP/2.0 180 Ringing\r\n", "active;expires=60"),
    );
    b.sent();
    assert_eq!(
        transfer_events(&mut b),
        [
            (TransferStatus::Accepted, Some(202), None),
            (TransferStatus::Trying, Some(100), None),
            (TransferStatus::Ringing, Some(180), None),
        ]
    );
    // Final NOTIFY with LF line endings only (tolerated): success, we BYE.
    b.recv(
        PHONE,
        &notify(
            &invite,
            12,
            "SIP/2.0 200 OK\n",
            "terminated;reason=noresource",
        ),
    );
    let sent = b.sent();
    assert_eq!(sent[0].code(), Some(200), "the NOTIFY is answered");
    assert!(sent
        .iter()
        .any(|m| m.code().is_none() && m.method() == Method::Bye));
    let events = b.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Transfer { status: TransferStatus::Succeeded, status_code: Some(200), reason: Some(r), .. }
            if r == "transferred to sip:2000@127.0.0.1"
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Call {
            state: CallState::Ended,
            ..
        }
    )));
}

#[test]
fn a_busy_target_brings_the_call_back_and_resumes_it() {
    let mut b = notify_bench();
    let (invite, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(
            &invite,
            10,
            "SIP/2.0 486 Busy Here\r\n",
            "terminated;reason=noresource",
        ),
    );
    let sent = b.sent();
    assert_eq!(sent[0].code(), Some(200));
    assert!(!sent.iter().any(|m| m.method() == Method::Bye));
    let events = answer_resume(&mut b, &sent);
    assert_eq!(
        events,
        [
            (
                TransferStatus::Failed,
                Some(486),
                Some("target is busy".into())
            ),
            (
                TransferStatus::Recalled,
                None,
                Some("reconnecting: the call is back on line 1".into())
            ),
        ]
    );
    b.sent();
    let line1 = b.ua.lines[0].as_ref().expect("the call is on line 1");
    assert_eq!(line1.state(), CallState::Connected);
}

/// A re-INVITE from the phone in the call's dialog offering `dir`.
fn phone_reinvite(invite: &Message, cseq: u32, dir: &str) -> String {
    let sdp = phone_sdp(dir);
    format!(
        "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKr{cseq}\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} INVITE\r\nContact: <sip:bob@127.0.0.3:5060>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        invite.from.tag().expect("tag"),
        invite.call_id,
        sdp.len()
    )
}

/// The phone's ACK to our 2xx for its re-INVITE `cseq`.
fn phone_ack(invite: &Message, cseq: u32) -> String {
    format!(
        "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKa{cseq}\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} ACK\r\nContent-Length: 0\r\n\r\n",
        invite.from.tag().expect("tag"),
        invite.call_id,
    )
}

/// A transfer to a target that declines, by a phone that holds the call itself once the
/// REFER is accepted (as Linphone does): returns our INVITE, with the failure NOTIFY taken.
fn declined_by_a_phone_that_holds(b: &mut Bench) -> Message {
    let (invite, refer) = transferring(b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(PHONE, &phone_reinvite(&invite, 8, "inactive"));
    let ok = b.sent().into_iter().find(|m| m.code() == Some(200));
    assert_eq!(
        ok.as_ref().map(sdp_direction),
        Some(Direction::Inactive),
        "held both ways"
    );
    b.recv(PHONE, &phone_ack(&invite, 8));
    b.recv(
        PHONE,
        &notify(
            &invite,
            10,
            "SIP/2.0 603 Decline\r\n",
            "terminated;reason=noresource",
        ),
    );
    invite
}

/// Requests we sent (not responses) with `method`.
fn requests(sent: &[Message], method: Method) -> usize {
    sent.iter()
        .filter(|m| m.code().is_none() && m.method() == method)
        .count()
}

#[test]
fn a_phone_that_holds_the_call_itself_resumes_it_and_our_answer_resumes_it_too() {
    let mut b = notify_bench();
    let invite = declined_by_a_phone_that_holds(&mut b);
    assert_eq!(
        requests(&b.sent(), Method::Invite),
        0,
        "our resume yields to the phone's own"
    );
    assert_eq!(
        transfer_events(&mut b)
            .into_iter()
            .map(|(s, _, _)| s)
            .collect::<Vec<_>>(),
        [TransferStatus::Requested, TransferStatus::Accepted],
        "the outcome waits for the call to be back"
    );
    b.advance(Duration::from_millis(20));
    b.recv(PHONE, &phone_reinvite(&invite, 12, "sendrecv"));
    let sent = b.sent();
    let ok = sent
        .iter()
        .find(|m| m.code() == Some(200))
        .expect("the phone's resume is answered");
    assert_eq!(sdp_direction(ok), Direction::SendRecv, "and resumes us too");
    b.recv(PHONE, &phone_ack(&invite, 12));
    assert_eq!(
        transfer_events(&mut b)
            .into_iter()
            .map(|(s, code, _)| (s, code))
            .collect::<Vec<_>>(),
        [
            (TransferStatus::Failed, Some(603)),
            (TransferStatus::Recalled, None)
        ]
    );
    let line1 = b.ua.lines[0].as_ref().expect("the call is on line 1");
    assert_eq!(line1.state(), CallState::Connected);
    b.advance(Duration::from_secs(3));
    assert_eq!(
        requests(&b.sent(), Method::Invite),
        0,
        "no resume of ours crosses it"
    );
}

#[test]
fn a_phone_that_holds_the_call_and_never_resumes_it_is_resumed_after_a_second() {
    let mut b = notify_bench();
    declined_by_a_phone_that_holds(&mut b);
    b.sent();
    b.advance(Duration::from_millis(900));
    assert_eq!(requests(&b.sent(), Method::Invite), 0, "still yielding");
    b.advance(Duration::from_millis(200));
    let sent = b.sent();
    let events = answer_resume(&mut b, &sent);
    assert_eq!(
        events.into_iter().map(|(s, _, _)| s).collect::<Vec<_>>(),
        [TransferStatus::Failed, TransferStatus::Recalled]
    );
}

#[test]
fn a_rejected_refer_brings_the_call_back() {
    let mut b = notify_bench();
    let (_, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 403, "", "", ""));
    let sent = b.sent();
    let events = answer_resume(&mut b, &sent);
    assert_eq!(
        events[0],
        (
            TransferStatus::Failed,
            Some(403),
            Some("transfer refused by the caller's phone (403 Forbidden)".into())
        )
    );
    assert_eq!(events[1].0, TransferStatus::Recalled);
}

#[test]
fn no_final_notify_in_time_means_the_target_did_not_answer() {
    let mut b = notify_bench();
    let (invite, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(&invite, 10, "SIP/2.0 180 Ringing\r\n", "active"),
    );
    b.sent();
    transfer_events(&mut b);
    b.advance(Duration::from_secs(29));
    assert!(transfer_events(&mut b).is_empty(), "still waiting at 29 s");
    b.advance(Duration::from_secs(2));
    let sent = b.sent();
    assert_eq!(
        answer_resume(&mut b, &sent),
        [
            (
                TransferStatus::Failed,
                None,
                Some("target did not answer".into())
            ),
            (
                TransferStatus::Recalled,
                None,
                Some("reconnecting: the call is back on line 1".into())
            ),
        ]
    );
}

/// The wait for the final NOTIFY is the call's transfer timer: the recall starts exactly at
/// the deadline (`[transfer] timeout` after the 202) on simulated time, not a millisecond
/// before.
#[test]
fn a_transfer_whose_target_never_answers_recalls_exactly_at_its_deadline() {
    let mut b = notify_bench();
    let (_, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.sent();
    transfer_events(&mut b);
    b.advance(Duration::from_secs(30) - Duration::from_millis(1));
    assert!(b.sent().is_empty(), "no resume before the deadline");
    assert!(transfer_events(&mut b).is_empty());
    b.advance(Duration::from_millis(1));
    let sent = b.sent();
    assert_eq!(
        answer_resume(&mut b, &sent),
        [
            (
                TransferStatus::Failed,
                None,
                Some("target did not answer".into())
            ),
            (
                TransferStatus::Recalled,
                None,
                Some("reconnecting: the call is back on line 1".into())
            ),
        ]
    );
}

/// A BYE from the phone in the call's dialog.
pub(super) fn bye_from_phone(invite: &Message, cseq: u32) -> String {
    format!(
        "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKbye{cseq}\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} BYE\r\nContent-Length: 0\r\n\r\n",
        invite.from.tag().expect("tag"),
        invite.call_id
    )
}

/// A transfer accepted and trying, then the phone hangs up: the call ends at once, no
/// transfer outcome yet. Returns our INVITE.
fn hung_up_during_transfer(b: &mut Bench) -> Message {
    let (invite, refer) = transferring(b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(&invite, 10, "SIP/2.0 100 Trying\r\n", "active;expires=60"),
    );
    b.sent();
    transfer_events(b);
    b.recv(PHONE, &bye_from_phone(&invite, 20));
    assert_eq!(b.sent()[0].code(), Some(200));
    let events = b.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Call { state: CallState::Ended, reason: Some(r), .. } if r == "the far end hung up"
    )));
    assert!(
        !events.iter().any(|e| matches!(e, Event::Transfer { .. })),
        "the outcome waits for a NOTIFY that may follow the BYE: {events:?}"
    );
    invite
}

#[test]
fn the_caller_hanging_up_during_the_transfer_is_reported() {
    let mut b = notify_bench();
    let invite = hung_up_during_transfer(&mut b);
    b.advance(Duration::from_secs(15));
    assert!(
        transfer_events(&mut b).is_empty(),
        "still listening at 15 s"
    );
    b.advance(Duration::from_secs(2));
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Failed,
            None,
            Some("the caller hung up during the transfer".into())
        )],
        "reported once the subscription is given up, and no recall"
    );
    assert!(
        b.sent().is_empty(),
        "no resume, no BYE for a call that is gone"
    );
    // The subscription is gone with the call: a late NOTIFY gets 481.
    b.recv(
        PHONE,
        &notify(&invite, 21, "SIP/2.0 200 OK\r\n", "terminated"),
    );
    assert_eq!(b.sent()[0].code(), Some(481));
    assert!(transfer_events(&mut b).is_empty());
}

/// The call's end stops its INVITE timers but not its transfer's: the subscription kept
/// after the caller's BYE is given up exactly 16 s later.
#[test]
fn the_wait_after_the_callers_bye_outlives_the_call_and_ends_exactly_on_time() {
    let mut b = notify_bench();
    hung_up_during_transfer(&mut b);
    b.advance(Duration::from_secs(16) - Duration::from_millis(1));
    assert!(transfer_events(&mut b).is_empty(), "still listening");
    b.advance(Duration::from_millis(1));
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Failed,
            None,
            Some("the caller hung up during the transfer".into())
        )]
    );
}

#[test]
fn a_success_reported_after_the_callers_bye_still_counts() {
    // twinkle BYEs the transferor as soon as the target answers, then sends the final NOTIFY.
    let mut b = notify_bench();
    let invite = hung_up_during_transfer(&mut b);
    b.advance(Duration::from_millis(300));
    b.recv(
        PHONE,
        &notify(
            &invite,
            21,
            "SIP/2.0 200 OK\n",
            "terminated;reason=noresource",
        ),
    );
    let sent = b.sent();
    assert_eq!(sent.len(), 1, "only the NOTIFY's 200, no BYE: {sent:#?}");
    assert_eq!(sent[0].code(), Some(200));
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Succeeded,
            Some(200),
            Some("transferred to sip:2000@127.0.0.1".into())
        )]
    );
    b.advance(Duration::from_secs(10));
    assert!(transfer_events(&mut b).is_empty(), "one outcome only");
    assert!(b.ua.detached.is_empty(), "the ended call is let go");
}

#[test]
fn a_failure_reported_after_the_callers_bye_says_the_caller_hung_up() {
    let mut b = notify_bench();
    let invite = hung_up_during_transfer(&mut b);
    // Progress after the BYE changes nothing the operator sees.
    b.recv(
        PHONE,
        &notify(&invite, 21, "SIP/2.0 180 Ringing\r\n", "active;expires=60"),
    );
    assert_eq!(b.sent()[0].code(), Some(200));
    assert!(transfer_events(&mut b).is_empty());
    b.recv(
        PHONE,
        &notify(
            &invite,
            22,
            "SIP/2.0 487 Request Terminated\r\n",
            "terminated;reason=noresource",
        ),
    );
    assert_eq!(
        b.sent().iter().map(Message::code).collect::<Vec<_>>(),
        [Some(200)]
    );
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Failed,
            Some(487),
            Some("the caller hung up during the transfer".into())
        )]
    );
    b.advance(Duration::from_secs(10));
    assert!(transfer_events(&mut b).is_empty(), "one outcome only");
}

#[test]
fn a_bye_before_the_refer_is_answered_still_listens_for_its_outcome() {
    let mut b = notify_bench();
    let (invite, refer) = transferring(&mut b);
    transfer_events(&mut b);
    b.recv(PHONE, &bye_from_phone(&invite, 20));
    assert_eq!(b.sent()[0].code(), Some(200));
    assert!(transfer_events(&mut b).is_empty());
    // The 202 crossing the BYE changes nothing; a success NOTIFY still counts.
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(
            &invite,
            21,
            "SIP/2.0 200 OK\r\n",
            "terminated;reason=noresource",
        ),
    );
    assert_eq!(b.sent()[0].code(), Some(200));
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Succeeded,
            Some(200),
            Some("transferred to sip:2000@127.0.0.1".into())
        )]
    );
}

#[test]
fn a_bye_while_holding_fails_the_transfer_at_once() {
    let mut b = notify_bench();
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.events();
    b.cmd(Command::Transfer("2000".into()));
    b.sent_request(Method::Invite);
    transfer_events(&mut b);
    b.recv(PHONE, &bye_from_phone(&invite, 20));
    assert_eq!(b.sent()[0].code(), Some(200));
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Failed,
            None,
            Some("the caller hung up before the transfer started".into())
        )]
    );
    assert!(b.ua.detached.iter().all(|c| c.transfer.is_none()));
}

#[test]
fn immediate_mode_drops_the_call_once_the_refer_is_accepted() {
    let mut cfg = config(false);
    cfg.account.policy.transfer.blind = BlindMode::Immediate;
    let mut b = Bench::with_config(cfg);
    let (_, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    assert!(b.sent().iter().any(|m| m.method() == Method::Bye));
    let events = b.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Transfer {
            status: TransferStatus::Succeeded,
            ..
        }
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Call {
            state: CallState::Ended,
            ..
        }
    )));
}

#[test]
fn a_held_call_is_referred_at_once_and_bad_requests_are_refused() {
    let mut b = notify_bench();
    b.cmd(Command::Transfer("2000".into()));
    assert!(matches!(&b.events()[..], [Event::Error { message }] if message.contains("no call")));
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.cmd(Command::Hold(None));
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.sent();
    b.events();
    b.cmd(Command::Transfer("sip:carol@example.org".into()));
    let refer = b.sent_request(Method::Refer);
    assert_eq!(refer.header("Refer-To"), Some("<sip:carol@example.org>"));
    b.cmd(Command::Transfer("2000".into()));
    assert!(b.events().iter().any(
        |e| matches!(e, Event::Error { message } if message.contains("already being transferred"))
    ));
    // A NOTIFY that is not about a refer subscription gets 481.
    b.recv(
        PHONE,
        &notify(&invite, 30, "SIP/2.0 200 OK\r\n", "active")
            .replace("Event: refer", "Event: dialog"),
    );
    assert_eq!(b.sent()[0].code(), Some(481));
}

// ---- being transferred ----

/// A REFER from the phone in the call's dialog.
fn refer_from_phone(invite: &Message, cseq: u32, refer_to: &str) -> String {
    format!(
        "REFER sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKr{cseq}\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
         CSeq: {cseq} REFER\r\nRefer-To: {refer_to}\r\nReferred-By: <sip:bob@127.0.0.1>\r\n\
         Contact: <sip:bob@127.0.0.3:5060>\r\nContent-Length: 0\r\n\r\n",
        invite.from.tag().expect("tag"),
        invite.call_id
    )
}

/// The sipfrag status line and Subscription-State of a NOTIFY we sent.
fn notified(m: &Message) -> (String, String) {
    assert_eq!(m.header("Event"), Some("refer"));
    assert_eq!(
        m.header("Content-Type"),
        Some("message/sipfrag;version=2.0")
    );
    let body = m.body_text().expect("sipfrag").to_string();
    assert!(body.ends_with("\r\n"), "CRLF sipfrag: {body:?}");
    (
        body.trim_end().to_string(),
        m.header("Subscription-State").expect("state").to_string(),
    )
}

/// Sends a REFER on a connected call; returns our first INVITE, the NOTIFY 100 and the
/// INVITE to the target.
pub(super) fn referred(b: &mut Bench, refer_to: &str) -> (Message, Message, Message) {
    let (invite, _) = connected_call(b);
    b.sent();
    b.events();
    b.recv(PHONE, &refer_from_phone(&invite, 7, refer_to));
    let sent = b.sent();
    assert_eq!(sent[0].code(), Some(202), "{sent:#?}");
    let notify = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Notify)
        .expect("NOTIFY 100")
        .clone();
    assert_eq!(
        notified(&notify),
        ("SIP/2.0 100 Trying".into(), "active;expires=60".into())
    );
    let new = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite && m.call_id != invite.call_id)
        .expect("INVITE to the target")
        .clone();
    (invite, notify, new)
}

#[test]
fn being_transferred_calls_the_target_reports_and_ends_the_old_call() {
    let mut b = notify_bench();
    let (invite, _, new) = referred(&mut b, "<sip:carol@127.0.0.1>");
    assert_eq!(new.request_uri(), Some("sip:carol@127.0.0.1"));
    assert_eq!(new.header("Referred-By"), Some("<sip:bob@127.0.0.1>"));
    assert_eq!(new.header("Replaces"), None);
    let events = transfer_events(&mut b);
    assert_eq!(events[0].0, TransferStatus::Requested);
    b.recv(PHONE, &reply(&new, 180, "caroltag", "", ""));
    let ringing = b.sent_request(Method::Notify);
    assert_eq!(
        notified(&ringing),
        ("SIP/2.0 180 Ringing".into(), "active;expires=60".into())
    );
    b.recv(
        PHONE,
        &reply(
            &new,
            200,
            "caroltag",
            "Contact: <sip:carol@127.0.0.4:5060>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    let sent = b.sent();
    let last = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Notify)
        .expect("final NOTIFY")
        .clone();
    assert_eq!(
        notified(&last),
        (
            "SIP/2.0 200 OK".into(),
            "terminated;reason=noresource".into()
        )
    );
    // The BYE waits for the NOTIFY's answer, so that a proxy cannot deliver it first.
    assert!(
        !sent.iter().any(|m| m.method() == Method::Bye),
        "BYE before the final NOTIFY was answered: {sent:#?}"
    );
    b.recv(PHONE, &reply(&last, 200, "", "", ""));
    let bye = b.sent_request(Method::Bye);
    assert_eq!(bye.call_id, invite.call_id);
    let events = b.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Transfer { status: TransferStatus::Succeeded, reason: Some(r), .. }
            if r == "transferred to sip:carol@127.0.0.1"
    )));
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Call { state: CallState::Connected, call_id, .. } if *call_id == new.call_id
    )));
}

#[test]
fn the_old_call_ends_even_when_the_final_notify_gets_no_answer() {
    let mut b = Bench::new(false);
    let (invite, _, new) = referred(&mut b, "<sip:carol@127.0.0.1>");
    b.recv(
        PHONE,
        &reply(
            &new,
            200,
            "caroltag",
            "Contact: <sip:carol@127.0.0.4:5060>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    let sent = b.sent();
    assert!(sent.iter().any(|m| m.method() == Method::Notify));
    assert!(!sent.iter().any(|m| m.method() == Method::Bye));
    // Timer F: 64·T1 = 32 s without an answer to the NOTIFY.
    b.advance(Duration::from_secs(33));
    let bye = b
        .sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Bye)
        .expect("the old call is ended after the NOTIFY timed out");
    assert_eq!(bye.call_id, invite.call_id);
}

#[test]
fn a_transferor_hanging_up_on_the_final_notify_ends_the_old_call_as_transferred() {
    let mut b = Bench::new(false);
    let (invite, _, new) = referred(&mut b, "<sip:carol@127.0.0.1>");
    b.recv(
        PHONE,
        &reply(
            &new,
            200,
            "caroltag",
            "Contact: <sip:carol@127.0.0.4:5060>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    b.sent();
    b.events();
    b.recv(PHONE, &bye_from_phone(&invite, 8));
    let sent = b.sent();
    assert_eq!(sent[0].code(), Some(200));
    assert!(!sent
        .iter()
        .any(|m| m.method() == Method::Bye && m.code().is_none()));
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Call { state: CallState::Ended, call_id, reason: Some(r), .. }
            if *call_id == invite.call_id && r == "transferred to sip:carol@127.0.0.1"
    )));
}

#[test]
fn a_failed_referred_call_is_reported_and_the_old_call_stays() {
    let mut b = notify_bench();
    let (invite, _, new) = referred(
        &mut b,
        "<sip:carol@127.0.0.1?Replaces=abc%40host%3Bto-tag%3Dt1%3Bfrom-tag%3Df1>",
    );
    assert_eq!(
        new.header("Replaces"),
        Some("abc@host;to-tag=t1;from-tag=f1")
    );
    b.recv(PHONE, &reply(&new, 486, "caroltag", "", ""));
    let sent = b.sent();
    let last = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Notify)
        .expect("final NOTIFY");
    assert_eq!(
        notified(last),
        (
            "SIP/2.0 486 Busy Here".into(),
            "terminated;reason=noresource".into()
        )
    );
    assert!(!sent
        .iter()
        .any(|m| m.method() == Method::Bye && m.call_id == invite.call_id));
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Transfer {
            status: TransferStatus::Failed,
            status_code: Some(486),
            ..
        }
    )));
}

/// A REFER on a connected call: returns our INVITE, the re-INVITE holding the call for the
/// transfer (unanswered) and the INVITE to the target.
fn referred_and_held(b: &mut Bench) -> (Message, Message, Message) {
    let (invite, _) = connected_call(b);
    b.sent();
    b.recv(
        PHONE,
        &refer_from_phone(&invite, 7, "<sip:nobody@127.0.0.1>"),
    );
    let sent = b.sent();
    let find = |same: bool| {
        sent.iter()
            .find(|m| {
                m.code().is_none()
                    && m.method() == Method::Invite
                    && (m.call_id == invite.call_id) == same
            })
            .cloned()
            .expect("an INVITE")
    };
    let (hold, new) = (find(true), find(false));
    assert_eq!(
        sdp_direction(&hold),
        Direction::SendOnly,
        "held for the transfer"
    );
    b.events();
    (invite, hold, new)
}

#[test]
fn a_failed_transfer_of_us_resumes_the_call_we_held_for_it() {
    let mut b = Bench::new(false);
    let (invite, hold, new) = referred_and_held(&mut b);
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.recv(PHONE, &reply(&new, 404, "nobodytag", "", ""));
    let resume = b
        .sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("the call is resumed");
    assert_eq!(resume.call_id, invite.call_id);
    assert_eq!(sdp_direction(&resume), Direction::SendRecv);
    assert!(b.events().contains(&Event::Line { line: 1 }));
}

#[test]
fn a_transfer_of_us_failing_while_the_hold_is_in_flight_resumes_after_it() {
    let mut b = Bench::new(false);
    let (invite, hold, new) = referred_and_held(&mut b);
    b.recv(PHONE, &reply(&new, 404, "nobodytag", "", ""));
    assert!(b.events().contains(&Event::Line { line: 1 }));
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    // The ACK of the hold goes now; the resume a moment (T1) later, so it cannot pass the ACK.
    assert!(!b
        .sent()
        .iter()
        .any(|m| m.code().is_none() && m.method() == Method::Invite));
    b.advance(Duration::from_millis(600));
    let resume = b.sent_request(Method::Invite);
    assert_eq!(resume.call_id, invite.call_id);
    assert_eq!(sdp_direction(&resume), Direction::SendRecv);
}

#[test]
fn refers_are_refused_when_configured_or_malformed() {
    let mut cfg = config(false);
    cfg.account.policy.transfer.accept_refer = super::ReferPolicy::Reject;
    let mut b = Bench::with_config(cfg);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.recv(
        PHONE,
        &refer_from_phone(&invite, 7, "<sip:carol@127.0.0.1>"),
    );
    assert_eq!(b.sent()[0].code(), Some(603));

    let mut b = notify_bench();
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.recv(PHONE, &refer_from_phone(&invite, 7, "<sip:carol@127.0.0.1"));
    assert_eq!(b.sent()[0].code(), Some(400));
    b.recv(
        PHONE,
        &refer_from_phone(&invite, 8, "<mailto:carol@example.org>"),
    );
    assert_eq!(b.sent()[0].code(), Some(416));
}

/// A bench whose user agent asks the operator before being transferred, with a connected
/// call that has just received a REFER to carol; returns our INVITE of that call.
fn asked(b: &mut Bench) -> Message {
    let (invite, _) = connected_call(b);
    b.sent();
    b.events();
    b.recv(
        PHONE,
        &refer_from_phone(&invite, 7, "<sip:carol@127.0.0.1>"),
    );
    assert!(b.sent().is_empty(), "the REFER waits for the operator");
    let events = transfer_events(b);
    assert_eq!(
        events,
        vec![(
            TransferStatus::Asking,
            None,
            Some(
                "the far end asks to transfer you to sip:carol@127.0.0.1: `answer 1` to go, \
                 `decline 1` to stay"
                    .into()
            )
        )]
    );
    invite
}

fn asking_bench() -> Bench {
    let mut cfg = config(false);
    cfg.account.policy.transfer.accept_refer = super::ReferPolicy::Ask;
    Bench::with_config(cfg)
}

#[test]
fn asked_refer_goes_on_when_the_operator_answers() {
    let mut b = asking_bench();
    let invite = asked(&mut b);
    b.cmd(Command::Answer(Some(1)));
    let sent = b.sent();
    assert_eq!(sent[0].code(), Some(202), "{sent:#?}");
    let target = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite && m.call_id != invite.call_id)
        .expect("INVITE to the target");
    assert_eq!(target.header("Referred-By"), Some("<sip:bob@127.0.0.1>"));
    assert_eq!(
        transfer_events(&mut b)[0],
        (
            TransferStatus::Accepted,
            None,
            Some("the far end transfers this call to sip:carol@127.0.0.1".into())
        )
    );
}

#[test]
fn asked_refer_is_refused_on_decline_or_silence() {
    let mut b = asking_bench();
    asked(&mut b);
    b.cmd(Command::Decline(None));
    assert_eq!(b.sent()[0].code(), Some(603));
    assert_eq!(
        transfer_events(&mut b),
        vec![(
            TransferStatus::Failed,
            Some(603),
            Some("you declined to be transferred".into())
        )]
    );

    let mut b = asking_bench();
    asked(&mut b);
    b.advance(Duration::from_secs(19));
    assert!(b.sent().is_empty(), "the operator has 20 s");
    b.advance(Duration::from_secs(1));
    assert_eq!(b.sent()[0].code(), Some(603));
    assert_eq!(
        transfer_events(&mut b)[0].2.as_deref(),
        Some("no answer in 20 s: the transfer was refused")
    );
    b.cmd(Command::Answer(Some(1)));
    assert!(b.sent().is_empty(), "nothing left to accept");
}

#[test]
fn asked_refer_gets_487_when_the_call_ends_first() {
    let mut b = asking_bench();
    let invite = asked(&mut b);
    b.recv(PHONE, &bye_from_phone(&invite, 8));
    let codes: Vec<Option<u16>> = b.sent().iter().map(Message::code).collect();
    assert!(codes.contains(&Some(200)), "{codes:?}");
    assert!(codes.contains(&Some(487)), "{codes:?}");
}

#[test]
fn glare_on_the_hold_before_refer_retries_the_hold_then_refers() {
    let mut b = notify_bench();
    let (_, _) = connected_call(&mut b);
    b.sent();
    b.events();
    b.cmd(Command::Transfer("2000".into()));
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 491, "", "", ""));
    assert!(
        !b.sent().iter().any(|m| m.method() == Method::Refer),
        "no REFER while the hold is not done"
    );
    b.advance(Duration::from_millis(2_050));
    assert!(
        b.sent().is_empty(),
        "the caller waits at least 2.1 s (RFC 3261 §14.1)"
    );
    b.advance(Duration::from_millis(1_950));
    let retry = b
        .sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("the hold is retried by 4 s");
    assert_eq!(sdp_direction(&retry), Direction::SendOnly);
    assert!(retry.cseq.0 > hold.cseq.0);
    b.recv(PHONE, &reply(&retry, 200, "", "", &phone_sdp("recvonly")));
    let refer = b
        .sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Refer)
        .expect("REFER once the retried hold completed");
    assert_eq!(refer.header("Refer-To"), Some("<sip:2000@127.0.0.1>"));
    let events = transfer_events(&mut b);
    assert!(
        !events.iter().any(|(s, _, _)| *s == TransferStatus::Failed),
        "{events:?}"
    );
}

/// The first REFER sent since the last look (later ones are its retransmissions).
fn first_refer(b: &mut Bench) -> Message {
    b.sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Refer)
        .expect("a REFER")
}

#[test]
fn a_refer_met_by_491_is_sent_again_after_the_glare_wait_then_gives_up() {
    let mut b = notify_bench();
    let (_, refer) = transferring(&mut b);
    b.events();
    b.recv(PHONE, &reply(&refer, 491, "", "", ""));
    assert!(
        transfer_events(&mut b).is_empty(),
        "491 is not a failure yet"
    );
    b.advance(Duration::from_millis(2_050));
    assert!(
        !b.sent().iter().any(|m| m.method() == Method::Refer),
        "the caller waits at least 2.1 s"
    );
    b.advance(Duration::from_millis(1_950));
    let again = first_refer(&mut b);
    assert!(again.cseq.0 > refer.cseq.0);
    assert_eq!(again.header("Refer-To"), refer.header("Refer-To"));
    // A second 491 is retried too; a third ends the transfer and recalls the call.
    b.recv(PHONE, &reply(&again, 491, "", "", ""));
    b.advance(Duration::from_secs(4));
    let third = first_refer(&mut b);
    b.recv(PHONE, &reply(&third, 491, "", "", ""));
    let sent = b.sent();
    let events = answer_resume(&mut b, &sent);
    assert_eq!(events[0].0, TransferStatus::Failed, "{events:?}");
    assert_eq!(events[0].1, Some(491));
}

#[test]
fn a_refer_retried_after_491_can_still_succeed() {
    let mut b = notify_bench();
    let (_, refer) = transferring(&mut b);
    b.events();
    b.recv(PHONE, &reply(&refer, 491, "", "", ""));
    b.advance(Duration::from_secs(4));
    let again = first_refer(&mut b);
    b.recv(PHONE, &reply(&again, 202, "", "", ""));
    assert_eq!(
        transfer_events(&mut b),
        vec![(TransferStatus::Accepted, Some(202), None)]
    );
}

#[test]
fn a_phone_that_cannot_be_transferred_says_so() {
    let mut b = notify_bench();
    let (_, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 405, "", "", ""));
    let sent = b.sent();
    let events = answer_resume(&mut b, &sent);
    assert_eq!(
        events[0],
        (
            TransferStatus::Failed,
            Some(405),
            Some("the caller's phone cannot be transferred (405 Whatever)".into())
        )
    );
    assert_eq!(events[1].0, TransferStatus::Recalled);
}

#[test]
fn a_late_notify_of_an_earlier_refer_does_not_decide_the_next_transfer() {
    let mut b = notify_bench();
    let (invite, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.advance(Duration::from_secs(31));
    let resume = b
        .sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("recalled and resumed");
    b.recv(PHONE, &reply(&resume, 200, "", "", &phone_sdp("sendrecv")));
    b.sent();
    transfer_events(&mut b);
    // The operator tries again; the phone's answer to the first REFER comes in late.
    b.cmd(Command::Transfer("3000".into()));
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    let second = b.sent_request(Method::Refer);
    b.recv(PHONE, &reply(&second, 202, "", "", ""));
    b.sent();
    transfer_events(&mut b);
    let first_id = format!("Event: refer;id={}", refer.cseq.0);
    b.recv(
        PHONE,
        &notify(
            &invite,
            40,
            "SIP/2.0 200 OK\r\n",
            "terminated;reason=noresource",
        )
        .replace("Event: refer", &first_id),
    );
    assert_eq!(
        b.sent()[0].code(),
        Some(481),
        "not this transfer's subscription"
    );
    assert!(
        transfer_events(&mut b).is_empty(),
        "the second transfer goes on"
    );
    // This transfer's own NOTIFY (with or without its id) is taken.
    let second_id = format!("Event: refer;id={}", second.cseq.0);
    b.recv(
        PHONE,
        &notify(
            &invite,
            41,
            "SIP/2.0 486 Busy Here\r\n",
            "terminated;reason=noresource",
        )
        .replace("Event: refer", &second_id),
    );
    let sent = b.sent();
    assert_eq!(sent[0].code(), Some(200));
    assert_eq!(
        answer_resume(&mut b, &sent)[0],
        (
            TransferStatus::Failed,
            Some(486),
            Some("target is busy".into())
        )
    );
}

// ---- a PBX that takes the REFER over and drops the caller on failure ----

#[test]
fn a_failure_notify_then_the_pbx_bye_is_one_dropped_caller_outcome() {
    let mut b = notify_bench();
    let (invite, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.recv(
        PHONE,
        &notify(
            &invite,
            10,
            "SIP/2.0 503 Service Unavailable\r\n",
            "terminated;reason=noresource",
        ),
    );
    let sent = b.sent();
    let resume = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("the recall starts")
        .clone();
    let events = transfer_events(&mut b);
    assert!(
        !events
            .iter()
            .any(|(s, _, _)| matches!(s, TransferStatus::Failed | TransferStatus::Recalled)),
        "nothing said before the resume is answered: {events:?}"
    );
    // The PBX hangs the caller up a millisecond later, while our resume is out.
    b.advance(Duration::from_millis(1));
    b.recv(PHONE, &bye_from_phone(&invite, 11));
    assert_eq!(b.sent()[0].code(), Some(200));
    let events = b.events();
    let outcome: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Transfer {
                status,
                status_code,
                reason,
                ..
            } => Some((*status, *status_code, reason.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        outcome,
        [(
            TransferStatus::Failed,
            Some(503),
            Some(
                "the PBX could not reach 2000 (503 Service Unavailable) and ended the caller's call"
                    .into()
            )
        )]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Call {
            state: CallState::Ended,
            ..
        }
    )));
    // A 2xx to the resume crossing the BYE is still ACKed, and changes nothing.
    b.recv(PHONE, &reply(&resume, 200, "", "", &phone_sdp("sendrecv")));
    let sent = b.sent();
    let ack = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Ack)
        .expect("the crossing 2xx is ACKed");
    assert_eq!(ack.cseq.0, resume.cseq.0);
    assert!(b.events().is_empty(), "the ended call stays ended");
    b.advance(Duration::from_secs(40));
    assert!(b.events().is_empty());
    assert!(b.ua.detached.is_empty(), "the call is let go");
}

#[test]
fn the_pbx_bye_then_its_failure_notify_is_one_dropped_caller_outcome() {
    let mut b = notify_bench();
    let (invite, refer) = transferring(&mut b);
    b.recv(PHONE, &reply(&refer, 202, "", "", ""));
    b.sent();
    transfer_events(&mut b);
    b.recv(PHONE, &bye_from_phone(&invite, 10));
    b.advance(Duration::from_millis(1));
    b.recv(
        PHONE,
        &notify(
            &invite,
            11,
            "SIP/2.0 486 Busy Here\r\n",
            "terminated;reason=noresource",
        ),
    );
    let sent = b.sent();
    assert!(
        !sent.iter().any(|m| m.code().is_none()),
        "no resume for a call that is gone: {sent:#?}"
    );
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Failed,
            Some(486),
            Some("the PBX could not reach 2000 (busy) and ended the caller's call".into())
        )]
    );
}

#[test]
fn a_failure_notify_long_after_the_callers_bye_says_the_caller_hung_up() {
    let mut b = notify_bench();
    let invite = hung_up_during_transfer(&mut b);
    b.advance(Duration::from_secs(3));
    b.recv(
        PHONE,
        &notify(
            &invite,
            21,
            "SIP/2.0 486 Busy Here\r\n",
            "terminated;reason=noresource",
        ),
    );
    assert_eq!(
        transfer_events(&mut b),
        [(
            TransferStatus::Failed,
            Some(486),
            Some("the caller hung up during the transfer".into())
        )]
    );
}
