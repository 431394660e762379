//! The cache requirements: build 2 imports the lab's cache, its steps are CACHED on both
//! platforms, both builds export it, and it is a separate image in mode=max.

use super::{failed_because, not_reached, seen, Evidence, Finding, Observed, Texts};
use crate::builds::vertex::LogForm;
use crate::builds::{BuildLog, CacheImport, VertexState};
use crate::platform::Platform;
use crate::reference::ImageRef;

pub(super) fn cache_imported_from_registry(ev: &Evidence) -> (Texts, Option<Finding>) {
    let cache = &ev.names.cache.repository;
    let texts = Texts {
        expected: format!("build 1 tries to import {cache} (not found yet is fine); build 2 imports it (`inferred cache manifest type`)"),
        fix: format!("pass --cache-from type=registry,ref=<registry7>/{cache} to both builds, with the same ref as --cache-to"),
    };
    let Some((b1, _)) = ev.build1 else { return (texts, None) };
    let Some((b2, _)) = ev.build2 else { return (texts, not_reached("there is no build 2")) };
    if let Some(one) = one_build(b1, b2) {
        return (texts, one);
    }
    if let Some(why) = not_the_labs_cache(ev, b1, b2) {
        return (texts, seen(false, why));
    }
    let place = CachePlace::of(ev, b2, b1);
    let first = match b1.cache_import() {
        CacheImport::NotAttempted => return (texts, seen(false, "build 1 did not try to import a cache".into())),
        CacheImport::NotFound { .. } => "build 1: not found (expected)".to_string(),
        CacheImport::Failed { message, .. } => format!("build 1: {message}"),
        CacheImport::Imported { from, .. } => {
            let what = format!("build 1 imported {from}: a cache existed already, so it is not the first build (whose import finds nothing)");
            return (texts, seen(false, what));
        }
    };
    let finding = match b2.cache_import() {
        CacheImport::Imported { from, .. } if !place.is_labs_cache(&from) => {
            let why = place.why_not(&from).expect("the guard found it is not the lab's cache");
            seen(false, format!("{first}; build 2 imported {from}, {why}"))
        }
        CacheImport::Imported { from, .. } if !b1.import_refs().contains(&from) => seen(
            false,
            format!(
                "{first}; build 2 imported {from}, but build 1 used {}: both builds must name the same cache ref",
                b1.import_refs().join(", ")
            ),
        ),
        CacheImport::Imported { from, manifest_type } => {
            seen(true, format!("{first}; build 2: imported from {from} ({manifest_type})"))
        }
        CacheImport::NotAttempted => seen(false, format!("{first}; build 2 did not try to import")),
        CacheImport::NotFound { from, message } | CacheImport::Failed { from, message } => {
            let refs1 = b1.import_refs();
            let other = match refs1.contains(&from) {
                false if !refs1.is_empty() => {
                    format!(" (build 1 used {}: both builds must name the same cache ref)", refs1.join(", "))
                }
                _ => String::new(),
            };
            seen(false, format!("{first}; build 2: {message}{other}"))
        }
    };
    (texts, finding)
}

/// `registry7:5000/lab` and `registry7:5000/lab:cachetest` name one repository.
/// Where the lab's cache belongs: the rubric's repository (`cachedata1`), in registry7 — the
/// registry the image went to — and not in the image's own repository.
struct CachePlace<'a> {
    cache: &'a ImageRef,
    /// The image the build pushed, as its log names it, registry included.
    image: Option<ImageRef>,
    /// The tty form cuts long names at the terminal's width.
    names_cut: bool,
}

