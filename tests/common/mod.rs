//! Shared by the integration tests: the Docker gate, fixtures, the normalized report.
#![allow(dead_code)]

pub mod browser;

use std::path::PathBuf;

use regex::Regex;
use serde_json::Value;

/// The one tokio runtime of a test binary: every Docker test runs its body on it
/// (`block_on`), side by side with the others. One, because testcontainers keeps one Docker
/// client for the whole process, whose pooled connections belong to the runtime that opened
/// them: with a runtime per test (`#[tokio::test]`), a test reusing a connection of a test
/// that had ended (its runtime gone) waited for an answer that never came.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("a tokio runtime"))
}

/// Runs a test's body on the binary's runtime, from the test's own thread.
pub fn block_on<F: std::future::Future>(body: F) -> F::Output {
    runtime().block_on(body)
}

/// Tests that need Docker call this first: without Docker they fail and say how to fix it.
/// They never skip; `make unit` leaves their test targets out (the `docker-tests` feature).
pub fn require_docker(test: &str) {
    let engine = match tokio::runtime::Handle::try_current() {
        // Already on the runtime (inside `block_on`): on a thread of its own, to wait for it.
        Ok(_) => std::thread::spawn(|| block_on(lab7::environment::engine())).join().unwrap(),
        Err(_) => block_on(lab7::environment::engine()),
    };
    if let Err(e) = engine {
        panic!(
            "{test} needs Docker: {e}\n\
             Run `make test` (it brings Docker, emulation and the images up first), \
             or `make unit` to build and run only the tests that need no Docker."
        );
    }
}

/// A lab run of `lab_examples/<example>` that several tests read: one run per test binary,
/// made by whichever test asks first while the others wait for it. The same app, images and
/// client give the same run, so `lab_end_to_end`, `broken_variants` and the compatibility
/// matrix read one reference run on the pinned images instead of running one each.
pub async fn shared_run(
    example_name: &str,
    images: &lab7::environment::Images,
    client: lab7::builds::buildx::Client,
) -> std::sync::Arc<lab7::lab::LabRun> {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};
    type Cell = Arc<tokio::sync::OnceCell<Arc<lab7::lab::LabRun>>>;
    static RUNS: Mutex<BTreeMap<String, Cell>> = Mutex::new(BTreeMap::new());
    let key = format!("{example_name} {} {} {:?} {client:?}", images.registry, images.buildkit, images.mirror);
    let cell = RUNS.lock().unwrap().entry(key).or_default().clone();
    let run = cell.get_or_init(|| async {
        let mut opts = lab7::lab::LabOptions::new(example(example_name));
        opts.client = client;
        let trace = Trace(format!("{example_name} {} {} {client:?}", images.registry, images.buildkit));
        let run = lab7::lab::run(&opts, images, &trace).await.unwrap_or_else(|e| {
            panic!("{example_name} on {} + {} ({client:?}): {e}", images.registry, images.buildkit)
        });
        Arc::new(run)
    });
    run.await.clone()
}

/// A shared run's stages, each line with its time, appended to `target/lab7/trace.log`: a
/// run that stalls shows where (the soak reads it when a round is over time).
struct Trace(String);

impl Trace {
    fn write(&self, what: std::fmt::Arguments) {
        use std::io::Write;
        let path = root().join("target/lab7/trace.log");
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = writeln!(f, "{:.3} [{}] {}", at.as_secs_f64(), self.0, what);
        }
    }
}

impl lab7::lab::Progress for Trace {
    fn stage_started(&self, stage: lab7::lab::Stage) {
        self.write(format_args!("{stage:?} started"));
    }
    fn stage_finished(&self, stage: lab7::lab::Stage, seconds: f64) {
        self.write(format_args!("{stage:?} finished in {seconds:.1} s"));
    }
    fn build_line(&self, stage: lab7::lab::Stage, line: &str) {
        self.write(format_args!("{stage:?} | {line}"));
    }
}

/// The same, for a plain `#[test]`.
pub fn shared_run_blocking(
    example_name: &str,
    images: &lab7::environment::Images,
    client: lab7::builds::buildx::Client,
) -> std::sync::Arc<lab7::lab::LabRun> {
    block_on(shared_run(example_name, images, client))
}

/// An environment of this test's own, with `app` uploaded: the lab's build spec for it.
pub async fn env_with_app(app: &std::path::Path) -> (lab7::environment::LabEnvironment, lab7::builds::BuildSpec) {
    env_with_app_on(app, &lab7::environment::Images::load()).await
}

