//! Several accounts at once, on simulated time: two registrations side by side, incoming
//! calls attributed to their account, outgoing calls through the route's or the default
//! account, and one registrar's failure leaving the other account alone.

use std::net::SocketAddr;
use std::time::Duration;

use super::api::{Command, Event};
use super::msg::{Message, Method};
use super::pbx_transfer::PbxCodes;
use super::sdes::{KeySource, SrtpConfig, SrtpMode, KEY_LEN};
use super::ua_tests::{config, phone_sdp, reply, Bench, REGISTRAR};
use super::{AcceptFrom, Account, AutoAnswer, BlindMode, PickupMethod, UaConfig};

/// The second account's registrar.
const QUEUE_REGISTRAR: &str = "127.0.0.4:5060";

/// The bench's account `desk` (alice at 127.0.0.1) and a second registering account `queue`
/// (user 200 at 127.0.0.4).
fn two_accounts() -> UaConfig {
    let mut cfg = config(true);
    cfg.others.push(Account {
        name: "queue".into(),
        user: "200".into(),
        domain: "127.0.0.4".into(),
        display_name: Some("Queue".into()),
        auth_user: "200".into(),
        password: Some("queuepw".into()),
        registrar: "sip:127.0.0.4".into(),
        registrar_addr: Some(QUEUE_REGISTRAR.parse().expect("addr")),
        outbound_proxy: None,
        register: true,
        expires: 300,
        keepalive: Some(Duration::from_secs(25)),
        accept_from: AcceptFrom::Registrar,
        nat: false,
        policy: crate::sip::policy::Policy::default(),
    });
    cfg
}

fn addr(s: &str) -> SocketAddr {
    s.parse().expect("addr")
}

/// The messages sent since the last look, parsed, with where each went; keep-alive pings
/// are left out.
fn sent_to(b: &mut Bench) -> Vec<(SocketAddr, Message)> {
    b.transmits()
        .into_iter()
        .filter(|t| !t.payload.iter().all(u8::is_ascii_whitespace))
        .map(|t| (t.dst, Message::parse(&t.payload).expect("parsable")))
        .collect()
}

/// The one `method` request sent to `dst` among `sent`.
fn request_to(sent: &[(SocketAddr, Message)], dst: &str, method: Method) -> Message {
    let found: Vec<&Message> = sent
        .iter()
        .filter(|(d, m)| *d == addr(dst) && m.code().is_none() && m.method() == method)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(found.len(), 1, "one {method} to {dst}: {sent:#?}");
    found[0].clone()
}

/// Both accounts registered: the bench, with what it sent and said so far taken.
fn registered() -> Bench {
    registered_with(two_accounts())
}

/// [`registered`] with the accounts of `cfg`.
fn registered_with(cfg: UaConfig) -> Bench {
    let mut b = Bench::with_config(cfg);
    let sent = sent_to(&mut b);
    for (registrar, method) in [
        (REGISTRAR, Method::Register),
        (QUEUE_REGISTRAR, Method::Register),
    ] {
        let register = request_to(&sent, registrar, method);
        b.recv(
            registrar,
            &reply(&register, 200, "r", "Expires: 120\r\n", ""),
        );
    }
    b.transmits();
    b.events();
    b
}

