#!/usr/bin/env bash
# Installs everything recsync needs to build, test, benchmark and package,
# from Debian 12's own packages. Idempotent: does nothing when all is there.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config git
  libuv1-dev librsync-dev libspdlog-dev libcli11-dev
  libgtest-dev libgmock-dev libssl-dev libsystemd-dev libtomlplusplus-dev
  libsqlite3-dev libxxhash-dev nlohmann-json3-dev libcurl4-openssl-dev
  ceph-mon ceph-osd radosgw ceph-common
  s3cmd rclone  # bench/objstore.sh: the tools the uploads are compared with
  clang-14 libclang-rt-14-dev
  python3 rsync lsyncd iproute2 iptables e2fsprogs util-linux procps psmisc openssl
  debhelper devscripts lintian mandoc systemd sqlite3 dpkg-dev fakeroot
  faketime  # tests: libfaketime puts one daemon's clock days ahead (clock_test)
  prometheus  # tests: promtool, and a real Prometheus scraping /metrics (its own service is left as installed)
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
