//! SIP messages: parsing through rsip, typed access to the headers the core
//! needs, and building of outgoing messages.
//!
//! rsip 0.4 tokenizes the start line, headers and body, but its typed layer has
//! gaps (compact header forms, quoted Contact parameters, no Refer-To or
//! Replaces) and prints reason phrases as Rust identifiers. So a parsed
//! message keeps rsip's method, status code and URI, plus every header as a
//! `(canonical name, value)` pair; the small grammars the core relies on
//! (name-addr, Via, CSeq, parameters) are parsed here, tolerantly, and never
//! panic. Outgoing messages are written by [`Builder`] with proper reason
//! phrases and a computed Content-Length.
//!
//! This module does no I/O and reads no clock.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

pub use rsip::Method;

/// Why a datagram could not be understood as SIP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// rsip could not tokenize the message.
    #[error("malformed SIP message: {0}")]
    Syntax(String),
    /// A header every request and response needs is absent or unreadable.
    #[error("missing or malformed {0} header")]
    MissingHeader(&'static str),
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    /// A request: method and Request-URI.
    Request {
        /// The method.
        method: Method,
        /// The Request-URI, as text.
        uri: String,
    },
    /// A response: status code and reason phrase.
    Response {
        /// The status code.
        code: u16,
        /// The reason phrase as received.
        reason: String,
    },
}

/// A parsed SIP message whose mandatory headers are known to be present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Request or status line.
    pub start: StartLine,
    /// Headers in order, with canonical (long-form) names.
    pub headers: Vec<(String, String)>,
    /// The body (trimmed to Content-Length when that is given).
    pub body: Vec<u8>,
    /// The topmost Via.
    pub via: Via,
    /// The CSeq number and method.
    pub cseq: (u32, Method),
    /// The Call-ID.
    pub call_id: String,
    /// The From header.
    pub from: NameAddr,
    /// The To header.
    pub to: NameAddr,
}

const COMPACT: &[(&str, &str)] = &[
    ("v", "Via"),
    ("f", "From"),
    ("t", "To"),
    ("i", "Call-ID"),
    ("m", "Contact"),
    ("l", "Content-Length"),
    ("c", "Content-Type"),
    ("k", "Supported"),
    ("s", "Subject"),
    ("e", "Content-Encoding"),
    ("o", "Event"),
    ("r", "Refer-To"),
    ("b", "Referred-By"),
    ("x", "Session-Expires"),
    ("u", "Allow-Events"),
];

/// Expands a compact header name (RFC 3261 §7.3.3) and normalises the case
/// of the well-known ones.
pub fn canonical_name(name: &str) -> String {
    let name = name.trim();
    if name.len() == 1 {
        if let Some((_, long)) = COMPACT.iter().find(|(c, _)| c.eq_ignore_ascii_case(name)) {
            return (*long).to_string();
        }
    }
    const KNOWN: &[&str] = &[
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Content-Length",
        "Content-Type",
        "Record-Route",
        "Route",
        "Max-Forwards",
        "WWW-Authenticate",
        "Proxy-Authenticate",
        "Authorization",
        "Proxy-Authorization",
        "Expires",
        "Supported",
        "Require",
        "Allow",
        "Retry-After",
        "Event",
        "Refer-To",
        "Referred-By",
        "Replaces",
        "Subscription-State",
    ];
    KNOWN
        .iter()
        .find(|k| k.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_string(), |k| (*k).to_string())
}

/// Headers whose values may be comma-separated lists of entries.
fn is_list_header(name: &str) -> bool {
    matches!(
        name,
        "Via" | "Route" | "Record-Route" | "Contact" | "Allow" | "Supported" | "Require"
    )
}

