//! `Digest` and `ImageRef`: the names registries give content and images.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A content digest, `sha256:` and 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(String);

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a digest: expected sha256: followed by 64 hex digits")]
pub struct DigestParseError(String);

impl Digest {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 12 hex digits, as Docker prints image ids.
    pub fn short(&self) -> &str {
        &self.0["sha256:".len().."sha256:".len() + 12]
    }

    /// `sha256:` and the first 12 hex digits: short, its algorithm still said.
    pub fn abbreviated(&self) -> &str {
        &self.0[.."sha256:".len() + 12]
    }
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix("sha256:") {
            Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Ok(Digest(s.to_ascii_lowercase()))
            }
            _ => Err(DigestParseError(s.to_string())),
        }
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A path component of a repository name, and a tag, as the distribution spec allows them.
static COMPONENT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$").unwrap());
static TAG: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[\w][\w.-]{0,127}$").unwrap());

/// `repo[:tag|@digest]` inside one registry (the registry itself is given apart,
/// as `--registry HOST:PORT`, or is part of a full reference).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    pub registry: Option<String>,
    pub repository: String,
    pub reference: String,
}

#[derive(Debug, thiserror::Error)]
#[error("`{input}` is not an image reference: {why}. Expected [HOST:PORT/]REPO[:TAG|@sha256:…], e.g. lab:cachetest")]
pub struct RefParseError {
    input: String,
    why: &'static str,
}

impl FromStr for ImageRef {
    type Err = RefParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| RefParseError { input: s.to_string(), why };
        let (name, reference) = if let Some((name, digest)) = s.split_once('@') {
            digest.parse::<Digest>().map_err(|_| err("the part after @ is not a sha256 digest"))?;
            (name, digest.to_string())
        } else {
            match s.rsplit_once(':') {
                Some((name, tag)) if !tag.contains('/') => (name, tag.to_string()),
                _ => (s, "latest".to_string()),
            }
        };
        // Like Docker: the first component is a registry host when it has a dot, a port or is localhost.
        let (registry, repository) = match name.split_once('/') {
            Some((host, rest)) if host.contains(['.', ':']) || host == "localhost" => {
                (Some(host.to_string()), rest.to_string())
            }
            _ => (None, name.to_string()),
        };
        if repository.is_empty() || !repository.split('/').all(|c| COMPONENT.is_match(c)) {
            return Err(err("the repository must be lowercase letters, digits and . _ - separated by /"));
        }
        if !reference.starts_with("sha256:") && !TAG.is_match(&reference) {
            return Err(err("the tag may hold only letters, digits, _ . and -"));
        }
        Ok(ImageRef { registry, repository, reference })
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(r) = &self.registry {
            write!(f, "{r}/")?;
        }
        let sep = if self.reference.starts_with("sha256:") { '@' } else { ':' };
        write!(f, "{}{sep}{}", self.repository, self.reference)
    }
}

impl Serialize for ImageRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ImageRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:a3aeea223872c3042fbd0eb1d0987ccf59c9cf5fc6426864fd59366304754e34";

    #[test]
    fn digest_parses_and_shortens() {
        let d: Digest = D.parse().unwrap();
        assert_eq!(d.short(), "a3aeea223872");
        assert!("sha256:abc".parse::<Digest>().is_err());
        assert!("md5:a3aeea223872c3042fbd0eb1d0987ccf".parse::<Digest>().is_err());
    }

    #[test]
    fn image_refs_of_the_lab() {
        let r: ImageRef = "lab:cachetest".parse().unwrap();
        assert_eq!((r.registry, r.repository.as_str(), r.reference.as_str()), (None, "lab", "cachetest"));
        let r: ImageRef = "localhost:5000/cachedata1".parse().unwrap();
        assert_eq!(r.registry.as_deref(), Some("localhost:5000"));
        assert_eq!((r.repository.as_str(), r.reference.as_str()), ("cachedata1", "latest"));
        let r: ImageRef = format!("registry7:5000/lab@{D}").parse().unwrap();
        assert_eq!(r.reference, D);
        assert_eq!(r.to_string(), format!("registry7:5000/lab@{D}"));
    }

    #[test]
    fn malformed_refs_say_why() {
        for bad in ["Lab:cachetest", "lab:", "lab@sha256:12", ":tag", "lab:ta g"] {
            let e = bad.parse::<ImageRef>().unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }
}
