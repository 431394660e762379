//! Why a build failed, read from its log, so the advice fits the cause: a missing image is
//! not an arm64 problem, a Dockerfile typo has a line number, a refused entitlement is the
//! lab's command, not the student's step.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;

use super::log::{BuildLog, VertexState};
use crate::platform::Platform;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "cause")]
pub enum FailureCause {
    /// An image the build needs could not be resolved: a `FROM` base, or the Dockerfile
    /// frontend a `# syntax=` line names.
    MissingImage { reference: String, frontend: bool },
    /// The Dockerfile does not parse (`dockerfile parse error on line 3: unknown instruction`).
    DockerfileSyntax { line: Option<u32>, message: String },
    /// A step asks for an entitlement the build did not grant (`security.insecure`).
    NotAllowed { entitlement: String },
    /// buildkitd's own fetch (`ADD <url>`, `ADD <git url>`, a `FROM` or `# syntax=` image on
    /// another registry) was refused by lab7's firewall: it aims at the grading machine or a
    /// private network (`address`, `IP:PORT`). `instruction` is what asked for it.
    Unreachable { instruction: String, address: String },
    /// A step failed; `platforms` lists where (all of them, or one under emulation).
    Step { name: String, platforms: Vec<Platform> },
}

static RESOLVE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"failed to resolve source metadata for (\S+?):? .*not found").unwrap());
static PARSE_ERROR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"dockerfile parse error on line (\d+): (.*)$|(Dockerfile parse error.*)$").unwrap());
static ENTITLEMENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"([a-z]+\.[a-z]+) is not allowed").unwrap());
/// A connection refused, as Go's net package (buildkitd) and curl (git's HTTP helper) say it.
static REFUSED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"dial tcp \[?([0-9a-fA-F:.]+?)\]?:(\d+): connect: connection refused|Failed to connect to (\S+) port (\d+)",
    )
    .unwrap()
});

impl BuildLog {
    /// The cause of the build's failure, when the log names one lab7 knows.
    pub fn failure_cause(&self) -> Option<FailureCause> {
        self.unreachable()
            .or_else(|| self.missing_image())
            .or_else(|| self.closing_error_cause())
            .or_else(|| self.failed_step())
    }

    /// A fetch lab7's firewall refused: the first vertex whose error is a refused connection
    /// to an address the firewall fences, named by the instruction it stands for.
    fn unreachable(&self) -> Option<FailureCause> {
        let refused = |message: &str| {
            let c = REFUSED.captures(message)?;
            let (ip, port) = match (c.get(1), c.get(2)) {
                (Some(ip), Some(port)) => (ip.as_str(), port.as_str()),
                _ => (c.get(3)?.as_str(), c.get(4)?.as_str()),
            };
            let addr: std::net::IpAddr = ip.parse().ok()?;
            crate::environment::isolation::is_fenced(addr).then(|| match addr {
                std::net::IpAddr::V6(_) => format!("[{addr}]:{port}"),
                std::net::IpAddr::V4(_) => format!("{addr}:{port}"),
            })
        };
        // git's own words come as the vertex's output (`#7 0.018 fatal: … Failed to connect`).
        let from_vertex = self.vertices.iter().find_map(|v| {
            let VertexState::Error(m) = &v.state else { return None };
            let address = refused(m).or_else(|| v.lines.iter().find_map(|l| refused(l)))?;
            Some(FailureCause::Unreachable { instruction: instruction_of(&v.name), address })
        });
        from_vertex.or_else(|| {
            let address = self.errors.iter().find_map(|e| refused(e))?;
            Some(FailureCause::Unreachable { instruction: "a fetch of the build".into(), address })
        })
    }

    fn missing_image(&self) -> Option<FailureCause> {
        let from_vertex = self.vertices.iter().find_map(|v| {
            let VertexState::Error(m) = &v.state else { return None };
            if !m.contains("not found") {
                return None;
            }
            if let Some(r) = v.name.strip_prefix("resolve image config for docker-image://") {
                return Some(FailureCause::MissingImage { reference: r.to_string(), frontend: true });
            }
            let (_, r) = v.name.split_once("] load metadata for ")?;
            Some(FailureCause::MissingImage { reference: r.to_string(), frontend: false })
        });
        from_vertex.or_else(|| {
            let c = self.errors.iter().find_map(|e| RESOLVE.captures(e))?;
            let reference = c[1].to_string();
            let frontend = self.vertices.iter().any(|v| v.name.contains("resolve image config for"));
            Some(FailureCause::MissingImage { reference, frontend })
        })
    }

