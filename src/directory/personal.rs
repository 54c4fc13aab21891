//! The personal address book: a TOML file of `[[contact]]` tables that the user edits and the
//! phone appends to ("add the current caller").
//!
//! ```toml
//! [[contact]]
//! name = "José García"
//! numbers = ["+34 600 123 456", { number = "201", kind = "desk" }]
//! email = "jose@example.com"
//! company = "Example"
//! department = "Sales"
//! ```
//!
//! This module owns reading and appending that file. Appending keeps the user's text (comments
//! and all) and replaces the file atomically: a temporary file in the same folder, then a
//! rename. It must not read any other file.

use std::fs;
use std::io::{self, Write};
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::contact::{line_of, Contact, Phone};
use super::DirectoryError;

/// The file as a whole; each contact is checked on its own so one bad contact does not hide
/// the others.
#[derive(Deserialize)]
struct Book {
    #[serde(default)]
    contact: Vec<Spanned<toml::Value>>,
}

/// One `[[contact]]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactToml {
    name: String,
    #[serde(default)]
    numbers: Vec<NumberToml>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    company: String,
    #[serde(default)]
    department: String,
}

/// A number, either plain (`"+1 555 0100"`) or with its kind (`{ number = "…", kind = "…" }`).
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberToml {
    Plain(String),
    WithKind {
        number: String,
        #[serde(default)]
        kind: String,
    },
}

/// Parses the book's text; problems are warnings naming `path` and the line.
pub fn parse(text: &str, path: &Path) -> (Vec<Contact>, Vec<String>) {
    let book: Book = match toml::from_str(text) {
        Ok(book) => book,
        Err(e) => {
            let line = e.span().map_or(1, |span| line_of(text, span.start));
            let warning = format!(
                "{}:{line}: not a valid address book, nothing loaded from it: {}",
                path.display(),
                e.message().trim()
            );
            return (Vec::new(), vec![warning]);
        }
    };
    let mut contacts = Vec::new();
    let mut warnings = Vec::new();
    for spanned in book.contact {
        let line = line_of(text, spanned.span().start);
        match ContactToml::deserialize(spanned.into_inner()) {
            Ok(c) => contacts.push(Contact {
                name: c.name,
                numbers: c
                    .numbers
                    .into_iter()
                    .map(|n| match n {
                        NumberToml::Plain(number) => Phone {
                            number,
                            kind: String::new(),
                        },
                        NumberToml::WithKind { number, kind } => Phone { number, kind },
                    })
                    .collect(),
                email: c.email,
                company: c.company,
                department: c.department,
            }),
            Err(e) => warnings.push(format!(
                "{}:{line}: contact skipped: {} (a contact has name, numbers, email, company \
                 and department)",
                path.display(),
                e.message().trim()
            )),
        }
    }
    (contacts, warnings)
}

/// Appends a contact with one number to the book at `path`, creating the file (and its folder)
/// when missing. The file is replaced atomically. A book that does not parse is left alone.
pub fn append(path: &Path, name: &str, number: &str) -> Result<(), DirectoryError> {
    let io_error = |source: io::Error| DirectoryError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(io_error(e)),
    };
    if let Err(e) = toml::from_str::<Book>(&text) {
        let line = e.span().map_or(1, |span| line_of(&text, span.start));
        return Err(DirectoryError::BrokenBook {
            path: path.to_path_buf(),
            line,
        });
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(&format!(
        "[[contact]]\nname = {}\nnumbers = [{}]\n",
        toml::Value::String(name.to_owned()),
        toml::Value::String(number.to_owned())
    ));

    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    fs::create_dir_all(folder).map_err(io_error)?;
    let file_name = path
        .file_name()
        .map_or_else(|| "contacts.toml".into(), |n| n.to_string_lossy());
    let temp = folder.join(format!(".{file_name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&temp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = written {
        // Best effort: a leftover temporary file is harmless, the error below is what matters.
        let _ = fs::remove_file(&temp);
        return Err(io_error(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_with_plain_and_kinded_numbers() {
        let text =
            "[[contact]]\nname = \"José García\"\nnumbers = [\"+34 600\", { number = \"201\", \
                    kind = \"desk\" }]\nemail = \"jose@example.com\"\n";
        let (contacts, warnings) = parse(text, Path::new("book.toml"));
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(contacts.len(), 1);
        assert_eq!(contacts[0].numbers[1].kind, "desk");
        assert_eq!(contacts[0].email, "jose@example.com");
    }

    #[test]
    fn a_bad_contact_is_skipped_with_its_line() {
        let text = "[[contact]]\nname = \"A\"\nnumbers = [\"1\"]\n\n[[contact]]\nnmae = \"B\"\n\n\
                    [[contact]]\nname = \"C\"\nnumbers = [\"3\"]\n";
        let (contacts, warnings) = parse(text, Path::new("book.toml"));
        assert_eq!(contacts.len(), 2);
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].starts_with("book.toml:5: "), "{warnings:?}");
    }

    #[test]
    fn a_broken_file_is_one_warning() {
        let (contacts, warnings) = parse("[[contact]\nname=", Path::new("book.toml"));
        assert!(contacts.is_empty());
        assert!(warnings[0].starts_with("book.toml:1: "), "{warnings:?}");
    }
}
