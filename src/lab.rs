//! The whole lab on one application: environment → build 1 → prune → build 2 →
//! registry contents → deletion. Each stage leaves its evidence in `LabRun`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::builds::buildx::{BuildxBuilder, Client};
use crate::builds::dockerfile::DockerfileSummary;
use crate::builds::failure::FailureCause;
use crate::builds::{self, BuildOutcome, BuildSpec};
use crate::environment::{EnvOptions, Images, LabEnvironment};
use crate::platform::Platform;
use crate::registry::deletion::{self, DeletionEvidence};
use crate::registry::{CacheEvidence, ImageSummary};
use crate::Error;

/// Where the lab is and how it runs.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub app_dir: PathBuf,
    pub dockerfile: String,
    pub build_timeout: Duration,
    /// The bonus deletes the cache; off for a read-only look.
    pub delete_cache: bool,
    /// The node's limits, what its RUN steps may reach, the context's cap.
    pub env: EnvOptions,
    /// Cancelled on SIGINT/SIGTERM/SIGHUP: the run stops, cleans up and reports what it has.
    pub cancel: CancellationToken,
    /// Who runs the builds: buildctl in the node, or the student's `docker buildx`.
    pub client: Client,
}

/// Longest Dockerfile lab7 reads (a Dockerfile is a few kilobytes).
const MAX_DOCKERFILE_BYTES: u64 = 1 << 20;

impl LabOptions {
    pub fn new(app_dir: impl Into<PathBuf>) -> LabOptions {
        LabOptions {
            app_dir: app_dir.into(),
            dockerfile: "Dockerfile_multi".into(),
            build_timeout: Duration::from_secs(600),
            delete_cache: true,
            env: EnvOptions::new(),
            cancel: CancellationToken::new(),
            client: Client::default(),
        }
    }

    /// Bad input is refused before any container starts.
    pub fn validate(&self) -> Result<DockerfileSummary, Error> {
        let dir = &self.app_dir;
        if !dir.is_dir() {
            return Err(Error::input(
                format!("{}: no such directory", dir.display()),
                "give the folder that holds your Dockerfile_multi and the app's sources",
            ));
        }
        let file = dockerfile_inside(dir, &self.dockerfile)?;
        let text = read_small(&file, MAX_DOCKERFILE_BYTES).map_err(|e| {
            Error::input(format!("{}: {e}", file.display()), "put the lab's Dockerfile there, or name it with --file")
        })?;
        let summary = DockerfileSummary::parse(&text);
        if summary.has_no_stage() {
            return Err(Error::input_only(format!(
                "{}: no FROM instruction; this is not a Dockerfile",
                file.display()
            )));
        }
        Ok(summary)
    }
}

/// The Dockerfile must be inside the app's folder, as buildx's `-f` inside the context is:
/// `--file ../x` or a link out of the folder is a usage error, not a grade.
fn dockerfile_inside(dir: &Path, name: &str) -> Result<PathBuf, Error> {
    let file = dir.join(name);
    let outside = || {
        Error::input(
            format!("--file {name}: the Dockerfile must be inside {}", dir.display()),
            "name a file in the app's folder, e.g. --file Dockerfile_multi",
        )
    };
    if Path::new(name).is_absolute() || Path::new(name).components().any(|c| c == std::path::Component::ParentDir) {
        return Err(outside());
    }
    if let (Ok(root), Ok(real)) = (dir.canonicalize(), file.canonicalize()) {
        if !real.starts_with(root) {
            return Err(outside());
        }
    }
    Ok(file)
}

