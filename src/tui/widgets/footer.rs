//! The footer: the keys that make sense now, taken from the same key table that matching uses.
//! The command line, search, route, trace, history, add-contact and do-not-disturb keys are
//! left to the help overlay so the call-handling keys always fit; while a wrap-up is shown,
//! its keys.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use crate::sip::CallState;
use crate::tui::app::{App, Mode};
use crate::tui::keymap::Action;

/// Draws the key hints for the current mode.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let pairs: Vec<(String, &str)> = match &app.mode {
        Mode::Normal if !app.wrapups.is_empty() => {
            let mut pairs = vec![("↑↓".to_owned(), "code"), ("enter".to_owned(), "save")];
            if app.wrapups.first().is_some_and(|w| !w.required) {
                pairs.push(("esc".to_owned(), "skip"));
            }
            pairs
        }
        Mode::Normal => {
            let mut pairs: Vec<(String, &str)> = app
                .available()
                .into_iter()
                .filter(|a| {
                    !matches!(
                        a,
                        Action::Command
                            | Action::Search
                            | Action::Route
                            | Action::Trace
                            | Action::NoiseSuppression
                            | Action::Agc
                            | Action::History
                            | Action::SoundCheck
                            | Action::AddContact
                            | Action::Dnd
                    )
                })
                .map(|a| (app.keymap.first_key(a), a.name()))
                .collect();
            if app
                .call(app.selected)
                .is_some_and(|c| c.state == CallState::Connected)
            {
                pairs.push(("0-9*#".to_owned(), "dtmf"));
            }
            pairs
        }
        Mode::Picker(_) => vec![
            ("↑↓".to_owned(), "choose"),
            ("enter".to_owned(), "pick"),
            ("esc".to_owned(), "close"),
        ],
        Mode::CommandLine(_) | Mode::RoutePrompt(_) => {
            vec![("enter".to_owned(), "run"), ("esc".to_owned(), "close")]
        }
        Mode::AddContact { .. } => vec![("enter".to_owned(), "add"), ("esc".to_owned(), "close")],
        Mode::History(_) => vec![
            ("↑↓".to_owned(), "choose"),
            ("enter".to_owned(), "call back"),
            ("esc".to_owned(), "close"),
        ],
        Mode::Trace if app.trace.detail => vec![("esc".to_owned(), "back to the list")],
        Mode::Trace => vec![
            ("↑↓".to_owned(), "choose"),
            ("enter".to_owned(), "full message"),
            ("esc".to_owned(), "keys to the lines"),
            (app.keymap.first_key(Action::Trace), "hide trace"),
        ],
        Mode::Help => vec![("any key".to_owned(), "close")],
        Mode::Sound(_) => vec![
            ("↑↓".to_owned(), "choose"),
            ("m h r".to_owned(), "mic headset ring"),
            ("t".to_owned(), "tone"),
            ("e".to_owned(), "echo"),
            ("esc".to_owned(), "close"),
        ],
        Mode::ConfirmQuit => vec![("y".to_owned(), "quit"), ("n".to_owned(), "stay")],
    };
    let key = Style::new()
        .fg(Color::Black)
        .bg(Color::Gray)
        .add_modifier(Modifier::BOLD);
    frame.render_widget(Paragraph::new(fit(pairs, area.width, key)), area);
}

/// As many `key name` pairs as fit in `width`, in order; when some must be left out, the help
/// key is kept, last, so every other key is one keypress away.
fn fit(pairs: Vec<(String, &str)>, width: u16, key: Style) -> Line<'static> {
    let cost = |(k, name): &(String, &str)| k.chars().count() + name.chars().count() + 4;
    let width = usize::from(width);
    let total: usize = pairs.iter().map(cost).sum();
    let help = pairs
        .iter()
        .position(|(_, name)| *name == Action::Help.name())
        .filter(|_| total > width);
    let reserve = help.map_or(0, |i| cost(&pairs[i]));
    let mut shown: Vec<&(String, &str)> = Vec::new();
    let mut used = reserve;
    for (i, pair) in pairs.iter().enumerate() {
        if Some(i) != help && used + cost(pair) <= width {
            used += cost(pair);
            shown.push(pair);
        }
    }
    shown.extend(help.map(|i| &pairs[i]));
    let spans: Vec<Span> = shown
        .into_iter()
        .flat_map(|(k, name)| {
            [
                Span::styled(format!(" {k} "), key),
                Span::raw(format!(" {name} ")),
            ]
        })
        .collect();
    Line::from(spans)
}
