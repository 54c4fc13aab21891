//! The compact list of the lines without a pane (with more than two lines): one row each,
//! `Line 3  CONFERENCE  1:02  Name (number)`, or `Line 4  idle`.

use std::time::Instant;

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::line_pane::clock;
use crate::sip::LineNo;
use crate::tui::app::App;

/// Draws one row for each of `lines` into `area` (one row per line; extra rows stay empty).
pub fn render(frame: &mut Frame, area: Rect, app: &App, lines: &[LineNo], now: Instant) {
    let rows: Vec<Line> = lines
        .iter()
        .map(|line| {
            let head = Span::styled(format!(" Line {line}  "), Style::new().fg(Color::DarkGray));
            match app.call(*line) {
                None => Line::from(vec![
                    head,
                    Span::styled("idle", Style::new().fg(Color::DarkGray)),
                ]),
                Some(call) => {
                    let word = call.state_word();
                    let colour = match word {
                        "incoming" => Color::Yellow,
                        "connected" => Color::Green,
                        "conference" => Color::LightGreen,
                        "on hold" | "held by peer" | "conference on hold" => Color::Blue,
                        _ => Color::White,
                    };
                    let since = call.connected_at.unwrap_or(call.started);
                    Line::from(vec![
                        head,
                        Span::styled(
                            word.to_uppercase(),
                            Style::new().fg(colour).add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(format!(
                            "  {}  {}",
                            clock(now.saturating_duration_since(since)),
                            call.who()
                        )),
                    ])
                }
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(rows), area);
}
