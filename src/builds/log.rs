//! `BuildLog`: BuildKit's progress output as vertices, and what they prove.
//!
//! Three forms are read: buildctl/buildx `--progress=plain` (`#12 [linux/arm64 build1 2/5] RUN …`,
//! `#12 CACHED`), the buildx tty form students paste (`=> CACHED [linux/arm64 build1 2/5] RUN …`,
//! cut at the terminal's width, one frame or a recorder's stream of them: `tty`), and `--progress=rawjson` (BuildKit's SolveStatus objects). How
//! the text was saved (encoding, CRLF, CI timestamps, raw terminal captures) is undone first
//! (`log_text`).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

pub use super::vertex::{LogForm, Step, Vertex, VertexState, VertexTime};
use super::{log_text, rawjson, tty};
use crate::platform::Platform;
use crate::reference::Digest;

/// What the log says about `--import-cache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum CacheImport {
    /// No `importing cache manifest from …` vertex: the build was not asked to import.
    NotAttempted,
    /// The cache did not exist yet (expected in the first build).
    NotFound {
        from: String,
        message: String,
    },
    Failed {
        from: String,
        message: String,
    },
    Imported {
        from: String,
        manifest_type: String,
    },
}

/// A layer-making step one build ran, as another build of the same Dockerfile must show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedStep {
    /// The vertex name: `[linux/amd64 build1 2/5] RUN mkdir -p /var/app`.
    pub name: String,
    /// The name without its platform: `build1 2/5 RUN mkdir -p /var/app`.
    pub label: String,
    /// Where it is in the Dockerfile: stage, index, total, instruction.
    pub position: (String, u32, u32, String),
    /// The platform it was named for.
    pub platform: Option<Platform>,
    /// BuildKit ran it once for every platform.
    pub shared: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheExport {
    /// Distinct layers written (a digest cut by the terminal's width counts by its prefix).
    pub layers_written: usize,
    /// `writing cache … manifest sha256:…` was printed.
    pub manifest_written: bool,
    /// Its digest, when printed whole (the tty form at 80 columns cuts it).
    pub manifest: Option<Digest>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PlatformSteps {
    /// Layer-making steps (RUN/COPY/ADD) seen for this platform.
    pub layer_steps: usize,
    pub cached_layer_steps: usize,
    /// Every step with a CACHED line, FROM and WORKDIR included.
    pub cached_steps: usize,
    pub uncached: Vec<String>,
    pub failed: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BuildLog {
    pub form: LogForm,
    pub vertices: Vec<Vertex>,
    /// Lines outside any vertex that start with `error:` / `ERROR:`.
    pub errors: Vec<String>,
}

static PLAIN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^#(\d+) (.*)$").unwrap());
static DIGEST: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"sha256:[0-9a-f]{64}").unwrap());
/// A digest as the tty form may print it: cut at the terminal's width.
static DIGEST_PREFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"sha256:[0-9a-f]{6,64}").unwrap());

impl BuildLog {
    /// Reads a saved build output in any encoding and wrapping `log_text` undoes.
    pub fn read(bytes: &[u8]) -> BuildLog {
        Self::parse(&log_text::decode(bytes))
    }

    /// Reads any form; it tells them apart by their lines.
    pub fn parse(text: &str) -> BuildLog {
        if rawjson::looks_like(text) {
            let (vertices, errors) = rawjson::parse(text);
            return BuildLog { form: LogForm::RawJson, vertices, errors };
        }
        let text = log_text::normalise(text);
        if text.lines().any(|l| PLAIN.is_match(l)) {
            Self::parse_plain(&text)
        } else {
            Self::parse_tty(&text)
        }
    }

    fn parse_plain(text: &str) -> BuildLog {
        let mut order: Vec<u32> = Vec::new();
        let mut by_id: BTreeMap<u32, Vertex> = BTreeMap::new();
        let mut errors = Vec::new();
        for line in text.lines() {
            let Some(c) = PLAIN.captures(line) else {
                if is_error_line(line) {
                    errors.push(line.trim().to_string());
                }
                continue;
            };
            let id: u32 = c[1].parse().unwrap_or(0);
            let body = c[2].trim_end();
            let Some(v) = by_id.get_mut(&id) else {
                order.push(id);
                by_id.insert(id, Vertex::named(body));
                continue;
            };
            if body == "CACHED" {
                v.state = VertexState::Cached;
            } else if let Some(took) = body.strip_prefix("DONE") {
                if v.state == VertexState::Unfinished {
                    v.state = VertexState::Done;
                    v.time = VertexTime::of_plain(took);
                }
            } else if let Some(msg) = body.strip_prefix("ERROR: ").or(body.strip_prefix("ERROR ")) {
                v.state = VertexState::Error(msg.to_string());
            } else if body != v.name {
                v.lines.push(body.to_string());
            }
        }
        let vertices = order.into_iter().filter_map(|id| by_id.remove(&id)).collect();
        BuildLog { form: LogForm::Plain, vertices, errors }
    }

