//! The call history overlay: newest call first, one row each with direction, who, when, how
//! long and how it ended; failures in red; the selected row highlighted.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

use super::popup::centred;
use crate::tui::history_view::HistoryList;

/// Draws the overlay over `area`.
pub fn render(frame: &mut Frame, area: Rect, list: &HistoryList) {
    let popup = centred(area, 90, area.height.saturating_sub(2));
    let rows = usize::from(popup.height.saturating_sub(2));
    let start = (list.selected + 1).saturating_sub(rows);
    let mut lines: Vec<Line> = list
        .rows
        .iter()
        .enumerate()
        .skip(start)
        .take(rows)
        .map(|(i, r)| {
            let outcome = if r.failed {
                Style::new().fg(Color::LightRed)
            } else {
                Style::new().fg(Color::LightGreen)
            };
            let row = if i == list.selected {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            Line::from(vec![
                Span::raw(format!(" {:<4}", r.direction)),
                Span::styled(
                    format!("{:<32} ", r.who),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                Span::raw(format!("{:<11} {:>6}  ", r.when, r.duration)),
                Span::styled(r.outcome.clone(), outcome),
            ])
            .style(row)
        })
        .collect();
    if lines.is_empty() {
        lines.push(Line::raw(
            list.problem
                .clone()
                .unwrap_or_else(|| "No calls yet.".to_owned()),
        ));
    }
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(" Call history — enter calls back, esc closes "),
        ),
        popup,
    );
}
