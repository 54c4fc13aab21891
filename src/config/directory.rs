//! The `[directory]` section: where the number picker's contacts come from, with its checks.
//!
//! This module only describes and checks the settings; reading the files is
//! `crate::directory`'s job.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::Problem;

/// The most digits `internal_digits` may name (E.164 numbers have at most 15).
const MAX_INTERNAL_DIGITS: u8 = 15;

/// One internal extension written in the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Extension {
    /// The number to dial (digits, `*`, `#`, or a SIP URI).
    pub number: String,
    /// Who or what answers there.
    pub name: String,
}

/// The `[directory]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Directory {
    /// The personal address book (TOML); a leading `~/` is the home directory. `None`: the
    /// caller picks [`Directory::default_personal`].
    pub personal: Option<PathBuf>,
    /// Corporate directory files, `.csv` or `.vcf`, searched read-only.
    pub corporate: Vec<PathBuf>,
    /// Internal extensions.
    pub extensions: Vec<Extension>,
    /// A CSV file of more extensions (columns like `Number`/`Extension` and `Name`).
    pub extensions_file: Option<PathBuf>,
    /// Plain numbers of at most this many digits are internal; 0 turns the rule off. Default 5.
    pub internal_digits: u8,
}

impl Default for Directory {
    fn default() -> Self {
        Self {
            personal: None,
            corporate: Vec::new(),
            extensions: Vec::new(),
            extensions_file: None,
            internal_digits: 5,
        }
    }
}

impl Directory {
    /// `~/.local/share/switchboard/contacts.toml` on Linux (the platform's data directory
    /// elsewhere), if a home directory exists.
    pub fn default_personal() -> Option<PathBuf> {
        directories::ProjectDirs::from("", "", "switchboard")
            .map(|dirs| dirs.data_dir().join("contacts.toml"))
    }

    /// Expands a leading `~/` in every path.
    pub(super) fn expand_paths(&mut self) {
        for path in self
            .personal
            .iter_mut()
            .chain(self.corporate.iter_mut())
            .chain(self.extensions_file.iter_mut())
        {
            *path = super::expand_home(path);
        }
    }

    /// Problems within `[directory]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        if self
            .personal
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            out.push(Problem::new(
                "directory.personal",
                "must not be empty; remove the key to use the default address book",
            ));
        }
        for (i, path) in self.corporate.iter().enumerate() {
            if !has_extension(path, &["csv", "vcf", "vcard"]) {
                out.push(
                    Problem::new(
                        format!("directory.corporate[{i}]"),
                        format!(
                            "`{}`: the file name must end in .csv or .vcf, which says how to \
                             read it",
                            path.display()
                        ),
                    )
                    .or_at("directory.corporate"),
                );
            }
        }
        if let Some(path) = &self.extensions_file {
            if !has_extension(path, &["csv"]) {
                out.push(Problem::new(
                    "directory.extensions_file",
                    format!("`{}`: must be a .csv file", path.display()),
                ));
            }
        }
        for (i, ext) in self.extensions.iter().enumerate() {
            let key = |field: &str| format!("directory.extensions[{i}].{field}");
            let number = ext.number.trim();
            let dialable = !number.is_empty()
                && (number.contains(':')
                    || number
                        .chars()
                        .all(|c| c.is_ascii_digit() || matches!(c, '+' | '*' | '#')));
            if !dialable {
                out.push(
                    Problem::new(
                        key("number"),
                        format!(
                            "`{}` is not dialable: use digits (with `*`, `#`, a leading `+`) or \
                             a SIP URI",
                            ext.number
                        ),
                    )
                    .or_at(&format!("directory.extensions[{i}]")),
                );
            } else if let Some(first) = self.extensions[..i]
                .iter()
                .position(|other| other.number.trim() == number)
            {
                out.push(
                    Problem::new(
                        key("number"),
                        format!("`{number}` is already listed in extensions[{first}]"),
                    )
                    .or_at(&format!("directory.extensions[{i}]")),
                );
            }
            if ext.name.trim().is_empty() {
                out.push(
                    Problem::new(key("name"), "must not be empty")
                        .or_at(&format!("directory.extensions[{i}]")),
                );
            }
        }
        if self.internal_digits > MAX_INTERNAL_DIGITS {
            out.push(Problem::new(
                "directory.internal_digits",
                format!(
                    "{} is out of range: use 0 (no rule) to {MAX_INTERNAL_DIGITS}",
                    self.internal_digits
                ),
            ));
        }
    }
}

fn has_extension(path: &Path, allowed: &[&str]) -> bool {
    path.extension()
        .is_some_and(|e| allowed.iter().any(|a| e.eq_ignore_ascii_case(a)))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::super::Config;

    #[test]
    fn section_parses_with_defaults() {
        let config = Config::parse(
            "[directory]\ncorporate = [\"~/staff.csv\", \"people.VCF\"]\n\
             extensions = [{ number = \"201\", name = \"Reception\" }]\n",
            Path::new("c.toml"),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let directory = &config.directory;
        assert_eq!(directory.internal_digits, 5);
        assert_eq!(directory.personal, None);
        assert_eq!(directory.extensions[0].name, "Reception");
        assert!(!directory.corporate[0].starts_with("~"), "home is expanded");
    }

    #[test]
    fn problems_name_their_keys() {
        let errors = Config::parse(
            "[directory]\ncorporate = [\"staff.xlsx\"]\nextensions_file = \"ext.txt\"\n\
             extensions = [{ number = \"20 1\", name = \"A\" }, { number = \"202\", name = \"\" },\n\
             { number = \"202\", name = \"C\" }]\ninternal_digits = 16\n",
            Path::new("c.toml"),
        )
        .expect_err("invalid");
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "directory.corporate[0]",
                "directory.extensions_file",
                "directory.extensions[0].number",
                "directory.extensions[1].name",
                "directory.extensions[2].number",
                "directory.internal_digits",
            ],
            "{errors}"
        );
    }
}
