//! One row per student: the project graded by the lab (`check`'s compulsory checks), the report
//! graded by `grade-report` (its points and its bonus), a total, and what was graded — the
//! archive digests, what was found where, what was refused. Written with the csv crate.
//!
//! The total: the project and the report weigh half each of the 100 %, and the report's bonus
//! (the student's own answer to the deletion question) adds up to 50 %. The project's own
//! bonus rows are lab7's deletion on lab7's registry, not the student's work: not counted.

use crate::batch::SubmissionResult;
use crate::intake::{Project, Student};

pub mod evidence;
pub mod moodle;

pub use evidence::{
    same_dockerfiles, same_dockerfiles_markdown, shared_evidence, shared_evidence_markdown, similar_prose,
    similar_prose_markdown, SharedEvidence, SIMILAR_PROSE,
};

/// The shares of the 100 % (`README`, Class workflow).
pub const PROJECT_WEIGHT: f64 = 0.5;
pub const REPORT_WEIGHT: f64 = 0.5;

/// A student's row.
#[derive(Debug, Clone)]
pub struct Row {
    pub student: Student,
    /// The project's grading (`None`: no project found, or the batch stopped before it).
    pub project: Option<SubmissionResult>,
    /// The report's grading (`None`: no report found).
    pub report: Option<SubmissionResult>,
    /// The instructor's word on this student (`--overrides`), applied over lab7's.
    pub overrides: Vec<Override>,
    /// Handed in after the deadline: the penalty taken from the total.
    pub late: Option<Late>,
}

/// The deadline and what each started day after it costs (`--deadline`, `--late-penalty`).
#[derive(Debug, Clone, Copy)]
pub struct LateRule {
    /// In the Moodle site's time zone, as its worksheet writes times.
    pub deadline: time::PrimitiveDateTime,
    /// Percentage points of the total per started day late.
    pub per_day: f64,
    /// The most a late hand-in loses.
    pub max: f64,
}

/// A late hand-in: when, how many started days after the deadline, and the points it costs.
#[derive(Debug, Clone, PartialEq)]
pub struct Late {
    pub submitted: time::PrimitiveDateTime,
    pub started_days: i64,
    pub penalty: f64,
}

impl LateRule {
    /// The penalty for a hand-in at `submitted` (`None`: on time). A day is started by any
    /// minute past the deadline or a full day after it.
    pub fn apply(&self, submitted: time::PrimitiveDateTime) -> Option<Late> {
        let after = submitted - self.deadline;
        if after <= time::Duration::ZERO {
            return None;
        }
        let started_days = (after.whole_seconds() + 86_399) / 86_400;
        Some(Late { submitted, started_days, penalty: (started_days as f64 * self.per_day).min(self.max) })
    }
}

impl std::fmt::Display for Late {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
        let when = self.submitted.format(&fmt).unwrap_or_default();
        write!(
            f,
            "late: handed in {when}, {} started day(s) after the deadline: −{} %",
            self.started_days, self.penalty
        )
    }
}

/// What an override sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The total, in percent.
    Total,
    /// The project's percent.
    Project,
    /// The report's points (of its maximum).
    Report,
    /// The report's bonus points.
    Bonus,
    /// One check's points (of the project's or the report's rubric), the rest recomputed.
    Check(crate::checks::CheckId),
}

impl std::str::FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Target, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "total" => Ok(Target::Total),
            "project" => Ok(Target::Project),
            "report" => Ok(Target::Report),
            "bonus" => Ok(Target::Bonus),
            other => {
                use serde::de::IntoDeserializer;
                let id: Result<crate::checks::CheckId, serde::de::value::Error> =
                    serde::Deserialize::deserialize(other.into_deserializer());
                id.map(Target::Check).map_err(|_| {
                    format!("`{other}` is not what an override sets (total, project, report, bonus, or a check's id such as report_manifest)")
                })
            }
        }
    }
}

/// One line of the overrides file: `student,what,points,reason`.
#[derive(Debug, Clone, PartialEq)]
pub struct Override {
    /// As the file names the student: participant id, name or lab7's key.
    pub student: String,
    pub target: Target,
    pub value: f64,
    pub reason: String,
}

