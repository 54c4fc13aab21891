//! The user agent over IPv6 on simulated time: IPv6 references in what it writes (Via,
//! Contact, Request-URIs, SDP `IN IP6`) and in what it reads (Via `received`, Contact,
//! Record-Route, SDP), with the far end played by hand-written messages (RFC 3261 §25.1,
//! RFC 5118). Malformed IPv6 references never panic.

use std::net::SocketAddr;

use super::api::{CallState, Command, Event};
use super::msg::Message;
use super::ua_tests::{config, reply, Bench};

const LOCAL: &str = "[::1]:5060";
const REGISTRAR_V6: &str = "[::1]:5070";
const PHONE_V6: &str = "[::3]:5062";

/// A registering account at `[::1]:5060` whose registrar is `sip:[::1]:5070`.
fn bench() -> Bench {
    let mut cfg = config(true);
    cfg.account.domain = "v6.example".into();
    cfg.account.registrar = "sip:[::1]:5070".into();
    cfg.account.registrar_addr = Some(REGISTRAR_V6.parse().expect("addr"));
    cfg.local = LOCAL.parse().expect("addr");
    cfg.media_ip = "::1".parse().expect("ip");
    Bench::with_config(cfg)
}

fn phone_sdp_v6() -> String {
    "v=0\r\no=- 1 1 IN IP6 ::3\r\ns=-\r\nc=IN IP6 ::3\r\nt=0 0\r\n\
     m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
     a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
        .to_owned()
}

/// Registered at the IPv6 registrar, which saw us at `::1` (`received` unbracketed).
fn registered(b: &mut Bench) -> Message {
    let transmits = b.transmits();
    assert_eq!(transmits.len(), 1);
    assert_eq!(
        transmits[0].dst,
        REGISTRAR_V6.parse::<SocketAddr>().expect("addr")
    );
    let register = Message::parse(&transmits[0].payload).expect("parses");
    assert_eq!(register.request_uri(), Some("sip:[::1]:5070"));
    let via = register.header("Via").expect("Via");
    assert!(
        via.starts_with("SIP/2.0/UDP [::1]:5060;branch=z9hG4bK"),
        "{via}"
    );
    assert!(via.ends_with(";rport"), "{via}");
    assert_eq!(register.via.host, "::1");
    let contact = register.contact().expect("Contact");
    assert_eq!(contact.uri, "sip:alice@[::1]:5060");
    assert_eq!(register.from.uri, "sip:alice@v6.example");
    let mut ok = reply(&register, 200, "r1", "Expires: 120\r\n", "");
    ok = ok.replacen(";rport", ";rport=5060;received=::1", 1);
    b.recv(REGISTRAR_V6, &ok);
    assert!(b
        .events()
        .iter()
        .any(|e| matches!(e, Event::Registered { .. })));
    register
}

#[test]
fn registers_and_calls_with_ipv6_references_and_sdp_in_ip6() {
    let mut b = bench();
    registered(&mut b);
    b.cmd(Command::Dial("bob".into()));
    let transmits = b.transmits();
    let invite_tx = transmits
        .iter()
        .find(|t| t.payload.starts_with(b"INVITE "))
        .expect("an INVITE");
    assert_eq!(
        invite_tx.dst,
        REGISTRAR_V6.parse::<SocketAddr>().expect("addr")
    );
    let invite = Message::parse(&invite_tx.payload).expect("parses");
    assert_eq!(invite.request_uri(), Some("sip:bob@v6.example"));
    assert_eq!(invite.via.host, "::1");
    let offer = invite.body_text().expect("an offer");
    assert!(offer.contains("c=IN IP6 ::1\r\n"), "{offer}");
    assert!(
        offer.contains("o=switchboard ") && offer.contains(" IN IP6 ::1\r\n"),
        "{offer}"
    );
    // bob answers from [::3] through the proxy, which record-routes with an IPv6 reference.
    let ok = reply(
        &invite,
        200,
        "bobtag",
        "Contact: <sip:bob@[::3]:5062>\r\nRecord-Route: <sip:[::1]:5070;lr>\r\n",
        &phone_sdp_v6(),
    );
    b.recv(REGISTRAR_V6, &ok);
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Media { remote, .. } if remote == "[::3]:30000"
        )),
        "{events:?}"
    );
    // The ACK goes to bob's Contact through the IPv6 route.
    let transmits = b.transmits();
    let ack = transmits
        .iter()
        .find(|t| t.payload.starts_with(b"ACK "))
        .expect("an ACK");
    assert_eq!(ack.dst, REGISTRAR_V6.parse::<SocketAddr>().expect("addr"));
    let ack = Message::parse(&ack.payload).expect("parses");
    assert_eq!(ack.request_uri(), Some("sip:bob@[::3]:5062"));
    assert_eq!(ack.header("Route"), Some("<sip:[::1]:5070;lr>"));
}

