//! The directory behind the number picker: personal contacts, internal extensions, corporate
//! directories and call history, searchable by fuzzy matching on every keystroke.
//!
//! - [`Entry`]: one dialable number with a name; a contact with three numbers is three entries.
//! - [`Directory`]: loads the sources ([`Directory::load`]), searches them
//!   ([`Directory::search`]), names callers ([`Directory::lookup_number`]), learns which numbers
//!   are used ([`Directory::record_use`], [`Directory::set_history`]), adds to the personal
//!   book ([`Directory::add_personal`]) and notices edited files
//!   ([`Directory::reload_if_changed`]).
//! - [`clean_pasted`]: pasted text as something dialable.
//!
//! Matching folds case and accents (`jose garcia` finds `José García`, `пах` finds `Пахомов`);
//! highlight positions in a [`Hit`] are character indices into the entry's own fields. Ranking:
//! match score, then recent and frequent use, then source (personal, extension, corporate,
//! history), then name.
//!
//! Files are read in the encoding they were saved in: UTF-8 or UTF-16 by their byte order mark,
//! else UTF-8 when valid, else Windows-1252 (see `text`).
//!
//! A number is internal when it is a configured extension or a plain number (no `+`, not a URI)
//! of at most `internal_digits` digits (default 5).
//!
//! This module reads the files it is configured with and writes only the personal book. It
//! never reads the clock (times are arguments), never panics on file content and never logs:
//! problems come back as warning strings (`file:line: message`) for the caller to show.

pub(crate) mod contact;
pub(crate) mod csv_source;
mod fold;
mod number;
mod personal;
mod search;
mod sources;
pub(crate) mod text;
mod usage;
pub(crate) mod vcard;

#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::SystemTime;

use fuzzy_matcher::skim::SkimMatcherV2;

use crate::config;

pub use number::clean_pasted;

use search::{Field, Hay, Query, Search};
use sources::{Part, Stamp};
use usage::Usage;

/// Numbers that share at least this many trailing digits are the same number for
/// [`Directory::lookup_number`] when no exact match exists (`+44 20 7946 0958` and
/// `020 7946 0958`).
const SUFFIX_DIGITS: usize = 9;

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// The user's own address book.
    Personal,
    /// The corporate directory files.
    Corporate,
    /// The internal extension list.
    Extension,
    /// The call history (numbers no other source knows).
    History,
}

impl Source {
    /// A short tag for display: `personal`, `corporate`, `extension`, `history`.
    pub fn tag(self) -> &'static str {
        match self {
            Source::Personal => "personal",
            Source::Corporate => "corporate",
            Source::Extension => "extension",
            Source::History => "history",
        }
    }

    /// Rank among sources when everything else is equal: lower comes first.
    fn rank(self) -> u64 {
        match self {
            Source::Personal => 0,
            Source::Extension => 1,
            Source::Corporate => 2,
            Source::History => 3,
        }
    }
}

/// One dialable number with who it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Display name as written, any script. Empty for a history number nobody named.
    pub name: String,
    /// The number as written (digits, `+`, `*`, `#`, separators) or a SIP URI.
    pub number: String,
    /// Kind of number, e-mail, company and department, joined with ` · ` for display.
    pub detail: String,
    /// Where the entry comes from.
    pub source: Source,
    /// Whether the number is internal (an extension, or short enough).
    pub internal: bool,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    /// Index of the entry, for [`Directory::entry`].
    pub entry: usize,
    /// How well the entry matches; higher is better, 0 for the empty query. The query in one
    /// piece at the start of a word of the name or number beats in one piece elsewhere in
    /// them, which beats scattered over them, which beats needing the detail; then the fewer
    /// characters its earliest occurrence covers the better; then fuzzy-matcher's score.
    pub score: i64,
    /// Character indices into [`Entry::name`] to highlight.
    pub name: Vec<usize>,
    /// Character indices into [`Entry::number`] to highlight.
    pub number: Vec<usize>,
    /// Character indices into [`Entry::detail`] to highlight.
    pub detail: Vec<usize>,
}

