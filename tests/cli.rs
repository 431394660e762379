//! The real `lab7` binary: every subcommand, every output format, every bad input.

mod common;

use std::process::{Command, Output};

use lab7::report::Report;

use common::{lab7, text};

fn logs_dir() -> std::path::PathBuf {
    common::fixture("logs")
}

const PLAIN: [&str; 2] = ["buildctl-v0.26/build1.log", "buildctl-v0.26/build2-after-prune.log"];

fn snapshot(name: &str, body: &str) {
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!(name, body);
    });
}

// ---- grade-logs and the formats (no Docker needed)

#[test]
fn grade_logs_passes_the_buildctl_plain_logs() {
    let o = lab7(&logs_dir(), &["grade-logs", PLAIN[0], PLAIN[1], "--dockerfile", "../toy-app/Dockerfile_multi"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("PASS"));
}

/// The lab's two builds as buildx 0.29 printed them, saved in every way students save them
/// (tests/fixtures/logs/capture-buildx.sh): each is a full pass, with every step counted and
/// the cache manifest seen even where the terminal cut its digest.
#[rstest::rstest]
#[case::plain("buildx-0.29-plain")]
#[case::tty_at_80_columns("buildx-0.29-tty-80")]
#[case::tty_at_200_columns("buildx-0.29-tty-200")]
#[case::raw_terminal_capture_with_every_redraw("buildx-0.29-tty-raw")]
#[case::tty_frame_stream_at_80_columns("buildx-0.29-tty-frames-80")]
#[case::tty_frame_stream_at_120_columns("buildx-0.29-tty-frames-120")]
#[case::rawjson("buildx-0.29-rawjson")]
#[case::crlf("buildx-0.29-crlf")]
#[case::utf16le_with_bom("buildx-0.29-utf16le")]
#[case::ci_timestamps("buildx-0.29-ci-timestamps")]
#[case::two_cache_from("buildx-0.29-two-cache-from")]
#[case::buildkit_v0_34_registry_3_plain("buildx-0.29-v0.34-registry3-plain")]
#[case::buildkit_v0_34_registry_3_rawjson("buildx-0.29-v0.34-registry3-rawjson")]
#[case::buildkit_v0_34_registry_3_tty_80("buildx-0.29-v0.34-registry3-tty-80")]
#[case::buildkit_v0_34_registry_3_tty_frames("buildx-0.29-v0.34-registry3-tty-frames-80")]
fn grade_logs_reads_every_form_buildx_output_is_saved_in(#[case] dir: &str) {
    let o = grade_fixture_builds(dir);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(0), "{t}");
    for seen in [
        "linux/amd64: 4/4 RUN/COPY/ADD steps of build 1 CACHED; linux/arm64: 4/4",
        "build 1: 9 layers written, cache manifest written; build 2: 9 layers written, cache manifest written",
        "build 2: imported from registry7:5000/cachedata1",
    ] {
        assert!(t.contains(seen), "{seen} not in {t}");
    }
}

/// Two first builds of one Dockerfile (two real runs): the second found no cache to import.
const TWO_FIRST_BUILDS: [&str; 2] =
    ["buildctl-v0.26-shapes/build1.log", "buildctl-v0.26-shapes-merged-rerun/build1.log"];

#[test]
fn grade_logs_fails_when_build_2_used_no_cache() {
    let o = lab7(&logs_dir(), &["grade-logs", TWO_FIRST_BUILDS[0], TWO_FIRST_BUILDS[1]]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("FAIL") && t.contains("build 2: failed to configure registry cache importer"), "{t}");
    assert!(t.contains("(ran again)"), "{t}");
}

