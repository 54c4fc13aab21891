//! The wrap-up modal: after an answered call ends (`wrapup` event, `[wrapup]`), the
//! disposition codes and a one-line note, over the line panes.
//!
//! ```text
//!  ┌ Wrap-up: Bob (201) ─────────── 27 s ┐   ↑ ↓  choose a code (none, when not required)
//!  │   (no code)                         │   typing  the note; Backspace deletes
//!  │ ▶ sale                              │   Enter   save        Esc  skip (unless required)
//!  │   callback                          │
//!  │ note: paid by card▏                 │   closes itself, with no code, after `seconds`
//!  └ enter save · esc skip ──────────────┘
//! ```
//!
//! This file owns the modal's state ([`WrapupView`]), what its keys do and how it is drawn;
//! the open wrap-ups come and go with the driver's events (the oldest is shown), and the
//! choice goes to the core as [`Command::Wrapup`]. It reads no clock: `now` is handed in.

use std::time::{Duration, Instant};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

use super::widgets::popup::centred;
use crate::sip::{Command, WrapupChoice};

/// The longest note, in characters (one line).
pub const NOTE_MAX: usize = 200;

/// One open wrap-up, as the modal shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapupView {
    /// SIP Call-ID of the call.
    pub call_id: String,
    /// The far end in words (`Name (number)` or the number).
    pub who: String,
    /// The codes offered.
    pub codes: Vec<String>,
    /// A code must be chosen.
    pub required: bool,
    /// When it closes itself, once shown.
    pub until: Option<Instant>,
    /// The limit, started when the wrap-up is shown.
    pub limit: Option<Duration>,
    /// The highlighted code; `None`: no code.
    pub selected: Option<usize>,
    /// The note typed so far.
    pub note: String,
}

impl WrapupView {
    /// A wrap-up for `who`, shown from `now` when `shown`.
    pub fn new(
        call_id: String,
        who: String,
        codes: Vec<String>,
        required: bool,
        seconds: Option<u64>,
    ) -> WrapupView {
        WrapupView {
            call_id,
            who,
            selected: required.then_some(0).filter(|_| !codes.is_empty()),
            codes,
            required,
            until: None,
            limit: seconds.map(Duration::from_secs),
            note: String::new(),
        }
    }

    /// It is shown from `now`: its time starts.
    pub fn show(&mut self, now: Instant) {
        if self.until.is_none() {
            self.until = self.limit.map(|d| now + d);
        }
    }

    /// A key while the modal is shown: the command to send when it is closed, or `None`
    /// (still open; `Err` words for the outcome line when Enter cannot save yet).
    pub fn key(&mut self, key: &KeyEvent) -> Result<Option<Command>, String> {
        match key.code {
            KeyCode::Enter => match (self.selected, self.required) {
                (None, true) => Err("wrap-up: choose a code with ↑ ↓ first".to_owned()),
                (selected, _) => Ok(Some(Command::Wrapup(WrapupChoice::Save {
                    code: selected.and_then(|i| self.codes.get(i).cloned()),
                    note: self.note.trim().to_owned(),
                }))),
            },
            KeyCode::Esc if self.required => {
                Err("wrap-up: a code is required (↑ ↓ then enter)".to_owned())
            }
            KeyCode::Esc => Ok(Some(Command::Wrapup(WrapupChoice::Skip))),
            KeyCode::Down | KeyCode::Tab => {
                let next = self.selected.map_or(0, |i| i + 1);
                if next < self.codes.len() {
                    self.selected = Some(next);
                }
                Ok(None)
            }
            KeyCode::Up | KeyCode::BackTab => {
                self.selected = match self.selected {
                    Some(0) if !self.required => None,
                    Some(i) => Some(i.saturating_sub(1)),
                    None => None,
                };
                Ok(None)
            }
            KeyCode::Backspace => {
                self.note.pop();
                Ok(None)
            }
            KeyCode::Char(c)
                if !key.modifiers.contains(KeyModifiers::CONTROL)
                    && self.note.chars().count() < NOTE_MAX =>
            {
                self.note.push(c);
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    /// Pasted text goes into the note (one line).
    pub fn paste(&mut self, text: &str) {
        for c in text.chars().filter(|c| !c.is_control()) {
            if self.note.chars().count() >= NOTE_MAX {
                break;
            }
            self.note.push(c);
        }
    }
}

/// Draws the modal for `wrapup` over `area` at `now`; `more` wrap-ups wait behind it.
pub fn render(frame: &mut Frame, area: Rect, wrapup: &WrapupView, more: usize, now: Instant) {
    let codes = u16::try_from(wrapup.codes.len()).unwrap_or(u16::MAX);
    let height = (codes + 3 + u16::from(!wrapup.required)).min(area.height);
    let popup = centred(area, 60, height);
    frame.render_widget(Clear, popup);
    let chosen = Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD);
    let mut lines = Vec::new();
    let row = |label: &str, on: bool| {
        if on {
            Line::from(Span::styled(format!(" ▶ {label}"), chosen))
        } else {
            Line::raw(format!("   {label}"))
        }
    };
    if !wrapup.required {
        lines.push(row("(no code)", wrapup.selected.is_none()));
    }
    for (i, code) in wrapup.codes.iter().enumerate() {
        lines.push(row(code, wrapup.selected == Some(i)));
    }
    lines.push(Line::from(vec![
        Span::styled(" note: ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(wrapup.note.clone()),
        Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
    ]));
    let left = wrapup
        .until
        .map(|t| format!(" {} s ", t.saturating_duration_since(now).as_secs()))
        .unwrap_or_default();
    let waiting = if more > 0 {
        format!(" · {more} more waiting")
    } else {
        String::new()
    };
    let keys = if wrapup.required {
        " ↑↓ code · enter save "
    } else {
        " ↑↓ code · enter save · esc skip "
    };
    let block = Block::bordered()
        .border_type(BorderType::Double)
        .title(format!(" Wrap-up: {}{waiting} ", wrapup.who))
        .title(Line::from(left).right_aligned())
        .title_bottom(keys);
    frame.render_widget(Paragraph::new(lines).block(block), popup);
}
