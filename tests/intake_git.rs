#![cfg(unix)]
//! A class as a roster of repositories: each cloned by lab7 with nothing of the student's or
//! of this machine's git setup run — the grader's own global config here defines a hook
//! directory, a template directory and a filter driver that would each leave a marker file;
//! the student's repository has a submodule and asks for that filter. The handed-in commit is
//! what is graded and recorded. Its own test binary: it sets HOME for the whole process.
//! No Docker.

use std::path::Path;
use std::process::Command;

use lab7::intake::{self, IntakeOptions, Layout, Project, Why};

const MULTI: &str = "FROM busybox:1.36 AS build1\nRUN echo hi > /x\nFROM busybox:1.36\nCOPY --from=build1 /x /x\n";

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Student", "-c", "user.email=s@example.edu", "-c", "protocol.file.allow=always"])
        .args(args)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

#[test]
fn a_roster_is_cloned_without_running_anything_and_the_handed_in_commit_is_graded() {
    let root = tempfile::tempdir().unwrap();
    let marker = root.path().join("ran");
    // This machine's git setup: a global hooks path, template hooks and a filter driver, each
    // of which would write the marker.
    let home = root.path().join("home");
    let hooks = root.path().join("hooks");
    std::fs::create_dir_all(hooks.join("hooks")).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    for h in ["post-checkout", "post-merge", "post-clone"] {
        let f = hooks.join(h);
        std::fs::write(&f, format!("#!/bin/sh\ntouch {}\n", marker.display())).unwrap();
        std::fs::copy(&f, hooks.join("hooks").join(h)).unwrap();
        Command::new("chmod").args(["+x"]).arg(&f).arg(hooks.join("hooks").join(h)).status().unwrap();
    }
    std::fs::write(
        home.join(".gitconfig"),
        format!(
            "[core]\n\thooksPath = {h}\n[init]\n\ttemplateDir = {h}\n[filter \"evil\"]\n\tsmudge = sh -c 'touch {m}; cat'\n\tclean = cat\n",
            h = hooks.display(),
            m = marker.display()
        ),
    )
    .unwrap();
    // SAFETY of the test: this binary holds this one test, so no other thread reads HOME.
    std::env::set_var("HOME", &home);

    // The student's repository: the app, the report, a submodule, a file for the filter.
    let lib = root.path().join("lib");
    std::fs::create_dir_all(&lib).unwrap();
    git(&lib, &["init", "-q"]);
    std::fs::write(lib.join("x"), "x").unwrap();
    git(&lib, &["add", "."]);
    git(&lib, &["commit", "-qm", "lib"]);
    let repo = root.path().join("student");
    std::fs::create_dir_all(repo.join("app")).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("app/Dockerfile_multi"), MULTI).unwrap();
    std::fs::write(repo.join("sprawozdanie.md"), "# Sprawozdanie\n").unwrap();
    std::fs::write(repo.join(".gitattributes"), "*.txt filter=evil\n").unwrap();
    std::fs::write(repo.join("notes.txt"), "notes\n").unwrap();
    git(&repo, &["submodule", "add", "-q", lib.to_str().unwrap(), "vendor/lib"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "the lab"]);
    let handed_in = git(&repo, &["rev-parse", "HEAD"]);
    // A commit after the deadline: the roster names the one handed in.
    std::fs::write(repo.join("app/Dockerfile_multi"), "FROM busybox:1.36\n").unwrap();
    git(&repo, &["commit", "-qam", "late"]);
    // The traps are armed: the setup's own git (with this machine's config) sprang them.
    assert!(marker.exists(), "the grader's hooks and filter run for a plain git on this machine");
    std::fs::remove_file(&marker).unwrap();

    let roster = root.path().join("roster.csv");
    let url = format!("file://{}", repo.display());
    std::fs::write(
        &roster,
        format!(
            "name,url,sha\nAda Lovelace,{url},{handed_in}\nBob Head,{url}\nCyd Missing,file:///nonexistent/repo.git\n"
        ),
    )
    .unwrap();
    let work = root.path().join("work");
    let class = intake::read_class(&roster, &work, &IntakeOptions::default()).unwrap();
    assert_eq!(class.layout, Layout::Roster);
    assert!(!marker.exists(), "a hook, template or filter of the grader's git config ran");

    let ada = &class.students[0];
    assert_eq!(ada.name, "Ada Lovelace");
    assert_eq!(ada.archives.len(), 1, "{:?}", ada.refused);
    assert!(ada.archives[0].1.starts_with(&format!("commit {handed_in} fetched ")), "{:?}", ada.archives);
    match &ada.project {
        Project::Found { dockerfile, note: None, .. } => assert_eq!(dockerfile, "Dockerfile_multi"),
        other => panic!("the handed-in commit has the multi-stage Dockerfile: {other:?}"),
    }
    assert!(ada.report.as_ref().unwrap().ends_with("sprawozdanie.md"));
    assert!(!ada.files.join(".git").exists(), "git's folder is not graded");
    let sub = std::fs::read_dir(ada.files.join("vendor/lib")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(sub, 0, "the submodule is not fetched");

    let bob = &class.students[1];
    assert!(
        matches!(&bob.project, Project::Found { note: Some(_), .. }),
        "the late head is single-stage: {:?}",
        bob.project
    );

    let cyd = &class.students[2];
    assert!(cyd.archives.is_empty());
    assert_eq!(cyd.refused.len(), 1);
    assert_eq!(cyd.refused[0].why, Why::Unreadable);
    assert!(
        cyd.refused[0].to_string().contains("file:///nonexistent/repo.git: (the repository:"),
        "{}",
        cyd.refused[0]
    );

    // `lab7 collect` at the deadline: each repository copied, its head recorded. A force-push
    // afterwards (history rewritten) changes nothing of what is graded.
    let snapshots = root.path().join("snapshots");
    std::fs::create_dir_all(&snapshots).unwrap();
    let entries = intake::git::read_roster(&roster).unwrap();
    let collected = intake::git::collect(&entries[..2], &snapshots);
    let late = git(&repo, &["rev-parse", "HEAD"]);
    assert_eq!(collected[1].snapshot.as_ref().unwrap().1, late, "Bob's head at the deadline");
    git(&repo, &["reset", "-q", "--hard", &handed_in]);
    std::fs::write(
        repo.join("app/Dockerfile_multi"),
        "FROM busybox:1.36
RUN echo rewritten
",
    )
    .unwrap();
    git(&repo, &["commit", "-qam", "rewritten after the deadline"]);
    let collected_roster = snapshots.join("roster.csv");
    std::fs::write(&collected_roster, intake::git::collected_roster(&collected).unwrap()).unwrap();
    let later = intake::read_class(&collected_roster, &root.path().join("work3"), &IntakeOptions::default()).unwrap();
    assert!(
        later.students[1].archives[0].1.starts_with(&format!("commit {late} ")),
        "{:?}",
        later.students[1].archives
    );
    assert!(later.students[0].archives[0].1.starts_with(&format!("commit {handed_in} ")));
    assert!(!marker.exists());

    // A Moodle student who linked the repository in the online text instead of uploading: cloned.
    let bare = root.path().join("ola.git");
    git(root.path(), &["clone", "-q", "--bare", repo.to_str().unwrap(), bare.to_str().unwrap()]);
    let download = root.path().join("download");
    let ola = download.join("Ola Źrebię_102_assignsubmission_onlinetext");
    std::fs::create_dir_all(&ola).unwrap();
    std::fs::write(
        ola.join("onlinetext.html"),
        format!("<p>Moje repozytorium: <a href=\"file://{0}\">file://{0}</a></p>", bare.display()),
    )
    .unwrap();
    let moodle = intake::read_class(&download, &root.path().join("work2"), &IntakeOptions::default()).unwrap();
    let ola = &moodle.students[0];
    assert_eq!(ola.archives.len(), 1, "{:?}", ola.refused);
    assert!(ola.archives[0].1.starts_with("commit "), "{:?}", ola.archives);
    assert!(matches!(&ola.project, Project::Found { .. }), "{:?}", ola.project);
    assert!(!marker.exists());

    // A roster line that would run a command instead of fetching stops the run, named.
    std::fs::write(&roster, "Eve,ext::sh -c touch% /tmp/lab7-ext\n").unwrap();
    let e = intake::read_class(&roster, &work, &IntakeOptions::default()).unwrap_err().to_string();
    assert!(e.contains("line 1") && e.contains("is not a repository URL lab7 fetches") && e.contains("fix:"), "{e}");
}
