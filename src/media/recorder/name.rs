//! Recording file names from the configured template.
//!
//! `{date}` (`2025-06-30`), `{time}` (`142503`), `{line}` (`1`), `{direction}` (`in` or `out`)
//! and `{number}` (the far end's user part, made safe for a file name) are replaced; the
//! format's extension is appended. Date and time are UTC (no time zone database is
//! carried). Pure: the caller passes the wall-clock time it read.

use std::time::{SystemTime, UNIX_EPOCH};

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

/// The file name (without directory) for a recording that starts at `when`.
pub fn file_name(template: &str, when: SystemTime, facts: &CallFacts, extension: &str) -> String {
    let secs = when.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    let stem = template
        .replace("{date}", &format!("{year:04}-{month:02}-{day:02}"))
        .replace(
            "{time}",
            &format!(
                "{:02}{:02}{:02}",
                of_day / 3600,
                (of_day / 60) % 60,
                of_day % 60
            ),
        )
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

/// Year, month, day of the proleptic Gregorian calendar for a count of days since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn template_fills_every_placeholder_in_utc() {
        // 2025-06-30 14:25:03 UTC
        let when = UNIX_EPOCH + Duration::from_secs(1_751_293_503);
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
            "2025-06-30_142503_L2_in_+33_1_23.wav"
        );
    }

    #[test]
    fn calendar_handles_leap_days_and_the_epoch() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2024-02-29 is day 19782.
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
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
