//! Audio SDP offer/answer (RFC 3264 on RFC 4566): parsing a remote session
//! description, building our offer, answering a remote offer and reading the
//! answer to ours. Codecs: Opus, PCMU, PCMA, G.722, plus telephone-event (RFC 4733).
//!
//! This module owns the SDP text and the negotiation rules only. It must stay
//! pure: no I/O, no clock, no randomness (session id and version come from the
//! caller), no panics on any input (malformed input gives an `Err`), no
//! `unsafe`. Binding RTP sockets and running media belong to the driver and
//! `media/`; when to offer or answer belongs to `call/`.
//!
//! Directions: [`Direction`] in [`Negotiated`] and in the arguments of
//! [`offer`]/[`answer`] is from OUR point of view; [`Sdp::direction`] is what
//! the remote party wrote, from THEIR point of view.

#![forbid(unsafe_code)]

use std::net::{IpAddr, SocketAddr};

use super::api::Direction;
#[cfg(test)]
use super::sdes::KEY_LEN;
use super::sdes::{Crypto, CryptoSuite, Key, SrtpMaterial, SrtpMode};

/// Payload type of telephone-event at 8 kHz in our offers.
const DTMF_PT_8K: u8 = 101;
/// Payload type of telephone-event at 48 kHz in our offers (only with Opus).
const DTMF_PT_48K: u8 = 110;

/// An audio codec we can send and receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// Opus (RFC 7587): dynamic payload type (we offer 111), `opus/48000/2`.
    Opus,
    /// G.711 µ-law: static payload type 0, `PCMU/8000`.
    Pcmu,
    /// G.711 A-law: static payload type 8, `PCMA/8000`.
    Pcma,
    /// G.722: static payload type 9, `G722/8000` (the RTP clock is 8 kHz although it samples
    /// at 16 kHz, RFC 3551 §4.5.2).
    G722,
}

impl Codec {
    /// Encoding name as in `a=rtpmap` (`opus`, `PCMU`, `PCMA`, `G722`).
    pub fn name(&self) -> &'static str {
        match self {
            Codec::Opus => "opus",
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
            Codec::G722 => "G722",
        }
    }

    /// RTP clock rate in Hz (48000 for Opus whatever its real sampling rate, 8000 for G.711
    /// and for G.722, whose samples are at 16 kHz).
    pub fn clock_rate(&self) -> u32 {
        match self {
            Codec::Opus => 48_000,
            Codec::Pcmu | Codec::Pcma | Codec::G722 => 8_000,
        }
    }

    /// The payload type we use for it in our own offers (111, 0, 8, 9). The peer sends
    /// to us with this number after answering our offer, even if it renumbers its own.
    pub fn payload_type(&self) -> u8 {
        match self {
            Codec::Opus => 111,
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
            Codec::G722 => 9,
        }
    }

    /// Looks a codec up by its encoding name, ignoring ASCII case (`opus`, `pcmu`, `g722`).
    pub fn from_name(name: &str) -> Option<Codec> {
        [Codec::Opus, Codec::Pcmu, Codec::Pcma, Codec::G722]
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(name))
    }

    /// The `a=rtpmap` value after the payload type (`opus/48000/2`, `PCMU/8000`, `PCMA/8000`,
    /// `G722/8000`).
    fn rtpmap(&self) -> &'static str {
        match self {
            Codec::Opus => "opus/48000/2",
            Codec::Pcmu => "PCMU/8000",
            Codec::Pcma => "PCMA/8000",
            Codec::G722 => "G722/8000",
        }
    }

    /// The `a=fmtp` parameters we declare for receiving, if any; `opus_bitrate` is the
    /// Opus bitrate we would like to receive (RFC 7587 `maxaveragebitrate`).
    fn fmtp(&self, opus_bitrate: Option<u32>) -> Option<String> {
        match self {
            Codec::Opus => Some(match opus_bitrate {
                Some(rate) => {
                    format!("minptime=10;useinbandfec=1;stereo=0;maxaveragebitrate={rate}")
                }
                None => "minptime=10;useinbandfec=1;stereo=0".to_owned(),
            }),
            Codec::Pcmu | Codec::Pcma | Codec::G722 => None,
        }
    }

    /// The codec a static payload type stands for when no rtpmap names it.
    fn from_static(pt: u8) -> Option<Codec> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            9 => Some(Codec::G722),
            _ => None,
        }
    }
}

/// What we can do locally: where we receive RTP and which codecs we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMedia {
    /// Our RTP address (written in `o=` and `c=`).
    pub addr: IpAddr,
    /// Our RTP port (already bound by the driver).
    pub port: u16,
    /// Where we receive RTCP, written as `a=rtcp:<port> IN IP4|IP6 <addr>` (RFC 3605): the
    /// STUN-mapped address of our RTCP socket, else `addr` and the RTP port + 1.
    pub rtcp: SocketAddr,
    /// Codecs in preference order; duplicates are ignored.
    pub codecs: Vec<Codec>,
    /// Offer/accept telephone-event: `telephone-event/8000` as PT 101 with fmtp `0-16`
    /// (and `telephone-event/48000` as PT 110 when Opus is offered).
    pub dtmf: bool,
    /// The Opus bitrate we send and would like to receive (`maxaveragebitrate`), if set.
    pub opus_bitrate: Option<u32>,
    /// The packetisation time we ask to receive (`a=ptime`, ms).
    pub ptime: u32,
    /// Whether SRTP is offered, accepted or required.
    pub srtp: SrtpMode,
    /// Our keys for the suites of [`CryptoSuite::OFFERED`], in that order (the call's; unused
    /// with [`SrtpMode::Off`]).
    pub keys: [Key; 2],
}

impl LocalMedia {
    /// Our key for `suite`.
    fn key_for(&self, suite: CryptoSuite) -> Key {
        let index = CryptoSuite::OFFERED
            .iter()
            .position(|(_, s)| *s == suite)
            .unwrap_or_default();
        self.keys[index]
    }
}

/// The `o=` line of a session description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Origin {
    /// `<username>` (often `-`).
    pub username: String,
    /// `<sess-id>`, kept as text (some implementations exceed 64 bits).
    pub session_id: String,
    /// `<sess-version>`, kept as text; a changed value means a changed session.
    pub version: String,
    /// `<unicast-address>` as written.
    pub address: String,
}

/// One `a=rtpmap:<pt> <name>/<rate>[/<channels>]` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpMap {
    /// Payload type (0–127).
    pub payload_type: u8,
    /// Encoding name as written (`opus`, `PCMU`, `telephone-event`, …).
    pub encoding: String,
    /// RTP clock rate in Hz.
    pub clock_rate: u32,
    /// Encoding parameters (channel count for audio), if written.
    pub channels: Option<u16>,
}

/// One `a=fmtp:<pt> <params>` attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fmtp {
    /// Payload type (0–127).
    pub payload_type: u8,
    /// The format parameters as written.
    pub params: String,
}

/// One `m=` section with the attributes we read from it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Media {
    /// Media type (`audio`, `video`, `application`, …), as written.
    pub kind: String,
    /// Transport port; 0 means the stream is disabled/rejected.
    pub port: u16,
    /// Transport protocol (`RTP/AVP`, `RTP/SAVP`, …), as written.
    pub proto: String,
    /// Format list, as written (payload type numbers for RTP).
    pub formats: Vec<String>,
    /// Media-level `c=` address, if any (overrides the session-level one).
    pub connection: Option<IpAddr>,
    /// `a=rtpmap` attributes in order.
    pub rtpmaps: Vec<RtpMap>,
    /// `a=fmtp` attributes in order.
    pub fmtps: Vec<Fmtp>,
    /// Media-level direction attribute (their point of view), if any.
    pub direction: Option<Direction>,
    /// `a=ptime` in milliseconds, if any.
    pub ptime: Option<u32>,
    /// The `a=crypto` lines we can use, in order.
    pub cryptos: Vec<Crypto>,
    /// `a=rtcp` (RFC 3605): the port RTCP is received on, and its address when one is written.
    pub rtcp: Option<(u16, Option<IpAddr>)>,
}

impl Media {
    /// The RTP payload types of the format list, in order (non-numeric or >127 entries skipped).
    pub fn payload_types(&self) -> Vec<u8> {
        self.formats
            .iter()
            .filter_map(|f| f.parse::<u8>().ok())
            .filter(|pt| *pt <= 127)
            .collect()
    }

    /// The first rtpmap of payload type `pt`.
    pub fn rtpmap(&self, pt: u8) -> Option<&RtpMap> {
        self.rtpmaps.iter().find(|r| r.payload_type == pt)
    }

    /// The first fmtp parameters of payload type `pt`.
    pub fn fmtp(&self, pt: u8) -> Option<&str> {
        self.fmtps
            .iter()
            .find(|f| f.payload_type == pt)
            .map(|f| f.params.as_str())
    }

    /// True for an enabled (`port != 0`) audio stream over RTP/AVP, RTP/AVPF or their SRTP
    /// forms RTP/SAVP and RTP/SAVPF, the profiles we speak.
    pub fn is_usable_audio(&self) -> bool {
        self.kind.eq_ignore_ascii_case("audio")
            && self.port != 0
            && ["RTP/AVP", "RTP/AVPF", "RTP/SAVP", "RTP/SAVPF"]
                .iter()
                .any(|p| self.proto.eq_ignore_ascii_case(p))
    }

    /// True for RTP/SAVP(F): the stream must be SRTP.
    pub fn is_secure_profile(&self) -> bool {
        self.proto.to_ascii_uppercase().starts_with("RTP/SAVP")
    }