/// Why the personal book could not be changed.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// No personal book path is configured.
    #[error("no personal address book is set: set `personal` in the [directory] section")]
    NoPersonalBook,
    /// The name is empty or has control characters.
    #[error("a contact needs a name (without control characters)")]
    InvalidName,
    /// The number is neither a phone number nor a URI.
    #[error("`{0}` is not a phone number or SIP address")]
    InvalidNumber(String),
    /// The book has a syntax error; appending would hide the new contact.
    #[error("{}:{line}: the address book has an error; fix it before adding contacts", path.display())]
    BrokenBook {
        /// The book.
        path: PathBuf,
        /// Line of the error.
        line: usize,
    },
    /// Reading or writing the book failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The book.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// A loaded part: what it is, how its file looked when read, how many entries it holds.
#[derive(Debug)]
struct Loaded {
    part: Part,
    stamp: Option<Stamp>,
    len: usize,
}

/// The searchable directory. See the module documentation.
pub struct Directory {
    /// Entries, part after part in the order of `parts` (history last).
    entries: Vec<Entry>,
    /// One haystack per entry.
    hays: Vec<Hay>,
    parts: Vec<Loaded>,
    internal_digits: u8,
    /// Lookup keys of the configured extensions.
    extension_keys: HashSet<String>,
    /// Lookup key → entries with that number.
    by_key: HashMap<String, Vec<u32>>,
    /// Last [`SUFFIX_DIGITS`] digits → the best entry with them.
    by_suffix: HashMap<String, u32>,
    /// Lookup key of each entry's number.
    keys: Vec<Option<String>>,
    usage: Usage,
    /// Per entry, the ranking after the score: use, source, name (lower first).
    tie: Vec<u64>,
    /// Entry indices in `tie` order, for the empty query and the search's walk in tie order;
    /// rebuilt when `None`.
    by_tie: Option<Vec<u32>>,
    /// Position of each entry when sorted by name.
    name_rank: Vec<u32>,
    search: Search,
    matcher: SkimMatcherV2,
    threads: usize,
    /// Warnings from reloads, until taken.
    warnings: Vec<String>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("entries", &self.entries.len())
            .field("parts", &self.parts)
            .field("internal_digits", &self.internal_digits)
            .finish_non_exhaustive()
    }
}

