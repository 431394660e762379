#![cfg(unix)]
//! A class as Moodle's "Download all submissions" gives it, and hostile hand-ins: each
//! archive is made here the way a student's zip or tar tool (or an attacker) would write it,
//! then read by `lab7::intake`. No Docker.

use std::io::Write;
use std::path::{Path, PathBuf};

use lab7::intake::{self, IntakeOptions, Layout, Limits, Project, Why};
use zip::write::SimpleFileOptions;

const MULTI: &str = "FROM busybox:1.36 AS build1\nRUN echo hi > /x\nFROM busybox:1.36\nCOPY --from=build1 /x /x\n";
const SINGLE: &str = "FROM busybox:1.36\nCOPY . /app\n";

/// A zip of (name, content) entries.
fn zip_of(path: &Path, entries: &[(&str, &[u8])]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, body) in entries {
        z.start_file(*name, SimpleFileOptions::default()).unwrap();
        z.write_all(body).unwrap();
    }
    z.finish().unwrap();
}

fn tar_gz_of(path: &Path, entries: &[(&str, &[u8])]) {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    for (name, body) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_size(body.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        t.append_data(&mut h, name, *body).unwrap();
    }
    t.into_inner().unwrap().finish().unwrap();
}

fn folder(root: &Path, name: &str) -> PathBuf {
    let d = root.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Moodle's download, unpacked: one folder per student and plugin, every layout a class has.
fn moodle_class(root: &Path) {
    // Dockerfile_multi at the top of a zip, a PDF report beside it.
    let a = folder(root, "Jan Kowalski_101_assignsubmission_file");
    zip_of(&a.join("lab7.zip"), &[("Dockerfile_multi", MULTI.as_bytes()), ("src/app.sh", b"echo\n")]);
    std::fs::write(a.join("sprawozdanie.pdf"), b"%PDF-1.4 stand-in").unwrap();
    // The app one folder down in a tar.gz, named Dockerfile; the report inside the archive.
    let b = folder(root, "Zażółć Gęślą_102_assignsubmission_file");
    tar_gz_of(
        &b.join("projekt.tar.gz"),
        &[
            ("projekt/app/Dockerfile", MULTI.as_bytes()),
            ("projekt/raport.md", b"# Raport\n"),
            ("projekt/app/README.md", b"readme"),
        ],
    );
    // lab7/Dockerfile with a .git folder in the zip (never used by git), and an online text
    // with the repository's link, Moodle before 4.1 (trailing underscore).
    let c = folder(root, "Anna Nowak_103_assignsubmission_file_");
    zip_of(
        &c.join("anna.zip"),
        &[
            ("lab7/Dockerfile", MULTI.as_bytes()),
            ("lab7/.git/config", b"[core]\n\thooksPath = /tmp/evil\n"),
            ("report.docx", b"PK stand-in"),
        ],
    );
    let c2 = folder(root, "Anna Nowak_103_assignsubmission_onlinetext_");
    std::fs::write(
        c2.join("onlinetext.html"),
        "<p>Repo: <a href=\"https://git.example.edu/anna/lab7.git\">https://git.example.edu/anna/lab7.git</a></p>",
    )
    .unwrap();
    // Two multi-stage Dockerfiles: lab7 does not guess.
    let d = folder(root, "Piotr Wiśniewski_104_assignsubmission_file");
    zip_of(&d.join("p.zip"), &[("a/Dockerfile", MULTI.as_bytes()), ("b/Dockerfile_multi", MULTI.as_bytes())]);
    // Only a single-stage Dockerfile, no report.
    let e = folder(root, "Ewa Lis_105_assignsubmission_file");
    std::fs::write(e.join("Dockerfile"), SINGLE).unwrap();
}

fn read(input: &Path, limits: Limits) -> (intake::Class, tempfile::TempDir) {
    let work = tempfile::tempdir().unwrap();
    let class = intake::read_class(
        input,
        &work.path().join("w"),
        &IntakeOptions { dockerfile: None, limits, skip: Vec::new() },
    )
    .unwrap();
    (class, work)
}

fn student(c: &intake::Class, participant: u64) -> &intake::Student {
    c.students.iter().find(|s| s.participant == Some(participant)).unwrap()
}

fn dockerfile_of(s: &intake::Student) -> String {
    match &s.project {
        Project::Found { context, dockerfile, .. } => {
            context.join(dockerfile).strip_prefix(&s.files).unwrap().display().to_string()
        }
        other => panic!("{}: {other:?}", s.name),
    }
}

#[test]
fn a_moodle_download_gives_one_student_each_with_project_and_report_found() {
    let dl = tempfile::tempdir().unwrap();
    moodle_class(dl.path());
    let (class, _w) = read(dl.path(), Limits::default());
    assert_eq!(class.layout, Layout::MoodleFolder);
    assert_eq!(class.students.len(), 5, "{:?}", class.students.iter().map(|s| &s.name).collect::<Vec<_>>());

    let jan = student(&class, 101);
    assert_eq!(jan.name, "Jan Kowalski");
    assert_eq!(dockerfile_of(jan), "lab7/Dockerfile_multi");
    assert!(jan.report.as_ref().unwrap().ends_with("sprawozdanie.pdf"));
    assert_eq!(jan.archives.len(), 1);
    assert!(jan.archives[0].1.starts_with("sha256:") && jan.archives[0].0.ends_with("/lab7.zip"), "{:?}", jan.archives);

    let z = student(&class, 102);
    assert_eq!(z.name, "Zażółć Gęślą");
    assert_eq!(dockerfile_of(z), "projekt/projekt/app/Dockerfile");
    assert!(z.report.as_ref().unwrap().ends_with("raport.md"), "{:?}", z.report);

    let anna = student(&class, 103);
    assert_eq!(anna.download_folders.len(), 2, "the file and the online-text folder are one student");
    assert_eq!(dockerfile_of(anna), "anna/lab7/Dockerfile");
    assert_eq!(anna.links, ["https://git.example.edu/anna/lab7.git"]);
    assert!(anna.report.as_ref().unwrap().ends_with("report.docx"));

    match &student(&class, 104).project {
        Project::Ambiguous(all) => assert_eq!(all.len(), 2),
        other => panic!("{other:?}"),
    }
    assert!(student(&class, 104).found().contains("ambiguous: p/a/Dockerfile, p/b/Dockerfile_multi"));

    let ewa = student(&class, 105);
    assert!(ewa.found().contains("Dockerfile (its only Dockerfile has a single stage)"), "{}", ewa.found());
    assert!(ewa.found().ends_with("no report"));
}

#[test]
fn the_download_zip_itself_is_read_as_its_folder_is() {
    let dl = tempfile::tempdir().unwrap();
    moodle_class(&dl.path().join("unpacked"));
    // Moodle's zip: its folders at the top.
    let zip = dl.path().join("DOCKER-lab7-1234.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    for e in walk(&dl.path().join("unpacked")) {
        let name = e.strip_prefix(dl.path().join("unpacked")).unwrap().to_string_lossy().into_owned();
        z.start_file(name, SimpleFileOptions::default()).unwrap();
        z.write_all(&std::fs::read(&e).unwrap()).unwrap();
    }
    z.finish().unwrap();
    let (class, _w) = read(&zip, Limits::default());
    assert_eq!(class.layout, Layout::MoodleZip);
    assert_eq!(class.students.len(), 5);
    assert_eq!(dockerfile_of(student(&class, 101)), "lab7/Dockerfile_multi");
    // The students' own archives in the download are theirs to unpack: nothing refused.
    assert!(class.refused.is_empty(), "{:?}", class.refused);
    assert!(class.students.iter().all(|s| s.refused.is_empty()), "{:?}", class.students);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out.sort();
    out
}

/// One student's folder holding `archive`, read with `limits`; that student.
fn hostile(make: impl FnOnce(&Path), limits: Limits) -> (intake::Student, tempfile::TempDir, tempfile::TempDir) {
    let dl = tempfile::tempdir().unwrap();
    let s = folder(dl.path(), "Mallory_666_assignsubmission_file");
    make(&s);
    let work = tempfile::tempdir().unwrap();
    let class = intake::read_class(
        dl.path(),
        &work.path().join("w"),
        &IntakeOptions { dockerfile: None, limits, skip: Vec::new() },
    )
    .unwrap();
    (class.students.into_iter().next().unwrap(), dl, work)
}

fn whys(s: &intake::Student) -> Vec<Why> {
    s.refused.iter().map(|r| r.why).collect()
}

#[test]
fn zip_slip_absolute_and_drive_paths_are_refused_by_name() {
    let (s, _dl, work) = hostile(
        |d| {
            zip_of(
                &d.join("x.zip"),
                &[
                    ("../../../../tmp/lab7-zip-slip", b"owned"),
                    ("/tmp/lab7-absolute", b"owned"),
                    ("C:\\Windows\\evil.txt", b"owned"),
                    ("ok/Dockerfile", MULTI.as_bytes()),
                ],
            )
        },
        Limits::default(),
    );
    assert_eq!(whys(&s), [Why::OutsideTheFolder; 3], "{:?}", s.refused);
    assert!(
        s.refused[0].to_string().contains("../../../../tmp/lab7-zip-slip: would be written outside"),
        "{}",
        s.refused[0]
    );
    assert!(!Path::new("/tmp/lab7-zip-slip").exists() && !Path::new("/tmp/lab7-absolute").exists());
    assert!(!work.path().join("lab7-zip-slip").exists());
    assert_eq!(dockerfile_of(&s), "x/ok/Dockerfile", "the rest is still unpacked");
}

#[test]
fn a_symlink_to_etc_and_device_files_are_not_unpacked() {
    let (s, _dl, _w) = hostile(
        |d| {
            let mut z = zip::ZipWriter::new(std::fs::File::create(d.join("links.zip")).unwrap());
            z.add_symlink("etc", "/etc", SimpleFileOptions::default()).unwrap();
            z.add_symlink("passwd", "../../../../etc/passwd", SimpleFileOptions::default()).unwrap();
            z.finish().unwrap();
            let mut t = tar::Builder::new(std::fs::File::create(d.join("dev.tar")).unwrap());
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Char);
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
            h.set_size(0);
            h.set_cksum();
            t.append_data(&mut h, "null", std::io::empty()).unwrap();
            let mut l = tar::Header::new_gnu();
            l.set_entry_type(tar::EntryType::Link);
            l.set_size(0);
            t.append_link(&mut l, "shadow", "/etc/shadow").unwrap();
            t.finish().unwrap();
        },
        Limits::default(),
    );
    let mut w = whys(&s);
    w.sort_by_key(|w| format!("{w:?}"));
    assert_eq!(w, [Why::Link, Why::Link, Why::Link, Why::SpecialFile], "{:?}", s.refused);
    for name in ["links/etc", "links/passwd", "dev/null", "dev/shadow"] {
        assert!(std::fs::symlink_metadata(s.files.join(name)).is_err(), "{name} was written");
    }
}

