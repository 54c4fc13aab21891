//! Which key runs which [`Action`]: the defaults, patched by the `[keys]` section, and the
//! translation of terminal key presses into the configuration's [`KeySpec`]s.
//!
//! The same table feeds key matching, the footer and the help overlay, so what is shown is what
//! works. This module decides nothing about call state: the app picks, among the actions bound
//! to a key, the first one that makes sense now.

use crossterm::event::{KeyCode as TermKey, KeyEvent, KeyModifiers};

use crate::config::{KeyCode, KeySpec, Keys, NamedKey};

/// Something the operator can do with one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Open the picker to place a call.
    Dial,
    /// Answer the ringing call.
    Answer,
    /// Hang up (or cancel, or reject) the call on the selected line.
    Hangup,
    /// Hold or resume the selected call.
    Hold,
    /// Switch to the other line.
    Swap,
    /// Blind transfer: pick the target.
    Transfer,
    /// Attended transfer: pick the party to consult.
    Consult,
    /// Complete the attended transfer.
    Complete,
    /// Cancel the attended transfer.
    Cancel,
    /// Mute or unmute the microphone.
    Mute,
    /// Start or stop recording.
    Record,
    /// Join both lines.
    Conference,
    /// Pick up a call ringing elsewhere.
    Pickup,
    /// Choose the outbound route.
    Route,
    /// Open the directory picker on its own.
    Search,
    /// Open the `:` command line.
    Command,
    /// Show or hide the SIP trace pane.
    Trace,
    /// Switch noise suppression on or off.
    NoiseSuppression,
    /// Switch automatic gain control on or off.
    Agc,
    /// Show the call history.
    History,
    /// Open the sound check (devices, level meter, test tone, echo).
    SoundCheck,
    /// Add the selected call's party to the personal book.
    AddContact,
    /// Do not disturb on or off.
    Dnd,
    /// Show every key.
    Help,
    /// Quit.
    Quit,
    /// Show or hide the favourites panel.
    Favourites,
    /// Park the selected call on the PBX.
    Park,
}

/// Every action with its `[keys]` name, default keys and help text, in help order.
const ACTIONS: [(Action, &str, &str, &str); 27] = [
    (Action::Dial, "dial", "d", "call a number or a contact"),
    (
        Action::Answer,
        "answer",
        "a enter",
        "answer the ringing call",
    ),
    (Action::Hangup, "hangup", "h", "hang up, cancel or reject"),
    (Action::Hold, "hold", "space", "hold / resume"),
    (Action::Swap, "swap", "tab", "switch line (holds the call)"),
    (Action::Transfer, "transfer", "t", "blind transfer"),
    (
        Action::Consult,
        "consult",
        "T",
        "attended transfer: consult first",
    ),
    (
        Action::Complete,
        "complete",
        "c enter",
        "complete the transfer",
    ),
    (Action::Cancel, "cancel", "esc", "cancel the transfer"),
    (Action::Mute, "mute", "m", "mute / unmute"),
    (Action::Record, "record", "r", "record / stop"),
    (
        Action::Conference,
        "conference",
        "k",
        "join the lines / split",
    ),
    (
        Action::Pickup,
        "pickup",
        "p",
        "pick up a call ringing elsewhere",
    ),
    (Action::Route, "route", "o", "choose the outbound route"),
    (
        Action::Search,
        "search",
        "/",
        "search the directory (enter dials)",
    ),
    (
        Action::Command,
        "command",
        ":",
        "type a command (dial 200, hold 2, …)",
    ),
    (
        Action::AddContact,
        "add_contact",
        "b",
        "add the caller to your personal book",
    ),
    (
        Action::History,
        "history",
        "H",
        "call history (enter calls back)",
    ),
    (
        Action::Trace,
        "trace",
        "s",
        "SIP trace pane (↑↓ choose, enter full message)",
    ),
    (
        Action::NoiseSuppression,
        "noise_suppression",
        "n",
        "noise suppression on / off",
    ),
    (Action::Agc, "agc", "g", "automatic gain control on / off"),
    (
        Action::SoundCheck,
        "sound_check",
        "v",
        "sound check: devices, level, tone, echo",
    ),
    (Action::Dnd, "dnd", "D", "do not disturb on / off"),
    (
        Action::Favourites,
        "favourites",
        "f",
        "favourites panel on / off",
    ),
    (Action::Park, "park", "P", "park the call on the PBX"),
    (Action::Help, "help", "? f1", "this help"),
    (Action::Quit, "quit", "q", "quit"),
];

impl Action {
    /// Every action, in help order.
    pub fn all() -> impl Iterator<Item = Action> {
        ACTIONS.iter().map(|(action, ..)| *action)
    }

    /// The action's name in `[keys]` and in the footer.
    pub fn name(self) -> &'static str {
        self.entry().1
    }

    /// What the action does, for the help overlay.
    pub fn help(self) -> &'static str {
        self.entry().3
    }

    fn entry(self) -> &'static (Action, &'static str, &'static str, &'static str) {
        ACTIONS
            .iter()
            .find(|(a, ..)| *a == self)
            .expect("ACTIONS lists every action")
    }
}

/// The keys bound to each action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    bindings: Vec<(Action, Vec<KeySpec>)>,
}

