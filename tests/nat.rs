//! Behind a NAT router (a UDP NAT emulated on loopback, `common::nat`): the registrar sees
//! another source than our Contact says, reports it in `received`/`rport`, and with
//! `nat = "auto"` switchboard registers that public address; keep-alives hold the router's
//! binding open, so a call comes in long after the router's UDP timeout.

mod common;

use common::{hosts, secs, Kamailio, Net, Switchboard, SwitchboardConfig, UdpNat};
use std::time::Duration;

/// The router's inside address (switchboard's outbound proxy) and its public address.
const ROUTER_INSIDE: u8 = 30;
const ROUTER_OUTSIDE: u8 = 31;
/// bob, outside the NAT.
const BOB_HOST: u8 = 6;
/// The router forgets an idle UDP binding after this long.
const NAT_TIMEOUT: Duration = Duration::from_secs(3);

/// alice behind the router: every request goes through it; keep-alives every second.
fn alice_behind(net: &Net, nat: &str) -> String {
    let inside = net.sip_addr(ROUTER_INSIDE);
    let mut config = SwitchboardConfig::registering(net, "alice", "alicepw")
        .with_outbound_proxy(&format!("sip:{inside};lr"))
        .with_expires(60);
    config.accounts[0].extra = format!("keepalive = 1\nnat = \"{nat}\"\n");
    config.to_toml()
}

#[test]
fn the_public_address_is_registered_and_a_call_comes_in_after_three_router_timeouts() {
    let net = Net::for_test("nat::contact_rewrite");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let router = UdpNat::start(
        net.sip_addr(ROUTER_INSIDE),
        net.ip(ROUTER_OUTSIDE),
        kam.addr(),
        NAT_TIMEOUT,
    );
    let mut alice = Switchboard::start(&alice_behind(&net, "auto"));
    alice.wait_for(secs(10), "registered");
    let public = router.outside().expect("a binding").to_string();
    let private = net.sip_addr(hosts::SWITCHBOARD).to_string();
    let contacts = common::process::wait_until(secs(10), || {
        let contacts = kam.contacts("alice");
        (contacts.len() == 1 && contacts[0].contains(&public)).then_some(contacts)
    })
    .unwrap_or_else(|| {
        panic!(
            "alice's Contact is not only {public}: {:?}\n{}",
            kam.contacts("alice"),
            alice.log()
        )
    });
    assert!(!contacts[0].contains(&private), "{contacts:?}");

    // Three router timeouts with nothing but keep-alives: the binding is still the first.
    std::thread::sleep(NAT_TIMEOUT * 3);
    assert_eq!(router.outside().map(|a| a.to_string()), Some(public));
    assert_eq!(
        router.bindings.load(std::sync::atomic::Ordering::Relaxed),
        1
    );

    let mut bob_config = SwitchboardConfig::registering(&net, "bob", "bobpw");
    bob_config.bind = net.sip_addr(BOB_HOST);
    let mut bob = Switchboard::start(&bob_config.to_toml());
    bob.wait_for(secs(10), "registered");
    bob.send("dial alice");
    alice.wait_for(secs(10), "incoming");
    alice.send("answer");
    bob.wait_event(secs(10), |e| {
        e["event"] == "call" && e["state"] == "connected"
    });
    bob.send("hangup");
    alice.wait_event(secs(10), |e| e["event"] == "call" && e["state"] == "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    assert!(bob.quit_and_wait(secs(10)).success());
}

#[test]
fn with_nat_off_the_private_contact_stays() {
    let net = Net::for_test("nat::off");
    let kam = Kamailio::start(&net, &[("alice", "alicepw")]);
    let _router = UdpNat::start(
        net.sip_addr(ROUTER_INSIDE),
        net.ip(ROUTER_OUTSIDE),
        kam.addr(),
        NAT_TIMEOUT,
    );
    let mut alice = Switchboard::start(&alice_behind(&net, "off"));
    alice.wait_for(secs(10), "registered");
    let contacts = kam.wait_registered("alice", secs(5));
    let private = net.sip_addr(hosts::SWITCHBOARD).to_string();
    assert!(
        contacts.len() == 1 && contacts[0].contains(&private),
        "{contacts:?}"
    );
    assert!(alice.quit_and_wait(secs(10)).success());
}
