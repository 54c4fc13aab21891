//! Do not disturb, auto-answer / intercom and wrap-up through the real binary, with sipp as
//! the caller (and as the PBX taking a DND feature code): what the network sees, the history
//! file and the `on_wrapup` hook's environment.

mod common;

use std::thread;
use std::time::Duration;

use common::{hosts, secs, Net, Sipp, Switchboard, SwitchboardConfig};
use serde_json::Value;

/// The history file of a switchboard started by the harness (its XDG data directory).
fn history(sb: &Switchboard) -> Vec<Value> {
    let path = sb
        .run_dir()
        .join("home/.local/share/switchboard/history.jsonl");
    common::wait_for_file(&path)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect()
}

fn with_account_lines(net: &Net, lines: &str) -> SwitchboardConfig {
    let mut config = SwitchboardConfig::peer_to_peer(net);
    config.accounts[0].extra.push_str(lines);
    config
}

#[test]
fn dnd_answers_a_call_busy_and_the_history_keeps_it_as_missed() {
    let net = Net::for_test("answering::dnd");
    let mut sb = Switchboard::start(&SwitchboardConfig::peer_to_peer(&net).to_toml());
    sb.wait_for(secs(10), "started");
    sb.send("dnd on");
    let dnd = sb.wait_for(secs(5), "dnd");
    assert_eq!(dnd["on"], true);
    let me = net.ip(hosts::SWITCHBOARD);
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_expect_busy",
        (me, 5060).into(),
        "alice",
        &[],
    );
    let refused = sb.wait_for(secs(10), "refused");
    assert_eq!(refused["status"], 486);
    assert_eq!(refused["reason"], "do not disturb");
    uac.expect_pass(secs(10));
    assert!(
        uac.received().iter().all(|m| m.status() != Some(180)),
        "a refused call never rings"
    );
    let records = history(&sb);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["direction"], "in");
    assert_eq!(records[0]["number"], "sipp");
    assert_eq!(records[0]["outcome"]["kind"], "missed");
    assert_eq!(records[0]["reason"], "do not disturb");
    sb.send("dnd off");
    assert_eq!(sb.wait_for(secs(5), "dnd")["on"], false);
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn dnd_with_a_feature_code_calls_the_pbx_code_and_hangs_up() {
    let net = Net::for_test("answering::dnd_code");
    let mut pbx = Sipp::uas(&net, hosts::SIPP, "uas_answer", &[]);
    let config = with_account_lines(&net, "dnd_on_code = \"*78\"\n")
        .with_outbound_proxy(&format!("sip:{}", pbx.addr()));
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    sb.send("dnd on");
    let dnd = sb.wait_for(secs(5), "dnd");
    assert_eq!(dnd["code"], "*78");
    sb.wait_call_state(secs(5), 1, "connected");
    let ended = sb.wait_call_state(secs(5), 1, "ended");
    assert_eq!(ended["reason"], "the PBX took the feature code");
    pbx.expect_pass(secs(10));
    let me = net.ip(hosts::SWITCHBOARD);
    assert_eq!(
        pbx.received()[0].start_line(),
        format!("INVITE sip:*78@{me} SIP/2.0")
    );
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn an_intercom_call_is_answered_with_no_operator_action() {
    let net = Net::for_test("answering::intercom");
    let config = with_account_lines(&net, "auto_answer = \"intercom\"\n");
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    let me = net.ip(hosts::SWITCHBOARD);
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_intercom",
        (me, 5060).into(),
        "alice",
        &[],
    );
    let auto = sb.wait_for(secs(10), "auto_answer");
    assert_eq!(auto["after_ms"], 0);
    sb.wait_call_state(secs(5), 1, "connected");
    uac.expect_pass(secs(15));
    sb.wait_call_state(secs(5), 1, "ended");
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn a_plain_call_keeps_ringing_with_intercom_until_the_caller_cancels() {
    let net = Net::for_test("answering::intercom_plain");
    let config = with_account_lines(&net, "auto_answer = \"intercom\"\n");
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    let me = net.ip(hosts::SWITCHBOARD);
    // sipp waits 2 s after the 180, then CANCELs: a 200 instead would fail its scenario.
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_cancel",
        (me, 5060).into(),
        "alice",
        &["-d", "2000"],
    );
    sb.wait_for(secs(10), "incoming");
    let ended = sb.wait_call_state(secs(10), 1, "ended");
    assert_eq!(ended["status"], 487);
    uac.expect_pass(secs(10));
    assert!(!sb
        .events()
        .iter()
        .any(|e| e["event"] == "auto_answer" || e["state"] == "connected"));
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn wrap_up_code_and_note_reach_the_history_and_the_hook() {
    let net = Net::for_test("answering::wrapup");
    let hook_dir = tempfile::tempdir().expect("temp dir");
    let env_file = hook_dir.path().join("wrapup.env");
    let config = SwitchboardConfig::peer_to_peer(&net).with_extra(&format!(
        "[wrapup]\ncodes = [\"sale\", \"callback\"]\nseconds = 60\n\
         [hooks]\non_wrapup = \"env | grep ^SWITCHBOARD_ > {}\"\n",
        env_file.display()
    ));
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    let me = net.ip(hosts::SWITCHBOARD);
    let mut uac = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_invite",
        (me, 5060).into(),
        "alice",
        &[],
    );
    let incoming = sb.wait_for(secs(10), "incoming");
    let call_id = incoming["call_id"].as_str().expect("call id").to_owned();
    sb.send("answer");
    sb.wait_call_state(secs(5), 1, "connected");
    let started = sb.wait_event(secs(10), |e| e["event"] == "wrapup");
    assert_eq!(started["status"], "started");
    assert_eq!(started["codes"], serde_json::json!(["sale", "callback"]));
    assert_eq!(started["seconds"], 60);
    uac.expect_pass(secs(10));
    sb.wait_call_state(secs(5), 1, "ended");
    // While the wrap-up is open the call is not in the history yet.
    thread::sleep(Duration::from_millis(300));
    sb.send("wrapup nope");
    assert!(sb.wait_for(secs(5), "error")["message"]
        .as_str()
        .is_some_and(|m| m.contains("sale, callback")));
    sb.send("wrapup SALE two seats, paid by card");
    let saved = sb.wait_event(secs(5), |e| e["event"] == "wrapup");
    assert_eq!(saved["status"], "saved");
    assert_eq!(saved["code"], "sale");

    let records = history(&sb);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0]["call_id"], call_id.as_str());
    assert_eq!(records[0]["outcome"]["kind"], "answered");
    assert_eq!(records[0]["wrapup"]["status"], "saved");
    assert_eq!(records[0]["wrapup"]["code"], "sale");
    assert_eq!(records[0]["wrapup"]["note"], "two seats, paid by card");

    let env = common::wait_for_file(&env_file);
    assert!(env.contains("SWITCHBOARD_EVENT=wrapup"), "{env}");
    assert!(env.contains("SWITCHBOARD_WRAPUP_STATUS=saved"), "{env}");
    assert!(env.contains("SWITCHBOARD_WRAPUP_CODE=sale"), "{env}");
    assert!(
        env.contains("SWITCHBOARD_WRAPUP_NOTE=two seats, paid by card"),
        "{env}"
    );
    assert!(
        env.contains(&format!("SWITCHBOARD_CALL_ID={call_id}")),
        "{env}"
    );
    assert!(env.contains("SWITCHBOARD_DIRECTION=in"), "{env}");
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn busy_during_wrapup_refuses_a_call_until_the_wrap_up_is_skipped() {
    let net = Net::for_test("answering::wrapup_busy");
    let config = with_account_lines(&net, "auto_answer = \"on\"\n")
        .with_extra("[wrapup]\ncodes = [\"sale\"]\nseconds = 0\nbusy_during_wrapup = true\n");
    let mut sb = Switchboard::start(&config.to_toml());
    sb.wait_for(secs(10), "started");
    let me = net.ip(hosts::SWITCHBOARD);
    let mut first = Sipp::uac(
        &net,
        hosts::SIPP,
        "uac_invite",
        (me, 5060).into(),
        "alice",
        &[],
    );
    sb.wait_call_state(secs(10), 1, "connected");
    first.expect_pass(secs(10));
    sb.wait_event(secs(10), |e| e["event"] == "wrapup");
    let mut second = Sipp::uac(
        &net,
        hosts::SIPP + 1,
        "uac_expect_busy",
        (me, 5060).into(),
        "alice",
        &[],
    );
    let refused = sb.wait_for(secs(10), "refused");
    assert!(refused["reason"]
        .as_str()
        .is_some_and(|r| r.contains("wrap-up")));
    second.expect_pass(secs(10));
    sb.send("wrapup skip");
    let skipped = sb.wait_event(secs(5), |e| e["event"] == "wrapup");
    assert_eq!(skipped["status"], "skipped");
    assert!(sb.quit_and_wait(secs(10)).success());
}
