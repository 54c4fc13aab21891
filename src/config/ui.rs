//! The screen's sections of the configuration: `[ui]` (bell) and `[keys]` (which key runs which
//! action), with the key-name grammar and its checks.
//!
//! Like the rest of `config`, this only turns text into checked values: it knows nothing of the
//! terminal library; the TUI's keymap turns terminal key presses into [`KeySpec`]s to compare.

use std::fmt;

use serde::Deserialize;

use super::Problem;

/// How many lines the phone may have (`[ui] lines`).
pub const LINES_RANGE: std::ops::RangeInclusive<u8> = 2..=8;

/// The `[ui]` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Ui {
    /// Ring the terminal bell when a call arrives. Default true.
    pub bell: bool,
    /// How many lines (simultaneous calls, each with its RTP port pair): 2 to 8. Default 2.
    pub lines: u8,
}

impl Default for Ui {
    fn default() -> Self {
        Self {
            bell: true,
            lines: 2,
        }
    }
}

impl Ui {
    /// Problems within `[ui]`: the line count must be in [`LINES_RANGE`].
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        if !LINES_RANGE.contains(&self.lines) {
            out.push(Problem::new(
                "ui.lines",
                format!(
                    "{} lines is out of range: use {} to {}",
                    self.lines,
                    LINES_RANGE.start(),
                    LINES_RANGE.end()
                ),
            ));
        }
    }
}

/// The `[keys]` section: for each action, the keys that run it, written as key names separated
/// by spaces (`"a enter"`, `"ctrl-t"`). An action left out keeps its default keys.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Keys {
    /// Open the picker to place a call. Default `"d"`.
    pub dial: Option<String>,
    /// Answer the ringing call. Default `"a enter"`.
    pub answer: Option<String>,
    /// Hang up, cancel or reject the call on the selected line. Default `"h"`.
    pub hangup: Option<String>,
    /// Hold or resume the call on the selected line. Default `"space"`.
    pub hold: Option<String>,
    /// Switch to the other line (the call there is held). Default `"tab"`.
    pub swap: Option<String>,
    /// Blind transfer, target from the picker. Default `"t"`.
    pub transfer: Option<String>,
    /// Attended transfer (consult), target from the picker. Default `"T"`.
    pub consult: Option<String>,
    /// Complete the attended transfer. Default `"c enter"`.
    pub complete: Option<String>,
    /// Cancel the attended transfer. Default `"esc"`.
    pub cancel: Option<String>,
    /// Mute or unmute the microphone. Default `"m"`.
    pub mute: Option<String>,
    /// Start or stop recording. Default `"r"`.
    pub record: Option<String>,
    /// Join the lines in a conference, or split it. Default `"k"`.
    pub conference: Option<String>,
    /// Pick up a call ringing elsewhere, extension from the picker. Default `"p"`.
    pub pickup: Option<String>,
    /// Choose the outbound route. Default `"o"`.
    pub route: Option<String>,
    /// Open the directory picker on its own (Enter dials). Default `"/"`.
    pub search: Option<String>,
    /// Open the `:` command line. Default `":"`.
    pub command: Option<String>,
    /// Add the selected call's party to the personal book. Default `"b"`.
    pub add_contact: Option<String>,
    /// Show the call history (Enter calls back). Default `"H"`.
    pub history: Option<String>,
    /// Show or hide the SIP trace pane. Default `"s"`.
    pub trace: Option<String>,
    /// Noise suppression on / off. Default `"n"`.
    pub noise_suppression: Option<String>,
    /// Automatic gain control on / off. Default `"g"`.
    pub agc: Option<String>,
    /// Open the sound check. Default `"v"`.
    pub sound_check: Option<String>,
    /// Do not disturb on / off. Default `"D"`.
    pub dnd: Option<String>,
    /// Show every key. Default `"? f1"`.
    pub help: Option<String>,
    /// Quit (asks first while a call is up). Default `"q"`.
    pub quit: Option<String>,
    /// Show or hide the favourites panel. Default `"f"`.
    pub favourites: Option<String>,
    /// Park the selected call at the account's park extension. Default `"P"`.
    pub park: Option<String>,
}

