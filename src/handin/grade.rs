//! Each requirement of the report graded from its pieces, with the lines it rests on; the
//! cross-checks that tell pieces of one session from pieces put together.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::pieces::{Method, PastedBuild, Pieces, Quote};
use super::HandIn;
use crate::builds::vertex::LogForm;
use crate::builds::VertexState;
use crate::checks::{self, CheckId, CheckOutcome, Evidence, Names, QuotedLine, Rubric, RubricEntry, Status};
use crate::platform::Platform;
use crate::reference::Digest;

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
    (start..end)
        .filter(|i| !skip(*i))
        .filter(|i| !h.pieces.in_code.get(*i).copied().unwrap_or(false))
        .filter(|i| !h.pieces.builds.iter().any(|b| (b.span.0..=b.span.1).contains(i)))
        .map(|i| &h.lines[i])
        .filter(|l| !super::pieces::is_output(&l.text))
        .collect()
}

/// One cross-check: nothing to compare, the pieces agree, or they do not (both quoted).
enum Cross {
    NotApplicable,
    Agrees(String, Vec<Quote>),
    Differs(String, Vec<Quote>),
}

/// The cross-checks between the report's pieces, each made once: the consistency check reports
/// them, and the requirements whose evidence they contradict earn nothing for it.
struct Crosses {
    index_digest: Cross,
    platforms: Cross,
    cache_ref: Cross,
    build2: Cross,
    deleted: Cross,
}

impl Crosses {
    fn of(p: &Pieces, b: &LabBuilds) -> Crosses {
        Crosses {
            index_digest: index_digest_pushed(p, b),
            platforms: platforms_built(p, b),
            cache_ref: import_is_export(b),
            build2: build2_is_its_own(b),
            deleted: deleted_is_cache(p, b),
        }
    }

