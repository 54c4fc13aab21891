//! The pure building blocks of call transfer (RFC 3515 REFER, RFC 3891
//! Replaces, RFC 3420 sipfrag), with no state machine.
//!
//! Owns the small grammars a transfer needs: the sipfrag status line carried
//! in NOTIFY bodies, the Replaces header and its escaped form inside a
//! Refer-To URI, and the Event / Subscription-State values of the implicit
//! refer subscription (what the operator typed becomes a target in
//! [`super::target`]). It must not hold state, build whole messages, read clocks,
//! or panic on any input: every parser returns an error (or `None`) for
//! garbage.
//!
//! ```text
//!  transferor (us)                          transferee                 target
//!  ───────────────                          ──────────                 ──────
//!  Target::parse("555 1234", dom) ─► Refer-To: <sip:5551234@dom>
//!  attended: Replaces::from_dialog(consult)
//!        refer_to_with_replaces(contact, &r) ─► Refer-To: <contact?Replaces=cid%3Bto-tag%3D…>
//!                                           parse_refer_to() ─► uri + Replaces ─► INVITE uri
//!                                                                      Replaces: r.to_header_value()
//!                                                                     Replaces::parse ─► matches()
//!  NOTIFY  Event: refer;id=7      ◄─ sipfrag_body(180, "Ringing")
//!          event_is_refer() / refer_event_id()
//!          parse_subscription_state() ─► Active / Pending / Terminated
//!          parse_sipfrag(body) ─► SipFrag { code: 180, reason: "Ringing" }
//! ```
//!
//! Tag orientation (RFC 3891 §3): in a Replaces header the `to-tag` is the
//! tag of the UA that *receives* the INVITE with Replaces (the transfer
//! target) and the `from-tag` the other one. Seen from the transferor, that
//! is `to-tag` = the consult dialog's remote tag and `from-tag` = its local
//! tag, whichever side sent the consult INVITE ([`Replaces::from_dialog`]);
//! seen from the target, `to-tag` = local tag ([`Replaces::matches`]).

use std::fmt;

use super::dialog::Dialog;
use super::msg::{reason_phrase, Params};

/// Content-Type of a NOTIFY body for the refer event (RFC 3515 §2.4.5).
pub(crate) const SIPFRAG_CONTENT_TYPE: &str = "message/sipfrag;version=2.0";

// ───────────────────────────── sipfrag ──────────────────────────────

/// The status line of a `message/sipfrag` body (RFC 3420, RFC 3515 §2.4.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SipFrag {
    /// Status code, always in `100..=699`.
    pub code: u16,
    /// Reason phrase as received, trimmed, control characters turned into
    /// spaces (may be empty).
    pub reason: String,
}

impl SipFrag {
    /// True for a final status (≥ 200): the referenced request is over.
    pub fn is_final(&self) -> bool {
        self.code >= 200
    }

    /// True for a 2xx: the transfer succeeded.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.code)
    }
}

/// Why a sipfrag body was not a usable status line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SipFragError {
    /// The body is empty or only blank lines.
    #[error("empty sipfrag body")]
    Empty,
    /// The first line does not start with a SIP version (e.g. a request line).
    #[error("sipfrag does not start with a SIP status line")]
    NotStatusLine,
    /// A version other than SIP/2.0.
    #[error("unsupported SIP version in sipfrag")]
    BadVersion,
    /// The status code is not three digits in 100..=699.
    #[error("malformed status code in sipfrag")]
    BadCode,
}

/// Reads the status line of a sipfrag NOTIFY body.
///
/// Strict on the status line itself: `SIP/2.0` (case-insensitive, as RFC 3261
/// §7.1 allows), whitespace, exactly three digits in `100..=699`, then
/// whitespace and the reason (or the end of the line). Tolerant of
/// everything around it: LF-only or CRLF line endings, leading blank lines,
/// leading or trailing whitespace on the line, and any (or no) headers after
/// it, which are ignored. Never panics.
///
/// Use: on a NOTIFY with `Event: refer`, `parse_sipfrag(&msg.body)`; a
/// provisional code is progress (`100` trying, `180`/`183` ringing), a final
/// one ends the transfer ([`SipFrag::is_success`] or failure). An error means
/// the NOTIFY is answered (200, or 400) but carries no progress.
pub(crate) fn parse_sipfrag(body: &[u8]) -> Result<SipFrag, SipFragError> {
    let line = body
        .split(|&b| b == b'\n')
        // A CR ends the line too (CRLF, or a stray CR: never part of the reason).
        .map(|l| l.split(|&b| b == b'\r').next().unwrap_or(l))
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .ok_or(SipFragError::Empty)?;
    let line = String::from_utf8_lossy(line);
    let line = line.trim_matches(|c: char| c.is_ascii_whitespace());

    let (version, rest) = split_ws(line);
    if !version
        .get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("SIP/"))
    {
        return Err(SipFragError::NotStatusLine);
    }
    if !version.eq_ignore_ascii_case("SIP/2.0") {
        return Err(SipFragError::BadVersion);
    }
    let (code, reason) = split_ws(rest);
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SipFragError::BadCode);
    }
    let code: u16 = code.parse().map_err(|_| SipFragError::BadCode)?;
    if !(100..=699).contains(&code) {
        return Err(SipFragError::BadCode);
    }
    // The reason is shown to the operator: no control characters.
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Ok(SipFrag {
        code,
        reason: reason.trim().to_string(),
    })
}

/// Splits at the first run of spaces/tabs: (first word, rest with the
/// separating whitespace removed).
fn split_ws(s: &str) -> (&str, &str) {
    match s.find([' ', '\t']) {
        Some(i) => (&s[..i], s[i..].trim_start_matches([' ', '\t'])),
        None => (s, ""),
    }
}

