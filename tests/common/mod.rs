//! Shared by the integration tests: the Docker gate, fixtures, the normalized report.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;

use regex::Regex;
use serde_json::Value;

pub const SKIP_VAR: &str = "LAB7_SKIP_DOCKER_TESTS";

/// Tests that need Docker call this first. Without Docker they fail and say how to fix it;
/// only the documented opt-out `LAB7_SKIP_DOCKER_TESTS=1` (for unit-test-only runs) skips them.
pub fn docker_or_skip(test: &str) -> bool {
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        eprintln!("{test}: skipped because {SKIP_VAR}=1 (unit-test-only run)");
        return false;
    }
    // Its own thread and runtime, so async and plain tests can both call it.
    let engine = std::thread::spawn(|| tokio::runtime::Runtime::new().unwrap().block_on(lab7::environment::engine()));
    if let Err(e) = engine.join().unwrap() {
        panic!(
            "{test} needs Docker: {e}\n\
             Run `make test` (it brings Docker, emulation and the images up first), \
             or set {SKIP_VAR}=1 to run only the unit tests."
        );
    }
    true
}

/// An environment of this test's own, with `app` uploaded: the lab's build spec for it.
pub async fn env_with_app(app: &std::path::Path) -> (lab7::environment::LabEnvironment, lab7::builds::BuildSpec) {
    use lab7::environment::{EnvOptions, Images, LabEnvironment};
    let env = LabEnvironment::start(&Images::load(), &EnvOptions::new()).await.unwrap_or_else(|e| panic!("{e}"));
    let context = env.node.upload(app, "app", "Dockerfile_multi", 1 << 30).await.unwrap_or_else(|e| panic!("{e}"));
    let spec = lab7::builds::BuildSpec::lab(&env.registry_host(), "Dockerfile_multi", &context);
    (env, spec)
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

/// Keys whose values change from run to run or machine to machine.
const VOLATILE: [&str; 19] = [
    "seconds",
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
/// Lists whose length varies with the above: identical entries (after scrubbing) are kept once.
/// Build 2's cache manifest may come out identical to build 1's (then the repository holds one).
const DEDUP: [&str; 2] = ["cache_only_blobs", "deleted_manifests"];

/// A report with digests, sizes, times, run ids and image names replaced, and
/// lists BuildKit fills in scheduling order sorted, so one snapshot fits every run.
pub fn normalize(mut v: Value) -> Value {
    fn walk(v: &mut Value, key: Option<&str>) {
        match v {
            Value::Object(map) => {
                for (k, child) in map.iter_mut() {
                    if VOLATILE.contains(&k.as_str()) && !child.is_null() {
                        *child = Value::String(format!("[{k}]"));
                    } else {
                        walk(child, Some(k));
                    }
                }
            }
            Value::Array(items) => {
                items.iter_mut().for_each(|i| walk(i, key));
                if key == Some("cached_lines") {
                    items.sort_by_key(|i| i.to_string());
                }
                if key.is_some_and(|k| DEDUP.contains(&k)) {
                    items.dedup();
                }
            }
            Value::String(s) => *s = scrub(s),
            _ => {}
        }
    }
    walk(&mut v, None);
    v
}

pub fn scrub(s: &str) -> String {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        [
            (r"sha256:[0-9a-f]{64}", "sha256:[digest]"),
            (r"lab7-(registry7|node|mirror)-[0-9a-f]{12}", "lab7-$1-[run]"),
            (r"\d+ → \d+ bytes", "[n] → [n] bytes"),
            (r"\d+/\d+ cache-only blobs", "[n]/[n] cache-only blobs"),
            (r"\d+ layers", "[n] layers"),
            (r"→ 202(, 202)*, tag", "→ 202…, tag"),
            (r"\d+ of them", "[n] of them"),
            (r"\(\d+ reclaimed", "([n] reclaimed"),
            (r"\d+ bytes", "[n] bytes"),
        ]
        .into_iter()
        .map(|(re, to)| (Regex::new(re).unwrap(), to))
        .collect()
    });
    rules.iter().fold(s.to_string(), |acc, (re, to)| re.replace_all(&acc, *to).into_owned())
}
