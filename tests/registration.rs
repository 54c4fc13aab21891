//! Registration against kamailio with digest auth: success, refresh,
//! un-REGISTER on quit (and on stdin EOF), a wrong password, a registrar that
//! does not answer.

mod common;

use common::{hosts, secs, Kamailio, Net, Switchboard, SwitchboardConfig};

#[test]
fn registers_with_digest_refreshes_and_unregisters_on_quit() {
    let net = Net::for_test("registration::digest");
    let kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    let config = SwitchboardConfig::registering(&net, "alice", "alicepw").with_expires(60);
    let mut sb = Switchboard::start(&config.to_toml());
    let started = sb.wait_for(secs(10), "started");
    assert_eq!(
        started["local"],
        net.sip_addr(hosts::SWITCHBOARD).to_string()
    );
    let registered = sb.wait_for(secs(10), "registered");
    assert_eq!(registered["expires"], 60);
    let contacts = kam.wait_registered("alice", secs(5));
    assert!(
        contacts
            .iter()
            .any(|c| c.contains(&net.ip(hosts::SWITCHBOARD).to_string())),
        "{contacts:?}"
    );
    // Refreshed before the 60 s expire (at 85 %, 51 s).
    sb.wait_event(secs(58), |e| e["event"] == "registered");
    assert!(!sb
        .events()
        .iter()
        .any(|e| e["event"] == "registration_failed"));
    assert!(sb.quit_and_wait(secs(10)).success());
    let events = sb.events();
    assert!(
        events.iter().any(|e| e["event"] == "unregistered"),
        "{events:?}"
    );
    assert_eq!(
        events.last().map(|e| e["event"].clone()),
        Some("stopped".into())
    );
    kam.wait_unregistered("alice", secs(5));
}

#[test]
fn end_of_stdin_unregisters_like_quit() {
    let net = Net::for_test("registration::eof");
    let kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    let mut sb =
        Switchboard::start(&SwitchboardConfig::registering(&net, "alice", "alicepw").to_toml());
    sb.wait_for(secs(10), "registered");
    kam.wait_registered("alice", secs(5));
    sb.close_stdin();
    assert!(sb.wait_exit(secs(10)).success());
    kam.wait_unregistered("alice", secs(5));
}

#[test]
fn wrong_password_is_reported_and_the_phone_keeps_working() {
    let net = Net::for_test("registration::wrong_password");
    let _kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    let mut sb =
        Switchboard::start(&SwitchboardConfig::registering(&net, "alice", "nope").to_toml());
    let failed = sb.wait_for(secs(10), "registration_failed");
    assert_eq!(failed["status"], 401);
    assert!(
        failed["reason"]
            .as_str()
            .is_some_and(|r| r.contains("password")),
        "{failed}"
    );
    assert!(failed["retry_in"].as_u64().is_some_and(|s| s >= 5));
    sb.send("line 2");
    sb.wait_event(secs(5), |e| e["event"] == "line" && e["line"] == 2);
    assert!(sb.quit_and_wait(secs(10)).success());
}

#[test]
fn silent_registrar_fails_after_timer_f_and_is_retried() {
    let net = Net::for_test("registration::silent");
    // Nothing listens at .1: REGISTER goes unanswered.
    let mut sb =
        Switchboard::start(&SwitchboardConfig::registering(&net, "alice", "alicepw").to_toml());
    sb.wait_for(secs(10), "started");
    let failed = sb.wait_for(secs(40), "registration_failed");
    assert_eq!(failed["status"], serde_json::Value::Null);
    assert_eq!(failed["reason"], "the registrar did not answer");
    assert_eq!(failed["retry_in"], 5);
    sb.send("dial sip:nobody@127.0.0.1:9");
    sb.wait_for(secs(5), "call");
    assert!(sb.quit_and_wait(secs(10)).success());
}
