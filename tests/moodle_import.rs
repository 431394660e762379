//! lab7's filled grading worksheet, imported by Moodle's own rules, written here from Moodle's
//! source (mod/assign/feedback/offline/importgradeslib.php and locallib.php's
//! process_import_grades): the columns found by their headers in the site's language, the
//! participant id after the identifier's prefix (`substr` by the prefix's length), the grade
//! through `unformat_float`, `Last modified (grade)` through `strtotime`, and a row skipped when
//! its grade is empty, negative, unchanged or above the maximum, or when Moodle's grade is more
//! than 60 s newer than that date. The worksheets follow Moodle's column order (gradingtable.php
//! when downloading); the second is a site in another language lab7 has no strings for (its
//! headers here are an example, not Moodle's translation), saved with semicolons and decimal
//! commas as a spreadsheet on a Polish desktop saves it. No Docker.

use std::collections::HashMap;

use lab7::gradebook::moodle::{Grade, Worksheet};

/// A Moodle site as the importer sees it: its strings and the grades it already holds.
struct Site {
    identifier: &'static str,
    grade: &'static str,
    modified: &'static str,
    feedback: &'static str,
    /// get_string('hiddenuser', 'assign'): the identifier's prefix.
    hiddenuser: &'static str,
    separator: u8,
    decimal_comma: bool,
    max_grade: f64,
    /// participant → (grade, Moodle's timemodified)
    existing: HashMap<u64, (f64, i64)>,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Imported(f64, String),
    Skipped(&'static str),
}

/// strtotime for what lab7 writes (and nothing else: another form fails the test).
fn strtotime(s: &str) -> Option<i64> {
    let s = s.strip_suffix(" UTC")?;
    let (date, time) = s.split_once(' ')?;
    let d: Vec<i64> = date.split('-').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let t: Vec<i64> = time.split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    let (y, m, day) = (d[0], d[1], d[2]);
    // Days from the civil date (Howard Hinnant's algorithm), as PHP's date library computes them.
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146097 + doe - 719468) * 86400 + t[0] * 3600 + t[1] * 60 + t[2])
}

fn import(site: &Site, csv_text: &str) -> HashMap<u64, Outcome> {
    let mut r = csv::ReaderBuilder::new().delimiter(site.separator).from_reader(csv_text.as_bytes());
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    let col =
        |name: &str| headers.iter().position(|h| h == name).unwrap_or_else(|| panic!("no column {name}: {headers:?}"));
    let (id, grade, modified) = (col(site.identifier), col(site.grade), col(site.modified));
    let feedback = col(site.feedback);
    let mut out = HashMap::new();
    for rec in r.records() {
        let rec = rec.unwrap();
        let participant: u64 = rec[id][site.hiddenuser.len()..].trim().parse().unwrap();
        let raw = rec[grade].trim();
        let value = if site.decimal_comma { raw.replace(',', ".") } else { raw.to_string() };
        let modified = strtotime(&rec[modified]).unwrap_or(0);
        let existing = site.existing.get(&participant);
        let outcome = match value.parse::<f64>() {
            _ if raw.is_empty() => Outcome::Skipped("no grade"),
            Err(_) => Outcome::Skipped("no grade"),
            Ok(g) if existing.is_some_and(|(e, _)| *e == g) => Outcome::Skipped("unchanged"),
            Ok(g) if g < 0.0 => Outcome::Skipped("no grade"),
            Ok(_) if existing.is_some_and(|(_, t)| *t > modified + 60) => Outcome::Skipped("Moodle's grade is newer"),
            Ok(g) if g > site.max_grade => Outcome::Skipped("out of range"),
            Ok(g) => Outcome::Imported(g, rec[feedback].to_string()),
        };
        out.insert(participant, outcome);
    }
    out
}

fn grades() -> Vec<Grade> {
    vec![
        Grade { participant: 101, percent: 150.0, feedback: "lab7: total 150.00 % (all of it)".into() },
        Grade {
            participant: 102,
            percent: 87.5,
            feedback: "lab7: total 87.50 %, \"quoted\"; with a comma, too".into(),
        },
        Grade { participant: 103, percent: 40.0, feedback: "lab7: total 40.00 %".into() },
    ]
}

