//! `lab7 grade-report`: reports built from one real session (tests/fixtures/reports/), in
//! every format students hand in, one per missing requirement and one altered per cross-check.
//! No Docker: a report is text.

mod common;

use std::path::{Path, PathBuf};

use lab7::checks::{CheckId, CheckOutcome, Rubric, Status};
use lab7::handin::HandIn;
use lab7::report::{Report, Verdict};
use rstest::rstest;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports").join(name)
}

fn graded(name: &str) -> Report {
    let h = HandIn::read(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    h.grade(name, &Rubric::default_report_rubric())
}

fn check(r: &Report, id: CheckId) -> &CheckOutcome {
    r.checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("{id} not graded"))
}

fn lab7(args: &[&str]) -> std::process::Output {
    common::lab7(&common::root(), args)
}

#[rstest]
#[case::markdown_english("complete-en.md")]
#[case::markdown_polish("complete-pl.md")]
#[case::text("complete-en.txt")]
#[case::docx_by_pandoc("complete-pl.docx")]
#[case::pdf_by_libreoffice("complete-pl.pdf")]
#[case::manifest_inspect_json("manifest-inspect-pl.md")]
#[case::build_2_in_pieces_with_words_between("pieces-en.md")]
#[case::build_2_in_pieces_docx_by_pandoc("pieces-pl.docx")]
fn a_complete_report_earns_every_point_in_every_format(#[case] name: &str) {
    let r = graded(name);
    for c in &r.checks {
        assert_eq!(c.status, Status::Pass, "{name}: {} — {}", c.id, c.seen);
        assert_eq!(c.points, c.max_points, "{name}: {}", c.id);
        assert!(!c.quotes.is_empty(), "{name}: {} quotes nothing", c.id);
    }
    assert_eq!(r.verdict, Verdict::Pass);
}

#[test]
fn each_verdict_quotes_its_lines_with_where_they_are() {
    let r = graded("complete-pl.pdf");
    let manifest = check(&r, CheckId::ReportManifest);
    assert!(
        manifest.quotes.iter().any(|q| q.at.starts_with("page ") && q.text.contains("linux/arm64")),
        "{:?}",
        manifest.quotes
    );
    let docx = graded("complete-pl.docx");
    let builds = check(&docx, CheckId::ReportTwoBuilds);
    assert!(builds.quotes.iter().all(|q| q.at.starts_with("paragraph ")), "{:?}", builds.quotes);
    // A digest the word processor wrapped at the page's edge is read whole.
    let cache = check(&r, CheckId::ReportCacheEvidence);
    assert!(
        cache.quotes.iter().any(|q| q.text.contains("writing cache image manifest sha256:") && q.text.len() > 90),
        "{:?}",
        cache.quotes
    );
}

#[rstest]
#[case::build2("missing-build2.md", CheckId::ReportTwoBuilds, "only one build's output found")]
#[case::manifest("missing-manifest.md", CheckId::ReportManifest, "no manifest listing found")]
#[case::manifest_docx("missing-manifest.docx", CheckId::ReportManifest, "no manifest listing found")]
#[case::cache_lines("missing-cache-lines.md", CheckId::ReportCacheEvidence, "did not try to import")]
#[case::unpruned(
    "unpruned.md",
    CheckId::ReportCacheEvidence,
    "not proven: no `docker buildx prune -a -f` between the builds"
)]
#[case::problem_explanation("problem-unexplained.md", CheckId::ReportProblemsExplained, "docker-driver-multi-platform")]
#[case::problem_in_word_paragraphs(
    "problem-unexplained-paragraphs.docx",
    CheckId::ReportProblemsExplained,
    "not explained"
)]
#[case::failed_step_no_catalogue_entry(
    "problem-failed-step-unexplained.md",
    CheckId::ReportProblemsExplained,
    "a failed build"
)]
#[case::docs_link("problem-without-docs.md", CheckId::ReportProblemsExplained, "no link to the documentation")]
#[case::bonus("missing-bonus.md", CheckId::ReportBonusDeletion, "no DELETE of the cache manifest")]
fn a_missing_requirement_is_said_plainly(#[case] name: &str, #[case] id: CheckId, #[case] said: &str) {
    let r = graded(name);
    let c = check(&r, id);
    assert_eq!(c.status, Status::Fail, "{name}: {}", c.seen);
    assert!(c.points < c.max_points);
    assert!(c.seen.contains(said), "{name}: {}", c.seen);
    assert!(c.fix.is_some());
    // Only that requirement: the others keep their points (missing build 2 also takes the
    // cache evidence that needs it, and its cross-checks).
    let others_failed: Vec<_> =
        r.checks.iter().filter(|o| o.status == Status::Fail && o.id != id).map(|o| o.id).collect();
    if name != "missing-build2.md" {
        assert!(others_failed.is_empty(), "{name}: also failed {others_failed:?}");
    }
}

