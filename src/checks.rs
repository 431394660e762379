//! Each lab requirement as a check: what was expected, what was seen, how to fix it.
//!
//! A check looks at its part of the [`Evidence`] and gives a [`Finding`]: what it saw and
//! whether that passes, or that its stage was not reached; a check whose evidence is not part
//! of this kind of grading (the registry, for pasted logs) is skipped.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::builds::vertex::LogForm;
use crate::builds::{BuildLog, BuildOutcome, CacheImport, VertexState};
use crate::lab::LabRun;
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::registry::deletion::DeletionEvidence;
use crate::registry::{CacheEvidence, ImageSummary};
use crate::Error;

/// The lab's requirements, in the lab's order. A rubric names them; an unknown name is
/// refused when the rubric is read, with the known ones listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    BuildsSucceed,
    ManifestListsBothArchitectures,
    CacheImportedFromRegistry,
    CachedStepsBothPlatforms,
    CacheExported,
    CacheSeparateImageModeMax,
    CacheDeleted,
    SpaceReclaimed,
    ImageIntact,
    /// The hand-in's requirements (`lab7 grade-report`), in LAB.md's order.
    ReportTwoBuilds,
    ReportManifest,
    ReportCacheEvidence,
    ReportProblemsExplained,
    ReportConsistent,
    ReportBonusDeletion,
}

impl CheckId {
    pub const ALL: [CheckId; 9] = [
        CheckId::BuildsSucceed,
        CheckId::ManifestListsBothArchitectures,
        CheckId::CacheImportedFromRegistry,
        CheckId::CachedStepsBothPlatforms,
        CheckId::CacheExported,
        CheckId::CacheSeparateImageModeMax,
        CheckId::CacheDeleted,
        CheckId::SpaceReclaimed,
        CheckId::ImageIntact,
    ];

    /// What `lab7 grade-report` grades in a student's report.
    pub const REPORT: [CheckId; 6] = [
        CheckId::ReportTwoBuilds,
        CheckId::ReportManifest,
        CheckId::ReportCacheEvidence,
        CheckId::ReportProblemsExplained,
        CheckId::ReportConsistent,
        CheckId::ReportBonusDeletion,
    ];

    /// A requirement of the report, not of the lab run.
    pub fn is_report(self) -> bool {
        CheckId::REPORT.contains(&self)
    }
}

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.serialize(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// Not part of this kind of grading (e.g. registry checks when grading pasted logs).
    Skipped,
}

/// One rubric entry, as the instructor wrote it in the rubric file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RubricEntry {
    pub id: CheckId,
    pub title: String,
    pub points: f64,
    #[serde(default)]
    pub bonus: bool,
    pub docs: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rubric {
    /// The image and the cache repository the lab asks for (LAB.md: `lab:cachetest`,
    /// `cachedata1`); a rubric may name others. Graded logs and reports are held to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    #[serde(rename = "check")]
    pub checks: Vec<RubricEntry>,
}

pub const DEFAULT_RUBRIC: &str = include_str!("../rubric.toml");
pub const DEFAULT_REPORT_RUBRIC: &str = include_str!("../rubric-report.toml");

/// What a rubric grades: the lab run (or its logs), or the report handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RubricKind {
    Lab,
    Report,
}

impl Rubric {
    pub fn default_rubric() -> Rubric {
        Rubric::parse(DEFAULT_RUBRIC, "built-in rubric.toml").expect("the built-in rubric parses")
    }

    pub fn default_report_rubric() -> Rubric {
        Rubric::parse(DEFAULT_REPORT_RUBRIC, "built-in rubric-report.toml").expect("the built-in report rubric parses")
    }

    pub fn load(path: &Path) -> Result<Rubric, Error> {
        Rubric::load_for(path, RubricKind::Lab)
    }

    /// A rubric file for one kind of grading: a lab rubric naming a report requirement (or
    /// the other way round) is refused, naming the command it belongs to.
    pub fn load_for(path: &Path, kind: RubricKind) -> Result<Rubric, Error> {
        let text = crate::lab::read_small(path, 1 << 20)
            .map_err(|e| Error::input(format!("{}: {e}", path.display()), "give --rubric a readable TOML file"))?;
        let rubric = Rubric::parse(&text, &path.display().to_string())?;
        if let Some(c) = rubric.checks.iter().find(|c| c.id.is_report() != (kind == RubricKind::Report)) {
            let (this, other) = match kind {
                RubricKind::Lab => ("the lab's", "`lab7 grade-report --rubric` (see rubric-report.toml)"),
                RubricKind::Report => ("the report's", "`check`, `grade-logs` or `audit --rubric` (see rubric.toml)"),
            };
            return Err(Error::input(
                format!("{}: check `{}` is not one of {this} requirements", path.display(), c.id),
                format!("give this rubric to {other}"),
            ));
        }
        Ok(rubric)
    }

