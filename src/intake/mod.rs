//! A class as it arrives: Moodle's "Download all submissions" (the zip, or the folder it
//! unpacks to) or a folder of folders, turned into one folder per student with that student's
//! project and report found in it. Every archive is unpacked by lab7 within limits
//! (`unpack`); a student's refused entries are named in that student's row and never stop the
//! class. lab7 only reads what it unpacked: a `.git` inside an archive is a folder of files.

pub mod find;
pub mod git;
pub mod moodle;
pub mod unpack;

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use crate::Error;
pub use find::Project;
pub use moodle::MoodleFolder;
pub use unpack::{Limits, Refused, Why};

/// How the class arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    /// Moodle's download as a zip.
    MoodleZip,
    /// Moodle's download unpacked: folders named `<Full Name>_<id>_assignsubmission_<plugin>`.
    MoodleFolder,
    /// One folder per student, named as the instructor likes.
    Folders,
    /// A roster of repositories, `name,url[,sha]`, cloned at grading time.
    Roster,
}

/// One student's hand-in, unpacked and searched.
#[derive(Debug, Clone)]
pub struct Student {
    /// The student's name: Moodle's full name, or the folder's name.
    pub name: String,
    /// A name for files and rows that no two students share: `p<participant id>`, or the
    /// folder's name made safe.
    pub key: String,
    /// Moodle's participant id (the worksheet's `Participant <id>`).
    pub participant: Option<u64>,
    /// The folders of the download that were this student's, as named there (Moodle's feedback
    /// zip repeats them).
    pub download_folders: Vec<String>,
    /// Where lab7 unpacked everything of this student.
    pub files: PathBuf,
    pub project: Project,
    pub report: Option<PathBuf>,
    /// Each archive handed in (its path in the student's folder) and its SHA-256.
    pub archives: Vec<(String, String)>,
    /// Links in an online-text submission (a repository URL, typically).
    pub links: Vec<String>,
    pub refused: Vec<Refused>,
}

impl Student {
    /// What was found where, in one line for the class's table.
    pub fn found(&self) -> String {
        let rel = |p: &Path| p.strip_prefix(&self.files).unwrap_or(p).display().to_string();
        let project = match &self.project {
            Project::Found { context, dockerfile, note } => {
                let at = rel(&context.join(dockerfile));
                note.as_ref().map_or(at.clone(), |n| format!("{at} ({n})"))
            }
            Project::Missing => "no Dockerfile".into(),
            Project::Ambiguous(all) => {
                format!("ambiguous: {}", all.iter().map(|p| rel(p)).collect::<Vec<_>>().join(", "))
            }
        };
        let report = self.report.as_deref().map_or("no report".into(), |r| format!("report {}", rel(r)));
        format!("project {project}; {report}")
    }
}

/// The class: its students in name order, and what was refused from the download itself.
#[derive(Debug, Clone)]
pub struct Class {
    pub layout: Layout,
    pub students: Vec<Student>,
    pub refused: Vec<Refused>,
}

/// What to look for and how much to unpack.
#[derive(Debug, Clone, Default)]
pub struct IntakeOptions {
    /// The Dockerfile's name (`--file`), when the instructor fixes it.
    pub dockerfile: Option<String>,
    pub limits: Limits,
    /// Paths never read as a student's folder: the batch's own outputs, when they lie in the
    /// class's folder.
    pub skip: Vec<PathBuf>,
}

/// Whether `input` is a class `read_class` reads, rather than a folder of project folders: a
/// file (Moodle's zip, a roster CSV), or a folder holding Moodle's
/// `<Full Name>_<id>_assignsubmission_<plugin>` folders.
pub fn is_class(input: &Path) -> bool {
    if input.is_file() {
        return true;
    }
    std::fs::read_dir(input).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_type().is_ok_and(|t| t.is_dir()) && MoodleFolder::parse(&file_name(&e.path())).is_some())
    })
}

