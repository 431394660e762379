//! The log model on real BuildKit output (../shared/fixtures, and runs captured here).

mod common;

use lab7::builds::log::LogForm;
use lab7::builds::{BuildLog, CacheImport, VertexState};
use lab7::platform::Platform;
use rstest::rstest;

fn log(rel: &str) -> BuildLog {
    BuildLog::read(&std::fs::read(common::fixture(rel)).unwrap())
}

#[rstest]
#[case::buildctl("logs/buildctl-v0.26/build1.log")]
#[case::buildctl_standin("logs/buildctl-v0.26-standin-build1.log")]
#[case::buildx_docker_driver("logs/buildx-0.13-docker-driver/build1.log")]
fn first_build_tries_the_cache_and_finds_none(#[case] rel: &str) {
    let l = log(rel);
    assert!(
        matches!(l.cache_import(), CacheImport::NotFound { ref message, .. } if message.contains("not found")),
        "{:?}",
        l.cache_import()
    );
    // The failed import is expected: it is not the build's failure.
    assert_eq!(l.first_failure(), None);
    for steps in l.per_platform().values() {
        assert_eq!(steps.cached_steps, 0);
        assert_eq!(steps.layer_steps, 4);
    }
}

#[rstest]
#[case::buildctl_after_prune(
    "logs/buildctl-v0.26/build2-after-prune.log",
    "application/vnd.oci.image.manifest.v1+json",
    LogForm::Plain
)]
#[case::buildx_docker_driver(
    "logs/buildx-0.13-docker-driver/build2.log",
    "application/vnd.oci.image.index.v1+json",
    LogForm::Plain
)]
#[case::buildx_tty_80_columns(
    "logs/buildx-0.29-tty-80/build2.log",
    "application/vnd.oci.image.manifest.v",
    LogForm::Tty
)]
#[case::buildx_raw_terminal(
    "logs/buildx-0.29-tty-raw/build2.log",
    "application/vnd.oci.image.manifest.v1+json",
    LogForm::Tty
)]
#[case::buildx_rawjson(
    "logs/buildx-0.29-rawjson/build2.log",
    "application/vnd.oci.image.manifest.v1+json",
    LogForm::RawJson
)]
fn second_build_imports_the_cache_and_every_step_is_cached(
    #[case] rel: &str,
    #[case] manifest_type: &str,
    #[case] form: LogForm,
) {
    let l = log(rel);
    assert_eq!(l.form, form);
    match l.cache_import() {
        CacheImport::Imported { manifest_type: t, from } => {
            assert_eq!(t, manifest_type);
            assert!(from.ends_with("/cachedata1"), "{from}");
        }
        other => panic!("expected an import, got {other:?}"),
    }
    let per = l.per_platform();
    let platforms: Vec<_> = per.keys().cloned().collect();
    assert_eq!(platforms, vec![Some(Platform::linux_amd64()), Some(Platform::linux_arm64())]);
    for (p, steps) in &per {
        assert_eq!((steps.layer_steps, steps.cached_layer_steps, steps.cached_steps), (4, 4, 6), "{p:?}");
        assert!(steps.uncached.is_empty());
    }
    assert_eq!(l.cached_lines().len(), 12);
}

#[test]
fn cached_line_names_platform_stage_and_step() {
    let l = log("logs/buildctl-v0.26/build2-after-prune.log");
    let (v, step) =
        l.steps().find(|(v, s)| s.instruction == "RUN" && s.index == 2 && v.state == VertexState::Cached).unwrap();
    assert_eq!(step.stage, "build1");
    assert_eq!(step.total, 5);
    assert_eq!(step.args, "mkdir -p /var/app");
    assert!(v.name.starts_with("[linux/"), "{}", v.name);
}