/// An INVITE from bob at `[::3]:5062`, straight (no proxy) unless `record_route`.
fn incoming_invite_v6(call_id: &str, record_route: &str) -> String {
    let sdp = phone_sdp_v6();
    format!(
        "INVITE sip:alice@[::1]:5060 SIP/2.0\r\nVia: SIP/2.0/UDP [::3]:5062;branch=z9hG4bK{call_id};rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Bob\" <sip:bob@v6.example>;tag=b1\r\nTo: <sip:alice@v6.example>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@[::3]:5062>\r\n{record_route}\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn an_incoming_ipv6_call_gets_received_and_an_answer_in_ip6() {
    let mut b = bench();
    registered(&mut b);
    b.recv(PHONE_V6, &incoming_invite_v6("in6", ""));
    b.events();
    let sent = b.sent();
    let ringing = sent.iter().find(|m| m.code() == Some(180)).expect("180");
    // RFC 3581 / RFC 5118 §4.5: `received` carries the bare IPv6 address.
    assert_eq!(ringing.via.params.get("received"), Some("::3"));
    assert_eq!(ringing.via.params.get("rport"), Some("5062"));
    assert_eq!(
        ringing.header("Via"),
        Some("SIP/2.0/UDP [::3]:5062;branch=z9hG4bKin6;rport=5062;received=::3")
    );
    b.cmd(Command::Answer(None));
    let transmits = b.transmits();
    let ok_tx = transmits
        .iter()
        .find(|t| t.payload.starts_with(b"SIP/2.0 200"))
        .expect("a 200");
    assert_eq!(ok_tx.dst, PHONE_V6.parse::<SocketAddr>().expect("addr"));
    let ok = Message::parse(&ok_tx.payload).expect("parses");
    assert_eq!(ok.contact().expect("Contact").uri, "sip:alice@[::1]:5060");
    assert!(ok
        .body_text()
        .expect("an answer")
        .contains("c=IN IP6 ::1\r\n"));
    assert_eq!(b.states(), vec![CallState::Connected]);
    // Our BYE goes to bob's IPv6 Contact.
    b.cmd(Command::Hangup(None));
    let transmits = b.transmits();
    let bye = transmits
        .iter()
        .find(|t| t.payload.starts_with(b"BYE "))
        .expect("a BYE");
    assert_eq!(bye.dst, PHONE_V6.parse::<SocketAddr>().expect("addr"));
    assert!(bye
        .payload
        .starts_with(b"BYE sip:bob@[::3]:5062 SIP/2.0\r\n"));
}

#[test]
fn an_answer_to_an_ipv4_mapped_sdp_address_uses_ipv4() {
    let mut b = bench();
    registered(&mut b);
    let invite =
        incoming_invite_v6("mapped", "").replace("c=IN IP6 ::3", "c=IN IP6 ::ffff:192.0.2.3");
    b.recv(PHONE_V6, &invite);
    b.sent();
    b.cmd(Command::Answer(None));
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Media { remote, .. } if remote == "192.0.2.3:30000"
        )),
        "{events:?}"
    );
}

#[test]
fn malformed_ipv6_references_in_a_call_never_panic() {
    let garbage = [
        (
            "Contact: <sip:bob@[::3]:5062>",
            "Contact: <sip:bob@[::3:5062>",
        ),
        (
            "Contact: <sip:bob@[::3]:5062>",
            "Contact: <sip:bob@[zz::3]:5062>",
        ),
        (
            "Contact: <sip:bob@[::3]:5062>",
            "Contact: <sip:bob@::3:5062>",
        ),
        ("Via: SIP/2.0/UDP [::3]:5062", "Via: SIP/2.0/UDP [::3:5062"),
        ("Via: SIP/2.0/UDP [::3]:5062", "Via: SIP/2.0/UDP []:5062"),
        ("c=IN IP6 ::3", "c=IN IP6 [::3]"),
        ("c=IN IP6 ::3", "c=IN IP6 ::::"),
        ("INVITE sip:alice@[::1]:5060", "INVITE sip:alice@[::1"),
        (
            "INVITE sip:alice@[::1]:5060",
            "INVITE sip:alice@[::1]:99999",
        ),
    ];
    for (i, (from, to)) in garbage.iter().enumerate() {
        let mut b = bench();
        registered(&mut b);
        let invite = incoming_invite_v6(&format!("g{i}"), "Record-Route: <sip:[::1]:5070;lr>\r\n")
            .replacen(from, to, 1);
        b.recv(PHONE_V6, &invite);
        b.cmd(Command::Answer(None));
        b.cmd(Command::Hangup(None));
        for t in b.transmits() {
            // A 400 echoes the peer's own malformed Via; anything else must be well formed.
            let text = String::from_utf8_lossy(&t.payload);
            assert!(
                text.starts_with("SIP/2.0 400 ") || Message::parse(&t.payload).is_ok(),
                "case {i}: we sent garbage:\n{text}"
            );
        }
        b.events();
    }
}

#[test]
fn a_registrar_with_a_and_aaaa_records_is_reached_in_the_family_we_are_bound_to() {
    let mut cfg = config(true);
    cfg.account.registrar = "sip:pbx.example.test".into();
    cfg.account.registrar_addr = None;
    cfg.local = LOCAL.parse().expect("addr");
    cfg.media_ip = "::1".parse().expect("ip");
    let mut b = Bench::with_config(cfg);
    assert!(b.next_resolve().is_some(), "the domain is looked up");
    // The SRV target has an A and an AAAA record; the A comes first in the answer.
    let located = super::locate::Located {
        targets: ["192.0.2.10:5060", "[2001:db8::10]:5060"]
            .iter()
            .map(|a| (a.parse().expect("addr"), super::Transport::Udp))
            .collect(),
        ttl: std::time::Duration::from_secs(60),
    };
    b.ua.handle_resolved(b.now, "sip:pbx.example.test", Ok(located));
    let register = b
        .transmits()
        .into_iter()
        .find(|t| t.payload.starts_with(b"REGISTER "))
        .expect("a REGISTER");
    assert_eq!(
        register.dst,
        "[2001:db8::10]:5060".parse::<SocketAddr>().expect("addr")
    );
}
