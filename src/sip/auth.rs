//! HTTP digest authentication for SIP (RFC 2617, RFC 7616, RFC 8760): parsing
//! `WWW-Authenticate` / `Proxy-Authenticate` challenges and computing the
//! `Authorization` / `Proxy-Authorization` value that answers one.
//!
//! This module owns the digest arithmetic and nothing else. It must stay pure:
//! no I/O, no clock, no randomness (the caller passes the `cnonce` and keeps
//! the `nc` counter), no panics on any input, no `unsafe`. Which request to
//! retry, and when, belongs to `client_auth.rs`.
//!
//! rsip's own digest generator is not used: it prints `nc` in decimal, gets
//! `-sess` wrong and rejects `qop="auth,auth-int"`.

#![forbid(unsafe_code)]

use md5::Md5;
use sha2::{Digest, Sha256};

/// A digest algorithm we can compute (RFC 7616 §3.3, RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// `MD5`, also what a challenge without `algorithm` means.
    #[default]
    Md5,
    /// `MD5-sess`.
    Md5Sess,
    /// `SHA-256`.
    Sha256,
    /// `SHA-256-sess`.
    Sha256Sess,
}

impl Algorithm {
    /// The name as written in the `algorithm` parameter (`MD5`, `MD5-sess`, `SHA-256`, `SHA-256-sess`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    /// Looks an `algorithm` parameter value up, ignoring ASCII case; `None` when unsupported.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        [
            Algorithm::Md5,
            Algorithm::Md5Sess,
            Algorithm::Sha256,
            Algorithm::Sha256Sess,
        ]
        .into_iter()
        .find(|a| a.as_str().eq_ignore_ascii_case(name))
    }

    /// True for the `-sess` variants, whose HA1 also covers nonce and cnonce.
    pub fn is_session(&self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }

    /// Preference among algorithms: higher is better. SHA-256 beats MD5; the
    /// plain form beats `-sess` (equal strength, better interoperability).
    fn rank(&self) -> u8 {
        match self {
            Algorithm::Sha256 => 4,
            Algorithm::Sha256Sess => 3,
            Algorithm::Md5 => 2,
            Algorithm::Md5Sess => 1,
        }
    }

    /// Lower-case hex of the hash of `parts` joined by `:`.
    fn hash(&self, parts: &[&str]) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex_digest::<Md5>(parts),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex_digest::<Sha256>(parts),
        }
    }
}

/// Why a challenge could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The header value holds no challenge at all.
    #[error("empty authentication challenge")]
    Empty,
    /// The challenge uses another scheme than `Digest` (e.g. `Basic`).
    #[error("authentication scheme {0:?} is not supported (only Digest)")]
    NotDigest(String),
    /// The challenge lacks its `realm` parameter.
    #[error("digest challenge has no realm")]
    MissingRealm,
    /// The challenge lacks its `nonce` parameter.
    #[error("digest challenge has no nonce")]
    MissingNonce,
    /// The server asks for an algorithm we do not implement (e.g. `SHA-512-256`, `AKAv1-MD5`).
    #[error("digest algorithm {0:?} is not supported")]
    UnsupportedAlgorithm(String),
    /// The server offers quality-of-protection values that exclude `auth` (e.g. only `auth-int`).
    #[error("digest qop {0:?} is not supported (only \"auth\")")]
    UnsupportedQop(String),
    /// The header value could not be parsed.
    #[error("malformed digest challenge: {0}")]
    Malformed(&'static str),
}

/// A parsed `Digest` challenge from a 401 or 407 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    /// Protection space, echoed in the answer and part of HA1.
    pub realm: String,
    /// Server nonce.
    pub nonce: String,
    /// Opaque server data, echoed unchanged.
    pub opaque: Option<String>,
    /// Hash algorithm to use.
    pub algorithm: Algorithm,
    /// The server offers qop `auth`: answer with `qop=auth`, `nc` and `cnonce`.
    pub qop_auth: bool,
    /// The previous answer failed only because the nonce was stale (retry with the
    /// same credentials rather than reporting a wrong password).
    pub stale: bool,
}