#[test]
fn a_failure_the_catalogue_does_not_know_is_a_problem_to_explain_too() {
    let r = graded("problem-failed-step-explained.md");
    let c = check(&r, CheckId::ReportProblemsExplained);
    assert_eq!(c.points, c.max_points, "{}", c.seen);
    assert!(c.seen.contains("a failed build"), "{}", c.seen);
    assert!(c.quotes.iter().any(|q| q.text.contains("did not complete successfully")), "{:?}", c.quotes);
}

#[test]
fn a_problem_explained_without_a_reference_earns_half_with_the_reference_named() {
    let c = check(&graded("problem-without-docs.md"), CheckId::ReportProblemsExplained).clone();
    assert_eq!(c.points, c.max_points / 2.0, "{}", c.seen);
    let unexplained = check(&graded("problem-unexplained.md"), CheckId::ReportProblemsExplained).clone();
    assert_eq!(unexplained.points, 0.0, "{}", unexplained.seen);
    assert!(unexplained.seen.contains("not explained"), "{}", unexplained.seen);
}

#[rstest]
#[case::index_digest("altered-manifest-digest.md", "✗ index digest")]
#[case::platforms("altered-platforms.md", "✗ platforms")]
#[case::cache_ref(
    "altered-import-ref.md",
    "✗ cache ref: build 2 imports registry7:5000/cachedata2, build 1 exported registry7:5000/cachedata1"
)]
#[case::cached_lines_added("altered-build2-copied.md", "is CACHED and yet printed its command's output")]
#[case::build1_pasted_twice("altered-build1-twice.md", "build 2 is build 1's output again: the same 23 vertices")]
#[case::deleted_image("altered-deleted-digest.md", "a manifest of the image, not the cache")]
fn each_inconsistency_is_a_finding_with_both_quotes(#[case] name: &str, #[case] finding: &str) {
    let r = graded(name);
    let c = check(&r, CheckId::ReportConsistent);
    assert_eq!(c.status, Status::Fail, "{name}: {}", c.seen);
    assert!(c.seen.contains(finding), "{name}: {}", c.seen);
    assert!(c.quotes.len() >= 2, "{name}: {:?}", c.quotes);
    assert_eq!(graded("complete-en.md").verdict, Verdict::Pass);
}

#[test]
fn the_bonus_is_judged_on_substance() {
    let by_tag = graded("bonus-by-tag.md");
    let c = check(&by_tag, CheckId::ReportBonusDeletion);
    assert!(c.seen.contains("✗ DELETE by tag: registry 2.8 refuses it"), "{}", c.seen);
    assert!(c.seen.contains("✗ `garbage-collect --delete-untagged` with no caveat"), "{}", c.seen);
    assert!(c.points < c.max_points / 2.0, "{}", c.points);
    // Where the student says they ran registry 3.x, DELETE by tag and --delete-untagged are right.
    let on_3 = graded("bonus-by-tag-registry3.md");
    let c = check(&on_3, CheckId::ReportBonusDeletion);
    assert_eq!(c.points, c.max_points, "{}", c.seen);
    assert!(c.seen.contains("✓ DELETE by tag, which registry 3.x accepts"), "{}", c.seen);
    let full = graded("complete-en.md");
    let c = check(&full, CheckId::ReportBonusDeletion);
    assert_eq!(c.points, c.max_points, "{}", c.seen);
    assert!(c.seen.contains("✓ DELETE by digest, answered 202"), "{}", c.seen);
}

