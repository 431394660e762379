//! The pieces of evidence a report pastes, found by what the real tools print, wherever they
//! are (a Markdown code block, a run of lines in a PDF, a DOCX paragraph): build outputs, the
//! manifest listing, registry transcripts (curl, `garbage-collect`, restart), the builder
//! prune and problems the catalogue knows (documentation links are read where they are
//! needed, in a problem's prose: `links_in`).

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::extract::{Line, Location};
use crate::builds::BuildLog;
use crate::diagnosis::{self, Diagnosis};
use crate::platform::Platform;
use crate::reference::Digest;

/// A line of the report, quoted with where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Quote {
    pub at: Location,
    pub text: String,
}

impl Quote {
    /// A line quoted as it reads, trimmed.
    pub fn of(line: &Line) -> Quote {
        Quote { at: line.at, text: line.text.trim().to_string() }
    }
}

impl std::fmt::Display for Quote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: `{}`", self.at, self.text)
    }
}

/// One build's output as pasted.
#[derive(Debug, Clone)]
pub struct PastedBuild {
    /// Its first and last line.
    pub first: Quote,
    pub last: Quote,
    /// The `docker buildx build …` line just above it, when there is one.
    pub command: Option<Quote>,
    /// Where it sits among the report's lines (for "between build 1 and build 2").
    pub span: (usize, usize),
    pub lines: Vec<Line>,
    pub log: BuildLog,
}

impl PastedBuild {
    /// The first line holding `needle`, quoted.
    pub fn quote(&self, needle: &str) -> Option<Quote> {
        self.lines.iter().find(|l| l.text.contains(needle)).map(Quote::of)
    }

    /// Every quoted line matching `re`.
    fn quotes(&self, re: &Regex) -> Vec<Quote> {
        self.lines.iter().filter(|l| re.is_match(&l.text)).map(Quote::of).collect()
    }

    /// The digests of the manifest list (index) it pushed, with the lines that print them.
    pub fn index_digests(&self) -> Vec<(Digest, Quote)> {
        digests_in(&self.quotes(&PUSHED_INDEX))
    }

    /// The digests of the platform manifests it exported.
    pub fn manifest_digests(&self) -> Vec<(Digest, Quote)> {
        digests_in(&self.quotes(&EXPORTED_MANIFEST))
    }

    /// The digests of the attestation manifests it exported (buildx's provenance).
    pub fn attestation_digests(&self) -> Vec<(Digest, Quote)> {
        digests_in(&self.quotes(&EXPORTED_ATTESTATION))
    }

    /// The cache manifest it wrote (`writing cache image manifest sha256:…`).
    pub fn cache_manifest(&self) -> Option<(Digest, Quote)> {
        digests_in(&self.quotes(&CACHE_MANIFEST)).into_iter().next()
    }

    /// The `ref=` of a `--cache-to` or `--cache-from` flag of its command.
    pub fn command_ref(&self, flag: &str) -> Option<String> {
        let c = self.command.as_ref()?;
        let re = Regex::new(&format!(r"{flag}[ =]\S*ref=([^,\s]+)")).expect("a valid pattern");
        re.captures(&c.text).map(|m| m[1].to_string())
    }

    /// Lines with a duration (`#9 DONE 0.3s`, `=> [..] RUN … 0.4s`): a build's fingerprint.
    pub fn timed_lines(&self) -> Vec<&str> {
        self.lines.iter().map(|l| l.text.trim()).filter(|t| TIMED.is_match(t)).collect()
    }
}

/// The manifest listing: `docker buildx imagetools inspect` or `docker manifest inspect`.
#[derive(Debug, Clone)]
pub struct ManifestListing {
    pub first: Quote,
    /// The index digest (imagetools prints it; `docker manifest inspect` does not).
    pub digest: Option<(Digest, Quote)>,
    /// Each platform manifest listed, attestations left out.
    pub platforms: Vec<(Platform, Quote)>,
    /// The platform manifests' digests.
    pub manifests: Vec<(Digest, Quote)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Method {
    Get,
    Head,
    Delete,
}

/// A request to the registry's API as a transcript shows it, with its answer.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub command: Quote,
    pub method: Method,
    pub repository: String,
    /// A tag, or a digest.
    pub reference: String,
    pub accept: Option<String>,
    pub status: Option<(u16, Quote)>,
    pub content_digest: Option<(Digest, Quote)>,
}

impl Exchange {
    pub fn by_digest(&self) -> Option<Digest> {
        self.reference.parse().ok()
    }
}

