//! Busy lamps for the extensions in view (`watch`) on simulated time: subscribed on entering
//! the view, ended after the grace period on leaving it, kept when they come back in time,
//! bounded with the configured lamps first; 423 Min-Expires and a NOTIFY's retry-after.

use std::time::Duration;

use super::api::{Command, Event};
use super::dialog_info::BlfState;
use super::msg::Message;
use super::pickup_tests::{bench, codes, errors, info, notify, one_subscribe, subscribes};
use super::ua_tests::{reply, Bench, REGISTRAR};
use super::{PickupConfig, MAX_BLF, VIEW_GRACE, VIEW_LIMIT};

fn watch(b: &mut Bench, exts: &[&str]) {
    b.cmd(Command::Watch(exts.iter().map(|e| e.to_string()).collect()));
}

/// The extension a SUBSCRIBE is for (its To URI's user part).
fn ext_of(m: &Message) -> String {
    m.to.uri
        .trim_start_matches("sip:")
        .split('@')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Answers every SUBSCRIBE in `subs` with 200 (Expires 600, the PBX's tag `p`).
fn accept(b: &mut Bench, subs: &[Message]) {
    for sub in subs {
        b.recv(
            REGISTRAR,
            &reply(
                sub,
                200,
                "p",
                "Expires: 600\r\nContact: <sip:pbx@127.0.0.1:5060>\r\n",
                "",
            ),
        );
    }
}

/// The lamp events among `events`.
fn lamp_events(events: &[Event]) -> Vec<(String, BlfState)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Blf { ext, state } => Some((ext.clone(), *state)),
            _ => None,
        })
        .collect()
}

fn exts(n: std::ops::Range<u32>) -> Vec<String> {
    n.map(|i| i.to_string()).collect()
}

#[test]
fn a_lamp_in_view_is_subscribed_and_ended_after_the_grace_period() {
    let mut b = bench(&[], PickupConfig::default());
    assert!(b.sent().is_empty(), "nothing configured, nothing in view");
    watch(&mut b, &["201", "202", "201", " "]);
    let subs = subscribes(&mut b);
    let mut names: Vec<String> = subs.iter().map(ext_of).collect();
    names.sort();
    assert_eq!(names, ["201", "202"], "one SUBSCRIBE per extension");
    assert!(subs.iter().all(|s| s.header("Expires") == Some("600")));
    accept(&mut b, &subs);
    let s201 = subs.iter().find(|s| ext_of(s) == "201").expect("201");
    b.recv(
        REGISTRAR,
        &notify(s201, "p", 1, "active", &info(1, "early", "recipient")),
    );
    assert_eq!(codes(&b.sent()), vec![200]);
    assert_eq!(
        lamp_events(&b.events()),
        vec![("201".to_string(), BlfState::Ringing)]
    );

    // 201 leaves the view: kept through the grace period, then ended.
    watch(&mut b, &["202"]);
    assert!(b.sent().is_empty(), "nothing changes at once");
    b.advance(VIEW_GRACE - Duration::from_secs(1));
    assert!(b.sent().is_empty(), "still within the grace period");
    assert!(b.events().is_empty());
    b.advance(Duration::from_secs(2));
    let bye = one_subscribe(&mut b);
    assert_eq!(bye.call_id, s201.call_id);
    assert_eq!(bye.header("Expires"), Some("0"));
    assert_eq!(
        lamp_events(&b.events()),
        vec![("201".to_string(), BlfState::Unknown)],
        "the lamp is no longer watched"
    );
    b.recv(REGISTRAR, &reply(&bye, 200, "", "Expires: 0\r\n", ""));

    // Empty view: 202 goes the same way.
    watch(&mut b, &[]);
    b.advance(VIEW_GRACE + Duration::from_secs(1));
    let bye = one_subscribe(&mut b);
    assert_eq!(ext_of(&bye), "202");
    assert_eq!(bye.header("Expires"), Some("0"));
}

