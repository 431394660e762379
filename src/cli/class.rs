//! `lab7 batch MOODLE.zip` (or Moodle's unpacked folder): the class read by `intake`, each
//! student's project graded by the lab and report by `grade-report`, one row per student
//! (`gradebook`). Beside `--out`: `<stem>-intake/` (what was unpacked), `<stem>-project.csv`
//! and `<stem>-report.csv` with their reports folders, and `<stem>.md`.

use std::path::{Path, PathBuf};

use lab7::batch::{self, Submission, SubmissionResult};
use lab7::dashboard;
use lab7::environment::{self, Images};
use lab7::gradebook::{self, moodle, Row};
use lab7::intake::{self, IntakeOptions, Project, Student};
use lab7::report::html::Lang;
use lab7::{Error, Exit};

use super::args::BatchArgs;
use super::{outputs, progress, signals};

fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out.file_stem().map_or("results".into(), |s| s.to_string_lossy().into_owned());
    out.with_file_name(format!("{stem}{suffix}"))
}

/// Where a class's outputs go, beside `--out`: opened (and checked writable) before any work.
struct Outputs {
    work: PathBuf,
    projects: outputs::BatchOutputs,
    reports: outputs::BatchOutputs,
    /// Every path of the batch's own, never read as a student's.
    own: Vec<PathBuf>,
}

impl Outputs {
    fn create(out: &Path, lang: Option<Lang>) -> Result<Outputs, Error> {
        outputs::check_file(out)?;
        let work = beside(out, "-intake");
        let projects = outputs::BatchOutputs::create(&beside(out, "-project.csv"), lang)?;
        let reports = outputs::BatchOutputs::create(&beside(out, "-report.csv"), lang)?;
        let mut own = vec![out.to_path_buf(), work.clone(), out.with_extension("md"), out.with_extension("html")];
        own.extend(projects.paths());
        own.extend(reports.paths());
        Ok(Outputs { work, projects, reports, own })
    }
}

pub(super) async fn grade(a: BatchArgs, input: &Path, interrupt: &signals::Interrupt) -> Result<Exit, Error> {
    // The worksheet and overrides are read before any work: a wrong file stops the batch now.
    let worksheet = a.moodle_worksheet.as_deref().map(moodle::Worksheet::read).transpose()?;
    let overrides = a.overrides.as_deref().map(gradebook::read_overrides).transpose()?.unwrap_or_default();
    let rubric = super::report_rubric(a.rubric.as_deref())?;
    // The last run's totals, for what this regrade changed.
    let before = previous_totals(&a.out);
    let mut out = Outputs::create(&a.out, a.lang)?;
    let class = read(&a, input, &out, &overrides)?;
    let projects = grade_projects(&a, &class, &mut out, interrupt).await?;
    let files: Vec<(String, PathBuf)> =
        class.students.iter().filter_map(|s| Some((s.key.clone(), s.report.clone()?))).collect();
    let reading =
        batch::ReportReading { reader: a.report.reader()?, own_outputs: out.own.clone(), cancel: interrupt.token() };
    out.reports.expected = Some(files.len());
    let reports =
        batch::grade_report_files(files, &rubric, &reading, &mut |r, report| out.reports.record(r, report)).await?;
    out.projects.finish()?;

    let rows: Vec<Row> = class
        .students
        .into_iter()
        .map(|s| Row {
            project: find(&projects, &s.key),
            report: find(&reports, &s.key),
            overrides: overrides.iter().filter(|o| o.names(&s)).cloned().collect(),
            late: late(&a, rubric.late.as_ref(), worksheet.as_ref(), &s),
            student: s,
        })
        .collect();
    // Every pair of reports compared once: the summary, the reports' page and the class's page show it.
    let shared = gradebook::shared_evidence(&rows);
    write_rows(&a.out, &rows, &shared)?;
    let pairs = shared_pairs(&shared);
    out.reports.show_shared(pairs.clone());
    out.reports.finish()?;
    class_page(&a.out, &rows, &out, pairs, a.lang.unwrap_or_else(Lang::from_locale))?;
    print_changes(&before, &rows);
    let feedback = feedback_files(&rows, &out.projects, &out.reports);
    back_to_moodle(&a.out, worksheet.map(|w| (w, a.moodle_full_marks)), &rows, &feedback)?;
    let all_pass = rows.iter().all(|r| {
        r.project.as_ref().is_some_and(|p| p.verdict == Some(lab7::report::Verdict::Pass))
            && r.report.as_ref().is_some_and(|p| p.verdict == Some(lab7::report::Verdict::Pass))
    });
    Ok(if all_pass { Exit::Pass } else { Exit::Fail })
}

