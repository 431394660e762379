//! Which registry registry7 runs: distribution 2.x (`registry:2`, 2.8.3) or 3.x
//! (`registry:3`, `latest` today). The deletion and its advice depend on it: the config path
//! `garbage-collect` needs, and whether `--delete-untagged` is safe for multi-arch images.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistryLine {
    /// distribution 2.x (github.com/docker/distribution): `registry:2`.
    Distribution2,
    /// distribution 3.x (github.com/distribution/distribution/v3): `registry:3`, `latest`.
    Distribution3,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryVersion {
    pub line: RegistryLine,
    /// As `registry --version` prints it: `2.8.3`, `v3.1.2`.
    pub version: String,
}

impl RegistryVersion {
    /// From `registry --version`: `registry github.com/docker/distribution v2.8.3` (2.x),
    /// `registry github.com/distribution/distribution/v3 v3.1.2` (3.x).
    pub fn parse(output: &str) -> Option<RegistryVersion> {
        let mut words = output.split_whitespace().skip(1);
        let (module, version) = (words.next()?, words.next()?.to_string());
        let three = module.ends_with("/v3") || version.trim_start_matches('v').starts_with('3');
        let line = if three { RegistryLine::Distribution3 } else { RegistryLine::Distribution2 };
        Some(RegistryVersion { line, version })
    }

    /// What an unknown registry is taken for: the default `registry:2`.
    pub fn assumed() -> RegistryVersion {
        RegistryVersion { line: RegistryLine::Distribution2, version: "2 (assumed)".into() }
    }

    /// Where the image's config is, as `registry garbage-collect` needs it.
    pub fn config_path(&self) -> &'static str {
        match self.line {
            RegistryLine::Distribution2 => "/etc/docker/registry/config.yml",
            RegistryLine::Distribution3 => "/etc/distribution/config.yml",
        }
    }

    /// `garbage-collect --delete-untagged` keeps multi-arch images whole on 3.x (distribution
    /// PR #4285); on 2.8 it deletes their platform manifests (tests/lab/cli_lab.rs shows both).
    pub fn delete_untagged_is_safe(&self) -> bool {
        self.line == RegistryLine::Distribution3
    }

    /// The garbage-collection page for this registry.
    pub fn docs(&self) -> &'static str {
        match self.line {
            RegistryLine::Distribution2 => {
                "https://github.com/distribution/distribution/blob/release/2.8/docs/garbage-collection.md"
            }
            RegistryLine::Distribution3 => "https://distribution.github.io/distribution/about/garbage-collection/",
        }
    }

    /// The advice on `--delete-untagged` for this registry.
    pub fn delete_untagged_advice(&self) -> String {
        if self.delete_untagged_is_safe() {
            format!("on registry {} `garbage-collect --delete-untagged` is safe for multi-arch images and also removes the untagged cache manifests each export leaves behind", self.version)
        } else {
            format!("never run `garbage-collect --delete-untagged` on registry {}: it deletes the platform manifests of multi-arch images", self.version)
        }
    }
}

impl fmt::Display for RegistryVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "registry {}", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_lines_are_told_apart_by_what_registry_version_prints() {
        let v3 = RegistryVersion::parse("registry github.com/distribution/distribution/v3 v3.1.2\n").unwrap();
        assert_eq!((v3.line, v3.config_path()), (RegistryLine::Distribution3, "/etc/distribution/config.yml"));
        let v2 = RegistryVersion::parse("registry github.com/docker/distribution v2.8.3+unknown\n").unwrap();
        assert_eq!((v2.line, v2.config_path()), (RegistryLine::Distribution2, "/etc/docker/registry/config.yml"));
        assert!(v3.delete_untagged_is_safe() && !v2.delete_untagged_is_safe());
    }
}
