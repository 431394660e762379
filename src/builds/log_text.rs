//! A saved build output as students hand it in, back to the lines BuildKit printed.
//!
//! The same build reaches lab7 in many wrappings: UTF-8 or UTF-16 with a BOM (PowerShell 5's
//! `>` writes UTF-16LE), CRLF line ends, a CI runner's timestamp before every line, or a raw
//! terminal capture (`script`, an IDE console) holding every redraw of buildx's tty display with
//! its colours and cursor moves. Each wrapping is undone here, before any parsing, so the parsers
//! see one form per progress mode.

use std::sync::LazyLock;

use regex::Regex;

/// Bytes to text: a BOM decides the encoding (UTF-8, UTF-16LE/BE); without one, UTF-16LE is
/// recognised by its zero high bytes, and anything else is read as UTF-8 (invalid bytes become
/// U+FFFD rather than refusing a log over one stray byte).
pub fn decode(bytes: &[u8]) -> String {
    let encoding = encoding_rs::Encoding::for_bom(bytes).map(|(e, _)| e).unwrap_or_else(|| {
        if looks_utf16le(bytes) {
            encoding_rs::UTF_16LE
        } else {
            encoding_rs::UTF_8
        }
    });
    // `decode` strips the BOM it sniffs.
    let (text, _, _) = encoding.decode(bytes);
    text.into_owned()
}

/// ASCII text in UTF-16LE has a zero in every odd byte.
fn looks_utf16le(bytes: &[u8]) -> bool {
    let sample = &bytes[..bytes.len().min(512)];
    sample.len() >= 8 && sample.iter().skip(1).step_by(2).all(|b| *b == 0)
}

/// The lines a reader of the terminal saw at the end: a capture with escape sequences or bare
/// carriage returns is replayed on a screen that grows as needed; text without them is
/// returned as it is (CRLF ends become LF).
pub fn unwrap_terminal(text: &str) -> String {
    let text = if text.contains("\r\n") { text.replace("\r\n", "\n") } else { text.to_string() };
    if !text.contains('\x1b') && !text.contains('\r') {
        return text;
    }
    let mut screen = Screen::default();
    vte::Parser::new().advance(&mut screen, text.as_bytes());
    screen.into_text()
}

/// Text that decoded into NULs or mostly replacement characters was never text.
pub fn looks_binary(text: &str) -> bool {
    let bad = text.chars().filter(|c| *c == '\0' || *c == '\u{FFFD}').count();
    bad > 0 && bad * 20 > text.chars().count().min(4096)
}

/// What a reader of the terminal saw, each line as the tool printed it: terminal redraws
/// replayed, CRLF ends and CI timestamps removed.
pub fn normalise(text: &str) -> String {
    strip_timestamps(&unwrap_terminal(text))
}

/// `2026-11-29T12:00:00.1234567Z ` (GitHub Actions), `[2026-11-29T12:00:00.123Z] ` (Jenkins
/// timestamper), `2026-11-29 12:00:00,123 ` and the like: an ISO date and time at the start of
/// a line, bracketed or not, with GitLab's section marker (`00O `, `01E+`) after it.
static TIMESTAMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?\]? ?(?:\d\d[OE]\+? ?)?")
        .unwrap()
});

/// One line without a CI runner's timestamp in front (a report mixes stamped output and prose,
/// so lines are taken one at a time there).
pub fn without_timestamp(line: &str) -> &str {
    TIMESTAMP.find(line).map_or(line, |m| &line[m.end()..])
}

