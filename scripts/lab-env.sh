#!/usr/bin/env bash
# lab-env.sh — brings up everything lab7 needs, and says what it reused.
#
#   1. a Docker daemon (reuses a reachable one; on Debian as root, installs and starts one)
#   2. linux/arm64 emulation (binfmt_misc + qemu-aarch64 with the F flag)
#   3. the node images: official registry and moby/buildkit, or offline stand-ins built once;
#      the same for today's stack (registry 3, current BuildKit) that the compatibility matrix runs
#
# Idempotent: a second run changes nothing and is quick. It never restarts or
# reconfigures a Docker daemon it did not start. Its result is written to
# target/lab7/env (KEY=VALUE), which lab7 and the tests read.
#
# --lab-only (make demo): only what `lab7 check` runs on — the pinned registry and BuildKit,
# and offline the docker.io mirror. Today's stack (the compatibility matrix's) and buildx
# (the tests' --client buildx) are recorded when present but neither built nor installed:
# that halves a bare machine's first `make demo`. `make test` runs the whole script.
set -euo pipefail

LAB_ONLY=
case "${1:-}" in
  --lab-only) LAB_ONLY=1 ;;
  "") ;;
  *) printf 'usage: %s [--lab-only]\n' "$0" >&2; exit 2 ;;
esac

ROOT=$(cd "$(dirname "$0")/.." && pwd)
STATE_DIR=${LAB7_STATE_DIR:-$ROOT/target/lab7}
WORK=$STATE_DIR/standins
ENV_FILE=$STATE_DIR/env
mkdir -p "$STATE_DIR"

