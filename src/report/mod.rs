//! Reports: one `Report` (the documented JSON schema) rendered as text for a
//! person, Markdown for a lab report, JUnit for CI, results.json for Gradescope.

pub mod formats;
pub mod html;

use serde::{Deserialize, Serialize};

use crate::builds::{BuildLog, BuildOutcome, CacheImport};
use crate::checks::{CheckId, CheckOutcome, Status};
use crate::diagnosis::Diagnosis;
use crate::lab::{LabRun, Timing};
use crate::registry::deletion::DeletionEvidence;
use crate::registry::manifest::{CacheShape, IndexEntry};

/// v2: `builds[].cache_import` is an object (`outcome` and its fields), `run.cache.shape` a
/// name (`image_manifest`/`index`), check ids and verdicts as before.
pub const SCHEMA: &str = "lab7.report/v2";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Score {
    pub points: f64,
    pub max_points: f64,
    pub bonus_points: f64,
    pub bonus_max_points: f64,
    /// points / max_points × 100, bonus included (so up to 150).
    pub percent: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every compulsory check passed.
    Pass,
    Fail,
}

/// The document every format is rendered from. `schema` names its version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub lab7_version: String,
    /// `check`, `grade-logs` or `audit`.
    pub kind: String,
    /// What was graded: the app directory, the log files, or the registry and image.
    pub subject: String,
    pub verdict: Verdict,
    pub score: Score,
    pub checks: Vec<CheckOutcome>,
    /// The builds graded: run by `lab7 check`, or pasted logs for `lab7 grade-logs`.
    pub builds: Vec<BuildSummary>,
    /// Present for `lab7 check`: what the other stages saw.
    pub run: Option<RunSummary>,
    /// Known failures found in the builds' output (the catalogue, `diagnosis`), each for the
    /// failed check it explains.
    #[serde(default)]
    pub diagnoses: Vec<Diagnosis>,
    /// Why an instructor should check this by hand (a report whose pieces contradict each
    /// other: `evidence inconsistent: check by hand — …`), in every format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub app: String,
    pub dockerfile: String,
    pub run_id: String,
    pub registry_image: String,
    pub buildkit_image: String,
    pub standins: bool,
    pub node_platforms: Vec<String>,
    pub buildkit_version: String,
    /// The buildctl command run (twice), and the same as `docker buildx build`.
    pub buildctl_command: String,
    pub buildx_command: String,
    pub image: Option<ImageListing>,
    pub cache: Option<CacheListing>,
    pub deletion: Option<DeletionEvidence>,
    pub repositories: Vec<String>,
    pub stopped: Option<String>,
    /// The run was stopped by SIGINT, SIGTERM or SIGHUP: the report is partial.
    #[serde(default)]
    pub interrupted: bool,
    pub timings: Vec<Timing>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BuildSummary {
    pub number: u8,
    /// `null` for a pasted log: only a run knows its exit code and time.
    pub exit_code: Option<i64>,
    pub seconds: Option<f64>,
    pub cache_import: CacheImport,
    pub platforms: Vec<PlatformLine>,
    pub cached_lines: Vec<String>,
    pub cache_layers_exported: Option<usize>,
    pub first_failure: Option<String>,
    /// Every vertex in the order the output shows them, for the HTML timeline (not in the
    /// JSON schema: the JSON carries the counts above).
    #[serde(skip)]
    pub steps: Vec<StepLine>,
}

/// One vertex of a build as a timeline draws it.
#[derive(Debug, Clone, Serialize)]
pub struct StepLine {
    pub label: String,
    pub platform: Option<String>,
    pub kind: StepKind,
    pub state: StepState,
    /// From the first vertex's start, where the output says (rawjson).
    pub start_ms: Option<u64>,
    pub duration_ms: Option<u64>,
}

/// What a vertex is, for the timeline: a Dockerfile step, the cache's import or export (the
/// lab's evidence, drawn as bars of their own), or BuildKit's own work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Step,
    CacheImport,
    CacheExport,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Built,
    Cached,
    Failed,
    Unfinished,
}

