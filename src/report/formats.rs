//! The six renderings of a `Report`. Which platform reads which: Gradescope reads
//! `gradescope` (its `results.json`), PrairieLearn's external grader reads `prairielearn`
//! (`/grade/results/results.json`), CI systems and GitLab/Jenkins read `junit`.

use std::fmt::Write;

use serde_json::json;

use super::{describe_import, BuildSummary, Report, RunSummary, Verdict};
use crate::checks::{CheckOutcome, Status};
use crate::registry::deletion::DeletionEvidence;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Text for a person (colour on a terminal).
    Human,
    /// The `lab7.report` schema.
    Json,
    /// A Markdown report a student can hand in.
    #[value(alias = "markdown")]
    Md,
    /// JUnit XML, a test case per check.
    Junit,
    /// Gradescope's results file.
    Gradescope,
    /// PrairieLearn's external grader results.json.
    Prairielearn,
    /// One self-contained HTML page with the builds, image, cache and deletion drawn.
    Html,
}

/// How a rendering looks beyond its format: colour on a terminal, the HTML page's language.
#[derive(Debug, Clone, Copy, Default)]
pub struct Style {
    pub color: bool,
    pub lang: super::html::Lang,
}

pub fn render(report: &Report, format: Format, style: Style) -> String {
    let color = style.color;
    match format {
        Format::Html => super::html::render(report, style.lang),
        Format::Human => human(report, color),
        Format::Json => serde_json::to_string_pretty(report).expect("a report serializes") + "\n",
        Format::Md => markdown(report),
        Format::Junit => junit(report),
        Format::Gradescope => serde_json::to_string_pretty(&gradescope(report)).expect("json") + "\n",
        Format::Prairielearn => serde_json::to_string_pretty(&prairielearn(report)).expect("json") + "\n",
    }
}

fn mark(status: Status) -> &'static str {
    match status {
        Status::Pass => "PASS",
        Status::Fail => "FAIL",
        Status::Skipped => "SKIP",
    }
}