impl std::fmt::Display for Override {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match self.target {
            Target::Check(id) => id.to_string(),
            t => format!("{t:?}").to_lowercase(),
        };
        write!(f, "{what} set to {} by the instructor: {}", self.value, self.reason)
    }
}

impl Override {
    /// Whether it names this student (participant id, lab7's key, or the name in any case).
    pub fn names(&self, s: &Student) -> bool {
        let who = self.student.trim();
        s.participant.is_some_and(|p| p.to_string() == who)
            || s.key == who
            || s.name.to_lowercase() == who.to_lowercase()
    }
}

/// Reads the overrides file; a bad line is an error naming the line and the fix.
pub fn read_overrides(path: &std::path::Path) -> Result<Vec<Override>, crate::Error> {
    let bad = |line: usize, what: String| {
        crate::Error::input(
            format!("{}, line {line}: {what}", path.display()),
            "each line is `student,what,points,reason` (what: total, project, report, bonus or a check's id), under that header",
        )
    };
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_path(path)
        .map_err(|e| bad(1, e.to_string()))?;
    let mut all = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let r = record.map_err(|e| bad(line, e.to_string()))?;
        if r.len() < 4 || r[0].is_empty() || r[3].is_empty() {
            return Err(bad(line, "a student, what, points and a reason are all needed".into()));
        }
        let target = r[1].parse().map_err(|e| bad(line, e))?;
        let value = r[2].replace(',', ".").parse::<f64>().map_err(|e| bad(line, format!("points `{}`: {e}", &r[2])))?;
        all.push(Override { student: r[0].to_string(), target, value, reason: r[3].to_string() });
    }
    Ok(all)
}

fn percent_of(points: f64, max: f64) -> f64 {
    if max > 0.0 {
        points / max * 100.0
    } else {
        0.0
    }
}

impl Row {
    /// The instructor's value for `target`: the last line of the file that sets it.
    fn overridden(&self, target: Target) -> Option<f64> {
        self.overrides.iter().rev().find(|o| o.target == target).map(|o| o.value)
    }

    fn report_max(&self) -> f64 {
        self.report.as_ref().map_or(100.0, |r| r.max_points)
    }

    /// A part's points (its compulsory ones, or its bonus) with any check the instructor set
    /// counted at their value; `None` when the part was not graded.
    fn points_of(&self, part: Option<&SubmissionResult>, bonus: bool) -> Option<f64> {
        let r = part?;
        let set = |id| self.overridden(Target::Check(id));
        if !r.checks.iter().any(|c| set(c.id).is_some()) {
            return Some(if bonus { r.bonus_points } else { r.points });
        }
        Some(r.checks.iter().filter(|c| c.bonus == bonus).map(|c| set(c.id).unwrap_or(c.points)).sum())
    }

    /// The project's percent of its compulsory points (0 when it was not graded).
    pub fn project_percent(&self) -> f64 {
        self.overridden(Target::Project).unwrap_or_else(|| {
            let max = self.project.as_ref().map_or(0.0, |p| p.max_points);
            percent_of(self.points_of(self.project.as_ref(), false).unwrap_or(0.0), max)
        })
    }

    pub fn report_points(&self) -> Option<f64> {
        self.overridden(Target::Report).or(self.points_of(self.report.as_ref(), false))
    }

    pub fn bonus_points(&self) -> Option<f64> {
        self.overridden(Target::Bonus).or(self.points_of(self.report.as_ref(), true))
    }

    pub fn report_percent(&self) -> f64 {
        percent_of(self.report_points().unwrap_or(0.0), self.report_max())
    }

    /// The bonus, in percent of the report's compulsory points (the lab's "+50 %").
    pub fn bonus_percent(&self) -> f64 {
        percent_of(self.bonus_points().unwrap_or(0.0), self.report_max())
    }

    pub fn total_percent(&self) -> f64 {
        let total = self.overridden(Target::Total).unwrap_or_else(|| {
            let earned =
                PROJECT_WEIGHT * self.project_percent() + REPORT_WEIGHT * self.report_percent() + self.bonus_percent();
            (earned - self.late.as_ref().map_or(0.0, |l| l.penalty)).max(0.0)
        });
        (total * 100.0).round() / 100.0
    }

