//! A class as a picture (`results.html` beside a batch's CSV): where the class stands (the
//! score distribution), which check fails most (each check's pass rate), which mistake is most
//! common (the diagnoses and how many students met each), how long each submission took, and
//! a row per student linking to that student's own HTML report. Rewritten as each submission
//! ends; while the batch runs the page reloads itself every 10 s.
//!
//! A room of its own above the batch: it reads `SubmissionResult`s and the reports the batch
//! hands out, and draws them through minijinja (`class.html`) with plain bars, as the report's
//! page does — no script, no request.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::batch::SubmissionResult;
use crate::checks::{CheckId, CheckOutcome, Status};
use crate::report::html::Lang;
use crate::report::{Report, Verdict};

/// What the dashboard gathers beyond the rows: the diagnoses each submission met, and the
/// class workflow's shared evidence.
#[derive(Debug, Default)]
pub struct Class {
    /// A diagnosis's cause → the submissions it was found in.
    diagnoses: BTreeMap<String, Vec<String>>,
    /// Pairs of students whose reports show a digest of one run, for the instructor to judge.
    pub shared: Vec<SharedPair>,
}

/// Two students' reports showing the same digests of a run, each with the line it stands in.
#[derive(Debug, Clone, Serialize)]
pub struct SharedPair {
    pub students: (String, String),
    pub digests: Vec<String>,
    pub lines: (String, String),
}

impl Class {
    /// Notes the known failures diagnosed in one submission's report.
    pub fn met(&mut self, submission: &str, report: &Report) {
        for d in &report.diagnoses {
            let who = self.diagnoses.entry(d.cause.clone()).or_default();
            if !who.iter().any(|w| w == submission) {
                who.push(submission.to_string());
            }
        }
    }
}

/// Where a line of the page stands, drawn as its word (and a colour).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Standing {
    Pass,
    Fail,
    /// lab7 could not grade it.
    Error,
    /// The batch was stopped while it was graded.
    Interrupted,
}

/// One line of the page: a submission of a batch, or a student of a class (project and report).
#[derive(Debug, Clone)]
pub struct Entry {
    pub name: String,
    pub verdict: Standing,
    /// Graded at all: its percent and checks count in the charts.
    pub graded: bool,
    pub percent: f64,
    pub checks: Vec<CheckOutcome>,
    pub note: String,
    /// Its own pages: (what, href relative to the class's page).
    pub links: Vec<(String, String)>,
    pub seconds: f64,
}

impl Entry {
    /// A batch's submission, its report page in the folder `reports` beside the class's page.
    pub fn of_submission(r: &SubmissionResult, reports: &str) -> Entry {
        Entry {
            name: r.submission.clone(),
            verdict: match (r.verdict, r.interrupted) {
                (_, true) => Standing::Interrupted,
                (Some(Verdict::Pass), _) => Standing::Pass,
                (Some(Verdict::Fail), _) => Standing::Fail,
                (None, _) => Standing::Error,
            },
            graded: r.verdict.is_some(),
            percent: r.percent,
            checks: r.checks.clone(),
            note: r.error.clone().or(r.review.clone()).unwrap_or_default(),
            links: r
                .verdict
                .map(|_| ("report".to_string(), format!("{reports}/{}.html", r.submission)))
                .into_iter()
                .collect(),
            seconds: r.seconds,
        }
    }

    fn failed(&self) -> String {
        crate::checks::failed_names(&self.checks).join(", ")
    }
}

impl Class {
    /// Adds what another part of the class met (a class's projects and reports are two batches).
    pub fn merge(&mut self, other: &Class) {
        for (cause, who) in &other.diagnoses {
            let mine = self.diagnoses.entry(cause.clone()).or_default();
            mine.extend(who.iter().filter(|w| !mine.contains(w)).cloned().collect::<Vec<_>>());
        }
    }
}

/// How far the batch is: `expected` submissions in all, when known.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub finished: bool,
    pub expected: Option<usize>,
}

/// The page of a class's entries.
pub fn render(entries: &[Entry], class: &Class, progress: Progress, lang: Lang) -> String {
    let mut env = crate::report::html::templates();
    env.add_template("class.html", include_str!("class.html")).expect("the class template parses");
    let page = Page::of(entries, class, progress, lang);
    env.get_template("class.html").and_then(|t| t.render(&page)).expect("the class template renders")
}

#[derive(Serialize)]
struct Page {
    lang: &'static str,
    pl: bool,
    running: bool,
    done: usize,
    expected: Option<usize>,
    graded: usize,
    passed: usize,
    distribution: Vec<Bar>,
    checks: Vec<Bar>,
    diagnoses: Vec<Bar>,
    times: Vec<Bar>,
    rows: Vec<Row>,
    shared: Vec<SharedPair>,
}

