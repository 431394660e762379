//! Reading a report within bounds of memory and time.
//!
//! A PDF or DOCX is a student's file, and the PDF parser (lopdf, under pdf-extract) is not
//! lab7's to bound: it inflates every stream it meets, whole, and a parse may not end. So the
//! CLI reads each report in a child process of its own (`lab7 read-report`, hidden): its
//! address space and CPU time are capped (`setrlimit`), the parent waits with a wall-clock
//! timeout and kills it on Ctrl-C or SIGTERM. A report past a bound is that student's
//! unreadable report — a row with the reason in a batch — and the machine keeps its memory.
//! DOCX parts are capped inside the reader too (`docx::Limits`), with an exact message.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{docx, HandIn, HandInFormat, Line};
use crate::Error;

/// What reading one report may cost (`--report-limit`, `--report-timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportLimits {
    /// Inflated bytes of a DOCX part; the reader's memory is a multiple of it.
    pub max_part_bytes: u64,
    /// Wall-clock (and CPU) time for reading one report.
    pub timeout: Duration,
}

impl Default for ReportLimits {
    fn default() -> Self {
        ReportLimits { max_part_bytes: 64 << 20, timeout: Duration::from_secs(60) }
    }
}

impl ReportLimits {
    /// The reader's address space: room for a PDF's streams and the parsers' copies of a
    /// capped part (1 GiB by default; a real report needs far less), never under 256 MiB.
    pub fn memory_bytes(&self) -> u64 {
        self.max_part_bytes.saturating_mul(16).max(256 << 20)
    }

    pub fn docx(&self) -> docx::Limits {
        docx::Limits { max_part_bytes: self.max_part_bytes, ..docx::Limits::default() }
    }
}

/// What `lab7 read-report` prints: the report's lines as read.
#[derive(Debug, Serialize, Deserialize)]
pub struct Extracted {
    pub format: HandInFormat,
    pub lines: Vec<Line>,
}

/// How reports are read: in this process (tests, trusted files), or each in a bounded child.
#[derive(Debug, Clone)]
pub enum Reader {
    InProcess(ReportLimits),
    /// `exe` is lab7 itself (it has the hidden `read-report` subcommand).
    Isolated {
        exe: PathBuf,
        limits: ReportLimits,
    },
}

/// Why a report yields no lines.
#[derive(Debug)]
pub enum ReadFailure {
    /// The student's file: unreadable, or past a bound (exit 2; a batch row with the reason).
    Unreadable(Error),
    /// Ctrl-C, SIGTERM or SIGHUP while it was read: the reader was stopped.
    Interrupted,
}

impl Reader {
    pub async fn read(&self, path: &Path, cancel: &CancellationToken) -> Result<HandIn, ReadFailure> {
        let (format, lines) = match self {
            Reader::InProcess(limits) => {
                super::extract::read_within(path, limits.docx()).map_err(ReadFailure::Unreadable)?
            }
            Reader::Isolated { exe, limits } => {
                let e = read_in_child(exe, path, limits, cancel).await?;
                (e.format, e.lines)
            }
        };
        Ok(HandIn::of_lines(format, lines))
    }
}

/// The child's stdout is JSON of the lines: never larger than the report's text can be.
const MAX_CHILD_OUTPUT: u64 = 512 << 20;

