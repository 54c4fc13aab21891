//! Recording file names from the configured template.
//!
//! `{date}` (`2025-06-30`), `{time}` (`142503`), `{line}` (`1`), `{direction}` (`in` or `out`)
//! and `{number}` (the far end's user part, made safe for a file name) are replaced; the
//! format's extension is appended. Date and time are the operator's local time, with the
//! offset the caller gives. Pure: the caller passes the wall-clock time it read.

use chrono::{DateTime, FixedOffset};

/// The longest `{number}` kept (characters).
const MAX_NUMBER: usize = 64;

/// What a recording is named after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFacts<'a> {
    /// The line (1-based).
    pub line: u8,
    /// The far end called us.
    pub incoming: bool,
    /// The far end's URI (or number).
    pub peer: &'a str,
}

/// The file name (without directory) for a recording that starts at `when` (local time).
pub fn file_name(
    template: &str,
    when: DateTime<FixedOffset>,
    facts: &CallFacts,
    extension: &str,
) -> String {
    let stem = template
        .replace("{date}", &when.format("%Y-%m-%d").to_string())
        .replace("{time}", &when.format("%H%M%S").to_string())
        .replace("{line}", &facts.line.to_string())
        .replace("{direction}", if facts.incoming { "in" } else { "out" })
        .replace("{number}", &number(facts.peer));
    format!("{stem}.{extension}")
}

/// The user part of a SIP URI (or the text as given), reduced to characters safe in a file
/// name on every common system: letters, digits, `+ - _ .` (others become `_`); `unknown` when
/// nothing is left.
pub fn number(peer: &str) -> String {
    let peer = peer.trim().trim_start_matches('<');
    let rest = ["sips:", "sip:", "tel:"]
        .iter()
        .find_map(|scheme| {
            peer.get(..scheme.len())
                .filter(|p| p.eq_ignore_ascii_case(scheme))
                .map(|_| &peer[scheme.len()..])
        })
        .unwrap_or(peer);
    let user = rest.split(['@', ';', '>', '?']).next().unwrap_or_default();
    let safe: String = user
        .chars()
        .take(MAX_NUMBER)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.').to_owned();
    if safe.is_empty() {
        "unknown".to_owned()
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_fills_every_placeholder_in_local_time() {
        // 2025-06-30 14:25:03 UTC, in Helsinki (UTC+3 in summer).
        let when = DateTime::from_timestamp(1_751_293_503, 0)
            .expect("a valid time")
            .with_timezone(&FixedOffset::east_opt(3 * 3600).expect("an offset"));
        let facts = CallFacts {
            line: 2,
            incoming: true,
            peer: "sip:+33 1/23@example.com;user=phone",
        };
        assert_eq!(
            file_name(
                "{date}_{time}_L{line}_{direction}_{number}",
                when,
                &facts,
                "wav"
            ),
            "2025-06-30_172503_L2_in_+33_1_23.wav"
        );
        let late = DateTime::from_timestamp(1_751_327_999, 0)
            .expect("a valid time")
            .with_timezone(&FixedOffset::east_opt(3 * 3600).expect("an offset"));
        assert_eq!(
            file_name("{date}_{time}", late, &facts, "opus"),
            "2025-07-01_025959.opus",
            "the local date, not UTC's"
        );
    }

    #[test]
    fn numbers_are_safe_file_name_parts() {
        assert_eq!(number("<sip:1001@pbx>"), "1001");
        assert_eq!(number("tel:+44-20"), "+44-20");
        assert_eq!(number("sip:../../etc/passwd@x"), "_.._etc_passwd");
        assert_eq!(number("sip:@host"), "unknown");
        assert_eq!(number(&"9".repeat(500)).len(), MAX_NUMBER);
    }
}
