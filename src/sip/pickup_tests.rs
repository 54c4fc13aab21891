//! Busy lamps and pickup on simulated time: SUBSCRIBE, its refresh, digest, backoff and
//! un-SUBSCRIBE; NOTIFYs matched by Call-ID and tags; pickup by Replaces and by code.

use std::time::Duration;

use super::api::{CallState, Command, Event};
use super::dialog_info::BlfState;
use super::msg::{Message, Method};
use super::ua_tests::{config, reply, Bench, REGISTRAR};
use super::{PickupConfig, PickupMethod};

/// A bench watching `blf`, with these pickup settings, not registering.
pub(super) fn bench(blf: &[&str], pickup: PickupConfig) -> Bench {
    let mut cfg = config(false);
    cfg.blf = blf.iter().map(|s| s.to_string()).collect();
    cfg.account.policy.pickup = pickup;
    Bench::with_config(cfg)
}

fn code_pickup(method: PickupMethod) -> PickupConfig {
    PickupConfig {
        method,
        code: Some("*8{ext}".into()),
    }
}

/// A NOTIFY from the PBX in `sub`'s dialog (`to_tag` is the PBX's tag).
pub(super) fn notify(sub: &Message, to_tag: &str, cseq: u32, state: &str, body: &str) -> String {
    let mut s = format!(
        "NOTIFY sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKn{cseq}x{}\r\n\
         From: {};tag={to_tag}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {cseq} NOTIFY\r\n\
         Contact: <sip:pbx@127.0.0.1:5060>\r\nEvent: dialog\r\nSubscription-State: {state}\r\n",
        &sub.call_id[..16],
        sub.header("To").expect("To"),
        sub.header("From").expect("From"),
        sub.call_id
    );
    if body.is_empty() {
        s.push_str("Content-Length: 0\r\n\r\n");
    } else {
        s.push_str(&format!(
            "Content-Type: application/dialog-info+xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    s
}

/// A dialog-info body with one dialog of 201 (none when `state` is empty).
pub(super) fn info(version: u32, state: &str, direction: &str) -> String {
    let dialog = if state.is_empty() {
        String::new()
    } else {
        format!(
            "<dialog id=\"d1\" call-id=\"ring-1@pbx\" local-tag=\"t201\" remote-tag=\"tcaller\" \
             direction=\"{direction}\"><state>{state}</state><remote>\
             <identity>sip:300@127.0.0.1</identity><target uri=\"sip:300@127.0.0.1:5062\"/>\
             </remote></dialog>"
        )
    };
    format!(
        "<?xml version=\"1.0\"?>\n<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" \
         version=\"{version}\" state=\"full\" entity=\"sip:201@127.0.0.1\">{dialog}</dialog-info>"
    )
}

pub(super) fn lamps(b: &mut Bench) -> Vec<(String, BlfState)> {
    b.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Blf { ext, state } => Some((ext, state)),
            _ => None,
        })
        .collect()
}

pub(super) fn errors(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Error { message } => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// The SUBSCRIBEs sent since the last look, retransmissions left out.
pub(super) fn subscribes(b: &mut Bench) -> Vec<Message> {
    let mut seen: Vec<Message> = Vec::new();
    for m in b.sent() {
        let fresh = m.code().is_none()
            && m.method() == Method::Subscribe
            && seen.iter().all(|s| s.via.branch() != m.via.branch());
        if fresh {
            seen.push(m);
        }
    }
    seen
}

/// The one new SUBSCRIBE sent since the last look.
pub(super) fn one_subscribe(b: &mut Bench) -> Message {
    let mut all = subscribes(b);
    assert_eq!(all.len(), 1, "expected one SUBSCRIBE: {all:#?}");
    all.remove(0)
}

/// The responses among `sent`, as codes.
pub(super) fn codes(sent: &[Message]) -> Vec<u16> {
    sent.iter().filter_map(Message::code).collect()
}

#[test]
fn busy_lamp_follows_notifies_refreshes_and_unsubscribes_on_quit() {
    let mut b = bench(&["201"], PickupConfig::default());
    let sub = one_subscribe(&mut b);
    assert_eq!(sub.request_uri(), Some("sip:201@127.0.0.1"));
    assert_eq!(sub.header("Event"), Some("dialog"));
    assert_eq!(sub.header("Accept"), Some("application/dialog-info+xml"));
    assert_eq!(sub.header("Expires"), Some("600"));
    assert!(sub.to.tag().is_none());
    b.recv(
        REGISTRAR,
        &reply(
            &sub,
            200,
            "pbx1",
            "Expires: 600\r\nContact: <sip:pbx@127.0.0.1:5060>\r\n",
            "",
        ),
    );
    assert!(
        lamps(&mut b).is_empty(),
        "nothing is known before the first NOTIFY"
    );

    let steps = [
        ("", "", BlfState::Idle),
        ("early", "recipient", BlfState::Ringing),
        ("confirmed", "recipient", BlfState::Busy),
        ("terminated", "recipient", BlfState::Idle),
    ];
    for (n, (state, dir, lamp)) in steps.iter().enumerate() {
        let cseq = u32::try_from(n).expect("small") + 1;
        let body = info(cseq, state, dir);
        b.recv(
            REGISTRAR,
            &notify(&sub, "pbx1", cseq, "active;expires=600", &body),
        );
        assert_eq!(codes(&b.sent()), vec![200], "NOTIFY {cseq} answered 200");
        assert_eq!(lamps(&mut b), vec![("201".to_string(), *lamp)]);
    }
    // The same state again is no event.
    b.recv(
        REGISTRAR,
        &notify(&sub, "pbx1", 9, "active", &info(9, "", "")),
    );
    b.sent();
    assert!(lamps(&mut b).is_empty());

    // Refresh in the dialog at 85 % of 600 s.
    b.advance(Duration::from_secs(509));
    assert!(b.sent().is_empty());
    b.advance(Duration::from_secs(2));
    let refresh = one_subscribe(&mut b);
    assert_eq!(refresh.call_id, sub.call_id);
    assert_eq!(refresh.to.tag(), Some("pbx1"));
    assert_eq!(refresh.request_uri(), Some("sip:pbx@127.0.0.1:5060"));
    assert!(refresh.cseq.0 > sub.cseq.0);
    b.recv(REGISTRAR, &reply(&refresh, 200, "", "Expires: 600\r\n", ""));

    // Quit: Expires 0, then the final NOTIFY, then stopped.
    b.cmd(Command::Quit);
    let bye = one_subscribe(&mut b);
    assert_eq!(bye.header("Expires"), Some("0"));
    assert_eq!(bye.call_id, sub.call_id);
    b.recv(REGISTRAR, &reply(&bye, 200, "", "Expires: 0\r\n", ""));
    assert!(!b.ua.is_stopped(), "waits for the final NOTIFY");
    b.recv(
        REGISTRAR,
        &notify(&sub, "pbx1", 20, "terminated;reason=timeout", ""),
    );
    assert_eq!(codes(&b.sent()), vec![200]);
    assert!(b.ua.is_stopped());
}

#[test]
fn notify_before_the_2xx_makes_the_dialog_and_strangers_get_481() {
    let mut b = bench(&["201"], PickupConfig::default());
    let sub = one_subscribe(&mut b);
    b.recv(
        REGISTRAR,
        &notify(
            &sub,
            "pbx9",
            1,
            "active;expires=600",
            &info(1, "early", "recipient"),
        ),
    );
    assert_eq!(codes(&b.sent()), vec![200]);
    assert_eq!(lamps(&mut b), vec![("201".to_string(), BlfState::Ringing)]);
    // A NOTIFY with another notifier tag, or another Call-ID, is not ours.
    b.recv(
        REGISTRAR,
        &notify(&sub, "other", 2, "active", &info(2, "", "")),
    );
    assert_eq!(codes(&b.sent()), vec![481]);
    let mut stranger = notify(&sub, "pbx9", 3, "active", &info(3, "", ""));
    stranger = stranger.replace(&sub.call_id, "nobody@else");
    b.recv(REGISTRAR, &stranger);
    assert_eq!(codes(&b.sent()), vec![481]);
    // Another event package in our dialog: 489.
    let presence =
        notify(&sub, "pbx9", 4, "active", "").replace("Event: dialog", "Event: presence");
    b.recv(REGISTRAR, &presence);
    assert_eq!(codes(&b.sent()), vec![489]);
    // The 2xx arriving later keeps the dialog; the refresh goes in it.
    b.recv(REGISTRAR, &reply(&sub, 200, "pbx9", "Expires: 100\r\n", ""));
    b.advance(Duration::from_secs(86));
    let refresh = one_subscribe(&mut b);
    assert_eq!(refresh.to.tag(), Some("pbx9"));
}

#[test]
fn challenged_subscribe_is_answered_and_failures_back_off() {
    let mut b = bench(&["201", "202"], PickupConfig::default());
    let sent = b.sent();
    assert_eq!(sent.len(), 2, "one SUBSCRIBE per lamp");
    let (first, second) = (&sent[0], &sent[1]);
    b.recv(
        REGISTRAR,
        &reply(
            first,
            407,
            "px",
            "Proxy-Authenticate: Digest realm=\"lab\", nonce=\"n1\", qop=\"auth\"\r\n",
            "",
        ),
    );
    let again = one_subscribe(&mut b);
    assert_eq!(again.call_id, first.call_id);
    assert_eq!(again.cseq.0, first.cseq.0 + 1);
    let auth = again
        .header("Proxy-Authorization")
        .expect("answers the challenge");
    assert!(auth.contains("uri=\"sip:201@127.0.0.1\""), "{auth}");
    // The same challenge again: credentials refused, no loop.
    b.recv(
        REGISTRAR,
        &reply(
            &again,
            407,
            "px",
            "Proxy-Authenticate: Digest realm=\"lab\", nonce=\"n2\", qop=\"auth\"\r\n",
            "",
        ),
    );
    assert!(b.sent().is_empty());

    // 202's notifier is down: retry after 5 s, then 10 s (each with up to a fifth more of
    // jitter), each with a new Call-ID.
    b.recv(REGISTRAR, &reply(second, 503, "x", "", ""));
    b.advance(Duration::from_millis(4900));
    assert!(b
        .sent()
        .iter()
        .all(|m| m.header("To").is_none_or(|t| !t.contains("202"))));
    b.advance(Duration::from_millis(1100));
    let retries: Vec<Message> = subscribes(&mut b)
        .into_iter()
        .filter(|m| m.request_uri() == Some("sip:202@127.0.0.1"))
        .collect();
    assert_eq!(retries.len(), 1);
    assert_ne!(retries[0].call_id, second.call_id);
    b.recv(REGISTRAR, &reply(&retries[0], 503, "x", "", ""));
    b.advance(Duration::from_millis(9900));
    assert!(b
        .sent()
        .iter()
        .all(|m| m.request_uri() != Some("sip:202@127.0.0.1")));
    b.advance(Duration::from_millis(2100));
    assert!(b
        .sent()
        .iter()
        .any(|m| m.request_uri() == Some("sip:202@127.0.0.1")));
}

#[test]
fn a_lamp_that_was_known_goes_unknown_when_the_pbx_ends_it() {
    let mut b = bench(&["201"], PickupConfig::default());
    let sub = one_subscribe(&mut b);
    b.recv(REGISTRAR, &reply(&sub, 200, "p", "Expires: 600\r\n", ""));
    b.recv(REGISTRAR, &notify(&sub, "p", 1, "active", &info(1, "", "")));
    b.sent();
    assert_eq!(lamps(&mut b), vec![("201".to_string(), BlfState::Idle)]);
    b.recv(
        REGISTRAR,
        &notify(&sub, "p", 2, "terminated;reason=noresource", ""),
    );
    assert_eq!(codes(&b.sent()), vec![200]);
    assert_eq!(lamps(&mut b), vec![("201".to_string(), BlfState::Unknown)]);
    // deactivated: subscribe again at once.
    b.advance(Duration::from_secs(6));
    let again = one_subscribe(&mut b);
    b.recv(REGISTRAR, &reply(&again, 200, "q", "Expires: 600\r\n", ""));
    b.recv(
        REGISTRAR,
        &notify(&again, "q", 1, "terminated;reason=deactivated", ""),
    );
    let sent = b.sent();
    assert_eq!(codes(&sent), vec![200]);
    assert_eq!(
        sent.iter()
            .filter(|m| m.code().is_none() && m.method() == Method::Subscribe)
            .count(),
        1,
        "deactivated re-subscribes at once"
    );
}

#[test]
fn pickup_by_dialog_sends_replaces_early_only_to_the_caller() {
    let mut b = bench(&[], PickupConfig::default());
    assert!(b.sent().is_empty());
    b.cmd(Command::Pickup("201".into()));
    let sub = one_subscribe(&mut b);
    assert_eq!(sub.header("Expires"), Some("60"));
    b.recv(REGISTRAR, &reply(&sub, 200, "p", "Expires: 60\r\n", ""));
    b.recv(
        REGISTRAR,
        &notify(
            &sub,
            "p",
            1,
            "active;expires=60",
            &info(1, "early", "recipient"),
        ),
    );
    let sent = b.sent();
    assert_eq!(codes(&sent), vec![200]);
    let invite = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("INVITE with Replaces");
    assert_eq!(
        invite.header("Replaces"),
        Some("ring-1@pbx;to-tag=tcaller;from-tag=t201;early-only"),
        "named as the caller knows its early dialog"
    );
    assert_eq!(invite.request_uri(), Some("sip:300@127.0.0.1:5062"));
    let unsub = sent
        .iter()
        .find(|m| m.code().is_none() && m.method() == Method::Subscribe)
        .expect("the fetch is ended");
    assert_eq!(unsub.header("Expires"), Some("0"));
    assert!(
        b.events().iter().all(|e| !matches!(e, Event::Blf { .. })),
        "no lamp for a pickup"
    );
    let ok = reply(
        invite,
        200,
        "c1",
        "Contact: <sip:300@127.0.0.1:5062>\r\n",
        &super::ua_tests::phone_sdp("sendrecv"),
    );
    b.recv("127.0.0.1:5062", &ok);
    assert_eq!(b.states(), vec![CallState::Connected]);
}

#[test]
fn pickup_explains_nothing_ringing_refusal_and_silence() {
    let mut b = bench(&[], PickupConfig::default());
    b.cmd(Command::Pickup("201".into()));
    let sub = one_subscribe(&mut b);
    b.recv(
        REGISTRAR,
        &notify(&sub, "p", 1, "active", &info(1, "confirmed", "recipient")),
    );
    b.sent();
    assert_eq!(
        errors(&b.events()),
        vec!["pickup 201: nothing is ringing at 201"]
    );

    b.cmd(Command::Pickup("202".into()));
    let sub = one_subscribe(&mut b);
    b.recv(REGISTRAR, &reply(&sub, 489, "p", "", ""));
    let events = b.events();
    assert_eq!(errors(&events).len(), 1);
    assert!(
        errors(&events)[0].contains("does not offer the dialog event package"),
        "{events:?}"
    );

    b.cmd(Command::Pickup("203".into()));
    let sub = one_subscribe(&mut b);
    b.recv(REGISTRAR, &reply(&sub, 200, "p", "Expires: 60\r\n", ""));
    b.recv(REGISTRAR, &notify(&sub, "p", 1, "pending", ""));
    b.sent();
    b.events();
    b.advance(Duration::from_secs(5));
    let unsub: Vec<Message> = subscribes(&mut b)
        .into_iter()
        .filter(|m| m.call_id == sub.call_id)
        .collect();
    assert_eq!(unsub.len(), 1);
    assert_eq!(unsub[0].header("Expires"), Some("0"));
    let events = b.events();
    assert_eq!(
        errors(&events),
        vec!["pickup 203: the PBX did not report the extension's calls in time"]
    );

    // The picked-up call refused.
    b.cmd(Command::Pickup("204".into()));
    let sub = one_subscribe(&mut b);
    b.recv(
        REGISTRAR,
        &notify(&sub, "p", 1, "active", &info(1, "early", "recipient")),
    );
    let invite = b
        .sent()
        .into_iter()
        .find(|m| m.method() == Method::Invite && m.code().is_none())
        .expect("INVITE");
    b.events();
    b.recv("127.0.0.1:5062", &reply(&invite, 403, "c", "", ""));
    let ended = b.events().into_iter().find_map(|e| match e {
        Event::Call {
            state: CallState::Ended,
            reason,
            status,
            ..
        } => Some((status, reason)),
        _ => None,
    });
    assert_eq!(
        ended,
        Some((Some(403), Some("pickup refused (403)".to_string())))
    );
}

#[test]
fn pickup_by_code_and_fallback_to_the_code() {
    let mut b = bench(&[], code_pickup(PickupMethod::Code));
    b.cmd(Command::Pickup("201".into()));
    let invite = b.sent_request(Method::Invite);
    assert_eq!(invite.request_uri(), Some("sip:*8201@127.0.0.1"));
    assert!(invite.header("Replaces").is_none());
    // The code keys the target's digits, however the extension was written.
    for typed in ["20-1", "sip:201@127.0.0.1", "<201@pbx>"] {
        let mut b = bench(&[], code_pickup(PickupMethod::Code));
        b.cmd(Command::Pickup(typed.into()));
        let invite = b.sent_request(Method::Invite);
        assert_eq!(
            invite.request_uri(),
            Some("sip:*8201@127.0.0.1"),
            "{typed:?}"
        );
    }
    // A name or a `+` number has no digits to key; what cannot be called says why.
    for (typed, words) in [
        ("alice", "pickup alice: the pickup code needs an extension number (digits, * and #)"),
        ("a b", "pickup: 'a b' is neither a number (digits, +, * and #), an extension nor a SIP address (user@host, sip:…, tel:…)"),
    ] {
        let mut b = bench(&[], code_pickup(PickupMethod::Code));
        b.cmd(Command::Pickup(typed.into()));
        assert!(b.sent().is_empty(), "{typed:?}");
        assert_eq!(errors(&b.events()), vec![words], "{typed:?}");
    }

    // Dialog first; the PBX hides the ringing call's identity: the code is dialled.
    let mut b = bench(&[], code_pickup(PickupMethod::Dialog));
    b.cmd(Command::Pickup("201".into()));
    let sub = one_subscribe(&mut b);
    let asterisk = "<dialog-info xmlns=\"urn:ietf:params:xml:ns:dialog-info\" version=\"1\" state=\"full\" \
        entity=\"sip:201@x\"><dialog id=\"201\" direction=\"recipient\"><state>early</state></dialog></dialog-info>";
    b.recv(REGISTRAR, &notify(&sub, "p", 1, "active", asterisk));
    let invite = b
        .sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("falls back to the code");
    assert_eq!(invite.request_uri(), Some("sip:*8201@127.0.0.1"));
    assert!(errors(&b.events()).is_empty());

    // No code configured: the method "code" is an error in words.
    let mut b = bench(
        &[],
        PickupConfig {
            method: PickupMethod::Code,
            code: None,
        },
    );
    b.cmd(Command::Pickup("201".into()));
    assert!(b.sent().is_empty());
    assert_eq!(
        errors(&b.events()),
        vec!["pickup: no pickup_code is configured for this account"]
    );
}

#[test]
fn pickup_uses_what_the_busy_lamp_already_knows() {
    let mut b = bench(&["201"], PickupConfig::default());
    let sub = one_subscribe(&mut b);
    b.recv(REGISTRAR, &reply(&sub, 200, "p", "Expires: 600\r\n", ""));
    b.recv(
        REGISTRAR,
        &notify(&sub, "p", 1, "active", &info(1, "early", "recipient")),
    );
    b.sent();
    b.events();
    b.cmd(Command::Pickup("201".into()));
    let sent = b.sent();
    assert_eq!(sent.len(), 1, "no new SUBSCRIBE: {sent:#?}");
    assert_eq!(sent[0].method(), Method::Invite);
    assert!(sent[0]
        .header("Replaces")
        .is_some_and(|r| r.ends_with(";early-only")));
}