    /// Unknown check ids are refused by serde, which lists the known ones.
    pub fn parse(text: &str, origin: &str) -> Result<Rubric, Error> {
        let rubric: Rubric = toml::from_str(text).map_err(|e| Error::input_only(format!("{origin}: {e}")))?;
        rubric.validate_points().map_err(|(what, fix)| Error::input(format!("{origin}: {what}"), fix))?;
        for (key, name) in [("image", &rubric.image), ("cache", &rubric.cache)] {
            if let Some(Err(e)) = name.as_deref().map(str::parse::<ImageRef>) {
                return Err(Error::input(
                    format!("{origin}: {key} = {e}"),
                    format!(
                        "give {key} as REPO[:TAG], e.g. {key} = \"{}\"",
                        if key == "image" { "lab:cachetest" } else { "cachedata1" }
                    ),
                ));
            }
        }
        Ok(rubric)
    }

    /// The names graded: the rubric's, else the lab's.
    pub fn names(&self) -> Names {
        let lab = Names::default();
        let named = |n: &Option<String>| n.as_deref().and_then(|n| n.parse().ok());
        Names { image: named(&self.image).unwrap_or(lab.image), cache: named(&self.cache).unwrap_or(lab.cache) }
    }

    /// Points are finite and not negative; the compulsory ones sum to 100 (the lab's 100 %).
    /// The error is (what is wrong, the fix).
    fn validate_points(&self) -> Result<(), (String, String)> {
        if let Some(bad) = self.checks.iter().find(|c| !c.points.is_finite() || c.points < 0.0) {
            return Err((
                format!("check `{}` has points = {}", bad.id, bad.points),
                "give every check a number of points, 0 or more".into(),
            ));
        }
        let compulsory: f64 = self.checks.iter().filter(|c| !c.bonus).map(|c| c.points).sum();
        if (compulsory - 100.0).abs() > 1e-9 {
            return Err((
                format!("the compulsory checks sum to {compulsory} points, not 100"),
                "change their points so that they sum to 100 (bonus checks count on top)".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub id: CheckId,
    pub title: String,
    pub status: Status,
    pub points: f64,
    pub max_points: f64,
    pub bonus: bool,
    pub expected: String,
    pub seen: String,
    pub fix: Option<String>,
    pub docs: String,
    /// The lines the verdict rests on, with where they were found (a report's checks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub quotes: Vec<QuotedLine>,
}

/// A line of a student's report, quoted with where it is (`page 3, line 12`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotedLine {
    pub at: String,
    pub text: String,
}

/// One stage's evidence: not part of this grading, looked for and not there (or its stage
/// not reached), or seen.
#[derive(Debug, Clone, Copy, Default)]
pub enum Observed<T> {
    #[default]
    NotGraded,
    Missing,
    /// Its repository is still in the registry's catalog with no tag left: it was deleted
    /// (as the bonus asks of the cache), not never pushed.
    Deleted,
    Seen(T),
}

impl<T> Observed<T> {
    /// `Missing` for `None`: the stage ran (or was meant to) and found nothing.
    pub fn from_option(o: Option<T>) -> Observed<T> {
        o.map_or(Observed::Missing, Observed::Seen)
    }
}

/// The names graded, as the student was asked to use them: `lab:cachetest` and `cachedata1`.
#[derive(Debug, Clone)]
pub struct Names {
    pub image: ImageRef,
    pub cache: ImageRef,
}

impl Default for Names {
    fn default() -> Self {
        Names {
            image: "lab:cachetest".parse().expect("a reference"),
            cache: "cachedata1".parse().expect("a reference"),
        }
    }
}

/// What a check looks at; any part may be absent (pasted logs have no registry).
#[derive(Debug, Clone, Default)]
pub struct Evidence<'a> {
    /// A build's log, and how it ended when lab7 ran it (`None` for a pasted log).
    pub build1: Option<(&'a BuildLog, Option<&'a BuildOutcome>)>,
    pub build2: Option<(&'a BuildLog, Option<&'a BuildOutcome>)>,
    pub image: Observed<&'a ImageSummary>,
    pub cache: Observed<&'a CacheEvidence>,
    pub deletion: Observed<&'a DeletionEvidence>,
    /// Why the run stopped early, for checks whose stage was not reached.
    pub stopped: Option<&'a str>,
    /// Where the bonus is graded instead, when this grading leaves it out (`audit`).
    pub bonus_elsewhere: Option<&'a str>,
    pub names: Names,
}

impl<'a> Evidence<'a> {
    pub fn of_run(run: &'a LabRun) -> Evidence<'a> {
        Evidence {
            build1: Some((&run.build1.log, Some(&run.build1))),
            build2: run.build2.as_ref().map(|b| (&b.log, Some(b))),
            image: Observed::from_option(run.image.as_ref()),
            cache: Observed::from_option(run.cache.as_ref()),
            // Without the bonus asked for (`--keep-cache`), its checks are skipped, not failed.
            deletion: if run.deletion_asked {
                Observed::from_option(run.deletion.as_ref())
            } else {
                Observed::NotGraded
            },
            stopped: run.stopped.as_deref(),
            bonus_elsewhere: (!run.deletion_asked)
                .then_some("`--keep-cache` keeps the cache: run without it for the bonus"),
            names: Names { image: run.spec.image.clone(), cache: run.spec.cache.clone() },
        }
    }
}

/// What a check found.
enum Finding {
    Seen {
        pass: bool,
        seen: String,
        /// Advice for this cause, where the check's general fix does not fit it.
        fix: Option<String>,
        /// The page about this cause, where the rubric's page is about the check in general.
        docs: Option<&'static str>,
    },
    /// The stage that would show it did not run, or found nothing to look at.
    NotReached(String),
}

fn seen(pass: bool, seen: String) -> Option<Finding> {
    Some(Finding::Seen { pass, seen, fix: None, docs: None })
}

/// A failure with advice for its own cause.
fn failed_because(seen: String, fix: String) -> Option<Finding> {
    Some(Finding::Seen { pass: false, seen, fix: Some(fix), docs: None })
}

/// The registry's garbage collection, and what `--delete-untagged` does on 2.8.
const GC_DOCS: &str = "https://distribution.github.io/distribution/about/garbage-collection/";

/// A failure with advice, and the documentation page, for its own cause.
fn failed_because_of(seen: String, fix: String, docs: &'static str) -> Option<Finding> {
    Some(Finding::Seen { pass: false, seen, fix: Some(fix), docs: Some(docs) })
}

fn not_reached(why: impl Into<String>) -> Option<Finding> {
    Some(Finding::NotReached(why.into()))
}

/// What a check expects and how to fix a failure, in the names graded.
struct Texts {
    expected: String,
    fix: String,
}

/// Evaluates every rubric entry against the evidence.
pub fn evaluate(rubric: &Rubric, ev: &Evidence) -> Vec<CheckOutcome> {
    rubric
        .checks
        .iter()
        .map(|entry| {
            let (texts, finding) = match entry.id {
                CheckId::BuildsSucceed => builds_succeed(ev),
                CheckId::ManifestListsBothArchitectures => manifest_lists_both_architectures(ev),
                CheckId::CacheImportedFromRegistry => cache_imported_from_registry(ev),
                CheckId::CachedStepsBothPlatforms => cached_steps_both_platforms(ev),
                CheckId::CacheExported => cache_exported(ev),
                CheckId::CacheSeparateImageModeMax => cache_separate_image_mode_max(ev),
                CheckId::CacheDeleted => cache_deleted(ev),
                CheckId::SpaceReclaimed => space_reclaimed(ev),
                CheckId::ImageIntact => image_intact(ev),
                // A report's requirements are graded by `handin`, from the report.
                CheckId::ReportTwoBuilds
                | CheckId::ReportManifest
                | CheckId::ReportCacheEvidence
                | CheckId::ReportProblemsExplained
                | CheckId::ReportConsistent
                | CheckId::ReportBonusDeletion => (Texts { expected: String::new(), fix: String::new() }, None),
            };
            outcome(entry, texts, finding, ev)
        })
        .collect()
}

fn outcome(entry: &RubricEntry, texts: Texts, finding: Option<Finding>, ev: &Evidence) -> CheckOutcome {
    let docs = match &finding {
        Some(Finding::Seen { docs: Some(d), .. }) => d.to_string(),
        _ => entry.docs.clone(),
    };
    let (status, seen, fix) = match finding {
        None => match ev.bonus_elsewhere.filter(|_| entry.bonus) {
            Some(elsewhere) => (Status::Skipped, format!("not part of this grading: {elsewhere}"), None),
            None => (Status::Skipped, "not part of this grading".to_string(), None),
        },
        Some(Finding::Seen { pass, seen, fix, .. }) => (if pass { Status::Pass } else { Status::Fail }, seen, fix),
        // A stage that never ran says why the run stopped before it.
        Some(Finding::NotReached(why)) => (Status::Fail, format!("not reached: {}", ev.stopped.unwrap_or(&why)), None),
    };
    let names = &ev.names;
    CheckOutcome {
        id: entry.id,
        title: entry.title.replace("{image}", &names.image.to_string()).replace("{cache}", &names.cache.repository),
        points: if status == Status::Pass { entry.points } else { 0.0 },
        max_points: entry.points,
        bonus: entry.bonus,
        expected: if status == Status::Skipped { String::new() } else { texts.expected },
        fix: (status == Status::Fail).then(|| fix.unwrap_or(texts.fix)),
        status,
        seen,
        docs,
        quotes: Vec::new(),
    }
}

/// What is wrong with one build, if anything. A pasted log has no exit code: its errors tell.
fn build_problem(n: u8, log: &BuildLog, outcome: Option<&BuildOutcome>) -> Option<String> {
    let failure = match outcome {
        Some(o) => o.problem().map(|p| format!("build {n} {p}")),
        None => log.first_failure().map(|f| format!("build {n} failed: {f}")),
    };
    if failure.is_some() {
        return failure;
    }
    let seen: Vec<Platform> = log.per_platform().into_keys().flatten().collect();
    let missing: Vec<String> = Platform::lab_targets()
        .into_iter()
        .filter(|p| !seen.iter().any(|q| q.matches(p)))
        .map(|p| p.to_string())
        .collect();
    (!missing.is_empty()).then(|| format!("build {n} has no steps for {}", missing.join(", ")))
}

fn builds_succeed(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: "build 1 and build 2 exit 0, each with steps for linux/amd64 and linux/arm64".into(),
        fix: "read the first error above and the step's own output before it".into(),
    };
    let Some((b1, outcome1)) = ev.build1 else { return (texts, None) };
    let finding = match (build_problem(1, b1, outcome1), ev.build2) {
        (Some(p), _) => failed_build(p, b1, outcome1),
        (None, None) => not_reached("there is no build 2"),
        (None, Some((b2, outcome2))) => match build_problem(2, b2, outcome2) {
            Some(p) => failed_build(p, b2, outcome2),
            None => seen(true, "both builds succeeded for linux/amd64 and linux/arm64".into()),
        },
    };
    (texts, finding)
}

/// A failed build, with the advice for its cause when the log names one (a node limit the
/// build hit is already named in the problem, and its fix is the check's own).
fn failed_build(problem: String, log: &BuildLog, outcome: Option<&BuildOutcome>) -> Option<Finding> {
    let hit_limit = outcome.is_some_and(|o| !o.limits_hit.is_empty());
    match log.failure_cause() {
        Some(cause) if !hit_limit => failed_because(problem, cause.advice()),
        _ => seen(false, problem),
    }
}

fn manifest_lists_both_architectures(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: format!(
            "{} is an image index with a manifest for linux/amd64 and one for linux/arm64",
            ev.names.image
        ),
        fix: "build with --platform linux/amd64,linux/arm64 and --push (one build, not one per platform)".into(),
    };
    let finding = match ev.image {
        Observed::NotGraded => None,
        Observed::Missing => not_reached(format!("{} is not in registry7", ev.names.image)),
        Observed::Deleted => {
            seen(false, format!("{} was deleted: its repository is in registry7 with no tag", ev.names.image))
        }
        Observed::Seen(image) => {
            let listed: Vec<String> = image.platforms().iter().map(|p| p.to_string()).collect();
            let attest = match image.attestations() {
                0 => String::new(),
                n => format!(" (+{n} attestation manifests, not platforms)"),
            };
            let pass = Platform::lab_targets().iter().all(|p| image.has_platform(p)) && image.missing.is_empty();
            let mut what = if listed.is_empty() {
                format!("a single-platform manifest ({})", image.media_type)
            } else {
                format!("{} lists {}{attest}", image.media_type, listed.join(", "))
            };
            if !image.missing.is_empty() {
                let gone: Vec<String> =
                    image.missing.iter().map(|m| format!("{} {} answers {}", m.what, m.digest, m.status)).collect();
                what += &format!(
                    ", but {} part(s) it references are gone: {}. The image cannot be pulled",
                    gone.len(),
                    gone.join("; ")
                );
                return (
                    texts,
                    failed_because_of(
                        what,
                        "push the image again (the lab's build with --push); on registry 2.8 never run garbage-collect --delete-untagged: it deletes the platform manifests of multi-arch images (they are untagged). Delete the cache by digest and run plain garbage-collect".into(),
                        GC_DOCS,
                    ),
                );
            }
            match binaries_mismatch(image) {
                Some((said, fix)) if pass => failed_because(format!("{what}, but {said}"), fix),
                _ if pass && !image.binaries.is_empty() => {
                    let counts: Vec<String> =
                        image.binaries.iter().map(|b| format!("{}: {}", b.platform, b.elf_files)).collect();
                    seen(true, format!("{what}; each platform's ELF binaries are built for it ({})", counts.join(", ")))
                }
                _ => seen(pass, what),
            }
        }
    };
    (texts, finding)
}

/// A platform whose image holds binaries of another architecture (what the index says is not
/// what runs), with the fix for how that happens.
fn binaries_mismatch(image: &ImageSummary) -> Option<(String, String)> {
    let wrong = image.binaries.iter().find(|b| !b.foreign.is_empty())?;
    let (path, arch) = &wrong.foreign[0];
    let said = format!(
        "its {} image holds binaries built for {arch} ({path}; {} of {} ELF files): it will not run on {}",
        wrong.platform,
        wrong.foreign.len(),
        wrong.elf_files,
        wrong.platform.architecture
    );
    let fix = "most often a final stage `FROM --platform=$BUILDPLATFORM`: such a stage builds for the machine that runs the build; keep it for stages that cross-compile (with TARGETARCH), and start the final stage with a plain FROM so it is the target platform's base image".to_string();
    Some((said, fix))
}

fn cache_imported_from_registry(ev: &Evidence) -> (Texts, Option<Finding>) {
    let cache = &ev.names.cache.repository;
    let texts = Texts {
        expected: format!("build 1 tries to import {cache} (not found yet is fine); build 2 imports it (`inferred cache manifest type`)"),
        fix: format!("pass --cache-from type=registry,ref=<registry7>/{cache} to both builds, with the same ref as --cache-to"),
    };
    let Some((b1, _)) = ev.build1 else { return (texts, None) };
    let Some((b2, _)) = ev.build2 else { return (texts, not_reached("there is no build 2")) };
    if let Some(one) = one_build(b1, b2) {
        return (texts, one);
    }
    if let Some(why) = not_the_labs_cache(ev, b1, b2) {
        return (texts, seen(false, why));
    }
    let place = CachePlace::of(ev, b2, b1);
    let first = match b1.cache_import() {
        CacheImport::NotAttempted => return (texts, seen(false, "build 1 did not try to import a cache".into())),
        CacheImport::NotFound { .. } => "build 1: not found (expected)".to_string(),
        CacheImport::Failed { message, .. } => format!("build 1: {message}"),
        CacheImport::Imported { from, .. } => {
            let what = format!("build 1 imported {from}: a cache existed already, so it is not the first build (whose import finds nothing)");
            return (texts, seen(false, what));
        }
    };
    let finding = match b2.cache_import() {
        CacheImport::Imported { from, .. } if !place.is_labs_cache(&from) => {
            seen(false, format!("{first}; build 2 imported {from}, {}", place.why_not(&from)))
        }
        CacheImport::Imported { from, .. } if !b1.import_refs().contains(&from) => seen(
            false,
            format!(
                "{first}; build 2 imported {from}, but build 1 used {}: both builds must name the same cache ref",
                b1.import_refs().join(", ")
            ),
        ),
        CacheImport::Imported { from, manifest_type } => {
            seen(true, format!("{first}; build 2: imported from {from} ({manifest_type})"))
        }
        CacheImport::NotAttempted => seen(false, format!("{first}; build 2 did not try to import")),
        CacheImport::NotFound { from, message } | CacheImport::Failed { from, message } => {
            let refs1 = b1.import_refs();
            let other = match refs1.contains(&from) {
                false if !refs1.is_empty() => {
                    format!(" (build 1 used {}: both builds must name the same cache ref)", refs1.join(", "))
                }
                _ => String::new(),
            };
            seen(false, format!("{first}; build 2: {message}{other}"))
        }
    };
    (texts, finding)
}

/// `registry7:5000/lab` and `registry7:5000/lab:cachetest` name one repository.
/// Where the lab's cache belongs: the rubric's repository (`cachedata1`), in registry7 — the
/// registry the image went to — and not in the image's own repository.
struct CachePlace<'a> {
    cache: &'a ImageRef,
    /// The image the build pushed, as its log names it, registry included.
    image: Option<ImageRef>,
    /// The tty form cuts long names at the terminal's width.
    names_cut: bool,
}

