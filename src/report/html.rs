//! The report as one self-contained HTML page (`--format html`): no script, font or request
//! of any kind (a Content-Security-Policy of `default-src 'none'` says so to the browser), so it
//! opens the same from a Moodle feedback file, an e-mail attachment or a phone. What the lab
//! teaches is drawn from typed data as plain SVG — the two builds as timelines with CACHED
//! steps hatched and named, the image as a tree, the cache beside the image, the storage
//! before and after the deletion — each chart with its numbers as text beside it. Plain SVG
//! from the template rather than a charting crate: four simple shapes (bars and rows) need
//! no library, and the page must not load one.
//!
//! The page is drawn by minijinja from `html/report.html`; this module only turns a
//! `Report` into the numbers and words the template places.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{BuildSummary, Report, RunSummary, StepKind, StepLine, StepState, Verdict};
use crate::checks::{CheckOutcome, Status};
use crate::registry::deletion::DeletionEvidence;

/// The page's language: Polish or English (`--lang`, default from the locale).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
pub enum Lang {
    #[default]
    En,
    Pl,
}

impl Lang {
    /// From `LC_ALL`, `LC_MESSAGES` or `LANG`, the first set (as gettext reads them): `pl_PL.UTF-8` is Polish.
    pub fn from_locale() -> Lang {
        let locale =
            ["LC_ALL", "LC_MESSAGES", "LANG"].iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
        Lang::of_locale(locale.as_deref())
    }

    /// A locale's language: `pl…` is Polish, anything else English.
    pub fn of_locale(locale: Option<&str>) -> Lang {
        match locale {
            Some(l) if l.to_ascii_lowercase().starts_with("pl") => Lang::Pl,
            _ => Lang::En,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Pl => "pl",
        }
    }
}

/// The page's own words in both languages: (key, English, Polish). The checks' titles and
/// evidence are lab7's words as every other format has them.
const WORDS: &[(&str, &str, &str)] = &[
    (
        "title",
        "Lab 7 — buildx, multi-platform build and registry cache",
        "Lab 7 — buildx, budowanie wieloplatformowe i cache w rejestrze",
    ),
    ("graded_by", "Graded by lab7", "Oceniono przez lab7"),
    ("review", "Check by hand", "Sprawdź ręcznie"),
    ("checks", "Checks", "Sprawdzenia"),
    ("check", "Check", "Sprawdzenie"),
    ("status", "Status", "Wynik"),
    ("points", "Points", "Punkty"),
    ("seen", "Seen", "Stwierdzono"),
    ("expected", "Expected", "Oczekiwano"),
    ("fix", "Fix", "Poprawka"),
    ("docs", "Docker docs", "Dokumentacja Dockera"),
    ("problems", "Problems and fixes", "Problemy i poprawki"),
    ("evidence", "Evidence", "Dowody"),
    ("builds", "The two builds", "Dwa budowania"),
    ("build", "Build", "Budowanie"),
    ("step", "Step", "Krok"),
    ("platform", "Platform", "Platforma"),
    ("state", "State", "Stan"),
    ("time", "Time", "Czas"),
    (
        "started_at",
        "bars placed by BuildKit's own start and end times",
        "paski według czasów startu i końca z BuildKit",
    ),
    (
        "no_times",
        "the output gives durations only: bars start together",
        "wydruk podaje tylko czasy trwania: paski zaczynają się razem",
    ),
    (
        "no_durations",
        "this output form gives no times: each step is a mark",
        "ta postać wydruku nie podaje czasów: każdy krok to znacznik",
    ),
    ("built", "built", "zbudowano"),
    ("cached", "CACHED", "CACHED"),
    ("failed", "failed", "błąd"),
    ("unfinished", "unfinished", "nieukończone"),
    ("cache_import", "cache import", "import cache"),
    ("cache_import_none", "cache import: none found", "import cache: nie znaleziono"),
    ("cache_export", "cache export", "eksport cache"),
    ("steps_cached", "steps CACHED", "kroków CACHED"),
    ("image", "The image", "Obraz"),
    ("attestations", "attestations", "atestacje"),
    ("cache", "The cache image beside the image", "Obraz cache obok obrazu"),
    ("shared", "layers the image has too", "warstwy, które ma też obraz"),
    ("cache_only", "layers only the cache holds (what mode=max adds)", "warstwy tylko w cache (to dodaje mode=max)"),
    ("layers", "layers", "warstw"),
    ("deletion", "The deletion", "Usunięcie"),
    ("storage_before", "storage before", "magazyn przed"),
    ("storage_after", "storage after", "magazyn po"),
    ("reclaimed", "reclaimed", "odzyskano"),
    ("removed", "removed", "usunięto"),
    ("image_whole", "the image's parts still answer 200", "części obrazu nadal odpowiadają 200"),
    ("bytes", "bytes", "bajtów"),
    ("yes", "yes", "tak"),
    ("no", "no", "nie"),
];

