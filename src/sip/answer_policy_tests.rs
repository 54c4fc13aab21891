//! The answering policy on simulated time: do not disturb, auto-answer and intercom (the
//! delay, the second call, the headers), and wrap-up (codes, skip, time limit, busy).

use std::time::Duration;

use super::answer_policy::{asks_auto_answer, Asked, AutoAnswer, WrapupChoice, WrapupStatus};
use super::api::{CallState, Command, Event};
use super::media_order::MediaOrder;
use super::msg::{Message, Method};
use super::ua_tests::{config, incoming_invite, reply, Bench, PHONE};
use super::{AnswerConfig, WrapupConfig};

fn with_answer(answer: AnswerConfig) -> Bench {
    let mut cfg = config(false);
    cfg.account.policy.answer = answer;
    Bench::with_config(cfg)
}

/// An INVITE like [`incoming_invite`] with `extra` header lines.
fn invite_with(call_id: &str, branch: &str, extra: &str) -> String {
    incoming_invite(call_id, branch).replacen(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\n{extra}"),
        1,
    )
}

fn codes(sent: &[Message]) -> Vec<u16> {
    sent.iter().filter_map(Message::code).collect()
}

fn ack_and_bye(b: &mut Bench, call_id: &str, tag: &str) {
    b.recv(
        PHONE,
        &format!(
            "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKa{call_id}\r\n\
             From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    b.recv(
        PHONE,
        &format!(
            "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKb{call_id}\r\n\
             From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
             Call-ID: {call_id}\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
        ),
    );
}

/// A call `call_id` comes in, is answered by the operator and hung up by the caller.
fn answered_and_ended(b: &mut Bench, call_id: &str) -> Vec<Event> {
    b.recv(
        PHONE,
        &incoming_invite(call_id, &format!("z9hG4bK{call_id}")),
    );
    b.sent();
    b.cmd(Command::Answer(None));
    let ok = b.sent();
    let tag = ok[0].to.tag().expect("our To tag").to_string();
    b.events();
    ack_and_bye(b, call_id, &tag);
    b.sent();
    b.events()
}

// ---- do not disturb ----

#[test]
fn dnd_answers_new_calls_busy_without_ringing_and_says_why() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dnd(Some(true)));
    assert_eq!(
        b.events(),
        vec![Event::Dnd {
            on: true,
            code: None
        }]
    );
    b.recv(PHONE, &incoming_invite("d1", "z9hG4bKd1"));
    assert_eq!(codes(&b.sent()), vec![100, 486]);
    let events = b.events();
    assert_eq!(
        events,
        vec![Event::Refused {
            call_id: "d1".into(),
            from: "sip:bob@127.0.0.1".into(),
            display_name: Some("Bob".into()),
            status: 486,
            reason: "do not disturb".into(),
        }]
    );
    assert!(b.media_orders().is_empty(), "nothing rings");
    b.cmd(Command::Dnd(None));
    assert_eq!(
        b.events(),
        vec![Event::Dnd {
            on: false,
            code: None
        }]
    );
    b.recv(PHONE, &incoming_invite("d2", "z9hG4bKd2"));
    assert_eq!(codes(&b.sent()), vec![100, 180]);
}

#[test]
fn dnd_response_480_is_sent_when_configured() {
    let mut b = with_answer(AnswerConfig {
        dnd_status: 480,
        ..AnswerConfig::default()
    });
    b.cmd(Command::Dnd(Some(true)));
    b.recv(PHONE, &incoming_invite("d1", "z9hG4bKd1"));
    assert_eq!(codes(&b.sent()), vec![100, 480]);
}

#[test]
fn dnd_with_a_feature_code_dials_it_and_hangs_up_when_the_pbx_answers() {
    let mut b = with_answer(AnswerConfig {
        dnd_on_code: Some("*78".into()),
        dnd_off_code: Some("*79".into()),
        ..AnswerConfig::default()
    });
    b.cmd(Command::Dnd(Some(true)));
    let invite = b.sent_request(Method::Invite);
    assert_eq!(invite.request_uri(), Some("sip:*78@127.0.0.1"));
    assert!(b.events().contains(&Event::Dnd {
        on: true,
        code: Some("*78".into())
    }));
    b.recv(
        PHONE,
        &reply(
            &invite,
            200,
            "pbx",
            "Contact: <sip:pbx@127.0.0.3:5060>\r\n",
            &super::ua_tests::phone_sdp("sendrecv"),
        ),
    );
    let sent = b.sent();
    assert!(
        sent.iter().any(|m| m.method() == Method::Bye),
        "hung up at once: {sent:#?}"
    );
    // The PBX refuses calls now; switchboard rings them (no local refusal).
    b.recv(PHONE, &incoming_invite("d1", "z9hG4bKd1"));
    assert!(codes(&b.sent()).contains(&180));
    assert!(b.ua.dnd());
}