/// Reads a class from `input` (a Moodle zip, a Moodle folder or a folder of folders) into
/// `work` (made empty first): `work/students/<key>/` per student.
pub fn read_class(input: &Path, work: &Path, opts: &IntakeOptions) -> Result<Class, Error> {
    let _ = std::fs::remove_dir_all(work);
    std::fs::create_dir_all(work.join("students"))
        .map_err(|e| Error::input(format!("{}: {e}", work.display()), "give a folder lab7 may write to"))?;
    if input.is_file() && input.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let roster = git::read_roster(input)?;
        let students = roster.iter().map(|e| cloned(e, &work.join("students"), opts)).collect();
        return Ok(Class { layout: Layout::Roster, students, refused: Vec::new() });
    }
    let (root, mut layout, refused) = if input.is_file() {
        let download = work.join("download");
        // The whole class's download: as many entries as 500 students' hand-ins.
        let class =
            Limits { entries: opts.limits.entries * 500, total_bytes: opts.limits.total_bytes * 100, ..opts.limits };
        let mut u = unpack::Unpacker::new(class);
        if unpack::Kind::of(input) != Some(unpack::Kind::Zip) {
            return Err(Error::input(
                format!("{}: not a zip, so not Moodle's download", input.display()),
                "give Moodle's \"Download all submissions\" zip, a roster CSV (name,url[,sha]), or a folder with one folder per student",
            ));
        }
        // Only the download itself: the archives inside are the students' hand-ins, each
        // unpacked below within its own student's limits.
        u.unpack_only(input, &file_name(input), &download);
        (download, Layout::MoodleZip, u.refused)
    } else if input.is_dir() {
        (input.to_path_buf(), Layout::Folders, Vec::new())
    } else {
        return Err(Error::input(
            format!("{}: no such file or folder", input.display()),
            "give Moodle's download (zip or folder) or a folder with one folder per student",
        ));
    };
    let groups = group(&root, &opts.skip)?;
    if layout == Layout::Folders && groups.iter().any(|g| g.participant.is_some()) {
        layout = Layout::MoodleFolder;
    }
    let mut students: Vec<Student> = groups.into_iter().map(|g| g.read(&work.join("students"), opts)).collect();
    // What the download's own unpacking refused (a file past the limits, a path climbing out)
    // belongs in the row of the student whose folder held it.
    let mut unclaimed = Vec::new();
    for r in refused {
        let folder = r.entry.split('/').next().unwrap_or_default();
        match students.iter_mut().find(|s| s.download_folders.iter().any(|f| f == folder)) {
            Some(s) => s.refused.push(r),
            None => unclaimed.push(r),
        }
    }
    Ok(Class { layout, students, refused: unclaimed })
}

/// The folders of one student before unpacking.
struct Group {
    name: String,
    participant: Option<u64>,
    folders: Vec<PathBuf>,
}

/// Moodle's folders grouped by participant (a file and an online-text folder are one student);
/// any other folder is a student of its own.
fn group(root: &Path, skip: &[PathBuf]) -> Result<Vec<Group>, Error> {
    let entries = std::fs::read_dir(root)
        .map_err(|e| Error::input(format!("{}: {e}", root.display()), "give a folder with one folder per student"))?;
    let skip: Vec<PathBuf> = skip.iter().filter_map(|p| p.canonicalize().ok()).collect();
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .filter(|p| !p.canonicalize().is_ok_and(|c| skip.contains(&c)))
        .collect();
    dirs.sort();
    let mut groups: Vec<Group> = Vec::new();
    for dir in dirs {
        let folder = file_name(&dir);
        match MoodleFolder::parse(&folder) {
            Some(m) => match groups.iter_mut().find(|g| g.participant == Some(m.participant)) {
                Some(g) => g.folders.push(dir),
                None => groups.push(Group { name: m.full_name, participant: Some(m.participant), folders: vec![dir] }),
            },
            None => groups.push(Group { name: folder, participant: None, folders: vec![dir] }),
        }
    }
    if groups.is_empty() {
        return Err(Error::input_only(format!("{}: no folders, so no students", root.display())));
    }
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(groups)
}

impl Group {
    fn read(self, students: &Path, opts: &IntakeOptions) -> Student {
        let key = match self.participant {
            Some(id) => format!("p{id}"),
            None => safe_name(&self.name),
        };
        let files = students.join(&key);
        let mut u = unpack::Unpacker::new(opts.limits);
        let mut archives = Vec::new();
        let mut links = Vec::new();
        for folder in &self.folders {
            copy_tree(folder, &files, &file_name(folder), &mut u, &mut archives, &mut links);
        }
        let mut project = find::project(&files, opts.dockerfile.as_deref());
        // No project uploaded, a repository linked in the online text instead: cloned now, as a
        // roster's would be.
        if project == Project::Missing {
            if let Some(url) = links.iter().find(|l| git::looks_like_repository(l)) {
                let entry = git::RosterEntry { name: self.name.clone(), url: url.clone(), sha: None };
                match fetch(&entry, &files.join("repository")) {
                    Ok(graded) => archives.push(graded),
                    Err(r) => u.refused.push(r),
                }
                project = find::project(&files, opts.dockerfile.as_deref());
            }
        }
        let report = find::report(&files);
        Student {
            name: self.name,
            key,
            participant: self.participant,
            download_folders: self.folders.iter().map(|f| file_name(f)).collect(),
            files,
            project,
            report,
            archives,
            links,
            refused: u.refused,
        }
    }
}

