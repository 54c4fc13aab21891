//! switchboard and a real phone (baresip), both registered at kamailio,
//! which record-routes every call and challenges INVITEs from local users:
//! calls each way, hold and resume, hang-up from each side.

mod common;

use common::{
    secs, Baresip, BaresipOptions, Kamailio, KamailioAuth, Net, Switchboard, SwitchboardConfig,
};

/// kamailio (REGISTER and INVITE challenged), baresip as bob (auto-answer),
/// switchboard as alice; both registered.
fn lab(name: &str) -> (Net, Kamailio, Baresip, Switchboard) {
    let net = Net::for_test(name);
    let kam = Kamailio::start_with(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw")],
        KamailioAuth::RegisterAndCalls,
    );
    let bob = Baresip::start(&net, "bob", "bobpw", kam.ip(), BaresipOptions::default());
    let mut sb =
        Switchboard::start(&SwitchboardConfig::registering(&net, "alice", "alicepw").to_toml());
    sb.wait_for(secs(10), "started");
    let registered = sb.wait_for(secs(10), "registered");
    assert_eq!(registered["account"], "lab");
    assert_eq!(registered["aor"], format!("alice@{}", kam.ip()));
    bob.wait_registered(secs(10));
    kam.wait_registered("alice", secs(5));
    (net, kam, bob, sb)
}

#[test]
fn call_to_baresip_through_kamailio_holds_resumes_and_we_hang_up() {
    let (_net, kam, bob, mut sb) = lab("calls_phones::to_baresip");
    sb.send("dial bob");
    sb.wait_call_state(secs(10), 1, "connected");
    let media = sb.wait_for(secs(2), "media");
    assert_eq!(media["codec"], "PCMU");
    assert!(media["remote"]
        .as_str()
        .is_some_and(|r| r.starts_with(&bob.ip().to_string())));
    sb.send("hold");
    sb.wait_call_state(secs(5), 1, "held");
    sb.send("resume");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "you hung up");
    bob.wait_log("session closed", secs(5));
    // kamailio challenged our INVITE and record-routed the call: the BYE went through it.
    let log = kam.log();
    assert!(log.contains("LAB-REQ INVITE"), "{log}");
    assert!(log.contains("LAB-REQ BYE"), "{log}");
    assert!(
        sb.events().iter().all(|e| e["event"] != "error"),
        "{:?}",
        sb.events()
    );
    assert!(sb.quit_and_wait(secs(10)).success());
    kam.wait_unregistered("alice", secs(5));
}

#[test]
fn baresip_hangs_up_our_call() {
    let (_net, _kam, bob, mut sb) = lab("calls_phones::baresip_hangs_up");
    sb.send("dial bob");
    sb.wait_call_state(secs(10), 1, "connected");
    bob.wait_log("established", secs(5));
    bob.hangup();
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "the far end hung up");
}

#[test]
fn baresip_calls_us_we_answer_and_each_side_hangs_up_once() {
    let (_net, kam, bob, mut sb) = lab("calls_phones::from_baresip");
    bob.dial(&kam.aor("alice"));
    let incoming = sb.wait_for(secs(10), "incoming");
    assert_eq!(incoming["line"], 1);
    assert!(
        incoming["from"].as_str().is_some_and(|f| f.contains("bob")),
        "{incoming}"
    );
    sb.send("answer");
    sb.wait_call_state(secs(5), 1, "connected");
    bob.wait_log("established", secs(5));
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));

    bob.dial(&kam.aor("alice"));
    sb.wait_event(secs(10), |e| {
        e["event"] == "incoming" && e["call_id"] != incoming["call_id"]
    });
    sb.send("answer");
    sb.wait_event(secs(5), |e| {
        e["event"] == "call" && e["state"] == "connected" && e["call_id"] != incoming["call_id"]
    });
    bob.wait_log("established", secs(5));
    bob.hangup();
    let ended = sb.wait_event(secs(5), |e| {
        e["event"] == "call" && e["state"] == "ended" && e["call_id"] != incoming["call_id"]
    });
    assert_eq!(ended["reason"], "the far end hung up");
}

#[test]
fn over_tcp_we_register_and_call_baresip_through_kamailio() {
    let net = Net::for_test("calls_phones::tcp");
    let kam = Kamailio::start_with(
        &net,
        &[("alice", "alicepw"), ("bob", "bobpw")],
        KamailioAuth::RegisterAndCalls,
    );
    let bob = Baresip::start(&net, "bob", "bobpw", kam.ip(), BaresipOptions::default());
    let mut config = SwitchboardConfig::registering(&net, "alice", "alicepw");
    config.accounts[0].transport = "tcp".into();
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "registered");
    let contacts = kam.wait_registered("alice", secs(5));
    assert!(
        contacts.iter().any(|c| c.contains("transport=tcp")),
        "{contacts:?}"
    );
    bob.wait_registered(secs(10));
    sb.send("dial bob");
    sb.wait_call_state(secs(10), 1, "connected");
    sb.send("hold");
    sb.wait_call_state(secs(5), 1, "held");
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    bob.wait_log("session closed", secs(5));
    assert!(sb.quit_and_wait(secs(10)).success());
    kam.wait_unregistered("alice", secs(5));
}
