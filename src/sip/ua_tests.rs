//! The user agent on simulated time: every flow of the foundation issue,
//! with the far end played by hand-written messages.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use md5::{Digest, Md5};

use super::api::{CallState, Command, Direction, Event};
use super::media_order::{MediaOrder, Source, Stream, Tone};
use super::msg::{Message, Method};
use super::sdp::Codec;
use super::timer::{epoch, TimerValues};
use super::{AcceptFrom, Account, Output, Resolve, Transmit, Transport, UaConfig, UserAgent};

pub(super) const REGISTRAR: &str = "127.0.0.1:5060";
pub(super) const PHONE: &str = "127.0.0.3:5060";

/// A two-line account at 127.0.0.2 with a registrar at 127.0.0.1.
pub(super) fn config(register: bool) -> UaConfig {
    UaConfig {
        account: Account {
            name: "desk".into(),
            user: "alice".into(),
            domain: "127.0.0.1".into(),
            display_name: Some("Alice".into()),
            auth_user: "alice".into(),
            password: Some("secret".into()),
            registrar: "sip:127.0.0.1".into(),
            registrar_addr: Some(REGISTRAR.parse().expect("addr")),
            outbound_proxy: None,
            register,
            expires: 120,
            keepalive: None,
            accept_from: AcceptFrom::Any,
            nat: false,
            policy: crate::sip::policy::Policy::default(),
        },
        transport: Transport::Udp,
        local: "127.0.0.2:5060".parse().expect("addr"),
        media_ip: "127.0.0.2".parse().expect("ip"),
        rtp_ports: vec![40000, 40002],
        codecs: vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
        user_agent: "switchboard-test".into(),
        timers: TimerValues::default(),
        seed: super::Seed::fixed(7),
        dtmf_info: false,
        opus_bitrate: Some(24_000),
        ptime: 20,
        others: Vec::new(),
        blf: Vec::new(),
    }
}

/// A user agent and its simulated clock, with what it output not yet looked at.
pub(super) struct Bench {
    pub(super) ua: UserAgent,
    pub(super) now: Instant,
    transmits: Vec<Transmit>,
    resolves: Vec<Resolve>,
    events: Vec<Event>,
    media: Vec<MediaOrder>,
    deadline: Option<Instant>,
}

impl Bench {
    pub(super) fn new(register: bool) -> Bench {
        Bench::with_config(config(register))
    }

    /// A bench whose user agent starts with `cfg` (usually [`config`] with a change).
    pub(super) fn with_config(cfg: UaConfig) -> Bench {
        let now = epoch();
        Bench {
            ua: UserAgent::new(cfg, now),
            now,
            transmits: Vec::new(),
            resolves: Vec::new(),
            events: Vec::new(),
            media: Vec::new(),
            deadline: None,
        }
    }

    /// Takes every output of the user agent, as the driver does, until its deadline;
    /// asserts the order (messages, DNS lookups, events, media orders, then the deadline once).
    fn pump(&mut self) {
        let mut rank = 0;
        loop {
            let (this, done) = match self.ua.poll_output() {
                Some(Output::Transmit(t)) => {
                    self.transmits.push(t);
                    (0, false)
                }
                Some(Output::Resolve(r)) => {
                    self.resolves.push(r);
                    (1, false)
                }
                Some(Output::Event(e)) => {
                    self.events.push(e);
                    (2, false)
                }
                Some(Output::Media(m)) => {
                    self.media.push(m);
                    (3, false)
                }
                Some(Output::Timeout(t)) => {
                    self.deadline = Some(t);
                    (4, true)
                }
                None => {
                    self.deadline = None;
                    (4, true)
                }
            };
            assert!(
                this >= rank,
                "outputs come in order: transmits, resolves, events, media, timeout"
            );
            rank = this;
            if done {
                return;
            }
        }
    }

    /// Everything the UA sent since the last look, as it went out.
    pub(super) fn transmits(&mut self) -> Vec<Transmit> {
        self.pump();
        std::mem::take(&mut self.transmits)
    }

    /// Everything the UA sent since the last look, parsed.
    pub(super) fn sent(&mut self) -> Vec<Message> {
        self.transmits()
            .into_iter()
            .map(|t| Message::parse(&t.payload).expect("the UA sends parsable messages"))
            .collect()
    }

    /// The next DNS lookup the user agent asked for, if any.
    pub(super) fn next_resolve(&mut self) -> Option<Resolve> {
        self.pump();
        (!self.resolves.is_empty()).then(|| self.resolves.remove(0))
    }

    /// The media orders since the last look.
    pub(super) fn media_orders(&mut self) -> Vec<MediaOrder> {
        self.pump();
        std::mem::take(&mut self.media)
    }

    /// The one message sent, which must be a `method` request.
    pub(super) fn sent_request(&mut self, method: Method) -> Message {
        let sent = self.sent();
        let found: Vec<&Message> = sent
            .iter()
            .filter(|m| m.code().is_none() && m.method() == method)
            .collect();
        assert_eq!(found.len(), 1, "expected one {method}, sent: {sent:#?}");
        found[0].clone()
    }

    pub(super) fn events(&mut self) -> Vec<Event> {
        self.pump();
        std::mem::take(&mut self.events)
    }

    pub(super) fn states(&mut self) -> Vec<CallState> {
        self.events()
            .into_iter()
            .filter_map(|e| match e {
                Event::Call { state, .. } => Some(state),
                _ => None,
            })
            .collect()
    }

    pub(super) fn recv(&mut self, from: &str, text: &str) {
        let src: SocketAddr = from.parse().expect("addr");
        self.ua
            .handle_datagram(self.now, Transport::Udp, src, text.as_bytes());
    }

    pub(super) fn cmd(&mut self, c: Command) {
        self.ua.command(self.now, c);
    }

    /// Advances simulated time by `d`, running every timer on the way.
    pub(super) fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            self.pump();
            let Some(t) = self.deadline.filter(|t| *t <= end) else {
                break;
            };
            self.now = t.max(self.now);
            self.ua.handle_timeout(self.now);
        }
        self.now = end;
    }
}