fn words(lang: Lang) -> BTreeMap<&'static str, &'static str> {
    WORDS.iter().map(|(k, en, pl)| (*k, if lang == Lang::Pl { *pl } else { *en })).collect()
}

/// lab7's pages: `page.html` (the head every page shares: the Content-Security-Policy, the
/// common style) and `report.html` (a report); the class's page adds its own.
pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.add_template("page.html", include_str!("html/page.html")).expect("the page template parses");
    env.add_template("report.html", include_str!("html/report.html")).expect("the report template parses");
    env
}

/// The page of a report.
pub fn render(report: &Report, lang: Lang) -> String {
    let env = templates();
    let page = Page::of(report, lang);
    env.get_template("report.html").and_then(|t| t.render(&page)).expect("the report template renders")
}

#[derive(Serialize)]
struct Page {
    lang: &'static str,
    t: BTreeMap<&'static str, &'static str>,
    subject: String,
    kind: String,
    version: String,
    pass: bool,
    verdict: &'static str,
    score: String,
    review: Option<String>,
    checks: Vec<CheckRow>,
    problems: Vec<CheckRow>,
    builds: Vec<Timeline>,
    image: Option<ImageTree>,
    cache: Option<Bars>,
    deletion: Option<Deletion>,
}

impl Page {
    fn of(r: &Report, lang: Lang) -> Page {
        let t = words(lang);
        let checks: Vec<CheckRow> = r.checks.iter().map(|c| CheckRow::of(c, r)).collect();
        let run = r.run.as_ref();
        Page {
            lang: lang.code(),
            subject: r.subject.clone(),
            kind: r.kind.clone(),
            version: r.lab7_version.clone(),
            pass: r.verdict == Verdict::Pass,
            verdict: if r.verdict == Verdict::Pass { "PASS" } else { "FAIL" },
            score: r.score_line(),
            review: r.review.clone(),
            problems: checks.iter().filter(|c| c.failed).cloned().collect(),
            checks,
            builds: r.builds.iter().map(|b| Timeline::of(b, &t)).collect(),
            image: run.and_then(ImageTree::of),
            cache: run.and_then(|run| cache_bars(run, &t)),
            deletion: run.and_then(|run| run.deletion.as_ref()).map(|d| Deletion::of(d, &t)),
            t,
        }
    }
}

#[derive(Serialize, Clone)]
struct CheckRow {
    title: String,
    /// The status as its word: PASS, FAIL or SKIP.
    status: &'static str,
    failed: bool,
    points: String,
    expected: String,
    seen: String,
    fix: Option<String>,
    docs: String,
    quotes: Vec<(String, String)>,
    /// Known failures diagnosed for it.
    diagnoses: Vec<DiagnosisRow>,
}

#[derive(Serialize, Clone)]
struct DiagnosisRow {
    cause: String,
    fix: Vec<String>,
    docs: String,
    evidence: Vec<String>,
}

impl CheckRow {
    fn of(c: &CheckOutcome, r: &Report) -> CheckRow {
        CheckRow {
            title: c.title.clone(),
            status: match c.status {
                Status::Pass => "PASS",
                Status::Fail => "FAIL",
                Status::Skipped => "SKIP",
            },
            failed: c.status == Status::Fail,
            points: format!("{}/{}", c.points, c.max_points),
            expected: c.expected.clone(),
            seen: c.seen.clone(),
            fix: c.fix.clone(),
            docs: c.docs.clone(),
            quotes: c.quotes.iter().map(|q| (q.at.clone(), q.text.clone())).collect(),
            diagnoses: r
                .diagnoses_of(c.id)
                .map(|d| DiagnosisRow {
                    cause: d.cause.clone(),
                    fix: d.fix.clone(),
                    docs: d.docs.clone(),
                    evidence: d.evidence.iter().map(|(_, line)| line.clone()).collect(),
                })
                .collect(),
        }
    }
}

/// Where the timeline's bars start, in the SVG's own units (the labels are left of it).
const BARS_X: f64 = 420.0;
const BARS_WIDTH: f64 = 560.0;
const ROW: f64 = 22.0;

/// A build's vertices as rows of a timeline: x and width in SVG units.
#[derive(Serialize)]
struct Timeline {
    number: u8,
    seconds: Option<String>,
    /// What the bars' x means: BuildKit's start times, durations from 0, or no times at all.
    scale: &'static str,
    total: String,
    height: f64,
    rows: Vec<TimelineRow>,
    /// Per platform: CACHED steps of the layer-making ones, the text alternative's summary.
    summary: Vec<String>,
}