/// The same on other images (the compatibility matrix, registry 3).
#[allow(dead_code)] // not every test binary uses it
pub async fn env_with_app_on(
    app: &std::path::Path,
    images: &lab7::environment::Images,
) -> (lab7::environment::LabEnvironment, lab7::builds::BuildSpec) {
    use lab7::environment::{EnvOptions, LabEnvironment};
    let env = LabEnvironment::start(images, &EnvOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let context = env.node.upload(app, "app", "Dockerfile_multi", 1 << 30).await.unwrap_or_else(|e| panic!("{e}"));
    let spec = lab7::builds::BuildSpec::for_environment(&env, "Dockerfile_multi", &context)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    (env, spec)
}

/// The report of a lab run, graded with the built-in rubric: what `lab7 check` would print.
pub fn report_of(run: &lab7::lab::LabRun) -> lab7::report::Report {
    use lab7::checks::{evaluate, Evidence, Rubric};
    use lab7::report::{BuildSummary, Report, RunSummary};
    let checks = evaluate(&Rubric::default_rubric(), &Evidence::of_run(run));
    Report::new("check", &run.app, checks, BuildSummary::of_run(run), Some(RunSummary::of(run)))
}

/// The `lab7` binary run in `dir`, without colour, to its end.
pub fn lab7(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_lab7"))
        .current_dir(dir)
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("lab7 runs")
}

/// The `lab7` binary started in the repository's root, without colour, its stderr piped (to
/// wait for a line of it) and its stdout discarded: for tests that signal it while it runs.
pub fn spawn_lab7(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_lab7"))
        .current_dir(root())
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("lab7 starts")
}

/// Reads the child's stderr until a line contains `needle` (returning what it read); the rest
/// is drained in the background.
pub fn wait_for_line(child: &mut std::process::Child, needle: &str) -> String {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stderr.take().expect("stderr is piped")).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen += &line;
        seen.push('\n');
        if line.contains(needle) {
            std::thread::spawn(move || lines.for_each(drop));
            return seen;
        }
    }
    panic!("lab7 ended before printing {needle:?}:\n{seen}");
}

/// What a run printed, stdout then stderr.
pub fn text(o: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(rel: &str) -> PathBuf {
    root().join("tests/fixtures").join(rel)
}

pub fn read_fixture(rel: &str) -> String {
    std::fs::read_to_string(fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel}: {e}"))
}

pub fn example(name: &str) -> PathBuf {
    root().join("lab_examples").join(name)
}

/// Keys whose values change from run to run or machine to machine: redacted by insta.
const VOLATILE: [&str; 20] = [
    "seconds",
    // registry7's version: 2.8.2 from Debian's stand-in, 2.8.3 from the official image.
    "version",
    "size",
    "layer_bytes",
    "bytes_not_in_image",
    "storage_before",
    "storage_after",
    "cache_only_bytes",
    "run_id",
    "registry_image",
    "buildkit_image",
    "standins",
    "node_platforms",
    "lab7_version",
    "subject",
    // Layers whose tar holds a build-time mtime (RUN mkdir, the cacheconfig) come out the same
    // for amd64 and arm64, or for build 1 and build 2, only when they ran in the same instant:
    // distinct cache layers are 9 or 10, cache-only blobs 7 to 9, and the GC counts follow.
    // The tests assert the facts instead: the cache holds layers the image lacks, and every
    // cache-only blob is gone after the deletion.
    "blobs_marked",
    "blobs_eligible",
    "layers",
    "layers_not_in_image",
    "cache_layers_exported",
];

/// Text that differs between runs inside values: insta filters over the snapshot.
const FILTERS: [(&str, &str); 10] = [
    (r"\(registry [^)]+\)", "(registry [version])"),
    (r"sha256:[0-9a-f]{64}", "sha256:[digest]"),
    (r"lab7-(registry7|node|mirror)-[0-9a-f]{12}", "lab7-$1-[run]"),
    (r"\d+ → \d+ bytes", "[n] → [n] bytes"),
    (r"\d+/\d+ cache-only blobs", "[n]/[n] cache-only blobs"),
    (r"\d+ layers", "[n] layers"),
    (r"→ 202(, 202)*, tag", "→ 202…, tag"),
    (r"\d+ of them", "[n] of them"),
    (r"\(\d+ reclaimed", "([n] reclaimed"),
    (r"\d+ bytes", "[n] bytes"),
];

/// Lists whose length varies with build timing (build 2's cache manifest may equal build 1's;
/// identical layers merge): their entries are kept once each, digests aside. Insta's
/// redactions replace values but cannot merge entries, so this one step stays by hand.
const MERGED: [&str; 2] = ["cache_only_blobs", "deleted_manifests"];

fn merge_alike(v: &mut serde_json::Value) {
    let digest = Regex::new(r"sha256:[0-9a-f]{64}").unwrap();
    if let Some(deletion) = v.pointer_mut("/run/deletion") {
        for key in MERGED {
            if let Some(Value::Array(items)) = deletion.get_mut(key) {
                let mut seen: Vec<Value> = Vec::new();
                for mut item in items.drain(..) {
                    if let Some(Value::String(d)) = item.get_mut("digest") {
                        *d = digest.replace_all(d, "sha256:[digest]").into_owned();
                    }
                    if !seen.contains(&item) {
                        seen.push(item);
                    }
                }
                *items = seen;
            }
        }
    }
}

/// Snapshots a report in `snapshots/`, with what runs and machines change redacted and the
/// cached lines (printed in BuildKit's scheduling order) sorted.
pub fn assert_report_snapshot(name: &str, report: &impl serde::Serialize) {
    let mut value = serde_json::to_value(report).unwrap();
    merge_alike(&mut value);
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    for key in VOLATILE {
        settings.add_redaction(&format!(".**.{key}"), format!("[{key}]"));
    }
    settings.add_redaction(".builds[].cached_lines", insta::sorted_redaction());
    for (pattern, to) in FILTERS {
        settings.add_filter(pattern, to);
    }
    settings.bind(|| insta::assert_json_snapshot!(name, value));
}