impl Message {
    /// Parses a datagram (or one framed TCP message).
    pub fn parse(bytes: &[u8]) -> Result<Message, ParseError> {
        let parsed = rsip::SipMessage::try_from(bytes)
            .or_else(|e| match with_plain_request_uri(bytes) {
                // rsip refuses some valid Request-URIs (a GRUU's `gr=urn:uuid:…`); the URI is
                // taken from the raw bytes below anyway, so let rsip see a plain one.
                Some(plain) => rsip::SipMessage::try_from(plain.as_slice()),
                None => Err(e),
            })
            .map_err(|e| ParseError::Syntax(short(&e.to_string())))?;
        let (start, raw_headers, mut body) = match parsed {
            rsip::SipMessage::Request(r) => (
                StartLine::Request {
                    method: r.method,
                    // As written: rsip re-renders URIs (e.g. upper-cases transport=udp).
                    uri: uri_from_raw(bytes).unwrap_or_else(|| r.uri.to_string()),
                },
                r.headers,
                r.body,
            ),
            rsip::SipMessage::Response(r) => {
                let code = r.status_code.code();
                (
                    StartLine::Response {
                        code,
                        reason: reason_from_raw(bytes)
                            .unwrap_or_else(|| reason_phrase(code).to_string()),
                    },
                    r.headers,
                    r.body,
                )
            }
        };
        let mut headers = Vec::new();
        for header in raw_headers.iter() {
            let text = header.to_string();
            let Some((name, value)) = text.split_once(':') else {
                continue;
            };
            let name = canonical_name(name);
            let value = value.trim();
            if is_list_header(&name) {
                for part in split_list(value) {
                    headers.push((name.clone(), part.to_string()));
                }
            } else {
                headers.push((name, value.to_string()));
            }
        }
        let find = |n: &str| {
            headers
                .iter()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.as_str())
        };
        if let Some(len) = find("Content-Length").and_then(|v| v.trim().parse::<usize>().ok()) {
            if len > body.len() {
                return Err(ParseError::Syntax(
                    "body shorter than Content-Length".into(),
                ));
            }
            body.truncate(len);
        }
        let via = find("Via")
            .and_then(Via::parse)
            .ok_or(ParseError::MissingHeader("Via"))?;
        let cseq = find("CSeq")
            .and_then(parse_cseq)
            .ok_or(ParseError::MissingHeader("CSeq"))?;
        let call_id = find("Call-ID")
            .filter(|v| !v.is_empty())
            .ok_or(ParseError::MissingHeader("Call-ID"))?
            .to_string();
        let from = find("From")
            .and_then(NameAddr::parse)
            .ok_or(ParseError::MissingHeader("From"))?;
        let to = find("To")
            .and_then(NameAddr::parse)
            .ok_or(ParseError::MissingHeader("To"))?;
        Ok(Message {
            start,
            headers,
            body,
            via,
            cseq,
            call_id,
            from,
            to,
        })
    }

    /// The method of a request, or of the request a response answers.
    pub fn method(&self) -> Method {
        match &self.start {
            StartLine::Request { method, .. } => *method,
            StartLine::Response { .. } => self.cseq.1,
        }
    }

    /// The status code of a response.
    pub fn code(&self) -> Option<u16> {
        match self.start {
            StartLine::Response { code, .. } => Some(code),
            StartLine::Request { .. } => None,
        }
    }

    /// The reason phrase of a response (empty for requests).
    pub fn reason(&self) -> &str {
        match &self.start {
            StartLine::Response { reason, .. } => reason,
            StartLine::Request { .. } => "",
        }
    }

    /// The Request-URI of a request.
    pub fn request_uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// The first value of a header.
    pub fn header<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        self.headers(name).next()
    }

    /// Every value of a header (list headers are split into entries).
    pub fn headers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// True if a token list header (Supported, Allow, Require) contains `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.headers(name)
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    }

    /// The first Contact, parsed.
    pub fn contact(&self) -> Option<NameAddr> {
        self.header("Contact").and_then(NameAddr::parse)
    }

    /// The body as text, if it is UTF-8 and not empty.
    pub fn body_text(&self) -> Option<&str> {
        if self.body.is_empty() {
            None
        } else {
            std::str::from_utf8(&self.body).ok()
        }
    }
}

/// Keeps error texts short enough for a log line.
fn short(s: &str) -> String {
    s.chars().take(120).collect()
}

/// rsip forgets reason phrases of known codes; take it from the raw bytes.
fn reason_from_raw(bytes: &[u8]) -> Option<String> {
    let line_end = bytes.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..line_end]).ok()?;
    let mut parts = line.splitn(3, ' ');
    parts.next()?;
    parts.next()?;
    Some(parts.next().unwrap_or("").trim().to_string())
}

/// The Request-URI exactly as written in the request line.
fn uri_from_raw(bytes: &[u8]) -> Option<String> {
    let line_end = bytes.iter().position(|&b| b == b'\r' || b == b'\n')?;
    let line = std::str::from_utf8(&bytes[..line_end]).ok()?;
    line.split(' ').nth(1).map(str::to_string)
}