#[test]
fn a_zip_bomb_stops_at_the_limit_whatever_its_headers_say() {
    let limits = Limits { entry_bytes: 1 << 20, total_bytes: 4 << 20, ..Limits::default() };
    let (s, _dl, _w) = hostile(
        |d| {
            // 64 MiB of zeros: a few dozen KiB compressed.
            let mut z = zip::ZipWriter::new(std::fs::File::create(d.join("bomb.zip")).unwrap());
            let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
            z.start_file("zeros", opts).unwrap();
            let mb = vec![0u8; 1 << 20];
            for _ in 0..64 {
                z.write_all(&mb).unwrap();
            }
            z.finish().unwrap();
        },
        limits,
    );
    assert!(std::fs::metadata(s.files.join("bomb.zip")).unwrap().len() < 1 << 20);
    assert_eq!(whys(&s), [Why::EntryTooBig], "{:?}", s.refused);
    assert!(!s.files.join("bomb/zeros").exists(), "a cut-off entry is removed, not left half-written");
}

#[test]
fn ten_thousand_entries_stop_at_the_entry_limit() {
    let (s, _dl, _w) = hostile(
        |d| {
            // Through a buffer: the writer puts each header field with a call of its own.
            let file = std::io::BufWriter::new(std::fs::File::create(d.join("many.zip")).unwrap());
            let mut z = zip::ZipWriter::new(file);
            // Stored: ten thousand empty entries, each deflated, spent a second and a half of
            // this test zeroing a compressor's buffers per entry before lab7 read one.
            let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            for i in 0..10_000 {
                z.start_file(format!("f/{i}"), stored).unwrap();
            }
            z.finish().unwrap();
        },
        Limits::default(),
    );
    let too_much = s.refused.iter().filter(|r| r.why == Why::TooMuch).count();
    // The hand-in's own zip is one entry of the student's allowance.
    assert_eq!(too_much, 10_000 - (Limits::default().entries - 1), "{}", too_much);
}

