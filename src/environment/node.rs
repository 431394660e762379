//! The BuildKit node (or buildctl's client for a remote one): started confined, commands run
//! in it to their end.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use testcontainers::bollard::query_parameters::UploadToContainerOptionsBuilder;
use testcontainers::bollard::Docker;
use testcontainers::core::{CgroupnsMode, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::ImageExt;
use tokio_util::sync::CancellationToken;

use super::isolation::{LimitHit, RunNetwork};
use super::remote::{RegistryLogin, RemoteNode};

use super::{context, docker, generic, isolation, labels, EnvOptions, Started};
use crate::Error;

/// The BuildKit daemon, as buildx's docker-container driver runs it, confined (see [`isolation`]).
pub struct Node {
    pub name: String,
    /// The daemon elsewhere that builds, when `container` is only buildctl's client.
    pub remote: Option<RemoteNode>,
    pub(super) container: Started,
    pub(super) docker: Docker,
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
    pub(super) async fn give_login(&self, registry_host: &str, login: &RegistryLogin) -> Result<(), Error> {
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
pub(super) async fn exec_to_end(
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

/// The node as buildx's docker-container driver runs it (privileged: BuildKit creates
/// namespaces and mounts), but with a cgroup namespace of its own so that its `RUN` steps
/// count against its limits, build storage on a bounded tmpfs, and `RUN` steps networked
/// apart from it and fenced in by its firewall rules.
pub(super) async fn start_node(
    docker: &Docker,
    image: &str,
    name: &str,
    (network, addresses): (&str, &RunNetwork),
    run_id: &str,
    toml: String,
    options: &EnvOptions,
) -> Result<Started, Error> {
    let limits = options.limits;
    let v4 = isolation::rules_v4(options.egress, &super::placement::host_addresses(), addresses);
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
pub(super) async fn start_client(
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