/// One build's output given as both builds (build 2 pasted twice, or build 1): the student's
/// failure, graded — a FAIL report (exit 1) saying the two are one build, with what shows it.
#[rstest::rstest]
#[case::build_1_twice(PLAIN[0], PLAIN[0])]
#[case::build_2_twice(PLAIN[1], PLAIN[1])]
#[case::build_2_twice_once_saved_with_crlf("buildx-0.29-plain/build2.log", "buildx-0.29-crlf/build2.log")]
fn grade_logs_fails_one_build_given_twice(#[case] first: &str, #[case] second: &str) {
    let o = lab7(&logs_dir(), &["grade-logs", first, second, "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let report: Report = serde_json::from_slice(&o.stdout).expect("a JSON report");
    let said: Vec<String> = report
        .checks
        .iter()
        .filter(|c| c.seen.contains("build 1 and build 2 are one build's output, given twice"))
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(said, ["cache_imported_from_registry", "cached_steps_both_platforms"], "{}", text(&o));
    assert!(report.checks.iter().any(|c| c.seen.contains("the same") && c.seen.contains("Dockerfile steps")));
}

/// Steps named for BuildKit's shapes: `[linux/amd64->arm64 build 2/4]` (cross-compiling),
/// `[linux/amd64 prod  2/10]` (padded), a FROM scratch stage named for one platform, labelled
/// for amd64 in build 1 and for arm64 in build 2. All CACHED in build 2: a pass.
/// `grade-logs` on the two builds captured in one fixture folder.
fn grade_fixture_builds(dir: &str) -> Output {
    lab7(&logs_dir(), &["grade-logs", &format!("{dir}/build1.log"), &format!("{dir}/build2.log")])
}

#[test]
fn grade_logs_passes_a_fully_cached_build_of_a_cross_compiling_dockerfile() {
    let o = grade_fixture_builds("buildctl-v0.26-shapes");
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("linux/arm64: 12/12 RUN/COPY/ADD steps of build 1 CACHED"), "{}", text(&o));
}

/// The two outputs given in the wrong order: "build 1" imported a cache, so it is no first build.
#[test]
fn grade_logs_says_when_build_1_is_not_a_first_build() {
    let o = lab7(&logs_dir(), &["grade-logs", PLAIN[1], PLAIN[0]]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("so it is not the first build"), "{}", text(&o));
}

/// The image itself named as the cache to import: its layers are there, but it is no separate
/// cache image, and the import check says so (real builds, BuildKit v0.26).
#[test]
fn grade_logs_refuses_the_image_itself_as_the_cache() {
    let o = grade_fixture_builds("buildctl-v0.26-image-as-cache");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("which is the image itself, not a separate cache image"), "{}", text(&o));
}

/// The lab's cache is `cachedata1` in registry7, an image of its own (the rubric's `cache`): a
/// cache kept in another registry, or in another tag of the image's own repository, fails the
/// import check with both names (real buildx 0.29 builds, the same ref in both).
#[rstest::rstest]
#[case::another_registrys_repository(
    "buildx-0.29-cache-other-registry",
    &["otherreg:5000/buildcache", "the lab's cache is cachedata1", "not buildcache in otherreg:5000"]
)]
#[case::another_tag_of_the_images_repository(
    "buildx-0.29-cache-image-repository-tag",
    &["registry7:5000/lab:buildcache", "another tag of the image's own repository lab", "not a separate image"]
)]
fn grade_logs_fails_a_cache_that_is_not_the_labs(#[case] dir: &str, #[case] said: &[&str]) {
    let o = grade_fixture_builds(dir);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    let import =
        t.lines().skip_while(|l| !l.contains("Build 2 imports the cache")).take(2).collect::<Vec<_>>().join("\n");
    assert!(import.contains("FAIL"), "{t}");
    for s in said {
        assert!(import.contains(s), "{s} not in {import}");
    }
}

