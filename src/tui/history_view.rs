//! The call history view's model: the records read from the history file when the view opens
//! (newest first), turned into rows of plain words, and the selection. Enter calls the selected
//! number back. Reading the file is the run loop's job ([`super::Effect::LoadHistory`]); this
//! module only formats.

use std::time::{Duration, SystemTime};

use crate::history::{Direction, Record};

/// One row of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    /// `in` or `out`.
    pub direction: &'static str,
    /// The name when known, else the number.
    pub who: String,
    /// The number to call back.
    pub number: String,
    /// How long ago the call started: `just now`, `5 min ago`, `3 h ago`, `2 d ago`.
    pub when: String,
    /// How long it lasted, `m:ss`.
    pub duration: String,
    /// How it ended, in words (`answered`, `missed`, `transferred to 202`, …).
    pub outcome: String,
    /// The call did not reach anyone (missed, busy, failed, transfer failed…).
    pub failed: bool,
}

/// The open view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryList {
    /// Rows, newest call first.
    pub rows: Vec<HistoryRow>,
    /// The selected row.
    pub selected: usize,
    /// Why there is nothing to show, if the file could not be read.
    pub problem: Option<String>,
}

impl HistoryList {
    /// The view of `records` (any order) as of `now`; `name_for` finds names the records lack.
    pub fn new(
        records: &[Record],
        now: SystemTime,
        mut name_for: impl FnMut(&str) -> Option<String>,
    ) -> HistoryList {
        let mut sorted: Vec<&Record> = records.iter().collect();
        sorted.sort_by_key(|r| std::cmp::Reverse(r.started));
        let rows = sorted
            .into_iter()
            .map(|r| {
                let name = r.name.clone().or_else(|| name_for(&r.number));
                let who = match name {
                    Some(name) if !r.number.is_empty() => format!("{name} ({})", r.number),
                    Some(name) => name,
                    None => r.number.clone(),
                };
                let outcome = r.outcome.to_string();
                HistoryRow {
                    direction: match r.direction {
                        Direction::In => "in",
                        Direction::Out => "out",
                    },
                    who,
                    number: r.number.clone(),
                    when: ago(now.duration_since(r.started).unwrap_or_default()),
                    duration: format!("{}:{:02}", r.duration_s / 60, r.duration_s % 60),
                    failed: !matches!(
                        r.outcome,
                        crate::history::Outcome::Answered
                            | crate::history::Outcome::Transferred { .. }
                    ),
                    outcome,
                }
            })
            .collect();
        HistoryList {
            rows,
            selected: 0,
            problem: None,
        }
    }

    /// A view that could not be filled.
    pub fn unavailable(problem: String) -> HistoryList {
        HistoryList {
            rows: Vec::new(),
            selected: 0,
            problem: Some(problem),
        }
    }

    /// Moves the selection by `delta` rows, within the list.
    pub fn step(&mut self, delta: isize) {
        let last = self.rows.len().saturating_sub(1);
        self.selected = self.selected.saturating_add_signed(delta).min(last);
    }

    /// The selected row.
    pub fn current(&self) -> Option<&HistoryRow> {
        self.rows.get(self.selected)
    }
}

/// A coarse age: `just now`, `5 min ago`, `3 h ago`, `2 d ago`.
fn ago(age: Duration) -> String {
    let s = age.as_secs();
    match s {
        0..60 => "just now".to_owned(),
        60..3_600 => format!("{} min ago", s / 60),
        3_600..86_400 => format!("{} h ago", s / 3_600),
        _ => format!("{} d ago", s / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Outcome;

    fn record(started: SystemTime, number: &str, name: Option<&str>, outcome: Outcome) -> Record {
        Record {
            started,
            direction: Direction::In,
            number: number.into(),
            uri: format!("sip:{number}@pbx"),
            name: name.map(str::to_owned),
            line: 1,
            call_id: format!("c-{number}"),
            duration_s: 83,
            outcome,
            reason: None,
            wrapup: None,
        }
    }

    #[test]
    fn rows_are_newest_first_in_words() {
        let base = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let records = vec![
            record(base, "201", Some("Anna"), Outcome::Answered),
            record(
                base + Duration::from_secs(3_000),
                "202",
                None,
                Outcome::Transferred {
                    to: "sip:300@pbx".into(),
                },
            ),
            record(
                base + Duration::from_secs(3_590),
                "203",
                None,
                Outcome::Missed,
            ),
        ];
        let now = base + Duration::from_secs(3_600);
        let view = HistoryList::new(&records, now, |n| (n == "202").then(|| "Bob".to_owned()));
        let words: Vec<(String, String, String, bool)> = view
            .rows
            .iter()
            .map(|r| (r.who.clone(), r.when.clone(), r.outcome.clone(), r.failed))
            .collect();
        assert_eq!(
            words,
            vec![
                ("203".into(), "just now".into(), "missed".into(), true),
                (
                    "Bob (202)".into(),
                    "10 min ago".into(),
                    "transferred to 300".into(),
                    false
                ),
                (
                    "Anna (201)".into(),
                    "1 h ago".into(),
                    "answered".into(),
                    false
                ),
            ]
        );
        assert_eq!(view.rows[0].duration, "1:23");
        assert_eq!(view.rows[0].direction, "in");
    }

    #[test]
    fn selection_stays_within_the_rows() {
        let base = SystemTime::UNIX_EPOCH;
        let records = vec![
            record(base, "201", None, Outcome::Answered),
            record(base, "202", None, Outcome::Answered),
        ];
        let mut view = HistoryList::new(&records, base, |_| None);
        view.step(-3);
        assert_eq!(view.selected, 0);
        view.step(5);
        assert_eq!(view.selected, 1);
        let mut empty = HistoryList::unavailable("no history file".into());
        empty.step(1);
        assert_eq!(empty.current(), None);
        assert_eq!(ago(Duration::from_secs(2 * 86_400 + 5)), "2 d ago");
    }
}
