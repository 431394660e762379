//! The compatibility matrix: registry {2.8, 3.x} × BuildKit {pinned, current}, each on the
//! reference app (a pass with the bonus) and a broken one (the failure it deserves). The
//! README's table of what is supported is this test's output (`COMPAT_TABLE=1` prints it).

mod common;

use lab7::checks::{CheckId, Status};
use lab7::environment::Images;
use lab7::lab::{self, LabOptions, LabRun, Silent};
use lab7::registry::version::RegistryLine;

/// Every combination `make env` set up: the pinned images and today's stack.
fn combinations() -> Vec<Images> {
    let pinned = Images::load();
    let (registry3, buildkit_current) = Images::current_stack();
    let registry3 = registry3.expect("LAB7_REGISTRY3_IMAGE: run `make env`, which sets up registry 3");
    let buildkit_current = buildkit_current.expect("LAB7_BUILDKIT_CURRENT_IMAGE: run `make env`");
    let mut out = Vec::new();
    for registry in [pinned.registry.clone(), registry3] {
        for buildkit in [pinned.buildkit.clone(), buildkit_current.clone()] {
            out.push(Images { registry: registry.clone(), buildkit, ..pinned.clone() });
        }
    }
    out
}

async fn run(example: &str, images: &Images) -> LabRun {
    lab::run(&LabOptions::new(common::example(example)), images, &Silent)
        .await
        .unwrap_or_else(|e| panic!("{} on {} + {}: {e}", example, images.registry, images.buildkit))
}

#[tokio::test(flavor = "multi_thread")]
async fn every_supported_combination_gives_the_right_verdicts() {
    common::require_docker("the compatibility matrix");
    let mut table =
        vec!["| registry | BuildKit | reference (pass + bonus) | single-stage (fail: mode=max) |".to_string()];
    table.push("|---|---|---|---|".into());
    for images in combinations() {
        let good = run("reference", &images).await;
        let report = common::report_of(&good);
        let failed: Vec<_> = report.checks.iter().filter(|c| c.status != Status::Pass).collect();
        assert!(failed.is_empty(), "{} + {}: {failed:#?}", images.registry, images.buildkit);
        let deletion = good.deletion.as_ref().expect("the bonus ran");
        let on_3 = deletion.registry.line == RegistryLine::Distribution3;
        assert_eq!(on_3, deletion.gc_command.contains("/etc/distribution/config.yml"), "{}", deletion.gc_command);

        let broken = run("single-stage", &images).await;
        let report_broken = common::report_of(&broken);
        let mode_max = report_broken.check(CheckId::CacheSeparateImageModeMax);
        assert_eq!(mode_max.status, Status::Fail, "{} + {}: {}", images.registry, images.buildkit, mode_max.seen);
        assert!(report_broken
            .checks
            .iter()
            .filter(|c| c.id != CheckId::CacheSeparateImageModeMax && !c.bonus)
            .all(|c| c.status == Status::Pass));
        table.push(format!(
            "| {} ({}) | {} ({}) | pass, {} + bonus {} | fail: mode=max |",
            images.registry,
            deletion.registry.version,
            images.buildkit,
            good.node.buildkit_version,
            report.score.points,
            report.score.bonus_points
        ));
    }
    if std::env::var_os("COMPAT_TABLE").is_some() {
        println!("{}", table.join("\n"));
    }
}
