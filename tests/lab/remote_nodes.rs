//! `lab7 batch --node`: two BuildKit daemons standing in as remote nodes (containers of this
//! test listening on TCP, on a network of their own, reached only through ports published on
//! that network's gateway, as a machine elsewhere is reached through its address).

use crate::common;

use std::collections::HashMap;
use std::process::Command;

use lab7::environment::remote::RemoteNode;
use lab7::environment::{EnvOptions, Images, LabEnvironment, OWNER_LABEL, RUN_LABEL};
use lab7::registry::RegistryClient;
use testcontainers::bollard::models::{NetworkCreateRequest, PortBinding};
use testcontainers::bollard::Docker;
use testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

const NODE_PORT: u16 = 1234;

/// The stand-in nodes' network, removed when the test ends (its containers first).
struct Nodes {
    docker: Docker,
    network: String,
    gateway: String,
    containers: Vec<ContainerAsync<GenericImage>>,
    addrs: Vec<String>,
}

impl Nodes {
    async fn start(n: usize) -> Nodes {
        let docker = Docker::connect_with_local_defaults().unwrap();
        let id = lab7::environment::lifecycle::new_run_id();
        let network = format!("lab7-remote-test-{id}");
        let labels = HashMap::from([
            (RUN_LABEL.to_string(), format!("remote-test-{id}")),
            (OWNER_LABEL.to_string(), lab7::environment::lifecycle::owner()),
        ]);
        let request =
            NetworkCreateRequest { name: network.clone(), labels: Some(labels.clone()), ..Default::default() };
        docker.create_network(request).await.unwrap();
        let info = docker.inspect_network(&network, None).await.unwrap();
        let gateway = info.ipam.and_then(|i| i.config).and_then(|c| c.into_iter().find_map(|c| c.gateway)).unwrap();
        let images = Images::load();
        let mut toml = String::new();
        let mut containers = Vec::new();
        if let Some(mirror) = &images.mirror {
            let (name, tag) = mirror.rsplit_once(':').unwrap();
            let m = GenericImage::new(name, tag)
                .with_wait_for(WaitFor::message_on_stderr("listening on"))
                .with_container_name(format!("lab7-remote-mirror-{id}"))
                .with_network(&network)
                .with_labels(labels.clone())
                .start()
                .await
                .unwrap();
            containers.push(m);
            let host = format!("lab7-remote-mirror-{id}:5000");
            toml =
                format!("[registry.\"{host}\"]\n  http = true\n[registry.\"docker.io\"]\n  mirrors = [\"{host}\"]\n");
        }
        let mut addrs = Vec::new();
        for i in 0..n {
            let (name, tag) = images.buildkit.rsplit_once(':').unwrap();
            let gw = gateway.clone();
            let node = GenericImage::new(name, tag)
                .with_wait_for(WaitFor::message_on_stderr("running server on"))
                .with_exposed_port(NODE_PORT.tcp())
                .with_cmd([
                    "--addr",
                    &format!("tcp://0.0.0.0:{NODE_PORT}"),
                    "--addr",
                    "unix:///run/buildkit/buildkitd.sock",
                ])
                .with_container_name(format!("lab7-remote-node{i}-{id}"))
                .with_network(&network)
                .with_labels(labels.clone())
                .with_privileged(true)
                .with_copy_to("/etc/buildkit/buildkitd.toml", toml.clone().into_bytes())
                .with_host_config_modifier(move |hc| {
                    let binding = PortBinding { host_ip: Some(gw.clone()), host_port: Some(String::new()) };
                    hc.port_bindings = Some(HashMap::from([(format!("{NODE_PORT}/tcp"), Some(vec![binding]))]));
                })
                .start()
                .await
                .unwrap();
            let port = node.get_host_port_ipv4(NODE_PORT).await.unwrap();
            addrs.push(format!("tcp://{gateway}:{port}"));
            containers.push(node);
        }
        Nodes { docker, network, gateway, containers, addrs }
    }

