//! A conformance lint for the SIP messages switchboard builds: the mandatory and forbidden
//! header tables of RFC 3261 §8.1.1, §8.2.6, §12.1 and §20 (tables 2 and 3), with the rows that
//! the extensions in use add — RFC 3515 (REFER), RFC 6665 (SUBSCRIBE/NOTIFY), RFC 3891
//! (Replaces), RFC 4028 (session timers).
//!
//! Lenient peers accept what strict PBXes refuse (a REFER without Contact is answered
//! `400 Missing Contact header` by Asterisk and taken by every Debian phone), so every message
//! the user agent emits in the unit tests passes through [`check`], and the lab harness checks
//! every message a switchboard process sent. The lint owns no state and sends nothing.
//!
//! ```text
//!  check(bytes) ─► parse ─► every message:  Via (branch z9hG4bK…), From (tag), To, Call-ID,
//!                                           CSeq; single-valued headers once; body ⇒
//!                                           Content-Type, Content-Length = body
//!                  requests:  Max-Forwards; CSeq method = method; METHOD_RULES row
//!                  responses: To tag above 100; RESPONSE_RULES rows (by method and code)
//! ```

use super::msg::{Message, Method};

/// One way a message breaks the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The RFC section that says so.
    pub rule: &'static str,
    /// What is wrong, in words.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.detail, self.rule)
    }
}

/// Headers a request of one method must carry, and headers it must not.
struct MethodRule {
    method: Method,
    required: &'static [(&'static str, &'static str)],
    forbidden: &'static [(&'static str, &'static str)],
}

/// Per-method rows for requests (header, RFC section). `Contact` is mandatory in every
/// request that creates a dialog or an (implicit) subscription or refreshes a target.
const METHOD_RULES: &[MethodRule] = &[
    MethodRule {
        method: Method::Invite,
        required: &[
            ("Contact", "RFC 3261 §8.1.1.8"),
            ("Allow", "RFC 3261 §20.5, table 3 (SHOULD)"),
            ("Supported", "RFC 3261 §20.37 (SHOULD)"),
        ],
        forbidden: &[],
    },
    MethodRule {
        method: Method::Refer,
        required: &[
            ("Contact", "RFC 3515 §2.4.1, RFC 6665 §4.1.2.1"),
            ("Refer-To", "RFC 3515 §2.4.1"),
        ],
        forbidden: &[],
    },
    MethodRule {
        method: Method::Subscribe,
        required: &[
            ("Contact", "RFC 6665 §4.1.2.1"),
            ("Event", "RFC 6665 §7.2.1"),
            ("Accept", "RFC 6665 §4.1.2.1 / RFC 4235 §4.4"),
            ("Expires", "RFC 6665 §4.1.2.1 (SHOULD)"),
        ],
        forbidden: &[],
    },
    MethodRule {
        method: Method::Notify,
        required: &[
            ("Contact", "RFC 6665 §4.2.2"),
            ("Event", "RFC 6665 §7.2.1"),
            ("Subscription-State", "RFC 6665 §4.2.2"),
        ],
        forbidden: &[],
    },
    MethodRule {
        method: Method::Update,
        required: &[("Contact", "RFC 3311 §7")],
        forbidden: &[],
    },
    MethodRule {
        method: Method::Cancel,
        required: &[],
        forbidden: &[
            ("Require", "RFC 3261 §9.1"),
            ("Proxy-Require", "RFC 3261 §9.1"),
            ("Contact", "RFC 3261 table 2"),
        ],
    },
    MethodRule {
        method: Method::Bye,
        required: &[],
        forbidden: &[],
    },
    MethodRule {
        method: Method::Ack,
        required: &[],
        forbidden: &[],
    },
];

