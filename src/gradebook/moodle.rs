//! Grades back into Moodle. Moodle's importer (mod/assign/feedback/offline/importgradeslib.php
//! and locallib.php's process_import_grades) finds its columns by their headers in the site's
//! language — `Identifier`, `Grade`, `Last modified (grade)`, and each feedback field's name —
//! takes the participant id after the identifier's prefix, and skips a row whose grade is empty,
//! unchanged, above the maximum, or whose `Last modified (grade)` is more than 60 s older than
//! Moodle's own grade. So lab7 fills the worksheet the instructor downloaded, in place: every
//! header, cell, separator and decimal comma as they came, only those three cells of each
//! graded student's row written, and `Last modified (grade)` set to when lab7 graded.
//!
//! The columns are found without knowing the site's language: by their English headers where
//! they are, else by the worksheet's shape (Moodle writes `Identifier` first; `Grade` right
//! before `Maximum Grade`, whose cells are one number; `Last modified (grade)` and the feedback
//! comments last) — and lab7 says which header it took for each.

use std::io::Write;
use std::path::Path;

use crate::Error;

/// Where a worksheet keeps what lab7 fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub identifier: usize,
    pub grade: usize,
    pub max_grade: Option<usize>,
    pub modified: usize,
    pub feedback: Option<usize>,
    /// `Last modified (submission)`: when the student handed in, in the site's words.
    pub submitted: Option<usize>,
}

/// Moodle's offline grading worksheet, as downloaded.
#[derive(Debug, Clone)]
pub struct Worksheet {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<String>>,
    pub delimiter: u8,
    pub columns: Columns,
    /// The site writes numbers with a decimal comma (`100,00`).
    pub decimal_comma: bool,
    /// The file started with a UTF-8 byte order mark (kept when written).
    bom: bool,
}

/// One student's grade for the worksheet.
#[derive(Debug, Clone)]
pub struct Grade {
    pub participant: u64,
    /// In percent: 100 is the whole compulsory part, the bonus adds to it.
    pub percent: f64,
    pub feedback: String,
}

/// What filling did, for the instructor.
#[derive(Debug, Clone, Default)]
pub struct Filled {
    pub written: usize,
    /// Participants lab7 graded that the worksheet has no row for.
    pub not_in_worksheet: Vec<u64>,
    /// Participants whose grade was above Maximum Grade, capped (Moodle skips it otherwise).
    pub capped: Vec<u64>,
}

fn unreadable(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::input(
        format!("{}: not a Moodle grading worksheet: {e}", path.display()),
        "download it from the assignment: View all submissions → Grading action → Download grading worksheet",
    )
}

impl Worksheet {
    pub fn read(path: &Path) -> Result<Worksheet, Error> {
        let bytes = std::fs::read(path).map_err(|e| unreadable(path, e))?;
        let bom = bytes.starts_with(b"\xef\xbb\xbf");
        let text = String::from_utf8_lossy(if bom { &bytes[3..] } else { &bytes }).into_owned();
        // Moodle writes commas; a spreadsheet saved on a Polish desktop writes semicolons.
        let first = text.lines().next().unwrap_or_default();
        let delimiter = if first.matches(';').count() > first.matches(',').count() { b';' } else { b',' };
        let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(text.as_bytes());
        let headers: Vec<String> =
            reader.headers().map_err(|e| unreadable(path, e))?.iter().map(str::to_string).collect();
        let mut rows = Vec::new();
        for r in reader.records() {
            let mut r: Vec<String> = r.map_err(|e| unreadable(path, e))?.iter().map(str::to_string).collect();
            r.resize(headers.len(), String::new());
            rows.push(r);
        }
        let columns = locate(&headers, &rows).map_err(|e| unreadable(path, e))?;
        let decimal_comma = columns.max_grade.is_some_and(|m| rows.iter().any(|r| r[m].contains(',')));
        Ok(Worksheet { headers, rows, delimiter, columns, decimal_comma, bom })
    }

    /// Which header lab7 took for each cell it fills, for the instructor to see.
    pub fn describe(&self) -> String {
        let c = &self.columns;
        let h = |i: usize| format!("'{}'", self.headers[i]);
        format!(
            "Identifier → {}, Grade → {}, Last modified (grade) → {}, Feedback comments → {}",
            h(c.identifier),
            h(c.grade),
            h(c.modified),
            c.feedback.map_or("(none: the assignment has no feedback comments)".into(), h)
        )
    }

