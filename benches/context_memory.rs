//! `cargo bench --bench context_memory`: peak memory (max RSS) of a whole `lab7 check` on the
//! reference app as its build context grows by a data file the build does not copy. The
//! context is streamed to the node through a temporary file, so the peak should stay flat:
//! the bench prints each peak and its ratio to the smallest context's.

mod support;

use std::path::Path;
use std::process::Command;

use support::copy_dir;

const EXTRA_MIB: [u64; 3] = [0, 64, 256];

/// Pseudo-random bytes, so that no layer of the transfer could shrink them.
fn data_file(path: &Path, mib: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut block = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes());
        }
        f.write_all(&block).unwrap();
    }
}

/// Runs `lab7 check DIR --keep-cache` and returns its peak resident memory in KiB.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also reports the peak memory
fn peak_rss_kib(app: &Path) -> i64 {
    let child = Command::new(env!("CARGO_BIN_EXE_lab7"))
        .args(["check", app.to_str().unwrap(), "--keep-cache", "--format", "json", "--out", "/dev/null"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: wait4 on our own child, with valid out-pointers.
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "lab7 check failed on {}", app.display());
    usage.ru_maxrss
}

fn main() {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab_examples/reference");
    println!("peak memory of `lab7 check` as the build context grows (data/ is sent, not copied by the build):");
    let mut first = None;
    for mib in EXTRA_MIB {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&reference, dir.path());
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        data_file(&dir.path().join("data/blob.bin"), mib);
        let kib = peak_rss_kib(dir.path());
        let base = *first.get_or_insert(kib);
        println!(
            "  context + {mib:>3} MiB: peak RSS {:>6.1} MiB, {:.2}× the smallest",
            kib as f64 / 1024.0,
            kib as f64 / base as f64
        );
    }
}
