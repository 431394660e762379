//! Subcommands. Each takes its typed flags (`args`), calls the library, renders a report.

mod args;
mod class;
mod outputs;
mod progress;
mod signals;

use std::io::IsTerminal;
use std::time::Duration;

use lab7::builds::buildx::Client;
use lab7::builds::{log_text, BuildLog};
use lab7::checks::{self, Evidence, Names, Rubric, RubricKind};
use lab7::diagnosis;
use lab7::environment::EnvOptions;
use lab7::environment::{self, Images, LabEnvironment};
use lab7::handin::isolated::{Extracted, ReadFailure};
use lab7::lab::{self, node_info, LabOptions};
use lab7::reference::ImageRef;
use lab7::registry::RegistryClient;
use lab7::report::formats;
use lab7::report::{BuildSummary, Report, RunSummary};
use lab7::{batch, inspect, Error, Exit};

use args::{
    AuditArgs, BatchArgs, CheckArgs, CollectArgs, Command, DoctorArgs, ExplainArgs, GradeLogsArgs, GradeReportArgs,
    InspectArgs, Output,
};
pub use args::{Cli, ReadReportArgs};

/// What runs before (and without) a tokio runtime: the hidden report reader, a child of lab7
/// that should be one thread doing one thing under its caps.
pub fn without_runtime(cli: &Cli) -> Option<Result<Exit, Error>> {
    match &cli.command {
        Command::ReadReport(a) => Some(read_report(a)),
        Command::HostAddresses => Some(host_addresses()),
        _ => None,
    }
}

pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let interrupt = signals::Interrupt::watch()?;
    let code = match cli.command {
        Command::Doctor(a) => doctor(a).await,
        Command::Check(a) => check(a, &interrupt).await,
        Command::GradeLogs(a) => grade_logs(a),
        Command::GradeReport(a) => grade_report(a, &interrupt).await,
        Command::Explain(a) => explain(a),
        Command::Inspect(a) => inspect_cmd(a).await,
        Command::Audit(a) => audit(a).await,
        Command::Collect(a) => collect(a),
        Command::Batch(a) => batch_cmd(*a, &interrupt).await,
        Command::ReadReport(a) => read_report(&a),
        Command::HostAddresses => host_addresses(),
    }?;
    Ok(interrupt.exit().unwrap_or(code))
}

fn emit(report: &Report, out: &Output) -> Result<Exit, Error> {
    let color = out.out.is_none() && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let lang = out.lang.unwrap_or_else(lab7::report::html::Lang::from_locale);
    let text = formats::render(report, out.format, formats::Style { color, lang });
    match &out.out {
        Some(path) => outputs::write(path, &text, "the report")?,
        None => print!("{text}"),
    }
    Ok(report.exit())
}

fn rubric(out: &Output) -> Result<Rubric, Error> {
    out.rubric.as_deref().map_or_else(|| Ok(Rubric::default_rubric()), Rubric::load)
}

async fn doctor(a: DoctorArgs) -> Result<Exit, Error> {
    let engine = environment::engine().await?;
    if a.clean {
        let swept = environment::lifecycle::sweep(&environment::docker::connect().await?).await?;
        println!("removed the containers and networks of {} run(s) whose lab7 process is gone", swept.removed.len());
        for id in &swept.removed {
            println!("  run {id}");
        }
        for (id, e) in &swept.failed {
            eprintln!("lab7: could not remove what run {id} left: {e}");
        }
        return Ok(if swept.failed.is_empty() { Exit::Pass } else { Exit::UsageOrEnvironment });
    }
    let images = Images::load();
    println!("Docker Engine {} (API {}, {}) at {}", engine.version, engine.api_version, engine.os, engine.host);
    println!("{}", engine.native_and_emulated());
    let kind = if images.standins { "offline stand-ins built on this machine" } else { "as configured" };
    println!("Images ({kind}):\n  registry7: {}\n  node:      {}", images.registry, images.buildkit);
    if let Some(m) = &images.mirror {
        println!("  docker.io mirror: {m}");
    }
    let env = LabEnvironment::start(&images, &EnvOptions::new()).await?;
    let seen = async {
        let client = env.registry.client().await?;
        let ping = client.ping().await?;
        Ok::<_, Error>((client.base().to_string(), ping, node_info(&env.node.workers().await?)))
    }
    .await;
    env.shutdown().await?;
    let (base, ping, node) = seen?;
    if let Some(own) = environment::placement::own_container() {
        let short = &own.id[..12.min(own.id.len())];
        println!("lab7 runs in container {short}: it joins each run's network to reach registry7");
    }
    println!("registry7 answers GET /v2/ with {} at {base}", ping.as_u16());
    let platforms: Vec<String> = node.platforms.iter().map(|p| p.to_string()).collect();
    println!("Node: BuildKit {}, platforms {}", node.buildkit_version, platforms.join(", "));
    let arm = node.platforms.iter().any(|p| p.matches(&lab7::platform::Platform::linux_arm64()));
    if !arm {
        println!("linux/arm64 is missing: register QEMU emulation (make env, or docker run --privileged --rm tonistiigi/binfmt --install arm64)");
        return Ok(Exit::Fail);
    }
    Ok(Exit::Pass)
}

