//! A report is a student's file: read within bounds of memory and time, whatever it holds.
//! Each test hands `lab7 grade-report` (or `batch --reports`) a document made to exhaust its
//! reader — a DOCX that inflates to gigabytes or nests ten thousand elements, a PDF whose
//! stream inflates without end or never ends — and a signal stops either within a second.
//! No Docker.

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::text;

const W: &str = r#"xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main""#;

fn lab7(args: &[&str]) -> std::process::Output {
    common::lab7(&common::root(), args)
}

/// `head`, then `unit` over and over to about `n` bytes, then `tail`, as one deflate stream
/// (`zlib`: with zlib's header) made in milliseconds: one MiB of `unit`s is compressed twice
/// with a sync flush, and the second copy — whose back-references reach only into the copy
/// before it, the same bytes every time — is repeated. Gigabytes inflate from a few hundred
/// KB; the checksum at the stream's very end is wrong, which no reader gets to.
fn deflate_repeating(head: &str, unit: &str, n: u64, tail: &str, zlib: bool) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    let chunk = unit.repeat(((1 << 20) / unit.len()).max(1)).into_bytes();
    let mut c = Compress::new(Compression::fast(), zlib);
    let mut part = |input: &[u8], flush| {
        let mut out = Vec::with_capacity(input.len() + (1 << 16));
        c.compress_vec(input, &mut out, flush).unwrap();
        out
    };
    let mut out = part(head.as_bytes(), FlushCompress::Sync);
    out.extend(part(&chunk, FlushCompress::Sync));
    let again = part(&chunk, FlushCompress::Sync);
    for _ in 2..=n / chunk.len() as u64 {
        out.extend_from_slice(&again);
    }
    out.extend(part(tail.as_bytes(), FlushCompress::Finish));
    out
}

/// A DOCX whose `word/document.xml` is `head`, `body` repeated to `n` bytes, then `tail`,
/// stored deflated in a ZIP written here (the zip crate compresses what it is given; this
/// entry is compressed already and declares the size it inflates to).
fn docx(dir: &Path, name: &str, head: &str, body: &str, n: u64, tail: &str) -> PathBuf {
    let data = deflate_repeating(head, body, n, tail, false);
    let size = (head.len() as u64 + n + tail.len() as u64).min(u32::MAX as u64) as u32;
    let name_bytes = b"word/document.xml";
    let mut zip = Vec::new();
    let header = |zip: &mut Vec<u8>, central: bool| {
        zip.extend_from_slice(if central { &[0x50, 0x4b, 0x01, 0x02, 20, 0] } else { &[0x50, 0x4b, 0x03, 0x04] });
        zip.extend_from_slice(&[20, 0, 0, 0, 8, 0, 0, 0, 0, 0]); // version, flags, deflate, time, date
        zip.extend_from_slice(&0u32.to_le_bytes()); // crc-32: checked only at the end
        zip.extend_from_slice(&(data.len() as u32).to_le_bytes());
        zip.extend_from_slice(&size.to_le_bytes());
        zip.extend_from_slice(&(name_bytes.len() as u16).to_le_bytes());
        zip.extend_from_slice(&0u16.to_le_bytes()); // extra
        if central {
            zip.extend_from_slice(&[0; 10]); // comment length, disk, internal and external attributes
            zip.extend_from_slice(&0u32.to_le_bytes()); // the local header's offset
        }
        zip.extend_from_slice(name_bytes);
    };
    header(&mut zip, false);
    zip.extend_from_slice(&data);
    let central_at = zip.len() as u32;
    header(&mut zip, true);
    let central_len = zip.len() as u32 - central_at;
    zip.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0, 1, 0, 1, 0]);
    zip.extend_from_slice(&central_len.to_le_bytes());
    zip.extend_from_slice(&central_at.to_le_bytes());
    zip.extend_from_slice(&[0, 0]);
    let path = dir.join(name);
    std::fs::write(&path, zip).unwrap();
    path
}

