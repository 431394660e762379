//! `--progress=rawjson`: one JSON SolveStatus per line (BuildKit's `client.SolveStatus`, as
//! buildx writes it), turned into the same vertices (`vertex`) the plain form gives.
//!
//! Each object carries updates: a vertex is sent again when it starts, finishes, is found
//! cached or fails, so the last word on a vertex is its state. Statuses are the sub-lines
//! (`writing layer sha256:…`, `transferring context:` with a byte count), logs a RUN step's
//! own output (base64). A line that is not JSON (buildx's closing `ERROR:` block) is kept as
//! an error line when it says so.

use std::collections::HashMap;

use base64::Engine;
use serde::Deserialize;

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::vertex::{Vertex, VertexState, VertexTime};

#[derive(Deserialize, Default)]
struct SolveStatus {
    #[serde(default)]
    vertexes: Vec<RawVertex>,
    #[serde(default)]
    statuses: Vec<RawStatus>,
    #[serde(default)]
    logs: Vec<RawLog>,
}

#[derive(Deserialize)]
struct RawVertex {
    digest: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    cached: bool,
    #[serde(default)]
    error: String,
    started: Option<String>,
    completed: Option<String>,
}

#[derive(Deserialize)]
struct RawStatus {
    id: String,
    vertex: String,
    #[serde(default)]
    current: u64,
    completed: Option<String>,
}

#[derive(Deserialize)]
struct RawLog {
    vertex: String,
    #[serde(default)]
    data: String,
}

/// A rawjson capture starts with a SolveStatus object.
pub fn looks_like(text: &str) -> bool {
    let first = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    first.starts_with('{') && serde_json::from_str::<SolveStatus>(first).is_ok()
}

/// Builds the log vertex by vertex, in the order vertices first appear.
#[derive(Default)]
struct Assembly {
    order: Vec<String>,
    vertices: HashMap<String, Vertex>,
    /// A vertex's statuses by id, in first-seen order, each with its latest line.
    statuses: HashMap<String, Vec<(String, String)>>,
    output: HashMap<String, Vec<String>>,
    errors: Vec<String>,
    /// A vertex's own start and end, as BuildKit stamped them.
    times: HashMap<String, (Option<OffsetDateTime>, Option<OffsetDateTime>)>,
}

impl Assembly {
    fn vertex(&mut self, v: RawVertex) {
        let state = if !v.error.is_empty() {
            VertexState::Error(v.error)
        } else if v.cached {
            VertexState::Cached
        } else if v.completed.is_some() {
            VertexState::Done
        } else {
            VertexState::Unfinished
        };
        if !self.vertices.contains_key(&v.digest) {
            self.order.push(v.digest.clone());
        }
        let stamp = |t: &Option<String>| t.as_deref().and_then(|t| OffsetDateTime::parse(t, &Rfc3339).ok());
        let time = self.times.entry(v.digest.clone()).or_default();
        time.0 = time.0.or(stamp(&v.started));
        time.1 = stamp(&v.completed).or(time.1);
        let entry = self.vertices.entry(v.digest).or_insert_with(|| Vertex::named(&v.name));
        entry.state = state;
    }

    fn status(&mut self, s: RawStatus) {
        // As the plain printer shows them: a transfer with its size, anything else by its id.
        let mut line = if s.id.starts_with("transferring") { format!("{} {}B", s.id, s.current) } else { s.id.clone() };
        if s.completed.is_some() {
            line += " done";
        }
        let list = self.statuses.entry(s.vertex).or_default();
        match list.iter_mut().find(|(id, _)| *id == s.id) {
            Some(slot) => slot.1 = line,
            None => list.push((s.id, line)),
        }
    }

    fn log(&mut self, l: RawLog) {
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(l.data.as_bytes()) else { return };
        let text = String::from_utf8_lossy(&bytes);
        let out = self.output.entry(l.vertex).or_default();
        out.extend(text.lines().filter(|t| !t.trim().is_empty()).map(str::to_string));
    }

    fn finish(mut self) -> (Vec<Vertex>, Vec<String>) {
        let first = self.times.values().filter_map(|t| t.0).min();
        let vertices = self
            .order
            .iter()
            .filter_map(|d| {
                let mut v = self.vertices.remove(d)?;
                v.time = match (first, self.times.get(d)) {
                    (Some(first), Some((Some(start), Some(end)))) => Some(VertexTime {
                        start_ms: Some((*start - first).whole_milliseconds().max(0) as u64),
                        duration_ms: (*end - *start).whole_milliseconds().max(0) as u64,
                    }),
                    _ => None,
                };
                v.lines.extend(self.statuses.remove(d).unwrap_or_default().into_iter().map(|(_, l)| l));
                v.lines.extend(self.output.remove(d).unwrap_or_default());
                Some(v)
            })
            .collect();
        (vertices, self.errors)
    }
}

/// The vertices, in the order they first appear, and the error lines outside the JSON.
pub fn parse(text: &str) -> (Vec<Vertex>, Vec<String>) {
    let mut a = Assembly::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(status) = serde_json::from_str::<SolveStatus>(line) else {
            if line.starts_with("ERROR:") || line.starts_with("error:") {
                a.errors.push(line.to_string());
            }
            continue;
        };
        status.vertexes.into_iter().for_each(|v| a.vertex(v));
        status.statuses.into_iter().for_each(|s| a.status(s));
        status.logs.into_iter().for_each(|l| a.log(l));
    }
    a.finish()
}
