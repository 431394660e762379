//! A student's archive unpacked by lab7 itself, within limits: an archive is untrusted input.
//! Each entry that would leave the student's folder (`..`, an absolute path, a drive letter), is
//! a link or a device, or passes a limit is refused by name and skipped; the rest is written.
//! Sizes are counted as bytes are written, never taken from the archive's own headers (a zip
//! bomb's headers lie). Archives inside archives are unpacked too, to a depth.

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// How much one student's hand-in may unpack to.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Entries written, over every archive of the student.
    pub entries: usize,
    /// Bytes of one entry.
    pub entry_bytes: u64,
    /// Bytes over every entry of the student.
    pub total_bytes: u64,
    /// Archives inside archives: 1 unpacks the hand-in's archives, 2 also the ones inside them.
    pub depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        // A lab project is a few files; a report with screenshots a few MB.
        Limits { entries: 2_000, entry_bytes: 64 << 20, total_bytes: 256 << 20, depth: 2 }
    }
}

/// An entry not unpacked, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Refused {
    /// The archive, as the student's folder names it, and the entry's name in it.
    pub archive: String,
    pub entry: String,
    pub why: Why,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Why {
    /// `..`, an absolute path or a drive letter: it would be written outside the folder.
    OutsideTheFolder,
    /// A symbolic or hard link: followed, it could reach anything.
    Link,
    /// A device, FIFO or other special file.
    SpecialFile,
    /// Bigger than `Limits::entry_bytes` once decompressed.
    EntryTooBig,
    /// The student's bytes or entries ran out (`Limits::total_bytes`, `Limits::entries`).
    TooMuch,
    /// An archive nested deeper than `Limits::depth`.
    TooDeep,
    /// The archive itself could not be read.
    Unreadable,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let why = match self.why {
            Why::OutsideTheFolder => "would be written outside the student's folder",
            Why::Link => "a link (not followed)",
            Why::SpecialFile => "a device or special file",
            Why::EntryTooBig => "too big once unpacked",
            Why::TooMuch => "past the student's size or entry limit",
            Why::TooDeep => "an archive nested too deep",
            Why::Unreadable => "not a readable archive",
        };
        write!(f, "{}: {}: {why}", self.archive, self.entry)
    }
}

/// What kind of archive a file is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Zip,
    Tar,
    TarGz,
}

/// The name endings lab7 unpacks, and what each is.
const SUFFIXES: [(&str, Kind); 4] =
    [(".zip", Kind::Zip), (".tar.gz", Kind::TarGz), (".tgz", Kind::TarGz), (".tar", Kind::Tar)];

impl Kind {
    pub fn of(path: &Path) -> Option<Kind> {
        Kind::split(&path.file_name()?.to_string_lossy()).map(|(k, _)| k)
    }

    /// The kind a file name says, and the name without its ending (`app.tar.gz` → `app`).
    fn split(name: &str) -> Option<(Kind, &str)> {
        let lower = name.to_ascii_lowercase();
        SUFFIXES.iter().find(|(end, _)| lower.ends_with(end)).map(|(end, k)| (*k, &name[..name.len() - end.len()]))
    }
}

/// Unpacks into one student's folder, counting against that student's limits.
pub struct Unpacker {
    limits: Limits,
    entries: usize,
    bytes: u64,
    pub refused: Vec<Refused>,
}

/// An archive opened for reading through a buffer: its readers ask for a few bytes at a time
/// (a zip's headers field by field), one system call each without it.
fn open(archive: &Path) -> Result<std::io::BufReader<std::fs::File>, String> {
    std::fs::File::open(archive).map(std::io::BufReader::new).map_err(|e| e.to_string())
}

impl Unpacker {
    pub fn new(limits: Limits) -> Unpacker {
        Unpacker { limits, entries: 0, bytes: 0, refused: Vec::new() }
    }