/// A response to `req` as the far end writes it.
pub(super) fn reply(req: &Message, code: u16, to_tag: &str, extra: &str, sdp: &str) -> String {
    let mut s = format!("SIP/2.0 {code} Whatever\r\n");
    for via in req.headers("Via") {
        s.push_str(&format!("Via: {via}\r\n"));
    }
    let to = req.header("To").expect("To");
    let to = if to.contains("tag=") || to_tag.is_empty() {
        to.to_string()
    } else {
        format!("{to};tag={to_tag}")
    };
    s.push_str(&format!(
        "From: {}\r\nTo: {to}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n{extra}",
        req.header("From").expect("From"),
        req.call_id,
        req.cseq.0,
        req.cseq.1
    ));
    if sdp.is_empty() {
        s.push_str("Content-Length: 0\r\n\r\n");
    } else {
        s.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ));
    }
    s
}

pub(super) fn phone_sdp(dir: &str) -> String {
    format!(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\n\
         m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n\
         a=fmtp:101 0-16\r\na={dir}\r\n"
    )
}

pub(super) fn sdp_direction(msg: &Message) -> Direction {
    super::sdp::parse(msg.body.as_slice())
        .expect("SDP body")
        .direction()
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn auth_param<'a>(header: &'a str, name: &str) -> &'a str {
    let start = header
        .find(&format!("{name}="))
        .unwrap_or_else(|| panic!("{name} in {header}"))
        + name.len()
        + 1;
    let rest = &header[start..];
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest.find(['"', ',']).unwrap_or(rest.len());
    &rest[..end]
}

// ---- REGISTER ----

#[test]
fn registers_with_md5_digest_and_refreshes_before_expiry() {
    let mut b = Bench::new(true);
    let first = b.sent_request(Method::Register);
    assert_eq!(first.request_uri(), Some("sip:127.0.0.1"));
    assert!(first.header("Authorization").is_none());
    b.recv(
        REGISTRAR,
        &reply(
            &first,
            401,
            "r1",
            "WWW-Authenticate: Digest realm=\"lab\", nonce=\"abc\", qop=\"auth\", algorithm=MD5\r\n",
            "",
        ),
    );
    let second = b.sent_request(Method::Register);
    assert_eq!(second.cseq.0, first.cseq.0 + 1);
    assert_eq!(second.call_id, first.call_id);
    let auth = second
        .header("Authorization")
        .expect("Authorization")
        .to_string();
    let (nc, cnonce) = (auth_param(&auth, "nc"), auth_param(&auth, "cnonce"));
    assert_eq!(nc, "00000001");
    let ha1 = md5_hex("alice:lab:secret");
    let ha2 = md5_hex("REGISTER:sip:127.0.0.1");
    let expected = md5_hex(&format!("{ha1}:abc:{nc}:{cnonce}:auth:{ha2}"));
    assert_eq!(auth_param(&auth, "response"), expected);

    b.recv(
        REGISTRAR,
        &reply(
            &second,
            200,
            "r1",
            "Contact: <sip:alice@127.0.0.2:5060>;expires=100\r\n",
            "",
        ),
    );
    assert!(b.events().contains(&Event::Registered {
        account: "desk".into(),
        aor: "alice@127.0.0.1".into(),
        expires: 100
    }));

    b.advance(Duration::from_secs(84));
    assert!(
        b.sent().iter().all(|m| m.method() != Method::Register),
        "refresh too early"
    );
    b.advance(Duration::from_millis(1_100));
    let refresh = b.sent_request(Method::Register);
    let auth = refresh
        .header("Authorization")
        .expect("refresh reuses the nonce");
    assert_eq!(auth_param(auth, "nc"), "00000002");
}

#[test]
fn wrong_password_is_reported_once_and_retried_with_backoff() {
    let mut b = Bench::new(true);
    let challenge = "WWW-Authenticate: Digest realm=\"lab\", nonce=\"n1\"\r\n";
    let first = b.sent_request(Method::Register);
    b.recv(REGISTRAR, &reply(&first, 401, "r", challenge, ""));
    let second = b.sent_request(Method::Register);
    b.recv(REGISTRAR, &reply(&second, 401, "r", challenge, ""));
    assert!(b.sent().is_empty(), "no loop on refused credentials");
    let failed: Vec<Event> = b
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::RegistrationFailed { .. }))
        .collect();
    assert_eq!(
        failed,
        vec![Event::RegistrationFailed {
            account: "desk".into(),
            aor: "alice@127.0.0.1".into(),
            status: Some(401),
            reason: "authentication failed: check the user name and password".into(),
            retry_in: 5,
        }]
    );
    b.advance(Duration::from_secs(6)); // 5 s and up to a fifth more of jitter
    let retry = b
        .sent()
        .into_iter()
        .find(|m| m.method() == Method::Register)
        .expect("the retry (and maybe its retransmission)");
    b.recv(REGISTRAR, &reply(&retry, 503, "r", "", ""));
    let retry_in: Vec<u64> = b
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::RegistrationFailed { retry_in, .. } => Some(retry_in),
            _ => None,
        })
        .collect();
    assert!(
        retry_in.len() == 1 && (10..12).contains(&retry_in[0]),
        "{retry_in:?}"
    );
}

#[test]
fn stale_nonce_is_answered_again_without_a_failure() {
    let mut b = Bench::new(true);
    let first = b.sent_request(Method::Register);
    b.recv(
        REGISTRAR,
        &reply(
            &first,
            401,
            "r",
            "WWW-Authenticate: Digest realm=\"lab\", nonce=\"n1\", qop=auth\r\n",
            "",
        ),
    );
    let second = b.sent_request(Method::Register);
    b.recv(
        REGISTRAR,
        &reply(
            &second,
            401,
            "r",
            "WWW-Authenticate: Digest realm=\"lab\", nonce=\"n2\", qop=auth, stale=true\r\n",
            "",
        ),
    );
    let third = b.sent_request(Method::Register);
    let auth = third.header("Authorization").expect("Authorization");
    assert_eq!(auth_param(auth, "nonce"), "n2");
    assert!(!b
        .events()
        .iter()
        .any(|e| matches!(e, Event::RegistrationFailed { .. })));
}

