//! Registrar location, failover and NAT contact rewrite on simulated time: the core asks
//! for DNS, is fed answers, and moves REGISTER (and calls) between targets.

use std::net::SocketAddr;
use std::time::Duration;

use super::api::{Command, Event};
use super::locate::{Located, Plan};
use super::msg::{Message, Method};
use super::ua_tests::{config, reply, Bench};
use super::{Resolve, Transport, UaConfig};

const PRIMARY: &str = "127.0.0.21:5060";
const BACKUP: &str = "127.0.0.22:5060";
const DOMAIN_URI: &str = "sip:pbx.example.test";

fn addr(a: &str) -> SocketAddr {
    a.parse().expect("addr")
}

/// An account whose registrar is known by a domain only.
fn by_domain() -> UaConfig {
    let mut cfg = config(true);
    cfg.account.registrar = DOMAIN_URI.into();
    cfg.account.registrar_addr = None;
    cfg.account.keepalive = Some(Duration::from_secs(25));
    cfg
}

fn answer(targets: &[&str], ttl: u64) -> Result<Located, String> {
    Ok(Located {
        targets: targets.iter().map(|t| (addr(t), Transport::Udp)).collect(),
        ttl: Duration::from_secs(ttl),
    })
}

/// Everything sent since the last call, with where it went.
fn sent_to(b: &mut Bench) -> Vec<(SocketAddr, Message)> {
    b.transmits()
        .into_iter()
        .filter(|t| !t.payload.iter().all(u8::is_ascii_whitespace))
        .map(|t| (t.dst, Message::parse(&t.payload).expect("parsable")))
        .collect()
}

/// The one REGISTER sent (retransmissions aside) and where it went.
fn register_sent(b: &mut Bench) -> (SocketAddr, Message) {
    let mut sent: Vec<(SocketAddr, Message)> = sent_to(b)
        .into_iter()
        .filter(|(_, m)| m.code().is_none() && m.method() == Method::Register)
        .collect();
    sent.dedup_by(|a, b| a.1.via.branch() == b.1.via.branch());
    assert_eq!(sent.len(), 1, "one REGISTER expected: {sent:#?}");
    sent.remove(0)
}

fn ok_from(b: &mut Bench, from: &str, req: &Message) {
    let text = reply(req, 200, "reg", "Expires: 120\r\n", "");
    b.recv(from, &text);
}

fn registered(b: &mut Bench) -> bool {
    b.events()
        .iter()
        .any(|e| matches!(e, Event::Registered { .. }))
}

#[test]
fn a_domain_registrar_is_looked_up_before_register() {
    let mut b = Bench::with_config(by_domain());
    assert!(
        sent_to(&mut b).is_empty(),
        "nothing sent before DNS answers"
    );
    assert_eq!(
        b.next_resolve(),
        Some(Resolve {
            uri: DOMAIN_URI.into(),
            plan: Plan::Domain {
                domain: "pbx.example.test".into(),
                secure: false
            },
            transport: Transport::Udp,
        })
    );
    assert_eq!(b.next_resolve(), None, "asked once");
    // Answers for something else are ignored.
    b.ua.handle_resolved(b.now, "sip:other.test", answer(&[BACKUP], 60));
    assert!(sent_to(&mut b).is_empty());
    b.ua.handle_resolved(b.now, DOMAIN_URI, answer(&[PRIMARY, BACKUP], 600));
    let (dst, req) = register_sent(&mut b);
    assert_eq!(dst, addr(PRIMARY));
    assert_eq!(
        req.request_uri(),
        Some(DOMAIN_URI),
        "the Request-URI keeps the domain"
    );
    ok_from(&mut b, PRIMARY, &req);
    assert!(registered(&mut b));
    // Keep-alives started once the address was known, towards the primary.
    b.advance(Duration::from_secs(25));
    let pings: Vec<SocketAddr> = b
        .transmits()
        .into_iter()
        .filter(|t| t.payload == b"\r\n\r\n")
        .map(|t| t.dst)
        .collect();
    assert_eq!(pings, [addr(PRIMARY)]);
}

