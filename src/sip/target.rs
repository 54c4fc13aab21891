//! What the operator typed, made into something to call: one parser for `dial`, `transfer`,
//! `consult`, `pickup`, the picker's Enter and a paste.
//!
//! Owns the grammar of typed targets and nothing else: it holds no state, reads no clock, and
//! never panics (every malformed input is a [`TargetError`] in words). Two steps:
//! [`Typed::parse`] understands the text without an account (the screen uses it, since routing
//! still rewrites numbers before the core sees them), and [`Typed::complete`] puts a number or a
//! user in the account's domain. [`Target::parse`] does both.
//!
//! Accepted forms (surrounding whitespace, and a display name or angle brackets from a paste,
//! are removed first):
//!
//! - a **number**: digits, `*` and `#`, an optional leading `+`, with spaces, tabs, dashes, dots,
//!   slashes and brackets between them; the punctuation goes. In an international number
//!   (leading `+`) a `(0)` group is the national trunk prefix that is not dialled from abroad,
//!   and goes with it: `+44 (0)20 7946 0000` → `+442079460000`. Without a `+` the brackets are
//!   only punctuation: `(0)20 7946` → `0207946`. `#` is written `%23` in the URI.
//! - an **extension or user name** (`alice`, `john.doe`): URI user characters;
//! - `user@host[:port][;params]`: as `sip:` (a number before `@` loses its punctuation);
//! - a `sip:` or `sips:` **URI**, kept as typed (parameters and `?headers` such as
//!   `?Replaces=` stay; the scheme is written in lower case; `#` in the user becomes `%23`);
//! - a `tel:` **URI** (RFC 3966): its visual separators go and it becomes a SIP URI in the
//!   account's domain with `user=phone` (RFC 3261 §19.1.6), its parameters in the user part;
//! - any of these as a **name-addr**: `"Carol" <sip:carol@pbx>` (as pasted from a mail or a
//!   SIP trace; header parameters after `>`, such as `;tag=`, are dropped).
//!
//! ```text
//!  typed (domain pbx.example)          Target
//!  ──────────────────────────          ──────────────────────────────────────
//!  201                                 sip:201@pbx.example
//!  555 123-4567                        sip:5551234567@pbx.example
//!  +1 (555) 123.4567                   sip:+15551234567@pbx.example
//!  +44 (0)20 7946 0000                 sip:+442079460000@pbx.example
//!  *72#                                sip:*72%23@pbx.example
//!  alice                               sip:alice@pbx.example
//!  bob@gw.example:5070                 sip:bob@gw.example:5070
//!  bob@[2001:db8::7]:5070              sip:bob@[2001:db8::7]:5070
//!  555-1234@gw.example                 sip:5551234@gw.example
//!  SIPS:Bob@Host;transport=tls         sips:Bob@Host;transport=tls
//!  sip:b@h?Replaces=a%3Bto-tag%3D1     sip:b@h?Replaces=a%3Bto-tag%3D1
//!  tel:+1-555-123                      sip:+1555123@pbx.example;user=phone
//!  "Carol" <sip:carol@pbx>;tag=9       sip:carol@pbx
//!   <sip:carol@pbx>  (whitespace)      sip:carol@pbx
//!  alice smith, b<o>b, sip:, bob@      errors (TargetError, in words)
//! ```

use std::fmt;

use super::msg::SipUri;

/// Why what the operator typed cannot be called.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Nothing typed.
    #[error("nothing to call: type a number, an extension or a SIP address")]
    Empty,
    /// A number or user, but no account domain to complete it with.
    #[error("'{0}' needs the account's domain, and the account has none: type user@host")]
    NoDomain(String),
    /// A `<` without its `>` (or the other way round).
    #[error("'{0}' has an unclosed '<…>'")]
    Unclosed(String),
    /// A host that is not a name or an IPv4 address, with an optional port.
    #[error("'{0}' has no valid host after '@'")]
    Host(String),
    /// Anything else.
    #[error(
        "'{0}' is neither a number (digits, +, * and #), an extension nor a SIP address \
         (user@host, sip:…, tel:…)"
    )]
    Invalid(String),
}

/// What the operator typed, understood but not yet put in a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typed {
    /// A phone number or extension: digits, `*`, `#`, an optional leading `+`.
    Number(String),
    /// A `tel:` URI: its number without separators, and its parameters (`;ext=22`, or empty).
    Tel {
        /// The number: an optional `+`, digits, `*` and `#`.
        number: String,
        /// The parameters as typed, each with its `;`.
        params: String,
    },
    /// A user name (`alice`, `john.doe`).
    User(String),
    /// A complete SIP address.
    Uri(Target),
}