fn invite(ruri: &str, to: &str, call_id: &str) -> String {
    let sdp = phone_sdp("sendrecv");
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK{call_id}\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.3>;tag=b{call_id}\r\nTo: <{to}>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.3:5060>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// The account named by the `incoming` event of the call `call_id`.
fn incoming_account(events: &[Event], call_id: &str) -> String {
    events
        .iter()
        .find_map(|e| match e {
            Event::Incoming {
                call_id: id,
                account,
                ..
            } if id == call_id => Some(account.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("an incoming event for {call_id}: {events:#?}"))
}

#[test]
fn each_account_registers_with_its_own_binding_contact_and_registrar() {
    let mut b = Bench::with_config(two_accounts());
    let sent = sent_to(&mut b);
    let desk = request_to(&sent, REGISTRAR, Method::Register);
    let queue = request_to(&sent, QUEUE_REGISTRAR, Method::Register);
    assert_eq!(desk.request_uri(), Some("sip:127.0.0.1"));
    assert_eq!(queue.request_uri(), Some("sip:127.0.0.4"));
    assert_ne!(desk.call_id, queue.call_id, "two bindings, two Call-IDs");
    assert!(queue
        .header("From")
        .is_some_and(|f| f.contains("sip:200@127.0.0.4")));
    assert_eq!(
        desk.header("Contact"),
        Some("<sip:alice@127.0.0.2:5060>"),
        "the first account's REGISTER is what it was with one account"
    );
    assert_eq!(queue.header("Contact"), Some("<sip:200@127.0.0.2:5060>"));
    b.recv(REGISTRAR, &reply(&desk, 200, "r1", "Expires: 120\r\n", ""));
    b.recv(
        QUEUE_REGISTRAR,
        &reply(&queue, 200, "r2", "Expires: 300\r\n", ""),
    );
    let events = b.events();
    for (name, aor, expires) in [
        ("desk", "alice@127.0.0.1", 120),
        ("queue", "200@127.0.0.4", 300),
    ] {
        assert!(
            events.contains(&Event::Registered {
                account: name.into(),
                aor: aor.into(),
                expires,
            }),
            "{name} registered: {events:#?}"
        );
    }
    // Each binding is refreshed on its own schedule, at its own registrar.
    b.advance(Duration::from_secs(110));
    let transmits = b.transmits();
    let pings: Vec<SocketAddr> = transmits
        .iter()
        .filter(|t| t.payload == b"\r\n\r\n")
        .map(|t| t.dst)
        .collect();
    assert_eq!(
        pings,
        [addr(QUEUE_REGISTRAR); 4],
        "queue's keep-alives (every 25 s) go to its registrar; desk has none"
    );
    let sent: Vec<(SocketAddr, Message)> = transmits
        .into_iter()
        .filter(|t| !t.payload.iter().all(u8::is_ascii_whitespace))
        .map(|t| (t.dst, Message::parse(&t.payload).expect("parsable")))
        .collect();
    // The refresh, and its retransmissions: nothing answers it here.
    let refreshes: Vec<&Message> = sent
        .iter()
        .filter(|(d, m)| *d == addr(REGISTRAR) && m.method() == Method::Register)
        .map(|(_, m)| m)
        .collect();
    assert!(!refreshes.is_empty());
    assert!(refreshes.iter().all(|m| m.call_id == desk.call_id));
    assert!(
        !sent
            .iter()
            .any(|(d, m)| *d == addr(QUEUE_REGISTRAR) && m.method() == Method::Register),
        "queue's 300 s binding is not due yet"
    );
}

#[test]
fn a_failing_registrar_fails_only_its_account() {
    let mut b = Bench::with_config(two_accounts());
    let sent = sent_to(&mut b);
    let desk = request_to(&sent, REGISTRAR, Method::Register);
    b.recv(REGISTRAR, &reply(&desk, 200, "r1", "Expires: 120\r\n", ""));
    // The queue's registrar never answers: timer F.
    b.advance(Duration::from_secs(40));
    let events = b.events();
    let failed: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::RegistrationFailed { account, .. } => Some(account.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(failed, ["queue"], "{events:#?}");
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Registered { account, .. } if account == "desk")));
    // desk still takes calls.
    b.recv(
        REGISTRAR,
        &invite("sip:alice@127.0.0.2:5060", "sip:alice@127.0.0.1", "in1"),
    );
    assert_eq!(incoming_account(&b.events(), "in1"), "desk");
}

#[test]
fn an_incoming_call_is_attributed_by_contact_user_then_aor_then_source() {
    let mut b = registered();
    // The PBX sends the INVITE to the queue's Contact, from desk's registrar.
    b.recv(
        REGISTRAR,
        &invite("sip:200@127.0.0.2:5060", "sip:200@127.0.0.4", "c1"),
    );
    let sent = b.sent();
    let ringing = sent
        .iter()
        .find(|m| m.code() == Some(180))
        .expect("180 Ringing");
    assert_eq!(
        ringing.header("Contact"),
        Some("<sip:200@127.0.0.2:5060>"),
        "the queue's call answers with the queue's Contact"
    );
    assert_eq!(incoming_account(&b.events(), "c1"), "queue");
    // A Request-URI naming nobody, with the queue's address of record in To.
    b.recv(
        REGISTRAR,
        &invite("sip:127.0.0.2:5060", "sip:200@127.0.0.4", "c2"),
    );
    assert_eq!(incoming_account(&b.events(), "c2"), "queue");
}

#[test]
fn an_incoming_call_for_nobody_known_belongs_to_its_source_registrar_else_the_first() {
    let mut b = registered();
    b.recv(
        QUEUE_REGISTRAR,
        &invite("sip:x@127.0.0.2:5060", "sip:x@elsewhere", "s1"),
    );
    assert_eq!(incoming_account(&b.events(), "s1"), "queue");
    b.cmd(Command::Hangup(None));
    b.recv(
        REGISTRAR,
        &invite("sip:x@127.0.0.2:5060", "sip:x@elsewhere", "s2"),
    );
    assert_eq!(incoming_account(&b.events(), "s2"), "desk");
}

#[test]
fn a_call_for_an_account_that_accepts_only_its_registrar_is_refused_from_strangers() {
    let mut b = registered();
    b.recv(
        "127.0.0.9:5060",
        &invite("sip:200@127.0.0.2:5060", "sip:200@127.0.0.4", "x1"),
    );
    let sent = b.sent();
    assert!(sent.iter().any(|m| m.code() == Some(403)), "{sent:#?}");
    assert!(!b
        .events()
        .iter()
        .any(|e| matches!(e, Event::Incoming { .. })));
}

#[test]
fn dial_goes_through_the_default_account_and_account_switches_it() {
    let mut b = registered();
    b.cmd(Command::Dial("300".into()));
    let sent = sent_to(&mut b);
    let first = request_to(&sent, REGISTRAR, Method::Invite);
    assert_eq!(first.request_uri(), Some("sip:300@127.0.0.1"));
    assert!(first
        .header("From")
        .is_some_and(|f| f.contains("sip:alice@127.0.0.1")));
    b.cmd(Command::Hangup(None));
    b.transmits();

    b.cmd(Command::Account("queue".into()));
    assert!(b.events().contains(&Event::AccountSelected {
        account: "queue".into()
    }));
    b.cmd(Command::Dial("301".into()));
    let sent = sent_to(&mut b);
    let second = request_to(&sent, QUEUE_REGISTRAR, Method::Invite);
    assert_eq!(second.request_uri(), Some("sip:301@127.0.0.4"));
    assert!(second
        .header("From")
        .is_some_and(|f| f.contains("sip:200@127.0.0.4")));
    assert_eq!(second.header("Contact"), Some("<sip:200@127.0.0.2:5060>"));
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Call { account: Some(a), .. } if a == "queue"
        )),
        "the call's events name its account: {events:#?}"
    );

    b.cmd(Command::Account("nobody".into()));
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Error { message } if message.contains("no account `nobody`")
                && message.contains("desk, queue")
        )),
        "{events:#?}"
    );
}