/// Reads a small text file: refuses what is not a regular file (a FIFO, /dev/zero) or is
/// over `max` bytes, without reading it.
pub fn read_small(path: &Path, max: u64) -> Result<String, String> {
    read_small_bytes(path, max).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// A file's bytes, refused when it is not a regular file or is over `max` bytes.
pub fn read_small_bytes(path: &Path, max: u64) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    if meta.len() > max {
        return Err(format!("{} bytes, over lab7's limit of {} bytes for this kind of file", meta.len(), max));
    }
    use std::io::Read;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    std::fs::File::open(path).and_then(|f| f.take(max + 1).read_to_end(&mut bytes)).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("over lab7's limit of {max} bytes for this kind of file"));
    }
    Ok(bytes)
}

/// Stages as the progress view shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Environment,
    Build1,
    Build2,
    Checks,
    Deletion,
}

impl Stage {
    pub fn title(self) -> &'static str {
        match self {
            Stage::Environment => "environment",
            Stage::Build1 => "build 1",
            Stage::Build2 => "build 2",
            Stage::Checks => "checks",
            Stage::Deletion => "deletion",
        }
    }
}

/// What a long run tells whoever watches it.
pub trait Progress: Send + Sync {
    fn stage_started(&self, _stage: Stage) {}
    fn stage_finished(&self, _stage: Stage, _seconds: f64) {}
    fn build_line(&self, _stage: Stage, _line: &str) {}
}

/// Progress to nowhere.
pub struct Silent;
impl Progress for Silent {}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NodeInfo {
    pub platforms: Vec<Platform>,
    pub buildkit_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Timing {
    pub stage: Stage,
    pub seconds: f64,
}

impl Timing {
    pub fn stage_title(&self) -> &'static str {
        self.stage.title()
    }
}

/// Everything one run saw.
#[derive(Debug, Clone, Serialize)]
pub struct LabRun {
    pub app: String,
    pub dockerfile: String,
    pub dockerfile_summary: DockerfileSummary,
    pub spec: BuildSpec,
    pub run_id: String,
    pub images: Images,
    pub node: NodeInfo,
    pub build1: BuildOutcome,
    pub build2: Option<BuildOutcome>,
    pub repositories: Vec<String>,
    pub image: Option<ImageSummary>,
    pub cache: Option<CacheEvidence>,
    pub deletion: Option<DeletionEvidence>,
    /// Whether the bonus (deleting the cache) was part of this run.
    pub deletion_asked: bool,
    /// Why a later stage did not run (a failed build, a missing cache, an interruption).
    pub stopped: Option<String>,
    /// The run was interrupted (SIGINT, SIGTERM, SIGHUP): what it holds is partial.
    pub interrupted: bool,
    pub timings: Vec<Timing>,
}

/// Runs the lab in an environment of its own, started for it and removed after (also when
/// interrupted). Errors are for the environment; a failing student build is evidence.
pub async fn run(opts: &LabOptions, images: &Images, progress: &dyn Progress) -> Result<LabRun, Error> {
    let dockerfile_summary = opts.validate()?;
    progress.stage_started(Stage::Environment);
    let t = Instant::now();
    let started = tokio::select! {
        env = LabEnvironment::start(images, &opts.env) => Some(env?),
        _ = opts.cancel.cancelled() => None,
    };
    let Some(mut env) = started else {
        return Ok(LabRun::interrupted_before_start(opts, images, dockerfile_summary));
    };
    let graded = async {
        let context = env.node.upload(&opts.app_dir, "app", &opts.dockerfile, opts.env.max_context).await?;
        let spec = BuildSpec::for_environment(&env, &opts.dockerfile, &context).await?;
        let started = Timing { stage: Stage::Environment, seconds: t.elapsed().as_secs_f64() };
        progress.stage_finished(Stage::Environment, started.seconds);
        run_in(&mut env, opts, &dockerfile_summary, spec, started, progress).await
    }
    .await;
    let removed = env.shutdown().await;
    let run = graded?;
    removed?;
    Ok(run)
}

