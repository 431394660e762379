//! The lab's containers: registry7 and the BuildKit node (plus, offline, a docker.io
//! mirror) on a private network of their own, all labelled with the run and its owner and
//! removed at the run's end — on Ctrl-C, on a panic, and by the next start after SIGKILL.
//! What a student's build may reach and use is set in [`isolation`].

pub mod context;
pub mod docker;
pub mod isolation;
pub mod lifecycle;
pub mod pins;
pub mod remote;

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use testcontainers::bollard::models::{NetworkCreateRequest, PortBinding};
use testcontainers::bollard::query_parameters::UploadToContainerOptionsBuilder;
use testcontainers::bollard::Docker;
use testcontainers::core::{CgroupnsMode, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};
use tokio_util::sync::CancellationToken;

pub use docker::{engine, Engine};
use isolation::{Egress, LimitHit, NodeLimits, RunNetwork};
use lifecycle::RunLease;
pub use lifecycle::{OWNER_LABEL, RUN_LABEL};
use remote::{RegistryLogin, RemoteNode};

use crate::reference::{Digest, ImageRef};
use crate::registry::deletion::RegistryHost;
use crate::registry::version::RegistryVersion;
use crate::registry::RegistryClient;
use crate::Error;

const REGISTRY_PORT: u16 = 5000;

/// Which images the nodes run: from `LAB7_*_IMAGE`, else from what
/// `scripts/lab-env.sh` wrote to `target/lab7/env`, else the official ones.
#[derive(Debug, Clone, Serialize)]
pub struct Images {
    pub registry: String,
    pub buildkit: String,
    /// Offline only: a registry holding busybox that the node uses as its docker.io mirror.
    pub mirror: Option<String>,
    pub standins: bool,
}

impl Images {
    pub fn load() -> Images {
        let s = Settings::read();
        Images {
            registry: s.get("LAB7_REGISTRY_IMAGE").unwrap_or(pins::official_registry().into()),
            buildkit: s.get("LAB7_BUILDKIT_IMAGE").unwrap_or(pins::official_buildkit().into()),
            mirror: s.get("LAB7_MIRROR_IMAGE"),
            standins: s.get("LAB7_STANDINS").as_deref() == Some("1"),
        }
    }

    /// Today's stack beside the pinned one, as `make env` provided it: (registry 3, current
    /// BuildKit), each `None` where it was not set up.
    pub fn current_stack() -> (Option<String>, Option<String>) {
        let s = Settings::read();
        (s.get("LAB7_REGISTRY3_IMAGE"), s.get("LAB7_BUILDKIT_CURRENT_IMAGE"))
    }

    /// The images of a stack: the pinned ones, or today's — `make env`'s (official or stand-in),
    /// else the official images pinned in scripts/pins.env (a laptop that pulled them).
    pub fn of(stack: Stack) -> Images {
        let pinned = Images::load();
        match stack {
            Stack::Pinned => pinned,
            Stack::Current => {
                let (registry, buildkit) = Images::current_stack();
                Images {
                    registry: registry.unwrap_or_else(|| pins::pin("OFFICIAL_REGISTRY3").into()),
                    buildkit: buildkit.unwrap_or_else(|| pins::pin("OFFICIAL_BUILDKIT_CURRENT").into()),
                    ..pinned
                }
            }
        }
    }
}

/// Which registry and BuildKit a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// The lab's pinned versions (registry 2.8.3, BuildKit v0.26.0).
    #[default]
    Pinned,
    /// Today's: registry 3.1.2 and BuildKit v0.34.2 (what `registry:latest` and buildx's
    /// default node image give now).
    Current,
}

/// The env file `make env` wrote, read once.
struct Settings(String);

impl Settings {
    fn read() -> Settings {
        Settings(env_file().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default())
    }

    /// A non-empty `KEY` from the environment, else from the file.
    fn get(&self, key: &str) -> Option<String> {
        let from_file = || self.0.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_string));
        std::env::var(key).ok().or_else(from_file).filter(|s| !s.is_empty())
    }
}

