//! Each requirement of the report graded from its pieces, with the lines it rests on; the
//! cross-checks that tell pieces of one session from pieces put together (`consistency`), and
//! the bonus deletion judged by what it did (`bonus`).

mod bonus;
mod consistency;

use std::sync::LazyLock;

use regex::Regex;

use bonus::bonus;
use consistency::{consistent, Crosses};

use super::pieces::{PastedBuild, Pieces, Quote};
use super::HandIn;
use crate::builds::VertexState;
use crate::checks::{self, CheckId, CheckOutcome, Evidence, Names, QuotedLine, Rubric, RubricEntry, Status};
use crate::platform::Platform;

/// What one requirement found: the share of its points earned, what was seen (the missing
/// part said plainly), the quoted lines, and the fix when something is missing.
struct Graded {
    share: f64,
    expected: &'static str,
    seen: String,
    quotes: Vec<Quote>,
    fix: Option<String>,
}

impl Graded {
    fn full(expected: &'static str, seen: String, quotes: Vec<Quote>) -> Graded {
        Graded { share: 1.0, expected, seen, quotes, fix: None }
    }

    fn part(share: f64, expected: &'static str, seen: String, quotes: Vec<Quote>, fix: impl Into<String>) -> Graded {
        Graded { share, expected, seen, quotes, fix: Some(fix.into()) }
    }
}

/// A report graded: each requirement, and why an instructor should look at it by hand.
pub struct Grading {
    pub checks: Vec<CheckOutcome>,
    /// `evidence inconsistent: check by hand — …` when pieces of the report contradict each other.
    pub review: Option<String>,
}

/// Grades every rubric entry (the report rubric's ids) against the hand-in. Evidence that the
/// cross-checks show not to hold earns nothing for what it was to show.
pub fn grade(h: &HandIn, rubric: &Rubric) -> Grading {
    let builds = LabBuilds::of(&h.pieces);
    let crosses = Crosses::of(&h.pieces, &builds);
    let checks = rubric
        .checks
        .iter()
        .map(|entry| {
            let g = match entry.id {
                CheckId::ReportTwoBuilds => two_builds(&builds),
                CheckId::ReportManifest => manifest(&h.pieces),
                CheckId::ReportCacheEvidence => cache_evidence(&h.pieces, &builds, rubric.names()),
                CheckId::ReportProblemsExplained => problems_explained(h),
                CheckId::ReportConsistent => consistent(&crosses),
                CheckId::ReportBonusDeletion => bonus(h, &builds),
                _ => return skipped(entry),
            };
            outcome(entry, crosses.void_unsupported(entry.id, g))
        })
        .collect();
    Grading { checks, review: crosses.review() }
}

fn skipped(entry: &RubricEntry) -> CheckOutcome {
    CheckOutcome {
        id: entry.id,
        title: entry.title.clone(),
        status: Status::Skipped,
        points: 0.0,
        max_points: entry.points,
        bonus: entry.bonus,
        expected: String::new(),
        seen: "not part of grading a report".into(),
        fix: None,
        docs: entry.docs.clone(),
        quotes: Vec::new(),
    }
}

fn outcome(entry: &RubricEntry, g: Graded) -> CheckOutcome {
    let pass = g.share >= 1.0 - 1e-9;
    CheckOutcome {
        id: entry.id,
        title: entry.title.clone(),
        status: if pass { Status::Pass } else { Status::Fail },
        // Half points are kept to two decimals: 15 × 2/3 is 10, not 9.999….
        points: (entry.points * g.share.clamp(0.0, 1.0) * 100.0).round() / 100.0,
        max_points: entry.points,
        bonus: entry.bonus,
        expected: g.expected.into(),
        seen: g.seen,
        fix: if pass { None } else { g.fix },
        docs: entry.docs.clone(),
        quotes: g.quotes.into_iter().map(|q| QuotedLine { at: q.at.to_string(), text: q.text }).collect(),
    }
}

/// The lab's two builds among the outputs pasted: build 1 is the first, build 2 the next one
/// after it. Failed attempts a student pasted as problems are passed over when two builds
/// that got to the end are there.
struct LabBuilds<'a> {
    all: &'a [PastedBuild],
    first: Option<&'a PastedBuild>,
    second: Option<&'a PastedBuild>,
}