/// The request with its Request-URI replaced by a plain one, when the first line is a request
/// whose URI we can read ourselves; `None` otherwise.
fn with_plain_request_uri(bytes: &[u8]) -> Option<Vec<u8>> {
    let end = bytes.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&bytes[..end]).ok()?;
    let mut parts = line.split(' ');
    let (method, uri, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || version != "SIP/2.0" {
        return None;
    }
    let lower = uri.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("sip:")
        .or_else(|| lower.strip_prefix("sips:"))?;
    let host_port = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let host_port = host_port.split([';', '?']).next()?;
    let plain = !host_port.is_empty()
        && host_port
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    let uri_chars = uri
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()%;/?:@&=+$,[]".contains(&b));
    if !plain || !uri_chars || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    // rsip cannot read an IPv6 reference: a valid one is replaced by a name.
    let host_port = if host_port.starts_with('[') {
        split_host_port(host_port)?;
        "ipv6.invalid"
    } else {
        host_port
    };
    let mut out = format!("{method} sip:{host_port} SIP/2.0").into_bytes();
    out.extend_from_slice(&bytes[end..]);
    Some(out)
}

fn parse_cseq(v: &str) -> Option<(u32, Method)> {
    let mut it = v.split_whitespace();
    let num = it.next()?.parse().ok()?;
    let method = it.next()?.parse().ok()?;
    Some((num, method))
}

/// Splits a header value at commas that are outside quotes and angle brackets.
pub fn split_list(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut angle, mut start) = (false, false, 0);
    let mut escaped = false;
    for (i, ch) in value.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                out.push(value[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(value[start..].trim());
    out.retain(|s| !s.is_empty());
    out
}

/// `;name=value` parameters, in order. Values keep their quotes stripped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Params(pub Vec<(String, Option<String>)>);

impl Params {
    /// Parses `;a=b;c` (the leading `;` is optional).
    pub fn parse(s: &str) -> Params {
        let mut out = Vec::new();
        for part in split_outside_quotes(s, ';') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            match part.split_once('=') {
                Some((k, v)) => out.push((k.trim().to_string(), Some(unquote(v.trim())))),
                None => out.push((part.to_string(), None)),
            }
        }
        Params(out)
    }

    /// The value of a parameter (`Some("")` for a flag without value).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_deref().unwrap_or(""))
    }

    /// True if the parameter is present.
    pub fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// Sets (or replaces) a parameter.
    pub fn set(&mut self, name: &str, value: Option<&str>) {
        let value = value.map(str::to_string);
        match self
            .0
            .iter_mut()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.0.push((name.to_string(), value)),
        }
    }
}

impl std::fmt::Display for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, v) in &self.0 {
            match v {
                Some(v) if needs_quotes(v) => write!(f, ";{k}=\"{v}\"")?,
                Some(v) => write!(f, ";{k}={v}")?,
                None => write!(f, ";{k}")?,
            }
        }
        Ok(())
    }
}

fn needs_quotes(v: &str) -> bool {
    v.contains(|c: char| c.is_whitespace() || matches!(c, ';' | ',' | '<' | '>' | '"'))
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut quoted, mut start) = (false, 0);
    for (i, ch) in s.char_indices() {
        if ch == '"' {
            quoted = !quoted;
        } else if ch == sep && !quoted {
            out.push(&s[start..i]);
            start = i + ch.len_utf8();
        }
    }
    out.push(&s[start..]);
    out
}

fn unquote(v: &str) -> String {
    v.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(v)
        .to_string()
}

/// `"Display" <uri>;params` or `uri;params` (From, To, Contact, Route, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name without quotes.
    pub display: Option<String>,
    /// The URI, as text.
    pub uri: String,
    /// Header parameters (after the `>`), e.g. `tag`.
    pub params: Params,
}

impl NameAddr {
    /// Parses a name-addr or addr-spec; `None` when there is no URI.
    pub fn parse(v: &str) -> Option<NameAddr> {
        let v = v.trim();
        if let Some(open) = find_unquoted(v, '<') {
            let close = open + v[open..].find('>')?;
            let display = v[..open].trim();
            let display = (!display.is_empty()).then(|| unquote(display));
            let uri = v[open + 1..close].trim().to_string();
            if uri.is_empty() {
                return None;
            }
            Some(NameAddr {
                display,
                uri,
                params: Params::parse(&v[close + 1..]),
            })
        } else {
            // addr-spec: parameters after the URI belong to the header.
            let (uri, params) = v.split_once(';').unwrap_or((v, ""));
            if uri.is_empty() || uri.contains(char::is_whitespace) {
                return None;
            }
            Some(NameAddr {
                display: None,
                uri: uri.to_string(),
                params: Params::parse(params),
            })
        }
    }

