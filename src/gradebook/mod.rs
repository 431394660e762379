//! One row per student: the project graded by the lab (`check`'s compulsory checks), the report
//! graded by `grade-report` (its points and its bonus), a total, and what was graded — the
//! archive digests, what was found where, what was refused. Written with the csv crate.
//!
//! The total: the project and the report weigh half each of the 100 %, and the report's bonus
//! (the student's own answer to the deletion question) adds up to 50 %. The project's own
//! bonus rows are lab7's deletion on lab7's registry, not the student's work: not counted.

use crate::batch::SubmissionResult;
use crate::intake::{Project, Student};

pub mod moodle;

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
}

fn percent_of(points: f64, max: f64) -> f64 {
    if max > 0.0 {
        points / max * 100.0
    } else {
        0.0
    }
}

impl Row {
    /// The project's percent of its compulsory points (0 when it was not graded).
    pub fn project_percent(&self) -> f64 {
        self.project.as_ref().map_or(0.0, |p| percent_of(p.points, p.max_points))
    }

    pub fn report_percent(&self) -> f64 {
        self.report.as_ref().map_or(0.0, |r| percent_of(r.points, r.max_points))
    }

    /// The bonus, in percent of the report's compulsory points (the lab's "+50 %").
    pub fn bonus_percent(&self) -> f64 {
        self.report.as_ref().map_or(0.0, |r| percent_of(r.bonus_points, r.max_points))
    }

    pub fn total_percent(&self) -> f64 {
        let total =
            PROJECT_WEIGHT * self.project_percent() + REPORT_WEIGHT * self.report_percent() + self.bonus_percent();
        (total * 100.0).round() / 100.0
    }

    /// Why the instructor should look: what was not found, an error, a review flag.
    pub fn attention(&self) -> String {
        let mut why = Vec::new();
        match &self.student.project {
            Project::Found { .. } => {}
            Project::Missing if !self.student.links.is_empty() => {
                why.push("no Dockerfile, a link instead (lab7 does not clone repositories yet: grade it by hand)".into())
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
        if !self.student.refused.is_empty() {
            why.push(format!("{} entries refused", self.student.refused.len()));
        }
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
            r.report.as_ref().map(|x| x.points.to_string()).unwrap_or_default(),
            r.report.as_ref().map(|x| x.max_points.to_string()).unwrap_or_default(),
            r.report.as_ref().map(|x| x.bonus_points.to_string()).unwrap_or_default(),
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
        let report = r.report.as_ref().map_or("—".into(), |x| format!("{}/{}", x.points, x.max_points));
        let bonus = r.report.as_ref().map_or("—".into(), |x| x.bonus_points.to_string());
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
