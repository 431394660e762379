#!/usr/bin/env bash
# The lab done by hand, the way a grader would script it without lab7: docker run of registry7
# and a BuildKit node on a network, the two buildctl builds with a prune between, curl to see
# the index and the cache, then the deletion (DELETE by digest, garbage-collect, restart) and
# a curl that the cache is gone. benches/script_vs_lab7.rs times it against `lab7 check`.
# Usage: benches/lab-by-hand.sh APP_DIR   (images from target/lab7/env, as lab7 uses them)
set -euo pipefail
app=$(realpath "${1:?usage: lab-by-hand.sh APP_DIR}")
cd "$(dirname "$0")/.."
set -a; . target/lab7/env; set +a
id=hand$$ net=hand$$-net reg=hand$$-registry7 node=hand$$-node mirror=hand$$-mirror
cleanup() { docker rm -fv "$reg" "$node" "$mirror" >/dev/null 2>&1 || true; docker network rm "$net" >/dev/null 2>&1 || true; }
trap cleanup EXIT
docker network create "$net" >/dev/null
cfg="[registry.\"$reg:5000\"]
  http = true"
if [ -n "${LAB7_MIRROR_IMAGE:-}" ]; then
  docker run -d --name "$mirror" --network "$net" "$LAB7_MIRROR_IMAGE" >/dev/null
  cfg="$cfg
[registry.\"$mirror:5000\"]
  http = true
[registry.\"docker.io\"]
  mirrors = [\"$mirror:5000\"]"
fi
docker run -d --name "$reg" --network "$net" -p 127.0.0.1::5000 -e REGISTRY_STORAGE_DELETE_ENABLED=true "$LAB7_REGISTRY_IMAGE" >/dev/null
docker run -d --name "$node" --network "$net" --privileged --entrypoint sh "$LAB7_BUILDKIT_IMAGE" \
  -c "mkdir -p /etc/buildkit && printf '%s\n' '$cfg' > /etc/buildkit/buildkitd.toml && exec buildkitd" >/dev/null
port=$(docker port "$reg" 5000/tcp | head -1 | sed 's/.*://')
until docker exec "$node" buildctl debug workers >/dev/null 2>&1; do sleep 0.1; done
until curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.1; done
docker cp "$app" "$node:/app"
build() {
  docker exec "$node" buildctl prune --all >/dev/null
  docker exec "$node" buildctl build --frontend dockerfile.v0 --local context=/app --local dockerfile=/app \
    --opt filename=Dockerfile_multi --opt platform=linux/amd64,linux/arm64 \
    --output "type=image,name=$reg:5000/lab:cachetest,push=true,oci-mediatypes=true" \
    --export-cache "type=registry,ref=$reg:5000/cachedata1,mode=max" \
    --import-cache "type=registry,ref=$reg:5000/cachedata1" --progress=plain 2>"$1"
}
build /tmp/$id-build1.log
build /tmp/$id-build2.log
grep -q CACHED /tmp/$id-build2.log
idx=application/vnd.oci.image.index.v1+json man=application/vnd.oci.image.manifest.v1+json
curl -sf -H "Accept: $idx" "http://127.0.0.1:$port/v2/lab/manifests/cachetest" | grep -q arm64
digest=$(curl -sfI -H "Accept: $man" "http://127.0.0.1:$port/v2/cachedata1/manifests/latest" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
curl -sf -X DELETE "http://127.0.0.1:$port/v2/cachedata1/manifests/$digest" >/dev/null
docker exec "$reg" registry garbage-collect /etc/docker/registry/config.yml >/dev/null 2>&1 \
  || docker exec "$reg" registry garbage-collect /etc/distribution/config.yml >/dev/null 2>&1
docker restart "$reg" >/dev/null
port=$(docker port "$reg" 5000/tcp | head -1 | sed 's/.*://')
until curl -sf "http://127.0.0.1:$port/v2/" >/dev/null; do sleep 0.1; done
[ "$(curl -s -o /dev/null -w '%{http_code}' -H "Accept: $man" "http://127.0.0.1:$port/v2/cachedata1/manifests/latest")" = 404 ]
rm -f /tmp/$id-build1.log /tmp/$id-build2.log
