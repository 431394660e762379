//! Grading a class: one failure never stops the others, each submission within a
//! time limit, each isolated — in a fresh environment, or in a shared one with
//! repositories of its own and the node's cache wiped before each build.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Serialize;

use tokio_util::sync::CancellationToken;

use crate::checks::{self, Evidence, Rubric};
use crate::environment::{EnvOptions, Images, LabEnvironment};
use crate::lab::{self, LabOptions, LabRun, Progress, Stage, Timing};
use crate::report::{BuildSummary, Report, RunSummary, Verdict};
use crate::Error;

pub mod reuse;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// registry7 and a node started for each submission, removed after it.
    #[value(name = "fresh")]
    FreshEnvironment,
    /// One node for all, the app copied to `/lab/<submission>` and `buildctl prune --all`
    /// before each build; registry7 renewed (empty, same name) for each submission.
    #[value(name = "shared")]
    SharedNode,
}

#[derive(Debug, Clone)]
pub struct BatchOptions {
    pub file: String,
    pub timeout: Duration,
    pub strategy: Strategy,
    pub env: EnvOptions,
    pub build_timeout: Duration,
    pub client: crate::builds::buildx::Client,
    /// Submissions graded at once, each in an environment of its own (`--jobs`).
    pub jobs: usize,
    /// Remote BuildKit nodes (`--node`): one job each, so no two submissions share a node's
    /// cache; empty for lab7's own nodes.
    pub nodes: Vec<crate::environment::remote::RemoteNode>,
    /// Cancelled on SIGINT/SIGTERM/SIGHUP: the current submission stops, no new one starts.
    pub cancel: CancellationToken,
    /// The batch's own outputs (the CSV, its summary, the reports folder): where they lie in
    /// the class folder (`--out DIR/results.csv`), they are skipped, never graded.
    pub own_outputs: Vec<PathBuf>,
    /// The last run's reports folder: a submission whose inputs are as when it was graded there
    /// takes that report instead of being built again (`reuse`); `None` builds every one
    /// (`--rebuild`).
    pub reuse_from: Option<PathBuf>,
}

/// What the machine can take by default: one job per CPU (a build is mostly CPU, arm64 under
/// emulation all of it), at least one.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Debug, Clone, Serialize)]
pub struct SubmissionResult {
    pub submission: String,
    /// `None` when lab7 could not grade it at all (see `error`).
    pub verdict: Option<Verdict>,
    pub points: f64,
    pub max_points: f64,
    pub bonus_points: f64,
    pub percent: f64,
    pub error: Option<String>,
    /// Why an instructor should check it by hand (`Report::review`).
    pub review: Option<String>,
    /// The grading was cut short by an interruption.
    pub interrupted: bool,
    /// For a report: the digests its runs produced, with the lines showing them
    /// (`HandIn::produced_digests`), for the class's shared-evidence check.
    #[serde(skip)]
    pub produced: Vec<(crate::reference::Digest, crate::handin::Quote)>,
    /// Each check as graded: what failed, and each one's points for the instructor's overrides.
    #[serde(skip)]
    pub checks: Vec<crate::checks::CheckOutcome>,
    /// For a report: its prose as five-word runs (`HandIn::prose_shingles`).
    #[serde(skip)]
    pub prose: std::collections::HashSet<String>,
    pub seconds: f64,
    /// The digest of what it was graded from (`reuse::inputs_of`), remembered beside its report.
    #[serde(skip)]
    pub inputs: Option<crate::reference::Digest>,
    /// Taken from the last run's report, not built again (`reuse`).
    #[serde(skip)]
    pub reused: bool,
}

/// One submission to grade: its name in the results, the folder that is its build context, and
/// its Dockerfile's name there when it is not the batch's `--file` (found by `intake`).
#[derive(Debug, Clone)]
pub struct Submission {
    pub name: String,
    pub dir: PathBuf,
    pub dockerfile: Option<String>,
}

