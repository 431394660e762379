//! The lab's builds as a student runs them: `docker buildx build … --push --cache-to …
//! --cache-from …` and `docker buildx prune -a -f`, with Docker's own buildx client.
//!
//! The builder is lab7's node, reached through buildx's `remote` driver at
//! `docker-container://<node>`: the builds are buildx's (its requests, its attestations, its
//! progress output), while BuildKit keeps running in the container lab7 confines (limits,
//! firewall, labels, removal) — a `docker-container` builder would be a container of buildx's
//! making, outside all of that. The builder's definition lives in a temp `BUILDX_CONFIG` of
//! the run, so nothing of it outlives the run, and a student's own builders are untouched.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use clap::ValueEnum;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::BuildSpec;
use crate::environment::{Exec, ExecEnd};
use crate::Error;

/// Which client runs the lab's builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Client {
    /// buildctl in the node: BuildKit's own client, nothing else between.
    #[default]
    Buildctl,
    /// `docker buildx` on this machine: the student's own commands.
    Buildx,
}

pub struct BuildxBuilder {
    name: String,
    config: tempfile::TempDir,
}

impl BuildxBuilder {
    /// `docker buildx create --driver remote docker-container://NODE`, in the run's own config.
    pub async fn create(node: &str, run_id: &str) -> Result<BuildxBuilder, Error> {
        let config = tempfile::Builder::new()
            .prefix(&format!("lab7-buildx-{run_id}-"))
            .tempdir()
            .map_err(|e| Error::docker(format!("a temp BUILDX_CONFIG: {e}"), None))?;
        let builder = BuildxBuilder { name: format!("lab7-{run_id}"), config };
        let endpoint = format!("docker-container://{node}");
        let out =
            builder.docker(&["buildx", "create", "--name", &builder.name, "--driver", "remote", &endpoint]).await?;
        if !out.status.success() {
            return Err(Self::failed("docker buildx create", &out));
        }
        Ok(builder)
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("docker");
        c.args(args).env("BUILDX_CONFIG", self.config.path()).kill_on_drop(true);
        c
    }

    async fn docker(&self, args: &[&str]) -> Result<std::process::Output, Error> {
        self.command(args).output().await.map_err(|e| {
            Error::docker(
                format!("`docker {}` did not start: {e}", args.join(" ")),
                Some(
                    "install the Docker CLI with its buildx plugin (make env does, from Debian's docker-buildx)".into(),
                ),
            )
        })
    }

    fn failed(what: &str, out: &std::process::Output) -> Error {
        Error::docker(
            format!("{what} failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
            Some("check `docker buildx version` (make env installs buildx)".into()),
        )
    }

    /// `docker buildx prune -a -f`: the node's own cache goes, as between the lab's builds.
    pub async fn prune(&self) -> Result<(), Error> {
        let out = self.docker(&["buildx", "prune", "--builder", &self.name, "--all", "--force"]).await?;
        if !out.status.success() {
            return Err(Self::failed("docker buildx prune", &out));
        }
        Ok(())
    }

    /// The lab's command on the app's folder, each output line to `on_line` as it comes; a
    /// timeout or an interruption stops the client (the node may still be building: the
    /// caller marks it tainted).
    pub async fn build(
        &self,
        spec: &BuildSpec,
        app_dir: &Path,
        timeout: Duration,
        cancel: &CancellationToken,
        mut on_line: impl FnMut(&str),
    ) -> Result<Exec, Error> {
        let args = spec.buildx_args(&self.name, app_dir);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = self
            .command(&argv)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::docker(format!("`docker buildx build` did not start: {e}"), None))?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let mut stderr = String::new();
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let end = loop {
            tokio::select! {
                line = lines.next_line() => match line {
                    Ok(Some(l)) => {
                        on_line(&l);
                        stderr.push_str(&l);
                        stderr.push('\n');
                    }
                    _ => {
                        let status = child.wait().await.map_err(|e| Error::docker(format!("docker buildx build: {e}"), None))?;
                        break ExecEnd::Exited(status.code().unwrap_or(-1).into());
                    }
                },
                _ = &mut deadline => break ExecEnd::TimedOut(timeout),
                _ = cancel.cancelled() => break ExecEnd::Cancelled,
            }
        };
        let _ = child.kill().await;
        Ok(Exec { end, stdout: String::new(), stderr })
    }
}
