//! How calls are answered: the `[wrapup]` section, and the checks of the `[[account]]` keys
//! for do not disturb and auto-answer (`auto_answer`, `auto_answer_delay`,
//! `auto_answer_second`, `dnd_response`, `dnd_on_code`, `dnd_off_code`).
//!
//! Like the rest of `config`, this only turns text into checked values; the policy itself
//! lives in the SIP core (`sip::answer_policy`).

use serde::Deserialize;

use super::{dialable, Account, Problem};

/// Bounds for `[[account]] auto_answer_delay`, in milliseconds.
const DELAY_RANGE: std::ops::RangeInclusive<u32> = 0..=60_000;
/// Bounds for `[wrapup] seconds` (0: no limit).
const SECONDS_RANGE: std::ops::RangeInclusive<u32> = 0..=3600;
/// The statuses `dnd_response` may name.
const DND_RESPONSES: [u16; 2] = [486, 480];

/// `[[account]] auto_answer`: which calls are answered without the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AutoAnswer {
    /// None (`"off"`), the default.
    #[default]
    Off,
    /// Every call, after `auto_answer_delay`, with a beep in the headset (`"on"`).
    On,
    /// Only calls that ask for it: `Call-Info: …;answer-after=N`, `Alert-Info:
    /// …;info=alert-autoanswer` or `Answer-Mode: Auto` (`"intercom"`).
    Intercom,
}

/// The `[wrapup]` section: the after-call step (disposition code and note). It runs after
/// every answered call when `codes` is not empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Wrapup {
    /// The disposition codes offered, one word each (e.g. `["sale", "callback"]`).
    pub codes: Vec<String>,
    /// A code must be chosen: it cannot be skipped (the time limit still closes it).
    pub required: bool,
    /// Seconds before the wrap-up closes itself with no code, 0 to 3600; 0: no limit.
    /// Default 30.
    pub seconds: u32,
    /// While a wrap-up is open, new calls are answered 486 Busy Here and auto-answer waits.
    pub busy_during_wrapup: bool,
}

impl Default for Wrapup {
    fn default() -> Self {
        Self {
            codes: Vec::new(),
            required: false,
            seconds: 30,
            busy_during_wrapup: false,
        }
    }
}

impl Wrapup {
    /// Problems within `[wrapup]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        for (i, code) in self.codes.iter().enumerate() {
            let key = format!("wrapup.codes[{i}]");
            if code.is_empty() || code.chars().any(|c| c.is_whitespace() || c.is_control()) {
                out.push(Problem::new(
                    key,
                    "must be one word (it is typed as `wrapup CODE note…`)",
                ));
            } else if code.eq_ignore_ascii_case("skip") || code == "-" {
                out.push(Problem::new(
                    key,
                    format!("`{code}` is a word of the `wrapup` command: choose another"),
                ));
            } else if self.codes[..i].iter().any(|c| c.eq_ignore_ascii_case(code)) {
                out.push(Problem::new(key, format!("`{code}` is listed twice")));
            }
        }
        if self.required && self.codes.is_empty() {
            out.push(Problem::new(
                "wrapup.required",
                "there is nothing to require: list the codes, e.g. codes = [\"sale\", \"info\"]",
            ));
        }
        if !SECONDS_RANGE.contains(&self.seconds) {
            out.push(Problem::new(
                "wrapup.seconds",
                format!(
                    "{} seconds is out of range: use {} (no limit) to {}",
                    self.seconds,
                    SECONDS_RANGE.start(),
                    SECONDS_RANGE.end()
                ),
            ));
        }
    }
}

impl Account {
    /// Problems with the do-not-disturb and auto-answer keys.
    pub(super) fn answer_problems(&self, index: usize, out: &mut Vec<Problem>) {
        let key = |field: &str| format!("account[{index}].{field}");
        if !DELAY_RANGE.contains(&self.auto_answer_delay) {
            out.push(Problem::new(
                key("auto_answer_delay"),
                format!(
                    "{} ms is out of range: use {} to {}",
                    self.auto_answer_delay,
                    DELAY_RANGE.start(),
                    DELAY_RANGE.end()
                ),
            ));
        }
        if !DND_RESPONSES.contains(&self.dnd_response) {
            out.push(Problem::new(
                key("dnd_response"),
                format!(
                    "{} is not offered: use 486 (Busy Here) or 480 (Temporarily Unavailable)",
                    self.dnd_response
                ),
            ));
        }
        for (field, code) in [
            ("dnd_on_code", &self.dnd_on_code),
            ("dnd_off_code", &self.dnd_off_code),
        ] {
            let Some(code) = code else { continue };
            if code.is_empty() {
                out.push(Problem::new(
                    key(field),
                    "must not be empty; remove the key to refuse calls here",
                ));
            } else if let Some(bad) = code.chars().find(|c| !dialable(*c)) {
                out.push(Problem::new(
                    key(field),
                    format!("`{bad}` cannot be dialled: use digits, letters, *, # and +"),
                ));
            }
        }
    }
}

pub(super) fn default_dnd_response() -> u16 {
    486
}