impl<'a> LabBuilds<'a> {
    fn of(p: &'a Pieces) -> LabBuilds<'a> {
        let finished: Vec<&PastedBuild> = p.builds.iter().filter(|b| b.log.first_failure().is_none()).collect();
        let chosen: Vec<&PastedBuild> = if finished.len() >= 2 { finished } else { p.builds.iter().collect() };
        LabBuilds { all: &p.builds, first: chosen.first().copied(), second: chosen.get(1).copied() }
    }
}

fn where_is(b: &PastedBuild) -> String {
    format!("{} to {}", b.first.at, b.last.at)
}

fn two_builds(b: &LabBuilds) -> Graded {
    const EXPECTED: &str =
        "the output of build 1 and of build 2 (`docker buildx build … --progress=plain`), pasted whole";
    match (b.first, b.second) {
        (Some(one), Some(two)) => Graded::full(
            EXPECTED,
            format!(
                "{} build outputs; build 1 at {} ({} steps), build 2 at {} ({} steps)",
                b.all.len(),
                where_is(one),
                one.log.vertices.len(),
                where_is(two),
                two.log.vertices.len()
            ),
            vec![one.first.clone(), two.first.clone()],
        ),
        (Some(one), None) => Graded::part(
            0.5,
            EXPECTED,
            format!("only one build's output found (at {})", where_is(one)),
            vec![one.first.clone()],
            "paste the whole output of the second build too (after `docker buildx prune -a -f`)",
        ),
        _ => Graded::part(
            0.0,
            EXPECTED,
            "no build output found (no `#N …` or `=> …` lines of BuildKit)".into(),
            Vec::new(),
            "paste each build's whole output as text (a screenshot cannot be checked), e.g. from `--progress=plain 2>&1 | tee build1.txt`",
        ),
    }
}

fn manifest(p: &Pieces) -> Graded {
    const EXPECTED: &str = "`docker buildx imagetools inspect` (or `docker manifest inspect`) of lab:cachetest listing linux/amd64 and linux/arm64";
    let Some(best) = p.listing() else {
        return Graded::part(
            0.0,
            EXPECTED,
            "no manifest listing found".into(),
            Vec::new(),
            "paste the output of `docker buildx imagetools inspect registry7:5000/lab:cachetest`",
        );
    };
    let listed: Vec<&Platform> = best.platforms.iter().map(|(p, _)| p).collect();
    let missing: Vec<Platform> =
        Platform::lab_targets().into_iter().filter(|t| !listed.iter().any(|p| p.matches(t))).collect();
    let mut quotes = vec![best.first.clone()];
    quotes.extend(best.platforms.iter().map(|(_, q)| q.clone()));
    let names = listed.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ");
    if missing.is_empty() {
        return Graded::full(EXPECTED, format!("listing at {} names {names}", best.first.at), quotes);
    }
    Graded::part(
        0.0,
        EXPECTED,
        format!(
            "listing at {} names {}; {} missing",
            best.first.at,
            if names.is_empty() { "no platform".into() } else { names },
            missing.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(", ")
        ),
        quotes,
        "build with `--platform linux/amd64,linux/arm64` and paste the listing of the image that build pushed",
    )
}

/// The prune between build 1 and build 2, if the report shows one.
fn prune_between<'a>(p: &'a Pieces, b: &LabBuilds) -> Option<&'a Quote> {
    let (one, two) = (b.first?, b.second?);
    p.prunes.iter().find(|(i, _)| *i > one.span.1 && *i < two.span.0).map(|(_, q)| q)
}

