//! Fuzzy search over the directory, fast enough to run on every keystroke.
//!
//! Each entry has a haystack, built once at load: its folded name, its number (digits only, so
//! `5551` finds `+1 (555) 123…`; a SIP URI folded as text) and its folded detail, separated by
//! spaces, plus a 128-bit mask of the characters in it (exact for ASCII). A query is folded
//! the same way; a query written like a phone number (`555-12 3`) is reduced to its digits.
//!
//! Ranking: first how the query matches ([`Class`]: in one piece at the start of a word of
//! the name or number, in one piece inside them, scattered over them, or only with help from
//! the detail), then how many characters its earliest occurrence spans (fewer is better), then
//! fuzzy-matcher's score, then the caller's tie order (use, source, name).
//!
//! One fuzzy-matcher call costs 0.2 to 1 µs, so scoring 100,000 entries per keystroke would
//! take 30 ms and more. Speed comes from:
//! - **A stack of results.** Every entry matching `jos` also matches `jo` (a match is a
//!   subsequence), so typing one more character only looks at the previous hits, and deleting
//!   one finds the shorter query's hits and best rows still on the stack. Editing in the middle
//!   drops back to the longest query on the stack that is still a prefix.
//! - **The detail only when needed.** A short query is a subsequence of almost any long detail
//!   (`anna` of most e-mail addresses and companies), and such matches rank last, so each level
//!   of the stack leaves the entries that could match only with help from the detail unresolved
//!   and looks at them only when names and numbers give fewer hits than the rows asked for. A
//!   query that is no subsequence of a name and number does not become one when it grows.
//! - **Class and span without fuzzy-matcher**: they come from byte searches (`memchr`, and a
//!   substring searcher built once per query), after a cheap rejection with 128-bit character
//!   masks of the whole haystack and of the name and number; for a query of one ASCII
//!   character the masks (with one of the characters at word starts) tell the class alone. fuzzy-matcher then scores only the
//!   hits in the groups of class and span that reach the rows asked for, and in the last of
//!   those only as many, in tie order, as it takes to fill the rows with scores no other hit
//!   can beat, when a bound is known (queries of one or two characters, see
//!   `Query::ceilings`): a few dozen, where the 35,000 numbers starting with `3` were scored
//!   one by one.
//! - **A window**: fuzzy-matcher is given only the part of the haystack that can hold the
//!   match, mostly the short name and number (see `Query::window`).
//! - **Scores remembered by what fuzzy-matcher can tell of a window** within a pass: it sees
//!   a character only as equal to one of the pattern's or not, and by its kind (see
//!   `Query::token`), so ` jose` and ` joan` score alike for `j`, and numbers that differ only
//!   in digits the query lacks share a score instead of costing a call each.
//! - **Both cores** for large passes, and highlight positions only for the rows returned.
//!
//! **fuzzy-matcher 0.3.7 keeps state between calls.** Its cached score matrix is not cleared,
//! and a matched cell's bonus is read before this call wrote it, so the same text and pattern
//! can score differently depending on what was matched before (and `use_cache(false)` panics
//! with "RefCell already borrowed"). A fresh matcher per call would cost a quarter of a
//! microsecond more per entry. Instead both pattern and text start with a sentinel character
//! (`\0`, which folding never produces): the matrix rows whose stale bonus could be read then
//! only ever match the sentinel in column one, which no later cell reads, so the score depends
//! on the text and pattern alone. The price is a small penalty for alignments that start after
//! the first occurrence of the query's first character (the gap after the sentinel), the same
//! for every entry. Highlight positions come from a fresh matcher per returned row.
//!
//! This module must not read files or know where entries come from.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use fuzzy_matcher::skim::SkimMatcherV2;
use fuzzy_matcher::FuzzyMatcher;
use memchr::memmem;

use super::fold::{fold, fold_into};
use super::number::{dial_chars, is_phone_like, is_uri};
use super::Entry;

/// Passes over fewer candidates than this stay on the calling thread.
const PARALLEL_THRESHOLD: usize = 16_384;
/// Most queries kept on the stack.
const MAX_LEVELS: usize = 64;

/// The matcher used for searching. Text is folded to lower case beforehand, so case is
/// respected (cheaper than ignoring it). See the module documentation for why every call is
/// prefixed with a sentinel.
pub fn matcher() -> SkimMatcherV2 {
    SkimMatcherV2::default().respect_case()
}

/// Which field of an entry a haystack character came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Name,
    Number,
    Detail,
    /// A separator between fields.
    Gap,
}

/// An entry's text as the matcher sees it.
#[derive(Debug, Clone)]
pub struct Hay {
    /// Folded name, number and detail, separated by spaces.
    pub text: Box<str>,
    /// Length in bytes of the folded name at the start of `text`.
    pub name_len: u32,
    /// Length in bytes of the name and number at the start of `text` (see [`Query::score`]).
    primary_len: u32,
    /// Bit [`char_bit`] set for each character of `text`.
    mask: u128,
    /// The same for the name and number alone: a query with a character outside it can only
    /// match with help from the detail.
    primary_mask: u128,
    /// The same for the characters of the name and number at the start of a word (after a
    /// character that is not alphanumeric, or first): for a one-character ASCII query, whose
    /// bit is its own, the masks alone tell its [`Class`].
    word_mask: u128,
    /// The first character of `text`: a short query starting there can score more than
    /// anywhere else (see [`Query::ceilings`]).
    first: char,
}

impl Hay {
    /// The folded name, for sorting.
    pub fn name(&self) -> &str {
        self.text.get(..self.name_len as usize).unwrap_or("")
    }
}