#[test]
fn silent_registrar_times_out_after_64_t1_and_backs_off_exponentially() {
    let mut b = Bench::new(true);
    // Sent at 0 s, Timer F at 32 s, retries at 37 s, 79 s, 131 s, failures at 69 s, 111 s, 163 s.
    b.advance(Duration::from_millis(31_900));
    let sent = b.sent();
    assert!(sent.len() > 5, "REGISTER is retransmitted (Timer E)");
    assert!(sent
        .iter()
        .all(|m| m.method() == Method::Register && m.via.branch() == sent[0].via.branch()));
    assert!(b.events().is_empty());
    b.advance(Duration::from_secs(140));
    let mut retries = Vec::new();
    for e in b.events() {
        if let Event::RegistrationFailed {
            status: None,
            retry_in,
            reason,
            ..
        } = e
        {
            assert_eq!(reason, "the registrar did not answer");
            retries.push(retry_in);
        }
    }
    // Doubling, each with up to a fifth more of jitter (whole seconds shown).
    assert_eq!(retries.len(), 4, "{retries:?}");
    for (retry, base) in retries.iter().zip([5, 10, 20, 40]) {
        assert!((base..base + base / 5).contains(retry), "{retries:?}");
    }
}

#[test]
fn quit_unregisters_with_expires_zero_then_stops() {
    let mut b = Bench::new(true);
    let first = b.sent_request(Method::Register);
    b.recv(REGISTRAR, &reply(&first, 200, "r", "Expires: 120\r\n", ""));
    b.events();
    b.cmd(Command::Quit);
    let un = b.sent_request(Method::Register);
    assert_eq!(un.header("Expires"), Some("0"));
    assert!(!b.ua.is_stopped());
    b.recv(REGISTRAR, &reply(&un, 200, "r", "", ""));
    assert!(b.ua.is_stopped());
    let events = b.events();
    assert!(events.contains(&Event::Unregistered {
        account: "desk".into(),
        aor: "alice@127.0.0.1".into(),
    }));
    assert_eq!(events.last(), Some(&Event::Stopped));
}

// ---- outgoing calls ----

/// Dials bob, lets him ring and answer; returns the INVITE and the 200.
pub(super) fn connected_call(b: &mut Bench) -> (Message, String) {
    b.cmd(Command::Dial("bob".into()));
    let invite = b.sent_request(Method::Invite);
    assert_eq!(invite.request_uri(), Some("sip:bob@127.0.0.1"));
    assert_eq!(sdp_direction(&invite), Direction::SendRecv);
    b.recv(PHONE, &reply(&invite, 100, "", "", ""));
    b.recv(PHONE, &reply(&invite, 180, "bobtag", "", ""));
    let ok = reply(
        &invite,
        200,
        "bobtag",
        "Contact: <sip:bob@127.0.0.3:5060>\r\n",
        &phone_sdp("sendrecv"),
    );
    b.recv(PHONE, &ok);
    (invite, ok)
}

#[test]
fn outgoing_call_rings_connects_acks_and_negotiates_pcmu() {
    let mut b = Bench::new(false);
    let (invite, ok) = connected_call(&mut b);
    let ack = b.sent_request(Method::Ack);
    assert_eq!(ack.cseq, (invite.cseq.0, Method::Ack));
    assert_eq!(ack.request_uri(), Some("sip:bob@127.0.0.3:5060"));
    assert_eq!(ack.to.tag(), Some("bobtag"));
    assert_ne!(
        ack.via.branch(),
        invite.via.branch(),
        "a 2xx ACK is a new transaction"
    );
    let events = b.events();
    let states: Vec<CallState> = events
        .iter()
        .filter_map(|e| match e {
            Event::Call { state, .. } => Some(*state),
            _ => None,
        })
        .collect();
    assert_eq!(
        states,
        vec![CallState::Dialing, CallState::Ringing, CallState::Connected]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Media { codec, payload_type: 0, remote, dtmf_payload_type: Some(101), direction: Direction::SendRecv, .. }
            if codec == "PCMU" && remote == "127.0.0.3:30000"
    )));
    // A retransmitted 200 is ACKed again.
    b.recv(PHONE, &ok);
    b.sent_request(Method::Ack);
}

#[test]
fn hold_and_resume_by_reinvite() {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    b.sent();
    b.events();
    b.cmd(Command::Hold(None));
    let hold = b.sent_request(Method::Invite);
    assert_eq!(sdp_direction(&hold), Direction::SendOnly);
    assert_eq!(hold.to.tag(), Some("bobtag"));
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.sent_request(Method::Ack);
    assert_eq!(b.states(), vec![CallState::Held]);

    b.cmd(Command::Resume(None));
    let resume = b.sent_request(Method::Invite);
    assert_eq!(sdp_direction(&resume), Direction::SendRecv);
    assert!(resume.cseq.0 > hold.cseq.0);
    b.recv(PHONE, &reply(&resume, 200, "", "", &phone_sdp("sendrecv")));
    b.sent_request(Method::Ack);
    assert_eq!(b.states(), vec![CallState::Connected]);

    b.cmd(Command::Hangup(None));
    let bye = b.sent_request(Method::Bye);
    assert_eq!(b.states(), vec![CallState::Ended]);
    b.recv(PHONE, &reply(&bye, 200, "", "", ""));
}

#[test]
fn glare_491_retries_the_hold_after_2_1_to_4_seconds() {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    b.sent();
    b.cmd(Command::Hold(None));
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 491, "", "", ""));
    let sent = b.sent();
    assert!(
        sent.iter().all(|m| m.method() == Method::Ack),
        "only the 491's ACK"
    );
    b.advance(Duration::from_millis(2_099));
    assert!(b.sent().is_empty(), "no retry before 2.1 s");
    b.advance(Duration::from_millis(1_902));
    let retries = b.sent();
    assert!(!retries.is_empty(), "a retry by 4 s");
    for retry in &retries {
        assert_eq!(retry.method(), Method::Invite);
        assert_eq!(
            retry.via.branch(),
            retries[0].via.branch(),
            "one retry (and its retransmissions)"
        );
        assert_eq!(sdp_direction(retry), Direction::SendOnly);
    }
}