/// The class read from its input, what was found for each student said; an override naming
/// nobody in it stops the run before any build.
fn read(a: &BatchArgs, input: &Path, out: &Outputs, overrides: &[gradebook::Override]) -> Result<intake::Class, Error> {
    let intake_opts = IntakeOptions { dockerfile: a.file.clone(), limits: Default::default(), skip: out.own.clone() };
    let class = intake::read_class(input, &out.work, &intake_opts)?;
    eprintln!("[lab7] {} students in {} ({:?})", class.students.len(), input.display(), class.layout);
    for s in &class.students {
        eprintln!("[lab7]   {}: {}", s.name, s.found());
    }
    for r in &class.refused {
        eprintln!("[lab7]   refused from the download: {r}");
    }
    if let Some(o) = overrides.iter().find(|o| !class.students.iter().any(|s| o.names(s))) {
        return Err(Error::input(
            format!("--overrides names `{}`, who is not in the class", o.student),
            "name the student by participant id or by the full name as Moodle writes it",
        ));
    }
    Ok(class)
}

/// Each student's project built by the lab, as `batch DIR` builds a folder's.
async fn grade_projects(
    a: &BatchArgs,
    class: &intake::Class,
    out: &mut Outputs,
    interrupt: &signals::Interrupt,
) -> Result<Vec<SubmissionResult>, Error> {
    let subs: Vec<Submission> = class.students.iter().filter_map(submission).collect();
    if subs.is_empty() {
        return Ok(Vec::new());
    }
    let reuse_from = a.reuse_from(&out.projects.reports);
    let opts = batch::BatchOptions { own_outputs: out.own.clone(), reuse_from, ..super::batch_options(a, interrupt)? };
    environment::engine().await?;
    let rubric = lab7::checks::Rubric::default_rubric();
    let projects = &mut out.projects;
    projects.expected = Some(subs.len());
    batch::grade_submissions(subs, &opts, &Images::load(), &rubric, &progress::View::new(), &mut |r, report| {
        projects.record(r, report)
    })
    .await
}

/// The class's CSV and its Markdown summary (with the shared-evidence findings), also printed.
fn write_rows(out: &Path, rows: &[Row], shared: &[gradebook::SharedEvidence]) -> Result<(), Error> {
    let csv = gradebook::csv(rows).map_err(|e| Error::Lab(format!("writing the class CSV: {e}")))?;
    outputs::write(out, &csv, "the class's results")?;
    let table = gradebook::markdown(rows)
        + &gradebook::shared_evidence_markdown(rows, shared)
        + &gradebook::same_dockerfiles_markdown(&gradebook::same_dockerfiles(rows))
        + &gradebook::similar_prose_markdown(&gradebook::similar_prose(rows));
    outputs::write(&out.with_extension("md"), &table, "the class's summary")?;
    print!("{table}");
    eprintln!(
        "lab7: wrote {} (one row per student), {} and the projects' and reports' own results beside it",
        out.display(),
        out.with_extension("md").display()
    );
    Ok(())
}

/// The class's own page (`grades.html` beside `grades.csv`): a row per student with the total,
/// linking to the student's project and report pages; the charts over both; the shared evidence.
fn class_page(
    csv: &Path,
    rows: &[Row],
    out: &Outputs,
    shared: Vec<dashboard::SharedPair>,
    lang: Lang,
) -> Result<(), Error> {
    let (projects, reports) = (out.projects.reports_folder(), out.reports.reports_folder());
    let entries: Vec<dashboard::Entry> = rows.iter().map(|r| student_entry(r, &projects, &reports)).collect();
    let mut class = dashboard::Class::default();
    class.merge(out.projects.class());
    class.merge(out.reports.class());
    class.shared = shared;
    let done = dashboard::Progress { finished: true, expected: None };
    outputs::replace(&csv.with_extension("html"), &dashboard::render(&entries, &class, done, lang), "the class's page")
}

/// A student on the class's page: both parts' checks, the total, a link to each part graded.
fn student_entry(r: &Row, projects: &str, reports: &str) -> dashboard::Entry {
    let parts = [("project", projects, r.project.as_ref()), ("report", reports, r.report.as_ref())];
    let graded: Vec<(&str, &str, &SubmissionResult)> =
        parts.into_iter().filter_map(|(what, dir, p)| Some((what, dir, p.filter(|p| p.verdict.is_some())?))).collect();
    let passed = |p: Option<&SubmissionResult>| p.is_some_and(|p| p.verdict == Some(lab7::report::Verdict::Pass));
    dashboard::Entry {
        name: r.student.name.clone(),
        verdict: match (graded.is_empty(), passed(r.project.as_ref()) && passed(r.report.as_ref())) {
            (true, _) => dashboard::Standing::Error,
            (false, true) => dashboard::Standing::Pass,
            (false, false) => dashboard::Standing::Fail,
        },
        graded: !graded.is_empty(),
        percent: r.total_percent(),
        checks: graded.iter().flat_map(|(_, _, p)| p.checks.clone()).collect(),
        note: r.attention(),
        links: graded.iter().map(|(what, dir, p)| (what.to_string(), format!("{dir}/{}.html", p.submission))).collect(),
        seconds: graded.iter().map(|(_, _, p)| p.seconds).sum(),
    }
}

