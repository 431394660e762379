//! The compatibility matrix: registry {2.8, 3.x} × BuildKit {pinned, current} × client
//! {buildctl, buildx}, each on the reference app (a pass with the bonus) and a broken one (the
//! failure it deserves), and the two clients' reports agreeing check by check. The README's
//! table of what is supported is these tests' output (`COMPAT_TABLE=1` prints its rows; the
//! header is `| registry | BuildKit | client | reference: pass + bonus | single-stage: fail (mode=max) |`).

use crate::common;

use std::collections::BTreeMap;

use lab7::builds::buildx::Client;
use lab7::checks::{CheckId, Status};
use lab7::environment::Images;
use lab7::lab::LabRun;
use lab7::registry::version::RegistryLine;

/// One combination `make env` set up: the pinned images, or today's registry 3 and BuildKit.
fn images(registry3: bool, current_buildkit: bool) -> Images {
    let pinned = Images::load();
    let (registry3_image, buildkit_current) = Images::current_stack();
    let registry = match registry3 {
        true => registry3_image.expect("LAB7_REGISTRY3_IMAGE: run `make env`, which sets up registry 3"),
        false => pinned.registry.clone(),
    };
    let buildkit = match current_buildkit {
        true => buildkit_current.expect("LAB7_BUILDKIT_CURRENT_IMAGE: run `make env`"),
        false => pinned.buildkit.clone(),
    };
    Images { registry, buildkit, ..pinned }
}

fn statuses(run: &LabRun) -> BTreeMap<CheckId, Status> {
    common::report_of(run).checks.iter().map(|c| (c.id, c.status)).collect()
}

/// One client on one combination: the reference passes with the bonus, single-stage fails
/// mode=max and nothing else. Returns both runs' verdicts and the README's table row.
async fn verdicts(images: &Images, client: Client) -> ((BTreeMap<CheckId, Status>, BTreeMap<CheckId, Status>), String) {
    let what = format!("{} + {} ({client:?})", images.registry, images.buildkit);
    let good = common::shared_run("reference", images, client).await;
    let report = common::report_of(&good);
    let failed: Vec<_> = report.checks.iter().filter(|c| c.status != Status::Pass).collect();
    assert!(failed.is_empty(), "{what}: {failed:#?}");
    let deletion = good.deletion.as_ref().expect("the bonus ran");
    let on_3 = deletion.registry.line == RegistryLine::Distribution3;
    assert_eq!(on_3, deletion.gc_command.contains("/etc/distribution/config.yml"), "{}", deletion.gc_command);

    let broken = common::shared_run("single-stage", images, client).await;
    let broken_statuses = statuses(&broken);
    assert_eq!(broken_statuses[&CheckId::CacheSeparateImageModeMax], Status::Fail, "{what}");
    let others_pass = broken_statuses
        .iter()
        .filter(|(id, _)| **id != CheckId::CacheSeparateImageModeMax)
        .all(|(_, s)| *s == Status::Pass);
    assert!(others_pass, "{what}: {broken_statuses:?}");
    let row = format!(
        "| {} ({}) | {} ({}) | {} | pass, {} + bonus {} | fail: mode=max |",
        images.registry,
        deletion.registry.version,
        images.buildkit,
        good.node.buildkit_version,
        format!("{client:?}").to_lowercase(),
        report.score.points,
        report.score.bonus_points
    );
    ((statuses(&good), broken_statuses), row)
}

/// Each combination is a test of its own (they run side by side), its two clients at once.
#[rstest::rstest]
#[case::registry_2_8_buildkit_pinned(false, false)]
#[case::registry_2_8_buildkit_current(false, true)]
#[case::registry_3_buildkit_pinned(true, false)]
#[case::registry_3_buildkit_current(true, true)]
fn every_supported_combination_gives_the_right_verdicts(#[case] registry3: bool, #[case] current_buildkit: bool) {
    common::block_on(async move {
        common::require_docker("the compatibility matrix");
        let images = images(registry3, current_buildkit);
        let ((buildctl, buildctl_row), (buildx, buildx_row)) =
            tokio::join!(verdicts(&images, Client::Buildctl), verdicts(&images, Client::Buildx));
        // buildctl and buildx give the same verdict on every check of both submissions.
        assert_eq!(buildctl, buildx, "{} + {}: the clients disagree", images.registry, images.buildkit);
        if std::env::var_os("COMPAT_TABLE").is_some() {
            println!("{buildctl_row}\n{buildx_row}");
        }
    })
}