#[test]
fn a_silent_primary_moves_register_and_calls_to_the_backup_and_back() {
    let mut b = Bench::with_config(by_domain());
    b.next_resolve();
    b.ua.handle_resolved(b.now, DOMAIN_URI, answer(&[PRIMARY, BACKUP], 3600));
    let (_, req) = register_sent(&mut b);
    ok_from(&mut b, PRIMARY, &req);
    assert!(registered(&mut b));
    // The refresh (85 % of 120 s) gets no answer: Timer F, then at once the backup.
    b.advance(Duration::from_secs(102));
    let (dst, _) = register_sent(&mut b);
    assert_eq!(dst, addr(PRIMARY));
    b.advance(Duration::from_secs(32));
    let (dst, req) = sent_to(&mut b)
        .into_iter()
        .rfind(|(_, m)| m.method() == Method::Register)
        .expect("REGISTER");
    assert_eq!(dst, addr(BACKUP), "failed over within one retry");
    assert!(
        !b.events()
            .iter()
            .any(|e| matches!(e, Event::RegistrationFailed { .. })),
        "a backup left: no failure to report"
    );
    ok_from(&mut b, BACKUP, &req);
    assert!(registered(&mut b));
    // A call placed meanwhile goes through the live registrar.
    b.cmd(Command::Dial("sip:bob@pbx.example.test".into()));
    let invite: Vec<SocketAddr> = sent_to(&mut b)
        .into_iter()
        .filter(|(_, m)| m.method() == Method::Invite)
        .map(|(dst, _)| dst)
        .collect();
    assert_eq!(invite, [addr(BACKUP)]);
    b.cmd(Command::Hangup(None));
    sent_to(&mut b);
    // At the next refresh the primary is tried first again; it answers.
    b.advance(Duration::from_secs(102));
    let (dst, req) = register_sent(&mut b);
    assert_eq!(dst, addr(PRIMARY), "back to the primary at refresh");
    ok_from(&mut b, PRIMARY, &req);
    assert!(registered(&mut b));
}

#[test]
fn a_503_fails_over_at_once_and_when_all_fail_the_retry_starts_at_the_primary() {
    let mut b = Bench::with_config(by_domain());
    b.next_resolve();
    b.ua.handle_resolved(b.now, DOMAIN_URI, answer(&[PRIMARY, BACKUP], 3600));
    let (_, req) = register_sent(&mut b);
    b.recv(PRIMARY, &reply(&req, 503, "x", "", ""));
    let (dst, req) = register_sent(&mut b);
    assert_eq!(dst, addr(BACKUP));
    b.recv(BACKUP, &reply(&req, 503, "x", "", ""));
    let failed: Vec<(Option<u16>, u64)> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RegistrationFailed {
                status, retry_in, ..
            } => Some((status, retry_in)),
            _ => None,
        })
        .collect();
    assert_eq!(failed, [(Some(503), 5)]);
    assert!(sent_to(&mut b).is_empty());
    // 5 s, plus up to a fifth of jitter.
    b.advance(Duration::from_secs(6));
    let (dst, _) = register_sent(&mut b);
    assert_eq!(dst, addr(PRIMARY), "the retry starts from the best target");
}

#[test]
fn an_expired_answer_is_looked_up_again_and_a_failed_lookup_backs_off() {
    let mut b = Bench::with_config(by_domain());
    b.next_resolve();
    b.ua.handle_resolved(b.now, DOMAIN_URI, answer(&[PRIMARY], 60));
    let (_, req) = register_sent(&mut b);
    ok_from(&mut b, PRIMARY, &req);
    registered(&mut b);
    // Refresh at 102 s, past the 60 s TTL: DNS first.
    b.advance(Duration::from_secs(102));
    assert!(sent_to(&mut b).is_empty());
    assert!(b.next_resolve().is_some(), "looked up again");
    b.ua.handle_resolved(b.now, DOMAIN_URI, Err("SERVFAIL".into()));
    let reasons: Vec<String> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RegistrationFailed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons, ["cannot resolve the registrar: SERVFAIL"]);
    b.advance(Duration::from_secs(6));
    assert!(b.next_resolve().is_some(), "the retry asks DNS again");
    b.ua.handle_resolved(b.now, DOMAIN_URI, answer(&[BACKUP], 60));
    let (dst, _) = register_sent(&mut b);
    assert_eq!(dst, addr(BACKUP));
}

/// Registered at the primary of `[PRIMARY, BACKUP]`; nothing left to read.
fn registered_at_primary() -> Bench {
    let mut b = Bench::with_config(by_domain());
    b.next_resolve();
    b.ua.handle_resolved(b.now, DOMAIN_URI, answer(&[PRIMARY, BACKUP], 3600));
    let (_, req) = register_sent(&mut b);
    ok_from(&mut b, PRIMARY, &req);
    assert!(registered(&mut b));
    b
}