# Pinned versions, shared with the Rust code. Changing one rebuilds the matching stand-in.
# shellcheck source=scripts/pins.env
. "$ROOT/scripts/pins.env"
RECIPE=4                      # bump when a stand-in's layout changes
BUILDKIT_RECIPE=6             # r5: CNI plugins, iptables and busybox; r6: git and CA certificates, like the official image
STANDIN_REGISTRY=lab7/registry:2.8-debian-r$RECIPE
STANDIN_BUILDKIT=lab7/buildkit:$BUILDKIT_VERSION-standin-r$BUILDKIT_RECIPE
STANDIN_MIRROR=lab7/hub-mirror:busybox-$BUSYBOX_TAG-r$RECIPE
STANDIN_REGISTRY3=lab7/registry:${REGISTRY3_VERSION#v}-standin-r$RECIPE
STANDIN_BUILDKIT_CURRENT=lab7/buildkit:$BUILDKIT_CURRENT_VERSION-standin-r$BUILDKIT_RECIPE
LABEL=org.lab7.standin

say()  { printf '\033[1mlab-env\033[0m %s\n' "$*"; }
die()  { printf '\033[1;31mlab-env: error:\033[0m %s\n' "$*" >&2; exit 2; }
is_root_debian() { [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] && command -v apt-get >/dev/null; }

apt_updated=
apt_install() {
  is_root_debian || die "need to install $*, but this is not Debian as root. Install them and run again."
  if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---------------------------------------------------------------- 1. Docker
docker_api() { docker version --format '{{.Server.APIVersion}}' 2>/dev/null; }

# MIN_API (pins.env): the oldest Docker API lab7 accepts (Docker Engine 27.0).
api_ok() { printf '%s\n%s\n' "$MIN_API" "$1" | sort -V -C; }

# Debian 12's docker.io is 20.10 (API 1.41) and trixie's 26.1 (API 1.45): too old
# for testcontainers. sid's docker.io 28.5 (API 1.51) installs on bookworm's libc.
# A low pin keeps every other package on bookworm.
add_sid_source() {
  [ -f /etc/apt/preferences.d/lab7-sid ] && return 0
  cat > /etc/apt/sources.list.d/lab7-sid.sources <<'EOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  printf 'Package: *\nPin: release n=sid\nPin-Priority: 100\n' > /etc/apt/preferences.d/lab7-sid
  apt_updated=
}

install_docker_engine() {
  say "no Docker daemon answers; installing Docker Engine from Debian (sid, pinned low)"
  add_sid_source
  local pkgs=(docker.io/sid containerd/sid iptables)
  command -v docker >/dev/null || pkgs+=(docker-cli/sid)
  apt_install "${pkgs[@]}"
}

start_dockerd() {
  say "starting dockerd in the background (log: /var/log/lab7-dockerd.log)"
  setsid nohup dockerd >/var/log/lab7-dockerd.log 2>&1 < /dev/null &
  echo $! > /run/lab7-dockerd.pid
  for _ in $(seq 60); do
    docker_api >/dev/null && return 0
    sleep 1
  done
  tail -20 /var/log/lab7-dockerd.log >&2
  die "dockerd did not answer within 60 s (log above: /var/log/lab7-dockerd.log)"
}

ensure_docker() {
  local api
  if api=$(docker_api); then
    say "reusing the Docker daemon at ${DOCKER_HOST:-unix:///var/run/docker.sock} (API $api)"
  elif [ -z "${DOCKER_HOST:-}" ] && is_root_debian && ! pgrep -x dockerd >/dev/null; then
    command -v dockerd >/dev/null && command -v docker >/dev/null || install_docker_engine
    start_dockerd
    api=$(docker_api)
  else
    die "no Docker daemon answers at ${DOCKER_HOST:-unix:///var/run/docker.sock}.
  Start Docker: Docker Desktop → open the app and wait for 'Engine running';
  Linux → 'sudo systemctl start docker' (or set DOCKER_HOST to a running engine)."
  fi
  api_ok "$api" || die "the Docker daemon speaks API $api; lab7 needs $MIN_API or newer (Docker Engine 27.0+). Upgrade Docker."
}

# ---------------------------------------------------------------- 2. arm64 emulation
BINFMT=/proc/sys/fs/binfmt_misc
ensure_emulation() {
  if [ -e $BINFMT/qemu-aarch64 ] && grep -q '^flags:.*F' $BINFMT/qemu-aarch64; then
    say "reusing linux/arm64 emulation (qemu-aarch64 registered with the F flag)"
    return
  fi
  if [ "$(id -u)" != 0 ]; then
    # The official moby/buildkit image brings its own QEMU; only the stand-in relies on the host.
    say "warning: qemu-aarch64 is not registered on this host. The official BuildKit image emulates"
    say "  arm64 by itself; if 'lab7 doctor' lists no linux/arm64, run as root: make env, or"
    say "  docker run --privileged --rm tonistiigi/binfmt --install arm64"
    return
  fi
  [ -e $BINFMT/register ] || mount -t binfmt_misc binfmt_misc $BINFMT
  [ -f /usr/lib/binfmt.d/qemu-aarch64.conf ] || apt_install qemu-user-static
  # Debian's package registers itself only under systemd; the file's flags (OPF) include F,
  # which BuildKit requires before it counts a host emulator.
  [ -e $BINFMT/qemu-aarch64 ] && echo -1 > $BINFMT/qemu-aarch64
  cat /usr/lib/binfmt.d/qemu-aarch64.conf > $BINFMT/register
  say "registered linux/arm64 emulation (qemu-user-static, flags: $(sed -n 's/^flags: //p' $BINFMT/qemu-aarch64))"
}

# ---------------------------------------------------------------- 3. images
have_image() { docker image inspect "$1" >/dev/null 2>&1; }
standin_ok() {
  [ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$1" 2>/dev/null)" = "$1" ]
}
try_pull() { timeout 120 docker pull -q "$1" >/dev/null 2>&1; }

# Copies a dynamically linked binary and the libraries it loads into a rootfs.
copy_with_libs() {
  local bin=$1 root=$2 dest=$3 lib
  install -D -m 0755 "$bin" "$root$dest"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# `docker import` needs no builder (the daemon may lack buildx): the rootfs is
# assembled here and imported with its entrypoint and label.
import_rootfs() {
  local root=$1 tag=$2; shift 2
  tar --sort=name --owner=0 --group=0 --numeric-owner -C "$root" -cf - . \
    | docker import --change "LABEL $LABEL=$tag" "$@" - "$tag" >/dev/null
}

# Debian's busybox-static for one architecture, unpacked once under $WORK.
busybox_root() {  # arch → prints the rootfs dir holding bin/busybox
  local arch=$1; local dir=$WORK/busybox-$arch
  if [ ! -x "$dir/root/bin/busybox" ]; then
    local lists=$WORK/apt-$arch deb
    mkdir -p "$lists/lists/partial" "$lists/cache" "$dir"
    local opts=(-o "APT::Architecture=$arch" -o "APT::Architectures=$arch" -o "Dir::State::Lists=$lists/lists"
                -o "Dir::Cache=$lists/cache" -o "Dir::State::status=/dev/null" -o APT::Sandbox::User=root)
    apt-get "${opts[@]}" update -qq >&2
    (cd "$dir" && apt-get "${opts[@]}" download -qq "busybox-static:$arch" >&2)
    deb=$(ls "$dir"/busybox-static_*_"$arch".deb)
    rm -rf "$dir/root" && mkdir -p "$dir/root/bin"
    dpkg-deb --fsys-tarfile "$deb" | tar -xO ./bin/busybox > "$dir/root/bin/busybox"
    chmod 0755 "$dir/root/bin/busybox"
  fi
  echo "$dir/root"
}

# Links every applet of the amd64 build (the one this host can run) into a rootfs.
link_applets() {  # target-root
  local applet
  for applet in $("$(busybox_root amd64)/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$1/bin/$applet"
  done
}

# The official registry image is Alpine-based, so it has a shell, find and
# stat; lab7 measures storage with them. The stand-in carries busybox for that.
registry_rootfs() {
  local root=$1
  command -v docker-registry >/dev/null || apt_install docker-registry
  rm -rf "$root" && mkdir -p "$root"/{bin,tmp,var/lib/registry,etc/docker/registry}
  copy_with_libs /usr/bin/docker-registry "$root" /bin/registry
  install -m 0755 "$(busybox_root amd64)/bin/busybox" "$root/bin/busybox"
  link_applets "$root"
  registry_config > "$root/etc/docker/registry/config.yml"
}

# The official images' config (2.8 and 3.x alike): filesystem storage, port 5000.
registry_config() {
  cat <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
EOF
}

# Registry 3 (distribution v3), built from its Go module (tools/registry3) into a rootfs laid
# out as the official registry:3 image: the binary at /bin/registry, the config at
# /etc/distribution/config.yml (where 3.x reads it; 2.x reads /etc/docker/registry/config.yml).
build_registry3_standin() {
  say "building stand-in $STANDIN_REGISTRY3 from github.com/distribution/distribution/v3 $REGISTRY3_VERSION with Go"
  command -v go >/dev/null || die "building the registry 3 stand-in needs Go (apt-get install golang-go, or go.dev/dl)"
  local root=$WORK/registry3
  rm -rf "$root" && mkdir -p "$root"/{bin,tmp,var/lib/registry,etc/distribution}
  (cd "$ROOT/tools/registry3" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
     -o "$root/bin/registry" github.com/distribution/distribution/v3/cmd/registry)
  install -m 0755 "$(busybox_root amd64)/bin/busybox" "$root/bin/busybox"
  link_applets "$root"
  registry_config > "$root/etc/distribution/config.yml"
  import_rootfs "$root" "$STANDIN_REGISTRY3" \
    --change 'ENTRYPOINT ["/bin/registry","serve","/etc/distribution/config.yml"]' \
    --change 'EXPOSE 5000'
}

build_registry_standin() {
  say "building stand-in $STANDIN_REGISTRY from Debian's docker-registry (distribution 2.8)"
  registry_rootfs "$WORK/registry"
  import_rootfs "$WORK/registry" "$STANDIN_REGISTRY" \
    --change 'ENTRYPOINT ["/bin/registry","serve","/etc/docker/registry/config.yml"]' \
    --change 'EXPOSE 5000'
}

# The official image (Alpine) has a shell, iptables and BuildKit's CNI plugins (buildkit-cni-*):
# lab7 runs each RUN step in BuildKit's bridge network mode behind the node's firewall, and
# reads the node's cgroup with sh. The stand-in carries the same: the plugins built from
# their Go module, Debian's iptables (nft) with its libraries and extensions, busybox.
build_buildkit_standin() { build_buildkit_from buildkit "$BUILDKIT_VERSION" "$STANDIN_BUILDKIT"; }
build_buildkit_current_standin() {
  build_buildkit_from buildkit-current "$BUILDKIT_CURRENT_VERSION" "$STANDIN_BUILDKIT_CURRENT"
}

# tools/MODULE pins a BuildKit version; its buildkitd and buildctl become the image TAG.
build_buildkit_from() {  # module version tag
  local module=$1 version=$2 tag=$3
  say "building stand-in $tag: buildkitd and buildctl $version with Go (about 2 min)"
  command -v go >/dev/null || die "building the BuildKit stand-in needs Go 1.24.3+ (apt-get install golang-go, or go.dev/dl)"
  [ -x /usr/sbin/runc ] || apt_install runc
  [ -x /usr/sbin/xtables-nft-multi ] || apt_install iptables
  local root=$WORK/$module cni=$WORK/cni-$module plugin n
  rm -rf "$root" "$cni" && mkdir -p "$root"/{tmp,run,var/lib/buildkit,etc/buildkit,usr/bin,usr/sbin,bin} "$cni"
  (cd "$ROOT/tools/$module" && CGO_ENABLED=0 go build -trimpath \
     -tags 'osusergo netgo static_build' \
     -ldflags "-s -w -X github.com/moby/buildkit/version.Version=$version -X github.com/moby/buildkit/version.Package=github.com/moby/buildkit" \
     -o "$root/usr/bin/" github.com/moby/buildkit/cmd/buildkitd github.com/moby/buildkit/cmd/buildctl)
  (cd "$ROOT/tools/$module" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cni/" \
     github.com/containernetworking/plugins/plugins/main/bridge \
     github.com/containernetworking/plugins/plugins/main/loopback \
     github.com/containernetworking/plugins/plugins/ipam/host-local \
     github.com/containernetworking/plugins/plugins/meta/firewall)
  for plugin in bridge loopback host-local firewall; do
    install -m 0755 "$cni/$plugin" "$root/usr/bin/buildkit-cni-$plugin"
  done
  copy_with_libs /usr/sbin/runc "$root" /usr/bin/buildkit-runc
  copy_with_libs /usr/sbin/xtables-nft-multi "$root" /usr/sbin/xtables-nft-multi
  mkdir -p "$root/usr/lib/x86_64-linux-gnu" && cp -a /usr/lib/x86_64-linux-gnu/xtables "$root/usr/lib/x86_64-linux-gnu/"
  for n in iptables iptables-save iptables-restore ip6tables ip6tables-save ip6tables-restore; do
    ln -sf xtables-nft-multi "$root/usr/sbin/$n"
  done
  # git (and its HTTP helper) and CA certificates, as the official image has them: BuildKit
  # registers its git source (ADD <git url>) only where git is on the PATH.
  command -v git >/dev/null || apt_install git
  [ -f /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates
  copy_with_libs /usr/bin/git "$root" /usr/bin/git
  copy_with_libs /usr/lib/git-core/git-remote-http "$root" /usr/lib/git-core/git-remote-http
  ln -sf git-remote-http "$root/usr/lib/git-core/git-remote-https"
  install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  install -m 0755 "$(busybox_root amd64)/bin/busybox" "$root/bin/busybox"
  link_applets "$root"
  : > "$root/etc/buildkit/buildkitd.toml"
  import_rootfs "$root" "$tag" --change 'ENTRYPOINT ["buildkitd"]' \
    --change 'VOLUME /var/lib/buildkit' \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
}

# One OCI image per architecture from Debian's busybox-static, pushed as a
# multi-arch index to a throwaway registry on loopback, whose storage then
# becomes the mirror image's /var/lib/registry.
busybox_layer() {  # arch out-dir
  local arch=$1 out=$2 root
  root=$out/root && rm -rf "$root" && mkdir -p "$root"/{bin,tmp,etc}
  install -m 0755 "$(busybox_root "$arch")/bin/busybox" "$root/bin/busybox"
  link_applets "$root"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$root/etc/passwd"
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$root" -cf "$out/layer.tar" .
  gzip -n -f -k "$out/layer.tar"
}

sha() { sha256sum "$1" | cut -d' ' -f1; }
push_blob() {   # repo file → digest
  local repo=$1 file=$2 digest loc
  digest=sha256:$(sha "$file")
  loc=$(curl -fsS -X POST -D - -o /dev/null "$MIRROR_URL/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
  case $loc in http*) ;; *) loc=$MIRROR_URL$loc;; esac
  curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$file" \
    "$loc$(case $loc in *\?*) echo '&';; *) echo '?';; esac)digest=$digest" >/dev/null
  echo "$digest"
}
put_manifest() {  # repo ref mediatype file
  curl -fsS -X PUT -H "Content-Type: $3" --data-binary "@$4" "$MIRROR_URL/v2/$1/manifests/$2" >/dev/null
}

build_mirror_standin() {
  say "building stand-in $STANDIN_MIRROR: a docker.io mirror holding busybox:$BUSYBOX_TAG for amd64 and arm64"
  command -v docker-registry >/dev/null || apt_install docker-registry
  command -v curl >/dev/null || apt_install curl
  local root=$WORK/mirror data port pid entries="" arch variant
  registry_rootfs "$root"
  data=$root/var/lib/registry
  port=$(( 20000 + RANDOM % 20000 ))
  MIRROR_URL=http://127.0.0.1:$port
  REGISTRY_HTTP_ADDR=127.0.0.1:$port REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY=$data \
    docker-registry serve "$root/etc/docker/registry/config.yml" >"$WORK/mirror-registry.log" 2>&1 &
  pid=$!
  trap "kill $pid 2>/dev/null || true" EXIT
  for _ in $(seq 50); do curl -fsS "$MIRROR_URL/v2/" >/dev/null 2>&1 && break; sleep 0.2; done
  for arch in amd64 arm64; do
    local dir=$WORK/image-$arch layer diff cfg man
    busybox_layer "$arch" "$dir"
    diff=sha256:$(sha "$dir/layer.tar")
    layer=$(push_blob library/busybox "$dir/layer.tar.gz")
    variant=$([ "$arch" = arm64 ] && echo ',"variant":"v8"' || true)
    printf '{"architecture":"%s"%s,"os":"linux","config":{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["%s"]}}' \
      "$arch" "$variant" "$diff" > "$dir/config.json"
    cfg=$(push_blob library/busybox "$dir/config.json")
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%d}]}' \
      "$cfg" "$(stat -c %s "$dir/config.json")" "$layer" "$(stat -c %s "$dir/layer.tar.gz")" > "$dir/manifest.json"
    man=sha256:$(sha "$dir/manifest.json")
    put_manifest library/busybox "$man" application/vnd.oci.image.manifest.v1+json "$dir/manifest.json"
    entries+="${entries:+,}{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"$man\",\"size\":$(stat -c %s "$dir/manifest.json"),\"platform\":{\"architecture\":\"$arch\",\"os\":\"linux\"${variant}}}"
  done
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$entries" > "$WORK/index.json"
  put_manifest library/busybox "$BUSYBOX_TAG" application/vnd.oci.image.index.v1+json "$WORK/index.json"
  kill $pid; wait $pid 2>/dev/null || true
  trap - EXIT
  import_rootfs "$root" "$STANDIN_MIRROR" \
    --change 'ENTRYPOINT ["/bin/registry","serve","/etc/docker/registry/config.yml"]' \
    --change 'EXPOSE 5000'
}

