//! The `[[route]]` tables: outbound routes by number pattern, with their checks.
//!
//! Like the rest of `config`, this only turns text into checked values. The pattern language
//! and the choice of a route live in [`crate::route`]; here a pattern is only parsed to report
//! a mistake at its key.

use serde::Deserialize;

use super::{Account, Problem};
use crate::route::Pattern;

/// One `[[route]]` table: numbers matching `pattern` are dialled through `account`, after
/// removing `strip` leading characters and adding `prefix`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Short name the operator picks the route by (`route <name>`); unique among routes.
    pub name: String,
    /// An Asterisk extension pattern (`_NXXXXXX`, `_9X.`, `_+X.`) or a literal number.
    pub pattern: String,
    /// The `[[account]]` to call from, by name; `None`: the account in use (`--account`, else
    /// the first).
    #[serde(default)]
    pub account: Option<String>,
    /// How many leading characters to remove from the dialled number. Default 0.
    #[serde(default)]
    pub strip: usize,
    /// Characters to put in front of the number after stripping. Default none.
    #[serde(default)]
    pub prefix: String,
}

impl Route {
    /// Problems within `route[index]`; `routes` and `accounts` are all of them, to check that
    /// names are unique and that `account` names one.
    pub(super) fn problems(
        &self,
        index: usize,
        routes: &[Route],
        accounts: &[Account],
        out: &mut Vec<Problem>,
    ) {
        let key = |field: &str| format!("route[{index}].{field}");
        if self.name.trim().is_empty() {
            out.push(Problem::new(key("name"), "must not be empty"));
        } else if self.name.chars().any(char::is_whitespace) {
            out.push(Problem::new(
                key("name"),
                "must not contain spaces (it is typed after `route`)",
            ));
        } else if let Some(first) = routes[..index].iter().position(|r| r.name == self.name) {
            out.push(Problem::new(
                key("name"),
                format!(
                    "the name `{}` is already used by route[{first}]; route names must be unique",
                    self.name
                ),
            ));
        }
        if let Err(error) = Pattern::parse(&self.pattern) {
            out.push(Problem::new(
                key("pattern"),
                format!("`{}`: {error}", self.pattern),
            ));
        }
        if let Some(account) = &self.account {
            if !accounts.iter().any(|a| &a.name == account) {
                let names: Vec<String> = accounts.iter().map(|a| format!("`{}`", a.name)).collect();
                let known = if names.is_empty() {
                    "no [[account]] is configured".to_owned()
                } else {
                    format!("accounts: {}", names.join(", "))
                };
                out.push(Problem::new(
                    key("account"),
                    format!("there is no account named `{account}`; {known}"),
                ));
            }
        }
        if let Some(bad) = self
            .prefix
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '*' | '#')))
        {
            out.push(Problem::new(
                key("prefix"),
                format!("`{bad}` cannot be dialled; use letters, digits, `+`, `*` and `#`"),
            ));
        }
    }
}