/// The body of a NOTIFY reporting `code`: `SIP/2.0 <code> <reason>\r\n`.
///
/// Line breaks and other control characters in `reason` become spaces (no
/// header injection); an empty reason is replaced by the standard phrase.
/// Send it with Content-Type [`SIPFRAG_CONTENT_TYPE`], `Event: refer` (plus
/// `;id=<REFER CSeq>` for a second REFER in the same dialog) and
/// `Subscription-State: active;expires=…`, or `terminated;reason=noresource`
/// with the final status.
pub(crate) fn sipfrag_body(code: u16, reason: &str) -> String {
    let reason: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let reason = reason.trim();
    let reason = if reason.is_empty() {
        reason_phrase(code)
    } else {
        reason
    };
    format!("SIP/2.0 {code} {reason}\r\n")
}

// ───────────────────────────── Replaces ─────────────────────────────

/// The Replaces header (RFC 3891 §6.1): which dialog a new INVITE replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Replaces {
    /// Call-ID of the dialog to replace.
    pub call_id: String,
    /// Tag of the UA receiving the INVITE with Replaces (its local tag).
    pub to_tag: String,
    /// Tag of the other party of that dialog (the receiver's remote tag).
    pub from_tag: String,
    /// `early-only`: replace the dialog only while it is early (else 486).
    pub early_only: bool,
}

/// Why a Replaces value was refused (answer the INVITE or REFER with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReplacesError {
    /// No Call-ID, or one with whitespace in it.
    #[error("Replaces has no valid Call-ID")]
    NoCallId,
    /// The `to-tag` parameter is absent or empty.
    #[error("Replaces has no to-tag")]
    MissingToTag,
    /// The `from-tag` parameter is absent or empty.
    #[error("Replaces has no from-tag")]
    MissingFromTag,
    /// A tag with quotes, backslashes or control characters in it.
    #[error("Replaces has a malformed tag")]
    BadTag,
}

impl Replaces {
    /// Parses a Replaces header value: `callid;to-tag=…;from-tag=…[;early-only]`.
    ///
    /// Parameter names are case-insensitive, values may be tokens or quoted
    /// strings, whitespace (also folded lines) around `;` and `=` is
    /// allowed, unknown parameters are ignored, and the first of duplicated
    /// parameters wins. Tags and Call-ID are kept exactly (they compare
    /// case-sensitively). A missing or empty tag is an error, as is a
    /// Call-ID with whitespace or a tag with quotes or control characters
    /// in it, so whatever parses is written back identically by
    /// [`Replaces::to_header_value`].
    pub fn parse(value: &str) -> Result<Replaces, ReplacesError> {
        let value = value.trim();
        let (call_id, params) = value.split_once(';').unwrap_or((value, ""));
        let call_id = call_id.trim();
        if call_id.is_empty() || call_id.contains(|c: char| c.is_whitespace() || c.is_control()) {
            return Err(ReplacesError::NoCallId);
        }
        let params = Params::parse(params);
        let tag = |name: &str, missing: ReplacesError| {
            let t = params
                .get(name)
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .ok_or(missing)?;
            if t.contains(|c: char| c == '"' || c == '\\' || c.is_control()) {
                return Err(ReplacesError::BadTag);
            }
            Ok(t.to_string())
        };
        let to_tag = tag("to-tag", ReplacesError::MissingToTag)?;
        let from_tag = tag("from-tag", ReplacesError::MissingFromTag)?;
        Ok(Replaces {
            call_id: call_id.to_string(),
            to_tag,
            from_tag,
            early_only: params.has("early-only"),
        })
    }

    /// The transferor's Replaces for its consult dialog (attended transfer):
    /// `to-tag` = the consult peer's tag, `from-tag` = ours, whichever side
    /// sent the consult INVITE (RFC 3891 §3). `early_only` when completing
    /// while the target still rings and only an early dialog may be taken.
    pub fn from_dialog(dialog: &Dialog, early_only: bool) -> Replaces {
        Replaces {
            call_id: dialog.call_id.clone(),
            to_tag: dialog.remote_tag.clone(),
            from_tag: dialog.local_tag.clone(),
            early_only,
        }
    }

    /// True when this Replaces names the dialog `(call_id, local_tag,
    /// remote_tag)` of the UA that received it (the transfer target):
    /// `to-tag` is compared with the local tag, `from-tag` with the remote
    /// tag, all exactly. The caller then checks the dialog state: no match →
    /// 481; `early_only` and the dialog is confirmed → 486.
    pub fn matches(&self, call_id: &str, local_tag: &str, remote_tag: &str) -> bool {
        self.call_id == call_id && self.to_tag == local_tag && self.from_tag == remote_tag
    }

    /// The header value, `callid;to-tag=…;from-tag=…[;early-only]`, for the
    /// Replaces header of the INVITE the transferee sends to the target.
    pub fn to_header_value(&self) -> String {
        let mut out = format!(
            "{};to-tag={};from-tag={}",
            self.call_id,
            quote_if_needed(&self.to_tag),
            quote_if_needed(&self.from_tag)
        );
        if self.early_only {
            out.push_str(";early-only");
        }
        out
    }
}

impl fmt::Display for Replaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header_value())
    }
}

/// Tags are tokens; anything that is not one is written as a quoted string
/// so that [`Replaces::parse`] reads it back.
fn quote_if_needed(v: &str) -> String {
    let token = !v.is_empty()
        && v.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'.' | b'!' | b'%' | b'*' | b'_' | b'+' | b'`' | b'\'' | b'~'
                )
        });
    if token {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace(['"', '\\'], ""))
    }
}

// ───────────────────────────── Refer-To ─────────────────────────────

/// True for bytes that may stand unescaped in a URI header value (RFC 3261
/// §25.1: `hvalue = *( hnv-unreserved / unreserved / escaped )`). `?` is
/// allowed by the grammar but escaped anyway, for parsers that split on it.
fn hvalue_unescaped(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            // mark
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
            // hnv-unreserved, less '?'
            | b'[' | b']' | b'/' | b':' | b'+' | b'$'
        )
}