impl Directory {
    fn empty(internal_digits: u8, extension_keys: HashSet<String>) -> Directory {
        Directory {
            entries: Vec::new(),
            hays: Vec::new(),
            parts: Vec::new(),
            internal_digits,
            extension_keys,
            by_key: HashMap::new(),
            by_suffix: HashMap::new(),
            keys: Vec::new(),
            usage: Usage::default(),
            tie: Vec::new(),
            by_tie: None,
            name_rank: Vec::new(),
            search: Search::default(),
            matcher: search::matcher(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
            warnings: Vec::new(),
        }
    }

    /// Reads every source named in `config` and returns the directory with the problems found
    /// (`file:line: message`). Nothing here fails: a bad file or row is skipped with a warning.
    /// `config.personal` is used as given; a missing book is not a problem (it is created by
    /// [`Directory::add_personal`]).
    pub fn load(config: &config::Directory) -> (Directory, Vec<String>) {
        let extension_keys = config
            .extensions
            .iter()
            .filter_map(|ext| number::key(&ext.number))
            .collect();
        let mut directory = Directory::empty(config.internal_digits, extension_keys);
        let mut parts = Vec::new();
        if let Some(path) = &config.personal {
            parts.push(Part::Personal(path.clone()));
        }
        if !config.extensions.is_empty() || config.extensions_file.is_some() {
            parts.push(Part::Extensions {
                listed: config.extensions.clone(),
                file: config.extensions_file.clone(),
            });
        }
        parts.extend(config.corporate.iter().cloned().map(Part::Corporate));
        parts.push(Part::History);

        let mut warnings = Vec::new();
        for part in parts {
            let stamp = part.file().map(Stamp::of);
            let (mut entries, problems) = part.read();
            warnings.extend(problems);
            directory.mark_internal(&mut entries);
            directory.parts.push(Loaded {
                part,
                stamp,
                len: entries.len(),
            });
            directory.entries.append(&mut entries);
        }
        directory.hays = hays_of(&directory.entries, directory.threads);
        directory.reindex();
        (directory, warnings)
    }

    /// A directory of exactly these entries (for tests and benchmarks), with the default
    /// internal rule; `internal` is kept as given.
    pub fn from_entries(entries: Vec<Entry>) -> Directory {
        let mut directory =
            Directory::empty(config::Directory::default().internal_digits, HashSet::new());
        directory.parts.push(Loaded {
            part: Part::Given,
            stamp: None,
            len: entries.len(),
        });
        directory.parts.push(Loaded {
            part: Part::History,
            stamp: None,
            len: 0,
        });
        directory.hays = hays_of(&entries, directory.threads);
        directory.entries = entries;
        directory.reindex();
        directory
    }

    /// The entry at index `i` (from a [`Hit`]). Panics when `i` is out of range, like slice
    /// indexing: indices come from [`Directory::search`] on the same directory.
    pub fn entry(&self, i: usize) -> &Entry {
        &self.entries[i]
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Entries matching `query`, best first, at most `limit`, with highlight positions.
    ///
    /// Fast on every keystroke: results of the previous queries are kept, so a query that
    /// extends or shortens the last one costs little. The empty query lists every entry by
    /// use, source and name.
    pub fn search(&mut self, query: &str, limit: usize) -> Vec<Hit> {
        let query = Query::new(query);
        if limit == 0 {
            return Vec::new();
        }
        let tie = &self.tie;
        let order = self.by_tie.get_or_insert_with(|| by_tie(tie));
        if query.text.is_empty() {
            return order
                .iter()
                .take(limit)
                .map(|&i| Hit {
                    entry: i as usize,
                    score: 0,
                    name: Vec::new(),
                    number: Vec::new(),
                    detail: Vec::new(),
                })
                .collect();
        }
        self.search
            .best(
                &query,
                &self.hays,
                &self.matcher,
                &self.tie,
                order,
                limit,
                self.threads,
            )
            .into_iter()
            .map(|(i, score)| self.highlight(i as usize, score, &query))
            .collect()
    }

    /// The hit for entry `i` with its highlight positions.
    fn highlight(&self, i: usize, score: i64, query: &Query) -> Hit {
        let mut hit = Hit {
            entry: i,
            score,
            name: Vec::new(),
            number: Vec::new(),
            detail: Vec::new(),
        };
        let mut origins = Vec::new();
        let (text, _, primary_len) = search::hay_text(&self.entries[i], Some(&mut origins));
        for at in query.indices(&text, primary_len) {
            match origins.get(at) {
                Some(&(Field::Name, c)) => hit.name.push(c),
                Some(&(Field::Number, c)) => hit.number.push(c),
                Some(&(Field::Detail, c)) => hit.detail.push(c),
                Some((Field::Gap, _)) | None => {}
            }
        }
        // Several folded characters can come from one original (ß → ss).
        for list in [&mut hit.name, &mut hit.number, &mut hit.detail] {
            list.dedup();
        }
        hit
    }

    /// The entry for a caller's number: same digits (`+1 555-0100` is `15550100`), also the
    /// user part of a SIP URI (`sip:+15550100@host`), or failing that the same last nine
    /// digits. Personal entries win over extensions, corporate and history.
    pub fn lookup_number(&self, number: &str) -> Option<&Entry> {
        let key = number::key(number)?;
        if let Some(found) = self.by_key.get(&key).and_then(|list| list.first()) {
            return self.entries.get(*found as usize);
        }
        let suffix = suffix(&key)?;
        self.by_suffix
            .get(suffix)
            .and_then(|&i| self.entries.get(i as usize))
    }

    /// Replaces the call history: `(number, name, last used)` per number. Each counts as a use
    /// for ranking, and numbers no other source knows become [`Source::History`] entries
    /// (named as given, or unnamed). Entry indices change.
    pub fn set_history(&mut self, items: Vec<(String, Option<String>, SystemTime)>) {
        self.usage.set_history(
            items
                .iter()
                .filter_map(|(number, _, time)| number::key(number).map(|key| (key, *time))),
        );
        let history_start = self.entries.len() - self.parts.last().map_or(0, |p| p.len);
        let mut seen: HashSet<String> = HashSet::new();
        let mut entries = Vec::new();
        for (number, name, _) in items {
            let number = number.trim().to_owned();
            let Some(key) = number::key(&number) else {
                continue;
            };
            let known = self
                .by_key
                .get(&key)
                .is_some_and(|list| list.iter().any(|&i| (i as usize) < history_start));
            if known || !seen.insert(key) {
                continue;
            }
            entries.push(Entry {
                name: name.map(|n| n.trim().to_owned()).unwrap_or_default(),
                number,
                detail: String::new(),
                source: Source::History,
                internal: false,
            });
        }
        self.mark_internal(&mut entries);
        let last = self.parts.len() - 1;
        self.replace_part(last, entries);
    }

    /// Counts a use of `number` at `now` (a call placed or answered), for ranking.
    pub fn record_use(&mut self, number: &str, now: SystemTime) {
        let Some(key) = number::key(number) else {
            return;
        };
        self.usage.record(key.clone(), now);
        if let Some(list) = self.by_key.get(&key) {
            for &i in list {
                self.tie[i as usize] = self.tie_of(i as usize);
            }
            self.by_tie = None;
            self.search.forget_tops();
        }
    }

    /// Adds a contact with one number to the personal book (the file is rewritten atomically)
    /// and to the directory. The number is cleaned first ([`clean_pasted`]). Adding a contact
    /// that is already there with that number does nothing. Entry indices change.
    pub fn add_personal(&mut self, name: &str, number: &str) -> Result<(), DirectoryError> {
        let name = name.trim();
        if name.is_empty() || name.chars().any(char::is_control) {
            return Err(DirectoryError::InvalidName);
        }
        let number = clean_pasted(number);
        if number.is_empty()
            || number.chars().any(char::is_control)
            || number::key(&number).is_none()
        {
            return Err(DirectoryError::InvalidNumber(number));
        }
        let (index, path) = self
            .parts
            .iter()
            .enumerate()
            .find_map(|(i, p)| match &p.part {
                Part::Personal(path) => Some((i, path.clone())),
                _ => None,
            })
            .ok_or(DirectoryError::NoPersonalBook)?;
        let key = number::key(&number);
        let present = key
            .as_ref()
            .and_then(|key| self.by_key.get(key))
            .is_some_and(|list| {
                list.iter().any(|&i| {
                    let entry = &self.entries[i as usize];
                    entry.source == Source::Personal && entry.name == name
                })
            });
        if present {
            return Ok(());
        }
        personal::append(&path, name, &number)?;
        self.reload_part(index);
        Ok(())
    }

    /// Reads again every file whose modification time or size changed since it was read, and
    /// says whether anything changed. Warnings are kept for [`Directory::take_warnings`].
    /// Entry indices change when this returns `true`.
    pub fn reload_if_changed(&mut self) -> bool {
        let mut changed = false;
        for index in 0..self.parts.len() {
            let loaded = &self.parts[index];
            let Some(path) = loaded.part.file() else {
                continue;
            };
            if loaded.stamp != Some(Stamp::of(path)) {
                self.reload_part(index);
                changed = true;
            }
        }
        changed
    }

    /// Warnings from reloads and additions since the last call.
    pub fn take_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.warnings)
    }