/// A SIP or SIPS URI to call or to refer to, as the core writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    secure: bool,
    user: Option<String>,
    host: String,
    params: String,
    headers: String,
}

impl Target {
    /// Parses what the operator typed; a number or user is completed in `account_domain`.
    pub fn parse(text: &str, account_domain: &str) -> Result<Target, TargetError> {
        Typed::parse(text)?.complete(account_domain)
    }

    /// The digits to key for this target after a PBX feature code: its user part when that is
    /// only digits, `*` and `#` (`sip:201@pbx` → `201`); `None` for names and `+` numbers.
    pub fn digits(&self) -> Option<String> {
        let user = self.user.as_deref()?;
        let user = user
            .split(';')
            .next()
            .unwrap_or_default()
            .replace("%23", "#");
        let keyable = !user.is_empty()
            && user
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '*' | '#'));
        keyable.then_some(user)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.secure { "sips:" } else { "sip:" })?;
        if let Some(user) = &self.user {
            write!(f, "{user}@")?;
        }
        write!(f, "{}{}", self.host, self.params)?;
        if !self.headers.is_empty() {
            write!(f, "?{}", self.headers)?;
        }
        Ok(())
    }
}

impl fmt::Display for Typed {
    /// The canonical text: parsing it gives the same [`Typed`] back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Typed::Number(n) | Typed::User(n) => f.write_str(n),
            Typed::Tel { number, params } => write!(f, "tel:{number}{params}"),
            Typed::Uri(t) => t.fmt(f),
        }
    }
}

impl Typed {
    /// Understands what the operator typed (see the module documentation for the forms).
    pub fn parse(text: &str) -> Result<Typed, TargetError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(TargetError::Empty);
        }
        let invalid = || TargetError::Invalid(t.to_string());
        let unclosed = || TargetError::Unclosed(t.to_string());
        let inner = match find_unquoted(t, '<') {
            Some(open) => {
                let close = open + t[open..].find('>').ok_or_else(unclosed)?;
                let after = t[close + 1..].trim_start();
                if !(after.is_empty() || after.starts_with(';'))
                    || find_unquoted(&t[..open], '>').is_some()
                {
                    return Err(invalid());
                }
                let inner = t[open + 1..close].trim();
                if inner.is_empty() {
                    return Err(TargetError::Empty);
                }
                inner
            }
            None if t.contains('>') => return Err(unclosed()),
            None => t,
        };
        if inner.contains(['<', '>', '"']) {
            return Err(invalid());
        }
        let typed = if let Some(rest) = strip_prefix_ci(inner, "sips:") {
            Typed::Uri(uri(rest, true).map_err(|e| e.within(t))?)
        } else if let Some(rest) = strip_prefix_ci(inner, "sip:") {
            Typed::Uri(uri(rest, false).map_err(|e| e.within(t))?)
        } else if let Some(rest) = strip_prefix_ci(inner, "tel:") {
            let (number, params) = rest.split_once(';').map_or((rest, ""), |(n, p)| (n, p));
            let number = phone_number(number).ok_or_else(invalid)?;
            let params = if params.is_empty() {
                String::new()
            } else {
                format!(";{params}")
            };
            if !params_ok(&params) || !params.chars().all(|c| user_char(c) || c == ';') {
                return Err(invalid());
            }
            Typed::Tel { number, params }
        } else if let Some((user, rest)) = inner.split_once('@') {
            if rest.contains('@') {
                return Err(invalid());
            }
            let user = user.trim();
            let user = phone_number(user)
                .map(|n| n.replace('#', "%23"))
                .or_else(|| is_user(user).then(|| user.to_string()))
                .ok_or_else(invalid)?;
            let mut target = uri(rest.trim(), false).map_err(|e| e.within(t))?;
            target.user = Some(user);
            Typed::Uri(target)
        } else if let Some(number) = phone_number(inner) {
            Typed::Number(number)
        } else if is_user(inner) {
            Typed::User(inner.to_string())
        } else {
            return Err(invalid());
        };
        if let Typed::Uri(target) = &typed {
            checked(target.clone(), t)?;
        }
        Ok(typed)
    }

    /// Puts a number, `tel:` number or user in `account_domain`; a SIP address is kept.
    pub fn complete(self, account_domain: &str) -> Result<Target, TargetError> {
        let (user, params) = match self {
            Typed::Uri(target) => return Ok(target),
            Typed::Number(n) => (n.replace('#', "%23"), String::new()),
            Typed::User(u) => (u, String::new()),
            Typed::Tel { number, params } => (
                format!("{}{params}", number.replace('#', "%23")),
                ";user=phone".to_string(),
            ),
        };
        let domain = account_domain.trim();
        if domain.is_empty() {
            return Err(TargetError::NoDomain(user.replace("%23", "#")));
        }
        if !hostport_ok(domain) {
            return Err(TargetError::Host(domain.to_string()));
        }
        let target = Target {
            secure: false,
            user: Some(user),
            host: domain.to_string(),
            params,
            headers: String::new(),
        };
        let shown = target.to_string();
        checked(target, &shown)
    }
}