impl<'a> CachePlace<'a> {
    /// For one build's imports: the image it pushed (else the other build's).
    fn of(ev: &'a Evidence, build: &BuildLog, other: &BuildLog) -> CachePlace<'a> {
        let image = build.pushed_image().or_else(|| other.pushed_image()).and_then(|i| i.parse().ok());
        let names_cut = build.form == LogForm::Tty;
        CachePlace { cache: &ev.names.cache, image, names_cut }
    }

    fn is_labs_cache(&self, from: &str) -> bool {
        self.why_not(from).is_none()
    }

    /// Why `from` is not the lab's cache, if it is not.
    fn why_not(&self, from: &str) -> Option<NotTheCache> {
        let Ok(r) = from.parse::<ImageRef>() else { return Some(NotTheCache::NoReference) };
        if let Some(image) = self.image.as_ref().filter(|i| i.registry == r.registry && i.repository == r.repository) {
            return Some(match image.reference == r.reference {
                true => NotTheCache::ImageItself,
                false => NotTheCache::ImageTag {
                    repository: r.repository,
                    image_tag: image.reference.clone(),
                    wanted: self.cache.repository.clone(),
                },
            });
        }
        let wanted = &self.cache.repository;
        let cut = self.names_cut && r.repository.len() >= 4 && wanted.starts_with(&r.repository);
        // registry7 is where the image went; a ref naming another registry is elsewhere.
        let registry7 = self.image.as_ref().and_then(|i| i.registry.clone());
        let elsewhere = registry7.filter(|r7| r.registry.as_ref() != Some(r7));
        let place = r.registry.unwrap_or_else(|| "Docker Hub".into());
        match (r.repository != *wanted && !cut, elsewhere) {
            (true, registry7) => Some(NotTheCache::OtherRepository {
                repository: r.repository,
                wanted: wanted.clone(),
                elsewhere: registry7.map(|r7| (r7, place)),
            }),
            (false, Some(registry7)) => Some(NotTheCache::OtherRegistry { place, registry7 }),
            (false, None) => None,
        }
    }
}

/// Why an imported ref is not the lab's cache (`cachedata1` in registry7, an image of its own).
enum NotTheCache {
    NoReference,
    /// The image itself: its layers are there, but it is no separate cache image.
    ImageItself,
    /// Another tag of the image's own repository (`lab:buildcache` beside `lab:cachetest`).
    ImageTag {
        repository: String,
        image_tag: String,
        wanted: String,
    },
    /// Another repository than the rubric's; `elsewhere` (registry7, the registry it is in)
    /// when it is in another registry too.
    OtherRepository {
        repository: String,
        wanted: String,
        elsewhere: Option<(String, String)>,
    },
    /// The right repository in another registry than registry7.
    OtherRegistry {
        place: String,
        registry7: String,
    },
}

impl std::fmt::Display for NotTheCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotTheCache::NoReference => write!(f, "which is not an image reference"),
            NotTheCache::ImageItself => write!(f, "which is the image itself, not a separate cache image"),
            NotTheCache::ImageTag { repository, image_tag, wanted } => write!(
                f,
                "another tag of the image's own repository {repository} (beside {image_tag}), not a separate image: the lab's cache is {wanted}"
            ),
            NotTheCache::OtherRepository { repository, wanted, elsewhere: None } => {
                write!(f, "but the lab's cache is {wanted}, an image of its own (not {repository})")
            }
            NotTheCache::OtherRepository { repository, wanted, elsewhere: Some((r7, place)) } => write!(
                f,
                "but the lab's cache is {wanted}, an image of its own in registry7 ({r7}, where the image went), not {repository} in {place}"
            ),
            NotTheCache::OtherRegistry { place, registry7 } => {
                write!(f, "which is in {place}, not in registry7 ({registry7}, where the image went)")
            }
        }
    }
}

/// A build that imports only from places that are not the lab's cache, or imports the image
/// itself (its layers are there, but it is no separate cache image), says which and why.
fn not_the_labs_cache(ev: &Evidence, b1: &BuildLog, b2: &BuildLog) -> Option<String> {
    for (n, log, other) in [(1, b1, b2), (2, b2, b1)] {
        let place = CachePlace::of(ev, log, other);
        let refs = log.import_refs();
        let reasons: Vec<(&String, Option<NotTheCache>)> = refs.iter().map(|r| (r, place.why_not(r))).collect();
        if let Some((itself, Some(why))) = reasons.iter().find(|(_, w)| matches!(w, Some(NotTheCache::ImageItself))) {
            return Some(format!("build {n} imports {itself}, {why}"));
        }
        // Only when no ref is the lab's cache: a stale extra `--cache-from` beside it is fine.
        if let Some((first, Some(why))) = reasons.first().filter(|_| reasons.iter().all(|(_, w)| w.is_some())) {
            let refs1 = b1.import_refs();
            let other = match n == 2 && !refs1.is_empty() && !refs1.contains(first) {
                true => format!(" (build 1 used {}: both builds must name the same cache ref)", refs1.join(", ")),
                false => String::new(),
            };
            return Some(format!("build {n} imports {first}, {why}{other}"));
        }
    }
    None
}

