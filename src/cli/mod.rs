//! Subcommands. Each parses its input, calls the library, renders a report.

mod progress;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use lab7::builds::dockerfile::DockerfileSummary;
use lab7::builds::BuildLog;
use lab7::checks::{self, Evidence, Rubric};
use lab7::environment::{self, Images, LabEnvironment};
use lab7::lab::{self, node_info, LabOptions};
use lab7::reference::ImageRef;
use lab7::registry::RegistryClient;
use lab7::report::formats::{self, Format};
use lab7::report::{BuildSummary, Report, RunSummary};
use lab7::{batch, inspect, Error};

/// lab7 — runs and grades Lab 7 (Docker buildx: amd64+arm64 build, registry cache mode=max, cache deletion).
///
/// Exit codes: 0 every compulsory check passes, 1 some check fails (or REF not found),
/// 2 usage or environment error (bad input, Docker not running, registry unreachable).
#[derive(Debug, Parser)]
#[command(name = "lab7", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the environment: Docker engine, node images (official or stand-ins), node platforms.
    Doctor,
    /// Run the whole lab on an app directory and grade it.
    Check(CheckArgs),
    /// Grade two build logs pasted from a report (buildctl plain or buildx tty form).
    GradeLogs(GradeLogsArgs),
    /// Show an image as `docker buildx imagetools inspect` does, with each platform's layers.
    Inspect(InspectArgs),
    /// Self-check a live registry7 (read-only): image for both architectures, separate mode=max cache.
    Audit(AuditArgs),
    /// Grade every submission (one per subfolder) in isolation; write a CSV and a Markdown summary.
    Batch(BatchArgs),
}

#[derive(Debug, Args)]
struct Output {
    /// human, json, md, junit or gradescope
    #[arg(long, default_value = "human")]
    format: Format,
    /// Write the report to FILE instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// A rubric TOML file (default: the built-in rubric.toml).
    #[arg(long)]
    rubric: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// The app: a folder with the Dockerfile and its sources.
    #[arg(default_value = "lab_examples/reference")]
    dir: PathBuf,
    /// The Dockerfile's name inside DIR.
    #[arg(long, default_value = "Dockerfile_multi")]
    file: String,
    /// Longest a build may take, in seconds.
    #[arg(long, default_value_t = 600)]
    build_timeout: u64,
    /// Skip the bonus: leave the cache in the registry.
    #[arg(long)]
    keep_cache: bool,
    /// Save the two builds' full output in DIR (build1.log, build2.log), for the lab report.
    #[arg(long, value_name = "DIR")]
    logs: Option<PathBuf>,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Args)]
struct GradeLogsArgs {
    build1: PathBuf,
    build2: PathBuf,
    /// The Dockerfile, to count the steps CACHED must cover.
    #[arg(long)]
    dockerfile: Option<PathBuf>,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Args)]