/// `target` if the message layer can use it as a Request-URI, else an error naming `typed`.
fn checked(target: Target, typed: &str) -> Result<Target, TargetError> {
    match SipUri::parse(&target.to_string()) {
        Some(_) => Ok(target),
        None => Err(TargetError::Invalid(typed.to_string())),
    }
}

impl TargetError {
    /// The same error naming the whole text the operator typed.
    fn within(self, typed: &str) -> TargetError {
        match self {
            TargetError::Host(_) => TargetError::Host(typed.to_string()),
            _ => TargetError::Invalid(typed.to_string()),
        }
    }
}

/// The part of a `sip:`/`sips:` URI after the scheme.
fn uri(rest: &str, secure: bool) -> Result<Target, TargetError> {
    let invalid = || TargetError::Invalid(rest.to_string());
    if rest.is_empty() || rest.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(invalid());
    }
    let (base, headers) = rest.split_once('?').unwrap_or((rest, ""));
    let headers_ok = headers
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()%[]/?:+$=&;@,".contains(c));
    if !headers_ok || rest.ends_with('?') {
        return Err(invalid());
    }
    let (user, hostpart) = match base.split_once('@') {
        Some((user, hostpart)) => (Some(user), hostpart),
        None => (None, base),
    };
    let user = match user {
        Some(u) if !u.is_empty() && u.chars().all(|c| user_char(c) || ";:#".contains(c)) => {
            Some(u.replace('#', "%23"))
        }
        Some(_) => return Err(invalid()),
        None => None,
    };
    let (hostport, params) = match hostpart.find(';') {
        Some(i) => hostpart.split_at(i),
        None => (hostpart, ""),
    };
    if !hostport_ok(hostport) {
        return Err(TargetError::Host(rest.to_string()));
    }
    if !params_ok(params) {
        return Err(invalid());
    }
    Ok(Target {
        secure,
        user,
        host: hostport.to_string(),
        params: params.to_string(),
        headers: headers.to_string(),
    })
}

/// `host[:port]`: a name, an IPv4 address or an IPv6 reference (`[2001:db8::1]`, RFC 3261
/// §25.1); the port is 1–5 digits.
fn hostport_ok(hostport: &str) -> bool {
    if hostport.starts_with('[') {
        return super::msg::split_host_port(hostport).is_some_and(|(_, port)| port != Some(0));
    }
    let (host, port) = match hostport.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (hostport, None),
    };
    let host_ok = host.starts_with(|c: char| c.is_ascii_alphanumeric())
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    host_ok
        && port.is_none_or(|p| (1..=5).contains(&p.len()) && p.chars().all(|c| c.is_ascii_digit()))
}

/// `;name[=value]…` with URI parameter characters (or nothing).
fn params_ok(params: &str) -> bool {
    if params.is_empty() {
        return true;
    }
    let Some(rest) = params.strip_prefix(';') else {
        return false;
    };
    rest.split(';').all(|p| {
        let (name, value) = p.split_once('=').unwrap_or((p, ""));
        let pchar = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()%[]/:&+$".contains(c);
        !name.is_empty() && name.chars().all(pchar) && value.chars().all(pchar)
    })
}

