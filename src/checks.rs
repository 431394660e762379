//! Each lab requirement as a check: what was expected, what was seen, how to fix it.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::builds::dockerfile::DockerfileSummary;
use crate::builds::{BuildLog, BuildOutcome, CacheImport};
use crate::lab::{CacheEvidence, LabRun};
use crate::platform::Platform;
use crate::registry::deletion::DeletionEvidence;
use crate::registry::ImageSummary;
use crate::Error;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pass,
    Fail,
    /// lab7 could not tell (the environment failed, not the student).
    Error,
    /// Not part of this kind of grading (e.g. registry checks when grading pasted logs).
    Skipped,
}

/// One rubric entry, as the instructor wrote it in the rubric file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RubricEntry {
    pub id: String,
    pub title: String,
    pub points: f64,
    #[serde(default)]
    pub bonus: bool,
    pub docs: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rubric {
    #[serde(rename = "check")]
    pub checks: Vec<RubricEntry>,
}

pub const DEFAULT_RUBRIC: &str = include_str!("../rubric.toml");

impl Rubric {
    pub fn default_rubric() -> Rubric {
        Rubric::parse(DEFAULT_RUBRIC, "built-in rubric.toml").expect("the built-in rubric parses")
    }

    pub fn load(path: &Path) -> Result<Rubric, Error> {
        let text = crate::lab::read_small(path, 1 << 20)
            .map_err(|e| Error::Input(format!("{}: {e}\n  fix: give --rubric a readable TOML file", path.display())))?;
        Rubric::parse(&text, &path.display().to_string())
    }

    pub fn parse(text: &str, origin: &str) -> Result<Rubric, Error> {
        let rubric: Rubric = toml::from_str(text).map_err(|e| Error::Input(format!("{origin}: {e}")))?;
        if let Some(bad) = rubric.checks.iter().find(|c| !CHECK_IDS.contains(&c.id.as_str())) {
            return Err(Error::Input(format!(
                "{origin}: unknown check id `{}`\n  fix: use one of {}",
                bad.id,
                CHECK_IDS.join(", ")
            )));
        }
        rubric.validate_points().map_err(|why| Error::Input(format!("{origin}: {why}")))?;
        Ok(rubric)
    }

    /// Points are finite and not negative; the compulsory ones sum to 100 (the lab's 100 %).
    fn validate_points(&self) -> Result<(), String> {
        if let Some(bad) = self.checks.iter().find(|c| !c.points.is_finite() || c.points < 0.0) {
            return Err(format!(
                "check `{}` has points = {}\n  fix: give every check a number of points, 0 or more",
                bad.id, bad.points
            ));
        }
        let compulsory: f64 = self.checks.iter().filter(|c| !c.bonus).map(|c| c.points).sum();
        if (compulsory - 100.0).abs() > 1e-9 {
            return Err(format!(
                "the compulsory checks sum to {compulsory} points, not 100\n  fix: change their points so that they sum to 100 (bonus checks count on top)"
            ));
        }
        Ok(())
    }
}

/// The checks lab7 knows how to evaluate, in the lab's order.
pub const CHECK_IDS: [&str; 9] = [
    "builds_succeed",
    "manifest_lists_both_architectures",
    "cache_imported_from_registry",
    "cached_steps_both_platforms",
    "cache_exported",
    "cache_separate_image_mode_max",
    "cache_deleted",
    "space_reclaimed",
    "image_intact",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckOutcome {
    pub id: String,
    pub title: String,
    pub status: Status,
    pub points: f64,
    pub max_points: f64,
    pub bonus: bool,
    pub expected: String,
    pub seen: String,
    pub fix: Option<String>,
    pub docs: String,
}

/// What a check looks at; any part may be absent (pasted logs have no registry).
#[derive(Debug, Clone, Copy, Default)]
pub struct Evidence<'a> {
    /// A build's log, and how it ended when lab7 ran it (`None` for a pasted log).
    pub build1: Option<(&'a BuildLog, Option<&'a BuildOutcome>)>,
    pub build2: Option<(&'a BuildLog, Option<&'a BuildOutcome>)>,
    pub dockerfile: Option<&'a DockerfileSummary>,
    pub image: Option<Option<&'a ImageSummary>>,
    pub cache: Option<Option<&'a CacheEvidence>>,
    pub deletion: Option<Option<&'a DeletionEvidence>>,
    /// Why the run stopped early, for checks whose stage was not reached.
    pub stopped: Option<&'a str>,
}

