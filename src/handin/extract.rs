//! A hand-in's text, line by line, with where each line is: Markdown and text are decoded as
//! build logs are (any encoding, CRLF); a PDF's text comes page by page from pdf-extract, a
//! DOCX's paragraph by paragraph (`docx`, within bounds). No external program runs.

use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use serde::{Deserialize, Serialize};

use crate::builds::log_text;
use crate::Error;

/// The kinds of file a report comes as, told by its first bytes (a `.docx` is a ZIP, a PDF
/// starts `%PDF-`), not by its name alone: students rename files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HandInFormat {
    Markdown,
    Text,
    Pdf,
    Docx,
}

/// Where a line of the hand-in is, as its reader would find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Location {
    Line(usize),
    Page {
        page: usize,
        line: usize,
    },
    /// A DOCX has no lines: its paragraphs are numbered, the line within one after it.
    Paragraph {
        paragraph: usize,
        line: usize,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Line(n) => write!(f, "line {n}"),
            Location::Page { page, line } => write!(f, "page {page}, line {line}"),
            Location::Paragraph { paragraph, line: 1 } => write!(f, "paragraph {paragraph}"),
            Location::Paragraph { paragraph, line } => write!(f, "paragraph {paragraph}, line {line}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub text: String,
    pub at: Location,
    /// The document marks it a heading (a DOCX heading style); Markdown's `#` and numbered
    /// headings are told by their text.
    pub heading: bool,
}

impl Line {
    pub fn new(text: impl Into<String>, at: Location) -> Line {
        Line { text: text.into(), at, heading: false }
    }
}

/// A report larger than this is refused unread: a text with its screenshots is a few MB.
pub const MAX_REPORT_FILE_BYTES: u64 = 256 << 20;

/// Reads a report; an unreadable one is an input error naming the file and what to hand in.
pub fn read(path: &Path) -> Result<(HandInFormat, Vec<Line>), Error> {
    read_within(path, super::docx::Limits::default())
}

/// The same, with the cap on what a DOCX part may inflate to.
pub fn read_within(path: &Path, docx_limits: super::docx::Limits) -> Result<(HandInFormat, Vec<Line>), Error> {
    let not_read = |e: String| {
        Error::input(
            format!("{}: {e}", path.display()),
            "give the path of the student's report (.md, .txt, .pdf or .docx)",
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| not_read(e.to_string()))?;
    if !meta.is_file() {
        return Err(not_read("not a regular file".into()));
    }
    if meta.len() > MAX_REPORT_FILE_BYTES {
        return Err(Error::input(
            format!(
                "{}: {} MiB, over the {} MiB a report may have",
                path.display(),
                meta.len() >> 20,
                MAX_REPORT_FILE_BYTES >> 20
            ),
            "hand in the report without pasted videos or disk images: text and a few screenshots",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| not_read(e.to_string()))?;
    let format = format_of(path, &bytes);
    let unreadable = |why: String| {
        Error::input(
            format!("{}: not a readable {format:?} file: {why}", path.display()),
            "export the report again (File → Save as / Export as PDF) or hand in Markdown or text",
        )
    };
    let lines = match format {
        HandInFormat::Pdf => pdf_lines(&bytes).map_err(unreadable)?,
        HandInFormat::Docx => docx_lines(&bytes, docx_limits).map_err(unreadable)?,
        HandInFormat::Markdown | HandInFormat::Text => {
            let text = log_text::decode(&bytes);
            if log_text::looks_binary(&text) {
                return Err(unreadable("it holds binary data".into()));
            }
            numbered(&text)
        }
    };
    if lines.iter().all(|l| l.text.trim().is_empty()) {
        return Err(Error::input(
            format!("{}: no text in it (a scan, or outputs pasted as screenshots?)", path.display()),
            "hand in the outputs as text: paste them into the document, or export a PDF with its text",
        ));
    }
    Ok((format, lines))
}

fn format_of(path: &Path, bytes: &[u8]) -> HandInFormat {
    if bytes.starts_with(b"%PDF-") {
        return HandInFormat::Pdf;
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return HandInFormat::Docx;
    }
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("md" | "markdown") => HandInFormat::Markdown,
        _ => HandInFormat::Text,
    }
}

/// Text lines numbered from 1.
pub fn numbered(text: &str) -> Vec<Line> {
    text.lines().enumerate().map(|(i, l)| Line::new(l, Location::Line(i + 1))).collect()
}

fn pdf_lines(bytes: &[u8]) -> Result<Vec<Line>, String> {
    let pages = pdf_extract::extract_text_from_mem_by_pages(bytes).map_err(|e| e.to_string())?;
    let mut lines = Vec::new();
    for (p, page) in pages.iter().enumerate() {
        // pdf-extract ends each block of text (a paragraph, a code block) with a blank line: it
        // is kept, as a Markdown file's would be; a line's number counts only the lines with text.
        // A page's own last blank is not a paragraph's end: text may go on on the next page.
        let mut n = 0;
        let mut gap = false;
        for l in page.lines() {
            if l.trim().is_empty() {
                gap = n > 0;
                continue;
            }
            n += 1;
            let at = Location::Page { page: p + 1, line: n };
            if std::mem::take(&mut gap) {
                let before = lines.last().map_or(at, |prev: &Line| prev.at);
                lines.push(Line::new("", before));
            }
            match lines.last_mut() {
                Some(prev) if wrapped(prev, l) => prev.text.push_str(l),
                _ => lines.push(Line::new(l, at)),
            }
        }
    }
    for l in &mut lines {
        l.text.truncate(l.text.trim_end().len());
    }
    Ok(lines)
}

/// Whether `next` is the rest of `prev`, wrapped by the word processor at the page's edge:
/// after a space (the space stays at the end of `prev`), or inside a digest, which has no
/// space to wrap at. A line that starts a record of its own (`#12 `, `=> `, `$ `, a header
/// `Name: `, JSON) is never a continuation, even after a space real output ends with.
fn wrapped(prev: &Line, next: &str) -> bool {
    static RECORD: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^\s*(#\d+ |=> |\$ |\[\+\]|-{6}|HTTP/|[\w.-]+: |[{}\["]|ERROR|\d+\. )"#).unwrap()
    });
    static CUT_DIGEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"sha256:([0-9a-f]{0,63})$").unwrap());
    static HEX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[0-9a-f]+").unwrap());
    if let Some(c) = CUT_DIGEST.captures(&prev.text) {
        return HEX.find(next).is_some_and(|m| c[1].len() + m.len() >= 64);
    }
    prev.text.ends_with(' ') && !prev.text.trim().is_empty() && !RECORD.is_match(next)
}

fn docx_lines(bytes: &[u8], limits: super::docx::Limits) -> Result<Vec<Line>, String> {
    let mut lines = Vec::new();
    for (i, p) in super::docx::paragraphs(bytes, limits)?.into_iter().enumerate() {
        let paragraph = i + 1;
        for (n, l) in p.text.split('\n').enumerate() {
            let mut line = Line::new(l, Location::Paragraph { paragraph, line: n + 1 });
            line.heading = p.heading;
            lines.push(line);
        }
        // Paragraphs are apart, as blank lines keep them in a text file.
        lines.push(Line::new("", Location::Paragraph { paragraph, line: 1 }));
    }
    Ok(lines)
}
