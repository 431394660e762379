#!/usr/bin/env bash
# dist.sh — lab7's release archives for students, from a clean checkout on a Debian machine:
# static Linux x86_64 and aarch64 (musl; aarch64 linked by zig through cargo-zigbuild, both from
# PyPI), Windows x86_64 (mingw-w64) and macOS arm64 and x86_64 (zig, without Apple's SDK:
# scripts/macos.py says how), each an archive with its SHA-256 in SHA256SUMS, and
# manifest.json saying what was built with which versions. Installs what it needs (Debian's
# musl-tools and mingw-w64, rustup's std for each target, ziglang and cargo-zigbuild). Every Linux
# archive's binary is run on a fixture before it is packed (aarch64 under qemu-aarch64-static,
# which `make env` installs): its grade-logs JSON must equal the dev build's. A macOS binary,
# which cannot run here, must be a signed Mach-O for its CPU and macOS 11+ that loads only the
# system's libraries (scripts/macos.py check).
# Usage: bash scripts/dist.sh [OUT_DIR]   (default target/dist)
#        DIST_TARGETS="x86_64-unknown-linux-musl …" for some of the targets (make image: Linux's)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/dist}
say() { printf '\033[1mdist\033[0m %s\n' "$*"; }

need_debs=()
command -v musl-gcc >/dev/null || need_debs+=(musl-tools)
if [[ ${DIST_TARGETS:-windows} == *windows* ]]; then
  command -v x86_64-w64-mingw32-gcc >/dev/null || need_debs+=(mingw-w64)
fi
command -v xz >/dev/null || need_debs+=(xz-utils)
command -v zip >/dev/null || need_debs+=(zip)
command -v qemu-aarch64-static >/dev/null || need_debs+=(qemu-user-static)
if [ ${#need_debs[@]} -gt 0 ]; then
  say "installing ${need_debs[*]} (Debian)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_debs[@]}" >/dev/null
fi
command -v cargo-zigbuild >/dev/null || { say "installing ziglang and cargo-zigbuild (PyPI)"; pip install -q ziglang cargo-zigbuild; }

all_targets="x86_64-unknown-linux-musl aarch64-unknown-linux-musl x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-apple-darwin"
read -ra targets <<<"${DIST_TARGETS:-$all_targets}"
for t in "${targets[@]}"; do
  rustup target list --installed | grep -qx "$t" || { say "rustup target add $t"; rustup target add "$t"; }
done

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
rm -rf "$out" && mkdir -p "$out"
cargo build --locked --quiet   # the reference the archives' binaries are compared with

# The same grading on both builds: a fixture pair graded as JSON, byte for byte.
same_as_dev() {  # the command that runs the binary (a path, or qemu and a path)
  local logs=tests/fixtures/logs/buildx-0.29-plain
  diff <(./target/debug/lab7 grade-logs "$logs/build1.log" "$logs/build2.log" --format json | grep -v lab7_version) \
       <("$@" grade-logs "$logs/build1.log" "$logs/build2.log" --format json | grep -v lab7_version) >/dev/null
}

# macOS: zig links against text stubs of the two frameworks bollard's unused TLS references;
# a symbol the link newly asks for is added to the list from the linker's error, once.
macos_build() {  # target
  local stubs=$PWD/target/macos-stubs list=scripts/macos-frameworks.txt log
  log=$(mktemp)
  for attempt in 1 2; do
    python3 scripts/macos.py stubs "$list" "$stubs"
    MACOSX_DEPLOYMENT_TARGET=11.0 RUSTFLAGS="-C link-arg=-F$stubs" \
      cargo zigbuild --locked --quiet --release --target "$1" 2>"$log" && return 0
    [ "$attempt" = 1 ] && python3 scripts/macos.py add "$list" "$log" || break
  done
  cat "$log" >&2
  return 1
}

for t in "${targets[@]}"; do
  started=$SECONDS
  say "building $t"
  case $t in
    *-apple-darwin) macos_build "$t" ;;
    aarch64-*) cargo zigbuild --locked --quiet --release --target "$t" ;;
    *) cargo build --locked --quiet --release --target "$t" ;;
  esac
  name=lab7-$version-$t
  stage=$(mktemp -d)/$name
  mkdir -p "$stage"
  cp README.md rubric.toml rubric-report.toml "$stage/"
  case $t in
    *windows*)
      cp "target/$t/release/lab7.exe" "$stage/"
      (cd "$(dirname "$stage")" && zip -qr - "$name") >"$out/$name.zip" ;;
    *-apple-darwin)
      cp "target/$t/release/lab7" "$stage/"
      python3 scripts/macos.py check "$stage/lab7" "$(case $t in aarch64-*) echo arm64 ;; *) echo x86_64 ;; esac)"
      tar -C "$(dirname "$stage")" -cJf "$out/$name.tar.xz" "$name" ;;
    *)
      cp "target/$t/release/lab7" "$stage/"
      run=("$stage/lab7")
      [[ $t == aarch64-* ]] && run=(qemu-aarch64-static "$stage/lab7")
      same_as_dev "${run[@]}" || { echo "dist: $t's lab7 grades a fixture differently from the dev build" >&2; exit 1; }
      tar -C "$(dirname "$stage")" -cJf "$out/$name.tar.xz" "$name" ;;
  esac
  say "$t: $((SECONDS - started)) s"
done

(cd "$out" && sha256sum -- $(ls *.tar.xz *.zip 2>/dev/null) >SHA256SUMS)
cp scripts/install.sh scripts/install.ps1 "$out/"

# The one-line install as a student runs it, on this machine's own archive, over HTTP.
say "install.sh against $out served on 127.0.0.1"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$out" "$port" >/dev/null 2>&1 &
server=$!
home=$(mktemp -d)
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/SHA256SUMS" >/dev/null && break; sleep 0.1; done
HOME=$home sh "$out/install.sh" "http://127.0.0.1:$port" || { kill $server; exit 1; }
kill $server
"$home/.local/bin/lab7" --version | grep -qx "lab7 $version" || { echo "dist: the installed lab7 is not $version" >&2; exit 1; }
rm -rf "$home"
python3 - "$out" "$version" "${targets[@]}" <<'PY'
import json, pathlib, subprocess, sys
out, version, targets = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
sums = dict(reversed(l.split("  ", 1)) for l in (out / "SHA256SUMS").read_text().splitlines())
run = lambda *a: subprocess.run(a, capture_output=True, text=True).stdout.strip()
manifest = {
    "lab7": version,
    "commit": run("git", "rev-parse", "HEAD"),
    "rustc": run("rustc", "--version"),
    "cargo": run("cargo", "--version"),
    "archives": [{"target": t, "file": f, "sha256": sums[f]}
                 for t in targets for f in sums if f"-{t}." in f],
}
(out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
PY
say "wrote $(ls "$out" | tr '\n' ' ')into $out"
