//! The build context, sent to the node the way buildx sends it: a symbolic link travels as
//! a link and is never resolved on the grading host, so `src/x -> /etc/shadow` cannot copy
//! a host file into a student's image (BuildKit then resolves the link inside the context,
//! as under buildx: a link that points outside it is "not found"). The tar is streamed
//! through a temporary file, so memory stays flat whatever the context's size, and a
//! context over the cap is refused before anything is copied.
//!
//! `.dockerignore` is applied by BuildKit's Dockerfile frontend in the node, exactly as
//! under buildx. No crate implements its pattern language, so only its plain paths
//! (`node_modules`, `/dist`, no wildcards, and only when the file has no `!` exception) are
//! also left out here, to keep them out of the upload and the size cap: a subset of what
//! BuildKit itself excludes, so the build sees the same context either way.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Component, Path, PathBuf};

use crate::Error;

/// Default cap on a build context, in bytes (2 GiB).
pub const DEFAULT_MAX_CONTEXT: u64 = 2 << 30;

/// A build context packed as a tar in a temporary file, ready to stream into the node.
#[derive(Debug)]
pub struct PackedContext {
    pub file: File,
    /// Bytes of file content packed (what the cap counts).
    pub content_bytes: u64,
    pub entries: u64,
}

/// Packs `dir` under `prefix/` (e.g. `lab/s001`), links as links, never following one.
/// `dockerfile` is always sent, even when `.dockerignore` names it (buildx sends it apart).
pub fn pack(dir: &Path, prefix: &str, dockerfile: &str, max_bytes: u64) -> Result<PackedContext, Error> {
    let ignored = plain_ignores(dir, dockerfile);
    let tmp = tempfile::tempfile()
        .map_err(|e| Error::input_only(format!("cannot create a temporary file for the build context: {e}")))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, tmp));
    tar.follow_symlinks(false);
    let mut packed = Packer { tar, dir, max_bytes, content_bytes: 0, entries: 0, ignored };
    packed.tar.append_dir(prefix, dir).map_err(|e| read_error(dir, e))?;
    packed.walk(dir, Path::new(prefix))?;
    let Packer { tar, content_bytes, entries, .. } = packed;
    let mut writer = tar.into_inner().map_err(|e| read_error(dir, e))?;
    writer.flush().map_err(|e| read_error(dir, e))?;
    let mut file = writer.into_inner().map_err(|e| read_error(dir, e.into_error()))?;
    std::io::Seek::rewind(&mut file).map_err(|e| read_error(dir, e))?;
    Ok(PackedContext { file, content_bytes, entries })
}

struct Packer<'a> {
    tar: tar::Builder<BufWriter<File>>,
    dir: &'a Path,
    max_bytes: u64,
    content_bytes: u64,
    entries: u64,
    ignored: BTreeSet<PathBuf>,
}

impl Packer<'_> {
    fn walk(&mut self, at: &Path, name: &Path) -> Result<(), Error> {
        let mut children: Vec<_> = fs::read_dir(at)
            .map_err(|e| read_error(at, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| read_error(at, e))?;
        children.sort_by_key(|c| c.file_name());
        for child in children {
            let path = child.path();
            let relative = path.strip_prefix(self.dir).unwrap_or(&path).to_path_buf();
            if self.ignored.contains(&relative) {
                continue;
            }
            // symlink_metadata: the entry itself, never what a link points to.
            let meta = fs::symlink_metadata(&path).map_err(|e| read_error(&path, e))?;
            let kind = meta.file_type();
            if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
                continue; // sockets, FIFOs, devices: nothing a build context carries
            }
            if kind.is_file() {
                self.content_bytes += meta.len();
                if self.content_bytes > self.max_bytes {
                    return Err(self.too_large());
                }
            }
            let entry = name.join(child.file_name());
            self.append(&path, &entry, &meta).map_err(|e| read_error(&path, e))?;
            self.entries += 1;
            if kind.is_dir() {
                self.walk(&path, &entry)?;
            }
        }
        Ok(())
    }

    #[cfg(not(windows))]
    fn append(&mut self, path: &Path, entry: &Path, _meta: &fs::Metadata) -> std::io::Result<()> {
        self.tar.append_path_with_name(path, entry)
    }

    /// Windows has no execute bits: buildx there sends every file and folder with them set
    /// (`mode & 0755 | 0111`, fsutil's walker), so a `RUN ./build.sh` runs. lab7 sends the same.
    #[cfg(windows)]
    fn append(&mut self, path: &Path, entry: &Path, meta: &fs::Metadata) -> std::io::Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_metadata_in_mode(meta, tar::HeaderMode::Complete);
        header.set_mode(mode_from_windows(header.mode()?));
        if meta.file_type().is_symlink() {
            header.set_size(0);
            self.tar.append_link(&mut header, entry, fs::read_link(path)?)
        } else if meta.is_dir() {
            header.set_size(0);
            self.tar.append_data(&mut header, entry, std::io::empty())
        } else {
            self.tar.append_data(&mut header, entry, File::open(path)?)
        }
    }

    fn too_large(&self) -> Error {
        Error::input(format!("{}: the build context is over {} MiB, lab7's limit", self.dir.display(), self.max_bytes >> 20), "list what the image does not need (node_modules, build output, data) in .dockerignore, or raise the limit with --max-context")
    }
}