    /// The codec payload type `pt` stands for in this stream: its rtpmap (name,
    /// case-insensitive, and clock rate), else the static assignment (0, 8, 9).
    fn codec_of(&self, pt: u8) -> Option<Codec> {
        match self.rtpmap(pt) {
            Some(map) => {
                Codec::from_name(&map.encoding).filter(|c| c.clock_rate() == map.clock_rate)
            }
            None => Codec::from_static(pt),
        }
    }

    /// The first listed telephone-event payload type with clock rate `rate`.
    fn telephone_event(&self, rate: u32) -> Option<u8> {
        self.payload_types().into_iter().find(|pt| {
            self.rtpmap(*pt).is_some_and(|m| {
                m.encoding.eq_ignore_ascii_case("telephone-event") && m.clock_rate == rate
            })
        })
    }
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sdp {
    /// The `o=` line, if present and well formed.
    pub origin: Option<Origin>,
    /// Session-level `c=` address, if any.
    pub connection: Option<IpAddr>,
    /// Session-level direction attribute (their point of view), if any.
    pub session_direction: Option<Direction>,
    /// Every `m=` section, in order (video and others included, so an answer can reject them).
    pub media: Vec<Media>,
}

impl Sdp {
    /// Index in [`Sdp::media`] of the audio stream we use: the first usable audio `m=` line.
    pub fn audio_index(&self) -> Option<usize> {
        self.media.iter().position(Media::is_usable_audio)
    }

    /// The audio stream we use: the first usable audio `m=` line (enabled, RTP/AVP or RTP/AVPF).
    pub fn audio(&self) -> Option<&Media> {
        self.audio_index().and_then(|i| self.media.get(i))
    }

    /// The connection address of the audio stream: media-level `c=`, else session-level.
    pub fn audio_connection(&self) -> Option<IpAddr> {
        self.audio().and_then(|m| m.connection).or(self.connection)
    }

    /// The direction the remote party declared (their point of view).
    ///
    /// Media-level attribute of the audio stream, else session-level, else sendrecv.
    pub fn direction(&self) -> Direction {
        self.audio()
            .and_then(|m| m.direction)
            .or(self.session_direction)
            .unwrap_or(Direction::SendRecv)
    }

    /// True when the remote puts us on hold (their sendonly/inactive, or c=0.0.0.0).
    pub fn is_hold(&self) -> bool {
        matches!(self.direction(), Direction::SendOnly | Direction::Inactive)
            || self.audio_connection().is_some_and(|a| a.is_unspecified())
    }

    /// The remote's direction (their point of view) once an RFC 2543 hold address
    /// (`0.0.0.0` or `::`) is taken into account: they cannot receive at it.
    fn effective_direction(&self) -> Direction {
        let declared = self.direction();
        if self.audio_connection().is_some_and(|a| a.is_unspecified()) {
            match declared {
                Direction::SendRecv | Direction::SendOnly => Direction::SendOnly,
                Direction::RecvOnly | Direction::Inactive => Direction::Inactive,
            }
        } else {
            declared
        }
    }
}

/// What an offer/answer exchange gives us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    /// The codec to send (and expect).
    pub codec: Codec,
    /// The payload type to send the codec with (the remote's number).
    pub payload_type: u8,
    /// Where to send RTP.
    pub remote: SocketAddr,
    /// Where to send RTCP: what the peer's `a=rtcp` names (RFC 3605), else the RTP port + 1.
    pub remote_rtcp: SocketAddr,
    /// Our direction, as agreed.
    pub direction: Direction,
    /// Payload type of telephone-event at the codec's clock rate, if negotiated.
    pub dtmf_payload_type: Option<u8>,
    /// The most the far end wants to receive of the codec (Opus `maxaveragebitrate`), in
    /// bits per second.
    pub max_bitrate: Option<u32>,
    /// The packetisation the far end asks for (its `a=ptime`, ms), if it says.
    pub ptime: Option<u32>,
    /// The SRTP keys both sides agreed on; `None`: plain RTP.
    pub srtp: Option<SrtpMaterial>,
}

/// The `maxaveragebitrate` an fmtp line of payload type `pt` sets (RFC 7587 §7.1), if any.
fn max_average_bitrate(media: &Media, pt: u8) -> Option<u32> {
    media.fmtp(pt)?.split(';').find_map(|param| {
        let (name, value) = param.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("maxaveragebitrate")
            .then(|| value.trim().parse().ok())
            .flatten()
    })
}

/// Why SDP could not be parsed or negotiated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    /// The body holds no SDP lines at all.
    #[error("empty SDP body")]
    Empty,
    /// The body has no `v=` line, so it is not SDP.
    #[error("not SDP: no v= line")]
    MissingVersion,
    /// A line that matters could not be read.
    #[error("malformed SDP line {line}: {reason}")]
    Malformed {
        /// 1-based line number in the body.
        line: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No enabled RTP/AVP(F) audio stream (the caller answers 488).
    #[error("no usable audio stream in the SDP")]
    NoAudio,
    /// The audio stream has no connection address (no `c=` line applies to it).
    #[error("no connection address for the audio stream")]
    NoConnection,
    /// None of our codecs is in the remote's list (the caller answers 488).
    #[error("no codec in common")]
    NoCommonCodec,
    /// SRTP is mandatory but the far end gave no SRTP key we can use.
    #[error("SRTP is mandatory but the far end offered no usable SRTP key (a=crypto AES_CM_128_HMAC_SHA1_80/32)")]
    NoCrypto,
    /// The far end requires SRTP (RTP/SAVP) but this account has it off.
    #[error("the far end requires SRTP (RTP/SAVP) but srtp is off for this account")]
    SrtpOff,
}

/// Parses a session description.
///
/// Tolerant of LF-only line endings, surrounding whitespace, unknown lines and attributes,
/// malformed `rtpmap`/`fmtp`/`ptime`/`o=` (ignored) and extra `m=` lines (kept so an answer can
/// reject them). Errors on an empty body, a missing `v=` line, an `m=` line without a valid
/// port or protocol, and a `c=` line whose address is not an IP literal. Never panics.
pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
    let text = String::from_utf8_lossy(body);
    let mut sdp = Sdp::default();
    let mut saw_version = false;
    let mut saw_any = false;
    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        saw_any = true;
        let mut chars = line.chars();
        let (Some(key), Some('=')) = (chars.next(), chars.next()) else {
            continue; // not `x=...`: ignore
        };
        let value = chars.as_str().trim();
        let malformed = |reason| SdpError::Malformed {
            line: line_no,
            reason,
        };
        match key {
            'v' => saw_version = true,
            'o' if sdp.media.is_empty() && sdp.origin.is_none() => {
                sdp.origin = parse_origin(value);
            }
            'c' => {
                let addr = parse_connection(value).ok_or_else(|| malformed("bad c= address"))?;
                match sdp.media.last_mut() {
                    Some(m) => {
                        m.connection.get_or_insert(addr);
                    }
                    None => {
                        sdp.connection.get_or_insert(addr);
                    }
                }
            }
            'm' => sdp
                .media
                .push(parse_media(value).ok_or_else(|| malformed("bad m= line"))?),
            'a' => match sdp.media.last_mut() {
                Some(m) => parse_media_attribute(m, value),
                None => {
                    if let Some(d) = parse_direction(value) {
                        sdp.session_direction.get_or_insert(d);
                    }
                }
            },
            _ => {}
        }
    }
    if !saw_any {
        return Err(SdpError::Empty);
    }
    if !saw_version {
        return Err(SdpError::MissingVersion);
    }
    Ok(sdp)
}

/// `<username> <sess-id> <sess-version> <nettype> <addrtype> <unicast-address>`.
fn parse_origin(value: &str) -> Option<Origin> {
    let f: Vec<&str> = value.split_whitespace().collect();
    match f.as_slice() {
        [user, id, version, _net, _addrtype, address] => Some(Origin {
            username: (*user).to_string(),
            session_id: (*id).to_string(),
            version: (*version).to_string(),
            address: (*address).to_string(),
        }),
        _ => None,
    }
}

