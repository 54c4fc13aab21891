//! What the picker searches: the [`Finder`] trait the directory implements, the [`PickerRow`]
//! it returns, and [`ListFinder`], a plain list with substring matching used until (and beside)
//! the real directory.
//!
//! This module draws nothing and reads no file: rows come ready to draw. The screen's model
//! only asks a finder for names; the run loop searches, reloads and records picks.

use std::time::SystemTime;

/// One picker row, ready to draw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickerRow {
    /// The contact's name (`Given Surname`).
    pub name: String,
    /// The number or SIP URI that is dialled when the row is picked.
    pub number: String,
    /// Extra words: company, department, e-mail, or the history outcome.
    pub detail: String,
    /// Where the row comes from: `personal`, `corporate`, `extension` or `history`.
    pub source: &'static str,
    /// True for an internal extension, false for an outside number.
    pub internal: bool,
    /// Char indices of `name` that matched the query, to highlight.
    pub name_hits: Vec<usize>,
    /// Char indices of `number` that matched the query, to highlight.
    pub number_hits: Vec<usize>,
    /// Char indices of `detail` that matched the query, to highlight.
    pub detail_hits: Vec<usize>,
}

impl PickerRow {
    /// The internal extension this row dials (number only digits), which can have a busy
    /// lamp.
    pub fn extension(&self) -> Option<&str> {
        let number = self.number.as_str();
        (self.internal && !number.is_empty() && number.chars().all(|c| c.is_ascii_digit()))
            .then_some(number)
    }
}

/// What the picker searches; the directory implements it.
pub trait Finder {
    /// The best `limit` rows for `query`, best first; an empty query gives recent or
    /// frequent entries (or nothing).
    fn find(&mut self, query: &str, limit: usize) -> Vec<PickerRow>;
    /// The name to show for a number (a caller, a dialled number), if one is known.
    fn name_for(&self, number: &str) -> Option<String>;
    /// The operator picked this number at wall-clock time `at` (to rank it higher next time).
    fn picked(&mut self, number: &str, at: SystemTime);
    /// Reads again what changed on disk since it was read (nothing, for a fixed list).
    fn reload(&mut self) {}
    /// Adds a contact to the operator's personal book; the error says why not, in words.
    fn add_contact(&mut self, name: &str, number: &str) -> Result<(), String>;
}

/// A fixed list of rows searched by case-insensitive substring over name, number and detail.
/// An empty query lists the first rows.
#[derive(Debug, Clone, Default)]
pub struct ListFinder {
    rows: Vec<PickerRow>,
    picked: Vec<String>,
}

impl ListFinder {
    /// A finder over `rows` (their `*_hits` are ignored and recomputed per query).
    pub fn new(rows: Vec<PickerRow>) -> Self {
        Self {
            rows,
            picked: Vec::new(),
        }
    }

    /// The numbers picked so far, oldest first.
    pub fn picked_numbers(&self) -> &[String] {
        &self.picked
    }
}

/// Char indices of the first case-insensitive occurrence of `needle` in `hay`.
fn substring_hits(hay: &str, needle: &str) -> Option<Vec<usize>> {
    if needle.is_empty() {
        return Some(Vec::new());
    }
    let hay: Vec<char> = hay.chars().flat_map(char::to_lowercase).collect();
    let needle: Vec<char> = needle.chars().flat_map(char::to_lowercase).collect();
    hay.windows(needle.len())
        .position(|w| w == needle.as_slice())
        .map(|start| (start..start + needle.len()).collect())
}

impl Finder for ListFinder {
    fn find(&mut self, query: &str, limit: usize) -> Vec<PickerRow> {
        let query = query.trim();
        self.rows
            .iter()
            .filter_map(|row| {
                let name = substring_hits(&row.name, query);
                let number = substring_hits(&row.number, query);
                let detail = substring_hits(&row.detail, query);
                if name.is_none() && number.is_none() && detail.is_none() {
                    return None;
                }
                Some(PickerRow {
                    name_hits: name.unwrap_or_default(),
                    number_hits: number.unwrap_or_default(),
                    detail_hits: detail.unwrap_or_default(),
                    ..row.clone()
                })
            })
            .take(limit)
            .collect()
    }

    fn name_for(&self, number: &str) -> Option<String> {
        self.rows
            .iter()
            .find(|row| row.number == number)
            .map(|row| row.name.clone())
    }

    fn picked(&mut self, number: &str, _at: SystemTime) {
        self.picked.push(number.to_owned());
    }

    fn add_contact(&mut self, name: &str, number: &str) -> Result<(), String> {
        if name.trim().is_empty() {
            return Err("no name".to_owned());
        }
        self.rows.push(PickerRow {
            name: name.to_owned(),
            number: number.to_owned(),
            detail: String::new(),
            source: "personal",
            internal: false,
            name_hits: Vec::new(),
            number_hits: Vec::new(),
            detail_hits: Vec::new(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, number: &str) -> PickerRow {
        PickerRow {
            name: name.into(),
            number: number.into(),
            detail: String::new(),
            source: "corporate",
            internal: true,
            name_hits: vec![],
            number_hits: vec![],
            detail_hits: vec![],
        }
    }

    #[test]
    fn substring_match_marks_hits() {
        let mut finder = ListFinder::new(vec![row("Anna Virtanen", "201"), row("Bob", "202")]);
        let found = finder.find("VIRT", 10);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name_hits, [5, 6, 7, 8]);
        assert_eq!(finder.find("20", 10).len(), 2);
        assert_eq!(finder.find("", 1).len(), 1);
        assert_eq!(finder.name_for("202").as_deref(), Some("Bob"));
        assert_eq!(finder.name_for("999"), None);
        finder.picked("202", SystemTime::UNIX_EPOCH);
        assert_eq!(finder.picked_numbers(), ["202"]);
    }
}
