#!/usr/bin/env python3
"""A class as Moodle's "Download all submissions" gives it, for `make class` (README: A class from
Moodle): twelve students in every layout a class hands in, from this repository's lab examples
and its report fixtures (real sessions), plus the assignment's grading worksheet in Moodle's
column order. Polish names with diacritics; Moodle before 4.1 (a trailing `_`); a project one
folder down in a tar.gz, a `lab7/Dockerfile` with a `.git` folder in the zip, a repository linked
in the online text (a bare repository made here, as a student's GitHub would be), a missing
report, a late hand-in, reports pasting the same session (shared evidence), two candidate
Dockerfiles, a single-stage one, and an archive with entries that climb out of its folder.

Usage: python3 scripts/moodle-class.py OUT_DIR   (writes OUT_DIR/PAwChO-lab7-4242.zip,
OUT_DIR/worksheet.csv and OUT_DIR/repos/)
"""
import io
import pathlib
import subprocess
import sys
import tarfile
import zipfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
REPORTS = ROOT / "tests/fixtures/reports"


def files_of(app, prefix="", rename=lambda n: n):
    d = ROOT / "lab_examples" / app
    return [(prefix + rename(str(p.relative_to(d))), p.read_bytes()) for p in sorted(d.rglob("*")) if p.is_file()]


def zip_bytes(entries):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        for name, body in entries:
            z.writestr(name, body)
    return b.getvalue()


def tar_gz_bytes(entries):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w:gz") as t:
        for name, body in entries:
            info = tarfile.TarInfo(name)
            info.size = len(body)
            t.addfile(info, io.BytesIO(body))
    return b.getvalue()


def report(name):
    return (REPORTS / name).read_bytes()


def bare_repository(out, app):
    """A student's repository with the app and a report, as a bare repository under out/repos."""
    work = out / "repos" / "work"
    work.mkdir(parents=True, exist_ok=True)
    for name, body in files_of(app) + [("sprawozdanie.md", report("pieces-pl.md"))]:
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        (work / name).write_bytes(body)
    git = ["git", "-c", "user.name=Student", "-c", "user.email=s@example.edu", "-C", str(work)]
    subprocess.run(git + ["init", "-q"], check=True)
    subprocess.run(git + ["add", "."], check=True)
    subprocess.run(git + ["commit", "-qm", "lab 7"], check=True)
    bare = out / "repos" / "ola-lab7.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(bare)], check=True)
    return bare


def main(out):
    out = pathlib.Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    repo = bare_repository(out, "reference")
    keep = lambda n: n
    f = "_assignsubmission_file/"
    students = [
        # (participant id, name, when handed in, [(path in the download, bytes)])
        (101, "Jan Kowalski", "7 December 2026, 9:00 AM",
         [(f"Jan Kowalski_101{f}lab7.zip", zip_bytes(files_of("reference"))),
          (f"Jan Kowalski_101{f}sprawozdanie.pdf", report("complete-pl.pdf"))]),
        (102, "Zażółć Gęślą-Jaźń", "7 December 2026, 9:40 AM",
         [(f"Zażółć Gęślą-Jaźń_102{f}projekt.tar.gz",
           tar_gz_bytes(files_of("reference", "projekt/app/", lambda n: n.replace("Dockerfile_multi", "Dockerfile"))
                        + [("projekt/raport.md", report("complete-en.md"))]))]),
        (103, "Anna Nowak", "7 December 2026, 10:05 AM",
         [("Anna Nowak_103_assignsubmission_file_/anna.zip",
           zip_bytes(files_of("buildkit-shapes", "lab7/", lambda n: n.replace("Dockerfile_multi", "Dockerfile"))
                     + [("lab7/.git/config", b"[core]\n\tfsmonitor = touch /tmp/lab7-fsmonitor-ran\n"),
                        ("report.docx", report("complete-pl.docx"))]))]),
        (104, "Ola Źrebię", "7 December 2026, 11:00 AM",
         [("Ola Źrebię_104_assignsubmission_onlinetext/onlinetext.html",
           f'<p>Moje repozytorium: <a href="file://{repo}">file://{repo}</a></p>'.encode())]),
        (105, "Ewa Lis", "7 December 2026, 11:30 AM",
         [(f"Ewa Lis_105{f}{n}", b) for n, b in files_of("single-stage")]),
        (106, "Piotr Wiśniewski", "8 December 2026, 3:15 PM",
         [(f"Piotr Wiśniewski_106{f}lab.zip", zip_bytes(files_of("reference"))),
          (f"Piotr Wiśniewski_106{f}report.md", report("unpruned.md"))]),
        (107, "Łucja Żak", "7 December 2026, 8:00 PM",
         [(f"Łucja Żak_107{f}p.zip", zip_bytes(files_of("reference", "a/") + files_of("reference", "b/"))),
          (f"Łucja Żak_107{f}sprawozdanie.md", report("missing-bonus.md"))]),
        (108, "Mallory Ęwil", "7 December 2026, 10:00 PM",
         [(f"Mallory Ęwil_108{f}m.zip",
           zip_bytes(files_of("reference") + [("../../../../tmp/lab7-class-zip-slip", b"owned")])),
          (f"Mallory Ęwil_108{f}report.md", report("bonus-untagged-session.md"))]),
        (109, "Kamil Ślusarczyk", "7 December 2026, 9:10 PM",
         [(f"Kamil Ślusarczyk_109{f}lab7.tar.gz", tar_gz_bytes(files_of("arm64-fails"))),
          (f"Kamil Ślusarczyk_109{f}raport.md", report("problem-failed-step-explained.md"))]),
        (110, "Grzegorz Brzęczyszczykiewicz", "7 December 2026, 11:58 PM",
         [(f"Grzegorz Brzęczyszczykiewicz_110{f}app.zip", zip_bytes(files_of("wrong-arch-final"))),
          (f"Grzegorz Brzęczyszczykiewicz_110{f}report.md", report("bonus-tag-plain-gc-registry3.md"))]),
        (111, "Zofia Kąkol", "7 December 2026, 7:30 PM",
         [(f"Zofia Kąkol_111{f}zofia.zip", zip_bytes(files_of("reference", "moje-lab7/")
                                                     + [("moje-lab7/sprawozdanie.md", report("bonus-by-tag-registry3.md"))]))]),
        (112, "Participant", "7 December 2026, 6:00 PM",
         [(f"Participant_112{f}lab.zip", zip_bytes(files_of("reference"))),
          (f"Participant_112{f}report.md", report("problem-stale-200-right.md"))]),
    ]
    download = out / "PAwChO-lab7-4242.zip"
    with zipfile.ZipFile(download, "w", zipfile.ZIP_DEFLATED) as z:
        for _, _, _, entries in students:
            for name, body in entries:
                z.writestr(name, body)
    header = ("Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,"
              "Last modified (submission),File submissions,Last modified (grade),Feedback comments\n")
    rows = "".join(f'Participant {pid},{name},s{pid}@example.edu,Submitted for grading,,150.00,Yes,"Monday, {when}",,-,\n'
                   for pid, name, when, _ in students)
    (out / "worksheet.csv").write_text(header + rows)
    print(f"wrote {download} ({len(students)} students), {out / 'worksheet.csv'}, {repo}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