struct InspectArgs {
    /// REPO[:TAG|@DIGEST], or HOST:PORT/REPO[:TAG].
    reference: String,
    /// HOST:PORT of the registry (plain HTTP; prefix https:// for TLS).
    #[arg(long)]
    registry: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AuditArgs {
    #[arg(long)]
    registry: String,
    #[arg(long, default_value = "lab:cachetest")]
    image: String,
    #[arg(long, default_value = "cachedata1")]
    cache: String,
    #[command(flatten)]
    output: Output,
}

#[derive(Debug, Args)]
struct BatchArgs {
    /// A folder with one submission per subfolder.
    dir: PathBuf,
    /// The CSV to write; the Markdown summary goes beside it (.md).
    #[arg(long, default_value = "results.csv")]
    out: PathBuf,
    #[arg(long, default_value = "Dockerfile_multi")]
    file: String,
    /// Longest one submission may take, in seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// shared (faster, measured by `make bench`): one node, its cache wiped before each
    /// build, and an empty registry7 per submission; fresh: a new registry7 and node each.
    #[arg(long, default_value = "shared", value_parser = ["fresh", "shared"])]
    strategy: String,
}

pub async fn run(cli: Cli) -> Result<i32, Error> {
    match cli.command {
        Command::Doctor => doctor().await,
        Command::Check(a) => check(a).await,
        Command::GradeLogs(a) => grade_logs(a),
        Command::Inspect(a) => inspect_cmd(a).await,
        Command::Audit(a) => audit(a).await,
        Command::Batch(a) => batch_cmd(a).await,
    }
}

fn emit(report: &Report, out: &Output) -> Result<i32, Error> {
    let color = out.out.is_none() && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let text = formats::render(report, out.format, color);
    match &out.out {
        Some(path) => std::fs::write(path, text)
            .map_err(|e| Error::Input(format!("{}: cannot write the report: {e}", path.display())))?,
        None => print!("{text}"),
    }
    Ok(report.exit_code())
}

fn rubric(out: &Output) -> Result<Rubric, Error> {
    out.rubric.as_deref().map_or_else(|| Ok(Rubric::default_rubric()), Rubric::load)
}

async fn doctor() -> Result<i32, Error> {
    let engine = environment::engine().await?;
    let images = Images::load();
    println!("Docker Engine {} (API {}, {}) at {}", engine.version, engine.api_version, engine.os, engine.host);
    let kind = if images.standins { "offline stand-ins built on this machine" } else { "as configured" };
    println!("Images ({kind}):\n  registry7: {}\n  node:      {}", images.registry, images.buildkit);
    if let Some(m) = &images.mirror {
        println!("  docker.io mirror: {m}");
    }
    let env = LabEnvironment::start(&images, None).await?;
    let client = env.registry.client().await?;
    let ping = client.ping().await?;
    let node = node_info(&env.node.workers().await?);
    println!("registry7 answers GET /v2/ with {} at {}", ping.as_u16(), client.base());
    let platforms: Vec<String> = node.platforms.iter().map(|p| p.to_string()).collect();
    println!("Node: BuildKit {}, platforms {}", node.buildkit_version, platforms.join(", "));
    let arm = node.platforms.iter().any(|p| p.matches(&lab7::platform::Platform::linux_arm64()));
    if !arm {
        println!("linux/arm64 is missing: register QEMU emulation (make env, or docker run --privileged --rm tonistiigi/binfmt --install arm64)");
        return Ok(1);
    }
    Ok(0)
}

async fn check(a: CheckArgs) -> Result<i32, Error> {
    let rubric = rubric(&a.output)?;
    let mut opts = LabOptions::new(&a.dir);
    opts.dockerfile = a.file;
    opts.build_timeout = Duration::from_secs(a.build_timeout);
    opts.delete_cache = !a.keep_cache;
    let view = progress::View::new();
    let run = lab::run(&opts, &Images::load(), &view).await?;
    if let Some(dir) = &a.logs {
        save_logs(dir, &run)?;
    }
    let checks = checks::evaluate(&rubric, &Evidence::of_run(&run));
    let report = Report::new(
        "check",
        &a.dir.display().to_string(),
        checks,
        BuildSummary::of_run(&run),
        Some(RunSummary::of(&run)),
    );
    emit(&report, &a.output)
}

fn save_logs(dir: &std::path::Path, run: &lab::LabRun) -> Result<(), Error> {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::create_dir_all(dir)
            .and_then(|_| std::fs::write(&path, text))
            .map_err(|e| Error::Input(format!("{}: cannot save the build log: {e}", path.display())))
    };
    write("build1.log", &run.build1.raw_log)?;
    if let Some(b) = &run.build2 {
        write("build2.log", &b.raw_log)?;
    }
    eprintln!("lab7: build logs saved in {}", dir.display());
    Ok(())
}

fn read_log(path: &PathBuf) -> Result<BuildLog, Error> {
    let bytes = std::fs::read(path)
        .map_err(|e| Error::Input(format!("{}: {e}\n  fix: give the path of a saved build output", path.display())))?;
    let text = String::from_utf8_lossy(&bytes);
    let log = BuildLog::parse(&text);
    if log.vertices.is_empty() {
        return Err(Error::Input(format!(
            "{}: no BuildKit progress found\n  fix: save the build's output with --progress=plain (or paste the buildx `=> …` lines)",
            path.display()
        )));
    }
    Ok(log)
}