/// Escapes a URI header name or value: `@`→`%40`, `;`→`%3B`, `=`→`%3D`, … .
fn escape_hvalue(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if hvalue_unescaped(b) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Undoes `%XX` escapes (either hex case); a `%` not followed by two hex
/// digits stays literal. Invalid UTF-8 after unescaping is replaced.
fn unescape(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Trims, and strips one pair of enclosing angle brackets.
fn bare_uri(uri: &str) -> &str {
    let uri = uri.trim();
    uri.strip_prefix('<')
        .and_then(|u| u.strip_suffix('>'))
        .map_or(uri, str::trim)
}

/// `s` without the ASCII `prefix`, compared case-insensitively.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// The Refer-To value of an attended transfer, in angle brackets:
/// `<target?Replaces=CALLID%3Bto-tag%3DTT%3Bfrom-tag%3DFF>`.
///
/// `target_uri` is the consult dialog's remote target (its Contact; PBXes
/// accept it where an AOR is refused), as a bare URI (angle brackets are
/// tolerated). URI parameters stay where they are (`sip:b@h;transport=tcp`
/// → `<sip:b@h;transport=tcp?Replaces=…>`); when the URI already has
/// headers, Replaces is appended with `&` (an existing Replaces header is
/// dropped). The Replaces value is escaped per RFC 3261 §19.1.1/§25.1.
/// Build `replaces` with [`Replaces::from_dialog`] on the consult dialog.
pub(crate) fn refer_to_with_replaces(target_uri: &str, replaces: &Replaces) -> String {
    let uri = bare_uri(target_uri);
    let (base, existing) = uri.split_once('?').unwrap_or((uri, ""));
    let mut headers: Vec<String> = existing
        .split('&')
        .filter(|h| !h.is_empty())
        .filter(|h| {
            let name = h.split_once('=').map_or(*h, |(n, _)| n);
            !unescape(name).trim().eq_ignore_ascii_case("Replaces")
        })
        .map(str::to_string)
        .collect();
    headers.push(format!(
        "Replaces={}",
        escape_hvalue(&replaces.to_header_value())
    ));
    format!("<{}?{}>", base, headers.join("&"))
}

/// A Refer-To value, taken apart (RFC 3515 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReferTo {
    /// The URI without its headers part: the Request-URI of the INVITE the
    /// transferee sends. Any scheme is returned; check [`ReferTo::is_sip`].
    pub uri: String,
    /// The Replaces URI header, unescaped and parsed: put
    /// [`Replaces::to_header_value`] in that INVITE's Replaces header.
    pub replaces: Option<Replaces>,
    /// The other URI headers, names and values unescaped, in order. RFC 3261
    /// §19.1.5 leaves it to the UA which to honour; ignoring them is safe.
    pub other_headers: Vec<(String, String)>,
}

impl ReferTo {
    /// True when the URI is `sip:` or `sips:` (what we can call).
    pub fn is_sip(&self) -> bool {
        strip_prefix_ci(&self.uri, "sip:").is_some()
            || strip_prefix_ci(&self.uri, "sips:").is_some()
    }
}

/// Why a Refer-To value was refused (answer the REFER with 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ReferToError {
    /// Nothing, or nothing that looks like a URI.
    #[error("Refer-To has no URI")]
    NoUri,
    /// A `<` without its `>`.
    #[error("Refer-To has an unclosed '<'")]
    Unclosed,
    /// The embedded Replaces is malformed.
    #[error("Refer-To carries a malformed Replaces: {0}")]
    Replaces(ReplacesError),
    /// More than one Replaces header in the URI.
    #[error("Refer-To carries more than one Replaces")]
    DuplicateReplaces,
}

/// Takes a Refer-To header value apart.
///
/// Accepts a name-addr (`"Carol" <sip:carol@host?Replaces=…>;param`) and a
/// bare addr-spec (`sip:carol@host`). Per RFC 3261 §20, only a bracketed URI
/// can carry headers: inside brackets the part after the first `?` is split
/// at `&` into `name=value` headers (each `%XX`-unescaped, either hex case);
/// in a bare addr-spec a `?` is part of the URI and `;` starts header
/// parameters, which are dropped. Header parameters after `>` are ignored.
/// A Replaces header is parsed with [`Replaces::parse`].
pub(crate) fn parse_refer_to(value: &str) -> Result<ReferTo, ReferToError> {
    let v = value.trim();
    let (uri, headers) = if let Some(open) = find_unquoted(v, '<') {
        let close = open + v[open..].find('>').ok_or(ReferToError::Unclosed)?;
        let inner = v[open + 1..close].trim();
        match inner.split_once('?') {
            Some((uri, headers)) => (uri.trim(), headers),
            None => (inner, ""),
        }
    } else {
        let uri = v.split_once(';').map_or(v, |(u, _)| u).trim();
        (uri, "")
    };
    if uri.is_empty() || uri.contains(|c: char| c.is_whitespace()) || !uri.contains(':') {
        return Err(ReferToError::NoUri);
    }
    let mut replaces = None;
    let mut other_headers = Vec::new();
    for header in headers.split('&').filter(|h| !h.trim().is_empty()) {
        let (name, value) = header.split_once('=').unwrap_or((header, ""));
        let name = unescape(name).trim().to_string();
        let value = unescape(value);
        if name.eq_ignore_ascii_case("Replaces") {
            if replaces.is_some() {
                return Err(ReferToError::DuplicateReplaces);
            }
            replaces = Some(Replaces::parse(&value).map_err(ReferToError::Replaces)?);
        } else {
            other_headers.push((name, value));
        }
    }
    Ok(ReferTo {
        uri: uri.to_string(),
        replaces,
        other_headers,
    })
}

/// Byte index of the first `target` outside double quotes.
fn find_unquoted(s: &str, target: char) -> Option<usize> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, ch) in s.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == target && !quoted => return Some(i),
            _ => {}
        }
    }
    None
}

// ─────────────────── Event / Subscription-State ─────────────────────

