//! A submission is untrusted code run as root: what its build context, its RUN steps and
//! its resource use can and cannot reach. Each test builds a submission made for the attack.

use crate::common;

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lab7::builds;
use lab7::environment::isolation::{Egress, NodeLimits};
use lab7::environment::{EnvOptions, Images, LabEnvironment};
use lab7::lab::{self, LabOptions, LabRun, Silent};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

fn submission(dockerfile: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile_multi"), dockerfile).unwrap();
    dir
}

async fn lab_run(dir: &Path, env: EnvOptions) -> LabRun {
    let mut opts = LabOptions::new(dir);
    opts.env = env;
    opts.delete_cache = false;
    lab::run(&opts, &Images::load(), &Silent).await.unwrap_or_else(|e| panic!("{e}"))
}

async fn docker_inspect(name: &str) -> Value {
    let docker = lab7::environment::docker::connect().await.unwrap();
    let c = docker.inspect_container(name, None).await.unwrap();
    serde_json::to_value(c).unwrap()
}

/// A link to a host file, a dangling link and a loop: buildx sends each as a link, so the
/// build never sees the host's file, `COPY .` builds, and `COPY` of the outward link is
/// "not found" inside the context.
#[test]
fn links_in_a_submission_stay_links_and_never_bring_a_host_file() {
    common::block_on(async move {
        common::require_docker("links_in_a_submission_stay_links");
        let marker = format!("HOST-ONLY-{}", lab7::environment::lifecycle::new_run_id());
        let host_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(host_file.path(), &marker).unwrap();

        let copy_all = submission(
        "FROM busybox:1.36\nCOPY . /ctx\nRUN ls -l /ctx && (cat /ctx/secret || echo \"secret: no such file in the image\")\n",
    );
        std::os::unix::fs::symlink(host_file.path(), copy_all.path().join("secret")).unwrap();
        std::os::unix::fs::symlink("missing", copy_all.path().join("dangling")).unwrap();
        std::os::unix::fs::symlink(".", copy_all.path().join("current")).unwrap();
        let run = lab_run(copy_all.path(), EnvOptions::new()).await;
        assert!(run.build1.succeeded(), "a dangling link and a loop build fine under buildx:\n{}", run.build1.raw_log);
        assert!(!run.build1.raw_log.contains(&marker), "the host file reached the build:\n{}", run.build1.raw_log);
        assert!(run.build1.raw_log.contains("secret: no such file in the image"), "{}", run.build1.raw_log);
        assert!(run.build1.raw_log.contains(&format!("secret -> {}", host_file.path().display())));

        let copy_link = submission("FROM busybox:1.36\nCOPY secret /secret\nRUN cat /secret\n");
        std::os::unix::fs::symlink(host_file.path(), copy_link.path().join("secret")).unwrap();
        let run = lab_run(copy_link.path(), EnvOptions::new()).await;
        assert_eq!(run.build1.exit_code(), Some(1), "{}", run.build1.raw_log);
        assert!(run.build1.raw_log.contains("not found"), "{}", run.build1.raw_log);
        assert!(!run.build1.raw_log.contains(&marker), "the host file reached the build:\n{}", run.build1.raw_log);
    })
}

/// `.dockerignore` is honoured as under buildx: what it names is not in the context.
#[test]
fn dockerignore_keeps_files_out_of_the_build() {
    common::block_on(async move {
        common::require_docker("dockerignore_keeps_files_out_of_the_build");
        let dir = submission("FROM busybox:1.36\nCOPY . /ctx\nRUN find /ctx | sort\n");
        std::fs::create_dir_all(dir.path().join("node_modules/pkg")).unwrap();
        std::fs::write(dir.path().join("node_modules/pkg/index.js"), "x").unwrap();
        std::fs::write(dir.path().join("debug.log"), "x").unwrap();
        std::fs::write(dir.path().join("app.js"), "x").unwrap();
        std::fs::write(dir.path().join(".dockerignore"), "node_modules\n*.log\n").unwrap();
        let run = lab_run(dir.path(), EnvOptions::new()).await;
        let log = &run.build1.raw_log;
        assert!(run.build1.succeeded(), "{log}");
        assert!(log.contains("/ctx/app.js"), "{log}");
        assert!(!log.contains("node_modules") && !log.contains("debug.log"), "ignored files reached the build:\n{log}");
    })
}