/// The mask bit of a character: one of its own for each printable ASCII character (96 bits),
/// so a query with one the entry lacks (`+`, `q`, a digit) is always rejected by the mask;
/// other characters share the remaining 32 bits by a hash.
fn char_bit(c: char) -> u128 {
    match c {
        ' '..='~' => 1 << (c as u32 - 0x20),
        _ => 1 << (96 + ((c as u32).wrapping_mul(0x9E37_79B1) >> 27)),
    }
}

fn mask_of(text: &str) -> u128 {
    text.chars().fold(0, |mask, c| mask | char_bit(c))
}

/// Builds the haystack of `entry`; with `origins`, also where each of its characters came from
/// (field and character index in that field).
/// Also returns the lengths in bytes of the folded name and of the name and number.
pub fn hay_text(
    entry: &Entry,
    mut origins: Option<&mut Vec<(Field, usize)>>,
) -> (String, u32, u32) {
    let mut text =
        String::with_capacity(entry.name.len() + entry.number.len() + entry.detail.len() + 2);
    let mut note = |field: Field, i: usize| {
        if let Some(origins) = origins.as_deref_mut() {
            origins.push((field, i));
        }
    };
    fold_into(&entry.name, &mut text, |i| note(Field::Name, i));
    let name_len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    text.push(' ');
    note(Field::Gap, 0);
    if is_uri(&entry.number) {
        fold_into(&entry.number, &mut text, |i| note(Field::Number, i));
    } else {
        for (i, c) in dial_chars(&entry.number) {
            text.push(c);
            note(Field::Number, i);
        }
    }
    let primary_len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    text.push(' ');
    note(Field::Gap, 0);
    fold_into(&entry.detail, &mut text, |i| note(Field::Detail, i));
    (text, name_len, primary_len)
}

/// The haystack of `entry`.
pub fn hay(entry: &Entry) -> Hay {
    let (text, name_len, primary_len) = hay_text(entry, None);
    let primary = text.get(..primary_len as usize).unwrap_or("");
    let mut word_mask = 0;
    let mut before = None;
    for c in primary.chars() {
        if before.is_none_or(|b: char| !b.is_alphanumeric()) {
            word_mask |= char_bit(c);
        }
        before = Some(c);
    }
    Hay {
        mask: mask_of(&text),
        primary_mask: mask_of(primary),
        word_mask,
        first: text.chars().next().unwrap_or(SENTINEL),
        text: text.into_boxed_str(),
        name_len,
        primary_len,
    }
}

/// Put before both pattern and text given to fuzzy-matcher; see the module documentation.
const SENTINEL: char = '\0';

/// A query ready for matching.
#[derive(Debug, Clone)]
pub struct Query {
    /// Folded text (or digits); empty matches everything.
    pub text: String,
    /// [`SENTINEL`] and `text`: what fuzzy-matcher is given.
    pattern: String,
    mask: u128,
    first: char,
    last: char,
    /// `text` in characters, at most 255: the span of a match in one piece.
    chars: u8,
    /// A substring searcher for `text`, built once per query rather than once per entry.
    finder: memmem::Finder<'static>,
    /// The mask bit of a one-character query whose bit is its own (printable ASCII).
    own_bit: Option<u128>,
}

impl Query {
    /// Folds `raw`; a phone-number-like query becomes its digits. Leading spaces are dropped
    /// and runs of spaces count as one.
    pub fn new(raw: &str) -> Query {
        let raw = raw.trim_start();
        let text = if is_phone_like(raw) {
            raw.chars()
                .filter(|c| c.is_ascii_digit() || matches!(c, '*' | '#'))
                .collect()
        } else {
            let folded = fold(raw);
            let mut text = String::with_capacity(folded.len());
            for c in folded.chars() {
                if !(c == ' ' && text.ends_with(' ')) {
                    text.push(c);
                }
            }
            text
        };
        Query {
            pattern: format!("{SENTINEL}{text}"),
            mask: mask_of(&text),
            first: text.chars().next().unwrap_or(' '),
            last: text.chars().next_back().unwrap_or(' '),
            chars: u8::try_from(text.chars().count()).unwrap_or(u8::MAX),
            finder: memmem::Finder::new(text.as_bytes()).into_owned(),
            own_bit: match text.as_bytes() {
                &[byte @ b' '..=b'~'] => Some(char_bit(char::from(byte))),
                _ => None,
            },
            text,
        }
    }

