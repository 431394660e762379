//! Headless Chromium (Debian's `chromium`, installed by `make env`) as the HTML reports'
//! reader: the DOM after the page loaded, every console message (a request the page's
//! Content-Security-Policy refused is one), and screenshots kept in target/html-artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Page {
    pub dom: scraper::Html,
    /// What the browser's console said while loading the page.
    pub console: Vec<String>,
    /// A desktop-wide and a phone-wide screenshot of the whole page.
    pub screenshots: Vec<PathBuf>,
}

fn chromium() -> String {
    let browser = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let found = Command::new(&browser).arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        found,
        "the HTML report tests need headless Chromium ({browser}): `make env` installs Debian's chromium, \
         or `apt-get install chromium`; set CHROMIUM=/path/to/chrome elsewhere"
    );
    browser
}

fn headless(browser: &str) -> Command {
    let mut c = Command::new(browser);
    // No sandbox: the tests run as root. No GPU, no first-run or network-touching features.
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run"]).args([
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]);
    c
}

/// Opens `file` as a student would (file://), reads its DOM and console, and keeps screenshots
/// named `name` in target/html-artifacts: the desktop one taken by the browser that reads the
/// DOM, the phone one by a second browser at the same time.
pub fn open(file: &Path, name: &str) -> Page {
    let browser = chromium();
    let url = format!("file://{}", file.canonicalize().unwrap().display());
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/html-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let shot = |what: &str| {
        let shot = dir.join(format!("{name}-{what}.png"));
        let _ = std::fs::remove_file(&shot);
        shot
    };
    let desktop = shot("desktop");
    let dump = headless(&browser)
        .args(["--window-size=1100,3000", &format!("--screenshot={}", desktop.display())])
        .args(["--enable-logging=stderr", "--v=0", "--dump-dom", &url])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let phone = shot("phone");
    let phone_browser = headless(&browser)
        .args(["--window-size=390,4000", &format!("--screenshot={}", phone.display()), &url])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = dump.wait_with_output().unwrap();
    assert!(out.status.success(), "chromium --dump-dom {url}: {}", String::from_utf8_lossy(&out.stderr));
    let console =
        String::from_utf8_lossy(&out.stderr).lines().filter(|l| l.contains(":CONSOLE")).map(String::from).collect();
    let made = phone_browser.wait_with_output().unwrap();
    assert!(made.status.success(), "chromium --screenshot {url}: {}", String::from_utf8_lossy(&made.stderr));
    let screenshots = vec![desktop, phone];
    for shot in &screenshots {
        assert!(shot.is_file(), "no screenshot {} of {url}", shot.display());
    }
    Page { dom: scraper::Html::parse_document(&String::from_utf8_lossy(&out.stdout)), console, screenshots }
}

impl Page {
    pub fn all(&self, selector: &str) -> Vec<scraper::ElementRef<'_>> {
        let s = scraper::Selector::parse(selector).unwrap();
        self.dom.select(&s).collect()
    }

    /// The text a reader sees, whitespace collapsed: what the snapshots hold.
    pub fn text(&self) -> String {
        let body = self.all("body");
        let words: Vec<&str> = body.iter().flat_map(|b| b.text()).flat_map(str::split_whitespace).collect();
        words.join(" ")
    }

    /// What every page must be: no console message (no refused request, no error), nothing
    /// loaded from anywhere (no src, no stylesheet link: the page is one file), and every
    /// chart with its numbers as text.
    pub fn assert_self_contained_and_described(&self) {
        assert_eq!(self.console, Vec::<String>::new(), "the browser's console");
        assert!(self.all("[src], link[href], script, iframe, object").is_empty(), "the page loads something");
        for svg in self.all("svg") {
            let title = svg.select(&scraper::Selector::parse("title").unwrap()).next();
            let desc = svg.select(&scraper::Selector::parse("desc").unwrap()).next();
            assert!(title.is_some() && desc.is_some(), "an SVG chart without a title and description");
            assert!(svg.value().attr("role") == Some("img") && svg.value().attr("aria-labelledby").is_some());
        }
        for bars in self.all("figure.bars") {
            let label = bars.value().attr("aria-label").unwrap_or_default();
            assert!(
                label.chars().any(|c| c.is_ascii_digit()),
                "a bar chart whose text alternative has no numbers: {label:?}"
            );
        }
    }
}