impl<'a> CachePlace<'a> {
    /// For one build's imports: the image it pushed (else the other build's).
    fn of(ev: &'a Evidence, build: &BuildLog, other: &BuildLog) -> CachePlace<'a> {
        let image = build.pushed_image().or_else(|| other.pushed_image()).and_then(|i| i.parse().ok());
        let names_cut = build.form == LogForm::Tty;
        CachePlace { cache: &ev.names.cache, image, names_cut }
    }

    fn is_labs_cache(&self, from: &str) -> bool {
        self.why_not(from).is_empty()
    }

    /// Why `from` is not the lab's cache, in words that name both; empty when it is.
    fn why_not(&self, from: &str) -> String {
        let Ok(r) = from.parse::<ImageRef>() else { return "which is not an image reference".into() };
        if let Some(image) = self.image.as_ref().filter(|i| i.registry == r.registry && i.repository == r.repository) {
            return match image.reference == r.reference {
                true => "which is the image itself, not a separate cache image".into(),
                false => format!(
                    "another tag of the image's own repository {} (beside {}), not a separate image: the lab's cache is {}",
                    r.repository, image.reference, self.cache.repository
                ),
            };
        }
        let wanted = &self.cache.repository;
        let cut = self.names_cut && r.repository.len() >= 4 && wanted.starts_with(&r.repository);
        // registry7 is where the image went; a ref naming another registry is elsewhere.
        let registry7 = self.image.as_ref().and_then(|i| i.registry.as_deref());
        let other = registry7.filter(|r7| r.registry.as_deref() != Some(*r7));
        let place = r.registry.as_deref().unwrap_or("Docker Hub");
        match (r.repository != *wanted && !cut, other) {
            (true, None) => format!("but the lab's cache is {wanted}, an image of its own (not {})", r.repository),
            (true, Some(r7)) => format!(
                "but the lab's cache is {wanted}, an image of its own in registry7 ({r7}, where the image went), not {} in {place}",
                r.repository
            ),
            (false, Some(r7)) => format!("which is in {place}, not in registry7 ({r7}, where the image went)"),
            (false, None) => String::new(),
        }
    }
}

/// A build that imports only from places that are not the lab's cache, or imports the image
/// itself (its layers are there, but it is no separate cache image), says which and why.
fn not_the_labs_cache(ev: &Evidence, b1: &BuildLog, b2: &BuildLog) -> Option<String> {
    for (n, log, other) in [(1, b1, b2), (2, b2, b1)] {
        let place = CachePlace::of(ev, log, other);
        let refs = log.import_refs();
        if let Some(itself) = refs.iter().find(|r| place.why_not(r).contains("the image itself")) {
            return Some(format!("build {n} imports {itself}, {}", place.why_not(itself)));
        }
        if let Some(first) = refs.first().filter(|_| !refs.iter().any(|r| place.is_labs_cache(r))) {
            let refs1 = b1.import_refs();
            let other = match n == 2 && !refs1.is_empty() && !refs1.contains(first) {
                true => format!(" (build 1 used {}: both builds must name the same cache ref)", refs1.join(", ")),
                false => String::new(),
            };
            return Some(format!("build {n} imports {first}, {}{other}", place.why_not(first)));
        }
    }
    None
}

/// Build 1 and build 2 are one build's output given twice: nothing compares two builds, so
/// the checks that compare them fail, saying so with the lines that show it.
fn one_build(b1: &BuildLog, b2: &BuildLog) -> Option<Option<Finding>> {
    let shown = b1.same_build_as(b2)?;
    Some(failed_because(
        format!("build 1 and build 2 are one build's output, given twice: {}", shown.join("; ")),
        "run the lab's build twice, with `docker buildx prune -a -f` in between, and save each build's own output"
            .into(),
    ))
}

fn cached_steps_both_platforms(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: "in build 2, CACHED for every RUN/COPY/ADD step build 1 ran, for linux/amd64 and linux/arm64 (steps BuildKit ran once for both count for both)".into(),
        fix: "build 2 must run with the same Dockerfile and context as build 1, importing the cache build 1 exported, with the builder's own cache pruned in between (docker buildx prune -a -f); change nothing else".into(),
    };
    let Some((b1, _)) = ev.build1 else { return (texts, None) };
    let Some((b2, _)) = ev.build2 else { return (texts, not_reached("there is no build 2")) };
    if let Some(one) = one_build(b1, b2) {
        return (texts, one);
    }
    if let Some(why) = builder_not_shown_pruned(b1, b2) {
        return (texts, seen(false, format!("not proven: {why}")));
    }
    let targets = Platform::lab_targets();
    let mut parts = Vec::new();
    let mut pass = true;
    for (platform, steps) in b1.layer_steps_by_target(&targets) {
        let missed: Vec<(&String, &str)> = steps
            .iter()
            .filter_map(|step| match b2.state_of(step) {
                Some(VertexState::Cached) => None,
                Some(VertexState::Done) => Some((&step.name, "ran again")),
                Some(_) => Some((&step.name, "did not finish")),
                None => Some((&step.name, "not in build 2")),
            })
            .collect();
        pass &= !steps.is_empty() && missed.is_empty();
        let mut part =
            format!("{platform}: {}/{} RUN/COPY/ADD steps of build 1 CACHED", steps.len() - missed.len(), steps.len());
        if let Some((name, why)) = missed.first() {
            part += &format!(", not cached: {name} ({why})");
        }
        parts.push(part);
    }
    // A layer step only build 2 ran means build 2 did not build what build 1 built.
    let built_before = |s: &crate::builds::Step| b1.steps().any(|(_, t)| t.label() == s.label());
    let new_steps: Vec<&str> = b2
        .steps()
        .filter(|(v, s)| s.makes_layer() && v.state != VertexState::Cached && !built_before(s))
        .map(|(v, _)| v.name.as_str())
        .collect();
    if let Some(first) = new_steps.first() {
        pass = false;
        parts.push(format!("build 2 ran {} step(s) build 1 did not, e.g. {first}", new_steps.len()));
    }
    (texts, seen(pass, parts.join("; ")))
}