async fn check(a: CheckArgs, interrupt: &signals::Interrupt) -> Result<Exit, Error> {
    let rubric = rubric(&a.output)?;
    let mut opts = LabOptions::new(&a.dir);
    opts.dockerfile = a.file;
    opts.build_timeout = Duration::from_secs(a.build_timeout);
    opts.delete_cache = !a.keep_cache;
    opts.client = a.client;
    opts.env = a.node.env_options()?;
    opts.cancel = interrupt.token();
    // Where the results go is checked before any work: a lost report is a lost run.
    if let Some(out) = &a.output.out {
        outputs::check_file(out)?;
    }
    if let Some(dir) = &a.logs {
        outputs::check_dir(dir)?;
    }
    let view = progress::View::new();
    let run = lab::run(&opts, &Images::of(a.stack), &view).await?;
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
    let logs: Vec<&str> = std::iter::once(&run.build1).chain(&run.build2).map(|b| b.raw_log.as_str()).collect();
    emit(&report.with_diagnoses(diagnose_builds(&logs)), &a.output)
}

fn save_logs(dir: &std::path::Path, run: &lab::LabRun) -> Result<(), Error> {
    outputs::write(&dir.join("build1.log"), &run.build1.raw_log, "the build log")?;
    if let Some(b) = &run.build2 {
        outputs::write(&dir.join("build2.log"), &b.raw_log, "the build log")?;
    }
    eprintln!("lab7: build logs saved in {}", dir.display());
    Ok(())
}

/// The known failures in the builds' output, each once.
fn diagnose_builds(texts: &[&str]) -> Vec<diagnosis::Diagnosis> {
    let mut found: Vec<diagnosis::Diagnosis> = Vec::new();
    for t in texts {
        for d in diagnosis::diagnose(&BuildLog::readable(t)) {
            if !found.iter().any(|f| f.id == d.id) {
                found.push(d);
            }
        }
    }
    found
}

/// A build log is at most this big (a build's plain output is kilobytes to a few megabytes).
const MAX_LOG_BYTES: u64 = 64 << 20;

/// A saved build output as text, whatever its encoding (UTF-8/16, BOM) and wrapping.
fn read_log_text(path: &std::path::Path) -> Result<String, Error> {
    let bytes = lab::read_small_bytes(path, MAX_LOG_BYTES).map_err(|e| {
        Error::input(format!("{}: {e}", path.display()), "give the path of a saved build output (a text file)")
    })?;
    Ok(log_text::decode(&bytes))
}

fn parse_log(path: &std::path::Path, text: &str) -> Result<BuildLog, Error> {
    let log = BuildLog::parse(text);
    if log.vertices.is_empty() {
        return Err(Error::input(
            format!("{}: no BuildKit progress found", path.display()),
            "save the build's whole output (any --progress mode: plain, tty, rawjson), e.g. `docker buildx build … 2>&1 | tee build1.log`",
        ));
    }
    Ok(log)
}