impl Keymap {
    /// The defaults with the `[keys]` section applied. A key name that does not parse is an
    /// error naming the action (`keys.quit: unknown key …`); a loaded configuration has been
    /// checked already, so this only fails for hand-built [`Keys`].
    pub fn new(keys: &Keys) -> Result<Keymap, String> {
        let mut bindings = Vec::with_capacity(ACTIONS.len());
        for (action, name, default, _) in ACTIONS {
            let text = keys
                .rebound()
                .into_iter()
                .find(|(n, _)| *n == name)
                .map_or(default, |(_, k)| k);
            let specs = KeySpec::parse_list(text).map_err(|e| format!("keys.{name}: {e}"))?;
            bindings.push((action, specs));
        }
        Ok(Keymap { bindings })
    }

    /// The actions bound to `key`, in help order.
    pub fn actions_for(&self, key: &KeySpec) -> Vec<Action> {
        self.bindings
            .iter()
            .filter(|(_, specs)| specs.contains(key))
            .map(|(action, _)| *action)
            .collect()
    }

    /// The keys of `action`, as shown on screen (`a/enter`).
    pub fn keys_label(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .map(|(_, specs)| {
                specs
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .unwrap_or_default()
    }

    /// The first key of `action`, as shown in the footer.
    pub fn first_key(&self, action: Action) -> String {
        self.bindings
            .iter()
            .find(|(a, _)| *a == action)
            .and_then(|(_, specs)| specs.first())
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap::new(&Keys::default()).expect("the default keys parse")
    }
}

/// A terminal key press as a [`KeySpec`]; `None` for keys no binding can name.
pub fn spec_of(key: &KeyEvent) -> Option<KeySpec> {
    let code = match key.code {
        TermKey::Char(' ') => KeyCode::Named(NamedKey::Space),
        TermKey::Char(c) => KeyCode::Char(c),
        TermKey::Enter => KeyCode::Named(NamedKey::Enter),
        TermKey::Esc => KeyCode::Named(NamedKey::Esc),
        TermKey::Tab => KeyCode::Named(NamedKey::Tab),
        TermKey::BackTab => KeyCode::Named(NamedKey::BackTab),
        TermKey::Backspace => KeyCode::Named(NamedKey::Backspace),
        TermKey::Delete => KeyCode::Named(NamedKey::Delete),
        TermKey::Insert => KeyCode::Named(NamedKey::Insert),
        TermKey::Up => KeyCode::Named(NamedKey::Up),
        TermKey::Down => KeyCode::Named(NamedKey::Down),
        TermKey::Left => KeyCode::Named(NamedKey::Left),
        TermKey::Right => KeyCode::Named(NamedKey::Right),
        TermKey::Home => KeyCode::Named(NamedKey::Home),
        TermKey::End => KeyCode::Named(NamedKey::End),
        TermKey::PageUp => KeyCode::Named(NamedKey::PageUp),
        TermKey::PageDown => KeyCode::Named(NamedKey::PageDown),
        TermKey::F(n) => KeyCode::F(n),
        _ => return None,
    };
    Some(KeySpec {
        ctrl: key.modifiers.contains(KeyModifiers::CONTROL),
        alt: key.modifiers.contains(KeyModifiers::ALT),
        code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(code: TermKey, modifiers: KeyModifiers) -> KeySpec {
        spec_of(&KeyEvent::new(code, modifiers)).expect("bindable")
    }

    #[test]
    fn defaults_cover_every_action() {
        let map = Keymap::default();
        for action in Action::all() {
            assert!(!map.first_key(action).is_empty(), "{action:?}");
        }
        let enter = press(TermKey::Enter, KeyModifiers::NONE);
        assert_eq!(map.actions_for(&enter), [Action::Answer, Action::Complete]);
        let shift_t = press(TermKey::Char('T'), KeyModifiers::SHIFT);
        assert_eq!(map.actions_for(&shift_t), [Action::Consult]);
        assert_eq!(map.keys_label(Action::Answer), "a/enter");
        assert_eq!(Action::Consult.name(), "consult");
    }

    #[test]
    fn rebinding_replaces_the_default() {
        let keys = Keys {
            transfer: Some("ctrl-t f5".into()),
            ..Keys::default()
        };
        let map = Keymap::new(&keys).expect("valid");
        let ctrl_t = press(TermKey::Char('t'), KeyModifiers::CONTROL);
        assert_eq!(map.actions_for(&ctrl_t), [Action::Transfer]);
        assert_eq!(
            map.actions_for(&press(TermKey::F(5), KeyModifiers::NONE)),
            [Action::Transfer]
        );
        assert!(map
            .actions_for(&press(TermKey::Char('t'), KeyModifiers::NONE))
            .is_empty());
        let bad = Keys {
            quit: Some("ctrl-banana".into()),
            ..Keys::default()
        };
        let error = Keymap::new(&bad).expect_err("unknown key");
        assert!(
            error.starts_with("keys.quit: unknown key `ctrl-banana`"),
            "{error}"
        );
    }

    #[test]
    fn space_is_named() {
        assert_eq!(
            press(TermKey::Char(' '), KeyModifiers::NONE).to_string(),
            "space"
        );
        assert_eq!(
            spec_of(&KeyEvent::new(TermKey::Null, KeyModifiers::NONE)),
            None
        );
    }
}