/// Removes a CI runner's timestamp from every line, when most lines carry one (a log whose
/// own output happens to start with a date keeps it).
pub fn strip_timestamps(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let stamped = lines.iter().filter(|l| TIMESTAMP.is_match(l)).count();
    if stamped == 0 || stamped * 2 < lines.iter().filter(|l| !l.trim().is_empty()).count() {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for l in lines {
        out.push_str(&TIMESTAMP.replace(l, ""));
        out.push('\n');
    }
    out
}

/// A terminal that never scrolls anything away: buildx redraws its display by moving the
/// cursor up over the lines it drew before, so replaying the capture on a screen as tall as
/// the text leaves exactly the final display. vte parses the escape sequences; the screen
/// model is written here because a terminal emulator crate keeps a fixed-size screen.
#[derive(Default)]
struct Screen {
    lines: Vec<Vec<char>>,
    row: usize,
    col: usize,
}

impl Screen {
    fn line(&mut self) -> &mut Vec<char> {
        if self.lines.len() <= self.row {
            self.lines.resize_with(self.row + 1, Vec::new);
        }
        &mut self.lines[self.row]
    }

    fn erase_line(&mut self, mode: u16) {
        let col = self.col;
        let line = self.line();
        match mode {
            0 => line.truncate(col),
            1 => line.iter_mut().take(col + 1).for_each(|c| *c = ' '),
            _ => line.clear(),
        }
    }

    fn into_text(self) -> String {
        let mut out = String::new();
        for l in self.lines {
            out.push_str(l.iter().collect::<String>().trim_end());
            out.push('\n');
        }
        out
    }
}

impl vte::Perform for Screen {
    fn print(&mut self, c: char) {
        let col = self.col;
        let line = self.line();
        if line.len() <= col {
            line.resize(col + 1, ' ');
        }
        line[col] = c;
        self.col += 1;
    }

    fn execute(&mut self, byte: u8) {
        match byte {
            // A capture with or without the terminal's CR before LF: a new line starts at column 0.
            b'\n' => {
                self.row += 1;
                self.col = 0;
            }
            b'\r' => self.col = 0,
            0x08 => self.col = self.col.saturating_sub(1),
            b'\t' => self.col = (self.col / 8 + 1) * 8,
            _ => {}
        }
    }

    fn csi_dispatch(&mut self, params: &vte::Params, _: &[u8], _: bool, action: char) {
        let first = params.iter().next().and_then(|p| p.first().copied()).unwrap_or(0);
        let n = first.max(1) as usize;
        match action {
            'A' | 'F' => self.row = self.row.saturating_sub(n),
            'B' | 'E' => self.row += n,
            'C' => self.col += n,
            'D' => self.col = self.col.saturating_sub(n),
            'G' => self.col = n - 1,
            'K' => self.erase_line(first),
            // Erase below: the lines under the cursor go (a display that shrank).
            'J' if first == 0 => {
                self.erase_line(0);
                self.lines.truncate(self.row + 1);
            }
            _ => {}
        }
        if matches!(action, 'E' | 'F') {
            self.col = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16le_with_and_without_bom_and_utf8_bom_decode() {
        let text = "#1 [internal] load build definition\n";
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let with_bom = [&[0xFF, 0xFE][..], &utf16].concat();
        assert_eq!(decode(&with_bom), text);
        assert_eq!(decode(&utf16), text);
        assert_eq!(decode(&[&[0xEF, 0xBB, 0xBF][..], text.as_bytes()].concat()), text);
    }

    #[test]
    fn a_redraw_leaves_the_last_display() {
        let capture = "=> [1/2] RUN a 0.1s\n=> [2/2] RUN b 0.0s\n\x1b[2A\x1b[0G\x1b[2K=> [1/2] RUN a 1.0s\n\x1b[2K=> CACHED [2/2] RUN b\n";
        assert_eq!(unwrap_terminal(capture), "=> [1/2] RUN a 1.0s\n=> CACHED [2/2] RUN b\n");
    }

    #[test]
    fn ci_timestamps_go_only_when_most_lines_have_one() {
        let ci = "2026-11-29T12:00:00.1234567Z #1 DONE 0.0s\n2026-11-29T12:00:00.2Z #2 CACHED\n";
        assert_eq!(strip_timestamps(ci), "#1 DONE 0.0s\n#2 CACHED\n");
        let own = "#1 DONE\n#2 0.1 2026-11-29 12:00:00 started\n#2 DONE\n";
        assert_eq!(strip_timestamps(own), own);
    }
}
