//! Placing text on A4 pages: a cursor that moves down a page and starts the next when a block does
//! not fit, labelled values, and tables whose header row repeats on every page they run onto.
//! Positions are in points from the page's bottom-left corner, as PDF has them.

use super::pdf_file::{literal, text_width};

/// A4, in points.
pub const PAGE_WIDTH: f32 = 595.28;
/// A4, in points.
pub const PAGE_HEIGHT: f32 = 841.89;
/// Left, right and top margin.
pub const MARGIN: f32 = 50.0;
/// Nothing but the footer goes below this.
const BOTTOM: f32 = 64.0;
/// Size of body text.
pub const BODY: f32 = 9.0;
/// Distance between lines of body text.
pub const LEADING: f32 = 13.0;
/// Where a labelled value's value starts, from the margin.
const LABEL_WIDTH: f32 = 95.0;

/// The two standard fonts a statement uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Font {
    /// Helvetica, resource `/F1`.
    Regular,
    /// Helvetica-Bold, resource `/F2`.
    Bold,
}

/// One page's drawing, as a PDF content stream.
#[derive(Debug, Default)]
pub struct Page {
    content: String,
}

impl Page {
    /// `text` with its left end at (`x`, `y`).
    pub fn text(&mut self, x: f32, y: f32, font: Font, size: f32, text: &str) {
        let resource = match font {
            Font::Regular => "F1",
            Font::Bold => "F2",
        };
        self.content += &format!("BT /{resource} {size} Tf 1 0 0 1 {x:.2} {y:.2} Tm {} Tj ET\n", literal(text));
    }

    /// A thin horizontal rule from `x1` to `x2` at `y`.
    pub fn rule(&mut self, x1: f32, x2: f32, y: f32) {
        self.content += &format!("0.5 w {x1:.2} {y:.2} m {x2:.2} {y:.2} l S\n");
    }

    /// The content stream.
    pub fn content(&self) -> &[u8] {
        self.content.as_bytes()
    }
}

/// A table column: its title, its width in points, and whether its cells are right-aligned.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    /// Header text.
    pub title: &'static str,
    /// Width in points.
    pub width: f32,
    /// Numbers are right-aligned.
    pub right: bool,
}

/// Pages being filled from the top down.
pub struct Layout {
    pages: Vec<Page>,
    y: f32,
}

impl Layout {
    /// One empty page.
    pub fn new() -> Layout {
        Layout { pages: vec![Page::default()], y: PAGE_HEIGHT - MARGIN }
    }

    /// The pages laid out.
    pub fn into_pages(self) -> Vec<Page> {
        self.pages
    }

    fn page(&mut self) -> &mut Page {
        self.pages.last_mut().expect("a layout always has a page")
    }

    /// Starts a new page when less than `height` is left on this one; says whether it did.
    pub fn need(&mut self, height: f32) -> bool {
        if self.y - height >= BOTTOM {
            return false;
        }
        self.pages.push(Page::default());
        self.y = PAGE_HEIGHT - MARGIN;
        true
    }

    /// Moves the cursor down.
    pub fn down(&mut self, height: f32) {
        self.y -= height;
    }

    /// A line of text at the margin.
    pub fn line(&mut self, font: Font, size: f32, text: &str) {
        self.need(size + 4.0);
        self.y -= size + 4.0;
        let y = self.y;
        self.page().text(MARGIN, y, font, size, text);
    }

    /// A section title over a rule; kept on one page with at least three lines after it.
    pub fn heading(&mut self, title: &str) {
        self.need(LEADING * 5.0);
        self.y -= LEADING;
        self.line(Font::Bold, 11.0, title);
        let y = self.y - 4.0;
        self.page().rule(MARGIN, PAGE_WIDTH - MARGIN, y);
        self.y -= 6.0;
    }

    /// `label` in bold and `value` beside it, the value wrapped onto as many lines as it needs.
    pub fn labelled(&mut self, label: &str, value: &str) {
        let width = PAGE_WIDTH - 2.0 * MARGIN - LABEL_WIDTH;
        for (index, text) in wrap(value, width).iter().enumerate() {
            self.need(LEADING);
            self.y -= LEADING;
            let y = self.y;
            if index == 0 {
                self.page().text(MARGIN, y, Font::Bold, BODY, label);
            }
            self.page().text(MARGIN + LABEL_WIDTH, y, Font::Regular, BODY, text);
        }
    }

    /// A table: the header row in bold, then `rows`; on a page break the header is repeated.
    pub fn table(&mut self, columns: &[Column], rows: &[Vec<String>]) {
        self.need(LEADING * 3.0);
        self.header_row(columns);
        for row in rows {
            if self.need(LEADING) {
                self.header_row(columns);
            }
            self.row(columns, row, Font::Regular);
        }
    }

    fn header_row(&mut self, columns: &[Column]) {
        let titles: Vec<String> = columns.iter().map(|column| column.title.to_owned()).collect();
        self.row(columns, &titles, Font::Bold);
        let y = self.y - 3.5;
        self.page().rule(MARGIN, PAGE_WIDTH - MARGIN, y);
        self.y -= 2.0;
    }

    /// One row of cells, each cut to its column (with an ellipsis) so none runs into the next.
    pub fn row(&mut self, columns: &[Column], cells: &[String], font: Font) {
        self.y -= LEADING;
        let (y, bold) = (self.y, font == Font::Bold);
        let mut x = MARGIN;
        for (column, cell) in columns.iter().zip(cells) {
            let room = column.width - 6.0;
            let text = fit(cell, room, bold);
            let left = if column.right { x + column.width - 6.0 - text_width(&text, BODY, bold) } else { x };
            self.page().text(left, y, font, BODY, &text);
            x += column.width;
        }
    }
}

/// `text` cut to `width` points, ending in an ellipsis when it was cut.
fn fit(text: &str, width: f32, bold: bool) -> String {
    if text_width(text, BODY, bold) <= width {
        return text.to_owned();
    }
    let mut kept = String::new();
    for c in text.chars() {
        if text_width(&format!("{kept}{c}\u{2026}"), BODY, bold) > width {
            break;
        }
        kept.push(c);
    }
    kept + "\u{2026}"
}

/// `text` broken into lines of at most `width` points at spaces (a word longer than a line is cut).
fn wrap(text: &str, width: f32) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let candidate = if current.is_empty() { word.to_owned() } else { format!("{current} {word}") };
        if text_width(&candidate, BODY, false) <= width || current.is_empty() {
            current = candidate;
        } else {
            lines.push(std::mem::replace(&mut current, word.to_owned()));
        }
    }
    lines.push(current);
    lines.into_iter().map(|line| fit(&line, width, false)).collect()
}