    fn closing_error_cause(&self) -> Option<FailureCause> {
        self.errors.iter().find_map(|e| {
            if let Some(c) = PARSE_ERROR.captures(e) {
                let line = c.get(1).and_then(|l| l.as_str().parse().ok());
                let message = c.get(2).or(c.get(3)).map_or(String::new(), |m| m.as_str().to_string());
                return Some(FailureCause::DockerfileSyntax { line, message });
            }
            let c = ENTITLEMENT.captures(e)?;
            Some(FailureCause::NotAllowed { entitlement: c[1].to_string() })
        })
    }

    fn failed_step(&self) -> Option<FailureCause> {
        let failed: Vec<(&str, &Platform, String)> = self
            .steps()
            .filter(|(v, _)| matches!(v.state, VertexState::Error(_)))
            .filter_map(|(v, s)| Some((v.name.as_str(), s.platform.as_ref()?, s.label())))
            .collect();
        let (name, _, label) = failed.first()?;
        let mut platforms: Vec<Platform> =
            failed.iter().filter(|(_, _, l)| l == label).map(|(_, p, _)| (*p).clone()).collect();
        platforms.dedup();
        Some(FailureCause::Step { name: name.to_string(), platforms })
    }
}

/// What a vertex stands for in the Dockerfile: `ADD …` as written, `FROM <image>` for the
/// metadata of a base image, `# syntax=<image>` for a frontend.
fn instruction_of(vertex: &str) -> String {
    let step = vertex.split_once("] ").map_or(vertex, |(_, rest)| rest);
    if let Some(image) = step.strip_prefix("resolve image config for docker-image://") {
        return format!("# syntax={image}");
    }
    match step.strip_prefix("load metadata for ") {
        Some(image) => format!("FROM {image}"),
        None => step.to_string(),
    }
}

impl FailureCause {
    /// The advice for this cause, as the commands or edits a student would make.
    pub fn advice(&self) -> String {
        match self {
            FailureCause::MissingImage { reference, frontend: true } => format!(
                "the `# syntax=` line names {reference}, which could not be pulled: fix the name, or remove the line (BuildKit's built-in Dockerfile frontend reads every instruction this lab needs)"
            ),
            FailureCause::MissingImage { reference, frontend: false } => format!(
                "the base image {reference} could not be found: check its name and tag (`docker buildx imagetools inspect {reference}`), and that it is published for linux/amd64 and linux/arm64"
            ),
            FailureCause::DockerfileSyntax { line: Some(n), message } => {
                format!("fix line {n} of the Dockerfile: {message}")
            }
            FailureCause::DockerfileSyntax { line: None, message } => format!("fix the Dockerfile: {message}"),
            FailureCause::NotAllowed { entitlement } => format!(
                "the step asks for {entitlement}, which the lab's command does not allow (it passes no --allow): remove the flag that needs it (e.g. RUN --security=insecure)"
            ),
            FailureCause::Unreachable { instruction, address } => format!(
                "`{instruction}` reaches {address}: lab7 does not let a build reach the grading machine or private networks (only registry7 and public addresses) — take the file from the build context or a public URL, and base images from a public registry"
            ),
            // BuildKit stops the other platform's steps at the first error, so a step that fails
            // everywhere shows as amd64's failure: only arm64 alone points at emulation. Which
            // platform was emulated depends on the student's machine, which a log does not say.
            FailureCause::Step { platforms, .. } if platforms.len() == 1 && platforms[0].architecture == "arm64" => {
                "the step fails only on linux/arm64 — under QEMU emulation on an x86-64 machine (on Apple silicon or an arm64 Linux host arm64 is native and amd64 the emulated one): avoid x86-64-only binaries and downloads (pick them by TARGETARCH), and try it with `docker run --platform linux/arm64 … sh`".into()
            }
            FailureCause::Step { .. } => {
                "the step fails on its own (not only under emulation): its output above says why; reproduce it with `docker run --rm -it <base image> sh` and the same command".into()
            }
        }
    }
}
