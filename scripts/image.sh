#!/usr/bin/env bash
# image.sh — lab7's container image for linux/amd64 and linux/arm64, built as the lab builds:
# `docker buildx build --platform linux/amd64,linux/arm64` on a docker-container builder (the
# pinned BuildKit image `make env` chose), FROM scratch with the static binaries of `make dist`
# (built and checked here for the two Linux targets). Writes the multi-platform image as an OCI
# archive (target/image/lab7-VERSION-image.oci.tar, with its SHA-256), loads this machine's
# platform as lab7:VERSION, then runs tests/image.rs against it: a whole `check` from inside the
# container, the host's addresses in the node's firewall, `docker stop` and `docker kill`
# cleaned up. IMAGE_PUSH=REF also pushes both platforms to REF (a registry you are logged in to).
# Usage: bash scripts/image.sh
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '\033[1mimage\033[0m %s\n' "$*"; }
started=$SECONDS
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out=target/image
set -a; . target/lab7/env; set +a

say "the static Linux binaries (scripts/dist.sh, checked against the dev build)"
DIST_TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl" bash scripts/dist.sh "$out/dist"
context=$out/context
rm -rf "$context" && mkdir -p "$context/tmp" "$context/amd64" "$context/arm64"
for pair in amd64:x86_64 arm64:aarch64; do
  arch=${pair%%:*} t=${pair##*:}-unknown-linux-musl
  tar -xJf "$out/dist/lab7-$version-$t.tar.xz" -C "$context/$arch" --strip-components=1 "lab7-$version-$t/lab7"
done

builder=lab7-image
trap 'docker buildx rm -f "$builder" >/dev/null 2>&1 || true' EXIT
docker buildx rm -f "$builder" >/dev/null 2>&1 || true
docker buildx create --name "$builder" --driver docker-container --driver-opt "image=$LAB7_BUILDKIT_IMAGE" \
  --bootstrap >/dev/null
build=(docker buildx build --builder "$builder" --file scripts/image/Dockerfile --build-arg "VERSION=$version"
  --tag "lab7:$version" "$context")
oci=$out/lab7-$version-image.oci.tar
say "docker buildx build --platform linux/amd64,linux/arm64 → $oci"
"${build[@]}" --platform linux/amd64,linux/arm64 --output "type=oci,dest=$oci" --quiet >/dev/null
(cd "$out" && sha256sum "$(basename "$oci")" >"$(basename "$oci").sha256")
native=linux/$(docker version --format '{{.Server.Arch}}')
say "loading $native as lab7:$version"
"${build[@]}" --platform "$native" --load --quiet >/dev/null
# The other platform's image, as a student on the other CPU pulls it: run here under QEMU, a
# whole check on the reference app (the node and registry stay native).
other=linux/$(case $native in */amd64) echo arm64 ;; *) echo amd64 ;; esac)
say "the $other image under emulation: lab7 check on the reference app"
docker buildx build --builder "$builder" --file scripts/image/Dockerfile --build-arg "VERSION=$version" \
  --tag "lab7:$version-${other#linux/}" --platform "$other" --load --quiet "$context" >/dev/null
docker run --rm --platform "$other" --env-file target/lab7/env -v /var/run/docker.sock:/var/run/docker.sock \
  -v "$PWD/lab_examples/reference:/work:ro" "lab7:$version-${other#linux/}" check /work >"$out/check-${other#linux/}.txt"
head -1 "$out/check-${other#linux/}.txt" | grep -q -- "— PASS" || { echo "image: the $other image did not pass:" >&2; cat "$out/check-${other#linux/}.txt" >&2; exit 1; }
docker image rm "lab7:$version-${other#linux/}" >/dev/null

if [ -n "${IMAGE_PUSH:-}" ]; then
  say "pushing both platforms to $IMAGE_PUSH"
  "${build[@]}" --platform linux/amd64,linux/arm64 --tag "$IMAGE_PUSH" --push
fi

say "tests/image.rs: lab7 in its container, end to end"
LAB7_IMAGE=lab7:$version cargo test --locked --features image-tests --test image -- --test-threads=1
say "done in $((SECONDS - started)) s: $oci ($(du -h "$oci" | cut -f1)), lab7:$version loaded"
