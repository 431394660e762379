//! The manifest model on manifests registry 2.8 served after real BuildKit 0.26 builds.

mod common;

use common::read_fixture;
use lab7::platform::Platform;
use lab7::registry::manifest::{CacheShape, Fetched, Manifest};
use lab7::registry::{CacheManifest, ImageSummary};

const ANY: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn fetched(rel: &str) -> Fetched {
    let body = read_fixture(rel);
    let media_type = Manifest::declared_type(body.as_bytes()).expect("the fixture declares its mediaType");
    Fetched {
        digest: ANY.parse().unwrap(),
        size: body.len() as u64,
        body: Manifest::parse(&media_type, body.as_bytes()).unwrap(),
        media_type,
    }
}

#[test]
fn oci_index_lists_amd64_and_arm64() {
    let image = ImageSummary::from_fetched(&fetched("registry/lab-cachetest-index.json"));
    assert_eq!(image.platforms(), Platform::lab_targets());
    assert_eq!(image.attestations(), 0);
    assert!(image.has_platform(&Platform::linux_arm64()));
}

#[test]
fn docker_manifest_list_lists_amd64_and_arm64() {
    let image = ImageSummary::from_fetched(&fetched("registry/lab-legacy-docker-manifest-list.json"));
    assert_eq!(image.media_type, "application/vnd.docker.distribution.manifest.list.v2+json");
    assert_eq!(image.platforms(), Platform::lab_targets());
}

#[test]
fn attestation_entries_are_reported_not_counted_as_platforms() {
    let mut v: serde_json::Value = serde_json::from_str(&read_fixture("registry/lab-cachetest-index.json")).unwrap();
    let mut att = v["manifests"][0].clone();
    att["platform"] = serde_json::json!({"architecture": "unknown", "os": "unknown"});
    att["annotations"] = serde_json::json!({"vnd.docker.reference.type": "attestation-manifest"});
    v["manifests"].as_array_mut().unwrap().push(att);
    let body = serde_json::to_vec(&v).unwrap();
    let f = Fetched {
        digest: ANY.parse().unwrap(),
        size: 0,
        media_type: "application/vnd.oci.image.index.v1+json".into(),
        body: Manifest::parse("application/vnd.oci.image.index.v1+json", &body).unwrap(),
    };
    let image = ImageSummary::from_fetched(&f);
    assert_eq!(image.platforms(), Platform::lab_targets());
    assert_eq!(image.attestations(), 1);
}

#[test]
fn buildkit_0_26_cache_is_an_image_manifest_with_cacheconfig() {
    let cache = CacheManifest::from_fetched(&fetched("registry/cachedata1-manifest.json")).expect("a BuildKit cache");
    assert_eq!(cache.shape, CacheShape::ImageManifest);
    assert_eq!(cache.config.media_type, "application/vnd.buildkit.cacheconfig.v0");
    // The manifest repeats the empty layer once per record; the model counts blobs.
    assert_eq!(cache.layers.len(), 9);
    assert_eq!(cache.blobs().len(), 10);
}

#[test]
fn legacy_cache_is_an_index_of_layers_and_cacheconfig() {
    let cache = CacheManifest::from_fetched(&fetched("registry/cache-legacy-index.json")).expect("a BuildKit cache");
    assert_eq!(cache.shape, CacheShape::Index);
    assert_eq!(cache.config.media_type, "application/vnd.buildkit.cacheconfig.v0");
    assert_eq!(cache.layers.len(), 9);
}

#[test]
fn an_ordinary_image_is_not_a_cache() {
    assert!(CacheManifest::from_fetched(&fetched("registry/lab-cachetest-amd64-manifest.json")).is_none());
    assert!(CacheManifest::from_fetched(&fetched("registry/lab-cachetest-index.json")).is_none());
}

#[test]
fn unknown_media_types_are_refused_with_the_type_named() {
    let e = Manifest::parse("application/vnd.oci.image.layer.v1.tar+gzip", b"{}").unwrap_err();
    assert!(e.to_string().contains("application/vnd.oci.image.layer.v1.tar+gzip"), "{e}");
}