# Picks one node image: an explicit override, the official one (present or
# pulled), or a stand-in (reused when its label matches, else built).
choose_image() {  # var override official standin builder
  local var=$1 override=$2 official=$3 standin=$4 builder=$5
  if [ -n "$override" ]; then
    have_image "$override" || try_pull "$override" || die "$var=$override: image not found locally and could not be pulled"
    say "using $override ($var)"; printf -v "$var" %s "$override"; return
  fi
  if have_image "$official" || { [ -z "$OFFLINE" ] && try_pull "$official"; }; then
    say "using official image $official"; printf -v "$var" %s "$official"; return
  fi
  if standin_ok "$standin"; then
    say "reusing stand-in $standin (built earlier on this machine)"
  else
    is_root_debian || die "$official can't be pulled and stand-ins are built only on Debian as root. Check your network, or set $var."
    "$builder"
  fi
  printf -v "$var" %s "$standin"
  STANDINS=1
}

# --lab-only: the matrix's image when it is already here, else nothing (make test builds it).
record_if_present() {  # var override official standin
  local var=$1 override=$2 official=$3 standin=$4 found=
  if [ -n "$override" ]; then found=$override
  elif have_image "$official"; then found=$official
  elif standin_ok "$standin"; then found=$standin
  fi
  printf -v "$var" %s "$found"
  [ -n "$found" ] || say "skipping $official (only the compatibility matrix of make test runs it)"
}

