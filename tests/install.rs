#![cfg(unix)]
//! scripts/install.sh against a release served over HTTP on this machine, as a student's
//! `curl … | sh` meets it: the archive for this OS and CPU found in SHA256SUMS, its checksum
//! checked, `lab7` installed without root. The archives hold a stand-in `lab7` (a script that
//! prints a version): `make dist` runs the installer on its real archives (scripts/dist.sh).
//! No Docker.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const VERSION: &str = "0.1.0";

/// Serves `dir`'s files by GET until the test ends; the base URL.
fn serve(dir: PathBuf) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Read the headers to their end before answering.
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let name = request.split_whitespace().nth(1).unwrap_or("/").trim_start_matches('/').to_string();
            let mut out = &stream;
            match std::fs::read(dir.join(&name)) {
                Ok(body) if !name.contains("..") => {
                    let _ =
                        write!(out, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", body.len());
                    let _ = out.write_all(&body);
                }
                _ => {
                    let _ = write!(out, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                }
            }
        }
    });
    url
}

/// A release as `make dist` lays it out, for both Linux CPUs, with a stand-in binary.
fn release(dir: &Path) {
    for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        let name = format!("lab7-{VERSION}-{target}");
        let stage = dir.join("stage").join(&name);
        std::fs::create_dir_all(&stage).unwrap();
        let bin = stage.join("lab7");
        std::fs::write(&bin, format!("#!/bin/sh\necho 'lab7 {VERSION} ({target})'\n")).unwrap();
        run(Command::new("chmod").arg("755").arg(&bin));
        run(Command::new("tar")
            .arg("-C")
            .arg(dir.join("stage"))
            .arg("-cJf")
            .arg(dir.join(format!("{name}.tar.xz")))
            .arg(&name));
    }
    run(Command::new("sh").arg("-c").arg("sha256sum -- *.tar.xz > SHA256SUMS").current_dir(dir));
}

fn run(c: &mut Command) -> Output {
    let o = c.output().unwrap();
    assert!(o.status.success(), "{c:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn install(url: &str, home: &Path) -> Output {
    Command::new("sh")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install.sh"))
        .arg(url)
        .env("HOME", home)
        .env_remove("LAB7_INSTALL_DIR")
        .output()
        .unwrap()
}

fn this_target() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "aarch64-unknown-linux-musl"
    } else {
        "x86_64-unknown-linux-musl"
    }
}

#[test]
fn install_sh_puts_this_machines_lab7_in_the_users_bin() {
    let rel = tempfile::tempdir().unwrap();
    release(rel.path());
    let url = serve(rel.path().to_path_buf());
    let home = tempfile::tempdir().unwrap();
    let o = install(&url, home.path());
    let said = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{said}{}", String::from_utf8_lossy(&o.stderr));
    let bin = home.path().join(".local/bin/lab7");
    let version = run(&mut Command::new(&bin));
    assert_eq!(String::from_utf8_lossy(&version.stdout).trim(), format!("lab7 {VERSION} ({})", this_target()));
    assert!(said.contains(&format!("installed lab7 {VERSION}")), "{said}");
    // Not on PATH in this test's environment: the installer says how to add it.
    assert!(said.contains("is not on your PATH"), "{said}");
}

#[test]
fn install_sh_refuses_an_archive_whose_checksum_differs_and_installs_nothing() {
    let rel = tempfile::tempdir().unwrap();
    release(rel.path());
    let archive = rel.path().join(format!("lab7-{VERSION}-{}.tar.xz", this_target()));
    let mut bytes = std::fs::read(&archive).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&archive, bytes).unwrap();
    let url = serve(rel.path().to_path_buf());
    let home = tempfile::tempdir().unwrap();
    let o = install(&url, home.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains("but SHA256SUMS says") && err.contains("nothing was installed"), "{err}");
    assert!(!home.path().join(".local/bin/lab7").exists());
}

#[test]
fn install_sh_says_what_is_missing() {
    let home = tempfile::tempdir().unwrap();
    let o = install("", home.path());
    assert!(String::from_utf8_lossy(&o.stderr).contains("no release given"), "{o:?}");
    // A release without this machine's archive.
    let rel = tempfile::tempdir().unwrap();
    std::fs::write(rel.path().join("SHA256SUMS"), "00  lab7-0.1.0-x86_64-pc-windows-gnu.zip\n").unwrap();
    let o = install(&serve(rel.path().to_path_buf()), home.path());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(&format!("has no archive for {}", this_target())), "{err}");
    // A release URL that answers nothing.
    let o = install("http://127.0.0.1:9/nowhere", home.path());
    assert!(String::from_utf8_lossy(&o.stderr).contains("could not download"), "{o:?}");
}
