//! The help overlay: every action with its keys, the keypad digits and the picker's keys.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

use super::popup::centred;
use crate::tui::keymap::{Action, Keymap};

/// The width of one column of keys and what they do.
const COLUMN: u16 = 58;

/// Draws the help overlay over `area`, in two columns when one does not fit its height.
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
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(" Keys (any key closes) ");
    let one_column = lines.len() as u16 + 2;
    if one_column <= area.height || area.width < 2 * COLUMN + 3 {
        let popup = centred(area, COLUMN + 4, one_column);
        frame.render_widget(Clear, popup);
        frame.render_widget(Paragraph::new(lines).block(block), popup);
        return;
    }
    // Too tall for the screen: two columns side by side, the second taking the rest.
    let rows = lines.len().div_ceil(2);
    let popup = centred(area, 2 * COLUMN + 3, rows as u16 + 2);
    frame.render_widget(Clear, popup);
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let second = lines.split_off(rows);
    let [left, right] =
        Layout::horizontal([Constraint::Length(COLUMN + 1), Constraint::Fill(1)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), left);
    frame.render_widget(Paragraph::new(second), right);
}
