//! The picker overlay: the query being typed, then the rows found with their matched
//! characters highlighted, a source tag, an internal/external mark and, for internal
//! extensions, their busy lamp.

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Cell, Clear, Paragraph, Row, Table, TableState};
use ratatui::Frame;

use super::blf_row;
use super::popup::centred;
use crate::sip::BlfState;
use crate::tui::app::Picker;
use crate::tui::finder::PickerRow;

/// The style of a matched character.
pub const HIT: Style = Style::new()
    .fg(Color::Yellow)
    .add_modifier(Modifier::BOLD.union(Modifier::UNDERLINED));

/// Draws the picker over `area`; `lamp` gives the busy lamp of an extension that has one.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    picker: &Picker,
    lamp: &dyn Fn(&str) -> Option<BlfState>,
) {
    let popup = centred(
        area,
        area.width.saturating_sub(4).min(96),
        area.height.saturating_sub(2),
    );
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .border_type(BorderType::Rounded)
        .title(format!(" {} ", picker.purpose.title()));
    let inner = block.inner(popup);
    frame.render_widget(block, popup);
    let [input, list] = Layout::vertical([Constraint::Length(2), Constraint::Min(0)]).areas(inner);
    frame.render_widget(
        Paragraph::new(vec![
            Line::from(vec![
                Span::styled(
                    "› ",
                    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
                ),
                Span::raw(picker.query.clone()),
                Span::styled("▏", Style::new().add_modifier(Modifier::SLOW_BLINK)),
            ]),
            Line::styled(
                "─".repeat(usize::from(input.width)),
                Style::new().fg(Color::DarkGray),
            ),
        ]),
        input,
    );
    if picker.rows.is_empty() {
        let text = if picker.query.trim().is_empty() {
            "Type a name, number or SIP URI".to_owned()
        } else {
            format!("No match: enter uses “{}” as typed", picker.query.trim())
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, Style::new().fg(Color::Gray))),
            list,
        );
        return;
    }
    let rows = picker.rows.iter().map(|row| {
        Row::new(vec![
            Cell::from(highlighted(&row.name, &row.name_hits)),
            Cell::from(highlighted(&row.number, &row.number_hits)),
            Cell::from(highlighted(&row.detail, &row.detail_hits)),
            Cell::from(Line::styled(row.source, Style::new().fg(Color::Gray))),
            Cell::from(if row.internal { "int" } else { "ext" }),
            Cell::from(lamp_of(row, lamp)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Fill(3),
            Constraint::Length(16),
            Constraint::Fill(2),
            Constraint::Length(9),
            Constraint::Length(3),
            Constraint::Length(9),
        ],
    )
    .row_highlight_style(
        Style::new()
            .bg(Color::DarkGray)
            .add_modifier(Modifier::BOLD),
    )
    .highlight_symbol("▶ ");
    let mut state = TableState::new().with_selected(Some(picker.selected));
    frame.render_stateful_widget(table, list, &mut state);
}

/// The lamp cell: for an internal extension, its lamp (`unknown` until the PBX tells);
/// nothing for other rows.
fn lamp_of(row: &PickerRow, lamp: &dyn Fn(&str) -> Option<BlfState>) -> Line<'static> {
    match row.extension() {
        Some(ext) => Line::from(blf_row::lamp(lamp(ext).unwrap_or(BlfState::Unknown))),
        None => Line::default(),
    }
}

/// `text` with the characters at `hits` (char indices) in the [`HIT`] style.
fn highlighted(text: &str, hits: &[usize]) -> Line<'static> {
    let spans: Vec<Span> = text
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if hits.contains(&i) {
                Span::styled(c.to_string(), HIT)
            } else {
                Span::raw(c.to_string())
            }
        })
        .collect();
    Line::from(spans)
}