/// A one-page PDF whose content stream is `declared` as FlateDecode data: `content` bytes of
/// text-showing operators, deflated; `endless` leaves out `endstream` and claims a huge length.
fn pdf(dir: &Path, name: &str, content: u64, endless: bool) -> PathBuf {
    let stream = deflate_repeating("", "BT /F1 12 Tf 72 712 Td (lab7 was here) Tj ET\n", content, "", true);
    let mut out: Vec<u8> = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    let mut object = |out: &mut Vec<u8>, body: &[u8]| {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n", offsets.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    object(&mut out, b"<< /Type /Catalog /Pages 2 0 R >>");
    object(&mut out, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>");
    object(
        &mut out,
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
    );
    let length = if endless { 999_999_999_999 } else { stream.len() };
    let mut contents = format!("<< /Length {length} /Filter /FlateDecode >>\nstream\n").into_bytes();
    contents.extend_from_slice(&stream);
    if !endless {
        contents.extend_from_slice(b"\nendstream");
    }
    object(&mut out, &contents);
    object(&mut out, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>");
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", offsets.len() + 1).as_bytes());
    for o in &offsets {
        out.extend_from_slice(format!("{o:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", offsets.len() + 1).as_bytes(),
    );
    let path = dir.join(name);
    std::fs::write(&path, out).unwrap();
    path
}

fn refused_as_unreadable(file: &Path, flags: &[&str], why: &[&str]) {
    let started = Instant::now();
    let mut args = vec!["grade-report", file.to_str().unwrap(), "--report-timeout", "30"];
    args.extend(flags);
    let o = lab7(&args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(why.iter().any(|w| t.contains(w)) && t.contains("fix:"), "{t}");
    assert!(started.elapsed() < Duration::from_secs(30), "read past its timeout: {:?}", started.elapsed());
}

#[test]
fn a_docx_that_inflates_to_gigabytes_is_refused_at_its_cap() {
    let dir = tempfile::tempdir().unwrap();
    let head = format!("<w:document {W}><w:body>");
    let bomb =
        docx(dir.path(), "bomb.docx", &head, "<w:p><w:r><w:t>x</w:t></w:r></w:p>", 2 << 30, "</w:body></w:document>");
    assert!(std::fs::metadata(&bomb).unwrap().len() < 32 << 20, "the bomb is small");
    refused_as_unreadable(&bomb, &[], &["inflates to over 64 MiB", "paragraphs (no report has that many)"]);
    // One long text inflating past the cap: the cap, not the memory, ends it.
    let text = docx(dir.path(), "text.docx", &format!("{head}<w:p><w:r><w:t>"), "lorem ipsum ", 2 << 30, "</w:t>");
    refused_as_unreadable(&text, &[], &["inflates to over 64 MiB"]);
}

#[test]
fn a_docx_with_ten_thousand_nested_elements_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let head = format!("<w:document {W}><w:body>{}", "<w:p>".repeat(10_000));
    let nested = docx(dir.path(), "nested.docx", &head, " ", 1, &"</w:p>".repeat(10_000));
    refused_as_unreadable(&nested, &[], &["nests elements over 512 deep"]);
}

#[test]
fn a_pdf_stream_that_inflates_without_end_is_refused_in_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();
    // --report-limit 16m: the reader gets 16 × 16 MiB = 256 MiB, which the stream outgrows.
    let huge = pdf(dir.path(), "huge.pdf", 3 << 30, false);
    refused_as_unreadable(&huge, &["--report-limit", "16m"], &["needed more than the 256 MiB lab7 gives a report"]);
    let endless = pdf(dir.path(), "endless.pdf", 1 << 20, true);
    let o = lab7(&["grade-report", endless.to_str().unwrap(), "--report-timeout", "30"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

/// The report reader a signal must stop: no lab7 process reading `file` is left.
fn readers_of(file: &Path) -> usize {
    let mut n = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline);
        if cmdline.contains("read-report") && cmdline.contains(file.to_str().unwrap()) {
            n += 1;
        }
    }
    n
}

fn stops_within_a_second(mut child: Child, sig: i32, code: i32, file: &Path) {
    std::thread::sleep(Duration::from_millis(500)); // well inside the reading
    assert!(readers_of(file) > 0, "the report is being read");
    let sent = Instant::now();
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
    let status = child.wait().unwrap();
    assert!(sent.elapsed() < Duration::from_secs(1), "stopped after {:?}", sent.elapsed());
    assert_eq!(status.code(), Some(code));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(readers_of(file), 0, "the reader outlived lab7");
}

/// Whatever a reader is parsing, SIGINT stops `grade-report` and SIGTERM `batch --reports`
/// within a second, the reader with them; the batch keeps the rows it finished.
#[test]
fn a_signal_stops_report_reading_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    // Memory enough (--report-limit 8g) that only the signal ends the reading of 6 GiB.
    let slow = pdf(dir.path(), "b-slow.pdf", 6 << 30, false);
    let args = ["grade-report", slow.to_str().unwrap(), "--report-limit", "8g"];
    stops_within_a_second(common::spawn_lab7(&args), libc::SIGINT, 130, &slow);

    std::fs::copy(common::root().join("tests/fixtures/reports/complete-en.md"), dir.path().join("a-complete.md"))
        .unwrap();
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("reports.csv");
    let class = dir.path().to_str().unwrap();
    let mut batch =
        common::spawn_lab7(&["batch", "--reports", class, "--out", csv.to_str().unwrap(), "--report-limit", "8g"]);
    common::wait_for_line(&mut batch, "report 2/2: b-slow.pdf");
    stops_within_a_second(batch, libc::SIGTERM, 143, &slow);
    let table = std::fs::read_to_string(&csv).unwrap();
    assert!(table.lines().any(|l| l.starts_with("a-complete.md,pass,")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("b-slow.pdf,interrupted,")), "{table}");
}
