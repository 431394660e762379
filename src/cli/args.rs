//! The command line as typed values: each subcommand's flags, parsed and checked once by clap,
//! turned into the library's types by the few methods here (the ripgrep way: raw flags become
//! typed values in one place).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lab7::builds::buildx::Client;
use lab7::environment::context::DEFAULT_MAX_CONTEXT;
use lab7::environment::isolation::{parse_bytes, Egress, NodeLimits};
use lab7::environment::remote::{NodeTls, RemoteNode};
use lab7::environment::EnvOptions;
use lab7::environment::Stack;
use lab7::handin::isolated::{Reader, ReportLimits};
use lab7::report::formats::Format;
use lab7::{batch, Error};

/// lab7 — runs and grades Lab 7 (Docker buildx: amd64+arm64 build, registry cache mode=max, cache deletion).
///
/// Exit codes: 0 every compulsory check passes, 1 some check fails (or REF not found),
/// 2 usage or environment error (bad input, Docker not running, registry unreachable),
/// 128+N stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP) after cleaning up.
#[derive(Debug, Parser)]
#[command(name = "lab7", version)]
pub struct Cli {
    #[command(subcommand)]
    pub(super) command: Command,
}

#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Show the environment: Docker engine, node images (official or stand-ins), node platforms.
    Doctor(DoctorArgs),
    /// Run the whole lab on an app directory and grade it.
    Check(CheckArgs),
    /// Grade two saved build outputs (any --progress form, any encoding).
    GradeLogs(GradeLogsArgs),
    /// Grade a student's report (.md, .txt, .pdf, .docx; Polish or English): find, check and
    /// cross-check every piece of evidence the lab asks it to show.
    GradeReport(GradeReportArgs),
    /// Explain the known failures in saved build outputs or command transcripts: cause, evidence, fix, docs.
    Explain(ExplainArgs),
    /// Show an image as `docker buildx imagetools inspect` does, with each platform's layers.
    Inspect(InspectArgs),
    /// Self-check a live registry7 (read-only): image for both architectures, separate mode=max cache.
    Audit(AuditArgs),
    /// Snapshot a roster's repositories now (at the deadline), for `batch` to grade later.
    Collect(CollectArgs),
    /// Grade a class: one submission per subfolder, or Moodle's download (one row per student).
    Batch(Box<BatchArgs>),
    /// (lab7's own) Read one report's lines within bounds and print them as JSON: each
    /// report is read by a child process of this kind, whose memory and CPU time are capped.
    #[command(hide = true)]
    ReadReport(ReadReportArgs),
    /// (lab7's own) Print this machine's interface addresses, one per line: lab7 running in a
    /// container runs its own image on the host's network with this, to learn the host's.
    #[command(hide = true)]
    HostAddresses,
}

/// How much reading one report may take (a PDF or DOCX is a student's file).
#[derive(Debug, Args)]
pub(super) struct ReportLimitArgs {
    /// What a DOCX part may inflate to; the reader's memory is 16 times that (at least 256m).
    #[arg(long, value_name = "SIZE", default_value = "64m", value_parser = parse_bytes)]
    pub(super) report_limit: u64,
    /// Longest reading one report may take, in seconds (wall-clock and CPU).
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub(super) report_timeout: u64,
}

impl ReportLimitArgs {
    pub(super) fn limits(&self) -> ReportLimits {
        ReportLimits { max_part_bytes: self.report_limit, timeout: Duration::from_secs(self.report_timeout) }
    }

    /// Each report read by a bounded child process: lab7 itself.
    pub(super) fn reader(&self) -> Result<Reader, Error> {
        let exe = std::env::current_exe().map_err(|e| Error::Lab(format!("where is lab7's own binary? {e}")))?;
        Ok(Reader::Isolated { exe, limits: self.limits() })
    }
}

#[derive(Debug, Args)]
pub struct ReadReportArgs {
    pub(super) file: PathBuf,
    #[arg(long, value_name = "BYTES")]
    pub(super) max_part: u64,
}

