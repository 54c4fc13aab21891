//! The client-authentication layer on simulated time: a 401 and a 407 to every request we
//! send are answered once with a digest the test recomputes, with a new branch and CSeq + 1;
//! the dialog's (or registration's) CSeq moves past it; a second non-stale challenge fails;
//! `stale=true` is answered once more; SHA-256 is preferred to MD5.

use std::collections::HashMap;
use std::time::Duration;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::api::{CallState, Command, Event};
use super::msg::{Message, Method};
use super::pickup_tests::one_subscribe;
use super::transfer_tests::{notify_bench, referred, transferring};
use super::ua_tests::{config, connected_call, reply, Bench, REGISTRAR};
use super::{AcceptFrom, Account, PickupConfig};

/// The parameters of a `Digest` credentials value, unquoted.
fn params(value: &str) -> HashMap<String, String> {
    let rest = value
        .trim()
        .strip_prefix("Digest ")
        .expect("Digest credentials");
    let mut out = HashMap::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in rest.chars().chain([',']) {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                if let Some((k, v)) = current.split_once('=') {
                    out.insert(k.trim().to_string(), v.trim().to_string());
                }
                current.clear();
            }
            c => current.push(c),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash(algorithm: &str, text: &str) -> String {
    match algorithm {
        "SHA-256" => hex(&Sha256::digest(text.as_bytes())),
        "MD5" => hex(&Md5::digest(text.as_bytes())),
        other => panic!("unexpected algorithm {other}"),
    }
}

/// Checks `value` (our credentials for `req`) against the account's password, recomputing
/// the digest here (RFC 7616 §3.4.1, qop=auth); returns its parameters.
fn verified(req: &Message, value: &str) -> HashMap<String, String> {
    verified_for(req, value, "alice", "secret")
}

/// [`verified`] for the account `user` with `password`.
fn verified_for(req: &Message, value: &str, user: &str, password: &str) -> HashMap<String, String> {
    let p = params(value);
    let algorithm = p["algorithm"].clone();
    assert_eq!(p["username"], user);
    assert_eq!(Some(p["uri"].as_str()), req.request_uri());
    assert_eq!(p["qop"], "auth");
    let ha1 = hash(&algorithm, &format!("{user}:{}:{password}", p["realm"]));
    let ha2 = hash(&algorithm, &format!("{}:{}", req.method(), p["uri"]));
    let expected = hash(
        &algorithm,
        &format!(
            "{ha1}:{}:{}:{}:auth:{ha2}",
            p["nonce"], p["nc"], p["cnonce"]
        ),
    );
    assert_eq!(p["response"], expected, "the digest of {value}");
    p
}

/// The challenge header of a `code` response.
fn challenge_header(code: u16, nonce: &str, stale: bool, algorithm: &str) -> String {
    let name = if code == 407 {
        "Proxy-Authenticate"
    } else {
        "WWW-Authenticate"
    };
    let stale = if stale { ", stale=true" } else { "" };
    format!(
        "{name}: Digest realm=\"pbx\", nonce=\"{nonce}\", qop=\"auth\", algorithm={algorithm}{stale}\r\n"
    )
}

/// The header that answers a `code` challenge.
fn answer_header(code: u16) -> &'static str {
    if code == 407 {
        "Proxy-Authorization"
    } else {
        "Authorization"
    }
}

/// Answers `req` with a `code` challenge; returns the requests of its method and Call-ID
/// sent in reply (the same request again, or nothing).
fn challenge(b: &mut Bench, req: &Message, code: u16, nonce: &str, stale: bool) -> Vec<Message> {
    let extra = challenge_header(code, nonce, stale, "MD5");
    b.recv(REGISTRAR, &reply(req, code, "authtag", &extra, ""));
    b.sent()
        .into_iter()
        .filter(|m| m.code().is_none() && m.method() == req.method() && m.call_id == req.call_id)
        .collect()
}