/// One roster line's repository, cloned and searched; a clone that fails is that student's
/// refusal, not the class's end.
fn cloned(entry: &git::RosterEntry, students: &Path, opts: &IntakeOptions) -> Student {
    let key = safe_name(&entry.name);
    let files = students.join(&key);
    let (archives, refused) = match fetch(entry, &files) {
        Ok(graded) => (vec![graded], Vec::new()),
        Err(r) => (Vec::new(), vec![r]),
    };
    let project = find::project(&files, opts.dockerfile.as_deref());
    let report = find::report(&files);
    Student {
        name: entry.name.clone(),
        key,
        participant: None,
        download_folders: Vec::new(),
        files,
        project,
        report,
        archives,
        links: vec![entry.url.clone()],
        refused,
    }
}

/// A repository cloned into `into`: what was graded (the URL, and the commit with the fetch
/// time), or the refusal that names why not, for the student's row.
fn fetch(entry: &git::RosterEntry, into: &Path) -> Result<(String, String), Refused> {
    match git::clone(entry, into) {
        Ok(c) => Ok((entry.url.clone(), format!("commit {} fetched {}", c.sha, c.fetched_at))),
        Err(e) => {
            Err(Refused { archive: entry.url.clone(), entry: format!("(the repository: {e})"), why: Why::Unreadable })
        }
    }
}

/// The moment lab7 reads or grades something (a clone's fetch, a worksheet's `Last modified
/// (grade)`), in UTC, in a form PHP's strtotime reads as Moodle's importer does.
pub fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    t.format(&fmt).unwrap_or_default()
}

/// Copies a student's folder of the download (regular files only, no link followed), unpacking
/// each archive in it beside its copy.
fn copy_tree(
    from: &Path,
    to: &Path,
    shown: &str,
    u: &mut unpack::Unpacker,
    archives: &mut Vec<(String, String)>,
    links: &mut Vec<String>,
) {
    let Ok(entries) = std::fs::read_dir(from) else { return };
    for e in entries.flatten() {
        let (path, name) = (e.path(), file_name(&e.path()));
        let shown_here = format!("{shown}/{name}");
        let Ok(kind) = e.file_type() else { continue };
        if kind.is_dir() {
            copy_tree(&path, &to.join(&name), &shown_here, u, archives, links);
            continue;
        }
        if !kind.is_file() {
            u.refuse(shown, &name, Why::Link);
            continue;
        }
        let Some(copy) = u.copy(&path, shown, &name, to) else { continue };
        if name.eq_ignore_ascii_case("onlinetext.html") {
            links.extend(urls(&std::fs::read_to_string(&copy).unwrap_or_default()));
        }
        if unpack::Kind::of(&copy).is_some() {
            archives.push((shown_here.clone(), sha256_of(&copy)));
            u.unpack(&copy, &shown_here, &unpack::beside(&copy), 1);
        }
    }
}

fn urls(html: &str) -> Vec<String> {
    static URL: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r#"(?:https?|ssh|git|file)://[^\s"'<>]+|git@[\w.-]+:[^\s"'<>]+"#).unwrap()
    });
    let mut found: Vec<String> =
        URL.find_iter(html).map(|m| m.as_str().trim_end_matches(['.', ',', ')']).to_string()).collect();
    found.dedup();
    found
}

fn sha256_of(path: &Path) -> String {
    let mut h = sha2::Sha256::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = std::io::copy(&mut f, &mut h);
    }
    format!("sha256:{:x}", h.finalize())
}

fn file_name(p: &Path) -> String {
    p.file_name().unwrap_or_default().to_string_lossy().into_owned()
}

/// A folder name any file system takes: letters (diacritics too), digits, `-` and `_`.
pub(crate) fn safe_name(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if s.is_empty() || s.starts_with('.') {
        format!("s_{s}")
    } else {
        s
    }
}