#[derive(Debug, Args)]
pub(super) struct Output {
    #[arg(long, value_enum, default_value = "human")]
    pub(super) format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// The HTML page's language (default: from the locale, LANG=pl_PL… is Polish).
    #[arg(long, value_enum)]
    pub(super) lang: Option<lab7::report::html::Lang>,
    /// A rubric TOML file (default: the built-in rubric.toml).
    #[arg(long)]
    pub(super) rubric: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct DoctorArgs {
    /// Only remove what runs that are gone (killed, crashed) left behind, and say what.
    #[arg(long)]
    pub(super) clean: bool,
}

/// How the BuildKit node is confined (README, "Safety").
#[derive(Debug, Args)]
pub(super) struct NodeArgs {
    /// Memory of the node, builds and their storage included (e.g. 6g).
    #[arg(long, value_name = "SIZE", default_value = "6g", value_parser = parse_bytes)]
    pub(super) node_memory: u64,
    /// Build storage of the node: a tmpfs, counted in its memory (e.g. 4g).
    #[arg(long, value_name = "SIZE", default_value = "4g", value_parser = parse_bytes)]
    pub(super) node_disk: u64,
    /// Most processes the node and its RUN steps may have at once.
    #[arg(long, value_name = "N", default_value_t = 2048)]
    pub(super) node_pids: i64,
    /// CPUs the node may use.
    #[arg(long, value_name = "N", default_value_t = 2.0)]
    pub(super) node_cpus: f64,
    /// What RUN steps may reach: public (internet only, never the host, registry7 or other runs) or none.
    #[arg(long, value_enum, default_value = "public")]
    pub(super) egress: Egress,
    /// Largest build context lab7 sends to the node (e.g. 2g).
    #[arg(long, value_name = "SIZE", default_value = "2g", value_parser = parse_bytes)]
    pub(super) max_context: u64,
}

impl NodeArgs {
    pub(super) fn env_options(&self) -> Result<EnvOptions, Error> {
        let limits = NodeLimits {
            memory_bytes: self.node_memory,
            disk_bytes: self.node_disk,
            pids: self.node_pids,
            cpus: self.node_cpus,
        };
        limits.validate().map_err(|e| Error::input(e, "see `lab7 check --help`"))?;
        let _ = DEFAULT_MAX_CONTEXT; // the flag's default, spelled for people
        Ok(EnvOptions { limits, egress: self.egress, max_context: self.max_context, remote: None })
    }
}

#[derive(Debug, Args)]
pub(super) struct CheckArgs {
    /// The app: a folder with the Dockerfile and its sources.
    #[arg(default_value = "lab_examples/reference")]
    pub(super) dir: PathBuf,
    /// The Dockerfile's name inside DIR.
    #[arg(long, default_value = "Dockerfile_multi")]
    pub(super) file: String,
    /// Longest a build may take, in seconds (a build past it fails, as the student's).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(super) build_timeout: u64,
    /// Skip the bonus: leave the cache in the registry.
    #[arg(long)]
    pub(super) keep_cache: bool,
    /// Save the two builds' full output in DIR (build1.log, build2.log), for the lab report.
    #[arg(long, value_name = "DIR")]
    pub(super) logs: Option<PathBuf>,
    /// Who runs the builds: buildctl in the node, or `docker buildx` on this machine (the
    /// student's own commands, through a builder on lab7's node).
    #[arg(long, value_enum, default_value = "buildctl")]
    pub(super) client: Client,
    /// Which registry and BuildKit: the lab's pinned versions, or today's (registry 3.1,
    /// BuildKit v0.34), as a student running `registry:latest` has.
    #[arg(long, value_enum, default_value = "pinned")]
    pub(super) stack: Stack,
    #[command(flatten)]
    pub(super) node: NodeArgs,
    #[command(flatten)]
    pub(super) output: Output,
}

#[derive(Debug, Args)]
pub(super) struct ExplainArgs {
    /// Saved outputs: a build's (any --progress form), curl or garbage-collect transcripts.
    #[arg(required = true)]
    pub(super) files: Vec<PathBuf>,
    /// json: the diagnoses as a JSON array.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub(super) struct GradeLogsArgs {
    pub(super) build1: PathBuf,
    pub(super) build2: PathBuf,
    /// Not needed any more: which steps must be CACHED comes from build 1's log. Accepted and
    /// ignored, so that graders' scripts keep working.
    #[arg(long, hide = true)]
    pub(super) dockerfile: Option<PathBuf>,
    #[command(flatten)]
    pub(super) output: Output,
}

#[derive(Debug, Args)]
pub(super) struct GradeReportArgs {
    /// The report: Markdown, plain text, PDF or DOCX.
    pub(super) file: PathBuf,
    /// Print the text lab7 read from the report, each line with where it is, and stop (to see
    /// what a PDF or DOCX gave when a piece is not found).
    #[arg(long)]
    pub(super) show_text: bool,
    #[command(flatten)]
    pub(super) limits: ReportLimitArgs,
    /// Output format, --out and a report rubric (default: the built-in rubric-report.toml).
    #[command(flatten)]
    pub(super) output: Output,
}

#[derive(Debug, Args)]
pub(super) struct InspectArgs {
    /// REPO[:TAG|@DIGEST], or HOST:PORT/REPO[:TAG].
    pub(super) reference: String,
    /// HOST:PORT of the registry (plain HTTP; prefix https:// for TLS).
    #[arg(long)]
    pub(super) registry: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(super) json: bool,
}

#[derive(Debug, Args)]
pub(super) struct CollectArgs {
    /// The roster: `name,url[,sha]` per line.
    pub(super) roster: PathBuf,
    /// An empty folder for the snapshots; `DIR/roster.csv` names them for `lab7 batch`.
    #[arg(long, value_name = "DIR")]
    pub(super) into: PathBuf,
}

#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    #[arg(long)]
    pub(super) registry: String,
    #[arg(long, default_value = "lab:cachetest")]
    pub(super) image: String,
    #[arg(long, default_value = "cachedata1")]
    pub(super) cache: String,
    #[command(flatten)]
    pub(super) output: Output,
}