/// `IN IP4 <addr>[/ttl[/n]]` or `IN IP6 <addr>`; only IP literals are accepted. An
/// IPv4-mapped IPv6 address (`IN IP6 ::ffff:192.0.2.2`, RFC 5118 §4.9) is the IPv4 one.
fn parse_connection(value: &str) -> Option<IpAddr> {
    let mut f = value.split_whitespace();
    let (_net, _addrtype, addr) = (f.next()?, f.next()?, f.next()?);
    let addr = addr.split('/').next()?;
    addr.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

/// `<media> <port>[/<count>] <proto> <fmt> ...`.
fn parse_media(value: &str) -> Option<Media> {
    let mut f = value.split_whitespace();
    let kind = f.next()?.to_string();
    let port = f.next()?.split('/').next()?.parse::<u16>().ok()?;
    let proto = f.next()?.to_string();
    Some(Media {
        kind,
        port,
        proto,
        formats: f.map(str::to_string).collect(),
        ..Media::default()
    })
}

/// A direction attribute name, if `attr` is one.
fn parse_direction(attr: &str) -> Option<Direction> {
    [
        Direction::SendRecv,
        Direction::SendOnly,
        Direction::RecvOnly,
        Direction::Inactive,
    ]
    .into_iter()
    .find(|d| direction_attr(*d).eq_ignore_ascii_case(attr))
}

/// Reads one media-level attribute we care about; everything else is ignored.
fn parse_media_attribute(m: &mut Media, attr: &str) {
    if let Some(d) = parse_direction(attr) {
        m.direction.get_or_insert(d);
        return;
    }
    let Some((name, value)) = attr.split_once(':') else {
        return;
    };
    let value = value.trim();
    if name.eq_ignore_ascii_case("rtpmap") {
        if let Some(map) = parse_rtpmap(value) {
            m.rtpmaps.push(map);
        }
    } else if name.eq_ignore_ascii_case("fmtp") {
        if let Some((pt, params)) = split_pt(value) {
            m.fmtps.push(Fmtp {
                payload_type: pt,
                params: params.to_string(),
            });
        }
    } else if name.eq_ignore_ascii_case("ptime") {
        if let Ok(p) = value.parse::<u32>() {
            m.ptime.get_or_insert(p);
        }
    } else if name.eq_ignore_ascii_case("crypto") {
        if let Some(crypto) = Crypto::parse(value) {
            m.cryptos.push(crypto);
        }
    } else if name.eq_ignore_ascii_case("rtcp") && m.rtcp.is_none() {
        m.rtcp = parse_rtcp(value);
        if m.rtcp.is_none() {
            tracing::debug!(value, "ignoring a malformed a=rtcp");
        }
    }
}

/// `<port> [<nettype> <addrtype> <connection-address>]` (RFC 3605 §2.1). Port 0 and an
/// address that is not an IP literal are refused; an IPv4-mapped IPv6 address is the IPv4 one.
fn parse_rtcp(value: &str) -> Option<(u16, Option<IpAddr>)> {
    let mut f = value.split_whitespace();
    let port = f.next()?.parse::<u16>().ok().filter(|p| *p != 0)?;
    match (f.next(), f.next(), f.next(), f.next()) {
        (None, ..) => Some((port, None)),
        (Some(net), Some(addrtype), Some(addr), None)
            if net.eq_ignore_ascii_case("IN")
                && (addrtype.eq_ignore_ascii_case("IP4")
                    || addrtype.eq_ignore_ascii_case("IP6")) =>
        {
            let ip = addr.parse::<IpAddr>().ok()?.to_canonical();
            Some((port, Some(ip)))
        }
        _ => None,
    }
}

/// Where the far end receives RTCP: its `a=rtcp` (an absent address is the stream's
/// connection address), else the next port up from RTP (RFC 3550 §11).
fn remote_rtcp(audio: &Media, rtp: SocketAddr) -> SocketAddr {
    match audio.rtcp {
        Some((port, ip)) => SocketAddr::new(ip.unwrap_or(rtp.ip()), port),
        None => SocketAddr::new(rtp.ip(), rtp.port().wrapping_add(1)),
    }
}

/// Our `a=rtcp` line (RFC 3605): the port and, always, the address (`IN IP4`/`IN IP6`).
fn rtcp_line(out: &mut String, rtcp: SocketAddr) {
    let ip = rtcp.ip().to_canonical();
    out.push_str(&format!(
        "a=rtcp:{} IN {} {ip}\r\n",
        rtcp.port(),
        addr_type(ip)
    ));
}

/// `<pt> <rest>` with pt ≤ 127.
fn split_pt(value: &str) -> Option<(u8, &str)> {
    let (pt, rest) = value.split_once(|c: char| c.is_ascii_whitespace())?;
    let pt = pt.parse::<u8>().ok().filter(|pt| *pt <= 127)?;
    Some((pt, rest.trim()))
}

/// `<pt> <name>/<rate>[/<channels>]`.
fn parse_rtpmap(value: &str) -> Option<RtpMap> {
    let (pt, rest) = split_pt(value)?;
    let mut f = rest.split('/');
    let encoding = f.next()?.trim();
    if encoding.is_empty() {
        return None;
    }
    let clock_rate = f.next()?.trim().parse::<u32>().ok()?;
    let channels = match f.next() {
        Some(c) => Some(c.trim().parse::<u16>().ok()?),
        None => None,
    };
    Some(RtpMap {
        payload_type: pt,
        encoding: encoding.to_string(),
        clock_rate,
        channels,
    })
}

/// The attribute name of a direction.
fn direction_attr(d: Direction) -> &'static str {
    match d {
        Direction::SendRecv => "sendrecv",
        Direction::SendOnly => "sendonly",
        Direction::RecvOnly => "recvonly",
        Direction::Inactive => "inactive",
    }
}

/// `IP4` or `IP6`.
fn addr_type(addr: IpAddr) -> &'static str {
    match addr {
        IpAddr::V4(_) => "IP4",
        IpAddr::V6(_) => "IP6",
    }
}

/// Our codecs without duplicates, in preference order.
fn local_codecs(local: &LocalMedia) -> Vec<Codec> {
    let mut out: Vec<Codec> = Vec::new();
    for c in &local.codecs {
        if !out.contains(c) {
            out.push(*c);
        }
    }
    out
}

/// `v=`, `o=`, `s=`, `c=`, `t=` lines.
fn session_header(out: &mut String, addr: IpAddr, session_id: u64, version: u64) {
    let at = addr_type(addr);
    out.push_str("v=0\r\n");
    out.push_str(&format!(
        "o=switchboard {session_id} {version} IN {at} {addr}\r\n"
    ));
    out.push_str("s=switchboard\r\n");
    out.push_str(&format!("c=IN {at} {addr}\r\n"));
    out.push_str("t=0 0\r\n");
}

/// `a=rtpmap` (and `a=fmtp`) lines of `codec` under payload type `pt`.
fn codec_lines(out: &mut String, codec: Codec, pt: u8, local: &LocalMedia) {
    out.push_str(&format!("a=rtpmap:{pt} {}\r\n", codec.rtpmap()));
    if let Some(fmtp) = codec.fmtp(local.opus_bitrate) {
        out.push_str(&format!("a=fmtp:{pt} {fmtp}\r\n"));
    }
}

/// `a=rtpmap`/`a=fmtp` lines of telephone-event under payload type `pt`.
fn dtmf_lines(out: &mut String, pt: u8, rate: u32) {
    out.push_str(&format!("a=rtpmap:{pt} telephone-event/{rate}\r\n"));
    out.push_str(&format!("a=fmtp:{pt} 0-16\r\n"));
}

/// Builds our offer. session_id/version are chosen by the caller (o= line); the version must increase on each re-offer.
///
/// One audio `m=` line over RTP/AVP listing our codecs in preference order (Opus 111, G.722 9, PCMU 0,
/// PCMA 8), then telephone-event 101 (8 kHz) and 110 (48 kHz, only with Opus) when `dtmf`,
/// `a=ptime` (ours, [`LocalMedia::ptime`]) and `a=<dir>` (`dir` from our point of view). An empty codec list offers
/// PCMU alone, so the SDP stays valid (the configuration layer should forbid it).
pub fn offer(local: &LocalMedia, dir: Direction, session_id: u64, version: u64) -> String {
    let mut codecs = local_codecs(local);
    if codecs.is_empty() {
        codecs.push(Codec::Pcmu);
    }
    let mut pts: Vec<u8> = codecs.iter().map(Codec::payload_type).collect();
    let dtmf_48k = local.dtmf && codecs.contains(&Codec::Opus);
    if local.dtmf {
        pts.push(DTMF_PT_8K);
    }
    if dtmf_48k {
        pts.push(DTMF_PT_48K);
    }
    let mut out = String::new();
    session_header(&mut out, local.addr, session_id, version);
    let proto = match local.srtp {
        SrtpMode::Mandatory => "RTP/SAVP",
        SrtpMode::Off | SrtpMode::Optional => "RTP/AVP",
    };
    out.push_str(&format!("m=audio {} {proto}", local.port));
    for pt in &pts {
        out.push_str(&format!(" {pt}"));
    }
    out.push_str("\r\n");
    for c in &codecs {
        codec_lines(&mut out, *c, c.payload_type(), local);
    }
    if local.dtmf {
        dtmf_lines(&mut out, DTMF_PT_8K, 8_000);
    }
    if dtmf_48k {
        dtmf_lines(&mut out, DTMF_PT_48K, 48_000);
    }
    out.push_str(&format!("a=ptime:{}\r\n", local.ptime));
    rtcp_line(&mut out, local.rtcp);
    out.push_str(&format!("a={}\r\n", direction_attr(dir)));
    if local.srtp != SrtpMode::Off {
        for ((tag, suite), key) in CryptoSuite::OFFERED.iter().zip(&local.keys) {
            out.push_str(&Crypto::line(*tag, *suite, key));
        }
    }
    out
}

/// The SRTP keys of an offer we answer: the first `a=crypto` of a suite we speak, with the
/// tag to echo. Errors when the policy and the offer cannot meet.
fn answer_crypto(
    audio: &Media,
    local: &LocalMedia,
) -> Result<Option<(u32, SrtpMaterial)>, SdpError> {
    if local.srtp == SrtpMode::Off {
        return if audio.is_secure_profile() {
            Err(SdpError::SrtpOff)
        } else {
            Ok(None)
        };
    }
    match audio.cryptos.first() {
        Some(c) => Ok(Some((
            c.tag,
            SrtpMaterial {
                suite: c.suite,
                local: local.key_for(c.suite),
                remote: c.key,
            },
        ))),
        None if local.srtp == SrtpMode::Mandatory || audio.is_secure_profile() => {
            Err(SdpError::NoCrypto)
        }
        None => Ok(None),
    }
}

/// The SRTP keys of an answer to our offer: its `a=crypto` whose tag and suite are one we
/// offered. Errors when the policy and the answer cannot meet.
fn answered_crypto(audio: &Media, local: &LocalMedia) -> Result<Option<SrtpMaterial>, SdpError> {
    if local.srtp == SrtpMode::Off {
        return if audio.is_secure_profile() {
            Err(SdpError::SrtpOff)
        } else {
            Ok(None)
        };
    }
    let chosen = audio.cryptos.iter().find(|c| {
        CryptoSuite::OFFERED
            .iter()
            .any(|(tag, suite)| *tag == c.tag && *suite == c.suite)
    });
    match chosen {
        Some(c) => Ok(Some(SrtpMaterial {
            suite: c.suite,
            local: local.key_for(c.suite),
            remote: c.key,
        })),
        None if local.srtp == SrtpMode::Mandatory || audio.is_secure_profile() => {
            Err(SdpError::NoCrypto)
        }
        None => Ok(None),
    }
}

