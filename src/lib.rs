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

impl Error {
    /// Exit code 2: usage or environment errors (1 is kept for failing checks).
    pub fn exit_code(&self) -> i32 {
        2
    }
}
