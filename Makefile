# lab7 — the two commands of the README, and the steps they run first.
.PHONY: demo test env env-lab build unit bench soak dist image class

CARGO ?= cargo
# Tests of one binary at once. The Docker tests (tests/lab) mostly wait on containers, and
# on 2 cores 4 at a time keep both cores busy (README, Tests: the measured loop).
TEST_THREADS ?= 4
# Rounds of `make soak`.
N ?= 10

# Docker, arm64 emulation and every node image; idempotent, quick when all is there.
env:
	bash scripts/lab-env.sh

# Only what `lab7 check` runs on (the pinned registry and BuildKit): make demo's part.
env-lab:
	bash scripts/lab-env.sh --lab-only

# lab7 as the demo runs it: the dev profile (a cold build is half a release build's time,
# and a lab run spends its time in containers, not in lab7); make test reuses it.
build:
	$(CARGO) build --locked

# The lab on the reference app: environment state, then the four facts with their evidence.
# The environment and the build are made side by side (each waits on other things part of
# the time: downloads, Go's and Rust's linkers).
demo:
	@$(MAKE) --no-print-directory --output-sync=line -j2 env-lab build
	./target/debug/lab7 doctor
	./target/debug/lab7 check lab_examples/reference

# Every test: unit tests on fixtures, then the lab against real containers (tests/lab, one
# binary whose tests run $(TEST_THREADS) at a time), then the SIGKILL leftovers test alone.
test: env
	$(CARGO) test --locked -- --test-threads=$(TEST_THREADS) --show-output

# Only the tests that need no Docker: the Docker test targets are not built (docker-tests feature).
unit:
	$(CARGO) test --locked --no-default-features

# The Docker tests $(N) times over, each failure printed with its cause.
soak: env
	bash scripts/soak.sh $(N)

# Benchmarks (benches/), then the warm test loop: `make test`'s wall time beside its binaries'.
bench: env
	$(CARGO) bench --locked
	bash benches/test-loop.sh

# Release archives for students (static Linux x86_64 and aarch64, Windows x86_64) with SHA256SUMS and a
# manifest, in target/dist (scripts/dist.sh installs what it needs).
dist:
	bash scripts/dist.sh

# lab7's container image for linux/amd64 and linux/arm64 (docker buildx, FROM scratch with the
# static binaries), as an OCI archive in target/image and loaded as lab7:VERSION; then the
# image's own tests (tests/image.rs) run it as a student would (scripts/image.sh).
image: env
	bash scripts/image.sh

# A Moodle-shaped class of twelve students (scripts/moodle-class.py), graded end to end as an
# instructor would: the download zip and the grading worksheet in, one row per student, the
# filled worksheet and the feedback zip out (README: A class from Moodle).
class: env-lab build
	rm -rf target/moodle-class
	python3 scripts/moodle-class.py target/moodle-class
	./target/debug/lab7 batch target/moodle-class/PAwChO-lab7-4242.zip --out target/moodle-class/grades.csv \
		--moodle-worksheet target/moodle-class/worksheet.csv --moodle-full-marks 100 \
		--deadline "2026-12-07 23:59" --late-penalty 10; test $$? -le 1
