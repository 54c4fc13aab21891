//! Where overlays go: a rectangle centred in an area, cleared before drawing.

use ratatui::layout::Rect;

/// A `width`×`height` rectangle centred in `area`, shrunk to fit it.
pub fn centred(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}
