//! Nothing of a run outlives it: SIGINT, SIGTERM and SIGHUP stop `lab7` cleanly with a
//! partial report; a build past its timeout is the student's failure with a report; an
//! interrupted batch keeps every row it finished.

use crate::common;

use lab7::checks::{CheckId, Status};

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};

use lab7::report::Report;
use testcontainers::bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};

fn sleeper() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile_multi"), "FROM busybox:1.36\nRUN sleep 120\n").unwrap();
    dir
}

/// Containers and networks whose owner label names this process id on this host.
async fn objects_owned_by(pid: u32) -> (usize, usize) {
    let docker = lab7::environment::docker::connect().await.unwrap();
    let owner = format!("{}={}", lab7::environment::OWNER_LABEL, owner_of(pid));
    let filter = HashMap::from([("label".to_string(), vec![owner])]);
    let containers =
        docker.list_containers(Some(ListContainersOptionsBuilder::new().all(true).filters(&filter).build())).await;
    let networks = docker.list_networks(Some(ListNetworksOptionsBuilder::new().filters(&filter).build())).await;
    (containers.unwrap().len(), networks.unwrap().len())
}

fn owner_of(pid: u32) -> String {
    let me = lab7::environment::lifecycle::owner();
    format!("{}/{pid}", me.rsplit_once('/').unwrap().0)
}

fn signal(child: &Child, sig: i32) {
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

#[test]
fn each_stop_signal_cleans_up_and_writes_the_partial_report() {
    common::block_on(async move {
        common::require_docker("each_stop_signal_cleans_up_and_writes_the_partial_report");
        let app = sleeper();
        for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143), (libc::SIGHUP, 129)] {
            let out = tempfile::tempdir().unwrap();
            let report = out.path().join("report.json");
            let mut child = common::spawn_lab7(&[
                "check",
                app.path().to_str().unwrap(),
                "--format",
                "json",
                "--out",
                report.to_str().unwrap(),
            ]);
            common::wait_for_line(&mut child, "sleep 120");
            let (containers, networks) = objects_owned_by(child.id()).await;
            assert!(containers >= 2 && networks == 1, "the run is up: {containers} containers, {networks} networks");
            signal(&child, sig);
            let status = child.wait().unwrap();
            assert_eq!(status.code(), Some(code), "signal {sig}");
            assert_eq!(objects_owned_by(child.id()).await, (0, 0), "signal {sig} left containers or the network");
            let r: Report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
            let stopped = r.run.as_ref().and_then(|run| run.stopped.clone()).unwrap_or_default();
            assert!(stopped.contains("interrupted"), "signal {sig}: {stopped}");
            assert_eq!(r.check(CheckId::BuildsSucceed).status, Status::Fail);
        }
    })
}

#[test]
fn a_build_past_its_timeout_fails_as_the_students_with_a_report() {
    common::require_docker("a_build_past_its_timeout_fails_as_the_students_with_a_report");
    let app = sleeper();
    let out = tempfile::tempdir().unwrap();
    let report = out.path().join("report.json");
    let args = ["check", app.path().to_str().unwrap(), "--build-timeout", "5", "--format", "json"];
    let o = Command::new(env!("CARGO_BIN_EXE_lab7"))
        .current_dir(common::root())
        .args(args)
        .args(["--out", report.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", String::from_utf8_lossy(&o.stderr));
    let r: Report = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    let builds = r.check(CheckId::BuildsSucceed);
    assert!(builds.seen.contains("did not finish within 5 s"), "{}", builds.seen);
}

#[test]
fn an_interrupted_batch_keeps_the_rows_and_reports_it_finished() {
    common::block_on(async move {
        common::require_docker("an_interrupted_batch_keeps_the_rows_and_reports_it_finished");
        let class = tempfile::tempdir().unwrap();
        copy_dir(&common::example("reference"), &class.path().join("a-reference"));
        let slow = class.path().join("b-sleeper");
        std::fs::create_dir_all(&slow).unwrap();
        std::fs::copy(sleeper().path().join("Dockerfile_multi"), slow.join("Dockerfile_multi")).unwrap();
        let out = tempfile::tempdir().unwrap();
        let csv = out.path().join("results.csv");
        // One job: the reference is finished before the sleeper starts (with more jobs both run at once).
        let mut child = common::spawn_lab7(&[
            "batch",
            class.path().to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
            "--jobs",
            "1",
        ]);
        common::wait_for_line(&mut child, "sleep 120");
        signal(&child, libc::SIGINT);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130));
        assert_eq!(objects_owned_by(child.id()).await, (0, 0), "the batch left containers or networks");
        let table = std::fs::read_to_string(&csv).unwrap();
        assert!(table.lines().any(|l| l.starts_with("a-reference,pass,")), "{table}");
        assert!(table.lines().any(|l| l.starts_with("b-sleeper,interrupted,")), "{table}");
        assert!(out.path().join("results-reports/a-reference.md").exists());
        // What was graded whole is remembered for a regrade to keep; what was cut short is not.
        assert!(out.path().join("results-reports/a-reference.inputs").exists());
        assert!(!out.path().join("results-reports/b-sleeper.inputs").exists());
        assert!(out.path().join("results.md").exists());
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}
