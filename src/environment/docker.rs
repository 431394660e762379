//! The Docker engine: connecting, its version, and errors that name their real cause.

use serde::Serialize;
use testcontainers::bollard::Docker;

use crate::Error;

use super::pins::min_api;

/// Where the engine listens when DOCKER_HOST is unset: what bollard connects to on this OS.
#[cfg(windows)]
const DEFAULT_HOST: &str = "npipe:////./pipe/docker_engine";
#[cfg(not(windows))]
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or(DEFAULT_HOST.into())
}

/// What to do about a Docker failure, chosen by what the error says.
pub fn fix_for(message: &str) -> String {
    let m = message.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| m.contains(n));
    if has(&["permission denied"]) {
        "this user may not use the Docker socket: run as root, or add the user to the `docker` group (then log in again)".into()
    } else if has(&[
        "no such file or directory",
        "cannot find the file specified",
        "connection refused",
        "socket not found",
        "cannot connect",
        "error trying to connect",
    ]) {
        "Docker is not running: start Docker Desktop, or `sudo systemctl start docker`; on a bare Debian machine run `make env`".into()
    } else if has(&["timed out", "timeout"]) {
        "the Docker daemon did not answer in time: it may be overloaded or hung; check `docker info` and the daemon's log".into()
    } else if has(&["too new", "client version"]) {
        format!("lab7 needs Docker API {}.{} (Docker Engine 27.0+): upgrade Docker", min_api().0, min_api().1)
    } else if has(&["no such image", "pull access denied", "manifest unknown", "not found: manifest"]) {
        "the image is missing and could not be pulled: run `make env` (scripts/lab-env.sh) to pull or build it".into()
    } else if has(&["no space left"]) {
        "the Docker host's disk is full: free space (`docker system prune`) and run again".into()
    } else if has(&["has active endpoints"]) {
        // Seen once here, after two test runs had been started at once: the network kept an
        // endpoint of a container that was gone, and only a daemon restart cleared it.
        "the network still holds an endpoint of a container that is gone (a stale endpoint in the Docker daemon): restart Docker (`sudo systemctl restart docker`, or Docker Desktop's Restart), then `lab7 doctor --clean`".into()
    } else if has(&["conflict", "already in use"]) {
        "a container or network of an earlier run is in the way: `lab7 doctor --clean` removes leftovers of runs that are gone".into()
    } else if has(&["address pools", "could not find an available"]) {
        "Docker has no free network ranges left: remove unused networks (`lab7 doctor --clean`, `docker network prune`)"
            .into()
    } else {
        "see the Docker daemon's log for the cause".into()
    }
}

/// A Docker API failure: what lab7 was doing, what Docker said, and the fix for that cause.
pub fn error(what: &str, e: impl std::error::Error + Send + Sync + 'static) -> Error {
    let msg = e.to_string();
    Error::Docker { what: format!("{what}: {msg}"), fix: Some(fix_for(&msg)), source: Some(Box::new(e)) }
}

/// A Docker API client at the daemon's own version.
pub async fn connect() -> Result<Docker, Error> {
    let docker = Docker::connect_with_defaults().map_err(|e| error(&host(), e))?;
    docker.ping().await.map_err(|e| error(&format!("no Docker daemon answers at {}", host()), e))?;
    Ok(docker)
}

/// The Docker engine as lab7 sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Engine {
    pub host: String,
    pub version: String,
    pub api_version: String,
    pub os: String,
}

impl Engine {
    /// Which of the lab's platforms this engine's CPU runs natively and which under QEMU: arm64
    /// is emulated on an x86-64 host, amd64 on Apple silicon or an arm64 Linux host.
    pub fn native_and_emulated(&self) -> String {
        let arch = self.os.rsplit('/').next().unwrap_or_default();
        match arch {
            "amd64" | "x86_64" => "linux/amd64 builds natively here; linux/arm64 runs under QEMU emulation (slower)".into(),
            "arm64" | "aarch64" => "linux/arm64 builds natively here (an arm64 host, e.g. Apple silicon); linux/amd64 runs under QEMU emulation (slower)".into(),
            other => format!("this engine's CPU is {other}: linux/amd64 and linux/arm64 both run under QEMU emulation"),
        }
    }
}

/// Asks the daemon for its version; the error says how to start or upgrade Docker.
pub async fn engine() -> Result<Engine, Error> {
    engine_of(&connect().await?).await
}

/// The version of the daemon a client is connected to, refused when older than the pinned minimum.
pub async fn engine_of(docker: &Docker) -> Result<Engine, Error> {
    let v = docker.version().await.map_err(|e| error(&host(), e))?;
    let api = v.api_version.clone().unwrap_or_default();
    let (major, minor) = api.split_once('.').unwrap_or(("0", "0"));
    // testcontainers 0.28's client (bollard 0.21) sends unversioned paths, so the daemon
    // answers at its own version; lab7 still refuses engines older than the pinned minimum.
    if (major.parse::<u32>().unwrap_or(0), minor.parse::<u32>().unwrap_or(0)) < min_api() {
        return Err(Error::docker(
            format!(
                "the Docker Engine at {} speaks API {api}; lab7 needs {}.{} or newer",
                host(),
                min_api().0,
                min_api().1
            ),
            Some("upgrade to Docker Engine 27.0+ (or Docker Desktop 4.31+)".into()),
        ));
    }
    Ok(Engine {
        host: host(),
        version: v.version.unwrap_or_default(),
        api_version: api,
        os: format!("{}/{}", v.os.unwrap_or_default(), v.arch.unwrap_or_default()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_cause_gets_its_own_fix() {
        assert!(fix_for("Error: Permission denied (os error 13)").contains("docker` group"));
        assert!(fix_for("Socket not found: /var/run/docker.sock").contains("start Docker"));
        assert!(fix_for("Timeout error").contains("did not answer in time"));
        assert!(fix_for("No such image: lab7/x:1").contains("make env"));
        assert!(fix_for("write /var/lib/docker/x: no space left on device").contains("disk is full"));
        assert!(fix_for("Conflict. The container name \"/x\" is already in use").contains("doctor --clean"));
        assert!(!fix_for("something else entirely").contains("start Docker"));
        // What Docker 28 answered for a network holding such a stale endpoint (seen here).
        let stale = "Docker responded with status code 403: error while removing network: network lab7-a57edaf9a5cc has active endpoints (name:\"lab7-node-a57edaf9a5cc\" id:\"3cdce8dac2c1\")";
        assert!(fix_for(stale).contains("restart Docker"));
        let on = |os: &str| Engine {
            host: String::new(),
            version: String::new(),
            api_version: String::new(),
            os: os.into(),
        };
        assert!(on("linux/arm64").native_and_emulated().starts_with("linux/arm64 builds natively"));
        assert!(on("linux/amd64").native_and_emulated().contains("linux/arm64 runs under QEMU"));
        // Windows' named pipe, Docker Desktop stopped.
        assert!(fix_for("The system cannot find the file specified. (os error 2)").contains("start Docker Desktop"));
    }
}