impl StepLine {
    fn of(v: &crate::builds::Vertex) -> StepLine {
        use crate::builds::VertexState;
        let kind = if v.step.is_some() {
            StepKind::Step
        } else if v.name.starts_with("importing cache manifest") {
            StepKind::CacheImport
        } else if v.name.starts_with("exporting cache") {
            StepKind::CacheExport
        } else {
            StepKind::Other
        };
        let state = match v.state {
            VertexState::Done => StepState::Built,
            VertexState::Cached => StepState::Cached,
            VertexState::Error(_) => StepState::Failed,
            VertexState::Unfinished => StepState::Unfinished,
        };
        StepLine {
            label: v.name.clone(),
            platform: v.step.as_ref().and_then(|s| s.platform.as_ref()).map(|p| p.to_string()),
            kind,
            state,
            start_ms: v.time.and_then(|t| t.start_ms),
            duration_ms: v.time.map(|t| t.duration_ms),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlatformLine {
    pub platform: String,
    pub layer_steps: usize,
    pub cached_layer_steps: usize,
    pub cached_steps: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageListing {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub manifests: Vec<ManifestLine>,
    /// Each platform's layers and what its binaries are built for, as lab7 read them (the
    /// HTML image tree; not in the JSON schema).
    #[serde(skip)]
    pub platforms_read: Vec<crate::registry::binaries::PlatformBinaries>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ManifestLine {
    pub platform: String,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub attestation: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CacheListing {
    pub name: String,
    pub digest: Option<String>,
    pub media_type: String,
    pub shape: Option<CacheShape>,
    pub layers: usize,
    pub layer_bytes: u64,
    pub layers_not_in_image: usize,
    pub bytes_not_in_image: u64,
}

impl Score {
    pub fn of(checks: &[CheckOutcome]) -> Score {
        let sum = |bonus: bool, f: fn(&CheckOutcome) -> f64| -> f64 {
            checks.iter().filter(|c| c.bonus == bonus && c.status != Status::Skipped).map(f).sum()
        };
        let (points, max_points) = (sum(false, |c| c.points), sum(false, |c| c.max_points));
        let bonus_points = sum(true, |c| c.points);
        let percent = if max_points > 0.0 { (points + bonus_points) / max_points * 100.0 } else { 0.0 };
        Score {
            points,
            max_points,
            bonus_points,
            bonus_max_points: sum(true, |c| c.max_points),
            percent: (percent * 10.0).round() / 10.0,
        }
    }
}

impl Report {
    pub fn new(
        kind: &str,
        subject: &str,
        checks: Vec<CheckOutcome>,
        builds: Vec<BuildSummary>,
        run: Option<RunSummary>,
    ) -> Report {
        let compulsory = || checks.iter().filter(|c| !c.bonus && c.status != Status::Skipped);
        let verdict = if compulsory().all(|c| c.status == Status::Pass) { Verdict::Pass } else { Verdict::Fail };
        Report {
            schema: SCHEMA.into(),
            lab7_version: env!("CARGO_PKG_VERSION").into(),
            kind: kind.into(),
            subject: subject.into(),
            verdict,
            score: Score::of(&checks),
            checks,
            builds,
            run,
            diagnoses: Vec::new(),
            review: None,
        }
    }

    /// `85/100 + bonus 50/50 = 135%`: the score as every format states it.
    pub fn score_line(&self) -> String {
        let s = &self.score;
        let bonus = if s.bonus_max_points > 0.0 {
            format!(" + bonus {}/{}", s.bonus_points, s.bonus_max_points)
        } else {
            String::new()
        };
        format!("{}/{}{bonus} = {}%", s.points, s.max_points, s.percent)
    }

    pub fn with_review(mut self, review: Option<String>) -> Report {
        self.review = review;
        self
    }

    /// Adds the problems diagnosed in what the builds printed, each to the failed check it
    /// explains (an expected message, or one about a check that passed, explains nothing).
    pub fn with_diagnoses(mut self, found: Vec<Diagnosis>) -> Report {
        let failed = |id: CheckId| self.checks.iter().any(|c| c.id == id && c.status == Status::Fail);
        let keep: Vec<Diagnosis> = found.into_iter().filter(|d| !d.expected && failed(d.check)).collect();
        self.diagnoses = keep;
        self
    }

    /// The diagnoses of one check.
    pub fn diagnoses_of(&self, id: CheckId) -> impl Iterator<Item = &Diagnosis> {
        self.diagnoses.iter().filter(move |d| d.check == id)
    }

    /// The outcome of one check; panics on an id the rubric did not have (a test's mistake).
    pub fn check(&self, id: CheckId) -> &CheckOutcome {
        self.checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no check `{id}` in this report"))
    }

    /// Pass when every compulsory check passes, else Fail. (Usage and environment errors
    /// never get a report.)
    pub fn exit(&self) -> crate::Exit {
        match self.verdict {
            Verdict::Pass => crate::Exit::Pass,
            Verdict::Fail => crate::Exit::Fail,
        }
    }
}

impl RunSummary {
    pub fn of(run: &LabRun) -> RunSummary {
        RunSummary {
            app: run.app.clone(),
            dockerfile: run.dockerfile.clone(),
            run_id: run.run_id.clone(),
            registry_image: run.images.registry.clone(),
            buildkit_image: run.images.buildkit.clone(),
            standins: run.images.standins,
            node_platforms: run.node.platforms.iter().map(|p| p.to_string()).collect(),
            buildkit_version: run.node.buildkit_version.clone(),
            buildctl_command: run.spec.args().join(" "),
            buildx_command: run.spec.buildx_command(),
            image: run.image.as_ref().map(|i| ImageListing {
                name: run.spec.image_ref(),
                digest: i.digest.to_string(),
                media_type: i.media_type.clone(),
                manifests: i.entries.iter().map(manifest_line).collect(),
                platforms_read: i.binaries.clone(),
            }),
            cache: run.cache.as_ref().map(|c| CacheListing {
                name: format!("{}:{}", run.spec.cache_ref(), run.spec.cache.reference),
                digest: c.manifest.as_ref().map(|m| m.digest.to_string()),
                media_type: c.media_type.clone(),
                shape: c.manifest.as_ref().map(|m| m.shape),
                layers: c.manifest.as_ref().map_or(0, |m| m.layers.len()),
                layer_bytes: c.manifest.as_ref().map_or(0, |m| m.layer_bytes()),
                layers_not_in_image: c.layers_not_in_image,
                bytes_not_in_image: c.bytes_not_in_image,
            }),
            deletion: run.deletion.clone(),
            repositories: run.repositories.clone(),
            stopped: run.stopped.clone(),
            interrupted: run.interrupted,
            timings: run.timings.clone(),
        }
    }
}

pub fn manifest_line(e: &IndexEntry) -> ManifestLine {
    ManifestLine {
        platform: e.platform.to_string(),
        digest: e.manifest.digest.to_string(),
        media_type: e.manifest.media_type.clone(),
        size: e.manifest.size,
        attestation: e.attestation,
    }
}

pub fn describe_import(i: &CacheImport) -> String {
    match i {
        CacheImport::NotAttempted => "not attempted".into(),
        CacheImport::NotFound { from, .. } => format!("{from}: not found (no cache yet)"),
        CacheImport::Failed { from, message } => format!("{from}: failed: {message}"),
        CacheImport::Imported { from, manifest_type } => format!("imported from {from} ({manifest_type})"),
    }
}

impl BuildSummary {
    /// The builds of a lab run, in order.
    pub fn of_run(run: &LabRun) -> Vec<BuildSummary> {
        let outcome = |n, b: &BuildOutcome| BuildSummary::of_log(n, &b.log, b.exit_code(), Some(b.seconds));
        std::iter::once(outcome(1, &run.build1)).chain(run.build2.iter().map(|b| outcome(2, b))).collect()
    }

    pub fn of_log(number: u8, log: &BuildLog, exit_code: Option<i64>, seconds: Option<f64>) -> BuildSummary {
        BuildSummary {
            number,
            exit_code,
            seconds,
            cache_import: log.cache_import(),
            platforms: log
                .per_platform()
                .into_iter()
                .map(|(p, s)| PlatformLine {
                    platform: p.map_or("(single platform)".into(), |p| p.to_string()),
                    layer_steps: s.layer_steps,
                    cached_layer_steps: s.cached_layer_steps,
                    cached_steps: s.cached_steps,
                })
                .collect(),
            cached_lines: log.cached_lines(),
            cache_layers_exported: log.cache_export().map(|e| e.layers_written),
            first_failure: if exit_code == Some(0) { None } else { log.first_failure() },
            steps: log.vertices.iter().map(StepLine::of).collect(),
        }
    }
}
