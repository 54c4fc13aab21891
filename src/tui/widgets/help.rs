//! The help overlay: every action with its keys, the keypad digits and the picker's keys.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

use super::popup::centred;
use crate::tui::keymap::{Action, Keymap};

/// Draws the help overlay over `area`.
pub fn render(frame: &mut Frame, area: Rect, keymap: &Keymap) {
    let key = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
    let row = |keys: String, what: &str| {
        Line::from(vec![
            Span::styled(format!(" {keys:<11}"), key),
            Span::raw(what.to_owned()),
        ])
    };
    let mut lines: Vec<Line> = Action::all()
        .map(|a| row(keymap.keys_label(a), a.help()))
        .collect();
    lines.push(row("0-9 * #".to_owned(), "DTMF digits while connected"));
    lines.push(row(
        "picker".to_owned(),
        "type to filter · ↑↓ · enter picks · esc",
    ));
    let popup = centred(area, 62, lines.len() as u16 + 2);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(" Keys (any key closes) "),
        ),
        popup,
    );
}
