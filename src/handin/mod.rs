//! The student's hand-in (the lab report, "sprawozdanie"): its text, the pieces of evidence
//! the lab asks it to show, and how they are graded and cross-checked.
//!
//! `extract` reads the file (Markdown, text, PDF, DOCX) into located lines; `pieces` finds
//! what the real tools printed among them; `grade` grades each requirement of the report
//! rubric (`rubric-report.toml`) and cross-checks the pieces against each other.

pub mod docx;
pub mod extract;
pub mod grade;
pub mod isolated;
pub mod pieces;

use std::path::Path;

use crate::checks::Rubric;
use crate::diagnosis::Diagnosis;
use crate::report::{BuildSummary, Report};
use crate::Error;
pub use extract::{HandInFormat, Line, Location};
pub use pieces::{Pieces, Quote};

/// A report as read: its lines and the pieces found in them.
#[derive(Debug, Clone)]
pub struct HandIn {
    pub format: HandInFormat,
    pub lines: Vec<Line>,
    pub pieces: Pieces,
}

impl HandIn {
    /// Reads a report file; an unreadable one is an input error (exit 2).
    pub fn read(path: &Path) -> Result<HandIn, Error> {
        let (format, lines) = extract::read(path)?;
        Ok(HandIn::of_lines(format, lines))
    }

    pub fn of_lines(format: HandInFormat, mut lines: Vec<Line>) -> HandIn {
        // Output pasted from a CI job keeps the runner's timestamps; what follows them is read.
        for l in &mut lines {
            let rest = crate::builds::log_text::without_timestamp(&l.text);
            if rest.len() != l.text.len() {
                l.text = rest.to_string();
            }
        }
        let pieces = Pieces::find(&lines);
        HandIn { format, lines, pieces }
    }

    /// Where a located line is among the report's lines.
    pub fn index_of(&self, at: Location) -> Option<usize> {
        self.lines.iter().position(|l| l.at == at)
    }

    /// The problems and expected messages diagnosed; their evidence lines are numbered as the
    /// report's lines were read (the order `--show-text` prints).
    pub fn diagnoses(&self) -> Vec<Diagnosis> {
        self.pieces.diagnoses.iter().map(|(d, _)| d.clone()).collect()
    }

    /// The digests the student's own runs produced, each with the line that shows it: the
    /// pushed index, platform and attestation manifests, the cache manifest, and the listing's.
    /// They are unique to one run (configs hold the build's times), so the same one in two
    /// students' reports is shared evidence. Base images' digests are not among them: every
    /// student pulls the same.
    pub fn produced_digests(&self) -> Vec<(crate::reference::Digest, Quote)> {
        let mut all: Vec<(crate::reference::Digest, Quote)> = Vec::new();
        for b in &self.pieces.builds {
            all.extend(b.index_digests());
            all.extend(b.manifest_digests());
            all.extend(b.attestation_digests());
            all.extend(b.cache_manifest());
        }
        for l in &self.pieces.listings {
            all.extend(l.digest.clone());
            all.extend(l.manifests.iter().cloned());
        }
        let mut seen = std::collections::HashSet::new();
        all.retain(|(d, _)| seen.insert(d.clone()));
        all
    }

    /// Whether line `i` is the student's own words: not in a code block, not in a pasted
    /// build, not pasted output.
    pub fn is_own_words(&self, i: usize) -> bool {
        !self.pieces.in_code.get(i).copied().unwrap_or(false)
            && !self.pieces.builds.iter().any(|b| (b.span.0..=b.span.1).contains(&i))
            && self.lines.get(i).is_some_and(|l| !pieces::is_output(&l.text))
    }

    /// The student's own words (`is_own_words`), lower-cased, as five-word runs (for telling
    /// two reports' prose alike).
    pub fn prose_shingles(&self) -> std::collections::HashSet<String> {
        let words: Vec<String> = (0..self.lines.len())
            .filter(|&i| self.is_own_words(i))
            .flat_map(|i| self.lines[i].text.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>())
            .collect();
        words.windows(5).map(|w| w.join(" ")).collect()
    }

    /// The report's grade: each requirement with its quotes, the pasted builds summarised,
    /// the problems diagnosed.
    pub fn grade(&self, subject: &str, rubric: &Rubric) -> Report {
        let builds = self
            .pieces
            .builds
            .iter()
            .enumerate()
            .map(|(i, b)| BuildSummary::of_log(u8::try_from(i + 1).unwrap_or(u8::MAX), &b.log, None, None))
            .collect();
        let graded = grade::grade(self, rubric);
        Report::new("grade-report", subject, graded.checks, builds, None)
            .with_diagnoses(self.diagnoses())
            .with_review(graded.review)
    }
}
