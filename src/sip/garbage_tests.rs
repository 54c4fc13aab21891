//! Bad input: tens of thousands of random and mutated messages through the
//! user agent, with calls in progress. Nothing may panic, and once the
//! flood is over and the timers have run, the state must shrink back.

use std::net::SocketAddr;
use std::time::Duration;

use super::api::Command;
use super::timer::epoch;
use super::{Tokens, Transport, UserAgent};

/// Real messages of the kinds a softphone meets, matching the dialogs the
/// test sets up (Call-ID `live`, tags `b1`/our tag), so mutations reach deep.
const CORPUS: &[&str] = &[
    "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-in;rport\r\n\
Max-Forwards: 70\r\nFrom: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: fresh\r\n\
CSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.3:5060>\r\nRecord-Route: <sip:127.0.0.1;lr>\r\n\
Content-Type: application/sdp\r\nContent-Length: 150\r\n\r\n\
v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0 8 101\r\n\
a=rtpmap:101 telephone-event/8000\r\na=sendonly\r\n",
    "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=BRANCH;rport=5060\r\n\
From: <sip:alice@127.0.0.1>;tag=OURTAG\r\nTo: <sip:bob@127.0.0.1>;tag=b1\r\nCall-ID: CALLID\r\n\
CSeq: CSEQ INVITE\r\nContact: <sip:bob@127.0.0.3:5060>\r\nRecord-Route: <sip:127.0.0.1;lr>\r\n\
Content-Type: application/sdp\r\nContent-Length: 129\r\n\r\n\
v=0\r\no=- 1 2 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\nm=audio 30000 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\na=recvonly\r\n",
    "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=BRANCH\r\nFrom: <sip:alice@127.0.0.1>;tag=OURTAG\r\n\
To: <sip:bob@127.0.0.1>;tag=b2\r\nCall-ID: CALLID\r\nCSeq: CSEQ INVITE\r\nContent-Length: 0\r\n\r\n",
    "SIP/2.0 401 Unauthorized\r\nVia: SIP/2.0/UDP 127.0.0.2:5060;branch=BRANCH\r\nFrom: <sip:alice@127.0.0.1>;tag=OURTAG\r\n\
To: <sip:alice@127.0.0.1>;tag=r\r\nCall-ID: CALLID\r\nCSeq: CSEQ REGISTER\r\n\
WWW-Authenticate: Digest realm=\"lab\", nonce=\"abc\", qop=\"auth,auth-int\", algorithm=SHA-256, opaque=\"o\"\r\n\
Content-Length: 0\r\n\r\n",
    "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nv: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-bye\r\n\
f: <sip:bob@127.0.0.1>;tag=b1\r\nt: <sip:alice@127.0.0.1>;tag=OURTAG\r\ni: CALLID\r\nCSeq: 9 BYE\r\nl: 0\r\n\r\n",
    "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-re\r\n\
From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag=OURTAG\r\nCall-ID: CALLID\r\nCSeq: 7 INVITE\r\n\
Contact: <sip:bob@127.0.0.3:5060>\r\nContent-Length: 0\r\n\r\n",
    "CANCEL sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-in\r\n\
From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: ringing\r\nCSeq: 1 CANCEL\r\n\
Content-Length: 0\r\n\r\n",
    "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-ack\r\n\
From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag=OURTAG\r\nCall-ID: CALLID\r\nCSeq: 7 ACK\r\n\
Content-Length: 0\r\n\r\n",
    "OPTIONS sip:alice@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.3;branch=z9hG4bK-o\r\nFrom: <sip:x@y>;tag=1\r\n\
To: <sip:alice@127.0.0.2>\r\nCall-ID: o@h\r\nCSeq: 1 OPTIONS\r\nAccept: application/sdp\r\nContent-Length: 0\r\n\r\n",
    "REFER sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-ref\r\n\
From: <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag=OURTAG\r\nCall-ID: CALLID\r\nCSeq: 10 REFER\r\n\
Refer-To: <sip:carol@127.0.0.1?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>\r\nContent-Length: 0\r\n\r\n",
];

/// Deterministic randomness: the core's own token generator.
struct Rng(Tokens);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const NASTY: &[&[u8]] = &[
    b"\r\n",
    b"\r\n\r\n",
    b":",
    b";",
    b"<",
    b">",
    b"\"",
    b"\0",
    b"%",
    b"\xff\xfe",
    b"SIP/2.0",
    b"sip:",
    b"Content-Length: 99999999999\r\n",
    b"CSeq: 4294967296 INVITE\r\n",
    b"tag=",
    b";branch=",
    b"To: <sip:a@b>;tag=\r\n",
    b"a=sendonly\r\n",
    b"m=audio 0 RTP/AVP\r\n",
    b"c=IN IP6 ::\r\n",
];