/// A rubric naming another cache repository holds the builds to it: `buildcache` is then the
/// right name, and what is still wrong is the registry it is in.
#[test]
fn the_rubric_names_the_cache_repository_graded() {
    let dir = tempfile::tempdir().unwrap();
    let rubric = dir.path().join("rubric.toml");
    let edited = std::fs::read_to_string(common::root().join("rubric.toml")).unwrap().replacen(
        "cache = \"cachedata1\"",
        "cache = \"buildcache\"",
        1,
    );
    std::fs::write(&rubric, edited).unwrap();
    let d = "buildx-0.29-cache-other-registry";
    let (b1, b2) = (format!("{d}/build1.log"), format!("{d}/build2.log"));
    let o = lab7(&logs_dir(), &["grade-logs", "--rubric", rubric.to_str().unwrap(), &b1, &b2]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("which is in otherreg:5000, not in registry7 (registry7:5000, where the image went)"), "{t}");
    assert!(!t.contains("the lab's cache is"), "{t}");
}

/// Build 2 importing another ref than build 1 used: the lab's story is broken, and lab7 names both.
#[test]
fn grade_logs_names_both_refs_when_the_builds_use_different_caches() {
    let o = grade_fixture_builds("buildctl-v0.26-other-cache-ref");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("/cachedata1: both builds must name the same cache ref"), "{}", text(&o));
}

/// A build 2 from a builder nobody pruned: its CACHED lines may come from the builder's own
/// cache. The context transfer tells (126B of changes after build 1's 1.09kB): "not proven".
#[test]
fn grade_logs_says_not_proven_when_the_builder_was_not_pruned() {
    let o = grade_fixture_builds("buildctl-v0.26-unpruned");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("not proven: build 2 received 126 bytes of build context where build 1 received 1090"), "{t}");
    assert!(t.contains("docker buildx prune -a -f"), "{t}");
}

/// The same Dockerfile in another run, where BuildKit ran the amd64 copy of a step it merged
/// from two stages again in build 2: not every step came from the cache, and lab7 says which.
#[test]
fn grade_logs_names_the_step_buildkit_ran_again() {
    let o = grade_fixture_builds("buildctl-v0.26-shapes-merged-rerun");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("[linux/amd64 right 2/2] RUN uname -m > /shared.txt (ran again)"), "{}", text(&o));
}

#[test]
fn each_format_of_a_grade_logs_report() {
    for format in ["human", "json", "md", "junit", "gradescope"] {
        let o = lab7(&logs_dir(), &["grade-logs", PLAIN[0], PLAIN[1], "--format", format]);
        assert_eq!(o.status.code(), Some(0), "{format}: {}", text(&o));
        let body = String::from_utf8(o.stdout).unwrap().replace(env!("CARGO_PKG_VERSION"), "[version]");
        snapshot(&format!("grade_logs_{format}"), &body);
    }
}

#[test]
fn json_output_parses_back_into_the_documented_schema() {
    let o = lab7(&logs_dir(), &["grade-logs", PLAIN[0], PLAIN[1], "--format", "json"]);
    let report: Report = serde_json::from_slice(&o.stdout).expect("the json output is a Report");
    assert_eq!(report.schema, "lab7.report/v2");
    assert_eq!(report.kind, "grade-logs");
    assert_eq!(report.checks.len(), 9);
    assert_eq!(report.exit(), lab7::Exit::Pass);
}