fn cache_evidence(p: &Pieces, b: &LabBuilds, names: Names) -> Graded {
    const EXPECTED: &str = "build 1 tries to import the cache; build 2 imports it from registry7 and shows CACHED on both platforms after the builder was pruned; both export it";
    let (Some(one), Some(two)) = (b.first, b.second) else {
        return Graded::part(
            0.0,
            EXPECTED,
            "needs two builds' output: not there".into(),
            Vec::new(),
            "paste both builds' whole output",
        );
    };
    // The lab's own checks, read from the two pasted logs as `grade-logs` reads them.
    let rubric = Rubric::default_rubric();
    let ev = Evidence { build1: Some((&one.log, None)), build2: Some((&two.log, None)), names, ..Evidence::default() };
    let parts = [CheckId::CacheImportedFromRegistry, CheckId::CachedStepsBothPlatforms, CheckId::CacheExported];
    let outcomes: Vec<CheckOutcome> =
        checks::evaluate(&rubric, &ev).into_iter().filter(|o| parts.contains(&o.id)).collect();
    let pruned = prune_between(p, b);
    let mut seen = Vec::new();
    let mut passed = 0.0;
    for o in &outcomes {
        let mut ok = o.status == Status::Pass;
        let mut text = o.seen.clone();
        if o.id == CheckId::CachedStepsBothPlatforms && ok && pruned.is_none() {
            ok = false;
            text = format!("{text}, but not proven: no `docker buildx prune -a -f` between the builds, so the CACHED steps may come from the builder's own cache");
        }
        passed += f64::from(u8::from(ok));
        seen.push(format!("{} {}", if ok { "✓" } else { "✗" }, text));
    }
    let mut quotes: Vec<Quote> = [
        one.quote("importing cache manifest"),
        two.quote("importing cache manifest"),
        cached_quote(two, &Platform::linux_amd64()),
        cached_quote(two, &Platform::linux_arm64()),
        one.quote("writing cache"),
        two.quote("writing cache"),
    ]
    .into_iter()
    .flatten()
    .collect();
    quotes.extend(pruned.cloned());
    let share = passed / outcomes.len().max(1) as f64;
    let fix = "paste both builds whole: build 1's `importing cache manifest` attempt, build 2's import and its CACHED steps, `exporting cache to registry` in both, and the `docker buildx prune -a -f` run between them";
    Graded { share, expected: EXPECTED, seen: seen.join("; "), quotes, fix: Some(fix.into()) }
}

/// A CACHED line of `platform` in a build (plain: the vertex's name line; tty: the `=> CACHED` line).
fn cached_quote(b: &PastedBuild, platform: &Platform) -> Option<Quote> {
    let v = b
        .log
        .steps()
        .find(|(v, s)| v.state == VertexState::Cached && s.platform.as_ref().is_some_and(|p| p.matches(platform)))?
        .0;
    b.quote(&v.name)
}

static FIX_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(fix|fixed|solution|solved|resolved|instead|workaround|to avoid|switch|created|rozwiązani|rozwiązał|naprawi|poprawi|zamiast|zmienił|utworzył|użył|należy)").unwrap()
});
static DOCS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^https?://(docs\.docker\.com|distribution\.github\.io|github\.com/(moby|docker|distribution)/|docker-docs\.|containerd\.io|kubernetes\.io)").unwrap()
});

fn problems_explained(h: &HandIn) -> Graded {
    const EXPECTED: &str =
        "each problem in the pasted output explained, with a link to the Docker documentation and the fix";
    let problems = problems_met(h);
    if problems.is_empty() {
        return Graded::full(EXPECTED, "no problem in the pasted output: nothing to explain".into(), Vec::new());
    }
    let mut shares = Vec::new();
    let mut seen = Vec::new();
    let mut quotes = Vec::new();
    let mut missing = Vec::new();
    let mut at: Vec<usize> = problems.iter().map(|p| p.idx).collect();
    at.sort_unstable();
    for Problem { name, idx, cause_words } in problems {
        let e = explanation_of(h, idx, &at, cause_words.as_ref());
        if e.share < 1.0 {
            missing.push(name.clone());
        }
        seen.push(format!("{name} ({}): {}", h.lines[idx].at, e.what));
        shares.push(e.share);
        quotes.push(Quote::of(&h.lines[idx]));
        quotes.extend(e.link);
    }
    let share = shares.iter().sum::<f64>() / shares.len().max(1) as f64;
    Graded {
        share,
        expected: EXPECTED,
        seen: seen.join("; "),
        quotes,
        fix: Some(format!(
            "after each problem's output, say why it happened, link the Docker documentation page that explains it, and what you changed ({})",
            missing.join(", ")
        )),
    }
}

/// The problems the report's output shows, each named and with the line it is at: what the
/// catalogue knows, and any pasted build that failed where the catalogue knows nothing (a
/// student's own `RUN` failing is a problem met too).
/// A problem the report's output shows: its name, the line it is at, and what an explanation
/// of it must name (the catalogue's `explained_by`), if anything.
struct Problem {
    name: String,
    idx: usize,
    cause_words: Option<Regex>,
}

