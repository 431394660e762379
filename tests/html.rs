//! `--format html`: one self-contained page per report, opened in headless Chromium (the DOM
//! it built, its console, screenshots in target/html-artifacts) and snapshot on its text.
//! The lab run's own page (image tree, cache, deletion) is tested with the lab's run in
//! tests/lab/html_report.rs.

mod common;

use std::path::{Path, PathBuf};

use common::browser::{self, Page};
use common::{lab7, text};

/// Writes `lab7 ARGS --format html --out NAME.html` in a temporary folder and opens it.
fn page(name: &str, args: &[&str]) -> (Page, PathBuf) {
    let out = tempfile::tempdir().unwrap().keep().join(format!("{name}.html"));
    let out_arg = out.display().to_string();
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--format", "html", "--out", &out_arg]);
    let o = lab7(&common::root(), &all);
    assert!(o.status.code().is_some_and(|c| c <= 1), "lab7 {all:?}: {}", text(&o));
    (browser::open(&out, name), out)
}

fn snapshot(name: &str, page: &Page) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(common::root().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.add_filter(r"lab7 \d+\.\d+\.\d+", "lab7 [version]");
    settings.bind(|| insta::assert_snapshot!(name, page.text()));
}

fn logs(form: &str) -> [String; 2] {
    let dir = Path::new("tests/fixtures/logs").join(form);
    [dir.join("build1.log").display().to_string(), dir.join("build2.log").display().to_string()]
}

/// The rows of one build's timeline: (state, word beside the bar).
fn rows(page: &Page, build: u8) -> Vec<(String, String)> {
    let figure = format!("figure#build-{build} g.row");
    page.all(&figure)
        .iter()
        .map(|g| {
            // The row's texts: its label, the bar's tooltip, then the word beside the bar.
            let words: Vec<&str> = g.text().map(str::trim).filter(|t| !t.is_empty()).collect();
            (g.value().attr("data-state").unwrap().to_string(), words.last().unwrap().to_string())
        })
        .collect()
}

#[test]
fn a_rawjson_pair_is_drawn_on_buildkits_own_clock_with_every_cached_step_named() {
    let [b1, b2] = logs("buildx-0.29-rawjson");
    let (page, _) = page("grade-logs-rawjson", &["grade-logs", &b1, &b2]);
    page.assert_self_contained_and_described();
    assert_eq!(page.all("figure.timeline").len(), 2);
    for build in [1, 2] {
        let figure = &page.all(&format!("figure#build-{build}"))[0];
        let declared: usize = figure.value().attr("data-rows").unwrap().parse().unwrap();
        assert_eq!(rows(&page, build).len(), declared, "build {build}: a row per vertex");
        assert!(figure.text().collect::<String>().contains("BuildKit's own start and end times"));
        // The cache's own work has bars of its own.
        for kind in ["cache-import", "cache-export"] {
            assert_eq!(page.all(&format!("figure#build-{build} g.row[data-kind={kind}]")).len(), 1, "{kind}");
        }
    }
    // Build 2: every step after FROM CACHED (six per platform), said in words, not only in the hatching.
    let cached: Vec<_> = rows(&page, 2).into_iter().filter(|(state, _)| state == "cached").collect();
    assert_eq!(cached.len(), 12, "{cached:?}");
    assert!(cached.iter().all(|(_, word)| word == "CACHED"));
    assert!(rows(&page, 1).iter().all(|(state, _)| state != "cached"));
    // Bars start where BuildKit says: not all at 0.
    let starts: Vec<&str> = page.all("figure#build-1 rect.bar").iter().filter_map(|r| r.value().attr("x")).collect();
    assert!(starts.iter().any(|x| *x != "420"), "{starts:?}");
    snapshot("html-grade-logs-rawjson", &page);
}

