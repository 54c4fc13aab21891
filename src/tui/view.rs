//! The whole screen from the model: status bar, two line panes (side by side from [`WIDE`]
//! columns, stacked below) — lines 1 and 2, or with more lines the selected one and its
//! neighbour above one row per other line — the favourites panel (while shown), the busy lamp
//! row (only when lamps other than the favourites' are configured),
//! the outcome line, the footer, and any overlay. Pure: it reads the app and `now` and draws.

use std::time::Instant;

use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
use ratatui::Frame;

use super::app::{App, Mode};
use super::favourites;
use super::widgets::{
    blf_row, footer, help, history, line_list, line_pane, picker, popup, sound_check, status_bar,
    trace_pane,
};
use super::wrapup;
use crate::sip::LineNo;

/// From this many columns the panes sit side by side.
pub const WIDE: u16 = 100;

/// Draws the app as it is at `now`.
pub fn view(app: &App, now: Instant, frame: &mut Frame) {
    let area = frame.area();
    // Lamps of favourites are on their panel (hidden with it); the row keeps the others.
    let row_lamps: Vec<(String, crate::sip::BlfState)> = app
        .blf
        .iter()
        .filter(|(ext, _)| !app.favourites.contains(ext))
        .cloned()
        .collect();
    let blf_rows = u16::from(!row_lamps.is_empty());
    // At most a quarter of the screen: the line panes keep their room on small terminals.
    let favourite_rows = app.favourites.rows(area.width).min(area.height / 4);
    let [top, middle, panel, lamps, outcome, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(4),
        Constraint::Length(favourite_rows),
        Constraint::Length(blf_rows),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let panes = if app.trace.visible {
        let [panes, trace] =
            Layout::vertical([Constraint::Min(6), Constraint::Percentage(45)]).areas(middle);
        let focused = matches!(app.mode, Mode::Trace);
        trace_pane::render(frame, trace, &app.trace, focused, now);
        panes
    } else {
        middle
    };
    status_bar::render(frame, top, app);
    let count = app.line_count();
    let shown = panes_shown(app.selected, count);
    let rest: Vec<LineNo> = (1..=count)
        .filter_map(|l| LineNo::try_from(l).ok())
        .filter(|l| !shown.contains(l))
        .collect();
    let [panes, list] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(u16::try_from(rest.len()).unwrap_or(u16::MAX)),
    ])
    .areas(panes);
    let split = if area.width >= WIDE {
        Layout::horizontal([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)])
    } else {
        Layout::vertical([Constraint::Ratio(1, 2), Constraint::Ratio(1, 2)])
    };
    let pane_areas = split.split(panes);
    for (pane, line) in pane_areas.iter().zip(shown) {
        let other_busy = (1..=count)
            .filter_map(|l| LineNo::try_from(l).ok())
            .any(|l| l != line && app.call(l).is_some());
        line_pane::render(
            frame,
            *pane,
            line,
            app.call(line),
            (app.selected == line, other_busy),
            now,
        );
    }
    line_list::render(frame, list, app, &rest, now);
    if favourite_rows > 0 {
        favourites::render(frame, panel, &app.favourites, &|ext| app.lamp(ext));
    }
    if blf_rows > 0 {
        blf_row::render(frame, lamps, &row_lamps);
    }
    status_bar::outcome(frame, outcome, app);
    footer::render(frame, keys, app);
    match &app.mode {
        Mode::Picker(p) => picker::render(frame, area, p, &|ext| app.lamp(ext)),
        Mode::Help => help::render(frame, area, &app.keymap),
        Mode::ConfirmQuit => confirm_quit(frame, area),
        Mode::History(list) => history::render(frame, area, list),
        Mode::Sound(check) => sound_check::render(frame, area, check, app),
        Mode::Normal if !app.wrapups.is_empty() => {
            if let Some(first) = app.wrapups.first() {
                wrapup::render(frame, area, first, app.wrapups.len() - 1, now);
            }
        }
        Mode::Normal
        | Mode::CommandLine(_)
        | Mode::RoutePrompt(_)
        | Mode::Trace
        | Mode::AddContact { .. } => {}
    }
}

/// The two lines with panes: the selected one and the next (the one before for the last).
fn panes_shown(selected: LineNo, count: usize) -> [LineNo; 2] {
    let last = LineNo::try_from(count.max(2)).unwrap_or(LineNo::MAX);
    let first = selected.clamp(1, last - 1);
    [first, first + 1]
}

fn confirm_quit(frame: &mut Frame, area: ratatui::layout::Rect) {
    let popup = popup::centred(area, 44, 5);
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(vec![
            Line::raw("A call is up: quitting ends it."),
            Line::styled(
                "Quit anyway?  y / n",
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ),
        ])
        .centered()
        .block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(" Quit "),
        ),
        popup,
    );
}
