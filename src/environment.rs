//! The lab's containers: registry7 and the BuildKit node (plus, offline, a
//! docker.io mirror) on a private network, all named and labelled per run and
//! removed on drop — also when a test panics.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use testcontainers::core::{ExecCommand, IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, ContainerRequest, GenericImage, ImageExt};
use tokio::io::{AsyncBufReadExt, AsyncReadExt};

use crate::registry::RegistryClient;
use crate::Error;

pub const OFFICIAL_REGISTRY_IMAGE: &str = "registry:2.8.3";
pub const OFFICIAL_BUILDKIT_IMAGE: &str = "moby/buildkit:v0.26.0";
pub const RUN_LABEL: &str = "org.lab7.run";
const REGISTRY_PORT: u16 = 5000;
/// What testcontainers' Docker client (bollard 0.18) asks for; it does not negotiate down.
pub const MIN_API: (u32, u32) = (1, 47);

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
        let file = env_file().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default();
        let get = |key: &str| {
            std::env::var(key)
                .ok()
                .or_else(|| file.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_string)))
        };
        let nonempty = |v: Option<String>| v.filter(|s| !s.is_empty());
        Images {
            registry: nonempty(get("LAB7_REGISTRY_IMAGE")).unwrap_or(OFFICIAL_REGISTRY_IMAGE.into()),
            buildkit: nonempty(get("LAB7_BUILDKIT_IMAGE")).unwrap_or(OFFICIAL_BUILDKIT_IMAGE.into()),
            mirror: nonempty(get("LAB7_MIRROR_IMAGE")),
            standins: get("LAB7_STANDINS").as_deref() == Some("1"),
        }
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

fn generic(image: &str) -> GenericImage {
    // The tag follows the last ':' that comes after the last '/' (a registry port is not a tag).
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    match image[slash..].rfind(':') {
        Some(i) => GenericImage::new(&image[..slash + i], &image[slash + i + 1..]),
        None => GenericImage::new(image, "latest"),
    }
}

fn run_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{:08x}", (nanos as u64 ^ (std::process::id() as u64).rotate_left(32)) as u32)
}

const START_DOCKER: &str =
    "is Docker running? Start Docker Desktop, or `sudo systemctl start docker`; on a bare Debian machine run `make env`";

/// Turns testcontainers' errors into what a person can act on.
pub(crate) fn docker_error(what: &str, e: testcontainers::TestcontainersError) -> Error {
    let msg = e.to_string();
    let missing_image = ["No such image", "pull access denied", "manifest unknown"].iter().any(|m| msg.contains(m));
    let fix = if msg.contains("too new") {
        format!("lab7 needs Docker API {}.{} (Docker Engine 27.0+): upgrade Docker", MIN_API.0, MIN_API.1)
    } else if missing_image {
        "the image is missing and could not be pulled: run `make env` (scripts/lab-env.sh) to pull or build it".into()
    } else {
        START_DOCKER.into()
    };
    Error::Docker(format!("{what}: {msg}\n  fix: {fix}"))
}

/// The student's registry, `registry:2` with deletion enabled.
pub struct Registry7 {
    pub name: String,
    container: ContainerAsync<GenericImage>,
}

impl Registry7 {
    /// A client on the registry's published port (it changes when the container restarts).
    pub async fn client(&self) -> Result<RegistryClient, Error> {
        let host = self.container.get_host().await.map_err(|e| docker_error("registry7 host", e))?;
        let port = self
            .container
            .get_host_port_ipv4(REGISTRY_PORT.tcp())
            .await
            .map_err(|e| docker_error("registry7 port", e))?;
        Ok(RegistryClient::new(&format!("{host}:{port}")))
    }

    pub async fn exec(&self, cmd: &[&str]) -> Result<ExecOutput, Error> {
        exec(&self.container, &self.name, cmd, Duration::from_secs(120), |_| {}).await
    }

    /// Bytes of every file under the registry's storage (blobs, links, manifests).
    pub async fn storage_bytes(&self) -> Result<u64, Error> {
        let out = self
            .exec(&["sh", "-c", "find /var/lib/registry -type f | xargs -r stat -c %s"])
            .await?
            .success("measure registry storage")?;
        Ok(out.stdout.lines().filter_map(|l| l.trim().parse::<u64>().ok()).sum())
    }

