//! Architecture truth: which machine the ELF binaries in each platform's image are built for.
//!
//! An index can say linux/arm64 over an image full of x86-64 binaries: a final stage
//! `FROM --platform=$BUILDPLATFORM` makes one, and BuildKit prints no warning while the
//! manifest and config say arm64. Only the binaries tell, so each platform's layers are read
//! (upper layers first, so a file a later layer replaced counts once, as the container sees it)
//! and each ELF file's `e_machine` is compared with the platform's architecture.

use std::collections::BTreeSet;
use std::io::Read;

use serde::Serialize;

use crate::platform::Platform;

/// What the binaries of one platform's image are built for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlatformBinaries {
    pub platform: Platform,
    /// ELF files read.
    pub elf_files: usize,
    /// ELF files built for another architecture than the platform's: (path, architecture).
    pub foreign: Vec<(String, String)>,
    /// Layers that could not be read, and why (a compression lab7 does not read, too big).
    pub unread: Vec<String>,
    /// The image's layers in its manifest's order: digest and size (the HTML image tree; not
    /// in the JSON schema).
    #[serde(skip)]
    pub layers: Vec<(crate::reference::Digest, u64)>,
}

impl PlatformBinaries {
    /// Every binary read is built for the platform, and at least one was read.
    pub fn consistent(&self) -> bool {
        self.foreign.is_empty() && self.elf_files > 0
    }
}

/// The architecture an ELF header names, as OCI platforms name it.
pub fn elf_arch(head: &[u8]) -> Option<&'static str> {
    if head.len() < 20 || &head[..4] != b"\x7fELF" {
        return None;
    }
    let header = goblin::elf::Elf::parse_header(head).ok()?;
    use goblin::elf::header::*;
    Some(match header.e_machine {
        EM_X86_64 => "amd64",
        EM_AARCH64 => "arm64",
        EM_386 => "386",
        EM_ARM => "arm",
        EM_RISCV => "riscv64",
        EM_PPC64 => "ppc64le",
        EM_S390 => "s390x",
        EM_MIPS => "mips64",
        EM_LOONGARCH => "loong64",
        _ => "unknown",
    })
}

/// Reads layers one by one, upper first, tallying the ELF files a container would see.
pub struct LayerScan {
    pub result: PlatformBinaries,
    seen: BTreeSet<String>,
}

impl LayerScan {
    pub fn new(platform: Platform) -> LayerScan {
        LayerScan {
            result: PlatformBinaries {
                platform,
                elf_files: 0,
                foreign: Vec::new(),
                unread: Vec::new(),
                layers: Vec::new(),
            },
            seen: BTreeSet::new(),
        }
    }

    /// One layer blob, as the registry serves it; `media_type` says how it is compressed.
    pub fn layer(&mut self, media_type: &str, blob: impl Read) {
        if media_type.contains("zstd") {
            self.result.unread.push(format!("a zstd layer ({media_type}): lab7 reads gzip and plain tar layers"));
            return;
        }
        let reader: Box<dyn Read> =
            if media_type.ends_with("gzip") { Box::new(flate2::read::GzDecoder::new(blob)) } else { Box::new(blob) };
        if let Err(e) = self.tar(reader) {
            self.result.unread.push(format!("a layer that is not a readable tar: {e}"));
        }
    }

    fn tar(&mut self, reader: impl Read) -> std::io::Result<()> {
        let mut archive = tar::Archive::new(reader);
        for entry in archive.entries()? {
            let mut entry = entry?;
            let path = entry.path()?.to_string_lossy().trim_start_matches("./").to_string();
            // A whiteout hides the file below; either way an upper layer decided this path.
            let shown = path.replace(".wh.", "");
            if !self.seen.insert(shown) || path.contains(".wh.") || !entry.header().entry_type().is_file() {
                continue;
            }
            let mut head = Vec::with_capacity(64);
            (&mut entry).take(64).read_to_end(&mut head)?;
            let Some(arch) = elf_arch(&head) else { continue };
            self.result.elf_files += 1;
            if arch != self.result.platform.architecture {
                self.result.foreign.push((format!("/{path}"), arch.to_string()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_test_binary_is_read_as_the_machine_it_runs_on() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let expected = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        assert_eq!(elf_arch(&exe[..64]), Some(expected));
        assert_eq!(elf_arch(b"#!/bin/sh\necho not an ELF file\n"), None);
    }
}
