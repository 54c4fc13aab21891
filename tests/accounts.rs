//! Two accounts at once, on two kamailios: switchboard registers `desk` (alice) at kamailio 1
//! and `queue` (200) at kamailio 2, each with a real phone (baresip) registered beside it.
//! A call in on each shows its account; a dial routed to `queue` leaves through kamailio 2
//! (carol's phone rings, From is the queue's address), the default through kamailio 1 (bob's
//! phone rings, From is alice); with kamailio 2 stopped only `queue` fails and `desk` still
//! takes calls.
#![allow(clippy::disallowed_methods)] // the lab waits on real processes in real time

mod common;

use common::{
    secs, AccountConfig, Baresip, BaresipOptions, Kamailio, KamailioAuth, Net, Switchboard,
    SwitchboardConfig,
};
use serde_json::Value;
use std::time::Duration;

/// switchboard's `desk` (alice at kamailio 1, the first account, default for new calls) and
/// `queue` (200 at kamailio 2, which challenges its calls too; refreshed every minute), a
/// route `_3XX` through `queue` and `_1XX` through the default.
fn config(net: &Net, queue_kamailio: &Kamailio) -> String {
    let mut cfg = SwitchboardConfig::registering(net, "alice", "alicepw");
    cfg.accounts[0].name = "desk".to_owned();
    let mut queue = AccountConfig::new("queue", "200", &queue_kamailio.domain());
    queue.registrar = Some(queue_kamailio.uri());
    queue.password = Some("queuepw".to_owned());
    queue.register = true;
    queue.expires = 60;
    cfg.with_account(queue)
        .with_extra(
            "[[route]]\nname = \"queue-phones\"\npattern = \"_3XX\"\naccount = \"queue\"\n\n\
             [[route]]\nname = \"desk-phones\"\npattern = \"_1XX\"\n",
        )
        .to_toml()
}

/// Waits for the event `name` of the account `account`.
fn wait_account_event(sb: &mut Switchboard, timeout: Duration, name: &str, account: &str) -> Value {
    sb.wait_event(timeout, |e| e["event"] == name && e["account"] == account)
}

/// The incoming call rings, is answered and hung up by us; returns its `incoming` event.
fn take_call(sb: &mut Switchboard) -> Value {
    let incoming = sb.wait_for(secs(10), "incoming");
    sb.send("answer");
    sb.wait_call_state(secs(10), 1, "connected");
    sb.send("hangup");
    sb.wait_call_state(secs(10), 1, "ended");
    incoming
}

/// We dial `number`; the phone answers (auto-answer); we hang up. Returns the account the
/// `call` events name.
fn place_call(sb: &mut Switchboard, number: &str) -> Value {
    sb.send(&format!("dial {number}"));
    let connected = sb.wait_call_state(secs(10), 1, "connected");
    sb.send("hangup");
    sb.wait_call_state(secs(10), 1, "ended");
    connected["account"].clone()
}

#[test]
fn two_accounts_on_two_kamailios_take_and_place_calls_each_through_its_own() {
    let desk_net = Net::for_test("accounts::desk");
    let queue_net = Net::for_test("accounts::queue");
    let desk_kam = Kamailio::start(&desk_net, &[("alice", "alicepw"), ("101", "bobpw")]);
    let mut queue_kam = Some(Kamailio::start_with(
        &queue_net,
        &[("200", "queuepw"), ("301", "carolpw")],
        KamailioAuth::RegisterAndCalls,
    ));
    let queue = queue_kam.as_ref().expect("kamailio 2");
    let bob = Baresip::start(
        &desk_net,
        "101",
        "bobpw",
        desk_kam.ip(),
        BaresipOptions::default(),
    );
    let carol = Baresip::start(
        &queue_net,
        "301",
        "carolpw",
        queue.ip(),
        BaresipOptions::default(),
    );
    let mut sb = Switchboard::start(&config(&desk_net, queue));
    let started = sb.wait_for(secs(10), "started");
    assert_eq!(started["accounts"], serde_json::json!(["desk", "queue"]));
    let desk_reg = wait_account_event(&mut sb, secs(10), "registered", "desk");
    assert_eq!(
        desk_reg["aor"],
        desk_kam.aor("alice").trim_start_matches("sip:")
    );
    let queue_reg = wait_account_event(&mut sb, secs(10), "registered", "queue");
    assert_eq!(
        queue_reg["aor"],
        queue.aor("200").trim_start_matches("sip:")
    );
    desk_kam.wait_registered("alice", secs(5));
    let queue_contacts = queue.wait_registered("200", secs(5));
    assert!(
        queue_contacts.iter().any(|c| c.contains("sip:200@")),
        "the queue registers its own Contact: {queue_contacts:?}"
    );
    bob.wait_registered(secs(10));
    carol.wait_registered(secs(10));

    // A call in on each account shows which one it is for.
    carol.dial(&queue.aor("200"));
    assert_eq!(take_call(&mut sb)["account"], "queue");
    bob.dial(&desk_kam.aor("alice"));
    assert_eq!(take_call(&mut sb)["account"], "desk");

    // Routed to the queue: through kamailio 2 (which challenges it: the queue's credentials),
    // carol's phone rings, From is the queue's address.
    assert_eq!(place_call(&mut sb, "301"), "queue");
    let carol_rang = carol.wait_log("answering call on line", secs(5));
    assert!(
        carol_rang.contains(&format!("from {}", queue.aor("200"))),
        "From is the queue: {carol_rang}"
    );
    assert!(
        queue.log().contains("LAB-REQ INVITE sip:301@"),
        "the INVITE went through kamailio 2"
    );
    // The default account: through kamailio 1, bob's phone rings, From is alice.
    assert_eq!(place_call(&mut sb, "101"), "desk");
    let bob_rang = bob.wait_log("answering call on line", secs(5));
    assert!(
        bob_rang.contains(&format!("from {}", desk_kam.aor("alice"))),
        "From is desk: {bob_rang}"
    );
    assert!(desk_kam.log().contains("LAB-REQ INVITE sip:101@"));
    assert!(
        !desk_kam.log().contains("LAB-REQ INVITE sip:301@"),
        "the queue's call did not touch kamailio 1"
    );
    // `account queue` makes the queue the default for calls whose route names no account.
    sb.send("account queue");
    sb.wait_for(secs(5), "account_selected");

    // kamailio 2 stops: at the queue's next refresh (51 s) REGISTER times out (32 s); only the
    // queue fails, and desk still takes calls.
    drop(queue_kam.take());
    let failed = wait_account_event(&mut sb, secs(100), "registration_failed", "queue");
    assert!(failed["reason"].as_str().is_some_and(|r| !r.is_empty()));
    let events = sb.events();
    assert!(
        !events
            .iter()
            .any(|e| e["event"] == "registration_failed" && e["account"] == "desk"),
        "desk never failed: {events:?}"
    );
    bob.dial(&desk_kam.aor("alice"));
    assert_eq!(take_call(&mut sb)["account"], "desk");
    assert!(
        sb.events().iter().all(|e| e["event"] != "error"),
        "no errors"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
    desk_kam.wait_unregistered("alice", secs(5));
}