/// `lab7 explain`: 0 when nothing known went wrong, 1 when a problem was found, 2 when a file
/// cannot be read.
fn explain(a: ExplainArgs) -> Result<Exit, Error> {
    let mut found = Vec::new();
    let mut unknown: Vec<(String, (String, String))> = Vec::new();
    for path in &a.files {
        let raw = read_log_text(path)?;
        if log_text::looks_binary(&raw) {
            return Err(Error::input(
                format!("{}: not text (a binary file?)", path.display()),
                "give a saved build output or command transcript",
            ));
        }
        let text = BuildLog::readable(&raw);
        let diagnosed = diagnosis::diagnose(&text);
        let known = diagnosed.iter().any(|d| !d.expected);
        for d in diagnosed {
            found.push((path.display().to_string(), d));
        }
        // A build that failed where the catalogue knows nothing is still a problem: its cause is
        // read from the log as `check` reads it.
        if !known {
            if let Some(f) = failed_build(&text) {
                unknown.push((path.display().to_string(), f));
            }
        }
    }
    let problems = found.iter().filter(|(_, d)| !d.expected).count() + unknown.len();
    if a.json {
        let mut list: Vec<serde_json::Value> =
            found.iter().map(|(f, d)| serde_json::json!({ "file": f, "diagnosis": d })).collect();
        list.extend(
            unknown.iter().map(
                |(f, (error, fix))| serde_json::json!({ "file": f, "build_failed": { "error": error, "fix": fix } }),
            ),
        );
        println!("{}", serde_json::to_string_pretty(&list).expect("json"));
    } else {
        for (file, d) in &found {
            let label = if d.expected { "expected" } else { "problem" };
            print!("{file}: {label} {}", d.text());
        }
        for (file, (error, fix)) in &unknown {
            println!("{file}: problem build-failed: the build failed, with no catalogue entry for why\n  error: {error}\n  fix: {fix}");
        }
        match (found.len() + unknown.len(), problems) {
            (0, _) => println!("no known failure found in {} file(s)", a.files.len()),
            (_, 0) => println!("nothing wrong: only expected messages"),
            (_, n) => println!("{n} problem(s) found"),
        }
    }
    Ok(if problems > 0 { Exit::Fail } else { Exit::Pass })
}

/// A failed build's first error and the advice for its cause, when `text` is a build's output.
fn failed_build(text: &str) -> Option<(String, String)> {
    let log = BuildLog::parse(text);
    let error = log.first_failure()?;
    let fix = log
        .failure_cause()
        .map_or_else(|| "read the first error and the step's output before it".to_string(), |c| c.advice());
    Some((error, fix))
}

fn grade_logs(a: GradeLogsArgs) -> Result<Exit, Error> {
    let rubric = rubric(&a.output)?;
    if let Some(out) = &a.output.out {
        outputs::check_file(out)?;
    }
    if a.dockerfile.is_some() {
        eprintln!("lab7: --dockerfile is no longer needed (the steps come from build 1's log); ignored");
    }
    // The same output in both files is graded (a FAIL saying the two builds are one), not refused.
    let (text1, text2) = (read_log_text(&a.build1)?, read_log_text(&a.build2)?);
    let (b1, b2) = (parse_log(&a.build1, &text1)?, parse_log(&a.build2, &text2)?);
    let ev =
        Evidence { build1: Some((&b1, None)), build2: Some((&b2, None)), names: rubric.names(), ..Evidence::default() };
    let subject = format!("{} {}", a.build1.display(), a.build2.display());
    let builds = vec![BuildSummary::of_log(1, &b1, None, None), BuildSummary::of_log(2, &b2, None, None)];
    let found = diagnose_builds(&[&text1, &text2]);
    let report = Report::new("grade-logs", &subject, checks::evaluate(&rubric, &ev), builds, None);
    emit(&report.with_diagnoses(found), &a.output)
}

/// `lab7 grade-report`: 0 when every compulsory requirement is shown, 1 when something is
/// missing or inconsistent, 2 when the file cannot be read (or is past a bound).
async fn grade_report(a: GradeReportArgs, interrupt: &signals::Interrupt) -> Result<Exit, Error> {
    let rubric = report_rubric(a.output.rubric.as_deref())?;
    if let Some(out) = &a.output.out {
        outputs::check_file(out)?;
    }
    let handin = match a.limits.reader()?.read(&a.file, &interrupt.token()).await {
        Ok(h) => h,
        Err(ReadFailure::Unreadable(e)) => return Err(e),
        // The signal's own exit code replaces this one (`run`).
        Err(ReadFailure::Interrupted) => return Ok(Exit::UsageOrEnvironment),
    };
    if a.show_text {
        for l in &handin.lines {
            println!("{:>24} | {}", l.at.to_string(), l.text);
        }
        return Ok(Exit::Pass);
    }
    emit(&handin.grade(&a.file.display().to_string(), &rubric), &a.output)
}

