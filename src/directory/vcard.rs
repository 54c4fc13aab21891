//! Contacts from vCard files (RFC 2426 vCard 3.0 and RFC 6350 vCard 4.0): `FN`, `N`, `TEL`
//! (with `TYPE`, also `tel:` URIs), `EMAIL` and `ORG` (company; department from its second
//! component). Folded lines are unfolded, CRLF and LF are both fine, and `\,` `\;` `\\` `\n`
//! escapes are undone.
//!
//! This module turns text into contacts; it must not decide what is internal or how entries
//! rank. A line it cannot read is a warning naming the file and line; the rest still loads.

use std::path::Path;

use super::contact::{Contact, Phone};

/// One unfolded content line: `group.NAME;PARAM=…:value`, with the line it started on.
struct ContentLine<'a> {
    line: usize,
    name: String,
    params: Vec<&'a str>,
    value: &'a str,
}

/// Unfolds physical lines into logical ones, each with its 1-based starting line number.
fn unfold(text: &str) -> Vec<(usize, String)> {
    let mut logical: Vec<(usize, String)> = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        match (raw.strip_prefix([' ', '\t']), logical.last_mut()) {
            (Some(rest), Some((_, last))) => last.push_str(rest),
            _ => logical.push((i + 1, raw.to_owned())),
        }
    }
    logical
}

/// Splits `text` at `separator` where it is neither escaped with `\` nor inside double quotes.
fn split_unescaped(text: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// Undoes vCard text escapes; a newline becomes a space (entries are one line).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out.trim().to_owned()
}

/// Parses one logical line; `None` when it has no `:`.
fn content_line(line: usize, text: &str) -> Option<ContentLine<'_>> {
    let mut quoted = false;
    let colon = text.char_indices().find_map(|(i, c)| match c {
        '"' => {
            quoted = !quoted;
            None
        }
        ':' if !quoted => Some(i),
        _ => None,
    })?;
    let (head, value) = (&text[..colon], &text[colon + 1..]);
    let mut parts = split_unescaped(head, ';').into_iter();
    let name = parts.next().unwrap_or_default();
    let name = name
        .rsplit('.')
        .next()
        .unwrap_or(name)
        .trim()
        .to_ascii_uppercase();
    Some(ContentLine {
        line,
        name,
        params: parts.collect(),
        value,
    })
}

/// The `TYPE` values of a property, lower case, also vCard 2.1 bare types (`;CELL`).
fn types(params: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for param in params {
        let values = match param.split_once('=') {
            Some((key, values)) if key.trim().eq_ignore_ascii_case("type") => values,
            Some(_) => continue,
            None => param,
        };
        for value in values.trim_matches('"').split(',') {
            let value = value.trim().trim_matches('"').to_lowercase();
            if !value.is_empty() {
                out.push(value);
            }
        }
    }
    out
}

/// The kind shown for a number with these types; `None` for a fax or pager number.
fn number_kind(types: &[String]) -> Option<String> {
    let dialable = types.iter().any(|t| t == "voice" || t == "cell");
    if !dialable && types.iter().any(|t| t == "fax" || t == "pager") {
        return None;
    }
    let kinds: Vec<&str> = types
        .iter()
        .filter(|t| !matches!(t.as_str(), "voice" | "pref" | "internet" | "text" | "msg"))
        .map(|t| if t == "cell" { "mobile" } else { t.as_str() })
        .collect();
    Some(kinds.join(" "))
}

/// A card being read, with the parts of `N` kept until the card ends.
#[derive(Default)]
struct Card {
    contact: Contact,
    structured_name: String,
}

impl Card {
    fn finish(mut self, out: &mut Vec<Contact>) {
        if self.contact.name.is_empty() {
            self.contact.name = self.structured_name;
        }
        if !self.contact.numbers.is_empty() {
            out.push(self.contact);
        }
    }