#[test]
fn nested_archives_stop_at_the_depth_limit() {
    let (s, _dl, _w) = hostile(
        |d| {
            // d.zip ⊃ c.zip ⊃ b.zip ⊃ a.zip: a loop of archives unpacks no deeper than the limit.
            let tmp = tempfile::tempdir().unwrap();
            zip_of(&tmp.path().join("a.zip"), &[("Dockerfile", MULTI.as_bytes())]);
            for (outer, inner) in [("b.zip", "a.zip"), ("c.zip", "b.zip"), ("d.zip", "c.zip")] {
                let body = std::fs::read(tmp.path().join(inner)).unwrap();
                zip_of(&tmp.path().join(outer), &[(inner, &body)]);
            }
            std::fs::copy(tmp.path().join("d.zip"), d.join("d.zip")).unwrap();
        },
        Limits::default(),
    );
    assert_eq!(whys(&s), [Why::TooDeep], "{:?}", s.refused);
    assert!(s.files.join("d/c/b.zip").exists() && !s.files.join("d/c/b").exists());
    assert!(s.refused[0].archive.ends_with("d.zip/c.zip/b.zip"), "{}", s.refused[0]);
}

#[test]
fn a_link_in_an_unpacked_download_is_not_followed() {
    let (s, _dl, _w) = hostile(
        |d| {
            std::fs::write(d.join("Dockerfile"), MULTI).unwrap();
            std::os::unix::fs::symlink("/etc", d.join("etc")).unwrap();
        },
        Limits::default(),
    );
    assert_eq!(whys(&s), [Why::Link], "{:?}", s.refused);
    assert!(std::fs::symlink_metadata(s.files.join("etc")).is_err());
}