    fn parse_tty(text: &str) -> BuildLog {
        let (vertices, errors) = tty::parse(text, is_error_line);
        BuildLog { form: LogForm::Tty, vertices, errors }
    }

    pub fn steps(&self) -> impl Iterator<Item = (&Vertex, &Step)> {
        self.vertices.iter().filter_map(|v| v.step.as_ref().map(|s| (v, s)))
    }

    /// The layer-making steps build 1 ran that build 2 must show CACHED, per target platform.
    /// A step belongs to the platform it builds for (`linux/amd64->arm64` to linux/arm64); a
    /// step named for one platform only while the build has several (a `FROM scratch` stage, a
    /// stage pinned with `--platform`, steps BuildKit merged) ran once for all of them and
    /// counts for each. Only what BuildKit ran counts: a stage nothing uses is never built.
    pub fn layer_steps_by_target(&self, targets: &[Platform]) -> BTreeMap<Platform, Vec<ExpectedStep>> {
        let layer: Vec<(&Vertex, &Step)> = self.steps().filter(|(_, s)| s.makes_layer()).collect();
        let mut seen_for: BTreeMap<(String, u32, u32, String), Vec<&Platform>> = BTreeMap::new();
        for (_, s) in &layer {
            if let Some(p) = &s.platform {
                seen_for.entry(s.position()).or_default().push(p);
            }
        }
        let mut out: BTreeMap<Platform, Vec<ExpectedStep>> = targets.iter().map(|t| (t.clone(), Vec::new())).collect();
        for (v, s) in layer {
            let Some(p) = &s.platform else { continue };
            let shared = targets.len() > 1 && seen_for[&s.position()].iter().all(|q| q.matches(p));
            for t in targets.iter().filter(|t| shared || t.matches(p)) {
                let step = ExpectedStep {
                    name: v.name.clone(),
                    label: s.label(),
                    position: s.position(),
                    platform: s.platform.clone(),
                    shared,
                };
                out.entry(t.clone()).or_default().push(step);
            }
        }
        out
    }

    /// The image the build pushed: `registry7:5000/lab:cachetest` from `pushing manifest for …@sha256:…`.
    pub fn pushed_image(&self) -> Option<String> {
        self.vertices.iter().flat_map(|v| &v.lines).find_map(|l| {
            let rest = l.strip_prefix("pushing manifest for ")?;
            Some(rest.split(['@', ' ']).next()?.to_string())
        })
    }

    /// Bytes of build context BuildKit received (`[internal] load build context`, `transferring
    /// context: 1.09kB`). A builder that still holds the previous build's context receives only
    /// what changed (126B after 1.09kB, seen in real runs); after `prune` it receives it all again.
    pub fn context_transferred(&self) -> Option<f64> {
        let v = self.vertices.iter().find(|v| v.name.ends_with("load build context"))?;
        v.lines
            .iter()
            .rev()
            .find_map(|l| parse_size(l.strip_prefix("transferring context: ")?.split_whitespace().next()?))
    }

    /// How a step of another build of the same Dockerfile ended in this one. Steps are matched
    /// by position (stage, index, instruction) and platform, not by their full text: the tty
    /// form cuts names at the terminal's width, not always at the same place. A shared step is
    /// found by position alone: BuildKit names it for either platform, not the same each time.
    pub fn state_of(&self, step: &ExpectedStep) -> Option<&VertexState> {
        let found = |v: &&Vertex| match &v.step {
            Some(s) if s.position() != step.position => false,
            Some(s) => step.shared || s.platform == step.platform,
            None => false,
        };
        self.vertices.iter().find(found).map(|v| &v.state)
    }