/// The INVITEs sent since the last look (retransmissions aside), with where they went.
fn invites_sent(b: &mut Bench) -> Vec<(SocketAddr, Message)> {
    let mut sent: Vec<(SocketAddr, Message)> = sent_to(b)
        .into_iter()
        .filter(|(_, m)| m.code().is_none() && m.method() == Method::Invite)
        .collect();
    sent.dedup_by(|a, b| a.1.via.branch() == b.1.via.branch());
    sent
}

fn call_ended(b: &mut Bench) -> Vec<Option<u16>> {
    b.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Call {
                state: super::api::CallState::Ended,
                status,
                ..
            } => Some(status),
            _ => None,
        })
        .collect()
}

#[test]
fn an_invite_the_primary_never_answers_goes_to_the_backup_as_the_same_call() {
    let mut b = registered_at_primary();
    b.cmd(Command::Dial("sip:bob@pbx.example.test".into()));
    let first = invites_sent(&mut b);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, addr(PRIMARY));
    // Timer B (64·T1 = 32 s) runs out: the next target, before telling anyone.
    b.advance(Duration::from_secs(31));
    assert!(
        invites_sent(&mut b)
            .iter()
            .all(|(dst, m)| *dst == addr(PRIMARY) && m.via.branch() == first[0].1.via.branch()),
        "only retransmissions so far"
    );
    b.advance(Duration::from_secs(2));
    let second: Vec<(SocketAddr, Message)> = invites_sent(&mut b)
        .into_iter()
        .filter(|(_, m)| m.via.branch() != first[0].1.via.branch())
        .collect();
    assert_eq!(second.len(), 1, "{second:#?}");
    let (dst, again) = &second[0];
    assert_eq!(*dst, addr(BACKUP));
    let old = &first[0].1;
    assert_eq!(again.call_id, old.call_id, "same Call-ID (RFC 3263 §4.3)");
    assert_eq!(again.from.tag(), old.from.tag(), "same From tag");
    assert_ne!(again.via.branch(), old.via.branch(), "a new transaction");
    assert!(again.cseq.0 > old.cseq.0);
    assert!(call_ended(&mut b).is_empty(), "the call goes on");
    // The registration stays where it was: the primary.
    b.advance(Duration::from_secs(1));
    assert!(
        !sent_to(&mut b)
            .iter()
            .any(|(_, m)| m.method() == Method::Register),
        "no REGISTER moved by the call"
    );
    // The backup answers: the call rings there.
    b.recv(BACKUP, &reply(again, 180, "bob", "", ""));
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Call {
            state: super::api::CallState::Ringing,
            ..
        }
    )));
}

#[test]
fn over_tcp_a_lost_connection_moves_a_dialing_call_to_the_backup_at_once() {
    let mut cfg = by_domain();
    cfg.transport = Transport::Tcp;
    let mut b = Bench::with_config(cfg);
    let asked = b.next_resolve().expect("lookup");
    let targets = [PRIMARY, BACKUP]
        .iter()
        .map(|t| (addr(t), Transport::Tcp))
        .collect();
    b.ua.handle_resolved(
        b.now,
        &asked.uri,
        Ok(Located {
            targets,
            ttl: Duration::from_secs(3600),
        }),
    );
    let (_, req) = register_sent(&mut b);
    ok_from(&mut b, PRIMARY, &req);
    b.cmd(Command::Dial("sip:bob@pbx.example.test".into()));
    assert_eq!(invites_sent(&mut b)[0].0, addr(PRIMARY));
    b.ua.handle_connection_lost(b.now, addr(PRIMARY));
    let sent = invites_sent(&mut b);
    let Some((_, at_backup)) = sent.iter().find(|(dst, _)| *dst == addr(BACKUP)) else {
        panic!("the INVITE did not go to the backup: {sent:#?}");
    };
    let ringing = reply(at_backup, 180, "bob", "", "");
    b.ua.handle_datagram(b.now, Transport::Tcp, addr(BACKUP), ringing.as_bytes());
    // It rings there; the old transaction's timer B no longer ends the call.
    b.advance(Duration::from_secs(33));
    let events = b.events();
    assert!(
        !events.iter().any(|e| matches!(
            e,
            Event::Call {
                state: super::api::CallState::Ended,
                ..
            }
        )),
        "{events:#?}"
    );
}

