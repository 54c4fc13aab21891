//! A contact as the source files describe it (one person, several numbers), and how it becomes
//! one [`Entry`] per number.
//!
//! This module only shapes data; it reads no files.

use super::{Entry, Source};

/// One number of a contact, with its kind as written (`mobile`, `work`, …; may be empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// The number as written in the source.
    pub number: String,
    /// What kind of number it is, for display; empty when unknown.
    pub kind: String,
}

/// A person or place with any number of phone numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Contact {
    /// Display name as written.
    pub name: String,
    /// Numbers, in source order.
    pub numbers: Vec<Phone>,
    /// E-mail address, may be empty.
    pub email: String,
    /// Company or organisation, may be empty.
    pub company: String,
    /// Department, may be empty.
    pub department: String,
}

impl Contact {
    /// One entry per non-empty number. A contact without a name is shown by its e-mail address,
    /// company or number, in that order of preference.
    pub fn into_entries(self, source: Source, out: &mut Vec<Entry>) {
        for phone in &self.numbers {
            let number = phone.number.trim();
            if number.is_empty() {
                continue;
            }
            let name = [&self.name, &self.email, &self.company]
                .into_iter()
                .map(|s| s.trim())
                .find(|s| !s.is_empty())
                .unwrap_or(number);
            let detail: Vec<&str> = [&phone.kind, &self.email, &self.company, &self.department]
                .into_iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
                .collect();
            out.push(Entry {
                name: name.to_owned(),
                number: number.to_owned(),
                detail: detail.join(" · "),
                source,
                internal: false,
            });
        }
    }
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}
