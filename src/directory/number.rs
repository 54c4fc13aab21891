//! Phone numbers and SIP URIs as text: their digits, the key two spellings of one number share,
//! and cleaning pasted text into something dialable.
//!
//! This module only looks at strings; it knows nothing about entries, files or matching.

/// Characters people put inside phone numbers to make them readable.
fn is_visual_separator(c: char) -> bool {
    matches!(c, ' ' | '-' | '.' | '(' | ')' | '/' | '\u{a0}' | '\t')
}

/// Whether `text` is written like a phone number: digits, `+`, `*`, `#` and visual separators
/// only, with at least one digit.
pub fn is_phone_like(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_digit())
        && text
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#') || is_visual_separator(c))
}

/// Whether `number` is a SIP (or other) URI rather than a phone number.
pub fn is_uri(number: &str) -> bool {
    number.contains('@') || number.contains(':') || number.chars().any(char::is_alphabetic)
}

/// The dialable characters of a phone number (digits, `*`, `#`), each with its character index
/// in `number`.
pub fn dial_chars(number: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    number
        .chars()
        .enumerate()
        .filter(|(_, c)| c.is_ascii_digit() || matches!(c, '*' | '#'))
}

/// The digits of `number` (with `*` and `#`), without `+` or separators.
pub fn digits(number: &str) -> String {
    dial_chars(number).map(|(_, c)| c).collect()
}

/// The key under which a number is looked up: the digits of a phone number (also of the user
/// part of `sip:+15551234@host`), or `user@host` in lower case for a SIP URI whose user is a
/// name. `None` for text that is neither.
pub fn key(number: &str) -> Option<String> {
    let trimmed = number.trim();
    let lower = trimmed.to_lowercase();
    let rest = ["tel:", "sip:", "sips:"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme))
        .unwrap_or(&lower);
    let rest = rest.split([';', '?']).next().unwrap_or(rest);
    let (user, host) = match rest.split_once('@') {
        Some((user, host)) => (user, Some(host)),
        None => (rest, None),
    };
    if is_phone_like(user) {
        return Some(digits(user));
    }
    match host {
        Some(host) if !user.is_empty() && !host.is_empty() => Some(format!("{user}@{host}")),
        _ => None,
    }
}

/// Whether `number` is internal by length: a plain number (no `+`, not a URI) of at most
/// `max_digits` digits. `max_digits` 0 turns the rule off.
pub fn is_short(number: &str, max_digits: u8) -> bool {
    max_digits > 0
        && is_phone_like(number)
        && !number.contains('+')
        && digits(number).len() <= usize::from(max_digits)
}

/// Cleans pasted text into something dialable: a phone number loses spaces, dashes, dots and
/// brackets (a leading `+` stays), a `tel:` prefix is dropped, and a SIP URI is kept as written
/// (trimmed). Anything else is returned trimmed.
pub fn clean_pasted(text: &str) -> String {
    let trimmed = text.trim();
    let lower = trimmed.to_ascii_lowercase();
    let body = if lower.starts_with("tel:") {
        let rest = &trimmed[4..];
        rest.split(';').next().unwrap_or(rest).trim()
    } else {
        trimmed
    };
    if !is_phone_like(body) {
        return body.to_owned();
    }
    let plus = body
        .trim_start_matches(is_visual_separator)
        .starts_with('+');
    let mut out = String::with_capacity(body.len());
    if plus {
        out.push('+');
    }
    out.extend(
        body.chars()
            .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#')),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_numbers_and_uris() {
        assert_eq!(key("+1 (555) 123-4567").as_deref(), Some("15551234567"));
        assert_eq!(
            key("sip:+15551234567@pbx.example.com;user=phone").as_deref(),
            Some("15551234567")
        );
        assert_eq!(key("tel:+1-555-123-4567").as_deref(), Some("15551234567"));
        assert_eq!(
            key("sip:Alice@Example.com").as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(key("reception"), None);
    }

    #[test]
    fn pasted_text_is_cleaned() {
        assert_eq!(clean_pasted("  +1 (555) 123-4567 \n"), "+15551234567");
        assert_eq!(clean_pasted("555.123.4567"), "5551234567");
        assert_eq!(clean_pasted("tel:+44-20-7946-0958"), "+442079460958");
        assert_eq!(clean_pasted("tel:+44-20-7946-0958;ext=12"), "+442079460958");
        assert_eq!(
            clean_pasted(" sip:bob@pbx.example.com "),
            "sip:bob@pbx.example.com"
        );
        assert_eq!(clean_pasted("*21#"), "*21#");
        assert_eq!(clean_pasted("call me"), "call me");
    }

    #[test]
    fn short_numbers_are_internal() {
        assert!(is_short("201", 5));
        assert!(is_short("12 345", 5));
        assert!(!is_short("123456", 5));
        assert!(!is_short("+1234", 5));
        assert!(!is_short("201", 0));
        assert!(!is_short("sip:201@pbx", 5));
    }
}