/// The Subscription-State of a NOTIFY (RFC 6665 §8.2.3), as far as the
/// refer subscription needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SubscriptionState {
    /// The subscription runs; `expires` seconds remain if given.
    Active {
        /// The `expires` parameter, if present and numeric.
        expires: Option<u32>,
    },
    /// Not yet authorized (for refer: the transferee has not decided).
    Pending,
    /// The last NOTIFY of the subscription.
    Terminated {
        /// The `reason` parameter, lower case (`noresource`, `timeout`, …).
        reason: Option<String>,
    },
}

/// Reads a Subscription-State value; `None` when the state is missing or an
/// extension value we do not know (then rely on the sipfrag alone: a final
/// status ends the refer subscription anyway).
///
/// Tolerant of case, whitespace, quoted parameter values, and linphonec's
/// `terminated;reason=reason=noresource` (read as `noresource`).
pub(crate) fn parse_subscription_state(value: &str) -> Option<SubscriptionState> {
    let value = value.trim();
    let (state, params) = value.split_once(';').unwrap_or((value, ""));
    let params = Params::parse(params);
    match state.trim().to_ascii_lowercase().as_str() {
        "active" => Some(SubscriptionState::Active {
            expires: params.get("expires").and_then(|e| e.trim().parse().ok()),
        }),
        "pending" => Some(SubscriptionState::Pending),
        "terminated" => {
            let reason = params.get("reason").map(|r| {
                let mut r = r.trim();
                // linphonec: `reason=reason=noresource`.
                while let Some(rest) = r
                    .get(..7)
                    .filter(|p| p.eq_ignore_ascii_case("reason="))
                    .map(|_| &r[7..])
                {
                    r = rest.trim();
                }
                r.trim_matches('"').to_ascii_lowercase()
            });
            Some(SubscriptionState::Terminated {
                reason: reason.filter(|r| !r.is_empty()),
            })
        }
        _ => None,
    }
}

/// True when an Event header value names the refer package: `refer`,
/// `refer;id=123`, any case and spacing. Templates (`refer.x`) are other
/// packages.
pub(crate) fn event_is_refer(value: &str) -> bool {
    let package = value.split(';').next().unwrap_or("").trim();
    package.eq_ignore_ascii_case("refer")
}