/// Headers that may appear at most once (RFC 3261 §7.3: every header that is not a
/// comma-separated list).
const SINGLE: &[&str] = &[
    "From",
    "To",
    "Call-ID",
    "CSeq",
    "Max-Forwards",
    "Content-Type",
    "Content-Length",
    "Expires",
    "Event",
    "Subscription-State",
    "Refer-To",
    "Referred-By",
    "Replaces",
    "Session-Expires",
    "Min-SE",
];

/// Checks one message as it goes on the wire. A message that does not even parse is one
/// violation; whitespace alone (a keep-alive) is none.
pub fn check(bytes: &[u8]) -> Vec<Violation> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Vec::new();
    }
    let msg = match Message::parse(bytes) {
        Ok(m) => m,
        // The answer to a request too broken to parse echoes what that request had
        // (§8.2.6.2): a missing Call-ID or CSeq is the requester's, not ours.
        Err(_) if answers_malformed(bytes) => return Vec::new(),
        Err(e) => {
            return vec![Violation {
                rule: "RFC 3261 §7",
                detail: format!("does not parse: {e}"),
            }]
        }
    };
    let mut out = Vec::new();
    let mut fail = |rule: &'static str, detail: String| out.push(Violation { rule, detail });
    let count = |name: &str| msg.headers(name).count();

    // Every message (§8.1.1, §8.2.6, §20).
    for name in SINGLE {
        if count(name) > 1 {
            fail(
                "RFC 3261 §7.3.1",
                format!("{name} appears {} times", count(name)),
            );
        }
    }
    if !msg.body.is_empty() && count("Content-Type") == 0 {
        fail("RFC 3261 §20.15", "a body without Content-Type".into());
    }
    if let Some(len) = msg.header("Content-Length") {
        if len.trim().parse::<usize>().ok() != Some(msg.body.len()) {
            fail(
                "RFC 3261 §20.14",
                format!("Content-Length {len} for a {}-byte body", msg.body.len()),
            );
        }
    }
    if count("Replaces") > 0 && msg.method() != Method::Invite {
        fail(
            "RFC 3891 §6",
            format!("Replaces in a {} (INVITE only)", msg.method()),
        );
    }

    match msg.code() {
        None => check_request(&msg, &mut fail),
        Some(code) => check_response(&msg, code, &mut fail),
    }
    out
}

/// True for `400`, `501` and `505` responses: what a UAS sends to a request it cannot parse.
fn answers_malformed(bytes: &[u8]) -> bool {
    ["SIP/2.0 400 ", "SIP/2.0 501 ", "SIP/2.0 505 "]
        .iter()
        .any(|start| bytes.starts_with(start.as_bytes()))
}

fn check_request(msg: &Message, fail: &mut impl FnMut(&'static str, String)) {
    let method = msg.method();
    if msg.from.tag().is_none() {
        fail("RFC 3261 §8.1.1.3", format!("{method}'s From has no tag"));
    }
    if msg.headers("Max-Forwards").count() == 0 {
        fail(
            "RFC 3261 §8.1.1.6",
            format!("{method} without Max-Forwards"),
        );
    }
    if msg.cseq.1 != method {
        fail(
            "RFC 3261 §8.1.1.5",
            format!("CSeq method {} in a {method}", msg.cseq.1),
        );
    }
    if !msg.via.branch().is_some_and(|b| b.starts_with("z9hG4bK")) {
        fail(
            "RFC 3261 §8.1.1.7",
            format!("{method}'s Via branch lacks the z9hG4bK cookie"),
        );
    }
    if let Some(rule) = METHOD_RULES.iter().find(|r| r.method == method) {
        for (name, rfc) in rule.required {
            if msg.headers(name).count() == 0 {
                fail(rfc, format!("{method} without {name}"));
            }
        }
        for (name, rfc) in rule.forbidden {
            if msg.headers(name).count() > 0 {
                fail(rfc, format!("{name} in a {method}"));
            }
        }
    }
    let dialog_creating = matches!(
        method,
        Method::Invite | Method::Refer | Method::Subscribe | Method::Notify | Method::Update
    );
    if dialog_creating && msg.headers("Contact").count() > 1 {
        fail(
            "RFC 3261 §8.1.1.8",
            format!("{method} with more than one Contact"),
        );
    }
    if msg.headers("Session-Expires").count() > 0 && !msg.has_token("Supported", "timer") {
        fail(
            "RFC 4028 §7.1",
            format!("{method} with Session-Expires but without Supported: timer"),
        );
    }
    if method == Method::Notify
        && msg
            .header("Event")
            .is_some_and(|e| e.trim().to_ascii_lowercase().starts_with("refer"))
        && !msg.body.is_empty()
        && !msg
            .header("Content-Type")
            .and_then(|t| t.split(';').next())
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("message/sipfrag"))
    {
        fail(
            "RFC 3515 §2.4.5",
            "a refer NOTIFY whose body is not message/sipfrag".into(),
        );
    }
}

