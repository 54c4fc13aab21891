//! Operator features through the real binary: the call history file, a screen-pop hook with
//! the caller in its environment, outbound routes refusing a number before anything is sent,
//! and a route placing its call through another account (a trunk).

mod common;

use std::thread;
use std::time::Duration;

use common::{hosts, secs, AccountConfig, Net, Sipp, Switchboard, SwitchboardConfig};
use serde_json::Value;

/// Host number of the called switchboard (bob).
const BOB: u8 = 7;

#[test]
fn a_call_is_written_to_history_and_fires_the_hooks() {
    let net = Net::for_test("operator_features::history_hooks");
    let hook_dir = tempfile::tempdir().expect("temp dir");
    let incoming = hook_dir.path().join("incoming.env");
    let hangup = hook_dir.path().join("hangup.env");
    let mut bob_cfg = SwitchboardConfig::peer_to_peer(&net).with_extra(&format!(
        "[hooks]\non_incoming = \"env | grep ^SWITCHBOARD_ > {}\"\n\
         on_hangup = \"env | grep ^SWITCHBOARD_ > {}\"\n",
        incoming.display(),
        hangup.display()
    ));
    bob_cfg.bind = (net.ip(BOB), 5060).into();
    bob_cfg.accounts[0].user = "bob".into();
    bob_cfg.accounts[0].display_name = Some("Bob".into());
    let mut bob = Switchboard::start(&bob_cfg.to_toml());
    let mut alice_cfg = SwitchboardConfig::peer_to_peer(&net);
    alice_cfg.accounts[0].display_name = Some("Alice Ahonen".into());
    let mut alice = Switchboard::start(&alice_cfg.to_toml());
    bob.wait_for(secs(10), "started");
    alice.wait_for(secs(10), "started");
    alice.send(&format!("dial sip:bob@{}", net.ip(BOB)));
    let ringing = bob.wait_for(secs(5), "incoming");
    bob.send("answer");
    bob.wait_call_state(secs(5), 1, "connected");
    thread::sleep(Duration::from_millis(1200));
    alice.send("hangup");
    bob.wait_call_state(secs(5), 1, "ended");

    // The hook ran with the caller in its environment (bounded wait for the background job).
    let env = common::wait_for_file(&incoming);
    assert!(env.contains("SWITCHBOARD_EVENT=incoming"), "{env}");
    assert!(env.contains("SWITCHBOARD_NAME=Alice Ahonen"), "{env}");
    assert!(env.contains("SWITCHBOARD_NUMBER=alice"), "{env}");
    assert!(env.contains("SWITCHBOARD_LINE=1"), "{env}");
    let call_id = ringing["call_id"].as_str().expect("call id");
    assert!(
        env.contains(&format!("SWITCHBOARD_CALL_ID={call_id}")),
        "{env}"
    );
    let env = common::wait_for_file(&hangup);
    assert!(env.contains("SWITCHBOARD_EVENT=hangup"), "{env}");

    // The history holds the answered call, written by the history thread as it ended
    // (bounded wait: the run loop does not wait for the disk).
    let history = bob
        .run_dir()
        .join("home/.local/share/switchboard/history.jsonl");
    let text = common::wait_for_file(&history);
    let records: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect();
    assert_eq!(records.len(), 1, "{text}");
    let record = &records[0];
    assert_eq!(record["direction"], "in");
    assert_eq!(record["call_id"], call_id);
    assert_eq!(record["outcome"]["kind"], "answered");
    assert_eq!(record["name"], "Alice Ahonen");
    assert!(
        record["duration_s"].as_u64().is_some_and(|d| d >= 1),
        "{record}"
    );
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn a_number_no_route_takes_is_refused_before_anything_is_sent() {
    let net = Net::for_test("operator_features::routes");
    let cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_extra("[[route]]\nname = \"internal\"\npattern = \"_XXX\"\n");
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send("dial 12");
    let error = sb.wait_for(secs(5), "error");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("12") && message.contains("internal"),
        "{message}"
    );
    sb.send("route nowhere");
    let error = sb.wait_for(secs(5), "error");
    assert_eq!(
        error["message"],
        "there is no route `nowhere`; routes: internal"
    );
    sb.expect_no_event(Duration::from_millis(300), |e| e["event"] == "call");
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn a_route_through_another_account_calls_with_its_identity_and_credentials() {
    let net = Net::for_test("operator_features::trunk_route");
    let mut carrier = Sipp::uas(&net, hosts::SIPP, "uas_challenge", &[]);
    let mut trunk = AccountConfig::new("carrier", "4420", "carrier.test");
    trunk.outbound_proxy = Some(format!("sip:{}", carrier.addr()));
    trunk.password = Some("trunkpw".into());
    let cfg = SwitchboardConfig::peer_to_peer(&net)
        .with_account(trunk)
        .with_extra("[[route]]\nname = \"abroad\"\npattern = \"_+X.\"\naccount = \"carrier\"\n");
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send("dial +358401234");
    sb.wait_call_state(secs(5), 1, "connected");
    sb.send("hangup");
    sb.wait_call_state(secs(5), 1, "ended");
    carrier.expect_pass(secs(10));
    let invite = &carrier.received()[0];
    assert_eq!(
        invite.start_line(),
        "INVITE sip:+358401234@carrier.test SIP/2.0"
    );
    assert!(
        invite
            .header("From")
            .is_some_and(|f| f.contains("<sip:4420@carrier.test>")),
        "{:?}",
        invite.header("From")
    );
    carrier
        .verify_digest("4420", "trunkpw")
        .expect("the trunk's credentials");
    assert!(sb.quit_and_wait(secs(10)).success());
}