/// One mutation of `input`: flips, cuts, splices, duplicated lines, nasty tokens.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..=rng.below(4) {
        let len = out.len().max(1);
        match rng.below(8) {
            0 => {
                let i = rng.below(len);
                if let Some(b) = out.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            1 => out.truncate(rng.below(len)),
            2 => {
                let token = NASTY[rng.below(NASTY.len())];
                let at = rng.below(len).min(out.len());
                out.splice(at..at, token.iter().copied());
            }
            3 => {
                let at = rng.below(len).min(out.len());
                let end = (at + rng.below(40)).min(out.len());
                out.drain(at..end);
            }
            4 => {
                // Duplicate a line.
                let text = String::from_utf8_lossy(&out).into_owned();
                let lines: Vec<&str> = text.split("\r\n").collect();
                let i = rng.below(lines.len());
                let mut new = lines.clone();
                new.insert(i, lines[i]);
                out = new.join("\r\n").into_bytes();
            }
            5 => {
                let other = CORPUS[rng.below(CORPUS.len())].as_bytes();
                let cut = rng.below(out.len().max(1)).min(out.len());
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            6 => {
                let i = rng.below(len).min(out.len());
                out.insert(i, (rng.next() & 0xff) as u8);
            }
            _ => {
                let digits = rng.next().to_string();
                let at = rng.below(len).min(out.len());
                out.splice(at..at, digits.bytes());
            }
        }
    }
    out
}

/// Fills the placeholders with the live dialog's values.
fn bind(template: &str, call_id: &str, our_tag: &str, branch: &str, cseq: u32) -> String {
    template
        .replace("CALLID", call_id)
        .replace("OURTAG", our_tag)
        .replace("BRANCH", branch)
        .replace("CSEQ", &cseq.to_string())
}

/// Every message sent since the last look; events and media orders are dropped.
fn sent(ua: &mut UserAgent) -> Vec<super::Transmit> {
    std::iter::from_fn(|| ua.poll_output())
        .take_while(|o| !matches!(o, super::Output::Timeout(_)))
        .filter_map(|o| match o {
            super::Output::Transmit(t) => Some(t),
            _ => None,
        })
        .collect()
}

#[test]
fn forty_thousand_mutated_and_random_messages_never_panic_and_state_stays_bounded() {
    let mut now = epoch();
    let cfg = super::ua_tests::config(true);
    let mut ua = UserAgent::new(cfg, now);
    let phone: SocketAddr = "127.0.0.3:5060".parse().expect("addr");

    // A live outgoing call (ringing) and an incoming one, so mutations hit dialogs.
    ua.command(now, Command::Dial("sip:bob@127.0.0.3".into()));
    let mut branch = String::new();
    let mut call_id = String::new();
    let mut our_tag = String::new();
    let mut cseq = 1;
    for t in sent(&mut ua) {
        let m = super::msg::Message::parse(&t.payload).expect("ours parse");
        if m.method() == super::msg::Method::Invite {
            branch = m.via.branch().unwrap_or_default().to_string();
            call_id = m.call_id.clone();
            our_tag = m.from.tag().unwrap_or_default().to_string();
            cseq = m.cseq.0;
        }
    }
    let mut rng = Rng(Tokens::new(&super::Seed::fixed(0x5eed)));
    let mut sent_back = 0usize;
    let total = 40_000;
    for i in 0..total {
        let input: Vec<u8> = if i % 10 == 0 {
            // Pure noise, sometimes printable.
            let n = rng.below(600);
            (0..n)
                .map(|_| {
                    let b = (rng.next() & 0xff) as u8;
                    if i % 20 == 0 {
                        b % 95 + 32
                    } else {
                        b
                    }
                })
                .collect()
        } else {
            let seed = CORPUS[rng.below(CORPUS.len())];
            let bound = bind(seed, &call_id, &our_tag, &branch, cseq);
            if i % 7 == 0 {
                bound.into_bytes() // intact, to move the state machines on
            } else {
                mutate(&mut rng, bound.as_bytes())
            }
        };
        let transport = if i % 3 == 0 {
            Transport::Tcp
        } else {
            Transport::Udp
        };
        ua.handle_datagram(now, transport, phone, &input);
        if i % 50 == 0 {
            let cmd = match rng.below(6) {
                0 => Command::Answer(None),
                1 => Command::Hangup(Some(1 + rng.below(2) as u8)),
                2 => Command::Hold(None),
                3 => Command::Resume(None),
                4 => Command::Line(1 + rng.below(3) as u8),
                _ => Command::Dial("sip:bob@127.0.0.3".into()),
            };
            ua.command(now, cmd);
        }
        now += Duration::from_millis(5);
        ua.handle_timeout(now);
        for t in sent(&mut ua) {
            assert!(t.payload.len() < 16_384, "no runaway message");
            sent_back += 1;
        }
        assert!(
            ua.lines.len() == 2 && ua.detached.len() <= 64,
            "calls bounded"
        );
        assert!(
            ua.servers.len() + ua.clients.len() <= 20_000,
            "transactions bounded"
        );
    }
    // Let every timer run out: transactions end, nothing lingers.
    for _ in 0..200 {
        now += Duration::from_secs(1);
        ua.handle_timeout(now);
        sent(&mut ua);
    }
    assert!(
        sent_back > 1_000,
        "the flood was answered, not just dropped"
    );
    assert!(
        ua.servers.is_empty() && ua.clients.len() <= 4,
        "transactions drain: {} server, {} client",
        ua.servers.len(),
        ua.clients.len()
    );
    assert!(ua.detached.len() <= 2, "detached calls finish");
}
