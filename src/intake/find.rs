//! In one student's unpacked files: the Dockerfile the lab's command builds and the report.
//! Students name and place them in many ways (`Dockerfile`, `Dockerfile_multi`,
//! `lab7/Dockerfile`, the app one folder down inside the archive); a choice lab7 cannot make
//! is reported as ambiguous, never guessed.

use std::path::{Path, PathBuf};

use crate::builds::dockerfile::DockerfileSummary;

/// Folders never searched: version control, dependencies, and macOS's archive debris.
const SKIPPED: &[&str] = &[".git", "node_modules", "__MACOSX", "target", ".venv", "venv"];

/// The Dockerfile found, or why none was chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Project {
    /// The project: its folder (the build context) and the Dockerfile's name in it.
    Found { context: PathBuf, dockerfile: String, note: Option<String> },
    /// No Dockerfile at all.
    Missing,
    /// Several that could be the lab's (each multi-stage, or none is): lab7 will not pick one.
    Ambiguous(Vec<PathBuf>),
}

/// A report's extensions, in the order a student's own export is preferred.
const REPORT_EXTENSIONS: &[&str] = &["pdf", "docx", "md", "txt"];

/// The Dockerfile the lab's command builds: `wanted` (the `--file` name) when given; else the one
/// multi-stage Dockerfile (the lab's build has two stages); else the only Dockerfile there is.
pub fn project(root: &Path, wanted: Option<&str>) -> Project {
    let all = files(root, &|name| is_dockerfile_name(name));
    let named: Vec<&PathBuf> = match wanted {
        Some(w) => all.iter().filter(|p| p.file_name().is_some_and(|n| n == w)).collect(),
        None => all.iter().collect(),
    };
    let multi: Vec<&PathBuf> = named.iter().copied().filter(|p| stages(p) >= 2).collect();
    let (chosen, note) = match (named.as_slice(), multi.as_slice()) {
        ([], _) => return Project::Missing,
        (_, [one]) => (*one, None),
        ([only], []) => (*only, Some("its only Dockerfile has a single stage".to_string())),
        (_, []) => return Project::Ambiguous(named.into_iter().cloned().collect()),
        (_, several) => return Project::Ambiguous(several.iter().map(|p| (*p).clone()).collect()),
    };
    Project::Found {
        context: chosen.parent().unwrap_or(root).to_path_buf(),
        dockerfile: chosen.file_name().unwrap_or_default().to_string_lossy().into_owned(),
        note,
    }
}

/// The report: a PDF, DOCX, Markdown or text file (not a README or LICENSE, which are the
/// app's), a student's own export preferred in that order; several of one kind: the biggest.
pub fn report(root: &Path) -> Option<PathBuf> {
    let candidates = files(root, &|name| {
        let lower = name.to_ascii_lowercase();
        REPORT_EXTENSIONS.iter().any(|e| lower.ends_with(&format!(".{e}")))
            && !lower.starts_with("readme")
            && !lower.starts_with("license")
    });
    REPORT_EXTENSIONS.iter().find_map(|ext| {
        candidates
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case(ext)))
            .max_by_key(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
            .cloned()
    })
}

fn is_dockerfile_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower == "dockerfile"
        || lower.starts_with("dockerfile.")
        || lower.starts_with("dockerfile_")
        || lower.starts_with("dockerfile-")
        || lower.ends_with(".dockerfile")
}

fn stages(path: &Path) -> usize {
    std::fs::read_to_string(path).map(|t| DockerfileSummary::parse(&t).stages.unwrap_or(0)).unwrap_or(0)
}

/// Regular files under `root` whose name passes `keep`, in path order; links are not followed.
fn files(root: &Path, keep: &dyn Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            let Ok(kind) = e.file_type() else { continue };
            let name = e.file_name().to_string_lossy().into_owned();
            if kind.is_dir() && !SKIPPED.contains(&name.as_str()) {
                dirs.push(e.path());
            } else if kind.is_file() && keep(&name) {
                found.push(e.path());
            }
        }
    }
    found.sort();
    found
}