    /// The grade in one phrase, overrides and late penalty included, for the worksheet's comment
    /// and the feedback file: `total 135.00 % (project 100 %, report 90/100, bonus 50)`.
    pub fn summary(&self) -> String {
        let report = self.report_points().map_or("—".into(), |x| format!("{x}/{}", self.report_max()));
        let bonus = self.bonus_points().map_or("—".into(), |x| x.to_string());
        format!(
            "total {:.2} % (project {:.0} %, report {report}, bonus {bonus})",
            self.total_percent(),
            self.project_percent()
        )
    }

    /// Why the instructor should look: what was not found, an error, a review flag.
    pub fn attention(&self) -> String {
        let mut why = Vec::new();
        match &self.student.project {
            Project::Found { .. } => {}
            Project::Missing if !self.student.links.is_empty() && self.student.archives.is_empty() && self.student.refused.is_empty() => {
                why.push("no Dockerfile, a repository link instead (list it in a roster CSV to have it cloned and graded)".into())
            }
            Project::Missing => why.push("no Dockerfile found".into()),
            Project::Ambiguous(all) => why.push(format!(
                "{} Dockerfiles could be the lab's: lab7 does not pick one — check by hand, or name it with --file where the names differ",
                all.len()
            )),
        }
        for r in [&self.project, &self.report].into_iter().flatten() {
            why.extend(r.error.iter().map(|e| e.lines().next().unwrap_or_default().to_string()));
            why.extend(r.review.clone());
        }
        if self.student.report.is_none() {
            why.push("no report found".into());
        }
        if let Some(first) = self.student.refused.first() {
            why.push(format!("{} refused (first: {first})", self.student.refused.len()));
        }
        why.extend(self.late.iter().map(|l| l.to_string()));
        why.extend(self.overrides.iter().map(|o| o.to_string()));
        why.join("; ")
    }
}

/// The CSV's columns, in order.
pub const COLUMNS: [&str; 14] = [
    "student",
    "participant",
    "project_verdict",
    "project_percent",
    "report_points",
    "report_max",
    "report_bonus",
    "total_percent",
    "graded",
    "found",
    "links",
    "refused",
    "project_failed_checks",
    "attention",
];

/// The class's rows as CSV (RFC 4180 quoting: names with commas and diacritics survive).
pub fn csv(rows: &[Row]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(COLUMNS)?;
    for r in rows {
        let s = &r.student;
        let verdict = r.project.as_ref().map_or("not graded".into(), |p| crate::batch::verdict_word(p).to_string());
        w.write_record([
            s.name.clone(),
            s.participant.map(|p| p.to_string()).unwrap_or_default(),
            verdict,
            format!("{:.2}", r.project_percent()),
            r.report_points().map(|x| x.to_string()).unwrap_or_default(),
            r.report.as_ref().map(|x| x.max_points.to_string()).unwrap_or_default(),
            r.bonus_points().map(|x| x.to_string()).unwrap_or_default(),
            format!("{:.2}", r.total_percent()),
            s.archives.iter().map(|(a, d)| format!("{a} {d}")).collect::<Vec<_>>().join("; "),
            s.found(),
            s.links.join(" "),
            s.refused.iter().map(|x| x.to_string()).collect::<Vec<_>>().join("; "),
            r.project.as_ref().map(|p| p.failed_check_names().join(" ")).unwrap_or_default(),
            r.attention(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A Markdown table of the class, for the terminal and the summary file.
pub fn markdown(rows: &[Row]) -> String {
    let mut o = String::from("| Student | Project | Report | Bonus | Total | Attention |\n|---|---|---|---|---|---|\n");
    for r in rows {
        let report = r.report_points().map_or("—".into(), |x| format!("{x}/{}", r.report_max()));
        let bonus = r.bonus_points().map_or("—".into(), |x| x.to_string());
        o += &format!(
            "| {} | {:.0} % | {report} | {bonus} | {:.2} % | {} |\n",
            r.student.name.replace('|', "\\|"),
            r.project_percent(),
            r.total_percent(),
            r.attention().replace('|', "\\|")
        );
    }
    o
}