/// Checks that `again` is `req` answered for a `code` challenge with `nonce`.
fn answered(req: &Message, again: &Message, code: u16, nonce: &str) {
    let value = again
        .header(answer_header(code))
        .unwrap_or_else(|| panic!("{} in {again:#?}", answer_header(code)));
    let p = verified(again, value);
    assert_eq!(p["nonce"], nonce);
    assert_eq!(p["nc"], "00000001", "a new nonce starts counting at 1");
    assert_eq!(again.cseq.1, req.method());
    if req.to.tag().is_none() {
        assert_eq!(again.cseq.0, req.cseq.0 + 1, "CSeq + 1");
    } else {
        // Above the dialog's last request, which may have come after `req`.
        assert!(again.cseq.0 > req.cseq.0, "CSeq grows: {again:#?}");
    }
    assert_ne!(again.via.branch(), req.via.branch(), "a new transaction");
    assert_eq!(again.from, req.from);
    assert_eq!(again.to, req.to);
    assert_eq!(again.request_uri(), req.request_uri());
    assert_eq!(again.body, req.body, "the same request");
}

/// A request to challenge: the bench it was sent from and the request.
type Setup = fn() -> (Bench, Message);

fn register() -> (Bench, Message) {
    let mut b = Bench::new(true);
    let req = b.sent_request(Method::Register);
    (b, req)
}

fn invite() -> (Bench, Message) {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("bob".into()));
    let req = b.sent_request(Method::Invite);
    (b, req)
}

fn connected() -> Bench {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    b.sent();
    b.events();
    b
}

fn reinvite() -> (Bench, Message) {
    let mut b = connected();
    b.cmd(Command::Hold(None));
    let req = b.sent_request(Method::Invite);
    (b, req)
}

fn bye() -> (Bench, Message) {
    let mut b = connected();
    b.cmd(Command::Hangup(None));
    let req = b.sent_request(Method::Bye);
    (b, req)
}

fn refer() -> (Bench, Message) {
    let mut b = notify_bench();
    let (_, refer) = transferring(&mut b);
    b.events();
    (b, refer)
}

fn notify() -> (Bench, Message) {
    let mut b = notify_bench();
    let (_, notify, _) = referred(&mut b, "<sip:carol@127.0.0.1>");
    b.events();
    (b, notify)
}

fn subscribe() -> (Bench, Message) {
    let mut b = super::pickup_tests::bench(&["201"], PickupConfig::default());
    let req = one_subscribe(&mut b);
    (b, req)
}

fn info() -> (Bench, Message) {
    let mut cfg = config(false);
    cfg.dtmf_info = true;
    let mut b = Bench::with_config(cfg);
    connected_call(&mut b);
    b.sent();
    b.events();
    b.cmd(Command::Dtmf("5".into()));
    let req = b.sent_request(Method::Info);
    (b, req)
}

/// Every request we send, by name (UPDATE, OPTIONS and MESSAGE are never sent).
const SETUPS: [(&str, Setup); 8] = [
    ("REGISTER", register),
    ("INVITE", invite),
    ("re-INVITE", reinvite),
    ("BYE", bye),
    ("REFER", refer),
    ("NOTIFY", notify),
    ("SUBSCRIBE", subscribe),
    ("INFO", info),
];

/// The last CSeq of the dialog `req` belongs to, when it is one of our calls'.
fn dialog_cseq(b: &Bench, req: &Message) -> Option<u32> {
    b.ua.calls()
        .filter_map(|c| c.dialog.as_ref())
        .find(|d| d.call_id == req.call_id && Some(d.local_tag.as_str()) == req.from.tag())
        .map(|d| d.local_cseq)
}