/// A service on the grading host, on every interface, counting the connections it accepts;
/// it stops when dropped.
struct HostListener {
    port: u16,
    accepted: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl HostListener {
    fn start() -> HostListener {
        let listener = TcpListener::bind("0.0.0.0:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let (accepted, stop) = (Arc::new(AtomicUsize::new(0)), Arc::new(std::sync::atomic::AtomicBool::new(false)));
        let (counter, stopped) = (accepted.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                if let Ok((mut s, _)) = listener.accept() {
                    counter.fetch_add(1, Ordering::SeqCst);
                    let _ = s.read(&mut [0u8; 16]);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        HostListener { port, accepted, stop }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for HostListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The gateway of a Docker network: the grading host, as that network sees it.
async fn gateway_of(network: &str) -> String {
    let docker = lab7::environment::docker::connect().await.unwrap();
    let n = docker.inspect_network(network, None).await.unwrap();
    n.ipam.and_then(|i| i.config).and_then(|c| c.into_iter().find_map(|c| c.gateway)).unwrap()
}

fn ip_on(container: &Value, network: &str) -> String {
    container["NetworkSettings"]["Networks"][network]["IPAddress"].as_str().unwrap().to_string()
}

/// From a RUN: the grading host's services, this run's registry7 and another run's
/// registry7 are all out of reach, while buildkitd itself still reaches registry7.
#[test]
fn a_run_step_reaches_neither_the_host_nor_registry7_nor_other_runs() {
    common::block_on(async move {
        common::require_docker("a_run_step_reaches_neither_the_host_nor_registry7_nor_other_runs");
        let host = HostListener::start();
        let port = host.port;
        let other = LabEnvironment::start(&Images::load(), &EnvOptions::new()).await.unwrap();
        let env = LabEnvironment::start(&Images::load(), &EnvOptions::new()).await.unwrap();
        let registry_ip = ip_on(&docker_inspect(&env.registry.name).await, &env.network);
        let other_registry_ip = ip_on(&docker_inspect(&other.registry.name).await, &other.network);
        let run_gateway = gateway_of(&env.network).await;
        let default_gateway = gateway_of("bridge").await;

        let targets = [
            format!("{run_gateway}:{port}"),
            format!("{default_gateway}:{port}"),
            format!("{registry_ip}:5000"),
            format!("{other_registry_ip}:5000"),
        ];
        let probe = format!(
        "FROM busybox:1.36\nRUN for t in {}; do if nc -w 2 ${{t%:*}} ${{t#*:}} </dev/null; then echo \"REACHED $t\"; else echo \"BLOCKED $t\"; fi; done\n",
        targets.join(" ")
    );
        let dir = submission(&probe);
        let context = env.node.upload(dir.path(), "probe", "Dockerfile_multi", 1 << 20).await.unwrap();
        let spec = builds::BuildSpec::for_environment(&env, "Dockerfile_multi", &context).await.unwrap();
        let b =
            builds::run(&env.node, &spec, Duration::from_secs(300), &CancellationToken::new(), |_| {}).await.unwrap();
        assert!(b.succeeded(), "{}", b.raw_log);
        for t in &targets {
            assert!(b.raw_log.contains(&format!("BLOCKED {t}")), "no verdict for {t}:\n{}", b.raw_log);
        }
        for t in &targets {
            assert!(!b.raw_log.contains(&format!("REACHED {t}")), "a RUN step reached {t}:\n{}", b.raw_log);
        }
        assert_eq!(host.accepted(), 0, "the host's service accepted a connection from a RUN step");

        // The same probe from buildkitd's own namespace reaches registry7: the fence is per RUN.
        let from_node = env.node.exec(&["nc", "-w", "2", &registry_ip, "5000"]).await.unwrap();
        assert_eq!(from_node.exit_code, 0, "the node must reach registry7 to push: {}", from_node.stderr);
        env.shutdown().await.unwrap();
        other.shutdown().await.unwrap();
    })
}

/// A fetch buildkitd makes itself for the Dockerfile, aimed at `target` (`IP:PORT`).
fn fetching(kind: &str, target: &str) -> String {
    let base = "FROM busybox:1.36 AS build1";
    let tail = "FROM busybox:1.36\nCOPY --from=build1 /etc/hostname /x\n";
    match kind {
        "add-url" => format!("{base}\nADD http://{target}/secret.txt /p/a.txt\nRUN cat /p/a.txt\n{tail}"),
        "git-url" => format!("{base}\nADD http://{target}/repo.git#main /src\nRUN ls /src\n{tail}"),
        "from" => format!("FROM {target}/lab/base:1 AS build1\nRUN echo hi\n{tail}"),
        "syntax" => format!("# syntax={target}/docker/dockerfile:1\n{base}\nRUN echo hi\n{tail}"),
        _ => unreachable!("{kind}"),
    }
}

/// What buildkitd fetches itself — `ADD <url>`, `ADD <git url>`, a `FROM` image and a
/// `# syntax=` frontend on a registry the student names — reaches neither the grading host
/// (this run's gateway, docker0's, its own address), nor the cloud's metadata address, nor
/// another run's registry7. Each fails at once as the student's build, with the reason; the
/// host's service is never reached. buildx's client goes through the same node.
#[test]
fn buildkitd_fetches_reach_neither_the_host_nor_private_networks() {
    common::block_on(async move {
        use lab7::builds::failure::FailureCause;
        common::require_docker("buildkitd_fetches_reach_neither_the_host_nor_private_networks");
        let host = HostListener::start();
        let other = LabEnvironment::start(&Images::load(), &EnvOptions::new()).await.unwrap();
        let env = LabEnvironment::start(&Images::load(), &EnvOptions::new()).await.unwrap();
        let run_gateway = format!("{}:{}", gateway_of(&env.network).await, host.port);
        let docker0 = format!("{}:{}", gateway_of("bridge").await, host.port);
        let own = lab7::environment::placement::host_addresses()
            .into_iter()
            .find(|a| a.is_ipv4() && !a.is_loopback() && !a.to_string().starts_with("172."))
            .map(|a| format!("{a}:{}", host.port));
        let other_registry = format!("{}:5000", ip_on(&docker_inspect(&other.registry.name).await, &other.network));
        let mut cases: Vec<(&str, String)> =
            ["add-url", "git-url", "from", "syntax"].iter().map(|k| (*k, run_gateway.clone())).collect();
        cases.extend([
            ("add-url", docker0.clone()),
            ("add-url", other_registry),
            ("add-url", "169.254.169.254:80".into()),
        ]);
        cases.extend(own.map(|own| ("add-url", own)));
        let builds = cases.iter().enumerate().map(|(i, (kind, target))| {
            let env = &env;
            async move {
                let dir = submission(&fetching(kind, target));
                let context =
                    env.node.upload(dir.path(), &format!("fetch{i}"), "Dockerfile_multi", 1 << 20).await.unwrap();
                let spec = builds::BuildSpec::for_environment(env, "Dockerfile_multi", &context).await.unwrap();
                let never = CancellationToken::new();
                let b = builds::run(&env.node, &spec, Duration::from_secs(120), &never, |_| {}).await.unwrap();
                (kind, target, b)
            }
        });
        for (kind, target, b) in futures_util::future::join_all(builds).await {
            assert!(!b.succeeded(), "{kind} {target} built:\n{}", b.raw_log);
            match b.log.failure_cause() {
                Some(FailureCause::Unreachable { address, instruction }) => {
                    assert_eq!(&address, target, "{kind}: {instruction}");
                    let advice = b.log.failure_cause().unwrap().advice();
                    assert!(
                        advice.contains("does not let a build reach the grading machine or private networks"),
                        "{advice}"
                    );
                }
                other => panic!("{kind} {target}: {other:?}\n{}", b.raw_log),
            }
        }
        assert_eq!(host.accepted(), 0, "the host's service accepted a connection from buildkitd");

        // The student's own buildx, through the same node: the same refusal, the report says why.
        let dir = submission(&fetching("add-url", &docker0));
        let mut opts = LabOptions::new(dir.path());
        opts.client = lab7::builds::buildx::Client::Buildx;
        let run = lab::run(&opts, &Images::load(), &Silent).await.unwrap_or_else(|e| panic!("{e}"));
        let report = common::report_of(&run);
        let builds_check = report.check(lab7::checks::CheckId::BuildsSucceed);
        assert_eq!(builds_check.status, lab7::checks::Status::Fail);
        let fix = builds_check.fix.clone().unwrap_or_default();
        assert!(fix.contains(&format!("reaches {docker0}")) && fix.contains("grading machine"), "{fix}");
        assert_eq!(host.accepted(), 0, "the host's service accepted a connection from buildx's build");
        env.shutdown().await.unwrap();
        other.shutdown().await.unwrap();
    })
}

/// Egress off leaves RUN steps no network at all, and buildkitd only registry7 and the
/// mirror: a build still pulls its base image and pushes (both builds of the lab); on, RUN
/// steps and buildkitd reach public addresses only.
#[test]
fn egress_none_drops_everything_a_run_step_sends() {
    common::block_on(async move {
        common::require_docker("egress_none_drops_everything_a_run_step_sends");
        for (egress, run_rule, node_rule) in [
            (Egress::None, "-A LAB7-RUN -j DROP", "-A LAB7-NODE -j REJECT"),
            (Egress::Public, "-A LAB7-RUN -d 10.0.0.0/8 -j DROP", "-A LAB7-NODE -d 10.0.0.0/8 -j REJECT"),
        ] {
            let env =
                LabEnvironment::start(&Images::load(), &EnvOptions { egress, ..EnvOptions::new() }).await.unwrap();
            let rules = env.node.exec(&["iptables", "-t", "raw", "-S"]).await.unwrap().stdout;
            assert!(rules.contains("-A PREROUTING -i buildkit0 -j LAB7-RUN"), "{rules}");
            assert!(rules.contains(run_rule), "{egress:?}: {rules}");
            let node = env.node.exec(&["iptables", "-S", "LAB7-NODE"]).await.unwrap().stdout;
            assert!(node.lines().any(|l| l.starts_with(node_rule)), "{egress:?}: {node}");
            if egress == Egress::None {
                let app = common::example("reference");
                let context = env.node.upload(&app, "app", "Dockerfile_multi", 1 << 30).await.unwrap();
                let spec = builds::BuildSpec::for_environment(&env, "Dockerfile_multi", &context).await.unwrap();
                let never = CancellationToken::new();
                let b = builds::run(&env.node, &spec, Duration::from_secs(300), &never, |_| {}).await.unwrap();
                assert!(b.succeeded(), "the base image and registry7 stay reachable:\n{}", b.raw_log);
            }
            env.shutdown().await.unwrap();
        }
    })
}

/// The node: limits on memory, processes, CPUs and build storage; no host mounts, no Docker
/// socket, no insecure entitlements; registry7 published on loopback only.
#[test]
fn the_node_is_confined_and_holds_nothing_of_the_host() {
    common::block_on(async move {
        common::require_docker("the_node_is_confined_and_holds_nothing_of_the_host");
        let limits = NodeLimits { memory_bytes: 1 << 30, disk_bytes: 256 << 20, pids: 300, cpus: 1.5 };
        let env = LabEnvironment::start(&Images::load(), &EnvOptions { limits, ..EnvOptions::new() }).await.unwrap();
        let node = docker_inspect(&env.node.name).await;
        let hc = &node["HostConfig"];
        assert_eq!(hc["Memory"], 1 << 30);
        assert_eq!(hc["PidsLimit"], 300);
        assert_eq!(hc["NanoCpus"], 1_500_000_000i64);
        assert_eq!(hc["CgroupnsMode"], "private");
        assert!(hc["Tmpfs"]["/var/lib/buildkit"].as_str().unwrap().contains("size=262144k"), "{}", hc["Tmpfs"]);
        assert!(hc["Binds"].is_null() || hc["Binds"].as_array().unwrap().is_empty(), "{}", hc["Binds"]);
        let mounts = node["Mounts"].as_array().cloned().unwrap_or_default();
        assert!(mounts.iter().all(|m| m["Type"] != "bind"), "host mounts: {mounts:?}");
        assert!(!node.to_string().contains("docker.sock"), "the Docker socket is in the node");
        let args = format!("{} {}", node["Config"]["Entrypoint"], node["Config"]["Cmd"]);
        assert!(!args.contains("allow-insecure-entitlement"), "{args}");
        let ports = docker_inspect(&env.registry.name).await["HostConfig"]["PortBindings"]["5000/tcp"].clone();
        assert_eq!(ports[0]["HostIp"], "127.0.0.1", "registry7 must be published on loopback only: {ports}");
        env.shutdown().await.unwrap();
    })
}

/// What the limits do to a student's build: it fails, as the student's, and says why.
#[test]
fn disk_filling_fork_heavy_and_insecure_builds_fail_with_the_reason() {
    common::block_on(async move {
        common::require_docker("disk_filling_fork_heavy_and_insecure_builds_fail_with_the_reason");
        let limits = NodeLimits { memory_bytes: 1 << 30, disk_bytes: 256 << 20, pids: 200, cpus: 2.0 };
        let env = EnvOptions { limits, ..EnvOptions::new() };
        let cases = [
            ("FROM busybox:1.36\nRUN dd if=/dev/zero of=/fill bs=1M count=400\n", "build storage limit"),
            (
                "FROM busybox:1.36\nRUN i=0; while [ $i -lt 300 ]; do sleep 30 & i=$((i+1)); done; wait\n",
                "process limit",
            ),
            ("FROM busybox:1.36\nRUN --security=insecure echo hi\n", "security.insecure is not allowed"),
        ];
        for (dockerfile, reason) in cases {
            let dir = submission(dockerfile);
            let run = lab_run(dir.path(), env.clone()).await;
            assert!(!run.build1.succeeded(), "{dockerfile}\n{}", run.build1.raw_log);
            let problem = run.build1.problem().unwrap();
            assert!(problem.contains(reason), "{dockerfile}: {problem}");
        }
    })
}