    /// How many cache records a node holds: it built something when it holds any.
    async fn records(&self, i: usize) -> usize {
        let offset = self.containers.len() - self.addrs.len();
        let id = self.containers[offset + i].id().to_string();
        let out = Command::new("docker").args(["exec", &id, "buildctl", "du"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.len() > 20 && !l.starts_with("ID")).count()
    }

    async fn stop(mut self) {
        for c in self.containers.drain(..) {
            c.rm().await.unwrap();
        }
        self.docker.remove_network(&self.network).await.unwrap();
    }
}

/// A failed test leaves nothing either: its containers, then its network.
impl Drop for Nodes {
    fn drop(&mut self) {
        if self.containers.is_empty() {
            return;
        }
        let ids: Vec<String> = self.containers.iter().map(|c| c.id().to_string()).collect();
        let _ = Command::new("docker").args(["rm", "-fv"]).args(&ids).output();
        let _ = Command::new("docker").args(["network", "rm", &self.network]).output();
    }
}

#[test]
fn registry7_for_a_remote_node_is_published_behind_the_runs_password() {
    common::block_on(async move {
        common::require_docker("remote nodes");
        let nodes = Nodes::start(1).await;
        let remote = RemoteNode::parse(&nodes.addrs[0], None, nodes.gateway.parse().unwrap()).unwrap();
        let env = LabEnvironment::start(&Images::load(), &EnvOptions { remote: Some(remote), ..EnvOptions::new() })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let host = env.registry_host().await.unwrap();
        assert!(host.starts_with(&nodes.gateway), "{host}");
        // Without the run's password nothing is read; lab7's own client has it.
        let anonymous = RegistryClient::new(&host).catalog().await;
        assert!(anonymous.unwrap_err().to_string().contains("401"), "an open registry7 on {host}");
        assert!(env.registry.client().await.unwrap().catalog().await.is_ok());
        // buildctl in the client reaches the node.
        assert!(env.node.workers().await.unwrap().contains("linux/arm64"));
        env.shutdown().await.unwrap();
        nodes.stop().await;
    })
}

#[test]
fn batch_spreads_submissions_over_remote_nodes_with_the_verdicts_of_lab7s_own_node() {
    common::block_on(async move {
        common::require_docker("remote nodes");
        let nodes = Nodes::start(2).await;
        let class = tempfile::tempdir().unwrap();
        for app in ["reference", "arm64-fails", "single-stage"] {
            let out = Command::new("cp")
                .arg("-r")
                .arg(common::root().join("lab_examples").join(app))
                .arg(class.path())
                .output()
                .unwrap();
            assert!(out.status.success());
        }
        let out = tempfile::tempdir().unwrap();
        let csv = out.path().join("results.csv");
        let mut args =
            vec!["batch".to_string(), class.path().display().to_string(), "--out".into(), csv.display().to_string()];
        for a in &nodes.addrs {
            args.extend(["--node".to_string(), a.clone()]);
        }
        args.extend(["--registry-address".to_string(), nodes.gateway.clone()]);
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = common::lab7(&common::root(), &argv);
        let table = std::fs::read_to_string(&csv).unwrap_or_default();
        assert_eq!(o.status.code(), Some(1), "{table}\n{}", String::from_utf8_lossy(&o.stderr));
        let verdict = |name: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("{name},")))
                .unwrap_or_else(|| panic!("{name}:\n{table}"))
                .to_string()
        };
        assert!(verdict("reference").starts_with("reference,pass,100,100,50"), "{table}");
        assert!(verdict("arm64-fails").starts_with("arm64-fails,fail,"), "{table}");
        assert!(verdict("single-stage").contains("cache_separate_image_mode_max"), "{table}");
        // Both nodes built: one job each.
        for i in 0..2 {
            assert!(nodes.records(i).await > 0, "node {i} built nothing:\n{}", String::from_utf8_lossy(&o.stderr));
        }
        nodes.stop().await;
    })
}

#[test]
fn a_node_that_is_not_tcp_or_lacks_the_registry_address_is_refused_before_any_work() {
    let o = common::lab7(&common::root(), &["batch", "lab_examples", "--node", "tcp://192.0.2.1:1234"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--registry-address"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let o = common::lab7(
        &common::root(),
        &["batch", "lab_examples", "--node", "192.0.2.1:1234", "--registry-address", "192.0.2.10"],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("tcp://"), "{}", String::from_utf8_lossy(&o.stderr));
}