fn paint(text: &str, status: Status, color: bool) -> String {
    if !color {
        return text.to_string();
    }
    let code = match status {
        Status::Pass => "32",
        Status::Fail => "31",
        Status::Skipped => "2",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// The verdict and score in one line, and why to check it by hand when there is a reason.
fn summary_line(r: &Report) -> String {
    let line = format!("lab7 {}: {:?}, {}", r.kind, r.verdict, r.score_line());
    match &r.review {
        Some(review) => format!("{line}. CHECK BY HAND: {review}"),
        None => line,
    }
}

pub fn human(r: &Report, color: bool) -> String {
    let mut out = String::new();
    let verdict = match r.verdict {
        Verdict::Pass => Status::Pass,
        Verdict::Fail => Status::Fail,
    };
    let _ =
        writeln!(out, "lab7 {} {} — {}  {}", r.kind, r.subject, paint(mark(verdict), verdict, color), r.score_line());
    if let Some(review) = &r.review {
        let _ = writeln!(out, "CHECK BY HAND: {review}");
    }
    if let Some(run) = &r.run {
        out.push('\n');
        out.push_str(&evidence_text(run, &r.builds));
    }
    out.push_str("\nChecks\n");
    for c in &r.checks {
        let _ = writeln!(
            out,
            "  {:5} {:>4}/{:<3} {}",
            paint(mark(c.status), c.status, color),
            c.points,
            c.max_points,
            c.title
        );
        let _ = writeln!(out, "        seen:     {}", c.seen);
        for q in &c.quotes {
            let _ = writeln!(out, "          {}: {}", q.at, q.text);
        }
        if c.status != Status::Pass && c.status != Status::Skipped {
            let _ = writeln!(out, "        expected: {}", c.expected);
            if let Some(fix) = &c.fix {
                let _ = writeln!(out, "        fix:      {fix}");
            }
            let _ = writeln!(out, "        docs:     {}", c.docs);
            for d in r.diagnoses_of(c.id) {
                for line in d.text().lines() {
                    let _ = writeln!(out, "        {line}");
                }
            }
        }
    }
    out
}

/// What a failed check's output says, its diagnoses included (Gradescope, PrairieLearn, JUnit).
fn check_output(r: &Report, c: &CheckOutcome) -> String {
    let mut output = format!("expected: {}\nseen: {}", c.expected, c.seen);
    for q in &c.quotes {
        output += &format!("\n  {}: {}", q.at, q.text);
    }
    if let Some(fix) = &c.fix {
        output += &format!("\nfix: {fix}\ndocs: {}", c.docs);
    }
    for d in r.diagnoses_of(c.id) {
        output += &format!("\n\ndiagnosis {}", d.text());
    }
    output
}

/// The four facts of the lab with their evidence, plus the environment and timings.
fn evidence_text(run: &RunSummary, builds: &[BuildSummary]) -> String {
    let mut o = String::new();
    let standin = if run.standins { " (offline stand-ins)" } else { "" };
    let _ = writeln!(
        o,
        "Environment: registry7 = {}, node = {} (BuildKit {}){standin}",
        run.registry_image, run.buildkit_image, run.buildkit_version
    );
    let _ = writeln!(o, "  node platforms: {}", run.node_platforms.join(", "));
    for b in builds {
        let _ =
            writeln!(o, "Build {}: {}; cache import: {}", b.number, exit_and_time(b), describe_import(&b.cache_import));
        if let Some(f) = &b.first_failure {
            let _ = writeln!(o, "  first error: {f}");
        }
    }
    if let Some(i) = &run.image {
        let platforms: Vec<&str> = i.manifests.iter().filter(|m| !m.attestation).map(|m| m.platform.as_str()).collect();
        let _ = writeln!(o, "1. Both architectures: {} is {} for {}", i.name, i.media_type, platforms.join(" and "));
    }
    if let Some(b) = builds.iter().find(|b| b.number == 2) {
        let per: Vec<String> = b
            .platforms
            .iter()
            .map(|p| {
                format!(
                    "{} {} CACHED ({}/{} RUN/COPY/ADD)",
                    p.platform, p.cached_steps, p.cached_layer_steps, p.layer_steps
                )
            })
            .collect();
        let _ = writeln!(o, "2. Cache reused from the registry in build 2: {}", per.join(", "));
    }
    if let Some(c) = &run.cache {
        let _ = writeln!(
            o,
            "3. Cache image: {} ({}), {} layers, {} bytes; {} layers ({} bytes) not in the app image",
            c.name, c.media_type, c.layers, c.layer_bytes, c.layers_not_in_image, c.bytes_not_in_image
        );
    }
    if let Some(d) = &run.deletion {
        let intact = d.image_after.iter().filter(|p| p.status == 200).count();
        let _ = writeln!(
            o,
            "4. Deletion on {}: DELETE {}@{} → {} (+{} untagged earlier cache manifests), tag → {}; `{}` + restart; storage {} → {} bytes ({} reclaimed); app image {}/{} parts intact",
            d.registry, d.cache_repo, d.cache_digest, d.delete_status, d.deleted_manifests.len().saturating_sub(1), d.tag_status_after, d.gc_command, d.storage_before, d.storage_after, d.reclaimed(), intact, d.image_parts_before
        );
    }
    if let Some(s) = &run.stopped {
        let _ = writeln!(o, "Stopped early: {s}");
    }
    let times: Vec<String> = run.timings.iter().map(|t| format!("{} {:.1}s", t.stage_title(), t.seconds)).collect();
    let _ = writeln!(o, "Timings: {}", times.join(", "));
    o
}

/// `docker buildx imagetools inspect` as it prints an index.
pub fn imagetools(name: &str, media_type: &str, digest: &str, manifests: &[super::ManifestLine]) -> String {
    let mut o = format!("Name:      {name}\nMediaType: {media_type}\nDigest:    {digest}\n\nManifests:\n");
    // As `imagetools inspect` names them: the reference as given, tag included, then the digest.
    for m in manifests {
        let _ = writeln!(o, "  Name:        {name}@{}", m.digest);
        let _ = writeln!(o, "  MediaType:   {}", m.media_type);
        if m.attestation {
            let _ = writeln!(
                o,
                "  Platform:    unknown/unknown\n  Annotations:\n    vnd.docker.reference.type: attestation-manifest"
            );
        } else {
            let _ = writeln!(o, "  Platform:    {}", m.platform);
        }
        o.push('\n');
    }
    o
}

pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# Lab 7 — buildx, multi-platform build and registry cache\n");
    let _ = writeln!(o, "Graded by lab7 {} (`{}`): **{:?}**, {}.\n", r.lab7_version, r.kind, r.verdict, r.score_line());
    if let Some(review) = &r.review {
        let _ = writeln!(o, "> **Check by hand:** {review}\n");
    }
    let _ = writeln!(o, "| Check | Status | Points | Seen |\n|---|---|---|---|");
    for c in &r.checks {
        let _ = writeln!(
            o,
            "| {} | {} | {}/{} | {} |",
            c.title,
            mark(c.status),
            c.points,
            c.max_points,
            c.seen.replace('|', "\\|")
        );
    }
    quotes_markdown(&mut o, r);
    if let Some(run) = &r.run {
        setup_markdown(&mut o, run);
    }
    builds_markdown(&mut o, &r.builds);
    if let Some(run) = &r.run {
        registry_markdown(&mut o, run);
        if let Some(d) = &run.deletion {
            deletion_markdown(&mut o, d);
        }
    }
    problems_markdown(&mut o, r);
    o
}

/// The lines each check rests on, where they are in the graded report: an instructor finds
/// and confirms each in seconds.
fn quotes_markdown(o: &mut String, r: &Report) {
    if r.checks.iter().all(|c| c.quotes.is_empty()) {
        return;
    }
    let _ = writeln!(o, "\n## Evidence quoted\n");
    for c in r.checks.iter().filter(|c| !c.quotes.is_empty()) {
        let _ = writeln!(o, "**{}**\n", c.title);
        for q in &c.quotes {
            let _ = writeln!(o, "- {}: `{}`", q.at, q.text.replace('`', "'"));
        }
        let _ = writeln!(o);
    }
}

/// "Problems and fixes", as the lab asks a report to explain them: each failed check, and each
/// known failure diagnosed in the builds' output with its evidence, fix and docs page.
fn problems_markdown(o: &mut String, r: &Report) {
    let failed = || r.checks.iter().filter(|c| c.status == Status::Fail);
    // A check whose stage never ran has no problem of its own: the one that stopped the run does.
    let (unreached, problems): (Vec<&CheckOutcome>, Vec<&CheckOutcome>) =
        failed().partition(|c| c.seen.starts_with("not reached"));
    if problems.is_empty() && unreached.is_empty() {
        return;
    }
    let _ = writeln!(o, "\n## Problems and fixes\n");
    for c in problems {
        let _ = writeln!(
            o,
            "- **{}** — expected {}; seen {}.\n  Fix: {} (see [Docker docs]({})).",
            c.title,
            c.expected,
            c.seen,
            c.fix.as_deref().unwrap_or("-"),
            c.docs
        );
        for d in r.diagnoses_of(c.id) {
            let _ = writeln!(o, "  - Cause: {} ([docs]({}))", d.cause, d.docs);
            for (n, line) in &d.evidence {
                let _ = writeln!(o, "    - line {n}: `{}`", line.replace('`', "'"));
            }
            let _ = writeln!(
                o,
                "    - Fix:\n\n      ```sh\n{}\n      ```",
                d.fix.iter().map(|f| format!("      {f}")).collect::<Vec<_>>().join("\n")
            );
        }
    }
    if let Some(first) = unreached.first() {
        let titles: Vec<&str> = unreached.iter().map(|c| c.title.as_str()).collect();
        let _ = writeln!(o, "- Not checked ({}): {}.", first.seen, titles.join("; "));
    }
}

fn setup_markdown(o: &mut String, run: &RunSummary) {
    let _ = writeln!(o, "\n## Setup\n");
    let _ = writeln!(o, "- registry7: `{}` with `REGISTRY_STORAGE_DELETE_ENABLED=true`", run.registry_image);
    let _ = writeln!(
        o,
        "- builder: BuildKit {} (`{}`, as the docker-container driver runs it); platforms: {}",
        run.buildkit_version,
        run.buildkit_image,
        run.node_platforms.join(", ")
    );
    let _ = writeln!(o, "\n## Commands (run twice; the node's own cache pruned in between)\n");
    let _ = writeln!(
        o,
        "```sh\n{}\n```\n\nThe same with buildx:\n\n```sh\n{}\n```",
        run.buildctl_command, run.buildx_command
    );
}

fn registry_markdown(o: &mut String, run: &RunSummary) {
    if let Some(i) = &run.image {
        let _ = writeln!(
            o,
            "\n## The manifest: both architectures\n\n```\n$ docker buildx imagetools inspect {}\n{}```",
            i.name,
            imagetools(&i.name, &i.media_type, &i.digest, &i.manifests)
        );
    }
    if let Some(c) = &run.cache {
        let _ = writeln!(o, "\n## The cache image\n\n`{}` is a separate repository: {}, {} layers ({} bytes), of which {} ({} bytes) belong to no layer of the app image — intermediate stages, which only `mode=max` exports.", c.name, c.media_type, c.layers, c.layer_bytes, c.layers_not_in_image, c.bytes_not_in_image);
    }
}

fn exit_and_time(b: &BuildSummary) -> String {
    match (b.exit_code, b.seconds) {
        (Some(c), Some(t)) => format!("exit {c} in {t:.1}s"),
        _ => "from a pasted log".into(),
    }
}

fn builds_markdown(o: &mut String, builds: &[BuildSummary]) {
    for b in builds {
        let _ = writeln!(
            o,
            "\n## Build {} ({})\n\n- cache import: {}",
            b.number,
            exit_and_time(b),
            describe_import(&b.cache_import)
        );
        if let Some(n) = b.cache_layers_exported {
            let _ = writeln!(
                o,
                "- cache export: `exporting cache to registry`, {n} layers written, cache manifest written"
            );
        }
        if let Some(f) = &b.first_failure {
            let _ = writeln!(o, "- first error: `{f}`");
        }
        if !b.cached_lines.is_empty() {
            let _ = writeln!(o, "\nCACHED lines:\n\n```\n{}\n```", b.cached_lines.join("\n"));
        }
    }
}

fn deletion_markdown(o: &mut String, d: &DeletionEvidence) {
    let _ = writeln!(o, "\n## Bonus: deleting the cache image\n");
    let _ =
        writeln!(o, "1. `HEAD /v2/{}/manifests/latest` → `Docker-Content-Digest: {}`", d.cache_repo, d.cache_digest);
    let _ = writeln!(
        o,
        "2. `DELETE /v2/{}/manifests/{}` → {}; the tag then answers {}",
        d.cache_repo, d.cache_digest, d.delete_status, d.tag_status_after
    );
    for m in d.deleted_manifests.iter().skip(1) {
        let _ = writeln!(o, "   - also `DELETE /v2/{}/manifests/{}` → {}: an untagged cache manifest of an earlier build (found under `_manifests/revisions` in the registry's storage). Left in place it keeps the cache's layers alive through garbage-collect.", d.cache_repo, m.digest, m.status);
    }
    let gc = d.gc.as_ref().map_or("(no summary line)".into(), |g| {
        format!(
            "{} blobs marked, {} blobs and {} manifests eligible for deletion",
            g.blobs_marked, g.blobs_eligible, g.manifests_eligible
        )
    });
    let _ = writeln!(o, "3. `{}` in the registry container → {gc}", d.gc_command);
    if let Some(s) = d.stale_blob_status_before_restart {
        let _ = writeln!(o, "4. before the restart a deleted blob still answers {s} (in-memory blob descriptor cache); after `docker restart registry7`:");
    }
    let gone = d.cache_only_blobs.iter().filter(|b| b.status == 404).count();
    let _ = writeln!(
        o,
        "5. {gone}/{} cache-only blobs answer 404; storage {} → {} bytes, **{} bytes reclaimed**",
        d.cache_only_blobs.len(),
        d.storage_before,
        d.storage_after,
        d.reclaimed()
    );
    let ok = d.image_after.iter().filter(|p| p.status == 200).count();
    let _ = writeln!(
        o,
        "6. nothing else lost: {ok}/{} parts of lab:cachetest answer 200. `--delete-untagged` was not used; {}.",
        d.image_parts_before,
        d.registry.delete_untagged_advice()
    );
    let _ = writeln!(o, "\nRegistry: {} — garbage collection: <{}>", d.registry, d.registry.docs());
}

/// JUnit XML through quick-junit: a test case per check, points as properties; what a
/// build printed is escaped by the crate, control characters included.
pub fn junit(r: &Report) -> String {
    use quick_junit::{NonSuccessKind, Property, TestCase, TestCaseStatus, TestSuite};
    let mut suite = TestSuite::new(format!("lab7 {} {}", r.kind, r.subject));
    suite.add_property(Property::new("score", (r.score.points + r.score.bonus_points).to_string()));
    suite.add_property(Property::new("max_score", r.score.max_points.to_string()));
    if let Some(review) = &r.review {
        suite.add_property(Property::new("review", review.as_str()));
    }
    for c in &r.checks {
        let body = check_output(r, c);
        let status = match c.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Fail => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(c.seen.as_str()).set_description(body);
                s
            }
            Status::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(c.seen.as_str());
                s
            }
        };
        let mut case = TestCase::new(c.id.to_string(), status);
        case.set_classname(format!("lab7.{}", r.kind)).set_system_out(c.title.as_str());
        case.add_property(Property::new("points", c.points.to_string()));
        case.add_property(Property::new("max_points", c.max_points.to_string()));
        case.add_property(Property::new("bonus", c.bonus.to_string()));
        suite.add_test_case(case);
    }
    let mut report = quick_junit::Report::new("lab7");
    report.add_test_suite(suite);
    report.to_string().expect("a JUnit report serializes")
}