/// A file's mode as buildx on Windows sends it: read, write as Windows has them, and
/// execute for everyone.
#[cfg_attr(not(any(windows, test)), allow(dead_code))]
fn mode_from_windows(mode: u32) -> u32 {
    (mode | 0o111) & 0o755
}

fn read_error(path: &Path, e: std::io::Error) -> Error {
    Error::input_only(format!("{}: cannot read the build context: {e}", path.display()))
}

/// The plain paths of `<dockerfile>.dockerignore` or `.dockerignore` (BuildKit's order),
/// or none when the file has an exception (`!`), which could bring a path back.
fn plain_ignores(dir: &Path, dockerfile: &str) -> BTreeSet<PathBuf> {
    let text = [format!("{dockerfile}.dockerignore"), ".dockerignore".to_string()]
        .iter()
        .find_map(|name| fs::read_to_string(dir.join(name)).ok())
        .unwrap_or_default();
    let patterns: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    if patterns.iter().any(|p| p.starts_with('!')) {
        return BTreeSet::new();
    }
    let keep = [Path::new(dockerfile), Path::new(".dockerignore")];
    patterns
        .iter()
        .filter(|p| !p.contains(['*', '?', '[', '\\']))
        .filter_map(|p| clean(p))
        .filter(|p| !keep.iter().any(|k| k.starts_with(p)))
        .collect()
}

/// `./a//b/` → `a/b`; `None` for the context root itself or a path that climbs out of it.
fn clean(pattern: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(pattern).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn from_windows_every_file_is_sent_executable_as_buildx_sends_it() {
        assert_eq!(mode_from_windows(0o666), 0o755); // a plain file, as Windows reports it
        assert_eq!(mode_from_windows(0o444), 0o555); // read-only
        assert_eq!(mode_from_windows(0o777), 0o755); // a folder
    }

    fn entries(packed: PackedContext) -> Vec<(String, tar::EntryType, Option<String>)> {
        let mut archive = tar::Archive::new(packed.file);
        archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                let link = e.link_name().unwrap().map(|l| l.display().to_string());
                (e.path().unwrap().display().to_string(), e.header().entry_type(), link)
            })
            .collect()
    }

    #[test]
    fn links_travel_as_links_and_are_never_read() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Dockerfile_multi"), "FROM busybox\n").unwrap();
        symlink("/etc/shadow", dir.path().join("outside")).unwrap();
        symlink("missing", dir.path().join("dangling")).unwrap();
        symlink(".", dir.path().join("loop")).unwrap();
        let packed = pack(dir.path(), "lab/app", "Dockerfile_multi", DEFAULT_MAX_CONTEXT).unwrap();
        assert_eq!(packed.content_bytes, "FROM busybox\n".len() as u64);
        let found = entries(packed);
        let link = |name: &str| found.iter().find(|(p, ..)| p == &format!("lab/app/{name}")).cloned().unwrap();
        assert_eq!(link("outside"), ("lab/app/outside".into(), tar::EntryType::Symlink, Some("/etc/shadow".into())));
        assert_eq!(link("dangling").1, tar::EntryType::Symlink);
        assert_eq!(link("loop").1, tar::EntryType::Symlink);
        assert_eq!(found.len(), 5, "{found:?}"); // the folder, the Dockerfile, three links
    }

    #[test]
    fn a_context_over_the_cap_is_refused_with_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Dockerfile_multi"), "FROM busybox\n").unwrap();
        fs::write(dir.path().join("big.bin"), vec![0u8; 3 << 20]).unwrap();
        let e = pack(dir.path(), "lab/app", "Dockerfile_multi", 2 << 20).unwrap_err().to_string();
        assert!(e.contains("over 2 MiB") && e.contains(".dockerignore"), "{e}");
    }

    #[test]
    fn plain_dockerignore_paths_stay_home_but_the_dockerfile_is_always_sent() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("Dockerfile_multi"), "FROM busybox\n").unwrap();
        fs::create_dir_all(dir.path().join("node_modules/x")).unwrap();
        fs::write(dir.path().join("node_modules/x/big.js"), vec![b'x'; 1 << 20]).unwrap();
        fs::write(dir.path().join("keep.txt"), "k").unwrap();
        fs::write(dir.path().join(".dockerignore"), "# deps\nnode_modules/\nDockerfile_multi\n*.log\n").unwrap();
        let packed = pack(dir.path(), "lab/app", "Dockerfile_multi", DEFAULT_MAX_CONTEXT).unwrap();
        let names: Vec<String> = entries(packed).into_iter().map(|e| e.0).collect();
        assert!(!names.iter().any(|n| n.contains("node_modules")), "{names:?}");
        for kept in ["lab/app/Dockerfile_multi", "lab/app/keep.txt", "lab/app/.dockerignore"] {
            assert!(names.iter().any(|n| n == kept), "{kept} missing from {names:?}");
        }
    }

    #[test]
    fn an_exception_in_dockerignore_leaves_the_filtering_to_buildkit() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".dockerignore"), "docs\n!docs/README.md\n").unwrap();
        assert!(plain_ignores(dir.path(), "Dockerfile_multi").is_empty());
        assert_eq!(clean("./a//b/"), Some(PathBuf::from("a/b")));
        assert_eq!(clean("../etc"), None);
        assert_eq!(clean("/"), None);
    }
}