#[test]
fn gradescope_output_has_the_fields_gradescope_reads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("results.json");
    let o = lab7(
        &logs_dir(),
        &[
            "grade-logs",
            TWO_FIRST_BUILDS[0],
            TWO_FIRST_BUILDS[1],
            "--format",
            "gradescope",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert!(v["score"].is_number() && v["max_score"].is_number());
    let tests = v["tests"].as_array().unwrap();
    assert!(!tests.is_empty());
    for t in tests {
        assert!(
            t["name"].is_string() && t["score"].is_number() && t["max_score"].is_number() && t["output"].is_string(),
            "{t}"
        );
        assert!(["passed", "failed"].contains(&t["status"].as_str().unwrap()), "{t}");
    }
    assert!(tests.iter().any(|t| t["status"] == "failed"));
}

// ---- bad input: exit 2 and a message that says what, where and how to fix

fn refused(args: &[&str], says: &[&str]) {
    let o = lab7(&common::root(), args);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {t}");
    for s in says {
        assert!(t.contains(s), "{args:?} should say {s:?}: {t}");
    }
}

#[test]
fn check_refuses_a_missing_directory() {
    refused(&["check", "no/such/app"], &["no/such/app", "no such directory", "fix:"]);
}

#[test]
fn check_refuses_a_directory_without_the_dockerfile() {
    refused(&["check", "lab_examples/reference", "--file", "Dockerfile_nope"], &["Dockerfile_nope", "fix:", "--file"]);
}

#[test]
fn grade_logs_refuses_an_unreadable_log() {
    refused(&["grade-logs", "missing-build1.log", "missing-build2.log"], &["missing-build1.log", "fix:"]);
}

#[test]
fn grade_logs_refuses_a_file_that_is_no_build_log() {
    refused(&["grade-logs", "Cargo.toml", "README.md"], &["Cargo.toml", "no BuildKit progress", "any --progress mode"]);
}

#[test]
fn inspect_refuses_a_malformed_reference() {
    refused(
        &["inspect", "--registry", "localhost:5000", "Lab:Cache Test"],
        &["Lab:Cache Test", "not an image reference"],
    );
}

#[test]
fn inspect_says_when_the_registry_is_unreachable() {
    refused(&["inspect", "--registry", "127.0.0.1:9", "lab:cachetest"], &["127.0.0.1:9", "unreachable", "fix:"]);
}

#[test]
fn check_says_how_to_start_docker_when_it_is_not_running() {
    let o = Command::new(env!("CARGO_BIN_EXE_lab7"))
        .current_dir(common::root())
        .args(["check", "lab_examples/reference"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("Docker") && t.contains("systemctl start docker"), "{t}");
}

#[test]
fn batch_refuses_a_missing_folder() {
    refused(&["batch", "no/such/class"], &["no/such/class", "fix:"]);
}

#[test]
fn audit_says_when_the_registry_is_unreachable() {
    refused(&["audit", "--registry", "127.0.0.1:9"], &["127.0.0.1:9", "unreachable"]);
}

#[test]
fn a_rubric_with_an_unknown_check_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rubric = dir.path().join("rubric.toml");
    std::fs::write(&rubric, "[[check]]\nid = \"speed\"\ntitle = \"fast\"\npoints = 5\ndocs = \"-\"\n").unwrap();
    let logs = common::fixture("logs");
    let args = ["grade-logs", "--rubric", rubric.to_str().unwrap(), PLAIN[0], PLAIN[1]];
    let o = lab7(&logs, &args);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("unknown variant `speed`") && text(&o).contains("`builds_succeed`"), "{}", text(&o));
}

#[test]
fn a_dockerfile_outside_the_folder_is_a_usage_error() {
    refused(
        &["check", "lab_examples/reference", "--file", "../single-stage/Dockerfile_multi"],
        &["must be inside", "fix:"],
    );
}

#[test]
fn a_build_timeout_of_zero_is_refused() {
    refused(&["check", "lab_examples/reference", "--build-timeout", "0"], &["--build-timeout", "0"]);
}

#[test]
fn node_limits_that_cannot_hold_are_refused() {
    refused(
        &["check", "lab_examples/reference", "--node-disk", "8g", "--node-memory", "4g"],
        &["--node-disk", "tmpfs"],
    );
    refused(&["check", "lab_examples/reference", "--node-memory", "lots"], &["lots", "not a size"]);
}

