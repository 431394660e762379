//! Issue "bare machine": registry7 and the BuildKit node come up on a private network.

use crate::common;

use lab7::environment::{EnvOptions, Images, LabEnvironment};
use lab7::lab::node_info;
use lab7::platform::Platform;

#[test]
fn registry_and_node_start_on_a_private_network() {
    common::block_on(async move {
        common::require_docker("registry_and_node_start_on_a_private_network");
        let images = Images::load();
        let env = LabEnvironment::start(&images, &EnvOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
        assert!(env.registry.name.starts_with("lab7-registry7-") && env.node.name.starts_with("lab7-node-"));
        assert_eq!(env.network, format!("lab7-{}", env.run_id));

        let client = env.registry.client().await.unwrap();
        let ping = client.ping().await.unwrap();
        assert_eq!(ping.as_u16(), 200, "GET /v2/ on registry7 from the host");

        let workers = env.node.workers().await.unwrap();
        let node = node_info(&workers);
        let platforms: Vec<String> = node.platforms.iter().map(|p| p.to_string()).collect();
        println!("node {} (BuildKit {}): platforms {}", env.node.name, node.buildkit_version, platforms.join(", "));
        assert!(node.platforms.contains(&Platform::linux_amd64()), "{workers}");
        assert!(
            node.platforms.contains(&Platform::linux_arm64()),
            "linux/arm64 missing: is QEMU registered with the F flag? {workers}"
        );
        assert_eq!(node.buildkit_version, "v0.26.0", "{workers}");
    })
}

/// A panicking test drops its environment, and the drop removes the run's containers and network.
#[test]
fn containers_are_removed_when_a_test_panics() {
    common::block_on(async move {
        use std::collections::HashMap;
        use testcontainers::bollard::query_parameters::ListContainersOptionsBuilder;

        common::require_docker("containers_are_removed_when_a_test_panics");
        let (tx, rx) = tokio::sync::oneshot::channel();
        let failing = tokio::spawn(async move {
            let env = LabEnvironment::start(&Images::load(), &EnvOptions::new()).await.unwrap();
            tx.send(env.run_id.clone()).unwrap();
            panic!("a test failing while the lab's containers run (expected by this test)");
        });
        assert!(failing.await.unwrap_err().is_panic());
        let run_id = rx.await.unwrap();

        let docker = lab7::environment::docker::connect().await.unwrap();
        let filters =
            HashMap::from([("label".to_string(), vec![format!("{}={run_id}", lab7::environment::RUN_LABEL)])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        for _ in 0..150 {
            let left = docker.list_containers(Some(options.clone())).await.unwrap();
            if left.is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
        panic!("containers of run {run_id} are still there 30 s after the panic");
    })
}
