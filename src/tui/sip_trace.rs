//! The SIP trace pane's model: the messages reported by `sip` events while the pane is shown
//! (newest last, at most [`KEEP`]), which one is selected, and whether its full text is open.
//! A small sngrep inside the softphone. No drawing here (see `widgets::trace_pane`).

use std::collections::VecDeque;
use std::time::Instant;

use crate::front::TraceDirection;

/// How many messages the pane keeps.
pub const KEEP: usize = 500;

/// One traced message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceEntry {
    /// When the screen got it.
    pub at: Instant,
    /// Sent or received.
    pub direction: TraceDirection,
    /// The other end (`ip:port`).
    pub peer: String,
    /// The whole message (secrets redacted unless `raw`).
    pub message: String,
    /// Traced with `trace on raw`: credentials and SRTP keys are in the text.
    pub raw: bool,
}

impl TraceEntry {
    /// The request or status line.
    pub fn first_line(&self) -> &str {
        self.message.lines().next().unwrap_or_default()
    }
}

/// The pane's state.
#[derive(Debug, Clone, Default)]
pub struct SipTrace {
    /// The messages, oldest first.
    pub entries: VecDeque<TraceEntry>,
    /// The pane is on screen (and the driver reports messages).
    pub visible: bool,
    /// The selected entry (index into `entries`), `None` to follow the newest.
    pub selected: Option<usize>,
    /// The selected message is shown in full.
    pub detail: bool,
    /// The driver traces raw messages (`trace on raw`): the pane says so.
    pub raw: bool,
}

impl SipTrace {
    /// Adds a message; the oldest goes beyond [`KEEP`] (a held selection moves with its entry).
    pub fn push(&mut self, entry: TraceEntry) {
        self.entries.push_back(entry);
        if self.entries.len() > KEEP {
            self.entries.pop_front();
            self.selected = self.selected.map(|s| s.saturating_sub(1));
        }
    }

    /// The entry the pane points at: the selected one, else the newest.
    pub fn current(&self) -> Option<usize> {
        self.selected
            .or_else(|| self.entries.len().checked_sub(1))
            .filter(|i| *i < self.entries.len())
    }

    /// Moves the selection by `delta` rows (negative: older); moving past the newest follows
    /// new messages again.
    pub fn step(&mut self, delta: isize) {
        let Some(current) = self.current() else {
            return;
        };
        let last = self.entries.len() - 1;
        let next = current.saturating_add_signed(delta).min(last);
        self.selected = (next != last).then_some(next);
    }

    /// Shows or hides the pane; hiding closes the full message and forgets the selection.
    pub fn set_visible(&mut self, visible: bool) {
        self.visible = visible;
        if !visible {
            self.detail = false;
            self.selected = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[allow(clippy::disallowed_methods)] // a fixed instant for the entries
    fn entry(n: usize) -> TraceEntry {
        TraceEntry {
            at: Instant::now(),
            direction: TraceDirection::Out,
            peer: "127.0.0.1:5060".into(),
            message: format!("OPTIONS sip:{n}@x SIP/2.0\r\nCSeq: {n} OPTIONS\r\n\r\n"),
            raw: false,
        }
    }

    #[test]
    fn follows_the_newest_until_the_operator_looks_back() {
        let mut trace = SipTrace::default();
        assert_eq!(trace.current(), None);
        trace.step(-1);
        for n in 0..3 {
            trace.push(entry(n));
        }
        assert_eq!(trace.current(), Some(2));
        assert_eq!(trace.entries[2].first_line(), "OPTIONS sip:2@x SIP/2.0");
        trace.step(-1);
        trace.push(entry(3));
        assert_eq!(trace.current(), Some(1), "a held selection stays put");
        trace.step(5);
        assert_eq!(trace.selected, None, "past the newest follows again");
        assert_eq!(trace.current(), Some(3));
        trace.step(-10);
        assert_eq!(trace.current(), Some(0));
    }

    #[test]
    fn keeps_the_last_messages_and_moves_the_selection_with_them() {
        let mut trace = SipTrace::default();
        for n in 0..KEEP {
            trace.push(entry(n));
        }
        trace.step(-1);
        let held = trace.current().expect("an entry");
        let text = trace.entries[held].message.clone();
        trace.push(entry(KEEP));
        assert_eq!(trace.entries.len(), KEEP);
        let now = trace.current().expect("an entry");
        assert_eq!(trace.entries[now].message, text);
        trace.detail = true;
        trace.set_visible(false);
        assert!(!trace.detail && trace.selected.is_none());
    }
}