/// A `registry garbage-collect` run.
#[derive(Debug, Clone)]
pub struct GarbageCollect {
    pub command: Quote,
    pub delete_untagged: bool,
}

/// Everything found in a report.
#[derive(Debug, Clone, Default)]
pub struct Pieces {
    pub builds: Vec<PastedBuild>,
    pub listings: Vec<ManifestListing>,
    /// `docker buildx prune` commands (or their output's `Total:` line), with their line index.
    pub prunes: Vec<(usize, Quote)>,
    pub exchanges: Vec<Exchange>,
    pub garbage_collects: Vec<GarbageCollect>,
    pub restarts: Vec<Quote>,
    /// Deletion switched on: `REGISTRY_STORAGE_DELETE_ENABLED=true` or `delete: enabled: true`.
    pub deletion_enabled: Vec<Quote>,
    /// Tool commands that delete a manifest (skopeo, crane, regctl): they resolve a tag to its
    /// digest themselves.
    pub tool_deletes: Vec<Quote>,
    /// Problems and expected messages the catalogue knows, each with where it was seen.
    pub diagnoses: Vec<(Diagnosis, Vec<Location>)>,
    /// Headings (Markdown `#`, or a numbered line such as `5. Problems`), by line index.
    pub headings: Vec<usize>,
    /// Whether each line is inside a Markdown code block (pasted output, not prose).
    pub in_code: Vec<bool>,
}

static PLAIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*#\d+ \S").unwrap());
static TTY: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*(=> |\[\+\] Building )").unwrap());
/// `--progress=rawjson`: one SolveStatus object a line.
static RAWJSON: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"^\s*\{"(vertexes|statuses|logs|warnings)":"#).unwrap());
/// What BuildKit prints after a failed build, around and between its vertices.
static AFTERWORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(-{6,}|> |>>> |ERROR:|error:|Dockerfile:\d+|\d+ \| |WARNING:|View build details|Switch to a different driver|Learn more at https?://)").unwrap()
});
static BUILD_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\s*(#0 building with |#1 \[internal\] load build definition|\[\+\] Building )").unwrap()
});
static BUILD_COMMAND: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"docker\s+(buildx\s+)?build\b|buildctl\s+build\b").unwrap());
static PUSHED_INDEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"exporting manifest list sha256:|pushing manifest for \S+@sha256:").unwrap());
static EXPORTED_MANIFEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"exporting manifest sha256:").unwrap());
static EXPORTED_ATTESTATION: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"exporting attestation manifest sha256:").unwrap());
static CACHE_MANIFEST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"writing cache (image )?manifest sha256:").unwrap());
static TIMED: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d+\.\d+s( done)?$").unwrap());
static DIGEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"sha256:[0-9a-f]{64}").unwrap());
static LINK: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"https?://[^\s)>\]"'`,]+"#).unwrap());
static HEADING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(#{1,6} \S|\d{1,2}\.\s+\p{Lu})").unwrap());
static CURL: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\bcurl\b.*?/v2/(\S+?)/manifests/([^\s'\x22]+)").unwrap());
/// The status line, as curl prints it (`-i`, `-I`; `-v` puts `< ` in front) or PowerShell's
/// Invoke-WebRequest (`StatusCode : 202`).
static STATUS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*(?:<\s*)?(?:HTTP/[0-9.]+ (\d{3})|StatusCode\s*:\s*(\d{3}))").unwrap());
static CONTENT_DIGEST: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*(?:<\s*)?docker-content-digest\s*:\s*(sha256:[0-9a-f]{64})").unwrap());
static ACCEPT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(?i)accept:\s*([\w.+/-]+)").unwrap());
/// The builder's cache emptied: pruned, or the builder removed (a new one starts empty).
static PRUNE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"docker\s+(buildx\s+)?(builder\s+)?prune\b|buildctl\s+prune\b|docker\s+buildx\s+rm\b").unwrap()
});
static GC: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"registry\s+garbage-collect\b").unwrap());
static RESTART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"docker\s+(container\s+)?restart\s+\S|docker\s+compose\s+restart|docker\s+start\s+\S").unwrap()
});
static DELETE_ENABLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)REGISTRY_STORAGE_DELETE_ENABLED\s*[=:]\s*\x22?true|delete:\s*\{?\s*enabled:\s*true").unwrap()
});
static TOOL_DELETE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(skopeo\s+delete|crane\s+delete|regctl\s+(manifest|image|tag)\s+(delete|rm))\b").unwrap()
});

