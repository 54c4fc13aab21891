//! The SIP trace pane: one row per message (age, direction arrow, peer, first line), the
//! selected one highlighted; with the full message open, that message fills the pane. The
//! titles say when messages are raw (`trace on raw`: credentials and SRTP keys shown).

use std::time::Instant;

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use ratatui::Frame;

use crate::front::TraceDirection;
use crate::tui::sip_trace::SipTrace;

/// Draws the pane in `area`; `focused` when it has the arrows.
pub fn render(frame: &mut Frame, area: Rect, trace: &SipTrace, focused: bool, now: Instant) {
    let border = if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    };
    let current = trace.current();
    if let Some(entry) = current.filter(|_| trace.detail).map(|i| &trace.entries[i]) {
        let raw = if entry.raw {
            " — RAW: credentials and SRTP keys shown"
        } else {
            ""
        };
        let title = format!(
            " {} {}{raw} — esc closes ",
            arrow(entry.direction),
            entry.peer
        );
        let lines: Vec<Line> = entry.message.lines().map(Line::raw).collect();
        frame.render_widget(
            Paragraph::new(lines).wrap(Wrap { trim: false }).block(
                Block::bordered()
                    .border_type(BorderType::Rounded)
                    .border_style(border)
                    .title(title),
            ),
            area,
        );
        return;
    }
    let rows = usize::from(area.height.saturating_sub(2));
    let end = current.map_or(0, |c| (c + 1).max(rows.min(trace.entries.len())));
    let start = end.saturating_sub(rows);
    let lines: Vec<Line> = (start..end)
        .filter_map(|i| trace.entries.get(i).map(|e| (i, e)))
        .map(|(i, e)| {
            let age = now.saturating_duration_since(e.at).as_secs();
            let style = if Some(i) == current && focused {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            };
            let dir = match e.direction {
                TraceDirection::In => Style::new().fg(Color::LightBlue),
                TraceDirection::Out => Style::new().fg(Color::LightGreen),
            };
            Line::from(vec![
                Span::styled(format!("{age:>4}s "), Style::new().fg(Color::DarkGray)),
                Span::styled(format!("{} ", arrow(e.direction)), dir),
                Span::styled(format!("{:<21} ", e.peer), Style::new().fg(Color::DarkGray)),
                Span::raw(e.first_line().to_owned()),
            ])
            .style(style)
        })
        .collect();
    let raw = if trace.raw {
        " — RAW: credentials and SRTP keys shown"
    } else {
        ""
    };
    let title = if trace.entries.is_empty() {
        format!(" SIP trace — waiting for messages{raw} ")
    } else {
        format!(" SIP trace ({}){raw} ", trace.entries.len())
    };
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .border_style(border)
                .title(title),
        ),
        area,
    );
}

fn arrow(direction: TraceDirection) -> &'static str {
    match direction {
        TraceDirection::In => "←",
        TraceDirection::Out => "→",
    }
}
