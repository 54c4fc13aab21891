//! Malformed SIP for robustness tests, sent from plain UDP sockets (no sipp needed).
//!
//! [`garbage_cases`] lists the datagrams with what a well-behaved UA does with each: answer
//! `400 Bad Request` (or another listed status) when the message is broken but a response can
//! still be routed (it has a usable `Via`), and stay silent when it cannot (no `Via`, not SIP
//! at all, a stray response). [`send_garbage`] sends them all and collects the answers;
//! [`assert_garbage_handled`] also checks them against the expectations and that the target
//! still answers an OPTIONS afterwards.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

/// What a well-behaved target does with a garbage case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// No response possible or allowed.
    Silence,
    /// A final response with one of these status codes (provisional responses before it are
    /// fine).
    Status(&'static [u16]),
}

/// One malformed datagram.
#[derive(Debug, Clone)]
pub struct GarbageCase {
    /// Short name, for messages.
    pub name: &'static str,
    /// The datagram.
    pub bytes: Vec<u8>,
    /// What a well-behaved target does with it.
    pub expect: Expect,
}

const BAD_REQUEST: &[u16] = &[400];

/// The garbage cases, addressed to `target` from `from` (which appears in their `Via`, so
/// responses come back to it). Every case that can be answered has a unique branch
/// `z9hG4bK-garbage-<index>-...` and Call-ID `garbage-<index>-...`, so responses are matched
/// to cases even when they arrive out of order.
pub fn garbage_cases(target: SocketAddr, from: SocketAddr) -> Vec<GarbageCase> {
    let t = target;
    let f = from;
    let salt = std::process::id();
    // A complete, valid request that the cases break in one place. `drop` removes headers
    // whose name starts with one of the given prefixes, `extra` is appended to the headers.
    let request = |i: usize, method: &str, drop: &[&str], extra: &str, body: &str| -> Vec<u8> {
        let mut headers = vec![
            format!("Via: SIP/2.0/UDP {f};branch=z9hG4bK-garbage-{i}-{salt};rport"),
            "Max-Forwards: 70".to_owned(),
            format!("From: <sip:garbage@{}>;tag=g{i}", f.ip()),
            format!("To: <sip:switchboard@{}>", t.ip()),
            format!("Call-ID: garbage-{i}-{salt}@{}", f.ip()),
            format!("CSeq: 1 {method}"),
            format!("Contact: <sip:garbage@{f}>"),
        ];
        headers.retain(|h| !drop.iter().any(|d| h.starts_with(d)));
        let mut msg = format!("{method} sip:switchboard@{t} SIP/2.0\r\n");
        for h in headers {
            let _ = write!(msg, "{h}\r\n");
        }
        msg.push_str(extra);
        if !body.is_empty() {
            msg.push_str("Content-Type: application/sdp\r\n");
        }
        let _ = write!(msg, "Content-Length: {}\r\n\r\n{body}", body.len());
        msg.into_bytes()
    };
    let broken_sdp = "v=0\r\no=garbage\r\nc=IN IP4\r\nm=audio notaport RTP/AVP\r\na=rtpmap:0\r\n";
    // A deterministic byte salad that starts with a byte no SIP message starts with.
    let junk: Vec<u8> = (0u32..600)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 0x80)
        .collect();

    let mut cases = Vec::new();
    let mut add = |name: &'static str, bytes: Vec<u8>, expect: Expect| {
        cases.push(GarbageCase {
            name,
            bytes,
            expect,
        });
    };
    add(
        "truncated start line",
        format!("INVITE sip:switchboard@{t} SIP/2.").into_bytes(),
        Expect::Silence,
    );
    add(
        "start line only",
        format!("OPTIONS sip:switchboard@{t} SIP/2.0\r\n\r\n").into_bytes(),
        Expect::Silence,
    );
    add(
        "missing Via",
        request(2, "OPTIONS", &["Via:"], "", ""),
        Expect::Silence,
    );
    add(
        "missing Call-ID",
        request(3, "OPTIONS", &["Call-ID:"], "", ""),
        Expect::Status(BAD_REQUEST),
    );
    add(
        "missing CSeq",
        request(4, "OPTIONS", &["CSeq:"], "", ""),
        Expect::Status(BAD_REQUEST),
    );
    add(
        "missing From",
        request(5, "OPTIONS", &["From:"], "", ""),
        Expect::Status(BAD_REQUEST),
    );
    add(
        "missing To",
        request(6, "OPTIONS", &["To:"], "", ""),
        Expect::Status(BAD_REQUEST),
    );
    add(
        "CSeq not a number",
        request(7, "OPTIONS", &["CSeq:"], "CSeq: one OPTIONS\r\n", ""),
        Expect::Status(BAD_REQUEST),
    );
    add(
        "CSeq method differs from request method",
        request(8, "OPTIONS", &["CSeq:"], "CSeq: 1 INVITE\r\n", ""),
        Expect::Status(BAD_REQUEST),
    );
    add(
        "huge header (20 kB)",
        request(
            9,
            "OPTIONS",
            &[],
            &format!("X-Huge: {}\r\n", "h".repeat(20_000)),
            "",
        ),
        // Not malformed as such: answering it normally is fine, and so are 400 and
        // 513 Message Too Large.
        Expect::Status(&[200, 400, 513]),
    );
    add("binary junk", junk, Expect::Silence);
    add("empty datagram", Vec::new(), Expect::Silence);
    add("CRLF keep-alive", b"\r\n\r\n".to_vec(), Expect::Silence);
    add(
        "INVITE with broken SDP",
        request(13, "INVITE", &[], "", broken_sdp),
        // 488 Not Acceptable Here / 606 are what RFC 3261 suggests for an SDP it cannot use.
        Expect::Status(&[400, 488, 606]),
    );
    add(
        "Content-Length larger than the body",
        {
            let mut bytes = request(14, "OPTIONS", &[], "", "");
            let text = String::from_utf8(bytes.clone()).expect("ASCII");
            bytes = text
                .replace("Content-Length: 0", "Content-Length: 500")
                .into_bytes();
            bytes.extend_from_slice(b"short body");
            bytes
        },
        Expect::Status(BAD_REQUEST),
    );
    add(
        "NUL bytes in a header",
        request(15, "OPTIONS", &[], "X-Nul: a\0b\0c\r\n", ""),
        Expect::Status(&[200, 400]),
    );
    add(
        "stray response",
        format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP {t};branch=z9hG4bK-garbage-16-{salt}\r\n\
             From: <sip:switchboard@{}>;tag=x\r\nTo: <sip:garbage@{}>;tag=y\r\n\
             Call-ID: garbage-16-{salt}@{}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
            t.ip(),
            f.ip(),
            f.ip()
        )
        .into_bytes(),
        Expect::Silence,
    );
    add(
        "unsupported SIP version",
        {
            let text = String::from_utf8(request(17, "OPTIONS", &[], "", "")).expect("ASCII");
            text.replacen(" SIP/2.0\r\n", " SIP/3.0\r\n", 1)
                .into_bytes()
        },
        Expect::Status(&[400, 505]),
    );
    add(
        "unknown method",
        request(18, "FROBNICATE", &[], "", ""),
        Expect::Status(&[405, 501]),
    );
    add(
        "Max-Forwards 0",
        request(19, "OPTIONS", &["Max-Forwards:"], "Max-Forwards: 0\r\n", ""),
        // A UAS may answer an OPTIONS addressed to it even with Max-Forwards 0.
        Expect::Status(&[200, 483]),
    );
    for (i, case) in cases.iter().enumerate() {
        let text = String::from_utf8_lossy(&case.bytes);
        if let Some(n) = case_index(&text) {
            assert_eq!(n, i, "garbage case {:?} is numbered wrongly", case.name);
        }
    }
    cases
}