#[test]
fn peer_hold_shows_remote_held_and_we_answer_recvonly() {
    let mut b = Bench::new(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.events();
    let reinvite = format!(
        "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKre1\r\n\
         From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: {};tag={}\r\nCall-ID: {}\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:bob@127.0.0.3:5060>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{}",
        invite.header("From").expect("From").split(";tag=").next().expect("uri"),
        invite.from.tag().expect("tag"),
        invite.call_id,
        phone_sdp("sendonly").len(),
        phone_sdp("sendonly")
    );
    b.recv(PHONE, &reinvite);
    let sent = b.sent();
    let ok = sent
        .iter()
        .find(|m| m.code() == Some(200))
        .expect("200 to the re-INVITE");
    assert_eq!(sdp_direction(ok), Direction::RecvOnly);
    assert_eq!(b.states(), vec![CallState::RemoteHeld]);
    // Our hold now offers inactive.
    let re = Message::parse(reinvite.as_bytes()).expect("parses");
    let ack = format!(
        "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKack\r\n\
         From: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
        re.header("From").expect("From"),
        ok.header("To").expect("To"),
        re.call_id
    );
    b.recv(PHONE, &ack);
    b.cmd(Command::Hold(None));
    assert_eq!(
        sdp_direction(&b.sent_request(Method::Invite)),
        Direction::Inactive
    );
}

#[test]
fn hangup_while_ringing_cancels_and_the_487_is_acked() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("sip:bob@127.0.0.3".into()));
    let invite = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&invite, 180, "bobtag", "", ""));
    b.cmd(Command::Hangup(None));
    let cancel = b.sent_request(Method::Cancel);
    assert_eq!(cancel.via.branch(), invite.via.branch());
    assert_eq!(cancel.cseq, (invite.cseq.0, Method::Cancel));
    assert_eq!(cancel.to.tag(), None);
    b.recv(PHONE, &reply(&cancel, 200, "bobtag", "", ""));
    b.recv(PHONE, &reply(&invite, 487, "bobtag", "", ""));
    let ack = b.sent_request(Method::Ack);
    assert_eq!(
        ack.via.branch(),
        invite.via.branch(),
        "non-2xx ACK: same transaction"
    );
    // The line is free again at once.
    b.cmd(Command::Dial("sip:carol@127.0.0.3".into()));
    b.sent_request(Method::Invite);
}

#[test]
fn hangup_before_any_answer_waits_for_a_provisional_then_cancels() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("sip:bob@127.0.0.3".into()));
    let invite = b.sent_request(Method::Invite);
    b.cmd(Command::Hangup(None));
    assert!(b.sent().is_empty(), "no CANCEL before a provisional (§9.1)");
    assert_eq!(b.states(), vec![CallState::Dialing, CallState::Ended]);
    b.recv(PHONE, &reply(&invite, 180, "t", "", ""));
    b.sent_request(Method::Cancel);
}

#[test]
fn a_2xx_crossing_our_cancel_is_acked_and_byed() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("sip:bob@127.0.0.3".into()));
    let invite = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&invite, 180, "t", "", ""));
    b.cmd(Command::Hangup(None));
    b.sent_request(Method::Cancel);
    b.recv(
        PHONE,
        &reply(
            &invite,
            200,
            "t",
            "Contact: <sip:bob@127.0.0.3>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    let sent = b.sent();
    let methods: Vec<Method> = sent.iter().map(Message::method).collect();
    assert_eq!(methods, vec![Method::Ack, Method::Bye]);
}

#[test]
fn busy_and_unknown_failures_end_the_call_in_plain_words() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("sip:bob@127.0.0.3".into()));
    let invite = b.sent_request(Method::Invite);
    b.events();
    b.recv(PHONE, &reply(&invite, 486, "t", "", ""));
    b.sent_request(Method::Ack);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Call { state: CallState::Ended, status: Some(486), reason: Some(r), .. } if r == "the far end is busy"
    )));
}

#[test]
fn invite_challenge_is_answered_once_with_proxy_authorization() {
    let mut b = Bench::new(true);
    b.sent();
    b.cmd(Command::Dial("bob".into()));
    let invite = b.sent_request(Method::Invite);
    b.recv(
        REGISTRAR,
        &reply(
            &invite,
            407,
            "p",
            "Proxy-Authenticate: Digest realm=\"lab\", nonce=\"x\", qop=\"auth\"\r\n",
            "",
        ),
    );
    let sent = b.sent();
    assert!(sent.iter().any(|m| m.method() == Method::Ack));
    let retry = sent
        .iter()
        .find(|m| m.method() == Method::Invite)
        .expect("INVITE with credentials");
    assert_eq!(retry.cseq.0, invite.cseq.0 + 1);
    assert_eq!(retry.from.tag(), invite.from.tag());
    assert!(retry.header("Proxy-Authorization").is_some());
    b.recv(
        REGISTRAR,
        &reply(
            retry,
            407,
            "p",
            "Proxy-Authenticate: Digest realm=\"lab\", nonce=\"y\"\r\n",
            "",
        ),
    );
    assert!(
        b.sent().iter().all(|m| m.method() == Method::Ack),
        "no second retry"
    );
}