#[rstest]
#[case::buildctl(
    "logs/buildctl-v0.26/build2-after-prune.log",
    10,
    Some("sha256:b5062ed1e71561beb0908d441428b0677f88eea66fb8eec891633e3ce74d95fc")
)]
#[case::buildx_docker_driver(
    "logs/buildx-0.13-docker-driver/build2.log",
    10,
    Some("sha256:1aa4b1851cc6cd4884485ad83031106cb6bd51650be1b63eb7466443e5619b61")
)]
#[case::buildx_tty_200_columns(
    "logs/buildx-0.29-tty-200/build2.log",
    9,
    Some("sha256:a459b7783dae6a4b45ce45fcd3fddfc2c6e2928787ff2d1ad04b7169ac987d9f")
)]
#[case::buildx_rawjson(
    "logs/buildx-0.29-rawjson/build2.log",
    9,
    Some("sha256:741802a624f1610c02e2be30983e409311b32b28be86448594ff3d6acfcb7307")
)]
// At 80 columns the terminal cuts every digest: the layers count by their prefixes, and the
// manifest is seen written though its digest is not known.
#[case::buildx_tty_80_columns("logs/buildx-0.29-tty-80/build2.log", 9, None)]
fn cache_export_counts_distinct_layers_and_the_manifest(
    #[case] rel: &str,
    #[case] layers: usize,
    #[case] manifest: Option<&str>,
) {
    let e = log(rel).cache_export().expect("the build exports its cache");
    assert_eq!(e.layers_written, layers);
    assert!(e.manifest_written);
    assert_eq!(e.manifest.as_ref().map(|d| d.as_str()), manifest);
}

#[test]
fn a_step_failing_on_arm64_is_the_first_failure() {
    // Captured from `lab7 check lab_examples/arm64-fails --logs …`.
    let l = log("logs/buildctl-v0.26-arm64-fails/build1.log");
    let per = l.per_platform();
    assert_eq!(
        per[&Some(Platform::linux_arm64())].failed,
        vec![
            r#"build1 4/5 RUN [ "$(uname -m)" = x86_64 ] || { echo "tool.sh is built for x86-64 only, this is $(uname -m)" >&2; exit 1; }"#
        ]
    );
    assert!(per[&Some(Platform::linux_amd64())].failed.is_empty());
    let failure = l.first_failure().unwrap();
    assert!(failure.starts_with("[linux/arm64 build1 4/5]"), "{failure}");
    assert!(failure.ends_with("did not complete successfully: exit code: 1 (it printed: tool.sh is built for x86-64 only, this is aarch64)"), "{failure}");
    assert!(l.errors.iter().any(|e| e.starts_with("error: failed to solve")), "{:?}", l.errors);
    // The expected miss of build 1's cache import is not the failure.
    assert!(matches!(l.cache_import(), CacheImport::NotFound { .. }));
}

#[test]
fn text_without_progress_has_no_vertices() {
    assert!(BuildLog::parse("hello\nthis is not a build log\n").vertices.is_empty());
}

/// BuildKit's names for a cross-compiling step, a padded index and a step it ran once for both
/// platforms, from a real build of an earlier `lab_examples/buildkit-shapes`.
#[test]
fn step_names_say_which_platform_a_step_builds_for() {
    let l = log("logs/buildctl-v0.26-shapes/build1.log");
    let step = |name_part: &str| {
        l.steps()
            .find(|(v, _)| v.name.contains(name_part))
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| panic!("{name_part}"))
    };
    let cross = step("[linux/amd64->arm64 build 4/4]");
    assert_eq!(cross.platform, Some(Platform::linux_arm64()));
    assert_eq!(cross.built_on, Some(Platform::linux_amd64()));
    assert_eq!((cross.instruction.as_str(), cross.index, cross.total), ("RUN", 4, 4));
    let padded = step("prod  2/10]");
    assert_eq!((padded.stage.as_str(), padded.index, padded.total), ("prod", 2, 10));
    let by_target = l.layer_steps_by_target(&Platform::lab_targets());
    for (platform, steps) in &by_target {
        // The FROM scratch stage ran once, named for one platform, and counts for both.
        assert!(steps.iter().any(|s| s.shared && s.label.starts_with("assets 1/1 COPY")), "{platform}: {steps:?}");
        assert!(steps.iter().any(|s| s.label.starts_with("build 4/4 RUN sh build.sh")), "{platform}: {steps:?}");
    }
    assert_eq!(by_target[&Platform::linux_arm64()].len(), by_target[&Platform::linux_amd64()].len());
}

#[rstest]
#[case::pruned_between("logs/buildctl-v0.26/build1.log", "logs/buildctl-v0.26/build2-after-prune.log", 156.0, 156.0)]
#[case::not_pruned("logs/buildctl-v0.26-unpruned/build1.log", "logs/buildctl-v0.26-unpruned/build2.log", 1090.0, 126.0)]
#[case::tty_form("logs/buildx-0.29-tty-80/build1.log", "logs/buildx-0.29-tty-80/build2.log", 1090.0, 1090.0)]
// rawjson gives the exact byte count that the plain and tty forms print as 1.09kB.
#[case::rawjson("logs/buildx-0.29-rawjson/build1.log", "logs/buildx-0.29-rawjson/build2.log", 1087.0, 1087.0)]
fn the_context_each_build_received_is_read(#[case] b1: &str, #[case] b2: &str, #[case] t1: f64, #[case] t2: f64) {
    assert_eq!(log(b1).context_transferred(), Some(t1));
    assert_eq!(log(b2).context_transferred(), Some(t2));
}