#[test]
fn a_lamp_back_in_view_within_the_grace_period_keeps_its_subscription() {
    let mut b = bench(&[], PickupConfig::default());
    watch(&mut b, &["201"]);
    let sub = one_subscribe(&mut b);
    accept(&mut b, std::slice::from_ref(&sub));
    watch(&mut b, &[]);
    b.advance(VIEW_GRACE - Duration::from_secs(5));
    watch(&mut b, &["201"]);
    assert!(
        b.sent().is_empty(),
        "no new SUBSCRIBE for a lamp still held"
    );
    // Long past the first grace period: nothing ends; the refresh keeps the same dialog.
    b.advance(Duration::from_secs(120));
    assert!(b.sent().is_empty());
    b.advance(Duration::from_secs(370));
    let refresh = one_subscribe(&mut b);
    assert_eq!(refresh.call_id, sub.call_id);
    assert_eq!(refresh.header("Expires"), Some("600"));
    assert!(b.events().is_empty());

    // After an ended lamp, coming back subscribes anew.
    b.recv(REGISTRAR, &reply(&refresh, 200, "", "Expires: 600\r\n", ""));
    watch(&mut b, &[]);
    b.advance(VIEW_GRACE);
    let bye = one_subscribe(&mut b);
    assert_eq!(bye.header("Expires"), Some("0"));
    watch(&mut b, &["201"]);
    let again = one_subscribe(&mut b);
    assert_ne!(again.call_id, sub.call_id);
    assert_eq!(again.header("Expires"), Some("600"));
}

#[test]
fn the_view_gets_at_most_view_limit_lamps_and_says_which_it_left_out() {
    let mut b = bench(&[], PickupConfig::default());
    let many = exts(300..300 + u32::try_from(VIEW_LIMIT).expect("small") + 3);
    b.cmd(Command::Watch(many.clone()));
    let subs = subscribes(&mut b);
    let watched: Vec<String> = subs.iter().map(ext_of).collect();
    assert_eq!(watched, many[..VIEW_LIMIT], "the first rows in view win");
    let said = errors(&b.events());
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].contains("3 extensions in view have no lamp (320 321 322)"),
        "{}",
        said[0]
    );
    // The same view again (the screen sends one per keystroke): said once.
    b.cmd(Command::Watch(many));
    assert!(errors(&b.events()).is_empty());
}

#[test]
fn configured_lamps_count_first_and_are_never_dropped() {
    let configured = exts(100..100 + u32::try_from(MAX_BLF).expect("small") - 5);
    let names: Vec<&str> = configured.iter().map(String::as_str).collect();
    let mut b = bench(&names, PickupConfig::default());
    let subs = subscribes(&mut b);
    assert_eq!(subs.len(), MAX_BLF - 5);
    accept(&mut b, &subs);

    // A configured extension in view is no second lamp; only 5 places are left.
    let mut view = vec!["100".to_string()];
    view.extend(exts(300..310));
    b.cmd(Command::Watch(view));
    let added = subscribes(&mut b);
    let names: Vec<String> = added.iter().map(ext_of).collect();
    assert_eq!(names, ["300", "301", "302", "303", "304"]);
    accept(&mut b, &added);
    let errors = errors(&b.events());
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("305 306 307 308 309"), "{}", errors[0]);

    // Nothing in view: the five go after the grace period, the configured ones stay.
    watch(&mut b, &[]);
    b.advance(VIEW_GRACE + Duration::from_secs(1));
    let ended = subscribes(&mut b);
    assert_eq!(ended.len(), 5);
    assert!(ended.iter().all(|m| m.header("Expires") == Some("0")));
    assert!(ended.iter().all(|m| ext_of(m).starts_with('3')));
    accept(&mut b, &ended);
    b.advance(Duration::from_secs(300));
    assert!(
        subscribes(&mut b).is_empty(),
        "no configured lamp is ended or re-subscribed"
    );
}