/// Build 1 and build 2 are one build's output given twice: nothing compares two builds, so
/// the checks that compare them fail, saying so with the lines that show it.
fn one_build(b1: &BuildLog, b2: &BuildLog) -> Option<Option<Finding>> {
    let shown = b1.same_build_as(b2)?;
    Some(failed_because(
        format!("build 1 and build 2 are one build's output, given twice: {}", shown.join("; ")),
        "run the lab's build twice, with `docker buildx prune -a -f` in between, and save each build's own output"
            .into(),
    ))
}

pub(super) fn cached_steps_both_platforms(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: "in build 2, CACHED for every RUN/COPY/ADD step build 1 ran, for linux/amd64 and linux/arm64 (steps BuildKit ran once for both count for both)".into(),
        fix: "build 2 must run with the same Dockerfile and context as build 1, importing the cache build 1 exported, with the builder's own cache pruned in between (docker buildx prune -a -f); change nothing else".into(),
    };
    let Some((b1, _)) = ev.build1 else { return (texts, None) };
    let Some((b2, _)) = ev.build2 else { return (texts, not_reached("there is no build 2")) };
    if let Some(one) = one_build(b1, b2) {
        return (texts, one);
    }
    if let Some(why) = builder_not_shown_pruned(b1, b2) {
        return (texts, seen(false, format!("not proven: {why}")));
    }
    let targets = Platform::lab_targets();
    let mut parts = Vec::new();
    let mut pass = true;
    for (platform, steps) in b1.layer_steps_by_target(&targets) {
        let missed: Vec<(&String, &str)> = steps
            .iter()
            .filter_map(|step| match b2.state_of(step) {
                Some(VertexState::Cached) => None,
                Some(VertexState::Done) => Some((&step.name, "ran again")),
                Some(_) => Some((&step.name, "did not finish")),
                None => Some((&step.name, "not in build 2")),
            })
            .collect();
        pass &= !steps.is_empty() && missed.is_empty();
        let mut part =
            format!("{platform}: {}/{} RUN/COPY/ADD steps of build 1 CACHED", steps.len() - missed.len(), steps.len());
        if let Some((name, why)) = missed.first() {
            part += &format!(", not cached: {name} ({why})");
        }
        parts.push(part);
    }
    // A layer step only build 2 ran means build 2 did not build what build 1 built.
    let built_before = |s: &crate::builds::Step| b1.steps().any(|(_, t)| t.label() == s.label());
    let new_steps: Vec<&str> = b2
        .steps()
        .filter(|(v, s)| s.makes_layer() && v.state != VertexState::Cached && !built_before(s))
        .map(|(v, _)| v.name.as_str())
        .collect();
    if let Some(first) = new_steps.first() {
        pass = false;
        parts.push(format!("build 2 ran {} step(s) build 1 did not, e.g. {first}", new_steps.len()));
    }
    (texts, seen(pass, parts.join("; ")))
}

/// Why build 2's CACHED lines may have come from the builder's own cache rather than from the
/// registry, if they may: a builder not pruned between the builds still holds build 1's context
/// and receives only what changed, where a pruned one receives the whole context again.
fn builder_not_shown_pruned(b1: &BuildLog, b2: &BuildLog) -> Option<String> {
    match (b1.context_transferred(), b2.context_transferred()) {
        (Some(t1), Some(t2)) if t2 < t1 => Some(format!(
            "build 2 received {t2:.0} bytes of build context where build 1 received {t1:.0}: the builder still held build 1's files (it was not pruned between the builds), so its CACHED lines may come from its own cache, not from the registry"
        )),
        (Some(_), Some(_)) => None,
        _ => Some("the logs do not show both builds' context transfer (`transferring context: …` under `[internal] load build context`), so nothing shows that the builder was pruned between them".into()),
    }
}