    /// Every manifest the repository holds, tagged or not (the API lists only tags).
    pub async fn manifest_revisions(&self, repo: &str) -> Result<Vec<crate::reference::Digest>, Error> {
        let dir = format!("/var/lib/registry/docker/registry/v2/repositories/{repo}/_manifests/revisions/sha256");
        let out = self.exec(&["ls", &dir]).await?;
        Ok(out.stdout.split_whitespace().filter_map(|hex| format!("sha256:{hex}").parse().ok()).collect())
    }

    pub async fn garbage_collect(&self) -> Result<String, Error> {
        let out = self.exec(&crate::registry::deletion::GC_ARGS).await?.success("registry garbage-collect")?;
        Ok(format!("{}{}", out.stdout, out.stderr))
    }

    /// `docker restart`: drops the in-memory blob descriptor cache. Waits until `/v2/` answers.
    pub async fn restart(&mut self) -> Result<(), Error> {
        self.container.stop().await.map_err(|e| docker_error("stop registry7", e))?;
        self.container.start().await.map_err(|e| docker_error("start registry7", e))?;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(c) = self.client().await {
                if c.ping().await.is_ok() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(Error::Docker("registry7 did not answer /v2/ within 30 s of its restart".into()));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// The BuildKit daemon, as buildx's docker-container driver runs it.
pub struct Node {
    pub name: String,
    container: ContainerAsync<GenericImage>,
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
    /// Runs a command in the node; `on_line` sees each stderr line as it arrives.
    pub async fn exec_streaming(
        &self,
        cmd: &[&str],
        timeout: Duration,
        on_line: impl FnMut(&str),
    ) -> Result<ExecOutput, Error> {
        exec(&self.container, &self.name, cmd, timeout, on_line).await
    }

    pub async fn exec(&self, cmd: &[&str]) -> Result<ExecOutput, Error> {
        self.exec_streaming(cmd, Duration::from_secs(120), |_| {}).await
    }

    /// `buildctl debug workers`: platforms and version, as text.
    pub async fn workers(&self) -> Result<String, Error> {
        Ok(self.exec(&["buildctl", "debug", "workers", "-v"]).await?.success("buildctl debug workers")?.stdout)
    }

    /// Copies an app directory into the running node at `/lab/<name>` (a shared node
    /// receives each submission after it started, which `with_copy_to` cannot do).
    pub async fn upload(&self, dir: &Path, name: &str) -> Result<String, Error> {
        use testcontainers::bollard::container::UploadToContainerOptions;
        let mut tar = tar::Builder::new(Vec::new());
        tar.append_dir_all(format!("lab/{name}"), dir)
            .map_err(|e| Error::Input(format!("{}: cannot read the app: {e}", dir.display())))?;
        let bytes = tar.into_inner().map_err(|e| Error::Input(format!("{}: {e}", dir.display())))?;
        let docker = docker_api().await?;
        let options = UploadToContainerOptions { path: "/", ..Default::default() };
        docker
            .upload_to_container(self.container.id(), Some(options), bytes.into())
            .await
            .map_err(|e| Error::Docker(format!("copy {} into {}: {e}", dir.display(), self.name)))?;
        Ok(format!("/lab/{name}"))
    }

    /// Empties the node's own cache, so the next build can only hit the registry cache.
    pub async fn prune_all(&self) -> Result<(), Error> {
        self.exec(&["buildctl", "prune", "--all"]).await?.success("buildctl prune --all")?;
        Ok(())
    }
}

async fn exec(
    container: &ContainerAsync<GenericImage>,
    name: &str,
    cmd: &[&str],
    timeout: Duration,
    mut on_line: impl FnMut(&str),
) -> Result<ExecOutput, Error> {
    let shown = cmd.join(" ");
    let mut res = container
        .exec(ExecCommand::new(cmd.iter().map(|s| s.to_string())))
        .await
        .map_err(|e| docker_error(&format!("exec `{shown}` in {name}"), e))?;
    // testcontainers has no exec timeout; the streams end when the command does.
    let run = async {
        let mut stderr = String::new();
        let mut lines = res.stderr().lines();
        while let Some(line) = lines.next_line().await? {
            on_line(&line);
            stderr.push_str(&line);
            stderr.push('\n');
        }
        drop(lines);
        let mut stdout = String::new();
        res.stdout().read_to_string(&mut stdout).await?;
        Ok::<_, std::io::Error>((stdout, stderr))
    };
    let (stdout, stderr) = tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| Error::Timeout(format!("`{shown}` in {name}"), timeout))?
        .map_err(|e| Error::Docker(format!("reading the output of `{shown}` in {name}: {e}")))?;
    // The exit code can lag the end of the streams by a moment.
    for _ in 0..50 {
        if let Some(code) = res.exit_code().await.map_err(|e| docker_error("exec exit code", e))? {
            return Ok(ExecOutput { exit_code: code, stdout, stderr });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(Error::Docker(format!("`{shown}` in {name}: no exit code after its output ended")))
}

/// Everything one lab run uses. Dropping it removes the containers.
pub struct LabEnvironment {
    pub run_id: String,
    pub network: String,
    pub images: Images,
    pub registry: Registry7,
    pub node: Node,
    /// Held so it lives as long as the node that pulls through it.
    _mirror: Option<ContainerAsync<GenericImage>>,
}

impl LabEnvironment {
    /// Starts registry7, the mirror when offline, and the node with `app_dir` (if any) copied to `/lab`.
    pub async fn start(images: &Images, app_dir: Option<&Path>) -> Result<LabEnvironment, Error> {
        engine().await?;
        let run_id = run_id();
        let network = format!("lab7-{run_id}");
        let registry_name = format!("lab7-registry7-{run_id}");
        let registry = start_registry7(&images.registry, &registry_name, &network, &run_id).await?;
        let mirror_name = format!("lab7-mirror-{run_id}");
        let mirror = match &images.mirror {
            Some(image) => Some(
                registry_container(image, &mirror_name, &network, &run_id)
                    .start()
                    .await
                    .map_err(|e| docker_error(&format!("start the docker.io mirror ({image})"), e))?,
            ),
            None => None,
        };
        let toml = buildkitd_toml(&registry_name, images.mirror.as_ref().map(|_| mirror_name.as_str()));
        let node_name = format!("lab7-node-{run_id}");
        let node = start_node(&images.buildkit, &node_name, &network, &run_id, toml, app_dir).await?;
        Ok(LabEnvironment {
            run_id,
            network,
            images: images.clone(),
            registry: Registry7 { name: registry_name, container: registry },
            node: Node { name: node_name, container: node },
            _mirror: mirror,
        })
    }

    /// Replaces registry7 with an empty one under the same name (so the node's
    /// buildkitd.toml still applies): the next app's grade owes nothing to the last one's.
    pub async fn renew_registry(&mut self) -> Result<(), Error> {
        use testcontainers::bollard::container::RemoveContainerOptions;
        let options = RemoveContainerOptions { force: true, v: true, ..Default::default() };
        docker_api()
            .await?
            .remove_container(self.registry.container.id(), Some(options))
            .await
            .map_err(|e| Error::Docker(format!("remove {}: {e}", self.registry.name)))?;
        let fresh = start_registry7(&self.images.registry, &self.registry.name, &self.network, &self.run_id).await?;
        // The old handle's drop finds its container gone already; that is expected.
        self.registry = Registry7 { name: self.registry.name.clone(), container: fresh };
        Ok(())
    }

    /// How the node reaches registry7: `lab7-registry7-<run>:5000`.
    pub fn registry_host(&self) -> String {
        format!("{}:{REGISTRY_PORT}", self.registry.name)
    }
}

/// The node as buildx's docker-container driver runs it: privileged, with its config.
async fn start_node(
    image: &str,
    name: &str,
    network: &str,
    run_id: &str,
    toml: String,
    app_dir: Option<&Path>,
) -> Result<ContainerAsync<GenericImage>, Error> {
    let mut node = generic(image)
        .with_wait_for(WaitFor::message_on_stderr("running server on"))
        .with_container_name(name)
        .with_network(network)
        .with_label(RUN_LABEL, run_id)
        .with_privileged(true)
        .with_copy_to("/etc/buildkit/buildkitd.toml", toml.into_bytes())
        .with_startup_timeout(Duration::from_secs(60));
    if let Some(dir) = app_dir {
        node = node.with_copy_to("/lab", dir.to_path_buf());
    }
    node.start().await.map_err(|e| docker_error(&format!("start the BuildKit node ({image})"), e))
}

/// registry7 lets manifests be deleted: the lab's bonus needs it.
async fn start_registry7(
    image: &str,
    name: &str,
    network: &str,
    run_id: &str,
) -> Result<ContainerAsync<GenericImage>, Error> {
    registry_container(image, name, network, run_id)
        .with_env_var("REGISTRY_STORAGE_DELETE_ENABLED", "true")
        .start()
        .await
        .map_err(|e| docker_error(&format!("start registry7 ({image})"), e))
}

fn registry_container(image: &str, name: &str, network: &str, run_id: &str) -> ContainerRequest<GenericImage> {
    generic(image)
        .with_exposed_port(REGISTRY_PORT.tcp())
        .with_wait_for(WaitFor::message_on_stderr("listening on"))
        .with_container_name(name)
        .with_network(network)
        .with_label(RUN_LABEL, run_id)
        .with_startup_timeout(Duration::from_secs(60))
}

/// registry7 (and the mirror) speak plain HTTP; offline, docker.io is mirrored.
pub fn buildkitd_toml(registry: &str, mirror: Option<&str>) -> String {
    let mut t = format!("[registry.\"{registry}:{REGISTRY_PORT}\"]\n  http = true\n  insecure = true\n");
    if let Some(m) = mirror {
        t += &format!("[registry.\"{m}:{REGISTRY_PORT}\"]\n  http = true\n  insecure = true\n");
        t += &format!("[registry.\"docker.io\"]\n  mirrors = [\"{m}:{REGISTRY_PORT}\"]\n");
    }
    t
}

/// A Docker API client at the daemon's own version, for what testcontainers does not offer.
async fn docker_api() -> Result<testcontainers::bollard::Docker, Error> {
    let host = std::env::var("DOCKER_HOST").unwrap_or("unix:///var/run/docker.sock".into());
    testcontainers::bollard::Docker::connect_with_defaults()
        .map_err(|e| Error::Docker(format!("{host}: {e}\n  fix: {START_DOCKER}")))?
        .negotiate_version()
        .await
        .map_err(|e| Error::Docker(format!("no Docker daemon answers at {host}: {e}\n  fix: {START_DOCKER}")))
}

/// The Docker engine as lab7 sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Engine {
    pub host: String,
    pub version: String,
    pub api_version: String,
    pub os: String,
}

/// Asks the daemon for its version; the error says how to start Docker.
pub async fn engine() -> Result<Engine, Error> {
    let host = std::env::var("DOCKER_HOST").unwrap_or("unix:///var/run/docker.sock".into());
    let docker = docker_api().await?;
    let v = docker.version().await.map_err(|e| Error::Docker(format!("{host}: {e}\n  fix: {START_DOCKER}")))?;
    let api = v.api_version.clone().unwrap_or_default();
    let (major, minor) = api.split_once('.').unwrap_or(("0", "0"));
    if (major.parse::<u32>().unwrap_or(0), minor.parse::<u32>().unwrap_or(0)) < MIN_API {
        return Err(Error::Docker(format!(
            "the Docker Engine at {host} speaks API {api}; lab7 needs {}.{} or newer\n  fix: upgrade to Docker Engine 27.0+ (or Docker Desktop 4.31+)",
            MIN_API.0, MIN_API.1
        )));
    }
    Ok(Engine {
        host,
        version: v.version.unwrap_or_default(),
        api_version: v.api_version.unwrap_or_default(),
        os: format!("{}/{}", v.os.unwrap_or_default(), v.arch.unwrap_or_default()),
    })
}
