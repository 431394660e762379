//! The class's rows: shared evidence between students' reports (real reports from two real
//! sessions), and the total's arithmetic. No Docker.

use std::path::{Path, PathBuf};

use lab7::batch::SubmissionResult;
use lab7::gradebook::{self, Row};
use lab7::handin::HandIn;
use lab7::intake::{Project, Student};

fn student(name: &str) -> Student {
    Student {
        name: name.into(),
        key: name.to_lowercase(),
        participant: None,
        download_folders: Vec::new(),
        files: PathBuf::from("/nowhere"),
        project: Project::Missing,
        report: None,
        archives: Vec::new(),
        links: Vec::new(),
        refused: Vec::new(),
    }
}

/// A row whose report is the fixture `report`, graded as `batch` grades it.
fn row(name: &str, report: &str) -> Row {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports").join(report);
    let h = HandIn::read(&path).unwrap();
    let r = h.grade(report, &lab7::checks::Rubric::default_report_rubric());
    let mut result = SubmissionResult::named(name.to_lowercase());
    result.points = r.score.points;
    result.max_points = r.score.max_points;
    result.bonus_points = r.score.bonus_points;
    result.produced = h.produced_digests();
    result.checks = r.checks.clone();
    result.prose = h.prose_shingles();
    Row { student: student(name), project: None, report: Some(result), overrides: Vec::new(), late: None }
}

#[test]
fn two_reports_of_one_session_are_shared_evidence_and_two_sessions_are_not() {
    // complete-en.md and pieces-pl.md paste the same session (session/); bonus-untagged-session.md
    // another (session-untagged/).
    let rows = [row("Ada", "complete-en.md"), row("Bob", "pieces-pl.md"), row("Cyd", "bonus-untagged-session.md")];
    let pairs = gradebook::shared_evidence(&rows);
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!(pairs[0].students, ("Ada".to_string(), "Bob".to_string()));
    assert!(pairs[0].digests.len() >= 5, "index, platform manifests, cache manifests: {:?}", pairs[0].digests);
    let md = gradebook::shared_evidence_markdown(&rows, &pairs);
    assert!(md.contains("**2 students** show the output of one run") && md.contains("no points taken"), "{md}");
    assert!(md.contains("  - Ada, line ") && md.contains("  - Bob, line "), "each with where the digest stands: {md}");
    assert!(
        gradebook::shared_evidence_markdown(&rows, &[]).contains("no digest of a run appears in two students' reports")
    );
}

#[test]
fn base_image_digests_every_student_pulls_are_no_evidence() {
    let h = HandIn::read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports/complete-en.md")).unwrap();
    let produced: Vec<String> = h.produced_digests().iter().map(|(d, _)| d.to_string()).collect();
    let busybox = "sha256:19966f244811014875a03bf881892062f997bd6dae9df2955533e976f2fa4c7a";
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/reports/complete-en.md"))
            .unwrap();
    assert!(text.contains(busybox), "the fixture pulls busybox by this digest");
    assert!(!produced.contains(&busybox.to_string()), "{produced:?}");
}

#[test]
fn the_total_is_half_project_half_report_plus_the_reports_bonus() {
    let mut r = row("Ada", "complete-en.md");
    assert_eq!(r.total_percent(), 100.0, "no project graded: half of 100 %, plus the bonus of 50 %");
    let mut project = SubmissionResult::named("ada".into());
    project.points = 80.0;
    project.max_points = 100.0;
    project.bonus_points = 50.0;
    r.project = Some(project);
    assert_eq!(r.total_percent(), 140.0, "the project's own bonus (lab7's deletion) is not the student's");
}

#[test]
fn the_instructors_overrides_are_applied_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("overrides.csv");
    std::fs::write(&file, "student,what,points,reason\nada,bonus,25,\"the deletion was shown in class, not in the report\"\nAda,total,120,rounded by the board\n").unwrap();
    let overrides = gradebook::read_overrides(&file).unwrap();
    let mut r = row("Ada", "complete-en.md");
    assert!(overrides.iter().all(|o| o.names(&r.student)), "by lab7's key and by name, in any case");
    r.overrides = overrides;
    assert_eq!(r.bonus_points(), Some(25.0));
    assert_eq!(r.total_percent(), 120.0, "a total set by the instructor is the total");
    assert_eq!(
        r.summary(),
        "total 120.00 % (project 0 %, report 100/100, bonus 25)",
        "the comment and feedback say it too"
    );
    let said = r.attention();
    assert!(
        said.contains("bonus set to 25 by the instructor: the deletion was shown in class, not in the report"),
        "{said}"
    );
    assert!(said.contains("total set to 120 by the instructor: rounded by the board"), "{said}");
}

