# lab7 — the two commands of the README, and the step both run first.
.PHONY: demo test env unit bench

CARGO ?= cargo

# Docker, arm64 emulation and the node images; idempotent, quick when all is there.
env:
	bash scripts/lab-env.sh

# The lab on the reference app: environment state, then the four facts with their evidence.
demo: env
	$(CARGO) build --release --quiet
	./target/release/lab7 doctor
	./target/release/lab7 check lab_examples/reference

# Every test: unit tests on fixtures, then the integration tests against real containers.
test: env
	$(CARGO) test --locked -- --test-threads=2 --show-output

# Only the tests that need no Docker: the Docker test targets are not built (docker-tests feature).
unit:
	$(CARGO) test --locked --no-default-features

bench: env
	$(CARGO) bench --locked
