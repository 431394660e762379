//! The lab on `lab_examples/reference`, run once against real containers; one test per requirement.

use crate::common;

use std::sync::{Arc, OnceLock};

use lab7::builds::buildx::Client;
use lab7::checks::{CheckId, Status};
use lab7::environment::Images;
use lab7::lab::LabRun;
use lab7::platform::Platform;

/// The run every test here reads (the compatibility matrix reads it too).
fn reference_run() -> &'static LabRun {
    static RUN: OnceLock<Arc<LabRun>> = OnceLock::new();
    RUN.get_or_init(|| {
        common::require_docker("lab_end_to_end");
        common::shared_run_blocking("reference", &Images::load(), Client::Buildctl)
    })
}

fn outcome(run: &LabRun, id: CheckId) -> lab7::checks::CheckOutcome {
    common::report_of(run).check(id).clone()
}

#[test]
fn manifest_lists_amd64_and_arm64() {
    let run = reference_run();
    let image = run.image.as_ref().expect("lab:cachetest is in registry7");
    assert_eq!(image.media_type, "application/vnd.oci.image.index.v1+json");
    assert_eq!(image.platforms(), Platform::lab_targets());
    assert_eq!(outcome(run, CheckId::ManifestListsBothArchitectures).status, Status::Pass);
}

#[test]
fn second_build_is_cached_from_the_registry_for_both_platforms() {
    let run = reference_run();
    let b2 = run.build2.as_ref().expect("build 2 ran");
    assert!(b2.succeeded());
    assert!(matches!(b2.log.cache_import(), lab7::builds::CacheImport::Imported { .. }), "{:?}", b2.log.cache_import());
    let per = b2.log.per_platform();
    for p in Platform::lab_targets() {
        let steps = &per[&Some(p.clone())];
        let built = &run.build1.log.per_platform()[&Some(p.clone())];
        assert_eq!(steps.layer_steps, built.layer_steps, "{p}: every RUN/COPY/ADD build 1 ran appears");
        assert_eq!(steps.cached_layer_steps, steps.layer_steps, "{p}: not cached: {:?}", steps.uncached);
    }
    // Build 1 ran from nothing: the CACHED lines of build 2 come from the registry cache,
    // since the node's own cache was pruned in between.
    assert!(run.build1.log.per_platform().values().all(|s| s.cached_steps == 0));
    assert_eq!(outcome(run, CheckId::CachedStepsBothPlatforms).status, Status::Pass);
    assert_eq!(outcome(run, CheckId::CacheImportedFromRegistry).status, Status::Pass);
}

#[test]
fn cache_is_a_separate_image_with_mode_max_layers() {
    let run = reference_run();
    assert!(run.repositories.contains(&"cachedata1".to_string()) && run.repositories.contains(&"lab".to_string()));
    let cache = run.cache.as_ref().expect("cachedata1 is in registry7");
    let manifest = cache.manifest.as_ref().expect("it is a BuildKit cache");
    assert_eq!(manifest.config.media_type, "application/vnd.buildkit.cacheconfig.v0");
    assert!(cache.layers_not_in_image > 0, "intermediate-stage layers are the evidence of mode=max");
    assert_eq!(outcome(run, CheckId::CacheSeparateImageModeMax).status, Status::Pass);
}

#[test]
fn cache_deletion_reclaims_space_and_loses_nothing_else() {
    let run = reference_run();
    let d = run.deletion.as_ref().expect("the deletion ran");
    assert_eq!(d.delete_status, 202);
    assert_eq!(d.tag_status_after, 404);
    assert!(d.tags_after.is_empty());
    assert_eq!(d.stale_blob_status_before_restart, Some(200), "registry 2.8 answers for deleted blobs until restarted");
    assert!(d.cache_gone(), "{:?}", d.cache_only_blobs);
    assert!(d.reclaimed() > 0, "{} → {}", d.storage_before, d.storage_after);
    assert!(d.image_whole(), "{:?}", d.image_after);
    for id in [CheckId::CacheDeleted, CheckId::SpaceReclaimed, CheckId::ImageIntact] {
        assert_eq!(outcome(run, id).status, Status::Pass, "{id}");
    }
}

#[test]
fn report_of_the_reference_run() {
    let run = reference_run();
    let report = common::report_of(run);
    assert_eq!(report.exit(), lab7::Exit::Pass);
    assert_eq!((report.score.points, report.score.bonus_points), (100.0, 50.0));
    common::assert_report_snapshot("reference_report", &report);
}

/// The run's HTML page (`check --format html`), opened in headless Chromium: the image as a
/// tree of its two platforms, the cache beside it, the storage before and after the deletion.
#[cfg(feature = "browser-tests")]
#[test]
fn the_html_page_draws_the_image_the_cache_and_the_deletion() {
    use lab7::report::html::{render, Lang};
    let run = reference_run();
    let report = common::report_of(run);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("check.html");
    std::fs::write(&file, render(&report, Lang::En)).unwrap();
    let page = common::browser::open(&file, "check-reference");
    page.assert_self_contained_and_described();
    let platforms: Vec<&str> =
        page.all("li.platform-manifest").iter().filter_map(|li| li.value().attr("data-platform")).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    // Each platform's layers under it, and what its binaries are built for.
    let image = run.image.as_ref().unwrap();
    for (li, arch) in page.all("li.platform-manifest").iter().zip(["amd64", "arm64"]) {
        let read = image.binaries.iter().find(|b| b.platform.architecture == arch).expect("binaries read");
        let layers = li.select(&scraper::Selector::parse("li.layer").unwrap()).count();
        assert_eq!(layers, read.layers.len(), "{arch}");
        assert!(layers > 0);
        let text: String = li.text().collect();
        assert!(text.contains(&format!("all built for {arch}")), "{text}");
    }
    // Attestations apart from the platforms (buildctl, as lab7 runs it, adds none; buildx does).
    let listed = report.run.as_ref().and_then(|r| r.image.as_ref()).expect("the image listing");
    let attestations = listed.manifests.iter().filter(|m| m.attestation).count();
    assert_eq!(page.all("li.attestation").len(), attestations);
    let cache = run.cache.as_ref().expect("the cache was read");
    let values: Vec<String> =
        page.all("#cache-chart .hbar").iter().map(|b| b.value().attr("data-value").unwrap().to_string()).collect();
    assert_eq!(values.len(), 2);
    assert!(values[1].starts_with(&format!("{} layers", cache.layers_not_in_image)), "{values:?}");
    let deletion = run.deletion.as_ref().expect("the deletion ran");
    let storage: Vec<String> =
        page.all("#storage-chart .hbar").iter().map(|b| b.value().attr("data-value").unwrap().to_string()).collect();
    assert_eq!(storage, [format!("{} bytes", deletion.storage_before), format!("{} bytes", deletion.storage_after)]);
    assert!(page.text().contains(&format!("reclaimed: {} bytes", deletion.reclaimed())));
    assert_eq!(page.all("figure.timeline").len(), 2);
}
