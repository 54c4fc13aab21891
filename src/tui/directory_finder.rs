//! The picker over the real directory: [`Finder`] for [`Directory`], with the call history's
//! numbers merged in and each pick remembered for ranking. Reading the files again is
//! [`Finder::reload`], which the run loop calls when the picker opens, not every search.

use std::time::SystemTime;

use crate::directory::Directory;
use crate::tui::finder::{Finder, PickerRow};

/// The directory as the picker sees it.
pub struct DirectoryFinder {
    directory: Directory,
}

impl DirectoryFinder {
    /// A finder over `directory`.
    pub fn new(directory: Directory) -> DirectoryFinder {
        DirectoryFinder { directory }
    }
}

impl Finder for DirectoryFinder {
    fn find(&mut self, query: &str, limit: usize) -> Vec<PickerRow> {
        self.directory
            .search(query, limit)
            .into_iter()
            .map(|hit| {
                let e = self.directory.entry(hit.entry);
                PickerRow {
                    name: e.name.clone(),
                    number: e.number.clone(),
                    detail: e.detail.clone(),
                    source: e.source.tag(),
                    internal: e.internal,
                    name_hits: hit.name,
                    number_hits: hit.number,
                    detail_hits: hit.detail,
                }
            })
            .collect()
    }

    fn name_for(&self, number: &str) -> Option<String> {
        self.directory
            .lookup_number(number)
            .map(|e| e.name.clone())
            .filter(|n| !n.is_empty())
    }

    fn add_contact(&mut self, name: &str, number: &str) -> Result<(), String> {
        self.directory
            .add_personal(name, number)
            .map_err(|e| e.to_string())
    }

    fn picked(&mut self, number: &str, at: SystemTime) {
        self.directory.record_use(number, at);
    }

    fn reload(&mut self) {
        self.directory.reload_if_changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::{Entry, Source};

    #[test]
    fn rows_carry_the_directorys_entries_and_highlights() {
        let directory = Directory::from_entries(vec![
            Entry {
                name: "José García".into(),
                number: "201".into(),
                detail: "sales".into(),
                source: Source::Extension,
                internal: true,
            },
            Entry {
                name: "Anna Virtanen".into(),
                number: "+358401234567".into(),
                detail: String::new(),
                source: Source::Corporate,
                internal: false,
            },
        ]);
        let mut finder = DirectoryFinder::new(directory);
        let rows = finder.find("jose", 10);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].number, "201");
        assert_eq!(rows[0].source, "extension");
        assert!(rows[0].internal);
        assert_eq!(rows[0].name_hits, [0, 1, 2, 3]);
        assert_eq!(
            finder.name_for("sip:+358401234567@pbx").as_deref(),
            Some("Anna Virtanen")
        );
        assert_eq!(finder.name_for("999"), None);
        finder.picked("201", SystemTime::UNIX_EPOCH);
    }
}
