//! Known failures, diagnosed like a teaching assistant: each is a pattern over what a student's
//! tools printed (a build's output, a registry's answer, a command transcript), with its cause,
//! the fix as the commands a student would type, and the documentation page.
//!
//! The catalogue is data (`catalogue.toml`, compiled in): a maintainer adds an entry, with the
//! real output it was written from under `tests/fixtures/diagnoses/`, without touching the
//! grading logic. `tests/diagnoses.rs` holds every entry to its fixture.

use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::checks::CheckId;

/// One known failure.
#[derive(Debug, Clone, Deserialize)]
pub struct Entry {
    pub id: String,
    /// A regex over one line of the (normalised) text.
    pattern: String,
    /// A regex one of the lines after the match must match, before the next command of a
    /// transcript (`$ …`): a command is diagnosed by what it answered.
    #[serde(default)]
    followed_by: Option<String>,
    /// A regex an earlier line must match, where `{digest}` stands for the digest the pattern
    /// captured (`(?P<digest>sha256:…)`): a blob asked for after garbage-collect deleted it.
    #[serde(default)]
    preceded_by: Option<String>,
    /// What the student sees when only this would match: a lower-priority reading of the
    /// same line (build 1's expected import miss) is not a problem.
    #[serde(default)]
    pub expected: bool,
    /// Nothing the tools call an error: an outcome the student may not have noticed (GC keeping
    /// the cache). `explain` shows it; a report is not asked to explain it as a problem met.
    #[serde(default)]
    pub silent: bool,
    /// The requirement it bears on.
    pub check: CheckId,
    pub cause: String,
    pub fix: Vec<String>,
    pub docs: String,
    /// A regex a student's explanation must match to explain this problem's cause (a stale 200
    /// blamed on "blobs kept forever" is met, not explained).
    #[serde(default)]
    pub explained_by: Option<String>,
    /// The captured output the entry was written from, under tests/fixtures/diagnoses/.
    pub fixture: String,
}

#[derive(Debug, Deserialize)]
struct Catalogue {
    diagnosis: Vec<Entry>,
}

struct Compiled {
    entry: Entry,
    regex: Regex,
    followed_by: Option<Regex>,
}

impl Compiled {
    /// The line at `i` matches, and the answer after it too when the entry asks for one.
    fn matches(&self, lines: &[&str], i: usize) -> bool {
        if !self.regex.is_match(lines[i]) {
            return false;
        }
        let answered = match &self.followed_by {
            Some(then) => lines[i + 1..].iter().take_while(|l| !l.starts_with("$ ")).any(|l| then.is_match(l)),
            None => true,
        };
        answered && self.preceded(lines, i)
    }

    /// The earlier line the entry asks for, about the digest this line names.
    fn preceded(&self, lines: &[&str], i: usize) -> bool {
        let Some(template) = &self.entry.preceded_by else { return true };
        let Some(digest) = self.regex.captures(lines[i]).and_then(|c| c.name("digest")) else { return false };
        let before = template.replace("{digest}", &regex::escape(digest.as_str()));
        // Compiled per match: the template is checked when the catalogue loads, and a match is rare.
        Regex::new(&before).is_ok_and(|re| lines[..i].iter().any(|l| re.is_match(l)))
    }
}

static CATALOGUE: LazyLock<Vec<Compiled>> = LazyLock::new(|| {
    let c: Catalogue = toml::from_str(include_str!("catalogue.toml")).expect("catalogue.toml parses");
    c.diagnosis
        .into_iter()
        .map(|entry| {
            let compile = |p: &str| Regex::new(p).unwrap_or_else(|e| panic!("{}: {e}", entry.id));
            let regex = compile(&entry.pattern);
            let followed_by = entry.followed_by.as_deref().map(compile);
            if let Some(t) = &entry.preceded_by {
                compile(&t.replace("{digest}", "sha256:0"));
            }
            if let Some(words) = &entry.explained_by {
                compile(words);
            }
            Compiled { entry, regex, followed_by }
        })
        .collect()
});

/// Every entry, in the catalogue's order.
pub fn catalogue() -> impl Iterator<Item = &'static Entry> {
    CATALOGUE.iter().map(|c| &c.entry)
}

/// A diagnosis: the entry, and the lines that show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    pub id: String,
    pub check: CheckId,
    /// An expected message (build 1 finding no cache yet), not a problem.
    pub expected: bool,
    /// An outcome nothing reported as an error (see `Entry::silent`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub silent: bool,
    pub cause: String,
    pub fix: Vec<String>,
    pub docs: String,
    /// What an explanation of it must name (`Entry::explained_by`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained_by: Option<String>,
    /// The lines it was read from: (1-based line number, text).
    pub evidence: Vec<(usize, String)>,
}

/// How many evidence lines a diagnosis keeps (a build prints the same error in several places).
const MAX_EVIDENCE: usize = 3;

/// Diagnoses `text` (already decoded and normalised: see `builds::log_text`), each known
/// failure once, with up to three evidence lines, in the catalogue's order.
pub fn diagnose(text: &str) -> Vec<Diagnosis> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<Diagnosis> = Vec::new();
    for c in CATALOGUE.iter() {
        let evidence: Vec<(usize, String)> = (0..lines.len())
            .filter(|i| c.matches(&lines, *i))
            .map(|i| (i + 1, lines[i].trim().to_string()))
            .take(MAX_EVIDENCE)
            .collect();
        if evidence.is_empty() {
            continue;
        }
        let e = &c.entry;
        out.push(Diagnosis {
            id: e.id.clone(),
            check: e.check,
            expected: e.expected,
            silent: e.silent,
            cause: e.cause.clone(),
            fix: e.fix.clone(),
            docs: e.docs.clone(),
            explained_by: e.explained_by.clone(),
            evidence,
        });
    }
    out
}

/// The problems among the diagnoses (not the expected messages).
pub fn problems(diagnoses: &[Diagnosis]) -> impl Iterator<Item = &Diagnosis> {
    diagnoses.iter().filter(|d| !d.expected)
}

impl Diagnosis {
    /// The diagnosis as a block of text: cause, evidence, fix, docs.
    pub fn text(&self) -> String {
        let mut o = format!("{}: {}\n", self.id, self.cause);
        for (n, l) in &self.evidence {
            o += &format!("  line {n}: {l}\n");
        }
        if !self.expected {
            for f in &self.fix {
                o += &format!("  fix: {f}\n");
            }
        }
        o += &format!("  docs: {}\n", self.docs);
        o
    }
}
