//! Entry points for the fuzz targets (`fuzz/`) and the corpus replay test
//! (`tests/fuzz_corpus.rs`): each takes untrusted bytes and drives one parser
//! the way the program does, then discards the result.
//!
//! This module owns no behaviour of its own: it wires inputs to the real
//! parsers and state machines. It must not catch panics (a panic is the
//! finding) and must not read the clock: time is a fixed origin plus
//! simulated steps. Every function is deterministic, so a crashing input
//! replays exactly.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use crate::directory::{Directory, Entry, Source};
use crate::media::codec::{Codec as MediaCodec, OpusSettings};
use crate::media::dtmf::DtmfReceiver;
use crate::media::inbound::Inbound;
use crate::media::jitter::JitterConfig;
use crate::media::rtcp::RtcpSession;
use crate::media::rtp::{is_rtcp, parse_rtp, RtpSender};
use crate::media::srtp::{self, SrtpKeys, SrtpSession, SrtpSuite};
use crate::media::{CodecKind, Frame, FRAME_MS, FRAME_SAMPLES};
use crate::sip::msg::{Message, Method};
use crate::sip::policy::Policy;
use crate::sip::sdes::{KeySource, SrtpConfig, SrtpMode, KEY_LEN};
use crate::sip::sdp::{self, Codec, LocalMedia};
use crate::sip::timer::TimerValues;
use crate::sip::{AcceptFrom, Account, Command, Direction, Output, Transport, UaConfig, UserAgent};

/// Where the far end of the fuzzed dialogs sends from.
const PHONE: &str = "127.0.0.3:5060";

/// A fixed origin for simulated time; nothing is measured against it.
#[allow(clippy::disallowed_methods)]
fn origin() -> Instant {
    Instant::now()
}

/// A fixed wall clock for RTCP's NTP fields.
fn wallclock() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

// ───────────────────────────── SIP user agent ─────────────────────────────

/// The user agent the SIP target fuzzes: two lines, seed 7, no registration.
fn ua_config() -> UaConfig {
    UaConfig {
        account: Account {
            name: "desk".into(),
            user: "alice".into(),
            domain: "127.0.0.1".into(),
            display_name: Some("Alice".into()),
            auth_user: "alice".into(),
            password: Some("secret".into()),
            registrar: "sip:127.0.0.1".into(),
            registrar_addr: None,
            outbound_proxy: None,
            register: false,
            expires: 120,
            keepalive: None,
            accept_from: AcceptFrom::Any,
            nat: false,
            policy: Policy {
                // Keys from a fixed generator: the fuzzed calls offer and take SDES too.
                srtp: SrtpConfig {
                    mode: SrtpMode::Optional,
                    keys: Some(KeySource::new(|| [7; KEY_LEN])),
                },
                ..Policy::default()
            },
        },
        transport: Transport::Udp,
        local: SocketAddr::from(([127, 0, 0, 2], 5060)),
        media_ip: [127, 0, 0, 2].into(),
        rtp_ports: vec![40000, 40002],
        codecs: vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
        user_agent: "switchboard-fuzz".into(),
        timers: TimerValues::default(),
        seed: crate::sip::Seed::fixed(7),
        dtmf_info: false,
        opus_bitrate: Some(24_000),
        ptime: 20,
        others: Vec::new(),
        blf: Vec::new(),
    }
}

/// The far end's SDP offer or answer.
fn phone_sdp() -> &'static str {
    "v=0\r\no=- 1 1 IN IP4 127.0.0.3\r\ns=-\r\nc=IN IP4 127.0.0.3\r\nt=0 0\r\n\
     m=audio 30000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n\
     a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=sendrecv\r\n"
}