/// Why a build failed, from real logs of each kind of failure, and advice that fits it:
/// arm64/emulation advice only where the step failed on arm64 alone.
#[rstest]
#[case::missing_base_image("missing-base-image", "base image docker.io/library/node:20-alpine could not be found")]
#[case::missing_syntax_frontend("missing-syntax-frontend", "`# syntax=` line names docker.io/docker/dockerfile:1.7")]
#[case::dockerfile_syntax_error("dockerfile-syntax-error", "fix line 3 of the Dockerfile: unknown instruction: RUNN")]
#[case::security_insecure("security-insecure", "security.insecure, which the lab's command does not allow")]
#[case::step_fails_everywhere("step-fails-everywhere", "fails on its own (not only under emulation)")]
fn a_failed_build_gets_the_advice_for_its_cause(#[case] name: &str, #[case] advice: &str) {
    let l = log(&format!("logs/buildctl-v0.26-failures/{name}.log"));
    let cause = l.failure_cause().expect("a known cause");
    assert!(cause.advice().contains(advice), "{cause:?}: {}", cause.advice());
    assert!(!cause.advice().contains("QEMU"), "{}", cause.advice());
}

/// What buildkitd fetches itself, refused by lab7's node firewall (real captures: each
/// fetch aimed at the grading host through docker0's gateway, or at a cloud's metadata
/// address): the cause names what asked for it and where, and says why it is refused.
#[rstest]
#[case::add_url("add-url", "ADD http://172.17.0.1:38765/secret.txt /p/a.txt", "172.17.0.1:38765")]
#[case::git_url("git-url", "ADD http://172.17.0.1:38765/repo.git#main /src", "172.17.0.1:38765")]
#[case::from_host_registry("from-host-registry", "FROM 172.17.0.1:38765/lab/base:1", "172.17.0.1:38765")]
#[case::syntax_host_registry(
    "syntax-host-registry",
    "# syntax=172.17.0.1:38765/docker/dockerfile:1",
    "172.17.0.1:38765"
)]
#[case::metadata_service(
    "metadata-service",
    "ADD http://169.254.169.254/latest/meta-data/iam/ /p/creds",
    "169.254.169.254:80"
)]
fn a_fetch_refused_by_the_firewall_is_named_with_the_reason(
    #[case] name: &str,
    #[case] instruction: &str,
    #[case] address: &str,
) {
    use lab7::builds::failure::FailureCause;
    let l = log(&format!("logs/buildctl-v0.26-fenced/{name}.log"));
    let cause = l.failure_cause().expect("a known cause");
    assert_eq!(
        cause,
        FailureCause::Unreachable { instruction: instruction.into(), address: address.into() },
        "{}",
        l.errors.join("\n")
    );
    assert!(cause.advice().contains("lab7 does not let a build reach the grading machine or private networks"));
}

/// A refused connection to a public address is not lab7's doing: it stays a failed step.
#[test]
fn a_refused_public_address_is_not_the_firewalls() {
    let text = std::fs::read_to_string(common::fixture("logs/buildctl-v0.26-fenced/add-url.log"))
        .unwrap()
        .replace("172.17.0.1", "93.184.215.14");
    let cause = lab7::builds::BuildLog::parse(&text).failure_cause().unwrap();
    assert!(!matches!(cause, lab7::builds::failure::FailureCause::Unreachable { .. }), "{cause:?}");
}

#[test]
fn a_step_failing_only_on_arm64_gets_the_emulation_advice() {
    let cause = log("logs/buildctl-v0.26-arm64-fails/build1.log").failure_cause().unwrap();
    assert!(cause.advice().contains("only on linux/arm64") && cause.advice().contains("QEMU"), "{cause:?}");
}

/// An unnamed stage's steps have no stage in their name: `[linux/amd64 3/4] COPY src/ ./`.
#[test]
fn a_step_of_an_unnamed_stage_is_read() {
    let l = log("logs/buildctl-v0.26-single-stage/build1.log");
    let (_, step) = l.steps().find(|(v, _)| v.name.starts_with("[linux/amd64 3/4]")).expect("the COPY step");
    assert_eq!((step.stage.as_str(), step.index, step.total, step.instruction.as_str()), ("", 3, 4, "COPY"));
    assert_eq!(step.label(), "3/4 COPY src/ ./");
}
