//! lab7's container image as a student runs it (`make image` runs these against the image it
//! built and loaded; `LAB7_IMAGE` names it): `docker run -v /var/run/docker.sock:… -v
//! "$PWD:/work" IMAGE check /work`. Inside a container lab7 joins the run's network to reach
//! registry7, records its container as the run's owner, firewalls the host's own addresses,
//! and cleans up on `docker stop`; what a `docker kill` leaves, the next lab7 removes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn image() -> String {
    std::env::var("LAB7_IMAGE").unwrap_or_else(|_| format!("lab7:{}", env!("CARGO_PKG_VERSION")))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).output().expect("the docker CLI runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Fails with the fix when the image is not there: these tests never skip.
fn require_image() {
    let out = docker(&["image", "inspect", &image()]);
    assert!(
        out.status.success(),
        "{} is not loaded: `make image` builds it and runs these tests ({})",
        image(),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// `docker run` of the image on a project, as the README's student section has it; the env
/// file `make env` wrote names the images of this machine (stand-ins offline).
fn run_args(name: &str, work: &Path, detach: bool) -> Vec<String> {
    let env_file = repo().join("target/lab7/env");
    let mut args: Vec<String> = vec!["run".into()];
    if detach {
        args.push("-d".into());
    } else {
        args.push("--rm".into());
    }
    for a in [
        "--name",
        name,
        "--env-file",
        &env_file.to_string_lossy(),
        "-v",
        "/var/run/docker.sock:/var/run/docker.sock",
        "-v",
        &format!("{}:/work:ro", work.display()),
        &image(),
        "check",
        "/work",
    ] {
        args.push(a.to_string());
    }
    args
}

fn unique(what: &str) -> String {
    format!("lab7-image-test-{what}-{}", std::process::id())
}

/// The containers and networks of runs this owner label started.
fn owned_by(owner: &str) -> Vec<String> {
    let filter = format!("label=org.lab7.owner={owner}");
    let containers = stdout(&docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]));
    let networks = stdout(&docker(&["network", "ls", "--filter", &filter, "--format", "{{.Name}}"]));
    containers.lines().chain(networks.lines()).filter(|l| !l.is_empty()).map(String::from).collect()
}

/// The reference app with a build step of 20 s: the reference's whole lab takes a few seconds,
/// and a run must still be going when the test looks at it, stops it or kills it.
fn slow_reference() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let from = repo().join("lab_examples/reference");
    let status = Command::new("cp").arg("-r").arg(from.join(".")).arg(dir.path()).status().unwrap();
    assert!(status.success());
    let dockerfile = dir.path().join("Dockerfile_multi");
    let text = std::fs::read_to_string(&dockerfile).unwrap();
    let slow = text.replacen("RUN mkdir -p /var/app/cgi-bin\n", "RUN mkdir -p /var/app/cgi-bin\nRUN sleep 20\n", 1);
    assert_ne!(slow, text, "the reference's Dockerfile changed: put the slow step elsewhere");
    std::fs::write(&dockerfile, slow).unwrap();
    dir
}

/// Starts a detached run and waits until its node is up; returns the container's owner label.
fn start_detached(name: &str, work: &Path) -> String {
    let args = run_args(name, work, true);
    let out = Command::new("docker").args(&args).output().unwrap();
    assert!(out.status.success(), "docker run: {}", String::from_utf8_lossy(&out.stderr));
    let owner = format!("container:{}", stdout(&out));
    let deadline = Instant::now() + Duration::from_secs(180);
    while node_of(&owner).is_none() {
        assert!(Instant::now() < deadline, "no node of {owner} within 180 s; logs:\n{}", logs(name));
        std::thread::sleep(Duration::from_millis(200));
    }
    owner
}

fn node_of(owner: &str) -> Option<String> {
    let filter = format!("label=org.lab7.owner={owner}");
    let names = stdout(&docker(&["ps", "--filter", &filter, "--filter", "name=lab7-node-", "--format", "{{.Names}}"]));
    names.lines().next().map(String::from)
}