/// Why build 2's CACHED lines may have come from the builder's own cache rather than from the
/// registry, if they may: a builder not pruned between the builds still holds build 1's context
/// and receives only what changed, where a pruned one receives the whole context again.
fn builder_not_shown_pruned(b1: &BuildLog, b2: &BuildLog) -> Option<String> {
    match (b1.context_transferred(), b2.context_transferred()) {
        (Some(t1), Some(t2)) if t2 < t1 => Some(format!(
            "build 2 received {t2:.0} bytes of build context where build 1 received {t1:.0}: the builder still held build 1's files (it was not pruned between the builds), so its CACHED lines may come from its own cache, not from the registry"
        )),
        (Some(_), Some(_)) => None,
        _ => Some("the logs do not show both builds' context transfer (`transferring context: …` under `[internal] load build context`), so nothing shows that the builder was pruned between them".into()),
    }
}

fn cache_exported(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: "`exporting cache to registry` and `writing cache … manifest` in both builds".into(),
        fix: format!("pass --cache-to type=registry,ref=<registry7>/{},mode=max", ev.names.cache.repository),
    };
    let Some((b1, _)) = ev.build1 else { return (texts, None) };
    let logs: Vec<(u8, &BuildLog)> = std::iter::once((1, b1)).chain(ev.build2.map(|(b, _)| (2, b))).collect();
    let mut parts = Vec::new();
    let mut pass = logs.len() == 2;
    for (n, log) in logs {
        match log.cache_export() {
            Some(e) if e.manifest_written => {
                parts.push(format!("build {n}: {} layers written, cache manifest written", e.layers_written))
            }
            Some(e) => {
                pass = false;
                parts.push(format!(
                    "build {n}: export started ({} layers) but no cache manifest written",
                    e.layers_written
                ));
            }
            None => {
                pass = false;
                parts.push(format!("build {n}: no cache export"));
            }
        }
    }
    if parts.len() == 1 {
        parts.push("not reached: there is no build 2".into());
    }
    (texts, seen(pass, parts.join("; ")))
}