/// Sends every case of [`garbage_cases`] from a UDP socket bound to `from` (by convention on
/// the tools host, e.g. `net.addr(hosts::TOOLS, 5099)`) to `target`, then
/// collects responses for up to 1.5 s. Returns, per case in order, the final response
/// received for it (or the last provisional one if no final came), or `None`.
pub fn send_garbage(target: SocketAddr, from: SocketAddr) -> Vec<Option<String>> {
    let cases = garbage_cases(target, from);
    let socket = UdpSocket::bind(from).unwrap_or_else(|e| panic!("binding {from}: {e}"));
    for case in &cases {
        // An empty datagram is a valid UDP send.
        socket
            .send_to(&case.bytes, target)
            .unwrap_or_else(|e| panic!("sending garbage {:?} to {target}: {e}", case.name));
        // A little spacing keeps a UA's receive buffer from overflowing.
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut by_case: HashMap<usize, String> = HashMap::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    let mut buf = vec![0u8; 65_536];
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        if left.is_zero() || socket.set_read_timeout(Some(left)).is_err() {
            break;
        }
        let Ok((n, _)) = socket.recv_from(&mut buf) else {
            break;
        };
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        let Some(index) = case_index(&text) else {
            eprintln!("lab: garbage: response matching no case:\n{text}");
            continue;
        };
        let is_final = status_of(&text).is_some_and(|s| s >= 200);
        let had_final = by_case
            .get(&index)
            .and_then(|r| status_of(r))
            .is_some_and(|s| s >= 200);
        if is_final && text.contains(" INVITE\r\n") {
            // Be a polite UAC: ACK the final response of an INVITE so it is not retransmitted.
            if let Some(ack) = ack_for(&text, target) {
                let _ = socket.send_to(ack.as_bytes(), target);
            }
        }
        if is_final || !had_final {
            by_case.insert(index, text);
        }
    }
    (0..cases.len()).map(|i| by_case.remove(&i)).collect()
}

