//! Valid lab solutions that BuildKit builds in ways a count of Dockerfile lines misses: each
//! passes every compulsory check, as it does with the real tools.

use crate::common;

use lab7::checks::{CheckId, Status};
use lab7::environment::Images;
use lab7::lab::{self, LabOptions, LabRun, Silent};

async fn run_app(dir: &std::path::Path) -> LabRun {
    common::require_docker("valid_variants");
    lab::run(&LabOptions::new(dir), &Images::load(), &Silent).await.unwrap_or_else(|e| panic!("{e}"))
}

/// A cross-compiling stage on $BUILDPLATFORM, a FROM scratch stage built once for both
/// platforms, a stage nothing uses, a heredoc with a line starting "Run", ten steps in a stage.
#[test]
fn a_cross_compiling_multi_stage_build_passes() {
    common::block_on(async move {
        let run = run_app(&common::example("buildkit-shapes")).await;
        let report = common::report_of(&run);
        let cached = report.check(CheckId::CachedStepsBothPlatforms);
        assert_eq!(cached.status, Status::Pass, "{}", cached.seen);
        assert!(report.checks.iter().filter(|c| !c.bonus).all(|c| c.status == Status::Pass), "{:#?}", report.checks);
        let names: Vec<&str> = run.build1.log.steps().map(|(v, _)| v.name.as_str()).collect();
        assert!(names.iter().any(|n| n.starts_with("[linux/amd64->arm64 build ")), "{names:?}");
        assert!(names.iter().any(|n| n.contains(" prod  2/10]")), "{names:?}");
        assert!(!names.iter().any(|n| n.contains(" unused ")), "a stage nothing uses is never built: {names:?}");
    })
}

/// Windows editors save a byte order mark before FROM; BuildKit reads past it, and so does lab7.
#[test]
fn a_dockerfile_with_a_byte_order_mark_passes() {
    common::block_on(async move {
        let dir = tempfile::tempdir().unwrap();
        let reference = common::example("reference");
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        for f in std::fs::read_dir(reference.join("src")).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), dir.path().join("src").join(f.file_name())).unwrap();
        }
        let text = std::fs::read_to_string(reference.join("Dockerfile_multi")).unwrap();
        std::fs::write(dir.path().join("Dockerfile_multi"), format!("\u{feff}{text}")).unwrap();
        let run = run_app(dir.path()).await;
        assert!(run.build1.succeeded(), "{}", run.build1.raw_log);
        assert_eq!(common::report_of(&run).verdict, lab7::report::Verdict::Pass);
    })
}