impl<'a> Evidence<'a> {
    pub fn of_run(run: &'a LabRun) -> Evidence<'a> {
        Evidence {
            build1: Some((&run.build1.log, Some(&run.build1))),
            build2: run.build2.as_ref().map(|b| (&b.log, Some(b))),
            dockerfile: Some(&run.dockerfile_summary),
            image: Some(run.image.as_ref()),
            cache: Some(run.cache.as_ref()),
            // Without the bonus asked for (`--keep-cache`), its checks are skipped, not failed.
            deletion: run.deletion_asked.then_some(run.deletion.as_ref()),
            stopped: run.stopped.as_deref(),
        }
    }
}

struct Verdict {
    pass: bool,
    expected: &'static str,
    seen: String,
    fix: &'static str,
}

impl Verdict {
    fn new(pass: bool, expected: &'static str, seen: String, fix: &'static str) -> Option<Verdict> {
        Some(Verdict { pass, expected, seen, fix })
    }
}

/// Evaluates every rubric entry against the evidence.
pub fn evaluate(rubric: &Rubric, ev: &Evidence) -> Vec<CheckOutcome> {
    rubric
        .checks
        .iter()
        .map(|entry| {
            let verdict = match entry.id.as_str() {
                "builds_succeed" => builds_succeed(ev),
                "manifest_lists_both_architectures" => manifest_lists_both_architectures(ev),
                "cache_imported_from_registry" => cache_imported_from_registry(ev),
                "cached_steps_both_platforms" => cached_steps_both_platforms(ev),
                "cache_exported" => cache_exported(ev),
                "cache_separate_image_mode_max" => cache_separate_image_mode_max(ev),
                "cache_deleted" => cache_deleted(ev),
                "space_reclaimed" => space_reclaimed(ev),
                "image_intact" => image_intact(ev),
                _ => None,
            };
            outcome(entry, verdict, ev)
        })
        .collect()
}

fn outcome(entry: &RubricEntry, verdict: Option<Verdict>, ev: &Evidence) -> CheckOutcome {
    let (status, expected, seen, fix) = match verdict {
        Some(v) if v.pass => (Status::Pass, v.expected.to_string(), v.seen, None),
        Some(v) => (Status::Fail, v.expected.to_string(), v.seen, Some(v.fix.to_string())),
        None => (Status::Skipped, String::new(), "not part of this grading".to_string(), None),
    };
    // A stage that never ran says why the run stopped before it.
    let seen = match ev.stopped {
        Some(why) if seen.starts_with(NOT_REACHED) => format!("{NOT_REACHED}: {why}"),
        _ => seen,
    };
    CheckOutcome {
        id: entry.id.clone(),
        title: entry.title.clone(),
        points: if status == Status::Pass { entry.points } else { 0.0 },
        max_points: entry.points,
        bonus: entry.bonus,
        status,
        expected,
        seen,
        fix,
        docs: entry.docs.clone(),
    }
}

const NOT_REACHED: &str = "not reached";

/// What is wrong with one build, if anything. A pasted log has no exit code: its errors tell.
fn build_problem(n: u8, log: &BuildLog, outcome: Option<&BuildOutcome>) -> Option<String> {
    match outcome {
        Some(o) => {
            if let Some(p) = o.problem() {
                return Some(format!("build {n} {p}"));
            }
        }
        None => {
            if let Some(f) = log.first_failure() {
                return Some(format!("build {n} failed: {f}"));
            }
        }
    }
    let seen: Vec<Platform> = log.per_platform().into_keys().flatten().collect();
    let missing: Vec<String> = Platform::lab_targets()
        .into_iter()
        .filter(|p| !seen.iter().any(|q| q.matches(p)))
        .map(|p| p.to_string())
        .collect();
    (!missing.is_empty()).then(|| format!("build {n} has no steps for {}", missing.join(", ")))
}

fn builds_succeed(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str = "build 1 and build 2 exit 0, each with steps for linux/amd64 and linux/arm64";
    const FIX: &str = "read the first error above; a step that fails only on arm64 runs under QEMU emulation — avoid architecture-specific binaries or use TARGETARCH";
    let (b1, code1) = ev.build1?;
    let problem = build_problem(1, b1, code1).or_else(|| match ev.build2 {
        None => Some(format!("{NOT_REACHED}: there is no build 2")),
        Some((b2, code2)) => build_problem(2, b2, code2),
    });
    match problem {
        None => Verdict::new(true, EXPECTED, "both builds succeeded for linux/amd64 and linux/arm64".into(), FIX),
        Some(p) => Verdict::new(false, EXPECTED, p, FIX),
    }
}

fn manifest_lists_both_architectures(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str = "an image index with a manifest for linux/amd64 and one for linux/arm64";
    const FIX: &str = "build with --platform linux/amd64,linux/arm64 and --push (one build, not one per platform)";
    let image = ev.image?;
    let Some(image) = image else {
        return Verdict::new(false, EXPECTED, format!("{NOT_REACHED}: lab:cachetest is not in registry7"), FIX);
    };
    let platforms = image.platforms();
    let listed: Vec<String> = platforms.iter().map(|p| p.to_string()).collect();
    let attest = match image.attestations() {
        0 => String::new(),
        n => format!(" (+{n} attestation manifests, not platforms)"),
    };
    let pass = Platform::lab_targets().iter().all(|p| image.has_platform(p));
    let seen = if listed.is_empty() {
        format!("a single-platform manifest ({})", image.media_type)
    } else {
        format!("{} lists {}{attest}", image.media_type, listed.join(", "))
    };
    Verdict::new(pass, EXPECTED, seen, FIX)
}

fn cache_imported_from_registry(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str = "build 1 tries to import cachedata1 (not found yet is fine); build 2 imports it (`inferred cache manifest type`)";
    const FIX: &str =
        "pass --cache-from type=registry,ref=<registry7>/cachedata1 to both builds, with the same ref as --cache-to";
    let (b1, _) = ev.build1?;
    let Some((b2, _)) = ev.build2 else {
        return Verdict::new(false, EXPECTED, format!("{NOT_REACHED}: there is no build 2"), FIX);
    };
    let first = match b1.cache_import() {
        CacheImport::NotAttempted => {
            return Verdict::new(false, EXPECTED, "build 1 did not try to import a cache".into(), FIX)
        }
        CacheImport::NotFound { .. } => "build 1: not found (expected)".to_string(),
        CacheImport::Failed { message, .. } => format!("build 1: {message}"),
        CacheImport::Imported { .. } => "build 1: imported (a cache existed already)".to_string(),
    };
    match b2.cache_import() {
        CacheImport::Imported { from, manifest_type } => {
            Verdict::new(true, EXPECTED, format!("{first}; build 2: imported from {from} ({manifest_type})"), FIX)
        }
        CacheImport::NotAttempted => {
            Verdict::new(false, EXPECTED, format!("{first}; build 2 did not try to import"), FIX)
        }
        CacheImport::NotFound { message, .. } | CacheImport::Failed { message, .. } => {
            Verdict::new(false, EXPECTED, format!("{first}; build 2: {message}"), FIX)
        }
    }
}

fn cached_steps_both_platforms(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str =
        "in build 2, a CACHED line for every RUN/COPY/ADD step of the Dockerfile, for linux/amd64 and linux/arm64";
    const FIX: &str = "build 2 must run with the same Dockerfile and context as build 1, importing the cache build 1 exported; change nothing in between";
    let Some((b2, _)) = ev.build2 else {
        ev.build1?;
        return Verdict::new(false, EXPECTED, format!("{NOT_REACHED}: there is no build 2"), FIX);
    };
    let per = b2.per_platform();
    let mut parts = Vec::new();
    let mut pass = true;
    for p in Platform::lab_targets() {
        let steps = per.iter().find(|(k, _)| k.as_ref().is_some_and(|k| k.matches(&p))).map(|(_, v)| v);
        let Some(s) = steps else {
            pass = false;
            parts.push(format!("{p}: no steps"));
            continue;
        };
        let want = ev.dockerfile.map_or(s.layer_steps, |d| d.layer_steps);
        let ok = s.layer_steps > 0 && s.cached_layer_steps == s.layer_steps && s.layer_steps >= want;
        pass &= ok;
        let mut part =
            format!("{p}: {}/{} RUN/COPY/ADD cached ({} CACHED lines)", s.cached_layer_steps, want, s.cached_steps);
        if let Some(u) = s.uncached.first() {
            part += &format!(", not cached: {u}");
        }
        parts.push(part);
    }
    Verdict::new(pass, EXPECTED, parts.join("; "), FIX)
}

fn cache_exported(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str = "`exporting cache to registry` and `writing cache … manifest` in both builds";
    const FIX: &str = "pass --cache-to type=registry,ref=<registry7>/cachedata1,mode=max";
    let (b1, _) = ev.build1?;
    let logs: Vec<(u8, &BuildLog)> = std::iter::once((1, b1)).chain(ev.build2.map(|(b, _)| (2, b))).collect();
    let mut parts = Vec::new();
    let mut pass = logs.len() == 2;
    for (n, log) in logs {
        match log.cache_export() {
            Some(e) if e.manifest.is_some() => {
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
        parts.push(format!("{NOT_REACHED}: there is no build 2"));
    }
    Verdict::new(pass, EXPECTED, parts.join("; "), FIX)
}

fn cache_separate_image_mode_max(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str = "cachedata1:latest is its own repository holding a BuildKit cache with layers lab:cachetest does not have (intermediate stages: mode=max)";
    const FIX: &str = "use --cache-to type=registry,ref=<registry7>/cachedata1,mode=max (mode=min keeps only the final image's layers) with a multi-stage Dockerfile";
    let cache = ev.cache?;
    let Some(cache) = cache else {
        return Verdict::new(false, EXPECTED, format!("{NOT_REACHED}: cachedata1:latest is not in registry7"), FIX);
    };
    let Some(m) = &cache.manifest else {
        return Verdict::new(
            false,
            EXPECTED,
            format!("cachedata1 holds {}, not a BuildKit cache", cache.media_type),
            FIX,
        );
    };
    let seen = format!(
        "{} ({:?} shape): {} layers ({} bytes), {} of them ({} bytes) not in lab:cachetest",
        cache.repository,
        m.shape,
        m.layers.len(),
        m.layer_bytes(),
        cache.layers_not_in_image,
        cache.bytes_not_in_image
    );
    Verdict::new(cache.layers_not_in_image > 0, EXPECTED, seen, FIX)
}

fn cache_deleted(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str = "DELETE of every cache manifest by digest answers 202, the tag then 404, and after garbage-collect and a restart every cache-only blob 404";
    const FIX: &str = "run registry7 with REGISTRY_STORAGE_DELETE_ENABLED=true; DELETE /v2/cachedata1/manifests/<digest> for the tag's digest and for each earlier cache manifest (each build writes one); registry garbage-collect (without --delete-untagged); restart";
    let d = ev.deletion?;
    let Some(d) = d else {
        return Verdict::new(false, EXPECTED, format!("{NOT_REACHED}: no deletion ran"), FIX);
    };
    let gone = d.cache_only_blobs.iter().filter(|b| b.status == 404).count();
    let statuses: Vec<String> = d.deleted_manifests.iter().map(|m| m.status.to_string()).collect();
    let seen = format!(
        "DELETE of each cache manifest (the tag's, then untagged ones of earlier builds) → {}, tag → {}, {gone}/{} cache-only blobs gone after GC and restart",
        statuses.join(", "),
        d.tag_status_after,
        d.cache_only_blobs.len()
    );
    Verdict::new(d.cache_gone(), EXPECTED, seen, FIX)
}

fn space_reclaimed(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str = "registry storage shrinks after garbage-collect";
    const FIX: &str = "deleting the manifest alone frees nothing: run `registry garbage-collect /etc/docker/registry/config.yml` in the registry container";
    let Some(d) = ev.deletion? else {
        return Verdict::new(false, EXPECTED, format!("{NOT_REACHED}: no deletion ran"), FIX);
    };
    let seen = format!(
        "{} → {} bytes ({} reclaimed; the cache-only blobs held {} bytes)",
        d.storage_before,
        d.storage_after,
        d.reclaimed(),
        d.cache_only_bytes
    );
    Verdict::new(d.reclaimed() > 0, EXPECTED, seen, FIX)
}

fn image_intact(ev: &Evidence) -> Option<Verdict> {
    const EXPECTED: &str =
        "after the deletion, lab:cachetest's index, both platform manifests, configs and layers all answer 200";
    const FIX: &str = "never run garbage-collect --delete-untagged on registry 2.8: it deletes the platform manifests of multi-arch images";
    let Some(d) = ev.deletion? else {
        return Verdict::new(false, EXPECTED, format!("{NOT_REACHED}: no deletion ran"), FIX);
    };
    let ok = d.image_after.iter().filter(|p| p.status == 200).count();
    let mut seen = format!("{ok}/{} parts answer 200", d.image_parts_before);
    if let Some(lost) = d.image_after.iter().find(|p| p.status != 200) {
        seen += &format!("; lost: {} {} ({})", lost.what, lost.digest, lost.status);
    }
    Verdict::new(d.image_whole(), EXPECTED, seen, FIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rubric_is_100_compulsory_and_50_bonus() {
        let r = Rubric::default_rubric();
        let sum = |bonus: bool| r.checks.iter().filter(|c| c.bonus == bonus).map(|c| c.points).sum::<f64>();
        assert_eq!((sum(false), sum(true)), (100.0, 50.0));
        let ids: Vec<&str> = r.checks.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(ids, CHECK_IDS);
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
    fn with_no_evidence_every_check_is_skipped() {
        let out = evaluate(&Rubric::default_rubric(), &Evidence::default());
        assert!(out.iter().all(|c| c.status == Status::Skipped && c.points == 0.0));
    }
}