#[test]
fn a_401_and_a_407_to_every_request_are_answered_once_with_a_valid_digest() {
    for (name, setup) in SETUPS {
        for code in [401, 407] {
            let (mut b, req) = setup();
            let again = challenge(&mut b, &req, code, "n1", false);
            assert_eq!(again.len(), 1, "{name} {code}: sent once more: {again:#?}");
            answered(&req, &again[0], code, "n1");
            if req.to.tag().is_some() && req.method() != Method::Bye {
                assert!(
                    dialog_cseq(&b, &req).is_some_and(|c| c >= again[0].cseq.0),
                    "{name} {code}: the dialog's CSeq moved past the answer"
                );
            }
            // The final answer reaches the owner as if the request had been sent once.
            let ok = reply(&again[0], 200, "authtag", "Expires: 120\r\n", "");
            b.recv(REGISTRAR, &ok);
            let events = b.events();
            assert!(
                !events.iter().any(|e| matches!(e, Event::Error { .. })),
                "{name} {code}: {events:#?}"
            );
        }
    }
}

#[test]
fn a_second_challenge_to_the_same_request_fails_unless_it_is_stale() {
    for (name, setup) in SETUPS {
        for code in [401, 407] {
            let (mut b, req) = setup();
            let first = challenge(&mut b, &req, code, "n1", false);
            assert_eq!(first.len(), 1, "{name} {code}");
            // stale=true: once more, with the new nonce.
            let second = challenge(&mut b, &first[0], code, "n2", true);
            assert_eq!(second.len(), 1, "{name} {code}: a stale nonce is retried");
            answered(&first[0], &second[0], code, "n2");
            // A third challenge, stale or not, is the owner's failure: nothing more is sent.
            let third = challenge(&mut b, &second[0], code, "n3", true);
            assert!(third.is_empty(), "{name} {code}: {third:#?}");

            let (mut b, req) = setup();
            let first = challenge(&mut b, &req, code, "n1", false);
            let second = challenge(&mut b, &first[0], code, "n2", false);
            assert!(
                second.is_empty(),
                "{name} {code}: refused credentials are not resent"
            );
        }
    }
}

#[test]
fn a_refused_register_and_invite_tell_the_operator() {
    let (mut b, req) = register();
    let first = challenge(&mut b, &req, 401, "n1", false);
    b.events();
    challenge(&mut b, &first[0], 401, "n2", false);
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::RegistrationFailed { status: Some(401), reason, .. }
                if reason.contains("check the user name and password")
        )),
        "{events:#?}"
    );

    let (mut b, req) = invite();
    let first = challenge(&mut b, &req, 407, "n1", false);
    b.events();
    challenge(&mut b, &first[0], 407, "n2", false);
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::Call { state: CallState::Ended, status: Some(407), reason: Some(reason), .. }
                if reason.contains("authentication failed")
        )),
        "{events:#?}"
    );
}

#[test]
fn without_a_password_the_challenge_goes_to_the_owner() {
    let mut cfg = config(true);
    cfg.account.password = None;
    let mut b = Bench::with_config(cfg);
    let req = b.sent_request(Method::Register);
    let again = challenge(&mut b, &req, 401, "n1", false);
    assert!(again.is_empty());
    let events = b.events();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::RegistrationFailed { reason, .. } if reason.contains("none is configured")
        )),
        "{events:#?}"
    );
}

#[test]
fn sha_256_is_chosen_over_md5() {
    let (mut b, req) = register();
    let extra = format!(
        "{}{}",
        challenge_header(401, "n-md5", false, "MD5"),
        challenge_header(401, "n-sha", false, "SHA-256")
    );
    b.recv(REGISTRAR, &reply(&req, 401, "authtag", &extra, ""));
    let again = b.sent_request(Method::Register);
    let p = verified(&again, again.header("Authorization").expect("credentials"));
    assert_eq!(p["algorithm"], "SHA-256");
    assert_eq!(p["nonce"], "n-sha");
}