#[test]
fn a_503_to_an_invite_tries_the_backup_and_fails_when_none_is_left() {
    let mut b = registered_at_primary();
    b.cmd(Command::Dial("sip:bob@pbx.example.test".into()));
    let (_, invite) = invites_sent(&mut b).remove(0);
    b.recv(PRIMARY, &reply(&invite, 503, "x", "", ""));
    let sent = invites_sent(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(BACKUP));
    assert!(call_ended(&mut b).is_empty());
    // The last target answers 503 too: now the call fails, with that status.
    b.recv(BACKUP, &reply(&sent[0].1, 503, "x", "", ""));
    assert!(invites_sent(&mut b).is_empty());
    assert_eq!(call_ended(&mut b), [Some(503)]);
}

#[test]
fn other_failures_and_calls_past_ringing_do_not_fail_over() {
    let mut b = registered_at_primary();
    b.cmd(Command::Dial("sip:bob@pbx.example.test".into()));
    let (_, invite) = invites_sent(&mut b).remove(0);
    b.recv(PRIMARY, &reply(&invite, 486, "x", "", ""));
    assert!(invites_sent(&mut b).is_empty());
    assert_eq!(call_ended(&mut b), [Some(486)]);
    // Ringing at the primary: a later 503 comes from beyond it.
    b.cmd(Command::Dial("sip:bob@pbx.example.test".into()));
    let (_, invite) = invites_sent(&mut b).remove(0);
    b.recv(PRIMARY, &reply(&invite, 180, "y", "", ""));
    b.recv(PRIMARY, &reply(&invite, 503, "y", "", ""));
    assert!(invites_sent(&mut b).is_empty());
    assert_eq!(call_ended(&mut b), [Some(503)]);
}

#[test]
fn a_call_to_another_domain_is_located_by_dns_and_fails_over_across_its_targets() {
    let mut b = registered_at_primary();
    b.cmd(Command::Dial("sip:carol@Other.example".into()));
    assert!(
        invites_sent(&mut b).is_empty(),
        "nothing before DNS answers"
    );
    let asked = b.next_resolve().expect("a lookup for the call");
    assert_eq!(asked.uri, "sip:carol@Other.example");
    assert_eq!(
        asked.plan,
        Plan::Domain {
            domain: "other.example".into(),
            secure: false
        }
    );
    // An answer for another URI changes nothing.
    b.ua.handle_resolved(b.now, "sip:x@elsewhere.example", answer(&[BACKUP], 60));
    assert!(invites_sent(&mut b).is_empty());
    const FIRST: &str = "127.0.0.31:5060";
    const SECOND: &str = "127.0.0.32:5070";
    b.ua.handle_resolved(b.now, &asked.uri, answer(&[FIRST, SECOND], 60));
    let sent = invites_sent(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(FIRST), "straight to the domain's server");
    assert_eq!(sent[0].1.request_uri(), Some("sip:carol@Other.example"));
    b.recv(FIRST, &reply(&sent[0].1, 503, "x", "", ""));
    let sent = invites_sent(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(SECOND), "its next target");
    assert!(call_ended(&mut b).is_empty());
}

#[test]
fn a_domain_dns_cannot_locate_ends_the_call_with_the_reason() {
    let mut b = Bench::with_config(config(false));
    b.cmd(Command::Dial("sip:carol@nowhere.example".into()));
    let asked = b.next_resolve().expect("a lookup for the call");
    b.ua.handle_resolved(b.now, &asked.uri, Err("NXDOMAIN".into()));
    let reasons: Vec<String> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Call {
                state: super::api::CallState::Ended,
                reason,
                ..
            } => reason,
            _ => None,
        })
        .collect();
    assert_eq!(
        reasons,
        ["cannot locate sip:carol@nowhere.example: NXDOMAIN"]
    );
    assert!(invites_sent(&mut b).is_empty());
}

/// The 200 to `req` as a registrar behind which we are NATed writes it.
fn ok_seen_at(req: &Message, public: &str) -> String {
    let (ip, port) = public.split_once(':').expect("ip:port");
    reply(req, 200, "reg", "Expires: 120\r\n", "").replacen(
        ";rport",
        &format!(";rport={port};received={ip}"),
        1,
    )
}

