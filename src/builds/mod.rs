//! The lab's two builds: buildctl in the node, with the registry cache in mode=max.

pub mod buildx;
pub mod dockerfile;
pub mod failure;
pub mod log;
pub mod log_text;
mod rawjson;
mod tty;
pub mod vertex;

use std::time::{Duration, Instant};

use serde::Serialize;

use tokio_util::sync::CancellationToken;

use crate::environment::isolation::LimitHit;
use crate::environment::{ExecEnd, LabEnvironment, Node};
use crate::platform::Platform;
use crate::reference::ImageRef;
use crate::Error;
pub use log::{BuildLog, CacheExport, CacheImport, ExpectedStep, PlatformSteps, Step, Vertex, VertexState};

/// What one build is asked to do; `args()` is the lab's command as buildctl takes it.
#[derive(Debug, Clone, Serialize)]
pub struct BuildSpec {
    /// Where the node reaches registry7, `host:5000`.
    pub registry: String,
    pub context: String,
    pub dockerfile: String,
    pub platforms: Vec<Platform>,
    /// The lab's image, `lab:cachetest`, in registry7.
    pub image: ImageRef,
    /// The lab's cache image, `cachedata1` (its tag `latest`), in registry7.
    pub cache: ImageRef,
    pub cache_mode: String,
    /// registry7 is plain HTTP to a node lab7 did not configure (a remote node): the push and
    /// the cache say so themselves (`registry.insecure=true`).
    #[serde(default)]
    pub insecure_registry: bool,
}

impl BuildSpec {
    /// The lab's build of the app uploaded to `context` in the node.
    pub fn lab(registry: &str, dockerfile: &str, context: &str) -> BuildSpec {
        BuildSpec {
            registry: registry.to_string(),
            context: context.to_string(),
            dockerfile: dockerfile.to_string(),
            platforms: Platform::lab_targets(),
            image: "lab:cachetest".parse().expect("the lab's image reference"),
            cache: "cachedata1".parse().expect("the lab's cache reference"),
            cache_mode: "max".into(),
            insecure_registry: false,
        }
    }

    /// The lab's build of the app uploaded to `context` in `env`, as its node runs it: registry7
    /// by the name the node reaches it at, plain HTTP said in the options for a remote node.
    pub async fn for_environment(env: &LabEnvironment, dockerfile: &str, context: &str) -> Result<BuildSpec, Error> {
        let mut spec = BuildSpec::lab(&env.registry_host().await?, dockerfile, context);
        spec.insecure_registry = env.node.remote.is_some();
        Ok(spec)
    }

    /// The registry options a remote node needs, `""` for lab7's own node.
    fn registry_opts(&self) -> &'static str {
        if self.insecure_registry {
            ",registry.insecure=true"
        } else {
            ""
        }
    }

    pub fn image_ref(&self) -> String {
        format!("{}/{}", self.registry, self.image)
    }

    /// The cache ref as the lab writes it: without a tag (BuildKit uses `latest`).
    pub fn cache_ref(&self) -> String {
        format!("{}/{}", self.registry, self.cache.repository)
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
            &format!(
                "--output=type=image,name={},push=true,oci-mediatypes=true{}",
                self.image_ref(),
                self.registry_opts()
            ),
            &format!(
                "--export-cache=type=registry,ref={},mode={}{}",
                self.cache_ref(),
                self.cache_mode,
                self.registry_opts()
            ),
            &format!("--import-cache=type=registry,ref={}{}", self.cache_ref(), self.registry_opts()),
            "--progress=plain",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// The lab's `docker buildx build` flags after `-f`: platforms, the image pushed, the
    /// registry cache exported and imported.
    fn buildx_lab_flags(&self) -> Vec<String> {
        let platforms = self.platforms.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
        vec![
            "--platform".into(),
            platforms,
            "-t".into(),
            self.image_ref(),
            "--push".into(),
            "--cache-to".into(),
            format!("type=registry,ref={},mode={}", self.cache_ref(), self.cache_mode),
            "--cache-from".into(),
            format!("type=registry,ref={}", self.cache_ref()),
        ]
    }

    /// The lab's command as `docker buildx build` takes it on the app's folder, on `builder`.
    pub fn buildx_args(&self, builder: &str, app_dir: &std::path::Path) -> Vec<String> {
        let dockerfile = app_dir.join(&self.dockerfile).to_string_lossy().into_owned();
        let mut args: Vec<String> = vec!["buildx".into(), "build".into(), "--builder".into(), builder.into()];
        args.extend(["-f".into(), dockerfile]);
        args.extend(self.buildx_lab_flags());
        args.extend(["--progress=plain".into(), app_dir.to_string_lossy().into_owned()]);
        args
    }

    /// The same build as the lab's `docker buildx build` command (for reports).
    pub fn buildx_command(&self) -> String {
        format!("docker buildx build -f {} {} .", self.dockerfile, self.buildx_lab_flags().join(" "))
    }
}

/// How a build ended. Only `Exited(0)` is a success; a timeout is the student's failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "end")]
pub enum BuildEnd {
    Exited {
        code: i64,
    },
    TimedOut {
        after_seconds: u64,
    },
    /// lab7 was interrupted (SIGINT, SIGTERM, SIGHUP) while the build ran or before it started.
    Interrupted,
}