#[test]
fn lamps_leaving_the_view_make_room_at_once_when_new_ones_need_it() {
    let mut b = bench(&[], PickupConfig::default());
    let first = exts(300..300 + u32::try_from(VIEW_LIMIT).expect("small"));
    b.cmd(Command::Watch(first.clone()));
    let subs = subscribes(&mut b);
    assert_eq!(subs.len(), VIEW_LIMIT);
    accept(&mut b, &subs);

    // Scroll by two: two leave (grace), two enter; the bound makes the two leave now.
    let mut second = first[2..].to_vec();
    second.extend(["400".to_string(), "401".to_string()]);
    b.cmd(Command::Watch(second));
    let sent = subscribes(&mut b);
    let mut ended: Vec<String> = sent
        .iter()
        .filter(|m| m.header("Expires") == Some("0"))
        .map(ext_of)
        .collect();
    ended.sort();
    let mut started: Vec<String> = sent
        .iter()
        .filter(|m| m.header("Expires") == Some("600"))
        .map(ext_of)
        .collect();
    started.sort();
    assert_eq!(ended, ["300", "301"]);
    assert_eq!(started, ["400", "401"]);
    assert!(errors(&b.events()).is_empty(), "within the bound");
}

#[test]
fn interval_too_brief_is_retried_with_min_expires() {
    let mut b = bench(&["201"], PickupConfig::default());
    let sub = one_subscribe(&mut b);
    b.recv(
        REGISTRAR,
        &reply(&sub, 423, "", "Min-Expires: 1800\r\n", ""),
    );
    let again = one_subscribe(&mut b);
    assert_eq!(again.call_id, sub.call_id);
    assert_eq!(again.cseq.0, sub.cseq.0 + 1);
    assert_eq!(again.header("Expires"), Some("1800"));
    b.recv(REGISTRAR, &reply(&again, 200, "p", "Expires: 1800\r\n", ""));
    // Refreshed at 85 % of 1800 s, still asking 1800.
    b.advance(Duration::from_secs(1529));
    assert!(subscribes(&mut b).is_empty());
    b.advance(Duration::from_secs(2));
    let refresh = one_subscribe(&mut b);
    assert_eq!(refresh.header("Expires"), Some("1800"));

    // A 423 that asks for no more than was asked is a failure, not a loop.
    b.recv(
        REGISTRAR,
        &reply(&refresh, 423, "", "Min-Expires: 900\r\n", ""),
    );
    assert!(subscribes(&mut b).is_empty());
    b.advance(Duration::from_secs(6)); // the backoff, with up to a fifth more of jitter
    let retry = one_subscribe(&mut b);
    assert_ne!(
        retry.call_id, sub.call_id,
        "a new attempt after the backoff"
    );
}

#[test]
fn a_terminated_notify_with_retry_after_is_honoured() {
    let mut b = bench(&["201"], PickupConfig::default());
    let sub = one_subscribe(&mut b);
    accept(&mut b, std::slice::from_ref(&sub));
    b.recv(REGISTRAR, &notify(&sub, "p", 1, "active", &info(1, "", "")));
    b.sent();
    assert_eq!(
        lamp_events(&b.events()),
        vec![("201".to_string(), BlfState::Idle)]
    );
    b.recv(
        REGISTRAR,
        &notify(
            &sub,
            "p",
            2,
            "terminated;reason=probation;retry-after=120",
            "",
        ),
    );
    assert_eq!(codes(&b.sent()), vec![200]);
    assert_eq!(
        lamp_events(&b.events()),
        vec![("201".to_string(), BlfState::Unknown)]
    );
    b.advance(Duration::from_secs(119));
    assert!(subscribes(&mut b).is_empty(), "waits as asked");
    b.advance(Duration::from_secs(2));
    let again = one_subscribe(&mut b);
    assert_ne!(again.call_id, sub.call_id);
    assert_eq!(again.header("Expires"), Some("600"));
}