/// A build that failed because lab7's offline docker.io mirror lacks an image is the
/// environment's failure, not the student's: on a machine that reaches Docker Hub the same
/// Dockerfile may build. It stops the run as an environment error (exit 2) naming the image.
fn blame_environment(build: &BuildOutcome, images: &Images) -> Result<(), Error> {
    let Some(mirror) = &images.mirror else { return Ok(()) };
    let Some(FailureCause::MissingImage { reference, frontend }) = build.log.failure_cause() else { return Ok(()) };
    let on_hub =
        reference.starts_with("docker.io/") || !reference.split('/').next().is_some_and(|h| h.contains(['.', ':']));
    if !on_hub {
        return Ok(());
    }
    let what = if frontend { "the `# syntax=` frontend" } else { "the base image" };
    Err(Error::Environment {
        what: format!(
            "the build needs {what} {reference}, and this machine has no Docker Hub: lab7's offline docker.io mirror ({mirror}) holds only busybox:{}",
            crate::environment::pins::pin("BUSYBOX_TAG")
        ),
        fix: Some(
            "grade this submission on a machine that reaches Docker Hub (Docker pulls the official images there), or give LAB7_MIRROR_IMAGE a registry image holding the image".into(),
        ),
    })
}

/// Runs the lab in an environment that may serve several apps in turn: the app must already
/// be in the node at `spec.context`, and registry7 must hold nothing of another app.
/// `dockerfile_summary` is what `opts.validate()` gave the caller before it set anything up.
pub async fn run_in(
    env: &mut LabEnvironment,
    opts: &LabOptions,
    dockerfile_summary: &DockerfileSummary,
    spec: BuildSpec,
    environment: Timing,
    progress: &dyn Progress,
) -> Result<LabRun, Error> {
    let node = node_info(&env.node.workers().await?);
    let mut timings = vec![environment];
    let mut timed = |stage: Stage, started: Instant| {
        let seconds = started.elapsed().as_secs_f64();
        progress.stage_finished(stage, seconds);
        timings.push(Timing { stage, seconds });
    };

    let buildx = match opts.client {
        Client::Buildx => Some(BuildxBuilder::create(&env.node.name, &env.run_id).await?),
        Client::Buildctl => None,
    };
    let buildx = buildx.as_ref();
    let t = Instant::now();
    let build1 = build(env, buildx, &spec, Stage::Build1, opts, progress).await?;
    timed(Stage::Build1, t);
    let mut run = LabRun::begin(opts, dockerfile_summary.clone(), spec.clone(), env.images.clone(), build1);
    run.run_id = env.run_id.clone();
    run.node = node;
    if !run.build1.succeeded() {
        blame_environment(&run.build1, &env.images)?;
        run.stop(&format!("build 1 {}", run.build1.ending()), opts);
        run.timings = timings;
        return Ok(run);
    }

    let t = Instant::now();
    let build2 = build(env, buildx, &spec, Stage::Build2, opts, progress).await?;
    timed(Stage::Build2, t);
    let build2_ok = build2.succeeded();
    run.build2 = Some(build2);
    if opts.cancel.is_cancelled() {
        run.stop("build 2 did not finish", opts);
        run.timings = timings;
        return Ok(run);
    }

    progress.stage_started(Stage::Checks);
    let t = Instant::now();
    let client = env.registry.client().await?;
    run.repositories = client.catalog().await?;
    run.image = client.image(&spec.image.repository, &spec.image.reference).await?;
    run.cache = client.cache_evidence(&spec.cache, &spec.image).await?;
    timed(Stage::Checks, t);

    let cache = run.cache.as_ref().and_then(|c| c.manifest.clone());
    match cache {
        _ if !build2_ok => run.stopped = Some("build 2 failed".into()),
        _ if !opts.delete_cache => run.stopped = Some("deletion not asked for".into()),
        None => run.stopped = Some(format!("no BuildKit cache in {} to delete", spec.cache)),
        Some(cache) => {
            progress.stage_started(Stage::Deletion);
            let t = Instant::now();
            run.deletion = Some(deletion::delete_cache(&mut env.registry, &spec.cache, &cache, &spec.image).await?);
            timed(Stage::Deletion, t);
        }
    }
    run.timings = timings;
    Ok(run)
}

