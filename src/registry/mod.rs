//! registry7 over the Distribution API: manifests, tags, blobs, deletion.

pub mod binaries;
pub mod deletion;
pub mod manifest;
pub mod version;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::{header, Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::platform::Platform;
use crate::reference::{Digest, ImageRef};
pub use manifest::{BlobRef, CacheManifest, CacheShape, Fetched, ImageSummary, Manifest};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("registry at {url} is unreachable: {}\n  fix: check that the registry container runs and that HOST:PORT is its published port (docker ps)", causes(source))]
    Unreachable { url: String, source: reqwest::Error },
    #[error("registry answered {status} to {method} {url}: {body}")]
    Status { method: Method, url: String, status: StatusCode, body: String },
    #[error("{url}: {source}")]
    Manifest { url: String, source: manifest::ManifestError },
    #[error("{url}: registry sent no Docker-Content-Digest header")]
    NoDigest { url: String },
    #[error("{url} answered {status} without the Distribution API's header: this is not a container registry\n  fix: give the HOST:PORT of a registry (e.g. registry7's published port, `docker port registry7`)")]
    NotARegistry { url: String, status: StatusCode },
    #[error("{url}: the answer is over {max} bytes, more than any manifest or image config should be; lab7 stops reading it")]
    TooLarge { url: String, max: u64 },
    #[error("{url}: could not keep the blob in a temp file: {source}\n  fix: free space in $TMPDIR")]
    Io { url: String, source: std::io::Error },
}

/// An error and what caused it, innermost last: reqwest's own text ("error sending request")
/// says nothing of why (refused, reset, closed before the answer).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        text.push_str(&format!(": {inner}"));
        source = inner.source();
    }
    text
}

/// How long one attempt at a manifest, tag list, catalog or HEAD may take.
const DOCUMENT_DEADLINE: Duration = Duration::from_secs(15);
/// How long one attempt at a whole blob may take (layers of a real app are tens of MB).
const BLOB_DEADLINE: Duration = Duration::from_secs(120);

/// Largest manifest, config or listing read (distribution itself refuses manifests over 4 MiB).
pub const MAX_DOCUMENT_BYTES: u64 = 4 << 20;

pub type Result<T> = std::result::Result<T, RegistryError>;

/// The cache image as the registry holds it.
#[derive(Debug, Clone, Serialize)]
pub struct CacheEvidence {
    pub repository: String,
    pub media_type: String,
    /// `None` when the repository holds something that is not a BuildKit cache.
    pub manifest: Option<CacheManifest>,
    /// Cache layers that `lab:cachetest` does not reference: intermediate stages, proof of mode=max.
    pub layers_not_in_image: usize,
    pub bytes_not_in_image: u64,
}

/// A client of one registry, plain HTTP or HTTPS.
#[derive(Debug, Clone)]
pub struct RegistryClient {
    base: String,
    http: reqwest::Client,
    /// Basic auth, for a registry7 published beyond loopback (a remote node's run).
    login: Option<(String, String)>,
}

/// Each blob or manifest checked and how the registry answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Presence {
    pub what: String,
    pub digest: Digest,
    pub status: u16,
}

impl RegistryClient {
    /// `host_port` like `localhost:5000`; `https://…` or `http://…` may be given in front.
    pub fn new(host_port: &str) -> RegistryClient {
        let base = if host_port.contains("://") {
            host_port.trim_end_matches('/').to_string()
        } else {
            format!("http://{host_port}")
        };
        // No connection is kept idle between requests: one the registry (or Docker's port proxy)
        // has dropped without a word hangs the next request until its timeout (seen under a
        // parallel batch); a fresh connection to a local registry costs well under a millisecond.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("a TLS backend is compiled in");
        RegistryClient { base, http, login: None }
    }