impl Challenge {
    /// Parses the value of a WWW-Authenticate or Proxy-Authenticate header ("Digest realm=..., ...").
    ///
    /// Tolerant: any param order, quoted or token values, extra whitespace, unknown params ignored,
    /// qop lists like "auth,auth-int" (auth must be usable), algorithm names case-insensitive;
    /// missing algorithm = MD5. A repeated parameter keeps its first value. When the value holds
    /// several challenges, only the first is parsed (see [`pick_strongest`] for choosing).
    ///
    /// Errors for non-Digest schemes, missing realm/nonce, unsupported algorithm, a qop list
    /// without `auth`, control characters inside values and unterminated quoted strings.
    pub fn parse(value: &str) -> Result<Challenge, AuthError> {
        match split_challenges(value).into_iter().next() {
            Some(raw) => raw.into_challenge(),
            None => Err(AuthError::Empty),
        }
    }
}

/// Among several challenges (a 401 may carry one per algorithm) picks the strongest we support (SHA-256 over MD5).
///
/// Each value may itself hold several comma-separated challenges. Unusable challenges are
/// skipped; among equally strong ones the first (the server's preference) wins. `None` when
/// no challenge is usable.
pub fn pick_strongest(values: &[&str]) -> Option<Challenge> {
    let mut best: Option<Challenge> = None;
    for value in values {
        for raw in split_challenges(value) {
            let Ok(ch) = raw.into_challenge() else {
                continue;
            };
            let better = match &best {
                Some(b) => ch.algorithm.rank() > b.algorithm.rank(),
                None => true,
            };
            if better {
                best = Some(ch);
            }
        }
    }
    best
}

/// Builds the Authorization / Proxy-Authorization header value.
///
/// nc is printed as 8 hex digits; cnonce is given by the caller; with qop=auth includes qop=auth, nc, cnonce;
/// without qop uses the RFC 2069 form (plus `cnonce` when a `-sess` algorithm needs it). Echoes opaque and
/// algorithm (`algorithm` is always written, `MD5` included). `uri` is the Request-URI as a string.
///
/// Quoted values are escaped (`\` and `"`); control characters (CR, LF, …) are dropped from the header
/// text so that no input can inject a header line — the hash still covers the values as given.
pub fn authorization(
    ch: &Challenge,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    nc: u32,
    cnonce: &str,
) -> String {
    let alg = ch.algorithm;
    let nc_hex = format!("{nc:08x}");
    let mut ha1 = alg.hash(&[username, &ch.realm, password]);
    if alg.is_session() {
        ha1 = alg.hash(&[&ha1, &ch.nonce, cnonce]);
    }
    let ha2 = alg.hash(&[method, uri]);
    let response = if ch.qop_auth {
        alg.hash(&[&ha1, &ch.nonce, &nc_hex, cnonce, "auth", &ha2])
    } else {
        alg.hash(&[&ha1, &ch.nonce, &ha2])
    };

    let mut out = String::from("Digest ");
    push_quoted(&mut out, "username", username);
    out.push_str(", ");
    push_quoted(&mut out, "realm", &ch.realm);
    out.push_str(", ");
    push_quoted(&mut out, "nonce", &ch.nonce);
    out.push_str(", ");
    push_quoted(&mut out, "uri", uri);
    out.push_str(", ");
    push_quoted(&mut out, "response", &response);
    out.push_str(", algorithm=");
    out.push_str(alg.as_str());
    if ch.qop_auth || alg.is_session() {
        out.push_str(", ");
        push_quoted(&mut out, "cnonce", cnonce);
    }
    if let Some(opaque) = &ch.opaque {
        out.push_str(", ");
        push_quoted(&mut out, "opaque", opaque);
    }
    if ch.qop_auth {
        out.push_str(", qop=auth, nc=");
        out.push_str(&nc_hex);
    }
    out
}

