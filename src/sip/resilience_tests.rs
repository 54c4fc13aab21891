//! Resilience of the user agent on simulated time: keep-alives, a lost connection to the
//! registrar, calls accepted only through the registrar, and calls ended for silent media.

use std::net::SocketAddr;
use std::time::Duration;

use super::api::{CallState, Event};
use super::msg::Method;
use super::ua_tests::{
    config, connected_call, incoming_invite, phone_sdp, reply, Bench, PHONE, REGISTRAR,
};
use super::{AcceptFrom, Transmit, Transport};

/// A bench whose account is changed by `edit` before the user agent starts.
fn bench_with(register: bool, edit: impl FnOnce(&mut super::UaConfig)) -> Bench {
    let mut cfg = config(register);
    edit(&mut cfg);
    Bench::with_config(cfg)
}

/// Everything sent, raw.
fn transmits(b: &mut Bench) -> Vec<Transmit> {
    b.transmits()
}

fn registrar() -> SocketAddr {
    REGISTRAR.parse().expect("addr")
}

/// Registers (no challenge) and drains what was sent and said.
fn register(b: &mut Bench) {
    let first = b.sent_request(Method::Register);
    b.recv(REGISTRAR, &reply(&first, 200, "r", "Expires: 600\r\n", ""));
    b.events();
}

#[test]
fn udp_keepalive_goes_to_the_registrar_every_interval() {
    let mut b = bench_with(true, |c| {
        c.account.keepalive = Some(Duration::from_secs(30))
    });
    register(&mut b);
    let mut pings = Vec::new();
    for second in 1..=95 {
        b.advance(Duration::from_secs(1));
        for t in transmits(&mut b) {
            if t.payload == b"\r\n\r\n" {
                assert_eq!(t.dst, registrar());
                assert_eq!(t.transport, Transport::Udp);
                pings.push(second);
            }
        }
    }
    assert_eq!(pings, vec![30, 60, 90]);
}

#[test]
fn no_keepalive_when_off_or_without_a_registrar() {
    for (register, keepalive) in [(true, None), (false, Some(Duration::from_secs(30)))] {
        let mut b = bench_with(register, |c| c.account.keepalive = keepalive);
        if register {
            self::register(&mut b);
        }
        b.advance(Duration::from_secs(100));
        assert!(
            transmits(&mut b).iter().all(|t| t.payload != b"\r\n\r\n"),
            "register={register} keepalive={keepalive:?}"
        );
    }
}

#[test]
fn a_lost_registrar_connection_registers_again_then_backs_off() {
    let mut b = bench_with(true, |c| c.transport = Transport::Tcp);
    register(&mut b);
    // The registrar's connection closes (kamailio restarted): a new REGISTER at once.
    let now = b.now;
    b.ua.handle_connection_lost(now, registrar());
    let again = b.sent_request(Method::Register);
    assert!(again
        .header("Via")
        .is_some_and(|v| v.contains("SIP/2.0/TCP")));
    // Its connection cannot be opened either: one failure, with a reason and a backoff.
    b.ua.handle_connection_lost(now, registrar());
    let failed: Vec<Event> = b
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::RegistrationFailed { .. }))
        .collect();
    assert_eq!(
        failed,
        vec![Event::RegistrationFailed {
            account: "desk".into(),
            aor: "alice@127.0.0.1".into(),
            status: None,
            reason: "the connection to the registrar was lost".into(),
            retry_in: 5,
        }]
    );
    // The abandoned REGISTER does not time out into a second failure; the retry comes at 5 s
    // (and up to a fifth more of jitter).
    b.advance(Duration::from_millis(4_900));
    assert!(b.sent().is_empty());
    b.advance(Duration::from_millis(1_100));
    let retry = b.sent_request(Method::Register);
    b.recv(REGISTRAR, &reply(&retry, 200, "r", "Expires: 600\r\n", ""));
    assert!(b
        .events()
        .iter()
        .any(|e| matches!(e, Event::Registered { .. })));
    b.advance(Duration::from_secs(40));
    assert!(!b
        .events()
        .iter()
        .any(|e| matches!(e, Event::RegistrationFailed { .. })));
}

#[test]
fn a_lost_connection_to_someone_else_changes_nothing() {
    let mut b = bench_with(true, |c| c.transport = Transport::Tcp);
    register(&mut b);
    let now = b.now;
    b.ua.handle_connection_lost(now, PHONE.parse().expect("addr"));
    assert!(b.sent().is_empty());
    assert!(b.events().is_empty());
}