fn problems_met(h: &HandIn) -> Vec<Problem> {
    let at = |loc: &super::extract::Location| h.index_of(*loc);
    let mut found: Vec<Problem> = h
        .pieces
        .diagnoses
        .iter()
        .filter(|(d, _)| !d.expected && !d.silent)
        .filter_map(|(d, locs)| {
            let cause_words = d.explained_by.as_deref().and_then(|w| Regex::new(w).ok());
            Some(Problem { name: d.id.clone(), idx: at(locs.first()?)?, cause_words })
        })
        .collect();
    for b in h.pieces.builds.iter().filter(|b| b.log.first_failure().is_some()) {
        if found.iter().any(|p| (b.span.0..=b.span.1).contains(&p.idx)) {
            continue;
        }
        let failing = (b.span.0..=b.span.1).find(|i| FAILED_LINE.is_match(&h.lines[*i].text));
        found.push(Problem { name: "a failed build".into(), idx: failing.unwrap_or(b.span.0), cause_words: None });
    }
    found
}

/// The line a failed build says why on (the expected miss of build 1's cache import aside).
static FAILED_LINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^\s*(#\d+ ERROR: |ERROR: |error: )(?:(?:.*)did not complete successfully|failed to solve|failed to build)",
    )
    .unwrap()
});

/// How a student explained the problem at line `idx`: the share earned, what it lacks, and the
/// documentation link it gives.
struct Explanation {
    share: f64,
    what: &'static str,
    link: Option<Quote>,
}

/// An explanation is 20 words or more of the student's own in the problem's section; a docs
/// link and a fix each make up the rest (half without either).
fn explanation_of(h: &HandIn, idx: usize, problems: &[usize], cause_words: Option<&Regex>) -> Explanation {
    let prose = prose_around(h, idx, problems);
    let words: usize = prose.iter().map(|l| l.text.split_whitespace().count()).sum();
    // Words about another cause explain nothing of this one, whatever link and fix they give.
    if cause_words.is_some_and(|c| words >= 20 && !prose.iter().any(|l| c.is_match(&l.text))) {
        return Explanation { share: 0.0, what: "not explained: the words given do not name its cause", link: None };
    }
    let link = prose
        .iter()
        .flat_map(|l| super::pieces::links_in(&l.text).into_iter().map(move |u| Quote { at: l.at, text: u }))
        .find(|q| DOCS.is_match(&q.text));
    let fix = prose.iter().any(|l| FIX_WORDS.is_match(&l.text));
    let (share, what) = match (words >= 20, link.is_some(), fix) {
        (true, true, true) => (1.0, "explained, with a docs link and a fix"),
        (true, false, true) => (0.5, "explained with a fix, but no link to the documentation"),
        (true, true, false) => (0.5, "explained with a docs link, but no fix said"),
        (true, false, false) => (0.5, "explained, but with no docs link and no fix"),
        (false, _, _) => (0.0, "not explained"),
    };
    Explanation { share, what, link }
}

/// The prose of the problem's part of its section: its lines that are not pasted output. A
/// section may hold several problems: each part runs from its problem's line to the next
/// problem's (the first from the section's start), so the words about one problem — its link —
/// do not count for another. The lines right after the problem's own line are the tool's
/// message (buildx adds its own hint and docs link), not the student's words: up to three of
/// them, to a blank line.
fn prose_around<'h>(h: &'h HandIn, idx: usize, problems: &[usize]) -> Vec<&'h super::extract::Line> {
    let (start, end) = h.pieces.section_of(idx, h.lines.len());
    // Problems with no words of the student's between them (two errors of one failed build)
    // share one part.
    let words = |l: &&super::extract::Line| {
        let t = l.text.trim();
        !t.is_empty() && !t.starts_with("```")
    };
    let apart = |a: usize, b: usize| prose_of_section(h, a, |i| i <= a || i >= b).iter().any(words);
    let first_of_group = problems.iter().copied().filter(|p| (start..=idx).contains(p) && !apart(*p, idx)).min();
    let from = match first_of_group {
        Some(f) if problems.iter().any(|p| (start..f).contains(p)) => f,
        _ => start,
    };
    let to = problems.iter().copied().find(|p| (idx + 1..end).contains(p) && apart(idx, *p)).unwrap_or(end);
    let tail = h.lines[idx + 1..end].iter().take(3).take_while(|l| !l.text.trim().is_empty()).count();
    prose_of_section(h, idx, |i| (idx..=idx + tail).contains(&i) || i < from || i >= to)
}

/// The student's own lines in the section line `idx` is in: not in a code block, not in a
/// pasted build, not pasted output; `skip` leaves out more.
fn prose_of_section(h: &HandIn, idx: usize, skip: impl Fn(usize) -> bool) -> Vec<&super::extract::Line> {
    let (start, end) = h.pieces.section_of(idx, h.lines.len());
    (start..end).filter(|i| !skip(*i) && h.is_own_words(*i)).map(|i| &h.lines[i]).collect()
}
