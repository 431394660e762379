//! `cargo bench --bench batch_strategies`: grading 10 submissions with a fresh
//! environment each vs one shared node (cache wiped before each build, an empty
//! registry7 each), one at a time and with `--jobs` (one per CPU). Prints the times and
//! their ratios — `lab7 batch` defaults to the faster one that stays isolated — and one whole
//! lab run against its 3-minute target.

mod support;

use std::path::Path;

use std::time::{Duration, Instant};
use support::copy_dir;

use lab7::batch::{self, BatchOptions, Strategy};
use lab7::checks::Rubric;
use lab7::environment::{EnvOptions, Images};
use lab7::lab::Silent;
use lab7::report::Verdict;
use tokio_util::sync::CancellationToken;

const SUBMISSIONS: usize = 10;

/// Ten copies of the reference app, each with a file of its own so no two build alike.
fn class(dir: &Path) {
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("lab_examples/reference");
    for i in 1..=SUBMISSIONS {
        let sub = dir.join(format!("student{i:02}"));
        copy_dir(&reference, &sub);
        std::fs::write(sub.join("src/submission.txt"), format!("student {i}\n")).unwrap();
    }
}

fn grade(rt: &tokio::runtime::Runtime, dir: &Path, strategy: Strategy, jobs: usize) -> Duration {
    let opts = BatchOptions {
        file: "Dockerfile_multi".into(),
        timeout: Duration::from_secs(900),
        strategy,
        env: EnvOptions::new(),
        build_timeout: Duration::from_secs(600),
        client: Default::default(),
        jobs,
        nodes: Vec::new(),
        cancel: CancellationToken::new(),
        own_outputs: Vec::new(),
        reuse_from: None,
    };
    let started = Instant::now();
    let results = rt
        .block_on(batch::grade_all(dir, &opts, &Images::load(), &Rubric::default_rubric(), &Silent, &mut |_, _| Ok(())))
        .expect("the batch runs");
    let took = started.elapsed();
    let passed = results.iter().filter(|r| r.verdict == Some(Verdict::Pass)).count();
    assert_eq!(passed, SUBMISSIONS, "every copy of the reference passes: {results:?}");
    took
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    class(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fresh = grade(&rt, dir.path(), Strategy::FreshEnvironment, 1);
    let shared = grade(&rt, dir.path(), Strategy::SharedNode, 1);
    let jobs = batch::default_jobs();
    let parallel = grade(&rt, dir.path(), Strategy::SharedNode, jobs);
    let per = |d: Duration| d.as_secs_f64() / SUBMISSIONS as f64;
    println!("batch of {SUBMISSIONS} submissions (lab_examples/reference copies):");
    println!("  fresh environment per submission: {:6.1}s ({:.2}s each)", fresh.as_secs_f64(), per(fresh));
    println!("  shared node, cache wiped:         {:6.1}s ({:.2}s each)", shared.as_secs_f64(), per(shared));
    println!("  shared / fresh = {:.2}", shared.as_secs_f64() / fresh.as_secs_f64());
    println!("  shared, --jobs {jobs}:                {:6.1}s ({:.2}s each)", parallel.as_secs_f64(), per(parallel));
    println!("  --jobs {jobs} / --jobs 1 = {:.2}", parallel.as_secs_f64() / shared.as_secs_f64());
    // A fresh-environment submission is one whole `lab7 check`: environment to deletion.
    println!(
        "one lab run (environment → deletion): {:.1}s = {:.3} of the 180 s target",
        per(fresh),
        per(fresh) / 180.0
    );
}