#[derive(Serialize)]
struct TimelineRow {
    y: f64,
    label: String,
    /// The label cut to fit left of the bars (the whole one is the bar's tooltip and in the table).
    short: String,
    word_x: f64,
    platform: String,
    kind: &'static str,
    state: &'static str,
    word: &'static str,
    x: f64,
    width: f64,
    time: String,
}

impl Timeline {
    fn of(b: &BuildSummary, t: &BTreeMap<&'static str, &'static str>) -> Timeline {
        let has_starts = b.steps.iter().any(|s| s.start_ms.is_some());
        let has_durations = b.steps.iter().any(|s| s.duration_ms.is_some());
        let end = |s: &StepLine| s.start_ms.unwrap_or(0) + s.duration_ms.unwrap_or(0);
        let total_ms = b.steps.iter().map(end).max().unwrap_or(0).max(1) as f64;
        let rows = b
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let x = BARS_X + BARS_WIDTH * s.start_ms.unwrap_or(0) as f64 / total_ms;
                // Too short to see (or no time at all): a mark 3 units wide still shows the state.
                let width = (BARS_WIDTH * s.duration_ms.unwrap_or(0) as f64 / total_ms).max(3.0);
                TimelineRow {
                    y: 24.0 + i as f64 * ROW,
                    label: s.label.clone(),
                    short: short(&s.label, 64),
                    word_x: round1((x + width + 4.0).min(930.0)),
                    platform: s.platform.clone().unwrap_or_default(),
                    kind: kind_name(s.kind),
                    state: state_name(s.state),
                    word: state_word(s, t),
                    x: round1(x),
                    width: round1(width),
                    time: s.duration_ms.map(|d| format!("{:.1} s", d as f64 / 1000.0)).unwrap_or_else(|| "—".into()),
                }
            })
            .collect::<Vec<_>>();
        Timeline {
            number: b.number,
            seconds: b.seconds.map(|s| format!("{s:.1} s")),
            scale: match (has_starts, has_durations) {
                (true, _) => "started_at",
                (false, true) => "no_times",
                (false, false) => "no_durations",
            },
            total: format!("{:.1} s", total_ms / 1000.0),
            height: 24.0 + rows.len() as f64 * ROW + 8.0,
            rows,
            summary: b
                .platforms
                .iter()
                .map(|p| {
                    format!(
                        "{}: {}/{} RUN/COPY/ADD {}",
                        p.platform, p.cached_layer_steps, p.layer_steps, t["steps_cached"]
                    )
                })
                .collect(),
        }
    }
}

fn kind_name(k: StepKind) -> &'static str {
    match k {
        StepKind::Step => "step",
        StepKind::CacheImport => "cache-import",
        StepKind::CacheExport => "cache-export",
        StepKind::Other => "other",
    }
}

fn state_name(s: StepState) -> &'static str {
    match s {
        StepState::Built => "built",
        StepState::Cached => "cached",
        StepState::Failed => "failed",
        StepState::Unfinished => "unfinished",
    }
}

/// The word beside a bar: the state, or what the bar is for the cache's own vertices.
fn state_word(s: &StepLine, t: &BTreeMap<&'static str, &'static str>) -> &'static str {
    match (s.kind, s.state) {
        (_, StepState::Cached) => t["cached"],
        // Build 1's import finds no cache yet: BuildKit marks it an error, the lab expects it.
        (StepKind::CacheImport, StepState::Failed) => t["cache_import_none"],
        (_, StepState::Failed) => t["failed"],
        (_, StepState::Unfinished) => t["unfinished"],
        (StepKind::CacheImport, _) => t["cache_import"],
        (StepKind::CacheExport, _) => t["cache_export"],
        _ => t["built"],
    }
}