const ENGLISH: &str = "Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,Last modified (submission),File submissions,Last modified (grade),Feedback comments
Participant 101,Jan Kowalski,jan@example.edu,Submitted for grading,,150.00,Yes,\"Monday, 7 December 2026, 9:12 AM\",lab7.zip,-,
Participant 102,Zażółć Gęślą-Jaźń,z@example.edu,Submitted for grading,,150.00,Yes,\"Monday, 7 December 2026, 9:40 AM\",projekt.tar.gz,-,
Participant 103,Ewa Lis,ewa@example.edu,Submitted for grading,50.00,150.00,Yes,\"Monday, 7 December 2026, 9:41 AM\",Dockerfile,\"Monday, 7 December 2026, 11:00 PM\",Graded by hand
Participant 104,Piotr Nowak,p@example.edu,No submission,,150.00,Yes,-,,-,
";

#[test]
fn moodle_imports_every_grade_lab7_wrote_into_its_worksheet() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("worksheet.csv");
    std::fs::write(&input, ENGLISH).unwrap();
    let mut w = Worksheet::read(&input).unwrap();
    assert_eq!(
        w.describe(),
        "Identifier → 'Identifier', Grade → 'Grade', Last modified (grade) → 'Last modified (grade)', Feedback comments → 'Feedback comments'"
    );
    // The assignment's maximum holds the bonus: 100 % is 100 points of 150.
    let filled = w.fill(&grades(), "2026-12-07 23:59:00 UTC", Some(100.0));
    assert_eq!(filled.written, 3);
    assert!(filled.capped.is_empty(), "150 % of 100 points is the maximum, 150");
    let out = dir.path().join("filled.csv");
    w.write(&out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();

    let site = Site {
        identifier: "Identifier",
        grade: "Grade",
        modified: "Last modified (grade)",
        feedback: "Feedback comments",
        hiddenuser: "Participant ",
        separator: b',',
        decimal_comma: false,
        max_grade: 150.0,
        // Ewa was graded by hand in Moodle at 23:00, before lab7 ran (23:59): lab7's grade wins.
        existing: HashMap::from([(103, (50.0, strtotime("2026-12-07 23:00:00 UTC").unwrap()))]),
    };
    let got = import(&site, &text);
    assert_eq!(got[&101], Outcome::Imported(150.0, "lab7: total 150.00 % (all of it)".into()));
    assert_eq!(got[&102], Outcome::Imported(87.5, "lab7: total 87.50 %, \"quoted\"; with a comma, too".into()));
    assert_eq!(got[&103], Outcome::Imported(40.0, "lab7: total 40.00 %".into()));
    assert_eq!(got[&104], Outcome::Skipped("no grade"), "a student lab7 did not grade keeps Moodle's state");
    // Everything else as it came: the same headers, names and dates.
    assert_eq!(text.lines().next(), ENGLISH.lines().next());
    assert!(text.contains(
        "Zażółć Gęślą-Jaźń,z@example.edu,Submitted for grading,87.50,150.00,Yes,\"Monday, 7 December 2026, 9:40 AM\""
    ));

    // A grade the instructor changed in Moodle after lab7 ran is not overwritten.
    let later =
        Site { existing: HashMap::from([(101, (120.0, strtotime("2026-12-08 08:00:00 UTC").unwrap()))]), ..site };
    assert_eq!(import(&later, &text)[&101], Outcome::Skipped("Moodle's grade is newer"));
}