ensure_images() {
  # Docker Hub reachable? Offline, the node also needs a docker.io mirror for FROM busybox.
  OFFLINE=${LAB7_OFFLINE:-}
  if [ -z "$OFFLINE" ] && ! have_image "busybox:$BUSYBOX_TAG" && ! try_pull "busybox:$BUSYBOX_TAG"; then
    OFFLINE=1
    say "Docker Hub is not reachable: using offline stand-ins where the official images are missing"
  fi
  STANDINS=0
  mkdir -p "$WORK"
  choose_image LAB7_REGISTRY_IMAGE "${LAB7_REGISTRY_IMAGE:-}" "$OFFICIAL_REGISTRY" "$STANDIN_REGISTRY" build_registry_standin
  choose_image LAB7_BUILDKIT_IMAGE "${LAB7_BUILDKIT_IMAGE:-}" "$OFFICIAL_BUILDKIT" "$STANDIN_BUILDKIT" build_buildkit_standin
  # Today's stack, for the compatibility matrix (tests/lab/compatibility.rs).
  if [ -n "$LAB_ONLY" ]; then
    record_if_present LAB7_REGISTRY3_IMAGE "${LAB7_REGISTRY3_IMAGE:-}" "$OFFICIAL_REGISTRY3" "$STANDIN_REGISTRY3"
    record_if_present LAB7_BUILDKIT_CURRENT_IMAGE "${LAB7_BUILDKIT_CURRENT_IMAGE:-}" "$OFFICIAL_BUILDKIT_CURRENT" "$STANDIN_BUILDKIT_CURRENT"
  else
    choose_image LAB7_REGISTRY3_IMAGE "${LAB7_REGISTRY3_IMAGE:-}" "$OFFICIAL_REGISTRY3" "$STANDIN_REGISTRY3" build_registry3_standin
    choose_image LAB7_BUILDKIT_CURRENT_IMAGE "${LAB7_BUILDKIT_CURRENT_IMAGE:-}" "$OFFICIAL_BUILDKIT_CURRENT" "$STANDIN_BUILDKIT_CURRENT" build_buildkit_current_standin
  fi
  LAB7_MIRROR_IMAGE=
  if [ -n "$OFFLINE" ]; then
    if standin_ok "$STANDIN_MIRROR"; then say "reusing stand-in $STANDIN_MIRROR"; else build_mirror_standin; fi
    LAB7_MIRROR_IMAGE=$STANDIN_MIRROR
  fi
}

