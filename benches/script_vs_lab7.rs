//! `cargo bench --bench script_vs_lab7`: `lab7 check` on lab_examples/reference against the same
//! lab done by a hand-written script (`benches/lab-by-hand.sh`: docker run, docker exec …
//! buildctl, curl), interleaved, five pairs. Prints both medians and their ratio (issue 12's
//! target: lab7 at most 0.7 of the script).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const PAIRS: usize = 5;

fn timed(cmd: &mut Command) -> Duration {
    let started = Instant::now();
    let out = cmd.output().expect("the command starts");
    assert!(out.status.code().is_some_and(|c| c == 0), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    started.elapsed()
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let app = root.join("lab_examples/reference");
    let (mut lab7, mut script) = (Vec::new(), Vec::new());
    for _ in 0..PAIRS {
        lab7.push(timed(Command::new(env!("CARGO_BIN_EXE_lab7")).arg("check").arg(&app).current_dir(root)));
        script.push(timed(Command::new("bash").arg(root.join("benches/lab-by-hand.sh")).arg(&app)));
    }
    let (l, s) = (median(lab7), median(script));
    println!("lab_examples/reference, {PAIRS} interleaved pairs (medians):");
    println!("  lab7 check:                 {l:.2}s");
    println!("  benches/lab-by-hand.sh:     {s:.2}s");
    println!("  lab7 / script = {:.2} (target: 0.70 or less)", l / s);
}
