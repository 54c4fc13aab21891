//! The busy lamp row: each watched extension with a coloured lamp and its state, shown only
//! when the account watches some (`[[account]] blf`).

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::sip::BlfState;

/// Draws `lamps` on one line: ` BLF  201 ● idle   202 ◉ ringing …`.
pub fn render(frame: &mut Frame, area: Rect, lamps: &[(String, BlfState)]) {
    let mut spans = vec![Span::styled(
        " BLF ",
        Style::new().add_modifier(Modifier::BOLD),
    )];
    for (ext, state) in lamps {
        let (mark, word, colour) = match state {
            BlfState::Idle => ("●", "idle", Color::Green),
            BlfState::Ringing => ("◉", "ringing", Color::Yellow),
            BlfState::Busy => ("●", "busy", Color::Red),
            BlfState::Unknown => ("○", "?", Color::DarkGray),
        };
        spans.push(Span::raw(format!(" {ext} ")));
        let mut style = Style::new().fg(colour);
        if *state == BlfState::Ringing {
            style = style.add_modifier(Modifier::BOLD);
        }
        spans.push(Span::styled(format!("{mark} {word} "), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}