#[test]
fn a_bad_overrides_line_is_named_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("overrides.csv");
    for (body, said) in [
        ("student,what,points,reason\nada,grade,10,x\n", "line 2: `grade` is not what an override sets"),
        ("student,what,points,reason\nada,total,ten,x\n", "line 2: points `ten`"),
        ("student,what,points,reason\nada,total,10\n", "line 2: a student, what, points and a reason are all needed"),
    ] {
        std::fs::write(&file, body).unwrap();
        let e = gradebook::read_overrides(&file).unwrap_err().to_string();
        assert!(e.contains(said) && e.contains("fix:"), "{e}");
    }
}

#[test]
fn one_checks_points_set_by_the_instructor_count_in_its_part() {
    // unpruned.md loses 10 of its cache evidence's 30 points: the instructor saw the prune in
    // the student's screenshots.
    let mut r = row("Ada", "unpruned.md");
    assert_eq!(r.report_points(), Some(90.0));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("overrides.csv");
    std::fs::write(&file, "student,what,points,reason\nAda,report_cache_evidence,30,prune shown in a screenshot\n")
        .unwrap();
    r.overrides = gradebook::read_overrides(&file).unwrap();
    assert_eq!(r.report_points(), Some(100.0));
    assert_eq!(r.bonus_points(), Some(50.0), "the bonus is its own part");
    assert!(r.attention().contains("report_cache_evidence set to 30 by the instructor: prune shown in a screenshot"));
}

#[test]
fn a_report_rubric_may_hold_the_class_deadline_and_penalty() {
    let with = format!(
        "{}\n[late]\ndeadline = \"2026-12-07 23:59\"\npercent_per_started_day = 10\n",
        lab7::checks::DEFAULT_REPORT_RUBRIC
    );
    let r = lab7::checks::Rubric::parse(&with, "test").unwrap();
    let late = r.late.unwrap();
    assert_eq!((late.percent_per_started_day, late.max_percent), (10.0, 100.0));
    let bad = with.replace("2026-12-07 23:59", "7.12.2026");
    let e = lab7::checks::Rubric::parse(&bad, "test").unwrap_err().to_string();
    assert!(e.contains("[late] deadline") && e.contains("fix:"), "{e}");
}

#[test]
fn reports_in_the_same_words_are_a_weaker_signal_and_translations_are_not() {
    // complete-en.md and unpruned.md: one student's prose, one section less; complete-pl.md the
    // same report in Polish.
    let rows = [row("Ada", "complete-en.md"), row("Bob", "unpruned.md"), row("Cyd", "complete-pl.md")];
    let pairs = gradebook::similar_prose(&rows);
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!((pairs[0].0.as_str(), pairs[0].1.as_str()), ("Ada", "Bob"));
    assert!(pairs[0].2 > 0.8, "{pairs:?}");
    let md = gradebook::similar_prose_markdown(&pairs);
    assert!(md.contains("- Ada and Bob: ") && md.contains("% of their five-word runs in common"), "{md}");
}

#[test]
fn two_students_of_one_name_are_told_apart_in_shared_evidence() {
    // The second Jan Kowalski's report shares a run with Ada's; the first's does not.
    let rows = [
        row("Jan Kowalski", "bonus-untagged-session.md"),
        row("Jan Kowalski", "complete-en.md"),
        row("Ada", "pieces-pl.md"),
    ];
    let pairs = gradebook::shared_evidence(&rows);
    assert_eq!(pairs.iter().map(|p| p.rows).collect::<Vec<_>>(), [(1, 2)]);
    let md = gradebook::shared_evidence_markdown(&rows, &pairs);
    assert!(md.contains("**2 students**") && md.contains("  - Jan Kowalski, line "), "the right Jan's line: {md}");
}