impl Submission {
    /// A subfolder of a class folder, named as the folder is.
    pub fn folder(dir: PathBuf) -> Submission {
        let name = dir.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned());
        Submission { name, dir, dockerfile: None }
    }
}

/// Called with each submission's result (and its report, when it was graded) as it ends.
pub type OnGraded<'a> = dyn FnMut(&SubmissionResult, Option<&Report>) -> Result<(), Error> + 'a;

/// Grades each subfolder of `dir`, in name order, handing each result (and its report) to
/// `done` as soon as it is known, so that an interrupted batch keeps what it graded.
pub async fn grade_all(
    dir: &Path,
    opts: &BatchOptions,
    images: &Images,
    rubric: &Rubric,
    progress: &dyn Progress,
    done: &mut OnGraded<'_>,
) -> Result<Vec<SubmissionResult>, Error> {
    let subs = submissions(dir, &opts.own_outputs)?.into_iter().map(Submission::folder).collect();
    grade_submissions(subs, opts, images, rubric, progress, done).await
}

/// Grades each submission, in the order given, handing each result (and its report) to `done`
/// as soon as it is known.
pub async fn grade_submissions(
    subs: Vec<Submission>,
    opts: &BatchOptions,
    images: &Images,
    rubric: &Rubric,
    progress: &dyn Progress,
    done: &mut OnGraded<'_>,
) -> Result<Vec<SubmissionResult>, Error> {
    let (kept, subs) = reuse::split(subs, opts, images, rubric);
    let mut reused = reuse::hand_over(kept, done)?;
    let next = std::sync::atomic::AtomicUsize::new(0);
    // Set when the results can no longer be written: no worker starts another submission.
    let stop = opts.cancel.child_token();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // `jobs` workers in this task, each with its own environment, take the next submission
    // in name order until none is left; results reach `done` as each submission ends.
    let jobs = if opts.nodes.is_empty() { opts.jobs.max(1) } else { opts.nodes.len() };
    let workers = futures_util::future::join_all((0..jobs).map(|slot| {
        let tx = tx.clone();
        let (subs, next, stop) = (&subs, &next, &stop);
        // Each job builds on its own remote node, when there are some.
        let mut opts = opts.clone();
        opts.env.remote = opts.nodes.get(slot).cloned();
        async move {
            let mut shared: Option<LabEnvironment> = None;
            let result = worker(subs, next, stop, &mut shared, &opts, images, rubric, progress, &tx).await;
            let removed = match shared.take() {
                Some(env) => env.shutdown().await,
                None => Ok(()),
            };
            result.and(removed)
        }
    }));
    drop(tx);
    let total = subs.len();
    let started = Instant::now();
    let collect = async {
        let mut results = Vec::new();
        while let Some((result, report)) = rx.recv().await {
            if let Err(e) = done(&result, report.as_ref()) {
                stop.cancel();
                return Err(e);
            }
            results.push(result);
            let left = total - results.len();
            let eta = started.elapsed().as_secs_f64() / results.len() as f64 * left as f64;
            eprintln!("[lab7] {}/{total} graded, about {eta:.0} s left", results.len());
        }
        Ok::<_, Error>(results)
    };
    let (ended, results) = tokio::join!(workers, collect);
    ended.into_iter().collect::<Result<Vec<()>, Error>>()?;
    let mut results = results?;
    results.append(&mut reused);
    results.sort_by(|a, b| a.submission.cmp(&b.submission));
    Ok(results)
}

type Graded = (SubmissionResult, Option<Report>);