/// A finished build: judged by how buildctl ended, explained by its log.
#[derive(Debug, Clone, Serialize)]
pub struct BuildOutcome {
    #[serde(flatten)]
    pub end: BuildEnd,
    #[serde(skip)]
    pub raw_log: String,
    #[serde(skip)]
    pub log: BuildLog,
    pub seconds: f64,
    /// Node limits the build ran into: the node's cgroup counts, and the failed step's output.
    pub limits_hit: Vec<LimitHit>,
}

impl BuildOutcome {
    pub fn succeeded(&self) -> bool {
        self.end == BuildEnd::Exited { code: 0 }
    }

    /// buildctl's exit code, when it exited.
    pub fn exit_code(&self) -> Option<i64> {
        match self.end {
            BuildEnd::Exited { code } => Some(code),
            _ => None,
        }
    }

    /// Stopped before buildctl ended (timeout, interruption): its processes may still run in the node.
    pub fn stopped_early(&self) -> bool {
        matches!(self.end, BuildEnd::TimedOut { .. } | BuildEnd::Interrupted)
    }

    /// A build that never started because the run was interrupted first.
    pub fn not_started() -> BuildOutcome {
        BuildOutcome {
            end: BuildEnd::Interrupted,
            raw_log: String::new(),
            log: BuildLog::parse(""),
            seconds: 0.0,
            limits_hit: Vec::new(),
        }
    }

    /// How it ended, in a few words: `failed (exit code 1)`, `timed out after 600 s`.
    pub fn ending(&self) -> String {
        match self.end {
            BuildEnd::Exited { code: 0 } => "succeeded".into(),
            BuildEnd::Exited { code } => format!("failed (exit code {code})"),
            BuildEnd::TimedOut { after_seconds } => format!("timed out after {after_seconds} s"),
            BuildEnd::Interrupted => "was interrupted".into(),
        }
    }

    /// Why it did not succeed, in words, or `None` when it did.
    pub fn problem(&self) -> Option<String> {
        let limits = match self.limits_hit.as_slice() {
            [] => String::new(),
            hit => {
                let hit: Vec<String> = hit.iter().map(LimitHit::to_string).collect();
                format!("; the build ran into the node's {}", hit.join(" and "))
            }
        };
        let failure = self.log.first_failure().map(|f| format!(": {f}")).unwrap_or_default();
        match self.end {
            BuildEnd::Exited { code: 0 } => None,
            BuildEnd::Exited { code } => Some(format!("exited {code}{failure}{limits}")),
            BuildEnd::TimedOut { after_seconds } => {
                Some(format!("did not finish within {after_seconds} s (--build-timeout) and was stopped{limits}"))
            }
            BuildEnd::Interrupted => Some("was interrupted before it finished".into()),
        }
    }
}

/// Runs the build in the node, handing each progress line to `on_line` as it comes. A build
/// that times out or is interrupted keeps the log it printed so far.
pub async fn run(
    node: &Node,
    spec: &BuildSpec,
    timeout: Duration,
    cancel: &CancellationToken,
    on_line: impl FnMut(&str),
) -> Result<BuildOutcome, Error> {
    let args = spec.args();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let started = Instant::now();
    let out = node.exec_build(&argv, timeout, cancel, on_line).await?;
    Ok(outcome(node, out, started).await)
}

/// The same build with `docker buildx build` on the app's folder, through `builder`.
pub async fn run_buildx(
    builder: &buildx::BuildxBuilder,
    node: &Node,
    spec: &BuildSpec,
    app_dir: &std::path::Path,
    timeout: Duration,
    cancel: &CancellationToken,
    on_line: impl FnMut(&str),
) -> Result<BuildOutcome, Error> {
    let started = Instant::now();
    let out = builder.build(spec, app_dir, timeout, cancel, on_line).await?;
    Ok(outcome(node, out, started).await)
}

/// How a build ended, with the node limits it ran into when it failed.
async fn outcome(node: &Node, out: crate::environment::Exec, started: Instant) -> BuildOutcome {
    let end = match out.end {
        ExecEnd::Exited(code) => BuildEnd::Exited { code },
        ExecEnd::TimedOut(after) => BuildEnd::TimedOut { after_seconds: after.as_secs() },
        ExecEnd::Cancelled => BuildEnd::Interrupted,
    };
    let mut limits_hit = Vec::new();
    if end != (BuildEnd::Exited { code: 0 }) && end != BuildEnd::Interrupted {
        limits_hit = node.limits_hit().await;
        // The failed step's files and processes are gone by now; its output still says why.
        if out.stderr.contains("No space left on device") {
            limits_hit.push(LimitHit::BuildStorage);
        }
        let fork_refused = ["can't fork", "fork: Resource temporarily unavailable", "fork: retry"];
        if !limits_hit.iter().any(|l| matches!(l, LimitHit::Processes { .. }))
            && fork_refused.iter().any(|f| out.stderr.contains(f))
        {
            limits_hit.push(LimitHit::Processes { refused: None });
        }
    }
    BuildOutcome {
        end,
        log: BuildLog::parse(&out.stderr),
        raw_log: out.stderr,
        seconds: started.elapsed().as_secs_f64(),
        limits_hit,
    }
}