fn logs(name: &str) -> String {
    let out = docker(&["logs", name]);
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn wait_exit(name: &str) -> i32 {
    let out = docker(&["wait", name]);
    stdout(&out).parse().unwrap_or_else(|_| panic!("docker wait {name}: {}", String::from_utf8_lossy(&out.stderr)))
}

fn remove(name: &str) {
    docker(&["rm", "-f", name]);
}

/// A detached lab7 container, removed when the test ends — passed or failed.
struct Detached(String);

impl Drop for Detached {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// `lab7 doctor --clean` of the host's own lab7: it removes runs whose owner is gone.
fn clean_from_host() -> Output {
    Command::new(env!("CARGO_BIN_EXE_lab7")).args(["doctor", "--clean"]).current_dir(repo()).output().unwrap()
}

#[test]
fn a_check_in_the_container_proves_the_lab_and_leaves_nothing() {
    require_image();
    let name = unique("check");
    let out =
        Command::new("docker").args(run_args(&name, &repo().join("lab_examples/reference"), false)).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "lab7 check in its container:\n{text}");
    assert!(text.contains("PASS"), "{text}");
    let leftovers =
        stdout(&docker(&["ps", "-a", "--filter", "label=org.lab7.owner", "--format", "{{.Label \"org.lab7.owner\"}}"]));
    assert!(!leftovers.lines().any(|o| o.starts_with("container:")), "a container run left: {leftovers}");
}

#[test]
fn in_a_container_registry7_is_unpublished_and_the_node_refuses_the_hosts_own_addresses() {
    require_image();
    let name = unique("firewall");
    let work = slow_reference();
    let _gone_at_end = Detached(name.clone());
    let owner = start_detached(&name, work.path());
    let node = node_of(&owner).unwrap();
    // The host's addresses as the host sees them (its bridges of runs aside: they come and go,
    // and their private range is refused whole): not the container's own.
    let host: Vec<String> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .filter(|i| i.ip().is_ipv4() && !i.name.starts_with("br-") && !i.name.starts_with("veth"))
        .map(|i| i.ip().to_string())
        .collect();
    // The node is up a moment before lab7 has installed its rules.
    let deadline = Instant::now() + Duration::from_secs(30);
    let rules = loop {
        let rules = stdout(&docker(&["exec", &node, "iptables-save", "-t", "filter"]));
        if rules.contains("-A LAB7-NODE") || Instant::now() > deadline {
            break rules;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    for a in &host {
        assert!(
            rules.contains(&format!("-d {a}/32 -j REJECT")),
            "the node lets its builds reach the host's {a}:\n{rules}"
        );
    }
    // registry7 is reached on the run's network: nothing of it is published on the host.
    let registry = node.replace("lab7-node-", "lab7-registry7-");
    assert_eq!(stdout(&docker(&["port", &registry])), "", "registry7 is published on the host");
    // A live container's run is not a leftover: the host's own lab7 leaves it be.
    assert!(clean_from_host().status.success());
    assert_eq!(node_of(&owner).as_deref(), Some(node.as_str()), "doctor --clean removed a live container's run");
    let code = wait_exit(&name);
    let log = logs(&name);
    remove(&name);
    assert_eq!(code, 0, "{log}");
    assert_eq!(owned_by(&owner), Vec::<String>::new());
}

#[test]
fn docker_stop_ends_the_run_and_removes_what_it_started() {
    require_image();
    let name = unique("stop");
    let work = slow_reference();
    let _gone_at_end = Detached(name.clone());
    let owner = start_detached(&name, work.path());
    // docker stop: SIGTERM, then SIGKILL after 10 s; lab7 must be done with its cleanup by then.
    let stopped = Instant::now();
    assert!(docker(&["stop", &name]).status.success());
    let took = stopped.elapsed();
    let code = wait_exit(&name);
    let log = logs(&name);
    remove(&name);
    assert_eq!(code, 143, "SIGTERM's exit, not docker's SIGKILL (took {took:?}):\n{log}");
    assert_eq!(owned_by(&owner), Vec::<String>::new(), "{log}");
}

#[test]
fn what_a_killed_container_left_the_next_lab7_removes() {
    require_image();
    let name = unique("kill");
    let work = slow_reference();
    let _gone_at_end = Detached(name.clone());
    let owner = start_detached(&name, work.path());
    assert!(docker(&["kill", &name]).status.success());
    wait_exit(&name);
    assert!(!owned_by(&owner).is_empty(), "SIGKILL left nothing: this test would prove nothing");
    remove(&name);
    let out = clean_from_host();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(owned_by(&owner), Vec::<String>::new(), "the dead container's run was not swept");
}
