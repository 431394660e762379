//! registry7: the student's registry, `registry:2` with deletion enabled, as the run starts it.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use testcontainers::bollard::models::PortBinding;
use testcontainers::bollard::Docker;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerRequest, GenericImage, ImageExt};

use super::remote::{RegistryLogin, RemoteNode};

use super::node::{exec_to_end, ExecOutput};
use super::{docker, generic, labels, Started, REGISTRY_PORT};
use crate::reference::Digest;
use crate::registry::deletion::RegistryHost;
use crate::registry::version::RegistryVersion;
use crate::registry::RegistryClient;
use crate::Error;

/// The student's registry, `registry:2` with deletion enabled, published on loopback only.
pub struct Registry7 {
    pub name: String,
    /// What `registry --version` says it is: the deletion's config path and advice follow it.
    pub version: RegistryVersion,
    pub(super) access: RegistryAccess,
    pub(super) container: Started,
    docker: Docker,
}

/// How lab7 reaches registry7 and whether it asks for a login: published on the host's
/// loopback and open for lab7's own node; on an address a remote node reaches, behind the
/// run's password, for one; not published at all when lab7 runs in a container on the run's
/// network.
#[derive(Debug, Clone)]
pub(super) struct RegistryAccess {
    reach: Reach,
    pub(super) login: Option<RegistryLogin>,
}

#[derive(Debug, Clone)]
enum Reach {
    /// A port published on this host address.
    Published(IpAddr),
    /// Its address on the run's network, which lab7's own container has joined.
    RunNetwork(String),
}

impl RegistryAccess {
    pub(super) fn for_node(remote: Option<&RemoteNode>, network: &str) -> RegistryAccess {
        match remote {
            Some(r) => {
                RegistryAccess { reach: Reach::Published(r.registry_address), login: Some(RegistryLogin::new()) }
            }
            None if super::placement::own_container().is_some() => {
                RegistryAccess { reach: Reach::RunNetwork(network.to_string()), login: None }
            }
            None => RegistryAccess { reach: Reach::Published(IpAddr::V4(Ipv4Addr::LOCALHOST)), login: None },
        }
    }
}

impl Registry7 {
    pub(super) async fn new(name: String, container: Started, docker: Docker, access: RegistryAccess) -> Registry7 {
        let mut r = Registry7 { name, version: RegistryVersion::assumed(), access, container, docker };
        if let Ok(out) = r.exec(&["registry", "--version"]).await {
            r.version = RegistryVersion::parse(&out.stdout).unwrap_or_else(RegistryVersion::assumed);
        }
        r
    }

    fn gc_args(&self) -> [&'static str; 3] {
        ["registry", "garbage-collect", self.version.config_path()]
    }

    /// Where lab7 reaches it, `IP:PORT`: the published port (it changes when the container
    /// restarts), or its address on the run's network (which may change too).
    pub(super) async fn address(&self) -> Result<String, Error> {
        match &self.access.reach {
            Reach::Published(ip) => {
                let port = self
                    .container
                    .get_host_port_ipv4(REGISTRY_PORT.tcp())
                    .await
                    .map_err(|e| docker::error("registry7 port", e))?;
                Ok(format!("{ip}:{port}"))
            }
            Reach::RunNetwork(network) => {
                let info = self
                    .docker
                    .inspect_container(self.container.id(), None)
                    .await
                    .map_err(|e| docker::error("registry7's address", e))?;
                let on = info.network_settings.and_then(|n| n.networks).and_then(|mut n| n.remove(network));
                let ip = on.and_then(|e| e.ip_address).filter(|ip| !ip.is_empty()).ok_or_else(|| {
                    Error::docker(format!("registry7 has no address on {network} (is it running?)"), None)
                })?;
                Ok(format!("{ip}:{REGISTRY_PORT}"))
            }
        }
    }

    /// A client on the registry's address, with the run's login when it has one.
    pub async fn client(&self) -> Result<RegistryClient, Error> {
        let client = RegistryClient::new(&self.address().await?);
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

/// registry7 lets manifests be deleted: the lab's bonus needs it.
pub(super) async fn start_registry7(
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
    let host_ip = match &access.reach {
        Reach::Published(ip) => Some(ip.to_string()),
        Reach::RunNetwork(_) => None,
    };
    request
        .with_host_config_modifier(move |hc| {
            // Published for lab7 on the host's loopback only (for a remote node, on the address
            // it reaches, behind the login): nothing else may use it. lab7 in a container
            // reaches it on the run's network instead: not published at all.
            hc.publish_all_ports = Some(false);
            hc.port_bindings = host_ip.clone().map(|ip| {
                let binding = PortBinding { host_ip: Some(ip), host_port: Some(String::new()) };
                HashMap::from([(format!("{REGISTRY_PORT}/tcp"), Some(vec![binding]))])
            });
            hc.memory = Some(1 << 30);
            hc.pids_limit = Some(512);
        })
        .start()
        .await
        .map(Started::new)
        .map_err(|e| docker::error(&format!("start registry7 ({image})"), e))
}

pub(super) fn registry_container(
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