impl Keys {
    /// The actions the file rebinds, as `(action name, key names)`, in declaration order.
    pub fn rebound(&self) -> Vec<(&'static str, &str)> {
        let all = [
            ("dial", &self.dial),
            ("answer", &self.answer),
            ("hangup", &self.hangup),
            ("hold", &self.hold),
            ("swap", &self.swap),
            ("transfer", &self.transfer),
            ("consult", &self.consult),
            ("complete", &self.complete),
            ("cancel", &self.cancel),
            ("mute", &self.mute),
            ("record", &self.record),
            ("conference", &self.conference),
            ("pickup", &self.pickup),
            ("route", &self.route),
            ("search", &self.search),
            ("command", &self.command),
            ("add_contact", &self.add_contact),
            ("history", &self.history),
            ("trace", &self.trace),
            ("noise_suppression", &self.noise_suppression),
            ("agc", &self.agc),
            ("sound_check", &self.sound_check),
            ("dnd", &self.dnd),
            ("help", &self.help),
            ("quit", &self.quit),
            ("favourites", &self.favourites),
            ("park", &self.park),
        ];
        all.into_iter()
            .filter_map(|(name, keys)| keys.as_deref().map(|k| (name, k)))
            .collect()
    }

    /// Problems within `[keys]`: every key name must parse.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        for (action, keys) in self.rebound() {
            if let Err(message) = KeySpec::parse_list(keys) {
                out.push(Problem::new(format!("keys.{action}"), message));
            }
        }
    }
}

/// A named key that is not a printable character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NamedKey {
    /// `enter`.
    Enter,
    /// `esc`.
    Esc,
    /// `tab`.
    Tab,
    /// `backtab` (shift-tab).
    BackTab,
    /// `space`.
    Space,
    /// `backspace`.
    Backspace,
    /// `delete`.
    Delete,
    /// `insert`.
    Insert,
    /// `up`.
    Up,
    /// `down`.
    Down,
    /// `left`.
    Left,
    /// `right`.
    Right,
    /// `home`.
    Home,
    /// `end`.
    End,
    /// `pageup`.
    PageUp,
    /// `pagedown`.
    PageDown,
}

/// Names of [`NamedKey`]s as written in the file.
const NAMED: [(&str, NamedKey); 16] = [
    ("enter", NamedKey::Enter),
    ("esc", NamedKey::Esc),
    ("tab", NamedKey::Tab),
    ("backtab", NamedKey::BackTab),
    ("space", NamedKey::Space),
    ("backspace", NamedKey::Backspace),
    ("delete", NamedKey::Delete),
    ("insert", NamedKey::Insert),
    ("up", NamedKey::Up),
    ("down", NamedKey::Down),
    ("left", NamedKey::Left),
    ("right", NamedKey::Right),
    ("home", NamedKey::Home),
    ("end", NamedKey::End),
    ("pageup", NamedKey::PageUp),
    ("pagedown", NamedKey::PageDown),
];

/// The key itself, without modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyCode {
    /// A printable character, case-sensitive (`T` is shift-t).
    Char(char),
    /// A named key.
    Named(NamedKey),
    /// A function key, `f1` to `f12`.
    F(u8),
}

/// One key as written in `[keys]`: `ctrl-` and `alt-` prefixes, then a character or a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    /// Control held.
    pub ctrl: bool,
    /// Alt held.
    pub alt: bool,
    /// The key.
    pub code: KeyCode,
}

impl KeySpec {
    /// A key without modifiers.
    pub const fn plain(code: KeyCode) -> Self {
        Self {
            ctrl: false,
            alt: false,
            code,
        }
    }