    /// The participant id of a row: the digits after the identifier's prefix.
    fn participant(&self, row: &[String]) -> Option<u64> {
        let id = &row[self.columns.identifier];
        let digits = id.trim_start_matches(|c: char| !c.is_ascii_digit());
        digits.trim().parse().ok()
    }

    /// Writes each graded student's Grade, feedback and the time lab7 graded (`when`, formatted
    /// so PHP's strtotime reads it). 100 % is `full_marks` (default: the row's Maximum Grade); a
    /// grade above Maximum Grade is written as the maximum and listed, since Moodle would skip it.
    pub fn fill(&mut self, grades: &[Grade], when: &str, full_marks: Option<f64>) -> Filled {
        let mut filled = Filled::default();
        let c = self.columns.clone();
        for g in grades {
            let Some(i) = self.rows.iter().position(|r| self.participant(r) == Some(g.participant)) else {
                filled.not_in_worksheet.push(g.participant);
                continue;
            };
            let row = &mut self.rows[i];
            let max = c.max_grade.and_then(|m| number(&row[m])).unwrap_or(100.0);
            let mut grade = g.percent / 100.0 * full_marks.unwrap_or(max);
            if grade > max {
                grade = max;
                filled.capped.push(g.participant);
            }
            let text = format!("{grade:.2}");
            row[c.grade] = if self.decimal_comma { text.replace('.', ",") } else { text };
            row[c.modified] = when.to_string();
            if let Some(f) = c.feedback {
                row[f] = g.feedback.clone();
            }
            filled.written += 1;
        }
        filled
    }

    /// When a participant handed in, as the worksheet says (`None`: not handed in, or a date
    /// lab7 cannot read).
    pub fn submitted(&self, participant: u64) -> Option<time::PrimitiveDateTime> {
        let col = self.columns.submitted?;
        let row = self.rows.iter().find(|r| self.participant(r) == Some(participant))?;
        moodle_date(&row[col])
    }

    pub fn write(&self, path: &Path) -> Result<(), Error> {
        let fail = |e: &dyn std::fmt::Display| {
            Error::input(format!("{}: cannot write the worksheet: {e}", path.display()), "name a file you may write")
        };
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(b"\xef\xbb\xbf");
        }
        let mut w = csv::WriterBuilder::new().delimiter(self.delimiter).from_writer(out);
        w.write_record(&self.headers).map_err(|e| fail(&e))?;
        for r in &self.rows {
            w.write_record(r).map_err(|e| fail(&e))?;
        }
        let out = w.into_inner().map_err(|e| fail(&e.error().to_string()))?;
        std::fs::File::create(path).and_then(|mut f| f.write_all(&out)).map_err(|e| fail(&e))
    }
}

/// A number as Moodle writes it: `100.00` or `100,00`.
fn number(cell: &str) -> Option<f64> {
    cell.trim().replace(',', ".").parse().ok()
}

/// Finds the columns: English headers first, the worksheet's shape otherwise.
fn locate(headers: &[String], rows: &[Vec<String>]) -> Result<Columns, String> {
    let named = |name: &str| headers.iter().position(|h| h.trim() == name);
    let identifier = named("Identifier")
        .or_else(|| identifier_by_values(headers, rows))
        .ok_or("no Identifier column (Moodle's first column, `Participant <id>` in each row)".to_string())?;
    let max_grade = named("Maximum Grade").or_else(|| max_grade_by_values(headers, rows, identifier));
    let grade = named("Grade")
        .or(max_grade.map(|m| m - 1))
        .ok_or("no Grade column (the one before Maximum Grade, whose cells hold one number)".to_string())?;
    let (modified, feedback) = match (named("Last modified (grade)"), named("Feedback comments")) {
        (Some(m), f) => (m, f),
        // Moodle's last columns: Last modified (grade), then the feedback comments.
        (None, _) if headers.len() >= grade + 4 => (headers.len() - 2, Some(headers.len() - 1)),
        _ => return Err("no Last modified (grade) column".into()),
    };
    if [grade, modified].contains(&identifier) || feedback == Some(grade) {
        return Err("its columns are not in Moodle's order".into());
    }
    // After Maximum Grade and Grade can be changed, Moodle writes Last modified (submission).
    let submitted = named("Last modified (submission)")
        .or(max_grade.map(|m| m + 2).filter(|&i| i < modified && Some(i) != feedback));
    Ok(Columns { identifier, grade, max_grade, modified, feedback, submitted })
}