/// `LAB7_ENV_FILE`, else `target/lab7/env` under the current directory or this crate.
fn env_file() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("LAB7_ENV_FILE") {
        return Some(p.into());
    }
    [PathBuf::from("target/lab7/env"), Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lab7/env")]
        .into_iter()
        .find(|p| p.exists())
}

/// A container image for testcontainers, named through the one reference parser.
fn generic(image: &str) -> Result<GenericImage, Error> {
    let r: ImageRef = image.parse().map_err(|e| {
        Error::input(
            format!("{e}"),
            "set LAB7_REGISTRY_IMAGE / LAB7_BUILDKIT_IMAGE to an image reference, or run `make env`",
        )
    })?;
    let name = match &r.registry {
        Some(host) => format!("{host}/{}", r.repository),
        None => r.repository.clone(),
    };
    Ok(GenericImage::new(name, r.reference))
}

/// How the node is confined: its resource caps and what its `RUN` steps may reach; or the
/// remote node that builds instead (its confinement is its owner's).
#[derive(Debug, Clone, Default, Serialize)]
pub struct EnvOptions {
    pub limits: NodeLimits,
    pub egress: Egress,
    /// Cap on one build context, bytes.
    pub max_context: u64,
    /// A BuildKit daemon elsewhere (`batch --node`), instead of lab7's own node.
    pub remote: Option<RemoteNode>,
}

impl EnvOptions {
    pub fn new() -> EnvOptions {
        EnvOptions { max_context: context::DEFAULT_MAX_CONTEXT, ..EnvOptions::default() }
    }
}

/// A container testcontainers started, which lab7 removes itself (by its run's label, in
/// [`lifecycle::remove_run`]) and testcontainers' own drop never touches: that drop removes it
/// with a `block_on` nested in the thread dropping it, and the nested call takes the wakeup
/// meant for whatever else that thread's outer `block_on` waits on — a batch's other job, a
/// test's other run — which then waits for good (found by the soak: builds whose output had
/// ended, waited on until their timeout). Not dropping it leaks its handle (a few hundred
/// bytes per container); the container itself is removed with the run.
struct Started(ManuallyDrop<ContainerAsync<GenericImage>>);

impl Started {
    fn new(container: ContainerAsync<GenericImage>) -> Started {
        Started(ManuallyDrop::new(container))
    }
}

impl Deref for Started {
    type Target = ContainerAsync<GenericImage>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Started {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// The student's registry, `registry:2` with deletion enabled, published on loopback only.
pub struct Registry7 {
    pub name: String,
    /// What `registry --version` says it is: the deletion's config path and advice follow it.
    pub version: RegistryVersion,
    access: RegistryAccess,
    container: Started,
    docker: Docker,
}

/// Where registry7 is published and whether it asks for a login: on loopback and open for
/// lab7's own node; on an address a remote node reaches, behind the run's password, for one.
#[derive(Debug, Clone)]
struct RegistryAccess {
    host_ip: IpAddr,
    login: Option<RegistryLogin>,
}

impl RegistryAccess {
    fn for_node(remote: Option<&RemoteNode>) -> RegistryAccess {
        match remote {
            Some(r) => RegistryAccess { host_ip: r.registry_address, login: Some(RegistryLogin::new()) },
            None => RegistryAccess { host_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), login: None },
        }
    }
}

impl Registry7 {
    async fn new(name: String, container: Started, docker: Docker, access: RegistryAccess) -> Registry7 {
        let mut r = Registry7 { name, version: RegistryVersion::assumed(), access, container, docker };
        if let Ok(out) = r.exec(&["registry", "--version"]).await {
            r.version = RegistryVersion::parse(&out.stdout).unwrap_or_else(RegistryVersion::assumed);
        }
        r
    }

    fn gc_args(&self) -> [&'static str; 3] {
        ["registry", "garbage-collect", self.version.config_path()]
    }

    /// Where it is published, `IP:PORT` (the port changes when the container restarts).
    async fn published(&self) -> Result<String, Error> {
        let port = self
            .container
            .get_host_port_ipv4(REGISTRY_PORT.tcp())
            .await
            .map_err(|e| docker::error("registry7 port", e))?;
        Ok(format!("{}:{port}", self.access.host_ip))
    }

