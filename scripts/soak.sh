#!/usr/bin/env bash
# soak.sh [N] — the Docker tests (tests/lab, then tests/leftovers alone) N times over (default
# 10), as `make test` runs them. Each failed test is printed with its cause (its panic and what
# it printed); every round's full output stays in target/lab7/soak/. Exit 1 if any round failed.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-10}
threads=${TEST_THREADS:-4}
logs=target/lab7/soak
mkdir -p "$logs"
rm -f "$logs"/*.log

say() { printf '\033[1msoak\033[0m %s\n' "$*"; }
say "building the tests"
# Built once; each round runs the same binaries (a change to the sources meanwhile does not
# rebuild them half-way through the soak).
binaries=$(cargo test --locked --no-run --message-format=json 2>/dev/null | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] in ("lab", "leftovers"):
        print(m["target"]["name"], m["executable"])')
[ "$(wc -l <<<"$binaries")" = 2 ] || { echo "soak: the lab and leftovers test binaries did not build" >&2; exit 2; }

failed=0
for round in $(seq "$rounds"); do
  started=$SECONDS
  verdict=ok
  while read -r target binary; do
    log=$logs/round-$round-$target.log
    if ! "$binary" --test-threads="$threads" >"$log" 2>&1; then
      verdict=FAILED
      failed=$((failed + 1))
      say "round $round: $target failed — each failure with its cause ($log):"
      # libtest's own account: each failed test's output, its panic included.
      sed -n '/^failures:$/,/^test result:/p' "$log" | sed '/^test result:/d' | sed 's/^/    /'
      grep -q '^failures:$' "$log" || tail -20 "$log" | sed 's/^/    /'
    fi
  done <<<"$binaries"
  say "round $round/$rounds: $verdict ($((SECONDS - started)) s)"
done
if [ "$failed" -gt 0 ]; then
  say "$failed failed test run(s) in $rounds rounds"
  exit 1
fi
say "$rounds of $rounds rounds passed"