/// The hidden `lab7 read-report`: one report's lines as JSON, or its error (exit 2). Run by
/// lab7 itself as a child with capped memory and CPU time (`handin::isolated`).
pub fn read_report(a: &ReadReportArgs) -> Result<Exit, Error> {
    let limits = lab7::handin::docx::Limits { max_part_bytes: a.max_part, ..Default::default() };
    let (format, lines) = lab7::handin::extract::read_within(&a.file, limits)?;
    let json = serde_json::to_string(&Extracted { format, lines }).map_err(|e| Error::Lab(e.to_string()))?;
    println!("{json}");
    Ok(Exit::Pass)
}

/// The hidden `lab7 host-addresses` (`environment::placement`).
fn host_addresses() -> Result<Exit, Error> {
    environment::placement::interface_addresses().iter().for_each(|a| println!("{a}"));
    Ok(Exit::Pass)
}

fn report_rubric(path: Option<&std::path::Path>) -> Result<Rubric, Error> {
    path.map_or_else(|| Ok(Rubric::default_report_rubric()), |p| Rubric::load_for(p, RubricKind::Report))
}

fn registry_and_ref(reference: &str, registry: Option<&str>) -> Result<(RegistryClient, ImageRef), Error> {
    let r: ImageRef = reference.parse().map_err(|e| Error::input_only(format!("{e}")))?;
    let host = registry.map(str::to_string).or(r.registry.clone()).ok_or_else(|| {
        Error::input(format!("{reference}: which registry?"), "give --registry HOST:PORT (e.g. localhost:5000)")
    })?;
    Ok((RegistryClient::new(&host), r))
}

async fn inspect_cmd(a: InspectArgs) -> Result<Exit, Error> {
    let (client, r) = registry_and_ref(&a.reference, a.registry.as_deref())?;
    // "Not found" only means something from a registry: anything else is exit 2.
    client.ping().await?;
    let Some(found) = inspect::inspect(&client, &r).await? else {
        eprintln!("lab7: {} not found in {}", r, client.base());
        return Ok(Exit::Fail);
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&found).expect("json"));
    } else {
        print!("{}", found.text());
    }
    if !found.missing.is_empty() {
        eprintln!(
            "lab7: {r} is incomplete: {} part(s) it references answer 404, so it cannot be pulled (on registry 2.8, garbage-collect --delete-untagged deletes the platform manifests of multi-arch images)",
            found.missing.len()
        );
        return Ok(Exit::Fail);
    }
    if let Some(b) = found.wrong_architecture().first() {
        eprintln!(
            "lab7: {r}: its {} image holds binaries for another architecture ({} of {} ELF files), so it will not run there\n  fix: start the final stage with a plain FROM (not FROM --platform=$BUILDPLATFORM), so it is the target platform's base image",
            b.platform,
            b.foreign.len(),
            b.elf_files
        );
        return Ok(Exit::Fail);
    }
    Ok(Exit::Pass)
}

async fn audit(a: AuditArgs) -> Result<Exit, Error> {
    let rubric = rubric(&a.output)?;
    if let Some(out) = &a.output.out {
        outputs::check_file(out)?;
    }
    let client = RegistryClient::new(&a.registry);
    client.ping().await?;
    let image: ImageRef = a.image.parse().map_err(|e| Error::input_only(format!("--image: {e}")))?;
    let cache: ImageRef = a.cache.parse().map_err(|e| Error::input_only(format!("--cache: {e}")))?;
    let (image_summary, cache_evidence) = inspect::audit(&client, &image, &cache).await?;
    // The texts name what was asked for: `--image X --cache Y` are graded as X and Y.
    let ev = Evidence {
        image: image_summary.observed(),
        cache: cache_evidence.observed(),
        names: Names { image: image.clone(), cache: cache.clone() },
        // A read-only audit cannot tell a deletion done from a cache never pushed.
        bonus_elsewhere: Some("the bonus is graded by `lab7 check` (it runs the deletion and measures it) or from your report (`lab7 grade-report`)"),
        ..Evidence::default()
    };
    let subject = format!("{} {} {}", a.registry, image, cache);
    emit(&Report::new("audit", &subject, checks::evaluate(&rubric, &ev), Vec::new(), None), &a.output)
}

