//! SIP over TLS and SRTP: registering with kamailio's TLS listener (certificate from a CA the
//! test makes), refusing a certificate that is not trusted or names another host without
//! sending anything in clear text, and calls whose media is SRTP.

mod common;

use common::{hosts, secs, Kamailio, Net, Switchboard, SwitchboardConfig, TestCa};

/// switchboard registering `user` at kamailio over TLS, trusting the CA in `ca_file`.
fn tls_config(
    net: &Net,
    user: &str,
    password: &str,
    ca_file: &std::path::Path,
) -> SwitchboardConfig {
    let mut config = SwitchboardConfig::registering(net, user, password);
    let account = &mut config.accounts[0];
    account.transport = "tls".to_owned();
    account.registrar = Some(format!("sips:{}", net.ip(hosts::KAMAILIO)));
    account
        .extra
        .push_str(&format!("tls_ca_file = \"{}\"\n", ca_file.display()));
    config
}

#[test]
fn registers_over_tls_with_the_configured_ca() {
    let net = Net::for_test("tls::registers");
    let ca = TestCa::new("switchboard test CA");
    let kam = Kamailio::start_tls(
        &net,
        &[("alice", "alicepw")],
        &ca.server_for_ip(net.ip(hosts::KAMAILIO).into()),
    );
    let dir = common::run_dir("tls-ca");
    let ca_file = ca.write(dir.path(), "ca.pem");
    let mut sb = Switchboard::start(&tls_config(&net, "alice", "alicepw", &ca_file).to_toml());
    let started = sb.wait_for(secs(10), "started");
    assert_eq!(started["transport"], "tls");
    sb.wait_for(secs(10), "registered");
    let contacts = kam.wait_registered("alice", secs(5));
    assert!(
        contacts
            .iter()
            .any(|c| c.starts_with("sips:") || c.contains("sips:")),
        "the contact is a sips: URI: {contacts:?}"
    );
    let dump = kam.ul_dump();
    assert!(
        dump.contains("tls:"),
        "registered over the TLS socket: {dump}"
    );
    assert!(sb.quit_and_wait(secs(10)).success());
    kam.wait_unregistered("alice", secs(5));
}

/// Starts kamailio presenting `server`, and switchboard trusting `trusted`; returns the
/// `registration_failed` event and kamailio's log.
fn refused(
    test: &str,
    server: impl Fn(&Net) -> common::KamailioTls,
    trusted: &TestCa,
) -> (serde_json::Value, String) {
    let net = Net::for_test(test);
    let kam = Kamailio::start_tls(&net, &[("alice", "alicepw")], &server(&net));
    let dir = common::run_dir("tls-ca");
    let ca_file = trusted.write(dir.path(), "ca.pem");
    let mut sb = Switchboard::start(&tls_config(&net, "alice", "alicepw", &ca_file).to_toml());
    let failed = sb.wait_for(secs(10), "registration_failed");
    // Give a clear-text fallback, if there were one, time to show.
    sb.expect_no_event(secs(1), |e| e["event"] == "registered");
    assert!(sb.quit_and_wait(secs(10)).success());
    (failed, kam.log())
}

#[test]
fn a_certificate_from_another_ca_fails_registration_without_clear_text() {
    let real = TestCa::new("the registrar's CA");
    let other = TestCa::new("a CA the phone trusts");
    let (failed, log) = refused(
        "tls::untrusted",
        |net| real.server_for_ip(net.ip(hosts::KAMAILIO).into()),
        &other,
    );
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("TLS: certificate not trusted"),
        "{failed}"
    );
    assert!(failed["status"].is_null(), "{failed}");
    assert!(
        !log.contains("LAB-REQ REGISTER"),
        "no REGISTER may reach kamailio, in clear text or otherwise:\n{log}"
    );
}

#[test]
fn a_certificate_for_another_name_fails_registration() {
    let ca = TestCa::new("switchboard test CA");
    let (failed, log) = refused("tls::wrong_name", |_| ca.server("sip.example.invalid"), &ca);
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("name does not match"), "{failed}");
    assert!(!log.contains("LAB-REQ REGISTER"), "{log}");
}
