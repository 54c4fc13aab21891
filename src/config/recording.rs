//! The `[recording]` section: where call recordings go, in which format, under which name, and
//! whether every call is recorded, with its checks.
//!
//! Like the rest of `config`, this only turns text into checked values; the media engine's
//! recorder writes the files and the driver names them.

use std::path::PathBuf;

use serde::Deserialize;

use super::Problem;

/// The placeholders `template` may use.
const PLACEHOLDERS: [&str; 5] = ["date", "time", "line", "direction", "number"];

/// How recordings are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingFormat {
    /// 16-bit PCM WAV (`"wav"`), the default: large (11.5 MB a minute) but readable anywhere.
    #[default]
    Wav,
    /// Ogg Opus (`"ogg"`, files named `.opus`): about 0.5 MB a minute.
    Ogg,
}

/// The `[recording]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Recording {
    /// The directory recordings are written to (created when needed); a leading `~/` is the
    /// home directory. `None`: `recordings/` in the XDG data directory (see
    /// [`Recording::directory`]).
    pub dir: Option<PathBuf>,
    /// `"wav"` or `"ogg"`. Default `"wav"`.
    pub format: RecordingFormat,
    /// The file name without extension: `{date}` (local, `2025-06-30`), `{time}` (local, `142503`),
    /// `{line}`, `{direction}` (`in` or `out`) and `{number}` are replaced. Default
    /// `"{date}_{time}_line{line}_{direction}_{number}"`.
    pub template: String,
    /// Record every call from answer to end. Default `false`.
    pub auto: bool,
}

impl Default for Recording {
    fn default() -> Self {
        Self {
            dir: None,
            format: RecordingFormat::Wav,
            template: "{date}_{time}_line{line}_{direction}_{number}".to_owned(),
            auto: false,
        }
    }
}

impl Recording {
    /// The recordings directory: `dir` when set, else
    /// `~/.local/share/switchboard/recordings` on Linux (the platform's data directory
    /// elsewhere); `None` without a home directory.
    pub fn directory(&self) -> Option<PathBuf> {
        self.dir.clone().or_else(|| {
            directories::ProjectDirs::from("", "", "switchboard")
                .map(|dirs| dirs.data_dir().join("recordings"))
        })
    }

    /// Problems within `[recording]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        if self.dir.as_ref().is_some_and(|d| d.as_os_str().is_empty()) {
            out.push(Problem::new(
                "recording.dir",
                "must not be empty; remove the key to use the default directory",
            ));
        }
        if let Err(message) = check_template(&self.template) {
            out.push(Problem::new("recording.template", message));
        }
    }

    /// Expands a leading `~/` in `dir`.
    pub(super) fn expand_paths(&mut self) {
        if let Some(dir) = &mut self.dir {
            *dir = super::expand_home(dir);
        }
    }
}

/// A template is a plain file name whose `{…}` are all known placeholders.
fn check_template(template: &str) -> Result<(), String> {
    if template.trim().is_empty() {
        return Err("must not be empty; remove the key to use the default name".into());
    }
    if let Some(c) = template
        .chars()
        .find(|c| matches!(c, '/' | '\\' | '\0') || c.is_control())
    {
        return Err(format!(
            "must be a file name, without {c:?}; put directories in `dir`"
        ));
    }
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("has a `{` without its `}`".into());
        };
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(format!(
                "`{{{name}}}` is not a placeholder; use {}",
                PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_checked() {
        assert!(check_template(&Recording::default().template).is_ok());
        assert!(check_template("{number}-{date}").is_ok());
        assert!(check_template("").is_err());
        assert!(check_template("a/{date}").is_err_and(|e| e.contains("dir")));
        assert!(check_template("{date").is_err_and(|e| e.contains("without its")));
        assert!(check_template("{caller}").is_err_and(|e| e.contains("`{caller}`")));
    }
}
