//! A class as Moodle's "Download all submissions" gives it, graded by one command: each
//! student's project found in whatever they uploaded and built by the lab, each report graded,
//! one row per student. The download is made here from the lab examples and the report
//! fixtures (real sessions), laid out as Moodle lays it out.

use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;

use crate::common;

/// Files under `dir`, as (path relative to `dir`, bytes), `rename` applied to each name.
fn files_of(dir: &Path, prefix: &str, rename: &dyn Fn(&str) -> String) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                let rel = e.path().strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.push((format!("{prefix}{}", rename(&rel)), std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

fn zip_into(zip: &mut zip::ZipWriter<std::fs::File>, entries: &[(String, Vec<u8>)]) {
    for (name, body) in entries {
        zip.start_file(name.as_str(), SimpleFileOptions::default()).unwrap();
        zip.write_all(body).unwrap();
    }
}

fn zip_bytes(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let mut z = zip::ZipWriter::new(tmp.reopen().unwrap());
    zip_into(&mut z, entries);
    z.finish().unwrap();
    std::fs::read(tmp.path()).unwrap()
}

fn tar_gz_bytes(entries: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut t = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
    for (name, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, body.as_slice()).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap()
}

/// Moodle's zip: `<Full Name>_<id>_assignsubmission_file/` per student (Moodle before 4.1: a
/// trailing `_`), holding what each uploaded.
fn moodle_download(to: &Path) {
    let root = common::root();
    let reference = root.join("lab_examples/reference");
    let report = |name: &str| std::fs::read(root.join("tests/fixtures/reports").join(name)).unwrap();
    let keep = |n: &str| n.to_string();
    let mut z = zip::ZipWriter::new(std::fs::File::create(to).unwrap());
    // Dockerfile_multi at the top of a zip, the report as a PDF beside it.
    let jan = "Jan Kowalski_101_assignsubmission_file/";
    zip_into(
        &mut z,
        &[
            (format!("{jan}lab7.zip"), zip_bytes(&files_of(&reference, "", &keep))),
            (format!("{jan}sprawozdanie.pdf"), report("complete-pl.pdf")),
        ],
    );
    // The app one folder down in a tar.gz, named Dockerfile, the report inside the archive.
    let z2 = "Zażółć Gęślą-Jaźń_102_assignsubmission_file/";
    let mut inside = files_of(&reference, "projekt/app/", &|n| n.replace("Dockerfile_multi", "Dockerfile"));
    inside.push(("projekt/raport.md".into(), report("complete-en.md")));
    zip_into(&mut z, &[(format!("{z2}projekt.tar.gz"), tar_gz_bytes(&inside))]);
    // A single-stage Dockerfile, no report; Moodle before 4.1.
    let ewa = "Ewa Lis_103_assignsubmission_file_/";
    zip_into(&mut z, &files_of(&root.join("lab_examples/single-stage"), ewa, &keep));
    // Two multi-stage Dockerfiles (lab7 does not pick one), entries that climb out of the
    // folder, and a report.
    let m = "Mallory Ęwil_104_assignsubmission_file/";
    let mut two = files_of(&reference, "a/", &keep);
    two.extend(files_of(&reference, "b/", &keep));
    two.push(("../../../../tmp/lab7-class-zip-slip".into(), b"owned".to_vec()));
    zip_into(&mut z, &[(format!("{m}m.zip"), zip_bytes(&two)), (format!("{m}report.md"), report("missing-bonus.md"))]);
    z.finish().unwrap();
}

fn records(csv: &Path) -> Vec<csv::StringRecord> {
    csv::Reader::from_path(csv).unwrap().records().map(|r| r.unwrap()).collect()
}

#[test]
fn a_moodle_download_is_graded_one_row_per_student() {
    common::require_docker("a Moodle class");
    let dir = tempfile::tempdir().unwrap();
    let download = dir.path().join("PAwChO-lab7-4242.zip");
    moodle_download(&download);
    let out = dir.path().join("grades.csv");
    // The assignment's grading worksheet, in Moodle's column order; its maximum holds the bonus.
    let worksheet = dir.path().join("worksheet.csv");
    let mut sheet = String::from("Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,Last modified (submission),File submissions,Last modified (grade),Feedback comments\n");
    for (id, name) in [
        (101, "Jan Kowalski"),
        (102, "Zażółć Gęślą-Jaźń"),
        (103, "Ewa Lis"),
        (104, "Mallory Ęwil"),
        (105, "Nobody Handedin"),
    ] {
        // Mallory handed in a day and a bit after the deadline (7 December, 23:59).
        let when = if id == 104 { "Tuesday, 8 December 2026, 11:15 PM" } else { "Monday, 7 December 2026, 9:00 AM" };
        sheet += &format!(
            "Participant {id},{name},s{id}@example.edu,Submitted for grading,,150.00,Yes,\"{when}\",x.zip,-,\n"
        );
    }
    std::fs::write(&worksheet, sheet).unwrap();
    let o = common::lab7(
        &common::root(),
        &[
            "batch",
            download.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--jobs",
            "2",
            "--moodle-worksheet",
            worksheet.to_str().unwrap(),
            "--moodle-full-marks",
            "100",
            "--deadline",
            "2026-12-07 23:59",
            "--late-penalty",
            "10",
        ],
    );
    let said = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "not every student passes: {said}");
    // Each student's archive is theirs to unpack, not refused from the download.
    assert!(!said.contains("refused from the download"), "{said}");
    let header = csv::Reader::from_path(&out).unwrap().headers().unwrap().clone();
    assert_eq!(header.iter().collect::<Vec<_>>(), lab7::gradebook::COLUMNS, "{said}");
    let rows = records(&out);
    let row = |name: &str| rows.iter().find(|r| &r[0] == name).unwrap_or_else(|| panic!("{name}: {rows:?}\n{said}"));
    assert_eq!(rows.len(), 4, "{rows:?}");

    let jan = row("Jan Kowalski");
    assert_eq!((&jan[1], &jan[2], &jan[3], &jan[7]), ("101", "pass", "100.00", "150.00"), "{jan:?}\n{said}");
    assert!(jan[8].contains("lab7.zip sha256:"), "the archive graded, by digest: {jan:?}");
    assert!(jan[9].contains("project lab7/Dockerfile_multi; report sprawozdanie.pdf"), "{jan:?}");

    let z = row("Zażółć Gęślą-Jaźń");
    assert_eq!((&z[2], &z[7]), ("pass", "150.00"), "{z:?}\n{said}");
    assert!(z[9].contains("project projekt/projekt/app/Dockerfile;"), "{z:?}");

    let ewa = row("Ewa Lis");
    assert_eq!(&ewa[2], "fail", "{ewa:?}");
    assert!(ewa[9].contains("(its only Dockerfile has a single stage)") && ewa[9].ends_with("no report"), "{ewa:?}");
    assert!(ewa[13].contains("no report found"), "{ewa:?}");
    assert_eq!(&ewa[7], "40.00", "half of the project's 80 %, no report: {ewa:?}");

    let m = row("Mallory Ęwil");
    assert_eq!(&m[2], "not graded", "{m:?}");
    assert!(m[9].contains("ambiguous: m/a/Dockerfile_multi, m/b/Dockerfile_multi"), "{m:?}");
    assert!(m[11].contains("../../../../tmp/lab7-class-zip-slip: would be written outside"), "{m:?}");
    assert!(!Path::new("/tmp/lab7-class-zip-slip").exists());
    assert_eq!((&m[4], &m[6]), ("100", "0"), "the report still graded: {m:?}");
    assert_eq!(&m[7], "40.00", "50 %, less 10 for the one started day late: {m:?}");
    assert!(m[13].contains("late: handed in 2026-12-08 23:15, 1 started day(s) after the deadline: −10 %"), "{m:?}");

    // The projects' and reports' own results and reports, beside the class's CSV.
    assert!(dir.path().join("grades-project.csv").exists() && dir.path().join("grades-report.csv").exists());
    assert!(dir.path().join("grades-project-reports/p101.md").exists());
    assert!(dir.path().join("grades-report-reports/p101.md").exists());
    let summary = std::fs::read_to_string(dir.path().join("grades.md")).unwrap();
    assert!(summary.contains("| Jan Kowalski | 100 % |"), "{summary}");
    // The reports of Jan, Zażółć and Mallory all paste one real session: shared evidence, listed
    // for the instructor, no points taken (Jan's report still earns 150 %).
    assert!(summary.contains("**3 students** show the output of one run"), "{summary}");
    assert!(
        summary.contains("  - Jan Kowalski, page ") && summary.contains("  - Zażółć Gęślą-Jaźń, line "),
        "{summary}"
    );
    assert!(summary.contains("no points taken"), "{summary}");
    assert!(
        summary.contains(
            "the same Dockerfile (comments and spacing aside)\n\n- 2 students: Jan Kowalski, Zażółć Gęślą-Jaźń\n"
        ),
        "{summary}"
    );

    // The class's page (grades.html): a row per student linking to their project's and report's
    // pages, and the three pairs of that group with the lines the digests stand in.
    #[cfg(feature = "browser-tests")]
    {
        let page = common::browser::open(&dir.path().join("grades.html"), "class");
        page.assert_self_contained_and_described();
        let students = page.all("tr.student");
        assert_eq!(students.len(), rows.len(), "{}", page.text());
        let links = page.all("tr.student a");
        assert!(links.len() >= rows.len(), "{}", page.text());
        for a in &links {
            let href = a.value().attr("href").unwrap();
            assert!(dir.path().join(href).is_file(), "{href} is not there");
        }
        let jan: String =
            students.iter().find(|r| r.text().any(|t| t.contains("Jan Kowalski"))).unwrap().text().collect();
        assert!(jan.contains("project") && jan.contains("report") && jan.contains("150 %"), "{jan}");
        let pairs = page.all("tr.shared-pair");
        assert_eq!(pairs.len(), 3, "{}", page.text());
        let all: String = pairs.iter().flat_map(|p| p.text()).collect();
        for name in ["Jan Kowalski — ", "Zażółć Gęślą-Jaźń", "Mallory Ęwil", "exporting manifest list sha256:"]
        {
            assert!(all.contains(name), "{name}: {all}");
        }
        assert!(page.all("meta[http-equiv=refresh]").is_empty());
        let reports = common::browser::open(&dir.path().join("grades-report.html"), "class-reports");
        assert_eq!(reports.all("tr.shared-pair").len(), 3);
    }

    // Back into Moodle: the worksheet filled for upload, the feedback files zipped by folder.
    let filled = records(&dir.path().join("grades-moodle-worksheet.csv"));
    let sheet_row = |id: &str| filled.iter().find(|r| &r[0] == id).unwrap().clone();
    assert_eq!(&sheet_row("Participant 101")[4], "150.00", "{filled:?}");
    assert_eq!(&sheet_row("Participant 103")[4], "40.00", "{filled:?}");
    assert!(sheet_row("Participant 101")[10].starts_with("lab7: total 150.00 %"), "{filled:?}");
    assert!(sheet_row("Participant 101")[9].ends_with(" UTC"), "when lab7 graded: {filled:?}");
    assert_eq!(&sheet_row("Participant 105")[4], "", "a student lab7 did not grade is left as Moodle had it");
    assert_eq!(&sheet_row("Participant 105")[9], "-");
    let mut zip =
        zip::ZipArchive::new(std::fs::File::open(dir.path().join("grades-moodle-feedback.zip")).unwrap()).unwrap();
    let mut names: Vec<String> = zip.file_names().map(str::to_string).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "Ewa Lis_103_assignsubmission_file_/lab7-feedback.md",
            "Jan Kowalski_101_assignsubmission_file/lab7-feedback.md",
            "Mallory Ęwil_104_assignsubmission_file/lab7-feedback.md",
            "Zażółć Gęślą-Jaźń_102_assignsubmission_file/lab7-feedback.md",
        ]
    );
    let mut jan = String::new();
    std::io::Read::read_to_string(
        &mut zip.by_name("Jan Kowalski_101_assignsubmission_file/lab7-feedback.md").unwrap(),
        &mut jan,
    )
    .unwrap();
    assert!(
        jan.starts_with("# lab7 feedback: Jan Kowalski")
            && jan.contains("## The project, built by the lab")
            && jan.contains("## The report"),
        "{jan}"
    );

    // A regrade with the instructor's word: kept in the row, the feedback, and what changed said.
    let jan_report = std::fs::read(dir.path().join("grades-project-reports/p101.json")).unwrap();
    let projects_before = records(&dir.path().join("grades-project.csv"));
    let overrides = dir.path().join("overrides.csv");
    std::fs::write(
        &overrides,
        "student,what,points,reason\n103,project,70,the build fails on a mirror outage; checked by hand\n",
    )
    .unwrap();
    let again = common::lab7(
        &common::root(),
        &[
            "batch",
            download.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--overrides",
            overrides.to_str().unwrap(),
        ],
    );
    let said_again = common::text(&again);
    // Nothing of the projects changed: their reports are the first run's, not built again.
    assert!(said_again.contains("3 unchanged since the last run (files, lab7 and settings)"), "{said_again}");
    assert!(said_again.contains("(--rebuild builds them): p101, p102, p103"), "{said_again}");
    assert!(!said_again.contains("submission 1/"), "a project was built again: {said_again}");
    assert_eq!(std::fs::read(dir.path().join("grades-project-reports/p101.json")).unwrap(), jan_report);
    // Their rows are the first run's, with the time their grading took then.
    let without_seconds = |rows: Vec<csv::StringRecord>| {
        let mut rows: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().enumerate().filter(|(i, _)| *i != 8).map(|(_, f)| f.into()).collect())
            .collect();
        rows.sort();
        rows
    };
    let projects_after = records(&dir.path().join("grades-project.csv"));
    assert!(projects_after.iter().all(|r| r[8].parse::<f64>().unwrap() > 0.0), "{projects_after:?}");
    assert_eq!(without_seconds(projects_after), without_seconds(projects_before));
    assert!(said_again.contains("changed since the last run: Ewa Lis: 40.00 % → 35.00 %"), "{said_again}");
    assert!(!said_again.contains("changed since the last run: Jan"), "{said_again}");
    let ewa = records(&out).into_iter().find(|r| &r[0] == "Ewa Lis").unwrap();
    assert_eq!(&ewa[3], "70.00", "{ewa:?}");
    assert!(ewa[13].contains("project set to 70 by the instructor: the build fails on a mirror outage"), "{ewa:?}");
    // Without a worksheet this time: the grades keyed by participant, for Moodle's gradebook.
    let plain = records(&dir.path().join("grades-moodle-grades.csv"));
    let ewa = plain.iter().find(|r| &r[0] == "103").unwrap();
    assert_eq!((&ewa[1], &ewa[2]), ("Ewa Lis", "35.00"), "{plain:?}");
    assert!(ewa[3].starts_with("lab7: total 35.00 % (project 70 %"), "the override in the comment: {plain:?}");
}
