//! The bytes of a PDF 1.7 file: numbered objects, the cross-reference table giving each one's byte
//! offset, and the trailer. Enough for what a statement needs (text in the standard fonts, one
//! embedded file) and nothing more: no compression, no object streams, no encryption.

use std::fmt::Write as _;

/// A PDF object's number (generation is always 0: the file is written once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectId(pub usize);

impl ObjectId {
    /// The indirect reference `N 0 R`.
    pub fn reference(self) -> String {
        format!("{} 0 R", self.0)
    }
}

/// A file being written: objects are reserved first (so pages can name their parent before it is
/// written) and written in any order; [`PdfFile::finish`] refuses a reserved object never written.
pub struct PdfFile {
    bytes: Vec<u8>,
    /// Byte offset of object `index + 1`, once written.
    offsets: Vec<Option<usize>>,
}

impl PdfFile {
    /// The header: the version, then a comment of four bytes above 127 so that tools treat the
    /// file as binary (the embedded JSON may hold any UTF-8).
    pub fn new() -> PdfFile {
        let mut bytes = b"%PDF-1.7\n%".to_vec();
        bytes.extend_from_slice(&[0xE2, 0xE3, 0xCF, 0xD3, b'\n']);
        PdfFile { bytes, offsets: Vec::new() }
    }

    /// A number for an object written later.
    pub fn reserve(&mut self) -> ObjectId {
        self.offsets.push(None);
        ObjectId(self.offsets.len())
    }

    /// Writes `id` as the dictionary (or other value) `body`.
    pub fn object(&mut self, id: ObjectId, body: &str) {
        self.open(id);
        self.bytes.extend_from_slice(body.as_bytes());
        self.bytes.extend_from_slice(b"\nendobj\n");
    }

    /// Writes `id` as a stream of `data` whose dictionary holds `entries` besides its `/Length`.
    pub fn stream(&mut self, id: ObjectId, entries: &str, data: &[u8]) {
        self.open(id);
        let head = format!("<< {entries} /Length {} >>\nstream\n", data.len());
        self.bytes.extend_from_slice(head.as_bytes());
        self.bytes.extend_from_slice(data);
        self.bytes.extend_from_slice(b"\nendstream\nendobj\n");
    }

    fn open(&mut self, id: ObjectId) {
        let slot = &mut self.offsets[id.0 - 1];
        assert!(slot.is_none(), "PDF object {} written twice", id.0);
        *slot = Some(self.bytes.len());
        self.bytes.extend_from_slice(format!("{} 0 obj\n", id.0).as_bytes());
    }

    /// The cross-reference table, the trailer naming `root` and `info`, and the end of file.
    /// `file_id` is the trailer's `/ID` (hex), which readers use to tell files apart.
    pub fn finish(mut self, root: ObjectId, info: ObjectId, file_id: &str) -> Vec<u8> {
        let xref_at = self.bytes.len();
        let mut table = format!("xref\n0 {}\n0000000000 65535 f\r\n", self.offsets.len() + 1);
        for (index, offset) in self.offsets.iter().enumerate() {
            let offset = offset.unwrap_or_else(|| panic!("PDF object {} was reserved but never written", index + 1));
            // Each entry is exactly 20 bytes: ten digits, space, five digits, space, 'n', CR LF.
            let _ = write!(table, "{offset:010} 00000 n\r\n");
        }
        let _ = write!(
            table,
            "trailer\n<< /Size {} /Root {} /Info {} /ID [<{file_id}> <{file_id}>] >>\nstartxref\n{xref_at}\n%%EOF\n",
            self.offsets.len() + 1,
            root.reference(),
            info.reference(),
        );
        self.bytes.extend_from_slice(table.as_bytes());
        self.bytes
    }
}

/// `text` as a PDF literal string in WinAnsiEncoding: `(`, `)` and `\` escaped, bytes outside
/// printable ASCII written as octal escapes, and characters WinAnsi lacks replaced by `?`.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('(');
    for byte in text.chars().map(win_ansi) {
        match byte {
            b'(' | b')' | b'\\' => {
                out.push('\\');
                out.push(byte as char);
            }
            0x20..=0x7E => out.push(byte as char),
            _ => {
                let _ = write!(out, "\\{byte:03o}");
            }
        }
    }
    out.push(')');
    out
}

/// The WinAnsiEncoding byte of `c`, or `?` when it has none (control characters included).
pub fn win_ansi(c: char) -> u8 {
    // The 0x80–0x9F row, where WinAnsi departs from Latin-1; 0x81, 0x8D, 0x8F, 0x90, 0x9D are unused.
    const ROW_80: [char; 32] = [
        '€', '\0', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\0', 'Ž', '\0', '\0', '‘', '’', '“', '”', '•', '–', '—', '˜',
        '™', 'š', '›', 'œ', '\0', 'ž', 'Ÿ',
    ];
    match c as u32 {
        0x20..=0x7E | 0xA0..=0xFF => c as u8,
        _ => ROW_80.iter().position(|&special| special == c && c != '\0').map_or(b'?', |index| 0x80 + index as u8),
    }
}

/// Width of `text` in Helvetica at `size` points, for laying out columns. Bold glyphs are a little
/// wider; `bold` scales the estimate so bold text never overruns the width measured for it. Digits,
/// '.', ',' and '-' are as wide in both, so right-aligned amounts line up exactly.
pub fn text_width(text: &str, size: f32, bold: bool) -> f32 {
    let units: u32 = text.chars().map(glyph_width).sum();
    let scale = if bold { 1.08 } else { 1.0 };
    units as f32 * size / 1000.0 * scale
}

/// Helvetica's advance widths (thousandths of the font size) from its AFM file, for ASCII; other
/// characters are given the width of a digit, which most Latin-1 letters are close to.
fn glyph_width(c: char) -> u32 {
    const ASCII: [u16; 95] = [
        278, 278, 355, 556, 556, 889, 667, 191, 333, 333, 389, 584, 278, 333, 278, 278, // space to /
        556, 556, 556, 556, 556, 556, 556, 556, 556, 556, 278, 278, 584, 584, 584, 556, // 0 to ?
        1015, 667, 667, 722, 722, 667, 611, 778, 722, 278, 500, 667, 556, 833, 722, 778, // @ to O
        667, 778, 722, 667, 611, 722, 667, 944, 667, 667, 611, 278, 278, 278, 469, 556, // P to _
        333, 556, 556, 500, 556, 556, 278, 556, 556, 222, 222, 500, 222, 833, 556, 556, // ` to o
        556, 556, 333, 500, 278, 556, 500, 722, 500, 500, 500, 334, 260, 334, 584, // p to ~
    ];
    match c as u32 {
        code @ 0x20..=0x7E => u32::from(ASCII[(code - 0x20) as usize]),
        _ => 556,
    }
}

/// `text` as a PDF text string (for the document information and file names, which are read in
/// PDFDocEncoding or UTF-16, not in a font's encoding): UTF-16BE with its byte-order mark, in hex,
/// so any character survives and nothing needs escaping.
pub fn text_string(text: &str) -> String {
    let mut out = String::from("<FEFF");
    for unit in text.encode_utf16() {
        let _ = write!(out, "{unit:04X}");
    }
    out.push('>');
    out
}
