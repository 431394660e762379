//! A class as a roster of repositories (`name,url[,sha]`): each cloned by the grader, which is
//! the trusted moment (a commit's date is the student's to write). A clone runs nothing of the
//! student's or of this machine's git setup: no hook (`core.hooksPath` is /dev/null, the user's
//! and the system's git config are not read, so no template, filter or fsmonitor of theirs
//! applies), no submodule, no LFS download, no `ext::` transport, no prompt for a password.
//! The git CLI does the fetching (what every instructor's machine has; a Rust git client would
//! add a TLS and SSH stack for the same result); lab7 reads the files, never git's metadata.

use std::path::Path;
use std::process::Command;

use crate::Error;

/// One line of the roster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterEntry {
    pub name: String,
    pub url: String,
    /// The commit handed in, when the roster fixes one; else the default branch's head.
    pub sha: Option<String>,
}

/// Reads `name,url[,sha]` lines (a header line `name,url…` is skipped).
pub fn read_roster(path: &Path) -> Result<Vec<RosterEntry>, Error> {
    let bad = |line: usize, what: String| {
        Error::input(
            format!("{}, line {line}: {what}", path.display()),
            "each line is `name,url` or `name,url,sha` (https://, ssh:// or git@host:path URLs)",
        )
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| bad(1, e.to_string()))?;
    let mut entries = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let r = record.map_err(|e| bad(i + 1, e.to_string()))?;
        if i == 0 && r.get(0).is_some_and(|c| c.eq_ignore_ascii_case("name")) {
            continue;
        }
        if r.iter().all(str::is_empty) {
            continue;
        }
        let (Some(name), Some(url)) = (r.get(0).filter(|s| !s.is_empty()), r.get(1).filter(|s| !s.is_empty())) else {
            return Err(bad(i + 1, "a name and a repository URL are needed".into()));
        };
        check_url(url).map_err(|e| bad(i + 1, e))?;
        let sha = r.get(2).filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(s) = &sha {
            if s.len() < 7 || !s.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad(i + 1, format!("`{s}` is not a commit SHA")));
            }
        }
        entries.push(RosterEntry { name: name.to_string(), url: url.to_string(), sha });
    }
    if entries.is_empty() {
        return Err(bad(1, "no repositories in it".into()));
    }
    Ok(entries)
}

/// The transports a student's repository may come over; nothing that runs a command.
fn check_url(url: &str) -> Result<(), String> {
    let scp_like = url.contains('@') && url.contains(':') && !url.contains("://");
    let ok = ["https://", "http://", "ssh://", "git://", "file://"].iter().any(|p| url.starts_with(p)) || scp_like;
    if url.starts_with('-') || !ok {
        return Err(format!("`{url}` is not a repository URL lab7 fetches (https://, ssh://, git@host:path)"));
    }
    Ok(())
}

/// Whether a link in a student's online text is a repository to clone: a URL lab7 fetches
/// that ends in `.git` or names a repository on a known forge (not any web page).
pub fn looks_like_repository(url: &str) -> bool {
    const FORGES: &[&str] = &["github.com/", "gitlab.com/", "bitbucket.org/", "codeberg.org/"];
    check_url(url).is_ok()
        && (url.trim_end_matches('/').ends_with(".git")
            || FORGES
                .iter()
                .any(|f| url.split_once(f).is_some_and(|(_, path)| path.trim_matches('/').split('/').count() == 2)))
}

/// A clone as graded: the commit checked out and when the grader fetched it.
#[derive(Debug, Clone)]
pub struct Cloned {
    pub sha: String,
    pub fetched_at: String,
}

/// Clones `entry` into `into` (which must not exist) and checks out its commit; git's own
/// folder is removed afterwards, so only the files are graded.
pub fn clone(entry: &RosterEntry, into: &Path) -> Result<Cloned, String> {
    let fetched_at = super::now();
    git(None, &["clone", "--no-recurse-submodules", "--quiet", "--", &entry.url, &into.to_string_lossy()])?;
    if let Some(sha) = &entry.sha {
        git(Some(into), &["checkout", "--quiet", "--detach", sha])
            .map_err(|e| format!("the commit {sha} handed in is not in {}: {e}", entry.url))?;
    }
    let sha = git(Some(into), &["rev-parse", "HEAD"])?.trim().to_string();
    std::fs::remove_dir_all(into.join(".git")).map_err(|e| format!("removing git's folder: {e}"))?;
    Ok(Cloned { sha, fetched_at })
}