    /// The same client, sending `user:password` with every request.
    pub fn with_login(mut self, user: &str, password: &str) -> RegistryClient {
        self.login = Some((user.to_string(), password.to_string()));
        self
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// One request, within a deadline that fits it (a blob may be large; anything else is a
    /// small document). A request that could not be sent (a refused connect, a connection
    /// dropped) is tried again twice; so is a GET or HEAD that got no answer in time, as
    /// reading changes nothing. A DELETE that timed out is not repeated: it may have been done.
    async fn send(&self, method: Method, path: &str, accept: Option<&str>) -> Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        let deadline =
            if path.contains("/blobs/") && method == Method::GET { BLOB_DEADLINE } else { DOCUMENT_DEADLINE };
        let reads = method == Method::GET || method == Method::HEAD;
        let mut attempt = 0;
        loop {
            let mut req = self.http.request(method.clone(), &url).timeout(deadline);
            if let Some((user, password)) = &self.login {
                req = req.basic_auth(user, Some(password));
            }
            if let Some(a) = accept {
                req = req.header(header::ACCEPT, a);
            }
            match req.send().await {
                Ok(resp) => return Ok(resp),
                Err(e)
                    if attempt < 2
                        && (e.is_connect() || e.is_request() || e.is_timeout())
                        && (reads || !e.is_timeout()) =>
                {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(source) => return Err(RegistryError::Unreachable { url, source }),
            }
        }
    }

    async fn fail(method: Method, resp: reqwest::Response) -> RegistryError {
        let url = resp.url().to_string();
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default().trim().chars().take(300).collect();
        RegistryError::Status { method, url, status, body }
    }

    /// `GET /v2/`: 200 (or 401) with `Docker-Distribution-API-Version` when the server is a
    /// registry; a web server that is not one is told apart from a registry that lacks an image.
    pub async fn ping(&self) -> Result<StatusCode> {
        let resp = self.send(Method::GET, "/v2/", None).await?;
        let speaks_distribution = resp.headers().contains_key("Docker-Distribution-API-Version");
        match resp.status() {
            s if (s.is_success() || s == StatusCode::UNAUTHORIZED) && speaks_distribution => Ok(s),
            status => Err(RegistryError::NotARegistry { url: resp.url().to_string(), status }),
        }
    }

    /// The body, refusing one over `MAX_DOCUMENT_BYTES` without holding more than that.
    async fn capped_body(resp: reqwest::Response) -> Result<Vec<u8>> {
        let url = resp.url().to_string();
        let too_large = || RegistryError::TooLarge { url: url.clone(), max: MAX_DOCUMENT_BYTES };
        if resp.content_length().is_some_and(|n| n > MAX_DOCUMENT_BYTES) {
            return Err(too_large());
        }
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) =
            resp.chunk().await.map_err(|source| RegistryError::Unreachable { url: url.clone(), source })?
        {
            if (body.len() + chunk.len()) as u64 > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// The manifest behind a tag or digest; `None` on 404.
    pub async fn manifest(&self, repo: &str, reference: &str) -> Result<Option<Fetched>> {
        let resp =
            self.send(Method::GET, &format!("/v2/{repo}/manifests/{reference}"), Some(manifest::ACCEPT_ALL)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::fail(Method::GET, resp).await);
        }
        let url = resp.url().to_string();
        let digest = content_digest(&resp).ok_or_else(|| RegistryError::NoDigest { url: url.clone() })?;
        let header_type = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_string);
        let bytes = Self::capped_body(resp).await?;
        let media_type = Manifest::declared_type(&bytes).or(header_type).unwrap_or_default();
        let body = Manifest::parse(&media_type, &bytes).map_err(|source| RegistryError::Manifest { url, source })?;
        Ok(Some(Fetched { digest, media_type, size: bytes.len() as u64, body }))
    }