    /// Unpacks `archive` into `into` (made if missing), then the archives it held, to the depth
    /// limit. `shown` is how the report names the archive.
    pub fn unpack(&mut self, archive: &Path, shown: &str, into: &Path, depth: usize) {
        if depth > self.limits.depth {
            self.refuse(shown, "(the whole archive)", Why::TooDeep);
            return;
        }
        for f in self.unpack_only(archive, shown, into).into_iter().filter(|f| Kind::of(f).is_some()) {
            let inner = beside(&f);
            let name = format!("{shown}/{}", f.strip_prefix(into).unwrap_or(&f).display());
            self.unpack(&f, &name, &inner, depth + 1);
        }
    }

    /// Unpacks `archive` into `into`, leaving the archives it held as they are: the files
    /// written (none when it is no archive, or cannot be read: said in `refused`).
    pub fn unpack_only(&mut self, archive: &Path, shown: &str, into: &Path) -> Vec<PathBuf> {
        let Some(kind) = Kind::of(archive) else { return Vec::new() };
        let written = match kind {
            Kind::Zip => self.zip(archive, shown, into),
            Kind::Tar => open(archive).and_then(|f| self.tar(f, shown, into)),
            Kind::TarGz => open(archive).and_then(|f| self.tar(flate2::read::GzDecoder::new(f), shown, into)),
        };
        written.unwrap_or_else(|e| {
            self.refuse(shown, &format!("(the whole archive: {e})"), Why::Unreadable);
            Vec::new()
        })
    }

    /// Copies a plain file of the hand-in (not an archive entry) into `into`, within the same
    /// limits as an entry.
    pub fn copy(&mut self, from: &Path, shown: &str, name: &str, into: &Path) -> Option<PathBuf> {
        let mut f = std::fs::File::open(from).ok()?;
        self.take(shown, name, EntryKind::File, into, &mut f)
    }

    /// An entry admitted and written, or refused (and why, recorded).
    fn take(&mut self, shown: &str, name: &str, kind: EntryKind, into: &Path, from: &mut impl Read) -> Option<PathBuf> {
        let path = self.admit(shown, name, kind, into)?;
        self.write(shown, name, from, path)
    }

    pub(super) fn refuse(&mut self, archive: &str, entry: &str, why: Why) {
        self.refused.push(Refused { archive: archive.to_string(), entry: entry.to_string(), why });
    }

    fn zip(&mut self, archive: &Path, shown: &str, into: &Path) -> Result<Vec<PathBuf>, String> {
        let mut zip = zip::ZipArchive::new(open(archive)?).map_err(|e| e.to_string())?;
        let mut written = Vec::new();
        for i in 0..zip.len() {
            let mut entry = zip.by_index(i).map_err(|e| e.to_string())?;
            let name = entry.name().to_string();
            if entry.is_dir() {
                continue;
            }
            let kind = if entry.is_symlink() { EntryKind::Link } else { EntryKind::File };
            written.extend(self.take(shown, &name, kind, into, &mut entry));
        }
        Ok(written)
    }

