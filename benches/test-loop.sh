#!/usr/bin/env bash
# test-loop.sh — the warm test loop as a developer pays it: `make test` with everything built
# and the images present, its wall time beside the sum of its test binaries' own times (what
# running them one after another, each alone, would cost at least). `make bench` runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --locked --no-run --quiet 2>&1 | grep -v '^ *Executable' || true
bash scripts/lab-env.sh >/dev/null
out=$(mktemp)
started=$(date +%s.%N)
make --no-print-directory test >"$out" 2>&1 || { tail -40 "$out"; echo "make test failed" >&2; exit 1; }
ended=$(date +%s.%N)
python3 - "$out" "$started" "$ended" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
wall = float(sys.argv[3]) - float(sys.argv[2])
runs = re.findall(r"Running (\S+) .*?\n(?:.*\n)*?test result: \w+\. (\d+) passed.*finished in ([\d.]+)s", text)
print("warm `make test`, one binary at a time (its own time, tests passed):")
for name, passed, secs in runs:
    print(f"  {float(secs):7.2f} s  {passed:>3}  {name}")
total = sum(float(s) for _, _, s in runs)
print(f"binaries' own times, summed: {total:.1f} s")
print(f"make test wall time:         {wall:.1f} s (target: 60 s or less)")
print(f"wall / binaries' sum = {wall / total:.2f} (what cargo, linking checks and make env add)")
PY
rm -f "$out"