fn cache_separate_image_mode_max(ev: &Evidence) -> (Texts, Option<Finding>) {
    let (image, cache) = (&ev.names.image, &ev.names.cache);
    let texts = Texts {
        expected: format!("{cache} is its own repository holding a BuildKit cache with layers {image} does not have (intermediate stages: mode=max)"),
        fix: format!("use --cache-to type=registry,ref=<registry7>/{},mode=max (mode=min keeps only the final image's layers) with a multi-stage Dockerfile", cache.repository),
    };
    let finding = match ev.cache {
        Observed::NotGraded => None,
        Observed::Missing => not_reached(format!("{cache} is not in registry7")),
        // After the bonus deletion only the empty repository is left: what it held can no
        // longer be read, and deleting it is what the lab asks, so it is credited.
        Observed::Deleted => seen(
            true,
            format!("{cache} was deleted (its repository is in registry7 with no tag, as after the bonus deletion): its mode can no longer be read from the registry, credited"),
        ),
        Observed::Seen(c) => match &c.manifest {
            None => seen(false, format!("{} holds {}, not a BuildKit cache", c.repository, c.media_type)),
            Some(m) => {
                let what = format!(
                    "{} ({} shape): {} layers ({} bytes), {} of them ({} bytes) not in {image}",
                    c.repository,
                    m.shape,
                    m.layers.len(),
                    m.layer_bytes(),
                    c.layers_not_in_image,
                    c.bytes_not_in_image
                );
                match ev.build1.map(|(b1, _)| stages_with_layers(b1)) {
                    _ if c.layers_not_in_image > 0 => seen(true, what),
                    // Only the final stage makes layers: mode=max has nothing more to keep.
                    Some(1) => failed_because(
                        format!("{what}: every layer this Dockerfile makes is in its final stage, so mode=max and mode=min export the same layers"),
                        "build in a stage of its own (FROM … AS build) and COPY --from=build only the result into the final stage: mode=max then also keeps that stage's layers".into(),
                    ),
                    _ => seen(false, what),
                }
            }
        },
    };
    (texts, finding)
}

