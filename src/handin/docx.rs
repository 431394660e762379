//! A DOCX report's text, paragraph by paragraph, read within bounds.
//!
//! A DOCX is a ZIP whose `word/document.xml` holds the text. A document-model crate
//! (docx-rs) inflates every part and builds the whole tree in memory, recursively: a 7 MB
//! upload whose document inflates to 2 GB took 6 GB before it was killed, and ten thousand
//! nested elements would overflow the stack. No crate reads a DOCX's text with a cap on what
//! it inflates, so this is done by hand on top of `zip` (the archive) and `quick-xml` (a
//! streaming parser): one part is read, its inflated bytes are counted against a cap, its
//! nesting against a depth, and only the text a reader sees is kept.

use std::io::{BufReader, Read};

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// What reading one report may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Inflated bytes of the document part (`--max-report-part`).
    pub max_part_bytes: u64,
    /// Elements open at once: Word nests a few dozen deep at most.
    pub max_depth: usize,
    /// Paragraphs: a 300-page report has some ten thousand; empty ones cost memory too.
    pub max_paragraphs: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_part_bytes: 64 << 20, max_depth: 512, max_paragraphs: 200_000 }
    }
}

/// One paragraph (of the body, or of a table cell) as a reader sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    /// Runs, links and tracked insertions; a tab is `\t`, a line break `\n`.
    pub text: String,
    /// Its style is a heading or the title.
    pub heading: bool,
}

const DOCUMENT: &str = "word/document.xml";

/// The document's paragraphs, in order; an error says why the file is not a readable DOCX.
pub fn paragraphs(bytes: &[u8], limits: Limits) -> Result<Vec<Paragraph>, String> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let part = archive.by_name(DOCUMENT).map_err(|e| format!("{DOCUMENT}: {e}"))?;
    // Counted as it inflates: the size the archive declares is the uploader's word.
    let capped = part.take(limits.max_part_bytes + 1);
    let mut reader = Reader::from_reader(BufReader::new(capped));
    let mut walk = Walk::default();
    let mut buf = Vec::new();
    loop {
        let event =
            reader.read_event_into(&mut buf).map_err(|e| match reader.buffer_position() > limits.max_part_bytes {
                true => too_big(limits),
                false => format!("{DOCUMENT}: {e}"),
            })?;
        if reader.buffer_position() > limits.max_part_bytes {
            return Err(too_big(limits));
        }
        match event {
            Event::Start(e) => {
                walk.open(&e, false);
                if walk.depth > limits.max_depth {
                    return Err(format!(
                        "{DOCUMENT} nests elements over {} deep (no word processor writes that)",
                        limits.max_depth
                    ));
                }
            }
            Event::Empty(e) => walk.open(&e, true),
            Event::End(e) => walk.close(e.local_name().as_ref()),
            Event::Text(t) => walk.text(&t.decode().map_err(|e| format!("{DOCUMENT}: {e}"))?),
            Event::CData(t) => walk.text(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => {
                let name = r.decode().map_err(|e| format!("{DOCUMENT}: {e}"))?;
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => quick_xml::escape::resolve_predefined_entity(&name).unwrap_or_default().to_string(),
                };
                walk.text(&resolved);
            }
            Event::Eof => break,
            _ => {}
        }
        if walk.paragraphs.len() > limits.max_paragraphs {
            return Err(format!(
                "{DOCUMENT} holds over {} paragraphs (no report has that many)",
                limits.max_paragraphs
            ));
        }
        buf.clear();
    }
    Ok(walk.paragraphs)
}

fn too_big(limits: Limits) -> String {
    format!("{DOCUMENT} inflates to over {} MiB (a ZIP bomb, or pictures pasted as text?)", limits.max_part_bytes >> 20)
}

/// Where the parse is: how deep, inside which paragraph, in which text or ignored subtree.
#[derive(Default)]
struct Walk {
    depth: usize,
    body: Option<usize>,
    /// The paragraph being read, and its depth.
    paragraph: Option<(Paragraph, usize)>,
    /// Inside `<w:t>`: its characters are the text.
    in_text: bool,
    /// The depth of a subtree whose text is not the body's: drawings, text boxes, and
    /// body-level content controls (a table of contents repeats the headings).
    ignored: Option<usize>,
    paragraphs: Vec<Paragraph>,
}

impl Walk {
    /// An element opens (`empty`: and closes at once, `<w:br/>`).
    fn open(&mut self, e: &BytesStart, empty: bool) {
        if !empty {
            self.depth += 1;
        }
        if self.ignored.is_some() {
            return;
        }
        let name = e.local_name();
        let in_body = self.body.is_some();
        match name.as_ref() {
            b"body" if !empty => self.body = Some(self.depth),
            b"sdt" if self.body.is_some_and(|b| self.depth == b + 1) && !empty => self.ignored = Some(self.depth),
            b"drawing" | b"pict" | b"object" | b"AlternateContent" if !empty => self.ignored = Some(self.depth),
            // A paragraph inside a paragraph is a text box's: not the body's text.
            b"p" if self.paragraph.is_some() && !empty => self.ignored = Some(self.depth),
            b"p" if in_body && self.paragraph.is_none() => {
                let p = Paragraph { text: String::new(), heading: false };
                match empty {
                    true => self.paragraphs.push(p),
                    false => self.paragraph = Some((p, self.depth)),
                }
            }
            b"t" if !empty => self.in_text = self.paragraph.is_some(),
            b"tab" | b"ptab" => self.push("\t"),
            b"br" | b"cr" => self.push("\n"),
            b"pStyle" => {
                let style = e.try_get_attribute("w:val").ok().flatten();
                if let (Some((p, _)), Some(style)) = (self.paragraph.as_mut(), style) {
                    p.heading = is_heading_style(&String::from_utf8_lossy(&style.value).to_lowercase());
                }
            }
            _ => {}
        }
    }

