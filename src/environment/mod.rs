//! The lab's containers: registry7 and the BuildKit node (plus, offline, a docker.io
//! mirror) on a private network of their own, all labelled with the run and its owner and
//! removed at the run's end — on Ctrl-C, on a panic, and by the next start after SIGKILL.
//! What a student's build may reach and use is set in [`isolation`]; which images run in
//! `images`, registry7 in `registry7`, the node in `node`; this module starts and ends a run.

pub mod context;
pub mod docker;
pub mod isolation;
pub mod lifecycle;
pub mod pins;
pub mod placement;
pub mod remote;

mod images;
mod node;
mod registry7;

use std::mem::ManuallyDrop;
use std::ops::Deref;

use serde::Serialize;
use testcontainers::bollard::models::NetworkCreateRequest;
use testcontainers::bollard::Docker;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

pub use docker::{engine, Engine};
use isolation::{Egress, NodeLimits, RunNetwork};
use lifecycle::RunLease;
pub use lifecycle::{OWNER_LABEL, RUN_LABEL};
use remote::RemoteNode;

use images::generic;
pub use images::{Images, Stack};
use node::{start_client, start_node};
pub use node::{Exec, ExecEnd, ExecOutput, Node};
pub use registry7::Registry7;
use registry7::{registry_container, start_registry7, RegistryAccess};

use crate::Error;

const REGISTRY_PORT: u16 = 5000;

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
        let helper = |own: &str| lifecycle::labels(&lifecycle::new_run_id(), &lifecycle::Owner::Container(own.into()));
        placement::detect(&docker, &helper).await?;
        lifecycle::sweep(&docker).await?;
        let lease = RunLease::take()?;
        let run_id = lease.run_id.clone();
        // Removes what this start created if it fails or is abandoned half-way (Ctrl-C).
        let guard = RemoveOnDrop(Some(run_id.clone()));
        let network = format!("lab7-{run_id}");
        let addresses = create_network(&docker, &network, &run_id).await?;
        join_network(&docker, &network).await?;
        let registry_name = format!("lab7-registry7-{run_id}");
        let mirror_name = format!("lab7-mirror-{run_id}");
        let remote = options.remote.as_ref();
        let access = RegistryAccess::for_node(remote, &network);
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
        let access = RegistryAccess::for_node(self.node.remote.as_ref(), &self.network);
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
            Some(_) => self.registry.address().await,
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

fn labels(run_id: &str) -> std::collections::HashMap<String, String> {
    lifecycle::labels(run_id, &lifecycle::Owner::me())
}

/// lab7 in a container joins the run's network to reach registry7 there; it leaves it when
/// the run is removed ([`lifecycle::remove_run`]).
async fn join_network(docker: &Docker, network: &str) -> Result<(), Error> {
    use testcontainers::bollard::models::NetworkConnectRequest;
    let Some(own) = placement::own_container() else { return Ok(()) };
    let request = NetworkConnectRequest { container: own.id.clone(), endpoint_config: None };
    docker
        .connect_network(network, request)
        .await
        .map_err(|e| docker::error(&format!("join network {network} (lab7 runs in a container)"), e))
}
