//! Contacts from a CSV file with a header row (corporate directories, extension lists).
//!
//! Header names are matched case-insensitively and without punctuation: `Name`/`Full name`/
//! `Display name`, `First name`/`Given name` with `Last name`/`Surname`, any column about a
//! phone (`Phone`, `Mobile`, `Office`, `Work phone`, `Extension`, `Number`, …; each becomes one
//! number whose kind is the header less words like "phone"), `E-mail`, `Company`/
//! `Organisation`, `Department`. The bytes are decoded first (UTF-8 or UTF-16 by their byte
//! order mark, else UTF-8 if valid, else Windows-1252: see `text`), quoted fields follow RFC
//! 4180, and the separator (`,`, `;` or tab) is guessed from the header row.
//!
//! This module turns bytes into contacts; it must not decide what is internal or how entries
//! rank.

use std::path::Path;

use super::contact::{Contact, Phone};
use super::text;

/// What a column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Column {
    FullName,
    FirstName,
    LastName,
    /// A phone number with its kind (may be empty).
    Number(String),
    Email,
    Company,
    Department,
    Ignored,
}

/// The column a header names.
fn column(header: &str) -> Column {
    let squashed: String = header
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect();
    match squashed.as_str() {
        "name" | "fullname" | "displayname" | "contact" | "contactname" => Column::FullName,
        "firstname" | "givenname" | "forename" | "first" => Column::FirstName,
        "lastname" | "surname" | "familyname" | "last" => Column::LastName,
        "email" | "mail" | "emailaddress" | "email1" => Column::Email,
        "company" | "organisation" | "organization" | "org" | "employer" => Column::Company,
        "department" | "dept" | "division" => Column::Department,
        s if [
            "phone",
            "mobile",
            "tel",
            "cell",
            "number",
            "office",
            "extension",
            "ext",
            "direct",
        ]
        .iter()
        .any(|word| s.contains(word))
            && !s.contains("fax") =>
        {
            Column::Number(number_kind(header))
        }
        _ => Column::Ignored,
    }
}

/// The kind shown for a phone column: its header in lower case, less generic words.
fn number_kind(header: &str) -> String {
    let lower = header.to_lowercase();
    lower
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty() && !["phone", "number", "telephone", "tel", "no"].contains(w))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The separator used by the header row: the most frequent of `,`, `;` and tab outside quotes.
fn guess_separator(bytes: &[u8]) -> u8 {
    let line = bytes.split(|&b| b == b'\n').next().unwrap_or(bytes);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    [b',', b';', b'\t'][best]
}

/// Reads contacts from CSV `bytes` in any encoding [`text::decode`] knows; problems are
/// warnings naming `path` and the line.
pub fn parse(bytes: &[u8], path: &Path) -> (Vec<Contact>, Vec<String>) {
    let decoded = text::decode(bytes);
    let mut warnings = Vec::new();
    if decoded.replaced {
        warnings.push(format!(
            "{}: not valid {} text; unreadable characters were replaced",
            path.display(),
            decoded.encoding
        ));
    }
    let bytes = decoded.text.as_bytes();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(guess_separator(bytes))
        .flexible(true)
        .has_headers(true)
        .from_reader(bytes);
    let columns: Vec<Column> = match reader.headers() {
        Ok(headers) => headers.iter().map(column).collect(),
        Err(e) => {
            warnings.push(format!(
                "{}:1: cannot read the header row: {e}",
                path.display()
            ));
            return (Vec::new(), warnings);
        }
    };
    let has_name = columns
        .iter()
        .any(|c| matches!(c, Column::FullName | Column::FirstName | Column::LastName));
    let has_number = columns.iter().any(|c| matches!(c, Column::Number(_)));
    if !has_number || !has_name {
        let missing = if has_number { "name" } else { "phone number" };
        warnings.push(format!(
            "{}:1: no {missing} column, nothing loaded; the header row should name columns \
             like Name (or First name, Last name), Phone, Mobile, E-mail, Company, Department",
            path.display()
        ));
        return (Vec::new(), warnings);
    }

    let mut contacts = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                warnings.push(format!("{}:{line}: row skipped: {e}", path.display()));
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        }
        let fields: Vec<&str> = record.iter().map(str::trim).collect();
        let mut contact = Contact::default();
        let (mut first, mut last) = ("", "");
        for (column, value) in columns.iter().zip(&fields) {
            match column {
                Column::FullName => contact.name = (*value).to_owned(),
                Column::FirstName => first = value,
                Column::LastName => last = value,
                Column::Number(kind) if !value.is_empty() => contact.numbers.push(Phone {
                    number: (*value).to_owned(),
                    kind: kind.clone(),
                }),
                Column::Email => contact.email = (*value).to_owned(),
                Column::Company => contact.company = (*value).to_owned(),
                Column::Department => contact.department = (*value).to_owned(),
                Column::Number(_) | Column::Ignored => {}
            }
        }
        if contact.name.is_empty() {
            contact.name = [first, last]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
        }
        if !contact.numbers.is_empty() {
            contacts.push(contact);
        }
    }
    (contacts, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_recognised() {
        assert_eq!(column("E-mail"), Column::Email);
        assert_eq!(column("Surname"), Column::LastName);
        assert_eq!(column("Mobile Phone"), Column::Number("mobile".into()));
        assert_eq!(column("Phone"), Column::Number(String::new()));
        assert_eq!(column("Organisation"), Column::Company);
        assert_eq!(column("Fax number"), Column::Ignored);
    }

    #[test]
    fn separator_is_guessed() {
        assert_eq!(guess_separator(b"Name;Phone;\"a,b\"\n"), b';');
        assert_eq!(guess_separator(b"Name,Phone\n"), b',');
        assert_eq!(guess_separator(b"Name\tPhone\n"), b'\t');
    }
}