fn grade_logs(a: GradeLogsArgs) -> Result<i32, Error> {
    let rubric = rubric(&a.output)?;
    let (b1, b2) = (read_log(&a.build1)?, read_log(&a.build2)?);
    let dockerfile = match &a.dockerfile {
        Some(p) => Some(DockerfileSummary::parse(
            &std::fs::read_to_string(p).map_err(|e| Error::Input(format!("{}: {e}", p.display())))?,
        )),
        None => None,
    };
    let ev = Evidence {
        build1: Some((&b1, None)),
        build2: Some((&b2, None)),
        dockerfile: dockerfile.as_ref(),
        ..Evidence::default()
    };
    let subject = format!("{} {}", a.build1.display(), a.build2.display());
    let builds = vec![BuildSummary::of_log(1, &b1, None, None), BuildSummary::of_log(2, &b2, None, None)];
    emit(&Report::new("grade-logs", &subject, checks::evaluate(&rubric, &ev), builds, None), &a.output)
}

fn registry_and_ref(reference: &str, registry: Option<&str>) -> Result<(RegistryClient, ImageRef), Error> {
    let r: ImageRef = reference.parse().map_err(|e| Error::Input(format!("{e}")))?;
    let host = registry.map(str::to_string).or(r.registry.clone()).ok_or_else(|| {
        Error::Input(format!("{reference}: which registry? give --registry HOST:PORT (e.g. localhost:5000)"))
    })?;
    Ok((RegistryClient::new(&host), r))
}

async fn inspect_cmd(a: InspectArgs) -> Result<i32, Error> {
    let (client, r) = registry_and_ref(&a.reference, a.registry.as_deref())?;
    let Some(found) = inspect::inspect(&client, &r).await? else {
        eprintln!("lab7: {} not found in {}", r, client.base());
        return Ok(1);
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&found).expect("json"));
    } else {
        print!("{}", found.text());
    }
    Ok(0)
}

async fn audit(a: AuditArgs) -> Result<i32, Error> {
    let rubric = rubric(&a.output)?;
    let client = RegistryClient::new(&a.registry);
    client.ping().await?;
    let image: ImageRef = a.image.parse().map_err(|e| Error::Input(format!("--image: {e}")))?;
    let cache: ImageRef = a.cache.parse().map_err(|e| Error::Input(format!("--cache: {e}")))?;
    let (image_summary, cache_evidence) = inspect::audit(&client, &image, &cache).await?;
    let ev =
        Evidence { image: Some(image_summary.as_ref()), cache: Some(cache_evidence.as_ref()), ..Evidence::default() };
    let subject = format!("{} {} {}", a.registry, image, cache);
    emit(&Report::new("audit", &subject, checks::evaluate(&rubric, &ev), Vec::new(), None), &a.output)
}

async fn batch_cmd(a: BatchArgs) -> Result<i32, Error> {
    let strategy = if a.strategy == "shared" { batch::Strategy::SharedNode } else { batch::Strategy::FreshEnvironment };
    let opts = batch::BatchOptions { file: a.file, timeout: Duration::from_secs(a.timeout), strategy };
    let results =
        batch::grade_all(&a.dir, &opts, &Images::load(), &Rubric::default_rubric(), &progress::View::new()).await?;
    let md = a.out.with_extension("md");
    std::fs::write(&a.out, batch::csv(&results)).map_err(|e| Error::Input(format!("{}: {e}", a.out.display())))?;
    std::fs::write(&md, batch::markdown(&results)).map_err(|e| Error::Input(format!("{}: {e}", md.display())))?;
    print!("{}", batch::markdown(&results));
    eprintln!("lab7: wrote {} and {}", a.out.display(), md.display());
    Ok(if results.iter().all(|r| r.verdict.as_deref() == Some("pass")) { 0 } else { 1 })
}