    /// Reads part `index` again and puts its entries in place.
    fn reload_part(&mut self, index: usize) {
        let part = &self.parts[index].part;
        let stamp = part.file().map(Stamp::of);
        let (mut entries, warnings) = part.read();
        self.warnings.extend(warnings);
        self.mark_internal(&mut entries);
        self.parts[index].stamp = stamp;
        self.replace_part(index, entries);
    }

    /// Replaces the entries of part `index` and rebuilds the indexes.
    fn replace_part(&mut self, index: usize, entries: Vec<Entry>) {
        let start: usize = self.parts[..index].iter().map(|p| p.len).sum();
        let end = start + self.parts[index].len;
        self.parts[index].len = entries.len();
        let hays = hays_of(&entries, self.threads);
        self.entries.splice(start..end, entries);
        self.hays.splice(start..end, hays);
        self.reindex();
    }

    /// Sets [`Entry::internal`] by the configured rule.
    fn mark_internal(&self, entries: &mut [Entry]) {
        for entry in entries {
            entry.internal = entry.source == Source::Extension
                || number::is_short(&entry.number, self.internal_digits)
                || number::key(&entry.number).is_some_and(|k| self.extension_keys.contains(&k));
        }
    }

    /// Rebuilds everything derived from the entries; forgets cached searches.
    fn reindex(&mut self) {
        self.search.clear();
        self.keys = self
            .entries
            .iter()
            .map(|e| number::key(&e.number))
            .collect();

        let mut by_name: Vec<u32> = (0..self.entries.len() as u32).collect();
        by_name.sort_by(|&a, &b| {
            let (a, b) = (a as usize, b as usize);
            self.hays[a]
                .name()
                .cmp(self.hays[b].name())
                .then_with(|| self.entries[a].name.cmp(&self.entries[b].name))
                .then(a.cmp(&b))
        });
        self.name_rank = vec![0; self.entries.len()];
        for (rank, &i) in by_name.iter().enumerate() {
            self.name_rank[i as usize] = rank as u32;
        }

        // Best entry first in each list: by source, then by position.
        let mut order: Vec<u32> = (0..self.entries.len() as u32).collect();
        order.sort_by_key(|&i| (self.entries[i as usize].source.rank(), i));
        self.by_key.clear();
        self.by_suffix.clear();
        for &i in &order {
            if let Some(key) = &self.keys[i as usize] {
                self.by_key.entry(key.clone()).or_default().push(i);
                if let Some(suffix) = suffix(key) {
                    self.by_suffix.entry(suffix.to_owned()).or_insert(i);
                }
            }
        }
        self.tie = (0..self.entries.len()).map(|i| self.tie_of(i)).collect();
        self.by_tie = Some(by_tie(&self.tie));
    }