/// The shared evidence for the pages: each pair with the lines the digests stand in.
fn shared_pairs(shared: &[gradebook::SharedEvidence]) -> Vec<dashboard::SharedPair> {
    shared
        .iter()
        .map(|p| dashboard::SharedPair {
            // Short, as `docker images` shows them: the lines quoted hold each whole.
            digests: p.digests.iter().map(|d| d.abbreviated().to_string()).collect(),
            lines: (
                format!("{}: {}", p.quotes.0.at, p.quotes.0.text),
                format!("{}: {}", p.quotes.1.at, p.quotes.1.text),
            ),
            students: p.students.clone(),
        })
        .collect()
}

/// The lab's build of a student, when one Dockerfile was found.
fn submission(s: &Student) -> Option<Submission> {
    match &s.project {
        Project::Found { context, dockerfile, .. } => {
            Some(Submission { name: s.key.clone(), dir: context.clone(), dockerfile: Some(dockerfile.clone()) })
        }
        Project::Missing | Project::Ambiguous(_) => None,
    }
}

fn find(results: &[SubmissionResult], key: &str) -> Option<SubmissionResult> {
    results.iter().find(|r| r.submission == key).cloned()
}

/// Each student's feedback file: the project's report and the report's grading, in Markdown.
fn feedback_files(
    rows: &[Row],
    projects: &outputs::BatchOutputs,
    reports: &outputs::BatchOutputs,
) -> Vec<(String, String)> {
    rows.iter()
        .map(|r| {
            let s = &r.student;
            let read = |dir: &Path| std::fs::read_to_string(dir.join(format!("{}.md", s.key))).ok();
            let mut text = format!("# lab7 feedback: {}\n\nGrade: {}.\n\nFound: {}.\n", s.name, r.summary(), s.found());
            let attention = r.attention();
            if !attention.is_empty() {
                text += &format!("\nTo note: {attention}.\n");
            }
            for (title, body) in
                [("The project, built by the lab", read(&projects.reports)), ("The report", read(&reports.reports))]
            {
                if let Some(body) = body {
                    text += &format!("\n---\n\n## {title}\n\n{body}\n");
                }
            }
            (s.key.clone(), text)
        })
        .collect()
}

/// Grades and feedback in the forms Moodle takes: the worksheet filled (when given) or a CSV
/// keyed by participant, and the feedback files as Moodle's "upload multiple feedback files" zip.
fn back_to_moodle(
    out: &Path,
    worksheet: Option<(moodle::Worksheet, Option<f64>)>,
    rows: &[Row],
    feedback: &[(String, String)],
) -> Result<(), Error> {
    let moodle_rows: Vec<&Row> = rows.iter().filter(|r| r.student.participant.is_some()).collect();
    if moodle_rows.is_empty() {
        return Ok(());
    }
    let grades: Vec<moodle::Grade> = moodle_rows
        .iter()
        .map(|r| moodle::Grade {
            participant: r.student.participant.unwrap_or_default(),
            percent: r.total_percent(),
            feedback: comment(r),
        })
        .collect();
    match worksheet {
        Some((w, full_marks)) => fill_worksheet(out, w, &grades, full_marks)?,
        None => {
            let path = beside(out, "-moodle-grades.csv");
            let named: Vec<(&str, &moodle::Grade)> =
                moodle_rows.iter().map(|r| r.student.name.as_str()).zip(&grades).collect();
            let text = moodle::grades_csv(&named).map_err(|e| Error::Lab(e.to_string()))?;
            outputs::write(&path, &text, "the grades for Moodle")?;
            eprintln!("lab7: wrote {} (no --moodle-worksheet: give the assignment's grading worksheet to have it filled for upload)", path.display());
        }
    }
    let files: Vec<(String, String, String)> = moodle_rows
        .iter()
        .filter_map(|r| {
            let folder = r.student.download_folders.first()?.clone();
            let text = feedback.iter().find(|(k, _)| *k == r.student.key)?.1.clone();
            Some((folder, "lab7-feedback.md".to_string(), text))
        })
        .collect();
    let zip = beside(out, "-moodle-feedback.zip");
    moodle::feedback_zip(&zip, &files)?;
    eprintln!("lab7: wrote {} (Moodle: Grading action → Upload multiple feedback files in a zip)", zip.display());
    Ok(())
}