async fn read_in_child(
    exe: &Path,
    path: &Path,
    limits: &ReportLimits,
    cancel: &CancellationToken,
) -> Result<Extracted, ReadFailure> {
    let mut command = Command::new(exe);
    command
        .arg("read-report")
        .arg(path)
        .arg("--max-part")
        .arg(limits.max_part_bytes.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("NO_COLOR", "1");
    bound(&mut command, limits);
    let mut child = command.spawn().map_err(|e| {
        ReadFailure::Unreadable(Error::Lab(format!("could not start lab7's report reader ({}): {e}", exe.display())))
    })?;
    let (mut stdout, mut stderr) = (child.stdout.take().expect("piped"), child.stderr.take().expect("piped"));
    let child = Arc::new(Mutex::new(child));
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reaped = child.clone();
    // Blocking reads and waits on threads of their own (see builds::buildx::Streamed).
    std::thread::spawn(move || {
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = (&mut stderr).take(64 << 10).read_to_string(&mut text);
            text
        });
        let mut out = Vec::new();
        let _ = (&mut stdout).take(MAX_CHILD_OUTPUT).read_to_end(&mut out);
        let errors = errors.join().unwrap_or_default();
        let status = loop {
            match reaped.lock().expect("not poisoned").try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => {}
                Err(e) => break Err(e),
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let _ = tx.send((status, out, errors));
    });
    let kill = || {
        let _ = child.lock().map(|mut c| c.kill());
    };
    tokio::select! {
        ended = rx => {
            let (status, out, errors) = ended.map_err(|_| ReadFailure::Unreadable(Error::Lab("the report reader vanished".into())))?;
            let status = status.map_err(|e| ReadFailure::Unreadable(Error::Lab(format!("the report reader: {e}"))))?;
            judge(path, limits, status, &out, &errors).map_err(ReadFailure::Unreadable)
        }
        _ = tokio::time::sleep(limits.timeout) => {
            kill();
            Err(ReadFailure::Unreadable(past_bound(path, &format!("reading it took longer than {} s (--report-timeout)", limits.timeout.as_secs()))))
        }
        _ = cancel.cancelled() => {
            kill();
            Err(ReadFailure::Interrupted)
        }
    }
}

/// The child's caps: its address space, and its CPU time (the kernel stops it past them).
fn bound(command: &mut Command, limits: &ReportLimits) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        let memory = limits.memory_bytes() as libc::rlim_t;
        let cpu = limits.timeout.as_secs().max(1) as libc::rlim_t;
        // SAFETY: only async-signal-safe calls (setrlimit) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                let cap = |resource, soft: libc::rlim_t, hard: libc::rlim_t| {
                    let limit = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                    match libc::setrlimit(resource, &limit) {
                        0 => Ok(()),
                        _ => Err(std::io::Error::last_os_error()),
                    }
                };
                cap(libc::RLIMIT_AS, memory, memory)?;
                cap(libc::RLIMIT_CPU, cpu, cpu + 1)
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (command, limits); // Windows: the wall-clock timeout bounds it; memory is not capped.
}

/// What the child's end means: its lines, its own error (exit 2), or a bound it ran into.
fn judge(path: &Path, limits: &ReportLimits, status: ExitStatus, out: &[u8], errors: &str) -> Result<Extracted, Error> {
    if status.success() {
        return serde_json::from_slice(out)
            .map_err(|e| Error::Lab(format!("{}: the report reader's answer did not parse: {e}", path.display())));
    }
    if status.code() == Some(2) {
        // The reader's own error: "lab7: error: WHAT\n  fix: FIX".
        let text = errors.trim().trim_start_matches("lab7: error: ");
        return Err(match text.split_once("\n  fix: ") {
            Some((what, fix)) => Error::input(what, fix.trim()),
            None => Error::input_only(text),
        });
    }
    let memory = format!("reading it needed more than the {} MiB lab7 gives a report", limits.memory_bytes() >> 20);
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        let cpu = format!("reading it took more than {} s of CPU", limits.timeout.as_secs());
        match status.signal() {
            Some(libc::SIGXCPU) | Some(libc::SIGKILL) => return Err(past_bound(path, &cpu)),
            Some(_) => return Err(past_bound(path, &memory)),
            None => {}
        }
    }
    if errors.contains("memory allocation") {
        return Err(past_bound(path, &memory));
    }
    Err(Error::Lab(format!("{}: the report reader failed ({status}): {}", path.display(), errors.trim())))
}

fn past_bound(path: &Path, why: &str) -> Error {
    Error::input(
        format!("{}: not read: {why} (a PDF or DOCX whose content inflates without end?)", path.display()),
        "export the report again from a word processor, or hand in Markdown or text; an instructor can raise --report-limit and --report-timeout",
    )
}