    /// Parses one key name: `d`, `T`, `?`, `space`, `enter`, `esc`, `tab`, `f1`, `ctrl-t`,
    /// `alt-x`, `shift-tab`. Names are case-insensitive, single characters are not.
    pub fn parse(text: &str) -> Result<KeySpec, String> {
        let mut rest = text;
        let (mut ctrl, mut alt, mut shift) = (false, false, false);
        // A lone "-" (or a trailing one) is the minus key, not a modifier separator.
        while let Some((prefix, tail)) = rest.split_once('-').filter(|(_, t)| !t.is_empty()) {
            match prefix.to_ascii_lowercase().as_str() {
                "ctrl" => ctrl = true,
                "alt" => alt = true,
                "shift" => shift = true,
                _ => {
                    return Err(format!(
                        "unknown modifier `{prefix}` in `{text}`: use ctrl-, alt- or shift-"
                    ))
                }
            }
            rest = tail;
        }
        let mut chars = rest.chars();
        let code = match (chars.next(), chars.next()) {
            (Some(c), None) if !c.is_whitespace() && !c.is_control() => {
                KeyCode::Char(if shift { c.to_ascii_uppercase() } else { c })
            }
            _ => {
                let lower = rest.to_ascii_lowercase();
                if let Some((_, named)) = NAMED.iter().find(|(n, _)| *n == lower) {
                    match named {
                        NamedKey::Tab if shift => KeyCode::Named(NamedKey::BackTab),
                        other => KeyCode::Named(*other),
                    }
                } else if let Some(n) = lower
                    .strip_prefix('f')
                    .and_then(|n| n.parse::<u8>().ok())
                    .filter(|n| (1..=12).contains(n))
                {
                    KeyCode::F(n)
                } else {
                    let names: Vec<&str> = NAMED.iter().map(|(n, _)| *n).collect();
                    return Err(format!(
                        "unknown key `{text}`: write one character (`d`, `T`, `?`), f1 to f12, \
                         or one of {}, optionally after ctrl- or alt-",
                        names.join(", ")
                    ));
                }
            }
        };
        Ok(KeySpec { ctrl, alt, code })
    }

    /// Parses key names separated by spaces; at least one.
    pub fn parse_list(text: &str) -> Result<Vec<KeySpec>, String> {
        let keys = text
            .split_whitespace()
            .map(KeySpec::parse)
            .collect::<Result<Vec<_>, _>>()?;
        if keys.is_empty() {
            return Err("no key given: write at least one key name, e.g. \"d\"".to_owned());
        }
        Ok(keys)
    }
}

impl fmt::Display for KeySpec {
    /// The key as written in the file (and shown on screen): `ctrl-t`, `T`, `space`, `f1`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::F(n) => write!(f, "f{n}"),
            KeyCode::Named(named) => {
                let name = NAMED
                    .iter()
                    .find(|(_, k)| *k == named)
                    .map_or("?", |(n, _)| *n);
                f.write_str(name)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_parse_and_print_back() {
        for text in [
            "d",
            "T",
            "?",
            ":",
            "/",
            "-",
            "space",
            "enter",
            "esc",
            "tab",
            "f1",
            "f12",
            "ctrl-t",
            "alt-x",
            "ctrl-alt-k",
            "backtab",
            "pagedown",
        ] {
            let key = KeySpec::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(key.to_string(), text);
        }
        assert_eq!(
            KeySpec::parse("Ctrl-Enter"),
            Ok(KeySpec {
                ctrl: true,
                alt: false,
                code: KeyCode::Named(NamedKey::Enter)
            })
        );
        assert_eq!(
            KeySpec::parse("shift-t").map(|k| k.code),
            Ok(KeyCode::Char('T'))
        );
        assert_eq!(
            KeySpec::parse("shift-tab").map(|k| k.code),
            Ok(KeyCode::Named(NamedKey::BackTab))
        );
    }

    #[test]
    fn bad_key_names_say_what_to_write() {
        for (text, start) in [
            ("spcae", "unknown key `spcae`: write one character"),
            ("f13", "unknown key `f13`"),
            ("hyper-x", "unknown modifier `hyper` in `hyper-x`"),
            ("ctrl-", "unknown key `ctrl-`"),
        ] {
            let message = KeySpec::parse(text).expect_err(text);
            assert!(message.starts_with(start), "{text}: {message}");
        }
        assert!(KeySpec::parse_list("  ").is_err());
        assert_eq!(KeySpec::parse_list("a enter").map(|k| k.len()), Ok(2));
    }

    #[test]
    fn problems_name_the_action() {
        let keys = Keys {
            hangup: Some("x".into()),
            mute: Some("ctrl-mute".into()),
            ..Keys::default()
        };
        assert_eq!(keys.rebound(), [("hangup", "x"), ("mute", "ctrl-mute")]);
        let mut out = Vec::new();
        keys.problems(&mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].keys, ["keys.mute"]);
        assert!(out[0].message.contains("unknown key `ctrl-mute`"));
    }
}