impl Pieces {
    pub fn find(lines: &[Line]) -> Pieces {
        let mut p = Pieces { builds: find_builds(lines), listings: find_listings(lines), ..Pieces::default() };
        for (i, line) in lines.iter().enumerate() {
            let t = &line.text;
            if line.heading || HEADING.is_match(t) {
                p.headings.push(i);
            }
            if PRUNE.is_match(t) {
                p.prunes.push((i, Quote::of(line)));
            }
            if GC.is_match(t) {
                p.garbage_collects.push(GarbageCollect {
                    command: Quote::of(line),
                    delete_untagged: t.contains("--delete-untagged") || t.contains(" -m"),
                });
            }
            if RESTART.is_match(t) {
                p.restarts.push(Quote::of(line));
            }
            if DELETE_ENABLED.is_match(t) {
                p.deletion_enabled.push(Quote::of(line));
            }
            if TOOL_DELETE.is_match(t) {
                p.tool_deletes.push(Quote::of(line));
            }
            if let Some(e) = exchange_at(lines, i) {
                p.exchanges.push(e);
            }
        }
        p.diagnoses = diagnose(lines);
        p.in_code = code_blocks(lines);
        p
    }

    /// The manifest listing graded: the one naming the most platforms, when several are pasted.
    pub fn listing(&self) -> Option<&ManifestListing> {
        self.listings.iter().max_by_key(|l| l.platforms.len())
    }

    /// The section a line is in: from the heading before it to the next heading.
    pub fn section_of(&self, line: usize, total: usize) -> (usize, usize) {
        let start = self.headings.iter().rev().find(|h| **h <= line).copied().unwrap_or(0);
        let end = self.headings.iter().find(|h| **h > line).copied().unwrap_or(total);
        (start, end)
    }
}

/// Which lines are inside ``` or ~~~ fences, the fences included.
fn code_blocks(lines: &[Line]) -> Vec<bool> {
    let mut inside = false;
    lines
        .iter()
        .map(|l| {
            let fence = l.text.trim_start().starts_with("```") || l.text.trim_start().starts_with("~~~");
            if fence {
                inside = !inside;
                return true;
            }
            inside
        })
        .collect()
}

/// The catalogue over the report's text: line N of the text is line N of the report.
fn diagnose(lines: &[Line]) -> Vec<(Diagnosis, Vec<Location>)> {
    let text: String = lines.iter().map(|l| format!("{}\n", l.text.trim_end())).collect();
    diagnosis::diagnose(&text)
        .into_iter()
        .map(|d| {
            let at = d.evidence.iter().filter_map(|(n, _)| lines.get(n - 1).map(|l| l.at)).collect();
            (d, at)
        })
        .collect()
}

fn digests_in(quotes: &[Quote]) -> Vec<(Digest, Quote)> {
    let mut out: Vec<(Digest, Quote)> = Vec::new();
    for q in quotes {
        for m in DIGEST.find_iter(&q.text) {
            if let Ok(d) = m.as_str().parse::<Digest>() {
                if !out.iter().any(|(seen, _)| *seen == d) {
                    out.push((d, q.clone()));
                }
            }
        }
    }
    out
}

fn is_build_line(t: &str) -> bool {
    PLAIN.is_match(t) || TTY.is_match(t) || RAWJSON.is_match(t)
}

/// Runs of build output, split where a new build starts (`#0 building with …`, a tty
/// header), each with the build command above it.
fn find_builds(lines: &[Line]) -> Vec<PastedBuild> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        if !is_build_line(&lines[i].text) {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        let mut j = i + 1;
        while j < lines.len() {
            let t = &lines[j].text;
            if starts_another_build(&lines[start..j], t) {
                break;
            }
            if is_build_line(t) || AFTERWORD.is_match(t) {
                end = j;
            } else if !(t.trim().is_empty() || t.trim_start().starts_with("```")) {
                break;
            }
            j += 1;
        }
        let run = &lines[start..=end];
        let log = BuildLog::parse(&text_of(run));
        if !log.vertices.is_empty() {
            match out.last_mut().filter(|before: &&mut PastedBuild| continues(before, run, &log)) {
                Some(before) => before.extend(run, end),
                None => out.push(PastedBuild {
                    first: Quote::of(&run[0]),
                    last: Quote::of(&run[run.len() - 1]),
                    command: command_above(lines, start),
                    span: (start, end),
                    lines: run.to_vec(),
                    log,
                }),
            }
        }
        i = end + 1;
    }
    out
}

