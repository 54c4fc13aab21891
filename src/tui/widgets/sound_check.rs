//! The sound check overlay: the devices in use, the devices found (which can record, which
//! can play), the microphone's level as a bar, and the keys.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

use super::popup::centred;
use crate::tui::app::{App, SoundView};

/// Width of the level bar, in cells (−60 dBFS to 0).
const BAR: usize = 30;

/// Draws the sound check over `area`.
pub fn render(frame: &mut Frame, area: Rect, check: &SoundView, app: &App) {
    let dim = Style::new().fg(Color::DarkGray);
    let mut lines = Vec::new();
    if let Some((input, output, ring)) = &app.devices {
        lines.push(Line::from(format!(
            " in use: mic {input} · headset {output} · ring {ring}"
        )));
    }
    let (bar, words) = match app.level {
        Some(dbfs) => {
            let filled = ((dbfs + 60.0).clamp(0.0, 60.0) / 60.0 * BAR as f32).round() as usize;
            (
                format!("{}{}", "█".repeat(filled), "·".repeat(BAR - filled)),
                format!(" {dbfs:.0} dBFS"),
            )
        }
        None => ("·".repeat(BAR), " waiting for the microphone".to_owned()),
    };
    lines.push(Line::from(vec![
        Span::raw(" mic level "),
        Span::styled(bar, Style::new().fg(Color::Green)),
        Span::raw(words),
    ]));
    lines.push(Line::from(Span::styled(
        format!(
            " echo {}",
            if check.echo {
                "on: you hear yourself 1 s later"
            } else {
                "off"
            }
        ),
        dim,
    )));
    lines.push(Line::raw(""));
    match &check.devices {
        None => lines.push(Line::raw(" looking for audio devices…")),
        Some(Err(problem)) => lines.push(Line::raw(format!(" no device list: {problem}"))),
        Some(Ok(list)) if list.is_empty() => lines.push(Line::raw(" no sound card found")),
        Some(Ok(list)) => {
            for (i, device) in list.iter().enumerate() {
                let what = match (device.input, device.output) {
                    (true, true) => "in+out",
                    (true, false) => "in    ",
                    _ => "   out",
                };
                let style = if i == check.selected {
                    Style::new().add_modifier(Modifier::REVERSED)
                } else {
                    Style::new()
                };
                lines.push(Line::styled(format!(" {what}  {}", device.name), style));
            }
        }
    }
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let popup = centred(area, 72, height);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Rounded)
                .title(" Sound check (m mic · h headset · r ring · t tone · e echo · esc) "),
        ),
        popup,
    );
}
