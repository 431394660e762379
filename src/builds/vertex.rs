//! A build log's vertices as BuildKit names them: `Vertex`, its `VertexState`, and the
//! Dockerfile `Step` a vertex name spells out. The model every log form (`log`, `rawjson`) is
//! read into.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use crate::platform::Platform;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogForm {
    Plain,
    Tty,
    RawJson,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state", content = "message")]
pub enum VertexState {
    Done,
    Cached,
    Error(String),
    /// Started, and no DONE/CACHED/ERROR line followed (an interrupted or truncated log).
    Unfinished,
}

/// One Dockerfile instruction as BuildKit names it: `[linux/arm64 build1 2/5] RUN mkdir -p /var/app`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The platform the step builds for: `[linux/amd64->arm64 build 3/4]` builds for linux/arm64
    /// (on linux/amd64, the build platform); `None` in a single-platform build.
    pub platform: Option<Platform>,
    /// Where a cross-compiling step runs (`linux/amd64` in `linux/amd64->arm64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub built_on: Option<Platform>,
    /// The stage's name; empty for an unnamed stage (BuildKit prints none).
    pub stage: String,
    pub index: u32,
    pub total: u32,
    pub instruction: String,
    pub args: String,
}

impl Step {
    /// RUN, COPY and ADD make layers; a registry cache is proven on them.
    pub fn makes_layer(&self) -> bool {
        matches!(self.instruction.trim_start_matches("ONBUILD "), "RUN" | "COPY" | "ADD")
    }

    /// `build1 2/5 RUN`: which step of which stage, whatever its platform and arguments (a
    /// cross-compiling step's arguments differ per target: `build.sh "amd64"`, `"arm64"`).
    pub fn position(&self) -> (String, u32, u32, String) {
        (self.stage.clone(), self.index, self.total, self.instruction.clone())
    }

    /// `build1 2/5 RUN mkdir -p /var/app`: the step without its platform.
    pub fn label(&self) -> String {
        let label = format!("{} {}/{} {} {}", self.stage, self.index, self.total, self.instruction, self.args);
        label.trim_start().to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vertex {
    pub name: String,
    pub step: Option<Step>,
    pub state: VertexState,
    /// Progress lines under the vertex (`resolve …`, `writing layer …`).
    pub lines: Vec<String>,
    /// When it ran, as far as the output says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<VertexTime>,
}

/// How long a vertex took, and when it started where the output says (rawjson's `started`
/// and `completed`; the plain form prints only `DONE 0.3s`), in milliseconds from the first
/// vertex's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VertexTime {
    pub start_ms: Option<u64>,
    pub duration_ms: u64,
}

impl VertexTime {
    /// `0.3s` or `12.4s`, as the plain form prints a duration after DONE.
    pub fn of_plain(done: &str) -> Option<VertexTime> {
        let seconds: f64 = done.trim().strip_suffix('s')?.parse().ok()?;
        Some(VertexTime { start_ms: None, duration_ms: (seconds * 1000.0).round() as u64 })
    }
}

/// `[linux/amd64->arm64 build  3/10] RUN …`, as BuildKit's Dockerfile frontend names a step
/// (`prefixCommand`): the platform, `->target` when it cross-compiles, the stage (absent for
/// an unnamed stage: `[linux/amd64 3/4]`), the index padded to the width of the total, and
/// `ONBUILD ` before a triggered instruction.
static STEP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\[(?:(?P<platform>[a-z0-9]+/[a-z0-9_]+(?:/[a-z0-9]+)?)(?:->(?P<target>[a-z0-9_]+(?:/[a-z0-9_]+){0,2}))? )?(?:(?P<stage>[^\s\]/]+) +)?(?P<index>\d+)/(?P<total>\d+)\] (?P<instr>(?:ONBUILD )?[A-Z]+)\s*(?P<args>.*)$").unwrap()
});

impl Vertex {
    pub(crate) fn named(name: &str) -> Vertex {
        Vertex {
            name: name.to_string(),
            step: parse_step(name),
            state: VertexState::Unfinished,
            lines: Vec::new(),
            time: None,
        }
    }
}

/// The target of `->arm64` (same OS, `arch[/variant]`) or `->linux/arm64` (another OS).
fn cross_target(base: &Platform, target: &str) -> Option<Platform> {
    match target.split('/').collect::<Vec<_>>().as_slice() {
        [arch] => Some(Platform::new(&base.os, arch)),
        [a, b] if base.os != *a && !b.starts_with('v') => target.parse().ok(),
        [arch, variant] => Some(Platform { variant: Some(variant.to_string()), ..Platform::new(&base.os, arch) }),
        _ => target.parse().ok(),
    }
}

fn parse_step(name: &str) -> Option<Step> {
    let c = STEP.captures(name)?;
    let stage = c.name("stage").map_or("", |m| m.as_str());
    let base: Option<Platform> = c.name("platform").and_then(|p| p.as_str().parse().ok());
    let target = c.name("target").and_then(|t| cross_target(base.as_ref()?, t.as_str()));
    let (platform, built_on) = match target {
        Some(t) => (Some(t), base),
        None => (base, None),
    };
    Some(Step {
        platform,
        built_on,
        stage: stage.to_string(),
        index: c["index"].parse().unwrap_or(1),
        total: c["total"].parse().unwrap_or(1),
        instruction: c["instr"].to_string(),
        args: c["args"].to_string(),
    })
}