/// One job: grades submissions until none is left, sending each result as it ends.
#[allow(clippy::too_many_arguments)] // the batch's inputs, passed down unchanged
async fn worker(
    subs: &[reuse::Pending],
    next: &std::sync::atomic::AtomicUsize,
    stop: &CancellationToken,
    shared: &mut Option<LabEnvironment>,
    opts: &BatchOptions,
    images: &Images,
    rubric: &Rubric,
    progress: &dyn Progress,
    tx: &tokio::sync::mpsc::UnboundedSender<Graded>,
) -> Result<(), Error> {
    loop {
        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let Some((sub, inputs)) = subs.get(i) else { return Ok(()) };
        if stop.is_cancelled() {
            return Ok(());
        }
        eprintln!("[lab7] submission {}/{}: {}", i + 1, subs.len(), sub.dir.display());
        let mut lab_opts = LabOptions::new(&sub.dir);
        lab_opts.dockerfile = sub.dockerfile.clone().unwrap_or_else(|| opts.file.clone());
        lab_opts.env = opts.env.clone();
        lab_opts.build_timeout = opts.build_timeout;
        lab_opts.client = opts.client;
        lab_opts.cancel = opts.cancel.clone();
        let started = Instant::now();
        let outcome = match opts.strategy {
            Strategy::FreshEnvironment => {
                tokio::time::timeout(opts.timeout, lab::run(&lab_opts, images, progress)).await
            }
            Strategy::SharedNode => {
                let slug = format!("s{:03}", i + 1);
                let graded =
                    tokio::time::timeout(opts.timeout, in_shared(shared, images, &lab_opts, &slug, progress)).await;
                // A broken, timed-out or half-used node is not handed to the next submission.
                if !matches!(graded, Ok(Ok(_))) || shared.as_ref().is_some_and(|e| e.tainted) {
                    if let Some(env) = shared.take() {
                        env.shutdown().await?;
                    }
                }
                graded
            }
        };
        // The receiver lives as long as the batch: a failed send means it ended on an error.
        let (mut result, report) = result_of(sub, outcome, opts, rubric, started);
        result.inputs = inputs.clone();
        let _ = tx.send((result, report));
    }
}

fn submissions(dir: &Path, own_outputs: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::input(format!("{}: {e}", dir.display()), "give a folder with one submission per subfolder")
    })?;
    let mut subs: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir() && !skipped_as_own_output(p, own_outputs))
        .collect();
    subs.sort();
    if subs.is_empty() {
        return Err(Error::input_only(format!("{}: no subfolders, so no submissions to grade", dir.display())));
    }
    Ok(subs)
}

/// Whether `path` is one of the batch's own outputs (said on stderr when it is): a second run
/// with `--out` inside the class folder must not grade the first run's reports as a student.
fn skipped_as_own_output(path: &Path, own_outputs: &[PathBuf]) -> bool {
    let Ok(path) = path.canonicalize() else { return false };
    let own = own_outputs.iter().filter_map(|o| o.canonicalize().ok()).any(|o| o == path);
    if own {
        eprintln!("[lab7] skipping {}: it is this batch's own output (--out), not a submission", path.display());
    }
    own
}

async fn in_shared(
    shared: &mut Option<LabEnvironment>,
    images: &Images,
    opts: &LabOptions,
    slug: &str,
    progress: &dyn Progress,
) -> Result<LabRun, Error> {
    let dockerfile_summary = opts.validate()?;
    progress.stage_started(Stage::Environment);
    let t = Instant::now();
    match shared {
        None => *shared = Some(LabEnvironment::start(images, &opts.env).await?),
        // Its own registry storage: another submission's blobs could keep this one's alive through GC.
        Some(env) => env.renew_registry().await?,
    }
    let env = shared.as_mut().expect("started above");
    let context = env.node.upload(&opts.app_dir, slug, &opts.dockerfile, opts.env.max_context).await?;
    let spec = crate::builds::BuildSpec::for_environment(env, &opts.dockerfile, &context).await?;
    let timing = Timing { stage: Stage::Environment, seconds: t.elapsed().as_secs_f64() };
    progress.stage_finished(Stage::Environment, timing.seconds);
    lab::run_in(env, opts, &dockerfile_summary, spec, timing, progress).await
}