async fn batch_cmd(a: BatchArgs, interrupt: &signals::Interrupt) -> Result<Exit, Error> {
    if let Some(dir) = &a.reports {
        let rubric = report_rubric(a.rubric.as_deref())?;
        let mut sink = outputs::BatchOutputs::create(&a.out, a.lang)?;
        let reading =
            batch::ReportReading { reader: a.report.reader()?, own_outputs: sink.paths(), cancel: interrupt.token() };
        let results = batch::grade_reports(dir, &rubric, &reading, &mut |r, report| sink.record(r, report)).await?;
        return Ok(finish_batch(&results, &a.out, &sink));
    }
    let dir = a.dir.clone().expect("clap requires DIR without --reports");
    if lab7::intake::is_class(&dir) {
        return class::grade(a, &dir, interrupt).await;
    }
    if a.rubric.is_some() {
        return Err(Error::input(
            "--rubric is the report rubric: it grades --reports, or the reports of a class (a Moodle download or a roster)",
            "leave it out for a folder of projects (they are graded by the built-in rubric.toml)",
        ));
    }
    let opts = batch_options(&a, interrupt)?;
    // Every output is opened before the first submission, and Docker must answer: a batch
    // that cannot grade anyone is an environment error (2), not a class of failures.
    let mut sink = outputs::BatchOutputs::create(&a.out, a.lang)?;
    let reuse_from = a.reuse_from(&sink.reports);
    let opts = batch::BatchOptions { own_outputs: sink.paths(), reuse_from, ..opts };
    environment::engine().await?;
    let rubric = Rubric::default_rubric();
    let results = batch::grade_all(&dir, &opts, &Images::load(), &rubric, &progress::View::new(), &mut |r, report| {
        sink.record(r, report)
    })
    .await?;
    Ok(finish_batch(&results, &a.out, &sink))
}

/// `lab7 collect`: each repository of the roster copied now, and the roster of the copies.
fn collect(a: CollectArgs) -> Result<Exit, Error> {
    let roster = lab7::intake::git::read_roster(&a.roster)?;
    outputs::check_dir(&a.into)?;
    let collected = lab7::intake::git::collect(&roster, &a.into);
    for c in &collected {
        match &c.snapshot {
            Ok((path, sha)) => {
                eprintln!("lab7: {}: commit {sha} at {} → {}", c.entry.name, c.fetched_at, path.display())
            }
            Err(e) => eprintln!("lab7: {}: not collected ({}): {e}", c.entry.name, c.entry.url),
        }
    }
    let out = a.into.join("roster.csv");
    let text = lab7::intake::git::collected_roster(&collected).map_err(|e| Error::Lab(e.to_string()))?;
    outputs::write(&out, &text, "the collected roster")?;
    eprintln!("lab7: wrote {}: grade it with `lab7 batch {}`", out.display(), out.display());
    Ok(if collected.iter().all(|c| c.snapshot.is_ok()) { Exit::Pass } else { Exit::Fail })
}

/// The batch's settings from its flags, checked once.
fn batch_options(a: &BatchArgs, interrupt: &signals::Interrupt) -> Result<batch::BatchOptions, Error> {
    if !a.remote.nodes.is_empty() && a.client == Client::Buildx {
        return Err(Error::input(
            "--client buildx builds through lab7's own node; remote nodes (--node) build with buildctl",
            "leave out --client buildx (or --node)",
        ));
    }
    Ok(batch::BatchOptions {
        file: a.file.clone().unwrap_or_else(|| "Dockerfile_multi".into()),
        timeout: Duration::from_secs(a.timeout),
        strategy: a.strategy,
        env: a.node.env_options()?,
        build_timeout: Duration::from_secs(a.build_timeout),
        client: a.client,
        jobs: a.jobs.map_or_else(batch::default_jobs, usize::from),
        nodes: a.remote.nodes()?,
        cancel: interrupt.token(),
        own_outputs: Vec::new(),
        reuse_from: None,
    })
}

/// The class summary on standard output, where the files went, and the batch's exit code.
fn finish_batch(results: &[batch::SubmissionResult], out: &std::path::Path, sink: &outputs::BatchOutputs) -> Exit {
    print!("{}", batch::markdown(results));
    if let Err(e) = sink.finish() {
        eprintln!("lab7: {e}");
    }
    eprintln!(
        "lab7: wrote {}, {}, {} and the reports in {}",
        out.display(),
        sink.summary.display(),
        sink.dashboard.display(),
        sink.reports.display()
    );
    if results.iter().any(|r| r.error.is_some()) {
        Exit::UsageOrEnvironment
    } else if results.iter().all(|r| r.verdict == Some(lab7::report::Verdict::Pass)) {
        Exit::Pass
    } else {
        Exit::Fail
    }
}
