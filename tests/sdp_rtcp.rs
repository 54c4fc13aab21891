//! RFC 3605 `a=rtcp` with real peers through kamailio: switchboard names its RTCP address in
//! its offer, reads the peer's in the answer, and RTCP flows both ways (switchboard's
//! `quality` events get a round-trip time, which needs the peer's receiver reports to come
//! back to the address switchboard named after its sender reports reached the peer's). The
//! NAT lab (`tests/nat_namespaces.rs`) shows the case where the RTCP address is not the RTP
//! port + 1.

mod common;

use common::{
    secs, AudioSource, Baresip, BaresipOptions, Kamailio, Net, Pjsua, PjsuaOptions, Switchboard,
    SwitchboardConfig,
};
use serde_json::Value;

/// A registered switchboard `user` with its SIP trace on.
fn switchboard(net: &Net, user: &str) -> Switchboard {
    let cfg = SwitchboardConfig::registering(net, user, &format!("{user}pw"));
    let mut sb = Switchboard::start(&cfg.to_toml());
    sb.wait_for(secs(20), "registered");
    sb.send("trace on");
    sb
}

/// The body of the first traced SIP message of `sb` going `direction` that starts with
/// `start` and carries SDP.
fn traced_sdp(sb: &mut Switchboard, direction: &str, start: &str) -> String {
    let event = sb.wait_event(secs(10), |e| {
        e["event"] == "sip"
            && e["direction"] == direction
            && e["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(start) && m.contains("m=audio "))
    });
    event["message"].as_str().unwrap_or_default().to_owned()
}

/// The `a=rtcp` line of `sdp`, if any.
fn rtcp_line(sdp: &str) -> Option<&str> {
    sdp.lines()
        .map(str::trim_end)
        .find(|l| l.starts_with("a=rtcp:"))
}

/// alice dials `uri`, which answers by itself; returns our offer and the peer's answer.
fn call(alice: &mut Switchboard, uri: &str) -> (String, String) {
    alice.send(&format!("dial {uri}"));
    let offer = traced_sdp(alice, "out", "INVITE ");
    let answer = traced_sdp(alice, "in", "SIP/2.0 200");
    alice.wait_call_state(secs(10), 1, "connected");
    (offer, answer)
}

/// The round-trip time of alice's first `quality` event that has one.
fn round_trip(alice: &mut Switchboard) -> Value {
    alice.wait_event(secs(20), |e| {
        e["event"] == "quality" && e["rtt_ms"].as_f64().is_some()
    })
}

/// Our offer names where we receive RTCP: the RTP port + 1 at our address (no STUN here).
#[track_caller]
fn assert_our_rtcp(offer: &str, net: &Net) {
    let port: u16 = offer
        .lines()
        .find_map(|l| l.strip_prefix("m=audio "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no m=audio line:\n{offer}"));
    let ip = net.ip(common::hosts::SWITCHBOARD);
    assert_eq!(
        rtcp_line(offer),
        Some(format!("a=rtcp:{} IN IP4 {ip}", port + 1).as_str()),
        "{offer}"
    );
}

#[test]
fn pjsua_names_its_rtcp_address_and_rtcp_flows_both_ways() {
    let net = Net::for_test("sdp_rtcp::pjsua");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let mut alice = switchboard(&net, "alice");
    let mut bob = Pjsua::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        PjsuaOptions {
            auto_answer: true,
            ..PjsuaOptions::default()
        },
    );
    bob.wait_registered(secs(5));
    let (offer, answer) = call(&mut alice, &kam.aor("bob"));
    assert_our_rtcp(&offer, &net);
    // pjsip always writes its RTCP address (a=rtcp:PORT IN IP4 ADDR).
    let theirs = rtcp_line(&answer).unwrap_or_else(|| panic!("pjsua sent no a=rtcp:\n{answer}"));
    assert!(
        theirs.ends_with(&format!(" IN IP4 {}", bob.ip())),
        "{theirs}"
    );
    let quality = round_trip(&mut alice);
    assert!(quality["rtt_ms"].as_f64() >= Some(0.0), "{quality}");
    alice.send("hangup");
    alice.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
    bob.quit(secs(5));
}

#[test]
fn baresip_reads_our_rtcp_address_and_rtcp_flows_both_ways() {
    let net = Net::for_test("sdp_rtcp::baresip");
    let kam = Kamailio::start(&net, &[("alice", "alicepw"), ("bob", "bobpw")]);
    let mut alice = switchboard(&net, "alice");
    let bob = Baresip::start(
        &net,
        "bob",
        "bobpw",
        kam.ip(),
        BaresipOptions {
            audio_source: AudioSource::Sine(800),
            ..BaresipOptions::default()
        },
    );
    bob.wait_registered(secs(5));
    let (offer, answer) = call(&mut alice, &kam.aor("bob"));
    assert_our_rtcp(&offer, &net);
    // Debian's baresip (1.0) writes no a=rtcp here: its RTCP is at RTP + 1, as we assume.
    assert_eq!(rtcp_line(&answer), None, "{answer}");
    let quality = round_trip(&mut alice);
    assert!(quality["rtt_ms"].as_f64() >= Some(0.0), "{quality}");
    alice.send("hangup");
    alice.wait_call_state(secs(10), 1, "ended");
    assert!(alice.quit_and_wait(secs(10)).success());
}
