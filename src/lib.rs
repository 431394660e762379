//! lab7: runs Lab 7 (Docker buildx: multi-arch build, registry cache mode=max, cache
//! deletion) against real containers and grades what it sees.
//!
//! The modules follow the lab: [`environment`] (containers, network) → [`builds`]
//! (buildctl, logs) → [`registry`] (manifests, blobs, deletion) → [`checks`] (each
//! requirement) → [`report`] (formats). [`lab`] runs them in order.

pub mod batch;
pub mod builds;
pub mod checks;
pub mod dashboard;
pub mod diagnosis;
pub mod environment;
pub mod gradebook;
pub mod handin;
pub mod inspect;
pub mod intake;
pub mod lab;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod report;

use std::time::Duration;

/// What stops lab7 itself (as opposed to a student's failing build, which is evidence):
/// what went wrong, where, and — when there is one — the fix, as a field of its own.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input: a path, a flag, a file.
    #[error("{what}{}", fix_line(.fix))]
    Input { what: String, fix: Option<String> },
    /// Docker, or a container lab7 runs, failed.
    #[error("Docker: {what}{}", fix_line(.fix))]
    Docker {
        what: String,
        fix: Option<String>,
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{0} did not finish within {1:?}")]
    Timeout(String, Duration),
    /// lab7's own environment cannot build what the submission needs (not the student's fault).
    #[error("environment: {what}{}", fix_line(.fix))]
    Environment { what: String, fix: Option<String> },
    /// A step of the lab that lab7 runs itself failed.
    #[error("{0}")]
    Lab(String),
}

fn fix_line(fix: &Option<String>) -> String {
    fix.as_ref().map(|f| format!("\n  fix: {f}")).unwrap_or_default()
}

impl Error {
    /// Bad input, with the fix that fits it.
    pub fn input(what: impl Into<String>, fix: impl Into<String>) -> Error {
        Error::Input { what: what.into(), fix: Some(fix.into()) }
    }

    /// Bad input that explains itself.
    pub fn input_only(what: impl Into<String>) -> Error {
        Error::Input { what: what.into(), fix: None }
    }

    /// A Docker failure without an underlying error value.
    pub fn docker(what: impl Into<String>, fix: Option<String>) -> Error {
        Error::Docker { what: what.into(), fix, source: None }
    }

    /// The fix, when lab7 knows one.
    pub fn fix(&self) -> Option<&str> {
        match self {
            Error::Input { fix, .. } | Error::Docker { fix, .. } | Error::Environment { fix, .. } => fix.as_deref(),
            _ => None,
        }
    }
}

/// How `lab7` ends, as named exit codes (the README's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// 0: every compulsory check passes (for `inspect`: the reference exists).
    Pass,
    /// 1: the submission fails a check (a build timeout included), or the reference is absent.
    Fail,
    /// 2: bad input or an environment that cannot grade (Docker, a registry, a file).
    UsageOrEnvironment,
    /// 128 + N: stopped by signal N after cleaning up (130 SIGINT, 143 SIGTERM, 129 SIGHUP).
    Signal(u8),
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Pass => 0,
            Exit::Fail => 1,
            Exit::UsageOrEnvironment => 2,
            Exit::Signal(n) => 128 + n,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(e: Exit) -> Self {
        std::process::ExitCode::from(e.code())
    }
}

impl Error {
    /// Every error of lab7 itself is a usage or environment error; failing checks are not errors.
    pub fn exit(&self) -> Exit {
        Exit::UsageOrEnvironment
    }
}