#[test]
fn a_call_through_a_trunk_uses_its_identity_proxy_and_credentials() {
    let mut cfg = config(true);
    let trunk_proxy: std::net::SocketAddr = "127.0.0.9:5080".parse().expect("addr");
    cfg.others.push(Account {
        name: "carrier".into(),
        user: "4420".into(),
        domain: "carrier.test".into(),
        display_name: Some("Reception".into()),
        auth_user: "acct4420".into(),
        password: Some("trunkpw".into()),
        registrar: "sip:carrier.test".into(),
        registrar_addr: None,
        outbound_proxy: Some(("sip:127.0.0.9:5080".into(), trunk_proxy)),
        register: false,
        expires: 600,
        keepalive: None,
        accept_from: AcceptFrom::Any,
        nat: false,
        policy: crate::sip::policy::Policy::default(),
    });
    let mut b = Bench::with_config(cfg);
    b.sent();
    b.cmd(Command::DialVia {
        account: "carrier".into(),
        target: "+3581234".into(),
    });
    let wire = b
        .transmits()
        .into_iter()
        .next()
        .expect("the INVITE goes out");
    assert_eq!(wire.dst, trunk_proxy, "through the trunk's proxy");
    let invite = Message::parse(&wire.payload).expect("parsable");
    assert_eq!(invite.request_uri(), Some("sip:+3581234@carrier.test"));
    assert_eq!(
        invite
            .header("From")
            .map(|f| f.split(';').next().unwrap_or_default()),
        Some("\"Reception\" <sip:4420@carrier.test>")
    );
    assert_eq!(invite.header("Route"), Some("<sip:127.0.0.9:5080;lr>"));
    b.recv(
        "127.0.0.9:5080",
        &reply(
            &invite,
            407,
            "p",
            "Proxy-Authenticate: Digest realm=\"carrier\", nonce=\"n\"\r\n",
            "",
        ),
    );
    let retry = b
        .sent()
        .into_iter()
        .find(|m| m.method() == Method::Invite)
        .expect("INVITE with the trunk's credentials");
    let auth = retry.header("Proxy-Authorization").expect("credentials");
    assert!(auth.contains("username=\"acct4420\""), "{auth}");

    b.cmd(Command::DialVia {
        account: "nobody".into(),
        target: "1".into(),
    });
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Error { message } if message == "there is no account `nobody` to call through"
    )));
}

// ---- incoming calls ----

#[test]
fn a_merged_invite_gets_482_and_nothing_lingers() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("merged", "z9hG4bKm1"));
    b.sent();
    // The same INVITE forked back to us by another path: another branch (§8.2.2.2).
    b.recv(PHONE, &incoming_invite("merged", "z9hG4bKm2"));
    let codes: Vec<u16> = b.sent().iter().filter_map(Message::code).collect();
    assert_eq!(codes, [100, 482]);
    b.cmd(Command::Answer(None));
    assert_eq!(b.sent()[0].code(), Some(200));
    // The first INVITE retransmitted after our 2xx: the 2xx again, and no new transaction.
    b.recv(PHONE, &incoming_invite("merged", "z9hG4bKm1"));
    let codes: Vec<u16> = b.sent().iter().filter_map(Message::code).collect();
    assert!(codes.ends_with(&[200]), "{codes:?}");
    b.advance(Duration::from_secs(40));
    assert!(b.ua.servers.is_empty(), "no transaction lingers");
}

#[test]
fn a_bye_while_ringing_ends_the_call_and_answers_its_invite_487() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("in-bye", "z9hG4bKib"));
    let ringing = b.sent().pop().expect("180");
    let tag = ringing.to.tag().expect("our tag").to_owned();
    b.recv(
        PHONE,
        &format!(
            "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKib2\r\n\
             Max-Forwards: 70\r\nFrom: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\n\
             To: <sip:alice@127.0.0.1>;tag={tag}\r\nCall-ID: in-bye\r\nCSeq: 2 BYE\r\n\
             Content-Length: 0\r\n\r\n"
        ),
    );
    let answers: Vec<(u16, Method)> = b
        .sent()
        .iter()
        .filter_map(|m| m.code().map(|c| (c, m.cseq.1)))
        .collect();
    assert_eq!(answers, [(200, Method::Bye), (487, Method::Invite)]);
    assert!(b.states().contains(&CallState::Ended));
    b.advance(Duration::from_secs(40));
    assert!(b.ua.servers.is_empty(), "no transaction lingers");
}

pub(super) fn incoming_invite(call_id: &str, branch: &str) -> String {
    let sdp = phone_sdp("sendrecv");
    format!(
        "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch={branch};rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\n\
         Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@127.0.0.3:5060>\r\n\
         Record-Route: <sip:127.0.0.1;lr>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

#[test]
fn incoming_call_rings_is_answered_and_2xx_is_resent_until_ack() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("in1", "z9hG4bKi1"));
    let sent = b.sent();
    let codes: Vec<u16> = sent.iter().filter_map(Message::code).collect();
    assert_eq!(codes, vec![100, 180]);
    let ringing = &sent[1];
    let tag = ringing.to.tag().expect("180 has our To tag").to_string();
    assert_eq!(ringing.header("Record-Route"), Some("<sip:127.0.0.1;lr>"));
    assert!(b.events().contains(&Event::Incoming {
        line: 1,
        call_id: "in1".into(),
        from: "sip:bob@127.0.0.1".into(),
        display_name: Some("Bob".into()),
        referred_by: None,
        replaces: None,
        account: "desk".into(),
    }));
    b.cmd(Command::Answer(None));
    let ok = b.sent();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].code(), Some(200));
    assert_eq!(ok[0].to.tag(), Some(tag.as_str()));
    assert_eq!(sdp_direction(&ok[0]), Direction::SendRecv);
    assert_eq!(b.states(), vec![CallState::Connected]);
    // No ACK: resent at 0.5 s, 1.5 s, 3.5 s …
    b.advance(Duration::from_millis(3_600));
    assert_eq!(b.sent().iter().filter(|m| m.code() == Some(200)).count(), 3);
    let ack = format!(
        "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKa1\r\n\
         From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
         Call-ID: in1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
    );
    b.recv(PHONE, &ack);
    b.advance(Duration::from_secs(10));
    assert!(b.sent().is_empty(), "the ACK stops the resending");
    let bye = format!(
        "BYE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKb1\r\n\
         From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
         Call-ID: in1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
    );
    b.recv(PHONE, &bye);
    assert_eq!(b.sent()[0].code(), Some(200));
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Call { state: CallState::Ended, reason: Some(r), .. } if r == "the far end hung up"
    )));
}