    /// HEAD of a manifest: its digest, `None` on 404.
    pub async fn manifest_digest(&self, repo: &str, reference: &str) -> Result<Option<Digest>> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self.send(Method::HEAD, &path, Some(manifest::ACCEPT_ALL)).await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => {
                content_digest(&resp).map(Some).ok_or(RegistryError::NoDigest { url: resp.url().to_string() })
            }
            _ => Err(Self::fail(Method::HEAD, resp).await),
        }
    }

    pub async fn manifest_status(&self, repo: &str, reference: &str) -> Result<u16> {
        let path = format!("/v2/{repo}/manifests/{reference}");
        Ok(self.send(Method::HEAD, &path, Some(manifest::ACCEPT_ALL)).await?.status().as_u16())
    }

    pub async fn blob_status(&self, repo: &str, digest: &Digest) -> Result<u16> {
        Ok(self.blob_head(repo, digest).await?.0)
    }

    /// HEAD of a blob: the status and, when it exists, its size (Content-Length).
    pub async fn blob_head(&self, repo: &str, digest: &Digest) -> Result<(u16, Option<u64>)> {
        let resp = self.send(Method::HEAD, &format!("/v2/{repo}/blobs/{digest}"), None).await?;
        let size = resp.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse().ok());
        Ok((resp.status().as_u16(), size.filter(|_| resp.status().is_success())))
    }

    /// A small JSON blob (an image config).
    /// An image's config (os, architecture, layers' diff ids), as oci-spec types it.
    pub async fn image_config(&self, repo: &str, digest: &Digest) -> Result<oci_spec::image::ImageConfiguration> {
        let resp = self.send(Method::GET, &format!("/v2/{repo}/blobs/{digest}"), None).await?;
        self.json(resp).await
    }

    /// Tags of a repository; empty when it has none. Registry 2.8 then answers `"tags": null`,
    /// which oci-spec's `TagList` (a `Vec`) refuses: hence a type of its own.
    pub async fn tags(&self, repo: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct Tags {
            tags: Option<Vec<String>>,
        }
        let resp = self.send(Method::GET, &format!("/v2/{repo}/tags/list"), None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        let list: Tags = self.json(resp).await?;
        Ok(list.tags.unwrap_or_default())
    }

    pub async fn catalog(&self) -> Result<Vec<String>> {
        let resp = self.send(Method::GET, "/v2/_catalog", None).await?;
        let list: oci_spec::distribution::RepositoryList = self.json(resp).await?;
        Ok(list.repositories().clone())
    }

    async fn json<T: serde::de::DeserializeOwned>(&self, resp: reqwest::Response) -> Result<T> {
        if !resp.status().is_success() {
            return Err(Self::fail(Method::GET, resp).await);
        }
        let url = resp.url().to_string();
        let bytes = Self::capped_body(resp).await?;
        serde_json::from_slice(&bytes)
            .map_err(|e| RegistryError::Manifest { url, source: manifest::ManifestError::Json(e) })
    }

    /// `DELETE /v2/<repo>/manifests/<digest>`: the status (202 when deleted).
    pub async fn delete_manifest(&self, repo: &str, digest: &Digest) -> Result<u16> {
        let resp = self.send(Method::DELETE, &format!("/v2/{repo}/manifests/{digest}"), None).await?;
        Ok(resp.status().as_u16())
    }

    /// The image behind a tag, with every part it references checked (`missing` lists those
    /// that do not answer 200).
    pub async fn image(&self, repo: &str, tag: &str) -> Result<Option<ImageSummary>> {
        let Some(top) = self.manifest(repo, tag).await? else { return Ok(None) };
        let children = self.children(repo, &top).await?;
        let mut summary = ImageSummary::from_fetched(&top);
        summary.missing = self.parts_of(repo, &top, &children).await?.into_iter().filter(|p| p.status != 200).collect();
        summary.binaries = self.binaries_of(repo, platform_images_of(&children)).await?;
        Ok(Some(summary))
    }

    pub async fn cache(&self, repo: &str, tag: &str) -> Result<Option<(Fetched, Option<CacheManifest>)>> {
        Ok(self.manifest(repo, tag).await?.map(|f| {
            let cache = CacheManifest::from_fetched(&f);
            (f, cache)
        }))
    }

    /// The cache repository's manifest, and which of its layers `image` lacks (the
    /// intermediate stages that only mode=max exports).
    pub async fn cache_evidence(&self, cache: &ImageRef, image: &ImageRef) -> Result<Option<CacheEvidence>> {
        let Some((fetched, manifest)) = self.cache(&cache.repository, &cache.reference).await? else {
            return Ok(None);
        };
        // A layer is the image's when its blob is, or its content is: compared by diff id, a
        // cache exported with another compression (mode=min, compression=zstd) holds no layer
        // the image lacks, though no blob digest is the same.
        let image_blobs = self.image_blobs(&image.repository, &image.reference).await?;
        let image_diff_ids = self.image_diff_ids(&image.repository, &image.reference).await?;
        let in_image = |l: &BlobRef| {
            image_blobs.contains(&l.digest) || l.uncompressed.as_ref().is_some_and(|u| image_diff_ids.contains(u))
        };
        let extra: Vec<_> = manifest.iter().flat_map(|m| m.layers.iter()).filter(|l| !in_image(l)).collect();
        Ok(Some(CacheEvidence {
            repository: cache.repository.clone(),
            media_type: fetched.media_type,
            layers_not_in_image: extra.len(),
            bytes_not_in_image: extra.iter().map(|l| l.size).sum(),
            manifest,
        }))
    }

    /// The manifests an index names, each with what the registry answered (`None`: 404); none
    /// for a single image.
    pub async fn children(&self, repo: &str, top: &Fetched) -> Result<Vec<(manifest::IndexEntry, Option<Fetched>)>> {
        let Manifest::Index(i) = &top.body else { return Ok(Vec::new()) };
        let mut out = Vec::new();
        for e in i.manifests().iter().map(manifest::IndexEntry::of) {
            let f = self.manifest(repo, e.manifest.digest.as_str()).await?;
            out.push((e, f));
        }
        Ok(out)
    }

    /// The platform images of an index (attestations left out), or the image itself.
    async fn platform_images(&self, repo: &str, reference: &str) -> Result<Vec<(Option<Platform>, Fetched)>> {
        let Some(top) = self.manifest(repo, reference).await? else { return Ok(Vec::new()) };
        if let Manifest::Image(_) = &top.body {
            return Ok(vec![(None, top)]);
        }
        let children = self.children(repo, &top).await?;
        Ok(platform_images_of(&children).into_iter().map(|(p, f)| (Some(p), f)).collect())
    }

    /// The diff ids (uncompressed layer digests) of every platform image, from their configs.
    pub async fn image_diff_ids(&self, repo: &str, reference: &str) -> Result<BTreeSet<Digest>> {
        let mut ids = BTreeSet::new();
        for (_, f) in self.platform_images(repo, reference).await? {
            if let Manifest::Image(m) = &f.body {
                let config = BlobRef::of(m.config());
                if let Ok(c) = self.image_config(repo, &config.digest).await {
                    ids.extend(c.rootfs().diff_ids().iter().filter_map(|d| d.parse().ok()));
                }
            }
        }
        Ok(ids)
    }

    /// Everything an image references: its manifest(s), configs and layers.
    pub async fn image_parts(&self, repo: &str, reference: &str) -> Result<Vec<Presence>> {
        let Some(top) = self.manifest(repo, reference).await? else {
            return Ok(Vec::new());
        };
        let children = self.children(repo, &top).await?;
        self.parts_of(repo, &top, &children).await
    }

    /// The presence of `top`, of each manifest it names and of their configs and layers.
    pub async fn parts_of(
        &self,
        repo: &str,
        top: &Fetched,
        children: &[(manifest::IndexEntry, Option<Fetched>)],
    ) -> Result<Vec<Presence>> {
        let mut parts = vec![Presence { what: "index".into(), digest: top.digest.clone(), status: 200 }];
        let mut found: Vec<(String, &Fetched)> = Vec::new();
        if let Manifest::Image(_) = &top.body {
            found.push(("image".into(), top));
        }
        for (e, f) in children {
            match f {
                Some(f) => found.push((e.platform.to_string(), f)),
                None => parts.push(Presence {
                    what: format!("{} manifest", e.platform),
                    digest: e.manifest.digest.clone(),
                    status: 404,
                }),
            }
        }
        for (label, f) in found {
            parts.push(Presence { what: format!("{label} manifest"), digest: f.digest.clone(), status: 200 });
            if let Manifest::Image(m) = &f.body {
                for (what, d) in std::iter::once(("config", m.config())).chain(m.layers().iter().map(|l| ("layer", l)))
                {
                    let digest = BlobRef::of(d).digest;
                    let status = self.blob_status(repo, &digest).await?;
                    parts.push(Presence { what: format!("{label} {what}"), digest, status });
                }
            }
        }
        Ok(parts)
    }

    /// What the ELF binaries in each platform's image are built for (`binaries`), reading every
    /// layer. Layers stream through a temp file, so memory stays flat whatever their size.
    pub async fn binaries_of(
        &self,
        repo: &str,
        images: Vec<(Platform, Fetched)>,
    ) -> Result<Vec<binaries::PlatformBinaries>> {
        let mut found = Vec::new();
        for (platform, f) in images {
            let Manifest::Image(m) = &f.body else { continue };
            let mut scan = binaries::LayerScan::new(platform);
            scan.result.layers = m.layers().iter().map(|l| (BlobRef::of(l).digest, l.size())).collect();
            for layer in m.layers().iter().rev() {
                let media_type = layer.media_type().to_string();
                let Some(file) = self.blob_to_file(repo, &BlobRef::of(layer).digest).await? else {
                    scan.result.unread.push(format!("layer {} is not served", layer.digest()));
                    continue;
                };
                scan = tokio::task::spawn_blocking(move || {
                    scan.layer(&media_type, std::io::BufReader::new(file));
                    scan
                })
                .await
                .expect("the layer scan does not panic");
            }
            found.push(scan.result);
        }
        Ok(found)
    }

    /// A blob streamed into an unnamed temp file, rewound; `None` on 404.
    async fn blob_to_file(&self, repo: &str, digest: &Digest) -> Result<Option<std::fs::File>> {
        use std::io::{Seek, Write};
        let mut resp = self.send(Method::GET, &format!("/v2/{repo}/blobs/{digest}"), None).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Self::fail(Method::GET, resp).await);
        }
        let url = resp.url().to_string();
        let io = |e: std::io::Error| RegistryError::Io { url: url.clone(), source: e };
        let mut file = tempfile::tempfile().map_err(io)?;
        while let Some(chunk) =
            resp.chunk().await.map_err(|source| RegistryError::Unreachable { url: url.clone(), source })?
        {
            file.write_all(&chunk).map_err(io)?;
        }
        file.rewind().map_err(io)?;
        Ok(Some(file))
    }

    /// The blob digests an image references (for "cache-only" = cache minus these).
    pub async fn image_blobs(&self, repo: &str, reference: &str) -> Result<BTreeSet<Digest>> {
        Ok(self.image_parts(repo, reference).await?.into_iter().map(|p| p.digest).collect())
    }
}

/// The platform images among an index's children: attestations and manifests that answered
/// 404 left out.
pub fn platform_images_of(children: &[(manifest::IndexEntry, Option<Fetched>)]) -> Vec<(Platform, Fetched)> {
    children
        .iter()
        .filter(|(e, _)| !e.attestation)
        .filter_map(|(e, f)| Some((e.platform.clone(), f.clone()?)))
        .collect()
}

fn content_digest(resp: &reqwest::Response) -> Option<Digest> {
    resp.headers().get("Docker-Content-Digest")?.to_str().ok()?.parse().ok()
}