#[test]
fn accept_from_registrar_refuses_other_sources_with_403() {
    let mut b = bench_with(true, |c| c.account.accept_from = AcceptFrom::Registrar);
    register(&mut b);
    b.recv(PHONE, &incoming_invite("direct", "z9hG4bKd1"));
    let codes: Vec<u16> = b.sent().iter().filter_map(|m| m.code()).collect();
    assert_eq!(codes, vec![100, 403]);
    assert!(
        !b.events()
            .iter()
            .any(|e| matches!(e, Event::Incoming { .. })),
        "never rings"
    );
    // The same INVITE through the registrar rings.
    b.recv(REGISTRAR, &incoming_invite("proxied", "z9hG4bKp1"));
    let codes: Vec<u16> = b.sent().iter().filter_map(|m| m.code()).collect();
    assert_eq!(codes, vec![100, 180]);
    assert!(b
        .events()
        .iter()
        .any(|e| matches!(e, Event::Incoming { call_id, .. } if call_id == "proxied")));
}

#[test]
fn accept_from_registrar_still_takes_a_replaces_for_one_of_our_calls() {
    let mut b = bench_with(true, |c| c.account.accept_from = AcceptFrom::Registrar);
    register(&mut b);
    b.recv(REGISTRAR, &incoming_invite("first", "z9hG4bKf1"));
    b.cmd(super::Command::Answer(None));
    let sent = b.sent();
    let ok = sent
        .iter()
        .find(|m| m.code() == Some(200))
        .expect("200 to the INVITE");
    let our_tag = ok.to.tag().expect("To tag").to_string();
    b.events();
    // The transferee's INVITE comes straight from elsewhere, replacing that call.
    let replacing = incoming_invite("second", "z9hG4bKs1").replace(
        "Max-Forwards: 70\r\n",
        &format!("Max-Forwards: 70\r\nReplaces: first;to-tag={our_tag};from-tag=b1\r\n"),
    );
    b.recv(PHONE, &replacing);
    let codes: Vec<u16> = b.sent().iter().filter_map(|m| m.code()).collect();
    assert!(!codes.contains(&403), "{codes:?}");
    // A Replaces naming no call of ours is refused like any other direct INVITE.
    let stranger = incoming_invite("third", "z9hG4bKt1").replace(
        "Max-Forwards: 70\r\n",
        "Max-Forwards: 70\r\nReplaces: nothing;to-tag=x;from-tag=y\r\n",
    );
    b.recv(PHONE, &stranger);
    let codes: Vec<u16> = b.sent().iter().filter_map(|m| m.code()).collect();
    assert_eq!(codes, vec![100, 403]);
}

#[test]
fn accept_from_any_takes_calls_from_anywhere() {
    let mut b = bench_with(true, |c| c.account.accept_from = AcceptFrom::Any);
    register(&mut b);
    b.recv(PHONE, &incoming_invite("direct", "z9hG4bKd1"));
    let codes: Vec<u16> = b.sent().iter().filter_map(|m| m.code()).collect();
    assert_eq!(codes, vec![100, 180]);
}

#[test]
fn silent_media_ends_a_talking_call_with_bye_and_a_reason() {
    let mut b = Bench::new(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.events();
    let now = b.now;
    b.ua.handle_media_timeout(now, &invite.call_id, 3);
    b.sent_request(Method::Bye);
    let ended: Vec<Event> = b
        .events()
        .into_iter()
        .filter(|e| {
            matches!(
                e,
                Event::Call {
                    state: CallState::Ended,
                    ..
                }
            )
        })
        .collect();
    assert!(
        matches!(&ended[..], [Event::Call { reason: Some(r), .. }] if r == "no audio from the far end for 3 s"),
        "{ended:?}"
    );
}

#[test]
fn silent_media_leaves_held_and_unknown_calls_alone() {
    let mut b = Bench::new(false);
    let (invite, _) = connected_call(&mut b);
    b.cmd(super::Command::Hold(None));
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.sent();
    b.events();
    let now = b.now;
    b.ua.handle_media_timeout(now, &invite.call_id, 30);
    b.ua.handle_media_timeout(now, "no-such-call", 30);
    assert!(b.sent().is_empty());
    assert!(b.events().is_empty());
}