fn text_of(run: &[Line]) -> String {
    run.iter().map(|l| format!("{}\n", l.text)).collect()
}

/// A run of output is the rest of the build before it, cut into pieces with the student's
/// words between them (a report quoting the import, then the CACHED steps, then the export):
/// it does not start a build of its own and shows none of the earlier piece's steps again
/// (a second build repeats them). Only the build that ends the output so far may continue.
fn continues(before: &PastedBuild, run: &[Line], log: &BuildLog) -> bool {
    let starts = run.iter().any(|l| BUILD_START.is_match(&l.text));
    let steps_before: Vec<&str> = before.log.steps().map(|(v, _)| v.name.as_str()).collect();
    let repeats = log.steps().any(|(v, _)| steps_before.contains(&v.name.as_str()));
    !starts && !repeats && before.log.form == log.form
}

impl PastedBuild {
    /// Appends the next piece of the same build, read again as one output.
    fn extend(&mut self, run: &[Line], end: usize) {
        self.lines.extend_from_slice(run);
        self.last = Quote::of(&run[run.len() - 1]);
        self.span.1 = end;
        self.log = BuildLog::parse(&text_of(&self.lines));
    }
}

/// Whether `t` begins a new build after `run`: BuildKit's first lines again, once the run
/// has steps (`#0 building with …` is followed by `#1 [internal] load build definition`). A
/// tty header after one that is not `FINISHED` is the same display redrawn (a recorder kept
/// every frame), not another build.
fn starts_another_build(run: &[Line], t: &str) -> bool {
    static ZERO: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*#0 ").unwrap());
    static TTY_HEADER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*\[\+\] Building ").unwrap());
    if TTY_HEADER.is_match(t) {
        if let Some(header) = run.iter().rev().find(|l| TTY_HEADER.is_match(&l.text)) {
            return header.text.contains("FINISHED");
        }
    }
    BUILD_START.is_match(t) && run.iter().any(|l| is_build_line(&l.text) && !ZERO.is_match(&l.text))
}

/// The build command a few lines above a build's output, unless another output comes first.
fn command_above(lines: &[Line], start: usize) -> Option<Quote> {
    lines[start.saturating_sub(6)..start]
        .iter()
        .rev()
        .take_while(|l| !is_build_line(&l.text))
        .find(|l| BUILD_COMMAND.is_match(&l.text))
        .map(Quote::of)
}

/// Manifest listings: imagetools' `Name:/MediaType:/Digest:` header with its `Platform:`
/// lines, or `docker manifest inspect`'s JSON with its `platform` objects.
fn find_listings(lines: &[Line]) -> Vec<ManifestListing> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        match imagetools_listing(lines, i).or_else(|| json_listing(lines, i)) {
            Some((listing, next)) => {
                out.push(listing);
                i = next;
            }
            None => i += 1,
        }
    }
    out
}

static NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*Name:\s+\S+").unwrap());

fn listing_at(line: &Line) -> ManifestListing {
    ManifestListing { first: Quote::of(line), digest: None, platforms: Vec::new(), manifests: Vec::new() }
}

/// A platform the listing names (attestations, `unknown/unknown`, left out), with the digest
/// of its manifest when the listing gave it just before.
fn add_platform(listing: &mut ManifestListing, text: &str, line: &Line, digest: Option<Digest>) {
    let Ok(p) = text.parse::<Platform>() else { return };
    if p.is_unknown() {
        return;
    }
    listing.platforms.push((p, Quote::of(line)));
    if let Some(d) = digest {
        listing.manifests.push((d, Quote::of(line)));
    }
}

/// `docker buildx imagetools inspect` at line `i`: the listing and the line after it.
fn imagetools_listing(lines: &[Line], i: usize) -> Option<(ManifestListing, usize)> {
    static TOP_DIGEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*Digest:\s+(sha256:[0-9a-f]{64})").unwrap());
    static PLATFORM: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^\s*Platform:\s+(\S+)").unwrap());
    let header = NAME.is_match(&lines[i].text)
        && lines[i + 1..].iter().take(3).any(|l| l.text.trim_start().starts_with("MediaType:"));
    if !header {
        return None;
    }
    let mut listing = listing_at(&lines[i]);
    let mut child: Option<Digest> = None;
    let mut j = i + 1;
    // It goes on over blank lines (a word processor may hold each line as a paragraph) and its
    // own keys; it ends at the first other line.
    static PART: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^(\s|Name:|MediaType:|Digest:|Manifests:|Platform:|Annotations:|Provenance:|SBOM:|vnd\.|$)")
            .unwrap()
    });
    let ends = |j: usize| !PART.is_match(&lines[j].text);
    while j < lines.len() && !ends(j) {
        let l = &lines[j];
        if let Some(c) = TOP_DIGEST.captures(&l.text) {
            listing.digest = c[1].parse().ok().map(|d| (d, Quote::of(l)));
        } else if NAME.is_match(&l.text) {
            child = DIGEST.find(&l.text).and_then(|m| m.as_str().parse().ok());
        } else if let Some(c) = PLATFORM.captures(&l.text) {
            add_platform(&mut listing, &c[1], l, child.take());
        }
        j += 1;
    }
    Some((listing, j))
}