/// Our direction in an answer, from the offerer's (effective) direction and our wish.
fn answer_direction(offered: Direction, wish: Direction) -> Direction {
    let we_may_send = matches!(offered, Direction::SendRecv | Direction::RecvOnly);
    let we_may_recv = matches!(offered, Direction::SendRecv | Direction::SendOnly);
    let we_want_send = matches!(wish, Direction::SendRecv | Direction::SendOnly);
    let we_want_recv = matches!(wish, Direction::SendRecv | Direction::RecvOnly);
    match (we_may_send && we_want_send, we_may_recv && we_want_recv) {
        (true, true) => Direction::SendRecv,
        (true, false) => Direction::SendOnly,
        (false, true) => Direction::RecvOnly,
        (false, false) => Direction::Inactive,
    }
}

/// Our direction given the direction the other side declared (their point of view).
fn mirror(theirs: Direction) -> Direction {
    match theirs {
        Direction::SendRecv => Direction::SendRecv,
        Direction::SendOnly => Direction::RecvOnly,
        Direction::RecvOnly => Direction::SendOnly,
        Direction::Inactive => Direction::Inactive,
    }
}

/// Answers a remote offer: picks the first codec in OUR preference order that the offer contains (by rtpmap name, case-insensitive, or static PT 0/8 without rtpmap), keeps the OFFERER's payload type numbers, includes telephone-event if offered and we want dtmf, and sets the answer direction from the offer's direction and our wish (offer sendonly -> we recvonly (inactive if we wish sendonly/inactive); offer recvonly -> sendonly; offer inactive -> inactive; sendrecv -> our wish). Non-audio or extra m-lines are answered with port 0 in the same order. No common codec -> Err(SdpError::NoCommonCodec) (the caller answers 488).
///
/// Details: the audio stream answered is the first enabled `m=audio` over RTP/AVP or RTP/AVPF
/// (its profile is echoed); every other `m=` line, audio ones included, is rejected with port 0.
/// The answer carries one codec only. Offer recvonly gives sendonly, or inactive when we wish
/// recvonly/inactive. A `c=0.0.0.0` offer (RFC 2543 hold) counts as the offerer not receiving.
/// telephone-event is included only at the chosen codec's clock rate (RFC 4733 §2.1).
/// Errors: [`SdpError::NoAudio`] when no audio stream is usable, [`SdpError::NoConnection`]
/// when it has no address, [`SdpError::NoCommonCodec`].
pub fn answer(
    offer: &Sdp,
    local: &LocalMedia,
    wish: Direction,
    session_id: u64,
    version: u64,
) -> Result<(String, Negotiated), SdpError> {
    let index = offer.audio_index().ok_or(SdpError::NoAudio)?;
    let audio = offer.media.get(index).ok_or(SdpError::NoAudio)?;
    let remote_ip = offer.audio_connection().ok_or(SdpError::NoConnection)?;
    let offered_pts = audio.payload_types();
    let (codec, pt) = local_codecs(local)
        .into_iter()
        .find_map(|c| {
            offered_pts
                .iter()
                .find(|pt| audio.codec_of(**pt) == Some(c))
                .map(|pt| (c, *pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf = if local.dtmf {
        audio.telephone_event(codec.clock_rate())
    } else {
        None
    };
    let direction = answer_direction(offer.effective_direction(), wish);
    let crypto = answer_crypto(audio, local)?;

    let mut out = String::new();
    session_header(&mut out, local.addr, session_id, version);
    for (i, m) in offer.media.iter().enumerate() {
        if i == index {
            out.push_str(&format!("m=audio {} {} {pt}", local.port, m.proto));
            if let Some(d) = dtmf {
                out.push_str(&format!(" {d}"));
            }
            out.push_str("\r\n");
            codec_lines(&mut out, codec, pt, local);
            if let Some(d) = dtmf {
                dtmf_lines(&mut out, d, codec.clock_rate());
            }
            out.push_str(&format!("a=ptime:{}\r\n", local.ptime));
            rtcp_line(&mut out, local.rtcp);
            out.push_str(&format!("a={}\r\n", direction_attr(direction)));
            if let Some((tag, material)) = &crypto {
                out.push_str(&Crypto::line(*tag, material.suite, &material.local));
            }
        } else {
            out.push_str(&format!("m={} 0 {}", m.kind, m.proto));
            for f in &m.formats {
                out.push(' ');
                out.push_str(f);
            }
            out.push_str("\r\n");
        }
    }
    let remote = SocketAddr::new(remote_ip, audio.port);
    let negotiated = Negotiated {
        codec,
        payload_type: pt,
        remote,
        remote_rtcp: remote_rtcp(audio, remote),
        direction,
        dtmf_payload_type: dtmf,
        max_bitrate: max_average_bitrate(audio, pt),
        ptime: audio.ptime,
        srtp: crypto.map(|(_, material)| material),
    };
    Ok((out, negotiated))
}

/// What an answer (to our offer) gives us.
///
/// Takes the answer's first usable audio stream (our offer has exactly one); the codec is the
/// first payload type in the ANSWER's order that maps to one of `local.codecs`, with the
/// answerer's payload type number (it may have renumbered: we send with its number, it sends
/// with ours, [`Codec::payload_type`]). Our direction mirrors theirs (their sendonly → our
/// recvonly, …; `c=0.0.0.0` → we do not send); the caller intersects it with what it offered
/// if the peer answered more than was offered.
pub fn negotiate_answer(answer: &Sdp, local: &LocalMedia) -> Result<Negotiated, SdpError> {
    let audio = answer.audio().ok_or(SdpError::NoAudio)?;
    let remote_ip = answer.audio_connection().ok_or(SdpError::NoConnection)?;
    let ours = local_codecs(local);
    let (codec, pt) = audio
        .payload_types()
        .into_iter()
        .find_map(|pt| {
            audio
                .codec_of(pt)
                .filter(|c| ours.contains(c))
                .map(|c| (c, pt))
        })
        .ok_or(SdpError::NoCommonCodec)?;
    let dtmf = if local.dtmf {
        audio.telephone_event(codec.clock_rate())
    } else {
        None
    };
    let srtp = answered_crypto(audio, local)?;
    let remote = SocketAddr::new(remote_ip, audio.port);
    Ok(Negotiated {
        codec,
        payload_type: pt,
        remote,
        remote_rtcp: remote_rtcp(audio, remote),
        direction: mirror(answer.effective_direction()),
        dtmf_payload_type: dtmf,
        max_bitrate: max_average_bitrate(audio, pt),
        ptime: audio.ptime,
        srtp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn crlf(s: &str) -> String {
        s.lines().map(|l| format!("{}\r\n", l.trim())).collect()
    }

    fn local(codecs: &[Codec], dtmf: bool) -> LocalMedia {
        LocalMedia {
            addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            port: 40000,
            rtcp: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 40001),
            codecs: codecs.to_vec(),
            dtmf,
            opus_bitrate: None,
            ptime: 20,
            srtp: SrtpMode::Off,
            keys: [[0; KEY_LEN]; 2],
        }
    }

    fn all() -> LocalMedia {
        local(&[Codec::Opus, Codec::Pcmu, Codec::Pcma], true)
    }

    fn lines(s: &str) -> Vec<&str> {
        assert!(s.ends_with("\r\n"));
        assert!(!s.replace("\r\n", "").contains('\n'), "bare LF in {s:?}");
        s.split("\r\n").filter(|l| !l.is_empty()).collect()
    }

    const BARESIP: &str = "v=0
        o=- 1922437325 2053458802 IN IP4 198.51.100.7
        s=-
        c=IN IP4 198.51.100.7
        t=0 0
        m=audio 9006 RTP/AVP 96 9 0 8 101
        b=AS:128
        a=rtpmap:96 opus/48000/2
        a=fmtp:96 stereo=1;sprop-stereo=1
        a=rtpmap:9 G722/8000
        a=rtpmap:0 PCMU/8000
        a=rtpmap:8 PCMA/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-15
        a=rtcp:9007 IN IP4 198.51.100.7
        a=sendrecv
        a=label:1
        a=ssrc:1480112914 cname:6f1a0c8e-8b1e-4c5e-9e2f-7d1d8c3b2a10
        a=rtcp-rsize
        a=ptime:20";

    const LINPHONE: &str = "v=0
        o=alice 3027 1529 IN IP4 198.51.100.20
        s=Talk
        c=IN IP4 198.51.100.20
        t=0 0
        a=rtcp-xr:rcvr-rtt=all:10000 stat-summary=loss,dup,jitt,TTL voip-metrics
        a=record:off
        m=audio 7078 RTP/AVP 96 97 98 0 8 18 101 99 100
        a=rtpmap:96 opus/48000/2
        a=fmtp:96 useinbandfec=1
        a=rtpmap:97 speex/16000
        a=fmtp:97 vbr=on
        a=rtpmap:98 speex/8000
        a=fmtp:98 vbr=on
        a=fmtp:18 annexb=yes
        a=rtpmap:101 telephone-event/48000
        a=rtpmap:99 telephone-event/16000
        a=rtpmap:100 telephone-event/8000
        a=rtcp-fb:* trr-int 5000
        a=rtcp-fb:* ccm tmmbr
        m=video 9078 RTP/AVP 96 97
        a=rtpmap:96 VP8/90000
        a=rtpmap:97 H264/90000
        a=fmtp:97 profile-level-id=42801F
        a=rtcp-fb:* trr-int 5000
        a=rtcp-fb:* ccm tmmbr
        a=rtcp-fb:96 nack pli
        a=rtcp-fb:96 ccm fir";

    const ASTERISK: &str = "v=0
        o=- 1234567890 1234567890 IN IP4 203.0.113.5
        s=Asterisk
        c=IN IP4 203.0.113.5
        t=0 0
        m=audio 17182 RTP/AVP 0 101
        a=rtpmap:0 PCMU/8000
        a=rtpmap:101 telephone-event/8000
        a=fmtp:101 0-16
        a=ptime:20
        a=maxptime:150
        a=sendrecv";

    #[test]
    fn our_ptime_is_asked_for_in_offer_and_answer() {
        let ten = LocalMedia {
            ptime: 10,
            ..local(&[Codec::Pcmu], false)
        };
        assert!(offer(&ten, Direction::SendRecv, 1, 1).contains("a=ptime:10\r\n"));
        let theirs =
            parse(crlf("v=0\nc=IN IP4 203.0.113.9\nm=audio 5004 RTP/AVP 0\na=ptime:30").as_bytes())
                .expect("parses");
        let (text, n) = answer(&theirs, &ten, Direction::SendRecv, 1, 1).expect("answers");
        assert!(text.contains("a=ptime:10\r\n"), "{text}");
        assert_eq!(n.ptime, Some(30), "what we send follows theirs");
    }

    #[test]
    fn offer_format() {
        let o = offer(&all(), Direction::SendRecv, 42, 1);
        assert_eq!(
            lines(&o),
            [
                "v=0",
                "o=switchboard 42 1 IN IP4 192.0.2.1",
                "s=switchboard",
                "c=IN IP4 192.0.2.1",
                "t=0 0",
                "m=audio 40000 RTP/AVP 111 0 8 101 110",
                "a=rtpmap:111 opus/48000/2",
                "a=fmtp:111 minptime=10;useinbandfec=1;stereo=0",
                "a=rtpmap:0 PCMU/8000",
                "a=rtpmap:8 PCMA/8000",
                "a=rtpmap:101 telephone-event/8000",
                "a=fmtp:101 0-16",
                "a=rtpmap:110 telephone-event/48000",
                "a=fmtp:110 0-16",
                "a=ptime:20",
                "a=rtcp:40001 IN IP4 192.0.2.1",
                "a=sendrecv",
            ]
        );
        // Round trip through our own parser.
        let p = parse(o.as_bytes()).expect("parses");
        assert_eq!(
            p.audio().map(Media::payload_types),
            Some(vec![111, 0, 8, 101, 110])
        );
        assert_eq!(p.origin.as_ref().map(|o| o.version.as_str()), Some("1"));
        assert_eq!(
            p.audio().and_then(|m| m.rtcp),
            Some((40001, Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)))))
        );

        let mut v6 = local(&[Codec::Pcma, Codec::Pcma], false);
        v6.addr = IpAddr::V6(Ipv6Addr::LOCALHOST);
        v6.rtcp = SocketAddr::new(v6.addr, 40001);
        let o = offer(&v6, Direction::SendOnly, 7, 8);
        assert_eq!(
            lines(&o),
            [
                "v=0",
                "o=switchboard 7 8 IN IP6 ::1",
                "s=switchboard",
                "c=IN IP6 ::1",
                "t=0 0",
                "m=audio 40000 RTP/AVP 8",
                "a=rtpmap:8 PCMA/8000",
                "a=ptime:20",
                "a=rtcp:40001 IN IP6 ::1",
                "a=sendonly",
            ]
        );
        // No opus: no 48 kHz telephone-event.
        let o = offer(&local(&[Codec::Pcmu], true), Direction::Inactive, 1, 2);
        assert!(o.contains("m=audio 40000 RTP/AVP 0 101\r\n"));
        assert!(!o.contains("110"));
        assert!(o.ends_with("a=inactive\r\n"));
        // Empty codec list still yields a valid offer.
        let o = offer(&local(&[], false), Direction::SendRecv, 1, 2);
        assert!(o.contains("m=audio 40000 RTP/AVP 0\r\n"));
    }

    #[test]
    fn answer_baresip() {
        let sdp = parse(crlf(BARESIP).as_bytes()).expect("parses");
        let (text, n) = answer(&sdp, &all(), Direction::SendRecv, 5, 6).expect("answers");
        assert_eq!(
            lines(&text),
            [
                "v=0",
                "o=switchboard 5 6 IN IP4 192.0.2.1",
                "s=switchboard",
                "c=IN IP4 192.0.2.1",
                "t=0 0",
                "m=audio 40000 RTP/AVP 96",
                "a=rtpmap:96 opus/48000/2",
                "a=fmtp:96 minptime=10;useinbandfec=1;stereo=0",
                "a=ptime:20",
                "a=rtcp:40001 IN IP4 192.0.2.1",
                "a=sendrecv",
            ]
        );
        assert_eq!(
            n,
            Negotiated {
                codec: Codec::Opus,
                payload_type: 96,
                remote: "198.51.100.7:9006".parse().expect("addr"),
                remote_rtcp: "198.51.100.7:9007".parse().expect("addr"),
                direction: Direction::SendRecv,
                // baresip offers telephone-event only at 8 kHz: not usable with opus.
                dtmf_payload_type: None,
                max_bitrate: None,
                ptime: Some(20),
                srtp: None,
            }
        );
        // Preferring PCMA gives PCMA with the 8 kHz telephone-event.
        let (text, n) = answer(
            &sdp,
            &local(&[Codec::Pcma, Codec::Opus], true),
            Direction::SendRecv,
            5,
            6,
        )
        .expect("answers");
        assert!(text.contains("m=audio 40000 RTP/AVP 8 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::Pcma, 8, Some(101))
        );
    }

    #[test]
    fn answer_linphone_rejects_video() {
        let sdp = parse(crlf(LINPHONE).as_bytes()).expect("parses");
        assert_eq!(sdp.media.len(), 2);
        let (text, n) = answer(&sdp, &all(), Direction::SendRecv, 1, 1).expect("answers");
        let l = lines(&text);
        assert_eq!(l[5], "m=audio 40000 RTP/AVP 96 101");
        assert!(l.contains(&"a=rtpmap:96 opus/48000/2"));
        assert!(l.contains(&"a=rtpmap:101 telephone-event/48000"));
        assert_eq!(l.last(), Some(&"m=video 0 RTP/AVP 96 97"));
        assert_eq!(l.iter().filter(|l| l.starts_with("m=")).count(), 2);
        assert_eq!(n.codec, Codec::Opus);
        assert_eq!(n.payload_type, 96);
        assert_eq!(n.dtmf_payload_type, Some(101));
        assert_eq!(n.remote, "198.51.100.20:7078".parse().expect("addr"));
        // Without DTMF wanted: no telephone-event.
        let (text, n) = answer(
            &sdp,
            &local(&[Codec::Pcmu], false),
            Direction::SendRecv,
            1,
            1,
        )
        .expect("answers");
        assert!(text.contains("m=audio 40000 RTP/AVP 0\r\n"));
        assert!(!text.contains("telephone-event"));
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::Pcmu, 0, None)
        );
        // PCMU at 8 kHz picks the 8 kHz telephone-event (PT 100).
        let (_, n) = answer(
            &sdp,
            &local(&[Codec::Pcmu], true),
            Direction::SendRecv,
            1,
            1,
        )
        .expect("answers");
        assert_eq!(n.dtmf_payload_type, Some(100));
    }

    #[test]
    fn g722_is_payload_9_at_the_8000_clock() {
        let g722 = local(&[Codec::Opus, Codec::G722, Codec::Pcmu], true);
        let o = offer(&g722, Direction::SendRecv, 1, 1);
        let l = lines(&o);
        assert!(l.contains(&"m=audio 40000 RTP/AVP 111 9 0 101 110"), "{o}");
        assert!(l.contains(&"a=rtpmap:9 G722/8000"), "{o}");
        assert!(!o.contains("a=fmtp:9"), "{o}");
        assert_eq!(Codec::from_name("g722"), Some(Codec::G722));
        assert_eq!(Codec::G722.clock_rate(), 8_000);
        // baresip offers opus 96, G722 9, PCMU, PCMA: preferring G.722 answers 9 with the
        // 8 kHz telephone-event (RFC 4733 at the codec's RTP clock).
        let sdp = parse(crlf(BARESIP).as_bytes()).expect("parses");
        let (text, n) = answer(
            &sdp,
            &local(&[Codec::G722, Codec::Pcmu], true),
            Direction::SendRecv,
            1,
            1,
        )
        .expect("answers");
        assert!(text.contains("m=audio 40000 RTP/AVP 9 101\r\n"), "{text}");
        assert!(text.contains("a=rtpmap:9 G722/8000\r\n"), "{text}");
        assert!(
            text.contains("a=rtpmap:101 telephone-event/8000\r\n"),
            "{text}"
        );
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::G722, 9, Some(101))
        );
        // A phone that lists 9 without an rtpmap still means G.722 (static assignment); one
        // that maps G722 to a 16000 clock does not (the RFC 3551 clock is 8000).
        let bare = parse(crlf("v=0\nc=IN IP4 203.0.113.9\nm=audio 5004 RTP/AVP 9 0").as_bytes())
            .expect("parses");
        let (_, n) = answer(&bare, &g722, Direction::SendRecv, 1, 1).expect("answers");
        assert_eq!((n.codec, n.payload_type), (Codec::G722, 9));
        let wrong = parse(
            crlf("v=0\nc=IN IP4 203.0.113.9\nm=audio 5004 RTP/AVP 9 0\na=rtpmap:9 G722/16000")
                .as_bytes(),
        )
        .expect("parses");
        let (_, n) = answer(&wrong, &g722, Direction::SendRecv, 1, 1).expect("answers");
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        // Their answer choosing G.722 to our offer.
        let their = parse(
            crlf("v=0\nc=IN IP4 203.0.113.9\nm=audio 5004 RTP/AVP 9 101\na=rtpmap:9 G722/8000\na=rtpmap:101 telephone-event/8000")
                .as_bytes(),
        )
        .expect("parses");
        let n = negotiate_answer(&their, &g722).expect("negotiates");
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::G722, 9, Some(101))
        );
    }

    #[test]
    fn answer_asterisk_pcmu_only() {
        let sdp = parse(crlf(ASTERISK).as_bytes()).expect("parses");
        let (text, n) = answer(&sdp, &all(), Direction::SendRecv, 9, 10).expect("answers");
        assert!(text.contains("m=audio 40000 RTP/AVP 0 101\r\n"));
        assert!(text.contains("a=rtpmap:0 PCMU/8000\r\n"));
        assert_eq!(
            n,
            Negotiated {
                codec: Codec::Pcmu,
                payload_type: 0,
                remote: "203.0.113.5:17182".parse().expect("addr"),
                remote_rtcp: "203.0.113.5:17183".parse().expect("addr"),
                direction: Direction::SendRecv,
                dtmf_payload_type: Some(101),
                max_bitrate: None,
                ptime: Some(20),
                srtp: None,
            }
        );
        assert!(!sdp.is_hold());
        assert_eq!(sdp.audio().and_then(|m| m.ptime), Some(20));
        assert_eq!(
            answer(
                &sdp,
                &local(&[Codec::Opus, Codec::Pcma], true),
                Direction::SendRecv,
                1,
                1
            ),
            Err(SdpError::NoCommonCodec)
        );
    }

    #[test]
    fn static_payload_types_without_rtpmap() {
        let sdp = parse(
            crlf("v=0\no=- 1 1 IN IP4 203.0.113.9\ns=-\nc=IN IP4 203.0.113.9\nt=0 0\nm=audio 5004 RTP/AVP 18 8 0")
                .as_bytes(),
        )
        .expect("parses");
        let (_, n) = answer(&sdp, &all(), Direction::SendRecv, 1, 1).expect("answers");
        assert_eq!((n.codec, n.payload_type), (Codec::Pcmu, 0));
        let (_, n) = answer(
            &sdp,
            &local(&[Codec::Pcma], true),
            Direction::SendRecv,
            1,
            1,
        )
        .expect("answers");
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::Pcma, 8, None)
        );
        // Case-insensitive names; a dynamic PT with a wrong clock rate is not opus.
        let sdp = parse(
            crlf("v=0\nc=IN IP4 203.0.113.9\nm=audio 5004 RTP/AVP 100 101\na=rtpmap:100 OPUS/16000/2\na=rtpmap:101 pcma/8000")
                .as_bytes(),
        )
        .expect("parses");
        let (_, n) = answer(&sdp, &all(), Direction::SendRecv, 1, 1).expect("answers");
        assert_eq!((n.codec, n.payload_type), (Codec::Pcma, 101));
    }

    #[test]
    fn directions() {
        let with_dir = |attr: &str| {
            let body = format!("{}\na={attr}", ASTERISK.replace("a=sendrecv", ""));
            parse(crlf(&body).as_bytes()).expect("parses")
        };
        let cases = [
            // (offer attr, our wish, our answer)
            ("sendonly", Direction::SendRecv, Direction::RecvOnly),
            ("sendonly", Direction::RecvOnly, Direction::RecvOnly),
            ("sendonly", Direction::SendOnly, Direction::Inactive),
            ("sendonly", Direction::Inactive, Direction::Inactive),
            ("recvonly", Direction::SendRecv, Direction::SendOnly),
            ("recvonly", Direction::SendOnly, Direction::SendOnly),
            ("recvonly", Direction::RecvOnly, Direction::Inactive),
            ("inactive", Direction::SendRecv, Direction::Inactive),
            ("sendrecv", Direction::SendRecv, Direction::SendRecv),
            ("sendrecv", Direction::SendOnly, Direction::SendOnly),
            ("sendrecv", Direction::RecvOnly, Direction::RecvOnly),
            ("sendrecv", Direction::Inactive, Direction::Inactive),
        ];
        for (attr, wish, want) in cases {
            let sdp = with_dir(attr);
            let (text, n) = answer(&sdp, &all(), wish, 1, 1).expect("answers");
            assert_eq!(n.direction, want, "{attr} {wish:?}");
            assert!(
                text.ends_with(&format!("a={}\r\n", direction_attr(want))),
                "{text}"
            );
        }
        let hold = with_dir("sendonly");
        assert_eq!(hold.direction(), Direction::SendOnly);
        assert!(hold.is_hold());
        let inactive = with_dir("inactive");
        assert_eq!(inactive.direction(), Direction::Inactive);
        assert!(inactive.is_hold());
        let recvonly = with_dir("recvonly");
        assert!(!recvonly.is_hold());
        // No direction attribute at all: sendrecv.
        let none = parse(crlf(&ASTERISK.replace("a=sendrecv", "")).as_bytes()).expect("parses");
        assert_eq!(none.direction(), Direction::SendRecv);
        // Session-level attribute applies; media-level overrides it.
        let session = parse(
            crlf(
                &ASTERISK
                    .replace("t=0 0", "t=0 0\na=sendonly")
                    .replace("a=sendrecv", ""),
            )
            .as_bytes(),
        )
        .expect("parses");
        assert_eq!(session.direction(), Direction::SendOnly);
        let overridden =
            parse(crlf(&ASTERISK.replace("t=0 0", "t=0 0\na=inactive")).as_bytes()).expect("ok");
        assert_eq!(overridden.direction(), Direction::SendRecv);
    }

    #[test]
    fn old_style_hold() {
        let sdp =
            parse(crlf(&ASTERISK.replace("c=IN IP4 203.0.113.5", "c=IN IP4 0.0.0.0")).as_bytes())
                .expect("parses");
        assert_eq!(sdp.direction(), Direction::SendRecv);
        assert!(sdp.is_hold());
        let (text, n) = answer(&sdp, &all(), Direction::SendRecv, 1, 2).expect("answers");
        assert_eq!(n.direction, Direction::RecvOnly);
        assert!(text.contains("a=recvonly\r\n"));
        assert_eq!(n.remote, "0.0.0.0:17182".parse().expect("addr"));
        // As an answer to our offer: we must not send.
        let n = negotiate_answer(&sdp, &all()).expect("negotiates");
        assert_eq!(n.direction, Direction::RecvOnly);
    }

    #[test]
    fn port_zero_and_extra_lines() {
        // A disabled first audio stream, then a usable one, then an SRTP one.
        let body = "v=0\no=- 1 2 IN IP4 203.0.113.1\ns=-\nc=IN IP4 203.0.113.1\nt=0 0\n\
                    m=audio 0 RTP/AVP 0\n\
                    m=audio 6000 RTP/AVP 8\n\
                    m=audio 6002 RTP/SAVP 0\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:abc\n\
                    m=application 9 UDP/BFCP *\n";
        let sdp = parse(body.as_bytes()).expect("parses");
        assert_eq!(sdp.media.len(), 4);
        assert_eq!(sdp.audio_index(), Some(1));
        let (text, n) = answer(&sdp, &all(), Direction::SendRecv, 1, 1).expect("answers");
        let m: Vec<&str> = lines(&text)
            .into_iter()
            .filter(|l| l.starts_with("m="))
            .collect();
        assert_eq!(
            m,
            [
                "m=audio 0 RTP/AVP 0",
                "m=audio 40000 RTP/AVP 8",
                "m=audio 0 RTP/SAVP 0",
                "m=application 0 UDP/BFCP *",
            ]
        );
        assert_eq!(n.remote, "203.0.113.1:6000".parse().expect("addr"));
        // Only a disabled audio stream: nothing to answer with.
        let only = parse(b"v=0\nc=IN IP4 203.0.113.1\nm=audio 0 RTP/AVP 0\n").expect("parses");
        assert_eq!(
            answer(&only, &all(), Direction::SendRecv, 1, 1),
            Err(SdpError::NoAudio)
        );
        assert_eq!(negotiate_answer(&only, &all()), Err(SdpError::NoAudio));
        // Video only.
        let video = parse(b"v=0\nc=IN IP4 203.0.113.1\nm=video 5000 RTP/AVP 96\n").expect("ok");
        assert_eq!(
            answer(&video, &all(), Direction::SendRecv, 1, 1),
            Err(SdpError::NoAudio)
        );
    }

    #[test]
    fn connection_levels() {
        // Session-level c= only.
        let sdp = parse(crlf(ASTERISK).as_bytes()).expect("parses");
        assert_eq!(sdp.connection, Some("203.0.113.5".parse().expect("ip")));
        assert_eq!(sdp.audio().and_then(|m| m.connection), None);
        assert_eq!(sdp.audio_connection(), sdp.connection);
        // Media-level c= overrides; multicast TTL suffix ignored.
        let body =
            "v=0\r\nc=IN IP4 203.0.113.5/127\r\nm=audio 4000 RTP/AVP 0\r\nc=IN IP6 2001:db8::5\r\n";
        let sdp = parse(body.as_bytes()).expect("parses");
        assert_eq!(sdp.connection, Some("203.0.113.5".parse().expect("ip")));
        let (_, n) = answer(&sdp, &all(), Direction::SendRecv, 1, 1).expect("answers");
        assert_eq!(n.remote, "[2001:db8::5]:4000".parse().expect("addr"));
        // No c= anywhere.
        let sdp = parse(b"v=0\nm=audio 4000 RTP/AVP 0\n").expect("parses");
        assert_eq!(
            answer(&sdp, &all(), Direction::SendRecv, 1, 1),
            Err(SdpError::NoConnection)
        );
        // A host name is not an address we can use.
        assert_eq!(
            parse(b"v=0\nc=IN IP4 pbx.example.com\n"),
            Err(SdpError::Malformed {
                line: 2,
                reason: "bad c= address"
            })
        );
    }

    #[test]
    fn lf_line_endings() {
        let lf = BARESIP
            .lines()
            .map(|l| format!("{}\n", l.trim()))
            .collect::<String>();
        let a = parse(lf.as_bytes()).expect("parses");
        let b = parse(crlf(BARESIP).as_bytes()).expect("parses");
        assert_eq!(a, b);
        assert_eq!(
            a.origin,
            Some(Origin {
                username: "-".into(),
                session_id: "1922437325".into(),
                version: "2053458802".into(),
                address: "198.51.100.7".into(),
            })
        );
        let audio = a.audio().expect("audio");
        assert_eq!(audio.payload_types(), [96, 9, 0, 8, 101]);
        assert_eq!(audio.fmtp(96), Some("stereo=1;sprop-stereo=1"));
        assert_eq!(
            audio.rtpmap(96),
            Some(&RtpMap {
                payload_type: 96,
                encoding: "opus".into(),
                clock_rate: 48000,
                channels: Some(2),
            })
        );
        assert_eq!(audio.direction, Some(Direction::SendRecv));
    }

    #[test]
    fn negotiate_answer_renumbered() {
        let ours = all();
        // The answerer renumbers opus 111 -> 98 and telephone-event 110 -> 97.
        let body =
            "v=0\r\no=- 5 5 IN IP4 198.51.100.30\r\ns=-\r\nc=IN IP4 198.51.100.30\r\nt=0 0\r\n\
                    m=audio 30000 RTP/AVP 98 97\r\na=rtpmap:98 opus/48000/2\r\n\
                    a=rtpmap:97 telephone-event/48000\r\na=fmtp:97 0-16\r\na=sendrecv\r\n";
        let sdp = parse(body.as_bytes()).expect("parses");
        let n = negotiate_answer(&sdp, &ours).expect("negotiates");
        assert_eq!(
            n,
            Negotiated {
                codec: Codec::Opus,
                payload_type: 98,
                remote: "198.51.100.30:30000".parse().expect("addr"),
                remote_rtcp: "198.51.100.30:30001".parse().expect("addr"),
                direction: Direction::SendRecv,
                dtmf_payload_type: Some(97),
                max_bitrate: None,
                ptime: None,
                srtp: None,
            }
        );
        // An answer listing several: its first one we support wins; their recvonly = our sendonly.
        let body = "v=0\nc=IN IP4 198.51.100.30\nm=audio 30000 RTP/AVP 9 8 0\na=recvonly\n";
        let n = negotiate_answer(&parse(body.as_bytes()).expect("parses"), &ours).expect("ok");
        assert_eq!(
            (n.codec, n.payload_type, n.direction),
            (Codec::Pcma, 8, Direction::SendOnly)
        );
        // A codec we did not offer is not accepted.
        let body = "v=0\nc=IN IP4 198.51.100.30\nm=audio 30000 RTP/AVP 8\n";
        assert_eq!(
            negotiate_answer(
                &parse(body.as_bytes()).expect("parses"),
                &local(&[Codec::Pcmu], true)
            ),
            Err(SdpError::NoCommonCodec)
        );
        // Rejected audio (port 0).
        let body = "v=0\nc=IN IP4 198.51.100.30\nm=audio 0 RTP/AVP 0\n";
        assert_eq!(
            negotiate_answer(&parse(body.as_bytes()).expect("parses"), &ours),
            Err(SdpError::NoAudio)
        );
        // Round trip: our offer answered by our own answer function.
        let offer_text = offer(&ours, Direction::SendRecv, 1, 1);
        let offered = parse(offer_text.as_bytes()).expect("parses");
        let peer = local(&[Codec::Pcma, Codec::Opus], true);
        let (answer_text, theirs) =
            answer(&offered, &peer, Direction::SendRecv, 2, 2).expect("answers");
        let n = negotiate_answer(&parse(answer_text.as_bytes()).expect("parses"), &ours)
            .expect("negotiates");
        assert_eq!(
            (n.codec, n.payload_type, n.dtmf_payload_type),
            (Codec::Pcma, 8, Some(101))
        );
        assert_eq!((theirs.codec, theirs.payload_type), (Codec::Pcma, 8));
    }

    #[test]
    fn opus_bitrate_is_declared_and_honoured_both_ways() {
        let mut ours = all();
        ours.opus_bitrate = Some(32_000);
        let text = offer(&ours, Direction::SendRecv, 1, 1);
        assert!(
            lines(&text).contains(
                &"a=fmtp:111 minptime=10;useinbandfec=1;stereo=0;maxaveragebitrate=32000"
            ),
            "{text}"
        );
        // Their answer caps what we send; a malformed value is ignored.
        for (fmtp, cap) in [
            ("useinbandfec=1; maxaveragebitrate=12000", Some(12_000)),
            ("MaxAverageBitrate=20000", Some(20_000)),
            ("maxaveragebitrate=lots", None),
            ("useinbandfec=1", None),
        ] {
            let body = format!(
                "v=0\r\nc=IN IP4 198.51.100.30\r\nm=audio 30000 RTP/AVP 111\r\n\
                 a=rtpmap:111 opus/48000/2\r\na=fmtp:111 {fmtp}\r\n"
            );
            let sdp = parse(body.as_bytes()).expect("parses");
            let n = negotiate_answer(&sdp, &ours).expect("negotiates");
            assert_eq!(n.max_bitrate, cap, "{fmtp}");
            // The same as an offer we answer.
            let (answer_text, n) = answer(&sdp, &ours, Direction::SendRecv, 2, 2).expect("answers");
            assert_eq!(n.max_bitrate, cap, "{fmtp}");
            assert!(
                answer_text.contains("maxaveragebitrate=32000"),
                "{answer_text}"
            );
        }
    }

    #[test]
    fn parse_errors() {
        assert_eq!(parse(b""), Err(SdpError::Empty));
        assert_eq!(parse(b"\r\n \n"), Err(SdpError::Empty));
        assert_eq!(parse(b"hello world"), Err(SdpError::MissingVersion));
        assert_eq!(parse(b"m=audio 1 RTP/AVP 0"), Err(SdpError::MissingVersion));
        assert_eq!(
            parse(b"v=0\nm=audio port RTP/AVP 0"),
            Err(SdpError::Malformed {
                line: 2,
                reason: "bad m= line"
            })
        );
        assert_eq!(
            parse(b"v=0\nm=audio 70000 RTP/AVP 0"),
            Err(SdpError::Malformed {
                line: 2,
                reason: "bad m= line"
            })
        );
        // Junk attributes are ignored.
        let sdp = parse(
            b"v=0\nc=IN IP4 203.0.113.1\nm=audio 1 RTP/AVP 0 x 300\na=rtpmap:x y\na=rtpmap:0\n\
              a=rtpmap:200 PCMU/8000\na=fmtp:0\na=ptime:abc\n=\nzz\na=\n",
        )
        .expect("parses");
        let audio = sdp.audio().expect("audio");
        assert_eq!(audio.payload_types(), [0]);
        assert!(audio.rtpmaps.is_empty() && audio.fmtps.is_empty() && audio.ptime.is_none());
    }

    /// A tiny deterministic generator for the mutation loop (tests only).
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % (n.max(1) as u64)) as usize
        }
    }

    fn exercise(body: &[u8]) {
        if let Ok(sdp) = parse(body) {
            let _ = sdp.direction();
            let _ = sdp.is_hold();
            for wish in [Direction::SendRecv, Direction::Inactive] {
                if let Ok((text, _)) = answer(&sdp, &all(), wish, u64::MAX, u64::MAX) {
                    assert!(
                        parse(text.as_bytes()).is_ok(),
                        "our answer must parse: {text}"
                    );
                }
            }
            let _ = negotiate_answer(&sdp, &all());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let seeds = [
            crlf(BARESIP),
            crlf(LINPHONE),
            crlf(ASTERISK),
            offer(&all(), Direction::SendRecv, 1, 1),
        ];
        let tokens: [&[u8]; 14] = [
            b"\n",
            b"\r",
            b" ",
            b"/",
            b":",
            b"=",
            b"0",
            b"65536",
            b"m=audio 1 RTP/AVP 0\n",
            b"c=IN IP4 0.0.0.0\n",
            b"\xff\xfe",
            b"a=rtpmap:0 opus/48000/2\n",
            b"\0",
            "é".as_bytes(),
        ];
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let mut runs = 0usize;
        for seed in &seeds {
            let bytes = seed.as_bytes();
            // Every truncation.
            for i in 0..=bytes.len() {
                exercise(&bytes[..i]);
                exercise(&bytes[i..]);
            }
            // Random edits: replace, insert, delete, splice a token.
            for _ in 0..3000 {
                let mut b = bytes.to_vec();
                for _ in 0..=rng.below(4) {
                    let at = rng.below(b.len() + 1);
                    match rng.below(4) {
                        0 if at < b.len() => b[at] = rng.next() as u8,
                        1 => b.insert(at, rng.next() as u8),
                        2 if at < b.len() => {
                            b.remove(at);
                        }
                        _ => {
                            let t = tokens[rng.below(tokens.len())];
                            b.splice(at..at, t.iter().copied());
                        }
                    }
                }
                exercise(&b);
                runs += 1;
            }
        }
        for junk in [
            &b"v="[..],
            b"v=0\nm=",
            b"v=0\nm=audio",
            b"v=0\nm=audio 1",
            b"v=0\nc=",
            b"\xff",
            b"=\n=",
            b"v=0\na=fmtp:",
        ] {
            exercise(junk);
        }
        assert!(runs >= 12_000);
    }

    fn secure(mode: SrtpMode) -> LocalMedia {
        LocalMedia {
            srtp: mode,
            keys: [[1; KEY_LEN], [2; KEY_LEN]],
            ..local(&[Codec::Pcmu], false)
        }
    }

    const THEIR_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd";

    fn plain_offer(proto: &str, crypto: &str) -> Sdp {
        parse(
            crlf(&format!(
                "v=0\no=- 1 1 IN IP4 198.51.100.7\ns=-\nc=IN IP4 198.51.100.7\nt=0 0\n\
             m=audio 9000 {proto} 0\na=rtpmap:0 PCMU/8000\n{crypto}"
            ))
            .as_bytes(),
        )
        .expect("sdp")
    }

    #[test]
    fn srtp_offers_carry_both_suites_and_the_profile_of_the_mode() {
        let mandatory = offer(&secure(SrtpMode::Mandatory), Direction::SendRecv, 1, 1);
        assert!(
            mandatory.contains("m=audio 40000 RTP/SAVP 0"),
            "{mandatory}"
        );
        assert!(mandatory.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(mandatory.contains("a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:"));
        let optional = offer(&secure(SrtpMode::Optional), Direction::SendRecv, 1, 1);
        assert!(optional.contains("m=audio 40000 RTP/AVP 0"), "{optional}");
        assert!(optional.contains("a=crypto:1 "));
        let off = offer(&secure(SrtpMode::Off), Direction::SendRecv, 1, 1);
        assert!(!off.contains("crypto") && off.contains("RTP/AVP"), "{off}");
        // Our own offer parses back with both keys.
        let parsed = parse(mandatory.as_bytes()).expect("sdp");
        let keys: Vec<Key> = parsed.media[0].cryptos.iter().map(|c| c.key).collect();
        assert_eq!(keys, vec![[1; KEY_LEN], [2; KEY_LEN]]);
    }

    #[test]
    fn answering_an_srtp_offer_echoes_its_tag_with_our_key() {
        let offer = plain_offer(
            "RTP/SAVP",
            &format!("a=crypto:7 AES_CM_128_HMAC_SHA1_32 inline:{THEIR_KEY}\n"),
        );
        for mode in [SrtpMode::Optional, SrtpMode::Mandatory] {
            let (body, n) =
                answer(&offer, &secure(mode), Direction::SendRecv, 1, 1).expect("answer");
            assert!(body.contains("m=audio 40000 RTP/SAVP 0"), "{body}");
            let srtp = n.srtp.expect("keys");
            assert_eq!(srtp.suite, CryptoSuite::AesCm128HmacSha1_32);
            assert_eq!(srtp.local, [2; KEY_LEN], "our _32 key");
            assert_eq!(srtp.remote[..3], [0, 1, 2]);
            let ours = parse(body.as_bytes()).expect("sdp");
            assert_eq!(ours.media[0].cryptos.len(), 1);
            assert_eq!(ours.media[0].cryptos[0].tag, 7);
            assert_eq!(ours.media[0].cryptos[0].key, [2; KEY_LEN]);
        }
        assert_eq!(
            answer(&offer, &secure(SrtpMode::Off), Direction::SendRecv, 1, 1).map(|_| ()),
            Err(SdpError::SrtpOff)
        );
    }

    #[test]
    fn plain_offers_are_refused_only_when_srtp_is_mandatory() {
        let offer = plain_offer("RTP/AVP", "");
        assert_eq!(
            answer(
                &offer,
                &secure(SrtpMode::Mandatory),
                Direction::SendRecv,
                1,
                1
            )
            .map(|_| ()),
            Err(SdpError::NoCrypto)
        );
        let (body, n) = answer(
            &offer,
            &secure(SrtpMode::Optional),
            Direction::SendRecv,
            1,
            1,
        )
        .expect("plain");
        assert_eq!(n.srtp, None);
        assert!(!body.contains("crypto"));
        // Best-effort SDES: RTP/AVP with keys is taken as SRTP.
        let best_effort = plain_offer(
            "RTP/AVP",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}\n"),
        );
        let (_, n) = answer(
            &best_effort,
            &secure(SrtpMode::Mandatory),
            Direction::SendRecv,
            1,
            1,
        )
        .expect("srtp");
        assert_eq!(n.srtp.map(|k| k.local), Some([1; KEY_LEN]));
    }

    #[test]
    fn an_answer_must_pick_one_of_our_crypto_lines() {
        let ours = secure(SrtpMode::Mandatory);
        let good = plain_offer(
            "RTP/SAVP",
            &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}\n"),
        );
        let n = negotiate_answer(&good, &ours).expect("srtp");
        assert_eq!(
            n.srtp.map(|k| (k.suite, k.local)),
            Some((CryptoSuite::AesCm128HmacSha1_80, [1; KEY_LEN]))
        );
        let wrong_tag = plain_offer(
            "RTP/SAVP",
            &format!("a=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{THEIR_KEY}\n"),
        );
        assert_eq!(negotiate_answer(&wrong_tag, &ours), Err(SdpError::NoCrypto));
        assert_eq!(
            negotiate_answer(&plain_offer("RTP/AVP", ""), &ours),
            Err(SdpError::NoCrypto)
        );
        let optional = secure(SrtpMode::Optional);
        assert_eq!(
            negotiate_answer(&plain_offer("RTP/AVP", ""), &optional).map(|n| n.srtp),
            Ok(None)
        );
    }

    /// An offer from `addr:port` (PCMU) with `extra` media-level lines.
    fn offer_with(c: &str, port: u16, extra: &str) -> Sdp {
        let text = format!(
            "v=0\no=- 1 1 IN IP4 {c}\ns=-\nc=IN {} {c}\nt=0 0\nm=audio {port} RTP/AVP 0\n\
             a=rtpmap:0 PCMU/8000\n{extra}",
            if c.contains(':') { "IP6" } else { "IP4" }
        );
        parse(crlf(&text).as_bytes()).expect("parses")
    }

    #[test]
    fn our_rtcp_address_is_offered_and_answered_as_stun_mapped_it() {
        let mut ours = local(&[Codec::Pcmu], false);
        ours.addr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1));
        ours.port = 47000;
        ours.rtcp = "203.0.113.1:45001".parse().expect("addr");
        let o = offer(&ours, Direction::SendRecv, 1, 1);
        assert!(
            lines(&o).contains(&"a=rtcp:45001 IN IP4 203.0.113.1"),
            "{o}"
        );
        let (a, _) = answer(
            &offer_with("198.51.100.2", 6000, ""),
            &ours,
            Direction::SendRecv,
            1,
            1,
        )
        .expect("answers");
        assert!(
            lines(&a).contains(&"a=rtcp:45001 IN IP4 203.0.113.1"),
            "{a}"
        );
        // Round trip: our own parser reads what we wrote.
        let parsed = parse(o.as_bytes()).expect("parses");
        assert_eq!(
            parsed.audio().and_then(|m| m.rtcp),
            Some((45001, Some(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)))))
        );
    }

    #[test]
    fn the_far_ends_rtcp_address_is_where_rtcp_goes() {
        let ours = local(&[Codec::Pcmu], false);
        let cases = [
            // (c=, RTP port, a=rtcp lines, where RTCP goes)
            ("198.51.100.2", 6000, "", "198.51.100.2:6001"),
            ("198.51.100.2", 6000, "a=rtcp:7123\n", "198.51.100.2:7123"),
            (
                "198.51.100.2",
                6000,
                "a=rtcp:53020 IN IP4 203.0.113.9\n",
                "203.0.113.9:53020",
            ),
            (
                "2001:db8::5",
                4000,
                "a=rtcp:4100 IN IP6 2001:db8::6\n",
                "[2001:db8::6]:4100",
            ),
            (
                "198.51.100.2",
                6000,
                "a=rtcp:9 IN IP6 ::ffff:192.0.2.7\n",
                "192.0.2.7:9",
            ),
            // The first one counts.
            (
                "198.51.100.2",
                6000,
                "a=rtcp:7000\na=rtcp:8000\n",
                "198.51.100.2:7000",
            ),
        ];
        for (c, port, extra, want) in cases {
            let want: SocketAddr = want.parse().expect("addr");
            let sdp = offer_with(c, port, extra);
            let (_, n) = answer(&sdp, &ours, Direction::SendRecv, 1, 1).expect("answers");
            assert_eq!(n.remote_rtcp, want, "answering {extra:?}");
            let n = negotiate_answer(&sdp, &ours).expect("negotiates");
            assert_eq!(n.remote_rtcp, want, "reading an answer with {extra:?}");
        }
    }

    #[test]
    fn a_malformed_rtcp_attribute_is_ignored() {
        let ours = local(&[Codec::Pcmu], false);
        for junk in [
            "a=rtcp:",
            "a=rtcp: ",
            "a=rtcp:abc",
            "a=rtcp:0",
            "a=rtcp:70000",
            "a=rtcp:-1",
            "a=rtcp:9 IN",
            "a=rtcp:9 IN IP4",
            "a=rtcp:9 IN IP4 host.example.com",
            "a=rtcp:9 XX IP4 192.0.2.7",
            "a=rtcp:9 IN IPX 192.0.2.7",
            "a=rtcp:9 IN IP4 192.0.2.7 extra",
            "a=rtcp:9 IN IP4 192.0.2.7/127",
            "a=rtcp",
            "a=rtcp:\u{1F4DE}",
        ] {
            let sdp = offer_with("198.51.100.2", 6000, &format!("{junk}\n"));
            assert_eq!(sdp.audio().and_then(|m| m.rtcp), None, "{junk:?}");
            let (_, n) = answer(&sdp, &ours, Direction::SendRecv, 1, 1).expect("answers");
            assert_eq!(
                n.remote_rtcp,
                "198.51.100.2:6001".parse().expect("addr"),
                "{junk:?}: RTP + 1"
            );
        }
        // Other rtcp-* attributes are not a=rtcp.
        let sdp = offer_with("198.51.100.2", 6000, "a=rtcp-mux\na=rtcp-fb:* nack\n");
        assert_eq!(sdp.audio().and_then(|m| m.rtcp), None);
    }
}