    /// A name-addr for a URI with no display name or parameters.
    pub fn new(uri: &str) -> NameAddr {
        NameAddr {
            display: None,
            uri: uri.to_string(),
            params: Params::default(),
        }
    }

    /// The `tag` parameter.
    pub fn tag(&self) -> Option<&str> {
        self.params.get("tag").filter(|t| !t.is_empty())
    }
}

impl std::fmt::Display for NameAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(d) = &self.display {
            write!(f, "\"{}\" ", d.replace('"', ""))?;
        }
        write!(f, "<{}>{}", self.uri, self.params)
    }
}

fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let mut quoted = false;
    for (i, ch) in s.char_indices() {
        if ch == '"' {
            quoted = !quoted;
        } else if ch == target && !quoted {
            return Some(i);
        }
    }
    None
}

/// One Via entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Transport token (`UDP`, `TCP`, …).
    pub transport: String,
    /// sent-by host.
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `rport`, `received`).
    pub params: Params,
}

impl Via {
    /// Parses `SIP/2.0/UDP host:port;params`.
    pub fn parse(v: &str) -> Option<Via> {
        let v = v.trim();
        let (proto, rest) = v.split_once(|c: char| c.is_whitespace())?;
        let mut proto_parts = proto.split('/');
        let (name, version, transport) = (
            proto_parts.next()?,
            proto_parts.next()?,
            proto_parts.next()?,
        );
        if !name.eq_ignore_ascii_case("SIP") || version != "2.0" || transport.is_empty() {
            return None;
        }
        let rest = rest.trim();
        let (sent_by, params) = rest.split_once(';').unwrap_or((rest, ""));
        let (host, port) = split_host_port(sent_by.trim())?;
        Some(Via {
            transport: transport.to_ascii_uppercase(),
            host,
            port,
            params: Params::parse(params),
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        self.params.get("branch").filter(|b| !b.is_empty())
    }
}

impl std::fmt::Display for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SIP/2.0/{} {}", self.transport, bracketed(&self.host))?;
        if let Some(p) = self.port {
            write!(f, ":{p}")?;
        }
        write!(f, "{}", self.params)
    }
}

/// Splits `host`, `host:port` or `[v6]:port` (RFC 3261 §25.1: an IPv6 address is written in
/// brackets when a port may follow). The brackets are dropped; what they enclose must be an
/// IPv6 address. A bare IPv6 address (more than one colon, no brackets) is taken as a host
/// without port, as lenient peers write it in `received`.
pub fn split_host_port(s: &str) -> Option<(String, Option<u16>)> {
    if s.is_empty() {
        return None;
    }
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        host.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        return Some((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Some((h.to_string(), Some(p.parse().ok()?))),
        Some(_) => s
            .parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|_| (s.to_string(), None)),
        None => Some((s.to_string(), None)),
    }
}

/// A host as written in a URI or Via: an IPv6 address in brackets (`[::1]`), anything else as
/// it is. Brackets already there are kept.
pub fn bracketed(host: &str) -> std::borrow::Cow<'_, str> {
    if host.contains(':') && !host.starts_with('[') {
        std::borrow::Cow::Owned(format!("[{host}]"))
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

/// An IP address written as a host, `received` or `maddr` value: bare or in brackets
/// (RFC 5118 §4.5 accepts both); an IPv4-mapped IPv6 address is read as the IPv4 one.
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    let ip = match text.strip_prefix('[') {
        Some(reference) => IpAddr::V6(reference.strip_suffix(']')?.parse().ok()?),
        None => text.parse().ok()?,
    };
    Some(ip.to_canonical())
}

/// `addr` with an IPv4-mapped IPv6 address (`[::ffff:192.0.2.1]:5060`, as a dual-stack socket
/// reports an IPv4 peer) given as the IPv4 one, so that a peer has one address whichever
/// socket saw it.
pub fn unmapped(addr: SocketAddr) -> SocketAddr {
    SocketAddr::new(addr.ip().to_canonical(), addr.port())
}

/// The parts of a SIP URI the core routes by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SipUri {
    /// `sips` instead of `sip`.
    pub secure: bool,
    /// User part, if any.
    pub user: Option<String>,
    /// Host (name or IP literal, no brackets).
    pub host: String,
    /// Port, if given.
    pub port: Option<u16>,
    /// URI parameters (`transport`, `lr`, …).
    pub params: Params,
}