    fn apply(&mut self, property: &ContentLine<'_>) {
        let contact = &mut self.contact;
        match property.name.as_str() {
            "FN" => contact.name = unescape(property.value),
            "N" => {
                let parts: Vec<String> = split_unescaped(property.value, ';')
                    .into_iter()
                    .map(unescape)
                    .collect();
                let part = |i: usize| parts.get(i).map_or("", String::as_str);
                // family; given; additional; prefix; suffix
                self.structured_name = [part(3), part(1), part(2), part(0), part(4)]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ");
            }
            "TEL" => {
                let value = unescape(property.value);
                let number = value
                    .strip_prefix("tel:")
                    .or_else(|| value.strip_prefix("TEL:"))
                    .unwrap_or(&value);
                let number = number.split(';').next().unwrap_or(number).trim();
                if let Some(kind) = number_kind(&types(&property.params)) {
                    if !number.is_empty() {
                        contact.numbers.push(Phone {
                            number: number.to_owned(),
                            kind,
                        });
                    }
                }
            }
            "EMAIL" if contact.email.is_empty() => contact.email = unescape(property.value),
            "ORG" => {
                let parts = split_unescaped(property.value, ';');
                contact.company = parts.first().map(|s| unescape(s)).unwrap_or_default();
                contact.department = parts.get(1).map(|s| unescape(s)).unwrap_or_default();
            }
            _ => {}
        }
    }
}

/// Reads every card in `text`; problems are warnings naming `path` and the line.
pub fn parse(text: &str, path: &Path) -> (Vec<Contact>, Vec<String>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut contacts = Vec::new();
    let mut warnings = Vec::new();
    let mut card: Option<Card> = None;
    let mut warn = |line: usize, message: &str| {
        warnings.push(format!("{}:{line}: {message}", path.display()));
    };
    for (line, logical) in unfold(text) {
        if logical.trim().is_empty() {
            continue;
        }
        let Some(property) = content_line(line, &logical) else {
            warn(
                line,
                "line skipped: a vCard line is NAME:value and this one has no `:`",
            );
            continue;
        };
        let value = property.value.trim();
        match property.name.as_str() {
            "BEGIN" if value.eq_ignore_ascii_case("vcard") => {
                if let Some(open) = card.replace(Card::default()) {
                    warn(
                        property.line,
                        "BEGIN:VCARD inside a card: the card before it ends here",
                    );
                    open.finish(&mut contacts);
                }
            }
            "END" if value.eq_ignore_ascii_case("vcard") => match card.take() {
                Some(done) => done.finish(&mut contacts),
                None => warn(property.line, "END:VCARD without BEGIN:VCARD"),
            },
            _ => match card.as_mut() {
                Some(open) => open.apply(&property),
                None => warn(
                    property.line,
                    "line skipped: it is outside BEGIN:VCARD … END:VCARD",
                ),
            },
        }
    }
    if let Some(open) = card {
        warn(
            text.lines().count(),
            "the last card has no END:VCARD; it was read anyway",
        );
        open.finish(&mut contacts);
    }
    (contacts, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folded_escaped_and_typed() {
        let text =
            "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Smith\\, John\r\nORG:Acme\\, Inc.;Sal\r\n es\r\n\
                    TEL;TYPE=CELL,VOICE:+1 555 0100\r\nTEL;TYPE=FAX:+1 555 0199\r\n\
                    item1.TEL;type=WORK:+1 555 0101\r\nEND:VCARD\r\n";
        let (contacts, warnings) = parse(text, Path::new("a.vcf"));
        assert!(warnings.is_empty(), "{warnings:?}");
        let c = &contacts[0];
        assert_eq!(c.name, "Smith, John");
        assert_eq!(c.company, "Acme, Inc.");
        assert_eq!(c.department, "Sales");
        assert_eq!(c.numbers.len(), 2, "the fax number is left out");
        assert_eq!(c.numbers[0].kind, "mobile");
        assert_eq!(c.numbers[1].kind, "work");
    }

    #[test]
    fn version_4_uri_numbers_and_structured_name() {
        let text = "BEGIN:VCARD\nVERSION:4.0\nN:García;José;;Dr.;\nTEL;VALUE=uri;TYPE=\"voice,home\":tel:+34-600-123-456\nEND:VCARD\n";
        let (contacts, warnings) = parse(text, Path::new("a.vcf"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(contacts[0].name, "Dr. José García");
        assert_eq!(contacts[0].numbers[0].number, "+34-600-123-456");
        assert_eq!(contacts[0].numbers[0].kind, "home");
    }
}