#[test]
fn a_third_call_gets_486_and_decline_sends_603() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("c1", "z9hG4bK1"));
    b.recv(PHONE, &incoming_invite("c2", "z9hG4bK2"));
    b.sent();
    b.recv(PHONE, &incoming_invite("c3", "z9hG4bK3"));
    let codes: Vec<u16> = b.sent().iter().filter_map(Message::code).collect();
    assert_eq!(codes, vec![100, 486]);
    b.cmd(Command::Decline(Some(2)));
    let codes: Vec<u16> = b.sent().iter().filter_map(Message::code).collect();
    assert_eq!(codes, vec![603]);
}

#[test]
fn caller_cancel_gets_200_and_487() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("c1", "z9hG4bKc"));
    b.sent();
    b.recv(
        PHONE,
        "CANCEL sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKc\r\n\
         From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>\r\nCall-ID: c1\r\n\
         CSeq: 1 CANCEL\r\nContent-Length: 0\r\n\r\n",
    );
    let sent = b.sent();
    let codes: Vec<(u16, Method)> = sent
        .iter()
        .map(|m| (m.code().unwrap_or(0), m.cseq.1))
        .collect();
    assert_eq!(codes, vec![(200, Method::Cancel), (487, Method::Invite)]);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Call { state: CallState::Ended, reason: Some(r), .. } if r == "the caller hung up"
    )));
}

#[test]
fn answering_line_2_holds_the_call_on_line_1() {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    b.sent();
    b.recv(PHONE, &incoming_invite("c2", "z9hG4bK2"));
    assert!(b
        .events()
        .iter()
        .any(|e| matches!(e, Event::Incoming { line: 2, .. })));
    b.sent();
    b.cmd(Command::Answer(Some(2)));
    let sent = b.sent();
    let hold = sent
        .iter()
        .find(|m| m.method() == Method::Invite && m.code().is_none())
        .expect("re-INVITE holding line 1");
    assert_eq!(sdp_direction(hold), Direction::SendOnly);
    assert!(sent.iter().any(|m| m.code() == Some(200)));
    assert!(b.events().contains(&Event::Line { line: 2 }));
}

#[test]
fn a_call_answered_but_not_yet_acked_is_held_when_the_ack_comes() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("in1", "z9hG4bKi1"));
    b.sent();
    b.cmd(Command::Answer(None));
    let ok = b.sent();
    let tag = ok[0].to.tag().expect("our To tag").to_string();
    // The operator calls someone else at once: no re-INVITE may go before the ACK.
    b.cmd(Command::Dial("carol".into()));
    let sent = b.sent();
    assert!(
        sent.iter()
            .all(|m| m.method() != Method::Invite || m.call_id != "in1"),
        "a re-INVITE before the ACK: {sent:#?}"
    );
    b.recv(
        PHONE,
        &format!(
            "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKa1\r\n\
             From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: <sip:alice@127.0.0.1>;tag={tag}\r\n\
             Call-ID: in1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    let hold = b.sent_request(Method::Invite);
    assert_eq!(hold.call_id, "in1");
    assert_eq!(
        sdp_direction(&hold),
        Direction::SendOnly,
        "the caller is held"
    );
}

#[test]
fn requests_outside_any_dialog_get_481_and_options_200() {
    let mut b = Bench::new(false);
    b.recv(
        PHONE,
        "BYE sip:alice@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKx\r\n\
         From: <sip:bob@x>;tag=1\r\nTo: <sip:alice@y>;tag=2\r\nCall-ID: nope\r\nCSeq: 5 BYE\r\n\r\n",
    );
    assert_eq!(b.sent()[0].code(), Some(481));
    b.recv(
        PHONE,
        "OPTIONS sip:alice@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKo\r\n\
         From: <sip:bob@x>;tag=1\r\nTo: <sip:alice@y>\r\nCall-ID: o\r\nCSeq: 1 OPTIONS\r\n\r\n",
    );
    let ok = &b.sent()[0];
    assert_eq!(ok.code(), Some(200));
    assert!(ok.has_token("Allow", "REFER"));
    assert!(ok.has_token("Supported", "replaces"));
}

#[test]
fn malformed_request_with_echoable_headers_gets_400() {
    let mut b = Bench::new(false);
    b.recv(
        PHONE,
        "INVITE sip:alice@127.0.0.2 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3;branch=z9hG4bKm\r\n\
         From: <sip:bob@x>;tag=1\r\nTo: <sip:alice@y>\r\nCall-ID: m\r\nCSeq: 1 INVITE\r\n\
         Content-Length: 500\r\n\r\nshort",
    );
    let sent = b.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].code(), Some(400));
}

#[test]
fn selecting_the_other_line_holds_and_coming_back_resumes() {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    b.sent();
    b.cmd(Command::Line(2));
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    b.sent();
    b.cmd(Command::Swap);
    let resume = b.sent_request(Method::Invite);
    assert_eq!(sdp_direction(&resume), Direction::SendRecv);
}

#[test]
fn early_media_183_shows_early_with_media_then_connects() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("sip:bob@127.0.0.3".into()));
    let invite = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&invite, 183, "t", "", &phone_sdp("sendrecv")));
    let events = b.events();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::Call {
            state: CallState::Early,
            ..
        }
    )));
    assert!(events
        .iter()
        .any(|e| matches!(e, Event::Media { codec, .. } if codec == "PCMU")));
    b.recv(
        PHONE,
        &reply(&invite, 200, "t", "Contact: <sip:bob@127.0.0.3>\r\n", ""),
    );
    b.sent_request(Method::Ack);
    assert_eq!(
        b.states(),
        vec![CallState::Connected],
        "the 183's answer stands"
    );
}

#[test]
fn answered_call_without_ack_is_ended_with_bye_after_64_t1() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("noack", "z9hG4bKn"));
    b.cmd(Command::Answer(None));
    b.sent();
    b.events();
    b.advance(Duration::from_millis(31_900));
    assert!(
        b.sent().iter().all(|m| m.code() == Some(200)),
        "only 2xx resends"
    );
    b.advance(Duration::from_millis(200));
    b.sent_request(Method::Bye);
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Call { state: CallState::Ended, reason: Some(r), .. } if r.contains("no ACK")
    )));
}