impl SipUri {
    /// Parses a `sip:` or `sips:` URI through rsip, with headers (`?…`) ignored. An IPv6
    /// reference (`sip:bob@[2001:db8::1]:5070`) is read here, since rsip cannot: what the
    /// brackets enclose must be an IPv6 address.
    pub fn parse(s: &str) -> Option<SipUri> {
        let s = s.trim();
        let without_headers = s.split_once('?').map_or(s, |(a, _)| a);
        let scheme_end = without_headers.find(':')? + 1;
        let host_start = without_headers[scheme_end..]
            .rfind('@')
            .map_or(scheme_end, |at| scheme_end + at + 1);
        let (for_rsip, v6) = match without_headers[host_start..].strip_prefix('[') {
            Some(reference) => {
                let (host, after) = reference.split_once(']')?;
                host.parse::<std::net::Ipv6Addr>().ok()?;
                if !(after.is_empty() || after.starts_with([':', ';'])) {
                    return None;
                }
                let placeholder = format!("{}ipv6.invalid{after}", &without_headers[..host_start]);
                (std::borrow::Cow::Owned(placeholder), Some(host))
            }
            None => (std::borrow::Cow::Borrowed(without_headers), None),
        };
        let uri = rsip::Uri::try_from(for_rsip.as_ref()).ok()?;
        let secure = matches!(uri.scheme, Some(rsip::Scheme::Sips));
        if !matches!(uri.scheme, Some(rsip::Scheme::Sip | rsip::Scheme::Sips)) {
            return None;
        }
        let host = match (v6, &uri.host_with_port.host) {
            (Some(v6), _) => v6.to_string(),
            (None, rsip::Host::Domain(d)) => d.to_string(),
            (None, rsip::Host::IpAddr(ip)) => ip.to_string(),
        };
        let params_text = for_rsip
            .split_once('@')
            .map_or(for_rsip.as_ref(), |(_, hp)| hp);
        let params = params_text
            .split_once(';')
            .map(|(_, p)| Params::parse(p))
            .unwrap_or_default();
        Some(SipUri {
            secure,
            user: uri.auth.as_ref().map(|a| a.user.clone()),
            host,
            port: uri.host_with_port.port.map(|p| *p.value()),
            params,
        })
    }

    /// The socket address, when the host (or a `maddr` parameter, which RFC 3261 §19.1.1 lets
    /// override it) is an IP literal (or `localhost`). An IPv4-mapped IPv6 address is given as
    /// the IPv4 one.
    pub fn socket_addr(&self) -> Option<SocketAddr> {
        let ip: IpAddr = match self.params.get("maddr").and_then(parse_ip) {
            Some(ip) => ip,
            None if self.host.eq_ignore_ascii_case("localhost") => IpAddr::from([127, 0, 0, 1]),
            None => parse_ip(&self.host)?,
        };
        let default = if self.secure { 5061 } else { 5060 };
        Some(SocketAddr::new(ip, self.port.unwrap_or(default)))
    }

    /// The `transport` URI parameter, lower case.
    pub fn transport(&self) -> Option<String> {
        self.params.get("transport").map(str::to_ascii_lowercase)
    }
}

/// The standard reason phrase of a status code.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        181 => "Call Is Being Forwarded",
        182 => "Queued",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        420 => "Bad Extension",
        423 => "Interval Too Brief",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Server Time-out",
        600 => "Busy Everywhere",
        603 => "Decline",
        604 => "Does Not Exist Anywhere",
        606 => "Not Acceptable",
        _ => match code / 100 {
            1 => "Progress",
            2 => "OK",
            3 => "Redirect",
            4 => "Request Failure",
            5 => "Server Failure",
            _ => "Global Failure",
        },
    }
}

