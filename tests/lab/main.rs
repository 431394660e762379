//! The lab against real containers: every test that needs Docker, a registry and BuildKit,
//! in one test binary. One binary, so that its tests run side by side (`make test` sets
//! `--test-threads`: each test mostly waits on containers) and so that the tests that only
//! read a finished lab run share it (`common::shared_run`) instead of each running their own.
//! `tests/leftovers.rs` stays a binary of its own: no other run may sweep what it left.

#[path = "../common/mod.rs"]
mod common;

mod broken_variants;
mod class;
mod cli_lab;
mod compatibility;
mod environment_smoke;
mod interruptions;
mod lab_end_to_end;
mod remote_nodes;
mod untrusted_submissions;
mod valid_variants;