fn result_of(
    sub: &Submission,
    outcome: Result<Result<LabRun, Error>, tokio::time::error::Elapsed>,
    opts: &BatchOptions,
    rubric: &Rubric,
    started: Instant,
) -> (SubmissionResult, Option<Report>) {
    let mut result = SubmissionResult::named(sub.name.clone());
    let mut report = None;
    match outcome {
        Ok(Ok(run)) => {
            let r = Report::new(
                "check",
                &sub.dir.display().to_string(),
                checks::evaluate(rubric, &Evidence::of_run(&run)),
                BuildSummary::of_run(&run),
                Some(RunSummary::of(&run)),
            );
            result.score_from(&r);
            result.interrupted = run.interrupted;
            report = Some(r);
        }
        Ok(Err(e)) => result.error = Some(e.to_string()),
        Err(_) => result.error = Some(format!("did not finish within {:?} (--timeout)", opts.timeout)),
    }
    result.seconds = started.elapsed().as_secs_f64();
    (result, report)
}

impl SubmissionResult {
    pub fn named(submission: String) -> SubmissionResult {
        SubmissionResult {
            submission,
            verdict: None,
            points: 0.0,
            max_points: 0.0,
            bonus_points: 0.0,
            percent: 0.0,
            error: None,
            review: None,
            interrupted: false,
            produced: Vec::new(),
            checks: Vec::new(),
            prose: Default::default(),
            seconds: 0.0,
            inputs: None,
            reused: false,
        }
    }

    fn score_from(&mut self, r: &Report) {
        self.verdict = Some(r.verdict);
        self.points = r.score.points;
        self.max_points = r.score.max_points;
        self.bonus_points = r.score.bonus_points;
        self.percent = r.score.percent;
        self.review = r.review.clone();
        self.checks = r.checks.clone();
    }

    /// The ids of the checks it failed, as the rubric names them.
    pub fn failed_check_names(&self) -> Vec<String> {
        checks::failed_names(&self.checks)
    }
}

/// The CSV's columns, in order (`review` last: the columns before it keep their places).
const CSV_COLUMNS: [&str; 10] = [
    "submission",
    "verdict",
    "points",
    "max_points",
    "bonus_points",
    "percent",
    "failed_checks",
    "error",
    "seconds",
    "review",
];

/// The CSV's header line.
pub fn csv_header() -> String {
    csv_line(&CSV_COLUMNS.map(String::from))
}

/// One CSV row, newline included.
pub fn csv_row(r: &SubmissionResult) -> String {
    csv_line(&[
        r.submission.clone(),
        verdict_word(r).to_string(),
        r.points.to_string(),
        r.max_points.to_string(),
        r.bonus_points.to_string(),
        r.percent.to_string(),
        r.failed_check_names().join(" "),
        r.error.clone().unwrap_or_default(),
        format!("{:.1}", r.seconds),
        r.review.clone().unwrap_or_default(),
    ])
}

/// One record through the csv crate (quoting, embedded newlines, commas).
fn csv_line(fields: &[String]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields).expect("writing to memory");
    String::from_utf8(w.into_inner().expect("writing to memory")).expect("UTF-8 in, UTF-8 out")
}

pub fn csv(results: &[SubmissionResult]) -> String {
    results.iter().fold(csv_header(), |o, r| o + &csv_row(r))
}

/// `pass`, `fail`, `interrupted`, or `error` when it could not be graded.
pub fn verdict_word(r: &SubmissionResult) -> &'static str {
    match (r.interrupted, r.verdict) {
        (true, _) => "interrupted",
        (false, Some(Verdict::Pass)) => "pass",
        (false, Some(_)) => "fail",
        (false, None) => "error",
    }
}

pub fn markdown(results: &[SubmissionResult]) -> String {
    let mut o =
        String::from("| Submission | Verdict | Score | Bonus | Failed checks / error |\n|---|---|---|---|---|\n");
    for r in results {
        let why = r.error.clone().unwrap_or_else(|| r.failed_check_names().join(", "));
        let why = why.lines().next().unwrap_or("").replace('|', "\\|");
        o += &format!(
            "| {} | {} | {}/{} | {} | {} |\n",
            r.submission,
            verdict_word(r),
            r.points,
            r.max_points,
            r.bonus_points,
            why
        );
    }
    o
}

