#!/bin/sh
# Builds the site in $1/www: a page stamped with the build's architecture, a CGI
# endpoint answering with the running one, and checksums of what was built.
set -eu
out=$1/www
mkdir -p "$out/cgi-bin"
build_arch=$(uname -m)
sed "s/@BUILD_ARCH@/$build_arch/" "$1/src/index.html.in" > "$out/index.html"
cp "$1/src/arch.cgi" "$out/cgi-bin/arch"
chmod 0755 "$out/cgi-bin/arch"
# A little real work per architecture: checksum every file built.
(cd "$out" && find . -type f ! -name SHA256SUMS | sort | xargs sha256sum > SHA256SUMS)
echo "built for $build_arch: $(wc -l < "$out/SHA256SUMS") files"