    /// The ranking of entry `i` after the score: more use first, then source, then name.
    fn tie_of(&self, i: usize) -> u64 {
        let used = self.keys[i]
            .as_deref()
            .map_or(0, |key| self.usage.rank(key));
        (u64::from(u32::MAX - used) << 32)
            | (self.entries[i].source.rank() << 28)
            | u64::from(self.name_rank[i].min((1 << 28) - 1))
    }
}

/// Entry indices by `tie`, lower first.
fn by_tie(tie: &[u64]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..tie.len() as u32).collect();
    order.sort_unstable_by_key(|&i| tie[i as usize]);
    order
}

/// The last [`SUFFIX_DIGITS`] digits of an all-digit key long enough to have them.
fn suffix(key: &str) -> Option<&str> {
    (key.len() >= SUFFIX_DIGITS && key.bytes().all(|b| b.is_ascii_digit()))
        .then(|| &key[key.len() - SUFFIX_DIGITS..])
}

/// The haystacks of `entries`, folded on several threads when there are many.
fn hays_of(entries: &[Entry], threads: usize) -> Vec<Hay> {
    if threads <= 1 || entries.len() < 16_384 {
        return entries.iter().map(search::hay).collect();
    }
    let chunk_len = entries.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = entries
            .chunks(chunk_len)
            .map(|chunk| {
                (
                    chunk,
                    scope.spawn(move || chunk.iter().map(search::hay).collect::<Vec<_>>()),
                )
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|(chunk, handle)| {
                handle
                    .join()
                    .unwrap_or_else(|_| chunk.iter().map(search::hay).collect())
            })
            .collect()
    })
}