/// How many stages of the Dockerfile made layers (RUN/COPY/ADD) in this build.
fn stages_with_layers(log: &BuildLog) -> usize {
    let stages: std::collections::BTreeSet<&str> =
        log.steps().filter(|(_, s)| s.makes_layer()).map(|(_, s)| s.stage.as_str()).collect();
    stages.len()
}

/// The deletion's evidence, or why there is none.
fn deletion<'a>(ev: &Evidence<'a>) -> Result<&'a DeletionEvidence, Option<Finding>> {
    match ev.deletion {
        Observed::NotGraded => Err(None),
        Observed::Missing | Observed::Deleted => Err(not_reached("no deletion ran")),
        Observed::Seen(d) => Ok(d),
    }
}

fn cache_deleted(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: "DELETE of every cache manifest by digest answers 202, the tag then 404, and after garbage-collect and a restart every cache-only blob 404".into(),
        fix: format!("run registry7 with REGISTRY_STORAGE_DELETE_ENABLED=true; DELETE /v2/{}/manifests/<digest> for the tag's digest and for each earlier cache manifest (each build writes one); registry garbage-collect (without --delete-untagged); restart", ev.names.cache.repository),
    };
    let d = match deletion(ev) {
        Ok(d) => d,
        Err(finding) => return (texts, finding),
    };
    let gone = d.cache_only_blobs.iter().filter(|b| b.status == 404).count();
    let statuses: Vec<String> = d.deleted_manifests.iter().map(|m| m.status.to_string()).collect();
    let what = format!(
        "DELETE of each cache manifest (the tag's, then untagged ones of earlier builds) → {}, tag → {}, {gone}/{} cache-only blobs gone after GC and restart",
        statuses.join(", "),
        d.tag_status_after,
        d.cache_only_blobs.len()
    );
    (texts, seen(d.cache_gone(), what))
}

