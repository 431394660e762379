//! The compatibility matrix: registry {2.8, 3.x} × BuildKit {pinned, current} × client
//! {buildctl, buildx}, each on the reference app (a pass with the bonus) and a broken one (the
//! failure it deserves), and the two clients' reports agreeing check by check. The README's
//! table of what is supported is this test's output (`COMPAT_TABLE=1` prints it).

mod common;

use std::collections::BTreeMap;

use lab7::builds::buildx::Client;
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

async fn run(example: &str, images: &Images, client: Client) -> LabRun {
    let mut opts = LabOptions::new(common::example(example));
    opts.client = client;
    lab::run(&opts, images, &Silent)
        .await
        .unwrap_or_else(|e| panic!("{example} on {} + {} ({client:?}): {e}", images.registry, images.buildkit))
}

fn statuses(run: &LabRun) -> BTreeMap<CheckId, Status> {
    common::report_of(run).checks.iter().map(|c| (c.id, c.status)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_supported_combination_gives_the_right_verdicts() {
    common::require_docker("the compatibility matrix");
    let mut table = vec![
        "| registry | BuildKit | client | reference: pass + bonus | single-stage: fail (mode=max) |".to_string(),
        "|---|---|---|---|---|".into(),
    ];
    for images in combinations() {
        let mut by_client = Vec::new();
        for client in [Client::Buildctl, Client::Buildx] {
            let what = format!("{} + {} ({client:?})", images.registry, images.buildkit);
            let good = run("reference", &images, client).await;
            let report = common::report_of(&good);
            let failed: Vec<_> = report.checks.iter().filter(|c| c.status != Status::Pass).collect();
            assert!(failed.is_empty(), "{what}: {failed:#?}");
            let deletion = good.deletion.as_ref().expect("the bonus ran");
            let on_3 = deletion.registry.line == RegistryLine::Distribution3;
            assert_eq!(on_3, deletion.gc_command.contains("/etc/distribution/config.yml"), "{}", deletion.gc_command);

            let broken = run("single-stage", &images, client).await;
            let broken_statuses = statuses(&broken);
            assert_eq!(broken_statuses[&CheckId::CacheSeparateImageModeMax], Status::Fail, "{what}");
            let others_pass = broken_statuses
                .iter()
                .filter(|(id, _)| **id != CheckId::CacheSeparateImageModeMax)
                .all(|(_, s)| *s == Status::Pass);
            assert!(others_pass, "{what}: {broken_statuses:?}");
            table.push(format!(
                "| {} ({}) | {} ({}) | {} | pass, {} + bonus {} | fail: mode=max |",
                images.registry,
                deletion.registry.version,
                images.buildkit,
                good.node.buildkit_version,
                format!("{client:?}").to_lowercase(),
                report.score.points,
                report.score.bonus_points
            ));
            by_client.push((statuses(&good), broken_statuses));
        }
        // buildctl and buildx give the same verdict on every check of both submissions.
        assert_eq!(by_client[0], by_client[1], "{} + {}: the clients disagree", images.registry, images.buildkit);
    }
    if std::env::var_os("COMPAT_TABLE").is_some() {
        println!("{}", table.join("\n"));
    }
}
