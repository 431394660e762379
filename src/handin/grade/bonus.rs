//! The bonus: deleting the cache image, graded on substance — each step shown — and on what
//! the deletion did (an image destroyed, nothing deleted).

use std::sync::LazyLock;

use regex::Regex;

use super::{prose_of_section, Graded, LabBuilds};
use crate::handin::pieces::{Method, Pieces, Quote};
use crate::handin::HandIn;
use crate::reference::Digest;

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

pub(super) fn bonus(h: &HandIn, b: &LabBuilds) -> Graded {
    const EXPECTED: &str = "deletion enabled; the cache manifest's digest read with the right Accept header; DELETE by that digest (202), every revision of the cache manifest; garbage-collect freeing the cache; a restart (or the blob cache caveat); how any image is deleted";
    let text: String = h.lines.iter().map(|l| format!("{}\n", l.text)).collect();
    // What the student says they ran decides what registry 3.x allows.
    let on_3 = REGISTRY3.is_match(&text);
    let parts = [
        deletion_enabled(&h.pieces),
        delete_by_digest(&h.pieces, on_3),
        digest_read(&h.pieces, b, on_3),
        garbage_collected(h, b, on_3),
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
    if let Some(outcome) = deletion_outcome(h, b, on_3) {
        share = share.min(outcome.most());
        let (what, quote) = outcome.said();
        seen = format!("✗ {what}; {seen}");
        quotes.insert(0, quote);
    }
    Graded {
        share,
        expected: EXPECTED,
        seen,
        quotes,
        fix: Some("show each step: deletion enabled, HEAD the cache tag with the cache manifest's Accept header, DELETE /v2/cachedata1/manifests/<digest> for every revision of the cache manifest (each build pushed one), `registry garbage-collect`, restart registry7; then say how any image is deleted".into()),
    }
}

/// The most of the bonus a deletion that deleted nothing earns: one of its six parts.
const NOTHING_DELETED_SHARE: f64 = 1.0 / 6.0;

/// What the deletion the report shows did, where that decides the bonus.
enum DeletionOutcome {
    /// garbage-collect listed manifests of the image itself (its platform manifests, by the
    /// report's own listing or builds) for deletion: the image can no longer be pulled.
    ImageBroken { what: String, quote: Quote },
    /// Every DELETE was refused and no tool deleted, or on registry 3.x only a tag went:
    /// nothing of the cache went.
    NothingDeleted { what: String, quote: Quote },
}

impl DeletionOutcome {
    /// The most of the bonus it leaves.
    fn most(&self) -> f64 {
        match self {
            DeletionOutcome::ImageBroken { .. } => 0.0,
            DeletionOutcome::NothingDeleted { .. } => NOTHING_DELETED_SHARE,
        }
    }

    /// What it was, and the line that shows it.
    fn said(self) -> (String, Quote) {
        match self {
            DeletionOutcome::ImageBroken { what, quote } | DeletionOutcome::NothingDeleted { what, quote } => {
                (what, quote)
            }
        }
    }
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
    let gone: Vec<(Digest, &crate::handin::extract::Line)> = h
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
    let deletes: Vec<&crate::handin::pieces::Exchange> =
        p.exchanges.iter().filter(|e| e.method == Method::Delete).collect();
    let refused = |e: &&crate::handin::pieces::Exchange| e.status.as_ref().is_some_and(|(s, _)| *s >= 400);
    if deletes.is_empty() || !p.tool_deletes.is_empty() || !deletes.iter().all(refused) {
        return None;
    }
    let (status, quote) = deletes[0].status.clone()?;
    let what = format!(
        "nothing was deleted: the registry refused the DELETE ({status}), so the cache is still there whatever garbage-collect did"
    );
    Some(DeletionOutcome::NothingDeleted { what, quote })
}

fn the_delete(p: &Pieces) -> Option<&crate::handin::pieces::Exchange> {
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

/// `registry garbage-collect` run, freeing the cache: no revision of the cache manifest left to
/// hold its layers; `--delete-untagged` on 2.8 needs its caveat said.
fn garbage_collected(h: &HandIn, b: &LabBuilds, on_3: bool) -> Element {
    let Some(gc) = h.pieces.garbage_collects.first() else {
        return element(false, "no `registry garbage-collect`: DELETE alone frees no space", None);
    };
    if let Some(kept) = revision_kept(h, b) {
        return kept;
    }
    if gc.delete_untagged && !on_3 && !CAVEAT.is_match(&section_prose(h, Some(gc.command.at))) {
        return element(
            false,
            "`garbage-collect --delete-untagged` with no caveat: on registry 2.8 it deletes the platform manifests of multi-arch images such as lab:cachetest",
            Some(gc.command.clone()),
        );
    }
    element(true, "garbage-collect run", Some(gc.command.clone()))
}

/// A revision of the cache manifest that garbage-collect still marked after the cache's DELETE
/// was accepted: each build pushed its own cache manifest and the tag names only the last, so
/// deleting the tagged one leaves an earlier build's revision holding the cache's layers (real:
/// `session/` keeps build 1's; `session-every-revision/` deletes both and frees them).
fn revision_kept(h: &HandIn, b: &LabBuilds) -> Option<Element> {
    // After the last accepted DELETE: a student who deletes the tagged revision, sees the GC
    // keep the cache, then deletes the other one and collects again has the bonus whole.
    let deleted = h
        .pieces
        .exchanges
        .iter()
        .rev()
        .find(|e| e.method == Method::Delete && e.status.as_ref().is_some_and(|(s, _)| *s == 202))?;
    let after = h.index_of(deleted.command.at)?;
    let marking =
        Regex::new(&format!(r"^\s*{}: marking manifest (sha256:[0-9a-f]{{64}})", regex::escape(&deleted.repository)))
            .ok()?;
    let (digest, line) =
        h.lines[after..].iter().find_map(|l| Some((marking.captures(&l.text)?[1].parse::<Digest>().ok()?, l)))?;
    let whose = b
        .all
        .iter()
        .position(|x| x.cache_manifest().is_some_and(|(w, _)| w == digest))
        .map(|i| format!(" (build {}'s cache manifest)", i + 1))
        .unwrap_or_default();
    let what = format!(
        "garbage-collect kept the cache: revision {digest}{whose} of {} is still there and holds the cache's layers — each build pushed its own cache manifest and the tag names only the last; DELETE every revision by its digest (the registry's `_manifests/revisions/sha256` lists them), then garbage-collect",
        deleted.repository
    );
    Some(element(false, what, Some(Quote::of(line))))
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
fn section_prose(h: &HandIn, at: Option<crate::handin::extract::Location>) -> String {
    let Some(idx) = at.and_then(|a| h.index_of(a)) else { return String::new() };
    prose_of_section(h, idx, |_| false).iter().map(|l| format!("{}\n", l.text)).collect()
}