/// Real builds, pasted as captured in each form buildx prints: the "two real builds"
/// cross-check never mistakes them for one build pasted twice.
#[rstest]
fn two_real_builds_are_never_taken_for_one_pasted_twice(
    #[values(
        "plain",
        "tty-80",
        "tty-200",
        "tty-frames-80",
        "tty-frames-120",
        "ci-timestamps",
        "two-cache-from",
        "crlf",
        "utf16le",
        "rawjson",
        "v0.34-registry3-plain",
        "v0.34-registry3-tty-frames-80"
    )]
    form: &str,
) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs").join(format!("buildx-0.29-{form}"));
    let read = |n: u8| lab7::builds::log_text::decode(&std::fs::read(dir.join(format!("build{n}.log"))).unwrap());
    let text = format!("# Report\n\n## Build 1\n\n```\n{}```\n\n## Build 2\n\n```\n{}```\n", read(1), read(2));
    let h = HandIn::of_lines(lab7::handin::HandInFormat::Markdown, lab7::handin::extract::numbered(&text));
    let r = h.grade(form, &Rubric::default_report_rubric());
    let c = check(&r, CheckId::ReportConsistent);
    assert!(c.seen.contains("✓ build 2"), "{form}: {}", c.seen);
    assert_eq!(check(&r, CheckId::ReportTwoBuilds).status, Status::Pass, "{form}");
    // Read as grade-logs reads them: build 2 imported the cache build 1 looked for.
    let cache = check(&r, CheckId::ReportCacheEvidence);
    assert!(cache.seen.contains("✓ build 1: not found (expected); build 2: imported from"), "{form}: {}", cache.seen);
}

