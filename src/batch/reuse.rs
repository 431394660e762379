//! A regrade builds only what changed. Each graded submission's inputs — its files, its
//! Dockerfile's name, this lab7 (its version and its executable as built), the images, the
//! node's limits and network, the client, the timeouts and the rubric — are summed up in one
//! digest, kept beside its report as `<name>.inputs`. The next batch into the same reports
//! folder takes the report of a submission whose digest is unchanged instead of building it
//! again (`--rebuild` builds every one): an instructor's regrade with overrides, or after one
//! student's late fix, costs that student's builds, not the class's.
//!
//! Only a complete grading is reused: a submission lab7 could not grade, or whose grading was
//! interrupted, has no `.inputs` and is built again. Its earlier pages stay as they were
//! written (the report's JSON does not hold everything the HTML page draws).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::{BatchOptions, Submission, SubmissionResult};
use crate::checks::Rubric;
use crate::environment::remote::RemoteNode;
use crate::environment::{EnvOptions, Images};
use crate::reference::Digest;
use crate::report::Report;

/// Everything besides the submission's files that its grade depends on.
#[derive(Serialize)]
struct Settings<'a> {
    lab7: &'a str,
    images: &'a Images,
    dockerfile: &'a str,
    client: crate::builds::buildx::Client,
    build_timeout_s: u64,
    timeout_s: u64,
    env: &'a EnvOptions,
    nodes: &'a [RemoteNode],
    rubric: &'a Rubric,
}

/// The digest of one submission's inputs; `None` when they cannot all be read (it is then
/// built, and not remembered).
pub fn inputs_of(sub: &Submission, opts: &BatchOptions, images: &Images, rubric: &Rubric) -> Option<Digest> {
    let settings = Settings {
        lab7: lab7_identity()?,
        images,
        dockerfile: sub.dockerfile.as_deref().unwrap_or(&opts.file),
        client: opts.client,
        build_timeout_s: opts.build_timeout.as_secs(),
        timeout_s: opts.timeout.as_secs(),
        env: &opts.env,
        nodes: &opts.nodes,
        rubric,
    };
    let mut hasher = Sha256::new();
    hasher.update(serde_json::to_vec(&settings).ok()?);
    hash_tree(&sub.dir, Path::new(""), &mut hasher).ok()?;
    format!("sha256:{:x}", hasher.finalize()).parse().ok()
}

/// This lab7: its version, and its executable's size and time of writing, so that a rebuilt lab7
/// of the same version (a fix in a check) grades again. (Hashing the executable would cost a
/// second of CPU per batch for a debug build's 270 MB; a rebuild always writes it anew.)
fn lab7_identity() -> Option<&'static str> {
    static IDENTITY: OnceLock<Option<String>> = OnceLock::new();
    IDENTITY
        .get_or_init(|| {
            let meta = std::fs::metadata(std::env::current_exe().ok()?).ok()?;
            let written = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some(format!("{} {} bytes written {}", env!("CARGO_PKG_VERSION"), meta.len(), written.as_nanos()))
        })
        .as_deref()
}

/// Each entry under `dir` in name order: its path relative to the submission, its kind, and
/// its content (a file's bytes and executable bit, a link's target, never followed).
fn hash_tree(dir: &Path, rel: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = rel.join(entry.file_name());
        let kind = entry.file_type()?;
        hasher.update(path.to_string_lossy().as_bytes());
        hasher.update([0]);
        if kind.is_symlink() {
            hasher.update(b"link\0");
            hasher.update(std::fs::read_link(entry.path())?.to_string_lossy().as_bytes());
        } else if kind.is_dir() {
            hasher.update(b"dir\0");
            hash_tree(&entry.path(), &path, hasher)?;
        } else if kind.is_file() {
            hash_file(&entry.path(), hasher)?;
        } else {
            hasher.update(b"other");
        }
        hasher.update([0]);
    }
    Ok(())
}

fn hash_file(path: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    #[cfg(unix)]
    let executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
    #[cfg(not(unix))]
    let executable = false;
    hasher.update(if executable { b"exec\0" } else { b"file\0" });
    hasher.update(meta.len().to_le_bytes());
    std::io::copy(&mut file.take(meta.len()), hasher)?;
    Ok(())
}