#[test]
fn logs_that_are_devices_fifos_or_huge_are_refused_without_reading_them() {
    refused(&["grade-logs", "/dev/zero", "/dev/zero"], &["/dev/zero", "not a regular file"]);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("build1.fifo");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    let huge = dir.path().join("huge.log");
    std::fs::File::create(&huge).unwrap().set_len(65 << 20).unwrap(); // sparse: no disk used
    refused(&["grade-logs", fifo.to_str().unwrap(), "x"], &["build1.fifo", "not a regular file"]);
    refused(&["grade-logs", huge.to_str().unwrap(), "x"], &["huge.log", "over lab7's limit"]);
}

#[test]
fn a_rubric_whose_compulsory_points_are_not_100_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rubric = dir.path().join("rubric.toml");
    let edited =
        std::fs::read_to_string(common::root().join("rubric.toml")).unwrap().replacen("points = 20", "points = 25", 1);
    std::fs::write(&rubric, edited).unwrap();
    let o = lab7(&logs_dir(), &["grade-logs", "--rubric", rubric.to_str().unwrap(), PLAIN[0], PLAIN[1]]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("sum to 105"), "{}", text(&o));
}

#[test]
fn unwritable_outputs_are_refused_before_any_work() {
    refused(
        &["check", "lab_examples/reference", "--out", "/nonexistent/dir/report.md"],
        &["/nonexistent/dir/report.md", "cannot write the report", "fix:"],
    );
    refused(&["check", "lab_examples/reference", "--logs", "/proc/lab7-logs"], &["/proc/lab7-logs", "fix:"]);
    refused(&["grade-logs", "--out", "/nonexistent/r.json", "a", "b"], &["/nonexistent/r.json"]);
    let o = lab7(&common::root(), &["batch", "lab_examples", "--out", "/nonexistent/results.csv"]);
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("/nonexistent/results.csv") && !t.contains("submission 1/"), "graded before failing: {t}");
}

#[test]
fn batch_without_docker_is_an_environment_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lab7"))
        .current_dir(common::root())
        .args(["batch", "lab_examples", "--out", dir.path().join("r.csv").to_str().unwrap()])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .output()
        .unwrap();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(2), "{t}");
    assert!(t.contains("Docker is not running") && !t.contains("submission 1/"), "{t}");
}

/// A tiny HTTP server on loopback answering every request with `response`.
fn http_server(response: Vec<u8>) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut s in listener.incoming().flatten().take(20) {
            let _ = s.read(&mut [0u8; 4096]);
            let _ = s.write_all(&response);
        }
    });
    port
}

#[test]
fn inspect_of_a_web_server_that_is_no_registry_is_an_environment_error() {
    let port =
        http_server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found".to_vec());
    refused(
        &["inspect", "--registry", &format!("127.0.0.1:{port}"), "lab:cachetest"],
        &["not a container registry", "fix:"],
    );
}

#[test]
fn a_manifest_larger_than_any_real_one_is_refused_unread() {
    let mut body = b"HTTP/1.1 200 OK\r\nDocker-Distribution-API-Version: registry/2.0\r\nDocker-Content-Digest: sha256:a3aeea223872c3042fbd0eb1d0987ccf59c9cf5fc6426864fd59366304754e34\r\nContent-Type: application/vnd.oci.image.index.v1+json\r\nContent-Length: 300000000\r\nConnection: close\r\n\r\n{".to_vec();
    body.extend_from_slice(&[b' '; 1024]);
    let port = http_server(body);
    refused(&["inspect", "--registry", &format!("127.0.0.1:{port}"), "lab:cachetest"], &["over 4194304 bytes"]);
}

#[test]
fn unknown_format_is_a_usage_error() {
    refused(
        &["grade-logs", "a", "b", "--format", "yaml"],
        &["yaml", "possible values: human, json, md, junit, gradescope"],
    );
}

#[test]
fn check_refuses_a_file_that_is_no_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile_multi"), "hello, this is not a Dockerfile\n").unwrap();
    refused(&["check", dir.path().to_str().unwrap()], &["Dockerfile_multi", "no FROM instruction"]);
}
