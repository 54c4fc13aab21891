//! The `[history]` section: where the call history is kept and how much of it is loaded, with
//! its checks.
//!
//! Like the rest of `config`, this only turns text into checked values; [`crate::history`]
//! reads and writes the file.

use std::path::PathBuf;

use serde::Deserialize;

use super::Problem;

/// Bounds for `load`, in records.
const LOAD_RANGE: std::ops::RangeInclusive<usize> = 1..=1_000_000;

/// The `[history]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct History {
    /// The JSON Lines file calls are appended to; a leading `~/` is the home directory.
    /// `None`: `history.jsonl` in the XDG data directory (see [`History::path`]).
    pub file: Option<PathBuf>,
    /// How many of the latest records are loaded at start (for the picker and the history
    /// view), 1 to 1000000. Default 1000.
    pub load: usize,
}

impl Default for History {
    fn default() -> Self {
        Self {
            file: None,
            load: 1000,
        }
    }
}

impl History {
    /// The history file: `file` when set, else `~/.local/share/switchboard/history.jsonl` on
    /// Linux (the platform's data directory elsewhere); `None` without a home directory.
    pub fn path(&self) -> Option<PathBuf> {
        self.file.clone().or_else(|| {
            directories::ProjectDirs::from("", "", "switchboard")
                .map(|dirs| dirs.data_dir().join("history.jsonl"))
        })
    }

    /// Problems within `[history]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        if self.file.as_ref().is_some_and(|f| f.as_os_str().is_empty()) {
            out.push(Problem::new(
                "history.file",
                "must not be empty; remove the key to use the default file",
            ));
        }
        if !LOAD_RANGE.contains(&self.load) {
            out.push(Problem::new(
                "history.load",
                format!(
                    "{} records is out of range: use {} to {}",
                    self.load,
                    LOAD_RANGE.start(),
                    LOAD_RANGE.end()
                ),
            ));
        }
    }

    /// Expands a leading `~/` in `file`.
    pub(super) fn expand_paths(&mut self) {
        if let Some(file) = &mut self.file {
            *file = super::expand_home(file);
        }
    }
}