/// The instructor's worksheet filled and written beside `--out`, with what did not fit said.
fn fill_worksheet(
    out: &Path,
    mut w: moodle::Worksheet,
    grades: &[moodle::Grade],
    full_marks: Option<f64>,
) -> Result<(), Error> {
    eprintln!("lab7: the worksheet's columns: {}", w.describe());
    let filled = w.fill(grades, &lab7::intake::now(), full_marks);
    let path = beside(out, "-moodle-worksheet.csv");
    w.write(&path)?;
    eprintln!(
        "lab7: wrote {} ({} grades): upload it in Moodle (Grading action → Upload grading worksheet)",
        path.display(),
        filled.written
    );
    if !filled.not_in_worksheet.is_empty() {
        eprintln!("lab7: not in the worksheet, so not written: participants {:?}", filled.not_in_worksheet);
    }
    if !filled.capped.is_empty() {
        eprintln!("lab7: above the worksheet's Maximum Grade, written as the maximum (Moodle skips a higher grade): participants {:?}; raise the assignment's maximum grade and give --moodle-full-marks to keep the bonus", filled.capped);
    }
    Ok(())
}

/// The worksheet's feedback comment: one line with the total and what to look at.
fn comment(r: &Row) -> String {
    let attention = r.attention();
    let mut c = format!("lab7: {}.", r.summary());
    if let Some(p) = &r.project {
        let failed = p.failed_check_names();
        if !failed.is_empty() {
            c += &format!(" Failed: {}.", failed.join(", "));
        }
    }
    if !attention.is_empty() {
        c += &format!(" {attention}.");
    }
    c + " Details in lab7-feedback.md."
}

/// A student as the last run's CSV and this run tell them apart: the participant id where
/// Moodle gave one (names may repeat), else the name.
fn who(participant: &str, name: &str) -> String {
    if participant.is_empty() {
        name.to_string()
    } else {
        format!("#{participant}")
    }
}

/// Each student's total in the CSV an earlier run wrote at `out`: (who, name, total).
fn previous_totals(out: &Path) -> Vec<(String, String, String)> {
    let Ok(mut r) = csv::Reader::from_path(out) else { return Vec::new() };
    let Ok(headers) = r.headers().cloned() else { return Vec::new() };
    let column = |c: &str| headers.iter().position(|h| h == c);
    let (Some(name), Some(id), Some(total)) = (column("student"), column("participant"), column("total_percent"))
    else {
        return Vec::new();
    };
    r.records()
        .flatten()
        .filter_map(|rec| {
            let (n, t) = (rec.get(name)?, rec.get(total)?);
            Some((who(rec.get(id)?, n), n.to_string(), t.to_string()))
        })
        .collect()
}

/// What this run changed since the last one, student by student.
fn print_changes(before: &[(String, String, String)], rows: &[Row]) {
    if before.is_empty() {
        return;
    }
    let key = |r: &Row| who(&r.student.participant.map(|p| p.to_string()).unwrap_or_default(), &r.student.name);
    let mut changed = 0;
    for r in rows {
        let now = format!("{:.2}", r.total_percent());
        match before.iter().find(|(k, _, _)| *k == key(r)) {
            Some((_, _, was)) if *was == now => {}
            Some((_, _, was)) => {
                changed += 1;
                eprintln!("lab7: changed since the last run: {}: {was} % → {now} %", r.student.name);
            }
            None => {
                changed += 1;
                eprintln!("lab7: new since the last run: {}: {now} %", r.student.name);
            }
        }
    }
    for (_, name, was) in before.iter().filter(|(k, _, _)| !rows.iter().any(|r| key(r) == *k)) {
        changed += 1;
        eprintln!("lab7: gone since the last run: {name} (was {was} %)");
    }
    if changed == 0 {
        eprintln!("lab7: no total changed since the last run");
    }
}

/// The late penalty of a student, from the worksheet's `Last modified (submission)`: the
/// rule of the flags when given, else the report rubric's `[late]`.
fn late(
    a: &BatchArgs,
    settings: Option<&lab7::checks::LateSettings>,
    worksheet: Option<&moodle::Worksheet>,
    s: &Student,
) -> Option<gradebook::Late> {
    let rule = match (a.deadline, settings) {
        (Some(deadline), _) => gradebook::LateRule { deadline, per_day: a.late_penalty, max: a.late_penalty_max },
        (None, Some(l)) => gradebook::LateRule {
            deadline: lab7::checks::parse_deadline(&l.deadline).ok()?,
            per_day: l.percent_per_started_day,
            max: l.max_percent,
        },
        (None, None) => return None,
    };
    rule.apply(worksheet?.submitted(s.participant?)?)
}