#[test]
fn behind_nat_the_public_address_is_registered_and_used() {
    let mut cfg = config(true);
    cfg.account.nat = true;
    let mut b = Bench::with_config(cfg);
    let req = b.sent_request(Method::Register);
    assert_eq!(
        req.header("Contact"),
        Some("<sip:alice@127.0.0.2:5060>"),
        "first the local address"
    );
    b.recv("127.0.0.1:5060", &ok_seen_at(&req, "203.0.113.7:40123"));
    let again = b.sent_request(Method::Register);
    let contacts: Vec<&str> = again.headers("Contact").collect();
    assert_eq!(
        contacts,
        [
            "<sip:alice@203.0.113.7:40123>",
            "<sip:alice@127.0.0.2:5060>;expires=0"
        ]
    );
    assert!(again
        .header("Via")
        .is_some_and(|v| v.contains("203.0.113.7:40123")));
    // The registrar now sees what we say: nothing more to correct, the old Contact is gone.
    b.recv("127.0.0.1:5060", &ok_seen_at(&again, "203.0.113.7:40123"));
    assert!(b.sent().is_empty());
    b.advance(Duration::from_secs(102));
    let refresh = b.sent_request(Method::Register);
    assert_eq!(
        refresh.headers("Contact").collect::<Vec<_>>(),
        ["<sip:alice@203.0.113.7:40123>"]
    );
    // Calls carry the public address in Contact and SDP.
    b.cmd(Command::Dial("sip:bob@127.0.0.1".into()));
    let invite = b.sent_request(Method::Invite);
    assert_eq!(
        invite.header("Contact"),
        Some("<sip:alice@203.0.113.7:40123>")
    );
    let sdp = String::from_utf8_lossy(&invite.body).into_owned();
    assert!(sdp.contains("c=IN IP4 203.0.113.7"), "{sdp}");
}

#[test]
fn with_nat_off_or_no_difference_the_contact_stays() {
    let mut b = Bench::new(true);
    let req = b.sent_request(Method::Register);
    b.recv("127.0.0.1:5060", &ok_seen_at(&req, "203.0.113.7:40123"));
    assert!(b.sent().is_empty(), "nat off: no second REGISTER");
    let mut cfg = config(true);
    cfg.account.nat = true;
    let mut b = Bench::with_config(cfg);
    let req = b.sent_request(Method::Register);
    b.recv("127.0.0.1:5060", &ok_seen_at(&req, "127.0.0.2:5060"));
    assert!(b.sent().is_empty(), "seen where we are: nothing to do");
}

const PROXY_URI: &str = "sip:proxy.example.test;lr";

/// An account that does not register, with an outbound proxy known by a host name only.
fn unregistered_behind_proxy() -> UaConfig {
    let mut cfg = config(false);
    cfg.account.outbound_proxy = Some((PROXY_URI.into(), addr("0.0.0.0:0")));
    cfg.account.keepalive = Some(Duration::from_secs(25));
    cfg
}

#[test]
fn an_unregistered_accounts_proxy_is_looked_up_at_start_and_kept_for_its_ttl() {
    let mut b = Bench::with_config(unregistered_behind_proxy());
    let asked = b.next_resolve().expect("a lookup at start");
    assert_eq!(asked.uri, PROXY_URI);
    assert_eq!(
        asked.plan,
        Plan::Domain {
            domain: "proxy.example.test".into(),
            secure: false
        }
    );
    assert_eq!(b.next_resolve(), None, "asked once");
    assert!(
        sent_to(&mut b).is_empty(),
        "nothing sent before DNS answers"
    );
    b.ua.handle_resolved(b.now, PROXY_URI, answer(&[PRIMARY, BACKUP], 60));
    // Keep-alives start towards the first target.
    b.advance(Duration::from_secs(25));
    let pings: Vec<SocketAddr> = b
        .transmits()
        .into_iter()
        .filter(|t| t.payload == b"\r\n\r\n")
        .map(|t| t.dst)
        .collect();
    assert_eq!(pings, [addr(PRIMARY)]);
    // A call within the TTL goes to the first target at once, the proxy in its Route.
    b.cmd(Command::Dial("sip:bob@127.0.0.1".into()));
    assert_eq!(b.next_resolve(), None, "the answer is still fresh");
    let sent: Vec<(SocketAddr, String)> = b
        .transmits()
        .into_iter()
        .map(|t| (t.dst, String::from_utf8_lossy(&t.payload).into_owned()))
        .filter(|(_, m)| m.starts_with("INVITE "))
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(PRIMARY));
    assert!(
        sent[0].1.contains("\r\nRoute: <sip:proxy.example.test;lr"),
        "{}",
        sent[0].1
    );
    b.cmd(Command::Hangup(None));
    b.advance(Duration::from_secs(40));
    sent_to(&mut b);
    // Past the TTL (60 s): the next call asks DNS again and waits for the answer, which
    // now names only the backup.
    b.cmd(Command::Dial("sip:carol@127.0.0.1".into()));
    let again = b.next_resolve().expect("looked up again after the TTL");
    assert_eq!(again.uri, PROXY_URI);
    assert!(invites_sent(&mut b).is_empty(), "waits for the answer");
    b.ua.handle_resolved(b.now, PROXY_URI, answer(&[BACKUP], 60));
    let sent = invites_sent(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(BACKUP));
}