    /// A client on the registry's published port, with the run's login when it has one.
    pub async fn client(&self) -> Result<RegistryClient, Error> {
        let client = RegistryClient::new(&self.published().await?);
        Ok(match &self.access.login {
            Some(l) => client.with_login(&l.user, &l.password),
            None => client,
        })
    }

    pub async fn exec(&self, cmd: &[&str]) -> Result<ExecOutput, Error> {
        exec_to_end(&self.docker, self.container.id(), &self.name, cmd, Duration::from_secs(120)).await
    }
}

impl RegistryHost for Registry7 {
    async fn client(&self) -> Result<RegistryClient, Error> {
        Registry7::client(self).await
    }

    async fn storage_bytes(&self) -> Result<u64, Error> {
        let out = self
            .exec(&["sh", "-c", "find /var/lib/registry -type f | xargs -r stat -c %s"])
            .await?
            .success("measure registry storage")?;
        Ok(out.stdout.lines().filter_map(|l| l.trim().parse::<u64>().ok()).sum())
    }

    async fn manifest_revisions(&self, repo: &str) -> Result<Vec<Digest>, Error> {
        let dir = format!("/var/lib/registry/docker/registry/v2/repositories/{repo}/_manifests/revisions/sha256");
        let out = self.exec(&["ls", &dir]).await?;
        Ok(out.stdout.split_whitespace().filter_map(|hex| format!("sha256:{hex}").parse().ok()).collect())
    }

    /// Garbage-collect with the config path of the registry's line, and without
    /// `--delete-untagged` (on 2.8 it deletes the platform manifests of multi-arch images).
    fn gc_command(&self) -> String {
        self.gc_args().join(" ")
    }

    fn version(&self) -> &RegistryVersion {
        &self.version
    }

    async fn garbage_collect(&self) -> Result<String, Error> {
        let out = self.exec(&self.gc_args()).await?.success("registry garbage-collect")?;
        Ok(format!("{}{}", out.stdout, out.stderr))
    }