/// A submission the last run graded from the same inputs: its result, and the report kept.
pub type Kept = (SubmissionResult, Report);
/// A submission to grade, with its inputs (remembered once it is graded whole).
pub type Pending = (Submission, Option<Digest>);

/// The submissions the last run in `opts.reuse_from` graded from the same inputs, and the
/// others, to grade.
pub fn split(
    subs: Vec<Submission>,
    opts: &BatchOptions,
    images: &Images,
    rubric: &Rubric,
) -> (Vec<Kept>, Vec<Pending>) {
    let mut kept = Vec::new();
    let mut to_grade = Vec::new();
    for sub in subs {
        let inputs = inputs_of(&sub, opts, images, rubric);
        let found = opts.reuse_from.as_deref().zip(inputs.as_ref()).and_then(|(dir, i)| earlier(dir, &sub.name, i));
        match found {
            Some(report) => {
                let mut result = SubmissionResult::named(sub.name.clone());
                result.score_from(&report);
                // The time its grading took then, for the class page's time per submission.
                result.seconds = report.run.as_ref().map_or(0.0, |run| run.timings.iter().map(|t| t.seconds).sum());
                result.inputs = inputs;
                result.reused = true;
                kept.push((result, report));
            }
            None => to_grade.push((sub, inputs)),
        }
    }
    (kept, to_grade)
}

/// Each kept report handed to `done` as a graded one, the kept ones named on stderr.
pub fn hand_over(kept: Vec<Kept>, done: &mut super::OnGraded<'_>) -> Result<Vec<SubmissionResult>, crate::Error> {
    let mut reused = Vec::new();
    for (result, report) in kept {
        done(&result, Some(&report))?;
        reused.push(result);
    }
    if !reused.is_empty() {
        let mut names: Vec<&str> = reused.iter().map(|r| r.submission.as_str()).collect();
        names.sort_unstable();
        eprintln!(
            "[lab7] {} unchanged since the last run (files, lab7 and settings): their reports are kept, not built again (--rebuild builds them): {}",
            names.len(),
            names.join(", ")
        );
    }
    Ok(reused)
}

fn inputs_file(reports: &Path, name: &str) -> PathBuf {
    reports.join(format!("{name}.inputs"))
}

/// The last run's report of `name`, when it was graded from exactly these inputs.
pub fn earlier(reports: &Path, name: &str, inputs: &Digest) -> Option<Report> {
    let kept = std::fs::read_to_string(inputs_file(reports, name)).ok()?;
    if kept.trim() != inputs.as_str() {
        return None;
    }
    serde_json::from_str(&std::fs::read_to_string(reports.join(format!("{name}.json"))).ok()?).ok()
}

/// Whether a result may stand in for its submission next time: graded whole.
pub fn reusable(r: &SubmissionResult) -> bool {
    r.verdict.is_some() && r.error.is_none() && !r.interrupted
}

