//! The status bar (account, registration, route, audio devices, microphone clean-up) at the top, and the outcome line above the
//! footer: the last outcome in plain words, or the `:` command line / route prompt being typed.
//! With several accounts the bar shows each one's name and a mark (`desk ✓ queue ✗`), the
//! default account for new calls underlined.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::tui::app::{App, Mode, Registration};

/// Draws the top bar.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let bar = Style::new().bg(Color::Blue).fg(Color::White);
    let (registration, reg_style) = match &app.registration {
        Registration::Starting => ("starting…".to_owned(), bar),
        Registration::NotRegistered => ("not registered".to_owned(), bar),
        Registration::Registered => (
            "registered".to_owned(),
            bar.fg(Color::LightGreen).add_modifier(Modifier::BOLD),
        ),
        Registration::Failed { reason, retry_in } => (
            format!("registration failed: {reason} (retry in {retry_in} s)"),
            bar.fg(Color::LightRed).add_modifier(Modifier::BOLD),
        ),
        Registration::Unregistered => ("unregistered".to_owned(), bar),
    };
    let mut spans = vec![
        Span::styled(" switchboard ", bar.add_modifier(Modifier::BOLD)),
        Span::styled("│ ", bar),
    ];
    if app.accounts.is_empty() {
        spans.push(Span::styled(
            app.account.clone().unwrap_or_else(|| "—".to_owned()),
            bar,
        ));
        spans.push(Span::styled(" · ", bar));
        spans.push(Span::styled(registration, reg_style));
    } else {
        for (i, (name, state)) in app.accounts.iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" ", bar));
            }
            let name_style = if app.default_account.as_ref() == Some(name) {
                bar.add_modifier(Modifier::UNDERLINED)
            } else {
                bar
            };
            spans.push(Span::styled(name.clone(), name_style));
            spans.push(account_mark(state, bar));
        }
    }
    // Before the details that may not fit: it changes what happens to every call.
    if app.dnd {
        spans.push(Span::styled(
            " │ DND",
            bar.fg(Color::LightRed).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(route) = &app.route {
        spans.push(Span::styled(format!(" │ route: {route}"), bar));
    }
    if let Some((input, output, ring)) = &app.devices {
        let ring = if ring == "headset" {
            String::new()
        } else {
            format!(" · ring {ring}")
        };
        let devices = if input == output {
            format!(" │ headset {output}{ring}")
        } else {
            format!(" │ mic {input} · headset {output}{ring}")
        };
        spans.push(Span::styled(devices, bar));
    }
    let voice = match app.voice {
        (true, true) => Some(" │ ns · agc"),
        (true, false) => Some(" │ ns"),
        (false, true) => Some(" │ agc"),
        (false, false) => None,
    };
    if let Some(voice) = voice {
        spans.push(Span::styled(voice, bar));
    }
    if app.quitting {
        spans.push(Span::styled(
            " │ quitting…",
            bar.add_modifier(Modifier::BOLD),
        ));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

/// One account's registration as a mark after its name: ✓ registered, ✗ failed, … starting,
/// – not registered (or not registering), ○ unregistered.
fn account_mark(state: &Registration, bar: Style) -> Span<'static> {
    match state {
        Registration::Registered => {
            Span::styled(" ✓", bar.fg(Color::LightGreen).add_modifier(Modifier::BOLD))
        }
        Registration::Failed { .. } => {
            Span::styled(" ✗", bar.fg(Color::LightRed).add_modifier(Modifier::BOLD))
        }
        Registration::Starting => Span::styled(" …", bar),
        Registration::NotRegistered => Span::styled(" –", bar),
        Registration::Unregistered => Span::styled(" ○", bar),
    }
}

/// Draws the outcome line, or the prompt being typed.
pub fn outcome(frame: &mut Frame, area: Rect, app: &App) {
    let line = match &app.mode {
        Mode::CommandLine(text) => prompt(":", text),
        Mode::RoutePrompt(text) => prompt("Route: ", text),
        Mode::AddContact { number, name } => prompt(&format!("Name for {number}: "), name),
        _ => match &app.outcome {
            Some(outcome) => {
                let style = if outcome.failure {
                    Style::new()
                        .fg(Color::LightRed)
                        .add_modifier(Modifier::BOLD)
                } else {
                    Style::new().fg(Color::LightGreen)
                };
                Line::from(vec![
                    Span::styled(" ● ", style),
                    Span::styled(outcome.text.clone(), style),
                ])
            }
            None => Line::raw(""),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn prompt(label: &str, text: &str) -> Line<'static> {
    Line::from(vec![
        Span::styled(label.to_owned(), Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(text.to_owned()),
        Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
    ])
}