fn space_reclaimed(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: "registry storage shrinks after garbage-collect".into(),
        fix: "deleting the manifest alone frees nothing: run `registry garbage-collect <config>` in the registry container (/etc/docker/registry/config.yml on registry 2.x, /etc/distribution/config.yml on 3.x)".into(),
    };
    let d = match deletion(ev) {
        Ok(d) => d,
        Err(finding) => return (texts, finding),
    };
    let what = format!(
        "{} → {} bytes ({} reclaimed; the cache-only blobs held {} bytes)",
        d.storage_before,
        d.storage_after,
        d.reclaimed(),
        d.cache_only_bytes
    );
    (texts, seen(d.reclaimed() > 0, what))
}

fn image_intact(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: format!("after the deletion, {}'s index, both platform manifests, configs and layers all answer 200", ev.names.image),
        fix: "never run garbage-collect --delete-untagged on registry 2.8: it deletes the platform manifests of multi-arch images".into(),
    };
    let d = match deletion(ev) {
        Ok(d) => d,
        Err(finding) => return (texts, finding),
    };
    let ok = d.image_after.iter().filter(|p| p.status == 200).count();
    let mut what = format!("{ok}/{} parts answer 200 ({})", d.image_parts_before, d.registry);
    if let Some(lost) = d.image_after.iter().find(|p| p.status != 200) {
        what += &format!("; lost: {} {} ({})", lost.what, lost.digest, lost.status);
    }
    (texts, seen(d.image_whole(), what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rubric_is_100_compulsory_and_50_bonus() {
        let r = Rubric::default_rubric();
        let sum = |bonus: bool| r.checks.iter().filter(|c| c.bonus == bonus).map(|c| c.points).sum::<f64>();
        assert_eq!((sum(false), sum(true)), (100.0, 50.0));
        let ids: Vec<CheckId> = r.checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, CheckId::ALL);
    }

    #[test]
    fn a_rubric_with_an_unknown_check_names_it_and_the_known_ones() {
        let text = "[[check]]\nid = \"cache_is_small\"\ntitle = \"t\"\npoints = 5\ndocs = \"d\"\n";
        let e = Rubric::parse(text, "mine.toml").unwrap_err().to_string();
        assert!(e.contains("mine.toml") && e.contains("cache_is_small") && e.contains("builds_succeed"), "{e}");
    }

    #[test]
    fn a_rubric_whose_points_do_not_add_up_is_refused() {
        let entry = |id: &str, points: &str| {
            format!("[[check]]\nid = \"{id}\"\ntitle = \"t\"\npoints = {points}\ndocs = \"d\"\n")
        };
        let e = Rubric::parse(&entry("builds_succeed", "90"), "mine.toml").unwrap_err().to_string();
        assert!(e.contains("sum to 90") && e.contains("mine.toml"), "{e}");
        let e = Rubric::parse(&(entry("builds_succeed", "100") + &entry("image_intact", "nan")), "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("image_intact") && e.contains("NaN"), "{e}");
        let e = Rubric::parse(&(entry("builds_succeed", "110") + &entry("cache_exported", "-10")), "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cache_exported"), "{e}");
        assert!(Rubric::parse(&entry("builds_succeed", "100"), "m.toml").is_ok());
    }

    #[test]
    fn a_malformed_rubric_says_where() {
        let e = Rubric::parse("[[check]]\nid = 3\n", "mine.toml").unwrap_err().to_string();
        assert!(e.contains("mine.toml"), "{e}");
    }

    #[test]
    fn the_texts_name_the_image_and_cache_graded() {
        let names = Names { image: "app:v1".parse().unwrap(), cache: "buildcache".parse().unwrap() };
        let ev = Evidence { image: Observed::Missing, cache: Observed::Missing, names, ..Evidence::default() };
        let out = evaluate(&Rubric::default_rubric(), &ev);
        let of = |id| out.iter().find(|c| c.id == id).unwrap();
        assert_eq!(of(CheckId::ManifestListsBothArchitectures).seen, "not reached: app:v1 is not in registry7");
        let cache = of(CheckId::CacheSeparateImageModeMax);
        assert!(cache.seen.contains("buildcache:latest") && cache.expected.contains("app:v1"), "{cache:?}");
        assert!(cache.fix.as_deref().unwrap().contains("ref=<registry7>/buildcache,"), "{cache:?}");
        assert!(out.iter().all(|c| !format!("{c:?}").contains("cachedata1")), "{out:?}");
    }

    #[test]
    fn with_no_evidence_every_check_is_skipped() {
        let out = evaluate(&Rubric::default_rubric(), &Evidence::default());
        assert!(out.iter().all(|c| c.status == Status::Skipped && c.points == 0.0));
    }
}