#[test]
fn a_worksheet_in_another_language_with_semicolons_and_decimal_commas_is_filled_in_kind() {
    let other = ENGLISH
        .replace(',', ";")
        .replace("Identifier;Full name;Email address;Status;Grade;Maximum Grade;Grade can be changed;Last modified (submission);File submissions;Last modified (grade);Feedback comments",
                 "Identyfikator;Imię i nazwisko;Adres e-mail;Stan;Ocena;Ocena maksymalna;Można zmienić ocenę;Zmieniono (zadanie);Pliki;Zmieniono (ocena);Komentarze")
        .replace("Participant ", "Uczestnik ")
        .replace("150.00", "100,00")
        .replace("50.00", "50,00")
        .replace("\"Monday; 7 December 2026; ", "\"poniedziałek, 7 grudnia 2026, ");
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("arkusz.csv");
    std::fs::write(&input, format!("\u{feff}{other}")).unwrap();
    let mut w = Worksheet::read(&input).unwrap();
    assert_eq!(
        w.describe(),
        "Identifier → 'Identyfikator', Grade → 'Ocena', Last modified (grade) → 'Zmieniono (ocena)', Feedback comments → 'Komentarze'"
    );
    // 100 % is the Maximum Grade when not said otherwise.
    let filled = w.fill(&grades(), "2026-12-07 23:59:00 UTC", None);
    assert_eq!(filled.capped, [101], "150 % of 100 is above the maximum: capped, and said");
    let out = dir.path().join("filled.csv");
    w.write(&out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    assert!(bytes.starts_with(b"\xef\xbb\xbf"), "the byte order mark kept");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    assert!(text.contains(";87,50;100,00;"), "a decimal comma, as the site writes: {text}");
    let site = Site {
        identifier: "Identyfikator",
        grade: "Ocena",
        modified: "Zmieniono (ocena)",
        feedback: "Komentarze",
        hiddenuser: "Uczestnik ",
        separator: b';',
        decimal_comma: true,
        max_grade: 100.0,
        existing: HashMap::new(),
    };
    let got = import(&site, &text);
    assert_eq!(got[&101], Outcome::Imported(100.0, "lab7: total 150.00 % (all of it)".into()));
    assert_eq!(got[&102], Outcome::Imported(87.5, "lab7: total 87.50 %, \"quoted\"; with a comma, too".into()));
    assert_eq!(got[&103], Outcome::Imported(40.0, "lab7: total 40.00 %".into()));
}

#[test]
fn a_file_that_is_no_worksheet_is_refused_with_where_to_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("grades.csv");
    std::fs::write(&f, "name,points\nJan,10\n").unwrap();
    let e = Worksheet::read(&f).unwrap_err().to_string();
    assert!(e.contains("not a Moodle grading worksheet") && e.contains("Download grading worksheet"), "{e}");
}

#[test]
fn moodle_dates_in_english_and_polish_are_read_and_late_days_counted() {
    use lab7::gradebook::moodle::moodle_date;
    use lab7::gradebook::LateRule;
    let en = moodle_date("Monday, 7 December 2026, 9:12 PM").unwrap();
    assert_eq!(en.to_string(), "2026-12-07 21:12:00.0");
    let pl = moodle_date("poniedziałek, 7 grudnia 2026, 09:12").unwrap();
    assert_eq!(pl.to_string(), "2026-12-07 9:12:00.0");
    assert_eq!(moodle_date("12 AM, Monday, 7 December 2026, 12:05 AM").unwrap().to_string(), "2026-12-07 0:05:00.0");
    assert_eq!(moodle_date("-"), None, "not handed in");
    let rule = LateRule { deadline: moodle_date("7 December 2026, 23:59").unwrap(), per_day: 10.0, max: 30.0 };
    assert_eq!(rule.apply(moodle_date("7 December 2026, 23:59").unwrap()), None, "at the deadline is on time");
    assert_eq!(rule.apply(moodle_date("8 December 2026, 00:00").unwrap()).unwrap().started_days, 1);
    assert_eq!(rule.apply(moodle_date("8 December 2026, 23:59").unwrap()).unwrap().started_days, 1);
    assert_eq!(rule.apply(moodle_date("9 December 2026, 00:00").unwrap()).unwrap().started_days, 2);
    assert_eq!(rule.apply(moodle_date("31 December 2026, 10:00").unwrap()).unwrap().penalty, 30.0, "capped");
}