#[test]
fn later_requests_carry_the_credentials_with_a_growing_nonce_count_and_higher_cseq() {
    // REGISTER: the refresh goes with nc=2 and the next CSeq.
    let (mut b, req) = register();
    let again = challenge(&mut b, &req, 401, "n1", false);
    b.recv(
        REGISTRAR,
        &reply(&again[0], 200, "authtag", "Expires: 120\r\n", ""),
    );
    b.advance(Duration::from_secs(102));
    let refresh = b.sent_request(Method::Register);
    assert_eq!(refresh.cseq.0, again[0].cseq.0 + 1);
    let p = verified(
        &refresh,
        refresh.header("Authorization").expect("pre-emptive"),
    );
    assert_eq!((p["nonce"].as_str(), p["nc"].as_str()), ("n1", "00000002"));

    // A re-INVITE challenged by a proxy: the BYE after it is higher still and carries the
    // proxy's credentials at once.
    let (mut b, req) = reinvite();
    let again = challenge(&mut b, &req, 407, "n1", false);
    b.recv(
        REGISTRAR,
        &reply(
            &again[0],
            200,
            "",
            "",
            &super::ua_tests::phone_sdp("recvonly"),
        ),
    );
    b.sent();
    b.cmd(Command::Hangup(None));
    let bye = b.sent_request(Method::Bye);
    assert_eq!(bye.cseq.0, again[0].cseq.0 + 1);
    let p = verified(
        &bye,
        bye.header("Proxy-Authorization").expect("pre-emptive"),
    );
    assert_eq!(p["nc"], "00000002");

    // SUBSCRIBE: its refresh in the dialog is above the answered one.
    let (mut b, req) = subscribe();
    let again = challenge(&mut b, &req, 401, "n1", false);
    b.recv(
        REGISTRAR,
        &reply(&again[0], 200, "pbxtag", "Expires: 100\r\n", ""),
    );
    b.advance(Duration::from_secs(90));
    let refresh = one_subscribe(&mut b);
    assert!(refresh.cseq.0 > again[0].cseq.0, "{refresh:#?}");
}

#[test]
fn an_invite_answered_with_credentials_is_the_one_cancel_and_ack_follow() {
    let (mut b, req) = invite();
    let again = challenge(&mut b, &req, 407, "n1", false);
    b.recv(REGISTRAR, &reply(&again[0], 180, "bobtag", "", ""));
    b.cmd(Command::Hangup(None));
    let cancel = b.sent_request(Method::Cancel);
    assert_eq!(cancel.via.branch(), again[0].via.branch());
    assert_eq!(cancel.cseq.0, again[0].cseq.0);
}

#[test]
fn a_trunk_calls_bye_is_answered_with_the_trunks_credentials_after_the_call_ended() {
    let proxy = "127.0.0.9:5080";
    let mut cfg = config(false);
    cfg.others.push(Account {
        name: "carrier".into(),
        user: "4420".into(),
        domain: "carrier.test".into(),
        display_name: None,
        auth_user: "acct4420".into(),
        password: Some("trunkpw".into()),
        registrar: "sip:carrier.test".into(),
        registrar_addr: None,
        outbound_proxy: Some(("sip:127.0.0.9:5080".into(), proxy.parse().expect("addr"))),
        register: false,
        expires: 600,
        keepalive: None,
        accept_from: AcceptFrom::Any,
        nat: false,
        policy: crate::sip::policy::Policy::default(),
    });
    let mut b = Bench::with_config(cfg);
    b.cmd(Command::DialVia {
        account: "carrier".into(),
        target: "+3581234".into(),
    });
    let invite = b.sent_request(Method::Invite);
    let ok = reply(
        &invite,
        200,
        "far",
        "Contact: <sip:far@127.0.0.9:5080>\r\n",
        &super::ua_tests::phone_sdp("sendrecv"),
    );
    b.recv(proxy, &ok);
    b.sent();
    b.events();
    b.cmd(Command::Hangup(None));
    let bye = b.sent_request(Method::Bye);
    let extra = challenge_header(407, "n1", false, "MD5");
    b.recv(proxy, &reply(&bye, 407, "", &extra, ""));
    let again = b.sent_request(Method::Bye);
    let value = again.header("Proxy-Authorization").expect("credentials");
    verified_for(&again, value, "acct4420", "trunkpw");
}
