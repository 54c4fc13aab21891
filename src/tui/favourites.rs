//! The favourites panel: the operator's frequent targets with their keys and busy lamps, in a
//! compact grid under the line panes, and the favourites' place in the picker (their rows
//! first, marked ★).
//!
//! This module owns the panel's model ([`Favourites`]) and its drawing; the key itself only
//! sends [`crate::sip::Command::Favourite`]: the core decides between transfer, pickup and
//! dial. It reads no clock and does no I/O.

use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::finder::PickerRow;
use crate::config::{self, KeySpec};
use crate::sip::BlfState;

/// The width of one favourite's cell: key, lamp, label.
const CELL: u16 = 20;

/// One favourite on the panel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Favourite {
    /// The label shown.
    pub label: String,
    /// The extension or URI.
    pub number: String,
    /// Its key, if it has one.
    pub key: Option<KeySpec>,
}

/// The panel: the favourites in order and whether it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Favourites {
    /// In the configured order.
    pub list: Vec<Favourite>,
    /// The panel is on screen (toggled by its key).
    pub shown: bool,
}

impl Favourites {
    /// The `[[favourite]]` tables of `config`, shown when there are some.
    pub fn from_config(favourites: &[config::Favourite]) -> Favourites {
        Favourites {
            list: favourites
                .iter()
                .enumerate()
                .map(|(i, f)| Favourite {
                    label: f.label.clone(),
                    number: f.number.clone(),
                    key: config::favourite_key(i, f),
                })
                .collect(),
            shown: !favourites.is_empty(),
        }
    }

    /// The favourite whose key is `spec`.
    pub fn by_key(&self, spec: &KeySpec) -> Option<&Favourite> {
        self.list.iter().find(|f| f.key.as_ref() == Some(spec))
    }

    /// The label of the favourite with `number`.
    pub fn label_of(&self, number: &str) -> Option<String> {
        self.list
            .iter()
            .find(|f| f.number == number)
            .map(|f| f.label.clone())
    }

    /// True when `number` is a favourite's.
    pub fn contains(&self, number: &str) -> bool {
        self.list.iter().any(|f| f.number == number)
    }

    /// How many rows the panel takes in `width` columns (none while hidden or empty).
    pub fn rows(&self, width: u16) -> u16 {
        if !self.shown || self.list.is_empty() {
            return 0;
        }
        let per_row = usize::from((width / CELL).max(1));
        u16::try_from(self.list.len().div_ceil(per_row)).unwrap_or(u16::MAX)
    }

    /// The favourites matching `query` (label or number, any case) as picker rows, for those
    /// not among `rows` already; all of them for an empty query.
    pub fn picker_rows(&self, query: &str, rows: &[PickerRow]) -> Vec<PickerRow> {
        let query = query.trim().to_lowercase();
        self.list
            .iter()
            .filter(|f| !rows.iter().any(|r| r.number == f.number))
            .filter_map(|f| {
                if query.is_empty() {
                    return Some((f, Vec::new(), Vec::new()));
                }
                if let Some(name_hits) = hits(&f.label.to_lowercase(), &query) {
                    return Some((f, name_hits, Vec::new()));
                }
                hits(&f.number.to_lowercase(), &query)
                    .map(|number_hits| (f, Vec::new(), number_hits))
            })
            .map(|(f, name_hits, number_hits)| PickerRow {
                name: f.label.clone(),
                number: f.number.clone(),
                detail: String::new(),
                source: "favourite",
                internal: f.number.chars().all(|c| c.is_ascii_digit()),
                name_hits,
                number_hits,
                detail_hits: Vec::new(),
            })
            .collect()
    }
}

/// The picker's rows with the favourites' own first (those matching `query`), every
/// favourite's row marked `★ ` before its name.
pub fn with_favourites(
    favourites: &Favourites,
    query: &str,
    rows: Vec<PickerRow>,
) -> Vec<PickerRow> {
    let mut all = favourites.picker_rows(query, &rows);
    all.extend(rows);
    for row in all.iter_mut().filter(|r| favourites.contains(&r.number)) {
        row.name = format!("{STAR}{}", row.name);
        let shift = STAR.chars().count();
        for hit in &mut row.name_hits {
            *hit += shift;
        }
    }
    all
}

/// The mark of a favourite's row in the picker.
pub const STAR: &str = "★ ";

/// Char indices where `needle` first occurs in `hay` (both lower case); empty for an empty
/// needle, `None` when it does not occur.
fn hits(hay: &str, needle: &str) -> Option<Vec<usize>> {
    if needle.is_empty() {
        return Some(Vec::new());
    }
    let at = hay.find(needle)?;
    let start = hay[..at].chars().count();
    Some((start..start + needle.chars().count()).collect())
}

/// Draws the panel in `area`: per favourite `F1 ● Reception`, the lamp coloured as in the
/// busy lamp row; `lamp` gives each number's lamp.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    favourites: &Favourites,
    lamp: &dyn Fn(&str) -> Option<BlfState>,
) {
    let per_row = usize::from((area.width / CELL).max(1));
    let cell = usize::from(area.width) / per_row;
    let lines: Vec<Line> = favourites
        .list
        .chunks(per_row)
        .map(|row| {
            let spans: Vec<Span> = row
                .iter()
                .flat_map(|f| cell_spans(f, lamp(&f.number), cell))
                .collect();
            Line::from(spans)
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), area);
}

/// One favourite's cell, `width` columns: key, lamp mark, label (cut to fit).
fn cell_spans(favourite: &Favourite, state: Option<BlfState>, width: usize) -> [Span<'static>; 3] {
    let key = match favourite.key {
        Some(KeySpec {
            ctrl: false,
            alt: false,
            code: config::KeyCode::F(n),
        }) => format!("F{n}"),
        Some(key) => key.to_string(),
        None => String::new(),
    };
    let key = format!(" {key:>3} ");
    let (mark, colour) = match state.unwrap_or(BlfState::Unknown) {
        BlfState::Idle => ("●", Color::Green),
        BlfState::Ringing => ("◉", Color::Yellow),
        BlfState::Busy => ("●", Color::Red),
        BlfState::Unknown => ("○", Color::DarkGray),
    };
    let mut mark_style = Style::new().fg(colour);
    if state == Some(BlfState::Ringing) {
        mark_style = mark_style.add_modifier(Modifier::BOLD | Modifier::SLOW_BLINK);
    }
    let room = width.saturating_sub(key.chars().count() + 2);
    let label: String = favourite.label.chars().take(room).collect();
    let pad = room.saturating_sub(label.chars().count());
    [
        Span::styled(key, Style::new().fg(Color::Cyan)),
        Span::styled(mark, mark_style),
        Span::raw(format!(" {label}{}", " ".repeat(pad))),
    ]
}