/// A repository kept as it was when collected: a bare copy of it in the snapshot folder.
#[derive(Debug, Clone)]
pub struct Collected {
    pub entry: RosterEntry,
    /// The snapshot (`DIR/<name>.git`) and the commit of its head, or why it could not be taken.
    pub snapshot: Result<(std::path::PathBuf, String), String>,
    pub fetched_at: String,
}

/// `lab7 collect`: each repository copied (bare, every branch) into `dir` at this moment — the
/// deadline's snapshot, which a later force-push cannot change. The roster it writes names
/// the snapshots and their head commits, for `batch` to grade later.
pub fn collect(roster: &[RosterEntry], dir: &Path) -> Vec<Collected> {
    roster
        .iter()
        .map(|entry| {
            let fetched_at = super::now();
            let into = dir.join(format!("{}.git", super::safe_name(&entry.name)));
            let snapshot = (|| {
                if into.exists() {
                    return Err(format!("{} exists: collect into an empty folder", into.display()));
                }
                git(None, &["clone", "--bare", "--quiet", "--", &entry.url, &into.to_string_lossy()])?;
                let rev = entry.sha.as_deref().unwrap_or("HEAD");
                let sha =
                    git(Some(&into), &["rev-parse", "--verify", &format!("{rev}^{{commit}}")])?.trim().to_string();
                Ok((into.clone(), sha))
            })();
            Collected { entry: entry.clone(), snapshot, fetched_at }
        })
        .collect()
}

/// The roster `batch` reads back: `name,url,sha,fetched_at`, each URL the snapshot's.
pub fn collected_roster(collected: &[Collected]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["name", "url", "sha", "fetched_at"])?;
    for c in collected {
        if let Ok((path, sha)) = &c.snapshot {
            let url = format!("file://{}", path.canonicalize().unwrap_or(path.clone()).display());
            w.write_record([c.entry.name.as_str(), &url, sha, &c.fetched_at])?;
        }
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Runs git with nothing of this machine's or the repository's configuration that could run
/// a program: no hooks, no user or system config, no filters, no LFS smudge, no prompts.
fn git(dir: Option<&Path>, args: &[&str]) -> Result<String, String> {
    let empty = tempfile::tempdir().map_err(|e| e.to_string())?;
    let mut c = Command::new("git");
    if let Some(d) = dir {
        c.current_dir(d);
    }
    c.args([
        "-c",
        "core.hooksPath=/dev/null",
        "-c",
        "core.fsmonitor=false",
        "-c",
        "protocol.ext.allow=never",
        "-c",
        "submodule.recurse=false",
        "-c",
        "filter.lfs.smudge=",
        "-c",
        "filter.lfs.process=",
        "-c",
        "filter.lfs.required=false",
        "-c",
        "init.templateDir=",
        // A stalled or unreachable server ends the clone, not the batch.
        "-c",
        "http.lowSpeedLimit=1000",
        "-c",
        "http.lowSpeedTime=30",
    ])
    .args(args)
    .env("GIT_CONFIG_NOSYSTEM", "1")
    .env("GIT_CONFIG_GLOBAL", "/dev/null")
    .env("HOME", empty.path())
    .env("GIT_TERMINAL_PROMPT", "0")
    .env("GIT_ASKPASS", "true")
    .env("SSH_ASKPASS", "true")
    .env("GIT_LFS_SKIP_SMUDGE", "1")
    .env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes -o ConnectTimeout=20")
    .env_remove("GIT_DIR")
    .env_remove("GIT_WORK_TREE");
    let out = c.output().map_err(|e| format!("git: {e} (install git)"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(err.lines().last().unwrap_or("git failed").trim().to_string());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_fetching_transports_are_taken() {
        for ok in ["https://github.com/a/b.git", "git@github.com:a/b.git", "ssh://git@host/a/b", "file:///srv/a.git"] {
            assert!(check_url(ok).is_ok(), "{ok}");
        }
        for bad in ["ext::sh -c touch% /tmp/pwned", "--upload-pack=touch /tmp/x", "/etc", "fd::3"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(looks_like_repository("https://github.com/ola/lab7"));
        assert!(looks_like_repository("https://git.example.edu/anna/lab7.git"));
        assert!(!looks_like_repository("https://github.com/ola/lab7/blob/main/README.md"));
        assert!(!looks_like_repository("https://docs.docker.com/build/"));
    }
}