fn short(label: &str, chars: usize) -> String {
    match label.char_indices().nth(chars) {
        Some((at, _)) => format!("{}…", &label[..at]),
        None => label.to_string(),
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// index → each platform's manifest → its layers, attestations apart.
#[derive(Serialize)]
struct ImageTree {
    name: String,
    digest: String,
    media_type: String,
    platforms: Vec<PlatformBranch>,
    attestations: Vec<(String, u64)>,
}

#[derive(Serialize)]
struct PlatformBranch {
    platform: String,
    digest: String,
    size: u64,
    /// Each layer: short digest and size.
    layers: Vec<(String, u64)>,
    /// What its ELF binaries are built for, as read from the layers.
    binaries: String,
}

impl PlatformBranch {
    fn of(m: &super::ManifestLine, read: Option<&crate::registry::binaries::PlatformBinaries>) -> PlatformBranch {
        let arch = m.platform.rsplit('/').next().unwrap_or_default();
        let binaries = match read {
            None => String::new(),
            Some(b) if b.elf_files == 0 => "no ELF binaries read".into(),
            Some(b) if b.foreign.is_empty() => format!("{} ELF binaries, all built for {arch}", b.elf_files),
            Some(b) => {
                let foreign: Vec<String> = b.foreign.iter().map(|(path, a)| format!("{path} ({a})")).collect();
                format!("{} ELF binaries; built for another CPU: {}", b.elf_files, foreign.join(", "))
            }
        };
        PlatformBranch {
            platform: m.platform.clone(),
            digest: m.digest.clone(),
            size: m.size,
            layers: read.map_or_else(Vec::new, |b| {
                b.layers.iter().map(|(d, size)| (d.abbreviated().to_string(), *size)).collect()
            }),
            binaries,
        }
    }
}

impl ImageTree {
    fn of(run: &RunSummary) -> Option<ImageTree> {
        let image = run.image.as_ref()?;
        let (att, plat): (Vec<_>, Vec<_>) = image.manifests.iter().partition(|m| m.attestation);
        Some(ImageTree {
            name: image.name.clone(),
            digest: image.digest.clone(),
            media_type: image.media_type.clone(),
            platforms: plat
                .iter()
                .map(|m| {
                    let read = image.platforms_read.iter().find(|b| b.platform.to_string() == m.platform);
                    PlatformBranch::of(m, read)
                })
                .collect(),
            attestations: att.iter().map(|m| (m.digest.clone(), m.size)).collect(),
        })
    }
}

/// Horizontal bars with their numbers: widths in percent of the largest.
#[derive(Serialize)]
struct Bars {
    title: String,
    bars: Vec<Bar>,
}

#[derive(Serialize)]
struct Bar {
    label: String,
    value: String,
    class: &'static str,
    percent: f64,
}

fn bars(title: String, items: Vec<(String, u64, String, &'static str)>) -> Bars {
    let max = items.iter().map(|i| i.1).max().unwrap_or(0).max(1) as f64;
    let bars = items
        .into_iter()
        .map(|(label, n, value, class)| Bar { label, value, class, percent: round1((n as f64 / max * 100.0).max(0.5)) })
        .collect();
    Bars { title, bars }
}

fn cache_bars(run: &RunSummary, t: &BTreeMap<&'static str, &'static str>) -> Option<Bars> {
    let c = run.cache.as_ref()?;
    let shared_layers = c.layers.saturating_sub(c.layers_not_in_image);
    let shared_bytes = c.layer_bytes.saturating_sub(c.bytes_not_in_image);
    Some(bars(
        format!("{} ({} {})", c.name, c.layers, t["layers"]),
        vec![
            (
                t["shared"].to_string(),
                shared_bytes,
                format!("{shared_layers} {}, {shared_bytes} {}", t["layers"], t["bytes"]),
                "shared",
            ),
            (
                t["cache_only"].to_string(),
                c.bytes_not_in_image,
                format!("{} {}, {} {}", c.layers_not_in_image, t["layers"], c.bytes_not_in_image, t["bytes"]),
                "cache-only",
            ),
        ],
    ))
}

#[derive(Serialize)]
struct Deletion {
    storage: Bars,
    reclaimed: i64,
    removed: Vec<(String, u16)>,
    cache_only: Vec<(String, u16)>,
    image_whole: String,
    gc_command: String,
}

impl Deletion {
    fn of(d: &DeletionEvidence, t: &BTreeMap<&'static str, &'static str>) -> Deletion {
        let bytes = |n: u64| format!("{n} {}", t["bytes"]);
        let answering = d.image_after.iter().filter(|p| p.status == 200).count();
        Deletion {
            storage: bars(
                String::new(),
                vec![
                    (t["storage_before"].to_string(), d.storage_before, bytes(d.storage_before), "before"),
                    (t["storage_after"].to_string(), d.storage_after, bytes(d.storage_after), "after"),
                ],
            ),
            reclaimed: d.reclaimed(),
            removed: d.deleted_manifests.iter().map(|p| (format!("{} {}", p.what, p.digest), p.status)).collect(),
            cache_only: d.cache_only_blobs.iter().map(|p| (p.digest.to_string(), p.status)).collect(),
            image_whole: format!("{answering}/{}", d.image_after.len()),
            gc_command: d.gc_command.clone(),
        }
    }
}