/// Writes an outgoing message.
#[derive(Debug, Clone)]
pub struct Builder {
    start: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Builder {
    /// Starts a request.
    pub fn request(method: Method, uri: &str) -> Builder {
        Builder {
            start: format!("{method} {uri} SIP/2.0"),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Starts a response to `req`, copying Via, From, To, Call-ID and CSeq
    /// (RFC 3261 §8.2.6.2). `to_tag` is added to To when it has none.
    pub fn response(req: &Message, code: u16, to_tag: Option<&str>) -> Builder {
        let mut b = Builder {
            start: format!("SIP/2.0 {code} {}", reason_phrase(code)),
            headers: Vec::new(),
            body: Vec::new(),
        };
        for via in req.headers("Via") {
            b = b.header("Via", via);
        }
        let mut to = req.to.clone();
        if to.tag().is_none() {
            if let Some(tag) = to_tag {
                to.params.set("tag", Some(tag));
            }
        }
        b.header("From", req.from.to_string())
            .header("To", to.to_string())
            .header("Call-ID", &req.call_id)
            .header("CSeq", format!("{} {}", req.cseq.0, req.cseq.1))
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl AsRef<str>) -> Builder {
        // Header values never carry line breaks: they would split the message.
        let clean: String = value
            .as_ref()
            .chars()
            .filter(|c| *c != '\r' && *c != '\n')
            .collect();
        self.headers.push((name.to_string(), clean));
        self
    }

    /// Sets the body and its Content-Type.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Builder {
        self = self.header("Content-Type", content_type);
        self.body = body.into();
        self
    }

    /// The finished bytes, with Content-Length.
    pub fn build(self) -> Vec<u8> {
        let mut s = String::with_capacity(512 + self.body.len());
        let _ = write!(s, "{}\r\n", self.start);
        for (k, v) in &self.headers {
            let _ = write!(s, "{k}: {v}\r\n");
        }
        let _ = write!(s, "Content-Length: {}\r\n\r\n", self.body.len());
        let mut out = s.into_bytes();
        out.extend_from_slice(&self.body);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INVITE: &str = "INVITE sip:bob@127.0.0.1 SIP/2.0\r\n\
v: SIP/2.0/UDP 127.0.0.3:5060;branch=z9hG4bK776;rport, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKx\r\n\
f: \"Alice, A.\" <sip:alice@127.0.0.3>;tag=1928\r\n\
t: sip:bob@127.0.0.1\r\n\
i: a84b4c76e66710\r\n\
CSeq: 314159 INVITE\r\n\
m: <sip:alice@127.0.0.3;gr=urn:uuid:1>;+sip.instance=\"<urn:uuid:1>\";expires=60\r\n\
k: replaces, timer\r\n\
l: 4\r\n\
\r\n\
v=0\r\njunk";

    #[test]
    fn a_gruu_request_uri_is_read_as_written() {
        let uri = "sip:carol@127.0.0.1;gr=urn:uuid:73541958-c670-0086-b2fe-00a7488617f6";
        let text = format!(
            "INVITE {uri} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.3;branch=z9hG4bK1\r\n\
             From: <sip:bob@127.0.0.1>;tag=1\r\nTo: <{uri}>\r\nCall-ID: x\r\n\
             CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        );
        let msg = Message::parse(text.as_bytes()).expect("a GRUU Request-URI parses");
        assert_eq!(msg.request_uri(), Some(uri));
        assert_eq!(msg.to.uri, uri);
        // Garbage in the Request-URI is still refused.
        let bad = text.replacen(uri, "sip:carol@127.0.0.1;gr=<x>", 1);
        assert!(Message::parse(bad.as_bytes()).is_err());
    }

    #[test]
    fn parses_compact_forms_and_lists() {
        let m = Message::parse(INVITE.as_bytes()).expect("parses");
        assert_eq!(m.method(), Method::Invite);
        assert_eq!(m.via.branch(), Some("z9hG4bK776"));
        assert!(m.via.params.has("rport"));
        assert_eq!(m.headers("Via").count(), 2);
        assert_eq!(m.from.display.as_deref(), Some("Alice, A."));
        assert_eq!(m.from.tag(), Some("1928"));
        assert_eq!(m.to.uri, "sip:bob@127.0.0.1");
        assert_eq!(m.to.tag(), None);
        assert_eq!(m.cseq, (314159, Method::Invite));
        assert!(m.has_token("Supported", "replaces"));
        let c = m.contact().expect("contact");
        assert_eq!(c.uri, "sip:alice@127.0.0.3;gr=urn:uuid:1");
        assert_eq!(c.params.get("expires"), Some("60"));
        assert_eq!(m.body, b"v=0\r");
    }

    #[test]
    fn keeps_reason_phrase() {
        let r = "SIP/2.0 486 Busy Right Now\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n\r\n";
        let m = Message::parse(r.as_bytes()).expect("parses");
        assert_eq!(m.code(), Some(486));
        assert_eq!(m.reason(), "Busy Right Now");
        assert_eq!(m.method(), Method::Invite);
    }

    #[test]
    fn rejects_missing_headers() {
        let r = "OPTIONS sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n";
        assert!(matches!(
            Message::parse(r.as_bytes()),
            Err(ParseError::MissingHeader(_))
        ));
    }

    #[test]
    fn response_copies_headers_and_adds_tag() {
        let m = Message::parse(INVITE.as_bytes()).expect("parses");
        let bytes = Builder::response(&m, 180, Some("xyz")).build();
        let r = Message::parse(&bytes).expect("own response parses");
        assert_eq!(r.code(), Some(180));
        assert_eq!(r.reason(), "Ringing");
        assert_eq!(r.to.tag(), Some("xyz"));
        assert_eq!(r.headers("Via").count(), 2);
        assert_eq!(r.call_id, "a84b4c76e66710");
    }

    #[test]
    fn builder_strips_line_breaks() {
        let bytes = Builder::request(Method::Options, "sip:a@127.0.0.1")
            .header("Subject", "evil\r\nVia: injected")
            .build();
        let text = String::from_utf8(bytes).expect("utf8");
        assert!(text.contains("Subject: evilVia: injected\r\n"));
    }

    #[test]
    fn uri_parts() {
        let u = SipUri::parse("sip:bob@127.0.0.9:5070;transport=tcp;lr").expect("uri");
        assert_eq!(u.user.as_deref(), Some("bob"));
        assert_eq!(
            u.socket_addr(),
            Some("127.0.0.9:5070".parse().expect("addr"))
        );
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        assert!(u.params.has("lr"));
        let u = SipUri::parse("sip:127.0.0.1").expect("uri");
        assert_eq!(
            u.socket_addr(),
            Some("127.0.0.1:5060".parse().expect("addr"))
        );
        assert!(SipUri::parse("tel:+123").is_none());
        assert_eq!(
            split_host_port("[::1]:5060"),
            Some(("::1".into(), Some(5060)))
        );
    }

    /// A request in the shape of RFC 5118's examples, with `uri` as Request-URI and
    /// `extra` headers.
    fn v6_request(uri: &str, via: &str, extra: &str) -> String {
        format!(
            "REGISTER {uri} SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\n\
             From: \"Caller\" <sip:caller@[2001:db8::1]>;tag=1\r\n\
             To: \"Caller\" <sip:caller@[2001:db8::1]>\r\nCall-ID: SSG95523997077@hlau_4100\r\n\
             CSeq: 166 REGISTER\r\nContact: \"Caller\" <sip:caller@[2001:db8::1]>\r\n{extra}\
             Content-Length: 0\r\n\r\n"
        )
    }

    #[test]
    fn rfc5118_ipv6_references_parse() {
        // §4.1: an IPv6 reference in the Request-URI, Via, From/To and Contact.
        let text = v6_request(
            "sip:[2001:db8::10]",
            "SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bKas3-111",
            "",
        );
        let m = Message::parse(text.as_bytes()).expect("§4.1 parses");
        assert_eq!(m.request_uri(), Some("sip:[2001:db8::10]"));
        assert_eq!((m.via.host.as_str(), m.via.port), ("2001:db8::9:1", None));
        let contact = SipUri::parse(&m.contact().expect("contact").uri).expect("uri");
        assert_eq!(contact.host, "2001:db8::1");
        assert_eq!(contact.user.as_deref(), Some("caller"));
        assert_eq!(
            SipUri::parse("sip:[2001:db8::10]").and_then(|u| u.socket_addr()),
            Some("[2001:db8::10]:5060".parse().expect("addr"))
        );
        // §4.3: the port is inside the brackets, so there is none; §4.4: outside, 5070.
        let ambiguous = SipUri::parse("sip:[2001:db8::10:5070]").expect("§4.3");
        assert_eq!(
            (ambiguous.host.as_str(), ambiguous.port),
            ("2001:db8::10:5070", None)
        );
        let port = SipUri::parse("sip:[2001:db8::10]:5070").expect("§4.4");
        assert_eq!(
            (port.host.as_str(), port.port),
            ("2001:db8::10", Some(5070))
        );
        // §4.2: an IPv6 address without brackets is no sip: host.
        assert_eq!(
            SipUri::parse("sip:2001:db8::10").and_then(|u| u.socket_addr()),
            None
        );
    }

    #[test]
    fn rfc5118_received_with_and_without_brackets() {
        // §4.5: both forms of `received` name the same address.
        for received in ["2001:db8::9:255", "[2001:db8::9:255]"] {
            let via = Via::parse(&format!(
                "SIP/2.0/UDP [2001:db8::9:1];received={received};branch=z9hG4bKas3"
            ))
            .expect("via");
            assert_eq!(
                via.params.get("received").and_then(parse_ip),
                Some("2001:db8::9:255".parse().expect("ip"))
            );
        }
        // §4.7: a list of Route headers, IPv4 and IPv6 mixed.
        let text = v6_request(
            "sip:[2001:db8::10]:5070",
            "SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKas3-111",
            "Route: <sip:[2001:db8::9:255];lr>, <sip:192.0.2.1;lr>\r\n",
        );
        let m = Message::parse(text.as_bytes()).expect("§4.7 parses");
        assert_eq!(m.via.port, Some(6050));
        let routes: Vec<_> = m
            .headers("Route")
            .filter_map(NameAddr::parse)
            .filter_map(|r| SipUri::parse(&r.uri)?.socket_addr())
            .collect();
        assert_eq!(
            routes,
            ["[2001:db8::9:255]:5060", "192.0.2.1:5060"].map(|a| a.parse().expect("addr"))
        );
    }

    #[test]
    fn rfc5118_ipv4_mapped_addresses_are_ipv4() {
        // §4.9: an IPv4-mapped IPv6 address is the IPv4 one, wherever it is written.
        let u = SipUri::parse("sip:[::ffff:192.0.2.10]").expect("uri");
        assert_eq!(
            u.socket_addr(),
            Some("192.0.2.10:5060".parse().expect("addr"))
        );
        assert_eq!(
            parse_ip("::ffff:192.0.2.128"),
            Some("192.0.2.128".parse().expect("ip"))
        );
        assert_eq!(
            unmapped("[::ffff:127.0.0.1]:5062".parse().expect("addr")),
            "127.0.0.1:5062".parse().expect("addr")
        );
        assert_eq!(
            unmapped("[::1]:5062".parse().expect("addr")),
            "[::1]:5062".parse().expect("addr")
        );
    }

    #[test]
    fn ipv6_hosts_are_written_in_brackets() {
        let via = Via::parse("SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;rport").expect("via");
        assert_eq!(via.host, "::1");
        assert_eq!(
            via.to_string(),
            "SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1;rport"
        );
        let mut no_port = via.clone();
        no_port.port = None;
        no_port.params.set("received", Some("::1"));
        assert_eq!(
            no_port.to_string(),
            "SIP/2.0/UDP [::1];branch=z9hG4bK1;rport;received=::1"
        );
        assert_eq!(bracketed("::1"), "[::1]");
        assert_eq!(bracketed("[::1]"), "[::1]");
        assert_eq!(bracketed("pbx.example.com"), "pbx.example.com");
    }

    #[test]
    fn uri_with_ipv6_host_keeps_user_port_and_parameters() {
        let u =
            SipUri::parse("sips:201@[::1]:5071;transport=tcp;maddr=[::2]?Subject=x").expect("uri");
        assert!(u.secure);
        assert_eq!(u.user.as_deref(), Some("201"));
        assert_eq!((u.host.as_str(), u.port), ("::1", Some(5071)));
        assert_eq!(u.transport().as_deref(), Some("tcp"));
        // maddr overrides the host as the destination (RFC 3261 §19.1.1).
        assert_eq!(u.socket_addr(), Some("[::2]:5071".parse().expect("addr")));
        let u = SipUri::parse("sip:bob@example.com;maddr=192.0.2.7").expect("uri");
        assert_eq!(
            u.socket_addr(),
            Some("192.0.2.7:5060".parse().expect("addr"))
        );
    }

    #[test]
    fn malformed_ipv6_references_are_refused_without_panic() {
        for uri in [
            "sip:[::1",
            "sip:bob@[::1",
            "sip:[]",
            "sip:[::1]x",
            "sip:[::1]:",
            "sip:[::1]:99999",
            "sip:[zz::1]:5060",
            "sip:[192.0.2.1]",
            "sip:[2001:db8::1::2]",
            "sip:[[::1]]",
            "sip:[",
            "sip:@[",
            "sip:]",
        ] {
            let addr = SipUri::parse(uri).and_then(|u| u.socket_addr());
            assert_eq!(addr, None, "{uri}");
        }
        for sent_by in [
            "[::1", "[::1]x", "[]:5060", "[nope]:1", "1::2::3", "[::1]:x",
        ] {
            assert_eq!(split_host_port(sent_by), None, "{sent_by}");
        }
        for text in ["[::1", "::1]", "[]", "[1.2.3.4]", "[::1]]"] {
            assert_eq!(parse_ip(text), None, "{text}");
        }
        let garbage = v6_request("sip:[::1", "SIP/2.0/UDP [::1;branch=z9hG4bK1", "");
        assert!(Message::parse(garbage.as_bytes()).is_err());
    }
}