    fn named(&self) -> [(&'static str, &Cross); 5] {
        [
            ("index digest", &self.index_digest),
            ("platforms", &self.platforms),
            ("cache ref", &self.cache_ref),
            ("build 2", &self.build2),
            ("deleted digest", &self.deleted),
        ]
    }

    /// The contradictions a requirement's evidence rests on: a listing of another push proves
    /// no manifest, a build 2 that is no real build proves neither two builds nor the cache, a
    /// deletion of another registry state proves no deletion.
    fn against(&self, id: CheckId) -> Vec<&str> {
        let rests_on: &[&Cross] = match id {
            CheckId::ReportManifest => &[&self.index_digest, &self.platforms],
            CheckId::ReportTwoBuilds => &[&self.build2],
            CheckId::ReportCacheEvidence => &[&self.build2, &self.cache_ref],
            CheckId::ReportBonusDeletion => &[&self.deleted],
            _ => &[],
        };
        rests_on.iter().filter_map(|c| c.differs()).collect()
    }

    fn void_unsupported(&self, id: CheckId, g: Graded) -> Graded {
        let against = self.against(id);
        if against.is_empty() {
            return g;
        }
        Graded {
            share: 0.0,
            expected: g.expected,
            seen: format!("✗ the evidence does not hold ({}): nothing earned for it; {}", against.join("; "), g.seen),
            quotes: g.quotes,
            fix: Some("paste the outputs of one session as they were printed: a piece from another run, or edited, proves nothing".into()),
        }
    }

    fn review(&self) -> Option<String> {
        let differs: Vec<String> =
            self.named().iter().filter_map(|(n, c)| c.differs().map(|t| format!("{n}: {t}"))).collect();
        (!differs.is_empty()).then(|| format!("evidence inconsistent: check by hand — {}", differs.join("; ")))
    }
}

impl Cross {
    fn differs(&self) -> Option<&str> {
        match self {
            Cross::Differs(text, _) => Some(text),
            _ => None,
        }
    }
}

fn consistent(crosses: &Crosses) -> Graded {
    const EXPECTED: &str = "the pasted pieces come from one session: the listing's digests and platforms are those the builds pushed, build 2 imports what build 1 exported, build 2 is a run of its own, the deleted digest is the cache's";
    let mut seen = Vec::new();
    let mut quotes = Vec::new();
    let (mut applicable, mut agree) = (0, 0);
    for (name, c) in crosses.named() {
        match c {
            Cross::NotApplicable => {}
            Cross::Agrees(text, q) => {
                applicable += 1;
                agree += 1;
                seen.push(format!("✓ {name}: {text}"));
                quotes.extend(q.iter().cloned());
            }
            Cross::Differs(text, q) => {
                applicable += 1;
                seen.push(format!("✗ {name}: {text}"));
                quotes.extend(q.iter().cloned());
            }
        }
    }
    if applicable == 0 {
        return Graded::part(
            0.0,
            EXPECTED,
            "nothing to cross-check: the builds, the manifest listing and the deletion are missing".into(),
            Vec::new(),
            "paste the builds' output, the manifest listing and the deletion transcript",
        );
    }
    Graded {
        share: f64::from(agree) / f64::from(applicable),
        expected: EXPECTED,
        seen: seen.join("; "),
        quotes,
        fix: Some("paste the outputs of one session as they were printed; a piece from another run (or edited) does not match the others".into()),
    }
}

fn index_digest_pushed(p: &Pieces, b: &LabBuilds) -> Cross {
    let Some(listing) = p.listing() else { return Cross::NotApplicable };
    // The listing is of the last build's push: with build 2 missing there is nothing to match.
    if b.second.is_none() {
        return Cross::NotApplicable;
    }
    let pushed: Vec<_> = b.all.iter().flat_map(|x| x.index_digests()).collect();
    let exported: Vec<_> = b.all.iter().flat_map(|x| x.manifest_digests()).collect();
    if let Some((d, q)) = &listing.digest {
        if let Some((_, pq)) = pushed.iter().find(|(pd, _)| pd == d) {
            return Cross::Agrees(format!("{} is pushed at {}", d.short(), pq.at), vec![q.clone(), pq.clone()]);
        }
        let mut quotes = vec![q.clone()];
        quotes.extend(pushed.last().map(|(_, q)| q.clone()));
        return Cross::Differs(format!("the listing's index {} appears in no build's push lines", d.short()), quotes);
    }
    // `docker manifest inspect` prints no index digest: its platform manifests must be exported.
    let foreign: Vec<_> = listing.manifests.iter().filter(|(d, _)| !exported.iter().any(|(e, _)| e == d)).collect();
    match foreign.first() {
        None if listing.manifests.is_empty() => Cross::NotApplicable,
        None => Cross::Agrees(
            format!("its {} platform manifests are the ones the builds exported", listing.manifests.len()),
            listing.manifests.iter().map(|(_, q)| q.clone()).collect(),
        ),
        Some((d, q)) => {
            let mut quotes = vec![q.clone()];
            quotes.extend(exported.first().map(|(_, q)| q.clone()));
            Cross::Differs(format!("the listed manifest {} was exported by no build", d.short()), quotes)
        }
    }
}

fn platforms_built(p: &Pieces, b: &LabBuilds) -> Cross {
    let (Some(listing), Some(build)) = (p.listing(), b.second.or(b.first)) else {
        return Cross::NotApplicable;
    };
    let built: BTreeSet<String> = build.log.per_platform().into_keys().flatten().map(|p| p.to_string()).collect();
    let listed: BTreeSet<String> = listing.platforms.iter().map(|(p, _)| p.to_string()).collect();
    if listed.is_empty() || built.is_empty() {
        return Cross::NotApplicable;
    }
    if built == listed {
        return Cross::Agrees(format!("the listing names what the builds built ({})", join(&listed)), Vec::new());
    }
    let mut quotes: Vec<Quote> = listing.platforms.iter().map(|(_, q)| q.clone()).collect();
    quotes.push(build.first.clone());
    Cross::Differs(format!("the listing names {}, the builds built {}", join(&listed), join(&built)), quotes)
}

fn join(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// A cache ref without the tag the registry cache defaults to.
fn cache_ref(r: &str) -> &str {
    r.strip_suffix(":latest").unwrap_or(r)
}

fn import_is_export(b: &LabBuilds) -> Cross {
    let (Some(one), Some(two)) = (b.first, b.second) else { return Cross::NotApplicable };
    let Some(imported) = two.log.import_refs().into_iter().next() else { return Cross::NotApplicable };
    // What build 1 exported: its --cache-to when its command is pasted, else the ref it tried
    // to import (the lab's command imports from where it exports).
    let (exported, quote) = match one.command_ref("--cache-to") {
        Some(r) => (r, one.command.clone()),
        None => match one.log.import_refs().into_iter().next() {
            Some(r) => (r, one.quote("importing cache manifest")),
            None => return Cross::NotApplicable,
        },
    };
    if cache_ref(&imported) == cache_ref(&exported) {
        return Cross::Agrees(format!("build 2 imports {imported}, which build 1 exported"), Vec::new());
    }
    let quotes = [quote, two.quote("importing cache manifest")].into_iter().flatten().collect();
    Cross::Differs(format!("build 2 imports {imported}, build 1 exported {exported}"), quotes)
}

fn build2_is_its_own(b: &LabBuilds) -> Cross {
    let (Some(one), Some(two)) = (b.first, b.second) else { return Cross::NotApplicable };
    // A CACHED step never runs, so it prints no output of its command.
    if let Some(v) =
        two.log.vertices.iter().find(|v| v.state == VertexState::Cached && v.lines.iter().any(|l| is_run_output(l)))
    {
        let quotes = [
            two.quote(&v.name),
            two.lines
                .iter()
                .find(|l| v.lines.iter().any(|o| is_run_output(o) && l.text.ends_with(o.as_str())))
                .map(Quote::of),
        ]
        .into_iter()
        .flatten()
        .collect();
        return Cross::Differs(
            format!("build 2's step `{}` is CACHED and yet printed its command's output", v.name),
            quotes,
        );
    }
    if let Some(shown) = two.log.same_build_as(&one.log) {
        let quotes = [one.quote(&two.first.text), two.quote(&two.first.text)].into_iter().flatten().collect();
        return Cross::Differs(format!("build 2 is build 1's output again: {}", shown.join("; ")), quotes);
    }
    if let Some(cross) = shared_attestation(one, two).or_else(|| extracted_while_all_cached(two)) {
        return cross;
    }
    // The tty display rounds durations to a tenth of a second and repeats them in every frame:
    // two real builds share many. Only the other forms' timings fingerprint a run.
    if two.log.form == LogForm::Tty {
        return Cross::Agrees("its steps and their ends differ from build 1's".into(), Vec::new());
    }
    // Timings differ between two real runs; the same ones throughout mean one run, pasted twice.
    let t1: BTreeSet<&str> = one.timed_lines().into_iter().filter(|t| !t.contains(" 0.0s")).collect();
    let t2: Vec<&str> = two.timed_lines().into_iter().filter(|t| !t.contains(" 0.0s")).collect();
    let same = t2.iter().filter(|t| t1.contains(*t)).count();
    if t2.len() >= 5 && same * 10 >= t2.len() * 8 {
        let quotes = [one.quote(t2[0]), two.quote(t2[0])].into_iter().flatten().collect();
        return Cross::Differs(
            format!("{same} of build 2's {} timed lines are build 1's, to the hundredth of a second", t2.len()),
            quotes,
        );
    }
    Cross::Agrees(format!("its timings differ from build 1's ({same} of {} the same)", t2.len()), Vec::new())
}

/// An attestation manifest both builds say they exported. buildx's provenance records when
/// each build ran, so two real builds never export the same one (real builds of an unpruned
/// builder do share the image index, so the index is no such sign).
fn shared_attestation(one: &PastedBuild, two: &PastedBuild) -> Option<Cross> {
    static ATTESTATION: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"exporting attestation manifest (sha256:[0-9a-f]{64})").unwrap());
    let of = |b: &PastedBuild| -> Vec<(String, Quote)> {
        b.lines.iter().filter_map(|l| Some((ATTESTATION.captures(&l.text)?[1].to_string(), Quote::of(l)))).collect()
    };
    let first = of(one);
    let (digest, q2) = of(two).into_iter().find(|(d, _)| first.iter().any(|(e, _)| e == d))?;
    let q1 = first.into_iter().find(|(e, _)| *e == digest).map(|(_, q)| q)?;
    Some(Cross::Differs(
        format!(
            "build 1 and build 2 exported the same attestation manifest {}: two real builds never do",
            &digest[..19]
        ),
        vec![q1, q2],
    ))
}