fn check_response(msg: &Message, code: u16, fail: &mut impl FnMut(&'static str, String)) {
    let method = msg.method();
    if code > 100 && msg.to.tag().is_none() {
        fail(
            "RFC 3261 §8.2.6.2",
            format!("{code} to {method} without a To tag"),
        );
    }
    let mut need = |name: &'static str, rfc: &'static str| {
        if msg.headers(name).count() == 0 {
            fail(rfc, format!("{code} to {method} without {name}"));
        }
    };
    match (method, code) {
        (Method::Invite, 101..=199) => need("Contact", "RFC 3261 §12.1.1"),
        (Method::Invite, 200..=299) => {
            need("Contact", "RFC 3261 §12.1.1");
            need("Allow", "RFC 3261 §13.3.1.4 (SHOULD)");
            need("Supported", "RFC 3261 §13.3.1.4 (SHOULD)");
        }
        (Method::Subscribe, 200..=299) => {
            need("Contact", "RFC 6665 §4.2.1.1");
            need("Expires", "RFC 6665 §4.2.1.1");
        }
        (Method::Refer, 200..=299) => need("Contact", "RFC 3515 §2.4.2, RFC 6665 §4.2.1.1"),
        (Method::Options, 200..=299) => {
            need("Allow", "RFC 3261 §11.2 (SHOULD)");
            need("Accept", "RFC 3261 §11.2 (SHOULD)");
        }
        _ => {}
    }
    match code {
        401 => need("WWW-Authenticate", "RFC 3261 §21.4.2"),
        405 => need("Allow", "RFC 3261 §21.4.6"),
        407 => need("Proxy-Authenticate", "RFC 3261 §21.4.8"),
        415 => need("Accept", "RFC 3261 §21.4.13"),
        420 => need("Unsupported", "RFC 3261 §21.4.15"),
        421 => need("Require", "RFC 3261 §21.4.16"),
        422 => need("Min-SE", "RFC 4028 §6"),
        423 => need("Min-Expires", "RFC 3261 §21.4.17"),
        489 => need("Allow-Events", "RFC 6665 §8.2.2"),
        _ => {}
    }
    let uac_refreshes = msg.header("Session-Expires").is_some_and(|v| {
        v.to_ascii_lowercase()
            .replace(' ', "")
            .contains("refresher=uac")
    });
    if method == Method::Invite
        && (200..300).contains(&code)
        && uac_refreshes
        && !msg.has_token("Require", "timer")
    {
        fail(
            "RFC 4028 §9",
            "2xx naming the UAC refresher without Require: timer".into(),
        );
    }
}

/// Panics with every violation of `bytes`, naming the message (for tests).
pub fn assert_conformant(bytes: &[u8]) {
    let found = check(bytes);
    assert!(
        found.is_empty(),
        "a non-conformant SIP message was sent:\n{}\n---\n{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        String::from_utf8_lossy(bytes)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFER: &str = "REFER sip:bob@127.0.0.3:5060 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKabc;rport\r\n\
Max-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>;tag=b1\r\n\
Call-ID: c1\r\nCSeq: 3 REFER\r\n\
Contact: <sip:alice@127.0.0.2:5060>\r\n\
Refer-To: <sip:carol@127.0.0.1>\r\nContent-Length: 0\r\n\r\n";

    fn rules(text: &str) -> Vec<String> {
        check(text.as_bytes())
            .into_iter()
            .map(|v| v.detail)
            .collect()
    }

    #[test]
    fn a_complete_refer_passes() {
        assert_eq!(rules(REFER), Vec::<String>::new());
    }

    #[test]
    fn a_refer_without_contact_fails() {
        let bare = REFER.replace("Contact: <sip:alice@127.0.0.2:5060>\r\n", "");
        assert_eq!(rules(&bare), vec!["REFER without Contact"]);
    }

    #[test]
    fn two_refer_to_headers_fail() {
        let two = REFER.replace(
            "Refer-To: <sip:carol@127.0.0.1>\r\n",
            "Refer-To: <sip:carol@127.0.0.1>\r\nRefer-To: <sip:dave@127.0.0.1>\r\n",
        );
        assert_eq!(rules(&two), vec!["Refer-To appears 2 times"]);
    }

    #[test]
    fn a_notify_needs_event_state_and_contact() {
        let notify = "NOTIFY sip:bob@127.0.0.3 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKn\r\nMax-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>;tag=b1\r\n\
Call-ID: c1\r\nCSeq: 4 NOTIFY\r\nContent-Type: text/plain\r\nContent-Length: 16\r\n\r\n\
SIP/2.0 200 OK\r\n";
        assert_eq!(
            rules(notify),
            vec![
                "NOTIFY without Contact",
                "NOTIFY without Event",
                "NOTIFY without Subscription-State",
            ]
        );
    }

    #[test]
    fn responses_need_to_tags_and_dialog_contacts() {
        let ok = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKx\r\n\
From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\n\
Call-ID: c2\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            rules(ok),
            vec![
                "200 to INVITE without a To tag",
                "200 to INVITE without Contact",
                "200 to INVITE without Allow",
                "200 to INVITE without Supported",
            ]
        );
        let unauthorized = ok
            .replace("200 OK", "401 Unauthorized")
            .replace("CSeq: 1 INVITE", "CSeq: 1 REGISTER")
            .replace(
                "To: <sip:alice@127.0.0.1>",
                "To: <sip:alice@127.0.0.1>;tag=t",
            );
        assert_eq!(
            rules(&unauthorized),
            vec!["401 to REGISTER without WWW-Authenticate"]
        );
    }

    #[test]
    fn bodies_need_a_type_and_a_true_length() {
        let info = "INFO sip:bob@127.0.0.3 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKi\r\nMax-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>;tag=b1\r\n\
Call-ID: c1\r\nCSeq: 5 INFO\r\nContent-Length: 9\r\n\r\nSignal=5\n";
        assert_eq!(rules(info), vec!["a body without Content-Type"]);
    }

    #[test]
    fn replaces_outside_invite_and_cancel_with_require_fail() {
        let cancel = "CANCEL sip:bob@127.0.0.3 SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.2:5060;branch=z9hG4bKc\r\nMax-Forwards: 70\r\n\
From: <sip:alice@127.0.0.1>;tag=a1\r\nTo: <sip:bob@127.0.0.1>\r\n\
Call-ID: c1\r\nCSeq: 1 CANCEL\r\nRequire: replaces\r\nReplaces: x;to-tag=1;from-tag=2\r\n\
Content-Length: 0\r\n\r\n";
        assert_eq!(
            rules(cancel),
            vec!["Replaces in a CANCEL (INVITE only)", "Require in a CANCEL"]
        );
    }

    #[test]
    fn garbage_is_one_violation_and_keepalives_none() {
        assert_eq!(check(b"hello").len(), 1);
        assert!(check(b"\r\n\r\n").is_empty());
    }
}
