//! Headless Chromium (Debian's `chromium`, installed by `make env`) as the HTML reports'
//! reader: the DOM after the page loaded, every message of its console (a request the page's
//! Content-Security-Policy refused is one), and screenshots kept in target/html-artifacts.
//!
//! One browser per test binary, driven over the DevTools protocol (the headless_chrome
//! crate): each page opens in a tab of its own. A browser started per page (it was two:
//! `--dump-dom` and a phone-wide `--screenshot`) cost about 2 CPU-seconds each: Chromium was 9 %
//! of the Docker tests' CPU (`perf record -a`), and the pages' own binary took 13 s, 5.4 s now.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::protocol::cdp::{Emulation, Page as Cdp};
use headless_chrome::{Browser, LaunchOptions, Tab};

pub struct Page {
    pub dom: scraper::Html,
    /// What the browser's console said while loading the page.
    pub console: Vec<String>,
    /// A desktop-wide and a phone-wide screenshot of the page.
    pub screenshots: Vec<PathBuf>,
}

/// The binary's browser, started by the first page; closed when the binary exits.
static BROWSER: OnceLock<Mutex<Option<Browser>>> = OnceLock::new();

/// Statics are never dropped: at exit the browser is taken out and dropped, which ends
/// Chromium (its process would otherwise outlive the tests).
extern "C" fn close_browser() {
    if let Some(browser) = BROWSER.get().and_then(|b| b.lock().ok()).and_then(|mut b| b.take()) {
        drop(browser);
    }
}

fn browser() -> Browser {
    let shared = BROWSER.get_or_init(|| {
        let path = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let found = std::process::Command::new(&path).arg("--version").output().is_ok_and(|o| o.status.success());
        assert!(
            found,
            "the HTML report tests need headless Chromium ({path}): `make env` installs Debian's chromium, \
             or `apt-get install chromium`; set CHROMIUM=/path/to/chrome elsewhere"
        );
        let options = LaunchOptions::default_builder()
            // A bare name is looked up on PATH, as for the check above (std's Command).
            .path(Some(PathBuf::from(path)))
            // No sandbox: the tests run as root.
            .sandbox(false)
            .headless(true)
            // A test binary's pages come minutes apart: the browser stays until the binary ends.
            .idle_browser_timeout(Duration::from_secs(3600))
            .build()
            .expect("Chromium's launch options");
        let browser = Browser::new(options).unwrap_or_else(|e| panic!("start headless Chromium: {e}"));
        // SAFETY: registers a plain function with no arguments, run once at exit.
        unsafe { libc::atexit(close_browser) };
        Mutex::new(Some(browser))
    });
    shared.lock().unwrap().clone().expect("the browser is open until the binary exits")
}

/// The viewports pages are shot in (width, height).
const DESKTOP: (u32, u32) = (1100, 3000);
const PHONE: (u32, u32) = (390, 4000);

/// The viewport the page is laid out and shot in.
fn viewport(tab: &Tab, width: u32, height: u32) {
    tab.call_method(Emulation::SetDeviceMetricsOverride {
        width,
        height,
        device_scale_factor: 1.0,
        mobile: false,
        scale: None,
        screen_width: None,
        screen_height: None,
        position_x: None,
        position_y: None,
        dont_set_visible_size: None,
        screen_orientation: None,
        viewport: None,
        display_feature: None,
        device_posture: None,
    })
    .unwrap_or_else(|e| panic!("set the viewport to {width}×{height}: {e}"));
}

/// A tab of the binary's browser with `file` loaded in a desktop-wide viewport, and what its
/// console says (filled as the page loads).
fn load(file: &Path) -> (Arc<Tab>, Arc<Mutex<Vec<String>>>, String) {
    let url = format!("file://{}", file.canonicalize().unwrap().display());
    let tab = browser().new_tab().unwrap_or_else(|e| panic!("a browser tab for {url}: {e}"));
    let console = Arc::new(Mutex::new(Vec::new()));
    let loaded = Arc::new((Mutex::new(false), Condvar::new()));
    let (said, load) = (console.clone(), loaded.clone());
    tab.enable_log().unwrap();
    tab.enable_runtime().unwrap();
    tab.add_event_listener(Arc::new(move |event: &Event| match event {
        // Refused requests (CSP), network and other browser messages.
        Event::LogEntryAdded(e) => {
            let entry = &e.params.entry;
            said.lock().unwrap().push(format!("{:?} {:?}: {}", entry.level, entry.source, entry.text));
        }
        // The page's own console calls and uncaught exceptions.
        Event::RuntimeConsoleAPICalled(e) => {
            said.lock().unwrap().push(format!("console.{:?}: {:?}", e.params.Type, e.params.args))
        }
        Event::RuntimeExceptionThrown(e) => {
            said.lock().unwrap().push(format!("exception: {}", e.params.exception_details.text))
        }
        Event::PageLoadEventFired(_) => {
            *load.0.lock().unwrap() = true;
            load.1.notify_all();
        }
        _ => {}
    }))
    .unwrap();
    viewport(&tab, DESKTOP.0, DESKTOP.1);
    tab.navigate_to(&url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    let (done, signal) = &*loaded;
    let waited = signal.wait_timeout_while(done.lock().unwrap(), Duration::from_secs(60), |done| !*done).unwrap();
    assert!(*waited.0, "{url} did not load within a minute");
    drop(waited);
    (tab, console, url)
}

/// Opens `file` as a student would (file://), reads its DOM and console, and keeps a
/// desktop-wide and a phone-wide screenshot named `name` in target/html-artifacts.
pub fn open(file: &Path, name: &str) -> Page {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/html-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let (tab, console, url) = load(file);
    let html = tab.get_content().unwrap_or_else(|e| panic!("the DOM of {url}: {e}"));
    let shoot = |what: &str| {
        let png = tab
            .capture_screenshot(Cdp::CaptureScreenshotFormatOption::Png, None, None, true)
            .unwrap_or_else(|e| panic!("a {what} screenshot of {url}: {e}"));
        let shot = dir.join(format!("{name}-{what}.png"));
        std::fs::write(&shot, png).unwrap();
        shot
    };
    // The page was loaded desktop-wide (`load`); then laid out again phone-wide.
    let desktop = shoot("desktop");
    viewport(&tab, PHONE.0, PHONE.1);
    let screenshots = vec![desktop, shoot("phone")];
    let _ = tab.close(true);
    let console = console.lock().unwrap().clone();
    Page { dom: scraper::Html::parse_document(&html), console, screenshots }
}

/// `file` printed to PDF as the browser's print dialog would, without header and footer.
pub fn print(file: &Path) -> Vec<u8> {
    let (tab, _, url) = load(file);
    let options =
        headless_chrome::types::PrintToPdfOptions { display_header_footer: Some(false), ..Default::default() };
    let pdf = tab.print_to_pdf(Some(options)).unwrap_or_else(|e| panic!("print {url}: {e}"));
    let _ = tab.close(true);
    pdf
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
