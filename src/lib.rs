//! lab7: runs Lab 7 (Docker buildx: multi-arch build, registry cache mode=max, cache
//! deletion) against real containers and grades what it sees.
//!
//! The modules follow the lab: [`environment`] (containers, network) → [`builds`]
//! (buildctl, logs) → [`registry`] (manifests, blobs, deletion) → [`checks`] (each
//! requirement) → [`report`] (formats). [`lab`] runs them in order.

pub mod batch;
pub mod builds;
pub mod checks;
pub mod environment;
pub mod inspect;
pub mod lab;
pub mod platform;
pub mod reference;
pub mod registry;
pub mod report;

use std::time::Duration;

/// What stops lab7 itself (as opposed to a student's failing build, which is evidence).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Input(String),
    #[error("Docker: {0}")]
    Docker(String),
    #[error(transparent)]
    Registry(#[from] registry::RegistryError),
    #[error("{0} did not finish within {1:?}; raise it with --build-timeout")]
    Timeout(String, Duration),
    #[error("{0}")]
    Lab(String),
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