    /// `docker restart`, then waits until `/v2/` answers.
    async fn restart(&mut self) -> Result<(), Error> {
        self.container.stop().await.map_err(|e| docker::error("stop registry7", e))?;
        self.container.start().await.map_err(|e| docker::error("start registry7", e))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = Registry7::client(self).await {
                if c.ping().await.is_ok() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::docker("registry7 did not answer /v2/ within 30 s of its restart", None));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

/// The BuildKit daemon, as buildx's docker-container driver runs it, confined (see [`isolation`]).
pub struct Node {
    pub name: String,
    /// The daemon elsewhere that builds, when `container` is only buildctl's client.
    pub remote: Option<RemoteNode>,
    container: Started,
    docker: Docker,
}

/// How a command in a container ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecEnd {
    Exited(i64),
    /// It ran past its time limit; its output so far is kept.
    TimedOut(Duration),
    /// The run was interrupted (Ctrl-C, SIGTERM, SIGHUP); its output so far is kept.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Exec {
    pub end: ExecEnd,
    pub stdout: String,
    pub stderr: String,
}

impl Exec {
    /// For commands lab7 runs itself: a timeout or an interruption is an error.
    fn finished(self, cmd: &[&str]) -> Result<ExecOutput, Error> {
        match self.end {
            ExecEnd::Exited(exit_code) => Ok(ExecOutput { exit_code, stdout: self.stdout, stderr: self.stderr }),
            ExecEnd::TimedOut(after) => Err(Error::Timeout(format!("`{}`", cmd.join(" ")), after)),
            ExecEnd::Cancelled => Err(Error::Lab(format!("`{}` was interrupted", cmd.join(" ")))),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecOutput {
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(self, what: &str) -> Result<ExecOutput, Error> {
        if self.exit_code == 0 {
            Ok(self)
        } else {
            Err(Error::Lab(format!("{what} exited with {}: {}", self.exit_code, self.stderr.trim())))
        }
    }
}

impl Node {
    /// Runs a student's build: `on_line` sees each stderr line as it arrives; a timeout or
    /// `cancel` ends the wait and keeps the output so far.
    pub async fn exec_build(
        &self,
        cmd: &[&str],
        timeout: Duration,
        cancel: &CancellationToken,
        on_line: impl FnMut(&str),
    ) -> Result<Exec, Error> {
        let cmd = self.to_node(cmd);
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        exec(&self.docker, self.container.id(), &self.name, &argv, timeout, Some(cancel), on_line).await
    }

    /// A buildctl command sent to the remote node when there is one (`--addr`, TLS).
    fn to_node(&self, cmd: &[&str]) -> Vec<String> {
        let mut out: Vec<String> = cmd.iter().map(|s| s.to_string()).collect();
        if let (Some(r), Some("buildctl")) = (&self.remote, cmd.first().copied()) {
            out.splice(1..1, r.buildctl_flags());
        }
        out
    }

    pub async fn exec(&self, cmd: &[&str]) -> Result<ExecOutput, Error> {
        let cmd = self.to_node(cmd);
        let argv: Vec<&str> = cmd.iter().map(String::as_str).collect();
        exec_to_end(&self.docker, self.container.id(), &self.name, &argv, Duration::from_secs(120)).await
    }

    /// `buildctl debug workers`: platforms and version, as text.
    pub async fn workers(&self) -> Result<String, Error> {
        Ok(self.exec(&["buildctl", "debug", "workers", "-v"]).await?.success("buildctl debug workers")?.stdout)
    }

    /// Writes buildctl's login for registry7 (at `registry_host`) into the client container.
    async fn give_login(&self, registry_host: &str, login: &RegistryLogin) -> Result<(), Error> {
        let config = login.docker_config(registry_host);
        let script = "mkdir -p /root/.docker && printf '%s' \"$1\" > /root/.docker/config.json";
        // The node's own exec (not `to_node`): this is a shell command in the client container.
        exec_to_end(
            &self.docker,
            self.container.id(),
            &self.name,
            &["sh", "-c", script, "sh", &config],
            Duration::from_secs(30),
        )
        .await?
        .success("write buildctl's registry login")?;
        Ok(())
    }

    /// Streams an app folder into the node at `/lab/<slug>`, links as links (see [`context`]).
    pub async fn upload(&self, dir: &Path, slug: &str, dockerfile: &str, max_bytes: u64) -> Result<String, Error> {
        let (src, file) = (dir.to_path_buf(), dockerfile.to_string());
        let prefix = format!("lab/{slug}");
        let p = prefix.clone();
        let packed = tokio::task::spawn_blocking(move || context::pack(&src, &p, &file, max_bytes))
            .await
            .map_err(|e| Error::Lab(format!("packing the build context: {e}")))??;
        let stream = tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(packed.file), 1 << 20);
        let options = UploadToContainerOptionsBuilder::new().path("/").build();
        self.docker
            .upload_to_container(self.container.id(), Some(options), testcontainers::bollard::body_try_stream(stream))
            .await
            .map_err(|e| docker::error(&format!("copy {} into {}", dir.display(), self.name), e))?;
        Ok(format!("/{prefix}"))
    }

    /// Empties the node's own cache, so the next build can only hit the registry cache.
    pub async fn prune_all(&self) -> Result<(), Error> {
        self.exec(&["buildctl", "prune", "--all"]).await?.success("buildctl prune --all")?;
        Ok(())
    }

    /// Limits the node's cgroup reports as hit (processes, memory), for a failed build's diagnosis.
    pub async fn limits_hit(&self) -> Vec<LimitHit> {
        if self.remote.is_some() {
            return Vec::new(); // a remote node's cgroups are its owner's to read
        }
        // cgroup v2 files first, then v1's; the node has a cgroup namespace of its own.
        let script = "for f in /sys/fs/cgroup/pids.events /sys/fs/cgroup/pids/pids.events /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do [ -r $f ] && sed \"s|^|$f |\" $f; done; true";
        // Right after a fork-heavy step its processes may still hold every PID: retry a moment.
        let mut read = None;
        for _ in 0..10 {
            match self.exec(&["sh", "-c", script]).await {
                Ok(out) if out.exit_code == 0 => {
                    read = Some(out);
                    break;
                }
                _ => tokio::time::sleep(Duration::from_millis(300)).await,
            }
        }
        let Some(out) = read else { return Vec::new() };
        let mut hit = Vec::new();
        for line in out.stdout.lines() {
            let mut words = line.split_whitespace();
            let (Some(file), Some(key), Some(n)) = (words.next(), words.next(), words.next()) else { continue };
            let count: u64 = n.parse().unwrap_or(0);
            if count == 0 {
                continue;
            }
            match key {
                "max" if file.contains("pids") => hit.push(LimitHit::Processes { refused: Some(count) }),
                "oom_kill" => hit.push(LimitHit::Memory { killed: count }),
                _ => {}
            }
        }
        hit
    }
}

/// A command lab7 runs itself, to its end: a timeout is an error, and there is no cancelling it.
async fn exec_to_end(
    docker: &Docker,
    container: &str,
    name: &str,
    cmd: &[&str],
    timeout: Duration,
) -> Result<ExecOutput, Error> {
    exec(docker, container, name, cmd, timeout, None, |_| {}).await?.finished(cmd)
}

/// Runs `cmd` in a container through the Docker API; `on_line` sees each stderr line as it
/// arrives. A timeout or `cancel` ends the wait and keeps the output so far.
async fn exec(
    docker: &Docker,
    container: &str,
    name: &str,
    cmd: &[&str],
    timeout: Duration,
    cancel: Option<&CancellationToken>,
    mut on_line: impl FnMut(&str),
) -> Result<Exec, Error> {
    use futures_util::StreamExt;
    use testcontainers::bollard::container::LogOutput;
    use testcontainers::bollard::exec::{CreateExecOptions, StartExecResults};

    let shown = cmd.join(" ");
    let failed = |e| docker::error(&format!("exec `{shown}` in {name}"), e);
    let options = CreateExecOptions {
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect::<Vec<_>>()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let created = docker.create_exec(container, options).await.map_err(failed)?;
    let StartExecResults::Attached { mut output, .. } = docker.start_exec(&created.id, None).await.map_err(failed)?
    else {
        return Err(Error::docker(format!("exec `{shown}` in {name}: Docker did not attach its output"), None));
    };
    let (mut stdout, mut stderr, mut partial) = (Vec::new(), String::new(), Vec::new());
    let read = async {
        while let Some(chunk) = output.next().await {
            match chunk.map_err(failed)? {
                LogOutput::StdErr { message } => {
                    partial.extend_from_slice(&message);
                    while let Some(end) = partial.iter().position(|&b| b == b'\n') {
                        let line: Vec<u8> = partial.drain(..=end).collect();
                        let line = String::from_utf8_lossy(&line[..end]);
                        on_line(&line);
                        stderr.push_str(&line);
                        stderr.push('\n');
                    }
                }
                LogOutput::StdOut { message } => stdout.extend_from_slice(&message),
                _ => {}
            }
        }
        Ok::<_, Error>(())
    };
    let never = CancellationToken::new();
    let ended = tokio::select! {
        r = tokio::time::timeout(timeout, read) => match r {
            Ok(read) => { read?; None }
            Err(_) => Some(ExecEnd::TimedOut(timeout)),
        },
        _ = cancel.unwrap_or(&never).cancelled() => Some(ExecEnd::Cancelled),
    };
    stderr.push_str(&String::from_utf8_lossy(&partial));
    let stdout = String::from_utf8_lossy(&stdout).into_owned();
    if let Some(end) = ended {
        return Ok(Exec { end, stdout, stderr });
    }
    // The exit code can lag the end of the streams by a moment.
    for _ in 0..50 {
        if let Some(code) = docker.inspect_exec(&created.id).await.map_err(failed)?.exit_code {
            return Ok(Exec { end: ExecEnd::Exited(code), stdout, stderr });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::docker(format!("`{shown}` in {name}: no exit code after its output ended"), None))
}

/// Everything one lab run uses. `shutdown` removes it; so does dropping it.
pub struct LabEnvironment {
    pub run_id: String,
    pub network: String,
    pub images: Images,
    pub options: EnvOptions,
    pub registry: Registry7,
    pub node: Node,
    /// A build was stopped half-way (timeout, interruption): its processes may still run in
    /// the node, so a batch must not hand this node to the next submission.
    pub tainted: bool,
    /// The node has built something since it started: its cache must be wiped before a build.
    pub node_used: bool,
    /// Held so it lives as long as the node that pulls through it.
    _mirror: Option<Started>,
    lease: Option<RunLease>,
    docker: Docker,
}

impl LabEnvironment {
    /// Removes what dead runs left, then starts registry7, the mirror when offline, and the
    /// confined node on a network of their own. What was started is removed if a step fails.
    pub async fn start(images: &Images, options: &EnvOptions) -> Result<LabEnvironment, Error> {
        let docker = docker::connect().await?;
        docker::engine_of(&docker).await?;
        lifecycle::sweep(&docker).await?;
        let lease = RunLease::take()?;
        let run_id = lease.run_id.clone();
        // Removes what this start created if it fails or is abandoned half-way (Ctrl-C).
        let guard = RemoveOnDrop(Some(run_id.clone()));
        let network = format!("lab7-{run_id}");
        let addresses = create_network(&docker, &network, &run_id).await?;
        let registry_name = format!("lab7-registry7-{run_id}");
        let mirror_name = format!("lab7-mirror-{run_id}");
        let remote = options.remote.as_ref();
        let access = RegistryAccess::for_node(remote);
        let mirror = async {
            match images.mirror.as_ref().filter(|_| remote.is_none()) {
                Some(image) => registry_container(image, &mirror_name, &network, &run_id)?
                    .with_host_config_modifier(|hc| hc.publish_all_ports = Some(false))
                    .start()
                    .await
                    .map(|c| Some(Started::new(c)))
                    .map_err(|e| docker::error(&format!("start the docker.io mirror ({image})"), e)),
                None => Ok(None),
            }
        };
        // The node's config names registry7 and the mirror before they exist: all three start at once.
        let toml = isolation::buildkitd_toml(
            &format!("{registry_name}:{REGISTRY_PORT}"),
            images.mirror.as_ref().map(|_| format!("{mirror_name}:{REGISTRY_PORT}")).as_deref(),
        );
        let node_name = format!("lab7-node-{run_id}");
        let node = async {
            match remote {
                Some(r) => start_client(&images.buildkit, &node_name, &network, &run_id, r).await,
                None => {
                    let on = (network.as_str(), &addresses);
                    start_node(&docker, &images.buildkit, &node_name, on, &run_id, toml, options).await
                }
            }
        };
        let (registry, mirror, node) =
            tokio::join!(start_registry7(&images.registry, &registry_name, &network, &run_id, &access), mirror, node);
        let (registry, mirror, node) = (registry?, mirror?, node?);
        let env = LabEnvironment {
            run_id,
            network,
            images: images.clone(),
            options: options.clone(),
            registry: Registry7::new(registry_name, registry, docker.clone(), access).await,
            node: Node { name: node_name, remote: remote.cloned(), container: node, docker: docker.clone() },
            tainted: false,
            node_used: false,
            _mirror: mirror,
            lease: Some(lease),
            docker,
        };
        env.give_node_login().await?;
        guard.disarm(); // the environment's own Drop takes over
        Ok(env)
    }

    /// Replaces registry7 with an empty one under the same name (so the node's
    /// buildkitd.toml still applies): the next app's grade owes nothing to the last one's.
    pub async fn renew_registry(&mut self) -> Result<(), Error> {
        use testcontainers::bollard::query_parameters::RemoveContainerOptionsBuilder;
        let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
        self.docker
            .remove_container(self.registry.container.id(), Some(options))
            .await
            .map_err(|e| docker::error(&format!("remove {}", self.registry.name), e))?;
        let access = RegistryAccess::for_node(self.node.remote.as_ref());
        let fresh =
            start_registry7(&self.images.registry, &self.registry.name, &self.network, &self.run_id, &access).await?;
        // The old handle's drop finds its container gone already; that is expected.
        self.registry = Registry7::new(self.registry.name.clone(), fresh, self.docker.clone(), access).await;
        self.give_node_login().await
    }

    /// How the node reaches registry7: `lab7-registry7-<run>:5000` on the run's network, or
    /// the published `IP:PORT` for a remote node.
    pub async fn registry_host(&self) -> Result<String, Error> {
        match &self.node.remote {
            Some(_) => self.registry.published().await,
            None => Ok(format!("{}:{REGISTRY_PORT}", self.registry.name)),
        }
    }

    /// A remote node pushes with the run's login: buildctl in the client container gets it.
    async fn give_node_login(&self) -> Result<(), Error> {
        match &self.registry.access.login {
            Some(login) => self.node.give_login(&self.registry_host().await?, login).await,
            None => Ok(()),
        }
    }

    /// Removes the run's containers, their volumes and its network.
    pub async fn shutdown(mut self) -> Result<(), Error> {
        let result = lifecycle::remove_run(&self.docker, &self.run_id).await;
        if result.is_ok() {
            self.lease.take();
        }
        result
    }
}

impl Drop for LabEnvironment {
    fn drop(&mut self) {
        if self.lease.take().is_some() {
            remove_run_blocking(&self.run_id);
        }
    }
}

/// Removes a run's objects if dropped while armed.
struct RemoveOnDrop(Option<String>);

impl RemoveOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.0.take() {
            remove_run_blocking(&id);
        }
    }
}

/// Drop cannot await: the removal runs on a thread of its own with its own runtime.
fn remove_run_blocking(run_id: &str) {
    let id = run_id.to_string();
    let done = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
        rt.block_on(async {
            let docker = docker::connect().await.ok()?;
            lifecycle::remove_run(&docker, &id).await.ok()
        })
    });
    let _ = done.join();
}

/// The run's network, and where Docker put it (its subnet, and its gateway: the host).
async fn create_network(docker: &Docker, name: &str, run_id: &str) -> Result<RunNetwork, Error> {
    let request = NetworkCreateRequest {
        name: name.to_string(),
        driver: Some("bridge".into()),
        labels: Some(labels(run_id)),
        ..Default::default()
    };
    docker.create_network(request).await.map_err(|e| docker::error(&format!("create network {name}"), e))?;
    let info =
        docker.inspect_network(name, None).await.map_err(|e| docker::error(&format!("inspect network {name}"), e))?;
    let config = info.ipam.and_then(|i| i.config).unwrap_or_default();
    config
        .into_iter()
        .find_map(|c| Some(RunNetwork { subnet: c.subnet?, gateway: c.gateway?.parse().ok()? }))
        .filter(|n| n.gateway.is_ipv4())
        .ok_or_else(|| Error::docker(format!("network {name} has no IPv4 subnet and gateway"), None))
}

fn labels(run_id: &str) -> HashMap<String, String> {
    HashMap::from([(RUN_LABEL.to_string(), run_id.to_string()), (OWNER_LABEL.to_string(), lifecycle::owner())])
}

/// The node as buildx's docker-container driver runs it (privileged: BuildKit creates
/// namespaces and mounts), but with a cgroup namespace of its own so that its `RUN` steps
/// count against its limits, build storage on a bounded tmpfs, and `RUN` steps networked
/// apart from it and fenced in by its firewall rules.
async fn start_node(
    docker: &Docker,
    image: &str,
    name: &str,
    (network, addresses): (&str, &RunNetwork),
    run_id: &str,
    toml: String,
    options: &EnvOptions,
) -> Result<Started, Error> {
    let limits = options.limits;
    let v4 = isolation::rules_v4(options.egress, &isolation::host_addresses(), addresses);
    let node = generic(image)?
        .with_wait_for(WaitFor::message_on_stderr("running server on"))
        .with_container_name(name)
        .with_network(network)
        .with_labels(labels(run_id))
        .with_privileged(true)
        .with_cgroupns_mode(CgroupnsMode::Private)
        .with_copy_to("/etc/buildkit/buildkitd.toml", toml.into_bytes())
        .with_copy_to(isolation::RULES_V4, v4.into_bytes())
        .with_copy_to(isolation::RULES_V6, isolation::rules_v6(options.egress).into_bytes())
        .with_host_config_modifier(move |hc| {
            hc.publish_all_ports = Some(false);
            hc.memory = Some(limits.memory_bytes as i64);
            hc.memory_swap = Some(limits.memory_bytes as i64);
            hc.pids_limit = Some(limits.pids);
            hc.nano_cpus = Some((limits.cpus * 1e9) as i64);
            hc.tmpfs = Some(HashMap::from([("/var/lib/buildkit".to_string(), limits.tmpfs_options())]));
        })
        .with_startup_timeout(Duration::from_secs(60))
        .start()
        .await
        .map(Started::new)
        .map_err(|e| docker::error(&format!("start the BuildKit node ({image})"), e))?;
    // Before any student code runs, in one exec: RUN steps may not reach the host, registry7
    // or other runs, and buildkitd's own fetches may not reach the host or private networks.
    let script = format!(
        "iptables-restore --noflush {} && ip6tables-restore --noflush {}",
        isolation::RULES_V4,
        isolation::RULES_V6
    );
    exec_to_end(docker, node.id(), name, &["sh", "-c", &script], Duration::from_secs(30))
        .await?
        .success("iptables-restore (the node's firewall)")?;
    Ok(node)
}

/// buildctl's client for a remote node: the BuildKit image (it holds buildctl), idle, on the
/// run's network, with the node's TLS files; not privileged, as it runs no build itself.
async fn start_client(
    image: &str,
    name: &str,
    network: &str,
    run_id: &str,
    remote: &RemoteNode,
) -> Result<Started, Error> {
    let mut request = generic(image)?
        .with_entrypoint("sh")
        .with_wait_for(WaitFor::Nothing)
        .with_cmd(["-c", "while :; do sleep 3600; done"])
        // buildctl reads registry logins from here (the image may set no HOME).
        .with_env_var("DOCKER_CONFIG", "/root/.docker")
        .with_container_name(name)
        .with_network(network)
        .with_labels(labels(run_id));
    for (path, bytes) in remote.tls_files()? {
        request = request.with_copy_to(path, bytes);
    }
    request
        .with_host_config_modifier(|hc| {
            hc.publish_all_ports = Some(false);
            hc.memory = Some(1 << 30);
            hc.pids_limit = Some(256);
        })
        .start()
        .await
        .map(Started::new)
        .map_err(|e| docker::error(&format!("start buildctl's client for {} ({image})", remote.addr), e))
}

/// registry7 lets manifests be deleted: the lab's bonus needs it.
async fn start_registry7(
    image: &str,
    name: &str,
    network: &str,
    run_id: &str,
    access: &RegistryAccess,
) -> Result<Started, Error> {
    let mut request =
        registry_container(image, name, network, run_id)?.with_env_var("REGISTRY_STORAGE_DELETE_ENABLED", "true");
    if let Some(login) = &access.login {
        // Beyond loopback, every request needs the run's password (distribution's htpasswd auth).
        request = request
            .with_env_var("REGISTRY_AUTH", "htpasswd")
            .with_env_var("REGISTRY_AUTH_HTPASSWD_REALM", "lab7")
            .with_env_var("REGISTRY_AUTH_HTPASSWD_PATH", "/auth/htpasswd")
            .with_copy_to("/auth/htpasswd", login.htpasswd().into_bytes());
    }
    let host_ip = access.host_ip.to_string();
    request
        .with_host_config_modifier(move |hc| {
            // Published for lab7 on the host's loopback only (for a remote node, on the address
            // it reaches, behind the login): nothing else may use it.
            hc.publish_all_ports = Some(false);
            let binding = PortBinding { host_ip: Some(host_ip.clone()), host_port: Some(String::new()) };
            hc.port_bindings = Some(HashMap::from([(format!("{REGISTRY_PORT}/tcp"), Some(vec![binding]))]));
            hc.memory = Some(1 << 30);
            hc.pids_limit = Some(512);
        })
        .start()
        .await
        .map(Started::new)
        .map_err(|e| docker::error(&format!("start registry7 ({image})"), e))
}

fn registry_container(
    image: &str,
    name: &str,
    network: &str,
    run_id: &str,
) -> Result<ContainerRequest<GenericImage>, Error> {
    Ok(generic(image)?
        .with_exposed_port(REGISTRY_PORT.tcp())
        .with_wait_for(WaitFor::message_on_stderr("listening on"))
        .with_container_name(name)
        .with_network(network)
        .with_labels(labels(run_id))
        .with_startup_timeout(Duration::from_secs(60)))
}