// ---- media orders, mute, DTMF ----

fn orders(b: &mut Bench) -> Vec<MediaOrder> {
    b.media_orders()
}

#[test]
fn media_orders_follow_ringback_answer_hold_and_hangup() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dial("sip:bob@127.0.0.3".into()));
    let invite = b.sent_request(Method::Invite);
    assert!(orders(&mut b).is_empty(), "nothing to play while dialing");
    b.recv(PHONE, &reply(&invite, 180, "t", "", ""));
    assert!(matches!(
        &orders(&mut b)[..],
        [MediaOrder::Line {
            line: 1,
            stream: None,
            tone: Some(Tone::Ringback),
            ..
        }]
    ));
    b.recv(
        PHONE,
        &reply(
            &invite,
            200,
            "t",
            "Contact: <sip:bob@127.0.0.3>\r\n",
            &phone_sdp("sendrecv"),
        ),
    );
    let got = orders(&mut b);
    let [MediaOrder::Line {
        stream: Some(stream),
        tone: None,
        ..
    }] = &got[..]
    else {
        panic!("one order with a stream: {got:?}");
    };
    assert_eq!(stream.codec, Codec::Pcmu);
    assert_eq!(stream.remote, "127.0.0.3:30000".parse().expect("addr"));
    assert_eq!(stream.source, Source::Microphone);
    assert_eq!(stream.dtmf_payload_type, Some(101));
    b.sent();
    b.cmd(Command::Hold(None));
    let hold = b.sent_request(Method::Invite);
    b.recv(PHONE, &reply(&hold, 200, "", "", &phone_sdp("recvonly")));
    let got = orders(&mut b);
    assert!(
        got.iter().any(|o| matches!(
            o,
            MediaOrder::Line {
                stream: Some(Stream {
                    source: Source::MusicOnHold,
                    direction: Direction::SendOnly,
                    ..
                }),
                ..
            }
        )),
        "{got:?}"
    );
    b.cmd(Command::Hangup(None));
    assert!(matches!(
        &orders(&mut b)[..],
        [MediaOrder::Line {
            stream: None,
            tone: None,
            ..
        }]
    ));
}

#[test]
fn incoming_call_rings_the_ring_device_until_answered() {
    let mut b = Bench::new(false);
    b.recv(PHONE, &incoming_invite("r1", "z9hG4bKr"));
    assert!(matches!(
        &orders(&mut b)[..],
        [MediaOrder::Line {
            tone: Some(Tone::Ring),
            ..
        }]
    ));
    b.cmd(Command::Answer(None));
    assert!(matches!(
        &orders(&mut b)[..],
        [MediaOrder::Line {
            tone: None,
            stream: Some(_),
            ..
        }]
    ));
}

#[test]
fn mute_toggles_the_stream_and_tells_the_operator() {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    b.events();
    orders(&mut b);
    b.cmd(Command::Mute);
    assert!(matches!(
        &b.events()[..],
        [Event::Mute {
            line: 1,
            muted: true,
            ..
        }]
    ));
    assert!(matches!(
        &orders(&mut b)[..],
        [MediaOrder::Line {
            stream: Some(Stream { muted: true, .. }),
            ..
        }]
    ));
    b.cmd(Command::Mute);
    assert!(matches!(
        &b.events()[..],
        [Event::Mute { muted: false, .. }]
    ));
}

#[test]
fn dtmf_goes_to_the_engine_as_rfc4733_and_bad_digits_are_refused() {
    let mut b = Bench::new(false);
    b.cmd(Command::Dtmf("1".into()));
    assert!(
        matches!(&b.events()[..], [Event::Error { message }] if message.contains("no connected call"))
    );
    connected_call(&mut b);
    orders(&mut b);
    b.events();
    b.cmd(Command::Dtmf("*1 00#".into()));
    assert_eq!(
        orders(&mut b),
        vec![MediaOrder::Dtmf {
            line: 1,
            digits: "*100#".into()
        }]
    );
    b.cmd(Command::Dtmf("12x".into()));
    assert!(matches!(&b.events()[..], [Event::Error { message }] if message.contains("'X'")));
}

#[test]
fn dtmf_as_sip_info_goes_one_digit_per_request_and_received_info_is_an_event() {
    let mut cfg = config(false);
    cfg.dtmf_info = true;
    let mut b = Bench::with_config(cfg);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.cmd(Command::Dtmf("12".into()));
    let info = b.sent_request(Method::Info);
    assert_eq!(info.header("Content-Type"), Some("application/dtmf-relay"));
    assert!(info
        .body_text()
        .is_some_and(|t| t.starts_with("Signal=1\r\n")));
    b.recv(PHONE, &reply(&info, 200, "", "", ""));
    let second = b.sent_request(Method::Info);
    assert!(second
        .body_text()
        .is_some_and(|t| t.starts_with("Signal=2")));
    b.recv(
        PHONE,
        &format!(
            "INFO sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bKinfo\r\n\
             From: <sip:bob@127.0.0.1>;tag=bobtag\r\nTo: <sip:bob@127.0.0.1>;tag={}\r\nCall-ID: {}\r\n\
             CSeq: 5 INFO\r\nContent-Type: application/dtmf-relay\r\nContent-Length: 24\r\n\r\nSignal=#\r\nDuration=100\r\n",
            invite.from.tag().expect("tag"),
            invite.call_id
        ),
    );
    assert_eq!(b.sent()[0].code(), Some(200));
    assert!(b.events().iter().any(|e| matches!(
        e,
        Event::Dtmf {
            digit: '#',
            line: 1,
            ..
        }
    )));
}