/// Appends `name="value"` with `\` and `"` escaped and control characters dropped.
fn push_quoted(out: &mut String, name: &str, value: &str) {
    out.push_str(name);
    out.push_str("=\"");
    for c in value.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Lower-case hex of `D(parts[0] ":" parts[1] ":" …)`.
fn hex_digest<D: Digest>(parts: &[&str]) -> String {
    let mut d = D::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            d.update(b":");
        }
        d.update(p.as_bytes());
    }
    let bytes = d.finalize();
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes.iter() {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    s
}

/// One challenge as written: scheme and raw parameters, before interpretation.
#[derive(Debug)]
struct RawChallenge {
    scheme: String,
    params: Vec<(String, String)>,
    error: Option<&'static str>,
}

impl RawChallenge {
    /// First value of parameter `name` (ASCII case-insensitive).
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn into_challenge(self) -> Result<Challenge, AuthError> {
        if !self.scheme.eq_ignore_ascii_case("Digest") {
            return Err(AuthError::NotDigest(self.scheme));
        }
        if let Some(e) = self.error {
            return Err(AuthError::Malformed(e));
        }
        if self
            .params
            .iter()
            .any(|(_, v)| v.chars().any(|c| c.is_control()))
        {
            return Err(AuthError::Malformed(
                "control character in a parameter value",
            ));
        }
        let realm = self.param("realm").ok_or(AuthError::MissingRealm)?;
        let nonce = self.param("nonce").ok_or(AuthError::MissingNonce)?;
        let algorithm = match self.param("algorithm") {
            None => Algorithm::Md5,
            Some(name) => Algorithm::from_name(name.trim())
                .ok_or_else(|| AuthError::UnsupportedAlgorithm(name.to_string()))?,
        };
        let qop_auth = match self.param("qop") {
            None => false,
            Some(list) => {
                let mut options = list.split(',').map(str::trim).filter(|s| !s.is_empty());
                let mut any = false;
                let mut auth = false;
                for o in options.by_ref() {
                    any = true;
                    auth |= o.eq_ignore_ascii_case("auth");
                }
                if any && !auth {
                    return Err(AuthError::UnsupportedQop(list.to_string()));
                }
                auth
            }
        };
        let stale = self
            .param("stale")
            .is_some_and(|s| s.trim().eq_ignore_ascii_case("true"));
        Ok(Challenge {
            realm: realm.to_string(),
            nonce: nonce.to_string(),
            opaque: self.param("opaque").map(str::to_string),
            algorithm,
            qop_auth,
            stale,
        })
    }
}

/// A byte cursor over a header value. Structural characters are all ASCII, so
/// every slice boundary falls on a UTF-8 character boundary.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n')) {
            self.i += 1;
        }
    }

    fn skip_ws_and_commas(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\r' | b'\n' | b',')) {
            self.i += 1;
        }
    }

    /// Reads bytes until one of whitespace, `,`, `"` or (when `stop_at_eq`) `=`.
    fn take_token(&mut self, stop_at_eq: bool) -> &'a [u8] {
        let start = self.i;
        while let Some(c) = self.peek() {
            let stop = matches!(c, b' ' | b'\t' | b'\r' | b'\n' | b',' | b'"')
                || (stop_at_eq && c == b'=');
            if stop {
                break;
            }
            self.i += 1;
        }
        self.s.get(start..self.i).unwrap_or_default()
    }

    /// Reads a quoted-string; the cursor is on the opening quote.
    fn take_quoted(&mut self) -> Result<String, &'static str> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted string"),
                Some(b'"') => {
                    self.i += 1;
                    return Ok(String::from_utf8_lossy(&out).into_owned());
                }
                Some(b'\\') => {
                    self.i += 1;
                    match self.peek() {
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                        None => return Err("unterminated quoted string"),
                    }
                }
                Some(c) => {
                    out.push(c);
                    self.i += 1;
                }
            }
        }
    }
}