/// Every build starts with the node's own cache empty: build 1 from nothing (a shared node
/// has built other apps), build 2 with only the registry cache to find — otherwise its
/// CACHED lines would come from the node and prove nothing about the registry.
/// One of the lab's builds, after the node's own cache is wiped (`buildctl prune --all`, or
/// `docker buildx prune -a -f` with the buildx client) when the node has built anything.
async fn build(
    env: &mut LabEnvironment,
    buildx: Option<&BuildxBuilder>,
    spec: &BuildSpec,
    stage: Stage,
    opts: &LabOptions,
    progress: &dyn Progress,
) -> Result<BuildOutcome, Error> {
    progress.stage_started(stage);
    if opts.cancel.is_cancelled() {
        return Ok(BuildOutcome::not_started());
    }
    let on_line = |line: &str| progress.build_line(stage, line);
    // A node that has built nothing yet has no cache to wipe.
    let prune = env.node_used;
    env.node_used = true;
    let outcome = match buildx {
        Some(b) => {
            if prune {
                b.prune().await?;
            }
            builds::run_buildx(b, &env.node, spec, &opts.app_dir, opts.build_timeout, &opts.cancel, on_line).await?
        }
        None => {
            if prune {
                env.node.prune_all().await?;
            }
            builds::run(&env.node, spec, opts.build_timeout, &opts.cancel, on_line).await?
        }
    };
    env.tainted |= outcome.stopped_early();
    Ok(outcome)
}

impl LabRun {
    /// Records why the run stopped early; an interruption says so whatever the stage.
    fn stop(&mut self, why: &str, opts: &LabOptions) {
        self.interrupted = opts.cancel.is_cancelled();
        self.stopped = Some(if self.interrupted { format!("interrupted: {why}") } else { why.to_string() });
    }

    /// A run as far as its first build: the later stages fill in the rest.
    fn begin(
        opts: &LabOptions,
        dockerfile_summary: DockerfileSummary,
        spec: BuildSpec,
        images: Images,
        build1: BuildOutcome,
    ) -> LabRun {
        LabRun {
            app: opts.app_dir.file_name().map_or("app".into(), |n| n.to_string_lossy().into_owned()),
            dockerfile: opts.dockerfile.clone(),
            dockerfile_summary,
            spec,
            run_id: String::new(),
            images,
            node: NodeInfo::default(),
            build1,
            build2: None,
            repositories: Vec::new(),
            image: None,
            cache: None,
            deletion: None,
            deletion_asked: opts.delete_cache,
            stopped: None,
            interrupted: false,
            timings: Vec::new(),
        }
    }

    /// An interruption before the environment was up: every check not reached.
    fn interrupted_before_start(opts: &LabOptions, images: &Images, dockerfile_summary: DockerfileSummary) -> LabRun {
        let spec = BuildSpec::lab("registry7:5000", &opts.dockerfile, "/lab/app");
        let mut run = LabRun::begin(opts, dockerfile_summary, spec, images.clone(), BuildOutcome::not_started());
        run.stopped = Some("interrupted: before the environment was up".into());
        run.interrupted = true;
        run
    }
}

/// Reads `buildctl debug workers -v`: `Platforms: linux/amd64,…` and `BuildKit: github.com/moby/buildkit v0.26.0 …`.
pub fn node_info(workers: &str) -> NodeInfo {
    let field = |name: &str| {
        workers.lines().find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string())).unwrap_or_default()
    };
    NodeInfo {
        platforms: field("Platforms:").split(',').filter_map(|p| p.trim().parse().ok()).collect(),
        buildkit_version: field("BuildKit:").split_whitespace().nth(1).unwrap_or("unknown").to_string(),
    }
}