/// `docker manifest inspect` (an index's JSON) at line `i`: the listing and the line after it.
fn json_listing(lines: &[Line], i: usize) -> Option<(ManifestListing, usize)> {
    static JSON_START: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#""mediaType":\s*"application/vnd\.(oci\.image\.index|docker\.distribution\.manifest\.list)"#)
            .unwrap()
    });
    static FIELD: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r#""(architecture|os|variant|digest)":\s*"([\w:.-]+)""#).unwrap());
    if !JSON_START.is_match(&lines[i].text) {
        return None;
    }
    let mut listing = listing_at(&lines[i]);
    let mut fields: std::collections::BTreeMap<String, String> = Default::default();
    let mut depth = 0i64;
    let mut j = i + 1;
    while j < lines.len() && depth >= 0 {
        let l = &lines[j];
        depth += l.text.matches(['{', '[']).count() as i64 - l.text.matches(['}', ']']).count() as i64;
        for c in FIELD.captures_iter(&l.text) {
            fields.insert(c[1].to_string(), c[2].to_string());
        }
        // A platform object ends at its closing brace, its variant (if any) read before it.
        if l.text.trim_start().starts_with('}') {
            if let (Some(a), Some(o)) = (fields.get("architecture"), fields.get("os")) {
                let text = fields.get("variant").map_or(format!("{o}/{a}"), |v| format!("{o}/{a}/{v}"));
                let digest = fields.get("digest").and_then(|d| d.parse().ok());
                add_platform(&mut listing, &text, l, digest);
                fields.clear();
            }
        }
        j += 1;
    }
    Some((listing, j))
}

/// A curl request to `/v2/<name>/manifests/<ref>` at line `i`, with the status and digest it
/// answered (the lines after it, up to the next command).
fn exchange_at(lines: &[Line], i: usize) -> Option<Exchange> {
    let t = &lines[i].text;
    let c = CURL.captures(t)?;
    static DELETE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"(-X|--request)\s*'?\x22?DELETE").unwrap());
    static HEAD: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s(-\w*I\w*|--head)\b").unwrap());
    let method = if DELETE.is_match(t) {
        Method::Delete
    } else if HEAD.is_match(t) {
        Method::Head
    } else {
        Method::Get
    };
    let mut e = Exchange {
        command: Quote::of(&lines[i]),
        method,
        repository: c[1].to_string(),
        reference: c[2].trim_end_matches(['\'', '"']).to_string(),
        accept: ACCEPT.captures(t).map(|a| a[1].to_string()),
        status: None,
        content_digest: None,
    };
    for l in lines[i + 1..].iter().take(15).take_while(|l| !l.text.contains("curl ") && !l.text.starts_with("$ ")) {
        if let Some(s) = STATUS.captures(&l.text) {
            let code = s.get(1).or(s.get(2)).map_or(0, |m| m.as_str().parse().unwrap_or(0));
            e.status.get_or_insert((code, Quote::of(l)));
        }
        if let Some(d) = CONTENT_DIGEST.captures(&l.text) {
            e.content_digest = d[1].parse().ok().map(|d| (d, Quote::of(l)));
        }
    }
    Some(e)
}

/// The links in a line of text.
pub fn links_in(text: &str) -> Vec<String> {
    LINK.find_iter(text).map(|m| m.as_str().trim_end_matches(['.', ';', ':']).to_string()).collect()
}

/// A line of pasted output (a build, a command and what it printed), not the student's prose.
pub fn is_output(text: &str) -> bool {
    static OUTPUT: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r#"^\s*(\$ |```|HTTP/|[A-Z][\w-]+: \S|[{}\[\]"]|\w[\w.-]*: marking |blob eligible|manifest eligible|Deleting blob|\d+ blobs marked)"#).unwrap()
    });
    is_build_line(text) || AFTERWORD.is_match(text) || OUTPUT.is_match(text)
}
