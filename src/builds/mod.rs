//! The lab's two builds: buildctl in the node, with the registry cache in mode=max.

pub mod dockerfile;
pub mod log;

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::environment::Node;
use crate::platform::Platform;
use crate::Error;
pub use log::{BuildLog, CacheExport, CacheImport, PlatformSteps, Step, Vertex, VertexState};

/// What one build is asked to do; `args()` is the lab's command as buildctl takes it.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSpec {
    /// Where the node reaches registry7, `host:5000`.
    pub registry: String,
    pub context: String,
    pub dockerfile: String,
    pub platforms: Vec<Platform>,
    pub image: String,
    pub cache: String,
    pub cache_mode: String,
}

impl BuildSpec {
    pub fn lab(registry: &str, dockerfile: &str) -> BuildSpec {
        BuildSpec {
            registry: registry.to_string(),
            context: "/lab".into(),
            dockerfile: dockerfile.to_string(),
            platforms: Platform::lab_targets(),
            image: "lab:cachetest".into(),
            cache: "cachedata1".into(),
            cache_mode: "max".into(),
        }
    }

    /// One submission of many in a shared node: its own context in the node (its registry7 is renewed).
    pub fn for_submission(registry: &str, dockerfile: &str, slug: &str) -> BuildSpec {
        BuildSpec { context: format!("/lab/{slug}"), ..BuildSpec::lab(registry, dockerfile) }
    }

    pub fn image_ref(&self) -> String {
        format!("{}/{}", self.registry, self.image)
    }

    pub fn cache_ref(&self) -> String {
        format!("{}/{}", self.registry, self.cache)
    }

    pub fn args(&self) -> Vec<String> {
        let platforms = self.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
        [
            "buildctl",
            "build",
            "--frontend",
            "dockerfile.v0",
            &format!("--local=context={}", self.context),
            &format!("--local=dockerfile={}", self.context),
            &format!("--opt=filename={}", self.dockerfile),
            &format!("--opt=platform={platforms}"),
            &format!("--output=type=image,name={},push=true,oci-mediatypes=true", self.image_ref()),
            &format!("--export-cache=type=registry,ref={},mode={}", self.cache_ref(), self.cache_mode),
            &format!("--import-cache=type=registry,ref={}", self.cache_ref()),
            "--progress=plain",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The same build as the lab's `docker buildx build` command (for reports).
    pub fn buildx_command(&self) -> String {
        let platforms = self.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
        format!(
            "docker buildx build -f {} --platform {platforms} -t {} --push --cache-to type=registry,ref={},mode={} --cache-from type=registry,ref={} .",
            self.dockerfile, self.image_ref(), self.cache_ref(), self.cache_mode, self.cache_ref()
        )
    }
}

/// A finished build: judged by buildctl's exit code, explained by its log.
#[derive(Debug, Clone, Serialize)]
pub struct BuildOutcome {
    pub exit_code: i64,
    #[serde(skip)]
    pub raw_log: String,
    #[serde(skip)]
    pub log: BuildLog,
    pub seconds: f64,
}

impl BuildOutcome {
    pub fn succeeded(&self) -> bool {
        self.exit_code == 0
    }
}

/// Runs the build in the node, handing each progress line to `on_line` as it comes.
pub async fn run(
    node: &Node,
    spec: &BuildSpec,
    timeout: Duration,
    on_line: impl FnMut(&str),
) -> Result<BuildOutcome, Error> {
    let args = spec.args();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let out = node.exec_streaming(&argv, timeout, on_line).await?;
    Ok(BuildOutcome {
        exit_code: out.exit_code,
        log: BuildLog::parse(&out.stderr),
        raw_log: out.stderr,
        seconds: started.elapsed().as_secs_f64(),
    })
}
