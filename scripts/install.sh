#!/bin/sh
# lab7's installer for Linux and macOS: finds this machine's archive in a release (the folder or
# URL `make dist` output was published to), checks its SHA-256 against the release's SHA256SUMS,
# and puts `lab7` in ~/.local/bin (or $LAB7_INSTALL_DIR). No root needed.
#
#   curl -fsSL RELEASE_URL/install.sh | sh -s -- RELEASE_URL
#   sh install.sh RELEASE_URL            (or LAB7_RELEASE=RELEASE_URL sh install.sh)
set -eu

release=${1:-${LAB7_RELEASE:-}}
dir=${LAB7_INSTALL_DIR:-$HOME/.local/bin}
fail() { printf 'lab7 install: %s\n' "$*" >&2; exit 1; }
[ -n "$release" ] || fail "no release given: sh install.sh RELEASE_URL (the folder with SHA256SUMS and the lab7 archives)"
release=${release%/}

case $(uname -s) in
  Linux) os=unknown-linux-musl ;;
  Darwin) os=apple-darwin ;;
  *) fail "no lab7 build for $(uname -s): on Windows run install.ps1 in PowerShell" ;;
esac
case $(uname -m) in
  x86_64 | amd64) arch=x86_64 ;;
  aarch64 | arm64) arch=aarch64 ;;
  *) fail "no lab7 build for the CPU $(uname -m) (there are x86_64 and aarch64)" ;;
esac
target=$arch-$os

fetch() {  # URL FILE
  if command -v curl >/dev/null 2>&1; then curl -fsSL "$1" -o "$2"
  elif command -v wget >/dev/null 2>&1; then wget -q "$1" -O "$2"
  else fail "neither curl nor wget is installed"; fi || fail "could not download $1"
}
sha256() {
  if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
fetch "$release/SHA256SUMS" "$tmp/SHA256SUMS"
line=$(grep -- "-$target\.tar\.xz\$" "$tmp/SHA256SUMS" | head -n 1)
[ -n "$line" ] || fail "the release at $release has no archive for $target"
want=${line%% *}
file=${line##* }
file=${file#\*}
printf 'lab7 install: %s\n' "downloading $file"
fetch "$release/$file" "$tmp/$file"
got=$(sha256 "$tmp/$file")
[ "$got" = "$want" ] || fail "$file: SHA-256 $got, but SHA256SUMS says $want — the download is damaged or not the release's; nothing was installed"
tar -C "$tmp" -xJf "$tmp/$file" || fail "$file: cannot unpack (tar needs xz: install xz-utils)"
mkdir -p "$dir"
cp "$tmp/${file%.tar.xz}/lab7" "$dir/lab7.new"
chmod 755 "$dir/lab7.new"
mv -f "$dir/lab7.new" "$dir/lab7"
# A binary downloaded by a browser is quarantined on macOS; curl's is not, but a copy may be.
[ "$os" = apple-darwin ] && xattr -d com.apple.quarantine "$dir/lab7" 2>/dev/null || true
printf 'lab7 install: %s\n' "installed $("$dir/lab7" --version) in $dir"
case :$PATH: in
  *:"$dir":*) ;;
  *) printf 'lab7 install: %s\n' "$dir is not on your PATH: add  export PATH=\"$dir:\$PATH\"  to your shell's profile" ;;
esac