/// A build whose every step is CACHED never needs its base image's layers: a FROM step that
/// extracted them belongs to a build that ran its steps (build 1 with CACHED lines added).
fn extracted_while_all_cached(two: &PastedBuild) -> Option<Cross> {
    let all_cached = two.log.steps().filter(|(_, s)| s.makes_layer()).all(|(v, _)| v.state == VertexState::Cached);
    let has_steps = two.log.steps().any(|(_, s)| s.makes_layer());
    let from = two
        .log
        .steps()
        .find(|(v, s)| s.instruction == "FROM" && v.lines.iter().any(|l| l.starts_with("extracting sha256:")))?;
    if !(all_cached && has_steps) {
        return None;
    }
    let quotes = [two.quote(&from.0.name), two.quote("extracting sha256:")].into_iter().flatten().collect();
    Some(Cross::Differs(
        format!("build 2's `{}` extracted its layers though every step is CACHED: a build whose steps all come from the cache never extracts its base image", from.0.name),
        quotes,
    ))
}

/// A line a RUN step's command printed (`0.205 built for x86_64`): plain output's timestamp.
fn is_run_output(line: &str) -> bool {
    static OUT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\d+\.\d{3} ").unwrap());
    OUT.is_match(line)
}

fn deleted_is_cache(p: &Pieces, b: &LabBuilds) -> Cross {
    let Some(del) = p.exchanges.iter().find(|e| e.method == Method::Delete && e.by_digest().is_some()) else {
        return Cross::NotApplicable;
    };
    let d = del.by_digest().expect("found by digest");
    // The cache deleted is the last build's: without build 2's export there is nothing to match.
    if b.second.is_none_or(|two| two.cache_manifest().is_none()) {
        return Cross::NotApplicable;
    }
    let written: Vec<_> = b.all.iter().filter_map(|x| x.cache_manifest()).collect();
    if let Some((_, q)) = written.iter().find(|(w, _)| *w == d) {
        return Cross::Agrees(
            format!("{} is the cache manifest written at {}", d.short(), q.at),
            vec![del.command.clone(), q.clone()],
        );
    }
    let image =
        b.all.iter().flat_map(|x| x.index_digests().into_iter().chain(x.manifest_digests())).find(|(i, _)| *i == d);
    if let Some((_, q)) = image {
        return Cross::Differs(
            format!("the DELETE removes {}, a manifest of the image, not the cache", d.short()),
            vec![del.command.clone(), q],
        );
    }
    if written.is_empty() {
        return Cross::NotApplicable;
    }
    let mut quotes = vec![del.command.clone()];
    quotes.extend(written.last().map(|(_, q)| q.clone()));
    Cross::Differs(format!("the DELETE removes {}, which no build wrote as its cache manifest", d.short()), quotes)
}

static CAVEAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(multi|platform|wieloarch|index|manifest list|lista manifest|attestation|2\.8)").unwrap()
});
static REGISTRY3: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(registry:3|registry 3|distribution 3|distribution/v3|registry v3|3\.\d+\.\d+\s*\(registry|\bv3\.\d)",
    )
    .unwrap()
});
static BLOB_CACHE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(blobdescriptor|blob descriptor|deskryptor|cache.{0,40}(restart|zrestart|uruchom)|(restart|zrestart).{0,60}cache)").unwrap()
});
static GENERAL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(/v2/<[^>]+>/manifests/<|any image|dowoln\w* obraz|every image|each image|inny obraz)").unwrap()
});

/// One element of the bonus answer: shown or not, what was seen, the line it rests on.
struct Element {
    ok: bool,
    what: String,
    quote: Option<Quote>,
}

fn element(ok: bool, what: impl Into<String>, quote: Option<Quote>) -> Element {
    Element { ok, what: what.into(), quote }
}

fn bonus(h: &HandIn, b: &LabBuilds) -> Graded {
    const EXPECTED: &str = "deletion enabled; the cache manifest's digest read with the right Accept header; DELETE by that digest (202); garbage-collect; a restart (or the blob cache caveat); how any image is deleted";
    let text: String = h.lines.iter().map(|l| format!("{}\n", l.text)).collect();
    // What the student says they ran decides what registry 3.x allows.
    let on_3 = REGISTRY3.is_match(&text);
    let parts = [
        deletion_enabled(&h.pieces),
        delete_by_digest(&h.pieces, on_3),
        digest_read(&h.pieces, b, on_3),
        garbage_collected(h, on_3),
        restarted(h),
        any_image(h),
    ];
    let got = parts.iter().filter(|e| e.ok).count();
    let mut share = got as f64 / parts.len() as f64;
    let mut seen =
        parts.iter().map(|e| format!("{} {}", if e.ok { "✓" } else { "✗" }, e.what)).collect::<Vec<_>>().join("; ");
    let mut quotes: Vec<Quote> = parts.into_iter().filter_map(|e| e.quote).collect();
    // What the commands did outweighs which commands appear: a deletion that broke the image
    // earns nothing, one that deleted nothing little (knowing the registry's settings, saying
    // how any image is deleted).
    match deletion_outcome(h, b, on_3) {
        Some(DeletionOutcome::ImageBroken { what, quote }) => {
            share = 0.0;
            seen = format!("✗ {what}; {seen}");
            quotes.insert(0, quote);
        }
        Some(DeletionOutcome::NothingDeleted { what, quote }) => {
            share = share.min(NOTHING_DELETED_SHARE);
            seen = format!("✗ {what}; {seen}");
            quotes.insert(0, quote);
        }
        None => {}
    }
    Graded {
        share,
        expected: EXPECTED,
        seen,
        quotes,
        fix: Some("show each step: deletion enabled, HEAD the cache tag with the cache manifest's Accept header, DELETE /v2/cachedata1/manifests/<digest>, `registry garbage-collect`, restart registry7; then say how any image is deleted".into()),
    }
}

