//! One line's pane: state word and timer, the far end's name and number, codec and quality,
//! MUTE/REC badges and the transfer's progress in words. The selected line gets a thick
//! coloured border and a `▶` in its title.

use std::time::{Duration, Instant};

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph, Wrap};
use ratatui::Frame;

use crate::sip::{LineNo, TransferKind, TransferMechanism, TransferStatus};
use crate::tui::app::{CallView, TransferView};

/// Draws line `line` holding `call` (or idle) into `area`; `other_busy` says the other line
/// has a call, so a call ringing here is waiting.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    line: LineNo,
    call: Option<&CallView>,
    (selected, other_busy): (bool, bool),
    now: Instant,
) {
    let (title, border, border_type) = if selected {
        (
            format!(" ▶ Line {line} "),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
            BorderType::Thick,
        )
    } else {
        (
            format!(" Line {line} "),
            Style::new().fg(Color::DarkGray),
            BorderType::Plain,
        )
    };
    let block = Block::bordered()
        .title(title)
        .border_type(border_type)
        .border_style(border);
    let text = match call {
        Some(call) => call_lines(call, other_busy, now),
        None => vec![Line::styled("idle", Style::new().fg(Color::DarkGray))],
    };
    frame.render_widget(
        Paragraph::new(text).block(block).wrap(Wrap { trim: true }),
        area,
    );
}

fn call_lines(call: &CallView, other_busy: bool, now: Instant) -> Vec<Line<'static>> {
    let word = if other_busy && call.is_incoming() {
        "waiting"
    } else {
        call.state_word()
    };
    let colour = match word {
        "incoming" | "waiting" => Color::Yellow,
        "connected" => Color::Green,
        "on hold" | "held by peer" | "conference on hold" => Color::Blue,
        "conference" => Color::LightGreen,
        "transferring" | "being transferred" | "consulting" => Color::Magenta,
        _ => Color::White,
    };
    let since = call.connected_at.unwrap_or(call.started);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            word.to_uppercase(),
            Style::new().fg(colour).add_modifier(Modifier::BOLD),
        ),
        Span::raw("  "),
        Span::raw(clock(now.saturating_duration_since(since))),
    ])];
    match &call.name {
        Some(name) => {
            lines.push(Line::styled(
                name.clone(),
                Style::new().add_modifier(Modifier::BOLD),
            ));
            lines.push(Line::raw(call.number.clone()));
        }
        None => lines.push(Line::styled(
            call.number.clone(),
            Style::new().add_modifier(Modifier::BOLD),
        )),
    }
    if let Some(account) = &call.account {
        lines.push(Line::styled(
            format!("for {account}"),
            Style::new().fg(Color::Cyan),
        ));
    }
    if let Some(by) = &call.transferred_by {
        lines.push(Line::styled(
            format!("transferred by {by}"),
            Style::new().fg(Color::Magenta),
        ));
    }
    if let Some(words) = &call.park_return {
        lines.push(Line::styled(words.clone(), Style::new().fg(Color::Yellow)));
    }
    if let Some(codec) = &call.codec {
        let quality = match call.quality {
            Some((loss, jitter)) => format!(" · loss {loss:.1}% · jitter {jitter:.0} ms"),
            None => String::new(),
        };
        lines.push(Line::styled(
            format!("{codec}{quality}"),
            Style::new().fg(Color::Gray),
        ));
    }
    let badge = Style::new()
        .fg(Color::White)
        .bg(Color::Red)
        .add_modifier(Modifier::BOLD);
    let mut badges = Vec::new();
    if call.muted {
        badges.push(Span::styled(" MUTE ", badge));
    }
    if call.recording {
        if !badges.is_empty() {
            badges.push(Span::raw(" "));
        }
        badges.push(Span::styled(" REC ", badge));
    }
    if !badges.is_empty() {
        lines.push(Line::from(badges));
    }
    if let Some(transfer) = &call.transfer {
        lines.push(Line::styled(
            transfer_words(transfer),
            Style::new().fg(Color::Magenta),
        ));
    }
    lines
}

/// The transfer's progress in words: `Transfer to Bob (200): target ringing`.
pub fn transfer_words(t: &TransferView) -> String {
    let whom = match &t.target_name {
        Some(name) => format!("{name} ({})", t.target),
        None => t.target.clone(),
    };
    let head = match t.kind {
        TransferKind::Blind => format!("Transfer to {whom}"),
        TransferKind::Attended if t.status == TransferStatus::Requested => {
            return format!("Consulting {whom} on the other line: complete or cancel");
        }
        TransferKind::Attended => format!("Attended transfer to {whom}"),
        TransferKind::Incoming => format!("Being transferred to {whom}"),
    };
    let ring_first = t.mechanism == Some(TransferMechanism::RingFirst);
    let status = match t.status {
        TransferStatus::Requested if ring_first => {
            "ringing the target first on the other line, the caller is on hold".to_owned()
        }
        TransferStatus::Ringing if ring_first => "target ringing, the caller is on hold".to_owned(),
        TransferStatus::Trying if ring_first => "target answered: joining them".to_owned(),
        TransferStatus::Requested => match &t.reason {
            // `safe` with no free line says it hands the call over by REFER instead.
            Some(reason) if t.kind == TransferKind::Blind => reason.clone(),
            _ => "asked".to_owned(),
        },
        TransferStatus::Asking => "Enter to go, Esc to stay".to_owned(),
        TransferStatus::Accepted => "accepted".to_owned(),
        TransferStatus::Trying => "calling the target".to_owned(),
        TransferStatus::Ringing => "target ringing".to_owned(),
        TransferStatus::Succeeded => "done".to_owned(),
        TransferStatus::Failed => match &t.reason {
            Some(reason) => format!("failed: {reason}"),
            None => "failed".to_owned(),
        },
        TransferStatus::Recalled => "failed, the call is back".to_owned(),
    };
    format!("{head}: {status}")
}

/// `m:ss`, or `h:mm:ss` past an hour.
pub fn clock(elapsed: Duration) -> String {
    let s = elapsed.as_secs();
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_format() {
        assert_eq!(clock(Duration::from_secs(0)), "0:00");
        assert_eq!(clock(Duration::from_secs(75)), "1:15");
        assert_eq!(clock(Duration::from_secs(3725)), "1:02:05");
    }
}