/// Forgets `name`'s inputs: called before its new report is written, so that a report written
/// only in part is never taken for a finished one.
pub fn forget(reports: &Path, name: &str) -> std::io::Result<()> {
    match std::fs::remove_file(inputs_file(reports, name)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remembers the inputs `r` was graded from, once its report is written and when it is reusable.
pub fn remember(reports: &Path, r: &SubmissionResult) -> std::io::Result<()> {
    match &r.inputs {
        Some(inputs) if reusable(r) => std::fs::write(inputs_file(reports, &r.submission), format!("{inputs}\n")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> BatchOptions {
        BatchOptions {
            file: "Dockerfile_multi".into(),
            timeout: std::time::Duration::from_secs(900),
            strategy: super::super::Strategy::SharedNode,
            env: EnvOptions::new(),
            build_timeout: std::time::Duration::from_secs(600),
            client: Default::default(),
            jobs: 1,
            nodes: Vec::new(),
            cancel: Default::default(),
            own_outputs: Vec::new(),
            reuse_from: None,
        }
    }

    fn images() -> Images {
        Images {
            registry: "registry:2.8.3".into(),
            buildkit: "moby/buildkit:v0.26.0".into(),
            mirror: None,
            standins: false,
        }
    }

    fn app() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("Dockerfile_multi"), "FROM busybox:1.36\nCOPY src/ /src/\n").unwrap();
        std::fs::write(dir.path().join("src/build.sh"), "echo built\n").unwrap();
        dir
    }

    fn digest(dir: &Path, opts: &BatchOptions) -> Digest {
        let sub = Submission { name: "p101".into(), dir: dir.to_path_buf(), dockerfile: None };
        inputs_of(&sub, opts, &images(), &Rubric::default_rubric()).expect("readable")
    }

    #[test]
    fn the_same_files_elsewhere_have_the_same_inputs() {
        let (a, b) = (app(), app());
        assert_eq!(digest(a.path(), &opts()), digest(b.path(), &opts()));
    }

    #[test]
    fn any_change_of_a_file_a_name_or_a_setting_changes_the_inputs() {
        let dir = app();
        let before = digest(dir.path(), &opts());
        std::fs::write(dir.path().join("src/build.sh"), "echo built!\n").unwrap();
        let edited = digest(dir.path(), &opts());
        assert_ne!(before, edited);
        std::fs::write(dir.path().join("src/notes.txt"), "").unwrap();
        let added = digest(dir.path(), &opts());
        assert_ne!(edited, added);
        std::fs::rename(dir.path().join("src/notes.txt"), dir.path().join("src/notes.md")).unwrap();
        assert_ne!(added, digest(dir.path(), &opts()));
        let longer = BatchOptions { build_timeout: std::time::Duration::from_secs(601), ..opts() };
        assert_ne!(digest(dir.path(), &opts()), digest(dir.path(), &longer));
        let other_file = BatchOptions { file: "Dockerfile".into(), ..opts() };
        assert_ne!(digest(dir.path(), &opts()), digest(dir.path(), &other_file));
    }

    #[cfg(unix)]
    #[test]
    fn a_link_counts_by_its_target_and_is_never_followed() {
        let dir = app();
        std::os::unix::fs::symlink("/etc/hostname", dir.path().join("src/host")).unwrap();
        let host = digest(dir.path(), &opts());
        std::fs::remove_file(dir.path().join("src/host")).unwrap();
        std::os::unix::fs::symlink("/etc/hosts", dir.path().join("src/host")).unwrap();
        assert_ne!(host, digest(dir.path(), &opts()));
    }

    fn graded(name: &str) -> SubmissionResult {
        let mut r = SubmissionResult::named(name.into());
        r.verdict = Some(crate::report::Verdict::Pass);
        r.inputs = Some(digest(app().path(), &opts()));
        r
    }

    fn report() -> Report {
        let checks = crate::checks::evaluate(&Rubric::default_rubric(), &crate::checks::Evidence::default());
        Report::new("check", "p101", checks, Vec::new(), None)
    }

    #[test]
    fn only_a_whole_grading_is_remembered_and_found_again() {
        let reports = tempfile::tempdir().unwrap();
        let r = graded("p101");
        std::fs::write(reports.path().join("p101.json"), serde_json::to_string(&report()).unwrap()).unwrap();
        remember(reports.path(), &r).unwrap();
        let inputs = r.inputs.clone().unwrap();
        assert!(earlier(reports.path(), "p101", &inputs).is_some());
        let other = digest(tempfile::tempdir().unwrap().path(), &opts());
        assert!(earlier(reports.path(), "p101", &other).is_none(), "other inputs");

        forget(reports.path(), "p101").unwrap();
        assert!(earlier(reports.path(), "p101", &inputs).is_none());
        forget(reports.path(), "p101").expect("forgetting twice is no error");
        for not_whole in [
            SubmissionResult { interrupted: true, ..graded("p101") },
            SubmissionResult { error: Some("docker".into()), ..graded("p101") },
            SubmissionResult { verdict: None, ..graded("p101") },
        ] {
            remember(reports.path(), &not_whole).unwrap();
            assert!(earlier(reports.path(), "p101", &inputs).is_none(), "{not_whole:?}");
        }
    }
}