    /// Steps by platform; a single-platform build's steps (no platform in the name) are under `None`.
    pub fn per_platform(&self) -> BTreeMap<Option<Platform>, PlatformSteps> {
        let mut out: BTreeMap<Option<Platform>, PlatformSteps> = BTreeMap::new();
        for (v, s) in self.steps() {
            let p = out.entry(s.platform.clone()).or_default();
            let cached = v.state == VertexState::Cached;
            p.cached_steps += cached as usize;
            if let VertexState::Error(_) = v.state {
                p.failed.push(s.label());
            }
            if s.makes_layer() {
                p.layer_steps += 1;
                p.cached_layer_steps += cached as usize;
                if !cached {
                    p.uncached.push(s.label());
                }
            }
        }
        out
    }

    /// Every `importing cache manifest from …` vertex (one per `--cache-from`), in log order.
    pub fn cache_imports(&self) -> Vec<CacheImport> {
        self.vertices.iter().filter(|v| v.name.starts_with("importing cache manifest from")).map(import_of).collect()
    }

    /// What the imports amount to: one that imported wins (BuildKit uses every cache that
    /// loads), else the first failure that is not "not found", else the first "not found".
    /// BuildKit runs the imports in parallel, so their order in the log is not the flags' order.
    pub fn cache_import(&self) -> CacheImport {
        let imports = self.cache_imports();
        let rank = |i: &CacheImport| match i {
            CacheImport::Imported { .. } => 0,
            CacheImport::Failed { .. } => 1,
            CacheImport::NotFound { .. } => 2,
            CacheImport::NotAttempted => 3,
        };
        imports.into_iter().min_by_key(rank).unwrap_or(CacheImport::NotAttempted)
    }

    /// The refs the build tried to import from.
    pub fn import_refs(&self) -> Vec<String> {
        self.cache_imports().into_iter().filter_map(CacheImport::into_from).collect()
    }

    pub fn cache_export(&self) -> Option<CacheExport> {
        let v = self.vertices.iter().find(|v| v.name.starts_with("exporting cache to registry"))?;
        let mut layers: Vec<&str> = v
            .lines
            .iter()
            .filter_map(|l| l.strip_prefix("writing layer "))
            .filter_map(|l| DIGEST_PREFIX.find(l).map(|m| m.as_str()))
            .collect();
        layers.sort();
        layers.dedup();
        let manifest_lines: Vec<&String> =
            v.lines.iter().filter(|l| l.starts_with("writing cache") && l.contains("manifest")).collect();
        let manifest = manifest_lines.iter().find_map(|l| DIGEST.find(l)).and_then(|m| m.as_str().parse().ok());
        let manifest_written = manifest_lines.iter().any(|l| DIGEST_PREFIX.is_match(l));
        Some(CacheExport { layers_written: layers.len(), manifest_written, manifest })
    }

    /// The first error the build reported: the failed step with the last thing it printed,
    /// or buildctl's closing `error:` line.
    pub fn first_failure(&self) -> Option<String> {
        self.vertices
            .iter()
            .find_map(|v| match &v.state {
                VertexState::Error(m) if !v.name.starts_with("importing cache manifest") => {
                    let reason = m.find("did not complete successfully").map_or(m.as_str(), |i| &m[i..]);
                    let said = v.lines.iter().rev().find_map(|l| step_output(l)).map(|o| format!(" (it printed: {o})"));
                    Some(format!("{}: {reason}{}", v.name, said.unwrap_or_default()))
                }
                _ => None,
            })
            .or_else(|| self.errors.first().cloned())
    }

    /// The log as `--progress=plain` prints it: `#N name`, its lines, its state. A rawjson
    /// capture read this way shows its errors and its steps' (base64-encoded) output as text.
    pub fn to_plain(&self) -> String {
        let mut o = String::new();
        for (i, v) in self.vertices.iter().enumerate() {
            let n = i + 1;
            o += &format!("#{n} {}\n", v.name);
            for l in &v.lines {
                o += &format!("#{n} {l}\n");
            }
            match &v.state {
                VertexState::Cached => o += &format!("#{n} CACHED\n"),
                VertexState::Done => o += &format!("#{n} DONE\n"),
                VertexState::Error(m) => o += &format!("#{n} ERROR: {m}\n"),
                VertexState::Unfinished => {}
            }
            o.push('\n');
        }
        for e in &self.errors {
            o += &format!("{e}\n");
        }
        o
    }