write_env() {
  cat > "$ENV_FILE" <<EOF
# written by scripts/lab-env.sh; environment variables of the same name override these
LAB7_REGISTRY_IMAGE=$LAB7_REGISTRY_IMAGE
LAB7_BUILDKIT_IMAGE=$LAB7_BUILDKIT_IMAGE
LAB7_MIRROR_IMAGE=$LAB7_MIRROR_IMAGE
LAB7_REGISTRY3_IMAGE=$LAB7_REGISTRY3_IMAGE
LAB7_BUILDKIT_CURRENT_IMAGE=$LAB7_BUILDKIT_CURRENT_IMAGE
LAB7_STANDINS=$STANDINS
EOF
  say "environment ready in $SECONDS s → $ENV_FILE"
}

# buildx, the client students run: the buildx logs among the test fixtures were captured
# with it (tests/fixtures/logs/capture-buildx.sh). lab7 itself drives BuildKit directly.
ensure_buildx() {
  if docker buildx version >/dev/null 2>&1; then
    say "reusing $(docker buildx version | cut -d' ' -f1-2)"
    return 0
  fi
  is_root_debian || { say "docker buildx is missing (only needed to capture new log fixtures)"; return 0; }
  say "installing docker-buildx from Debian (sid, pinned low)"
  add_sid_source
  apt_install docker-buildx/sid
}

# Headless Chromium, which the HTML reports' tests open each page in (tests/html.rs).
ensure_browser() {
  if command -v chromium >/dev/null 2>&1; then
    say "reusing $(chromium --version 2>/dev/null | head -1)"
    return 0
  fi
  is_root_debian || { say "chromium is missing: the HTML report tests need it (apt-get install chromium)"; return 0; }
  say "installing chromium (Debian), for the HTML report tests"
  apt_install chromium fonts-dejavu-core
}

# Each step with its time, so that a slow first run shows where it went.
step() {
  local started=$SECONDS
  "$@"
  say "$1: $((SECONDS - started)) s"
}

step ensure_docker
[ -n "$LAB_ONLY" ] || step ensure_buildx
[ -n "$LAB_ONLY" ] || step ensure_browser
step ensure_emulation
step ensure_images
write_env