#[test]
fn grade_report_exits_0_when_all_is_shown_1_when_not_2_when_unreadable() {
    assert_eq!(lab7(&["grade-report", fixture("complete-pl.pdf").to_str().unwrap()]).status.code(), Some(0));
    assert_eq!(lab7(&["grade-report", fixture("unpruned.md").to_str().unwrap()]).status.code(), Some(1));
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("report.pdf");
    std::fs::write(&broken, b"%PDF-1.7\nnot really a pdf").unwrap();
    let o = lab7(&["grade-report", broken.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("report.pdf") && err.contains("fix:"), "{err}");
}

#[test]
fn grade_report_writes_every_format_and_honours_a_report_rubric() {
    let file = fixture("missing-manifest.md");
    for format in ["human", "md", "json", "junit", "gradescope", "prairielearn"] {
        let o = lab7(&["grade-report", file.to_str().unwrap(), "--format", format]);
        assert_eq!(o.status.code(), Some(1), "{format}");
        assert!(String::from_utf8_lossy(&o.stdout).contains("no manifest listing found"), "{format}");
    }
    let dir = tempfile::tempdir().unwrap();
    let rubric = dir.path().join("rubric.toml");
    let mine = lab7::checks::DEFAULT_REPORT_RUBRIC
        .replace(
            "points = 15\ndocs = \"https://docs.docker.com/reference",
            "points = 5\ndocs = \"https://docs.docker.com/reference",
        )
        .replace("points = 25", "points = 35");
    std::fs::write(&rubric, mine).unwrap();
    let o = lab7(&["grade-report", file.to_str().unwrap(), "--rubric", rubric.to_str().unwrap(), "--format", "json"]);
    let r: Report = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(check(&r, CheckId::ReportManifest).max_points, 5.0);
    // The lab's rubric is not a report's.
    let lab_rubric = dir.path().join("lab.toml");
    std::fs::write(&lab_rubric, lab7::checks::DEFAULT_RUBRIC).unwrap();
    let o = lab7(&["grade-report", file.to_str().unwrap(), "--rubric", lab_rubric.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not one of the report's requirements"));
}

#[test]
fn batch_grades_a_class_of_reports_with_a_row_and_a_report_each() {
    let class = tempfile::tempdir().unwrap();
    for name in ["complete-pl.pdf", "complete-pl.docx", "missing-manifest.md", "altered-platforms.md"] {
        std::fs::copy(fixture(name), class.path().join(name)).unwrap();
    }
    std::fs::write(class.path().join("broken.docx"), b"PK\x03\x04 not a docx").unwrap();
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("reports.csv");
    let o = lab7(&["batch", "--reports", class.path().to_str().unwrap(), "--out", csv.to_str().unwrap()]);
    // One report cannot be read: that is the batch's exit 2, with every other row there.
    assert_eq!(o.status.code(), Some(2), "{}", String::from_utf8_lossy(&o.stderr));
    let table = std::fs::read_to_string(&csv).unwrap();
    let row = |n: &str| {
        table.lines().find(|l| l.starts_with(&format!("{n},"))).unwrap_or_else(|| panic!("{n}:\n{table}")).to_string()
    };
    assert!(row("complete-pl.pdf").starts_with("complete-pl.pdf,pass,100,100,50"), "{table}");
    assert!(row("complete-pl.docx").starts_with("complete-pl.docx,pass,"), "{table}");
    assert!(
        row("missing-manifest.md").contains(",fail,") && row("missing-manifest.md").contains("report_manifest"),
        "{table}"
    );
    assert!(row("broken.docx").contains("not a readable Docx file"), "{table}");
    assert!(out.path().join("reports-reports/missing-manifest.md.md").exists());
    // The last column says which reports to check by hand, and why.
    assert!(table.lines().next().unwrap().ends_with(",seconds,review"), "{table}");
    assert!(row("altered-platforms.md").ends_with("evidence inconsistent: check by hand — platforms: the listing names linux/amd64, linux/arm/v7, the builds built linux/amd64, linux/arm64\""), "{table}");
    assert!(row("complete-pl.pdf").ends_with(','), "{table}");
}

/// `--out` inside the class folder: the batch's own summary (`results.md`) is a report by its
/// name, and a second run finds the first one's there too. Neither is graded as a student's.
#[test]
fn batch_never_grades_its_own_outputs_in_the_class_folder() {
    let class = tempfile::tempdir().unwrap();
    for name in ["complete-pl.md", "missing-manifest.md"] {
        std::fs::copy(fixture(name), class.path().join(name)).unwrap();
    }
    let csv = class.path().join("results.csv");
    for run in 1..=2 {
        let o = lab7(&["batch", "--reports", class.path().to_str().unwrap(), "--out", csv.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "run {run}: {stderr}");
        assert!(stderr.contains("results.md: it is this batch's own output (--out)"), "run {run}: {stderr}");
        let table = std::fs::read_to_string(&csv).unwrap();
        assert_eq!(table.lines().count(), 1 + 2, "run {run}: a header and the two students only:\n{table}");
        assert!(!table.contains("results"), "run {run}: {table}");
    }
}

#[test]
fn a_docx_heading_is_read_from_its_style_and_a_textless_pdf_is_refused() {
    let h = HandIn::read(&fixture("complete-pl.docx")).unwrap();
    let headings: Vec<&str> = h.lines.iter().filter(|l| l.heading).map(|l| l.text.as_str()).collect();
    assert!(headings.contains(&"5. Napotkane problemy"), "{headings:?}");
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("scan.md");
    std::fs::write(&empty, "\n\n   \n").unwrap();
    let e = HandIn::read(&empty).unwrap_err().to_string();
    assert!(e.contains("no text in it") && e.contains("fix:"), "{e}");
}

/// A GC that kept the cache (build 1's revision still marks its layers) is diagnosed in the
/// report, but no tool printed it as an error: the report is not asked to explain it as a
/// problem met.
#[test]
fn a_silent_outcome_is_diagnosed_but_not_a_problem_to_explain() {
    let found = HandIn::read(&fixture("bonus-tagged-revision-only.md")).unwrap().diagnoses();
    assert!(found.iter().any(|d| d.id == "gc-kept-by-another-revision" && d.silent), "{found:?}");
    let r = graded("bonus-tagged-revision-only.md");
    let c = check(&r, CheckId::ReportProblemsExplained);
    assert!(!c.seen.contains("gc-kept-by-another-revision"), "{}", c.seen);
    assert_eq!(c.points, c.max_points, "{}", c.seen);
}

/// The cache is deleted only when every revision is (real sessions on registry 2.8): deleting the
/// tagged cache manifest leaves build 1's revision, whose layers garbage-collect keeps — the
/// report's own GC output marks it. Every revision deleted by digest, the GC marks none and the
/// bonus is whole.
#[test]
fn the_cache_is_deleted_only_with_every_revision() {
    let c = check(&graded("bonus-tagged-revision-only.md"), CheckId::ReportBonusDeletion).clone();
    assert!(c.points < c.max_points, "{}", c.seen);
    assert!(
        c.seen.contains("✗ garbage-collect kept the cache: revision sha256:ea721dda6863e3f9f77990901b695ae8616de7e605660ef622c3b8cd16afdde0 (build 1's cache manifest)"),
        "{}",
        c.seen
    );
    assert!(
        c.quotes.iter().any(|q| q.text.starts_with("cachedata1: marking manifest sha256:ea721dda")),
        "{:?}",
        c.quotes
    );
    assert!(c.fix.as_deref().is_some_and(|f| f.contains("every revision")), "{:?}", c.fix);
    let whole = check(&graded("complete-en.md"), CheckId::ReportBonusDeletion).clone();
    assert_eq!(whole.points, whole.max_points, "{}", whole.seen);
}

/// Build 2 quoted in pieces (its start, the import, the CACHED steps, the export) with the
/// student's words between them is one build: the import and the steps are found in it.
#[rstest]
#[case::markdown("pieces-en.md")]
#[case::docx_by_pandoc("pieces-pl.docx")]
fn a_build_pasted_in_pieces_is_one_build(#[case] name: &str) {
    let h = HandIn::read(&fixture(name)).unwrap();
    assert_eq!(h.pieces.builds.len(), 2, "{name}: {} builds", h.pieces.builds.len());
    let cache = check(&graded(name), CheckId::ReportCacheEvidence).clone();
    assert!(cache.seen.contains("build 2: imported from registry7:5000/cachedata1"), "{name}: {}", cache.seen);
    assert_eq!(cache.points, cache.max_points, "{name}: {}", cache.seen);
}

/// The bonus judged by what the deletion did, from one real session on registry 2.8: DELETE by
/// tag (400 DIGEST_INVALID), then `garbage-collect --delete-untagged`, whose own output lists
/// the platform manifests the report's listing names. The image is destroyed: no bonus.
#[test]
fn a_deletion_that_destroys_the_image_earns_no_bonus() {
    let r = graded("bonus-untagged-session.md");
    let c = check(&r, CheckId::ReportBonusDeletion);
    assert_eq!(c.points, 0.0, "{}", c.seen);
    assert!(
        c.seen.starts_with("✗ the image was destroyed: garbage-collect deleted 4 of its own platform manifests"),
        "{}",
        c.seen
    );
    assert!(
        c.quotes.first().is_some_and(|q| q.text.starts_with("manifest eligible for deletion: sha256:")),
        "{:?}",
        c.quotes
    );
}

/// A DELETE the registry refused deleted nothing, whatever follows it.
#[test]
fn a_deletion_the_registry_refused_earns_little_of_the_bonus() {
    let c = check(&graded("bonus-by-tag.md"), CheckId::ReportBonusDeletion).clone();
    assert!(c.seen.starts_with("✗ nothing was deleted: the registry refused the DELETE (400)"), "{}", c.seen);
    assert!(c.points <= c.max_points / 6.0 + 1e-9, "{}: {}", c.points, c.seen);
}

/// Evidence the cross-checks show not to hold earns nothing for what it was to show, and the
/// report is flagged for the instructor. A build 2 made from build 1 (CACHED lines added, its
/// steps' output and even its attestation lines taken out) is no build: not two builds, no cache.
#[rstest]
#[case::cached_lines_added("altered-build2-copied.md", "is CACHED and yet printed its command's output")]
#[case::edited_with_care("altered-build2-edited.md", "exported the same attestation manifest")]
#[case::edited_without_attestations(
    "altered-build2-edited-no-attestations.md",
    "extracted its layers though every step is CACHED"
)]
#[case::build_1_twice("altered-build1-twice.md", "build 2 is build 1's output again")]
fn a_build_2_that_is_no_real_build_earns_nothing_for_the_builds_or_the_cache(#[case] name: &str, #[case] why: &str) {
    let r = graded(name);
    for id in [CheckId::ReportTwoBuilds, CheckId::ReportCacheEvidence] {
        let c = check(&r, id);
        assert_eq!(c.points, 0.0, "{name} {id}: {}", c.seen);
        assert!(
            c.seen.starts_with("✗ the evidence does not hold (") && c.seen.contains(why),
            "{name} {id}: {}",
            c.seen
        );
    }
    let review = r.review.as_deref().unwrap_or_default();
    assert!(review.starts_with("evidence inconsistent: check by hand — ") && review.contains(why), "{name}: {review}");
}

/// A listing of another push proves no manifest; a deletion of another state proves no deletion.
#[rstest]
#[case::listing_of_another_push("altered-manifest-digest.md", CheckId::ReportManifest)]
#[case::listing_of_other_platforms("altered-platforms.md", CheckId::ReportManifest)]
#[case::deletion_of_the_image("altered-deleted-digest.md", CheckId::ReportBonusDeletion)]
fn evidence_of_another_state_earns_nothing_for_what_it_was_to_show(#[case] name: &str, #[case] id: CheckId) {
    let r = graded(name);
    let c = check(&r, id);
    assert_eq!(c.points, 0.0, "{name}: {}", c.seen);
    assert!(r.review.is_some(), "{name}");
    assert!(graded("complete-en.md").review.is_none());
}

/// The flag for the instructor is in every format.
#[test]
fn check_by_hand_is_said_in_every_format() {
    let file = fixture("altered-build2-edited.md");
    for (format, said) in [
        ("human", "CHECK BY HAND: evidence inconsistent"),
        ("md", "> **Check by hand:** evidence inconsistent"),
        ("json", "\"review\": \"evidence inconsistent"),
        ("junit", "name=\"review\" value=\"evidence inconsistent"),
        ("gradescope", "CHECK BY HAND: evidence inconsistent"),
        ("prairielearn", "CHECK BY HAND: evidence inconsistent"),
    ] {
        let o = lab7(&["grade-report", file.to_str().unwrap(), "--format", format]);
        assert_eq!(o.status.code(), Some(1), "{format}");
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains(said), "{format}: {out}");
    }
}

/// Two problems in one section: the docs link written about the first does not count for the
/// second, whose own words give a fix and no link.
#[test]
fn a_link_counts_only_for_the_problem_it_is_written_about() {
    let c = check(&graded("problems-two-one-link.md"), CheckId::ReportProblemsExplained).clone();
    assert!(
        c.seen.contains("docker-driver-multi-platform (line 296): explained, with a docs link and a fix"),
        "{}",
        c.seen
    );
    assert!(
        c.seen.contains("registry-speaks-http (line 324): explained with a fix, but no link to the documentation"),
        "{}",
        c.seen
    );
    assert!(c.points < c.max_points, "{}", c.seen);
}

/// On registry 3.1 (a real session): DELETE by tag answers 202 and empties the tag list, but the
/// manifest still answers by its digest and a plain garbage-collect frees nothing. A tag removed
/// is not a cache deleted; with `--delete-untagged` (bonus-by-tag-registry3.md) it is.
#[test]
fn a_tag_removed_on_registry_3_is_not_a_cache_deleted() {
    let c = check(&graded("bonus-tag-plain-gc-registry3.md"), CheckId::ReportBonusDeletion).clone();
    assert!(c.seen.starts_with("✗ a tag removed is not a cache deleted"), "{}", c.seen);
    assert!(c.points <= c.max_points / 6.0 + 1e-9, "{}: {}", c.points, c.seen);
    let untagged = check(&graded("bonus-by-tag-registry3.md"), CheckId::ReportBonusDeletion).clone();
    assert_eq!(untagged.points, untagged.max_points, "{}", untagged.seen);
}

/// A collected blob still answering 200 (real GC and HEAD transcripts) is a problem met: blamed
/// on "blobs kept forever" and fixed by wiping the storage, it is not explained — link and fix
/// or not; put down to the blob descriptor cache and a restart, it is.
#[rstest]
#[case::wrong_cause("problem-stale-200-wrong.md", 0.0, "not explained: the words given do not name its cause")]
#[case::right_cause("problem-stale-200-right.md", 1.0, "explained, with a docs link and a fix")]
fn a_stale_200_is_explained_only_by_its_cause(#[case] name: &str, #[case] share: f64, #[case] said: &str) {
    let c = check(&graded(name), CheckId::ReportProblemsExplained).clone();
    assert!(c.seen.contains(&format!("collected-blob-still-answers-200 (line 419): {said}")), "{name}: {}", c.seen);
    assert_eq!(c.points, c.max_points * share, "{name}: {}", c.seen);
}