/// Gradescope's results.json: `score`, `max_score`, `tests[]` (`name`, `score`, `max_score`, `status`, `output`).
/// Bonus points count as extra credit: they raise `score`, not `max_score`.
pub fn gradescope(r: &Report) -> serde_json::Value {
    let tests: Vec<serde_json::Value> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Skipped)
        .map(|c| {
            let output = check_output(r, c);
            json!({
                "name": c.title,
                "score": c.points,
                "max_score": if c.bonus { 0.0 } else { c.max_points },
                "status": if c.status == Status::Pass { "passed" } else { "failed" },
                "output": output,
            })
        })
        .collect();
    json!({
        "score": r.score.points + r.score.bonus_points,
        "max_score": r.score.max_points,
        "output": summary_line(r),
        "tests": tests,
    })
}

/// PrairieLearn's external grader results (`/grade/results/results.json`): `score` from 0 to
/// 1 (the compulsory points with the bonus on top, capped at 1: PrairieLearn takes a question's
/// score in 0–1; the bonus stays visible in `tests[]` and the message), `tests[]` with
/// `points`/`max_points`/`message`/`output`.
pub fn prairielearn(r: &Report) -> serde_json::Value {
    let s = &r.score;
    let score = if s.max_points > 0.0 { ((s.points + s.bonus_points) / s.max_points).min(1.0) } else { 0.0 };
    let tests: Vec<serde_json::Value> = r
        .checks
        .iter()
        .filter(|c| c.status != Status::Skipped)
        .map(|c| {
            json!({
                "name": c.title,
                "points": c.points,
                "max_points": if c.bonus { 0.0 } else { c.max_points },
                "message": c.seen,
                "output": check_output(r, c),
            })
        })
        .collect();
    json!({
        "gradable": true,
        "score": score,
        "message": summary_line(r),
        "output": human(r, false),
        "tests": tests,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As `docker buildx imagetools inspect` names a platform manifest (buildx 0.29:
    /// tests/fixtures/diagnoses/registry-3/imagetools-platform-after-delete-untagged.txt): the
    /// reference as given, tag included, `@` its digest.
    #[test]
    fn manifests_are_named_with_the_tag_as_imagetools_names_them() {
        let line = super::super::ManifestLine {
            platform: "linux/amd64".into(),
            digest: "sha256:859c5f995ef9c462988945c13432b02ed05a787d8f38652ad90bb35be27dc039".into(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            size: 856,
            attestation: false,
        };
        let text =
            imagetools("localhost:5000/lab:cachetest", "application/vnd.oci.image.index.v1+json", "sha256:3c", &[line]);
        assert!(
            text.contains("  Name:        localhost:5000/lab:cachetest@sha256:859c5f995ef9c462988945c13432b02ed05a787d8f38652ad90bb35be27dc039"),
            "{text}"
        );
    }
}