/// Splits a header value into its challenges: `scheme param=value, … [, scheme …]`.
fn split_challenges(value: &str) -> Vec<RawChallenge> {
    let mut c = Cursor {
        s: value.as_bytes(),
        i: 0,
    };
    let mut out: Vec<RawChallenge> = Vec::new();
    c.skip_ws_and_commas();
    while c.peek().is_some() {
        let scheme = c.take_token(true);
        if scheme.is_empty() {
            // A stray `=` or `"` where a scheme should start.
            if let Some(last) = out.last_mut() {
                last.error.get_or_insert("unexpected character");
            } else {
                out.push(RawChallenge {
                    scheme: String::new(),
                    params: Vec::new(),
                    error: Some("no scheme"),
                });
            }
            break;
        }
        let mut ch = RawChallenge {
            scheme: String::from_utf8_lossy(scheme).into_owned(),
            params: Vec::new(),
            error: None,
        };
        loop {
            c.skip_ws_and_commas();
            if c.peek().is_none() {
                break;
            }
            let save = c.i;
            let key = c.take_token(true);
            c.skip_ws();
            if c.peek() == Some(b'=') {
                c.i += 1;
                c.skip_ws();
                let val = if c.peek() == Some(b'"') {
                    match c.take_quoted() {
                        Ok(v) => v,
                        Err(e) => {
                            ch.error.get_or_insert(e);
                            break;
                        }
                    }
                } else {
                    String::from_utf8_lossy(c.take_token(false)).into_owned()
                };
                if key.is_empty() {
                    ch.error.get_or_insert("parameter without a name");
                    continue;
                }
                ch.params
                    .push((String::from_utf8_lossy(key).into_owned(), val));
                continue;
            }
            if key.is_empty() {
                // A quoted string or other junk where a parameter name should be.
                ch.error.get_or_insert("unexpected character");
                if c.peek() == Some(b'"') && c.take_quoted().is_ok() {
                    continue;
                }
                // Skip to the end: nothing trustworthy follows.
                c.i = c.s.len();
                break;
            }
            // A bare token: the start of the next challenge.
            c.i = save;
            break;
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rfc7616(alg: &str) -> Challenge {
        Challenge::parse(&format!(
            "Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", algorithm={alg}, \
             nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", \
             opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        ))
        .expect("RFC 7616 challenge parses")
    }

    fn response_of(header: &str) -> &str {
        let start = header.find("response=\"").expect("has response") + 10;
        &header[start..start + header[start..].find('"').expect("closed")]
    }

    #[test]
    fn rfc7616_md5_example() {
        let ch = rfc7616("MD5");
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert!(ch.qop_auth);
        let h = authorization(
            &ch,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(response_of(&h), "8ca523f5e9506fed4657c9700eebdbec");
        assert!(h.contains("nc=00000001"));
        assert!(h.contains("qop=auth"));
        assert!(h.contains("algorithm=MD5"));
        assert!(h.contains("opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""));
        assert!(h.contains("cnonce=\"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ\""));
    }

    #[test]
    fn rfc7616_sha256_example() {
        let ch = rfc7616("SHA-256");
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        let h = authorization(
            &ch,
            "Mufasa",
            "Circle of Life",
            "GET",
            "/dir/index.html",
            1,
            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
        );
        assert_eq!(
            response_of(&h),
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"
        );
        assert!(h.contains("algorithm=SHA-256,"));
    }

    #[test]
    fn rfc2617_example_exact_header() {
        let ch = Challenge::parse(
            "Digest\r\n realm=\"testrealm@host.com\",\r\n qop=\"auth,auth-int\",\r\n \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\",\r\n \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
        )
        .expect("parses");
        let h = authorization(
            &ch,
            "Mufasa",
            "Circle Of Life",
            "GET",
            "/dir/index.html",
            1,
            "0a4f113b",
        );
        assert_eq!(
            h,
            "Digest username=\"Mufasa\", realm=\"testrealm@host.com\", \
             nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", uri=\"/dir/index.html\", \
             response=\"6629fae49393a05397450978507c4ef1\", algorithm=MD5, cnonce=\"0a4f113b\", \
             opaque=\"5ccc069c403ebaf9f0171e9517f40e41\", qop=auth, nc=00000001"
        );
    }

    #[test]
    fn rfc2069_form_without_qop() {
        // Asterisk style: no qop. Response = MD5(HA1:nonce:HA2), no cnonce/nc/qop.
        let ch = Challenge::parse("Digest algorithm=MD5, realm=\"asterisk\", nonce=\"1a2b3c\"")
            .expect("parses");
        assert_eq!(
            ch,
            Challenge {
                realm: "asterisk".into(),
                nonce: "1a2b3c".into(),
                opaque: None,
                algorithm: Algorithm::Md5,
                qop_auth: false,
                stale: false,
            }
        );
        let h = authorization(&ch, "1001", "secret", "REGISTER", "sip:127.0.0.1", 1, "abc");
        // HA1 = md5("1001:asterisk:secret"), HA2 = md5("REGISTER:sip:127.0.0.1")
        let ha1 = hex_digest::<Md5>(&["1001", "asterisk", "secret"]);
        let ha2 = hex_digest::<Md5>(&["REGISTER", "sip:127.0.0.1"]);
        let expected = hex_digest::<Md5>(&[&ha1, "1a2b3c", &ha2]);
        assert_eq!(response_of(&h), expected);
        assert_eq!(expected, "f91f136ecc32d8d8f9cbbacbd7ac2e12");
        assert!(!h.contains("qop"));
        assert!(!h.contains("nc="));
        assert!(!h.contains("cnonce"));
        assert!(!h.contains("opaque"));
    }

    #[test]
    fn md5_sess_and_nc_in_hex() {
        let ch = Challenge::parse("Digest realm=\"r\", nonce=\"n\", qop=auth, algorithm=md5-SESS")
            .expect("parses");
        assert_eq!(ch.algorithm, Algorithm::Md5Sess);
        let h = authorization(&ch, "u", "p", "INVITE", "sip:b@x", 0x1a, "c");
        assert!(h.contains("nc=0000001a"), "{h}");
        let ha1 = hex_digest::<Md5>(&[&hex_digest::<Md5>(&["u", "r", "p"]), "n", "c"]);
        let ha2 = hex_digest::<Md5>(&["INVITE", "sip:b@x"]);
        let expected = hex_digest::<Md5>(&[&ha1, "n", "0000001a", "c", "auth", &ha2]);
        assert_eq!(response_of(&h), expected);
        // Cross-checked with Python's hashlib.
        assert_eq!(expected, "231294150dea1d3c7cd625e93a78df68");
        assert!(h.contains("algorithm=MD5-sess"));
    }

    #[test]
    fn sha256_sess_uses_session_ha1() {
        let ch = Challenge::parse("Digest realm=r,nonce=n,qop=auth,algorithm=SHA-256-sess")
            .expect("parses");
        assert_eq!(ch.algorithm, Algorithm::Sha256Sess);
        let h = authorization(&ch, "u", "p", "REGISTER", "sip:x", 1, "c");
        let ha1 = hex_digest::<Sha256>(&[&hex_digest::<Sha256>(&["u", "r", "p"]), "n", "c"]);
        let ha2 = hex_digest::<Sha256>(&["REGISTER", "sip:x"]);
        let expected = hex_digest::<Sha256>(&[&ha1, "n", "00000001", "c", "auth", &ha2]);
        assert_eq!(response_of(&h), expected);
        // Cross-checked with Python's hashlib.
        assert_eq!(
            expected,
            "8b1e3bd581b62ded4f035b255e61b53ae6b8cc7524cbfd63a29d20af252c7ba7"
        );
    }

    #[test]
    fn kamailio_header() {
        let ch = Challenge::parse(
            "Digest realm=\"127.0.0.1\", nonce=\"Y2xvY2s6MTcwMDAwMDAwMDpmNGE3YjJj\", qop=\"auth\"",
        )
        .expect("parses");
        assert_eq!(ch.realm, "127.0.0.1");
        assert_eq!(ch.nonce, "Y2xvY2s6MTcwMDAwMDAwMDpmNGE3YjJj");
        assert!(ch.qop_auth);
        assert_eq!(ch.algorithm, Algorithm::Md5);
        assert!(!ch.stale);
    }

    #[test]
    fn stale_flag_any_case() {
        for (v, want) in [
            ("stale=true", true),
            ("stale=TRUE", true),
            ("stale=\"True\"", true),
            ("stale=false", false),
            ("stale=FALSE", false),
        ] {
            let ch =
                Challenge::parse(&format!("Digest realm=\"a\", nonce=\"b\", {v}")).expect("parses");
            assert_eq!(ch.stale, want, "{v}");
        }
    }

    #[test]
    fn tolerant_syntax() {
        let ch = Challenge::parse(
            "  digest   nonce = abc== ,, foo=\"bar, baz\" ,realm=\"a \\\"q\\\" b\",opaque=\"\" ,\tALGORITHM = \"sha-256\"  ",
        )
        .expect("parses");
        assert_eq!(ch.nonce, "abc==");
        assert_eq!(ch.realm, "a \"q\" b");
        assert_eq!(ch.opaque.as_deref(), Some(""));
        assert_eq!(ch.algorithm, Algorithm::Sha256);
        assert!(!ch.qop_auth);
        // The realm with quotes is escaped again on the way out.
        let h = authorization(&ch, "u", "p", "REGISTER", "sip:x", 1, "c");
        assert!(h.contains("realm=\"a \\\"q\\\" b\""), "{h}");
        // Missing commas between parameters.
        let ch = Challenge::parse("Digest realm=\"a\" nonce=\"b\" qop=auth").expect("parses");
        assert_eq!(
            (ch.realm.as_str(), ch.nonce.as_str(), ch.qop_auth),
            ("a", "b", true)
        );
        // Duplicates: the first wins.
        let ch = Challenge::parse("Digest realm=a, nonce=1, nonce=2").expect("parses");
        assert_eq!(ch.nonce, "1");
    }

    #[test]
    fn qop_lists() {
        let ch = Challenge::parse("Digest realm=a, nonce=b, qop=\"auth-int, auth\"").expect("ok");
        assert!(ch.qop_auth);
        let ch = Challenge::parse("Digest realm=a, nonce=b, qop=\"auth,auth-int\"").expect("ok");
        assert!(ch.qop_auth);
        assert_eq!(
            Challenge::parse("Digest realm=a, nonce=b, qop=\"auth-int\""),
            Err(AuthError::UnsupportedQop("auth-int".into()))
        );
        let ch = Challenge::parse("Digest realm=a, nonce=b, qop=\"\"").expect("ok");
        assert!(!ch.qop_auth);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            Challenge::parse("Basic realm=\"x\""),
            Err(AuthError::NotDigest(s)) if s == "Basic"
        ));
        assert_eq!(Challenge::parse(""), Err(AuthError::Empty));
        assert_eq!(Challenge::parse("  , "), Err(AuthError::Empty));
        assert_eq!(
            Challenge::parse("Digest nonce=1"),
            Err(AuthError::MissingRealm)
        );
        assert_eq!(
            Challenge::parse("Digest realm=1"),
            Err(AuthError::MissingNonce)
        );
        assert_eq!(
            Challenge::parse("Digest realm=a, nonce=b, algorithm=SHA-512-256"),
            Err(AuthError::UnsupportedAlgorithm("SHA-512-256".into()))
        );
        assert!(matches!(
            Challenge::parse("Digest realm=\"a, nonce=b"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest realm=\"a\r\nX-Evil: 1\", nonce=b"),
            Err(AuthError::Malformed(_))
        ));
        assert!(matches!(
            Challenge::parse("Digest =x, realm=a, nonce=b"),
            Err(AuthError::Malformed(_))
        ));
    }

    #[test]
    fn header_injection_is_stripped() {
        let ch = Challenge::parse("Digest realm=a, nonce=b").expect("ok");
        let h = authorization(&ch, "u\r\nVia: evil", "p", "REGISTER", "sip:x\n", 1, "c");
        assert!(!h.contains('\r') && !h.contains('\n'), "{h}");
    }

    #[test]
    fn picks_sha256_over_md5() {
        let md5 = "Digest realm=\"atlanta.com\", nonce=\"m\", qop=\"auth\", algorithm=MD5";
        let sha = "Digest realm=\"atlanta.com\", nonce=\"s\", qop=\"auth\", algorithm=SHA-256";
        let odd = "Digest realm=\"atlanta.com\", nonce=\"x\", algorithm=SHA-512-256";
        let picked = pick_strongest(&[md5, odd, sha]).expect("one usable");
        assert_eq!(picked.algorithm, Algorithm::Sha256);
        assert_eq!(picked.nonce, "s");
        let picked = pick_strongest(&[sha, md5]).expect("one usable");
        assert_eq!(picked.nonce, "s");
        // Equal strength: the first (server's preference) wins.
        let picked = pick_strongest(&[md5, "Digest realm=a, nonce=m2"]).expect("usable");
        assert_eq!(picked.nonce, "m");
        // Several challenges in one header value.
        let both = format!("{md5}, {sha}");
        assert_eq!(
            pick_strongest(&[&both]).map(|c| c.nonce),
            Some("s".to_string())
        );
        assert_eq!(
            Challenge::parse(&both).map(|c| c.nonce),
            Ok("m".to_string())
        );
        // Nothing usable.
        assert_eq!(pick_strongest(&[odd, "Basic realm=x", "garbage"]), None);
        assert_eq!(pick_strongest(&[]), None);
        // A Basic challenge before a Digest one in the same value.
        let mixed = "Basic realm=\"x\", Digest realm=\"y\", nonce=\"z\"";
        assert_eq!(pick_strongest(&[mixed]).map(|c| c.realm), Some("y".into()));
    }

    #[test]
    fn garbage_never_panics() {
        let seeds = [
            "Digest realm=\"127.0.0.1\", nonce=\"Y2x1\", qop=\"auth,auth-int\", opaque=\"o\\\"p\", stale=TRUE",
            "Digest algorithm=MD5, realm=\"asterisk\", nonce=\"1a2b3c\"",
            "Basic realm=\"é\", Digest realm=\"ü\", nonce=\"ß\", algorithm=SHA-256-sess",
        ];
        let inserts = ['"', '\\', ',', '=', ' ', '\r', '\n', 'é', '\0', 'D'];
        let mut count = 0usize;
        for seed in seeds {
            let chars: Vec<char> = seed.chars().collect();
            for i in 0..=chars.len() {
                let prefix: String = chars[..i].iter().collect();
                let suffix: String = chars[i..].iter().collect();
                let _ = Challenge::parse(&prefix);
                let _ = Challenge::parse(&suffix);
                for ins in inserts {
                    let s = format!("{prefix}{ins}{suffix}");
                    let _ = Challenge::parse(&s);
                    let _ = pick_strongest(&[&s, seed]);
                    if let Ok(ch) = Challenge::parse(&s) {
                        let _ = authorization(&ch, &s, &s, &s, &s, u32::MAX, &s);
                    }
                    if i < chars.len() {
                        let replaced: String = chars[..i]
                            .iter()
                            .chain(std::iter::once(&ins))
                            .chain(chars[i + 1..].iter())
                            .collect();
                        let _ = Challenge::parse(&replaced);
                    }
                    count += 1;
                }
            }
        }
        for junk in [
            "\"",
            "\\",
            "=",
            "Digest \"",
            "Digest realm",
            "Digest realm=",
            "Digest ,=,",
            "\u{feff}Digest",
        ] {
            let _ = Challenge::parse(junk);
            let _ = pick_strongest(&[junk]);
        }
        assert!(count > 1000);
    }
}