/// The reports in `dir` a class handed in: `.md`, `.markdown`, `.txt`, `.pdf` and `.docx`
/// files, in name order (hidden files and anything else left out).
pub fn report_files(dir: &Path, own_outputs: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::input(format!("{}: {e}", dir.display()), "give --reports a folder holding the students' reports")
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
        .filter(|p| {
            let ext = p.extension().map(|e| e.to_string_lossy().to_ascii_lowercase());
            matches!(ext.as_deref(), Some("md" | "markdown" | "txt" | "pdf" | "docx"))
        })
        .filter(|p| !skipped_as_own_output(p, own_outputs))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::input(
            format!("{}: no report (.md, .txt, .pdf, .docx) in it", dir.display()),
            "give --reports the folder the students' reports were downloaded to",
        ));
    }
    Ok(files)
}

/// How a batch reads its reports: the reader (each report bounded in a child process, from
/// the CLI), the batch's own outputs to skip, and the interruption that stops it.
pub struct ReportReading {
    pub reader: crate::handin::isolated::Reader,
    pub own_outputs: Vec<PathBuf>,
    pub cancel: CancellationToken,
}

/// Grades every report in `dir` (no Docker: reports are text), handing each result and report
/// to `done` as it is graded; an unreadable report (or one past a bound) is that student's
/// error row, not the end. An interruption stops the batch with the rows graded so far.
pub async fn grade_reports(
    dir: &Path,
    rubric: &Rubric,
    reading: &ReportReading,
    done: &mut OnGraded<'_>,
) -> Result<Vec<SubmissionResult>, Error> {
    let files = report_files(dir, &reading.own_outputs)?
        .into_iter()
        .map(|f| (f.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()), f))
        .collect();
    grade_report_files(files, rubric, reading, done).await
}

/// Grades each (name, report file), as `grade_reports` does a folder's.
pub async fn grade_report_files(
    files: Vec<(String, PathBuf)>,
    rubric: &Rubric,
    reading: &ReportReading,
    done: &mut OnGraded<'_>,
) -> Result<Vec<SubmissionResult>, Error> {
    use crate::handin::isolated::ReadFailure;
    let mut results = Vec::new();
    for (i, (name, file)) in files.iter().enumerate() {
        let started = Instant::now();
        let name = name.clone();
        eprintln!("[lab7] report {}/{}: {name}", i + 1, files.len());
        let mut result = SubmissionResult::named(name);
        let report = match reading.reader.read(file, &reading.cancel).await {
            Ok(h) => {
                let r = h.grade(&file.display().to_string(), rubric);
                result.score_from(&r);
                result.produced = h.produced_digests();
                result.prose = h.prose_shingles();
                Some(r)
            }
            Err(ReadFailure::Unreadable(e)) => {
                result.error = Some(e.to_string());
                None
            }
            Err(ReadFailure::Interrupted) => {
                result.interrupted = true;
                None
            }
        };
        result.seconds = started.elapsed().as_secs_f64();
        done(&result, report.as_ref())?;
        let stop = result.interrupted;
        results.push(result);
        if stop {
            break;
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batchs_own_reports_folder_in_the_class_folder_is_no_submission() {
        let class = tempfile::tempdir().unwrap();
        for sub in ["ada", "bob", "results-reports"] {
            std::fs::create_dir(class.path().join(sub)).unwrap();
        }
        let own = [class.path().join("results.csv"), class.path().join("results-reports")];
        let subs = submissions(class.path(), &own).unwrap();
        let names: Vec<_> = subs.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        assert_eq!(names, ["ada", "bob"]);
        // Named only by a path that does not resolve (not yet written): nothing is skipped.
        assert_eq!(submissions(class.path(), &[class.path().join("elsewhere")]).unwrap().len(), 3);
    }
}
