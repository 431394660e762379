//! Each lab requirement as a check: what was expected, what was seen, how to fix it.
//!
//! A check looks at its part of the [`Evidence`] and gives a [`Finding`]: what it saw and
//! whether that passes, or that its stage was not reached; a check whose evidence is not part
//! of this kind of grading (the registry, for pasted logs) is skipped. The rubric is in
//! `rubric`, the cache requirements (import, CACHED steps, export, mode=max) in `cache`.

mod cache;
mod rubric;

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::builds::{BuildLog, BuildOutcome};
use crate::lab::LabRun;
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::registry::deletion::DeletionEvidence;
use crate::registry::{CacheEvidence, ImageSummary};
use cache::{cache_exported, cache_imported_from_registry, cache_separate_image_mode_max, cached_steps_both_platforms};
pub use rubric::{
    parse_deadline, LateSettings, Rubric, RubricEntry, RubricKind, DEFAULT_REPORT_RUBRIC, DEFAULT_RUBRIC,
};

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

/// The ids of the checks that failed, as the rubric names them.
pub fn failed_names(checks: &[CheckOutcome]) -> Vec<String> {
    checks.iter().filter(|c| c.status == Status::Fail).map(|c| c.id.to_string()).collect()
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
