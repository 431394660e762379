//! The real `lab7` binary on the real environment: doctor, check, inspect, audit, batch.

use crate::common;

use std::time::Duration;

use lab7::builds;
use lab7::checks::CheckId;
use lab7::report::Report;

use common::{lab7, text};

// ---- on the real environment

#[test]
fn doctor_shows_engine_images_and_node_platforms() {
    common::require_docker("doctor");
    let o = lab7(&common::root(), &["doctor"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    assert!(t.contains("Docker Engine") && t.contains("registry7:") && t.contains("linux/arm64"), "{t}");
}

/// A student who runs today's registry and BuildKit asks `check` for the same stack with a flag,
/// and the report names the images it ran.
#[test]
fn check_runs_todays_stack_when_asked() {
    common::require_docker("check --stack current");
    let (registry3, buildkit_current) = lab7::environment::Images::current_stack();
    let (registry3, buildkit_current) = (
        registry3.expect("LAB7_REGISTRY3_IMAGE: run `make env`"),
        buildkit_current.expect("LAB7_BUILDKIT_CURRENT_IMAGE: run `make env`"),
    );
    let o = lab7(
        &common::root(),
        &["check", "lab_examples/reference", "--stack", "current", "--keep-cache", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Report = serde_json::from_slice(&o.stdout).unwrap();
    let run = report.run.expect("a check report has its run");
    assert_eq!(
        (run.registry_image.as_str(), run.buildkit_image.as_str()),
        (registry3.as_str(), buildkit_current.as_str())
    );
    assert!(run.buildkit_version.contains("v0.34"), "{}", run.buildkit_version);
}

#[test]
fn check_writes_a_markdown_report_a_student_can_hand_in() {
    common::require_docker("check --format md");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("report.md");
    let logs = dir.path().join("logs");
    let o = lab7(
        &common::root(),
        &[
            "check",
            "lab_examples/reference",
            "--format",
            "md",
            "--out",
            out.to_str().unwrap(),
            "--logs",
            logs.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    // The saved logs are what a student pastes; grading them gives the same verdict.
    let graded = lab7(&logs, &["grade-logs", "build1.log", "build2.log"]);
    assert_eq!(graded.status.code(), Some(0), "{}", text(&graded));
    let md = std::fs::read_to_string(out).unwrap();
    for part in [
        "## Commands",
        "docker buildx build -f Dockerfile_multi --platform linux/amd64,linux/arm64",
        "$ docker buildx imagetools inspect",
        "Platform:    linux/arm64",
        "CACHED [linux/arm64 build1",
        "## Bonus: deleting the cache image",
        "bytes reclaimed",
    ] {
        assert!(md.contains(part), "the report lacks {part:?}:\n{md}");
    }
    // Progress went to stderr while it ran.
    assert!(String::from_utf8_lossy(&o.stderr).contains("build 2"));
}

#[test]
fn inspect_and_audit_read_a_live_registry_without_changing_it() {
    common::block_on(async move {
        common::require_docker("inspect and audit");
        let (env, spec) = common::env_with_app(&common::example("reference")).await;
        let never = tokio_util::sync::CancellationToken::new();
        for _ in 0..2 {
            let b = builds::run(&env.node, &spec, Duration::from_secs(600), &never, |_| {}).await.unwrap();
            assert!(b.succeeded(), "{}", b.raw_log);
        }
        let client = env.registry.client().await.unwrap();
        let host = client.base().trim_start_matches("http://").to_string();

        let o = lab7(&common::root(), &["inspect", "--registry", &host, "lab:cachetest"]);
        let t = text(&o);
        assert_eq!(o.status.code(), Some(0), "{t}");
        assert!(t.contains("MediaType: application/vnd.oci.image.index.v1+json"), "{t}");
        assert!(t.contains("Platform:    linux/amd64") && t.contains("Platform:    linux/arm64"), "{t}");
        assert!(t.contains("linux/arm64: config linux/arm64"), "{t}");

        let o = lab7(&common::root(), &["inspect", "--registry", &host, "lab:nope"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));

        let o = lab7(
            &common::root(),
            &["audit", "--registry", &host, "--image", "lab:cachetest", "--cache", "cachedata1", "--format", "json"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let report: Report = serde_json::from_slice(&o.stdout).unwrap();
        let status = |id: CheckId| report.check(id).status;
        use lab7::checks::Status;
        assert_eq!(status(CheckId::ManifestListsBothArchitectures), Status::Pass);
        assert_eq!(status(CheckId::CacheSeparateImageModeMax), Status::Pass);
        assert_eq!(status(CheckId::CacheDeleted), Status::Skipped);
        // The same audit as a page: a row per check, its status in words (audit has no builds or
        // run to draw).
        let o = lab7(
            &common::root(),
            &["audit", "--registry", &host, "--image", "lab:cachetest", "--cache", "cachedata1", "--format", "html"],
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        let page = scraper::Html::parse_document(&String::from_utf8_lossy(&o.stdout));
        let rows = scraper::Selector::parse("tr.check .status").unwrap();
        let statuses: Vec<String> = page.select(&rows).map(|s| s.text().collect()).collect();
        assert_eq!(statuses.len(), report.checks.len(), "{}", text(&o));
        assert_eq!(
            statuses.iter().filter(|s| *s == "PASS").count(),
            report.checks.iter().filter(|c| c.status == Status::Pass).count()
        );
        // Read-only: the cache is still there.
        assert_eq!(client.tags("cachedata1").await.unwrap(), vec!["latest".to_string()]);
        audit_credits_the_cache_the_bonus_deleted(env, spec).await;
    })
}

/// After the bonus deletion, audit recognises the deleted cache (its repository left with no
/// tag) instead of asking for mode=max; the image stays whole.
async fn audit_credits_the_cache_the_bonus_deleted(
    mut env: lab7::environment::LabEnvironment,
    spec: builds::BuildSpec,
) {
    use lab7::registry::deletion;
    let client = env.registry.client().await.unwrap();
    let cache = client.cache_evidence(&spec.cache, &spec.image).await.unwrap().unwrap().manifest.unwrap();
    let done = deletion::delete_cache(&mut env.registry, &spec.cache, &cache, &spec.image).await.unwrap();
    assert!(done.cache_gone(), "{done:?}");
    let host = env.registry.client().await.unwrap().base().trim_start_matches("http://").to_string();
    let o = lab7(
        &common::root(),
        &["audit", "--registry", &host, "--image", "lab:cachetest", "--cache", "cachedata1", "--format", "json"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let report: Report = serde_json::from_slice(&o.stdout).unwrap();
    let mode_max = report.check(CheckId::CacheSeparateImageModeMax);
    assert_eq!(mode_max.status, lab7::checks::Status::Pass, "{}", mode_max.seen);
    assert!(mode_max.seen.contains("cachedata1:latest was deleted"), "{}", mode_max.seen);
    // The bonus rows say where the bonus is graded, since a read-only audit cannot.
    let bonus = report.check(CheckId::CacheDeleted);
    assert_eq!(bonus.status, lab7::checks::Status::Skipped);
    assert!(bonus.seen.contains("lab7 check") && bonus.seen.contains("lab7 grade-report"), "{}", bonus.seen);
    env.shutdown().await.unwrap();
}

/// What a student's `registry garbage-collect --delete-untagged` does, done for real on both
/// registry lines. On 2.8 the index of lab:cachetest survives while its platform manifests
/// answer 404, and neither audit nor inspect may call that image whole; on 3.x (fixed for
/// indexes) the image stays whole and the untagged cache manifests of earlier builds go.
#[rstest::rstest]
#[case::registry_2_8(false)]
#[case::registry_3(true)]
fn delete_untagged_breaks_multi_arch_images_on_2_8_only(#[case] registry3: bool) {
    common::block_on(async move {
        use lab7::registry::deletion::RegistryHost;
        common::require_docker("delete-untagged on registry 2.8 and 3.x");
        let mut images = lab7::environment::Images::load();
        if registry3 {
            images.registry =
                lab7::environment::Images::current_stack().0.expect("LAB7_REGISTRY3_IMAGE: run `make env`");
        }
        let (mut env, spec) = common::env_with_app_on(&common::example("reference"), &images).await;
        let never = tokio_util::sync::CancellationToken::new();
        for _ in 0..2 {
            let b = builds::run(&env.node, &spec, Duration::from_secs(600), &never, |_| {}).await.unwrap();
            assert!(b.succeeded(), "{}", b.raw_log);
        }
        let version = env.registry.version().clone();
        assert_eq!(version.delete_untagged_is_safe(), registry3, "{version:?}");
        let config = version.config_path();
        let gc = env.registry.exec(&["registry", "garbage-collect", "--delete-untagged", config]).await.unwrap();
        assert_eq!(gc.exit_code, 0, "{}", gc.stderr);
        env.registry.restart().await.unwrap(); // the blob descriptor cache would still answer 200
        let client = env.registry.client().await.unwrap();
        let host = client.base().trim_start_matches("http://").to_string();

        let o = lab7(&common::root(), &["audit", "--registry", &host, "--format", "json"]);
        let report: Report = serde_json::from_slice(&o.stdout).unwrap();
        let manifest = report.check(CheckId::ManifestListsBothArchitectures);
        let inspect = lab7(&common::root(), &["inspect", "--registry", &host, "lab:cachetest"]);
        if registry3 {
            assert_eq!(manifest.status, lab7::checks::Status::Pass, "{}", manifest.seen);
            assert_eq!(inspect.status.code(), Some(0), "{}", text(&inspect));
            // The untagged cache manifest build 1 left is gone with it.
            let revisions = env.registry.manifest_revisions(&spec.cache.repository).await.unwrap();
            assert_eq!(revisions.len(), 1, "{revisions:?}");
        } else {
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert_eq!(manifest.status, lab7::checks::Status::Fail, "{}", manifest.seen);
            // Every part that is gone, named, and the fix and page of the cause: push again,
            // and no --delete-untagged on 2.8 (not the check's general advice).
            let gone = manifest.seen.matches(" answers 404").count();
            assert!(gone >= 2 && manifest.seen.contains(&format!("{gone} part(s)")), "{}", manifest.seen);
            let fix = manifest.fix.as_deref().unwrap_or_default();
            assert!(fix.contains("push the image again") && fix.contains("--delete-untagged"), "{fix}");
            assert!(manifest.docs.contains("garbage-collection"), "{}", manifest.docs);
            assert_eq!(inspect.status.code(), Some(1), "{}", text(&inspect));
            assert!(
                text(&inspect).contains("MISSING") && text(&inspect).contains("is incomplete"),
                "{}",
                text(&inspect)
            );
        }
        env.shutdown().await.unwrap();
    })
}

/// The lab examples graded as a class with two jobs, once: several tests read it.
fn examples_batch() -> &'static (std::path::PathBuf, std::process::Output) {
    static BATCH: std::sync::OnceLock<(std::path::PathBuf, std::process::Output)> = std::sync::OnceLock::new();
    BATCH.get_or_init(|| {
        common::require_docker("batch");
        let dir = tempfile::tempdir().unwrap().keep();
        let csv = dir.join("results.csv");
        // Two jobs at once: each submission in environments of its own, verdicts as one by one.
        let o = lab7(&common::root(), &["batch", "lab_examples", "--out", csv.to_str().unwrap(), "--jobs", "2"]);
        (dir, o)
    })
}

#[test]
fn batch_grades_every_example_with_the_verdict_it_deserves() {
    let (dir, o) = examples_batch();
    assert_eq!(o.status.code(), Some(1), "not every example passes: {}", text(o));
    let csv = dir.join("results.csv");
    let table = std::fs::read_to_string(&csv).unwrap();
    let verdict = |name: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{name},")))
            .unwrap_or_else(|| panic!("{name} missing:\n{table}"))
            .split(',')
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(verdict("reference"), "pass", "{table}");
    assert_eq!(verdict("buildkit-shapes"), "pass", "{table}");
    assert_eq!(verdict("arm64-fails"), "fail", "{table}");
    assert_eq!(verdict("single-stage"), "fail", "{table}");
    assert!(table.contains("single-stage,fail,80,100,50"), "{table}");
    assert_eq!(verdict("wrong-arch-final"), "fail", "{table}");
    assert_eq!(table.lines().count(), 1 + 5, "a header and one row per example: {table}");
    assert!(dir.join("results.md").exists());
}

/// results.html: the class as a picture, opened in headless Chromium once the batch is over.
#[cfg(feature = "browser-tests")]
#[test]
fn the_class_page_draws_the_batch_and_links_each_students_report() {
    let (dir, o) = examples_batch();
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    let page = common::browser::open(&dir.join("results.html"), "batch-results");
    page.assert_self_contained_and_described();
    assert!(page.all("meta[http-equiv=refresh]").is_empty(), "the batch is over: the page must stop reloading");
    let students = page.all("tr.student");
    assert_eq!(students.len(), 5);
    for link in page.all("tr.student a") {
        let href = link.value().attr("href").unwrap();
        assert!(dir.join(href).is_file(), "{href} is not there");
        assert!(href.ends_with(".html"));
    }
    let value = |b: &scraper::ElementRef| b.value().attr("data-value").unwrap().to_string();
    let spread: usize = page.all("#distribution .hbar").iter().map(|b| value(b).parse::<usize>().unwrap()).sum();
    assert_eq!(spread, 5, "every student in one score range");
    let builds = page.all("#pass-rates .hbar").into_iter().find(|b| b.value().attr("title") == Some("builds_succeed"));
    // arm64-fails fails the builds; the four others build.
    assert_eq!(builds.map(|b| value(&b)).as_deref(), Some("4/5 (80 %)"));
    assert_eq!(page.all("#times .hbar").len(), 5);
    // A student's own page, linked from the row, opens as its own self-contained report.
    let own = common::browser::open(&dir.join("results-reports/arm64-fails.html"), "batch-arm64-fails");
    own.assert_self_contained_and_described();
    assert!(!own.all("#problems .problem").is_empty());
}

/// A base image that cannot be pulled. Offline, lab7's docker.io mirror lacks it: the
/// environment's failure (exit 2, naming the image), not a FAIL for the student. Where Docker
/// Hub answers, the tag really does not exist: the student's failure, with the advice for it.
#[test]
fn a_base_image_that_cannot_be_pulled_is_blamed_on_what_lacks_it() {
    common::require_docker("a missing base image");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile_multi"),
        "FROM busybox:0.0-no-such-tag AS build1\nRUN mkdir /x\nFROM busybox:1.36\nCOPY --from=build1 /x /x\n",
    )
    .unwrap();
    let o = lab7(&common::root(), &["check", dir.path().to_str().unwrap()]);
    let t = text(&o);
    if lab7::environment::Images::load().mirror.is_some() {
        assert_eq!(o.status.code(), Some(2), "{t}");
        assert!(t.contains("environment:") && t.contains("docker.io/library/busybox:0.0-no-such-tag"), "{t}");
        assert!(t.contains("no Docker Hub") && t.contains("fix:"), "{t}");
    } else {
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains("could not be found") && !t.contains("QEMU"), "{t}");
    }
}