    /// Text to diagnose: `log_text::normalise`d, and a rawjson capture in the plain form (its
    /// errors and its steps' base64-encoded output as lines).
    pub fn readable(text: &str) -> String {
        if rawjson::looks_like(text) {
            return Self::parse(text).to_plain();
        }
        log_text::normalise(text)
    }

    /// This output and `other` are one build's (the same output pasted twice, whatever its
    /// wrapping): the same vertices with the same lines and the same ends. Two real builds always
    /// differ somewhere — a step CACHED in one and run in the other, a duration, a digest written.
    /// The lines that show it: what both say they wrote, which two builds never share.
    pub fn same_build_as(&self, other: &BuildLog) -> Option<Vec<String>> {
        if self.vertices.is_empty() || self.vertices != other.vertices {
            return None;
        }
        let written: Vec<String> = self
            .vertices
            .iter()
            .filter(|v| v.name.starts_with("exporting") || v.name.starts_with("pushing"))
            .flat_map(|v| &v.lines)
            .filter(|l| DIGEST_PREFIX.is_match(l))
            .take(2)
            .cloned()
            .collect();
        let steps = self.steps().count();
        let mut shown = vec![format!(
            "the same {} vertices ({steps} Dockerfile steps), each with the same lines and end",
            self.vertices.len()
        )];
        shown.extend(written.into_iter().map(|l| format!("both: {l}")));
        Some(shown)
    }

    /// The CACHED step lines in the form students quote in reports.
    pub fn cached_lines(&self) -> Vec<String> {
        self.vertices
            .iter()
            .filter(|v| v.step.is_some() && v.state == VertexState::Cached)
            .map(|v| format!("CACHED {}", v.name))
            .collect()
    }
}

impl CacheImport {
    fn into_from(self) -> Option<String> {
        match self {
            CacheImport::NotAttempted => None,
            CacheImport::NotFound { from, .. }
            | CacheImport::Failed { from, .. }
            | CacheImport::Imported { from, .. } => Some(from),
        }
    }
}

fn import_of(v: &Vertex) -> CacheImport {
    let from = v.name.trim_start_matches("importing cache manifest from").trim().trim_end_matches(':').to_string();
    let inferred = v.lines.iter().find_map(|l| l.strip_prefix("inferred cache manifest type: "));
    match (&v.state, inferred) {
        (VertexState::Error(m), _) if m.ends_with("not found") || m.contains(": not found") => {
            CacheImport::NotFound { from, message: m.clone() }
        }
        // buildx's tty form marks the vertex ERROR and prints no reason (its error block under
        // `> importing cache manifest from …:` is empty, buildx 0.29): an import that found no
        // cache looks exactly like this, as in every first build.
        (VertexState::Error(m), _) if m.is_empty() => {
            CacheImport::NotFound { from, message: "ERROR (the tty form prints no reason)".into() }
        }
        (VertexState::Error(m), _) => CacheImport::Failed { from, message: m.clone() },
        (_, Some(t)) => CacheImport::Imported { from, manifest_type: t.trim_end_matches(" done").to_string() },
        // buildx tty may fold the sub-line away; a finished import vertex is an import.
        (VertexState::Done, None) => CacheImport::Imported { from, manifest_type: "unknown".into() },
        (_, None) => CacheImport::Failed { from, message: "the import did not finish".into() },
    }
}

/// A RUN step's own output: `0.105 some text` in plain form; rawjson's log lines have no time.
fn step_output(line: &str) -> Option<&str> {
    let text = match line.split_once(' ') {
        Some((time, text)) if time.parse::<f64>().is_ok() => text,
        _ => line,
    };
    Some(text.trim()).filter(|t| !t.is_empty())
}

fn is_error_line(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("error:") || l.starts_with("ERROR:")
}

/// `126B`, `1.09kB`, `2.21MB`, `1.2GB`, as BuildKit's progress prints sizes.
fn parse_size(s: &str) -> Option<f64> {
    let split = s.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = s.split_at(split);
    let scale = match unit {
        "B" => 1.0,
        "kB" | "KB" | "KiB" => 1e3,
        "MB" | "MiB" => 1e6,
        "GB" | "GiB" => 1e9,
        _ => return None,
    };
    num.parse::<f64>().ok().map(|n| n * scale)
}