#[test]
fn a_plain_pair_in_polish_has_durations_and_polish_words() {
    let [b1, b2] = logs("buildx-0.29-plain");
    let (page, _) = page("grade-logs-plain-pl", &["grade-logs", &b1, &b2, "--lang", "pl"]);
    page.assert_self_contained_and_described();
    assert_eq!(page.all("html[lang=pl]").len(), 1);
    let t = page.text();
    assert!(t.contains("Sprawdzenia") && t.contains("Dwa budowania"), "{t}");
    assert!(t.contains("wydruk podaje tylko czasy trwania"), "the plain form has no start times: {t}");
    snapshot("html-grade-logs-plain-pl", &page);
}

#[test]
fn a_report_with_problems_gives_each_its_fix_and_docs() {
    let (page, _) =
        page("grade-report-missing-manifest", &["grade-report", "tests/fixtures/reports/missing-manifest.md"]);
    page.assert_self_contained_and_described();
    let failed = page.all("tr.check .status.FAIL").len();
    assert!(failed > 0);
    let problems = page.all("#problems .problem");
    assert_eq!(problems.len(), failed, "a problem per failed check");
    for p in &problems {
        let docs = p.select(&scraper::Selector::parse("a[href^='https://docs.docker.com']").unwrap()).count();
        assert!(docs > 0, "a problem without its docs link: {}", p.text().collect::<String>());
    }
    snapshot("html-grade-report-missing-manifest", &page);
}

/// The harness itself: a page that reaches out is caught (its console says the request was
/// refused), so a clean console means no request left the file.
#[test]
fn a_page_that_loads_from_the_network_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("leaks.html");
    let csp = r#"<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">"#;
    std::fs::write(
        &file,
        format!("<!DOCTYPE html><html><head>{csp}</head><body><img src=\"http://192.0.2.1/x.png\"></body></html>"),
    )
    .unwrap();
    let page = browser::open(&file, "leaks");
    assert_eq!(page.console.len(), 1, "{:?}", page.console);
    assert!(page.console[0].contains("192.0.2.1"));
}

#[test]
fn the_language_follows_the_locale() {
    use lab7::report::html::Lang;
    assert_eq!(Lang::of_locale(Some("pl_PL.UTF-8")), Lang::Pl);
    assert_eq!(Lang::of_locale(Some("en_GB.UTF-8")), Lang::En);
    assert_eq!(Lang::of_locale(Some("C")), Lang::En);
    assert_eq!(Lang::of_locale(None), Lang::En);
}

/// Printable: Chromium prints the page to PDF, and the PDF holds the builds' words (read back
/// with the PDF reader lab7 grades reports with).
#[test]
fn the_page_prints() {
    let [b1, b2] = logs("buildx-0.29-rawjson");
    let (_, html) = page("grade-logs-print", &["grade-logs", &b1, &b2]);
    let pdf = html.with_extension("pdf");
    std::fs::write(&pdf, browser::print(&html)).unwrap();
    let text = pdf_extract::extract_text(&pdf).unwrap();
    for words in ["Build 2 shows CACHED", "exporting cache to registry", "CACHED"] {
        assert!(text.contains(words), "{words} not in the printed page:\n{text}");
    }
}

/// A tty capture has no times at all: each step is a mark, and the page says so.
#[test]
fn a_tty_capture_is_drawn_as_marks_without_times() {
    let [b1, b2] = logs("buildx-0.29-tty-80");
    let (page, _) = page("grade-logs-tty", &["grade-logs", &b1, &b2]);
    page.assert_self_contained_and_described();
    let caption: String = page.all("figure#build-2 figcaption")[0].text().collect();
    assert!(caption.contains("this output form gives no times"), "{caption}");
    let times: Vec<&str> =
        page.all("figure#build-2 g.row").iter().filter_map(|g| g.value().attr("data-time")).collect();
    assert!(!times.is_empty() && times.iter().all(|t| *t == "—"), "{times:?}");
    assert!(rows(&page, 2).iter().any(|(state, word)| state == "cached" && word == "CACHED"));
}