/// The most of the bonus a deletion that deleted nothing earns: one of its six parts.
const NOTHING_DELETED_SHARE: f64 = 1.0 / 6.0;

/// What the deletion the report shows did, where that decides the bonus.
enum DeletionOutcome {
    /// garbage-collect listed manifests of the image itself (its platform manifests, by the
    /// report's own listing or builds) for deletion: the image can no longer be pulled.
    ImageBroken { what: String, quote: Quote },
    /// Every DELETE was refused and no tool deleted: nothing of the cache went.
    NothingDeleted { what: String, quote: Quote },
}

fn deletion_outcome(h: &HandIn, b: &LabBuilds, on_3: bool) -> Option<DeletionOutcome> {
    image_broken(h, b).or_else(|| nothing_deleted(&h.pieces)).or_else(|| only_untagged(&h.pieces, on_3))
}

/// On registry 3.x a DELETE by tag only removes the tag: the manifest still answers by its
/// digest, and a plain garbage-collect keeps an untagged manifest and every blob it references
/// (real: `session-registry3-tag/`). Without `--delete-untagged` (safe on 3.x), a deletion by
/// digest or a tool's, nothing of the cache went.
fn only_untagged(p: &Pieces, on_3: bool) -> Option<DeletionOutcome> {
    let by_tag = p.exchanges.iter().find(|e| e.method == Method::Delete && e.by_digest().is_none())?;
    let by_digest = p.exchanges.iter().any(|e| e.method == Method::Delete && e.by_digest().is_some());
    let untagged_gc = p.garbage_collects.iter().any(|g| g.delete_untagged);
    if !on_3 || by_digest || untagged_gc || !p.tool_deletes.is_empty() {
        return None;
    }
    let what = "a tag removed is not a cache deleted: on registry 3.x DELETE by tag only untags the cache manifest, which still answers by its digest, and a plain garbage-collect keeps it and its layers (run garbage-collect --delete-untagged, safe on 3.x, or DELETE by digest)";
    Some(DeletionOutcome::NothingDeleted { what: what.into(), quote: by_tag.command.clone() })
}