#[test]
fn what_is_not_a_class_is_said_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let not_zip = dir.path().join("class.7z");
    std::fs::write(&not_zip, b"7z").unwrap();
    let e = intake::read_class(&not_zip, &dir.path().join("w"), &IntakeOptions::default()).unwrap_err().to_string();
    assert!(e.contains("not a zip") && e.contains("fix:"), "{e}");
    let empty = folder(dir.path(), "empty");
    let e = intake::read_class(&empty, &dir.path().join("w2"), &IntakeOptions::default()).unwrap_err().to_string();
    assert!(e.contains("no folders, so no students"), "{e}");
}

#[test]
fn what_the_download_itself_refuses_is_named_in_that_students_row() {
    let dl = tempfile::tempdir().unwrap();
    let zip = dl.path().join("class.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip).unwrap());
    let opts = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    z.start_file("Jan Kowalski_101_assignsubmission_file/Dockerfile", opts).unwrap();
    z.write_all(MULTI.as_bytes()).unwrap();
    // A file past the per-file limit inside the download itself.
    z.start_file("Jan Kowalski_101_assignsubmission_file/huge.iso", opts).unwrap();
    z.write_all(&vec![0u8; 3 << 20]).unwrap();
    z.finish().unwrap();
    let limits = Limits { entry_bytes: 1 << 20, ..Limits::default() };
    let (class, _w) = read(&zip, limits);
    assert!(class.refused.is_empty(), "{:?}", class.refused);
    let jan = student(&class, 101);
    assert_eq!(whys(jan), [Why::EntryTooBig], "{:?}", jan.refused);
    assert!(jan.refused[0].entry.ends_with("huge.iso"));
}