/// A phone number without its punctuation (see the module documentation); `None` if the text
/// is not one.
fn phone_number(text: &str) -> Option<String> {
    let text = text.trim();
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => ("+", rest.replace("(0)", "")),
        None => ("", text.to_string()),
    };
    let dial = |c: char| c.is_ascii_digit() || matches!(c, '*' | '#');
    let punct = |c: char| c.is_whitespace() || matches!(c, '-' | '.' | '/' | '(' | ')' | '[' | ']');
    if !rest.chars().any(dial) || !rest.chars().all(|c| dial(c) || punct(c)) {
        return None;
    }
    Some(
        plus.chars()
            .chain(rest.chars().filter(|&c| dial(c)))
            .collect(),
    )
}

/// True for a user name in URI user characters, with at least one letter or digit.
fn is_user(user: &str) -> bool {
    user.chars().any(|c| c.is_ascii_alphanumeric()) && user.chars().all(user_char)
}

/// A character of a URI user part (RFC 3261 §25.1: unreserved, escaped, user-unreserved),
/// less `;` and `?`, which split parameters and headers here.
fn user_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,/%".contains(c)
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

/// `s` without the ASCII `prefix`, compared case-insensitively.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    const D: &str = "pbx.example";

    /// Every accepted form with the target it gives in [`D`].
    pub(crate) const FORMS: &[(&str, &str)] = &[
        ("201", "sip:201@pbx.example"),
        ("  alice \n", "sip:alice@pbx.example"),
        ("john.doe", "sip:john.doe@pbx.example"),
        ("555 123-4567", "sip:5551234567@pbx.example"),
        ("555.123.4567", "sip:5551234567@pbx.example"),
        ("+1 (555) 123-4567", "sip:+15551234567@pbx.example"),
        ("+44 (0)20 7946 0000", "sip:+442079460000@pbx.example"),
        ("(0)20 7946", "sip:0207946@pbx.example"),
        ("0049 30 1234-56", "sip:004930123456@pbx.example"),
        ("040/123 45 67", "sip:0401234567@pbx.example"),
        ("+358\u{a0}40\u{a0}123", "sip:+35840123@pbx.example"),
        ("*97", "sip:*97@pbx.example"),
        ("*72#", "sip:*72%23@pbx.example"),
        ("bob@other.example.org", "sip:bob@other.example.org"),
        ("bob @ other.example.org", "sip:bob@other.example.org"),
        (
            "555-1234@gw.example.org:5070",
            "sip:5551234@gw.example.org:5070",
        ),
        ("bob@10.0.0.1", "sip:bob@10.0.0.1"),
        ("bob@host;transport=tcp", "sip:bob@host;transport=tcp"),
        ("sip:bob@host;transport=tcp", "sip:bob@host;transport=tcp"),
        ("SIPS:Bob@Host", "sips:Bob@Host"),
        ("sip:host-only", "sip:host-only"),
        ("sip:*72#@pbx", "sip:*72%23@pbx"),
        (
            "sip:carol@pbx?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2",
            "sip:carol@pbx?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2",
        ),
        ("tel:+1-555-123", "sip:+1555123@pbx.example;user=phone"),
        (
            "TEL:+44.20.7946.0000",
            "sip:+442079460000@pbx.example;user=phone",
        ),
        (
            "tel:7042;phone-context=example.com",
            "sip:7042;phone-context=example.com@pbx.example;user=phone",
        ),
        ("<sip:carol@h>", "sip:carol@h"),
        (" < 201 > ", "sip:201@pbx.example"),
        ("\"Carol\" <sip:carol@pbx>", "sip:carol@pbx"),
        ("\"Smith, Carol <sales>\" <carol@pbx>", "sip:carol@pbx"),
        ("Carol Smith <carol@pbx>;tag=9f", "sip:carol@pbx"),
        (
            "Bob <tel:+1 555 0100>",
            "sip:+15550100@pbx.example;user=phone",
        ),
    ];

    #[test]
    fn ipv6_references_are_called() {
        for (typed, uri) in [
            ("sip:201@[::1]:5070", "sip:201@[::1]:5070"),
            ("bob@[2001:db8::7]", "sip:bob@[2001:db8::7]"),
            (
                "sips:bob@[::1];transport=tls",
                "sips:bob@[::1];transport=tls",
            ),
        ] {
            let target = Target::parse(typed, D).unwrap_or_else(|e| panic!("{typed}: {e}"));
            assert_eq!(target.to_string(), uri);
        }
        let target = Target::parse("201", "[::1]").expect("an IPv6 account domain");
        assert_eq!(target.to_string(), "sip:201@[::1]");
    }

    #[test]
    fn every_form_gives_its_target() {
        for (typed, want) in FORMS {
            let got = Target::parse(typed, D).map(|t| t.to_string());
            assert_eq!(got.as_deref(), Ok(*want), "{typed:?}");
            // The screen's canonical text gives the same target.
            let canonical = Typed::parse(typed).expect("parses").to_string();
            assert_eq!(
                Target::parse(&canonical, D)
                    .map(|t| t.to_string())
                    .as_deref(),
                Ok(*want),
                "{typed:?} → {canonical:?}"
            );
        }
    }

    #[test]
    fn what_cannot_be_called_says_why() {
        for typed in ["", "   ", "<>", " < > "] {
            assert_eq!(
                Target::parse(typed, D),
                Err(TargetError::Empty),
                "{typed:?}"
            );
        }
        assert_eq!(
            Target::parse("1001", "  "),
            Err(TargetError::NoDomain("1001".into()))
        );
        assert_eq!(
            Target::parse("bob@h.example", "").map(|t| t.to_string()),
            Ok("sip:bob@h.example".into()),
            "a full address needs no domain"
        );
        assert_eq!(
            Target::parse("<sip:carol@pbx", D),
            Err(TargetError::Unclosed("<sip:carol@pbx".into()))
        );
        assert_eq!(
            Target::parse("bob@host>x", D),
            Err(TargetError::Unclosed("bob@host>x".into()))
        );
        for typed in [
            "bob@",
            "bob@ho st",
            "sip:bob@-x",
            "bob@h:123456",
            "bob@h:",
            "bob@[::1",
            "bob@[::1]x",
            "bob@[zz::1]:5060",
            "sip:bob@[::1]:0",
            "sip:bob@[::1]:99999",
            "sip:bob@[127.0.0.1]",
        ] {
            assert!(
                matches!(
                    Target::parse(typed, D),
                    Err(TargetError::Host(_) | TargetError::Invalid(_))
                ),
                "{typed:?} → {:?}",
                Target::parse(typed, D)
            );
        }
        for typed in [
            "alice smith",
            "sip:",
            "tel:",
            "tel:abc",
            "sip:bob @host",
            "@host",
            "a@b@c",
            "b<o>b",
            "()",
            "+",
            "12\"3",
            "a;b",
            "http://example.com",
        ] {
            assert!(
                matches!(Target::parse(typed, D), Err(TargetError::Invalid(_))),
                "{typed:?} → {:?}",
                Target::parse(typed, D)
            );
        }
        let words = Target::parse("alice smith", D).unwrap_err().to_string();
        assert!(
            words.contains("'alice smith'") && words.contains("number"),
            "{words}"
        );
    }

    #[test]
    fn digits_for_feature_codes() {
        for (typed, want) in [
            (" 20-1 ", Some("201")),
            ("sip:201@pbx", Some("201")),
            ("201@pbx", Some("201")),
            ("*8#", Some("*8#")),
            ("+358 40", None),
            ("sip:bob@pbx", None),
            ("sip:pbx", None),
            ("tel:201;ext=1", Some("201")),
        ] {
            let t = Target::parse(typed, D).expect("parses");
            assert_eq!(t.digits().as_deref(), want, "{typed:?}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_its_display_parses_back(
            s in "\\PC{0,40}",
            // Strings close to the grammar find the accepting paths more often.
            g in "[ \"<>]{0,2}(sips?:|tel:|TEL:)?[+(]?[0-9a-z*# ().-]{0,12}(@[a-z0-9.\\[\\]:-]{0,12})?(;[a-z]{1,4}(=[a-z0-9]{1,3})?)?(\\?[A-Za-z]{1,3}=[a-z0-9%]{0,6})?[>]?"
        ) {
            for text in [s.as_str(), g.as_str()] {
                if let Ok(t) = Target::parse(text, D) {
                    let shown = t.to_string();
                    prop_assert_eq!(Target::parse(&shown, D), Ok(t.clone()), "{:?} → {}", text, shown);
                    prop_assert!(SipUri::parse(&shown).is_some(), "{}", shown);
                    prop_assert!(!shown.contains(char::is_whitespace), "{}", shown);
                }
                if let Ok(typed) = Typed::parse(text) {
                    let shown = typed.to_string();
                    prop_assert_eq!(Typed::parse(&shown), Ok(typed), "{:?} → {}", text, shown);
                }
            }
        }
    }
}
