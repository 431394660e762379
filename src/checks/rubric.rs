//! The rubric: the lab's requirements with their points, titles and docs, as an instructor
//! writes them (`rubric.toml`, `rubric-report.toml`), and the names the lab asks for.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{CheckId, Names};
use crate::reference::ImageRef;
use crate::Error;

/// One rubric entry, as the instructor wrote it in the rubric file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RubricEntry {
    pub id: CheckId,
    pub title: String,
    pub points: f64,
    #[serde(default)]
    pub bonus: bool,
    pub docs: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rubric {
    /// The image and the cache repository the lab asks for (LAB.md: `lab:cachetest`,
    /// `cachedata1`); a rubric may name others. Graded logs and reports are held to them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    #[serde(rename = "check")]
    pub checks: Vec<RubricEntry>,
    /// The class's deadline and what lateness costs (a report rubric's `[late]`), for
    /// `lab7 batch` on a Moodle class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late: Option<LateSettings>,
}

/// `[late]`: `deadline = "2026-12-07 23:59"` (the Moodle site's time zone),
/// `percent_per_started_day = 10`, `max_percent = 50` (default 100).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LateSettings {
    pub deadline: String,
    pub percent_per_started_day: f64,
    #[serde(default = "all")]
    pub max_percent: f64,
}

fn all() -> f64 {
    100.0
}

/// A deadline as written in a rubric or `--deadline`: `YYYY-MM-DD HH:MM`, local to the site.
pub fn parse_deadline(s: &str) -> Result<time::PrimitiveDateTime, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    time::PrimitiveDateTime::parse(s.trim(), &fmt).map_err(|e| format!("`{s}`: {e} (write it as 2026-12-07 23:59)"))
}

pub const DEFAULT_RUBRIC: &str = include_str!("../../rubric.toml");
pub const DEFAULT_REPORT_RUBRIC: &str = include_str!("../../rubric-report.toml");

/// What a rubric grades: the lab run (or its logs), or the report handed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RubricKind {
    Lab,
    Report,
}

impl Rubric {
    pub fn default_rubric() -> Rubric {
        Rubric::parse(DEFAULT_RUBRIC, "built-in rubric.toml").expect("the built-in rubric parses")
    }

    pub fn default_report_rubric() -> Rubric {
        Rubric::parse(DEFAULT_REPORT_RUBRIC, "built-in rubric-report.toml").expect("the built-in report rubric parses")
    }

    pub fn load(path: &Path) -> Result<Rubric, Error> {
        Rubric::load_for(path, RubricKind::Lab)
    }

    /// A rubric file for one kind of grading: a lab rubric naming a report requirement (or
    /// the other way round) is refused, naming the command it belongs to.
    pub fn load_for(path: &Path, kind: RubricKind) -> Result<Rubric, Error> {
        let text = crate::lab::read_small(path, 1 << 20)
            .map_err(|e| Error::input(format!("{}: {e}", path.display()), "give --rubric a readable TOML file"))?;
        let rubric = Rubric::parse(&text, &path.display().to_string())?;
        if let Some(c) = rubric.checks.iter().find(|c| c.id.is_report() != (kind == RubricKind::Report)) {
            let (this, other) = match kind {
                RubricKind::Lab => ("the lab's", "`lab7 grade-report --rubric` (see rubric-report.toml)"),
                RubricKind::Report => ("the report's", "`check`, `grade-logs` or `audit --rubric` (see rubric.toml)"),
            };
            return Err(Error::input(
                format!("{}: check `{}` is not one of {this} requirements", path.display(), c.id),
                format!("give this rubric to {other}"),
            ));
        }
        Ok(rubric)
    }