/// Sends the garbage with [`send_garbage`], checks every answer against the case's
/// [`Expect`], then checks that `target` still answers an OPTIONS (any final response).
/// Panics with a table of all cases if anything is off.
pub fn assert_garbage_handled(target: SocketAddr, from: SocketAddr) {
    let cases = garbage_cases(target, from);
    let replies = send_garbage(target, from);
    let mut table = String::new();
    let mut bad = 0;
    for (case, reply) in cases.iter().zip(&replies) {
        let status = reply.as_deref().and_then(status_of);
        let ok = match (case.expect, status) {
            (Expect::Silence, None) => reply.is_none(),
            (Expect::Silence, Some(_)) => false,
            (Expect::Status(allowed), Some(s)) => allowed.contains(&s),
            (Expect::Status(_), None) => false,
        };
        if !ok {
            bad += 1;
        }
        let _ = writeln!(
            table,
            "{} {:<42} expected {:<22} got {}",
            if ok { "ok " } else { "BAD" },
            case.name,
            format!("{:?}", case.expect),
            reply.as_deref().map_or("silence".to_owned(), |r| r
                .lines()
                .next()
                .unwrap_or("")
                .to_owned())
        );
    }
    let alive = sip_options(target, from);
    if bad > 0 || alive.is_none() {
        panic!(
            "garbage sent to {target}: {bad} case(s) mishandled; OPTIONS afterwards: {}\n{table}",
            alive
                .as_deref()
                .map_or("no answer", |r| r.lines().next().unwrap_or(""))
        );
    }
}

/// Sends one well-formed OPTIONS from `from` to `target` and returns the first final response
/// received within 2 s (retransmitting like a UAC: after 0.5 s and 1.5 s), or `None`.
pub fn sip_options(target: SocketAddr, from: SocketAddr) -> Option<String> {
    let socket = UdpSocket::bind(from).unwrap_or_else(|e| panic!("binding {from}: {e}"));
    let nonce = std::process::id();
    let call_id = format!("lab-options-{nonce}-{}", from.port());
    let msg = format!(
        "OPTIONS sip:{t} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {from};branch=z9hG4bK-lab-options-{nonce};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:lab@{fip}>;tag=lab{nonce}\r\n\
         To: <sip:{t}>\r\n\
         Call-ID: {call_id}@{fip}\r\n\
         CSeq: 1 OPTIONS\r\n\
         Contact: <sip:lab@{from}>\r\n\
         Accept: application/sdp\r\n\
         Content-Length: 0\r\n\r\n",
        t = target,
        fip = from.ip()
    );
    let start = Instant::now();
    let resend_at = [
        Duration::ZERO,
        Duration::from_millis(500),
        Duration::from_millis(1500),
    ];
    let mut sent = 0;
    let mut buf = vec![0u8; 65_536];
    let total = Duration::from_secs(2);
    while start.elapsed() < total {
        if sent < resend_at.len() && start.elapsed() >= resend_at[sent] {
            socket
                .send_to(msg.as_bytes(), target)
                .unwrap_or_else(|e| panic!("sending OPTIONS to {target}: {e}"));
            sent += 1;
        }
        let _ = socket.set_read_timeout(Some(Duration::from_millis(50)));
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
            if text.contains(&call_id) && status_of(&text).is_some_and(|s| s >= 200) {
                return Some(text);
            }
        }
    }
    None
}

/// The ACK for a non-2xx final response to an INVITE we sent (RFC 3261 17.1.1.3): same Via,
/// From, Call-ID, the response's To (with its tag), CSeq number with method ACK.
fn ack_for(response: &str, target: SocketAddr) -> Option<String> {
    let header = |name: &str| {
        response
            .lines()
            .find(|l| {
                l.split_once(':')
                    .is_some_and(|(n, _)| n.trim().eq_ignore_ascii_case(name))
            })
            .map(|l| l.trim_end().to_owned())
    };
    let cseq_number = header("CSeq")?
        .split_once(':')?
        .1
        .split_whitespace()
        .next()?
        .to_owned();
    Some(format!(
        "ACK sip:switchboard@{target} SIP/2.0\r\n{}\r\nMax-Forwards: 70\r\n{}\r\n{}\r\n{}\r\n\
         CSeq: {cseq_number} ACK\r\nContent-Length: 0\r\n\r\n",
        header("Via")?,
        header("From")?,
        header("To")?,
        header("Call-ID")?,
    ))
}

/// The status code of a response.
fn status_of(text: &str) -> Option<u16> {
    text.strip_prefix("SIP/2.0 ")?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// Which case a response belongs to, from the `garbage-<index>-` marker in its Via branch or
/// Call-ID.
fn case_index(text: &str) -> Option<usize> {
    let at = text.find("garbage-")?;
    text[at + "garbage-".len()..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}
