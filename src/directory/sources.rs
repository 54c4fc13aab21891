//! Where entries come from: the personal book, the extension list and corporate files, each a
//! "part" of the directory that can be re-read on its own when its file changes.
//!
//! This module reads files and turns them into entries with warnings (`file:line: message`);
//! it never fails and never panics on their content. It must not rank or match.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::config;

use super::contact::Contact;
use super::{csv_source, personal, text, vcard, Entry, Source};

/// What a file looked like when it was read: modification time and length. `None` fields when
/// the file was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    modified: Option<SystemTime>,
    len: Option<u64>,
}

impl Stamp {
    /// The stamp of `path` now.
    pub fn of(path: &Path) -> Stamp {
        match fs::metadata(path) {
            Ok(meta) => Stamp {
                modified: meta.modified().ok(),
                len: Some(meta.len()),
            },
            Err(_) => Stamp {
                modified: None,
                len: None,
            },
        }
    }
}

/// One part of the directory.
#[derive(Debug, Clone)]
pub enum Part {
    /// The personal book.
    Personal(PathBuf),
    /// Extensions written in the configuration, and the extension file if any.
    Extensions {
        listed: Vec<config::Extension>,
        file: Option<PathBuf>,
    },
    /// One corporate file, CSV or vCard by its extension.
    Corporate(PathBuf),
    /// Entries handed over as they are ([`super::Directory::from_entries`]).
    Given,
    /// Numbers from the call history that no other part knows.
    History,
}

impl Part {
    /// The file whose changes mean this part must be read again.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Part::Personal(path) | Part::Corporate(path) => Some(path),
            Part::Extensions { file, .. } => file.as_deref(),
            Part::Given | Part::History => None,
        }
    }

    /// Reads the part. `Given` and `History` read nothing.
    pub fn read(&self) -> (Vec<Entry>, Vec<String>) {
        let mut entries = Vec::new();
        let mut warnings = Vec::new();
        match self {
            Part::Personal(path) => match fs::read_to_string(path) {
                Ok(text) => {
                    let (contacts, problems) = personal::parse(&text, path);
                    expand(contacts, Source::Personal, &mut entries);
                    warnings.extend(problems);
                }
                // No book yet: it is created by the first contact added.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => warnings.push(cannot_read(path, &e)),
            },
            Part::Extensions { listed, file } => {
                entries.extend(listed.iter().map(|ext| Entry {
                    name: ext.name.clone(),
                    number: ext.number.clone(),
                    detail: String::new(),
                    source: Source::Extension,
                    internal: true,
                }));
                if let Some(path) = file {
                    match fs::read(path) {
                        Ok(bytes) => {
                            let (contacts, problems) = csv_source::parse(&bytes, path);
                            expand(contacts, Source::Extension, &mut entries);
                            warnings.extend(problems);
                        }
                        Err(e) => warnings.push(cannot_read(path, &e)),
                    }
                }
            }
            Part::Corporate(path) => match fs::read(path) {
                Ok(bytes) => {
                    let (contacts, problems) = read_corporate(&bytes, path);
                    expand(contacts, Source::Corporate, &mut entries);
                    warnings.extend(problems);
                }
                Err(e) => warnings.push(cannot_read(path, &e)),
            },
            Part::Given | Part::History => {}
        }
        (entries, warnings)
    }
}

fn cannot_read(path: &Path, error: &io::Error) -> String {
    format!(
        "{}: cannot read it, nothing loaded from it: {error}",
        path.display()
    )
}

fn expand(contacts: Vec<Contact>, source: Source, out: &mut Vec<Entry>) {
    for contact in contacts {
        contact.into_entries(source, out);
    }
}

/// A corporate file by its extension: `.csv`, or `.vcf`/`.vcard`.
fn read_corporate(bytes: &[u8], path: &Path) -> (Vec<Contact>, Vec<String>) {
    let extension = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "csv" => csv_source::parse(bytes, path),
        "vcf" | "vcard" => {
            let decoded = text::decode(bytes);
            let (contacts, mut warnings) = vcard::parse(&decoded.text, path);
            if decoded.replaced {
                warnings.push(format!(
                    "{}: not valid {} text; unreadable characters were replaced",
                    path.display(),
                    decoded.encoding
                ));
            }
            (contacts, warnings)
        }
        _ => (
            Vec::new(),
            vec![format!(
                "{}: unknown kind of file, nothing loaded: name it .csv or .vcf",
                path.display()
            )],
        ),
    }
}