    /// The part of `text` (a haystack whose name and number take `primary_len` bytes) that
    /// fuzzy-matcher is given, with its start in bytes; `None` when the query does not match.
    ///
    /// When the query matches within the name and number (most hits, and the ones a person
    /// expects first), that is the name and number from just before the first occurrence of the
    /// query's first character to the last occurrence of its last character: nothing outside
    /// can take part in a match, and the character before the first occurrence decides its
    /// bonus. Otherwise the query reaches into the detail (`smith sales`), and the window is
    /// the earliest place where the query's characters occur in order: a short query is found
    /// somewhere in almost any long detail, and scoring all of it would cost more than a frame
    /// per 100,000 entries.
    fn window<'a>(
        &self,
        text: &'a str,
        primary_len: usize,
        in_primary: bool,
    ) -> Option<(usize, &'a str)> {
        let first = text.find(self.first)?;
        let start = text[..first]
            .char_indices()
            .next_back()
            .map_or(0, |(i, _)| i);
        let end = if in_primary {
            text.get(..primary_len)?.rfind(self.last)? + self.last.len_utf8()
        } else {
            first + earliest_end(&self.text, &text[first..])?
        };
        Some((start, &text[start..end]))
    }

    /// How `hay` matches, `None` when it does not: its [`Class`] and span (how many characters
    /// the earliest occurrence of the query covers, at most 255), from the text alone, without
    /// fuzzy-matcher.
    #[cfg(test)]
    pub fn class(&self, hay: &Hay) -> Option<(Class, u8)> {
        if !self.may_match(hay) {
            return None;
        }
        self.primary_class(hay, false)
            .or_else(|| self.detail_class(hay))
    }

    /// Whether every character of the query occurs in `hay` (by the mask: it may still not
    /// match).
    fn may_match(&self, hay: &Hay) -> bool {
        self.mask & !hay.mask == 0
    }

    /// [`Query::class`] when the query matches within the name and number, else `None` (it
    /// may still match with help from the detail). A query that does not match there does
    /// not either when it grows: its characters are a subsequence of every match. Nor does a
    /// query that was `scattered` there come in one piece when it grows, so that search is
    /// skipped.
    fn primary_class(&self, hay: &Hay, scattered: bool) -> Option<(Class, u8)> {
        if self.mask & !hay.primary_mask != 0 {
            // A character of the query is missing from the name and number.
            return None;
        }
        if let Some(bit) = self.own_bit {
            // One character with a bit of its own: the masks tell where it is.
            let class = if hay.word_mask & bit != 0 {
                Class::WordStart
            } else {
                Class::Inside
            };
            return Some((class, 1));
        }
        let primary = hay.text.get(..hay.primary_len as usize).unwrap_or("");
        let mut contiguous = None;
        // A match of valid UTF-8 in valid UTF-8 starts on a character boundary.
        let pieces = if scattered {
            None
        } else {
            Some(self.finder.find_iter(primary.as_bytes()))
        };
        for at in pieces.into_iter().flatten() {
            let before = primary.get(..at).and_then(|head| head.chars().next_back());
            if before.is_none_or(|c| !c.is_alphanumeric()) {
                return Some((Class::WordStart, self.chars));
            }
            contiguous.get_or_insert((Class::Inside, self.chars));
        }
        if contiguous.is_some() {
            return contiguous;
        }
        let first = primary.find(self.first)?;
        let end = earliest_end(&self.text, &primary[first..])?;
        Some((Class::Scattered, span(&primary[first..first + end])))
    }

    /// [`Class::Detail`] and the span, for a `hay` that does not match within its name and
    /// number; `None` when it does not match at all.
    fn detail_class(&self, hay: &Hay) -> Option<(Class, u8)> {
        let text = &*hay.text;
        let first = text.find(self.first)?;
        let end = earliest_end(&self.text, &text[first..])?;
        Some((Class::Detail, span(&text[first..first + end])))
    }

    /// The ranking score of `hay`, which matches in `class` with `span`: the class first, then
    /// the span (shorter is better), then fuzzy-matcher's score. `buffer` is scratch space,
    /// reused between calls. The plain form of [`Query::score_cached`], for tests.
    #[cfg(test)]
    pub fn score(
        &self,
        matcher: &SkimMatcherV2,
        hay: &Hay,
        (class, span): (Class, u8),
        buffer: &mut String,
    ) -> i64 {
        let fuzzy = self
            .window(&hay.text, hay.primary_len as usize, class != Class::Detail)
            .map_or(0, |(_, window)| self.fuzzy(matcher, window, buffer));
        group_score(class, span) + fuzzy
    }

    /// [`Query::score`], with fuzzy-matcher's scores remembered by window in `scratch`: the
    /// score depends on the window's text and the query alone (see the module documentation),
    /// and many entries share a window (`jos` in every José's name).
    fn score_cached(
        &self,
        matcher: &SkimMatcherV2,
        hay: &Hay,
        (class, span): (Class, u8),
        scratch: &mut Scratch,
    ) -> i64 {
        let fuzzy = self
            .window(&hay.text, hay.primary_len as usize, class != Class::Detail)
            .map_or(0, |(_, window)| {
                scratch.tokens.clear();
                scratch.tokens.extend(window.chars().map(|c| self.token(c)));
                if let Some(&known) = scratch.scores.get(scratch.tokens.as_slice()) {
                    return known;
                }
                let fuzzy = self.fuzzy(matcher, window, &mut scratch.buffer);
                scratch
                    .scores
                    .insert(scratch.tokens.as_slice().into(), fuzzy);
                fuzzy
            });
        group_score(class, span) + fuzzy
    }

    /// Upper bounds of fuzzy-matcher's score for a query of one or two characters (`None`
    /// for a longer one): in a window that starts with its first character (when the
    /// haystack does), and in any other window.
    ///
    /// fuzzy-matcher scores the sentinel alike in every call (it is matched in the first
    /// column), then each matched character 16 plus a bonus of at most 8 for its place (the
    /// head of a word, after a space, earns the most; the second of two consecutive
    /// characters earns at least 4, and with two rows of its matrix in use, no stale bonus
    /// reaches it), and a gap costs 3 plus 1 per character skipped. So the query scores most
    /// in one piece right after the sentinel, and in a window that starts before its first
    /// character (with the character before that one's first occurrence, see
    /// [`Query::window`]), in one piece after a gap of one character, a space. Both bounds
    /// are fuzzy-matcher's own scores of those two windows, and a test checks them against
    /// every short text of a small alphabet.
    fn ceilings(&self, matcher: &SkimMatcherV2, buffer: &mut String) -> Option<(i64, i64)> {
        if self.chars > 2 {
            return None;
        }
        let spaced = format!(" {}", self.text);
        Some((
            self.fuzzy(matcher, &spaced[1..], buffer),
            self.fuzzy(matcher, &spaced, buffer),
        ))
    }

    /// What fuzzy-matcher can tell of window character `c`: the character itself when the
    /// query has it or when it is ASCII punctuation or space (whose kinds of separator differ),
    /// else only whether it is a digit or a letter: fuzzy-matcher compares a text character
    /// only with the pattern's and, for its bonuses, looks only at its kind (separator, digit,
    /// upper case, other), and every character but ASCII ones counts as a lower-case letter.
    fn token(&self, c: char) -> u32 {
        /// Any letter or non-ASCII character the query does not have.
        const LETTER: u32 = 0x11_0000;
        /// Any digit the query does not have.
        const DIGIT: u32 = 0x11_0001;
        if self.mask & char_bit(c) != 0 && self.text.contains(c) {
            return c as u32;
        }
        match c {
            '0'..='9' => DIGIT,
            'a'..='z' => LETTER,
            _ if !c.is_ascii() => LETTER,
            _ => c as u32,
        }
    }

    /// fuzzy-matcher's score of `window`, kept within a group's range (0 when it does not
    /// match).
    fn fuzzy(&self, matcher: &SkimMatcherV2, window: &str, buffer: &mut String) -> i64 {
        buffer.clear();
        buffer.push(SENTINEL);
        buffer.push_str(window);
        matcher
            .fuzzy_match(buffer, &self.pattern)
            .unwrap_or(0)
            .clamp(-GROUP_WEIGHT / 2, GROUP_WEIGHT / 2 - 1)
    }

    /// The character indices in `text` (a haystack whose name and number take `primary_len`
    /// bytes) of the best match, for highlighting.
    pub fn indices(&self, text: &str, primary_len: u32) -> Vec<usize> {
        let primary = text.get(..primary_len as usize).unwrap_or("");
        let in_primary = earliest_end(&self.text, primary).is_some();
        let Some((start, window)) = self.window(text, primary_len as usize, in_primary) else {
            return Vec::new();
        };
        let offset = text[..start].chars().count();
        let choice = format!("{SENTINEL}{window}");
        matcher()
            .fuzzy_indices(&choice, &self.pattern)
            .map(|(_, indices)| {
                indices
                    .into_iter()
                    .filter(|&i| i > 0)
                    .map(|i| i - 1 + offset)
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The length of `piece` in characters, at most 255.
fn span(piece: &str) -> u8 {
    u8::try_from(piece.chars().count()).unwrap_or(u8::MAX)
}

/// Where the earliest occurrence of `pattern`'s characters in order within `text` ends, in
/// bytes; `None` when they do not all occur (or `pattern` is empty). Each character is looked
/// for in the bytes after the previous one's (`memchr` for ASCII): an encoded character found
/// in UTF-8 is that character.
fn earliest_end(pattern: &str, text: &str) -> Option<usize> {
    if pattern.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let mut at = 0;
    for c in pattern.chars() {
        let mut encoded = [0; 4];
        let encoded = c.encode_utf8(&mut encoded).as_bytes();
        let rest = bytes.get(at..)?;
        let found = match encoded {
            [byte] => memchr::memchr(*byte, rest)?,
            _ => memmem::find(rest, encoded)?,
        };
        at += found + encoded.len();
    }
    Some(at)
}

/// How a query matches an entry, best last. Ranking puts the class before fuzzy-matcher's
/// score, so fuzzy-matcher only runs for the classes that reach the rows shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Class {
    /// Only with help from the detail (e-mail, company, department).
    Detail = 0,
    /// Scattered over the name and number.
    Scattered = 1,
    /// In one piece inside the name or number.
    Inside = 2,
    /// In one piece at the start of a word of the name, or of the number.
    WordStart = 3,
}

/// A step of span outweighs any fuzzy-matcher score.
const GROUP_WEIGHT: i64 = 1 << 24;

/// The part of the score given by class and span.
fn group_score(class: Class, span: u8) -> i64 {
    ((class as i64) * 256 + 255 - i64::from(span)) * GROUP_WEIGHT
}

/// The rank of a class and span among the 1024 possible, best first.
fn group(class: Class, span: u8) -> usize {
    (3 - class as usize) * 256 + usize::from(span)
}

/// The class of a [`group`].
fn class_of(group: usize) -> Class {
    match group / 256 {
        0 => Class::WordStart,
        1 => Class::Inside,
        2 => Class::Scattered,
        _ => Class::Detail,
    }
}

/// Hits of one query: entry index, class and span.
pub type Hits = Vec<(u32, Class, u8)>;

/// One query's hits, with the best rows last computed for it.
#[derive(Debug)]
struct Level {
    query: String,
    /// The query's character mask.
    mask: u128,
    /// Entries matching within the name and number, and, once looked at, those matching with
    /// help from the detail.
    hits: Hits,
    /// Entries that may match with help from the detail, not looked at yet: only needed
    /// when the name and number give fewer hits than the rows asked for, since every match
    /// there ranks first ([`Class::Detail`] is the lowest class).
    unresolved: Vec<u32>,
    /// `limit` and the rows [`top`] returned for it, until the ranking changes.
    top: Option<(usize, Vec<(u32, i64)>)>,
}

/// The stack of recent queries and their hits.
#[derive(Debug, Default)]
pub struct Search {
    levels: Vec<Level>,
}

impl Search {
    /// Forgets every cached result (the entries changed).
    pub fn clear(&mut self) {
        self.levels.clear();
    }

    /// Forgets the cached best rows (the ranking after the score changed).
    pub fn forget_tops(&mut self) {
        for level in &mut self.levels {
            level.top = None;
        }
    }

    /// The best `limit` rows for non-empty `query`, best first, with their scores; see [`top`]
    /// (`order` is every entry by `tie`).
    #[allow(clippy::too_many_arguments)]
    pub fn best(
        &mut self,
        query: &Query,
        hays: &[Hay],
        matcher: &SkimMatcherV2,
        tie: &[u64],
        order: &[u32],
        limit: usize,
        threads: usize,
    ) -> Vec<(u32, i64)> {
        self.hits(query, hays, threads);
        let level = self
            .levels
            .last_mut()
            .expect("hits leaves the query's level on top");
        if level.hits.len() < limit && !level.unresolved.is_empty() {
            // Too few hits in names and numbers: the detail's are needed.
            let unresolved = std::mem::take(&mut level.unresolved);
            level
                .hits
                .extend(par_filter_map(&unresolved, threads, |&i, _: &mut ()| {
                    hays.get(i as usize)
                        .and_then(|hay| query.detail_class(hay))
                        .map(|(class, span)| (i, class, span))
                }));
            level.top = None;
        }
        match &level.top {
            Some((cached, rows)) if *cached == limit => rows.clone(),
            _ => {
                let rows = top(
                    &level.hits,
                    query,
                    hays,
                    matcher,
                    tie,
                    order,
                    limit,
                    threads,
                );
                level.top = Some((limit, rows.clone()));
                rows
            }
        }
    }

    /// The hits of non-empty `query` over `hays` within names and numbers, from the stack when
    /// possible, with the entries that may match with help from the detail.
    fn hits(&mut self, query: &Query, hays: &[Hay], threads: usize) {
        while self
            .levels
            .last()
            .is_some_and(|level| !query.text.starts_with(level.query.as_str()))
        {
            self.levels.pop();
        }
        if self
            .levels
            .last()
            .is_some_and(|level| level.query == query.text)
        {
            return;
        }
        let may_match = |&i: &u32| hays.get(i as usize).is_some_and(|h| query.may_match(h));
        // `scattered`: the shorter query on the stack matched scattered over the name and number.
        let sort = |i: u32, scattered: bool| -> Option<Result<(u32, Class, u8), u32>> {
            let hay = hays.get(i as usize)?;
            if !query.may_match(hay) {
                return None;
            }
            Some(match query.primary_class(hay, scattered) {
                Some((class, span)) => Ok((i, class, span)),
                None => Err(i),
            })
        };
        let (hits, unresolved) = match self.levels.last() {
            Some(previous) => {
                let (hits, mut unresolved) =
                    par_sort_out(&previous.hits, threads, |&(i, class, _)| {
                        if class == Class::Detail {
                            // No match in the name and number then, none now.
                            may_match(&i).then_some(Err(i))
                        } else {
                            sort(i, class == Class::Scattered)
                        }
                    });
                if previous.mask == query.mask {
                    unresolved.extend_from_slice(&previous.unresolved);
                } else {
                    unresolved.extend(previous.unresolved.iter().filter(|i| may_match(i)));
                }
                (hits, unresolved)
            }
            None => {
                let all: Vec<u32> = (0..u32::try_from(hays.len()).unwrap_or(u32::MAX)).collect();
                par_sort_out(&all, threads, |&i| sort(i, false))
            }
        };
        if self.levels.len() >= MAX_LEVELS {
            // The new query extends the one below the top too, so the stack stays a chain.
            self.levels.pop();
        }
        self.levels.push(Level {
            query: query.text.clone(),
            mask: query.mask,
            hits,
            unresolved,
            top: None,
        });
    }
}

/// The best `limit` of `hits` with their scores, best first: by score, then by `tie` (lower
/// first; `order` is every entry in that order). Only the groups of class and span that reach
/// the top `limit` are given to fuzzy-matcher; in the last of them, when it holds more hits
/// than rows are left and the query has [`Query::ceilings`], only its first hits in `order`
/// until enough reach the ceiling (see [`walk`]).
#[allow(clippy::too_many_arguments)]
fn top(
    hits: &Hits,
    query: &Query,
    hays: &[Hay],
    matcher: &SkimMatcherV2,
    tie: &[u64],
    order: &[u32],
    limit: usize,
    threads: usize,
) -> Vec<(u32, i64)> {
    let mut counts = vec![0usize; 4 * 256];
    for &(_, class, span) in hits {
        counts[group(class, span)] += 1;
    }
    let mut cut = counts.len() - 1;
    let mut seen = 0;
    for (g, count) in counts.iter().enumerate() {
        seen += count;
        if seen >= limit {
            cut = g;
            break;
        }
    }
    // Rows left for the last group, after the groups above it.
    let left = limit - (seen - counts[cut]);
    let ceilings = (counts[cut] > left && order.len() == hays.len())
        .then(|| query.ceilings(matcher, &mut String::new()))
        .flatten();
    let wanted: Vec<(u32, Class, u8)> = hits
        .iter()
        .filter(|&&(_, class, span)| {
            let g = group(class, span);
            g < cut || (g == cut && ceilings.is_none())
        })
        .copied()
        .collect();
    let mut scored = par_filter_map(&wanted, threads, |&(i, class, span), scratch| {
        let hay = hays.get(i as usize)?;
        Some((i, query.score_cached(matcher, hay, (class, span), scratch)))
    });
    if let Some(ceilings) = ceilings {
        let last = Last {
            group: cut,
            rows: left,
            ceilings,
        };
        scored.extend(walk(hits, &last, query, hays, matcher, order));
    }
    let key = |&(i, score): &(u32, i64)| (std::cmp::Reverse(score), tie.get(i as usize).copied());
    if scored.len() > limit {
        scored.select_nth_unstable_by_key(limit - 1, key);
        scored.truncate(limit);
    }
    scored.sort_unstable_by_key(key);
    scored
}

/// The last group of class and span that reaches the rows asked for, in [`top`].
struct Last {
    /// Its rank ([`group`]).
    group: usize,
    /// How many of its hits are shown.
    rows: usize,
    /// The query's [`Query::ceilings`].
    ceilings: (i64, i64),
}

/// Hits of group `last` with their scores, looked at in tie order (`order`) until `last.rows`
/// of them reach the ceiling of every hit not looked at yet: none of those can rank above
/// them (a higher score is out of reach, an equal one loses the tie). The 35,000 numbers that
/// start with the `3` of `+3`, and the 17,000 with `34`, need a few dozen scores each.
fn walk(
    hits: &Hits,
    last: &Last,
    query: &Query,
    hays: &[Hay],
    matcher: &SkimMatcherV2,
    order: &[u32],
) -> Vec<(u32, i64)> {
    let (class, span) = (class_of(last.group), (last.group % 256) as u8);
    let (at_start, elsewhere) = last.ceilings;
    let mut members = vec![0u64; hays.len().div_ceil(64)];
    // Members whose haystack starts with the query's character, not looked at yet.
    let mut starting = 0usize;
    for &(i, c, s) in hits {
        if group(c, s) == last.group {
            if let Some(word) = members.get_mut(i as usize / 64) {
                *word |= 1 << (i % 64);
            }
            starting += usize::from(hays.get(i as usize).is_some_and(|h| h.first == query.first));
        }
    }
    let base = group_score(class, span);
    let highest = at_start.max(elsewhere);
    // How many looked at reach `highest`, and `elsewhere`.
    let (mut reach_highest, mut reach_elsewhere) = (0, 0);
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    for &i in order {
        let member = members
            .get(i as usize / 64)
            .is_some_and(|word| word & (1 << (i % 64)) != 0);
        let Some(hay) = hays.get(i as usize).filter(|_| member) else {
            continue;
        };
        let score = query.score_cached(matcher, hay, (class, span), &mut scratch);
        out.push((i, score));
        if hay.first == query.first {
            starting = starting.saturating_sub(1);
        }
        reach_highest += usize::from(score - base >= highest);
        reach_elsewhere += usize::from(score - base >= elsewhere);
        let reached = if starting > 0 {
            reach_highest
        } else {
            reach_elsewhere
        };
        if reached >= last.rows {
            break;
        }
    }
    out
}

/// Scratch space of one thread while scoring: the string handed to fuzzy-matcher, and the
/// scores of the windows seen by what fuzzy-matcher can tell of them ([`Query::token`]).
#[derive(Default)]
struct Scratch {
    buffer: String,
    tokens: Vec<u32>,
    scores: HashMap<Box<[u32]>, i64, BuildHasherDefault<WindowHasher>>,
}

/// A fast hash for short window strings (FxHash's multiply-rotate, a word at a time); the
/// keys come from the directory, not from an attacker.
#[derive(Default)]
struct WindowHasher(u64);

impl Hasher for WindowHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let mut last = [0; 8];
        let rest = chunks.remainder();
        last[..rest.len()].copy_from_slice(rest);
        self.add(u64::from_le_bytes(last) ^ ((rest.len() as u64) << 59));
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl WindowHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// `f` over `items`, on several threads when there are many, sorting out hits (`Ok`) from
/// entries to look at later (`Err`); `None` drops the item.
fn par_sort_out<T: Sync>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Option<Result<(u32, Class, u8), u32>> + Sync,
) -> (Hits, Vec<u32>) {
    par_chunks(
        items,
        threads,
        |chunk| {
            let (mut hits, mut rest) = (Vec::new(), Vec::new());
            for sorted in chunk.iter().filter_map(&f) {
                match sorted {
                    Ok(hit) => hits.push(hit),
                    Err(i) => rest.push(i),
                }
            }
            (hits, rest)
        },
        |(hits, rest), (more_hits, more_rest)| {
            hits.extend(more_hits);
            rest.extend(more_rest);
        },
    )
}

/// `f` over `items`, on several threads when there are many; `f` gets scratch space of its
/// thread.
fn par_filter_map<T: Sync, U: Send, S: Default>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T, &mut S) -> Option<U> + Sync,
) -> Vec<U> {
    par_chunks(
        items,
        threads,
        |chunk| {
            let mut scratch = S::default();
            chunk
                .iter()
                .filter_map(|item| f(item, &mut scratch))
                .collect()
        },
        Vec::extend,
    )
}