pub(super) fn cache_exported(ev: &Evidence) -> (Texts, Option<Finding>) {
    let texts = Texts {
        expected: "`exporting cache to registry` and `writing cache … manifest` in both builds".into(),
        fix: format!("pass --cache-to type=registry,ref=<registry7>/{},mode=max", ev.names.cache.repository),
    };
    let Some((b1, _)) = ev.build1 else { return (texts, None) };
    let logs: Vec<(u8, &BuildLog)> = std::iter::once((1, b1)).chain(ev.build2.map(|(b, _)| (2, b))).collect();
    let mut parts = Vec::new();
    let mut pass = logs.len() == 2;
    for (n, log) in logs {
        match log.cache_export() {
            Some(e) if e.manifest_written => {
                parts.push(format!("build {n}: {} layers written, cache manifest written", e.layers_written))
            }
            Some(e) => {
                pass = false;
                parts.push(format!(
                    "build {n}: export started ({} layers) but no cache manifest written",
                    e.layers_written
                ));
            }
            None => {
                pass = false;
                parts.push(format!("build {n}: no cache export"));
            }
        }
    }
    if parts.len() == 1 {
        parts.push("not reached: there is no build 2".into());
    }
    (texts, seen(pass, parts.join("; ")))
}

pub(super) fn cache_separate_image_mode_max(ev: &Evidence) -> (Texts, Option<Finding>) {
    let (image, cache) = (&ev.names.image, &ev.names.cache);
    let texts = Texts {
        expected: format!("{cache} is its own repository holding a BuildKit cache with layers {image} does not have (intermediate stages: mode=max)"),
        fix: format!("use --cache-to type=registry,ref=<registry7>/{},mode=max (mode=min keeps only the final image's layers) with a multi-stage Dockerfile", cache.repository),
    };
    let finding = match ev.cache {
        Observed::NotGraded => None,
        Observed::Missing => not_reached(format!("{cache} is not in registry7")),
        // After the bonus deletion only the empty repository is left: what it held can no
        // longer be read, and deleting it is what the lab asks, so it is credited.
        Observed::Deleted => seen(
            true,
            format!("{cache} was deleted (its repository is in registry7 with no tag, as after the bonus deletion): its mode can no longer be read from the registry, credited"),
        ),
        Observed::Seen(c) => match &c.manifest {
            None => seen(false, format!("{} holds {}, not a BuildKit cache", c.repository, c.media_type)),
            Some(m) => {
                let what = format!(
                    "{} ({} shape): {} layers ({} bytes), {} of them ({} bytes) not in {image}",
                    c.repository,
                    m.shape,
                    m.layers.len(),
                    m.layer_bytes(),
                    c.layers_not_in_image,
                    c.bytes_not_in_image
                );
                match ev.build1.map(|(b1, _)| stages_with_layers(b1)) {
                    _ if c.layers_not_in_image > 0 => seen(true, what),
                    // Only the final stage makes layers: mode=max has nothing more to keep.
                    Some(1) => failed_because(
                        format!("{what}: every layer this Dockerfile makes is in its final stage, so mode=max and mode=min export the same layers"),
                        "build in a stage of its own (FROM … AS build) and COPY --from=build only the result into the final stage: mode=max then also keeps that stage's layers".into(),
                    ),
                    _ => seen(false, what),
                }
            }
        },
    };
    (texts, finding)
}

/// How many stages of the Dockerfile made layers (RUN/COPY/ADD) in this build.
fn stages_with_layers(log: &BuildLog) -> usize {
    let stages: std::collections::BTreeSet<&str> =
        log.steps().filter(|(_, s)| s.makes_layer()).map(|(_, s)| s.stage.as_str()).collect();
    stages.len()
}