#[test]
fn a_feature_code_the_pbx_refuses_is_an_error() {
    let mut b = with_answer(AnswerConfig {
        dnd_on_code: Some("*78".into()),
        ..AnswerConfig::default()
    });
    b.cmd(Command::Dnd(Some(true)));
    let invite = b.sent_request(Method::Invite);
    b.events();
    b.recv(PHONE, &reply(&invite, 404, "pbx", "", ""));
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Error { message } if message.contains("*78") && message.contains("404")
        )),
        "{events:#?}"
    );
}

// ---- auto-answer ----

#[test]
fn auto_answer_on_waits_for_the_delay_then_beeps_and_answers() {
    let mut b = with_answer(AnswerConfig {
        auto_answer: AutoAnswer::On,
        delay: Duration::from_millis(1500),
        ..AnswerConfig::default()
    });
    b.recv(PHONE, &incoming_invite("a1", "z9hG4bKa1"));
    assert_eq!(codes(&b.sent()), vec![100, 180]);
    assert!(b.events().contains(&Event::AutoAnswer {
        line: 1,
        call_id: "a1".into(),
        after_ms: 1500
    }));
    b.media_orders();
    b.advance(Duration::from_millis(1400));
    assert!(codes(&b.sent()).is_empty(), "not before the delay");
    b.advance(Duration::from_millis(200));
    assert_eq!(codes(&b.sent()), vec![200]);
    assert!(b.media_orders().contains(&MediaOrder::Beep));
    assert_eq!(b.states(), vec![CallState::Connected]);
}

#[test]
fn a_second_call_is_not_auto_answered_while_one_is_up_and_is_once_it_ends() {
    let mut b = with_answer(AnswerConfig {
        auto_answer: AutoAnswer::On,
        ..AnswerConfig::default()
    });
    b.recv(PHONE, &incoming_invite("a1", "z9hG4bKa1"));
    b.advance(Duration::from_millis(10));
    let sent = b.sent();
    let tag = sent
        .iter()
        .find(|m| m.code() == Some(200))
        .and_then(|m| m.to.tag())
        .expect("the first call answered")
        .to_string();
    b.events();
    b.recv(PHONE, &incoming_invite("a2", "z9hG4bKa2"));
    b.advance(Duration::from_secs(5));
    let second: Vec<Message> = b.sent().into_iter().filter(|m| m.call_id == "a2").collect();
    assert_eq!(
        codes(&second),
        vec![100, 180],
        "the second call keeps ringing"
    );
    assert!(!b
        .events()
        .iter()
        .any(|e| matches!(e, Event::AutoAnswer { .. })));
    ack_and_bye(&mut b, "a1", &tag);
    b.advance(Duration::from_millis(10));
    let sent = b.sent();
    assert!(
        sent.iter()
            .any(|m| m.code() == Some(200) && m.call_id == "a2" && m.cseq.1 == Method::Invite),
        "answered once the first ended: {sent:#?}"
    );
}

#[test]
fn auto_answer_second_answers_the_second_call_too() {
    let mut b = with_answer(AnswerConfig {
        auto_answer: AutoAnswer::On,
        second: true,
        ..AnswerConfig::default()
    });
    b.recv(PHONE, &incoming_invite("a1", "z9hG4bKa1"));
    b.advance(Duration::from_millis(10));
    b.sent();
    b.recv(PHONE, &incoming_invite("a2", "z9hG4bKa2"));
    b.advance(Duration::from_millis(10));
    assert!(b
        .sent()
        .iter()
        .any(|m| m.code() == Some(200) && m.call_id == "a2"));
}

#[test]
fn intercom_answers_only_calls_that_ask_for_it() {
    let mut b = with_answer(AnswerConfig {
        auto_answer: AutoAnswer::Intercom,
        delay: Duration::from_millis(300),
        ..AnswerConfig::default()
    });
    b.recv(PHONE, &incoming_invite("plain", "z9hG4bKp"));
    b.advance(Duration::from_secs(10));
    assert_eq!(codes(&b.sent()), vec![100, 180], "a plain call rings on");
    b.cmd(Command::Hangup(Some(1)));
    b.sent();
    b.advance(Duration::from_secs(1));
    b.recv(
        PHONE,
        &invite_with(
            "ic",
            "z9hG4bKic",
            "Call-Info: <sip:127.0.0.1>;answer-after=2\r\n",
        ),
    );
    b.advance(Duration::from_millis(1900));
    assert!(!codes(&b.sent()).contains(&200), "answer-after=2 waits 2 s");
    b.advance(Duration::from_millis(200));
    assert!(codes(&b.sent()).contains(&200));
}