    fn close(&mut self, name: &[u8]) {
        if self.ignored == Some(self.depth) {
            self.ignored = None;
        } else if self.ignored.is_none() {
            match name {
                b"t" => self.in_text = false,
                b"body" => self.body = None,
                b"p" if self.paragraph.as_ref().is_some_and(|(_, d)| *d == self.depth) => {
                    let (p, _) = self.paragraph.take().expect("checked above");
                    self.paragraphs.push(p);
                }
                _ => {}
            }
        }
        self.depth = self.depth.saturating_sub(1);
    }

    fn text(&mut self, t: &str) {
        if self.in_text && self.ignored.is_none() {
            self.push(t);
        }
    }

    fn push(&mut self, t: &str) {
        if let (Some((p, _)), None) = (self.paragraph.as_mut(), self.ignored) {
            p.text.push_str(t);
        }
    }
}

/// Word's and LibreOffice's heading styles (`Heading1`, Polish Word's `Nagwek1`), and the title.
fn is_heading_style(style_id: &str) -> bool {
    ["heading", "nagwek", "nagłówek", "title", "tytu"].iter().any(|h| style_id.starts_with(h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn docx(document_xml: &str) -> Vec<u8> {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(DOCUMENT, options).unwrap();
        zip.write_all(document_xml.as_bytes()).unwrap();
        zip.finish().unwrap();
        out.into_inner()
    }

    const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

    #[test]
    fn paragraphs_headings_tables_breaks_and_entities() {
        let xml = format!(
            r#"<?xml version="1.0"?><w:document {W}><w:body>
<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>1. Builds</w:t></w:r></w:p>
<w:p><w:r><w:t xml:space="preserve">a &amp; b </w:t><w:tab/><w:t>c&#x41;</w:t><w:br/><w:t>next</w:t></w:r></w:p>
<w:p/>
<w:tbl><w:tr><w:tc><w:p><w:hyperlink><w:r><w:t>cell</w:t></w:r></w:hyperlink><w:ins><w:r><w:t>+</w:t></w:r></w:ins></w:p></w:tc></w:tr></w:tbl>
<w:p><w:r><w:drawing><w:txbxContent><w:p><w:r><w:t>box</w:t></w:r></w:p></w:txbxContent></w:drawing><w:t>after</w:t></w:r></w:p>
<w:sdt><w:sdtContent><w:p><w:r><w:t>contents</w:t></w:r></w:p></w:sdtContent></w:sdt>
</w:body></w:document>"#
        );
        let ps = paragraphs(&docx(&xml), Limits::default()).unwrap();
        let texts: Vec<(&str, bool)> = ps.iter().map(|p| (p.text.as_str(), p.heading)).collect();
        assert_eq!(
            texts,
            [("1. Builds", true), ("a & b \tcA\nnext", false), ("", false), ("cell+", false), ("after", false)]
        );
    }

    #[test]
    fn a_part_that_inflates_past_the_cap_is_refused_in_bounded_memory() {
        let filler = "<w:p><w:r><w:t>".to_string() + &"x".repeat(4 << 20) + "</w:t></w:r></w:p>";
        let xml = format!(r#"<w:document {W}><w:body>{filler}{filler}</w:body></w:document>"#);
        let limits = Limits { max_part_bytes: 1 << 20, ..Limits::default() };
        let e = paragraphs(&docx(&xml), limits).unwrap_err();
        assert!(e.contains("inflates to over 1 MiB"), "{e}");
    }

    #[test]
    fn ten_thousand_nested_elements_are_refused_not_followed() {
        let xml = format!(
            r#"<w:document {W}><w:body>{}{}</w:body></w:document>"#,
            "<w:p>".repeat(10_000),
            "</w:p>".repeat(10_000)
        );
        let e = paragraphs(&docx(&xml), Limits::default()).unwrap_err();
        assert!(e.contains("nests elements over 512 deep"), "{e}");
    }

    #[test]
    fn a_zip_without_a_document_is_not_a_docx() {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut out);
        zip.start_file("hello.txt", zip::write::SimpleFileOptions::default()).unwrap();
        zip.finish().unwrap();
        assert!(paragraphs(&out.into_inner(), Limits::default()).unwrap_err().contains("word/document.xml"));
        assert!(paragraphs(b"PK\x03\x04 not a docx", Limits::default()).is_err());
    }
}