/// One bar: its label, the number it stands for (as text, always beside it), its width in
/// percent of the chart's largest.
#[derive(Serialize)]
struct Bar {
    label: String,
    value: String,
    percent: f64,
    detail: String,
}

#[derive(Serialize)]
struct Row {
    name: String,
    verdict: Standing,
    percent: String,
    failed: String,
    note: String,
    links: Vec<(String, String)>,
    seconds: String,
}

fn bars(items: Vec<(String, f64, String, String)>) -> Vec<Bar> {
    let max = items.iter().map(|i| i.1).fold(0.0, f64::max).max(1e-9);
    items
        .into_iter()
        .map(|(label, n, value, detail)| Bar { label, value, percent: (n / max * 1000.0).round() / 10.0, detail })
        .collect()
}

impl Page {
    fn of(results: &[Entry], class: &Class, progress: Progress, lang: Lang) -> Page {
        let graded: Vec<&Entry> = results.iter().filter(|r| r.graded).collect();
        Page {
            lang: if lang == Lang::Pl { "pl" } else { "en" },
            pl: lang == Lang::Pl,
            running: !progress.finished,
            done: results.len(),
            expected: progress.expected,
            graded: graded.len(),
            passed: graded.iter().filter(|r| r.verdict == Standing::Pass).count(),
            distribution: distribution(results),
            checks: pass_rates(&graded),
            diagnoses: diagnoses(class),
            times: bars(
                results
                    .iter()
                    .map(|r| (r.name.clone(), r.seconds, format!("{:.1} s", r.seconds), String::new()))
                    .collect(),
            ),
            rows: results.iter().map(Row::of).collect(),
            shared: class.shared.clone(),
        }
    }
}

/// Students per tenth of the score (150 % with the whole bonus), and those not graded at all.
fn distribution(results: &[Entry]) -> Vec<Bar> {
    let mut counts = [0usize; 15];
    for r in results.iter().filter(|r| r.graded) {
        counts[((r.percent / 10.0).floor() as usize).min(14)] += 1;
    }
    let not_graded = results.iter().filter(|r| !r.graded).count();
    let mut items: Vec<(String, f64, String, String)> = counts
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (format!("{}–{} %", i * 10, i * 10 + 9 + usize::from(i == 14)), *n as f64, n.to_string(), String::new())
        })
        .collect();
    items.push(("—".into(), not_graded as f64, not_graded.to_string(), "not graded".into()));
    bars(items)
}

/// Each check's pass rate over the submissions where it was graded (not skipped).
fn pass_rates(graded: &[&Entry]) -> Vec<Bar> {
    let mut by: BTreeMap<CheckId, (String, usize, usize)> = BTreeMap::new();
    for c in graded.iter().flat_map(|r| &r.checks).filter(|c| c.status != Status::Skipped) {
        let e = by.entry(c.id).or_insert((c.title.clone(), 0, 0));
        e.1 += usize::from(c.status == Status::Pass);
        e.2 += 1;
    }
    bars(
        by.into_iter()
            .map(|(id, (title, pass, of))| {
                let rate = pass as f64 / of as f64 * 100.0;
                (title, rate, format!("{pass}/{of} ({rate:.0} %)"), id.to_string())
            })
            .collect(),
    )
}

/// The diagnoses, most met first.
fn diagnoses(class: &Class) -> Vec<Bar> {
    let mut met: Vec<(&String, &Vec<String>)> = class.diagnoses.iter().collect();
    met.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    bars(
        met.into_iter()
            .map(|(cause, who)| (cause.clone(), who.len() as f64, who.len().to_string(), who.join(", ")))
            .collect(),
    )
}

impl Row {
    fn of(e: &Entry) -> Row {
        Row {
            name: e.name.clone(),
            verdict: e.verdict,
            percent: if e.graded { format!("{} %", e.percent) } else { String::new() },
            failed: e.failed(),
            note: e.note.clone(),
            links: e.links.clone(),
            seconds: format!("{:.1} s", e.seconds),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_reloads_itself_only_while_the_batch_runs() {
        let running = Progress { finished: false, expected: Some(30) };
        let page = render(&[], &Class::default(), running, Lang::En);
        assert!(page.contains(r#"<meta http-equiv="refresh" content="10">"#));
        assert!(page.contains("0/30 done"));
        let over = Progress { finished: true, expected: Some(30) };
        assert!(!render(&[], &Class::default(), over, Lang::En).contains("http-equiv=\"refresh\""));
    }
}