fn image_broken(h: &HandIn, b: &LabBuilds) -> Option<DeletionOutcome> {
    static ELIGIBLE: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"^\s*manifest eligible for deletion: (sha256:[0-9a-f]{64})").unwrap());
    let image: Vec<Digest> = h
        .pieces
        .listing()
        .map(|l| l.manifests.iter().map(|(d, _)| d.clone()).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain(b.all.iter().flat_map(|x| x.manifest_digests()).map(|(d, _)| d))
        .collect();
    let gone: Vec<(Digest, &super::extract::Line)> = h
        .lines
        .iter()
        .filter_map(|l| Some((ELIGIBLE.captures(&l.text)?[1].parse().ok()?, l)))
        .filter(|(d, _)| image.contains(d))
        .collect();
    let (first, line) = gone.first()?;
    let what = format!(
        "the image was destroyed: garbage-collect deleted {} of its own platform manifests ({first}{}, named by the report's listing or builds), so lab:cachetest can no longer be pulled — on registry 2.8 `--delete-untagged` collects the untagged platform manifests of a multi-arch image",
        gone.len(),
        if gone.len() > 1 { ", …" } else { "" }
    );
    Some(DeletionOutcome::ImageBroken { what, quote: Quote::of(line) })
}

fn nothing_deleted(p: &Pieces) -> Option<DeletionOutcome> {
    let deletes: Vec<&super::pieces::Exchange> = p.exchanges.iter().filter(|e| e.method == Method::Delete).collect();
    let refused = |e: &&super::pieces::Exchange| e.status.as_ref().is_some_and(|(s, _)| *s >= 400);
    if deletes.is_empty() || !p.tool_deletes.is_empty() || !deletes.iter().all(refused) {
        return None;
    }
    let (status, quote) = deletes[0].status.clone()?;
    let what = format!(
        "nothing was deleted: the registry refused the DELETE ({status}), so the cache is still there whatever garbage-collect did"
    );
    Some(DeletionOutcome::NothingDeleted { what, quote })
}

fn the_delete(p: &Pieces) -> Option<&super::pieces::Exchange> {
    p.exchanges.iter().find(|e| e.method == Method::Delete)
}

/// Deletion switched on in the registry's settings, or shown by a DELETE it accepted.
fn deletion_enabled(p: &Pieces) -> Element {
    let accepted = the_delete(p).and_then(|e| e.status.as_ref()).filter(|(s, _)| *s == 202);
    let q = p.deletion_enabled.first().cloned().or_else(|| accepted.map(|(_, q)| q.clone()));
    element(q.is_some(), "deletion enabled (REGISTRY_STORAGE_DELETE_ENABLED=true, or a DELETE answered 202)", q)
}

/// The manifest deleted by its digest (registry 3.x also takes a tag; skopeo, crane and regctl
/// resolve the tag themselves).
fn delete_by_digest(p: &Pieces, on_3: bool) -> Element {
    match (the_delete(p), p.tool_deletes.first()) {
        (Some(e), _) if e.by_digest().is_some() => {
            let answered = e.status.as_ref().map(|(s, _)| format!(", answered {s}")).unwrap_or_default();
            element(true, format!("DELETE by digest{answered}"), Some(e.command.clone()))
        }
        (Some(e), _) if on_3 => element(true, "DELETE by tag, which registry 3.x accepts", Some(e.command.clone())),
        (Some(e), _) => element(
            false,
            "DELETE by tag: registry 2.8 refuses it (DIGEST_INVALID); a manifest is deleted by its digest",
            Some(e.command.clone()),
        ),
        (None, Some(t)) => element(true, "deleted with a tool that resolves the tag to its digest", Some(t.clone())),
        (None, None) => element(false, "no DELETE of the cache manifest", None),
    }
}

