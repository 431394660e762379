//! The cross-checks between a report's pieces: one session's outputs agree on digests,
//! platforms, cache refs and runs; pieces put together, or edited, do not.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use regex::Regex;

use super::{Graded, LabBuilds};
use crate::builds::vertex::LogForm;
use crate::builds::VertexState;
use crate::checks::CheckId;
use crate::handin::pieces::{Method, PastedBuild, Pieces, Quote};

/// One cross-check: nothing to compare, the pieces agree, or they do not (both quoted).
enum Cross {
    NotApplicable,
    Agrees(String, Vec<Quote>),
    Differs(String, Vec<Quote>),
}

/// The cross-checks between the report's pieces, each made once: the consistency check reports
/// them, and the requirements whose evidence they contradict earn nothing for it.
pub(super) struct Crosses {
    index_digest: Cross,
    platforms: Cross,
    cache_ref: Cross,
    build2: Cross,
    deleted: Cross,
}

impl Crosses {
    pub(super) fn of(p: &Pieces, b: &LabBuilds) -> Crosses {
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

    pub(super) fn void_unsupported(&self, id: CheckId, g: Graded) -> Graded {
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

    pub(super) fn review(&self) -> Option<String> {
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

pub(super) fn consistent(crosses: &Crosses) -> Graded {
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
    let first = one.attestation_digests();
    let (digest, q2) = two.attestation_digests().into_iter().find(|(d, _)| first.iter().any(|(e, _)| e == d))?;
    let q1 = first.into_iter().find(|(e, _)| *e == digest).map(|(_, q)| q)?;
    Some(Cross::Differs(
        format!(
            "build 1 and build 2 exported the same attestation manifest {}: two real builds never do",
            digest.short()
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