/// `run` over `items` in one chunk per thread when there are many (this thread takes the
/// first), the results joined in order by `join`.
fn par_chunks<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    run: impl Fn(&[T]) -> R + Sync,
    join: impl Fn(&mut R, R),
) -> R {
    if threads <= 1 || items.len() < PARALLEL_THRESHOLD {
        return run(items);
    }
    let chunk_len = items.len().div_ceil(threads);
    let run = &run;
    std::thread::scope(|scope| {
        let mut chunks = items.chunks(chunk_len);
        let mine = chunks.next().unwrap_or_default();
        let others: Vec<_> = chunks
            .map(|chunk| (chunk, scope.spawn(move || run(chunk))))
            .collect();
        let mut out = run(mine);
        for (chunk, other) in others {
            // Matching cannot panic on text; should a thread fail, its share is redone here.
            join(&mut out, other.join().unwrap_or_else(|_| run(chunk)));
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_parallel_passes_keep_every_result_in_order() {
        let items: Vec<u32> = (0..3 * PARALLEL_THRESHOLD as u32).collect();
        let odd = |i: &u32, _: &mut ()| (i % 2 == 1).then_some(*i);
        let serial = par_filter_map(&items, 1, odd);
        assert_eq!(serial.len(), items.len() / 2);
        assert_eq!(par_filter_map(&items, 3, odd), serial);
        let sort = |i: &u32| match i % 3 {
            0 => None,
            1 => Some(Ok((*i, Class::Inside, 0))),
            _ => Some(Err(*i)),
        };
        let (hits, rest) = par_sort_out(&items, 4, sort);
        assert_eq!((hits.clone(), rest.clone()), par_sort_out(&items, 1, sort));
        assert!(hits.windows(2).all(|w| w[0].0 < w[1].0), "hits in order");
        assert_eq!(rest.len(), items.len() / 3);
    }

    proptest! {
        /// A score depends on the text and the query only, not on what was matched before.
        #[test]
        fn scores_do_not_depend_on_earlier_calls(
            pairs in prop::collection::vec(("[a-c .1-2éП]{0,30}", "[a-c .1-2еп]{1,5}"), 1..40),
        ) {
            let reused = matcher();
            let mut buffer = String::new();
            for (text, pattern) in pairs {
                let entry = Entry {
                    name: text,
                    number: String::new(),
                    detail: String::new(),
                    source: super::super::Source::Personal,
                    internal: false,
                };
                let hay = hay(&entry);
                let query = Query::new(&pattern);
                if query.text.is_empty() {
                    continue;
                }
                let class = query.class(&hay);
                if let Some(class) = class {
                    prop_assert!(class.1 as usize >= query.text.chars().count().min(255));
                    prop_assert_eq!(
                        query.score(&reused, &hay, class, &mut buffer),
                        query.score(&matcher(), &hay, class, &mut String::new())
                    );
                }
                // Highlighting finds a match exactly when the class does.
                prop_assert_eq!(
                    !query.indices(&hay.text, hay.primary_len).is_empty(),
                    class.is_some()
                );
            }
        }
    }

    /// How an entry matches, by the plain definition: `str` searches, character by character.
    fn plain_class(query: &Query, hay: &Hay) -> Option<(Class, u8)> {
        let text = &*hay.text;
        let primary = &text[..hay.primary_len as usize];
        let span = |piece: &str| u8::try_from(piece.chars().count()).unwrap_or(u8::MAX);
        let earliest = |text: &str| {
            let mut wanted = query.text.chars().peekable();
            for (i, c) in text.char_indices() {
                if wanted.next_if_eq(&c).is_some() && wanted.peek().is_none() {
                    return Some(i + c.len_utf8());
                }
            }
            None
        };
        let mut contiguous = None;
        for (at, found) in primary.match_indices(query.text.as_str()) {
            if primary[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric())
            {
                return Some((Class::WordStart, span(found)));
            }
            contiguous.get_or_insert((Class::Inside, span(found)));
        }
        if contiguous.is_some() {
            return contiguous;
        }
        let first = text.find(query.first)?;
        if let Some(end) = primary.get(first..).and_then(earliest) {
            return Some((Class::Scattered, span(&primary[first..first + end])));
        }
        let end = earliest(&text[first..])?;
        Some((Class::Detail, span(&text[first..first + end])))
    }

    /// The best `limit` rows by the plain definition: every entry classified, scored by a
    /// fresh fuzzy-matcher, all sorted.
    fn plain_best(query: &Query, hays: &[Hay], tie: &[u64], limit: usize) -> Vec<(u32, i64)> {
        let mut all: Vec<(u32, i64)> = hays
            .iter()
            .enumerate()
            .filter_map(|(i, hay)| {
                let class = plain_class(query, hay)?;
                let score = query.score(&matcher(), hay, class, &mut String::new());
                Some((i as u32, score))
            })
            .collect();
        all.sort_by_key(|&(i, score)| (std::cmp::Reverse(score), tie[i as usize]));
        all.truncate(limit);
        all
    }

    fn word() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "José",
            "Jose",
            "García",
            "jo",
            "Åsa",
            "Søren",
            "Пахомов",
            "Анна",
            "anna",
            "Ann-Marie",
            "O'Brien",
            "Weiß",
            "Nguyễn",
            "sales",
            "j",
            "ja",
            "x",
            "jo.sé",
            "ja_x",
            "(anna)",
            "J5o",
            "Ǆo",
            "34",
            "6-00",
            "x-jo",
            "a.34",
            "Jo-an",
        ])
        .prop_map(str::to_owned)
    }

    fn entry() -> impl Strategy<Value = Entry> {
        (
            prop::collection::vec(word(), 0..4),
            "(\\+?[0-9 ()-]{0,12})|(\\+34 6[0-9]{2} [0-9]{3} [0-9]{3})|(sip:[a-z]{1,6}@[a-z.]{1,8})",
            prop::collection::vec(word(), 0..3),
        )
            .prop_map(|(name, number, detail)| Entry {
                name: name.join(" "),
                number,
                detail: detail.join(" · "),
                source: super::super::Source::Corporate,
                internal: false,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// The fast path (query stack, detail looked at only when needed, byte searches,
        /// groups cut before scoring, scores remembered by what fuzzy-matcher sees of a
        /// window) ranks exactly as the plain definition does, while a query is typed, pasted,
        /// edited and deleted.
        #[test]
        fn the_fast_path_ranks_as_the_plain_matcher(
            entries in prop::collection::vec(entry(), 1..150),
            typed in prop::collection::vec(
                prop::sample::select(vec![
                    "j", "o", "s", "e", " ", "g", "a", "5", "1", "п", "а", "ö", "n", "-", "+", "3",
                    "4", "6", "0", "+34 6", "600",
                ]),
                1..8,
            ),
            limit in 1usize..12,
            threads in 1usize..3,
        ) {
            let hays: Vec<Hay> = entries.iter().map(hay).collect();
            let tie: Vec<u64> = (0..hays.len() as u64).map(|i| (i * 7 + 3) % 1_000_003).collect();
            let mut order: Vec<u32> = (0..hays.len() as u32).collect();
            order.sort_by_key(|&i| tie[i as usize]);
            let mut search = Search::default();
            let mut queries: Vec<String> = (1..=typed.len()).map(|n| typed[..n].concat()).collect();
            queries.extend((1..typed.len()).rev().map(|n| typed[..n].concat()));
            queries.push(typed.iter().rev().copied().collect::<Vec<_>>().concat());
            // The rest pasted after the first character: several characters at once.
            queries.insert(1, typed.concat());
            for raw in queries {
                let query = Query::new(&raw);
                if query.text.is_empty() {
                    continue;
                }
                for hay in &hays {
                    prop_assert_eq!(query.class(hay), plain_class(&query, hay), "{:?} {:?}", raw, hay.text);
                }
                let fast = search.best(&query, &hays, &matcher(), &tie, &order, limit, threads);
                prop_assert_eq!(fast, plain_best(&query, &hays, &tie, limit), "query {:?}", raw);
            }
        }
    }

    /// No window scores more than [`Query::ceilings`] for a query of one or two characters:
    /// every text of up to five characters from an alphabet of the queries' characters and
    /// every kind of neighbour fuzzy-matcher tells apart, as a name and as a detail.
    #[test]
    fn short_queries_score_at_most_their_ceilings() {
        let alphabet = ['a', '3', 'b', ' ', '.', '(', 'п'];
        let mut texts = Vec::new();
        let mut level = vec![String::new()];
        for _ in 0..5 {
            level = level
                .iter()
                .flat_map(|t| alphabet.iter().map(move |c| format!("{t}{c}")))
                .collect();
            texts.extend(level.iter().cloned());
        }
        let matcher = matcher();
        let mut buffer = String::new();
        for query in ["a", "3", "п", "(", "34", "33", "ab", "a ", "a.", "(a", "aп"] {
            let query = Query::new(query);
            let (at_start, elsewhere) = query.ceilings(&matcher, &mut buffer).unwrap();
            assert!(at_start >= elsewhere);
            for text in &texts {
                for (name, detail) in [(text.as_str(), ""), ("x", text.as_str())] {
                    let hay = hay(&Entry {
                        name: name.to_owned(),
                        number: String::new(),
                        detail: detail.to_owned(),
                        source: super::super::Source::Personal,
                        internal: false,
                    });
                    let Some((class, span)) = query.class(&hay) else {
                        continue;
                    };
                    let fuzzy = query.score(&matcher, &hay, (class, span), &mut buffer)
                        - group_score(class, span);
                    let ceiling = if hay.first == query.first {
                        at_start
                    } else {
                        elsewhere
                    };
                    assert!(
                        fuzzy <= ceiling,
                        "{:?} in {:?}: {fuzzy} > {ceiling}",
                        query.text,
                        hay.text
                    );
                }
            }
        }
    }

    /// The walk in tie order goes on past hits that score just under the ceiling (`x-jo`,
    /// after a dash, ahead in tie order) to those that reach it (`ann jo`, after a space).
    #[test]
    fn the_walk_stops_only_at_scores_no_later_hit_can_beat() {
        let entry = |name: &str, number: &str| Entry {
            name: name.to_owned(),
            number: number.to_owned(),
            detail: String::new(),
            source: super::super::Source::Corporate,
            internal: false,
        };
        let mut entries: Vec<Entry> = (0..40).map(|_| entry("ann x-jo", "a.34")).collect();
        entries.extend((0..40).map(|_| entry("ann jo", "+34 600")));
        let hays: Vec<Hay> = entries.iter().map(hay).collect();
        let tie: Vec<u64> = (0..hays.len() as u64).collect();
        let order: Vec<u32> = (0..hays.len() as u32).collect();
        for raw in ["j", "jo", "3", "34", "+34"] {
            let query = Query::new(raw);
            let fast = Search::default().best(&query, &hays, &matcher(), &tie, &order, 5, 1);
            assert_eq!(fast, plain_best(&query, &hays, &tie, 5), "{raw}");
            assert!(fast.iter().all(|&(i, _)| i >= 40), "{raw}: {fast:?}");
        }
    }

    #[test]
    fn phone_like_queries_become_digits() {
        assert_eq!(Query::new("+1 (555) 12-3").text, "1555123");
        assert_eq!(Query::new("  José  GARCÍA").text, "jose garcia");
    }
}
