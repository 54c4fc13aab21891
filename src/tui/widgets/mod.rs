//! Stateless render functions, one per part of the screen. Each takes what it shows and a
//! frame area and draws; none keeps state or changes the app.

pub mod blf_row;
pub mod footer;
pub mod help;
pub mod history;
pub mod line_list;
pub mod line_pane;
pub mod picker;
pub mod popup;
pub mod sound_check;
pub mod status_bar;
pub mod trace_pane;