    fn tar(&mut self, reader: impl Read, shown: &str, into: &Path) -> Result<Vec<PathBuf>, String> {
        let mut tar = tar::Archive::new(reader);
        let mut written = Vec::new();
        for entry in tar.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).to_string();
            let kind = match entry.header().entry_type() {
                tar::EntryType::Directory => continue,
                // PAX and GNU long-name records describe the next entry; the reader applies them.
                t if t.is_pax_global_extensions() || t.is_pax_local_extensions() => continue,
                tar::EntryType::Regular | tar::EntryType::Continuous => EntryKind::File,
                tar::EntryType::Symlink | tar::EntryType::Link => EntryKind::Link,
                _ => EntryKind::Special,
            };
            written.extend(self.take(shown, &name, kind, into, &mut entry));
        }
        Ok(written)
    }

    /// Where an entry goes, or None (and why, recorded) when it is refused.
    fn admit(&mut self, shown: &str, name: &str, kind: EntryKind, into: &Path) -> Option<PathBuf> {
        let why = match kind {
            EntryKind::Link => Some(Why::Link),
            EntryKind::Special => Some(Why::SpecialFile),
            EntryKind::File if self.entries >= self.limits.entries => Some(Why::TooMuch),
            EntryKind::File => None,
        };
        let path = inside(into, name);
        match (why, path) {
            (Some(why), _) => self.refuse(shown, name, why),
            (None, None) => self.refuse(shown, name, Why::OutsideTheFolder),
            (None, Some(p)) => return Some(p),
        }
        None
    }

    /// Copies an entry's bytes, stopping at the limits whatever its header said.
    fn write(&mut self, shown: &str, name: &str, from: &mut impl Read, to: PathBuf) -> Option<PathBuf> {
        let allowed = self.limits.entry_bytes.min(self.limits.total_bytes.saturating_sub(self.bytes));
        let written = copy_at_most(from, &to, allowed);
        match written {
            Ok(Some(n)) => {
                self.entries += 1;
                self.bytes += n;
                Some(to)
            }
            Ok(None) => {
                let _ = std::fs::remove_file(&to);
                let why = if allowed < self.limits.entry_bytes { Why::TooMuch } else { Why::EntryTooBig };
                self.refuse(shown, name, why);
                None
            }
            Err(e) => {
                let _ = std::fs::remove_file(&to);
                self.refuse(shown, &format!("{name} ({e})"), Why::Unreadable);
                None
            }
        }
    }
}

/// The folder an archive inside the hand-in is unpacked to: its name without the archive's
/// extension (`app.tar.gz` → `app/`), `-unpacked` added when that name is taken.
pub(super) fn beside(archive: &Path) -> PathBuf {
    let name = archive.file_name().unwrap_or_default().to_string_lossy();
    let stem = Kind::split(&name).map_or(&name[..], |(_, stem)| stem);
    let dir = archive.with_file_name(stem);
    if dir.exists() {
        archive.with_file_name(format!("{stem}-unpacked"))
    } else {
        dir
    }
}

#[derive(Debug, Clone, Copy)]
enum EntryKind {
    File,
    Link,
    Special,
}

/// `name` as a path under `into`, or None when it would leave it: `..`, a root, a Windows
/// drive or UNC prefix, or a backslash path that Windows would read as one.
fn inside(into: &Path, name: &str) -> Option<PathBuf> {
    let name = name.replace('\\', "/");
    if name.len() >= 2 && name.as_bytes()[1] == b':' {
        return None; // C:/… — a drive, on the machine that made the archive
    }
    let mut path = into.to_path_buf();
    let mut depth = 0;
    for c in Path::new(&name).components() {
        match c {
            Component::Normal(part) => {
                path.push(part);
                depth += 1;
            }
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    (depth > 0).then_some(path)
}

/// Writes at most `limit` bytes; Ok(None) when the entry holds more.
fn copy_at_most(from: &mut impl Read, to: &Path, limit: u64) -> std::io::Result<Option<u64>> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    // create_new: an entry never overwrites another (two entries of one name keep the first).
    let mut out = std::fs::OpenOptions::new().write(true).create_new(true).open(to)?;
    let n = std::io::copy(&mut from.take(limit + 1), &mut out)?;
    out.flush()?;
    Ok((n <= limit).then_some(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_leaves_the_folder_has_no_place_in_it() {
        let into = Path::new("/class/s1");
        assert_eq!(inside(into, "app/Dockerfile"), Some(PathBuf::from("/class/s1/app/Dockerfile")));
        assert_eq!(inside(into, "./a/./b"), Some(PathBuf::from("/class/s1/a/b")));
        for bad in ["../x", "a/../../x", "/etc/passwd", "C:/Windows/x", "c:x", "..\\..\\x", "\\\\server\\share\\x", ""]
        {
            assert_eq!(inside(into, bad), None, "{bad}");
        }
    }
}
