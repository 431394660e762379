//! Read-only looks at any registry: `lab7 inspect` and `lab7 audit`.

use std::fmt::Write;

use serde::Serialize;

use crate::checks::Observed;
use crate::reference::ImageRef;
use crate::registry::binaries::PlatformBinaries;
use crate::registry::manifest::IndexEntry;
use crate::registry::{platform_images_of, BlobRef, CacheEvidence, ImageSummary, Manifest, Presence, RegistryClient};
use crate::report::formats::imagetools;
use crate::report::{manifest_line, ManifestLine};
use crate::Error;

#[derive(Debug, Clone, Serialize)]
pub struct PlatformDetail {
    pub platform: String,
    pub attestation: bool,
    /// `os/architecture` as the image config states it.
    pub config_platform: Option<String>,
    pub layers: Vec<BlobRef>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    pub manifests: Vec<ManifestLine>,
    pub platforms: Vec<PlatformDetail>,
    /// Parts the image references that the registry does not serve: a pull would fail.
    pub missing: Vec<Presence>,
    /// What each platform's ELF binaries are built for.
    pub binaries: Vec<PlatformBinaries>,
}

impl Inspection {
    pub fn text(&self) -> String {
        let mut o = if self.manifests.is_empty() {
            format!("Name:      {}\nMediaType: {}\nDigest:    {}\n\n", self.name, self.media_type, self.digest)
        } else {
            imagetools(&self.name, &self.media_type, &self.digest, &self.manifests)
        };
        for m in &self.missing {
            let _ = writeln!(o, "MISSING {} {}: the registry answers {}", m.what, m.digest, m.status);
        }
        for p in &self.platforms {
            let mark = if p.attestation { " (attestation, not a platform)" } else { "" };
            let total: u64 = p.layers.iter().map(|l| l.size).sum();
            let cfg = p.config_platform.as_deref().unwrap_or("-");
            let layers = match p.layers.len() {
                1 => "1 layer".to_string(),
                n => format!("{n} layers"),
            };
            let _ = writeln!(o, "{}{mark}: config {cfg}, {layers}, {total} bytes", p.platform);
            for l in &p.layers {
                let _ = writeln!(o, "  {} {:>10}  {}", l.digest, l.size, l.media_type);
            }
        }
        for b in &self.binaries {
            let _ = match b.foreign.first() {
                None => writeln!(
                    o,
                    "{} binaries: {} ELF files, all for {}",
                    b.platform, b.elf_files, b.platform.architecture
                ),
                Some((path, arch)) => writeln!(
                    o,
                    "WRONG ARCHITECTURE {}: {} of {} ELF files are for another architecture, e.g. {path} ({arch})",
                    b.platform,
                    b.foreign.len(),
                    b.elf_files
                ),
            };
            for why in &b.unread {
                let _ = writeln!(o, "  not read: {why}");
            }
        }
        o
    }

    /// Platforms whose binaries are built for another architecture.
    pub fn wrong_architecture(&self) -> Vec<&PlatformBinaries> {
        self.binaries.iter().filter(|b| !b.foreign.is_empty()).collect()
    }
}

/// `None` when the reference does not exist.
pub async fn inspect(client: &RegistryClient, r: &ImageRef) -> Result<Option<Inspection>, Error> {
    let Some(top) = client.manifest(&r.repository, &r.reference).await? else {
        return Ok(None);
    };
    let name = format!(
        "{}/{}",
        client.base().split("://").nth(1).unwrap_or(client.base()),
        ImageRef { registry: None, ..r.clone() }
    );
    let summary = ImageSummary::from_fetched(&top);
    let mut platforms = Vec::new();
    // One walk of the index serves the listing, the presence check and the binaries.
    let fetched = client.children(&r.repository, &top).await?;
    let missing =
        client.parts_of(&r.repository, &top, &fetched).await?.into_iter().filter(|p| p.status != 200).collect();
    let binaries = client.binaries_of(&r.repository, platform_images_of(&fetched)).await?;
    let children: Vec<(IndexEntry, Option<crate::registry::Fetched>)> = match &top.body {
        Manifest::Image(_) => vec![(single_entry(&top), Some(top.clone()))],
        Manifest::Index(_) => fetched,
    };
    for (entry, fetched) in children {
        let Some(Manifest::Image(m)) = fetched.map(|f| f.body) else { continue };
        let config = BlobRef::of(m.config());
        let config_platform = if entry.attestation || config.media_type.contains("buildkit.cacheconfig") {
            None
        } else {
            client
                .image_config(&r.repository, &config.digest)
                .await
                .ok()
                .map(|c| format!("{}/{}", c.os(), c.architecture()))
        };
        platforms.push(PlatformDetail {
            platform: entry.platform.to_string(),
            attestation: entry.attestation,
            config_platform,
            layers: m.layers().iter().map(BlobRef::of).collect(),
        });
    }
    Ok(Some(Inspection {
        name,
        digest: top.digest.to_string(),
        media_type: top.media_type.clone(),
        manifests: summary.entries.iter().map(manifest_line).collect(),
        platforms,
        missing,
        binaries,
    }))
}

fn single_entry(f: &crate::registry::Fetched) -> IndexEntry {
    IndexEntry {
        platform: crate::platform::Platform::new("(single", "manifest)"),
        manifest: BlobRef {
            digest: f.digest.clone(),
            size: f.size,
            media_type: f.media_type.clone(),
            uncompressed: None,
        },
        attestation: false,
    }
}

/// What `lab7 audit` found of one repository.
#[derive(Debug, Clone)]
pub enum Found<T> {
    Present(T),
    /// In the catalog with no tag: deleted.
    Deleted,
    NeverPushed,
}

impl<T> Found<T> {
    pub fn observed(&self) -> Observed<&T> {
        match self {
            Found::Present(t) => Observed::Seen(t),
            Found::Deleted => Observed::Deleted,
            Found::NeverPushed => Observed::Missing,
        }
    }
}

/// The student's registry as `lab7 audit` reads it: the image, and the cache beside it.
pub async fn audit(
    client: &RegistryClient,
    image: &ImageRef,
    cache: &ImageRef,
) -> Result<(Found<ImageSummary>, Found<CacheEvidence>), Error> {
    let catalog = client.catalog().await.unwrap_or_default();
    let summary = client.image(&image.repository, &image.reference).await?;
    let image_found = found(client, &catalog, &image.repository, summary).await;
    let cache_found = found(client, &catalog, &cache.repository, client.cache_evidence(cache, image).await?).await;
    Ok((image_found, cache_found))
}

/// Present, or deleted (the repository is in the catalog with no tag), or never pushed.
async fn found<T>(client: &RegistryClient, catalog: &[String], repo: &str, value: Option<T>) -> Found<T> {
    match value {
        Some(v) => Found::Present(v),
        None if catalog.iter().any(|r| r == repo) && client.tags(repo).await.is_ok_and(|t| t.is_empty()) => {
            Found::Deleted
        }
        None => Found::NeverPushed,
    }
}
