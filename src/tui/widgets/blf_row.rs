//! The busy lamp row: each configured extension (`[[account]] blf`) with a coloured lamp and
//! its state, shown only when the account has some; and [`lamp`], the lamp itself, which the
//! picker shows too.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::sip::BlfState;

/// Draws `lamps` on one line: ` BLF  201 ● idle  202 ◉ ringing …`.
pub fn render(frame: &mut Frame, area: Rect, lamps: &[(String, BlfState)]) {
    let mut spans = vec![Span::styled(
        " BLF ",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for (ext, state) in lamps {
        spans.push(Span::raw(format!(" {ext} ")));
        spans.push(lamp(*state));
        spans.push(Span::raw(" "));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A lamp as a coloured mark and word: idle green, ringing yellow (bold), busy red, unknown
/// grey.
pub fn lamp(state: BlfState) -> Span<'static> {
    let (text, colour) = match state {
        BlfState::Idle => ("● idle", Color::Green),
        BlfState::Ringing => ("◉ ringing", Color::Yellow),
        BlfState::Busy => ("● busy", Color::Red),
        BlfState::Unknown => ("○ unknown", Color::DarkGray),
    };
    let mut style = Style::new().fg(colour);
    if state == BlfState::Ringing {
        style = style.add_modifier(Modifier::BOLD);
    }
    Span::styled(text, style)
}
