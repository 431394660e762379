//! A run killed with SIGKILL cannot clean up: the next lab7 start (or `lab7 doctor --clean`)
//! removes what it left, and never what a live run uses. Alone in its test binary, so that no
//! other test's start sweeps the leftovers before this test has seen them.

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use lab7::environment::{EnvOptions, Images, LabEnvironment, OWNER_LABEL};
use testcontainers::bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};

async fn count(label: String) -> (usize, usize) {
    let docker = lab7::environment::docker::connect().await.unwrap();
    let filter = HashMap::from([("label".to_string(), vec![label])]);
    let c = docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filter).build()));
    let n = docker.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filter).build()));
    (c.await.unwrap().len(), n.await.unwrap().len())
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_killed_run_left_is_removed_and_a_live_run_is_not() {
    common::require_docker("what_a_killed_run_left_is_removed_and_a_live_run_is_not");
    let live = LabEnvironment::start(&Images::load(), &EnvOptions::new()).await.unwrap();
    let app = tempfile::tempdir().unwrap();
    std::fs::write(app.path().join("Dockerfile_multi"), "FROM busybox:1.36\nRUN sleep 120\n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_lab7"))
        .args(["check", app.path().to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host = lab7::environment::lifecycle::owner().rsplit_once('/').unwrap().0.to_string();
    let killed = format!("{OWNER_LABEL}={host}/{}", child.id());
    let mut up = (0, 0);
    for _ in 0..300 {
        up = count(killed.clone()).await;
        if up.0 >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up.0 >= 3 && up.1 == 1, "the run never came up: {up:?}");
    child.kill().unwrap(); // SIGKILL: no cleanup of its own
    child.wait().unwrap();
    assert_eq!(count(killed.clone()).await, up, "SIGKILL left nothing? then this test proves nothing");

    let o = Command::new(env!("CARGO_BIN_EXE_lab7")).args(["doctor", "--clean"]).output().unwrap();
    let said = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(0), "{said}{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(count(killed).await, (0, 0), "doctor --clean left the killed run's objects: {said}");
    let killed_id =
        said.lines().find_map(|l| l.trim().strip_prefix("run ")).expect("doctor --clean names the run").to_string();
    let lock = std::env::temp_dir().join("lab7-runs").join(format!("{killed_id}.lock"));
    assert!(!lock.exists(), "the dead run's lock file is still there: {}", lock.display());
    let mine = format!("{}={}", lab7::environment::RUN_LABEL, live.run_id);
    assert_eq!(count(mine).await.1, 1, "doctor --clean removed a live run's network");
    assert!(live.registry.client().await.unwrap().ping().await.is_ok(), "a live run's registry7 was removed");
    assert!(!said.contains(&live.run_id), "{said}");
    live.shutdown().await.unwrap();
}
