//! Writing a choice back into the user's configuration file without losing its comments or
//! layout (`toml_edit`): the devices chosen in the sound check.
//!
//! The edited text is checked with the same rules as `check-config` before it replaces the
//! file (written beside it, then renamed), so a choice never leaves a file that does not load.

use std::path::Path;

use toml_edit::{value, DocumentMut, Item, Table};

use super::Config;

/// `text` with `[audio] key = "device"`: an existing value is replaced in place (its trailing
/// comment kept), a missing key or `[audio]` table is added; everything else is left as is.
pub fn with_audio_device(text: &str, key: &str, device: &str) -> Result<String, String> {
    let mut document: DocumentMut = text
        .parse()
        .map_err(|e| format!("the file is not TOML: {e}"))?;
    if !document.contains_key("audio") {
        // A new table goes at the end, after the file's last comments.
        let mut table = Table::new();
        table.insert(key, value(device));
        let mut added = DocumentMut::new();
        added.insert("audio", Item::Table(table));
        let separator = if text.is_empty() || text.ends_with('\n') {
            ""
        } else {
            "\n"
        };
        return Ok(format!("{text}{separator}{added}"));
    }
    let audio = document
        .get_mut("audio")
        .and_then(Item::as_table_like_mut)
        .ok_or("`audio` is not a table")?;
    match audio.get_mut(key) {
        Some(Item::Value(old)) => {
            let decor = old.decor().clone();
            *old = device.into();
            *old.decor_mut() = decor;
        }
        _ => {
            audio.insert(key, value(device));
        }
    }
    Ok(document.to_string())
}

/// Sets `[audio] key = "device"` in the file at `path` (see [`with_audio_device`]), after
/// checking that the result still loads.
pub fn set_audio_device(path: &Path, key: &str, device: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let edited = with_audio_device(&text, key, device)?;
    Config::parse(&edited, path).map_err(|e| format!("not written: {e}"))?;
    let temporary = path.with_extension("toml.new");
    std::fs::write(&temporary, edited)
        .and_then(|()| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_written_with_every_comment_kept() {
        let example = include_str!("../../config.example.toml");
        let edited = with_audio_device(example, "output", "USB Headset").expect("edits");
        assert!(edited.contains("output = \"USB Headset\""), "{edited}");
        let comments = |t: &str| {
            t.lines()
                .filter(|l| l.trim_start().starts_with('#'))
                .count()
        };
        assert_eq!(comments(&edited), comments(example), "no comment lost");
        let config = Config::parse(&edited, Path::new("edited.toml")).expect("still loads");
        assert_eq!(config.audio.output.as_deref(), Some("USB Headset"));
        let again = with_audio_device(&edited, "output", "Desk").expect("edits");
        assert!(again.contains("output = \"Desk\""));
        assert!(!again.contains("output = \"USB Headset\""), "{again}");
    }

    #[test]
    fn a_value_keeps_its_trailing_comment_and_a_missing_table_is_added() {
        let text = "[audio]\ninput = \"old\" # the headset's mic\n";
        let edited = with_audio_device(text, "input", "new").expect("edits");
        assert_eq!(edited, "[audio]\ninput = \"new\" # the headset's mic\n");
        let edited = with_audio_device("# mine\n", "ring_output", "Speaker").expect("edits");
        assert!(edited.starts_with("# mine\n"), "{edited}");
        assert!(
            edited.contains("[audio]\nring_output = \"Speaker\""),
            "{edited}"
        );
        assert!(with_audio_device("audio = 3\n", "input", "x").is_err());
    }
}