#[test]
fn tokens_from_two_os_seeds_share_nothing() {
    // What the network sees of one run (Call-ID, tag, branch, cnonce) tells nothing of another.
    let tokens = |seed: [u8; 32]| {
        let mut cfg = config(true);
        cfg.seed = super::Seed(seed);
        let mut b = Bench::with_config(cfg);
        let register = b.sent_request(Method::Register);
        b.recv(
            REGISTRAR,
            &reply(
                &register,
                401,
                "r",
                "WWW-Authenticate: Digest realm=\"lab\", nonce=\"n1\", qop=\"auth\"\r\n",
                "",
            ),
        );
        let again = b.sent_request(Method::Register);
        let cnonce = again
            .header("Authorization")
            .and_then(|a| a.split("cnonce=\"").nth(1))
            .and_then(|c| c.split('"').next())
            .expect("cnonce")
            .to_owned();
        let branch = |m: &Message| {
            m.via
                .branch()
                .expect("branch")
                .trim_start_matches("z9hG4bK")
                .to_owned()
        };
        vec![
            register.call_id.clone(),
            register.from.tag().expect("tag").to_owned(),
            branch(&register),
            branch(&again),
            cnonce,
        ]
    };
    let (a, b) = (tokens(rand::random()), tokens(rand::random()));
    for x in &a {
        for y in &b {
            let (x, y) = (
                x.trim_end_matches("@switchboard"),
                y.trim_end_matches("@switchboard"),
            );
            let shared = (0..x.len().saturating_sub(7))
                .any(|i| x.get(i..i + 8).is_some_and(|part| y.contains(part)));
            assert!(!shared, "{x} and {y} share 8 characters");
        }
    }
    assert_eq!(
        tokens([7; 32]),
        tokens([7; 32]),
        "a fixed seed repeats itself"
    );
}

#[test]
fn a_re_invite_answered_but_never_acked_leaves_the_call_up() {
    let mut b = Bench::new(false);
    let (invite, _) = connected_call(&mut b);
    b.sent();
    b.events();
    let sdp = phone_sdp("sendonly");
    let hold = format!(
        "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\nVia: SIP/2.0/UDP {PHONE};branch=z9hG4bKreinv\r\n\
         Max-Forwards: 70\r\nFrom: <sip:bob@127.0.0.1>;tag=bobtag\r\n\
         To: \"Alice\" <sip:alice@127.0.0.1>;tag={}\r\nCall-ID: {}\r\nCSeq: 7 INVITE\r\n\
         Contact: <sip:bob@127.0.0.3:5060>\r\nContent-Type: application/sdp\r\n\
         Content-Length: {}\r\n\r\n{sdp}",
        invite.from.tag().expect("our tag"),
        invite.call_id,
        sdp.len()
    );
    b.recv(PHONE, &hold);
    assert!(b.sent().iter().any(|m| m.code() == Some(200)));
    // Every ACK is lost: the 2xx is resent until 64·T1, then the call simply goes on.
    b.advance(Duration::from_secs(40));
    let sent = b.sent();
    assert!(sent.iter().all(|m| m.code() == Some(200)), "{sent:#?}");
    assert!(!b.states().contains(&CallState::Ended));
    assert!(b.ua.lines[0].as_ref().is_some_and(|c| c.is_established()));
}

// ---- the output queue ----

#[test]
fn poll_output_drains_transmits_events_media_then_the_deadline_and_leaves_nothing() {
    let idle = UserAgent::new(config(false), epoch());
    assert_eq!(
        idle.clone().poll_output(),
        None,
        "nothing queued and no deadline"
    );
    let mut b = Bench::new(true); // the REGISTER in flight has a deadline
                                  // The 200 that connects the call queues an ACK, call and media events and media orders.
    connected_call(&mut b);
    let mut kinds = Vec::new();
    let deadline = loop {
        match b.ua.poll_output() {
            Some(Output::Transmit(_)) => kinds.push(0),
            Some(Output::Resolve(_)) => kinds.push(1),
            Some(Output::Event(_)) => kinds.push(2),
            Some(Output::Media(_)) => kinds.push(3),
            Some(Output::Timeout(t)) => break t,
            None => panic!("a REGISTER in flight has a deadline"),
        }
    };
    assert!(
        kinds.windows(2).all(|w| w[0] <= w[1]),
        "transmits, then events, then media orders: {kinds:?}"
    );
    for kind in [0, 2, 3] {
        assert!(kinds.contains(&kind), "{kinds:?}");
    }
    assert!(deadline >= b.now);
    // Nothing is left behind the deadline: asking again gives it again, at once.
    assert_eq!(b.ua.poll_output(), Some(Output::Timeout(deadline)));
    assert!(b.ua.transmits.is_empty() && b.ua.events.is_empty() && b.ua.media_orders.is_empty());
}

#[test]
fn a_2xx_after_a_491_to_the_same_reinvite_is_still_acked() {
    let mut b = Bench::new(false);
    connected_call(&mut b);
    b.sent();
    b.cmd(Command::Hold(None));
    b.advance(Duration::from_millis(600));
    let hold = b
        .sent()
        .into_iter()
        .find(|m| m.code().is_none() && m.method() == Method::Invite)
        .expect("the hold re-INVITE");
    b.recv(PHONE, &reply(&hold, 491, "bobtag", "", ""));
    let acks = |sent: &[Message]| {
        sent.iter()
            .filter(|m| m.method() == Method::Ack && m.cseq.0 == hold.cseq.0)
            .count()
    };
    assert_eq!(acks(&b.sent()), 1, "the 491 is ACKed by the transaction");
    // The far end, which saw the re-INVITE twice through a relay, also answered it 200.
    let ok = reply(&hold, 200, "bobtag", "", &phone_sdp("recvonly"));
    b.recv(PHONE, &ok);
    let sent = b.sent();
    let ack = sent
        .iter()
        .find(|m| m.method() == Method::Ack && m.cseq.0 == hold.cseq.0)
        .unwrap_or_else(|| panic!("the 2xx was not ACKed: {sent:#?}"));
    assert_eq!(ack.to.tag(), Some("bobtag"));
    assert_ne!(
        ack.via.branch(),
        hold.via.branch(),
        "a 2xx's ACK is its own transaction"
    );
}