/// The `id` parameter of a refer Event header: the CSeq number of the REFER
/// the NOTIFY reports on (RFC 3515 §2.4.6). `None` when absent (then the
/// NOTIFY belongs to the dialog's first REFER) or not a number.
pub(crate) fn refer_event_id(value: &str) -> Option<u32> {
    let (_, params) = value.split_once(';')?;
    Params::parse(params).get("id")?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::dialog::Role;
    use crate::sip::msg::NameAddr;

    /// SplitMix64, seeded: deterministic pseudo-random test inputs.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % n as u64).unwrap_or(0)
        }

        fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
            &items[self.below(items.len())]
        }

        fn string_from(&mut self, alphabet: &[u8], min: usize, max: usize) -> String {
            let len = min + self.below(max - min + 1);
            (0..len).map(|_| char::from(*self.pick(alphabet))).collect()
        }
    }

    /// Characters of RFC 3261 `word` (Call-ID halves).
    const WORD: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~()<>:\\\"/[]?{}";
    /// Characters of RFC 3261 `token` (tags).
    const TOKEN: &[u8] =
        b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.!%*_+`'~";

    fn frag(code: u16, reason: &str) -> Result<SipFrag, SipFragError> {
        parse_sipfrag(format!("SIP/2.0 {code} {reason}\r\n").as_bytes())
    }

    // ── sipfrag ──

    #[test]
    fn sipfrag_rfc3515_bodies() {
        // RFC 3515 §2.4.5 / §4 NOTIFY bodies.
        for (body, code, reason) in [
            ("SIP/2.0 100 Trying\r\n", 100, "Trying"),
            ("SIP/2.0 200 OK\r\n", 200, "OK"),
            (
                "SIP/2.0 503 Service Unavailable\r\n",
                503,
                "Service Unavailable",
            ),
            ("SIP/2.0 180 Ringing", 180, "Ringing"),
        ] {
            let f = parse_sipfrag(body.as_bytes()).expect(body);
            assert_eq!((f.code, f.reason.as_str()), (code, reason));
        }
        // RFC 3420 §4 style fragment with headers after the status line.
        let with_headers = "SIP/2.0 603 Declined\r\nContent-Type: text/plain\r\n\
Content-Length: 0\r\nFrom: <sip:a@b>;tag=1\r\n\r\n";
        let f = parse_sipfrag(with_headers.as_bytes()).expect("parses");
        assert_eq!((f.code, f.reason.as_str()), (603, "Declined"));
        assert!(f.is_final() && !f.is_success());
    }

    #[test]
    fn sipfrag_tolerance() {
        let cases: &[(&[u8], u16, &str)] = &[
            (b"SIP/2.0 180 Ringing\n", 180, "Ringing"),
            (b"SIP/2.0 180 Ringing   \t\r\n", 180, "Ringing"),
            (b"\r\nSIP/2.0 200 OK\r\n", 200, "OK"),
            (b"\n\n  \r\nSIP/2.0 200 OK", 200, "OK"),
            (b"  SIP/2.0 486 Busy Here\n", 486, "Busy Here"),
            (
                b"sip/2.0 487 Request Terminated\n",
                487,
                "Request Terminated",
            ),
            (b"SIP/2.0  200  OK", 200, "OK"),
            (b"SIP/2.0\t202\tAccepted", 202, "Accepted"),
            (b"SIP/2.0 200", 200, ""),
            (b"SIP/2.0 200 \r\n", 200, ""),
            (
                b"SIP/2.0 200 OK\nVia: x\nGarbage without colon\n\x00\xff",
                200,
                "OK",
            ),
            (b"SIP/2.0 200 O\x00K\x0b\r\n", 200, "O K"),
            (
                b"SIP/2.0 480 Temporarily\rUnavailable\n",
                480,
                "Temporarily",
            ),
            (b"SIP/2.0 699 Weird\r\n", 699, "Weird"),
            (b"SIP/2.0 100 Trying\r\n", 100, "Trying"),
            (
                "SIP/2.0 603 Abgelehnt – nö\r\n".as_bytes(),
                603,
                "Abgelehnt – nö",
            ),
        ];
        for (body, code, reason) in cases {
            let f = parse_sipfrag(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
            assert_eq!((f.code, f.reason.as_str()), (*code, *reason), "{body:?}");
        }
        assert!(frag(180, "Ringing").is_ok_and(|f| !f.is_final()));
        assert!(frag(202, "Accepted").is_ok_and(|f| f.is_success()));
    }

    #[test]
    fn sipfrag_strictness() {
        use SipFragError::*;
        let cases: &[(&[u8], SipFragError)] = &[
            (b"", Empty),
            (b"\r\n\r\n \n", Empty),
            (b"INVITE sip:bob@example.com SIP/2.0\r\n", NotStatusLine),
            (b"HTTP/1.1 200 OK\r\n", NotStatusLine),
            (b"200 OK\r\n", NotStatusLine),
            (b"SIP", NotStatusLine),
            (b"SIP/3.0 200 OK\r\n", BadVersion),
            (b"SIP/2.00 200 OK\r\n", BadVersion),
            (b"SIP/2.0/UDP 200 OK\r\n", BadVersion),
            (b"SIP/2.0200 OK\r\n", BadVersion),
            (b"SIP/2.0 099 Low\r\n", BadCode),
            (b"SIP/2.0 700 High\r\n", BadCode),
            (b"SIP/2.0 2000 OK\r\n", BadCode),
            (b"SIP/2.0 20 OK\r\n", BadCode),
            (b"SIP/2.0 200OK\r\n", BadCode),
            (b"SIP/2.0 +20 OK\r\n", BadCode),
            (b"SIP/2.0 \xd9\xa2\xd9\xa0\xd9\xa0 OK\r\n", BadCode),
            (b"SIP/2.0\r\n200 OK\r\n", BadCode),
            (b"SIP/2.0 OK 200\r\n", BadCode),
        ];
        for (body, want) in cases {
            assert_eq!(parse_sipfrag(body).as_ref(), Err(want), "{body:?}");
        }
    }

    #[test]
    fn sipfrag_body_is_crlf_terminated_and_round_trips() {
        assert_eq!(sipfrag_body(100, "Trying"), "SIP/2.0 100 Trying\r\n");
        assert_eq!(sipfrag_body(180, "Ringing"), "SIP/2.0 180 Ringing\r\n");
        assert_eq!(sipfrag_body(486, ""), "SIP/2.0 486 Busy Here\r\n");
        assert_eq!(
            sipfrag_body(200, "OK\r\nEvil: header"),
            "SIP/2.0 200 OK  Evil: header\r\n"
        );
        for code in 100..=699u16 {
            let body = sipfrag_body(code, "Some Reason");
            assert_eq!(body.matches("\r\n").count(), 1);
            let f = parse_sipfrag(body.as_bytes()).expect("own body parses");
            assert_eq!((f.code, f.reason.as_str()), (code, "Some Reason"));
        }
    }

    #[test]
    fn sipfrag_never_panics_on_100k_random_and_mutated_inputs() {
        let mut rng = Rng(0x5eed_0001);
        let seeds: &[&[u8]] = &[
            b"SIP/2.0 200 OK\r\n",
            b"SIP/2.0 180 Ringing\nContent-Length: 0\n\n",
            b"\r\nSIP/2.0 503 Service Unavailable\r\n",
            b"INVITE sip:a@b SIP/2.0\r\n",
        ];
        let mut accepted = 0;
        for i in 0..100_000 {
            let input: Vec<u8> = if i % 2 == 0 {
                let len = rng.below(64);
                (0..len).map(|_| rng.next() as u8).collect()
            } else {
                let mut v = rng.pick(seeds).to_vec();
                for _ in 0..1 + rng.below(4) {
                    let pos = rng.below(v.len() + 1);
                    match rng.below(4) {
                        0 if pos < v.len() => v[pos] = rng.next() as u8,
                        1 => v.insert(pos, *rng.pick(b" \t\r\n0123456789/.SIP\xff\xe2")),
                        2 if pos < v.len() => {
                            v.remove(pos);
                        }
                        _ => v.truncate(pos),
                    }
                }
                v
            };
            if let Ok(f) = parse_sipfrag(&input) {
                accepted += 1;
                assert!((100..=699).contains(&f.code), "{input:?}");
                assert!(!f.reason.contains(char::is_control), "{input:?}");
                assert_eq!(f.reason, f.reason.trim(), "{input:?}");
            }
        }
        // The mutations keep some inputs valid: the accepting path is exercised.
        assert!(accepted > 1000, "only {accepted} accepted");
    }

    // ── Replaces ──

    #[test]
    fn replaces_rfc3891_examples() {
        // RFC 3891 §6.1, including the folded first example.
        let r = Replaces::parse(
            "98732@sip.example.com\r\n          ;from-tag=r33th4x0r\r\n          ;to-tag=ff87ff",
        )
        .expect("folded example");
        assert_eq!(
            r,
            Replaces {
                call_id: "98732@sip.example.com".into(),
                to_tag: "ff87ff".into(),
                from_tag: "r33th4x0r".into(),
                early_only: false,
            }
        );
        let r = Replaces::parse("12adf2f34456gs5;to-tag=12345;from-tag=54321;early-only")
            .expect("early-only example");
        assert_eq!(
            (
                r.call_id.as_str(),
                r.to_tag.as_str(),
                r.from_tag.as_str(),
                r.early_only
            ),
            ("12adf2f34456gs5", "12345", "54321", true)
        );
        let r = Replaces::parse("87134@171.161.34.23;to-tag=24796;from-tag=0").expect("third");
        assert_eq!((r.to_tag.as_str(), r.from_tag.as_str()), ("24796", "0"));
        assert_eq!(
            r.to_header_value(),
            "87134@171.161.34.23;to-tag=24796;from-tag=0"
        );
    }

    #[test]
    fn replaces_tolerance_and_errors() {
        let r =
            Replaces::parse(" abc@h ; TO-TAG = \"t1\" ;From-Tag=f1; Early-Only ;x-unknown=1;flag ")
                .expect("tolerant");
        assert_eq!(
            (
                r.call_id.as_str(),
                r.to_tag.as_str(),
                r.from_tag.as_str(),
                r.early_only
            ),
            ("abc@h", "t1", "f1", true)
        );
        // First of duplicated parameters wins.
        let r = Replaces::parse("c;to-tag=a;to-tag=b;from-tag=f").expect("dup");
        assert_eq!(r.to_tag, "a");
        // Tags are kept exactly (case-sensitive).
        let r = Replaces::parse("C;to-tag=AbC;from-tag=dEf").expect("case");
        assert!(r.matches("C", "AbC", "dEf"));
        assert!(!r.matches("c", "AbC", "dEf"));
        assert!(!r.matches("C", "abc", "dEf"));
        assert!(!r.matches("C", "dEf", "AbC"), "orientation matters");

        use ReplacesError::*;
        for (v, e) in [
            ("", NoCallId),
            (";to-tag=a;from-tag=b", NoCallId),
            ("a b;to-tag=a;from-tag=b", NoCallId),
            ("cid", MissingToTag),
            ("cid;from-tag=b", MissingToTag),
            ("cid;to-tag=;from-tag=b", MissingToTag),
            ("cid;to-tag=\"\";from-tag=b", MissingToTag),
            ("cid;to-tag;from-tag=b", MissingToTag),
            ("cid;to-tag=a", MissingFromTag),
            ("cid;to-tag=a;from-tag", MissingFromTag),
            ("cid;to-tag=a;fromtag=b", MissingFromTag),
            ("cid;to-tag=a\"b;from-tag=f", BadTag),
            ("cid;to-tag=t;from-tag=\"a\\\\b\"", BadTag),
            ("cid;to-tag=\"a;from-tag=f", BadTag),
            ("c\u{1}d;to-tag=a;from-tag=b", NoCallId),
        ] {
            assert_eq!(Replaces::parse(v), Err(e), "{v:?}");
        }
    }

    #[test]
    fn replaces_from_dialog_is_oriented_for_the_target() {
        // We called the consult target: our tag is From, theirs is To.
        let d = Dialog {
            role: Role::Caller,
            call_id: "consult@10.0.0.1".into(),
            local_tag: "ours".into(),
            remote_tag: "theirs".into(),
            local_uri: NameAddr::new("sip:op@example.com"),
            remote_uri: NameAddr::new("sip:carol@example.com"),
            remote_target: "sip:carol@10.0.0.3:5062;transport=tcp".into(),
            route_set: vec![],
            local_cseq: 1,
            remote_cseq: None,
        };
        let r = Replaces::from_dialog(&d, false);
        assert_eq!(
            r.to_header_value(),
            "consult@10.0.0.1;to-tag=theirs;from-tag=ours"
        );
        // The target sees that dialog with local tag "theirs".
        assert!(r.matches("consult@10.0.0.1", "theirs", "ours"));
        assert_eq!(
            refer_to_with_replaces(&d.remote_target, &r),
            "<sip:carol@10.0.0.3:5062;transport=tcp?Replaces=consult%4010.0.0.1%3Bto-tag%3Dtheirs%3Bfrom-tag%3Dours>"
        );
        assert!(Replaces::from_dialog(&d, true)
            .to_header_value()
            .ends_with(";early-only"));
    }

    // ── Refer-To building ──

    #[test]
    fn refer_to_with_replaces_escapes_and_places_question_mark() {
        let r = Replaces {
            call_id: "12345@192.168.118.3".into(),
            to_tag: "12345".into(),
            from_tag: "5FFE-3994".into(),
            early_only: false,
        };
        // RFC 3515 §2.1 / RFC 3891 example value.
        assert_eq!(
            refer_to_with_replaces("sip:dave@denver.example.org", &r),
            "<sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>"
        );
        // Brackets tolerated; URI parameters stay before the '?'.
        assert_eq!(
            refer_to_with_replaces(" <sip:bob@host;transport=tcp> ", &r),
            "<sip:bob@host;transport=tcp?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>"
        );
        // GRUU contact (RFC 5627 / RFC 5589 style).
        let gruu = "sips:4889445d8kjtk3@atlanta.example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6";
        let built = refer_to_with_replaces(gruu, &r);
        assert!(built.starts_with(&format!("<{gruu}?Replaces=")), "{built}");
        // Existing headers: append with '&'; an old Replaces is dropped.
        assert_eq!(
            refer_to_with_replaces("sip:bob@host?Subject=hi", &r),
            "<sip:bob@host?Subject=hi&Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>"
        );
        assert_eq!(
            refer_to_with_replaces("sip:bob@host?replaces=old%3Bto-tag%3D1&X=1", &r),
            "<sip:bob@host?X=1&Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>"
        );
        // Early-only and characters that must be escaped in a Call-ID.
        let odd = Replaces {
            call_id: "a%b?c&d\"e<f>g h@x".into(),
            to_tag: "t".into(),
            from_tag: "f".into(),
            early_only: true,
        };
        assert_eq!(
            refer_to_with_replaces("sip:c@h", &odd),
            "<sip:c@h?Replaces=a%25b%3Fc%26d%22e%3Cf%3Eg%20h%40x%3Bto-tag%3Dt%3Bfrom-tag%3Df%3Bearly-only>"
        );
    }

    // ── Refer-To parsing ──

    #[test]
    fn parse_refer_to_rfc_examples() {
        // RFC 3515 §2.1.
        let r = parse_refer_to("<sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>").expect("replaces");
        assert_eq!(r.uri, "sip:dave@denver.example.org");
        assert_eq!(
            r.replaces,
            Some(Replaces {
                call_id: "12345@192.168.118.3".into(),
                to_tag: "12345".into(),
                from_tag: "5FFE-3994".into(),
                early_only: false
            })
        );
        assert!(r.other_headers.is_empty() && r.is_sip());

        let r =
            parse_refer_to("<sip:carol@cleveland.example.org;method=SUBSCRIBE>").expect("method");
        assert_eq!(r.uri, "sip:carol@cleveland.example.org;method=SUBSCRIBE");
        assert_eq!(r.replaces, None);

        let r = parse_refer_to("mailto:user@host?subject=test").expect("mailto");
        assert_eq!(r.uri, "mailto:user@host?subject=test");
        assert!(!r.is_sip() && r.other_headers.is_empty());

        let r = parse_refer_to("http://www.ietf.org").expect("http");
        assert!(!r.is_sip());

        // The RFC's Accept-Contact example (its second header has no '=').
        let r = parse_refer_to("<sip:bob@biloxi.example.net?Accept-Contact=sip:bobsdesk.biloxi.example.net&Call-ID%3D55432%40alicepc.atlanta.example.com>").expect("accept-contact");
        assert_eq!(r.uri, "sip:bob@biloxi.example.net");
        assert_eq!(
            r.other_headers,
            vec![
                (
                    "Accept-Contact".to_string(),
                    "sip:bobsdesk.biloxi.example.net".to_string()
                ),
                (
                    "Call-ID=55432@alicepc.atlanta.example.com".to_string(),
                    String::new()
                ),
            ]
        );

        // RFC 5589-style values: sips AOR, Replaces, GRUU target.
        let r = parse_refer_to("<sips:Carol@chicago.example.com>").expect("blind");
        assert_eq!(
            (r.uri.as_str(), r.is_sip()),
            ("sips:Carol@chicago.example.com", true)
        );
        let r = parse_refer_to("<sips:Carol@chicago.example.com?Replaces=090459243588173445%3Bto-tag%3D7553452%3Bfrom-tag%3D31431>").expect("attended");
        let rep = r.replaces.expect("replaces");
        assert_eq!(
            (
                rep.call_id.as_str(),
                rep.to_tag.as_str(),
                rep.from_tag.as_str()
            ),
            ("090459243588173445", "7553452", "31431")
        );
        let r = parse_refer_to("<sips:4889445d8kjtk3@atlanta.example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6?Replaces=12345601%40atlanta.example.com%3Bfrom-tag%3D314159%3Bto-tag%3D1234567>").expect("gruu");
        assert_eq!(
            r.uri,
            "sips:4889445d8kjtk3@atlanta.example.com;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
        );
        let rep = r.replaces.expect("replaces");
        assert_eq!(
            (
                rep.call_id.as_str(),
                rep.to_tag.as_str(),
                rep.from_tag.as_str()
            ),
            ("12345601@atlanta.example.com", "1234567", "314159")
        );
    }

    #[test]
    fn parse_refer_to_real_peers_and_forms() {
        // linphonec (shared/LAB.md): lower-case escapes, from-tag first.
        let r = parse_refer_to("<sip:alice@127.0.0.1?Replaces=CID%3bfrom-tag%3dFT%3bto-tag%3dTT>")
            .expect("linphonec");
        assert_eq!(r.uri, "sip:alice@127.0.0.1");
        let rep = r.replaces.expect("replaces");
        assert_eq!(
            (
                rep.call_id.as_str(),
                rep.to_tag.as_str(),
                rep.from_tag.as_str()
            ),
            ("CID", "TT", "FT")
        );
        // Display name (with '<' and '?' inside quotes) and header params.
        let r = parse_refer_to("\"Carol <desk>?\" <sip:carol@h;transport=tcp?Replaces=x%3Bto-tag%3D1%3Bfrom-tag%3D2&Priority=urgent>;foo=bar").expect("name-addr");
        assert_eq!(r.uri, "sip:carol@h;transport=tcp");
        assert_eq!(r.replaces.map(|r| r.call_id), Some("x".to_string()));
        assert_eq!(r.other_headers, vec![("Priority".into(), "urgent".into())]);
        // Bare addr-spec: ';' starts header params, no headers.
        let r = parse_refer_to("  sip:bob@host;tag=x ").expect("bare");
        assert_eq!(
            (r.uri.as_str(), r.replaces.is_none()),
            ("sip:bob@host", true)
        );
        // Same header twice in the URI; empty pieces ignored; bad escapes kept.
        let r = parse_refer_to("<sip:b@h?&A=1&&A=%zz%4>").expect("odd headers");
        assert_eq!(
            r.other_headers,
            vec![("A".into(), "1".into()), ("A".into(), "%zz%4".into())]
        );

        use ReferToError::*;
        for (v, e) in [
            ("", NoUri),
            ("   ", NoUri),
            ("<>", NoUri),
            ("< >", NoUri),
            ("\"Bob\"", NoUri),
            ("<sip:bob@host", Unclosed),
            ("bob", NoUri),
            ("<sip:bob @host>", NoUri),
            ("<sip:b@h?Replaces=cid>", Replaces(ReplacesError::MissingToTag)),
            ("<sip:b@h?Replaces=>", Replaces(ReplacesError::NoCallId)),
            (
                "<sip:b@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2&REPLACES=a%3Bto-tag%3D1%3Bfrom-tag%3D2>",
                DuplicateReplaces,
            ),
        ] {
            assert_eq!(parse_refer_to(v), Err(e), "{v:?}");
        }
    }

    #[test]
    fn refer_to_round_trips_random_dialogs() {
        let mut rng = Rng(0x5eed_0002);
        let targets = [
            "sip:carol@10.0.0.3",
            "sip:carol@10.0.0.3:5062;transport=tcp",
            "sips:u@[2001:db8::1]:5061;gr=urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
            "sip:+15551234@pbx.example.com;user=phone",
        ];
        for _ in 0..5000 {
            let call_id = if rng.below(2) == 0 {
                rng.string_from(WORD, 1, 24)
            } else {
                format!(
                    "{}@{}",
                    rng.string_from(WORD, 1, 16),
                    rng.string_from(WORD, 1, 16)
                )
            };
            let replaces = Replaces {
                call_id,
                to_tag: rng.string_from(TOKEN, 1, 20),
                from_tag: rng.string_from(TOKEN, 1, 20),
                early_only: rng.below(2) == 0,
            };
            let target = *rng.pick(&targets);
            let built = refer_to_with_replaces(target, &replaces);
            // Only hvalue characters between '?' and '>'.
            let (_, hv) = built.split_once("?Replaces=").expect("has Replaces");
            let hv = hv.strip_suffix('>').expect("closed");
            assert!(
                hv.bytes().all(|b| hvalue_unescaped(b) || b == b'%'),
                "{built}"
            );
            let parsed = parse_refer_to(&built).unwrap_or_else(|e| panic!("{built}: {e}"));
            assert_eq!(parsed.uri, target, "{built}");
            assert_eq!(parsed.replaces.as_ref(), Some(&replaces), "{built}");
            assert!(parsed.other_headers.is_empty());
            // And the header value itself round-trips.
            assert_eq!(
                Replaces::parse(&replaces.to_header_value()).as_ref(),
                Ok(&replaces)
            );
        }
    }

    #[test]
    fn escaping_round_trips_every_byte() {
        let all: String = (1u8..=127).map(char::from).collect::<String>() + "äö€😀";
        let escaped = escape_hvalue(&all);
        assert!(escaped.bytes().all(|b| hvalue_unescaped(b) || b == b'%'));
        assert_eq!(unescape(&escaped), all);
        assert_eq!(escape_hvalue("a@b;c=d"), "a%40b%3Bc%3Dd");
        assert_eq!(unescape("%3b%3D%40%2"), ";=@%2");
    }

    // ── Event / Subscription-State ──

    #[test]
    fn subscription_state_values() {
        use SubscriptionState::*;
        for (v, want) in [
            ("active;expires=60", Some(Active { expires: Some(60) })),
            (
                "Active ; Expires = 3600 ",
                Some(Active {
                    expires: Some(3600),
                }),
            ),
            ("active", Some(Active { expires: None })),
            ("active;expires=soon", Some(Active { expires: None })),
            ("active;expires=99999999999", Some(Active { expires: None })),
            ("pending;expires=60", Some(Pending)),
            ("PENDING", Some(Pending)),
            (
                "terminated;reason=noresource",
                Some(Terminated {
                    reason: Some("noresource".into()),
                }),
            ),
            // linphonec's malformed value (shared/LAB.md).
            (
                "terminated;reason=reason=noresource",
                Some(Terminated {
                    reason: Some("noresource".into()),
                }),
            ),
            (
                "Terminated; Reason=\"Timeout\";retry-after=30",
                Some(Terminated {
                    reason: Some("timeout".into()),
                }),
            ),
            ("terminated", Some(Terminated { reason: None })),
            ("terminated;reason=", Some(Terminated { reason: None })),
            ("", None),
            ("  ", None),
            ("waiting", None),
            (";expires=5", None),
        ] {
            assert_eq!(parse_subscription_state(v), want, "{v:?}");
        }
    }

    #[test]
    fn event_header_values() {
        for v in ["refer", "refer;id=123", " Refer ; id = 7 ", "REFER"] {
            assert!(event_is_refer(v), "{v:?}");
        }
        for v in [
            "",
            "presence",
            "refer.foo",
            "referx",
            "dialog;id=1",
            "x;refer",
        ] {
            assert!(!event_is_refer(v), "{v:?}");
        }
        assert_eq!(refer_event_id("refer;id=123"), Some(123));
        assert_eq!(refer_event_id("refer ; ID = 93809824"), Some(93_809_824));
        assert_eq!(refer_event_id("refer"), None);
        assert_eq!(refer_event_id("refer;id=abc"), None);
        assert_eq!(refer_event_id("refer;id"), None);
    }

    // ── robustness of the text parsers ──

    #[test]
    fn text_parsers_never_panic_on_garbage() {
        let mut rng = Rng(0x5eed_0003);
        let alphabet: &[u8] = b"<>\"\\;=?&%@: \t\r\nabcSIPsip0123456789-+#*()[]";
        let seeds = [
            "<sip:b@h?Replaces=a%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            "c;to-tag=a;from-tag=b;early-only",
            "terminated;reason=reason=noresource",
            "+1 (555) 123-4567",
            "refer;id=5",
        ];
        let (mut refer_tos, mut replaces) = (0, 0);
        for i in 0..50_000 {
            let s: String = if i % 3 == 0 {
                let len = rng.below(48);
                let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                String::from_utf8_lossy(&bytes).into_owned()
            } else if i % 3 == 1 {
                rng.string_from(alphabet, 0, 48)
            } else {
                let mut s: Vec<char> = rng.pick(&seeds).chars().collect();
                for _ in 0..1 + rng.below(3) {
                    let pos = rng.below(s.len() + 1);
                    let c = char::from(*rng.pick(alphabet));
                    if rng.below(2) == 0 || pos == s.len() {
                        s.insert(pos, c);
                    } else {
                        s.remove(pos);
                    }
                }
                s.into_iter().collect()
            };
            if let Ok(r) = parse_refer_to(&s) {
                refer_tos += 1;
                assert!(!r.uri.is_empty());
            }
            if let Ok(r) = Replaces::parse(&s) {
                replaces += 1;
                assert!(!r.to_tag.is_empty() && !r.from_tag.is_empty());
                // Whatever parsed must survive a trip through Refer-To.
                let back = parse_refer_to(&refer_to_with_replaces("sip:x@y", &r))
                    .unwrap_or_else(|e| panic!("{s:?}: {e}"));
                assert_eq!(back.replaces.as_ref(), Some(&r), "{s:?}");
            }
            let _ = parse_subscription_state(&s);
            let _ = event_is_refer(&s);
            let _ = refer_event_id(&s);
            let _ = sipfrag_body(200, &s);
        }
        assert!(refer_tos > 500 && replaces > 500, "{refer_tos} {replaces}");
    }
}