#[test]
fn a_routed_call_uses_its_account_and_its_bye_answers_with_that_accounts_credentials() {
    let mut b = registered();
    b.cmd(Command::DialVia {
        account: "queue".into(),
        target: "302".into(),
    });
    let sent = sent_to(&mut b);
    let inv = request_to(&sent, QUEUE_REGISTRAR, Method::Invite);
    b.recv(
        QUEUE_REGISTRAR,
        &reply(
            &inv,
            200,
            "t1",
            "Contact: <sip:302@127.0.0.4:5060>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    b.transmits();
    b.cmd(Command::Hangup(None));
    let sent = sent_to(&mut b);
    let bye = request_to(&sent, QUEUE_REGISTRAR, Method::Bye);
    b.recv(
        QUEUE_REGISTRAR,
        &reply(
            &bye,
            407,
            "",
            "Proxy-Authenticate: Digest realm=\"queue\", nonce=\"n1\", qop=\"auth\"\r\n",
            "",
        ),
    );
    let sent = sent_to(&mut b);
    let again = request_to(&sent, QUEUE_REGISTRAR, Method::Bye);
    let credentials = again.header("Proxy-Authorization").expect("credentials");
    assert!(credentials.contains("username=\"200\""), "{credentials}");
}

#[test]
fn two_contacts_with_one_user_part_are_told_apart() {
    let mut cfg = two_accounts();
    cfg.others[0].user = "alice".into();
    let mut b = Bench::with_config(cfg);
    let sent = sent_to(&mut b);
    let desk = request_to(&sent, REGISTRAR, Method::Register);
    let queue = request_to(&sent, QUEUE_REGISTRAR, Method::Register);
    assert_eq!(desk.header("Contact"), Some("<sip:alice@127.0.0.2:5060>"));
    assert_eq!(
        queue.header("Contact"),
        Some("<sip:alice-queue1@127.0.0.2:5060>")
    );
}

#[test]
fn quit_removes_every_binding() {
    let mut b = registered();
    b.cmd(Command::Quit);
    let sent = sent_to(&mut b);
    for registrar in [REGISTRAR, QUEUE_REGISTRAR] {
        let unregister = request_to(&sent, registrar, Method::Register);
        assert_eq!(unregister.header("Expires"), Some("0"));
        b.recv(registrar, &reply(&unregister, 200, "r", "", ""));
    }
    let events = b.events();
    let gone: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            Event::Unregistered { account, .. } => Some(account.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(gone, ["desk", "queue"]);
    assert_eq!(events.last(), Some(&Event::Stopped));
}

#[test]
fn each_account_looks_up_its_own_registrar_and_fails_over_alone() {
    use super::locate::Located;
    use super::Transport;
    let mut cfg = two_accounts();
    cfg.account.registrar = "sip:desk.example.test".into();
    cfg.account.registrar_addr = None;
    cfg.others[0].registrar = "sip:queue.example.test".into();
    cfg.others[0].registrar_addr = None;
    let mut b = Bench::with_config(cfg);
    let mut asked = Vec::new();
    while let Some(resolve) = b.next_resolve() {
        asked.push(resolve.uri);
    }
    assert_eq!(asked, ["sip:desk.example.test", "sip:queue.example.test"]);
    assert!(sent_to(&mut b).is_empty(), "REGISTER waits for DNS");
    let located = |targets: &[&str]| {
        Ok(Located {
            targets: targets.iter().map(|t| (addr(t), Transport::Udp)).collect(),
            ttl: Duration::from_secs(300),
        })
    };
    let now = b.now;
    b.ua.handle_resolved(
        now,
        "sip:queue.example.test",
        located(&["127.0.0.31:5060", "127.0.0.32:5060"]),
    );
    b.ua.handle_resolved(now, "sip:desk.example.test", located(&["127.0.0.21:5060"]));
    let sent = sent_to(&mut b);
    request_to(&sent, "127.0.0.21:5060", Method::Register);
    let queue = request_to(&sent, "127.0.0.31:5060", Method::Register);
    // The queue's primary answers 503: its REGISTER moves to its backup; desk's stays.
    b.recv("127.0.0.31:5060", &reply(&queue, 503, "", "", ""));
    let sent = sent_to(&mut b);
    let moved = request_to(&sent, "127.0.0.32:5060", Method::Register);
    assert_eq!(moved.call_id, queue.call_id);
    assert!(
        sent.iter().all(|(d, _)| *d == addr("127.0.0.32:5060")),
        "{sent:#?}"
    );
}

#[test]
fn an_account_behind_nat_learns_its_own_address_and_the_other_keeps_its_own() {
    let mut cfg = two_accounts();
    cfg.others[0].nat = true;
    let mut b = Bench::with_config(cfg);
    let sent = sent_to(&mut b);
    let desk = request_to(&sent, REGISTRAR, Method::Register);
    let queue = request_to(&sent, QUEUE_REGISTRAR, Method::Register);
    b.recv(REGISTRAR, &reply(&desk, 200, "r1", "Expires: 120\r\n", ""));
    // The queue's registrar is across a NAT: it saw us at a public address.
    let seen = reply(&queue, 200, "r2", "Expires: 300\r\n", "").replacen(
        ";rport",
        ";rport=40123;received=203.0.113.7",
        1,
    );
    b.recv(QUEUE_REGISTRAR, &seen);
    let sent = sent_to(&mut b);
    let again = request_to(&sent, QUEUE_REGISTRAR, Method::Register);
    let contacts: Vec<&str> = again.headers("Contact").collect();
    assert_eq!(
        contacts,
        [
            "<sip:200@203.0.113.7:40123>",
            "<sip:200@127.0.0.2:5060>;expires=0"
        ]
    );
    // desk's calls still say where desk's registrar reaches us.
    b.cmd(Command::Dial("300".into()));
    let sent = sent_to(&mut b);
    let invite = request_to(&sent, REGISTRAR, Method::Invite);
    assert_eq!(invite.header("Contact"), Some("<sip:alice@127.0.0.2:5060>"));
    assert!(invite
        .header("Via")
        .is_some_and(|v| v.contains("127.0.0.2:5060")));
    assert!(
        invite
            .body_text()
            .is_some_and(|sdp| sdp.contains("c=IN IP4 127.0.0.2")),
        "desk's SDP keeps its address"
    );
    b.cmd(Command::Hangup(None));
    b.transmits();
    // The queue's calls carry the public address in Via, Contact and SDP.
    b.cmd(Command::DialVia {
        account: "queue".into(),
        target: "301".into(),
    });
    let sent = sent_to(&mut b);
    let invite = request_to(&sent, QUEUE_REGISTRAR, Method::Invite);
    assert_eq!(
        invite.header("Contact"),
        Some("<sip:200@203.0.113.7:40123>")
    );
    assert!(invite
        .header("Via")
        .is_some_and(|v| v.contains("203.0.113.7:40123")));
    assert!(
        invite
            .body_text()
            .is_some_and(|sdp| sdp.contains("c=IN IP4 203.0.113.7")),
        "the queue's SDP has the public address"
    );
}

/// [`two_accounts`] where the queue's PBX wants its own ways: transfers by feature codes,
/// pickup by a code, its calls answered without the operator, SRTP offered; desk keeps the
/// defaults (REFER, pickup by dialog, ringing until answered, no SRTP).
fn queue_with_its_own_policy() -> UaConfig {
    let mut cfg = two_accounts();
    // A blind transfer by REFER at once (not ringing the target first), to see the REFER.
    cfg.account.policy.transfer.blind = BlindMode::Notify;
    let queue = &mut cfg.others[0].policy;
    queue.transfer.pbx_codes = Some(PbxCodes {
        blind: "##{target}#".into(),
        attended: "*2{target}#".into(),
        cancel: "*0".into(),
    });
    queue.pickup.method = PickupMethod::Code;
    queue.pickup.code = Some("*8{ext}".into());
    queue.answer.auto_answer = AutoAnswer::On;
    queue.srtp = SrtpConfig {
        mode: SrtpMode::Optional,
        keys: Some(KeySource::new(|| [9; KEY_LEN])),
    };
    cfg
}

/// Places a call through `account` (dial: the default account) and has it answered by the
/// far end at `registrar`; returns our INVITE.
fn answered_call(b: &mut Bench, account: Option<&str>, target: &str, registrar: &str) -> Message {
    b.cmd(match account {
        Some(account) => Command::DialVia {
            account: account.into(),
            target: target.into(),
        },
        None => Command::Dial(target.into()),
    });
    let sent = sent_to(b);
    let inv = request_to(&sent, registrar, Method::Invite);
    let contact = format!("Contact: <sip:{target}@{registrar}>\r\n");
    b.recv(
        registrar,
        &reply(&inv, 200, "t1", &contact, &phone_sdp("sendrecv")),
    );
    b.transmits();
    b.events();
    inv
}

#[test]
fn a_call_is_transferred_the_way_its_own_accounts_pbx_wants() {
    let mut b = registered_with(queue_with_its_own_policy());
    answered_call(&mut b, Some("queue"), "302", QUEUE_REGISTRAR);
    b.cmd(Command::Transfer("400".into()));
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Transfer { reason: Some(r), .. } if r.contains("##400#")
        )),
        "the queue's call is transferred by its PBX's code: {events:#?}"
    );
    let sent = sent_to(&mut b);
    assert!(
        !sent.iter().any(|(_, m)| m.method() == Method::Refer),
        "{sent:#?}"
    );
    b.cmd(Command::Hangup(None));
    b.transmits();

    answered_call(&mut b, None, "303", REGISTRAR);
    b.cmd(Command::Transfer("401".into()));
    // desk's way: hold the call, then REFER.
    let sent = sent_to(&mut b);
    let hold = request_to(&sent, REGISTRAR, Method::Invite);
    b.recv(
        REGISTRAR,
        &reply(&hold, 200, "t1", "", &phone_sdp("recvonly")),
    );
    let sent = sent_to(&mut b);
    let refer = request_to(&sent, REGISTRAR, Method::Refer);
    assert!(refer
        .header("Refer-To")
        .is_some_and(|r| r.contains("sip:401@127.0.0.1")));
}