#[test]
fn an_unregistered_accounts_call_fails_over_across_its_proxys_targets() {
    let mut b = Bench::with_config(unregistered_behind_proxy());
    b.next_resolve();
    b.ua.handle_resolved(b.now, PROXY_URI, answer(&[PRIMARY, BACKUP], 600));
    b.cmd(Command::Dial("sip:bob@127.0.0.1".into()));
    let first = invites_sent(&mut b);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].0, addr(PRIMARY));
    // Timer B at the primary: the same call goes to the backup.
    b.advance(Duration::from_secs(33));
    let second: Vec<(SocketAddr, Message)> = invites_sent(&mut b)
        .into_iter()
        .filter(|(_, m)| m.via.branch() != first[0].1.via.branch())
        .collect();
    assert_eq!(second.len(), 1, "{second:#?}");
    assert_eq!(second[0].0, addr(BACKUP));
    assert_eq!(second[0].1.call_id, first[0].1.call_id);
    assert!(call_ended(&mut b).is_empty(), "the call goes on");
    // A 503 there too: none left, the call ends.
    b.recv(BACKUP, &reply(&second[0].1, 503, "x", "", ""));
    assert_eq!(call_ended(&mut b), [Some(503)]);
    // The account's next call goes to the backup at once (no timer B at the dead primary)...
    b.cmd(Command::Dial("sip:carol@127.0.0.1".into()));
    let sent = invites_sent(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(BACKUP));
    b.cmd(Command::Hangup(None));
    // ...until the answer's TTL (600 s) ends: the next call looks it up again and starts
    // from the primary.
    b.advance(Duration::from_secs(600));
    sent_to(&mut b);
    b.cmd(Command::Dial("sip:dave@127.0.0.1".into()));
    let asked = b.next_resolve().expect("looked up again");
    b.ua.handle_resolved(b.now, &asked.uri, answer(&[PRIMARY, BACKUP], 600));
    let sent = invites_sent(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(PRIMARY), "the primary again after the TTL");
}

#[test]
fn a_proxy_dns_cannot_locate_ends_the_call_and_never_bypasses_it() {
    let mut b = Bench::with_config(unregistered_behind_proxy());
    b.next_resolve();
    b.ua.handle_resolved(b.now, PROXY_URI, Err("NXDOMAIN".into()));
    b.cmd(Command::Dial("sip:bob@127.0.0.1".into()));
    let asked = b.next_resolve().expect("asked again for the call");
    b.ua.handle_resolved(b.now, &asked.uri, Err("NXDOMAIN".into()));
    assert!(invites_sent(&mut b).is_empty(), "not sent around the proxy");
    let reasons: Vec<String> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Call {
                state: super::api::CallState::Ended,
                reason,
                ..
            } => reason,
            _ => None,
        })
        .collect();
    assert_eq!(reasons, [format!("cannot locate {PROXY_URI}: NXDOMAIN")]);
}

#[test]
fn a_trunks_registrar_named_by_host_is_located_for_its_calls() {
    let mut cfg = config(true);
    let mut trunk = cfg.account.clone();
    trunk.name = "trunk".into();
    trunk.register = false;
    trunk.keepalive = None;
    trunk.registrar = "sip:trunk.example.test:5080".into();
    trunk.registrar_addr = None;
    cfg.others.push(trunk);
    let mut b = Bench::with_config(cfg);
    let asked = b
        .next_resolve()
        .expect("the trunk's registrar is looked up at start");
    assert_eq!(asked.uri, "sip:trunk.example.test:5080");
    b.ua.handle_resolved(b.now, &asked.uri, answer(&[PRIMARY], 60));
    sent_to(&mut b);
    b.cmd(Command::DialVia {
        target: "sip:bob@trunk.example.test".into(),
        account: "trunk".into(),
    });
    let sent = invites_sent(&mut b);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, addr(PRIMARY));
}
