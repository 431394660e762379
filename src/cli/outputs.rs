//! Where results go, checked before any work starts, and written as they come.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use lab7::batch::{self, SubmissionResult};
use lab7::dashboard;
use lab7::report::formats::{self, Format};
use lab7::report::html::Lang;
use lab7::report::Report;
use lab7::Error;

fn unwritable(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::input(
        format!("{}: cannot write {what}: {e}", path.display()),
        "name a file in a folder that exists and that you may write to",
    )
}

/// Proves `path` can be written without truncating what is there (a file made only for
/// the proof is removed again).
pub fn check_file(path: &Path) -> Result<(), Error> {
    let existed = path.exists();
    OpenOptions::new().append(true).create(true).open(path).map_err(|e| unwritable(path, "the report", e))?;
    if !existed {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Creates `dir` if needed and proves a file can be written in it.
pub fn check_dir(dir: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| unwritable(dir, "the build logs", e))?;
    let probe = dir.join(".lab7-write-check");
    File::create(&probe).map_err(|e| unwritable(dir, "the build logs", e))?;
    let _ = std::fs::remove_file(probe);
    Ok(())
}

pub fn write(path: &Path, text: &str, what: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| unwritable(path, what, e))
}

/// Replaces `path` whole (a temporary file renamed over it): a browser reloading the page
/// while the batch runs never reads half of it.
pub fn replace(path: &Path, text: &str, what: &str) -> Result<(), Error> {
    let tmp = path.with_extension("html.part");
    write(&tmp, text, what)?;
    std::fs::rename(&tmp, path).map_err(|e| unwritable(path, what, e))
}

/// A batch's outputs: the CSV (a row appended as each submission ends), the Markdown
/// summary and the class's page beside it (rewritten each time), and each submission's
/// report in a folder.
pub struct BatchOutputs {
    csv: File,
    csv_path: PathBuf,
    pub summary: PathBuf,
    pub dashboard: PathBuf,
    pub reports: PathBuf,
    done: Vec<SubmissionResult>,
    class: dashboard::Class,
    lang: Lang,
    /// How many submissions the batch will grade, once known.
    pub expected: Option<usize>,
}

impl BatchOutputs {
    pub fn create(csv_path: &Path, lang: Option<Lang>) -> Result<BatchOutputs, Error> {
        let mut csv = File::create(csv_path).map_err(|e| unwritable(csv_path, "the results", e))?;
        csv.write_all(batch::csv_header().as_bytes()).map_err(|e| unwritable(csv_path, "the results", e))?;
        let summary = csv_path.with_extension("md");
        write(&summary, &batch::markdown(&[]), "the summary")?;
        let stem = csv_path.file_stem().map_or("results".into(), |s| s.to_string_lossy().into_owned());
        let reports = csv_path.with_file_name(format!("{stem}-reports"));
        check_dir(&reports)?;
        let outputs = BatchOutputs {
            csv,
            csv_path: csv_path.to_path_buf(),
            summary,
            dashboard: csv_path.with_extension("html"),
            reports,
            done: Vec::new(),
            class: dashboard::Class::default(),
            lang: lang.unwrap_or_else(Lang::from_locale),
            expected: None,
        };
        outputs.draw(false)?;
        Ok(outputs)
    }

    /// Where this batch writes: the batch skips these when they lie in the class folder.
    pub fn paths(&self) -> Vec<PathBuf> {
        vec![self.csv_path.clone(), self.summary.clone(), self.dashboard.clone(), self.reports.clone()]
    }

    /// The reports' folder by its name, as the pages beside it link into it.
    pub fn reports_folder(&self) -> String {
        self.reports.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned())
    }

    /// The class's page as it stands; `finished` stops its reloading.
    fn draw(&self, finished: bool) -> Result<(), Error> {
        let folder = self.reports_folder();
        let entries: Vec<dashboard::Entry> =
            self.done.iter().map(|r| dashboard::Entry::of_submission(r, &folder)).collect();
        let progress = dashboard::Progress { finished, expected: self.expected };
        replace(&self.dashboard, &dashboard::render(&entries, &self.class, progress, self.lang), "the class's page")
    }

    /// The batch is over: the page stops reloading.
    pub fn finish(&self) -> Result<(), Error> {
        self.draw(true)
    }

    /// What the submissions met, for a page over several batches (a class's).
    pub fn class(&self) -> &dashboard::Class {
        &self.class
    }

    /// The class workflow's shared evidence, shown on the page from now on.
    pub fn show_shared(&mut self, pairs: Vec<dashboard::SharedPair>) {
        self.class.shared = pairs;
    }

    /// A submission's report in each format, and (once they are all written) the inputs it was
    /// graded from, for the next run to reuse.
    fn write_report(&self, r: &SubmissionResult, report: &Report) -> Result<(), Error> {
        let remembered = |e: std::io::Error| unwritable(&self.reports, "what the report was graded from", e);
        batch::reuse::forget(&self.reports, &r.submission).map_err(remembered)?;
        let style = formats::Style { color: false, lang: self.lang };
        for (format, ext) in [(Format::Md, "md"), (Format::Json, "json"), (Format::Html, "html")] {
            let path = self.reports.join(format!("{}.{ext}", r.submission));
            write(&path, &formats::render(report, format, style), "the report")?;
        }
        batch::reuse::remember(&self.reports, r).map_err(remembered)
    }

    /// One finished submission: its row, the summary so far, its report (md and json).
    pub fn record(&mut self, r: &SubmissionResult, report: Option<&Report>) -> Result<(), Error> {
        self.csv
            .write_all(batch::csv_row(r).as_bytes())
            .and_then(|_| self.csv.flush())
            .map_err(|e| unwritable(&self.summary, "the results", e))?;
        self.done.push(r.clone());
        write(&self.summary, &batch::markdown(&self.done), "the summary")?;
        if let Some(report) = report {
            // A reused report's files are the last run's, kept as written (`batch::reuse`).
            if !r.reused {
                self.write_report(r, report)?;
            }
            self.class.met(&r.submission, report);
        }
        self.draw(false)
    }
}