#[test]
fn srtp_is_offered_by_the_policy_of_the_account_a_call_goes_through() {
    let mut b = registered_with(queue_with_its_own_policy());
    b.cmd(Command::DialVia {
        account: "queue".into(),
        target: "302".into(),
    });
    let sent = sent_to(&mut b);
    let through_queue = request_to(&sent, QUEUE_REGISTRAR, Method::Invite);
    assert!(
        through_queue
            .body_text()
            .unwrap_or_default()
            .contains("a=crypto:"),
        "{}",
        through_queue.body_text().unwrap_or_default()
    );
    b.cmd(Command::Hangup(None));
    b.transmits();
    b.cmd(Command::Dial("303".into()));
    let sent = sent_to(&mut b);
    let through_desk = request_to(&sent, REGISTRAR, Method::Invite);
    let body = through_desk.body_text().unwrap_or_default();
    assert!(
        !body.contains("a=crypto:") && body.contains("RTP/AVP"),
        "{body}"
    );
}

#[test]
fn auto_answer_follows_the_account_a_call_is_for() {
    let mut b = registered_with(queue_with_its_own_policy());
    b.recv(
        REGISTRAR,
        &invite("sip:alice@127.0.0.2:5060", "sip:alice@127.0.0.1", "d1"),
    );
    b.advance(Duration::from_secs(2));
    let sent = b.sent();
    assert!(sent.iter().any(|m| m.code() == Some(180)), "{sent:#?}");
    assert!(
        !sent.iter().any(|m| m.code() == Some(200)),
        "desk's call rings for the operator: {sent:#?}"
    );
    b.cmd(Command::Hangup(None));
    b.transmits();
    b.events();
    b.recv(
        REGISTRAR,
        &invite("sip:200@127.0.0.2:5060", "sip:200@127.0.0.4", "q1"),
    );
    b.advance(Duration::from_secs(2));
    let sent = b.sent();
    assert!(
        sent.iter()
            .any(|m| m.code() == Some(200) && m.call_id == "q1"),
        "the queue's call is answered without the operator: {sent:#?}"
    );
}

#[test]
fn pickup_uses_the_code_and_domain_of_the_account_new_calls_go_out_through() {
    let mut b = registered_with(queue_with_its_own_policy());
    b.cmd(Command::Account("queue".into()));
    b.cmd(Command::Pickup("201".into()));
    let sent = sent_to(&mut b);
    let inv = request_to(&sent, QUEUE_REGISTRAR, Method::Invite);
    assert_eq!(inv.request_uri(), Some("sip:*8201@127.0.0.4"));
}
