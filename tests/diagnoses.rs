//! The catalogue of known failures (src/diagnosis/catalogue.toml) against the real output each
//! entry was written from, and `lab7 explain` on it.

mod common;

use lab7::builds::log_text;
use lab7::diagnosis::{catalogue, diagnose};

fn fixture_text(rel: &str) -> String {
    let bytes = std::fs::read(common::fixture(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    log_text::normalise(&log_text::decode(&bytes))
}

/// Every entry finds its failure in the output it was written from, with evidence lines.
#[test]
fn every_catalogue_entry_finds_its_failure_in_its_captured_fixture() {
    let mut entries = 0;
    for entry in catalogue() {
        entries += 1;
        let found = diagnose(&fixture_text(&entry.fixture));
        let d = found.iter().find(|d| d.id == entry.id).unwrap_or_else(|| {
            panic!(
                "{}: not found in {} (found {:?})",
                entry.id,
                entry.fixture,
                found.iter().map(|d| &d.id).collect::<Vec<_>>()
            )
        });
        assert!(!d.evidence.is_empty() && !d.fix.is_empty(), "{d:?}");
        assert!(
            d.docs.starts_with("https://docs.docker.com/") || d.docs.starts_with("https://distribution.github.io/"),
            "{}",
            d.docs
        );
    }
    assert!(entries >= 5, "{entries} entries");
}

/// A fully successful lab run's output holds no problem (build 1's import miss is expected).
#[test]
fn a_good_run_has_no_problem_only_the_expected_import_miss() {
    for rel in [
        "logs/buildx-0.29-plain/build1.log",
        "logs/buildx-0.29-plain/build2.log",
        "logs/buildx-0.29-v0.34-registry3-plain/build1.log",
        "logs/buildx-0.29-v0.34-registry3-plain/build2.log",
        "logs/buildx-0.29-v0.34-registry3-tty-frames-80/build1.log",
        "logs/buildx-0.29-v0.34-registry3-rawjson/build2.log",
    ] {
        let found = diagnose(&fixture_text(rel));
        assert!(found.iter().all(|d| d.expected), "{rel}: {found:?}");
    }
}

/// lab7 run among the fixtures, so that paths read as the catalogue names them.
fn lab7(args: &[&str]) -> std::process::Output {
    common::lab7(&common::fixture(""), args)
}

#[test]
fn explain_exits_1_with_the_cause_evidence_fix_and_docs_of_a_problem() {
    let o = lab7(&["explain", "logs/buildctl-v0.26-failures/dockerfile-syntax-error.log"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{t}");
    for part in
        ["dockerfile-parse-error", "line 3: unknown instruction: RUNN", "fix:", "docs: https://docs.docker.com/"]
    {
        assert!(t.contains(part), "{part} not in {t}");
    }
}

#[test]
fn explain_calls_a_failed_build_a_problem_even_where_the_catalogue_knows_nothing() {
    let o = lab7(&["explain", "logs/buildctl-v0.26-arm64-fails/build1.log"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("problem build-failed") && out.contains("did not complete successfully"), "{out}");
    assert!(out.contains("fix: the step fails only on linux/arm64"), "{out}");
}

#[test]
fn explain_exits_0_on_a_good_build_and_2_on_a_missing_file() {
    let good = lab7(&["explain", "logs/buildx-0.29-utf16le/build1.log", "logs/buildx-0.29-tty-raw/build2.log"]);
    assert_eq!(good.status.code(), Some(0), "{}", String::from_utf8_lossy(&good.stdout));
    let binary = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(binary.path(), [0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 62, 0]).unwrap();
    let binary = lab7(&["explain", binary.path().to_str().unwrap()]);
    assert_eq!(binary.status.code(), Some(2), "{}", String::from_utf8_lossy(&binary.stderr));
    assert!(String::from_utf8_lossy(&binary.stderr).contains("not text"));
    let missing = lab7(&["explain", "no/such/file.log"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("fix:"));
}

/// The failed check carries its diagnosis in every format; PrairieLearn's results.json has
/// its fields and a 0–1 score.
#[test]
fn reports_carry_the_diagnoses_of_failed_checks_in_every_format() {
    let logs = ["logs/buildctl-v0.26-failures/missing-base-image.log", "logs/buildx-0.29-plain/build2.log"];
    for format in ["human", "md", "json", "junit", "gradescope", "prairielearn"] {
        let o = lab7(&["grade-logs", logs[0], logs[1], "--format", format]);
        let t = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{format}: {t}");
        assert!(t.contains("a FROM names an image (or tag) its registry does not have"), "{format}: {t}");
    }
    let o = lab7(&["grade-logs", logs[0], logs[1], "--format", "md"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("## Problems and fixes"));
    let o = lab7(&["grade-logs", logs[0], logs[1], "--format", "prairielearn"]);
    let pl: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let score = pl["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score) && score < 1.0, "{pl}");
    for t in pl["tests"].as_array().unwrap() {
        for key in ["name", "points", "max_points", "message", "output"] {
            assert!(t.get(key).is_some(), "{key} missing in {t}");
        }
    }
}

/// The same commands on registry 3.x (`REGISTRY=3 capture.sh`): DELETE by tag answers 202, a
/// HEAD without Accept 200, and `--delete-untagged` keeps the platform manifests, so none of
/// registry 2.8's diagnoses may fire; deletion disabled is the same on both.
#[test]
fn registry_3_transcripts_get_only_the_diagnoses_that_hold_there() {
    let only_on_2_8 = ["delete-by-tag", "manifest-head-without-accept", "delete-untagged-gc", "platform-manifest-gone"];
    for file in [
        "delete-by-tag",
        "head-without-accept",
        "gc-delete-untagged",
        "platform-manifest-gone",
        "gc-keeps-untagged-cache",
    ] {
        let found = diagnose(&fixture_text(&format!("diagnoses/registry-3/{file}.txt")));
        assert!(found.iter().all(|d| !only_on_2_8.contains(&d.id.as_str())), "{file}: {found:?}");
    }
    let disabled = diagnose(&fixture_text("diagnoses/registry-3/delete-disabled.txt"));
    assert!(disabled.iter().any(|d| d.id == "registry-deletion-disabled"), "{disabled:?}");
}

/// A rawjson capture is diagnosed too: its steps' output is base64 inside the JSON.
#[test]
fn explain_reads_a_rawjson_capture() {
    let o = lab7(&["explain", "diagnoses/no-emulator-exec-format-error.rawjson"]);
    let t = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains("no-emulator-for-platform") && t.contains("exec /bin/sh: exec format error"), "{t}");
}

/// The registry transcripts of a deletion gone wrong, captured on registry 2.8 and 3.1
/// (`capture-transcripts.sh`): each gets the diagnoses that hold on its registry, and only those.
#[rstest::rstest]
#[case::accept_without_oci_on_an_index("manifest-accept-docker-only", &["accept-header-without-oci"], &[])]
#[case::accept_without_oci_verbose("manifest-accept-docker-only-verbose", &["accept-header-without-oci"], &[])]
#[case::accept_without_oci_on_a_manifest(
    "platform-manifest-accept-docker-only",
    &["accept-header-without-oci"],
    &["accept-header-without-oci"]
)]
#[case::gc_kept_by_build_1s_revision(
    "gc-another-revision-keeps-cache",
    &["gc-kept-by-another-revision"],
    &["gc-kept-by-another-revision"]
)]
#[case::gc_of_every_revision("gc-after-every-revision", &[], &[])]
#[case::collected_blob_get_breaks_off("blob-get-after-gc", &["collected-blob-still-served"], &["collected-blob-still-served"])]
#[case::collected_blob_head_200(
    "gc-then-blob-head",
    &["gc-kept-by-another-revision", "collected-blob-still-answers-200"],
    &["gc-kept-by-another-revision", "collected-blob-still-answers-200"]
)]
#[case::a_blob_head_alone_is_no_problem("blob-head-after-gc", &[], &[])]
#[case::delete_untagged_collects_the_image("gc-delete-untagged-image", &["delete-untagged-gc"], &[])]
#[case::imagetools_after_delete_untagged("imagetools-after-delete-untagged", &["platform-manifest-gone"], &[])]
#[case::imagetools_of_a_platform_after_delete_untagged(
    "imagetools-platform-after-delete-untagged",
    &["platform-manifest-gone"],
    &[]
)]
fn registry_transcripts_get_the_diagnoses_of_their_registry(
    #[case] file: &str,
    #[case] on_2_8: &[&str],
    #[case] on_3: &[&str],
) {
    for (dir, want) in [("diagnoses", on_2_8), ("diagnoses/registry-3", on_3)] {
        let found: Vec<String> =
            diagnose(&fixture_text(&format!("{dir}/{file}.txt"))).into_iter().map(|d| d.id).collect();
        assert_eq!(found, want, "{dir}/{file}.txt");
    }
}

/// registry7's container name used from the host, where only localhost:5000 reaches it.
#[test]
fn registry7_by_name_from_the_host_is_explained() {
    for file in ["registry7-name-from-host", "registry7-name-from-host-curl"] {
        let o = lab7(&["explain", &format!("diagnoses/{file}.txt")]);
        let t = String::from_utf8_lossy(&o.stdout);
        assert_eq!(o.status.code(), Some(1), "{t}");
        assert!(t.contains("registry7-name-on-the-host") && t.contains("localhost:5000"), "{t}");
    }
}
