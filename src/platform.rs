//! `Platform`: an OS/architecture pair as BuildKit and the OCI spec write it.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// `linux/arm64`, `linux/arm/v7`: what `--platform` takes and manifests list.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    pub fn new(os: &str, architecture: &str) -> Self {
        Platform { os: os.into(), architecture: architecture.into(), variant: None }
    }

    pub fn linux_amd64() -> Self {
        Platform::new("linux", "amd64")
    }

    pub fn linux_arm64() -> Self {
        Platform::new("linux", "arm64")
    }

    /// The two platforms the lab builds for.
    pub fn lab_targets() -> Vec<Platform> {
        vec![Platform::linux_amd64(), Platform::linux_arm64()]
    }

    /// buildx marks attestation manifests in an index as `unknown/unknown`.
    pub fn is_unknown(&self) -> bool {
        self.os == "unknown" && self.architecture == "unknown"
    }

    /// Equal for the lab's purposes: `linux/arm64` and `linux/arm64/v8` are one platform.
    pub fn matches(&self, other: &Platform) -> bool {
        let norm = |p: &Platform| match (p.architecture.as_str(), p.variant.as_deref()) {
            ("arm64", Some("v8")) => Platform::new(&p.os, "arm64"),
            _ => p.clone(),
        };
        norm(self) == norm(other)
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a platform: expected os/arch[/variant], e.g. linux/arm64")]
pub struct PlatformParseError(String);

impl FromStr for Platform {
    type Err = PlatformParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('/').collect();
        let valid = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        match parts.as_slice() {
            [os, arch] if parts.iter().all(valid) => Ok(Platform::new(os, arch)),
            [os, arch, variant] if parts.iter().all(valid) => {
                Ok(Platform { variant: Some(variant.to_string()), ..Platform::new(os, arch) })
            }
            _ => Err(PlatformParseError(s.to_string())),
        }
    }
}

impl<'de> Deserialize<'de> for Platform {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Platform {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_round_trip() {
        for s in ["linux/amd64", "linux/arm64", "linux/arm/v7", "unknown/unknown"] {
            assert_eq!(s.parse::<Platform>().unwrap().to_string(), s);
        }
    }

    #[test]
    fn rejects_what_is_not_a_platform() {
        for s in ["", "linux", "linux/", "/arm64", "linux/arm64/v8/x", "linux arm64"] {
            assert!(s.parse::<Platform>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn arm64_v8_is_arm64() {
        let v8: Platform = "linux/arm64/v8".parse().unwrap();
        assert!(v8.matches(&Platform::linux_arm64()));
        assert!(!v8.matches(&Platform::linux_amd64()));
    }
}
