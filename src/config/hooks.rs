//! The `[hooks]` section: shell commands run on call events (screen pop), with their checks.
//!
//! Like the rest of `config`, this only turns text into checked values; [`crate::hooks`] runs
//! the commands.

use serde::Deserialize;

use super::Problem;

/// Bounds for `timeout`, in seconds.
const TIMEOUT_RANGE: std::ops::RangeInclusive<u32> = 1..=3600;

/// The `[hooks]` section. Each hook is a command line run with `sh -c`; `None`: nothing runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Hooks {
    /// Run when a call arrives.
    pub on_incoming: Option<String>,
    /// Run when a call is answered (connected for the first time), either direction.
    pub on_answer: Option<String>,
    /// Run when a call ends, answered or not.
    pub on_hangup: Option<String>,
    /// Run when a transfer succeeds or fails.
    pub on_transfer: Option<String>,
    /// Run when a call's wrap-up closes (`[wrapup]`): saved, skipped or expired.
    pub on_wrapup: Option<String>,
    /// Seconds a hook may run before it is killed, 1 to 3600. Default 10.
    pub timeout: u32,
}

impl Default for Hooks {
    fn default() -> Self {
        Self {
            on_incoming: None,
            on_answer: None,
            on_hangup: None,
            on_transfer: None,
            on_wrapup: None,
            timeout: 10,
        }
    }
}

impl Hooks {
    /// Problems within `[hooks]`.
    pub(super) fn problems(&self, out: &mut Vec<Problem>) {
        for (name, command) in [
            ("on_incoming", &self.on_incoming),
            ("on_answer", &self.on_answer),
            ("on_hangup", &self.on_hangup),
            ("on_transfer", &self.on_transfer),
            ("on_wrapup", &self.on_wrapup),
        ] {
            if let Some(command) = command {
                if command.trim().is_empty() {
                    out.push(Problem::new(
                        format!("hooks.{name}"),
                        "must not be empty; remove the key to run nothing",
                    ));
                } else if command.contains('\0') {
                    out.push(Problem::new(
                        format!("hooks.{name}"),
                        "must not contain a NUL character",
                    ));
                }
            }
        }
        if !TIMEOUT_RANGE.contains(&self.timeout) {
            out.push(Problem::new(
                "hooks.timeout",
                format!(
                    "{} seconds is out of range: use {} to {}",
                    self.timeout,
                    TIMEOUT_RANGE.start(),
                    TIMEOUT_RANGE.end()
                ),
            ));
        }
    }
}