#[derive(Debug, Args)]
pub(super) struct BatchArgs {
    /// A folder with one submission per subfolder, or a class as Moodle gives it ("Download
    /// all submissions": the zip, or the folder it unpacks to), graded one row per student.
    #[arg(required_unless_present = "reports", value_name = "DIR|MOODLE.zip")]
    pub(super) dir: Option<PathBuf>,
    /// Grade the reports in DIR instead (one .md/.txt/.pdf/.docx per student; no Docker needed).
    #[arg(long, value_name = "DIR", conflicts_with = "dir")]
    pub(super) reports: Option<PathBuf>,
    /// The report rubric, for --reports and a class (default: the built-in rubric-report.toml;
    /// its `[late]` gives a class's deadline and penalty).
    #[arg(long)]
    pub(super) rubric: Option<PathBuf>,
    /// The language of the HTML pages (results.html, each student's report page); default from the locale.
    #[arg(long, value_enum)]
    pub(super) lang: Option<lab7::report::html::Lang>,
    #[command(flatten)]
    pub(super) report: ReportLimitArgs,
    /// The CSV to write; the Markdown summary goes beside it (.md).
    #[arg(long, default_value = "results.csv")]
    pub(super) out: PathBuf,
    /// The Dockerfile's name in each submission (default Dockerfile_multi; in a Moodle class,
    /// the multi-stage Dockerfile each student's files hold, wherever it is).
    #[arg(long)]
    pub(super) file: Option<String>,
    /// Longest one submission may take, in seconds.
    #[arg(long, default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(super) timeout: u64,
    /// Longest one build may take, in seconds (a build past it fails, as the student's).
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub(super) build_timeout: u64,
    /// Who runs the builds: buildctl in the node, or `docker buildx` on this machine (the
    /// student's own commands, through a builder on lab7's node).
    #[arg(long, value_enum, default_value = "buildctl")]
    pub(super) client: Client,
    #[command(flatten)]
    pub(super) node: NodeArgs,
    /// How submissions share the machine (shared is faster, measured by `make bench`).
    #[arg(long, value_enum, default_value = "shared")]
    pub(super) strategy: batch::Strategy,
    /// Submissions graded at once, each in its own environment (default: one per CPU).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub(super) jobs: Option<u16>,
    #[command(flatten)]
    pub(super) remote: RemoteArgs,
    /// Build every submission again. Without it, a submission whose files, Dockerfile, lab7 and
    /// settings are all as when the last run into the same --out graded it keeps that report
    /// (said on stderr), so that a regrade builds only what changed.
    #[arg(long)]
    pub(super) rebuild: bool,
    /// For a Moodle class: the instructor's word, `student,what,points,reason` per line (what:
    /// total, project, report or bonus; student: participant id or name), applied over lab7's
    /// grades and shown in every row and feedback. Give it to every regrade.
    #[arg(long, value_name = "FILE.csv")]
    pub(super) overrides: Option<PathBuf>,
    /// For a Moodle class with --moodle-worksheet: the deadline, `YYYY-MM-DD HH:MM` in the
    /// site's time zone (as the worksheet's `Last modified (submission)` is written).
    #[arg(long, value_name = "YYYY-MM-DD HH:MM", value_parser = lab7::checks::parse_deadline, requires = "moodle_worksheet")]
    pub(super) deadline: Option<time::PrimitiveDateTime>,
    /// Percentage points of the total each started day after --deadline costs.
    #[arg(long, value_name = "PERCENT", requires = "deadline", default_value_t = 0.0)]
    pub(super) late_penalty: f64,
    /// The most a late hand-in loses, in percentage points.
    #[arg(long, value_name = "PERCENT", requires = "deadline", default_value_t = 100.0)]
    pub(super) late_penalty_max: f64,
    /// For a Moodle class: the assignment's offline grading worksheet (CSV, as downloaded);
    /// lab7 writes it filled (Grade, Last modified (grade), Feedback comments) beside --out.
    #[arg(long, value_name = "FILE.csv")]
    pub(super) moodle_worksheet: Option<PathBuf>,
    /// The worksheet's grade for 100 % (default: its Maximum Grade). Give it when the
    /// assignment's maximum holds the bonus too (e.g. 100 of a maximum of 150).
    #[arg(long, value_name = "POINTS", requires = "moodle_worksheet")]
    pub(super) moodle_full_marks: Option<f64>,
}