/// The column whose every cell is a prefix and a number (`Participant 123`, `Uczestnik 123`).
fn identifier_by_values(headers: &[String], rows: &[Vec<String>]) -> Option<usize> {
    (0..headers.len()).find(|&i| {
        !rows.is_empty()
            && rows.iter().all(|r| {
                let v = r[i].trim();
                let digits = v.trim_start_matches(|c: char| !c.is_ascii_digit());
                !digits.is_empty() && digits.len() < v.len() && digits.chars().all(|c| c.is_ascii_digit())
            })
    })
}

/// The column after the identifier whose cells are all one positive number.
fn max_grade_by_values(headers: &[String], rows: &[Vec<String>], after: usize) -> Option<usize> {
    (after + 2..headers.len()).find(|&i| {
        let first = rows.first().and_then(|r| number(&r[i]));
        first.is_some_and(|f| f > 0.0) && rows.iter().all(|r| number(&r[i]) == first)
    })
}

/// Without a worksheet: each student's participant id, name, percent and comment, for the
/// instructor to carry into Moodle's gradebook.
pub fn grades_csv(grades: &[(&str, &Grade)]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["Participant", "Full name", "Grade (%)", "Feedback comments"])?;
    for (name, g) in grades {
        w.write_record([g.participant.to_string(), name.to_string(), format!("{:.2}", g.percent), g.feedback.clone()])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Moodle's "upload multiple feedback files in a zip": each file under the student's folder
/// name from the download (Moodle reads the participant id from it).
pub fn feedback_zip(path: &Path, files: &[(String, String, String)]) -> Result<(), Error> {
    let fail = |e: &dyn std::fmt::Display| {
        Error::input(format!("{}: cannot write the feedback zip: {e}", path.display()), "name a file you may write")
    };
    let file = std::fs::File::create(path).map_err(|e| fail(&e))?;
    let mut z = zip::ZipWriter::new(file);
    for (folder, name, text) in files {
        z.start_file(format!("{folder}/{name}"), zip::write::SimpleFileOptions::default()).map_err(|e| fail(&e))?;
        z.write_all(text.as_bytes()).map_err(|e| fail(&e))?;
    }
    z.finish().map_err(|e| fail(&e))?;
    Ok(())
}

/// Month names as Moodle's English and Polish sites write them in dates (Polish in the genitive,
/// and the nominative some themes use).
const MONTHS: [(&[&str], u8); 12] = [
    (&["january", "jan", "stycznia", "styczeń"], 1),
    (&["february", "feb", "lutego", "luty"], 2),
    (&["march", "mar", "marca", "marzec"], 3),
    (&["april", "apr", "kwietnia", "kwiecień"], 4),
    (&["may", "maja", "maj"], 5),
    (&["june", "jun", "czerwca", "czerwiec"], 6),
    (&["july", "jul", "lipca", "lipiec"], 7),
    (&["august", "aug", "sierpnia", "sierpień"], 8),
    (&["september", "sep", "września", "wrzesień"], 9),
    (&["october", "oct", "października", "październik"], 10),
    (&["november", "nov", "listopada", "listopad"], 11),
    (&["december", "dec", "grudnia", "grudzień"], 12),
];

/// A date as Moodle's worksheet writes it (`Monday, 7 December 2026, 9:12 AM`;
/// `poniedziałek, 7 grudnia 2026, 09:12`), in the site's time zone; `-` is no date.
pub fn moodle_date(text: &str) -> Option<time::PrimitiveDateTime> {
    static DATE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?i)(\d{1,2})\.?\s+(\p{L}+)\s+(\d{4}),?\s+(\d{1,2}):(\d{2})\s*(am|pm)?").unwrap()
    });
    let c = DATE.captures(text)?;
    let month_word = c[2].to_lowercase();
    let month = MONTHS.iter().find(|(names, _)| names.contains(&month_word.as_str()))?.1;
    let mut hour: u8 = c[4].parse().ok()?;
    match c.get(6).map(|m| m.as_str().to_ascii_lowercase()) {
        Some(p) if p == "pm" && hour < 12 => hour += 12,
        Some(p) if p == "am" && hour == 12 => hour = 0,
        _ => {}
    }
    let date =
        time::Date::from_calendar_date(c[3].parse().ok()?, time::Month::try_from(month).ok()?, c[1].parse().ok()?)
            .ok()?;
    Some(time::PrimitiveDateTime::new(date, time::Time::from_hms(hour, c[5].parse().ok()?, 0).ok()?))
}