#[test]
fn intercom_headers_are_recognised() {
    let parse = |extra: &str| {
        let text = invite_with("h", "z9hG4bKh", extra);
        asks_auto_answer(&Message::parse(text.as_bytes()).expect("parses"))
    };
    assert_eq!(
        parse("Call-Info: <sip:x>;answer-after=0\r\n"),
        Some(Asked::After(Duration::ZERO))
    );
    assert_eq!(
        parse("Call-Info: <http://x/a,b>;purpose=icon, <sip:x>;Answer-After=5\r\n"),
        Some(Asked::After(Duration::from_secs(5)))
    );
    assert_eq!(
        parse("Alert-Info: <http://127.0.0.1>;info=alert-autoanswer\r\n"),
        Some(Asked::Yes)
    );
    assert_eq!(parse("Alert-Info: <x>;info=intercom\r\n"), Some(Asked::Yes));
    assert_eq!(parse("Answer-Mode: Auto;require\r\n"), Some(Asked::Yes));
    assert_eq!(parse("Answer-Mode: Manual\r\n"), None);
    assert_eq!(parse("Alert-Info: <http://x/ring.wav>\r\n"), None);
    assert_eq!(parse("Call-Info: <sip:x>;answer-after=soon\r\n"), None);
}

// ---- wrap-up ----

fn wrapping(busy: bool, required: bool) -> Bench {
    with_answer(AnswerConfig {
        wrapup: WrapupConfig {
            codes: vec!["sale".into(), "callback".into()],
            required,
            limit: Some(Duration::from_secs(30)),
            busy,
        },
        ..AnswerConfig::default()
    })
}

#[test]
fn an_answered_call_opens_a_wrap_up_told_before_its_end_and_saved_with_a_code() {
    let mut b = wrapping(false, false);
    let events = answered_and_ended(&mut b, "w1");
    let started = events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::Wrapup {
                    status: WrapupStatus::Started,
                    ..
                }
            )
        })
        .expect("wrap-up started");
    let ended = events
        .iter()
        .position(|e| {
            matches!(
                e,
                Event::Call {
                    state: CallState::Ended,
                    ..
                }
            )
        })
        .expect("call ended");
    assert!(
        started < ended,
        "started goes just before the end: {events:#?}"
    );
    b.cmd(Command::Wrapup(WrapupChoice::Save {
        code: Some("SALE".into()),
        note: " two seats ".into(),
    }));
    assert_eq!(
        b.events(),
        vec![Event::Wrapup {
            line: 1,
            call_id: "w1".into(),
            peer: "sip:bob@127.0.0.1".into(),
            status: WrapupStatus::Saved,
            codes: Vec::new(),
            seconds: None,
            required: false,
            code: Some("sale".into()),
            note: Some("two seats".into()),
        }]
    );
}

#[test]
fn an_unknown_code_or_a_skip_when_required_is_refused() {
    let mut b = wrapping(false, true);
    answered_and_ended(&mut b, "w1");
    b.cmd(Command::Wrapup(WrapupChoice::Save {
        code: Some("nope".into()),
        note: String::new(),
    }));
    b.cmd(Command::Wrapup(WrapupChoice::Skip));
    let errors: Vec<Event> = b.events();
    assert!(
        errors.iter().all(|e| matches!(e, Event::Error { .. })) && errors.len() == 2,
        "{errors:#?}"
    );
}

#[test]
fn a_wrap_up_closes_itself_with_no_code_when_its_time_is_up() {
    let mut b = wrapping(false, true);
    answered_and_ended(&mut b, "w1");
    b.advance(Duration::from_secs(29));
    assert!(b.events().is_empty());
    b.advance(Duration::from_secs(2));
    assert!(matches!(
        b.events().as_slice(),
        [Event::Wrapup {
            status: WrapupStatus::Expired,
            code: None,
            ..
        }]
    ));
}

#[test]
fn a_call_never_answered_has_no_wrap_up() {
    let mut b = wrapping(false, false);
    b.recv(PHONE, &incoming_invite("m1", "z9hG4bKm1"));
    b.cmd(Command::Decline(None));
    assert!(!b.events().iter().any(|e| matches!(e, Event::Wrapup { .. })));
}

#[test]
fn busy_during_wrapup_refuses_new_calls_until_it_closes() {
    let mut b = wrapping(true, false);
    answered_and_ended(&mut b, "w1");
    b.recv(PHONE, &incoming_invite("n1", "z9hG4bKn1"));
    assert_eq!(codes(&b.sent()), vec![100, 486]);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Refused { status: 486, reason, .. } if reason.contains("wrap-up")
    )));
    b.cmd(Command::Wrapup(WrapupChoice::Skip));
    b.events();
    b.recv(PHONE, &incoming_invite("n2", "z9hG4bKn2"));
    assert_eq!(codes(&b.sent()), vec![100, 180]);
}

#[test]
fn quitting_skips_open_wrap_ups() {
    let mut b = wrapping(false, false);
    answered_and_ended(&mut b, "w1");
    b.cmd(Command::Quit);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Wrapup { status: WrapupStatus::Skipped, call_id, .. } if call_id == "w1"
    )));
}
