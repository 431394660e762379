//! The pinned versions in `scripts/pins.env`, which the environment script sources too.

const PINS: &str = include_str!("../../scripts/pins.env");

/// The value of `KEY=VALUE` in pins.env; a missing key is a build mistake, caught by the tests.
pub fn pin(key: &str) -> &'static str {
    PINS.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(str::trim)
        .unwrap_or_else(|| panic!("scripts/pins.env has no {key}"))
}

pub fn official_registry() -> &'static str {
    pin("OFFICIAL_REGISTRY")
}

pub fn official_buildkit() -> &'static str {
    pin("OFFICIAL_BUILDKIT")
}

/// The oldest Docker API lab7 accepts, as (major, minor).
pub fn min_api() -> (u32, u32) {
    let (major, minor) = pin("MIN_API").split_once('.').expect("MIN_API is major.minor");
    (major.parse().expect("a number"), minor.parse().expect("a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pin_is_there_and_well_formed() {
        assert!(official_registry().starts_with("registry:"));
        assert!(official_buildkit().starts_with("moby/buildkit:v"));
        assert!(official_buildkit().ends_with(pin("BUILDKIT_VERSION")));
        assert!(min_api() >= (1, 40));
        assert!(!pin("BUSYBOX_TAG").is_empty());
    }
}