/// How the deleted digest was found: a HEAD/GET of the cache's tag that answered it, with the
/// Accept header an OCI manifest needs (registry 2.8 answers another digest without it).
fn digest_read(p: &Pieces, b: &LabBuilds, on_3: bool) -> Element {
    const NONE: &str = "no step that reads the cache manifest's digest (HEAD with `Accept: application/vnd.oci.image.manifest.v1+json`)";
    if let Some(e) = the_delete(p).filter(|e| on_3 && e.by_digest().is_none()) {
        return element(true, "no digest needed: registry 3.x deletes by tag", Some(e.command.clone()));
    }
    let Some((del, d)) = the_delete(p).and_then(|e| Some((e, e.by_digest()?))) else {
        return element(false, NONE, None);
    };
    let read = p.exchanges.iter().find(|e| {
        e.method != Method::Delete
            && e.repository == del.repository
            && e.content_digest.as_ref().is_some_and(|(c, _)| *c == d)
    });
    let written = b.all.iter().filter_map(|x| x.cache_manifest()).any(|(w, _)| w == d);
    match read {
        Some(e) if e.accept.is_some() => {
            element(true, "the digest read with an Accept header", Some(e.command.clone()))
        }
        Some(e) if written => {
            element(true, "the digest read (it is the cache manifest the build wrote)", Some(e.command.clone()))
        }
        Some(e) => element(
            false,
            "the digest read without an Accept header: registry 2.8 answers another digest for an OCI manifest",
            Some(e.command.clone()),
        ),
        None if written => element(true, "the digest is the cache manifest the build wrote", Some(del.command.clone())),
        None => element(false, NONE, None),
    }
}

/// `registry garbage-collect` run; `--delete-untagged` on 2.8 needs its caveat said.
fn garbage_collected(h: &HandIn, on_3: bool) -> Element {
    let Some(gc) = h.pieces.garbage_collects.first() else {
        return element(false, "no `registry garbage-collect`: DELETE alone frees no space", None);
    };
    if gc.delete_untagged && !on_3 && !CAVEAT.is_match(&section_prose(h, Some(gc.command.at))) {
        return element(
            false,
            "`garbage-collect --delete-untagged` with no caveat: on registry 2.8 it deletes the platform manifests of multi-arch images such as lab:cachetest",
            Some(gc.command.clone()),
        );
    }
    element(true, "garbage-collect run", Some(gc.command.clone()))
}

/// A restart after garbage-collect, or the blob descriptor cache explained.
fn restarted(h: &HandIn) -> Element {
    let caveat = quote_where(h, &BLOB_CACHE);
    let q = h.pieces.restarts.first().cloned().or(caveat);
    element(q.is_some(), "a restart after garbage-collect (the registry caches blob descriptors)", q)
}

fn any_image(h: &HandIn) -> Element {
    let q = quote_where(h, &GENERAL);
    element(q.is_some(), "how any image is deleted, not only the cache", q)
}

/// The first line matching `re`, quoted.
fn quote_where(h: &HandIn, re: &Regex) -> Option<Quote> {
    h.lines.iter().find(|l| re.is_match(&l.text)).map(Quote::of)
}

/// The student's words in the section a line is in, as one text.
fn section_prose(h: &HandIn, at: Option<super::extract::Location>) -> String {
    let Some(idx) = at.and_then(|a| h.index_of(a)) else { return String::new() };
    prose_of_section(h, idx, |_| false).iter().map(|l| format!("{}\n", l.text)).collect()
}
