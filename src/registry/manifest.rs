//! What the registry holds, as the lab reads it: an image with its platforms,
//! and a BuildKit cache in either of its two shapes.

use std::collections::BTreeSet;

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest, MediaType};
use serde::Serialize;

use crate::platform::Platform;
use crate::reference::Digest;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// The registry answers 404 for an index unless its type is in Accept: send all four.
pub const ACCEPT_ALL: &str = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json";
pub const CACHE_CONFIG: &str = "application/vnd.buildkit.cacheconfig.v0";
const ATTESTATION_KEY: &str = "vnd.docker.reference.type";

/// A manifest as fetched: its digest, its media type and what it parsed into.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub body: Manifest,
}

// A handful of manifests live at a time, briefly: their size on the stack does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Manifest {
    Index(ImageIndex),
    Image(ImageManifest),
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is not JSON the OCI or Docker v2 formats describe: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported manifest media type `{0}` (expected an OCI or Docker v2 manifest or index)")]
    MediaType(String),
}

impl Manifest {
    /// Parses by media type (the Content-Type header, or the body's own `mediaType`).
    pub fn parse(media_type: &str, body: &[u8]) -> Result<Manifest, ManifestError> {
        match media_type {
            OCI_INDEX | DOCKER_LIST => Ok(Manifest::Index(serde_json::from_slice(body)?)),
            OCI_MANIFEST | DOCKER_MANIFEST => Ok(Manifest::Image(serde_json::from_slice(body)?)),
            other => Err(ManifestError::MediaType(other.to_string())),
        }
    }

    /// The `mediaType` a manifest body declares of itself.
    pub fn declared_type(body: &[u8]) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        v.get("mediaType")?.as_str().map(str::to_string)
    }
}

/// A blob or manifest the registry should hold: digest, size, what it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    /// The layer's uncompressed digest (its diff id), where the descriptor says it: BuildKit
    /// annotates cache layers with `containerd.io/uncompressed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uncompressed: Option<Digest>,
}

impl BlobRef {
    pub fn of(d: &Descriptor) -> BlobRef {
        let uncompressed =
            d.annotations().as_ref().and_then(|a| a.get("containerd.io/uncompressed")).and_then(|u| u.parse().ok());
        BlobRef {
            digest: d.digest().to_string().parse().expect("oci-spec validated the digest"),
            size: d.size(),
            media_type: d.media_type().to_string(),
            uncompressed,
        }
    }
}

/// One entry of an image index.
#[derive(Debug, Clone, Serialize)]
pub struct IndexEntry {
    pub platform: Platform,
    pub manifest: BlobRef,
    /// buildx's provenance/SBOM manifests: listed as `unknown/unknown`, not a platform.
    pub attestation: bool,
}

impl IndexEntry {
    pub fn of(d: &Descriptor) -> IndexEntry {
        let platform = d.platform().as_ref().map_or(Platform::new("unknown", "unknown"), |p| Platform {
            os: p.os().to_string(),
            architecture: p.architecture().to_string(),
            // arm64 has one variant in practice; `linux/arm64` is how the lab (and --platform) names it.
            variant: p.variant().clone().filter(|v| !(p.architecture().to_string() == "arm64" && v == "v8")),
        });
        let annotated = d.annotations().as_ref().is_some_and(|a| a.contains_key(ATTESTATION_KEY));
        IndexEntry { attestation: annotated || platform.is_unknown(), platform, manifest: BlobRef::of(d) }
    }
}

/// An image in the registry: the tag's manifest and, for an index, its entries.
#[derive(Debug, Clone, Serialize)]
pub struct ImageSummary {
    pub digest: Digest,
    pub media_type: String,
    pub entries: Vec<IndexEntry>,
    /// Parts the index names that the registry no longer serves (platform manifests, configs,
    /// layers): after `garbage-collect --delete-untagged` on registry 2.8 the index survives
    /// while its platform manifests answer 404, and the image can no longer be pulled.
    pub missing: Vec<super::Presence>,
    /// What each platform's binaries are built for (filled when the layers were read).
    pub binaries: Vec<super::binaries::PlatformBinaries>,
}

impl ImageSummary {
    pub fn from_fetched(f: &Fetched) -> ImageSummary {
        let entries = match &f.body {
            Manifest::Index(i) => i.manifests().iter().map(IndexEntry::of).collect(),
            Manifest::Image(_) => Vec::new(),
        };
        ImageSummary {
            digest: f.digest.clone(),
            media_type: f.media_type.clone(),
            entries,
            missing: Vec::new(),
            binaries: Vec::new(),
        }
    }

    pub fn platforms(&self) -> Vec<Platform> {
        self.entries.iter().filter(|e| !e.attestation).map(|e| e.platform.clone()).collect()
    }

    pub fn attestations(&self) -> usize {
        self.entries.iter().filter(|e| e.attestation).count()
    }

    pub fn has_platform(&self, p: &Platform) -> bool {
        self.platforms().iter().any(|q| q.matches(p))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheShape {
    /// BuildKit 0.21 and later: an OCI image manifest whose config is the cacheconfig.
    ImageManifest,
    /// Older BuildKit (and dockerd's): an index whose entries are the layers plus the cacheconfig.
    Index,
}

impl std::fmt::Display for CacheShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CacheShape::ImageManifest => "image manifest",
            CacheShape::Index => "index",
        })
    }
}

/// A BuildKit registry cache (`--export-cache type=registry`).
#[derive(Debug, Clone, Serialize)]
pub struct CacheManifest {
    pub digest: Digest,
    pub shape: CacheShape,
    pub config: BlobRef,
    /// Distinct layer blobs, sorted (the manifest repeats a layer once per cache record).
    pub layers: Vec<BlobRef>,
}

impl CacheManifest {
    /// `None` when the manifest is not a BuildKit cache (an ordinary image, say).
    pub fn from_fetched(f: &Fetched) -> Option<CacheManifest> {
        let is_cfg = |d: &&Descriptor| d.media_type() == &MediaType::Other(CACHE_CONFIG.into());
        let (shape, config, layers): (_, BlobRef, Vec<&Descriptor>) = match &f.body {
            Manifest::Image(m) if is_cfg(&m.config()) => {
                (CacheShape::ImageManifest, BlobRef::of(m.config()), m.layers().iter().collect())
            }
            Manifest::Index(i) => {
                let cfg = i.manifests().iter().find(is_cfg)?;
                let layers = i.manifests().iter().filter(|d| !is_cfg(d)).collect();
                (CacheShape::Index, BlobRef::of(cfg), layers)
            }
            Manifest::Image(_) => return None,
        };
        let layers: BTreeSet<BlobRef> = layers.into_iter().map(BlobRef::of).collect();
        Some(CacheManifest { digest: f.digest.clone(), shape, config, layers: layers.into_iter().collect() })
    }

    pub fn layer_bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.size).sum()
    }

    /// Every blob the cache holds: its layers and its config.
    pub fn blobs(&self) -> BTreeSet<Digest> {
        self.layers.iter().map(|l| l.digest.clone()).chain([self.config.digest.clone()]).collect()
    }
}