/// A response to `req` as the far end writes it.
fn reply(req: &Message, code: u16, to_tag: &str, body: &str) -> String {
    let mut s = format!("SIP/2.0 {code} Whatever\r\n");
    for via in req.headers("Via") {
        s.push_str(&format!("Via: {via}\r\n"));
    }
    let to = req.header("To").unwrap_or_default();
    s.push_str(&format!(
        "From: {}\r\nTo: {to};tag={to_tag}\r\nCall-ID: {}\r\nCSeq: {} {}\r\n\
         Contact: <sip:bob@127.0.0.3:5060>\r\n",
        req.header("From").unwrap_or_default(),
        req.call_id,
        req.cseq.0,
        req.cseq.1
    ));
    if body.is_empty() {
        s.push_str("Content-Length: 0\r\n\r\n");
    } else {
        s.push_str(&format!(
            "Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    }
    s
}

/// Every output of the user agent, consumed as the driver would; returns
/// the messages it sent, parsed where they parse.
fn drain(ua: &mut UserAgent) -> Vec<Message> {
    drain_until_timeout(ua).0
}

/// [`drain`], also returning the user agent's next deadline.
fn drain_until_timeout(ua: &mut UserAgent) -> (Vec<Message>, Option<Instant>) {
    let mut sent = Vec::new();
    loop {
        match ua.poll_output() {
            Some(Output::Transmit(t)) => {
                if let Ok(m) = Message::parse(&t.payload) {
                    sent.push(m);
                }
            }
            Some(Output::Event(event)) => {
                std::hint::black_box(format!("{event:?}"));
            }
            Some(Output::Media(order)) => {
                std::hint::black_box(format!("{order:?}"));
            }
            Some(Output::Resolve(request)) => {
                std::hint::black_box(format!("{request:?}"));
            }
            Some(Output::Timeout(deadline)) => return (sent, Some(deadline)),
            None => return (sent, None),
        }
    }
}

/// A user agent with two live dialogs, on simulated time:
///
/// - line 1: Bob's call `live` (From tag `b1`), answered and acknowledged;
/// - line 2: our call to `carol` (To tag `c1`), answered, which put line 1
///   on hold with a re-INVITE whose answer is still outstanding.
///
/// Every token is derived from the seed, so the corpus can name the tags
/// and branches these dialogs use: they are in the messages returned, which
/// are everything the user agent sent while setting up.
pub fn ua_with_dialogs() -> (UserAgent, Instant, Vec<Message>) {
    let mut now = origin();
    let mut ua = UserAgent::new(ua_config(), now);
    let mut log = Vec::new();
    let phone: SocketAddr = PHONE.parse().expect("PHONE is an address literal");
    let offer = phone_sdp();
    let invite = format!(
        "INVITE sip:alice@127.0.0.2:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-live;rport\r\n\
         Max-Forwards: 70\r\nFrom: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\n\
         To: <sip:alice@127.0.0.1>\r\nCall-ID: live\r\nCSeq: 1 INVITE\r\n\
         Contact: <sip:bob@127.0.0.3:5060>\r\nRecord-Route: <sip:127.0.0.1;lr>\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}",
        offer.len()
    );
    ua.handle_datagram(now, Transport::Udp, phone, invite.as_bytes());
    log.extend(drain(&mut ua));
    ua.command(now, Command::Answer(None));
    let ok = drain(&mut ua);
    if let Some(ok) = ok.iter().find(|m| m.code() == Some(200)) {
        let ack = format!(
            "ACK sip:alice@127.0.0.2:5060 SIP/2.0\r\n\
             Via: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK-liveack\r\n\
             From: \"Bob\" <sip:bob@127.0.0.1>;tag=b1\r\nTo: {}\r\nCall-ID: live\r\n\
             CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n",
            ok.header("To").unwrap_or_default()
        );
        ua.handle_datagram(now, Transport::Udp, phone, ack.as_bytes());
    }
    log.extend(ok);
    log.extend(drain(&mut ua));

    now += Duration::from_millis(500);
    ua.command(now, Command::Line(2));
    ua.command(now, Command::Dial("carol".into()));
    let sent = drain(&mut ua);
    let outgoing = sent.iter().find(|m| {
        m.code().is_none() && m.method() == Method::Invite && m.call_id.as_str() != "live"
    });
    let outgoing = outgoing.cloned();
    log.extend(sent);
    if let Some(invite) = outgoing {
        for response in [
            reply(&invite, 100, "", ""),
            reply(&invite, 180, "c1", ""),
            reply(&invite, 200, "c1", offer),
        ] {
            ua.handle_datagram(now, Transport::Udp, phone, response.as_bytes());
            log.extend(drain(&mut ua));
        }
    }
    (ua, now, log)
}

/// Feeds `data` as one UDP datagram from the far end into a user agent with
/// live dialogs ([`ua_with_dialogs`]), drains every output, then lets 40 s
/// of simulated time pass (retransmissions, timeouts), draining after each
/// timer.
pub fn sip_datagram(data: &[u8]) {
    let (mut ua, now) = prepared_ua();
    let phone: SocketAddr = PHONE.parse().expect("PHONE is an address literal");
    ua.handle_datagram(now, Transport::Udp, phone, data);
    run_timers(&mut ua, now);
}

/// A copy of the user agent of [`ua_with_dialogs`], built once: building the calls costs far
/// more than one input.
fn prepared_ua() -> (UserAgent, Instant) {
    static PREPARED: OnceLock<(UserAgent, Instant)> = OnceLock::new();
    let (ua, now) = PREPARED.get_or_init(|| {
        let (ua, now, _) = ua_with_dialogs();
        (ua, now)
    });
    (ua.clone(), *now)
}

/// Drains every output, then runs 40 s of simulated timers, draining after each.
fn run_timers(ua: &mut UserAgent, mut now: Instant) {
    let (_, mut deadline) = drain_until_timeout(ua);
    let end = now + Duration::from_secs(40);
    // Bounded: a user agent that keeps asking for `now` must not hang the fuzzer.
    for _ in 0..1000 {
        let Some(t) = deadline.filter(|t| *t <= end) else {
            break;
        };
        now = t.max(now);
        ua.handle_timeout(now);
        deadline = drain_until_timeout(ua).1;
    }
}

// ───────────────────────────── SIP over a stream ─────────────────────────────

/// Feeds `data` as the bytes of a TCP/TLS connection from the far end, cut into segments of
/// varying sizes (the first byte seeds them), through the stream framer; every whole message
/// goes into the user agent of [`ua_with_dialogs`] as the run loop does. A framing error ends
/// the stream, as it closes the connection.
pub fn sip_stream(data: &[u8]) {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let (mut ua, now) = prepared_ua();
    let phone: SocketAddr = PHONE.parse().expect("PHONE is an address literal");
    let mut framer = crate::driver::tcp::Framer::default();
    let mut sizes = u32::from(seed) | 0x100;
    let mut rest = stream;
    'stream: while !rest.is_empty() {
        // xorshift: segment sizes from 1 to 1500 bytes, as TCP reads come.
        sizes ^= sizes << 13;
        sizes ^= sizes >> 17;
        sizes ^= sizes << 5;
        let len = usize::try_from(sizes % 1500).unwrap_or(0) + 1;
        let (segment, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        framer.push(segment);
        loop {
            match framer.next_message() {
                Ok(Some(message)) => {
                    ua.handle_datagram(now, Transport::Tcp, phone, &message);
                    drain(&mut ua);
                }
                Ok(None) => break,
                Err(e) => {
                    std::hint::black_box(e.to_string());
                    break 'stream;
                }
            }
        }
    }
    run_timers(&mut ua, now);
}

// ───────────────────────────── dialog-info ─────────────────────────────

/// The presence server the busy-lamp user agent subscribes to.
const PRESENCE: &str = "127.0.0.1:5060";

/// A user agent watching extension 201's busy lamp, its SUBSCRIBE answered 200; returns it
/// with the NOTIFY head (without Content-Length) the presence server sends in that dialog.
pub fn ua_with_lamp() -> (UserAgent, Instant, String) {
    let now = origin();
    let mut cfg = ua_config();
    cfg.blf = vec!["201".into()];
    let mut ua = UserAgent::new(cfg, now);
    let sent = drain(&mut ua);
    let Some(subscribe) = sent.iter().find(|m| m.method() == Method::Subscribe) else {
        return (ua, now, String::new());
    };
    let server: SocketAddr = PRESENCE.parse().expect("PRESENCE is an address literal");
    let ok = reply(subscribe, 200, "p1", "")
        .replace("Content-Length: 0", "Expires: 600\r\nContent-Length: 0");
    ua.handle_datagram(now, Transport::Udp, server, ok.as_bytes());
    drain(&mut ua);
    let head = format!(
        "NOTIFY {contact} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {PRESENCE};branch=z9hG4bK-lamp\r\nMax-Forwards: 70\r\n\
         From: <sip:201@127.0.0.1>;tag=p1\r\nTo: {from}\r\nCall-ID: {call_id}\r\n\
         CSeq: 1 NOTIFY\r\nContact: <sip:201@{PRESENCE}>\r\nEvent: dialog\r\n\
         Subscription-State: active;expires=600\r\n\
         Content-Type: application/dialog-info+xml\r\n",
        contact = subscribe
            .header("Contact")
            .unwrap_or_default()
            .trim_matches(['<', '>']),
        from = subscribe.header("From").unwrap_or_default(),
        call_id = subscribe.call_id,
    );
    (ua, now, head)
}

/// Reads `data` as a dialog-info body (RFC 4235): parsed, merged into known dialogs and turned
/// into a lamp; then sent as the body of a NOTIFY to a user agent watching a busy lamp.
pub fn dialog_info_body(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(info) = crate::sip::dialog_info::parse(&text) {
        let mut known = Vec::new();
        crate::sip::dialog_info::merge(&mut known, info.clone());
        crate::sip::dialog_info::merge(&mut known, info);
        std::hint::black_box(crate::sip::dialog_info::lamp(&known));
    }
    static PREPARED: OnceLock<(UserAgent, Instant, String)> = OnceLock::new();
    let (ua, now, head) = PREPARED.get_or_init(ua_with_lamp);
    let (mut ua, now) = (ua.clone(), *now);
    let server: SocketAddr = PRESENCE.parse().expect("PRESENCE is an address literal");
    let mut notify = head.clone().into_bytes();
    notify.extend_from_slice(format!("Content-Length: {}\r\n\r\n", data.len()).as_bytes());
    notify.extend_from_slice(data);
    ua.handle_datagram(now, Transport::Udp, server, &notify);
    drain(&mut ua);
    run_timers(&mut ua, now);
}

// ───────────────────────────── SDP ─────────────────────────────

/// Parses `data` as SDP, then answers it as an offer and reads it as an
/// answer to ours, with and without telephone-event, for each hold wish.
pub fn sdp_body(data: &[u8]) {
    let Ok(parsed) = sdp::parse(data) else { return };
    std::hint::black_box((
        parsed.direction(),
        parsed.is_hold(),
        parsed.audio_connection(),
    ));
    if let Some(audio) = parsed.audio() {
        for pt in audio.payload_types() {
            std::hint::black_box((audio.rtpmap(pt), audio.fmtp(pt)));
        }
        std::hint::black_box(audio.is_usable_audio());
    }
    for (codecs, dtmf, srtp) in [
        (
            vec![Codec::Opus, Codec::Pcmu, Codec::Pcma],
            true,
            SrtpMode::Optional,
        ),
        (vec![Codec::Pcma], false, SrtpMode::Mandatory),
        (vec![Codec::Pcmu], true, SrtpMode::Off),
    ] {
        let local = LocalMedia {
            addr: [127, 0, 0, 2].into(),
            port: 40000,
            rtcp: ([127, 0, 0, 2], 40001).into(),
            codecs,
            dtmf,
            opus_bitrate: Some(24_000),
            ptime: 20,
            srtp,
            keys: [[9; KEY_LEN]; 2],
        };
        for wish in [
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::Inactive,
        ] {
            if let Ok((answer, negotiated)) = sdp::answer(&parsed, &local, wish, 1, 2) {
                assert_answer_reads_back(&answer, &negotiated, &local);
            }
        }
        std::hint::black_box(sdp::negotiate_answer(&parsed, &local).ok());
    }
}

/// Our answer must read back as SDP saying what was negotiated: our port, the codec's
/// payload type, our direction, and SDES keys exactly when SRTP was agreed.
fn assert_answer_reads_back(answer: &str, negotiated: &sdp::Negotiated, local: &LocalMedia) {
    let reread = sdp::parse(answer.as_bytes())
        .unwrap_or_else(|e| panic!("our answer does not parse ({e}):\n{answer}"));
    let audio = reread
        .audio()
        .unwrap_or_else(|| panic!("our answer has no audio line:\n{answer}"));
    assert_eq!(audio.port, local.port, "{answer}");
    assert!(
        audio.payload_types().contains(&negotiated.payload_type),
        "payload type {} missing:\n{answer}",
        negotiated.payload_type
    );
    assert_eq!(reread.direction(), negotiated.direction, "{answer}");
    assert_eq!(
        audio.cryptos.is_empty(),
        negotiated.srtp.is_none(),
        "keys exactly with SRTP:\n{answer}"
    );
}

// ───────────────────────────── RTP / RTCP ─────────────────────────────

/// One line's receive path, as the media pipeline runs it.
struct Receiver {
    rtcp: RtcpSession,
    inbound: Inbound,
    dtmf: DtmfReceiver,
    codec: MediaCodec,
    payload_type: u8,
    dtmf_payload_type: u8,
    frame: Box<Frame>,
}

impl Receiver {
    fn new(kind: CodecKind, payload_type: u8, now: Instant) -> Option<Receiver> {
        Some(Receiver {
            rtcp: RtcpSession::new(0x1234_5678, kind.clock_rate(), now),
            inbound: Inbound::new(kind, JitterConfig::default()),
            dtmf: DtmfReceiver::default(),
            codec: MediaCodec::new(kind, &OpusSettings::default()).ok()?,
            payload_type,
            dtmf_payload_type: 101,
            frame: Box::new([0; FRAME_SAMPLES]),
        })
    }

    /// One datagram on the RTP port: RTCP (RFC 5761 mux) or RTP.
    fn receive(&mut self, now: Instant, buf: &[u8]) {
        if is_rtcp(buf) {
            std::hint::black_box(self.rtcp.on_rtcp(now, wallclock(), buf).is_ok());
            return;
        }
        let Ok(pkt) = parse_rtp(buf) else { return };
        if pkt.payload_type != self.payload_type && pkt.payload_type != self.dtmf_payload_type {
            return;
        }
        self.rtcp.on_rtp(now, &pkt);
        if pkt.payload_type == self.dtmf_payload_type {
            std::hint::black_box(self.dtmf.on_packet(pkt.timestamp, pkt.payload));
        } else {
            self.inbound.push(
                now,
                &self.codec,
                (pkt.sequence, pkt.timestamp, pkt.ssrc),
                pkt.payload,
            );
        }
    }

    /// One tick of playout.
    fn tick(&mut self, now: Instant) {
        self.inbound
            .next_frame(now, &mut self.codec, &mut self.frame);
        std::hint::black_box(&self.frame);
    }
}

/// A valid PCMU packet of the primed stream.
fn primer(sequence: u16) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&sequence.to_be_bytes());
    p.extend_from_slice(&(u32::from(sequence) * 160).to_be_bytes());
    p.extend_from_slice(&0xCAFE_F00Du32.to_be_bytes());
    p.extend(std::iter::repeat_n(0xFF, 160));
    p
}

/// Feeds `data` into the media receive path of a PCMU line (payload type 0,
/// telephone-event 101) and of an Opus line (payload type 111) that already
/// hold a stream (four packets buffered): first as one datagram, then read
/// as a sequence of datagrams each prefixed by a one-byte length (the first
/// 16), one per tick. Frames are played out (decoded or concealed)
/// after each, and an RTCP report is written at the end.
pub fn rtp_packet(data: &[u8]) {
    let mut now = origin();
    for (kind, pt) in [(CodecKind::Pcmu, 0), (CodecKind::Opus, 111)] {
        let Some(mut rx) = Receiver::new(kind, pt, now) else {
            continue;
        };
        let tick = Duration::from_millis(u64::from(FRAME_MS));
        for seq in 100..104u16 {
            let mut p = primer(seq);
            p[1] = pt;
            rx.receive(now, &p);
            now += tick;
        }
        rx.receive(now, data);
        for _ in 0..3 {
            now += tick;
            rx.tick(now);
        }
        let mut rest = data;
        // At most 16 ticks: a run of zero lengths must not make every input cost hundreds.
        for _ in 0..16 {
            let Some((&len, tail)) = rest.split_first() else {
                break;
            };
            let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
            rx.receive(now, datagram);
            now += tick;
            rx.tick(now);
            rest = tail;
        }
        let sender = RtpSender::new(1, 1);
        let mut report = Vec::new();
        rx.rtcp.report(
            now,
            wallclock(),
            Some((&sender, 0)),
            "fuzz@127.0.0.2",
            &mut report,
        );
        std::hint::black_box((rx.rtcp.quality(), rx.inbound.stats(), report.len()));
    }
}

// ───────────────────────────── SRTP ─────────────────────────────

/// Feeds `data` to SRTP unprotect (RTP and RTCP, both suites) the way the media receive path
/// does: first whole, then as datagrams each prefixed by a one-byte length (the first 16).
/// Each context first accepts a few genuine packets, so the rollover counter and replay
/// window hold state; what unprotects must parse as RTP or RTCP without a panic. Asserts
/// that a genuine packet carrying `data` as its payload still round-trips afterwards.
pub fn srtp_packet(data: &[u8]) {
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
    ] {
        let keys = |local: u8, remote: u8| SrtpKeys {
            suite,
            local: [local; srtp::KEY_LEN + srtp::SALT_LEN],
            remote: [remote; srtp::KEY_LEN + srtp::SALT_LEN],
        };
        let (Ok(mut far), Ok(mut us)) =
            (SrtpSession::new(keys(1, 2)), SrtpSession::new(keys(2, 1)))
        else {
            continue;
        };
        let mut sender = RtpSender::new(0xCAFE_F00D, 65_530);
        let mut plain = Vec::new();
        let mut wire = Vec::new();
        for i in 0..8u32 {
            sender.packet(0, i * 160, false, &[0xFF; 160], &mut wire);
            if far.protect_rtp(&mut wire).is_ok() {
                let _ = us.unprotect_rtp(&wire, &mut plain);
            }
        }
        let mut feed = |datagram: &[u8]| {
            if us.unprotect_rtp(datagram, &mut plain).is_ok() {
                std::hint::black_box(parse_rtp(&plain).is_ok());
            }
            if us.unprotect_rtcp(datagram, &mut plain).is_ok() {
                std::hint::black_box(is_rtcp(&plain));
            }
        };
        feed(data);
        let mut rest = data;
        for _ in 0..16 {
            let Some((&len, tail)) = rest.split_first() else {
                break;
            };
            let (datagram, tail) = tail.split_at(usize::from(len).min(tail.len()));
            feed(datagram);
            rest = tail;
        }
        let payload = &data[..data.len().min(1000)];
        sender.packet(0, 8 * 160, false, payload, &mut wire);
        far.protect_rtp(&mut wire)
            .expect("a packet of ours can be protected");
        us.unprotect_rtp(&wire, &mut plain)
            .expect("a genuine packet still unprotects after the fuzzed ones");
        assert_eq!(parse_rtp(&plain).map(|p| p.payload), Ok(payload));
    }
}

