//! The bonus: delete the cache image from registry7 and prove the space came back
//! while the application image stayed whole.
//!
//! On distribution 2.8: DELETE the manifest by digest, `registry garbage-collect`
//! (never `--delete-untagged`: it destroys the platform manifests of multi-arch
//! images), then restart — until then the in-memory blob descriptor cache still
//! answers 200 for deleted blobs.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::{CacheManifest, Presence, RegistryClient};
use crate::reference::{Digest, ImageRef};
use crate::Error;

/// What the deletion needs of the registry beyond its HTTP API: its storage, its garbage
/// collector and a restart. The registry7 container implements it (`environment::Registry7`).
#[allow(async_fn_in_trait)] // used in-crate, with concrete types
pub trait RegistryHost {
    /// A client on the registry's current address (it may change with a restart).
    async fn client(&self) -> Result<RegistryClient, Error>;
    /// Bytes of every file under the registry's storage.
    async fn storage_bytes(&self) -> Result<u64, Error>;
    /// Every manifest the repository holds, tagged or not (the API lists only tags).
    async fn manifest_revisions(&self, repo: &str) -> Result<Vec<Digest>, Error>;
    /// The garbage-collect command, as the report shows it.
    fn gc_command(&self) -> String;
    /// Which registry it is (2.x or 3.x).
    fn version(&self) -> &super::version::RegistryVersion;
    /// Runs garbage-collect; its output.
    async fn garbage_collect(&self) -> Result<String, Error>;
    /// Restarts the registry (drops its in-memory blob descriptor cache) and waits for it.
    async fn restart(&mut self) -> Result<(), Error>;
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GcSummary {
    pub blobs_marked: u64,
    pub blobs_eligible: u64,
    pub manifests_eligible: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeletionEvidence {
    /// The registry it ran on: its config path, advice and docs follow its line (2.x, 3.x).
    pub registry: super::version::RegistryVersion,
    pub cache_repo: String,
    pub cache_digest: Digest,
    pub delete_status: u16,
    /// Every manifest revision of the cache repository and its DELETE status, the tag's first:
    /// build 1's cache manifest is still there, untagged, and keeps its layers alive through GC
    /// unless deleted too.
    pub deleted_manifests: Vec<Presence>,
    pub tag_status_after: u16,
    pub tags_after: Vec<String>,
    pub gc_command: String,
    pub gc: Option<GcSummary>,
    /// HEAD of a cache-only blob after GC but before the restart (the trap: still 200).
    pub stale_blob_status_before_restart: Option<u16>,
    /// Bytes of the cache-only blobs, from the registry's HEAD answers before the deletion.
    pub cache_only_bytes: u64,
    pub storage_before: u64,
    pub storage_after: u64,
    /// Blobs only the cache used, and their status after GC and restart (404 expected).
    pub cache_only_blobs: Vec<Presence>,
    /// Everything the application image references, after the restart (200 expected).
    pub image_after: Vec<Presence>,
    pub image_parts_before: usize,
}

impl DeletionEvidence {
    pub fn reclaimed(&self) -> i64 {
        self.storage_before as i64 - self.storage_after as i64
    }

    pub fn cache_gone(&self) -> bool {
        self.deleted_manifests.iter().all(|m| m.status == 202)
            && self.tag_status_after == 404
            && !self.cache_only_blobs.is_empty()
            && self.cache_only_blobs.iter().all(|b| b.status == 404)
    }

    pub fn image_whole(&self) -> bool {
        self.image_after.len() == self.image_parts_before
            && !self.image_after.is_empty()
            && self.image_after.iter().all(|p| p.status == 200)
    }
}

static GC_LINE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible for deletion").unwrap());

pub fn parse_gc(output: &str) -> Option<GcSummary> {
    let c = GC_LINE.captures(output)?;
    Some(GcSummary {
        blobs_marked: c[1].parse().ok()?,
        blobs_eligible: c[2].parse().ok()?,
        manifests_eligible: c[3].parse().ok()?,
    })
}

/// Every blob that a manifest outside the cache repository references, tagged or not: what
/// garbage-collect must keep. Not only the current image: each push of a build whose layers are
/// not byte-identical leaves the previous image's manifests in its repository, untagged, and
/// they keep their layers (some of which the cache shares) alive.
async fn kept_blobs(
    registry: &impl RegistryHost,
    client: &RegistryClient,
    cache_repo: &str,
) -> Result<BTreeSet<Digest>, Error> {
    let mut kept = BTreeSet::new();
    for repo in client.catalog().await?.into_iter().filter(|r| r != cache_repo) {
        for rev in registry.manifest_revisions(&repo).await? {
            kept.extend(client.image_parts(&repo, rev.as_str()).await?.into_iter().map(|p| p.digest));
        }
    }
    Ok(kept)
}

/// Deletes the cache image and proves it; `image_ref` is what must survive.
pub async fn delete_cache(
    registry: &mut impl RegistryHost,
    cache_ref: &ImageRef,
    cache: &CacheManifest,
    image_ref: &ImageRef,
) -> Result<DeletionEvidence, Error> {
    let (cache_repo, tag) = (cache_ref.repository.as_str(), cache_ref.reference.as_str());
    let image = (image_ref.repository.as_str(), image_ref.reference.as_str());
    let client = registry.client().await?;
    let image_before = client.image_parts(image.0, image.1).await?;
    let kept = kept_blobs(registry, &client, cache_repo).await?;
    let storage_before = registry.storage_bytes().await?;

    let cache_digest = client
        .manifest_digest(cache_repo, tag)
        .await?
        .ok_or_else(|| Error::Lab(format!("{cache_repo}:{tag} is not in registry7, nothing to delete")))?;
    // The tag's manifest first, then the untagged ones earlier builds left.
    let mut revisions = vec![cache_digest.clone()];
    revisions.extend(registry.manifest_revisions(cache_repo).await?.into_iter().filter(|d| d != &cache_digest));
    let mut cache_blobs = cache.blobs();
    for rev in &revisions[1..] {
        if let Some(c) = client.manifest(cache_repo, rev.as_str()).await?.as_ref().and_then(CacheManifest::from_fetched)
        {
            cache_blobs.extend(c.blobs());
        }
    }
    let cache_only: Vec<Digest> = cache_blobs.into_iter().filter(|d| !kept.contains(d)).collect();
    let mut cache_only_bytes = 0;
    for d in &cache_only {
        cache_only_bytes += client.blob_head(cache_repo, d).await?.1.unwrap_or(0);
    }

    let mut deleted_manifests = Vec::new();
    for rev in &revisions {
        let status = client.delete_manifest(cache_repo, rev).await?;
        deleted_manifests.push(Presence { what: "cache manifest".into(), digest: rev.clone(), status });
    }
    let delete_status = deleted_manifests[0].status;
    let tag_status_after = client.manifest_status(cache_repo, tag).await?;
    let tags_after = client.tags(cache_repo).await?;

    let gc_output = registry.garbage_collect().await?;
    let stale = match cache_only.first() {
        Some(d) => Some(client.blob_status(cache_repo, d).await?),
        None => None,
    };
    registry.restart().await?;
    let client: RegistryClient = registry.client().await?;

    let mut cache_only_blobs = Vec::new();
    for d in cache_only.iter().chain(&revisions) {
        let what = if revisions.contains(d) { "cache manifest" } else { "cache blob" };
        cache_only_blobs.push(Presence {
            what: what.into(),
            digest: d.clone(),
            status: client.blob_status(cache_repo, d).await?,
        });
    }
    Ok(DeletionEvidence {
        registry: registry.version().clone(),
        cache_repo: cache_repo.into(),
        cache_digest,
        delete_status,
        deleted_manifests,
        tag_status_after,
        tags_after,
        gc_command: registry.gc_command(),
        gc: parse_gc(&gc_output),
        stale_blob_status_before_restart: stale,
        cache_only_bytes,
        storage_before,
        storage_after: registry.storage_bytes().await?,
        cache_only_blobs,
        image_after: client.image_parts(image.0, image.1).await?,
        image_parts_before: image_before.len(),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_gc_summary_line() {
        let out = "lab\nlab: marking manifest sha256:…\n\n28 blobs marked, 6 blobs and 0 manifests eligible for deletion\nblob eligible for deletion: sha256:…";
        let s = super::parse_gc(out).unwrap();
        assert_eq!((s.blobs_marked, s.blobs_eligible, s.manifests_eligible), (28, 6, 0));
    }
}
