//! Where lab7 itself runs: a process beside the engine, or a container of that engine
//! (`docker run -v /var/run/docker.sock:/var/run/docker.sock … IMAGE check /work`). In a
//! container three things change: registry7 is reached over the run's own network, which lab7
//! joins (a port published on the host's loopback is not the container's loopback); the run's
//! owner is that container, whose liveness the engine knows (its hostname and pid say nothing
//! after `--rm`); and the grading host's own addresses, which the node's firewall refuses, are
//! read on the host's network by a helper container of lab7's own image, since the container's
//! addresses are not the host's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use testcontainers::bollard::models::{ContainerCreateBody, HostConfig};
use testcontainers::bollard::query_parameters::{
    CreateContainerOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use testcontainers::bollard::Docker;

use super::docker;
use crate::Error;

/// Where this lab7 process runs, as far as the engine is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// A process on the engine's host (or beside a remote engine).
    Host,
    /// A container of the engine lab7 talks to.
    Container(OwnContainer),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnContainer {
    /// The container's full id.
    pub id: String,
    /// The image it runs, by id: the helper that reads the host's addresses runs it too.
    pub image: String,
}

/// Found once: a batch's jobs start their environments at once, and one of them looks.
static PLACEMENT: tokio::sync::OnceCell<Placement> = tokio::sync::OnceCell::const_new();
static HOST_ADDRESSES: OnceLock<Vec<IpAddr>> = OnceLock::new();

/// The labels of the helper container (a run of its own, owned by lab7's container, so that a
/// sweep removes it if lab7 dies before it does), from lab7's container id.
pub type HelperLabels<'a> = &'a (dyn Fn(&str) -> HashMap<String, String> + Sync);

/// Where lab7 runs, found once per process: a container id in the mount table that the engine
/// knows as a container is lab7's own container; anything else is the host.
pub async fn detect(docker: &Docker, helper_labels: HelperLabels<'_>) -> Result<&'static Placement, Error> {
    PLACEMENT.get_or_try_init(|| look(docker, helper_labels)).await
}

async fn look(docker: &Docker, helper_labels: HelperLabels<'_>) -> Result<Placement, Error> {
    let found = match own_container_id() {
        Some(id) => match docker.inspect_container(&id, None).await {
            Ok(c) => Placement::Container(OwnContainer { id, image: c.image.unwrap_or_default() }),
            Err(_) => Placement::Host, // a container, but not one of this engine's
        },
        None => Placement::Host,
    };
    if let Placement::Container(own) = &found {
        let addresses = read_host_addresses(docker, own, helper_labels(&own.id)).await?;
        let _ = HOST_ADDRESSES.set(addresses);
    }
    Ok(found)
}

/// Where lab7 runs, if [`detect`] has said it already; the host otherwise.
pub fn current() -> &'static Placement {
    PLACEMENT.get().unwrap_or(&Placement::Host)
}

/// lab7's own container, when it runs in one.
pub fn own_container() -> Option<&'static OwnContainer> {
    match current() {
        Placement::Container(c) => Some(c),
        Placement::Host => None,
    }
}

/// The grading host's own addresses, which the node's firewall refuses: this process's own on
/// the host, the helper's in a container. (Docker Desktop's VM sees others, which the private
/// ranges cover.)
pub fn host_addresses() -> Vec<IpAddr> {
    match HOST_ADDRESSES.get() {
        Some(a) => a.clone(),
        None => interface_addresses(),
    }
}

/// This process's interface addresses.
pub fn interface_addresses() -> Vec<IpAddr> {
    if_addrs::get_if_addrs().map(|ifs| ifs.into_iter().map(|i| i.ip()).collect()).unwrap_or_default()
}

/// Docker bind-mounts `/etc/hostname` from `…/containers/<64 hex>/hostname`: that path, in
/// this process's mount table, names its container (Docker Engine and Docker Desktop alike;
/// the hostname itself may be set by `--hostname`, and cgroup v2 paths hide the id).
fn own_container_id() -> Option<String> {
    container_id_in(&std::fs::read_to_string("/proc/self/mountinfo").ok()?)
}

fn container_id_in(mountinfo: &str) -> Option<String> {
    mountinfo.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        // mountinfo: id parent major:minor root mount-point …
        if fields.get(4) != Some(&"/etc/hostname") {
            return None;
        }
        let root = fields.get(3)?;
        let id = root.split('/').skip_while(|p| *p != "containers").nth(1)?;
        (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
    })
}

/// Runs lab7's own image on the host's network (`lab7 host-addresses`, a hidden command) and
/// reads what it prints: one address per line.
async fn read_host_addresses(
    docker: &Docker,
    own: &OwnContainer,
    labels: HashMap<String, String>,
) -> Result<Vec<IpAddr>, Error> {
    let exe = std::env::current_exe().map_err(|e| Error::docker(format!("lab7's own path: {e}"), None))?;
    let body = ContainerCreateBody {
        image: Some(own.image.clone()),
        entrypoint: Some(vec![exe.to_string_lossy().into_owned(), "host-addresses".into()]),
        cmd: Some(vec![]),
        labels: Some(labels),
        host_config: Some(HostConfig { network_mode: Some("host".into()), ..Default::default() }),
        ..Default::default()
    };
    // Named by Docker: a sweep finds it by its labels.
    let create = CreateContainerOptionsBuilder::new().build();
    let id = docker
        .create_container(Some(create), body)
        .await
        .map_err(|e| docker::error("create the host-address helper", e))?
        .id;
    let printed = run_to_end(docker, &id).await;
    let remove = RemoveContainerOptionsBuilder::new().force(true).build();
    let _ = docker.remove_container(&id, Some(remove)).await;
    let printed = printed?;
    Ok(printed.lines().filter_map(|l| l.trim().parse().ok()).collect())
}

async fn run_to_end(docker: &Docker, id: &str) -> Result<String, Error> {
    docker.start_container(id, None).await.map_err(|e| docker::error("start the host-address helper", e))?;
    let wait = WaitContainerOptionsBuilder::new().condition("not-running").build();
    let ended = tokio::time::timeout(Duration::from_secs(30), docker.wait_container(id, Some(wait)).next()).await;
    if ended.is_err() {
        return Err(Error::docker("the host-address helper did not end within 30 s", None));
    }
    let logs = LogsOptionsBuilder::new().stdout(true).build();
    let chunks: Vec<_> = docker.logs(id, Some(logs)).collect().await;
    Ok(chunks.into_iter().filter_map(Result::ok).map(|c| c.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_id_comes_from_the_hostname_mount() {
        let id = "4f1c2a7e9b3d".repeat(5) + "abcd";
        let docker = format!(
            "1460 1380 0:160 / / rw,relatime master:1 - overlay overlay rw\n\
             1475 1460 254:1 /var/lib/docker/containers/{id}/resolv.conf /etc/resolv.conf rw - ext4 /dev/vda1 rw\n\
             1476 1460 254:1 /var/lib/docker/containers/{id}/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"
        );
        assert_eq!(container_id_in(&docker), Some(id.clone()));
        // The host's own table lists containers' shm mounts, never its /etc/hostname from one.
        let host = format!("300 29 0:70 / /var/lib/docker/containers/{id}/mounts/shm rw - tmpfs shm rw\n");
        assert_eq!(container_id_in(&host), None);
        assert_eq!(container_id_in("1476 1460 254:1 /etc/hostname /etc/hostname rw - ext4 /dev/vda1 rw\n"), None);
    }
}