// ───────────────────────────── sipfrag ─────────────────────────────

/// Parses `data` as the `message/sipfrag` body of a transfer NOTIFY.
pub fn sipfrag_body(data: &[u8]) {
    if let Ok(frag) = crate::sip::refer::parse_sipfrag(data) {
        std::hint::black_box((frag.is_final(), frag.is_success(), frag.reason));
    }
}

// ───────────────────────────── configuration ─────────────────────────────

/// Parses `data` (as UTF-8, lossily) as the configuration file, and formats
/// the errors as the program prints them.
pub fn config_file(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match crate::config::Config::parse(&text, Path::new("fuzz.toml")) {
        Ok(config) => std::hint::black_box(format!("{config:?}")),
        Err(errors) => std::hint::black_box(errors.to_string()),
    };
}

// ───────────────────────────── directory files ─────────────────────────────

/// Builds a directory from contacts and searches it the way the picker
/// does as the operator types the first entry's name and number (a few
/// prefixes of each), then looks the number up as a caller's. Only the first
/// 32 entries are searched: the fuzzy matcher's cost grows with the file,
/// and the target is the parser.
fn search_contacts(contacts: Vec<crate::directory::contact::Contact>) {
    let mut entries: Vec<Entry> = Vec::new();
    for contact in contacts {
        contact.into_entries(Source::Corporate, &mut entries);
    }
    let queries: Vec<String> = entries
        .first()
        .map(|e| vec![e.name.clone(), e.number.clone()])
        .unwrap_or_default();
    entries.truncate(32);
    let mut directory = Directory::from_entries(entries);
    for query in &queries {
        let chars: Vec<char> = query.chars().take(8).collect();
        for n in [1, chars.len()] {
            let prefix: String = chars.iter().take(n).collect();
            for hit in directory.search(&prefix, 5) {
                std::hint::black_box(directory.entry(hit.entry));
            }
        }
        std::hint::black_box(directory.lookup_number(query));
    }
}

