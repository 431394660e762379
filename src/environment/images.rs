//! Which images a run uses: the pinned stack or today's, from `LAB7_*_IMAGE`, `make env`'s
//! env file, or the official images pinned in scripts/pins.env.

use std::path::{Path, PathBuf};

use serde::Serialize;
use testcontainers::GenericImage;

use super::pins;
use crate::reference::ImageRef;
use crate::Error;

/// Which images the nodes run: from `LAB7_*_IMAGE`, else from what
/// `scripts/lab-env.sh` wrote to `target/lab7/env`, else the official ones.
#[derive(Debug, Clone, Serialize)]
pub struct Images {
    pub registry: String,
    pub buildkit: String,
    /// Offline only: a registry holding busybox that the node uses as its docker.io mirror.
    pub mirror: Option<String>,
    pub standins: bool,
}

impl Images {
    pub fn load() -> Images {
        let s = Settings::read();
        Images {
            registry: s.get("LAB7_REGISTRY_IMAGE").unwrap_or(pins::official_registry().into()),
            buildkit: s.get("LAB7_BUILDKIT_IMAGE").unwrap_or(pins::official_buildkit().into()),
            mirror: s.get("LAB7_MIRROR_IMAGE"),
            standins: s.get("LAB7_STANDINS").as_deref() == Some("1"),
        }
    }

    /// Today's stack beside the pinned one, as `make env` provided it: (registry 3, current
    /// BuildKit), each `None` where it was not set up.
    pub fn current_stack() -> (Option<String>, Option<String>) {
        let s = Settings::read();
        (s.get("LAB7_REGISTRY3_IMAGE"), s.get("LAB7_BUILDKIT_CURRENT_IMAGE"))
    }

    /// The images of a stack: the pinned ones, or today's — `make env`'s (official or stand-in),
    /// else the official images pinned in scripts/pins.env (a laptop that pulled them).
    pub fn of(stack: Stack) -> Images {
        let pinned = Images::load();
        match stack {
            Stack::Pinned => pinned,
            Stack::Current => {
                let (registry, buildkit) = Images::current_stack();
                Images {
                    registry: registry.unwrap_or_else(|| pins::pin("OFFICIAL_REGISTRY3").into()),
                    buildkit: buildkit.unwrap_or_else(|| pins::pin("OFFICIAL_BUILDKIT_CURRENT").into()),
                    ..pinned
                }
            }
        }
    }
}

/// Which registry and BuildKit a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Stack {
    /// The lab's pinned versions (registry 2.8.3, BuildKit v0.26.0).
    #[default]
    Pinned,
    /// Today's: registry 3.1.2 and BuildKit v0.34.2 (what `registry:latest` and buildx's
    /// default node image give now).
    Current,
}

/// The env file `make env` wrote, read once.
struct Settings(String);

impl Settings {
    fn read() -> Settings {
        Settings(env_file().and_then(|p| std::fs::read_to_string(p).ok()).unwrap_or_default())
    }

    /// A non-empty `KEY` from the environment, else from the file.
    fn get(&self, key: &str) -> Option<String> {
        let from_file = || self.0.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix('=').map(str::to_string));
        std::env::var(key).ok().or_else(from_file).filter(|s| !s.is_empty())
    }
}

/// `LAB7_ENV_FILE`, else `target/lab7/env` under the current directory or this crate.
fn env_file() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("LAB7_ENV_FILE") {
        return Some(p.into());
    }
    [PathBuf::from("target/lab7/env"), Path::new(env!("CARGO_MANIFEST_DIR")).join("target/lab7/env")]
        .into_iter()
        .find(|p| p.exists())
}

/// A container image for testcontainers, named through the one reference parser.
pub(super) fn generic(image: &str) -> Result<GenericImage, Error> {
    let r: ImageRef = image.parse().map_err(|e| {
        Error::input(
            format!("{e}"),
            "set LAB7_REGISTRY_IMAGE / LAB7_BUILDKIT_IMAGE to an image reference, or run `make env`",
        )
    })?;
    let name = match &r.registry {
        Some(host) => format!("{host}/{}", r.repository),
        None => r.repository.clone(),
    };
    Ok(GenericImage::new(name, r.reference))
}