    /// Unknown check ids are refused by serde, which lists the known ones.
    pub fn parse(text: &str, origin: &str) -> Result<Rubric, Error> {
        let rubric: Rubric = toml::from_str(text).map_err(|e| Error::input_only(format!("{origin}: {e}")))?;
        if let Some(Err(e)) = rubric.late.as_ref().map(|l| parse_deadline(&l.deadline)) {
            return Err(Error::input(format!("{origin}: [late] deadline {e}"), "deadline = \"2026-12-07 23:59\""));
        }
        rubric.validate_points().map_err(|(what, fix)| Error::input(format!("{origin}: {what}"), fix))?;
        for (key, name) in [("image", &rubric.image), ("cache", &rubric.cache)] {
            if let Some(Err(e)) = name.as_deref().map(str::parse::<ImageRef>) {
                return Err(Error::input(
                    format!("{origin}: {key} = {e}"),
                    format!(
                        "give {key} as REPO[:TAG], e.g. {key} = \"{}\"",
                        if key == "image" { "lab:cachetest" } else { "cachedata1" }
                    ),
                ));
            }
        }
        Ok(rubric)
    }

    /// The names graded: the rubric's, else the lab's.
    pub fn names(&self) -> Names {
        let lab = Names::default();
        let named = |n: &Option<String>| n.as_deref().and_then(|n| n.parse().ok());
        Names { image: named(&self.image).unwrap_or(lab.image), cache: named(&self.cache).unwrap_or(lab.cache) }
    }

    /// Points are finite and not negative; the compulsory ones sum to 100 (the lab's 100 %).
    /// The error is (what is wrong, the fix).
    fn validate_points(&self) -> Result<(), (String, String)> {
        if let Some(bad) = self.checks.iter().find(|c| !c.points.is_finite() || c.points < 0.0) {
            return Err((
                format!("check `{}` has points = {}", bad.id, bad.points),
                "give every check a number of points, 0 or more".into(),
            ));
        }
        let compulsory: f64 = self.checks.iter().filter(|c| !c.bonus).map(|c| c.points).sum();
        if (compulsory - 100.0).abs() > 1e-9 {
            return Err((
                format!("the compulsory checks sum to {compulsory} points, not 100"),
                "change their points so that they sum to 100 (bonus checks count on top)".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_rubric_is_100_compulsory_and_50_bonus() {
        let r = Rubric::default_rubric();
        let sum = |bonus: bool| r.checks.iter().filter(|c| c.bonus == bonus).map(|c| c.points).sum::<f64>();
        assert_eq!((sum(false), sum(true)), (100.0, 50.0));
        let ids: Vec<CheckId> = r.checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, CheckId::ALL);
    }

    #[test]
    fn a_rubric_with_an_unknown_check_names_it_and_the_known_ones() {
        let text = "[[check]]\nid = \"cache_is_small\"\ntitle = \"t\"\npoints = 5\ndocs = \"d\"\n";
        let e = Rubric::parse(text, "mine.toml").unwrap_err().to_string();
        assert!(e.contains("mine.toml") && e.contains("cache_is_small") && e.contains("builds_succeed"), "{e}");
    }

    #[test]
    fn a_rubric_whose_points_do_not_add_up_is_refused() {
        let entry = |id: &str, points: &str| {
            format!("[[check]]\nid = \"{id}\"\ntitle = \"t\"\npoints = {points}\ndocs = \"d\"\n")
        };
        let e = Rubric::parse(&entry("builds_succeed", "90"), "mine.toml").unwrap_err().to_string();
        assert!(e.contains("sum to 90") && e.contains("mine.toml"), "{e}");
        let e = Rubric::parse(&(entry("builds_succeed", "100") + &entry("image_intact", "nan")), "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("image_intact") && e.contains("NaN"), "{e}");
        let e = Rubric::parse(&(entry("builds_succeed", "110") + &entry("cache_exported", "-10")), "m.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cache_exported"), "{e}");
        assert!(Rubric::parse(&entry("builds_succeed", "100"), "m.toml").is_ok());
    }

    #[test]
    fn a_malformed_rubric_says_where() {
        let e = Rubric::parse("[[check]]\nid = 3\n", "mine.toml").unwrap_err().to_string();
        assert!(e.contains("mine.toml"), "{e}");
    }
}