/// Parses `data` as a vCard file (decoded by its byte order mark, else UTF-8 or Windows-1252,
/// as the loader reads it), then searches the contacts found.
pub fn vcard_file(data: &[u8]) {
    let decoded = crate::directory::text::decode(data);
    let (contacts, warnings) = crate::directory::vcard::parse(&decoded.text, Path::new("fuzz.vcf"));
    std::hint::black_box(warnings);
    search_contacts(contacts);
}

/// Parses `data` as a CSV directory file, then searches the contacts found.
pub fn csv_file(data: &[u8]) {
    let (contacts, warnings) = crate::directory::csv_source::parse(data, Path::new("fuzz.csv"));
    std::hint::black_box(warnings);
    search_contacts(contacts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::{BlfState, Event};

    /// The lamp user agent really reads the fuzzed body: a confirmed dialog lights the lamp
    /// busy and the NOTIFY is answered 200.
    #[test]
    fn the_lamp_user_agent_takes_the_notify() {
        let (mut ua, now, head) = ua_with_lamp();
        assert!(
            head.starts_with("NOTIFY sip:alice@127.0.0.2:5060"),
            "{head}"
        );
        let body = r#"<?xml version="1.0"?>
<dialog-info xmlns="urn:ietf:params:xml:ns:dialog-info" version="1" state="full" entity="sip:201@127.0.0.1">
<dialog id="d1" direction="recipient"><state>confirmed</state></dialog></dialog-info>"#;
        let notify = format!("{head}Content-Length: {}\r\n\r\n{body}", body.len());
        let server: SocketAddr = PRESENCE.parse().expect("address literal");
        ua.handle_datagram(now, Transport::Udp, server, notify.as_bytes());
        let mut answered = false;
        let mut lamps = Vec::new();
        while let Some(output) = ua.poll_output() {
            match output {
                Output::Transmit(t) => {
                    let m = Message::parse(&t.payload).expect("our own message parses");
                    answered |= m.code() == Some(200) && m.method() == Method::Notify;
                }
                Output::Event(Event::Blf { state, .. }) => lamps.push(state),
                Output::Timeout(_) => break,
                _ => {}
            }
        }
        assert!(answered, "the NOTIFY was not answered 200");
        assert_eq!(lamps.last(), Some(&BlfState::Busy), "{lamps:?}");
    }

    /// Stream input is framed: two messages in one segment both reach the user agent, and
    /// garbage after them ends the stream without a panic.
    #[test]
    fn the_stream_entry_frames_messages() {
        let options = "OPTIONS sip:alice@127.0.0.2:5060 SIP/2.0\r\n\
            Via: SIP/2.0/TCP 127.0.0.3:5060;branch=z9hG4bK-o1\r\nMax-Forwards: 70\r\n\
            From: <sip:bob@127.0.0.1>;tag=o1\r\nTo: <sip:alice@127.0.0.1>\r\n\
            Call-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
        let mut framer = crate::driver::tcp::Framer::default();
        framer.push(format!("{options}{options}").as_bytes());
        assert!(matches!(framer.next_message(), Ok(Some(_))));
        assert!(matches!(framer.next_message(), Ok(Some(_))));
        assert!(matches!(framer.next_message(), Ok(None)));
        let mut input = vec![3u8];
        input.extend_from_slice(options.as_bytes());
        input.extend_from_slice(b"garbage\r\n\r\n");
        sip_stream(&input);
    }
}