/// Remote BuildKit nodes, with buildctl's TLS flags.
#[derive(Debug, Args)]
pub(super) struct RemoteArgs {
    /// A BuildKit daemon to build on instead of lab7's own node, tcp://HOST:PORT (repeat it:
    /// one job per node). The node must reach --registry-address.
    #[arg(long = "node", value_name = "tcp://HOST:PORT", conflicts_with = "jobs")]
    pub(super) nodes: Vec<String>,
    /// An address of this machine the nodes reach registry7 at (registry7 is published there,
    /// behind a password made for the run).
    #[arg(long, value_name = "IP", requires = "nodes")]
    pub(super) registry_address: Option<std::net::IpAddr>,
    /// The CA certificate of the nodes' TLS (buildctl --tlscacert).
    #[arg(long, value_name = "FILE", requires = "nodes")]
    pub(super) node_tlscacert: Option<PathBuf>,
    /// The client certificate (buildctl --tlscert).
    #[arg(long, value_name = "FILE", requires = "node_tlscacert")]
    pub(super) node_tlscert: Option<PathBuf>,
    /// The client key (buildctl --tlskey).
    #[arg(long, value_name = "FILE", requires = "node_tlscacert")]
    pub(super) node_tlskey: Option<PathBuf>,
    /// The server name in the nodes' certificates (buildctl --tlsservername).
    #[arg(long, value_name = "NAME", requires = "node_tlscacert")]
    pub(super) node_tlsservername: Option<String>,
}

impl RemoteArgs {
    /// The nodes as typed values, each flag checked once (a missing file, a bad address).
    pub(super) fn nodes(&self) -> Result<Vec<RemoteNode>, Error> {
        if self.nodes.is_empty() {
            return Ok(Vec::new());
        }
        let address = self.registry_address.ok_or_else(|| {
            Error::input(
                "--node needs --registry-address: the nodes must reach registry7",
                "give an address of this machine the nodes can reach, e.g. --registry-address 192.0.2.10 (its LAN address)",
            )
        })?;
        let tls = self.node_tlscacert.as_ref().map(|ca| NodeTls {
            ca_cert: ca.clone(),
            cert: self.node_tlscert.clone(),
            key: self.node_tlskey.clone(),
            server_name: self.node_tlsservername.clone(),
        });
        self.nodes.iter().map(|n| RemoteNode::parse(n, tls.clone(), address)).collect()
    }
}

impl BatchArgs {
    /// Where the last run's reports are kept for this one to reuse: `reports`, unless `--rebuild`.
    pub(super) fn reuse_from(&self, reports: &Path) -> Option<PathBuf> {
        (!self.rebuild).then(|| reports.to_path_buf())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(args: &[&str]) -> BatchArgs {
        match Cli::try_parse_from(["lab7", "batch"].iter().chain(args)).expect("parses").command {
            Command::Batch(a) => *a,
            _ => unreachable!("a batch command"),
        }
    }

    #[test]
    fn a_batch_reuses_the_last_runs_reports_unless_told_to_rebuild() {
        let reports = Path::new("out/results-reports");
        assert_eq!(batch(&["class"]).reuse_from(reports).as_deref(), Some(reports));
        assert_eq!(batch(&["class", "--rebuild"]).reuse_from(reports), None);
    }
}
