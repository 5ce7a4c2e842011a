#!/usr/bin/env bash
# Builds the recsync Debian package from a source tree without touching it.
#
#   packaging/build-deb.sh OUT_DIR [SOURCE_DIR]
#
# Copies SOURCE_DIR (default: the tree this script is in) to a temporary
# folder, leaving out build folders and VCS data, puts packaging/debian at
# ./debian, runs `dpkg-buildpackage -us -uc -b`, then copies the .deb files
# and the lintian report (lintian.txt) into OUT_DIR.
# Exit status: 0 built (lintian findings are in lintian.txt, see
# tests/ops/package_check.sh for the check), 1 build failed, 64 usage.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
  echo "usage: $0 OUT_DIR [SOURCE_DIR]" >&2
  exit 64
fi
out=$1
src=${2:-$(cd "$(dirname "$0")/.." && pwd)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/recsync-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
tree="$work/recsync"
mkdir -p "$tree"

# Everything but build output, VCS data and an old debian/ folder.
tar -C "$src" \
  --exclude='./build' --exclude='./build-*' --exclude='./.git' \
  --exclude='./debian' --exclude='./.cache' \
  -cf - . | tar -C "$tree" -xf -
cp -a "$tree/packaging/debian" "$tree/debian"

jobs=$(nproc 2>/dev/null || echo 1)
[ "$jobs" -gt 2 ] && jobs=2
(
  cd "$tree"
  DEB_BUILD_OPTIONS="parallel=$jobs nocheck ${DEB_BUILD_OPTIONS:-}" \
    dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1
) || {
  echo "build-deb: dpkg-buildpackage failed; last lines of the log:" >&2
  tail -n 40 "$work/build.log" >&2
  cp "$work/build.log" "$out/build.log"
  exit 1
}
cp "$work/build.log" "$out/build.log"

shopt -s nullglob
debs=("$work"/*.deb)
changes=("$work"/*.changes)
[ ${#debs[@]} -gt 0 ] || { echo "build-deb: no .deb produced" >&2; exit 1; }
cp "${debs[@]}" "$out/"

# lintian on the .changes checks the binary packages and the build info.
lintian --info --display-level '>=warning' --tag-display-limit 0 \
  "${changes[0]}" >"$out/lintian.txt" 2>&1 || true
echo "build-deb: $(basename -a "${debs[@]}" | tr '\n' ' ')-> $out"
